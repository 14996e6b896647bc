"""Each engine's clock offset, bounded by the log's own times (``clocks.py``), in the summary and ``info``.

Synthetic logs give exact bounds; engines started under libfaketime in the
session's cluster give real shifted clocks, which the estimates must find.
"""

import json
import os
import re
import shutil
import time

import pytest

import ipyrecorder
from ipyrecorder import clocks
from ipyrecorder import events as ev
from ipyrecorder import state as state_module
from ipyrecorder.cli import main
from ipyrecorder.log import LogWriter, new_header
from ipyrecorder.tail import LogTail
from ipyrecorder.timeline import TimelineData

from .helpers import T0, at, record, summaries_and_fold, wait_until

MS = 1e-3


def shifted_log(path, shifts, n=30, jump=None, drift=None):
    """``n`` tasks per engine whose clock runs ``shifts[engine]`` seconds ahead of the client's:
    each starts 2 ms after it is submitted, runs 5 ms, and is received 1 ms after it completed.
    ``jump`` = (engine, from task, seconds): that engine's clock is set forward mid-run.
    ``drift`` = (engine, seconds a second): that engine's clock gains as the run goes on."""
    with LogWriter(path, "w", new_header(t0=T0)) as log:
        for i in range(n):
            for engine, shift in shifts.items():
                if jump and jump[0] == engine and i >= jump[1]:
                    shift += jump[2]
                msg_id = f"s-{engine}_1_{i}"
                submitted = i * 0.02
                if drift and drift[0] == engine:
                    shift += drift[1] * submitted
                started = submitted + 2 * MS + shift
                completed = started + 5 * MS
                received = completed - shift + 1 * MS
                log.append({"kind": "submit", "msg_id": msg_id, "t": at(submitted), "queue": "task"})
                log.append({"kind": "start", "msg_id": msg_id, "t": at(started), "engine_id": engine})
                log.append(
                    {
                        "kind": "complete",
                        "msg_id": msg_id,
                        "t": at(received),
                        "status": "ok",
                        "started": at(started),
                        "completed": at(completed),
                        "received": at(received),
                        "engine_id": engine,
                    }
                )
            if i % 10 == 9:
                log.flush()


def agreed_clocks(path) -> dict:
    """The summary's clocks, asserting that ``info``'s quick path and the fold say the same."""
    quick, folded = summaries_and_fold(path)
    assert quick is not None and quick == folded
    return quick[1]["clocks"]


def test_each_engine_offset_is_bounded_by_its_tasks(tmp_path):
    path = tmp_path / "shifted.mpk"
    shifted_log(path, {0: 0.0, 1: 3.0, 2: -2.0})
    clocks = agreed_clocks(path)
    # high bound: started - submitted = shift + 2 ms; low: completed - received = shift - 1 ms
    for engine, shift in ((0, 0.0), (1, 3.0), (2, -2.0)):
        clock = clocks[engine]
        assert clock["offset_seconds"] == pytest.approx(shift + 0.5 * MS, abs=2e-6)
        assert clock["uncertainty_seconds"] == pytest.approx(1.5 * MS, abs=2e-6)
        assert clock["consistent"] and clock["tasks"] == 30 and clock["impossible"] == 0
    offsets = ipyrecorder.replay(path).clock_offsets()
    assert offsets[1].seconds == pytest.approx(3.0005, abs=2e-6) and offsets[1].uncertainty == pytest.approx(0.0015)


def test_info_prints_each_engine_offset_and_its_uncertainty(tmp_path, capsys):
    path = tmp_path / "shifted.mpk"
    shifted_log(path, {0: 0.0, 1: 3.0, 2: -2.0})
    assert main(["info", str(path)]) == 0
    out = capsys.readouterr().out
    assert "clock vs the client's" in out
    assert "+3.001 s ± 1.5 ms" in out and "-2.000 s ± 1.5 ms" in out and "same (-1.0 to +2.0 ms)" in out


