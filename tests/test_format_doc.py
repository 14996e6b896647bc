"""docs/format.md is a usable contract: an independent reader written from it agrees
with ipyrecorder.

The reader below was written from docs/format.md alone and uses only ``msgpack``,
``zlib`` and ``struct`` (plus ``datetime`` for the Python API's value types). It
must not import ipyrecorder's reader or decoder; ipyrecorder is used here only to
WRITE test logs (``open_log``) and as the reference the results are compared to.
"""

from __future__ import annotations

import io
import os
import re
import struct
import warnings
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgpack
import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "format.md"

# ---------------------------------------------------------------------------
# The independent reader (docs/format.md sections 1-9)
# ---------------------------------------------------------------------------

HEAD = struct.Struct(">BBIBI")  # 0x92, 0xce, crc (u32be), 0xc6, length (u32be)
MAX_PAYLOAD = 2**28
HEADER, SYMBOL, TASK, TIMEBASE, FRAME = 0, 1, 2, 3, 16
NAMES = {
    4: "submit",
    5: "start",
    6: "complete",
    7: "stdout",
    8: "stderr",
    9: "attempt_error",
    10: "engine_register",
    11: "engine_unregister",
    12: "mark",
    13: "label",
    14: "resubmit",
    15: "close",
}
STATUSES = ("ok", "error", "aborted")
QUEUES = ("task", "mux", "broadcast")
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
SUPPORTED_VERSION = 1


class Malformed(Exception):
    """An event that cannot be decoded (section 7)."""


class NotALog(Exception):
    pass


def frame_end(data: bytes, p: int):
    """End offset of the valid frame at ``p`` (section 2, conditions 1-5), or None."""
    n = len(data)
    if n - p < HEAD.size:
        return None
    m0, m1, crc, m2, length = HEAD.unpack_from(data, p)
    if (m0, m1, m2) != (0x92, 0xCE, 0xC6) or length > MAX_PAYLOAD:
        return None
    end = p + HEAD.size + length
    if end > n or zlib.crc32(data[p + HEAD.size : end]) != crc:
        return None
    return end


def scan_frames(data: bytes):
    """([(offset, payload)], [(offset, length, reason)]) by the scan of section 2."""
    frames, damage = [], []
    pos, n = 0, len(data)
    while pos < n:
        end = frame_end(data, pos)
        if end is not None:
            frames.append((pos, data[pos + HEAD.size : end]))
            pos = end
            continue
        nxt = pos + 1
        while True:
            nxt = data.find(b"\x92\xce", nxt)
            if nxt < 0 or frame_end(data, nxt) is not None:
                break
            nxt += 1
        if nxt < 0:
            damage.append((pos, n - pos, "torn tail"))
            break
        damage.append((pos, nxt - pos, "corrupt"))
        pos = nxt
    return frames, damage


class Segment:
    """The decoding state of section 4: segment t0, time base, symbols, task ids."""

    def __init__(self, t0):
        self.t0 = t0
        self.base = t0
        self.symbols = []
        self.tids = []

    def time(self, rel):
        if rel is None:
            return None
        if not isinstance(rel, int):
            raise Malformed(f"time {rel!r}")
        return EPOCH + timedelta(microseconds=self.base + rel)

    def symbol(self, ref):
        if ref is None:
            return None
        if not isinstance(ref, int) or not 0 <= ref < len(self.symbols):
            raise Malformed(f"undefined symbol {ref!r}")
        return self.symbols[ref]

    def task(self, ref):
        if not isinstance(ref, int) or not 0 <= ref < len(self.tids):
            raise Malformed(f"undefined task id {ref!r}")
        return self.tids[ref]


def code(table, value, optional=True):
    if value is None and optional:
        return None
    if not isinstance(value, int) or not 0 <= value < len(table):
        raise Malformed(f"code {value!r}")
    return table[value]


