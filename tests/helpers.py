"""What the tests share: sample logs, the recorder's test tasks, polling, and a browser page.

Test modules import from here (and get fixtures from conftest.py), never from each other.
"""

import fcntl
import math
import os
import pty
import random
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import ipyrecorder
from ipyrecorder.log import LogWriter, new_header


def wait_until(predicate, timeout=30.0, interval=0.02, message="condition"):
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


T0 = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone.utc)


def write_sample(path, tasks=3, close=True):
    """A small log with ok and failed tasks, output, engines and a mark."""
    log = ipyrecorder.open_log(path, "w")
    for engine_id in (0, 1):
        log.append(
            {"kind": "engine_register", "t": T0, "engine_id": engine_id, "uuid": f"uuid-{engine_id}", "present": True}
        )
    for i in range(tasks):
        msg_id = f"sess_1_{i}"
        t = T0 + timedelta(seconds=i)
        log.append(
            {
                "kind": "submit",
                "msg_id": msg_id,
                "t": t,
                "queue": "task",
                "function": "work",
                "request_bytes": i * 1_200_000,
            }
        )
        log.append({"kind": "start", "msg_id": msg_id, "t": t + timedelta(milliseconds=10), "engine_id": i % 2})
        log.append({"kind": "stdout", "msg_id": msg_id, "t": t, "text": f"hello {i}\n"})
        failed = i == tasks - 1
        log.append(
            {
                "kind": "complete",
                "msg_id": msg_id,
                "status": "error" if failed else "ok",
                "started": t + timedelta(milliseconds=10),
                "completed": t + timedelta(milliseconds=510),
                "received": t + timedelta(milliseconds=520),
                "engine_id": i % 2,
                "ename": "ValueError" if failed else None,
                "evalue": "boom" if failed else None,
                "reply_bytes": None if failed else 100 + i,
            }
        )
        log.append({"kind": "label", "msg_id": msg_id, "name": f"task-{i}"})
    log.append({"kind": "mark", "t": T0, "text": "start", "data": {"n": tasks}})
    if close:
        log.close()
    else:
        log.flush()
    return log


def newer_frame(version=99) -> bytes:
    """A header frame as a later format version might write it (this reader must not read it)."""
    import msgpack

    from ipyrecorder import framing

    payload = {"v": version, "s": bytes(16), "n": 0, "b": 0, "h": {"format": "ipyrecorder"}}
    return framing.frame(msgpack.packb(payload))


def echo(x):
    print(f"out {x}")
    return x


def fail(x):
    raise ValueError(f"bad input {x}")


def named_sleep(seconds, name):
    import time

    time.sleep(seconds)
    print(f"{name} woke up")
    return name


def as_utc(value):
    """ipyparallel metadata times (str or datetime, any zone) as UTC datetimes."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value.astimezone(timezone.utc)


def assert_matches_metadata(state, ar):
    """Every task of ``ar`` is in ``state`` exactly as the AsyncResult's metadata has it."""
    ar.wait_for_output(timeout=30)
    for md in ar.metadata if isinstance(ar.metadata, list) else [ar.metadata]:
        task = state.tasks[md["msg_id"]]
        for key in ("submitted", "started", "completed", "received"):
            assert getattr(task, key) == as_utc(md[key]), (key, task, md[key])
        assert task.engine_id == md["engine_id"]
        assert task.status == md["status"]
        assert task.stdout == md["stdout"]
        assert task.stderr == md["stderr"]


def record(view, path, body, **kwargs):
    """Run ``body(rec)`` inside a recording and wait until its log is closed."""
    with ipyrecorder.recording(view, path, mode="w", **kwargs) as rec:
        result = body(rec)
    assert rec.close(timeout=60)
    return rec, result


