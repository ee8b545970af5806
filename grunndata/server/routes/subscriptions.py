"""R5 topic-based subscriptions at /fhir: Subscription create, read, search, delete, `$status` and
`$events`; SubscriptionTopic read and search.

A subscription is its owner's (the token's subject, else its client_id): to any other client it
does not exist. Making, reading and deleting one needs the scope grunndata:subscription. The
subscriber's read entitlement is kept with it and judges every event. Channel parameters (for a
rest-hook, the HTTP headers sent with each notification, often a secret) are kept but never sent
back: a read shows their names with the values masked. A topic unknown and a topic the client may
not see are refused in the same words. Each request of the owner here records what its token
reads: rest-hook notifications, sent with no token in hand, carry no more than that, and only
while it is recent (GRUNNDATA_SUBSCRIPTION_ENTITLEMENT_SECONDS). The sending:
server/subscriptions/worker.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Request
from pydantic import ValidationError
from sqlalchemy.engine import Connection
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response

from grunndata.server.auth import SCOPE_SUBSCRIBE, Access
from grunndata.server.deps import AccessDep, FormatDep, LimitsDep
from grunndata.server.fhir_io import bundles as fhir_bundles
from grunndata.server.fhir_io.openapi import (
    IDS_SCHEMA,
    NEGOTIATION,
    answers,
    errors,
    fhir_content,
    resource_schema,
)
from grunndata.server.fhir_io.params import (
    ID_PATTERN,
    Limits,
    bad,
    form_items,
    split_values,
    strict,
    whole_number,
)
from grunndata.server.fhir_io.responses import FhirError, bundle, entry, outcome, send
from grunndata.server.state import Served
from grunndata.server.subscriptions import bundles, topics
from grunndata.server.subscriptions.outbound import EndpointPolicy, RefusedEndpoint, check_endpoint
from grunndata.settings import Settings
from grunndata.store import instant
from grunndata.store import subscriptions as store
from grunndata.store.subscriptions import New, Subscription, TooManySubscriptions

router = APIRouter(prefix="/fhir", tags=["FHIR R5 Subscriptions"])

CHANNEL_TYPES = "http://terminology.hl7.org/CodeSystem/subscription-channel-type"
CHANNELS = ("rest-hook", "websocket")
CONTENTS = ("empty", "id-only", "full-resource")
STATUSES = ("requested", "active", "error", "off", "entered-in-error")
REDACTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "REDACTED"}
MASK = "******"
MOST_EVENTS = 100  # events one $events answer holds
MOST_DEPTH = 32  # levels of objects and arrays a posted Subscription may nest
MOST_BODY = 262_144  # bytes of a posted Subscription (its parameters at most 4096 characters each)
_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]{1,100}")
MEDIA = ("application/fhir+json", "application/json")


def served_of(request: Request) -> Served:
    served: Served = request.app.state.served
    return served


def settings_of(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def policy(settings: Settings) -> EndpointPolicy:
    """Where rest-hooks may go, by the settings."""
    return EndpointPolicy(
        frozenset(settings.subscription_http_hosts), settings.subscription_private_addresses
    )


def owner_of(request: Request, access: Access) -> str:
    """Who the subscriptions belong to; 401/403 naming the scope when the client may not subscribe."""
    if not access.subscribe:
        message = f"subscriptions need a token with the scope {SCOPE_SUBSCRIBE}"
        if "authorization" not in request.headers:
            raise FhirError(401, "login", message, {"WWW-Authenticate": 'Bearer realm="grunndata"'})
        raise FhirError(403, "forbidden", message)
    owner = access.subject or access.client_id or ("dev" if access.dev else None)
    if owner is None:
        raise FhirError(
            403, "forbidden", "the token names no subject (sub) or client_id to own subscriptions"
        )
    return owner


def _lines(request: Request) -> list[tuple[str, str]]:
    with served_of(request).engine.connect() as conn:
        return store.lines(conn)


# -- what is sent back ---------------------------------------------------------------------------


def resource_of(sub: Subscription) -> dict[str, Any]:
    """The Subscription as a read gives it: the channel parameters' values masked."""
    meta: dict[str, Any] = {"lastUpdated": instant(sub.updated_at)}
    if sub.headers:
        meta["security"] = [REDACTED]
    body: dict[str, Any] = {"resourceType": "Subscription", "id": sub.id, "meta": meta}
    body.update(sub.resource)
    body["status"] = sub.status
    if sub.headers:
        body["parameter"] = [{"name": name, "value": MASK} for name, _ in sub.headers]
    return body


