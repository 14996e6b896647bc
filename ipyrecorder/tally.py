"""A segment's summary, kept by the writer as it writes: what ``info`` says without folding the log.

The writer folds each frame it writes into a ``Tally`` (``LogWriter.flush``),
which holds only the tasks in flight, the runs of msg_ids the segment named
and running totals, and writes its ``summary()`` into the segment's close
event (docs/format.md, section 6.11), with the number and a digest of the
frames it sums up (``seal``). ``read_summary`` adds up the summaries of a log
whose segments all closed, whose frames all check out and are the ones their
summary sums up, and whose segments name no task twice; for anything else
``info`` folds the log. The
tally follows the fold's rules (``state.py``) for what a summary shows; a
segment that does what a summary cannot follow (a task completed twice, too
many scattered msg_ids) gets no summary. ``tests/test_tally.py`` holds every
summary to the fold.
"""

from __future__ import annotations

import bisect
import zlib
from itertools import repeat

from . import clocks, critical
from . import events as ev
from .msgids import MsgIds
from .table import error_text

OK = ev.STATUS_CODES["ok"]
# What a tally holds at most besides the tasks in flight; past it the segment gets no summary.
MAX_RANGES = 1 << 16  # runs of consecutive msg_id suffixes (ipyparallel's are a counter)
MAX_ALONE = 1 << 12  # msg_ids with no numeric suffix
MAX_MARKS = 1 << 12
MAX_REGISTERED = 1 << 14
MAX_FAILURES = 1 << 12  # failed completions remembered, for an attempt's error that comes after its reply
LISTED = 5  # the slowest tasks and the first failed ones a summary names (``info``)
UNKNOWN = object()  # a resubmission's function, when its task completed in an earlier frame (no summary)


def _fields(kind: str, *keys) -> tuple:
    """The column of each of ``keys`` in a kind's columns."""
    return tuple(position - 1 for position in ev.KIND[kind].at(*keys))


# The fields the tally reads of each kind (the others it does not read: ``_frame_flights``
# counts the tasks they name).
_READ = {
    ev.SUBMIT: _fields("submit", "msg_id", "t", "request_bytes", "label", "function"),
    ev.LABEL: _fields("label", "msg_id", "name"),
    ev.START: _fields("start", "msg_id", "t", "engine_id"),
    ev.COMPLETE: _fields("complete", "msg_id", "status", "started", "completed", "received", "engine_id")
    + _fields("complete", "ename", "evalue", "reply_bytes"),
    ev.ATTEMPT_ERROR: _fields("attempt_error", "msg_id", "engine_id", "ename", "evalue"),
    ev.ENGINE_REGISTER: _fields("engine_register", "engine_id", "uuid"),
    ev.ENGINE_UNREGISTER: _fields("engine_unregister", "engine_id"),
    ev.MARK: _fields("mark", "t", "text"),
    ev.RESUBMIT: _fields("resubmit", "msg_id", "new_msg_id"),
    ev.DEPEND: _fields("depend", "msg_id"),
    ev.ENGINE_INFO: _fields("engine_info", "engine_id", "host"),
    ev.ENGINE_SAMPLE: _fields("engine_sample", "engine_id", "rss"),
}


class _Flight:
    """A task the segment named, until it completes: what its completion will need."""

    __slots__ = ("start", "engine", "submitted", "attempts", "done", "resubmitted", "name", "label", "function")

    def __init__(self):
        self.start = None  # the latest start seen, µs
        self.engine = None  # the engine of that start
        self.submitted = None  # when it was submitted, µs
        self.resubmitted = False  # a resubmission (its submission time is the Hub's reply's)
        self.attempts = None  # [(engine_id, ename, evalue)] of its failed attempts
        self.done = False  # completed in the frame being folded
        # what views call it (as the fold has them): the last label event's name (else the submission's
        # label), its ipyparallel label, its function (a resubmission's: the task it resubmits', or UNKNOWN)
        self.name = self.label = self.function = None


