"""How states, tasks and engines show in a notebook (``display.py``), the live progress of
``viewers/notebook.py``, and the magics' errors, in a real IPython shell."""

import re

import pytest

import ipyrecorder
from ipyrecorder.display import engine_html, state_html, task_html
from ipyrecorder.tail import LogTail

from .helpers import hostile_log, rich_log


def inert(text):
    assert "<script" not in text and "\x1b" not in text and "\x07" not in text and "<i>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b]0;title\\x07" in text


def test_a_state_shows_inertly_with_failures_first(tmp_path):
    path = tmp_path / "hostile.mpk"
    hostile_log(path)
    state = ipyrecorder.replay(path)
    text = state_html(state)
    inert(text)
    assert text.index("1 error") < text.index("1 running") < text.index("1 pending")
    assert "1 failed attempt(s)" in text and "<summary>traceback</summary>" in text
    assert re.search(r"<rect x='\d+' y='0' width='\d+' height='\d+' fill='#d62728'/>", text)  # the failure's bar
    assert repr(state) == "<State: 3 tasks (1 error, 1 running, 1 pending) on 2 engine(s) over 0.300 s>"
    task = state.tasks["h_1_0"]
    inert(task_html(task))
    assert "\x1b" not in repr(task) and repr(task).startswith("<Task h_1_0 '<script>")
    assert state.counts_by_function() == {"f<i>": {"error": 1, "running": 1, "pending": 1}}
    engine = engine_html(state.engines[0], 0.3)
    assert "<td>engine 0</td>" in engine and "<td>80%</td>" in engine  # 0.24 s busy of the 0.3 s span
    assert repr(state.engines[0]) == "<engine 0: 1 tasks, 1 errors>"


def test_the_timeline_has_a_rectangle_per_run_of_pixels_at_most(tmp_path):
    from ipyrecorder.display import TIMELINE_WIDTH, timeline_svg

    path = tmp_path / "rich.mpk"
    rich_log(path, n=3000)
    state = ipyrecorder.replay(path)
    svg = timeline_svg(state)
    assert 6 < svg.count("<rect") - 1 <= len(state.engines) * TIMELINE_WIDTH
    assert svg.count("<line") == len(state.marks)


def test_live_progress_per_function_then_the_summary(tmp_path):
    from IPython.display import HTML

    from viewers.notebook import NotebookViewer, progress_html

    path = tmp_path / "hostile.mpk"
    hostile_log(path)
    tail = LogTail(path)
    tail.poll()
    text = progress_html(tail.state, "hostile.mpk")
    inert(text.replace("f&lt;i&gt;", "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b]0;title\\x07"))
    assert re.search(r"<td>f&lt;i&gt;</td><td>.*</td><td>1</td><td>1</td><td>1</td><td[^>]*>1</td></tr>", text)
    assert "1/3 done, 1 failed" in text

    class Handle:  # what display(..., display_id=True) returns: only update() is used
        shown = []

        def update(self, obj):
            assert isinstance(obj, HTML)
            self.shown.append(obj.data)

    import threading

    done = threading.Event()
    done.set()  # the recording is written: one last read, then the summary
    NotebookViewer().follow(LogTail(path), Handle(), done)
    assert len(Handle.shown) == 1 and Handle.shown[0] == state_html(ipyrecorder.replay(path))


def test_the_magics_say_what_is_wrong_in_one_line(rc, tmp_path):
    from IPython.core.error import UsageError
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    try:
        shell.run_line_magic("load_ext", "ipyrecorder")
        shell.user_ns.update(rc=rc, other=rc.load_balanced_view(), number=3)
        with pytest.raises(UsageError, match="nothing is being recorded"):
            shell.run_line_magic("record", "stop")
        with pytest.raises(UsageError, match="'number' is not an ipyparallel Client or View"):
            shell.run_line_magic("record", "start number run.mpk")
        with pytest.raises(UsageError, match="usage: %record start"):
            shell.run_line_magic("record", "begin")
        with pytest.raises(UsageError, match="too many arguments"):
            shell.run_cell_magic("record", "rc a.mpk b.mpk", "pass")
        path = tmp_path / "magic.mpk"
        shell.run_cell_magic("record", str(path), "rc[:].apply_sync(int)")  # the notebook's only client
        assert sorted(t.function for t in ipyrecorder.replay(path).tasks.values()) == ["int"] * len(rc.ids)
    finally:
        InteractiveShell.clear_instance()  # (ipyparallel finds its profiles through the shell: leave none behind)