def not_found(sub_id: str) -> FhirError:
    return FhirError(404, "not-found", f"Subscription/{sub_id[:64]} is not known")


def _checked_id(sub_id: str) -> str:
    if not ID_PATTERN.fullmatch(sub_id):
        raise bad(f"{sub_id[:100]!r} is not a valid resource id")
    return sub_id


def _asked(request: Request, limits: Limits, rid: str | None = None) -> str:
    """The checks made before who asks: the parameters within bounds and FHIR text, a valid id."""
    limits.check(list(request.query_params.multi_items()))
    return "" if rid is None else _checked_id(rid)


def seen(conn: Connection, owner: str, access: Access) -> None:
    """What the owner's token reads, recorded: the rest-hook notifications sent with no token in
    hand carry no more (bundles.current). Every request of the owner here records it."""
    store.seen(conn, owner, access.sector, access.supplementary)


def _own(request: Request, owner: str, sub_id: str, access: Access) -> Subscription:
    with served_of(request).engine.begin() as conn:
        seen(conn, owner, access)
        sub = store.get(conn, _checked_id(sub_id), owner)
    if sub is None:
        raise not_found(sub_id)
    return sub


# -- reading what a client posts ----------------------------------------------------------------


def _fail(message: str) -> FhirError:
    return FhirError(400, "invalid", message)


def _validated(given: Any) -> dict[str, Any]:
    """The body as an R5 Subscription (fhir.resources checks its structure), or a 400."""
    from fhir.resources import get_fhir_model_class

    if not isinstance(given, dict) or given.get("resourceType") != "Subscription":
        raise _fail("the body must be a Subscription resource (JSON)")
    if _depth(given) > MOST_DEPTH:
        raise _fail(f"the Subscription nests deeper than {MOST_DEPTH} levels of objects and arrays")
    try:
        get_fhir_model_class("Subscription").model_validate(given)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()))
        raise _fail(f"not a valid R5 Subscription: {where}: {first.get('msg', '')}"[:500]) from None
    except (
        Exception
    ) as e:  # the model's own checks fail in other ways on some bodies (an Endpoint's address 5)
        raise _fail(f"not a valid R5 Subscription ({type(e).__name__})") from None
    for name in ("endpoint", "topic"):
        if name in given and not isinstance(given[name], str):
            raise _fail(f"not a valid R5 Subscription: {name} must be a string (a URL)")
    return given


def _depth(value: Any) -> int:
    """How deep objects and arrays nest in `value` (a scalar: 0), counted without recursion."""
    deepest, todo = 0, [(value, 1)]
    while todo:
        item, level = todo.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, level)
            if level <= MOST_DEPTH:  # deeper is refused anyway: no need to walk it all
                todo.extend((v, level + 1) for v in (item.values() if isinstance(item, dict) else item))
    return deepest


def _channel(given: dict[str, Any]) -> str:
    coding = given.get("channelType") or {}
    system, code = coding.get("system"), coding.get("code")
    if system not in (None, CHANNEL_TYPES) or code not in CHANNELS:
        raise _fail(f"channelType must be {CHANNEL_TYPES}|rest-hook or |websocket: the channels served here")
    return str(code)


