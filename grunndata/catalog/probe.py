"""Is each catalogued FHIR service up? Ask its `/metadata` for a CapabilityStatement.

All services are probed at once (an asyncio task each, at most `concurrency` requests in flight),
so a run takes about as long as the slowest service, not the sum of them. A bad endpoint never
raises: whatever it does (time out, refuse, reset, answer HTML, garbage or 50 MB, redirect
elsewhere, fail TLS) becomes a result that is down, with one sentence saying why.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson
from sqlalchemy.engine import Engine

from grunndata.catalog.model import FHIR_INTERFACES, Availability, Service

MAX_BODY = 2 * 1024 * 1024  # a CapabilityStatement is rarely over 1 MB; more is not one we read
MAX_REDIRECTS = 5
BACKOFF_S = 0.25  # before retry n (from 0): BACKOFF_S * 2**n, so 0.25 s, 0.5 s, ...
_HEADERS = {
    "Accept": "application/fhir+json",
    "Accept-Encoding": "identity",  # the 2 MB cap counts what we hold, not what a gzip bomb unpacks to
    "User-Agent": "grunndata-catalog-probe",
}
_FHIR_VERSIONS = {"fhir-r5": ("5.", "R5"), "fhir-r4": ("4.", "R4")}


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What one probe of one service found."""

    service_id: str
    checked_at: datetime  # when the probe started, UTC, to the millisecond
    up: bool
    latency_ms: float | None  # of the attempt that found it up; None when down
    status_code: int | None  # the last HTTP status seen; None when nothing answered
    message: str  # "ok", or why it is down in one sentence


@dataclass(frozen=True, slots=True)
class _Attempt:
    up: bool
    message: str
    status_code: int | None = None
    latency_ms: float | None = None
    retry: bool = False  # worth another try: a timeout, a connection error, a 5xx


def probed(services: Sequence[Service]) -> list[Service]:
    """The services a probe asks: FHIR interfaces that their owner has not retired."""
    return [s for s in services if s.interface in FHIR_INTERFACES and s.status != "retired"]


