"""``json`` sink: the whole folded state as one JSON document."""

import json

from ipyrecorder.sink import Option, Sink


class JsonSink(Sink):
    name = "json"
    description = "Tasks (keyed by msg_id), engines, marks and summary as JSON."
    suffix = ".json"
    streams = True
    options = (Option("indent", int, 2, "spaces of indentation; 0 for one line"),)

    def write(self, log, out):
        state = log.state
        doc = {
            "log": str(log.path),
            "headers": [{**h, "t0": h["t0"].isoformat()} for h in state.headers],
            "summary": state.summary(),
            "tasks": {msg_id: task.to_dict() for msg_id, task in state.tasks.items()},
            "engines": {str(e.id): e.to_dict() for e in state.engines.values()},
            "marks": [mark.to_dict() for mark in state.marks],
        }
        indent = self.config["indent"] or None
        json.dump(doc, out, indent=indent, default=str)
        out.write("\n")
