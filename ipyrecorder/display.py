"""How a folded state shows in a notebook: ``State``, ``Task`` and ``Engine`` as HTML (IPython's
formatters, ``register``: the classes stay free of their views), a small inline timeline
(SVG), and the report's inline frame.

Everything from the log goes in as text (``html.escape`` of ``text.visible``): a task
named ``<script>`` reads as that, and no markup of the log's is ever interpreted. No
script runs: the traceback is a ``<details>`` element, one click away.
"""

from __future__ import annotations

import html

from .colours import OK, STATUS_COLOURS
from .state import Engine, State
from .table import FAILURES_FIRST, Task
from .text import visible

FAILURES_SHOWN = 10  # failed tasks listed in a state's display, the rest counted
ENGINES_SHOWN = 32  # engine rows listed, the rest counted
TIMELINE_WIDTH = 600  # px of the inline timeline's bars; one rectangle per run of pixels at most
ROW_HEIGHT = 12  # px per engine in the inline timeline (less when there are many)
STYLE = (
    "font-family: var(--jp-ui-font-family, sans-serif); font-size: 13px; line-height: 1.4;"
    " border-left: 3px solid #1f77b4; padding: 4px 10px"
)


def in_notebook() -> bool:
    """Running in a Jupyter kernel (where displays can be updated), not a terminal IPython or a script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def show_figures_inline() -> None:
    """In a notebook, show matplotlib Figures as PNG when they are a cell's value, as pyplot's
    inline backend does once pyplot is imported (the timeline is drawn without pyplot)."""
    if not in_notebook():
        return
    from IPython import get_ipython
    from IPython.core.pylabtools import select_figure_formats
    from matplotlib.figure import Figure

    shell = get_ipython()
    if Figure not in shell.display_formatter.formatters["image/png"].type_printers:
        select_figure_formats(shell, {"png"})


def register(shell) -> None:
    """Show states, tasks and engines as HTML in ``shell`` (an IPython shell), as cell values and
    through ``display()``."""
    formatter = shell.display_formatter.formatters["text/html"]
    for cls, render in ((State, state_html), (Task, task_html), (Engine, engine_html)):
        formatter.for_type(cls, render)


def t(value) -> str:
    """Text from a log, made inert for HTML."""
    return html.escape(visible(str(value)), quote=True)


def seconds(value) -> str:
    return "" if value is None else f"{value:.3f} s"


def _table(head: list, rows: list) -> str:
    cells = "".join(f"<th style='text-align:left; padding-right:1em'>{t(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td style='padding-right:1em'>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{cells}</tr></thead><tbody>{body}</tbody></table>"


def _folded(summary: str, text) -> str:
    """A log's text (a traceback, an output) one click away; nothing when there is none."""
    if not text:
        return ""
    return f"<details><summary>{summary}</summary><pre style='font-size: 12px'>{t(text)}</pre></details>"


