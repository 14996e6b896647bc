"""ipyrecorder benchmarks: ``python -m benchmarks`` (or ``make bench``).

Every figure is reported as a ratio against a baseline measured in the same
run, on the same machine, so that the ratios travel between machines better
than the absolute numbers do:

1. ``overhead``  tasks/s of a real local 2-engine cluster, recorded vs not
2. ``writer``    LogWriter.append events/s vs raw ``msgpack.packb``
3. ``replay``    ``replay()`` events/s vs raw ``msgpack.Unpacker`` iteration
4. ``size``      log bytes per task vs a JSON dump of ipyparallel metadata
5. (with 1)      bytes per task of the logs recorded in the real runs of 1

docs/performance.md explains each figure and lists the measured values.
"""
