"""The html sink: one offline page, checked as bytes and in a real headless Chromium.

The browser tests drive Debian's chromium (/usr/bin/chromium) with Playwright's
Python package; no browser is downloaded. Without chromium or Playwright they
skip, except when the CI environment variable is set: then they fail, so that CI
cannot pass without running them.
"""

import base64
import json
import re
import time
import zlib
from array import array
from datetime import timedelta
from pathlib import Path

import pytest

import ipyrecorder
from ipyrecorder.cli import ExitStatus, main
from ipyrecorder.sink import Log

from .helpers import ARTIFACTS, T0, Page, rich_log, sweep_log, write_sample

ROOT = Path(__file__).resolve().parents[1]
XSS = (
    "<script>window.__xss=1</script>",
    '<img src=x onerror="window.__xss=1">',
    "</script><script>window.__xss=1</script>",
)
COLOURS = {"work": (0x1F, 0x77, 0xB4), "error": (0xD6, 0x27, 0x28)}  # colour_of("work"); errors


def report(log_path, out=None, *options):
    """Run the sink through the CLI; return the page's text."""
    out = out or Path(log_path).with_suffix(".html")
    args = ["replay", str(log_path), "--sink", "html", "-o", str(out)]
    for option in options:
        args += ["-O", option]
    assert main(args) == 0
    return Path(out).read_text(encoding="ascii")


def embedded(page_text):
    """(meta, blob bytes) as the page's script reads them."""
    meta_text = re.search(r'<script type="application/json" id="ipyr-meta">(.*?)</script>', page_text, re.S).group(1)
    meta = json.loads(meta_text)
    blob = re.search(r'<script type="application/octet-stream" id="ipyr-blob">(.*?)</script>', page_text, re.S).group(1)
    data = base64.b64decode(blob)
    return meta, zlib.decompress(data) if meta["compression"] == "deflate" else data


def decoded(meta, blob):
    """A reference decoder of the columns (docs/sinks.md): name -> list of ints or None."""
    out = {}
    for name in ("start", "end", "sub", "recv", "row", "status", "fn", "name", "mp", "ms", "bytes_in", "bytes_out"):
        dtype, offset, count, transform = meta["columns"][name]
        code = {"u1": "B", "u2": "H", "u4": "I", "i4": "i", "f8": "d"}[dtype]
        width = array(code).itemsize
        planes = blob[offset : offset + count * width]
        data = bytes(planes[k * count + i] for i in range(count) for k in range(width))
        values = [None if v in (meta["int32_missing"], float("nan")) or v != v else int(v) for v in array(code, data)]
        if transform == "delta":
            total = 0
            for i, v in enumerate(values):
                if v is not None:
                    total += v
                    values[i] = total
        elif transform:
            refs = out[transform.split(":")[1]]
            values = [v if v is None or r is None else v + r for v, r in zip(values, refs)]
        out[name] = values
    return lambda name: out[name]


def xss_log(path):
    """Every user-controlled text carries script: names, output, errors, marks, functions, msg_ids."""
    with ipyrecorder.open_log(path, "w") as log:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": XSS[2], "present": True})
        for i, payload in enumerate(XSS):
            msg_id = f"x{i}_{i}" if i else f"{XSS[0]}_{i}"
            t = T0 + timedelta(seconds=i)
            log.append({"kind": "submit", "msg_id": msg_id, "t": t, "function": f"f{i}{payload}"})
            log.append({"kind": "stdout", "msg_id": msg_id, "t": t, "text": f"out {payload}\n"})
            log.append({"kind": "stderr", "msg_id": msg_id, "t": t, "text": f"err {payload}\n"})
            log.append(
                {
                    "kind": "complete",
                    "msg_id": msg_id,
                    "status": "error",
                    "engine_id": 0,
                    "started": t + timedelta(milliseconds=10),
                    "completed": t + timedelta(milliseconds=700),
                    "ename": "RuntimeError",
                    "evalue": payload,
                    "traceback": f"Traceback\n  {payload}\nRuntimeError: {payload}",
                }
            )
            log.append({"kind": "label", "msg_id": msg_id, "name": payload})
            log.append({"kind": "mark", "t": t, "text": payload, "data": {"html": payload}})


