"""The live matplotlib viewer, offscreen, against a log that a real recording is appending to."""

import io
import os
import subprocess
import sys
import threading

import pytest

import ipyrecorder
from ipyrecorder.cli import ExitStatus, main
from ipyrecorder.sink import Log
from ipyrecorder.tail import Follower, LogTail

pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402

from ipyrecorder.plugins.matplotlib_sink import MatplotlibSink  # noqa: E402
from ipyrecorder.viewers.matplotlib_viewer import LiveTimeline  # noqa: E402

from .helpers import named_sleep, wait_until, write_sample

pytestmark = pytest.mark.cluster


def sink_png(path) -> bytes:
    out = io.BytesIO()
    out.name = "x.png"
    MatplotlibSink().write(Log(path), out)
    return out.getvalue()


def test_frames_grow_with_the_log_and_the_last_is_the_sinks(rc, engines, log_path):
    lview = rc.load_balanced_view()
    live = LiveTimeline(Figure(figsize=(12, 6), layout="constrained"))
    kinds = []
    lock = threading.Lock()
    tail = LogTail(log_path)
    follower = Follower(tail, lambda t: kinds.append(live.update(t.state)), lock=lock)
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    try:
        with ipyrecorder.recording(lview, log_path, mode="w") as rec:
            for wave in range(3):
                lview.map_async(named_sleep, [0.15] * 4, [f"w{wave}-{i}" for i in range(4)]).get(timeout=60)
                wait_until(
                    lambda wave=wave: tail.state.n_completed >= 4 * (wave + 1), timeout=30, message=f"wave {wave}"
                )
            rec.mark("done")
        rec.close(timeout=60)
        wait_until(lambda: tail.state.closes, timeout=30, message="the close event")
    finally:
        follower.stop.set()
        thread.join(timeout=10)
    assert "incremental" in kinds and kinds.count("full") <= 2  # not redrawn from scratch each frame
    # execution bars are the collections with edges (queue and latency bars have none)
    executed = [c for c in live.figure.axes[0].collections if c.get_edgecolor().size]
    assert len(executed) > 1 and sum(len(c.get_paths()) for c in executed) >= 12
    with lock:
        live.update(tail.state, final=True)
    from ipyrecorder.figure import DPI, figure_size

    live.figure.set_size_inches(figure_size(len(engines)))
    out = io.BytesIO()
    live.figure.savefig(out, format="png", dpi=DPI)
    assert out.getvalue() == sink_png(log_path)


def test_headless_watch_exits_when_the_log_closes(rc, engines, log_path, tmp_path):
    picture = tmp_path / "live.png"
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ipyrecorder",
            "watch",
            str(log_path),
            "--viewer",
            "matplotlib",
            "-O",
            f"save={picture}",
            "-O",
            "interval=0.05",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        lview = rc.load_balanced_view()
        with ipyrecorder.recording(lview, log_path, mode="w") as rec:
            lview.map_async(named_sleep, [0.1] * 4, [f"n{i}" for i in range(4)]).get(timeout=60)
        rec.close(timeout=60)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert picture.read_bytes() == sink_png(log_path)


def test_no_display_and_no_save_is_a_one_line_error(tmp_path, capsys, monkeypatch):

    monkeypatch.setenv("MPLBACKEND", "Agg")
    write_sample(tmp_path / "a.mpk")
    assert main(["watch", str(tmp_path / "a.mpk"), "--viewer", "matplotlib"]) == ExitStatus.USAGE
    err = capsys.readouterr().err
    assert "save=FILE.png" in err and len(err.splitlines()) == 1


def test_the_resource_panels_appear_and_grow_with_the_samples(tmp_path):
    from ipyrecorder.log import LogWriter, new_header

    from .helpers import T0, at

    path = tmp_path / "live.mpk"
    writer = LogWriter(path, "w", new_header(t0=T0))
    writer.append({"kind": "submit", "msg_id": "s_1_0", "t": at(0), "queue": "task"})
    writer.append({"kind": "start", "msg_id": "s_1_0", "t": at(0.01), "engine_id": 0})
    writer.flush()
    tail, live = LogTail(path), LiveTimeline(Figure())
    tail.poll()
    assert live.update(tail.state) == "full" and len(live.figure.axes) == 2  # no samples: no panels

    def sample(t, rss):
        writer.append({"kind": "engine_sample", "t": at(t), "engine_id": 0, "cpu": 50.0, "rss": rss})
        writer.flush()
        tail.poll()

    sample(0.5, 100 << 20)
    assert live.update(tail.state) == "full" and [a.get_ylabel() for a in live.figure.axes[2:]] == [
        "memory GB",
        "CPU %",
    ]
    sample(1.0, 300 << 20)
    assert live.update(tail.state) == "incremental"
    (line,) = live.figure.axes[2].lines
    assert list(line.get_ydata()) == [(100 << 20) / 1e9, (300 << 20) / 1e9]
    assert live.figure.axes[-1].get_xlabel().startswith("seconds since") and live.figure.axes[1].get_xlabel() == ""
    writer.close()
