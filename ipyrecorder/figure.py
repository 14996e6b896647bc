"""The timeline as a matplotlib figure: what the matplotlib sink saves and the viewer grows.

What ipy_client_usage drew, done right: queue time and reply latency are
visible, failures stand out, marks and engine arrivals/departures are shown,
and bars are drawn as collections so that 100,000 tasks render in seconds.
The numbers come from ``timeline.TimelineData``.
"""

from __future__ import annotations

from .colours import BUSY, MARK, MEAN, QUEUED, REPLY_LATENCY, RESOURCES, STATUS_COLOURS
from .errors import PluginError
from .state import engine_label
from .table import STATUS_ORDER
from .text import visible
from .timeline import TimelineData

DPI = 120
THIN_BAR_PX = 3  # bars narrower than this (median) get no white edges: they would wash out
MAX_BAR_TEXTS = 400  # names on bars beyond this many would be unreadable anyway
CHAR_PX = 5.5  # about a character of the bars' text, in pixels at the figure's resolution


def drawn(text: str) -> str:
    """Log text as matplotlib must draw it: controls made visible, ``$`` not taken for mathtext."""
    return visible(text).replace("$", r"\$")


def import_matplotlib():
    """matplotlib and numpy, or a PluginError that says how to install them."""
    try:
        import matplotlib  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        raise PluginError("the matplotlib timeline needs matplotlib: pip install 'ipyrecorder[plot]'") from None


def _bars(row, left, right, low, high):
    """Rectangle vertices for a PolyCollection: one bar per (row, left, right)."""
    import numpy as np

    y0, y1 = row + low, row + high
    return np.stack(
        [np.stack([left, y0], 1), np.stack([left, y1], 1), np.stack([right, y1], 1), np.stack([right, y0], 1)], 1
    )


def task_collections(data: TimelineData, edges: bool = True) -> list:
    """The bars of ``data``'s tasks: queued time, reply latency, execution."""
    import numpy as np
    from matplotlib.collections import PolyCollection

    if not len(data.tasks):
        return []
    queued = ~np.isnan(data.submitted) & (data.submitted < data.start)
    late = ~np.isnan(data.received) & (data.received > data.end)
    return [
        PolyCollection(
            _bars(data.row[queued], data.submitted[queued], data.start[queued], -0.12, 0.12),
            facecolors=QUEUED,
            edgecolors="none",
        ),
        PolyCollection(
            _bars(data.row[late], data.end[late], data.received[late], -0.12, 0.12),
            facecolors=REPLY_LATENCY,
            edgecolors="none",
        ),
        PolyCollection(
            _bars(data.row, data.start, np.maximum(data.end, data.start), -0.36, 0.36),
            facecolors=data.colours,
            edgecolors="white",
            linewidths=0.3 if edges else 0,
        ),
    ]


def clock_text(clock_shifts: dict, clock: str = "client") -> str:
    """Which clock the time axis is on, as its label says it."""
    if clock == "engine":
        return "each engine's times on its own clock, as logged"
    if not clock_shifts:
        return "client clock"
    moved = ", ".join(engine_label(e) for e in sorted(clock_shifts))
    by = "its clock offset" if len(clock_shifts) == 1 else "their clock offsets"
    return f"client clock; {moved} moved onto it by {by}"


def draw_busy(busy_ax, times, busy, mean, engines: int, clock_shifts: dict, clock: str = "client") -> None:
    """The busy-engines panel: a step curve and its mean, and the time axis (which clock)."""
    busy_ax.fill_between(times, busy, step="post", color=BUSY, alpha=0.35, linewidth=0)
    busy_ax.step(times, busy, where="post", color=BUSY, linewidth=0.8)
    busy_ax.axhline(mean, color=MEAN, linewidth=0.8, label=f"mean {mean:.2f}")
    busy_ax.set_ylim(0, max(engines, 1) * 1.05)
    busy_ax.set_ylabel("busy engines", fontsize=8)
    busy_ax.set_xlabel(f"seconds since the first submission ({clock_text(clock_shifts, clock)})", fontsize=8)
    busy_ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    busy_ax.grid(alpha=0.3)


def draw_resources(memory_ax, cpu_ax, samples: dict) -> None:
    """The engines' resident memory and CPU %, a thin line per engine (``TimelineData.samples``);
    an engine that died ends where its samples do."""
    for engine_id, (t, cpu, rss) in sorted(samples.items()):
        memory_ax.plot(t, rss / 1e9, color=RESOURCES, linewidth=0.8, alpha=0.8)
        cpu_ax.plot(t, cpu, color=RESOURCES, linewidth=0.8, alpha=0.8)
        if len(t):  # each line's engine, where it ends
            memory_ax.annotate(engine_label(engine_id)[len("engine ") :], (t[-1], rss[-1] / 1e9), fontsize=6)
    memory_ax.set_ylabel("memory GB", fontsize=8)
    cpu_ax.set_ylabel("CPU %", fontsize=8)
    for axis in (memory_ax, cpu_ax):
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)


