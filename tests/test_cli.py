"""The command line: outputs, sinks, and one-line errors with documented exit codes."""

import csv
import io
import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta

import pytest

import ipyrecorder
from ipyrecorder import framing
from ipyrecorder.cli import ExitStatus, main

from .helpers import T0, hostile_log, newer_frame, write_sample


def run(capsys, *args):
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def test_replay_json_has_tasks_engines_marks_summary(tmp_path, capsys):
    write_sample(tmp_path / "a.mpk")
    status, out, err = run(capsys, "replay", str(tmp_path / "a.mpk"), "--sink", "json")
    assert status == 0, err
    doc = json.loads(out)
    assert set(doc) >= {"tasks", "engines", "marks", "summary"}
    task = doc["tasks"]["sess_1_0"]
    assert task["name"] == "task-0" and task["status"] == "ok" and task["stdout"] == "hello 0\n"
    assert task["started"] == "2026-01-02T03:04:05.688901+00:00"
    assert doc["tasks"]["sess_1_2"]["error"] == "ValueError: boom"
    assert doc["summary"]["by_status"] == {"error": 1, "ok": 2}
    assert doc["marks"][0]["text"] == "start"
    assert doc["engines"]["0"]["tasks_done"] == 2


def test_replay_csv_to_file_has_header_and_durations(tmp_path, capsys):
    write_sample(tmp_path / "a.mpk")
    out_file = tmp_path / "tasks.csv"
    status, _, err = run(
        capsys, "replay", str(tmp_path / "a.mpk"), "--sink", "csv", "-o", str(out_file), "-O", "output=true"
    )
    assert status == 0, err
    rows = list(csv.DictReader(io.StringIO(out_file.read_text())))
    assert [r["msg_id"] for r in rows] == ["sess_1_0", "sess_1_1", "sess_1_2"]
    assert float(rows[0]["run_seconds"]) == pytest.approx(0.5)
    assert float(rows[0]["wall_seconds"]) == pytest.approx(0.52)
    assert rows[0]["stdout"] == "hello 0\n" and rows[2]["status"] == "error"


def test_info_and_info_json(tmp_path, capsys):
    write_sample(tmp_path / "a.mpk")
    status, out, _ = run(capsys, "info", str(tmp_path / "a.mpk"))
    assert status == 0 and "3 tasks" in out and "1 error, 2 ok" in out
    status, out, _ = run(capsys, "info", str(tmp_path / "a.mpk"), "--json")
    doc = json.loads(out)
    assert doc["tasks"] == 3 and doc["closed"] is True and doc["engines"]["0"]["busy_seconds"] == pytest.approx(1.0)


def test_sinks_lists_builtins_with_options(capsys):
    status, out, _ = run(capsys, "sinks", "--verbose")
    assert status == 0
    names = [line.split()[0] for line in out.splitlines() if not line.startswith(" ")]
    assert {"csv", "json"} <= set(names) and names == sorted(names) and "indent=int" in out


@pytest.mark.parametrize(
    "args, status, message",
    [
        (["replay", "{missing}"], ExitStatus.NO_FILE, "no such file"),
        (["info", "{not_a_log}"], ExitStatus.NOT_A_LOG, "not an ipyrecorder log"),
        (["replay", "{log}", "--sink", "nope"], ExitStatus.USAGE, "unknown sink 'nope'"),
        (["replay", "{log}", "-O", "colour=red"], ExitStatus.USAGE, "unknown option 'colour'"),
        (["replay", "{log}", "-O", "indent=wide"], ExitStatus.USAGE, "bad value for option 'indent'"),
        (["replay", "{log}", "-O", "indent"], ExitStatus.USAGE, "key=value"),
        (["replay", "{log}", "-o", "{missing_dir}/out.json"], ExitStatus.NO_FILE, "cannot write"),
        (["info", "{newer}"], ExitStatus.NOT_A_LOG, "format version 99"),
        (["bogus"], ExitStatus.USAGE, "No such command"),
        (["replay", "{log}", "--sink", "png"], ExitStatus.USAGE, "unknown sink 'png': did you mean matplotlib?"),
        (["replay", "{log}", "--sink", "chrome"], ExitStatus.USAGE, "did you mean chrome-trace?"),
        (["info", "{log}", "--until", "5"], ExitStatus.USAGE, "--until 5: give a unit, as in +5s"),
        (
            ["info", "{log}", "--until", "2020-01-01T00:00:00"],
            ExitStatus.USAGE,
            "before the recording's first event, at",
        ),
        (["query", "{log}", "-q", '{{"status": "failed"}}'], ExitStatus.USAGE, "(statuses: ok, error, aborted, "),
        (["query", "{log}", "--sort", "slowness"], ExitStatus.USAGE, "cannot sort by 'slowness'"),
    ],
)
def test_errors_are_one_line_with_documented_status(tmp_path, capsys, args, status, message):
    paths = {
        "missing": tmp_path / "missing.mpk",
        "not_a_log": tmp_path / "notes.txt",
        "log": tmp_path / "a.mpk",
        "missing_dir": tmp_path / "no" / "such",
        "newer": tmp_path / "newer.mpk",
    }
    paths["not_a_log"].write_text("just some text\n")
    write_sample(paths["log"])
    paths["newer"].write_bytes(newer_frame())
    code, out, err = run(capsys, *[a.format(**paths) for a in args])
    assert code == status
    assert len(err.strip().splitlines()) == 1 and message in err and "Traceback" not in err


