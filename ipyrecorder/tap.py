"""Hooks on an ipyparallel Client that hand raw records to a queue.

Everything here runs on the user's threads or on the client's IO thread, so it
does nothing but append a tuple to a deque; the recorder's own thread turns
those tuples into events (``recorder.py``). Where each hook sits, and why, is
explained in docs/internals.md. Every hook swallows its own exceptions: a bug
here must never become a failure in the user's computation.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import sys
import threading
import time
from functools import partial

from .engine_stats import MSG_TYPE as STATS_MSG_TYPE
from .errors import TapError
from .errors import warn_hook_failure as _warn_hook_failure

# Record tags: the first element of every tuple this module queues.
SUBMIT = "submit"  # (SUBMIT, future, queue, ident, metadata, (function, chunk), broadcast request, request bytes)
BROADCAST = "broadcast"  # (BROADCAST, future, metadata, (function, chunk), request bytes): a coalescing broadcast
IOPUB = "iopub"  # (IOPUB, message)
REPLY = "reply"  # (REPLY, future)
OUTPUT = "output"  # (OUTPUT, output future)
ENGINE = "engine"  # (ENGINE, epoch seconds, registration event)
HUB_REPLY = "hub_reply"  # (HUB_REPLY, msg_type, reply content) for resubmit/result requests
ASYNC_RESULT = "async_result"  # (ASYNC_RESULT, AsyncResult)
FLUSH = "flush"  # (FLUSH, threading.Event) set once everything before it is written
ENGINE_STATS = "engine_stats"  # (ENGINE_STATS, message content): an engine's sampler said something

TASK_REQUESTS = ("apply_request", "execute_request")
HUB_REQUESTS = ("resubmit_request", "result_request")
IOPUB_TYPES = ("status", "stream", "error")

# _send(socket, msg_type, content, parent, ident, buffers, track, header, metadata, ...)
_IDENT_POS, _BUFFERS_POS, _METADATA_POS, _HOOK_POS = 2, 3, 6, 8
REPLY_BYTES = "_ipyrecorder_reply_bytes"  # the attribute a task's future gets: its reply's buffers' size


def nbytes(buffers) -> int | None:
    """The size of a message's buffers (bytes, memoryviews, zmq frames), or None if it has none."""
    if not buffers:
        return None
    return sum(memoryview(b).nbytes for b in buffers)


@functools.lru_cache(maxsize=None)
def _map_call_code():
    from ipyparallel.client import remotefunction

    return inspect.unwrap(remotefunction.ParallelFunction.__call__).__code__


def describe_call(f, args) -> tuple:
    """(function name, map chunk index) for an apply request about to be sent.

    Views send the user's function pre-pickled (and ``map`` sends an internal
    ``_map`` wrapper per chunk), so the original is only a local of the frames
    that are sending it: ``View._really_apply``'s ``f``, or for map chunks
    ``ParallelFunction.__call__``'s ``self.func`` and ``index``. Look there.
    """
    from ipyparallel.client import remotefunction
    from ipyparallel.serialize import PrePickled

    getname = remotefunction.getname
    if not isinstance(f, PrePickled):
        if getattr(f, "__name__", None) == "_broadcast_map" and args:
            return getname(args[0]), None
        return getname(f), None
    map_call = _map_call_code()
    frame = sys._getframe(2)
    for _ in range(12):
        if frame is None:
            break
        code = frame.f_code
        if code is map_call:
            local = frame.f_locals
            return getname(local["self"].func), local.get("index")
        if code.co_name == "_really_apply":
            original = frame.f_locals.get("f")
            if original is not None and not isinstance(original, PrePickled):
                return getname(original), None
        frame = frame.f_back
    return None, None


