"""The tasks of a state as typed columns: one row per task, a ``Task`` a view of one row.

A row costs about 95 bytes, so ten million tasks fit in a gigabyte. Each column
is an ``array.array``: one value is read or written from Python as fast as a
list's (the row fold, ``Task`` views), and numpy views the same memory without
copying (the batch fold, the sinks). A column's nil is ``NIL`` (64-bit columns)
or ``NONE`` (codes and strings); what few tasks have (output, errors, retries)
lives in dicts keyed by row. ``Tasks`` is ``state.tasks``: a mapping from msg_id
to ``Task``, in the order the log first named each task.
"""

from __future__ import annotations

import warnings
from array import array
from collections import namedtuple
from collections.abc import Mapping
from functools import partial

import numpy as np

from .events import QUEUES, STATUSES, from_us, split_msg_id
from .payload import IntColumn

NIL = -(2**63)  # nil in a 64-bit column: times (µs), engine ids, chunks, int targets, suffixes
NONE = -1  # nil in a code column (outcome, queue) or a string column (an index into ``strings``)
# Every column, once: its array type code. 'q' columns are nil at NIL, the others at NONE.
COLUMNS = {
    "prefix": "i",  # the msg_id's prefix, an index into ``prefixes``
    "suffix": "q",  # its numeric suffix; NIL: the msg_id is the prefix alone
    "submitted": "q",  # client clock
    "start": "q",  # engine clock, the latest start (iopub busy) seen
    "started": "q",  # engine clock, the engine's own stamp from the reply
    "completed": "q",  # engine clock
    "received": "q",  # client clock
    "engine": "q",
    "outcome": "b",  # an index into events.STATUSES once the task completed
    "queue": "b",  # an index into events.QUEUES
    "function": "i",
    "label": "i",
    "name": "i",
    "target": "q",  # an int target (other targets are in ``targets``)
    "chunk": "q",
    # sizes in bytes (``set_size``): of the request's buffers (function and arguments, serialised)
    # and of the reply's (the result); LARGE: 2 GiB or more, in ``large_request_bytes`` / ``large_reply_bytes``
    "request_bytes": "i",
    "reply_bytes": "i",
}
SIZES = ("request_bytes", "reply_bytes")
LARGE = -2  # in a size column: the size is in the table's ``large_<column>`` dict
LARGE_FROM = 2**31
# the fields few tasks have, each a dict row -> value in TaskTable (described there)
SPARSE = (
    "targets",
    "errors",
    "stdout",
    "stderr",
    "attempts",
    "attempt_errors",
    "resubmitted",
    "resubmit_of",
    "broadcast",
    "source",
    "depends",
    "large_request_bytes",
    "large_reply_bytes",
)
# where a task is, in the order the pages number them: an outcome, else running or pending
STATUS_ORDER = (*STATUSES, "running", "pending")
FAILURES_FIRST = ("error", "aborted", "running", "pending", "ok")  # the order a summary lists them in
NILS = {name: NIL if code == "q" else NONE for name, code in COLUMNS.items()}
DTYPES = {"b": np.int8, "i": np.int32, "q": np.int64}
_NIL_ROWS = {code: array(code) for code in DTYPES}  # rows of nils to grow columns by, shared
GROW_BY = 1024  # rows the columns grow by at least
FEW_TASKS = 128  # a frame naming fewer tasks finds their rows one by one
# Rows by suffix are kept in a dense array unless the suffixes seen are this much sparser
# than the rows they index: then in a dict.
DENSE_SLACK = 1 << 16


def error_text(ename: str | None, evalue: str | None) -> str | None:
    """How a task's error reads: ``"ename: evalue"``, the name alone, or None (no error)."""
    if ename is None:
        return None
    return f"{ename}: {evalue}" if evalue else ename


Attempt = namedtuple("Attempt", "engine_id t")
AttemptError = namedtuple("AttemptError", "engine_id t ename evalue traceback")


