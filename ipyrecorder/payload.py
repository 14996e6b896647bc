"""Format 2 frame payloads: one frame's events as columns, with everything they refer to.

A payload is one msgpack map (docs/format.md, section 3)::

    {"v": 2, "s": <segment id, 16 random bytes>, "n": frame number, "b": time base (µs since the epoch),
     "h": {...},                                       (the header: a segment's first frame only)
     "c": [strings, tasks, order, events]}             (or "z": that array, packed and deflated)

``strings`` are the frame's strings; ``tasks`` = ``[prefixes, suffixes]`` its msg_ids
(``strings[prefix]`` followed by the decimal suffix, or alone where the suffix is nil);
``order`` one byte per event, its kind code, in the order the events happened;
``events`` ``{kind code: [one column per field, in events.KINDS order]}``, each column an
array with one value per event of that kind (trailing columns that are all nil left out).

A frame restates every string and msg_id it uses and its own time base, so each
frame decodes on its own: losing one loses nothing else. ``FrameBuilder`` writes
payloads; ``decode`` reads one back as a ``Frame``, or raises ``Malformed`` (or
``Unsupported`` for a newer version) saying what is wrong: a payload is checked
whole before anything in it is used.
"""

from __future__ import annotations

import operator
import sys
import zlib
from array import array
from dataclasses import dataclass
from functools import cached_property
from itertools import islice, repeat
from typing import NamedTuple

import msgpack

from . import events as ev
from .errors import FormatError

VERSION = 2
SEGMENT_ID_BYTES = 16
DEFLATE_FROM = 512  # payloads at least this long are deflated, when that saves a tenth
MAX_EVENT = 1 << 25  # an event's texts may hold at most this many characters (at most 4 bytes each in UTF-8)
MAX_CONTENT = 1 << 28  # bytes a deflated content may inflate to
# The times a datetime can hold (years 1 to 9999), in µs since the epoch.
MIN_US = -62_135_596_800_000_000
MAX_US = 253_402_300_799_999_999
MAX_INT = 2**63 - 1
FIRST_NEW_KIND = 17  # codes from here on are for kinds added later: readers that do not know them skip them
TYPED_FROM = 16  # columns of integers with at least this many values are written typed (binary)
# A typed column: one byte naming the element type, then the values, little-endian; the type's
# smallest value stands for nil (docs/format.md, section 3.1).
INT_TYPES = {b"b"[0]: -(2**7), b"h"[0]: -(2**15), b"i"[0]: -(2**31), b"q"[0]: -(2**63)}
TYPED_CODECS = frozenset({"task", "time", "symbol", "status", "queue", "int"})
_BIG_ENDIAN = sys.byteorder == "big"
assert [array(chr(t)).itemsize for t in INT_TYPES] == [1, 2, 4, 8]


class Malformed(Exception):
    """A payload that passed its CRC but breaks the format's rules (what, in words)."""


class Unsupported(Malformed):
    """A payload of a newer format version than this reader knows."""


class Foreign(Malformed):
    """A segment header that says it is some other format's."""


