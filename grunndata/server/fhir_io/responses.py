"""FHIR responses: formats (JSON or XML by Accept and _format), OperationOutcome errors, bundles."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from grunndata.server.fhir_io.fhirxml import json_to_xml
from grunndata.store import instant

JSON_TYPE = "application/fhir+json"
XML_TYPE = "application/fhir+xml"
FORMATS = {
    "json": "json",
    "application/json": "json",
    "application/fhir+json": "json",
    "xml": "xml",
    "text/xml": "xml",
    "application/xml": "xml",
    "application/fhir+xml": "xml",
    # a "+" left unencoded in a query string arrives as a space: `_format=application/fhir+xml`
    # typed into a browser's address bar means XML, and is answered so
    "application/fhir json": "json",
    "application/fhir xml": "xml",
}


class FhirError(Exception):
    """An error the client gets as an OperationOutcome with this status and sentence."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: Mapping[str, str] | None = None,
        details: Sequence[str] = (),
    ) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.headers = dict(headers or {})
        self.details = list(details)  # more sentences, one issue each (a refused delivery's problems)


def _media_type(value: str) -> str:
    return value.split(";", 1)[0].strip().lower()


def weighed(header: str) -> list[tuple[float, str, list[str]]]:
    """The parts of an Accept-style header in the order given: (quality, the media range or coding
    in lower case, its other parameters). A quality that is no number counts as 0 (refused); none
    given is 1. One reading for Accept (the format, fhirVersion) and Accept-Encoding alike."""
    out = []
    for part in header.split(","):
        name, *params = (p.strip() for p in part.split(";"))
        q, rest = 1.0, []
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() != "q":
                rest.append(param)
                continue
            try:
                q = float(value)
            except ValueError:
                q = 0.0
        out.append((q, name.lower(), rest))
    return out


def negotiate(request: Request) -> str:
    """'json' or 'xml': `_format` wins over Accept; anything else is 406."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        chosen = FORMATS.get(_media_type(fmt))
        if chosen is None:
            raise FhirError(406, "not-supported", f"_format {fmt!r} is not served; use json or xml")
        return chosen
    accept = request.headers.get("accept")
    if not accept:
        return "json"
    for q, media, _ in sorted(weighed(accept), key=lambda r: -r[0]):  # sorted keeps the order of equals
        if q == 0:
            continue
        if media in FORMATS:
            return FORMATS[media]
        if media in ("*/*", "application/*"):
            return "json"
        if media == "text/*":
            return "xml"
    raise FhirError(406, "not-supported", f"cannot answer in {accept!r}; ask for {JSON_TYPE} or {XML_TYPE}")


FHIR_VERSIONS = {"4.0": "R4", "5.0": "R5"}
"""The `fhirVersion` MIME parameter values served (FHIR's versioning page: major.minor; a patch
version such as 4.0.1 names the same)."""


def fhir_version(request: Request) -> str | None:
    """The FHIR version asked for by the `fhirVersion` MIME parameter ("4.0", "5.0"), None when
    none is named; a version not served is a 406. `_format` wins over Accept, as for the format;
    in Accept the range of highest quality decides (the first of equal ones), a range of quality 0
    never does."""
    fmt = request.query_params.get("_format")
    if fmt is not None:
        return _named_version(fmt.split(";")[1:])
    accept = request.headers.get("accept")
    if not accept or "fhirversion" not in accept.lower():
        return None
    ranked = sorted((r for r in weighed(accept) if r[0] > 0), key=lambda r: -r[0])
    return _named_version(ranked[0][2]) if ranked else None


def _named_version(params: list[str]) -> str | None:
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() != "fhirversion":
            continue
        asked = value.strip().strip('"')
        version = ".".join(asked.split(".")[:2])
        if version not in FHIR_VERSIONS or not re.fullmatch(r"[0-9]+\.[0-9]+(\.[0-9]+)?", asked):
            raise FhirError(
                406,
                "not-supported",
                f"fhirVersion {asked[:20]!r} is not served; ask for 4.0 (R4) or 5.0 (R5)",
            )
        return version
    return None


R4_ANSWER = "grunndata.r4_answer"
"""Request scope key: set (`answer_in_r4`) where the resources answered are FHIR R4 (the /fhir-r4
view, `fhirVersion=4.0` on /fhir), so that `send` writes their XML, an error's included, by the R4
definitions."""


def answer_in_r4(request: Request) -> None:
    """Mark the request as answered in R4: its XML (errors too) is written by the R4 definitions."""
    request.scope[R4_ANSWER] = True


def pretty(request: Request) -> bool:
    return request.query_params.get("_pretty") == "true"


def send(
    request: Request,
    fmt: str,
    body: bytes,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    name_version: bool = False,
) -> Response:
    """Send a resource given as JSON bytes: as they are, or as XML, or pretty-printed when asked.
    XML is written by the R5 definitions, or R4's for a request marked `answer_in_r4`;
    `name_version`: the Content-Type says which (`; fhirVersion=4.0`), as FHIR's versioning page
    has it for an answer to an Accept that named one."""
    if fmt == "xml":
        version = "4.0" if request.scope.get(R4_ANSWER) else "5.0"
        content = json_to_xml(_loaded(body), pretty=pretty(request), version=version)
        media = XML_TYPE
    else:
        content = _indented(body) if pretty(request) else body
        media = JSON_TYPE
    if name_version:
        media += "; fhirVersion=" + ("4.0" if request.scope.get(R4_ANSWER) else "5.0")
    return Response(content, status, headers=dict(headers or {}), media_type=media + "; charset=utf-8")


def _loaded(body: bytes) -> Any:
    """Stored JSON as Python values, even when it holds a lone surrogate, which orjson refuses.

    The importers refuse such text, but a store may hold some from before; Python's json reads it,
    and the XML writer replaces it (fhirxml.REPLACEMENT) rather than answer 500.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return json.loads(body.decode("utf-8", "surrogatepass"), strict=False)


