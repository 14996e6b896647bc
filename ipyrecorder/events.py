"""Event kinds, declared once, and the public event dicts they are read into.

Every event kind is one ``Kind`` in ``KINDS``: its code, its name and its fields
in order (docs/format.md, section 6, is the contract). In a frame the events
are columns (``payload.py``); the fold reads them as wire rows ``(code, field
values...)``; tools see plain dicts with a ``"kind"`` name, msg_ids spelled out
and times as UTC datetimes (``frame_events``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

FORMAT_NAME = "ipyrecorder"


@dataclass(frozen=True)
class Field:
    """One position of an event's wire array: its key in event dicts, how it is stored, and
    whether every event of its kind has it.

    ``codec``: ``task`` a task (a msg_id), ``time`` µs relative to the time base, ``symbol``
    an interned string, ``status`` / ``queue`` a code (STATUSES, QUEUES), ``flag`` true or
    omitted, ``map`` a map omitted when empty, ``int`` an integer, ``text`` a string,
    ``value`` any msgpack value made of nil, booleans, numbers, strings, arrays and maps.
    """

    key: str
    codec: str = "value"
    required: bool = False


@dataclass(frozen=True)
class Kind:
    """An event kind: its wire code, its name, and its fields in wire order (position 1 on)."""

    code: int
    name: str
    fields: tuple

    def at(self, *keys) -> tuple:
        """The wire positions of ``keys``."""
        positions = {f.key: i for i, f in enumerate(self.fields, 1)}
        return tuple(positions[k] for k in keys)

    def positions(self, codec: str) -> tuple:
        """The wire positions of the fields stored with ``codec`` (``time``, ``task``...)."""
        return tuple(i for i, f in enumerate(self.fields, 1) if f.codec == codec)


_TASK = Field("msg_id", "task", required=True)
_T = Field("t", "time", required=True)
_ENGINE = Field("engine_id", "int")
_ERROR = (Field("ename", "text"), Field("evalue", "text"), Field("traceback", "text"))

# Every event kind, declared once: the codec, the decoder, clipping (replay's ``until``)
# and the positions the fold reads are derived from this table; docs/format.md section 6
# describes the same table, and a test holds the two together.
KINDS = (
    Kind(
        4,
        "submit",
        (
            _TASK,
            _T,
            Field("queue", "queue"),
            Field("function", "symbol"),
            Field("target"),
            Field("label", "symbol"),
            Field("chunk", "int"),
            Field("broadcast", "symbol"),
            Field("request_bytes", "int"),
        ),
    ),
    Kind(5, "start", (_TASK, _T, _ENGINE)),
    Kind(
        6,
        "complete",
        (
            _TASK,
            Field("status", "status", required=True),
            Field("started", "time"),
            Field("completed", "time"),
            Field("received", "time"),
            _ENGINE,
            *_ERROR,
            Field("reply_bytes", "int"),
        ),
    ),
    Kind(7, "stdout", (_TASK, _T, Field("text", "text", required=True))),
    Kind(8, "stderr", (_TASK, _T, Field("text", "text", required=True))),
    Kind(9, "attempt_error", (_TASK, _T, _ENGINE, *_ERROR)),
    Kind(
        10,
        "engine_register",
        (_T, Field("engine_id", "int", required=True), Field("uuid", "text"), Field("present", "flag")),
    ),
    Kind(11, "engine_unregister", (_T, Field("engine_id", "int", required=True))),
    Kind(12, "mark", (_T, Field("text", "text", required=True), Field("data", "map"))),
    Kind(13, "label", (_TASK, Field("name", "text", required=True))),
    Kind(14, "resubmit", (_T, _TASK, Field("new_msg_id", "task", required=True))),
    Kind(15, "close", (_T, Field("stats", "map"), Field("summary", "map"))),
    Kind(
        17,
        "depend",
        (_TASK, Field("on", "symbol", required=True), Field("follow", "flag"), Field("any", "flag")),
    ),
    Kind(
        18,
        "engine_info",
        (
            _T,
            Field("engine_id", "int", required=True),
            Field("host", "text"),
            Field("pid", "int"),
            Field("cpus", "int"),
            Field("memory", "int"),
        ),
    ),
    Kind(
        19,
        "engine_sample",
        (
            _T,
            Field("engine_id", "int", required=True),
            Field("cpu", "value"),
            Field("rss", "int"),
            Field("available", "int"),
        ),
    ),
)
KIND = {kind.name: kind for kind in KINDS}
# The codes by name, for the fold and the tools that switch on them.
SUBMIT = KIND["submit"].code
START = KIND["start"].code
COMPLETE = KIND["complete"].code
STDOUT = KIND["stdout"].code
STDERR = KIND["stderr"].code
ATTEMPT_ERROR = KIND["attempt_error"].code
ENGINE_REGISTER = KIND["engine_register"].code
ENGINE_UNREGISTER = KIND["engine_unregister"].code
MARK = KIND["mark"].code
LABEL = KIND["label"].code
RESUBMIT = KIND["resubmit"].code
CLOSE = KIND["close"].code
DEPEND = KIND["depend"].code
ENGINE_INFO = KIND["engine_info"].code
ENGINE_SAMPLE = KIND["engine_sample"].code

# The wire positions the fold (state.py) and ``info`` (summary.py) read, named after the fields.
SUBMIT_TASK, SUBMIT_T, SUBMIT_QUEUE, SUBMIT_FUNCTION, SUBMIT_TARGET, SUBMIT_LABEL, SUBMIT_CHUNK, SUBMIT_BROADCAST = (
    KIND["submit"].at("msg_id", "t", "queue", "function", "target", "label", "chunk", "broadcast")
)
(SUBMIT_BYTES,) = KIND["submit"].at("request_bytes")
START_TASK, START_T, START_ENGINE = KIND["start"].at("msg_id", "t", "engine_id")
COMPLETE_TASK, COMPLETE_STATUS, COMPLETE_STARTED, COMPLETE_COMPLETED, COMPLETE_RECEIVED = KIND["complete"].at(
    "msg_id", "status", "started", "completed", "received"
)
COMPLETE_ENGINE, COMPLETE_ENAME, COMPLETE_EVALUE, COMPLETE_TRACEBACK, COMPLETE_BYTES = KIND["complete"].at(
    "engine_id", "ename", "evalue", "traceback", "reply_bytes"
)
OUTPUT_TASK, OUTPUT_TEXT = KIND["stdout"].at("msg_id", "text")
assert KIND["stderr"].fields == KIND["stdout"].fields  # the folds read both alike
ATTEMPT_TASK, *ATTEMPT_FIELDS = KIND["attempt_error"].at("msg_id", "t", "engine_id", "ename", "evalue", "traceback")
REGISTER_T, REGISTER_ENGINE, REGISTER_UUID, REGISTER_PRESENT = KIND["engine_register"].at(
    "t", "engine_id", "uuid", "present"
)
UNREGISTER_T, UNREGISTER_ENGINE = KIND["engine_unregister"].at("t", "engine_id")
MARK_T, MARK_TEXT, MARK_DATA = KIND["mark"].at("t", "text", "data")
LABEL_TASK, LABEL_NAME = KIND["label"].at("msg_id", "name")
RESUBMIT_TASK, RESUBMIT_NEW = KIND["resubmit"].at("msg_id", "new_msg_id")
CLOSE_T, CLOSE_STATS, CLOSE_SUMMARY = KIND["close"].at("t", "stats", "summary")
DEPEND_TASK, DEPEND_ON, DEPEND_FOLLOW, DEPEND_ANY = KIND["depend"].at("msg_id", "on", "follow", "any")
INFO_ENGINE, INFO_HOST, INFO_PID, INFO_CPUS, INFO_MEMORY = KIND["engine_info"].at(
    "engine_id", "host", "pid", "cpus", "memory"
)
SAMPLE_T, SAMPLE_ENGINE, SAMPLE_CPU, SAMPLE_RSS, SAMPLE_AVAILABLE = KIND["engine_sample"].at(
    "t", "engine_id", "cpu", "rss", "available"
)

# Small closed vocabularies are integers on the wire.
STATUSES = ("ok", "error", "aborted")
STATUS_CODES = {name: code for code, name in enumerate(STATUSES)}
QUEUES = ("task", "mux", "broadcast")  # load-balanced, direct, broadcast views
QUEUE_CODES = {name: code for code, name in enumerate(QUEUES)}

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ISO_Z = sys.version_info >= (3, 11)  # fromisoformat reads a trailing "Z" itself


def to_us(value) -> int | None:
    """Microseconds since the Unix epoch from a datetime, ISO string or epoch float.

    ipyparallel hands out all three (and naive or local-zone datetimes); every
    time in a log is normalised to UTC here, once.
    """
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value if _ISO_Z else value.replace("Z", "+00:00"))
    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.astimezone()  # naive means local time, as ipyparallel means it
        delta = value - EPOCH  # (faster than dividing the timedelta)
        return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    if isinstance(value, (int, float)):
        return round(value * 1_000_000)
    raise TypeError(f"not a time: {value!r}")


def from_us(us: int | None) -> datetime | None:
    """The UTC datetime for microseconds since the epoch."""
    return None if us is None else EPOCH + timedelta(microseconds=us)


MAX_SUFFIX = 10**18  # a msg_id's numeric suffix has at most 18 digits


def split_msg_id(msg_id: str):
    """Split a msg_id into a shared prefix and a short suffix (an int where exact).

    ipyparallel msg_ids look like ``<session>_<pid>_<counter>``: the prefix is
    stored once as a symbol and each task carries only its counter.
    """
    head, sep, tail = msg_id.rpartition("_")
    prefix = head + sep
    if tail.isascii() and tail.isdigit() and len(tail) < 19 and (tail == "0" or tail[0] != "0"):
        return prefix, int(tail)
    return prefix, tail


def frame_events(frame) -> list:
    """The event dicts of one frame (``payload.Frame``), its segment's header first if it has it."""
    out = []
    if frame.header is not None:
        out.append({"kind": "header", **frame.header, "t0": from_us(frame.header["t0"])})
    base, msg_ids, strings = frame.base, frame.msg_ids, frame.strings

    def t(rel):
        return None if rel is None else from_us(base + rel)

    for a in frame.rows():
        out.append(_DECODERS[a[0]](msg_ids, a, len(a), t, strings))
    return out


