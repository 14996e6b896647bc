"""``html`` sink: one self-contained, offline HTML report of a run.

Summary, per-engine table, an interactive canvas timeline (zoom, pan, hover),
a searchable task table and the errors, in one file with its JS and CSS inline:
no network, no CDN, no framework. It is built for large runs: the tasks are
embedded as columns (``ipyrecorder.browser``: typed arrays, base64,
deflate-compressed by default) and the page draws only what is visible, so a
million tasks stay usable.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import os
import zlib
from importlib import resources

from ipyrecorder.browser import build_report_data, common_css, common_js, fill
from ipyrecorder.display import Report
from ipyrecorder.sink import Option, Sink, SinkError


def _template_text(name: str) -> str:
    return resources.files(__package__).joinpath("html_report", name).read_text(encoding="utf-8")


def _json_for_script(value) -> str:
    """JSON that is safe inside <script>: no '<', '>' or '&', ASCII only."""
    text = json.dumps(value, ensure_ascii=True, separators=(",", ":"), allow_nan=False, default=str)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _csp_hash(text: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode("utf-8")).digest()).decode("ascii") + "'"


def render_html(meta: dict, blob: bytes, compress: bool = True) -> str:
    """The whole page: template with CSS, JS and data inlined. ASCII only."""
    template = _template_text("report.html")
    css = common_css()
    js = common_js() + "\n" + _template_text("report.js")  # what the report shares with the dashboard, inlined
    for text, tag in ((css, "</style"), (js, "</script")):
        if tag in text.lower():  # the bundled assets must not end their own element
            raise SinkError(f"html_report asset contains {tag!r}")
    meta = dict(meta, compression="deflate" if compress else None)
    payload = zlib.compress(blob, 6) if compress else blob
    parts = {
        "TITLE": html.escape(meta["title"]).encode("ascii", "xmlcharrefreplace").decode("ascii"),
        "CSP": (
            f"default-src 'none'; script-src {_csp_hash(js)}; style-src {_csp_hash(css)}; "
            "base-uri 'none'; form-action 'none'"
        ),
        "CSS": css,
        "META": _json_for_script(meta),
        "BLOB": base64.b64encode(payload).decode("ascii"),
        "JS": js,
    }
    return fill(template, parts)


class HtmlSink(Sink):
    name = "html"
    description = "One self-contained offline HTML report: summary, engines, zoomable timeline, task search, errors."
    options = (
        Option("title", str, None, "page title (default: 'ipyrecorder report: LOG')"),
        Option("output_chars", int, 200, "characters of stdout/stderr kept per task (0: none)"),
        Option("compress", bool, True, "deflate the embedded data (needs a browser with DecompressionStream)"),
    )
    binary = False
    suffix = ".html"

    def __init__(self, **values):
        super().__init__(**values)
        chars = self.config["output_chars"]
        if not isinstance(chars, int) or chars < 0:
            raise SinkError(f"bad value for option 'output_chars': {chars!r} (0 or more)")

    def write(self, log, out):
        out.write(self.render(log.state, os.path.basename(str(log.path))))

    def report(self, state, log_name: str) -> Report:
        """The page of ``state`` to show in a notebook (``State.report``)."""
        return Report(self.render(state, log_name))

    def render(self, state, log_name: str) -> str:
        """The page of ``state``."""
        meta, blob = build_report_data(state, self.config["output_chars"], log_name, self.config["title"])
        return render_html(meta, blob, self.config["compress"])