def million_log(path, n, engines=16):
    """n tasks written straight through open_log (no cluster), one complete event each (fast):
    1 ms apart per engine, 0.8 ms each, every 10007th failing; marks a fraction of a pixel apart."""
    header = {"kind": "header", "format": "ipyrecorder", "version": 1, "t0": T0, "host": "bighost"}
    base = T0.timestamp()
    with ipyrecorder.open_log(path, "w", header=header) as log:
        append = log.append
        for e in range(engines):
            append({"kind": "engine_register", "t": base, "engine_id": e, "present": True})
        for k in range(3):  # labels too long for the room between them
            append({"kind": "mark", "t": base + k * 0.001, "text": f"phase {k} " * 20})
        for i in range(n):
            t = base + (i // engines) * 0.001
            append(
                {
                    "kind": "complete",
                    "msg_id": f"s_1_{i}",
                    "status": "error" if i % 10007 == 3 else "ok",
                    "started": t + 0.0001,
                    "completed": t + 0.0009,
                    "engine_id": i % engines,
                }
            )


# -- the file itself (no browser) -----------------------------------------------------------------
def test_default_output_is_one_ascii_file_with_everything_inline(tmp_path):
    write_sample(tmp_path / "run.mpk")
    assert main(["replay", str(tmp_path / "run.mpk"), "--sink", "html"]) == 0
    page = (tmp_path / "run.html").read_bytes().decode("ascii")  # ASCII whatever the locale
    assert page.startswith("<!DOCTYPE html>")
    assert not re.search(r"<(link|img|iframe|object|embed)\b", page, re.I)
    assert not re.search(r"<script\b[^>]*\bsrc\s*=", page, re.I)
    assert "http://" not in page and "https://" not in page and "@import" not in page
    assert page.count("<script") == 3 and page.count("</script>") == 3
    assert "default-src 'none'" in page  # CSP: no network, only the page's own hashed script and style


def test_embedded_columns_match_the_state(tmp_path):
    write_sample(tmp_path / "a.mpk", tasks=4)
    meta, blob = embedded(report(tmp_path / "a.mpk"))
    state = Log(tmp_path / "a.mpk").state
    origin = state.span_us()[0]

    column = decoded(meta, blob)
    text = json.loads(blob[meta["text"][0] : meta["text"][0] + meta["text"][1]])
    strings = text["strings"]
    tasks = list(state.tasks.values())
    assert meta["tasks"] == len(tasks) == 4
    assert column("start") == [t.started_us - origin for t in tasks]
    assert column("end") == [t.completed_us - origin for t in tasks]
    assert [strings[p] + str(s) for p, s in zip(column("mp"), column("ms"))] == [t.msg_id for t in tasks]
    assert [strings[k] for k in column("name")] == ["task-0", "task-1", "task-2", "task-3"]
    assert [meta["statuses"][k] for k in column("status")] == ["ok", "ok", "ok", "error"]
    assert [meta["engines"][r]["id"] for r in column("row")] == [0, 1, 0, 1]
    assert column("bytes_in") == [0, 1_200_000, 2_400_000, 3_600_000] == [t.request_bytes for t in tasks]
    assert column("bytes_out") == [100, 101, 102, None] == [t.reply_bytes for t in tasks]
    assert text["stdout"] == [[i, f"hello {i}\n"] for i in range(4)]
    assert [(i, strings[k]) for i, k in text["errors"]] == [(3, "ValueError: boom")]
    assert meta["summary"]["by_status"] == {"error": 1, "ok": 3}


def test_scripts_cannot_be_closed_by_log_text(tmp_path):
    xss_log(tmp_path / "x.mpk")
    page = report(tmp_path / "x.mpk", None, f"title={XSS[2]}")
    assert page.count("</script>") == 3 and page.count("<script") == 3
    assert "<img" not in page and "onerror=" not in page.split('id="ipyr-meta">')[0]
    meta, blob = embedded(page)
    assert meta["title"] == XSS[2] and [m["text"] for m in meta["marks"]] == list(XSS)
    assert "<title>&lt;/script&gt;&lt;script&gt;" in page


def test_options_title_output_chars_and_compress(tmp_path, capsys):
    write_sample(tmp_path / "a.mpk")
    meta, blob = embedded(
        report(tmp_path / "a.mpk", tmp_path / "b.html", "title=Nightly run", "output_chars=3", "compress=false")
    )
    text = json.loads(blob[meta["text"][0] :])
    assert meta["title"] == "Nightly run" and meta["compression"] is None
    assert text["stdout"][0] == [0, "hel"]
    meta, blob = embedded(report(tmp_path / "a.mpk", tmp_path / "c.html", "output_chars=0"))
    assert json.loads(blob[meta["text"][0] :])["stdout"] == []
    capsys.readouterr()
    status = main(["replay", str(tmp_path / "a.mpk"), "--sink", "html", "-O", "output_chars=-1"])
    err = capsys.readouterr().err
    assert status == ExitStatus.USAGE and "output_chars" in err and len(err.splitlines()) == 1


# -- in a browser ---------------------------------------------------------------------------------


@pytest.fixture
def page(browser):
    opened = Page(browser)
    yield opened
    opened.context.close()


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """write_sample with 6 tasks: task-i runs on engine i % 2 from i s + 10 ms to i s + 510 ms; task-5 fails."""
    path = tmp_path_factory.mktemp("html") / "sample.mpk"
    write_sample(path, tasks=6)
    report(path)
    return path.with_suffix(".html")


def x_of(layout, view, seconds):
    return layout["left"] + (seconds * 1e6 - view["v0"]) / (view["v1"] - view["v0"]) * layout["plotW"]


def y_of(layout, row):
    """A pixel row through the bars of engine row ``row``, above the names written on them."""
    return layout["top"] + (row + 0.5) * layout["rowH"] - layout["rowH"] * 0.25


def test_the_page_splits_msg_ids_as_python_does(page, tmp_path):
    from ipyrecorder.browser import NO_SUFFIX
    from ipyrecorder.events import split_msg_id

    write_sample(tmp_path / "a.mpk")
    report(tmp_path / "a.mpk")
    page.open(tmp_path / "a.html")
    ids = ["s_1_7", "s_1_0", "s_1_07", "s_1_", "plain", "_3", "a_4294967294", "a_4294967295", "a_1234567890123456789"]
    ids += ["a_\u0663", "\u00e9t\u00e9_12", "a_-3", "a_1e3", "a_ 4"]
    expected = []
    for msg_id in ids:
        prefix, suffix = split_msg_id(msg_id)
        whole = type(suffix) is not int or suffix >= NO_SUFFIX
        expected.append([msg_id, NO_SUFFIX] if whole else [prefix, suffix])
    got = page.js("([ids, none]) => ids.map(id => window.ipyrecorderCommon.splitMsgId(id, none))", [ids, NO_SUFFIX])
    assert got == expected


def test_report_loads_offline_without_errors(page, tmp_path):
    rich_log(tmp_path / "rich.mpk")
    report(tmp_path / "rich.mpk")
    page.open(tmp_path / "rich.html")
    assert page.js("document.getElementById('title').textContent") == "ipyrecorder report: rich.mpk"
    assert page.js("window.ipyrecorderReport.lastDraw.bars") == 600
    engines = page.page.locator("#engines-table tbody tr").all_inner_texts()
    assert len(engines) == 6 and engines[5].split("\t")[-1].startswith("left +")
    assert "ValueError: bad chunk 1" in page.page.locator("#error-groups").inner_text()
    assert page.page.locator("#task-list tbody tr").count() == 50  # paginated
    ARTIFACTS.mkdir(exist_ok=True)
    page.page.screenshot(path=str(ARTIFACTS / "html-report.png"), full_page=True)
    page.assert_clean()


def test_timeline_draws_bars_where_the_tasks_ran(page, sample):
    page.open(sample)
    view, layout = page.js("window.ipyrecorderReport.view()"), page.js("window.ipyrecorderReport.layout()")
    # The default view is the whole run: from the first submission to the last reply (5 s + 520 ms).
    assert (view["v0"], view["v1"]) == (0, 5_520_000)
    state = Log(sample.with_suffix(".mpk")).state
    work, error, white = COLOURS["work"], COLOURS["error"], (255, 255, 255)
    for i, task in enumerate(state.tasks.values()):
        row = task.engine_id  # engines 0 and 1 are rows 0 and 1
        middle = x_of(layout, view, i + 0.26)
        expected = error if task.status == "error" else work
        assert page.pixel(middle, y_of(layout, row)) == expected, f"no bar for {task.msg_id}"
        assert page.pixel(middle, y_of(layout, 1 - row)) != expected  # the other engine was idle then
    gap = x_of(layout, view, 0.75)  # between tasks on engine 0
    assert page.pixel(gap, y_of(layout, 0)) == white
    assert page.js("window.ipyrecorderReport.lastDraw.bars") == 6
    page.assert_clean()


def test_hover_shows_the_task(page, sample):
    page.open(sample)
    view, layout = page.js("window.ipyrecorderReport.view()"), page.js("window.ipyrecorderReport.layout()")
    page.hover(x_of(layout, view, 3.3), y_of(layout, 1))
    tooltip = page.page.locator("#tooltip")
    tooltip.wait_for(state="visible")
    text = tooltip.inner_text()
    assert "task-3" in text and "500 ms" in text and "sess_1_3" in text and "work" in text and "hello 3" in text
    assert re.search(r"engine\s+1", text) and re.search(r"status\s+ok", text)
    assert re.search(r"bytes in\s+3.6 MB", text) and re.search(r"bytes out\s+103 bytes", text)
    page.hover(x_of(layout, view, 5.3), y_of(layout, 1))
    page.page.wait_for_function("() => document.getElementById('tooltip').textContent.includes('task-5')")
    assert "ValueError: boom" in tooltip.inner_text()
    page.hover(x_of(layout, view, 0.75), y_of(layout, 0))  # nothing there
    tooltip.wait_for(state="hidden")
    page.assert_clean()


def test_search_filters_the_table(page, sample):
    page.open(sample)
    assert page.page.locator("#task-list tbody tr").count() == 6
    rows = page.search("task-4")
    assert len(rows) == 1 and rows[0].startswith("sess_1_4\ttask-4")
    assert [r.split("\t")[0] for r in page.search("status:error")] == ["sess_1_5"]
    assert [r.split("\t")[0] for r in page.search("engine:1")] == ["sess_1_1", "sess_1_3", "sess_1_5"]
    assert [r.split("\t")[0] for r in page.search("work engine:0 ok")] == ["sess_1_0", "sess_1_2", "sess_1_4"]
    assert [r.split("\t")[0] for r in page.search("sess_1_2")] == ["sess_1_2"]
    assert page.search("nothing-like-this") == ["No task matches."]
    assert len(page.search("")) == 6
    assert "Rows 1" in page.page.locator("#task-list .pager").inner_text()
    page.page.locator("#task-list th").filter(has_text=re.compile(r"^in\b")).click()  # the most bytes sent first
    first = page.page.locator("#task-list tbody tr").first.inner_text().split("\t")
    assert first[0] == "sess_1_5" and "6.0 MB" in first
    page.assert_clean()


def test_zoom_pan_and_reset(page, sample):
    page.open(sample)
    full = page.js("window.ipyrecorderReport.view()")
    box = page.canvas_box()
    layout = page.js("window.ipyrecorderReport.layout()")
    page.page.mouse.move(box["x"] + layout["left"] + layout["plotW"] / 2, box["y"] + y_of(layout, 0))
    page.page.mouse.wheel(0, -400)
    page.page.wait_for_function(
        "w => { const v = window.ipyrecorderReport.view(); return v.v1 - v.v0 < w * 0.8; }", arg=full["v1"] - full["v0"]
    )
    zoomed = page.js("window.ipyrecorderReport.view()")
    page.page.mouse.down()
    page.page.mouse.move(box["x"] + layout["left"] + layout["plotW"] / 2 + 200, box["y"] + y_of(layout, 0), steps=5)
    page.page.mouse.up()
    panned = page.js("window.ipyrecorderReport.view()")
    assert panned["v0"] < zoomed["v0"] and panned["v1"] - panned["v0"] == pytest.approx(zoomed["v1"] - zoomed["v0"])
    page.page.mouse.dblclick(box["x"] + layout["left"] + 50, box["y"] + y_of(layout, 0))
    page.page.wait_for_function("() => window.ipyrecorderReport.view().v0 === 0")
    assert page.js("window.ipyrecorderReport.view()") == full
    page.assert_clean()


def test_script_in_log_text_is_shown_not_run(page, tmp_path):
    xss_log(tmp_path / "x.mpk")
    report(tmp_path / "x.mpk", None, f"title={XSS[1]}")
    page.open(tmp_path / "x.html")
    xss = "() => typeof window.__xss"
    assert page.js(xss) == "undefined"
    assert page.js("document.title") == XSS[1] and page.js("document.getElementById('title').textContent") == XSS[1]
    assert page.js("document.querySelectorAll('img, iframe, object, embed').length") == 0
    assert page.js("document.scripts.length") == 3
    # The literal text is visible: table, errors, marks.
    table = page.page.locator("#task-list tbody").inner_text()
    for payload in XSS:
        assert payload in table
    assert all(payload in page.page.locator("#error-groups").inner_text() for payload in XSS)
    assert all(payload in page.page.locator("#marks-table").inner_text() for payload in XSS)
    # Each failed task's remote traceback is there, collapsed, as text.
    for where in ("#error-groups", "#error-list"):
        shown = page.js(f"Array.from(document.querySelectorAll('{where} details pre')).map(p => p.textContent)")
        assert sorted(shown) == sorted(f"Traceback\n  {p}\nRuntimeError: {p}" for p in XSS)
    # Hover each task: the tooltip shows its name, output and error as text.
    view, layout = page.js("window.ipyrecorderReport.view()"), page.js("window.ipyrecorderReport.layout()")
    for i, payload in enumerate(XSS):
        page.hover(x_of(layout, view, i + 0.3), y_of(layout, 0))
        page.page.wait_for_function(
            "p => document.getElementById('tooltip').textContent.includes('out ' + p)", arg=payload
        )
        tip = page.page.locator("#tooltip").inner_text()
        assert tip.splitlines()[0] == payload and f"err {payload}" in tip
    # Search for the payloads.
    assert len(page.search("onerror")) == 1 and len(page.search("</script>")) == 2
    assert page.search("<img")[0].split("\t")[1] == XSS[1]
    assert page.js(xss) == "undefined"
    page.assert_clean()


def test_a_million_tasks_open_and_draw(page, tmp_path):
    n = 1_000_000
    started = time.perf_counter()
    million_log(tmp_path / "big.mpk", n)
    written = time.perf_counter()
    report(tmp_path / "big.mpk")
    generated = time.perf_counter()
    size = (tmp_path / "big.html").stat().st_size
    page.open(tmp_path / "big.html", timeout=60)
    opened = time.perf_counter()
    print(
        f"\n{n} tasks: log {written - started:.1f} s, report {generated - written:.1f} s "
        f"({size / n:.1f} bytes/task), open in browser {opened - generated:.1f} s"
    )
    assert page.js("window.ipyrecorderReport.lastDraw.bars") == n
    layout = page.js("window.ipyrecorderReport.layout()")
    # Every engine row is solid with (merged) bars across the run: sample a few columns per row.
    for row in (0, 7, 15):
        for frac in (0.1, 0.5, 0.9):
            colour = page.pixel(layout["left"] + frac * layout["plotW"], y_of(layout, row))
            assert colour not in ((255, 255, 255), (0xF6, 0xF8, 0xFA)), (row, frac, colour)
    assert len(page.search("s_1_999999")) == 1
    page.assert_clean()


def odd_log(path):
    """What real logs also hold: pending, running and aborted tasks, no engine, odd msg_ids, hours-long gaps."""
    with ipyrecorder.open_log(path, "w") as log:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 3, "uuid": "u3", "present": True})
        log.append({"kind": "engine_register", "t": T0 + timedelta(seconds=2), "engine_id": 10, "uuid": "u10"})
        log.append({"kind": "submit", "msg_id": "pending-only", "t": T0, "function": "wait"})
        log.append({"kind": "submit", "msg_id": "run_007", "t": T0, "function": "spin"})
        log.append({"kind": "start", "msg_id": "run_007", "t": T0 + timedelta(seconds=1), "engine_id": 3})
        log.append({"kind": "submit", "msg_id": "gone_1", "t": T0, "function": "spin"})
        log.append({"kind": "complete", "msg_id": "gone_1", "status": "aborted"})
        log.append({"kind": "submit", "msg_id": "late_2", "t": T0 + timedelta(hours=3), "function": "spin"})
        late = T0 + timedelta(hours=3)
        log.append(
            {
                "kind": "complete",
                "msg_id": "late_2",
                "status": "ok",
                "engine_id": 10,
                "started": late + timedelta(seconds=1),
                "completed": late + timedelta(seconds=2),
            }
        )
        log.append({"kind": "submit", "msg_id": "fail_3", "t": T0, "function": "spin"})
        log.append(
            {
                "kind": "complete",
                "msg_id": "fail_3",
                "status": "error",
                "engine_id": 3,
                "started": T0 + timedelta(seconds=2),
                "completed": T0 + timedelta(seconds=2),
            }
        )
        log.append({"kind": "engine_unregister", "t": T0 + timedelta(hours=4), "engine_id": 3})


