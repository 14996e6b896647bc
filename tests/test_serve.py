"""`ipyrecorder serve` / the `web` viewer: a live dashboard, driven for real.

The pages run in Debian's headless chromium through Playwright (the browser
fixture of test_sink_html: it skips without chromium, and fails under CI)
against logs that a real recording on the session's cluster is appending to.
Servers run in-process on a thread (port 0) unless the test is about the
command line. All traffic stays on loopback (127.0.0.1 and 127.0.0.2).
"""

import builtins
import contextlib
import functools
import http.client
import io
import json
import os
import re
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from datetime import timedelta

import ipyparallel as ipp
import pytest

import ipyrecorder
from ipyrecorder.cli import ExitStatus, main
from ipyrecorder.tail import LogTail
from ipyrecorder.viewers import web
from ipyrecorder.viewers.web import WebServer

from .helpers import ARTIFACTS, T0, Page, rich_log, sweep_log, wait_until, write_sample

XSS_NAME = '<img src=x onerror="window.__xss=1">'
XSS_OUT = "<script>window.__xss=1</script>"
XSS_ERROR = "</script><script>window.__xss=1</script>"
READY = "() => window.ipyrecorderLive && (window.ipyrecorderLive.ready || window.ipyrecorderLive.error)"


# -- helpers -----------------------------------------------------------------------------------------
@contextlib.contextmanager
def serving(path, **options):
    """A WebServer for ``path`` on a thread (port 0 unless given); yields it, with ``.base`` its origin
    and ``.url(path)`` a URL with its token."""
    options.setdefault("port", 0)
    server = WebServer(LogTail(path), **options)
    server.listen()
    thread = threading.Thread(target=server.run, name="test-serve", daemon=True)
    thread.start()
    scheme = "https" if server.ssl else "http"
    host = server.host if server.host not in ("", "0.0.0.0") else "127.0.0.1"
    server.base = f"{scheme}://{host}:{server.port}"

    def url(path="/"):
        path, hash, fragment = path.partition("#")
        return f"{server.base}{path}{'?token=' + server.token if server.token else ''}{hash}{fragment}"

    server.url = url
    wait_until(lambda: server.loop is not None, timeout=10, message="the server's loop")
    try:
        yield server
    finally:
        server.stop()
        thread.join(timeout=15)
        assert not thread.is_alive(), "the server did not stop"


class LivePage(Page):
    """test_sink_html's Page (console errors, page errors, requests) on a served dashboard."""

    def open(self, url, timeout=30):
        self.url = url
        self.origin = re.match(r"https?://[^/]+", url).group(0)
        self.page.goto(url)
        self.page.wait_for_function(READY, timeout=timeout * 1000)
        assert self.js("window.ipyrecorderLive.error") is None
        return self

    def assert_clean(self):
        assert self.errors == []
        foreign = [u for u in self.requests if not u.startswith(self.origin + "/")]
        assert foreign == [], "the dashboard fetched something elsewhere"

    def wait(self, expression, arg=None, timeout=30):
        return self.page.wait_for_function(expression, arg=arg, timeout=timeout * 1000)

    def shot(self, name):
        ARTIFACTS.mkdir(exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / name), full_page=True)


@pytest.fixture
def pages(browser):  # noqa: F811
    opened = []

    def new():
        page = LivePage(browser)
        opened.append(page)
        return page

    yield new
    for page in opened:
        page.context.close()


def get(url, headers=None, method="GET", context=None):
    """(status, headers, body) of one request, whatever the status."""
    request = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def raw_get(server, path, headers=None, method="GET"):
    """A request with the path sent exactly as given (no normalisation by a client library)."""
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True)
        if server.token:
            conn.putheader("Authorization", f"token {server.token}")
        for key, value in (headers or {}).items():
            conn.putheader(key, value)
        conn.endheaders()
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


class Stream:
    """An SSE connection read line by line: events as (id, event, data)."""

    def __init__(self, server, after=None, last_event_id=None, host="127.0.0.1", token=None):
        """``token``: the server's unless given ("" for none)."""
        self.conn = http.client.HTTPConnection(host, server.port, timeout=20)
        token = server.token if token is None else token
        query = {}
        if after is not None:
            query["after"] = after
        if token:
            query["token"] = token
        path = "/api/stream" + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")
        headers = {"Last-Event-ID": last_event_id} if last_event_id else {}
        self.conn.request("GET", path, headers=headers)
        self.resp = self.conn.getresponse()

    def next(self):
        fields = {}
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode("utf-8").rstrip("\n")
            if not line:
                if "event" in fields or "data" in fields:
                    return fields.get("id"), fields.get("event", "message"), fields.get("data")
                fields = {}
                continue
            if line.startswith(":"):
                continue
            key, _, value = line.partition(":")
            fields[key] = value[1:] if value.startswith(" ") else value

    def close(self):
        self.conn.close()


