"""Figures 9: the live web dashboard (`ipyrecorder serve`), in headless Chromium.

9a Backlog to a new browser. A log of about 1,000,000 wire events (about
   220,000 tasks on 16 engines, written beforehand by ``LogWriter``: varied
   run times, queueing, three functions, some names, output and failures, so
   that it compresses like a real run and not like a repeated pattern) is
   served by ``ipyrecorder serve`` in a fresh process; once the server has
   folded it, a new page opens the dashboard. Measured: the time
   from navigation until the timeline has drawn every task (the page's
   ``lastDraw.bars``), and the bytes the page received (Resource Timing's
   ``transferSize`` of the page, its assets and the snapshot).
   Baselines, same run: ``replay()`` of the same log in this process (folding
   it, no browser); the log's size on disk.

9b Sustained 10,000 events/s. A writer thread appends realistic task events
   (submit, start, complete: 3 per task) at that rate to a log the server
   follows, flushing every 50 ms as the recorder does, for some seconds, while
   a page shows the live (scrolling) timeline. Measured in the page: the
   interval between animation frames (``requestAnimationFrame`` timing: its
   95th percentile, and frames over 50 ms) and the timeline's draw time; the
   latency from append to page: for each batch, from the flush that wrote the
   oldest task new in it to the moment the page had applied the batch (the
   batch's worst case); on the server: its resident memory (max over the run).
   Baselines, same run: the same page's frame intervals while nothing is
   appended; the server's memory before the stream starts.

9f ``/api/summary``'s cost: the median time of 30 requests, one after another, to
   the server of 9a once it has folded the backlog. Baseline, same run: the same
   on a log of about 1,000 tasks.

``run(tmpdir, backlog_events, rate, seconds)`` returns every measurement;
``rows(result)`` gives the table rows in ``benchmarks.__main__``'s format.
Standalone: ``python -m benchmarks.serve [--quick]``.
"""

from __future__ import annotations

import argparse
import bisect
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta

from ._util import EPOCH, ROOT, engine_registrations, log, now_us, quantile, rss_bytes, task_events, timed

PARAMS = {"backlog_events": (1_000_000, 200_000), "rate": (10_000, 10_000), "seconds": (15.0, 5.0)}  # (full, quick)
FRAME_TARGET_MS = 50.0  # p95 interval between frames while streaming: at least 20 frames per second
LATENCY_TARGET_MS = 250.0
SUMMARY_REQUESTS = 30  # requests timed for /api/summary's cost (9f), on the backlog and on a small log
SUMMARY_BASELINE_EVENTS = 4_000  # the small log: about 1,000 tasks
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
READY = "() => window.ipyrecorderLive && (window.ipyrecorderLive.ready || window.ipyrecorderLive.error)"
# Measured from outside the page, with its public API only: the intervals between animation frames
# (our own requestAnimationFrame loop) and the time of each timeline draw (``draws``, ``lastDraw.ms``).
WATCH_FRAMES = """ms => new Promise(resolve => {
  const live = window.ipyrecorderLive, frames = [], draws = [], stop = performance.now() + ms;
  let last = null, seen = live.draws;
  function tick(ts) {
    if (last !== null) frames.push(ts - last);
    last = ts;
    if (live.draws !== seen) { seen = live.draws; draws.push(live.lastDraw.ms); }
    if (ts < stop) requestAnimationFrame(tick); else resolve({ frames, draws });
  }
  requestAnimationFrame(tick);
})"""


def watch_frames(page, ms: int) -> dict:
    """Frame intervals and draw times (ms) over the next ``ms`` milliseconds, summarised."""
    got = page.evaluate(WATCH_FRAMES, ms)
    frames, draws = got["frames"], got["draws"]
    return {
        "frames": len(frames) + 1,
        "frame_p50": quantile(frames, 0.5),
        "frame_p95": quantile(frames, 0.95),
        "frame_p99": quantile(frames, 0.99),
        "frame_max": max(frames, default=math.nan),
        "long_frames": sum(1 for f in frames if f > FRAME_TARGET_MS),
        "draws": len(draws),
        "draw_p95": quantile(draws, 0.95),
    }


