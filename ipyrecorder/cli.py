"""The ``ipyrecorder`` command line. Every failure is one line and an exit code."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import click

from .clocks import CLOCKS
from .damage import TORN
from .errors import (
    Damaged,
    IpyrecorderError,
    LogError,
    LogLocked,
    NoCluster,
    NoFile,
    PortInUse,
    UsageError,
)
from .log import LogReader, read_header
from .log import repair as repair_tail
from .status import ExitStatus
from .text import visible

# The one mapping from errors to exit statuses: the first class an error is an instance of.
EXIT_STATUS = (
    (LogLocked, ExitStatus.LOCKED),
    (LogError, ExitStatus.NOT_A_LOG),
    (UsageError, ExitStatus.USAGE),
    (NoFile, ExitStatus.NO_FILE),
    (Damaged, ExitStatus.DAMAGED),
    (NoCluster, ExitStatus.NO_CLUSTER),
    (PortInUse, ExitStatus.PORT_IN_USE),
    (click.ClickException, ExitStatus.USAGE),
)


def say(text, err: bool = False) -> None:
    """Print a line for a person to read; what it quotes (names, paths, a log's text) is shown inertly."""
    click.echo(visible(str(text)), err=err)


def exit_status_of(error: BaseException) -> ExitStatus:
    return next((status for kind, status in EXIT_STATUS if isinstance(error, kind)), ExitStatus.ERROR)


@contextlib.contextmanager
def _log_errors(path):
    """A missing or unreadable log is NoFile, naming it."""
    try:
        yield
    except FileNotFoundError:
        raise NoFile(f"{path}: no such file") from None
    except IsADirectoryError:
        raise NoFile(f"{path}: is a directory") from None
    except PermissionError:
        raise NoFile(f"{path}: permission denied") from None


def _open_reader(path) -> LogReader:
    with _log_errors(path):
        return LogReader(path)


def _json_option(name: str, text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"{name} is not valid JSON: {exc}") from None


def _parse_options(pairs) -> dict:
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--option takes key=value, not {pair!r}")
        options[key.strip()] = value
    return options


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="ipyrecorder")
def cli():
    """Record what an ipyparallel cluster does, and replay the log."""


UNTIL_HELP = "Rebuild the state as it was at this time: ISO 8601, or relative to the start (+90s, 5m, 1h30m)."


def _reads_logs(command):
    """The LOG... argument (several logs are merged) and --until, of every command that folds logs."""
    command = click.option("--until", default=None, help=UNTIL_HELP)(command)
    return click.argument("logs", nargs=-1, required=True, metavar="LOG...")(command)


def _open_all(logs):
    """Fail early, in one line, on a bad log: reading only each log's first frame."""
    for log in logs:
        with _log_errors(log):
            read_header(log)


PROGRESS_FROM = 32 << 20  # bytes of logs: reading fewer is quick enough to need no progress bar