def _fields(rows: list) -> str:
    """(name, HTML) pairs as a two-column table in a display's frame."""
    body = "".join(f"<tr><th style='text-align:left; padding-right:1em'>{k}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _status(status: str, text: str | None = None) -> str:
    """``text`` (default: the status) in the status's colour."""
    colour = STATUS_COLOURS.get(status, OK if status == "ok" else "#555")
    return f"<span style='color:{colour}; font-weight:bold'>{t(status if text is None else text)}</span>"


# -- HTML --------------------------------------------------------------------------------------------
def task_html(task) -> str:
    """One task: what it was, where it ran, how long, how it ended, its output and traceback."""
    rows = [
        ("msg_id", t(task.msg_id)),
        ("name", t(task.name or "")),
        ("function", t(task.function or "")),
        ("status", _status(task.status)),
        ("engine", "" if task.engine_id is None else t(task.engine_id)),
        ("submitted", t(task.submitted or "")),
        ("queued", seconds(task.queue_seconds)),
        ("ran", seconds(task.run_seconds)),
    ]
    if task.error:
        rows.append(("error", t(task.error)))
    output = _folded("stdout", task.stdout) + _folded("stderr", task.stderr) + _folded("traceback", task.traceback)
    return f"<div style='{STYLE}'>{_fields(rows)}{output}</div>"


def engine_html(engine, span_seconds: float | None = None) -> str:
    rows = [
        ("engine", t(engine.label)),
        ("tasks", t(engine.tasks_done)),
        ("errors", t(engine.errors)),
        ("busy", seconds(engine.busy_seconds)),
    ]
    if span_seconds:
        rows.append(("utilisation", f"{engine.busy_seconds / span_seconds:.0%}"))
    if engine.peak_rss is not None:
        rows.append(("peak memory", f"{engine.peak_rss / 1e6:.1f} MB"))
    if engine.unregistered_us is not None:
        rows.append(("left", t(engine.unregistered)))
    return f"<div style='{STYLE}'>{_fields(rows)}</div>"


def state_html(state, title: str | None = None) -> str:
    """A state at a glance: tasks by status, the span, a small timeline, the failures with their
    tracebacks, the engines with their utilisation, and any damage."""
    title = state.name if title is None else title
    counts = state.counts()  # (not the whole summary: its critical path and clocks are not shown here)
    span = state.span_seconds()
    head = f"<b>{t(title)}</b>: " if title else ""
    status = " · ".join(_status(s, f"{counts[s]} {s}") for s in FAILURES_FIRST if s in counts) or "no tasks"
    parts = [f"<div>{head}{len(state.tasks)} tasks in {span:.3f} s: {status}</div>"]
    if state.damage:
        parts.append(f"<div style='color:#d62728'>damage: {t('; '.join(map(str, state.damage[:3])))}</div>")
    if len(state.tasks):
        parts.append(timeline_svg(state))
    parts.append(failures_html(state))
    engines = [state.engines[key] for key in sorted(k for k in state.engines if k is not None)]
    if engines:
        rows = [
            [
                t(e.label),
                t(e.tasks_done),
                t(e.errors),
                f"{e.busy_seconds:.3f}",
                f"{e.busy_seconds / span:.0%}" if span else "",
                "gone" if e.unregistered_us is not None else "",
            ]
            for e in engines[:ENGINES_SHOWN]
        ]
        more = len(engines) - ENGINES_SHOWN
        parts.append(
            "<details open><summary>engines</summary>"
            + _table(["engine", "tasks", "errors", "busy s", "utilisation", ""], rows)
            + (f"<div>and {more} more</div>" if more > 0 else "")
            + "</details>"
        )
    return f"<div class='ipyrecorder' style='{STYLE}'>{''.join(parts)}</div>"


def failures_html(state) -> str:
    """The failed tasks first: name, engine, error, and the traceback one click away."""
    failed = state.failures()
    if not failed:
        return ""
    rows = [
        [
            t(task.name or task.function or task.msg_id),
            t("" if engine is None else engine),
            t(f"{ename}: {evalue}"),
            _folded("traceback", traceback),
        ]
        for task, engine, _t_us, ename, evalue, traceback in failed[:FAILURES_SHOWN]
    ]
    more = len(failed) - FAILURES_SHOWN
    return (
        f"<details open><summary>{_status('error', f'{len(failed)} failed attempt(s)')}</summary>"
        + _table(["task", "engine", "error", ""], rows)
        + (f"<div>and {more} more (state.failures())</div>" if more > 0 else "")
        + "</details>"
    )


def timeline_svg(state, width: int = TIMELINE_WIDTH) -> str:
    """Each engine's tasks as bars, as the matplotlib timeline colours them, painted into pixel
    columns (failures on top), so the picture has at most one rectangle per run of pixels."""
    import numpy as np

    from .timeline import TimelineData

    data = TimelineData(state)
    rows = max(len(data.engine_ids), 1)
    height = max(3, min(ROW_HEIGHT, 240 // rows))
    canvas = np.full((rows, width), -1, np.int32)
    palette = sorted(set(data.colours))
    colour = np.searchsorted(np.array(palette, dtype=object), np.array(data.colours, dtype=object)) if palette else []
    scale = width / data.span
    x0 = np.clip((data.start * scale).astype(np.int64), 0, width - 1)
    x1 = np.clip(np.ceil(data.end * scale).astype(np.int64), x0 + 1, width)
    failed = np.isin(np.array(data.colours, dtype=object), [STATUS_COLOURS["error"]])
    for i in np.concatenate([np.flatnonzero(~failed), np.flatnonzero(failed)]).tolist():
        canvas[int(data.row[i]), x0[i] : x1[i]] = colour[i]
    rects = []
    for row in range(rows):
        line = canvas[row]
        edges = np.flatnonzero(np.diff(line)) + 1
        y = row * height
        for a, b in zip(np.concatenate([[0], edges]).tolist(), np.concatenate([edges, [width]]).tolist()):
            if line[a] >= 0:
                fill = palette[line[a]]
                rects.append(f"<rect x='{a}' y='{y}' width='{b - a}' height='{height - 1}' fill='{fill}'/>")
    marks = "".join(
        f"<line x1='{x:.1f}' x2='{x:.1f}' y1='0' y2='{rows * height}' stroke='#555' stroke-dasharray='2,2'>"
        f"<title>{t(text)}</title></line>"
        for x, text in ((at * scale, text) for at, text in data.marks)
    )
    axis = f"<text x='0' y='{rows * height + 11}' font-size='10'>0 s</text>"
    axis += f"<text x='{width}' y='{rows * height + 11}' font-size='10' text-anchor='end'>{data.span:.2f} s</text>"
    labels = "".join(
        f"<text x='-4' y='{i * height + height - 2}' font-size='{min(height, 10)}' text-anchor='end'>{t(e)}</text>"
        for i, e in enumerate(data.engine_ids)
        if height >= 8
    )
    return (
        f"<svg xmlns='http://www.w3.org/2000/svg' width='{width + 40}' height='{rows * height + 14}'"
        f" viewBox='-40 0 {width + 40} {rows * height + 14}' role='img' aria-label='timeline'>"
        f"<rect x='0' y='0' width='{width}' height='{rows * height}' fill='#f7f7f7'/>"
        f"{''.join(rects)}{marks}{labels}{axis}</svg>"
    )


class Report:
    """The HTML report of a state (``State.report``): inline in a notebook, in a sandboxed frame of
    its own (its scripts run there, apart from the notebook's), or saved as a file."""

    HEIGHT = 640  # px of the inline frame

    def __init__(self, page: str):
        self.html = page

    def save(self, path) -> None:
        with open(path, "w", encoding="utf-8") as out:
            out.write(self.html)

    def _repr_html_(self) -> str:
        return (
            f"<iframe srcdoc='{html.escape(self.html, quote=True)}' sandbox='allow-scripts'"
            f" style='width: 100%; height: {self.HEIGHT}px; border: 1px solid #ddd'></iframe>"
        )

    def __repr__(self) -> str:
        return f"<Report: {len(self.html):,} characters of HTML; .save(path) writes it>"
