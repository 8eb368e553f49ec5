"""The CI recipe: the exact `rdt verify` command the README's workflow step runs.

Recommended step (GitHub Actions)::

    - run: >-
        rdt verify logs/*.rdtlog --reducer samples.sales_order:reducer
        --runs 2 --junit rdt-verify.xml
    - uses: actions/upload-artifact@v4
      if: always()
      with: {name: rdt-verify, path: rdt-verify.xml}

The test runs that command through a shell (so the glob expands as in CI) over sales-order
logs written with the store writer, and checks the exit code and the JUnit file.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import pytest

from devtools.canonical import state_hash
from devtools.store import Log
from tests.factories import event

RECIPE = (
    "rdt verify logs/*.rdtlog --reducer samples.sales_order:reducer --runs 2 --junit rdt-verify.xml"
)

ROOT = Path(__file__).resolve().parents[2]


def write_sales_log(target: str | Path, *, orders: int = 10, reducer=None) -> str:
    """A sales-order log (created, lines added and removed, submitted) with recorded hashes."""
    if reducer is None:
        from samples.sales_order import reducer
    events = []
    v = 0

    def add(kind: str, **fields):
        nonlocal v
        v += 1
        events.append(event(v, kind, **fields))

    for n in range(1, orders + 1):
        oid = f"o{n}"
        add("order/created", id=oid, customer=f"cust-{n % 3}")
        for line in range(3):
            add(
                "order/line-added", order=oid, sku=f"sku-{line}", qty=line + 1, price=100 * n + line
            )
        add("order/line-removed", order=oid, sku="sku-1")
        add("order/submitted" if n % 2 else "order/cancelled", order=oid)
    state = reducer(None, {"type": "@@INIT"})
    hashed = []
    for e in events:
        state = reducer(state, e.event)
        hashed.append(replace(e, hash=state_hash(state)))
    with Log.open(target, create=True) as log:
        writer = log.writer(name="sales")
        writer.add_events(hashed)
        writer.close()
    return str(target)


def _rdt() -> str:
    found = shutil.which("rdt", path=str(Path(sys.executable).parent))
    assert found, "the rdt console script is installed beside the interpreter"
    return found


@pytest.mark.timeout(120)
def test_recipe_command_passes_on_clean_logs_and_writes_junit(tmp_path):
    (tmp_path / "logs").mkdir()
    write_sales_log(tmp_path / "logs" / "orders-a.rdtlog", orders=8)
    write_sales_log(tmp_path / "logs" / "orders-b.rdtlog", orders=5)
    env = {**os.environ, "PATH": f"{Path(_rdt()).parent}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        RECIPE, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 0, done.stdout + done.stderr
    suite = ET.parse(tmp_path / "rdt-verify.xml").getroot().find("testsuite")
    cases = suite.findall("testcase")
    assert sorted(c.get("name") for c in cases) == [
        "logs/orders-a.rdtlog",
        "logs/orders-b.rdtlog",
    ]
    assert all(c.get("classname") == "rdt.verify" and c.find("failure") is None for c in cases)


@pytest.mark.timeout(120)
def test_recipe_command_fails_the_step_when_production_differs(tmp_path):
    """A log recorded by another reducer version: exit 1 and a failure in the JUnit file."""
    from tests.replayer.planted import sales_order_v0

    (tmp_path / "logs").mkdir()
    write_sales_log(tmp_path / "logs" / "old.rdtlog", orders=4, reducer=sales_order_v0.reducer)
    env = {**os.environ, "PATH": f"{Path(_rdt()).parent}{os.pathsep}{os.environ['PATH']}"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        RECIPE, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=110
    )
    assert done.returncode == 1, done.stdout + done.stderr
    case = ET.parse(tmp_path / "rdt-verify.xml").getroot().find("testsuite/testcase")
    failure = case.find("failure")
    assert failure is not None and failure.get("type") == "recorded-hash"
    assert "error[recorded-hash]" in failure.text


INSTALL = "pip install ./tools/reducer-devtools"


@pytest.mark.timeout(300)
def test_readme_install_line_installs_rdt_from_a_checkout(tmp_path):
    """The README's install step (a path to a checkout; rdt is on no package index) works."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert f"- run: {INSTALL}" in readme
    assert "pip install reducer-devtools" not in readme
    (tmp_path / "tools").mkdir()
    checkout = tmp_path / "tools" / "reducer-devtools"
    shutil.copytree(
        ROOT,
        checkout,
        ignore=shutil.ignore_patterns(".venv", ".git", "node_modules", "*.egg-info", "__pycache__"),
    )
    target = tmp_path / "site"
    command = [sys.executable, "-m", *INSTALL.split()]
    command += ["--no-deps", "--quiet", "--target", str(target)]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=280, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / "devtools" / "cli.py").is_file()
    assert (target / "bin" / "rdt").is_file()
