"""Figure 2: how fast ``LogWriter.append`` takes realistic events.

Measured: events/s appending pre-built submit/start/complete dicts to a
``LogWriter`` (encoding, interning, 1 MiB frames written to a file in the
temporary directory; the closing fsync is not timed).
Baseline: events/s of ``msgpack.packb`` on the very wire arrays the encoder
produces for those events, appended to a bytearray: the cost of msgpack alone.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from datetime import timedelta

import msgpack

from ipyrecorder import events as ev
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


def _pack_all(encoded):
    packb = msgpack.packb
    buf = bytearray()
    gc.collect()
    t0 = time.perf_counter()
    for arrays in encoded:
        for array in arrays:
            buf += packb(array)
    elapsed = time.perf_counter() - t0
    return elapsed, len(buf)


def run(tmpdir, tasks: int, repeats: int) -> dict:
    t0_us = now_us()
    header = new_header(t0=EPOCH + timedelta(microseconds=t0_us))
    events = list(task_events(tasks, t0_us))
    encoder = ev.Encoder(t0_us)
    encoded = [encoder.encode(event) for event in events]  # what append packs
    arrays = sum(len(a) for a in encoded)
    path = os.path.join(tmpdir, "writer.mpk")
    log(f"[writer] {len(events):,} events ({arrays:,} wire arrays), {repeats} repeats each")

    writer_s, packb_s = [], []
    for _ in range(repeats):  # interleaved, like the cluster runs
        writer_s.append(_append_all(path, header, events))
        elapsed, packed = _pack_all(encoded)
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
