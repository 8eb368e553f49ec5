"""RFC 6902 JSON Patch between two JSON-like values (pure).

:func:`diff` returns the operations (``replace``, ``add``, ``remove``) that turn ``a`` into ``b``;
paths are RFC 6901 JSON Pointers (``~`` → ``~0``, ``/`` → ``~1``). Types are strict: ``1``,
``1.0`` and ``True`` are three different values, so ``1`` → ``true`` is a ``replace``.

Speed comes from states that share structure: reducers never mutate, so an unchanged subtree is
usually the *same object* in both states and is skipped by identity (``a is b``). Subtrees that
are equal but not identical are skipped by one C-level equality check (``==``, confirmed
type-strictly with orjson, since ``==`` says ``1 == True``). Only what differs is walked.

Lists: the common prefix and suffix are trimmed, the remaining elements are diffed pairwise,
and the longer side's tail is added or removed at the end.

For people, ``diff(a, b, with_old=True)`` also puts the old value beside each ``replace`` and
``remove`` under :data:`OLD` (``"from_value"``): RFC 6902 lets an operation carry members it does
not define, and appliers ignore them, so the patch still applies as it is. Renderers show
``old → new`` from it; ``--json`` outputs that promise a plain patch use the default.
"""

from __future__ import annotations

from typing import Any

import orjson

_DICT = dict
_LIST = list

OLD = "from_value"
"""The key of the old value beside a ``replace`` or ``remove`` (``diff(..., with_old=True)``)."""


def escape(token: Any) -> str:
    """One JSON Pointer reference token (RFC 6901): ``~`` → ``~0``, ``/`` → ``~1``."""
    text = token if type(token) is str else str(token)
    if "~" in text:
        text = text.replace("~", "~0")
    if "/" in text:
        text = text.replace("/", "~1")
    return text


def unescape(token: str) -> str:
    """Undo :func:`escape`."""
    return token.replace("~1", "/").replace("~0", "~")


def pointer(parts: list[Any]) -> str:
    """The JSON Pointer for a list of keys and indexes (``[]`` is the root, ``""``)."""
    return "".join("/" + escape(p) for p in parts)


def split_pointer(path: str) -> list[str]:
    """The unescaped reference tokens of a JSON Pointer (``""`` → ``[]``)."""
    if not path:
        return []
    return [unescape(t) for t in path[1:].split("/")]


def container_kind(value: Any) -> type | None:
    """``dict`` or ``list`` for a JSON object or array (a tuple is an array), else ``None``."""
    t = type(value)
    if t is dict or t is list:
        return t
    if isinstance(value, dict):
        return _DICT
    if isinstance(value, list | tuple):
        return _LIST
    return None


def _strict_equal_containers(a: Any, b: Any) -> bool:
    """Whether two containers that ``==`` already called equal are equal type-strictly."""
    try:
        # Same key order is the common case; a different order only costs the walk below.
        if orjson.dumps(a) == orjson.dumps(b):
            return True
    except TypeError:
        pass  # integers beyond 64 bits, non-string keys …
    return _walk_equal(a, b)


