"""Figure 11: the recorder's memory in the user's process stays flat over a long run.

N synthetic tasks (1,000,000; 100,000 with ``--quick``) go through the recorder's
own path: the raw records the tap queues (a submit with ipyparallel's own
``MessageFuture`` and ``Metadata``, the engine's iopub ``busy``, the reply, the
output) are handed to a ``Translator``, whose events a ``LogWriter`` appends and
flushes every 500 records, as the recorder's thread does every 50 ms; 64 tasks
are in flight at any time. The process's resident memory is read as it goes.
**Baseline**: the same records made and dropped, nothing recorded. Measured: the
growth of resident memory per task over the second half of the run (flat is 0),
and the recorder's own structures at the end (tasks in flight, the summary's
runs).
"""

from __future__ import annotations

import gc
import os
from collections import deque
from datetime import timedelta

from ._util import EPOCH, engine_uuid, log, msg_id, now_us, rss_bytes

IN_FLIGHT = 64
BATCH = 500  # records drained and written at a time
SAMPLES = 20


def _records(n: int, t0_us: int):
    """The raw records of ``n`` tasks on 2 engines, in the order a client's queue gets them."""
    from ipyparallel.client.client import Metadata
    from ipyparallel.client.futures import MessageFuture

    from ipyrecorder import tap

    flying: deque = deque()
    for i in range(n):
        mid = msg_id(i)
        submitted = EPOCH + timedelta(microseconds=t0_us + i * 2_500)
        future = MessageFuture(mid, header={"msg_id": mid, "msg_type": "apply_request", "date": submitted})
        future.output = MessageFuture(mid, header=future.header)
        future.output.metadata = Metadata()
        yield (tap.SUBMIT, future, "task", None, {}, ("work", None), None, 1_000)
        flying.append((future, i, submitted))
        if len(flying) > IN_FLIGHT:
            yield from _finish(*flying.popleft())
    while flying:
        yield from _finish(*flying.popleft())


def _finish(future, i, submitted):
    from ipyrecorder import tap

    engine = i % 2
    started = submitted + timedelta(microseconds=2_000)
    busy = {
        "header": {"msg_type": "status", "date": started},
        "parent_header": {"msg_id": future.msg_id},
        "content": {"execution_state": "busy"},
        "metadata": {"engine": engine_uuid(engine)},
    }
    yield (tap.IOPUB, busy)
    md = future.output.metadata
    md.update(
        msg_id=future.msg_id,
        started=started,
        completed=started + timedelta(microseconds=900),
        received=started + timedelta(microseconds=3_000),
        engine_uuid=engine_uuid(engine),
        engine_id=engine,
        status="ok",
    )
    future.set_result({"content": {"status": "ok"}, "metadata": md})
    future.output.set_result(None)
    yield (tap.REPLY, future)
    yield (tap.OUTPUT, future.output)


def _drive(n: int, t0_us: int, path) -> dict:
    """Feed ``n`` tasks' records to the recorder's path (or, ``path`` None, drop them)."""
    from ipyrecorder.log import LogWriter, new_header
    from ipyrecorder.translate import Translator

    writer = LogWriter(path, "w", new_header()) if path else None
    translator = Translator(writer.append, {e: engine_uuid(e) for e in range(2)}) if writer else None
    if translator is not None:
        translator.start()
    every = max(1, n // SAMPLES)
    samples = []
    gc.collect()
    for count, record in enumerate(_records(n, t0_us), 1):
        if translator is not None:
            translator.process(record)
            if count % BATCH == 0:
                writer.flush()
        if count % (4 * every) == 0:  # (four records a task)
            samples.append((count // 4, rss_bytes()))
    out = {"samples": samples}
    if writer is not None:
        out.update(
            in_flight=len(translator.pending),
            tally_flights=len(writer.tally.flights),
            tally_runs=writer.tally.named.run_count(),
        )
        writer.close()
    return out


def _slope(samples) -> float:
    """Bytes of resident memory gained per task over the second half of the samples."""
    half = samples[len(samples) // 2 :]
    (t0, m0), (t1, m1) = half[0], half[-1]
    return (m1 - m0) / (t1 - t0) if t1 > t0 else 0.0


def run(tmpdir, tasks: int) -> dict:
    t0_us = now_us()
    log(f"[memory] {tasks:,} synthetic tasks through the translator and the writer ...")
    base = _drive(tasks, t0_us, None)
    path = os.path.join(tmpdir, "memory.mpk")
    recorded = _drive(tasks, t0_us, path)
    from ipyrecorder import replay

    state = replay(path)
    if len(state.tasks) != tasks or state.counts() != {"ok": tasks}:
        raise RuntimeError(f"the memory run's log is incomplete: {state.summary()}")
    os.remove(path)
    return {
        "tasks": tasks,
        "baseline_slope_bytes_per_task": _slope(base["samples"]),
        "slope_bytes_per_task": _slope(recorded["samples"]),
        "rss_start": recorded["samples"][0][1],
        "rss_end": recorded["samples"][-1][1],
        "baseline_rss_end": base["samples"][-1][1],
        "in_flight": recorded["in_flight"],
        "tally_flights": recorded["tally_flights"],
        "tally_runs": recorded["tally_runs"],
    }


SLOPE_TARGET = 1.0  # bytes per task: the recorder's memory does not grow with the run


def rows(m: dict) -> list[tuple]:
    slope, base = m["slope_bytes_per_task"], m["baseline_slope_bytes_per_task"]
    return [
        (
            f"11 recorder memory, {m['tasks']:,} tasks",
            f"{slope:+.2f} B/task",
            f"{base:+.2f} B/task unrecorded",
            "",
            f"resident {m['rss_start'] / 1e6:.0f} -> {m['rss_end'] / 1e6:.0f} MB (unrecorded ends at "
            f"{m['baseline_rss_end'] / 1e6:.0f} MB); at the end {m['in_flight']} tasks in flight, the summary "
            f"holds {m['tally_flights']} and {m['tally_runs']} msg_id run(s)",
            f"growth <= {SLOPE_TARGET} B/task over the baseline's: "
            + ("met" if slope - base <= SLOPE_TARGET else "MISSED"),
        )
    ]
