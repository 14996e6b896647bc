"""``web`` viewer and ``ipyrecorder serve``: a live dashboard of a log in the browser.

One ``LogTail`` and one ``Follower`` (file events, or polling) fold the log on
their own thread; a batcher thread turns what changed into numbered batches at
most every 100 ms; tornado's IO loop only hands those batches out, so folding
never blocks it. Every browser has its own cursor:

* ``GET /api/snapshot``: the state folded so far, compact (the html sink's
  columnar encoding, ``build_report_data``, plus the live part), gzip; the
  header ``X-Ipyrecorder-Cursor`` says which batch it includes (``EPOCH:SEQ``).
* ``GET /api/stream?after=EPOCH:SEQ``: Server-Sent Events, one ``batch`` event
  (``id: EPOCH:SEQ``) per batch after the cursor: the changed tasks and engines
  (rows of ``browser.TASK_FIELDS`` and ``ENGINE_FIELDS``, named in the snapshot),
  new marks and notices, totals. A reconnecting EventSource sends
  ``Last-Event-ID`` and resumes where it was. Batches are kept in a bounded
  ring; a cursor older than the ring, or of another epoch (the log was
  truncated or replaced, or the server restarted) gets a ``reset`` event: the
  page fetches a new snapshot and follows from its cursor.
* ``GET /api/task/MSG_ID``: one task in full (stdout and stderr included).
* ``GET /api/summary``: ``State.summary()`` and the progress figures; the summary is
  computed at most once a second and only when the log changed, one at a time, so its
  cost does not grow with requests or with the log.

Read-only: only GET and HEAD, and nothing changes the cluster or the log. The
pages and their assets come from a fixed in-package whitelist loaded at start;
request paths never reach the file system. Every request needs the token
(generated, or ``--token``; on loopback it can be turned off, and then ``Host``
must be a local name); a request with an ``Origin`` must come from the
dashboard's own, and the API and stream are same-origin only. Slow and
half-open clients are bounded by ``web_guard``. TLS with
``--certfile``/``--keyfile``. Every text from the log reaches the page through
``textContent`` or canvas ``fillText``.
"""

from __future__ import annotations

import asyncio
import errno
import gzip
import hmac
import html
import itertools
import json
import os
import secrets
import signal
import socket
import ssl
import struct
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from urllib.parse import quote, urlsplit

import tornado.locks
import tornado.netutil
import tornado.web
from tornado.ioloop import IOLoop
from tornado.iostream import StreamClosedError

from ipyrecorder import __version__
from ipyrecorder import events as ev
from ipyrecorder.browser import (
    ENGINE_FIELDS,
    TASK_FIELDS,
    build_report_data,
    common_css,
    common_js,
    data_text,
    engine_fields,
    engine_series,
    fill,
    task_fields,
    text_or_none,
)
from ipyrecorder.clocks import on_client
from ipyrecorder.errors import NoFile, PortInUse
from ipyrecorder.plugin import Option, PluginError
from ipyrecorder.tail import Follower, LogTail
from ipyrecorder.viewer import Viewer
from ipyrecorder.viewers.terminal import progress
from ipyrecorder.viewers.web_guard import GuardedHTTPServer

