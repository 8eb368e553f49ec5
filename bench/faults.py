"""Fault bench (issue 12 item 8): the recorder under faults, each in its own processes.

Usage:
    .venv/bin/python bench/faults.py [--case silent] [--clients 200] [--seconds 15]
        [--max-queue-bytes 67108864]

Cases:
    silent: a chatty server (every inbound message is broadcast to every connection) behind
        ``rdt record``; CLIENTS raw clients each send 1 kB messages as fast as the socket takes
        them and never read. Prints the recorder's peak RSS (VmHWM), its RSS at the end, the
        messages and gaps in the log, and whether every seq is stored or covered by a gap.

Everything listens on loopback; every loop is bounded by ``--seconds``.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def status_kib(pid: int, key: str) -> int:
    """A ``/proc/PID/status`` figure (``VmHWM``, ``VmRSS``) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def start_server(code: str) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen([PY, "-c", code], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    return proc, int(proc.stdout.readline())


def start_recorder(upstream: str, log: str, *extra: str) -> tuple[subprocess.Popen, int]:
    env = dict(os.environ, RDT_TOKEN="bench")
    proc = subprocess.Popen(
        [PY, "-c", "from devtools.cli import main; main()", "record", "--upstream", upstream,
         "--listen", "127.0.0.1:0", "--control", "127.0.0.1:0", "--log", log, "--name",
         "faults", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT, env=env,
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
        while time.monotonic() < deadline:
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
        recorder.send_signal(signal.SIGINT)
        try:
            recorder.wait(60)
        except subprocess.TimeoutExpired:
            recorder.kill()
        server.kill()
    facts = check_log(log)
    print(
        f"silent: {args.clients} clients x {args.seconds:g} s, --max-queue-bytes "
        f"{args.max_queue_bytes}: frames sent {sent[0]}, recorder RSS at start {base // 1024} MB, "
        f"peak {peak // 1024} MB, at the end {end // 1024} MB; log: {facts}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--case", default="silent", choices=["silent"])
    parser.add_argument("--clients", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--max-queue-bytes", type=int, default=64 * 1024 * 1024)
    args = parser.parse_args()
    {"silent": silent}[args.case](args)


if __name__ == "__main__":
    main()
