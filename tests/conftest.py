"""Shared fixtures: one real ipyparallel cluster per test session."""

import os
import time

import pytest


def wait_until(predicate, timeout=30.0, interval=0.02, message="condition"):
    """Poll ``predicate`` until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(interval)


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
def engines(rc, cluster):
    """The ids of two live engines; restores the count when a test killed one."""
    if len(rc.ids) < 2:
        cluster.start_engines_sync(n=2 - len(rc.ids))
        rc.wait_for_engines(2, timeout=60)
    return sorted(rc.ids)[-2:]


@pytest.fixture
def log_path(tmp_path):
    return tmp_path / "run.mpk"