def test_check_reports_and_repairs_a_torn_tail(tmp_path, capsys):
    path = tmp_path / "torn.mpk"
    write_sample(path)
    size = path.stat().st_size
    with open(path, "ab") as fh:
        fh.write(framing.frame(b"\x93\x01\x02\x03")[:-2])  # half a frame
    status, out, err = run(capsys, "check", str(path))
    assert status == ExitStatus.DAMAGED and "torn" in out and f"offset {size}" in out
    status, out, err = run(capsys, "check", str(path), "--repair")
    assert status == 0 and "repaired" in out
    assert path.stat().st_size == size
    assert (tmp_path / f"torn.mpk.torn-{size}").read_bytes() == framing.frame(b"\x93\x01\x02\x03")[:-2]  # kept aside
    assert run(capsys, "check", str(path))[0] == 0


def test_check_refuses_to_repair_a_log_being_written(tmp_path, capsys):
    path = tmp_path / "live.mpk"
    writer = write_sample(path, close=False)
    with open(path, "ab") as fh:
        fh.write(framing.MARKER + b"\x00")
    try:
        status, _, err = run(capsys, "check", str(path), "--repair")
    finally:
        writer.abandon()
    assert status == ExitStatus.LOCKED and "locked" in err


def test_python_dash_m_and_console_script_agree(tmp_path):
    write_sample(tmp_path / "a.mpk")
    outputs = []
    script = shutil.which("ipyrecorder", path=os.path.dirname(sys.executable))
    for command in ([sys.executable, "-m", "ipyrecorder"], [script]):
        result = subprocess.run(
            [*command, "info", str(tmp_path / "a.mpk"), "--json"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        outputs.append(json.loads(result.stdout))
    assert outputs[0] == outputs[1]
    result = subprocess.run([script, "info", str(tmp_path / "absent.mpk")], capture_output=True, text=True, timeout=60)
    assert result.returncode == ExitStatus.NO_FILE and result.stderr.count("\n") == 1


def test_a_broken_plugin_warns_and_the_others_work(tmp_path, monkeypatch, capsys):
    """An entry point that fails to import is listed as failed; built-ins still run."""
    dist = tmp_path / "broken_sink-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-sink\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[ipyrecorder.sinks]\nbroken = no_such_module_xyz:Sink\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    status, out, err = run(capsys, "sinks")
    assert status == 0 and "broken" in out and "failed to load" in out and "warning" in err
    write_sample(tmp_path / "a.mpk")
    status, out, err = run(capsys, "replay", str(tmp_path / "a.mpk"), "--sink", "csv")
    assert status == 0 and out.startswith("msg_id,")
    status, _, err = run(capsys, "replay", str(tmp_path / "a.mpk"), "--sink", "broken")
    assert status == ExitStatus.USAGE and "failed to load" in err


def test_info_shows_a_log_s_text_inertly(tmp_path, capsys):
    """A mark's escape sequences reach the terminal made visible (issue 15, item 1, for info)."""
    path = tmp_path / "hostile.mpk"
    hostile_log(path)
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "marks: <script>alert(1)</script>\\x1b]0;title\\x07" in out and "\x1b" not in out and "\x07" not in out


def test_failures_show_the_resubmit_chain_and_the_last_output(tmp_path, capsys):
    path = tmp_path / "chain.mpk"
    with ipyrecorder.open_log(path, "w") as log:
        for i, msg_id in enumerate(("c_1", "c_2")):
            t = T0 + timedelta(seconds=i)
            log.append({"kind": "submit", "msg_id": msg_id, "t": t, "function": "fit"})
            log.append({"kind": "start", "msg_id": msg_id, "t": t, "engine_id": i})
            log.append({"kind": "stdout", "msg_id": msg_id, "t": t, "text": f"step 1\nstep {i + 2}\n"})
            log.append(
                {
                    "kind": "complete",
                    "msg_id": msg_id,
                    "status": "error",
                    "started": t,
                    "completed": t + timedelta(seconds=0.5),
                    "engine_id": i,
                    "ename": "KeyError",
                    "evalue": f"'x{i}'",
                }
            )
            if i == 0:
                log.append({"kind": "resubmit", "t": t, "msg_id": "c_1", "new_msg_id": "c_2"})
    assert main(["failures", str(path)]) == 0
    out = capsys.readouterr().out
    assert "resubmitted: [c_1] -> c_2" in out and "resubmitted: c_1 -> [c_2]" in out
    assert "last stdout: step 2" in out and "last stdout: step 3" in out
    assert main(["failures", str(path), "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert [r["resubmits"] for r in records] == [["c_1", "c_2"]] * 2 and records[1]["engine_id"] == 1


def test_reading_a_large_log_shows_progress_on_a_terminal_only(tmp_path):
    """(The bar's threshold is lowered for the test: a log past it takes seconds to write.)"""
    from .helpers import ANSI, run_in_pty, varied_log

    varied_log(tmp_path / "big.mpk", n=3000)
    program = [
        sys.executable,
        "-c",
        "import sys, ipyrecorder.cli as cli; cli.PROGRESS_FROM = 1; sys.exit(cli.main(sys.argv[1:]))",
    ]
    status, output = run_in_pty(["replay", str(tmp_path / "big.mpk"), "-o", str(tmp_path / "a.json")], program=program)
    shown = ANSI.sub("", output.decode())
    assert status == 0 and "reading big.mpk" in shown and "wrote" in shown, shown
    piped = subprocess.run(
        [*program, "replay", str(tmp_path / "big.mpk"), "-o", str(tmp_path / "b.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert piped.returncode == 0 and piped.stderr == f"wrote {tmp_path / 'b.json'}\n"  # nothing else when piped
