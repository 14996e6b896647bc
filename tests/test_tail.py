"""The tailer: only new bytes, partial frames, truncation, deletion, file events or polling."""

import os
import threading
from datetime import timedelta

import pytest

import ipyrecorder
from ipyrecorder.tail import Follower, LogTail

from .helpers import T0, wait_until, write_sample


def submit(log, i, engine=0):
    msg_id, t = f"s_1_{i}", T0 + timedelta(seconds=i)
    log.append({"kind": "submit", "msg_id": msg_id, "t": t, "function": "f"})
    log.append({"kind": "start", "msg_id": msg_id, "t": t, "engine_id": engine})
    return msg_id


def test_waits_for_the_file_then_reads_it(tmp_path):
    tail = LogTail(tmp_path / "later.mpk")
    assert tail.poll() is False and not tail.exists
    assert any("waiting for" in n for n in tail.notices)
    write_sample(tmp_path / "later.mpk")
    assert tail.poll() is True
    assert len(tail.state.tasks) == 3 and tail.offset == (tmp_path / "later.mpk").stat().st_size


def test_reads_only_new_bytes_and_waits_for_a_partial_frame(tmp_path):
    path = tmp_path / "live.mpk"
    log = ipyrecorder.open_log(path, "w")
    submit(log, 0)
    log.flush()
    tail = LogTail(path)
    tail.poll()
    assert list(tail.state.tasks) == ["s_1_0"]
    submit(log, 1)
    log.flush()
    size = path.stat().st_size
    data = path.read_bytes()
    # cut the last frame in two: the tail must hold the first half back, not report damage
    os.truncate(path, size - 5)
    tail2 = LogTail(path)
    tail2.poll()
    assert list(tail2.state.tasks) == ["s_1_0"] and not tail2.damage
    with open(path, "ab") as fh:
        fh.write(data[size - 5 :])
    assert tail2.poll() is True
    assert list(tail2.state.tasks) == ["s_1_0", "s_1_1"] and not tail2.damage
    log.close()


def test_truncated_replaced_and_deleted_files_are_noticed(tmp_path):
    path = tmp_path / "run.mpk"
    write_sample(path, tasks=5)
    tail = LogTail(path)
    tail.poll()
    assert len(tail.state.tasks) == 5
    write_sample(tmp_path / "new.mpk", tasks=2)
    os.replace(tmp_path / "new.mpk", path)  # replaced: a new inode
    assert tail.poll() is True
    assert len(tail.state.tasks) == 2 and "replaced" in tail.notices[-1]
    with open(path, "r+b") as fh:  # truncated in place
        fh.truncate(100)
    tail.poll()
    assert "truncated" in tail.notices[-1] and len(tail.state.tasks) == 0
    path.unlink()
    tail.poll()
    assert "deleted" in tail.notices[-1]


def test_backlog_folds_like_replay(tmp_path):
    path = tmp_path / "big.mpk"
    with ipyrecorder.open_log(path, "w") as log:
        for i in range(20000):
            submit(log, i, engine=i % 4)
            if i % 1000 == 0:
                log.flush()
    tail = LogTail(path)
    tail.poll()
    whole = ipyrecorder.replay(path)
    assert tail.state.events == whole.events and set(tail.state.tasks) == set(whole.tasks)
    assert tail.state.summary() == whole.summary()


def test_the_fold_says_what_changed_between_takes(tmp_path):
    path = tmp_path / "live.mpk"
    log = ipyrecorder.open_log(path, "w")
    log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": "e0"})
    a = submit(log, 0)
    log.flush()
    tail = LogTail(path)
    tail.poll()
    first = tail.state.take_changes()
    assert first.full and first.seq == 1  # the first take starts noting: draw everything
    assert tail.state.take_changes() == ipyrecorder.state.Changes(seq=2)  # nothing folded since
    b = submit(log, 1, engine=1)
    log.append({"kind": "complete", "msg_id": a, "status": "ok", "completed": T0 + timedelta(seconds=2)})
    log.append({"kind": "mark", "t": T0 + timedelta(seconds=3), "text": "half way"})
    log.append({"kind": "engine_unregister", "t": T0 + timedelta(seconds=4), "engine_id": 2})
    log.flush()
    tail.poll()
    changes = tail.state.take_changes()
    assert not changes.full and changes.seq == 3
    assert {t.msg_id for t in changes.tasks} == {a, b}
    assert [t.msg_id for t in changes.completed] == [a]
    assert changes.engines == {0, 1, 2} and [m.text for m in changes.marks] == ["half way"]
    log.close()