BATCH_INTERVAL = 0.1  # seconds: at most ten batches a second
RING_BATCHES = 1200  # batches kept for resuming streams (two minutes at ten a second) ...
RING_BYTES = 32 << 20  # ... and at most this many bytes of them
BIG_BATCH = 20_000  # more changed tasks than this at once: a new snapshot is cheaper than a batch
SNAPSHOT_REUSE = 50  # a cached snapshot serves new browsers while it is at most this many batches old
OUTPUT_CHARS = 200  # characters of stdout/stderr per task in snapshots and batches
TASK_TEXT_MAX = 4 << 20  # characters of stdout/stderr per task in /api/task
KEEPALIVE = 15.0  # seconds between SSE comments on a quiet stream
SUMMARY_EVERY = 1.0  # seconds: /api/summary's summary is computed at most this often
LOOPBACK = ("127.0.0.1", "::1", "localhost")
LOCAL_HOST_NAMES = frozenset({"127.0.0.1", "localhost", "[::1]", "::1"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

# The only files the server sends: name -> (package, resource, content type). Loaded once, at start.
ASSETS = {
    "dashboard.js": ("ipyrecorder.viewers", "web_static/dashboard.js", "application/javascript; charset=utf-8"),
    "dashboard.css": ("ipyrecorder.viewers", "web_static/dashboard.css", "text/css; charset=utf-8"),
    "favicon.svg": ("ipyrecorder.viewers", "web_static/favicon.svg", "image/svg+xml"),
}
# Every page is the shell (web_static/page.html) around its own main content.
PAGE_SHELL = "web_static/page.html"
PAGES = {
    "cluster": (
        "web_static/cluster.html",
        "",
        '      <a class="navlink current" id="nav-cluster" href="/@@QUERY@@">Cluster</a>\n',
    ),
    "engine": (
        "web_static/engine.html",
        "Engine &middot; ",
        '      <a class="navlink" id="nav-cluster" href="/@@QUERY@@">Cluster</a>\n'
        '      <span class="navlink current" id="nav-engine">Engine</span>\n',
    ),
}


def _now_us() -> int:
    return time.time_ns() // 1000


@dataclass(frozen=True)
class CatchUp:
    """What a late browser catches up from (``/api/snapshot``): the state's gzip-encoded body,
    the batch it includes (epoch, seq), and what it cost."""

    epoch: str
    seq: int
    body: bytes
    tasks: int
    seconds: float

    @property
    def cursor(self) -> str:
        return f"{self.epoch}:{self.seq}"


class Shared:
    """A value built on an executor thread, one build at a time: whoever asks while it is being
    built awaits that build (a snapshot, a summary); ``value`` is the last one built."""

    def __init__(self, build):
        self._build = build
        self.value = None
        self._future = None

    @property
    def building(self) -> bool:
        return self._future is not None

    def build(self):
        """An awaitable of a new value (the build under way, if one is)."""
        if self._future is None:
            self._future = asyncio.ensure_future(IOLoop.current().run_in_executor(None, self._build))
            self._future.add_done_callback(self._done)
        return asyncio.shield(self._future)

    def _done(self, future) -> None:
        self._future = None
        if not future.cancelled() and future.exception() is None:
            self.value = future.result()


class Feed:
    """Follows one log and hands its changes to any number of browsers, each with its own cursor.

    Folding runs on the follower's thread and batching on the batcher's, both
    under ``lock``; the IO loop only sees finished batches (``add_callback``)
    and reads the state only through executor threads.
    """

    def __init__(
        self,
        tail: LogTail,
        *,
        poll: bool = False,
        interval: float = BATCH_INTERVAL,
        ring_batches: int = RING_BATCHES,
        ring_bytes: int = RING_BYTES,
        output_chars: int = OUTPUT_CHARS,
    ):
        self.tail = tail
        self.lock = threading.Lock()
        self.follower = Follower(self.tail, self._on_change, poll=poll, lock=self.lock)
        self.stop = self.follower.stop
        self.interval = interval
        self.output_chars = output_chars
        self.failure: BaseException | None = None
        self.on_failure = None  # called on the IO loop when the follower fails
        self._dirty = threading.Event()
        self._threads: list = []
        # batcher side, under lock
        self._state = None
        self._need_reset = True
        self.epoch = secrets.token_hex(6)
        self.seq = 0
        self._sent_marks = self._sent_notices = self._sent_damage = 0
        self._engines: dict = {}
        self._closed = None
        self._exists = None
        # IO loop side
        self.loop: IOLoop | None = None
        self.ring: deque = deque()
        self.ring_bytes = 0
        self.max_batches, self.max_bytes = ring_batches, ring_bytes
        self.loop_epoch: str | None = None
        self.loop_seq = 0
        self.cond = None
        self.closing = False
        self.clients: set = set()
        self.snapshots = Shared(self.build_snapshot)  # its value: the last CatchUp built
        self.summaries = Shared(self.build_summary)  # its value: (key, when, summary), the last one computed
        self.stats = {"batches": 0, "resets": 0, "snapshots_built": 0, "summaries_built": 0}

    # -- threads ---------------------------------------------------------------------------------
    def start(self, loop: IOLoop) -> None:
        self.loop = loop
        self.cond = tornado.locks.Condition()
        for target, name in ((self._follow, "ipyrecorder-follow"), (self._batch_loop, "ipyrecorder-batch")):
            thread = threading.Thread(target=target, name=name, daemon=True)
            thread.start()
            self._threads.append(thread)

    def close(self) -> None:
        self.stop.set()
        self._dirty.set()
        self.follower.close()  # a follower waiting for file events notices the stop at once
        for thread in self._threads:
            thread.join(timeout=5)

    def _follow(self):
        try:
            self.follower.run()
        except BaseException as exc:  # a file that is not a log (or becomes one that is not): the server stops
            self.failure = exc
            self.stop.set()
            self._dirty.set()
            if self.loop is not None and self.on_failure is not None:
                self.loop.add_callback(self.on_failure, exc)

    def _on_change(self, tail):
        """On the follower's thread, under the lock, after each change."""
        state = tail.state
        if state is not self._state:  # the start, or the log was truncated or replaced: a new epoch
            self._state = state
            state.take_changes()  # from here on the fold notes what it changes
            self._need_reset = True
        self._dirty.set()

    def _batch_loop(self):
        last = 0.0
        while True:
            self._dirty.wait()
            if self.stop.is_set():
                return
            delay = last + self.interval - time.monotonic()
            if delay > 0 and self.stop.wait(delay):
                return
            self._dirty.clear()
            last = time.monotonic()
            with self.lock:
                item = self._collect()
            if item is None:
                continue
            kind, epoch, seq, body = item
            if kind == "batch":
                data = json.dumps(body, ensure_ascii=True, separators=(",", ":"), default=str)
                body = f"id: {epoch}:{seq}\nevent: batch\ndata: {data}\n\n".encode("ascii")
            self.loop.add_callback(self._publish, kind, epoch, seq, body)

    # -- what changed (under the lock) ----------------------------------------------------------
    def _live(self, state) -> dict:
        tail = self.tail
        p = progress(state)
        return {
            "now": _now_us(),
            "progress": {**p, "tasks": len(state.tasks), "events": state.events},
            "closed": state.closed,
            "exists": tail.exists,
            "t0": ev.to_us(state.headers[0]["t0"]) if state.headers else None,
            "segments": len(state.headers),
        }

    def _mark_sent(self, state):
        self._sent_marks = len(state.marks)
        self._sent_notices = len(self.tail.notices)
        self._sent_damage = self.tail.damage_count
        shifts = state.view_shifts()
        self._engines = {e.id: engine_fields(e, shifts) for e in state.engines.values() if e.id is not None}

    def _collect(self):
        state = self.tail.state
        if self._state is not state:  # folded but not yet seen by _on_change: wait for it
            return None
        changes = state.take_changes()
        if self._need_reset or len(changes.tasks) > BIG_BATCH:
            self._need_reset = False
            self.epoch = secrets.token_hex(6)
            self.seq = 0
            self._mark_sent(state)
            return ("reset", self.epoch, 0, None)
        chars, shifts = self.output_chars, state.view_shifts()
        tasks = [task_fields(task, chars, shifts) for task in changes.tasks]
        engines = []
        for engine_id in changes.engines:
            engine = state.engines.get(engine_id)
            if engine is None:
                continue
            row = engine_fields(engine, shifts)
            if self._engines.get(engine_id) != row:
                self._engines[engine_id] = row
                engines.append(row)
        marks = changes.marks
        notices = self.tail.notices[self._sent_notices :]
        damage = self.tail.damage_count
        live = self._live(state)
        if not (
            tasks
            or engines
            or marks
            or notices
            or damage != self._sent_damage
            or live["closed"] != self._closed
            or live["exists"] != self._exists
        ):
            return None
        self.seq += 1
        batch = {"seq": self.seq, **live, "tasks": tasks, "engines": engines}
        if marks:
            batch["marks"] = [self._sent_marks, [[m.t_us, text_or_none(m.text), data_text(m.data)] for m in marks]]
            self._sent_marks = len(state.marks)
        if notices:
            batch["notices"] = [self._sent_notices, list(notices)]
            self._sent_notices = len(self.tail.notices)
        if damage != self._sent_damage:
            batch["damage"] = [str(d) for d in self.tail.damage]
            self._sent_damage = damage
        self._closed, self._exists = live["closed"], live["exists"]
        return ("batch", self.epoch, self.seq, batch)

    # -- snapshots (executor threads) -------------------------------------------------------------
    def build_snapshot(self) -> CatchUp:
        started = time.perf_counter()
        with self.lock:
            state = self.tail.state
            name = os.path.basename(str(self.tail.path))
            meta, blob = build_report_data(state, self.output_chars, name, f"ipyrecorder: {name}")
            live = self._live(state)
            live.update(
                cursor=f"{self.epoch}:{self.seq}",
                origin_us=ev.to_us(meta["origin"]),
                task_fields=TASK_FIELDS,
                engine_fields=ENGINE_FIELDS,
                engines=[engine_fields(e, state.view_shifts()) for e in state.engines.values() if e.id is not None],
                engine_samples=engine_series(state, state.view_shifts()),
                notices=list(self.tail.notices),
                damage=[str(d) for d in self.tail.damage],
                marks=[[m.t_us, text_or_none(m.text), data_text(m.data)] for m in state.marks],
                log=str(self.tail.path),
                output_chars=self.output_chars,
                version=__version__,
            )
            epoch, seq, tasks = self.epoch, self.seq, len(state.tasks)
        meta["live"] = live
        meta["compression"] = None  # the whole response is gzip-encoded instead
        head = json.dumps(meta, ensure_ascii=True, separators=(",", ":"), default=str).encode("ascii")
        raw = struct.pack("<I", len(head)) + head + blob
        body = gzip.compress(raw, compresslevel=6, mtime=0)
        self.stats["snapshots_built"] += 1
        return CatchUp(epoch, seq, body, tasks, time.perf_counter() - started)

    async def snapshot(self) -> CatchUp:
        """A snapshot for a new browser: the cached one while it is recent, else a new one (one at a time)."""
        cached = self.snapshots.value
        if (
            cached is not None
            and cached.epoch == self.loop_epoch
            and self._in_ring(cached.seq)
            and self.loop_seq - cached.seq <= SNAPSHOT_REUSE
        ):
            return cached
        return await self.snapshots.build()

    def task_json(self, msg_id: str) -> bytes | None:
        with self.lock:
            task = self.tail.state.tasks.get(msg_id)
            if task is None:
                return None
            record = task.to_dict()
            shift = self.tail.state.view_shifts().get(task.engine_id)  # on the client's clock, as the rows are
            record.update(
                engine_id=task.engine_id,
                submitted_us=task.submitted_us,
                completed_us=on_client(task.completed_us, shift),
                started_us=on_client(task.effective_start_us, shift),
                received_us=task.received_us,
            )
        for key in ("stdout", "stderr"):
            text = record[key]
            record[key + "_chars"] = len(text)
            if len(text) > TASK_TEXT_MAX:
                record[key] = text[:TASK_TEXT_MAX]
        for key in ("name", "label", "function", "error", "traceback"):
            record[key] = text_or_none(record[key])
        return json.dumps(record, ensure_ascii=True, default=str).encode("ascii")

    def _summary_key(self):
        """What the summary depends on: the state (a new one on truncation) and the events it folded."""
        state = self.tail.state
        return id(state), state.events, state.closed

    def build_summary(self):
        with self.lock:
            key = self._summary_key()
            summary = self.tail.state.summary()
        summary["engines"] = {str(k): v for k, v in summary["engines"].items()}
        self.stats["summaries_built"] += 1
        return key, time.monotonic(), summary

    async def summary_json(self) -> bytes:
        """``/api/summary``: the cached summary while the log has not changed, or was summarised
        less than ``SUMMARY_EVERY`` ago, or is being summarised; else a new one (one at a time)."""
        with self.lock:
            key, live = self._summary_key(), self._live(self.tail.state)
        cached = self.summaries.value
        fresh = cached is not None and (
            cached[0] == key
            or (cached[0][0] == key[0] and (self.summaries.building or time.monotonic() - cached[1] < SUMMARY_EVERY))
        )
        if not fresh:
            cached = await self.summaries.build()
        body = {"log": str(self.tail.path), **live, "summary": cached[2]}
        return json.dumps(body, default=str).encode("ascii")

    # -- the IO loop's side ------------------------------------------------------------------------
    def _publish(self, kind, epoch, seq, body):
        if kind == "reset":
            self.loop_epoch, self.loop_seq = epoch, 0
            self.ring.clear()
            self.ring_bytes = 0
            self.stats["resets"] += 1
        elif epoch == self.loop_epoch:
            self.ring.append((seq, body))
            self.ring_bytes += len(body)
            self.loop_seq = seq
            self.stats["batches"] += 1
            while len(self.ring) > self.max_batches or (self.ring_bytes > self.max_bytes and len(self.ring) > 1):
                self.ring_bytes -= len(self.ring.popleft()[1])
        self.cond.notify_all()

    def _in_ring(self, seq: int) -> bool:
        first = self.ring[0][0] if self.ring else self.loop_seq + 1
        return first - 1 <= seq <= self.loop_seq

    def since(self, epoch: str, seq: int):
        """("batches", [(seq, bytes), ...]) after the cursor; ("wait", []) or ("reset", [])."""
        if epoch == self.loop_epoch:
            if seq > self.loop_seq:
                return ("wait", []) if epoch == self.epoch else ("reset", [])
            if not self._in_ring(seq):
                return "reset", []
            if seq == self.loop_seq:
                return "wait", []
            first = self.ring[0][0]
            return "batches", list(itertools.islice(self.ring, seq - first + 1, None))
        if epoch == self.epoch and epoch:  # a reset the loop has not seen yet
            return "wait", []
        return "reset", []

    def wake(self):
        if self.cond is not None:
            self.cond.notify_all()


# -- HTTP --------------------------------------------------------------------------------------------
class BaseHandler(tornado.web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "HEAD")

    def initialize(self, server):
        self.server = server
        self.feed = server.feed

    def set_default_headers(self):
        self.clear_header("Server")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "no-referrer")
        self.set_header("X-Frame-Options", "DENY")
        self.set_header("Content-Security-Policy", CSP)
        self.set_header("Cache-Control", "no-store")

    same_origin_only = False  # the API and the stream: only the dashboard's own pages may fetch them

    def prepare(self):
        if not self.server.allowed(self.request, self.get_query_argument("token", None), self.same_origin_only):
            self.server.refused[self.request.path] += 1
            raise tornado.web.HTTPError(403)
        self.server.http.trust(self.request.connection.stream)

    def write_error(self, status_code, **kwargs):
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code} {self._reason}\n")

    def head(self, *args):
        return self.get(*args)


