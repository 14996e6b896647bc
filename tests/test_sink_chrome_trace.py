"""The chrome-trace sink obeys the Trace Event Format's rules."""

import json
from collections import defaultdict
from datetime import timedelta

import ipyrecorder
from ipyrecorder.cli import main

from .helpers import T0, write_sample


def check_trace(doc):
    """Structural rules of the format that Perfetto relies on; returns the events."""
    events = doc["traceEvents"]
    named_pids = {e["pid"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    slices = defaultdict(list)
    flows, asyncs = defaultdict(set), defaultdict(list)
    for e in events:
        assert isinstance(e["pid"], int) and isinstance(e["tid"], int), e
        assert e["pid"] in named_pids, f"pid {e['pid']} has no process_name"
        if e["ph"] == "M":
            continue
        assert isinstance(e["ts"], int) and e["ts"] >= 0, e
        if e["ph"] == "X":
            assert e["dur"] >= 0
            slices[e["pid"], e["tid"]].append((e["ts"], e["ts"] + e["dur"]))
        elif e["ph"] in "sf":
            flows[e["id"]].add(e["ph"])
        elif e["ph"] in "be":
            asyncs[e["cat"], e["id"]].append(e["ph"])
    for track, spans in slices.items():  # slices on one track nest (or follow one another)
        stack = []
        for start, end in sorted(spans, key=lambda s: (s[0], -s[1])):
            while stack and stack[-1] <= start:
                stack.pop()
            assert not stack or end <= stack[-1], f"slices overlap on {track}"
            stack.append(end)
    assert all(kinds == {"s", "f"} for kinds in flows.values()), "every flow starts and finishes"
    assert all(sorted(phs) == ["b", "e"] for phs in asyncs.values()), "every async span begins and ends"
    return events


def test_sample_log_gives_a_valid_trace(tmp_path, capsys):
    write_sample(tmp_path / "a.mpk")
    assert main(["replay", str(tmp_path / "a.mpk"), "--sink", "chrome-trace"]) == 0
    events = check_trace(json.loads((tmp_path / "a.trace.json").read_text()))
    tasks = [e for e in events if e["ph"] == "X" and e["pid"] > 0]
    assert [(e["name"], e["pid"], e["dur"]) for e in tasks] == [
        ("task-0", 1, 500000),
        ("task-2", 1, 500000),
        ("task-1", 2, 500000),
    ]
    assert tasks[1]["args"]["error"] == "ValueError: boom"
    assert [e["args"].get("request_bytes") for e in tasks] == [0, 2_400_000, 1_200_000]
    assert [e["args"].get("reply_bytes") for e in tasks] == [100, None, 101]  # (task-2 failed: no reply measured)
    counter = [e["args"]["busy"] for e in events if e["ph"] == "C"]
    assert max(counter) == 1 and counter[-1] == 0
    assert [e["name"] for e in events if e["ph"] == "i"] == ["start"]
    names = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "process_name"}
    assert names >= {"engine 0", "engine 1"}


def test_overlapping_tasks_on_one_engine_get_their_own_track(tmp_path):
    path = tmp_path / "overlap.mpk"
    with ipyrecorder.open_log(path, "w") as log:
        for i, (start, end) in enumerate([(0, 100), (50, 150), (100, 200)]):
            msg_id = f"s_1_{i}"
            log.append({"kind": "submit", "msg_id": msg_id, "t": T0})
            log.append(
                {
                    "kind": "complete",
                    "msg_id": msg_id,
                    "status": "ok",
                    "engine_id": 3,
                    "started": T0 + timedelta(milliseconds=start),
                    "completed": T0 + timedelta(milliseconds=end),
                }
            )
        log.append({"kind": "engine_unregister", "t": T0 + timedelta(milliseconds=300), "engine_id": 3})
    from ipyrecorder.plugins.chrome_trace_sink import trace_events

    events = check_trace({"traceEvents": trace_events(ipyrecorder.replay(path))})
    lanes = [e["tid"] for e in events if e["ph"] == "X" and e["pid"] == 4]
    assert lanes == [0, 1, 0]
    assert any(e["ph"] == "i" and e["name"] == "engine unregistered" for e in events)
