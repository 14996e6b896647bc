"""Where a run's tasks go on a per-engine timeline: rows, bars, marks, busy engines.

The numbers every timeline view is drawn from (the matplotlib sink's picture
and the matplotlib viewer's growing window), in seconds since the run's start,
as numpy arrays. Drawing them is ``figure.py``'s job.
"""

from __future__ import annotations

from .colours import STATUS_COLOURS, colour_of

BUSY_BINS = 2000  # the busy curve is averaged into this many slices at most


class TimelineData:
    """The numbers a timeline is drawn from, in seconds since the run's start."""

    def __init__(self, state, tasks=None):
        """Place ``tasks`` (default: all of ``state``'s) on rows for ``state``'s engines."""
        import numpy as np

        start, end = state.span_us()
        self.t0 = start or 0
        rows = sorted(e for e in state.engines if e is not None)
        for task in state.tasks.values():
            if task.engine_id is not None and task.engine_id not in state.engines:
                rows.append(task.engine_id)
        self.engine_ids = sorted(set(rows))
        self.row_of = {e: i for i, e in enumerate(self.engine_ids)}
        functions = sorted({t.function or "" for t in state.tasks.values()})
        self.colour_of = {f: colour_of(f) for f in functions}

        tasks = state.tasks.values() if tasks is None else tasks
        placed = [t for t in tasks if t.engine_id in self.row_of and t.effective_start_us is not None]
        sec = lambda us: (us - self.t0) / 1e6  # noqa: E731
        self.tasks = placed
        self.row = np.array([self.row_of[t.engine_id] for t in placed], dtype=float)
        self.start = np.array([sec(t.effective_start_us) for t in placed])
        last = sec(end) if end is not None else 0.0
        self.end = np.array([sec(t.completed_us) if t.completed_us is not None else last for t in placed])
        self.submitted = np.array([sec(t.submitted_us) if t.submitted_us is not None else np.nan for t in placed])
        self.received = np.array([sec(t.received_us) if t.received_us is not None else np.nan for t in placed])
        self.colours = [STATUS_COLOURS.get(t.status) or self.colour_of[t.function or ""] for t in placed]
        self.span = max(last, float(self.end.max()) if len(self.end) else 0.0, 1e-3)
        self.marks = [(sec(m.t_us), m.text) for m in state.marks]
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
