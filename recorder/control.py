"""The control endpoint (PROTOCOL.md §2): live records, inject, mark and status.

Served with the websockets server on loopback. The token is checked before the upgrade (401),
and a handshake carrying an ``Origin`` header is refused (403) unless that origin was allowed —
so a web page cannot drive the recorder from a browser.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import secrets
from collections.abc import Callable, Iterator
from typing import Any

import websockets
from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from devtools import jsonutil, protocol
from devtools.jsonl import record as record_json
from devtools.model import Connection, Event, Gap, Mark, Message, Snapshot, Worker, WorkerSnapshot
from devtools.tasks import spawn
from devtools.tokens import authorized
from devtools.workers import disagreements
from recorder.proxy import INJECT_HEADER
from recorder.workers import Divergence

LIVE_QUEUE = 100_000
"""Records a slow subscriber may fall behind before it is disconnected (close 1013)."""

REPLY_WAIT = 2.0
"""Seconds an injected client waits for its first reply."""

LOGUX_WAIT = 5.0
"""Seconds a Logux injection waits for each step (``connected``, then the action's answer)."""

LOGUX_PROTOCOL = 5
"""The Logux protocol version an injected Logux client speaks first (@logux/core 0.10 and
@logux/server 0.14 speak 5; a server answering ``wrong-protocol`` is retried once with its own)."""

QUIET = 0.25
"""Seconds without a reply or event after which an injected client's outcome is complete."""

NO_PROXY = "the recorder was started without --upstream: no client connection to inject through"

_KIND = {
    Connection: "connection",
    Message: "message",
    Event: "event",
    Snapshot: "snapshot",
    Gap: "gap",
    Mark: "mark",
    Worker: "worker",
    WorkerSnapshot: "worker_snapshot",
    Divergence: "divergence",
}


def _json(record: Any) -> dict[str, Any]:
    """A live record as the feed sends it (PROTOCOL.md §3, §5)."""
    if type(record) is Divergence:
        return record.to_json()
    return record_json(record)


class ControlServer:
    """Serves the control endpoint for one running recorder.

    Args:
        recorder: the running recorder (its session, proxy, writer, link and log target).
    """

    def __init__(self, recorder: Any) -> None:
        self.recorder = recorder
        self.settings = recorder.settings
        self.session = recorder.session
        self._injections: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._server: Any = None
        self._devtools_conn: int | None = None
        self._logux_hello: tuple[int, Any] = (LOGUX_PROTOCOL, None)

    async def listen(self, host: str, port: int) -> int:
        """Start serving; returns the bound port."""
        self._server = await websockets.serve(
            self._handler,
            host,
            port,
            process_request=self._check,
            max_size=2**24,
        )
        return self._server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        """Close every control connection and stop listening."""
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(3):
                    await self._server.wait_closed()

    def _check(self, connection: ServerConnection, request: Request) -> Response | None:
        headers = request.headers
        if not authorized(self.settings.token, headers.get("Authorization")):
            return connection.respond(401, "missing or wrong token\n")
        origin = headers.get("Origin")
        if origin is not None and origin not in self.settings.allow_origins:
            return connection.respond(403, "origin not allowed (see --allow-origin)\n")
        return None

    async def _handler(self, ws: ServerConnection) -> None:
        tasks: set[asyncio.Task[Any]] = set()
        try:
            async for frame in ws:
                try:
                    value = jsonutil.loads(frame)
                except ValueError:
                    await self._send(ws, protocol.error("a request must be JSON"))
                    continue
                request = protocol.parse_request(value, allowed=protocol.CONTROL_REQUESTS)
                if isinstance(request, protocol.ProtocolError):
                    await self._send(ws, request.reply())
                elif isinstance(request, protocol.Subscribe):
                    tasks.add(spawn(self._subscribe(ws, request), "rdt-control-subscribe"))
                elif isinstance(request, protocol.Inject):
                    tasks.add(spawn(self._answer_inject(ws, request), "rdt-control-inject"))
                elif isinstance(request, protocol.Mark):
                    mark = self.session.mark(request.label)
                    await self._send(ws, protocol.marked(mark.seq))
                elif isinstance(request, protocol.Status):
                    await self._send(ws, self.status())
        except websockets.ConnectionClosed:
            pass
        finally:
            for task in tasks:
                task.cancel()

    @staticmethod
    async def _send(ws: ServerConnection, message: dict[str, Any]) -> None:
        await ws.send(jsonutil.dumps(message).decode())

    def status(self) -> dict[str, Any]:
        """The ``@@devtools/status`` answer."""
        session, writer = self.session, self.recorder.writer
        answer = protocol.status(
            recording=self.recorder.recording_id,
            connections=session.connections,
            messages=session.messages,
            events=session.events,
            store_lag_ms=writer.lag_ms,
            gaps=writer.gaps,
        )
        answer["open_connections"] = len(session.open)
        answer["lost"] = writer.lost
        merge = self.recorder.merge
        if merge is not None:
            answer["workers"] = len(merge.workers)
            answer["divergences"] = len(merge.divergences)
        return answer

    # ------------------------------------------------------------------ subscribe

    async def _subscribe(self, ws: ServerConnection, request: protocol.Subscribe) -> None:
        kinds = frozenset(request.kinds or protocol.RECORD_KINDS)
        live: asyncio.Queue[Any] = asyncio.Queue(LIVE_QUEUE)
        overflow = asyncio.Event()

        def listener(record: Any) -> None:
            if _KIND.get(type(record)) in kinds:
                try:
                    live.put_nowait(record)
                except asyncio.QueueFull:
                    overflow.set()

        self.session.listeners.add(listener)
        sent_seq = sent_v = 0
        sent_divergences: set[tuple[int, int]] = set()
        try:
            if request.from_seq is not None:
                await asyncio.to_thread(self.recorder.writer.flush)
                pages = self.recorder.replay(request.from_seq, kinds)
                while True:
                    page = await asyncio.to_thread(next, pages, None)
                    if page is None:
                        break
                    for record in page:
                        if type(record) is Message:
                            sent_seq = max(sent_seq, record.seq)
                        elif type(record) is Event:
                            sent_v = max(sent_v, record.v)
                        elif type(record) is Divergence:
                            sent_divergences.add(record.key)
                        await self._send(ws, _json(record))
            while True:
                if overflow.is_set():
                    await ws.close(1013, "subscriber too slow")
                    return
                record = await live.get()
                kind = type(record)
                if (kind is Message and record.seq <= sent_seq) or (
                    kind is Event and record.v <= sent_v
                ):
                    continue  # already sent from the log
                if (
                    kind is Divergence
                    and (record.disagreement.worker, record.v) in sent_divergences
                ):
                    continue  # sent from the log
                await self._send(ws, _json(record))
        except websockets.ConnectionClosed:
            pass
        finally:
            self.session.listeners.discard(listener)

    # ------------------------------------------------------------------ inject

    async def _answer_inject(self, ws: ServerConnection, request: protocol.Inject) -> None:
        answer = await self.inject(request)
        with contextlib.suppress(websockets.ConnectionClosed):
            await self._send(ws, answer)

    async def inject(self, request: protocol.Inject) -> dict[str, Any]:
        """Apply an inject once per ``id`` and return its ``@@devtools/injected`` answer.

        An inject without an ``id`` gets one (``rdt-inject-<hex>``), returned in the answer, so
        the caller can retry it idempotently with that id.
        """
        if request.id is None:
            request = dataclasses.replace(request, id=f"rdt-inject-{secrets.token_hex(8)}")
        if request.id is not None:
            existing = self._injections.get(request.id)
            if existing is not None:
                return await asyncio.shield(existing)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        if request.id is not None:
            self._injections[request.id] = future
        try:
            if request.via == "devtools":
                answer = await self._inject_devtools(request)
            elif request.via == "logux":
                answer = await self._inject_logux(request)
            else:
                answer = await self._inject_client(request)
        except Exception as error:  # never leave a waiting duplicate hanging
            answer = protocol.injected(request.id, False, error=f"inject failed: {error}")
        future.set_result(answer)
        return answer

    async def _inject_devtools(self, request: protocol.Inject) -> dict[str, Any]:
        link = self.recorder.link
        if link is None:
            return protocol.injected(
                request.id, False, error="the recorder was started without --devtools-path"
            )
        session = self.session
        if self._devtools_conn is None or self._devtools_conn not in session.open:
            conn = session.open_connection(
                "devtools", self.settings.devtools_path or "", "injected"
            )
            self._devtools_conn = conn.id
        conn_id = self._devtools_conn
        seq = session.message(conn_id, "in", jsonutil.dumps(request.action), False).seq
        session.devtools_cause = seq
        try:
            answer = await link.dispatch(request.action)
        finally:
            session.devtools_cause = None
        if answer.get("type") != protocol.DISPATCHED:
            return protocol.injected(request.id, False, seq=seq, error=answer.get("error"))
        replies = [r for r in answer.get("replies") or [] if isinstance(r, dict)]
        for reply in replies:
            session.message(conn_id, "out", jsonutil.dumps(reply), False)
        return protocol.injected(
            request.id,
            bool(answer.get("ok")),
            seq=seq,
            events=[v for v in answer.get("events") or [] if isinstance(v, int)],
            replies=replies,
            error=answer.get("error"),
        )

    async def _inject_client(self, request: protocol.Inject) -> dict[str, Any]:
        recorder = self.recorder
        if recorder.proxy is None:
            return protocol.injected(request.id, False, error=NO_PROXY)
        nonce, relay_future = recorder.proxy.expect_injection()
        events: list[int] = []
        conn: list[int] = []
        activity = asyncio.Event()

        def on_record(record: Any) -> None:
            if (
                type(record) is Event
                and conn
                and record.cause_seq is not None
                and record.cause_seq in self.session.in_seqs(conn[0])
            ):
                events.append(record.v)
                activity.set()

        host = recorder.settings.listen[0]
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        url = f"ws://{host}:{recorder.port}/"
        replies: list[Any] = []
        self.session.listeners.add(on_record)
        try:
            async with websockets.connect(
                url, additional_headers={INJECT_HEADER: nonce}, proxy=None, max_size=None
            ) as client:
                relay = await asyncio.wait_for(relay_future, 5)
                conn.append(relay.conn_id)
                await client.send(jsonutil.dumps(request.action).decode())
                wait = REPLY_WAIT
                while True:
                    try:
                        frame = await asyncio.wait_for(client.recv(), wait)
                    except TimeoutError:
                        if activity.is_set():
                            activity.clear()
                            wait = QUIET
                            continue
                        break
                    wait = QUIET
                    replies.append(_reply_value(frame))
        except Exception as error:
            return protocol.injected(request.id, False, error=f"injected client: {error}")
        finally:
            self.session.listeners.discard(on_record)
            if not relay_future.done():
                relay_future.cancel()
        seqs = self.session.in_seqs(conn[0]) if conn else []
        seq = seqs[0] if seqs else None
        return protocol.injected(request.id, True, seq=seq, events=events, replies=replies)

    async def _inject_logux(self, request: protocol.Inject) -> dict[str, Any]:
        """Send the action as a Logux client would, on a connection of the recorder's own.

        ``["connect", 5, node, 0, {subprotocol}]`` (retried once with the server's own version
        or subprotocol when it answers ``wrong-protocol``/``wrong-subprotocol``), then, after
        ``connected``, ``["sync", 1, action, {"id": 1, "time": 0}]``; the outcome is the
        server's ``logux/processed`` (ok) or ``logux/undo`` (not ok, its ``reason``) for that
        action's id, ``{connected base time + 1} {node} 0``. The answer carries it as ``logux``.
        """
        if self.recorder.proxy is None:
            return protocol.injected(request.id, False, error=NO_PROXY)
        node = f"rdt:inject:{secrets.token_hex(4)}"
        version, sub = self._logux_hello
        for _attempt in range(3):
            try:
                answer = await self._logux_session(request, node, version, sub)
                self._logux_hello = (version, sub)  # what this server accepted: the next inject
                return answer
            except _LoguxRefused as refused:
                retry = _logux_retry(refused, version, sub)
                if retry is None:
                    return protocol.injected(
                        request.id, False, error=f"the Logux server refused connect: {refused}"
                    )
                version, sub = retry
        return protocol.injected(request.id, False, error="the Logux server refused connect")

    async def _logux_session(
        self, request: protocol.Inject, node: str, version: int, sub: Any
    ) -> dict[str, Any]:
        recorder = self.recorder
        nonce, relay_future = recorder.proxy.expect_injection()
        conn: list[int] = []
        mine: set[int] = set()
        sync_seq: list[int] = []
        events: list[int] = []

        def on_record(record: Any) -> None:
            kind = type(record)
            if kind is Message and conn and record.connection == conn[0]:
                mine.add(record.seq)
                if record.direction == "in" and record.type == "sync":
                    sync_seq.append(record.seq)
            elif kind is Event and record.cause_seq in mine:
                events.append(record.v)

        host = recorder.settings.listen[0]
        host = "127.0.0.1" if host in ("", "0.0.0.0", "::") else host
        url = f"ws://{host}:{recorder.port}/"
        replies: list[Any] = []
        answer: dict[str, Any] | None = None
        connect: list[Any] = ["connect", version, node, 0]
        if sub is not None:
            connect.append({"subprotocol": sub})
        self.session.listeners.add(on_record)
        try:
            async with websockets.connect(
                url, additional_headers={INJECT_HEADER: nonce}, proxy=None, max_size=None
            ) as client:
                relay = await asyncio.wait_for(relay_future, 5)
                conn.append(relay.conn_id)
                await client.send(jsonutil.dumps(connect).decode())
                async with asyncio.timeout(LOGUX_WAIT):
                    while True:
                        msg = _reply_value(await client.recv())
                        replies.append(msg)
                        head = msg[0] if isinstance(msg, list) and msg else None
                        if head == "connected":
                            break
                        if head == "error":
                            raise _LoguxRefused(
                                str(msg[1]) if len(msg) > 1 else "error",
                                msg[2] if len(msg) > 2 else None,
                            )
                        if head == "ping":
                            await client.send(jsonutil.dumps(["pong", *msg[1:2]]).decode())
                sync = ["sync", 1, request.action, {"id": 1, "time": 0}]
                await client.send(jsonutil.dumps(sync).decode())
                tail = f" {node} 0"
                try:
                    async with asyncio.timeout(LOGUX_WAIT):
                        while answer is None:
                            msg = _reply_value(await client.recv())
                            replies.append(msg)
                            head = msg[0] if isinstance(msg, list) and msg else None
                            if head == "sync" and len(msg) > 1:  # confirm, as a client does
                                await client.send(jsonutil.dumps(["synced", msg[1]]).decode())
                            elif head == "ping":
                                await client.send(jsonutil.dumps(["pong", *msg[1:2]]).decode())
                            answer = _logux_answer(msg, tail)
                except TimeoutError:
                    pass
        except _LoguxRefused:
            raise
        except TimeoutError:
            error = f"the Logux server did not answer connect within {LOGUX_WAIT:g} s"
            return protocol.injected(request.id, False, replies=replies, error=error)
        except Exception as error:
            return protocol.injected(request.id, False, error=f"injected Logux client: {error}")
        finally:
            self.session.listeners.discard(on_record)
            if not relay_future.done():
                relay_future.cancel()
        seq = sync_seq[0] if sync_seq else None
        if answer is None:
            result = protocol.injected(
                request.id,
                False,
                seq=seq,
                events=events,
                replies=replies,
                error=f"no logux/processed or logux/undo within {LOGUX_WAIT:g} s",
            )
        else:
            undone = answer["type"] == "logux/undo"
            reason = f"logux/undo: {answer.get('reason', 'no reason')}" if undone else None
            result = protocol.injected(
                request.id, not undone, seq=seq, events=events, replies=replies, error=reason
            )
        result["logux"] = answer
        return result


class _LoguxRefused(Exception):
    """The server answered ``connect`` with ``["error", kind, options]``."""

    def __init__(self, kind: str, options: Any) -> None:
        super().__init__(f"{kind} {jsonutil.dumps(options).decode()}")
        self.kind = kind
        self.options = options


def _logux_retry(refused: _LoguxRefused, version: int, sub: Any) -> tuple[int, Any] | None:
    """The (version, subprotocol) to connect again with after ``refused``, or ``None``."""
    supported = refused.options.get("supported") if isinstance(refused.options, dict) else None
    if supported is None or isinstance(supported, bool):
        return None
    if refused.kind == "wrong-protocol" and isinstance(supported, int) and supported != version:
        return supported, sub
    if refused.kind == "wrong-subprotocol" and supported != sub:
        return version, supported
    return None


def _logux_answer(msg: Any, action_id_tail: str) -> dict[str, Any] | None:
    """The ``logux/processed`` or ``logux/undo`` in a server ``sync`` answering our action."""
    if not (isinstance(msg, list) and len(msg) >= 4 and msg[0] == "sync"):
        return None
    for action in msg[2::2]:
        if (
            isinstance(action, dict)
            and action.get("type") in ("logux/processed", "logux/undo")
            and isinstance(action.get("id"), str)
            and action["id"].endswith(action_id_tail)
        ):
            return action
    return None


def _reply_value(frame: str | bytes) -> Any:
    try:
        return jsonutil.loads(frame)
    except ValueError:
        return {"raw": frame if isinstance(frame, str) else frame.hex()}


def iter_pages(
    reader: Any, from_seq: int, kinds: frozenset[str], size: int = 1000
) -> Iterator[list[Any]]:
    """The log's records for a subscriber replaying from ``from_seq``, in pages.

    Connections, snapshots and events come first (all of them), then messages, marks and gaps
    from ``from_seq`` on, then (several workers) the workers, their snapshots and where they
    disagreed (decided again from the log's worker hashes, by the rule the live feed follows).
    """
    sources: list[Callable[[], Any]] = []
    if "connection" in kinds:
        sources.append(reader.connections)
    if "snapshot" in kinds:
        sources.append(reader.snapshots)
    if "event" in kinds:
        sources.append(reader.events)
    if "message" in kinds:
        sources.append(lambda: reader.messages(from_seq))
    if "mark" in kinds:
        sources.append(lambda: [m for m in reader.marks() if m.seq >= from_seq])
    if "gap" in kinds:
        sources.append(reader.gaps)
    if "worker" in kinds:
        sources.append(reader.workers)
    if "worker_snapshot" in kinds:
        sources.append(reader.worker_snapshots)
    if "divergence" in kinds:
        sources.append(lambda: logged_divergences(reader))
    page: list[Any] = []
    for source in sources:
        for record in source():
            page.append(record)
            if len(page) >= size:
                yield page
                page = []
    if page:
        yield page


def logged_divergences(reader: Any) -> list[Divergence]:
    """The disagreements in a recording's worker hashes, as the live feed's records."""
    workers = {w.index: w for w in reader.workers()}
    if len(workers) < 2:
        return []
    out = []
    for found in disagreements(reader.worker_hashes()):
        worker = workers.get(found.worker) or Worker(found.worker)
        reference = None if found.reference is None else workers.get(found.reference)
        out.append(Divergence(found, worker, reference))
    return out
