"""The Bundles of R5 topic-based subscriptions: a notification (handshake, heartbeat, events) and
the answers of `$status` and `$events`, each led by a SubscriptionStatus.

An event is one served release: its focus names the release (an identifier, no resource of ours
is a release), its additionalContext the changed resources the subscriber may read, as
`Type/id/_history/version` (the last version served, for one no longer served), at most the cap of
them; beyond it an extension says how many more and where `_history` lists them all. With content
`full-resource` the created and updated resources follow as entries; `empty` names none.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection

from grunndata.server.auth import ALL_OWNERS, Access
from grunndata.server.fhir_io.responses import bundle, entry
from grunndata.store import instant
from grunndata.store.subscriptions import Event, Seen, Subscription, lines_of

RELEASE_SYSTEM = "https://grunndata.no/fhir/release"
MORE_CHANGES = "https://grunndata.no/fhir/StructureDefinition/subscription-more-changes"
HANDSHAKE, HEARTBEAT, EVENT = "handshake", "heartbeat", "event-notification"
QUERY_STATUS, QUERY_EVENT = "query-status", "query-event"
_DONE = {"create": "created", "update": "updated", "delete": "no longer served"}
Key = tuple[str, str, int]  # (type, id, version)


def entitlement(sub: Subscription) -> Access:
    """What the subscriber could read when it subscribed: the events were made with it."""
    return Access(sector=sub.sector, supplementary=sub.supplementary)


def making(sub: Subscription, seen: Seen | None) -> Access:
    """What `sub`'s events are made with: its entitlement when it was made, narrowed by the owner's
    as last seen (a scope its tokens no longer carry makes no more events of that data)."""
    if seen is None:
        return entitlement(sub)
    return narrowed(sub, Access(sector=seen.sector, supplementary=seen.supplementary))


def current(sub: Subscription, seen: Seen | None, fresh: float, at: datetime) -> tuple[Access, str | None]:
    """What a rest-hook notification sent at `at` (no token in hand) may carry for `sub`, and,
    when that is less than it had when it subscribed, the sentence its status says it in.

    The subscriber's entitlement is what a token of its owner last showed on the subscription
    routes (store `seen`), narrowed by the one it subscribed with, and only for `fresh` seconds:
    a scope revoked or changed stops restricted content at the owner's next request, and one
    whose owner shows no token at all within `fresh` seconds gets national content only until it
    does. National data is open: a subscription to it alone is never held back."""
    made = entitlement(sub)
    if made == Access():
        return made, None
    if seen is None or at - seen.at > timedelta(seconds=fresh):
        when = (
            "none since the server began keeping them" if seen is None else f"the last at {instant(seen.at)}"
        )
        return Access(), (
            "restricted content (sector or supplementary data) is withheld: no token of the subscriber "
            f"showed its scopes on /fhir/Subscription within {fresh:g} s ({when}); any request there "
            "with its token (a read, $status) renews it"
        )
    reads = making(sub, seen)
    if reads == made:
        return made, None
    return reads, (
        f"content the subscriber's last token (at {instant(seen.at)}) may not read is withheld: it "
        "reads less than the token that made the subscription"
    )


def max_count(sub: Subscription, most: int) -> int:
    """How many events one notification of `sub` may carry: its maxCount (R5: "maximum number of
    events that can be combined in a single notification"), 1 when it names none, and never more
    than `most` (the events a sender reads at once). Events waiting (a receiver back after being
    down) go that many at a time, in order; the routes took maxCount as a positive integer."""
    asked = sub.resource.get("maxCount")
    if not isinstance(asked, int) or isinstance(asked, bool) or asked < 1:
        return 1
    return min(asked, most)


def _owners(kept: frozenset[str], now: frozenset[str]) -> frozenset[str]:
    if ALL_OWNERS in kept:
        return now
    if ALL_OWNERS in now:
        return kept
    return kept & now


def narrowed(sub: Subscription, access: Access) -> Access:
    """The narrower of the subscriber's entitlement kept with `sub` and `access` (the token that
    asks now): the sector only if both read it, a supplementary owner only if both read it. What
    is answered to a request or a socket is judged by it, so a token of the same subject with
    fewer rights gets no more than it may read."""
    return Access(
        sector=sub.sector and access.sector,
        supplementary=_owners(sub.supplementary, access.supplementary),
    )


def readable(events: Sequence[Event], lines: Mapping[Key, tuple[str, str]], access: Access) -> list[Event]:
    """The events `access` may read: those of a line it reads, each with only the changes whose
    line (from `lines`, by type, id and version) it reads; an event of a line it may not read is
    left out whole (a release of that line is none of its business)."""
    kept: list[Event] = []
    for event in events:
        if not access.can_read(event.tier, event.owner):
            continue
        changes = tuple(
            c for c in event.changes if (line := lines.get(c[:3])) is not None and access.can_read(*line)
        )
        if changes != event.changes:
            event = replace(event, changes=changes, total=event.total - len(event.changes) + len(changes))
        kept.append(event)
    return kept


def cut(
    conn: Connection, events: Sequence[Event], bodies: Mapping[Key, bytes], access: Access
) -> tuple[list[Event], dict[Key, bytes]]:
    """A round's events and bodies cut to what `access` may read (`readable`, with the lines of the
    changed versions read from the store), for both channels' senders."""
    named = [(t, i, v) for e in events for t, i, v, _ in e.changes]
    kept_events = readable(events, lines_of(conn, named), access)
    kept = {(t, i, v) for e in kept_events for t, i, v, _ in e.changes}
    return kept_events, {key: body for key, body in bodies.items() if key in kept}