class Server:
    """``python -m ipyrecorder serve LOG --port 0`` in a fresh process; ``url`` once it listens."""

    def __init__(self, path):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ipyrecorder", "serve", str(path), "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        first = self.proc.stdout.readline()
        url = self.proc.stdout.readline().strip()
        if not url.startswith("http://"):
            self.close()
            raise RuntimeError(f"the server did not start: {first}{url}{self.proc.stderr.read()}")
        self.url = url  # with its token
        self.base, _, self.query = url.partition("?")

    def rss(self) -> int:
        return rss_bytes(self.proc.pid)

    def summary(self) -> dict:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.base}api/summary?{self.query}", timeout=300) as resp:
            return json.loads(resp.read())

    def summary_ms(self, requests: int = SUMMARY_REQUESTS) -> float:
        """Median milliseconds of ``/api/summary`` over ``requests`` requests, one after another."""
        times = []
        for _ in range(requests):
            started = time.perf_counter()
            self.summary()
            times.append(1000 * (time.perf_counter() - started))
        return statistics.median(times)

    def close(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _browser(pw):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise RuntimeError("the serve benchmark needs chromium (apt-get install chromium) and Playwright")
    return pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)


def _page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    return context, page, errors


def build_backlog(path, wire_events: int, engines: int = 16, seed: int = 3) -> dict:
    """A finished run of about ``wire_events`` wire events: varied, as a real one (see the module's doc)."""
    from ipyrecorder import LogWriter
    from ipyrecorder.log import new_header

    rng = random.Random(seed)
    t0 = now_us() - 3_600_000_000
    functions = ("simulate", "load_chunk", "reduce_partial")
    started = time.perf_counter()
    with LogWriter(path, "w", new_header(t0=EPOCH + timedelta(microseconds=t0))) as writer:
        for event in engine_registrations(EPOCH + timedelta(microseconds=t0), engines):
            writer.append(event)
        free = [t0] * engines
        wire, i = 0, 0
        while wire < wire_events:
            msg_id = f"5287fcdc-61bcbc355f01423e1adc1e3d_4987_{i + 1}"
            function = functions[0 if i % 5 else (1 if i % 10 else 2)]
            sub = t0 + i * 2_000 + rng.randint(0, 300)
            e = min(range(engines), key=free.__getitem__)
            start = max(free[e], sub) + rng.randint(200, 3_000)
            end = start + int(rng.lognormvariate(math.log(25_000), 0.7) * (3 if function == "reduce_partial" else 1))
            free[e] = end
            writer.append({"kind": "submit", "msg_id": msg_id, "t": sub / 1e6, "queue": "task", "function": function})
            writer.append({"kind": "start", "msg_id": msg_id, "t": start / 1e6, "engine_id": e})
            wire += 4  # with the task's id definition
            if i % 10 == 3:
                writer.append(
                    {
                        "kind": "stdout",
                        "msg_id": msg_id,
                        "t": start / 1e6,
                        "text": f"chunk {i}: {rng.randint(1, 4096)} rows\n",
                    }
                )
                wire += 1
            failed = i % 997 == 17
            writer.append(
                {
                    "kind": "complete",
                    "msg_id": msg_id,
                    "status": "error" if failed else "ok",
                    "started": start / 1e6,
                    "completed": end / 1e6,
                    "received": (end + rng.randint(500, 4_000)) / 1e6,
                    "engine_id": e,
                    "ename": "ValueError" if failed else None,
                    "evalue": f"bad chunk {i}" if failed else None,
                }
            )
            if i % 4 == 0:
                writer.append({"kind": "label", "msg_id": msg_id, "name": f"{function}[{i}]"})
                wire += 1
            i += 1
        writer.append({"kind": "mark", "t": t0 / 1e6, "text": "start"})
    return {"tasks": i, "build_seconds": time.perf_counter() - started}