def decode(a, seg: Segment | None, frame_aware=True):
    """(event dict or None, segment) for one wire array.

    ``frame_aware=False`` plays a reader that predates FRAME: it skips code 16
    as an unknown kind (section 8).
    """
    if not isinstance(a, (list, tuple)) or not a:
        raise Malformed("not an array")
    kind = a[0]

    def req(i):  # a required position must be present
        if i >= len(a):
            raise Malformed(f"kind {kind}: field {i} missing")
        return a[i]

    def opt(i):  # missing trailing positions are nil
        return a[i] if i < len(a) else None

    if kind == HEADER:
        fields = req(1)
        if not isinstance(fields, dict) or fields.get("format") != "ipyrecorder":
            raise NotALog("not an ipyrecorder segment")
        version = fields.get("version")
        if not isinstance(version, int) or version > SUPPORTED_VERSION:
            raise NotALog(f"unsupported version {version!r}")
        if not isinstance(fields.get("t0"), int):
            raise NotALog("header without t0")
        seg = Segment(fields["t0"])
        return {"kind": "header", **fields, "t0": seg.time(0)}, seg
    if seg is None:
        raise Malformed("event before any header")
    if kind == SYMBOL:
        if req(1) != len(seg.symbols):
            raise Malformed("symbol out of order")
        seg.symbols.append(req(2))
        return None, seg
    if kind == TASK:
        if req(1) != len(seg.tids):
            raise Malformed("task id out of order")
        suffix = req(3)
        seg.tids.append(seg.symbol(req(2)) + str(suffix))
        return None, seg
    if kind == TIMEBASE:
        seg.base = req(1)
        return None, seg
    if kind == FRAME and frame_aware:
        # Section 4.6: a frame of another segment (its header was lost) is
        # undecodable as a whole; otherwise FRAME restates the time base.
        if req(1) != seg.t0:
            raise Malformed("frame of a segment whose header was lost")
        seg.base = req(2)
        return None, seg
    if kind not in NAMES:
        return None, seg  # unknown kinds are skipped (section 8)
    t = seg.time
    e = {"kind": NAMES[kind]}
    if kind == 4:
        e.update(
            msg_id=seg.task(req(1)),
            t=t(req(2)),
            queue=code(QUEUES, opt(3)),
            function=seg.symbol(opt(4)),
            target=opt(5),
            label=seg.symbol(opt(6)),
            chunk=opt(7),
            broadcast=seg.symbol(opt(8)),
        )
    elif kind == 5:
        e.update(msg_id=seg.task(req(1)), t=t(req(2)), engine_id=opt(3))
    elif kind == 6:
        e.update(
            msg_id=seg.task(req(1)),
            status=code(STATUSES, req(2), optional=False),
            started=t(opt(3)),
            completed=t(opt(4)),
            received=t(opt(5)),
            engine_id=opt(6),
            ename=opt(7),
            evalue=opt(8),
            traceback=opt(9),
        )
    elif kind in (7, 8):
        e.update(msg_id=seg.task(req(1)), t=t(req(2)), text=req(3))
    elif kind == 9:
        e.update(msg_id=seg.task(req(1)), t=t(req(2)), engine_id=opt(3), ename=opt(4), evalue=opt(5), traceback=opt(6))
    elif kind == 10:
        e.update(t=t(req(1)), engine_id=req(2), uuid=opt(3), present=bool(opt(4)))
    elif kind == 11:
        e.update(t=t(req(1)), engine_id=req(2))
    elif kind == 12:
        e.update(t=t(req(1)), text=req(2), data=opt(3) or {})
    elif kind == 13:
        e.update(msg_id=seg.task(req(1)), name=req(2))
    elif kind == 14:
        e.update(t=t(req(1)), msg_id=seg.task(req(2)), new_msg_id=seg.task(req(3)))
    elif kind == 15:
        e.update(t=t(req(1)), stats=opt(2) or {})
    return e, seg


def read_log(path, frame_aware=True):
    """(events, damage, raw arrays) of a log, per docs/format.md."""
    data = Path(path).read_bytes()
    if not data.startswith(b"\x92\xce"):
        raise NotALog("does not start with 92 ce")
    frames, damage = scan_frames(data)
    if not frames or frames[0][0] != 0:
        raise NotALog("first frame damaged")
    events, arrays, seg = [], [], None
    for offset, payload in frames:
        # Python API: payloads unpacked with raw=False, use_list=False, strict_map_key=False
        unpacker = msgpack.Unpacker(raw=False, use_list=False, strict_map_key=False)
        unpacker.feed(payload)
        try:
            for a in unpacker:
                arrays.append(a)
                try:
                    event, seg = decode(a, seg, frame_aware)
                except Malformed:
                    damage.append((offset, 0, "undecodable"))
                    break  # skip the rest of this frame; the state stays as it is (sections 4.6, 7)
                if event is not None:
                    events.append(event)
        except (ValueError, msgpack.UnpackException):
            damage.append((offset, len(payload), "undecodable"))
    return events, damage, arrays


def make_frame(payload: bytes) -> bytes:
    return HEAD.pack(0x92, 0xCE, zlib.crc32(payload), 0xC6, len(payload)) + payload


# ---------------------------------------------------------------------------
# Test logs (written with ipyrecorder) and the reference (ipyrecorder's reader)
# ---------------------------------------------------------------------------

T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
US = timedelta(microseconds=1)


