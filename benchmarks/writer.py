"""Figure 2: how fast ``LogWriter.append`` takes realistic events.

Measured: events/s appending pre-built submit/start/complete dicts to a
``LogWriter`` (encoding, interning, 1 MiB frames written to a file in the
temporary directory; the closing fsync is not timed).
Baseline: events/s of ``msgpack.packb`` on each event's wire row (its kind code
and field values, as a reader's fold sees it), appended to a bytearray: the cost
of msgpack alone, event by event.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from datetime import timedelta

import msgpack

from ipyrecorder import payload as pl
from ipyrecorder.log import LogWriter, new_header

from ._util import EPOCH, log, now_us, task_events


def _append_all(path, header, events):
    writer = LogWriter(path, "w", header)
    append = writer.append
    gc.collect()
    t0 = time.perf_counter()
    for event in events:
        append(event)
    writer.flush()
    elapsed = time.perf_counter() - t0
    writer.close()
    return elapsed


def _pack_all(rows):
    packb = msgpack.packb
    buf = bytearray()
    gc.collect()
    t0 = time.perf_counter()
    for row in rows:
        buf += packb(row)
    elapsed = time.perf_counter() - t0
    return elapsed, len(buf)


def wire_rows(events, t0_us) -> list:
    """Each event's wire row, as a reader gets it from the frame the writer builds."""
    builder = pl.FrameBuilder(bytes(16))
    builder.base = t0_us
    for event in events:
        builder.add(event)
    return list(pl.decode(builder.payload()).rows())


def run(tmpdir, tasks: int, repeats: int) -> dict:
    t0_us = now_us()
    header = new_header(t0=EPOCH + timedelta(microseconds=t0_us))
    events = list(task_events(tasks, t0_us))
    rows = wire_rows(events, t0_us)
    arrays = len(rows)
    path = os.path.join(tmpdir, "writer.mpk")
    log(f"[writer] {len(events):,} events, {repeats} repeats each")

    writer_s, packb_s = [], []
    for _ in range(repeats):  # interleaved, like the cluster runs
        writer_s.append(_append_all(path, header, events))
        elapsed, packed = _pack_all(rows)
        packb_s.append(elapsed)
    size = os.path.getsize(path)
    os.remove(path)

    n = len(events)
    rate = n / statistics.median(writer_s)
    base = n / statistics.median(packb_s)
    return {
        "events": n,
        "wire_arrays": arrays,
        "repeats": repeats,
        "writer_seconds": writer_s,
        "packb_seconds": packb_s,
        "writer_events_per_s": rate,
        "packb_events_per_s": base,
        "ratio": rate / base,
        "writer_us_per_event": 1e6 / rate,
        "packb_us_per_event": 1e6 / base,
        "log_bytes": size,
        "packed_bytes": packed,
    }
