"""The parquet-dataset sink: logs streamed into a partitioned dataset that DuckDB queries."""

import os
from datetime import timedelta

import pytest

import ipyrecorder
from ipyrecorder.cli import ExitStatus, main

from .helpers import T0, rich_log

duckdb = pytest.importorskip("duckdb")
pytest.importorskip("pyarrow")
FORMAT_1 = os.path.join(os.path.dirname(__file__), "fixtures", "format-1", "demo.mpk")


def dataset(tmp_path, *logs):
    out = tmp_path / "run.dataset"
    assert main(["replay", *map(str, logs), "--sink", "parquet-dataset", "-o", str(out)]) == ExitStatus.OK
    return out


def counts(out) -> dict:
    rows = duckdb.sql(
        f"select log, kind, count(*) from read_parquet('{out}/kind=*/*.parquet', hive_partitioning=true, "
        "union_by_name=true) group by all"
    ).fetchall()
    return {(log, kind): n for log, kind, n in rows}


def test_every_event_of_several_logs_is_in_the_dataset(tmp_path):
    rich = tmp_path / "rich.mpk"
    rich_log(rich)
    out = dataset(tmp_path, rich, FORMAT_1)  # a format-2 log and a format-1 one
    want = {}
    for path in (rich, FORMAT_1):
        for event in ipyrecorder.LogReader(path).events():
            if event["kind"] != "header":
                key = (os.path.basename(path), event["kind"])
                want[key] = want.get(key, 0) + 1
    assert counts(out) == want


def test_the_tasks_view_of_the_docs_gives_what_replay_gives(tmp_path):
    rich = tmp_path / "run.mpk"
    rich_log(rich)
    out = dataset(tmp_path, rich)
    query = (
        "select s.msg_id, s.function, epoch_us(s.t), c.status, epoch_us(c.completed), c.engine_id "
        f"from read_parquet('{out}/kind=submit/*.parquet') s "
        f"left join read_parquet('{out}/kind=complete/*.parquet') c using (log, msg_id)"
    )
    got = {row[0]: row[1:] for row in duckdb.sql(query).fetchall()}
    state = ipyrecorder.replay(rich)
    want = {
        m: (t.function, t.submitted_us, t.outcome, t.completed_us, t.engine_id)
        for m, t in state.tasks.items()
        if t.submitted_us is not None
    }
    assert got == want and len(got) == 600


def test_memory_stays_bounded_by_a_batch(tmp_path, monkeypatch):
    from ipyrecorder.plugins import parquet_dataset_sink

    monkeypatch.setattr(parquet_dataset_sink, "BATCH_ROWS", 100)
    rich = tmp_path / "run.mpk"
    with ipyrecorder.open_log(rich, "w") as log:
        for i in range(600):  # in frames of 50 tasks
            log.append({"kind": "submit", "msg_id": f"s_1_{i}", "t": T0 + timedelta(seconds=i), "function": "f"})
            if i % 50 == 49:
                log.flush()
    out = dataset(tmp_path, rich)
    parts = sorted(os.listdir(out / "kind=submit"))
    assert len(parts) >= 6  # 600 submits, 100 rows at a time
    assert counts(out)[("run.mpk", "submit")] == 600


def test_an_existing_output_or_until_is_a_one_line_error_and_leaves_nothing(tmp_path, capsys):
    rich = tmp_path / "run.mpk"
    rich_log(rich)
    (tmp_path / "taken").mkdir()
    args = ["replay", str(rich), "--sink", "parquet-dataset"]
    assert main([*args, "-o", str(tmp_path / "taken")]) == ExitStatus.USAGE
    assert main([*args, "-o", str(tmp_path / "new"), "--until", "+1s"]) == ExitStatus.USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "exists" in err[0] and "--until" in err[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.mpk", "taken"]  # no partial directory left
