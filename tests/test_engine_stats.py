"""Engine identity and resources (``engine_stats``), sampled on the engines of a real cluster."""

import json
import socket

import pytest

import ipyrecorder
from ipyrecorder.cli import main

from .helpers import record, samplers, wait_until

MB = 1 << 20


def hold_memory(megabytes, seconds):
    import time

    block = bytearray(megabytes << 20)  # (bytearray pages are written: resident)
    time.sleep(seconds)
    return len(block)


def hold_then_die(megabytes, seconds):
    import os
    import time

    block = bytearray(megabytes << 20)
    time.sleep(seconds)
    os._exit(len(block) and 1)


def test_engines_say_who_they_are_and_what_they_use(rc, engines, log_path, capsys):
    view = rc[engines[0]]
    pid = view.apply_sync(__import__("os").getpid)
    _, (size, metadata) = record(
        view,
        log_path,
        lambda rec: (lambda ar: (ar.get(timeout=60), ar.metadata))(view.apply_async(hold_memory, 300, 1.5)),
        engine_stats=0.2,
    )
    assert size == 300 * MB and "ipyrecorder" not in str(metadata)  # the user's result and metadata as they were
    state = ipyrecorder.replay(log_path)
    (task,) = state.tasks.values()  # the samplers' set-up and stop are not the user's tasks: not recorded
    engine = state.engines[engines[0]]
    assert (engine.host, engine.pid) == (socket.gethostname(), pid) and engine.cpus >= 1 and engine.memory > 0
    assert len(engine.samples) >= 5  # 1.5 s at 0.2 s
    assert task.peak_rss >= 300 * MB and engine.peak_rss >= task.peak_rss
    before = [s[2] for s in engine.samples if s[0] < task.effective_start_us]
    assert not before or min(before) < task.peak_rss - 250 * MB  # the allocation shows, not the baseline
    assert all(s[3] > 0 for s in engine.samples)  # the host's available memory
    assert task.to_dict()["peak_rss"] == task.peak_rss
    summary = state.summary()["engines"][engines[0]]
    assert summary["host"] == engine.host and summary["peak_rss"] == engine.peak_rss
    assert main(["info", str(log_path)]) == 0  # (log_path's fixture holds the writer's summary to the fold)
    text = capsys.readouterr().out
    assert f"{engines[0]} @ {socket.gethostname()}" in text and "peak memory" in text
    wait_until(lambda: samplers(rc, engines[0]) == 0, message="the sampler to stop after the recording")

    # every sink shows them: a memory and a CPU panel, counter tracks, parquet's tables
    from ipyrecorder.figure import draw_timeline

    figure = draw_timeline(state)
    assert [a.get_ylabel() for a in figure.axes][-2:] == ["memory GB", "CPU %"]
    rows = [label.get_text() for label in figure.axes[0].get_yticklabels()]
    assert f"engine {engines[0]} @ {engine.host}" in rows
    lines = figure.axes[-2].lines  # one per sampled engine: every engine of the client is
    assert len(lines) == len(state.table.samples) == len(rc.ids) and max(max(li.get_ydata()) for li in lines) >= 0.3
    out = log_path.with_suffix(".json")
    assert main(["replay", str(log_path), "--sink", "chrome-trace", "-o", str(out)]) == 0
    trace = json.loads(out.read_text())["traceEvents"]
    memory = [e for e in trace if e["ph"] == "C" and e["name"] == "memory" and e["pid"] == engines[0] + 1]
    assert len(memory) == len(engine.samples)
    assert max(e["args"]["resident MB"] for e in memory) >= 300
    names = [e["args"]["name"] for e in trace if e["ph"] == "M" and e["name"] == "process_name"]
    assert f"engine {engines[0]} @ {engine.host}" in names
    pq = pytest.importorskip("pyarrow.parquet")
    out = log_path.with_suffix(".parquet")
    assert main(["replay", str(log_path), "--sink", "parquet", "-o", str(out)]) == 0
    assert pq.read_table(out).column("peak_rss").to_pylist() == [task.peak_rss]
    samples = pq.read_table(log_path.with_suffix(".samples.parquet")).to_pylist()
    assert [s["rss"] for s in samples if s["engine_id"] == engines[0]] == [s[2] for s in engine.samples]
    assert {s["host"] for s in samples} == {engine.host}


def test_an_engine_that_dies_keeps_its_last_samples(rc, engines, log_path, cluster):
    doomed = engines[0]
    view = rc[doomed]

    def body(rec):
        ar = view.apply_async(hold_then_die, 200, 1.0)
        try:
            ar.get(timeout=60)
        except Exception:
            pass
        wait_until(lambda: doomed not in rc.ids, message="the engine to leave")

    record(view, log_path, body, engine_stats=0.2)
    state = ipyrecorder.replay(log_path)
    (task,) = state.tasks.values()
    engine = state.engines[doomed]
    assert task.status == "error" and engine.unregistered_us is not None
    assert len(engine.samples) >= 3 and engine.peak_rss >= 200 * MB
    assert task.peak_rss >= 200 * MB  # its samples to the last: the memory it held when it died
    assert engine.samples[-1][0] <= engine.unregistered_us


def test_a_bad_interval_is_refused_before_anything_starts(rc, log_path, capsys):
    for bad in (0, -1, "fast"):
        with pytest.raises(ValueError, match="engine_stats must be a number of seconds > 0"):
            ipyrecorder.recording(rc, log_path, engine_stats=bad)
    assert not log_path.exists() and "_send" not in rc.__dict__  # no log, no hooks
    assert main(["demo", "--engine-stats", "0"]) == 2  # (no cluster is started)
    assert "--engine-stats" in capsys.readouterr().err


def test_an_engine_that_joins_during_the_recording_is_sampled_too(rc, engines, cluster, log_path):
    before = set(rc.ids)

    def body(rec):
        cluster.start_engines_sync(n=1)
        rc.wait_for_engines(len(before) + 1, timeout=60)
        (joined,) = set(rc.ids) - before

        def sampled():
            rec.flush()
            kinds = {(e["kind"], e.get("engine_id")) for e in ipyrecorder.read_events(log_path)}
            return {("engine_info", joined), ("engine_sample", joined)} <= kinds

        wait_until(sampled, message="the engine that joined to be sampled")
        return joined

    _, joined = record(rc, log_path, body, engine_stats=0.2)
    try:
        state = ipyrecorder.replay(log_path)
        assert len(state.tasks) == 0  # its sampler's set-up is not the user's task
        assert state.engines[joined].host == socket.gethostname() and state.engines[joined].samples
        wait_until(lambda: samplers(rc, joined) == 0, message="its sampler to stop after the recording")
    finally:
        rc[joined].apply_async(__import__("os")._exit, 0)
        wait_until(lambda: joined not in rc.ids, message="the engine to leave")