# -- writing ---------------------------------------------------------------------------------------
class FrameBuilder:
    """Collects event dicts into the columns of one frame; ``payload()`` packs it and starts the next.

    ``add`` is all-or-nothing: an event it refuses (FormatError, TypeError,
    KeyError) leaves the frame as it was.
    """

    def __init__(self, segment: bytes):
        self.segment = segment
        self.seq = 0  # the number of the next frame in the segment
        self._packer = msgpack.Packer(use_bin_type=True)
        self._start()

    def _start(self):
        self.strings: dict = {}  # text -> its index in the frame
        self.tasks: dict = {}  # msg_id -> its index in the frame
        self._pairs: list = []  # (prefix, suffix) of the first tasks (``split_tasks``)
        self.order = bytearray()
        self.rows: dict = {}  # kind code -> its events' values, a tuple each (``columns`` turns them)
        self._columns = None
        self.base = None  # the first time the frame holds, in µs: other times are relative to it
        self.size = 0  # a rough count of the bytes the frame will take

    def __len__(self) -> int:
        return len(self.order)

    # what an event's fields are made of, defining the strings and tasks they use
    def string(self, text) -> int | None:
        if text is None:
            return None
        index = self.strings.get(text)
        if index is None:
            if type(text) is not str:
                raise FormatError(f"expected a string, not {text!r}")
            index = self.strings[text] = len(self.strings)
            self.size += len(text)
        return index

    def task(self, msg_id) -> int:
        index = self.tasks.get(msg_id)
        if index is None:
            if type(msg_id) is not str:
                raise FormatError(f"a msg_id must be a string, not {msg_id!r}")
            index = self.tasks[msg_id] = len(self.tasks)
            self.size += 8
        return index

    def time(self, value) -> int | None:
        us = ev.to_us(value)
        if us is None:
            return None
        if not MIN_US <= us <= MAX_US:
            raise FormatError(f"time out of range: {value!r}")
        if self.base is None:
            self.base = us
        return us - self.base

    def add(self, event: dict) -> None:
        """Append one event (docs/format.md, section 6) to the frame."""
        kind = _KIND_OF_NAME.get(event.get("kind"))
        if kind is None:
            raise FormatError(f"unknown event kind {event.get('kind')!r}")
        strings, tasks, base, size = len(self.strings), len(self.tasks), self.base, self.size
        try:
            values = _CONVERTERS[kind.code](self, event, event.get)
            if self.size - size > MAX_EVENT:
                raise FormatError(
                    f"a {kind.name} event of {self.size - size:,} characters is larger than a frame may be"
                )
        except BaseException:
            while len(self.strings) > strings:
                self.strings.popitem()
            while len(self.tasks) > tasks:
                self.tasks.popitem()
            self.base, self.size = base, size
            raise
        rows = self.rows.get(kind.code)
        if rows is None:
            rows = self.rows[kind.code] = []
        rows.append(values)
        self.order.append(kind.code)
        self._columns = None
        self.size += 12

    @property
    def columns(self) -> dict:
        """Kind code -> its columns, one list per field: the rows turned once, when the frame is
        written (one tuple per event while it is built costs less than a list append per field)."""
        if self._columns is None:
            self._columns = {code: [list(c) for c in zip(*rows)] for code, rows in self.rows.items()}
        return self._columns

    def split_tasks(self) -> list:
        """Each task's ``(prefix, suffix)`` as the payload stores it (suffix None: the msg_id
        is its prefix alone), in task order; made once per task (the writer's tally reads it too)."""
        pairs = self._pairs
        for msg_id in islice(self.tasks, len(pairs), None):
            prefix, suffix = ev.split_msg_id(msg_id)
            pairs.append((prefix, suffix) if type(suffix) is int else (msg_id, None))
        return pairs

    def payload(self, header: dict | None = None) -> bytes:
        """The frame's payload (``header``: the segment's, for its first frame); then a new frame."""
        pairs = self.split_tasks()
        prefixes = [self.string(prefix) for prefix, _ in pairs]
        suffixes = [suffix for _, suffix in pairs]
        events = {}
        for code, columns in self.columns.items():
            while len(columns) > 1 and all(v is None for v in columns[-1]):
                columns.pop()  # trailing columns of nothing but nil are left out
            kind_fields = _KIND_OF_CODE[code].fields
            events[code] = [typed(c) if f.codec in TYPED_CODECS else c for c, f in zip(columns, kind_fields)]
        prefixes, suffixes = typed(prefixes), typed(suffixes)
        pack = self._packer.pack
        content = pack([list(self.strings), [prefixes, suffixes], bytes(self.order), events])
        fields = {"v": VERSION, "s": self.segment, "n": self.seq, "b": self.base or 0}
        if header is not None:
            fields["h"] = header
        key = "c"
        if len(content) >= DEFLATE_FROM:
            deflated = zlib.compress(content, 1)
            if len(deflated) < 0.9 * len(content):
                key, content = "z", pack(deflated)
        out = self._packer.pack_map_header(len(fields) + 1) + b"".join(pack(k) + pack(v) for k, v in fields.items())
        self.seq += 1
        self._start()
        return out + pack(key) + content


