"""The append-only log file: the writer, the reader, and the stream of frames both agree on.

A log is a sequence of frames (``framing.py``), each a self-contained payload of
event columns (``payload.py``); docs/format.md is the contract. A segment is
what one writer appended: a header frame, then its events, then (if it ended
cleanly) a close event. Logs written by ipyrecorder 0.1 are format 1
(``format_v1.py``): they are read, never written.
"""

from __future__ import annotations

import errno
import functools
import os
import platform
import queue
import socket
import threading
import zlib
from datetime import datetime, timezone
from typing import Iterator

from . import events as ev
from . import format_v1, framing
from . import payload as pl
from .damage import CORRUPT, MALFORMED, TORN, UNSUPPORTED, Damage, unreadable
from .errors import LogDamageWarning, LogError, LogLocked, NotALog, UnsupportedVersion
from .tally import Tally

__all__ = [
    "Damage",
    "FrameStream",
    "LogDamageWarning",
    "LogError",
    "LogLocked",
    "LogReader",
    "LogWriter",
    "NotALog",
    "open_log",
    "read_events",
    "read_header",
    "repair",
]

try:  # advisory locks are POSIX-only; elsewhere two writers are not prevented
    import fcntl
except ImportError:  # pragma: no cover
    fcntl = None

FLUSH_BYTES = 1 << 20  # the writer starts a new frame past about this many bytes of events
READ_CHUNK = 4 << 20  # files are read in pieces of this size
HEAD_BYTES = 64  # a log's first bytes: its first frame's start, with the segment's random id
SNIFF_BYTES = 1 << 20  # a log has a frame that checks out within this many bytes of its start


# -- reading ---------------------------------------------------------------------------------------
class FrameStream:
    """A log's bytes, fed in file order, turned into ``(offset, frame)``; damage in ``damage``.

    The format is told from the first bytes (format 2, or format 1 of
    ipyrecorder 0.1); anything else is ``NotALog``. Frames that cannot be
    read are listed in ``damage`` and skipped; reading goes on after them.
    """

    def __init__(self, path, live: bool = False, decode=pl.decode):
        self.path = path
        self.live = live  # a growing file: decide what it is from its first bytes, without waiting
        self._decode_payload = decode  # of a format-2 payload: ``payload.decode``, or ``payload.peek``
        self.version = None  # 2, or 1, once the first bytes have come
        self.header = None  # the first segment's header fields, once read
        self._split = None
        self._frames1 = None
        self._undecided = b""  # the first bytes, until they say which format this is
        self._decode_damage: list[Damage] = []
        self._segment_starts: set = set()  # offsets of the frames that open a segment
        self._finished = False

    @property
    def damage(self) -> list[Damage]:
        """What could not be read. A frame cut short is ``torn`` only where a crash leaves
        one: at the end of the file, or before a new segment (a new writer appended);
        anywhere else its bytes were damaged, and it is ``corrupt``."""
        found = self._split.damage if self._split is not None else []
        if self.version == pl.VERSION:
            found = [d if d.code != TORN or self._crash_left(d) else _corrupt(d) for d in found]
        return sorted(found + self._decode_damage, key=lambda d: d.offset)

    @property
    def damage_count(self) -> int:
        """How many damaged regions ``damage`` lists, without sorting them."""
        return (len(self._split.damage) if self._split is not None else 0) + len(self._decode_damage)

    def _crash_left(self, damage: Damage) -> bool:
        end = damage.offset + damage.length
        return end in self._segment_starts or (self._finished and end == self._split.offset)

    @property
    def pending(self) -> int:
        return self._split.pending if self._split is not None else 0

    def feed(self, data: bytes) -> list:
        """The frames completed by ``data``, decoded."""
        return list(self.feed_lazily(data))

    def finish(self) -> list:
        """The frames left at the end of the file; what remains is damage."""
        return list(self.finish_lazily())

    def feed_lazily(self, data: bytes) -> Iterator[tuple]:
        """As ``feed``, decoding each frame only when it is asked for (a big file's memory)."""
        if self._split is None:
            data = self._undecided + data
            if data.startswith(format_v1.START):
                self.version, self._split = format_v1.VERSION, format_v1.FrameScanner1()
                self._frames1 = format_v1.Frames1()
            elif framing.MARKER in data[:SNIFF_BYTES]:  # (not at the start: the first marker is damaged)
                self.version, self._split = pl.VERSION, framing.FrameSplitter()
            elif len(data) < 2 or (not self.live and len(data) < SNIFF_BYTES and not data.startswith(b"\x92")):
                self._undecided = data  # wait for a marker
                return iter(())
            else:
                raise NotALog(f"{self.path} is not an ipyrecorder log")
            self._undecided = b""
        return self._decode(self._split.feed(data))

    def finish_lazily(self) -> Iterator[tuple]:
        if self._split is None:
            if self._undecided:
                raise NotALog(f"{self.path} is not an ipyrecorder log")
            return iter(())
        self._finished = True
        return self._decode(self._split.finish())

    def _decode(self, found) -> Iterator[tuple]:
        for offset, size, data in found:
            try:
                frame = self._decode_payload(data) if self._frames1 is None else self._frames1.frame(data, self.path)
            except pl.Foreign as exc:
                if offset == 0:
                    raise NotALog(f"{self.path}: {exc}") from None
                self._decode_damage.append(Damage(offset, size, MALFORMED, str(exc)))
                continue
            except pl.Unsupported as exc:
                self._decode_damage.append(Damage(offset, size, UNSUPPORTED, str(exc), None))
                continue
            except (pl.Malformed, ValueError) as exc:
                if self._frames1 is not None and offset == 0:  # format 1 stands or falls with its first header
                    raise NotALog(f"{self.path}: its first frame cannot be read ({exc})") from None
                self._decode_damage.append(Damage(offset, size, MALFORMED, str(exc)))
                continue
            if getattr(frame, "unknown", None):
                kinds = ", ".join(f"{n} of kind {code}" for code, n in sorted(frame.unknown.items()))
                self._decode_damage.append(Damage(offset, 0, UNSUPPORTED, f"events this reader does not know: {kinds}"))
            if frame.header is not None:
                self._segment_starts.add(offset)
                if self.header is None:
                    self.header = frame.header
            yield offset, frame