def header(t0, **extra):
    return {
        "format": "ipyrecorder",
        "version": 1,
        "t0": t0,
        "recorder": "test",
        "ipyparallel": None,
        "python": "3",
        "host": "h",
        "pid": 1,
        **extra,
    }


def us(t: datetime) -> int:
    """Microseconds since the epoch, computed here (not with ipyrecorder)."""
    return (t - EPOCH) // US


def write_every_kind(path, future_frames=True):
    """A log with every event kind, two segments, TIMEBASE jumps both ways, and
    (``future_frames``) an unknown kind, an extra trailing field and a frame
    without FRAME."""
    from ipyrecorder import open_log

    s = "sess-abc_99_"
    with open_log(path, "w", header=header(T0, session="sess-abc")) as log:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": "u0", "present": True})
        log.append({"kind": "engine_register", "t": T0 + 500_000 * US, "engine_id": 1, "uuid": "u1"})
        log.append(
            {
                "kind": "submit",
                "msg_id": s + "0",
                "t": T0 + 1_000_000 * US,
                "queue": "task",
                "function": "f",
                "label": "lab",
                "chunk": 3,
            }
        )
        log.append(
            {
                "kind": "submit",
                "msg_id": s + "1",
                "t": T0 + 1_000_100 * US,
                "queue": "mux",
                "function": "f",
                "target": 1,
            }
        )
        log.append(
            {
                "kind": "submit",
                "msg_id": s + "2",
                "t": T0 + 1_000_200 * US,
                "queue": "broadcast",
                "function": "g",
                "target": [0, 1],
                "broadcast": s + "req",
            }
        )
        log.append({"kind": "submit", "msg_id": "nounderscore", "t": T0 + 1_000_300 * US})
        log.append({"kind": "submit", "msg_id": s + "007", "t": T0 + 1_000_400 * US, "function": "f"})
        log.flush()
        # an engine clock a little behind the client's: negative relative time
        log.append({"kind": "start", "msg_id": s + "0", "t": T0 - 3_000 * US, "engine_id": 0})
        log.append({"kind": "stdout", "msg_id": s + "0", "t": T0 + 1_100_000 * US, "text": "hello\n"})
        log.append({"kind": "stdout", "msg_id": s + "0", "t": T0 + 1_100_001 * US, "text": ""})
        log.append({"kind": "stderr", "msg_id": s + "0", "t": T0 + 1_100_002 * US, "text": "ünïcödé ✓\n"})
        log.append({"kind": "start", "msg_id": s + "1", "t": T0 + 1_200_000 * US, "engine_id": 1})
        log.append(
            {
                "kind": "attempt_error",
                "msg_id": s + "1",
                "t": T0 + 1_300_000 * US,
                "engine_id": 1,
                "ename": "ZeroDivisionError",
                "evalue": "division by zero",
                "traceback": "Traceback (most recent call last):\nZeroDivisionError: division by zero",
            }
        )
        log.append({"kind": "start", "msg_id": s + "1", "t": T0 + 1_400_000 * US, "engine_id": 0})
        log.flush()
        log.append(
            {
                "kind": "complete",
                "msg_id": s + "0",
                "status": "ok",
                "started": T0 + 1_000_500 * US,
                "completed": T0 + 1_900_000 * US,
                "received": T0 + 2_000_000 * US,
                "engine_id": 0,
            }
        )
        log.append(
            {
                "kind": "complete",
                "msg_id": s + "1",
                "status": "error",
                "started": T0 + 1_400_000 * US,
                "completed": T0 + 1_500_000 * US,
                "received": T0 + 1_600_000 * US,
                "engine_id": 0,
                "ename": "ValueError",
                "evalue": "bad",
                "traceback": "ValueError: bad",
            }
        )
        log.append({"kind": "complete", "msg_id": s + "2", "status": "aborted"})
        log.append({"kind": "label", "msg_id": s + "0", "name": "first"})
        log.append({"kind": "submit", "msg_id": s + "3", "t": T0 + 2_100_000 * US})
        log.append({"kind": "resubmit", "t": T0 + 2_100_000 * US, "msg_id": s + "1", "new_msg_id": s + "3"})
        log.append(
            {
                "kind": "mark",
                "t": T0 + 2_200_000 * US,
                "text": "phase",
                "data": {"n": 1, "xs": [1, 2], "b": b"\x00\x92\xce", "nested": {"k": None}, "f": 0.5},
            }
        )
        log.flush()
        # more than 2**31 us after t0: forces a TIMEBASE
        log.append({"kind": "mark", "t": T0 + (2**31 + 5) * US, "text": "late"})
        log.append({"kind": "start", "msg_id": s + "3", "t": T0 + (2**31 + 10) * US, "engine_id": 1})
        # and far back before it: another TIMEBASE, to a time before t0
        log.append({"kind": "mark", "t": T0 - (2**31 + 100) * US, "text": "early"})
        log.append({"kind": "engine_unregister", "t": T0 + 3_000_000 * US, "engine_id": 1})
        log.close({"events": 24, "ok": 1, "error": 1})
    # A second segment, as a labelling after the recording writes it.
    with open_log(path, "a", header=header(T0 + timedelta(hours=1), note="labels added after the recording")) as log:
        log.append({"kind": "label", "msg_id": s + "0", "name": "renamed"})
    if not future_frames:
        return
    # A frame from a future writer: a FRAME of the second segment that moves the
    # time base, an unknown kind, and a start (task id 0 of the second segment)
    # with an extra trailing field.
    frame_event = [FRAME, us(T0 + timedelta(hours=1)), us(T0 + timedelta(hours=2))]
    payload = b"".join(map(msgpack.packb, [frame_event, [99, "future", {"x": 1}], [5, 0, 10, 1, "extra", 7]]))
    # Then a frame without FRAME, as written before FRAME existed: it is decoded
    # with the state as it stands (section 4.6).
    with open(path, "ab") as fh:
        fh.write(make_frame(payload))
        fh.write(make_frame(msgpack.packb([12, 20, "no FRAME"])))


