"""The recorder against a real cluster: what it logs must match what ipyparallel says."""

import glob
import os
import signal
import subprocess
import sys
import time
import warnings
from datetime import datetime, timezone

import ipyparallel as ipp
import pytest

import ipyrecorder
from ipyrecorder.tap import TapError

from .helpers import assert_matches_metadata, echo, fail, record, wait_until

pytestmark = pytest.mark.cluster


def test_load_balanced_map_and_apply_match_metadata(rc, engines, log_path):
    lview = rc.load_balanced_view()

    def body(rec):
        amr = lview.map_async(echo, range(6), chunksize=2)
        single = lview.apply_async(echo, "single")
        amr.get(timeout=30), single.get(timeout=30)
        return amr, single

    _, (amr, single) = record(lview, log_path, body)
    state = ipyrecorder.replay(log_path)
    assert len(state.tasks) == 4  # three chunks and one apply
    assert_matches_metadata(state, amr)
    assert_matches_metadata(state, single)
    chunks = [state.tasks[m] for m in amr.msg_ids]
    assert [t.chunk for t in chunks] == [0, 1, 2]
    assert {t.function for t in chunks} == {"echo"}
    assert {t.queue for t in state.tasks.values()} == {"task"}
    assert state.tasks[single.msg_ids[0]].function == "echo"
    assert state.closes and state.closes[-1]["pending"] == 0
    assert not state.damage


def test_direct_view_apply_on_each_engine_and_execute(rc, engines, log_path):
    def body(rec):
        ars = [rc[e].apply_async(os.getpid) for e in engines]
        ex = rc[engines[0]].execute("x = 1")
        push = rc[engines[1]].push({"y": 2}, block=False)
        pull = rc[engines[1]].pull("y", block=False)
        for ar in ars + [ex, push, pull]:
            ar.get(timeout=30)
        return ars, ex, push, pull

    _, (ars, ex, push, pull) = record(rc, log_path, body)
    state = ipyrecorder.replay(log_path)
    for engine_id, ar in zip(engines, ars):
        task = state.tasks[ar.msg_ids[0]]
        assert (task.queue, task.target, task.engine_id, task.function) == ("mux", engine_id, engine_id, "getpid")
        assert_matches_metadata(state, ar)
    task = state.tasks[ex.msg_ids[0]]
    assert (task.function, task.target, task.status) == ("execute", engines[0], "ok")
    assert state.tasks[push.msg_ids[0]].function == "_push" and state.tasks[pull.msg_ids[0]].function == "_pull"
    assert set(engines) <= set(state.engines)
    assert all(state.engines[e].present_at_start for e in engines)


def test_names_labels_and_output(rc, engines, log_path):
    lview = rc.load_balanced_view()
    names = {}

    def shout(x):
        import sys

        print(f"to stdout {x}")
        print(f"to stderr {x}", file=sys.stderr)
        return x

    def body(rec):
        first = lview.map_async(shout, range(2))
        names.update(zip(first.msg_ids, ["alpha", "beta"]))  # filled in after submission
        with lview.temp_flags(label="ipp-label"):
            labelled = lview.apply_async(shout, 9)
        later = lview.apply_async(shout, 10)
        rec.name_tasks(later, "named-later")
        rec.mark("phase 2", step=2)
        for ar in (first, labelled, later):
            ar.get(timeout=30)
        return first, labelled, later

    rec, (first, labelled, later) = record(lview, log_path, body, names=names)
    rec.name_tasks(labelled, "renamed after close")  # after the log closed: a new segment
    state = ipyrecorder.replay(log_path)
    assert [state.tasks[m].name for m in first.msg_ids] == ["alpha", "beta"]
    task = state.tasks[labelled.msg_ids[0]]
    assert task.label == "ipp-label" and task.name == "renamed after close"
    assert state.tasks[later.msg_ids[0]].name == "named-later"
    assert [(m.text, m.data) for m in state.marks] == [("phase 2", {"step": 2})]
    assert len(state.headers) == 2
    for ar in (first, labelled, later):
        assert_matches_metadata(state, ar)
    assert "to stderr 10" in state.tasks[later.msg_ids[0]].stderr


def test_names_callable_sees_every_async_result(rc, engines, log_path):
    lview = rc.load_balanced_view()

    def body(rec):
        ar = lview.map_async(echo, range(3))
        ar.get(timeout=30)
        return ar

    _, ar = record(lview, log_path, body, names=lambda ar: [f"{ar._fname}#{i}" for i in range(len(ar.msg_ids))])
    state = ipyrecorder.replay(log_path)
    assert [state.tasks[m].name for m in ar.msg_ids] == ["echo#0", "echo#1", "echo#2"]


