"""``recording(target, path)``: tap a client and write its events to a log.

The tap (``tap.py``) queues raw records on the user's and IO threads; one
writer thread per recording turns them into events (``events.py``) and
appends them to the log (``log.py``) in batches. The recording outlives its
``with`` block until every task submitted inside it has finished.
"""
from __future__ import annotations

import atexit
import collections
import os
import threading
import time
import warnings
import weakref
from datetime import datetime, timezone

from . import tap as T
from .events import STATUS_CODES
from .log import LogWriter, new_header
from .messages import completion, engine_event, iopub_events

FLUSH_INTERVAL = 0.025  # seconds between writes while events flow (brief: <= 50 ms)


class RecorderWarning(UserWarning):
    """The recorder could not do its job fully; the computation is unaffected."""


def _client_of(target):
    """The Client behind a Client or any View."""
    client = getattr(target, "client", None)
    if client is not None and hasattr(client, "_send"):
        return client
    if hasattr(target, "_send"):
        return target
    raise TypeError(f"expected an ipyparallel Client or View, not {type(target).__name__}")


def _error_fields(md, future):
    """(ename, evalue) of a failed task, from its metadata or its reply."""
    err = md.get("error") if md else None
    if err is None:
        try:
            err = future.exception(timeout=0) or future.result(timeout=0)
        except Exception as exc:  # the future's own failure is the error
            err = exc
    if err is None or not isinstance(err, BaseException):
        return None, None
    return getattr(err, "ename", None) or type(err).__name__, getattr(err, "evalue", None) or str(err)


def _names_for(async_result, names) -> dict:
    """{msg_id: name} from the forms ``names`` may take for one AsyncResult."""
    msg_ids = list(async_result.msg_ids)
    if callable(names):
        names = names(async_result)
    if names is None:
        return {}
    if isinstance(names, str):
        if len(msg_ids) == 1:
            return {msg_ids[0]: names}
        return {m: f"{names}[{i}]" for i, m in enumerate(msg_ids)}
    if isinstance(names, dict):
        return {m: str(names[m]) for m in msg_ids if m in names}
    return {m: str(n) for m, n in zip(msg_ids, names)}


