"""Folding a log into state: tasks, engines, marks and a summary.

``replay(path)`` is the way in. Tasks live in typed columns (``table.py``),
times as integer microseconds turned into UTC datetimes only when an attribute
is read. A frame is folded whole with numpy when that gives the same state as
folding its events one by one (``batch.py``); else its wire rows are folded
here, one at a time (see ``events.py`` for their layout).
"""

from __future__ import annotations

import dataclasses
import gc
import os
import time
from collections import deque
from dataclasses import dataclass
from typing import Iterable

import numpy as np

from . import batch, clocks, critical, plugin
from . import events as ev
from .clocks import CLOCKS
from .damage import unreadable
from .events import (
    ATTEMPT_FIELDS,
    ATTEMPT_TASK,
    CLOSE_STATS,
    CLOSE_T,
    COMPLETE_BYTES,
    COMPLETE_COMPLETED,
    COMPLETE_ENAME,
    COMPLETE_ENGINE,
    COMPLETE_EVALUE,
    COMPLETE_RECEIVED,
    COMPLETE_STARTED,
    COMPLETE_STATUS,
    COMPLETE_TASK,
    COMPLETE_TRACEBACK,
    DEPEND_ANY,
    DEPEND_FOLLOW,
    DEPEND_ON,
    DEPEND_TASK,
    INFO_CPUS,
    INFO_ENGINE,
    INFO_HOST,
    INFO_MEMORY,
    INFO_PID,
    LABEL_NAME,
    LABEL_TASK,
    MARK_DATA,
    MARK_T,
    MARK_TEXT,
    OUTPUT_TASK,
    OUTPUT_TEXT,
    REGISTER_ENGINE,
    REGISTER_PRESENT,
    REGISTER_T,
    REGISTER_UUID,
    RESUBMIT_NEW,
    RESUBMIT_TASK,
    SAMPLE_AVAILABLE,
    SAMPLE_CPU,
    SAMPLE_ENGINE,
    SAMPLE_RSS,
    SAMPLE_T,
    START_ENGINE,
    START_T,
    START_TASK,
    SUBMIT_BROADCAST,
    SUBMIT_BYTES,
    SUBMIT_CHUNK,
    SUBMIT_FUNCTION,
    SUBMIT_LABEL,
    SUBMIT_QUEUE,
    SUBMIT_T,
    SUBMIT_TARGET,
    SUBMIT_TASK,
    UNREGISTER_ENGINE,
    UNREGISTER_T,
)
from .log import LogReader
from .summary import summarise
from .table import FAILURES_FIRST, NIL, NONE, SIZES, STATUS_ORDER, TASK_KEYS, Task, Tasks, TaskTable

from_us = ev.from_us
QUEUES = ev.QUEUES
STATUSES = ev.STATUSES
OK = ev.STATUS_CODES["ok"]
READ_AHEAD_FROM = 16 << 20  # logs at least this big are read and decoded on a second thread while folding
CLUSTER_STRIDE = 1_000_000  # engine keys of the n-th merged cluster start at (n - 1) * this
# Where each kind names tasks and, with no task, an engine: what the fold notes as changed
# for live viewers (``State.take_changes``).
VIEW_SHIFTS_EVERY = 1.0  # seconds between a live state's estimates of its engines' clocks (each reads every task)
_TASKS_AT = {kind.code: kind.positions("task") for kind in ev.KINDS if kind.positions("task")}
_ENGINE_AT = {
    ev.ENGINE_REGISTER: REGISTER_ENGINE,
    ev.ENGINE_UNREGISTER: UNREGISTER_ENGINE,
    ev.ENGINE_INFO: INFO_ENGINE,
    ev.ENGINE_SAMPLE: SAMPLE_ENGINE,
}


def engine_label(engine_id, host=None) -> str:
    """``engine 3``, or ``engine 3 (cluster 2)`` for an engine of a second merged cluster; with
    its ``host`` once known (engine_stats), ``engine 3 @ node17``."""
    if not isinstance(engine_id, int):
        return "no engine"
    if engine_id < CLUSTER_STRIDE:
        label = f"engine {engine_id}"
    else:
        label = f"engine {engine_id % CLUSTER_STRIDE} (cluster {1 + engine_id // CLUSTER_STRIDE})"
    return label if host is None else f"{label} @ {host}"


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
        "running",
        "host",
        "pid",
        "cpus",
        "memory",
        "_table",
    )

    def __init__(self, engine_id: int, table: TaskTable | None = None):
        self.id = engine_id  # the key in State.engines (see ``cluster``)
        self.uuid = None
        self.registered_us = self.unregistered_us = None
        self.present_at_start = False
        self.tasks_done = self.errors = self.busy_us = 0
        self.running = None  # the row of the task it is running, as far as the log knows
        self.host = self.pid = self.cpus = self.memory = None  # what its sampler said (engine_stats)
        self._table = table

    registered = property(lambda self: from_us(self.registered_us))
    unregistered = property(lambda self: from_us(self.unregistered_us))
    busy_seconds = property(lambda self: self.busy_us / 1e6)
    # Merged logs of several clusters: the second cluster's engine 0 is key 1_000_000.
    cluster = property(lambda self: 1 + self.id // CLUSTER_STRIDE)
    engine_id = property(lambda self: self.id % CLUSTER_STRIDE)

    label = property(lambda self: engine_label(self.id, self.host))

    @property
    def samples(self) -> list:
        """Its resource samples, ``[(t µs, cpu %, rss bytes, host's available bytes)]`` in order."""
        return [] if self._table is None else self._table.samples.get(self.id, [])

    @property
    def peak_rss(self) -> int | None:
        """The largest resident memory its samples show."""
        return max((s[2] for s in self.samples if s[2] is not None), default=None)

    @property
    def current(self) -> Task | None:
        """The task it is running, as far as the log knows."""
        return None if self.running is None else Task(self._table, self.running)

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
            "host": self.host,
            "pid": self.pid,
            "cpus": self.cpus,
            "memory": self.memory,
            "samples": len(self.samples),
            "peak_rss": self.peak_rss,
        }

    def __repr__(self):
        gone = ", gone" if self.unregistered_us is not None else ""
        return f"<{repr(self.label)[1:-1]}: {self.tasks_done} tasks, {self.errors} errors{gone}>"


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


