"""A client with no endpoint of its own (a browser app, a pharmacy till) hears of new releases over
the R5 websocket channel: it asks `$get-ws-binding-token`, connects to the socket the answer names,
sends `bind-with-token <token>`, and is sent the handshake, heartbeats and one notification per
release (and those it missed while away), from whichever server process holds its socket; a
token binds only its owner's subscriptions it names, and not after it expired; anything else is
refused in words and the socket closed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect
from websockets.sync.client import connect as ws_connect

from grunndata.server import create_app
from grunndata.server.auth import SCOPE_SECTOR_READ, SCOPE_SUBSCRIBE
from grunndata.server.subscriptions.websocket import token_of
from grunndata.settings import Settings
from grunndata.store import connect
from grunndata.store.models import REL, WS
from grunndata.store.subscriptions import NotBound
from tests.conftest import fresh_pg_database
from tests.server.conftest import publish
from tests.server.live import running
from tests.server.test_subscriptions import NATIONAL_TOPIC, subscription, valid
from tests.server.tokens import Issuer

pytestmark = pytest.mark.timeout(60)  # a socket that never answers fails the test, not the run
OWNER, OTHER = "apotek-kasse-1", "epj-vendor-2"
SOCKET = "/fhir/subscription-ws"
CHANNEL = {"system": "http://terminology.hl7.org/CodeSystem/subscription-channel-type", "code": "websocket"}
UNKNOWN = "the binding token is not known here: get one by $get-ws-binding-token"


def _basic(rid: str) -> dict[str, Any]:
    return {
        "resourceType": "Basic",
        "id": rid,
        "code": {"coding": [{"system": "https://grunndata.no/fhir/CodeSystem/tiered-data", "code": "note"}]},
    }


class Servers:
    """Two server processes over one store (two apps, each with its own notifier)."""

    def __init__(self, engine: Engine, one: TestClient, two: TestClient, issuer: Issuer) -> None:
        self.engine, self.one, self.two, self.issuer = engine, one, two, issuer

    def headers(self, owner: str = OWNER, *scopes: str) -> dict[str, str]:
        return self.issuer.headers(*(scopes or (SCOPE_SUBSCRIBE,)), sub=owner)

    def subscribe(self, owner: str = OWNER, **extra: Any) -> dict[str, Any]:
        body = {**subscription(NATIONAL_TOPIC, **extra), "channelType": CHANNEL}
        body.pop("endpoint")
        body.pop("parameter")
        r = self.one.post(
            "/fhir/Subscription",
            json=body,
            headers={**self.headers(owner), "Content-Type": "application/fhir+json"},
        )
        assert r.status_code == 201, r.text
        return valid(r.json())

    def token(self, sub_id: str, owner: str = OWNER) -> dict[str, Any]:
        r = self.one.post(f"/fhir/Subscription/{sub_id}/$get-ws-binding-token", headers=self.headers(owner))
        assert r.status_code == 200, r.text
        return {
            p["name"]: next(v for k, v in p.items() if k.startswith("value")) for p in r.json()["parameter"]
        }

    def status(self, sub_id: str) -> dict[str, Any]:
        r = self.one.get(f"/fhir/Subscription/{sub_id}/$status", headers=self.headers())
        resource: dict[str, Any] = r.json()["entry"][0]["resource"]
        return resource

    def release(self, rid: str) -> int:
        """Serve a new national release holding only Basic/`rid`; its id."""
        publish(self.engine, [("national", "dmp", _basic(rid))])
        with self.engine.connect() as conn:
            return int(
                conn.execute(
                    select(REL.c.id).where(REL.c.tier == "national", REL.c.status == "active")
                ).scalar_one()
            )


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def servers(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    issuer = Issuer(tmp_path_factory.mktemp("keys"))
    settings = Settings.load({"GRUNNDATA_SUBSCRIPTION_TICK_SECONDS": "0.1", "GRUNNDATA_WARM": "0"})

    def serve(url: str) -> Iterator[Servers]:
        engine = connect(url)
        publish(engine, [("national", "dmp", _basic("n-1"))])
        auth = issuer.authenticator()
        with (
            TestClient(create_app(engine, auth, settings=settings)) as one,
            TestClient(create_app(engine, auth, settings=settings)) as two,
        ):
            yield Servers(engine, one, two, issuer)
        engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp_path_factory.mktemp('ws') / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


def _status(message: dict[str, Any]) -> dict[str, Any]:
    valid(message)
    assert (message["resourceType"], message["type"]) == ("Bundle", "subscription-notification")
    status: dict[str, Any] = message["entry"][0]["resource"]
    return status


def _next(ws: WebSocketTestSession, kind: str, most: int = 20) -> dict[str, Any]:
    """The next notification of `kind` (heartbeats on the way skipped), as its SubscriptionStatus."""
    for _ in range(most):
        status = _status(ws.receive_json())
        if status["type"] == kind:
            return status
        assert status["type"] == "heartbeat", status
    raise AssertionError(f"no {kind} within {most} messages")


def _refused(ws: WebSocketTestSession) -> str:
    """The refusal's sentence, after which the socket is closed with 1008."""
    said = ws.receive_json()
    assert said["resourceType"] == "OperationOutcome"
    with pytest.raises(WebSocketDisconnect) as closed:
        ws.receive_text()
    assert closed.value.code == 1008
    sentence: str = said["issue"][0]["diagnostics"]
    assert closed.value.reason == sentence[:120]
    return sentence


