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
import sys
from array import array
from importlib import resources

from ._version import __version__
from .colours import with_colours
from .events import from_us, split_msg_id, to_us

STATUSES = ("ok", "error", "aborted", "running", "pending")
TRACEBACK_CHARS = 4000  # the last characters of each failed task's traceback that a page carries
STATUS_CODE = {name: code for code, name in enumerate(STATUSES)}
STATUSES_PLACEHOLDER = "/*@@STATUSES@@*/ null"
INT32_MISSING = -(2**31)
NO_ENGINE = 2**32 - 1  # engine row of a task that never reached an engine
NO_SUFFIX = 2**32 - 1  # msg_id stored whole in the string table


# A changed task or engine as a live batch sends it (the page reads rows by these names).
TASK_FIELDS = ("mp", "ms", "name", "fn", "engine", "status", "sub", "start", "end", "recv", "error", "stdout", "stderr")
ENGINE_FIELDS = ("id", "registered", "unregistered", "present", "done", "errors", "busy_us", "current", "current_start")


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


def task_fields(task, chars: int) -> list:
    """``task`` as a live batch row (``TASK_FIELDS``); a msg_id without a numeric suffix is whole in ``mp``."""
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
        task.effective_start_us,
        task.completed_us,
        task.received_us,
        error,
        _head(task.stdout_chunks, chars),
        _head(task.stderr_chunks, chars),
    ]


def engine_fields(engine) -> list:
    """``engine`` as a live batch row (``ENGINE_FIELDS``): the task it runs is ``current``, since ``current_start``."""
    task = engine.current
    return [
        engine.id,
        engine.registered_us,
        engine.unregistered_us,
        engine.present_at_start,
        engine.tasks_done,
        engine.errors,
        engine.busy_us,
        task.msg_id if task is not None else None,
        task.start_us if task is not None else None,
    ]


def _int_column(values):
    """The narrowest unsigned typed-array dtype for non-negative ints."""
    top = max(values, default=0)
    if top < 2**8:
        return "u1", array("B", values)
    if top < 2**16:
        return "u2", array("H", values)
    return "u4", array("I", values)


def _time_column(values):
    """int32 offsets when they fit (missing: -2**31), else float64 (missing: NaN)."""
    present = [v for v in values if v is not None]
    if not present or (min(present) > INT32_MISSING and max(present) < 2**31):
        return "i4", array("i", [INT32_MISSING if v is None else v for v in values])
    nan = float("nan")
    return "f8", array("d", [nan if v is None else float(v) for v in values])


def _deltas(values):
    """Each present value minus the previous present one (the first minus 0); None stays None."""
    out = []
    append = out.append
    previous = 0
    for value in values:
        if value is None:
            append(None)
        else:
            append(value - previous)
            previous = value
    return out


def _relative(values, refs):
    """value - ref where both are present; the value itself where ref is missing."""
    return [v if v is None or r is None else v - r for v, r in zip(values, refs)]


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


