"""Shared pieces: statistics, realistic synthetic events, machine description."""

from __future__ import annotations

import gc
import hashlib
import os
import platform
import random
import statistics
import subprocess
import sys
import time
from collections import deque
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
EPOCH_NAIVE = datetime(1970, 1, 1)

# Shaped like the ids ipyparallel 9 hands out: "<session>_<pid>_<counter>".
SESSION = "5287fcdc-61bcbc355f01423e1adc1e3d"
PID = 4987
ENGINE_UUIDS = ("07d45d2f-ae1a62e01086c4eb39da1048", "d6bee1a4-1de97aa67beeecc07b6c6798")


def log(msg: str) -> None:
    """Progress goes to stderr so that stdout holds only the table."""
    print(msg, file=sys.stderr, flush=True)


# -- statistics -------------------------------------------------------------------
def quantile(values, q: float) -> float:
    """Linear-interpolation quantile (numpy's default), for q in [0, 1]."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def bootstrap_median_ci(values, level: float = 0.95, rounds: int = 4000, seed: int = 1):
    """Percentile-bootstrap confidence interval of the median (deterministic seed)."""
    values = list(values)
    if len(values) < 2:
        return (values[0], values[0]) if values else (float("nan"), float("nan"))
    rng = random.Random(seed)
    n = len(values)
    meds = sorted(statistics.median(rng.choices(values, k=n)) for _ in range(rounds))
    tail = (1 - level) / 2
    return quantile(meds, tail), quantile(meds, 1 - tail)


def spread(values) -> dict:
    """Median, quartiles and extremes of a sample."""
    values = list(values)
    return {
        "median": statistics.median(values),
        "q1": quantile(values, 0.25),
        "q3": quantile(values, 0.75),
        "min": min(values),
        "max": max(values),
        "n": len(values),
    }


def timed(fn, *args):
    """(seconds, result) of one call, with the collector run beforehand, not during."""
    gc.collect()
    t0 = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t0, result


# -- realistic events ---------------------------------------------------------------
def msg_id(i: int) -> str:
    return f"{SESSION}_{PID}_{i + 1}"


def engine_uuid(engine_id: int) -> str:
    """The uuid of engine ``engine_id``: the two real-looking ones, then made-up ones alike."""
    if engine_id < len(ENGINE_UUIDS):
        return ENGINE_UUIDS[engine_id]
    return f"{engine_id:08x}-{engine_id * 2654435761 % 16**24:024x}"


def task_events(n: int, t0_us: int, rate: float = 400.0, in_flight: int = 16, engines: int = 2):
    """Submit/start/complete event dicts for ``n`` tasks, as the recorder builds them.

    The value types are those a real recording hands to ``LogWriter.append``
    with ipyparallel 9.2 (checked by instrumenting one): the submit time is a
    UTC datetime, the start time and ``completed`` are ISO strings from message
    headers, ``started`` is a datetime in the local zone (dateutil's tzlocal)
    and ``received`` a UTC datetime. Tasks are submitted at ``rate`` per second
    and ``in_flight`` of them are queued or running at any time, so starts and
    completions interleave with later submissions as they do on a cluster.
    Task ``i`` runs on engine ``i % engines``.
    """
    from dateutil.tz import tzlocal

    local = tzlocal()
    step = 1e6 / rate
    td = timedelta
    pending: deque = deque()

    def finish(i, sub_us):
        engine = i % engines
        start_us = sub_us + 2_500
        started_us = start_us + 300
        completed_us = started_us + 900
        received_us = completed_us + 2_700
        mid = msg_id(i)
        yield {
            "kind": "start",
            "msg_id": mid,
            "t": (EPOCH_NAIVE + td(microseconds=start_us)).isoformat() + "Z",
            "engine_id": engine,
        }
        yield {
            "kind": "complete",
            "msg_id": mid,
            "status": "ok",
            "started": (EPOCH + td(microseconds=started_us)).astimezone(local),
            "completed": (EPOCH_NAIVE + td(microseconds=completed_us)).isoformat() + "Z",
            "received": EPOCH + td(microseconds=received_us),
            "engine_id": engine,
            "ename": None,
            "evalue": None,
        }

    for i in range(n):
        sub_us = t0_us + 1_000 + int(i * step)
        yield {
            "kind": "submit",
            "msg_id": msg_id(i),
            "t": EPOCH + td(microseconds=sub_us),
            "queue": "task",
            "function": "<lambda>",
            "target": None,
            "label": None,
            "chunk": i,
        }
        pending.append((i, sub_us))
        if len(pending) > in_flight:
            yield from finish(*pending.popleft())
    while pending:
        yield from finish(*pending.popleft())


def scheduled_task_events(n: int, t0_us: int, engines: int = 8, rate: float = 340.0, seed: int = 1):
    """Like ``task_events``, but with the irregular times of a real run, for drawing.

    Tasks arrive at random (Poisson, ``rate`` per second) and go to the engine that
    is free first; run times are log-normal (median 15 ms, mean 20 ms: 8 engines are
    busy 85 % of the time at 340 tasks/s), dispatch and reply latencies 1 to 4 ms.
    One task in 200 fails with a ValueError; three function names. Events come in
    the order of their times, so queued, running and finished tasks interleave.
    """
    import heapq

    from dateutil.tz import tzlocal

    local = tzlocal()
    rng = random.Random(seed)
    td = timedelta
    functions = ("simulate", "reduce_chunk", "<lambda>")
    free = [(t0_us, e) for e in range(engines)]  # (free from, engine id)
    later: list = []  # (time, order, event)
    order = 0
    sub_us = t0_us + 1_000
    for i in range(n):
        sub_us += int(rng.expovariate(rate) * 1e6)
        while later and later[0][0] <= sub_us:
            yield heapq.heappop(later)[2]
        mid = msg_id(i)
        yield {
            "kind": "submit",
            "msg_id": mid,
            "t": EPOCH + td(microseconds=sub_us),
            "queue": "task",
            "function": functions[rng.random() < 0.1 and 1 or rng.random() < 0.05 and 2 or 0],
            "target": None,
            "label": None,
            "chunk": None,
        }
        free_us, engine = heapq.heappop(free)
        start_us = max(sub_us + rng.randint(1_000, 4_000), free_us)
        started_us = start_us + rng.randint(100, 400)
        completed_us = started_us + int(rng.lognormvariate(9.6, 0.8))  # median ~15 ms
        received_us = completed_us + rng.randint(1_000, 4_000)
        heapq.heappush(free, (completed_us + 200, engine))
        failed = rng.random() < 0.005
        heapq.heappush(
            later,
            (
                start_us,
                order,
                {
                    "kind": "start",
                    "msg_id": mid,
                    "t": (EPOCH_NAIVE + td(microseconds=start_us)).isoformat() + "Z",
                    "engine_id": engine,
                },
            ),
        )
        heapq.heappush(
            later,
            (
                received_us,
                order + 1,
                {
                    "kind": "complete",
                    "msg_id": mid,
                    "status": "error" if failed else "ok",
                    "started": (EPOCH + td(microseconds=started_us)).astimezone(local),
                    "completed": (EPOCH_NAIVE + td(microseconds=completed_us)).isoformat() + "Z",
                    "received": EPOCH + td(microseconds=received_us),
                    "engine_id": engine,
                    "ename": "ValueError" if failed else None,
                    "evalue": f"input {i} out of range" if failed else None,
                },
            ),
        )
        order += 2
    while later:
        yield heapq.heappop(later)[2]


def engine_registrations(t0, engines: int = 2):
    """The engine_register events that open a log of ``engines`` engines (t0: a datetime)."""
    for engine_id in range(engines):
        yield {
            "kind": "engine_register",
            "t": t0,
            "engine_id": engine_id,
            "uuid": engine_uuid(engine_id),
            "present": True,
        }


def rss_bytes(pid="self") -> int:
    """Resident set size of a process (Linux: /proc/PID/status VmRSS), in bytes; -1 if unknown."""
    try:
        with open(f"/proc/{pid}/status") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return -1


def loadavg() -> list:
    return [round(x, 2) for x in os.getloadavg()]


def now_us() -> int:
    return (datetime.now(timezone.utc) - EPOCH) // timedelta(microseconds=1)


# -- where and what we measured -------------------------------------------------------
def _git(*args) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


SOURCE_DIRS = ("ipyrecorder", "plugins", "viewers")
SOURCE_SUFFIXES = (".py", ".html", ".css", ".js")


def code_fingerprint() -> dict:
    """Which ipyrecorder was measured: commit, local edits, and a hash of its sources.

    The sources are the package and its sub-packages (``plugins/`` and ``viewers/``, installed as
    ``ipyrecorder.plugins`` and ``ipyrecorder.viewers``), with the HTML report's assets.
    """
    digest = hashlib.sha256()
    for sub in SOURCE_DIRS:
        for path in sorted(p for p in (ROOT / sub).rglob("*") if p.is_file() and p.suffix in SOURCE_SUFFIXES):
            digest.update(str(path.relative_to(ROOT)).encode() + b"\0" + path.read_bytes())
    status = _git("status", "--porcelain", "--", *SOURCE_DIRS)
    return {
        "commit": _git("rev-parse", "--short", "HEAD"),
        "ipyrecorder_modified": bool(status) if status is not None else None,
        "ipyrecorder_sha256": digest.hexdigest()[:16],
    }


def machine() -> dict:
    import msgpack

    try:
        from importlib.metadata import version

        ipp_version = version("ipyparallel")
    except Exception:  # pragma: no cover
        ipp_version = None
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "ipyparallel": ipp_version,
        "msgpack": ".".join(map(str, msgpack.version)),
        "loadavg_start": [round(x, 2) for x in os.getloadavg()],
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **code_fingerprint(),
    }


def write_task_log(path, tasks: int, t0_us: int) -> None:
    """A log of ``tasks`` synthetic tasks (submit, start, complete) on the usual engines."""
    from ipyrecorder.log import LogWriter, new_header

    t0 = EPOCH + timedelta(microseconds=t0_us)
    with LogWriter(path, "w", new_header(t0=t0)) as writer:
        for engine_id, uuid in enumerate(ENGINE_UUIDS):
            writer.append({"kind": "engine_register", "t": t0, "engine_id": engine_id, "uuid": uuid, "present": True})
        for event in task_events(tasks, t0_us):
            writer.append(event)
