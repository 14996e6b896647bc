"""Folding a log into state: tasks, engines, marks and a summary.

``replay(path)`` is the way in. The fold works on raw wire arrays (see
``events.py`` for their layout) because it is the hot path of every sink and
viewer; times are kept as integer microseconds and turned into UTC datetimes
only when an attribute is read.
"""

from __future__ import annotations

import dataclasses
import gc
import warnings
from collections import Counter, deque
from dataclasses import dataclass
from typing import Iterable

from . import events as ev
from .damage import unreadable
from .log import LogReader

from_us = ev.from_us
QUEUES = ev.QUEUES
STATUSES = ev.STATUSES
# The wire positions the fold reads, named after the fields of events.KINDS.
_K = ev.KIND
SUBMIT_TASK, SUBMIT_T, SUBMIT_QUEUE, SUBMIT_FUNCTION, SUBMIT_TARGET, SUBMIT_LABEL, SUBMIT_CHUNK, SUBMIT_BROADCAST = _K[
    "submit"
].at("msg_id", "t", "queue", "function", "target", "label", "chunk", "broadcast")
START_TASK, START_T, START_ENGINE = _K["start"].at("msg_id", "t", "engine_id")
COMPLETE_TASK, COMPLETE_STATUS, COMPLETE_STARTED, COMPLETE_COMPLETED, COMPLETE_RECEIVED = _K["complete"].at(
    "msg_id", "status", "started", "completed", "received"
)
COMPLETE_ENGINE, COMPLETE_ENAME, COMPLETE_EVALUE, COMPLETE_TRACEBACK = _K["complete"].at(
    "engine_id", "ename", "evalue", "traceback"
)
OUTPUT_TASK, OUTPUT_TEXT = _K["stdout"].at("msg_id", "text")
assert _K["stderr"].fields == _K["stdout"].fields  # the fold reads both alike
ATTEMPT_TASK, *ATTEMPT_FIELDS = _K["attempt_error"].at("msg_id", "t", "engine_id", "ename", "evalue", "traceback")
REGISTER_T, REGISTER_ENGINE, REGISTER_UUID, REGISTER_PRESENT = _K["engine_register"].at(
    "t", "engine_id", "uuid", "present"
)
UNREGISTER_T, UNREGISTER_ENGINE = _K["engine_unregister"].at("t", "engine_id")
MARK_T, MARK_TEXT, MARK_DATA = _K["mark"].at("t", "text", "data")
LABEL_TASK, LABEL_NAME = _K["label"].at("msg_id", "name")
RESUBMIT_TASK, RESUBMIT_NEW = _K["resubmit"].at("msg_id", "new_msg_id")
CLOSE_T, CLOSE_STATS = _K["close"].at("t", "stats")
CLUSTER_STRIDE = 1_000_000  # engine keys of the n-th merged cluster start at (n - 1) * this
# Where each kind names tasks and, with no task, an engine: what the fold notes as changed
# for live viewers (``State.take_changes``).
_TASKS_AT = {kind.code: kind.positions("task") for kind in ev.KINDS if kind.positions("task")}
_ENGINE_AT = {ev.ENGINE_REGISTER: REGISTER_ENGINE, ev.ENGINE_UNREGISTER: UNREGISTER_ENGINE}


def engine_label(engine_id) -> str:
    """``engine 3``, or ``engine 3 (cluster 2)`` for an engine of a second merged cluster."""
    if not isinstance(engine_id, int):
        return "no engine"
    if engine_id < CLUSTER_STRIDE:
        return f"engine {engine_id}"
    return f"engine {engine_id % CLUSTER_STRIDE} (cluster {1 + engine_id // CLUSTER_STRIDE})"