class TaskTable:
    """The columns, the strings they index, the sparse fields, and the index from msg_id to row."""

    def __init__(self):
        for name, code in COLUMNS.items():
            setattr(self, name, array(code))
        self._bind()
        self.strings: list = []  # function names, labels and names, each once
        self._string_ids: dict = {}
        self.prefixes: list = []  # msg_id prefixes, each once
        self._prefix_ids: dict = {}
        self._by_suffix: list = []  # per prefix: its rows by suffix
        self._alone: dict = {}  # msg_id -> row, for msg_ids with no numeric suffix
        # sparse fields: row -> value
        self.targets: dict = {}  # targets that are not one int (a list of engines)
        self.errors: dict = {}  # (ename, evalue, traceback)
        self.stdout: dict = {}  # [chunks]
        self.stderr: dict = {}
        self.attempts: dict = {}  # [(engine_id, start_us), ...] once a task starts twice
        self.attempt_errors: dict = {}  # [(engine_id, t_us, ename, evalue, traceback), ...]
        self.resubmitted: dict = {}  # msg_id of the task that replaced this one
        self.resubmit_of: dict = {}  # msg_id of the task this one replaced
        self.broadcast: dict = {}  # msg_id of the broadcast request a per-engine task belongs to
        self.source: dict = {}  # which of several merged logs gave the task's output and attempts
        self.depends: dict = {}  # [(msg_id it depends on, follow, any), ...]: ipyparallel's after / follow
        self.samples: dict = {}  # engine key -> [(t µs, cpu %, rss, available)]: its resources (engine_stats)
        self._sample_arrays: dict = {}  # engine key -> (its samples, how many, times, rss), for peak_rss
        self.large_request_bytes: dict = {}  # sizes too large for their column (``set_size``)
        self.large_reply_bytes: dict = {}

    def _bind(self) -> None:
        """``arrays``: the columns in COLUMNS order (what the row fold unpacks). Rows past
        ``size`` are room to grow into (``capacity`` in all), already nil."""
        self.arrays = tuple(getattr(self, name) for name in COLUMNS)
        self.size = self.capacity = len(self.prefix)

    def __len__(self) -> int:
        return self.size

    def view(self, name: str) -> np.ndarray:
        """A numpy array over a column's memory (its rows). Drop it before the table grows."""
        return np.frombuffer(getattr(self, name), DTYPES[COLUMNS[name]])[: self.size]

    def effective_start(self, rows: slice = slice(None)) -> np.ndarray:
        """Each task's start (of ``rows``): the engine's own stamp from the reply, else the latest start seen."""
        started = self.view("started")[rows]
        return np.where(started != NIL, started, self.view("start")[rows])

    def start_of(self, row: int) -> int:
        """One task's ``effective_start`` (NIL: it never started)."""
        started = self.started[row]
        return self.start[row] if started == NIL else started

    def statuses(self) -> np.ndarray:
        """Each task's status as an index into STATUS_ORDER."""
        outcome = self.view("outcome")
        waiting = np.where(self.view("start") != NIL, len(STATUSES), len(STATUSES) + 1)
        return np.where(outcome != NONE, outcome, waiting).astype(np.int8)

    # -- strings --------------------------------------------------------------------------
    def string(self, text) -> int:
        """The index of ``text`` in ``strings`` (added if new); NONE for None."""
        if text is None:
            return NONE
        i = self._string_ids.get(text)
        if i is None:
            i = self._string_ids[text] = len(self.strings)
            self.strings.append(text)
        return i

    def text(self, i: int):
        return None if i == NONE else self.strings[i]

    def _prefix(self, text: str) -> int:
        i = self._prefix_ids.get(text)
        if i is None:
            i = self._prefix_ids[text] = len(self.prefixes)
            self.prefixes.append(text)
            self._by_suffix.append(_Suffixes())
        return i

    # -- rows -------------------------------------------------------------------------------
    def msg_id(self, row: int) -> str:
        text, suffix = self.prefixes[self.prefix[row]], self.suffix[row]
        return text if suffix == NIL else text + str(suffix)

    def find(self, msg_id) -> int | None:
        """The row of ``msg_id``, or None."""
        if type(msg_id) is not str:
            return None
        prefix, suffix = split_msg_id(msg_id)
        if type(suffix) is not int:
            return self._alone.get(msg_id)
        i = self._prefix_ids.get(prefix)
        return None if i is None else self._by_suffix[i].get(suffix)

    def row(self, msg_id: str) -> int:
        """The row of ``msg_id``, added if new."""
        prefix, suffix = split_msg_id(msg_id)
        return self._pair_row(prefix, suffix) if type(suffix) is int else self._pair_row(msg_id, None)

    def _pair_row(self, text: str, suffix) -> int:
        """The row of a canonical (prefix, suffix) pair (suffix None: ``text`` is the msg_id), added if new."""
        if suffix is None:
            row = self._alone.get(text)
            if row is None:
                row = self._alone[text] = self._add_row(self._prefix(text), NIL)
            return row
        i = self._prefix(text)
        return self._by_suffix[i].row(suffix, self, i)

    def _add_row(self, prefix: int, suffix: int) -> int:
        row = self.size
        if row == self.capacity:
            self._reserve(1)
        self.prefix[row], self.suffix[row] = prefix, suffix
        self.size += 1
        return row

    def frame_rows(self, frame):
        """The row of each of a frame's tasks (rows added for new ones), in the frame's task order:
        a numpy array for a frame of many tasks in typed columns, else a list."""
        prefixes, suffixes, strings = frame.prefixes, frame.suffixes, frame.strings
        if not frame.canonical:
            return [self.row(msg_id) for msg_id in frame.msg_ids]
        typed = type(prefixes) is IntColumn and type(suffixes) is IntColumn
        if not typed or len(prefixes) < FEW_TASKS:  # a few tasks: one by one (numpy's fixed costs outweigh it)
            rows = []
            prefix_ids, by_suffix = self._prefix_ids, self._by_suffix
            for p, s in zip(prefixes, suffixes):
                i = prefix_ids.get(strings[p]) if s is not None else None
                rows.append(self._pair_row(strings[p], s) if i is None else by_suffix[i].row(s, self, i))
            return rows
        return self._typed_frame_rows(prefixes, suffixes, strings)

    def _typed_frame_rows(self, prefixes, suffixes, strings) -> np.ndarray:
        p = prefixes.array
        s = suffixes.array.astype(np.int64)
        alone = (s == suffixes.nil) if suffixes.nils else None
        used = [prefixes.lo] if prefixes.lo == prefixes.hi else np.unique(p).tolist()
        ids = np.full(len(strings), NONE, np.int32)
        rows = np.full(len(p), NONE, np.int64)
        numbered = None if alone is None else ~alone
        for i in used:
            selected = p == i if len(used) > 1 else None
            if numbered is not None:
                selected = numbered if selected is None else selected & numbered
                if not selected.any():
                    continue
            ids[i] = self._prefix(strings[i])
            index = self._by_suffix[ids[i]]
            rows[slice(None) if selected is None else selected] = index.lookup(s if selected is None else s[selected])
        if alone is not None:
            for k in np.flatnonzero(alone).tolist():
                text = strings[p[k]]
                ids[p[k]] = self._prefix(text)
                found = self._alone.get(text)
                rows[k] = NONE if found is None else found
        new = np.flatnonzero(rows == NONE)
        if len(new):
            first = len(self)
            rows[new] = np.arange(first, first + len(new))
            self._grow(len(new))
            self.view("prefix")[first:] = ids[p[new]]
            suffix = s[new]
            if alone is not None:
                suffix[alone[new]] = NIL
                for k in new[alone[new]].tolist():
                    self._alone[strings[p[k]]] = int(rows[k])
            self.view("suffix")[first:] = suffix
            for i in used:
                selected = ids[p[new]] == ids[i]
                if alone is not None:
                    selected &= ~alone[new]
                if selected.any():
                    self._by_suffix[ids[i]].assign(suffix[selected], rows[new][selected])
        return rows

    def _grow(self, n: int) -> None:
        """Add ``n`` rows of nils."""
        self._reserve(n)
        self.size += n

    def _reserve(self, n: int) -> None:
        """Room for ``n`` more rows: a few at a time, the columns grow by a block (a log of
        small frames adds its tasks one by one); many, by just as many (a big log stays tight)."""
        more = max(n - (self.capacity - self.size), GROW_BY) if self.capacity - self.size < n else 0
        if not more:
            return
        if len(_NIL_ROWS["q"]) < more:
            for code in _NIL_ROWS:
                _NIL_ROWS[code] = array(code, [NIL if code == "q" else NONE]) * max(more, 2 * len(_NIL_ROWS[code]))
        for name, code in COLUMNS.items():
            nils = _NIL_ROWS[code]
            getattr(self, name).frombytes(memoryview(nils).cast("B")[: more * nils.itemsize])
        self.capacity += more

    # -- what sparse fields hold ------------------------------------------------------------
    def set_target(self, row: int, target) -> None:
        """An int target goes in its column, others (a list of engines) in ``targets``."""
        single = type(target) is int
        self.target[row] = target if single else NIL
        if single or target is None:
            if self.targets:
                self.targets.pop(row, None)
        else:
            self.targets[row] = target

    def set_size(self, name: str, row: int, size) -> None:
        """A size column's value (``SIZES``): in the column (4 bytes a task), or if it is 2 GiB
        or more in the column's ``large_`` dict. None (or a negative size) is not measured."""
        column, large = getattr(self, name), getattr(self, "large_" + name)
        if column[row] == LARGE:
            del large[row]
        if size is None or size < 0:
            column[row] = NONE
        elif size < LARGE_FROM:
            column[row] = size
        else:
            column[row] = LARGE
            large[row] = size

    def put_sizes(self, name: str, rows: np.ndarray, sizes: np.ndarray) -> None:
        """``set_size`` for many rows at once; NIL sizes are left out."""
        present = (sizes != NIL) & (sizes >= 0)
        rows, sizes = rows[present], sizes[present]
        large, found = sizes >= LARGE_FROM, getattr(self, "large_" + name)
        for row in rows.tolist() if found else ():
            found.pop(row, None)
        self.view(name)[rows] = np.where(large, LARGE, sizes)
        if large.any():
            found.update(zip(rows[large].tolist(), sizes[large].tolist()))

    def sizes(self, name: str, start: int = 0, stop: int | None = None) -> np.ndarray:
        """A size column's rows ``start:stop`` as int64 bytes, NIL where not measured."""
        values = self.view(name)[start:stop].astype(np.int64)
        values[values == NONE] = NIL
        stop = len(self) if stop is None else min(stop, len(self))
        for row, size in getattr(self, "large_" + name).items():
            if start <= row < stop:
                values[row - start] = size
        return values

    def peak_rss(self, row: int) -> int | None:
        """The largest resident memory of a task's engine that the samples taken while it ran
        show (to the engine's last sample, for a task that never completed: an engine that died)."""
        times, rss = self._sampled(self.engine[row])
        began = self.start_of(row)
        if times is None or began == NIL:
            return None
        ended = self.completed[row]
        found = rss[
            np.searchsorted(times, began) : len(times) if ended == NIL else np.searchsorted(times, ended, "right")
        ]
        found = found[found >= 0]
        return int(found.max()) if len(found) else None

    def _sampled(self, engine: int):
        """(times, resident bytes, -1 where none) of an engine's samples as arrays, kept until it has
        more (or they are replaced: moved onto the client's clock)."""
        samples = self.samples.get(engine)
        if not samples:
            return None, None
        cached = self._sample_arrays.get(engine)
        if cached is None or cached[0] is not samples or cached[1] != len(samples):
            times = np.fromiter((s[0] for s in samples), np.int64, len(samples))
            rss = np.fromiter((-1 if s[2] is None else s[2] for s in samples), np.int64, len(samples))
            order = np.argsort(times, kind="stable")  # (merged logs, moved clocks: keep them in time order)
            cached = self._sample_arrays[engine] = (samples, len(samples), times[order], rss[order])
        return cached[2], cached[3]

    def keep(self, kept: np.ndarray) -> np.ndarray:
        """Keep only the rows where ``kept`` is true (in order); returns each old row's new row (or NONE)."""
        new_of = np.full(len(self), NONE, np.int64)
        new_of[kept] = np.arange(int(kept.sum()))
        for name, code in COLUMNS.items():
            values = self.view(name)[kept].tobytes()
            setattr(self, name, array(code, values))
        self._bind()
        for name in SPARSE:
            setattr(self, name, {int(new_of[r]): v for r, v in getattr(self, name).items() if kept[r]})
        self._alone = {m: int(new_of[r]) for m, r in self._alone.items() if kept[r]}
        self._by_suffix = [_Suffixes() for _ in self.prefixes]
        prefix, suffix = self.view("prefix"), self.view("suffix")
        numbered = suffix != NIL
        for i, index in enumerate(self._by_suffix):
            rows = np.flatnonzero(numbered & (prefix == i))
            if len(rows):
                index.assign(suffix[rows], rows)
        return new_of