def test_raising_task(rc, engines, log_path):
    lview = rc.load_balanced_view()

    def body(rec):
        ar = lview.apply_async(fail, 3)
        with pytest.raises(ipp.error.RemoteError):
            ar.get(timeout=30)
        return ar

    _, ar = record(lview, log_path, body)
    task = ipyrecorder.replay(log_path).tasks[ar.msg_ids[0]]
    assert (task.status, task.ename, task.evalue) == ("error", "ValueError", "bad input 3")
    assert task.attempt_errors and task.attempt_errors[0][2] == "ValueError"
    assert_matches_metadata(ipyrecorder.replay(log_path), ar)


def test_abort_queued_tasks(rc, engines, log_path):
    view = rc[engines[0]]

    def body(rec):
        blocker = view.apply_async(time.sleep, 1.0)
        queued = [view.apply_async(time.sleep, 0) for _ in range(2)]
        view.abort(queued)
        blocker.get(timeout=30)
        for ar in queued:
            with pytest.raises(ipp.error.TaskAborted):
                ar.get(timeout=30)
        return queued

    _, queued = record(view, log_path, body)
    state = ipyrecorder.replay(log_path)
    for ar in queued:
        assert state.tasks[ar.msg_ids[0]].status == "aborted"
        assert ar.metadata["status"] == "aborted"


def fail_once(marker):
    """Fails on its first attempt, succeeds on the next (on another engine)."""
    import os

    if not os.path.exists(marker):
        open(marker, "w").close()
        raise RuntimeError("first attempt fails")
    return os.getpid()


def test_retries_record_each_attempt(rc, engines, log_path, tmp_path):
    lview = rc.load_balanced_view()

    def body(rec):
        with lview.temp_flags(retries=1):
            ar = lview.apply_async(fail_once, str(tmp_path / "attempted"))
        ar.get(timeout=30)
        return ar

    _, ar = record(lview, log_path, body)
    task = ipyrecorder.replay(log_path).tasks[ar.msg_ids[0]]
    assert task.status == "ok" and task.ename is None
    assert len(task.attempts) == 2
    first_engine, second_engine = task.attempts[0][0], task.attempts[1][0]
    assert first_engine != second_engine and task.engine_id == second_engine
    assert [e[0] for e in task.attempt_errors] == [first_engine]
    assert task.attempt_errors[0][2] == "RuntimeError"


def test_resubmit_is_linked_and_followed(rc, engines, log_path):
    lview = rc.load_balanced_view()

    def body(rec):
        ar = lview.apply_async(echo, "again")
        ar.get(timeout=30)
        again = rc.resubmit(ar.msg_ids)
        again.get(timeout=30)
        return ar, again

    _, (ar, again) = record(lview, log_path, body)
    state = ipyrecorder.replay(log_path)
    old, new = state.tasks[ar.msg_ids[0]], state.tasks[again.msg_ids[0]]
    assert old.resubmitted == new.msg_id and new.resubmit_of == old.msg_id
    assert new.status == "ok" and new.engine_id in engines
    assert new.function == "echo"
    assert new.completed is not None and new.started is not None


def test_tasks_are_followed_after_the_block_then_hooks_detach(rc, engines, log_path):
    lview = rc.load_balanced_view()
    original_send = rc._send
    with ipyrecorder.recording(lview, log_path, mode="w") as rec:
        ar = lview.apply_async(time.sleep, 0.5)
        assert rc._send is not original_send
    assert "_send" not in rc.__dict__ and rec._tap.attached is False  # client-level hooks gone at exit
    assert not rec.closed.is_set()  # still following the task
    ar.get(timeout=30)
    assert rec.close(timeout=30)
    task = ipyrecorder.replay(log_path).tasks[ar.msg_ids[0]]
    assert task.status == "ok" and task.completed is not None


def test_hooks_removed_when_block_raises_and_no_nesting(rc, engines, log_path, tmp_path):
    with pytest.raises(KeyError):
        with ipyrecorder.recording(rc, log_path, mode="w") as rec:
            with pytest.raises(TapError, match="already being recorded"):
                ipyrecorder.recording(rc, tmp_path / "other.mpk")
            raise KeyError("user error")
    assert rec.close(timeout=30)
    assert "_send" not in rc.__dict__ and "wait" not in rc.__dict__
    assert rec._tap._on_registration not in rc._registration_callbacks
    with ipyrecorder.recording(rc, log_path) as again:  # a new recording works afterwards
        rc[engines[0]].apply_sync(os.getpid)
    assert again.close(timeout=30)
    assert len(ipyrecorder.replay(log_path).headers) == 2


