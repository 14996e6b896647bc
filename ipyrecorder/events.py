"""Event kinds and the compact codec between public event dicts and wire arrays.

On the wire every event is a msgpack array whose first element is its kind code
(docs/format.md is the contract). In Python, tools see plain dicts with a
``"kind"`` name, msg_ids spelled out and times as UTC datetimes. The ``Encoder``
and ``Decoder`` hold the per-segment state that makes the wire form compact:
interned strings (symbols), short task ids and the time base.
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta, timezone

from .errors import FormatError, NotALog, UnsupportedVersion

FORMAT_NAME = "ipyrecorder"
FORMAT_VERSION = 1

# Wire kind codes. Encoding-only kinds (never seen by tools) come first.
HEADER = 0
SYMBOL = 1  # [1, sym, text]
TASK = 2  # [2, tid, prefix_sym, suffix]            defines a task id
TIMEBASE = 3  # [3, epoch_us]                         later times are relative to it
SUBMIT = 4  # [4, tid, t, queue, function_sym, target, label_sym, chunk, broadcast_sym]
START = 5  # [5, tid, t, engine_id]
COMPLETE = 6  # [6, tid, status, started, completed, received, engine_id, ename, evalue, traceback]
STDOUT = 7  # [7, tid, t, text]
STDERR = 8  # [8, tid, t, text]
ATTEMPT_ERROR = 9  # [9, tid, t, engine_id, ename, evalue, traceback]
ENGINE_REGISTER = 10  # [10, t, engine_id, uuid, present]
ENGINE_UNREGISTER = 11  # [11, t, engine_id]
MARK = 12  # [12, t, text, data]
LABEL = 13  # [13, tid, name]
RESUBMIT = 14  # [14, t, tid, new_tid]
CLOSE = 15  # [15, t, stats]
FRAME = 16  # [16, segment_t0_us, base_us]  opens every frame but a segment's first

KIND_NAMES = {
    HEADER: "header",
    SUBMIT: "submit",
    START: "start",
    COMPLETE: "complete",
    STDOUT: "stdout",
    STDERR: "stderr",
    ATTEMPT_ERROR: "attempt_error",
    ENGINE_REGISTER: "engine_register",
    ENGINE_UNREGISTER: "engine_unregister",
    MARK: "mark",
    LABEL: "label",
    RESUBMIT: "resubmit",
    CLOSE: "close",
}
KIND_CODES = {name: code for code, name in KIND_NAMES.items()}

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
        kind = event["kind"]
        get = event.get
        if kind == "submit":
            queue, label, broadcast = get("queue"), get("label"), get("broadcast")
            array = [
                SUBMIT,
                self.tid(event["msg_id"]),
                self.time(get("t")),
                None if queue is None else QUEUE_CODES[queue],
                self.symbol(get("function")),
                get("target"),
                None if label is None else self.symbol(label),
                get("chunk"),
                None if broadcast is None else self.symbol(broadcast),
            ]
        elif kind == "start":
            array = [START, self.tid(event["msg_id"]), self.time(get("t")), get("engine_id")]
        elif kind == "complete":
            status = STATUS_CODES[event["status"]]
            started, completed, received = self.times(get("started"), get("completed"), get("received"), required=False)
            array = [
                COMPLETE,
                self.tid(event["msg_id"]),
                status,
                started,
                completed,
                received,
                get("engine_id"),
                get("ename"),
                get("evalue"),
                get("traceback"),
            ]
        elif kind in ("stdout", "stderr"):
            code = STDOUT if kind == "stdout" else STDERR
            array = [code, self.tid(event["msg_id"]), self.time(get("t")), event["text"]]
        elif kind == "attempt_error":
            array = [
                ATTEMPT_ERROR,
                self.tid(event["msg_id"]),
                self.time(get("t")),
                get("engine_id"),
                get("ename"),
                get("evalue"),
                get("traceback"),
            ]
        elif kind == "engine_register":
            array = [
                ENGINE_REGISTER,
                self.time(get("t")),
                event["engine_id"],
                get("uuid"),
                True if get("present") else None,
            ]
        elif kind == "engine_unregister":
            array = [ENGINE_UNREGISTER, self.time(get("t")), event["engine_id"]]
        elif kind == "mark":
            array = [MARK, self.time(get("t")), event["text"], get("data") or None]
        elif kind == "label":
            array = [LABEL, self.tid(event["msg_id"]), event["name"]]
        elif kind == "resubmit":
            array = [
                RESUBMIT,
                self.time(get("t")),
                self.tid(event["msg_id"]),
                self.tid(event["new_msg_id"]),
            ]
        elif kind == "close":
            array = [CLOSE, self.time(get("t")), get("stats") or None]
        else:
            raise FormatError(f"unknown event kind {kind!r}")
        out.append(_trim(array))
        return out


class Decoder:
    """Turns wire arrays back into public event dicts, one segment at a time.

    The same per-segment state (symbols, task ids, time base) is kept by the
    fast fold in ``state.py``; this class is the readable reference.
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
        n = len(a)

        def field(i):
            return a[i] if i < n else None

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
        t = self._t
        if kind == SUBMIT:
            queue, fn, label, broadcast = field(3), field(4), field(6), field(8)
            return {
                "kind": "submit",
                "msg_id": self.msg_ids[a[1]],
                "t": t(a[2]),
                "queue": None if queue is None else QUEUES[queue],
                "function": None if fn is None else sym[fn],
                "target": field(5),
                "label": None if label is None else sym[label],
                "chunk": field(7),
                "broadcast": None if broadcast is None else sym[broadcast],
            }
        if kind == START:
            return {"kind": "start", "msg_id": self.msg_ids[a[1]], "t": t(a[2]), "engine_id": field(3)}
        if kind == COMPLETE:
            return {
                "kind": "complete",
                "msg_id": self.msg_ids[a[1]],
                "status": STATUSES[a[2]],
                "started": t(field(3)),
                "completed": t(field(4)),
                "received": t(field(5)),
                "engine_id": field(6),
                "ename": field(7),
                "evalue": field(8),
                "traceback": field(9),
            }
        if kind in (STDOUT, STDERR):
            return {
                "kind": KIND_NAMES[kind],
                "msg_id": self.msg_ids[a[1]],
                "t": t(a[2]),
                "text": a[3],
            }
        if kind == ATTEMPT_ERROR:
            return {
                "kind": "attempt_error",
                "msg_id": self.msg_ids[a[1]],
                "t": t(a[2]),
                "engine_id": field(3),
                "ename": field(4),
                "evalue": field(5),
                "traceback": field(6),
            }
        if kind == ENGINE_REGISTER:
            return {
                "kind": "engine_register",
                "t": t(a[1]),
                "engine_id": a[2],
                "uuid": field(3),
                "present": bool(field(4)),
            }
        if kind == ENGINE_UNREGISTER:
            return {"kind": "engine_unregister", "t": t(a[1]), "engine_id": a[2]}
        if kind == MARK:
            return {"kind": "mark", "t": t(a[1]), "text": a[2], "data": field(3) or {}}
        if kind == LABEL:
            return {"kind": "label", "msg_id": self.msg_ids[a[1]], "name": a[2]}
        if kind == RESUBMIT:
            return {
                "kind": "resubmit",
                "t": t(a[1]),
                "msg_id": self.msg_ids[a[2]],
                "new_msg_id": self.msg_ids[a[3]],
            }
        if kind == CLOSE:
            return {"kind": "close", "t": t(a[1]), "stats": field(2) or {}}
        # Unknown kinds are skipped so that newer minor additions stay readable.
        return None
