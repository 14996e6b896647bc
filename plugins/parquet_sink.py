"""``parquet`` sink: hand a run to DuckDB, Polars, pandas or Spark.

Writes a tasks table (one row per task, typed UTC timestamps) and, on request,
an events table beside it. Needs the ``parquet`` extra (pyarrow).
"""

from __future__ import annotations

from pathlib import Path

from ipyrecorder.sink import Option, Sink, SinkError


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise SinkError("the parquet sink needs pyarrow: pip install 'ipyrecorder[parquet]'") from None
    return pyarrow


def tasks_table(state):
    """A pyarrow Table with one row per task."""
    pa = _pyarrow()
    tasks = list(state.tasks.values())
    ts = pa.timestamp("us", tz="UTC")

    def column(values, type_):
        return pa.array(values, type=type_)

    started = [t.effective_start_us for t in tasks]
    columns = {
        "msg_id": column([t.msg_id for t in tasks], pa.string()),
        "name": column([t.name for t in tasks], pa.string()),
        "label": column([t.label for t in tasks], pa.string()),
        "function": column([t.function for t in tasks], pa.string()),
        "queue": column([t.queue for t in tasks], pa.string()),
        "chunk": column([t.chunk for t in tasks], pa.int64()),
        "engine_id": column([t.engine_id for t in tasks], pa.int64()),
        "status": column([t.status for t in tasks], pa.string()),
        "submitted": column([t.submitted_us for t in tasks], ts),
        "started": column(started, ts),
        "completed": column([t.completed_us for t in tasks], ts),
        "received": column([t.received_us for t in tasks], ts),
        "queue_seconds": column([t.queue_seconds for t in tasks], pa.float64()),
        "run_seconds": column([t.run_seconds for t in tasks], pa.float64()),
        "wall_seconds": column([t.wall_seconds for t in tasks], pa.float64()),
        "error": column([t.error for t in tasks], pa.string()),
        "traceback": column([t.traceback for t in tasks], pa.string()),
        "broadcast": column([t.broadcast for t in tasks], pa.string()),
        "stdout": column([t.stdout for t in tasks], pa.string()),
        "stderr": column([t.stderr for t in tasks], pa.string()),
    }
    return pa.table(columns)


def events_table(events):
    """A pyarrow Table with one row per event: kind, msg_id, time, engine, and the rest as JSON."""
    import json

    pa = _pyarrow()
    kinds, msg_ids, times, engines, details = [], [], [], [], []
    for event in events:
        if event["kind"] == "header":
            continue
        kinds.append(event["kind"])
        msg_ids.append(event.get("msg_id"))
        times.append(event.get("t") or event.get("completed") or event.get("started"))
        engines.append(event.get("engine_id") if isinstance(event.get("engine_id"), int) else None)
        rest = {k: v for k, v in event.items() if k not in ("kind", "msg_id", "t", "engine_id")}
        details.append(json.dumps(rest, default=str))
    return pa.table(
        {
            "kind": pa.array(kinds, pa.string()),
            "msg_id": pa.array(msg_ids, pa.string()),
            "t": pa.array(times, pa.timestamp("us", tz="UTC")),
            "engine_id": pa.array(engines, pa.int64()),
            "details": pa.array(details, pa.string()),
        }
    )


class ParquetSink(Sink):
    name = "parquet"
    description = "Tasks table (and optionally an events table) as Parquet; needs ipyrecorder[parquet]."
    options = (
        Option("events", bool, False, "also write the events table to OUT with .events.parquet"),
        Option("compression", str, "zstd", "parquet compression codec (zstd, snappy, gzip, none)"),
    )
    binary = True
    suffix = ".parquet"

    def write(self, log, out):
        _pyarrow()
        import pyarrow.parquet as pq

        compression = self.config["compression"]
        compression = None if compression == "none" else compression
        pq.write_table(tasks_table(log.state), out, compression=compression)
        if self.config["events"]:
            name = getattr(out, "name", None)
            if not isinstance(name, str):
                raise SinkError("events=true needs a file name (-o OUT.parquet), not stdout")
            target = Path(name).with_suffix(".events.parquet")
            pq.write_table(events_table(log.events()), target, compression=compression)
