"""``recording(target, path)``: tap a client and write its events to a log.

The tap (``tap.py``) queues raw records on the user's and IO threads; a
``Translator`` (``translate.py``) turns them into events, and one writer
thread per log file (a ``_Channel``) appends them in batches (``log.py``). A
recording outlives its ``with`` block until every task submitted inside it
has finished; a new recording of the same file in the same process while an
earlier one still follows its tasks continues in the same writer.
"""

from __future__ import annotations

import atexit
import collections
import os
import secrets
import threading
import time
import warnings

from . import engine_stats, translate
from . import tap as T
from .display import in_notebook, state_html, t
from .errors import RecorderWarning, TapError, warn_hook_failure
from .log import LogWriter, new_header
from .state import replay
from .tail import LogTail
from .viewer import get_viewer

FLUSH_INTERVAL = 0.05  # seconds between writes while events flow (issue 2: at most 50 ms; each wake-up costs)
FLUSH_WAIT = 5.0  # seconds the end of a block waits for the writer before warning
STOP_WAIT = 10.0  # seconds close() waits for the writer once it has given up on pending tasks
DEFAULT_STATS_INTERVAL = 0.5  # seconds between an engine's samples with engine_stats=True


def _client_of(target):
    """The Client behind a Client or any View."""
    client = getattr(target, "client", None)
    if client is not None and hasattr(client, "_send"):
        return client
    if hasattr(target, "_send"):
        return target
    raise TypeError(f"expected an ipyparallel Client or View, not {type(target).__name__}")


def _client_gone(client) -> str | None:
    """Why ``client`` can receive nothing more, or None while it can."""
    if getattr(client, "_closed", False):
        return "client closed"
    io_thread = getattr(client, "_io_thread", None)
    if io_thread is not None and not io_thread.is_alive():
        return "client IO thread stopped"
    return None