class _Suffixes:
    """Rows by suffix for one msg_id prefix: a dense array over the suffixes seen
    (ipyparallel's are a counter), or a dict if they are far apart. The dense rows are an
    ``array.array`` (one read or write from Python is cheap) that numpy views for many."""

    __slots__ = ("lo", "rows", "count", "sparse")

    def __init__(self):
        self.lo = 0
        self.rows = array("i")
        self.count = 0
        self.sparse = None

    def get(self, suffix: int):
        if self.sparse is not None:
            return self.sparse.get(suffix)
        i = suffix - self.lo
        if 0 <= i < len(self.rows):
            row = self.rows[i]
            return None if row == NONE else row
        return None

    def row(self, suffix: int, table: TaskTable, prefix: int) -> int:
        """The row of ``suffix``, a new row of ``table`` (for msg_id prefix ``prefix``) if it has none."""
        if self.sparse is None:
            i = suffix - self.lo
            rows = self.rows
            if 0 <= i < len(rows):
                row = rows[i]
                if row == NONE:
                    row = rows[i] = table._add_row(prefix, suffix)
                    self.count += 1
                return row
        row = self.get(suffix)
        if row is None:
            row = table._add_row(prefix, suffix)
            self.put(suffix, row)
        return row

    def put(self, suffix: int, row: int) -> None:
        i = suffix - self.lo
        if self.sparse is None and 0 <= i < len(self.rows):
            self.rows[i] = row
        else:
            self._cover(suffix, suffix, 1)
            if self.sparse is not None:
                self.sparse[suffix] = row
            else:
                self.rows[suffix - self.lo] = row
        self.count += 1

    def lookup(self, suffixes: np.ndarray) -> np.ndarray:
        """The row of each suffix, NONE where there is none."""
        if self.sparse is not None:
            get = self.sparse.get
            return np.fromiter((get(s, NONE) for s in suffixes.tolist()), np.int64, len(suffixes))
        rows = np.frombuffer(self.rows, np.int32)
        i = suffixes - self.lo
        inside = (i >= 0) & (i < len(rows))
        if inside.all():
            return rows[i].astype(np.int64)
        out = np.full(len(suffixes), NONE, np.int64)
        out[inside] = rows[i[inside]]
        return out

    def assign(self, suffixes: np.ndarray, rows: np.ndarray) -> None:
        if not len(suffixes):
            return
        self._cover(int(suffixes.min()), int(suffixes.max()), len(suffixes))
        if self.sparse is not None:
            self.sparse.update(zip(suffixes.tolist(), rows.tolist()))
        else:
            np.frombuffer(self.rows, np.int32)[suffixes - self.lo] = rows
        self.count += len(suffixes)

    def _cover(self, lo: int, hi: int, adding: int) -> None:
        """Make room for suffixes ``lo`` to ``hi`` (or turn to a dict if they are too far apart)."""
        if self.sparse is not None:
            return
        rows = self.rows
        if len(rows) and self.lo <= lo and hi < self.lo + len(rows):
            return
        new_lo = min(lo, self.lo) if self.count else lo
        new_hi = max(hi, self.lo + len(rows) - 1) if self.count else hi
        if new_hi - new_lo + 1 > 4 * (self.count + adding) + DENSE_SLACK:
            found = np.frombuffer(rows, np.int32)
            at = np.flatnonzero(found != NONE)
            self.sparse = dict(zip((at + self.lo).tolist(), found[at].tolist()))
            self.rows = None
            return
        size = new_hi - new_lo + 1
        grown = array("i", [NONE]) * (size + size // 2 + 64)  # room for the counter to go on
        if self.count:
            grown[self.lo - new_lo : self.lo - new_lo + len(rows)] = rows
        self.lo, self.rows = new_lo, grown


def _value(v):
    return None if v == NIL else v


class Task:
    """One task, a view of its row, with attributes named like the Hub's TaskRecord.

    ``submitted``/``received`` are the client's clock, ``started``/``completed``
    the engine's. ``started`` is the engine's own stamp from the reply when the
    task completed, else the latest start (iopub ``busy``) seen. ``status`` is
    where the task is (pending, running, ok, error, aborted); ``outcome`` is its
    result once it completed (ok, error, aborted), else None.
    """

    __slots__ = ("_table", "row")

    def __init__(self, table: TaskTable, row: int):
        self._table, self.row = table, row

    def __eq__(self, other):
        return type(other) is Task and other.row == self.row and other._table is self._table

    def __hash__(self):
        return self.row

    msg_id = property(lambda self: self._table.msg_id(self.row))
    name = property(lambda self: self._table.text(self._table.name[self.row]))
    label = property(lambda self: self._table.text(self._table.label[self.row]))
    function = property(lambda self: self._table.text(self._table.function[self.row]))
    queue = property(lambda self: _code(QUEUES, self._table.queue[self.row]))
    outcome = property(lambda self: _code(STATUSES, self._table.outcome[self.row]))
    chunk = property(lambda self: _value(self._table.chunk[self.row]))
    request_bytes = property(lambda self: self._size("request_bytes"))
    reply_bytes = property(lambda self: self._size("reply_bytes"))

    peak_rss = property(lambda self: self._table.peak_rss(self.row))

    def _size(self, name: str) -> int | None:
        size = getattr(self._table, name)[self.row]
        if size == LARGE:
            return getattr(self._table, "large_" + name)[self.row]
        return None if size == NONE else size

    engine_id = property(lambda self: _value(self._table.engine[self.row]))
    submitted_us = property(lambda self: _value(self._table.submitted[self.row]))
    start_us = property(lambda self: _value(self._table.start[self.row]))
    started_us = property(lambda self: _value(self._table.started[self.row]))
    completed_us = property(lambda self: _value(self._table.completed[self.row]))
    received_us = property(lambda self: _value(self._table.received[self.row]))
    ename = property(lambda self: self._table.errors.get(self.row, (None, None, None))[0])
    evalue = property(lambda self: self._table.errors.get(self.row, (None, None, None))[1])
    traceback = property(lambda self: self._table.errors.get(self.row, (None, None, None))[2])
    stdout_chunks = property(lambda self: self._table.stdout.get(self.row))
    stderr_chunks = property(lambda self: self._table.stderr.get(self.row))
    attempts_us = property(lambda self: self._table.attempts.get(self.row))
    attempt_errors_us = property(lambda self: self._table.attempt_errors.get(self.row))

    @property
    def attempts(self) -> list | None:
        """``Attempt(engine_id, t)`` of each time it started (UTC datetimes), once it started twice."""
        found = self.attempts_us
        return None if found is None else [Attempt(e, from_us(t)) for e, t in found]

    @property
    def attempt_errors(self) -> list | None:
        """``AttemptError(engine_id, t, ename, evalue, traceback)`` of each failed attempt (``t`` a UTC datetime)."""
        found = self.attempt_errors_us
        return None if found is None else [AttemptError(e, from_us(t), *rest) for e, t, *rest in found]

    resubmitted = property(lambda self: self._table.resubmitted.get(self.row))
    resubmit_of = property(lambda self: self._table.resubmit_of.get(self.row))
    broadcast = property(lambda self: self._table.broadcast.get(self.row))
    depends = property(lambda self: self._table.depends.get(self.row, ()))
    after = property(lambda self: [on for on, follow, _ in self.depends if not follow] or None)
    follow = property(lambda self: [on for on, follow, _ in self.depends if follow] or None)

    @property
    def target(self):
        target = self._table.target[self.row]
        return self._table.targets.get(self.row) if target == NIL else target

    submitted = property(lambda self: from_us(self.submitted_us))

    @property
    def effective_start_us(self) -> int | None:
        """When it started: the engine's own stamp from the reply, else the latest start (busy) seen."""
        return _value(self._table.start_of(self.row))

    started = property(lambda self: from_us(self.effective_start_us))
    completed = property(lambda self: from_us(self.completed_us))
    received = property(lambda self: from_us(self.received_us))
    stdout = property(lambda self: "".join(self.stdout_chunks or ()))
    stderr = property(lambda self: "".join(self.stderr_chunks or ()))

    @property
    def error(self) -> str | None:
        """``"ename: evalue"`` for a task that failed, else None."""
        ename, evalue, _ = self._table.errors.get(self.row, (None, None, None))
        return error_text(ename, evalue)

    @property
    def display_name(self) -> str:
        """What views call the task: its name, else its ipyparallel label, function, msg_id."""
        return self.name or self.label or self.function or self.msg_id

    @property
    def status(self) -> str:
        """Where the task is: pending (submitted), running, or its ``outcome`` once it has one."""
        table, row = self._table, self.row
        outcome = table.outcome[row]
        if outcome != NONE:
            return STATUSES[outcome]
        return "pending" if table.start[row] == NIL else "running"

    @property
    def state(self) -> str:
        """Deprecated: ``status``."""
        warnings.warn("Task.state is now Task.status", DeprecationWarning, stacklevel=2)
        return self.status

    @property
    def run_seconds(self) -> float | None:
        """Execution time, completed - started, both on the engine's clock."""
        start, completed = self.effective_start_us, self.completed_us
        return None if start is None or completed is None else (completed - start) / 1e6

    @property
    def wall_seconds(self) -> float | None:
        """Round trip, received - submitted, both on the client's clock."""
        submitted, received = self.submitted_us, self.received_us
        return None if submitted is None or received is None else (received - submitted) / 1e6

    @property
    def queue_seconds(self) -> float | None:
        """Waiting time, started - submitted: mixes engine and client clocks."""
        start, submitted = self.effective_start_us, self.submitted_us
        return None if start is None or submitted is None else (start - submitted) / 1e6

    def to_dict(self) -> dict:
        """A JSON-ready record (times as ISO 8601 UTC strings)."""
        iso = lambda us: None if us is None else from_us(us).isoformat()  # noqa: E731
        attempt_errors, attempts = self.attempt_errors_us, self.attempts_us
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
            "started": iso(self.effective_start_us),
            "completed": iso(self.completed_us),
            "received": iso(self.received_us),
            "run_seconds": self.run_seconds,
            "queue_seconds": self.queue_seconds,
            "wall_seconds": self.wall_seconds,
            "error": self.error,
            "traceback": self.traceback,
            "attempt_errors": [
                {"engine_id": e, "t": iso(t), "ename": n, "evalue": v, "traceback": tb}
                for e, t, n, v, tb in attempt_errors
            ]
            if attempt_errors
            else None,
            "stdout": self.stdout,
            "stderr": self.stderr,
            "attempts": [[e, iso(t)] for e, t in attempts] if attempts else None,
            "resubmitted": self.resubmitted,
            "resubmit_of": self.resubmit_of,
            "broadcast": self.broadcast,
            "request_bytes": self.request_bytes,
            "reply_bytes": self.reply_bytes,
            "after": self.after,
            "follow": self.follow,
            "peak_rss": self.peak_rss,
        }

    def __repr__(self):
        name = self.name or self.function or ""
        where = "" if self.engine_id is None else f" on engine {self.engine_id}"
        took = "" if self.run_seconds is None else f", {self.run_seconds:.3f} s"
        error = f": {self.error!r}" if self.error else ""
        return f"<Task {repr(self.msg_id)[1:-1]} {name!r} {self.status}{where}{took}{error}>"


