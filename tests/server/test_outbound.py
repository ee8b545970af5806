"""A rest-hook endpoint is a URL a subscriber chose: we send only where it is safe to send."""

from __future__ import annotations

import asyncio
import ssl
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from grunndata.server.subscriptions.outbound import (
    EndpointPolicy,
    RefusedEndpoint,
    check_endpoint,
    client,
    post,
)

LOCAL = EndpointPolicy(http_hosts=frozenset({"127.0.0.1"}), private=True)


class _Receiver(BaseHTTPRequestHandler):
    got: list[tuple[str, dict[str, str], bytes]]
    answer: tuple[int, dict[str, str]] = (200, {})
    delay: float = 0.0

    def do_POST(self) -> None:  # noqa: N802 - the standard library's name
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        self.got.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
        time.sleep(self.delay)
        status, headers = self.answer
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_: object) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Handler", (_Receiver,), {"got": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", handler
    finally:
        server.shutdown()
        server.server_close()


def _post(
    url: str, policy: EndpointPolicy, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> int:
    async def send() -> int:
        async with client() as c:
            return await post(c, url, b'{"resourceType":"Bundle"}', headers or {}, policy, timeout)

    return asyncio.run(send())


@pytest.mark.parametrize(
    "url",
    [
        "",
        "/relative/path",
        "ftp://example.org/hook",
        "https://",
        "http://example.org/hook",  # plain http to a host not allowed
        "https://user:secret@example.org/hook",
        "https://example.org/hook#part",
        "https://example.org/ho ok",
        "https://example.org/hook\r\nX-Injected: 1",
        "https://exämple.org/hook",
        "https://example.org:99999/hook",
        "https://example.org/" + "a" * 2100,
        "https://127.0.0.1/hook",
        "https://10.1.2.3/hook",
        "https://169.254.169.254/latest/meta-data",
        "https://[::1]/hook",
        "https://[::ffff:127.0.0.1]/hook",
        "https://[fe80::1]/hook",
        "https://0.0.0.0/hook",
        "https://192.168.0.10/hook",
        "https://224.0.0.1/hook",
        # IPv6 forms carrying an IPv4 address a gateway would reach
        "https://[64:ff9b::a9fe:a9fe]/x",  # NAT64 of 169.254.169.254
        "https://[64:ff9b:1::a9fe:a9fe]/x",  # local-use NAT64
        "https://[2002:a9fe:a9fe::]/x",  # 6to4 of 169.254.169.254
        "https://[::127.0.0.1]:8700/x",  # IPv4-compatible
        "https://[::ffff:0:127.0.0.1]/x",  # SIIT
        "https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/x",  # Teredo
        # IPv4 in the forms a resolver reads as one
        "https://2130706433:8700/",
        "https://0x7f000001/",
        "https://127.1/",
        "https://0/",
        "https://10.0x1.1/",
        "https://1.2.3.4.5/",  # not an address at all, yet not a name either
        # names that are loopback by definition (RFC 6761)
        "https://localhost/hook",
        "https://api.localhost:8443/hook",
    ],
)
def test_an_endpoint_that_can_never_be_sent_to_is_refused_when_made(url: str) -> None:
    with pytest.raises(RefusedEndpoint):
        check_endpoint(url, EndpointPolicy())


def test_a_public_https_endpoint_and_an_allowed_local_one_are_taken() -> None:
    check_endpoint("https://hooks.example.org:8443/fhir/notify?k=1", EndpointPolicy())
    check_endpoint("https://93.184.216.34/hook", EndpointPolicy())
    check_endpoint("https://[64:ff9b::5db8:d822]/hook", EndpointPolicy())  # NAT64 of a public address
    check_endpoint("https://[2002:5db8:d822::1]/hook", EndpointPolicy())  # 6to4 of a public address
    check_endpoint(
        "https://hooks.example.org1/hook", EndpointPolicy()
    )  # a name whose last label is not a number
    check_endpoint("http://127.0.0.1:8080/hook", LOCAL)
    # plain http to an allowed host is still refused on a loopback address without the private setting
    with pytest.raises(RefusedEndpoint, match="non-public"):
        check_endpoint("http://127.0.0.1:8080/hook", EndpointPolicy(http_hosts=frozenset({"127.0.0.1"})))


def test_a_notification_reaches_the_endpoint_with_the_subscribers_headers_but_our_framing(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    url, handler = receiver
    status = _post(
        url + "/hook?channel=7",
        LOCAL,
        {
            "Authorization": "Bearer s3cret",
            "Host": "evil.example",
            "Content-Type": "text/plain",
            "X-Bad": "a\r\nb",
        },
    )
    assert status == 200
    [(path, headers, body)] = handler.got
    assert path == "/hook?channel=7"
    assert body == b'{"resourceType":"Bundle"}'
    assert headers["authorization"] == "Bearer s3cret"
    assert headers["host"] == url.removeprefix("http://")
    assert headers["content-type"] == "application/fhir+json"
    assert "x-bad" not in headers


def test_a_loopback_endpoint_is_refused_at_delivery_without_the_setting(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    url, handler = receiver
    port = url.rsplit(":", 1)[1]
    policy = EndpointPolicy(http_hosts=frozenset({"127.0.0.1", "localhost"}))
    for target in (url, f"http://localhost:{port}"):  # a name is looked up, and its address judged
        with pytest.raises(RefusedEndpoint, match="non-public"):
            _post(target + "/hook", policy)
    assert handler.got == []


def test_a_redirect_is_answered_not_followed(receiver: tuple[str, type[_Receiver]]) -> None:
    url, handler = receiver
    handler.answer = (307, {"Location": url + "/elsewhere"})
    assert _post(url + "/hook", LOCAL) == 307
    assert [path for path, _, _ in handler.got] == ["/hook"]


def test_an_endpoint_that_does_not_answer_in_time_is_a_failed_delivery(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    url, handler = receiver
    handler.delay = 2.0
    started = time.monotonic()
    with pytest.raises(httpx.TimeoutException):
        _post(url + "/hook", LOCAL, timeout=0.5)
    assert time.monotonic() - started < 1.8


def test_an_unknown_host_is_refused_with_a_sentence() -> None:
    policy = EndpointPolicy()
    with pytest.raises(RefusedEndpoint, match="could not be resolved"):
        _post("https://no-such-host.invalid/hook", policy)


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path]:
    """A self-signed certificate for `name` and its key, as PEM files."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=1))
        .not_valid_after(now + timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / f"{name}.pem", tmp_path / f"{name}.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


@pytest.mark.parametrize(("served_as", "verified"), [("localhost", True), ("other.example", False)])
def test_https_goes_to_the_checked_address_and_still_checks_the_certificate_against_the_name(
    tmp_path: Path, served_as: str, verified: bool
) -> None:
    cert_file, key_file = _certificate(tmp_path, served_as)
    handler = type("Handler", (_Receiver,), {"got": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_file, key_file)
    server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    trusted = ssl.create_default_context(cafile=str(cert_file))

    async def send() -> int:
        async with httpx.AsyncClient(verify=trusted, trust_env=False) as c:
            url = f"https://localhost:{server.server_address[1]}/hook"
            return await post(c, url, b"{}", {}, EndpointPolicy(private=True), 5.0)

    try:
        if verified:
            assert asyncio.run(send()) == 200
            assert handler.got[0][1]["host"] == f"localhost:{server.server_address[1]}"
        else:
            with pytest.raises(httpx.ConnectError):
                asyncio.run(send())
            assert handler.got == []
    finally:
        server.shutdown()
        server.server_close()
