"""docs/format.md is the contract: a reader written from it alone agrees with ipyrecorder.

The independent reader below uses only the standard library, msgpack, and what
docs/format.md says (the kinds and their columns are parsed from its tables).
It is compared with ipyrecorder's public form (``ipyrecorder cat``) and its
damage reports, on logs with every kind of event and on every kind of damage.
"""

from __future__ import annotations

import io
import json
import os
import re
import struct
import zlib
from contextlib import redirect_stdout
from datetime import datetime, timedelta, timezone
from pathlib import Path

import msgpack
import pytest

DOC = Path(__file__).resolve().parent.parent / "docs" / "format.md"
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
US = timedelta(microseconds=1)


# ---------------------------------------------------------------------------
# The independent reader (docs/format.md)
# ---------------------------------------------------------------------------
MARKER = b"\xc1\x02"  # section 1
MAX_PAYLOAD = 2**28
VERSION = 2
MIN_US, MAX_US = (
    (datetime(1, 1, 1, tzinfo=timezone.utc) - EPOCH) // US,
    (datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone.utc) - EPOCH) // US,
)
STATUSES, QUEUES = ("ok", "error", "aborted"), ("task", "mux", "broadcast")  # section 6.13
FIRST_NEW_KIND = 17  # section 8
DOC_TYPES = {  # section 3.1's types, as the kind tables spell them
    "task": "task",
    "time": "time",
    "string index": "symbol",
    "int code": "code",
    "true or nil": "flag",
    "map or nil": "map",
    "int": "int",
    "int or nil": "int",
    "str": "text",
    "str or nil": "text",
}


def documented_kinds() -> dict:
    """{kind name: (code, [(column, key, type, required)])} from the tables of section 6."""
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


KINDS = {code: (name, fields) for name, (code, fields) in documented_kinds().items()}


class Bad(Exception):
    """A payload that breaks section 3's rules: (code, detail)."""


def unescape(piece: bytes) -> bytes:
    return piece.replace(b"\xc1\x01", b"\xc1")


def length_ok(n: int, check: int) -> bool:
    return check == zlib.crc32(struct.pack(">I", n)) & 0xFFFF and n <= MAX_PAYLOAD


def split(data: bytes):
    """Section 2: (offset, size, payload) of the frames that check out, and (offset, length, code) damage.

    "torn" is provisional here: read_log keeps it only where section 2.1 says a crash leaves one.
    """
    frames, damage, offset = [], [], 0
    pieces = data.split(MARKER)
    for k, piece in enumerate(pieces):
        if k == 0:
            if piece.endswith(b"\xc1") and len(pieces) == 1:  # half a marker at the end of the file
                if piece[:-1]:
                    damage.append((0, len(piece) - 1, "corrupt"))
                damage.append((len(piece) - 1, 1, "torn"))
            elif piece:
                damage.append((0, len(piece), "corrupt"))
            offset = len(piece)
            continue
        size = 2 + len(piece)
        last = k == len(pieces) - 1
        half = last and piece.endswith(b"\xc1")
        body = unescape(piece[:-1] if half else piece)
        n, check, crc = struct.unpack_from(">IHI", body) if len(body) >= 10 else (0, None, 0)
        if check is None:
            damage.append((offset, size, "torn"))
        elif not length_ok(n, check):
            damage.append((offset, size, "corrupt"))
        elif len(body) < 10 + n:
            whole = half and len(unescape(piece)) >= 10 + n  # its last byte was damaged into an escape
            damage.append((offset, size, "corrupt" if whole else "torn"))
        elif zlib.crc32(body[10 : 10 + n]) != crc:
            damage.append((offset, size, "corrupt"))
        else:
            # the frame's own bytes in the piece: its unescaped bytes plus one per escaped c1
            used = 2 + 10 + n + body[: 10 + n].count(b"\xc1")
            frames.append((offset, used, body[10 : 10 + n]))
            stray = size - half - used
            if stray == 1 and piece[used - 2 : used - 1] == b"\xc1":
                damage.append((offset + used, 1, "torn"))
            elif stray:
                damage.append((offset + used, stray, "corrupt"))
            if half:
                damage.append((offset + size - 1, 1, "torn"))
        offset += size
    return frames, damage


def is_int(x) -> bool:
    return type(x) is int


