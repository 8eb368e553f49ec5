"""Redux DevTools extension interchange: the file the extension's Import button reads."""

from __future__ import annotations

import json

import pytest

from devtools.errors import BadInput, InvalidJSON
from devtools.redux import dumps_file, from_redux, initial_snapshot, looks_like_redux, to_redux
from tests import factories as f

# A file shaped exactly as the extension downloads it (state.json): JSON.stringify of
# {payload, preloadedState} with tab indentation, both values JSON text of the staged actions
# and the committed state.
EXTENSION_FILE = (
    "{\n"
    '\t"payload": "[{\\"type\\":\\"todos/add\\",\\"text\\":\\"milk\\"},'
    '{\\"type\\":\\"todos/toggle\\",\\"id\\":0}]",\n'
    '\t"preloadedState": "{\\"todos\\":[]}"\n'
    "}"
)

# The other shape the Import button accepts: the payload is a whole lifted state.
LIFTED_FILE = json.dumps(
    {
        "payload": json.dumps(
            {
                "actionsById": {
                    "0": {"type": "PERFORM_ACTION", "action": {"type": "@@INIT"}},
                    "1": {"type": "PERFORM_ACTION", "action": {"type": "a"}, "timestamp": 1},
                    "2": {"type": "PERFORM_ACTION", "action": {"type": "b"}, "timestamp": 2},
                    "3": {"type": "PERFORM_ACTION", "action": {"type": "c"}, "timestamp": 3},
                },
                "stagedActionIds": [0, 1, 2, 3],
                "skippedActionIds": [2],
                "committedState": {"n": 0},
                "computedStates": [{"state": {"n": 0}}] * 4,
                "currentStateIndex": 3,
                "nextActionId": 4,
            }
        )
    }
)


def test_reads_the_extension_export():
    events, preloaded = from_redux(json.loads(EXTENSION_FILE))
    assert [e.type for e in events] == ["todos/add", "todos/toggle"]
    assert [e.v for e in events] == [1, 2]
    assert events[0].event == {"type": "todos/add", "text": "milk"}
    assert preloaded == {"todos": []}


def test_reads_a_lifted_state_payload_without_skipped_actions():
    events, preloaded = from_redux(json.loads(LIFTED_FILE))
    assert [e.type for e in events] == ["a", "c"]
    assert preloaded == {"n": 0}


def test_reads_a_bare_lifted_state():
    bare = json.loads(json.loads(LIFTED_FILE)["payload"])
    assert looks_like_redux(bare)
    assert [e.type for e in from_redux(bare)[0]] == ["a", "c"]


def test_writes_what_the_extension_writes():
    events = [f.event(1, "todos/add", text="milk"), f.event(2, "todos/toggle", id=0)]
    doc = to_redux(events, {"todos": []})
    assert set(doc) == {"payload", "preloadedState"}
    assert json.loads(doc["payload"]) == [e.event for e in events]
    assert json.loads(doc["preloadedState"]) == {"todos": []}
    text = dumps_file(doc).decode()
    assert text.startswith('{\n\t"payload": "[{') and text.endswith("}\n")


def test_round_trip_keeps_events_big_ints_and_unicode():
    events = [f.event(v, "t/ü", n=2**70 + v, s="\u202e\x00") for v in range(5, 9)]
    doc = json.loads(dumps_file(to_redux(events, {"big": -(2**65)})))
    back, preloaded = from_redux(doc)
    assert back == [type(e)(v=e.v, type=e.type, event=e.event, t_ns=e.event["ts"]) for e in events]
    assert preloaded == {"big": -(2**65)}


def test_preloaded_state_is_omitted_without_a_snapshot():
    doc = to_redux([f.event(1)], None)
    assert "preloadedState" not in doc
    assert from_redux(doc)[1] is None


def test_initial_snapshot_choice():
    s0, s5, s9 = f.snapshot(0), f.snapshot(5), f.snapshot(9)
    assert initial_snapshot([s5, s0, s9], first_v=1) == s0
    assert initial_snapshot([s5, s9], first_v=6) == s5  # a recording that joined late
    assert initial_snapshot([s5, s9], first_v=3) is None
    assert initial_snapshot([s9, s5], first_v=None) == s5
    assert initial_snapshot([], first_v=1) is None


def test_actions_without_v_are_numbered():
    events, _ = from_redux({"payload": '[{"type":"a","v":7},{"type":"b"}]'})
    assert [e.v for e in events] == [1, 2]


@pytest.mark.parametrize(
    ("doc", "error", "text"),
    [
        ({"payload": "[{"}, InvalidJSON, "payload is not valid JSON"),
        ({"payload": "[]", "preloadedState": "{x"}, InvalidJSON, "preloadedState is not valid"),
        ({"payload": '[{"nope":1}]'}, BadInput, "action 0 has no string 'type'"),
        ({"payload": "42"}, BadInput, "neither actions nor a state"),
        ({"something": "else"}, BadInput, "not a Redux DevTools export"),
        ([1, 2], BadInput, "not a Redux DevTools export"),
        ({"payload": '{"actionsById":{},"stagedActionIds":[0,1]}'}, BadInput, "action 1"),
    ],
)
def test_bad_files(doc, error, text):
    with pytest.raises(error, match=text):
        from_redux(doc)
