"""The websocket channel of R5 subscriptions: a client gets a token by `$get-ws-binding-token`,
opens the socket at WS_PATH and sends `bind-with-token <token>`, once per token (R5: one socket may
be bound to several subscriptions, and bind again with a fresh token). For each subscription the
token binds, the process holding the socket sends the handshake, then the events after the last
one delivered (those made while no socket was bound), each new event (from the store, where the
notifier made it: any process can hold the socket) and heartbeats while nothing else is sent.

A token that is unknown, expired or binds no subscription still on, and any other message, is
refused: an OperationOutcome frame says why, and the socket is closed (1008, the same sentence as
the reason). A socket that binds nothing within FIRST_MESSAGE_SECONDS is closed too; one whose
subscriptions are all deleted or ended is closed (1000).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.engine import Engine
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from grunndata.fhirpackage.capability import WEBSOCKET_PATH, websocket_url
from grunndata.server.auth import Access
from grunndata.server.fhir_io.responses import outcome
from grunndata.server.subscriptions import bundles
from grunndata.settings import Settings
from grunndata.store import subscriptions as store
from grunndata.store.subscriptions import Event, NotBound, Subscription

WS_PATH = WEBSOCKET_PATH
BIND = "bind-with-token"
CHANNEL = "websocket"
FIRST_MESSAGE_SECONDS = 30.0
MOST_BOUND = 50  # subscriptions one socket may be bound to
MOST_MESSAGE = 4096  # characters of one message from the client
EVENTS_PER_ROUND = 20  # events one subscription is sent per tick, in order
POLICY_VIOLATION, DONE = 1008, 1000  # RFC 6455 close codes: refused; normal closure
Key = tuple[str, str, int]
__all__ = ["BIND", "CHANNEL", "WS_PATH", "Channel", "subscription_socket", "token_of", "websocket_url"]


def token_of(message: str) -> str:
    """The token of a bind message: `bind-with-token <token>`, or as JSON
    `{"type": "bind-with-token", "payload": {"token": "<token>"}}`; NotBound for anything else."""
    text = message.strip()
    token: object = None
    if text.startswith("{"):
        try:
            given = orjson.loads(text)
        except orjson.JSONDecodeError:
            given = None
        if isinstance(given, dict) and given.get("type") == BIND and isinstance(given.get("payload"), dict):
            token = given["payload"].get("token")
    else:
        word, _, rest = text.partition(" ")
        if word == BIND:
            token = rest.strip()
    if not isinstance(token, str) or not token or not token.isascii() or len(token) > 200:
        raise NotBound(f"send {BIND} and the token $get-ws-binding-token gave, separated by a space")
    return token


@dataclass(slots=True)
class Bound:
    """One subscription this socket is bound to: the last event number sent, when it last was
    sent anything (monotonic seconds), and what the token that bound it may read (the narrower of
    it and the subscriber's entitlement judges what is sent)."""

    sub_id: str
    after: int
    last_sent: float
    reads: Access


@dataclass(frozen=True, slots=True)
class Due:
    """What one bound subscription is due now, read from the store; None: deleted or ended.
    `through`: the last event number read (some may be left out as the socket may not read them);
    `counted`: the socket reads as much as the subscriber did."""

    sub: Subscription | None
    events: tuple[Event, ...] = ()
    bodies: dict[Key, bytes] | None = None
    through: int = 0
    counted: bool = True


def bind(engine: Engine, token: str) -> tuple[list[Subscription], Access]:
    """The websocket subscriptions `token` binds (it is used up), and what the token that asked
    for it may read; NotBound when it binds none."""
    with engine.begin() as conn:
        binding = store.bound(conn, token)
    subs = [s for s in binding.subscriptions if s.channel == CHANNEL]
    if not subs:
        raise NotBound("the binding token binds no websocket subscription")
    return subs, Access(sector=binding.sector, supplementary=binding.supplementary)


def handshaken(engine: Engine, sub_id: str) -> None:
    """The handshake went out: the subscription is active."""
    with engine.begin() as conn:
        store.sent(conn, sub_id)


def due(engine: Engine, sub_id: str, after: int, reads: Access | None = None) -> Due:
    """The subscription's events after number `after` (at most EVENTS_PER_ROUND), with the bodies
    full-resource content needs; events dropped before they were sent are marked lost. Only what
    the narrower of `reads` (the binding token's rights) and the subscriber's entitlement reads."""
    with engine.begin() as conn:
        sub = store.get(conn, sub_id)
        if sub is None or sub.status == store.OFF:
            return Due(None)
        narrowed = bundles.narrowed(sub, reads) if reads is not None else bundles.entitlement(sub)
        counted = narrowed == bundles.entitlement(sub)
        if sub.events <= after:
            return Due(sub, through=after, counted=counted)
        events, bodies = store.undelivered(conn, sub, after, EVENTS_PER_ROUND)
        through = events[-1].number if events else sub.events
        if not counted:
            events, bodies = bundles.cut(conn, events, bodies, narrowed)
        return Due(sub, tuple(events), bodies, through, counted)


def delivered(engine: Engine, sub_id: str, through: int) -> None:
    with engine.begin() as conn:
        store.sent(conn, sub_id, through)


class Channel:
    """One client's socket: its bindings, and what it is sent."""

    def __init__(self, socket: WebSocket, engine: Engine, tick: float) -> None:
        self.socket = socket
        self.engine = engine
        self.tick = tick
        self.bound: dict[str, Bound] = {}

    async def serve(self) -> None:
        """Until the client goes or is refused: its bind messages taken, its subscriptions sent."""
        await self.socket.accept()
        inbox: asyncio.Queue[str | None] = asyncio.Queue()
        reader = asyncio.create_task(self._read(inbox), name="ws-reader")
        opened = time.monotonic()
        try:
            while True:
                try:
                    message = await asyncio.wait_for(inbox.get(), self.tick)
                except TimeoutError:
                    message = ""
                if message is None:  # the client closed the socket
                    return
                if message and not await self._bind(message):
                    return
                if not self.bound:
                    if time.monotonic() - opened > FIRST_MESSAGE_SECONDS:
                        await self._close(POLICY_VIOLATION, f"send {BIND} <token> first")
                        return
                    continue
                if not await self._send_due():
                    return
        except (WebSocketDisconnect, OSError, RuntimeError):  # the client went while it was sent to
            return
        finally:
            reader.cancel()
            with contextlib.suppress(BaseException):
                await reader

    async def _read(self, inbox: asyncio.Queue[str | None]) -> None:
        """The client's messages into `inbox`, None when it closed; a frame not text is refused."""
        try:
            while True:
                got = await self.socket.receive()
                if got["type"] == "websocket.disconnect":
                    break
                text = got.get("text")
                if text is None:
                    text = "(a binary frame)"
                await inbox.put(text[: MOST_MESSAGE + 1])
        except (WebSocketDisconnect, RuntimeError, OSError):
            pass
        await inbox.put(None)

    async def _bind(self, message: str) -> bool:
        """Bind the token `message` carries and send each subscription's handshake; False when it
        was refused (the socket is closed)."""
        try:
            if len(message) > MOST_MESSAGE:
                raise NotBound(f"a message is at most {MOST_MESSAGE} characters")
            subs, reads = await asyncio.to_thread(bind, self.engine, token_of(message))
            if len(set(self.bound) | {s.id for s in subs}) > MOST_BOUND:
                raise NotBound(f"one socket is bound to at most {MOST_BOUND} subscriptions")
        except NotBound as e:
            await self._close(POLICY_VIOLATION, str(e))
            return False
        for sub in subs:
            counted = bundles.narrowed(sub, reads) == bundles.entitlement(sub)
            await self._send(bundles.notification(sub, bundles.HANDSHAKE, sub.base_url, counted=counted))
            await asyncio.to_thread(handshaken, self.engine, sub.id)
            known = self.bound.get(sub.id)
            self.bound[sub.id] = Bound(
                sub.id, sub.delivered if known is None else known.after, time.monotonic(), reads
            )
        return True

    async def _send_due(self) -> bool:
        """Each bound subscription's new events, else its heartbeat when one is due; False when
        none is left (all deleted or ended: the socket is closed)."""
        for bound in list(self.bound.values()):
            found = await asyncio.to_thread(due, self.engine, bound.sub_id, bound.after, bound.reads)
            sub = found.sub
            if sub is None:
                del self.bound[bound.sub_id]
                continue
            most = bundles.max_count(sub, EVENTS_PER_ROUND)
            for start in range(0, len(found.events), most):
                batch = found.events[start : start + most]
                body = bundles.notification(
                    sub, bundles.EVENT, sub.base_url, batch, found.bodies, counted=found.counted
                )
                await self._send(body)
                bound.after = batch[-1].number
            read = found.through > bound.after  # events read and left out: this socket may not read them
            bound.after = max(bound.after, found.through)
            if found.events or read:
                await asyncio.to_thread(delivered, self.engine, sub.id, bound.after)
                if not found.events:
                    continue
            elif sub.heartbeat_seconds and time.monotonic() - bound.last_sent >= sub.heartbeat_seconds:
                heartbeat = bundles.notification(sub, bundles.HEARTBEAT, sub.base_url, counted=found.counted)
                await self._send(heartbeat)
            else:
                continue
            bound.last_sent = time.monotonic()
        if not self.bound:
            await self._close(DONE, "the subscriptions this socket was bound to were deleted or have ended")
            return False
        return True

    async def _send(self, body: bytes) -> None:
        await self.socket.send_text(body.decode())

    async def _close(self, code: int, sentence: str) -> None:
        """Say why in an OperationOutcome, then close with `code` and the sentence as the reason."""
        with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
            if self.socket.application_state == WebSocketState.CONNECTED:
                severity = "error" if code == POLICY_VIOLATION else "information"
                issue = "security" if code == POLICY_VIOLATION else "informational"
                await self._send(outcome(0, issue, sentence, severity))
                await self.socket.close(code, sentence[:120])


async def subscription_socket(websocket: WebSocket) -> None:
    """The ws route: one client's socket, served until it goes or is refused."""
    state: Any = websocket.app.state
    settings: Settings = state.settings
    await Channel(websocket, state.served.engine, settings.subscription_tick_seconds).serve()
