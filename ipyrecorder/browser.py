"""The browser's encoding of a run: what the html report embeds and the dashboard serves.

One module owns it, so that the saved report and the live dashboard read the same
columns (``common.js`` decodes them in the page). Layout:


* ``<script type="application/json" id="ipyr-meta">``: small JSON (title,
  summary, engines, marks, recording header) with ``<``, ``>`` and ``&``
  escaped, so no text in it can close the script element;
* ``<script type="application/octet-stream" id="ipyr-blob">``: base64 of one
  buffer (deflated with ``compress=true``) holding the task columns, each
  8-byte aligned, little-endian and split into byte planes, then UTF-8 JSON
  with the string table and the sparse per-task texts (output excerpts,
  errors). ``meta.columns`` maps each column name to ``[dtype, byte offset,
  count, transform]``.

Times are microseconds since the run's origin (the first submission). To
compress well they are stored transformed: ``start`` as ``delta`` (change from
the previous task's start), ``end`` and ``sub`` as ``rel:start`` (minus the
task's start, when it has one), ``recv`` as ``rel:end``; each as int32 when the
stored values fit (missing: ``-2**31``), else float64 (missing: NaN).

The dashboard's live batches carry changed tasks and engines as rows whose
fields are named in ``TASK_FIELDS`` and ``ENGINE_FIELDS`` (the snapshot sends
both lists, and the page reads each row by those names); a task row's fields
are the report's column names, with times in µs since the epoch.

``fill`` is the one template renderer of both pages.
"""

from __future__ import annotations

import json
import re
from importlib import resources

import numpy as np

from ._version import __version__
from .clocks import moved_times, on_client
from .colours import with_colours
from .events import from_us, split_msg_id, to_us
from .table import NIL, STATUS_ORDER, Task

STATUSES = STATUS_ORDER
TRACEBACK_CHARS = 4000  # the last characters of each failed task's traceback that a page carries
STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}
STATUSES_PLACEHOLDER = "/*@@STATUSES@@*/ null"
INT32_MISSING = -(2**31)
NO_ENGINE = 2**32 - 1  # engine row of a task that never reached an engine
NO_SUFFIX = 2**32 - 1  # msg_id stored whole in the string table


# A changed task or engine as a live batch sends it (the page reads rows by these names).
TASK_FIELDS = ("mp", "ms", "name", "fn", "engine", "status", "sub", "start", "end", "recv", "error", "stdout", "stderr")
ENGINE_FIELDS = (
    "id",
    "registered",
    "unregistered",
    "present",
    "done",
    "errors",
    "busy_us",
    "current",
    "current_start",
    "host",
    "sampled",
    "rss",
    "cpu",
)
SERIES = 240  # the resource samples per engine a dashboard's snapshot carries (the page adds the rest)


def _plain(value):
    """None, an int or a string: what a header field may be shown as."""
    return value if value is None or type(value) in (int, str) else str(value)


def data_text(data) -> str:
    """A mark's data as one line of JSON text (shown as text, never parsed by the page)."""
    return json.dumps(data, ensure_ascii=False, default=str) if data else ""


def text_or_none(value):
    """A log value where the page expects text: None, or a string (any other msgpack value, spelled)."""
    return value if value is None or type(value) is str else str(value)


def _head(chunks, chars: int):
    """The first ``chars`` characters of output chunks, or None."""
    if not chunks or chars <= 0:
        return None
    out, size = [], 0
    for chunk in chunks:
        out.append(chunk)
        size += len(chunk)
        if size >= chars:
            break
    return "".join(out)[:chars]