def typed(values):
    """A column of integers (and nils) as the narrowest typed column that holds it; short ones as they are."""
    if len(values) < TYPED_FROM:
        return values
    present = [v for v in values if v is not None] if None in values else values
    lo, hi = (min(present), max(present)) if present else (0, 0)
    tag, nil = next(
        (tag, nil) for tag, nil in INT_TYPES.items() if nil < lo and hi < -nil
    )  # (converters keep |v| < 2**63)
    column = array(chr(tag), values if present is values else [nil if v is None else v for v in values])
    if _BIG_ENDIAN:
        column.byteswap()
    return bytes((tag,)) + column.tobytes()


class IntColumn:
    """A typed column, read: a numpy array of its values (``nil``, the type's smallest
    value, where a value is nil), the smallest and largest value present and the nils
    counted. Iterated, it gives ints and Nones: the list is made on first use, so a
    reader of arrays (``state.py``'s batch fold) never pays for it."""

    __slots__ = ("array", "nil", "lo", "hi", "nils", "_list")

    def __init__(self, values, nil: int):
        self.array, self.nil = values, nil
        nils = values == nil
        self.nils = int(nils.sum()) if len(values) else 0
        present = values[~nils] if self.nils else values
        self.lo = self.hi = None
        if len(present):
            self.lo, self.hi = int(present.min()), int(present.max())
        self._list = None

    def __len__(self) -> int:
        return len(self.array)

    def __iter__(self):
        return iter(self.tolist())

    def __getitem__(self, i):
        if type(i) is slice and self._list is None:  # only the values asked for
            part = IntColumn.__new__(IntColumn)
            part.array, part.nil, part.nils, part._list = self.array[i], self.nil, self.nils, None
            return part.tolist()
        return self.tolist()[i]

    def tolist(self) -> list:
        if self._list is None:
            out = self.array.tolist()
            if self.nils:
                nil = self.nil
                out = [None if v == nil else v for v in out]
            self._list = out
        return self._list


def _untyped(column, where) -> IntColumn:
    """A typed column's values (nil where the type's smallest value is), or Malformed."""
    import numpy as np

    nil = INT_TYPES.get(column[0]) if column else None
    size = array(chr(column[0])).itemsize if nil is not None else 0
    if not size or (len(column) - 1) % size:
        raise Malformed(f"{where} is not a typed column")
    return IntColumn(np.frombuffer(column, dtype=f"<i{size}", offset=1), nil)


# -- reading ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Frame:
    """One decoded payload. ``rows()`` gives its events as wire arrays, the fold's input:
    ``(kind code, field values...)``, times relative to ``base``, symbols indexing
    ``strings`` and tasks indexing ``msg_ids``.

    The tasks are also kept as the payload has them: ``prefixes`` (indexes into
    ``strings``) and ``suffixes`` (ints, or nil for a msg_id that is its prefix alone),
    each a tuple or an ``IntColumn``; ``canonical`` says each pair is how
    ``events.split_msg_id`` splits its msg_id, so pairs name tasks as msg_ids do.
    """

    segment: bytes
    seq: int
    base: int
    header: dict | None
    strings: tuple
    prefixes: object
    suffixes: object
    canonical: bool
    order: bytes
    events: dict  # kind code -> columns
    unknown: dict  # kind code -> how many events of a kind this reader does not know were skipped

    @cached_property
    def msg_ids(self) -> list:
        """Each task's msg_id, spelled out (made on first use)."""
        return _spell(self.prefixes, self.suffixes, self.strings)

    def rows(self, start: int = 0, stop: int | None = None):
        """The events in order (those ``start:stop``). A row ends where the frame's columns end
        (trailing nil fields left out, as readers of rows expect: ``len(row) > position`` or nil)."""
        if start == 0 and stop is None:
            iterators = {code: zip(repeat(code), *columns) for code, columns in self.events.items()}
            return map(next, map(iterators.__getitem__, self.order))
        order = self.order[start:stop]
        iterators = {}
        for code in set(order):
            first = self.order.count(code, 0, start)
            last = first + order.count(code)
            iterators[code] = zip(repeat(code), *(column[first:last] for column in self.events[code]))
        return map(next, map(iterators.__getitem__, order))


