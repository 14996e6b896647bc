"""Everyday cases that once gave a wrong record or broke the user's block (issue 9)."""

import os
import subprocess
import sys
import time
import warnings
from datetime import timedelta

import ipyparallel as ipp
import pytest

import ipyrecorder
from ipyrecorder.cli import main
from ipyrecorder.messages import plain_traceback

from .helpers import T0, fail, record, wait_until, write_sample

pytestmark = pytest.mark.cluster


def shout(x=0):
    print(f"shout {x}")
    return x


def recorder_warnings(caught):
    return [str(w.message) for w in caught if issubclass(w.category, ipyrecorder.RecorderWarning)]


@pytest.fixture
def own_client(cluster, engines):
    """A client of its own: ipyparallel leaves a non-coalescing broadcast outstanding forever,
    so the session's client could never ``wait()`` for everything again."""
    client = cluster.connect_client_sync()
    client.wait_for_engines(2, timeout=60)
    yield client
    client.close()


# --------------------------------------------------------------- 1. broadcast views
@pytest.mark.parametrize("coalescing", [False, True])
def test_broadcast_view_records_one_task_per_engine(own_client, engines, log_path, coalescing):
    view = own_client.broadcast_view(targets=engines, is_coalescing=coalescing)

    def body(rec):
        ar = view.apply_async(shout, 6)
        rec.name_tasks(ar, "everywhere" if coalescing else ["first", "second"])
        assert ar.get(timeout=30) == [6, 6]
        return ar

    rec, ar = record(view, log_path, body)
    state = ipyrecorder.replay(log_path)
    request = ar.msg_ids[0] if coalescing else ar.msg_ids[0].rsplit("_", 1)[0]
    tasks = [t for t in state.tasks.values() if t.broadcast == request]
    assert sorted(t.engine_id for t in tasks) == sorted(engines)
    for task in tasks:
        assert (task.queue, task.function, task.status, task.target) == ("broadcast", "shout", "ok", task.engine_id)
        assert task.start_us is not None and task.completed is not None and task.received is not None
        assert task.stdout == "shout 6\n"
        assert task.msg_id == f"{request}_{state.engines[task.engine_id].uuid}"
    assert rec.gave_up is None and state.closes[-1]["pending"] == 0
    assert request not in state.tasks  # the request itself is not a task: its engines' tasks are
    names = sorted(t.name for t in tasks)
    assert names == (["everywhere", "everywhere"] if coalescing else ["first", "second"])


def test_broadcast_execute_and_direct_view_helpers(own_client, engines, log_path, tmp_path):
    bview = own_client.broadcast_view(targets=engines)
    dview = own_client.direct_view(targets=engines)
    script = tmp_path / "script.py"
    script.write_text("z = 3\nprint('ran the script')\n")

    def body(rec):
        ex = bview.execute("print('from execute')")
        ex.get(timeout=30)
        ex.wait_for_output(timeout=30)
        scatter = dview.scatter("xs", list(range(4)), block=False)
        scatter.get(timeout=30)
        gather = dview.gather("xs", block=False)
        assert gather.get(timeout=30) == [0, 1, 2, 3]
        run = dview.run(str(script), block=False)
        run.get(timeout=30)
        run.wait_for_output(timeout=30)
        return ex, scatter, gather, run

    _, (ex, scatter, gather, run) = record(bview, log_path, body)
    state = ipyrecorder.replay(log_path)
    executed = [state.tasks[m] for m in ex.msg_ids]
    assert {t.engine_id for t in executed} == set(engines)
    assert all(t.function == "execute" and t.stdout == "from execute\n" and t.status == "ok" for t in executed)
    for ar in (scatter, gather, run):
        assert all(state.tasks[m].status == "ok" and state.tasks[m].engine_id in engines for m in ar.msg_ids)
    assert {state.tasks[m].function for m in gather.msg_ids} == {"_pull"}
    assert [state.tasks[m].stdout for m in run.msg_ids] == ["ran the script\n"] * 2