@pytest.mark.parametrize("kind", ["empty", "odd"])
def test_empty_and_odd_logs_render(page, tmp_path, kind):
    path = tmp_path / f"{kind}.mpk"
    if kind == "empty":
        ipyrecorder.open_log(path, "w").close()
    else:
        odd_log(path)
    meta, _ = embedded(report(path))
    page.open(path.with_suffix(".html"))
    rows = page.page.locator("#task-list tbody tr").all_inner_texts()
    if kind == "empty":
        assert rows == ["No task matches."] and page.js("window.ipyrecorderReport.lastDraw.bars") == 0
    else:
        assert meta["columns"]["start"][0] == "f8"  # hours do not fit int32 microseconds
        assert [r.split("\t")[0] for r in rows] == ["pending-only", "run_007", "gone_1", "late_2", "fail_3"]
        assert [r.split("\t")[4] for r in rows] == ["pending", "running", "aborted", "ok", "error"]
        assert page.js("window.ipyrecorderReport.lastDraw.bars") == 3  # run_007 (to the end), late_2, fail_3
        assert "(no error message)" in page.page.locator("#error-groups").inner_text()
        assert [r.split("\t")[0] for r in page.search("spin engine:10")] == ["late_2"]
        assert len(page.search("id:run_00")) == 1
    page.assert_clean()


