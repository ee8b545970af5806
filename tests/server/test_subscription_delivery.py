"""A record system subscribed to the national releases hears of each one: a live server posts the
handshake, heartbeats, and one notification per served release to a local rest-hook within 5 s of
the import; a receiver down for a few seconds gets what it missed when it comes back, numbered on
without a gap or a repeat."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from grunndata.importers.fest import import_fest
from grunndata.m30 import FestEntry
from grunndata.server import create_app
from grunndata.server.auth import SCOPE_SUBSCRIBE
from grunndata.settings import Settings
from grunndata.store import rollback
from grunndata.store.subscriptions import lease_holder
from tests.conftest import REAL_FEST, fresh_pg_database, require
from tests.deliveries import real_entries, relisted, write
from tests.server.conftest import CERTICAN_PACKAGE, served_store, write_followup
from tests.server.hooks import Receiver
from tests.server.live import running
from tests.server.test_bulk_workers import clients_of_each_process
from tests.server.test_subscriptions import NATIONAL_TOPIC, subscription, valid
from tests.server.test_workers import WORKERS, uvicorn_workers
from tests.server.tokens import Issuer
from tests.store.test_changes import CERTICAN, NEW_NOTICE, _marketing

SLOW = os.environ.get("GRUNNDATA_SLOW") == "1"  # opt-in: the receiver is down a minute, not seconds
WITHIN = 5.0  # seconds from a release served to its notification (issue 22)
SETTINGS = {
    "GRUNNDATA_SUBSCRIPTION_HTTP_HOSTS": "127.0.0.1",
    "GRUNNDATA_SUBSCRIPTION_PRIVATE_ADDRESSES": "1",
    "GRUNNDATA_SUBSCRIPTION_TICK_SECONDS": "0.2",
    "GRUNNDATA_SUBSCRIPTION_RETRY_MAX_SECONDS": "1",
    "GRUNNDATA_WARM": "0",
}


def _subscribe(base: str, headers: dict[str, str], hook: Receiver, **extra: Any) -> dict[str, Any]:
    body = subscription(NATIONAL_TOPIC, endpoint=hook.url, **extra)
    r = httpx.post(
        f"{base}/fhir/Subscription", json=body, headers={**headers, "Content-Type": "application/fhir+json"}
    )
    assert r.status_code == 201, r.text
    return valid(r.json())


def test_handshake_heartbeat_and_one_notification_per_release_then_the_missed_ones(
    tmp_path: Path, hook: Receiver
) -> None:
    engine = served_store(f"sqlite:///{tmp_path / 'store.db'}")
    issuer = Issuer(tmp_path)
    headers = issuer.headers(SCOPE_SUBSCRIBE, sub="epj-vendor")
    app = create_app(engine, issuer.authenticator(), settings=Settings.load(SETTINGS))
    followup, _ = write_followup(tmp_path, "Certican (renamed)")
    try:
        with running(app) as base:
            made = _subscribe(base, headers, hook, heartbeatPeriod=1)
            hook.wait_for(lambda h: len(h.of("handshake")) == 1, WITHIN)
            [handshake] = hook.of("handshake")
            assert handshake.headers["Authorization"] == "Bearer very-secret-4711"  # the channel's header
            assert handshake.headers["Content-Type"] == "application/fhir+json"
            assert handshake.status["subscription"] == {"reference": f"Subscription/{made['id']}"}
            assert valid(handshake.body)["type"] == "subscription-notification"
            hook.wait_for(lambda h: len(h.of("heartbeat")) >= 1, 3.0)
            assert (
                valid(hook.of("heartbeat")[0].body)["entry"][0]["resource"]["eventsSinceSubscriptionStart"]
                == "0"
            )

            release = import_fest(engine, followup).release_id
            took = hook.wait_for(lambda h: len(h.of("event-notification")) == 1, WITHIN)
            [event] = hook.of("event-notification")
            assert took < WITHIN and event.numbers == [1]
            notified = valid(event.body)["entry"][0]["resource"]["notificationEvent"][0]
            assert notified["focus"]["identifier"] == {
                "system": "https://grunndata.no/fhir/release",
                "value": str(release),
            }
            context = {
                c["reference"].rsplit("/_history/", 1)[0]: c["display"] for c in notified["additionalContext"]
            }
            assert context[f"PackagedProductDefinition/{CERTICAN_PACKAGE}"] == "updated"

            hook.down()  # the receiver is away for two releases (a rollback and back)
            went = time.monotonic()
            first = release - 1
            rollback(engine, first)
            rollback(engine, release)
            with httpx.Client() as client:  # the server says it could not send them
                for _ in range(100):
                    status = client.get(
                        f"{base}/fhir/Subscription/{made['id']}/$status", headers=headers
                    ).json()
                    if "error" in status["entry"][0]["resource"]:
                        break
                    time.sleep(0.1)
            found = status["entry"][0]["resource"]
            assert found["eventsSinceSubscriptionStart"] == "3"
            if SLOW:  # the opt-in run: away for a minute, retried every second meanwhile
                time.sleep(max(0.0, 60.0 - (time.monotonic() - went)))
            assert found["error"][0]["text"].startswith("the endpoint could not be reached")
            hook.up()
            hook.wait_for(
                lambda h: [n for r in h.of("event-notification") for n in r.numbers] == [1, 2, 3], WITHIN
            )
            focus = [
                r.status["notificationEvent"][0]["focus"]["identifier"]["value"]
                for r in hook.of("event-notification")
            ]
            # each rollback is a release of its own (serving release 1's data, then release 2's)
            assert focus == [str(release), str(release + 1), str(release + 2)]
            hook.wait_for(lambda h: len(h.of("heartbeat")) >= 2, 3.0)  # and it is active again
            after = httpx.get(f"{base}/fhir/Subscription/{made['id']}/$status", headers=headers).json()
            assert after["entry"][0]["resource"]["status"] == "active"
            assert "error" not in after["entry"][0]["resource"]
            assert len(hook.of("handshake")) == 1
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.slow
def test_two_server_processes_send_each_notification_once(
    tmp_path: Path, hook: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`uvicorn --workers 2`: both run the notifier, the lease holder alone sends."""
    for name, value in {**SETTINGS, "GRUNNDATA_DEV_AUTH": "1"}.items():
        monkeypatch.setenv(name, value)  # the workers read their settings from the environment
    followup, _ = write_followup(tmp_path, "Certican (renamed)")
    with fresh_pg_database() as db:
        engine = served_store(db)
        try:
            with uvicorn_workers(db, WORKERS, tmp_path / "uvicorn.log") as base:
                pids = set()
                for pid, client in clients_of_each_process(base):
                    pids.add(pid)
                    client.close()
                assert len(pids) == WORKERS
                made = _subscribe(base, {}, hook, heartbeatPeriod=2)
                hook.wait_for(lambda h: len(h.of("handshake")) == 1, WITHIN)
                release = import_fest(engine, followup).release_id
                took = hook.wait_for(lambda h: len(h.of("event-notification")) == 1, WITHIN)
                time.sleep(
                    2 * float(SETTINGS["GRUNNDATA_SUBSCRIPTION_TICK_SECONDS"]) + 1.0
                )  # no second copy comes
                assert [
                    (r.numbers, r.status["notificationEvent"][0]["focus"]["identifier"]["value"])
                    for r in hook.of("event-notification")
                ] == [([1], str(release))]
                assert len(hook.of("handshake")) == 1 and took < WITHIN
                with engine.connect() as conn:
                    holder = lease_holder(conn)
                assert holder is not None and int(holder.split(":")[1]) in pids
                status = httpx.get(f"{base}/fhir/Subscription/{made['id']}/$status").json()["entry"][0][
                    "resource"
                ]
                assert (status["status"], status["eventsSinceSubscriptionStart"]) == ("active", "1")
        finally:
            engine.dispose()


