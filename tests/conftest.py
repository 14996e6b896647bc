"""Shared fixtures: one real ipyparallel cluster per test session, and a headless browser."""

import glob
import os
import shutil

import pytest

from ipyrecorder.errors import LogError

from .helpers import CHROMIUM_ARGS, missing_browser, summaries_and_fold


@pytest.fixture(scope="session")
def cluster(tmp_path_factory):
    """A real local cluster of 2 engines with a short heartbeat, in a private IPYTHONDIR."""
    os.environ["IPYTHONDIR"] = str(tmp_path_factory.mktemp("ipython"))
    import ipyparallel as ipp

    cluster = ipp.Cluster(n=2, controller_args=["--HeartMonitor.period=500"], log_level=40)
    cluster.start_cluster_sync()
    yield cluster
    cluster.stop_cluster_sync()


@pytest.fixture(scope="session")
def rc(cluster):
    """A client connected to the session's cluster, waiting for its 2 engines."""
    client = cluster.connect_client_sync()
    client.wait_for_engines(2, timeout=60)
    yield client
    client.close()


@pytest.fixture
def url_file(cluster):
    """The session cluster's connection file, for clients in other processes."""
    (path,) = glob.glob(os.path.join(cluster.profile_dir, "security", "ipcontroller-*client.json"))
    return path


@pytest.fixture
def engines(rc, cluster):
    """The ids of two live engines; restores the count when a test killed one."""
    if len(rc.ids) < 2:
        cluster.start_engines_sync(n=2 - len(rc.ids))
        rc.wait_for_engines(2, timeout=60)
    return sorted(rc.ids)[-2:]


@pytest.fixture
def log_path(tmp_path):
    """Where a test records; afterwards, a log whose writer kept summaries must say in them
    what the fold says (every real recording of the suite holds ``info`` to the fold)."""
    path = tmp_path / "run.mpk"
    yield path
    if path.exists() and path.stat().st_size:
        try:
            quick, folded = summaries_and_fold(path)
        except LogError:
            return  # (a test that made it no log)
        assert quick is None or quick == folded


@pytest.fixture(scope="module")
def browser():
    missing = missing_browser()
    if missing:
        if os.environ.get("CI"):
            pytest.fail(f"{missing}: CI must run the browser tests")
        pytest.skip(missing)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()
