"""Reading format 1, the log format of ipyrecorder 0.1: its frames, as format-2-like ``Frame``s.

Format 1 (docs/format-v1.md) frames are ``0x92 0xce crc 0xc6 length`` heads and
payloads of msgpack event arrays whose strings, task ids and time base are
defined once per segment, in earlier frames. ``Frames1`` follows those
definitions and hands each frame on as the fold reads a format-2 frame: its
strings, its msg_ids, one time base and its event rows. Nothing writes format 1.
"""

from __future__ import annotations

import struct
import zlib

import msgpack

from . import events as ev
from .damage import CORRUPT, TORN, Damage
from .errors import NotALog, UnsupportedVersion

VERSION = 1
HEADER, SYMBOL, TASK, TIMEBASE, FRAME = 0, 1, 2, 3, 16  # the encoding-only kinds
HEAD = struct.Struct(">BBIBI")
HEAD_SIZE = HEAD.size  # 11
MAX_PAYLOAD = 1 << 28
START = b"\x92\xce"
_OK, _SHORT, _BAD = 0, 1, 2
_TIMES = {kind.code: kind.positions("time") for kind in ev.KINDS}


def _frame_at(buf, pos: int):
    """Classify the bytes at ``pos``: a whole valid frame (and its end), too short, or bad."""
    n = len(buf)
    if n - pos < HEAD_SIZE:
        return _SHORT, 0
    m0, m1, crc, m2, length = HEAD.unpack_from(buf, pos)
    if m0 != 0x92 or m1 != 0xCE or m2 != 0xC6 or length > MAX_PAYLOAD:
        return _BAD, 0
    end = pos + HEAD_SIZE + length
    if end > n:
        return _SHORT, 0
    if zlib.crc32(memoryview(buf)[pos + HEAD_SIZE : end]) != crc:
        return _BAD, 0
    return _OK, end


def _resync(buf, pos: int):
    """Offset of the next whole valid frame at or after ``pos``, or None."""
    while True:
        pos = buf.find(START, pos)
        if pos < 0:
            return None
        if _frame_at(buf, pos)[0] == _OK:
            return pos
        pos += 1


class FrameScanner1:
    """Splits a format-1 byte stream into verified payloads (``feed``, then ``finish``)."""

    def __init__(self, offset: int = 0):
        self.offset = offset
        self.damage: list[Damage] = []
        self._buf = bytearray()

    @property
    def pending(self) -> int:
        return len(self._buf)

    def feed(self, data: bytes) -> list:
        self._buf += data
        return self._parse(final=False)

    def finish(self) -> list:
        return self._parse(final=True)

    def _parse(self, final: bool):
        buf = self._buf
        frames = []
        pos = 0
        n = len(buf)
        while pos < n:
            status, end = _frame_at(buf, pos)
            if status == _OK:
                frames.append((self.offset + pos, end - pos, bytes(buf[pos + HEAD_SIZE : end])))
                pos = end
                continue
            if status == _SHORT and not final:
                break
            nxt = _resync(buf, pos + 1)
            if nxt is None:
                if final:
                    self.damage.append(Damage(self.offset + pos, n - pos, TORN, "the last frame is cut short"))
                    pos = n
                break
            self.damage.append(Damage(self.offset + pos, nxt - pos, CORRUPT, "not a frame"))
            pos = nxt
        del buf[:pos]
        self.offset += pos
        return frames


def check_header(array, path) -> dict:
    """A format-1 segment's header fields (``NotALog``, ``UnsupportedVersion``)."""
    if not (isinstance(array, (list, tuple)) and len(array) == 2 and array[0] == HEADER):
        raise NotALog(f"{path} does not start with an ipyrecorder header")
    fields = array[1]
    if not isinstance(fields, dict) or fields.get("format") != ev.FORMAT_NAME:
        raise NotALog(f"{path} is not an ipyrecorder log")
    version = fields.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise UnsupportedVersion(f"{path} uses log format version {version}")
    return fields


class Frame1:
    """A format-1 frame as the fold reads a format-2 one (see ``payload.Frame``)."""

    __slots__ = ("segment", "seq", "base", "header", "strings", "msg_ids", "_rows")

    def __init__(self, segment, seq, base, header, strings, msg_ids, rows):
        self.segment, self.seq, self.base, self.header = segment, seq, base, header
        self.strings, self.msg_ids, self._rows = strings, msg_ids, rows

    def rows(self):
        return iter(self._rows)


class Frames1:
    """Turns format-1 payloads, in file order, into ``Frame1``s (``frame``: one payload).

    The strings and msg_ids lists grow through a segment and are shared by
    its frames; a frame whose definitions were lost, or that cannot be read, is
    ``Malformed``-like damage (``frame`` raises ValueError).
    """

    def __init__(self):
        self.t0 = None
        self.seq = 0
        self.strings: list = []
        self.msg_ids: list = []
        self.base = 0

    def frame(self, payload: bytes, path) -> Frame1:
        unpack = msgpack.Unpacker(raw=False, use_list=False, strict_map_key=False, max_buffer_size=MAX_PAYLOAD + 1)
        unpack.feed(payload)
        try:
            arrays = list(unpack)
        except (ValueError, msgpack.UnpackException) as exc:
            raise ValueError(f"undecodable ({exc})") from None
        header = None
        if arrays and isinstance(arrays[0], (list, tuple)) and arrays[0] and arrays[0][0] == HEADER:
            fields = check_header(arrays[0], path)
            header = {**fields}
            self.t0 = self.base = fields["t0"]
            self.strings, self.msg_ids, self.seq = [], [], 0
            arrays = arrays[1:]
        strings, msg_ids = self.strings, self.msg_ids
        base = start = self.base
        rows = []
        for a in arrays:
            kind = a[0]
            if kind == SYMBOL:
                if a[1] != len(strings):
                    raise ValueError(f"symbol {a[1]} defined out of order")
                strings.append(a[2])
            elif kind == TASK:
                if a[1] != len(msg_ids):
                    raise ValueError(f"task id {a[1]} defined out of order")
                msg_ids.append(strings[a[2]] + str(a[3]))
            elif kind == TIMEBASE:
                base = a[1]
            elif kind == FRAME:
                if a[1] != self.t0:
                    raise ValueError("a frame of a segment whose header was lost")
                base = start = a[2]
            elif kind == HEADER:
                raise ValueError("a header inside a frame")
            else:
                if base != start:  # a time base moved within the frame: restate the times from the frame's
                    a = list(a)
                    for i in _TIMES.get(kind, ()):
                        if i < len(a) and a[i] is not None:
                            a[i] += base - start
                rows.append(a)
        self.base = base
        segment = None if self.t0 is None else b"format-1" + self.t0.to_bytes(8, "big", signed=True)
        frame = Frame1(segment, self.seq, start, header, strings, msg_ids, rows)
        self.seq += 1
        return frame
