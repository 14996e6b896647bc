"""Mongo-style queries over replayed tasks, like the Hub's ``db_query``.

``state.query({"status": "error", "engine_id": {"$in": [0, 1]}}, keys=["msg_id", "error"])``
returns a list of dicts with TaskRecord-style keys. Operators: ``$in $nin $eq $ne
$gt $gte $lt $lte $glob``, plus IPython's original ``$ge`` and ``$le``, which its
table defined as ``>`` and ``<`` (aliases of ``$gt`` and ``$lt``).
"""

from __future__ import annotations

import fnmatch
import re
from datetime import datetime, timedelta, timezone

from .errors import QueryError
from .table import STATUS_ORDER

TIME_KEYS = ("submitted", "started", "completed", "received")
NUMBER_KEYS = (
    "engine_id",
    "target",
    "chunk",
    "run_seconds",
    "queue_seconds",
    "wall_seconds",
    "attempts",
    "request_bytes",
    "reply_bytes",
)
TEXT_KEYS = (
    "msg_id",
    "name",
    "label",
    "function",
    "queue",
    "status",
    "error",
    "ename",
    "evalue",
    "traceback",
    "stdout",
    "stderr",
    "engine_uuid",
    "resubmitted",
    "resubmit_of",
    "broadcast",
)
KEYS = (
    "msg_id",
    "name",
    "label",
    "function",
    "queue",
    "target",
    "chunk",
    "engine_id",
    "engine_uuid",
    "status",
    "submitted",
    "started",
    "completed",
    "received",
    "run_seconds",
    "queue_seconds",
    "wall_seconds",
    "error",
    "ename",
    "evalue",
    "traceback",
    "attempts",
    "stdout",
    "stderr",
    "resubmitted",
    "resubmit_of",
    "broadcast",
    "request_bytes",
    "reply_bytes",
)

ALIASES = {"$ge": "$gt", "$le": "$lt"}  # IPython's table: '$ge' is '>', '$le' is '<'
OPERATORS = {
    "$eq": lambda v, a: v == a,
    "$ne": lambda v, a: v != a,
    "$in": lambda v, a: v in a,
    "$nin": lambda v, a: v not in a,
    "$gt": lambda v, a: v is not None and v > a,
    "$gte": lambda v, a: v is not None and v >= a,
    "$lt": lambda v, a: v is not None and v < a,
    "$lte": lambda v, a: v is not None and v <= a,
    "$glob": lambda v, a: isinstance(v, str) and a.match(v) is not None,
}


