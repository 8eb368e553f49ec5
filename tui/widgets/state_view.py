"""The State tab: the state at the selected event as a tree, children built on expansion."""

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

    def show_state(self, state: Any, title: str = "state") -> None:
        """Show ``state`` (children of the root are built now, deeper ones on expansion)."""
        self.state = state
        self.clear()
        self.root.set_label(Text(visible(title), style="bold"))
        self.root.data = state
        self._populate(self.root)
        self.root.expand()

    def show_note(self, note: str) -> None:
        if self.state is None and self.root.data is None and self.root.label.plain == note:
            return  # the same note again (live, following): no clear, no layout, no repaint
        self.state = None
        self.clear()
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
        for key, child in items[:MAX_CHILDREN]:
            container = isinstance(child, dict | list) and len(child) > 0
            node.add(_label(str(key), child), data=child, allow_expand=container)
        if len(items) > MAX_CHILDREN:
            node.add_leaf(Text(f"… {len(items) - MAX_CHILDREN:,} more", style="dim"))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Any]) -> None:
        node = event.node
        if node is not self.root and not node.children:
            self._populate(node)
