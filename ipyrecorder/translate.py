"""Raw records from the tap, turned into events: the recorder's pure half.

The tap (``tap.py``) hands over what ipyparallel gave it (futures, iopub
messages, registrations) untouched; a ``Translator`` turns each record into
event dicts for the log, keeping what that needs between records: the
uuid -> engine id map, the tasks still pending, and the names to give. It
does no IO and starts no thread, so tests can drive it without a cluster.
"""

from __future__ import annotations

import collections
import warnings
from datetime import datetime, timezone

from . import tap as T
from .errors import RecorderWarning, warn_hook_failure
from .messages import completion, depend_events, engine_event, engine_stats_event, iopub_events, metadata_completion
from .msgids import MsgIds

MARK = "mark"  # (MARK, epoch seconds, text, data)
NAME = "name"  # (NAME, {msg_id: name})


def names_for(async_result, names) -> dict:
    """{msg_id: name} from the forms ``names`` may take for one AsyncResult.

    A list or tuple of another length than the tasks is a mistake worth a warning:
    the extra names are dropped, the tasks without one stay unnamed.
    """
    msg_ids = list(async_result.msg_ids)
    if callable(names):
        names = names(async_result)
    if names is None:
        return {}
    if isinstance(names, str):
        if len(msg_ids) == 1:
            return {msg_ids[0]: names}
        return {m: f"{names}[{i}]" for i, m in enumerate(msg_ids)}
    if isinstance(names, dict):
        return {m: str(names[m]) for m in msg_ids if m in names}
    names = list(names)
    if len(names) != len(msg_ids):
        warnings.warn(
            f"ipyrecorder: {len(names)} names for {len(msg_ids)} tasks; "
            + (
                "the extra names are ignored"
                if len(names) > len(msg_ids)
                else f"the last {len(msg_ids) - len(names)} tasks stay unnamed"
            ),
            RecorderWarning,
            stacklevel=3,
        )
    return {m: str(n) for m, n in zip(msg_ids, names)}


class _Pending:
    """A task being followed: its future, and which of reply and output have arrived."""

    __slots__ = ("future", "replied", "output_done")

    def __init__(self, future, expects_output: bool):
        self.future = future
        self.replied = False
        self.output_done = not expects_output


class _Coalesced:
    """A coalescing broadcast: its engines' tasks still to complete, and the one reply for all."""

    __slots__ = ("tasks", "done")

    def __init__(self):
        self.tasks: dict[str, int] = {}  # per-engine task id -> engine id
        self.done = None  # the complete event the reply made, once it came


