"""The whole cluster: import-hub and the record observer, with separate client processes."""

import contextlib
import glob
import json
import os
import signal
import subprocess
import sys
import threading

import ipyparallel as ipp
import pytest

import ipyrecorder
from ipyrecorder.cli import ExitStatus, main

from .helpers import echo, fail, samplers, wait_until

pytestmark = pytest.mark.cluster


def same_task(a, b):
    """The facts a client and an observer both know, equal to the microsecond."""
    return (a.msg_id, a.engine_id, a.status, a.submitted, a.started, a.completed, a.stdout) == (
        b.msg_id,
        b.engine_id,
        b.status,
        b.submitted,
        b.started,
        b.completed,
        b.stdout,
    )


def test_import_hub_writes_every_clients_records(rc, engines, url_file, tmp_path, capsys):
    lview = rc.load_balanced_view()
    with ipyrecorder.recording(lview, tmp_path / "client.mpk", mode="w") as rec:
        ok = lview.map_async(echo, range(3))
        bad = lview.apply_async(fail, 9)
        ok.get(timeout=30)
        with pytest.raises(ipp.error.RemoteError):
            bad.get(timeout=30)
    rec.close(timeout=60)
    ids = ok.msg_ids + bad.msg_ids
    out = tmp_path / "hub.mpk"
    assert (
        main(["import-hub", "--url-file", url_file, "-o", str(out), "--where", json.dumps({"msg_id": {"$in": ids}})])
        == 0
    )
    assert "1,024" in capsys.readouterr().err
    hub, mine = ipyrecorder.replay(out), ipyrecorder.replay(tmp_path / "client.mpk")
    assert sorted(hub.tasks) == sorted(ids)
    assert hub.headers[0]["reconstructed"] is True
    for msg_id in ids:
        assert same_task(hub.tasks[msg_id], mine.tasks[msg_id])
    assert hub.tasks[bad.msg_ids[0]].ename == "ValueError"


def test_import_hub_errors(tmp_path, capsys):
    assert (
        main(["import-hub", "--url-file", str(tmp_path / "nope.json"), "-o", str(tmp_path / "x.mpk")])
        == ExitStatus.NO_FILE
    )
    assert main(["import-hub", "--url-file", "x", "-o", "y", "--where", "{bad"]) == ExitStatus.USAGE


CLIENT = r"""
import sys, ipyparallel as ipp, ipyrecorder
rc = ipp.Client(sys.argv[1]); rc.wait_for_engines(2, timeout=60)
lview = rc.load_balanced_view()
def shout(x, tag):
    print("client", tag, "task", x)
    return x
with ipyrecorder.recording(lview, sys.argv[2], mode="w") as rec:
    ar = lview.map_async(shout, range(5), [sys.argv[3]] * 5)
    ar.get(timeout=60)
rec.close(timeout=60)
rc.close()
"""


