"""Freezing a growing live tail's old rows out of the collector's full walks."""

from __future__ import annotations

import gc

import pytest

from tui.heap import FreezeOldRows


@pytest.fixture(autouse=True)
def _unfrozen():
    gc.unfreeze()
    yield
    gc.unfreeze()


def test_freezes_at_the_first_batch_then_every_n_rows_and_releases():
    frozen = FreezeOldRows(every=100)
    frozen.grew(1)
    assert frozen.freezes == 1 and gc.get_freeze_count() > 0
    frozen.grew(60)
    frozen.grew(39)
    assert frozen.freezes == 1
    frozen.grew(1)  # 100 rows since the last freeze
    assert frozen.freezes == 2
    frozen.release()
    assert gc.get_freeze_count() == 0


def test_leaves_a_process_that_froze_objects_itself_alone():
    gc.freeze()
    before = gc.get_freeze_count()
    frozen = FreezeOldRows(every=1)
    frozen.grew(10)
    frozen.release()
    assert not frozen.active and gc.get_freeze_count() == before


def test_young_cyclic_garbage_is_collected_not_frozen():
    class Node:
        pass

    frozen = FreezeOldRows(every=1)
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle, garbage once the names go
    ids = {id(a), id(b)}
    del a, b
    frozen.grew(1)
    frozen.release()  # anything frozen is back in the oldest generation, uncollected yet
    assert not any(id(o) in ids and type(o).__name__ == "Node" for o in gc.get_objects())