def _filters(given: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The filterBy as (parameter, value) pairs, "<parameter>:not" with the modifier not; a 400
    for what the topics' canFilterBy do not declare, never a filter quietly ignored."""
    found = []
    for f in given.get("filterBy") or ():
        if f.get("resourceType") is not None:
            raise _fail(
                "filterBy.resourceType is not taken here: a filter holds for every change the topic "
                "tells of; name the types with the filter type (filterParameter type)"
            )
        comparator, modifier = f.get("comparator"), f.get("modifier")
        if comparator is not None and comparator not in topics.COMPARATORS:
            raise _fail(
                f"filterBy takes the comparator eq only (the filters' values are codes), not {str(comparator)[:20]!r}"
            )
        if modifier is not None and modifier not in topics.MODIFIERS:
            raise _fail(
                f"filterBy takes the modifier not only (none of the values), not {str(modifier)[:20]!r}"
            )
        name = str(f["filterParameter"]) + (topics.NOT if modifier == "not" else "")
        found.append((name, str(f["value"])))
    return tuple(found)


_DROPPED = frozenset({"host", "content-type", "content-length", "transfer-encoding", "connection", "te"})
_VALUE = re.compile(r"[\t\x20-\x7e]{0,4096}")  # visible ASCII, space and tab


def _headers(given: dict[str, Any]) -> tuple[tuple[str, str], ...]:
    """The channel parameters as HTTP headers: a token as the name (not one the sender sets
    itself), a value of visible ASCII, spaces and tabs; a 400 saying which is not (its value never
    repeated: it is often a secret)."""
    found = []
    for p in given.get("parameter") or ():
        name, value = str(p["name"]), str(p["value"])
        if name.lower() in _DROPPED:
            raise _fail(
                f"the channel parameter {name!r} is a header the server sets itself: "
                "Host, Content-Type, Content-Length, Transfer-Encoding, Connection and TE are not taken"
            )
        if not _HEADER_NAME.fullmatch(name) or not _VALUE.fullmatch(value):
            raise _fail(
                f"the channel parameter {name[:100]!r} is no HTTP header: a name of letters, digits and "
                "-, a value on one line of at most 4096 characters, visible ASCII, spaces and tabs"
            )
        found.append((name, value))
    return tuple(found)


def _whole(given: dict[str, Any], name: str, low: int, high: int) -> int | None:
    value = given.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise _fail(f"{name} must be a whole number of seconds from {low} to {high}")
    return value


def _end(given: dict[str, Any]) -> datetime | None:
    value = given.get("end")
    if value is None:
        return None
    try:
        end = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise _fail("end must be an instant with a time zone") from None
    if end.tzinfo is None:
        raise _fail("end must be an instant with a time zone")
    if end <= datetime.now(UTC):
        raise _fail("end is in the past: the subscription would be over before it began")
    return end.astimezone(UTC)


def new_subscription(
    given: Any, access: Access, owner: str, lines: Sequence[tuple[str, str]], settings: Settings, base: str
) -> New:
    """What a posted Subscription asks for, checked; a 400 saying what is wrong."""
    body = _validated(given)
    if body.get("status") not in ("requested", "active"):
        raise _fail("a new Subscription's status must be requested")
    topic_url = str(body.get("topic", ""))
    found = topics.topic(topic_url, lines, access)
    if found is None:  # unknown or not visible: the same words
        raise _fail(
            f"the topic {topic_url[:300]!r} is not known here (GET /fhir/SubscriptionTopic lists them)"
        )
    topic_url = str(found["url"])
    filters = _filters(body)
    problem = topics.check_filters(topic_url, filters)
    if problem:
        raise _fail(problem)
    channel = _channel(body)
    if channel == "websocket" and body.get("endpoint") is not None:
        raise _fail(
            "a websocket subscription has no endpoint: its notifications go to the socket bound to it"
        )
    endpoint = body.get("endpoint") if channel == "rest-hook" else None
    if channel == "rest-hook":
        if not endpoint:
            raise _fail("a rest-hook subscription needs an endpoint: the https URL notifications are sent to")
        try:
            check_endpoint(str(endpoint), policy(settings))
        except RefusedEndpoint as e:
            raise _fail(str(e)) from None
    content = str(body.get("content") or "id-only")
    if content not in CONTENTS:
        raise _fail(f"content must be one of {', '.join(CONTENTS)}")
    media = body.get("contentType")
    if media is not None and media not in MEDIA:
        raise _fail("contentType must be application/fhir+json: notifications are sent as JSON")
    most = body.get("maxCount")  # the model took "5" and true for 5 and 1; served back, they are no FHIR
    if most is not None and (not isinstance(most, int) or isinstance(most, bool)):
        raise _fail("maxCount must be a JSON number: a positive whole number")
    kept = {k: v for k, v in body.items() if k not in ("resourceType", "id", "meta", "status", "parameter")}
    kept["topic"] = topic_url
    return New(
        owner=owner,
        topic=topic_url,
        channel=channel,
        endpoint=None if endpoint is None else str(endpoint),
        base_url=settings.base_url + "/fhir" if settings.base_url else base,
        content=content,
        heartbeat_seconds=_whole(body, "heartbeatPeriod", 1, 86_400),
        timeout_seconds=_whole(body, "timeout", 1, 120),
        sector=access.sector,
        supplementary=access.supplementary,
        filters=filters,
        resource=kept,
        headers=_headers(body),
        end=_end(body),
    )


# -- the handlers ------------------------------------------------------------------------------


def _too_large() -> FhirError:
    return FhirError(
        413, "too-costly", f"the body is larger than {MOST_BODY:,} bytes: too large for a Subscription"
    )


async def _body(request: Request) -> bytes:
    """The posted body, no more than MOST_BODY bytes of it read (declared or not); a 413 beyond."""
    declared = request.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and (len(declared) > 18 or int(declared) > MOST_BODY):
        raise _too_large()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MOST_BODY:
            raise _too_large()
    return bytes(body)


async def create(request: Request, fmt: FormatDep, access: AccessDep) -> Response:
    """Make a subscription (status requested): 201 with it, its Location; the handshake follows."""
    limits: Limits = request.app.state.limits  # the query's bounds; the body has its own (MOST_BODY)
    limits.check(list(request.query_params.multi_items()))
    owner = owner_of(request, access)
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in MEDIA:
        raise FhirError(415, "not-supported", "POST a Subscription as application/fhir+json")
    raw = await _body(request)
    try:
        given = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _fail("the body is not JSON") from None
    settings = settings_of(request)
    lines = await run_in_threadpool(_lines, request)
    new = new_subscription(given, access, owner, lines, settings, fhir_bundles.base_url(request))
    try:
        sub = await run_in_threadpool(_create, request, new, settings.subscription_max_per_owner, access)
    except TooManySubscriptions:
        raise FhirError(
            409,
            "conflict",
            f"you keep {settings.subscription_max_per_owner} subscriptions already, as many as one "
            "client may; delete one first",
        ) from None
    location = f"{fhir_bundles.base_url(request)}/Subscription/{sub.id}"
    return send(request, fmt, orjson.dumps(resource_of(sub)), status=201, headers={"Location": location})


def _create(request: Request, new: New, most: int, access: Access) -> Subscription:
    # a websocket subscription is active at once: its handshake goes to each socket bound to it
    status = store.ACTIVE if new.channel == "websocket" else store.REQUESTED
    with served_of(request).engine.begin() as conn:
        made = store.create(conn, new, most, status)
    with served_of(request).engine.begin() as conn:  # after: a refused create records nothing
        seen(conn, new.owner, access)
    return made


async def read(request: Request, limits: LimitsDep, fmt: FormatDep, access: AccessDep, rid: str) -> Response:
    """One of the client's subscriptions (others' do not exist for it)."""
    _asked(request, limits, rid)
    sub = await run_in_threadpool(_own, request, owner_of(request, access), rid, access)
    return send(request, fmt, orjson.dumps(resource_of(sub)))


async def delete(
    request: Request, limits: LimitsDep, fmt: FormatDep, access: AccessDep, rid: str
) -> Response:
    """Delete one of the client's subscriptions: nothing more is sent for it."""
    sub_id = _asked(request, limits, rid)
    owner = owner_of(request, access)

    def remove() -> bool:
        with served_of(request).engine.begin() as conn:
            seen(conn, owner, access)
            return store.remove(conn, sub_id, owner)

    if not await run_in_threadpool(remove):
        raise not_found(rid)
    return send(
        request, fmt, outcome(200, "informational", f"Subscription/{sub_id} was deleted", "information")
    )


def _one_each(
    request: Request, names: Sequence[str], items: Sequence[tuple[str, str]] | None = None
) -> dict[str, list[str]]:
    """The search parameters `names` (each given once, values joined by commas) of `items` (the
    query's); another is a 400 with Prefer: handling=strict and ignored without."""
    given: dict[str, list[str]] = {}
    ignored = {"_format", "_pretty"}
    for name, value in request.query_params.multi_items() if items is None else items:
        if name in ignored:
            continue
        if name not in names:
            if strict(request.headers.get("prefer", "")):
                raise bad(f"{name[:100]!r} is not searched here; the parameters are {', '.join(names)}")
            continue
        if name in given:
            raise bad(f"give {name} once, its values joined by commas")
        values = [v for v in split_values(value)]
        if not values or any(not v for v in values):
            raise bad(f"{name} has an empty value")
        given[name] = values
    return given


def _strictly(request: Request, names: Sequence[str]) -> None:
    """With Prefer: handling=strict, a query parameter not among `names` is a 400 (as on the
    other routes); without, it is ignored."""
    if not strict(request.headers.get("prefer", "")):
        return
    for name, _ in request.query_params.multi_items():
        if name not in names and name not in ("_format", "_pretty"):
            taken = ", ".join(names) if names else "none"
            raise bad(f"{name[:100]!r} is not a parameter of this operation; it takes {taken}")


async def search(request: Request, limits: LimitsDep, fmt: FormatDep, access: AccessDep) -> Response:
    """The client's subscriptions, by `_id`, `status` and `topic` (each: any of its values)."""
    _asked(request, limits)
    return await _search(request, fmt, access, list(request.query_params.multi_items()), str(request.url))


async def search_post(request: Request, limits: LimitsDep, fmt: FormatDep, access: AccessDep) -> Response:
    """POST Subscription/_search: the form's parameters with the query's, answered as the GET."""
    _asked(request, limits)
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/x-www-form-urlencoded":
        raise FhirError(415, "not-supported", "POST _search takes application/x-www-form-urlencoded")
    items = list(request.query_params.multi_items()) + await form_items(request, limits)
    limits.check(items)
    query = urlencode(items)
    self_url = f"{fhir_bundles.base_url(request)}/Subscription" + (f"?{query}" if query else "")
    return await _search(request, fmt, access, items, self_url)


async def _search(
    request: Request, fmt: str, access: Access, items: list[tuple[str, str]], self_url: str
) -> Response:
    asked = _one_each(request, ("_id", "status", "topic", "_count", "_offset", "_summary"), items)
    for status in asked.get("status", ()):
        if status not in STATUSES:
            raise bad(f"status takes {', '.join(STATUSES)}, not {status[:100]!r}")
    count, offset, count_only = _page_of(asked)
    owner = owner_of(request, access)
    topic_urls = [t if t.startswith(topics.BASE) else topics.BASE + t for t in asked.get("topic", ())]

    def found() -> list[Subscription]:
        with served_of(request).engine.begin() as conn:
            seen(conn, owner, access)
            return store.find(conn, owner, asked.get("_id", ()), asked.get("status", ()), topic_urls)

    subs = await run_in_threadpool(found)
    base = fhir_bundles.base_url(request)
    page = [] if count_only else subs[offset : offset + count]
    entries = [
        entry(f"{base}/Subscription/{s.id}", orjson.dumps(resource_of(s)), {"search": {"mode": "match"}})
        for s in page
    ]
    links = [("self", self_url)]
    if not count_only and offset + count < len(subs):
        kept = [(k, v) for k, v in items if k not in ("_offset", "_format", "_pretty")]
        links.append(("next", f"{base}/Subscription?{urlencode([*kept, ('_offset', str(offset + count))])}"))
    return send(request, fmt, bundle("searchset", entries, links, total=len(subs)))


def _page_of(asked: dict[str, list[str]]) -> tuple[int, int, bool]:
    """(count, offset, count only) of a Subscription search: `_count` (0 to 100, default 100),
    `_offset`, `_summary` (count or false); one value each."""
    for name in ("_count", "_offset", "_summary"):
        if len(asked.get(name, ())) > 1:
            raise bad(f"{name} takes one value")
    count = whole_number("_count", asked["_count"][0], 0, 100) if "_count" in asked else 100
    offset = whole_number("_offset", asked["_offset"][0], 0, 1_000) if "_offset" in asked else 0
    summary = asked.get("_summary", ["false"])[0]
    if summary not in ("count", "false"):
        raise bad(f"_summary takes count or false here, not {summary[:100]!r}")
    return count, offset, summary == "count" or count == 0


async def status(
    request: Request, limits: LimitsDep, fmt: FormatDep, access: AccessDep, rid: str
) -> Response:
    """`$status`: a searchset with the subscription's SubscriptionStatus (query-status)."""
    _asked(request, limits, rid)
    _strictly(request, ())
    sub = await run_in_threadpool(_own, request, owner_of(request, access), rid, access)
    return send(
        request,
        fmt,
        bundles.status_searchset([sub], fhir_bundles.base_url(request), str(request.url), access),
    )


def _event_number(request: Request, name: str) -> int | None:
    values = request.query_params.getlist(name)
    if not values:
        return None
    if len(values) > 1 or not values[0].isascii() or not values[0].isdigit() or len(values[0]) > 18:
        raise bad(f"{name} must be given once, as a whole number 0 or more")
    return int(values[0])


async def events(
    request: Request, limits: LimitsDep, fmt: FormatDep, access: AccessDep, rid: str
) -> Response:
    """`$events`: the kept events from eventsSinceNumber to eventsUntilNumber (at most 100), as a
    subscription-notification Bundle of type query-event."""
    _asked(request, limits, rid)
    _strictly(request, ("eventsSinceNumber", "eventsUntilNumber", "content"))
    since = _event_number(request, "eventsSinceNumber") or 1
    until = _event_number(request, "eventsUntilNumber")
    content = request.query_params.get("content")
    if content is not None and content not in CONTENTS:
        raise bad(f"content takes {', '.join(CONTENTS)}")
    owner = owner_of(request, access)

    def found() -> tuple[Subscription, list[store.Event], dict[tuple[str, str, int], bytes], bool]:
        sub = _own(request, owner, rid, access)
        # the events were made with the subscriber's rights then; this token may read less now
        reads = bundles.narrowed(sub, access)
        counted = reads == bundles.entitlement(sub)
        with served_of(request).engine.connect() as conn:
            kept = store.events(conn, sub.id, since, until, MOST_EVENTS)
            if not counted:
                named = [(t, i, v) for e in kept for t, i, v, _ in e.changes]
                kept = bundles.readable(kept, store.lines_of(conn, named), reads)
            wanted = content or sub.content
            keys = [(t, i, v) for e in kept for t, i, v, a in e.changes if a != "delete"]
            return sub, kept, store.bodies(conn, keys) if wanted == "full-resource" else {}, counted

    sub, kept, bodies, counted = await run_in_threadpool(found)
    base = fhir_bundles.base_url(request)
    return send(
        request, fmt, bundles.notification(sub, bundles.QUERY_EVENT, base, kept, bodies, content, counted)
    )


async def topic_search(request: Request, limits: LimitsDep, fmt: FormatDep, access: AccessDep) -> Response:
    """The topics this client may subscribe to, by `_id` and `url`."""
    _asked(request, limits)
    asked = _one_each(request, ("_id", "url"))
    visible = topics.visible_topics(await run_in_threadpool(_lines, request), access)
    ids, urls = set(asked.get("_id", ())), set(asked.get("url", ()))
    chosen = [t for t in visible if (not ids or t["id"] in ids) and (not urls or t["url"] in urls)]
    base = fhir_bundles.base_url(request)
    entries = [
        entry(f"{base}/SubscriptionTopic/{t['id']}", orjson.dumps(t), {"search": {"mode": "match"}})
        for t in chosen
    ]
    return send(request, fmt, bundle("searchset", entries, [("self", str(request.url))], total=len(chosen)))


async def topic_read(
    request: Request, limits: LimitsDep, fmt: FormatDep, access: AccessDep, rid: str
) -> Response:
    """One topic; one this client may not see is as unknown as one that does not exist."""
    found = topics.topic(_asked(request, limits, rid), await run_in_threadpool(_lines, request), access)
    if found is None:
        raise FhirError(404, "not-found", f"SubscriptionTopic/{rid[:64]} is not known")
    return send(request, fmt, orjson.dumps(found))


# -- the routes --------------------------------------------------------------------------------

_SUBSCRIPTION = fhir_content(resource_schema("Subscription"))
_BUNDLE = fhir_content(resource_schema("Bundle"))
_OUTCOME = fhir_content(resource_schema("OperationOutcome"))
_SECURITY: dict[str, Any] = {"security": [{"helseid": []}]}
_RID = {"name": "rid", "in": "path", "required": True, "schema": {"type": "string"}}


def _query(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "schema": schema or {"type": "string"},
        "description": description,
    }


_NUMBER = {"type": "string", "pattern": "^[0-9]{1,18}$"}
_STATUSES = {"type": "string", "pattern": f"^({'|'.join(STATUSES)})(,({'|'.join(STATUSES)}))*$"}
_URLS = {"type": "string", "pattern": r"^[^,\\\s]+(,[^,\\\s]+)*$"}
router.add_api_route(
    "/Subscription",
    create,
    methods=["POST"],
    summary="Subscription: create (rest-hook)",
    operation_id="Subscription-create",
    status_code=201,
    openapi_extra={
        **_SECURITY,
        "parameters": NEGOTIATION,
        "requestBody": {
            "required": True,
            "content": {media: {"schema": resource_schema("Subscription")} for media in MEDIA},
        },
        "responses": {
            "201": {
                "description": "Created: the Subscription, its URL in Location",
                "content": _SUBSCRIPTION,
            },
            **errors(400, 401, 403, 409, 415),
            "413": {"description": f"The body is larger than {MOST_BODY:,} bytes", "content": _OUTCOME},
        },
    },
)
router.add_api_route(
    "/Subscription",
    search,
    methods=["GET"],
    summary="Subscription: search the client's own",
    operation_id="Subscription-search",
    openapi_extra={
        **_SECURITY,
        "parameters": [
            _query("_id", "Subscription ids, joined by commas", IDS_SCHEMA),
            _query("status", "requested, active, error, off; joined by commas", _STATUSES),
            _query("topic", "The topic's canonical URL (or id)", _URLS),
            _query(
                "_count",
                "Entries a page (0 to 100; 0: the total alone)",
                {"type": "integer", "minimum": 0, "maximum": 100},
            ),
            _query(
                "_offset",
                "Entries skipped (the next link sets it)",
                {"type": "integer", "minimum": 0, "maximum": 1000},
            ),
            _query("_summary", "count: the total alone", {"type": "string", "enum": ["count", "false"]}),
            *NEGOTIATION,
        ],
        **answers(_BUNDLE, 400, 401, 403, description="A searchset Bundle"),
    },
)
router.add_api_route(
    "/Subscription/_search",
    search_post,
    methods=["POST"],
    summary="Subscription: search the client's own (a form)",
    operation_id="Subscription-search-form",
    openapi_extra={
        **_SECURITY,
        "parameters": NEGOTIATION,
        "requestBody": {  # the form is required, as on every POST _search (415 without it)
            "required": True,
            "content": {
                "application/x-www-form-urlencoded": {
                    "schema": {
                        "type": "object",
                        "properties": {
                            "_id": IDS_SCHEMA,
                            "status": _STATUSES,
                            "topic": _URLS,
                        },
                    }
                }
            },
        },
        **answers(_BUNDLE, 400, 401, 403, 415, description="A searchset Bundle"),
    },
)
router.add_api_route(
    "/Subscription/{rid}/$status",
    status,
    methods=["GET"],
    summary="Subscription: $status",
    operation_id="Subscription-status",
    openapi_extra={
        **_SECURITY,
        "parameters": NEGOTIATION,
        **answers(_BUNDLE, 400, 401, 403, 404, description="A searchset of one SubscriptionStatus"),
    },
)
router.add_api_route(
    "/Subscription/{rid}/$events",
    events,
    methods=["GET"],
    summary="Subscription: $events (the kept events)",
    operation_id="Subscription-events",
    openapi_extra={
        **_SECURITY,
        "parameters": [
            _query("eventsSinceNumber", "The first event number (inclusive)", _NUMBER),
            _query("eventsUntilNumber", "The last event number (inclusive)", _NUMBER),
            _query("content", "empty, id-only or full-resource", {"type": "string", "enum": list(CONTENTS)}),
            *NEGOTIATION,
        ],
        **answers(
            _BUNDLE, 400, 401, 403, 404, description="A subscription-notification Bundle (query-event)"
        ),
    },
)
router.add_api_route(
    "/Subscription/{rid}",
    read,
    methods=["GET"],
    summary="Subscription: read",
    operation_id="Subscription-read",
    openapi_extra={**_SECURITY, "parameters": NEGOTIATION, **answers(_SUBSCRIPTION, 400, 401, 403, 404)},
)
router.add_api_route(
    "/Subscription/{rid}",
    delete,
    methods=["DELETE"],
    summary="Subscription: delete",
    operation_id="Subscription-delete",
    openapi_extra={**_SECURITY, "parameters": NEGOTIATION, **answers(_OUTCOME, 400, 401, 403, 404)},
)
router.add_api_route(
    "/SubscriptionTopic",
    topic_search,
    methods=["GET"],
    summary="SubscriptionTopic: search",
    operation_id="SubscriptionTopic-search",
    openapi_extra={
        "parameters": [
            _query("_id", "Topic ids, joined by commas", IDS_SCHEMA),
            _query("url", "Canonical URLs, joined by commas", _URLS),
            *NEGOTIATION,
        ],
        **answers(_BUNDLE, 400, description="A searchset Bundle"),
    },
)
router.add_api_route(
    "/SubscriptionTopic/{rid}",
    topic_read,
    methods=["GET"],
    summary="SubscriptionTopic: read",
    operation_id="SubscriptionTopic-read",
    openapi_extra={
        "parameters": NEGOTIATION,
        **answers(fhir_content(resource_schema("SubscriptionTopic")), 400, 404),
    },
)