class NotFound(BaseHandler):
    def get(self, *args):
        raise tornado.web.HTTPError(404)


class PageHandler(BaseHandler):
    def initialize(self, server, page):
        super().initialize(server)
        self.page = page

    def get(self, *args):
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.write(self.server.pages[self.page])


class StaticHandler(BaseHandler):
    def get(self, name):
        asset = self.server.assets.get(name)  # an exact name from the whitelist, or nothing
        if asset is None:
            raise tornado.web.HTTPError(404)
        data, content_type = asset
        self.set_header("Content-Type", content_type)
        self.set_header("Cache-Control", "no-cache")
        self.write(data)


class SnapshotHandler(BaseHandler):
    same_origin_only = True

    async def get(self):
        snap = await self.feed.snapshot()
        self.set_header("Content-Type", "application/octet-stream")
        self.set_header("X-Ipyrecorder-Cursor", snap.cursor)
        if "gzip" in self.request.headers.get("Accept-Encoding", ""):
            self.set_header("Content-Encoding", "gzip")
            self.write(snap.body)
        else:
            self.write(gzip.decompress(snap.body))


class TaskHandler(BaseHandler):
    same_origin_only = True

    async def get(self, msg_id):
        body = await IOLoop.current().run_in_executor(None, self.feed.task_json, msg_id)
        if body is None:
            raise tornado.web.HTTPError(404)
        self.set_header("Content-Type", "application/json")
        self.write(body)


