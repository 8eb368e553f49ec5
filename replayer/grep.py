"""The ``--grep`` rule (and the TUI's ``re:`` search): a regex against the state's lines.

The rule, in one place: the state is written as indented JSON, one line per key or list item
(``"total": 12``, ``"orders": {``, ``}``), and the regex is searched in each line on its own,
without the line's indentation and without the comma between items. A match never spans two
lines. Keys keep the state's order; strings are written as JSON writes them (non-ASCII as it
is, control characters escaped); ``-0.0`` is written ``0.0``, as in the state hash; a value
that is not JSON is written as the JSON string of its ``repr``. The state matches when at least
one line does.

:func:`lines` writes the lines (the reference). :class:`LineMatches` keeps the number of
matching lines of the latest state and moves it to the next state by walking only what differs
(:func:`replayer.diff.changed_items`, :func:`replayer.diff.common_ends`: identical subtrees are
skipped by identity, equal ones by one ``==``), so an event that changes one leaf writes and
searches two lines (its old and its new one), whatever the size of the state. It assumes, like
the diff, that a reducer returns new containers for what it changes rather than changing the
old state in place.

:func:`line_matches` gives the same walk in C (``replayer/_linematch.c``, built at install when
a C compiler is there; :data:`FAST` says whether it was): the Python class stays the reference
and the fallback, and a Hypothesis law holds both to :func:`count_matches`.

Pure: no I/O.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from replayer.diff import MISSING, changed_items, common_ends
from replayer.diff import container_kind as _kind

try:
    from replayer import _linematch
except ImportError:  # installed without a C compiler: the Python walk below does the same
    _linematch = None

FAST = _linematch is not None
"""Whether :func:`line_matches` walks in C (``replayer/_linematch.c`` was built)."""

_DICT = dict
_LIST = list
_MEMO_LIMIT = 1 << 16
"""Key texts remembered (keys repeat; ids that come and go would grow the memo forever)."""


def _string(text: str) -> str:
    try:
        return orjson.dumps(text).decode()  # the same bytes as json.dumps(ensure_ascii=False)
    except TypeError:  # a lone surrogate
        return json.dumps(text, ensure_ascii=False)


def _float(value: float) -> str:
    if value != value:
        return "NaN"
    if value in (_INF, -_INF):
        return "Infinity" if value > 0 else "-Infinity"
    return "0.0" if value == 0 else float.__repr__(value)


_INF = float("inf")


def scalar_text(value: Any) -> str:
    """A value that is not a container, as it is written in a line."""
    kind = type(value)
    if kind is str:
        return _string(value)
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if kind is int:
        return int.__repr__(value)
    if kind is float:
        return _float(value)
    if isinstance(value, int):
        return int.__repr__(value)
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, str):
        return _string(str.__str__(value))
    return _string(repr(value))


def key_text(key: Any) -> str:
    """What a line of a dict's item starts with: the key as a JSON string, then ``": "``."""
    if isinstance(key, str):
        text = str.__str__(key)
    elif key is None or isinstance(key, int | float):
        text = scalar_text(key)  # as JSON turns them into keys: "1", "true", "null"
    else:
        text = repr(key)
    return _string(text) + ": "


def _opening(kind: type, empty: bool) -> str:
    if kind is _DICT:
        return "{}" if empty else "{"
    return "[]" if empty else "["


def lines(state: Any) -> Iterator[str]:
    """The state's lines under the rule above (the reference :class:`LineMatches` keeps up)."""
    return _lines("", state)


def _lines(head: str, value: Any) -> Iterator[str]:
    kind = _kind(value)
    if kind is None:
        yield head + scalar_text(value)
        return
    yield head + _opening(kind, not value)
    if not value:
        return
    if kind is _DICT:
        for key, item in value.items():
            yield from _lines(key_text(key), item)
        yield "}"
    else:
        for item in value:
            yield from _lines("", item)
        yield "]"


def count_matches(pattern: re.Pattern[str], state: Any) -> int:
    """The number of the state's lines ``pattern`` matches, writing every line (the reference)."""
    search = pattern.search
    return sum(1 for line in lines(state) if search(line))


class _Node:
    """What :class:`LineMatches` remembers of one container of the state."""

    __slots__ = ("count", "kids")

    def __init__(self, count: int, kids: Any) -> None:
        self.count = count
        """Matching lines among the container's items and its closing line (0 when empty)."""
        self.kids = kids
        """A dict's container items by key (dict), or a list's items' nodes (None: scalar)."""


_UNSET: Any = object()


