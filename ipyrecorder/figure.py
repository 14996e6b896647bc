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
from .text import visible
from .timeline import TimelineData

DPI = 120
THIN_BAR_PX = 3  # bars narrower than this (median) get no white edges: they would wash out
MAX_BAR_TEXTS = 400  # names on bars beyond this many would be unreadable anyway


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


def draw_busy(busy_ax, times, busy, mean, engines: int, clock_shifts: dict) -> None:
    """The busy-engines panel: a step curve and its mean, and the time axis (which clock)."""
    busy_ax.fill_between(times, busy, step="post", color=BUSY, alpha=0.35, linewidth=0)
    busy_ax.step(times, busy, where="post", color=BUSY, linewidth=0.8)
    busy_ax.axhline(mean, color=MEAN, linewidth=0.8, label=f"mean {mean:.2f}")
    busy_ax.set_ylim(0, max(engines, 1) * 1.05)
    busy_ax.set_ylabel("busy engines", fontsize=8)
    if clock_shifts:
        moved = ", ".join(engine_label(e) for e in sorted(clock_shifts))
        by = "its clock offset" if len(clock_shifts) == 1 else "their clock offsets"
        clock = f"client clock; {moved} moved onto it by {by}"
    else:
        clock = "client clock; bars use engine clocks"
    busy_ax.set_xlabel(f"seconds since the first submission ({clock})", fontsize=8)
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


def draw_mark(ax, busy_ax, t, text) -> None:
    """A mark: a dashed line across both panels, its text along it."""
    text = drawn(text)
    for axis in (ax, busy_ax):
        axis.axvline(t, color=MARK, linewidth=0.8, linestyle="--")
    ax.annotate(
        text,
        (t, 0.98),
        xycoords=("data", "axes fraction"),
        xytext=(2, 0),
        textcoords="offset points",
        fontsize=7,
        rotation=90,
        va="top",
        ha="left",
        bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none", "alpha": 0.8},
    )


def figure_size(engines: int, resources: bool = False) -> tuple:
    """Inches for a timeline of this many engine rows (and the resource panels): readable for 2 or 200."""
    return 12.0, min(3.0 + 0.32 * max(engines, 1), 60.0) + (2.4 if resources else 0.0)


def draw_timeline(state, figure=None):
    """Draw ``state`` onto a new (or the given) matplotlib Figure and return it."""
    import_matplotlib()
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    data = TimelineData(state)
    n = max(len(data.engine_ids), 1)
    fig = figure or Figure(figsize=figure_size(n, bool(data.samples)), layout="constrained")
    fig.clear()
    panels = [max(3, min(n, 30)), 2] + ([1.5, 1.5] if data.samples else [])
    ax, busy_ax, *resource_axes = fig.subplots(len(panels), 1, sharex=True, height_ratios=panels)

    if len(data.tasks):
        px_per_s = fig.get_figwidth() * fig.dpi * 0.8 / (data.span * 1.01)
        edges = float(np.median(data.end - data.start)) * px_per_s >= THIN_BAR_PX
        for collection in task_collections(data, edges):
            ax.add_collection(collection, autolim=False)  # the limits are set below
        _label_bars(ax, fig, data)

    for t, text in data.marks:
        draw_mark(ax, busy_ax, t, text)
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
    ax.set_xlim(0, data.span * 1.01)
    ax.grid(axis="x", alpha=0.3)
    started = state.headers[0]["t0"] if state.headers else None
    summary = state.summary()
    status = ", ".join(f"{c} {s}" for s, c in summary["by_status"].items())
    ax.set_title(
        f"{len(state.tasks)} tasks on {len(data.engine_ids)} engines ({status})"
        + (f", from {started:%Y-%m-%d %H:%M:%S} UTC" if started else ""),
        fontsize=10,
        loc="left",
    )
    legend = [Patch(color=c, label=drawn(f) or "(unknown)") for f, c in list(data.colour_of.items())[:8]]
    legend += [
        Patch(color=STATUS_COLOURS["error"], label="error"),
        Patch(color=QUEUED, label="queued"),
        Patch(color=REPLY_LATENCY, label="reply latency"),
    ]
    if data.joins or data.leaves:
        legend += [
            Line2D([], [], marker=">", color="green", ls="", label="engine joined"),
            Line2D([], [], marker="x", color="black", ls="", label="engine left"),
        ]
    ax.legend(handles=legend, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)

    draw_busy(busy_ax, *data.busy_curve(), len(data.engine_ids), data.clock_shifts)
    if resource_axes:
        draw_resources(*resource_axes, data.samples)
        resource_axes[-1].set_xlabel(busy_ax.get_xlabel(), fontsize=8)  # the time axis goes under the last panel
        busy_ax.set_xlabel("")
    return fig


def _label_bars(ax, fig, data):
    """Write name and duration on the bars wide enough to hold them."""
    width_px = fig.get_figwidth() * fig.dpi * 0.8
    px_per_s = width_px / (data.span * 1.01)
    widths = (data.end - data.start) * px_per_s
    rows = max(len(data.engine_ids), 1)
    if rows > 40:
        return
    wide = [i for i in widths.argsort()[::-1][:MAX_BAR_TEXTS] if widths[i] > 40]
    for i in wide:
        task = data.tasks[i]
        text = f"{drawn(task.name or task.function or '')}\n{task.run_seconds or 0:.2f}s"
        if len(text.split("\n")[0]) * 5.5 > widths[i]:
            text = f"{task.run_seconds or 0:.2f}s"
        ax.text(
            (data.start[i] + data.end[i]) / 2,
            data.row[i],
            text,
            ha="center",
            va="center",
            fontsize=6.5,
            color="white",
            clip_on=True,
        )
