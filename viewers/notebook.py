"""``notebook`` viewer: a recording's progress in a Jupyter notebook, fed by its log.

A recording started in a notebook shows it in the cell that started it (``recording(...,
progress=None)``: on in a notebook, off elsewhere): per function the tasks done, running,
pending and failed, the rate and ETA, and a small timeline; when the recording ends, the
run's summary (``display.state_html``) takes its place. It reads the log with the tailer, as
every viewer does: the client is never polled.

It is an IPython display updated by its id (``display(..., display_id=True)``), not a widget:
it needs no front-end extension, updates the same in JupyterLab, Notebook, VS Code and
nbclient, and what it last showed is saved with the notebook as plain HTML.
"""

from __future__ import annotations

import threading
import time

from ipyrecorder.display import STYLE, in_notebook, seconds, state_html, t, timeline_svg
from ipyrecorder.plugin import Option, PluginError
from ipyrecorder.tail import LogTail
from ipyrecorder.viewer import Viewer
from ipyrecorder.viewers.terminal import progress

BUSY_SHARE = 0.1  # at most this share of a core goes to drawing: the wait grows with the drawing's cost
COLUMNS = ("done", "running", "pending", "failed")


def progress_html(state, title: str = "") -> str:
    """Per function: done, running, pending, failed (a bar of done); the rate, the ETA; a small timeline."""
    p = progress(state)
    rows = []
    for function, counts in state.counts_by_function().items():
        done = counts.get("ok", 0) + counts.get("error", 0) + counts.get("aborted", 0)
        failed = counts.get("error", 0) + counts.get("aborted", 0)
        total = sum(counts.values())
        bar = (
            f"<div style='width:120px; height:8px; background:#eee'>"
            f"<div style='width:{120 * done // max(total, 1)}px; height:8px; background:#1f77b4'></div></div>"
        )
        cells = [done, counts.get("running", 0), counts.get("pending", 0), failed]
        failed_style = " style='color:#d62728; font-weight:bold'" if failed else ""
        rows.append(
            f"<tr><td>{t(function or '(unnamed)')}</td><td>{bar}</td>"
            + "".join(f"<td{failed_style if i == 3 else ''}>{n}</td>" for i, n in enumerate(cells))
            + "</tr>"
        )
    head = "".join(f"<th style='text-align:left; padding-right:1em'>{h}</th>" for h in ("function", "", *COLUMNS))
    rate = "" if p["rate"] is None else f" · {p['rate']:.1f} tasks/s"
    eta = "" if p["eta"] is None else f" · ETA {seconds(p['eta'])}"
    line = f"<b>{t(title)}</b> recording: {p['done']}/{p['submitted']} done, {p['failed']} failed{rate}{eta}"
    timeline = timeline_svg(state) if len(state.tasks) else ""
    return (
        f"<div class='ipyrecorder-progress' style='{STYLE}'><div>{line}</div>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>{timeline}</div>"
    )


class NotebookViewer(Viewer):
    name = "notebook"
    description = "A log's progress in a Jupyter notebook cell, per function, ending with the run's summary."
    options = (Option("interval", float, 0.5, "seconds between updates (more when drawing costs more)"),)

    def run(self, tail, *, poll=False, once=False):
        """Show ``tail``'s log in the current cell until it closes (or at once, with ``once``)."""
        if not in_notebook():
            raise PluginError("the notebook viewer shows in a Jupyter notebook's cell; here use --viewer terminal")
        closed = threading.Event()
        if once:
            closed.set()
        self.follow(tail, self.show(), closed, check=lambda: tail.state.closed)

    def show(self):
        """A display in the current cell (call it on the cell's thread), to ``follow`` into."""
        from IPython.display import HTML, display

        return display(HTML("<div class='ipyrecorder-progress'>recording…</div>"), display_id=True)

    def follow(self, tail: LogTail, handle, until: threading.Event, check=lambda: False) -> None:
        """Update ``handle`` from ``tail`` until ``until`` is set (or ``check()`` is true), then show
        the summary of everything the log says. Never raises: a display is not worth a failure."""
        from IPython.display import HTML

        title = tail.state.name
        wait = self.config["interval"]
        try:
            while not until.wait(wait):
                tail.poll()
                if check():
                    break
                began = time.perf_counter()
                handle.update(HTML(progress_html(tail.state, title)))
                wait = max(self.config["interval"], (time.perf_counter() - began) / BUSY_SHARE)
            tail.poll()
            handle.update(HTML(state_html(tail.state)))
        except Exception as exc:  # (the kernel went away, a log that cannot be read: the recording goes on)
            try:
                handle.update(HTML(f"<div style='{STYLE}'>ipyrecorder: progress stopped ({t(exc)})</div>"))
            except Exception:
                pass
