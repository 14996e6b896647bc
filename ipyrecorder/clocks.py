"""Each engine's clock against the client's, bounded by the times the log already has.

A task is submitted (client's clock) before it starts (engine's clock), and
completes (engine's) before the client receives its reply (client's). So the
engine's clock runs ``offset`` ahead of the client's with

    completed - received  <=  offset  <=  started - submitted

for every task it ran: the tightest bounds over its tasks give the offset and
how sure we are of it (half the gap between them). Bounds that cross (no
offset fits every task: a clock that drifted, or was set, during the run) are
reported as such, and the engine's tasks are then split into windows, each as
long as some offset still fits every task in it (``drift``): its times move by
each window's own estimate. A task that ran longer on the engine's clock than the client
waited for it is impossible under any offset; those are counted, not used.
Resubmitted tasks are left out: their submission time is when the Hub's reply
reached the client, after they may have started.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

import numpy as np

CLOCKS = ("client", "engine")  # what a state's times are on: the client's clock, or each engine's own
DENSE_KEYS = 1 << 16  # engine ids spread over at most this many values are grouped by range


class Bounds:
    """The bounds of one engine's offset, in µs, as the writer's tally folds them task by task."""

    __slots__ = ("low", "high", "tasks", "impossible")

    def __init__(self, low=None, high=None, tasks=0, impossible=0):
        self.low, self.high, self.tasks, self.impossible = low, high, tasks, impossible

    def add(self, submitted, started, completed, received) -> None:
        """One completed task's times (µs, None where the log has none)."""
        if None not in (submitted, started, completed, received) and completed - started > received - submitted:
            self.impossible += 1
            return
        low = None if completed is None or received is None else completed - received
        high = None if started is None or submitted is None else started - submitted
        if low is None and high is None:
            return
        self.tasks += 1
        self._tighten(low, high)

    def merge(self, other: Bounds) -> None:
        """Add another segment's (or slice's) bounds of the same engine."""
        self._tighten(other.low, other.high)
        self.tasks += other.tasks
        self.impossible += other.impossible

    def _tighten(self, low, high) -> None:
        """Keep the largest lower bound and the smallest upper bound (None: no bound)."""
        if low is not None and (self.low is None or low > self.low):
            self.low = low
        if high is not None and (self.high is None or high < self.high):
            self.high = high

    def fields(self) -> list:
        """``[low, high, tasks, impossible]``: as a summary's ``clocks`` holds them (docs/format.md)."""
        return [self.low, self.high, self.tasks, self.impossible]


def table_bounds(engines, submitted, started, completed, received, nil: int) -> dict:
    """``{engine: Bounds}`` of many completed tasks at once (numpy columns, ``nil`` for none):
    what folding each task with ``Bounds.add`` gives."""
    found = {}
    have = engines != nil
    if not have.any():
        return found
    keys, which = _groups(engines[have])
    s, t, c, r = (column[have] for column in (submitted, started, completed, received))
    impossible = impossible_tasks(s, t, c, r, nil)
    has_low = (c != nil) & (r != nil) & ~impossible
    has_high = (t != nil) & (s != nil) & ~impossible
    lows = np.full(len(keys), np.iinfo(np.int64).min)
    highs = np.full(len(keys), np.iinfo(np.int64).max)
    np.maximum.at(lows, which[has_low], (c - r)[has_low])
    np.minimum.at(highs, which[has_high], (t - s)[has_high])
    tasks = np.bincount(which[has_low | has_high], minlength=len(keys))
    impossibles = np.bincount(which[impossible], minlength=len(keys))
    low_seen = np.bincount(which[has_low], minlength=len(keys)) > 0
    high_seen = np.bincount(which[has_high], minlength=len(keys)) > 0
    for i, key in enumerate(keys.tolist()):
        if tasks[i] or impossibles[i]:
            found[key] = Bounds(
                int(lows[i]) if low_seen[i] else None,
                int(highs[i]) if high_seen[i] else None,
                int(tasks[i]),
                int(impossibles[i]),
            )
    return found


