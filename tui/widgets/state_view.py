"""The State tab: the state at the selected event as a tree, children built on expansion.

A new state opens with its first level expanded; stepping to another state keeps what was
expanded (by key path) and the cursor's node, where the new state still has them.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from tui.text import preview, visible

MAX_CHILDREN = 500
"""Children shown per node; the rest are summarised in one line."""


def _label(key: str, value: Any) -> Text:
    text = Text(no_wrap=True)
    text.append(visible(key), style="bold")
    if isinstance(value, dict):
        text.append(f"  {{{len(value)}}}", style="dim")
    elif isinstance(value, list):
        text.append(f"  [{len(value)}]", style="dim")
    else:
        text.append(": " + preview(value, 120))
    return text


class StateView(Tree[Any]):
    """A lazily expanded tree of a JSON state (each node's children are made when opened)."""

    DEFAULT_CSS = """
    StateView {
        height: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(Text("state", style="bold"), id=id)
        self.show_root = True
        self.state: Any = None
        self._paths: dict[int, tuple[str, ...]] = {}
        """Each node's key path from the root (by node id)."""

    def _path(self, node: TreeNode[Any]) -> tuple[str, ...]:
        return self._paths.get(int(node.id), ())

    def _view(self) -> tuple[list[tuple[str, ...]], tuple[str, ...] | None]:
        """The key paths of the expanded nodes (parents first) and of the cursor's node."""
        expanded: list[tuple[str, ...]] = []
        stack = list(self.root.children)
        while stack:
            node = stack.pop()
            if node.is_expanded:
                expanded.append(self._path(node))
                stack.extend(node.children)
        cursor = self.cursor_node
        expanded.sort(key=len)
        return expanded, (self._path(cursor) if cursor is not None else None)

    def show_state(self, state: Any, title: str = "state") -> None:
        """Show ``state``: its first level open, or what was open and the cursor kept."""
        view = self._view() if self.state is not None else None
        self.state = state
        self.clear()
        self._paths = {}
        self.root.set_label(Text(visible(title), style="bold"))
        self.root.data = state
        self._populate(self.root)
        self.root.expand()
        if view is None:
            for node in self.root.children:
                self._open(node)
            return
        expanded, cursor = view
        for path in expanded:
            node = self._find(path)
            if node is not None:
                self._open(node)
        if cursor is not None:
            target = self._find(cursor, nearest=True)
            if target is not None:
                self.call_after_refresh(self._restore_cursor, target)

    def _restore_cursor(self, node: TreeNode[Any]) -> None:
        if node.tree is self and node.line >= 0:
            self.move_cursor(node, animate=False)

    def _open(self, node: TreeNode[Any]) -> None:
        if node.allow_expand:
            if not node.children:
                self._populate(node)
            node.expand()

    def _find(self, path: tuple[str, ...], *, nearest: bool = False) -> TreeNode[Any] | None:
        node = self.root
        for key in path:
            found = next((c for c in node.children if self._path(c)[-1:] == (key,)), None)
            if found is None:
                return node if nearest else None
            node = found
        return node

    def show_note(self, note: str) -> None:
        if self.state is None and self.root.data is None and self.root.label.plain == note:
            return  # the same note again (live, following): no clear, no layout, no repaint
        self.state = None
        self.clear()
        self._paths = {}
        self.root.set_label(Text(note, style="dim"))
        self.root.data = None

    def _populate(self, node: TreeNode[Any]) -> None:
        value = node.data
        if isinstance(value, dict):
            items = list(value.items())
        elif isinstance(value, list):
            items = [(f"[{i}]", item) for i, item in enumerate(value)]
        else:
            return
        base = self._path(node) if node is not self.root else ()
        for key, child in items[:MAX_CHILDREN]:
            container = isinstance(child, dict | list) and len(child) > 0
            added = node.add(_label(str(key), child), data=child, allow_expand=container)
            self._paths[int(added.id)] = (*base, str(key))
        if len(items) > MAX_CHILDREN:
            node.add_leaf(Text(f"… {len(items) - MAX_CHILDREN:,} more", style="dim"))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Any]) -> None:
        node = event.node
        if node is not self.root and not node.children:
            self._populate(node)
