"""`rdt import-events` memory and speed: peak RSS at N/10 and N rows (flat is the bar).

Writes a SQLite event table of N rows (the row-per-event layout: integer ``id``, ``type``,
JSON ``payload``), imports it with a real ``rdt import-events`` process into a fresh log, and
prints the rows/s and the process's peak RSS (``ru_maxrss`` of the child); then the same for N/10
rows. The import streams keyset pages, so the peak must not grow with the table: the bar is a
peak at N at most 1.5× the peak at N/10.

Usage: python bench/import_events.py [--rows 10000000]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path


def make_table(path: Path, rows: int) -> None:
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=OFF")
    conn.execute("PRAGMA synchronous=OFF")
    conn.execute("CREATE TABLE salesOrder_events (id INTEGER PRIMARY KEY, type TEXT, payload TEXT)")
    batch = []
    for i in range(1, rows + 1):
        payload = {"order": f"o{i % 500}", "sku": f"sku-{i % 40}", "qty": i % 5 + 1, "price": 250}
        batch.append((i, "order/line-added", json.dumps(payload)))
        if len(batch) == 50_000:
            conn.executemany("INSERT INTO salesOrder_events VALUES (?, ?, ?)", batch)
            batch = []
    conn.executemany("INSERT INTO salesOrder_events VALUES (?, ?, ?)", batch)
    conn.commit()
    conn.close()


def import_once(source: Path, log: Path) -> tuple[float, float]:
    """One ``rdt import-events`` in a fresh process: (seconds, peak RSS in MiB)."""
    script = "import sys; from devtools.cli import main; sys.argv[0] = 'rdt'; main()"
    args = [sys.executable, "-c", script, "import-events", str(source)]
    args += ["--table", "salesOrder_events", "--preset", "row-per-event", "--log", str(log)]
    started = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)  # its summary line; the bench prints its own
        os.execv(sys.executable, args)
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"rdt import-events failed ({status})")
    return elapsed, usage.ru_maxrss / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="rdt-bench-import-"))
    try:
        peaks = {}
        for rows in (args.rows // 10, args.rows):
            source, log = folder / f"events-{rows}.db", folder / f"log-{rows}.rdtlog"
            t0 = time.perf_counter()
            make_table(source, rows)
            made = time.perf_counter() - t0
            seconds, peak = import_once(source, log)
            peaks[rows] = peak
            print(
                f"{rows:,} rows (table written in {made:.0f} s): imported in {seconds:.1f} s, "
                f"{rows / seconds:,.0f} rows/s, peak RSS {peak:.0f} MiB",
                flush=True,
            )
            source.unlink()
        small, large = peaks[args.rows // 10], peaks[args.rows]
        ok = large <= 1.5 * small
        print(
            f"peak RSS {large:.0f} MiB at {args.rows:,} rows vs {small:.0f} MiB at "
            f"{args.rows // 10:,}: {large / small:.2f}x (bar 1.5x: {'ok' if ok else 'ABOVE'})"
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
