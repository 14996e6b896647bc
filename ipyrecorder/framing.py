"""Format 2 framing: a log is frames, each a marker and an escaped body, found by splitting.

A frame on disk is ``MARKER`` followed by its body with every ``0xC1`` byte
written as ``0xC1 0x01``. The marker, ``0xC1 0x02``, therefore occurs nowhere
but at the start of a frame: not in any payload, whatever bytes a user wrote
(a mark holding a copy of a log included). Reading is a split on the marker,
linear in the file's size, and damage never spreads past the frame it hits.

The body (unescaped) is a 10-byte head, then the payload (``payload.py``): the
payload's length (4 bytes, big-endian), a check of that length (the low 16 bits
of the CRC-32 of those 4 bytes) and the payload's CRC-32 (4 bytes). A frame
shorter than its checked length says was cut short: torn (a crash while
writing). A frame whose length or CRC does not check out is corrupt: bit rot
is never taken for a crash. A frame followed by stray bytes (a lost marker
merged the next frame into it) is read, and the stray bytes reported.
"""

from __future__ import annotations

import struct
import zlib

from .damage import CORRUPT, TORN, Damage

MARKER = b"\xc1\x02"
ESCAPE, ESCAPED = b"\xc1", b"\xc1\x01"
BODY_HEAD = struct.Struct(">IHI")  # payload length, its check, CRC-32 of the payload
LENGTH = struct.Struct(">I")
MAX_PAYLOAD = 1 << 28  # a longer length field is damage, not a frame to wait for


def _length_check(length: int) -> int:
    return zlib.crc32(LENGTH.pack(length)) & 0xFFFF


def frame(payload: bytes, crc: int | None = None) -> bytes:
    """The bytes of one frame around ``payload`` (``crc``: its CRC-32, if known)."""
    crc = zlib.crc32(payload) if crc is None else crc
    head = BODY_HEAD.pack(len(payload), _length_check(len(payload)), crc)
    return MARKER + (head + payload).replace(ESCAPE, ESCAPED)


def _open(escaped: bytes):
    """``(payload, why, used)`` for one marker-less piece: the payload if a frame checks out
    (else None, and why: short, length, crc), and how many of the piece's bytes it used."""
    body = escaped.replace(ESCAPED, ESCAPE)
    if len(body) < BODY_HEAD.size:
        return None, "short", len(escaped)
    length, check, crc = BODY_HEAD.unpack_from(body)
    if check != _length_check(length) or length > MAX_PAYLOAD:
        return None, "length", len(escaped)
    end = BODY_HEAD.size + length
    if len(body) < end:
        return None, "short", len(escaped)
    payload = body[BODY_HEAD.size : end]
    if zlib.crc32(payload) != crc:
        return None, "crc", len(escaped)
    # where the frame ends in the escaped piece (stray bytes may follow)
    used = len(escaped) if len(body) == end else end + body.count(ESCAPE, 0, end)
    if escaped.count(ESCAPE, 0, used) != escaped.count(ESCAPED, 0, used):
        return None, "escape", len(escaped)  # a c1 not followed by 01: the CRC cannot see it, this can
    return payload, None, used


class FrameSplitter:
    """Splits a byte stream into verified frame payloads, incrementally.

    ``feed`` returns the ``(offset, size, payload)`` of the frames completed so far
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
        damage = self.damage.append
        for k, piece in enumerate(pieces):
            if k == 0:  # what comes before the first marker: nothing, or bytes that are not a frame
                torn_marker = last == 0 and piece.endswith(ESCAPE)  # perhaps the first half of a marker
                if torn_marker:
                    piece = piece[:-1]
                if piece:
                    damage(Damage(at, len(piece), CORRUPT, "bytes outside any frame"))
                at += len(piece)
                if torn_marker and not final:
                    keep = 1
                elif torn_marker:
                    damage(Damage(at, 1, TORN, "a frame marker cut short (a crash while writing)"))
                    at += 1
                continue
            size = len(MARKER) + len(piece)
            if k == last and not final and piece.endswith(ESCAPE):
                keep = size  # perhaps half a marker or half an escape: decide when more arrives
                break
            half_marker = k == last and piece.endswith(ESCAPE)  # at the end of the file: a torn marker
            payload, why, used = _open(piece[:-1] if half_marker else piece)
            if payload is not None:
                used += len(MARKER)
                frames.append((at, used, payload))
                stray = size - half_marker - used
                if stray == 1 and piece[used - len(MARKER)] == ESCAPE[0]:  # half a marker: a crash
                    damage(Damage(at + used, 1, TORN, "a frame marker cut short (a crash while writing)"))
                elif stray:
                    damage(Damage(at + used, stray, CORRUPT, "bytes outside any frame"))
                if half_marker:
                    damage(Damage(at + size - 1, 1, TORN, "a frame marker cut short (a crash while writing)"))
            elif k == last and not final and why == "short":
                keep = size  # still being written
                break
            elif half_marker and why == "short" and _open(piece)[1] == "crc":
                damage(Damage(at, size, CORRUPT, _WHY["crc"]))  # whole, its last byte damaged into an escape
            else:
                damage(Damage(at, size, TORN if why == "short" else CORRUPT, _WHY[why]))
            at += size
        self._buf = buf[len(buf) - keep :] if keep else b""
        self.offset = at
        return frames


_WHY = {
    "short": "the frame is cut short (a crash while writing it)",
    "length": "the frame's length does not check out",
    "crc": "the frame's CRC does not match its payload",
    "escape": "the frame holds a damaged escape (c1 not followed by 01)",
}
