"""Following a log as it grows: new bytes -> frames -> state, for live viewers.

``LogTail`` reads only what was appended since its last read and folds the
complete frames into its ``State``; a partial last frame waits for the rest.
``Follower`` wakes a tail when the file changes: on watchdog's file events
where the file system delivers them, else (``poll=True``, or a mount that turns
out to give no events, as NFS, GPFS, SSHFS and CIFS do) by polling.
"""

from __future__ import annotations

import errno
import gc
import logging
import os
import threading
from pathlib import Path
from typing import Callable

from .log import HEAD_BYTES, FrameStream
from .state import State

READ_CHUNK = 16 << 20  # a long backlog is read and folded in pieces of this size
POLL_INTERVAL = 0.05  # seconds between polls when polling
CHECK_INTERVAL = 1.0  # seconds between safety stats while relying on file events
WRITE_EVENTS = ("modified", "created", "moved", "deleted", "closed")  # "closed": after writing


class LogTail:
    """Incremental reader of one log file. Not thread-safe: one thread polls it.

    A viewer learns what changed from ``state.take_changes()``; a new ``state``
    object means the log was read again from the start. ``notices`` collects
    what a viewer should tell its user (waiting for the file, the file was
    truncated or replaced and reading started over, the file was deleted);
    ``poll`` returns whether the state changed.
    """

    def __init__(self, path, *, freeze_gc: bool = False):
        self.path = Path(path)
        # In a process of its own (the CLI's viewers), move what was folded out of the
        # garbage collector's reach: a full collection would otherwise walk every task.
        self.freeze_gc = freeze_gc
        self.notices: list[str] = []
        self._identity = None
        self._waiting_noted = False
        self.waiting: str | None = None  # while the log is absent: what we wait for (also in ``notices``)
        self._reset()

    def _reset(self):
        self.state = State()
        self.state.paths = (str(self.path),)
        self.offset = 0
        self._head = b""
        self._stream = FrameStream(self.path, live=True)

    def _notice(self, text: str) -> None:
        self.notices.append(text)

    @property
    def pending(self) -> int:
        """Bytes read but held back: a last frame that is still being written."""
        return self._stream.pending

    @property
    def exists(self) -> bool:
        return self._identity is not None

    @property
    def waiting_texts(self) -> tuple:
        """The notices of a log that is absent (not yet created; deleted): over once it is there."""
        return f"waiting for {self.path} to be created", f"{self.path} was deleted; waiting for it to reappear"

    def poll(self) -> bool:
        """Read what was appended since the last poll; True if the state changed."""
        try:
            return self._poll()
        except OSError as exc:
            if exc.errno in (errno.EMFILE, errno.ENFILE):  # the process is out of descriptors: try next time
                return False
            raise

    def _poll(self) -> bool:
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            created, reappear = self.waiting_texts
            if self._identity is not None:
                self.waiting = reappear
                self._notice(self.waiting)
                self._identity = None
            elif not self._waiting_noted:
                self.waiting = created
                self._notice(self.waiting)
            self._waiting_noted = True
            return False
        self.waiting = None
        identity = (st.st_dev, st.st_ino)
        changed = False
        if self._identity is not None and identity != self._identity:
            self._notice(f"{self.path} was replaced; reading it from the start")
            self._reset()
            changed = True
        elif st.st_size < self.offset or (st.st_size > self.offset and self._rewritten()):
            self._notice(f"{self.path} was truncated; reading it from the start")
            self._reset()
            changed = True
        self._identity = identity
        if st.st_size == self.offset:
            return changed
        with open(self.path, "rb") as fh:
            if len(self._head) < HEAD_BYTES:
                self._head = fh.read(HEAD_BYTES)  # the first frame's start, once it is all there
            fh.seek(self.offset)
            while True:
                data = fh.read(READ_CHUNK)
                if not data:
                    break
                self.offset += len(data)
                changed |= self._feed(data)
        return changed

    def _rewritten(self) -> bool:
        """The file starts differently than when we read it: rewritten in place.

        (A log truncated and rewritten past our offset between two polls keeps
        its inode and size; its first frame, with its segment's random id, changes.)
        """
        if len(self._head) < HEAD_BYTES:
            return False
        with open(self.path, "rb") as fh:
            return fh.read(HEAD_BYTES) != self._head

    @property
    def damage_count(self) -> int:
        """How many damaged regions ``damage`` lists (cheap: a live viewer asks often)."""
        return self._stream.damage_count + len(self.state.damage)

    @property
    def damage(self) -> list:
        """Damaged regions met so far (docs/format.md, section 2.1)."""
        return sorted(self._stream.damage + self.state.damage, key=lambda d: d.offset)

    def _feed(self, data: bytes) -> bool:
        frames = self._stream.feed(data)
        collecting = gc.isenabled()
        gc.disable()  # as in replay(): folding makes many objects and no cycles
        try:
            self._fold(frames)
        finally:
            if collecting:
                gc.enable()
        if frames and self.freeze_gc:
            gc.freeze()
        return bool(frames)

    def _fold(self, frames) -> None:
        state = self.state
        for offset, frame in frames:
            state.fold_frame(offset, frame)


