"""``csv`` sink: one row per task, ready for a spreadsheet or pandas."""

import csv

from ipyrecorder.sink import Option, Sink

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
)


class CsvSink(Sink):
    name = "csv"
    description = "One row per task with times (ISO 8601 UTC) and durations in seconds."
    options = (Option("output", bool, False, "add stdout and stderr columns"),)

    def write(self, log, out):
        columns = COLUMNS + (("stdout", "stderr") if self.config["output"] else ())
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for task in log.state.tasks.values():
            record = task.to_dict()
            writer.writerow(["" if record[c] is None else record[c] for c in columns])
