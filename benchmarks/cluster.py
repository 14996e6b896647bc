"""Figures 1 and 5: recording overhead on a real cluster, and what it wrote.

One local cluster of 2 engines is started for the whole section. For each
workload, each round runs four arms: the baseline (nothing recorded), the
tap's hooks alone (every record handed to a deque that nothing reads: the
floor of any recorder that sees the client's messages), a recording, and the
observer (``ipyrecorder record`` in a process of its own, started and
connected before the run's clocks start, its CPU and the cluster's counted
until its log holds every task done), in an order that rotates from round to
round, so that slow drifts of the machine (other processes, thermal, the Hub's
state) and the place in the round hit every arm alike; the arms of one round
are compared with each other (a pair).

A run is timed from before the work is submitted (for a recorded run: before
``recording()`` is entered) to the moment the results are in (the end of the
``with`` block). ``rec.close()``, which waits for the recorder thread to write
the last events and close the log, is timed separately and not counted: the
user's code is running again by then. Between runs (untimed) the log is
replayed and checked, then the client and Hub results are purged so every run
starts from the same state.

On a small shared machine wall-clock throughput is at the mercy of whatever
else runs, so each run also measures CPU time, which is much less sensitive
to it: the client process's own (all threads: the user's, ipyparallel's IO
thread, the recorder's), the cluster's (controller, schedulers, engines,
nannies; via psutil), both counted until the log is closed, and the CPU used
meanwhile by processes that are not ours ("other load", in cores).
"""

from __future__ import annotations

import collections
import contextlib
import gc
import glob
import json
import os
import signal
import statistics
import subprocess
import sys
import time

import psutil

from ._util import bootstrap_median_ci, log, spread


def wl_map(lview, n):
    """lview.map_async(lambda x: x, range(n), chunksize=1).get()"""
    ar = lview.map_async(lambda x: x, range(n), chunksize=1)
    result = ar.get()
    return [ar], result == list(range(n))


def wl_apply(lview, n):
    """n x lview.apply_async(lambda x: x, i), then lview.wait(...)"""
    f = lambda x: x  # noqa: E731
    ars = [lview.apply_async(f, i) for i in range(n)]
    lview.wait(ars)
    return ars, None  # checked after the clock stops


WORKLOADS = {"map": wl_map, "apply": wl_apply}


def _metadata_json_bytes(ars) -> int:
    """Size of ipyparallel's own metadata for these tasks, dumped as JSON."""
    records = {}
    for ar in ars:
        mds = ar.metadata
        if isinstance(mds, dict):  # an AsyncResult of one apply
            mds = [mds]
        for mid, md in zip(ar.msg_ids, mds):
            records[mid] = dict(md)
    return len(json.dumps(records, default=lambda o: o.isoformat()).encode())


