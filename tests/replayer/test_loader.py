"""Loading reducers from module references and file paths."""

from __future__ import annotations

import sys
import textwrap

import pytest

from devtools.errors import ReducerLoadError
from replayer.loader import load_reducer, reducer_identity, related_sources


def write(path, source):
    path.write_text(textwrap.dedent(source))
    return path


def test_loads_from_a_module_reference():
    reducer = load_reducer("json:loads")
    assert reducer('{"a": 1}') == {"a": 1}


def test_loads_dotted_attribute():
    assert load_reducer("json:JSONDecoder.decode") is __import__("json").JSONDecoder.decode


def test_loads_from_a_file_path_with_sibling_imports(tmp_path):
    write(tmp_path / "helpers_rdt_test.py", "def bump(n):\n    return n + 1\n")
    path = write(
        tmp_path / "app.py",
        """
        from helpers_rdt_test import bump

        def reducer(state, event):
            state = state or {"n": 0}
            return {"n": bump(state["n"])} if event["type"] == "inc" else state
        """,
    )
    reducer = load_reducer(f"{path}:reducer")
    assert reducer(None, {"type": "inc"}) == {"n": 1}
    assert reducer(None, {"type": "@@INIT"}) == {"n": 0}


@pytest.mark.parametrize(
    ("ref", "words"),
    [
        ("json", "must look like"),
        ("json:", "must look like"),
        ("no_such_module_rdt:reducer", "no module named 'no_such_module_rdt'"),
        ("json:no_such_attr", "has no attribute 'no_such_attr'"),
        ("json:__name__", "not callable"),
        ("missing/file.py:reducer", "no such file"),
    ],
)
def test_bad_references_are_one_clear_error(ref, words):
    with pytest.raises(ReducerLoadError) as info:
        load_reducer(ref)
    message = str(info.value)
    assert words in message
    assert "\n" not in message


def test_module_that_raises_on_import(tmp_path):
    path = write(tmp_path / "broken.py", "raise RuntimeError('boom at import')\n")
    with pytest.raises(ReducerLoadError, match="RuntimeError: boom at import"):
        load_reducer(f"{path}:reducer")


def test_module_with_syntax_error(tmp_path):
    path = write(tmp_path / "syntax.py", "def reducer(:\n")
    with pytest.raises(ReducerLoadError, match="SyntaxError"):
        load_reducer(f"{path}:reducer")


def test_identity_changes_with_the_source(tmp_path):
    path = write(tmp_path / "r1.py", "def reducer(s, e):\n    return s\n")
    first = reducer_identity(load_reducer(f"{path}:reducer"), f"{path}:reducer")
    write(path, "def reducer(s, e):\n    return s or {}\n")
    second = reducer_identity(load_reducer(f"{path}:reducer"), f"{path}:reducer")
    assert first != second


def test_identity_changes_with_a_helper_module_the_reducer_imports(tmp_path, monkeypatch):
    """Checkpoints keyed on the identity must not outlive an edit to a helper beside it."""
    folder = tmp_path / "orders_app"
    folder.mkdir()
    write(folder / "pricing.py", "def amount(e):\n    return e['by']\n")
    write(folder / "unused.py", "X = 1\n")  # never imported: not part of the reducer's code
    ref = f"{folder / 'reducer.py'}:reducer"
    write(
        folder / "reducer.py",
        """\
        from pricing import amount

        def reducer(s, e):
            return {"count": (s or {"count": 0})["count"] + amount(e)}
        """,
    )
    monkeypatch.delitem(sys.modules, "pricing", raising=False)
    first = reducer_identity(load_reducer(ref), ref)
    write(folder / "unused.py", "X = 2\n")
    assert reducer_identity(load_reducer(ref), ref) == first
    write(folder / "pricing.py", "def amount(e):\n    return 2 * e['by']\n")
    del sys.modules["pricing"]  # a new process would import the edited helper
    assert reducer_identity(load_reducer(ref), ref) != first


def test_identity_of_a_packaged_reducer_covers_its_package_but_not_libraries():
    from samples import sales_order

    names = [name for name, _ in related_sources(sys.modules["samples.sales_order"])]
    assert "sales_order.py" in names
    assert all(not name.startswith("..") for name in names)
    assert reducer_identity(sales_order.reducer) == reducer_identity(sales_order.reducer)
    assert related_sources(sys.modules["json"])  # a stdlib module still has its own file
