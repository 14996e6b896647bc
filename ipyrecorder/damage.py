"""What reading a log found damaged: where, how long, and a code that says what.

Every problem a reader meets in a log is one ``Damage``, never an exception:
tools report it and read on. The codes are part of the format's contract
(docs/format.md, section 2.3).
"""

from __future__ import annotations

from dataclasses import dataclass

TORN = "torn"  # a frame cut short: the writer stopped (a crash) while writing it
CORRUPT = "corrupt"  # bytes that are not a frame, or a frame whose length or CRC does not check out
MALFORMED = "malformed"  # a frame that checks out but whose content breaks the format's rules
UNSUPPORTED = "unsupported"  # a frame of a newer format version than this reader knows
CODES = (TORN, CORRUPT, MALFORMED, UNSUPPORTED)


@dataclass(frozen=True)
class Damage:
    """A stretch of a log that could not be read (``length`` 0: a frame read only in part)."""

    offset: int
    length: int
    code: str  # one of CODES
    detail: str = ""  # what exactly, in words
    path: str | None = None  # set when several logs are read together

    def __str__(self):
        where = f" of {self.path}" if self.path else ""
        detail = f" ({self.detail})" if self.detail else ""
        return f"{self.code}: {self.length} bytes at offset {self.offset}{where}{detail}"

    def to_dict(self) -> dict:
        return {
            "offset": self.offset,
            "length": self.length,
            "code": self.code,
            "detail": self.detail,
            "path": self.path,
        }


def unreadable(offset: int, exc: Exception) -> Damage:
    """A frame that checked out but could not be read through (a format-1 frame whose definitions were lost)."""
    return Damage(offset, 0, MALFORMED, f"the frame cannot be read ({exc})")
