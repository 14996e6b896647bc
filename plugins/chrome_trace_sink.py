"""``chrome-trace`` sink: Trace Event Format JSON for Perfetto UI and chrome://tracing.

Process 0 is the client (submissions, the busy-engines counter, marks); process
``engine id + 1`` is each engine, whose thread 0 holds the tasks it ran. Tasks
that overlap on one engine (clock jitter, retries) go to further threads, so
that slices on one track always nest. Timestamps are microseconds since the
first event of the run.
"""

from __future__ import annotations

import json

from ipyrecorder.sink import Option, Sink
from ipyrecorder.state import engine_label

CLIENT_PID = 0


def _lanes(intervals):
    """Assign each (start, end) a lane so that intervals in one lane do not overlap."""
    lane_ends: list = []
    lanes = []
    for start, end in intervals:
        for lane, lane_end in enumerate(lane_ends):
            if lane_end <= start:
                lane_ends[lane] = end
                lanes.append(lane)
                break
        else:
            lane_ends.append(end)
            lanes.append(len(lane_ends) - 1)
    return lanes


def trace_events(state) -> list:
    """The list of trace events for a folded ``State``."""
    start_us, _ = state.span_us()
    origin = start_us or 0
    host = state.headers[0].get("host", "") if state.headers else ""
    events = [
        {"ph": "M", "name": "process_name", "pid": CLIENT_PID, "tid": 0, "args": {"name": f"client {host}".strip()}},
        {"ph": "M", "name": "process_sort_index", "pid": CLIENT_PID, "tid": 0, "args": {"sort_index": -1}},
        {"ph": "M", "name": "thread_name", "pid": CLIENT_PID, "tid": 0, "args": {"name": "submissions"}},
    ]
    engine_ids = sorted(
        {e for e in state.engines if e is not None}
        | {t.engine_id for t in state.tasks.values() if t.engine_id is not None}
    )
    hosts = {key: engine.host for key, engine in state.engines.items() if engine.host}
    for engine_id in engine_ids:
        pid = engine_id + 1
        events.append(
            {
                "ph": "M",
                "name": "process_name",
                "pid": pid,
                "tid": 0,
                "args": {"name": engine_label(engine_id, hosts.get(engine_id))},
            }
        )
        events.append(
            {"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": engine_id}}
        )
    named_threads = set()

    def ts(us):
        return us - origin

    runs = {}  # engine id -> [(start, end, task)]
    for task in state.tasks.values():
        started = task.effective_start_us
        if task.engine_id is None or started is None:
            continue
        end = task.completed_us if task.completed_us is not None else started
        runs.setdefault(task.engine_id, []).append((started, max(end, started), task))

    busy_changes = []
    flow_id = 0
    placed = {}  # msg_id -> (pid, lane, start, end) of its slice, for the dependencies' flows
    for engine_id, intervals in runs.items():
        intervals.sort(key=lambda r: (r[0], r[1]))
        pid = engine_id + 1
        for (started, end, task), lane in zip(intervals, _lanes([(s, e) for s, e, _ in intervals])):
            if (pid, lane) not in named_threads:
                named_threads.add((pid, lane))
                events.append(
                    {
                        "ph": "M",
                        "name": "thread_name",
                        "pid": pid,
                        "tid": lane,
                        "args": {"name": "tasks" if lane == 0 else f"overlapping tasks {lane}"},
                    }
                )
            name = task.display_name
            args = {"msg_id": task.msg_id, "function": task.function, "status": task.status}
            if task.name:
                args["name"] = task.name
            if task.error:
                args["error"] = task.error
            if task.traceback:
                args["traceback"] = task.traceback
            for key in ("request_bytes", "reply_bytes"):
                size = getattr(task, key)
                if size is not None:
                    args[key] = size
            events.append(
                {
                    "ph": "X",
                    "name": name,
                    "cat": task.status,
                    "pid": pid,
                    "tid": lane,
                    "ts": ts(started),
                    "dur": end - started,
                    "args": args,
                }
            )
            busy_changes += [(started, 1), (end, -1)]
            placed[task.msg_id] = (pid, lane, started, end)
            if task.submitted_us is not None and task.submitted_us <= started:
                flow_id += 1
                submit = {"pid": CLIENT_PID, "tid": 0, "ts": ts(task.submitted_us)}
                events.append(
                    {
                        "ph": "X",
                        "name": f"submit {name}",
                        "cat": "submit",
                        "dur": 1,
                        **submit,
                        "args": {"msg_id": task.msg_id},
                    }
                )
                events.append(
                    {
                        "ph": "b",
                        "name": "queued",
                        "cat": "queue",
                        "id": flow_id,
                        **submit,
                        "args": {"msg_id": task.msg_id},
                    }
                )
                events.append(
                    {
                        "ph": "e",
                        "name": "queued",
                        "cat": "queue",
                        "id": flow_id,
                        "pid": CLIENT_PID,
                        "tid": 0,
                        "ts": ts(started),
                    }
                )
                events.append({"ph": "s", "name": "run", "cat": "flow", "id": flow_id, **submit})
                events.append(
                    {
                        "ph": "f",
                        "bp": "e",
                        "name": "run",
                        "cat": "flow",
                        "id": flow_id,
                        "pid": pid,
                        "tid": lane,
                        "ts": ts(started),
                    }
                )

    for task in state.tasks.values():  # each dependency: from the end of one slice to the start of the next
        waiter = placed.get(task.msg_id)
        for on, follow, _ in task.depends if waiter is not None else ():
            dep = placed.get(on)
            if dep is None:
                continue
            flow_id += 1
            name = "follows" if follow else "after"
            events.append(
                {
                    "ph": "s",
                    "name": name,
                    "cat": "dependency",
                    "id": flow_id,
                    "pid": dep[0],
                    "tid": dep[1],
                    "ts": ts(dep[3]),
                }
            )
            events.append(
                {
                    "ph": "f",
                    "bp": "e",
                    "name": name,
                    "cat": "dependency",
                    "id": flow_id,
                    "pid": waiter[0],
                    "tid": waiter[1],
                    "ts": ts(waiter[2]),
                }
            )

    busy = 0
    for t, change in sorted(busy_changes):
        busy += change
        events.append(
            {"ph": "C", "name": "busy engines", "pid": CLIENT_PID, "tid": 0, "ts": ts(t), "args": {"busy": busy}}
        )
    for engine_id, samples in state.table.samples.items():  # engine_stats: counter tracks on the engine
        for t, cpu, rss, available in samples:
            at = {"pid": engine_id + 1, "tid": 0, "ts": ts(t)}
            if rss is not None:
                args = {"resident MB": round(rss / 1e6, 1)}
                if available is not None:
                    args["host available MB"] = round(available / 1e6, 1)
                events.append({"ph": "C", "name": "memory", **at, "args": args})
            if cpu is not None:
                events.append({"ph": "C", "name": "cpu %", **at, "args": {"cpu %": cpu}})
    for mark in state.marks:
        events.append(
            {
                "ph": "i",
                "s": "g",
                "name": mark.text,
                "cat": "mark",
                "pid": CLIENT_PID,
                "tid": 0,
                "ts": ts(mark.t_us),
                "args": dict(mark.data or {}),
            }
        )
    for engine in state.engines.values():
        for what, us in (("registered", engine.registered_us), ("unregistered", engine.unregistered_us)):
            if us is not None and not (what == "registered" and engine.present_at_start):
                events.append(
                    {
                        "ph": "i",
                        "s": "p",
                        "name": f"engine {what}",
                        "cat": "engine",
                        "pid": engine.id + 1,
                        "tid": 0,
                        "ts": ts(us),
                    }
                )
    return events


class ChromeTraceSink(Sink):
    name = "chrome-trace"
    description = "Trace Event Format JSON: open the run in Perfetto UI or chrome://tracing."
    options = (Option("indent", int, 0, "spaces of indentation; 0 for compact output"),)
    suffix = ".trace.json"

    def write(self, log, out):
        doc = {"traceEvents": trace_events(log.state), "displayTimeUnit": "ms"}
        json.dump(doc, out, indent=self.config["indent"] or None, default=str)
        out.write("\n")