def test_a_clock_set_during_the_run_is_flagged_not_averaged(tmp_path, capsys):
    path = tmp_path / "jump.mpk"
    shifted_log(path, {0: 0.0, 1: 0.0}, jump=(1, 15, 1.0))
    clocks = agreed_clocks(path)
    assert clocks[0]["consistent"]
    assert not clocks[1]["consistent"] and clocks[1]["low_seconds"] > clocks[1]["high_seconds"]
    assert main(["info", str(path)]) == 0
    assert "no offset fits: bounds cross by 997.0 ms" in capsys.readouterr().out


def inside_their_client_times(state, engine) -> int:
    """Asserts that each of ``engine``'s tasks ran between its submission and its reply's arrival
    (on the client's clock), and says how many it ran."""
    tasks = [task for task in state.tasks.values() if task.engine_id == engine]
    for task in tasks:
        assert task.submitted_us <= task.started_us < task.completed_us <= task.received_us, task
    return len(tasks)


def test_a_clock_set_during_the_run_moves_in_two_windows(tmp_path):
    path = tmp_path / "jump.mpk"
    shifted_log(path, {0: 0.0, 1: 0.0}, jump=(1, 15, 1.0))
    state, raw = ipyrecorder.replay(path), ipyrecorder.replay(path, clock="engine")
    drift = state.clock_shifts[1]
    assert isinstance(drift, clocks.Drift) and set(state.clock_shifts) == {1}  # engine 0 stays
    assert drift.starts == [ev.to_us(at(0.002)), ev.to_us(at(15 * 0.02 + 1.002))]  # its 1st and 16th task's start
    assert drift.values == [500, 1_000_500]  # each window's bounds: -1 to +2 ms around its shift
    assert inside_their_client_times(state, 1) == 30
    for msg_id, task in state.tasks.items():
        assert task.run_seconds == raw.tasks[msg_id].run_seconds


def test_a_drifting_clock_is_corrected_window_by_window(tmp_path):
    """Engine 1 gains 1 % (40 ms over the run's 4 s): no one offset fits, each window's does."""
    path = tmp_path / "drift.mpk"
    shifted_log(path, {0: 0.0, 1: 3.0}, n=200, drift=(1, 0.01))
    with LogWriter(path, "a", new_header(t0=T0)) as log:  # resource samples on its clock, early and late
        for t in (0.5, 3.5):
            sample = {"kind": "engine_sample", "engine_id": 1, "cpu": 50.0, "rss": 1 << 20, "available": 1 << 30}
            log.append({**sample, "t": at(t + 3.0 + 0.01 * t)})
    assert not ipyrecorder.replay(path).clock_offsets()[1].consistent
    state = ipyrecorder.replay(path)
    drift = state.clock_shifts[1]
    assert 10 <= len(drift.values) <= 30  # 40 ms of drift in windows as wide as the 3 ms the bounds leave
    assert drift.values == sorted(drift.values) and 3.0 <= drift.values[0] / 1e6 < drift.values[-1] / 1e6 < 3.041
    assert inside_their_client_times(state, 1) == 200
    shown = TimelineData(ipyrecorder.replay(path, clock="engine"))  # what a live view draws: moved the same
    tail = LogTail(path)
    tail.poll()
    assert (
        tail.state.view_shifts() == state.clock_shifts
        and TimelineData(tail.state).start.tolist() != shown.start.tolist()
    )
    assert TimelineData(tail.state).start.tolist() == TimelineData(state).start.tolist()
    samples = TimelineData(tail.state).samples[1][0]  # seconds from the start, on the client's clock
    assert samples.tolist() == TimelineData(state).samples[1][0].tolist()
    assert samples == pytest.approx([0.5, 3.5], abs=0.004)  # each moved by its own window's shift
    cut = ipyrecorder.replay(path, until=at(2.0 + 0.004))  # task 100 started on each engine 2 ms before
    assert cut.tasks["s-1_1_100"].status == "running" and cut.tasks["s-0_1_100"].status == "running"
    assert cut.tasks["s-1_1_99"].status == "ok" and "s-1_1_101" not in cut.tasks


