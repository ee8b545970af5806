"""Nightly sync: `_history?_since=` gives what changed and what expired; paging survives a new release."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from fhir.resources import get_fhir_model_class
from sqlalchemy import update
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.store import rollback
from grunndata.store.models import REL
from tests.conftest import REAL_FEST
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


def test_a_resource_served_again_is_in_the_history_since(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path
) -> None:
    """A package that expired and comes back with its old content, and one changed back to its
    first content, are new versions at the release that serves them: before, the old version was
    served again with its old instant, so a client syncing by _since never got the package back
    (probe)."""
    engine, client = fresh_api
    followup, dropped = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    import_fest(engine, followup)
    client = fresh_client(engine)
    gone = dropped.removeprefix("ID_")
    synced_at = get(client, f"/fhir/{PPD}/{CERTICAN_PACKAGE}")["meta"]["lastUpdated"]
    assert get(client, f"/fhir/{PPD}/{gone}", status=410)
    time.sleep(0.01)
    again = import_fest(engine, REAL_FEST)  # the first delivery again: both as they were
    assert again.resources[PPD] == {"new": 1, "changed": 1, "unchanged": 105, "expired": 0}

    client = fresh_client(engine)
    feed = get(client, f"/fhir/{PPD}/_history?_since={synced_at}")
    assert sorted(
        (e["request"]["method"], e["request"]["url"], e["resource"]["meta"]["versionId"])
        for e in feed["entry"]
    ) == sorted([("PUT", f"{PPD}/{CERTICAN_PACKAGE}", "3"), ("PUT", f"{PPD}/{gone}", "2")])
    assert get(client, f"/fhir/{PPD}/{gone}")["meta"]["versionId"] == "2"
    delta = get(client, f"/fhir-r4/delta/MedicinalProductPackaged?_since={synced_at}")
    assert sorted(e["request"]["url"] for e in delta["entry"]) == sorted(
        [f"MedicinalProductPackaged/{CERTICAN_PACKAGE}", f"MedicinalProductPackaged/{gone}"]
    )


def test_a_rollback_after_since_is_told_as_changes(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path
) -> None:
    """A rollback is written as a release of its own: a history since before it gives what it
    changed back (Certican's first content as version 3, the dropped package as version 2), and so
    do the R4 delta and `$export`. Before, it switched without a version or a removal, and a
    `_since` before it had to be a 410."""
    engine, client = fresh_api
    followup, dropped = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    second = import_fest(engine, followup)
    synced_at = get(fresh_client(engine), f"/fhir/{PPD}/{CERTICAN_PACKAGE}")["meta"]["lastUpdated"]
    time.sleep(0.01)
    back = rollback(engine, second.release_id - 1)
    assert (back.id, back.status, back.hentet_dato) == (3, "active", "2017-04-12T18:26:27.336Z")
    client = fresh_client(engine)
    gone = dropped.removeprefix("ID_")
    feed = get(client, f"/fhir/{PPD}/_history?_since={synced_at}")
    assert sorted(
        (e["request"]["method"], e["request"]["url"], e["resource"]["meta"]["versionId"])
        for e in feed["entry"]
    ) == [("PUT", f"{PPD}/{gone}", "2"), ("PUT", f"{PPD}/{CERTICAN_PACKAGE}", "3")]
    assert get(client, f"/fhir/{PPD}/{CERTICAN_PACKAGE}")["name"] == "Certican Disperg tab 0,1 mg"
    system = get(client, f"/fhir/_history?_since={synced_at}&_count=1000")
    assert {(e["request"]["method"], e["request"]["url"]) for e in system["entry"]} >= {
        ("PUT", f"{PPD}/{gone}"),
        ("PUT", f"{PPD}/{CERTICAN_PACKAGE}"),
    }
    delta = get(client, f"/fhir-r4/delta/MedicinalProductPackaged?_since={synced_at}")
    assert sorted(e["request"]["url"] for e in delta["entry"]) == sorted(
        [f"MedicinalProductPackaged/{CERTICAN_PACKAGE}", f"MedicinalProductPackaged/{gone}"]
    )
    # the export in a started app (a client without its lifespan closes its loop after each
    # request, and the export's child with it: once in CI that close never ended), then cancelled
    with TestClient(create_app(engine, warm=False)) as started:
        kick = started.get(f"/fhir/$export?_since={synced_at}", headers={"Prefer": "respond-async"})
        assert kick.status_code == 202, kick.text
        assert started.delete(kick.headers["content-location"]).status_code == 202


def test_a_rollback_of_a_store_made_before_is_a_410_that_says_to_read_again(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path
) -> None:
    """A rollback made before rollbacks were written as releases flipped the statuses and moved
    the release's activation: it has no version or removal of its own, so a history since before
    it would say nothing changed (probe): it answers 410, and a history since after it is answered
    again. (The rows as such a rollback left them.)"""
    engine, client = fresh_api
    first = get(client, f"/fhir/{PPD}/{CERTICAN_PACKAGE}")["meta"]["lastUpdated"]
    followup, _ = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    second = import_fest(engine, followup)
    synced_at = get(fresh_client(engine), f"/fhir/{PPD}/{CERTICAN_PACKAGE}")["meta"]["lastUpdated"]
    time.sleep(0.01)
    with engine.begin() as conn:
        conn.execute(update(REL).where(REL.c.id == second.release_id).values(status="rolled-back"))
        conn.execute(
            update(REL)
            .where(REL.c.id == second.release_id - 1)
            .values(status="active", activated_at=datetime.now(UTC))
        )
    client = fresh_client(engine)
    for path in (
        f"/fhir/_history?_since={synced_at}",
        f"/fhir/{PPD}/_history?_since={first}",
        f"/fhir-r4/delta?_since={synced_at}",
    ):
        gone = client.get(path)
        assert gone.status_code == 410, (path, gone.text)
        assert gone.json()["issue"][0]["diagnostics"].startswith(
            f"release {second.release_id - 1} was made active again by a rollback at "
        )
    kick = client.get(f"/fhir/$export?_since={synced_at}", headers={"Prefer": "respond-async"})
    assert kick.status_code == 410 and "export without _since" in kick.json()["issue"][0]["diagnostics"]
    assert client.get("/fhir/_history").status_code == 200
    now = get(client, "/fhir/_history?_count=1")["meta"]["lastUpdated"]
    assert client.get(f"/fhir/_history?_since={now}").status_code == 200
    # a release imported after the rollback builds on the release it made active: the switch is
    # still not told by versions, so a _since before the rollback stays a 410
    time.sleep(0.01)
    import_fest(engine, followup)
    client = fresh_client(engine)
    assert client.get(f"/fhir/_history?_since={synced_at}").status_code == 410
    assert client.get(f"/fhir/_history?_since={now}").status_code == 200


def test_history_parameters_it_does_not_answer_are_refused(fresh_api: tuple[Engine, TestClient]) -> None:
    _, client = fresh_api
    for query in ("_at=2017", "_list=x", "_sort=_lastUpdated"):
        for path in (
            f"/fhir/{PPD}/{CERTICAN_PACKAGE}/_history",
            f"/fhir/{PPD}/_history",
            "/fhir/_history",
            f"/fhir-r4/MedicinalProductPackaged/{CERTICAN_PACKAGE}/_history",
        ):
            answer = client.get(f"{path}?{query}")
            assert answer.status_code == 400, (path, query)
            name = query.split("=")[0]
            assert answer.json()["issue"][0]["diagnostics"].startswith(
                f"{name} is not supported on a history"
            )


def test_history_pages_and_bad_since(fresh_api: tuple[Engine, TestClient]) -> None:
    _, client = fresh_api
    seen, url = [], f"/fhir/{PPD}/_history?_count=40"
    while url:
        page = get(client, url)
        seen += [e["request"]["url"] for e in page["entry"]]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    assert len(seen) == len(set(seen)) == 107
    assert get(client, f"/fhir/{PPD}/_history?_since=soon", status=400)["issue"][0]["code"] == "invalid"
    # the last instant there is: nothing since (it was "not a date or time", its second's end past year 9999)
    for last in ("9999-12-31T23:59:59Z", "9999-12-31T23:59:59.999Z", "9999-12-31", "9999"):
        assert "entry" not in get(client, f"/fhir/{PPD}/_history?_since={last}")
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
    # the server looks for a newly activated release once a second, then serves it once its
    # terminology indexes are built (milliseconds for the real extract); until then, the old one
    deadline = time.monotonic() + 10
    while (after := client.get(url).content) == first.content:
        assert time.monotonic() < deadline, "the new release was not served within 10 s"
        time.sleep(0.1)
    entry = orjson.loads(after)["entry"][0]
    assert entry["resource"]["name"] == "Certican Disperg tab 0,1 mg (ny)"
    assert entry["resource"]["meta"]["versionId"] == "2"


def _walk(client: TestClient, url: str, by_offset: bool = False) -> list[tuple[str, str, str]]:
    """Every entry of a history, page by page along the next links (with `by_offset`, the links'
    `_cursor` dropped, so each page is found by skipping `_offset` items)."""
    seen: list[tuple[str, str, str]] = []
    while url:
        page = get(client, url)
        seen += [
            (e["request"]["method"], e["request"]["url"], e["response"]["lastModified"])
            for e in page["entry"]
        ]
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), "")
        if by_offset and url:
            url = "&".join(p for p in url.split("&") if not p.startswith("_cursor="))
    return seen


def _expected_order(engine: Engine, rtype: str) -> list[tuple[str, str]]:
    """The order a history promises, straight from the tables: newest instant first, at one
    instant removals first, then the newest version (highest pk) first."""
    from sqlalchemy import text

    with engine.connect() as conn:
        made = conn.execute(
            text("SELECT last_updated, 0, pk, id, version FROM resource WHERE type = :t"), {"t": rtype}
        ).all()
        gone = conn.execute(
            text(
                "SELECT r.activated_at, 1, t.resource_pk, t.id, 0 FROM tombstone t "
                "JOIN release r ON r.id = t.release_id WHERE t.type = :t"
            ),
            {"t": rtype},
        ).all()
    rows = sorted([*made, *gone], key=lambda r: (r[0], r[1], r[2]), reverse=True)
    method = {0: "DELETE", 1: "POST"}
    return [(method.get(version, "PUT"), f"{rtype}/{rid}") for _, _, _, rid, version in rows]


def test_cursor_pages_are_the_offset_pages(fresh_api: tuple[Engine, TestClient], tmp_path: Path) -> None:
    """Removals and versions of two releases, pages ending inside runs of one instant: the next
    links' `_cursor` gives exactly the items, in exactly the order, that skipping `_offset` gives."""
    engine, client = fresh_api
    followup, dropped = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    import_fest(engine, followup)
    client = fresh_client(engine)
    first = get(client, f"/fhir/{PPD}/_history?_count=1")
    nxt = next(link["url"] for link in first["link"] if link["relation"] == "next")
    assert "&_offset=1&_cursor=" in nxt and nxt.endswith("&_snapshot=2")

    for url, size in (
        (f"/fhir/{PPD}/_history?_count=1", 109),  # the first page ends on the removal: a `d` cursor
        (f"/fhir/{PPD}/_history?_count=7", 109),
        ("/fhir/_history?_count=250", None),
    ):
        by_cursor = _walk(client, url)
        by_offset = _walk(client, url, by_offset=True)
        assert by_cursor == by_offset
        assert len(set(by_cursor)) == len(by_cursor)
        if size is not None:  # 107 first versions, Certican's second version and the expired package
            assert [(m, u) for m, u, _ in by_cursor] == _expected_order(engine, PPD)
            assert len(by_cursor) == size
            assert by_cursor[0][0] == "DELETE" and by_cursor[0][1] == f"{PPD}/{dropped.removeprefix('ID_')}"
            assert by_cursor[1] == ("PUT", f"{PPD}/{CERTICAN_PACKAGE}", by_cursor[1][2])
    whole = get(client, "/fhir/_history?_count=1000")
    assert [(e["request"]["method"], e["request"]["url"]) for e in whole["entry"]] == [
        (m, u) for m, u, _ in _walk(client, "/fhir/_history?_count=250")
    ][:1000]


def test_a_cursor_we_did_not_write_is_a_400(fresh_api: tuple[Engine, TestClient]) -> None:
    _, client = fresh_api
    for cursor in ("x", "20171313T000000.000000-p-1", "20170101T000000.000000-q-1", "1-p-1"):
        outcome = get(client, f"/fhir/_history?_cursor={cursor}", status=400)
        assert outcome["issue"][0]["diagnostics"] == (
            f"_cursor {cursor!r} is not one this server wrote; start again from the first page"
        )


def test_a_deep_offset_without_a_cursor_is_a_400(fresh_api: tuple[Engine, TestClient]) -> None:
    _, client = fresh_api
    assert get(client, "/fhir/_history?_offset=100000")["type"] == "history"
    outcome = get(client, "/fhir/_history?_offset=100001", status=400)
    assert outcome["issue"][0]["diagnostics"] == (
        "_offset above 100,000 in a history needs the _cursor of the next link that led there; "
        "follow the next links"
    )


def test_a_type_made_on_request_says_it_keeps_no_history(api: TestClient) -> None:
    for url in (
        "/fhir/ConceptMap/fest-legemiddelform-edqm-doseform/_history",
        "/fhir/Endpoint/some-id/_history",
        "/fhir/ConceptMap/_history",  # the type's: not a read of id `_history` (probe)
        "/fhir/Endpoint/_history",
    ):
        issue = get(api, url, status=404)["issue"][0]
        assert issue["code"] == "not-supported", url
        assert issue["diagnostics"].endswith(
            "is served here but keeps no history: its resources are made on request "
            "from the current release; read and search them"
        ), url
    assert get(api, "/fhir/Nonsense/_history", status=404)["issue"][0]["diagnostics"] == (
        "'Nonsense' is not a resource type served here"
    )


def _three_releases(engine: Engine, tmp_path: Path) -> tuple[str, list[tuple[str, str, str]]]:
    """The real extract (release 1), the follow-up that changes Certican and drops a package
    (release 2), and the real extract again (release 3: Certican's first content as version 3,
    the dropped package back as version 2). Returns the dropped package's id and, before any
    rollback, the whole package history as a walk of one-entry pages gives it."""
    followup, dropped = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    time.sleep(0.01)
    import_fest(engine, followup)
    time.sleep(0.01)
    import_fest(engine, REAL_FEST)
    return dropped.removeprefix("ID_"), _walk(fresh_client(engine), f"/fhir/{PPD}/_history?_count=1")


def _methods(feed: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(method, versionId) of each entry: None for a removal."""
    return [
        (e["request"]["method"], e["resource"]["meta"]["versionId"] if "resource" in e else None)
        for e in feed["entry"]
    ]


def test_after_a_rollback_the_history_without_since_agrees_with_reads(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path
) -> None:
    """A rollback to release 2 is told as changes at its own time, on top of the history: Certican
    changed back (a new version, 4), the package release 3 brought back removed again. Before,
    release 3's versions stayed the newest entries (Certican's version 3, which no read serves),
    and release 2's removal of the package moved to the rollback's time (probe F1)."""
    engine, _ = fresh_api
    gone, _ = _three_releases(engine, tmp_path)
    time.sleep(0.01)
    back = rollback(engine, 2)
    assert (back.id, back.kind, back.status, back.based_on) == (4, "rollback", "active", 3)
    client = fresh_client(engine)
    read = get(client, f"/fhir/{PPD}/{CERTICAN_PACKAGE}")
    assert (read["meta"]["versionId"], read["name"]) == ("4", "Certican Disperg tab 0,1 mg (ny)")
    assert get(client, f"/fhir/{PPD}/{gone}", status=410)["issue"][0]["code"] == "deleted"
    found = get(client, f"/fhir/{PPD}?identifier=014884")  # the new version is indexed as its bytes
    assert [e["resource"]["meta"]["versionId"] for e in found["entry"]] == ["4"]
    r4 = get(client, f"/fhir-r4/MedicinalProductPackaged/{CERTICAN_PACKAGE}")
    assert r4["meta"]["versionId"] == "4"

    newest = get(client, f"/fhir/{PPD}/_history?_count=2")
    assert [(e["request"]["method"], e["request"]["url"]) for e in newest["entry"]] == [
        ("DELETE", f"{PPD}/{gone}"),
        ("PUT", f"{PPD}/{CERTICAN_PACKAGE}"),
    ]
    assert newest["entry"][1]["resource"]["meta"] == {**read["meta"]}
    certican = get(client, f"/fhir/{PPD}/{CERTICAN_PACKAGE}/_history")
    assert _methods(certican) == [("PUT", "4"), ("PUT", "3"), ("PUT", "2"), ("POST", "1")]
    # every removal keeps the time it was told at: release 2's, then the rollback's, after release 3
    dropped = get(client, f"/fhir/{PPD}/{gone}/_history")
    assert _methods(dropped) == [("DELETE", None), ("PUT", "2"), ("DELETE", None), ("POST", "1")]
    times = [e["response"]["lastModified"] for e in dropped["entry"]]
    assert times == sorted(times, reverse=True) and len(set(times)) == 4
    assert times[0] == read["meta"]["lastUpdated"]
    # the whole-system history: each resource's first entry is what a read answers
    seen: set[str] = set()
    for entry in get(client, "/fhir/_history?_count=1000")["entry"]:
        url = entry["request"]["url"]
        if url in seen:
            continue
        seen.add(url)
        answer = client.get(f"/fhir/{url}")
        if entry["request"]["method"] == "DELETE":
            assert answer.status_code == 410, url
        else:
            assert answer.json()["meta"]["versionId"] == entry["resource"]["meta"]["versionId"], url
    # a client that synced before release 2 is not sent away (release 2 was never made active again)
    assert client.get(f"/fhir/{PPD}/_history?_since={times[3]}").status_code == 200
    # and one that synced after release 3 is told the rollback as changes
    since = times[1]
    told = get(client, f"/fhir/{PPD}/_history?_since={since}")
    assert [(e["request"]["method"], e["request"]["url"]) for e in told["entry"]] == [
        ("DELETE", f"{PPD}/{gone}"),
        ("PUT", f"{PPD}/{CERTICAN_PACKAGE}"),
    ]


def test_a_rollback_during_a_paged_history_walk_loses_no_removal(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path
) -> None:
    """The pages of a history walk started before a rollback give exactly the walk without it:
    the rollback moved release 2's activation after the cursor, so its removal was skipped (probe
    F2); now it writes its own entries at its own time, after the walk's snapshot."""
    engine, _ = fresh_api
    gone, whole = _three_releases(engine, tmp_path)
    assert [(m, u) for m, u, _ in whole if m == "DELETE"] == [("DELETE", f"{PPD}/{gone}")]
    assert len(whole) == 111  # 107 first versions, 2 of release 2 (one a removal), 2 of release 3
    client = fresh_client(engine)
    first = get(client, f"/fhir/{PPD}/_history?_count=1")
    url = next(link["url"] for link in first["link"] if link["relation"] == "next")
    time.sleep(0.01)
    rollback(engine, 2)
    rest = _walk(fresh_client(engine), url)
    seen = [(first["entry"][0]["request"]["method"], first["entry"][0]["request"]["url"])]
    seen += [(m, u) for m, u, _ in rest]
    assert seen == [(m, u) for m, u, _ in whole]
