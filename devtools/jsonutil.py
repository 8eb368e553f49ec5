"""Fast JSON with exact integers.

``orjson`` is fast but turns integers beyond 64 bits into floats on load and refuses them on
dump. These two functions keep orjson's speed and strictness for the common case and fall back
to the standard library only when a number that large may be present, so ``2**64 + 1`` survives
a round trip exactly.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# A run of 20+ digits, or a 19-digit negative number starting with 9: the only integer
# literals orjson may not represent exactly (it handles [-2**63, 2**64)).
_MAYBE_BIG_INT = re.compile(rb"\d{20}|-9\d{18}")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def loads(data: bytes | str) -> Any:
    """Parse JSON strictly (no NaN, no lone surrogates) with integers of any size kept exact.

    Raises:
        orjson.JSONDecodeError: (a ``ValueError``) when ``data`` is not valid JSON.
    """
    value = orjson.loads(data)
    raw = data.encode("utf-8", "surrogatepass") if isinstance(data, str) else data
    if _MAYBE_BIG_INT.search(raw) is not None:
        # orjson validated the text already; the standard library keeps big integers exact.
        value = json.loads(raw, parse_constant=_reject_constant)
    return value


def dumps(value: Any) -> bytes:
    """Serialise ``value`` to compact UTF-8 JSON; integers of any size are written exactly.

    Note that orjson writes NaN and infinities as ``null``; check values with
    :func:`devtools.canonical.canonical_bytes` where that matters.

    Raises:
        TypeError: for values JSON cannot carry (sets, bytes, datetimes …).
    """
    try:
        return orjson.dumps(value)
    except TypeError as error:
        if "64-bit" not in str(error):
            raise
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
