"""recorder/records.py: the writer thread's row builder gives the rows message_row gives."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from recorder.records import message_row, row_builder

_FRAMES = st.one_of(
    st.binary(max_size=200),
    st.sampled_from(
        [b'{"type":"a"}', b'["connect",4,"u"]', b'{"type":1}', b"[1]", b'{"type":"b","n":1e400}']
    ),
)


@settings(max_examples=200)
@given(_FRAMES, st.booleans(), st.sampled_from([None, "plain", "logux"]))
def test_the_plain_builder_agrees_with_message_row(payload: bytes, binary: bool, framing) -> None:
    raw = (7, 2, "out", 123, payload, binary)
    assert row_builder(framing=lambda: framing)(raw) == message_row(*raw, (), None, framing)
    assert row_builder()(raw) == message_row(*raw)
