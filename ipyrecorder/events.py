"""Event kinds and the compact codec between public event dicts and wire arrays.

On the wire every event is a msgpack array whose first element is its kind code
(docs/format.md is the contract). In Python, tools see plain dicts with a
``"kind"`` name, msg_ids spelled out and times as UTC datetimes. The ``Encoder``
and ``Decoder`` hold the per-segment state that makes the wire form compact:
interned strings (symbols), short task ids and the time base.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from .errors import FormatError, NotALog, UnsupportedVersion

FORMAT_NAME = "ipyrecorder"
FORMAT_VERSION = 1

# Encoding-only kinds: they define what later events refer to, and are consumed by readers.
HEADER = 0  # [0, {fields}]                         opens a segment (docs/format.md 4.2)
SYMBOL = 1  # [1, sym, text]
TASK = 2  # [2, tid, prefix_sym, suffix]            defines a task id
TIMEBASE = 3  # [3, epoch_us]                         later times are relative to it
FRAME = 16  # [16, segment_t0_us, base_us]  opens every frame but a segment's first


@dataclass(frozen=True)
class Field:
    """One position of an event's wire array: its key in event dicts, how it is stored, and
    whether every event of its kind has it.

    ``codec``: ``task`` a task id, ``time`` µs relative to the time base, ``symbol`` an
    interned string, ``status`` / ``queue`` a code (STATUSES, QUEUES), ``flag`` true or
    omitted, ``map`` a map omitted when empty, ``value`` stored as it is.
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
_ENGINE = Field("engine_id")
_ERROR = (Field("ename"), Field("evalue"), Field("traceback"))

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
            Field("chunk"),
            Field("broadcast", "symbol"),
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
        ),
    ),
    Kind(7, "stdout", (_TASK, _T, Field("text", required=True))),
    Kind(8, "stderr", (_TASK, _T, Field("text", required=True))),
    Kind(9, "attempt_error", (_TASK, _T, _ENGINE, *_ERROR)),
    Kind(10, "engine_register", (_T, Field("engine_id", required=True), Field("uuid"), Field("present", "flag"))),
    Kind(11, "engine_unregister", (_T, Field("engine_id", required=True))),
    Kind(12, "mark", (_T, Field("text", required=True), Field("data", "map"))),
    Kind(13, "label", (_TASK, Field("name", required=True))),
    Kind(14, "resubmit", (_T, _TASK, Field("new_msg_id", "task", required=True))),
    Kind(15, "close", (_T, Field("stats", "map"))),
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

# Small closed vocabularies are integers on the wire.
STATUSES = ("ok", "error", "aborted")
STATUS_CODES = {name: code for code, name in enumerate(STATUSES)}
QUEUES = ("task", "mux", "broadcast")  # load-balanced, direct, broadcast views
QUEUE_CODES = {name: code for code, name in enumerate(QUEUES)}

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ISO_Z = sys.version_info >= (3, 11)  # fromisoformat reads a trailing "Z" itself
# Keep encoded times within int32 (5 bytes in msgpack) by moving the base.
TIMEBASE_SPAN = 2**31 - 1


def check_header(array, path) -> dict:
    """Validate a segment's header array and return its fields."""
    if not (isinstance(array, (list, tuple)) and len(array) == 2 and array[0] == HEADER):
        raise NotALog(f"{path} does not start with an ipyrecorder header")
    fields = array[1]
    if not isinstance(fields, dict) or fields.get("format") != FORMAT_NAME:
        raise NotALog(f"{path} is not an ipyrecorder log")
    version = fields.get("version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise UnsupportedVersion(
            f"{path} uses log format version {version}; this ipyrecorder reads up to "
            f"{FORMAT_VERSION} (upgrade ipyrecorder)"
        )
    return fields


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


def _trim(array: list) -> list:
    """Drop trailing None fields: the format lets trailing fields be omitted."""
    while array[-1] is None:
        array.pop()
    return array


class Encoder:
    """Turns public event dicts into wire arrays for one log segment.

    ``encode`` is all-or-nothing: if the caller cannot pack what it returned,
    ``undo`` forgets the symbols and task ids that call defined.
    """

    def __init__(self, t0_us: int):
        self.base = t0_us
        self.symbols: dict[str, int] = {}
        self.tids: dict[str, int] = {}
        self._out: list = []
        self._undo: list = []

    # -- helpers that may emit definition events before the event itself
    def symbol(self, text):
        if text is None:
            return None
        sym = self.symbols.get(text)
        if sym is None:
            if not isinstance(text, str):
                raise FormatError(f"expected a string, not {text!r}")
            sym = self.symbols[text] = len(self.symbols)
            self._out.append([SYMBOL, sym, text])
            self._undo.append((self.symbols, text))
        return sym

    def tid(self, msg_id: str) -> int:
        tid = self.tids.get(msg_id)
        if tid is None:
            if not isinstance(msg_id, str):
                raise FormatError(f"msg_id must be a string, not {msg_id!r}")
            prefix, suffix = split_msg_id(msg_id)
            sym = self.symbol(prefix)
            tid = self.tids[msg_id] = len(self.tids)
            self._out.append([TASK, tid, sym, suffix])
            self._undo.append((self.tids, msg_id))
        return tid

    def times(self, *values, required=True) -> list:
        """Relative times for the time fields of one event, moving the base first if needed.

        All fields of an event share one base, so the TIMEBASE (if any) is
        decided before any of them is encoded.
        """
        stamps = [to_us(v) for v in values]
        if required and stamps[0] is None:
            raise FormatError("this event needs a time")
        present = [us for us in stamps if us is not None]
        if any(not -TIMEBASE_SPAN <= us - self.base <= TIMEBASE_SPAN for us in present):
            self._undo.append(("base", self.base))
            self.base = present[0]
            self._out.append([TIMEBASE, self.base])
        return [None if us is None else us - self.base for us in stamps]

    def time(self, value):
        """The relative time of an event's one (required) time field."""
        us = to_us(value)
        if us is not None:
            rel = us - self.base
            if -TIMEBASE_SPAN <= rel <= TIMEBASE_SPAN:  # the common case: no new base
                return rel
        return self.times(value)[0]

    def undo(self) -> None:
        """Forget what the last ``encode`` defined (its output was not written)."""
        for table, key in reversed(self._undo):
            if table == "base":
                self.base = key
            else:
                del table[key]
        self._undo = []

    def encode(self, event: dict) -> list:
        """Wire arrays for one event dict: definitions it needs, then the event."""
        out = self._out = []
        self._undo = []
        encode = _ENCODERS.get(event["kind"])
        if encode is None:
            raise FormatError(f"unknown event kind {event['kind']!r}")
        out.append(_trim(encode(self, event, event.get)))
        return out


