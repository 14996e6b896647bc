"""ipyparallel's own tests, with a recording on every Client (see ipp_under_recording.py).

None of their tests may break, every task their clients finished must have its
completion in the log, no recording's close may wait out its timeout, and the
summaries the writer kept must say what the fold says.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SUITES = [
    "ipyparallel.tests.test_view",
    "ipyparallel.tests.test_view_broadcast",
    "ipyparallel.tests.test_lbview",
    "ipyparallel.tests.test_asyncresult",
]
ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.timeout(1200)
def test_ipyparallels_own_tests_pass_under_recording(tmp_path):
    env = {**os.environ, "IPYRECORDER_SUITE_LOGS": str(tmp_path), "PYTHONPATH": str(ROOT)}
    env.pop("IPYTHONDIR", None)  # their fixtures make their own
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "tests.ipp_under_recording",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            "--timeout",
            "300",
            "--pyargs",
            *SUITES,
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1100,
    )
    tail = "\n".join(run.stdout.splitlines()[-30:]) + run.stderr[-2000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert run.returncode == 0, tail
    assert summary["problems"] == [], tail
    assert summary["clients"] >= 20 and summary["checked"] >= 500, summary  # the suite really was recorded
    assert summary["summed"] >= summary["clients"] // 2, summary  # most logs have the writer's summary
    assert " passed" in run.stdout and " failed" not in run.stdout, tail