# --------------------------------------------------------------- 2. and 3. back to back
@pytest.mark.parametrize("mode", ["w", "a"])
def test_back_to_back_recordings_of_one_file_all_run(rc, engines, tmp_path, mode):
    lview = rc.load_balanced_view()
    path = tmp_path / "loop.mpk"
    results, sleepers = [], []
    for _ in range(3):
        with ipyrecorder.recording(lview, path, mode=mode):
            ar = lview.map_async(shout, range(3))
            results.append(ar.get(timeout=30))
            sleepers.append(lview.apply_async(time.sleep, 0.3))  # still running when the block ends
    assert results == [[0, 1, 2]] * 3  # every block ran
    for ar in sleepers:
        ar.get(timeout=30)
    wait_until(lambda: ipyrecorder.replay(path).closes, message="the log to close")
    state = ipyrecorder.replay(path)
    assert len(state.tasks) == 12 and {t.status for t in state.tasks.values()} == {"ok"}
    assert len(state.closes) == len(state.headers)


def test_the_log_holds_what_the_user_holds_when_the_block_ends(rc, engines, log_path):
    lview = rc.load_balanced_view()
    with ipyrecorder.recording(lview, log_path, mode="w") as rec:
        ar = lview.map_async(shout, range(20), chunksize=1)
        ar.get(timeout=30)
    state = ipyrecorder.replay(log_path)  # at once: no waiting, no close()
    assert [state.tasks[m].status for m in ar.msg_ids] == ["ok"] * 20
    ar.wait_for_output(timeout=30)
    rec.close(timeout=30)


LOCK_HOLDER = r"""
import sys, time, ipyrecorder
with ipyrecorder.open_log(sys.argv[1], "w"):
    print("LOCKED", flush=True)
    sys.stdin.readline()
"""


