"""``replay()`` of small logs in two source trees, alternating, in fresh processes.

A redesign must not make small logs slower; this puts a number on it. Usage::

    git worktree add --detach /tmp/before <commit>
    .venv/bin/python -m benchmarks.ab_replay /tmp/before .

Writes the logs once (with this tree's writer, so both read the same bytes), then runs
each tree's ``replay()`` on each log ``--rounds`` times, alternating, and prints the
best time of each (best of 7 per process) and the ratio after / before.
"""

from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile
from datetime import timedelta

TIMER = """
import os, sys, time
root, logs = sys.argv[1:3]
sys.path.insert(0, root)
import ipyrecorder
assert ipyrecorder.__file__.startswith(os.path.abspath(root)), ipyrecorder.__file__
best = {}
for name in sorted(os.listdir(logs)):
    path = os.path.join(logs, name)
    times = []
    for _ in range(7):
        t = time.perf_counter()
        ipyrecorder.replay(path)
        times.append(time.perf_counter() - t)
    best[name] = min(times)
print(repr(best))
"""


def write_logs(directory: str) -> None:
    """The small logs: interleaved output and labels, one frame per task, every field, synthetic."""
    from ipyrecorder.log import LogWriter, new_header
    from tests.helpers import T0, rich_log, varied_log

    from ._util import now_us, write_task_log

    rich_log(os.path.join(directory, "rich-600.mpk"))
    rich_log(os.path.join(directory, "rich-5000.mpk"), n=5000)
    varied_log(os.path.join(directory, "varied-3000.mpk"))
    with LogWriter(os.path.join(directory, "frame-per-task-2000.mpk"), "w", new_header(t0=T0)) as writer:
        for i in range(2000):
            msg_id, t = f"abc_9_{i}", T0 + timedelta(seconds=i * 0.025)
            writer.append({"kind": "submit", "msg_id": msg_id, "t": t, "queue": "task", "function": "f"})
            writer.append({"kind": "start", "msg_id": msg_id, "t": t + timedelta(milliseconds=1), "engine_id": i % 4})
            writer.append(
                {
                    "kind": "complete",
                    "msg_id": msg_id,
                    "status": "ok",
                    "completed": t + timedelta(milliseconds=5),
                    "received": t + timedelta(milliseconds=6),
                    "engine_id": i % 4,
                }
            )
            writer.flush()  # one frame per task, as the recorder writes a slow run
    write_task_log(os.path.join(directory, "synthetic-66666.mpk"), 66_666, now_us())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("before", help="the source tree to compare against")
    p.add_argument("after", help="the source tree measured")
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as logs:
        write_logs(logs)
        best: dict = {}
        for _ in range(args.rounds):
            for side, root in (("before", args.before), ("after", args.after)):
                out = subprocess.run([sys.executable, "-c", TIMER, root, logs], check=True, capture_output=True)
                for name, seconds in ast.literal_eval(out.stdout.decode()).items():
                    best[name, side] = min(best.get((name, side), seconds), seconds)
    print(f"{'log':28} {'before':>10} {'after':>10}  ratio")
    for name in sorted({name for name, _ in best}):
        before, after = best[name, "before"], best[name, "after"]
        print(f"{name:28} {before * 1e3:8.2f}ms {after * 1e3:8.2f}ms  {after / before:.2f}")


if __name__ == "__main__":
    main()