def parse_time(value, key="time") -> datetime:
    """A UTC datetime from a datetime or an ISO 8601 string (naive means UTC)."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise QueryError(f"{key}: {value!r} is not an ISO 8601 time") from None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    raise QueryError(f"{key}: expected a time (ISO 8601 string or datetime), not {value!r}")


def _operand(key, op, value):
    """Convert and check one operand for ``key``."""
    if op in ("$in", "$nin"):
        if not isinstance(value, (list, tuple, set)):
            raise QueryError(f"{key}: {op} takes a list, not {value!r}")
        return [_operand(key, "$eq", v) for v in value]
    if op == "$glob":
        if not isinstance(value, str) or key not in TEXT_KEYS:
            raise QueryError(f"{key}: $glob takes a pattern and applies to text keys")
        return re.compile(fnmatch.translate(value))
    if value is None:
        if op in ("$eq", "$ne"):
            return None
        raise QueryError(f"{key}: {op} cannot compare with null")
    if key in TIME_KEYS:
        return parse_time(value, key)
    if key in NUMBER_KEYS:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise QueryError(f"{key}: expected a number, not {value!r}")
        return value
    if not isinstance(value, str):
        raise QueryError(f"{key}: expected a string, not {value!r}")
    if key == "status" and value not in STATUS_ORDER:
        raise QueryError(f"status: no status {value!r} (statuses: {', '.join(STATUS_ORDER)})")
    return value


def compile_where(where: dict):
    """A predicate over task records for a Mongo-style ``where`` dict; QueryError if invalid."""
    if not isinstance(where, dict):
        raise QueryError(f"a query is a JSON object of key: condition, not {where!r}")
    tests = []
    for key, condition in where.items():
        if key not in KEYS:
            raise QueryError(f"unknown key {key!r} (keys: {', '.join(KEYS)})")
        if isinstance(condition, dict) and condition and all(str(k).startswith("$") for k in condition):
            for op, value in condition.items():
                op = ALIASES.get(op, op)
                if op not in OPERATORS:
                    raise QueryError(f"{key}: unknown operator {op!r} (operators: {', '.join(OPERATORS)}, $ge, $le)")
                tests.append((key, OPERATORS[op], _operand(key, op, value)))
        else:
            tests.append((key, OPERATORS["$eq"], _operand(key, "$eq", condition)))

    def matches(record: dict) -> bool:
        try:
            return all(test(record[key], operand) for key, test, operand in tests)
        except TypeError:  # e.g. comparing a string field with a number
            return False

    return matches


def task_record(task, engines) -> dict:
    """The queryable record of a task: TaskRecord-style keys, times as UTC datetimes."""
    engine = engines.get(task.engine_id)
    return {
        "msg_id": task.msg_id,
        "name": task.name,
        "label": task.label,
        "function": task.function,
        "queue": task.queue,
        "target": task.target,
        "chunk": task.chunk,
        "engine_id": task.engine_id,
        "engine_uuid": engine.uuid if engine is not None else None,
        "status": task.status,
        "submitted": task.submitted,
        "started": task.started,
        "completed": task.completed,
        "received": task.received,
        "run_seconds": task.run_seconds,
        "queue_seconds": task.queue_seconds,
        "wall_seconds": task.wall_seconds,
        "error": task.error,
        "ename": task.ename,
        "evalue": task.evalue,
        "traceback": task.traceback,
        "attempts": len(task.attempts_us) if task.attempts_us else (1 if task.start_us is not None else 0),
        "stdout": task.stdout,
        "stderr": task.stderr,
        "resubmitted": task.resubmitted,
        "resubmit_of": task.resubmit_of,
        "broadcast": task.broadcast,
        "request_bytes": task.request_bytes,
        "reply_bytes": task.reply_bytes,
    }


def query(state, where: dict, keys=None, sort: str | None = None, limit: int | None = None) -> list[dict]:
    """The records of the tasks matching ``where``, limited to ``keys`` (msg_id always included),
    sorted by ``sort`` (``"-run_seconds"``: largest first; tasks without a value last), at most ``limit``."""
    matches = compile_where(where)
    if keys is not None:
        unknown = [k for k in keys if k not in KEYS]
        if unknown:
            raise QueryError(f"unknown key {unknown[0]!r} in keys (keys: {', '.join(KEYS)})")
        keys = ["msg_id"] + [k for k in keys if k != "msg_id"]
    by = sort.lstrip("-") if sort else None
    if by is not None and by not in KEYS:
        raise QueryError(f"cannot sort by {by!r} (keys: {', '.join(KEYS)})")
    records = [r for r in (task_record(task, state.engines) for task in state.tasks.values()) if matches(r)]
    if by is not None:
        present = [r for r in records if r[by] is not None]
        present.sort(key=lambda r: r[by], reverse=sort.startswith("-"))
        records = present + [r for r in records if r[by] is None]
    if limit is not None:
        records = records[:limit]
    return records if keys is None else [{k: r[k] for k in keys} for r in records]


_RELATIVE = re.compile(r"\+?((?:\d+(?:\.\d+)?(?:ms|h|m|s))+)")


def is_relative(text: str) -> bool:
    """True for a time relative to the run's start ('+90s', '1h30m'), false for an absolute one."""
    return _RELATIVE.fullmatch(text.strip()) is not None


def parse_until(text: str, origin: datetime | None) -> datetime:
    """An absolute ISO time, or a time relative to ``origin``: '+90s', '5m', '1h30m', '250ms'."""
    match = _RELATIVE.fullmatch(text.strip())
    if match:
        if origin is None:
            raise QueryError("a relative --until needs a log with a start time")
        total = timedelta()
        for number, unit in re.findall(r"(\d+(?:\.\d+)?)(ms|h|m|s)", match.group(1)):
            total += timedelta(
                **{{"ms": "milliseconds", "h": "hours", "m": "minutes", "s": "seconds"}[unit]: float(number)}
            )
        return origin + total
    if re.fullmatch(r"\d+(?:\.\d+)?", text.strip()):
        raise QueryError(
            f"--until {text.strip()}: give a unit, as in +{text.strip()}s (from the start), or an ISO 8601 time"
        )
    return parse_time(text, "--until")