CLOCK_ROWS = 1 << 16  # rows ``clock_bounds`` reads at a time


class State:
    """Everything a log says, folded: ``tasks``, ``engines``, ``marks``, ``headers``.

    ``table`` holds the tasks as columns (what sinks of big runs read);
    ``tasks`` shows them as a mapping from msg_id to ``Task``.
    """

    def __init__(self):
        self.table = TaskTable()
        self.tasks = Tasks(self.table)
        self.engines: dict[int, Engine] = {}
        self.marks: list[Mark] = []
        self.headers: list[dict] = []  # one per recording segment
        self.paths: tuple = ()  # the logs replay() folded
        self.closes: list[dict] = []  # stats of each segment that closed cleanly
        self.damage: list = []
        self.until = None  # the moment the state was rebuilt for (replay's until), if any
        self.clock_shifts: dict = {}  # engine key -> µs its times were moved by (``to_client_clock``)
        self.clock = None  # replay()'s clock; None: times as logged, put on the client's by views (a live tail)
        self._view_shifts = (None, 0.0, {})  # (events folded, when, view_shifts()) once asked
        self._raw_clock_bounds: dict = {}
        self.events = 0
        # running totals and recent history, so live viewers never scan every task
        self.n_submitted = self.n_completed = self.n_failed = 0
        self.recent_completions: deque = deque(maxlen=2000)  # received (or completed) times, µs
        self._recent_errors: deque = deque(maxlen=20)  # rows
        self._recent_output: deque = deque(maxlen=50)  # (row, "stdout" | "stderr", text)
        # the frame being folded: its time base, strings (as ``table.strings`` indexes) and task rows
        self._base = 0
        self._symbols: tuple = ()
        self._string_ids: list = []
        self._msg_ids: list = []
        self._rows = []
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
        self._changed = None  # (task rows, completed rows, engines) since the last take
        self._marks_taken = 0

    recent_errors = property(lambda self: [Task(self.table, row) for row in self._recent_errors])
    recent_output = property(
        lambda self: [(Task(self.table, row), stream, text) for row, stream, text in self._recent_output]
    )

    # -- folding -----------------------------------------------------------
    def _engine(self, engine_id) -> Engine:
        engine = self.engines.get(engine_id)
        if engine is None:
            engine = self.engines[engine_id] = Engine(engine_id, self.table)
        return engine

    def fold(self, arrays: Iterable) -> "State":
        """Fold the current frame's wire arrays (in log order) into this state. Returns self."""
        if type(self._rows) is not list:
            self._rows = self._rows.tolist()
        if self._changed is not None:
            arrays = self._note_changes(arrays)
        # (a frame that does not fold through raises here: its events are not counted)
        self.events += self._fold(arrays, self._rows, self._base)
        return self

    def take_changes(self) -> Changes:
        """What the fold changed since the last call; the first call starts noting (``full``)."""
        self.seq += 1
        marks = tuple(self.marks[self._marks_taken :])
        self._marks_taken = len(self.marks)
        if self._changed is None:
            self._changed = (set(), [], set())
            return Changes(self.seq, full=True, marks=marks)
        rows, completed, engines = self._changed
        self._changed = (set(), [], set())
        engines.discard(None)
        table = self.table
        return Changes(
            self.seq,
            False,
            frozenset(Task(table, row) for row in rows),
            tuple(Task(table, row) for row in completed),
            frozenset(engines),
            marks,
        )

    def _note_changes(self, arrays):
        """Pass ``arrays`` through to the fold, noting what each one changed once it is folded."""
        changed, completed, engines = self._changed
        rows = self._rows
        engine, outcome = self.table.engine, self.table.outcome
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
            before = [rows[a[p]] for p in positions if 0 <= a[p] < len(rows)]
            pending = [outcome[row] == NONE for row in before]
            engines.update(engine[row] for row in before)
            yield a  # resumed once the fold has applied it
            for p in positions:
                row = rows[a[p]]
                changed.add(row)
                engines.add(engine[row])
            if kind == ev.COMPLETE and pending and pending[0]:
                completed.append(before[0])
        engines.discard(NIL)

    def fold_frame(self, offset: int, frame, rows=None) -> None:
        """Fold one frame (``payload.Frame``; ``rows``: its rows, filtered); what cannot be folded is damage."""
        key = (frame.segment, frame.seq)
        if key in self._frames_folded:
            return  # the same frame again (``cat a.mpk a.mpk``, a restored backup): already folded
        self._frames_folded.add(key)
        try:
            self._enter(frame)
            if (
                rows is None
                and len(getattr(frame, "order", ())) >= batch.BATCH_FROM
                and batch.fold_batches(self, frame)
            ):
                return
            self.fold(frame.rows() if rows is None else rows)
        except (IndexError, KeyError, TypeError, ValueError, OverflowError) as exc:
            self.damage.append(unreadable(offset, exc))

    def _enter(self, frame) -> None:
        """Take a frame's strings, tasks and time base; note a new segment (and its header)."""
        if frame.segment != self._segment:
            self._segment = frame.segment
            self._offset = 0  # which cluster this segment's engines belong to is decided afresh
            self._offset_known = False
        if frame.header is not None:
            self.headers.append({**frame.header, "t0": from_us(frame.header["t0"])})
        table = self.table
        strings = frame.strings
        if strings is not self._symbols and strings != self._symbols:  # (frames often repeat their strings)
            self._symbols, self._string_ids = strings, []
        if len(self._string_ids) < len(strings):  # (a format-1 segment's strings grow)
            self._string_ids += map(table.string, strings[len(self._string_ids) :])
        if not hasattr(frame, "prefixes"):  # a format-1 frame: its segment's growing list of msg_ids
            msg_ids = frame.msg_ids
            if msg_ids is not self._msg_ids or type(self._rows) is not list:
                self._msg_ids, self._rows = msg_ids, []
            self._rows += map(table.row, msg_ids[len(self._rows) :])
        else:
            self._rows = table.frame_rows(frame)
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

    def _fold(self, arrays, rows, base) -> int:
        table = self.table
        columns = table.arrays
        (_, _, submitted, start, started, completed, received, engine_of_row, outcome, queue) = columns[:10]
        (function, label, name, _, chunk) = columns[10:15]
        strings, symbols, errors = self._string_ids, self._symbols, table.errors
        engines, engine_of = self.engines, self._engine
        offset = self._offset
        source = self.source
        n = 0
        for a in arrays:
            n += 1
            kind = a[0]
            if kind == ev.SUBMIT:
                r = rows[a[SUBMIT_TASK]]
                if submitted[r] == NIL:
                    self.n_submitted += 1
                submitted[r] = base + a[SUBMIT_T]
                size = len(a)
                if size > SUBMIT_QUEUE and a[SUBMIT_QUEUE] is not None:
                    queue[r] = a[SUBMIT_QUEUE]
                if size > SUBMIT_FUNCTION and a[SUBMIT_FUNCTION] is not None:
                    function[r] = strings[a[SUBMIT_FUNCTION]]
                if size > SUBMIT_TARGET:
                    target = a[SUBMIT_TARGET]
                    if offset and target is not None:
                        target = (
                            target + offset
                            if isinstance(target, int)
                            else [None if e is None else e + offset for e in target]
                        )
                    table.set_target(r, target)
                    if size > SUBMIT_LABEL and a[SUBMIT_LABEL] is not None:
                        label[r] = strings[a[SUBMIT_LABEL]]
                        if name[r] == NONE:
                            name[r] = label[r]
                    if size > SUBMIT_CHUNK:
                        chunk[r] = NIL if a[SUBMIT_CHUNK] is None else a[SUBMIT_CHUNK]
                        if size > SUBMIT_BROADCAST and a[SUBMIT_BROADCAST] is not None:
                            table.broadcast[r] = symbols[a[SUBMIT_BROADCAST]]
                        if size > SUBMIT_BYTES and a[SUBMIT_BYTES] is not None:
                            table.set_size("request_bytes", r, a[SUBMIT_BYTES])
            elif kind == ev.START:
                r = rows[a[START_TASK]]
                t = base + a[START_T]
                engine_id = a[START_ENGINE] if len(a) > START_ENGINE else None
                if offset and engine_id is not None:
                    engine_id += offset
                if start[r] != NIL:
                    attempts = table.attempts.get(r)
                    before = engine_of_row[r]
                    before = None if before == NIL else before
                    if (engine_id, t) in (attempts or ((before, start[r]),)):
                        continue  # the same start, from another of the merged logs
                    if attempts is None:
                        attempts = table.attempts[r] = [(before, start[r])]
                    attempts.append((engine_id, t))
                    previous = engines.get(before)
                    if previous is not None and previous.running == r:
                        previous.running = None
                start[r] = t
                if outcome[r] == NONE:
                    if engine_id is None:
                        engine_of_row[r] = NIL
                    else:
                        engine_of_row[r] = engine_id
                        (engines.get(engine_id) or engine_of(engine_id)).running = r
            elif kind == ev.COMPLETE:
                r = rows[a[COMPLETE_TASK]]
                size = len(a)
                status = a[COMPLETE_STATUS]
                again = outcome[r] != NONE
                if not again:
                    self.n_completed += 1
                    if status != 0:
                        self.n_failed += 1
                        self._recent_errors.append(r)
                else:  # completed again (merged logs): replace what the first completion counted
                    self._uncount(r)
                outcome[r] = status
                # each time from the event where it has one (read back from the columns only if not)
                v = a[COMPLETE_STARTED] if size > COMPLETE_STARTED else None
                if v is not None:
                    began = started[r] = base + v
                else:
                    began = started[r]
                    if began == NIL:
                        began = start[r]
                v = a[COMPLETE_COMPLETED] if size > COMPLETE_COMPLETED else None
                if v is not None:
                    ended = completed[r] = base + v
                else:
                    ended = completed[r]
                v = a[COMPLETE_RECEIVED] if size > COMPLETE_RECEIVED else None
                if v is not None:
                    done = received[r] = base + v
                else:
                    done = received[r]
                v = a[COMPLETE_ENGINE] if size > COMPLETE_ENGINE else None
                if v is not None:
                    engine_id = engine_of_row[r] = v + offset
                else:
                    engine_id = engine_of_row[r]
                if size > COMPLETE_ENAME:
                    ename = a[COMPLETE_ENAME]
                    evalue = a[COMPLETE_EVALUE] if size > COMPLETE_EVALUE else None
                    traceback = a[COMPLETE_TRACEBACK] if size > COMPLETE_TRACEBACK else None
                    if ename is not None or evalue is not None or traceback is not None:
                        errors[r] = (ename, evalue, traceback)
                    elif again:
                        errors.pop(r, None)
                    if size > COMPLETE_BYTES and a[COMPLETE_BYTES] is not None:
                        table.set_size("reply_bytes", r, a[COMPLETE_BYTES])
                if engine_id != NIL:
                    engine = engines.get(engine_id) or engine_of(engine_id)
                    engine.tasks_done += 1
                    if status != 0:
                        engine.errors += 1
                    if began != NIL and ended != NIL:
                        engine.busy_us += ended - began
                    if engine.running == r:
                        engine.running = None
                if done == NIL:
                    done = ended
                if done != NIL:
                    self.recent_completions.append(done)
            elif kind == ev.STDOUT or kind == ev.STDERR:
                r = rows[a[OUTPUT_TASK]]
                if table.source.get(r) != source:
                    if r in table.source:
                        continue  # output another of the merged logs already gave
                    table.source[r] = source
                stream = "stdout" if kind == ev.STDOUT else "stderr"
                store = table.stdout if kind == ev.STDOUT else table.stderr
                text = a[OUTPUT_TEXT]
                chunks = store.get(r)
                if chunks is None:
                    store[r] = [text]
                else:
                    chunks.append(text)
                self._recent_output.append((r, stream, text))
            elif kind == ev.ATTEMPT_ERROR:
                r = rows[a[ATTEMPT_TASK]]
                if table.source.get(r) != source:
                    if r in table.source:
                        continue
                    table.source[r] = source
                size = len(a)
                t, engine_id, ename, evalue, traceback = (a[i] if size > i else None for i in ATTEMPT_FIELDS)
                if offset and engine_id is not None:
                    engine_id += offset
                entry = (engine_id, None if t is None else base + t, ename, evalue, traceback)
                table.attempt_errors.setdefault(r, []).append(entry)
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
                engine.running = None
            elif kind == ev.MARK:
                data = (a[MARK_DATA] if len(a) > MARK_DATA else None) or {}
                self.marks.append(Mark(base + a[MARK_T], a[MARK_TEXT], data))
            elif kind == ev.LABEL:
                name[rows[a[LABEL_TASK]]] = table.string(a[LABEL_NAME])
            elif kind == ev.RESUBMIT:
                old, new = rows[a[RESUBMIT_TASK]], rows[a[RESUBMIT_NEW]]
                table.resubmitted[old] = table.msg_id(new)
                table.resubmit_of[new] = table.msg_id(old)
                if function[new] == NONE:  # the Hub re-sends the same request
                    function[new] = function[old]
                if queue[new] == NONE:
                    queue[new] = queue[old]
            elif kind == ev.DEPEND:
                size = len(a)
                edge = (
                    symbols[a[DEPEND_ON]],
                    size > DEPEND_FOLLOW and bool(a[DEPEND_FOLLOW]),
                    size > DEPEND_ANY and bool(a[DEPEND_ANY]),
                )
                edges = table.depends.setdefault(rows[a[DEPEND_TASK]], [])
                if edge not in edges:  # (the same task, from another of the merged logs)
                    edges.append(edge)
            elif kind == ev.ENGINE_SAMPLE:
                size = len(a)
                sample = [base + a[SAMPLE_T]] + [
                    a[i] if size > i else None for i in (SAMPLE_CPU, SAMPLE_RSS, SAMPLE_AVAILABLE)
                ]
                table.samples.setdefault(engine_of(a[SAMPLE_ENGINE] + offset).id, []).append(tuple(sample))
            elif kind == ev.ENGINE_INFO:
                engine = engine_of(a[INFO_ENGINE] + offset)
                size = len(a)
                engine.host, engine.pid, engine.cpus, engine.memory = (
                    a[i] if size > i else None for i in (INFO_HOST, INFO_PID, INFO_CPUS, INFO_MEMORY)
                )
            elif kind == ev.CLOSE:
                stats = a[CLOSE_STATS] if len(a) > CLOSE_STATS else {}
                self.closes.append({"t": from_us(base + a[CLOSE_T]), **(stats or {})})
        return n

    @property
    def closed(self) -> bool:
        """The log is finished: it has a segment, and every segment has its close event."""
        return bool(self.headers) and len(self.closes) >= len(self.headers)

    def _uncount(self, row: int) -> None:
        """Take back what a task's completion added to its engine's totals."""
        table = self.table
        engine = self.engines.get(table.engine[row])
        if engine is None:
            return
        engine.tasks_done -= 1
        if table.outcome[row] != OK:
            engine.errors -= 1
        began = table.started[row]
        if began == NIL:
            began = table.start[row]
        if began != NIL and table.completed[row] != NIL:
            engine.busy_us -= table.completed[row] - began

    def _keep_begun(self) -> None:
        """Forget the tasks the log names that had not been submitted, started or completed (``until``)."""
        table = self.table
        begun = (table.view("submitted") != NIL) | (table.view("start") != NIL) | (table.view("outcome") != NONE)
        if begun.all():
            return
        new_of = table.keep(begun)
        for engine in self.engines.values():
            if engine.running is not None:
                engine.running = int(new_of[engine.running])
        self._recent_errors = deque((int(new_of[r]) for r in self._recent_errors), maxlen=20)
        self._recent_output = deque(((int(new_of[r]), s, t) for r, s, t in self._recent_output), maxlen=50)
        self._rows = []

    # -- reading the state ---------------------------------------------------
    def query(self, where: dict, keys=None, sort: str | None = None, limit: int | None = None) -> list:
        """Tasks matching a Mongo-style ``where`` (see ``ipyrecorder.query``), as dicts; ``sort`` by a
        key (``"-run_seconds"``: the slowest first), at most ``limit`` of them."""
        from .query import query

        return query(self, where, keys, sort, limit)

    @property
    def name(self) -> str:
        """The logs' file names, as titles say it."""
        return ", ".join(os.path.basename(path) for path in self.paths)

    def plot(self, **options):
        """The timeline as a matplotlib Figure: the matplotlib sink's drawing (``options`` as its:
        ``colour="status"``, ``start=10, end=20``, ``width``...), shown inline in a notebook
        (found through the registry, as the CLI finds it)."""
        return plugin.get(plugin.SINKS, object, "matplotlib")(**options).figure(self)

    def report(self, path=None, **options):
        """The interactive HTML report (the html sink's page, ``options`` as its), shown inline in a
        notebook (a ``display.Report``), and written to ``path`` when given."""
        report = plugin.get(plugin.SINKS, object, "html")(**options).report(self, self.name or "state")
        if path is not None:
            report.save(path)
        return report

    def to_dataframe(self):
        """The tasks as a pandas DataFrame (one row per task, UTC timestamps): the way into pandas."""
        try:
            import pandas as pd
        except ImportError:
            raise ImportError("State.to_dataframe needs pandas: pip install 'ipyrecorder[pandas]'") from None
        rows = [task.to_dict() for task in self.tasks.values()]
        frame = pd.DataFrame(rows, columns=list(TASK_KEYS))
        for column in ("submitted", "started", "completed", "received"):
            frame[column] = pd.to_datetime(frame[column], utc=True, format="ISO8601")
        for column in ("engine_id", "chunk", "target", "request_bytes", "reply_bytes"):  # integers, or missing
            values = frame[column]
            if all(v is None or v != v or (isinstance(v, (int, float)) and float(v).is_integer()) for v in values):
                frame[column] = values.astype("Int64")  # (not float64 with NaN; a target list stays as it is)
        return frame.set_index("msg_id")

    def span_us(self):
        """(first, last) client-clock time of the run, or (None, None)."""
        table = self.table
        submitted, received, completed = table.view("submitted"), table.view("received"), table.view("completed")
        done = np.where(received != NIL, received, completed)
        firsts = submitted[submitted != NIL]
        lasts = done[done != NIL]
        earliest = ([int(firsts.min())] if len(firsts) else []) + [m.t_us for m in self.marks]
        if not earliest:
            return None, None
        latest = earliest + ([int(lasts.max())] if len(lasts) else []) + ([int(firsts.max())] if len(firsts) else [])
        return min(earliest), max(latest)

    def __repr__(self):
        counts = self.counts()
        by_status = ", ".join(f"{counts[s]} {s}" for s in FAILURES_FIRST if s in counts) or "none"
        engines = len([e for e in self.engines if e is not None])
        return f"<State: {len(self.tasks)} tasks ({by_status}) on {engines} engine(s) over {self.span_seconds():.3f} s>"

    def span_seconds(self) -> float:
        """How long the run took, first submission to last reply (0 with no tasks)."""
        start, end = self.span_us()
        return 0.0 if start is None else (end - start) / 1e6

    def counts(self) -> dict:
        """How many tasks are in each status (pending, running, ok, error, aborted), those with any."""
        found = np.bincount(self.table.statuses(), minlength=len(STATUS_ORDER)).tolist()
        return {status: n for status, n in sorted(zip(STATUS_ORDER, found)) if n}

    def counts_by_function(self) -> dict:
        """``{function: counts()}`` for each function (None: tasks without one), by name."""
        table = self.table
        codes, which = np.unique(table.view("function"), return_inverse=True)
        found = np.zeros((len(codes), len(STATUS_ORDER)), np.int64)
        np.add.at(found, (which.reshape(-1), table.statuses()), 1)
        by_name = {}
        for code, row in zip(codes.tolist(), found.tolist()):
            counts = by_name.setdefault(table.text(code), {})
            for status, n in zip(STATUS_ORDER, row):
                if n:
                    counts[status] = counts.get(status, 0) + n
        return dict(sorted(by_name.items(), key=lambda item: (item[0] is None, item[0] or "")))

    def summary(self) -> dict:
        """Tasks by state, the span, and per-engine utilisation (``summary.summarise``)."""
        return summarise(
            tasks=len(self.tasks),
            by_status=self.counts(),
            span_us=self.span_us(),
            engines={key: (e.tasks_done, e.errors, e.busy_us) for key, e in self.engines.items()},
            clocks=self.clock_bounds(),
            marks=len(self.marks),
            segments=len(self.headers),
            closed=self.closed,
            closes=self.closes,
            damage=self.damage,
            failed_attempts=self.failed_attempts(),
            moved=self.bytes_moved(),
            critical_path=critical.path_figures(self.table, critical.critical_path(self.table, NIL)),
            hosts={key: e.host for key, e in self.engines.items() if e.host is not None},
            peaks={key: peak for key, e in self.engines.items() if (peak := e.peak_rss) is not None},
            **self._listed(),
        )

    def _listed(self) -> dict:
        """The slowest tasks and the first failed ones, as the writer's tally lists them (``tally.LISTED``,
        in ``slowest_order`` and ``failed_order``)."""
        from .tally import LISTED, failed_order, slowest_order

        table = self.table
        outcome, completed, received = table.view("outcome"), table.view("completed"), table.view("received")
        start = table.effective_start()
        ran = np.flatnonzero((outcome != NONE) & (start != NIL) & (completed != NIL) & (completed > start))
        runs = completed - start
        slowest = [[int(runs[row]), table.msg_id(row), Task(table, row).display_name] for row in _near(ran, -runs[ran])]
        failed = np.flatnonzero((outcome != NONE) & (outcome != OK))
        done = np.where(received != NIL, received, completed)  # when the client had it, else when it ended
        first_failed = [
            [None if done[row] == NIL else int(done[row]), table.msg_id(row), task.display_name, task.error]
            for row in _near(failed, np.where(done[failed] == NIL, np.iinfo(np.int64).max, done[failed]))
            for task in (Task(table, row),)
        ]
        return {
            "slowest": sorted(slowest, key=slowest_order)[:LISTED],
            "failed": sorted(first_failed, key=failed_order)[:LISTED],
        }

    def bytes_moved(self) -> tuple:
        """(the requests' sizes, the replies' sizes), added up over the tasks where they were measured."""
        return tuple(_total(v[v != NIL]) for v in map(self.table.sizes, SIZES))

    def clock_bounds(self) -> dict:
        """``{engine key: clocks.Bounds}``: each engine's clock offset bounded by its completed
        tasks' times as the log has them (``clocks.py`` says how), as the writer's tally bounds it."""
        if self.clock_shifts:
            return self._raw_clock_bounds
        table = self.table
        done = self._clock_rows()
        engine, submitted, completed, received = (
            table.view(n) for n in ("engine", "submitted", "completed", "received")
        )
        found: dict = {}
        for lo in range(0, len(table), CLOCK_ROWS):  # a slice at a time: the temporaries stay small
            rows = slice(lo, lo + CLOCK_ROWS)
            kept = done[rows]
            columns = [c[rows][kept] for c in (engine, submitted)] + [table.effective_start(rows)[kept]]
            columns += [c[rows][kept] for c in (completed, received)]
            for key, bounds in clocks.table_bounds(*columns, NIL).items():
                found.setdefault(key, clocks.Bounds()).merge(bounds)
        return found

    def to_client_clock(self, moved: dict | None = None) -> None:
        """Put the times of engines whose clock differs from the client's on the client's
        (``clocks.shifts``, or ``moved`` when given: ``clock_shifts`` says by how much);
        ``clock_offsets`` stays as logged."""
        if self.clock_shifts:
            return
        bounds = self.clock_bounds()
        moved = self.estimated_shifts(bounds) if moved is None else moved
        if moved:
            clocks.to_client_clock(self.table, moved, NIL)
            self._raw_clock_bounds, self.clock_shifts = bounds, moved

    def view_shifts(self) -> dict:
        """``{engine key: µs}`` a view moves each engine's times by to show them on the client's
        clock: what ``to_client_clock`` would move, for a state whose times are as logged (a live
        viewer's, re-estimated as its log grows, at most every ``VIEW_SHIFTS_EVERY`` seconds: the
        bounds read every task); none for replay()'s, on the clock it was asked for."""
        if self.clock is not None:
            return {}
        events, at, found = self._view_shifts
        if events != self.events and (events is None or time.monotonic() - at >= VIEW_SHIFTS_EVERY):
            self._view_shifts = (self.events, time.monotonic(), self.estimated_shifts())
        return self._view_shifts[2]

    def estimated_shifts(self, bounds: dict | None = None) -> dict:
        """``{engine key: µs or clocks.Drift}`` that put each engine's times (as logged) on the
        client's clock (``clocks.shifts``): a ``Drift`` of windows for an engine no one offset fits."""
        bounds = self.clock_bounds() if bounds is None else bounds
        return clocks.shifts(bounds, {key: self._drift(key) for key in clocks.crossed(bounds)})

    def _drift(self, key) -> clocks.Drift:
        """One engine's shift window by window (``clocks.drift``), from its completed tasks."""
        table = self.table
        rows = self._clock_rows() & (table.view("engine") == key)
        submitted, completed, received = (table.view(n)[rows] for n in ("submitted", "completed", "received"))
        return clocks.drift(submitted, table.effective_start()[rows], completed, received, NIL)

    def _clock_rows(self) -> np.ndarray:
        """The tasks whose times bound their engine's clock: completed, and not resubmissions
        (``clocks.py`` says why)."""
        table = self.table
        rows = table.view("outcome") != NONE
        if table.resubmit_of:
            rows[list(table.resubmit_of)] = False
        return rows

    def clock_offsets(self) -> dict:
        """``{engine key: clocks.ClockOffset}``: how far each engine's clock runs ahead of the client's."""
        return {key: clocks.ClockOffset.of(bounds) for key, bounds in sorted(self.clock_bounds().items())}

    def failures(self) -> list:
        """Every failed attempt, in time order: ``(task, engine_id, t_us, ename, evalue, traceback)``.

        A task that failed gives its final error (and any earlier attempts that
        raised); a task retried to success gives the attempts that failed.
        """
        table = self.table
        outcome = table.view("outcome")
        rows = set(np.flatnonzero((outcome != NONE) & (outcome != OK)).tolist()) | set(table.attempt_errors)
        found = []
        for row in sorted(rows):
            task = Task(table, row)
            attempts = list(task.attempt_errors_us or ())
            final = task.outcome in ("error", "aborted")
            if final and not _said_by_attempt(task, attempts):
                attempts.append((task.engine_id, task.completed_us or task.received_us, task.ename, task.evalue, None))
            for engine_id, t_us, ename, evalue, traceback in attempts:
                if final and ename == task.ename and evalue == task.evalue:
                    traceback = traceback or task.traceback
                found.append((task, engine_id, t_us, ename, evalue, traceback))
        found.sort(key=lambda f: (f[2] is None, f[2] or 0))
        return found

    def resubmit_chain(self, msg_id: str) -> list:
        """The msg_ids of a task's resubmissions, from the first submission to the last (one: none)."""
        table = self.table

        def step(links, msg_id):
            return links.get(table.find(msg_id))

        chain = [msg_id]
        while step(table.resubmit_of, chain[0]) not in (None, *chain):
            chain.insert(0, step(table.resubmit_of, chain[0]))
        while step(table.resubmitted, chain[-1]) not in (None, *chain):
            chain.append(step(table.resubmitted, chain[-1]))
        return chain

    def failed_attempts(self) -> int:
        """How many entries ``failures()`` lists, counted without listing them."""
        table = self.table
        outcome = table.view("outcome")
        final = (outcome != NONE) & (outcome != OK)
        n = int(final.sum()) + sum(map(len, table.attempt_errors.values()))
        for row, attempts in table.attempt_errors.items():
            if final[row] and _said_by_attempt(Task(table, row), attempts):
                n -= 1
        return n