class SummaryHandler(BaseHandler):
    same_origin_only = True

    async def get(self):
        body = await self.feed.summary_json()
        self.set_header("Content-Type", "application/json")
        self.write(body)


class StreamHandler(BaseHandler):
    """Server-Sent Events: the batches after the client's cursor, then each new one as it comes."""

    same_origin_only = True

    def _sse_headers(self):
        self.set_header("Content-Type", "text/event-stream; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("X-Accel-Buffering", "no")

    def head(self):
        self._sse_headers()

    async def get(self):
        feed = self.feed
        cursor = self.request.headers.get("Last-Event-ID") or self.get_query_argument("after", "")
        epoch, _, seq = cursor.strip().partition(":")
        try:
            seq = int(seq)
        except ValueError:
            epoch, seq = "", -1
        self._sse_headers()
        self._gone = False
        feed.clients.add(self)
        try:
            self.write(b"retry: 1000\n\n")
            await self.flush()
            while not self._gone and not feed.closing:
                status, items = feed.since(epoch, seq)
                if status == "reset":
                    note = json.dumps({"cursor": f"{feed.loop_epoch}:{feed.loop_seq}"})
                    self.write(f"event: reset\ndata: {note}\n\n".encode("ascii"))
                    break
                if items:
                    for _, payload in items:
                        self.write(payload)
                    seq = items[-1][0]
                    await self.flush()
                    continue
                if not await feed.cond.wait(timeout=timedelta(seconds=KEEPALIVE)):
                    self.write(b": keep-alive\n\n")
                    await self.flush()
            if not self._gone:
                self.finish()
        except StreamClosedError:
            pass
        finally:
            feed.clients.discard(self)

    def on_connection_close(self):
        self._gone = True
        self.feed.wake()


# -- the server ----------------------------------------------------------------------------------------
def _load(package: str, name: str) -> bytes:
    return resources.files(package).joinpath(name).read_bytes()


def is_loopback(host: str) -> bool:
    return host in LOOPBACK


class WebServer:
    """Binds, serves and follows. ``listen()`` then ``run()`` (blocks until ``stop()`` or Ctrl-C)."""

    def __init__(
        self,
        tail: LogTail,
        *,
        host: str = "127.0.0.1",
        port: int = 8181,
        token: str | None = None,
        certfile: str | None = None,
        keyfile: str | None = None,
        poll: bool = False,
        **feed_options,
    ):
        self.host, self.port = host, port
        self.certfile, self.keyfile = certfile, keyfile
        self.feed = Feed(tail, poll=poll, **feed_options)
        if token == "" and not is_loopback(host):
            raise PluginError(f"binding {host} needs a token: give a non-empty --token, or none to get one")
        self.token = secrets.token_hex(24) if token is None else token or None  # "": none, on loopback only
        self.http: GuardedHTTPServer | None = None
        self.refused: Counter = Counter()  # requests answered 403, by path
        self.ssl = self._ssl_context()
        self.sockets = []
        self.loop: IOLoop | None = None
        self._asyncio_loop = None
        self._stopped = None
        self._stop_requested = False
        self.assets = {name: (_load(pkg, res), ctype) for name, (pkg, res, ctype) in ASSETS.items()}
        self.assets["common.js"] = (common_js().encode("utf-8"), "application/javascript; charset=utf-8")
        self.assets["common.css"] = (common_css().encode("utf-8"), "text/css; charset=utf-8")
        shell = _load("ipyrecorder.viewers", PAGE_SHELL).decode("utf-8")
        late = {key: f"@@{key}@@" for key in self._page_values()}  # filled below, in the assembled page
        self.pages = {}
        for page, (body, title, nav) in PAGES.items():
            body = _load("ipyrecorder.viewers", body).decode("utf-8")
            text = fill(shell, {"PAGE": page, "TITLE": title, "NAV": nav, "BODY": body, **late})
            self.pages[page] = fill(text, self._page_values()).encode("utf-8")

    def _ssl_context(self):
        if self.certfile is None:
            if self.keyfile is not None:
                raise PluginError("--keyfile needs --certfile")
            return None
        for path in (self.certfile, self.keyfile):
            if path is not None and not os.path.isfile(path):
                raise NoFile(f"{path}: no such file")
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.certfile, self.keyfile)
        except (ssl.SSLError, OSError) as exc:
            raise PluginError(f"cannot load the TLS certificate and key: {exc}") from None
        return context

    def _page_values(self) -> dict:
        """What the pages' ``@@NAME@@`` placeholders stand for, escaped for HTML."""
        query = "?token=" + quote(self.token, safe="") if self.token else ""
        return {
            "QUERY": html.escape(query),
            "TOKEN": html.escape(self.token or ""),
            "LOG": html.escape(os.path.basename(str(self.feed.tail.path))),
            "VERSION": html.escape(__version__),
        }

    # -- access ---------------------------------------------------------------------------------
    def allowed(self, request, query_token, same_origin_only=False) -> bool:
        origin = request.headers.get("Origin")
        if origin is not None and urlsplit(origin).netloc != request.host:
            return False  # another site's page (or an opaque "null" origin), whatever it holds
        if same_origin_only and request.headers.get("Sec-Fetch-Site", "same-origin") not in ("same-origin", "none"):
            return False  # the API and stream serve the dashboard's own pages (and tools, which send neither)
        if self.token is None:
            # Loopback without a token: only for local host names, so that a web page cannot reach the
            # dashboard through a name of its own that resolves to 127.0.0.1 (DNS rebinding).
            return request.host_name in LOCAL_HOST_NAMES
        given = query_token
        if given is None:
            scheme, _, value = request.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "token":
                given = value.strip()
        if not given:
            return False
        return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), self.token.encode("utf-8"))

    # -- running -----------------------------------------------------------------------------------
    def listen(self) -> None:
        """Bind the port (PortInUse when it is taken or cannot be bound)."""
        try:
            self.sockets = tornado.netutil.bind_sockets(self.port, address=self.host or None, reuse_port=False)
        except OSError as exc:
            where = f"{self.host}:{self.port}"
            if exc.errno == errno.EADDRINUSE:
                raise PortInUse(f"port {self.port} is in use on {self.host} (choose another with --port)") from None
            raise PortInUse(f"cannot listen on {where}: {exc.strerror or exc}") from None
        except socket.gaierror as exc:
            raise PortInUse(f"cannot listen on {self.host}: {exc}") from None
        self.port = self.sockets[0].getsockname()[1]

    def urls(self) -> list:
        scheme = "https" if self.ssl else "http"
        query = "?token=" + quote(self.token, safe="") if self.token else ""
        hosts = [self.host]
        if self.host in ("", "0.0.0.0", "::"):
            hosts = [socket.gethostname(), "127.0.0.1"]
        return [f"{scheme}://{f'[{h}]' if ':' in h else h}:{self.port}/{query}" for h in hosts]

    def announce(self, out=None) -> None:
        out = out or sys.stdout
        name = self.feed.tail.path
        if self.token:
            print(f"ipyrecorder: serving {name}; open this URL (it holds the access token):", file=out)
        else:
            print(f"ipyrecorder: serving {name} without a token: every local user can read it, at", file=out)
        for url in self.urls():
            print(f"    {url}", file=out)
        print("Ctrl-C stops the server.", file=out, flush=True)

    def application(self) -> tornado.web.Application:
        s = {"server": self}
        return tornado.web.Application(
            [
                (r"/", PageHandler, {**s, "page": "cluster"}),
                (r"/engine/([^/]+)", PageHandler, {**s, "page": "engine"}),
                (r"/static/(.*)", StaticHandler, s),
                (r"/api/snapshot", SnapshotHandler, s),
                (r"/api/stream", StreamHandler, s),
                (r"/api/summary", SummaryHandler, s),
                (r"/api/task/(.+)", TaskHandler, s),
            ],
            default_handler_class=NotFound,
            default_handler_args=s,
            compress_response=True,
            log_function=lambda handler: None,
            xsrf_cookies=False,
        )

    async def _serve(self):
        self.loop = IOLoop.current()
        self._stopped = asyncio.Event()
        self._asyncio_loop = asyncio.get_running_loop()
        if self._stop_requested:
            self._stopped.set()
        http = self.http = GuardedHTTPServer(self.application(), ssl_options=self.ssl)
        http.add_sockets(self.sockets)
        self.feed.on_failure = lambda exc: self._stopped.set()
        self.feed.start(self.loop)
        try:
            await self._stopped.wait()
        finally:
            http.stop()
            self.feed.closing = True
            self.feed.wake()
            await asyncio.sleep(0)
            try:
                await asyncio.wait_for(http.close_all_connections(), 2)
            except asyncio.TimeoutError:
                pass
            self.feed.close()

    def run(self) -> None:
        """Serve until ``stop()``, Ctrl-C, or a failure of the follower (re-raised here)."""
        try:
            asyncio.run(self._serve())
        except KeyboardInterrupt:
            pass
        finally:
            self.feed.close()
            for sock in self.sockets:
                sock.close()
        if self.feed.failure is not None:
            raise self.feed.failure

    def stop(self) -> None:
        """From any thread, or a signal handler (call_soon_threadsafe wakes the loop in both cases);
        before ``run()`` has started its loop, it stops as soon as it has."""
        self._stop_requested = True
        loop = self._asyncio_loop
        if loop is not None:
            loop.call_soon_threadsafe(self._stopped.set)


