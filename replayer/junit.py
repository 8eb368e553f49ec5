"""JUnit XML for `rdt verify --junit FILE`: one ``<testcase>`` per log, a ``<failure>`` per problem.

CI systems (GitHub Actions reporters, GitLab, Jenkins) read this shape: a ``<testsuites>`` root
holding one ``<testsuite name="rdt.verify">``; each log is a ``<testcase classname="rdt.verify"
name=LOG>``; a log with findings gets one ``<failure type=KIND message=…>`` whose text is the
readable report. Recorded data is made visible (control characters escaped) and characters
XML 1.0 cannot hold are dropped, so the file always parses.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence

from rich.console import Console

from devtools.masking import mask
from replayer.findings import KINDS, LogResult

__all__ = ["junit_xml"]

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def _clean(text: str) -> str:
    return _NOT_XML.sub("\ufffd", mask(text))


def _plain(result: LogResult) -> str:
    console = Console(
        width=120, record=True, color_system=None, markup=False, highlight=False, file=_Null()
    )
    for finding in result.findings:
        console.print(finding)
    return console.export_text()


class _Null:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def junit_xml(results: Sequence[LogResult], *, durations: Sequence[float] | None = None) -> bytes:
    """The JUnit XML document (UTF-8 bytes, with declaration) for these verdicts."""
    failures = sum(1 for r in results if not r.ok)
    total = sum(durations) if durations else 0.0
    root = ET.Element("testsuites", tests=str(len(results)), failures=str(failures))
    suite = ET.SubElement(
        root,
        "testsuite",
        name="rdt.verify",
        tests=str(len(results)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{total:.3f}",
    )
    for i, result in enumerate(results):
        case = ET.SubElement(
            suite,
            "testcase",
            classname="rdt.verify",
            name=_clean(result.log),
            time=f"{durations[i]:.3f}" if durations else "0.000",
        )
        if result.ok:
            continue
        first = result.headline or result.findings[0]  # what decided first_divergent_v
        kinds = sorted({f.kind for f in result.findings})
        where = f" at v={first.v}" if first.v is not None else ""
        message = f"{KINDS.get(first.kind, first.kind)}{where}"
        if len(result.findings) > 1:
            message += f" (+{len(result.findings) - 1} more: {', '.join(kinds)})"
        failure = ET.SubElement(case, "failure", message=_clean(message), type=first.kind)
        failure.text = _clean(_plain(result))
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
