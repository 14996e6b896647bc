"""Mutated logs: every reader meets only documented outcomes, and damage stays in the frames hit.

A seeded loop over mutations of real logs (bit flips, overwritten, inserted,
deleted and duplicated bytes, truncation, and payloads made malformed but
framed with a valid CRC). For each one, ``replay``, ``LogReader.events``, a
live ``LogTail``, ``ipyrecorder check`` and ``info``'s summaries either read the log, reporting
damage, or refuse it with ``NotALog`` / ``UnsupportedVersion``; never anything
else, never a hang. For format 2, every frame the mutation did not touch is
read whole. ``IPYRECORDER_FUZZ_CASES`` sets the number of cases (``make
fuzz`` runs many more than CI).
"""

from __future__ import annotations

import io
import json
import os
import random
import signal
import zlib
from collections import Counter
from contextlib import redirect_stderr, redirect_stdout
from datetime import timedelta
from pathlib import Path

import msgpack
import pytest

import ipyrecorder
from ipyrecorder import framing
from ipyrecorder.cli import ExitStatus, main
from ipyrecorder.events import public_events
from ipyrecorder.summary import read_summary
from ipyrecorder.tail import LogTail

from .helpers import T0

CASES = int(os.environ.get("IPYRECORDER_FUZZ_CASES", "3000"))
FORMAT_1 = Path(__file__).parent / "fixtures" / "format-1" / "demo.mpk"
REFUSALS = (ipyrecorder.NotALog, ipyrecorder.UnsupportedVersion)
CASE_SECONDS = 20  # a case that takes longer than this is a hang


def source_log(path) -> None:
    """A recording-like log: two segments, frames small and large, output, errors, marks, a close."""
    with ipyrecorder.open_log(path, "w") as log:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": "u0", "present": True})
        for i in range(44):  # frames of a few tasks, and of 20 (typed columns)
            msg_id, t = f"sess_7_{i}", T0 + timedelta(milliseconds=10 * i)
            log.append({"kind": "submit", "msg_id": msg_id, "t": t, "queue": "task", "function": f"f{i % 3}"})
            log.append({"kind": "start", "msg_id": msg_id, "t": t, "engine_id": 0})
            log.append({"kind": "stdout", "msg_id": msg_id, "t": t, "text": f"line {i}\n" * (i % 4)})
            status = "error" if i % 5 == 4 else "ok"
            log.append(
                {
                    "kind": "complete",
                    "msg_id": msg_id,
                    "status": status,
                    "started": t,
                    "completed": t + timedelta(milliseconds=7),
                    "received": t + timedelta(milliseconds=8),
                    "engine_id": 0,
                    "ename": "ValueError" if status == "error" else None,
                    "evalue": "bad" if status == "error" else None,
                }
            )
            if i in (2, 5, 8, 23, 43):
                log.append({"kind": "mark", "t": t, "text": f"phase {i}", "data": {"i": i}})
                log.flush()
    with ipyrecorder.open_log(path, "a") as log:
        log.append({"kind": "label", "msg_id": "sess_7_1", "name": "renamed"})


def frames_of(data: bytes) -> list:
    """(offset, size, public events as JSON strings) of each frame of an intact format-2 log."""
    from ipyrecorder.payload import decode

    out = []
    splitter = framing.FrameSplitter()
    for offset, size, payload in splitter.feed(data) + splitter.finish():
        events = [json.dumps(e, sort_keys=True) for e in public_events(decode(payload))]
        out.append((offset, size, events))
    return out


def malformed_payload(rng, payload: bytes) -> bytes:
    """The payload with one value somewhere in it replaced by a value of another type or range."""
    value = msgpack.unpackb(payload, strict_map_key=False)
    if "z" in value:  # work on the content itself, inflated
        value["c"] = msgpack.unpackb(zlib.decompress(value.pop("z")), strict_map_key=False)
    holders = []

    def walk(node):
        if isinstance(node, dict):
            for key in node:
                holders.append((node, key))
                walk(node[key])
        elif isinstance(node, list):
            for i in range(len(node)):
                holders.append((node, i))
                walk(node[i])

    walk(value)
    node, key = rng.choice(holders)
    node[key] = rng.choice([-1, -(2**40), 2**63, 2**64 - 1, None, "", "x" * 3, b"\x00", [], {}, 0.5, True, 10**6])
    return msgpack.packb(value)


