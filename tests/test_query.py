"""Hub-style queries, several logs merged, and time travel with --until."""

import json
from datetime import datetime, timedelta, timezone

import pytest

import ipyrecorder
from ipyrecorder.cli import ExitStatus, main
from ipyrecorder.query import QueryError

from .helpers import T0, write_sample


@pytest.fixture
def state(tmp_path):
    write_sample(tmp_path / "a.mpk", tasks=4)  # sess_1_0..3, the last one failed; one task a second
    return ipyrecorder.replay(tmp_path / "a.mpk")


def ids(records):
    return [r["msg_id"] for r in records]


@pytest.mark.parametrize(
    "where, expected",
    [
        ({}, ["sess_1_0", "sess_1_1", "sess_1_2", "sess_1_3"]),
        ({"status": "error"}, ["sess_1_3"]),
        ({"engine_id": {"$in": [1]}}, ["sess_1_1", "sess_1_3"]),
        ({"engine_id": {"$nin": [1]}}, ["sess_1_0", "sess_1_2"]),
        ({"status": {"$ne": "ok"}}, ["sess_1_3"]),
        ({"name": {"$glob": "task-[12]"}}, ["sess_1_1", "sess_1_2"]),
        ({"started": {"$gte": (T0 + timedelta(seconds=2)).isoformat()}}, ["sess_1_2", "sess_1_3"]),
        ({"started": {"$gt": T0 + timedelta(seconds=2, milliseconds=10)}}, ["sess_1_3"]),
        ({"started": {"$ge": "2026-01-02T03:04:07.688901+00:00"}}, ["sess_1_3"]),  # $ge is '>' (IPython's table)
        ({"started": {"$le": "2026-01-02T03:04:06.688901Z"}}, ["sess_1_0"]),  # $le is '<'
        ({"started": {"$lte": "2026-01-02T03:04:06.688901"}}, ["sess_1_0", "sess_1_1"]),  # naive means UTC
        ({"run_seconds": {"$lt": 1}, "engine_id": 0}, ["sess_1_0", "sess_1_2"]),
        ({"error": None}, ["sess_1_0", "sess_1_1", "sess_1_2"]),
        ({"engine_uuid": "uuid-1"}, ["sess_1_1", "sess_1_3"]),
    ],
)
def test_operators(state, where, expected):
    assert ids(state.query(where)) == expected


def test_none_matches_missing_values_and_keys_limit_the_record(tmp_path):
    path = tmp_path / "partial.mpk"
    with ipyrecorder.open_log(path, "w") as log:
        log.append({"kind": "submit", "msg_id": "s_1", "t": T0})
        log.append({"kind": "submit", "msg_id": "s_2", "t": T0})
        log.append({"kind": "complete", "msg_id": "s_2", "status": "ok", "completed": T0, "engine_id": 0})
    state = ipyrecorder.replay(path)
    assert state.query({"completed": None}, keys=["status"]) == [{"msg_id": "s_1", "status": "pending"}]


@pytest.mark.parametrize(
    "where, keys, message",
    [
        ({"colour": "red"}, None, "unknown key 'colour'"),
        ({"status": {"$regex": "o"}}, None, "unknown operator '$regex'"),
        ({"engine_id": {"$in": 3}}, None, "$in takes a list"),
        ({"engine_id": {"$gt": "three"}}, None, "expected a number"),
        ({"started": {"$gt": "yesterday"}}, None, "not an ISO 8601 time"),
        ({"run_seconds": {"$glob": "1*"}}, None, "$glob takes a pattern"),
        ({}, ["msg_id", "colour"], "unknown key 'colour' in keys"),
        (["status"], None, "JSON object"),
    ],
)
def test_invalid_queries(state, where, keys, message):
    with pytest.raises(QueryError, match=message.replace("$", r"\$").replace("(", r"\(")):
        state.query(where, keys)


def test_sort_and_limit_answer_the_slowest_tasks(tmp_path, capsys):
    path = tmp_path / "sweep.mpk"
    with ipyrecorder.open_log(path, "w") as log:
        for i, seconds in enumerate((0.3, 2.5, None, 1.1)):  # the third never started
            log.append({"kind": "submit", "msg_id": f"s_{i}", "t": T0, "function": "f"})
            if seconds is not None:
                end = T0 + timedelta(seconds=seconds)
                log.append({"kind": "complete", "msg_id": f"s_{i}", "status": "ok", "started": T0, "completed": end})
    state = ipyrecorder.replay(path)
    assert ids(state.query({}, sort="-run_seconds", limit=2)) == ["s_1", "s_3"]
    assert ids(state.query({}, sort="run_seconds")) == ["s_0", "s_3", "s_1", "s_2"]  # no value: last
    assert ids(state.query({"status": "ok"}, ["run_seconds"], sort="-msg_id", limit=0)) == []
    assert main(["query", str(path), "--sort", "-run_seconds", "-n", "1", "-f", "csv", "-k", "run_seconds"]) == 0
    assert capsys.readouterr().out.splitlines() == ["msg_id,run_seconds", "s_1,2.500000"]


