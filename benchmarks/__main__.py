"""Benchmarks of ipyrecorder, each figure a ratio against a baseline measured in the same run.

See docs/performance.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

SECTIONS = ("overhead", "writer", "replay", "size", "tail", "sustained", "render", "serve", "scale", "memory")

# (full, quick) parameters; the full default run takes about 10 minutes on 2 cores.
PARAMS = {
    "overhead_tasks": (500, 200),  # tasks per timed run
    "overhead_pairs": (16, 3),  # rounds (baseline, hooks alone, recorded, observer) per workload
    "writer_tasks": (100_000, 20_000),  # x3 events
    "writer_repeats": (5, 3),
    "replay_events": (1_000_000, 200_000),  # events in the log
    "replay_repeats": (3, 2),
    "size_tasks": (2000, 2000),
    "tail_batches": (400, 100),  # counted batches per tail run (4 runs)
    "sustained_seconds": (60, 10),
    "render_tasks": (100_000, 100_000),
    "serve_backlog_events": (1_000_000, 200_000),
    "serve_seconds": (15.0, 5.0),
    "render_repeats": (3, 1),
    "html_big_tasks": (1_000_000, 0),  # 0: skipped
    "scale_tasks": (1_000_000, 100_000),  # a long history (10M: make bench-10m)
    "memory_tasks": (1_000_000, 100_000),  # through the recorder's translator and writer
}

OVERHEAD_TARGET = 0.98  # recorded/baseline throughput: "within 2 %"
CPU_TARGET = 1.02  # recorded/baseline client process CPU per task (issue 12)
OPEN_CLOSE_TARGET_MS = 1.0  # opening a recording, and ending its block with nothing pending (issue 12)
REPLAY_TARGET = 1_000_000  # events/s folded
TAIL_TARGET_MS = 100  # p95 latency from flush() to folded, both ways of following
SUSTAINED_RATE = 10_000  # events/s a follower keeps up with ...
SUSTAINED_MAX_LAG_MS = 1000  # ... within the tail target at p95, and never further behind than this
SUSTAINED_MEMORY = 1.2  # follower RSS (end, and growth per task) at most this times replay()'s
RENDER_TARGET_S = 3.0  # draw_timeline + savefig of 100,000 tasks


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    p.add_argument("--quick", action="store_true", help="a smaller run (about 2 minutes)")
    p.add_argument("--json", metavar="FILE", help="also save every measurement to FILE")
    p.add_argument(
        "--only", nargs="+", choices=SECTIONS, metavar="SECTION", help=f"run only these sections: {', '.join(SECTIONS)}"
    )
    p.add_argument("--pairs", type=int, help="override the number of overhead pairs")
    p.add_argument("--tasks", type=int, help="override the tasks per overhead run")
    p.add_argument("--replay-events", type=int, help="override the size of the replay log")
    p.add_argument("--sustained-seconds", type=float, help="override the length of the sustained run")
    p.add_argument("--show", metavar="FILE", help="print the table of a saved --json FILE and exit")
    return p.parse_args(argv)


# -- the table ---------------------------------------------------------------------------
def _num(x, unit=""):
    if x >= 100_000:
        s = f"{x:,.0f}"
    elif x >= 100:
        s = f"{x:.0f}"
    else:
        s = f"{x:.1f}"
    return f"{s} {unit}".rstrip()


def _mb(x) -> str:
    return f"{x / 1e6:.0f} MB"


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _ci_verdict(lo: float, hi: float, target: float) -> str:
    """Met or missed only if the whole 95 % interval says so."""
    if lo >= target:
        return "met"
    if hi < target:
        return "MISSED"
    return "inconclusive (CI spans it)"


def _ci_verdict_at_most(lo: float, hi: float, target: float) -> str:
    """Met or missed only if the whole 95 % interval says so (lower is better)."""
    if hi <= target:
        return "met"
    if lo > target:
        return "MISSED"
    return "inconclusive (CI spans it)"


def _ci95(ratio: dict) -> str:
    """A ratio's confidence interval, as the rows print it."""
    lo, hi = ratio["ci95"]
    return f"{lo:.3f}-{hi:.3f}"