class ClientTap:
    """Installs and removes the hooks on one Client.

    ``push`` receives every record; ``flush`` is called (on the user's thread)
    after ``wait``/``spin`` so the log is written up to that point.
    """

    def __init__(self, client, push, flush, watch_async_results=False):
        self.client = client
        self.push = push
        self.flush = flush
        self.watch_async_results = watch_async_results
        self._call = threading.local()
        self._originals: dict = {}  # attribute -> what the instance had (None: nothing of its own)
        self._installed: dict = {}  # attribute -> our wrapper
        self._coalescing: set = set()  # coalescing broadcast requests whose iopub we listen to
        self._stats_token = None  # the engine samplers' token, while we listen to them
        self._raw = None  # (session, its own deserialize or None, our wrapper) while we listen
        self._reply_handler = self._measure_reply = None  # the client's apply_reply handler, and ours
        self.attached = False

    # -- installing -----------------------------------------------------------
    def attach(self) -> None:
        client = self.client
        if getattr(client, "_closed", False):
            raise TapError("the client is closed; connect a new Client to record")
        other = getattr(client, "_ipyrecorder_tap", None)
        if other is not None:
            raise TapError("this client is already being recorded; nest no recordings on one client")
        wrappers = {
            "_send": partial(self._send, client._send),
            "send_apply_request": partial(self._send_apply_request, client.send_apply_request),
            "wait": partial(self._flush_after, client.wait),
            "spin": partial(self._flush_after, client.spin),
        }
        for name, wrapper in wrappers.items():
            self._originals[name] = client.__dict__.get(name)
            setattr(client, name, wrapper)
        self._installed = wrappers
        handlers = client._queue_handlers
        self._reply_handler = handlers.get("apply_reply")
        if self._reply_handler is not None:
            handlers["apply_reply"] = self._measure_reply = partial(self._on_apply_reply, self._reply_handler)
        client._registration_callbacks.append(self._on_registration)
        client._ipyrecorder_tap = self
        if self.watch_async_results:
            _async_result_watch.add(self)
        self.attached = True

    def detach(self) -> None:
        """Remove every client-level hook. Per-task callbacks stay until their task ends.

        Each attribute goes back to what it was, unless someone replaced our
        wrapper since: theirs stays.
        """
        if not self.attached:
            return
        self.attached = False
        client = self.client
        for name, wrapper in self._installed.items():
            _restore(client, name, wrapper, self._originals[name])
        handlers = client._queue_handlers
        if self._reply_handler is not None and handlers.get("apply_reply") is self._measure_reply:
            handlers["apply_reply"] = self._reply_handler
        try:
            client._registration_callbacks.remove(self._on_registration)
        except ValueError:
            pass
        if client.__dict__.get("_ipyrecorder_tap") is self:
            del client.__dict__["_ipyrecorder_tap"]
        _async_result_watch.discard(self)

    def release(self) -> None:
        """Stop listening to raw iopub traffic (the recording no longer follows any task)."""
        self._coalescing.clear()
        self._stats_token = None
        if self._raw is not None:
            session, original, wrapper = self._raw
            self._raw = None
            _restore(session, "deserialize", wrapper, original)

    def _listen_raw_iopub(self, request_id) -> None:
        """See the iopub traffic of a coalescing broadcast, which no client future receives.

        Its messages carry per-engine ids (``<request>_<uuid>``) that the client
        drops; only the session's ``deserialize`` (on the IO thread) sees them.
        Installed on the first coalescing broadcast, removed by ``release``.
        """
        self._coalescing.add(request_id)
        self._listen_raw()

    def listen_engine_stats(self, token: str) -> None:
        """See the messages of the engines' samplers (``engine_stats.py``), which no future receives."""
        self._stats_token = token
        self._listen_raw()

    def _listen_raw(self) -> None:
        if self._raw is not None:
            return
        session = self.client.session
        deserialize = session.deserialize
        coalescing, push, tap = self._coalescing, self.push, self

        def wrapper(*args, **kwargs):
            msg = deserialize(*args, **kwargs)
            try:
                msg_type = msg["header"]["msg_type"]
                if coalescing and msg_type in IOPUB_TYPES:
                    parent = (msg.get("parent_header") or {}).get("msg_id") or ""
                    if parent.rpartition("_")[0] in coalescing:
                        push((IOPUB, msg))
                elif msg_type == STATS_MSG_TYPE and tap._stats_token is not None:
                    content = msg["content"]
                    if content.get("token") == tap._stats_token:
                        push((ENGINE_STATS, content))
            except Exception:
                _warn_hook_failure("iopub listener")
            return msg

        self._raw = (session, session.__dict__.get("deserialize"), wrapper)
        session.deserialize = wrapper

    def engines(self) -> dict:
        """A copy of the client's engine table: {engine id: uuid}."""
        return {k: v for k, v in dict(self.client._engines).items() if isinstance(k, int)}

    # -- wrappers (user's threads) -------------------------------------------------
    def _send_apply_request(self, original, socket, f, *args, **kwargs):
        try:
            call_args = kwargs.get("args", args[0] if args else None)
            self._call.info = describe_call(f, call_args)
        except Exception:
            self._call.info = (None, None)
            _warn_hook_failure("send_apply_request")
        try:
            return original(socket, f, *args, **kwargs)
        finally:
            self._call.info = None

    @contextlib.contextmanager
    def unrecorded(self):
        """Requests sent in this block, on this thread, are not recorded (the recorder's own)."""
        self._call.quiet = True
        try:
            yield
        finally:
            self._call.quiet = False

    def _send(self, original, socket, msg_type, *args, **kwargs):
        if (msg_type in TASK_REQUESTS or msg_type in HUB_REQUESTS) and not getattr(self._call, "quiet", False):
            try:
                chained = self._pop_hook(args, kwargs)
                hook = partial(self._on_future, socket, msg_type, args, kwargs, chained)
                kwargs["message_future_hook"] = hook
            except Exception:
                _warn_hook_failure("_send")
        return original(socket, msg_type, *args, **kwargs)

    @staticmethod
    def _pop_hook(args, kwargs):
        if len(args) > _HOOK_POS - 2:
            raise TypeError("message_future_hook passed positionally")
        return kwargs.get("message_future_hook")

    def _on_future(self, socket, msg_type, args, kwargs, chained, future):
        """Runs on the sending thread before the message reaches the IO thread.

        Our callbacks go on first, so that ours run before the view's resolve the
        user's AsyncResult. A broadcast view makes one future per engine in its own
        hook (``chained``), so those are followed once it has run.
        """
        broadcast = None
        try:
            if msg_type in HUB_REQUESTS:
                future.add_done_callback(partial(self._on_hub_reply, msg_type))
            else:
                client = self.client
                if socket is client._task_stream:
                    queue = "task"
                elif socket is client._mux_stream:
                    queue = "mux"
                elif socket is getattr(client, "_broadcast_stream", None):
                    queue = "broadcast"
                else:
                    queue = None
                ident = kwargs.get("ident", args[_IDENT_POS - 2] if len(args) > _IDENT_POS - 2 else None)
                metadata = kwargs.get("metadata", args[_METADATA_POS - 2] if len(args) > _METADATA_POS - 2 else None)
                buffers = kwargs.get("buffers", args[_BUFFERS_POS - 2] if len(args) > _BUFFERS_POS - 2 else None)
                size = nbytes(buffers)
                if msg_type == "execute_request":
                    call = ("execute", None)
                else:
                    call = getattr(self._call, "info", None) or (None, None)
                if metadata and metadata.get("is_broadcast"):
                    broadcast = (metadata, call, size)
                else:
                    self.push((SUBMIT, future, queue, ident, metadata, call, None, size))
                    self._follow(future)
        except Exception:
            _warn_hook_failure("message future")
        if chained is not None:
            chained(future)
        if broadcast is not None:
            self._follow_broadcast(future, *broadcast)

    def _follow(self, future, output=True):
        future.iopub_callbacks.append(self._on_iopub)
        future.add_done_callback(self._on_reply)
        if output and getattr(future, "output", None) is not None:
            future.output.add_done_callback(self._on_output)

    def _follow_broadcast(self, future, metadata, call, size):
        """One task per engine: each engine's own future, or (coalescing) the one reply for all."""
        try:
            if metadata.get("is_coalescing"):
                self.push((BROADCAST, future, metadata, call, size))
                self._listen_raw_iopub(future.msg_id)
                self._follow(future, output=False)  # its output future never resolves
                return
            futures = self.client._futures
            for ident, _engine_id in metadata.get("targets") or ():
                engine_future = futures.get(f"{future.msg_id}_{ident}")
                if engine_future is not None:
                    self.push((SUBMIT, engine_future, "broadcast", ident, metadata, call, future.msg_id, size))
                    self._follow(engine_future)
        except Exception:
            _warn_hook_failure("broadcast future")

    def _flush_after(self, original, *args, **kwargs):
        try:
            return original(*args, **kwargs)
        finally:
            try:
                self.flush()
            except Exception:
                _warn_hook_failure("flush")

    # -- callbacks (IO thread) ------------------------------------------------------
    def _on_apply_reply(self, original, msg):
        """Note the reply's size on its task's future (where the translator reads it), then
        let the client handle it. The buffers' lengths are at hand: nothing is copied."""
        try:
            parent = msg["parent_header"]
            meta = msg.get("metadata") or {}
            msg_id = meta.get("original_msg_id") if meta.get("is_coalescing") else parent.get("msg_id")
            future = self.client._futures.get(msg_id)
            if future is not None:
                setattr(future, REPLY_BYTES, nbytes(msg.get("buffers")))
        except Exception:
            _warn_hook_failure("apply reply")
        return original(msg)

    def _on_iopub(self, msg):
        try:
            self.push((IOPUB, msg))
        except Exception:
            _warn_hook_failure("iopub")

    def _on_reply(self, future):
        try:
            self.push((REPLY, future))
        except Exception:
            _warn_hook_failure("reply")

    def _on_output(self, future):
        try:
            self.push((OUTPUT, future))
        except Exception:
            _warn_hook_failure("output")

    def _on_hub_reply(self, msg_type, future):
        # The client rewrites this reply's content in place once it returns, so
        # keep a shallow copy (these replies are rare: Hub queries only).
        try:
            if future.exception() is None:
                self.push((HUB_REPLY, msg_type, dict(future.result()["content"])))
        except Exception:
            _warn_hook_failure("hub reply")

    def _on_registration(self, event):
        try:
            self.push((ENGINE, time.time(), event))
        except Exception:
            _warn_hook_failure("registration")


