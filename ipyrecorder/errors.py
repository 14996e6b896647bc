"""What the recorder raises and warns: it runs inside other people's programs."""

from __future__ import annotations

import sys
import warnings


class TapError(RuntimeError):
    """The client cannot be tapped (it is closed, or already being recorded)."""


class RecorderWarning(UserWarning):
    """The recorder could not do its job fully; the computation is unaffected."""


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