class Peeked(NamedTuple):
    """A payload read as far as its segment, number and header (``peek``): the rest later, if asked."""

    segment: bytes
    seq: int
    header: dict | None
    payload: bytes
    crc: int  # the payload's CRC-32
    unknown: None = None


def peek(payload: bytes) -> Peeked:
    """A payload's segment, frame number and header, checked, without inflating its events
    (``Malformed`` as ``decode``): a reader that needs only some frames decodes only those."""
    fields, segment, seq, _ = _outer(payload)
    return Peeked(segment, seq, fields.get("h"), payload, zlib.crc32(payload))


def decode(payload: bytes) -> Frame:
    """The ``Frame`` in one payload; ``Malformed`` (or ``Unsupported``) if it breaks the rules."""
    fields, segment, seq, base = _outer(payload)
    header = fields.get("h")
    if "z" in fields:
        deflated = fields["z"]
        if type(deflated) is not bytes or "c" in fields:
            raise Malformed("a frame needs one of content (c) or deflated content (z)")
        content = _unpack(_inflate(deflated), "the deflated content")
    else:
        content = fields.get("c")
    if type(content) is not tuple or len(content) < 4:
        raise Malformed("the content is not [strings, tasks, order, events]")
    strings, tasks, order, events = content[:4]
    if type(strings) is not tuple or not _all(strings, _STR):
        raise Malformed("the strings are not all strings")
    prefixes, suffixes, canonical = _tasks(tasks, strings)
    if type(order) is not bytes:
        raise Malformed("the order is not bytes")
    if type(events) is not dict:
        raise Malformed("the events are not a map")
    counts = {code: order.count(code) for code in set(order)}
    if set(counts) != set(events):
        unknown = sorted(set(counts) ^ set(events), key=repr)
        raise Malformed(f"the order and the events disagree on kinds {unknown}")
    unknown = {}
    read = {}
    bounds = None
    for code, columns in events.items():
        kind = _KIND_OF_CODE.get(code)
        if kind is None:
            if type(code) is not int or code < FIRST_NEW_KIND:
                raise Malformed(f"unknown event kind {code!r}")
            unknown[code] = counts[code]  # a later version's kind: skipped, and said
            continue
        if type(columns) is not tuple:
            raise Malformed(f"the {kind.name} columns are not an array")
        columns = list(columns[: len(kind.fields)])
        n = counts[code]
        for position, (field, where, ints) in enumerate(_FIELDS[code]):
            if position >= len(columns):  # a trailing column left out: all nil
                if field.required:
                    raise Malformed(f"{where} is missing")
                continue
            column = columns[position]
            if type(column) is bytes and ints:
                column = columns[position] = _untyped(column, where)
            elif type(column) is not tuple:
                raise Malformed(f"{where} is not an array of values")
            if len(column) != n:
                raise Malformed(f"{where} does not hold one value per {kind.name} event")
            if ints:
                if bounds is None:
                    bounds = _bounds(base, len(prefixes), len(strings))
                if _ints_ok(column, field.required, bounds[field.codec]):
                    continue  # (else the field's own check says what is wrong)
            _CHECKS[field.codec](column, field, where, base, len(prefixes), len(strings))
        read[code] = columns
    if unknown:
        order = bytes(code for code in order if code not in unknown)
    return Frame(segment, seq, base, header, strings, prefixes, suffixes, canonical, order, read, unknown)


