"""Nightly sync: `_history?_since=` gives what changed and what expired; paging survives a new release."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from fhir.resources import get_fhir_model_class
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from tests.server.conftest import CERTICAN_PACKAGE, write_followup

PPD = "PackagedProductDefinition"


def get(client: TestClient, url: str, status: int = 200) -> dict[str, Any]:
    r = client.get(url)
    assert r.status_code == status, r.text
    body: dict[str, Any] = r.json()
    return body


def fresh_client(engine: Engine) -> TestClient:
    """A new server process, as after a restart: no cached snapshot."""
    return TestClient(create_app(engine))


def test_since_gives_the_changed_and_the_expired_packages(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path
) -> None:
    engine, client = fresh_api
    first = get(client, f"/fhir/{PPD}/{CERTICAN_PACKAGE}")
    synced_at = first["meta"]["lastUpdated"]
    followup, dropped = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    result = import_fest(engine, followup)
    assert result.resources[PPD] == {"new": 0, "changed": 1, "unchanged": 105, "expired": 1}

    client = fresh_client(engine)
    feed = get(client, f"/fhir/{PPD}/_history?_since={synced_at}")
    get_fhir_model_class("Bundle").model_validate(feed)
    assert feed["type"] == "history"
    entries = {(e["request"]["method"], e["request"]["url"]) for e in feed["entry"]}
    gone = dropped.removeprefix("ID_")
    assert entries == {("PUT", f"{PPD}/{CERTICAN_PACKAGE}"), ("DELETE", f"{PPD}/{gone}")}
    changed = next(e for e in feed["entry"] if e["request"]["method"] == "PUT")
    assert changed["resource"]["meta"]["versionId"] == "2"
    assert changed["response"]["etag"] == 'W/"2"'
    deleted = next(e for e in feed["entry"] if e["request"]["method"] == "DELETE")
    assert "resource" not in deleted and deleted["response"]["status"] == "410"

    # the expired package answers 410; its old version can still be read
    assert get(client, f"/fhir/{PPD}/{gone}", status=410)["issue"][0]["code"] == "deleted"
    assert get(client, f"/fhir/{PPD}/{gone}/_history/1")["id"] == gone
    # the changed one is at version 2, with both versions in its history, newest first
    assert client.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}").headers["etag"] == 'W/"2"'
    versions = get(client, f"/fhir/{PPD}/{CERTICAN_PACKAGE}/_history")
    assert [e["resource"]["meta"]["versionId"] for e in versions["entry"]] == ["2", "1"]
    # the whole-system feed holds the same two changes for packages, among other types' changes
    system = get(client, f"/fhir/_history?_since={synced_at}&_count=1000")
    assert {(e["request"]["method"], e["request"]["url"]) for e in system["entry"]} >= entries
    assert all(not e["request"]["url"].startswith("FEST.") for e in system["entry"])


def test_history_pages_and_bad_since(fresh_api: tuple[Engine, TestClient]) -> None:
    _, client = fresh_api
    seen, url = [], f"/fhir/{PPD}/_history?_count=40"
    while url:
        page = get(client, url)
        seen += [e["request"]["url"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == 107
    assert get(client, f"/fhir/{PPD}/_history?_since=soon", status=400)["issue"][0]["code"] == "invalid"
    assert get(client, f"/fhir/{PPD}/{'0' * 8}/_history", status=404)["issue"][0]["code"] == "not-found"


def test_next_links_stay_correct_while_a_new_release_becomes_active(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path
) -> None:
    engine, client = fresh_api
    page1 = get(client, f"/fhir/{PPD}?_count=50")
    next_url = next(link["url"] for link in page1["link"] if link["relation"] == "next")
    before = [e["resource"]["id"] for e in page1["entry"]]

    followup, dropped = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    import_fest(engine, followup)
    client = fresh_client(engine)

    rest: list[str] = []
    url: str | None = next_url
    while url:
        page = get(client, url)
        rest += [e["resource"]["id"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    old_release = before + rest
    assert len(old_release) == len(set(old_release)) == 107  # the old release, whole, with the dropped one
    assert dropped.removeprefix("ID_") in old_release
    now = get(client, f"/fhir/{PPD}?_count=200")
    assert len(now["entry"]) == 106 and dropped.removeprefix("ID_") not in [
        e["resource"]["id"] for e in now["entry"]
    ]


def test_a_repeated_search_is_answered_from_the_cache_until_a_new_release_is_served(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path
) -> None:
    engine, client = fresh_api
    url = f"/fhir/{PPD}?identifier=014884"
    first = client.get(url)
    again = client.get(url)
    assert again.content == first.content  # the same bytes, Bundle.meta.lastUpdated included: cached
    assert first.json()["entry"][0]["resource"]["name"] == "Certican Disperg tab 0,1 mg"

    followup, _ = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    import_fest(engine, followup)
    time.sleep(1.2)  # the server looks for a newly activated release once a second
    after = client.get(url).json()
    assert after["entry"][0]["resource"]["name"] == "Certican Disperg tab 0,1 mg (ny)"
    assert after["entry"][0]["resource"]["meta"]["versionId"] == "2"
