"""The summaries the writer keeps (``tally.py``) say what the fold says, and ``info`` answers from them.

Every log here is read both ways, from its summaries (``summary.read_summary``)
and by folding it, and the two compared whole: headers, every figure of the
summary, marks. Where a log cannot be summed up exactly (a task completed
twice, damage, a segment that did not close), no summary is used and ``info``
folds. Real recordings are held to the fold by the ``log_path`` fixture.
"""

import json
import random
import shutil

import ipyparallel as ipp
import msgpack
import pytest

import ipyrecorder
from ipyrecorder import framing, tally
from ipyrecorder.cli import main
from ipyrecorder.log import LogWriter, new_header
from ipyrecorder.msgids import MsgIds
from ipyrecorder.summary import read_summary
from ipyrecorder.text import summary_text

from .helpers import T0, at, fail, record, replies_before_starts, rich_log, summaries_and_fold, varied_log


def agree(path):
    """The summary ``info`` reads from ``path`` (asserting there is one, and that it is the fold's)."""
    quick, folded = summaries_and_fold(path)
    assert quick is not None
    assert quick == folded
    return quick[1]


def close_summaries(path) -> list:
    """The summary of each close event of a log ({} where the writer kept none)."""
    return [e["summary"] for e in ipyrecorder.read_events(path) if e["kind"] == "close"]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"output": True},
        {"register": False, "seed": 5},
        {"flush_every": 1, "n": 300},
        {"flush_every": 10**6, "n": 1200},
    ],
    ids=["varied", "output", "unregistered-engines", "a-frame-an-event", "one-frame"],
)
def test_varied_logs_are_summed_up_as_the_fold_sums_them(tmp_path, options):
    path = tmp_path / "a.mpk"
    varied_log(path, **options)
    summary = agree(path)
    assert summary["by_status"]["running"] > 0 and summary["by_status"]["error"] > 0
    assert summary["failed_attempts"] > 0 and len(summary["engines"]) == 5


def test_restarts_attempts_late_starts_marks_and_leaving_engines(tmp_path):
    path = tmp_path / "a.mpk"
    tail = [
        {"kind": "start", "msg_id": f"sess-{i % 3}_77_{i}", "t": at(100 + i), "engine_id": 3} for i in range(1, 600, 3)
    ]
    tail += [
        {"kind": "mark", "t": at(-5), "text": "before anything"},  # a mark widens the span
        {"kind": "engine_unregister", "t": at(200), "engine_id": 4},
        {"kind": "engine_register", "t": at(201), "engine_id": 7, "uuid": "u7"},
        {"kind": "resubmit", "t": at(202), "msg_id": "sess-1_77_1", "new_msg_id": "sess-1_77_5000"},
        {"kind": "stdout", "msg_id": "never-submitted", "t": at(203), "text": "?"},
        {"kind": "mark", "t": at(300), "text": "after"},
    ]
    varied_log(path, n=600, tail=tail)
    summary = agree(path)
    assert summary["marks"] == 2 and 7 in summary["engines"]

    attempts = tmp_path / "attempts.mpk"
    with LogWriter(attempts, "w", new_header(t0=T0)) as writer:
        # (final status, the final error, then whether it is the error an attempt raised)
        for i, (status, evalue) in enumerate([("error", "first"), ("error", "last"), ("ok", None), (None, None)]):
            msg_id = f"s_1_{i}"
            writer.append({"kind": "submit", "msg_id": msg_id, "t": at(i)})
            writer.append({"kind": "start", "msg_id": msg_id, "t": at(i + 0.1), "engine_id": 0})
            error = {"ename": "RuntimeError", "evalue": "first"}
            writer.append({"kind": "attempt_error", "msg_id": msg_id, "t": at(i + 0.2), "engine_id": 0, **error})
            writer.append({"kind": "start", "msg_id": msg_id, "t": at(i + 0.3), "engine_id": 0})
            if status is not None:
                failed = {"ename": "RuntimeError", "evalue": evalue} if status == "error" else {}
                writer.append({"kind": "complete", "msg_id": msg_id, "status": status, "engine_id": 0, **failed})
    summary = agree(attempts)
    assert summary["failed_attempts"] == len(ipyrecorder.replay(attempts).failures()) == 5

    overtaken = tmp_path / "overtaken.mpk"  # the iopub error comes after the reply, as it may
    with LogWriter(overtaken, "w", new_header(t0=T0)) as writer:
        for i, (status, evalue) in enumerate([("error", "same"), ("error", "other"), ("ok", None), ("error", "same")]):
            msg_id = f"s_1_{i}"
            writer.append({"kind": "submit", "msg_id": msg_id, "t": at(i)})
            failed = {"ename": "E", "evalue": evalue} if status == "error" else {}
            writer.append({"kind": "complete", "msg_id": msg_id, "status": status, "engine_id": 0, **failed})
            if i == 3:
                writer.flush()  # (a frame later)
            error = {"kind": "attempt_error", "msg_id": msg_id, "t": at(i + 0.5), "engine_id": 0}
            writer.append({**error, "ename": "E", "evalue": "same"})
    summary = agree(overtaken)
    assert summary["failed_attempts"] == len(ipyrecorder.replay(overtaken).failures()) == 5

    late = tmp_path / "late.mpk"
    replies_before_starts(late)
    assert agree(late)["by_status"] == {"ok": 400}


