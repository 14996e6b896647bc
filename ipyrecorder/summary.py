"""What ``ipyrecorder info`` says of a run: made in one place from a folded state or from a log's summaries.

``summarise`` shapes the summary (``State.summary()`` gives it after a fold).
``read_summary`` answers for a big log without folding it: it checks every
frame (CRC), decodes only each segment's first and last frames, and adds up
the summaries the writer kept in the close events (``tally.py``). It answers
only when that is exactly what the fold would say: every segment closed, no
damage, and no task or engine named by two segments in ways that interact;
else None, and the caller folds.
"""

from __future__ import annotations

import zlib

from . import events as ev
from . import payload as pl
from .clocks import Bounds, ClockOffset
from .critical import longer, longest_path
from .log import LogReader
from .tally import LISTED, failed_order, slowest_order


def summarise(
    *,
    tasks,
    by_status,
    span_us,
    engines,
    clocks,
    marks,
    segments,
    closed,
    closes,
    damage,
    failed_attempts,
    moved,
    critical_path,
    hosts,
    peaks,
    slowest,
    failed,
) -> dict:
    """The summary: ``span_us`` is (first, last) or (None, None); ``engines`` maps an engine's
    key to (tasks done, errors, busy µs), ``clocks`` to its ``clocks.Bounds``; ``closes`` are the
    segments' close statistics; ``moved`` is (request bytes, reply bytes), added up;
    ``critical_path`` as ``critical.path_figures`` gives it; ``hosts`` and ``peaks`` map an engine's
    key to its host and its largest resident memory, where its samples said (engine_stats);
    ``slowest`` is ``[[run µs, msg_id, name], ...]`` (the slowest first) and ``failed``
    ``[[done µs, msg_id, name, error], ...]`` (the first failed tasks), ``tally.LISTED`` of each."""
    start, end = span_us
    span = (end - start) / 1e6 if start is not None else 0.0
    known = [key for key in engines if key is not None]
    all_busy = sum(engines[key][2] for key in known) / 1e6
    capacity = len(known) * span  # engine-seconds: every engine the run saw, over the whole span
    shown = {}
    for engine_id in sorted(engines, key=lambda e: (e is None, e)):
        done, errors, busy_us = engines[engine_id]
        busy = busy_us / 1e6
        shown[engine_id] = {
            "tasks": done,
            "errors": errors,
            "busy_seconds": round(busy, 6),
            "utilisation": round(busy / span, 4) if span > 0 else None,
            "host": hosts.get(engine_id),
            "peak_rss": peaks.get(engine_id),
        }
    return {
        "tasks": tasks,
        "by_status": by_status,
        "start": None if start is None else ev.from_us(start).isoformat(),
        "end": None if end is None else ev.from_us(end).isoformat(),
        "span_seconds": round(span, 6),
        "engines": shown,
        "clocks": {
            engine_id: ClockOffset.of(clocks[engine_id]).to_dict()
            for engine_id in sorted(clocks, key=lambda e: (e is None, e))
        },
        "marks": marks,
        "segments": segments,
        "closed": closed,
        "ended": [ending(close) for close in closes if "ended" in close],
        "damage": [str(d) for d in damage],
        "failed_attempts": failed_attempts,
        "bytes": {"requests": moved[0], "replies": moved[1]},
        "parallelism": {
            "engines": len(known),
            "busy_engine_seconds": round(all_busy, 6),
            "idle_engine_seconds": round(max(capacity - all_busy, 0.0), 6),
            "efficiency": round(all_busy / capacity, 4) if capacity > 0 else None,
        },
        "critical_path": critical_path,
        "slowest": [{"msg_id": m, "name": name, "run_seconds": run / 1e6} for run, m, name in slowest],
        "failed": [{"msg_id": m, "name": name, "error": error} for _, m, name, error in failed],
    }


def ending(close: dict) -> str:
    """How a recording segment ended, in words, from its close statistics."""
    text = close["ended"]
    if close.get("pending"):
        text += f"; stopped following {close['pending']} pending task(s)"
        if close.get("gave_up"):
            text += f" ({close['gave_up']})"
    return text


def read_summary(path):
    """``(headers, summary, mark texts)`` of one log from its segments' summaries, or None
    when only folding the log can say (see the module's docstring)."""
    reader = LogReader(path)
    segments: dict = {}  # segment id -> its first and last frames' payloads, how many it has
    for _, peeked in reader.peeked():
        _note(segments, peeked)
    if reader.damage or not segments:  # (a format-1 log has no summaries)
        return None
    headers, closes, summaries = [], [], []
    for seen in segments.values():
        if 0 not in seen["ends"] or len(seen["crcs"]) != seen["last"] + 1:
            return None  # a frame missing (a lost header: the fold reports it)
        try:
            first = pl.decode(seen["ends"][0])
            last = first if seen["last"] == 0 else pl.decode(seen["ends"][seen["last"]])
        except pl.Malformed:
            return None  # (the fold reports it as damage)
        rows = list(last.rows())
        if first.header is None or len(rows) != 1 or rows[0][0] != ev.CLOSE:
            return None  # not closed cleanly (the close event is alone in the last frame)
        close = rows[0]
        summary = close[ev.CLOSE_SUMMARY] if len(close) > ev.CLOSE_SUMMARY else None
        if type(summary) is not dict or not _sums_up(summary, seen["crcs"], seen["last"]):
            return None
        stats = close[ev.CLOSE_STATS] or {}
        headers.append({**first.header, "t0": ev.from_us(first.header["t0"])})
        closes.append({"t": ev.from_us(last.base + close[ev.CLOSE_T]), **stats})
        summaries.append(summary)
    try:
        added = _add_up(summaries)
        if added is None:
            return None
        figures, marks = added
        summary = summarise(**figures, segments=len(headers), closed=True, closes=closes, damage=[])
    except (KeyError, TypeError, ValueError, IndexError):  # a summary not as docs/format.md has it
        return None
    return headers, summary, marks