def probe(
    services: Sequence[Service],
    *,
    timeout: float = 5.0,
    retries: int = 2,
    concurrency: int = 16,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[ProbeResult]:
    """Probe the FHIR services among `services` at once; one result each, in their order."""
    return asyncio.run(
        probe_async(services, timeout=timeout, retries=retries, concurrency=concurrency, transport=transport)
    )


async def probe_async(
    services: Sequence[Service],
    *,
    timeout: float = 5.0,
    retries: int = 2,
    concurrency: int = 16,
    transport: httpx.AsyncBaseTransport | None = None,
) -> list[ProbeResult]:
    """`probe` for callers that already run an event loop (a server, a notebook)."""
    if timeout <= 0 or retries < 0 or concurrency < 1:
        raise ValueError("timeout must be positive, retries at least 0 and concurrency at least 1")
    targets = probed(services)
    if not targets:
        return []
    gate = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(
        headers=_HEADERS, timeout=timeout, limits=limits, follow_redirects=False, transport=transport
    ) as client:
        return list(await asyncio.gather(*(_probe_one(client, gate, s, timeout, retries) for s in targets)))


def probe_and_record(engine: Engine, services: Sequence[Service], **options: Any) -> list[ProbeResult]:
    """Probe (options as for `probe`) and add the results to the store's availability history."""
    # imported here: the store reads the catalogue's model, so a top-level import would be a cycle
    from grunndata.store import record_probes

    results = probe(services, **options)
    record_probes(engine, results)
    return results


def _now() -> datetime:
    t = datetime.now(UTC)
    return t.replace(microsecond=t.microsecond // 1000 * 1000)


async def _probe_one(
    client: httpx.AsyncClient, gate: asyncio.Semaphore, service: Service, timeout: float, retries: int
) -> ProbeResult:
    checked_at = _now()
    attempt = 0
    while True:
        async with gate:
            result = await _attempt(client, service, timeout)
        if result.up or not result.retry or attempt >= retries:
            break
        await asyncio.sleep(BACKOFF_S * 2**attempt)  # outside the gate: others go on meanwhile
        attempt += 1
    return ProbeResult(
        service.id, checked_at, result.up, result.latency_ms, result.status_code, result.message
    )


async def _attempt(client: httpx.AsyncClient, service: Service, timeout: float) -> _Attempt:
    """One GET of the CapabilityStatement, redirects and all, within `timeout` seconds."""
    unusable = _Attempt(False, f"not a URL the probe can ask: {service.base_url}")
    try:
        url = httpx.URL(service.base_url.rstrip("/") + "/metadata")
    except httpx.InvalidURL:
        return unusable
    if url.scheme not in ("http", "https") or not url.host or not 0 < (url.port or 80) < 65536:
        return unusable
    started = time.perf_counter()
    try:
        async with asyncio.timeout(timeout):
            outcome = await _fetch(client, url, service.interface)
    except (TimeoutError, httpx.TimeoutException):
        return _Attempt(False, f"timed out after {timeout:g} s", retry=True)
    except httpx.TransportError as e:
        return _transport_failure(e, url)
    except Exception as e:  # noqa: BLE001  a bad endpoint must never stop the others' probes
        while isinstance(e, ExceptionGroup) and e.exceptions:  # anyio's task groups wrap some errors
            e = e.exceptions[0]
        return _Attempt(False, f"probe failed: {type(e).__name__}: {e}".rstrip(": "))
    if outcome.up:
        latency = round((time.perf_counter() - started) * 1000, 1)
        return _Attempt(True, outcome.message, outcome.status_code, latency)
    return outcome


async def _fetch(client: httpx.AsyncClient, start: httpx.URL, interface: str) -> _Attempt:
    """Follow redirects on the same host only: one to elsewhere is not this service answering."""
    url = start
    for _ in range(MAX_REDIRECTS + 1):
        async with client.stream("GET", url) as response:
            if response.is_redirect:
                target = url.join(response.headers["location"])
                shown = target.copy_with(query=None, fragment=None)  # published: no query strings
                if target.host.lower() != start.host.lower():
                    return _Attempt(False, f"redirected to another host: {shown}", response.status_code)
                if start.scheme == "https" and target.scheme != "https":
                    return _Attempt(
                        False, f"redirected from HTTPS to plain HTTP: {shown}", response.status_code
                    )
                url = target
                continue
            if not response.is_success:
                code = response.status_code
                reason = httpx.codes.get_reason_phrase(code) or response.reason_phrase
                return _Attempt(False, f"HTTP {code} {reason}".rstrip(), code, retry=code >= 500)
            encoding = response.headers.get("content-encoding", "identity").strip().lower()
            if encoding not in ("", "identity"):  # we asked for none: a compressed body could be huge
                return _Attempt(
                    False, f"answered {encoding}-encoded, though asked for no encoding", response.status_code
                )
            body = await _read_capped(response)
            if body is None:
                return _Attempt(False, "answer larger than 2 MB", response.status_code)
            up, message = _judge(body, response.headers.get("content-type", ""), interface)
            return _Attempt(up, message, response.status_code)
    return _Attempt(False, f"too many redirects (more than {MAX_REDIRECTS})", response.status_code)


async def _read_capped(response: httpx.Response) -> bytes | None:
    """The body, or None as soon as it is known to pass MAX_BODY (declared or read)."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY:
        return None
    body = bytearray()
    async for chunk in response.aiter_raw():  # as sent: nothing is unpacked past the cap
        body += chunk
        if len(body) > MAX_BODY:
            return None
    return bytes(body)


def _judge(body: bytes, content_type: str, interface: str) -> tuple[bool, str]:
    """Up when the body is a JSON CapabilityStatement; else what it was instead."""
    text = body.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text:
        return False, "not a CapabilityStatement (empty answer)"
    if text.startswith(b"<"):
        head = text[:1024].lower()
        html = "html" in content_type.lower() or head.startswith(b"<!doctype html") or b"<html" in head
        return False, f"not a CapabilityStatement ({'HTML' if html else 'XML'})"
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return False, "not a CapabilityStatement (not JSON)"
    kind = data.get("resourceType") if isinstance(data, dict) else None
    if not isinstance(kind, str):
        return False, "not a CapabilityStatement (JSON without a resourceType)"
    if kind != "CapabilityStatement":
        article = "an" if kind[:1] in "AEIOU" else "a"
        return False, f"not a CapabilityStatement ({article} {kind[:64]})"
    version = data.get("fhirVersion")
    prefix, release = _FHIR_VERSIONS[interface]
    if isinstance(version, str) and not version.startswith(prefix):
        return True, f"ok, but it declares FHIR {version[:16]}, not {release}"
    return True, "ok"


def _transport_failure(error: httpx.TransportError, url: httpx.URL) -> _Attempt:
    """A sentence for what went wrong below HTTP, from the OS or TLS error underneath."""
    causes = _causes(error)
    for cause in causes:
        if isinstance(cause, ssl.SSLCertVerificationError):
            return _Attempt(False, f"TLS certificate not accepted: {cause.verify_message}")
        if isinstance(cause, ssl.SSLError):
            reason = (cause.reason or "").lower().replace("_", " ")
            return _Attempt(False, f"TLS handshake failed: {reason or cause}")
        if isinstance(cause, ConnectionRefusedError):
            return _Attempt(False, "connection refused", retry=True)
        if isinstance(cause, ConnectionResetError | BrokenPipeError):
            return _Attempt(False, "connection reset by the server", retry=True)
        if isinstance(cause, socket.gaierror):
            return _Attempt(False, f"host not found: {url.host}", retry=True)
    if isinstance(error, httpx.RemoteProtocolError):
        if "without sending a response" in str(error):
            return _Attempt(False, "connection closed without an answer", retry=True)
        if "without sending complete message body" in str(error):
            return _Attempt(False, "connection closed in the middle of the answer", retry=True)
        return _Attempt(False, "not an HTTP answer")
    return _Attempt(False, f"network error: {causes[-1]}", retry=True)


def _causes(error: BaseException) -> list[BaseException]:
    """`error` and what it wraps: httpx wraps httpcore, which wraps the OS or TLS error."""
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and all(current is not seen for seen in chain):
        chain.append(current)
        current = current.__cause__ or current.__context__
    return chain


def availability(engine: Any, service_ids: Sequence[str] | None = None) -> dict[str, Availability]:
    """Per probed service: checks, how many found it up, the last probe (never probed: absent)."""
    from grunndata.store import probe_totals

    return {
        sid: Availability(
            service_id=t.service_id,
            checks=t.checks,
            up=t.up,
            last_checked=t.last_checked,
            last_up=t.last_up,
            last_latency_ms=t.last_latency_ms,
            last_message=t.last_message,
        )
        for sid, t in probe_totals(engine, service_ids).items()
    }
