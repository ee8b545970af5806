"""The notifier's sends, one at a time (no server): a send that fails in any way is a failed send
naming only the exception's type (a header's value is often a secret), and three make it error;
the handshake is retried alone until it goes through."""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine

from grunndata.server.subscriptions import bundles
from grunndata.server.subscriptions.worker import Notifier
from grunndata.settings import Settings
from grunndata.store import subscriptions as store
from grunndata.store.models import SUB, SUBR
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
    notifier = Notifier(engine, Settings.load({**SETTINGS, "GRUNNDATA_SUBSCRIPTION_GIVE_UP_SECONDS": "60"}))
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
            SUB.update().where(SUB.c.id == sub.id).values(created_at=store.now() - timedelta(seconds=61))
        )
    asyncio.run(sends(1))
    off = _get(engine, sub.id)
    assert (off.status, off.attempts) == ("off", 4)
    assert off.error is not None and off.error.endswith(
        "the server gives up after 60 s): the subscription is off and nothing more is sent; delete it "
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


SECTOR_LINE = ("sector", "sykehusapotek")
SECTOR_RELEASES = "https://grunndata.no/fhir/SubscriptionTopic/release-sector-sykehusapotek"


def test_a_rest_hook_carries_what_the_subscribers_token_reads_now_not_when_it_subscribed(
    engine: Engine, hook: Receiver
) -> None:
    """Issue 22: a rest-hook is sent with no token in hand, so it is judged by what the owner's
    last token on the subscription routes read (store.seen), and only for
    GRUNNDATA_SUBSCRIPTION_ENTITLEMENT_SECONDS. A scope no longer in its tokens makes no more
    events of that line, and an event made before is withheld, not sent; a subscriber that shows
    no token for longer gets national content only; its status says so each time, and a new token
    with the scope brings the line's events back, numbered on."""
    _release(engine)
    _release(engine, *SECTOR_LINE)
    notifier = _notifier(engine)
    notifier.make_events()  # the lines' marks: no subscription yet
    with engine.begin() as conn:
        sub = store.create(conn, _new(endpoint=hook.url, topic=SECTOR_RELEASES, sector=True), 5)
        store.sent(conn, sub.id)  # the handshake went through
    owner = sub.owner

    def token(sector: bool, hours_ago: float = 0) -> None:
        """A request of the owner with a token reading the sector or not, `hours_ago`."""
        with engine.begin() as conn:
            store.seen(conn, owner, sector, frozenset())
            at = store.now() - timedelta(hours=hours_ago)
            conn.execute(SUBR.update().where(SUBR.c.owner == owner).values(seen_at=at))

    def release_and_send() -> int:
        _release(engine, *SECTOR_LINE)
        made = notifier.make_events()

        async def send() -> None:
            await notifier.send(_get(engine, sub.id))
            if notifier._client is not None:
                await notifier._client.aclose()
                notifier._client = None

        asyncio.run(send())
        return made

    token(sector=True)
    assert release_and_send() == 1
    token(sector=False)  # the scope revoked: no event for the line's next release
    assert release_and_send() == 0
    token(sector=True)
    _release(engine, *SECTOR_LINE)
    assert notifier.make_events() == 1  # event 2, made while the token read the sector
    token(sector=False)  # and revoked before it was sent: withheld
    asyncio.run(notifier.send(_get(engine, sub.id)))
    assert (_get(engine, sub.id).events, _get(engine, sub.id).delivered) == (2, 2)
    narrowed = notifier._undelivered(_get(engine, sub.id))
    assert (narrowed.counted, len(narrowed.notes)) == (False, 1)
    assert narrowed.notes[0].endswith(
        "may not read is withheld: it reads less than the token that made the subscription"
    )
    token(sector=True, hours_ago=2)  # the scope, but shown longer ago than an hour
    assert release_and_send() == 1  # event 3: made, withheld
    lapsed = notifier._undelivered(_get(engine, sub.id))
    assert lapsed.notes[0].startswith(
        "restricted content (sector or supplementary data) is withheld: no token of the subscriber "
        "showed its scopes on /fhir/Subscription within 3600 s (the last at "
    )
    token(sector=True)  # renewed
    assert release_and_send() == 1
    # the second, with nothing to send (send is called here whether due or not), a heartbeat
    # saying what is withheld; the events: 1, then 4 (2 and 3 withheld)
    assert [(r.kind, r.numbers) for r in hook.received] == [
        ("event-notification", [1]),
        ("heartbeat", []),
        ("event-notification", [4]),
    ]
    errors = [r.status.get("error") for r in hook.received]
    assert (errors[0], errors[2]) == (None, None)
    assert re.fullmatch(
        r"content the subscriber's last token \(at [-0-9T:.]+Z\) may not read is withheld: it reads "
        "less than the token that made the subscription",
        errors[1][0]["text"],
    )
    assert _get(engine, sub.id).delivered == 4


def test_a_national_subscription_is_never_held_back(engine: Engine, hook: Receiver) -> None:
    """National data is open: a subscriber reading it alone gets its events whether or not a token
    of it was seen lately."""
    _release(engine)
    notifier = _notifier(engine)
    notifier.make_events()
    with engine.begin() as conn:
        sub = store.create(conn, _new(endpoint=hook.url), 5)
        store.sent(conn, sub.id)
    _release(engine)
    assert notifier.make_events() == 1

    async def send() -> None:
        await notifier.send(_get(engine, sub.id))
        if notifier._client is not None:
            await notifier._client.aclose()

    asyncio.run(send())
    assert [r.numbers for r in hook.received] == [[1]]
    assert "error" not in hook.received[0].status
