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
HEADER, SYMBOL, TASK, TIMEBASE = 0, 1, 2, 3
NAMES = {
    4: "submit", 5: "start", 6: "complete", 7: "stdout", 8: "stderr",
    9: "attempt_error", 10: "engine_register", 11: "engine_unregister",
    12: "mark", 13: "label", 14: "resubmit", 15: "close",
}  # fmt: skip
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
    """The decoding state of section 4: time base, symbols, task ids."""

    def __init__(self, t0):
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


def decode(a, seg: Segment | None):
    """(event dict or None, segment) for one wire array."""
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
    if kind not in NAMES:
        return None, seg  # unknown kinds are skipped (section 8)
    t = seg.time
    e = {"kind": NAMES[kind]}
    if kind == 4:
        e.update(msg_id=seg.task(req(1)), t=t(req(2)), queue=code(QUEUES, opt(3)),
                 function=seg.symbol(opt(4)), target=opt(5), label=seg.symbol(opt(6)),
                 chunk=opt(7))  # fmt: skip
    elif kind == 5:
        e.update(msg_id=seg.task(req(1)), t=t(req(2)), engine_id=opt(3))
    elif kind == 6:
        e.update(msg_id=seg.task(req(1)), status=code(STATUSES, req(2), optional=False),
                 started=t(opt(3)), completed=t(opt(4)), received=t(opt(5)),
                 engine_id=opt(6), ename=opt(7), evalue=opt(8))  # fmt: skip
    elif kind in (7, 8):
        e.update(msg_id=seg.task(req(1)), t=t(req(2)), text=req(3))
    elif kind == 9:
        e.update(msg_id=seg.task(req(1)), t=t(req(2)), engine_id=opt(3), ename=opt(4), evalue=opt(5))
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


def read_log(path):
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
                    event, seg = decode(a, seg)
                except Malformed:
                    damage.append((offset, 0, "undecodable"))
                    break  # skip the rest of this frame (section 7)
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
    return {"format": "ipyrecorder", "version": 1, "t0": t0, "recorder": "test",
            "ipyparallel": None, "python": "3", "host": "h", "pid": 1, **extra}  # fmt: skip