class MarkLanes:
    """Where marks' labels go: in lanes above the engine rows, each label in the lowest lane where
    it overlaps no other, so labels never cover each other or a bar's text."""

    FONT = 7  # points
    LANE = 10  # points between lanes

    def __init__(self, ax, fig, x0: float, x1: float):
        self.ax = ax
        self.px_per_s = fig.get_figwidth() * fig.dpi * 0.8 / max(x1 - x0, 1e-9)
        self.x0, self.x1 = x0, x1
        self.ends: list = []  # each lane's rightmost label end, px
        self.dpi = fig.dpi

    def place(self, t: float, text: str) -> int:
        """The lane of a label starting at time ``t``."""
        left = (t - self.x0) * self.px_per_s
        width = (len(text) * 0.6 * self.FONT + 6) * self.dpi / 72
        for lane, end in enumerate(self.ends):
            if left >= end:
                self.ends[lane] = left + width
                return lane
        self.ends.append(left + width)
        return len(self.ends) - 1

    @property
    def height(self) -> float:
        """Points above the axes the lanes take."""
        return len(self.ends) * self.LANE


def draw_mark(ax, busy_ax, t, text, lanes: MarkLanes) -> None:
    """A mark: a dashed line across both panels, its text above the engine rows (``lanes``)."""
    text = drawn(text)
    for axis in (ax, busy_ax):
        axis.axvline(t, color=MARK, linewidth=0.8, linestyle="--")
    if not lanes.x0 <= t <= lanes.x1:  # (outside the time range shown: no label to read)
        return
    ax.annotate(
        text,
        (t, 1.0),
        xycoords=("data", "axes fraction"),
        xytext=(1, 2 + lanes.LANE * lanes.place(t, text)),
        textcoords="offset points",
        fontsize=lanes.FONT,
        color=MARK,
        va="bottom",
        ha="left",
        annotation_clip=False,
    )


def figure_size(engines: int, resources: bool = False) -> tuple:
    """Inches for a timeline of this many engine rows (and the resource panels): readable for 2 or 200."""
    return 12.0, min(3.0 + 0.32 * max(engines, 1), 60.0) + (2.4 if resources else 0.0)


def draw_timeline(state, figure=None, *, colour_by="function", start=None, end=None, size=None):
    """Draw ``state`` onto a new (or the given) matplotlib Figure and return it: bars coloured by
    ``colour_by`` (``timeline.COLOUR_BY``), the seconds from ``start`` to ``end`` (default: all),
    ``size`` (width, height) in inches (default: ``figure_size``, either left None)."""
    import_matplotlib()
    import numpy as np
    from matplotlib.figure import Figure

    data = TimelineData(state, colour_by=colour_by)
    n = max(len(data.engine_ids), 1)
    width, height = size or (None, None)
    default = figure_size(n, bool(data.samples))
    fig = figure or Figure(figsize=(width or default[0], height or default[1]), layout="constrained")
    fig.clear()
    panels = [max(3, min(n, 30)), 2] + ([1.5, 1.5] if data.samples else [])
    ax, busy_ax, *resource_axes = fig.subplots(len(panels), 1, sharex=True, height_ratios=panels)
    x0 = 0.0 if start is None else start
    x1 = data.span * 1.01 if end is None else end
    if x1 <= x0:
        raise PluginError(f"the time range is empty: start {x0:g} s is not before end {x1:g} s")

    if len(data.tasks):
        px_per_s = fig.get_figwidth() * fig.dpi * 0.8 / (x1 - x0)
        edges = float(np.median(data.end - data.start)) * px_per_s >= THIN_BAR_PX
        for collection in task_collections(data, edges):
            ax.add_collection(collection, autolim=False)  # the limits are set below
        _mark_failures(ax, data)
        _label_bars(ax, fig, data, x0, x1)

    lanes = fig.mark_lanes = MarkLanes(ax, fig, x0, x1)
    for t, text in sorted(data.marks, key=lambda mark: mark[0]):
        draw_mark(ax, busy_ax, t, text, lanes)
    if data.joins:
        ax.scatter([t for t, _ in data.joins], [r for _, r in data.joins], marker=">", color="green", zorder=3, s=30)
    if data.leaves:
        ax.scatter([t for t, _ in data.leaves], [r for _, r in data.leaves], marker="x", color="black", zorder=3, s=30)

    ax.set_yticks(
        range(len(data.engine_ids)),
        [drawn(engine_label(e, getattr(state.engines.get(e), "host", None))) for e in data.engine_ids],
        fontsize=max(4, min(9, 300 / n)),
    )
    ax.set_ylim(n - 0.5, -0.5)
    ax.set_xlim(x0, x1)
    ax.grid(axis="x", alpha=0.3)
    started = state.headers[0]["t0"] if state.headers else None
    summary = state.summary()
    status = ", ".join(f"{c} {s}" for s, c in summary["by_status"].items())
    ax.set_title(
        f"{len(state.tasks)} tasks on {len(data.engine_ids)} engines ({status})"
        + (f", from {started:%Y-%m-%d %H:%M:%S} UTC" if started else ""),
        fontsize=10,
        loc="left",
        pad=6 + lanes.height,  # above the marks' lanes
    )
    draw_legend(ax, data, colour_by)

    draw_busy(busy_ax, *data.busy_curve(), len(data.engine_ids), data.clock_shifts, data.clock)
    if resource_axes:
        draw_resources(*resource_axes, data.samples)
        resource_axes[-1].set_xlabel(busy_ax.get_xlabel(), fontsize=8)  # the time axis goes under the last panel
        busy_ax.set_xlabel("")
    return fig