class Recording:
    """A live recording of one client into one log. Use ``recording(...)``."""

    def __init__(self, target, path="ipyrecorder.mpk", *, names=None, mode="a", capture_output=True):
        self.client = _client_of(target)
        self.path = os.fspath(path)
        self.names = names
        self.capture_output = capture_output
        self.error: Exception | None = None  # the disk error that stopped writing, if any
        self.dropped = 0  # events that could not be written
        self.closed = threading.Event()
        self._queue = collections.deque()
        self._wake = threading.Event()
        self._exited = False
        self._pending: dict = {}  # msg_id -> [reply seen, output seen or not expected]
        self._uuid_to_id: dict = {}
        self._labelled: set = set()
        self._counts = collections.Counter()
        self._tap = T.ClientTap(
            self.client, self._queue.append, self.flush, watch_async_results=callable(names)
        )
        try:  # LogError (not a log, newer version, locked) is the caller's to see
            self._log = LogWriter(self.path, mode, new_header(session=self.client.session.session))
        except OSError as exc:
            self._log = None
            self._fail(exc)
        self._tap.attach()
        self._present_engines()
        self._thread = threading.Thread(target=self._run, name=f"ipyrecorder:{self.path}", daemon=True)
        self._thread.start()
        _live.add(self)

    # -- the user's side -------------------------------------------------------------
    def mark(self, text: str, **data) -> None:
        """Annotate the timeline now: ``rec.mark("phase 2", size=10)``."""
        self._queue.append(("mark", time.time(), str(text), data))

    def label(self, async_result, names=None) -> None:
        """Name the tasks of an AsyncResult: a str, a list, a dict or a callable.

        Works during the block and after it; once the log is closed the labels
        are appended as a new segment.
        """
        names = self.names if names is None else names
        if self.closed.is_set():
            mapping = _names_for(async_result, names)
            if mapping:
                with LogWriter(self.path, "a", new_header(note="labels added after the recording")) as log:
                    for msg_id, name in mapping.items():
                        log.append({"kind": "label", "msg_id": msg_id, "name": name})
            return
        self._queue.append(("label", async_result, names))

    def flush(self, timeout: float = 5.0) -> bool:
        """Block until everything recorded so far is written (or timeout)."""
        if self.closed.is_set():
            return True
        done = threading.Event()
        self._queue.append((T.FLUSH, done))
        self._wake.set()
        return done.wait(timeout)

    def close(self, timeout: float | None = None) -> bool:
        """Stop recording and wait until the log is closed.

        Tasks still running are waited for up to ``timeout`` seconds (forever
        if None); the log is closed then, noting how many were left pending.
        """
        self._exit()
        if not self.closed.wait(timeout):
            self._queue.append(("stop",))
            self._wake.set()
            self.closed.wait()
        return self.error is None

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self._exit()
        return False

    def _exit(self):
        """Detach the client-level hooks; the thread closes the log once tasks end."""
        if not self._exited:
            self._exited = True
            self._tap.detach()
            self._wake.set()

    # -- the writer thread ---------------------------------------------------------------
    def _run(self):
        while True:
            self._wake.wait(FLUSH_INTERVAL)
            self._wake.clear()
            stop = self._drain()
            client_gone = getattr(self.client, "_closed", False)
            if stop or (self._exited and (not self._pending or client_gone)) or _shutting_down:
                break
        self._drain()  # whatever arrived while deciding to stop
        self._finish()

    def _drain(self) -> bool:
        """Process every queued record, write them, then release flush waiters."""
        flushed = []
        stop = False
        queue = self._queue
        while queue:
            record = queue.popleft()
            if record[0] == T.FLUSH:
                flushed.append(record[1])
            elif record[0] == "stop":
                stop = True
            else:
                try:
                    self._process(record)
                except Exception:
                    T._warn_hook_failure("event conversion")
        self._write()
        for done in flushed:
            done.set()
        return stop

    def _append(self, event):
        if self._log is None:
            self.dropped += 1
            return
        try:
            self._log.append(event)
        except Exception:  # the encoder refused a value: keep recording the rest
            self.dropped += 1
            T._warn_hook_failure(f"encoding {event.get('kind')}")

    def _write(self):
        if self._log is None:
            return
        try:
            self._log.flush()
        except OSError as exc:
            self._fail(exc)

    def _fail(self, exc):
        self.error = exc
        warnings.warn(
            f"ipyrecorder: cannot write {self.path} ({exc}); the computation goes on "
            "unrecorded from here",
            RecorderWarning,
            stacklevel=2,
        )
        if self._log is not None:
            self.dropped += self._log.events_written
            self._log.abandon()
            self._log = None

    def _finish(self):
        _live.discard(self)
        self._tap.detach()
        stats = {
            "events": self._log.events_written if self._log else 0,
            "pending": len(self._pending),
            **{k: v for k, v in self._counts.items()},
        }
        self._sweep_names()
        if self._log is not None:
            try:
                self._log.close(stats)
            except OSError as exc:
                self._fail(exc)
        if self.error is not None:
            warnings.warn(
                f"ipyrecorder: the recording to {self.path} is incomplete: {self.error}",
                RecorderWarning,
                stacklevel=2,
            )
        self.closed.set()

    # -- records -> events (writer thread) ----------------------------------------------
    def _present_engines(self):
        now = datetime.now(timezone.utc)
        for engine_id, uuid in sorted(self._tap.engines().items()):
            self._uuid_to_id[uuid] = engine_id
            self._append({"kind": "engine_register", "t": now, "engine_id": engine_id, "uuid": uuid, "present": True})

    def _engine_id(self, uuid):
        if uuid is None:
            return None
        engine_id = self._uuid_to_id.get(uuid)
        if engine_id is None:
            engine_id = self.client._engines.get(uuid)
            if engine_id is not None:
                self._uuid_to_id[uuid] = engine_id
        return engine_id

    def _process(self, record):
        kind = record[0]
        if kind == T.IOPUB:
            self._on_iopub(record[1])
        elif kind == T.SUBMIT:
            self._on_submit(*record[1:])
        elif kind == T.REPLY:
            self._on_reply(record[1])
        elif kind == T.OUTPUT:
            self._task_part_done(record[1].msg_id, 1)
        elif kind == T.ENGINE:
            self._on_engine(*record[1:])
        elif kind == T.HUB_REPLY:
            self._on_hub_reply(*record[1:])
        elif kind == T.ASYNC_RESULT or kind == "label":
            self._label(record[1], record[2] if kind == "label" else self.names)
        elif kind == "mark":
            _, t, text, data = record
            self._append({"kind": "mark", "t": t, "text": text, "data": data})

    def _on_submit(self, future, queue, msg_type, ident, metadata, call):
        msg_id = future.msg_id
        target = None
        if ident:
            idents = ident if isinstance(ident, list) else [ident]
            ids = [self._engine_id(i.decode() if isinstance(i, bytes) else i) for i in idents]
            target = ids[0] if len(ids) == 1 else ids
        self._append({
            "kind": "submit",
            "msg_id": msg_id,
            "t": future.header.get("date"),
            "queue": queue,
            "function": call[0],
            "target": target,
            "label": (metadata or {}).get("label"),
            "chunk": call[1],
        })  # fmt: skip
        self._counts["tasks"] += 1
        has_output = getattr(future, "output", None) is not None
        self._pending[msg_id] = [False, not has_output]
        if isinstance(self.names, dict) and msg_id in self.names:
            self._add_label(msg_id, self.names[msg_id])

    def _on_iopub(self, msg):
        for event in iopub_events(msg, self._engine_id, self.capture_output):
            self._append(event)

    def _on_reply(self, future):
        msg_id = future.msg_id
        output = getattr(future, "output", None)
        md = getattr(output, "metadata", None) or {}
        status = md.get("status")
        if status not in STATUS_CODES:
            status = "ok" if (future.exception(timeout=0) is None and status is None) else "error"
        ename = evalue = None
        if status != "ok":
            ename, evalue = _error_fields(md, future)
        engine_id = md.get("engine_id")
        if engine_id is None:
            engine_id = self._engine_id(md.get("engine_uuid"))
        self._append({
            "kind": "complete",
            "msg_id": msg_id,
            "status": status,
            "started": md.get("started"),
            "completed": md.get("completed"),
            "received": md.get("received"),
            "engine_id": engine_id if isinstance(engine_id, int) else None,
            "ename": ename,
            "evalue": evalue,
        })  # fmt: skip
        self._counts[status] += 1
        self._task_part_done(msg_id, 0)

    def _task_part_done(self, msg_id, part):
        parts = self._pending.get(msg_id)
        if parts is None:
            return
        parts[part] = True
        if parts[0] and parts[1]:
            del self._pending[msg_id]

    def _on_engine(self, t, event):
        if event.get("event") == "register":
            self._uuid_to_id[event.get("uuid")] = event.get("id")
        engine = engine_event(t, event)
        if engine is not None:
            self._append(engine)

    def _on_hub_reply(self, msg_type, content):
        """Resubmissions happen in the Hub; follow them through its replies."""
        if content.get("status") != "ok":
            return
        now = datetime.now(timezone.utc)
        if msg_type == "resubmit_request":
            for old, new in content.get("resubmitted", {}).items():
                self._append({"kind": "submit", "msg_id": new, "t": now})
                self._append({"kind": "resubmit", "t": now, "msg_id": old, "new_msg_id": new})
                self._pending[new] = [False, True]
            return
        for msg_id in content.get("completed", []):
            rec = content.get(msg_id)
            if msg_id not in self._pending or not isinstance(rec, dict):
                continue
            done = completion({"msg_id": msg_id, **rec}, self._engine_id)
            if done is None:
                continue
            self._append(done)
            for name in ("stdout", "stderr"):
                text = (rec.get("io") or {}).get(name)
                if text and self.capture_output:
                    self._append({"kind": name, "msg_id": msg_id, "t": now, "text": text})
            self._task_part_done(msg_id, 0)

    def _label(self, async_result, names):
        try:
            mapping = _names_for(async_result, names)
        except Exception:
            T._warn_hook_failure("names")
            return
        for msg_id, name in mapping.items():
            self._add_label(msg_id, name)

    def _add_label(self, msg_id, name):
        self._labelled.add(msg_id)
        self._append({"kind": "label", "msg_id": msg_id, "name": str(name)})

    def _sweep_names(self):
        """Names a user added to the ``names`` dict after their tasks were submitted."""
        if not isinstance(self.names, dict) or self._log is None:
            return
        recorded = self._log._encoder.tids
        for msg_id, name in list(self.names.items()):
            if msg_id in recorded and msg_id not in self._labelled:
                self._add_label(msg_id, name)


def recording(target, path="ipyrecorder.mpk", *, names=None, mode="a", capture_output=True) -> Recording:
    """Record everything sent through ``target``'s client into the log at ``path``.

    ``target`` is a Client or any View. ``names`` is a dict msg_id -> name (it
    may be filled in during the block) or a callable(AsyncResult) -> names.
    ``mode="w"`` starts the log afresh; ``"a"`` appends a new segment.
    Use as a context manager; the recording outlives the block until every task
    submitted in it has finished, then closes the log.
    """
    return Recording(target, path, names=names, mode=mode, capture_output=capture_output)


# Close every live recording's log at interpreter exit, so buffered events land.
_live: "weakref.WeakSet[Recording]" = weakref.WeakSet()
_shutting_down = False


@atexit.register
def _close_all():
    global _shutting_down
    _shutting_down = True
    for rec in list(_live):
        rec._wake.set()
        rec.closed.wait(2.0)