def test_impossible_tasks_are_counted_and_resubmissions_left_out(tmp_path):
    path = tmp_path / "odd.mpk"
    with LogWriter(path, "w", new_header(t0=T0)) as log:
        # ran 10 ms on the engine's clock while the client waited 4 ms: no offset explains it
        log.append({"kind": "submit", "msg_id": "a_1_0", "t": at(0)})
        log.append(
            {
                "kind": "complete",
                "msg_id": "a_1_0",
                "t": at(0.004),
                "status": "ok",
                "started": at(0.001),
                "completed": at(0.011),
                "received": at(0.004),
                "engine_id": 0,
            }
        )
        # a resubmission: the client learns of it (its submit) after the engine started it
        log.append({"kind": "submit", "msg_id": "a_1_1", "t": at(1.0)})
        log.append({"kind": "resubmit", "t": at(1.0), "msg_id": "a_1_0", "new_msg_id": "a_1_1"})
        log.append(
            {
                "kind": "complete",
                "msg_id": "a_1_1",
                "t": at(1.2),
                "status": "ok",
                "started": at(0.9),
                "completed": at(1.1),
                "received": at(1.2),
                "engine_id": 0,
            }
        )
    clock = agreed_clocks(path)[0]
    assert clock["impossible"] == 1 and clock["tasks"] == 0 and clock["offset_seconds"] is None


FAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1"


@pytest.mark.skipif(
    not os.path.exists(FAKETIME) and not os.environ.get("CI"), reason="libfaketime (Debian's faketime) is missing"
)
def test_engines_with_shifted_clocks_are_found_within_20_ms(rc, engines, cluster, log_path):
    """Two more engines whose whole clock (wall and monotonic) libfaketime shifts by +3 s and -2 s."""
    assert shutil.which("faketime"), "Debian's faketime package is needed (.ci/run installs it)"
    shifts, sets = {}, []
    known = set(rc.ids)
    try:
        for shift in (3.0, -2.0):
            env = {"LD_PRELOAD": FAKETIME, "FAKETIME": f"{shift:+g}", "FAKETIME_NO_CACHE": "1"}
            sets.append(cluster.start_engines_sync(n=1, environment=env))
            wait_until(lambda: len(set(rc.ids) - known - set(shifts)) == 1, timeout=60, message="the shifted engine")
            (new,) = set(rc.ids) - known - set(shifts)
            shifts[new] = shift
        lview = rc.load_balanced_view(targets=sorted(shifts))
        record(
            lview,
            log_path,
            lambda rec: (
                one_at_a_time(rc, shifts, 5),
                lview.map_async(time.sleep, [0.01] * 40, chunksize=1).get(timeout=60),
            ),
        )
    finally:
        for engine_set in sets:
            cluster.stop_engines_sync(engine_set)
        wait_until(lambda: set(rc.ids) <= known, timeout=60, message="the shifted engines to leave")
    raw = ipyrecorder.replay(log_path, clock="engine")
    offsets = raw.clock_offsets()
    for engine, shift in shifts.items():
        assert offsets[engine].consistent
        assert abs(offsets[engine].seconds - shift) < 0.020, (engine, offsets[engine], shift)
        assert offsets[engine].low <= shift <= offsets[engine].high  # the bounds hold the true shift
    for task in raw.tasks.values():  # the log keeps each engine's own times: shifted, as it stamped them
        shift = shifts[task.engine_id]
        assert (task.started_us - task.submitted_us) / 1e6 > shift - 0.020
        assert (task.completed_us - task.received_us) / 1e6 < shift + 0.020
    state = ipyrecorder.replay(log_path)  # on the client's clock: every task inside its submit..received
    assert state.clock_offsets() == offsets and set(state.clock_shifts) == set(shifts)
    for task in state.tasks.values():
        assert task.submitted_us <= task.started_us < task.completed_us <= task.received_us, task
        assert task.run_seconds == raw.tasks[task.msg_id].run_seconds


@pytest.mark.skipif(
    not os.path.exists(FAKETIME) and not os.environ.get("CI"), reason="libfaketime (Debian's faketime) is missing"
)
def one_at_a_time(rc, engines, n):
    """``n`` short tasks on each engine, each sent once the one before came back: as an interactive
    user sends them, each to an idle engine, so each bounds the offset closely on both sides
    (tasks sent all at once queue, and only the first to start bounds it from above)."""
    for engine in engines:
        view = rc.load_balanced_view(targets=[engine])
        for _ in range(n):
            view.apply_sync(time.sleep, 0.001)