@contextlib.contextmanager
def _reading(logs):
    """A ``progress(done, total)`` for reading ``logs``: a bar on a terminal's stderr, gone when done;
    None when stderr is not a terminal or the logs are small."""
    size = sum(os.path.getsize(log) for log in logs if os.path.isfile(log))
    if size < PROGRESS_FROM or not sys.stderr.isatty():
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn

    name = visible(", ".join(os.path.basename(str(log)) for log in logs))
    columns = (TextColumn(f"reading {name}"), BarColumn(), DownloadColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("reading", total=size)
        yield lambda done, total: bar.update(task, completed=done)


def _fold_all(logs, until, clock="client"):
    from .state import replay as fold

    _open_all(logs)
    with _reading(logs) as progress:
        state = fold(*logs, until=until, clock=clock, progress=progress)
    _warn_damage(logs, state.damage)
    if state.until is not None and not state.tasks and not state.engines:  # nothing yet: when did it begin?
        from .events import from_us

        began = fold(*logs, clock=clock).span_us()[0]
        if began is not None and state.until < from_us(began):
            raise UsageError(
                f"--until {until}: before the recording's first event, at {from_us(began):%Y-%m-%d %H:%M:%S} UTC"
            )
    return state


def _warn_damage(logs, damage) -> None:
    """One line on stderr for each damaged log: what was skipped, and where to look."""
    by_log: dict = {}
    for d in damage:
        by_log.setdefault(d.path or logs[0], []).append(d)
    for path, found in by_log.items():
        kinds = ", ".join(sorted({d.code for d in found}))
        size = sum(d.length for d in found)
        say(
            f"ipyrecorder: warning: {path}: {len(found)} damaged region(s) skipped ({kinds}, {size} bytes); "
            f"what they held is missing: see `ipyrecorder check {path}`",
            err=True,
        )


@cli.command()
@_reads_logs
@click.option(
    "--sink",
    "-s",
    "sink_name",
    default="json",
    show_default=True,
    help="Sink to replay into (see `ipyrecorder sinks`).",
)
@click.option(
    "-o",
    "--output",
    default=None,
    help="Output file ('-' for stdout; default: LOG's name with the sink's suffix, or stdout for json and csv "
    "when it is piped).",
)
@click.option("--option", "-O", "options", multiple=True, metavar="KEY=VALUE", help="A sink option; repeatable.")
@click.option(
    "--clock",
    type=click.Choice(CLOCKS),
    default="client",
    show_default=True,
    help="Engine times on the client's clock (moved by each engine's offset where it differs), "
    "or on each engine's own, as logged.",
)
def replay(logs, sink_name, output, options, until, clock):
    """Replay LOG (several are merged) into a sink: json, csv, matplotlib, ..."""
    from .sink import Log, get_sink

    _open_all(logs)
    sink = get_sink(sink_name).from_strings(_parse_options(options))
    if not sink.wants_output():  # (an interactive window: no progress bar under it)
        log = Log(*logs, until=until, clock=clock)
        sink.write(log, None)
        _warn_damage(logs, log.damage)
        return
    if output is None:  # a pipe takes a streaming sink's text; a terminal, or anything else, gets a file
        piped = sink.streams and not sys.stdout.isatty()
        output = str(Path(logs[0]).with_suffix(sink.suffix)) if sink.suffix and not piped else "-"
    with contextlib.ExitStack() as stack:
        if until is not None:  # (folded here, with its own progress bar)
            log = Log(*logs, until=until, clock=clock)
            log.state, log.damage = _fold_all(logs, until, clock), []  # (its damage already reported)
        else:  # folded as the sink reads it: the bar shows the reading until the sink is done
            log = Log(*logs, until=until, clock=clock, progress=stack.enter_context(_reading(logs)))
        with _output_directory(output) if sink.directory else _output(output, sink.binary) as out:
            sink.write(log, out)
    _warn_damage(logs, log.damage)
    if output != "-":
        say(f"wrote {output}", err=True)


class _Inert:
    """A text stream that shows control characters visibly: what text sinks write to a terminal."""

    def __init__(self, stream):
        self.stream = stream

    def write(self, text: str) -> int:
        return self.stream.write(visible(text))

    def __getattr__(self, name):
        return getattr(self.stream, name)


def _stdout(binary: bool):
    """Standard output for a sink or a table: inert text on a terminal, and never binary there."""
    if not sys.stdout.isatty():
        return sys.stdout.buffer if binary else sys.stdout
    if binary:
        raise UsageError("this sink writes binary data: give a file with -o FILE, or pipe the output")
    return _Inert(sys.stdout)


@contextlib.contextmanager
def _output(path, binary):
    if path == "-":
        yield _stdout(binary)
        return
    try:
        fh = open(path, "wb") if binary else open(path, "w", newline="", encoding="utf-8")
    except OSError as exc:
        raise NoFile(f"{path}: cannot write ({exc.strerror})") from None
    try:
        with fh:
            yield fh
    except BaseException:
        os.unlink(path)  # a failed sink leaves no half-written file behind
        raise


@contextlib.contextmanager
def _output_directory(path):
    """A new directory filled under a temporary name and renamed when the sink is done."""
    if path == "-":
        raise UsageError("this sink writes a directory: give it with -o DIR")
    if os.path.exists(path):
        raise UsageError(f"{path} exists: remove it, or choose another -o")
    parent = os.path.dirname(os.path.abspath(path))
    try:
        partial = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.", suffix=".partial", dir=parent)
    except OSError as exc:
        raise NoFile(f"{path}: cannot write ({exc.strerror})") from None
    try:
        yield partial
        os.rename(partial, path)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)  # a failed sink leaves nothing half-written behind
        raise


def _list_plugins(discover, verbose):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        entries = discover()
    for warning in caught:
        say(f"warning: {warning.message}", err=True)
    for name, entry in entries.items():
        if entry.cls is None:
            say(f"{name:14} (failed to load: {entry.error})")
            continue
        say(f"{name:14} {entry.cls.description}")
        if verbose:
            for opt in entry.cls.options:
                say(f"{'':14}   {opt.name}={opt.type_name} (default {opt.default!r}): {opt.help}")


@cli.command()
@click.option("--verbose", "-v", is_flag=True, help="Also list each sink's options.")
def sinks(verbose):
    """List the installed sinks."""
    from .sink import discover

    _list_plugins(discover, verbose)


