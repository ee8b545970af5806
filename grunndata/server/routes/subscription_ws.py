"""The R5 websocket channel's routes: `$get-ws-binding-token` on one Subscription (POST, as R5
has an operation that changes state invoked; GET too, as clients in use call it) or on the type
(POST, with `id` parameters; without them, every websocket subscription of the caller), and the
socket itself at WS_PATH (server/subscriptions/websocket.py speaks on it).

A binding token is given only to the owner of the subscriptions it binds (the scope
grunndata:subscription, the same subject), binds only those, and lasts
GRUNNDATA_SUBSCRIPTION_WS_TOKEN_SECONDS; the store keeps its hash, so a socket may reach any server
process.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

import orjson
from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from grunndata.server.auth import Access
from grunndata.server.deps import AccessDep, FormatDep, LimitsDep
from grunndata.server.fhir_io import bundles as fhir_bundles
from grunndata.server.fhir_io.openapi import NEGOTIATION, answers, fhir_content, resource_schema
from grunndata.server.fhir_io.params import ID_PATTERN, bad, body_within, split_values
from grunndata.server.fhir_io.responses import FhirError, send
from grunndata.server.routes.subscriptions import MEDIA, not_found, owner_of, seen, served_of, settings_of
from grunndata.server.subscriptions import websocket
from grunndata.server.subscriptions.websocket import WS_PATH, websocket_url
from grunndata.store import instant
from grunndata.store import subscriptions as store
from grunndata.store.subscriptions import Subscription

router = APIRouter(tags=["FHIR R5 Subscriptions"])
MOST_IDS = 100  # subscriptions one token may bind


def _fhir_base(request: Request) -> str:
    settings = settings_of(request)
    return settings.base_url + "/fhir" if settings.base_url else fhir_bundles.base_url(request)


def _checked(ids: Sequence[str]) -> list[str]:
    for sid in ids:
        if not ID_PATTERN.fullmatch(sid):
            raise bad(f"{sid[:100]!r} is not a valid Subscription id")
    if len(set(ids)) > MOST_IDS:
        raise bad(f"one binding token binds at most {MOST_IDS} subscriptions")
    return list(dict.fromkeys(ids))


async def _ids_given(request: Request, limits: LimitsDep) -> list[str]:
    """The `id` parameters of a type-level call: in the query (joined by commas or repeated) and in a
    Parameters body (valueId or valueString)."""
    given = [v for value in request.query_params.getlist("id") for v in split_values(value)]
    raw = await body_within(request, limits)
    if raw.strip():
        media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if media not in MEDIA:
            raise FhirError(415, "not-supported", "POST the parameters as a Parameters resource in FHIR JSON")
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise bad("the body is not JSON") from None
        if not isinstance(body, dict) or body.get("resourceType") != "Parameters":
            raise bad("the body must be a Parameters resource")
        for p in body.get("parameter") or ():
            if not isinstance(p, dict) or p.get("name") != "id":
                name = p.get("name") if isinstance(p, dict) else None
                raise bad(f"$get-ws-binding-token takes the parameter id, not {str(name)[:100]!r}")
            value = p.get("valueId", p.get("valueString"))
            if not isinstance(value, str):
                raise bad("an id parameter needs a valueId")
            given.append(value)
    return _checked(given)


def _issue(
    request: Request, access: Access, owner: str, ids: Sequence[str]
) -> tuple[str, datetime, list[Subscription]]:
    """A token for `ids` (none: every websocket subscription of `owner` not off), each checked to be
    the owner's, a websocket one and not off; a socket it binds is sent no more than `access` (the
    token asking) may read."""
    seconds = settings_of(request).subscription_ws_token_seconds
    with served_of(request).engine.begin() as conn:
        seen(conn, owner, access)
        if ids:
            found = {s.id: s for s in store.find(conn, owner, ids)}
            missing = [sid for sid in ids if sid not in found]
            if missing:
                raise not_found(missing[0])
            subs = [found[sid] for sid in ids]
        else:
            subs = [
                s for s in store.find(conn, owner) if s.channel == websocket.CHANNEL and s.status != store.OFF
            ]
            if not subs:
                raise FhirError(
                    404, "not-found", "you have no websocket subscription a binding token could bind"
                )
        for sub in subs:
            if sub.channel != websocket.CHANNEL:
                raise bad(
                    f"Subscription/{sub.id} has the channel {sub.channel}: binding tokens are for "
                    "websocket subscriptions"
                )
            if sub.status == store.OFF:
                raise bad(f"Subscription/{sub.id} is off: nothing would be sent on a socket")
        token, expires = store.bind_token(
            conn, [s.id for s in subs], seconds, access.sector, access.supplementary
        )
        return token, expires, subs


def _parameters(token: str, expires: datetime, subs: Sequence[Subscription], url: str) -> bytes:
    parameter: list[dict[str, Any]] = [
        {"name": "token", "valueString": token},
        {"name": "expiration", "valueDateTime": instant(expires)},
        *({"name": "subscription", "valueString": s.id} for s in subs),
        {"name": "websocket-url", "valueUrl": url},
    ]
    return orjson.dumps({"resourceType": "Parameters", "parameter": parameter})


async def _token(request: Request, fmt: str, access: Access, ids: Sequence[str]) -> Response:
    owner = owner_of(request, access)
    token, expires, subs = await run_in_threadpool(_issue, request, access, owner, ids)
    body = _parameters(token, expires, subs, websocket_url(_fhir_base(request)))
    return send(request, fmt, body, headers={"Cache-Control": "no-store"})


async def binding_token(
    request: Request, limits: LimitsDep, fmt: FormatDep, access: AccessDep, rid: str
) -> Response:
    """`$get-ws-binding-token` on one of the client's websocket subscriptions (an `id` given is
    ignored, as R5 says)."""
    limits.check(list(request.query_params.multi_items()))
    if not ID_PATTERN.fullmatch(rid):
        raise bad(f"{rid[:100]!r} is not a valid resource id")
    owner_of(request, access)
    if request.method == "POST":
        await body_within(request, limits)  # read within the bounds, and ignored
    return await _token(request, fmt, access, [rid])


async def binding_token_for(
    request: Request, limits: LimitsDep, fmt: FormatDep, access: AccessDep
) -> Response:
    """`$get-ws-binding-token` on the type: one token for the subscriptions named by `id`, or for
    every websocket subscription of the client."""
    limits.check(list(request.query_params.multi_items()))
    owner_of(request, access)
    return await _token(request, fmt, access, await _ids_given(request, limits))


async def post_only(request: Request) -> Response:
    """Another method at the type-level operation's path: a 405 (the read of a Subscription with
    that id would take it otherwise)."""
    raise FhirError(
        405,
        "not-supported",
        "$get-ws-binding-token is invoked with POST: it makes a token",
        {"Allow": "POST"},
    )


# -- the routes --------------------------------------------------------------------------------

_PARAMETERS = fhir_content(resource_schema("Parameters"))
_SECURITY: dict[str, Any] = {"security": [{"helseid": []}]}
_GIVES = (
    f"Parameters: token, expiration (until then it binds), subscription (each id), websocket-url (the socket, "
    f"{WS_PATH}: send `bind-with-token <token>` on it)"
)
router.add_api_route(
    "/fhir/Subscription/$get-ws-binding-token",
    binding_token_for,
    methods=["POST"],
    summary="Subscription: $get-ws-binding-token (type level)",
    operation_id="Subscription-get-ws-binding-token-type",
    openapi_extra={
        **_SECURITY,
        "parameters": [
            {
                "name": "id",
                "in": "query",
                "required": False,
                "schema": {"type": "string", "pattern": f"^{ID_PATTERN.pattern}(,{ID_PATTERN.pattern})*$"},
                "description": "Websocket subscription ids, joined by commas (none: all of the client's)",
            },
            *NEGOTIATION,
        ],
        "requestBody": {
            "required": False,
            "content": {media: {"schema": resource_schema("Parameters")} for media in MEDIA},
        },
        **answers(_PARAMETERS, 400, 401, 403, 404, 415, description=_GIVES),
    },
)
router.add_api_route(
    "/fhir/Subscription/$get-ws-binding-token",
    post_only,
    methods=["GET", "HEAD", "PUT", "PATCH", "DELETE", "OPTIONS"],
    include_in_schema=False,
)
router.add_api_route(
    "/fhir/Subscription/{rid}/$get-ws-binding-token",
    binding_token,
    methods=["POST"],
    summary="Subscription: $get-ws-binding-token",
    operation_id="Subscription-get-ws-binding-token",
    openapi_extra={
        **_SECURITY,
        "parameters": NEGOTIATION,
        **answers(_PARAMETERS, 400, 401, 403, 404, description=_GIVES),
    },
)
router.add_api_route(
    "/fhir/Subscription/{rid}/$get-ws-binding-token",
    binding_token,
    methods=["GET"],
    summary="Subscription: $get-ws-binding-token (by GET, as clients in use call it)",
    operation_id="Subscription-get-ws-binding-token-get",
    openapi_extra={
        **_SECURITY,
        "parameters": NEGOTIATION,
        **answers(_PARAMETERS, 400, 401, 403, 404, description=_GIVES),
    },
)
router.add_api_websocket_route(WS_PATH, websocket.subscription_socket, name="subscription-websocket")