def backlog(tmpdir, browser, wire_events: int) -> dict:
    from ipyrecorder import replay

    path = os.path.join(tmpdir, "serve-backlog.mpk")
    log(f"[serve] writing a log of ~{wire_events:,} wire events ...")
    built = build_backlog(path, wire_events)
    size = os.path.getsize(path)
    fold_s, state = timed(replay, path)
    tasks, events = len(state.tasks), state.events
    del state
    log(f"[serve] {size / 1e6:.1f} MB, {tasks:,} tasks; replay() {fold_s:.2f} s; starting the server ...")
    started = time.perf_counter()
    server = Server(path)
    try:
        deadline = time.monotonic() + 600
        while server.summary()["progress"]["tasks"] != tasks:  # the server folds the backlog first
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not fold the backlog")
            time.sleep(0.05)
        server_fold_s = time.perf_counter() - started
        rss_folded = server.rss()
        summary_ms = server.summary_ms()
        context, page, errors = _page(browser)
        try:
            t0 = time.perf_counter()
            page.goto(server.url)
            page.wait_for_function(READY, timeout=300_000)
            ready_s = time.perf_counter() - t0
            page.wait_for_function(
                "n => (window.ipyrecorderLive.lastDraw || {}).bars === n", arg=tasks, timeout=300_000
            )
            drawn_s = time.perf_counter() - t0
            timing = page.evaluate("""() => {
                const nav = performance.getEntriesByType("navigation")[0];
                const res = performance.getEntriesByType("resource");
                const snap = res.find(r => r.name.includes("/api/snapshot"));
                return {page: nav.transferSize, resources: res.filter(r => !r.name.includes("/api/stream"))
                          .reduce((a, r) => a + r.transferSize, 0),
                        snapshot: snap ? snap.transferSize : null, snapshot_decoded: snap ? snap.decodedBodySize : null,
                        install_ms: window.ipyrecorderLive.installMs, draw_ms: window.ipyrecorderLive.lastDraw.ms,
                        heap: performance.memory ? performance.memory.usedJSHeapSize : null};
            }""")
            if errors:
                raise RuntimeError(f"console errors: {errors[:3]}")
        finally:
            context.close()
        rss_served = server.rss()
    finally:
        server.close()
        os.remove(path)
    sent = timing["page"] + timing["resources"]
    return {
        "wire_events": events,
        "tasks": tasks,
        "log_bytes": size,
        "build_seconds": built["build_seconds"],
        "replay_seconds": fold_s,
        "server_fold_seconds": server_fold_s,
        "page_ready_seconds": ready_s,
        "first_full_draw_seconds": drawn_s,
        "ratio_vs_replay": drawn_s / fold_s,
        "bytes_sent": sent,
        "snapshot_bytes": timing["snapshot"],
        "snapshot_decoded_bytes": timing["snapshot_decoded"],
        "bytes_per_task": sent / tasks,
        "ratio_bytes_vs_log": sent / size,
        "page_install_ms": timing["install_ms"],
        "page_draw_ms": timing["draw_ms"],
        "page_js_heap_bytes": timing["heap"],
        "server_rss_folded": rss_folded,
        "server_rss_after_serving": rss_served,
        "summary_ms": summary_ms,
        **summary_baseline(tmpdir),
    }


def summary_baseline(tmpdir) -> dict:
    """``/api/summary``'s cost on a log of about 1,000 tasks: what the backlog's is measured against."""
    path = os.path.join(tmpdir, "serve-small.mpk")
    tasks = build_backlog(path, SUMMARY_BASELINE_EVENTS)["tasks"]
    server = Server(path)
    try:
        deadline = time.monotonic() + 60
        while server.summary()["progress"]["tasks"] != tasks:
            if time.monotonic() > deadline:
                raise RuntimeError("the server did not fold the small log")
            time.sleep(0.05)
        return {"summary_baseline_tasks": tasks, "summary_baseline_ms": server.summary_ms()}
    finally:
        server.close()
        os.remove(path)


def _writer(path, rate: float, seconds: float, stop: threading.Event, out: dict):
    """Append realistic task events at ``rate`` public events/s, a frame every 50 ms, for ``seconds``.

    ``out["flushes"]``: (wall time after each flush, largest msg_id suffix submitted so far).
    """
    from ipyrecorder import LogWriter
    from ipyrecorder.log import new_header

    t0 = now_us()
    tasks = int(rate / 3 * seconds) + 1
    writer = LogWriter(path, "a", new_header(t0=EPOCH + timedelta(microseconds=t0)))
    events = task_events(tasks, t0, rate=rate / 3, in_flight=16, engines=8)
    flushes = out["flushes"] = []
    written, newest = 0, 0
    start = time.perf_counter()
    try:
        for event in engine_registrations(EPOCH + timedelta(microseconds=t0), engines=8):
            writer.append(event)
        writer.flush()
        tick = 0
        while not stop.is_set() and tick * 0.05 < seconds:
            tick += 1
            delay = start + tick * 0.05 - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            due = int(rate * min(tick * 0.05, seconds))
            while written < due:
                event = next(events, None)
                if event is None:
                    break
                writer.append(event)
                written += 1
                if event["kind"] == "submit":
                    newest = int(event["msg_id"].rsplit("_", 1)[1])
            writer.flush()
            flushes.append((time.time(), newest))
        for event in events:  # the last tasks' starts and completions
            writer.append(event)
            written += 1
    finally:
        out["events"] = written
        out["seconds"] = time.perf_counter() - start
        out["tasks"] = tasks
        writer.close()