class Tally:
    """The running summary of one segment, folded from the frames its writer writes."""

    def __init__(self):
        self.flights: dict = {}  # msg_id -> _Flight
        self.named = MsgIds()  # every msg_id the segment named
        self.tasks = 0
        self.outcomes = [0] * len(ev.STATUSES)
        self.submitted = None  # [earliest, latest] submission, µs
        self.done = None  # the latest completion (received, else completed), µs
        self.engines: dict = {}  # engine id -> [tasks done, errors, busy µs]
        self.clocks: dict = {}  # engine id -> clocks.Bounds of its clock's offset
        self.hosts: dict = {}  # engine id -> the host its sampler last named (engine_stats)
        self.peaks: dict = {}  # engine id -> the largest resident memory its samples show
        self.registered: list = []  # [engine id, uuid] of each registration, in order
        self.marks: list = []  # [t µs, text]
        self.bytes = [0, 0]  # the requests' and the replies' sizes, added up
        self.longest = None  # [run µs, msg_id] of the longest task (ties: the smallest msg_id)
        # msg_id -> [completed, latest start, name] of the last completions without ``started``
        self.unstamped: dict = {}
        self.forgot_unstamped = False  # some such completion is no longer in ``unstamped``
        self.slowest: list = []  # [-run µs, msg_id, name] of the LISTED slowest stamped completions, sorted
        self.first_failed: list = []  # [done µs, msg_id, name, error] of the LISTED first failed tasks, sorted
        self.listed: dict = {}  # msg_id -> its entries in those lists and in ``unstamped`` (a later label renames it)
        self.failed = 0  # failed attempts of completed tasks
        self.failures: dict = {}  # msg_id -> [(engine, ename, evalue), counted apart] of the last failed completions
        self.forgot = False  # some failed completion is no longer in ``failures``
        self.lost = None  # why the segment gets no summary, once it is so
        self.frames = 0  # frames written so far, and the CRC-32 chained over their CRCs
        self.digest = 0

    # -- folding -----------------------------------------------------------------------------
    def fold(self, frame) -> None:
        """Fold the events of a ``payload.FrameBuilder`` (what the writer is about to write).
        Never raises: what it cannot follow costs the segment its summary, not the recording."""
        if self.lost is not None:
            return
        try:
            self._fold(frame)
        except _Lost as why:
            self.lose(str(why))
        except Exception as exc:  # a bug here must not stop a recording: the log is whole without it
            self.lose(f"the tally failed ({type(exc).__name__})")

    def lose(self, why: str) -> None:
        """Give up on this segment's summary (``info`` will fold it)."""
        if self.lost is None:
            self.lost = why
            self.flights = self.named = self.marks = self.registered = self.failures = None

    def seal(self, crc: int) -> None:
        """A frame of the segment was written, its payload's CRC-32 ``crc``: the summary says
        which frames it sums up (``frames`` and their ``digest``)."""
        self.frames += 1
        self.digest = zlib.crc32(crc.to_bytes(4, "big"), self.digest)

    def _fold(self, frame) -> None:
        order, msg_ids = frame.order, list(frame.tasks)
        flights = self._frame_flights(msg_ids, frame.split_tasks())  # by the frame's task index
        base = frame.base or 0
        strings = list(frame.strings)  # (a symbol field holds an index into them)
        rows = {}  # kind -> its events, as the fields ``_READ`` names
        for code in set(order):
            columns = frame.columns[code]
            read = _READ.get(code)
            rows[code] = repeat(None) if read is None else zip(repeat(code), *(columns[i] for i in read))
        engines = self.engines
        submitted, done = self.submitted, self.done
        SUBMIT, START, COMPLETE, ATTEMPT_ERROR, MARK = ev.SUBMIT, ev.START, ev.COMPLETE, ev.ATTEMPT_ERROR, ev.MARK
        try:
            for a in map(next, map(rows.__getitem__, order)):
                if a is None:
                    continue  # output, labels, resubmits, close: ``_frame_flights`` counted their tasks
                kind = a[0]
                if kind == SUBMIT:
                    _, task, t, size, label, function = a
                    flight = flights[task]
                    if flight is None or flight.done or flight.submitted is not None:
                        raise _Lost("a task submitted twice")
                    if function is not None:
                        flight.function = strings[function]
                    if label is not None:
                        flight.label = strings[label]
                        if flight.name is None:
                            flight.name = flight.label
                    if size is not None and size >= 0:  # (a negative size is not measured, as the fold reads it)
                        self.bytes[0] += size
                    t += base
                    flight.submitted = t
                    if submitted is None:
                        submitted = [t, t]
                    elif t < submitted[0]:
                        submitted[0] = t
                    elif t > submitted[1]:
                        submitted[1] = t
                elif kind == START:
                    _, task, t, engine_id = a
                    flight = flights[task]
                    if flight is not None and not flight.done:  # (a start after the completion shows
                        flight.start, flight.engine = base + t, engine_id  # only in the task's run time)
                        if engine_id is not None and engine_id not in engines:
                            engines[engine_id] = [0, 0, 0]
                    else:
                        self._late_start(msg_ids[task], base + t)
                elif kind == COMPLETE:
                    flight = flights[a[1]]
                    if flight is None or flight.done:
                        raise _Lost("a task completed twice")
                    flight.done = True
                    msg_id = msg_ids[a[1]]
                    del self.flights[msg_id]
                    last = self._complete(a, flight, base, msg_id)
                    if last is not None and (done is None or last > done):
                        done = last
                elif kind == ATTEMPT_ERROR:
                    _, task, engine_id, ename, evalue = a
                    flight = flights[task]
                    if flight is None or flight.done:
                        self._late_attempt(msg_ids[task], (engine_id, ename, evalue))
                        continue
                    if flight.attempts is None:
                        flight.attempts = []
                    flight.attempts.append((engine_id, ename, evalue))
                elif kind == ev.LABEL:
                    _, task, name = a
                    flight = flights[task]
                    if flight is not None and not flight.done:
                        flight.name = name
                    else:
                        for entry in self.listed.get(msg_ids[task], ()):
                            entry[2] = name
                elif kind == ev.RESUBMIT:
                    old, flight = flights[a[1]], flights[a[2]]
                    if flight is not None:
                        flight.resubmitted = True
                        if flight.function is None:  # (the Hub re-sends the same request)
                            flight.function = UNKNOWN if old is None else old.function
                elif kind == ev.ENGINE_SAMPLE or kind == ev.ENGINE_INFO:
                    _, engine_id, value = a
                    if engine_id not in engines:
                        engines[engine_id] = [0, 0, 0]
                    if kind == ev.ENGINE_INFO:
                        self.hosts[engine_id] = value
                    elif value is not None and value > self.peaks.get(engine_id, -1):
                        self.peaks[engine_id] = value
                elif kind == ev.DEPEND:  # (the critical path through them needs every task's)
                    raise _Lost("tasks that depend on others")
                elif kind == MARK:
                    if len(self.marks) >= MAX_MARKS:
                        raise _Lost("too many marks")
                    self.marks.append([base + a[1], a[2]])
                else:  # an engine joining or leaving
                    engine_id = a[1]
                    if engine_id not in engines:
                        engines[engine_id] = [0, 0, 0]
                    if kind == ev.ENGINE_REGISTER:
                        if len(self.registered) >= MAX_REGISTERED:
                            raise _Lost("too many engine registrations")
                        self.registered.append([engine_id, a[2]])
        finally:
            self.submitted, self.done = submitted, done

    def _frame_flights(self, msg_ids: list, pairs: list) -> list:
        """The flight of each of a frame's tasks (new ones counted), None for those that completed
        in an earlier frame."""
        flights, add, found = self.flights, self.named.add_split, []
        for msg_id, (prefix, suffix) in zip(msg_ids, pairs):
            flight = flights.get(msg_id)
            if flight is None:
                if not add(prefix, suffix):
                    found.append(None)
                    continue
                self.tasks += 1
                flight = flights[msg_id] = _Flight()
            found.append(flight)
        if self.named.run_count() > MAX_RANGES or len(self.named.alone) > MAX_ALONE:
            raise _Lost("too many msg_ids that are not a counter's")
        return found

    def _complete(self, a, flight: _Flight, base: int, msg_id: str):
        """Count a completion (the fold's rules: each time from the event, the start from the
        last start seen); returns when the client had it (received, else completed), or None."""
        _, _, status, began, ended, received, engine_id, ename, evalue, size = a
        self.outcomes[status] += 1
        if size is not None and size >= 0:
            self.bytes[1] += size
        began = flight.start if began is None else base + began
        ended = None if ended is None else base + ended
        received = None if received is None else base + received
        done = ended if received is None else received
        if engine_id is None:
            engine_id = flight.engine
        if engine_id is not None:
            totals = self.engines.get(engine_id)
            if totals is None:
                totals = self.engines[engine_id] = [0, 0, 0]
            totals[0] += 1
            if status != OK:
                totals[1] += 1
            if began is not None and ended is not None:
                totals[2] += ended - began
            if not flight.resubmitted:
                bounds = self.clocks.get(engine_id)
                if bounds is None:
                    bounds = self.clocks[engine_id] = clocks.Bounds()
                bounds.add(flight.submitted, began, ended, received)
        name = flight.name or flight.label or flight.function or msg_id
        if name is UNKNOWN:
            raise _Lost("a resubmission named by the function of a task that completed in an earlier frame")
        if a[3] is None and ended is not None:  # its run time is from the latest start, which may come later
            self.unstamped[msg_id] = entry = [ended, flight.start, name]
            self.listed.setdefault(msg_id, []).append(entry)
            if len(self.unstamped) > MAX_FAILURES:
                oldest = next(iter(self.unstamped))
                entry = self.unstamped.pop(oldest)
                self._unlist(oldest, entry)
                self._consider(oldest, *entry)
                self.forgot_unstamped = True
        else:
            self._consider(msg_id, ended, began, name)
        if status != OK:  # the first failed tasks, by when the client had them (else when they ended)
            self._list(self.first_failed, [_when(done), msg_id, name, error_text(ename, evalue)])
        # failed attempts as ``State.failures`` lists them: each attempt, and the final error
        # unless an attempt on its engine already said the same
        attempts = flight.attempts or ()
        self.failed += len(attempts)
        if status != OK:
            final = (engine_id, ename, evalue)
            counted = final not in attempts
            self.failed += counted
            self.failures[msg_id] = [final, counted]
            if len(self.failures) > MAX_FAILURES:
                del self.failures[next(iter(self.failures))]
                self.forgot = True
        return done

    def _consider(self, msg_id: str, ended, began, name) -> None:
        """A task's run time: for the critical path when no task depends on another (the longest),
        and for the slowest tasks."""
        run = _run(msg_id, ended, began)
        if run is None:
            return
        self.longest = critical.longer(self.longest, run)
        slowest = self.slowest
        if len(slowest) < LISTED or -run[0] <= slowest[-1][0]:  # (most tasks are not among them: no list made)
            self._list(slowest, [-run[0], msg_id, name])

    def _list(self, entries: list, entry: list) -> None:
        """Keep ``entry`` in ``entries`` (sorted, at most LISTED) if it is among the first."""
        if len(entries) == LISTED and entry >= entries[-1]:
            return
        bisect.insort(entries, entry)
        self.listed.setdefault(entry[1], []).append(entry)
        if len(entries) > LISTED:
            gone = entries.pop()
            self._unlist(gone[1], gone)

    def _unlist(self, msg_id: str, entry: list) -> None:
        found = self.listed.get(msg_id, [])
        found[:] = [e for e in found if e is not entry]
        if not found:
            self.listed.pop(msg_id, None)

    def _late_start(self, msg_id: str, t: int) -> None:
        """A start after its task's completion: the fold takes the task's run time from it when the
        completion had no ``started`` of its own."""
        found = self.unstamped.get(msg_id)
        if found is not None:
            found[1] = t
        elif self.forgot_unstamped:
            raise _Lost("a task started long after it completed")

    def _late_attempt(self, msg_id: str, attempt: tuple) -> None:
        """A failed attempt's error that came after its task's completion (the iopub error
        overtaken by the reply): counted as ``State.failures`` counts it."""
        failure = self.failures.get(msg_id)
        if failure is None and self.forgot:
            raise _Lost("a task failed an attempt long after it completed")
        self.failed += 1
        if failure is not None and failure[1] and attempt == failure[0]:
            self.failed -= 1  # its final error is this attempt's: counted once
            failure[1] = False

    # -- the summary -------------------------------------------------------------------------
    def _longest(self):
        """The longest task, counting the completions whose start may still have moved."""
        found = self.longest
        for msg_id, (ended, began, _) in self.unstamped.items():
            found = critical.longer(found, _run(msg_id, ended, began))
        return found

    def summary(self) -> dict | None:
        """The segment's summary (docs/format.md, section 6.11), or None if it has none."""
        if max(self.bytes) >= 2**63:
            self.lose("sizes that add up past 64 bits")  # (only a log made up has them; msgpack cannot hold it)
        if self.lost is not None:
            return None
        by_status = dict(zip(ev.STATUSES, self.outcomes))
        by_status["running"] = sum(1 for f in self.flights.values() if f.start is not None)
        by_status["pending"] = len(self.flights) - by_status["running"]
        return {
            "tasks": self.tasks,
            "by_status": {status: n for status, n in by_status.items() if n},
            "submitted": self.submitted,
            "done": self.done,
            "engines": [[engine_id, *totals] for engine_id, totals in self.engines.items()],
            "clocks": [
                [engine_id, *bounds.fields()]
                for engine_id, bounds in self.clocks.items()
                if bounds.tasks or bounds.impossible
            ],
            "registered": self.registered,
            "hosts": [[engine_id, host] for engine_id, host in self.hosts.items()],
            "peak_rss": [[engine_id, rss] for engine_id, rss in self.peaks.items()],
            "failed_attempts": self.failed + sum(len(f.attempts) for f in self.flights.values() if f.attempts),
            "bytes": self.bytes,
            "longest": self._longest(),
            "slowest": slowest_of(self.slowest, self.unstamped),
            "failed": [
                [None if when[0] else when[1], msg_id, name, error] for when, msg_id, name, error in self.first_failed
            ],
            "marks": self.marks,
            "msg_ids": [[prefix, runs.bounds()] for prefix, runs in self.named.runs.items()],
            "alone": sorted(self.named.alone),
            "frames": self.frames,
            "digest": self.digest,
        }