class _Wake:
    """A watchdog handler that wakes the follower on any event for its file."""

    def __init__(self, path: Path, wake: threading.Event):
        from watchdog.events import FileSystemEventHandler

        class Handler(FileSystemEventHandler):
            def on_any_event(handler, event):  # noqa: N805
                if event.event_type not in WRITE_EVENTS:
                    return  # our own reads open and close the file: never wake on those
                paths = {getattr(event, "src_path", ""), getattr(event, "dest_path", "")}
                if str(path) in {os.fsdecode(p) for p in paths if p}:
                    self.events += 1
                    wake.set()

        self.events = 0
        self.handler = Handler()


class _WatchdogStopNoise(logging.Filter):
    """watchdog logs an error when its inotify emitter is stopped mid-read: a harmless race."""

    def filter(self, record) -> bool:
        return "called when the thread is inactive" not in record.getMessage()


def _quiet_watchdog_stop() -> None:
    logger = logging.getLogger("watchdog.observers.inotify")
    if not any(isinstance(f, _WatchdogStopNoise) for f in logger.filters):
        logger.addFilter(_WatchdogStopNoise())


class Follower:
    """Keeps a ``LogTail`` up to date and calls ``on_change(tail)`` after each change.

    ``run`` blocks until ``stop`` is set (use it in a thread, or as a viewer's
    main loop). ``mode`` says how changes are noticed: "events" or "polling".
    Viewers follow a log one way: ``with Follower(tail) as follower:``, then read
    ``tail.state`` under ``follower.lock``, waking on ``follower.changed`` (or
    passing ``on_change``, called under the lock, to react on the follower's thread).
    """

    def __init__(
        self,
        tail: LogTail,
        on_change: Callable | None = None,
        *,
        poll: bool = False,
        interval: float = POLL_INTERVAL,
        observer_class=None,
        lock=None,
    ):
        self.observer_class = observer_class  # default: watchdog's Observer (inotify on Linux)
        self.lock = lock or threading.Lock()  # held while the tail reads and on_change runs
        self.tail = tail
        self.on_change = on_change
        self.interval = interval
        self.mode = "polling" if poll else "events"
        self.stop = threading.Event()
        self.changed = threading.Event()  # set after each change; the viewer clears it
        self._wake = threading.Event()
        self._observer = None
        self._watch = None

    def _start_observer(self):
        from watchdog.observers import Observer

        Observer = self.observer_class or Observer  # noqa: N806
        directory = self.tail.path.resolve().parent
        self._watch = _Wake(self.tail.path.resolve(), self._wake)
        observer = Observer()
        observer.schedule(self._watch.handler, str(directory), recursive=False)
        observer.start()
        self._observer = observer

    def _switch_to_polling(self, why: str):
        self.mode = "polling"
        self.tail._notice(f"{why}; polling every {self.interval:g} s")
        self._stop_observer()

    def _stop_observer(self):
        _quiet_watchdog_stop()
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    def run(self) -> None:
        if self.mode == "events":
            try:
                self._start_observer()
            except Exception as exc:  # no inotify (limits, platform): poll instead
                self._switch_to_polling(f"file events are unavailable ({exc})")
        missed = 0
        try:
            self._step()
            while not self.stop.is_set():
                timeout = self.interval if self.mode == "polling" else CHECK_INTERVAL
                woken = self._wake.wait(timeout)
                self._wake.clear()
                if self.stop.is_set():
                    break
                before = self.tail.offset
                self._step()
                if self.mode == "events" and not woken and self.tail.offset != before:
                    # The file grew and no event said so, twice running: this mount gives none.
                    missed += 1
                    if missed >= 2:
                        self._switch_to_polling(f"no file events arrive for {self.tail.path}")
                elif woken:
                    missed = 0
        finally:
            self._stop_observer()

    def __enter__(self) -> "Follower":
        """Follow in a background thread until the block ends."""
        self._thread = threading.Thread(target=self.run, name="ipyrecorder-follow", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self.close()
        self._thread.join(timeout=5)
        return False

    def close(self) -> None:
        """Stop following, at once (without waiting for the next file event or poll)."""
        self.stop.set()
        self._wake.set()

    def _step(self):
        with self.lock:
            notices = len(self.tail.notices)
            if self.tail.poll() or len(self.tail.notices) != notices:
                if self.on_change is not None:
                    self.on_change(self.tail)
                self.changed.set()