class Recording:
    """A live recording of one client into one log. Use ``recording(...)``."""

    def __init__(
        self,
        target,
        path="ipyrecorder.mpk",
        *,
        names=None,
        mode="a",
        capture_output=True,
        engine_stats=None,
        progress=True,
    ):
        interval = _stats_interval(engine_stats)
        self.client = _client_of(target)
        self.path = os.fspath(path)
        self.names = names
        self.closed = threading.Event()  # set once everything of this recording is written
        self.ended = None  # how the recording's block ended (see docs/recording.md)
        self.gave_up = None  # why pending tasks stopped being followed, if they did
        self._queue = collections.deque()
        self._exited = False
        self._stop = None  # set by close() on timeout, or at interpreter exit
        self._tap = T.ClientTap(self.client, self._queue.append, self.flush, watch_async_results=callable(names))
        self._samplers = None  # (token, engine ids, interval) of the engines' samplers, with engine_stats
        self._samplers_lock = threading.Lock()
        self._progress = None  # the thread of the notebook's live display, if it shows
        if interval is not None:  # (set up before the tap attaches: the set-up is not recorded)
            self._start_samplers(interval)
        try:
            self._tap.attach()  # TapError (closed, or already recorded) before anything is written
        except BaseException:
            self._stop_samplers()
            self._tap.release()
            raise
        try:
            self._channel = _Channel.join(self, mode)
            self._translator = translate.Translator(
                self._channel.append, self._tap.engines(), names=names, capture_output=capture_output
            )
            self._channel.add(self)
        except BaseException:
            self._tap.detach()
            self._stop_samplers()
            self._tap.release()
            raise
        if progress and in_notebook():
            self._show_progress()

    def _show_progress(self) -> None:
        """In a notebook, the live display of ``viewers/notebook.py`` in this cell, fed by the log on a
        thread of its own until this recording is written."""
        try:
            viewer = get_viewer("notebook")()
            handle = viewer.show()
            thread = threading.Thread(
                target=viewer.follow, args=(LogTail(self.path), handle, self.closed), name="ipyrecorder-progress"
            )
            thread.daemon = True
            thread.start()
            self._progress = thread
        except Exception:  # no display: the recording goes on
            warn_hook_failure("progress display")

    def _start_samplers(self, interval: float) -> None:
        """Start a sampler on every engine (``engine_stats.py``): one task each, not waited for."""
        if getattr(self.client, "_closed", False):
            return  # (attaching the tap says why in a moment)
        token = secrets.token_hex(8)
        self._tap.listen_engine_stats(token)
        self._samplers = (token, [], interval)
        for engine_id in list(self.client.ids):
            self._start_sampler(engine_id)

    def _start_sampler(self, engine_id) -> None:
        """Start one engine's sampler (at the start, or on the recorder's thread when an engine
        joins: then the set-up request is kept out of the log)."""
        with self._samplers_lock:
            if self._samplers is None:
                return  # (stopped meanwhile)
            token, ids, interval = self._samplers
            try:
                with self._tap.unrecorded():
                    self.client[engine_id].apply_async(engine_stats.start_sampler, engine_id, interval, token)
                ids.append(engine_id)
            except Exception:  # the client cannot send: no samples, the user's work goes on
                warn_hook_failure("engine_stats set-up")

    def _stop_samplers(self) -> None:
        """Ask the samplers to stop (each once its engine is free: nothing waits for it)."""
        with self._samplers_lock:
            found, self._samplers = self._samplers, None
        if found is None:
            return
        token, ids, _ = found
        try:
            live = [] if getattr(self.client, "_closed", False) else [i for i in ids if i in self.client.ids]
            if live:  # (an engine that died took its sampler with it)
                self.client[live].apply_async(engine_stats.stop_sampler, token)
        except Exception:
            warn_hook_failure("engine_stats stop")

    def _where(self) -> str:
        if not self.closed.is_set():
            return "recording"
        return f"written ({self.ended})" if self.error is None else f"stopped by {self.error}"

    def __repr__(self) -> str:
        return f"<Recording of {self.path}: {self._where()}>"

    def _repr_html_(self) -> str:
        """In a notebook: where the recording is, and its log so far (``display.state_html``)."""
        try:
            shown = state_html(replay(self.path))
        except Exception as exc:  # (nothing written yet, a disk that failed)
            shown = f"<div>{t(exc)}</div>"
        return f"<div>ipyrecorder: {t(self.path)}, {t(self._where())}</div>{shown}"

    @property
    def error(self) -> Exception | None:
        """The disk error that stopped writing, if any."""
        return self._channel.error

    @property
    def dropped(self) -> int:
        """Events that could not be written."""
        return self._channel.dropped

    # -- the user's side -------------------------------------------------------------
    def mark(self, text: str, **data) -> None:
        """Annotate the timeline now: ``rec.mark("phase 2", size=10)``."""
        self._queue.append((translate.MARK, time.time(), str(text), data))

    def name_tasks(self, async_result, names=None) -> None:
        """Name the tasks of an AsyncResult: a str, a list, a dict or a callable.

        Names are ipyrecorder's own (``Task.name``); ipyparallel's ``label``
        flag stays the task's ``label``. Works during the block and after it;
        once the log is closed the names are appended as a new segment.
        """
        mapping = translate.names_for(async_result, self.names if names is None else names)
        if not self.closed.is_set():
            self._queue.append((translate.NAME, mapping))
        elif mapping:
            with LogWriter(self.path, "a", new_header(note="names added after the recording")) as log:
                for msg_id, name in mapping.items():
                    log.append({"kind": "label", "msg_id": msg_id, "name": name})

    def label(self, async_result, names=None) -> None:
        """Deprecated spelling of ``name_tasks`` (``label`` is ipyparallel's own flag)."""
        warnings.warn("Recording.label() is now Recording.name_tasks()", DeprecationWarning, stacklevel=2)
        self.name_tasks(async_result, names)

    def flush(self, timeout: float = FLUSH_WAIT) -> bool:
        """Block until everything the client has received so far is written (or timeout)."""
        if self.closed.is_set():
            return True
        done = threading.Event()
        self._queue.append((T.FLUSH, done))
        self._channel.wake.set()
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop recording and wait until everything of it is written.

        Tasks still running are followed for up to ``timeout`` seconds (while
        the client can still receive, if None); then the recording gives up on
        them, warns with how many were left pending, and records that. Returns
        False if the log is incomplete (a disk error).
        """
        self._exit("close() called")
        if not self.closed.wait(timeout):
            self._stop = "close() timeout"
            self._channel.wake.set()
            if not self.closed.wait(STOP_WAIT):
                warnings.warn(f"ipyrecorder: the writer of {self.path} did not finish", RecorderWarning, stacklevel=2)
                return False
        return self.error is None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            ended = "block exited"
        elif issubclass(exc_type, KeyboardInterrupt):
            ended = "interrupted (KeyboardInterrupt)"
        else:
            ended = f"block raised {exc_type.__name__}"
        self._exit(ended)
        # The log now holds what the user holds; with nothing left to follow, it is closed too.
        if not self.flush():
            warnings.warn(
                f"ipyrecorder: {self.path} was not written within {FLUSH_WAIT} s", RecorderWarning, stacklevel=2
            )
        elif not self._translator.awaiting_replies:  # (an output still to come takes milliseconds)
            self.closed.wait(FLUSH_WAIT)
        if self.closed.is_set() and self._progress is not None:
            self._progress.join(FLUSH_WAIT)  # the summary shows before the cell ends (output after it may be lost)
        return False

    def _exit(self, ended):
        """Detach the client-level hooks; the channel finishes the recording once its tasks end."""
        if not self._exited:
            self.ended = ended
            self._exited = True
            self._tap.detach()
            self._stop_samplers()  # (after the tap is gone: not recorded)
            self._channel.wake.set()

    # -- on the channel's thread --------------------------------------------------------
    def _drain(self) -> list:
        """Translate every queued record; returns the flush waiters to release once written."""
        self._translator.start()
        flushed = []
        queue = self._queue
        process = self._translator.process
        while queue:
            record = queue.popleft()
            if record[0] == T.FLUSH:
                self._translator.catch_up()
                flushed.append(record[1])
            else:
                if record[0] == T.ENGINE and self._samplers is not None and record[2].get("event") == "register":
                    self._start_sampler(record[2].get("id"))  # an engine that joined: sampled too
                process(record)
        return flushed

    def _finished(self) -> bool:
        """True once nothing more will be recorded: the block is over and its tasks are followed."""
        if not self._exited and _shutting_down:
            self.ended = "interpreter exit"
            self._exited = True
        if not self._exited:
            return False
        if not self._translator.pending:
            return True
        self.gave_up = self._stop or ("interpreter exit" if _shutting_down else _client_gone(self.client))
        return self.gave_up is not None

    def _finish(self) -> dict:
        """The end of the recording: names swept, hooks gone; returns its close statistics."""
        self._tap.detach()
        self._tap.release()
        self._translator.sweep_names()
        pending = len(self._translator.pending)
        if pending:
            warnings.warn(
                f"ipyrecorder: stopped following {pending} pending task(s) of {self.path} "
                f"({self.gave_up}); the log says so",
                RecorderWarning,
                stacklevel=2,
            )
        return {
            "pending": pending,
            "ended": self.ended,
            "gave_up": self.gave_up if pending else None,
            **self._translator.counts,
        }


class _Channel:
    """One log file in this process: one writer and one thread, for every recording of it."""

    _open: dict = {}  # real path -> the live channel writing it
    _lock = threading.Lock()

    @classmethod
    def join(cls, recording, mode) -> "_Channel":
        """The channel a new recording writes to: the live one for its file, or a new one.

        A new one opens its log and is registered under the lock, so two threads
        starting recordings of one file at once share one channel.
        """
        key = os.path.realpath(recording.path)
        while True:
            with cls._lock:
                channel = cls._open.get(key)
                if channel is None:
                    channel = cls(recording.path, key, recording.client)
                    channel._open_log(mode)  # LogError (not a log, newer version, locked) is the caller's
                    cls._open[key] = channel
                    return channel
                if not channel.closing:
                    if channel.client is not recording.client:
                        raise TapError(
                            f"{recording.path} is still being written by a recording of another "
                            "client in this process; close() that one or record to another file"
                        )
                    return channel
            channel.done.wait(STOP_WAIT)  # it is closing its log: open ours once it has

    def __init__(self, path, key, client):
        self.path = path
        self.key = key
        self.client = client
        self.recordings: list[Recording] = []
        self.log = None
        self.closing = False
        self.error: Exception | None = None
        self.dropped = 0
        self.wake = threading.Event()
        self.done = threading.Event()
        self._ended: list[Recording] = []
        self._stats = collections.Counter()
        self._last = {}
        self.thread = threading.Thread(target=self._run, name=f"ipyrecorder:{self.path}", daemon=True)

    def _open_log(self, mode) -> None:
        try:
            self.log = LogWriter(self.path, mode, new_header(session=self.client.session.session))
        except OSError as exc:  # an unwritable place: a warning, and the computation goes on
            self._fail(exc)

    def add(self, recording) -> None:
        """Start writing ``recording``'s events (and the channel's thread, for its first)."""
        with self._lock:
            self.recordings.append(recording)
            if self.thread.ident is None:
                self.thread.start()

    def append(self, event) -> None:
        if self.log is None:
            self.dropped += 1
            return
        try:
            self.log.append(event)
        except Exception:  # the encoder refused a value: keep recording the rest
            self.dropped += 1
            warn_hook_failure(f"encoding {event.get('kind')}")

    def _run(self):
        self.cpu_seconds = None  # the CPU this thread used, once its log is closed (benchmarks read it)
        try:
            while True:
                self.wake.wait(FLUSH_INTERVAL)
                self.wake.clear()
                try:
                    if self._step():
                        break
                except Exception:  # a bug here must not leave recordings waiting forever
                    warn_hook_failure("writer")
                    with self._lock:
                        self._ended += self.recordings
                        self.recordings = []
                        self.closing = True
                        self._open.pop(self.key, None)
                    break
        finally:
            self._close()

    def _step(self) -> bool:
        """Write what every recording queued; finish the ones that are done. True: close the log."""
        flushed = []
        for recording in list(self.recordings):
            flushed += recording._drain()
        finished = [r for r in list(self.recordings) if r._finished()]
        for recording in finished:
            flushed += recording._drain()  # whatever arrived while deciding
            stats = recording._finish()
            self._last = {k: stats.pop(k) for k in ("ended", "gave_up")}
            self._stats.update(stats, recordings=1)
        self._write()
        for done in flushed:
            done.set()
        with self._lock:
            for recording in finished:
                self.recordings.remove(recording)
            if not self.recordings:
                self.closing = True
                del self._open[self.key]
        if self.closing:
            self._ended += finished
            return True
        for recording in finished:
            recording.closed.set()
        return False

    def _write(self):
        if self.log is None:
            return
        try:
            self.log.flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc):
        self.error = exc
        warnings.warn(
            f"ipyrecorder: cannot write {self.path} ({exc}); the computation goes on unrecorded from here",
            RecorderWarning,
            stacklevel=2,
        )
        if self.log is not None:
            self.dropped += self.log.events_written
            self.log.abandon()
            self.log = None

    def _close(self):
        stats = {"events": self.log.events_written if self.log else 0, **self._stats, **self._last}
        if self.log is not None:
            try:
                self.log.close({k: v for k, v in stats.items() if v is not None})
            except OSError as exc:
                self._fail(exc)
        self.cpu_seconds = time.thread_time()
        self.done.set()  # a disk error was warned about once, when it happened; close() returns False
        for recording in self._ended:
            recording.closed.set()


def _stats_interval(engine_stats) -> float | None:
    """Seconds between the engines' samples for ``engine_stats`` (True: 0.5), or None (off)."""
    if engine_stats is None or engine_stats is False:
        return None
    interval = DEFAULT_STATS_INTERVAL if engine_stats is True else engine_stats
    if not isinstance(interval, (int, float)) or not interval > 0:
        raise ValueError(f"engine_stats must be a number of seconds > 0, or True, not {engine_stats!r}")
    return float(interval)