def _outer(payload: bytes) -> tuple:
    """The payload's map, segment id, frame number and time base, checked."""
    fields = _unpack(payload, "the payload")
    if type(fields) is not dict:
        raise Malformed("the payload is not a map")
    version = fields.get("v")
    if type(version) is not int:
        raise Malformed("the payload has no version")
    if version > VERSION:
        raise Unsupported(f"a frame of format version {version} (this ipyrecorder reads up to {VERSION})")
    if version != VERSION:
        raise Malformed(f"a format-{VERSION} frame says it is version {version}")
    segment, seq, base = fields.get("s"), fields.get("n"), fields.get("b")
    if type(segment) is not bytes or len(segment) != SEGMENT_ID_BYTES:
        raise Malformed("the segment id is not 16 bytes")
    if type(seq) is not int or not 0 <= seq <= MAX_INT:
        raise Malformed("the frame number is not an integer from 0")
    if type(base) is not int or not MIN_US <= base <= MAX_US:
        raise Malformed("the time base is out of range")
    if fields.get("h") is not None:
        _check_header(fields["h"])
    return fields, segment, seq, base


def _no_ext(code, data):
    raise Malformed(f"msgpack extension type {code} (the format uses none)")


def _unpack(data: bytes, what: str):
    try:
        return msgpack.unpackb(data, raw=False, use_list=False, strict_map_key=False, ext_hook=_no_ext, timestamp=0)
    except Malformed:
        raise
    except (ValueError, TypeError, OverflowError, RecursionError, MemoryError, msgpack.UnpackException) as exc:
        raise Malformed(f"{what} is not valid msgpack ({type(exc).__name__})") from None


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(data, MAX_CONTENT)
    except zlib.error:
        raise Malformed("the deflated content does not inflate") from None
    if inflater.unconsumed_tail or not inflater.eof:
        raise Malformed("the deflated content is cut short or inflates past the limit")
    return out


def _tasks(tasks, strings):
    """(prefixes, suffixes, canonical) of a frame's tasks, checked; Malformed if they break the rules."""
    if type(tasks) is not tuple or len(tasks) < 2:
        raise Malformed("the tasks are not [prefixes, suffixes]")
    prefixes, suffixes = (_untyped(c, "a task column") if type(c) is bytes else c for c in tasks[:2])
    if type(prefixes) not in (tuple, IntColumn) or type(suffixes) not in (tuple, IntColumn):
        raise Malformed("the tasks are not [prefixes, suffixes]")
    if len(prefixes) != len(suffixes):
        raise Malformed("the tasks have as many prefixes as suffixes")
    if not _ints_ok(prefixes, True, (0, len(strings) - 1)):
        raise Malformed("a task's prefix is not one of the frame's strings")
    if not _ints_ok(suffixes, False, (0, MAX_INT)):
        raise Malformed("a task's suffix is not nil or an integer from 0")
    canonical = _canonical(prefixes, suffixes, strings)
    if not (_distinct(prefixes, suffixes) if canonical else _distinct_spelled(prefixes, suffixes, strings)):
        raise Malformed("a msg_id is listed twice among the frame's tasks")
    return prefixes, suffixes, canonical