class LineMatches:
    """The number of matching lines of the latest state given to :meth:`update`."""

    __slots__ = ("_closes", "_heads", "_keys", "_node", "_search", "_state", "count")

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self._search: Callable[[str], Any] = pattern.search
        closes = {_DICT: "}", _LIST: "]"}
        self._closes = {kind: int(bool(pattern.search(line))) for kind, line in closes.items()}
        self._keys: dict[Any, str] = {}
        self._heads: dict[tuple[str, type, bool], int] = {}
        self._state: Any = _UNSET
        self._node: _Node | None = None
        self.count = 0
        """Matching lines of the latest state."""

    def observe(self, state: Any, event: Any, v: int) -> bool:
        """Whether ``state`` has a matching line (a search's observation; see :meth:`update`)."""
        return self.update(state) > 0

    def update(self, state: Any) -> int:
        """Move to ``state`` (from the state before, or from nothing); its matching lines."""
        old = self._state
        if state is old:
            return self.count
        if old is _UNSET:
            self._node = self._build(state)
            self.count = self._weight("", state, self._node)
        else:
            delta, self._node = self._change("", old, state, self._node)
            self.count += delta
        self._state = state
        return self.count

    # ------------------------------------------------------------------ lines

    def _key(self, key: Any) -> str:
        if type(key) is not str:  # 1, 1.0 and True are one dict key but three texts
            return key_text(key)
        text = self._keys.get(key)
        if text is None:
            if len(self._keys) >= _MEMO_LIMIT:
                self._keys.clear()
                self._heads.clear()
            text = self._keys[key] = key_text(key)
        return text

    def _head(self, prefix: str, kind: type, empty: bool) -> int:
        """Whether the first line of a container (after ``prefix``) matches."""
        memo = (prefix, kind, empty)
        hit = self._heads.get(memo)
        if hit is None:
            hit = self._heads[memo] = int(bool(self._search(prefix + _opening(kind, empty))))
        return hit

    def _weight(self, prefix: str, value: Any, node: _Node | None) -> int:
        """The matching lines ``value`` writes after ``prefix`` (``node``: its container's)."""
        if node is None:
            return 1 if self._search(prefix + scalar_text(value)) else 0
        # (a dict's kids are a dict, a list's a list: the node knows its container's kind)
        return self._head(prefix, type(node.kids), not value) + node.count

    # ------------------------------------------------------------------ building, walking

    def _build(self, value: Any) -> _Node | None:
        kind = _kind(value)
        if kind is None:
            return None
        count = 0
        if kind is _DICT:
            kids: Any = {}
            for key, item in value.items():
                child = self._build(item)
                if child is not None:
                    kids[key] = child
                count += self._weight(self._key(key), item, child)
        else:
            kids = []
            for item in value:
                child = self._build(item)
                kids.append(child)
                count += self._weight("", item, child)
        if value:
            count += self._closes[kind]
        return _Node(count, kids)

    def _change(
        self, prefix: str, old: Any, new: Any, node: _Node | None
    ) -> tuple[int, _Node | None]:
        """How many more lines match once ``old`` (with ``node``) becomes ``new``; new's node."""
        kind = _kind(old)
        if node is not None and kind is _kind(new):
            before = node.count
            if kind is _DICT:
                self._dict(node, old, new)
            else:
                self._list(node, old, new)
            change = node.count - before
            if bool(old) != bool(new):  # its first line changes: "k": {}  <->  "k": {
                change += self._head(prefix, kind, not new) - self._head(prefix, kind, not old)
            return change, node
        fresh = self._build(new)
        return self._weight(prefix, new, fresh) - self._weight(prefix, old, node), fresh

    def _dict(self, node: _Node, a: dict, b: dict) -> None:
        kids = node.kids
        delta = 0
        for key, old, new in changed_items(a, b):
            prefix = self._key(key)
            if new is MISSING:
                delta -= self._weight(prefix, old, kids.pop(key, None))
                continue
            if old is MISSING:
                child = self._build(new)
                delta += self._weight(prefix, new, child)
            else:
                change, child = self._change(prefix, old, new, kids.get(key))
                delta += change
            if child is None:
                kids.pop(key, None)
            else:
                kids[key] = child
        if bool(a) != bool(b):  # became empty, or stopped being empty
            delta += self._closes[_DICT] if b else -self._closes[_DICT]
        node.count += delta

    def _list(self, node: _Node, a: Any, b: Any) -> None:
        kids = node.kids
        start, end_a, end_b = common_ends(a, b)
        na, nb = end_a - start, end_b - start
        delta = 0
        for i in range(start, start + min(na, nb)):
            old, new = a[i], b[i]
            if old is new or (type(old) is type(new) and _kind(old) is None and old == new):
                continue
            change, kids[i] = self._change("", old, new, kids[i])
            delta += change
        if na > nb:
            cut = start + nb
            for i in range(cut, end_a):
                delta -= self._weight("", a[i], kids[i])
            del kids[cut:end_a]
        elif nb > na:
            cut = start + na
            fresh = [self._build(b[i]) for i in range(cut, end_b)]
            for item, child in zip(b[cut:end_b], fresh, strict=True):
                delta += self._weight("", item, child)
            kids[cut:cut] = fresh
        if bool(a) != bool(b):
            delta += self._closes[_LIST] if b else -self._closes[_LIST]
        node.count += delta


_METACHARACTERS = frozenset(".^$*+?{}[]\\|()")


def literal_text(pattern: re.Pattern[str]) -> str | None:
    """The text ``pattern`` matches when it is a plain literal (searching for it is then a
    substring test), else ``None``: a metacharacter, or a flag that changes what it matches."""
    if pattern.flags & (re.IGNORECASE | re.VERBOSE):
        return None
    text = pattern.pattern
    if not isinstance(text, str) or not text or _METACHARACTERS.intersection(text):
        return None
    return text


def line_matches(pattern: re.Pattern[str]) -> LineMatches:
    """A :class:`LineMatches` for ``pattern``: the C walk when it was built (the same counts,
    ~20× faster on a state with large dicts), else the Python class."""
    if _linematch is None:
        return LineMatches(pattern)
    literal = literal_text(pattern)
    return _linematch.LineMatches(pattern.search, scalar_text, key_text, literal)
