"""The append-only log file: crash-tolerant framing, the writer and the reader.

A log is a sequence of frames. Each frame is itself a msgpack value, a 2-array
``[crc32, payload]`` written with fixed-width encodings, so its first 11 bytes are

    0x92  0xce crc(4, big-endian)  0xc6 length(4, big-endian)

and the payload is ``length`` bytes of concatenated msgpack events. A frame is
written with one ``write`` call; a crash can tear only the last one. Readers
check the CRC-32 of every payload: a torn tail is dropped, a damaged region is
skipped up to the next frame that checks out, and both are reported.
"""

from __future__ import annotations

import errno
import os
import platform
import socket
import struct
import zlib
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Iterator

import msgpack

from . import events as ev
from .errors import LogDamageWarning, LogError, LogLocked, NotALog, UnsupportedVersion
from .events import check_header

__all__ = [
    "check_header",
    "Damage",
    "FrameScanner",
    "LogDamageWarning",
    "LogError",
    "LogLocked",
    "LogReader",
    "LogWriter",
    "NotALog",
    "UnsupportedVersion",
    "open_log",
    "read_events",
    "read_header",
    "repair",
]

try:  # advisory locks are POSIX-only; elsewhere two writers are not prevented
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

FRAME_HEAD = struct.Struct(">BBIBI")
HEAD_SIZE = FRAME_HEAD.size  # 11
MAX_PAYLOAD = 1 << 28  # larger length fields are damage, not a frame to wait for
FRAME_PREFIX_MAX = 32  # room for the FRAME event that opens every frame
FLUSH_BYTES = 1 << 20  # the writer starts a new frame past this many buffered bytes


@dataclass(frozen=True)
class Damage:
    """A stretch of the file that could not be read: where, how long, and why."""

    offset: int
    length: int
    reason: str  # "torn tail" | "corrupt" | "undecodable"
    path: str | None = None  # set when several logs are read together

    def __str__(self):
        where = f" of {self.path}" if self.path else ""
        return f"{self.reason}: {self.length} bytes at offset {self.offset}{where}"


def frame(payload: bytes) -> bytes:
    """The bytes of one frame around ``payload``."""
    return FRAME_HEAD.pack(0x92, 0xCE, zlib.crc32(payload), 0xC6, len(payload)) + payload


_OK, _SHORT, _BAD = 0, 1, 2


def _frame_at(buf, pos: int):
    """Classify the bytes at ``pos``: a whole valid frame (and its end), too short, or bad."""
    n = len(buf)
    if n - pos < HEAD_SIZE:
        return _SHORT, 0
    m0, m1, crc, m2, length = FRAME_HEAD.unpack_from(buf, pos)
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
        pos = buf.find(b"\x92\xce", pos)
        if pos < 0:
            return None
        if _frame_at(buf, pos)[0] == _OK:
            return pos
        pos += 1


class FrameScanner:
    """Splits a byte stream into verified frame payloads, incrementally.

    ``feed`` returns the frames completed so far and keeps a partial last frame
    for the next call (so a live tail can be followed); ``finish`` declares end
    of file, turning whatever is left into reported damage.
    """

    def __init__(self, offset: int = 0):
        self.offset = offset  # file offset of the first byte not yet consumed
        self.damage: list[Damage] = []
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buf += data
        return self._parse(final=False)

    def finish(self) -> list[tuple[int, bytes]]:
        return self._parse(final=True)

    @property
    def pending(self) -> int:
        """Bytes held back as a possibly incomplete frame."""
        return len(self._buf)

    def _parse(self, final: bool):
        buf = self._buf
        frames = []
        pos = 0
        n = len(buf)
        while pos < n:
            status, end = _frame_at(buf, pos)
            if status == _OK:
                frames.append((self.offset + pos, bytes(buf[pos + HEAD_SIZE : end])))
                pos = end
                continue
            if status == _SHORT and not final:
                break
            nxt = _resync(buf, pos + 1)
            if nxt is None:
                if final:
                    self.damage.append(Damage(self.offset + pos, n - pos, "torn tail"))
                    pos = n
                break
            self.damage.append(Damage(self.offset + pos, nxt - pos, "corrupt"))
            pos = nxt
        del buf[:pos]
        self.offset += pos
        return frames


