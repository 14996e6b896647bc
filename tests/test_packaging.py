"""The distribution: plugins/ and viewers/ install as ipyrecorder.plugins/.viewers."""

import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_plain_install_ships_plugins_and_viewers(tmp_path):
    """`pip install .` (not editable) maps plugins/ and viewers/ into the package."""
    target = tmp_path / "site"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "install", "-v", "--no-deps", "--target", str(target), str(ROOT)],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "absent from the `packages` configuration" not in built.stdout + built.stderr  # the metadata is clean
    assert "License classifiers are deprecated" not in built.stdout + built.stderr
    assert (target / "ipyrecorder" / "static" / "common.js").exists()
    assert (target / "ipyrecorder" / "plugins" / "json_sink.py").exists()
    assert (target / "ipyrecorder" / "viewers" / "__init__.py").exists()
    assert (target / "ipyrecorder" / "plugins" / "html_report" / "report.js").exists()
    probe = (
        "import ipyrecorder.plugins.json_sink, ipyrecorder.plugins.csv_sink, ipyrecorder.viewers, sys;"
        "print(ipyrecorder.plugins.json_sink.__file__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(str(target))


def test_editable_install_registers_builtin_sinks_as_entry_points():
    sinks = {ep.name: ep.value for ep in entry_points(group="ipyrecorder.sinks")}
    assert sinks["json"] == "ipyrecorder.plugins.json_sink:JsonSink"
    assert sinks["csv"] == "ipyrecorder.plugins.csv_sink:CsvSink"
    import ipyrecorder.plugins

    assert Path(ipyrecorder.plugins.__file__).parent == ROOT / "plugins"


@pytest.mark.parametrize("group, doc", [("ipyrecorder.sinks", "sinks.md"), ("ipyrecorder.viewers", "viewers.md")])
def test_every_builtin_plugin_is_documented(group, doc):
    text = (ROOT / "docs" / doc).read_text()
    builtin = [ep.name for ep in entry_points(group=group) if ep.value.startswith("ipyrecorder.")]
    assert builtin
    for name in builtin:
        assert f"### `{name}`" in text, f"{name} is missing from docs/{doc}"
