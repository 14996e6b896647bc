"""``terminal`` viewer: the cluster's state in a terminal, redrawn as the log grows.

A rich live display in a terminal; plain status lines when the output is not a
terminal (pipes, CI logs); ``--once`` prints the current state and exits.
"""

from __future__ import annotations

import time

from ipyrecorder.clocks import on_client
from ipyrecorder.plugin import Option
from ipyrecorder.tail import Follower, LogTail
from ipyrecorder.text import visible
from ipyrecorder.viewer import Viewer

RATE_WINDOW_US = 30_000_000  # completion rate over the last 30 s of the log


def _seconds(us) -> str:
    seconds = us / 1e6
    if seconds < 60:
        return f"{seconds:.1f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"


def progress(state) -> dict:
    """Counts, completion rate (tasks/s) and ETA (seconds) from the state's running totals."""
    done, submitted = state.n_completed, state.n_submitted
    rate = eta = None
    recent = state.recent_completions
    if len(recent) >= 2:
        last = recent[-1]
        window = [t for t in recent if t >= last - RATE_WINDOW_US]
        span = (window[-1] - window[0]) / 1e6
        if span > 0:
            rate = (len(window) - 1) / span
            if submitted > done and rate > 0:
                eta = (submitted - done) / rate
    running = sum(1 for e in state.engines.values() if e.current is not None)
    return {
        "done": done,
        "submitted": submitted,
        "failed": state.n_failed,
        "running": running,
        "rate": rate,
        "eta": eta,
    }


def status_line(state) -> str:
    """One plain line: progress, errors, busy engines, rate and ETA."""
    p = progress(state)
    live = [e for e in state.engines.values() if e.unregistered_us is None]
    parts = [
        f"{p['done']}/{p['submitted']} done",
        f"{p['failed']} failed",
        f"{p['running']} running",
        f"{p['running']}/{len(live)} engines busy",
    ]
    if p["rate"] is not None:
        parts.append(f"{p['rate']:.1f} tasks/s")
    if p["eta"] is not None:
        parts.append(f"ETA {p['eta']:.0f}s")
    return ", ".join(parts)


def where_it_failed(traceback: str) -> list:
    """The lines of a traceback that say where it failed: its last frame's file line, the
    failing line (IPython's ``--->`` or Python's next line), and the exception."""
    lines = [line for line in traceback.splitlines() if line.strip()]
    frames = [i for i, line in enumerate(lines[:-1]) if line.lstrip().startswith("File ")]
    if not frames:
        return lines[-3:]
    frame = frames[-1]
    body = lines[frame + 1 : -1]
    failing = next((line for line in body if line.lstrip().startswith("-")), body[0] if body else None)
    return [lines[frame]] + ([failing] if failing else []) + [lines[-1]]


