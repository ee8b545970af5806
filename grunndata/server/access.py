"""Who is asking: the request's bearer token turned into an `Access`, once per request.

Every route that answers with data receives it (`AccessDep`, server/deps.py, asks `access_of`); national data needs no token, and
what a client may not read is left out of every answer as if it did not exist (a read of it is
404), so no path can tell a client without the scope what restricted data there is.
"""

from __future__ import annotations

from fastapi import Request

from grunndata.server.auth import Access, Authenticator, AuthError
from grunndata.server.fhir_io.responses import FhirError

ACCESS, AUTH_ERROR = "grunndata.access", "grunndata.auth_error"  # set per request by server/fastpath.py
_CODES = {401: "login", 403: "forbidden", 503: "transient"}


def refusal(e: AuthError) -> FhirError:
    """An AuthError as the OperationOutcome answer: 401 with WWW-Authenticate, 403, 503."""
    headers = {"WWW-Authenticate": e.www_authenticate} if e.www_authenticate else None
    return FhirError(e.status, _CODES.get(e.status, "security"), e.message, headers)


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
        access = auth.access(request.headers.get("authorization"))
    except AuthError as e:
        raise refusal(e) from None
    request.scope[ACCESS] = access
    return access