def test_functions_have_the_same_colour_in_python_and_the_page(page, tmp_path):
    from ipyrecorder.colours import FUNCTION_PALETTE, colour_of, distinct_colours, palette_index

    write_sample(tmp_path / "a.mpk")
    report(tmp_path / "a.mpk")
    page.open(tmp_path / "a.html")
    names = ["work", "", "simulate", "post-process", "\u00e9t\u00e9 \u2713", "\U0001f600", "f" * 300, "_map"]
    in_page = page.js("names => names.map(n => window.ipyrecorderCommon.colourIndex(n))", names)
    assert in_page == [palette_index(name) for name in names]
    assert page.js("window.ipyrecorderCommon.PALETTE") == list(FUNCTION_PALETTE)
    assert colour_of("work") == FUNCTION_PALETTE[palette_index("work")]
    assert len({palette_index(f"f{i}") for i in range(100)}) == len(FUNCTION_PALETTE)  # the hash spreads names
    # functions of one picture whose hashes meet take the next free colour, in sorted order, in both
    meet = ["load", "simulate", "summarise", "work", "reduce", "f1", "f2"]
    taken = page.js(
        "names => { const t = new Set(), C = window.ipyrecorderCommon;"
        " return names.slice().sort().map(n => C.takeColour(n, t)); }",
        meet,
    )
    expected = distinct_colours(meet)
    assert [FUNCTION_PALETTE[i] for i in taken] == [expected[name] for name in sorted(meet)]
    assert len(set(expected.values())) == len(meet)  # (seven names, eight colours: none shared)


