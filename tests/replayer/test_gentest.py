"""`rdt gen-test`: a standalone pytest file that passes now and fails when behaviour changes."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from devtools.cli import app
from devtools.store import Log
from tests.factories import event
from tests.replayer.planted import write_shop_log

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()
pytestmark = pytest.mark.timeout(120)


def _pytest(path: Path) -> subprocess.CompletedProcess:
    # no plugins: the generated file needs none (and pytest starts in a fraction of the time)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(path)],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=100,
    )


def test_generated_test_passes_now_and_fails_when_the_reducer_changes(tmp_path):
    log = write_shop_log(tmp_path / "g.rdtlog")
    clean = (ROOT / "tests/replayer/planted/clean_shop.py").read_text()
    reducer_file = tmp_path / "lib" / "shop.py"
    reducer_file.parent.mkdir()
    reducer_file.write_text(clean)
    out = tmp_path / "tests" / "test_slice.py"
    out.parent.mkdir()
    result = runner.invoke(
        app,
        [
            "gen-test",
            log,
            "--reducer",
            f"{reducer_file}:reducer",
            "--from",
            "35",
            "--to",
            "45",
            "-o",
            str(out),
        ],
    )
    assert result.exit_code == 0, result.output
    source = out.read_text()
    assert "../lib/shop.py:reducer" in source  # relative to the test file
    passed = _pytest(out)
    assert passed.returncode == 0, passed.stdout + passed.stderr

    changed = clean.replace(
        '"removed": [*state["removed"], event["sku"]]', '"removed": [event["sku"]]'
    )
    assert changed != clean
    reducer_file.write_text(changed)
    failed = _pytest(out)
    assert failed.returncode == 1
    # removals start at v=40 from an empty list, so the change first shows at v=45
    assert "after v=45 changed" in failed.stdout, failed.stdout[-3000:]


def test_recorded_strings_stay_data(tmp_path):
    """An event carrying Python-looking text is embedded as a string literal, never as code."""
    nasty = "\"\"\"'''); import os; os._exit(7) #\\x00 \u202e"
    target = tmp_path / "n.rdtlog"
    with Log.open(target, create=True) as log:
        writer = log.writer(name="nasty")
        writer.add_events(
            [event(v, "item/added", sku=nasty, price=1.5, tags=[nasty]) for v in (1, 2, 3)]
        )
        writer.close()
    result = runner.invoke(
        app,
        [
            "gen-test",
            str(target),
            "--reducer",
            "tests.replayer.planted.clean_shop:reducer",
            "--from",
            "2",
            "--to",
            "3",
        ],
    )
    assert result.exit_code == 0, result.output
    tree = ast.parse(result.stdout)
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call)]
    names = {getattr(c.func, "attr", getattr(c.func, "id", None)) for c in calls}
    assert "_exit" not in names
    out = tmp_path / "test_nasty.py"
    out.write_text(result.stdout)
    assert _pytest(out).returncode == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--from", "9", "--to", "3"], "after"), (["--from", "1", "--to", "999"], "out of range")],
)
def test_bad_ranges_are_one_line_exit_3(tmp_path, args, message):
    log = write_shop_log(tmp_path / "g.rdtlog", n=10)
    result = runner.invoke(
        app, ["gen-test", log, "--reducer", "tests.replayer.planted.clean_shop:reducer", *args]
    )
    assert result.exit_code == 3
    assert message in result.stderr and "Traceback" not in result.output