def test_record_observes_two_client_processes(cluster, rc, engines, url_file, tmp_path):
    observed = tmp_path / "observer.mpk"
    observer = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ipyrecorder",
            "record",
            "--url-file",
            url_file,
            "-o",
            str(observed),
            "--interval",
            "0.2",
            "--engine-stats",
            "0.2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until(
            lambda: (
                observed.exists()
                and observed.stat().st_size > 0  # (the observer has made the file, its header comes next)
                and set(engines) <= set(ipyrecorder.replay(observed).engines)
            ),
            timeout=60,
            message="the observer to connect",
        )
        script = tmp_path / "client.py"
        script.write_text(CLIENT)
        clients = [
            subprocess.Popen([sys.executable, str(script), url_file, str(tmp_path / f"c{i}.mpk"), str(i)])
            for i in (1, 2)
        ]
        assert [c.wait(timeout=120) for c in clients] == [0, 0]
        logs = [ipyrecorder.replay(tmp_path / f"c{i}.mpk") for i in (1, 2)]
        wanted = {m for log in logs for m in log.tasks}
        assert len(wanted) == 10

        def observed_all():
            state = ipyrecorder.replay(observed)
            return all(m in state.tasks and state.tasks[m].outcome and state.tasks[m].stdout for m in wanted)

        wait_until(observed_all, timeout=60, message="the observer to see both clients' tasks complete")
        observer.send_signal(signal.SIGTERM)
        _, err = observer.communicate(timeout=30)
    finally:
        if observer.poll() is None:
            observer.kill()
    assert observer.returncode == 0, err
    state = ipyrecorder.replay(observed)
    assert state.closes, "the observer closed its log on SIGTERM"
    for log in logs:
        for msg_id, task in log.tasks.items():
            assert same_task(state.tasks[msg_id], task), msg_id
    assert {t.engine_id for t in state.tasks.values() if t.msg_id in wanted} <= set(engines)
    # a client's log merged with the observer's log of the same tasks counts each task once
    merged = ipyrecorder.replay(tmp_path / "c1.mpk", observed)
    assert {e: x.tasks_done for e, x in merged.engines.items()} == {e: x.tasks_done for e, x in state.engines.items()}
    assert all(e["utilisation"] is None or e["utilisation"] <= 1 for e in merged.summary()["engines"].values())
    for msg_id, task in logs[0].tasks.items():
        assert merged.tasks[msg_id].stdout == task.stdout and merged.tasks[msg_id].attempts is None
    # --engine-stats: every engine said who it is and sampled; the observer's set-up and stop of the
    # samplers (one task each per engine, its own client's) are all that it left out
    for engine_id in engines:
        engine = state.engines[engine_id]
        assert engine.host and engine.samples, engine_id
        wait_until(lambda e=engine_id: samplers(rc, e) == 0, message="the sampler to stop with the observer")
    records = rc.db_query({}, keys=["msg_id", "client_uuid"])  # (broadcasts' parts have none; this test's own
    records = [r for r in records if r["client_uuid"] not in (None, rc.session.session)]  # came after: not observed)
    unrecorded = [r for r in records if r["msg_id"] not in state.tasks]
    assert len(unrecorded) == 2 * len(engines) and len({r["client_uuid"] for r in unrecorded}) == 1


@contextlib.contextmanager
def observing(url_file, path, interval=0.1, **options):
    """A ``ClusterRecorder`` on its own thread, connected; stopped (its log closed) on leaving."""
    from ipyrecorder.hub import ClusterRecorder

    observer = ClusterRecorder(
        lambda: ipp.Client(url_file, timeout=30), path, interval=interval, mode="w", echo=lambda text: None, **options
    )
    thread = threading.Thread(target=observer.run, daemon=True)
    thread.start()
    try:
        assert observer.connected.wait(60)
        yield observer
    finally:
        observer.stop.set()
        thread.join(timeout=30)


