"""Figure 4: bytes on disk per task, against ipyparallel's own metadata as JSON.

Measured: size of a complete log (header, two engine registrations, then
submit + start + complete for each of 2,000 tasks without output, close event)
divided by the number of tasks.
Baseline: what ipy_client_usage keeps for the same tasks: ``json.dumps`` of
``{msg_id: metadata}`` where each metadata dict has the 18 keys of
ipyparallel's ``Client.metadata`` entries, filled as after a successful task,
times as ISO 8601 strings. Both the compact dump (the ratio's baseline) and an
``indent=2`` dump are reported.
"""

from __future__ import annotations

import json
import os
from datetime import timedelta

from ._util import ENGINE_UUIDS, EPOCH, log, msg_id, now_us, write_task_log

# The keys of ipyparallel.client.client.Metadata (9.2); checked when importable.
METADATA_KEYS = (
    "msg_id",
    "submitted",
    "started",
    "completed",
    "received",
    "engine_uuid",
    "engine_id",
    "follow",
    "after",
    "status",
    "execute_input",
    "execute_result",
    "error",
    "stdout",
    "stderr",
    "outputs",
    "data",
    "label",
)


def _check_keys():
    try:
        from ipyparallel.client.client import Metadata
    except ImportError:  # pragma: no cover
        return None
    return tuple(Metadata().keys()) == METADATA_KEYS


def _iso(us: int) -> str:
    # ipyparallel's dates are timezone-aware; isoformat() spells the offset out.
    return (EPOCH + timedelta(microseconds=us)).isoformat()


def metadata_json(tasks: int, t0_us: int, **dump_kwargs) -> str:
    records = {}
    for i in range(tasks):
        sub_us = t0_us + 1_000 + int(i * 2_500)
        md = dict.fromkeys(METADATA_KEYS)
        md.update(
            msg_id=msg_id(i),
            submitted=_iso(sub_us),
            started=_iso(sub_us + 2_800),
            completed=_iso(sub_us + 3_700),
            received=_iso(sub_us + 6_400),
            engine_uuid=ENGINE_UUIDS[i % 2],
            engine_id=i % 2,
            follow=[],
            after=[],
            status="ok",
            stdout="",
            stderr="",
            outputs=[],
            data={},
        )
        records[md["msg_id"]] = md
    return json.dumps(records, **dump_kwargs)


def run(tmpdir, tasks: int = 2000) -> dict:
    t0_us = now_us()
    path = os.path.join(tmpdir, "size.mpk")
    write_task_log(path, tasks, t0_us)
    size = os.path.getsize(path)
    os.remove(path)
    compact = len(metadata_json(tasks, t0_us).encode())
    indented = len(metadata_json(tasks, t0_us, indent=2).encode())
    log(f"[size] {tasks} tasks: log {size:,} B, metadata JSON {compact:,} B")
    per_task = size / tasks
    return {
        "tasks": tasks,
        "log_bytes": size,
        "log_bytes_per_task": per_task,
        "json_bytes_per_task": compact / tasks,
        "json_indent2_bytes_per_task": indented / tasks,
        "ratio": per_task / (compact / tasks),
        "ratio_vs_indent2": per_task / (indented / tasks),
        "metadata_keys_match_ipyparallel": _check_keys(),
    }