def named_work(seconds, name):
    import time

    time.sleep(seconds)
    print(f"{name} says hello")
    return name


def xss_task(payload, output):
    print(output)
    raise RuntimeError(payload)


# -- in the browser, following a live recording ------------------------------------------------------
@pytest.mark.cluster
def test_dashboard_follows_a_live_recording_in_two_pages(rc, engines, log_path, pages):
    lview = rc.load_balanced_view()
    with serving(log_path) as server:
        first = pages().open(server.url())
        # The log does not exist yet: the page says it waits for it.
        first.wait("() => document.getElementById('notices').textContent.includes('waiting for')")
        assert "waiting" in first.page.locator("#conn").inner_text()
        n = 8
        with ipyrecorder.recording(lview, log_path, mode="w") as rec:
            ar = lview.map_async(named_work, [0.5] * n, [f"job-{i}" for i in range(n)])
            rec.name_tasks(ar, [f"job-{i}" for i in range(n)])
            # The engine table and the timeline change without a reload: a busy engine with a named task.
            first.wait("""() => Array.from(document.querySelectorAll('#engines-table tbody tr[data-engine]'))
                .some(tr => /busy/.test(tr.cells[1].textContent) && /job-\\d/.test(tr.cells[2].textContent))""")
            first.wait("() => window.ipyrecorderLive.lastDraw.running > 0")
            first.shot("serve-cluster-live.png")
            second = pages().open(server.url())  # a late browser: the snapshot so far, then updates
            ar.get(timeout=60)
            rec.mark("all done")
        rec.close(timeout=60)
        state = ipyrecorder.replay(log_path)
        ids = sorted(state.tasks)
        assert len(ids) == n
        for page in (first, second):
            page.wait("n => window.ipyrecorderLive.counts().ok === n", arg=n)
            page.wait("() => document.getElementById('marks-table').textContent.includes('all done')")
            assert sorted(page.js("window.ipyrecorderLive.msgIds()")) == ids
            page.wait(
                "n => window.ipyrecorderLive.lastDraw.bars === n && window.ipyrecorderLive.lastDraw.running === 0",
                arg=n,
            )
            done = page.page.locator("#engines-table tfoot").inner_text()
            assert re.search(rf"\b{n}\b", done)
            for engine_id in engines:
                row = page.page.locator(f"#engines-table tbody tr[data-engine='{engine_id}']").inner_text()
                assert "idle" in row
            assert page.js("window.ipyrecorderLive.snapshots") == 1, "the page reloaded its state"
        assert first.js("window.ipyrecorderLive.batches") > 2
        task = state.tasks[ids[3]]
        assert first.js(f"window.ipyrecorderLive.task({json.dumps(ids[3])})")["name"] == task.name == "job-3"
        # The search finds tasks by name, status and engine.
        first.page.fill("#search", "job-5")
        first.wait("() => (window.ipyrecorderLive.lastSearch || {}).query === 'job-5'")
        rows = first.page.locator("#task-list tbody tr").all_inner_texts()
        assert len(rows) == 1 and "job-5" in rows[0]
        engine_id = state.tasks[[t for t in ids if state.tasks[t].name == "job-5"][0]].engine_id
        first.page.fill("#search", f"status:ok engine:{engine_id}")
        first.wait("q => (window.ipyrecorderLive.lastSearch || {}).query === q", arg=f"status:ok engine:{engine_id}")
        on_engine = sum(1 for t in state.tasks.values() if t.engine_id == engine_id)
        assert first.page.locator("#task-list tbody tr").count() == on_engine
        first.page.fill("#search", "")
        first.wait("() => (window.ipyrecorderLive.lastSearch || {}).query === ''")
        first.shot("serve-cluster.png")
        for page in (first, second):
            page.assert_clean()


@pytest.mark.cluster
def test_engine_page_shows_a_tasks_output(rc, engines, log_path, pages):
    lview = rc.load_balanced_view()
    with ipyrecorder.recording(lview, log_path, mode="w") as rec:
        ar = lview.map_async(named_work, [0.05] * 4, [f"out-{i}" for i in range(4)])
        rec.name_tasks(ar, [f"out-{i}" for i in range(4)])
        ar.get(timeout=60)
    rec.close(timeout=60)
    state = ipyrecorder.replay(log_path)
    task = next(t for t in state.tasks.values() if t.name == "out-2")
    with serving(log_path) as server:
        page = pages().open(server.url(f"/engine/{task.engine_id}"))
        assert page.page.locator("#engine-h").inner_text() == f"Engine {task.engine_id}"
        on_engine = [t for t in state.tasks.values() if t.engine_id == task.engine_id]
        page.wait("n => document.querySelectorAll('#task-list tbody tr[data-index]').length === n", arg=len(on_engine))
        page.page.locator("#task-list tbody tr", has_text="out-2").click()
        page.wait(
            "() => (document.querySelector('#details pre[data-stream=stdout]') || {}).textContent"
            " === 'out-2 says hello\\n'"
        )
        details = page.page.locator("#details").inner_text()
        assert task.msg_id in details and "named_work" in details and "ok" in details
        assert f"engine {task.engine_id}" not in page.page.locator("#details dd a").all_inner_texts()  # its own page
        assert "#task=" in page.page.url
        page.shot("serve-engine.png")
        # A link straight to a task opens its details.
        other = pages().open(server.url(f"/engine/{task.engine_id}#task={task.msg_id}"))
        other.wait(
            "() => (document.querySelector('#details pre[data-stream=stdout]') || {}).textContent"
            " === 'out-2 says hello\\n'"
        )
        # The read-only JSON endpoint has the full record.
        status, _, body = get(server.url(f"/api/task/{task.msg_id}"))
        record = json.loads(body)
        assert status == 200 and record["stdout"] == "out-2 says hello\n" and record["name"] == "out-2"
        assert get(server.url("/api/task/no-such-task"))[0] == 404
        page.assert_clean()
        other.assert_clean()