def render(tail: LogTail, now_us: int | None = None):
    """The rich renderable for the current state; a log's text in it is shown inertly (``visible``)."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    state = tail.state
    now_us = now_us if now_us is not None else time.time_ns() // 1000
    p = progress(state)
    parts = [Text(f"{visible(str(tail.path))}  ", style="bold") + Text(status_line(state))]
    bar = Table.grid(padding=(0, 1))
    bar.add_row(
        ProgressBar(total=max(p["submitted"], 1), completed=p["done"], width=50),
        f"{p['done'] / max(p['submitted'], 1):.0%}",
    )
    parts.append(bar)

    span_s = None
    shifts = state.view_shifts()  # the engines' clocks against the client's, as the log so far says
    start, end = state.span_us()
    if start is not None:
        span_s = max((end - start) / 1e6, 1e-9)
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    for column, justify in (
        ("engine", "right"),
        ("state", "left"),
        ("task", "left"),
        ("running", "right"),
        ("done", "right"),
        ("errors", "right"),
        ("busy s", "right"),
        ("util", "right"),
    ):
        table.add_column(column, justify=justify, no_wrap=True, overflow="ellipsis", max_width=28)
    for engine_id in sorted((e for e in state.engines if e is not None)):
        engine = state.engines[engine_id]
        task = engine.current
        if engine.unregistered_us is not None:
            what, style = "gone", "dim"
        elif task is not None:
            what, style = "busy", "green"
        else:
            what, style = "idle", ""
        began = None if task is None or not task.start_us else on_client(task.start_us, shifts.get(engine_id))
        running = "" if began is None else _seconds(max(now_us - began, 0))  # (on the client's clock)
        util = f"{engine.busy_seconds / span_s:.0%}" if span_s else ""
        table.add_row(
            str(engine_id),
            Text(what, style=style),
            Text(visible(task.display_name)) if task else "",
            running,
            str(engine.tasks_done),
            Text(str(engine.errors), style="red" if engine.errors else ""),
            f"{engine.busy_seconds:.1f}",
            util,
        )
    parts.append(table)

    if state.recent_errors:
        parts.append(Text("recent errors", style="bold red"))
        errors = list(state.recent_errors)[-5:]
        for task in errors:
            parts.append(Text(visible(f"  {task.display_name}: {task.error}"), style="red"))
        if errors[-1].traceback:
            for line in where_it_failed(errors[-1].traceback):
                parts.append(Text(visible(f"    {line}"), style="dim red"))
    if state.recent_output:
        parts.append(Text("last output", style="bold"))
        lines = []
        for task, stream, text in list(state.recent_output)[-8:]:
            for line in text.rstrip("\n").split("\n")[-2:]:  # (a CR or FF is shown, not obeyed)
                lines.append(
                    Text(visible(f"  [{task.engine_id}] {line}"), style="yellow" if stream == "stderr" else "")
                )
        parts.extend(lines[-8:])
    if state.marks:
        parts.append(Text(visible("marks: " + ", ".join(m.text for m in state.marks[-5:])), style="cyan"))
    for notice in tail.notices[-3:]:
        parts.append(Text(visible(notice), style="magenta"))
    for damage in tail.damage[-2:]:
        parts.append(Text(visible(f"damage: {damage}"), style="magenta"))
    return Group(*parts)


class TerminalViewer(Viewer):
    name = "terminal"
    description = "Engines, progress, errors and output in the terminal (rich); plain lines when piped."
    options = (
        Option("refresh", float, 0.25, "seconds between redraws (running times tick)"),
        Option("width", int, None, "terminal width (default: detected)"),
    )

    def run(self, tail, *, poll=False, once=False, console=None, stop=None):
        from rich.console import Console

        console = console or Console(width=self.config["width"])
        if once:
            tail.poll()
            if console.is_terminal:
                console.print(render(tail))
            else:
                print(status_line(tail.state), flush=True)
            return
        tail.poll()  # the backlog first, in this thread, so that a bad file fails here
        follower = Follower(tail, poll=poll)
        if stop is not None:
            follower.stop = stop
        with follower:
            try:
                if console.is_terminal:
                    self._live(console, tail, follower.lock, follower.stop)
                else:
                    self._lines(tail, follower.lock, follower.stop)
            except KeyboardInterrupt:
                pass

    def _live(self, console, tail, lock, stop):
        from rich.live import Live

        with lock:
            view = render(tail)
        with Live(view, console=console, auto_refresh=False, transient=False) as live:
            while not stop.wait(self.config["refresh"]):
                with lock:
                    view = render(tail)
                live.update(view, refresh=True)

    def _lines(self, tail, lock, stop):
        """Not a terminal: print a status line whenever it changes (at most once a second)."""
        last = None
        printed = 0
        while True:
            with lock:
                line = status_line(tail.state)
                notices = tail.notices[printed:]
            for notice in notices:
                print(visible(notice), flush=True)
            printed += len(notices)
            if line != last:
                print(line, flush=True)
                last = line
            if stop.wait(1.0):
                break