def task_fields(task, chars: int, shifts: dict) -> list:
    """``task`` as a live batch row (``TASK_FIELDS``); a msg_id without a numeric suffix is whole in ``mp``.
    ``shifts``: ``State.view_shifts()``, which put its engine's times on the client's clock."""
    prefix, suffix = split_msg_id(task.msg_id)
    if type(suffix) is not int or suffix >= NO_SUFFIX:
        prefix, suffix = task.msg_id, None
    status = STATUS_CODE.get(task.status, 4)
    error = None
    if task.ename is not None or status == 1:
        error = text_or_none(task.error) or "(no error message)"
    return [
        prefix,
        suffix,
        text_or_none(task.name),
        text_or_none(task.function),
        task.engine_id,
        status,
        task.submitted_us,
        on_client(task.effective_start_us, shifts.get(task.engine_id)),
        on_client(task.completed_us, shifts.get(task.engine_id)),
        task.received_us,
        error,
        _head(task.stdout_chunks, chars),
        _head(task.stderr_chunks, chars),
    ]


def engine_fields(engine, shifts: dict) -> list:
    """``engine`` as a live batch row (``ENGINE_FIELDS``): the task it runs is ``current``, since
    ``current_start`` (on the client's clock, by ``shifts`` as ``task_fields``); its host and its
    last resource sample, with ``engine_stats``."""
    task = engine.current
    last = engine.samples[-1] if engine.samples else (None, None, None, None)
    return [
        engine.id,
        engine.registered_us,
        engine.unregistered_us,
        engine.present_at_start,
        engine.tasks_done,
        engine.errors,
        engine.busy_us,
        task.msg_id if task is not None else None,
        on_client(task.start_us, shifts.get(engine.id)) if task is not None else None,
        text_or_none(engine.host),
        on_client(last[0], shifts.get(engine.id)),
        last[2],
        last[1],
    ]


def engine_series(state, shifts: dict) -> list:
    """``[[engine id, [[t µs, rss, cpu], ...]], ...]``: each engine's last ``SERIES`` samples."""
    return [
        [engine_id, [[on_client(t, shifts.get(engine_id)), rss, cpu] for t, cpu, rss, _ in samples[-SERIES:]]]
        for engine_id, samples in state.table.samples.items()
    ]


def _int_column(values):
    """The narrowest unsigned typed-array dtype for non-negative ints."""
    top = int(values.max()) if len(values) else 0
    dtype = "u1" if top < 2**8 else "u2" if top < 2**16 else "u4"
    return dtype, values.astype(f"<{dtype}")


def _time_column(values):
    """int32 offsets when they fit (missing: -2**31), else float64 (missing: NaN)."""
    missing = values == NIL
    present = values[~missing]
    if not len(present) or (int(present.min()) > INT32_MISSING and int(present.max()) < 2**31):
        return "i4", np.where(missing, INT32_MISSING, values).astype("<i4")
    return "f8", np.where(missing, np.nan, values.astype("<f8"))


def _deltas(values):
    """Each present value minus the previous present one (the first minus 0); missing stays missing."""
    out = values.copy()
    present = values != NIL
    out[present] = np.diff(values[present], prepend=0)
    return out


def _relative(values, refs):
    """value - ref where both are present; the value itself where ref is missing."""
    return np.where((values == NIL) | (refs == NIL), values, values - refs)


class _Strings:
    """A de-duplicated string table; index 0 is the empty string (no value)."""

    def __init__(self):
        self.items = [""]
        self.index = {"": 0}

    def __call__(self, text) -> int:
        if text is None:
            return 0
        if type(text) is not str:  # a log may hold any msgpack value where a name is expected
            text = str(text)
        i = self.index.get(text)
        if i is None:
            i = self.index[text] = len(self.items)
            self.items.append(str(text))
        return i


def _string_column(codes, page_index):
    """Indexes into a state's strings (NONE: none) as indexes into the page's (0: none)."""
    return np.array(page_index + [0], np.int64)[codes]


