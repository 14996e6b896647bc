"""Figures 10: a long history, as issue 11 measures it (1M tasks; 10M with ``make bench-10m``).

A synthetic log of N tasks (submit, start, complete each, on the usual engines)
is written by ``LogWriter``; then each step runs in a fresh interpreter, which
reports its own time and peak resident memory (``VmHWM``):

* ``replay()`` of the log (events folded per second, resident bytes per task);
* ``ipyrecorder info``;
* the html, parquet and parquet-dataset sinks through the CLI.

Baseline, same run: a bare ``msgpack.Unpacker`` decoding the same events packed one
msgpack array each (events per second): msgpack's cost of the events alone. Standalone:
``python -m benchmarks.scale --tasks 10000000 [--dir DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

import msgpack

from ._util import ROOT, log, now_us, write_task_log

STEP = """
import json, sys, time
from ipyrecorder import replay
from ipyrecorder.cli import main
kind, path, out = sys.argv[1:4]
t0 = time.perf_counter()
if kind == "replay":
    state = replay(path)
    extra = {"events": state.events, "tasks": len(state.tasks)}
else:
    args = ["info", path] if kind == "info" else ["replay", path, "--sink", kind, "-o", out]
    import contextlib, io
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        status = main(args)
    if status != 0:
        sys.exit(f"{kind}: exit status {int(status)}: {err.getvalue()}")
    extra = {}
seconds = time.perf_counter() - t0
# the peak resident memory of this process (VmHWM: ru_maxrss would count the parent's, kept across exec)
with open("/proc/self/status") as fh:
    peak = next(int(line.split()[1]) * 1024 for line in fh if line.startswith("VmHWM:"))
print(json.dumps({"seconds": seconds, "max_rss": peak, **extra}))
"""
STEPS = ("replay", "info", "html", "parquet", "parquet-dataset")
BARE_EVENTS = 3_000_000  # the baseline decodes (at most) this many events


def _step(kind, path, out) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", STEP, kind, path, out], cwd=ROOT, capture_output=True, text=True, timeout=3600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{kind} failed: {proc.stderr[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _bare_decode(path) -> float:
    """Events/s of a bare Unpacker over (up to BARE_EVENTS of) the log's events, one array each."""
    from ipyrecorder.log import LogReader

    rows = []
    for _, frame in LogReader(path).frames():
        rows.extend(frame.rows())
        if len(rows) >= BARE_EVENTS:
            break
    blob = b"".join(map(msgpack.packb, rows))
    del rows
    unpacker = msgpack.Unpacker(raw=False, use_list=False, strict_map_key=False, max_buffer_size=len(blob) + 1)
    unpacker.feed(blob)
    t0 = time.perf_counter()
    n = sum(1 for _ in unpacker)
    return n / (time.perf_counter() - t0)


def run(tmpdir, tasks: int) -> dict:
    path = os.path.join(tmpdir, "scale.mpk")
    log(f"[scale] writing a log of {tasks:,} tasks ...")
    started = time.perf_counter()
    write_task_log(path, tasks, now_us())
    out = {"tasks": tasks, "log_bytes": os.path.getsize(path), "build_seconds": time.perf_counter() - started}
    out["bare_events_per_s"] = _bare_decode(path)
    for kind in STEPS:
        target = os.path.join(tmpdir, f"out-{kind}")
        log(f"[scale] {kind} ...")
        try:
            out[kind] = _step(kind, path, target)
        except RuntimeError as exc:  # one step failing does not lose the others' figures
            log(f"[scale] {exc}")
            out[kind] = {"error": str(exc)}
        if os.path.isdir(target):
            shutil.rmtree(target)
        elif os.path.exists(target):
            os.remove(target)
    os.remove(path)
    replayed = out["replay"]
    if "error" in replayed:
        raise RuntimeError(replayed["error"])
    out["replay_events_per_s"] = replayed["events"] / replayed["seconds"]
    out["resident_bytes_per_task"] = replayed["max_rss"] / tasks
    return out


def rows(result) -> list:
    """Rows for benchmarks.__main__'s table: (figure, measured, baseline, ratio, detail, target)."""
    n = result["tasks"]
    label = f"{n / 1e6:g}M" if n >= 1e6 else f"{n / 1e3:g}k"
    r = result["replay"]
    rate, bare = result["replay_events_per_s"], result["bare_events_per_s"]
    out = [
        (
            f"10a replay() {label} tasks",
            f"{rate / 1e6:.2f} M events/s",
            f"{bare / 1e6:.1f} M events/s Unpacker",
            f"{rate / bare:.3f}",
            f"{r['seconds']:.1f} s; log {result['log_bytes'] / n:.1f} B/task",
            ">= 0.5 of bare: " + ("met" if rate >= bare / 2 else "MISSED"),
        ),
        (
            f"10b resident after replay() {label}",
            f"{result['resident_bytes_per_task']:.0f} B/task",
            "",
            "",
            f"{r['max_rss'] / 1e9:.2f} GB peak",
            "<= 120 B/task: " + ("met" if result["resident_bytes_per_task"] <= 120 else "MISSED"),
        ),
    ]
    targets = {"info": (2, None), "html": (20, 2e9), "parquet": (20, 2e9), "parquet-dataset": (None, None)}
    for kind, (seconds, memory) in targets.items():
        s = result[kind]
        if "error" in s:
            out.append((f"10c {kind} {label}", "failed", "", "", s["error"][-80:], ""))
            continue
        verdict = []
        if seconds is not None:
            verdict.append(f"< {seconds} s: " + ("met" if s["seconds"] < seconds else "MISSED"))
        if memory is not None:
            verdict.append(f"< {memory / 1e9:g} GB: " + ("met" if s["max_rss"] < memory else "MISSED"))
        out.append(
            (
                f"10c {kind} {label}",
                f"{s['seconds']:.1f} s",
                "",
                "",
                f"{s['max_rss'] / 1e9:.2f} GB peak",
                ", ".join(verdict),
            )
        )
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument("--tasks", type=int, default=10_000_000)
    parser.add_argument("--dir", help="where to write the log (default: a temporary directory)")
    parser.add_argument("--json", metavar="FILE", help="also save the measurements to FILE")
    args = parser.parse_args(argv)
    tmpdir = args.dir or tempfile.mkdtemp(prefix="ipyrecorder-scale-")
    try:
        result = run(tmpdir, args.tasks)
    finally:
        if not args.dir:
            shutil.rmtree(tmpdir, ignore_errors=True)
    head = ("figure", "measured", "baseline (same run)", "ratio", "spread / detail", "target")
    table = [head] + rows(result)
    widths = [max(len(str(r[i])) for r in table) for i in range(len(head))]
    for row in table:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)).rstrip())
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
