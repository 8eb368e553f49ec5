"""State hashes of a server's successive states, reusing what did not change.

A server sends the hash of its state after every event (PROTOCOL.md §5). Hashing the whole
state each time costs in proportion to the state (~150 µs for a 20 kB state), although a pure
reducer changes only the containers on the way to what it touched and keeps every other subtree
as the same object. :class:`StateHasher` gives exactly :func:`devtools.canonical.state_hash`'s
answer but keeps the canonical bytes of each container it wrote, by identity, and writes again
only the containers that are new objects: for an event that replaces one order of fifty, the
root, the orders object and that order (then one SHA-256 over the joined bytes).

What it relies on, as every other part of rdt does (:mod:`replayer.diff`): reducers do not
change a state in place. A reducer that does would leave stale bytes in the cache, so every
:data:`CHECK_EVERY` hashes one is also computed whole; if they differ the hasher says so once in
the log and hashes whole from then on. Anything out of the ordinary (non-string keys, floats,
subclasses, deep nesting, what JSON cannot carry) goes to :mod:`devtools.canonical` for that
subtree or, for an error, for the whole state, so errors name the same path as before.

The writing walk (``_bytes``, ``_large``, ``_pieces``) also exists in C,
``devtools/_statehash.c``, built at install where a C compiler is (:data:`FAST` says whether it
was): it works over the same caches and asks this class for everything but plain ASCII texts
(``_scalar``, ``_sorted``, ``_spell``), so the rules stay here; this Python walk is the
reference, and the tests hold both to :func:`devtools.canonical.state_hash`.

Memory: the cache holds each live container's bytes (about the state's JSON size times its
depth) and the containers themselves; entries of states no longer reachable are dropped when
the cache has grown to twice what was live at the last sweep.
"""

from __future__ import annotations

import hashlib
import logging
from itertools import compress
from operator import is_not
from typing import Any

import orjson

from devtools.canonical import CanonicalError, canonical_bytes, float_text, state_hash

try:
    from devtools import _statehash
except ImportError:  # built at install where a C compiler is; the Python walk does the same
    _statehash = None

__all__ = ["CHECK_EVERY", "FAST", "StateHasher"]

FAST = _statehash is not None
"""Whether the writing walk runs in C (``devtools/_statehash.c`` was built)."""

log = logging.getLogger(__name__)

CHECK_EVERY = 256
"""Every this many hashes, one is also computed whole and compared (a reducer that changes the
state in place would otherwise go unnoticed)."""
_MAX_DEPTH = 64  # below this a subtree is written whole by devtools.canonical (any depth)
_MEMO_MIN = 16  # containers this large are written from their predecessor's pieces
_MIN_SWEEP = 4096  # entries the cache may hold before the first sweep
_MAX_KEYS = 100_000  # key spellings kept; more are forgotten all at once
_SMALL_INT = 2**53  # integers written inline (any size is exact; this keeps the test cheap)
_SCALAR_BYTES = {None: b"null", True: b"true", False: b"false"}
_UPDATES = 16  # a state in more pieces than this is joined for SHA-256, not fed piece by piece


def _utf16_units(key: str) -> bytes:
    return key.encode("utf-16-be", "surrogatepass")


class _Whole(Exception):
    """This state is hashed whole by devtools.canonical (it raises the error, if any)."""


