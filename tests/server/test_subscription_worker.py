"""The notifier's sends, one at a time (no server): a send that fails in any way is a failed send
naming only the exception's type (a header's value is often a secret), and three make it error;
the handshake is retried alone until it goes through."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from grunndata.server.subscriptions import bundles
from grunndata.server.subscriptions.worker import Notifier
from grunndata.settings import Settings
from grunndata.store import subscriptions as store
from grunndata.store.models import SUB
from tests.server.hooks import Receiver
from tests.store.test_subscriptions import _new, _record, _release

SETTINGS = {
    "GRUNNDATA_SUBSCRIPTION_HTTP_HOSTS": "127.0.0.1",
    "GRUNNDATA_SUBSCRIPTION_PRIVATE_ADDRESSES": "1",
    "GRUNNDATA_WARM": "0",
}


def _notifier(engine: Engine) -> Notifier:
    notifier = Notifier(engine, Settings.load(SETTINGS))
    notifier._leader_until = float("inf")  # the lease is ours: no lease loop runs here
    return notifier


def _get(engine: Engine, sub_id: str) -> store.Subscription:
    with engine.connect() as conn:
        found = store.get(conn, sub_id)
    assert found is not None
    return found


def test_a_send_that_cannot_be_made_is_a_failed_send_without_the_secret(
    engine: Engine, hook: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    value = "Bearer \u00f8\u00e6-secret"  # httpx cannot encode it: UnicodeEncodeError
    # made before the routes refused such values: the store may hold one
    with engine.begin() as conn:
        sub = store.create(conn, _new(endpoint=hook.url, headers=(("Authorization", value),)), 5)
    notifier = _notifier(engine)

    async def three_sends() -> None:
        for _ in range(3):
            await notifier._guarded(_get(engine, sub.id))
        if notifier._client is not None:
            await notifier._client.aclose()

    with caplog.at_level(logging.WARNING, "grunndata.server"):
        asyncio.run(three_sends())
    after = _get(engine, sub.id)
    assert (after.status, after.attempts) == ("error", 3)
    assert after.error is not None and after.error.startswith("the notification could not be sent (")
    assert "secret" not in (after.error or "") and "secret" not in caplog.text
    assert hook.received == []


def test_only_the_handshake_is_retried_until_it_goes_through(engine: Engine, hook: Receiver) -> None:
    with engine.begin() as conn:
        sub = store.create(conn, _new(endpoint=hook.url, heartbeat_seconds=1), 5)
    notifier = _notifier(engine)
    hook.down()

    async def sends(count: int) -> None:
        for _ in range(count):
            await notifier.send(_get(engine, sub.id))
        if notifier._client is not None:
            await notifier._client.aclose()
            notifier._client = None

    asyncio.run(sends(3))
    failed = _get(engine, sub.id)
    assert (failed.status, failed.attempts, failed.last_sent) == ("error", 3, None)
    assert [s.id for s in notifier._due()] == []  # backing off
    with engine.begin() as conn:  # the back-off over
        conn.execute(SUB.update().where(SUB.c.id == sub.id).values(next_attempt=None))
    assert [s.id for s in notifier._due()] == [sub.id]
    hook.up()
    asyncio.run(sends(1))
    assert [r.status["type"] for r in hook.received] == ["handshake"]  # not a heartbeat
    assert _get(engine, sub.id).status == "active"
    asyncio.run(sends(1))
    assert [r.status["type"] for r in hook.received] == ["handshake", "heartbeat"]


def test_an_endpoint_down_past_the_give_up_time_turns_the_subscription_off(
    engine: Engine, hook: Receiver
) -> None:
    """R5's error then off: the handshake fails, is tried again with back-off (status error), and
    once no send went through for GRUNNDATA_SUBSCRIPTION_GIVE_UP_SECONDS the subscription is off,
    is due no more, and its status (what $status shows) says why."""
    with engine.begin() as conn:
        sub = store.create(conn, _new(endpoint=hook.url), 5)
    notifier = Notifier(engine, Settings.load({**SETTINGS, "GRUNNDATA_SUBSCRIPTION_GIVE_UP_SECONDS": "1"}))
    notifier._leader_until = float("inf")
    hook.down()

    async def sends(count: int) -> None:
        for _ in range(count):
            await notifier.send(_get(engine, sub.id))
            with engine.begin() as conn:  # the back-off over at once
                conn.execute(SUB.update().where(SUB.c.id == sub.id).values(next_attempt=None))
        if notifier._client is not None:
            await notifier._client.aclose()
            notifier._client = None

    asyncio.run(sends(3))
    assert _get(engine, sub.id).status == "error"
    with engine.begin() as conn:  # made longer ago than the give-up time
        conn.execute(
            SUB.update().where(SUB.c.id == sub.id).values(created_at=store.now() - timedelta(seconds=2))
        )
    asyncio.run(sends(1))
    off = _get(engine, sub.id)
    assert (off.status, off.attempts) == ("off", 4)
    assert off.error is not None and off.error.endswith(
        "the server gives up after 1 s): the subscription is off and nothing more is sent; delete it "
        "and subscribe again. The last failure: the endpoint could not be reached (ConnectError)"
    )
    assert notifier._due() == []
    status = bundles.status_resource(off, bundles.QUERY_STATUS, off.base_url)
    assert status["status"] == "off" and status["error"] == [{"text": off.error}]
    hook.up()
    assert hook.received == []


@pytest.mark.parametrize(
    ("max_count", "sent"), [(None, [[1], [2], [3], [4], [5]]), (2, [[1, 2], [3, 4], [5]])]
)
def test_waiting_events_go_at_most_max_count_to_a_notification(
    engine: Engine, hook: Receiver, max_count: int | None, sent: list[list[int]]
) -> None:
    """Five events waiting (the receiver was down): each notification carries at most the
    subscription's maxCount of them, in order (one each without it)."""
    _release(engine)
    _record(engine, [])
    resource = {"topic": "t"} if max_count is None else {"topic": "t", "maxCount": max_count}
    with engine.begin() as conn:
        sub = store.create(conn, _new(endpoint=hook.url, resource=resource, content="full-resource"), 5)
        store.sent(conn, sub.id)  # the handshake went through
    for _ in range(5):
        _release(engine)
        _record(engine, [sub.id])
    notifier = _notifier(engine)

    async def send() -> None:
        await notifier.send(_get(engine, sub.id))
        if notifier._client is not None:
            await notifier._client.aclose()

    asyncio.run(send())
    assert [r.numbers for r in hook.received] == sent
    assert [r.kind for r in hook.received] == ["event-notification"] * len(sent)
    assert _get(engine, sub.id).delivered == 5
