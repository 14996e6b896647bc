"""Figure 6: how soon a live viewer sees what the recorder wrote.

An appender (this process) writes realistic submit/start/complete events with
``ipyrecorder.open_log``, ``flush()``-ing each small batch as the recorder's
thread does, and notes when each flush returned and where the file then ended.
A reader in a separate process (a viewer is another process) follows the file
and notes when it has folded how many bytes; joining the two gives, for each
batch, the latency from ``flush()`` to the batch being in the reader's state.
``time.monotonic`` is one clock for both processes (CLOCK_MONOTONIC).

Measured: p50/p95/max latency of ``LogTail`` driven by ``Follower``, (a) woken
by file events (watchdog, inotify on Linux: the default) and (b) polling
(``Follower(..., poll=True)``, every ``POLL_INTERVAL``).
Baseline: the same measurement of a bare reader woken the same way (the same
watchdog observer calling back on the file's events, or a loop sleeping the
same interval) that only does ``os.stat`` and reads the appended bytes, with
no frame scan, CRC check, decoding or fold. The ratio (p95 over p95) is what
``LogTail`` and ``Follower`` add to the unavoidable wait for the wake-up.

Batches come at random intervals (20 to 80 ms, mean 50 ms: the recorder's
flush interval) so that they do not lock in phase with the polling; the first
``WARMUP`` batches of each run are not counted.

The machinery (paced appender, reader process) is shared with ``sustained``.
"""

from __future__ import annotations

import bisect
import gc
import json
import os
import random
import resource
import select
import subprocess
import sys
import threading
import time
from datetime import timedelta

from ipyrecorder import open_log
from ipyrecorder.log import new_header
from ipyrecorder.recorder import FLUSH_INTERVAL

from ._util import EPOCH, ROOT, engine_registrations, loadavg, log, now_us, quantile, rss_bytes, task_events

RATE = 1_200  # events/s: 400 tasks/s, what the cluster runs of figure 1 reach on 2 cores
INTERVALS = (0.4 * FLUSH_INTERVAL, 1.6 * FLUSH_INTERVAL)  # seconds between flushes: uniform, mean FLUSH_INTERVAL
WARMUP = 20  # batches not counted at the start of each run


# -- the reader process ----------------------------------------------------------------------
def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _reader(path, kind, poll, conn, sample_every):
    """Follow ``path`` until told where it ends, then send back what was folded when.

    ``kind`` is "tail" (LogTail + Follower, as the viewers run it) or "bare" (stat +
    read only). ``folds`` holds (monotonic time after the fold, bytes folded).
    """
    clock = time.monotonic
    folds = []
    samples = []  # (time, RSS bytes, tasks held, wire events folded)
    pauses = []  # (monotonic time at the end, seconds) of each full (generation 2) collection
    gc_started = []

    def on_gc(phase, gc_info):
        if gc_info["generation"] == 2:
            if phase == "start":
                gc_started[:] = [clock()]
            elif gc_started:
                now = clock()
                pauses.append((now, now - gc_started[0]))

    gc.callbacks.append(on_gc)
    ready = threading.Event()
    stop = threading.Event()
    info = {}

    if kind == "tail":
        from ipyrecorder.tail import POLL_INTERVAL, Follower, LogTail

        tail = LogTail(path, freeze_gc=True)  # as the CLI's viewers run it
        state = lambda: tail.state  # noqa: E731

        def on_change(t):
            folds.append((clock(), t.offset - t.pending))
            ready.set()

        follower = Follower(tail, on_change, poll=poll)
        stop = follower.stop

        def wake():
            follower._wake.set()

        run = follower.run
    else:
        from ipyrecorder.tail import POLL_INTERVAL

        offset = 0
        lock = threading.Lock()
        state = lambda: None  # noqa: E731

        def read():
            nonlocal offset
            with lock:
                size = os.stat(path).st_size
                if size > offset:
                    with open(path, "rb") as fh:
                        fh.seek(offset)
                        offset += len(fh.read())
                    folds.append((clock(), offset))
                    ready.set()

        def wake():
            pass

        def run():
            if poll:
                read()
                while not stop.wait(POLL_INTERVAL):
                    read()
                return
            from watchdog.events import FileSystemEventHandler
            from watchdog.observers import Observer

            class Handler(FileSystemEventHandler):
                def on_any_event(self, event):
                    if os.fsdecode(event.src_path) == path:
                        read()

            observer = Observer()
            observer.schedule(Handler(), os.path.dirname(path), recursive=False)
            observer.start()
            try:
                read()
                stop.wait()
            finally:
                observer.stop()
                observer.join(5)

    def control():
        if not ready.wait(30):
            stop.set()
            wake()
            return
        conn.send(("ready", rss_bytes(), _cpu_seconds()))
        end = conn.recv()  # the file's final size, once the appender is done
        deadline = clock() + 30
        while (not folds or folds[-1][1] < end) and clock() < deadline:
            time.sleep(0.005)
        stop.set()
        wake()

    def sampler():
        while not stop.wait(sample_every):
            s = state()
            samples.append((clock(), rss_bytes(), len(s.tasks) if s else 0, s.events if s else 0))

    threads = [threading.Thread(target=control, daemon=True)]
    if sample_every:
        threads.append(threading.Thread(target=sampler, daemon=True))
    for thread in threads:
        thread.start()
    run()
    info["cpu_seconds"] = _cpu_seconds()
    info["rss_end"] = rss_bytes()
    info["poll_interval"] = POLL_INTERVAL
    info["gc_full_collections"] = pauses
    if kind == "tail":
        s = tail.state
        info.update(
            follower_mode=follower.mode,
            notices=list(tail.notices),
            folded_tasks=len(s.tasks),
            folded_wire_events=s.events,
            damage=[str(d) for d in tail.damage],
        )
    conn.send((folds, samples, info))