def rich_log(path, n=600, engines=6, seed=7):
    """A realistic small run: three functions, queueing, output, failures, marks, an engine leaving."""
    rng = random.Random(seed)
    header = {
        "kind": "header",
        "format": "ipyrecorder",
        "version": 1,
        "t0": T0,
        "host": "node17.example",
        "pid": 4987,
        "python": "3.11.7",
        "recorder": ipyrecorder.__version__,
        "ipyparallel": "9.0.0",
    }
    free = [0.0] * engines
    with ipyrecorder.open_log(path, "w", header=header) as log:
        for e in range(engines):
            log.append({"kind": "engine_register", "t": T0, "engine_id": e, "uuid": f"uuid-{e}", "present": True})
        for i in range(n):
            function = "reduce_partial" if i % 10 == 0 else "load_chunk" if i % 5 == 0 else "simulate"
            submitted = (i // 150) * 1.5
            e = min(range(engines), key=free.__getitem__)
            started = max(free[e], submitted) + rng.uniform(0.001, 0.004)
            ended = started + rng.lognormvariate(-2.6, 0.5) * (3 if function == "reduce_partial" else 1)
            free[e] = ended
            msg_id = f"5287fcdc-61bcbc355f01_4987_{i}"
            at = lambda s: T0 + timedelta(seconds=s)  # noqa: E731
            log.append({"kind": "submit", "msg_id": msg_id, "t": at(submitted), "queue": "task", "function": function})
            log.append({"kind": "start", "msg_id": msg_id, "t": at(started), "engine_id": e})
            if i % 9 == 0:
                log.append({"kind": "stdout", "msg_id": msg_id, "t": at(started), "text": f"chunk {i}: 1024 rows\n"})
            failed = i % 61 == 17
            log.append(
                {
                    "kind": "complete",
                    "msg_id": msg_id,
                    "status": "error" if failed else "ok",
                    "started": at(started),
                    "completed": at(ended),
                    "received": at(ended + 0.002),
                    "engine_id": e,
                    "ename": "ValueError" if failed else None,
                    "evalue": f"bad chunk {i % 2}" if failed else None,
                }
            )
            if i % 4 == 0:
                log.append({"kind": "label", "msg_id": msg_id, "name": f"{function}[{i}]"})
        log.append({"kind": "mark", "t": T0, "text": "load"})
        log.append({"kind": "mark", "t": T0 + timedelta(seconds=3), "text": "reduce", "data": {"phase": 2}})
        log.append({"kind": "engine_unregister", "t": T0 + timedelta(seconds=max(free) + 0.05), "engine_id": 5})


def at(seconds):
    """T0 plus ``seconds``."""
    return T0 + timedelta(seconds=seconds)


def varied_log(path, n=3000, seed=3, flush_every=700, engines=5, register=True, cluster="", output=False, **extra):
    """Tasks with every field a submit, start and complete may have, frames cut mid-lifecycle
    (``output``: and stdout, stderr and labels among them, some before the task's submit)."""
    rng = random.Random(seed)
    with LogWriter(path, "w", new_header(t0=T0)) as writer:
        if register:
            for e in range(engines):
                writer.append(
                    {"kind": "engine_register", "t": T0, "engine_id": e, "uuid": f"u{cluster}{e}", "present": True}
                )
        pending = []
        written = 0

        def put(event):
            nonlocal written
            writer.append(event)
            written += 1
            if written % flush_every == 0:
                writer.flush()

        for i in range(n):
            msg_id = f"sess{cluster}-{i % 3}_77_{i}" if i % 50 else f"odd{cluster}-{i}"
            t = i * 0.01
            target = [None, 2, [0, 1], None][i % 4]
            put(
                {
                    "kind": "submit",
                    "msg_id": msg_id,
                    "t": at(t),
                    "queue": ["task", "mux", "broadcast", None][i % 4],
                    "function": rng.choice(["f", "g", None, "h"]),
                    "target": target,
                    "label": f"label-{i}" if i % 7 == 0 else None,
                    "chunk": i if i % 3 else None,
                    "broadcast": "bcast_1_0" if i % 11 == 0 else None,
                }
            )
            pending.append((msg_id, t, i))
            if output and i % 7 == 3:  # named before its submit reaches the log
                put({"kind": "label", "msg_id": f"sess{cluster}-{(i + 1) % 3}_77_{i + 1}", "name": f"early-{i + 1}"})
            while len(pending) > rng.randint(1, 30):
                msg_id, t0, j = pending.pop(rng.randrange(len(pending)))
                engine = None if j % 97 == 0 else j % engines
                put({"kind": "start", "msg_id": msg_id, "t": at(t0 + 0.001), "engine_id": engine})
                if output and j % 3:
                    for k in range(j % 4):
                        stream = "stdout" if (j + k) % 3 else "stderr"
                        put({"kind": stream, "msg_id": msg_id, "t": at(t0 + 0.002), "text": f"{stream} {j}.{k}\n"})
                    if j % 5 == 1:
                        put({"kind": "label", "msg_id": msg_id, "name": f"name-{j}"})
                    if j % 10 == 1:
                        put({"kind": "label", "msg_id": msg_id, "name": f"renamed-{j}"})
                if j % 13 == 5:
                    continue  # left running
                failed = j % 17 == 3
                put(
                    {
                        "kind": "complete",
                        "msg_id": msg_id,
                        "status": ("error" if j % 2 else "aborted") if failed else "ok",
                        "started": None if j % 19 == 0 else at(t0 + 0.002),
                        "completed": at(t0 + 0.003 + (j % 5) * 0.001),
                        "received": None if j % 23 == 0 else at(t0 + 0.004 + (j % 5) * 0.001),
                        "engine_id": engine if j % 29 else (j + 1) % engines,
                        "ename": "ValueError" if failed else None,
                        "evalue": f"bad {j}" if failed else None,
                        "traceback": "Traceback...\nValueError" if failed and j % 3 else None,
                    }
                )
        for event in extra.get("tail", ()):
            put(event)


def replies_before_starts(path, n=400):
    """``n`` tasks whose replies overtake their iopub busy messages: each completes, then starts."""
    with LogWriter(path, "w", new_header(t0=T0)) as writer:
        for i in range(n):
            writer.append({"kind": "submit", "msg_id": f"s_1_{i}", "t": at(i), "queue": "task"})
        for i in range(n):
            writer.append({"kind": "complete", "msg_id": f"s_1_{i}", "status": "ok", "completed": at(i + 2)})
            writer.append({"kind": "start", "msg_id": f"s_1_{i}", "t": at(i + 1), "engine_id": i % 2})


def summaries_and_fold(path):
    """(what ``info`` reads from the log's summaries, or None; what the fold says), each as
    ``(headers, summary, mark texts)``."""
    from ipyrecorder.summary import read_summary

    state = ipyrecorder.replay(path)
    return read_summary(path), (state.headers, state.summary(), [m.text for m in state.marks])


ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def missing_browser():
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright is not installed (pip install playwright)"
    if not shutil.which("chromium"):
        return "chromium is not installed (apt-get install chromium)"
    return None


class Page:
    """A fresh page that records console errors, page errors and every request."""

    def __init__(self, browser):
        self.context = browser.new_context(viewport={"width": 1400, "height": 900})
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors, self.requests = [], []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(f"console: {m.text}"))
        self.page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        self.page.on("request", lambda r: self.requests.append(r.url))

    def open(self, path, timeout=30):
        self.url = Path(path).resolve().as_uri()
        self.page.goto(self.url)
        self.page.wait_for_function(
            "() => window.ipyrecorderReport && (window.ipyrecorderReport.ready || window.ipyrecorderReport.error)",
            timeout=timeout * 1000,
        )
        assert self.js("window.ipyrecorderReport.error") is None
        return self

    def js(self, expression, arg=None):
        return self.page.evaluate(expression, arg)

    def assert_clean(self):
        assert self.errors == []
        assert self.requests == [self.url], "the report fetched something"

    def canvas_box(self):
        self.page.locator("#timeline").scroll_into_view_if_needed()
        return self.page.locator("#timeline").bounding_box()

    def pixel(self, x, y):
        """RGB of the timeline canvas at CSS pixel (x, y) relative to the canvas."""
        return tuple(
            self.js(
                """([x, y]) => { const c = document.getElementById("timeline"), d = window.devicePixelRatio || 1;
                const px = c.getContext("2d").getImageData(Math.floor(x * d), Math.floor(y * d), 1, 1).data;
                return Array.from(px).slice(0, 3); }""",
                [x, y],
            )
        )

    def hover(self, x, y):
        box = self.canvas_box()
        self.page.mouse.move(box["x"] + x, box["y"] + y)

    def search(self, text):
        self.page.fill("#search", text)
        self.page.wait_for_function("q => (window.ipyrecorderReport.lastSearch || {}).query === q", arg=text)
        return self.page.locator("#task-list tbody tr").all_inner_texts()


