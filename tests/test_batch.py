"""The batch fold (``batch.py``) gives exactly the state the row-by-row fold gives.

Each log here is replayed twice, once as usual and once with batching turned
off, and every task, engine, count and recent list is compared; each test also
checks that batching did fold some of its frames (or that it rightly did not).
"""

import shutil

import pytest

import ipyrecorder
from ipyrecorder import batch
from ipyrecorder.log import LogWriter, new_header

from .helpers import T0, at, replies_before_starts, rich_log, varied_log


def dump(state) -> dict:
    """Everything a state says, as plain values."""
    return {
        "tasks": [task.to_dict() for task in state.tasks.values()],
        "engines": [
            {**engine.to_dict(), "current": engine.current and engine.current.msg_id}
            for engine in state.engines.values()
        ],
        "summary": state.summary(),
        "counts": (state.n_submitted, state.n_completed, state.n_failed, state.events),
        "recent": (
            list(state.recent_completions),
            [task.msg_id for task in state.recent_errors],
            [(task.msg_id, stream, text) for task, stream, text in state.recent_output],
        ),
        "marks": [mark.to_dict() for mark in state.marks],
        "damage": [str(d) for d in state.damage],
    }


@pytest.fixture
def both(monkeypatch):
    """``both(*paths)``: (batched dump, row-by-row dump, runs folded as batches)."""

    def replay_both(*paths, **kwargs):
        runs = []
        fold_run = batch._fold_run

        def counted(*args):
            folded = fold_run(*args)
            runs.append(folded)
            return folded

        with monkeypatch.context() as patch:
            patch.setattr(batch, "_fold_run", counted)
            batched = dump(ipyrecorder.replay(*paths, **kwargs))
        with monkeypatch.context() as patch:
            patch.setattr(batch, "BATCH_FROM", 10**9)
            rows = dump(ipyrecorder.replay(*paths, **kwargs))
        return batched, rows, sum(runs)

    return replay_both


def test_a_varied_log_folds_the_same_in_batches(tmp_path, both):
    path = tmp_path / "a.mpk"
    varied_log(path)
    batched, rows, runs = both(path)
    assert runs >= 5
    assert batched == rows
    assert batched["summary"]["by_status"]["running"] > 0 and batched["summary"]["by_status"]["error"] > 0


def test_engines_named_before_they_register_are_made_in_the_order_named(tmp_path, both):
    path = tmp_path / "a.mpk"
    varied_log(path, register=False, seed=5)
    batched, rows, runs = both(path)
    assert runs >= 5
    assert batched == rows
    assert [e["id"] for e in batched["engines"]] == [e["id"] for e in rows["engines"]]


def test_a_run_with_events_of_other_kinds_between_its_batches(tmp_path, both):
    path = tmp_path / "rich.mpk"
    rich_log(path, n=3000)
    batched, rows, runs = both(path)
    assert batched == rows and runs >= 1


def test_output_and_names_fold_the_same_in_batches(tmp_path, both):
    path, other = tmp_path / "a.mpk", tmp_path / "b.mpk"
    varied_log(path, output=True)
    batched, rows, runs = both(path)
    assert runs >= 5
    assert batched == rows
    tasks = batched["tasks"]
    assert any(t["stdout"] and t["stderr"] for t in tasks) and any(
        (t["name"] or "").startswith("renamed-") for t in tasks
    )
    assert any((t["name"] or "").startswith("early-") for t in tasks)
    shutil.copy(path, other)  # the same run's output from two logs: each task's from one of them
    batched, rows, runs = both(path, other)
    assert batched == rows


def test_tasks_started_twice_and_completed_before_their_start_fold_row_by_row(tmp_path, both):
    path = tmp_path / "a.mpk"
    restarts = [
        {"kind": "start", "msg_id": f"sess-1_77_{i}", "t": at(100 + i), "engine_id": 3} for i in range(1, 600, 3)
    ]
    varied_log(path, n=1200, flush_every=10**6, tail=restarts)
    batched, rows, runs = both(path)
    assert batched == rows
    assert any(task["attempts"] for task in batched["tasks"])

    late = tmp_path / "late.mpk"
    replies_before_starts(late)
    batched, rows, runs = both(late)
    assert batched == rows and runs == 0


def test_merged_logs_of_one_run_and_of_two_clusters(tmp_path, both):
    one, copy, other = tmp_path / "a.mpk", tmp_path / "b.mpk", tmp_path / "c.mpk"
    varied_log(one)
    shutil.copy(one, copy)
    varied_log(other, seed=9, cluster="B")
    batched, rows, runs = both(one, copy)
    assert batched == rows
    batched, rows, runs = both(one, other)
    assert batched == rows
    assert len(batched["tasks"]) == 6000 and len(batched["engines"]) == 10  # two clusters' engines apart