class Bench:
    def __init__(self, tmpdir, tasks: int):
        import ipyparallel as ipp

        self.tmpdir = tmpdir
        self.tasks = tasks
        self.cluster = ipp.Cluster(n=2, controller_args=["--HeartMonitor.period=500"], log_level=40)
        started = time.perf_counter()
        self.client = self.cluster.start_and_connect_sync()
        self.client.wait_for_engines(2, timeout=120)
        self.lview = self.client.load_balanced_view()
        self.startup_seconds = time.perf_counter() - started
        self.counter = 0
        # The controller (with its scheduler processes), the engines and their nannies.
        self.procs = psutil.Process().children(recursive=True)
        (self.url_file,) = glob.glob(os.path.join(self.cluster.profile_dir, "security", "ipcontroller-*client.json"))

    def cpu(self) -> tuple:
        """(client CPU s, cluster CPU s, whole machine busy CPU s), cumulative."""
        own = time.process_time()  # every thread of this process: user, IO, recorder
        cluster = 0.0
        for proc in self.procs:
            try:
                t = proc.cpu_times()
            except psutil.Error:
                continue
            cluster += t.user + t.system
        m = psutil.cpu_times()
        busy = m.user + m.nice + m.system + getattr(m, "irq", 0) + getattr(m, "softirq", 0)
        return own, cluster, busy

    def thread_cpu(self) -> tuple:
        """(this thread's CPU s, the client's IO thread's CPU s), cumulative."""
        io = self.client._io_thread
        return time.thread_time(), time.clock_gettime(time.pthread_getcpuclockid(io.ident))

    def open_close(self, cycles: int) -> dict:
        """Seconds to open a recording (make it and enter its block) and to end its block, with
        nothing pending: the end flushes, closes the log and fsyncs it."""
        import ipyrecorder

        opens, ends = [], []
        for i in range(cycles):
            path = os.path.join(self.tmpdir, f"idle{i:03d}.mpk")
            t0 = time.perf_counter()
            rec = ipyrecorder.recording(self.lview, path, mode="w")
            rec.__enter__()
            t1 = time.perf_counter()
            rec.__exit__(None, None, None)
            ends.append(time.perf_counter() - t1)
            opens.append(t1 - t0)
            if not rec.closed.is_set():
                raise RuntimeError("an idle recording's block ended without closing its log")
            os.remove(path)
        return {"open_seconds": spread(opens), "end_seconds": spread(ends)}

    def start_observer(self, path) -> subprocess.Popen:
        """``ipyrecorder record -o path`` in a process of its own, once it has connected."""
        import ipyrecorder

        proc = subprocess.Popen(
            [sys.executable, "-m", "ipyrecorder", "record", "--url-file", self.url_file, "-o", path],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        _until(lambda: os.path.exists(path) and ipyrecorder.replay(path).engines, proc, "connect")
        return proc

    def observed(self, proc, path, ars) -> float:
        """Wait until the observer's log has every task of the run done; its CPU seconds by then.

        (It may hold a few more: the previous run's last records, if the Hub had them after its purge.)
        """
        import ipyrecorder

        wanted = {m for ar in ars for m in ar.msg_ids}

        def seen_all():
            tasks = ipyrecorder.replay(path).tasks
            return all(m in tasks and tasks[m].status == "ok" for m in wanted)

        _until(seen_all, proc, "see the run")
        return _cpu_seconds(psutil.Process(proc.pid))

    def stop(self):
        try:
            self.client.close()
        finally:
            self.cluster.stop_cluster_sync()

    def run(self, name: str, arm: str) -> dict:
        import ipyrecorder
        from ipyrecorder.tap import ClientTap

        workload = WORKLOADS[name]
        lview, n = self.lview, self.tasks
        recorded, observed = arm == "recorded", arm == "observed"
        self.counter += 1
        path = os.path.join(self.tmpdir, f"run{self.counter:03d}-{name}.mpk")
        if observed:  # (its start and connection come before the clocks: it would run all along)
            observer = self.start_observer(path)
            observer_cpu0 = _cpu_seconds(psutil.Process(observer.pid))
        gc.collect()
        collections0 = [g["collections"] for g in gc.get_stats()]
        cpu0, threads0 = self.cpu(), self.thread_cpu()
        t0 = time.perf_counter()
        if recorded:
            with ipyrecorder.recording(lview, path, mode="w") as rec:
                ars, ok = workload(lview, n)
        elif arm == "hooks":
            dropped = collections.deque()
            tap = ClientTap(self.client, dropped.append, lambda: None)
            tap.attach()
            try:
                ars, ok = workload(lview, n)
            finally:
                tap.detach()
        else:
            ars, ok = workload(lview, n)
        elapsed = time.perf_counter() - t0
        if arm == "hooks":
            tap.release()
            dropped.clear()
        out, observer_cpu = {}, 0.0
        if recorded:  # CPU is counted until the recorder has closed the log
            closed = rec.close(timeout=60)
            out = {
                "close_seconds": time.perf_counter() - t0 - elapsed,
                "recorder_cpu_us_per_task": 1e6 * rec._channel.cpu_seconds / n,
            }
        client_end = time.process_time(), self.thread_cpu()  # (waiting for the observer is not the client's)
        if observed:  # its CPU and the cluster's are counted until its log has every task done
            observer_cpu = self.observed(observer, path, ars) - observer_cpu0
            out = {"observer_cpu_us_per_task": 1e6 * observer_cpu / n}
        window = time.perf_counter() - t0
        _, cluster, busy = (b - a for a, b in zip(cpu0, self.cpu()))
        own = client_end[0] - cpu0[0]
        user, io = (b - a for a, b in zip(threads0, client_end[1]))
        out.update(
            # the collector's runs during the run, by generation (the recorder's objects count towards them)
            gc_collections=[g["collections"] - c for g, c in zip(gc.get_stats(), collections0)],
            user_cpu_us_per_task=1e6 * user / n,
            io_cpu_us_per_task=1e6 * io / n,
            seconds=elapsed,
            tasks_per_s=n / elapsed,
            client_cpu_us_per_task=1e6 * own / n,
            total_cpu_us_per_task=1e6 * (own + cluster + observer_cpu) / n,
            # cores kept busy by processes not ours (other users, other clusters)
            foreign_cores=max(0.0, busy - own - cluster - observer_cpu) / window,
        )

        if ok is None:
            ok = [ar.get() for ar in ars] == list(range(n))
        if not ok:
            raise RuntimeError(f"{name} run returned wrong results")
        if observed:
            observer.send_signal(signal.SIGTERM)
            _, err = observer.communicate(timeout=60)
            if observer.returncode != 0 or not ipyrecorder.replay(path).closes:
                raise RuntimeError(f"the observer of {name} run failed: {err}")
            os.remove(path)
        if recorded:
            state = ipyrecorder.replay(path)
            summary = state.summary()
            if (
                not closed
                or summary["tasks"] != n
                or summary["by_status"] != {"ok": n}
                or not summary["closed"]
                or state.damage
            ):
                raise RuntimeError(f"recording of {name} run is incomplete: {summary}")
            size = os.path.getsize(path)
            out.update(
                log_bytes=size,
                bytes_per_task=size / n,
                wire_events=state.events,
                json_bytes_per_task=_metadata_json_bytes(ars) / n,
            )
            os.remove(path)
        del ars
        self.client.purge_everything()
        return out


STAGE_RUNS = 3  # instrumented recorded runs per workload (figure 1j), after the pairs


def _cpu_seconds(proc) -> float:
    times = proc.cpu_times()
    return times.user + times.system


def _until(condition, proc, what: str, timeout: float = 120) -> None:
    """Poll ``condition`` until it holds; the observer ``proc`` exiting or the deadline is an error."""
    deadline = time.monotonic() + timeout
    while not _holds(condition):
        if proc.poll() is not None:
            raise RuntimeError(f"the observer exited before it could {what}: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError(f"the observer did not {what} within {timeout:g} s")
        time.sleep(0.05)


def _holds(condition) -> bool:
    try:
        return bool(condition())
    except Exception:  # (a log the observer is still making)
        return False


@contextlib.contextmanager
def _stage_clock(stages: collections.Counter, calls: collections.Counter):
    """Time the recorder thread's stages with its own clock: each record kind's translation and
    encoding (``Translator.process``), and each write (``LogWriter.flush``: the summary's fold,
    packing, the write). Two clock reads a call are included; ``clock_read_ns`` is their cost."""
    from ipyrecorder.log import LogWriter
    from ipyrecorder.translate import Translator

    process, flush, clock = Translator.process, LogWriter.flush, time.thread_time_ns

    def timed_process(self, record):
        t = clock()
        process(self, record)
        stages[record[0]] += clock() - t
        calls[record[0]] += 1

    def timed_flush(self):
        t = clock()
        flush(self)
        stages["write"] += clock() - t
        calls["write"] += 1

    Translator.process, LogWriter.flush = timed_process, timed_flush
    try:
        yield
    finally:
        Translator.process, LogWriter.flush = process, flush


def _stages(bench, name: str) -> dict:
    """Figure 1j: where the recorder thread's CPU goes in a live run, per task, without a profiler."""
    stages, calls = collections.Counter(), collections.Counter()
    thread_total = 0.0
    with _stage_clock(stages, calls):
        for _ in range(STAGE_RUNS):
            thread_total += bench.run(name, "recorded")["recorder_cpu_us_per_task"]
    tasks = STAGE_RUNS * bench.tasks
    reads = [time.thread_time_ns() for _ in range(10_001)]
    clock_ns = statistics.median(b - a for a, b in zip(reads, reads[1:]))
    per_task = {k: v / 1e3 / tasks for k, v in stages.items()}
    return {
        "us_per_task": per_task,
        "calls_per_task": {k: v / tasks for k, v in calls.items()},
        "thread_us_per_task": thread_total / STAGE_RUNS,
        "rest_us_per_task": thread_total / STAGE_RUNS - sum(per_task.values()),  # wake-ups, the drain loop, the clocks
        "clock_read_ns": clock_ns,
    }


QUIET = 0.25  # a pair is "quiet" if other processes used less than this many cores
IDLE_CYCLES = 30  # recordings opened and ended with nothing in them (figure 1g)


ARMS = ("baseline", "hooks", "recorded", "observed")


def _paired(runs, key, arm="recorded", against="baseline"):
    base = [r[against][key] for r in runs]
    rec = [r[arm][key] for r in runs]
    ratios = [r / b for r, b in zip(rec, base)]
    return base, rec, ratios


def _ratio(runs, key, arm, against) -> dict:
    """The median of one arm's paired ratios to another's, and its bootstrap CI95."""
    _, _, ratios = _paired(runs, key, arm, against)
    return {"median": statistics.median(ratios), "ci95": list(bootstrap_median_ci(ratios))}


def _thread_costs(runs, key) -> dict:
    """A thread's CPU per task in the recorded runs minus the baseline's, pair by pair."""
    base, rec, _ = _paired(runs, key)
    return spread(r - b for r, b in zip(rec, base))


def _summarise(runs: list[dict]) -> dict:
    base, rec, ratios = _paired(runs, "tasks_per_s")
    lo, hi = bootstrap_median_ci(ratios)
    foreign = [max(r["baseline"]["foreign_cores"], r["recorded"]["foreign_cores"]) for r in runs]
    quiet = [x for x, f in zip(ratios, foreign) if f < QUIET]
    cpu_base, cpu_rec, cpu_ratios = _paired(runs, "client_cpu_us_per_task")
    tot_base, tot_rec, tot_ratios = _paired(runs, "total_cpu_us_per_task")
    return {
        "baseline_tasks_per_s": spread(base),
        "recorded_tasks_per_s": spread(rec),
        "pair_ratio": spread(ratios),
        "ratio": statistics.median(ratios),  # the headline: median of paired ratios
        "ratio_ci95": [lo, hi],
        "ratio_of_medians": statistics.median(rec) / statistics.median(base),
        "overhead_pct": 100 * (1 - statistics.median(ratios)),
        "foreign_cores": spread(foreign),
        "quiet_pairs": len(quiet),
        "quiet_ratio": statistics.median(quiet) if quiet else None,
        "baseline_client_cpu_us_per_task": spread(cpu_base),
        "recorded_client_cpu_us_per_task": spread(cpu_rec),
        "client_cpu_ratio": statistics.median(cpu_ratios),
        "client_cpu_ratio_ci95": list(bootstrap_median_ci(cpu_ratios)),
        "baseline_total_cpu_us_per_task": spread(tot_base),
        "recorded_total_cpu_us_per_task": spread(tot_rec),
        "total_cpu_ratio": statistics.median(tot_ratios),
        "total_cpu_ratio_ci95": list(bootstrap_median_ci(tot_ratios)),
        # the floor: the tap's hooks alone against nothing, and the recording against the hooks
        "hooks_client_cpu_ratio": _ratio(runs, "client_cpu_us_per_task", "hooks", "baseline"),
        "client_cpu_ratio_over_hooks": _ratio(runs, "client_cpu_us_per_task", "recorded", "hooks"),
        # recording from outside the client (figure 1k): ``ipyrecorder record`` in its own process
        "observed_client_cpu_ratio": _ratio(runs, "client_cpu_us_per_task", "observed", "baseline"),
        "observed_total_cpu_ratio": _ratio(runs, "total_cpu_us_per_task", "observed", "baseline"),
        "observed_tasks_per_s_ratio": _ratio(runs, "tasks_per_s", "observed", "baseline"),
        "observer_cpu_us_per_task": spread(r["observed"]["observer_cpu_us_per_task"] for r in runs),
        "close_seconds": spread(r["recorded"]["close_seconds"] for r in runs),
        # where the recorded run's extra client CPU goes, per task: each thread's paired difference
        "user_cpu_us_per_task": _thread_costs(runs, "user_cpu_us_per_task"),
        "io_cpu_us_per_task": _thread_costs(runs, "io_cpu_us_per_task"),
        "recorder_cpu_us_per_task": spread(r["recorded"]["recorder_cpu_us_per_task"] for r in runs),
        "extra_gc_collections": [
            statistics.median(r["recorded"]["gc_collections"][g] - r["baseline"]["gc_collections"][g] for r in runs)
            for g in range(3)
        ],
        "bytes_per_task": spread(r["recorded"]["bytes_per_task"] for r in runs),
        "json_bytes_per_task": spread(r["recorded"]["json_bytes_per_task"] for r in runs),
    }


def run(tmpdir, tasks: int, pairs: int) -> dict:
    log("[overhead] starting a 2-engine cluster ...")
    bench = Bench(tmpdir, tasks)
    log(
        f"[overhead] cluster up in {bench.startup_seconds:.1f} s; {pairs} pairs x "
        f"{len(WORKLOADS)} workloads x {tasks} tasks"
    )
    results = {name: [] for name in WORKLOADS}
    try:
        for name in WORKLOADS:  # warm up every path (imports, caches, connections)
            for arm in ARMS:
                bench.run(name, arm)
        for i in range(pairs):
            for name in WORKLOADS:
                order = ARMS[i % len(ARMS) :] + ARMS[: i % len(ARMS)]
                pair = {arm: bench.run(name, arm) for arm in order}
                results[name].append(pair)
                log(
                    f"[overhead] pair {i + 1}/{pairs} {name:5s}: "
                    f"baseline {pair['baseline']['tasks_per_s']:6.0f}/s  "
                    f"recorded {pair['recorded']['tasks_per_s']:6.0f}/s  "
                    f"ratio {pair['recorded']['tasks_per_s'] / pair['baseline']['tasks_per_s']:.3f}  "
                    "client CPU x"
                    f"{pair['recorded']['client_cpu_us_per_task'] / pair['baseline']['client_cpu_us_per_task']:.3f} "
                    f"(hooks alone x"
                    f"{pair['hooks']['client_cpu_us_per_task'] / pair['baseline']['client_cpu_us_per_task']:.3f})  "
                    f"other load {pair['baseline']['foreign_cores']:.2f}/{pair['recorded']['foreign_cores']:.2f} cores"
                )
        stages = {name: _stages(bench, name) for name in WORKLOADS}
        idle = bench.open_close(IDLE_CYCLES)
    finally:
        bench.stop()
    return {
        "idle_recording": idle,
        "tasks_per_run": tasks,
        "pairs": pairs,
        "cluster_startup_seconds": bench.startup_seconds,
        "quiet_threshold": QUIET,
        "workloads": {
            name: {"code": WORKLOADS[name].__doc__, "runs": runs, "stages": stages[name], **_summarise(runs)}
            for name, runs in results.items()
        },
    }