class Translator:
    """Turns one recording's raw records into event dicts, passed to ``emit``."""

    def __init__(self, emit, engines: dict, names=None, capture_output: bool = True):
        self.emit = emit
        self.names = names
        self.capture_output = capture_output
        self.pending: dict[str, _Pending] = {}
        self.counts = collections.Counter()
        self._uuid_to_id = {uuid: engine_id for engine_id, uuid in engines.items()}
        # with a names dict: the tasks this recording submitted, and those it named (the names sweep)
        self._submitted = MsgIds() if isinstance(names, dict) else None
        self._labelled = MsgIds() if isinstance(names, dict) else None
        self._coalesced: dict[str, _Coalesced] = {}  # coalescing broadcast requests not yet complete
        self._idle: dict[str, str] = {}  # per-engine task of a coalescing broadcast -> engine's idle time
        self._parts: dict[str, list] = {}  # coalescing broadcast request -> its per-engine tasks (for names)
        self._present = (datetime.now(timezone.utc), sorted(engines.items()))

    def start(self) -> None:
        """Emit the engines present when the recording began (once, on the writer's thread)."""
        if self._present is None:
            return
        now, engines = self._present
        self._present = None
        for engine_id, uuid in engines:
            self.emit({"kind": "engine_register", "t": now, "engine_id": engine_id, "uuid": uuid, "present": True})

    def engine_id(self, uuid):
        if uuid is None:
            return None
        return self._uuid_to_id.get(uuid)

    def process(self, record) -> None:
        """Emit the events of one record; a record that cannot be turned into events is warned about."""
        try:
            handler = self._handlers[record[0]]
            handler(self, *record[1:])
        except Exception:
            warn_hook_failure("event conversion")

    # -- one method per record kind ---------------------------------------------------
    def _on_submit(self, future, queue, ident, metadata, call, request, size):
        target = None
        if ident:
            idents = ident if isinstance(ident, list) else [ident]
            ids = [self.engine_id(i.decode() if isinstance(i, bytes) else i) for i in idents]
            target = ids[0] if len(ids) == 1 else ids
        self._submit(future.msg_id, future.header.get("date"), queue, call, target, metadata, request, size)
        self.pending[future.msg_id] = _Pending(future, getattr(future, "output", None) is not None)

    def _submit(self, msg_id, t, queue, call, target, metadata, request=None, size=None):
        self.emit(
            {
                "kind": "submit",
                "msg_id": msg_id,
                "t": t,
                "queue": queue,
                "function": call[0],
                "target": target,
                "label": (metadata or {}).get("label"),
                "chunk": call[1],
                "broadcast": request,
                "request_bytes": size,
            }
        )
        self.counts["tasks"] += 1
        if metadata and (metadata.get("after") or metadata.get("follow")):
            for event in depend_events(msg_id, metadata):
                self.emit(event)
        if self._submitted is not None:
            self._submitted.add(msg_id)
            if msg_id in self.names:
                self._add_name(msg_id, self.names[msg_id])

    def _on_coalescing_broadcast(self, future, metadata, call, size):
        """One task per engine (``<request>_<engine uuid>``, as ipyparallel names them), one reply for all."""
        request = future.msg_id
        entry = self._coalesced[request] = _Coalesced()
        for ident, engine_id in metadata.get("targets") or ():
            msg_id = f"{request}_{ident}"
            self._submit(msg_id, future.header.get("date"), "broadcast", call, engine_id, metadata, request, size)
            entry.tasks[msg_id] = engine_id
        self._parts[request] = list(entry.tasks)
        self.pending[request] = _Pending(future, expects_output=False)

    def _on_iopub(self, msg):
        if self._coalesced and msg["header"]["msg_type"] == "status":
            parent = (msg.get("parent_header") or {}).get("msg_id") or ""
            request = parent.rpartition("_")[0]
            if request in self._coalesced and msg["content"].get("execution_state") == "idle":
                self._idle[parent] = msg["header"]["date"]  # when that engine finished its part
                self._complete_coalesced(request)
                return
        for event in iopub_events(msg, self.engine_id, self.capture_output):
            self.emit(event)

    def _on_reply(self, future):
        msg_id = future.msg_id
        pending = self.pending.get(msg_id)
        if pending is None or pending.replied:
            return  # already handled (a flush found it done first)
        output = getattr(future, "output", None)
        md = getattr(output, "metadata", None) or {}
        failure = future.exception(timeout=0)
        if failure is None:  # replies the client makes up (engine died) hold the error as the result
            result = future.result(timeout=0)
            failure = result if isinstance(result, BaseException) else None
        engine_id = md.get("engine_id")
        if engine_id is None:
            engine_id = self.engine_id(md.get("engine_uuid"))
        done = metadata_completion(msg_id, md, engine_id, failure, getattr(future, T.REPLY_BYTES, None))
        if msg_id in self._coalesced:
            self._coalesced[msg_id].done = done
            self._complete_coalesced(msg_id)
            return
        self.emit(done)
        self.counts[done["status"]] += 1
        self._part_done(msg_id, "replied")

    def _complete_coalesced(self, request):
        """The one reply of a coalescing broadcast completes each engine's task once that engine is idle.

        The reply and the engines' iopub come on different sockets, in either order.
        """
        entry = self._coalesced[request]
        if entry.done is None:
            return
        for msg_id in [m for m in entry.tasks if m in self._idle]:
            self.emit(
                {
                    **entry.done,
                    "msg_id": msg_id,
                    "started": None,
                    "completed": self._idle.pop(msg_id),
                    "engine_id": entry.tasks.pop(msg_id),
                    "reply_bytes": None,  # the one reply holds every engine's result
                }
            )
            self.counts[entry.done["status"]] += 1
        if not entry.tasks:
            del self._coalesced[request]
            self._part_done(request, "replied")

    def _engine_gone(self, engine_id):
        """An engine that left will never go idle: its parts of coalescing broadcasts end with the reply."""
        for request, entry in list(self._coalesced.items()):
            for msg_id, part_engine in list(entry.tasks.items()):
                if part_engine == engine_id:
                    self._idle.setdefault(msg_id, None)
            self._complete_coalesced(request)

    def _on_output(self, future):
        self._part_done(future.msg_id, "output_done")

    def _part_done(self, msg_id, part):
        pending = self.pending.get(msg_id)
        if pending is None:
            return
        setattr(pending, part, True)
        if pending.replied and pending.output_done:
            del self.pending[msg_id]

    def _on_engine(self, t, event):
        if event.get("event") == "register":
            self._uuid_to_id[event.get("uuid")] = event.get("id")
        elif event.get("event") == "unregister":
            self._engine_gone(event.get("id"))
        engine = engine_event(t, event)
        if engine is not None:
            self.emit(engine)

    def _on_hub_reply(self, msg_type, content):
        """Resubmissions happen in the Hub; follow them through its replies."""
        if content.get("status") != "ok":
            return
        now = datetime.now(timezone.utc)
        if msg_type == "resubmit_request":
            for old, new in content.get("resubmitted", {}).items():
                self.emit({"kind": "submit", "msg_id": new, "t": now})
                self.emit({"kind": "resubmit", "t": now, "msg_id": old, "new_msg_id": new})
                self.counts["tasks"] += 1
                self.pending[new] = _Pending(None, expects_output=False)
            return
        for msg_id in content.get("completed", []):
            rec = content.get(msg_id)
            if msg_id not in self.pending or not isinstance(rec, dict):
                continue
            done = completion({"msg_id": msg_id, **rec}, self.engine_id)
            if done is None:
                continue
            self.emit(done)
            self.counts[done["status"]] += 1
            for name in ("stdout", "stderr"):
                text = (rec.get("io") or {}).get(name)
                if text and self.capture_output:
                    self.emit({"kind": name, "msg_id": msg_id, "t": now, "text": text})
            self._part_done(msg_id, "replied")

    def _on_async_result(self, async_result):
        try:
            mapping = names_for(async_result, self.names)
        except Exception:
            warn_hook_failure("names")
            return
        self._on_name(mapping)

    def _on_name(self, mapping):
        for msg_id, name in mapping.items():
            self._add_name(msg_id, name)

    def _on_engine_stats(self, content):
        event = engine_stats_event(content)
        if event is not None:
            self.emit(event)

    def _on_mark(self, t, text, data):
        self.emit({"kind": "mark", "t": t, "text": text, "data": data})

    _handlers = {
        T.SUBMIT: _on_submit,
        T.BROADCAST: _on_coalescing_broadcast,
        T.IOPUB: _on_iopub,
        T.REPLY: _on_reply,
        T.OUTPUT: _on_output,
        T.ENGINE: _on_engine,
        T.HUB_REPLY: _on_hub_reply,
        T.ASYNC_RESULT: _on_async_result,
        T.ENGINE_STATS: _on_engine_stats,
        NAME: _on_name,
        MARK: _on_mark,
    }

    @property
    def awaiting_replies(self) -> bool:
        """A task followed has not replied yet (not only its output is still to come)."""
        return any(not pending.replied for pending in list(self.pending.values()))

    # -- at flush points and at the end ---------------------------------------------------
    def catch_up(self) -> None:
        """Handle replies and output the client already has but whose callbacks have not run yet.

        A view's own callbacks can resolve the user's AsyncResult before ours
        run on the IO thread; at a flush point the log must hold what the user holds.
        """
        for msg_id, pending in list(self.pending.items()):
            future = pending.future
            if future is None:
                continue
            if not pending.replied and future.done():
                self._on_reply(future)
            output = getattr(future, "output", None)
            if not pending.output_done and output is not None and output.done():
                self._part_done(msg_id, "output_done")

    def _add_name(self, msg_id, name):
        """Name a task; a coalescing broadcast's AsyncResult names the request: each engine's task gets it."""
        for task_id in self._parts.get(msg_id, (msg_id,)):
            if self._labelled is not None:
                self._labelled.add(task_id)
            self.emit({"kind": "label", "msg_id": task_id, "name": str(name)})

    def sweep_names(self) -> None:
        """Names a user added to the ``names`` dict after their tasks were submitted."""
        if not isinstance(self.names, dict):
            return
        for msg_id, name in list(self.names.items()):
            if msg_id in self._submitted and msg_id not in self._labelled:
                self._add_name(msg_id, name)