def reference(path):
    """(events, damage) from ipyrecorder's own reader."""
    import ipyrecorder

    reader = ipyrecorder.LogReader(path)
    events = list(reader.events())
    damage = [(d.offset, d.length, d.reason.split(" (")[0]) for d in reader.damage]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert list(ipyrecorder.read_events(path)) == events
    return events, damage


@pytest.fixture
def every_kind(tmp_path):
    path = tmp_path / "every.mpk"
    write_every_kind(path)
    return path


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------


def test_independent_reader_matches_read_events(every_kind):
    events, damage, arrays = read_log(every_kind)
    ref_events, ref_damage = reference(every_kind)
    assert damage == ref_damage == []
    assert events == ref_events

    kinds = {a[0] for a in arrays}
    assert set(range(17)) | {99} == kinds  # every kind on the wire, and the unknown one
    assert sum(1 for a in arrays if a[0] == TIMEBASE) >= 3  # two jumps + the close
    assert sum(1 for a in arrays if a[0] == HEADER) == 2
    assert {e["kind"] for e in events} == {"header"} | set(NAMES.values())

    # Spot checks against absolute values, independent of ipyrecorder's decoder.
    by_text = {e["text"]: e for e in events if e["kind"] == "mark"}
    assert by_text["late"]["t"] == T0 + (2**31 + 5) * US
    assert by_text["early"]["t"] == T0 - (2**31 + 100) * US
    assert by_text["phase"]["data"]["xs"] == (1, 2)
    assert by_text["phase"]["data"]["b"] == b"\x00\x92\xce"
    starts = [e for e in events if e["kind"] == "start"]
    assert starts[0]["t"] == T0 - 3000 * US
    # The injected start is relative to the base its frame's FRAME set (not to
    # the base of the second segment's close, a TIMEBASE to "now"); the frame
    # without FRAME keeps that base.
    assert arrays[-5] == (15, 0) and arrays[-4][0] == FRAME
    assert starts[-1] == {
        "kind": "start",
        "msg_id": "sess-abc_99_0",
        "t": T0 + timedelta(hours=2, microseconds=10),
        "engine_id": 1,
    }
    assert by_text["no FRAME"]["t"] == T0 + timedelta(hours=2, microseconds=20)
    msg_ids = {e["msg_id"] for e in events if e["kind"] == "submit"}
    assert {"nounderscore", "sess-abc_99_007", "sess-abc_99_3"} <= msg_ids
    assert [e["name"] for e in events if e["kind"] == "label"] == ["first", "renamed"]
    assert events[0]["t0"] == T0 and events[0]["session"] == "sess-abc"