class Task:
    """One task, with attributes named like the Hub's TaskRecord.

    ``submitted``/``received`` are the client's clock, ``started``/``completed``
    the engine's. ``started`` is the engine's own stamp from the reply when the
    task completed, else the latest start (iopub ``busy``) seen. ``status`` is
    where the task is (pending, running, ok, error, aborted); ``outcome`` is its
    result once it completed (ok, error, aborted), else None.
    """

    __slots__ = (
        "msg_id",
        "name",
        "label",
        "function",
        "queue",
        "target",
        "chunk",
        "submitted_us",
        "start_us",
        "started_us",
        "completed_us",
        "received_us",
        "engine_id",
        "outcome",
        "ename",
        "evalue",
        "traceback",
        "_stdout",
        "_stderr",
        "attempts",
        "attempt_errors",
        "resubmitted",
        "resubmit_of",
        "broadcast",
        "_source",
    )

    def __init__(self, msg_id: str):
        self.msg_id = msg_id
        self.name = self.label = self.function = self.queue = self.target = None
        self.chunk = None
        self.submitted_us = self.start_us = self.started_us = None
        self.completed_us = self.received_us = None
        self.engine_id = self.outcome = self.ename = self.evalue = self.traceback = None
        self._stdout = self._stderr = None
        self.attempts = None  # [(engine_id, start_us), ...] once a task starts twice
        self.attempt_errors = None  # [(engine_id, t_us, ename, evalue, traceback), ...]
        self.resubmitted = self.resubmit_of = None
        self.broadcast = None  # msg_id of the broadcast request this per-engine task belongs to
        self._source = None  # which of several merged logs gave this task's output and attempts

    submitted = property(lambda self: from_us(self.submitted_us))

    @property
    def effective_start_us(self) -> int | None:
        """When it started: the engine's own stamp from the reply, else the latest start (busy) seen."""
        return self.started_us if self.started_us is not None else self.start_us

    started = property(lambda self: from_us(self.effective_start_us))
    completed = property(lambda self: from_us(self.completed_us))
    received = property(lambda self: from_us(self.received_us))
    stdout = property(lambda self: "".join(self._stdout) if self._stdout else "")
    stderr = property(lambda self: "".join(self._stderr) if self._stderr else "")

    @property
    def error(self) -> str | None:
        """``"ename: evalue"`` for a task that failed, else None."""
        if self.ename is None:
            return None
        return f"{self.ename}: {self.evalue}" if self.evalue else self.ename

    @property
    def display_name(self) -> str:
        """What views call the task: its name, else its ipyparallel label, function, msg_id."""
        return self.name or self.label or self.function or self.msg_id

    @property
    def status(self) -> str:
        """Where the task is: pending (submitted), running, or its ``outcome`` once it has one."""
        if self.outcome is not None:
            return self.outcome
        return "running" if self.start_us is not None else "pending"

    @property
    def state(self) -> str:
        """Deprecated: ``status``."""
        warnings.warn("Task.state is now Task.status", DeprecationWarning, stacklevel=2)
        return self.status

    @property
    def run_seconds(self) -> float | None:
        """Execution time, completed - started, both on the engine's clock."""
        start = self.effective_start_us
        if start is None or self.completed_us is None:
            return None
        return (self.completed_us - start) / 1e6

    @property
    def wall_seconds(self) -> float | None:
        """Round trip, received - submitted, both on the client's clock."""
        if self.submitted_us is None or self.received_us is None:
            return None
        return (self.received_us - self.submitted_us) / 1e6

    @property
    def queue_seconds(self) -> float | None:
        """Waiting time, started - submitted: mixes engine and client clocks."""
        start = self.effective_start_us
        if start is None or self.submitted_us is None:
            return None
        return (start - self.submitted_us) / 1e6

    def to_dict(self) -> dict:
        """A JSON-ready record (times as ISO 8601 UTC strings)."""
        iso = lambda us: None if us is None else from_us(us).isoformat()  # noqa: E731
        started = self.effective_start_us
        return {
            "msg_id": self.msg_id,
            "name": self.name,
            "label": self.label,
            "function": self.function,
            "queue": self.queue,
            "target": self.target,
            "chunk": self.chunk,
            "engine_id": self.engine_id,
            "status": self.status,
            "submitted": iso(self.submitted_us),
            "started": iso(started),
            "completed": iso(self.completed_us),
            "received": iso(self.received_us),
            "run_seconds": self.run_seconds,
            "queue_seconds": self.queue_seconds,
            "wall_seconds": self.wall_seconds,
            "error": self.error,
            "traceback": self.traceback,
            "attempt_errors": [
                {"engine_id": e, "t": iso(t), "ename": n, "evalue": v, "traceback": tb}
                for e, t, n, v, tb in self.attempt_errors
            ]
            if self.attempt_errors
            else None,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "attempts": [[e, iso(t)] for e, t in self.attempts] if self.attempts else None,
            "resubmitted": self.resubmitted,
            "resubmit_of": self.resubmit_of,
            "broadcast": self.broadcast,
        }

    def __repr__(self):
        return f"<Task {self.msg_id} {self.function or ''} {self.status} engine={self.engine_id}>"


