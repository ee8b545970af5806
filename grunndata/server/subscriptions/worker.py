"""The notifier every server process runs in its lifespan; the one holding the lease sends.

Each tick (GRUNNDATA_SUBSCRIPTION_TICK_SECONDS, 1 s) a process tries to take or renew the lease
(a store row, GRUNNDATA_SUBSCRIPTION_LEASE_SECONDS, 5 s): the holder makes the events of newly
served releases (store/subscriptions.py makes them once, in one transaction with the line's
advance) and sends what is due to the rest-hooks: the handshake of a new subscription, the events
not yet delivered in order, a heartbeat when nothing was sent for heartbeatPeriod. A failed send
is tried again after 1 s, doubling to GRUNNDATA_SUBSCRIPTION_RETRY_MAX_SECONDS; after three in a
row the status is error, and the next send that goes through makes it active again with every
event it missed, numbered as before (or, beyond the kept events, the status says which were
lost). A subscription none of whose sends went through for GRUNNDATA_SUBSCRIPTION_GIVE_UP_SECONDS
(a day) is off, its error (in `$status`) saying why: it is not tried for ever. A process that loses the lease sends nothing more; if the
holder dies, another takes over when its lease runs out. Blocking store calls run in threads.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TypeVar

import httpx
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from grunndata.server.subscriptions import bundles, outbound, topics
from grunndata.server.subscriptions.outbound import EndpointPolicy, RefusedEndpoint
from grunndata.settings import Settings
from grunndata.store import subscriptions as store
from grunndata.store.changes import release_changes
from grunndata.store.subscriptions import Draft, Event, LineMoved, Pending, Subscription

log = logging.getLogger("grunndata.server")
ERROR_AFTER = 3  # failed sends in a row that make the status error
EVENTS_PER_ROUND = 20  # events one subscription is sent in one round, in order
MOST_RELEASES_PER_TICK = 50
T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Due:
    """What a rest-hook send of `sub` carries: the next events it may read now (with the bodies
    full-resource content needs), the number through which events were read (those withheld
    included), and what its status says is withheld."""

    events: tuple[Event, ...] = ()
    bodies: dict[tuple[str, str, int], bytes] = field(default_factory=dict)
    through: int = 0
    counted: bool = True
    notes: tuple[str, ...] = ()


class Notifier:
    """One process's notifier: the lease, the events, the sends."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        self.policy = EndpointPolicy(
            frozenset(settings.subscription_http_hosts), settings.subscription_private_addresses
        )
        self.tick = settings.subscription_tick_seconds
        self.lease_seconds = settings.subscription_lease_seconds
        self.keep = settings.subscription_keep_events
        self.most_changes = settings.subscription_max_references
        self.timeout = settings.subscription_send_timeout
        self.retry_max = settings.subscription_retry_max_seconds
        self.give_up = settings.subscription_give_up_seconds
        self.entitled_for = settings.subscription_entitlement_seconds
        self._leader_until = 0.0  # monotonic: the lease is ours until then (a margin kept)
        self._sending: dict[str, asyncio.Task[None]] = {}
        self._client: httpx.AsyncClient | None = None

    @property
    def leader(self) -> bool:
        return time.monotonic() < self._leader_until

    async def _store(self, work: Callable[..., T], *args: object) -> T:
        return await asyncio.to_thread(work, *args)

    # -- the loops ---------------------------------------------------------------------------

    async def run(self) -> None:
        """Until cancelled: the lease renewed every tick, and the work done while it is ours."""
        lease = asyncio.create_task(self._keep_lease(), name="notifier-lease")
        try:
            while True:
                if self.leader:
                    try:
                        await self.round()
                    except SQLAlchemyError as e:  # the store busy or away: the next tick tries again
                        log.warning("the notifier's round failed: %s", str(e).splitlines()[0])
                    except Exception:
                        log.exception("the notifier's round failed")
                await asyncio.sleep(self.tick)
        finally:
            lease.cancel()
            for task in list(self._sending.values()):
                task.cancel()
            with contextlib.suppress(Exception):
                await asyncio.gather(lease, *self._sending.values(), return_exceptions=True)
            if self._client is not None:
                await self._client.aclose()
            if self.leader:  # let another process take over at once
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._store(self._drop), 2.0)

    def _drop(self) -> None:
        with self.engine.begin() as conn:
            store.drop_lease(conn, self.holder)

    async def _keep_lease(self) -> None:
        while True:
            started = time.monotonic()
            try:
                held = await self._store(store.take_lease, self.engine, self.holder, self.lease_seconds)
            except Exception as e:  # the store away: not the leader until it answers again
                log.warning("the notifier could not renew its lease: %s", str(e).splitlines()[0])
                held = False
            # ours until shortly before it runs out for the others (counted from before we asked)
            self._leader_until = started + self.lease_seconds * 0.8 if held else 0.0
            await asyncio.sleep(self.tick)

    async def round(self) -> None:
        """Make the events of newly served releases, then start the sends that are due."""
        await self._store(self.make_events)  # with no subscription, the lines' marks move on
        if not await self._store(self._any_live):
            return
        for sub in await self._store(self._due):
            running = self._sending.get(sub.id)
            if running is not None and not running.done():
                continue  # a slow endpoint holds up only its own subscription
            task = asyncio.create_task(self._guarded(sub), name=f"notify-{sub.id}")
            self._sending[sub.id] = task
            task.add_done_callback(self._forget)

    async def _guarded(self, sub: Subscription) -> None:
        """`send`, its failure logged in one line naming the exception's type only (its text may
        carry a channel parameter's value, often a secret); the next round tries again."""
        try:
            await self.send(sub)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            log.warning("sending to Subscription/%s failed (%s)", sub.id, type(e).__name__)

    def _forget(self, task: asyncio.Task[None]) -> None:
        for sub_id, running in list(self._sending.items()):
            if running is task:
                del self._sending[sub_id]

    # -- events ------------------------------------------------------------------------------

    def _any_live(self) -> bool:
        with self.engine.begin() as conn:
            store.end_expired(conn)
            return bool(store.live(conn))

    def make_events(self) -> int:
        """The events of every release served since the last round, line by line; how many made."""
        made = 0
        for _ in range(MOST_RELEASES_PER_TICK):
            with self.engine.connect() as conn:
                pending = store.pending_releases(conn)
            if not pending:
                break
            for release in pending:
                try:
                    with self.engine.begin() as conn:
                        drafts = self._drafts(conn, release)
                        made += len(store.record(conn, release, drafts, self.keep, self.most_changes))
                except LineMoved:  # another process made them first
                    continue
        return made

    def _drafts(self, conn: Connection, release: Pending) -> list[Draft]:
        recipients = store.recipients(conn, release)
        if not recipients:
            return []
        changes = release_changes(conn, release.release_id, release.previous_id)
        line = (release.tier, release.owner)
        drafts = []
        seen: dict[str, store.Seen | None] = {}
        for sub in recipients:
            if sub.owner not in seen:
                seen[sub.owner] = store.last_seen(conn, sub.owner)
            reads = bundles.making(sub, seen[sub.owner])
            found = topics.matching(sub.topic, sub.filters, line, changes, reads)
            if found is not None:
                drafts.append(Draft(sub.id, tuple((c.type, c.id, c.version, c.action) for c in found)))
        return drafts

    # -- sending -----------------------------------------------------------------------------

    def _due(self) -> list[Subscription]:
        """The rest-hook subscriptions with something to send now."""
        now = store.now()
        with self.engine.connect() as conn:
            subs = store.live(conn)
        due = []
        for sub in subs:
            if sub.channel != "rest-hook" or not sub.endpoint:
                continue
            if sub.next_attempt is not None and sub.next_attempt > now:
                continue
            heartbeat = sub.heartbeat_seconds is not None and (
                sub.last_sent is None or now - sub.last_sent >= timedelta(seconds=sub.heartbeat_seconds)
            )
            if sub.last_sent is None or sub.events > sub.delivered or heartbeat:
                due.append(sub)
        return due

    async def send(self, sub: Subscription) -> None:
        """What `sub` is due: the handshake until one went through (nothing else before it, however
        often it failed), else its undelivered events in order (at most maxCount a notification,
        those the subscriber may not read now withheld), else a heartbeat."""
        due = await self._store(self._undelivered, sub)
        notes = due.notes
        if sub.last_sent is None:  # no send ever went through: the handshake did not
            body = bundles.notification(
                sub, bundles.HANDSHAKE, sub.base_url, counted=due.counted, notes=notes
            )
            await self._post(sub, body, None)
            return
        if sub.events > sub.delivered:
            most = bundles.max_count(sub, EVENTS_PER_ROUND)
            events = due.events
            for start in range(0, len(events), most):
                batch = list(events[start : start + most])
                body = bundles.notification(
                    sub, bundles.EVENT, sub.base_url, batch, due.bodies, counted=due.counted, notes=notes
                )
                if not await self._post(sub, body, batch[-1].number):
                    return
            if due.through > (events[-1].number if events else sub.delivered):
                await self._store(self._withheld, sub.id, due.through)  # the rest read, not sent
            return
        heartbeat = bundles.notification(
            sub, bundles.HEARTBEAT, sub.base_url, counted=due.counted, notes=notes
        )
        await self._post(sub, heartbeat, None)

    def _undelivered(self, sub: Subscription) -> Due:
        """The next events to send and what they may carry, by the subscriber's entitlement now
        (bundles.current); those dropped unsent (the kept events are bounded) are marked lost."""
        with self.engine.begin() as conn:
            reads, note = bundles.current(
                sub, store.last_seen(conn, sub.owner), self.entitled_for, store.now()
            )
            counted = reads == bundles.entitlement(sub)
            notes = () if note is None else (note,)
            if sub.last_sent is None or sub.events <= sub.delivered:
                return Due(counted=counted, notes=notes)
            events, bodies = store.undelivered(conn, sub, sub.delivered, EVENTS_PER_ROUND)
            through = events[-1].number if events else sub.delivered
            if not counted:
                events, bodies = bundles.cut(conn, events, bodies, reads)
            return Due(tuple(events), bodies, through, counted, notes)

    def _withheld(self, sub_id: str, through: int) -> None:
        with self.engine.begin() as conn:
            store.withheld(conn, sub_id, through)

    async def _post(self, sub: Subscription, body: bytes, through: int | None) -> bool:
        """POST one notification; its outcome written to the subscription. True when it went through."""
        if not self.leader:  # the lease was lost meanwhile: the new holder sends
            return False
        if self._client is None:
            self._client = outbound.client()
        timeout = min(float(sub.timeout_seconds or self.timeout), self.timeout)
        error: str | None = None
        try:
            status = await outbound.post(
                self._client, str(sub.endpoint), body, dict(sub.headers), self.policy, timeout
            )
            if not 200 <= status < 300:
                error = f"the endpoint answered {status}"
        except RefusedEndpoint as e:
            error = str(e)
        except httpx.HTTPError as e:
            error = f"the endpoint could not be reached ({type(e).__name__})"
        except Exception as e:  # any other failure is a failed send; its text may hold a header's value
            error = f"the notification could not be sent ({type(e).__name__})"
        if error is None:
            await self._store(self._sent, sub.id, through)
            return True
        await self._store(self._failed, sub.id, error)
        return False

    def _sent(self, sub_id: str, through: int | None) -> None:
        with self.engine.begin() as conn:
            store.sent(conn, sub_id, through)

    def _failed(self, sub_id: str, error: str) -> None:
        with self.engine.begin() as conn:
            found = store.get(conn, sub_id)
            if found is None:
                return
            retry_in = min(2.0**found.attempts, self.retry_max)  # 1, 2, 4, ... seconds
            store.failed(conn, sub_id, error, retry_in, ERROR_AFTER, self.give_up)
