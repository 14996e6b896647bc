"""``ipyrecorder demo``: a local cluster, a recorded workload, its summary and timeline.

The workload is small but varied, so that every part of a recording shows:
named map tasks, labelled tasks, DirectView execute, stdout and stderr, one
failing task, and marks between phases.
"""

from __future__ import annotations

import os
import random
import sys
import tempfile
import time
from pathlib import Path


def simulate(seconds: float, name: str) -> float:
    """A stand-in for real work: sleep, then say so."""
    import time

    time.sleep(seconds)
    print(f"{name}: finished after {seconds:.2f} s")
    return seconds


def noisy(seconds: float) -> float:
    """Work that complains on stderr."""
    import sys
    import time

    time.sleep(seconds)
    print(f"warning: convergence slow after {seconds:.2f} s", file=sys.stderr)
    return seconds


def flaky(x: int) -> int:
    """The one task that fails, to show how errors are recorded."""
    raise ValueError(f"input {x} is out of range")


def workload(rc, rec, scale: float = 1.0) -> None:
    """Run the demo workload on client ``rc`` while ``rec`` records it."""
    rng = random.Random(42)
    lview = rc.load_balanced_view()
    dview = rc[:]

    rec.mark("setup")
    dview.execute("import math, time").get()

    rec.mark("simulate", tasks=12)
    names = [f"sample-{i:02d}" for i in range(12)]
    durations = [scale * rng.uniform(0.05, 0.4) for _ in names]
    amr = lview.map_async(simulate, durations, names)
    rec.name_tasks(amr, names)
    amr.get()

    rec.mark("post-process")
    with lview.temp_flags(label="post-process"):
        results = [lview.apply_async(noisy, scale * 0.1 * (i + 1)) for i in range(3)]
    results.append(lview.apply_async(flaky, 7))
    for engine_id in rc.ids:
        results.append(rc[engine_id].apply_async(simulate, scale * 0.1, f"engine-{engine_id}-check"))
    for ar in results:
        try:
            ar.get()
        except Exception:
            pass  # flaky fails on purpose
    rc.wait()


def run_demo(output_dir, engines: int = 2, echo=print, scale: float = 1.0, engine_stats=None) -> Path:
    """Start a cluster in a private IPYTHONDIR, record the workload, print a summary
    (``engine_stats``: seconds between the engines' resource samples, as ``recording`` takes it)."""
    import ipyparallel as ipp

    from .recorder import recording
    from .sink import Log, get_sink
    from .text import summary_text

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    log_path = out / "demo.mpk"
    os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="ipyrecorder-demo-"))
    echo(f"starting a local cluster with {engines} engines ...")
    cluster = ipp.Cluster(n=engines, controller_args=["--HeartMonitor.period=500"], log_level=40)
    rc = cluster.start_and_connect_sync()
    try:
        started = time.monotonic()
        with recording(rc, log_path, mode="w", engine_stats=engine_stats) as rec:
            workload(rc, rec, scale)
        rec.close(timeout=60)
        echo(f"recorded the workload in {time.monotonic() - started:.1f} s to {log_path}")
    finally:
        rc.close()
        cluster.stop_cluster_sync()

    log = Log(log_path)
    with open(out / "demo.json", "w") as fh:
        get_sink("json")().write(log, fh)
    with open(out / "demo.png", "wb") as fh:
        get_sink("matplotlib")().write(log, fh)
    state = log.state
    echo(summary_text([log_path], state.headers, state.summary(), [m.text for m in state.marks]))
    echo(f"wrote {out / 'demo.json'} and the timeline {out / 'demo.png'}")
    return log_path


if __name__ == "__main__":  # pragma: no cover
    run_demo(sys.argv[1] if len(sys.argv) > 1 else "ipyrecorder-demo")
