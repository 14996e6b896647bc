"""Every discovered sink and viewer, on the same shared logs: each must take them all.

The logs: an empty recording, one with a damaged frame, one whose every text is hostile
(escape sequences, markup, script, control characters, odd Unicode), and one with the odd
states real logs hold (pending, running, aborted, no engine). A sink writes its output and
says nothing but one-line notes; a viewer shows the log once.
"""

from datetime import timedelta

import pytest

import ipyrecorder
from ipyrecorder.cli import main
from ipyrecorder.sink import discover as discover_sinks
from ipyrecorder.viewer import discover as discover_viewers

from .helpers import T0, write_sample

HOSTILE = (
    "\x1b]0;owned\x07\x1b[2J\x1b[31mred",
    "[/]\\[bold]rich[/bold] [link=file:///etc/passwd]x[/link]",
    '<script>window.__x=1</script><img src=x onerror="1">',
    "nul\x00 bel\x07 bs\x08 cr\r del\x7f c1\x9b31m",
    "\u202eevil\u202c \U0001f600 \ufeff \u0301",
    "$\\frac{1}{$ costs $x^2$ \\",  # mathtext, for matplotlib
)


def empty_log(path):
    ipyrecorder.open_log(path, "w").close()


def damaged_log(path):
    write_sample(path, tasks=6)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def hostile_log(path):
    with ipyrecorder.open_log(path, "w") as log:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 0, "uuid": HOSTILE[0], "present": True})
        for i, text in enumerate(HOSTILE):
            msg_id, t = f"{text}_{i}", T0 + timedelta(seconds=i)
            log.append({"kind": "submit", "msg_id": msg_id, "t": t, "function": text, "label": text})
            log.append({"kind": "start", "msg_id": msg_id, "t": t, "engine_id": 0})
            log.append({"kind": "stdout", "msg_id": msg_id, "t": t, "text": text})
            log.append({"kind": "stderr", "msg_id": msg_id, "t": t, "text": text})
            log.append(
                {"kind": "complete", "msg_id": msg_id, "status": "error", "started": t, "engine_id": 0,
                 "completed": t + timedelta(milliseconds=500), "ename": text, "evalue": text, "traceback": text}
            )  # fmt: skip
            log.append({"kind": "label", "msg_id": msg_id, "name": text})
            log.append({"kind": "mark", "t": t, "text": text, "data": {text: text}})


def odd_log(path):
    with ipyrecorder.open_log(path, "w") as log:
        log.append({"kind": "engine_register", "t": T0, "engine_id": 3, "uuid": "u3", "present": True})
        log.append({"kind": "submit", "msg_id": "pending", "t": T0})
        log.append({"kind": "submit", "msg_id": "running_1", "t": T0, "function": "f"})
        log.append({"kind": "start", "msg_id": "running_1", "t": T0 + timedelta(seconds=1), "engine_id": 3})
        log.append({"kind": "submit", "msg_id": "aborted_2", "t": T0, "function": "f"})
        log.append({"kind": "complete", "msg_id": "aborted_2", "status": "aborted"})
        log.append({"kind": "submit", "msg_id": "late_3", "t": T0 + timedelta(hours=5), "function": "g"})
        log.append({"kind": "engine_unregister", "t": T0 + timedelta(hours=6), "engine_id": 3})


LOGS = {"empty": empty_log, "damaged": damaged_log, "hostile": hostile_log, "odd": odd_log}


@pytest.fixture(scope="module")
def logs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("contract")
    made = {}
    for name, build in LOGS.items():
        build(folder / f"{name}.mpk")
        made[name] = folder / f"{name}.mpk"
    return made


def _one_line_notes(err: str, warned):
    """What a command may say on stderr: one-line notes, never a traceback, nor a library's warning."""
    assert "Traceback" not in err, err
    for line in err.splitlines():
        assert line.startswith(("ipyrecorder: warning:", "wrote ")), line
    assert [str(w.message) for w in warned if not issubclass(w.category, ipyrecorder.IpyrecorderWarning)] == []


@pytest.mark.parametrize("log", sorted(LOGS))
@pytest.mark.parametrize("sink", sorted(discover_sinks()))
def test_every_sink_takes_every_shared_log(sink, log, logs, tmp_path, capfd, recwarn):
    out = tmp_path / f"out-{sink}"
    assert main(["replay", str(logs[log]), "--sink", sink, "-o", str(out)]) == 0
    _, err = capfd.readouterr()
    assert out.exists() and out.stat().st_size > 0
    _one_line_notes(err, recwarn)
    assert ("damaged region" in err) == (log == "damaged")


@pytest.mark.parametrize("log", sorted(LOGS))
@pytest.mark.parametrize("viewer", sorted(discover_viewers()))
def test_every_viewer_shows_every_shared_log_once_or_says_it_cannot(viewer, log, logs, tmp_path, capfd, recwarn):
    args = ["watch", str(logs[log]), "--viewer", viewer, "--once"]
    if viewer == "matplotlib":
        args += ["-O", f"save={tmp_path / 'view.png'}"]
    status = main(args)
    out, err = capfd.readouterr()
    if viewer == "web":  # a server has no "once": it says so in one line, with the usage status
        assert status == 2 and len(err.splitlines()) == 1 and "once" in err
        return
    if viewer == "notebook":  # a cell's display needs a notebook: it says so in one line, likewise
        assert status == 2 and len(err.splitlines()) == 1 and "Jupyter notebook" in err
        return
    assert status == 0, err
    _one_line_notes(err, recwarn)
    if viewer == "terminal":
        assert out.strip() and "\x1b]" not in out  # a status line, and no window-title escape
    else:
        assert (tmp_path / "view.png").stat().st_size > 0


def test_visible_shows_every_control_and_keeps_all_else():
    from ipyrecorder.text import visible

    assert visible("\x1b]0;t\x07 \x00\x08\x7f\x9b \u202eevil\u202c \u2066x\u2069") == (
        "\\x1b]0;t\\x07 \\x00\\x08\\x7f\\x9b \\u202eevil\\u202c \\u2066x\\u2069"
    )
    kept = "tab\there\nnew line \u00e9t\u00e9 \U0001f600 [/] <b> $x$ \\"
    assert visible(kept) == kept
