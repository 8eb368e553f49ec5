"""No secret printed: a password in a log URL is masked in every output.

The terminal (headlines and error lines), ``--json``, the JUnit file CI uploads, the generated
test and the TUI all go through :func:`devtools.masking.mask`. The end-to-end cases run
``rdt verify`` / ``rdt gen-test`` over a real PostgreSQL log whose URL carries a password (the
test server trusts loopback, so the password is accepted and ignored).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.cli import app
from devtools.masking import mask, mask_value
from tests import factories
from tests.conftest import POSTGRES_SKIP_REASON, POSTGRES_URL

runner = CliRunner()
SECRET = "s3cret-Pw0rd"
REDUCER = str(Path(factories.__file__)) + ":counter_reducer"


def with_password(url: str) -> str:
    """``url`` with ``SECRET`` as its password (``scheme://user@`` → ``scheme://user:SECRET@``)."""
    return re.sub(r"://([^:/@]+)@", rf"://\1:{SECRET}@", url, count=1)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        (
            "postgresql+psycopg://user:secret@db:5432/x",
            "postgresql+psycopg://user:***@db:5432/x",
        ),
        (
            "cannot open mysql://root:p%40ss@h/db: refused",
            "cannot open mysql://root:***@h/db: refused",
        ),
        (
            "postgresql://h/db?user=u&password=hunter2&x=1",
            "postgresql://h/db?user=u&password=***&x=1",
        ),
        ("host=h password=hunter2 dbname=d", "host=h password=*** dbname=d"),
        ("Authorization: Bearer abc.def-ghi", "Authorization: Bearer ***"),
        (
            "ws://127.0.0.1:8765/ and a@b.c and user@host",
            "ws://127.0.0.1:8765/ and a@b.c and user@host",
        ),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
    ],
)
def test_mask_hides_passwords_and_keeps_the_rest(text, shown):
    assert mask(text) == shown


def test_mask_value_walks_json():
    value = {"log": "pg://u:pw@h/d", "list": ["pg://u:pw@h/d", 1], "n": 2}
    assert mask_value(value) == {"log": "pg://u:***@h/d", "list": ["pg://u:***@h/d", 1], "n": 2}


def test_an_error_line_never_shows_the_password():
    # Nothing listens on port 1: the store cannot open and says so, with the URL.
    url = f"postgresql+psycopg://user:{SECRET}@127.0.0.1:1/db?connect_timeout=2"
    in_query = f"postgresql+psycopg://user@127.0.0.1:1/db?connect_timeout=2&password={SECRET}"
    for args in (["ls", url], ["verify", url, "--reducer", REDUCER], ["log", url, "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 3, (args, result.output)
        assert SECRET not in result.output and SECRET not in (result.stderr or "")
        assert "user:***@127.0.0.1:1" in result.stderr
    result = runner.invoke(app, ["ls", in_query])
    assert result.exit_code == 3 and SECRET not in result.stderr
    assert "password=***" in result.stderr


def test_the_tui_shows_the_masked_url(sqlite_log):
    from tui.app import RdtApp
    from tui.launch import replay_app

    factories.write_log(sqlite_log, events=3)
    first, log = replay_app(sqlite_log)
    try:
        shown = RdtApp(first.timeline, name=f"ws://u:{SECRET}@h:1/").log_name
    finally:
        log.close()
    assert SECRET not in shown and "u:***@h:1" in shown


@pytest.fixture
def pg_log_with_password(postgres_log) -> str:
    factories.write_log(postgres_log, events=10, snapshots=(0, 10))
    return with_password(postgres_log)


@pytest.mark.skipif(not POSTGRES_URL, reason=POSTGRES_SKIP_REASON)
def test_verify_terminal_json_and_junit_mask_the_password(pg_log_with_password, tmp_path):
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "def reducer(state, ev):\n"
        "    state = state or {'count': 0}\n"
        "    return {**state, 'count': state['count'] + 1000}\n"
    )
    junit = tmp_path / "junit.xml"
    url = pg_log_with_password
    text = runner.invoke(
        app, ["verify", url, "--reducer", f"{wrong}:reducer", "--junit", str(junit)]
    )
    assert text.exit_code == 1, text.output
    assert SECRET not in text.output and ":***@" in text.output
    body = junit.read_text()
    assert SECRET not in body and ":***@" in body
    as_json = runner.invoke(app, ["verify", url, "--reducer", f"{wrong}:reducer", "--json"])
    assert as_json.exit_code == 1
    assert SECRET not in as_json.stdout
    assert json.loads(as_json.stdout.splitlines()[0])["ok"] is False


@pytest.mark.skipif(not POSTGRES_URL, reason=POSTGRES_SKIP_REASON)
def test_gen_test_embeds_the_masked_url(pg_log_with_password, tmp_path):
    out = tmp_path / "test_slice.py"
    result = runner.invoke(
        app,
        [
            "gen-test",
            pg_log_with_password,
            "--reducer",
            REDUCER,
            "--from",
            "2",
            "--to",
            "5",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    source = out.read_text()
    assert SECRET not in source and ":***@" in source
    assert SECRET not in result.output