def _latencies(flushes, arrivals) -> list:
    """Per batch: from the flush that wrote its oldest new task to the page having the batch (ms)."""
    times = [t for t, _ in flushes]
    newest = [n for _, n in flushes]
    out = []
    for at, first_new, _ in arrivals:
        k = bisect.bisect_left(newest, first_new)
        if k < len(times):
            out.append(at - 1000 * times[k])
    return out


def sustained(tmpdir, browser, rate: float, seconds: float) -> dict:
    from ipyrecorder import LogWriter
    from ipyrecorder.log import new_header

    path = os.path.join(tmpdir, "serve-live.mpk")
    LogWriter(path, "w", new_header()).close()
    server = Server(path)
    try:
        context, page, errors = _page(browser)
        try:
            page.goto(server.url)
            page.wait_for_function(READY, timeout=60_000)
            page.evaluate("window.ipyrecorderLive.setSpan(60)")  # the live, scrolling one-minute window
            time.sleep(0.5)
            log(f"[serve] idle frames (baseline), then {rate:,.0f} events/s for {seconds:g} s ...")
            idle = watch_frames(page, 3000)
            rss_before = server.rss()
            stop, out = threading.Event(), {}
            thread = threading.Thread(target=_writer, args=(path, rate, seconds, stop, out), daemon=True)
            samples = []
            thread.start()
            time.sleep(1.0)  # warm up: the first seconds fill the window
            measure = threading.Thread(target=lambda: samples.extend(_sample_rss(server, thread)), daemon=True)
            measure.start()
            live = watch_frames(page, max(1000, int((seconds - 2) * 1000)))
            thread.join()
            measure.join()
            page.wait_for_function("n => window.ipyrecorderLive.counts().ok === n", arg=out["tasks"], timeout=60_000)
            stale = _latencies(out["flushes"], page.evaluate("window.ipyrecorderLive.arrivals.slice()"))
            tasks = page.evaluate("window.ipyrecorderLive.tasks()")
            if errors:
                raise RuntimeError(f"console errors: {errors[:3]}")
        finally:
            context.close()
    finally:
        server.close()
        os.remove(path)
    rss_max = max(samples) if samples else server.rss()
    return {
        "rate_target": rate,
        "events": out["events"],
        "events_per_s": out["events"] / out["seconds"],
        "seconds": out["seconds"],
        "tasks_seen": tasks,
        "idle_frames": idle,
        "live_frames": live,
        "frame_p95_ms": live["frame_p95"],
        "idle_frame_p95_ms": idle["frame_p95"],
        "frame_ratio": live["frame_p95"] / idle["frame_p95"],
        "long_frames": live["long_frames"],
        "draw_p95_ms": live["draw_p95"],
        "latency_ms": {
            "p50": statistics.median(stale),
            "p95": quantile(stale, 0.95),
            "max": max(stale),
            "n": len(stale),
        },
        "server_rss_before": rss_before,
        "server_rss_max": rss_max,
        "rss_ratio": rss_max / rss_before,
    }


def _sample_rss(server, thread):
    while thread.is_alive():
        yield server.rss()
        time.sleep(0.25)


def run(tmpdir, backlog_events: int = 1_000_000, rate: float = 10_000, seconds: float = 15.0) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = _browser(pw)
        try:
            result = {
                "backlog": backlog(tmpdir, browser, backlog_events),
                "sustained": sustained(tmpdir, browser, rate, seconds),
            }
        finally:
            browser.close()
    return result