def _ratios_row(label: str, first: dict, baseline: str, second: dict, detail: str, target: str = "") -> tuple:
    """A row of two ratios (medians with CI95s): the first as measured, the second as the ratio."""
    return (label, f"{first['median']:.3f}", baseline, f"{second['median']:.3f}", detail, target)


def _pairs_for(ci95, pairs: int, width: float = 0.02) -> int:
    """How many pairs would narrow a confidence interval to ``width`` (it shrinks as 1/sqrt(pairs))."""
    lo, hi = ci95
    return max(pairs, round(pairs * ((hi - lo) / width) ** 2))


def rows(results: dict) -> list[tuple]:
    out = []
    ov = results.get("overhead")
    if ov:
        for key, label in (("map", "1a overhead map_async"), ("apply", "1b overhead apply_async")):
            w = ov["workloads"][key]
            lo, hi = w["ratio_ci95"]
            pr = w["pair_ratio"]
            # Too few quiet pairs make a median that means nothing: give only the count.
            quiet = (
                f"; quiet pairs ({w['quiet_pairs']}): {w['quiet_ratio']:.3f}"
                if w["quiet_pairs"] >= 3
                else f"; quiet pairs: {w['quiet_pairs']}"
            )
            out.append(
                (
                    label,
                    _num(w["recorded_tasks_per_s"]["median"], "tasks/s"),
                    _num(w["baseline_tasks_per_s"]["median"], "tasks/s") + " unrecorded",
                    f"{w['ratio']:.3f}",
                    f"CI95 {lo:.3f}-{hi:.3f}; pairs {pr['min']:.3f}-{pr['max']:.3f}" + quiet,
                    f">= {OVERHEAD_TARGET}: " + _ci_verdict(lo, hi, OVERHEAD_TARGET),
                )
            )
        for key, label in (("map", "1c client CPU/task, map"), ("apply", "1d client CPU/task, apply")):
            w = ov["workloads"][key]
            lo, hi = w["client_cpu_ratio_ci95"]
            tlo, thi = w["total_cpu_ratio_ci95"]
            out.append(
                (
                    label,
                    _num(w["recorded_client_cpu_us_per_task"]["median"], "us"),
                    _num(w["baseline_client_cpu_us_per_task"]["median"], "us") + " unrecorded",
                    f"{w['client_cpu_ratio']:.3f}",
                    f"CI95 {lo:.3f}-{hi:.3f}; client+cluster CPU {w['total_cpu_ratio']:.3f} (CI95 {tlo:.3f}-{thi:.3f})",
                    f"<= {CPU_TARGET}: " + _ci_verdict_at_most(lo, hi, CPU_TARGET),
                )
            )
        for key, label in (("map", "1h client CPU: the floor, map"), ("apply", "1i client CPU: the floor, apply")):
            w = ov["workloads"][key]
            if "hooks_client_cpu_ratio" not in w:
                continue  # (a run saved before the floor was measured)
            hooks, over = w["hooks_client_cpu_ratio"], w["client_cpu_ratio_over_hooks"]
            detail = (
                f"hooks CI95 {_ci95(hooks)}; recorded / hooks alone CI95 {_ci95(over)}; "
                f"CI95 of 1c/1d 2 % wide needs about {_pairs_for(w['client_cpu_ratio_ci95'], ov['pairs'])} pairs"
            )
            out.append(_ratios_row(label, hooks, "hooks alone / unrecorded", over, detail))
        for key, label in (("map", "1k recorded from outside, map"), ("apply", "1k recorded from outside, apply")):
            w = ov["workloads"][key]
            if "observed_client_cpu_ratio" not in w:
                continue  # (a run saved before the observer was measured)
            client, total = w["observed_client_cpu_ratio"], w["observed_total_cpu_ratio"]
            detail = (
                f"client CPU CI95 {_ci95(client)}; client+cluster+observer CPU CI95 {_ci95(total)}; the observer's "
                f"own {w['observer_cpu_us_per_task']['median']:.0f} us/task; "
                f"tasks/s x{w['observed_tasks_per_s_ratio']['median']:.3f}"
            )
            noise = "(nothing of it in the client: its noise)"
            out.append(_ratios_row(label, client, "client CPU, observer / unrecorded", total, detail, noise))
        for key, label in (("map", "1e extra CPU by thread, map"), ("apply", "1f extra CPU by thread, apply")):
            w = ov["workloads"][key]
            if "user_cpu_us_per_task" not in w:
                continue  # (a run saved before the threads were measured apart)
            user, io, rec = (
                w[k]["median"] for k in ("user_cpu_us_per_task", "io_cpu_us_per_task", "recorder_cpu_us_per_task")
            )
            out.append(
                (
                    label,
                    _num(user + io + rec, "us/task"),
                    "",
                    "",
                    f"user's thread +{user:.1f}, IO thread +{io:.1f}, recorder thread {rec:.1f} us/task (medians); "
                    "extra collections by generation " + "/".join(f"{g:+g}" for g in w.get("extra_gc_collections", ())),
                    "",
                )
            )
        for key, label in (
            ("map", "1j recorder thread by stage, map"),
            ("apply", "1j recorder thread by stage, apply"),
        ):
            stages = ov["workloads"][key].get("stages")
            if stages is None:
                continue  # (a run saved before the stages were measured)
            parts = sorted(stages["us_per_task"].items(), key=lambda kv: -kv[1])
            out.append(
                (
                    label,
                    _num(stages["thread_us_per_task"], "us/task"),
                    "",
                    "",
                    ", ".join(f"{k} {v:.1f}" for k, v in parts)
                    + f", the rest (wake-ups, drain loop) {stages['rest_us_per_task']:.1f} us/task; "
                    f"instrumented runs, {stages['clock_read_ns'] / 1e3:.2f} us a clock read, two a call included",
                    "",
                )
            )
        idle = ov.get("idle_recording")
        if idle:  # (runs saved before it was measured have none)
            opened, ended = (idle[k]["median"] * 1e3 for k in ("open_seconds", "end_seconds"))
            out.append(
                (
                    "1g open / end an idle recording",
                    f"{opened:.2f} / {ended:.2f} ms",
                    "",
                    "",
                    f"max {idle['open_seconds']['max'] * 1e3:.2f} / {idle['end_seconds']['max'] * 1e3:.2f} ms; "
                    "the end flushes, closes and fsyncs (medians of 30)",
                    f"< {OPEN_CLOSE_TARGET_MS} ms each: "
                    + ("met" if max(opened, ended) < OPEN_CLOSE_TARGET_MS else "MISSED"),
                )
            )
    wr = results.get("writer")
    if wr:
        out.append(
            (
                "2  LogWriter.append",
                _num(wr["writer_events_per_s"], "events/s"),
                _num(wr["packb_events_per_s"], "events/s") + " packb",
                f"{wr['ratio']:.3f}",
                f"{wr['writer_us_per_event']:.2f} vs {wr['packb_us_per_event']:.2f} us/event",
                "",
            )
        )
    rp = results.get("replay")
    if rp:
        out.append(
            (
                f"3  replay() {rp['wire_events'] / 1e6:.2g}M events",
                _num(rp["replay_events_per_s"], "events/s"),
                _num(rp["unpack_events_per_s"], "events/s") + " Unpacker",
                f"{rp['ratio']:.3f}",
                f"fresh process: {_num(rp['fresh_process_events_per_s'], 'events/s')}; "
                f"read+CRC {100 * rp['share_read_verify']:.0f}% of the time",
                ">= 1M/s: "
                + _verdict(rp["replay_events_per_s"] >= REPLAY_TARGET)
                + ("" if rp["fresh_process_events_per_s"] >= REPLAY_TARGET else ", MISSED when fresh"),
            )
        )
    sz = results.get("size")
    if sz:
        out.append(
            (
                f"4  bytes/task ({sz['tasks']} synthetic)",
                _num(sz["log_bytes_per_task"], "B"),
                _num(sz["json_bytes_per_task"], "B") + " metadata JSON",
                f"{sz['ratio']:.3f}",
                f"indent=2 JSON: {sz['json_indent2_bytes_per_task']:.0f} B (ratio {sz['ratio_vs_indent2']:.3f})",
                "",
            )
        )
    if ov:
        for key, label in (("map", "5a bytes/task, real map run"), ("apply", "5b bytes/task, real apply run")):
            w = ov["workloads"][key]
            b, j = w["bytes_per_task"], w["json_bytes_per_task"]
            out.append(
                (
                    label,
                    _num(b["median"], "B"),
                    _num(j["median"], "B") + " its metadata JSON",
                    f"{b['median'] / j['median']:.3f}",
                    f"{b['min']:.1f}-{b['max']:.1f} B over {b['n']} logs",
                    "",
                )
            )
    tl = results.get("tail")
    if tl:
        for key, label in (("events", "6a tail latency, file events"), ("polling", "6b tail latency, polling")):
            r, b = tl["runs"][f"tail_{key}"], tl["runs"][f"bare_{key}"]
            how = ("" if r["follower_mode"] == key else f"; follower switched to {r['follower_mode']}!") + (
                f"; poll every {1e3 * r['poll_interval']:.0f} ms" if key == "polling" else ""
            )
            missing = f"; {r['never_folded']} batches never folded!" if r["never_folded"] else ""
            out.append(
                (
                    label,
                    f"p95 {r['p95_ms']:.1f} ms",
                    f"p95 {b['p95_ms']:.1f} ms bare stat+read",
                    f"{tl[f'ratio_{key}']:.3f}",
                    f"p50 {r['p50_ms']:.1f}, p99 {r['p99_ms']:.1f}, max {r['max_ms']:.1f} ms (bare {b['p50_ms']:.1f}, "
                    f"{b['p99_ms']:.1f}, {b['max_ms']:.1f}); "
                    f"{r['batches']} batches of ~{r['mean_batch_events']:.0f} events" + how + missing,
                    f"p95 <= {TAIL_TARGET_MS} ms: " + _verdict(r["p95_ms"] <= TAIL_TARGET_MS and not r["never_folded"]),
                )
            )
    su = results.get("sustained")
    if su:
        keeps_up = (
            su["folded_events_per_s"] >= 0.99 * SUSTAINED_RATE
            and not su["never_folded"]
            and su["latency_p95_ms"] <= TAIL_TARGET_MS
            and su["latency_max_ms"] < SUSTAINED_MAX_LAG_MS
        )
        gc_note = (
            f"; follower's full GCs: {su['gc_full_collections']}, longest {su['gc_full_max_ms']:.0f} ms"
            if "gc_full_collections" in su
            else ""
        )
        out.append(
            (
                f"7a sustained {su['seconds']:.0f} s",
                _num(su["folded_events_per_s"], "events/s") + " folded",
                _num(su["written_events_per_s"], "events/s") + " written",
                f"{su['ratio']:.3f}",
                f"lag p95 {su['latency_p95_ms']:.1f} ms, max {su['latency_max_ms']:.1f} ms / "
                f"{su['max_lag_events']} events; follower CPU {100 * su['follower_cpu_share']:.1f} % of a core, "
                f"{su['follower_us_per_event']:.1f} us/event"
                + gc_note
                + ("" if su["follower_mode"] == "events" else f"; follower switched to {su['follower_mode']}!"),
                f"{SUSTAINED_RATE:,}/s, lag p95 <= {TAIL_TARGET_MS} ms, max < {SUSTAINED_MAX_LAG_MS / 1e3:g} s: "
                + _verdict(keeps_up),
            )
        )
        bounded = (
            su["rss_ratio"] <= SUSTAINED_MEMORY
            and su["rss_slope_second_half"] <= SUSTAINED_MEMORY * su["replay_rss_per_task"]
        )
        out.append(
            (
                f"7b follower RSS, {su['tasks']:,} tasks",
                _mb(su["rss_end"]),
                _mb(su["replay_rss_after"]) + " replay() in new process",
                f"{su['rss_ratio']:.3f}",
                f"start {_mb(su['rss_start'])}, middle {_mb(su['rss_middle'])}, end {_mb(su['rss_end'])}; "
                f"{su['rss_per_task']:.0f} B/task (slope 1st/2nd half {su['rss_slope_first_half']:.0f}/"
                f"{su['rss_slope_second_half']:.0f}), replay {su['replay_rss_per_task']:.0f} B/task",
                f"<= {SUSTAINED_MEMORY}x replay: " + _verdict(bounded),
            )
        )
    rd = results.get("render")
    if rd:
        out.append(
            (
                f"8a matplotlib timeline {rd['tasks'] // 1000}k",
                f"{rd['timeline_seconds']:.2f} s",
                f"{rd['bare_seconds']:.2f} s bare PolyCollection",
                f"{rd['ratio']:.3f}",
                f"draw_timeline {rd['timeline_draw_seconds']:.2f} + savefig {rd['timeline_savefig_seconds']:.2f} s; "
                f"replay() {rd['replay_seconds']:.2f} s; CLI end to end {rd['cli_seconds']:.2f} s",
                f"< {RENDER_TARGET_S:g} s: " + _verdict(rd["timeline_seconds"] < RENDER_TARGET_S),
            )
        )
        for key, tag in (("html", "8b"), ("html_big", "8c")):
            h = rd.get(key)
            if h:
                n = h["tasks"]
                out.append(
                    (
                        f"{tag} html report {n // 1000:,}k" if n < 1_000_000 else f"{tag} html report {n / 1e6:g}M",
                        f"{h['html_seconds']:.2f} s",
                        f"{h['replay_seconds']:.2f} s replay()",
                        f"{h['ratio']:.3f}",
                        f"{h['html_bytes_per_task']:.1f} B/task ({h['html_bytes'] / 1e6:.1f} MB; "
                        f"log {h['log_bytes_per_task']:.1f} B/task); {_num(h['tasks_per_s'], 'tasks/s')}",
                        "",
                    )
                )
    if results.get("serve"):
        from . import serve

        out += serve.rows(results["serve"])
    if results.get("scale"):
        from . import scale

        out += scale.rows(results["scale"])
    if results.get("memory"):
        from . import memory

        out += memory.rows(results["memory"])
    return out


