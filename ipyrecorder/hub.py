"""The whole cluster, from the Hub's side: ``import-hub`` and the ``record`` observer.

``import_hub`` turns the Hub's TaskRecords (``db_query``) into a log, for every
client. ``Observer`` connects to a running cluster as one more client and
records everybody's tasks as they happen: starts, output and errors from the
engines' iopub traffic (which every client receives), engine registrations,
and submissions and completions by polling ``db_query`` from its own thread.
With ``engine_stats`` it starts the engines' samplers (``engine_stats.py``) as a
recording does, and keeps its own set-up tasks out of the log.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from datetime import datetime, timezone

from . import engine_stats as samplers
from .errors import warn_hook_failure
from .log import LogWriter, new_header
from .messages import completion, engine_event, engine_stats_event, final_record_events, iopub_events, submission

HUB_DB_NOTE = "the Hub's default in-memory database (DictDB) keeps only the newest 1,024 task records"
RECORD_KEYS = [
    "msg_id",
    "header",
    "submitted",
    "started",
    "completed",
    "received",
    "engine_uuid",
    "client_uuid",
    "queue",
    "result_content",
    "error",
    "label",
    "resubmitted",
    "stdout",
    "stderr",
]
IOPUB_TYPES = ("status", "stream", "error")
DB_TIMEOUT = 10.0  # seconds the Hub may take to answer a query before it counts as gone


def connect(profile=None, url_file=None, timeout: float = 30):
    """A Client for a running cluster, by profile or connection file."""
    import ipyparallel as ipp

    client = (
        ipp.Client(url_file, timeout=timeout) if url_file else ipp.Client(profile=profile or "default", timeout=timeout)
    )
    return client


def _engine_ids(client) -> dict:
    return {uuid: eid for eid, uuid in dict(client._engines).items() if isinstance(eid, int)}


def _append(log, event) -> bool:
    """Write one event; one a log cannot hold (a Hub record without a time) is skipped, with a warning."""
    try:
        log.append(event)
        return True
    except (ValueError, TypeError):
        warn_hook_failure(f"Hub record ({event.get('kind')})")
        return False


def import_hub(client, path, where=None, mode: str = "w") -> int:
    """Write the Hub's TaskRecords matching ``where`` (all by default) as a log. Returns the count."""
    records = client.db_query(where or {}, keys=RECORD_KEYS)
    records.sort(key=lambda r: (r.get("submitted") is None, r.get("submitted") or 0))
    engine_ids = _engine_ids(client)
    header = new_header(reconstructed=True, note=f"imported from the Hub's task database; {HUB_DB_NOTE}")
    with LogWriter(path, mode, header) as log:
        for uuid, engine_id in sorted(engine_ids.items(), key=lambda item: item[1]):
            _append(
                log,
                {"kind": "engine_register", "t": header["t0"], "engine_id": engine_id, "uuid": uuid, "present": True},
            )
        for record in records:
            _append(log, submission(record))
            for event in final_record_events(record["msg_id"], record, engine_ids.get(record.get("engine_uuid"))):
                _append(log, event)
            done = completion(record, engine_ids.get)
            if done is not None:
                _append(log, done)
            if record.get("resubmitted"):
                _append(
                    log,
                    {
                        "kind": "resubmit",
                        "t": record.get("submitted"),
                        "msg_id": record["msg_id"],
                        "new_msg_id": record["resubmitted"],
                    },
                )
    return len(records)