def plain(x) -> bool:
    if x is None or type(x) in (bool, str):
        return True
    if type(x) is int:
        return -(2**63) <= x < 2**64
    if type(x) is float:
        return x == x and abs(x) != float("inf")
    if type(x) in (list, tuple):
        return all(plain(v) for v in x)
    if type(x) is dict:
        return all(type(k) is str and plain(v) for k, v in x.items())
    return False


def check_value(typ, value, base, n_tasks, n_strings) -> bool:
    if typ in ("task", "symbol"):
        return is_int(value) and 0 <= value < (n_tasks if typ == "task" else n_strings)
    if typ == "time":
        return is_int(value) and MIN_US <= base + value <= MAX_US
    if typ == "int":
        return is_int(value) and abs(value) < 2**63
    if typ == "text":
        return type(value) is str
    if typ == "flag":
        return type(value) is bool
    if typ == "map":
        return type(value) is dict and plain(value)
    return plain(value)


def no_ext(code, data):
    raise Bad("malformed", f"extension type {code}")


def unpack(data):
    try:
        return msgpack.unpackb(data, raw=False, strict_map_key=False, ext_hook=no_ext, timestamp=0)
    except Bad:
        raise
    except Exception as exc:
        raise Bad("malformed", f"not msgpack: {exc}") from None


TYPED = {"b": (1, -(2**7)), "h": (2, -(2**15)), "i": (4, -(2**31)), "q": (8, -(2**63))}  # section 3.1


def untyped(column):
    """A typed column's values (section 3.1), or the column as it is; Bad if it is no typed column."""
    if type(column) is not bytes:
        return column
    tag = chr(column[0]) if column else ""
    if tag not in TYPED or (len(column) - 1) % TYPED[tag][0]:
        raise Bad("malformed", "typed column")
    size, nil = TYPED[tag]
    values = [int.from_bytes(column[i : i + size], "little", signed=True) for i in range(1, len(column), size)]
    return [None if v == nil else v for v in values]


def iso(us: int) -> str:
    return (EPOCH + us * US).isoformat(timespec="microseconds").replace("+00:00", "Z")


