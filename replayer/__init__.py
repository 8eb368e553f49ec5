"""Time travel over a recorded log.

Loads an app's reducer, rebuilds the state at any event with checkpoints, diffs two points as
RFC 6902 JSON Patch, bisects to the first event after which a predicate holds, replays what-if
timelines, verifies determinism and compares reducer versions, and generates regression tests.
It imports neither asyncio nor SQLAlchemy: it works over the iterables ``devtools.store`` hands it.
"""