@cli.command()
@click.option("--verbose", "-v", is_flag=True, help="Also list each viewer's options.")
def viewers(verbose):
    """List the installed live viewers."""
    from .viewer import discover

    _list_plugins(discover, verbose)


@cli.command()
@click.argument("log")
@click.option(
    "--viewer", "-w", "viewer_name", default="terminal", show_default=True, help="Viewer (see `ipyrecorder viewers`)."
)
@click.option("--poll", is_flag=True, help="Poll the file instead of waiting for file events (network file systems).")
@click.option("--once", is_flag=True, help="Show the current state once and exit.")
@click.option("--option", "-O", "options", multiple=True, metavar="KEY=VALUE", help="A viewer option; repeatable.")
def watch(log, viewer_name, poll, once, options):
    """Follow LOG as it grows and show the cluster's state live."""
    from .tail import LogTail
    from .viewer import get_viewer

    viewer = get_viewer(viewer_name).from_strings(_parse_options(options))
    if once:
        _open_all([log])  # one line, and the right status, for a missing or bad file
    viewer.run(LogTail(log, freeze_gc=True), poll=poll, once=once)


@cli.command()
@click.argument("logs", nargs=-1, required=True, metavar="LOG...")
def cat(logs):
    """Print the events of each LOG as JSON lines: the log's public form (docs/format.md, section 7)."""
    _open_all(logs)
    out = sys.stdout
    damage = []
    for log in logs:
        reader = _open_reader(log)
        for event in reader.public_events():
            out.write(json.dumps(event, ensure_ascii=True) + "\n")  # ASCII: inert in any terminal
        damage += [dataclasses.replace(d, path=log) for d in reader.damage]
    out.flush()
    _warn_damage(logs, damage)


@cli.command()
@_reads_logs
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
def info(logs, as_json, until):
    """Summarise LOG (several are merged): tasks by status, span, engines, damage."""
    from .summary import read_summary
    from .text import summary_text

    found = None
    if len(logs) == 1 and until is None:  # a log whose writer kept summaries is not folded
        _open_all(logs)
        with _log_errors(logs[0]):
            found = read_summary(logs[0])
    if found is not None:
        headers, summary, marks = found
    else:
        state = _fold_all(logs, until)
        headers, summary, marks = state.headers, state.summary(), [m.text for m in state.marks]
    if as_json:
        headers = [_header_json(h) for h in headers]
        click.echo(json.dumps({"logs": list(logs), "headers": headers, **summary}, indent=2, default=str))
        return
    say(summary_text(logs, headers, summary, marks))


@cli.command()
@_reads_logs
@click.option(
    "--where", "-q", default="{}", show_default=True, help='A Mongo-style query, as JSON: \'{"status": "error"}\'.'
)
@click.option("--keys", "-k", default=None, help="Comma-separated keys to show (msg_id is always included).")
@click.option("--format", "-f", "fmt", type=click.Choice(["table", "json", "csv"]), default="table", show_default=True)
@click.option("--sort", "-s", "sort_key", default=None, help="Sort by this key; -KEY sorts the largest first.")
@click.option("--limit", "-n", type=click.IntRange(min=0), default=None, help="Show at most this many tasks.")
def query(logs, where, keys, fmt, until, sort_key, limit):
    """Find tasks with Hub-style queries: $in $nin $eq $ne $gt $gte $lt $lte $glob.

    The ten slowest tasks: ipyrecorder query LOG --sort -run_seconds --limit 10
    """
    from .query import query as run_query

    condition = _json_option("--where", where)
    state = _fold_all(logs, until)
    default_keys = ["name", "function", "engine_id", "status", "started", "run_seconds", "error"]
    wanted = [k.strip() for k in keys.split(",") if k.strip()] if keys else None
    records = run_query(
        state,
        condition,
        wanted if wanted is not None else default_keys if fmt == "table" else None,
        sort=sort_key,
        limit=limit,
    )
    _print_records(records, fmt)


def _print_records(records, fmt):
    def text(value):
        if value is None:
            return ""
        if isinstance(value, float):
            return f"{value:.6f}"
        return value.isoformat() if hasattr(value, "isoformat") else str(value)

    if fmt == "json":
        click.echo(json.dumps(records, indent=2, default=text))
    elif fmt == "csv":
        import csv

        columns = list(records[0]) if records else ["msg_id"]
        writer = csv.writer(_stdout(binary=False), lineterminator="\n")
        writer.writerow(columns)
        for record in records:
            writer.writerow([text(record[c]) for c in columns])
    else:
        from rich.console import Console
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, header_style="bold", pad_edge=False)
        columns = list(records[0]) if records else ["msg_id"]
        for column in columns:
            table.add_column(column, overflow="fold")
        for record in records:  # (as Text: a log's "[/]" or "[link=...]" is never read as markup)
            table.add_row(*(Text(visible(text(record[c]).replace("\n", " "))[:80]) for c in columns))
        import shutil

        Console(width=shutil.get_terminal_size((200, 24)).columns).print(table)
        say(f"{len(records)} task(s)", err=True)