def _mb(n) -> str:
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def rows(result: dict) -> list[tuple]:
    """Rows for benchmarks.__main__'s table: (figure, measured, baseline, ratio, detail, target)."""
    out = []
    b = result.get("backlog")
    if b:
        out.append(
            (
                f"9a serve: {b['wire_events'] / 1e6:.2g}M-event backlog, first full draw",
                f"{b['first_full_draw_seconds']:.2f} s",
                f"{b['replay_seconds']:.2f} s replay()",
                f"{b['ratio_vs_replay']:.2f}",
                f"{b['tasks']:,} tasks; page ready {b['page_ready_seconds']:.2f} s "
                f"(decode {b['page_install_ms'] / 1e3:.2f} s), "
                f"draw {b['page_draw_ms']:.0f} ms; server fold at start {b['server_fold_seconds']:.1f} s",
                "",
            )
        )
        out.append(
            (
                "9b serve: bytes to a new browser",
                _mb(b["bytes_sent"]),
                _mb(b["log_bytes"]) + " log on disk",
                f"{b['ratio_bytes_vs_log']:.3f}",
                f"{b['bytes_per_task']:.1f} B/task; snapshot {_mb(b['snapshot_bytes'])} gzip of "
                f"{_mb(b['snapshot_decoded_bytes'])}",
                "",
            )
        )
    s = result.get("sustained")
    if s:
        f = s["live_frames"]
        out.append(
            (
                f"9c serve: frame p95 at {s['events_per_s'] / 1e3:.1f}k events/s",
                f"{s['frame_p95_ms']:.1f} ms",
                f"{s['idle_frame_p95_ms']:.1f} ms idle",
                f"{s['frame_ratio']:.2f}",
                f"{s['seconds']:.0f} s, {s['tasks_seen']:,} tasks; frames p50 {f['frame_p50']:.1f} ms, "
                f"max {f['frame_max']:.0f} ms, "
                f"{s['long_frames']} over 50 ms; draw p95 {s['draw_p95_ms']:.1f} ms",
                f"<= {FRAME_TARGET_MS:.0f} ms: " + ("met" if s["frame_p95_ms"] <= FRAME_TARGET_MS else "MISSED"),
            )
        )
        lat = s["latency_ms"]
        out.append(
            (
                "9d serve: append -> page",
                f"{lat['p95']:.0f} ms p95",
                "",
                "",
                f"median {lat['p50']:.0f} ms, max {lat['max']:.0f} ms over {lat['n']} batches",
                f"< {LATENCY_TARGET_MS:.0f} ms: " + ("met" if lat["p95"] < LATENCY_TARGET_MS else "MISSED"),
            )
        )
        out.append(
            (
                "9e serve: server RSS while streaming",
                _mb(s["server_rss_max"]),
                _mb(s["server_rss_before"]) + " before",
                f"{s['rss_ratio']:.2f}",
                "max over the run, sampled every 0.25 s",
                "",
            )
        )
    if b:
        out.append(
            (
                f"9f serve: /api/summary at {b['tasks'] / 1e3:.0f}k tasks",
                f"{b['summary_ms']:.1f} ms",
                f"{b['summary_baseline_ms']:.1f} ms at {b['summary_baseline_tasks']:,} tasks",
                f"{b['summary_ms'] / b['summary_baseline_ms']:.2f}",
                f"median of {SUMMARY_REQUESTS} requests, one after another, on a log that has stopped growing",
                "",
            )
        )
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smaller backlog and a shorter stream")
    parser.add_argument("--json", metavar="FILE", help="also save the measurements to FILE")
    args = parser.parse_args(argv)
    pick = 1 if args.quick else 0
    params = {k: v[pick] for k, v in PARAMS.items()}
    tmpdir = tempfile.mkdtemp(prefix="ipyrecorder-bench-serve-")
    try:
        result = run(tmpdir, **params)
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    body = rows(result)
    head = ("figure", "measured", "baseline (same run)", "ratio", "spread / detail", "target")
    widths = [max(len(str(r[i])) for r in [head, *body]) for i in range(len(head))]
    for r in [head, tuple("-" * w for w in widths), *body]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip())
    if args.json:
        import json

        with open(args.json, "w") as fh:
            json.dump({"params": params, **result}, fh, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
