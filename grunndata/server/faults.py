"""Every request gets an id; a fault of ours is a 500 OperationOutcome on a connection kept open.

Starlette's ServerErrorMiddleware answers an exception no handler took and then raises it again,
so that uvicorn logs it a second time and closes the client's keep-alive connection. This layer
sits just inside it, around the fast path (fastpath.py) and the framework alike, and catches the
exception first: logged once under the request id, answered as FHIR, and not raised again.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
from collections.abc import MutableMapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from grunndata.server.fhir_io.responses import FhirError, error_response, outcome

log = logging.getLogger("grunndata.server")
REQUEST_ID = "grunndata.request_id"  # the scope key the id is kept under for the request
HEADER = b"x-request-id"
# what a client's id may be: printable, no spaces, short (it goes into the log as it is)
_SANE = re.compile(r"[A-Za-z0-9._:/+=@-]{1,128}")


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's X-Request-ID if it is sane, else a new one."""
    return sane_or_new(next((value for name, value in headers if name == HEADER), None))


def sane_or_new(sent: bytes | None) -> str:
    """`sent` (an X-Request-ID) if it is sane, else a new id (`new_id`)."""
    if sent is not None:
        text = sent.decode("latin-1")
        if _SANE.fullmatch(text):
            return text
    return new_id()


class _Ids:
    """New request ids: 32 hex digits, as `uuid4().hex` gave, 16 random per process and then the
    process's count of ids: unique without a system call and a UUID object per request."""

    def __init__(self) -> None:
        self.prefix, self.count = os.urandom(8).hex(), itertools.count()

    def new(self) -> str:
        return f"{self.prefix}{next(self.count):016x}"


_IDS = _Ids()
new_id = _IDS.new
os.register_at_fork(after_in_child=lambda: _IDS.__init__())  # type: ignore[misc]  # a forked worker's ids are its own


class RequestIds:
    """ASGI middleware: the request id in the scope and in every answer's X-Request-ID; any
    exception a 500 OperationOutcome (issue code `exception`, no traceback: that is in the log)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id(scope["headers"])
        scope[REQUEST_ID] = rid
        started = False

        async def send_with_id(message: MutableMapping[str, Any]) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message = {**message, "headers": [*message.get("headers", ()), (HEADER, rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception(
                "request %s: unexpected failure answering %s %s", rid, scope["method"], scope["path"]
            )
            if started:
                return  # half an answer went out: the server closes the connection, the client sees it cut
            error = FhirError(
                500, "exception", f"unexpected failure; the server log has it under request id {rid}"
            )
            try:
                response = error_response(Request(scope), error)
            except Exception:  # the request itself is beyond reading: plain JSON
                response = _plain(error)
            await response(scope, receive, send_with_id)


def _plain(error: FhirError) -> Response:
    return Response(outcome(error.status, error.code, error.message), 500, media_type="application/fhir+json")
