"""Many tasks' records at once, from the state's columns: what ``Task.to_dict()`` gives, by key.

A sink that writes every task of a big run (csv) asks for a slice of rows at a
time and gets one list per key, made with numpy where numpy can make it,
instead of a ``Task`` and a dict per row.
"""

from __future__ import annotations

import numpy as np

from .events import QUEUES
from .table import NIL, NONE, SIZES, STATUS_ORDER, Task, TaskTable

TIMES = ("submitted", "started", "completed", "received")
SECONDS = {  # key: (later, earlier), as Task computes them
    "run_seconds": ("completed", "started"),
    "queue_seconds": ("started", "submitted"),
    "wall_seconds": ("received", "submitted"),
}


def records(table: TaskTable, start: int, stop: int, keys) -> dict:
    """``{key: [value of each task start:stop]}``, the values ``Task.to_dict()`` has for ``keys``."""
    stop = min(stop, len(table))
    rows = slice(start, stop)
    times = {}

    def time(name):  # a time column, ``started`` as Task.started is
        if name not in times:
            times[name] = table.effective_start()[rows] if name == "started" else table.view(name)[rows]
        return times[name]

    out = {}
    for key in keys:
        if key in TIMES:
            out[key] = _iso(time(key))
        elif key in SECONDS:
            later, earlier = (time(name) for name in SECONDS[key])
            out[key] = _seconds(later, earlier)
        elif key in ("name", "label", "function"):
            out[key] = _texts(table.view(key)[rows], table.strings)
        elif key == "queue":
            out[key] = _texts(table.view("queue")[rows], QUEUES)
        elif key == "status":
            out[key] = np.array(STATUS_ORDER, dtype=object)[table.statuses()[rows]].tolist()
        elif key in ("chunk", "engine_id"):
            out[key] = _ints(table.view("engine" if key == "engine_id" else key)[rows])
        elif key in SIZES:
            out[key] = _ints(table.sizes(key, start, stop))
        elif key == "msg_id":
            out[key] = list(map(table.msg_id, range(start, stop)))
        elif key in ("error", "traceback", "stdout", "stderr", "broadcast", "resubmitted", "resubmit_of"):
            out[key] = _sparse(table, key, start, stop)
        elif key == "target":
            out[key] = [Task(table, row).target for row in range(start, stop)]
        else:  # the rest (attempts, attempt_errors: lists most tasks lack), task by task
            out[key] = [Task(table, row).to_dict()[key] for row in range(start, stop)]
    return out


def _iso(values: np.ndarray) -> list:
    """ISO 8601 UTC strings as ``datetime.isoformat()`` writes them (no fraction on a whole second)."""
    out = np.full(len(values), None, dtype=object)
    present = values != NIL
    if present.any():
        us = values[present]
        text = np.datetime_as_string(us.astype("datetime64[us]"), unit="us").astype(object)
        whole = us % 1_000_000 == 0
        if whole.any():
            text[whole] = np.datetime_as_string(us[whole].astype("datetime64[us]"), unit="s")
        out[present] = text + "+00:00"
    return out.tolist()


def _seconds(later: np.ndarray, earlier: np.ndarray) -> list:
    out = np.full(len(later), None, dtype=object)
    present = (later != NIL) & (earlier != NIL)
    out[present] = ((later[present] - earlier[present]) / 1e6).tolist()
    return out.tolist()


def _texts(codes: np.ndarray, names) -> list:
    """Indexes into ``names`` (NONE: None) as the texts."""
    return np.array([*names, None], dtype=object)[np.where(codes == NONE, len(names), codes)].tolist()


def _ints(values: np.ndarray) -> list:
    out = values.astype(object)
    out[values == NIL] = None
    return out.tolist()


def _sparse(table: TaskTable, key: str, start: int, stop: int) -> list:
    """A field most tasks lack, from its dict (as ``Task`` gives it)."""
    empty = "" if key in ("stdout", "stderr") else None
    out = [empty] * (stop - start)
    if key in ("error", "traceback"):
        for row in table.errors:
            if start <= row < stop:
                out[row - start] = getattr(Task(table, row), key)
    else:
        found = getattr(table, key)
        for row, value in found.items():
            if start <= row < stop:
                out[row - start] = "".join(value) if key in ("stdout", "stderr") else value
    return out