def _header_json(header):
    return {**header, "t0": header["t0"].isoformat()}


@cli.command()
@_reads_logs
@click.option("--json", "as_json", is_flag=True, help="Print the failures as JSON.")
def failures(logs, as_json, until):
    """List every failed attempt: task, engine, error and the remote traceback."""
    from .events import from_us
    from .state import engine_label

    state = _fold_all(logs, until)
    found = state.failures()
    seen: dict = {}  # msg_id -> failures listed so far: which attempt this one is
    records = []
    for task, engine_id, t_us, ename, evalue, traceback in found:
        seen[task.msg_id] = seen.get(task.msg_id, 0) + 1
        records.append(
            {
                "msg_id": task.msg_id,
                "name": task.name,
                "function": task.function,
                "status": task.status,
                "engine_id": engine_id,
                "t": None if t_us is None else from_us(t_us).isoformat(),
                "attempt": seen[task.msg_id],
                "attempts": max(len(task.attempts_us or ()), seen[task.msg_id], 1),
                "resubmits": state.resubmit_chain(task.msg_id),
                "ename": ename,
                "evalue": evalue,
                "traceback": traceback,
                "stdout": task.stdout or None,
                "stderr": task.stderr or None,
            }
        )
    if as_json:
        click.echo(json.dumps(records, indent=2))
        return
    for (task, engine_id, t_us, *_), record in zip(found, records):
        when = "" if t_us is None else f" at {from_us(t_us):%H:%M:%S.%f}"[:-3]
        outcome = "failed" if task.status != "ok" else "attempt failed, then succeeded"
        of = f", attempt {record['attempt']} of {record['attempts']}" if record["attempts"] > 1 else ""
        say(f"{task.display_name} ({task.msg_id}) on {engine_label(engine_id)}{when}{of}: {outcome}")
        ename, evalue = record["ename"], record["evalue"]
        say(f"  {ename}: {evalue}" if evalue else f"  {ename}")
        for line in (record["traceback"] or "(no traceback recorded)").split("\n"):
            say(f"    {line}")
        chain = record["resubmits"]
        if len(chain) > 1:  # the task was resubmitted, or is a resubmission: the whole chain, this one marked
            say("  resubmitted: " + " -> ".join(f"[{m}]" if m == task.msg_id else m for m in chain))
        for stream in ("stdout", "stderr"):
            if record[stream]:
                say(f"  last {stream}: " + record[stream].rstrip().split("\n")[-1])
        say("")
    tasks = len({task.msg_id for task, *_ in found})
    say(f"{len(found)} failed attempt(s) of {tasks} task(s)", err=True)


@cli.command()
@click.argument("log")
@click.option("--repair", is_flag=True, help="Move a torn last frame aside, to LOG.torn-OFFSET.")
def check(log, repair):
    """Verify LOG's frames, checksums and content; exit 5 when damage remains."""
    reader = _open_reader(log)
    events = segments = 0  # (counted as info and the dashboard count them: the segments' headers apart)
    for event in reader.events():
        if event["kind"] == "header":
            segments += 1
        else:
            events += 1
    damage = reader.damage
    if repair and any(d.code == TORN for d in damage):
        moved = repair_tail(log)
        if moved is not None:
            torn, aside = moved
            say(f"{log}: repaired: moved the torn last frame ({torn.length} bytes) to {aside}")
            damage = [d for d in damage if d != torn]
    for d in damage:
        say(f"{log}: {d}")
    say(
        f"{log}: {events} events in {segments} segment(s), {'ok' if not damage else f'{len(damage)} damaged region(s)'}"
    )
    if damage:
        raise Damaged(f"{log}: damaged")


def _cluster_options(f):
    f = click.option("--url-file", "-f", default=None, help="The cluster's ipcontroller-client.json.")(f)
    f = click.option("--profile", "-p", default=None, help="IPython profile of the cluster (default: default).")(f)
    return f


def _connect(profile, url_file):
    from .hub import connect

    if url_file and not os.path.exists(url_file):
        raise NoFile(f"{url_file}: no such file")
    try:
        return connect(profile=profile, url_file=url_file)
    except Exception as exc:
        raise NoCluster(f"cannot connect to the cluster: {type(exc).__name__}: {exc}") from None


