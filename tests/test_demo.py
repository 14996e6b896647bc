"""The demo workload, recorded on the session's cluster, shows every part of a recording."""

import pytest

import ipyrecorder
from ipyrecorder.demo import workload

pytestmark = pytest.mark.cluster


def test_demo_workload_is_varied(rc, engines, log_path):
    with ipyrecorder.recording(rc, log_path, mode="w") as rec:
        workload(rc, rec, scale=0.05)
    assert rec.close(timeout=60)
    state = ipyrecorder.replay(log_path)
    summary = state.summary()
    assert summary["by_status"] == {"error": 1, "ok": len(state.tasks) - 1}
    names = {t.name for t in state.tasks.values()}
    assert {f"sample-{i:02d}" for i in range(12)} <= names
    assert {t.label for t in state.tasks.values()} >= {"post-process"}
    assert any("convergence slow" in t.stderr for t in state.tasks.values())
    assert any("finished after" in t.stdout for t in state.tasks.values())
    assert [m.text for m in state.marks] == ["setup", "simulate", "post-process"]
    assert {t.queue for t in state.tasks.values()} == {"task", "mux"}
    (failed,) = [t for t in state.tasks.values() if t.status == "error"]
    assert (failed.function, failed.ename) == ("flaky", "ValueError")
