"""The dashboard's connections, guarded against slow and half-open clients.

tornado's ``HTTPServer`` keeps a connection whose request headers never finish for as long as its
idle timeout (an hour by default), and a token can only be checked once the headers are in; a
process out of file descriptors leaves its listening socket readable, and tornado logs a
traceback for every ``accept`` that fails. ``GuardedHTTPServer`` bounds all three:

* headers must arrive within ``HEADER_TIMEOUT`` seconds, and an idle keep-alive connection is
  closed after as long (browsers open another when they need one);
* at most ``UNAUTHENTICATED_MAX`` connections may be open that have not yet made an allowed
  request (the server's handlers call ``trust``); when one more arrives the oldest of them is
  closed, so half-open connections give way and whoever holds the token gets in;
* at most ``max_connections`` connections in all, below the file descriptor limit; more are
  closed at once, and running out of descriptors anyway pauses accepting for ``ACCEPT_PAUSE``
  seconds, with one warning a minute at most instead of a traceback per attempt.
"""

from __future__ import annotations

import errno
import resource
import sys
import time
from collections import Counter, OrderedDict

from tornado.httpserver import HTTPServer
from tornado.ioloop import IOLoop

HEADER_TIMEOUT = 10.0  # seconds for a request's headers, and for an idle keep-alive connection
UNAUTHENTICATED_MAX = 64  # connections open at once that have not yet made an allowed request
FD_RESERVE = 64  # file descriptors left for the log, its follower and the executor's threads
ACCEPT_PAUSE = 1.0  # seconds without accepting once the descriptors ran out
WARN_EVERY = 60.0  # seconds between two warnings about running out of descriptors
ACCEPT_BATCH = 128  # connections accepted per wake-up, as tornado does (its listen backlog)


def descriptor_limit() -> int:
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def default_max_connections() -> int:
    limit = descriptor_limit()
    if limit == resource.RLIM_INFINITY:
        return 10_000
    return max(16, min(10_000, limit - FD_RESERVE))


class GuardedHTTPServer(HTTPServer):
    """tornado's HTTPServer with short header timeouts and caps on what slow clients can hold."""

    def initialize(
        self,
        *args,
        header_timeout: float | None = None,
        unauthenticated_max: int = UNAUTHENTICATED_MAX,
        max_connections: int | None = None,
        warn=None,
        **kwargs,
    ):
        timeout = HEADER_TIMEOUT if header_timeout is None else header_timeout
        super().initialize(*args, idle_connection_timeout=timeout, body_timeout=timeout, **kwargs)
        self.unauthenticated_max = unauthenticated_max
        self.max_connections = max_connections or default_max_connections()
        self.warn = warn or (lambda text: print(text, file=sys.stderr, flush=True))
        self.stats: Counter = Counter()  # closed_oldest, refused, paused
        self._untrusted: OrderedDict = OrderedDict()  # streams without an allowed request yet, oldest first
        self._warned_at = -WARN_EVERY

    # -- who may hold a connection ---------------------------------------------------------------
    def handle_stream(self, stream, address) -> None:
        if len(self._connections) >= self.max_connections:
            self.stats["refused"] += 1
            stream.close()
            return
        while len(self._untrusted) >= self.unauthenticated_max:
            oldest, _ = self._untrusted.popitem(last=False)
            self.stats["closed_oldest"] += 1
            oldest.close()
        self._untrusted[stream] = None
        super().handle_stream(stream, address)

    def trust(self, stream) -> None:
        """The connection made an allowed request: the cap on unauthenticated ones no longer applies."""
        self._untrusted.pop(stream, None)

    @property
    def untrusted(self) -> int:
        return len(self._untrusted)

    def on_close(self, server_conn) -> None:
        self._untrusted.pop(server_conn.stream, None)
        super().on_close(server_conn)

    # -- accepting, when descriptors run out -----------------------------------------------------
    def add_sockets(self, sockets) -> None:
        for sock in sockets:
            self._sockets[sock.fileno()] = sock
            self._handlers[sock.fileno()] = self._accept_on(sock)

    def _accept_on(self, sock):
        """tornado's ``add_accept_handler``, but EMFILE/ENFILE pause accepting instead of raising."""
        loop = IOLoop.current()
        removed = False

        def accept(fd, events) -> None:
            for _ in range(ACCEPT_BATCH):
                if removed:
                    return
                try:
                    connection, address = sock.accept()
                except BlockingIOError:
                    return
                except ConnectionAbortedError:
                    continue
                except OSError as exc:
                    if exc.errno not in (errno.EMFILE, errno.ENFILE):
                        raise
                    self._pause(loop, sock, resume)
                    return
                self._handle_connection(connection, address)  # (TCPServer's: TLS, then handle_stream)

        def resume() -> None:
            if not removed:
                loop.add_handler(sock, accept, IOLoop.READ)

        def remove() -> None:
            nonlocal removed
            removed = True
            loop.remove_handler(sock)

        loop.add_handler(sock, accept, IOLoop.READ)
        return remove

    def _pause(self, loop, sock, resume) -> None:
        self.stats["paused"] += 1
        loop.remove_handler(sock)
        loop.call_later(ACCEPT_PAUSE, resume)
        now = time.monotonic()
        if now - self._warned_at >= WARN_EVERY:
            self._warned_at = now
            self.warn(
                f"ipyrecorder: warning: out of file descriptors ({descriptor_limit()} allowed, "
                f"{len(self._connections)} connections open): not accepting connections for {ACCEPT_PAUSE:g} s; "
                "raise the limit with `ulimit -n`"
            )