class Drift:
    """The shift of an engine whose clock drifted, or was set, during the run: one value (µs)
    per window of its tasks, each from its first task's start (on the engine's clock) on, and
    how far each may be off (``spreads``, µs: half its bounds' width; None where one bound lacks)."""

    __slots__ = ("starts", "values", "spreads")

    def __init__(self, starts, values, spreads=None):
        self.starts, self.values = list(starts), list(values)
        self.spreads = list(spreads) if spreads is not None else [None] * len(self.values)

    def at(self, us: int) -> int:
        """The shift of an engine-clock time: its window's (the first window's before it)."""
        return self.values[max(bisect_right(self.starts, us) - 1, 0)]

    def of(self, us: np.ndarray) -> np.ndarray:
        """``at`` of many times at once."""
        where = np.maximum(np.searchsorted(np.asarray(self.starts, np.int64), us, "right") - 1, 0)
        return np.asarray(self.values, np.int64)[where]

    def __eq__(self, other) -> bool:
        return isinstance(other, Drift) and (self.starts, self.values) == (other.starts, other.values)

    def __repr__(self) -> str:
        return f"Drift(starts={self.starts}, values={self.values})"


def drift(submitted, started, completed, received, nil: int) -> Drift:
    """One engine's completed tasks (numpy columns, µs, nil for none) in the order they started,
    cut into windows greedily: a window grows while some offset fits every task in it, so a
    clock set mid-run splits exactly there and a drifting one in steps as small as its tasks'
    bounds allow. Each window moves by its own estimate (halfway between its bounds)."""
    at = np.where(started != nil, started, completed)
    keep = (at != nil) & ~impossible_tasks(submitted, started, completed, received, nil)
    order = np.argsort(at[keep], kind="stable")
    s, t, c, r, at = (column[keep][order].tolist() for column in (submitted, started, completed, received, at))
    starts, values, spreads = [], [], []
    low = high = first = None
    for s_us, t_us, c_us, r_us, at_us in zip(s, t, c, r, at):
        lo = None if c_us == nil or r_us == nil else c_us - r_us
        hi = None if t_us == nil or s_us == nil else t_us - s_us
        if lo is None and hi is None:
            continue
        new_low = lo if low is None else low if lo is None else max(low, lo)
        new_high = hi if high is None else high if hi is None else min(high, hi)
        if first is not None and new_low is not None and new_high is not None and new_low > new_high:
            starts.append(first)
            values.append(_estimate(low, high))
            spreads.append(_spread(low, high))
            first, new_low, new_high = at_us, lo, hi
        low, high = new_low, new_high
        first = at_us if first is None else first
    if first is not None:
        starts.append(first)
        values.append(_estimate(low, high))
        spreads.append(_spread(low, high))
    return Drift(starts, values, spreads)


def _spread(low, high):
    """How far a window's estimate may be off: half its bounds' width (None with one bound)."""
    return None if low is None or high is None else (high - low) // 2


def _estimate(low, high) -> int:
    """A window's shift: halfway between its bounds, or the one it has."""
    return high if low is None else low if high is None else (low + high) // 2


def crossed(bounds: dict) -> list:
    """The engines no one offset fits: their times move by ``drift`` windows."""
    return [e for e, b in bounds.items() if b.low is not None and b.high is not None and b.low > b.high]


def impossible_tasks(submitted, started, completed, received, nil: int) -> np.ndarray:
    """Which tasks (numpy columns) ran longer on their engine's clock than the client waited for
    them: impossible under any offset (``Bounds.add`` says the same of one)."""
    have = (submitted != nil) & (started != nil) & (completed != nil) & (received != nil)
    return have & (completed - started > received - submitted)


def shifts(bounds: dict, drifts: dict | None = None) -> dict:
    """``{engine: µs}`` to take from each engine's times to put them on the client's clock: the
    estimate, for the engines whose own tasks prove their clock differs (bounds that hold and
    leave out zero), and the ``Drift`` (from ``drifts``) of those no offset fits. An engine on
    the client's clock, or one its tasks cannot tell, stays."""
    found = {
        engine: (b.low + b.high) // 2
        for engine, b in bounds.items()
        if b.low is not None and b.high is not None and b.low <= b.high and (b.low > 0 or b.high < 0)
    }
    found.update(drifts or {})
    return found