def _corrupt(damage: Damage) -> Damage:
    return Damage(damage.offset, damage.length, CORRUPT, "a frame shorter than its length says", damage.path)


def _chunks(path, size: int = READ_CHUNK) -> Iterator[bytes]:
    """The file's bytes, ``size`` first and then in growing pieces, up to READ_CHUNK."""
    with open(path, "rb") as fh:
        while True:
            data = fh.read(size)
            if not data:
                return
            yield data
            size = min(size * 4, READ_CHUNK)


def read_header(path) -> dict | None:
    """The first segment's header fields, reading only as far as the first frame that checks out.

    Raises ``NotALog`` (and ``OSError``) for what is no log at all, and
    ``UnsupportedVersion`` when the log's first frame is of a newer format.
    None when the first frame of a format-2 log is damaged: the rest may read.
    """
    return _open_stream(path).header


def _open_stream(path) -> FrameStream:
    """A stream that has read as far as the log's first frame that checks out (see read_header)."""
    stream = FrameStream(path)
    read = 0
    frames: list = []
    for data in _chunks(path, size=HEAD_BYTES):
        frames = stream.feed(data)
        read += len(data)
        if frames or stream.damage and stream.damage[0].code in (UNSUPPORTED, MALFORMED) or read > SNIFF_BYTES:
            break
    else:
        if read == 0:
            raise NotALog(f"{path} is empty")
        frames = stream.finish()
    first = stream.damage[0] if stream.damage else None
    if not frames and first is not None and first.code == UNSUPPORTED:
        raise UnsupportedVersion(f"{path}: {first.detail}; upgrade ipyrecorder to read it")
    damaged_log = stream.version == pl.VERSION and first is not None and first.offset == 0
    if not frames and not (damaged_log and first.code in (MALFORMED, TORN)):
        what = "its first frame is damaged" if stream.version == format_v1.VERSION else "no frame in it checks out"
        raise NotALog(f"{path} is not an ipyrecorder log that can be read ({what})")
    return stream


