"""``ipyrecorder.serve(path)``: the live dashboard (the ``web`` viewer) from Python or a notebook
cell, served from a thread of its own so that the cell returns at once.

It always has a token (the URL it shows holds it): a notebook runs on machines, such as
shared login nodes, where other users can reach the loopback address too.
"""

from __future__ import annotations

import html
import threading

from .display import in_notebook
from .tail import LogTail
from .viewer import get_viewer

STOP_WAIT = 5.0  # seconds ``stop()`` waits for the server's thread


class Dashboard:
    """A dashboard serving one log, until ``stop()``."""

    def __init__(self, path, *, host="127.0.0.1", port=0, token=None, poll=False):
        viewer = get_viewer("web")(host=host, port=port, token=token or None)  # (None: a new one)
        self.path = str(path)
        self.server = viewer.server(LogTail(path), poll=poll)  # bound here: a port in use fails here
        self.url = self.server.urls()[0]
        self._thread = threading.Thread(target=self._serve, name="ipyrecorder-dashboard", daemon=True)
        self.error = None  # what stopped the server, if it failed
        self._thread.start()

    def _serve(self) -> None:
        try:
            self.server.run()
        except Exception as exc:  # (the log was removed, ...): said by ``running`` and the repr
            self.error = exc

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def stop(self) -> None:
        """Stop serving (the URL stops answering) and wait for the server's thread."""
        self.server.stop()
        self._thread.join(STOP_WAIT)

    def __repr__(self) -> str:
        state = "running; .stop() stops it" if self.running else f"stopped{f': {self.error}' if self.error else ''}"
        return f"<Dashboard of {self.path} at {self.url} ({state})>"

    def _repr_html_(self) -> str:
        state = "running: <code>.stop()</code> stops it" if self.running else "stopped"
        link = html.escape(self.url, quote=True)
        return (
            f"<div>ipyrecorder dashboard of {html.escape(self.path)}: "
            f"<a href='{link}' target='_blank' rel='noopener'>{link}</a> ({state})</div>"
        )


def serve(path, *, host="127.0.0.1", port=0, token=None, poll=False) -> Dashboard:
    """Serve the live dashboard of the log at ``path`` in the background and show its link (with
    its token: one is made unless given). ``port=0`` takes any free port. Returns the
    ``Dashboard``; ``.stop()`` stops it."""
    dashboard = Dashboard(path, host=host, port=port, token=token, poll=poll)
    if in_notebook():
        from IPython.display import display

        display(dashboard)
    else:
        print(f"ipyrecorder: serving {dashboard.path} at {dashboard.url}", flush=True)
    return dashboard
