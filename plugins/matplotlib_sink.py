"""``matplotlib`` sink: the per-engine timeline, and busy engines over time (``figure.py``)."""

from __future__ import annotations

from ipyrecorder.display import show_figures_inline
from ipyrecorder.figure import DPI, draw_timeline, import_matplotlib
from ipyrecorder.sink import Option, Sink, SinkError


class MatplotlibSink(Sink):
    name = "matplotlib"
    description = "Per-engine timeline with queue time, errors, marks, and busy engines (png, svg, pdf)."
    options = (
        Option("format", str, None, "png, svg or pdf (default: from the output file's extension)"),
        Option("dpi", int, DPI, "resolution of raster output"),
        Option("show", bool, False, "open an interactive window instead of writing a file"),
        Option("width", float, None, "figure width in inches (default 12)"),
        Option("height", float, None, "figure height in inches (default: from the number of engines)"),
        Option("start", float, None, "the first second shown, since the first submission (default 0)"),
        Option("end", float, None, "the last second shown (default: the end of the run)"),
        Option("colour", str, "function", "colour bars by function, status, engine or prefix (of the task's name)"),
    )
    binary = True
    suffix = ".png"

    def figure(self, state):
        """``state``'s timeline as a Figure (``State.plot``), shown as PNG when a notebook cell's value."""
        show_figures_inline()
        return self._draw(state)

    def _draw(self, state, figure=None):
        config = self.config
        return draw_timeline(
            state,
            figure,
            colour_by=config["colour"],
            start=config["start"],
            end=config["end"],
            size=(config["width"], config["height"]),
        )

    def wants_output(self):
        return not self.config["show"]

    def write(self, log, out):
        import_matplotlib()
        state = log.state
        if self.config["show"]:
            import matplotlib.pyplot as plt

            self._draw(
                state,
                plt.figure(figsize=(self.config["width"] or 12, self.config["height"] or 6), layout="constrained"),
            )
            plt.show()
            return
        fig = self._draw(state)
        fmt = self.config["format"] or _extension(getattr(out, "name", "")) or "png"
        if fmt not in ("png", "svg", "pdf"):
            raise SinkError(f"cannot write a timeline as {fmt!r}; use png, svg or pdf")
        fig.savefig(out, format=fmt, dpi=self.config["dpi"])


def _extension(name) -> str | None:
    name = str(name)
    return name.rsplit(".", 1)[-1].lower() if "." in name else None