def public_events(frame) -> list:
    """One frame's events in the public form (docs/format.md, section 7): JSON-ready dicts."""
    out = frame_events(frame)
    if frame.header is not None:  # the segment's id goes with its header
        out[0] = {"kind": "header", "segment": frame.segment.hex(), **{k: v for k, v in out[0].items() if k != "kind"}}
    return [{key: _public(value) for key, value in event.items()} for event in out]


def _public(value):
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds").replace("+00:00", "Z")
    if isinstance(value, (list, tuple)):
        return [_public(v) for v in value]
    if isinstance(value, dict):
        return {k: _public(v) for k, v in value.items()}
    return value


# -- the decoder of each kind, derived from KINDS ----------------------------------------------------
# Written out from each kind's fields, as fast as hand-written code (``cat`` and sinks read events).
def _decoder_source(kind: Kind) -> str:
    """``decode_NAME(msg_ids, a, n, t, sym) -> event dict`` for one wire row ``a`` (``n`` = len(a))."""
    items = [f'"kind": {kind.name!r}']
    for i, f in enumerate(kind.fields, 1):
        raw = f"a[{i}]" if f.required else f"(a[{i}] if n > {i} else None)"
        if f.codec == "task":
            value = f"msg_ids[{raw}]"
        elif f.codec == "time":
            value = f"t({raw})"
        elif f.codec in ("symbol", "queue"):
            table = "sym" if f.codec == "symbol" else "QUEUES"
            value = f"{table}[{raw}]" if f.required else f"(None if n <= {i} or a[{i}] is None else {table}[a[{i}]])"
        elif f.codec == "status":
            value = f"STATUSES[{raw}]"
        elif f.codec == "flag":
            value = f"bool({raw})"
        elif f.codec == "map":
            value = f"({raw} or {{}})"
        else:
            value = raw
        items.append(f"{f.key!r}: {value}")
    return f"def decode_{kind.name}(msg_ids, a, n, t, sym):\n    return {{{', '.join(items)}}}"


def _compile(source: str, name: str):
    scope = {"QUEUE_CODES": QUEUE_CODES, "STATUS_CODES": STATUS_CODES, "QUEUES": QUEUES, "STATUSES": STATUSES}
    exec(compile(source, f"<ipyrecorder.events: {name}>", "exec"), scope)
    return scope[name]


_DECODERS = {kind.code: _compile(_decoder_source(kind), f"decode_{kind.name}") for kind in KINDS}