@pytest.mark.cluster
def test_log_text_is_shown_not_run(rc, engines, log_path, pages):
    lview = rc.load_balanced_view()
    with serving(log_path) as server:
        live = pages().open(server.url())  # gets the corpus through stream batches
        with ipyrecorder.recording(lview, log_path, mode="w") as rec:
            ar = lview.apply_async(xss_task, XSS_ERROR, XSS_OUT)
            rec.name_tasks(ar, XSS_NAME)
            with pytest.raises(ipp.error.RemoteError):
                ar.get(timeout=60)
            rec.mark(XSS_ERROR, html=XSS_NAME)
        rec.close(timeout=60)
        live.wait("() => window.ipyrecorderLive.counts().error === 1")
        late = pages().open(server.url())  # gets it through the snapshot
        msg_id = next(iter(ipyrecorder.replay(log_path).tasks))
        for page in (live, late):
            page.wait("t => document.getElementById('marks-table').textContent.includes(t)", arg=XSS_ERROR)
            page.wait("t => document.getElementById('task-list').textContent.includes(t)", arg=XSS_NAME)
            assert page.js("typeof window.__xss") == "undefined"
            assert page.js("document.querySelectorAll('img, iframe, object, embed').length") == 0
            assert page.js("document.scripts.length") == 2
            assert XSS_ERROR in page.page.locator("#recent-errors").inner_text()
            assert XSS_NAME in page.page.locator("#recent-errors").inner_text()
            assert XSS_NAME in page.page.locator("#task-list").inner_text()
            marks = page.page.locator("#marks-table").inner_text()
            assert XSS_ERROR in marks and json.dumps({"html": XSS_NAME}) in marks  # the mark's data, as JSON text
            page.page.locator("#task-list tbody tr", has_text="window.__xss").first.click()
            page.wait(
                "t => (document.querySelector('#details pre[data-stream=stdout]') || {}).textContent === t + '\\n'",
                arg=XSS_OUT,
            )
            details = page.page.locator("#details").inner_text()
            assert XSS_NAME in details and XSS_ERROR in details and msg_id in details
            # the full record (fetched once shown) adds the remote traceback, as text
            page.wait("() => !!document.querySelector('#details pre[data-stream=traceback]')")
            traceback = page.js("document.querySelector('#details pre[data-stream=traceback]').textContent")
            assert "in xss_task" in traceback and XSS_ERROR in traceback
            page.page.locator(".erritem").first.click()
            assert page.js("typeof window.__xss") == "undefined"
        live.shot("serve-xss.png")
        live.assert_clean()
        late.assert_clean()


# -- latency ----------------------------------------------------------------------------------------
def test_an_append_reaches_the_page_within_250_ms(tmp_path, pages):
    path = tmp_path / "live.mpk"
    header = {"kind": "header", "format": "ipyrecorder", "version": 1, "t0": T0}
    with ipyrecorder.LogWriter(path, "w", header) as log, serving(path) as server:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": "u0", "present": True})
        log.flush()
        page = pages().open(server.url())
        page.wait("() => window.ipyrecorderLive.engines().length === 1")
        delays = []
        for i in range(6):
            log.append({"kind": "submit", "msg_id": f"lat_{i}", "t": T0 + timedelta(seconds=i), "function": "f"})
            log.flush()
            appended = time.time()
            page.wait("id => window.ipyrecorderLive.task(id) !== null", arg=f"lat_{i}", timeout=5)
            seen = page.js("window.ipyrecorderLive.lastBatch.at") / 1000  # when the page applied the batch
            delays.append(seen - appended)
            time.sleep(0.15)
        print(f"\nappend -> page: {', '.join(f'{1000 * d:.0f}' for d in delays)} ms")
        assert statistics.median(delays) < 0.25 and max(delays) < 1.0
        page.assert_clean()


