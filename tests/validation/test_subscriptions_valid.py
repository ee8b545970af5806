"""What the subscriptions serve and send is valid R5 by the core definitions: a Subscription as read,
every kind of notification Bundle (handshake, heartbeat, event with id-only and full-resource
content, a capped one), the `$status` searchset and the topics."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from grunndata.server.auth import EVERYTHING
from grunndata.server.routes.subscriptions import resource_of
from grunndata.server.subscriptions import bundles, topics
from grunndata.store.subscriptions import Event, Subscription
from grunndata.validation import Definitions, Report, Validator

BASE = "https://grunndata.example/fhir"
AT = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
PACKAGE = {
    "resourceType": "PackagedProductDefinition",
    "id": "p-1",
    "meta": {"versionId": "2", "lastUpdated": "2026-12-07T11:59:00.000Z"},
    "name": "Certican 0,1 mg",
}
SUB = Subscription(
    id="0123abcd",
    owner="epj",
    status="active",
    topic=topics.BASE + "release-national",
    channel="rest-hook",
    endpoint="https://hooks.example.org/x",
    base_url=BASE,
    content="full-resource",
    heartbeat_seconds=60,
    timeout_seconds=None,
    sector=False,
    supplementary=frozenset(),
    filters=(),
    resource={
        "topic": topics.BASE + "release-national",
        "reason": "new releases",
        "channelType": {
            "system": "http://terminology.hl7.org/CodeSystem/subscription-channel-type",
            "code": "rest-hook",
        },
        "endpoint": "https://hooks.example.org/x",
        "heartbeatPeriod": 60,
        "content": "full-resource",
    },
    headers=(("Authorization", "Bearer secret"),),
    end=None,
    created_at=AT,
    updated_at=AT,
    events=7,
    delivered=5,
    lost_through=2,
    attempts=1,
    next_attempt=None,
    last_sent=None,
    error="the endpoint answered 503",
)
EVENT = Event(
    SUB.id,
    6,
    41,
    "national",
    "dmp",
    AT,
    3,
    (("PackagedProductDefinition", "p-1", 2, "update"), ("Basic", "slv-1", 1, "delete")),
)


def _check(r5: Definitions, resource: dict[str, Any], what: str) -> None:
    report = Report()
    Validator(r5).validate(resource, what, report)
    assert [p.sentence() for p in report.problems] == []


def test_a_subscription_as_read_is_valid(r5: Definitions) -> None:
    _check(r5, resource_of(SUB), "Subscription")


@pytest.mark.parametrize("content", ["empty", "id-only", "full-resource"])
@pytest.mark.parametrize("kind", [bundles.HANDSHAKE, bundles.HEARTBEAT, bundles.EVENT, bundles.QUERY_EVENT])
def test_every_notification_is_valid(r5: Definitions, kind: str, content: str) -> None:
    events = [EVENT] if kind in (bundles.EVENT, bundles.QUERY_EVENT) else []
    body = bundles.notification(
        SUB, kind, BASE, events, {("PackagedProductDefinition", "p-1", 2): orjson.dumps(PACKAGE)}, content
    )
    bundle = orjson.loads(body)
    _check(r5, bundle, f"{kind} {content}")
    if kind == bundles.EVENT and content == "full-resource":
        assert [e["resource"]["resourceType"] for e in bundle["entry"]] == [
            "SubscriptionStatus",
            "PackagedProductDefinition",
        ]


def test_the_status_searchset_is_valid(r5: Definitions) -> None:
    _check(
        r5,
        orjson.loads(bundles.status_searchset([SUB], BASE, f"{BASE}/Subscription/{SUB.id}/$status")),
        "$status",
    )


def test_every_topic_is_valid(r5: Definitions) -> None:
    for topic in topics.visible_topics([("national", "dmp"), ("sector", "sykehusapotek")], EVERYTHING):
        _check(r5, topic, topic["id"])