def test_frames_are_as_documented(every_kind):
    data = every_kind.read_bytes()
    assert zlib.crc32(b"123456789") == 0xCBF43926  # CRC-32/ISO-HDLC check value
    frames, damage = scan_frames(data)
    assert not damage and len(frames) >= 6
    pos = 0
    for offset, payload in frames:
        assert offset == pos
        assert data[pos] == 0x92 and data[pos + 1] == 0xCE and data[pos + 6] == 0xC6
        assert int.from_bytes(data[pos + 2 : pos + 6], "big") == zlib.crc32(payload)
        assert int.from_bytes(data[pos + 7 : pos + 11], "big") == len(payload)
        pos += 11 + len(payload)
    assert pos == len(data)
    # Each segment's first frame holds the header alone; every other frame the
    # writer wrote begins with a FRAME naming that segment's t0 and the time
    # base its first event is encoded against.
    t0 = base = None
    written_by_ipyrecorder = frames[:-2]  # the last two were injected by the test
    for _offset, payload in written_by_ipyrecorder:
        values = list(msgpack.Unpacker(io.BytesIO(payload), strict_map_key=False))
        if values[0][0] == HEADER:
            assert len(values) == 1
            t0 = base = values[0][1]["t0"]
            continue
        kind, segment_t0, frame_base = values[0]
        assert (kind, segment_t0) == (FRAME, t0) and not any(v[0] == FRAME for v in values[1:])
        first_use = next(v for v in values[1:] if v[0] not in (SYMBOL, TASK))
        # In an intact log FRAME changes nothing: it equals the base in effect,
        # or the TIMEBASE that comes before the frame's first event.
        assert frame_base == base or first_use == [TIMEBASE, frame_base]
        for v in values:
            if v[0] == TIMEBASE:
                base = v[1]
    assert t0 == us(T0 + timedelta(hours=1))


def test_damage_is_handled_like_ipyrecorder(every_kind):
    data = bytearray(every_kind.read_bytes())
    frames, _ = scan_frames(bytes(data))
    # Corrupt the second frame (it defines symbols and task ids used later),
    # put garbage with a fake frame head and an oversized length between two
    # later frames, and tear the last frame.
    off1 = frames[1][0]
    data[off1 + 20] ^= 0xFF
    off3 = frames[3][0]
    garbage = b"junk\x92\xce\x00\x00\x00\x00\xc6\xff\xff\xff\xff" + make_frame(b"\x93\x01")[:-1]
    data[off3:off3] = garbage
    data = data[:-3]
    every_kind.write_bytes(bytes(data))

    events, damage, _ = read_log(every_kind)
    ref_events, ref_damage = reference(every_kind)
    assert sorted(damage) == sorted(ref_damage)
    assert events == ref_events
    reasons = [d[2] for d in damage]
    assert reasons.count("corrupt") == 2 and reasons.count("torn tail") == 1 and "undecodable" in reasons
    assert (off1, frames[2][0] - off1, "corrupt") in damage
    assert (off3, len(garbage), "corrupt") in damage


def test_undecodable_payload_with_valid_crc(tmp_path):
    path = tmp_path / "bad.mpk"
    from ipyrecorder import open_log

    with open_log(path, "w", header=header(T0)) as log:
        log.append({"kind": "mark", "t": T0, "text": "before"})
    bad = msgpack.packb([12, 1, "kept"]) + b"\xc1"  # 0xc1 is never valid msgpack
    with open(path, "ab") as fh:
        fh.write(make_frame(bad))
    events, damage, _ = read_log(path)
    ref_events, ref_damage = reference(path)
    assert events == ref_events and sorted(damage) == sorted(ref_damage)
    assert events[-1]["text"] == "kept"
    assert damage == [(os.path.getsize(path) - 11 - len(bad), len(bad), "undecodable")]


def code_block_after(marker: str) -> str:
    text = DOC.read_text(encoding="utf-8")
    at = text.index(marker)
    match = re.compile(r"```[a-z]*\n(.*?)```", re.S).search(text, at)
    return match.group(1)


def test_plain_msgpack_snippet_from_the_doc(every_kind, tmp_path, monkeypatch):
    snippet = code_block_after("<!-- plain-msgpack-snippet")
    assert len(snippet.strip().splitlines()) == 6
    assert "import msgpack" in snippet and "ipyrecorder" not in snippet
    (tmp_path / "run.mpk").write_bytes(every_kind.read_bytes())
    monkeypatch.chdir(tmp_path)
    printed = []
    exec(snippet, {"print": printed.append})  # the doc's code, verbatim

    frames, _ = scan_frames(every_kind.read_bytes())
    expected = []
    for _, payload in frames:
        unpacker = msgpack.Unpacker(strict_map_key=False)
        unpacker.feed(payload)
        expected.append(list(unpacker))
    assert printed == expected
    assert printed[0][0][0] == HEADER and printed[0][0][1]["format"] == "ipyrecorder"