def test_dependencies_are_linked_and_the_critical_path_is_a_card(page, tmp_path):
    path = tmp_path / "dag.mpk"
    log = write_sample(path, tasks=6, close=False)
    for waiter, on, follow in ((3, 0, False), (3, 2, False), (4, 3, True)):
        log.append({"kind": "depend", "msg_id": f"sess_1_{waiter}", "on": f"sess_1_{on}", "follow": follow})
    log.close()
    report(path)
    page.open(path.with_suffix(".html"))
    cards = page.page.locator("#cards").inner_text()
    assert re.search(r"Critical path\s+1.50 s\s+3 tasks, each waiting on the one before", cards)
    assert re.search(r"Parallel efficiency\s+\d+(\.\d)?%", cards)
    view, layout = page.js("window.ipyrecorderReport.view()"), page.js("window.ipyrecorderReport.layout()")
    page.hover(x_of(layout, view, 3.3), y_of(layout, 1))  # task-3, on engine 1
    tooltip = page.page.locator("#tooltip")
    page.page.wait_for_function("() => document.getElementById('tooltip').textContent.includes('task-3')")
    text = tooltip.inner_text()
    assert re.search(r"waited on\s+task-0, task-2", text) and re.search(r"waited on by\s+task-4", text)
    # a link in the dependency colour halfway between task-2's end (engine 0) and task-3's start (engine 1)
    from ipyrecorder.colours import DEPENDENCY

    x, y = (x_of(layout, view, 2.51) + x_of(layout, view, 3.01)) / 2, layout["top"] + layout["rowH"]  # (between rows)
    near = page.js(
        """([x, y]) => { const c = document.getElementById("overlay"), d = window.devicePixelRatio || 1;
        const px = c.getContext("2d").getImageData(Math.floor((x - 3) * d), Math.floor((y - 3) * d), 7 * d, 7 * d).data;
        const found = [];
        for (let k = 0; k < px.length; k += 4) if (px[k + 3] > 200) found.push([px[k], px[k + 1], px[k + 2]]);
        return found; }""",
        [x, y],
    )
    want = tuple(int(DEPENDENCY[k : k + 2], 16) for k in (1, 3, 5))
    assert any(all(abs(a - b) <= 8 for a, b in zip(rgb, want)) for rgb in near), near[:5]
    page.assert_clean()


