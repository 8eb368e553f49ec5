"""The Logux link rules (devtools/logux_links.py), pure: which answer names which action, which
`synced` confirms which `sync`, and the in-memory index the live feed keeps."""

from __future__ import annotations

from devtools.jsonutil import dumps
from devtools.logux_links import (
    Link,
    LinkIndex,
    action_id,
    added_of,
    answered_id,
    confirms_key,
    sync_key,
)
from tests import factories as f


def logux_message(seq: int, value: list, direction: str = "in", connection: int = 1):
    return f.message(
        seq, payload=dumps(value), type=value[0], direction=direction, connection=connection
    )


def test_answers_name_their_action_by_its_logux_id():
    action = {"type": "counter/add", "meta": {"id": "5 10:a 0", "time": 5}}
    processed = {"type": "logux/processed", "id": "5 10:a 0", "meta": {"id": "9 s 0"}}
    undo = {"type": "logux/undo", "id": "5 10:a 0", "reason": "denied"}
    assert action_id(action) == "5 10:a 0" and answered_id(action) is None
    assert answered_id(processed) == answered_id(undo) == "5 10:a 0"
    assert action_id(processed) is None  # an answer is no action to be answered
    for odd in ({"type": "x"}, {"type": "x", "meta": {"id": 5}}, [], None, {"type": "logux/undo"}):
        assert action_id(odd) is None and answered_id(odd) is None


def test_a_synced_confirms_the_sync_that_went_the_other_way_on_its_connection():
    sync = logux_message(3, ["sync", 7, {"type": "a"}, {"id": 1, "time": 1}])
    synced = logux_message(4, ["synced", 7], "out")
    assert added_of(sync) == ("sync", 7.0) and added_of(synced) == ("synced", 7.0)
    assert sync_key(sync) == confirms_key(synced) == (1, "in", 7.0)
    assert confirms_key(logux_message(4, ["synced", 7], "out", connection=2)) != sync_key(sync)
    assert confirms_key(logux_message(4, ["synced", 7], "in")) != sync_key(sync)
    assert added_of(logux_message(5, ["ping", 7])) is None
    # a backlog sync is read from its first bytes only
    big = f.message(6, payload=b'["sync",12000,' + b"x" * 2_000_000, type="sync")
    assert added_of(big) == ("sync", 12000.0)
    assert added_of(f.message(7, payload=b'["synced" 1]', type="synced")) is None


def test_the_index_links_both_ways_as_records_arrive():
    index = LinkIndex()
    events = {
        1: f.event(1, "counter/add", meta={"id": "5 10:a 0", "time": 5}),
        2: f.event(2, "logux/processed", id="5 10:a 0"),
    }
    messages = {
        3: logux_message(3, ["sync", 7, {"type": "a"}, {"id": 1, "time": 1}]),
        4: logux_message(4, ["synced", 7], "out"),
        5: logux_message(5, ["synced", 7], "out"),  # a second one confirms nothing
    }
    for event in events.values():
        index.add_event(event)
    for message in messages.values():
        index.add_message(message)

    def links(record):
        return index.links(record, events.get, messages.get)

    assert links(events[1]) == [Link("answered by", events[2])]
    assert links(events[2]) == [Link("answers", events[1])]
    assert links(messages[3]) == [Link("confirmed by", messages[4])]
    assert links(messages[4]) == [Link("confirms", messages[3])]
    assert links(messages[5]) == []
