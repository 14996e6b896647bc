"""Sinks from outside: a third-party distribution, parquet, and pandas."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

import ipyrecorder
import ipyrecorder.cli

from .helpers import write_sample

HERE = Path(__file__).resolve().parent


def test_third_party_sink_is_listed_and_usable(tmp_path):
    site = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--target",
            str(site),
            str(HERE / "plugin_example"),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    env = {**os.environ, "PYTHONPATH": str(site)}
    cli = [sys.executable, "-m", "ipyrecorder"]
    listed = subprocess.run([*cli, "sinks", "--verbose"], capture_output=True, text=True, env=env, timeout=60)
    assert listed.returncode == 0
    assert "count" in listed.stdout and "How many tasks ended in each status." in listed.stdout
    assert "sep=str" in listed.stdout
    write_sample(tmp_path / "a.mpk")
    replayed = subprocess.run(
        [*cli, "replay", str(tmp_path / "a.mpk"), "--sink", "count", "-O", "sep==", "-o", "-"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert replayed.returncode == 0, replayed.stderr
    assert replayed.stdout.splitlines() == ["error=1", "ok=2"]


def test_parquet_tasks_table_matches_the_state(tmp_path, capsys):
    pq = pytest.importorskip("pyarrow.parquet")
    write_sample(tmp_path / "a.mpk")
    out = tmp_path / "a.parquet"
    assert (
        ipyrecorder.cli.main(
            ["replay", str(tmp_path / "a.mpk"), "--sink", "parquet", "-o", str(out), "-O", "events=true"]
        )
        == 0
    )
    table = pq.read_table(out)
    state = ipyrecorder.replay(tmp_path / "a.mpk")
    assert table.num_rows == len(state.tasks)
    assert str(table.schema.field("started").type) == "timestamp[us, tz=UTC]"
    rows = {row["msg_id"]: row for row in table.to_pylist()}
    for msg_id, task in state.tasks.items():
        row = rows[msg_id]
        assert (row["started"], row["completed"], row["received"]) == (task.started, task.completed, task.received)
        assert (row["engine_id"], row["status"], row["name"], row["stdout"]) == (
            task.engine_id,
            task.status,
            task.name,
            task.stdout,
        )
        assert (row["request_bytes"], row["reply_bytes"]) == (task.request_bytes, task.reply_bytes)
    assert str(table.schema.field("reply_bytes").type) == "int64"
    assert [rows[m]["reply_bytes"] for m in state.tasks] == [100, 101, None]  # null where not measured
    events = pq.read_table(tmp_path / "a.events.parquet")
    assert events.num_rows == sum(1 for e in ipyrecorder.read_events(tmp_path / "a.mpk") if e["kind"] != "header")
    assert set(events.column("kind").to_pylist()) >= {"submit", "start", "complete", "stdout", "mark", "close"}


def test_parquet_without_pyarrow_names_the_extra(tmp_path):
    write_sample(tmp_path / "a.mpk")
    code = (
        "import sys; sys.modules['pyarrow'] = None; from ipyrecorder.cli import main;"
        f"sys.exit(main(['replay', {str(tmp_path / 'a.mpk')!r}, '--sink', 'parquet']))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "pip install 'ipyrecorder[parquet]'" in result.stderr and len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "a.parquet").exists()


def test_state_to_dataframe(tmp_path):
    pytest.importorskip("pandas")
    write_sample(tmp_path / "a.mpk")
    state = ipyrecorder.replay(tmp_path / "a.mpk")
    frame = state.to_dataframe()
    assert list(frame.index) == list(state.tasks)
    assert str(frame["started"].dtype) == "datetime64[us, UTC]" or str(frame["started"].dtype).endswith("UTC]")
    assert frame.loc["sess_1_0", "started"].to_pydatetime() == state.tasks["sess_1_0"].started
    assert frame["status"].tolist() == ["ok", "ok", "error"]
    for column in ("engine_id", "chunk", "target", "request_bytes", "reply_bytes"):  # integers, or missing
        assert str(frame[column].dtype) == "Int64", column
    assert frame["chunk"].isna().all() and frame.loc["sess_1_1", "request_bytes"] == 1_200_000
    pytest.importorskip("pyarrow")
    assert (
        ipyrecorder.cli.main(
            ["replay", str(tmp_path / "a.mpk"), "--sink", "parquet", "-o", str(tmp_path / "a.parquet")]
        )
        == 0
    )
    import pandas as pd

    read = pd.read_parquet(tmp_path / "a.parquet")  # pandas reads them back as nullable integers too
    assert str(read["chunk"].dtype) == "Int64" and str(read["reply_bytes"].dtype) == "Int64"


def test_parquet_columns_hold_what_each_task_says(tmp_path):
    pytest.importorskip("pyarrow")
    from ipyrecorder.plugins.parquet_sink import tasks_table

    from .helpers import rich_log, varied_log

    for path in (tmp_path / "rich.mpk", tmp_path / "varied.mpk"):
        (rich_log if path.stem == "rich" else varied_log)(path)
        state = ipyrecorder.replay(path)
        rows = tasks_table(state).to_pylist()
        assert len(rows) == len(state.tasks)
        for row, task in zip(rows, state.tasks.values()):
            want = {key: getattr(task, key) for key in row}
            assert row == want, task.msg_id


def test_parquet_is_written_a_row_group_at_a_time(tmp_path, monkeypatch):
    pq = pytest.importorskip("pyarrow.parquet")
    from ipyrecorder.plugins import parquet_sink

    from .helpers import varied_log

    varied_log(tmp_path / "a.mpk", n=500)
    whole = parquet_sink.tasks_table(ipyrecorder.replay(tmp_path / "a.mpk"))
    monkeypatch.setattr(parquet_sink, "ROW_GROUP", 64)
    out = tmp_path / "a.parquet"
    assert ipyrecorder.cli.main(["replay", str(tmp_path / "a.mpk"), "--sink", "parquet", "-o", str(out)]) == 0
    written = pq.ParquetFile(out)
    assert written.metadata.num_row_groups == 8
    assert written.read().to_pylist() == whole.to_pylist()


def test_csv_rows_are_what_each_task_says(tmp_path, monkeypatch):
    import csv
    from datetime import timedelta

    from ipyrecorder.log import LogWriter, new_header
    from ipyrecorder.plugins import csv_sink

    from .helpers import T0, rich_log, varied_log

    odd = tmp_path / "odd.mpk"
    with LogWriter(odd, "w", new_header(t0=T0)) as writer:  # whole seconds, far before 1970, odd msg_ids
        for i, t in enumerate([T0.replace(microsecond=0), T0.replace(year=1901), T0 + timedelta(days=3000)]):
            msg_id = ["a_1", "b", "c_007"][i]
            writer.append({"kind": "submit", "msg_id": msg_id, "t": t, "function": 'f,"quoted"\n'})
            writer.append({"kind": "complete", "msg_id": msg_id, "status": "ok", "completed": t, "received": t})
    rich_log(tmp_path / "rich.mpk")
    varied_log(tmp_path / "varied.mpk", output=True)
    monkeypatch.setattr(csv_sink, "ROWS_AT_ONCE", 97)  # several slices
    for path in (odd, tmp_path / "rich.mpk", tmp_path / "varied.mpk"):
        out = tmp_path / "out.csv"
        assert ipyrecorder.cli.main(["replay", str(path), "--sink", "csv", "-o", str(out), "-O", "output=true"]) == 0
        with open(out, newline="") as fh:
            rows = list(csv.reader(fh))
        columns = rows[0]
        tasks = list(ipyrecorder.replay(path).tasks.values())
        assert len(rows) == len(tasks) + 1
        for row, task in zip(rows[1:], tasks):
            record = task.to_dict()
            assert row == ["" if record[c] is None else str(record[c]) for c in columns], task.msg_id


def test_records_are_every_tasks_to_dict(tmp_path):
    from ipyrecorder.records import records
    from ipyrecorder.table import TASK_KEYS

    from .helpers import T0, rich_log, varied_log

    rich_log(tmp_path / "rich.mpk")
    varied_log(tmp_path / "varied.mpk", output=True)
    restarts = [{"kind": "attempt_error", "msg_id": "sess-1_77_1", "t": T0, "engine_id": 2, "ename": "E"}]
    varied_log(tmp_path / "retried.mpk", n=300, tail=restarts)
    for path in sorted(tmp_path.glob("*.mpk")):
        state = ipyrecorder.replay(path)
        table = state.table
        got = records(table, 5, len(table) + 10, TASK_KEYS)
        want = [task.to_dict() for task in list(state.tasks.values())[5:]]
        assert [dict(zip(TASK_KEYS, values)) for values in zip(*got.values())] == want, path.name
