"""The terminal viewer, driven for real against logs that a real recording is appending to."""

import os
import re
import signal
import subprocess
import sys
import threading
from datetime import timedelta

import pytest
from rich.console import Console

import ipyrecorder
from ipyrecorder.cli import ExitStatus, main
from ipyrecorder.tail import Follower, LogTail
from ipyrecorder.viewers.terminal import render, status_line, where_it_failed

from .helpers import T0, named_sleep, read_until, spawn_in_pty, wait_until, write_sample


def text_of(renderable, width=120):
    console = Console(record=True, force_terminal=True, width=width, file=open(os.devnull, "w"))
    console.print(renderable)
    return console.export_text()


@pytest.mark.cluster
def test_render_follows_a_live_recording(rc, engines, log_path):
    lview = rc.load_balanced_view()
    tail = LogTail(log_path)
    screens = []
    lock = threading.Lock()
    follower = Follower(tail, lambda t: screens.append(text_of(render(t))), lock=lock)
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    try:
        with ipyrecorder.recording(lview, log_path, mode="w") as rec:
            ar = lview.map_async(named_sleep, [0.4] * 4, [f"nap-{i}" for i in range(4)])
            rec.name_tasks(ar, [f"nap-{i}" for i in range(4)])
            ar.get(timeout=60)
            rec.mark("all woke")
        rec.close(timeout=60)
        wait_until(lambda: screens and "4/4 done" in screens[-1], timeout=30, message="the final screen")
    finally:
        follower.stop.set()
        thread.join(timeout=10)
    busy = [s for s in screens if re.search(r"busy\s+nap-\d", s)]
    assert busy, "a screen showed an engine busy with a named task"
    final = screens[-1]
    assert "0 failed" in final and "marks: all woke" in final and "woke up" in final
    for engine_id in engines:
        assert re.search(rf"^\s*{engine_id}\s+idle", final, re.M)


@pytest.mark.cluster
def test_watch_in_a_real_terminal_until_ctrl_c(rc, engines, log_path):
    proc, master = spawn_in_pty(["watch", str(log_path), "-O", "refresh=0.1"])
    try:
        read_until(master, r"waiting for .*run\.mpk")
        lview = rc.load_balanced_view()
        with ipyrecorder.recording(lview, log_path, mode="w") as rec:
            lview.map_async(named_sleep, [0.2] * 6, [f"t{i}" for i in range(6)]).get(timeout=60)
        rec.close(timeout=60)
        screen = read_until(master, r"6/6 done")
        assert "engine" in screen and "busy s" in screen
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def test_plain_lines_when_not_a_terminal(tmp_path):

    write_sample(tmp_path / "a.mpk")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipyrecorder", "watch", str(tmp_path / "a.mpk")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("3/3 done, 1 failed, 0 running")
        assert "\x1b" not in line
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=20)
    assert proc.returncode == 0


def test_once_prints_and_exits(tmp_path, capsys):

    write_sample(tmp_path / "a.mpk")
    assert main(["watch", str(tmp_path / "a.mpk"), "--once"]) == 0
    out = capsys.readouterr().out
    assert out.strip() == status_line(ipyrecorder.replay(tmp_path / "a.mpk"))
    assert main(["watch", str(tmp_path / "missing.mpk"), "--once"]) == ExitStatus.NO_FILE
    assert main(["watch", str(tmp_path / "a.mpk"), "--viewer", "nope"]) == ExitStatus.USAGE


def test_recent_errors_show_where_the_newest_failed(tmp_path):

    path = tmp_path / "failed.mpk"
    with ipyrecorder.open_log(path, "w") as log:
        log.append({"kind": "submit", "msg_id": "s_1", "t": T0, "function": "simulate"})
        log.append(
            {
                "kind": "complete",
                "msg_id": "s_1",
                "status": "error",
                "engine_id": 0,
                "started": T0,
                "completed": T0 + timedelta(seconds=1),
                "ename": "KeyError",
                "evalue": "'x'",
                "traceback": "Traceback (most recent call last)\n\n  File model.py:12, in simulate(p)\n"
                "---> 12     return table[p]\n\nKeyError: 'x'",
            }
        )
    tail = LogTail(path)
    tail.poll()
    screen = text_of(render(tail))
    assert "simulate: KeyError: 'x'" in screen
    lines = [line.rstrip() for line in screen.splitlines()]
    at = lines.index("      File model.py:12, in simulate(p)")  # the traceback's own indent, under the error
    assert lines[at + 1 : at + 3] == ["    ---> 12     return table[p]", "    KeyError: 'x'"]
    plain = 'Traceback (most recent call last):\n  File "a.py", line 3, in f\n    raise KeyError(1)\nKeyError: 1'
    assert where_it_failed(plain) == ['  File "a.py", line 3, in f', "    raise KeyError(1)", "KeyError: 1"]


def test_a_narrow_terminal_keeps_its_headers_and_shows_each_function_s_progress(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tail = LogTail("later.mpk")
    tail.poll()
    screen = text_of(render(tail, width=50), width=50)
    assert screen.startswith("waiting for later.mpk to be created") and "engine" not in screen
    log = ipyrecorder.open_log("later.mpk", "w")
    log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": "u0", "present": True})
    for i, (function, status) in enumerate([("simulate", "ok"), ("simulate", "ok"), ("simulate", "error")]):
        t = T0 + timedelta(seconds=i)
        log.append({"kind": "submit", "msg_id": f"n_{i}", "t": t, "function": function})
        log.append({"kind": "start", "msg_id": f"n_{i}", "t": t, "engine_id": 0})
        log.append({"kind": "complete", "msg_id": f"n_{i}", "status": status, "started": t, "completed": t})
    log.append({"kind": "submit", "msg_id": "n_3", "t": T0, "function": "reduce"})
    log.append({"kind": "start", "msg_id": "n_3", "t": T0 + timedelta(seconds=4), "engine_id": 0})
    log.flush()
    tail.poll()
    screen = text_of(render(tail, width=50), width=50)
    assert "waiting for" not in screen and "later.mpk  recording\n" in screen
    assert re.search(r"^engine\s+state\s+task\s+running\s+done\s+errors\s*$", screen, re.M), screen  # whole words
    assert "busy s" not in screen and "simulate: error" in screen  # (an error without a message says its status)
    assert re.search(r"^simulate\s.*\s3/3 1 failed\s*$", screen, re.M), screen
    assert re.search(r"^reduce\s.*\s0/1  1 running\s*$", screen, re.M), screen
    log.close({"ended": "block exited"})
    tail.poll()
    assert "later.mpk  recording ended: block exited" in text_of(render(tail, width=50), width=50)