CHILD = "import sys; sys.path.insert(0, sys.argv[1]); from benchmarks.tail import _child; _child()"


def _child():
    """Entry point of the reader process: arguments as JSON on argv, messages as JSON lines."""
    args = json.loads(sys.argv[2])
    out = sys.stdout

    class Conn:
        def send(self, obj):
            out.write(json.dumps(obj) + "\n")
            out.flush()

        def recv(self):
            return json.loads(sys.stdin.readline())

    _reader(args["path"], args["kind"], args["poll"], Conn(), args["sample_every"])


class Reader:
    """A reader process (a new interpreter): ``start()`` returns once it has read the log's header."""

    def __init__(self, path, kind: str, poll: bool, sample_every: float | None = None):
        args = json.dumps({"path": path, "kind": kind, "poll": poll, "sample_every": sample_every})
        self.process = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(ROOT), args],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def _recv(self, timeout: float):
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        line = self.process.stdout.readline() if ready else ""
        if not line:
            self.process.kill()
            raise RuntimeError(f"the reader process did not answer (exit code {self.process.poll()})")
        return json.loads(line)

    def start(self) -> dict:
        _, rss, cpu = self._recv(60)
        return {"rss_start": rss, "cpu_start": cpu}

    def finish(self, end_bytes: int):
        self.process.stdin.write(json.dumps(end_bytes) + "\n")
        self.process.stdin.flush()
        folds, samples, info = self._recv(90)
        self.process.wait(10)
        return folds, samples, info

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


# -- the appender ------------------------------------------------------------------------------
def new_log(path, engines: int = 2):
    """A fresh log with its header and engines flushed, and a realistic event source."""
    t0_us = now_us()
    t0 = EPOCH + timedelta(microseconds=t0_us)
    writer = open_log(path, "w", new_header(t0=t0))
    for event in engine_registrations(t0, engines):
        writer.append(event)
    writer.flush()
    return writer, t0_us


def append_paced(writer, events, rate: float, intervals) -> list:
    """Write ``events`` at ``rate`` events/s, flushing after each batch, as the recorder does.

    Batch k is flushed at the k-th scheduled time (cumulative ``intervals``, not
    drifting with late wake-ups), holding the events due by then. Returns one
    (monotonic time when flush() returned, file size, events written) per batch.
    """
    clock = time.monotonic
    append, flush = writer.append, writer.flush
    batches = []
    start = clock()
    due_at = 0.0
    for interval in intervals:
        due_at += interval
        delay = start + due_at - clock()
        if delay > 0:
            time.sleep(delay)
        target = int(rate * (clock() - start))
        while writer.events_written < target:
            append(next(events))
        flush()
        batches.append((clock(), writer.bytes_written, writer.events_written))
    return batches


