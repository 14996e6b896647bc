"""Text from a log, shown inertly, and plain-text renderings of a folded state (``info``, the demo)."""

from __future__ import annotations

import re

from rich.filesize import decimal

from .state import engine_label

# C0 but tab and newline, DEL, C1, and the bidirectional controls that reorder what follows
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with every control character shown as ``\\xNN`` (``\\uNNNN``): never interpreted, never lost."""
    return _CONTROLS.sub(
        lambda m: f"\\x{ord(m.group()):02x}" if m.group() < "\u0100" else f"\\u{ord(m.group()):04x}", text
    )


def clock_text(clock: dict | None) -> str:
    """An engine's clock offset as ``info`` shows it: ``+3.002 s ± 4.1 ms`` (ahead of the client's), or
    ``same (-0.8 to +2.1 ms)`` when no offset at all fits its bounds (views leave it as logged), or
    the bounds' crossing when no one offset fits (views move it by each window's: ``clocks.drift``)."""
    if clock is None or clock["offset_seconds"] is None:
        return "-"
    low, high = clock["low_seconds"], clock["high_seconds"]
    spread = clock["uncertainty_seconds"] * 1e3
    if low <= 0 <= high:
        text = f"same ({low * 1e3:+.1f} to {high * 1e3:+.1f} ms)"
    elif clock["consistent"]:
        text = f"{clock['offset_seconds']:+.3f} s ± {spread:.1f} ms"
    else:
        crossing = f"no offset fits: bounds cross by {-2 * spread:.1f} ms; moved window by window"
        text = f"{clock['offset_seconds']:+.3f} s ({crossing})"
    if clock["impossible"]:
        text += f", {clock['impossible']} task(s) impossible under any offset"
    return text


def summary_text(logs, headers, summary, marks) -> str:
    """What `ipyrecorder info` prints: the run in a few lines (``headers``: the segments'
    headers; ``marks``: the marks' texts), with every control character made visible."""
    lines = [f"{', '.join(map(str, logs))}: {summary['tasks']} tasks in {summary['span_seconds']:.3f} s"]
    if headers:
        first = headers[0]
        lines.append(
            f"  recorded on {first.get('host')} (pid {first.get('pid')}) from {first['t0']:%Y-%m-%d %H:%M:%S} UTC, "
            f"{summary['segments']} segment(s), {'closed' if summary['closed'] else 'not closed'}"
        )
    made = {  # a log made after the fact (snapshot, import-hub), or by the observer, says so
        f"  {'reconstructed' if h.get('reconstructed') else 'observed'}: {h.get('note') or 'no live events'}": None
        for h in headers
        if h.get("reconstructed") or h.get("observer")
    }
    lines.extend(made)
    status = ", ".join(f"{n} {s}" for s, n in summary["by_status"].items()) or "none"
    lines.append(f"  tasks: {status}")
    moved = summary["bytes"]
    if moved["requests"] or moved["replies"]:
        lines.append(
            f"  bytes: {decimal(moved['requests'])} sent in requests, {decimal(moved['replies'])} back in replies"
        )
    if summary["engines"]:
        labels = {  # ``3``, ``3 @ node17`` once the host is known
            engine_id: visible(engine_label(engine_id, e["host"])[len("engine ") :])
            for engine_id, e in summary["engines"].items()
        }
        width = max(6, *map(len, labels.values()))
        peaks = any(e["peak_rss"] is not None for e in summary["engines"].values())
        lines.append(
            f"  {'engine':>{width}}  tasks  errors  busy s   utilisation  "
            + ("peak memory  " if peaks else "")
            + "clock vs the client's"
        )
        for engine_id, e in summary["engines"].items():
            util = "-" if e["utilisation"] is None else f"{e['utilisation']:.1%}"
            peak = ("-" if e["peak_rss"] is None else decimal(e["peak_rss"])) if peaks else None
            lines.append(
                f"  {labels[engine_id]:>{width}}  {e['tasks']:>5}  {e['errors']:>6}  {e['busy_seconds']:>7.3f}  "
                f"{util:>11}  "
                + ("" if peak is None else f"{peak:>11}  ")
                + clock_text(summary["clocks"].get(engine_id))
            )
    parallel = summary["parallelism"]
    if parallel["efficiency"] is not None:
        busy, idle = parallel["busy_engine_seconds"], parallel["idle_engine_seconds"]
        lines.append(
            f"  parallel efficiency: {parallel['efficiency']:.1%} ({busy:.3f} engine-s busy, {idle:.3f} idle, "
            f"over {parallel['engines']} engine(s))"
        )
    path = summary["critical_path"]
    names = {t["msg_id"]: t["name"] for t in summary["failed"] + summary["slowest"]}  # (the tasks it names)
    if len(path["tasks"]) == 1:  # no task waited on another: the slowest, named as it is there
        task = path["tasks"][0]
        lines.append(f"  critical path: the longest task, {path['run_seconds']:.3f} s: {names.get(task, task)}")
    elif path["tasks"]:
        tasks = path["tasks"] if len(path["tasks"]) <= 5 else [*path["tasks"][:2], "...", *path["tasks"][-2:]]
        lines.append(
            f"  critical path: {len(path['tasks'])} task(s), {path['run_seconds']:.3f} s running, "
            f"{path['elapsed_seconds']:.3f} s from its first start to its last end: {' -> '.join(map(visible, tasks))}"
        )
    if summary["slowest"]:
        slowest = (f"{t['name']} {t['run_seconds']:.3f} s" for t in summary["slowest"])
        lines.append(f"  slowest: {', '.join(slowest)}")
    failed = summary["by_status"].get("error", 0) + summary["by_status"].get("aborted", 0)
    if summary["failed"]:
        named = ", ".join(f"{t['name']} ({t['error'] or 'no message'})" for t in summary["failed"])
        more = f", and {failed - len(summary['failed'])} more" if failed > len(summary["failed"]) else ""
        lines.append(f"  failed: {named}{more}")
    if marks:
        lines.append("  marks: " + ", ".join(marks))
    for ended in dict.fromkeys(summary["ended"]):
        lines.append(f"  ended: {ended}")
    if summary["failed_attempts"]:
        lines.append(
            f"  failed attempts: {summary['failed_attempts']} "
            f"(`ipyrecorder failures {' '.join(map(str, logs))}` shows their tracebacks)"
        )
    for damage in summary["damage"]:
        lines.append(f"  damage: {damage}")
    return visible("\n".join(lines))  # (marks, hosts, damage: a log's text, shown inertly)
