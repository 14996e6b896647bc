"""The benchmarks' own code runs (their figures are measured by ``python -m benchmarks``, not here)."""

import collections

from benchmarks import cluster, memory


def test_the_memory_benchmark_sends_its_tasks_through_the_recorders_path(tmp_path):
    result = memory.run(str(tmp_path), 2000)  # (it checks the log it wrote holds every task, ok)
    assert result["tasks"] == 2000 and result["in_flight"] == 0 and result["tally_runs"] == 1
    (row,) = memory.rows(result)
    assert row[0] == "11 recorder memory, 2,000 tasks" and "B/task" in row[1]


def test_the_stage_clock_times_each_record_kind_and_write_then_puts_the_recorder_back(tmp_path):
    from ipyrecorder.log import LogWriter
    from ipyrecorder.translate import Translator

    process, flush = Translator.process, LogWriter.flush
    stages, calls = collections.Counter(), collections.Counter()
    with cluster._stage_clock(stages, calls):
        memory._drive(500, memory.now_us(), str(tmp_path / "staged.mpk"))
    assert (Translator.process, LogWriter.flush) == (process, flush)
    assert {k: calls[k] for k in ("submit", "iopub", "reply", "output")} == dict.fromkeys(
        ("submit", "iopub", "reply", "output"), 500
    )
    assert calls["write"] >= 4 and all(stages[k] > 0 for k in calls)


def test_the_observer_arm_records_the_run_from_another_process(tmp_path, monkeypatch):
    """Figure 1k's arm: ``ipyrecorder record`` in its own process sees every task (a cluster of its own)."""
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    bench = cluster.Bench(str(tmp_path), 20)
    try:
        observed = bench.run("map", "observed")  # (raises unless the observer's log holds all 20, ok, closed)
        baseline = bench.run("map", "baseline")
    finally:
        bench.stop()
    assert observed["observer_cpu_us_per_task"] > 0 and "observer_cpu_us_per_task" not in baseline
    assert (
        observed["total_cpu_us_per_task"] >= observed["client_cpu_us_per_task"] + observed["observer_cpu_us_per_task"]
    )
    assert not list(tmp_path.glob("run*.mpk"))  # each run's log checked and removed