def test_an_engine_whose_clock_runs_fast_is_corrected_window_by_window(rc, engines, cluster, log_path):
    """One more engine whose clock libfaketime starts 1 s ahead and runs 5 % fast: some 35 ms
    gained over the run's 0.7 s, in windows a few ms apart."""
    known = set(rc.ids)
    env = {"LD_PRELOAD": FAKETIME, "FAKETIME": "+1 x1.05", "FAKETIME_NO_CACHE": "1"}
    engine_set = cluster.start_engines_sync(n=1, environment=env)
    try:
        wait_until(lambda: len(set(rc.ids) - known) == 1, timeout=60, message="the drifting engine")
        (fast,) = set(rc.ids) - known
        record(rc.load_balanced_view(targets=[fast]), log_path, lambda rec: one_at_a_time(rc, [fast], 150))
    finally:
        cluster.stop_engines_sync(engine_set)
        wait_until(lambda: set(rc.ids) <= known, timeout=60, message="the drifting engine to leave")
    assert not ipyrecorder.replay(log_path, clock="engine").clock_offsets()[fast].consistent
    state = ipyrecorder.replay(log_path)
    drift = state.clock_shifts[fast]
    assert isinstance(drift, clocks.Drift) and len(drift.values) >= 3
    submitted = sorted(task.submitted_us for task in state.tasks.values())
    gained, expected = (drift.values[-1] - drift.values[0]) / 1e6, 0.05 * (submitted[-1] - submitted[0]) / 1e6
    # within what the first and last windows' own bounds allow (wide on a loaded machine), and 20 ms
    allowed = 0.020 + (drift.spreads[0] + drift.spreads[-1]) / 1e6
    assert expected - allowed < gained < expected + allowed, (gained, expected, allowed)
    assert 1.0 < drift.values[0] / 1e6 < 1.5  # 1 s, and 5 % of the engine's life before the run
    assert inside_their_client_times(state, fast) == 150


def test_replay_puts_engines_whose_clock_differs_on_the_client_s(tmp_path, capsys):
    path = tmp_path / "shifted.mpk"
    shifted_log(path, {0: 0.0, 1: 3.0})
    state, raw = ipyrecorder.replay(path), ipyrecorder.replay(path, clock="engine")
    assert state.clock_shifts == {1: 3_000_500}  # engine 0's bounds hold zero: left as logged
    for msg_id, task in state.tasks.items():
        queued = task.started_us - task.submitted_us
        assert queued == (2000 if task.engine_id == 0 else 1500)
        assert task.run_seconds == raw.tasks[msg_id].run_seconds
        assert raw.tasks[msg_id].started_us - task.started_us == state.clock_shifts.get(task.engine_id, 0)
    assert state.clock_offsets() == raw.clock_offsets()  # what info prints: as logged
    for clock, queued in (("client", 0.0015), ("engine", 3.002)):
        assert main(["replay", str(path), "--sink", "json", "--clock", clock, "-o", "-"]) == 0
        tasks = json.loads(capsys.readouterr().out)["tasks"].values()
        assert {round(t["queue_seconds"], 6) for t in tasks if t["engine_id"] == 1} == {queued}
    with pytest.raises(ValueError, match="clock must be one of client, engine"):
        ipyrecorder.replay(path, clock="hub")


def test_the_bounds_are_the_same_read_a_slice_at_a_time(tmp_path, monkeypatch):
    path = tmp_path / "shifted.mpk"
    shifted_log(path, {0: 0.0, 1: 3.0, 2: -2.0}, jump=(2, 11, 0.5))
    whole = agreed_clocks(path)
    monkeypatch.setattr(state_module, "CLOCK_ROWS", 7)  # 90 tasks in 13 slices
    assert agreed_clocks(path) == whole


