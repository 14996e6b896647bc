"""Folding runs of a frame's events at once, with numpy, when that is the same as folding them in turn.

A big run's frames are tens of thousands of submits, starts and completions of
tasks the state has not seen start or complete before, with their output and
names among them: then each column of the run can be written into the state's
columns in one step (``fold_batches``; output and names, which add up in order,
in one loop over the run's texts). Any run this does not cover exactly (a task
started or completed twice, a task completed before its start in the frame's
order, a second cluster's engines) and every other kind of event (engines
joining and leaving, marks, retries, close) is folded row by row in
``state.py``, the reference the tests hold this to. What a run changed is noted
for live viewers (``State.take_changes``) as the row fold notes it.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import events as ev
from .payload import IntColumn
from .table import NIL, NONE

BATCH_FROM = 256  # frames with fewer events are folded row by row: numpy's fixed costs outweigh it
_ONCE = frozenset({ev.SUBMIT, ev.START, ev.COMPLETE})  # kinds a run may hold once per task
_KINDS = _ONCE | {ev.STDOUT, ev.STDERR, ev.LABEL}  # the kinds a run is made of
_K = ev.KIND
SUBMIT = {f.key: i for i, f in enumerate(_K["submit"].fields)}
START = {f.key: i for i, f in enumerate(_K["start"].fields)}
COMPLETE = {f.key: i for i, f in enumerate(_K["complete"].fields)}
OUTPUT_TEXT = [f.key for f in _K["stdout"].fields].index("text")
LABEL_NAME = [f.key for f in _K["label"].fields].index("name")
_RECENT_COMPLETIONS, _RECENT_ERRORS = 2000, 20  # as long as State's deques


class _Part(NamedTuple):
    """One kind's events in a run: its columns (sliced to the run), the frame's task of each
    event, where each is in the frame, and the state's row of each."""

    columns: list
    task: np.ndarray
    where: np.ndarray
    rows: np.ndarray


def fold_batches(state, frame) -> bool:
    """Fold ``frame`` into ``state`` and say True, its long runs of submits, starts, completions,
    output and names a run at a time and the rest row by row; or change nothing and say False."""
    rows = state._rows
    if len(frame.order) < BATCH_FROM or type(rows) is not np.ndarray:
        return False
    order = np.frombuffer(frame.order, np.uint8)
    runs = _runs(np.isin(order, sorted(_KINDS)))
    if not runs:
        return False
    done = 0
    for start, stop in runs:
        if done < start:
            state.fold(frame.rows(done, start))
        if not _fold_run(state, frame, rows, order, start, stop):
            state.fold(frame.rows(start, stop))
        done = stop
    if done < len(order):
        state.fold(frame.rows(done, len(order)))
    return True


def _runs(batchable: np.ndarray) -> list:
    """(start, stop) of each run of at least BATCH_FROM batchable events."""
    edges = np.flatnonzero(np.diff(np.concatenate([[False], batchable, [False]]).astype(np.int8)))
    return [(a, b) for a, b in zip(edges[::2].tolist(), edges[1::2].tolist()) if b - a >= BATCH_FROM]


def _fold_run(state, frame, rows, order, start, stop) -> bool:
    """Fold the events ``start:stop`` of ``frame`` (all of ``_KINDS``) at once and say True, or
    change nothing and say False."""
    if state._offset:
        return False  # a second cluster's engine ids are shifted: row by row
    table = state.table
    tasks = len(rows)
    # each kind's events in the run (``_Part``)
    parts = {}
    for code in set(order[start:stop].tolist()):
        first = frame.order.count(code, 0, start)
        where = np.flatnonzero(order[start:stop] == code) + start
        columns = [_slice(c, first, first + len(where)) for c in frame.events[code]]
        task = _ints(columns[0])
        if code in _ONCE and np.bincount(task, minlength=tasks).max() > 1:
            return False  # a task twice in one kind: its events depend on each other
        parts[code] = _Part(columns, task, where, rows[task])
    start_part, complete_part = parts.get(ev.START), parts.get(ev.COMPLETE)
    outcome, begun = table.view("outcome"), table.view("start")
    if start_part is not None:
        at = start_part.rows
        if (begun[at] != NIL).any() or (outcome[at] != NONE).any():
            return False  # started or completed before: attempts and merged logs, row by row
    if complete_part is not None:
        task, where, at = complete_part.task, complete_part.where, complete_part.rows
        if (outcome[at] != NONE).any():
            return False  # completed again (merged logs)
        if start_part is not None:
            started_at = np.full(tasks, -1, np.int64)
            started_at[start_part.task] = start_part.where
            if (started_at[task] > where).any():
                return False  # completed before it started, in the frame's order
    del outcome, begun
    noted = state._changed
    if noted is not None:  # a live viewer is noting changes: the engines the tasks were on before
        touched = np.concatenate([part.rows for part in parts.values()])
        noted[2].update(table.view("engine")[touched].tolist())
    base = frame.base
    strings = np.array(state._string_ids or [NONE], np.int32)
    if ev.SUBMIT in parts:
        part = parts[ev.SUBMIT]
        _submit(state, table, part.columns, part.rows, base, strings, frame.strings)
    started_on = None
    if start_part is not None:
        started_on = _start(table, start_part.columns, start_part.rows, base)
    if complete_part is not None:
        _complete(state, table, complete_part.columns, complete_part.rows, base)
    _engines(state, table, start_part, complete_part, started_on)
    _texts(state, table, parts)
    if noted is not None:  # ... and after; every completion in the run is a task's first
        noted[0].update(touched.tolist())
        noted[2].update(table.view("engine")[touched].tolist())
        noted[2].discard(NIL)
        if complete_part is not None:
            noted[1].extend(complete_part.rows.tolist())
    state.events += stop - start
    return True


