"""Each engine's identity and resources, sampled on the engine and published on its iopub socket.

``recording(view, path, engine_stats=0.5)`` runs ``start_sampler`` once on every engine (a
one-off task kept out of the log: at the start, and as each engine joins): it starts a daemon thread
that says who the engine is (host, pid, CPUs, memory), then every ``interval`` seconds its
process's CPU % and resident memory and the host's available memory, as iopub messages of
their own type with no parent. The client ignores them (they are no reply to anything it
sent: no result or metadata changes); the tap sees them as they are deserialised, on the
same sockets ipyparallel uses, so engines on other hosts work alike. ``stop_sampler`` ends
the thread when the recording ends (queued behind whatever the engine is running).

The two functions are sent by value (ipyparallel pickles a function's code): an engine
needs only ipyparallel and psutil (which ipyparallel requires), not ipyrecorder.
"""

from __future__ import annotations

MSG_TYPE = "ipyrecorder_engine_stats"


def start_sampler(engine_id: int, interval: float, token: str, msg_type: str = MSG_TYPE) -> int:
    """Start (or restart) this engine's sampler thread; returns its pid. Runs on the engine (its
    module's globals are not there: everything it uses is imported or passed in)."""
    import os
    import threading

    from IPython import get_ipython

    kernel = get_ipython().kernel
    samplers = kernel.__dict__.setdefault("_ipyrecorder_samplers", {})
    for stop in samplers.values():
        stop.set()
    stop = samplers[token] = threading.Event()

    def send(content):
        kernel.session.send(kernel.iopub_socket, msg_type, content={"token": token, **content}, parent={})

    def run():  # (the imports are the thread's: the set-up task returns at once, the user's tasks wait for nothing)
        import socket
        import time

        import psutil

        process = psutil.Process()
        send(
            {
                "what": "info",
                "t": time.time(),
                "engine_id": engine_id,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "cpus": psutil.cpu_count(),
                "memory": psutil.virtual_memory().total,
            }
        )
        process.cpu_percent()  # (the first reading is always 0: it starts the count)
        while not stop.wait(interval):
            try:
                with process.oneshot():
                    cpu, rss = process.cpu_percent(), process.memory_info().rss
                send(
                    {
                        "what": "sample",
                        "t": time.time(),
                        "engine_id": engine_id,
                        "cpu": cpu,
                        "rss": rss,
                        "available": psutil.virtual_memory().available,
                    }
                )
            except Exception:  # the engine is going away: nothing to report to
                return

    threading.Thread(target=run, name="ipyrecorder-engine-stats", daemon=True).start()
    return os.getpid()


def stop_sampler(token: str) -> None:
    """Stop the sampler ``start_sampler`` started with ``token``. Runs on the engine."""
    from IPython import get_ipython

    stop = get_ipython().kernel.__dict__.get("_ipyrecorder_samplers", {}).pop(token, None)
    if stop is not None:
        stop.set()
