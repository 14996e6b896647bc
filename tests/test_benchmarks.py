"""The benchmarks' own code runs (their figures are measured by ``python -m benchmarks``, not here)."""

from benchmarks import memory


def test_the_memory_benchmark_sends_its_tasks_through_the_recorders_path(tmp_path):
    result = memory.run(str(tmp_path), 2000)  # (it checks the log it wrote holds every task, ok)
    assert result["tasks"] == 2000 and result["in_flight"] == 0 and result["tally_runs"] == 1
    (row,) = memory.rows(result)
    assert row[0] == "11 recorder memory, 2,000 tasks" and "B/task" in row[1]