def _line(tier: str, owner: str) -> str:
    return "the national line" if tier == "national" else f"{owner}'s {tier} line"


def _event(event: Event, content: str, base: str) -> dict[str, Any]:
    shown: dict[str, Any] = {
        "eventNumber": str(event.number),  # integer64: a string in JSON
        "timestamp": instant(event.created_at),
        "focus": {
            "identifier": {"system": RELEASE_SYSTEM, "value": str(event.release_id)},
            "display": f"release {event.release_id} of {_line(event.tier, event.owner)}",
        },
    }
    if content == "empty":
        return shown
    if event.changes:
        shown["additionalContext"] = [
            {"reference": f"{t}/{i}/_history/{v}", "display": _DONE.get(a, a)} for t, i, v, a in event.changes
        ]
    more = event.total - len(event.changes)
    if more > 0:
        since = instant(event.created_at - timedelta(seconds=1))
        shown["extension"] = [
            {
                "url": MORE_CHANGES,
                "extension": [
                    {"url": "count", "valueInteger": more},
                    {"url": "history", "valueUri": f"{base}/_history?_since={since}"},
                ],
            }
        ]
    return shown


def status_resource(
    sub: Subscription,
    kind: str,
    base: str,
    events: Sequence[Event] = (),
    content: str | None = None,
    counted: bool = True,
    notes: Sequence[str] = (),
) -> dict[str, Any]:
    """The SubscriptionStatus of `sub` for a notification or answer of `kind`, with `events`;
    without `counted` (asked by a token that reads less than the subscriber did) no
    eventsSinceSubscriptionStart, which counts events it may not read; `notes` among its errors
    (what is withheld, and why)."""
    status: dict[str, Any] = {"resourceType": "SubscriptionStatus", "status": sub.status, "type": kind}
    if counted:
        status["eventsSinceSubscriptionStart"] = str(sub.events)
    if events:
        status["notificationEvent"] = [_event(e, content or sub.content, base) for e in events]
    status["subscription"] = {"reference": f"Subscription/{sub.id}"}
    status["topic"] = sub.topic
    problems = [{"text": note} for note in notes]
    if sub.error:
        problems.append({"text": sub.error})
    if sub.lost_through:
        problems.append(
            {
                "text": f"events up to number {sub.lost_through} not delivered by then were dropped "
                "unsent (a bounded number of events is kept); read _history to catch up"
            }
        )
    if problems:
        status["error"] = problems
    return status


def _status_entry(status: Mapping[str, Any]) -> bytes:
    return entry(f"urn:uuid:{uuid.uuid4()}", orjson.dumps(status), {})


def notification(
    sub: Subscription,
    kind: str,
    base: str,
    events: Sequence[Event] = (),
    bodies: Mapping[Key, bytes] | None = None,
    content: str | None = None,
    counted: bool = True,
    notes: Sequence[str] = (),
) -> bytes:
    """A subscription-notification Bundle: the status first, then (full-resource) the created and
    updated resources of the events, from `bodies` (only those the events name)."""
    content = content or sub.content
    entries = [_status_entry(status_resource(sub, kind, base, events, content, counted, notes))]
    if content == "full-resource" and bodies:
        seen: set[Key] = set()
        for event in events:
            for t, i, v, action in event.changes:
                key = (t, i, v)
                if action == "delete" or key in seen or key not in bodies:
                    continue
                seen.add(key)
                entries.append(entry(f"{base}/{t}/{i}", bodies[key], {}))
    return bundle(
        "subscription-notification",
        entries,
        [],
        extra={"id": str(uuid.uuid4()), "timestamp": instant(datetime.now(UTC))},
    )


def status_searchset(
    subs: Sequence[Subscription], base: str, self_url: str, access: Access | None = None
) -> bytes:
    """`$status` (asked at `self_url`, by `access`): a searchset of one SubscriptionStatus
    (query-status) per subscription."""
    entries = [
        entry(
            f"urn:uuid:{uuid.uuid4()}",
            orjson.dumps(
                status_resource(
                    s, QUERY_STATUS, base, counted=access is None or narrowed(s, access) == entitlement(s)
                )
            ),
            {"search": {"mode": "match"}},
        )
        for s in subs
    ]
    return bundle("searchset", entries, [("self", self_url)], total=len(subs))
