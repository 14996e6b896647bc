"""ipyrecorder: record what an ipyparallel cluster does, replay it anywhere.

The data flows one way: tap -> events -> log -> reader -> state -> sink/viewer.

    with ipyrecorder.recording(view, "run.mpk") as rec:
        view.map_async(f, items).get()
    state = ipyrecorder.replay("run.mpk")
"""

import sys

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

_LAZY = {
    "recording": "recorder",
    "Recording": "recorder",
    "snapshot": "snapshot",
    "dump": "snapshot",
    "serve": "dashboard",
    "Dashboard": "dashboard",
}


def load_ipython_extension(ipython):
    """``%load_ext ipyrecorder``: the ``%record`` and ``%%record`` magics (``magics.py``)."""
    from .display import register
    from .magics import RecordMagics

    ipython.register_magics(RecordMagics)
    register(ipython)


def _in_ipython() -> None:
    """Imported in IPython or Jupyter: states, tasks and engines show as HTML there."""
    if "IPython" in sys.modules:
        shell = sys.modules["IPython"].get_ipython()
        if shell is not None:
            from .display import register

            register(shell)


def __getattr__(name):
    # The recording side talks to ipyparallel; keep `import ipyrecorder` light for readers.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'ipyrecorder' has no attribute {name!r}")


_in_ipython()

__all__ = [
    "__version__",
    "Damage",
    "Dashboard",
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
    "load_ipython_extension",
    "open_log",
    "read_events",
    "recording",
    "replay",
    "serve",
    "snapshot",
]