class Engine:
    """One engine: identity, lifetime and what it did."""

    __slots__ = (
        "id",
        "uuid",
        "registered_us",
        "unregistered_us",
        "present_at_start",
        "tasks_done",
        "errors",
        "busy_us",
        "current",
    )

    def __init__(self, engine_id: int):
        self.id = engine_id  # the key in State.engines (see ``cluster``)
        self.uuid = None
        self.registered_us = self.unregistered_us = None
        self.present_at_start = False
        self.tasks_done = self.errors = self.busy_us = 0
        self.current = None  # the task it is running, as far as the log knows

    registered = property(lambda self: from_us(self.registered_us))
    unregistered = property(lambda self: from_us(self.unregistered_us))
    busy_seconds = property(lambda self: self.busy_us / 1e6)
    # Merged logs of several clusters: the second cluster's engine 0 is key 1_000_000.
    cluster = property(lambda self: 1 + self.id // CLUSTER_STRIDE)
    engine_id = property(lambda self: self.id % CLUSTER_STRIDE)

    label = property(lambda self: engine_label(self.id))

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "label": self.label,
            "uuid": self.uuid,
            "registered": None if self.registered_us is None else self.registered.isoformat(),
            "unregistered": None if self.unregistered_us is None else self.unregistered.isoformat(),
            "present_at_start": self.present_at_start,
            "tasks_done": self.tasks_done,
            "errors": self.errors,
            "busy_seconds": self.busy_seconds,
        }

    def __repr__(self):
        return f"<Engine {self.id} done={self.tasks_done} busy={self.busy_seconds:.3f}s>"


class Mark:
    """A user annotation: ``rec.mark(text, **data)``."""

    __slots__ = ("t_us", "text", "data")

    def __init__(self, t_us, text, data):
        self.t_us, self.text, self.data = t_us, text, data

    t = property(lambda self: from_us(self.t_us))

    def to_dict(self):
        return {"t": self.t.isoformat(), "text": self.text, "data": self.data}

    def __repr__(self):
        return f"<Mark {self.text!r} at {self.t}>"


@dataclass(frozen=True)
class Changes:
    """What the fold changed between two ``State.take_changes()`` calls, numbered by ``seq``.

    ``full``: the first call, which lists nothing: draw the whole state. Else
    ``tasks`` (every task an event touched), ``completed`` (tasks whose first
    completion was folded, in order), ``engines`` (keys of engines whose record
    may have changed) and ``marks`` (the marks added).
    """

    seq: int
    full: bool = False
    tasks: frozenset = frozenset()
    completed: tuple = ()
    engines: frozenset = frozenset()
    marks: tuple = ()


