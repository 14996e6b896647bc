"""``terminal`` viewer: the cluster's state in a terminal, redrawn as the log grows.

A rich live display in a terminal; plain status lines when the output is not a
terminal (pipes, CI logs); ``--once`` prints the current state and exits.
"""

from __future__ import annotations

import time

from ipyrecorder.clocks import on_client
from ipyrecorder.plugin import Option
from ipyrecorder.summary import ending
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
    """One plain line: progress, errors, busy engines, and while the run goes on, rate and ETA."""
    p = progress(state)
    live = [e for e in state.engines.values() if e.unregistered_us is None]
    parts = [
        f"{p['done']}/{p['submitted']} done",
        f"{p['failed']} failed",
        f"{p['running']} running",
        f"{p['running']}/{len(live)} engines busy",
    ]
    if state.closed:  # (a rate and an ETA are for a run still going)
        return ", ".join(parts)
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


# The engines table's columns: (header, justify); below NARROW columns of terminal the last two go
ENGINE_COLUMNS = (
    ("engine", "right"),
    ("state", "left"),
    ("task", "left"),
    ("running", "right"),
    ("done", "right"),
    ("errors", "right"),
    ("busy s", "right"),
    ("util", "right"),
)
NARROW = 72
FUNCTIONS_SHOWN = 8  # functions with a progress line of their own; the rest are counted together
_by_function: dict = {}  # the state and event count it was computed for -> counts_by_function()


def by_function(state) -> dict:
    """``state.counts_by_function()``, computed again only when the state folded more events."""
    key = (id(state), state.events)
    if key not in _by_function:
        _by_function.clear()
        _by_function[key] = state.counts_by_function()
    return _by_function[key]


def _function_rows(state, width):
    """One progress bar per function, the most tasks first: done of all, failed, running."""
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    found = sorted(by_function(state).items(), key=lambda item: -sum(item[1].values()))
    if len(found) < 2:
        return None
    table = Table.grid(padding=(0, 1))
    for _ in range(4):
        table.add_column(no_wrap=True)
    for name, counts in found[:FUNCTIONS_SHOWN]:
        total = sum(counts.values())
        done = total - counts.get("running", 0) - counts.get("pending", 0)
        failed = counts.get("error", 0) + counts.get("aborted", 0)
        table.add_row(
            Text(visible(name or "(no function)")[:24]),
            ProgressBar(total=total, completed=done, width=max(8, min(30, width // 4 - 4))),
            f"{done}/{total}",
            Text(f"{failed} failed" if failed else "", style="red")
            + Text(f" {counts['running']} running" if counts.get("running") else ""),
        )
    if len(found) > FUNCTIONS_SHOWN:
        table.add_row(Text(f"(and {len(found) - FUNCTIONS_SHOWN} more functions)", style="dim"), "", "", "")
    return table


def _recording(state) -> tuple:
    """What the header says of the recording: (text, style)."""
    if state.closed:
        ended = [ending(close) for close in state.closes if "ended" in close]
        return "recording ended" + (f": {ended[-1]}" if ended else ""), "bold"
    return "recording", "green"


def render(tail: LogTail, now_us: int | None = None, width: int | None = None):
    """The rich renderable for the current state, for a terminal ``width`` columns wide (None: wide);
    a log's text in it is shown inertly (``visible``)."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    state = tail.state
    width = width or 200
    now_us = now_us if now_us is not None else time.time_ns() // 1000
    p = progress(state)
    if tail.waiting:  # (it names the log)
        parts = [Text(visible(tail.waiting), style="magenta")]
    else:
        what, style = _recording(state)
        parts = [Text(f"{visible(str(tail.path))}  ", style="bold") + Text(visible(what), style=style)]
    if tail.exists:
        parts.append(Text(status_line(state)))
        bar = Table.grid(padding=(0, 1))
        bar.add_row(
            ProgressBar(total=max(p["submitted"], 1), completed=p["done"], width=max(10, min(50, width - 10))),
            f"{p['done'] / max(p['submitted'], 1):.0%}",
        )
        parts.append(bar)
        functions = _function_rows(state, width)
        if functions is not None:
            parts.append(functions)

    span_s = None
    shifts = state.view_shifts()  # the engines' clocks against the client's, as the log so far says
    start, end = state.span_us()
    if start is not None:
        span_s = max((end - start) / 1e6, 1e-9)
    columns = ENGINE_COLUMNS if width >= NARROW else ENGINE_COLUMNS[:-2]
    # every column but the task's is as wide as its header or its widest value ("8017h32m"): the task's
    # column gets what is left (two spaces between columns)
    fixed = {"running": 8, "done": 5} | {
        name: len(name) for name, _ in columns if name not in ("task", "running", "done")
    }
    left = width - sum(fixed.values()) - 2 * (len(columns) - 1)
    table = Table(box=None, header_style="bold", pad_edge=False, expand=False)
    for column, justify in columns:
        wide = fixed.get(column)
        table.add_column(
            column,
            justify=justify,
            no_wrap=True,
            overflow="ellipsis",
            min_width=wide,
            max_width=wide or max(4, min(28, left)),
        )
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
        row = [
            str(engine_id),
            Text(what, style=style),
            Text(visible(task.display_name)) if task else "",
            running,
            str(engine.tasks_done),
            Text(str(engine.errors), style="red" if engine.errors else ""),
            f"{engine.busy_seconds:.1f}",
            util,
        ]
        table.add_row(*row[: len(columns)])
    if state.engines:
        parts.append(table)

    if state.recent_errors:
        parts.append(Text("recent errors", style="bold red"))
        errors = list(state.recent_errors)[-5:]
        for task in errors:
            parts.append(Text(visible(f"  {task.display_name}: {task.error or task.status}"), style="red"))
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
    waits = tail.waiting_texts
    for notice in [n for n in tail.notices if n not in waits][-3:]:  # (what we wait for is in the header)
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
                console.print(render(tail, width=console.width))
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
            view = render(tail, width=console.width)
        with Live(view, console=console, auto_refresh=False, transient=False) as live:
            while not stop.wait(self.config["refresh"]):
                with lock:
                    view = render(tail, width=console.width)
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
