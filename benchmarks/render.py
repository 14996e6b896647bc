"""Figure 8: drawing a big run: the matplotlib timeline and the HTML report.

A log of 100,000 tasks on 8 engines is written with ``open_log`` from the
realistic events of the other figures (each task queued, run, and its reply
received later, so the timeline draws three bars per task) and replayed once.

Measured (8a): seconds for ``draw_timeline(state)`` plus ``fig.savefig`` to a
PNG file (Agg, the sink's 120 dpi), the median of the repeats, after one
untimed warm-up drawing (imports, fonts). Also shown: ``replay()`` of the log,
and the whole ``ipyrecorder replay LOG --sink matplotlib -o x.png`` in a new
process (interpreter start, imports, replay, drawing).
Baseline: the same for a bare ``PolyCollection`` of 100,000 rectangles (one
colour, no edges) on one Axes of the same size: about the least matplotlib can
do to draw 100,000 bars.

Measured (8b, 8c): seconds for the html sink to write its report of the
already replayed state (``build_report_data`` + ``render_html`` + writing the
file), for 100,000 tasks and, in the full run, 1,000,000; and the report's
bytes per task. Baseline: ``replay()`` of the same log (what every sink pays
first); the log's bytes per task are shown beside the report's.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from datetime import timedelta

from ipyrecorder import open_log, replay
from ipyrecorder.log import new_header
from ipyrecorder.sink import Log

from ._util import EPOCH, ROOT, engine_registrations, loadavg, log, now_us, scheduled_task_events, timed

ENGINES = 8
TARGET_SECONDS = 3.0


def build_log(path, tasks: int, engines: int = ENGINES) -> float:
    """Write ``tasks`` tasks on ``engines`` engines with open_log; returns seconds taken."""
    started = time.perf_counter()
    t0_us = now_us()
    t0 = EPOCH + timedelta(microseconds=t0_us)
    with open_log(path, "w", new_header(t0=t0)) as writer:
        for event in engine_registrations(t0, engines):
            writer.append(event)
        for event in scheduled_task_events(tasks, t0_us, engines):
            writer.append(event)
    return time.perf_counter() - started


def _draw(state, out):
    from ipyrecorder.figure import DPI, draw_timeline
    from ipyrecorder.timeline import TimelineData

    t0 = time.perf_counter()
    TimelineData(state)  # the numpy arrays alone, for the breakdown
    t1 = time.perf_counter()
    fig = draw_timeline(state)
    t2 = time.perf_counter()
    fig.savefig(out, format="png", dpi=DPI)
    t3 = time.perf_counter()
    return {"data": t1 - t0, "draw": t2 - t1, "savefig": t3 - t2, "total": t3 - t1}


def _bare(n: int, out):
    """A PolyCollection of ``n`` rectangles on ENGINES rows, same figure size and dpi."""
    import numpy as np
    from matplotlib.collections import PolyCollection
    from matplotlib.figure import Figure

    from ipyrecorder.figure import DPI, figure_size

    t0 = time.perf_counter()
    rng = np.random.default_rng(1)
    row = rng.integers(0, ENGINES, n).astype(float)
    left = np.sort(rng.uniform(0, 250, n))
    right = left + 0.002
    y0, y1 = row - 0.36, row + 0.36
    verts = np.stack(
        [np.stack([left, y0], 1), np.stack([left, y1], 1), np.stack([right, y1], 1), np.stack([right, y0], 1)], 1
    )
    fig = Figure(figsize=figure_size(ENGINES))
    ax = fig.subplots()
    ax.add_collection(PolyCollection(verts, facecolors="#1f77b4", edgecolors="none"))
    ax.set_xlim(0, 251)
    ax.set_ylim(ENGINES - 0.5, -0.5)
    fig.savefig(out, format="png", dpi=DPI)
    return time.perf_counter() - t0


def _cli(path, out) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "ipyrecorder", "replay", path, "--sink", "matplotlib", "-o", out],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return time.perf_counter() - t0


def _html(state, path, out) -> float:
    from ipyrecorder.plugins.html_sink import HtmlSink

    source = Log(path)
    source.__dict__["state"] = state  # already replayed: time the sink alone
    sink = HtmlSink()
    t0 = time.perf_counter()
    with open(out, "w", encoding="utf-8") as fh:
        sink.write(source, fh)
    return time.perf_counter() - t0


def _html_case(tmpdir, path, state, tasks, repeats, replay_s) -> dict:
    out = os.path.join(tmpdir, "report.html")
    seconds = [_html(state, path, out) for _ in range(repeats)]
    size, log_size = os.path.getsize(out), os.path.getsize(path)
    os.remove(out)
    gen = statistics.median(seconds)
    return {
        "tasks": tasks,
        "seconds": seconds,
        "html_seconds": gen,
        "replay_seconds": replay_s,
        "ratio": gen / replay_s,
        "html_bytes": size,
        "html_bytes_per_task": size / tasks,
        "log_bytes_per_task": log_size / tasks,
        "tasks_per_s": tasks / gen,
    }


def run(tmpdir, tasks: int, repeats: int, html_big: int | None) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    started = loadavg()
    path = os.path.join(tmpdir, "render.mpk")
    png = os.path.join(tmpdir, "render.png")
    log(f"[render] writing a log of {tasks:,} tasks on {ENGINES} engines ...")
    build_s = build_log(path, tasks)
    replay_s, state = timed(replay, path)
    assert len(state.tasks) == tasks and not state.damage, (len(state.tasks), state.damage)

    # warm-up: imports, font cache, Agg
    small = os.path.join(tmpdir, "small.mpk")
    build_log(small, 200)
    _draw(replay(small), png)
    _bare(200, png)
    os.remove(small)

    log(f"[render] timeline and bare PolyCollection, {repeats} repeats each; html report")
    bare_png = os.path.join(tmpdir, "bare.png")
    draws, bares = [], []
    for _ in range(repeats):  # interleaved
        draws.append(_draw(state, png))
        bares.append(_bare(tasks, bare_png))
    png_bytes = os.path.getsize(png)
    os.remove(bare_png)
    cli_s = _cli(path, png)
    total = statistics.median(d["total"] for d in draws)
    bare = statistics.median(bares)
    out = {
        "tasks": tasks,
        "engines": ENGINES,
        "loadavg_start": started,
        "log_bytes": os.path.getsize(path),
        "build_seconds": build_s,
        "replay_seconds": replay_s,
        "repeats": repeats,
        "timeline": draws,
        "timeline_seconds": total,
        "timeline_data_seconds": statistics.median(d["data"] for d in draws),
        "timeline_draw_seconds": statistics.median(d["draw"] for d in draws),
        "timeline_savefig_seconds": statistics.median(d["savefig"] for d in draws),
        "bare_seconds_all": bares,
        "bare_seconds": bare,
        "ratio": total / bare,
        "png_bytes": png_bytes,
        "cli_seconds": cli_s,
        "target_seconds": TARGET_SECONDS,
    }
    log(
        f"[render] timeline {total:.2f} s (draw {out['timeline_draw_seconds']:.2f} + savefig "
        f"{out['timeline_savefig_seconds']:.2f}), bare {bare:.2f} s, replay {replay_s:.2f} s, "
        f"CLI end to end {cli_s:.2f} s"
    )
    out["html"] = _html_case(tmpdir, path, state, tasks, repeats, replay_s)
    log(
        f"[render] html {tasks:,} tasks: {out['html']['html_seconds']:.2f} s, "
        f"{out['html']['html_bytes_per_task']:.1f} B/task"
    )
    del state
    os.remove(path)
    os.remove(png)

    if html_big:
        log(f"[render] writing a log of {html_big:,} tasks for the html report ...")
        build_log(path, html_big)
        big_replay_s, state = timed(replay, path)
        out["html_big"] = _html_case(tmpdir, path, state, html_big, 1, big_replay_s)
        log(
            f"[render] html {html_big:,} tasks: {out['html_big']['html_seconds']:.2f} s, "
            f"{out['html_big']['html_bytes_per_task']:.1f} B/task (replay {big_replay_s:.2f} s)"
        )
        del state
        os.remove(path)
    return out
