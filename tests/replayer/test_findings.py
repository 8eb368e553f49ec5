"""A finding's diff reads ``old → new`` when it carries the old values."""

from __future__ import annotations

import jsonpatch
from rich.console import Console

from replayer.diff import diff
from replayer.findings import Finding, LogResult


def _text(renderable) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_a_finding_shows_old_and_new_values():
    a = {"orders": {"o1": {"total": 1567, "lines": {"a": 1}}}}
    b = {"orders": {"o1": {"total": 719, "lines": {}}}}
    finding = Finding(
        "reducer-divergence",
        3,
        {"type": "order/line-removed", "v": 3},
        diff=diff(a, b, with_old=True),
    )
    text = _text(LogResult("orders.rdtlog", (finding,)))
    assert "~ total: 1567 → 719" in text
    assert "- a: 1" in text
    # the JSON still applies as RFC 6902
    assert jsonpatch.apply_patch(a, finding.to_json()["diff"]) == b


def test_a_plain_patch_still_renders():
    finding = Finding("reducer-divergence", 3, diff=diff({"total": 1}, {"total": 2}))
    assert "~ total: → 2" in _text(finding)


def test_bisect_and_what_if_json_stay_plain_patches():
    from replayer.bisect import BisectResult
    from replayer.whatif import WhatIfResult

    patch = diff({"total": 1567}, {"total": 719}, with_old=True)
    plain = [{"op": "replace", "path": "/total", "value": 719}]
    assert BisectResult(3, {"type": "x"}, patch).to_json()["diff"] == plain
    assert WhatIfResult([2], 2, patch).to_json()["diff"] == plain
    assert BisectResult(None).to_json()["diff"] is None
