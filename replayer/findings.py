"""What `rdt verify` and `rdt compare` found, as values, as JSON, and as a compiler-style report.

A :class:`Finding` names its ``kind``, the ``v`` of the event whose reduction first went wrong,
that event, the state diff at that point (RFC 6902) and a ``detail`` line. The readable form is
modelled on rustc's errors::

    error[hash-divergence]: state differs between runs at v=17
      --> orders.rdtlog, event v=17 (order/line-added)
       |
       = event: {"type":"order/line-added","v":17,…}
       = diff (run 1 → run 2):
           tags
             0: "a" → "b"
       = note: PYTHONHASHSEED 1 and 2 gave different states from the same events
       = help: iterate over sorted(...) rather than a set

Everything taken from a log goes through :func:`devtools.sanitize.visible` and is handed to
Rich as ``Text``, never as markup.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Group
from rich.text import Text

from devtools.jsonutil import dumps
from devtools.sanitize import visible
from replayer.diff import split_pointer

__all__ = ["KINDS", "Finding", "LogResult", "render_diff", "render_finding", "render_result"]

KINDS = {
    "hash-divergence": "state differs between runs",
    "recorded-hash": "replayed state differs from the hash the server recorded",
    "recorded-snapshot": "replayed state differs from the snapshot the server recorded",
    "mutation": "the reducer changed its input state",
    "nondeterministic-call": "the reducer read a clock or a random source",
    "unserializable": "the reducer returned a state JSON cannot carry",
    "exception": "the reducer raised",
    "reducer-divergence": "the two reducers disagree",
    "worker-divergence": "the workers disagree on the same events",
}
"""Every finding kind and the headline it gets."""

_MAX_VALUE = 120
_MAX_OPS = 40


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem, at the first event where it shows."""

    kind: str
    """One of :data:`KINDS`."""
    v: int | None
    """The event whose reduction first went wrong (``0``: the initial state; ``None``: unknown)."""
    event: Any = None
    """That event as recorded (``@@INIT`` for ``v=0``)."""
    diff: list[dict[str, Any]] | None = None
    """RFC 6902 patch at that point (between the runs, recorded → replayed, input before →
    after); ``None`` when there is nothing to diff."""
    detail: str = ""
    """One or more sentences: what exactly differs, the window, the call site, the traceback."""
    note: str = ""
    help: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    """Machine-readable specifics (seeds, path, call site, window), added to ``--json``."""

    def to_json(self) -> dict[str, Any]:
        """The ``--json`` shape: ``{"kind", "v", "event", "diff", "detail"}`` (+ extras)."""
        out: dict[str, Any] = {
            "kind": self.kind,
            "v": self.v,
            "event": self.event,
            "diff": self.diff,
            "detail": self.detail,
        }
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    def __rich__(self) -> Group:
        return render_finding(self)