# -- the stream protocol ----------------------------------------------------------------------------
def test_a_replaced_log_is_a_new_epoch_and_the_page_reloads_it(tmp_path, pages):
    path = tmp_path / "e.mpk"
    header = {"kind": "header", "format": "ipyrecorder", "version": 1, "t0": T0}

    def write(prefix, n):  # a new file moved over the old one (a new inode): the tail reads it from the start
        with ipyrecorder.LogWriter(tmp_path / "next.mpk", "w", header) as log:
            for i in range(n):
                log.append(
                    {"kind": "submit", "msg_id": f"{prefix}_{i}", "t": T0 + timedelta(seconds=i), "function": "h"}
                )
        os.replace(tmp_path / "next.mpk", path)

    write("old", 3)
    with serving(path) as server:
        page = pages().open(server.url())
        page.wait("() => window.ipyrecorderLive.tasks() === 3")
        epoch = page.js("window.ipyrecorderLive.epoch")
        write("new", 5)
        page.wait("() => window.ipyrecorderLive.tasks() === 5 && window.ipyrecorderLive.task('new_4') !== null")
        assert page.js("window.ipyrecorderLive.task('old_0')") is None
        assert page.js("window.ipyrecorderLive.epoch") != epoch and page.js("window.ipyrecorderLive.resets") >= 1
        page.wait("() => document.getElementById('notices').textContent.includes('reading it from the start')")
        page.assert_clean()


def test_stream_resumes_from_its_cursor(tmp_path):
    path = tmp_path / "s.mpk"
    header = {"kind": "header", "format": "ipyrecorder", "version": 1, "t0": T0}

    def task(log, i):
        log.append({"kind": "submit", "msg_id": f"r_{i}", "t": T0 + timedelta(seconds=i), "function": "g"})
        log.flush()

    with ipyrecorder.LogWriter(path, "w", header) as log, serving(path, ring_batches=5) as server:
        wait_until(lambda: server.feed.loop_epoch is not None, timeout=10, message="the first fold")
        task(log, 0)
        wait_until(lambda: server.feed.loop_seq >= 1, timeout=10, message="a first batch")
        status, headers, _ = get(server.url("/api/snapshot"))
        cursor = headers["X-Ipyrecorder-Cursor"]
        epoch, seq = cursor.split(":")
        stream = Stream(server, after=cursor)
        assert stream.resp.status == 200 and stream.resp.getheader("Content-Type").startswith("text/event-stream")
        seen = []
        for i in range(1, 4):
            task(log, i)
            event_id, event, data = stream.next()
            assert event == "batch" and event_id == f"{epoch}:{int(seq) + i}"
            batch = json.loads(data)
            assert batch["seq"] == int(seq) + i and [t[0] + str(t[1]) for t in batch["tasks"]] == [f"r_{i}"]
            seen.append(event_id)
        stream.close()
        task(log, 4)  # while disconnected
        wait_until(lambda: server.feed.loop_seq >= int(seq) + 4, timeout=10, message="the batch of r_4")
        # An EventSource reconnects with Last-Event-ID: it gets exactly what came after.
        stream = Stream(server, after=cursor, last_event_id=seen[0])
        ids, tasks = [], []
        for _ in range(3):
            event_id, event, data = stream.next()
            ids.append(event_id)
            tasks += [t[0] + str(t[1]) for t in json.loads(data)["tasks"]]
        assert ids == [f"{epoch}:{int(seq) + k}" for k in (2, 3, 4)] and tasks == ["r_2", "r_3", "r_4"]
        stream.close()
        # A cursor older than the ring (5 batches), of another epoch, or none: a reset (then a new snapshot).
        for i in range(5, 12):  # one batch each: the ring keeps the last 5
            task(log, i)
            wait_until(lambda i=i: server.feed.loop_seq >= int(seq) + i, timeout=10, message=f"the batch of r_{i}")
        for cursor_text in (seen[0], f"0123456789ab:{seq}", None, "garbage"):
            stream = Stream(server, last_event_id=cursor_text)
            event_id, event, data = stream.next()
            assert event == "reset" and json.loads(data)["cursor"].startswith(epoch + ":"), cursor_text
            assert stream.next() is None  # the server ends that response
            stream.close()
        status, headers, body = get(server.url("/api/snapshot"), {"Accept-Encoding": "identity"})
        size = int.from_bytes(body[:4], "little")
        meta = json.loads(body[4 : 4 + size])
        assert meta["tasks"] == 12 and meta["live"]["cursor"] == headers["X-Ipyrecorder-Cursor"]


