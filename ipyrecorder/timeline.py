"""Where a run's tasks go on a per-engine timeline: rows, bars, marks, busy engines.

The numbers every timeline view is drawn from (the matplotlib sink's picture
and the matplotlib viewer's growing window), in seconds since the run's start,
as numpy arrays. Drawing them is ``figure.py``'s job.
"""

from __future__ import annotations

import re

from .clocks import many_on_client, moved_times
from .colours import OK, STATUS_COLOURS, distinct_colours
from .errors import PluginError
from .state import engine_label
from .table import NIL, STATUS_ORDER, Selection

BUSY_BINS = 2000  # the busy curve is averaged into this many slices at most


COLOUR_BY = ("function", "status", "engine", "prefix")  # what a bar's colour says (errors are red in all)


def name_prefix(name: str) -> str:
    """A task name's family: what comes before its first digit (``"run 12"`` -> ``"run"``)."""
    return re.split(r"\d", name, maxsplit=1)[0].rstrip(" _-:./#[(") or name


class TimelineData:
    """The numbers a timeline is drawn from, in seconds since the run's start."""

    def __init__(self, state, tasks=None, colour_by: str = "function", colours: dict | None = None):
        """Place ``tasks`` (default: all of ``state``'s) on rows for ``state``'s engines, coloured by
        ``colour_by`` (one of ``COLOUR_BY``); ``colours``: the keys' colours of the whole picture, for
        a part of it drawn later (a live view's new bars)."""
        import numpy as np

        if colour_by not in COLOUR_BY:
            raise PluginError(f"cannot colour bars by {colour_by!r} (by: {', '.join(COLOUR_BY)})")
        table = state.table
        start, end = state.span_us()
        self.t0 = start or 0
        moving = state.view_shifts()  # a live state's engine times, put on the client's clock here
        self.clock_shifts = dict(state.clock_shifts or moving)  # engines whose times are moved onto the client's
        self.clock = getattr(state, "clock", "client")
        engine = table.view("engine")
        self.engine_ids = sorted(set(state.engines) | set(np.unique(engine[engine != NIL]).tolist()))
        self.row_of = {e: i for i, e in enumerate(self.engine_ids)}
        function = table.view("function")

        rows = np.arange(len(table)) if tasks is None else np.array([t.row for t in tasks], np.int64)
        began = table.effective_start()[rows]
        placed = (engine[rows] != NIL) & (began != NIL)
        rows, began = rows[placed], began[placed]
        on = engine[rows]
        moved_times(began, on, moving, NIL)
        sec = lambda us: (us - self.t0) / 1e6  # noqa: E731
        last = sec(end) if end is not None else 0.0
        self.tasks = Selection(table, rows)
        self.row = np.searchsorted(np.array(self.engine_ids, np.int64), engine[rows]).astype(float)
        self.start = sec(began)

        def seconds(column, missing):
            values = table.view(column)[rows]
            if column == "completed":
                values = moved_times(values.copy(), on, moving, NIL)
            return np.where(values == NIL, missing, sec(values))

        self.end = seconds("completed", last)
        self.submitted = seconds("submitted", np.nan)
        self.received = seconds("received", np.nan)
        # a status's colour where it has one (error, aborted, running), else its key's: a bar's key is
        # its function, engine, name prefix or status (colour_by); ``key_colours`` what the legend shows
        self.status = table.statuses()[rows]
        overridden = np.array([name in STATUS_COLOURS for name in STATUS_ORDER])[self.status]
        if colour_by == "status":
            overridden[:] = False
        codes, texts = self._keys(table, rows, function, colour_by)  # (several codes may share a text: a prefix)
        unique, which = np.unique(codes, return_inverse=True)
        which = which.reshape(-1)
        keys = [texts(code) for code in unique.tolist()]
        seen = np.bincount(which[~overridden], minlength=len(unique)) > 0
        if colour_by == "status":
            colours = {name: STATUS_COLOURS.get(name, OK) for name in keys}
        else:  # every function of the log takes a colour, as the report and the dashboard give them
            every = (
                {table.text(code) or "" for code in np.unique(function).tolist()}
                if colour_by == "function"
                else set(keys)
            )
            colours = {**distinct_colours(every), **(colours or {})}
        self.key_colours = {key: colours[key] for key, shown in zip(keys, seen.tolist()) if shown}
        choice = np.array(
            [STATUS_COLOURS.get(name) for name in STATUS_ORDER] + [colours.get(key) for key in keys], dtype=object
        )
        self.colours = choice[np.where(overridden, self.status, len(STATUS_ORDER) + which)].tolist()
        self.span = max(last, float(self.end.max()) if len(self.end) else 0.0, 1e-3)
        self.marks = [(sec(m.t_us), m.text) for m in state.marks]
        # each engine's resource samples (engine_stats): seconds, CPU %, resident bytes
        self.samples = {}
        for engine_id, samples in table.samples.items():
            found = np.array([(t, np.nan if c is None else c, np.nan if r is None else r) for t, c, r, _ in samples])
            found[:, 0] = sec(many_on_client(np.array([s[0] for s in samples], np.int64), moving.get(engine_id)))
            self.samples[engine_id] = found.T
        self.joins = [
            (sec(e.registered_us), self.row_of[e.id])
            for e in state.engines.values()
            if e.id in self.row_of and e.registered_us is not None and not e.present_at_start
        ]
        self.leaves = [
            (sec(e.unregistered_us), self.row_of[e.id])
            for e in state.engines.values()
            if e.id in self.row_of and e.unregistered_us is not None
        ]

    def _keys(self, table, rows, function, colour_by):
        """Each placed task's colour key as an int code, and the key's text for a code."""
        import numpy as np

        if colour_by == "status":
            return self.status, STATUS_ORDER.__getitem__
        if colour_by == "engine":
            return table.view("engine")[rows], engine_label
        if colour_by == "function":
            return function[rows], lambda code: table.text(code) or ""
        name = table.view("name")[rows].astype(np.int64)  # prefix: the name's, else the function's (-code - 2)
        codes = np.where(name >= 0, name, -function[rows].astype(np.int64) - 2)
        return codes, lambda code: name_prefix(table.text(code)) if code >= 0 else table.text(-code - 2) or ""

    def busy_curve(self, bins: int = BUSY_BINS):
        """(times, busy engines) as a step function, and its time-weighted mean.

        With more changes than ``bins``, the curve is the time-weighted mean of
        each of ``bins`` equal slices: a picture has no more pixels than that.
        """
        import numpy as np

        if not len(self.start):
            return np.array([0.0, self.span]), np.array([0, 0]), 0.0
        times = np.concatenate([self.start, self.end])
        steps = np.concatenate([np.ones(len(self.start)), -np.ones(len(self.end))])
        order = np.argsort(times, kind="stable")
        times, busy = times[order], np.cumsum(steps[order])
        durations = np.diff(np.append(times, times[-1]))
        total = times[-1] - times[0]
        mean = float((busy * durations).sum() / total) if total > 0 else float(busy.max())
        if len(times) <= bins:
            return np.concatenate([[0.0], times]), np.concatenate([[0], busy]), mean
        edges = np.linspace(0.0, max(times[-1], self.span), bins + 1)
        # busy-seconds accumulated up to each edge, from the step function's integral
        integral = np.concatenate([[0.0], np.cumsum(busy[:-1] * np.diff(times))])
        at = np.clip(np.searchsorted(times, edges, side="right") - 1, 0, len(times) - 1)
        before = np.where(edges < times[0], 0.0, integral[at] + busy[at] * (edges - times[at]))
        return edges, np.append(np.diff(before) / np.diff(edges), 0.0), mean