HEAD = ("figure", "measured", "baseline (same run)", "ratio", "spread / detail", "target")


def table(results: dict) -> str:
    body = rows(results)
    widths = [max(len(str(r[i])) for r in [HEAD, *body]) for i in range(len(HEAD))]
    line = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(HEAD), rule, *map(line, body)])


def header(results: dict) -> str:
    m = results["machine"]
    edits = " + local edits" if m.get("ipyrecorder_modified") else ""
    mode = "quick" if results["quick"] else "full"
    lines = [
        f"ipyrecorder benchmarks ({mode} run, {results['seconds']:.0f} s): "
        f"{m['cpus']} CPUs, Python {m['python']}, ipyparallel {m['ipyparallel']}, "
        f"msgpack {m['msgpack']}, ipyrecorder {m['commit']}{edits} [src {m['ipyrecorder_sha256']}]",
        f"load average {m['loadavg_start']} at start, {m['loadavg_end']} at end",
    ]
    ov = results.get("overhead")
    if ov:
        p = results["params"]
        foreign = [
            f for w in ov["workloads"].values() for f in (w["foreign_cores"]["median"], w["foreign_cores"]["max"])
        ]
        floor = all("hooks_client_cpu_ratio" in w for w in ov["workloads"].values())
        observer = all("observed_client_cpu_ratio" in w for w in ov["workloads"].values())
        arms = "rounds (unrecorded, hooks alone, recorded" + (", observer" if observer else "") + "; order rotating)"
        arms = arms if floor else "interleaved pairs"
        lines.append(
            f"overhead: {ov['pairs']} {arms} x "
            f"{p['overhead_tasks']} tasks per run and "
            f"workload; other processes used median {min(foreign[0::2]):.2f}-{max(foreign[0::2]):.2f}"
            f", max {max(foreign[1::2]):.2f} of the {m['cpus']} cores meanwhile "
            f"(pairs under {ov['quiet_threshold']} are 'quiet')"
        )
    loads = [f"{name} {results[name]['loadavg_start']}" for name in ("tail", "sustained", "render") if name in results]
    if loads:
        lines.append("load average at the start of " + ", ".join(loads))
    return "\n".join(lines)


