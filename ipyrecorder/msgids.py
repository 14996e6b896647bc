"""A set of msg_ids that stays small over a long run: ipyparallel's are a counter.

ipyparallel's msg_ids are ``<session>_<pid>_<counter>``: a run's tasks share a few
prefixes and their counters come in long runs, so ``MsgIds`` keeps, per prefix,
the runs ``[lo, hi]`` of the counters it holds (and any msg_id without a counter
as it is). The writer's summary (``tally.py``) and the recorder's names
(``translate.py``) remember which tasks they have seen this way.
"""

from __future__ import annotations

from bisect import bisect_right

from .events import split_msg_id


class Runs:
    """A set of integers kept as sorted runs ``[lo, hi]``."""

    __slots__ = ("lo", "hi")

    def __init__(self):
        self.lo: list = []
        self.hi: list = []

    def __len__(self) -> int:
        return len(self.lo)

    def __contains__(self, n: int) -> bool:
        i = bisect_right(self.lo, n) - 1
        return i >= 0 and n <= self.hi[i]

    def insert(self, n: int) -> bool:
        """Add ``n``; False if it was there."""
        lo, hi = self.lo, self.hi
        if hi and n > hi[-1]:  # the counter going on
            if n == hi[-1] + 1:
                hi[-1] = n
            else:
                lo.append(n)
                hi.append(n)
            return True
        i = bisect_right(lo, n)  # runs 0..i-1 start at or below n
        if i > 0 and n <= hi[i - 1]:
            return False
        joins_left = i > 0 and hi[i - 1] == n - 1
        joins_right = i < len(lo) and lo[i] == n + 1
        if joins_left and joins_right:
            hi[i - 1] = hi.pop(i)
            del lo[i]
        elif joins_left:
            hi[i - 1] = n
        elif joins_right:
            lo[i] = n
        else:
            lo.insert(i, n)
            hi.insert(i, n)
        return True

    def bounds(self) -> list:
        """``[lo, hi, lo, hi, ...]``."""
        return [x for pair in zip(self.lo, self.hi) for x in pair]


class MsgIds:
    """msg_ids as runs of counters per prefix (``runs``), those without a counter as they are (``alone``)."""

    __slots__ = ("runs", "alone")

    def __init__(self):
        self.runs: dict = {}  # prefix -> Runs
        self.alone: set = set()

    def add(self, msg_id: str) -> bool:
        """Add ``msg_id``; False if it was there."""
        prefix, suffix = split_msg_id(msg_id)
        return self.add_split(prefix, suffix) if type(suffix) is int else self.add_split(msg_id, None)

    def add_split(self, prefix: str, suffix) -> bool:
        """Add the msg_id split as ``FrameBuilder.split_tasks`` splits it (suffix None: ``prefix``
        is the msg_id); False if it was there."""
        if suffix is None:
            if prefix in self.alone:
                return False
            self.alone.add(prefix)
            return True
        runs = self.runs.get(prefix)
        if runs is None:
            runs = self.runs[prefix] = Runs()
        if runs.hi and suffix == runs.hi[-1] + 1:
            runs.hi[-1] = suffix  # the counter going on (what ``insert`` does first, inlined: the hot case)
            return True
        return runs.insert(suffix)

    def __contains__(self, msg_id: str) -> bool:
        prefix, suffix = split_msg_id(msg_id)
        if type(suffix) is not int:
            return msg_id in self.alone
        runs = self.runs.get(prefix)
        return runs is not None and suffix in runs

    def run_count(self) -> int:
        """How many runs of counters it holds, over every prefix."""
        return sum(map(len, self.runs.values()))
