"""Events/s through a NATS JetStream bus with 1, 2 and 3 worker processes, without and with the
recorder attached (DESIGN.md §5 "Bus": the recorder costs under 10% of the workers' events/s).

Each measurement starts its own workers (``rdt sample sales-order --bus URL --stream S``
processes) on a fresh stream ``S`` (deleted afterwards) and, in the "with" runs, the recorder as
a process (``rdt record --bus URL --stream S --devtools URL`` per worker ``--log tmp.rdtlog``),
joined to every worker's channel before the traffic starts. Clients (``--clients``, spread
round-robin over the workers) first create ``--orders`` orders (not timed), then send
``--events`` ``order/add-line`` commands in all, pipelined, each to an existing order (a
service's steady state: the state stays the same size, so its hash costs the same at the first
and the last event); the time is from the first command sent to the last client's answer to
its closing ``order/list`` (answered after every earlier command was done, so every event is
then in the stream and folded by its worker).

Rounds alternate which of the two goes first (with/without), and within a round the worker
counts run one after another, so machine noise falls on both alike; the figures are medians
over the rounds (the paired ratio: the median of each round's with/without).

With the recorder, once the clients are answered the bench waits until the log holds every
event (``v`` 1..total, no gap) and every worker's hash after each of them, then stops the
recorder (SIGTERM) and checks the closed log again: the figure is of a recorder that recorded.
It also reads from ``/proc`` the CPU seconds, during the timed traffic, of the recorder (its
event loop and its writer thread apart), the workers, the NATS server (when visible) and the
clients (this process): on a 2-core machine they all share the cores.

    .venv/bin/python bench/cluster.py [--nats nats://127.0.0.1:4222] [--events 4000]
        [--rounds 5] [--workers 1,2,3] [--clients 6] [--orders 50] [--hash-every 1]
        [--profile DIR] [--recorder-reads bus+links|links]

``--recorder-reads links`` starts the recorder without ``--bus``: it follows the workers'
channels only (events and hashes both come from them; the stream read is a second copy).
``--hash-every K`` is the workers' own option (the state hash on every K-th event's devtools
frame; 0: none): what the per-event hash costs the workers. ``--profile DIR`` runs the
recorder under cProfile (``DIR/TAG.prof``; its CPU figures are then cProfile's too).

Exits 1 when the recorder costs 10% or more at some worker count, 3 when NATS is missing.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from websockets.asyncio.client import ClientConnection, connect  # noqa: E402

from devtools import jsonutil, protocol  # noqa: E402
from devtools.control_client import connect as control_connect  # noqa: E402

TOKEN = "bench-token"
BAR = 0.10
"""The recorder's cost bar (DESIGN.md §5 "Bus")."""
SKUS = ("A", "B", "C", "D")
TICK = os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- processes


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process ``pid`` so far (0 when it is gone or unknown)."""
    return 0.0 if pid is None else cpu_seconds_of(Path(f"/proc/{pid}/stat"))


def cpu_seconds_of(stat: Path) -> float:
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def thread_seconds(pid: int) -> tuple[float, float]:
    """CPU seconds of process ``pid``'s main thread (its event loop) and of its other threads
    (the recorder's writer) so far."""
    main = other = 0.0
    for task in Path(f"/proc/{pid}/task").glob("*"):
        seconds = cpu_seconds_of(task / "stat")
        if task.name == str(pid):
            main += seconds
        else:
            other += seconds
    return main, other


def find_nats_server() -> int | None:
    """The pid of a local ``nats-server`` process, if one can be seen."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if (entry / "comm").read_text().strip() == "nats-server":
                    return int(entry.name)
    return None


async def start_rdt(
    args: list[str], until: str, *, profile: str | None = None
) -> tuple[asyncio.subprocess.Process, dict]:
    """``python -m devtools ARGS`` as a process (under cProfile, written to ``profile`` when
    it stops); its ``key: value`` stdout lines until one starts with ``until``."""
    profiler = ["-m", "cProfile", "-o", profile] if profile else []
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        *profiler,
        "-m",
        "devtools",
        *args,
        cwd=ROOT,
        env={**os.environ, "COLUMNS": "300"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    lines: dict[str, str] = {}
    try:
        async with asyncio.timeout(30):
            while True:
                line = (await process.stdout.readline()).decode()
                if not line:
                    raise RuntimeError(
                        f"rdt {args[0]} stopped: {(await process.stderr.read()).decode()}"
                    )
                if line.startswith(until):
                    lines[until] = line.split()[-1]
                    return process, lines
                key, _, value = line.partition(":")
                lines[key.strip()] = value.strip()
    except BaseException:
        await stop(process)
        raise


async def stop(process: asyncio.subprocess.Process) -> bytes:
    """SIGTERM, wait (SIGKILL after 30 s); its stderr."""
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    try:
        _, err = await asyncio.wait_for(process.communicate(), 30)
    except TimeoutError:
        process.kill()
        _, err = await process.communicate()
    return err or b""


async def start_worker(
    nats: str, stream: str, worker_id: str, hash_every: int
) -> tuple[asyncio.subprocess.Process, str, str]:
    """One ``rdt sample sales-order --bus`` worker: the process, its client and devtools URLs."""
    process, lines = await start_rdt(
        ["sample", "sales-order", "--bus", nats, "--stream", stream, "--worker-id", worker_id]
        + ["--port", "0", "--token", TOKEN, "--hash-every", str(hash_every)],
        "devtools",
    )
    return process, lines["clients"], lines["devtools"]


async def start_recorder(
    nats: str,
    stream: str,
    devtools: list[str],
    log: str,
    workers: int,
    profile: str | None,
    bus: bool = True,
) -> asyncio.subprocess.Process:
    """``rdt record [--bus …] --devtools …`` as a process, once it has joined every worker."""
    links = [arg for url in devtools for arg in ("--devtools", url)]
    reads = ["--bus", nats, "--stream", stream] if bus else []
    process, lines = await start_rdt(
        ["record", *reads, *links, "--log", log] + ["--control", "127.0.0.1:0", "--token", TOKEN],
        "control endpoint ",
        profile=profile,
    )
    feed = await control_connect(lines["control endpoint "], TOKEN)
    try:
        request = protocol.subscribe_request(from_seq=1, kinds=["worker"])
        await feed.send(jsonutil.dumps(request).decode())
        named: set[str] = set()
        async with asyncio.timeout(30):  # each worker's hello came: its channel is joined
            while len(named) < workers:
                record = jsonutil.loads(await feed.recv())
                if record.get("kind") == "worker" and record.get("id"):
                    named.add(record["id"])
    finally:
        await feed.close()
    return process


# ---------------------------------------------------------------- clients


async def send_all(ws: ClientConnection, messages: list[dict[str, Any]]) -> int:
    """Send ``messages`` pipelined, then ``order/list``; wait for its answer (every earlier
    message was done by then). The number of error replies."""
    for message in messages:
        await ws.send(jsonutil.dumps(message).decode())
    await ws.send(jsonutil.dumps({"type": "order/list"}).decode())
    errors = 0
    async with asyncio.timeout(300):
        while True:
            reply = jsonutil.loads(await ws.recv())
            if reply["type"] == "error":
                errors += 1
            elif reply["type"] == "order/list":
                return errors


def add_lines(count: int, client: int, clients: int, orders: int) -> list[dict[str, Any]]:
    """Client ``client``'s share of ``count`` ``order/add-line`` commands."""
    out = []
    for i in range(client, count, clients):
        order = f"o{i % orders + 1}"
        sku = SKUS[(i // orders) % len(SKUS)]
        out.append({"type": "order/add-line", "order": order, "sku": sku, "qty": 1, "price": 100})
    return out


# ---------------------------------------------------------------- the log


@dataclass(frozen=True, slots=True)
class LogCount:
    events: int
    first: int | None
    last: int | None
    gaps: int
    hashes: dict[str, int]
    """Worker id → its non-null hashes after events 1.. (``v >= 1``)."""


def count_log(path: str) -> LogCount | None:
    """What the log holds so far (``None`` while it has no recording yet)."""
    if not Path(path).exists():
        return None
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
    try:
        row = db.execute("SELECT max(id) FROM recordings").fetchone()
        if row is None or row[0] is None:
            return None
        rid = row[0]
        events, first, last = db.execute(
            "SELECT count(*), min(v), max(v) FROM events WHERE recording_id = ?", (rid,)
        ).fetchone()
        (gaps,) = db.execute(
            "SELECT count(*) FROM gaps WHERE recording_id = ? AND kind = 'events'", (rid,)
        ).fetchone()
        hashes = dict(
            db.execute(
                "SELECT w.worker_id, count(h.v) FROM workers w LEFT JOIN worker_hashes h"
                " ON h.recording_id = w.recording_id AND h.worker = w.worker"
                " AND h.v >= 1 AND h.hash IS NOT NULL"
                " WHERE w.recording_id = ? GROUP BY w.worker_id",
                (rid,),
            ).fetchall()
        )
    except sqlite3.OperationalError:  # the schema is being created
        return None
    finally:
        db.close()
    return LogCount(events, first, last, gaps, hashes)


def complete(found: LogCount | None, total: int, worker_ids: list[str], hash_every: int) -> bool:
    """Every event ``1..total`` is in the log, no gap, and every worker's hash after each
    event that carries one (``v % hash_every == 0``)."""
    hashes = total // hash_every if hash_every else 0
    return (
        found is not None
        and found.events == total
        and found.first == 1
        and found.last == total
        and found.gaps == 0
        and all(found.hashes.get(w, 0) == hashes for w in worker_ids)
    )


# ---------------------------------------------------------------- one measurement


@dataclass(slots=True)
class Run:
    workers: int
    recorded: bool
    events: int
    seconds: float
    errors: int
    worker_cpu: float
    nats_cpu: float
    bench_cpu: float
    recorder_cpu: float = 0.0
    """During the timed traffic."""
    recorder_total_cpu: float = 0.0
    """From the recorder's start until it was stopped (start-up and catching up included)."""
    recorder_threads: tuple[float, float] = (0.0, 0.0)
    """During the timed traffic: the recorder's event loop thread, its other threads."""
    catch_up: float = 0.0
    """Seconds after the last answer until the log held every event and hash."""
    log: LogCount | None = None

    @property
    def rate(self) -> float:
        return self.events / self.seconds


@dataclass
class Bench:
    """One run's settings and what it made (the streams, deleted at the end)."""

    nats: str
    admin: Any
    """A NATS connection for stream admin."""
    events: int
    clients: int
    orders: int
    hash_every: int
    tmp: str
    profile: str | None
    """A directory: run the recorder under cProfile, one ``TAG.prof`` per run."""
    recorder_bus: bool = True
    """The recorder reads the stream too (``--bus``), not only the workers' channels."""
    nats_pid: int | None = field(default_factory=lambda: find_nats_server())
    made: list[str] = field(default_factory=list)

    async def delete_stream(self, stream: str) -> None:
        from nats.js.errors import NotFoundError

        with contextlib.suppress(NotFoundError):
            await self.admin.jetstream().delete_stream(stream)

    async def last_seq(self, stream: str) -> int:
        return (await self.admin.jetstream().stream_info(stream)).state.last_seq

    async def run(self, workers: int, recorded: bool, tag: str) -> Run:
        stream = f"rdt_bench_{os.getpid()}_{tag}"
        self.made.append(stream)
        log = f"{self.tmp}/{tag}.rdtlog"
        procs: list[asyncio.subprocess.Process] = []
        recorder = None
        ids = [f"bench-{tag}-w{i}" for i in range(1, workers + 1)]
        try:
            urls = []
            for worker_id in ids:  # one after another: each joins the stream as it is
                process, url, devtools = await start_worker(
                    self.nats, stream, worker_id, self.hash_every
                )
                procs.append(process)
                urls.append((url, devtools))
            if recorded:
                profile = f"{self.profile}/{tag}.prof" if self.profile else None
                recorder = await start_recorder(
                    self.nats,
                    stream,
                    [d for _, d in urls],
                    log,
                    workers,
                    profile,
                    bus=self.recorder_bus,
                )
            sockets = [
                await connect(urls[c % workers][0], max_queue=None, max_size=None)
                for c in range(self.clients)
            ]
            try:
                creates = [
                    {"type": "order/create", "customer": f"C{i}"} for i in range(self.orders)
                ]
                if await send_all(sockets[0], creates):
                    raise RuntimeError("the setup's orders were refused")
                base = await self.last_seq(stream)
                shares = [
                    add_lines(self.events, c, self.clients, self.orders)
                    for c in range(self.clients)
                ]
                pids = [p.pid for p in procs]
                w0 = sum(map(cpu_seconds, pids))
                n0, b0 = cpu_seconds(self.nats_pid), time.process_time()
                r0 = cpu_seconds(recorder.pid) if recorder else 0.0
                t0 = thread_seconds(recorder.pid) if recorder else (0.0, 0.0)
                started = time.perf_counter()
                sending = (send_all(s, m) for s, m in zip(sockets, shares, strict=True))
                errors = sum(await asyncio.gather(*sending))
                seconds = time.perf_counter() - started
                run = Run(
                    workers,
                    recorded,
                    await self.last_seq(stream) - base,
                    seconds,
                    errors,
                    sum(map(cpu_seconds, pids)) - w0,
                    cpu_seconds(self.nats_pid) - n0,
                    time.process_time() - b0,
                )
                if recorder is not None:
                    run.recorder_cpu = cpu_seconds(recorder.pid) - r0
                    t1 = thread_seconds(recorder.pid)
                    run.recorder_threads = (t1[0] - t0[0], t1[1] - t0[1])
            finally:
                for s in sockets:
                    await s.close()
            if recorder is not None:
                total = base + run.events
                done = time.perf_counter()
                while not complete(found := count_log(log), total, ids, self.hash_every):
                    if time.perf_counter() - done > 60:
                        raise RuntimeError(f"the recorder's log is incomplete: {found}")
                    await asyncio.sleep(0.05)
                run.catch_up = time.perf_counter() - done
                run.recorder_total_cpu = cpu_seconds(recorder.pid)
                err = await stop(recorder)
                recorder = None
                run.log = count_log(log)
                if not complete(run.log, total, ids, self.hash_every):
                    raise RuntimeError(f"the closed log is incomplete: {run.log}")
                if err.strip():
                    print(f"    recorder said: {err.decode().strip()[:300]}", file=sys.stderr)
            return run
        finally:
            if recorder is not None:
                await stop(recorder)
            for process in procs:
                await stop(process)
            await self.delete_stream(stream)
            with contextlib.suppress(FileNotFoundError):
                for suffix in ("", "-wal", "-shm"):
                    os.unlink(log + suffix)


# ---------------------------------------------------------------- report


def show(run: Run) -> str:
    what = "with   " if run.recorded else "without"
    text = (
        f"{what} {run.rate:7,.0f} ev/s ({run.events:,} in {run.seconds:5.2f} s"
        f"{f', {run.errors} errors' if run.errors else ''})  CPU s: workers {run.worker_cpu:5.2f}"
        f" nats {run.nats_cpu:4.2f} clients {run.bench_cpu:4.2f}"
    )
    if run.recorded:
        text += (
            f" recorder {run.recorder_cpu:4.2f} (loop {run.recorder_threads[0]:4.2f}, writer"
            f" {run.recorder_threads[1]:4.2f}; whole life {run.recorder_total_cpu:4.2f},"
            f" caught up {run.catch_up:4.2f} s after)"
        )
    return text


def summary(runs: list[Run], workers: int) -> tuple[str, float]:
    bare = [r for r in runs if r.workers == workers and not r.recorded]
    rec = [r for r in runs if r.workers == workers and r.recorded]
    without = statistics.median(r.rate for r in bare)
    with_ = statistics.median(r.rate for r in rec)
    paired = statistics.median(b.rate / a.rate for a, b in zip(bare, rec, strict=True))
    cost = 1 - paired
    cpu = statistics.median(r.recorder_cpu / r.seconds for r in rec)
    per_event = statistics.median(r.recorder_cpu / r.events * 1e6 for r in rec)
    worker_cpu = [statistics.median(r.worker_cpu / r.events * 1e6 for r in x) for x in (bare, rec)]
    line = (
        f"{workers} worker{'s' if workers > 1 else ' '}: without {without:7,.0f} ev/s   with "
        f"{with_:7,.0f} ev/s   ratio {with_ / without:.3f} (paired median {paired:.3f})   "
        f"cost {cost * 100:5.1f}%   recorder {cpu * 100:4.0f}% of a core, {per_event:,.0f} µs "
        f"CPU/event; workers {worker_cpu[0]:,.0f} → {worker_cpu[1]:,.0f} µs CPU/event"
    )
    return line, cost


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nats", default=os.environ.get("RDT_TEST_NATS", "nats://127.0.0.1:4222"))
    parser.add_argument("--events", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", default="1,2,3", help="worker counts, comma-separated")
    parser.add_argument("--clients", type=int, default=6)
    parser.add_argument("--orders", type=int, default=50)
    parser.add_argument(
        "--hash-every", type=int, default=1, help="the workers' --hash-every (default 1)"
    )
    parser.add_argument("--profile", help="a directory: the recorder runs under cProfile")
    parser.add_argument(
        "--recorder-reads",
        choices=["bus+links", "links"],
        default="bus+links",
        help="what the recorder follows: the stream and every worker's devtools channel "
        "(default), or the channels alone (events and hashes both come from them)",
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    try:
        import nats

        admin = await nats.connect(args.nats, connect_timeout=2, max_reconnect_attempts=0)
    except Exception as error:
        print(f"bench/cluster.py: cannot reach NATS at {args.nats}: {error}", file=sys.stderr)
        return 3
    runs: list[Run] = []
    with tempfile.TemporaryDirectory(prefix="rdt-cluster-") as tmp:
        bench = Bench(
            args.nats,
            admin,
            args.events,
            args.clients,
            args.orders,
            args.hash_every,
            tmp,
            args.profile,
            recorder_bus=args.recorder_reads == "bus+links",
        )
        print(
            f"{args.events:,} order/add-line events per run from {args.clients} clients, "
            f"{args.rounds} rounds, nats {args.nats}"
            f"{'' if bench.nats_pid else ' (nats-server CPU not visible)'}, {os.cpu_count()} cores"
        )
        try:
            for round_ in range(args.rounds):
                order = (False, True) if round_ % 2 == 0 else (True, False)
                for n in counts:
                    for recorded in order:
                        tag = f"r{round_}_{n}w_{'rec' if recorded else 'bare'}"
                        run = await bench.run(n, recorded, tag)
                        runs.append(run)
                        print(f"  round {round_ + 1} {n}w {show(run)}", flush=True)
        finally:
            for stream in bench.made:
                with contextlib.suppress(Exception):
                    await bench.delete_stream(stream)
            await admin.close()
    print(f"median of {args.rounds} rounds (recorder's log checked: every event, every hash):")
    worst = 0.0
    for n in counts:
        line, cost = summary(runs, n)
        worst = max(worst, cost)
        print("  " + line)
    ok = worst < BAR
    verdict = "ok" if ok else "FAIL"
    print(f"recorder's cost: at most {worst * 100:.1f}% (bar {BAR * 100:.0f}%: {verdict})")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
