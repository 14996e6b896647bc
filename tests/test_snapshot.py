"""History after the fact: snapshot() and dump() from AsyncResults of unrecorded work."""

import io
import json

import ipyparallel as ipp
import pytest

import ipyrecorder
from ipyrecorder.cli import main

from .helpers import assert_matches_metadata, echo, fail, wait_until

pytestmark = pytest.mark.cluster


def test_snapshot_matches_the_async_results(rc, engines, log_path, capsys):
    lview = rc.load_balanced_view()
    amr = lview.map_async(echo, range(4), chunksize=2)
    single = rc[engines[0]].apply_async(echo, "direct")
    failing = lview.apply_async(fail, 1)
    amr.get(timeout=30), single.get(timeout=30)
    with pytest.raises(ipp.error.RemoteError):
        failing.get(timeout=30)
    for ar in (amr, single, failing):
        ar.wait_for_output(timeout=30)
    # the client forgets a task once its reply and output are in (a callback on its IO thread)
    wait_until(lambda: not any(m in rc.metadata for m in amr.msg_ids), timeout=30, message="the client to forget")
    ipyrecorder.snapshot([amr, single, failing], log_path, names={single.msg_ids[0]: "the direct one"})
    state = ipyrecorder.replay(log_path)
    assert state.headers[0]["reconstructed"] is True and "reconstructed" in state.headers[0]["note"]
    for ar in (amr, single, failing):
        assert_matches_metadata(state, ar)
    assert [state.tasks[m].chunk for m in amr.msg_ids] == [0, 1]
    assert state.tasks[single.msg_ids[0]].name == "the direct one"
    assert state.tasks[failing.msg_ids[0]].ename == "ValueError"
    assert {t.function for t in state.tasks.values()} == {"echo", "fail"}
    assert set(engines) <= set(state.engines)
    assert main(["info", str(log_path)]) == 0  # and info says the log was made after the fact
    assert "  reconstructed: reconstructed after the fact from AsyncResult metadata" in capsys.readouterr().out


def test_dump_is_ipy_client_usages_one_call(rc, engines):
    lview = rc.load_balanced_view()
    ar = lview.map_async(echo, ["a", "b", "c"])
    ar.get(timeout=30)
    ar.wait_for_output(timeout=30)
    uuid_to_name = dict(zip(ar.msg_ids, ["same", "same", "other"]))  # equal names must not collide
    out = io.StringIO()
    ipyrecorder.dump(out, ar, uuid_to_name)
    doc = json.loads(out.getvalue())
    assert set(doc["tasks"]) == set(ar.msg_ids)
    assert [doc["tasks"][m]["name"] for m in ar.msg_ids] == ["same", "same", "other"]
    assert doc["tasks"][ar.msg_ids[0]]["stdout"] == "out a\n"
    assert doc["summary"]["by_status"] == {"ok": 3}