def write_every_kind(path):
    """A log with every event kind, three segments, TIMEBASE jumps both ways,
    an unknown kind and an extra trailing field."""
    from ipyrecorder import open_log

    s = "sess-abc_99_"
    with open_log(path, "w", header=header(T0, session="sess-abc")) as log:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": "u0", "present": True})
        log.append({"kind": "engine_register", "t": T0 + 500_000 * US, "engine_id": 1, "uuid": "u1"})
        log.append({"kind": "submit", "msg_id": s + "0", "t": T0 + 1_000_000 * US, "queue": "task",
                    "function": "f", "label": "lab", "chunk": 3})  # fmt: skip
        log.append({"kind": "submit", "msg_id": s + "1", "t": T0 + 1_000_100 * US, "queue": "mux",
                    "function": "f", "target": 1})  # fmt: skip
        log.append({"kind": "submit", "msg_id": s + "2", "t": T0 + 1_000_200 * US, "queue": "broadcast",
                    "function": "g", "target": [0, 1]})  # fmt: skip
        log.append({"kind": "submit", "msg_id": "nounderscore", "t": T0 + 1_000_300 * US})
        log.append({"kind": "submit", "msg_id": s + "007", "t": T0 + 1_000_400 * US, "function": "f"})
        log.flush()
        # an engine clock a little behind the client's: negative relative time
        log.append({"kind": "start", "msg_id": s + "0", "t": T0 - 3_000 * US, "engine_id": 0})
        log.append({"kind": "stdout", "msg_id": s + "0", "t": T0 + 1_100_000 * US, "text": "hello\n"})
        log.append({"kind": "stdout", "msg_id": s + "0", "t": T0 + 1_100_001 * US, "text": ""})
        log.append({"kind": "stderr", "msg_id": s + "0", "t": T0 + 1_100_002 * US, "text": "ünïcödé ✓\n"})
        log.append({"kind": "start", "msg_id": s + "1", "t": T0 + 1_200_000 * US, "engine_id": 1})
        log.append({"kind": "attempt_error", "msg_id": s + "1", "t": T0 + 1_300_000 * US, "engine_id": 1,
                    "ename": "ZeroDivisionError", "evalue": "division by zero"})  # fmt: skip
        log.append({"kind": "start", "msg_id": s + "1", "t": T0 + 1_400_000 * US, "engine_id": 0})
        log.flush()
        log.append({"kind": "complete", "msg_id": s + "0", "status": "ok", "started": T0 + 1_000_500 * US,
                    "completed": T0 + 1_900_000 * US, "received": T0 + 2_000_000 * US, "engine_id": 0})  # fmt: skip
        log.append({"kind": "complete", "msg_id": s + "1", "status": "error", "started": T0 + 1_400_000 * US,
                    "completed": T0 + 1_500_000 * US, "received": T0 + 1_600_000 * US, "engine_id": 0,
                    "ename": "ValueError", "evalue": "bad"})  # fmt: skip
        log.append({"kind": "complete", "msg_id": s + "2", "status": "aborted"})
        log.append({"kind": "label", "msg_id": s + "0", "name": "first"})
        log.append({"kind": "submit", "msg_id": s + "3", "t": T0 + 2_100_000 * US})
        log.append({"kind": "resubmit", "t": T0 + 2_100_000 * US, "msg_id": s + "1", "new_msg_id": s + "3"})
        log.append({"kind": "mark", "t": T0 + 2_200_000 * US, "text": "phase",
                    "data": {"n": 1, "xs": [1, 2], "b": b"\x00\x92\xce", "nested": {"k": None}, "f": 0.5}})  # fmt: skip
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
    # A frame from a future writer: an unknown kind, and a start (task id 0 of
    # the second segment) with an extra trailing field.
    payload = msgpack.packb([99, "future", {"x": 1}]) + msgpack.packb([5, 0, 10, 1, "extra", 7])
    with open(path, "ab") as fh:
        fh.write(make_frame(payload))


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
    assert set(range(16)) | {99} == kinds  # every kind on the wire, and the unknown one
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
    # The injected start is relative to the base the second segment's close set
    # (a TIMEBASE to "now", then close at +0).
    last_close = [e for e in events if e["kind"] == "close"][-1]
    assert arrays[-3:-2] == [(15, 0)]
    assert starts[-1] == {"kind": "start", "msg_id": "sess-abc_99_0", "t": last_close["t"] + 10 * US, "engine_id": 1}
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
    # Each segment's first frame holds the header alone.
    for offset, payload in frames:
        values = list(msgpack.Unpacker(io.BytesIO(payload), strict_map_key=False))
        if values[0][0] == HEADER:
            assert len(values) == 1


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
    assert len(expected) == 204
    events, damage, arrays = read_log(tmp_path / "tiny.mpk")
    assert not damage
    assert events == reference(tmp_path / "tiny.mpk")[0]
    assert [tuple(a) for a in arrays[1:8]] == [
        (1, 0, "s1_4242_"), (2, 0, 0, 7), (1, 1, "square"), (4, 0, 1000000, 0, 1),
        (5, 0, 1000500, 3), (3, 1704070800000000), (12, 0, "hi"),
    ]  # fmt: skip
    assert [e["kind"] for e in events] == ["header", "submit", "start", "mark", "close"]


def test_compactness_figure(tmp_path):
    """docs/format.md section 11 quotes 52.8 bytes per task; keep it honest."""
    from ipyrecorder import open_log

    path = tmp_path / "size.mpk"
    session = "12345678-90ab-cdef-1234-567890abcdef"
    log = open_log(path, "w", header=header(T0, session=session))
    before = os.path.getsize(path)
    for i in range(2000):
        msg_id, t = f"{session}_4242_{i}", T0 + (1000 * i + 137) * US
        log.append({"kind": "submit", "msg_id": msg_id, "t": t, "queue": "task", "function": "square"})
        log.append({"kind": "start", "msg_id": msg_id, "t": t + 2311 * US, "engine_id": i % 4})
        log.append({"kind": "complete", "msg_id": msg_id, "status": "ok", "started": t + 2411 * US,
                    "completed": t + 5123 * US, "received": t + 6789 * US, "engine_id": i % 4})  # fmt: skip
    log.flush()
    per_task = (os.path.getsize(path) - before) / 2000
    log.close()
    assert abs(per_task - 52.8) < 1.0, per_task
    events, damage, _ = read_log(path)
    assert not damage and len(events) == 1 + 3 * 2000 + 1


def test_complete_straddling_a_timebase_change(tmp_path):
    from ipyrecorder import open_log

    path = tmp_path / "straddle.mpk"
    with open_log(path, "w", header=header(T0)) as log:
        log.append({"kind": "complete", "msg_id": "x_1", "status": "ok",
                    "started": T0 + timedelta(minutes=35), "completed": T0 + timedelta(minutes=37)})  # fmt: skip
    events, _, _ = read_log(path)
    assert events[1]["started"] == T0 + timedelta(minutes=35)