def build_report_data(state, output_chars: int = 200, log_name: str = "", title: str | None = None):
    """(meta dict, raw blob bytes) for ``state``: the page's whole data."""
    start_us, end_us = state.span_us()
    header = state.headers[0] if state.headers else {}
    origin = start_us
    if origin is None:
        firsts = state.table.effective_start()
        firsts = firsts[firsts != NIL]
        if len(firsts):
            origin = int(firsts.min())
        elif header.get("t0") is not None:
            origin = to_us(header["t0"])
        else:
            origin = 0

    table = state.table
    engine = table.view("engine")
    engine_ids = sorted(set(state.engines) | set(np.unique(engine[engine != NIL]).tolist()))
    n = len(table)
    columns = {}
    blob = bytearray()

    def add(col, dtype, values, transform=None):
        """Append one column: little-endian, bytes split into planes (byte 0 of every value, then byte 1...)."""
        values = values.astype(values.dtype.newbyteorder("<"), copy=False)
        columns[col] = [dtype, len(blob), len(values), transform]
        if values.itemsize > 1:  # byte planes deflate far better than interleaved numbers
            values = values.view(np.uint8).reshape(-1, values.itemsize).T
        blob.extend(values.tobytes())
        blob.extend(b"\0" * (-len(blob) % 8))

    def since_origin(values):
        return np.where(values == NIL, NIL, values - origin)

    # Times, stored so that they compress: start as the change from the previous task's start,
    # the others relative to the task's own start or end (or absolute when that is missing).
    # Each column is made, added and let go in turn: a big run's page needs no more memory than that.
    moving = state.view_shifts()  # a live state's engine times go on the client's clock here
    start = since_origin(moved_times(table.effective_start(), engine, moving, NIL))
    add("start", *_time_column(_deltas(start)), "delta")
    end = since_origin(moved_times(table.view("completed").copy(), engine, moving, NIL))
    add("end", *_time_column(_relative(end, start)), "rel:start")
    add("sub", *_time_column(_relative(since_origin(table.view("submitted")), start)), "rel:start")
    del start
    add("recv", *_time_column(_relative(since_origin(table.view("received")), end)), "rel:end")
    del end
    row = np.full(n, NO_ENGINE, np.uint32)
    placed = engine != NIL
    row[placed] = np.searchsorted(np.array(engine_ids, np.int64), engine[placed])
    add("row", "u4", row)
    del row, placed
    status = table.statuses()
    add("status", "u1", status.astype(np.uint8))
    # the page's strings, each once (the page finds a task by its prefix's index): "" is no value
    strings = _Strings()
    texts = [strings(text) for text in table.strings]
    add("fn", *_int_column(_string_column(table.view("function"), texts)))
    add("name", *_int_column(_string_column(table.view("name"), texts)))
    mp = _string_column(table.view("prefix"), [strings(text) for text in table.prefixes])
    ms = table.view("suffix").copy()
    whole = ms >= NO_SUFFIX  # (a msg_id alone, NIL, is negative: its prefix is the msg_id)
    for i in np.flatnonzero(whole).tolist():
        mp[i] = strings(table.msg_id(i))
    ms[whole | (ms == NIL)] = NO_SUFFIX
    add("mp", *_int_column(mp))
    del mp, whole
    steps = np.diff(ms, prepend=0)
    if not len(steps) or (int(steps.min()) > INT32_MISSING and int(steps.max()) < 2**31):
        add("ms", "i4", steps.astype(np.int32), "delta")
    else:
        add("ms", "u4", ms.astype(np.uint32))
    del ms, steps
    for col, name in (("bytes_in", "request_bytes"), ("bytes_out", "reply_bytes")):  # NaN: not measured
        size = table.sizes(name)
        add(col, "f8", np.where(size == NIL, np.nan, size.astype(np.float64)))
    stdout, stderr, errors, tracebacks = [], [], [], []
    if output_chars:
        for found, store in ((stdout, table.stdout), (stderr, table.stderr)):
            for i in sorted(store):
                output = "".join(store[i])
                if output:
                    found.append((i, output[:output_chars]))
    for i in sorted(set(table.errors) | set(np.flatnonzero(status == STATUS_CODE["error"]).tolist())):
        task = Task(table, i)
        errors.append((i, strings(task.error or "(no error message)")))
        if task.traceback:  # its end says what failed: keep that
            tracebacks.append((i, strings(task.traceback[-TRACEBACK_CHARS:])))
    del status
    depends = []  # [task, the task it waits on, follow]: the dependencies within the log
    for i in sorted(table.depends):
        for on, follow, _ in table.depends[i]:
            j = table.find(on)
            if j is not None:
                depends.append((i, j, follow))
    text = json.dumps(
        {
            "strings": strings.items,
            "stdout": stdout,
            "stderr": stderr,
            "errors": errors,
            "tracebacks": tracebacks,
            "depends": depends,
        },
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    ).encode("utf-8", "surrogatepass")
    text_at = len(blob)
    blob.extend(text)

    summary = state.summary()
    engines = []
    for engine_id in engine_ids:
        engine = state.engines.get(engine_id)
        stats = summary["engines"].get(engine_id, {})
        rel = lambda us: None if us is None else us - origin  # noqa: E731
        engines.append(
            {
                "id": engine_id,
                "tasks": stats.get("tasks", 0),
                "errors": stats.get("errors", 0),
                "busy_seconds": stats.get("busy_seconds", 0.0),
                "utilisation": stats.get("utilisation"),
                "registered": rel(engine.registered_us) if engine else None,
                "unregistered": rel(engine.unregistered_us) if engine else None,
                "present_at_start": engine.present_at_start if engine else True,
            }
        )
    recording = {key: _plain(header.get(key)) for key in ("host", "pid", "python", "ipyparallel", "recorder")}
    recording["t0"] = header["t0"].isoformat() if header.get("t0") else None
    meta = {
        "title": title or (f"ipyrecorder report: {log_name}" if log_name else "ipyrecorder report"),
        "log": log_name,
        "generator": f"ipyrecorder {__version__}",
        "origin": from_us(origin).isoformat(),
        "tasks": n,
        "span_us": None if start_us is None else end_us - start_us,
        "summary": {
            key: summary[key]
            for key in (
                "tasks",
                "by_status",
                "start",
                "end",
                "span_seconds",
                "marks",
                "segments",
                "closed",
                "damage",
                "bytes",
                "parallelism",
                "critical_path",
            )
        },
        "engines": engines,
        "marks": [{"t": m.t_us - origin, "text": str(m.text), "data": data_text(m.data)} for m in state.marks],
        "recording": recording,
        "output_chars": output_chars,
        "statuses": list(STATUSES),
        "no_engine": NO_ENGINE,
        "no_suffix": NO_SUFFIX,
        "int32_missing": INT32_MISSING,
        "columns": columns,
        "text": [text_at, len(text)],
    }
    return meta, blob