def _total(values: np.ndarray) -> int:
    """The sum of non-negative int64s, exact even past what an int64 holds (sizes a log made up)."""
    if not len(values):
        return 0
    if int(values.max()) <= (2**63 - 1) // len(values):
        return int(values.sum())
    return sum(values.tolist())


def _said_by_attempt(task: Task, attempts) -> bool:
    """A failed task's final error is one of its attempts' (the same error on the same engine)."""
    return any(a[2] == task.ename and a[3] == task.evalue and a[0] == task.engine_id for a in attempts)


def _near(rows, keys) -> list:
    """The ``rows`` whose ``keys`` (numbers) are among the ``tally.LISTED`` smallest, ties included."""
    from .tally import LISTED

    if not len(rows):
        return []
    k = min(LISTED, len(rows))
    return rows[keys <= np.partition(keys, k - 1)[k - 1]].tolist()


def replay(*paths, until=None, clock="client", progress=None) -> State:
    """Fold one or more logs into one ``State`` (tasks merged by msg_id).

    ``until`` (a datetime, an ISO 8601 string, or a time relative to the
    recording's start such as ``"+90s"``) rebuilds the state as it was at that
    moment: what was queued, running, done. Damage is listed in ``state.damage``.
    ``clock="client"`` puts the times of engines whose clock differs from the
    client's on the client's (``State.to_client_clock``); ``"engine"`` keeps
    every time on the clock it came from, as the log has it. ``progress(done, total)``,
    if given, is told the bytes read of all the logs after each frame (the CLI's progress bar).
    """
    if not paths:
        raise TypeError("replay() needs at least one log")
    if clock not in CLOCKS:
        raise ValueError(f"clock must be one of {', '.join(CLOCKS)}, not {clock!r}")
    readers = [LogReader(path) for path in paths]
    state = State()
    clip = moved = None
    if until is not None:
        from .query import is_relative, parse_until

        relative = isinstance(until, str) and is_relative(until)
        # the run's start, and its engines' clocks, from all of it
        whole = replay(*paths, clock="engine") if relative or clock == "client" else None
        if isinstance(until, str):
            origin = None
            if relative:  # from the start of the run, as ``summary()`` gives it: all the logs together
                start = whole.span_us()[0]
                if start is None:
                    start = min((r.header["t0"] for r in readers if r.header), default=0)
                origin = from_us(start)
            until = parse_until(until, origin)
        moved = whole.estimated_shifts() if clock == "client" else {}
        clip = _Clip(ev.to_us(until), moved, whole)
    damage = []
    collecting = gc.isenabled()
    gc.disable()  # the fold makes millions of objects and no cycles: the collector only costs time
    total, base = sum(reader.size for reader in readers), 0
    try:
        for source, reader in enumerate(readers):
            state.source = source
            before = len(state.damage)
            for offset, frame in reader.frames(ahead=reader.size >= READ_AHEAD_FROM):
                state.fold_frame(offset, frame, None if clip is None else clip(frame))
                if progress is not None:
                    progress(base + offset, total)
            base += reader.size
            found = reader.damage + state.damage[before:]
            del state.damage[before:]
            if len(readers) > 1:
                found = [dataclasses.replace(d, path=str(reader.path)) for d in found]
            damage += sorted(found, key=lambda d: d.offset)
    finally:
        if collecting:
            gc.enable()
    state.damage = damage
    state.paths = tuple(str(path) for path in paths)
    if len(readers) > 1:
        state.marks.sort(key=lambda mark: mark.t_us)  # several logs: one timeline
    if clip is not None:
        state.until = from_us(clip.until)
        state._keep_begun()
    if clock == "client":
        state.to_client_clock(moved)
    state.clock = clock
    return state