def test_a_sweep_reads_at_a_glance(page, tmp_path):
    """Issue 16: rows tall enough to hold names, names on bars once they are wide enough, every mark's text,
    errors grouped by exception type with examples and their tracebacks, short msg_ids."""
    report(sweep_log(tmp_path / "sweep.mpk", n=200))
    page.open(tmp_path / "sweep.html")
    layout = page.js("window.ipyrecorderReport.layout()")
    assert layout["rowH"] >= 36  # four engines on a 1400 x 900 screen
    draw = page.js("window.ipyrecorderReport.lastDraw")
    assert draw["marks"] == 4  # "setup" and "simulate" at 0 s, "summarise" and "done" half a second apart
    page.js("window.ipyrecorderReport.setView(5e6, 8e6)")  # three seconds: bars some 100 px wide
    assert page.js("window.ipyrecorderReport.lastDraw.names") > 20
    ARTIFACTS.mkdir(exist_ok=True)
    page.page.locator("#timeline").screenshot(path=str(ARTIFACTS / "report-sweep-zoomed.png"))
    groups = page.page.locator("#error-groups")
    text = groups.inner_text()
    assert "9 failed tasks, 1 kind of error" in text.lower() and text.count("ValueError: simulation") == 3
    assert page.js("document.querySelectorAll('#error-groups details pre').length") == 3  # each example's traceback
    cell = page.page.locator("#task-list tbody tr").first.locator("td").first
    assert cell.inner_text() == "s_1_0"  # short ones stay whole
    page.assert_clean()


