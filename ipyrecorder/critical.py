"""How parallel a run was: the critical path of what ran, and the engines' busy and idle time.

The critical path is the chain of tasks, each waiting on the one before it
(ipyparallel's ``after`` and ``follow``), whose run times add up to the most: no
number of engines could have finished the run sooner than that. Without
dependencies it is the longest task. Each task weighs its run time (completed -
started, on one engine's clock); a task waiting on several tasks waits on all of
them (the chain through the one with the longest path), or, for ``any``
dependencies, on the first to complete (the one that let it run).
"""

from __future__ import annotations

import numpy as np


def run_times(table, nil: int) -> np.ndarray:
    """Each task's run time in µs: completed - started for tasks that completed with both, else 0."""
    began, ended = table.effective_start(), table.view("completed")
    timed = (table.view("outcome") >= 0) & (began != nil) & (ended != nil)
    return np.where(timed, ended - began, 0)


def longest(run: np.ndarray, msg_id) -> int | None:
    """The row of the longest task (ties: the smallest msg_id, as the writer's tally picks), or None."""
    if not len(run) or run.max() <= 0:
        return None
    rows = np.flatnonzero(run == run.max()).tolist()
    return min(rows, key=msg_id)


def critical_path(table, nil: int) -> list:
    """The rows of the critical path, first to last (empty if no task ran)."""
    run = run_times(table, nil)
    if not table.depends:
        row = longest(run, table.msg_id)
        return [] if row is None else [row]
    path = run.astype(np.int64)  # the heaviest chain ending at each task, in µs
    before = {}  # row -> the row before it on that chain
    completed = table.view("completed")
    waiting = sorted(table.depends, key=lambda r: (table.submitted[r], r))  # a task waits on earlier ones
    for row in waiting:
        chains = []
        firsts = {}  # for ``any`` dependencies: the one that completed first, by relation
        for on, follow, any_ in table.depends[row]:
            dep = table.find(on)
            if dep is None or completed[dep] == nil:
                continue  # a task the log does not have, or that never completed
            if any_:
                first = firsts.get(follow)
                if first is None or completed[dep] < completed[first]:
                    firsts[follow] = dep
            else:
                chains.append(dep)
        chains += firsts.values()
        if chains and run[row] > 0:
            top = max(chains, key=lambda dep: (path[dep], -dep))
            path[row] += path[top]
            before[row] = top
    if not len(path) or path.max() <= 0:
        return []
    row = longest(path, table.msg_id)
    chain = [row]
    while chain[-1] in before:
        chain.append(before[chain[-1]])
    return chain[::-1]


def path_figures(table, rows: list) -> dict:
    """What a summary says of a critical path: its tasks, their run time added up, and the time
    from its first start to its last completion (the client's clock, once engines' are put on it)."""
    if not rows:
        return longest_path(None)
    began = [table.start_of(r) for r in rows]
    ended = [table.completed[r] for r in rows]  # (each ran: critical_path picks only those)
    return {
        "tasks": [table.msg_id(r) for r in rows],
        "run_seconds": round(sum(e - b for b, e in zip(began, ended)) / 1e6, 6),
        "elapsed_seconds": round((ended[-1] - began[0]) / 1e6, 6),
    }


def longer(found, other):
    """The longer of two tasks as ``[run µs, msg_id]`` (either None: the other; ties: the smaller
    msg_id, as ``longest`` picks): what the writer's tally keeps, and what adding up its
    segments' summaries keeps."""
    if found is None:
        return other
    if other is None:
        return found
    return other if other[0] > found[0] or (other[0] == found[0] and other[1] < found[1]) else found


def longest_path(longest) -> dict:
    """What a summary says of the critical path of a run whose tasks depend on none: its longest
    task, ``[run µs, msg_id]`` as the writer's tally keeps it (None: no task ran)."""
    if longest is None:
        return {"tasks": [], "run_seconds": 0.0, "elapsed_seconds": 0.0}
    seconds = round(longest[0] / 1e6, 6)
    return {"tasks": [longest[1]], "run_seconds": seconds, "elapsed_seconds": seconds}