def build_report_data(state, output_chars: int = 200, log_name: str = "", title: str | None = None):
    """(meta dict, raw blob bytes) for ``state``: the page's whole data."""
    start_us, end_us = state.span_us()
    tasks = state.tasks
    header = state.headers[0] if state.headers else {}
    origin = start_us
    if origin is None:
        firsts = [t.effective_start_us for t in tasks.values()]
        firsts = [t for t in firsts if t is not None]
        if firsts:
            origin = min(firsts)
        elif header.get("t0") is not None:
            origin = to_us(header["t0"])
        else:
            origin = 0

    engine_ids = {e for e in state.engines if e is not None}
    engine_ids |= {t.engine_id for t in tasks.values() if t.engine_id is not None}
    engine_ids = sorted(engine_ids, key=lambda e: (0, e, "") if isinstance(e, int) else (1, 0, str(e)))
    row_of = {e: i for i, e in enumerate(engine_ids)}

    strings = _Strings()
    n = len(tasks)
    sub, start, end, recv = [None] * n, [None] * n, [None] * n, [None] * n
    row, status, fn, name = [0] * n, [0] * n, [0] * n, [0] * n
    mp, ms = [0] * n, [0] * n
    stdout, stderr, errors, tracebacks = [], [], [], []
    status_code = STATUS_CODE
    get_row = row_of.get
    lookup = strings.index.get
    for i, task in enumerate(tasks.values()):
        t = task.submitted_us
        if t is not None:
            sub[i] = t - origin
        t = task.started_us
        if t is None:
            t = task.start_us
        if t is not None:
            start[i] = t - origin
        t = task.completed_us
        if t is not None:
            end[i] = t - origin
        t = task.received_us
        if t is not None:
            recv[i] = t - origin
        row[i] = get_row(task.engine_id, NO_ENGINE)
        status[i] = status_code.get(task.status, 4)
        text = task.function
        k = lookup(text) if type(text) is str else (0 if text is None else None)
        fn[i] = strings(text) if k is None else k
        text = task.name
        k = lookup(text) if type(text) is str else (0 if text is None else None)
        name[i] = strings(text) if k is None else k
        msg_id = task.msg_id
        prefix, suffix = split_msg_id(msg_id)
        if type(suffix) is int and suffix < NO_SUFFIX:
            k = lookup(prefix)
            mp[i] = strings(prefix) if k is None else k
            ms[i] = suffix
        else:
            mp[i] = strings(msg_id)
            ms[i] = NO_SUFFIX
        if output_chars:
            output = task.stdout
            if output:
                stdout.append((i, output[:output_chars]))
            output = task.stderr
            if output:
                stderr.append((i, output[:output_chars]))
        if task.ename is not None or status[i] == 1:
            errors.append((i, strings(task.error or "(no error message)")))
            if task.traceback:  # its end says what failed: keep that
                tracebacks.append((i, strings(task.traceback[-TRACEBACK_CHARS:])))

    columns = {}
    chunks = []
    offset = 0

    def add(col, dtype, values, transform=None):
        """Append one column: little-endian, bytes split into planes (byte 0 of every value, then byte 1...)."""
        nonlocal offset
        if sys.byteorder == "big":
            values.byteswap()
        data = values.tobytes()
        width = values.itemsize
        if width > 1:  # byte planes deflate far better than interleaved numbers
            data = b"".join(data[k::width] for k in range(width))
        columns[col] = [dtype, offset, len(values), transform]
        pad = -len(data) % 8
        chunks.append(data + b"\0" * pad)
        offset += len(data) + pad

    # Times, stored so that they compress: start as the change from the previous task's start,
    # the others relative to the task's own start or end (or absolute when that is missing).
    add("start", *_time_column(_deltas(start)), "delta")
    add("end", *_time_column(_relative(end, start)), "rel:start")
    add("sub", *_time_column(_relative(sub, start)), "rel:start")
    add("recv", *_time_column(_relative(recv, end)), "rel:end")
    add("row", "u4", array("I", row))
    add("status", "u1", array("B", status))
    for col, values in (("fn", fn), ("name", name), ("mp", mp)):
        add(col, *_int_column(values))
    steps = _deltas(ms)
    if min(steps, default=0) > INT32_MISSING and max(steps, default=0) < 2**31:
        add("ms", "i4", array("i", steps), "delta")
    else:
        add("ms", "u4", array("I", ms))
    text = json.dumps(
        {"strings": strings.items, "stdout": stdout, "stderr": stderr, "errors": errors, "tracebacks": tracebacks},
        ensure_ascii=False,
        separators=(",", ":"),
        default=str,
    ).encode("utf-8", "surrogatepass")
    chunks.append(text)
    blob = b"".join(chunks)

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
            for key in ("tasks", "by_status", "start", "end", "span_seconds", "marks", "segments", "closed", "damage")
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
        "text": [offset, len(text)],
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
