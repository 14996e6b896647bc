"""Figure 7: a live viewer keeps up with 10,000 events/s, in bounded memory.

An appender (this process) writes realistic submit/start/complete events with
``open_log`` at ``RATE`` events/s for 60 s (10 s with ``--quick``), paced as the
recorder writes: a flush every 50 ms holding the events due by then. A
``LogTail`` driven by ``Follower`` (file events, the default) follows it in a
separate process, so that its memory and CPU are its own.

Measured (7a): events/s folded by the follower, the lag (events flushed but not
yet folded, and seconds from a flush to its fold), and the follower's CPU.
Baseline: events/s the appender achieved; the ratio is folded/written.

Measured (7b): the follower process's RSS (``/proc/self/status`` VmRSS) at
start, middle and end, sampled with the tasks it holds. The ``State`` grows
with the tasks (that is the data), so "bounded" means: RSS grows linearly with
tasks held, at the rate a plain ``replay()`` of the same log needs, with no
growth from reading. Baseline: the RSS of a new process after ``replay()`` of
the finished log (the same tasks, folded in one go).
"""

from __future__ import annotations

import bisect
import json
import os
import subprocess
import sys

from ipyrecorder.recorder import FLUSH_INTERVAL

from ._util import ROOT, loadavg, log, quantile, task_events
from .tail import Reader, append_paced, latencies, new_log, summary_ms

RATE = 10_000  # events/s
FLUSH_EVERY = FLUSH_INTERVAL  # seconds: the recorder's flush interval
SAMPLE_EVERY = 0.5  # seconds between RSS samples in the follower

REPLAY_RSS = """
import json, sys
from ipyrecorder import replay
from benchmarks._util import rss_bytes
before = rss_bytes()
state = replay(sys.argv[1])
print(json.dumps({"rss_before": before, "rss_after": rss_bytes(), "tasks": len(state.tasks)}))
"""


def _replay_rss(path) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", REPLAY_RSS, path], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _slope(points) -> float:
    """Least-squares slope of y over x."""
    n = len(points)
    if n < 2:
        return float("nan")
    mx = sum(x for x, _ in points) / n
    my = sum(y for _, y in points) / n
    sxx = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / sxx if sxx else float("nan")


def run(tmpdir, seconds: float) -> dict:
    started = loadavg()
    path = os.path.join(tmpdir, "sustained.mpk")
    writer, t0_us = new_log(path)
    reader = Reader(path, "tail", poll=False, sample_every=SAMPLE_EVERY)
    n_batches = round(seconds / FLUSH_EVERY)
    log(
        f"[sustained] {RATE:,} events/s for {seconds:g} s, a flush every {FLUSH_EVERY * 1e3:g} ms; "
        "follower in its own process"
    )
    try:
        first = reader.start()
        events = task_events(int(RATE * seconds / 3) + 10_000, t0_us, rate=RATE / 3)
        batches = append_paced(writer, events, RATE, [FLUSH_EVERY] * n_batches)
        writer.close()
        folds, samples, info = reader.finish(writer.bytes_written)
    finally:
        reader.kill()
    size = os.path.getsize(path)
    replayed = _replay_rss(path)
    os.remove(path)

    t_start = batches[0][0] - FLUSH_EVERY
    written = batches[-1][2]
    written_rate = written / (batches[-1][0] - t_start)
    # the follower's progress in events: the batches wholly inside the bytes it had folded
    batch_bytes = [b for _, b, _ in batches]
    batch_events = [e for _, _, e in batches]

    def events_in(nbytes):
        i = bisect.bisect_right(batch_bytes, nbytes)
        return batch_events[i - 1] if i else 0

    fold_t = [t for t, _ in folds]
    lag_events = []
    for t_flush, _, flushed in batches:
        i = bisect.bisect_right(fold_t, t_flush)
        lag_events.append(flushed - (events_in(folds[i - 1][1]) if i else 0))
    lat = latencies(batches, folds)
    worst = sorted(((x, t - t_start) for x, (t, _, _) in zip(lat, batches) if x is not None), reverse=True)[:10]
    pauses = info["gc_full_collections"]
    caught_up = next((t for t, b in folds if b >= batch_bytes[-1]), None)
    folded_rate = written / (caught_up - t_start) if caught_up else float("nan")

    # RSS against tasks held; the first sample is before the appender started
    points = [(tasks, rss) for _, rss, tasks, _ in samples]
    half = len(points) // 2
    mid = samples[half] if samples else None
    end_rss = info["rss_end"]
    tasks = info["folded_tasks"]
    replay_growth = replayed["rss_after"] - replayed["rss_before"]
    cpu = info["cpu_seconds"] - first["cpu_start"]
    out = {
        "rate_target": RATE,
        "seconds": seconds,
        "flush_every_s": FLUSH_EVERY,
        "loadavg_start": started,
        "log_bytes": size,
        "events_written": written,
        "written_events_per_s": written_rate,
        "folded_events_per_s": folded_rate,
        "ratio": folded_rate / written_rate,
        "tasks": tasks,
        "follower_mode": info["follower_mode"],
        "notices": info["notices"],
        "damage": info["damage"],
        "reads": len(folds),
        "max_lag_events": max(lag_events),
        "p95_lag_events": quantile(lag_events, 0.95),
        "lag_events_first_tenth_max": max(lag_events[: len(lag_events) // 10 or 1]),
        "lag_events_last_tenth_max": max(lag_events[-(len(lag_events) // 10 or 1) :]),
        "never_folded": sum(x is None for x in lat),
        "worst_latencies": [{"seconds": x, "at_s": at} for x, at in worst],
        "gc_full_collections": len(pauses),
        "gc_full_max_ms": 1e3 * max((d for _, d in pauses), default=0.0),
        "gc_full_total_ms": 1e3 * sum(d for _, d in pauses),
        "gc_full_pauses": [{"at_s": t - t_start, "ms": 1e3 * d} for t, d in pauses],
        **{f"latency_{k}": v for k, v in summary_ms([x for x in lat if x is not None]).items()},
        "follower_cpu_seconds": cpu,
        "follower_cpu_share": cpu / (caught_up - t_start) if caught_up else float("nan"),
        "follower_us_per_event": 1e6 * cpu / written,
        "rss_start": first["rss_start"],
        "rss_middle": mid[1] if mid else None,
        "tasks_middle": mid[2] if mid else None,
        "rss_end": end_rss,
        "rss_samples": samples,
        "rss_per_task": (end_rss - first["rss_start"]) / tasks if tasks else float("nan"),
        "rss_slope_per_task": _slope(points),
        "rss_slope_first_half": _slope(points[:half]),
        "rss_slope_second_half": _slope(points[half:]),
        "replay_rss_before": replayed["rss_before"],
        "replay_rss_after": replayed["rss_after"],
        "replay_rss_per_task": replay_growth / replayed["tasks"] if replayed["tasks"] else float("nan"),
        "rss_ratio": end_rss / replayed["rss_after"],
    }
    log(
        f"[sustained] wrote {written_rate:,.0f} events/s, folded {folded_rate:,.0f}/s; max lag "
        f"{out['max_lag_events']} events, {out['latency_max_ms']:.1f} ms; follower RSS "
        f"{first['rss_start'] / 1e6:.0f} -> {end_rss / 1e6:.0f} MB for {tasks:,} tasks "
        f"(replay: {replayed['rss_after'] / 1e6:.0f} MB)"
    )
    return out