LEGEND_KEYS = 10  # colour keys the legend names; more are counted


def draw_legend(ax, data, colour_by) -> None:
    """The legend, beside the engine rows."""
    ax.legend(handles=_legend(data, colour_by), fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)


def _legend(data, colour_by) -> list:
    """What the picture shows, and only that: the colour keys with a bar to see, the statuses
    that stand out, the queue and reply-latency bars, engines joining and leaving."""
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    keys = sorted(data.key_colours.items(), key=lambda item: item[0] or "")
    handles = [Patch(color=c, label=drawn(k) or "(unknown)") for k, c in keys[:LEGEND_KEYS]]
    if len(keys) > LEGEND_KEYS:
        handles.append(Patch(color="none", label=f"and {len(keys) - LEGEND_KEYS} more {colour_by}s"))
    if colour_by != "status":
        present = {STATUS_ORDER[code] for code in set(data.status.tolist())}
        handles += [Patch(color=c, label=name) for name, c in STATUS_COLOURS.items() if name in present]
    if "error" in {STATUS_ORDER[code] for code in set(data.status.tolist())}:
        handles.append(Line2D([], [], marker="v", color=STATUS_COLOURS["error"], ls="", label="a failed task"))
    if (data.submitted < data.start).any():  # (NaN, never submitted in the log, compares false)
        handles.append(Patch(color=QUEUED, label="queued"))
    if (data.received > data.end).any():
        handles.append(Patch(color=REPLY_LATENCY, label="reply latency"))
    if data.joins or data.leaves:
        handles += [
            Line2D([], [], marker=">", color="green", ls="", label="engine joined"),
            Line2D([], [], marker="x", color="black", ls="", label="engine left"),
        ]
    return handles


def _mark_failures(ax, data) -> None:
    """A red triangle over each failed bar, so that the failures are what the eye finds first,
    however narrow their bars."""
    import numpy as np

    failed = data.status == STATUS_ORDER.index("error")
    if failed.any():
        middle = (data.start[failed] + np.maximum(data.end[failed], data.start[failed])) / 2
        ax.scatter(middle, data.row[failed] - 0.42, marker="v", s=14, color=STATUS_COLOURS["error"], zorder=4)


def _label_bars(ax, fig, data, x0, x1):
    """Name the bars wide enough, the widest first: the task's name (shortened to fit), then its
    duration as its bar shows it (a running task's so far, with a +), or a failed task's exception;
    a duration that does not fit is left out, never cut."""
    import numpy as np

    px_per_s = fig.get_figwidth() * fig.dpi * 0.8 / (x1 - x0)
    left, right = np.maximum(data.start, x0), np.minimum(np.maximum(data.end, data.start), x1)
    widths = (right - left) * px_per_s
    rows = max(len(data.engine_ids), 1)
    if rows > 40:
        return
    error, running = STATUS_ORDER.index("error"), STATUS_ORDER.index("running")
    wide = [i for i in widths.argsort()[::-1][:MAX_BAR_TEXTS] if widths[i] > 24]
    for i in wide:
        task = data.tasks[i]
        fits = int(widths[i] / CHAR_PX)
        seconds = data.end[i] - data.start[i]
        second = f"{seconds:.2f}s" + ("+" if data.status[i] == running else "")
        if data.status[i] == error and task.ename:
            second = task.ename
        lines = [_fit(drawn(task.name or task.function or ""), fits), second if len(second) <= fits else ""]
        text = "\n".join(line for line in lines if line)
        if not text:
            continue
        ax.text(
            (left[i] + right[i]) / 2,
            data.row[i],
            text,
            ha="center",
            va="center",
            fontsize=6.5,
            color="white",
            fontweight="bold" if data.status[i] == error else "normal",
            clip_on=True,
        )


def _fit(text: str, chars: int) -> str:
    """``text`` cut to ``chars`` characters with an ellipsis; nothing if that keeps less than four."""
    if len(text) <= chars:
        return text
    kept = text[: chars - 1].rstrip()
    return kept + "…" if len(kept) >= 4 else ""