class _Clip:
    """Filters a frame's rows to what had happened by ``until`` (µs since the epoch).

    Events after it are dropped; a task that completed after it but had started
    before is kept as started (running).
    """

    # The position of each kind's one time; complete, with three, is clipped on its own.
    TIME_AT = {kind.code: kind.positions("time")[0] for kind in ev.KINDS if len(kind.positions("time")) == 1}
    # The kinds whose times are an engine's (complete: started and completed), and where their engine is
    # (none: the task's, as the logs folded whole have it).
    ENGINE_AT = {
        ev.START: START_ENGINE,
        ev.COMPLETE: COMPLETE_ENGINE,
        ev.ATTEMPT_ERROR: ATTEMPT_FIELDS[1],
        ev.STDOUT: None,
        ev.STDERR: None,
        ev.ENGINE_INFO: INFO_ENGINE,
        ev.ENGINE_SAMPLE: SAMPLE_ENGINE,
    }

    def __init__(self, until_us: int, moved: dict | None = None, whole: "State | None" = None):
        """``moved``: the shifts that put each engine's clock on the client's (``clocks.shifts`` of
        ``whole``, the logs folded whole), so that each event is cut at the client's ``until``."""
        self.until = until_us
        self.moved = moved or {}
        self.whole = whole

    def _shift(self, frame, a, kind) -> int:
        """The µs an event's engine-clock times run ahead of the client's (at its time, for an
        engine whose clock drifted)."""
        at = self.ENGINE_AT[kind]
        engine = a[at] if at is not None and len(a) > at else None
        if engine is None and kind != ev.ENGINE_INFO and kind != ev.ENGINE_SAMPLE:
            row = self.whole.table.find(frame.msg_ids[a[1]])
            engine = None if row is None else self.whole.table.engine[row]
        shift = self.moved.get(engine, 0)
        if isinstance(shift, clocks.Drift):
            at = COMPLETE_STARTED if kind == ev.COMPLETE else self.TIME_AT[kind]
            t = a[at] if len(a) > at else None
            shift = shift.values[0] if t is None else shift.at(t + frame.base)
        return shift

    def __call__(self, frame):
        client = self.until - frame.base  # compared with the frame's relative times
        moved = self.moved
        for a in frame.rows():
            kind = a[0]
            until = client + self._shift(frame, a, kind) if moved and kind in self.ENGINE_AT else client
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
                if received is not None and received > client:  # not yet received by the client
                    a = a[:COMPLETE_RECEIVED] + (None,) + tuple(a[COMPLETE_RECEIVED + 1 :])
            elif kind in self.TIME_AT:
                t = a[self.TIME_AT[kind]]
                if t is not None and t > until:
                    continue
            yield a