def test_worked_example_hexdump(tmp_path, monkeypatch):
    script = code_block_after("<!-- hexdump-example-script")
    dump = code_block_after("<!-- hexdump -->")
    expected = b"".join(bytes.fromhex(line.split(": ", 1)[1][:39].replace(" ", "")) for line in dump.splitlines())
    monkeypatch.chdir(tmp_path)
    exec(script, {})
    data = (tmp_path / "tiny.mpk").read_bytes()
    assert data[: len(expected)] == expected
    assert len(expected) == 224
    frames, _ = scan_frames(data)
    assert [offset for offset, _ in frames] == [0, 130, 224]
    events, damage, arrays = read_log(tmp_path / "tiny.mpk")
    assert not damage
    assert events == reference(tmp_path / "tiny.mpk")[0]
    t0 = 1704067200000000
    assert [tuple(a) for a in arrays[1:9]] == [
        (16, t0, t0),
        (1, 0, "s1_4242_"),
        (2, 0, 0, 7),
        (1, 1, "square"),
        (4, 0, 1000000, 0, 1),
        (5, 0, 1000500, 3),
        (3, 1704070800000000),
        (12, 0, "hi"),
    ]
    # Frame 3: FRAME and TIMEBASE both to the time of the close, then close at +0.
    assert arrays[9][:2] == (16, t0) and arrays[10] == (3, arrays[9][2]) and arrays[11] == (15, 0)
    assert len(frames[2][1]) == 34
    assert [e["kind"] for e in events] == ["header", "submit", "start", "mark", "close"]