def fill(template: str, parts: dict) -> str:
    """``template`` with every ``@@NAME@@`` replaced by ``parts[NAME]``.

    Only the template is scanned, never what goes into it, so no text from a
    log can be taken for a placeholder. Every placeholder must have a part and
    every part a placeholder (ValueError otherwise).
    """
    pieces = re.split(r"@@([A-Z]+)@@", template)
    wanted = set(pieces[1::2])
    if wanted != set(parts):
        raise ValueError(f"template placeholders {sorted(wanted)} do not match the parts {sorted(parts)}")
    return "".join(parts[p] if k % 2 else p for k, p in enumerate(pieces))


def common_css() -> str:
    """The style both pages share (``static/common.css``); each page adds its own on top."""
    return resources.files(__package__).joinpath("static", "common.css").read_text(encoding="utf-8")


def common_js() -> str:
    """The JS both pages share (``static/common.js``), with the constants it takes from Python."""
    text = resources.files(__package__).joinpath("static", "common.js").read_text(encoding="utf-8")
    if text.count(STATUSES_PLACEHOLDER) != 1:
        raise ValueError(f"common.js must hold {STATUSES_PLACEHOLDER!r} once")
    return with_colours(text.replace(STATUSES_PLACEHOLDER, json.dumps(list(STATUSES))))
