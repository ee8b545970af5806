"""Subscriptions in the store (SQLite and PostgreSQL): owner-scoped, events made once per release
and numbered consecutively, bounded, delivery bookkept, one lease holder at a time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, select, update
from sqlalchemy.engine import Engine

from grunndata.store import subscriptions as subs
from grunndata.store.models import EV, NL, OWN, REL, SUB

TOPIC = "https://grunndata.no/fhir/SubscriptionTopic/release-national"


def _new(owner: str = "client-a", topic: str = TOPIC, **kw: object) -> subs.New:
    values: dict[str, object] = {
        "owner": owner,
        "topic": topic,
        "channel": "rest-hook",
        "endpoint": "https://example.org/hook",
        "base_url": "https://grunndata.example/fhir",
        "content": "id-only",
        "heartbeat_seconds": None,
        "timeout_seconds": None,
        "sector": False,
        "supplementary": frozenset(),
        "filters": (),
        "resource": {"topic": topic, "reason": "test"},
        "headers": (("Authorization", "Bearer secret"),),
        "end": None,
    }
    values.update(kw)
    return subs.New(**values)  # type: ignore[arg-type]


def _made(engine: Engine, *news: subs.New) -> list[subs.Subscription]:
    with engine.begin() as conn:
        return [subs.create(conn, n, most_per_owner=5) for n in news]


def _release(engine: Engine, tier: str = "national", owner: str = "dmp", status: str = "active") -> int:
    """A release row of the line, activated now (the store's own rows, no data)."""
    with engine.begin() as conn:
        if conn.execute(select(OWN.c.id).where(OWN.c.id == owner)).first() is None:
            conn.execute(insert(OWN).values(id=owner, name=owner, tier=tier))
        at = subs.now()
        conn.execute(
            update(REL)
            .where(REL.c.tier == tier, REL.c.owner_id == owner, REL.c.status == "active")
            .values(status="superseded")
        )
        return int(
            conn.execute(
                insert(REL)
                .values(
                    source="fest",
                    kind="full",
                    tier=tier,
                    owner_id=owner,
                    status=status,
                    started_at=at,
                    activated_at=at,
                    counts={},
                    report={},
                )
                .returning(REL.c.id)
            ).scalar_one()
        )


def _record(engine: Engine, drafts_for: list[str], keep: int = 100, most: int = 2) -> list[subs.Event]:
    with engine.begin() as conn:
        [pending] = subs.pending_releases(conn)
        drafts = [
            subs.Draft(
                s, (("Basic", "a", 1, "create"), ("Basic", "b", 2, "update"), ("Basic", "c", 3, "delete"))
            )
            for s in drafts_for
        ]
        return subs.record(conn, pending, drafts, keep, most)


def test_a_subscription_is_its_owners_alone(engine: Engine) -> None:
    a, b = _made(engine, _new("client-a"), _new("client-b", topic=TOPIC + "x"))
    assert (a.status, a.events, a.delivered) == ("requested", 0, 0)
    assert a.headers == (("Authorization", "Bearer secret"),)
    with engine.begin() as conn:
        assert subs.get(conn, a.id, "client-a") == a
        assert subs.get(conn, a.id, "client-b") is None
        assert [s.id for s in subs.find(conn, "client-a")] == [a.id]
        assert [s.id for s in subs.find(conn, "client-b", topics=[TOPIC + "x"])] == [b.id]
        assert subs.find(conn, "client-b", topics=[TOPIC]) == []
        assert subs.find(conn, "client-a", statuses=["active"]) == []
        assert subs.find(conn, "client-a", ids=[b.id]) == []
        assert subs.remove(conn, a.id, "client-b") is False
        assert subs.remove(conn, a.id, "client-a") is True
        assert subs.get(conn, a.id) is None


def test_an_owner_keeps_no_more_than_the_most_allowed(engine: Engine) -> None:
    _made(engine, *[_new() for _ in range(5)])
    with engine.begin() as conn, pytest.raises(subs.TooManySubscriptions):
        subs.create(conn, _new(), most_per_owner=5)
    with engine.begin() as conn:  # another owner is not counted against it
        subs.create(conn, _new("client-b"), most_per_owner=5)


def test_concurrent_creates_keep_no_more_than_the_most_allowed(engine: Engine) -> None:
    """20 creates of one owner at once, each in its own transaction (as two server processes would
    make them): exactly the most allowed are kept, the others refused."""
    from concurrent.futures import ThreadPoolExecutor

    start = threading.Barrier(20)

    def one(_: int) -> bool:
        start.wait()
        try:
            with engine.begin() as conn:
                subs.create(conn, _new("racer"), most_per_owner=5)
        except subs.TooManySubscriptions:
            return False
        return True

    with ThreadPoolExecutor(20) as pool:
        made = list(pool.map(one, range(20)))
    assert made.count(True) == 5
    with engine.connect() as conn:
        assert len(subs.find(conn, "racer")) == 5


def test_events_are_numbered_on_per_subscription_and_made_once_per_release(engine: Engine) -> None:
    first = _release(engine)
    a, b = _made(engine, _new(), _new("client-b"))
    with engine.begin() as conn:  # a line never notified starts at the release it serves
        [pending] = subs.pending_releases(conn)
    assert (pending.release_id, pending.previous_id) == (first, None)
    with engine.begin() as conn:  # made before the subscriptions: none of them gets it
        assert subs.recipients(conn, pending) == []
    assert [e.number for e in _record(engine, [])] == []
    with engine.begin() as conn:
        assert subs.pending_releases(conn) == []
    for n in (1, 2, 3):
        _release(engine)
        with engine.begin() as conn:
            assert [s.id for s in subs.recipients(conn, subs.pending_releases(conn)[0])] == [a.id, b.id]
        made = _record(engine, [a.id] if n == 2 else [a.id, b.id])
        assert [(e.subscription_id, e.number) for e in made] == (
            [(a.id, n)] if n == 2 else [(a.id, n), (b.id, 1 if n == 1 else 2)]
        )
    event = made[0]
    assert (event.total, event.changes) == (3, (("Basic", "a", 1, "create"), ("Basic", "b", 2, "update")))
    with engine.begin() as conn:
        assert [e.number for e in subs.events(conn, a.id)] == [1, 2, 3]
        assert [e.number for e in subs.events(conn, a.id, 2, 2)] == [2]
        assert subs.get(conn, a.id).events == 3  # type: ignore[union-attr]
        assert subs.get(conn, b.id).events == 2  # type: ignore[union-attr]


def test_a_second_process_making_the_same_events_writes_nothing(engine: Engine) -> None:
    _release(engine)
    _record(engine, [])
    (a,) = _made(engine, _new())
    _release(engine)
    with engine.begin() as conn:
        [pending] = subs.pending_releases(conn)
    _record(engine, [a.id])  # the first process
    with pytest.raises(subs.LineMoved), engine.begin() as conn:  # the second, from the same look
        subs.record(conn, pending, [subs.Draft(a.id, ())], 100, 10)
    with engine.begin() as conn:
        assert [e.number for e in subs.events(conn, a.id)] == [1]
        assert subs.get(conn, a.id).events == 1  # type: ignore[union-attr]


def test_a_rollback_makes_an_older_release_the_next_event(engine: Engine) -> None:
    old = _release(engine)
    _record(engine, [])
    new = _release(engine)
    _record(engine, [])
    with engine.begin() as conn:  # rollback: the new one rolled back, the old one active again now
        conn.execute(update(REL).where(REL.c.id == new).values(status="rolled-back"))
        conn.execute(
            update(REL)
            .where(REL.c.id == old)
            .values(status="active", activated_at=subs.now() + timedelta(milliseconds=5))
        )
        [pending] = subs.pending_releases(conn)
    assert (pending.release_id, pending.previous_id) == (old, new)


def test_a_new_line_is_notified_from_its_first_release(engine: Engine) -> None:
    _release(engine)
    _record(engine, [])
    sector = _release(engine, "sector", "sykehusapotek")
    with engine.begin() as conn:
        [pending] = subs.pending_releases(conn)
    assert (pending.tier, pending.owner, pending.release_id, pending.previous_id) == (
        "sector",
        "sykehusapotek",
        sector,
        None,
    )


def test_kept_events_are_bounded_and_the_dropped_ones_counted_lost(engine: Engine) -> None:
    _release(engine)
    _record(engine, [])
    (a,) = _made(engine, _new())
    for _ in range(4):
        _release(engine)
        _record(engine, [a.id], keep=2)
    with engine.begin() as conn:
        assert [e.number for e in subs.events(conn, a.id)] == [3, 4]
        assert subs.first_kept(conn, a.id) == 3
        subs.lost(conn, a.id, 2)
        found = subs.get(conn, a.id)
    assert found is not None and (found.delivered, found.lost_through) == (2, 2)


def test_delivery_failures_back_off_then_error_and_a_success_clears_them(engine: Engine) -> None:
    (a,) = _made(engine, _new())
    with engine.begin() as conn:
        subs.failed(conn, a.id, "the endpoint answered 500", retry_in=4, error_after=2)
        once = subs.get(conn, a.id)
        subs.failed(conn, a.id, "the endpoint answered 503", retry_in=8, error_after=2)
        twice = subs.get(conn, a.id)
    assert once is not None and twice is not None
    assert (once.status, once.attempts, once.error) == ("requested", 1, "the endpoint answered 500")
    assert once.next_attempt is not None and 3 < (once.next_attempt - subs.now()).total_seconds() <= 4
    assert (twice.status, twice.attempts, twice.error) == ("error", 2, "the endpoint answered 503")
    with engine.begin() as conn:
        subs.sent(conn, a.id, through=3)
        subs.sent(conn, a.id, through=1)  # never backwards
        done = subs.get(conn, a.id)
    assert done is not None
    assert (done.status, done.attempts, done.error, done.next_attempt, done.delivered) == (
        "active",
        0,
        None,
        None,
        3,
    )
    assert done.last_sent is not None


def test_a_subscription_past_its_end_is_off(engine: Engine) -> None:
    (a, b) = _made(
        engine,
        _new(end=datetime.now(UTC) - timedelta(seconds=1)),
        _new(end=datetime.now(UTC) + timedelta(days=1)),
    )
    with engine.begin() as conn:
        assert subs.end_expired(conn) == 1
        assert [s.id for s in subs.live(conn)] == [b.id]


def test_one_lease_holder_at_a_time_until_it_runs_out_or_is_dropped(engine: Engine) -> None:
    # instants given, not slept: a busy machine must not make the lease run out between two lines
    t = subs.now()
    assert subs.take_lease(engine, "process-a", 5, at=t) is True
    assert subs.take_lease(engine, "process-b", 5, at=t + timedelta(seconds=4.9)) is False
    assert subs.take_lease(engine, "process-a", 5, at=t + timedelta(seconds=4.9)) is True  # renewed
    with engine.connect() as conn:
        assert subs.lease_holder(conn) == "process-a"
    assert subs.take_lease(engine, "process-b", 5, at=t + timedelta(seconds=9.8)) is False  # renewal held
    assert (
        subs.take_lease(engine, "process-b", 5, at=t + timedelta(seconds=10)) is True
    )  # ran out: taken over
    assert subs.take_lease(engine, "process-a", 5, at=t + timedelta(seconds=10)) is False
    with engine.begin() as conn:
        subs.drop_lease(conn, "process-b")
        assert subs.lease_holder(conn) is None
    assert subs.take_lease(engine, "process-a", 5) is True


def test_deleting_a_subscription_removes_its_events(engine: Engine) -> None:
    _release(engine)
    _record(engine, [])
    (a,) = _made(engine, _new())
    _release(engine)
    _record(engine, [a.id])
    with engine.begin() as conn:
        assert subs.remove(conn, a.id, "client-a")
        assert conn.execute(select(EV).where(EV.c.subscription_id == a.id)).first() is None
        assert conn.execute(select(SUB)).first() is None
        assert conn.execute(select(NL)).first() is not None


def test_a_line_never_notified_counts_its_release_from_the_one_it_was_built_on(engine: Engine) -> None:
    old = _release(engine)
    new = _release(engine)
    with engine.begin() as conn:
        conn.execute(update(REL).where(REL.c.id == new).values(based_on=old))
        [pending] = subs.pending_releases(conn)
    assert (pending.release_id, pending.previous_id, pending.previous_at) == (new, old, None)
    _record(engine, [])
    with engine.begin() as conn:
        assert conn.execute(select(NL.c.release_id)).scalar_one() == new


def test_releases_served_between_two_ticks_are_each_an_event_in_order(engine: Engine) -> None:
    """Three releases served before the notifier's next tick, two of them in the same millisecond
    (their activated_at equal): each is an event of its own, numbered on, in the order served;
    before, a release activated in the same millisecond as the last notified one was skipped."""
    from grunndata.server.subscriptions.worker import Notifier
    from grunndata.settings import Settings

    _release(engine)
    _record(engine, [])
    (a,) = _made(engine, _new())
    ids = [_release(engine) for _ in range(3)]
    with engine.begin() as conn:  # the last two in one millisecond
        at = conn.execute(select(REL.c.activated_at).where(REL.c.id == ids[1])).scalar_one()
        conn.execute(update(REL).where(REL.c.id == ids[2]).values(activated_at=at))
    notifier = Notifier(engine, Settings.load({"GRUNNDATA_WARM": "0"}))
    assert notifier.make_events() == 3
    with engine.begin() as conn:
        made = subs.events(conn, a.id)
        assert subs.pending_releases(conn) == []
    assert [(e.number, e.release_id) for e in made] == [(1, ids[0]), (2, ids[1]), (3, ids[2])]


def test_a_subscription_no_send_reached_for_the_give_up_time_is_off_saying_why(engine: Engine) -> None:
    """Failing sends back off and make the status error, but are not tried for ever: once none
    went through for `give_up` seconds since the last that did (or since it was made), the
    subscription is off, nothing more is due, and its error says since when and what failed."""
    (a,) = _made(engine, _new())
    with engine.begin() as conn:
        for _ in range(3):  # within the time: error, tried again
            subs.failed(conn, a.id, "the endpoint answered 503", 1, error_after=3, give_up=3600)
        tried = subs.get(conn, a.id)
        made = subs.now() - timedelta(hours=2)
        conn.execute(update(SUB).where(SUB.c.id == a.id).values(created_at=made))
        subs.failed(conn, a.id, "the endpoint answered 503", 1, error_after=3, give_up=3600)
        off = subs.get(conn, a.id)
        subs.sent(conn, a.id)  # a late answer does not turn it on again
        still = subs.get(conn, a.id)
        assert [s.id for s in subs.live(conn)] == []
    assert tried is not None and (tried.status, tried.attempts) == ("error", 3)
    assert off is not None and still is not None
    assert (off.status, off.attempts, off.next_attempt, still.status) == ("off", 4, None, "off")
    assert off.error == (
        f"no notification went through since {made.isoformat(timespec='seconds')} (4 tries in a row "
        "failed; the server gives up after 3600 s): the subscription is off and nothing more is "
        "sent; delete it and subscribe again. The last failure: the endpoint answered 503"
    )
    (b,) = _made(engine, _new())
    with engine.begin() as conn:  # measured from the last send that went through, not the making
        conn.execute(update(SUB).where(SUB.c.id == b.id).values(created_at=made))
        subs.sent(conn, b.id)
        for _ in range(4):
            subs.failed(conn, b.id, "the endpoint answered 503", 1, error_after=3, give_up=3600)
        assert subs.get(conn, b.id).status == "error"  # type: ignore[union-attr]