def samplers(rc, engine_id) -> int:
    """How many ``engine_stats`` samplers run on an engine."""

    def running():
        from IPython import get_ipython

        return len(get_ipython().kernel.__dict__.get("_ipyrecorder_samplers", {}))

    return rc[engine_id].apply_sync(running)


HOSTILE = "<script>alert(1)</script>\x1b]0;title\x07"


def hostile_log(path, text=HOSTILE, function="f<i>", extra=()):
    """One task done with a hostile (``text``) name and error, one running, one pending, a mark;
    then the ``extra`` events."""
    with LogWriter(path, "w", new_header(t0=T0)) as log:
        for i in range(3):
            log.append({"kind": "submit", "msg_id": f"h_1_{i}", "t": at(0.01 * i), "function": function})
        log.append({"kind": "label", "msg_id": "h_1_0", "name": text})
        log.append({"kind": "mark", "t": at(0.0), "text": text})
        log.append({"kind": "start", "msg_id": "h_1_0", "t": at(0.05), "engine_id": 0})
        log.append(
            {
                "kind": "complete",
                "msg_id": "h_1_0",
                "t": at(0.3),
                "status": "error",
                "started": at(0.05),
                "completed": at(0.29),
                "received": at(0.3),
                "engine_id": 0,
                "ename": "ValueError",
                "evalue": text,
                "traceback": "Traceback\n" + text,
            }
        )
        log.append({"kind": "start", "msg_id": "h_1_1", "t": at(0.31), "engine_id": 1})
        for event in extra:
            log.append(event)


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def spawn_in_pty(args, columns=110, program=None):
    """Run the CLI (or ``program``, a command line) in a real pseudo-terminal of ``columns`` columns with
    ``args``; returns (process, master fd)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {**os.environ, "COLUMNS": str(columns), "LINES": "40", "TERM": "xterm-256color"}
    proc = subprocess.Popen(
        [*(program or [sys.executable, "-m", "ipyrecorder"]), *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        close_fds=True,
        start_new_session=True,
    )
    os.close(slave)
    return proc, master


def read_until(master, pattern, timeout=60):
    """Read the pty until the (ANSI-stripped) output matches ``pattern``."""
    seen = ""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.2)
        if ready:
            try:
                seen += ANSI.sub("", os.read(master, 65536).decode(errors="replace"))
            except OSError:
                break
            if re.search(pattern, seen):
                return seen
    raise AssertionError(f"pattern {pattern!r} not seen; last output:\n{seen[-2000:]}")


def run_in_pty(args, columns=110, timeout=60, program=None):
    """Run the CLI (or ``program``) in a real pseudo-terminal to its end; returns (exit status, every byte
    it wrote)."""
    proc, master = spawn_in_pty(args, columns, program)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # (EIO: the process ended and closed the terminal)
                    break
                if not chunk:
                    break
                seen += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=max(deadline - time.monotonic(), 1)), seen
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)


def sweep_log(path, n=200, engines=4, seed=5, close=True):
    """A sweep as a new user records it: named tasks of varying length on a few engines, one in 23
    failing fast, output, two marks at the start and two close together at the end."""
    rng = random.Random(seed)
    with LogWriter(path, "w", new_header(t0=T0)) as log:
        for e in range(engines):
            log.append({"kind": "engine_register", "t": at(0), "engine_id": e, "uuid": f"u{e}", "present": True})
        log.append({"kind": "mark", "t": at(0), "text": "setup"})
        log.append({"kind": "mark", "t": at(0.001), "text": "simulate"})
        free = [0.05] * engines
        for i in range(n):
            fn = "load" if i < 8 else "simulate"
            mid = f"s_1_{i}"
            sub = 0.01 + i * 0.002
            e = min(range(engines), key=free.__getitem__)
            start = max(free[e], sub) + 0.002
            failed = i % 23 == 7
            dur = 0.08 if failed else rng.lognormvariate(math.log(0.25), 0.8)
            end = start + dur
            free[e] = end + 0.001
            log.append({"kind": "submit", "msg_id": mid, "t": at(sub), "function": fn})
            log.append({"kind": "label", "msg_id": mid, "name": f"run {i}"})
            log.append({"kind": "start", "msg_id": mid, "t": at(start), "engine_id": e})
            log.append({"kind": "stdout", "msg_id": mid, "t": at(start), "text": f"run {i} starts\n"})
            log.append(
                {
                    "kind": "complete",
                    "msg_id": mid,
                    "status": "error" if failed else "ok",
                    "started": at(start),
                    "completed": at(end),
                    "received": at(end + 0.003),
                    "engine_id": e,
                    "ename": "ValueError" if failed else None,
                    "evalue": f"simulation {i} diverged" if failed else None,
                    "traceback": f"Traceback (most recent call last):\nValueError: simulation {i} diverged"
                    if failed
                    else None,
                }
            )
        last = max(free)
        log.append({"kind": "submit", "msg_id": "s_1_999", "t": at(last), "function": "summarise"})
        log.append({"kind": "start", "msg_id": "s_1_999", "t": at(last + 0.01), "engine_id": 0})
        log.append(
            {
                "kind": "complete",
                "msg_id": "s_1_999",
                "status": "ok",
                "started": at(last + 0.01),
                "completed": at(last + 0.5),
                "received": at(last + 0.5),
                "engine_id": 0,
            }
        )
        log.append({"kind": "mark", "t": at(last), "text": "summarise"})
        log.append({"kind": "mark", "t": at(last + 0.52), "text": "done"})
        if close:
            log.close({"ended": "block exited"})
    return path