def test_wait_flushes_the_log(rc, engines, log_path):
    lview = rc.load_balanced_view()
    with ipyrecorder.recording(lview, log_path, mode="w") as rec:
        ar = lview.apply_async(echo, 1)
        lview.wait(ar)
        ar.wait_for_output(timeout=30)
        rc.wait()
        state = ipyrecorder.replay(log_path)  # read while the recording is open
        assert state.tasks[ar.msg_ids[0]].status == "ok"
    rec.close(timeout=30)


def test_unwritable_log_warns_and_the_computation_completes(rc, engines, tmp_path):
    target = tmp_path / "missing-dir" / "run.mpk"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with ipyrecorder.recording(rc, target) as rec:
            assert rc[engines[0]].apply_sync(pow, 2, 5) == 32
        assert rec.close(timeout=30) is False
    messages = [str(w.message) for w in caught if issubclass(w.category, ipyrecorder.RecorderWarning)]
    assert messages and "cannot write" in messages[0]
    assert isinstance(rec.error, OSError)


def test_disk_full_mid_run_keeps_what_was_written(rc, engines, log_path):
    """A real write failure (EFBIG from RLIMIT_FSIZE) part way through a recording."""
    import resource

    lview = rc.load_balanced_view()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            with ipyrecorder.recording(lview, log_path, mode="w") as rec:
                first = lview.apply_async(echo, "before")
                first.get(timeout=30)
                rec.flush()
                resource.setrlimit(resource.RLIMIT_FSIZE, (os.path.getsize(log_path) + 10, hard))
                results = lview.map_async(echo, range(50)).get(timeout=60)
            rec.close(timeout=30)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)
    assert results == list(range(50))  # the computation completed
    assert isinstance(rec.error, OSError)
    recorder_warnings = [w for w in caught if issubclass(w.category, ipyrecorder.RecorderWarning)]
    assert 1 <= len(recorder_warnings) <= 2  # the failure, and the report at close
    state = ipyrecorder.replay(log_path)  # what was written before the failure is intact
    assert state.tasks[first.msg_ids[0]].status == "ok"
    assert not [d for d in state.damage if d.code != "torn"]


def die_after(seconds):
    import os
    import time

    time.sleep(seconds)
    os._exit(1)


def test_engine_killed_mid_task(rc, engines, log_path):
    victim = engines[0]

    def body(rec):
        ar = rc[victim].apply_async(die_after, 0.5)
        with pytest.raises(ipp.error.RemoteError, match="EngineError: Engine .* died"):
            ar.get(timeout=60)
        wait_until(lambda: victim not in rc.ids, message="the engine to unregister")
        return ar

    _, ar = record(rc, log_path, body)
    state = ipyrecorder.replay(log_path)
    task = state.tasks[ar.msg_ids[0]]
    assert task.status == "error" and task.ename == "EngineError"
    assert task.start_us is not None  # it did start before dying
    assert state.engines[victim].unregistered is not None


CHILD = r"""
import sys, time
import ipyparallel as ipp, ipyrecorder
rc = ipp.Client(sys.argv[1])
rc.wait_for_engines(2, timeout=60)
lview = rc.load_balanced_view()
rec = ipyrecorder.recording(lview, sys.argv[2], mode="w")
done = [lview.apply_async(pow, 2, i) for i in range(4)]
for ar in done:
    ar.get(timeout=30)
running = lview.apply_async(time.sleep, 1.0)
rec.flush()
print("READY", " ".join(ar.msg_ids[0] for ar in done), running.msg_ids[0], flush=True)
time.sleep(120)
"""


def test_recording_left_mid_flight_is_readable_and_appendable(cluster, rc, engines, log_path, tmp_path):
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    (url_file,) = glob.glob(os.path.join(cluster.profile_dir, "security", "ipcontroller-*client.json"))
    child = subprocess.Popen([sys.executable, str(script), url_file, str(log_path)], stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline().split()
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    assert line and line[0] == "READY"
    *done_ids, running_id = line[1:]
    state = ipyrecorder.replay(log_path)
    assert [state.tasks[m].status for m in done_ids] == ["ok"] * 4
    assert state.tasks[running_id].status in ("pending", "running")
    assert not state.closes and not state.damage
    with ipyrecorder.open_log(log_path) as log:  # a killed recorder leaves no stale lock
        log.append({"kind": "mark", "t": datetime.now(timezone.utc), "text": "after the crash"})
    again = ipyrecorder.replay(log_path)
    assert len(again.headers) == 2 and again.marks[-1].text == "after the crash"