def mutate(rng, data: bytes, frames: list):
    """(mutated bytes, the original byte range the mutation touched)."""
    n = len(data)
    what = rng.randrange(7)
    at = rng.randrange(n)
    if what == 0:  # flip one to three bits near each other
        out = bytearray(data)
        end = min(n, at + rng.randrange(1, 4))
        for i in range(at, end):
            out[i] ^= 1 << rng.randrange(8)
        return bytes(out), (at, end)
    if what == 1:  # overwrite a span with random bytes (markers and escapes among them)
        span = rng.randrange(1, 40)
        noise = bytes(rng.choice([0xC1, 0x02, 0x01, rng.randrange(256)]) for _ in range(span))
        return data[:at] + noise + data[at + span :], (at, min(n, at + span))
    if what == 2:  # insert bytes
        noise = rng.choice([framing.MARKER, b"\xc1", os.urandom(rng.randrange(1, 30)), framing.MARKER + b"\x00" * 12])
        return data[:at] + noise + data[at:], (at, at + 1)
    if what == 3:  # delete a span
        span = rng.randrange(1, 60)
        return data[:at] + data[at + span :], (at, min(n, at + span))
    if what == 4:  # truncate
        return data[:at], (at, n)
    if what == 5:  # duplicate a span (as a botched copy would)
        span = rng.randrange(1, 200)
        return data[: at + span] + data[at : at + span] + data[at + span :], (at + span, at + span + 1)
    # a payload made malformed, framed with a valid CRC
    offset, size, _ = rng.choice(frames)
    splitter = framing.FrameSplitter()
    (_, _, payload), *_ = splitter.feed(data[offset : offset + size]) + splitter.finish()
    return data[:offset] + framing.frame(malformed_payload(rng, payload)) + data[offset + size :], (
        offset,
        offset + size,
    )


def read_every_way(path, live_like_replay=True) -> tuple | None:
    """(the public events read, whether ``info``'s summaries agree with the fold), or None if
    the log was refused; anything else fails the test."""
    try:
        state = ipyrecorder.replay(path)
        reader = ipyrecorder.LogReader(path)
        events = [json.dumps(e, sort_keys=True) for e in reader.public_events()]
        tail = LogTail(path)
        tail.poll()
        quick = read_summary(path)
    except REFUSALS:
        return None
    assert state.damage == reader.damage
    # what ``info`` reads from the writer's summaries (None: it folds) is the fold's, unless a
    # close event's own frame was rewritten with a CRC that checks out (the caller checks that)
    summed = quick is None or quick == (state.headers, state.summary(), [m.text for m in state.marks])
    with redirect_stdout(io.StringIO()), redirect_stderr(io.StringIO()) as err:
        status = main(["check", str(path)])
    assert status in (ExitStatus.OK, ExitStatus.DAMAGED) and "Traceback" not in err.getvalue()
    if live_like_replay:  # (format 1: a tail waits on a damaged length, as ipyrecorder 0.1 did)
        # a live tail holds back a last frame that may still be being written: it is not damage yet
        held_back = reader.damage[len(tail.damage) :]
        assert tail.damage == reader.damage[: len(tail.damage)]
        assert len(held_back) <= 1 and all(d.offset + d.length == os.path.getsize(path) for d in held_back)
        if not held_back:
            assert {m: t.status for m, t in tail.state.tasks.items()} == {m: t.status for m, t in state.tasks.items()}
    return events, summed


@pytest.fixture
def hang_guard():
    def alarm(signum, frame):
        raise TimeoutError(f"a case ran for more than {CASE_SECONDS} s: a hang")

    previous = signal.signal(signal.SIGALRM, alarm)
    yield lambda: signal.alarm(CASE_SECONDS)
    signal.alarm(0)
    signal.signal(signal.SIGALRM, previous)


def test_mutated_logs_lose_only_the_frames_hit(tmp_path, hang_guard):
    src = tmp_path / "src.mpk"
    source_log(src)
    data = src.read_bytes()
    frames = frames_of(data)
    assert len(frames) >= 6
    rng = random.Random(20261201)
    path = tmp_path / "mutated.mpk"
    read = refused = 0
    for case in range(CASES):
        mutated, (lo, hi) = mutate(rng, data, frames)
        path.write_bytes(mutated)
        hang_guard()
        outcome = read_every_way(path)
        if outcome is None:
            refused += 1
            assert lo < frames[0][1], f"case {case}: refused, though the first frame was not hit"
            continue
        events, summed = outcome
        read += 1
        # a summary is trusted as written: only an edit of its own frame that checks out misleads it
        closes = [(offset, size) for offset, size, want in frames if any('"kind": "close"' in e for e in want)]
        assert summed or any(lo < offset + size and hi > offset for offset, size in closes), f"case {case}"
        got = Counter(events)
        for offset, size, want in frames:
            if hi <= offset or lo >= offset + size:  # a frame the mutation did not touch
                missing = Counter(want) - got
                assert not missing, f"case {case}: bytes {lo}-{hi} hit, frame at {offset} lost {list(missing)[:2]}"
    assert read > CASES * 0.9


def test_mutated_format_1_logs_meet_only_documented_outcomes(tmp_path, hang_guard):
    data = FORMAT_1.read_bytes()
    rng = random.Random(1)
    path = tmp_path / "mutated.mpk"
    for _ in range(max(50, CASES // 10)):
        at = rng.randrange(len(data))
        span = rng.randrange(1, 30)
        path.write_bytes(data[:at] + os.urandom(rng.randrange(0, 30)) + data[at + span :])
        hang_guard()
        read_every_way(path, live_like_replay=False)