@pytest.mark.parametrize(("flush_every", "size", "per_task"), [(None, 105_541, 52.8), (25, 107_990, 54.0)])
def test_compactness_figure(tmp_path, flush_every, size, per_task):
    """docs/format.md section 11 quotes these figures; keep them honest."""
    from ipyrecorder import open_log

    text = DOC.read_text(encoding="utf-8")
    assert f"{size:,} bytes".replace(",", " ") in text
    assert f"{per_task} bytes per task" in text and "148 bytes for the test's header" in text

    path = tmp_path / "size.mpk"
    session = "12345678-90ab-cdef-1234-567890abcdef"
    log = open_log(path, "w", header=header(T0, session=session))
    before = os.path.getsize(path)
    assert before == 148
    for i in range(2000):
        msg_id, t = f"{session}_4242_{i}", T0 + (1000 * i + 137) * US
        log.append({"kind": "submit", "msg_id": msg_id, "t": t, "queue": "task", "function": "square"})
        log.append({"kind": "start", "msg_id": msg_id, "t": t + 2311 * US, "engine_id": i % 4})
        log.append(
            {
                "kind": "complete",
                "msg_id": msg_id,
                "status": "ok",
                "started": t + 2411 * US,
                "completed": t + 5123 * US,
                "received": t + 6789 * US,
                "engine_id": i % 4,
            }
        )
        if flush_every and (i + 1) % flush_every == 0:
            log.flush()
    log.flush()
    written = os.path.getsize(path) - before
    log.close()
    assert written == size and round(written / 2000, 1) == per_task, written
    frames, _ = scan_frames(path.read_bytes())
    assert len(frames) == 1 + (2000 // flush_every if flush_every else 1) + 1  # header, tasks, close
    events, damage, _ = read_log(path)
    assert not damage and len(events) == 1 + 3 * 2000 + 1


def test_complete_straddling_a_timebase_change(tmp_path):
    from ipyrecorder import open_log

    path = tmp_path / "straddle.mpk"
    with open_log(path, "w", header=header(T0)) as log:
        log.append(
            {
                "kind": "complete",
                "msg_id": "x_1",
                "status": "ok",
                "started": T0 + timedelta(minutes=35),
                "completed": T0 + timedelta(minutes=37),
            }
        )
    events, _, _ = read_log(path)
    assert events[1]["started"] == T0 + timedelta(minutes=35)


# ---------------------------------------------------------------------------
# FRAME (section 4.6): what losing a frame may and may not do
# ---------------------------------------------------------------------------


def corrupt_frame(path, index):
    """Flip a payload byte of frame ``index``; return (frames before the damage, data)."""
    data = bytearray(Path(path).read_bytes())
    frames, damage = scan_frames(bytes(data))
    assert not damage
    offset, payload = frames[index]
    data[offset + 11 + len(payload) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    return frames


def test_lost_segment_header_is_not_decoded_against_the_previous_segment(tmp_path):
    import ipyrecorder
    from ipyrecorder import open_log

    path = tmp_path / "two.mpk"
    a = "aaaa_1_"
    with open_log(path, "w", header=header(T0)) as log:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": "u0"})
        log.append({"kind": "submit", "msg_id": a + "0", "t": T0 + 1000 * US, "queue": "task", "function": "f"})
        log.append({"kind": "submit", "msg_id": a + "1", "t": T0 + 1100 * US, "queue": "task", "function": "f"})
        log.flush()
        log.append({"kind": "start", "msg_id": a + "0", "t": T0 + 2000 * US, "engine_id": 0})
        log.flush()
        log.append(
            {
                "kind": "complete",
                "msg_id": a + "0",
                "status": "ok",
                "started": T0 + 2000 * US,
                "completed": T0 + 3000 * US,
                "received": T0 + 4000 * US,
                "engine_id": 0,
            }
        )
    t1 = T0 + timedelta(hours=3)
    b = "bbbb_2_"
    with open_log(path, "a", header=header(t1)) as log:
        # task ids 0 and 1 of this segment, like a+"0" and a+"1" in the first
        log.append({"kind": "submit", "msg_id": b + "0", "t": t1 + 10 * US, "queue": "mux", "function": "g"})
        log.append({"kind": "submit", "msg_id": b + "1", "t": t1 + 20 * US, "queue": "mux", "function": "g"})
        log.flush()
        # frames that use only task ids defined earlier in this segment
        log.append({"kind": "start", "msg_id": b + "1", "t": t1 + 30 * US, "engine_id": 0})
        log.append({"kind": "label", "msg_id": b + "0", "name": "second segment"})
        log.flush()
        log.append({"kind": "mark", "t": t1 + 40 * US, "text": "in the second segment"})
        log.append(
            {
                "kind": "complete",
                "msg_id": b + "1",
                "status": "error",
                "completed": t1 + 50 * US,
                "engine_id": 0,
                "ename": "E",
                "evalue": "v",
            }
        )
    # ... and a third segment, which decodes again
    t2 = T0 + timedelta(hours=4)
    with open_log(path, "a", header=header(t2)) as log:
        log.append({"kind": "mark", "t": t2 + 5 * US, "text": "third"})

    intact, _, _ = read_log(path)
    i2, i3 = [i for i, e in enumerate(intact) if e["kind"] == "header"][1:]
    assert [e["kind"] for e in intact[i2:i3]] == [
        "header",
        "submit",
        "submit",
        "start",
        "label",
        "mark",
        "complete",
        "close",
    ]
    frames, _ = scan_frames(path.read_bytes())
    headers = [i for i, (_, payload) in enumerate(frames) if payload[1] == HEADER]
    assert len(headers) == 3
    second, third = headers[1], headers[2]
    corrupt_frame(path, second)
    lost = [offset for offset, _ in frames[second + 1 : third]]
    assert len(lost) == 3

    for name, (events, damage) in {"independent": read_log(path)[:2], "ipyrecorder": reference(path)}.items():
        # The header frame is a corrupt region; each later frame of its segment
        # is reported as undecodable, and none of their events is delivered.
        assert (frames[second][0], lost[0] - frames[second][0], "corrupt") in damage, name
        assert sorted(d[0] for d in damage if d[2] == "undecodable") == lost, name
        assert len(damage) == 1 + len(lost), name
        assert events == intact[:i2] + intact[i3:], name  # the second segment is gone, the third is not
        assert [e.get("text") for e in events if e["kind"] == "mark"] == ["third"], name
        # Nothing after the first segment's close is attributed to its tasks.
        after = events[[e["kind"] for e in events].index("close") + 1 :]
        assert not [e for e in after if e.get("msg_id", "").startswith(a)], name
        assert [e["kind"] for e in after] == ["header", "mark", "close"], name

    reader = ipyrecorder.LogReader(path)
    list(reader.events())
    reasons = [d.reason for d in reader.damage if d.offset in lost]
    assert len(reasons) == 3 and all("frame of a segment whose header was lost" in r for r in reasons)

    # The fold agrees: the first segment's tasks are untouched by the second.
    state = ipyrecorder.replay(path)
    assert sorted(state.tasks) == [a + "0", a + "1"]
    assert state.tasks[a + "1"].start_us is None and state.tasks[a + "1"].outcome is None
    assert state.tasks[a + "0"].name is None and state.tasks[a + "0"].status == "ok"
    assert sorted(d.offset for d in state.damage if d.reason.startswith("undecodable")) == lost

    # Without FRAME (a reader that skips it) the same damage silently attaches
    # the second segment's events to the first segment's tasks.
    old_events, _, _ = read_log(path, frame_aware=False)
    assert [e for e in old_events if e.get("name") == "second segment"][0]["msg_id"] == a + "0"


def test_lost_timebase_does_not_shift_later_frames(tmp_path):
    import ipyrecorder
    from ipyrecorder import open_log

    path = tmp_path / "jump.mpk"
    x = "xx_7_"
    jump = T0 + (2**31 + 5) * US  # more than 2**31 us after t0: forces a TIMEBASE
    with open_log(path, "w", header=header(T0)) as log:
        log.append({"kind": "submit", "msg_id": x + "0", "t": T0 + 1000 * US, "function": "f"})
        log.flush()
        log.append({"kind": "mark", "t": jump, "text": "jump"})  # this frame will be lost
        log.flush()
        log.append({"kind": "start", "msg_id": x + "0", "t": jump + 10 * US, "engine_id": 2})
        log.append({"kind": "mark", "t": jump + 20 * US, "text": "after"})
        log.flush()
        log.append(
            {
                "kind": "complete",
                "msg_id": x + "0",
                "status": "ok",
                "started": jump + 10 * US,
                "completed": jump + 30 * US,
                "received": jump + 40 * US,
                "engine_id": 2,
            }
        )

    frames, _ = scan_frames(path.read_bytes())
    lost = list(msgpack.Unpacker(io.BytesIO(frames[2][1])))
    assert [v[0] for v in lost] == [FRAME, TIMEBASE, 12] and lost[1][1] == us(jump)
    corrupt_frame(path, 2)

    for name, (events, damage) in {"independent": read_log(path)[:2], "ipyrecorder": reference(path)}.items():
        assert damage == [(frames[2][0], frames[3][0] - frames[2][0], "corrupt")], name
        by_kind = {e["kind"]: e for e in events}
        assert by_kind["start"]["t"] == jump + 10 * US, name
        assert by_kind["mark"] == {"kind": "mark", "t": jump + 20 * US, "text": "after", "data": {}}, name
        complete = by_kind["complete"]
        assert (complete["started"], complete["completed"], complete["received"]) == (
            jump + 10 * US,
            jump + 30 * US,
            jump + 40 * US,
        ), name
        assert by_kind["submit"]["t"] == T0 + 1000 * US, name
        assert "jump" not in [e.get("text") for e in events], name

    state = ipyrecorder.replay(path)
    task = state.tasks[x + "0"]
    assert (task.start_us, task.started_us, task.completed_us, task.received_us) == tuple(
        us(jump + n * US) for n in (10, 10, 30, 40)
    )
    assert [(m.t_us, m.text) for m in state.marks] == [(us(jump + 20 * US), "after")]

    # Without FRAME the lost TIMEBASE would shift every later time by the jump.
    old_events, _, _ = read_log(path, frame_aware=False)
    assert [e for e in old_events if e["kind"] == "start"][0]["t"] == T0 + 10 * US


def test_a_reader_that_skips_frame_decodes_intact_logs_alike(tmp_path):
    """Section 4.6/8: FRAME never changes what an intact log says."""
    path = tmp_path / "every.mpk"
    write_every_kind(path, future_frames=False)
    events, damage, arrays = read_log(path)
    assert not damage and sum(1 for a in arrays if a[0] == FRAME) >= 4
    assert read_log(path, frame_aware=False)[:2] == (events, [])


DOC_TYPES = {
    "task id": "task",
    "time": "time",
    "symbol": "symbol",
    "int code": "code",
    "true or nil": "flag",
    "map or nil": "map",
}


def documented_kinds() -> dict:
    """{kind name: (code, [(position, key, codec, required)])} from the tables of section 6."""
    text = DOC.read_text(encoding="utf-8")
    section = text[text.index("## 6. Event kinds") : text.index("## 7.")]
    kinds = {}
    for block in re.split(r"\n### 6\.\d+ ", section)[1:]:
        title, _, rest = block.partition("\n")
        rows = [
            [cell.strip() for cell in line.strip().strip("|").split("|")]
            for line in rest.splitlines()
            if re.match(r"\|\s*\d+\s*\|", line)
        ]
        fields = [
            (int(r[0]), r[1].strip("`"), DOC_TYPES.get(r[2], "value"), r[3] == "yes") for r in rows if len(r) == 6
        ]
        for name, code in re.findall(r"(\w+) — code (\d+)", title):
            kinds[name] = (int(code), fields)
    return kinds


def test_the_kind_table_is_the_documented_one():
    """events.KINDS (from which the codec, the fold and clipping derive) and docs/format.md agree."""
    from ipyrecorder.events import KINDS

    documented = documented_kinds()
    assert set(documented) == {kind.name for kind in KINDS}
    for kind in KINDS:
        code, fields = documented[kind.name]
        codec = {"status": "code", "queue": "code"}
        ours = [(i, f.key, codec.get(f.codec, f.codec), f.required) for i, f in enumerate(kind.fields, 1)]
        assert (code, fields) == (kind.code, ours), kind.name