def _restore(owner, name, ours, original) -> None:
    """Put back ``owner.name`` as it was before we wrapped it, unless it is no longer ours."""
    if owner.__dict__.get(name) is not ours:
        return  # replaced since we installed it: leave the newer one alone
    if original is None:
        del owner.__dict__[name]
    else:
        setattr(owner, name, original)


class _AsyncResultWatch:
    """Sees every AsyncResult created, for taps whose ``names`` is a callable.

    AsyncResults are made by views after the messages are sent, so nothing on
    the client sees them; the only place is their constructor. The class-level
    wrapper is installed while at least one tap asks for it.
    """

    def __init__(self):
        self.taps: set = set()
        self._original = None

    def add(self, tap):
        from ipyparallel.client.asyncresult import AsyncResult

        if not self.taps:
            self._original = original = AsyncResult.__init__
            watch = self

            def __init__(ar, client, *args, **kwargs):
                original(ar, client, *args, **kwargs)
                try:
                    for t in list(watch.taps):
                        if t.client is client:
                            t.push((ASYNC_RESULT, ar))
                except Exception:
                    _warn_hook_failure("AsyncResult")

            AsyncResult.__init__ = __init__
        self.taps.add(tap)

    def discard(self, tap):
        if tap not in self.taps:
            return
        self.taps.discard(tap)
        if not self.taps:
            from ipyparallel.client.asyncresult import AsyncResult

            AsyncResult.__init__ = self._original
            self._original = None


_async_result_watch = _AsyncResultWatch()