class LogReader:
    """Reads a whole log, frame by frame, without holding the file in memory.

    ``frames()`` yields ``(offset, frame)`` (see ``payload.Frame``) for the
    fold; ``events()`` yields decoded event dicts. Damage never raises: it is
    listed in ``damage`` once the frames have been read.
    """

    def __init__(self, path):
        self.path = os.fspath(path)
        opened = _open_stream(self.path)
        self.header = opened.header
        self.version = opened.version  # the log's format: 2, or 1 (ipyrecorder 0.1)
        self.size = os.path.getsize(self.path)
        self.damage: list[Damage] = []

    def frames(self, ahead: bool = False) -> Iterator[tuple]:
        """``(offset, frame)`` in file order. ``ahead``: read and decode the next frames on
        a second thread while the caller works on this one (a big log's replay: inflating
        and checking frames lets go of the GIL)."""
        if ahead:
            return _ahead(self._frames())
        return self._frames()

    def peeked(self) -> Iterator[tuple]:
        """``(offset, payload.Peeked)`` of each frame of a format-2 log: checked (CRC) and
        read only as far as its segment, number and header, the rest decoded later if need
        be (``info``). A format-1 log gives none."""
        return self._frames(pl.peek) if self.version == pl.VERSION else iter(())

    def _frames(self, decode=pl.decode) -> Iterator[tuple]:
        stream = FrameStream(self.path, decode=decode)
        for data in _chunks(self.path):
            yield from stream.feed_lazily(data)
        yield from stream.finish_lazily()
        self.damage = stream.damage

    def events(self) -> Iterator[dict]:
        """Decoded event dicts (docs/format.md, section 9), the header of each segment first."""
        return self._decoded(ev.frame_events)

    def public_events(self) -> Iterator[dict]:
        """The events in the public form (docs/format.md, section 7): JSON-ready dicts."""
        return self._decoded(ev.public_events)

    def _decoded(self, decode) -> Iterator[dict]:
        lost = []
        for offset, frame in self.frames():
            try:
                events = decode(frame)
            except (IndexError, KeyError, TypeError, ValueError) as exc:  # a format-1 frame whose definitions were lost
                lost.append(unreadable(offset, exc))
                continue
            yield from events
        self.damage = sorted(self.damage + lost, key=lambda d: d.offset)