def _canonical(prefixes, suffixes, strings) -> bool:
    """Every (prefix, suffix) pair is how ``split_msg_id`` splits its msg_id, and the strings
    are distinct: then two tasks are the same msg_id exactly when their pairs are equal."""
    if len(set(strings)) != len(strings):
        return False
    if type(prefixes) is IntColumn and type(suffixes) is IntColumn:
        import numpy as np

        if suffixes.hi is not None and suffixes.hi >= ev.MAX_SUFFIX:
            return False
        if not suffixes.nils:
            numbered = [prefixes.lo] if prefixes.lo == prefixes.hi else np.unique(prefixes.array).tolist()
            alone = ()
        else:
            alone = suffixes.array == suffixes.nil
            numbered = np.unique(prefixes.array[~alone]).tolist()
            alone = np.unique(prefixes.array[alone]).tolist()
    elif None not in suffixes:  # (the usual case, at C speed)
        if suffixes and max(suffixes) >= ev.MAX_SUFFIX:
            return False
        numbered, alone = set(prefixes), ()
    else:
        if any(s is not None and s >= ev.MAX_SUFFIX for s in suffixes):
            return False
        numbered = {p for p, s in zip(prefixes, suffixes) if s is not None}
        alone = {p for p, s in zip(prefixes, suffixes) if s is None}
    split = ev.split_msg_id
    return all(not strings[p] or strings[p][-1] == "_" for p in numbered) and all(
        type(split(strings[p])[1]) is not int for p in alone
    )


def _distinct(prefixes, suffixes) -> bool:
    """No (prefix, suffix) pair is listed twice."""
    if len(prefixes) < 2:
        return True
    if type(prefixes) is not IntColumn or type(suffixes) is not IntColumn:
        return len(set(zip(prefixes, suffixes))) == len(prefixes)
    import numpy as np

    p, s = prefixes.array.astype(np.int64), suffixes.array.astype(np.int64)
    lo, span = int(s.min()), int(s.max()) - int(s.min()) + 1
    if span * (prefixes.hi + 1) <= 8 * len(p) + 4096:  # dense: count the pairs
        return int(np.bincount(p * span + (s - lo)).max()) <= 1
    order = np.lexsort((s, p))
    p, s = p[order], s[order]
    return not bool(np.any((p[1:] == p[:-1]) & (s[1:] == s[:-1])))


def _distinct_spelled(prefixes, suffixes, strings) -> bool:
    """No msg_id is listed twice, comparing the msg_ids spelled out."""
    spelled = _spell(prefixes, suffixes, strings)
    return len(set(spelled)) == len(spelled)


def _spell(prefixes, suffixes, strings) -> list:
    """The msg_ids of (prefix, suffix) pairs."""
    if suffixes.nils if type(suffixes) is IntColumn else None in suffixes:  # some are a string alone
        return [strings[p] if s is None else strings[p] + str(s) for p, s in zip(prefixes, suffixes)]
    return list(map(operator.add, map(strings.__getitem__, prefixes), map(str, suffixes)))


def _check_header(header) -> None:
    if type(header) is not dict or not _all(header, _STR):
        raise Malformed("the header is not a map with string keys")
    if header.get("format") != ev.FORMAT_NAME:
        raise Foreign(f"the header says it is {str(header.get('format'))[:40]!r}, not an ipyrecorder log")
    t0 = header.get("t0")
    if type(t0) is not int or not MIN_US <= t0 <= MAX_US:
        raise Malformed("the header's t0 is out of range")
    if not plain(header):
        raise Malformed("the header holds values the format does not allow")


_STR, _INT = frozenset({str}), frozenset({int})
_PLAIN_TYPES = (type(None), bool, int, float, str)


def _ints_within(values, lo: int, hi: int) -> bool:
    """Every value is an int from ``lo`` to ``hi`` (an empty column is)."""
    if type(values) is IntColumn:  # its range is known (of the values present: nils were checked)
        return values.lo is None or (lo <= values.lo and values.hi <= hi)
    if not _all(values, _INT):
        return False
    return not values or (lo <= min(values) and max(values) <= hi)


def _all(values, types) -> bool:
    """Every value's type is one of ``types`` (set of map(type): C speed; a typed column holds ints)."""
    if type(values) is IntColumn:
        return int in types
    return set(map(type, values)) <= types


