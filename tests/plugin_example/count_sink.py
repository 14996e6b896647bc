"""A third-party sink: counts tasks by status (the example in docs/sinks.md)."""

from ipyrecorder.sink import Option, Sink


class CountSink(Sink):
    name = "count"
    description = "How many tasks ended in each status."
    options = (Option("sep", str, ": ", "separator between status and count"),)

    def write(self, log, out):
        for status, n in log.state.summary()["by_status"].items():
            out.write(f"{status}{self.config['sep']}{n}\n")