def report(results: dict) -> None:
    print()
    print(header(results))
    print()
    print(table(results))


# -- running ---------------------------------------------------------------------------------
def main(argv=None) -> int:
    args = parse_args(argv)
    if args.show:
        with open(args.show) as fh:
            report(json.load(fh))
        return 0
    pick = 1 if args.quick else 0
    P = {k: v[pick] for k, v in PARAMS.items()}
    if args.pairs:
        P["overhead_pairs"] = args.pairs
    if args.tasks:
        P["overhead_tasks"] = args.tasks
    if args.replay_events:
        P["replay_events"] = args.replay_events
    if args.sustained_seconds:
        P["sustained_seconds"] = args.sustained_seconds
    sections = args.only or SECTIONS

    tmpdir = tempfile.mkdtemp(prefix="ipyrecorder-bench-")
    # Before anything imports ipyparallel: keep the cluster's profile out of ~/.ipython.
    os.environ["IPYTHONDIR"] = os.path.join(tmpdir, "ipython")
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

    from . import _util

    results = {"quick": args.quick, "params": P, "machine": _util.machine()}
    started = time.perf_counter()
    try:
        # The cluster first, while the machine is quietest; then the in-process figures.
        if "overhead" in sections:
            from . import cluster

            results["overhead"] = cluster.run(tmpdir, P["overhead_tasks"], P["overhead_pairs"])
        if "writer" in sections:
            from . import writer

            results["writer"] = writer.run(tmpdir, P["writer_tasks"], P["writer_repeats"])
        if "replay" in sections:
            from . import replay

            results["replay"] = replay.run(tmpdir, P["replay_events"], P["replay_repeats"])
        if "size" in sections:
            from . import size

            results["size"] = size.run(tmpdir, P["size_tasks"])
        if "tail" in sections:
            from . import tail

            results["tail"] = tail.run(tmpdir, P["tail_batches"])
        if "sustained" in sections:
            from . import sustained

            results["sustained"] = sustained.run(tmpdir, P["sustained_seconds"])
        if "render" in sections:
            from . import render

            results["render"] = render.run(tmpdir, P["render_tasks"], P["render_repeats"], P["html_big_tasks"] or None)
        if "serve" in sections:
            from . import serve

            results["serve"] = serve.run(tmpdir, P["serve_backlog_events"], 10_000, P["serve_seconds"])
        if "scale" in sections:
            from . import scale

            results["scale"] = scale.run(tmpdir, P["scale_tasks"])
        if "memory" in sections:
            from . import memory

            results["memory"] = memory.run(tmpdir, P["memory_tasks"])
    finally:
        shutil.rmtree(tmpdir, ignore_errors=True)
    results["seconds"] = time.perf_counter() - started
    results["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    report(results)
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)
        print(f"\nsaved to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