def plain(value, depth: int = 0) -> bool:
    """JSON-like: nil, booleans, numbers (finite), strings, and arrays and string-keyed maps of them."""
    if isinstance(value, _PLAIN_TYPES):
        if isinstance(value, float):
            return value - value == 0.0  # not NaN, not infinite
        return not isinstance(value, int) or -(2**63) <= value <= 2**64 - 1
    if depth > 64:
        return False
    if isinstance(value, (list, tuple)):
        return _all_plain(value, depth + 1)
    if isinstance(value, dict):
        return all(isinstance(k, str) and plain(v, depth + 1) for k, v in value.items())
    return False


def _all_plain(values, depth: int = 0) -> bool:
    """Every value is ``plain`` (at ``depth``); the ints among them checked together (a summary's runs)."""
    ints = [v for v in values if type(v) is int]
    if ints and not (-(2**63) <= min(ints) and max(ints) <= 2**64 - 1):
        return False
    return len(ints) == len(values) or all(plain(v, depth) for v in values if type(v) is not int)


def _present(column, field, where):
    """The column's values that are not nil (checking there are none where the field is required).

    A typed column is given back whole: its range is that of the values present."""
    nils = column.nils if type(column) is IntColumn else None in column  # at C speed either way
    if not nils:
        return column
    if field.required:
        raise Malformed(f"{where} is nil where it is required")
    if type(column) is IntColumn or column.count(None) == len(column):
        return () if type(column) is not IntColumn else column
    return [v for v in column if v is not None]


def _bounds(base: int, tasks: int, strings: int) -> dict:
    """The range of each integer codec's values in a frame."""
    return {
        "task": (0, tasks - 1),
        "symbol": (0, strings - 1),
        "status": (0, len(ev.STATUSES) - 1),
        "queue": (0, len(ev.QUEUES) - 1),
        "time": (MIN_US - base, MAX_US - base),
        "int": (-MAX_INT, MAX_INT),
    }


def _ints_ok(column, required: bool, bounds: tuple) -> bool:
    """The column holds ints within ``bounds`` (and nils, unless ``required``): every integer
    field's check in one call, the common case of a frame of few events."""
    lo, hi = bounds
    if type(column) is IntColumn:
        return not (required and column.nils) and (column.lo is None or (lo <= column.lo and column.hi <= hi))
    if None in column:
        if required:
            return False
        column = [v for v in column if v is not None]
    return not column or (set(map(type, column)) <= _INT and lo <= min(column) and max(column) <= hi)


def _check_indexes(column, field, where, size, what):
    values = _present(column, field, where)
    if not _ints_within(values, 0, size - 1):
        raise Malformed(f"{where} is not one of the frame's {what}")


def _check_task(column, field, where, base, tasks, strings):
    _check_indexes(column, field, where, tasks, "tasks")


def _check_symbol(column, field, where, base, tasks, strings):
    _check_indexes(column, field, where, strings, "strings")


def _check_code(names):
    def check(column, field, where, base, tasks, strings):
        _check_indexes(column, field, where, len(names), "codes")

    return check


def _check_time(column, field, where, base, tasks, strings):
    values = _present(column, field, where)
    if not _ints_within(values, MIN_US - base, MAX_US - base):
        raise Malformed(f"{where} is not a time a datetime can hold")


def _check_int(column, field, where, base, tasks, strings):
    values = _present(column, field, where)
    if not _ints_within(values, -MAX_INT, MAX_INT):
        raise Malformed(f"{where} is not an integer")


def _check_text(column, field, where, base, tasks, strings):
    if not _all(_present(column, field, where), _STR):
        raise Malformed(f"{where} is not a string")


def _check_flag(column, field, where, base, tasks, strings):
    if not _all(_present(column, field, where), frozenset({bool})):
        raise Malformed(f"{where} is not true or false")


def _check_map(column, field, where, base, tasks, strings):
    values = _present(column, field, where)
    if not _all(values, frozenset({dict})) or not all(plain(v) for v in values):
        raise Malformed(f"{where} is not a map of plain values")


