"""The live-viewer plugin interface: a viewer shows a log's state as it grows.

Viewers are found in the ``ipyrecorder.viewers`` entry-point group; the
built-in ones in ``viewers/`` are registered there exactly like a third-party
viewer. A viewer is given a ``LogTail`` and keeps it up to date with a
``Follower`` (file events, or polling).
"""

from __future__ import annotations

from . import plugin
from .tail import LogTail

ENTRY_POINT_GROUP = plugin.VIEWERS


class Viewer(plugin.Plugin):
    """Base class for viewers: set ``name``, ``description``, ``options``; write ``run``."""

    def run(self, tail: LogTail, *, poll: bool = False, once: bool = False) -> None:
        """Show ``tail``'s state and follow it until interrupted (or once, with ``once``)."""
        raise NotImplementedError


def discover() -> dict:
    """Every installed viewer (``PluginEntry`` with ``cls`` or ``error``), by name."""
    return plugin.discover(ENTRY_POINT_GROUP, Viewer)


def get_viewer(name: str) -> type:
    return plugin.get(ENTRY_POINT_GROUP, Viewer, name)
