"""Apply the Node worker's per-event patches to a Python state (``replayer/js/patch.mjs``).

A per-event walk over a JavaScript reducer (search, compare, gen-test, a bisect's last window)
used to get each state back whole, ~100 kB of JSON parsed per event on a 300-order state, and
states parsed afresh share nothing, so a search's probes compared them whole too. The worker
now sends what the event changed: a list of operations, applied in order —

- ``[path, value]``: set the value at ``path`` (object keys and array indexes; an index equal to
  the array's length appends; a new key goes last, as in JavaScript);
- ``[path]``: delete an object key;
- ``[[], value]``: the whole state.

:func:`apply_patch` copies only the containers on the way to what changed, as a reducer that
updates immutably does, so the Python states share their unchanged subtrees: the diff, the
search's probes and the incremental grep walk what changed and skip the rest by identity.

Pure: no I/O.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PatchError", "apply_patch"]


class PatchError(ValueError):
    """A patch that does not fit the state (a bug on one side, never the user's input)."""


def apply_patch(state: Any, ops: list[list[Any]]) -> Any:
    """``state`` with ``ops`` applied; ``state`` itself and everything it holds are unchanged.

    Raises:
        PatchError: an operation's path does not lead through containers of the state.
    """
    if not ops:
        return state
    owned: dict[int, Any] = {}  # containers copied for this patch, by their own id

    def writable(container: Any) -> Any:
        if id(container) in owned:
            return container
        copy = container.copy()
        owned[id(copy)] = copy
        return copy

    root = state
    for op in ops:
        path = op[0]
        if not path:
            if len(op) != 2:
                raise PatchError("the whole state cannot be deleted")
            root = op[1]
            continue
        if type(root) not in (dict, list):
            raise PatchError(f"patch path {path!r} into a state that is no container")
        root = writable(root)
        node = root
        try:
            for key in path[:-1]:
                child = node[key]
                if type(child) not in (dict, list):
                    raise PatchError(f"patch path {path!r} leads through a scalar")
                copy = writable(child)
                if copy is not child:
                    node[key] = copy
                node = copy
            last = path[-1]
            if len(op) == 1:
                del node[last]
            elif type(node) is list and last == len(node):
                node.append(op[1])
            else:
                node[last] = op[1]
        except (KeyError, IndexError, TypeError) as error:
            raise PatchError(f"patch path {path!r} does not fit the state ({error!r})") from None
    return root
