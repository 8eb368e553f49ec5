"""TLS both ways: a wss:// upstream (trust store + --upstream-ca, --insecure loud, SNI and Host),
a TLS listener, and the handshake facts kept per connection (redactable, some never stored).

The certificates are self-signed, made in the test with the ``openssl`` command line tool.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest
import websockets
from websockets.asyncio.server import serve

from devtools.errors import BadInput
from devtools.store import Log
from recorder.app import start_recorder
from recorder.settings import parse_upstream
from tests.recorder.conftest import settings_for

pytestmark = [
    pytest.mark.timeout(60),
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl CLI"),
]


@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[str, str]:
    """A self-signed certificate for ``localhost`` / 127.0.0.1, and its key."""
    folder = tmp_path_factory.mktemp("tls")
    crt, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
         "-keyout", str(key), "-out", str(crt)],
        check=True, capture_output=True,
    )  # fmt: skip
    return str(crt), str(key)


def server_context(cert: tuple[str, str], seen_sni: list[str | None]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(*cert)
    context.sni_callback = lambda sock, name, ctx: seen_sni.append(name)
    return context


def client_context(cert: tuple[str, str]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=cert[0])


@pytest.fixture
async def tls_echo(cert):
    """A wss:// echo server; records the SNI names and Host headers it saw."""
    seen_sni: list[str | None] = []
    hosts: list[str] = []

    async def handler(ws):
        hosts.append(ws.request.headers.get("Host"))
        async for message in ws:
            await ws.send(message)

    async with serve(handler, "127.0.0.1", 0, ssl=server_context(cert, seen_sni)) as server:
        server.port = server.sockets[0].getsockname()[1]
        server.seen_sni, server.hosts = seen_sni, hosts
        yield server


def tls_settings(port: int, log: str, **kw):
    return replace(
        settings_for(port, log), upstream=parse_upstream(f"wss://localhost:{port}"), **kw
    )


async def test_wss_upstream_with_a_ca_file_sends_sni_and_host_and_records(
    tls_echo, cert, sqlite_log
):
    handle = await start_recorder(tls_settings(tls_echo.port, sqlite_log, upstream_ca=cert[0]))
    try:
        async with websockets.connect(handle.url, proxy=None) as ws:
            await ws.send('{"type":"ping","n":1}')
            assert await ws.recv() == '{"type":"ping","n":1}'
    finally:
        await handle.close()
    assert tls_echo.seen_sni == ["localhost"]
    assert tls_echo.hosts == [f"localhost:{tls_echo.port}"]
    with Log.open(sqlite_log) as log:
        reader = log.reader()
        assert [m.type for m in reader.messages()] == ["ping", "ping"]
        assert reader.recording.upstream == f"wss://localhost:{tls_echo.port}/"


async def test_an_untrusted_certificate_is_refused_with_502_and_said_once(tls_echo, sqlite_log):
    lines: list[str] = []
    handle = await start_recorder(
        replace(tls_settings(tls_echo.port, sqlite_log), stderr=lines.append)
    )
    try:
        for _ in range(3):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(handle.url, proxy=None)
            assert refused.value.response.status_code == 502
    finally:
        await handle.close()
    said = [line for line in lines if "CERTIFICATE_VERIFY_FAILED" in line]
    assert len(said) == 1, lines
    assert tls_echo.hosts == []  # no upgrade reached the server


async def test_insecure_works_and_says_so_loudly(tls_echo, sqlite_log):
    lines: list[str] = []
    settings = replace(tls_settings(tls_echo.port, sqlite_log, insecure=True), stderr=lines.append)
    handle = await start_recorder(settings)
    try:
        async with websockets.connect(handle.url, proxy=None) as ws:
            await ws.send('{"type":"a"}')
            await ws.recv()
    finally:
        await handle.close()
    assert any(line.startswith("WARNING: --insecure") and "NOT checked" in line for line in lines)


async def test_tls_listener_lets_a_wss_client_through(echo_server, cert, sqlite_log):
    settings = settings_for(echo_server.port, sqlite_log, listen_cert=cert[0], listen_key=cert[1])
    handle = await start_recorder(settings)
    try:
        assert handle.url.startswith("wss://")
        async with websockets.connect(handle.url, proxy=None, ssl=client_context(cert)) as ws:
            await ws.send('{"type":"over-tls"}')
            assert await ws.recv() == '{"type":"over-tls"}'
    finally:
        await handle.close()
    with Log.open(sqlite_log) as log:
        assert [m.type for m in log.reader().messages()] == ["over-tls", "over-tls"]


async def test_handshake_facts_are_kept_and_redacted_headers_never_stored(echo_server, sqlite_log):
    secret_header, secret_query, secret_auth = "hdr-SECRET-1", "qry-SECRET-2", "auth-SECRET-3"
    settings = settings_for(
        echo_server.port, sqlite_log, redact_headers=("X-Api-Key",), redact_query=("token",)
    )
    handle = await start_recorder(settings)
    try:
        async with websockets.connect(
            handle.url + f"room/7?token={secret_query}&lang=en",
            proxy=None,
            origin="https://app.example",
            user_agent_header="rdt-test/1.0",
            subprotocols=["chat.v2", "chat.v1"],
            additional_headers={"X-Api-Key": secret_header, "Authorization": secret_auth},
        ) as ws:
            await ws.send('{"type":"a"}')
            await ws.recv()
    finally:
        await handle.close()
    with Log.open(sqlite_log) as log:
        (conn,) = log.reader().connections()
    facts = conn.handshake
    assert conn.path == "/room/7"
    assert facts["target"] == "/room/7?token=<redacted>&lang=en"
    assert facts["origin"] == "https://app.example"
    assert facts["user_agent"] == "rdt-test/1.0"
    assert facts["subprotocols"] == ["chat.v2", "chat.v1"]
    assert "permessage-deflate" in facts["extensions"]
    headers = dict(facts["headers"])
    assert headers["X-Api-Key"] == "<redacted>" and headers["Authorization"] == "<redacted>"
    assert "Sec-WebSocket-Key" not in headers
    raw = b"".join(
        Path(sqlite_log + suffix).read_bytes()
        for suffix in ("", "-wal")
        if Path(sqlite_log + suffix).exists()
    )
    for secret in (secret_header, secret_query, secret_auth):
        assert secret.encode() not in raw


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"upstream_ca": "/nonexistent.pem"}, "--upstream-ca"),
        ({"listen_cert": "/nonexistent.pem"}, "--listen-cert"),
        ({"listen_key": "/k.pem"}, "--listen-key needs --listen-cert"),
    ],
)
async def test_bad_tls_options_are_bad_input_and_create_no_file(kw, message, tmp_path):
    log = tmp_path / "x.rdtlog"
    settings = replace(tls_settings(1, str(log)), **kw)
    with pytest.raises(BadInput, match=message):
        await start_recorder(settings)
    assert not log.exists()
