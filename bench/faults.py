"""Fault bench (issue 12 item 8): the recorder under faults, each in its own processes.

Usage:
    .venv/bin/python bench/faults.py [--case silent|kill9|bomb|enospc|upstream|logux|all]
        [--clients 200] [--seconds 15] [--max-queue-bytes 67108864] [--rounds 40]
        [--actions 120000]

Cases:
    silent: a chatty server (every inbound message is broadcast to every connection) behind
        ``rdt record``; CLIENTS raw clients each send 1 kB messages as fast as the socket takes
        them and never read. Prints the recorder's peak RSS (VmHWM), its RSS at the end, the
        messages and gaps in the log, and whether every seq is stored or covered by a gap.
    kill9: ROUNDS rounds, a CPU burner process per core running throughout; each round an
        echo server, ``rdt record`` in front of it, one client pipelining 64 messages at a time
        and noting when each echo came back (acknowledged), ``kill -9`` of the recorder at a
        random moment (0.3-1.5 s in). Prints rounds, corrupt logs (does not open, or SQLite's
        integrity check fails), duplicates, acknowledged messages lost, the age of the oldest
        lost one (acknowledgement to kill) and the rounds that broke the 100 ms promise.
    bomb: one ~0.5 MB permessage-deflate frame inflating to 512 MiB sent through the recorder.
        Prints the recorder's RSS before and its peak (VmHWM), and how the frame was recorded.
    enospc: the log on a real 32 MiB tmpfs (needs root to mount it); a client exchanges 4 kB
        messages while a ballast file fills the filesystem, then the ballast is removed. Prints
        messages stored, gaps, seqs in gaps against missing seqs (none uncovered is the promise).
    upstream: 20 clients talking through the recorder, the upstream killed (-9) mid-run, 50
        clients that then get 502, the upstream started again, one client through. Prints
        whether the recorder kept running and its stderr lines about the upstream.
    logux: a Logux client's backlog of ACTIONS actions in one ``sync`` frame (~7.4 MiB at the
        default) through ``rdt record`` (its defaults: frames stored to 4 MiB, parsed to
        8 MiB), then one past the parse ceiling; a second client pings every 10 ms meanwhile.
        Baseline: the same frame stored whole (``--max-frame-size 32MiB``), in its own recorder.
        Prints per run the recorder's RSS before and its peak, the events derived, the gaps, and
        the longest ping round trip (the forwarding loop is busy while a frame is parsed).
    all: every case above, one after the other.

Everything listens on loopback; every loop is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import websockets
from websockets.frames import Frame, Opcode

PY = sys.executable
ROOT = Path(__file__).resolve().parent.parent

CHATTY = """
import asyncio
import websockets
from websockets.asyncio.server import serve
clients = set()
async def handler(ws):
    clients.add(ws)
    try:
        async for m in ws:
            websockets.broadcast(clients, m)
    finally:
        clients.discard(ws)
async def main():
    async with serve(handler, "127.0.0.1", 0, compression=None, max_size=None,
                     write_limit=2**16) as s:
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