def recording(
    target, path="ipyrecorder.mpk", *, names=None, mode="a", capture_output=True, engine_stats=None, progress=True
) -> Recording:
    """Record everything sent through ``target``'s client into the log at ``path``.

    ``target`` is a Client or any View. ``names`` is a dict msg_id -> name (it
    may be filled in during the block) or a callable(AsyncResult) -> names.
    ``mode="w"`` starts the log afresh; ``"a"`` appends a new segment (either
    way, a log an earlier recording in this process is still writing is
    continued). Use as a context manager; the recording outlives the block until
    every task submitted in it has finished, then closes the log. ``engine_stats``
    (seconds, or True: 0.5) samples each engine's CPU and memory that often
    (docs/recording.md, "Engine resources"). In a notebook, ``progress`` shows the recording's
    progress in the cell, then its summary (docs/notebook.md); elsewhere it shows nothing.
    """
    return Recording(
        target,
        path,
        names=names,
        mode=mode,
        capture_output=capture_output,
        engine_stats=engine_stats,
        progress=progress,
    )


_shutting_down = False


@atexit.register
def _close_all():
    """Close every live recording's log at interpreter exit, so buffered events land."""
    global _shutting_down
    _shutting_down = True
    for channel in list(_Channel._open.values()):
        channel.wake.set()
        channel.done.wait(2.0)
