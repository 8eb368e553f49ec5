"""``rdt ls``, ``rdt log``, ``rdt export``, ``rdt import`` through the real Typer app."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from devtools import schema
from devtools.cli import app
from devtools.jsonutil import loads
from devtools.store import Log
from tests import factories as f

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def run(runner: CliRunner, *args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.mark.parametrize("command", ["ls", "log", "export", "import"])
def test_help_has_an_example(runner, command):
    result = run(runner, command, "--help")
    assert result.exit_code == 0
    assert "Example: rdt " + command in result.output


# ---- ls


def test_ls_table_and_json(runner, log_target):
    f.write_log(log_target, name="orders", messages=7, events=3, gaps=((8, 9),))
    f.write_log(log_target, name="lists", messages=2, events=1)
    result = run(runner, "ls", log_target)
    assert result.exit_code == 0, result.output
    assert "orders" in result.output and "lists" in result.output
    assert "2026-11-23 08:00:00" in result.output
    result = run(runner, "ls", log_target, "--json")
    data = json.loads(result.stdout)
    assert [(r["id"], r["name"], r["messages"], r["events"], r["gaps"]) for r in data] == [
        (1, "orders", 7, 3, 1),
        (2, "lists", 2, 1, 0),
    ]
    assert data[0]["started_ns"] == f.T0


def test_ls_shows_recorded_names_as_plain_text(runner, sqlite_log):
    f.write_log(sqlite_log, name="[bold red]evil\x1b[2J\u202e")
    result = run(runner, "ls", sqlite_log)
    assert result.exit_code == 0
    assert "\x1b" not in result.output and "\u202e" not in result.output
    squeezed = "".join(result.output.split())  # the name column may fold
    assert "[bold" in squeezed  # the markup is shown, not applied
    assert "red]evil\\x1b[2J\\u202e" in squeezed


def test_ls_of_an_empty_log(runner, sqlite_log):
    Log.open(sqlite_log, create=True).close()
    assert "no recordings" in run(runner, "ls", sqlite_log).output
    assert json.loads(run(runner, "ls", sqlite_log, "--json").stdout) == []


# ---- log


def test_log_messages_as_json_lines(runner, log_target):
    f.write_log(log_target, messages=10)
    result = run(runner, "log", log_target, "--from", "3", "--to", "5", "--json")
    assert result.exit_code == 0, result.output
    records = [loads(line) for line in result.stdout.splitlines()]
    assert [r["seq"] for r in records] == [3, 4, 5]
    assert records[0] == {
        "kind": "message",
        "seq": 3,
        "connection": 2,
        "dir": "in",
        "t_ns": f.T0 + 3000,
        "type": "counter/add",
        "data": {"type": "counter/add", "by": 3},
    }


def test_log_events_filtered_by_type_glob(runner, sqlite_log):
    extra = [f.event(v, "order/created" if v % 2 else "order/cancelled") for v in range(4, 9)]
    f.write_log(sqlite_log, events=3, extra_events=extra)
    result = run(runner, "log", sqlite_log, "--kind", "events", "--type", "order/c*d", "--json")
    assert [loads(x)["v"] for x in result.stdout.splitlines()] == [4, 5, 6, 7, 8]
    result = run(runner, "log", sqlite_log, "--kind", "events", "--type", "order/created")
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["5", "7"]
    assert all("order/created" in line for line in lines)


def test_log_shows_payloads_as_plain_text(runner, sqlite_log):
    evil = f.message(
        1, payload="[link=http://x]click[/link]\x1b]8;;http://x\x07\x9b2J", flag="not-json"
    )
    binary = f.message(2, payload=b"\x00\x01", binary=True)
    f.write_log(sqlite_log, messages=0, events=0, extra_messages=[evil, binary])
    result = run(runner, "log", sqlite_log)
    assert result.exit_code == 0, result.output
    assert "[link=http://x]click[/link]" in result.output
    for control in ("\x1b", "\x07", "\x9b"):
        assert control not in result.output
    assert "\\x1b" in result.output and "\\x9b" in result.output
    assert "<binary 2 bytes> 0001" in result.output


def test_log_of_a_named_recording(runner, sqlite_log):
    f.write_log(sqlite_log, name="a", messages=2)
    f.write_log(sqlite_log, name="b", messages=5)
    out = run(runner, "log", sqlite_log, "--recording", "a", "--json").stdout
    assert len(out.splitlines()) == 2
    out = run(runner, "log", sqlite_log, "-r", "2", "--json").stdout
    assert len(out.splitlines()) == 5


# ---- export / import


def test_export_import_round_trip_through_files(runner, tmp_path, log_target):
    f.write_log(log_target, messages=6, events=4, marks=(2,), gaps=((7, 9),))
    out = tmp_path / "a.jsonl"
    assert run(runner, "export", log_target, "-o", out).exit_code == 0
    copy = tmp_path / "copy.rdtlog"
    result = run(runner, "import", out, "--log", copy, "--name", "copy")
    assert result.exit_code == 0, result.output
    assert "imported 6 messages and 4 events into recording 1" in result.stdout
    again = run(runner, "export", copy)
    lines = out.read_bytes().splitlines()
    assert again.stdout_bytes.splitlines()[1:] == lines[1:]
    assert loads(again.stdout_bytes.splitlines()[0])["name"] == "copy"


def test_redux_export_and_import(runner, tmp_path, sqlite_log):
    f.write_log(sqlite_log, events=5, snapshots=(0, 3))
    out = tmp_path / "state.json"
    assert run(runner, "export", sqlite_log, "--format", "redux-devtools", "-o", out).exit_code == 0
    doc = json.loads(out.read_text())
    assert [a["v"] for a in json.loads(doc["payload"])] == [1, 2, 3, 4, 5]
    assert json.loads(doc["preloadedState"]) == {"count": 0}
    copy = tmp_path / "copy.rdtlog"
    result = run(runner, "import", out, "--log", copy)
    assert result.exit_code == 0, result.output
    with Log.open(copy) as log:
        reader = log.reader()
        assert reader.recording.name == "state"
        assert [e.event for e in reader.events()] == [e.event for e in f.counter_events(5)]
        assert [s.state for s in reader.snapshots()] == [{"count": 0}]


def test_import_of_a_file_the_extension_wrote(runner, tmp_path):
    from tests.devtools.test_redux import EXTENSION_FILE

    path = tmp_path / "state.json"
    path.write_text(EXTENSION_FILE)
    result = run(runner, "import", path, "--log", tmp_path / "x.rdtlog", "--name", "todos")
    assert result.exit_code == 0, result.output
    with Log.open(tmp_path / "x.rdtlog") as log:
        assert [e.type for e in log.reader("todos").events()] == ["todos/add", "todos/toggle"]


# ---- errors: one line on stderr, exit 3, no traceback


def _assert_error(result, text: str) -> None:
    assert result.exit_code == 3, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("rdt: ")
    assert text in lines[0]
    assert "Traceback" not in result.output


def test_missing_log(runner, tmp_path):
    _assert_error(run(runner, "ls", tmp_path / "nope.rdtlog"), "no such log")
    assert not (tmp_path / "nope.rdtlog").exists()


def test_unreadable_log(runner, tmp_path):
    _assert_error(run(runner, "log", tmp_path), "is a directory")


def test_not_a_log(runner, tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    _assert_error(run(runner, "ls", path), "notes.txt is not an rdt log")
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as raw:
        raw.execute("CREATE TABLE t (x)")
    _assert_error(run(runner, "export", other), "other.db is not an rdt log")


def test_newer_format(runner, sqlite_log):
    f.write_log(sqlite_log)
    with sqlite3.connect(sqlite_log) as raw:
        raw.execute("UPDATE rdt_meta SET value = '99' WHERE key = 'format'")
    _assert_error(run(runner, "ls", sqlite_log), "newer rdt (format 99); please update")


def test_unknown_recording(runner, sqlite_log):
    f.write_log(sqlite_log)
    _assert_error(run(runner, "log", sqlite_log, "-r", "nope"), "no recording 'nope' in")
    _assert_error(run(runner, "export", sqlite_log, "-r", "42"), "see rdt ls")


def test_invalid_json_import(runner, tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"kind":"recording","format":1,"name":"x"}\n{oops\n')
    _assert_error(run(runner, "import", path, "--log", tmp_path / "x.rdtlog"), "bad.jsonl:2:")
    assert not (tmp_path / "x.rdtlog").exists()  # a failed import leaves no new log (issue 12)
    path.write_text("not json at all")
    _assert_error(run(runner, "import", path, "--log", tmp_path / "x.rdtlog"), "bad.jsonl:1:")
    path.write_text('{"payload": "[{"}')
    _assert_error(
        run(runner, "import", path, "--log", tmp_path / "x.rdtlog"), "payload is not valid JSON"
    )


def test_import_of_a_newer_jsonl_format(runner, tmp_path):
    path = tmp_path / "new.jsonl"
    path.write_text(json.dumps({"kind": "recording", "format": schema.FORMAT_VERSION + 1}))
    _assert_error(run(runner, "import", path, "--log", tmp_path / "x.rdtlog"), "please update")


def test_import_of_a_missing_file(runner, tmp_path):
    _assert_error(
        run(runner, "import", tmp_path / "no.jsonl", "--log", tmp_path / "x"), "no such file"
    )


def test_export_to_an_unwritable_place(runner, tmp_path, sqlite_log):
    f.write_log(sqlite_log)
    _assert_error(
        run(runner, "export", sqlite_log, "-o", tmp_path / "no" / "x.jsonl"), "cannot write"
    )


def test_log_type_glob_is_exact_though_the_database_narrows_by_its_prefix(runner, sqlite_log):
    """LIKE's own wildcards in the prefix are escaped; SQLite's LIKE ignores ASCII case, the
    glob does not."""
    types = ["order/_x%1", "order/ax%2", "Order/_x%3", "order/_x%4", "other"]
    extra = [f.event(v, kind) for v, kind in enumerate(types, start=4)]
    f.write_log(sqlite_log, events=3, extra_events=extra)
    result = run(runner, "log", sqlite_log, "--kind", "events", "--type", "order/_x%*", "--json")
    assert [loads(x)["type"] for x in result.stdout.splitlines()] == ["order/_x%1", "order/_x%4"]
    result = run(runner, "log", sqlite_log, "--kind", "events", "--type", "[oO]rder/_x*", "--json")
    assert [loads(x)["v"] for x in result.stdout.splitlines()] == [4, 6, 7]


def test_log_shows_the_start_of_a_long_payload_and_all_of_it_with_full(runner, sqlite_log):
    big = f.message(1, payload='{"type":"sync","data":"' + "x" * 50_000 + '"}')
    f.write_log(sqlite_log, messages=0, events=0, extra_messages=[big])
    shown = run(runner, "log", sqlite_log)
    assert shown.exit_code == 0, shown.output
    assert len(shown.stdout) < 3_000
    assert "(+48,025 characters; --full shows all)" in shown.stdout  # 50,025 in all
    whole = run(runner, "log", sqlite_log, "--full")
    assert "x" * 50_000 in whole.stdout.replace("\n", "")
    records = run(runner, "log", sqlite_log, "--json")
    assert len(loads(records.stdout)["data"]["data"]) == 50_000
