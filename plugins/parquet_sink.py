"""``parquet`` sink: hand a run to DuckDB, Polars, pandas or Spark.

Writes a tasks table (one row per task, typed UTC timestamps) and, on request,
an events table beside it. Needs the ``parquet`` extra (pyarrow).
"""

from __future__ import annotations

from pathlib import Path

from ipyrecorder.events import QUEUES
from ipyrecorder.records import records
from ipyrecorder.sink import Option, Sink, SinkError
from ipyrecorder.table import NIL, NONE, STATUS_ORDER


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise SinkError("the parquet sink needs pyarrow: pip install 'ipyrecorder[parquet]'") from None
    return pyarrow


ROW_GROUP = 1 << 20  # tasks per table written at a time: the sink's memory is one group's, not the run's


def tasks_table(state, start: int = 0, stop: int | None = None):
    """A pyarrow Table with one row per task (those ``start:stop``), built from the state's
    columns (no ``Task`` per row)."""
    pa = _pyarrow()
    import numpy as np
    import pyarrow.compute as pc

    table = state.table
    rows = slice(start, len(table) if stop is None else stop)
    ts = pa.timestamp("us", tz="UTC")

    def view(name):
        return table.view(name)[rows]

    def ints(values, type_=None):
        return pa.array(values, mask=values == NIL, type=type_ or pa.int64())

    def texts(codes, names):
        """Indexes into ``names`` (NONE: null) as a string column."""
        codes = np.asarray(codes, np.int32)
        names = pa.array(list(names), pa.string())
        return pa.DictionaryArray.from_arrays(pa.array(codes, mask=codes == NONE), names).dictionary_decode()

    def seconds(later, earlier):
        missing = (later == NIL) | (earlier == NIL)
        return pa.array(np.where(missing, 0, later - earlier) / 1e6, mask=missing, type=pa.float64())

    prefixes = texts(view("prefix"), table.prefixes)
    numbered = ints(view("suffix")).cast(pa.string())
    msg_id = pc.if_else(pc.is_null(numbered), prefixes, pc.binary_join_element_wise(prefixes, numbered, ""))
    submitted, started = view("submitted"), table.effective_start()[rows]
    completed, received = view("completed"), view("received")
    columns = {
        "msg_id": msg_id,
        "name": texts(view("name"), table.strings),
        "label": texts(view("label"), table.strings),
        "function": texts(view("function"), table.strings),
        "queue": texts(view("queue"), QUEUES),
        "chunk": ints(view("chunk")),
        "engine_id": ints(view("engine")),
        "status": texts(table.statuses()[rows], STATUS_ORDER),
        "submitted": ints(submitted, ts),
        "started": ints(started, ts),
        "completed": ints(completed, ts),
        "received": ints(received, ts),
        "queue_seconds": seconds(started, submitted),
        "run_seconds": seconds(completed, started),
        "wall_seconds": seconds(received, submitted),
        "peak_rss": pa.array(
            map(table.peak_rss, range(len(table))[rows]) if table.samples else [None] * len(submitted), pa.int64()
        ),
        "request_bytes": ints(table.sizes("request_bytes", rows.start, rows.stop)),
        "reply_bytes": ints(table.sizes("reply_bytes", rows.start, rows.stop)),
    }
    texts_of = records(table, rows.start, rows.stop, ("error", "traceback", "broadcast", "stdout", "stderr"))
    columns.update((key, pa.array(values, pa.string())) for key, values in texts_of.items())
    return with_nullable_ints(pa.table(columns))


def with_nullable_ints(table):
    """``table`` with pandas metadata that reads its integer columns back as nullable integers
    (``Int64``): without it pandas makes an integer column with a missing value float64 with NaN.
    (Written when pandas is installed; any other reader sees the int64 columns either way.)"""
    try:
        import pandas as pd
    except ImportError:
        return table
    pa = _pyarrow()
    empty = table.slice(0, 0).to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
    return table.replace_schema_metadata(pa.Schema.from_pandas(empty, preserve_index=False).metadata)


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
    return _arrow_table(
        kind=(kinds, pa.string()),
        msg_id=(msg_ids, pa.string()),
        t=(times, pa.timestamp("us", tz="UTC")),
        engine_id=(engines, pa.int64()),
        details=(details, pa.string()),
    )


def _arrow_table(**columns):
    """A pyarrow Table from ``name=(values, type)``."""
    pa = _pyarrow()
    return pa.table({name: pa.array(values, type_) for name, (values, type_) in columns.items()})


class ParquetSink(Sink):
    name = "parquet"
    description = "Tasks table (and optionally an events table) as Parquet; needs ipyrecorder[parquet]."
    options = (
        Option("events", bool, False, "also write the events table to OUT with .events.parquet"),
        Option(
            "samples", bool, True, "write the engines' resource samples (engine_stats) to OUT with .samples.parquet"
        ),
        Option("compression", str, "zstd", "parquet compression codec (zstd, snappy, gzip, none)"),
    )
    binary = True
    suffix = ".parquet"

    def write(self, log, out):
        _pyarrow()
        import pyarrow.parquet as pq

        compression = self.config["compression"]
        compression = None if compression == "none" else compression
        state = log.state
        first = tasks_table(state, 0, ROW_GROUP)
        with pq.ParquetWriter(out, first.schema, compression=compression) as writer:
            writer.write_table(first)
            del first
            for start in range(ROW_GROUP, len(state.table), ROW_GROUP):
                writer.write_table(tasks_table(state, start, start + ROW_GROUP))
        if state.table.samples and self.config["samples"] and isinstance(getattr(out, "name", None), str):
            pq.write_table(samples_table(state), _beside(out, ".samples.parquet", "samples"), compression=compression)
        if self.config["events"]:
            pq.write_table(
                events_table(log.events()), _beside(out, ".events.parquet", "events"), compression=compression
            )


def _beside(out, suffix: str, option: str) -> Path:
    """Where a table written beside OUT goes (OUT with ``suffix``): a file name is needed."""
    name = getattr(out, "name", None)
    if not isinstance(name, str):
        raise SinkError(f"{option}=true needs a file name (-o OUT.parquet), not stdout")
    return Path(name).with_suffix(suffix)


def samples_table(state):
    """A pyarrow Table with one row per resource sample (engine_stats): engine, its host, time,
    CPU %, resident and the host's available memory."""
    pa = _pyarrow()
    rows = [
        (engine_id, state.engines[engine_id].host if engine_id in state.engines else None, *sample)
        for engine_id, samples in sorted(state.table.samples.items())
        for sample in samples
    ]
    engine_id, host, t, cpu, rss, available = zip(*rows) if rows else ((),) * 6
    return _arrow_table(
        engine_id=(engine_id, pa.int64()),
        host=(host, pa.string()),
        t=(t, pa.timestamp("us", tz="UTC")),
        cpu=(cpu, pa.float64()),
        rss=(rss, pa.int64()),
        available=(available, pa.int64()),
    )