def latencies(batches, folds) -> list:
    """Seconds from each batch's flush to the first fold that covered it (None: never)."""
    fold_t = [t for t, _ in folds]
    fold_b = [b for _, b in folds]
    out = []
    for t_flush, end, _ in batches:
        i = bisect.bisect_left(fold_b, end)
        out.append(max(0.0, fold_t[i] - t_flush) if i < len(folds) else None)
    return out


def summary_ms(values) -> dict:
    ms = [1e3 * v for v in values]
    return {
        "p50_ms": quantile(ms, 0.5),
        "p95_ms": quantile(ms, 0.95),
        "p99_ms": quantile(ms, 0.99),
        "max_ms": max(ms),
        "mean_ms": sum(ms) / len(ms),
        "n": len(ms),
    }


def measure(tmpdir, kind: str, poll: bool, n_batches: int, seed: int) -> dict:
    """One run: a new log, a reader process, ``n_batches`` paced batches (+ warm-up)."""
    path = os.path.join(tmpdir, f"tail-{kind}-{'poll' if poll else 'events'}.mpk")
    writer, t0_us = new_log(path)
    reader = Reader(path, kind, poll)
    try:
        reader.start()
        rng = random.Random(seed)
        intervals = [rng.uniform(*INTERVALS) for _ in range(WARMUP + n_batches)]
        tasks = int(RATE * sum(intervals) / 3) + 1000
        events = task_events(tasks, t0_us, rate=RATE / 3)
        batches = append_paced(writer, events, RATE, intervals)
        writer.close()
        folds, _, info = reader.finish(writer.bytes_written)
    finally:
        reader.kill()
    lat = latencies(batches, folds)[WARMUP:]
    missing = sum(x is None for x in lat)
    counted = [x for x in lat if x is not None]
    elapsed = batches[-1][0] - batches[WARMUP - 1][0]
    out = {
        "kind": kind,
        "mode": "polling" if poll else "events",
        "batches": len(lat),
        "never_folded": missing,
        "events": batches[-1][2] - batches[WARMUP - 1][2],
        "events_per_s": (batches[-1][2] - batches[WARMUP - 1][2]) / elapsed,
        "mean_batch_events": (batches[-1][2] - batches[WARMUP - 1][2]) / len(lat),
        "reads": len(folds),
        "latency_s": counted,
        **summary_ms(counted),
        **{k: v for k, v in info.items() if k not in ("cpu_seconds", "rss_end")},
    }
    os.remove(path)
    return out


def run(tmpdir, n_batches: int) -> dict:
    started = loadavg()
    log(
        f"[tail] 4 runs of {n_batches} batches (~{RATE} events/s, "
        f"flush every {INTERVALS[0] * 1e3:.0f}-{INTERVALS[1] * 1e3:.0f} ms): "
        "bare and LogTail readers, file events and polling"
    )
    runs = {}
    for mode, poll in (("events", False), ("polling", True)):
        for kind in ("bare", "tail"):
            runs[f"{kind}_{mode}"] = r = measure(tmpdir, kind, poll, n_batches, seed=len(runs))
            extra = f" (follower ended in mode {r['follower_mode']!r})" if kind == "tail" else ""
            log(
                f"[tail]   {kind:4} {mode:7}: p50 {r['p50_ms']:.1f} ms, p95 {r['p95_ms']:.1f} ms, "
                f"max {r['max_ms']:.1f} ms over {r['batches']} batches{extra}"
            )
    out = {
        "rate": RATE,
        "intervals_s": list(INTERVALS),
        "batches": n_batches,
        "warmup": WARMUP,
        "loadavg_start": started,
        "runs": runs,
    }
    for mode in ("events", "polling"):
        tail, bare = runs[f"tail_{mode}"], runs[f"bare_{mode}"]
        out[f"ratio_{mode}"] = tail["p95_ms"] / bare["p95_ms"] if bare["p95_ms"] > 0 else float("inf")
    return out