@dataclass(frozen=True, slots=True)
class LogResult:
    """The verdict on one log."""

    log: str
    findings: tuple[Finding, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    """Run facts for the report: events, runs, seeds, checkpoint interval."""
    headline: Finding | None = None
    """The finding that decides :attr:`first_divergent_v` (``rdt verify``: the first
    disagreement with the log's recorded hashes or snapshots, else the earliest finding);
    ``None``: the earliest finding."""

    @property
    def ok(self) -> bool:
        return not self.findings

    @property
    def first_divergent_v(self) -> int | None:
        if self.headline is not None:
            return self.headline.v
        vs = [f.v for f in self.findings if f.v is not None]
        return min(vs) if vs else None

    @property
    def decided_by(self) -> str | None:
        """The kind (and cause, ``hash-divergence: hidden-state``) behind the headline."""
        if self.headline is None:
            return None
        cause = self.headline.extra.get("cause")
        return f"{self.headline.kind}: {cause}" if cause else self.headline.kind

    def to_json(self, *, with_log: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if with_log:
            out["log"] = self.log
        out.update(
            ok=self.ok,
            first_divergent_v=self.first_divergent_v,
            findings=[f.to_json() for f in self.findings],
        )
        if self.info:
            out["info"] = self.info
        return out

    def __rich__(self) -> Group:
        return render_result(self)


def sort_findings(findings: Iterable[Finding]) -> tuple[Finding, ...]:
    """Findings by ``v`` (unknown last), then kind."""
    return tuple(
        sorted(findings, key=lambda f: (f.v is None, f.v if f.v is not None else 0, f.kind))
    )


# --------------------------------------------------------------------------- rendering


def _short(value: Any, limit: int = _MAX_VALUE) -> str:
    try:
        text = dumps(value).decode("utf-8", "replace")
    except (TypeError, ValueError):
        text = repr(value)
    text = visible(text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def render_diff(patch: list[dict[str, Any]], *, indent: int = 6) -> Text:
    """An RFC 6902 patch as an indented tree of the paths it touches.

    ``replace`` shows ``old → new`` when the op carries the old value (``"from_value"``),
    else ``→ new``; ``add`` is ``+``, ``remove`` is ``-``.
    """
    out = Text()
    shown: list[str] = []
    pad = " " * indent
    for op in patch[:_MAX_OPS]:
        tokens = split_pointer(op.get("path", ""))
        # print the parts of the path not printed yet, one level per line
        common = 0
        while common < min(len(shown), len(tokens) - 1) and shown[common] == tokens[common]:
            common += 1
        for depth in range(common, len(tokens) - 1):
            out.append(f"{pad}{'  ' * depth}{visible(tokens[depth])}\n")
        shown = tokens[:-1]
        leaf = visible(tokens[-1]) if tokens else "(the whole state)"
        depth = max(len(tokens) - 1, 0)
        name = op.get("op")
        if name == "remove":
            line = f"- {leaf}"
            style = "red"
            if "from_value" in op:
                line += f": {_short(op['from_value'])}"
        elif name == "add":
            line, style = f"+ {leaf}: {_short(op.get('value'))}", "green"
        else:
            old = f"{_short(op['from_value'])} → " if "from_value" in op else "→ "
            line, style = f"~ {leaf}: {old}{_short(op.get('value'))}", "yellow"
        out.append(f"{pad}{'  ' * depth}", style=None)
        out.append(line + "\n", style=style)
    if len(patch) > _MAX_OPS:
        out.append(f"{pad}… {len(patch) - _MAX_OPS} more changes (see --json)\n", style="dim")
    return out


def render_finding(finding: Finding, log: str = "") -> Group:
    """One finding as a rustc-style block of ``Text`` lines."""
    head = KINDS.get(finding.kind, finding.kind)
    cause = finding.extra.get("cause")
    if isinstance(cause, str):
        head += f" ({visible(cause)})"
    where = f" at v={finding.v}" if finding.v is not None else ""
    parts: list[Text] = []
    title = Text()
    title.append(f"error[{finding.kind}]", style="bold red")
    title.append(f": {head}{where}", style="bold")
    parts.append(title)
    event_type = finding.event.get("type") if isinstance(finding.event, dict) else None
    location = visible(log) if log else "log"
    if finding.v is not None:
        location += f", event v={finding.v}"
        if isinstance(event_type, str):
            location += f" ({visible(event_type)})"
    parts.append(Text.assemble(("  --> ", "blue"), location))
    parts.append(Text("   |", style="blue"))
    if finding.event is not None:
        parts.append(Text.assemble(("   = ", "blue"), "event: ", _short(finding.event, 200)))
    if finding.detail:
        lines = visible(finding.detail, keep_newlines=True).splitlines() or [""]
        parts.append(Text.assemble(("   = ", "blue"), lines[0]))
        for line in lines[1:]:
            parts.append(Text("       " + line))
    if finding.diff:
        label = finding.extra.get("diff_label", "diff")
        parts.append(Text.assemble(("   = ", "blue"), f"{label}:"))
        parts.append(render_diff(finding.diff, indent=7))
    elif finding.diff is not None:
        parts.append(Text.assemble(("   = ", "blue"), "diff: (none: the states are equal)"))
    if finding.note:
        parts.append(Text.assemble(("   = ", "blue"), ("note", "bold"), ": ", finding.note))
    if finding.help:
        parts.append(Text.assemble(("   = ", "blue"), ("help", "bold cyan"), ": ", finding.help))
    parts.append(Text(""))
    return Group(*parts)


def render_result(result: LogResult) -> Group:
    """Every finding of one log, then a one-line verdict."""
    parts: list[Any] = [render_finding(f, result.log) for f in result.findings]
    runs = result.info.get("runs")
    events = result.info.get("events")
    facts = []
    if events is not None:
        facts.append(f"{events} events")
    if runs:
        seeds = result.info.get("seeds")
        labels = result.info.get("labels") or []
        if labels and not all(label.startswith("PYTHONHASHSEED") for label in labels):
            facts.append(f"{runs} runs ({', '.join(visible(str(x)) for x in labels)})")
        else:
            facts.append(
                f"{runs} runs" + (f" (PYTHONHASHSEED {', '.join(seeds)})" if seeds else "")
            )
    note = result.info.get("note")
    if note:
        facts.append(str(note))
    tail = f" [{'; '.join(facts)}]" if facts else ""
    if result.ok:
        parts.append(Text.assemble(("ok", "bold green"), f": {visible(result.log)}{tail}"))
    else:
        n = len(result.findings)
        decided = f" ({result.decided_by})" if result.decided_by else ""
        parts.append(
            Text.assemble(
                ("FAILED", "bold red"),
                f": {visible(result.log)}: {n} finding{'s' if n != 1 else ''}, "
                f"first at v={result.first_divergent_v}{decided}{tail}",
            )
        )
    return Group(*parts)