def _ahead(items: Iterator, depth: int = 2) -> Iterator:
    """``items``, produced on another thread at most ``depth`` ahead; its exceptions raised here."""
    ready: queue.Queue = queue.Queue(depth)
    stop = threading.Event()
    end = object()

    def put(entry) -> bool:
        while not stop.is_set():
            try:
                ready.put(entry, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce():
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as exc:  # handed to the reader, who raises it
            put((end, exc))

    thread = threading.Thread(target=produce, name="ipyrecorder-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, exc = ready.get()
            if item is end:
                if exc is not None:
                    raise exc
                return
            yield item
    finally:
        stop.set()
        thread.join()


def read_events(path) -> Iterator[dict]:
    """Iterate the decoded events of a log; damage is reported as warnings."""
    import warnings

    reader = LogReader(path)
    yield from reader.events()
    for damage in reader.damage:
        warnings.warn(f"{path}: {damage}", LogDamageWarning, stacklevel=2)


# -- writing ---------------------------------------------------------------------------------------
def new_header(**fields) -> dict:
    """The header event for a new segment, describing who is writing it."""
    header = {
        "kind": "header",
        "format": ev.FORMAT_NAME,
        "version": pl.VERSION,
        "t0": datetime.now(timezone.utc),
        **_writer_facts(),
        "host": socket.gethostname(),
        "pid": os.getpid(),
    }
    header.update(fields)
    return header


@functools.lru_cache(maxsize=None)
def _writer_facts() -> dict:
    """What a process's writers say of themselves that does not change (read once: the
    distribution's metadata costs a millisecond, and opening a recording must not)."""
    from importlib.metadata import PackageNotFoundError, version

    from ._version import __version__

    try:  # the distribution's metadata: importing ipyparallel itself takes a second
        ipp_version = version("ipyparallel")
    except PackageNotFoundError:  # pragma: no cover
        ipp_version = None
    return {"recorder": __version__, "ipyparallel": ipp_version, "python": platform.python_version()}


def _header_fields(header: dict) -> dict:
    """A header event as the payload holds it: t0 in µs, every value plain (else its text)."""
    fields = {k: v for k, v in header.items() if k != "kind"}
    fields["t0"] = ev.to_us(fields["t0"])
    fields["format"], fields["version"] = ev.FORMAT_NAME, pl.VERSION
    return {str(k): v if pl.plain(v) else str(v) for k, v in fields.items()}


class LogWriter:
    """Appends events to a log. Not thread-safe: one thread owns a writer.

    Events are collected into a frame; ``flush`` writes the frame with one
    ``write``; ``close`` appends a close event, flushes and fsyncs. Opening
    takes an advisory lock (``LogLocked`` if another writer has it), starts a
    new segment with a random id and writes its header frame. An existing file
    must be a format-2 log; whatever it holds is kept as it is (a torn last
    frame included: ``torn`` says so, and readers skip it).
    """

    def __init__(self, path, mode: str = "a", header: dict | None = None):
        if mode not in ("a", "w"):
            raise ValueError(f"mode must be 'a' or 'w', not {mode!r}")
        self.path = os.fspath(path)
        self.torn: Damage | None = None
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(self._fd, self.path)
            if mode == "w":
                os.ftruncate(self._fd, 0)
            else:
                self.torn = _check_appendable(self._fd, self.path)
            os.lseek(self._fd, 0, os.SEEK_END)
            self.header = header or new_header()
            self.segment = os.urandom(pl.SEGMENT_ID_BYTES)
            self._frame = pl.FrameBuilder(self.segment)
            self._frame.base = ev.to_us(self.header["t0"])
            self.events_written = 0
            self.bytes_written = 0
            self.closed = False
            self.tally = Tally()  # the segment's summary, written with its close
            self._write(self._frame.payload(_header_fields(self.header)))
        except BaseException:
            os.close(self._fd)
            raise

    def append(self, event: dict) -> None:
        """Add one event dict (see docs/format.md) to the current frame."""
        frame = self._frame
        frame.add(event)
        self.events_written += 1
        if frame.size >= FLUSH_BYTES:
            self.flush()

    def flush(self) -> None:
        """Write the events added so far as one frame. OSError propagates, the frame kept."""
        if len(self._frame):
            self.tally.fold(self._frame)
            try:
                self._write(self._frame.payload())
            except OSError:
                self.tally.lose("a frame could not be written")
                raise

    def _write(self, payload: bytes) -> None:
        crc = zlib.crc32(payload)
        view = memoryview(framing.frame(payload, crc))
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
            self.bytes_written += written
        if os.fstat(self._fd).st_nlink == 0:  # its directory (or the file) was deleted under us
            raise FileNotFoundError(errno.ENOENT, "the log file was deleted while being written", self.path)
        self.tally.seal(crc)

    def close(self, stats: dict | None = None) -> None:
        """Append the close event, flush, fsync and release the lock."""
        if self.closed:
            return
        self.closed = True
        try:
            self.flush()  # the close event goes in a frame of its own, after every frame its summary sums up
            summary = self.tally.summary()
            self.append({"kind": "close", "t": datetime.now(timezone.utc), "stats": stats, "summary": summary})
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


def _check_appendable(fd: int, path: str) -> Damage | None:
    """Check that the file is empty or a format-2 log; its torn last frame, if it has one."""
    size = os.fstat(fd).st_size
    if size == 0:
        return None
    # NotALog, UnsupportedVersion: appending never writes where reading refuses
    if _open_stream(path).version == format_v1.VERSION:
        raise LogError(f"{path} is a format-1 log (ipyrecorder 0.1): it still reads, but new events go to a new file")
    with open(path, "rb") as fh:
        fh.seek(max(0, size - 2 * FLUSH_BYTES))
        tail = fh.read()
    start = tail.rfind(framing.MARKER)  # the last frame, if it began within the bytes read
    if start < 0:
        return None
    splitter = framing.FrameSplitter(size - len(tail) + start)
    splitter.feed(tail[start:])
    splitter.finish()
    return next((d for d in splitter.damage if d.code == TORN), None)


def repair(path) -> tuple | None:
    """Move a log's torn last frame aside (to ``LOG.torn-OFFSET``), under the writer lock.

    Returns ``(damage, where it went)``, or None when the log does not end in a
    torn frame. Nothing is lost: the bytes are in the side file.
    """
    path = os.fspath(path)
    fd = os.open(path, os.O_RDWR)
    try:
        _lock(fd, path)
        torn = _check_appendable(fd, path)
        if torn is None or torn.offset + torn.length != os.fstat(fd).st_size:
            return None
        aside = f"{path}.torn-{torn.offset}"
        with open(path, "rb") as fh, open(aside, "xb") as out:
            fh.seek(torn.offset)
            out.write(fh.read())
            out.flush()
            os.fsync(out.fileno())
        os.ftruncate(fd, torn.offset)
        os.fsync(fd)
        return torn, aside
    finally:
        os.close(fd)


def open_log(path, mode: str = "a", header: dict | None = None) -> LogWriter:
    """Open a log for appending events (``mode="a"``) or start it afresh (``"w"``)."""
    return LogWriter(path, mode, header)
