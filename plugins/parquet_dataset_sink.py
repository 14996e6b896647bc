"""``parquet-dataset`` sink: every event of one or more logs as a partitioned Parquet dataset.

For histories past one machine's memory: the logs are read frame by frame and
never folded, so memory stays bounded by one batch of rows whatever their size.
The dataset is a directory with one Hive partition per event kind
(``kind=submit/part-00000.parquet``, ...), whose columns are the kind's fields
(docs/format.md, section 6) plus ``log`` and ``segment``; DuckDB, Polars and
Spark read it as it is (docs/sinks.md has the queries). Needs the ``parquet``
extra (pyarrow).
"""

from __future__ import annotations

import json
import os

from ipyrecorder.events import KINDS, QUEUES, STATUSES
from ipyrecorder.log import LogReader
from ipyrecorder.sink import Option, Sink, SinkError

BATCH_ROWS = 1 << 16  # rows of one kind gathered before a part file is written


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.compute  # noqa: F401
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise SinkError("the parquet-dataset sink needs pyarrow: pip install 'ipyrecorder[parquet]'") from None
    return pyarrow


def _types(pa) -> dict:
    """The Arrow type of each field codec (docs/format.md, section 3.1)."""
    text = pa.string()
    return {
        "task": text,
        "time": pa.timestamp("us", tz="UTC"),
        "symbol": text,
        "status": text,
        "queue": text,
        "flag": pa.bool_(),
        "int": pa.int64(),
        "text": text,
        "map": text,  # as JSON
        "value": text,  # as JSON
    }


def schema(kind, pa):
    types = _types(pa)
    fields = [pa.field(f.key, types[f.codec]) for f in kind.fields]
    return pa.schema(fields + [pa.field("log", pa.string()), pa.field("segment", pa.string())])


def _columns(frame) -> dict:
    """{kind code: [one list per field]} of a frame (format 1's frames are rows, regrouped)."""
    events = getattr(frame, "events", None)
    if events is not None:
        return events
    grouped: dict = {}
    for row in frame.rows():
        grouped.setdefault(row[0], []).append(row[1:])
    widths = {kind.code: len(kind.fields) for kind in KINDS}
    return {
        code: [list(c) for c in zip(*(tuple(r) + (None,) * (widths[code] - len(r)) for r in rows))]
        for code, rows in grouped.items()
        if code in widths
    }


def _json(values):
    return [None if v is None else json.dumps(v, ensure_ascii=False) for v in values]


def _batch(kind, columns, frame, log_name, pa, names):
    """One RecordBatch of a frame's events of ``kind``; ``names`` is what each index codec indexes."""
    pc = pa.compute
    types = _types(pa)
    count = len(columns[0]) if columns else 0
    arrays = []
    for i, field in enumerate(kind.fields):
        values = list(columns[i]) if i < len(columns) else [None] * count
        codec = field.codec
        if codec in names:
            array = names[codec].take(pa.array(values, pa.int64()))
        elif codec == "time":
            array = pc.add(pa.array(values, pa.int64()), frame.base).cast(types["time"])
        elif codec in ("map", "value"):
            array = pa.array(_json(values), pa.string())
        elif codec == "flag":
            array = pa.array([bool(v) for v in values], pa.bool_())
        else:
            array = pa.array(values, types[codec])
        arrays.append(array)
    segment = frame.segment.hex() if frame.segment else None
    arrays += [pa.array([log_name] * count, pa.string()), pa.array([segment] * count, pa.string())]
    return pa.RecordBatch.from_arrays(arrays, schema=schema(kind, pa))


class ParquetDatasetSink(Sink):
    name = "parquet-dataset"
    description = "Every event as a Parquet dataset partitioned by kind, in bounded memory; needs ipyrecorder[parquet]."
    options = (Option("compression", str, "zstd", "parquet compression codec (zstd, snappy, gzip, none)"),)
    binary = True
    suffix = ".dataset"
    directory = True

    def write(self, log, out):
        pa = _pyarrow()
        if log.until is not None:
            raise SinkError("the parquet-dataset sink writes every event: --until does not apply to it")
        compression = self.config["compression"]
        compression = None if compression == "none" else compression
        writer = _PartWriter(out, compression, pa)
        codes = {"status": pa.array(STATUSES, pa.string()), "queue": pa.array(QUEUES, pa.string())}
        damage = []
        for path in log.paths:
            reader = LogReader(path)
            name = os.path.basename(str(path))
            for _, frame in reader.frames():
                # the frame's tasks and strings, as Arrow arrays once for all its kinds
                names = {"task": pa.array(frame.msg_ids, pa.string()), "symbol": pa.array(frame.strings, pa.string())}
                for code, columns in _columns(frame).items():
                    kind = _KIND_OF_CODE[code]
                    writer.add(kind, _batch(kind, columns, frame, name, pa, {**names, **codes}))
            damage += reader.damage
        writer.close()
        log.damage = damage


_KIND_OF_CODE = {kind.code: kind for kind in KINDS}


class _PartWriter:
    """Gathers each kind's batches and writes them as ``kind=NAME/part-NNNNN.parquet`` files."""

    def __init__(self, root, compression, pa):
        self.root, self.compression, self.pa = root, compression, pa
        self.pending: dict = {}  # kind -> [batches]
        self.rows: dict = {}
        self.parts: dict = {}

    def add(self, kind, batch) -> None:
        self.pending.setdefault(kind, []).append(batch)
        self.rows[kind] = self.rows.get(kind, 0) + batch.num_rows
        if self.rows[kind] >= BATCH_ROWS:
            self._flush(kind)

    def _flush(self, kind) -> None:
        import pyarrow.parquet as pq

        batches = self.pending.pop(kind, [])
        self.rows[kind] = 0
        if not batches:
            return
        part = self.parts.get(kind, 0)
        self.parts[kind] = part + 1
        directory = os.path.join(self.root, f"kind={kind.name}")
        os.makedirs(directory, exist_ok=True)
        table = self.pa.Table.from_batches(batches)
        pq.write_table(table, os.path.join(directory, f"part-{part:05d}.parquet"), compression=self.compression)

    def close(self) -> None:
        for kind in list(self.pending):
            self._flush(kind)
