"""Figure 3: how fast ``replay()`` folds a big log.

Measured: events/s of ``ipyrecorder.replay(path)`` on a log of about
1,000,000 events (``State.events``; each task is 3: submit, start, complete),
written beforehand by ``LogWriter`` from realistic events. Timed from the path
to the finished State: reading the file, CRC checks, inflating, decoding and
checking the payloads, and the fold.
Baseline: events/s of a bare ``msgpack.Unpacker`` iterating over the same
events packed one msgpack array each (the wire rows, already in memory), with
the options the reader uses: the cost of msgpack decoding alone, event by event.

The headline is the median of repeated replays in this (warm) process. A
viewer usually replays once in a new process, where the allocator and the
garbage collector have more work, so the same is also timed in a fresh
interpreter (``replay()`` only, not the interpreter start or the import).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time

import msgpack

from ipyrecorder import replay
from ipyrecorder.log import LogReader

from ._util import ROOT, log, now_us, timed, write_task_log

FRESH = """
import json, sys, time
from ipyrecorder import replay
t0 = time.perf_counter()
state = replay(sys.argv[1])
print(json.dumps({"seconds": time.perf_counter() - t0, "events": state.events}))
"""


def _fresh_replay(path) -> float:
    """Seconds for replay(path) in a new interpreter, importing ipyrecorder from this tree."""
    out = subprocess.run(
        [sys.executable, "-c", FRESH, path], cwd=ROOT, capture_output=True, text=True, check=True, timeout=300
    )
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def build_log(path, wire_events: int) -> dict:
    tasks = max(1, wire_events // 3)
    started = time.perf_counter()
    write_task_log(path, tasks, now_us())
    return {"tasks": tasks, "build_seconds": time.perf_counter() - started}


def _unpack_all(blob: bytes) -> int:
    unpacker = msgpack.Unpacker(raw=False, use_list=False, strict_map_key=False, max_buffer_size=len(blob) + 1)
    unpacker.feed(blob)
    n = 0
    for _ in unpacker:
        n += 1
    return n


def run(tmpdir, wire_events: int, repeats: int) -> dict:
    path = os.path.join(tmpdir, "replay.mpk")
    log(f"[replay] writing a log of ~{wire_events:,} wire events ...")
    built = build_log(path, wire_events)
    size = os.path.getsize(path)
    blob = b"".join(msgpack.packb(row) for _, frame in LogReader(path).frames() for row in frame.rows())
    log(f"[replay] {size / 1e6:.1f} MB, {built['tasks']:,} tasks; {repeats} repeats each")

    replay_s, unpack_s, read_s, fresh_s = [], [], [], []
    events = None
    for _ in range(repeats):  # interleaved
        elapsed, state = timed(replay, path)
        replay_s.append(elapsed)
        if events is None:
            events = state.events
            ok = (
                len(state.tasks) == built["tasks"]
                and not state.damage
                and all(t.status == "ok" for t in state.tasks.values())
            )
        del state
        elapsed, n = timed(_unpack_all, blob)
        unpack_s.append(elapsed)
        assert n == events, (n, events)
        # The reading part of replay alone: file read, frame split, CRC checks, payload decoding.
        read_s.append(timed(lambda: sum(1 for _ in LogReader(path).frames()))[0])
        fresh_s.append(_fresh_replay(path))
    os.remove(path)

    rate = events / statistics.median(replay_s)
    base = events / statistics.median(unpack_s)
    read = statistics.median(read_s)
    return {
        "wire_events": events,
        "tasks": built["tasks"],
        "public_events": 3 * built["tasks"] + 4,  # + header, 2 engine_register, close
        "log_bytes": size,
        "verified": ok,
        "repeats": repeats,
        "build_seconds": built["build_seconds"],
        "replay_seconds": replay_s,
        "unpack_seconds": unpack_s,
        "read_verify_seconds": read_s,
        "fresh_process_seconds": fresh_s,
        "fresh_process_events_per_s": events / statistics.median(fresh_s),
        "replay_events_per_s": rate,
        "unpack_events_per_s": base,
        "ratio": rate / base,
        "replay_tasks_per_s": built["tasks"] / statistics.median(replay_s),
        "share_read_verify": read / statistics.median(replay_s),
        "share_unpack": statistics.median(unpack_s) / statistics.median(replay_s),
    }