def _texts(state, table, parts) -> None:
    """The run's output, in order (chunks add up; a task's output comes from one of several
    merged logs), and its names (the last wins; a submit's label names only unnamed tasks,
    folded before these)."""
    streams = [(code, parts[code]) for code in (ev.STDOUT, ev.STDERR) if code in parts]
    if streams:
        where = np.concatenate([part.where for _, part in streams])
        rows = np.concatenate([part.rows for _, part in streams]).tolist()
        texts = [text for _, part in streams for text in part.columns[OUTPUT_TEXT]]
        codes = [code for code, part in streams for _ in range(len(part.where))]
        sources, source, recent = table.source, state.source, state._recent_output
        for i in np.argsort(where, kind="stable").tolist():
            row = rows[i]
            if sources.get(row) != source:
                if row in sources:
                    continue  # output another of the merged logs already gave
                sources[row] = source
            stdout = codes[i] == ev.STDOUT
            store = table.stdout if stdout else table.stderr
            chunks = store.get(row)
            if chunks is None:
                store[row] = [texts[i]]
            else:
                chunks.append(texts[i])
            recent.append((row, "stdout" if stdout else "stderr", texts[i]))
    if ev.LABEL in parts:
        part = parts[ev.LABEL]
        name, string = table.name, table.string
        for row, text in zip(part.rows.tolist(), part.columns[LABEL_NAME]):
            name[row] = string(text)


def _slice(column, start: int, stop: int):
    """Values ``start:stop`` of a column (a typed column stays typed)."""
    if start == 0 and stop == len(column):
        return column
    if type(column) is IntColumn:
        return IntColumn(column.array[start:stop], column.nil)
    return column[start:stop]


def _ints(column) -> np.ndarray:
    """A column of ints and nils as int64, nil as NIL."""
    if type(column) is IntColumn:
        values = column.array.astype(np.int64)
        if column.nils:
            values[column.array == column.nil] = NIL
        return values
    return np.fromiter((NIL if v is None else v for v in column), np.int64, len(column))


def _column(columns, position):
    """The column at ``position`` as int64 (NIL for nil), or None if the frame left it out."""
    return _ints(columns[position]) if len(columns) > position else None


def _put(view, at, values) -> None:
    """``view[at] = values`` where a value is not nil."""
    present = values != NIL
    if present.all():
        view[at] = values
    elif present.any():
        view[at[present]] = values[present]


def _submit(state, table, columns, at, base, strings, symbols) -> None:
    submitted = table.view("submitted")
    state.n_submitted += int((submitted[at] == NIL).sum())
    submitted[at] = _ints(columns[SUBMIT["t"]]) + base
    queue = _column(columns, SUBMIT["queue"])
    if queue is not None:
        _put(table.view("queue"), at, queue)
    function = _column(columns, SUBMIT["function"])
    if function is not None:
        present = function != NIL
        table.view("function")[at[present]] = strings[function[present]]
    if len(columns) > SUBMIT["target"]:
        targets = columns[SUBMIT["target"]]
        if targets.count(None) == len(targets) and not table.targets:
            table.view("target")[at] = NIL
        else:
            for row, target in zip(at.tolist(), targets):
                table.set_target(row, target)
        label = _column(columns, SUBMIT["label"])
        if label is not None:
            present = label != NIL
            labelled, label = at[present], strings[label[present]]
            table.view("label")[labelled] = label
            name = table.view("name")
            unnamed = name[labelled] == NONE
            name[labelled[unnamed]] = label[unnamed]
        chunk = _column(columns, SUBMIT["chunk"])
        if chunk is not None:
            table.view("chunk")[at] = chunk
        broadcast = _column(columns, SUBMIT["broadcast"])
        if broadcast is not None:
            for i in np.flatnonzero(broadcast != NIL).tolist():
                table.broadcast[int(at[i])] = symbols[broadcast[i]]
        size = _column(columns, SUBMIT["request_bytes"])
        if size is not None:
            table.put_sizes("request_bytes", at, size)


def _start(table, columns, at, base) -> np.ndarray:
    """Write the starts; returns the engine of each (NIL: none)."""
    table.view("start")[at] = _ints(columns[START["t"]]) + base
    engine = _column(columns, START["engine_id"])
    if engine is None:
        engine = np.full(len(at), NIL, np.int64)
    table.view("engine")[at] = engine
    return engine