@cli.command("import-hub")
@_cluster_options
@click.option("-o", "--output", required=True, help="The log to write.")
@click.option("--where", "-q", default="{}", show_default=True, help="A db_query filter, as JSON.")
def import_hub(profile, url_file, output, where):
    """Turn the Hub's task records (every client's) into a log."""
    from .hub import HUB_DB_NOTE
    from .hub import import_hub as run_import

    condition = _json_option("--where", where)
    client = _connect(profile, url_file)
    try:
        count = run_import(client, output, condition)
    finally:
        client.close()
    say(f"wrote {count} task records to {output}", err=True)
    say(f"note: {HUB_DB_NOTE}; older tasks may be missing", err=True)


ENGINE_STATS_OPTION = click.option(
    "--engine-stats",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    metavar="SECONDS",
    help="Sample each engine's CPU and memory this often (docs/recording.md, 'Engine resources').",
)


@cli.command()
@_cluster_options
@click.option("-o", "--output", required=True, help="The log to append to.")
@click.option("--interval", default=0.5, show_default=True, help="Seconds between polls of the Hub.")
@ENGINE_STATS_OPTION
def record(profile, url_file, output, interval, engine_stats):
    """Record every client's tasks on a running cluster until Ctrl-C or SIGTERM."""
    import signal

    from .hub import ClusterRecorder

    observer = ClusterRecorder(
        lambda: _connect(profile, url_file),
        output,
        interval=interval,
        echo=lambda text: say(text, err=True),
        engine_stats=engine_stats,
    )
    stop = lambda *_: observer.stop.set()  # noqa: E731
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        say(f"recording the cluster to {output}; Ctrl-C to stop", err=True)
        observer.run()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    say(f"recorded {observer.tasks} tasks to {output}", err=True)


@cli.command()
@click.argument("log")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind (127.0.0.1: this machine's users only; 0.0.0.0: every network).",
)
@click.option("--port", default=8181, show_default=True, type=click.IntRange(0, 65535), help="Port (0: any free port).")
@click.option("--certfile", default=None, help="TLS certificate (PEM): serve https.")
@click.option("--keyfile", default=None, help="TLS private key (PEM), when not in the certificate file.")
@click.option("--token", default=None, help="Access token (default: a new one, printed in the URL).")
@click.option(
    "--no-token",
    is_flag=True,
    help="On a loopback address only: no token, so every user of this machine can read the dashboard.",
)
@click.option("--poll", is_flag=True, help="Poll the file instead of waiting for file events (network file systems).")
def serve(log, host, port, certfile, keyfile, token, no_token, poll):
    """Serve a live web dashboard of LOG: engines, timeline, engine pages, task search (read-only)."""
    from .tail import LogTail
    from .viewer import get_viewer

    if no_token and token:
        raise UsageError("--no-token and --token contradict each other: give one")
    token = "" if no_token else token
    viewer = get_viewer("web")(host=host, port=port, certfile=certfile, keyfile=keyfile, token=token)
    viewer.run(LogTail(log, freeze_gc=True), poll=poll)


@cli.command()
@click.option("--output-dir", "-d", default="ipyrecorder-demo", show_default=True, help="Where the log and outputs go.")
@click.option("--engines", "-n", default=2, show_default=True, help="Engines in the local cluster.")
@ENGINE_STATS_OPTION
def demo(output_dir, engines, engine_stats):
    """Start a local cluster, record a varied workload, summarise it."""
    from .demo import run_demo

    run_demo(output_dir, engines, echo=say, engine_stats=engine_stats)


def main(argv=None) -> int:
    """Entry point: run the CLI, turning every error into one line and an exit code."""
    debug = bool(os.environ.get("IPYRECORDER_DEBUG"))
    try:
        cli.main(args=argv, prog_name="ipyrecorder", standalone_mode=False)
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except click.Abort:
        say("ipyrecorder: aborted", err=True)
        return ExitStatus.INTERRUPTED
    except click.ClickException as exc:
        say(f"ipyrecorder: error: {exc.format_message()}", err=True)
        return exit_status_of(exc)
    except IpyrecorderError as exc:
        say(f"ipyrecorder: error: {exc}", err=True)
        return exit_status_of(exc)
    except BrokenPipeError:
        return ExitStatus.OK
    except Exception as exc:
        if debug:
            raise
        say(
            f"ipyrecorder: internal error: {type(exc).__name__}: {exc} (IPYRECORDER_DEBUG=1 shows a traceback)",
            err=True,
        )
        return ExitStatus.ERROR
    return ExitStatus.OK
