"""Everything ipyrecorder raises and warns on purpose, under one root of each.

``IpyrecorderError`` is the root of the errors, ``IpyrecorderWarning`` of the
warnings. The command line turns each error into one line and the exit status
that ``cli.EXIT_STATUS`` maps its class to.
"""

from __future__ import annotations

import sys
import warnings


class IpyrecorderError(Exception):
    """Root of the errors ipyrecorder raises on purpose."""


class UsageError(IpyrecorderError):
    """A request that cannot be carried out as asked: bad arguments or option values."""


class NoFile(IpyrecorderError):
    """A named file does not exist, or cannot be read or written."""


class LogError(IpyrecorderError):
    """Base class for errors about a log file as a whole."""


class NotALog(LogError):
    """The file is not an ipyrecorder log."""


class UnsupportedVersion(LogError):
    """The log was written by a newer, incompatible format version."""


class LogLocked(LogError):
    """Another writer holds the log's advisory lock."""


class Damaged(IpyrecorderError):
    """A log is damaged (``ipyrecorder check`` found damage it did not repair)."""


class FormatError(IpyrecorderError, ValueError):
    """The bytes are framed correctly but do not hold a valid event, or an event cannot be encoded."""


class PluginError(UsageError):
    """A plugin was asked for something it cannot do (unknown option, bad value, missing extra)."""


class QueryError(UsageError, ValueError):
    """The query cannot be run: unknown key or operator, or a value of the wrong type."""


class TapError(IpyrecorderError, RuntimeError):
    """The client cannot be tapped (it is closed, or already being recorded)."""


class NoCluster(IpyrecorderError):
    """The cluster cannot be reached."""


class PortInUse(IpyrecorderError):
    """A server cannot listen: the port is taken, or the address cannot be bound."""


class IpyrecorderWarning(UserWarning):
    """Root of ipyrecorder's warnings."""


class RecorderWarning(IpyrecorderWarning):
    """The recorder could not do its job fully; the computation is unaffected."""


class PluginWarning(IpyrecorderWarning):
    """A plugin could not be loaded; the others keep working."""


class LogDamageWarning(IpyrecorderWarning):
    """Part of a log could not be read (see ``LogReader.damage``)."""


_reported: set = set()


def warn_hook_failure(where: str) -> None:
    """Report the exception being handled inside a hook, once per place and type, without raising."""
    exc = sys.exc_info()[1]
    key = (where, type(exc))
    if key in _reported:
        return
    _reported.add(key)
    warnings.warn(
        f"ipyrecorder: {where} hook failed ({exc!r}); recording may be incomplete", RecorderWarning, stacklevel=2
    )