def test_long_msg_ids_are_shortened_with_the_whole_in_the_tooltip(page, tmp_path):
    path = tmp_path / "ids.mpk"
    long_id = "5287fcdc-61bcbc355f01423e1adc1e3d_4987_12"
    with ipyrecorder.open_log(path, "w") as log:
        log.append({"kind": "submit", "msg_id": long_id, "t": T0, "function": "f"})
    report(path)
    page.open(tmp_path / "ids.html")
    cell = page.page.locator("#task-list tbody tr").first.locator("td").first
    assert cell.inner_text() == "\u2026" + long_id[-12:] and cell.get_attribute("title") == long_id
    page.assert_clean()


def test_the_legend_lists_the_functions_whose_colour_a_bar_shows(page, tmp_path):
    path = tmp_path / "legend.mpk"
    with ipyrecorder.open_log(path, "w") as log:
        for i, (function, status) in enumerate([("f", "ok"), ("g", "error"), ("h", None)]):
            t = T0 + timedelta(seconds=i)
            log.append({"kind": "submit", "msg_id": f"l_{i}", "t": t, "function": function})
            if status:
                log.append({"kind": "start", "msg_id": f"l_{i}", "t": t, "engine_id": 0})
                end = t + timedelta(seconds=0.5)
                log.append({"kind": "complete", "msg_id": f"l_{i}", "status": status, "started": t, "completed": end})
    report(path)
    page.open(tmp_path / "legend.html")
    legend = page.page.locator("#legend").inner_text()
    assert "f" in legend.split() and "g" not in legend.split() and "h" not in legend.split()  # g's is red, h never ran
    page.assert_clean()
