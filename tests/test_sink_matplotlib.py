"""The matplotlib timeline sink: real files, drawn with collections."""

from datetime import timedelta

import pytest

import ipyrecorder
from ipyrecorder.cli import ExitStatus, main
from ipyrecorder.sink import Log

from .helpers import T0, write_sample

pytest.importorskip("matplotlib")
from ipyrecorder.colours import STATUS_COLOURS  # noqa: E402
from ipyrecorder.figure import draw_timeline  # noqa: E402
from ipyrecorder.timeline import BUSY_BINS, TimelineData  # noqa: E402

MAGIC = {"png": b"\x89PNG\r\n\x1a\n", "pdf": b"%PDF", "svg": b"<?xml"}


@pytest.mark.parametrize("fmt", ["png", "svg", "pdf"])
def test_writes_each_format_from_the_extension(tmp_path, capsys, fmt):
    write_sample(tmp_path / "a.mpk")
    out = tmp_path / f"timeline.{fmt}"
    assert main(["replay", str(tmp_path / "a.mpk"), "--sink", "matplotlib", "-o", str(out)]) == 0
    assert out.read_bytes().startswith(MAGIC[fmt])


def test_default_output_is_the_log_name_with_png(tmp_path, capsys):
    write_sample(tmp_path / "run.mpk")
    assert main(["replay", str(tmp_path / "run.mpk"), "--sink", "matplotlib"]) == 0
    assert (tmp_path / "run.png").read_bytes().startswith(MAGIC["png"])


def test_unknown_format_is_a_one_line_error(tmp_path, capsys):
    write_sample(tmp_path / "a.mpk")
    status = main(["replay", str(tmp_path / "a.mpk"), "--sink", "matplotlib", "-o", str(tmp_path / "x.gif")])
    err = capsys.readouterr().err
    assert status == ExitStatus.USAGE and "png, svg or pdf" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "x.gif").exists()


def many_tasks(path, n, engines=8):
    with ipyrecorder.open_log(path, "w") as log:
        for e in range(engines):
            log.append({"kind": "engine_register", "t": T0, "engine_id": e, "uuid": f"u{e}", "present": True})
        for i in range(n):
            msg_id, t = f"s_1_{i}", T0 + timedelta(milliseconds=10 * (i // engines))
            log.append({"kind": "submit", "msg_id": msg_id, "t": t, "function": "f" if i % 3 else "g"})
            log.append(
                {
                    "kind": "complete",
                    "msg_id": msg_id,
                    "status": "error" if i == 7 else "ok",
                    "started": t + timedelta(milliseconds=1),
                    "completed": t + timedelta(milliseconds=9),
                    "received": t + timedelta(milliseconds=10),
                    "engine_id": i % engines,
                }
            )
        log.append({"kind": "mark", "t": T0 + timedelta(seconds=1), "text": "halfway"})


def test_draws_bars_as_collections_whatever_the_task_count(tmp_path):
    many_tasks(tmp_path / "big.mpk", 5000)
    state = Log(tmp_path / "big.mpk").state
    fig = draw_timeline(state)
    timeline, busy = fig.axes[:2]
    assert len(timeline.patches) == 0  # no patch per task
    bars = max(timeline.collections, key=lambda c: len(c.get_paths()))
    assert len(bars.get_paths()) == 5000
    assert [t.get_text() for t in timeline.get_yticklabels()] == [f"engine {e}" for e in range(8)]
    assert any(t.get_text() == "halfway" for t in timeline.texts)
    # busy engines: averaged into slices (5000 tasks make 10,000 changes), all 8 busy at the peak
    curve = max(busy.lines, key=lambda line: len(line.get_ydata()))
    assert len(curve.get_ydata()) <= BUSY_BINS + 2
    assert max(curve.get_ydata()) == pytest.approx(8)
    assert any("mean" in (line.get_label() or "") for line in busy.lines)


def test_binned_busy_curve_keeps_the_busy_time(tmp_path):
    """Averaging into slices must not change the area under the curve (busy engine-seconds)."""
    import numpy as np

    many_tasks(tmp_path / "big.mpk", 3000)
    data = TimelineData(Log(tmp_path / "big.mpk").state)
    exact_t, exact_b, exact_mean = data.busy_curve(bins=10**9)
    binned_t, binned_b, binned_mean = data.busy_curve(bins=100)
    assert len(binned_t) == 101 and binned_mean == exact_mean
    area = lambda t, b: float(np.sum(b[:-1] * np.diff(t)))  # noqa: E731
    assert area(binned_t, binned_b) == pytest.approx(area(exact_t, exact_b), rel=1e-9)
    assert area(binned_t, binned_b) == pytest.approx(sum(t.run_seconds for t in data.tasks), rel=1e-9)


def test_timeline_data_places_each_task_on_its_engine(tmp_path):
    write_sample(tmp_path / "a.mpk")
    data = TimelineData(Log(tmp_path / "a.mpk").state)
    assert data.engine_ids == [0, 1]
    assert list(data.row) == [0, 1, 0]
    assert data.end[0] - data.start[0] == pytest.approx(0.5)
    assert data.colours[2] == STATUS_COLOURS["error"]