def decode_payload(payload: bytes):
    """Section 3: (header event or None, [public-form events], unknown kinds skipped)."""
    p = unpack(payload)
    if type(p) is not dict or not is_int(p.get("v")):
        raise Bad("malformed", "no version")
    if p["v"] > VERSION:
        raise Bad("unsupported", "newer version")
    if p["v"] != VERSION:
        raise Bad("malformed", "older version")
    seg, base = p.get("s"), p.get("b")
    if type(seg) is not bytes or len(seg) != 16 or not is_int(p.get("n")) or p["n"] < 0:
        raise Bad("malformed", "segment or number")
    if not is_int(base) or not MIN_US <= base <= MAX_US:
        raise Bad("malformed", "base")
    header = p.get("h")
    if header is not None:
        if type(header) is not dict or not all(type(k) is str for k in header) or not plain(header):
            raise Bad("malformed", "header")
        if header.get("format") != "ipyrecorder":
            raise Bad("not a log", "format")
        if not is_int(header.get("t0")) or not MIN_US <= header["t0"] <= MAX_US:
            raise Bad("malformed", "t0")
    if ("c" in p) == ("z" in p):
        raise Bad("malformed", "content")
    if "z" in p:
        if type(p["z"]) is not bytes:
            raise Bad("malformed", "deflated")
        inflater = zlib.decompressobj()
        try:
            raw = inflater.decompress(p["z"], MAX_PAYLOAD)
        except zlib.error:
            raise Bad("malformed", "inflate") from None
        if inflater.unconsumed_tail or not inflater.eof:
            raise Bad("malformed", "inflate")
        content = unpack(raw)
    else:
        content = p["c"]
    if type(content) is not list or len(content) < 4:
        raise Bad("malformed", "content")
    strings, tasks, order, events = content[:4]
    if type(strings) is not list or not all(type(s) is str for s in strings):
        raise Bad("malformed", "strings")
    if type(tasks) is not list or len(tasks) < 2:
        raise Bad("malformed", "tasks")
    prefixes, suffixes = (untyped(c) for c in tasks[:2])
    if type(prefixes) is not list or type(suffixes) is not list or len(prefixes) != len(suffixes):
        raise Bad("malformed", "tasks")
    msg_ids = []
    for prefix, suffix in zip(prefixes, suffixes):
        if not (is_int(prefix) and 0 <= prefix < len(strings)):
            raise Bad("malformed", "prefix")
        if suffix is not None and not (is_int(suffix) and 0 <= suffix < 2**63):
            raise Bad("malformed", "suffix")
        msg_ids.append(strings[prefix] + ("" if suffix is None else str(suffix)))
    if len(set(msg_ids)) != len(msg_ids):
        raise Bad("malformed", "a msg_id twice")
    if type(order) is not bytes or type(events) is not dict or set(order) != set(events):
        raise Bad("malformed", "order and events")
    unknown, columns_of = {}, {}
    for code, columns in events.items():
        if code not in KINDS:
            if not is_int(code) or code < FIRST_NEW_KIND:
                raise Bad("malformed", "unknown kind")
            unknown[code] = order.count(code)
            continue
        name, fields = KINDS[code]
        if type(columns) is not list:
            raise Bad("malformed", "columns")
        count = order.count(code)
        columns = list(columns)
        for col, key, typ, required in fields:
            if col < len(columns) and typ in ("task", "time", "symbol", "code", "int"):
                columns[col] = untyped(columns[col])
            column = columns[col] if col < len(columns) else [None] * count
            if type(column) is not list or len(column) != count:
                raise Bad("malformed", f"{name}.{key}")
            for value in column:
                if value is None:
                    if required:
                        raise Bad("malformed", f"{name}.{key} nil")
                    continue
                ok = check_value(typ, value, base, len(msg_ids), len(strings))
                if typ == "code":
                    ok = is_int(value) and 0 <= value < len(STATUSES if key == "status" else QUEUES)
                if not ok:
                    raise Bad("malformed", f"{name}.{key}")
        columns_of[code] = columns
    out, seen = [], {code: 0 for code in columns_of}
    for code in order:
        if code in unknown:
            continue
        name, fields = KINDS[code]
        j = seen[code]
        seen[code] += 1
        event = {"kind": name}
        for col, key, typ, _required in fields:
            column = columns_of[code][col] if col < len(columns_of[code]) else None
            value = None if column is None else column[j]
            if value is not None:
                if typ == "task":
                    value = msg_ids[value]
                elif typ == "symbol":
                    value = strings[value]
                elif typ == "time":
                    value = iso(base + value)
                elif typ == "code":
                    value = (STATUSES if key == "status" else QUEUES)[value]
            if typ == "flag":
                value = bool(value)
            if typ == "map" and value is None:
                value = {}
            event[key] = value
        out.append(event)
    head = None
    if header is not None:
        head = {"kind": "header", "segment": seg.hex(), **header, "t0": iso(header["t0"])}
    return head, out, unknown


def read_log(path):
    """(public-form events, damage as (offset, length, code)) for a whole log."""
    data = Path(path).read_bytes()
    frames, damage = split(data)
    events, decoded = [], {}
    for offset, size, payload in frames:
        try:
            head, out, unknown = decode_payload(payload)
        except Bad as exc:
            code = exc.args[0]
            if code == "not a log" and offset == 0:
                raise NotALog from None
            damage.append((offset, size, "unsupported" if code == "unsupported" else "malformed"))
            continue
        if unknown:
            damage.append((offset, 0, "unsupported"))
        decoded[offset] = head is not None
        events += ([head] if head else []) + out
    # section 2.1: torn only at the end of the file or before a segment's first frame
    final = []
    for offset, length, code in damage:
        end = offset + length
        if code == "torn" and not (end == len(data) or decoded.get(end)):
            code = "corrupt"
        final.append((offset, length, code))
    return events, sorted(final)


class NotALog(Exception):
    pass


# ---------------------------------------------------------------------------
# Logs written with ipyrecorder, and ipyrecorder's own reading of them
# ---------------------------------------------------------------------------
T0 = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=timezone.utc)
S = "sess-abc_99_"


def header(t0, **extra):
    return {"kind": "header", "t0": t0, "recorder": "test", "python": "3", "host": "h", "pid": 1, **extra}