def test_a_rich_log_and_recordings_appended_to_one_file(tmp_path):
    rich = tmp_path / "rich.mpk"
    rich_log(rich, n=3000)
    summary = agree(rich)
    assert summary["tasks"] == 3000 and summary["marks"] and summary["failed_attempts"]

    path = tmp_path / "a.mpk"
    varied_log(path, n=500)
    with LogWriter(path, "a", new_header(t0=at(1000))) as writer:  # the same cluster, later tasks
        writer.append({"kind": "engine_register", "t": at(1000), "engine_id": 1, "uuid": "u1"})
        for i in range(10_000, 10_050):
            writer.append({"kind": "submit", "msg_id": f"sess-0_77_{i}", "t": at(1000 + i / 1e4)})
            writer.append({"kind": "complete", "msg_id": f"sess-0_77_{i}", "status": "ok", "engine_id": 1})
    summary = agree(path)
    assert summary["segments"] == 2 and summary["tasks"] == 550


def test_where_summaries_cannot_say_what_the_fold_says_info_folds(tmp_path):
    """Each of these logs gets no summary, or has summaries that do not add up; the fold answers."""
    twice = tmp_path / "twice.mpk"  # a task completed twice
    varied_log(twice, n=300, tail=[{"kind": "complete", "msg_id": "sess-1_77_1", "status": "error"}])
    assert close_summaries(twice) == [{}]

    shared = tmp_path / "shared.mpk"  # two segments naming the same task
    varied_log(shared, n=300)
    with LogWriter(shared, "a", new_header(t0=at(1000))) as writer:
        writer.append({"kind": "stdout", "msg_id": "sess-1_77_1", "t": at(1000), "text": "late\n"})
    assert len(close_summaries(shared)) == 2 and all(close_summaries(shared))

    clusters = tmp_path / "clusters.mpk"  # a second cluster's engines under the same ids
    varied_log(clusters, n=300)
    with LogWriter(clusters, "a", new_header(t0=at(1000))) as writer:
        writer.append({"kind": "engine_register", "t": at(1000), "engine_id": 0, "uuid": "another"})

    unclosed = tmp_path / "unclosed.mpk"
    writer = LogWriter(unclosed, "w", new_header(t0=T0))
    writer.append({"kind": "submit", "msg_id": "s_1_1", "t": at(1)})
    writer.flush()
    writer.abandon()

    damaged = tmp_path / "damaged.mpk"
    varied_log(damaged, n=300, flush_every=50)
    data = bytearray(damaged.read_bytes())
    data[len(data) // 2] ^= 0x40
    damaged.write_bytes(bytes(data))

    for path in (twice, shared, clusters, unclosed, damaged):
        quick, folded = summaries_and_fold(path)
        assert quick is None, path.name
    assert ipyrecorder.replay(shared).summary()["tasks"] == 300
    assert len(ipyrecorder.replay(clusters).engines) == 6


def test_summaries_not_as_the_format_has_them_are_not_used(tmp_path, capsys):
    """Another writer's odd summary, or a last frame that checks out but does not decode:
    ``info`` folds, and says what the fold says."""
    odd = tmp_path / "odd.mpk"
    writer = LogWriter(odd, "w", new_header(t0=T0))
    writer.append({"kind": "submit", "msg_id": "s_1_1", "t": at(1)})
    writer.tally.summary = lambda: {"tasks": "many", "engines": [[0, 1]]}
    writer.close()
    assert close_summaries(odd)[0]["tasks"] == "many"
    assert read_summary(odd) is None
    assert main(["info", str(odd)]) == 0 and "1 tasks" in capsys.readouterr().out

    broken = tmp_path / "broken.mpk"
    varied_log(broken, n=300)
    segment, frames = None, 0
    for _, peeked in ipyrecorder.LogReader(broken).peeked():
        segment, frames = peeked.segment, frames + 1
    payload = msgpack.packb({"v": 2, "s": segment, "n": frames, "b": 0, "c": [["x"], [[0], [None]], b"\x04", {}]})
    with open(broken, "ab") as fh:  # checks out, names the segment's next frame, breaks section 3
        fh.write(framing.frame(payload))
    assert read_summary(broken) is None
    assert main(["info", str(broken)]) == 0
    assert "malformed" in capsys.readouterr().out


def test_a_frame_rewritten_with_a_crc_that_checks_out_is_noticed(tmp_path):
    """The summary names the frames it sums up (their CRCs' digest): an edited frame makes ``info`` fold."""
    path = tmp_path / "a.mpk"
    varied_log(path, n=300, flush_every=50)
    agree(path)
    data = path.read_bytes()
    splitter = framing.FrameSplitter()
    offset, size, payload = (splitter.feed(data) + splitter.finish())[2]
    fields = msgpack.unpackb(payload, strict_map_key=False)
    fields["b"] += 1  # every time in the frame a microsecond later: still a valid frame
    path.write_bytes(data[:offset] + framing.frame(msgpack.packb(fields)) + data[offset + size :])
    quick, folded = summaries_and_fold(path)
    assert quick is None and not ipyrecorder.replay(path).damage


def test_the_same_log_twice_in_one_file_is_counted_once(tmp_path):
    path, doubled = tmp_path / "a.mpk", tmp_path / "aa.mpk"
    varied_log(path, n=300)
    doubled.write_bytes(path.read_bytes() * 2)  # ``cat a.mpk a.mpk``
    assert agree(doubled) == agree(path)


def test_what_a_tally_cannot_follow_costs_the_summary_not_the_recording(tmp_path, monkeypatch):
    scattered = tmp_path / "scattered.mpk"
    monkeypatch.setattr(tally, "MAX_RANGES", 3)
    with LogWriter(scattered, "w", new_header(t0=T0)) as writer:
        for i in range(0, 100, 2):  # every other counter value: 50 runs
            writer.append({"kind": "submit", "msg_id": f"s_1_{i}", "t": at(i)})
    monkeypatch.undo()
    assert close_summaries(scattered) == [{}]
    assert ipyrecorder.replay(scattered).summary()["tasks"] == 50

    forgotten = tmp_path / "forgotten.mpk"  # an attempt's error after more failures than are remembered
    monkeypatch.setattr(tally, "MAX_FAILURES", 2)
    with LogWriter(forgotten, "w", new_header(t0=T0)) as writer:
        for i in range(4):
            writer.append({"kind": "complete", "msg_id": f"s_1_{i}", "status": "error", "ename": "E"})
        writer.append({"kind": "attempt_error", "msg_id": "s_1_0", "t": at(9), "ename": "E"})
    monkeypatch.undo()
    assert close_summaries(forgotten) == [{}]
    assert len(ipyrecorder.replay(forgotten).failures()) == 4

    broken = tmp_path / "broken.mpk"

    def fails(*args):
        raise ZeroDivisionError

    monkeypatch.setattr(tally.Tally, "_complete", fails)
    varied_log(broken, n=300)
    monkeypatch.undo()
    assert close_summaries(broken) == [{}]
    assert ipyrecorder.replay(broken).summary()["tasks"] == 300

    failing = tmp_path / "failing.mpk"
    writer = LogWriter(failing, "w", new_header(t0=T0))
    writer.append({"kind": "submit", "msg_id": "s_1_1", "t": at(1)})
    write = writer._write
    monkeypatch.setattr(writer, "_write", lambda payload: (_ for _ in ()).throw(OSError(28, "No space left")))
    with pytest.raises(OSError):
        writer.flush()  # this frame is not in the log, so the summary would count what is not there
    monkeypatch.setattr(writer, "_write", write)
    writer.close()
    assert close_summaries(failing) == [{}]


def test_info_answers_from_the_summaries_exactly_as_from_the_fold(tmp_path, capsys, monkeypatch):
    path = tmp_path / "a.mpk"
    varied_log(path, n=600, output=True, tail=[{"kind": "mark", "t": at(3), "text": "half way"}])
    quick, folded = summaries_and_fold(path)
    assert summary_text([path], *quick) == summary_text([path], *folded)
    assert main(["info", str(path)]) == 0
    text = capsys.readouterr().out
    assert "marks: half way" in text and "failed attempts:" in text
    assert main(["info", "--json", str(path)]) == 0
    from_summaries = json.loads(capsys.readouterr().out)

    folds = []
    monkeypatch.setattr("ipyrecorder.summary.read_summary", lambda path: folds.append(path))  # no summaries
    assert main(["info", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out) == from_summaries and folds
    monkeypatch.undo()

    copy = tmp_path / "b.mpk"
    shutil.copy(path, copy)
    assert main(["info", str(path), str(copy)]) == 0  # several logs, and --until, are folded
    assert f"{from_summaries['tasks']} tasks" in capsys.readouterr().out
    assert main(["info", "--until", "+1s", str(path)]) == 0
    assert f"{from_summaries['tasks']} tasks" not in capsys.readouterr().out
    assert read_summary(path) is not None


def talk(x):
    print(f"task {x}")
    return x


@pytest.mark.cluster
def test_a_real_recording_is_summed_up_as_the_fold_sums_it(rc, engines, log_path):
    lview, dview = rc.load_balanced_view(), rc[:]

    def body(rec):
        lview.map_async(talk, range(40), chunksize=1).get(timeout=60)
        rec.mark("half way")
        failing = [lview.apply_async(fail, i) for i in range(3)]
        dview.apply_async(talk, "everywhere").get(timeout=60)
        for ar in failing:
            with pytest.raises(ipp.error.RemoteError):
                ar.get(timeout=60)

    record(lview, log_path, body)
    summary = agree(log_path)
    assert summary["tasks"] == 45 and summary["by_status"] == {"error": 3, "ok": 42}
    assert summary["failed_attempts"] == 3 and summary["marks"] == 1 and set(summary["engines"]) >= set(engines)


def test_msg_ids_as_runs_hold_exactly_the_msg_ids_added():
    rng = random.Random(4)
    held, plain = MsgIds(), set()
    for _ in range(5000):
        msg_id = rng.choice([f"s_1_{rng.randrange(600)}", f"t_2_{rng.randrange(50)}", f"odd-{rng.randrange(40)}"])
        assert held.add(msg_id) == (msg_id not in plain)
        plain.add(msg_id)
    assert all(m in held for m in plain)
    assert not any(f"s_1_{n}" in held for n in range(600) if f"s_1_{n}" not in plain)
    for runs in held.runs.values():  # runs are sorted, apart and merged
        bounds = runs.bounds()
        assert all(a <= b for a, b in zip(bounds, bounds[1:])) and all(
            hi + 1 < lo for hi, lo in zip(bounds[1::2], bounds[2::2])
        )


def test_the_slowest_and_first_failed_tasks_are_named_as_the_fold_names_them(tmp_path):
    """A label that comes after its task's completion still names it, and info says the same from both."""
    path = tmp_path / "named.mpk"
    with LogWriter(path, "w", new_header(t0=T0)) as log:
        for i in range(12):
            msg_id = f"n_1_{i}"
            log.append({"kind": "submit", "msg_id": msg_id, "t": at(i), "function": "fit"})
            if i % 3 == 0:
                log.append({"kind": "label", "msg_id": msg_id, "name": f"early {i}"})
            log.append({"kind": "start", "msg_id": msg_id, "t": at(i + 0.1), "engine_id": i % 2})
            failed = i in (2, 7)
            log.append(
                {
                    "kind": "complete",
                    "msg_id": msg_id,
                    "status": "error" if failed else "ok",
                    "started": at(i + 0.1),
                    "completed": at(i + 0.2 + i / 10),
                    "received": at(i + 0.3 + i / 10),
                    "engine_id": i % 2,
                    "ename": "KeyError" if failed else None,
                    "evalue": "'x'" if failed else None,
                }
            )
            if i in (7, 11):
                log.flush()  # (the late label in a frame of its own)
                log.append({"kind": "label", "msg_id": msg_id, "name": f"late {i}"})
    summary = agree(path)
    assert [t["name"] for t in summary["slowest"]] == ["late 11", "fit", "early 9", "fit", "late 7"]
    assert [(t["name"], t["error"]) for t in summary["failed"]] == [
        ("fit", "KeyError: 'x'"),
        ("late 7", "KeyError: 'x'"),
    ]