ECHO = """
import asyncio, sys
import websockets
from websockets.asyncio.server import serve
async def echo(ws):
    try:
        async for m in ws:
            await ws.send(m)
    except websockets.ConnectionClosed:  # the bomb is refused with 1009: not news here
        pass
async def main():
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 0
    async with serve(echo, "127.0.0.1", port) as s:
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""
BURN = "while True: pass"


def status_kib(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` figure (``VmHWM``, ``VmRSS``) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def start_server(code: str, *argv: str) -> tuple[subprocess.Popen, int]:
    # stderr off: the server's noise about clients that vanish is not what the bench measures
    proc = subprocess.Popen(
        [PY, "-c", code, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def start_recorder(
    upstream: str, log: str, *extra: str, stderr: int = subprocess.DEVNULL
) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, RDT_TOKEN="bench")
    proc = subprocess.Popen(
        [PY, "-c", "from devtools.cli import main; main()", "record", "--upstream", upstream,
         "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--log", log, "--name",
         "faults", *extra],
        stdout=subprocess.PIPE, stderr=stderr, text=True, cwd=ROOT, env=env,
    )  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("listening on "):
            return proc, int(line.strip().rsplit(":", 1)[1].rstrip("/"))
    raise SystemExit("recorder did not start")


async def silent_client(port: int, deadline: float, sent: list[int]) -> None:
    """Upgrade, then send 1 kB text frames until ``deadline``; never read a byte."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write(
        (
            f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    await reader.readuntil(b"\r\n\r\n")  # the 101; nothing after it is ever read
    body = b'{"type":"chat","pad":"' + b"x" * 1000 + b'"}'
    frame = Frame(Opcode.TEXT, body).serialize(mask=True, extensions=[])
    try:
        while time.monotonic() < deadline and not writer.transport.is_closing():
            writer.write(frame)
            sent[0] += 1
            try:
                async with asyncio.timeout(max(0.0, deadline - time.monotonic())):
                    await writer.drain()
            except TimeoutError:
                break
    except OSError:
        pass
    writer.transport.abort()


def check_log(log: str) -> dict[str, int | bool]:
    from devtools.store import Log

    with Log.open(log) as opened:
        reader = opened.reader()
        seqs = {m.seq for m in reader.messages()}
        gaps = [g for g in reader.gaps() if g.kind == "messages"]
        last = reader.last_seq() or 0
    covered = set().union(*(range(g.start, g.end + 1) for g in gaps)) if gaps else set()
    top = max([last, *covered]) if covered or last else 0
    missing = set(range(1, top + 1)) - seqs
    return {
        "stored": len(seqs),
        "gaps": len(gaps),
        "gap_seqs": len(covered),
        "missing_seqs": len(missing),
        "missing_uncovered": len(missing - covered),
    }


def silent(args: argparse.Namespace) -> None:
    server, port = start_server(CHATTY)
    tmp = tempfile.mkdtemp(prefix="rdt-faults-")
    log = str(Path(tmp) / "silent.rdtlog")
    recorder, rport = start_recorder(
        f"ws://127.0.0.1:{port}", log, "--max-queue-bytes", str(args.max_queue_bytes)
    )
    base = status_kib(recorder.pid, "VmRSS")
    sent = [0]
    try:
        deadline = time.monotonic() + args.seconds

        async def run() -> None:
            await asyncio.gather(
                *(silent_client(rport, deadline, sent) for _ in range(args.clients)),
                return_exceptions=True,
            )

        asyncio.run(run())
        peak = status_kib(recorder.pid, "VmHWM")
        end = status_kib(recorder.pid, "VmRSS")
    finally:
        interrupt(recorder, server)
    facts = check_log(log)
    print(
        f"silent: {args.clients} clients x {args.seconds:g} s, --max-queue-bytes "
        f"{args.max_queue_bytes}: frames sent {sent[0]}, recorder RSS at start {base // 1024} MB, "
        f"peak {peak // 1024} MB, at the end {end // 1024} MB; log: {facts}"
    )


def interrupt(recorder: subprocess.Popen, server: subprocess.Popen) -> str:
    """Ctrl-C the recorder (killed if it has not stopped in 60 s), kill the server; the
    recorder's stderr."""
    recorder.send_signal(signal.SIGINT)
    try:
        _, err = recorder.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        recorder.kill()
        _, err = recorder.communicate()
    server.kill()
    return err or ""


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait(30)


# ---------------------------------------------------------------- kill9


async def pipelined_until_killed(port: int, pid: int, kill_after: float) -> tuple[dict, float]:
    """Pipeline 64 messages at a time; kill -9 ``pid`` after ``kill_after`` seconds.

    Returns when each message's echo came back (monotonic, by message number) and the kill.
    """
    from devtools.tasks import spawn

    acked: dict[int, float] = {}
    slots = asyncio.Semaphore(64)
    url = f"ws://127.0.0.1:{port}/"
    async with websockets.connect(url, proxy=None, compression=None) as ws:

        async def send() -> None:
            i = 0
            while True:
                await slots.acquire()
                await ws.send(f'{{"type":"k9","i":{i}}}')
                i += 1

        async def receive() -> None:
            async for echo in ws:
                acked[int(echo.rsplit(":", 1)[1].rstrip("}"))] = time.monotonic()
                slots.release()

        tasks = [spawn(send(), "k9-send"), spawn(receive(), "k9-receive")]
        await asyncio.sleep(kill_after)
        killed_at = time.monotonic()
        os.kill(pid, signal.SIGKILL)
        await asyncio.wait(tasks, timeout=5, return_when=asyncio.FIRST_EXCEPTION)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return acked, killed_at


def stored_k9(log: str) -> list[int] | None:
    """The k9 message numbers the log holds, or ``None`` when the log is corrupt."""
    from devtools.store import Log

    try:
        with sqlite3.connect(log) as db:
            if db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
                return None
        with Log.open(log) as opened:
            return [
                int(m.payload.rsplit(b":", 1)[1].rstrip(b"}"))
                for m in opened.reader().messages(direction="in")
                if m.type == "k9"
            ]
    except Exception:
        return None


def kill9(args: argparse.Namespace) -> None:
    burners = [subprocess.Popen([PY, "-c", BURN]) for _ in range(os.cpu_count() or 2)]
    server, port = start_server(ECHO)
    tmp = tempfile.mkdtemp(prefix="rdt-faults-")
    corrupt = dups = acked_total = lost_total = late = 0
    oldest = 0.0
    try:
        for r in range(args.rounds):
            log = str(Path(tmp) / f"kill9-{r}.rdtlog")
            recorder, rport = start_recorder(f"ws://127.0.0.1:{port}", log)
            try:
                acked, killed_at = asyncio.run(
                    pipelined_until_killed(rport, recorder.pid, random.uniform(0.3, 1.5))
                )
            finally:
                stop(recorder)
            stored = stored_k9(log)
            if stored is None:
                corrupt += 1
                continue
            dups += len(stored) - len(set(stored))
            lost = set(acked) - set(stored)
            acked_total += len(acked)
            lost_total += len(lost)
            if lost:
                age = killed_at - min(acked[i] for i in lost)
                oldest = max(oldest, age)
                late += age > 0.1
    finally:
        server.kill()
        for burner in burners:
            burner.kill()
            burner.wait()
    print(
        f"kill9: {args.rounds} rounds, {len(burners)} CPU burners: corrupt logs {corrupt}, "
        f"duplicates {dups}, acknowledged {acked_total}, acknowledged lost {lost_total}, "
        f"oldest lost acknowledged {oldest * 1000:.0f} ms before the kill, "
        f"rounds over 100 ms {late}"
    )


# ---------------------------------------------------------------- bomb


def bomb(args: argparse.Namespace) -> None:
    size = 512 * 2**20
    z = zlib.compressobj(9, zlib.DEFLATED, -15)
    chunk = b"\0" * 2**20
    data = b"".join([*(z.compress(chunk) for _ in range(size // len(chunk))), z.flush(2)])[:-4]
    head = bytes([0x80 | 0x40 | Opcode.TEXT.value, 0x80 | 127]) + len(data).to_bytes(8, "big")
    frame = head + b"\0\0\0\0" + data  # zero mask key: the payload goes as is

    server, port = start_server(ECHO)
    tmp = tempfile.mkdtemp(prefix="rdt-faults-")
    log = str(Path(tmp) / "bomb.rdtlog")
    recorder, rport = start_recorder(f"ws://127.0.0.1:{port}", log)
    try:
        base = status_kib(recorder.pid, "VmRSS")

        async def run() -> None:
            reader, writer = await asyncio.open_connection("127.0.0.1", rport)
            key = base64.b64encode(os.urandom(16)).decode()
            writer.write(
                (
                    f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
                    f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                    "Sec-WebSocket-Version: 13\r\n"
                    "Sec-WebSocket-Extensions: permessage-deflate; client_no_context_takeover\r\n"
                    "\r\n"
                ).encode()
            )
            answer = await reader.readuntil(b"\r\n\r\n")
            assert b"permessage-deflate" in answer, answer
            writer.write(frame)
            await writer.drain()
            await asyncio.sleep(2)
            writer.transport.abort()

        asyncio.run(run())
        time.sleep(0.5)
        peak = status_kib(recorder.pid, "VmHWM")
    finally:
        interrupt(recorder, server)
    from devtools.store import Log

    with Log.open(log) as opened:
        recorded = [(m.flag, m.size) for m in opened.reader().messages(direction="in")]
    print(
        f"bomb: {len(frame) / 1e6:.2f} MB frame inflating to {size >> 20} MiB: recorder RSS "
        f"before {base // 1024} MB, peak {peak // 1024} MB; recorded as (flag, wire size): "
        f"{recorded}"
    )


# ---------------------------------------------------------------- enospc


def enospc(args: argparse.Namespace) -> None:
    mnt = tempfile.mkdtemp(prefix="rdt-faults-fs-")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", mnt], capture_output=True
    )
    if mounted.returncode != 0:
        print(f"enospc: skipped, cannot mount an 32 MiB tmpfs: {mounted.stderr.decode().strip()}")
        return
    server, port = start_server(ECHO)
    log = str(Path(mnt) / "enospc.rdtlog")
    recorder, rport = start_recorder(f"ws://127.0.0.1:{port}", log, stderr=subprocess.PIPE)
    ballast = Path(mnt) / "ballast"
    try:

        async def run() -> None:
            pad = "x" * 4000
            url = f"ws://127.0.0.1:{rport}/"
            async with websockets.connect(url, proxy=None, compression=None) as ws:
                for phase in ("before", "full", "after"):
                    if phase == "full":
                        with ballast.open("wb") as f:
                            try:
                                while True:
                                    f.write(b"\0" * 65536)
                                    f.flush()
                            except OSError:
                                pass
                    if phase == "after":
                        ballast.unlink()
                    for i in range(300):
                        await ws.send(f'{{"type":"{phase}","i":{i},"pad":"{pad}"}}')
                        await ws.recv()
                    await asyncio.sleep(0.3)

        asyncio.run(run())
    finally:
        err = interrupt(recorder, server)
    try:
        facts = check_log(log)
    finally:
        subprocess.run(["umount", mnt], check=False)
    said = [line for line in err.splitlines() if line.strip()]
    print(f"enospc: 900 messages each way through a 32 MiB tmpfs filled mid-run; log: {facts}")
    print(f"enospc: recorder stderr: {said}")


# ---------------------------------------------------------------- upstream


def upstream(args: argparse.Namespace) -> None:
    server, port = start_server(ECHO)
    tmp = tempfile.mkdtemp(prefix="rdt-faults-")
    log = str(Path(tmp) / "upstream.rdtlog")
    recorder, rport = start_recorder(f"ws://127.0.0.1:{port}", log, stderr=subprocess.PIPE)
    url = f"ws://127.0.0.1:{rport}/"
    closes: list[int | None] = []
    statuses: list[str] = []

    async def talker() -> None:
        async with websockets.connect(url, proxy=None) as ws:
            try:
                while True:
                    await ws.send('{"type":"t"}')
                    await ws.recv()
                    await asyncio.sleep(0.01)
            except websockets.ConnectionClosed as closed:
                closes.append(closed.rcvd.code if closed.rcvd else None)

    async def refused() -> None:
        try:
            async with websockets.connect(url, proxy=None, open_timeout=5):
                statuses.append("101")
        except websockets.InvalidStatus as error:
            statuses.append(str(error.response.status_code))
        except Exception as error:
            statuses.append(type(error).__name__)

    async def run() -> None:
        nonlocal server
        talkers = asyncio.gather(*(talker() for _ in range(20)), return_exceptions=True)
        await asyncio.sleep(1)
        server.kill()
        server.wait()
        async with asyncio.timeout(10):
            await talkers
        await asyncio.gather(*(refused() for _ in range(50)))
        server, _ = start_server(ECHO, str(port))
        await refused()

    try:
        asyncio.run(run())
        alive = recorder.poll() is None
    finally:
        err = interrupt(recorder, server)
    said = [line for line in err.splitlines() if "upstream" in line]
    counts = {s: statuses[:-1].count(s) for s in sorted(set(statuses[:-1]))}
    print(
        f"upstream: 20 clients, upstream killed after 1 s: their close codes "
        f"{ {c: closes.count(c) for c in set(closes)} }; 50 clients after: {counts}; after the "
        f"restart: {statuses[-1]}; recorder still running: {alive}; its stderr lines about the "
        f"upstream ({len(said)}): {said}"
    )


# ---------------------------------------------------------------- logux

LOGUX = """
import asyncio, json
from websockets.asyncio.server import serve
async def handler(ws):
    async for data in ws:
        msg = json.loads(data)
        if msg[0] == "connect":
            await ws.send(json.dumps(["connected", 4, "server:bench", [0, 1_700_000_000_000]]))
        elif msg[0] == "ping":
            await ws.send(json.dumps(["pong", msg[1]]))
        elif msg[0] == "sync":
            await ws.send(json.dumps(["synced", msg[1]]))
async def main():
    async with serve(handler, "127.0.0.1", 0, max_size=None, compression=None) as s:
        print(s.sockets[0].getsockname()[1], flush=True)
        await asyncio.Future()
asyncio.run(main())
"""


def logux_sync(added: int, actions: int, offset: int = 0) -> bytes:
    """One ``sync`` frame of ``actions`` compact ``counter/add`` actions (ids from ``offset``)."""
    parts = [f'["sync",{added}'.encode()]
    for i in range(offset, offset + actions):
        parts.append(
            f',{{"type":"counter/add","by":{i % 7 + 1}}},{{"id":[{i},{i}],"time":{i}}}'.encode()
        )
    return b"".join(parts) + b"]"


async def logux_run(port: int, frames: list[bytes]) -> float:
    """Send ``frames`` as one Logux client while another pings every 10 ms; the longest ping
    round trip (seconds)."""
    from websockets.asyncio.client import connect

    worst = 0.0
    done = asyncio.Event()

    async def pinger() -> None:
        nonlocal worst
        async with connect(f"ws://127.0.0.1:{port}/", compression=None) as ws:
            await ws.send('["connect",4,"20:pinger",0]')
            await ws.recv()
            n = 0
            while not done.is_set():
                n += 1
                began = time.perf_counter()
                await ws.send(f'["ping",{n}]')
                await ws.recv()
                worst = max(worst, time.perf_counter() - began)
                await asyncio.sleep(0.01)

    async def backlog() -> None:
        async with connect(f"ws://127.0.0.1:{port}/", max_size=None, compression=None) as ws:
            await ws.send('["connect",4,"10:offline",0]')
            await ws.recv()
            for frame in frames:
                await ws.send(frame.decode())
                await ws.recv()
        await asyncio.sleep(0.5)
        done.set()

    await asyncio.gather(pinger(), backlog())
    return worst


def logux(args: argparse.Namespace) -> None:
    from devtools.store import Log

    n = args.actions
    backlog = logux_sync(n, n)
    past = logux_sync(n + 1, int(n * 1.5), offset=n)
    for label, extra, frames in (
        ("baseline: stored whole", ["--max-frame-size", "32MiB"], [backlog]),
        ("kept for its events (defaults: stored to 4 MiB, parsed to 8 MiB)", [], [backlog]),
        ("past the parse ceiling (defaults)", [], [past]),
    ):  # fmt: skip
        server, port = start_server(LOGUX)
        tmp = tempfile.mkdtemp(prefix="rdt-faults-")
        log = str(Path(tmp) / "logux.rdtlog")
        recorder, rport = start_recorder(f"ws://127.0.0.1:{port}", log, *extra)
        try:
            base = status_kib(recorder.pid, "VmRSS")
            worst = asyncio.run(logux_run(rport, frames))
            peak = status_kib(recorder.pid, "VmHWM")
        finally:
            interrupt(recorder, server)
        with Log.open(log) as opened:
            reader = opened.reader()
            events = reader.counts().events
            big = [
                (m.flag, len(m.payload) if m.size < 0 else m.size)
                for m in reader.messages()
                if m.type == "sync" or m.flag
            ]
            gaps = len(reader.gaps())
        print(
            f"logux {label}: one sync of {frames[0].count(b'counter/add'):,} actions "
            f"({len(frames[0]) / 2**20:.1f} MiB): recorder RSS before {base // 1024} MB, peak "
            f"{peak // 1024} MB; events {events:,}; the frame stored as "
            f"{big[:1]} (flag, size); gaps {gaps}; longest ping round trip "
            f"{worst * 1000:.0f} ms"
        )


CASES = {
    "silent": silent,
    "kill9": kill9,
    "bomb": bomb,
    "enospc": enospc,
    "upstream": upstream,
    "logux": logux,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="silent", choices=[*CASES, "all"])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--max-queue-bytes", type=int, default=64 * 1024 * 1024)
    parser.add_argument("--actions", type=int, default=120_000)
    args = parser.parse_args()
    for name in CASES if args.case == "all" else [args.case]:
        CASES[name](args)


if __name__ == "__main__":
    main()