def test_a_websocket_client_gets_the_handshake_heartbeats_each_release_and_what_it_missed(
    servers: Servers,
) -> None:
    made = servers.subscribe(heartbeatPeriod=1)
    assert (made["status"], made["channelType"]["code"], "endpoint" in made) == (
        "active",
        "websocket",
        False,
    )
    r = servers.one.post(f"/fhir/Subscription/{made['id']}/$get-ws-binding-token", headers=servers.headers())
    assert r.status_code == 200, r.text
    assert r.headers["cache-control"] == "no-store"
    answer = valid(r.json())
    assert [p["name"] for p in answer["parameter"]] == [
        "token",
        "expiration",
        "subscription",
        "websocket-url",
    ]
    given = servers.token(made["id"])
    assert (given["subscription"], given["websocket-url"]) == (
        made["id"],
        "ws://testserver/fhir/subscription-ws",
    )
    expires = datetime.fromisoformat(given["expiration"].replace("Z", "+00:00"))
    assert timedelta(seconds=55) < expires - datetime.now(UTC) <= timedelta(seconds=60)

    # the token came from one process; the socket is held by the other (the store has the token)
    with servers.two.websocket_connect(SOCKET) as ws:
        ws.send_text(f"bind-with-token {given['token']}")
        handshake = _status(ws.receive_json())
        assert (handshake["type"], handshake["subscription"], handshake["topic"]) == (
            "handshake",
            {"reference": f"Subscription/{made['id']}"},
            NATIONAL_TOPIC,
        )
        heartbeat = _status(ws.receive_json())
        assert (heartbeat["type"], heartbeat["status"], heartbeat["eventsSinceSubscriptionStart"]) == (
            "heartbeat",
            "active",
            "0",
        )
        assert servers.status(made["id"])["status"] == "active"

        release = servers.release("n-2")
        event = _next(ws, "event-notification")
        [notified] = event["notificationEvent"]
        assert (notified["eventNumber"], notified["focus"]["identifier"]["value"]) == ("1", str(release))
        assert sorted((c["reference"], c["display"]) for c in notified["additionalContext"]) == [
            ("Basic/n-1/_history/1", "no longer served"),
            ("Basic/n-2/_history/1", "created"),
        ]

    missed = servers.release("n-3")  # while no socket is bound
    for _ in range(100):
        if servers.status(made["id"])["eventsSinceSubscriptionStart"] == "2":
            break
        time.sleep(0.1)
    with servers.one.websocket_connect(SOCKET) as ws:
        ws.send_text(f"bind-with-token {servers.token(made['id'])['token']}")
        assert _status(ws.receive_json())["type"] == "handshake"
        # delivery is at least once: a socket closed right after event 1 was sent may close before
        # the store records it delivered, and then event 1 comes again (numbered as before) first
        [again] = _next(ws, "event-notification")["notificationEvent"]
        if again["eventNumber"] == "1":
            assert again["focus"]["identifier"]["value"] == str(release)
            [again] = _next(ws, "event-notification")["notificationEvent"]
        assert (again["eventNumber"], again["focus"]["identifier"]["value"]) == ("2", str(missed))