class State:
    """Everything a log says, folded: ``tasks``, ``engines``, ``marks``, ``headers``."""

    def __init__(self):
        self.tasks: dict[str, Task] = {}
        self.engines: dict[int, Engine] = {}
        self.marks: list[Mark] = []
        self.headers: list[dict] = []  # one per recording segment
        self.closes: list[dict] = []  # stats of each segment that closed cleanly
        self.damage: list = []
        self.until = None  # the moment the state was rebuilt for (replay's until), if any
        self.events = 0
        # running totals and recent history, so live viewers never scan every task
        self.n_submitted = self.n_completed = self.n_failed = 0
        self.recent_completions: deque = deque(maxlen=2000)  # received (or completed) times, µs
        self.recent_errors: deque = deque(maxlen=20)  # tasks
        self.recent_output: deque = deque(maxlen=50)  # (task, "stdout" | "stderr", text)
        # the frame being folded: its time base, strings and tasks; its segment
        self._base = 0
        self._symbols: list = []
        self._msg_ids: list = []
        self._tids: list[Task] = []
        self._segment = None
        self._frames_folded: set = set()  # (segment id, frame number) of every frame folded
        # engine identity: an engine is its uuid; a segment of another cluster gets its own keys
        self.source = 0  # index of the log being folded, when several are merged
        self._offset = 0  # added to this segment's engine ids (CLUSTER_STRIDE x its cluster)
        self._offset_known = False
        self._clusters = 1
        self._uuid_keys: dict = {}
        # what changed, noted only once a live viewer asks (``take_changes``): replay pays nothing
        self.seq = 0
        self._changed = None  # (tasks, completed, engines) since the last take
        self._marks_taken = 0

    # -- folding -----------------------------------------------------------
    def _engine(self, engine_id) -> Engine:
        engine = self.engines.get(engine_id)
        if engine is None:
            engine = self.engines[engine_id] = Engine(engine_id)
        return engine

    def fold(self, arrays: Iterable) -> "State":
        """Fold wire arrays (in log order) into this state. Returns self."""
        tasks = self.tasks
        tids = self._tids
        symbols = self._symbols
        engines = self.engines
        engine_of = self._engine
        if self._changed is not None:
            arrays = self._note_changes(arrays)
        # (a frame that does not fold through raises here: its events are not counted)
        self.events += self._fold(arrays, tasks, tids, symbols, engines, engine_of, self._base)
        return self

    def take_changes(self) -> Changes:
        """What the fold changed since the last call; the first call starts noting (``full``)."""
        self.seq += 1
        marks = tuple(self.marks[self._marks_taken :])
        self._marks_taken = len(self.marks)
        if self._changed is None:
            self._changed = (set(), [], set())
            return Changes(self.seq, full=True, marks=marks)
        tasks, completed, engines = self._changed
        self._changed = (set(), [], set())
        engines.discard(None)
        return Changes(self.seq, False, frozenset(tasks), tuple(completed), frozenset(engines), marks)

    def _note_changes(self, arrays):
        """Pass ``arrays`` through to the fold, noting what each one changed once it is folded."""
        tasks, completed, engines = self._changed
        tids = self._tids
        for a in arrays:
            kind = a[0]
            positions = _TASKS_AT.get(kind)
            if positions is None:
                yield a
                position = _ENGINE_AT.get(kind)
                if position is not None:
                    engine_id = a[position] + self._offset
                    if kind == ev.ENGINE_REGISTER and len(a) > REGISTER_UUID:
                        engine_id = self._uuid_keys.get(a[REGISTER_UUID], engine_id)
                    engines.add(engine_id)
                continue
            # the engines the tasks were on before (a restart frees one), and their status
            before = [tids[a[p]] for p in positions if 0 <= a[p] < len(tids)]
            pending = [task.outcome is None for task in before]
            engines.update(task.engine_id for task in before)
            yield a  # resumed once the fold has applied it
            for p in positions:
                task = tids[a[p]]
                tasks.add(task)
                engines.add(task.engine_id)
            if kind == ev.COMPLETE and pending and pending[0]:
                completed.append(before[0])

    def fold_frame(self, offset: int, frame, rows=None) -> None:
        """Fold one frame (``payload.Frame``; ``rows``: its rows, filtered); what cannot be folded is damage."""
        key = (frame.segment, frame.seq)
        if key in self._frames_folded:
            return  # the same frame again (``cat a.mpk a.mpk``, a restored backup): already folded
        self._frames_folded.add(key)
        try:
            self._enter(frame)
            self.fold(frame.rows() if rows is None else rows)
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            self.damage.append(unreadable(offset, exc))

    def _enter(self, frame) -> None:
        """Take a frame's strings, tasks and time base; note a new segment (and its header)."""
        if frame.segment != self._segment:
            self._segment = frame.segment
            self._offset = 0  # which cluster this segment's engines belong to is decided afresh
            self._offset_known = False
        if frame.header is not None:
            self.headers.append({**frame.header, "t0": from_us(frame.header["t0"])})
        self._symbols = frame.strings
        msg_ids = frame.msg_ids
        if msg_ids is self._msg_ids:  # a format-1 segment's growing list: only its new tasks
            known = len(self._tids)
        else:
            self._msg_ids, self._tids, known = msg_ids, [], 0
        tasks = self.tasks
        tids = self._tids
        for msg_id in msg_ids[known:] if known else msg_ids:
            task = tasks.get(msg_id)
            if task is None:
                task = tasks[msg_id] = Task(msg_id)
            tids.append(task)
        self._base = frame.base

    def _register_engine(self, engine_id, uuid) -> Engine:
        """The engine of a registration, deciding (once a segment) which cluster it is."""
        known = self._uuid_keys.get(uuid) if uuid is not None else None
        if not self._offset_known:
            self._offset_known = True
            if known is not None:
                self._offset = known - engine_id
            else:
                other = self.engines.get(engine_id)
                if other is not None and other.uuid is not None and other.uuid != uuid:
                    self._offset = self._clusters * CLUSTER_STRIDE  # ids collide: another cluster
                    self._clusters += 1
                else:
                    self._offset = 0
        key = known if known is not None else engine_id + self._offset
        if uuid is not None:
            self._uuid_keys[uuid] = key
        return self._engine(key)

    def _fold(self, arrays, tasks, tids, symbols, engines, engine_of, base) -> int:
        offset = self._offset
        source = self.source
        n = 0
        for a in arrays:
            n += 1
            kind = a[0]
            if kind == ev.SUBMIT:
                task = tids[a[SUBMIT_TASK]]
                if task.submitted_us is None:
                    self.n_submitted += 1
                task.submitted_us = base + a[SUBMIT_T]
                size = len(a)
                if size > SUBMIT_QUEUE and a[SUBMIT_QUEUE] is not None:
                    task.queue = QUEUES[a[SUBMIT_QUEUE]]
                if size > SUBMIT_FUNCTION and a[SUBMIT_FUNCTION] is not None:
                    task.function = symbols[a[SUBMIT_FUNCTION]]
                if size > SUBMIT_TARGET:
                    task.target = a[SUBMIT_TARGET]
                    if size > SUBMIT_LABEL and a[SUBMIT_LABEL] is not None:
                        task.label = symbols[a[SUBMIT_LABEL]]
                        if task.name is None:
                            task.name = task.label
                    if size > SUBMIT_CHUNK:
                        task.chunk = a[SUBMIT_CHUNK]
                        if size > SUBMIT_BROADCAST and a[SUBMIT_BROADCAST] is not None:
                            task.broadcast = symbols[a[SUBMIT_BROADCAST]]
                if offset and task.target is not None:
                    target = task.target
                    task.target = (
                        target + offset
                        if isinstance(target, int)
                        else [None if e is None else e + offset for e in target]
                    )
            elif kind == ev.START:
                task = tids[a[START_TASK]]
                t = base + a[START_T]
                engine_id = a[START_ENGINE] if len(a) > START_ENGINE else None
                if offset and engine_id is not None:
                    engine_id += offset
                if task.start_us is not None:
                    if (engine_id, t) in (task.attempts or ((task.engine_id, task.start_us),)):
                        continue  # the same start, from another of the merged logs
                    if task.attempts is None:
                        task.attempts = [(task.engine_id, task.start_us)]
                    task.attempts.append((engine_id, t))
                    previous = engines.get(task.engine_id)
                    if previous is not None and previous.current is task:
                        previous.current = None
                task.start_us = t
                if task.outcome is None:
                    task.engine_id = engine_id
                    if engine_id is not None:
                        engine_of(engine_id).current = task
            elif kind == ev.COMPLETE:
                task = tids[a[COMPLETE_TASK]]
                size = len(a)
                status = a[COMPLETE_STATUS]
                if task.outcome is None:
                    self.n_completed += 1
                    if status != 0:
                        self.n_failed += 1
                        self.recent_errors.append(task)
                else:  # completed again (merged logs): replace what the first completion counted
                    self._uncount(task)
                task.outcome = STATUSES[status]
                if size > COMPLETE_STARTED and a[COMPLETE_STARTED] is not None:
                    task.started_us = base + a[COMPLETE_STARTED]
                if size > COMPLETE_COMPLETED and a[COMPLETE_COMPLETED] is not None:
                    task.completed_us = base + a[COMPLETE_COMPLETED]
                if size > COMPLETE_RECEIVED and a[COMPLETE_RECEIVED] is not None:
                    task.received_us = base + a[COMPLETE_RECEIVED]
                if size > COMPLETE_ENGINE and a[COMPLETE_ENGINE] is not None:
                    task.engine_id = a[COMPLETE_ENGINE] + offset
                if size > COMPLETE_ENAME:
                    task.ename = a[COMPLETE_ENAME]
                    task.evalue = a[COMPLETE_EVALUE] if size > COMPLETE_EVALUE else None
                    task.traceback = a[COMPLETE_TRACEBACK] if size > COMPLETE_TRACEBACK else None
                engine_id = task.engine_id
                if engine_id is not None:
                    engine = engines.get(engine_id) or engine_of(engine_id)
                    engine.tasks_done += 1
                    if status != 0:
                        engine.errors += 1
                    start = task.effective_start_us
                    if start is not None and task.completed_us is not None:
                        engine.busy_us += task.completed_us - start
                    if engine.current is task:
                        engine.current = None
                done = task.received_us if task.received_us is not None else task.completed_us
                if done is not None:
                    self.recent_completions.append(done)
            elif kind == ev.STDOUT or kind == ev.STDERR:
                task = tids[a[OUTPUT_TASK]]
                if task._source != source:
                    if task._source is not None:
                        continue  # output another of the merged logs already gave
                    task._source = source
                name = "_stdout" if kind == ev.STDOUT else "_stderr"
                text = a[OUTPUT_TEXT]
                chunks = getattr(task, name)
                if chunks is None:
                    setattr(task, name, [text])
                else:
                    chunks.append(text)
                self.recent_output.append((task, name[1:], text))
            elif kind == ev.ATTEMPT_ERROR:
                task = tids[a[ATTEMPT_TASK]]
                if task._source != source:
                    if task._source is not None:
                        continue
                    task._source = source
                size = len(a)
                t, engine_id, ename, evalue, traceback = (a[i] if size > i else None for i in ATTEMPT_FIELDS)
                if offset and engine_id is not None:
                    engine_id += offset
                entry = (engine_id, None if t is None else base + t, ename, evalue, traceback)
                if task.attempt_errors is None:
                    task.attempt_errors = [entry]
                else:
                    task.attempt_errors.append(entry)
            elif kind == ev.ENGINE_REGISTER:
                uuid = a[REGISTER_UUID] if len(a) > REGISTER_UUID else None
                engine = self._register_engine(a[REGISTER_ENGINE], uuid)
                offset = self._offset
                engine.registered_us = base + a[REGISTER_T]
                engine.uuid = uuid
                engine.present_at_start = len(a) > REGISTER_PRESENT and bool(a[REGISTER_PRESENT])
                engine.unregistered_us = None
            elif kind == ev.ENGINE_UNREGISTER:
                engine = engine_of(a[UNREGISTER_ENGINE] + offset)
                engine.unregistered_us = base + a[UNREGISTER_T]
                engine.current = None
            elif kind == ev.MARK:
                data = (a[MARK_DATA] if len(a) > MARK_DATA else None) or {}
                self.marks.append(Mark(base + a[MARK_T], a[MARK_TEXT], data))
            elif kind == ev.LABEL:
                tids[a[LABEL_TASK]].name = a[LABEL_NAME]
            elif kind == ev.RESUBMIT:
                old, new = tids[a[RESUBMIT_TASK]], tids[a[RESUBMIT_NEW]]
                old.resubmitted = new.msg_id
                new.resubmit_of = old.msg_id
                new.function = new.function or old.function  # the Hub re-sends the same request
                new.queue = new.queue or old.queue
            elif kind == ev.CLOSE:
                stats = a[CLOSE_STATS] if len(a) > CLOSE_STATS else {}
                self.closes.append({"t": from_us(base + a[CLOSE_T]), **(stats or {})})
        return n

    @property
    def closed(self) -> bool:
        """The log is finished: it has a segment, and every segment has its close event."""
        return bool(self.headers) and len(self.closes) >= len(self.headers)

    def _uncount(self, task: Task) -> None:
        """Take back what a task's completion added to its engine's totals."""
        engine = self.engines.get(task.engine_id)
        if engine is None:
            return
        engine.tasks_done -= 1
        if task.outcome != "ok":
            engine.errors -= 1
        start = task.effective_start_us
        if start is not None and task.completed_us is not None:
            engine.busy_us -= task.completed_us - start

    # -- reading the state ---------------------------------------------------
    def query(self, where: dict, keys=None) -> list:
        """Tasks matching a Mongo-style ``where`` (see ``ipyrecorder.query``), as dicts."""
        from .query import query

        return query(self, where, keys)

    def to_dataframe(self):
        """The tasks as a pandas DataFrame (one row per task, UTC timestamps)."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("State.to_dataframe needs pandas: pip install 'ipyrecorder[pandas]'") from None
        rows = [task.to_dict() for task in self.tasks.values()]
        frame = pd.DataFrame(rows, columns=list(Task("").to_dict()))
        for column in ("submitted", "started", "completed", "received"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        return frame.set_index("msg_id")

    def span_us(self):
        """(first, last) client-clock time of the run, or (None, None)."""
        firsts = [t.submitted_us for t in self.tasks.values() if t.submitted_us is not None]
        lasts = [t.received_us if t.received_us is not None else t.completed_us for t in self.tasks.values()]
        lasts = [t for t in lasts if t is not None]
        firsts += [m.t_us for m in self.marks]
        if not firsts:
            return None, None
        return min(firsts), max(lasts + firsts)

    def summary(self) -> dict:
        """Tasks by state, the span, and per-engine utilisation."""
        start, end = self.span_us()
        span = (end - start) / 1e6 if start is not None else 0.0
        by_state = Counter(task.status for task in self.tasks.values())
        engines = {}
        for engine_id in sorted(self.engines, key=lambda e: (e is None, e)):
            engine = self.engines[engine_id]
            engines[engine_id] = {
                "tasks": engine.tasks_done,
                "errors": engine.errors,
                "busy_seconds": round(engine.busy_seconds, 6),
                "utilisation": round(engine.busy_seconds / span, 4) if span > 0 else None,
            }
        return {
            "tasks": len(self.tasks),
            "by_status": dict(sorted(by_state.items())),
            "start": None if start is None else from_us(start).isoformat(),
            "end": None if end is None else from_us(end).isoformat(),
            "span_seconds": round(span, 6),
            "engines": engines,
            "marks": len(self.marks),
            "segments": len(self.headers),
            "closed": self.closed,
            "ended": [_ending(close) for close in self.closes if "ended" in close],
            "damage": [str(d) for d in self.damage],
        }

    def failures(self) -> list:
        """Every failed attempt, in time order: ``(task, engine_id, t_us, ename, evalue, traceback)``.

        A task that failed gives its final error (and any earlier attempts that
        raised); a task retried to success gives the attempts that failed.
        """
        found = []
        for task in self.tasks.values():
            attempts = list(task.attempt_errors or ())
            final = task.outcome in ("error", "aborted")
            if final and not any(
                a[2] == task.ename and a[3] == task.evalue and a[0] == task.engine_id for a in attempts
            ):
                attempts.append((task.engine_id, task.completed_us or task.received_us, task.ename, task.evalue, None))
            for engine_id, t_us, ename, evalue, traceback in attempts:
                if final and ename == task.ename and evalue == task.evalue:
                    traceback = traceback or task.traceback
                found.append((task, engine_id, t_us, ename, evalue, traceback))
        found.sort(key=lambda f: (f[2] is None, f[2] or 0))
        return found


def _ending(close: dict) -> str:
    """How a recording segment ended, in words, from its close statistics."""
    text = close["ended"]
    if close.get("pending"):
        text += f"; stopped following {close['pending']} pending task(s)"
        if close.get("gave_up"):
            text += f" ({close['gave_up']})"
    return text


def replay(*paths, until=None) -> State:
    """Fold one or more logs into one ``State`` (tasks merged by msg_id).

    ``until`` (a datetime, an ISO 8601 string, or a time relative to the
    recording's start such as ``"+90s"``) rebuilds the state as it was at that
    moment: what was queued, running, done. Damage is listed in ``state.damage``.
    """
    if not paths:
        raise TypeError("replay() needs at least one log")
    readers = [LogReader(path) for path in paths]
    state = State()
    clip = None
    if until is not None:
        from .query import is_relative, parse_until

        if isinstance(until, str):
            origin = None
            if is_relative(until):  # from the start of the run, as ``summary()`` gives it: all the logs together
                start = replay(*paths).span_us()[0]
                if start is None:
                    start = min((r.header["t0"] for r in readers if r.header), default=0)
                origin = from_us(start)
            until = parse_until(until, origin)
        clip = _Clip(ev.to_us(until))
    damage = []
    collecting = gc.isenabled()
    gc.disable()  # the fold makes millions of objects and no cycles: the collector only costs time
    try:
        for source, reader in enumerate(readers):
            state.source = source
            before = len(state.damage)
            for offset, frame in reader.frames():
                state.fold_frame(offset, frame, None if clip is None else clip(frame))
            found = reader.damage + state.damage[before:]
            del state.damage[before:]
            if len(readers) > 1:
                found = [dataclasses.replace(d, path=str(reader.path)) for d in found]
            damage += sorted(found, key=lambda d: d.offset)
    finally:
        if collecting:
            gc.enable()
    state.damage = damage
    if len(readers) > 1:
        state.marks.sort(key=lambda mark: mark.t_us)  # several logs: one timeline
    if clip is not None:
        state.until = from_us(clip.until)
        # tasks the log defines but that had not been submitted yet at that moment
        for msg_id in [
            m for m, t in state.tasks.items() if t.submitted_us is None and t.start_us is None and t.outcome is None
        ]:
            del state.tasks[msg_id]
    return state


class _Clip:
    """Filters a frame's rows to what had happened by ``until`` (µs since the epoch).

    Events after it are dropped; a task that completed after it but had started
    before is kept as started (running).
    """

    # The position of each kind's one time; complete, with three, is clipped on its own.
    TIME_AT = {kind.code: kind.positions("time")[0] for kind in ev.KINDS if len(kind.positions("time")) == 1}

    def __init__(self, until_us: int):
        self.until = until_us

    def __call__(self, frame):
        until = self.until - frame.base  # compared with the frame's relative times
        for a in frame.rows():
            kind = a[0]
            if kind == ev.COMPLETE:
                size = len(a)
                completed = a[COMPLETE_COMPLETED] if size > COMPLETE_COMPLETED else None
                if completed is not None and completed > until:
                    started = a[COMPLETE_STARTED] if size > COMPLETE_STARTED else None
                    if started is not None and started <= until:  # running at that moment
                        engine = a[COMPLETE_ENGINE] if size > COMPLETE_ENGINE else None
                        yield (ev.START, a[COMPLETE_TASK], started, engine)
                    continue
                received = a[COMPLETE_RECEIVED] if size > COMPLETE_RECEIVED else None
                if received is not None and received > until:  # not yet received by the client
                    a = a[:COMPLETE_RECEIVED] + (None,) + tuple(a[COMPLETE_RECEIVED + 1 :])
            elif kind in self.TIME_AT:
                t = a[self.TIME_AT[kind]]
                if t is not None and t > until:
                    continue
            yield a