def test_live_viewers_show_engine_times_on_the_client_s_clock(tmp_path):
    """A live tail's state keeps the log's times; the views move them as replay() would."""
    from rich.console import Console

    from ipyrecorder.browser import build_report_data
    from ipyrecorder.tail import LogTail
    from ipyrecorder.timeline import TimelineData
    from viewers.terminal import render

    path = tmp_path / "live.mpk"
    shifted_log(path, {0: 0.0, 1: 3.0})
    with LogWriter(path, "a", new_header(t0=T0)) as log:  # one more task, still running on the +3 s engine
        log.append({"kind": "submit", "msg_id": "late_1_0", "t": at(10.0), "queue": "task"})
        log.append({"kind": "start", "msg_id": "late_1_0", "t": at(10.002 + 3.0), "engine_id": 1})
    tail = LogTail(path)
    tail.poll()
    live, replayed = tail.state, ipyrecorder.replay(path)
    assert live.clock_shifts == {} and set(replayed.clock_shifts) == {1}
    assert live.view_shifts() == replayed.clock_shifts and replayed.view_shifts() == {}
    shown, want = TimelineData(live), TimelineData(replayed)
    assert shown.start.tolist() == want.start.tolist() and shown.end.tolist() == want.end.tolist()
    assert shown.clock_shifts == want.clock_shifts
    assert build_report_data(live) == build_report_data(replayed)  # the dashboard's snapshot, the report's data
    console = Console(width=120, record=True)
    console.print(render(tail, now_us=ev.to_us(at(10.502))))  # the late task started 0.5 s ago, client time
    assert re.search(r"late_1_0\s+0\.5s", console.export_text())


def test_until_cuts_every_engine_at_the_client_s_moment(tmp_path, capsys):
    """``--until`` on a run whose engine 1 runs 3 s ahead: both engines as they were at that moment."""
    path = tmp_path / "until.mpk"
    shifted_log(path, {0: 0.0, 1: 3.0})  # task i: submitted i x 20 ms, started 2 ms later, runs 5 ms
    moment = at(0.5 + 0.003)  # task 25 started on each engine 1 ms before, completes 4 ms after
    state = ipyrecorder.replay(path, until=moment)
    for engine in (0, 1):
        by_status = {}
        for task in state.tasks.values():
            if task.msg_id.startswith(f"s-{engine}_"):
                by_status[task.status] = by_status.get(task.status, 0) + 1
        assert by_status == {"ok": 25, "running": 1}, engine  # (tasks 26 on were not yet submitted)
    # on the client's clock, within the estimate's uncertainty (bounds from -1 to +2 ms)
    assert abs((state.tasks["s-1_1_25"].started - at(0.502)).total_seconds()) <= 1.5 * MS
    raw = ipyrecorder.replay(path, until=moment, clock="engine")  # each event cut at its own clock's time
    assert {t.status for m, t in raw.tasks.items() if m.startswith("s-1_")} == {"pending"}
    assert main(["info", str(path), "--until", moment.isoformat(), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["by_status"] == {"ok": 50, "running": 2}


def test_a_live_state_re_estimates_its_clocks_at_most_so_often(tmp_path, monkeypatch):
    from ipyrecorder.tail import LogTail

    path = tmp_path / "live.mpk"
    shifted_log(path, {0: 0.0, 1: 3.0}, n=10)
    tail = LogTail(path)
    tail.poll()
    first = tail.state.view_shifts()
    assert set(first) == {1}
    shifted_log(tmp_path / "more.mpk", {0: 0.0, 1: 5.0}, n=10)  # the same tasks' engine 1 now 5 s ahead
    with LogWriter(path, "a", new_header(t0=T0)) as log:
        for event in ipyrecorder.read_events(tmp_path / "more.mpk"):
            if event["kind"] in ("submit", "start", "complete"):
                log.append({**event, "msg_id": "m" + event["msg_id"]})
    tail.poll()
    monkeypatch.setattr(state_module, "VIEW_SHIFTS_EVERY", 3600.0)
    assert tail.state.view_shifts() is first  # folded more, but asked again too soon: as it was
    monkeypatch.setattr(state_module, "VIEW_SHIFTS_EVERY", 0.0)
    assert tail.state.view_shifts() != first  # the bounds now cross for engine 1: moved window by window
