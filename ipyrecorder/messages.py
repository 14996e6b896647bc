"""ipyparallel's messages and Hub records, turned into event dicts.

The recorder (one client's tap) and the observer (``hub.py``, every client)
see the same kinds of raw material: iopub messages from engines, registration
notifications, and the Hub's TaskRecords. This module is the one place that
says which events each becomes.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from .events import QUEUE_CODES, STATUS_CODES

MAX_TEXT = 1 << 20  # characters: longer stdout/stderr is split into several events, a longer traceback cut
_TERMINAL_CODES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")  # IPython colours its tracebacks


def plain_traceback(lines) -> str | None:
    """A remote traceback as plain text: the engine's lines joined, terminal colours removed."""
    if not lines:
        return None
    text = lines if isinstance(lines, str) else "\n".join(map(str, lines))
    text = _TERMINAL_CODES.sub("", text)
    if len(text) > MAX_TEXT:  # its end says what failed: keep that
        text = f"[{len(text) - MAX_TEXT} characters cut]\n" + text[-MAX_TEXT:]
    return text or None


def error_fields(error) -> tuple:
    """(ename, evalue, traceback) of a RemoteError, any other exception, or an error dict."""
    if isinstance(error, dict):
        return error.get("ename"), error.get("evalue"), plain_traceback(error.get("traceback"))
    if isinstance(error, BaseException):
        return (
            getattr(error, "ename", None) or type(error).__name__,
            getattr(error, "evalue", None) or str(error),
            plain_traceback(getattr(error, "traceback", None)),
        )
    return None, None, None


def iopub_events(msg, engine_id_of, capture_output: bool = True):
    """Events for one iopub message of a task: start (busy), output, attempt error."""
    msg_type = msg["header"]["msg_type"]
    msg_id = (msg.get("parent_header") or {}).get("msg_id")
    t = msg["header"]["date"]
    content = msg["content"]
    if msg_type == "status":
        if content.get("execution_state") == "busy":
            engine = engine_id_of((msg.get("metadata") or {}).get("engine"))
            yield {"kind": "start", "msg_id": msg_id, "t": t, "engine_id": engine}
    elif msg_type == "stream":
        if capture_output:
            text = content.get("text", "")
            kind = "stderr" if content.get("name") == "stderr" else "stdout"
            for i in range(0, max(len(text), 1), MAX_TEXT):
                yield {"kind": kind, "msg_id": msg_id, "t": t, "text": text[i : i + MAX_TEXT]}
    elif msg_type == "error":
        yield {
            "kind": "attempt_error",
            "msg_id": msg_id,
            "t": t,
            "engine_id": engine_id_of((msg.get("metadata") or {}).get("engine")),
            "ename": content.get("ename"),
            "evalue": content.get("evalue"),
            "traceback": plain_traceback(content.get("traceback")),
        }


def engine_event(t: float, event: dict) -> dict | None:
    """The event for a client registration notification (``t`` in epoch seconds)."""
    when = datetime.fromtimestamp(t, timezone.utc)
    if event.get("event") == "register":
        return {"kind": "engine_register", "t": when, "engine_id": event.get("id"), "uuid": event.get("uuid")}
    if event.get("event") == "unregister":
        return {"kind": "engine_unregister", "t": when, "engine_id": event.get("id")}
    return None


def final_record_events(msg_id, record, engine_id):
    """The start and the output of a task known only by its final record.

    For snapshots (AsyncResult metadata) and Hub imports (TaskRecords): one start,
    and stdout/stderr as one chunk each, at the time the output was complete.
    """
    if record.get("started") is not None:
        yield {"kind": "start", "msg_id": msg_id, "t": record["started"], "engine_id": engine_id}
    for stream in ("stdout", "stderr"):
        if record.get(stream):
            t = record.get("completed") or record.get("started") or record.get("submitted")
            yield {"kind": stream, "msg_id": msg_id, "t": t, "text": record[stream]}


