"""The colours every view draws with, and ``colour_of(function)``: one place, Python and JS.

A function's colour comes from a stable hash of its name (FNV-1a over its UTF-8
bytes), so a function has the same colour in every picture and page of every
log, whatever else ran (as dask's ``color_of``). The browser side
(``common.js``) gets these constants from here, substituted for its
``/*@@COLOURS@@*/`` placeholder, and computes the same hash.
"""

from __future__ import annotations

import json

FUNCTION_PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#17becf", "#8c564b", "#e377c2", "#bcbd22", "#aec7e8")
STATUS_COLOURS = {"error": "#d62728", "aborted": "#7f7f7f", "running": "#ffbf00"}  # override any other colour
OK = "#2ca02c"  # an ok task, where bars are coloured by status
QUEUED = "#c6dbef"  # submitted -> started
REPLY_LATENCY = "#fdd0a2"  # completed -> received
BUSY = "#1f77b4"  # the busy-engines curve
MEAN = "#d62728"  # its mean
MARK = "#3d444d"  # the user's marks
RESOURCES = "#6e7781"  # each engine's memory and CPU curves (engine_stats)
DEPENDENCY = "#8250df"  # a task waiting on another (the report's links, for the task in focus)
JS_PLACEHOLDER = "/*@@COLOURS@@*/ null"


def palette_index(function: str | None) -> int:
    """The index in FUNCTION_PALETTE of ``function``'s colour (None and "" share one)."""
    h = 0x811C9DC5
    for byte in (function or "").encode("utf-8", "surrogatepass"):
        h = ((h ^ byte) * 0x01000193) & 0xFFFFFFFF
    return h % len(FUNCTION_PALETTE)


def colour_of(function: str | None) -> str:
    return FUNCTION_PALETTE[palette_index(function)]


def distinct_colours(keys) -> dict:
    """``{key: colour}`` for the keys one picture shows: each its ``colour_of``, unless a key
    before it (in sorted order) took that colour, then the next free one in the palette; with
    more keys than colours, the rest share."""
    taken, found = set(), {}
    for key in sorted(keys, key=lambda k: (k is None, k or "")):
        index = palette_index(key)
        for step in range(len(FUNCTION_PALETTE)):
            if (index + step) % len(FUNCTION_PALETTE) not in taken:
                index = (index + step) % len(FUNCTION_PALETTE)
                break
        taken.add(index)
        found[key] = FUNCTION_PALETTE[index]
    return found


def with_colours(js: str) -> str:
    """``common.js`` with the colours above in place of its placeholder."""
    if js.count(JS_PLACEHOLDER) != 1:
        raise ValueError(f"common.js must hold {JS_PLACEHOLDER!r} once")
    constants = {
        "palette": list(FUNCTION_PALETTE),
        "queued": QUEUED,
        "mark": MARK,
        "dependency": DEPENDENCY,
        **STATUS_COLOURS,
    }
    return js.replace(JS_PLACEHOLDER, json.dumps(constants))
