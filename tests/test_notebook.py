"""docs/notebook.ipynb in a real kernel (nbclient) against the session's cluster: what it shows."""

import html
import json
import re
import shutil
from pathlib import Path

import pytest

import ipyrecorder

pytestmark = pytest.mark.cluster

NOTEBOOK = Path(__file__).parent.parent / "docs" / "notebook.ipynb"


@pytest.fixture(scope="module")
def executed(cluster, tmp_path_factory):
    """The notebook, run top to bottom in its own kernel, with the session cluster as its cluster."""
    import nbclient
    import nbformat

    (url_file,) = Path(cluster.profile_dir, "security").glob("ipcontroller-*client.json")
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    (parameters,) = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    parameters.source = f"url_file = {str(url_file)!r}"
    where = tmp_path_factory.mktemp("notebook")
    nbclient.NotebookClient(
        notebook, timeout=180, kernel_name="python3", resources={"metadata": {"path": where}}
    ).execute()
    shutil.copy(where / "notebook.mpk", where / "kept.mpk")  # (what the report and test read)
    return notebook, where


def outputs(notebook, source_start: str) -> list:
    (cell,) = [c for c in notebook.cells if c.cell_type == "code" and c.source.startswith(source_start)]
    errors = [o for o in cell.outputs if o.output_type == "error"]
    assert not errors, errors
    return cell.outputs


def shown(outputs, mime="text/html") -> str:
    return "".join(o.data[mime] for o in outputs if "data" in o and mime in o.data)


def test_the_recording_cell_ends_showing_the_run_s_summary(executed):
    notebook, where = executed
    found = outputs(notebook, "def simulate")
    (display,) = [o for o in found if o.output_type == "display_data"]  # one display, updated in place
    text = display.data["text/html"]
    assert "class='ipyrecorder'" in text and "ipyrecorder-progress" not in text  # the final summary
    state = ipyrecorder.replay(where / "kept.mpk")
    assert f"{len(state.tasks)} tasks in" in text and "41 tasks" in text
    assert "2 failed attempt(s)" in text and "ValueError: simulation 16 diverged" in text


def test_a_recording_says_it_is_written_and_shows_its_log(executed):
    notebook, _ = executed
    found = outputs(notebook, "rec  #")
    assert shown(found, "text/plain") == "<Recording of notebook.mpk: written (block exited)>"
    assert "ipyrecorder: notebook.mpk, written (block exited)" in shown(found) and "41 tasks in" in shown(found)


def test_a_state_shows_tasks_by_status_failures_timeline_and_engines_as_text(executed):
    notebook, where = executed
    text = shown(outputs(notebook, 'state = ipyrecorder.replay("notebook.mpk")'))
    assert "39 ok" in text and "2 error" in text and text.index("2 error") < text.index("39 ok")  # failures first
    assert "<svg" in text and text.count("<rect") > 3 and "<title>simulate</title>" in text  # the marks
    assert "&lt;b&gt;run 16&lt;/b&gt;" in text and "<b>run" not in text  # the hostile name stays text
    assert "<details" in text and "Traceback" in text and "<script" not in text.lower()
    for engine in ipyrecorder.replay(where / "kept.mpk").engines.values():
        assert f">{html.escape(engine.label)}</td>" in text
    plain = shown(outputs(notebook, 'state = ipyrecorder.replay("notebook.mpk")'), "text/plain")
    assert re.fullmatch(r"<State: 41 tasks \(2 error, 39 ok\) on \d+ engine\(s\) over [\d.]+ s>", plain)


def test_a_task_shows_its_error_and_traceback(executed):
    notebook, _ = executed
    found = outputs(notebook, "failed = next(")
    text = shown(found)
    assert "ValueError: simulation 16 diverged" in text and "<summary>traceback</summary>" in text
    assert "&lt;b&gt;run 16&lt;/b&gt;" in text
    assert shown(found, "text/plain").startswith("<Task ") and "error on engine" in shown(found, "text/plain")


def test_plot_report_and_dataframe_show_inline(executed):
    notebook, _ = executed
    assert "image/png" in outputs(notebook, "state.plot()")[0].data
    report = shown(outputs(notebook, "state.report()"))
    assert report.startswith("<iframe srcdoc=") and "sandbox='allow-scripts'" in report
    assert "simulate" in shown(outputs(notebook, "frame = state.to_dataframe()"))


def test_the_magics_record_beside_px(executed):
    notebook, where = executed
    counts = json.loads(shown(outputs(notebook, "[len(ipyrecorder.replay(path)"), "text/plain"))
    magic = ipyrecorder.replay(where / "magic.mpk")
    functions = [task.function for task in magic.tasks.values()]
    engines = len(magic.engines)
    assert counts[0] == len(magic.tasks) == 3 * engines  # two %px executes and one apply, on each engine
    assert functions.count("execute") == 2 * engines and functions.count("simulate") == engines
    assert counts[1] == 4 and all(
        t.function == "simulate" for t in ipyrecorder.replay(where / "lines.mpk").tasks.values()
    )


def test_serve_shows_its_link_with_its_token_and_stops(executed):
    notebook, _ = executed
    link = shown(outputs(notebook, 'dash = ipyrecorder.serve("notebook.mpk")'))
    assert "?token=" in link and "(running" in link
    assert shown(outputs(notebook, "import urllib.request"), "text/plain") == "200"
    assert "(stopped)" in shown(outputs(notebook, "dash.stop()"))
