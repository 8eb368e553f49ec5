"""The layout guard: who may import whom (DESIGN.md §2), and no import cycles between modules.

Every module's imports are read with ``ast`` — at the top, inside functions, and under
``TYPE_CHECKING`` alike — so a lazy import is no way around the table.

| package     | may import (of ours)                                        |
|-------------|-------------------------------------------------------------|
| ``devtools``| nothing else; only ``devtools/cli.py`` imports every package |
| ``recorder``| ``devtools``                                                |
| ``replayer``| ``devtools``; and neither ``asyncio`` nor ``sqlalchemy``    |
| ``tui``     | ``devtools``, ``replayer``                                  |
| ``samples`` | ``devtools``                                                |
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("devtools", "recorder", "replayer", "tui", "samples")
MAY_IMPORT = {
    "devtools": {"devtools"},
    "recorder": {"devtools", "recorder"},
    "replayer": {"devtools", "replayer"},
    "tui": {"devtools", "replayer", "tui"},
    "samples": {"devtools", "samples"},
}
EVERYTHING = {"devtools.cli"}
"""Modules that may import every package (the composition root)."""
BANNED = {"replayer": {"asyncio", "sqlalchemy"}}
"""Outside modules a package must not import (the replayer works over plain iterables)."""


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every import in the module, lazy ones included."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.append((sub if sub in MODULES else module, node.lineno))
    return out


IMPORTS = {name: _imports(name, path) for name, path in MODULES.items()}


def test_every_package_is_scanned():
    assert {name.split(".")[0] for name in MODULES} == set(PACKAGES)
    assert "devtools.store" in MODULES and "replayer.engine" in MODULES


@pytest.mark.parametrize("package", PACKAGES)
def test_imports_follow_the_package_table(package):
    wrong = []
    for name, imports in IMPORTS.items():
        if name.split(".")[0] != package:
            continue
        for module, line in imports:
            top = module.split(".")[0]
            ours = top in PACKAGES
            if ours and name not in EVERYTHING and top not in MAY_IMPORT[package]:
                wrong.append(f"{MODULES[name].relative_to(ROOT)}:{line}: imports {module}")
            if top in BANNED.get(package, ()):
                wrong.append(f"{MODULES[name].relative_to(ROOT)}:{line}: imports {module}")
    assert not wrong, f"{package} may import only {sorted(MAY_IMPORT[package])}:\n" + "\n".join(
        wrong
    )


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for succ in sorted(graph.get(node, ())):
            if succ not in index:
                visit(succ)
                low[node] = min(low[node], low[succ])
            elif succ in on_stack:
                low[node] = min(low[node], index[succ])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_cycles():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles_between_modules():
    graph = {
        name: {module for module, _ in imports if module in MODULES and module != name}
        for name, imports in IMPORTS.items()
    }
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" <-> ".join(c) for c in cycles)


@pytest.mark.parametrize(
    ("filename", "banned"), [("recorder/example.py", True), ("devtools/tasks.py", False)]
)
def test_ruff_bans_bare_create_task_outside_devtools_tasks(filename, banned):
    import shutil
    import subprocess
    import sys

    ruff = shutil.which("ruff", path=str(Path(sys.executable).parent)) or shutil.which("ruff")
    if ruff is None:
        pytest.skip("ruff is not installed (it comes with the dev extra)")
    source = "import asyncio\n\n\nasync def go(coro):\n    return asyncio.create_task(coro)\n"
    result = subprocess.run(
        [ruff, "check", "--no-cache", "--stdin-filename", filename, "-"],
        input=source,
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert ("TID251" in result.stdout) is banned, result.stdout + result.stderr
    assert ("devtools.tasks.spawn" in result.stdout) is banned