def _indented(body: bytes) -> bytes:
    """`_pretty=true` JSON; the stored bytes as they are when orjson cannot read them back."""
    try:
        return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)
    except orjson.JSONDecodeError:
        return body


def outcome(
    status: int, code: str, message: str, severity: str = "error", details: Sequence[str] = ()
) -> bytes:
    issues = [{"severity": severity, "code": code, "diagnostics": m} for m in (message, *details)]
    return orjson.dumps({"resourceType": "OperationOutcome", "issue": issues})


def error_response(request: Request, error: FhirError) -> Response:
    try:
        fmt = negotiate(request)
    except FhirError:
        fmt = "json"  # the error itself has to be readable somehow
    return send(
        request,
        fmt,
        outcome(error.status, error.code, error.message, details=error.details),
        status=error.status,
        headers=error.headers,
    )


def bundle(
    kind: str,
    entries: list[bytes],
    links: list[tuple[str, str]],
    total: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> bytes:
    """A Bundle built from ready entry bytes: the resources inside are never re-serialised."""
    head: dict[str, Any] = {
        "resourceType": "Bundle",
        "meta": {"lastUpdated": instant(datetime.now(UTC))},
        "type": kind,
    }
    if total is not None:
        head["total"] = total
    if links:
        head["link"] = [{"relation": rel, "url": url} for rel, url in links]
    head.update(extra or {})
    out = orjson.dumps(head)
    if not entries:
        return out
    return out[:-1] + b',"entry":[' + b",".join(entries) + b"]}"


def entry(full_url: str, resource: bytes | None, extra: Mapping[str, Any]) -> bytes:
    """One Bundle entry; `extra` holds search, request or response."""
    head = orjson.dumps({"fullUrl": full_url, **extra})
    if resource is None:
        return head
    return head[:-1] + b',"resource":' + resource + b"}"