def on_client(us, shift):
    """An engine-clock time (or None) on the client's clock: moved by its engine's ``shift`` (µs
    or a ``Drift``; None or 0: unmoved)."""
    if us is None or not shift:
        return us
    return us - (shift.at(us) if isinstance(shift, Drift) else shift)


def moved_times(values: np.ndarray, engines: np.ndarray, moved: dict, nil: int) -> np.ndarray:
    """Engine-clock times (``values``, nil where none) of tasks on ``engines``, on the client's
    clock: each moved by its engine's shift (``shifts``), in place; returns ``values``."""
    for engine, shift in moved.items():
        on = (engines == engine) & (values != nil)
        values[on] = many_on_client(values[on], shift)
    return values


def many_on_client(values: np.ndarray, shift) -> np.ndarray:
    """``on_client`` of many times of one engine at once (a new array)."""
    if not shift:
        return values.copy()
    return values - (shift.of(values) if isinstance(shift, Drift) else shift)


def to_client_clock(table, moved: dict, nil: int) -> None:
    """Move the engine-clock times of a ``TaskTable`` by ``moved`` (``shifts``): each row's start,
    started and completed by its engine's shift, each attempt's time by its own engine's."""
    engines = table.view("engine")
    for name in ("start", "started", "completed"):
        moved_times(table.view(name), engines, moved, nil)
    for engine, shift in moved.items():  # its resource samples are on its clock too
        if engine in table.samples:
            table.samples[engine] = [(on_client(t, shift), *rest) for t, *rest in table.samples[engine]]
    for attempts in table.attempts.values():
        attempts[:] = [(e, on_client(t, moved.get(e))) for e, t in attempts]
    for errors in table.attempt_errors.values():
        errors[:] = [(e, on_client(t, moved.get(e)), *rest) for e, t, *rest in errors]


def _groups(keys: np.ndarray) -> tuple:
    """``(group keys, each value's group)``: engine ids are few and close together, so a range
    of them (without sorting: ``np.unique`` costs most of a summary at 300,000 tasks) unless
    they are spread too far."""
    lo, hi = int(keys.min()), int(keys.max())
    if hi - lo <= DENSE_KEYS:
        return np.arange(lo, hi + 1), keys - lo
    return np.unique(keys, return_inverse=True)


@dataclass(frozen=True)
class ClockOffset:
    """How far an engine's clock runs ahead of the client's (negative: behind), in seconds."""

    low: float | None  # the offset is at least this
    high: float | None  # and at most this
    tasks: int  # the tasks that bounded it
    impossible: int  # tasks impossible under any offset (not used)

    @classmethod
    def of(cls, bounds: Bounds) -> ClockOffset:
        low, high = (None if us is None else us / 1e6 for us in (bounds.low, bounds.high))
        return cls(low, high, bounds.tasks, bounds.impossible)

    @property
    def bounded(self) -> bool:
        """Both bounds known: there is an estimate."""
        return self.low is not None and self.high is not None

    @property
    def consistent(self) -> bool:
        """Some offset fits every task (the bounds do not cross)."""
        return not self.bounded or self.low <= self.high

    @property
    def seconds(self) -> float | None:
        """The estimate: halfway between the bounds."""
        return (self.low + self.high) / 2 if self.bounded else None

    @property
    def uncertainty(self) -> float | None:
        """Half the gap between the bounds (negative when they cross)."""
        return (self.high - self.low) / 2 if self.bounded else None

    def to_dict(self) -> dict:
        return {
            "offset_seconds": None if self.seconds is None else round(self.seconds, 6),
            "uncertainty_seconds": None if self.uncertainty is None else round(self.uncertainty, 6),
            "low_seconds": self.low,
            "high_seconds": self.high,
            "consistent": self.consistent,
            "tasks": self.tasks,
            "impossible": self.impossible,
        }