def test_a_planted_withdrawal_and_a_new_slv_notice_reach_the_safety_topics_subscribers(
    tmp_path: Path, hook: Receiver
) -> None:
    engine = served_store(f"sqlite:///{tmp_path / 'store.db'}")
    issuer = Issuer(tmp_path)
    headers = issuer.headers(SCOPE_SUBSCRIBE, sub="pharmacy-system")
    real = real_entries(require(REAL_FEST))[1]
    notice = next(e for e in real if e.catalogue == "VarselSlv")
    planted: list[FestEntry] = []
    for e in real:
        if e.inner_id == CERTICAN:
            e = relisted(e, "ID_00000000-0000-4000-8000-0000000000A1", _marketing("AvregDato", "2017-05-01"))
        planted.append(e)
        if e is notice:
            planted.append(relisted(notice, NEW_NOTICE))
    delivery = write(tmp_path / "planted.xml", "2017-04-26T18:00:00Z", planted)
    try:
        with running(create_app(engine, issuer.authenticator(), settings=Settings.load(SETTINGS))) as base:
            safety = NATIONAL_TOPIC.replace("release-national", "safety")
            kinds = {}
            for kind in ("withdrawn", "slv-notice"):
                body = subscription(
                    safety, endpoint=hook.url, filterBy=[{"filterParameter": "kind", "value": kind}]
                )
                r = httpx.post(
                    f"{base}/fhir/Subscription",
                    json=body,
                    headers={**headers, "Content-Type": "application/fhir+json"},
                )
                assert r.status_code == 201, r.text
                kinds[f"Subscription/{r.json()['id']}"] = kind
            hook.wait_for(lambda h: len(h.of("handshake")) == 2, WITHIN)
            import_fest(engine, delivery)
            hook.wait_for(lambda h: len(h.of("event-notification")) == 2, WITHIN)
            told = {
                kinds[r.status["subscription"]["reference"]]: [
                    c["reference"] for c in r.status["notificationEvent"][0]["additionalContext"]
                ]
                for r in hook.of("event-notification")
            }
            assert told == {
                "withdrawn": [f"PackagedProductDefinition/{CERTICAN.removeprefix('ID_')}/_history/2"],
                "slv-notice": [f"Basic/{NEW_NOTICE.removeprefix('ID_')}/_history/1"],
            }
    finally:
        engine.dispose()