def test_state_tasks_is_a_mapping_of_views(tmp_path):
    path = tmp_path / "a.mpk"
    varied_log(path, n=400, flush_every=10**6)
    state = ipyrecorder.replay(path)
    tasks = state.tasks
    first = next(iter(tasks))
    assert first == "odd-0" and tasks[first] == tasks[first] and hash(tasks[first]) == hash(tasks[first])
    assert "odd-50" in tasks and tasks["odd-50"].msg_id == "odd-50"
    assert tasks.get("sess-0_77_000") is None and tasks.get(12) is None and "nope" not in tasks
    with pytest.raises(KeyError):
        tasks["sess-9_77_1"]
    assert list(tasks) == [task.msg_id for task in tasks.values()] == [m for m, _ in tasks.items()]
    assert len(tasks) == len(tasks.values()) == 400
    assert tasks.values()[-1].msg_id == list(tasks)[-1]
    assert tasks["sess-1_77_1"].target == 2 and tasks["sess-2_77_2"].target == (0, 1)
    assert tasks["sess-0_77_3"].target is None and tasks["sess-1_77_1"].queue == "mux"
    assert tasks["odd-0"].label == "label-0" and tasks["sess-1_77_1"].label is None


def test_msg_ids_far_apart_and_of_every_shape(tmp_path):
    path = tmp_path / "a.mpk"
    shapes = ["a_1", "a_10000000000000", "a_01", "a_", "_5", "5", "a_b", "", "a_1_2", "a_999999999999999999999"]
    shapes += [f"wide_{i * 10**12}" for i in range(300)]
    with LogWriter(path, "w", new_header(t0=T0)) as writer:
        for i, msg_id in enumerate(shapes):
            writer.append({"kind": "submit", "msg_id": msg_id, "t": at(i)})
    state = ipyrecorder.replay(path)
    assert list(state.tasks) == shapes
    assert all(state.tasks[m].msg_id == m for m in shapes)
    assert "a_001" not in state.tasks and "wide_1" not in state.tasks


def test_until_on_a_batched_log_keeps_only_what_had_begun(tmp_path, both):
    path = tmp_path / "a.mpk"
    varied_log(path)
    batched, rows, runs = both(path, until=at(12))
    assert batched == rows
    assert 1000 < len(batched["tasks"]) < 1300 and batched["summary"]["by_status"]["running"] > 0


def test_a_live_viewer_is_told_the_same_changes(tmp_path, monkeypatch):
    from ipyrecorder.log import LogReader
    from ipyrecorder.state import State

    path = tmp_path / "a.mpk"
    varied_log(path, output=True)

    def changes():
        state = State()
        assert state.take_changes().full
        taken = []
        for offset, frame in LogReader(path).frames():
            state.fold_frame(offset, frame)
            got = state.take_changes()
            taken.append((sorted(t.msg_id for t in got.tasks), [t.msg_id for t in got.completed], sorted(got.engines)))
        return taken

    runs = []
    fold_run = batch._fold_run
    monkeypatch.setattr(batch, "_fold_run", lambda *args: runs.append(fold_run(*args)) or runs[-1])
    batched = changes()
    assert sum(runs) >= 5
    monkeypatch.setattr(batch, "BATCH_FROM", 10**9)
    assert batched == changes()
    assert sum(len(completed) for _, completed, _ in batched) > 2000


def test_sizes_of_2_gib_and_more_fold_alike_row_by_row_and_in_batches(tmp_path, both):
    """Sizes live in 4-byte columns; 2 GiB and more go to a dict beside them, in both folds."""
    from ipyrecorder.table import LARGE_FROM, NIL

    path = tmp_path / "big.mpk"
    sizes = [None, 0, 1, LARGE_FROM - 1, LARGE_FROM, 3 * LARGE_FROM, 2**62]
    with LogWriter(path, "w", new_header(t0=T0)) as log:
        for i in range(600):  # one frame of many tasks: the batch fold
            size = sizes[i % len(sizes)]
            log.append({"kind": "submit", "msg_id": f"s_1_{i}", "t": at(i), "request_bytes": size})
            log.append({"kind": "complete", "msg_id": f"s_1_{i}", "status": "ok", "reply_bytes": size})
    batched, rows, runs = both(path)
    assert runs >= 1 and batched == rows
    state = ipyrecorder.replay(path)
    want = [sizes[i % len(sizes)] for i in range(600)]
    assert [t.request_bytes for t in state.tasks.values()] == want == [t.reply_bytes for t in state.tasks.values()]
    assert state.table.sizes("reply_bytes", 2, 9).tolist() == [
        1,
        LARGE_FROM - 1,
        LARGE_FROM,
        3 * LARGE_FROM,
        2**62,
        NIL,
        0,
    ]
    assert state.summary()["bytes"]["requests"] == sum(s or 0 for s in want)