def _walk_equal(a: Any, b: Any) -> bool:
    if a is b:
        return True
    ka, kb = container_kind(a), container_kind(b)
    if ka is not kb:
        return False
    if ka is _DICT:
        if len(a) != len(b):
            return False
        return all(key in b and _walk_equal(value, b[key]) for key, value in a.items())
    if ka is _LIST:
        return len(a) == len(b) and all(_walk_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def equal(a: Any, b: Any) -> bool:
    """Type-strict equality of JSON-like values (``1``, ``1.0`` and ``True`` all differ;
    ``-0.0`` and ``0.0`` do not, as in the state hash)."""
    if a is b:
        return True
    ka = container_kind(a)
    if ka is not container_kind(b):
        return False
    if ka is None:
        return type(a) is type(b) and a == b
    return a == b and _strict_equal_containers(a, b)


class _Missing:
    """The side of :func:`changed_items` that has no such key."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
"""What :func:`changed_items` gives for the value of a key one side does not have."""


def changed_items(a: dict, b: dict) -> list[tuple[Any, Any, Any]]:
    """``(key, old, new)`` for every key whose value differs type-strictly between two dicts.

    :data:`MISSING` stands for the side without the key. Removed and changed keys come in
    ``a``'s order, added ones last in ``b``'s order. Values that are the same object are skipped
    by identity (one lookup, one ``is``); values that ``==`` calls equal are confirmed
    type-strictly in one batch. This is the walk :func:`diff` makes at each pair of dicts (and
    the incremental ``--grep`` too).
    """
    out: list[tuple[Any, Any, Any]] = []
    # Children that ``==`` calls equal are confirmed type-strictly in one batch at the end.
    same_a: list[Any] = []
    same_b: list[Any] = []
    same_keys: list[Any] = []
    if type(b) is not dict:
        b = dict(b)  # a defaultdict's subscript would add the key it looks up
    removed = 0
    for key, old in a.items():
        try:
            new = b[key]  # (a subscript in a try is the cheapest lookup in the hot loop)
        except KeyError:
            removed += 1
            out.append((key, old, MISSING))
            continue
        if new is old:  # the common case
            continue
        t = type(old)
        if t is type(new) and old == new:
            if t is dict or t is list:
                same_a.append(old)
                same_b.append(new)
                same_keys.append(key)
            continue
        out.append((key, old, new))
    if same_a and not _strict_equal_containers(same_a, same_b):
        out.extend(zip(same_keys, same_a, same_b, strict=True))
    added = len(b) - len(a) + removed
    if added:
        # New keys usually come last (``{**a, key: value}``): look from the end, stop when found.
        tail: list[tuple[Any, Any, Any]] = []
        for key in reversed(b):
            if key not in a:
                tail.append((key, MISSING, b[key]))
                if len(tail) == added:
                    break
        out.extend(reversed(tail))
    return out


def common_ends(a: Any, b: Any) -> tuple[int, int, int]:
    """``(start, end_a, end_b)``: ``a[:start]`` equals ``b[:start]`` and ``a[end_a:]`` equals
    ``b[end_b:]`` (type-strictly), and what differs is ``a[start:end_a]`` against
    ``b[start:end_b]`` (the common prefix and suffix of two lists, trimmed)."""
    la, lb = len(a), len(b)
    shortest = min(la, lb)
    start = 0
    while start < shortest and (a[start] is b[start] or equal(a[start], b[start])):
        start += 1
    if start == la == lb:
        return start, la, lb
    end_a, end_b = la, lb
    while (
        end_a > start
        and end_b > start
        and (a[end_a - 1] is b[end_b - 1] or equal(a[end_a - 1], b[end_b - 1]))
    ):
        end_a -= 1
        end_b -= 1
    return start, end_a, end_b


def diff(a: Any, b: Any, *, with_old: bool = False) -> list[dict[str, Any]]:
    """The RFC 6902 JSON Patch that turns ``a`` into ``b``.

    Values in the patch are ``b``'s own objects (not copies); old values are ``a``'s.

    Args:
        a: the source value (any JSON-like value: dict, list, str, int, float, bool, None).
        b: the target value.
        with_old: also carry the old value beside each ``replace`` and ``remove``, under
            :data:`OLD` (for readable diffs; the patch still applies unchanged).

    Returns:
        The operations, in an order that applies cleanly (an empty list when equal).
    """
    ops: list[dict[str, Any]] = []
    _diff(a, b, "", ops, with_old)
    return ops


def without_old(patch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``patch`` without the old values :func:`diff` adds with ``with_old=True``."""
    return [{k: v for k, v in op.items() if k != OLD} if OLD in op else op for op in patch]


def _diff(a: Any, b: Any, path: str, ops: list[dict[str, Any]], old: bool) -> None:
    if a is b:
        return
    ta = type(a)
    tb = type(b)
    if ta is dict and tb is dict:
        _diff_dict(a, b, path, ops, old)
        return
    if ta is list and tb is list:
        _diff_list(a, b, path, ops, old)
        return
    ka, kb = container_kind(a), container_kind(b)
    if ka is not None and ka is kb:
        if ka is _DICT:
            _diff_dict(a, b, path, ops, old)
        else:
            _diff_list(a, b, path, ops, old)
        return
    if ka is None and kb is None and ta is tb and a == b:
        return
    if old:
        ops.append({"op": "replace", "path": path, "value": b, OLD: a})
    else:
        ops.append({"op": "replace", "path": path, "value": b})


def _diff_dict(a: dict, b: dict, path: str, ops: list[dict[str, Any]], old_values: bool) -> None:
    for key, old, new in changed_items(a, b):
        if new is MISSING:
            if old_values:
                ops.append({"op": "remove", "path": path + "/" + escape(key), OLD: old})
            else:
                ops.append({"op": "remove", "path": path + "/" + escape(key)})
        elif old is MISSING:
            ops.append({"op": "add", "path": path + "/" + escape(key), "value": new})
        else:
            _diff(old, new, path + "/" + escape(key), ops, old_values)


def _diff_list(a: list, b: list, path: str, ops: list[dict[str, Any]], old: bool) -> None:
    start, end_a, end_b = common_ends(a, b)
    na, nb = end_a - start, end_b - start
    for i in range(start, start + min(na, nb)):
        _diff(a[i], b[i], f"{path}/{i}", ops, old)
    if na > nb:
        at = f"{path}/{start + nb}"
        if old:
            for i in range(start + nb, end_a):
                ops.append({"op": "remove", "path": at, OLD: a[i]})
        else:
            for _ in range(na - nb):
                ops.append({"op": "remove", "path": at})
    elif nb > na:
        for i in range(start + na, start + nb):
            ops.append({"op": "add", "path": f"{path}/{i}", "value": b[i]})
