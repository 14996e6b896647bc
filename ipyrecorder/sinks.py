"""The sink plugin interface and its discovery through entry points.

A sink turns a log into something else (a JSON dump, a CSV table, a picture).
Sinks are found in the ``ipyrecorder.sinks`` entry-point group; the built-in
ones in ``plugins/`` are registered there exactly like a third-party sink.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import cached_property
from importlib.metadata import entry_points
from typing import Any, Callable, Iterator

from .log import LogReader
from .state import State, replay

ENTRY_POINT_GROUP = "ipyrecorder.sinks"


class SinkError(Exception):
    """A sink was asked for something it cannot do (unknown option, bad value)."""


class PluginWarning(UserWarning):
    """A plugin could not be loaded; the others keep working."""


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, not {text!r}")


@dataclass(frozen=True)
class Option:
    """One option a sink accepts as ``--option name=value``."""

    name: str
    type: Callable[[str], Any] = str
    default: Any = None
    help: str = ""

    def parse(self, text: str):
        convert = parse_bool if self.type is bool else self.type
        try:
            return convert(text)
        except (TypeError, ValueError) as exc:
            raise SinkError(f"bad value for option {self.name!r}: {exc}") from None

    @property
    def type_name(self) -> str:
        return getattr(self.type, "__name__", str(self.type))


class Log:
    """What a sink is given: one log, readable as raw events or as folded state."""

    def __init__(self, path):
        self.path = path

    @cached_property
    def state(self) -> State:
        return replay(self.path)

    def events(self) -> Iterator[dict]:
        return LogReader(self.path).events()


class Sink:
    """Base class for sinks: set ``name``, ``description``, ``options``; write ``write``."""

    name: str = ""
    description: str = ""
    options: tuple = ()  # of Option
    binary: bool = False  # True: ``write`` gets a binary file
    suffix: str | None = None  # without -o, write LOG's name with this suffix; None: stdout

    def __init__(self, **values):
        known = {opt.name: opt for opt in self.options}
        for key in values:
            if key not in known:
                names = ", ".join(known) or "none"
                raise SinkError(f"unknown option {key!r} for sink {self.name!r} (options: {names})")
        self.config = {name: values.get(name, opt.default) for name, opt in known.items()}

    @classmethod
    def from_strings(cls, pairs: dict[str, str]) -> "Sink":
        known = {opt.name: opt for opt in cls.options}
        values = {}
        for key, text in pairs.items():
            if key not in known:
                names = ", ".join(known) or "none"
                raise SinkError(f"unknown option {key!r} for sink {cls.name!r} (options: {names})")
            values[key] = known[key].parse(text)
        return cls(**values)

    def wants_output(self) -> bool:
        """False when this configuration writes no file (an interactive window)."""
        return True

    def write(self, log: Log, out) -> None:
        """Write ``log`` (``log.state`` or ``log.events()``) to the open file ``out``."""
        raise NotImplementedError


@dataclass
class SinkEntry:
    """A discovered sink: its class, or why it failed to load."""

    name: str
    value: str
    sink: type | None = None
    error: str | None = None


def discover() -> dict[str, SinkEntry]:
    """All sinks in the entry-point group; failures are kept as entries with an error."""
    found = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        entry = SinkEntry(ep.name, ep.value)
        try:
            sink = ep.load()
            if not (isinstance(sink, type) and issubclass(sink, Sink)):
                raise TypeError(f"{ep.value} is not a Sink subclass")
            entry.sink = sink
        except Exception as exc:  # any plugin bug must not break the CLI
            entry.error = f"{type(exc).__name__}: {exc}"
            warnings.warn(f"sink {ep.name!r} failed to load: {entry.error}", PluginWarning, stacklevel=2)
        found[ep.name] = entry
    return dict(sorted(found.items()))


def get_sink(name: str) -> type:
    """The Sink class registered as ``name``; SinkError when missing or broken."""
    entries = discover()
    entry = entries.get(name)
    if entry is None:
        raise SinkError(f"unknown sink {name!r} (installed: {', '.join(entries) or 'none'})")
    if entry.sink is None:
        raise SinkError(f"sink {name!r} failed to load: {entry.error}")
    return entry.sink
