"""What sinks and viewers share: declared options, and discovery through entry points.

Plugins are classes found in an entry-point group (``ipyrecorder.sinks``,
``ipyrecorder.viewers``); the built-in ones are registered exactly like a
third-party plugin would be. A plugin that fails to load is kept as an entry
with its error and a warning, so the others keep working.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Callable

from .errors import PluginError, PluginWarning

__all__ = ["Option", "Plugin", "PluginEntry", "PluginError", "PluginWarning", "discover", "get"]

SINKS = "ipyrecorder.sinks"  # the entry-point group of sinks
VIEWERS = "ipyrecorder.viewers"  # ... and of viewers


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"expected true or false, not {text!r}")


@dataclass(frozen=True)
class Option:
    """One option a plugin accepts as ``--option name=value``."""

    name: str
    type: Callable[[str], Any] = str
    default: Any = None
    help: str = ""

    def parse(self, text: str):
        convert = parse_bool if self.type is bool else self.type
        try:
            return convert(text)
        except (TypeError, ValueError) as exc:
            raise PluginError(f"bad value for option {self.name!r}: {exc}") from None

    @property
    def type_name(self) -> str:
        return getattr(self.type, "__name__", str(self.type))


class Plugin:
    """Base of sinks and viewers: a ``name``, a one-line ``description``, ``options``."""

    name: str = ""
    description: str = ""
    options: tuple = ()  # of Option

    def __init__(self, **values):
        known = {opt.name: opt for opt in self.options}
        for key in values:
            if key not in known:
                raise self._unknown(key)
        self.config = {name: values.get(name, opt.default) for name, opt in known.items()}

    @classmethod
    def _unknown(cls, key) -> PluginError:
        names = ", ".join(opt.name for opt in cls.options) or "none"
        return PluginError(f"unknown option {key!r} for {cls.name!r} (options: {names})")

    @classmethod
    def from_strings(cls, pairs: dict[str, str]) -> "Plugin":
        """An instance from ``--option key=value`` strings, converted and checked."""
        known = {opt.name: opt for opt in cls.options}
        values = {}
        for key, text in pairs.items():
            if key not in known:
                raise cls._unknown(key)
            values[key] = known[key].parse(text)
        return cls(**values)


@dataclass
class PluginEntry:
    """A discovered plugin: its class, or why it failed to load."""

    name: str
    value: str
    cls: type | None = None
    error: str | None = None


def discover(group: str, base: type) -> dict[str, PluginEntry]:
    """All plugins in an entry-point group, sorted by name; failures kept with their error."""
    found = {}
    for ep in entry_points(group=group):
        entry = PluginEntry(ep.name, ep.value)
        try:
            cls = ep.load()
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise TypeError(f"{ep.value} is not a {base.__name__} subclass")
            entry.cls = cls
        except Exception as exc:  # any plugin bug must not break the CLI
            entry.error = f"{type(exc).__name__}: {exc}"
            warnings.warn(
                f"{group.rsplit('.', 1)[-1][:-1]} {ep.name!r} failed to load: {entry.error}",
                PluginWarning,
                stacklevel=2,
            )
        found[ep.name] = entry
    return dict(sorted(found.items()))


def get(group: str, base: type, name: str) -> type:
    """The plugin class registered as ``name``; PluginError when missing or broken."""
    kind = group.rsplit(".", 1)[-1][:-1]  # "sink", "viewer"
    entries = discover(group, base)
    entry = entries.get(name)
    if entry is None:
        guess = _meant(name, entries)
        hint = f": did you mean {' or '.join(guess)}?" if guess else ""
        raise PluginError(f"unknown {kind} {name!r}{hint} (installed: {', '.join(entries) or 'none'})")
    if entry.cls is None:
        raise PluginError(f"{kind} {name!r} failed to load: {entry.error}")
    return entry.cls


def _meant(name: str, entries: dict) -> list:
    """The plugins a mistyped name may stand for: those whose name it begins (``chrome``), whose
    output it names (``png`` for the sink that writes ``.png``), or that it nearly spells."""
    wanted = name.lower().lstrip(".")
    by_suffix = [n for n, e in entries.items() if e.cls is not None and getattr(e.cls, "suffix", "") == f".{wanted}"]
    by_start = [n for n in entries if n.startswith(wanted) and wanted]
    return list(dict.fromkeys(by_suffix + by_start + difflib.get_close_matches(wanted, list(entries), n=2)))