class ClusterRecorder:
    """Records every client's tasks on a cluster until ``stop`` is set.

    The client's IO thread only appends iopub messages and registrations to a
    deque; ``run`` (the caller's thread) turns them into events, polls the Hub
    every ``interval`` seconds for submissions and completions, and writes.
    If the controller goes away, the observer reconnects and notes the gap.
    """

    def __init__(
        self,
        connect_client,
        path,
        *,
        interval: float = 0.5,
        mode: str = "a",
        capture_output=True,
        echo=print,
        query_timeout: float = DB_TIMEOUT,
        engine_stats: float | None = None,
    ):
        self.connect_client = connect_client
        self.path = path
        self.interval = interval
        self.query_timeout = query_timeout
        self.capture_output = capture_output
        self.engine_stats = engine_stats  # seconds between the engines' samples, or None: not sampled
        self._token = secrets.token_hex(8)  # the samplers' messages carry it
        self.echo = echo
        self.stop = threading.Event()
        self.connected = threading.Event()
        self._queue = collections.deque()
        self._log = LogWriter(
            path, mode, new_header(observer=True, note="cluster-wide recording by ipyrecorder record")
        )
        self._client = None
        self._pending: set = set()  # msg_ids submitted and not yet completed
        # msg_id -> submitted of the records at or after ``_since`` (what the next poll returns again);
        # older ones are dropped each poll, so the observer's memory follows the tasks in flight
        self._seen: dict = {}
        self._since = None  # submitted time of the newest record seen
        self._part_errors: dict = {}  # broadcast part -> its attempt_error, until its engine is idle
        self.tasks = 0
        self.dropped = 0  # events that could not be written

    # -- IO thread -------------------------------------------------------------------
    def _tap(self, client):
        session = client.session
        original = session.deserialize
        push, token = self._queue.append, self._token

        def deserialize(*args, **kwargs):
            msg = original(*args, **kwargs)
            try:
                msg_type = msg["header"]["msg_type"]
                if msg_type in IOPUB_TYPES:
                    push(("iopub", msg))
                elif msg_type == samplers.MSG_TYPE and msg["content"].get("token") == token:
                    push(("stats", msg["content"]))
            except Exception:
                pass
            return msg

        session.deserialize = deserialize
        client._registration_callbacks.append(lambda event: push(("engine", time.time(), event)))

    # -- the observer's thread -----------------------------------------------------------
    def _connect(self):
        client = self.connect_client()
        self._tap(client)
        self._client = client
        self._engine_ids = _engine_ids(client)
        now = datetime.now(timezone.utc)
        for uuid, engine_id in sorted(self._engine_ids.items(), key=lambda item: item[1]):
            self._append({"kind": "engine_register", "t": now, "engine_id": engine_id, "uuid": uuid, "present": True})
            self._start_sampler(engine_id)
        self._log.flush()
        self.connected.set()

    def _start_sampler(self, engine_id) -> None:
        """With ``engine_stats``: start one engine's sampler (a task of the observer's own client,
        which ``_own`` keeps out of the log)."""
        if self.engine_stats is None:
            return
        try:
            self._client[engine_id].apply_async(samplers.start_sampler, engine_id, self.engine_stats, self._token)
        except Exception:  # that engine cannot be reached: it goes unsampled
            warn_hook_failure("engine_stats set-up")

    def _stop_samplers(self) -> None:
        """Ask the engines' samplers to stop (each once its engine is free)."""
        client = self._client
        if self.engine_stats is None or client is None:
            return
        try:
            if client.ids:
                client[client.ids].apply_async(samplers.stop_sampler, self._token).wait_for_send(5)  # before the close
        except Exception:
            warn_hook_failure("engine_stats stop")

    def _own(self, session) -> bool:
        """A message or task of the observer's own client (its samplers' set-up): not recorded."""
        return self._client is not None and session == self._client.session.session

    def run(self) -> None:
        try:
            self._connect()
            while not self.stop.wait(self.interval):
                try:
                    self._step()
                except Exception as exc:  # the controller went away (or the query failed)
                    if self.stop.is_set():
                        break
                    self._reconnect(exc)
            self._step()
        finally:
            self.close()

    def _step(self):
        self._drain()
        self._poll_hub()
        self._drain()
        self._log.flush()

    def _reconnect(self, exc):
        self._append(
            {
                "kind": "mark",
                "t": datetime.now(timezone.utc),
                "text": "observer: connection lost",
                "data": {"error": f"{type(exc).__name__}: {exc}"},
            }
        )
        self._log.flush()
        self.echo(f"ipyrecorder record: lost the controller ({exc}); reconnecting")
        self._close_client()
        while not self.stop.is_set():
            try:
                self._connect()
                break
            except Exception:
                self.stop.wait(1.0)
        else:
            return
        self._append({"kind": "mark", "t": datetime.now(timezone.utc), "text": "observer: reconnected"})
        self.echo("ipyrecorder record: reconnected")

    def _query(self, where):
        """``db_query`` with a deadline: a controller that died must not hang the observer.

        The query runs on a daemon thread of its own, so one stuck on a dead
        controller is abandoned, and never joined (not even at interpreter exit).
        """
        box = {}
        done = threading.Event()
        client = self._client

        def query():
            try:
                box["records"] = client.db_query(where, RECORD_KEYS)
            except BaseException as exc:  # handed to the observer's thread below
                box["error"] = exc
            finally:
                done.set()

        threading.Thread(target=query, name="ipyrecorder-hub-query", daemon=True).start()
        if not done.wait(self.query_timeout):
            raise TimeoutError(f"the Hub did not answer within {self.query_timeout:g} s")
        if "error" in box:
            raise box["error"]
        return box["records"]

    def _poll_hub(self):
        # "$ne" first: the Hub's DictDB tests in order, and cannot compare a record without a time
        query = {"submitted": {"$ne": None, "$gte": self._since}} if self._since is not None else {}
        records = self._query(query)
        if self._pending:  # (only the finished ones: the Hub copies every record it returns, buffers and all)
            records += self._query({"completed": {"$ne": None}, "msg_id": {"$in": sorted(self._pending)}})
        client = self._client
        self._engine_ids.update(_engine_ids(client))
        for record in sorted(records, key=lambda r: r.get("submitted") or datetime.min.replace(tzinfo=timezone.utc)):
            msg_id = record["msg_id"]
            submitted = record.get("submitted")
            if self._own(record.get("client_uuid")):
                continue
            if msg_id not in self._seen and msg_id not in self._pending:
                if submitted is None:  # not (yet) a task: what the Hub made of iopub alone, such as a
                    continue  # broadcast's parts (followed on iopub: _part_done); a later poll has a task once sent
                self._seen[msg_id] = submitted
                self._pending.add(msg_id)
                self._append(submission(record))
                self.tasks += 1
                self._since = max(self._since or submitted, submitted)
            if msg_id in self._pending:
                done = completion(record, self._engine_ids.get)
                if done is not None:
                    self._append(done)
                    self._pending.discard(msg_id)
                if record.get("resubmitted"):
                    self._append(
                        {
                            "kind": "resubmit",
                            "t": datetime.now(timezone.utc),
                            "msg_id": msg_id,
                            "new_msg_id": record["resubmitted"],
                        }
                    )
        since = self._since
        if since is not None:
            self._seen = {m: t for m, t in self._seen.items() if t is not None and t >= since}

    def _drain(self):
        queue = self._queue
        while queue:
            item = queue.popleft()
            if item[0] == "engine":
                self._on_engine(*item[1:])
            elif item[0] == "stats":
                event = engine_stats_event(item[1])
                if event is not None:
                    self._append(event)
            else:
                self._on_iopub(item[1])

    def _on_engine(self, t, event):
        if event.get("event") == "register":
            self._engine_ids[event.get("uuid")] = event.get("id")
            self._start_sampler(event.get("id"))  # an engine that joined: sampled too
        engine = engine_event(t, event)
        if engine is not None:
            self._append(engine)

    def _on_iopub(self, msg):
        parent = msg.get("parent_header") or {}
        if not parent.get("msg_id") or parent.get("msg_type") not in ("apply_request", "execute_request"):
            return  # not a task: the observer's own queries, other clients' control messages
        if self._own(parent.get("session")):
            return  # the observer's own set-up of the samplers
        for event in iopub_events(msg, self._engine_ids.get, self.capture_output):
            if event["kind"] == "attempt_error" and self._part_engine(event["msg_id"]) is not None:
                self._part_errors[event["msg_id"]] = event
            self._append(event)
        if msg["header"]["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
            engine_id = self._part_engine(parent["msg_id"])
            if engine_id is not None:
                self._append(self._part_done(parent["msg_id"], engine_id, msg["header"]["date"]))

    def _part_engine(self, msg_id):
        """The engine of a broadcast's part (``<request>_<engine uuid>``, which the Hub keeps no record
        of), or None: not a broadcast part."""
        return self._engine_ids.get(msg_id.rpartition("_")[2])

    def _part_done(self, msg_id, engine_id, t) -> dict:
        """A broadcast part ends when its engine goes idle: ok, or the error its engine published."""
        error = self._part_errors.pop(msg_id, {})
        return {
            "kind": "complete",
            "msg_id": msg_id,
            "status": "error" if error else "ok",
            "started": None,
            "completed": t,
            "received": None,
            "engine_id": engine_id,
            "ename": error.get("ename"),
            "evalue": error.get("evalue"),
            "traceback": error.get("traceback"),
        }

    def _append(self, event) -> None:
        if not _append(self._log, event):
            self.dropped += 1

    def _close_client(self):
        client, self._client = self._client, None
        if client is not None:
            try:
                client.close()
            except Exception:
                pass

    def close(self):
        """Stop the samplers; close the log (with a close event and fsync) and the client."""
        if not self._log.closed:
            self._stop_samplers()
            self._drain()
            self._log.close({"tasks": self.tasks, "pending": len(self._pending)})
        self._close_client()
