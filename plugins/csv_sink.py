"""``csv`` sink: one row per task, ready for a spreadsheet or pandas."""

import csv

from ipyrecorder.records import records
from ipyrecorder.sink import Option, Sink

ROWS_AT_ONCE = 16_384

COLUMNS = (
    "msg_id",
    "name",
    "function",
    "label",
    "queue",
    "chunk",
    "engine_id",
    "status",
    "submitted",
    "started",
    "completed",
    "received",
    "queue_seconds",
    "run_seconds",
    "wall_seconds",
    "error",
    "traceback",
    "broadcast",
    "request_bytes",
    "reply_bytes",
)


class CsvSink(Sink):
    name = "csv"
    description = "One row per task with times (ISO 8601 UTC) and durations in seconds."
    suffix = ".csv"
    streams = True
    options = (Option("output", bool, False, "add stdout and stderr columns"),)

    def write(self, log, out):
        columns = COLUMNS + (("stdout", "stderr") if self.config["output"] else ())
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        table = log.state.table
        for start in range(0, len(table), ROWS_AT_ONCE):  # memory: the state, and this many rows
            values = records(table, start, start + ROWS_AT_ONCE, columns)
            writer.writerows(zip(*(values[c] for c in columns)))  # (None is written as "")
