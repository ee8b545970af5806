"""Who is asking: the request's token (and DPoP proof) turned into an `Access`, once per request.

Every route that answers with data receives it (`AccessDep`, server/deps.py, asks `access_of`); national data needs no token, and
what a client may not read is left out of every answer as if it did not exist (a read of it is
404), so no path can tell a client without the scope what restricted data there is.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

from fastapi import Request

from grunndata.server.auth import Access, Authenticator, AuthError, ProofRequest
from grunndata.server.fhir_io.responses import FhirError

ACCESS, AUTH_ERROR = "grunndata.access", "grunndata.auth_error"  # set per request by server/fastpath.py
_CODES = {401: "login", 403: "forbidden", 503: "transient"}


def refusal(e: AuthError) -> FhirError:
    """An AuthError as the OperationOutcome answer: 401 with WWW-Authenticate, 403, 503."""
    headers = {"WWW-Authenticate": e.www_authenticate} if e.www_authenticate else None
    return FhirError(e.status, _CODES.get(e.status, "security"), e.message, headers)


ASKED_METHOD = "grunndata.asked_method"
"""The method the client sent, where a layer serves it as another (HEAD is answered as GET
without the body, server/conventions.py): a DPoP proof names the method sent (RFC 9449 `htm`)."""


def authorization_of(
    scope: MutableMapping[str, Any], auth: Authenticator
) -> tuple[str | None, ProofRequest | None]:
    """The request's Authorization header, and, when it names the DPoP scheme, what its proof is
    checked against: the method, the URL and every DPoP header.

    The URL is the one the request reached this process at: the scope's scheme, the Host header
    and the path, or GRUNNDATA_BASE_URL and the path when that is set (behind a proxy, set it to
    the public address). X-Forwarded-* headers are not read here: anyone can send them, and a
    proxy that should be believed is told to uvicorn (--proxy-headers, --forwarded-allow-ips),
    which then gives the scope the scheme the client used.
    """
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    found = [v for k, v in headers if k == b"authorization"]
    if not found:
        return None, None
    if len(found) > 1:  # a proxy that reads the last and a server the first disagree about who asks
        raise AuthError(400, "more than one Authorization header", error="invalid_request")
    authorization = found[0].decode("latin-1")
    if authorization[:4].lower() != "dpop":
        return authorization, None
    proofs = tuple(v.decode("latin-1") for k, v in headers if k == b"dpop")
    base = auth.settings.public_url
    if base is None:
        host = next((v.decode("latin-1") for k, v in headers if k == b"host"), None)
        if host is None:
            server = scope.get("server") or ("localhost", None)
            host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
        base = f"{scope.get('scheme', 'http')}://{host}"
    raw = scope.get("raw_path")  # the path as sent (escapes kept), which the proof's htu names
    path = raw.decode("latin-1") if raw else scope["path"]
    return authorization, ProofRequest(scope.get(ASKED_METHOD, scope["method"]), base + path, proofs)


def access_of(request: Request, auth: Authenticator) -> Access:
    """The request's Access, as the outermost layer settled it (or settled here, for an app
    without that layer); a token that did not verify is raised as its 401 or 503."""
    found = request.scope.get(ACCESS)
    if isinstance(found, Access):
        return found
    failed = request.scope.get(AUTH_ERROR)
    if isinstance(failed, AuthError):
        raise refusal(failed)
    try:
        access = auth.access(*authorization_of(request.scope, auth))
    except AuthError as e:
        raise refusal(e) from None
    request.scope[ACCESS] = access
    return access