class WebViewer(Viewer):
    name = "web"
    description = "A live dashboard in the browser: engines, timeline, engine pages, task search (read-only)."
    options = (
        Option("host", str, "127.0.0.1", "address to bind (127.0.0.1: this machine's users only)"),
        Option("port", int, 8181, "port to listen on (0: any free port)"),
        Option("certfile", str, None, "TLS certificate (PEM): serve https"),
        Option("keyfile", str, None, "TLS private key (PEM), when not in the certificate file"),
        Option("token", str, None, "access token (default: generated; empty: none, on a loopback address only)"),
    )

    def server(self, tail, *, poll=False) -> WebServer:
        """A bound server (PluginError, NoFile or PortInUse when it cannot start)."""
        config = self.config
        server = WebServer(
            tail,
            host=config["host"],
            port=config["port"],
            token=config["token"],
            certfile=config["certfile"],
            keyfile=config["keyfile"],
            poll=poll,
        )
        server.listen()
        return server

    def run(self, tail, *, poll=False, once=False):
        if once:
            raise PluginError("the web viewer serves until interrupted; it has no --once (see `ipyrecorder info`)")
        port = self.config["port"]
        if port is None or not 0 <= port <= 65535:
            raise PluginError(f"bad value for option 'port': {port!r} (0 to 65535)")
        server = self.server(tail, poll=poll)
        server.announce()
        previous = {}
        if threading.current_thread() is threading.main_thread():  # Ctrl-C and SIGTERM stop it cleanly
            previous = {sig: signal.signal(sig, lambda *_: server.stop()) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            server.run()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
