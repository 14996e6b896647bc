"""The sink plugin interface: a sink replays a log into something else.

A sink turns a log into a JSON dump, a CSV table, a picture... Sinks are found
in the ``ipyrecorder.sinks`` entry-point group; the built-in ones in
``plugins/`` are registered there exactly like a third-party sink.
"""

from __future__ import annotations

from functools import cached_property
from typing import Iterator

from . import plugin
from .log import LogReader
from .plugin import Option
from .plugin import PluginError as SinkError
from .state import State, replay

__all__ = ["ENTRY_POINT_GROUP", "Log", "Option", "Sink", "SinkError", "discover", "get_sink"]  # for sink authors

ENTRY_POINT_GROUP = plugin.SINKS


class Log:
    """What a sink is given: one or more logs, readable as raw events or as folded state."""

    def __init__(self, *paths, until=None, clock="client", progress=None):
        self.paths = paths
        self.progress = progress  # told the bytes read as ``state`` folds (``replay``'s ``progress``)
        self.path = paths[0]
        self.until = until
        self.clock = clock  # what ``state``'s times are on (``replay``'s ``clock``)
        self.damage: list = []  # what reading found damaged, once ``state`` or ``events()`` has read

    @cached_property
    def state(self) -> State:
        """All the logs folded into one state (as of ``until``, if given; on ``clock``)."""
        state = replay(*self.paths, until=self.until, clock=self.clock, progress=self.progress)
        self.damage = state.damage
        return state

    def events(self) -> Iterator[dict]:
        """The decoded events of each log in turn (``until`` applies to ``state`` only)."""
        damage = []
        for path in self.paths:
            reader = LogReader(path)
            yield from reader.events()
            damage += reader.damage
        if "state" not in self.__dict__:
            self.damage = damage


class Sink(plugin.Plugin):
    """Base class for sinks: set ``name``, ``description``, ``options``; write ``write``."""

    binary: bool = False  # True: ``write`` gets a binary file
    suffix: str | None = None  # without -o, write LOG's name with this suffix; None: stdout
    streams: bool = False  # text a pipe takes (json, csv): without -o, to stdout unless it is a terminal
    directory: bool = False  # True: ``write`` gets the path of a new, empty directory to fill

    def wants_output(self) -> bool:
        """False when this configuration writes no file (an interactive window)."""
        return True

    def write(self, log: Log, out) -> None:
        """Write ``log`` (``log.state`` or ``log.events()``) to the open file ``out`` (a directory's
        path for a ``directory`` sink)."""
        raise NotImplementedError


def discover() -> dict:
    """Every installed sink (``PluginEntry`` with ``cls`` or ``error``), by name."""
    return plugin.discover(ENTRY_POINT_GROUP, Sink)


def get_sink(name: str) -> type:
    return plugin.get(ENTRY_POINT_GROUP, Sink, name)