class Decoder:
    """Turns wire arrays back into public event dicts, one segment at a time.

    Each kind's decoder is derived from ``KINDS``; the same per-segment state
    (symbols, task ids, time base) is kept by the fast fold in ``state.py``.
    """

    def __init__(self):
        self.reset(None)

    def reset(self, t0_us):
        self.t0 = self.base = t0_us
        self.symbols: list[str] = []
        self.msg_ids: list[str] = []

    def _t(self, rel):
        return None if rel is None else from_us(self.base + rel)

    def decode(self, array) -> dict | None:
        """The event dict for one array, or None for an encoding-only event."""
        try:
            return self._decode(array)
        except (IndexError, KeyError, TypeError, ValueError) as exc:
            raise FormatError(f"malformed event {array!r}: {exc}") from None

    def _decode(self, a) -> dict | None:
        kind = a[0]
        sym = self.symbols
        if kind == SYMBOL:
            if a[1] != len(sym):
                raise FormatError(f"symbol {a[1]} defined out of order")
            sym.append(a[2])
            return None
        if kind == TASK:
            if a[1] != len(self.msg_ids):
                raise FormatError(f"task id {a[1]} defined out of order")
            self.msg_ids.append(sym[a[2]] + str(a[3]))
            return None
        if kind == TIMEBASE:
            self.base = a[1]
            return None
        if kind == FRAME:
            if a[1] != self.t0:
                raise FormatError("frame of a segment whose header was lost")
            self.base = a[2]
            return None
        if kind == HEADER:
            header = dict(check_header(a, "log"))
            self.reset(header["t0"])
            header["t0"] = from_us(header["t0"])
            return {"kind": "header", **header}
        decode = _DECODERS.get(kind)
        return None if decode is None else decode(self, a, len(a), self._t, sym)


# -- the codec of each kind, derived from KINDS --------------------------------------------------
# Each kind gets an encoder and a decoder written out from its fields, as fast as
# hand-written code (the writer and ``read_events`` are hot paths).
def _encoder_source(kind: Kind) -> str:
    """``encode_NAME(self, event, get) -> wire array`` for one kind."""
    lines = [f"def encode_{kind.name}(self, event, get):"]
    times = [f for f in kind.fields if f.codec == "time"]
    if len(times) > 1:  # several times share one base: decide it for all of them at once
        names = ", ".join(f"t_{f.key}" for f in times)
        values = ", ".join(f"get({f.key!r})" for f in times)
        lines.append(f"    {names}, = self.times({values}, required={times[0].required})")
    items = [str(kind.code)]
    for i, f in enumerate(kind.fields, 1):
        # a missing required time is a FormatError (from ``time``), another required field a KeyError
        value = f"event[{f.key!r}]" if f.required and f.codec != "time" else f"get({f.key!r})"
        if f.codec in ("symbol", "queue"):
            lines.append(f"    v{i} = {value}")
        if f.codec == "task":
            items.append(f"self.tid(event[{f.key!r}])")
        elif f.codec == "time":
            items.append(f"t_{f.key}" if len(times) > 1 else f"self.time({value})")
        elif f.codec == "symbol":
            items.append(f"None if v{i} is None else self.symbol(v{i})")
        elif f.codec == "queue":
            items.append(f"None if v{i} is None else QUEUE_CODES[v{i}]")
        elif f.codec == "status":
            items.append(f"STATUS_CODES[{value}]")
        elif f.codec == "flag":
            items.append(f"True if {value} else None")
        elif f.codec == "map":
            items.append(f"{value} or None")
        else:
            items.append(value)
    lines.append(f"    return [{', '.join(items)}]")
    return "\n".join(lines)


def _decoder_source(kind: Kind) -> str:
    """``decode_NAME(self, a, n, t, sym) -> event dict`` for one kind (``n`` = len(a))."""
    items = [f'"kind": {kind.name!r}']
    for i, f in enumerate(kind.fields, 1):
        raw = f"a[{i}]" if f.required else f"(a[{i}] if n > {i} else None)"
        if f.codec == "task":
            value = f"self.msg_ids[{raw}]"
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
    return f"def decode_{kind.name}(self, a, n, t, sym):\n    return {{{', '.join(items)}}}"


def _compile(source: str, name: str):
    scope = {"QUEUE_CODES": QUEUE_CODES, "STATUS_CODES": STATUS_CODES, "QUEUES": QUEUES, "STATUSES": STATUSES}
    exec(compile(source, f"<ipyrecorder.events: {name}>", "exec"), scope)
    return scope[name]


_ENCODERS = {kind.name: _compile(_encoder_source(kind), f"encode_{kind.name}") for kind in KINDS}
_DECODERS = {kind.code: _compile(_decoder_source(kind), f"decode_{kind.name}") for kind in KINDS}
