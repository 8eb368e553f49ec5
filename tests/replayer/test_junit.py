"""JUnit XML: one testcase per log, a failure per log with findings, always parseable."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from replayer.findings import Finding, LogResult
from replayer.junit import junit_xml


def test_one_testcase_per_log_and_failures_carry_the_finding():
    nasty = "order\x1b[31m\x00\u202e[bold]x[/bold]"
    results = [
        LogResult("clean.rdtlog"),
        LogResult(
            "bad.rdtlog",
            (
                Finding(
                    "mutation",
                    7,
                    {"type": nasty, "v": 7},
                    [{"op": "add", "path": "/a", "value": 1}],
                    "reducing v=7 changed its input state at /a",
                ),
                Finding(
                    "nondeterministic-call", 9, {"type": "t"}, None, "time.time() called at x.py:3"
                ),
            ),
        ),
    ]
    root = ET.fromstring(junit_xml(results, durations=[0.5, 1.25]))
    suite = root.find("testsuite")
    assert (
        suite.get("name") == "rdt.verify"
        and suite.get("tests") == "2"
        and suite.get("failures") == "1"
    )
    cases = suite.findall("testcase")
    assert [(c.get("classname"), c.get("name")) for c in cases] == [
        ("rdt.verify", "clean.rdtlog"),
        ("rdt.verify", "bad.rdtlog"),
    ]
    assert cases[0].find("failure") is None
    failure = cases[1].find("failure")
    assert failure.get("type") == "mutation"
    assert "at v=7" in failure.get("message") and "+1 more" in failure.get("message")
    assert "error[mutation]" in failure.text and "error[nondeterministic-call]" in failure.text
    assert "\x1b" not in failure.text and "\\x1b" in failure.text
    assert "[bold]x[/bold]" in failure.text