def depend_events(msg_id, metadata: dict):
    """The depend events of a load-balanced task: one per task it waits on (``after``) or must
    run beside (``follow``), as the view rendered them (a list of msg_ids, or a Dependency's
    dict: ``all=False`` is any one of them)."""
    for relation in ("after", "follow"):
        found = metadata.get(relation)
        if not found:
            continue
        every = True
        if isinstance(found, dict):
            every = found.get("all", True)
            found = found.get("dependencies") or ()
        for on in found:
            yield {"kind": "depend", "msg_id": msg_id, "on": str(on), "follow": relation == "follow", "any": not every}


def engine_stats_event(content: dict) -> dict | None:
    """The event of one message of an engine's sampler (``engine_stats.py``): who it is, or a
    sample of its resources; None for a message that is neither (numbers that are not numbers
    are left out)."""

    def number(key, kind=int):
        value = content.get(key)
        return value if isinstance(value, kind) and not isinstance(value, bool) else None

    engine_id, t = number("engine_id"), number("t", (int, float))
    if engine_id is None or t is None:
        return None
    if content.get("what") == "info":
        host = content.get("host")
        return {
            "kind": "engine_info",
            "t": t,
            "engine_id": engine_id,
            "host": host if isinstance(host, str) else None,
            "pid": number("pid"),
            "cpus": number("cpus"),
            "memory": number("memory"),
        }
    if content.get("what") == "sample":
        cpu = number("cpu", (int, float))
        return {
            "kind": "engine_sample",
            "t": t,
            "engine_id": engine_id,
            "cpu": None if cpu is None else round(float(cpu), 1),
            "rss": number("rss"),
            "available": number("available"),
        }
    return None


def submission(record) -> dict:
    """The submit event of a Hub TaskRecord."""
    header = record.get("header") or {}
    return {
        "kind": "submit",
        "msg_id": record["msg_id"],
        "t": record.get("submitted") or header.get("date"),
        "queue": record.get("queue") if record.get("queue") in QUEUE_CODES else None,
        "function": "execute" if header.get("msg_type") == "execute_request" else None,
        "label": record.get("label"),
    }


def completion(record, engine_id_of) -> dict | None:
    """The complete event of a finished Hub TaskRecord (None if it has not finished).

    ``db_query`` gives the Hub's own fields (started, completed, engine_uuid,
    error); a ``result_request`` reply gives the result's header and metadata.
    ``received`` is the Hub's clock here, not a client's.
    """
    header = record.get("result_header") or {}
    meta = record.get("result_metadata") or {}
    completed = record.get("completed") or header.get("date")
    if completed is None:
        return None
    content = record.get("result_content")
    content = content if isinstance(content, dict) else {}
    error = record.get("error") or (content if content.get("status") not in ("ok", None) else {})
    status = content.get("status")
    if status not in STATUS_CODES:
        status = "error" if error else "ok"
    ename, evalue, traceback = error_fields(error) if status != "ok" else (None, None, None)
    return {
        "kind": "complete",
        "msg_id": record["msg_id"],
        "status": status,
        "started": record.get("started") or meta.get("started"),
        "completed": completed,
        "received": record.get("received"),
        "engine_id": engine_id_of(record.get("engine_uuid") or meta.get("engine")),
        "ename": ename,
        "evalue": evalue,
        "traceback": traceback,
    }


def metadata_completion(msg_id, md: dict, engine_id, failure=None, reply_bytes=None) -> dict:
    """The complete event of a task from the client's metadata for it (recorder, snapshot).

    ``failure`` is the exception the task's future holds, if any: the client
    makes up EngineError replies without metadata when an engine dies.
    ``reply_bytes``: the size of the reply's buffers, where the tap measured it.
    """
    status = md.get("status")
    if status not in STATUS_CODES:
        status = "ok" if status is None and failure is None else "error"
    ename, evalue, traceback = error_fields(md.get("error") or failure) if status != "ok" else (None, None, None)
    return {
        "kind": "complete",
        "msg_id": msg_id,
        "status": status,
        "started": md.get("started"),
        "completed": md.get("completed"),
        "received": md.get("received"),
        "engine_id": engine_id if isinstance(engine_id, int) else None,
        "ename": ename,
        "evalue": evalue,
        "traceback": traceback,
        "reply_bytes": reply_bytes,
    }