def _check_value(column, field, where, base, tasks, strings):
    if not _all_plain(_present(column, field, where)):
        raise Malformed(f"{where} holds values the format does not allow")


_CHECKS = {
    "task": _check_task,
    "time": _check_time,
    "symbol": _check_symbol,
    "status": _check_code(ev.STATUSES),
    "queue": _check_code(ev.QUEUES),
    "flag": _check_flag,
    "map": _check_map,
    "int": _check_int,
    "text": _check_text,
    "value": _check_value,
}
_KIND_OF_NAME = {kind.name: kind for kind in ev.KINDS}
_KIND_OF_CODE = {kind.code: kind for kind in ev.KINDS}
# each kind's fields as decode checks them: (field, its name in messages, integer-valued)
_FIELDS = {kind.code: [(f, f"{kind.name}.{f.key}", f.codec in TYPED_CODECS) for f in kind.fields] for kind in ev.KINDS}


# -- the converter of each kind, derived from KINDS ------------------------------------------------
def _converter_source(kind) -> str:
    """``convert_NAME(self, event, get) -> the event's column values`` for one kind."""
    lines = [f"def convert_{kind.name}(self, event, get):"]
    items = []
    for i, f in enumerate(kind.fields):
        value = f"get({f.key!r})"
        name = f"v{i}"
        if f.codec == "task":
            lines.append(f"    {name} = self.task({value})")
        elif f.codec == "time":
            lines.append(f"    {name} = self.time({value})")
            if f.required:
                lines.append(f"    if {name} is None: raise FormatError('{kind.name} needs a {f.key}')")
        elif f.codec == "symbol":
            lines.append(f"    {name} = self.string({value})")
        elif f.codec in ("status", "queue"):
            table = "STATUS_CODES" if f.codec == "status" else "QUEUE_CODES"
            lines.append(f"    {name} = {value}")
            lines.append(f"    {name} = None if {name} is None else {table}[{name}]")
        elif f.codec == "flag":
            lines.append(f"    {name} = True if {value} else None")
        elif f.codec == "map":
            lines.append(f"    {name} = {value} or None")
            lines.append(f"    if {name} is not None and not (isinstance({name}, dict) and plain({name})):")
            lines.append(f"        raise TypeError('{kind.name}.{f.key} must be a map of JSON-like values')")
            lines.append(f"    if {name} is not None: self.size += len(packb({name}))")
        else:
            lines.append(f"    {name} = {value}")
            check = {
                "int": "isinstance({0}, int) and -MAX_INT <= {0} <= MAX_INT",
                "text": "isinstance({0}, str)",
                "value": "plain({0})",
            }[f.codec]
            lines.append(f"    if {name} is not None and not ({check.format(name)}):")
            lines.append(f"        raise TypeError('{kind.name}.{f.key} cannot be ' + repr({name})[:80])")
            if f.codec in ("text", "value"):
                size = "len({0})" if f.codec == "text" else "len(packb({0}))"
                lines.append(f"    if {name} is not None: self.size += {size.format(name)}")
        if f.required and f.codec not in ("task", "time"):
            lines.append(f"    if {name} is None: raise FormatError('{kind.name} needs a {f.key}')")
        items.append(name)
    lines.append(f"    return ({', '.join(items)},)")
    return "\n".join(lines)


def _converter(kind):
    scope = {
        "FormatError": FormatError,
        "STATUS_CODES": ev.STATUS_CODES,
        "QUEUE_CODES": ev.QUEUE_CODES,
        "plain": plain,
        "packb": msgpack.packb,
        "MAX_INT": MAX_INT,
    }
    exec(compile(_converter_source(kind), f"<ipyrecorder.payload: convert_{kind.name}>", "exec"), scope)
    return scope[f"convert_{kind.name}"]


_CONVERTERS = {kind.code: _converter(kind) for kind in ev.KINDS}