def _when(done) -> list:
    """The order of the first failed tasks (``failed_order``'s, as a sortable list head)."""
    return [1, 0] if done is None else [0, done]


def slowest_order(entry) -> tuple:
    """How ``[run µs, msg_id, ...]`` entries are listed: the longest first, ties to the smallest msg_id."""
    return -entry[0], entry[1]


def failed_order(entry) -> tuple:
    """How ``[done µs or None, msg_id, ...]`` entries are listed: the first done first, those with no
    time last, ties to the smallest msg_id."""
    return entry[0] is None, entry[0] or 0, entry[1]


def slowest_of(stamped: list, unstamped: dict) -> list:
    """``[[run µs, msg_id, name], ...]``: the LISTED slowest, the longest first (ties: the smallest msg_id)."""
    found = list(stamped)
    for msg_id, (ended, began, name) in unstamped.items():
        run = _run(msg_id, ended, began)
        if run is not None:
            found.append([-run[0], msg_id, name])
    return [[-neg, msg_id, name] for neg, msg_id, name in sorted(found)[:LISTED]]


def _run(msg_id: str, ended, began):
    """``[run µs, msg_id]`` of a task that ran for some time, else None."""
    if began is None or ended is None or ended <= began:
        return None
    return [ended - began, msg_id]


class _Lost(Exception):
    """A segment did what its summary cannot follow."""
