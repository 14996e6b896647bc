"""A pytest plugin: run ipyparallel's own tests with a recording on every Client.

Loaded with ``-p tests.ipp_under_recording`` by ``test_ipyparallel_suite.py``.
Every Client gets a recording into a log of its own when it is made; the
recording is closed just before the client closes. Then the log must hold a
completion for every task that client had finished, the close must not have
waited out its timeout, and the summary the writer kept must be the fold's.
Problems are listed at the end, and fail the run.
"""

import json
import os
import tempfile
import time

import ipyparallel as ipp

import ipyrecorder
from ipyrecorder.summary import read_summary

CLOSE_TIMEOUT = 10.0
LOG_DIR = os.environ.get("IPYRECORDER_SUITE_LOGS") or tempfile.mkdtemp(prefix="ipp-suite-logs-")
problems: list[str] = []
stats = {"clients": 0, "tasks": 0, "checked": 0, "summed": 0}

_init, _close = ipp.Client.__init__, ipp.Client.close


def _recorded_init(client, *args, **kwargs):
    _init(client, *args, **kwargs)
    path = os.path.join(LOG_DIR, f"client-{stats['clients']}.mpk")
    stats["clients"] += 1
    client._suite_recording = ipyrecorder.recording(client, path, mode="w")


def _finished_ids(client) -> list:
    """What the client itself says it finished: sent, and no longer outstanding."""
    return [m for m in client.history if m not in client.outstanding]


def _check(client, rec, finished, waited) -> None:
    state = ipyrecorder.replay(rec.path)
    stats["tasks"] += len(state.tasks)
    for msg_id in finished:
        tasks = (
            [state.tasks[msg_id]]
            if msg_id in state.tasks
            else [t for t in state.tasks.values() if t.broadcast == msg_id]
        )  # a coalescing broadcast: one per engine
        stats["checked"] += 1
        if not tasks or any(t.outcome is None for t in tasks):
            problems.append(f"{rec.path}: {msg_id} finished in the client but has no completion in the log")
    if rec.gave_up == "close() timeout":
        problems.append(f"{rec.path}: close() waited out its {CLOSE_TIMEOUT} s timeout ({waited:.1f} s)")
    if state.damage:
        problems.append(f"{rec.path}: damage {state.damage}")
    quick = read_summary(rec.path)  # what ``info`` says from the writer's summary: the fold's
    if quick is not None:
        stats["summed"] += 1
        if quick != (state.headers, state.summary(), [m.text for m in state.marks]):
            problems.append(f"{rec.path}: its summary {quick[1]} is not the fold's {state.summary()}")


def _recorded_close(client, *args, **kwargs):
    rec = client.__dict__.pop("_suite_recording", None)
    if rec is not None and not client._closed:
        finished = _finished_ids(client)
        started = time.monotonic()
        rec.close(timeout=CLOSE_TIMEOUT)
        _check(client, rec, finished, time.monotonic() - started)
    return _close(client, *args, **kwargs)


def pytest_configure(config):
    ipp.Client.__init__ = _recorded_init
    ipp.Client.close = _recorded_close


def pytest_unconfigure(config):
    ipp.Client.__init__, ipp.Client.close = _init, _close


def pytest_sessionfinish(session, exitstatus):
    summary = {"problems": problems, **stats}
    with open(os.path.join(LOG_DIR, "summary.json"), "w") as fh:
        json.dump(summary, fh, indent=2)
    if problems:
        session.exitstatus = 1


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(
        f"ipyrecorder: {stats['clients']} clients recorded, {stats['tasks']} tasks, "
        f"{stats['checked']} finished tasks checked, {len(problems)} problem(s)"
    )
    for problem in problems:
        terminalreporter.write_line(f"  {problem}")
