"""Tasks that wait on others (``after``, ``follow``): recorded at submit, and the critical path of
what ran, on a real cluster."""

import json

import ipyparallel as ipp

import ipyrecorder
from ipyrecorder.cli import main

from .helpers import record


def nap(seconds):
    import time

    time.sleep(seconds)
    return seconds


def test_a_small_dag_yields_its_critical_path(rc, engines, log_path, capsys):
    lview = rc.load_balanced_view()

    def body(rec):
        a = lview.apply_async(nap, 0.3)
        with lview.temp_flags(after=a):
            b = lview.apply_async(nap, 0.05)
            c = lview.apply_async(nap, 0.4)
        with lview.temp_flags(after=[b, c]):
            d = lview.apply_async(nap, 0.1)
        with lview.temp_flags(follow=a, after=ipp.Dependency([b.msg_ids[0], c.msg_ids[0]], all=False)):
            e = lview.apply_async(nap, 0.01)  # beside a, once b or c is done
        alone = lview.apply_async(nap, 0.2)  # waits on nothing
        for ar in (a, b, c, d, e, alone):
            ar.get(timeout=60)
        return [ar.msg_ids[0] for ar in (a, b, c, d, e, alone)]

    _, (a, b, c, d, e, alone) = record(lview, log_path, body)
    state = ipyrecorder.replay(log_path)
    tasks = state.tasks
    assert tasks[a].after is None and tasks[alone].after is None
    assert tasks[b].after == [a] and tasks[c].after == [a]
    # (ipyparallel keeps a task's dependencies in a set: in no order)
    assert sorted(tasks[d].after) == sorted([b, c]) and tasks[d].follow is None
    assert tasks[e].follow == [a] and sorted(tasks[e].after) == sorted([b, c])
    assert [edge[2] for edge in tasks[e].depends if not edge[1]] == [True, True]  # "any" of b and c
    assert sorted(tasks[d].to_dict()["after"]) == sorted([b, c])
    for later, earlier in ((b, a), (c, a), (d, b), (d, c)):  # what waited ran after what it waited on
        assert tasks[later].started >= tasks[earlier].completed

    summary = state.summary()
    path = summary["critical_path"]
    assert path["tasks"] == [a, c, d]  # 0.3 + 0.4 + 0.1 s: the heaviest chain
    assert path["run_seconds"] == round(sum(tasks[m].run_seconds for m in (a, c, d)), 6)
    assert 0.8 <= path["run_seconds"] <= path["elapsed_seconds"] <= summary["span_seconds"]
    parallel = summary["parallelism"]
    busy = sum(t.run_seconds for t in tasks.values())
    assert parallel["engines"] == 2 and abs(parallel["busy_engine_seconds"] - busy) < 1e-5
    assert abs(parallel["busy_engine_seconds"] + parallel["idle_engine_seconds"] - 2 * summary["span_seconds"]) < 1e-5
    assert parallel["efficiency"] == round(busy / (2 * summary["span_seconds"]), 4)

    # ``info`` folds such a log (the writer's summary cannot follow dependencies) and says it all
    assert main(["info", str(log_path), "--json"]) == 0
    said = json.loads(capsys.readouterr().out)
    assert said["critical_path"] == path and said["parallelism"] == parallel
    assert main(["info", str(log_path)]) == 0
    text = capsys.readouterr().out
    assert f"critical path: 3 task(s), {path['run_seconds']:.3f} s running" in text
    assert f"{a} -> {c} -> {d}" in text and "parallel efficiency: " in text

    # the trace draws each dependency as a flow from the end of one slice to the start of the next
    assert main(["replay", str(log_path), "--sink", "chrome-trace", "-o", str(log_path.with_suffix(".json"))]) == 0
    events = json.loads(log_path.with_suffix(".json").read_text())["traceEvents"]
    starts = {e["id"]: e for e in events if e.get("cat") == "dependency" and e["ph"] == "s"}
    ends = {e["id"]: e for e in events if e.get("cat") == "dependency" and e["ph"] == "f"}
    assert starts.keys() == ends.keys() and len(starts) == 7  # b, c on a; d on b, c; e on a, b, c
    slices = {e["args"]["msg_id"]: e for e in events if e["ph"] == "X" and e["pid"] > 0}
    pairs = set()
    for flow, start in starts.items():
        (dep,) = [
            m
            for m, s in slices.items()
            if (s["pid"], s["tid"], s["ts"] + s["dur"]) == (start["pid"], start["tid"], start["ts"])
        ]
        end = ends[flow]
        (waiter,) = [
            m for m, s in slices.items() if (s["pid"], s["tid"], s["ts"]) == (end["pid"], end["tid"], end["ts"])
        ]
        pairs.add((waiter, dep))
    assert pairs == {(b, a), (c, a), (d, b), (d, c), (e, a), (e, b), (e, c)}
