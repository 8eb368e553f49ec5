"""Short garbage-collector pauses while a live tail keeps growing.

Python's cycle collector now and then walks every tracked object (a full collection). A live
tail holds every row it has shown, so those walks grow with it: at 60,000 rows they took
60–250 ms here, and the screen froze for as long. :class:`FreezeOldRows` freezes what exists
(``gc.freeze``) at the first batch and then every few thousand new rows, so a full collection
walks only what came after (10–30 ms measured); it unfreezes everything when the app stops,
so nothing stays uncollected for good. Cyclic garbage already in the old generation when a
freeze happens waits until then (the young generations, where short-lived cycles are, are
collected first).
"""

from __future__ import annotations

import gc

FREEZE_EVERY = 10_000
"""New rows between two freezes."""


class FreezeOldRows:
    """Freezes the heap every ``every`` new rows; :meth:`release` undoes it.

    Stays inactive when something else in the process froze objects already (a pre-forking
    server relies on its frozen objects staying frozen).
    """

    def __init__(self, every: int = FREEZE_EVERY) -> None:
        self.every = every
        self.since = every  # the first rows freeze what the app itself holds
        self.active = gc.get_freeze_count() == 0
        self.freezes = 0

    def grew(self, rows: int) -> None:
        """Account for ``rows`` new rows; freeze once ``every`` have come since the last time."""
        if not self.active:
            return
        self.since += rows
        if self.since >= self.every:
            self.since = 0
            gc.collect(1)  # the young generations' garbage is not frozen with the rest
            gc.freeze()
            self.freezes += 1

    def release(self) -> None:
        """Unfreeze what :meth:`grew` froze."""
        if self.active and self.freezes:
            gc.unfreeze()
            self.freezes = 0