def write_every_kind(path):
    """Every event kind, odd msg_ids, times far from the frame's base both ways, two segments."""
    from ipyrecorder import open_log

    with open_log(path, "w", header=header(T0, session="sess-abc")) as log:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": "u0", "present": True})
        log.append({"kind": "engine_register", "t": T0 + 500_000 * US, "engine_id": 1, "uuid": "u1"})
        log.append(
            {
                "kind": "submit",
                "msg_id": S + "0",
                "t": T0 + US,
                "queue": "task",
                "function": "f",
                "label": "lab",
                "chunk": 3,
            }
        )
        log.append(
            {"kind": "submit", "msg_id": S + "1", "t": T0 + 2 * US, "queue": "mux", "function": "f", "target": 1}
        )
        log.append(
            {
                "kind": "submit",
                "msg_id": S + "2",
                "t": T0 + 3 * US,
                "queue": "broadcast",
                "function": "g",
                "target": [0, None],
                "broadcast": S + "req",
            }
        )
        log.append({"kind": "submit", "msg_id": "nounderscore", "t": T0 + 4 * US})
        log.append({"kind": "submit", "msg_id": S + "007", "t": T0 + 5 * US, "function": "f", "request_bytes": 4096})
        log.append({"kind": "depend", "msg_id": S + "007", "on": S + "0"})
        log.append(
            {
                "kind": "engine_info",
                "t": T0 + 6 * US,
                "engine_id": 1,
                "host": "node17",
                "pid": 4242,
                "cpus": 64,
                "memory": 2**38,
            }
        )
        log.append(
            {
                "kind": "engine_sample",
                "t": T0 + 7 * US,
                "engine_id": 1,
                "cpu": 99.5,
                "rss": 300 << 20,
                "available": 2**37,
            }
        )
        log.append({"kind": "engine_sample", "t": T0 + 8 * US, "engine_id": 1})
        log.append({"kind": "depend", "msg_id": S + "007", "on": "before-the-log_1_5", "follow": True, "any": True})
        log.flush()
        log.append({"kind": "start", "msg_id": S + "0", "t": T0 - 3_000 * US, "engine_id": 0})
        log.append({"kind": "stdout", "msg_id": S + "0", "t": T0 + 1_100_000 * US, "text": "hello\n"})
        log.append({"kind": "stdout", "msg_id": S + "0", "t": T0 + 1_100_001 * US, "text": ""})
        log.append({"kind": "stderr", "msg_id": S + "0", "t": T0 + 1_100_002 * US, "text": "ünïcödé ✓ \x1b[31m\n"})
        log.append({"kind": "start", "msg_id": S + "1", "t": T0 + 1_200_000 * US, "engine_id": 1})
        log.append(
            {
                "kind": "attempt_error",
                "msg_id": S + "1",
                "t": T0 + 1_300_000 * US,
                "engine_id": 1,
                "ename": "ZeroDivisionError",
                "evalue": "division by zero",
                "traceback": "Traceback (most recent call last):\nZeroDivisionError: division by zero",
            }
        )
        log.append({"kind": "start", "msg_id": S + "1", "t": T0 + 1_400_000 * US, "engine_id": 0})
        log.flush()
        log.append(
            {
                "kind": "complete",
                "msg_id": S + "0",
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
                "msg_id": S + "1",
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
        log.append({"kind": "complete", "msg_id": S + "2", "status": "aborted"})
        log.append({"kind": "label", "msg_id": S + "0", "name": "first"})
        log.append({"kind": "submit", "msg_id": S + "3", "t": T0 + 2_100_000 * US})
        log.append({"kind": "resubmit", "t": T0 + 2_100_000 * US, "msg_id": S + "1", "new_msg_id": S + "3"})
        log.append(
            {
                "kind": "mark",
                "t": T0 + 2_200_000 * US,
                "text": "phase",
                "data": {"n": 1, "xs": [1, 2], "nested": {"k": None}, "f": 0.5, "s": "\xc1\x02 not a marker"},
            }
        )
        log.append({"kind": "mark", "t": T0 + (2**40 + 5) * US, "text": "late"})  # far after the frame's base
        log.append({"kind": "mark", "t": T0 - (2**40 + 100) * US, "text": "early"})  # and far before it
        log.append({"kind": "engine_unregister", "t": T0 + 3_000_000 * US, "engine_id": 1})
        log.close({"events": 24, "ok": 1, "error": 1})
    with open_log(path, "a", header=header(T0 + timedelta(hours=1), note="names added after the recording")) as log:
        log.append({"kind": "label", "msg_id": S + "0", "name": "renamed"})


def reference(path):
    """(public-form events, damage) from ipyrecorder: ``ipyrecorder cat`` and ``LogReader``."""
    import ipyrecorder
    from ipyrecorder.cli import main

    out = io.StringIO()
    with redirect_stdout(out):
        main(["cat", str(path)])
    events = [json.loads(line) for line in out.getvalue().split("\n") if line]
    reader = ipyrecorder.LogReader(path)
    frames = list(reader.frames())
    assert frames is not None
    return events, sorted((d.offset, d.length, d.code) for d in reader.damage)


@pytest.fixture
def every_kind(tmp_path):
    path = tmp_path / "every.mpk"
    write_every_kind(path)
    return path


def payload_frame(payload) -> bytes:
    """A frame around a payload (a dict is packed first), written as section 1 says."""
    if not isinstance(payload, bytes):
        payload = msgpack.packb(payload)
    n = len(payload)
    head = struct.pack(">IHI", n, zlib.crc32(struct.pack(">I", n)) & 0xFFFF, zlib.crc32(payload))
    return MARKER + (head + payload).replace(b"\xc1", b"\xc1\x01")


def events_frame(events, strings=(), tasks=((), ()), order=b"", **extra) -> dict:
    fields = {
        "v": 2,
        "s": b"\x07" * 16,
        "n": 1,
        "b": 10**15,
        "c": [list(strings), [list(t) for t in tasks], order, events],
    }
    return {**fields, **extra}


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------
def test_independent_reader_matches_ipyrecorder(every_kind):
    events, damage = read_log(every_kind)
    ref_events, ref_damage = reference(every_kind)
    assert damage == ref_damage == []
    assert events == ref_events
    assert {e["kind"] for e in events} == {"header"} | {name for name, _ in KINDS.values()}
    by_text = {e["text"]: e for e in events if e["kind"] == "mark"}
    assert by_text["late"]["t"] == iso((T0 - EPOCH) // US + 2**40 + 5)
    assert by_text["early"]["t"] == iso((T0 - EPOCH) // US - 2**40 - 100)
    assert by_text["phase"]["data"]["s"] == "\xc1\x02 not a marker"
    assert [e["name"] for e in events if e["kind"] == "label"] == ["first", "renamed"]
    headers = [e for e in events if e["kind"] == "header"]
    assert len(headers) == 2 and headers[0]["segment"] != headers[1]["segment"]
    assert headers[0]["session"] == "sess-abc" and headers[0]["t0"] == iso((T0 - EPOCH) // US)
    assert {e["msg_id"] for e in events if e["kind"] == "submit"} >= {"nounderscore", S + "007", S + "3"}


def test_frames_are_as_documented(every_kind):
    data = every_kind.read_bytes()
    assert zlib.crc32(b"123456789") == 0xCBF43926  # CRC-32/ISO-HDLC check value
    assert data.startswith(MARKER)
    frames, damage = split(data)
    assert not damage and sum(size for _, size, _ in frames) == len(data)
    segments = []
    for offset, size, payload in frames:
        escaped = data[offset + 2 : offset + size]
        assert MARKER not in escaped and all(escaped[i + 1] == 1 for i in range(len(escaped)) if escaped[i] == 0xC1)
        fields = msgpack.unpackb(payload, strict_map_key=False)
        if "h" in fields:
            segments.append([fields["s"], fields["n"]])
        else:
            assert fields["s"] == segments[-1][0] and fields["n"] == segments[-1][1] + 1  # numbered in order
            segments[-1][1] = fields["n"]
    assert len(segments) == 2 and segments[0][0] != segments[1][0]


def test_the_framing_snippet_of_the_doc(every_kind):
    text = DOC.read_text(encoding="utf-8")
    snippet = re.search(r"<!-- framing-snippet.*?```python\n(.*?)```", text, re.S).group(1)
    scope: dict = {}
    exec(snippet, scope)  # the doc's code, verbatim
    from ipyrecorder import framing

    assert scope["frame"](b"\xc1\x02 payload \xc1") == framing.frame(b"\xc1\x02 payload \xc1")
    data = every_kind.read_bytes()
    assert [(o, p) for o, p in scope["frames"](data)] == [(o, p) for o, _, p in split(data)[0]]


def test_damage_is_handled_like_ipyrecorder(every_kind):
    data = bytearray(every_kind.read_bytes())
    frames, _ = split(bytes(data))
    first, third = frames[1][0], frames[3][0]
    data[first + 20] ^= 0xFF  # a flipped byte in one frame
    data[third + 1] ^= 0x04  # a lost marker: the frame merges into the one before it
    garbage = b"junk" + MARKER + struct.pack(">IHI", 2**30, 0, 0) + payload_frame(b"\x93\x01")[:-1]
    data[frames[4][0] : frames[4][0]] = garbage  # garbage with a fake marker and a torn frame
    data = data[:-3]  # and a torn last frame
    every_kind.write_bytes(bytes(data))
    events, damage = read_log(every_kind)
    ref_events, ref_damage = reference(every_kind)
    assert damage == ref_damage and events == ref_events
    codes = [code for _, _, code in damage]
    assert damage[-1][2] == "torn" and codes.count("corrupt") >= 3
    assert (first, frames[2][0] - first, "corrupt") in damage
    assert (third, frames[4][0] - third + len(b"junk"), "corrupt") in damage  # the marker-less frame, and the junk
    untouched = frames[2][0]  # the frame between the two damaged ones reads whole
    assert not any(o <= untouched < o + n for o, n, _ in damage)


MALFORMED = {
    "not a map": [1, 2, 3],
    "no version": {"s": b"\x07" * 16},
    "segment id too short": {**events_frame({}), "s": b"\x07" * 15},
    "negative number": {**events_frame({}), "n": -1},
    "time base past year 9999": {**events_frame({}), "b": 2**62},
    "both content and deflated": {**events_frame({}), "z": zlib.compress(msgpack.packb([[], [[], []], b"", {}]))},
    "deflated that does not inflate": {k: v for k, v in {**events_frame({}), "z": b"not zlib"}.items() if k != "c"},
    "negative task index": events_frame({13: [[-1], ["n"]]}, ["p_"], ([0], [1]), b"\x0d"),
    "task index past the table": events_frame({13: [[1], ["n"]]}, ["p_"], ([0], [1]), b"\x0d"),
    "negative prefix": events_frame({}, ["p_"], ([-1], [1])),
    "suffix not an int": events_frame({}, ["p_"], ([0], ["x"])),
    "negative suffix": events_frame({}, ["p_"], ([0], [-1])),
    "a msg_id twice": events_frame({}, ["p_", "p_1"], ([0, 1], [1, None])),
    "nil in a required field": events_frame({13: [[0], [None]]}, ["p_"], ([0], [1]), b"\x0d"),
    "required column missing": events_frame({13: [[0]]}, ["p_"], ([0], [1]), b"\x0d"),
    "status code out of range": events_frame({6: [[0], [3]]}, ["p_"], ([0], [1]), b"\x06"),
    "negative status code": events_frame({6: [[0], [-1]]}, ["p_"], ([0], [1]), b"\x06"),
    "queue code out of range": events_frame({4: [[0], [0], [7]]}, ["p_"], ([0], [1]), b"\x04"),
    "time past year 9999": events_frame({12: [[2**62], ["x"]]}, order=b"\x0c"),
    "time not an int": events_frame({12: [[1.5], ["x"]]}, order=b"\x0c"),
    "text not a string": events_frame({12: [[0], [7]]}, order=b"\x0c"),
    "engine id not an int": events_frame({11: [[0], ["e"]]}, order=b"\x0b"),
    "column of the wrong length": events_frame({12: [[0, 1], ["x"]]}, order=b"\x0c"),
    "order without its events": events_frame({}, order=b"\x0c"),
    "unknown kind below 17": events_frame({16: [[0]]}, order=b"\x10"),
    "string index past the table": events_frame({4: [[0], [0], [0], [5]]}, ["p_"], ([0], [1]), b"\x04"),
    "mark data not a map": events_frame({12: [[0], ["x"], [[1]]]}, order=b"\x0c"),
    "map with a non-string key": events_frame({12: [[0], ["x"], [{1: 2}]]}, order=b"\x0c"),
    "NaN in mark data": events_frame({12: [[0], ["x"], [{"f": float("nan")}]]}, order=b"\x0c"),
    "strings not strings": events_frame({}, [b"bytes"]),
    "typed column of an unknown type": events_frame({12: [b"z\x00", ["x"]]}, order=b"\x0c"),
    "typed column cut mid-value": events_frame({12: [b"i\x00\x00", ["x"]]}, order=b"\x0c"),
    "typed column with a negative task": events_frame({13: [b"b\xff", ["n"]]}, ["p_"], ([0], [1]), b"\x0d"),
    "typed column of text": events_frame({12: [[0], b"q" + bytes(8)]}, order=b"\x0c"),
    "typed column of the wrong length": events_frame({12: [b"h\x00\x00\x00\x00", ["x"]]}, order=b"\x0c"),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_payloads_are_damage_never_errors(tmp_path, case):
    from ipyrecorder import replay
    from ipyrecorder.cli import ExitStatus, main

    path = tmp_path / "bad.mpk"
    write_every_kind(path)
    good = len(path.read_bytes())
    with open(path, "ab") as fh:
        fh.write(payload_frame(MALFORMED[case]))
    events, damage = read_log(path)
    ref_events, ref_damage = reference(path)
    assert damage == ref_damage == [(good, len(path.read_bytes()) - good, "malformed")], case
    assert events == ref_events
    state = replay(path)  # folds, with the frame listed as damage
    assert [(d.offset, d.code) for d in state.damage] == [(good, "malformed")]
    assert main(["check", str(path)]) == ExitStatus.DAMAGED


def test_payload_bytes_outside_the_format_are_malformed(tmp_path):
    """An ext type, invalid UTF-8, a msgpack value cut short: all malformed, each in its frame."""
    path = tmp_path / "bad.mpk"
    write_every_kind(path)
    start = len(path.read_bytes())
    content = msgpack.packb(events_frame({12: [[0], ["x"]]}, order=b"\x0c"))
    bad = [
        content.replace(b"\xa1x", b"\xa1\xff"),  # "x" -> an invalid UTF-8 byte
        content.replace(b"\xa1x", b"\xd4\x01\x00"),  # "x" -> fixext 1
        content.replace(b"\xa1x", b"\xd6\xff\x00\x00\x00\x00"),  # "x" -> a msgpack timestamp
        content[:-2],  # cut short
        content + b"\x00",  # extra bytes after the map
    ]
    with open(path, "ab") as fh:
        for payload in bad:
            fh.write(payload_frame(payload))
    events, damage = read_log(path)
    ref_events, ref_damage = reference(path)
    assert damage == ref_damage and events == ref_events
    assert [code for _, _, code in damage] == ["malformed"] * len(bad) and damage[0][0] == start


def test_versions_and_extensions(tmp_path):
    """A newer version's frame is skipped; a later kind (code 17 and up) is skipped within its frame."""
    path = tmp_path / "newer.mpk"
    write_every_kind(path)
    start = len(path.read_bytes())
    newer = payload_frame({**events_frame({}), "v": 3, "anything": "goes"})
    extended = events_frame(
        {12: [[0], ["kept"], [None], ["an extra column"]], 40: [[1, 2]]}, order=b"\x28\x0c\x28", extra_key=1
    )
    with open(path, "ab") as fh:
        fh.write(newer + payload_frame(extended))
    events, damage = read_log(path)
    ref_events, ref_damage = reference(path)
    assert damage == ref_damage == [(start, len(newer), "unsupported"), (start + len(newer), 0, "unsupported")]
    assert events == ref_events and events[-1] == {
        "kind": "mark",
        "t": iso(10**15),
        "text": "kept",
        "data": {},
    }


def test_user_bytes_cannot_be_taken_for_frames(tmp_path):
    """A mark, an output and close stats holding a copy of a log, next to a damaged frame, read as
    what they are: the damaged frame is lost, and nothing is made of the copies."""
    from ipyrecorder import open_log

    inner = tmp_path / "inner.mpk"
    write_every_kind(inner)
    copy = inner.read_bytes().decode("latin-1")  # the log's bytes, as text
    path = tmp_path / "outer.mpk"
    with open_log(path, "w", header=header(T0)) as log:
        log.append({"kind": "mark", "t": T0, "text": "copy", "data": {"log": copy}})
        log.flush()
        log.append({"kind": "stdout", "msg_id": "p_1", "t": T0, "text": copy})
        log.flush()
        log.close({"copy": copy})
    data = bytearray(path.read_bytes())
    frames, _ = split(bytes(data))
    for k in range(1, len(frames)):
        damaged = bytearray(data)
        damaged[frames[k][0] + 4] ^= 0x01  # a CRC byte of frame k
        path.write_bytes(bytes(damaged))
        events, damage = read_log(path)
        ref_events, ref_damage = reference(path)
        assert damage == ref_damage == [(frames[k][0], frames[k][1], "corrupt")]
        assert events == ref_events and all(e["kind"] != "header" for e in events[1:])


def test_concatenated_copies_keep_their_segments(tmp_path, every_kind):
    """``cat a.mpk a.mpk``: segments are told apart by their random ids, not by their t0."""
    from ipyrecorder import replay

    one = every_kind.read_bytes()
    path = tmp_path / "twice.mpk"
    frames, _ = split(one)
    damaged = bytearray(one)
    damaged[frames[0][0] + 20] ^= 0xFF  # the second copy's first header is lost
    path.write_bytes(one + bytes(damaged))
    events, damage = read_log(path)
    ref_events, ref_damage = reference(path)
    assert events == ref_events and damage == ref_damage == [(len(one), frames[0][1], "corrupt")]
    whole = replay(every_kind)
    state = replay(path)
    assert {m: t.to_dict() for m, t in state.tasks.items()}.keys() == whole.tasks.keys()
    assert state.tasks[S + "1"].to_dict() == whole.tasks[S + "1"].to_dict()


def test_the_kind_table_is_the_documented_one():
    """events.KINDS (from which the writer, the reader, the fold and clipping derive) and the doc agree."""
    from ipyrecorder.events import KINDS as OURS

    documented = documented_kinds()
    assert set(documented) == {kind.name for kind in OURS}
    for kind in OURS:
        code, fields = documented[kind.name]
        codec = {"status": "code", "queue": "code"}
        ours = [(i, f.key, codec.get(f.codec, f.codec), f.required) for i, f in enumerate(kind.fields)]
        assert (code, fields) == (kind.code, ours), kind.name


def size_log(path, flush_every):
    """The workload of section 11: 2000 tasks of three events, ipyparallel-style msg_ids."""
    from ipyrecorder import open_log

    session = "12345678-90ab-cdef-1234-567890abcdef"
    log = open_log(path, "w", header=header(T0))
    while MARKER[:1] in log.segment:  # its escape would add a byte to every frame: the figures assume none
        log.close()
        log = open_log(path, "w", header=header(T0))
    before = os.path.getsize(path)
    for i in range(2000):
        msg_id, t = f"{session}_4242_{i}", T0 + (1000 * i + 137) * US
        log.append({"kind": "submit", "msg_id": msg_id, "t": t, "queue": "task", "function": "square"})
        log.append({"kind": "start", "msg_id": msg_id, "t": t + 2311 * US, "engine_id": i % 4})
        log.append(
            {
                "kind": "complete",
                "msg_id": msg_id,
                "status": "ok",
                "started": t + (2411 + i % 37) * US,
                "completed": t + (5123 + i % 101) * US,
                "received": t + (6789 + i % 53) * US,
                "engine_id": i % 4,
            }
        )
        if flush_every and (i + 1) % flush_every == 0:
            log.flush()
    log.flush()
    written = os.path.getsize(path) - before
    log.close()
    return written / 2000


@pytest.mark.parametrize("flush_every", [None, 25, 5, 1])
def test_the_size_figures(tmp_path, flush_every):
    """docs/format.md section 11 quotes these figures; keep them honest."""
    per_task = size_log(tmp_path / "size.mpk", flush_every)
    text = DOC.read_text(encoding="utf-8")
    row = {None: "one frame", 25: "a frame every 25 tasks", 5: "a frame every 5 tasks", 1: "a frame every task"}
    assert re.search(rf"\| {row[flush_every]}[^|]*\| {per_task:.1f} \|", text), per_task
    events, damage = read_log(tmp_path / "size.mpk")
    assert not damage and len(events) == 1 + 3 * 2000 + 1
