"""How many bytes each task moved: its request's buffers and its reply's, measured on a real cluster."""

import json

import numpy as np

import ipyrecorder
from ipyrecorder.cli import main

from .helpers import record

MB = 1 << 20


def ten_megabytes():
    return np.ones(10 * MB, np.uint8)


def total(values):
    return sum(v for v in values if v is not None)


def test_a_task_records_the_bytes_it_sent_and_got_back(rc, engines, log_path, capsys):
    lview, dview = rc.load_balanced_view(), rc[engines]
    sent = np.zeros(10 * MB, np.uint8)  # 10 MB in, nothing much out

    def body(rec):
        lview.apply_async(len, sent).get(timeout=60)
        lview.apply_async(ten_megabytes).get(timeout=60)  # nothing much in, 10 MB out
        dview.push({"pushed": np.zeros(2 * MB, np.uint8)}, block=True)
        dview.pull("pushed", block=True)
        dview.scatter("part", np.zeros(4 * MB, np.uint8), block=True)
        dview.gather("part", block=True)

    record(lview, log_path, body)
    state = ipyrecorder.replay(log_path)
    tasks = list(state.tasks.values())
    by_function = {}
    for task in tasks:
        by_function.setdefault(task.function, []).append(task)

    (into,) = by_function["len"]
    assert 10 * MB <= into.request_bytes < 10 * MB + 64_000  # the array's data, plus the pickled call
    assert into.reply_bytes < 1_000
    (out,) = by_function["ten_megabytes"]
    assert out.request_bytes < 64_000
    assert 10 * MB <= out.reply_bytes < 10 * MB + 64_000

    pushes = by_function["_push"]  # push (one task per engine), then scatter's (a part per engine)
    assert len(pushes) == 4
    assert 2 * (2 * MB) <= total(t.request_bytes for t in pushes[:2]) < 2 * (2 * MB) + 64_000
    assert 4 * MB <= total(t.request_bytes for t in pushes[2:]) < 4 * MB + 64_000
    pulls = by_function["_pull"]  # pull, then gather's
    assert 2 * (2 * MB) <= total(t.reply_bytes for t in pulls[:2]) < 2 * (2 * MB) + 64_000
    assert 4 * MB <= total(t.reply_bytes for t in pulls[2:]) < 4 * MB + 64_000

    # the totals: the same from the writer's summaries as from the fold (``log_path`` checks),
    # in ``info`` and its JSON, and in every task record
    requests, replies = total(t.request_bytes for t in tasks), total(t.reply_bytes for t in tasks)
    assert requests > 18 * MB and replies > 18 * MB  # 10 + 2 x 2 + 4 MB each way
    assert main(["info", str(log_path), "--json"]) == 0
    moved = json.loads(capsys.readouterr().out)["bytes"]
    assert moved == {"requests": requests, "replies": replies}
    assert main(["info", str(log_path)]) == 0
    text = capsys.readouterr().out
    assert f"bytes: {requests / 1e6:.1f} MB sent in requests, {replies / 1e6:.1f} MB back in replies" in text
    (longest,) = state.summary()["critical_path"]["tasks"]  # no task waited on another
    task = state.tasks[longest]  # (named as views name it)
    assert f"critical path: the longest task, {task.run_seconds:.3f} s: {task.display_name}" in text
    record_of = state.tasks[into.msg_id].to_dict()
    assert (record_of["request_bytes"], record_of["reply_bytes"]) == (into.request_bytes, into.reply_bytes)
    found = state.query({"request_bytes": {"$gte": 10 * MB}}, keys=["function"])
    assert {r["function"] for r in found} == {"len"}