class StateHasher:
    """``state_hash(state)`` for a sequence of states that share structure.

    Args:
        check_every: compare one hash in this many with a whole one (0: never).
        fast: write in C (the default where it was built); False: the Python walk.
    """

    def __init__(self, *, check_every: int = CHECK_EVERY, fast: bool = FAST) -> None:
        if fast and _statehash is None:
            raise ValueError("the C walk (devtools/_statehash.c) was not built")
        self.check_every = check_every
        self.fast = fast
        self.incremental = True
        """False once a whole hash disagreed: the state was changed in place, so from then on
        every hash is computed whole."""
        self._cache: dict[int, tuple[Any, bytes]] = {}
        self._keys: dict[str, bytes] = {}
        # path -> (container, its keys in insertion order or None for a list, where each
        # child's bytes are in pieces, pieces): the last large container written at that path
        self._memo: dict[tuple[Any, ...], tuple[Any, list[Any] | None, list[int], list[bytes]]]
        self._memo = {}
        self._sweep_at = _MIN_SWEEP
        self._count = 0

    def hash(self, state: Any) -> str:
        """``"sha256:"`` + the hex SHA-256 of ``state``'s canonical bytes.

        Raises:
            CanonicalError: when ``state`` holds something JSON cannot carry (as
                :func:`devtools.canonical.state_hash` does, naming the same path).
        """
        if not self.incremental:
            return state_hash(state)
        try:
            if self.fast:
                pieces = _statehash.pieces_of(self, state, canonical_bytes, _MAX_DEPTH, _MEMO_MIN)
            else:
                pieces = self._root_pieces(state)
        except (_Whole, CanonicalError, RecursionError):
            return state_hash(state)
        if len(pieces) > _UPDATES:
            sha = hashlib.sha256(b"".join(pieces))
        else:
            sha = hashlib.sha256()
            for piece in pieces:
                sha.update(piece)
        digest = "sha256:" + sha.hexdigest()
        self._count += 1
        if self.check_every and self._count % self.check_every == 0:
            whole = state_hash(state)
            if whole != digest:
                log.warning(
                    "the state was changed in place between events (a reducer that mutates?): "
                    "hashing it whole from now on"
                )
                self.incremental = False
                self._cache.clear()
                self._memo.clear()
                return whole
        if len(self._cache) > self._sweep_at:
            self._sweep(state)
        return digest

    # ------------------------------------------------------------------ writing

    def _root_pieces(self, state: Any) -> list[bytes]:
        """The state's canonical bytes in pieces: the root is new at every event, so it is
        neither joined (that would copy the whole state once more only to hash it) nor
        cached."""
        kind = type(state)
        if kind is dict or kind is list:
            if len(state) >= _MEMO_MIN:
                return self._large_pieces(state, ())
            return self._pieces(state, ())
        return [self._bytes(state, ())]

    def _bytes(self, value: Any, path: tuple[Any, ...]) -> bytes:
        kind = type(value)
        if kind is dict or kind is list:
            known = self._cache.get(id(value))
            if known is not None and known[0] is value:
                return known[1]
            if len(path) >= _MAX_DEPTH:
                data = canonical_bytes(value)
            elif len(value) >= _MEMO_MIN:
                data = self._large(value, path)
            else:
                data = b"".join(self._pieces(value, path))
            self._cache[id(value)] = (value, data)
            return data
        return self._scalar(value)

    @staticmethod
    def _scalar(value: Any) -> bytes:
        """The bytes of a value that is not a plain dict or list (the C walk asks for every
        one but plain ASCII strings, 64-bit integers, null, true and false)."""
        kind = type(value)
        if kind is str:
            try:
                return orjson.dumps(value)
            except TypeError:  # a lone surrogate: the whole state's error names its path
                raise _Whole from None
        if kind is int:
            try:
                return int.__repr__(value).encode()
            except ValueError:  # more digits than Python writes: the whole state's error
                raise _Whole from None
        if value is None or kind is bool:
            return _SCALAR_BYTES[value]
        if kind is float:
            try:
                return float_text(value).encode()
            except ValueError:  # NaN, infinities: the whole state's error names the path
                raise _Whole from None
        return canonical_bytes(value)  # subclasses; raises CanonicalError for the rest

    def _large(self, value: dict[str, Any] | list[Any], path: tuple[Any, ...]) -> bytes:
        return b"".join(self._large_pieces(value, path))

    def _large_pieces(
        self, value: dict[str, Any] | list[Any], path: tuple[Any, ...]
    ) -> list[bytes]:
        """A large container, in pieces: from those of the one that was at the same path
        before, when it has the same keys in the same order (a reducer's ``{**old, key:
        new}``) or the same length (a list): only the children that are other objects are
        written again, found by identity at C speed."""
        memo = self._memo.get(path)
        if memo is not None:
            old, old_keys, slots, old_pieces = memo
            self._evict(old)
            if type(value) is list:
                keys = None
                same = type(old) is list and len(old) == len(value)
                new_values = value
            else:
                keys = list(value)
                same = keys == old_keys
                new_values = value.values()  # type: ignore[assignment]
            if same:
                old_values = old if keys is None else old.values()
                pieces = old_pieces.copy()
                for index in compress(range(len(slots)), map(is_not, new_values, old_values)):
                    key = index if keys is None else keys[index]
                    pieces[slots[index]] = self._bytes(value[key], (*path, key))  # type: ignore[index]
                self._memo[path] = (value, keys, slots, pieces)
                return pieces
        if type(value) is list:
            pieces = self._pieces(value, path)
            keys, slots = None, list(range(1, 2 * len(value), 2))
        else:
            ordered = self._sorted(value)  # once, for the pieces and for the slots
            pieces = self._pieces(value, path, ordered)
            keys = list(value)
            order = {key: 2 + 2 * at for at, key in enumerate(ordered)}
            slots = [order[key] for key in keys]
        self._memo[path] = (value, keys, slots, pieces)
        return pieces

    def _evict(self, old: Any) -> None:
        """Drop the cached bytes of the large container another one replaced at its path: the
        cache would otherwise hold it, its bytes and the states it was part of until the next
        sweep (megabytes of fresh memory for a large state). One that comes back is only
        written again. The C walk does the same."""
        known = self._cache.get(id(old))
        if known is not None and known[0] is old:
            del self._cache[id(old)]

    @staticmethod
    def _sorted(value: dict[str, Any]) -> list[str]:
        """The keys in JCS order (UTF-16 code units); :class:`_Whole` for non-string keys."""
        try:
            keys = sorted(value)
        except TypeError:  # keys of different types: not JSON
            raise _Whole from None
        if type(keys[0]) is not str or type(keys[-1]) is not str:
            raise _Whole  # non-string keys (sorted only when all of one type)
        if not "".join(keys).isascii():
            keys.sort(key=_utf16_units)
        return keys

    def _pieces(
        self,
        value: dict[str, Any] | list[Any],
        path: tuple[Any, ...],
        ordered: list[str] | None = None,
    ) -> list[bytes]:
        """The canonical bytes of a container, in pieces: ``[`` item ``,`` item … ``]``, or
        ``{`` key+colon value ``,key``+colon value … ``}`` (the key pieces carry the comma).

        ``ordered``: a dict's keys in JCS order when the caller has them already.
        The loops test the children's types inline (most are cached containers or plain
        strings and integers): a call per child would cost more than the rest of the work."""
        if not value:
            return [b"[]" if type(value) is list else b"{}"]
        cache_get = self._cache.get
        dumps = orjson.dumps
        if type(value) is list:
            pieces = [b"["]
            for index, child in enumerate(value):
                kind = type(child)
                if kind is dict or kind is list:
                    known = cache_get(id(child))
                    if known is not None and known[0] is child:
                        pieces.append(known[1])
                    else:
                        pieces.append(self._bytes(child, (*path, index)))
                elif kind is str:
                    try:
                        pieces.append(dumps(child))
                    except TypeError:  # a lone surrogate: the whole state's error names its path
                        raise _Whole from None
                elif kind is int and -_SMALL_INT < child < _SMALL_INT:
                    pieces.append(int.__repr__(child).encode())
                else:
                    pieces.append(self._bytes(child, path))
                pieces.append(b",")
            pieces[-1] = b"]"
            return pieces
        spelled = self._keys
        pieces = [b"{"]
        for key in self._sorted(value) if ordered is None else ordered:
            name = spelled.get(key)
            if name is None:
                name = self._spell(key)
            pieces.append(name)  # ',"key":'
            child = value[key]
            kind = type(child)
            if kind is dict or kind is list:
                known = cache_get(id(child))
                if known is not None and known[0] is child:
                    pieces.append(known[1])
                else:
                    pieces.append(self._bytes(child, (*path, key)))
            elif kind is str:
                try:
                    pieces.append(dumps(child))
                except TypeError:  # a lone surrogate: the whole state's error names its path
                    raise _Whole from None
            elif kind is int and -_SMALL_INT < child < _SMALL_INT:
                pieces.append(int.__repr__(child).encode())
            else:
                pieces.append(self._bytes(child, path))
        pieces[1] = pieces[1][1:]  # the first key has no comma before it
        pieces.append(b"}")
        return pieces

    def _spell(self, key: Any) -> bytes:
        """``,"key":`` for an object key (kept: the same keys come back in every state)."""
        if not isinstance(key, str):
            raise _Whole
        try:
            name = b"," + orjson.dumps(key) + b":"
        except TypeError:  # a lone surrogate
            raise _Whole from None
        if len(self._keys) >= _MAX_KEYS:
            self._keys.clear()
        self._keys[key] = name
        return name

    # ------------------------------------------------------------------ forgetting

    def _sweep(self, state: Any) -> None:
        """Keep only the entries of containers reachable from ``state``."""
        old, kept = self._cache, {}
        stack = [state]
        while stack:
            value = stack.pop()
            kind = type(value)
            if kind is dict:
                children = value.values()
            elif kind is list:
                children = value
            else:
                continue
            known = old.get(id(value))
            if known is not None and known[0] is value:
                kept[id(value)] = known
            stack.extend(children)
        self._cache = kept
        self._memo = {path: memo for path, memo in self._memo.items() if id(memo[0]) in kept}
        self._sweep_at = max(_MIN_SWEEP, 2 * len(kept))
