"""The framing of the Node worker's pipe protocol (see :mod:`replayer.jsworker`). Pure.

A frame is ``u32 header length, u32 body length`` (little-endian), the header (UTF-8 JSON text
of an object), then the body bytes. Replies name parts of their body as ``[offset, length]``
pairs in ``header["parts"]``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

import orjson

__all__ = ["PREFIX", "FrameReader", "encode_frame", "events_body", "parts_of"]

PREFIX = 8
_PREFIX = struct.Struct("<II")


def encode_frame(header: dict[str, Any], body: bytes = b"") -> tuple[bytes, bytes]:
    """The frame for ``header`` and ``body`` as two buffers to write one after the other."""
    head = orjson.dumps(header)
    return _PREFIX.pack(len(head), len(body)) + head, body


def events_body(rows: Sequence[tuple[int, bytes]]) -> bytes:
    """One JSON array text of the recorded events' bytes, parsed with one ``JSON.parse``."""
    return b"[" + b",".join([payload for _, payload in rows]) + b"]"


def parts_of(header: dict[str, Any], body: bytes) -> list[bytes]:
    """The body parts a reply's header names, as bytes."""
    view = memoryview(body)
    return [bytes(view[start : start + length]) for start, length in header.get("parts", ())]


class FrameReader:
    """Accumulates reply bytes and cuts them into ``(header, body)`` frames."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[dict[str, Any], bytes]]:
        """Add ``data``; return every frame now complete, in order."""
        buffer = self._buffer
        buffer += data
        frames = []
        start = 0
        while len(buffer) - start >= PREFIX:
            head_length, body_length = _PREFIX.unpack_from(buffer, start)
            end = start + PREFIX + head_length + body_length
            if len(buffer) < end:
                break
            head_end = start + PREFIX + head_length
            header = orjson.loads(memoryview(buffer)[start + PREFIX : head_end])
            frames.append((header, bytes(buffer[head_end:end])))
            start = end
        if start:
            del buffer[:start]
        return frames

    def wanted(self) -> int:
        """How many more bytes the frame being read needs (at least 1)."""
        buffer = self._buffer
        if len(buffer) < PREFIX:
            return PREFIX - len(buffer)
        head_length, body_length = _PREFIX.unpack_from(buffer, 0)
        return max(1, PREFIX + head_length + body_length - len(buffer))
