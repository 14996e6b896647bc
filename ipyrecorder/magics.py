"""``%load_ext ipyrecorder``: record from IPython and Jupyter with magics.

    %%record [TARGET] [PATH] [--engine-stats SECONDS]   record what the cell sends
    %record start [TARGET] [PATH] [--engine-stats SECONDS]
    %record stop

TARGET names a Client or View in the notebook (by default the only one there is); PATH is
the log (default ``ipyrecorder.mpk``, appended to). They record the client as ``recording()``
does, so ``%px`` and ``%%px`` (ipyparallel's magics, which send through a DirectView) inside
the cell, or between start and stop, are recorded too. In a notebook the cell shows the
recording's progress, then its summary.
"""

from __future__ import annotations

import argparse
import shlex

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

DEFAULT_PATH = "ipyrecorder.mpk"


def _parser(prog: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, add_help=False, exit_on_error=False)
    parser.add_argument("words", nargs="*")
    parser.add_argument("--engine-stats", type=float, default=None)
    return parser


@magics_class
class RecordMagics(Magics):
    """``%record`` and ``%%record``; one recording at a time from the line magic."""

    def __init__(self, shell):
        super().__init__(shell)
        self.recording = None  # what ``%record start`` started

    def _arguments(self, line: str, prog: str, most: int):
        """(target, path, engine_stats) from ``[TARGET] [PATH] [--engine-stats S]``."""
        try:
            args = _parser(prog).parse_args(shlex.split(line))
        except (argparse.ArgumentError, ValueError) as exc:
            raise UsageError(f"{prog}: {exc}") from None
        words = args.words
        if len(words) > most:
            raise UsageError(f"{prog}: too many arguments: {' '.join(words)!r} (TARGET and PATH at most)")
        namespace = self.shell.user_ns
        target = None
        if words and words[0].isidentifier() and words[0] in namespace:
            name = words.pop(0)
            target = namespace[name]
            if not _records(target):
                raise UsageError(f"{prog}: {name!r} is not an ipyparallel Client or View")
        target = target if target is not None else self._only_target(prog)
        path = words[0] if words else DEFAULT_PATH
        return target, path, args.engine_stats

    def _only_target(self, prog: str):
        """The one Client (or, with no Client, the one View) the notebook holds."""
        found = [v for k, v in self.shell.user_ns.items() if not k.startswith("_") and _records(v)]
        clients = [v for v in found if _is_client(v)]
        choices = clients or found
        if len({id(_client(v)) for v in choices}) != 1:
            what = "none" if not choices else "several"
            raise UsageError(f"{prog}: name the Client or View to record ({what} found): {prog} rc run.mpk")
        return choices[0]

    @line_cell_magic
    def record(self, line: str, cell: str | None = None):
        from .recorder import recording

        if cell is not None:
            target, path, stats = self._arguments(line, "%%record", 2)
            with recording(target, path, engine_stats=stats):
                self.shell.run_cell(cell)  # (an error in the cell shows there, as it would unrecorded)
            return None
        words = line.split(maxsplit=1)
        action, rest = (words[0] if words else ""), (words[1] if len(words) > 1 else "")
        if action == "start":
            if self.recording is not None:
                raise UsageError(f"%record: already recording to {self.recording.path} (%record stop first)")
            target, path, stats = self._arguments(rest, "%record start", 2)
            self.recording = recording(target, path, engine_stats=stats).__enter__()
            return None
        if action == "stop":
            if self.recording is None:
                raise UsageError("%record stop: nothing is being recorded (%record start first)")
            found, self.recording = self.recording, None
            found.__exit__(None, None, None)
            return None
        raise UsageError("usage: %record start [TARGET] [PATH] [--engine-stats S] | %record stop; or %%record")


def _is_client(value) -> bool:
    import ipyparallel as ipp

    return isinstance(value, ipp.Client)


def _records(value) -> bool:
    """A Client or a View: what ``recording()`` taps."""
    import ipyparallel as ipp

    return isinstance(value, (ipp.Client, ipp.client.view.View))


def _client(value):
    return value if _is_client(value) else value.client
