"""ipyrecorder benchmarks: ``python -m benchmarks`` (or ``make bench``).

Every figure is reported as a ratio against a baseline measured in the same
run, on the same machine, so that the ratios travel between machines better
than the absolute numbers do:

1. ``overhead``  tasks/s of a real local 2-engine cluster, recorded vs not
2. ``writer``    LogWriter.append events/s vs raw ``msgpack.packb``
3. ``replay``    ``replay()`` events/s vs raw ``msgpack.Unpacker`` iteration
4. ``size``      log bytes per task vs a JSON dump of ipyparallel metadata
5. (with 1)      bytes per task of the logs recorded in the real runs of 1
6. ``tail``      latency from ``flush()`` to a live LogTail's state (file events,
                 polling) vs a bare stat+read reader woken the same way
7. ``sustained`` a follower at 10,000 events/s for 60 s: rate, lag, CPU, and its
                 RSS vs ``replay()`` of the same log in a new process
8. ``render``    matplotlib timeline of 100,000 tasks vs a bare PolyCollection;
                 html report of 100,000 and 1,000,000 tasks vs ``replay()``

docs/performance.md explains each figure and lists the measured values.
"""