# -- safety -----------------------------------------------------------------------------------------
def test_token_is_required_off_loopback(tmp_path, pages):

    rich_log(tmp_path / "t.mpk", n=60)
    with serving(tmp_path / "t.mpk", host="127.0.0.2") as server:
        token = server.token
        assert re.fullmatch(r"[0-9a-f]{48}", token)
        base = server.base
        assert base.startswith("http://127.0.0.2:")
        wrong = token[:-1] + ("1" if token[-1] == "0" else "0")  # one character off (not the token itself)
        paths = ["/", "/engine/0", "/api/snapshot", "/api/summary", "/api/task/x", "/static/dashboard.js", "/nope"]
        for path in paths + ["/api/stream"]:
            assert get(base + path)[0] == 403, path
            assert get(base + path + "?token=" + wrong)[0] == 403, path
            assert get(base + path, {"Authorization": "token wrong"})[0] == 403, path
        for path in paths[:4] + ["/static/dashboard.js"]:
            assert get(f"{base}{path}?token={token}")[0] == 200, path
            assert get(base + path, {"Authorization": f"token {token}"})[0] == 200, path
        stream = Stream(server, host="127.0.0.2", token=token, after="x:0")
        assert stream.resp.status == 200 and stream.next()[1] == "reset"
        stream.close()
        stream = Stream(server, host="127.0.0.2", after="x:0", token="")
        assert stream.resp.status == 403
        stream.close()
        page = pages().open(f"{base}/?token={token}")
        page.wait("() => document.querySelectorAll('#engines-table tbody tr').length === 6")
        page.page.locator("#engines-table tbody tr[data-engine='2']").click()  # links keep the token
        # while the engine page loads, its script may not have run yet: wait, do not throw
        page.wait("() => document.body.dataset.page === 'engine' && (window.ipyrecorderLive || {}).ready")
        assert page.page.locator("#engine-h").inner_text() == "Engine 2"
        page.assert_clean()