def test_query_command_formats_and_errors(tmp_path, capsys):
    write_sample(tmp_path / "a.mpk", tasks=4)
    log = str(tmp_path / "a.mpk")
    assert main(["query", log, "--where", '{"status": "error"}', "--format", "json"]) == 0
    (record,) = json.loads(capsys.readouterr().out)
    assert record["msg_id"] == "sess_1_3" and record["error"] == "ValueError: boom"
    assert main(["query", log, "-q", '{"engine_id": 0}', "-k", "name,run_seconds", "-f", "csv"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "msg_id,name,run_seconds",
        "sess_1_0,task-0,0.500000",
        "sess_1_2,task-2,0.500000",
    ]
    assert main(["query", log, "-q", '{"status": "ok"}']) == 0
    out = capsys.readouterr().out
    assert "task-0" in out and "sess_1_3" not in out
    for where, message in (("{not json", "not valid JSON"), ('{"colour": 1}', "unknown key")):
        assert main(["query", log, "-q", where]) == ExitStatus.USAGE
        err = capsys.readouterr().err
        assert message in err and len(err.splitlines()) == 1


def test_several_logs_merge_by_msg_id(tmp_path, capsys):
    """A client's log (submissions) and an observer's (starts, ends) make one picture."""
    client, observer = tmp_path / "client.mpk", tmp_path / "observer.mpk"
    with ipyrecorder.open_log(client, "w") as log:
        log.append({"kind": "submit", "msg_id": "c_1", "t": T0, "function": "f"})
        log.append({"kind": "label", "msg_id": "c_1", "name": "first"})
        log.append({"kind": "submit", "msg_id": "c_2", "t": T0, "function": "g"})
    with ipyrecorder.open_log(observer, "w") as log:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 4, "uuid": "u4", "present": True})
        log.append({"kind": "start", "msg_id": "c_1", "t": T0 + timedelta(seconds=1), "engine_id": 4})
        log.append(
            {
                "kind": "complete",
                "msg_id": "c_1",
                "status": "ok",
                "engine_id": 4,
                "started": T0 + timedelta(seconds=1),
                "completed": T0 + timedelta(seconds=3),
            }
        )
    state = ipyrecorder.replay(client, observer)
    first = state.tasks["c_1"]
    assert (first.name, first.function, first.engine_id, first.run_seconds) == ("first", "f", 4, 2.0)
    reverse = ipyrecorder.replay(observer, client)  # starts and ends before submissions: same picture
    assert reverse.tasks["c_1"].to_dict() == first.to_dict()
    assert state.tasks["c_2"].status == "pending" and len(state.headers) == 2
    assert state.tasks["c_2"].outcome is None and first.outcome == first.status == "ok"
    with pytest.deprecated_call():  # the old name of ``status``
        assert first.state == "ok"
    assert main(["info", str(client), str(observer), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["tasks"] == 2 and summary["by_status"] == {"ok": 1, "pending": 1}
    assert main(["replay", str(client), str(observer), "--sink", "csv"]) == 0
    assert capsys.readouterr().out.count("\n") == 3


def test_until_rebuilds_the_state_at_a_moment(tmp_path, capsys):
    path = tmp_path / "a.mpk"
    write_sample(path, tasks=4)  # task i: submitted T0+i s, runs T0+i+10ms .. T0+i+510ms, received +520ms
    moment = T0 + timedelta(seconds=1, milliseconds=300)
    state = ipyrecorder.replay(path, until=moment)
    assert {m: t.status for m, t in state.tasks.items()} == {"sess_1_0": "ok", "sess_1_1": "running"}
    assert state.tasks["sess_1_1"].completed is None and state.until == moment
    assert state.engines[1].current == state.tasks["sess_1_1"]  # a Task is a view of its row
    # received after the moment: done on the engine, not yet received by the client
    later = ipyrecorder.replay(path, until=T0 + timedelta(seconds=1, milliseconds=515))
    assert later.tasks["sess_1_1"].status == "ok" and later.tasks["sess_1_1"].received is None
    assert main(["info", str(path), "--until", moment.isoformat(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["by_status"] == {"ok": 1, "running": 1}
    assert main(["info", str(path), "--until", "soon"]) == ExitStatus.USAGE


def test_until_relative_to_the_recordings_start(tmp_path):
    path = tmp_path / "rel.mpk"
    with ipyrecorder.open_log(path, "w", header=ipyrecorder.log.new_header(t0=T0)) as log:
        for i in range(3):
            log.append({"kind": "submit", "msg_id": f"r_{i}", "t": T0 + timedelta(seconds=10 * i)})
    assert sorted(ipyrecorder.replay(path, until="+15s").tasks) == ["r_0", "r_1"]
    assert sorted(ipyrecorder.replay(path, until="+1m").tasks) == ["r_0", "r_1", "r_2"]


def test_parse_until_forms():
    from ipyrecorder.query import parse_until

    origin = datetime(2026, 1, 1, tzinfo=timezone.utc)
    assert parse_until("+90s", origin) == origin + timedelta(seconds=90)
    assert parse_until("1h30m", origin) == origin + timedelta(minutes=90)
    assert parse_until("250ms", origin) == origin + timedelta(milliseconds=250)
    assert parse_until("2026-01-01T00:00:05Z", origin) == origin + timedelta(seconds=5)


def test_the_table_shows_a_log_s_text_as_text(tmp_path, capsys):
    """Markup and escape sequences in names stay what they are (issue 15, item 2)."""
    from ipyrecorder.log import LogWriter, new_header

    from .helpers import at

    path = tmp_path / "markup.mpk"
    names = ["[/]", "[link=https://example.com]x[/link]", "\x1b]0;title\x07", "\x9b2J"]
    with LogWriter(path, "w", new_header(t0=T0)) as log:
        for i, name in enumerate(names):
            log.append({"kind": "submit", "msg_id": f"m_1_{i}", "t": at(i)})
            log.append({"kind": "label", "msg_id": f"m_1_{i}", "name": name})
    assert main(["query", str(path), "--keys", "name"]) == 0
    out = capsys.readouterr().out
    assert "[/]" in out and "[link=https://example.com]x[/link]" in out and "\x1b]8;" not in out
    assert "\\x1b]0;title\\x07" in out and "\\x9b2J" in out and "\x1b" not in out and "\x9b" not in out
