"""A log's text reaches a terminal inertly (issue 15): a corpus of escape sequences in every kind
of text a log holds (names, functions, marks, output, errors, hosts, the file's own name), through
every command that prints it, in a real pseudo-terminal."""

import json
import re

import pytest

from ipyrecorder.status import ExitStatus

from .helpers import at, hostile_log, run_in_pty, write_sample

# What a hostile text would do to a terminal that obeyed it; short ones first, so that a command
# that cuts long text (query's table) still shows them.
CORPUS = {
    "clear screen (CSI)": "\x1b[2J",
    "8-bit CSI (C1)": "\x9b31m",
    "bell, NUL, backspace, carriage return, DEL": "\x07\x00\x08\r\x7f",
    "right-to-left override": "\u202e",
    "rich markup": "[/][link=http://evil.example/]x[/link]",
    "window title (OSC)": "\x1b]0;owned\x07",
    "hyperlink (OSC 8)": "\x1b]8;;http://evil.example/\x1b\\click\x1b]8;;\x1b\\",
    "8-bit OSC (C1)": "\x9d0;owned\x9c",
}
EVIL = "".join(CORPUS.values())
SHOWN = ["\\x1b[2J", "\\x9b31m", "\\x07\\x00\\x08\\x0d\\x7f", "\\u202e", "[/][link=http://evil.example/]x[/link]"]
# A file name cannot hold NUL or '/'
EVIL_NAME = "\x1b[2J\x9b31m\x07\x08\r\x7f\u202e[bold][link=x]"

# What may reach the terminal raw: the colours rich itself writes, and the pty's line ends
OWN_CODES = re.compile(r"\x1b\[[0-9;]*m|\r\n")
RAW = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def evil_log(path):
    """Hostile text everywhere: a failed task, a running one and a mark (``hostile_log``), and an engine
    on a hostile host whose task printed it."""
    hostile_log(
        path,
        EVIL,
        EVIL,
        extra=[
            {"kind": "engine_info", "t": at(0), "engine_id": 0, "host": EVIL, "pid": 7},
            *(
                {"kind": stream, "msg_id": "h_1_0", "t": at(0.1), "text": EVIL + "\n"}
                for stream in ("stdout", "stderr")
            ),
        ],
    )


@pytest.fixture(scope="module")
def evil_path(tmp_path_factory):
    path = tmp_path_factory.mktemp("evil") / f"{EVIL_NAME}.mpk"
    evil_log(path)
    return str(path)


def assert_inert(output: bytes):
    text = output.decode("utf-8")
    raw = RAW.findall(OWN_CODES.sub("", text))
    assert not raw, f"raw control characters reached the terminal: {sorted(set(raw))!r}\n{text[-3000:]}"
    return OWN_CODES.sub(lambda m: "\n" if m.group() == "\r\n" else "", text)


COMMANDS = {
    "info": ["info"],
    "query": ["query", "-k", "name,function,error"],
    "query csv": ["query", "-f", "csv", "-k", "name,error"],
    "failures": ["failures"],
    "watch": ["watch", "--once"],
    "replay csv": ["replay", "--sink", "csv", "-o", "-"],
    "replay json": ["replay", "--sink", "json", "-o", "-"],
    "cat": ["cat"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_a_log_s_text_reaches_a_terminal_inertly(evil_path, command):
    status, output = run_in_pty([*COMMANDS[command], evil_path], columns=400)
    shown = assert_inert(output)
    assert status == ExitStatus.OK, shown
    if command in ("replay json", "cat"):  # JSON: escaped as JSON escapes it
        assert "\\u001b[2J" in shown and "\\u009b31m" in shown
    else:
        missing = [s for s in SHOWN if s not in shown]
        assert not missing, f"not shown visibly: {missing}\n{shown[-3000:]}"


def test_replay_to_a_terminal_writes_a_file_and_binary_never_reaches_it(tmp_path):
    """Without -o, the json a pipe would take goes to LOG's name when stdout is a terminal."""
    log = tmp_path / "run.mpk"
    write_sample(log)
    status, output = run_in_pty(["replay", str(log)])
    shown = assert_inert(output)
    assert status == ExitStatus.OK and shown.strip() == f"wrote {tmp_path / 'run.json'}", shown
    assert json.loads((tmp_path / "run.json").read_text())["summary"]["tasks"] == 3
    status, output = run_in_pty(["replay", str(log), "--sink", "matplotlib", "-o", "-"])
    shown = assert_inert(output)
    assert status == ExitStatus.USAGE and "binary" in shown and "\x89PNG" not in shown, shown


def test_check_names_a_hostile_file_inertly(evil_path):
    status, output = run_in_pty(["check", evil_path])
    shown = assert_inert(output)
    assert status == ExitStatus.OK and "\\x1b[2J\\x9b31m\\x07\\x08\\x0d\\x7f\\u202e[bold][link=x].mpk: " in shown


@pytest.mark.parametrize(
    "args, status",
    [
        (["info", f"missing-{EVIL_NAME}.mpk"], ExitStatus.NO_FILE),
        (["replay", "--sink", EVIL_NAME, "{log}"], ExitStatus.USAGE),
        (["replay", "--sink", "csv", "-O", f"{EVIL_NAME}=1", "{log}"], ExitStatus.USAGE),
        (["query", "-q", '{"\\u001b[2J\\u009b31m": 1}', "{log}"], ExitStatus.USAGE),
    ],
    ids=["missing file", "unknown sink", "unknown option", "unknown query key"],
)
def test_an_error_quoting_a_name_is_inert(evil_path, args, status):
    code, output = run_in_pty([evil_path if a == "{log}" else a for a in args])
    shown = assert_inert(output)
    assert code == status and "ipyrecorder: error: " in shown and "\\x1b[2J\\x9b31m" in shown, shown
