"""The websocket channel of R5 subscriptions: a client gets a token by `$get-ws-binding-token`,
opens the socket at WS_PATH and sends `bind-with-token <token>`; the process holding the socket
sends the handshake, then every new event of the subscription (from the store, where the
notifier made it: any process can hold the socket) and heartbeats while nothing else is sent.
Events made while no socket was bound are read with `$events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

from sqlalchemy.engine import Engine
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from grunndata.server.subscriptions import bundles
from grunndata.settings import Settings
from grunndata.store import subscriptions as store
from grunndata.store.subscriptions import Event, Subscription

WS_PATH = "/fhir/subscription-ws"
BIND = "bind-with-token"
TOKEN_SECONDS = 300.0  # a binding token's life
FIRST_MESSAGE_SECONDS = 30.0
POLICY_VIOLATION = 1008  # RFC 6455: the client broke the protocol or is not allowed


def websocket_url(fhir_base: str) -> str:
    """The socket's URL for a FHIR base `http(s)://host/fhir`: `ws(s)://host/fhir/subscription-ws`."""
    scheme, _, rest = fhir_base.partition("://")
    host = rest.split("/", 1)[0]
    return f"{'wss' if scheme == 'https' else 'ws'}://{host}{WS_PATH}"


def _bound(engine: Engine, token: str) -> Subscription | None:
    with engine.connect() as conn:
        return store.bound(conn, token)


def _current(engine: Engine, sub_id: str) -> Subscription | None:
    with engine.connect() as conn:
        return store.get(conn, sub_id)


def _next_events(
    engine: Engine, sub: Subscription, after: int
) -> tuple[list[Event], dict[tuple[str, str, int], bytes]]:
    with engine.connect() as conn:
        events = store.events(conn, sub.id, after + 1, None, 20)
        bodies: dict[tuple[str, str, int], bytes] = {}
        if sub.content == "full-resource":
            bodies = store.bodies(
                conn, [(t, i, v) for e in events for t, i, v, a in e.changes if a != "delete"]
            )
    return events, bodies


def _sent(engine: Engine, sub_id: str, through: int) -> None:
    with engine.begin() as conn:
        store.sent(conn, sub_id, through)


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends after binding, until it goes."""
    with contextlib.suppress(WebSocketDisconnect, RuntimeError):
        while True:
            await websocket.receive_text()


async def subscription_socket(websocket: WebSocket) -> None:
    """One bound socket: handshake, then events and heartbeats until the client or subscription goes."""
    state: Any = websocket.app.state
    engine: Engine = state.served.engine
    settings: Settings = state.settings
    await websocket.accept()
    try:
        first = await asyncio.wait_for(websocket.receive_text(), FIRST_MESSAGE_SECONDS)
    except (TimeoutError, WebSocketDisconnect, RuntimeError, KeyError):
        await _close(websocket, POLICY_VIOLATION, f"send {BIND} <token> first")
        return
    word, _, token = first.strip().partition(" ")
    sub = await asyncio.to_thread(_bound, engine, token.strip()) if word == BIND and token.strip() else None
    if sub is None or sub.channel != "websocket":
        await _close(
            websocket, POLICY_VIOLATION, "the token is unknown or expired: get one by $get-ws-binding-token"
        )
        return
    listening = asyncio.create_task(_drain(websocket))
    try:
        await websocket.send_text(bundles.notification(sub, bundles.HANDSHAKE, sub.base_url).decode())
        through, last = sub.events, time.monotonic()
        while not listening.done():
            await asyncio.sleep(settings.subscription_tick_seconds)
            current = await asyncio.to_thread(_current, engine, sub.id)
            if current is None or current.status == store.OFF:
                await _close(websocket, 1000, "the subscription was deleted or ended")
                return
            if current.events > through:
                events, bodies = await asyncio.to_thread(_next_events, engine, current, through)
                for event in events:
                    body = bundles.notification(current, bundles.EVENT, current.base_url, [event], bodies)
                    await websocket.send_text(body.decode())
                    through = event.number
                await asyncio.to_thread(_sent, engine, sub.id, through)
                last = time.monotonic()
            elif current.heartbeat_seconds and time.monotonic() - last >= current.heartbeat_seconds:
                await websocket.send_text(
                    bundles.notification(current, bundles.HEARTBEAT, current.base_url).decode()
                )
                last = time.monotonic()
    except (WebSocketDisconnect, RuntimeError):  # the client went
        pass
    finally:
        listening.cancel()


async def _close(websocket: WebSocket, code: int, reason: str) -> None:
    if websocket.client_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect):
            await websocket.close(code, reason)
