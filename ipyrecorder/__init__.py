"""ipyrecorder: record what an ipyparallel cluster does, replay it anywhere.

The data flows one way: tap -> events -> log -> reader -> state -> sink/viewer.

    with ipyrecorder.recording(view, "run.mpk") as rec:
        view.map_async(f, items).get()
    state = ipyrecorder.replay("run.mpk")
"""

from ._version import __version__
from .errors import (
    IpyrecorderError,
    IpyrecorderWarning,
    LogError,
    LogLocked,
    NotALog,
    RecorderWarning,
    TapError,
    UnsupportedVersion,
)
from .log import Damage, LogReader, LogWriter, open_log, read_events
from .state import Engine, Mark, State, Task, replay

_LAZY = {"recording": "recorder", "Recording": "recorder", "snapshot": "snapshot", "dump": "snapshot"}


def __getattr__(name):
    # The recording side talks to ipyparallel; keep `import ipyrecorder` light for readers.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'ipyrecorder' has no attribute {name!r}")


__all__ = [
    "__version__",
    "Damage",
    "Engine",
    "IpyrecorderError",
    "IpyrecorderWarning",
    "LogError",
    "LogLocked",
    "LogReader",
    "LogWriter",
    "Mark",
    "NotALog",
    "Recording",
    "RecorderWarning",
    "State",
    "TapError",
    "Task",
    "UnsupportedVersion",
    "dump",
    "open_log",
    "read_events",
    "recording",
    "replay",
    "snapshot",
]