def test_not_a_log_is_refused(tmp_path):
    (tmp_path / "x.mpk").write_bytes(b"hello world")
    with pytest.raises(ipyrecorder.NotALog):
        LogTail(tmp_path / "x.mpk").poll()


def follow(tail, **kwargs):
    changes = []
    follower = Follower(tail, lambda t: changes.append(len(t.state.tasks)), **kwargs)
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    return follower, thread, changes


@pytest.mark.parametrize("poll", [False, True], ids=["file-events", "polling"])
def test_follower_sees_appends(tmp_path, poll):
    path = tmp_path / "live.mpk"
    follower, thread, changes = follow(LogTail(path), poll=poll)
    try:
        log = ipyrecorder.open_log(path, "w")
        for i in range(5):
            submit(log, i)
            log.flush()
            wait_until(lambda i=i: follower.tail.state.tasks.get(f"s_1_{i}"), timeout=10, message=f"task {i}")
        log.close()
        assert follower.mode == ("polling" if poll else "events")
        assert changes and changes[-1] == 5
    finally:
        follower.stop.set()
        thread.join(timeout=10)
    assert not thread.is_alive()


class SilentObserver:
    """Stands in for watchdog's observer on a mount that delivers no file events."""

    def schedule(self, *args, **kwargs):
        pass

    def start(self):
        pass

    def stop(self):
        pass

    def join(self, timeout=None):
        pass


def test_a_mount_without_file_events_switches_to_polling(tmp_path, monkeypatch):
    monkeypatch.setattr("ipyrecorder.tail.CHECK_INTERVAL", 0.05)
    path = tmp_path / "nfs.mpk"
    log = ipyrecorder.open_log(path, "w")
    follower, thread, _ = follow(LogTail(path), observer_class=SilentObserver)
    try:
        for i in range(50):
            submit(log, i)
            log.flush()
            if follower.mode == "polling":
                break
            wait_until(lambda i=i: f"s_1_{i}" in follower.tail.state.tasks, timeout=10, message=f"task {i}")
        assert follower.mode == "polling"
        assert any("no file events" in n for n in follower.tail.notices)
        submit(log, 99)
        log.flush()
        wait_until(lambda: "s_1_99" in follower.tail.state.tasks, timeout=10, message="a task after the switch")
    finally:
        log.close()
        follower.stop.set()
        thread.join(timeout=10)


def test_a_log_rewritten_in_place_past_the_old_offset_is_noticed(tmp_path):
    """Same inode, bigger than before: only the first frame's head tells the rewrite."""
    path = tmp_path / "run.mpk"
    write_sample(path, tasks=1)
    tail = LogTail(path)
    tail.poll()
    assert list(tail.state.tasks) == ["sess_1_0"]
    inode = path.stat().st_ino
    with ipyrecorder.open_log(path, "w") as log:  # truncates and rewrites the same file
        for i in range(60):
            submit(log, i)
    assert path.stat().st_ino == inode and path.stat().st_size > tail.offset
    assert tail.poll() is True
    assert "truncated" in tail.notices[-1]
    assert sorted(tail.state.tasks) == sorted(f"s_1_{i}" for i in range(60))


def test_an_idle_follower_does_not_wake_itself(tmp_path):
    """Reading the file raises file events (open, close): they must not wake the follower."""
    path = tmp_path / "idle.mpk"
    write_sample(path)
    polls = []

    class CountingTail(LogTail):
        def poll(self):
            polls.append(1)
            return super().poll()

    follower = Follower(CountingTail(path), lambda t: None)
    with follower:
        wait_until(lambda: len(follower.tail.state.tasks) == 3, timeout=10, message="the backlog")
        before = len(polls)
        follower.stop.wait(1.0)  # idle for a second: only the safety check may poll
    assert len(polls) - before <= 3
