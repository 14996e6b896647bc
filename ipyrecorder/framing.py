"""Format 2 framing: a log is frames, each a marker and an escaped body, found by splitting.

A frame on disk is ``MARKER`` followed by its body with every ``0xC1`` byte
written as ``0xC1 0x01``. The marker, ``0xC1 0x02``, therefore occurs nowhere
but at the start of a frame: not in any payload, whatever bytes a user wrote
(a mark holding a copy of a log included). Reading is a split on the marker,
linear in the file's size, and damage never spreads past the frame it hits.

The body (unescaped) is a 4-byte big-endian payload length, the payload's
CRC-32 (4 bytes, big-endian), then the payload (``payload.py``). A last frame
shorter than its length says is a torn tail (a crash while writing); any other
frame whose length or CRC does not check out is corrupt.
"""

from __future__ import annotations

import struct
import zlib

from .damage import CORRUPT, TORN, Damage

MARKER = b"\xc1\x02"
ESCAPE, ESCAPED = b"\xc1", b"\xc1\x01"
BODY_HEAD = struct.Struct(">II")  # payload length, CRC-32 of the payload
MAX_PAYLOAD = 1 << 28  # a longer length field is damage, not a frame to wait for


def frame(payload: bytes) -> bytes:
    """The bytes of one frame around ``payload``."""
    return MARKER + (BODY_HEAD.pack(len(payload), zlib.crc32(payload)) + payload).replace(ESCAPE, ESCAPED)


def starts_like_a_log(data: bytes) -> bool:
    """Whether ``data`` (a file's first bytes) can be the start of a format-2 log."""
    return data[: len(MARKER)] == MARKER[: len(data)]


def _open(escaped: bytes):
    """(payload, None) for a frame body that checks out, else (None, why: short, long, length, crc)."""
    body = escaped.replace(ESCAPED, ESCAPE)
    if len(body) < BODY_HEAD.size:
        return None, "short"
    length, crc = BODY_HEAD.unpack_from(body)
    if length > MAX_PAYLOAD:
        return None, "length"
    got = len(body) - BODY_HEAD.size
    if got != length:
        return None, "short" if got < length else "long"
    payload = body[BODY_HEAD.size :]
    if zlib.crc32(payload) != crc:
        return None, "crc"
    return payload, None


class FrameSplitter:
    """Splits a byte stream into verified frame payloads, incrementally.

    ``feed`` returns the ``(offset, payload)`` of the frames completed so far
    and holds back a last frame that is still short of the length it declares
    (a live log is being written); ``finish`` declares the end of the file.
    Damage is collected in ``damage``: a frame cut short is ``torn``; bytes
    before a marker, and frames whose length or CRC do not check out, are
    ``corrupt``.
    """

    def __init__(self, offset: int = 0):
        self.offset = offset  # file offset of the first byte not yet consumed
        self.damage: list[Damage] = []
        self._buf = b""

    @property
    def pending(self) -> int:
        """Bytes held back as a possibly incomplete last frame."""
        return len(self._buf)

    def feed(self, data: bytes) -> list:
        self._buf += data
        return self._split(final=False)

    def finish(self) -> list:
        return self._split(final=True)

    def _split(self, final: bool) -> list:
        buf = self._buf
        pieces = buf.split(MARKER)
        frames = []
        at = self.offset
        keep = 0  # bytes at the end to hold back for the next feed
        last = len(pieces) - 1
        for k, piece in enumerate(pieces):
            if k == 0:  # what comes before the first marker: nothing, or bytes that are not a frame
                if last == 0 and not final and piece.endswith(ESCAPE):
                    keep = 1  # perhaps the first half of a marker
                    piece = piece[:-1]
                if piece:
                    self.damage.append(Damage(at, len(piece), CORRUPT, "bytes outside any frame"))
                at += len(piece)
                continue
            size = len(MARKER) + len(piece)
            if k == last and not final and piece.endswith(ESCAPE):
                keep = size  # perhaps half a marker or half an escape: decide when more arrives
                break
            payload, why = _open(piece)
            if why is None:
                frames.append((at, payload))
            elif k == last and not final and why == "short":
                keep = size  # still being written
                break
            elif why == "short":
                self.damage.append(Damage(at, size, TORN, "the frame is cut short (a crash while writing it)"))
            else:
                self.damage.append(Damage(at, size, CORRUPT, _WHY[why]))
            at += size
        self._buf = buf[len(buf) - keep :] if keep else b""
        self.offset = at
        return frames


_WHY = {
    "long": "the frame is longer than its length says",
    "length": "the frame's length is out of range",
    "crc": "the frame's CRC does not match its payload",
}
