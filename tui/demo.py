"""``rdt demo``: the sales-order sample, the recorder and generated traffic on loopback.

Interactive: the TUI opens live on the recorder's control endpoint while traffic runs.
``--headless`` (CI, no terminal): runs the traffic, then prints what was recorded, a determinism
verdict from ``rdt verify``'s module when it is installed, and one state diff — and exits 0.
Everything it starts (server, recorder, traffic) it stops. The log is a SQLite file in a
temporary folder whose path is printed first (and shown in the TUI's header); it is removed at
the end unless ``keep`` (``rdt demo --keep``), when the closing line says how to open it. The
server, recorder and traffic come in as :class:`~tui.stack.DemoParts` (``devtools.cli``).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path
from typing import Any

from rich.text import Text

from devtools.clikit import out_console
from devtools.tasks import spawn
from tui.stack import DemoParts

REDUCER = "samples.sales_order:reducer"


def summarise(log: str, stats: Any) -> list[Text]:
    """The headless summary: counts, a verify verdict (when available) and one diff."""
    from devtools.store import Log
    from tui.widgets.diff_view import patch_text

    lines: list[Text] = []
    with Log.open(log) as opened:
        reader = opened.reader()
        counts = reader.counts()
        lines.append(
            Text(
                f"recorded {counts.messages:,} messages and {counts.events:,} events "
                f"over {counts.connections} connections "
                f"(traffic sent {stats.sent:,}, received {stats.received:,})"
            )
        )
        last = reader.last_v()
    try:
        from replayer.verify import VerifyOptions, verify_log
    except ImportError:
        lines.append(Text("verify: not installed in this build", style="dim"))
    else:
        result = verify_log(log, REDUCER, VerifyOptions(runs=2))
        verdict = "deterministic" if result.ok else f"diverges at v {result.first_divergent_v}"
        lines.append(Text(f"verify: {verdict}"))
    if last:
        from replayer.engine import Replay

        with Replay.open(log, reducer=REDUCER) as replay:
            patch = replay.diff(max(0, last - 1), last)
        lines.append(patch_text(f"diff of the last event: v {last - 1} → v {last}", patch))
    return lines


def closing_line(log: str, *, kept: bool) -> Text:
    """What the demo says about its log at the end: where it is kept, or that it was removed."""
    if kept:
        return Text(f"demo log kept: {log}\nopen it with: rdt tui {log} --reducer {REDUCER}")
    return Text(f"demo log removed: {log} (rdt demo --keep keeps it)", style="dim")


async def _headless(parts: DemoParts, messages: int, log: str) -> list[Text]:
    from tui.stack import demo_stack

    async with demo_stack(log, parts=parts) as stack:
        stats = await parts.run_traffic(stack.proxy_url, messages=messages)
        await stack.recorder.flush()
    return await asyncio.to_thread(summarise, log, stats)


async def _interactive(parts: DemoParts, messages: int, log: str) -> None:
    from tui.launch import live_app
    from tui.stack import demo_stack

    async with demo_stack(log, parts=parts) as stack:
        app = live_app(
            stack.control_url, token=stack.token, reducer=REDUCER, name=f"demo · log {log}"
        )
        traffic = spawn(_traffic_forever(parts, stack.proxy_url, messages), "rdt-demo-traffic")
        try:
            await app.run_async()
        finally:
            traffic.cancel()
            await asyncio.gather(traffic, return_exceptions=True)


async def _traffic_forever(parts: DemoParts, url: str, messages: int) -> None:
    """Keep traffic flowing (a round every couple of seconds) while the screen is open."""
    while True:
        await parts.run_traffic(url, messages=messages)
        await asyncio.sleep(2)


def run_demo(
    parts: DemoParts, *, headless: bool = False, messages: int = 60, keep: bool = False
) -> str:
    """Run the demo (see the module docstring); returns the log's path (gone unless ``keep``)."""
    console = out_console()
    folder = tempfile.mkdtemp(prefix="rdt-demo-")
    log = str(Path(folder) / "demo.rdtlog")
    note = "" if keep else " (removed on exit; --keep keeps it)"
    console.print(Text(f"demo log: {log}{note}"), soft_wrap=True)  # a path stays on one line
    try:
        if headless:
            for line in asyncio.run(_headless(parts, messages, log)):
                console.print(line)
        else:
            asyncio.run(_interactive(parts, messages, log))
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)
        console.print(closing_line(log, kept=keep), soft_wrap=True)
    return log