def new_header(**fields) -> dict:
    """The header event for a new segment, describing who is writing it."""
    from importlib.metadata import PackageNotFoundError, version

    try:  # the distribution's metadata: importing ipyparallel itself takes a second
        ipp_version = version("ipyparallel")
    except PackageNotFoundError:  # pragma: no cover
        ipp_version = None
    from ._version import __version__

    header = {
        "kind": "header",
        "format": ev.FORMAT_NAME,
        "version": ev.FORMAT_VERSION,
        "t0": datetime.now(timezone.utc),
        "recorder": __version__,
        "ipyparallel": ipp_version,
        "python": platform.python_version(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    header.update(fields)
    return header


def _header_array(header: dict) -> list:
    body = {k: v for k, v in header.items() if k != "kind"}
    body["t0"] = ev.to_us(body["t0"])
    return [ev.HEADER, body]


class LogWriter:
    """Appends events to a log. Not thread-safe: one thread owns a writer.

    Events are encoded into a buffer; ``flush`` writes the buffer as one frame
    with one ``write``; ``close`` appends a close event, flushes and fsyncs.
    Opening takes an advisory lock (``LogLocked`` if another writer has it),
    checks that an existing file is a log, and cuts off a torn tail before
    appending so that old damage does not hide new events.
    """

    def __init__(self, path, mode: str = "a", header: dict | None = None):
        if mode not in ("a", "w"):
            raise ValueError(f"mode must be 'a' or 'w', not {mode!r}")
        self.path = os.fspath(path)
        self.repaired: Damage | None = None
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(self._fd, self.path)
            if mode == "w":
                os.ftruncate(self._fd, 0)
            else:
                self.repaired = _cut_torn_tail(self._fd, self.path)
            os.lseek(self._fd, 0, os.SEEK_END)
            self.header = header or new_header()
            self._t0 = _header_array(self.header)[1]["t0"]
            self._encoder = ev.Encoder(self._t0)
            self._packer = msgpack.Packer(use_bin_type=True)
            self._buf = bytearray(self._packer.pack(_header_array(self.header)))
            self.events_written = 0
            self.bytes_written = 0
            self.closed = False
            self.flush()
        except BaseException:
            os.close(self._fd)
            raise

    def append(self, event: dict) -> None:
        """Encode one event dict (see docs/format.md) into the current frame."""
        encoder = self._encoder
        try:
            arrays = encoder.encode(event)
            data = self._packer.pack(arrays[0]) if len(arrays) == 1 else b"".join(map(self._packer.pack, arrays))
        except Exception:
            encoder.undo()
            raise
        if len(data) > MAX_PAYLOAD - FRAME_PREFIX_MAX:
            encoder.undo()
            raise ValueError(f"event of {len(data)} bytes is larger than a frame may be")
        if len(self._buf) + len(data) > MAX_PAYLOAD - FRAME_PREFIX_MAX:
            self.flush()
        if not self._buf:
            # Each frame restates its segment and time base, so that losing an
            # earlier frame can neither shift its times nor mix segments.
            self._buf += self._packer.pack([ev.FRAME, self._t0, encoder.base])
        self._buf += data
        self.events_written += 1
        if len(self._buf) >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the buffered events as one frame. OSError propagates, buffer kept."""
        if not self._buf:
            return
        data = frame(bytes(self._buf))
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.bytes_written += len(data)
        self._buf.clear()
        if os.fstat(self._fd).st_nlink == 0:  # its directory (or the file) was deleted under us
            raise FileNotFoundError(errno.ENOENT, "the log file was deleted while being written", self.path)

    def close(self, stats: dict | None = None) -> None:
        """Append the close event, flush, fsync and release the lock."""
        if self.closed:
            return
        self.closed = True
        try:
            self.append({"kind": "close", "t": datetime.now(timezone.utc), "stats": stats})
            self.flush()
            os.fsync(self._fd)
        finally:
            os.close(self._fd)

    def abandon(self) -> None:
        """Release the file without writing anything more (after a failed disk)."""
        if not self.closed:
            self.closed = True
            os.close(self._fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _lock(fd: int, path: str) -> None:
    if fcntl is None:  # pragma: no cover
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        raise LogLocked(f"{path} is locked by another writer") from None


def _cut_torn_tail(fd: int, path: str) -> Damage | None:
    """Truncate a torn last frame (checking first that the file is a log)."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    with open(path, "rb") as fh:
        data = fh.read()
    _check_start(data, path)
    status, _ = _frame_at(data, 0)
    if status == _SHORT and _resync(data, 1) is None:
        # Only a torn header frame: nothing was recorded yet.
        os.ftruncate(fd, 0)
        return Damage(0, size, "torn tail")
    if status != _OK:
        raise NotALog(f"{path} is not an ipyrecorder log (its first frame is damaged)")
    scanner = FrameScanner()
    frames = scanner.feed(data) + scanner.finish()
    header_of(frames[0][1], path)
    tail = [d for d in scanner.damage if d.reason == "torn tail"]
    if not tail:
        return None
    os.ftruncate(fd, tail[0].offset)
    return tail[0]


def repair(path) -> Damage | None:
    """Cut off a log's torn tail, under the writer lock. Returns what was cut."""
    fd = os.open(path, os.O_RDWR)
    try:
        _lock(fd, os.fspath(path))
        return _cut_torn_tail(fd, os.fspath(path))
    finally:
        os.close(fd)


def open_log(path, mode: str = "a", header: dict | None = None) -> LogWriter:
    """Open a log for appending events (``mode="a"``) or start it afresh (``"w"``)."""
    return LogWriter(path, mode, header)


def _check_start(data: bytes, path) -> None:
    if not data or data[:2] != b"\x92\xce"[: len(data)]:
        raise NotALog(f"{path} is not an ipyrecorder log")


def read_frames(path, scanner: FrameScanner | None = None):
    """All verified frames of a file, with damage recorded on ``scanner``."""
    with open(path, "rb") as fh:
        data = fh.read()
    if not data:
        raise NotALog(f"{path} is empty")
    _check_start(data, path)
    scanner = scanner or FrameScanner()
    return scanner.feed(data) + scanner.finish()


def unpacker() -> msgpack.Unpacker:
    """A msgpack unpacker configured for log payloads."""
    return msgpack.Unpacker(raw=False, use_list=False, strict_map_key=False, max_buffer_size=MAX_PAYLOAD + 1)


def header_of(payload: bytes, path) -> dict:
    """The checked header fields of a segment's first frame payload."""
    first = unpacker()
    first.feed(payload)
    return check_header(next(first, None), path)


def read_header(path) -> dict:
    """The header of the log at ``path``, reading only its first frame.

    Raises what opening a log raises (``NotALog``, ``UnsupportedVersion``,
    ``OSError``) without reading the rest of the file.
    """
    with open(path, "rb") as fh:
        head = fh.read(HEAD_SIZE)
        _check_start(head, path)
        if len(head) < HEAD_SIZE:
            raise NotALog(f"{path}: its first frame is incomplete; nothing can be read")
        length = FRAME_HEAD.unpack(head)[4]
        data = head + fh.read(min(length, MAX_PAYLOAD))
    if _frame_at(data, 0)[0] != _OK:
        raise NotALog(f"{path}: its first frame is damaged; nothing can be read")
    return header_of(data[HEAD_SIZE:], path)


class LogReader:
    """Reads a whole log: frames are verified, events decoded, damage collected.

    ``arrays()`` yields raw wire arrays (for fast folds), ``events()`` decoded
    event dicts. Damage never raises: it is listed in ``damage`` instead.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        self._scanner = FrameScanner()
        self._frames = read_frames(self.path, self._scanner)
        self.undecodable: list[Damage] = []
        if not self._frames or self._frames[0][0] != 0:
            raise NotALog(f"{self.path}: its first frame is damaged; nothing can be read")
        self.header = header_of(self._frames[0][1], self.path)

    @property
    def damage(self) -> list[Damage]:
        return self._scanner.damage + self.undecodable

    def frames(self) -> Iterator[tuple[int, Iterator[list]]]:
        """(frame offset, iterator of its wire arrays) for every frame in file order."""
        for offset, payload in self._frames:
            yield offset, self._arrays(offset, payload)

    def _arrays(self, offset, payload):
        unpack = unpacker()
        unpack.feed(payload)
        try:
            yield from unpack
        except (ValueError, msgpack.UnpackException) as exc:
            # A payload that passed its CRC but does not decode: a writer bug.
            self.undecodable.append(Damage(offset, len(payload), f"undecodable ({exc})"))

    def arrays(self) -> Iterator[tuple[int, list]]:
        """(frame offset, wire array) for every event in file order."""
        for offset, arrays in self.frames():
            for array in arrays:
                yield offset, array

    def events(self) -> Iterator[dict]:
        """Decoded event dicts; encoding-only events (symbols, ids) are consumed."""
        decoder = ev.Decoder()
        skip_frame = None
        for offset, array in self.arrays():
            if offset == skip_frame:
                continue
            try:
                event = decoder.decode(array)
            except ev.FormatError as exc:
                # Definitions lost in a damaged frame make the rest of this frame unreadable.
                self.undecodable.append(Damage(offset, 0, f"undecodable ({exc})"))
                skip_frame = offset
                continue
            if event is not None:
                yield event


def read_events(path) -> Iterator[dict]:
    """Iterate the decoded events of a log; damage is reported as warnings."""
    import warnings

    reader = LogReader(path)
    yield from reader.events()
    for damage in reader.damage:
        warnings.warn(f"{path}: {damage}", LogDamageWarning, stacklevel=2)
