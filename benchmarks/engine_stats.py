"""Figure 12: what ``engine_stats`` costs the engines, as issue 13 asks (under 1 % of a core each at 0.5 s).

A local 2-engine cluster; rounds of ``--seconds`` each, alternately with the engines'
samplers running (a recording with ``engine_stats``) and without (the same recording
without it: the baseline, same run), the engines idle meanwhile. Each engine process's
CPU time (user + system, from psutil) over the round gives its share of a core.
Standalone: ``python -m benchmarks.engine_stats [--interval 0.5] [--seconds 10] [--rounds 3]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time

import psutil


def engine_cpu(client) -> dict:
    """{engine id: CPU seconds so far} of each engine process (this host only)."""
    pids = client[:].apply_sync(os.getpid)
    return {e: sum(psutil.Process(pid).cpu_times()[:2]) for e, pid in zip(client.ids, pids)}


def measure(interval: float, seconds: float, rounds: int) -> dict:
    import ipyparallel as ipp

    import ipyrecorder

    os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="ipyrecorder-bench-"))
    cluster = ipp.Cluster(n=2, controller_args=["--HeartMonitor.period=500"], log_level=40)
    client = cluster.start_and_connect_sync()
    client.wait_for_engines(2, timeout=120)
    shares = {"with": [], "without": []}
    samples = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(2 * rounds):
                arm = "with" if i % 2 == 0 else "without"
                path = os.path.join(tmp, f"{i}.mpk")
                before = engine_cpu(client)
                with ipyrecorder.recording(client, path, mode="w", engine_stats=interval if arm == "with" else None):
                    time.sleep(seconds)  # the engines idle: what the samplers cost shows alone
                after = engine_cpu(client)  # (the stop is queued to the engines: it ran by now)
                shares[arm] += [(after[e] - before[e]) / seconds for e in before]
                if arm == "with":
                    samples.append(sum(len(s) for s in ipyrecorder.replay(path).table.samples.values()))
    finally:
        client.close()
        cluster.stop_cluster_sync()
    med = {arm: statistics.median(v) for arm, v in shares.items()}
    return {
        "interval_s": interval,
        "seconds": seconds,
        "rounds": rounds,
        "engine_core_share_with": med["with"],
        "engine_core_share_without": med["without"],
        "extra_core_share": med["with"] - med["without"],
        "samples_per_engine_second": statistics.median(samples) / (2 * seconds),
    }


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python -m benchmarks.engine_stats", description=__doc__)
    p.add_argument("--interval", type=float, default=0.5)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--json", metavar="FILE")
    args = p.parse_args(argv)
    found = measure(args.interval, args.seconds, args.rounds)
    print(
        f"12 engine_stats at {found['interval_s']} s: each idle engine used "
        f"{found['engine_core_share_with']:.2%} of a core with its sampler, "
        f"{found['engine_core_share_without']:.2%} without (same run): "
        f"{found['extra_core_share']:+.2%} of a core (target: under 1 %); "
        f"{found['samples_per_engine_second']:.2f} samples per engine-second"
    )
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(found, fh, indent=2)


if __name__ == "__main__":
    main()