def _code(names, code):
    return None if code == NONE else names[code]


def _task_keys() -> tuple:
    """The keys of ``Task.to_dict()``, in order (read off a table of one task)."""
    table = TaskTable()
    return tuple(Task(table, table.row("x")).to_dict())


TASK_KEYS = _task_keys()


class Tasks(Mapping):
    """``state.tasks``: msg_id -> ``Task``, in the order the log first named each task."""

    def __init__(self, table: TaskTable):
        self._table = table

    def __len__(self) -> int:
        return len(self._table)

    def __getitem__(self, msg_id) -> Task:
        row = self._table.find(msg_id)
        if row is None:
            raise KeyError(msg_id)
        return Task(self._table, row)

    def __contains__(self, msg_id) -> bool:
        return self._table.find(msg_id) is not None

    def __iter__(self):
        return map(self._table.msg_id, range(len(self._table)))

    def values(self) -> Selection:
        return Selection(self._table, range(len(self._table)))

    def items(self):
        return zip(self, self.values())


class Selection:
    """Some tasks of a table (``rows``, in that order) as ``Task`` views: a sequence."""

    def __init__(self, table: TaskTable, rows):
        self._table, self.rows = table, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return map(partial(Task, self._table), self.rows.tolist() if hasattr(self.rows, "tolist") else self.rows)

    def __getitem__(self, i: int) -> Task:
        return Task(self._table, int(self.rows[i]))