def _complete(state, table, columns, at, base) -> None:
    status = _ints(columns[COMPLETE["status"]])
    table.view("outcome")[at] = status
    for key in ("started", "completed", "received"):
        values = _column(columns, COMPLETE[key])
        if values is not None:
            present = values != NIL
            table.view(key)[at[present]] = values[present] + base
    engine = _column(columns, COMPLETE["engine_id"])
    if engine is not None:
        present = engine != NIL
        table.view("engine")[at[present]] = engine[present]
    if len(columns) > COMPLETE["ename"]:
        texts = [columns[COMPLETE[k]] if len(columns) > COMPLETE[k] else None for k in ("ename", "evalue", "traceback")]
        texts = [column if column is not None else (None,) * len(at) for column in texts]
        for row, ename, evalue, traceback in zip(at.tolist(), *texts):
            if ename is not None or evalue is not None or traceback is not None:
                table.errors[row] = (ename, evalue, traceback)
        size = _column(columns, COMPLETE["reply_bytes"])
        if size is not None:
            table.put_sizes("reply_bytes", at, size)
    failed = status != ev.STATUS_CODES["ok"]
    state.n_completed += len(at)
    state.n_failed += int(failed.sum())
    state._recent_errors.extend(at[failed][-_RECENT_ERRORS:].tolist())
    received, completed = table.view("received")[at], table.view("completed")[at]
    done = np.where(received != NIL, received, completed)
    state.recent_completions.extend(done[done != NIL][-_RECENT_COMPLETIONS:].tolist())


def _engines(state, table, start_part, complete_part, started_on) -> None:
    """Each engine's totals and the task it is running, after the run's starts and completions."""
    engine_of_row = table.view("engine")
    # engines are made in the order the frame first names them
    named = []
    if start_part is not None:
        named.append((start_part.where, started_on))
    if complete_part is not None:
        named.append((complete_part.where, engine_of_row[complete_part.rows]))
    if not named:
        return
    where = np.concatenate([w for w, _ in named])
    engine = np.concatenate([e for _, e in named])
    named = engine != NIL
    new = [e for e in _distinct(engine[named]) if e not in state.engines]
    if new:  # engines the log names before registering them: made in the order the frame names them
        engine = engine[np.argsort(where, kind="stable")]
        for e in _distinct(engine[np.isin(engine, new)], in_order=True):
            state._engine(e)
    engines = state.engines
    if complete_part is not None:
        columns, finished = complete_part.columns, complete_part.rows
        finished_on = engine_of_row[finished]
        on = finished_on != NIL
        finished, finished_on = finished[on], finished_on[on]
        status = _ints(columns[COMPLETE["status"]])[on]
        began = table.view("started")[finished]
        began = np.where(began != NIL, began, table.view("start")[finished])
        ended = table.view("completed")[finished]
        busy = np.where((began != NIL) & (ended != NIL), ended - began, 0)
        ids, inverse = _groups(finished_on)
        done = np.bincount(inverse, minlength=len(ids))
        errors = np.bincount(inverse, weights=status != ev.STATUS_CODES["ok"], minlength=len(ids))
        busy = np.bincount(inverse, weights=busy, minlength=len(ids))
        for e, n, failed, us in zip(ids.tolist(), done.tolist(), errors.tolist(), busy.tolist()):
            record = engines[e]
            record.tasks_done += n
            record.errors += int(failed)
            record.busy_us += int(us)
    # the task each engine runs: its last start, unless that task then completed on it
    if start_part is not None:
        where, at = start_part.where, start_part.rows
        keep = started_on != NIL
        where, rows, on = where[keep], at[keep], started_on[keep]
        ids, inverse = _groups(on)
        last = np.zeros(len(ids), np.int64)
        np.maximum.at(last, inverse, np.arange(len(on)))  # (``where`` ascends: the last start is the largest index)
        for e, row in zip(ids.tolist(), rows[last].tolist()):
            engines[e].running = row
    if complete_part is not None and len(finished):
        for record in engines.values():
            if record.running is not None:
                hit = np.flatnonzero(finished == record.running)
                if len(hit) and finished_on[hit[0]] == record.id:
                    record.running = None


def _groups(values: np.ndarray):
    """(the distinct values ascending, each value's index among them): ``np.unique``'s
    ``return_inverse``, counting rather than sorting when the values are close together."""
    if len(values):
        lo, hi = int(values.min()), int(values.max())
        if hi - lo < 4 * len(values) + 1024:
            present = np.bincount(values - lo) > 0
            index = np.cumsum(present) - 1
            return np.flatnonzero(present) + lo, index[values - lo]
    return np.unique(values, return_inverse=True)


def _distinct(values: np.ndarray, in_order: bool = False) -> list:
    """The distinct values (ascending, or in the order first met)."""
    if not len(values):
        return []
    lo, hi = int(values.min()), int(values.max())
    if not in_order and hi - lo < 4 * len(values) + 1024:  # few and close: count them
        return (np.flatnonzero(np.bincount(values - lo)) + lo).tolist()
    firsts = np.unique(values, return_index=True)[1]
    return values[np.sort(firsts) if in_order else firsts].tolist()