def _note(segments: dict, peeked) -> None:
    """Keep a segment's first frame and its last so far, and every frame's CRC (a frame
    repeated, as ``cat a.mpk a.mpk`` repeats them, once: the fold skips it too)."""
    seen = segments.get(peeked.segment)
    if seen is None:
        seen = segments[peeked.segment] = {"ends": {}, "last": -1, "crcs": {}}
    if peeked.seq in seen["crcs"]:
        return
    seen["crcs"][peeked.seq] = peeked.crc
    if peeked.seq == 0:
        seen["ends"][0] = peeked.payload
    if peeked.seq > seen["last"]:
        if seen["last"] > 0:  # (only the first and the latest are kept)
            del seen["ends"][seen["last"]]
        seen["last"] = peeked.seq
        seen["ends"][peeked.seq] = peeked.payload


def _sums_up(summary: dict, crcs: dict, last: int) -> bool:
    """The summary is of exactly the frames before ``last`` that the log holds (as written:
    a frame rewritten since, with a CRC that checks out, has another CRC)."""
    digest = 0
    for seq in range(last):
        digest = zlib.crc32(crcs[seq].to_bytes(4, "big"), digest)
    return summary.get("frames") == last and summary.get("digest") == digest


def _add_up(summaries: list):
    """The fold's figures from the segments' summaries, or None if segments share tasks or
    an engine id names another cluster's engine (the fold tells those apart; sums do not)."""
    if not _disjoint(summaries):
        return None
    if not _one_cluster(summaries):
        return None
    tasks, failed, by_status, engines, clocks, marks, moved, longest = 0, 0, {}, {}, {}, [], [0, 0], None
    hosts, peaks = {}, {}
    firsts, lasts, slowest, first_failed = [], [], [], []
    for s in summaries:
        if "slowest" not in s:  # (a summary written before info named tasks: the fold names them)
            return None
        slowest += s["slowest"]
        first_failed += s["failed"]
        tasks += s["tasks"]
        failed += s["failed_attempts"]
        for i, size in enumerate(
            s.get("bytes", (0, 0))
        ):  # (a summary written before sizes were recorded has none: neither have its events)
            moved[i] += size
        for engine_id, host in s.get("hosts", ()):  # (absent from summaries before engine_stats: none)
            hosts[engine_id] = host
        for engine_id, rss in s.get("peak_rss", ()):
            peaks[engine_id] = max(rss, peaks.get(engine_id, rss))
        longest = longer(longest, s.get("longest"))
        for status, n in s["by_status"].items():
            by_status[status] = by_status.get(status, 0) + n
        for engine_id, done, errors, busy_us in s["engines"]:
            totals = engines.setdefault(engine_id, [0, 0, 0])
            totals[0] += done
            totals[1] += errors
            totals[2] += busy_us
        for engine_id, *fields in s["clocks"]:
            clocks.setdefault(engine_id, Bounds()).merge(Bounds(*fields))
        if s["submitted"] is not None:
            firsts.append(s["submitted"][0])
            lasts.append(s["submitted"][1])
        if s["done"] is not None:
            lasts.append(s["done"])
        marks += s["marks"]
    # as State.span_us: from the first submission or mark to the last of anything
    earliest = ([min(firsts)] if firsts else []) + [t for t, _ in marks]
    span = (None, None) if not earliest else (min(earliest), max(earliest + lasts))
    figures = {
        "tasks": tasks,
        "by_status": dict(sorted(by_status.items())),
        "span_us": span,
        "engines": {engine_id: tuple(totals) for engine_id, totals in engines.items()},
        "clocks": clocks,
        "marks": len(marks),
        "failed_attempts": failed,
        "moved": tuple(moved),
        "critical_path": longest_path(longest),
        "hosts": {e: h for e, h in hosts.items() if h is not None},
        "peaks": peaks,
        "slowest": sorted(slowest, key=slowest_order)[:LISTED],
        "failed": sorted(first_failed, key=failed_order)[:LISTED],
    }
    return figures, [text for _, text in marks]


def _disjoint(summaries: list) -> bool:
    """No msg_id is named by two segments."""
    if len(summaries) == 1:
        return True
    runs: dict = {}
    alone: set = set()
    for s in summaries:
        for prefix, bounds in s["msg_ids"]:
            runs.setdefault(prefix, []).extend(zip(bounds[::2], bounds[1::2]))
        for msg_id in s["alone"]:
            if msg_id in alone:
                return False
            alone.add(msg_id)
    for pairs in runs.values():
        pairs.sort()
        if any(lo <= hi for (_, hi), (lo, _) in zip(pairs, pairs[1:])):
            return False
    return True


def _one_cluster(summaries: list) -> bool:
    """Every segment's engines keep their own ids: the fold would put no segment's engines
    under a second cluster's keys (``State._register_engine``)."""
    key_of_uuid: dict = {}
    uuid_of_key: dict = {}
    for s in summaries:
        for position, (engine_id, uuid) in enumerate(s["registered"]):
            known = key_of_uuid.get(uuid) if uuid is not None else None
            if known is not None and known != engine_id:
                return False
            other = uuid_of_key.get(engine_id)
            if position == 0 and known is None and other is not None and other != uuid:
                return False
            if uuid is not None:
                key_of_uuid[uuid] = engine_id
            uuid_of_key[engine_id] = uuid
    return True