def _announced(args):
    """Start ``ipyrecorder serve ARGS``; returns (process, the two lines it printed first)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipyrecorder", "serve", *args, "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, [proc.stdout.readline() for _ in range(2)]


@pytest.mark.parametrize("host", ["127.0.0.2", "127.0.0.1"])
def test_serve_prints_a_token_url_like_jupyter(tmp_path, host):
    write_sample(tmp_path / "a.mpk")
    proc, lines = _announced([str(tmp_path / "a.mpk"), "--host", host])
    try:
        url = lines[1].strip()
        assert "access token" in lines[0]
        assert re.fullmatch(rf"http://{re.escape(host)}:\d+/\?token=[0-9a-f]{{48}}", url), lines
        status, _, body = get(url)
        assert status == 200 and b"ipyrecorder" in body
        assert get(url.split("?")[0])[0] == 403
        proc.send_signal(signal.SIGINT)  # Ctrl-C ends it, with status 0
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)


def test_no_token_is_for_loopback_only_and_says_the_risk(tmp_path):
    write_sample(tmp_path / "a.mpk")
    proc, lines = _announced([str(tmp_path / "a.mpk"), "--no-token"])
    try:
        assert "without a token: every local user can read it" in lines[0], lines
        assert get(lines[1].strip())[0] == 200
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)
    log = str(tmp_path / "a.mpk")
    for args in (
        ["--host", "127.0.0.2", "--token", ""],
        ["--host", "127.0.0.2", "--no-token"],
        ["--no-token", "--token", "x"],
    ):
        given = subprocess.run(
            [sys.executable, "-m", "ipyrecorder", "serve", log, *args], capture_output=True, text=True, timeout=60
        )
        assert given.returncode == ExitStatus.USAGE and "token" in given.stderr, (args, given.stderr)
        assert len(given.stderr.splitlines()) == 1, given.stderr


def test_loopback_refuses_foreign_host_names(tmp_path):

    write_sample(tmp_path / "a.mpk")
    with serving(tmp_path / "a.mpk", token="") as server:  # (no token: explicitly, on loopback only)
        assert server.token is None
        assert get(server.base + "/")[0] == 200
        assert get(server.base + "/", {"Host": f"localhost:{server.port}"})[0] == 200
        assert get(server.base + "/", {"Host": f"attacker.example:{server.port}"})[0] == 403  # DNS rebinding
        assert get(server.base + "/api/snapshot", {"Host": "attacker.example"})[0] == 403


def test_loopback_needs_the_token_by_default(tmp_path):
    """On a shared login node every user reaches 127.0.0.1: the token is not only for other addresses."""
    write_sample(tmp_path / "a.mpk")
    with serving(tmp_path / "a.mpk") as server:
        assert re.fullmatch(r"[0-9a-f]{48}", server.token)
        for path in ("/", "/api/summary", "/api/snapshot", "/static/dashboard.js"):
            assert get(server.base + path)[0] == 403, path
            assert get(server.url(path))[0] == 200, path


def test_the_api_and_stream_answer_only_the_dashboard_s_own_pages(tmp_path):
    write_sample(tmp_path / "a.mpk")
    with serving(tmp_path / "a.mpk") as server:
        own = f"http://127.0.0.1:{server.port}"
        for path in ("/api/summary", "/api/snapshot", "/api/task/sess_1_0"):
            assert get(server.url(path), {"Origin": own})[0] == 200, path
            assert get(server.url(path), {"Sec-Fetch-Site": "same-origin"})[0] == 200, path
            for headers in (
                {"Origin": "http://evil.example"},
                {"Origin": "null"},
                {"Origin": f"http://127.0.0.1:{server.port + 1}"},  # another port is another origin
                {"Sec-Fetch-Site": "cross-site"},
                {"Sec-Fetch-Site": "same-site"},
            ):
                assert get(server.url(path), headers)[0] == 403, (path, headers)
        stream = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        stream.request("GET", f"/api/stream?token={server.token}", headers={"Origin": "http://evil.example"})
        assert stream.getresponse().status == 403
        stream.close()
        # A link from another site (a notebook, a chat) opens the page itself.
        assert get(server.url("/"), {"Sec-Fetch-Site": "cross-site"})[0] == 200


def test_another_site_s_page_cannot_read_the_dashboard_in_a_browser(tmp_path, browser):
    """A page of another origin on this machine (another user's notebook or web app: Chromium keeps
    public sites from loopback itself) fetches the API and opens the stream with the token:
    Chromium sends its Origin with both, and the server refuses such requests."""
    import http.server

    write_sample(tmp_path / "a.mpk")
    (tmp_path / "evil").mkdir()
    (tmp_path / "evil" / "index.html").write_text("<p>evil</p>")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "evil"))
    evil = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=evil.serve_forever, daemon=True).start()
    with serving(tmp_path / "a.mpk") as server:
        context = browser.new_context()
        try:
            page = context.new_page()
            page.goto(f"http://127.0.0.1:{evil.server_address[1]}/")
            with (
                page.expect_response(lambda r: "/api/summary" in r.url) as summary,
                page.expect_request(lambda r: "/api/stream" in r.url) as stream,
            ):
                page.evaluate(
                    """([summary, stream]) => {
                        fetch(summary, { mode: "no-cors" }).catch(() => {});
                        new EventSource(stream);
                    }""",
                    [server.url("/api/summary"), server.url("/api/stream")],
                )
            # (a no-cors fetch sends no Origin, but Sec-Fetch-Site says it is another origin of the site)
            assert summary.value.status == 403
            # (an EventSource that CORS refuses shows the page no response: the server says what it answered)
            wait_until(lambda: server.refused["/api/stream"] >= 1, timeout=20, message="the stream refused")
            assert stream.value.url.startswith(server.base) and server.refused["/api/summary"] == 1
        finally:
            context.close()
            evil.shutdown()
            evil.server_close()


def test_half_open_connections_cannot_lock_the_token_holder_out(tmp_path, monkeypatch):
    """Connections whose headers never finish are closed after the header timeout, and past the cap
    the oldest give way: a request with the token still gets in."""
    from ipyrecorder.viewers import web_guard

    monkeypatch.setattr(web_guard, "HEADER_TIMEOUT", 2.0)
    write_sample(tmp_path / "a.mpk")
    with serving(tmp_path / "a.mpk") as server:
        guard = server.http
        held = []
        try:
            for _ in range(web_guard.UNAUTHENTICATED_MAX * 3):
                sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
                sock.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
                held.append(sock)
            wait_until(lambda: guard.stats["closed_oldest"] >= web_guard.UNAUTHENTICATED_MAX * 2, timeout=20)
            status, _, body = get(server.url("/api/summary"))
            assert status == 200 and json.loads(body)["progress"]["done"] == 3
            assert guard.untrusted <= web_guard.UNAUTHENTICATED_MAX
            # Left alone, a half-open connection is closed by the server once the header timeout passes.
            newest = held[-1]
            newest.settimeout(15)
            assert newest.recv(1024) == b""
        finally:
            for sock in held:
                sock.close()


def test_running_out_of_file_descriptors_is_one_warning(tmp_path):
    """A server at its descriptor limit pauses accepting and says so once, not a traceback per attempt;
    once descriptors are free again, the token holder gets in."""
    import resource

    from ipyrecorder.viewers import web_guard

    write_sample(tmp_path / "a.mpk")
    proc = subprocess.Popen(
        [sys.executable, "-m", "ipyrecorder", "serve", str(tmp_path / "a.mpk"), "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    held, err = [], []
    reader = threading.Thread(target=lambda: err.extend(proc.stderr), daemon=True)
    try:
        url = [proc.stdout.readline() for _ in range(2)][1].strip()
        port = int(re.search(r":(\d+)/", url).group(1))
        assert get(url)[0] == 200
        reader.start()
        limits = resource.prlimit(proc.pid, resource.RLIMIT_NOFILE)
        resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, (len(os.listdir(f"/proc/{proc.pid}/fd")) + 4, limits[1]))
        for _ in range(40):  # more than the descriptors left: the rest wait in the listen backlog
            held.append(socket.create_connection(("127.0.0.1", port), timeout=10))
        wait_until(lambda: err, timeout=30, message="the warning")
        time.sleep(3 * web_guard.ACCEPT_PAUSE)  # (the attack goes on through a few more pauses: not synchronisation)
        for sock in held:
            sock.close()
        resource.prlimit(proc.pid, resource.RLIMIT_NOFILE, limits)
        assert wait_until(lambda: get(url)[0] == 200, timeout=30, message="the server accepting again")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
        reader.join(timeout=20)
    finally:
        for sock in held:
            sock.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=20)
    assert len(err) == 1 and "out of file descriptors" in err[0] and "ulimit -n" in err[0], "".join(err)[-3000:]


def test_the_summary_is_computed_once_per_change(tmp_path):
    path = tmp_path / "live.mpk"
    header = {"kind": "header", "format": "ipyrecorder", "version": 1, "t0": T0}
    with ipyrecorder.LogWriter(path, "w", header) as log, serving(path) as server:
        log.append({"kind": "submit", "msg_id": "c_0", "t": T0, "function": "f"})
        log.flush()
        wait_until(lambda: json.loads(get(server.url("/api/summary"))[2])["summary"]["tasks"] == 1, timeout=20)
        built = server.feed.stats["summaries_built"]
        for _ in range(20):
            assert json.loads(get(server.url("/api/summary"))[2])["summary"]["tasks"] == 1
        assert server.feed.stats["summaries_built"] == built  # nothing changed: nothing recomputed
        log.append({"kind": "submit", "msg_id": "c_1", "t": T0, "function": "f"})
        log.flush()
        wait_until(lambda: json.loads(get(server.url("/api/summary"))[2])["summary"]["tasks"] == 2, timeout=20)
        assert server.feed.stats["summaries_built"] > built


def test_paths_never_leave_the_whitelist(tmp_path, monkeypatch):

    write_sample(tmp_path / "a.mpk")
    log = str(tmp_path / "a.mpk")
    with serving(log) as server:
        opened = []
        real_open, real_os_open = builtins.open, os.open

        def spy_open(file, *args, **kwargs):
            opened.append(os.fspath(file) if not isinstance(file, int) else file)
            return real_open(file, *args, **kwargs)

        def spy_os_open(file, *args, **kwargs):
            opened.append(os.fspath(file))
            return real_os_open(file, *args, **kwargs)

        def no_load(*args):
            raise AssertionError("a request read a resource")

        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(io, "open", spy_open)
        monkeypatch.setattr(os, "open", spy_os_open)
        monkeypatch.setattr(web, "_load", no_load)
        for path in [
            "/static/../../etc/passwd",
            "/static/%2e%2e/%2e%2e/etc/passwd",
            "/static/..%2f..%2fetc%2fpasswd",
            "/static/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
            "/static//etc/passwd",
            "/static/%2fetc%2fpasswd",
            "/static/dashboard.js/../../../../etc/passwd",
            "/../../etc/passwd",
            "/%2e%2e/%2e%2e/etc/passwd",
            "/static/web.py",
            "/static/page.html",
            "/static/cluster.html",
            "/static/report.js",
            "/static/",
            "/static/.",
            "/static/dashboard.js%00.png",
            "/static/DASHBOARD.JS",
            "/engine/0/../../../etc/passwd",
            "/api/task/../../etc/passwd",
            "/etc/passwd",
        ]:
            status, body = raw_get(server, path)
            assert status == 404 and b"root:" not in body, path
        status, body = raw_get(server, "/static/dashboard.js")
        assert status == 200 and b"ipyrecorderLive" in body
        status, body = raw_get(server, "/static/common.js")
        assert status == 200 and b"ipyrecorderCommon" in body
        for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            assert raw_get(server, "/", method=method)[0] == 405, method
            assert raw_get(server, "/api/snapshot", method=method)[0] == 405, method
        status, body = raw_get(server, "/", method="HEAD")
        assert status == 200 and body == b""
        monkeypatch.undo()
        assert [p for p in opened if p != log] == []


def test_tls_with_a_self_signed_certificate(tmp_path, pages):

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    if not _self_signed(cert, key):
        pytest.skip("needs the cryptography package or the openssl command to make a certificate")
    write_sample(tmp_path / "a.mpk")
    with serving(tmp_path / "a.mpk", certfile=str(cert), keyfile=str(key)) as server:
        assert server.base.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(cert))
        status, headers, body = get(server.url("/api/summary"), context=context)
        assert status == 200 and json.loads(body)["progress"]["done"] == 3
        with pytest.raises((ssl.SSLError, urllib.error.URLError)):
            get(server.url(), context=ssl.create_default_context())  # not trusted: refused
        with pytest.raises((http.client.HTTPException, ConnectionError, OSError)):
            raw_get(server, "/")  # plain http to the TLS port
        context = pages().page.context.browser.new_context(ignore_https_errors=True)
        try:
            page = context.new_page()
            page.goto(server.url())
            page.wait_for_function(READY, timeout=30_000)
            assert page.evaluate("window.ipyrecorderLive.tasks()") == 3
        finally:
            context.close()


def _self_signed(cert, key) -> bool:
    try:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID
    except ImportError:
        openssl = shutil.which("openssl")
        if not openssl:
            return False
        subprocess.run(
            [
                openssl,
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-days",
                "2",
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
            timeout=60,
        )
        return True
    import ipaddress

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(private, hashes.SHA256())
    )
    cert.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return True


# -- the command line -------------------------------------------------------------------------------
def test_errors_are_one_line_with_their_status(tmp_path, capsys):

    write_sample(tmp_path / "a.mpk")
    log = str(tmp_path / "a.mpk")
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        cases = [
            (["serve", log, "--port", str(port)], ExitStatus.PORT_IN_USE, f"port {port} is in use"),
            (["watch", log, "--viewer", "web", "-O", f"port={port}"], ExitStatus.PORT_IN_USE, "in use"),
            (["watch", log, "--viewer", "web", "--once"], ExitStatus.USAGE, "no --once"),
            (["serve", log, "--keyfile", log], ExitStatus.USAGE, "--keyfile needs --certfile"),
            (["serve", log, "--certfile", str(tmp_path / "missing.pem")], ExitStatus.NO_FILE, "missing.pem"),
            (["serve", log, "--certfile", log], ExitStatus.USAGE, "TLS certificate"),
            (["serve", log, "--port", "70000"], ExitStatus.USAGE, "70000"),
        ]
        for args, status, text in cases:
            capsys.readouterr()
            assert main(args) == status, args
            err = capsys.readouterr().err
            assert text in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err, (args, err)
    finally:
        taken.close()
    (tmp_path / "bad.mpk").write_bytes(b"this is not a log at all")
    result = subprocess.run(
        [sys.executable, "-m", "ipyrecorder", "serve", str(tmp_path / "bad.mpk"), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == ExitStatus.NOT_A_LOG and "not an ipyrecorder log" in result.stderr


def test_the_engines_table_shows_each_engine_s_host_and_memory(tmp_path, pages):
    path = tmp_path / "live.mpk"
    header = {"kind": "header", "format": "ipyrecorder", "version": 1, "t0": T0}
    with ipyrecorder.LogWriter(path, "w", header) as log, serving(path) as server:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": "u0", "present": True})
        log.append({"kind": "engine_info", "t": T0, "engine_id": 0, "host": XSS_NAME, "pid": 7, "cpus": 2})
        for i, mb in enumerate((100, 300)):
            log.append(
                {
                    "kind": "engine_sample",
                    "t": T0 + timedelta(seconds=i),
                    "engine_id": 0,
                    "cpu": 50.0,
                    "rss": mb * 10**6,
                }
            )
        log.flush()
        page = pages().open(server.url())
        page.wait("() => (window.ipyrecorderLive.engines()[0] || {}).samples === 2")  # from the snapshot
        row = page.page.locator("#engines-table tbody tr").first
        assert XSS_NAME in row.inner_text() and "300.0 MB" in row.inner_text() and "50%" in row.inner_text()
        assert page.page.locator("#engines-table tbody tr svg.spark polyline").count() == 1
        log.append(
            {"kind": "engine_sample", "t": T0 + timedelta(seconds=2), "engine_id": 0, "cpu": 90.0, "rss": 500 * 10**6}
        )
        log.flush()  # a live sample: the row and its line follow
        page.wait("() => window.ipyrecorderLive.engines()[0].samples === 3")
        page.wait("() => document.querySelector('#engines-table tbody tr').textContent.includes('500.0 MB')")
        points = page.page.locator("svg.spark polyline").get_attribute("points").split()
        assert len(points) == 3 and page.js("window.__xss") is None  # the host is shown as text
        page.shot("dashboard-engine-memory.png")
        page.assert_clean()


def test_the_dashboard_says_when_the_recording_ended(tmp_path, pages):
    """Waiting, the time axis has no ticks to count from; once the log closes, the page says so: closed,
    the rate over the whole run, the whole run in view, every mark's text."""
    path = tmp_path / "later.mpk"
    with serving(path) as server:
        page = pages().open(server.url())
        page.wait("() => document.getElementById('conn').textContent.includes('waiting')")
        assert page.js("window.ipyrecorderLive.lastDraw.marks") == 0
        sweep_log(path, n=60)
        page.wait("() => document.getElementById('conn').textContent.includes('recording closed')")
        page.wait("() => window.ipyrecorderLive.lastDraw.marks === 4")
        cards = page.page.locator("#cards").inner_text()
        assert "over the run" in cards and "last 30 s" not in cards
        assert page.page.locator("#view-range").inner_text().startswith("closed")
        page.shot("serve-closed.png")
        page.assert_clean()
