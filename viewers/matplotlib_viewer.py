"""``matplotlib`` viewer: the matplotlib sink's timeline (``figure.py``), growing as the log grows.

Each frame adds the bars of the tasks completed since the last one (the
fold's ``take_changes``) and
replaces only the running tasks' bars and the busy-engines panel; the whole
figure is drawn again only when the rows or the time origin change, and once
more when the recording closes, so that the last frame is exactly the sink's
picture. Closing the window ends the viewer.
"""

from __future__ import annotations

from ipyrecorder.plugin import Option, PluginError
from ipyrecorder.tail import Follower
from ipyrecorder.viewer import Viewer


class LiveTimeline:
    """A figure kept in step with a growing ``State``."""

    def __init__(self, figure, colour_by: str = "function"):
        self.figure = figure
        self.colour_by = colour_by
        self.frames = 0
        self._key = None
        self._colours = None  # the colour of each key drawn (a new key: everything is drawn again)

    def update(self, state, final: bool = False) -> str:
        """Bring the figure up to date: "full", "incremental" or "none"."""
        from ipyrecorder.figure import draw_timeline
        from ipyrecorder.timeline import TimelineData

        changes = state.take_changes()
        engines = tuple(sorted(e for e in state.engines if e is not None))
        key = (id(state), state.span_us()[0], engines, bool(state.table.samples))  # (resources: two more panels)
        whole = None
        if not (final or changes.full or key != self._key):
            new = changes.completed
            running = [e.current for e in state.engines.values() if e.current is not None]
            if not new and not running and not changes.marks and not self._running:
                return "none"
            whole = TimelineData(state, colour_by=self.colour_by)
            kept = all(whole.key_colours.get(key) == colour for key, colour in self._colours.items())
            if kept:  # (a new key, a new colour: only the legend changes)
                self._draw_increment(state, whole, new, running, len(changes.marks))
                self._colours = whole.key_colours
                self.frames += 1
                return "incremental"
        draw_timeline(state, self.figure, colour_by=self.colour_by)
        self._key = key
        self._colours = (whole or TimelineData(state, colour_by=self.colour_by)).key_colours
        self._running = []
        self.frames += 1
        return "full"

    def _draw_increment(self, state, whole, new, running, new_marks):
        from ipyrecorder.figure import draw_busy, draw_legend, draw_mark, draw_resources, task_collections
        from ipyrecorder.timeline import TimelineData

        ax, busy_ax, *resource_axes = self.figure.axes
        for artist in self._running:
            artist.remove()
        self._running = []
        part = {"colour_by": self.colour_by, "colours": whole.key_colours}
        if new:
            for collection in task_collections(TimelineData(state, new, **part)):
                ax.add_collection(collection, autolim=False)
        if running:
            for collection in task_collections(TimelineData(state, running, **part)):
                ax.add_collection(collection, autolim=False)
                self._running.append(collection)
        for t, text in whole.marks[len(whole.marks) - new_marks :]:
            draw_mark(ax, busy_ax, t, text, self.figure.mark_lanes)
        if whole.key_colours != self._colours:
            draw_legend(ax, whole, self.colour_by)
        ax.set_xlim(0, whole.span * 1.01)
        for artist in list(busy_ax.lines) + list(busy_ax.collections):
            if artist.get_linestyle() != "--":  # keep the marks' lines
                artist.remove()
        draw_busy(busy_ax, *whole.busy_curve(), len(whole.engine_ids), whole.clock_shifts, whole.clock)
        if resource_axes:  # (a few samples per engine-second: drawn afresh)
            label = busy_ax.get_xlabel()
            busy_ax.set_xlabel("")
            for axis in resource_axes:
                axis.cla()
            draw_resources(*resource_axes, whole.samples)
            resource_axes[-1].set_xlabel(label, fontsize=8)


class MatplotlibViewer(Viewer):
    name = "matplotlib"
    description = "The matplotlib timeline in a window, growing as the log grows."
    options = (
        Option("interval", float, 0.2, "seconds between frames"),
        Option("save", str, None, "headless: write the last frame to this file and exit when the log closes"),
        Option("colour", str, "function", "colour bars by function, status, engine or prefix (of the task's name)"),
    )

    def run(self, tail, *, poll=False, once=False):
        from ipyrecorder.figure import import_matplotlib

        import_matplotlib()
        import matplotlib

        tail.poll()
        headless = bool(self.config["save"]) or once or matplotlib.get_backend().lower() == "agg"
        if headless and not self.config["save"]:
            raise PluginError("no display for a window: pass -O save=FILE.png for a headless run")
        if headless:
            self._run_headless(tail, poll, once)
        else:
            self._run_window(tail, poll)

    def _run_headless(self, tail, poll, once):
        from matplotlib.figure import Figure

        from ipyrecorder.figure import DPI, figure_size
        from ipyrecorder.timeline import TimelineData

        live = LiveTimeline(Figure(figsize=(12, 6), layout="constrained"), self.config["colour"])
        if not once:
            with Follower(tail, poll=poll) as follower:
                try:
                    while not tail.state.closed:
                        follower.changed.wait(self.config["interval"])
                        follower.changed.clear()
                        with follower.lock:
                            live.update(tail.state)
                except KeyboardInterrupt:
                    pass
        live.update(tail.state, final=True)
        self.last = live
        data = TimelineData(tail.state)
        live.figure.set_size_inches(figure_size(len(data.engine_ids), bool(data.samples)))  # the sink's size
        live.figure.savefig(self.config["save"], dpi=DPI)

    def _run_window(self, tail, poll):
        import matplotlib.pyplot as plt

        fig = plt.figure(figsize=(12, 6), layout="constrained")
        fig.canvas.manager.set_window_title(f"ipyrecorder: {tail.path}")
        live = LiveTimeline(fig, self.config["colour"])
        finished = False
        with Follower(tail, poll=poll) as follower:

            def tick():
                nonlocal finished
                if finished:
                    return
                with follower.lock:
                    done = tail.state.closed
                    live.update(tail.state, final=done)
                finished = done
                fig.canvas.draw_idle()

            live.update(tail.state)
            timer = fig.canvas.new_timer(interval=int(self.config["interval"] * 1000))
            timer.add_callback(tick)
            timer.start()
            try:
                plt.show()  # returns when the window is closed
            except KeyboardInterrupt:
                pass
            finally:
                timer.stop()
                plt.close(fig)
