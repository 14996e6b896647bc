"""Logs of format 1 (ipyrecorder 0.1) still read exactly as 0.1 read them.

The fixtures in tests/fixtures/format-1 were written by ipyrecorder 0.1 (a real
recorded demo run, synthetic logs, two segments, time bases that move inside a
frame, and a damaged copy of the demo); expected.json holds what 0.1's
``replay()`` and ``LogReader.events()`` made of each.
"""

import json
from pathlib import Path

import pytest

import ipyrecorder
from ipyrecorder.cli import ExitStatus, main
from ipyrecorder.tail import LogTail

FIXTURES = Path(__file__).parent / "fixtures" / "format-1"
EXPECTED = json.loads((FIXTURES / "expected.json").read_text())


def as_json(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


# what summaries and tasks have that 0.1's had not
NEW_SUMMARY_KEYS = ("damage", "failed_attempts", "clocks", "bytes", "parallelism", "critical_path", "slowest", "failed")
NEW_TASK_KEYS = ("request_bytes", "reply_bytes", "after", "follow", "peak_rss")
NEW_ENGINE_KEYS = ("host", "pid", "cpus", "memory", "samples", "peak_rss")


def without(record: dict, keys) -> dict:
    return {k: v for k, v in record.items() if k not in keys}


def folded(state) -> dict:
    return as_json(
        {
            "summary": {
                **without(state.summary(), NEW_SUMMARY_KEYS),
                "engines": {k: without(e, NEW_ENGINE_KEYS) for k, e in state.summary()["engines"].items()},
            },
            "damage": [[d.offset, d.length] for d in state.damage],
            "events": state.events,
            "tasks": [without(t.to_dict(), NEW_TASK_KEYS) for t in state.tasks.values()],
            "engines": [without(e.to_dict(), NEW_ENGINE_KEYS) for e in state.engines.values()],
            "marks": [m.to_dict() for m in state.marks],
            "headers": [
                {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in h.items()} for h in state.headers
            ],
        }
    )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_format_1_log_folds_as_0_1_folded_it(name):
    want = dict(EXPECTED[name])
    kinds = want.pop("kinds")
    del want["events"]  # 0.1 counted the definitions (strings, task ids) among the events
    state = ipyrecorder.replay(FIXTURES / name)
    got = folded(state)
    assert got.pop("events") == sum(kinds.values()) - kinds.get("header", 0)
    assert got == want
    got = {}
    for event in ipyrecorder.LogReader(FIXTURES / name).events():
        got[event["kind"]] = got.get(event["kind"], 0) + 1
    assert got == kinds


@pytest.mark.parametrize("name", ["demo.mpk", "damaged.mpk", "two-segments.mpk"])
def test_a_live_tail_reads_format_1_as_replay_does(name):
    tail = LogTail(FIXTURES / name)
    tail.poll()
    whole = ipyrecorder.replay(FIXTURES / name)
    assert tail.state.summary()["by_status"] == whole.summary()["by_status"]
    assert [t.to_dict() for t in tail.state.tasks.values()] == [t.to_dict() for t in whole.tasks.values()]


def test_new_events_never_go_into_a_format_1_log(tmp_path, capsys):
    path = tmp_path / "old.mpk"
    path.write_bytes((FIXTURES / "sample.mpk").read_bytes())
    with pytest.raises(ipyrecorder.LogError, match="format-1 log"):
        ipyrecorder.open_log(path, "a")
    assert path.read_bytes() == (FIXTURES / "sample.mpk").read_bytes()
    assert main(["info", str(path)]) == ExitStatus.OK