def test_two_processes_on_one_log_still_get_log_locked(rc, engines, log_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, str(log_path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "LOCKED"
        with pytest.raises(ipyrecorder.LogLocked):
            ipyrecorder.recording(rc, log_path)
        assert "_send" not in rc.__dict__  # refused before any hook stayed
    finally:
        holder.communicate("\n", timeout=30)


# --------------------------------------------------------------- 4. tracebacks
def fail_once(marker):
    import os

    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return 1


def test_every_failed_attempt_keeps_its_traceback(rc, engines, log_path, tmp_path, capsys):
    lview = rc.load_balanced_view()

    def body(rec):
        bad = lview.apply_async(fail, 7)
        with lview.temp_flags(retries=1):
            retried = lview.apply_async(fail_once, str(tmp_path / "marker"))
        with pytest.raises(ipp.error.RemoteError):
            bad.get(timeout=30)
        retried.get(timeout=30)
        return bad, retried

    _, (bad, retried) = record(lview, log_path, body)
    state = ipyrecorder.replay(log_path)
    task = state.tasks[bad.msg_ids[0]]
    assert "in fail" in task.traceback and task.traceback.rstrip().endswith("ValueError: bad input 7")
    assert "\x1b" not in task.traceback  # terminal colours removed
    assert task.traceback == plain_traceback(bad.metadata["error"].traceback)  # ipyparallel's, uncoloured
    first_attempt = state.tasks[retried.msg_ids[0]].attempt_errors[0]
    assert "RuntimeError: first attempt fails" in first_attempt[4]

    # json, csv, query and failures show it
    assert main(["replay", str(log_path), "--sink", "json", "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert "ValueError: bad input 7" in out and "first attempt fails" in out
    assert main(["replay", str(log_path), "--sink", "csv", "-o", "-"]) == 0
    out = capsys.readouterr().out
    assert "traceback" in out.splitlines()[0].split(",") and "in fail" in out
    assert main(["query", str(log_path), "-q", '{"status": "error"}', "-k", "traceback", "-f", "json"]) == 0
    assert "ValueError: bad input 7" in capsys.readouterr().out
    assert main(["failures", str(log_path)]) == 0
    out, err = capsys.readouterr()
    assert out.count("Traceback") >= 2 and "attempt failed, then succeeded" in out and "bad input 7" in out
    assert "attempt 1 of 2: attempt failed, then succeeded" in out  # the retry says which attempt failed
    assert "2 failed attempt(s) of 2 task(s)" in err
    assert main(["info", str(log_path)]) == 0
    assert "failed attempts: 2" in capsys.readouterr().out


def test_logs_without_tracebacks_still_read(tmp_path):
    write_sample(tmp_path / "old.mpk")  # events written without the traceback field
    state = ipyrecorder.replay(tmp_path / "old.mpk")
    failed = [t for t in state.tasks.values() if t.status == "error"]
    assert failed and failed[0].traceback is None and failed[0].ename == "ValueError"
    assert [f[3] for f in state.failures()] == ["ValueError"]


# --------------------------------------------------------------- 5. merging
def _cluster_log(path, uuids, t0, busy_ms=500):
    """A log of one cluster whose engines 0 and 1 have the given uuids, one task each."""
    log = ipyrecorder.open_log(path, "w")
    for engine_id, uuid in enumerate(uuids):
        log.append({"kind": "engine_register", "t": t0, "engine_id": engine_id, "uuid": uuid, "present": True})
    for engine_id in range(len(uuids)):
        msg_id = f"{uuids[0]}-session_1_{engine_id}"
        start = t0 + timedelta(milliseconds=10)
        log.append({"kind": "submit", "msg_id": msg_id, "t": t0, "queue": "task", "function": "f"})
        log.append({"kind": "start", "msg_id": msg_id, "t": start, "engine_id": engine_id})
        log.append({"kind": "stdout", "msg_id": msg_id, "t": start, "text": "once\n"})
        log.append(
            {
                "kind": "complete",
                "msg_id": msg_id,
                "status": "ok",
                "started": start,
                "completed": start + timedelta(milliseconds=busy_ms),
                "received": start + timedelta(seconds=1),
                "engine_id": engine_id,
            }
        )
    log.append({"kind": "mark", "t": t0 + timedelta(milliseconds=5), "text": f"mark of {uuids[0]}"})
    log.close()


def test_merged_logs_count_each_task_and_keep_clusters_apart(tmp_path, capsys):
    a, copy, b = tmp_path / "a.mpk", tmp_path / "copy.mpk", tmp_path / "b.mpk"
    _cluster_log(a, ["ua0", "ua1"], T0)
    _cluster_log(copy, ["ua0", "ua1"], T0)  # the same tasks, as an observer would log them
    _cluster_log(b, ["ub0", "ub1"], T0 + timedelta(seconds=10))
    same = ipyrecorder.replay(a, copy)
    assert {e: (x.tasks_done, x.busy_us) for e, x in same.engines.items()} == {0: (1, 500_000), 1: (1, 500_000)}
    assert [t.stdout for t in same.tasks.values()] == ["once\n", "once\n"]
    assert all(t.attempts is None for t in same.tasks.values())
    assert all(e["utilisation"] <= 1 for e in same.summary()["engines"].values())

    for order in ((a, b), (b, a)):
        merged = ipyrecorder.replay(*order)
        assert len(merged.engines) == 4 and len(merged.tasks) == 4
        by_uuid = {e.uuid: e for e in merged.engines.values()}
        assert by_uuid["ua0"].id != by_uuid["ub0"].id
        assert sorted(e.label for e in merged.engines.values()) == [
            "engine 0",
            "engine 0 (cluster 2)",
            "engine 1",
            "engine 1 (cluster 2)",
        ]
        assert [m.text for m in merged.marks] == ["mark of ua0", "mark of ub0"]  # time order
        for engine in merged.engines.values():
            assert engine.tasks_done == 1
        clipped = ipyrecorder.replay(*order, until="+5s")  # from the merged start, whatever the order
        assert sorted(t.status for t in clipped.tasks.values()) == ["ok", "ok"]
    assert main(["info", str(b), str(a)]) == 0
    out = capsys.readouterr().out
    assert "4 tasks in 11.010 s" in out and "0 (cluster 2)" in out


# --------------------------------------------------------------- 6. damage is said
def test_every_command_that_reads_a_damaged_log_says_so(tmp_path, capsys):
    path = tmp_path / "hurt.mpk"
    write_sample(path, tasks=6)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    for args in (
        ["replay", str(path), "-o", str(tmp_path / "out.json")],
        ["replay", str(path), "--sink", "csv", "-o", "-"],
        ["query", str(path)],
        ["info", str(path)],
        ["failures", str(path)],
    ):
        main(args)
        err = capsys.readouterr().err
        warning = [line for line in err.splitlines() if "damaged region" in line]
        assert len(warning) == 1 and str(path) in warning[0] and "ipyrecorder check" in warning[0], (args, err)


# --------------------------------------------------------------- 7. and 10. the client
def test_a_closed_client_is_refused_at_the_with_line(cluster, log_path):
    client = cluster.connect_client_sync()
    client.close()
    with pytest.raises(ipyrecorder.TapError, match="closed"):
        ipyrecorder.recording(client, log_path)
    assert not log_path.exists()


def test_close_gives_up_when_the_client_closes_and_says_why(cluster, engines, log_path, capsys):
    client = cluster.connect_client_sync()
    client.wait_for_engines(2, timeout=60)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ipyrecorder.recording(client.load_balanced_view(), log_path, mode="w") as rec:
            client.load_balanced_view().apply_async(time.sleep, 3)
        client.close()
        assert rec.close() is True  # no timeout: it must not wait for a client that can receive nothing
    assert any("stopped following 1 pending task" in m and "client closed" in m for m in recorder_warnings(caught))
    close = ipyrecorder.replay(log_path).closes[-1]
    assert (close["pending"], close["ended"], close["gave_up"]) == (1, "block exited", "client closed")
    assert main(["info", str(log_path)]) == 0
    assert "ended: block exited; stopped following 1 pending task(s) (client closed)" in capsys.readouterr().out


def test_why_a_recording_ended_is_recorded(rc, engines, tmp_path):
    with pytest.raises(KeyError):
        with ipyrecorder.recording(rc, tmp_path / "raised.mpk", mode="w") as raised:
            raise KeyError("user error")
    with ipyrecorder.recording(rc, tmp_path / "fine.mpk", mode="w") as fine:
        rc[engines[0]].apply_sync(os.getpid)
    closed = ipyrecorder.recording(rc, tmp_path / "closed.mpk", mode="w")
    for rec in (raised, fine, closed):
        assert rec.close(timeout=30)
    ended = {
        name: ipyrecorder.replay(tmp_path / f"{name}.mpk").closes[-1]["ended"] for name in ("raised", "fine", "closed")
    }
    assert ended == {"raised": "block raised KeyError", "fine": "block exited", "closed": "close() called"}


# --------------------------------------------------------------- 8. hooks
def test_hooks_restore_what_they_replaced_and_keep_what_others_set(rc, engines, log_path):
    own_wait = rc.wait
    rc.wait = own_wait  # a user's own override, set before the recording
    handlers = dict(rc._queue_handlers)
    with ipyrecorder.recording(rc, log_path, mode="w"):
        assert rc._queue_handlers["apply_reply"] is not handlers["apply_reply"]  # measuring replies
        rc.spin = spin = lambda: None  # and one set during it
        rc[engines[0]].apply_sync(os.getpid)
    try:
        assert rc.__dict__["wait"] is own_wait
        assert rc.__dict__["spin"] is spin
        assert "_send" not in rc.__dict__ and "send_apply_request" not in rc.__dict__
        assert rc._queue_handlers == handlers
    finally:
        del rc.wait, rc.spin


# --------------------------------------------------------------- 9. the disk
def test_a_log_whose_directory_disappears_warns_once_and_close_reports_it(rc, engines, tmp_path):
    import shutil

    folder = tmp_path / "logs"
    folder.mkdir()
    lview = rc.load_balanced_view()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ipyrecorder.recording(lview, folder / "run.mpk", mode="w") as rec:
            lview.apply_async(shout, 1).get(timeout=30)
            rec.flush()
            shutil.rmtree(folder)
            assert lview.map_async(shout, range(5)).get(timeout=30) == list(range(5))
        assert rec.close(timeout=30) is False
    messages = recorder_warnings(caught)
    assert sum("deleted" in m for m in messages) == 1, messages
    assert isinstance(rec.error, FileNotFoundError)


# --------------------------------------------------------------- 11. names
def test_names_are_ours_labels_are_ipyparallels_and_a_count_mismatch_warns(rc, engines, log_path):
    lview = rc.load_balanced_view()

    def body(rec):
        with lview.temp_flags(label="ipp-label"):
            labelled = lview.map_async(shout, range(3))
        with pytest.warns(ipyrecorder.RecorderWarning, match="2 names for 3 tasks; the last 1 tasks stay unnamed"):
            rec.name_tasks(labelled, ["first", "second"])
        labelled.get(timeout=30)
        return labelled

    _, labelled = record(lview, log_path, body)
    tasks = [ipyrecorder.replay(log_path).tasks[m] for m in labelled.msg_ids]
    assert [t.label for t in tasks] == ["ipp-label"] * 3
    assert [t.name for t in tasks[:2]] == ["first", "second"]
    assert [t.display_name for t in tasks] == ["first", "second", "ipp-label"]
