"""Rich renderings of states, events and diffs. Recorded data is always plain ``Text``.

Every string taken from a log goes through :func:`devtools.sanitize.visible` (control and bidi
characters made visible) and is handed to Rich as ``Text``, never as markup; styles are ours.
"""

from __future__ import annotations

from typing import Any

from rich.console import Group, RenderableType
from rich.text import Text
from rich.tree import Tree

from devtools.jsonutil import dumps
from devtools.sanitize import visible
from replayer.diff import OLD, split_pointer

MAX_VALUE = 120
MAX_CHILDREN = 200
STYLES = {"add": "green", "remove": "red", "replace": "yellow"}


def value_text(value: Any, limit: int = MAX_VALUE) -> str:
    """A value as compact, visible JSON, cut to ``limit`` characters."""
    try:
        text = dumps(value).decode("utf-8", "replace")
    except TypeError:
        text = repr(value)
    text = visible(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _lookup(doc: Any, tokens: list[str]) -> tuple[bool, Any]:
    for token in tokens:
        if isinstance(doc, dict) and token in doc:
            doc = doc[token]
        elif isinstance(doc, list) and token.isdigit() and int(token) < len(doc):
            doc = doc[int(token)]
        else:
            return False, None
    return True, doc


def patch_tree(patch: list[dict[str, Any]], before: Any = None, *, title: str = "diff") -> Tree:
    """The patch as a tree of paths, each leaf ``old → new``.

    The old value is the one the operation carries (``diff(a, b, with_old=True)``), else it is
    looked up in ``before`` as it was (exact for ``replace`` and ``remove`` except a run of
    removes from one list, which name the same index).
    """
    root = Tree(Text(title, style="bold"))
    if not patch:
        root.add(Text("no difference", style="dim"))
        return root
    nodes: dict[tuple[str, ...], Tree] = {(): root}
    for op in patch:
        tokens = split_pointer(op["path"])
        for depth in range(1, len(tokens)):
            key = tuple(tokens[:depth])
            if key not in nodes:
                nodes[key] = nodes[key[:-1]].add(Text(visible(tokens[depth - 1]), style="bold"))
        parent = nodes[tuple(tokens[:-1])] if tokens else root
        label = Text(visible(tokens[-1]) if tokens else "(root)", style="bold")
        label.append(": ")
        kind = op["op"]
        found, old = (True, op[OLD]) if OLD in op else _lookup(before, tokens)
        if kind == "add":
            label.append("+ ", style="green")
            label.append(value_text(op["value"]), style="green")
        elif kind == "remove":
            label.append("- ", style="red")
            label.append(value_text(old) if found else "(removed)", style="red")
        else:
            label.append(value_text(old) if found else "?", style="red")
            label.append(" → ")
            label.append(value_text(op.get("value")), style="green")
        parent.add(label)
    return root


def state_tree(state: Any, *, title: str = "state", depth: int = 0, max_depth: int = 8) -> Tree:
    """The state as a tree (containers expand, scalars show as JSON)."""
    root = Tree(Text(title, style="bold"))
    _fill(root, state, 0, max_depth)
    return root


def _fill(node: Tree, value: Any, depth: int, max_depth: int) -> None:
    if isinstance(value, dict):
        items = list(value.items())
    elif isinstance(value, list | tuple):
        items = list(enumerate(value))
    else:
        node.add(Text(value_text(value)))
        return
    for i, (key, child) in enumerate(items):
        if i >= MAX_CHILDREN:
            node.add(Text(f"… {len(items) - MAX_CHILDREN} more", style="dim"))
            return
        label = Text(visible(str(key)), style="bold")
        if isinstance(child, dict | list | tuple) and child and depth < max_depth:
            sub = node.add(label)
            _fill(sub, child, depth + 1, max_depth)
        else:
            label.append(": ")
            label.append(value_text(child))
            node.add(label)


def event_text(v: int, event: Any) -> Text:
    """``v=12 order/line-removed {…}`` as plain text."""
    text = Text(f"v={v} ", style="bold")
    kind = event.get("type") if isinstance(event, dict) else None
    if isinstance(kind, str):
        text.append(visible(kind), style="cyan")
        text.append(" ")
    text.append(value_text(event, limit=400))
    return text


def stack(*parts: RenderableType) -> Group:
    return Group(*parts)