def test_an_unknown_expired_or_malformed_token_is_refused_and_the_socket_closed(servers: Servers) -> None:
    made = servers.subscribe()
    token = servers.token(made["id"])["token"]
    with servers.one.websocket_connect(SOCKET) as ws:
        ws.send_text(f"bind-with-token {token}")
        assert _status(ws.receive_json())["type"] == "handshake"
    with servers.two.websocket_connect(SOCKET) as ws:  # again within its life, on the other process
        ws.send_text(f"bind-with-token {token}")
        assert _refused(ws) == UNKNOWN  # it binds one socket: it was used up
    with servers.one.websocket_connect(SOCKET) as ws:
        ws.send_text("bind-with-token no-such-token")
        assert _refused(ws) == UNKNOWN

    late = servers.token(made["id"])["token"]
    with servers.engine.begin() as conn:  # it ran out
        conn.execute(update(WS).values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    with servers.one.websocket_connect(SOCKET) as ws:
        ws.send_text(f"bind-with-token {late}")
        assert _refused(ws) == "the binding token has expired: get a new one by $get-ws-binding-token"

    for message in ("hello", "bind-with-token", "bind-with-token " + "x" * 5000):
        with servers.one.websocket_connect(SOCKET) as ws:
            ws.send_text(message)
            assert _refused(ws).startswith(("send bind-with-token and the token", "a message is at most"))

    gone = servers.token(made["id"])["token"]
    with servers.two.websocket_connect(SOCKET) as ws:  # bound, and then its subscription is deleted
        ws.send_text(f"bind-with-token {gone}")
        assert _status(ws.receive_json())["type"] == "handshake"
        deleted = servers.one.delete(f"/fhir/Subscription/{made['id']}", headers=servers.headers())
        assert deleted.status_code == 200
        said = ws.receive_json()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()
    assert (said["issue"][0]["diagnostics"], closed.value.code) == (
        "the subscriptions this socket was bound to were deleted or have ended",
        1000,
    )
    with servers.one.websocket_connect(SOCKET) as ws:
        ws.send_text(f"bind-with-token {gone}")
        assert _refused(ws) == UNKNOWN  # its tokens went with it


def test_the_store_keeps_no_usable_token(servers: Servers) -> None:
    made = servers.subscribe()
    token = servers.token(made["id"])["token"]
    with servers.engine.connect() as conn:
        rows = conn.execute(select(WS)).all()
    assert rows and all(token not in str(tuple(r)) for r in rows)


def test_only_the_owner_gets_a_token_and_it_binds_only_what_it_names(servers: Servers) -> None:
    mine, also_mine = servers.subscribe(), servers.subscribe()
    theirs = servers.subscribe(OTHER)
    for path, owner, unknown in (
        (f"/fhir/Subscription/{theirs['id']}/$get-ws-binding-token", OWNER, theirs["id"]),
        (f"/fhir/Subscription/$get-ws-binding-token?id={mine['id']}", OTHER, mine["id"]),
    ):
        r = servers.one.post(path, headers=servers.headers(owner))
        assert r.status_code == 404, r.text
        assert r.json()["issue"][0]["diagnostics"] == f"Subscription/{unknown} is not known"
    anonymous = servers.one.post(f"/fhir/Subscription/{mine['id']}/$get-ws-binding-token")
    reader = servers.one.post(
        f"/fhir/Subscription/{mine['id']}/$get-ws-binding-token",
        headers=servers.headers(OWNER, SCOPE_SECTOR_READ),
    )
    assert (anonymous.status_code, reader.status_code) == (401, 403)
    assert (
        reader.json()["issue"][0]["diagnostics"]
        == "subscriptions need a token with the scope grunndata:subscription"
    )

    hook = servers.one.post(
        "/fhir/Subscription",
        json=subscription(NATIONAL_TOPIC, endpoint="https://hooks.example.invalid/x"),
        headers={**servers.headers(), "Content-Type": "application/fhir+json"},
    ).json()
    r = servers.one.post(f"/fhir/Subscription/{hook['id']}/$get-ws-binding-token", headers=servers.headers())
    assert r.status_code == 400
    assert r.json()["issue"][0]["diagnostics"] == (
        f"Subscription/{hook['id']} has the channel rest-hook: binding tokens are for websocket subscriptions"
    )

    # the type level: the ids named (in a Parameters body), or every websocket subscription of the owner
    named = servers.one.post(
        "/fhir/Subscription/$get-ws-binding-token",
        json={"resourceType": "Parameters", "parameter": [{"name": "id", "valueId": also_mine["id"]}]},
        headers={**servers.headers(), "Content-Type": "application/fhir+json"},
    )
    assert [p["valueString"] for p in named.json()["parameter"] if p["name"] == "subscription"] == [
        also_mine["id"]
    ]
    every = servers.one.post("/fhir/Subscription/$get-ws-binding-token", headers=servers.headers())
    listed = {p["valueString"] for p in every.json()["parameter"] if p["name"] == "subscription"}
    assert {mine["id"], also_mine["id"]} <= listed and theirs["id"] not in listed and hook["id"] not in listed

    # a token for one subscription binds that one: the handshake names it and no other
    token = servers.token(mine["id"])["token"]
    with servers.two.websocket_connect(SOCKET) as ws:
        ws.send_text(f'{{"type": "bind-with-token", "payload": {{"token": "{token}"}}}}')  # the JSON form
        assert _status(ws.receive_json())["subscription"] == {"reference": f"Subscription/{mine['id']}"}
    token = [p["valueString"] for p in named.json()["parameter"] if p["name"] == "token"][0]
    with servers.two.websocket_connect(SOCKET) as ws:
        ws.send_text(f"bind-with-token {token}")
        assert _status(ws.receive_json())["subscription"] == {"reference": f"Subscription/{also_mine['id']}"}


def test_one_socket_is_bound_to_several_subscriptions(servers: Servers) -> None:
    first, second = servers.subscribe(OTHER), servers.subscribe(OTHER)
    with servers.one.websocket_connect(SOCKET) as ws:  # a token each, one after the other (R5)
        for made in (first, second):
            ws.send_text(f"bind-with-token {servers.token(made['id'], OTHER)['token']}")
            assert _status(ws.receive_json())["subscription"] == {"reference": f"Subscription/{made['id']}"}
    both = servers.one.post(
        f"/fhir/Subscription/$get-ws-binding-token?id={first['id']},{second['id']}",
        headers=servers.headers(OTHER),
    )
    assert both.status_code == 200, both.text
    token = next(p["valueString"] for p in both.json()["parameter"] if p["name"] == "token")
    with servers.two.websocket_connect(SOCKET) as ws:  # one token for both: a handshake each
        ws.send_text(f"bind-with-token {token}")
        named = {_status(ws.receive_json())["subscription"]["reference"] for _ in range(2)}
    assert named == {f"Subscription/{first['id']}", f"Subscription/{second['id']}"}


@pytest.mark.parametrize(
    ("query", "body", "media", "status", "said"),
    [
        ("?id=not%20an%20id", None, None, 400, "'not an id' is not a valid Subscription id"),
        (
            "",
            b'{"resourceType": "Parameters", "parameter": [{"name": "all"}]}',
            "application/fhir+json",
            400,
            "$get-ws-binding-token takes the parameter id, not 'all'",
        ),
        ("", b"{", "application/fhir+json", 400, "the body is not JSON"),
        (
            "",
            b'{"resourceType": "Bundle"}',
            "application/fhir+json",
            400,
            "the body must be a Parameters resource",
        ),
        ("", b"id=1", "text/plain", 415, "POST the parameters as a Parameters resource in FHIR JSON"),
    ],
)
def test_a_bad_type_level_call_is_refused_saying_why(
    servers: Servers, query: str, body: bytes | None, media: str | None, status: int, said: str
) -> None:
    headers = servers.headers() | ({"Content-Type": media} if media else {})
    r = servers.one.post(f"/fhir/Subscription/$get-ws-binding-token{query}", content=body, headers=headers)
    assert (r.status_code, r.json()["issue"][0]["diagnostics"]) == (status, said)


@pytest.mark.parametrize("method", ["GET", "DELETE", "OPTIONS"])
def test_the_type_level_operation_is_only_posted(servers: Servers, method: str) -> None:
    r = servers.one.request(method, "/fhir/Subscription/$get-ws-binding-token", headers=servers.headers())
    assert (r.status_code, r.headers["allow"]) == (405, "POST")
    assert (
        r.json()["issue"][0]["diagnostics"] == "$get-ws-binding-token is invoked with POST: it makes a token"
    )


def test_the_bind_message_forms() -> None:
    assert token_of("bind-with-token abc ") == "abc"
    assert token_of('{"type": "bind-with-token", "payload": {"token": "abc"}}') == "abc"
    for wrong in ("bind abc", "bind-with-token ", '{"type": "bind-with-token"}', "bind-with-token ø", "{"):
        with pytest.raises(NotBound):
            token_of(wrong)


def test_the_capability_statement_and_openapi_name_the_websocket(servers: Servers) -> None:
    rest = servers.one.get("/fhir/metadata").json()["rest"][0]
    assert rest["extension"] == [
        {
            "url": "http://hl7.org/fhir/StructureDefinition/capabilitystatement-websocket",
            "valueUrl": "ws://testserver/fhir/subscription-ws",
        }
    ]
    [subs] = [r for r in rest["resource"] if r["type"] == "Subscription"]
    assert "get-ws-binding-token" in [o["name"] for o in subs["operation"]]
    paths = servers.one.get("/openapi.json").json()["paths"]
    assert paths["/fhir/Subscription/{rid}/$get-ws-binding-token"]["post"]["operationId"] == (
        "Subscription-get-ws-binding-token"
    )
    assert "/fhir/Subscription/$get-ws-binding-token" in paths


def test_a_real_client_reaches_the_socket_the_answer_names(tmp_path: Path) -> None:
    """Through uvicorn and a websocket client library, not the test client: the URL works as given."""
    issuer = Issuer(tmp_path)
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    publish(engine, [("national", "dmp", _basic("n-1"))])
    settings = Settings.load({"GRUNNDATA_SUBSCRIPTION_TICK_SECONDS": "0.1", "GRUNNDATA_WARM": "0"})
    headers = issuer.headers(SCOPE_SUBSCRIBE, sub=OWNER)
    body = {**subscription(NATIONAL_TOPIC, heartbeatPeriod=1), "channelType": CHANNEL}
    del body["endpoint"], body["parameter"]
    try:
        with running(create_app(engine, issuer.authenticator(), settings=settings)) as base:
            made = httpx.post(f"{base}/fhir/Subscription", json=body, headers=headers).json()
            answer = httpx.post(
                f"{base}/fhir/Subscription/{made['id']}/$get-ws-binding-token", headers=headers
            )
            given = {
                p["name"]: next(v for k, v in p.items() if k.startswith("value"))
                for p in answer.json()["parameter"]
            }
            assert given["websocket-url"] == base.replace("http://", "ws://") + SOCKET
            with ws_connect(given["websocket-url"], open_timeout=5) as ws:
                ws.send(f"bind-with-token {given['token']}")
                kinds = [_status(orjson.loads(ws.recv(timeout=5)))["type"] for _ in range(2)]
            assert kinds == ["handshake", "heartbeat"]
    finally:
        engine.dispose()


@pytest.mark.parametrize("store_kind", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_events_dropped_before_the_socket_came_are_named_lost(tmp_path: Path, store_kind: str) -> None:
    """One event kept per subscription: a client away for two releases gets the last, and the status
    says the first was dropped unsent."""
    issuer = Issuer(tmp_path)
    settings = Settings.load(
        {
            "GRUNNDATA_SUBSCRIPTION_TICK_SECONDS": "0.1",
            "GRUNNDATA_SUBSCRIPTION_KEEP_EVENTS": "1",
            "GRUNNDATA_WARM": "0",
        }
    )

    def check(url: str) -> None:
        engine = connect(url)
        publish(engine, [("national", "dmp", _basic("n-1"))])
        try:
            with TestClient(create_app(engine, issuer.authenticator(), settings=settings)) as client:
                servers = Servers(engine, client, client, issuer)
                made = servers.subscribe()
                for rid in ("n-2", "n-3"):
                    servers.release(rid)
                    for _ in range(100):  # each release's event made before the next is served
                        if servers.status(made["id"])["eventsSinceSubscriptionStart"] == str(
                            int(rid[-1]) - 1
                        ):
                            break
                        time.sleep(0.1)
                with client.websocket_connect(SOCKET) as ws:
                    ws.send_text(f"bind-with-token {servers.token(made['id'])['token']}")
                    assert _status(ws.receive_json())["type"] == "handshake"
                    event = _next(ws, "event-notification")
                assert [e["eventNumber"] for e in event["notificationEvent"]] == ["2"]
                assert servers.status(made["id"])["error"][0]["text"].startswith(
                    "events up to number 1 not delivered by then were dropped unsent"
                )
        finally:
            engine.dispose()

    if store_kind == "sqlite":
        check(f"sqlite:///{tmp_path / 'store.db'}")
        return
    with fresh_pg_database() as url:
        check(url)