def test_record_survives_a_controller_restart(tmp_path, monkeypatch):
    """A cluster of its own: restarting the session's controller would break the other tests."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    cluster = ipp.Cluster(n=1, controller_args=["--HeartMonitor.period=500"], log_level=40)
    cluster.start_cluster_sync()
    path = tmp_path / "observer.mpk"
    with_marks = lambda *texts: lambda: set(texts) <= {m.text for m in ipyrecorder.replay(path).marks}  # noqa: E731
    try:
        (url,) = glob.glob(os.path.join(cluster.profile_dir, "security", "ipcontroller-*client.json"))
        with observing(url, path, interval=0.2, query_timeout=2) as observer:
            cluster.stop_controller_sync()
            wait_until(with_marks("observer: connection lost"), timeout=60, message="the lost connection to be noted")
            observer.connected.clear()
            cluster.start_controller_sync()
            cluster.start_engines_sync(n=1)
            assert observer.connected.wait(60)
            client = ipp.Client(url, timeout=30)
            client.wait_for_engines(1, timeout=60)
            ar = client[:].apply_async(os.getpid)
            ar.get(timeout=60)
            wait_until(
                lambda: (
                    ar.msg_ids[0] in ipyrecorder.replay(path).tasks
                    and ipyrecorder.replay(path).tasks[ar.msg_ids[0]].status == "ok"
                ),
                timeout=60,
                message="a task after the restart",
            )
            client.close()
    finally:
        cluster.stop_cluster_sync()
    state = ipyrecorder.replay(path)
    assert [m.text for m in state.marks] == ["observer: connection lost", "observer: reconnected"]
    assert state.closes


def test_the_observer_forgets_the_tasks_it_has_finished_with(rc, engines, url_file, tmp_path):
    """A long observer run holds the tasks in flight, not every msg_id it ever saw (issue 12)."""
    # a coalescing broadcast that prints leaves the Hub a record of each engine's part, without a submission
    printed = rc.broadcast_view(targets=engines, is_coalescing=True).apply_async(print, "to the Hub alone")
    printed.get(timeout=60)
    parts = sorted(f"{printed.msg_ids[0]}_{rc._engines[e]}" for e in engines)
    query = {"msg_id": {"$in": parts}}
    wait_until(
        lambda: len(rc.db_query(query, keys=["submitted"])) == len(parts), message="the Hub's records of the parts"
    )
    path = tmp_path / "observer.mpk"
    with observing(url_file, path) as observer:
        view = rc.load_balanced_view()
        ars = [view.map_async(abs, range(-20, 0)) for _ in range(3)]
        for ar in ars:
            ar.get(timeout=60)
        wanted = {m for ar in ars for m in ar.msg_ids}

        def forgotten():
            state = ipyrecorder.replay(path)
            done = all(m in state.tasks and state.tasks[m].status == "ok" for m in wanted)
            # (the Hub may hold other tests' tasks that never finish: those stay pending)
            return done and not wanted & observer._pending and len(observer._seen) < 20

        wait_until(forgotten, timeout=60, message="the observer to see every task end and forget the older ones")
    assert not set(parts) & (observer._pending | set(observer._seen))  # records without a submission: no tasks
    newest = max(observer._seen.values())
    assert all(t == newest for t in observer._seen.values())  # only what the next poll returns again
    events = ipyrecorder.read_events(path)
    submits = [e["msg_id"] for e in events if e["kind"] == "submit" and e["msg_id"] in wanted]
    assert sorted(submits) == sorted(wanted)  # each task once: none seen again as new


def test_the_observer_ends_each_broadcast_part_when_its_engine_goes_idle(rc, engines, url_file, tmp_path):
    """The Hub keeps no record of a broadcast's parts: the observer follows them on iopub alone."""
    path = tmp_path / "observer.mpk"
    # (a client of its own: ipyparallel 9 never takes a plain broadcast's request out of
    # client.outstanding, so a later rc.wait() would wait for it forever)
    client = ipp.Client(url_file, timeout=30)
    with observing(url_file, path), contextlib.closing(client):
        said = client.broadcast_view(targets=engines).apply_async(print, "from every engine")
        failed = client.broadcast_view(targets=engines, is_coalescing=True).apply_async(fail, 3)
        said.get(timeout=60)
        with pytest.raises(ipp.error.RemoteError):
            failed.get(timeout=60)
        parts = {said: list(said.msg_ids), failed: [f"{failed.msg_ids[0]}_{rc._engines[e]}" for e in engines]}
        everything = [m for ms in parts.values() for m in ms]

        def ended():
            tasks = ipyrecorder.replay(path).tasks
            return all(m in tasks and tasks[m].outcome for m in everything)

        wait_until(ended, message="the observer to end every part")
    state = ipyrecorder.replay(path)
    for msg_id, engine_id in zip(parts[said], engines):
        task = state.tasks[msg_id]
        assert (task.status, task.engine_id, task.stdout) == ("ok", engine_id, "from every engine\n")
    for msg_id, engine_id in zip(parts[failed], engines):
        task = state.tasks[msg_id]
        assert (task.status, task.engine_id, task.ename) == ("error", engine_id, "ValueError"), task
        assert task.started <= task.completed
