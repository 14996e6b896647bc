"""The matplotlib timeline sink: real files, drawn with collections."""

from datetime import timedelta

import pytest

import ipyrecorder
from ipyrecorder.cli import ExitStatus, main
from ipyrecorder.sink import Log

from .helpers import ARTIFACTS, T0, sweep_log, write_sample

pytest.importorskip("matplotlib")
from ipyrecorder.colours import STATUS_COLOURS, distinct_colours  # noqa: E402
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


# -- a picture read at a glance (issue 16) -----------------------------------------------------------
def _texts(fig):
    """(text, display bbox) of every drawn text of the engine rows' axes: marks and bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    renderer = canvas.get_renderer()
    ax = fig.axes[0]
    return [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts if t.get_visible() and t.get_text()]


def _save(fig, name):
    ARTIFACTS.mkdir(exist_ok=True)
    fig.savefig(ARTIFACTS / name, dpi=100)


def test_mark_labels_never_cover_each_other_or_a_bar_s_text(tmp_path):
    state = ipyrecorder.replay(sweep_log(tmp_path / "sweep.mpk", n=60))
    fig = draw_timeline(state)
    _save(fig, "timeline-sweep-60.png")
    texts = _texts(fig)
    marks = [(t, box) for t, box in texts if t in ("setup", "simulate", "summarise", "done")]
    assert sorted(t for t, _ in marks) == ["done", "setup", "simulate", "summarise"]  # every mark is written
    for i, (a, box) in enumerate(texts):
        for b, other in texts[i + 1 :]:
            assert not box.overlaps(other), f"{a!r} covers {b!r}"


def test_failed_tasks_are_the_easiest_bars_to_find(tmp_path):
    state = ipyrecorder.replay(sweep_log(tmp_path / "sweep.mpk", n=60))
    fig = draw_timeline(state)
    failed = [t for t in state.tasks.values() if t.status == "error"]
    markers = [c for c in fig.axes[0].collections if c.get_offsets().size and len(c.get_offsets()) == len(failed)]
    assert len(failed) == 3 and markers, "a marker over each failed bar"
    bars = {text.split("\n")[0] for text, _ in _texts(fig)}
    assert sum(1 for name in bars if name.startswith("run ")) > 30  # at 60 tasks, the bars are named
    fig = draw_timeline(ipyrecorder.replay(tmp_path / "sweep.mpk", until="+2s"))  # (its bars are wider)
    _save(fig, "timeline-sweep-until.png")
    bars = {text.split("\n")[0] for text, _ in _texts(fig)}
    assert "run 7" in bars  # a failed bar wide enough gets its name, as an ok bar of its width does


def test_the_legend_shows_what_the_picture_shows(tmp_path):
    path = tmp_path / "legend.mpk"
    with ipyrecorder.open_log(path, "w") as log:
        for i, (function, status) in enumerate([("h", None), ("f", "ok"), ("g", "error")]):
            t = T0 + timedelta(seconds=i)
            log.append({"kind": "submit", "msg_id": f"l_{i}", "t": t, "function": function})
            log.append({"kind": "start", "msg_id": f"l_{i}", "t": t, "engine_id": i % 2})
            if status:
                end = t + timedelta(seconds=0.5)
                log.append({"kind": "complete", "msg_id": f"l_{i}", "status": status, "started": t, "completed": end})
    fig = draw_timeline(ipyrecorder.replay(path))
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels == ["f", "error", "running", "a failed task"]  # g's bars are all red, h's amber: not listed
    running = [text for text, _ in _texts(fig) if text.endswith("s+")]
    assert running and running[0].split("\n")[-1] != "0.00s+"  # a running bar says how long it has run


def test_size_time_range_and_colours_are_options(tmp_path, capsys):
    log = sweep_log(tmp_path / "sweep.mpk", n=60)
    out = tmp_path / "range.png"
    options = ["-O", "width=8", "-O", "height=4", "-O", "start=1", "-O", "end=3", "-O", "colour=status"]
    assert main(["replay", str(log), "--sink", "matplotlib", "-o", str(out), *options]) == 0
    from matplotlib.image import imread

    height, width = imread(out).shape[:2]
    assert (width, height) == (8 * 120, 4 * 120)
    fig = draw_timeline(ipyrecorder.replay(log), colour_by="status", start=1, end=3)
    assert fig.axes[0].get_xlim() == (1, 3)
    assert [text.get_text() for text in fig.axes[0].get_legend().get_texts()][:2] == ["error", "ok"]
    prefix = TimelineData(ipyrecorder.replay(log), colour_by="prefix")
    assert set(prefix.key_colours) == {"run", "summarise"}
    few = tmp_path / "few.mpk"
    with ipyrecorder.open_log(few, "w") as out:
        for i, name in enumerate(["run 1", "run 2", "fit 1"]):
            t = T0 + timedelta(seconds=i)
            out.append({"kind": "submit", "msg_id": f"p_{i}", "t": t, "function": "f"})
            out.append({"kind": "label", "msg_id": f"p_{i}", "name": name})
            out.append({"kind": "start", "msg_id": f"p_{i}", "t": t, "engine_id": 0})
            out.append(
                {
                    "kind": "complete",
                    "msg_id": f"p_{i}",
                    "status": "ok",
                    "started": t,
                    "completed": t + timedelta(seconds=1),
                }
            )
    prefix = TimelineData(ipyrecorder.replay(few), colour_by="prefix")
    assert prefix.key_colours == distinct_colours({"run", "fit"})  # (two names, one prefix: one colour, its own)
    engine = TimelineData(ipyrecorder.replay(log), colour_by="engine")
    assert len(set(engine.key_colours.values())) == 4  # four engines, four colours
    _save(fig, "timeline-range-by-status.png")
    capsys.readouterr()
    assert main(["replay", str(log), "--sink", "matplotlib", "-o", str(out), "-O", "colour=rainbow"]) == 2
    assert "cannot colour bars by 'rainbow' (by: function, status, engine, prefix)" in capsys.readouterr().err


def test_functions_in_one_picture_never_share_a_colour(tmp_path):
    state = ipyrecorder.replay(sweep_log(tmp_path / "sweep.mpk", n=60))
    colours = TimelineData(state).key_colours
    assert set(colours) == {"load", "simulate", "summarise"} and len(set(colours.values())) == 3
