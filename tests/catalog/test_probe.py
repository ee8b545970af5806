"""`grunndata catalog probe` against real local servers: fast, slow, down, garbage, resetting, TLS.

Each server is a few lines of socket code on 127.0.0.1 whose answer per path the test scripts,
so a test says exactly what the far end does and asserts exactly what the probe makes of it.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import socket
import socketserver
import ssl
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from rich.console import Console
from sqlalchemy.engine import Engine

from grunndata.catalog.cli import run_probe
from grunndata.catalog.model import Availability, Service
from grunndata.catalog.probe import ProbeResult, availability, probe, probe_and_record
from grunndata.store.probes import record

Behaviour = Callable[[socket.socket, int], None]  # (connection, which request to this path: 1, 2, ...)

R5 = orjson.dumps({"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "5.0.0"})
R4 = orjson.dumps({"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1"})
REASONS = {200: "OK", 301: "Moved Permanently", 302: "Found", 404: "Not Found", 500: "Internal Server Error"}


def answer(
    status: int = 200, body: bytes = R5, content_type: str = "application/fhir+json", headers: str = ""
) -> bytes:
    head = f"HTTP/1.1 {status} {REASONS.get(status, 'Whatever')}\r\nContent-Type: {content_type}\r\n"
    return f"{head}Content-Length: {len(body)}\r\nConnection: close\r\n{headers}\r\n".encode() + body


def reply(data: bytes = answer(), delay: float = 0.0) -> Behaviour:
    def behave(conn: socket.socket, n: int) -> None:
        time.sleep(delay)
        conn.sendall(data)

    return behave


def in_turn(*behaviours: Behaviour) -> Behaviour:
    """The first request gets the first behaviour, and so on; the last one repeats."""

    def behave(conn: socket.socket, n: int) -> None:
        behaviours[min(n, len(behaviours)) - 1](conn, n)

    return behave


def reset(conn: socket.socket, n: int) -> None:
    """Close with a TCP RST (SO_LINGER 0) after reading the request."""
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def hang_up(conn: socket.socket, n: int) -> None:
    """Close cleanly without a word."""


def trickle(conn: socket.socket, n: int) -> None:
    """Headers at once, then a byte every 0.1 s: each read is quick, the whole answer is not."""
    conn.sendall(answer(body=b" " * 40 + R5)[: -len(R5) - 40])
    for _ in range(40):
        conn.sendall(b" ")
        time.sleep(0.1)


def stream(size: int) -> Behaviour:
    """`size` bytes of a JSON string without a Content-Length: the end is when the server closes."""

    def behave(conn: socket.socket, n: int) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\nConnection: close\r\n\r\n")
        conn.sendall(b'{"resourceType": "CapabilityStatement", "padding": "')
        chunk = b"x" * 65536
        for _ in range(size // len(chunk)):
            conn.sendall(chunk)
        conn.sendall(b'"}')

    return behave


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True


class Scripted:
    """An HTTP server on 127.0.0.1: the first path segment picks a behaviour; requests are counted."""

    def __init__(self, routes: dict[str, Behaviour], tls: ssl.SSLContext | None = None) -> None:
        self.routes, self.tls, self.requests = routes, tls, Counter[str]()
        self._lock = threading.Lock()
        outer = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                # the probe gave up, or refused the certificate (ssl.SSLError is an OSError)
                with contextlib.suppress(OSError):
                    outer._handle(self.request)

        self._server = _TCPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()

    def url(self, name: str, scheme: str = "") -> str:
        return f"{scheme or ('https' if self.tls else 'http')}://127.0.0.1:{self.port}/{name}"

    def _handle(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        if self.tls:
            conn = self.tls.wrap_socket(conn, server_side=True)
        elif conn.recv(1, socket.MSG_PEEK) == b"\x16":  # a TLS ClientHello on plain HTTP
            conn.sendall(answer(400, b""))
            return
        request = b""
        while b"\r\n\r\n" not in request:
            data = conn.recv(4096)
            if not data:
                return
            request += data
        name = request.split(b" ", 2)[1].decode().strip("/").split("/")[0]
        with self._lock:
            self.requests[name] += 1
            n = self.requests[name]
        self.routes[name](conn, n)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


@pytest.fixture
def serve() -> Iterator[Callable[..., Scripted]]:
    """Start scripted servers for one test; all stopped afterwards."""
    started: list[Scripted] = []

    def start(routes: dict[str, Behaviour], tls: ssl.SSLContext | None = None) -> Scripted:
        started.append(Scripted(routes, tls))
        return started[-1]

    yield start
    for server in started:
        server.close()


@pytest.fixture
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def fhir(service_id: str, base_url: str, interface: str = "fhir-r5", status: str = "active") -> Service:
    return Service(
        id=service_id,
        name=service_id,
        description="",
        owner="vendor-a",
        owner_name="Vendor A",
        tier="supplementary",
        interface=interface,
        base_url=base_url,
        status=status,
    )


def outcome(results: list[ProbeResult]) -> dict[str, tuple[bool, int | None, str]]:
    return {r.service_id: (r.up, r.status_code, r.message) for r in results}


# --- a good server, slow ones, and one that is down ------------------------------------------


def test_a_fhir_server_that_answers_its_capability_statement_is_up_with_its_latency(serve):
    server = serve({"r5": reply(), "r4": reply(answer(body=R4)), "slash": reply()})
    before = dt.datetime.now(dt.UTC)
    results = probe(
        [
            fhir("fast-r5", server.url("r5")),
            fhir("fast-r4", server.url("r4"), "fhir-r4"),
            fhir("trailing-slash", server.url("slash") + "/"),
        ]
    )
    assert outcome(results) == {
        "fast-r5": (True, 200, "ok"),
        "fast-r4": (True, 200, "ok"),
        "trailing-slash": (True, 200, "ok"),
    }
    for result in results:
        assert 0 < result.latency_ms < 1000
        assert before - dt.timedelta(milliseconds=1) <= result.checked_at <= dt.datetime.now(dt.UTC)
        assert result.checked_at.tzinfo is dt.UTC and result.checked_at.microsecond % 1000 == 0
    assert server.requests == {"r5": 1, "r4": 1, "slash": 1}


def test_a_server_speaking_another_fhir_version_than_declared_is_up_with_a_note(serve):
    server = serve({"r4": reply(answer(body=R4)), "r5": reply()})
    results = probe([fhir("said-r5", server.url("r4")), fhir("said-r4", server.url("r5"), "fhir-r4")])
    assert outcome(results) == {
        "said-r5": (True, 200, "ok, but it declares FHIR 4.0.1, not R5"),
        "said-r4": (True, 200, "ok, but it declares FHIR 5.0.0, not R4"),
    }


def test_only_fhir_services_that_are_not_retired_are_probed(serve):
    server = serve({"r5": reply(), "m30": reply(), "old": reply()})
    results = probe(
        [
            fhir("m30", server.url("m30"), "m30-file"),
            fhir("soap", server.url("m30"), "soap"),
            fhir("rest", server.url("m30"), "rest"),
            fhir("old", server.url("old"), status="retired"),
            fhir("testing", server.url("r5"), status="test"),
        ]
    )
    assert outcome(results) == {"testing": (True, 200, "ok")}
    assert server.requests == {"r5": 1}
    assert probe([]) == []


def test_a_slow_server_times_out_and_one_slow_within_the_timeout_is_up(serve):
    server = serve({"late": reply(delay=1.5), "slowish": reply(delay=0.3), "trickle": trickle})
    started = time.monotonic()
    results = probe(
        [
            fhir("late", server.url("late")),
            fhir("slowish", server.url("slowish")),
            fhir("trickle", server.url("trickle")),
        ],
        timeout=0.8,
        retries=0,
    )
    elapsed = time.monotonic() - started
    assert outcome(results) == {
        "late": (False, None, "timed out after 0.8 s"),
        "slowish": (True, 200, "ok"),
        # every read was quick, but the whole answer took longer than the timeout
        "trickle": (False, None, "timed out after 0.8 s"),
    }
    by_id = {r.service_id: r for r in results}
    assert 300 <= by_id["slowish"].latency_ms < 800
    assert by_id["late"].latency_ms is None
    assert elapsed < 1.4  # the timeout bounds the run: nobody waited for the late answer


def test_a_closed_port_is_connection_refused_after_the_retries(closed_port):
    started = time.monotonic()
    results = probe([fhir("down", f"http://127.0.0.1:{closed_port}/fhir")], timeout=1, retries=2)
    assert outcome(results) == {"down": (False, None, "connection refused")}
    assert results[0].latency_ms is None
    assert time.monotonic() - started >= 0.25 + 0.5  # two backoffs: 0.25 s, then 0.5 s


def test_a_host_that_does_not_resolve_is_host_not_found():
    results = probe([fhir("nowhere", "http://nonexistent.invalid/fhir")], timeout=5, retries=0)
    assert outcome(results) == {"nowhere": (False, None, "host not found: nonexistent.invalid")}


# --- garbage ----------------------------------------------------------------------------------


def test_answers_that_are_not_a_capability_statement_are_down_with_what_they_were(serve):
    html = b"<!DOCTYPE html><html><body><h1>Welcome to nginx!</h1></body></html>"
    xml = b'<CapabilityStatement xmlns="http://hl7.org/fhir"><status value="active"/></CapabilityStatement>'
    server = serve(
        {
            "html": reply(answer(body=html, content_type="text/html")),
            "login": reply(answer(body=b"\n  <HTML><title>Sign in</title></HTML>", content_type="")),
            "xml": reply(answer(body=xml, content_type="application/fhir+xml")),
            "text": reply(answer(body=b"hello, world", content_type="text/plain")),
            "broken-json": reply(answer(body=b'{"resourceType": "CapabilityStatement",')),
            "empty": reply(answer(body=b"")),
            "bundle": reply(answer(body=b'{"resourceType": "Bundle", "type": "searchset"}')),
            "outcome": reply(answer(body=b'{"resourceType": "OperationOutcome", "issue": []}')),
            "untyped": reply(answer(body=b'{"status": "active"}')),
            "array": reply(answer(body=b'[{"resourceType": "CapabilityStatement"}]')),
            "number": reply(answer(body=b"42")),
            "not-http": reply(b"SSH-2.0-OpenSSH_9.2p1\r\n\r\n"),
        }
    )
    results = probe([fhir(name, server.url(name)) for name in server.routes], retries=2)
    assert outcome(results) == {
        "html": (False, 200, "not a CapabilityStatement (HTML)"),
        "login": (False, 200, "not a CapabilityStatement (HTML)"),
        "xml": (False, 200, "not a CapabilityStatement (XML)"),
        "text": (False, 200, "not a CapabilityStatement (not JSON)"),
        "broken-json": (False, 200, "not a CapabilityStatement (not JSON)"),
        "empty": (False, 200, "not a CapabilityStatement (empty answer)"),
        "bundle": (False, 200, "not a CapabilityStatement (a Bundle)"),
        "outcome": (False, 200, "not a CapabilityStatement (an OperationOutcome)"),
        "untyped": (False, 200, "not a CapabilityStatement (JSON without a resourceType)"),
        "array": (False, 200, "not a CapabilityStatement (JSON without a resourceType)"),
        "number": (False, 200, "not a CapabilityStatement (JSON without a resourceType)"),
        "not-http": (False, None, "not an HTTP answer"),
    }
    assert all(r.latency_ms is None for r in results)
    # a wrong answer is an answer: asking again would get the same one
    assert server.requests == Counter({name: 1 for name in server.routes})


def test_a_5xx_is_retried_and_a_4xx_is_not(serve):
    failure = answer(500, b"oops", "text/plain")
    unavailable = answer(503, b"", "text/plain")
    server = serve(
        {
            "flaky": in_turn(reply(failure), reply()),
            "broken": reply(unavailable),
            "missing": reply(answer(404, b'{"resourceType": "OperationOutcome"}')),
        }
    )
    results = probe([fhir(name, server.url(name)) for name in server.routes], retries=2)
    assert outcome(results) == {
        "flaky": (True, 200, "ok"),
        "broken": (False, 503, "HTTP 503 Service Unavailable"),
        "missing": (False, 404, "HTTP 404 Not Found"),
    }
    assert server.requests == {"flaky": 2, "broken": 3, "missing": 1}
    flaky = results[0]
    assert flaky.latency_ms is not None and flaky.latency_ms < 250  # the good attempt, not the backoff


def test_retries_zero_asks_once(serve):
    server = serve({"broken": reply(answer(500, b""))})
    assert outcome(probe([fhir("broken", server.url("broken"))], retries=0)) == {
        "broken": (False, 500, "HTTP 500 Internal Server Error")
    }
    assert server.requests == {"broken": 1}


def test_an_answer_over_2_mb_is_not_read_to_the_end(serve):
    padding = b'{"resourceType": "CapabilityStatement", "x": "' + b"x" * (3 * 1024 * 1024) + b'"}'
    server = serve(
        {
            "declared": reply(answer(body=padding)),
            "undeclared": stream(3 * 1024 * 1024),
            "just-under": stream(2 * 1024 * 1024 - 65536),
        }
    )
    results = probe([fhir(name, server.url(name)) for name in server.routes], retries=1)
    assert outcome(results) == {
        "declared": (False, 200, "answer larger than 2 MB"),
        "undeclared": (False, 200, "answer larger than 2 MB"),
        "just-under": (True, 200, "ok"),
    }
    assert server.requests == {"declared": 1, "undeclared": 1, "just-under": 1}


def test_redirects_are_followed_on_the_same_host_only(serve):
    server = serve({"r5": reply()})
    same = answer(301, b"", headers="Location: /r5/metadata\r\n")
    server.routes.update(
        {
            "moved": reply(same),
            "elsewhere": reply(answer(302, b"", headers="Location: https://evil.example/metadata\r\n")),
            "loop": reply(answer(302, b"", headers="Location: /loop/metadata\r\n")),
        }
    )
    results = probe([fhir(name, server.url(name)) for name in ("moved", "elsewhere", "loop")], retries=2)
    assert outcome(results) == {
        "moved": (True, 200, "ok"),
        "elsewhere": (False, 302, "redirected to another host: https://evil.example/metadata"),
        "loop": (False, 302, "too many redirects (more than 5)"),
    }
    assert server.requests == {"moved": 1, "r5": 1, "elsewhere": 1, "loop": 6}


def test_a_connection_reset_or_closed_without_an_answer_is_retried(serve):
    server = serve(
        {
            "reset": reset,
            "hang-up": hang_up,
            "cut-off": reply(answer(body=R5)[:-10]),
            "reset-once": in_turn(reset, reply()),
        }
    )
    results = probe([fhir(name, server.url(name)) for name in server.routes], retries=1)
    assert outcome(results) == {
        "reset": (False, None, "connection reset by the server"),
        "hang-up": (False, None, "connection closed without an answer"),
        "cut-off": (False, None, "connection closed in the middle of the answer"),
        "reset-once": (True, 200, "ok"),
    }
    assert server.requests == {"reset": 2, "hang-up": 2, "cut-off": 2, "reset-once": 2}


# --- TLS --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a fresh self-signed certificate for 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .sign(key, hashes.SHA256())
    )
    folder: Path = tmp_path_factory.mktemp("tls")
    (folder / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (folder / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
    return context


def test_tls_failures_are_down_and_not_retried(serve, self_signed):
    tls = serve({"r5": reply()}, tls=self_signed)
    plain = serve({"r5": reply()})
    results = probe(
        [fhir("self-signed", tls.url("r5")), fhir("plain-http", plain.url("r5", scheme="https"))],
        retries=2,
    )
    by_id = {r.service_id: r for r in results}
    self_signed_result = by_id["self-signed"]
    assert (self_signed_result.up, self_signed_result.status_code) == (False, None)
    # OpenSSL 3 says "self-signed certificate", 1.1 "self signed certificate"
    assert self_signed_result.message.replace("self signed", "self-signed") == (
        "TLS certificate not accepted: self-signed certificate"
    )
    plain_result = by_id["plain-http"]
    assert (plain_result.up, plain_result.status_code) == (False, None)
    assert plain_result.message.startswith("TLS handshake failed: "), plain_result.message
    assert tls.requests == {} and plain.requests == {}  # nothing got as far as a request


# --- concurrency ------------------------------------------------------------------------------


def test_slow_servers_are_probed_at_the_same_time(serve):
    servers = [serve({"late": reply(delay=2.0)}) for _ in range(10)]
    started = time.monotonic()
    results = probe([fhir(f"late-{i}", s.url("late")) for i, s in enumerate(servers)], timeout=0.5, retries=0)
    elapsed = time.monotonic() - started
    assert [r.message for r in results] == ["timed out after 0.5 s"] * 10
    assert [r.service_id for r in results] == [f"late-{i}" for i in range(10)]  # in the order given
    assert elapsed < 1.5  # about one timeout; one at a time would take 5 s
    assert all(s.requests == {"late": 1} for s in servers)


def test_concurrency_caps_the_requests_in_flight(serve):
    server = serve({f"late{i}": reply(delay=2.0) for i in range(4)})
    started = time.monotonic()
    results = probe(
        [fhir(f"late-{i}", server.url(f"late{i}")) for i in range(4)], timeout=0.5, retries=0, concurrency=2
    )
    elapsed = time.monotonic() - started
    assert len(results) == 4
    assert 1.0 <= elapsed < 2.0  # two rounds of two


def test_one_run_with_every_kind_of_bad_endpoint_never_raises(serve, closed_port):
    server = serve(
        {
            "good": reply(),
            "reset": reset,
            "garbage": reply(b"\x00\xff" * 100),
            "html": reply(answer(body=b"<html></html>", content_type="text/html")),
            "late": reply(delay=2.0),
        }
    )
    services = [fhir(name, server.url(name)) for name in server.routes] + [
        fhir("refused", f"http://127.0.0.1:{closed_port}"),
        fhir("nowhere", "http://nonexistent.invalid"),
        # the catalogue loader refuses these; the probe copes anyway
        fhir("no-host", "http:///metadata"),
        fhir("ftp", "ftp://files.example/fhir"),
        fhir("port", "http://127.0.0.1:99999/fhir"),
        fhir("bracket", "http://[::1/fhir"),
    ]
    results = probe(services, timeout=0.5, retries=1)
    assert [r.service_id for r in results] == [s.id for s in services]
    assert [r.message for r in results] == [
        "ok",
        "connection reset by the server",
        "not an HTTP answer",
        "not a CapabilityStatement (HTML)",
        "timed out after 0.5 s",
        "connection refused",
        "host not found: nonexistent.invalid",
        "not a URL the probe can ask: http:///metadata",
        "not a URL the probe can ask: ftp://files.example/fhir",
        "not a URL the probe can ask: http://127.0.0.1:99999/fhir",
        "not a URL the probe can ask: http://[::1/fhir",
    ]
    assert [r.up for r in results] == [True] + [False] * 10


def test_a_redirect_from_https_to_plain_http_is_down():
    def downgrade(request: httpx.Request) -> httpx.Response:
        return httpx.Response(301, headers={"Location": "http://fhir.example/fhir/metadata"})

    results = probe(
        [fhir("downgrade", "https://fhir.example/fhir")], transport=httpx.MockTransport(downgrade)
    )
    assert outcome(results) == {
        "downgrade": (False, 301, "redirected from HTTPS to plain HTTP: http://fhir.example/fhir/metadata")
    }


def test_a_transport_error_nobody_planned_for_is_a_sentence_not_a_crash():
    def explode(request: httpx.Request) -> httpx.Response:
        raise ValueError("something odd")

    results = probe([fhir("odd", "http://odd.example/fhir")], transport=httpx.MockTransport(explode))
    assert outcome(results) == {"odd": (False, None, "probe failed: ValueError: something odd")}


def test_probe_options_are_checked():
    with pytest.raises(ValueError, match="timeout must be positive"):
        probe([], timeout=0)


# --- availability over time (SQLite and PostgreSQL) -------------------------------------------


def at(minute: int) -> dt.datetime:
    return dt.datetime(2025, 3, 1, 12, minute, 0, 250_000, tzinfo=dt.UTC)


def test_availability_counts_every_recorded_probe_exactly(engine: Engine):
    record(
        engine,
        [
            ProbeResult("dmp-fhir", at(0), True, 41.5, 200, "ok"),
            ProbeResult("vendor-feed", at(0), False, None, None, "connection refused"),
        ],
    )
    record(
        engine,
        [
            # recorded out of order: "last" is by time checked, not by when it was written
            ProbeResult("dmp-fhir", at(20), True, 38.25, 200, "ok"),
            ProbeResult("dmp-fhir", at(10), False, None, 503, "HTTP 503 Service Unavailable"),
            ProbeResult("vendor-feed", at(10), False, None, 200, "not a CapabilityStatement (HTML)"),
        ],
    )
    assert record(engine, []) == 0
    found = availability(engine)
    assert found == {
        "dmp-fhir": Availability("dmp-fhir", 3, 2, at(20), True, 38.25, "ok"),
        "vendor-feed": Availability(
            "vendor-feed", 2, 0, at(10), False, None, "not a CapabilityStatement (HTML)"
        ),
    }
    assert found["dmp-fhir"].share == 2 / 3 and found["dmp-fhir"].state == "up"
    assert found["vendor-feed"].share == 0.0 and found["vendor-feed"].state == "down"
    assert availability(engine, ["vendor-feed", "never-probed"]) == {"vendor-feed": found["vendor-feed"]}
    assert availability(engine, []) == {}


def test_probe_and_record_builds_the_history_run_by_run(engine: Engine, serve, closed_port):
    server = serve({"steady": reply(), "flip": in_turn(reply(), reply(answer(500, b"")), reply())})
    services = [
        fhir("steady", server.url("steady")),
        fhir("flip", server.url("flip")),
        fhir("refused", f"http://127.0.0.1:{closed_port}"),
        fhir("m30", server.url("steady"), "m30-file"),
    ]
    runs = [probe_and_record(engine, services, timeout=1, retries=0) for _ in range(3)]
    assert [outcome(run)["flip"] for run in runs] == [
        (True, 200, "ok"),
        (False, 500, "HTTP 500 Internal Server Error"),
        (True, 200, "ok"),
    ]
    found = availability(engine)
    assert sorted(found) == ["flip", "refused", "steady"]  # m30 is not probed, so not counted
    last = {r.service_id: r for r in runs[-1]}
    assert found["flip"] == Availability(
        "flip", 3, 2, last["flip"].checked_at, True, last["flip"].latency_ms, "ok"
    )
    assert found["steady"] == Availability(
        "steady", 3, 3, last["steady"].checked_at, True, last["steady"].latency_ms, "ok"
    )
    assert found["refused"] == Availability(
        "refused", 3, 0, last["refused"].checked_at, False, None, "connection refused"
    )
    assert found["flip"].share == 2 / 3 and found["refused"].share == 0.0


def test_run_probe_prints_a_table_and_returns_the_number_down(engine: Engine, serve, closed_port):
    server = serve({"good": reply(), "html": reply(answer(body=b"<html></html>", content_type="text/html"))})
    services = [
        fhir("good", server.url("good")),
        fhir("html", server.url("html")),
        fhir("refused", f"http://127.0.0.1:{closed_port}"),
        fhir("fest-m30", server.url("good"), "m30-file"),
        fhir("old-fhir", server.url("good"), status="retired"),
    ]
    console = Console(record=True, width=200)
    assert run_probe(engine, services, console, timeout=1.0, retries=0) == 2
    lines = [" ".join(line.replace("│", " ").split()) for line in console.export_text().splitlines()]
    rows = {line.split(" ")[0]: line for line in lines if line.split(" ")[0] in {s.id for s in services}}
    assert rows["good"].startswith("good up ") and rows["good"].endswith(" ms ok")
    assert rows["html"] == "html down not a CapabilityStatement (HTML)"
    assert rows["refused"] == "refused down connection refused"
    assert rows["fest-m30"] == "fest-m30 not probed m30-file interface"
    assert rows["old-fhir"] == "old-fhir not probed retired"
    assert "1 up, 2 down, 2 not probed." in lines
    assert sorted(availability(engine)) == ["good", "html", "refused"]


def test_a_compressed_answer_is_refused_unread_so_no_cap_can_be_bypassed() -> None:
    import gzip

    def gzipped(request: httpx.Request) -> httpx.Response:
        body = gzip.compress(b'{"resourceType": "CapabilityStatement", "pad": "' + b"x" * 5_000_000 + b'"}')
        return httpx.Response(
            200, headers={"content-encoding": "gzip", "content-type": "application/fhir+json"}, content=body
        )

    (result,) = probe([fhir("zipped", "http://zipped.example/fhir")], transport=httpx.MockTransport(gzipped))
    assert (result.up, result.message) == (False, "answered gzip-encoded, though asked for no encoding")
