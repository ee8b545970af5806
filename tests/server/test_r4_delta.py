"""DMP's `delta/` and the R4 histories: a SAFEST client that synced the first release follows
/fhir-r4/delta/ and learns the changed package and the expired one, as R4, on SQLite and PostgreSQL.
Also the R4 search by POST, its ETag, and the R4 CodeSystems."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient
from fhirclient.models.bundle import Bundle as R4Bundle

from grunndata.importers.fest import import_fest
from grunndata.importers.safest import import_safest
from grunndata.server import create_app
from grunndata.store import connect
from grunndata.translators.safest.to_r4 import SAFEST_TYPES
from tests.conftest import REAL_FEST, SHARED, fresh_pg_database, require
from tests.server.conftest import CERTICAN_PACKAGE, write_followup
from tests.server.conftest import fhir_json as _get

MPP = "MedicinalProductPackaged"
R4, DELTA = "/fhir-r4", "/fhir-r4/delta"
START = "https://grunndata.no/fhir/StructureDefinition/delta-starts-at-release"
R5_OF_R4 = {
    "MedicinalProduct": "MedicinalProductDefinition",
    MPP: "PackagedProductDefinition",
    "MedicinalProductManufactured": "ManufacturedItemDefinition",
    "MedicinalProductPharmaceutical": "AdministrableProductDefinition",
    "MedicinalProductIngredient": "Ingredient",
    "SubstanceSpecification": "SubstanceDefinition",
}
CODE_SYSTEMS = SHARED / "data" / "safest-r4" / "CodeSystem"
PACKAGE_LEVEL = "http://legemiddelverket.no/fhir/CodeSystem/PackageLevel"


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def two_releases(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[TestClient, str, str]]:
    """The real extract, then a delivery that changes Certican's package and drops another; then
    DMP's published CodeSystems. Yields a client, the dropped package's id and when the second
    release was made (the first release's versions are older)."""
    folder = tmp_path_factory.mktemp("delta")
    followup, dropped = write_followup(folder, "Certican Disperg tab 0,1 mg (ny)")

    def serve(url: str) -> Iterator[tuple[TestClient, str, str]]:
        engine = connect(url)
        import_fest(engine, require(REAL_FEST))
        with TestClient(create_app(engine)) as client:
            first = client.get(f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}").json()
        import_fest(engine, followup)
        import_safest(engine, require(CODE_SYSTEMS))
        with TestClient(create_app(engine)) as client:
            yield client, dropped.removeprefix("ID_"), first["meta"]["lastUpdated"]
        engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{folder / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


def _pages(client: TestClient, path: str) -> list[dict[str, Any]]:
    """Every page of a history, by its next links (each on `path`'s base, checked)."""
    pages = [_get(client, path)]
    while following := [x["url"] for x in pages[-1]["link"] if x["relation"] == "next"]:
        pages.append(_get(client, following[0].removeprefix("http://testserver")))
    return pages


def _changes(bundle: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    """(method, url, versionId) of each entry."""
    return [
        (e["request"]["method"], e["request"]["url"], e.get("resource", {}).get("meta", {}).get("versionId"))
        for e in bundle.get("entry", [])
    ]


def test_delta_of_packages_holds_every_version_the_change_and_the_expiry(
    two_releases: tuple[TestClient, str, str],
) -> None:
    client, dropped, _ = two_releases
    pages = _pages(client, f"{DELTA}/{MPP}?_count=40")
    assert [len(p["entry"]) for p in pages] == [40, 40, 29]  # 107 first versions, a change, an expiry
    for page in pages:
        assert page["type"] == "history"
        assert page["meta"]["extension"] == [{"url": START, "valueInteger": 1}]  # the store prunes nothing
        assert {urlsplit(link["url"]).path for link in page["link"]} == {f"{DELTA}/{MPP}/_history"}
        R4Bundle(page)  # fhirclient's R4 models take every page, each entry's MedicinalProductPackaged too
    changes = [c for p in pages for c in _changes(p)]
    assert changes[:2] == [  # newest first: the second release's, its expiry before its change
        ("DELETE", f"{MPP}/{dropped}", None),
        ("PUT", f"{MPP}/{CERTICAN_PACKAGE}", "2"),
    ]
    assert sorted(c for c in changes[2:] if c[0] != "POST") == []
    assert len({url for _, url, _ in changes[2:]}) == 107
    assert ("POST", f"{MPP}/{CERTICAN_PACKAGE}", "1") in changes and (
        "POST",
        f"{MPP}/{dropped}",
        "1",
    ) in changes
    first = pages[0]["entry"]
    assert first[0]["fullUrl"] == f"http://testserver{R4}/{MPP}/{dropped}"
    assert first[0]["response"]["status"] == "410" and "resource" not in first[0]
    assert first[1]["resource"]["resourceType"] == MPP
    assert first[1]["resource"]["meta"]["profile"] == [
        "http://legemiddelverket.no/fhir/StructureDefinition/safest-MedicinalProductPackaged"
    ]
    # delta/<type>/_history is the same list
    assert _changes(_get(client, f"{DELTA}/{MPP}/_history?_count=40")) == _changes(pages[0])


def test_delta_of_everything_is_the_r5_history_of_the_types_served_as_r4(
    two_releases: tuple[TestClient, str, str],
) -> None:
    client, _, _ = two_releases
    delta = _get(client, f"{DELTA}?_count=1000")
    assert _changes(_get(client, f"{DELTA}/_history?_count=1000")) == _changes(delta)
    r5 = _get(client, "/fhir/_history?_count=1000")
    r4_of = {r5_type: r4 for r4, r5_type in R5_OF_R4.items()} | {"CodeSystem": "CodeSystem"}
    expected = [
        (method, f"{r4_of[url.split('/')[0]]}/{url.split('/')[1]}")
        for method, url, _ in _changes(r5)
        if url.split("/")[0] in r4_of
    ]
    assert [(m, u) for m, u, _ in _changes(delta)] == expected
    counted: dict[str, int] = {}
    for _, url, _ in _changes(delta):
        counted[url.split("/")[0]] = counted.get(url.split("/")[0], 0) + 1
    assert counted == {
        "CodeSystem": 6,
        "MedicinalProduct": 78,
        MPP: 109,
        "MedicinalProductManufactured": 75,
        "MedicinalProductPharmaceutical": 75,
        "MedicinalProductIngredient": 139,
        "SubstanceSpecification": 71,
    }
    assert set(counted) == {*SAFEST_TYPES, "CodeSystem"}


def test_a_delta_read_gives_the_latest_version_or_the_expiry(
    two_releases: tuple[TestClient, str, str],
) -> None:
    client, dropped, _ = two_releases
    changed = client.get(f"{DELTA}/{MPP}/{CERTICAN_PACKAGE}")
    assert changed.status_code == 200 and changed.headers["etag"] == 'W/"2"'
    assert changed.json() == _get(client, f"{R4}/{MPP}/{CERTICAN_PACKAGE}")
    expired = _get(client, f"{DELTA}/{MPP}/{dropped}", 410)
    deletion = _get(client, f"{DELTA}/{MPP}/{dropped}/_history")["entry"]
    assert [e["request"]["method"] for e in deletion] == ["DELETE", "POST"]
    assert expired["issue"][0]["code"] == "deleted"
    assert expired["issue"][0]["diagnostics"] == (
        f"{MPP}/{dropped} is no longer published: it expired at {deletion[0]['response']['lastModified']}; "
        f"its versions are at http://testserver{DELTA}/{MPP}/{dropped}/_history"
    )
    old = _get(client, f"{DELTA}/{MPP}/{dropped}/_history/1")
    assert (old["resourceType"], old["id"], old["meta"]["versionId"]) == (MPP, dropped, "1")
    versions = _get(client, f"{DELTA}/{MPP}/{CERTICAN_PACKAGE}/_history")
    assert [e["resource"]["meta"]["versionId"] for e in versions["entry"]] == ["2", "1"]
    assert urlsplit(versions["link"][0]["url"]).path == f"{DELTA}/{MPP}/{CERTICAN_PACKAGE}/_history"
    assert _get(client, f"{DELTA}/{MPP}/{CERTICAN_PACKAGE}/_history/3", 404)["issue"][0]["diagnostics"] == (
        f"{MPP}/{CERTICAN_PACKAGE} has no version 3"
    )


def test_type_and_system_history_since_the_first_sync(two_releases: tuple[TestClient, str, str]) -> None:
    client, dropped, synced_at = two_releases
    expected = [("DELETE", f"{MPP}/{dropped}", None), ("PUT", f"{MPP}/{CERTICAN_PACKAGE}", "2")]
    feed = _get(client, f"{R4}/{MPP}/_history?_since={synced_at}")
    assert _changes(feed) == expected
    assert "meta" not in feed or "extension" not in feed["meta"]  # a snapshot's history, not the delta
    assert urlsplit(feed["link"][0]["url"]).path == f"{R4}/{MPP}/_history"
    system = _get(client, f"{R4}/_history?_since={synced_at}&_count=1000")
    assert [c for c in _changes(system) if c[1].startswith(MPP)] == expected
    assert {c[1].split("/")[0] for c in _changes(system)} == {MPP, "CodeSystem"}  # 6 CodeSystems came after
    assert urlsplit(system["link"][0]["url"]).path == f"{R4}/_history"
    since_delta = _get(client, f"{DELTA}/{MPP}?_since={synced_at}")
    assert _changes(since_delta) == expected


@pytest.mark.parametrize(
    "path,status,said",
    [
        (f"{DELTA}/RegulatedAuthorization", 404, "'RegulatedAuthorization' is not served as R4"),
        (f"{DELTA}/PackagedProductDefinition/x", 404, "'PackagedProductDefinition' is not served as R4"),
        (f"{DELTA}/ClinicalUseDefinition/x/_history", 404, "'ClinicalUseDefinition' is not served as R4"),
        (f"{DELTA}/{MPP}/bad%20id", 400, "'bad id' is not a valid resource id"),
        (f"{DELTA}/{MPP}/nope", 404, f"{MPP}/nope is not known"),
        (f"{DELTA}/{MPP}/nope/_history", 404, f"{MPP}/nope is not known"),
        (f"{DELTA}/{MPP}/{CERTICAN_PACKAGE}/_history/x", 400, "'x' is not a version id"),
        (f"{DELTA}/{MPP}?_count=1001", 400, "_count must be between 1 and 1000, not 1001"),
        (f"{DELTA}?_count=0", 400, "_count must be between 1 and 1000, not 0"),
        (f"{R4}/{MPP}/_history?_since=soon", 400, "_since: "),
        (
            f"{DELTA}?_cursor=x",
            400,
            "_cursor 'x' is not one this server wrote; start again from the first page",
        ),
        (f"{R4}/_history?_format=ttl", 406, "_format 'ttl' is not served; use json or xml"),
        # paths taken by a route for another pattern say what they were meant to be
        (f"{DELTA}/{MPP}/_history/1", 404, f"DMP's delta is {R4}/delta[/<type>[/<id>[/_history[/<vid>]]]]; "),
        (f"{R4}/{MPP}/$export", 404, f"'$export' is not an operation of {R4}: "),
        (f"{R4}/$export", 404, f"'$export' is not an operation of {R4}: "),
        # a page of a release still to come would change under its link
        (f"{DELTA}?_snapshot=999", 400, "_snapshot: no release 999 has been served (the newest is 3)"),
        (f"{DELTA}/{MPP}?_snapshot=4", 400, "_snapshot: no release 4 has been served (the newest is 3)"),
        (f"{DELTA}/{MPP}/x?_format=ttl", 406, "_format 'ttl' is not served; use json or xml"),
    ],
)
def test_bad_delta_and_history_requests_are_400_404_406_outcomes(
    two_releases: tuple[TestClient, str, str], path: str, status: int, said: str
) -> None:
    client, _, _ = two_releases
    outcome = _get(client, path, status)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["diagnostics"].startswith(said), outcome


def test_a_search_by_post_is_the_get_search_and_r4_searches_carry_an_etag(
    two_releases: tuple[TestClient, str, str],
) -> None:
    client, _, _ = two_releases
    got = client.get(f"{R4}/{MPP}?identifier=014884")
    posted = client.post(f"{R4}/{MPP}/_search", data={"identifier": "014884"})
    assert posted.status_code == 200, posted.text
    assert [e["resource"]["id"] for e in posted.json()["entry"]] == [CERTICAN_PACKAGE]
    assert posted.json()["link"] == got.json()["link"]
    refused = client.post(f"{R4}/{MPP}/_search", json={"identifier": "014884"})
    assert refused.status_code == 415
    assert refused.json()["issue"][0]["diagnostics"] == "POST _search takes application/x-www-form-urlencoded"
    etag = got.headers["etag"]
    assert (
        etag.startswith('W/"s')
        and etag != client.get("/fhir/PackagedProductDefinition?identifier=014884").headers["etag"]
    )
    assert client.get(f"{R4}/{MPP}?identifier=014884", headers={"If-None-Match": etag}).status_code == 304
    assert client.get(f"/fhir-r4-hresept/{MPP}?identifier=014884").headers["etag"] != etag


def test_the_code_systems_are_served_as_r4_as_dmp_published_them(
    two_releases: tuple[TestClient, str, str],
) -> None:
    client, _, _ = two_releases
    bundle = _get(client, f"{R4}/CodeSystem?url={PACKAGE_LEVEL}")
    (entry,) = bundle["entry"]
    code_system = entry["resource"]
    assert entry["fullUrl"] == f"http://testserver{R4}/CodeSystem/{code_system['id']}"
    R4Bundle(bundle)  # fhirclient's R4 CodeSystem model takes it
    assert code_system["url"] == PACKAGE_LEVEL and "extension" not in code_system
    assert [c["code"] for c in code_system["concept"]][:3] == ["1", "2", "3"]
    read = _get(client, f"{R4}/CodeSystem/{code_system['id']}")
    assert read == code_system
    every = _get(client, f"{R4}/CodeSystem?_count=100")
    assert len(every["entry"]) == 6
    for each in every["entry"]:  # R4 and R5 CodeSystem alike: DMP's as published, no r5- extension
        assert each["resource"] == _get(client, f"/fhir/CodeSystem/{each['resource']['id']}")
    assert _get(client, f"{R4}/CodeSystem?_id={code_system['id']}")["entry"][0]["resource"] == code_system
    assert "entry" not in _get(client, f"{R4}/CodeSystem?url=http://example.org/none")


def test_an_r5_only_code_system_element_travels_as_an_extension() -> None:
    from grunndata.translators.safest.codesystem import code_system_r4

    r5 = {
        "resourceType": "CodeSystem",
        "id": "x",
        "url": "https://example.org/cs",
        "status": "active",
        "content": "complete",
        "copyrightLabel": "(c) DMP",
        "concept": [{"code": "a", "designation": [{"value": "A", "additionalUse": [{"code": "x"}]}]}],
    }
    assert code_system_r4(r5) == {
        "resourceType": "CodeSystem",
        "id": "x",
        "url": "https://example.org/cs",
        "status": "active",
        "content": "complete",
        "concept": [
            {
                "code": "a",
                "designation": [
                    {
                        "value": "A",
                        "extension": [
                            {
                                "url": "https://grunndata.no/fhir/StructureDefinition/r5-CodeSystem.concept.designation.additionalUse",
                                "valueString": '[{"code":"x"}]',
                            }
                        ],
                    }
                ],
            }
        ],
        "extension": [
            {
                "url": "https://grunndata.no/fhir/StructureDefinition/r5-CodeSystem.copyrightLabel",
                "valueString": '"(c) DMP"',
            }
        ],
    }


def test_search_takes_post_alone_and_every_route_measures_its_parameters(
    two_releases: tuple[TestClient, str, str],
) -> None:
    """Found by schemathesis against the OpenAPI document: an OPTIONS on _search said `Allow: GET,
    HEAD, POST`, and a control character in `_pretty` on metadata was answered 200."""
    client, _, _ = two_releases
    for method in ("GET", "OPTIONS", "DELETE"):
        refused = client.request(method, f"{R4}/{MPP}/_search")
        assert refused.status_code == 405 and refused.headers["allow"] == "POST", method
        assert refused.json()["issue"][0]["diagnostics"] == (
            f"search by GET {R4}/{MPP}?... or by POST {R4}/{MPP}/_search"
        )
    assert _get(client, f"{R4}/metadata?_pretty=%0F", 400)["issue"][0]["code"] == "invalid"


def test_a_vread_asking_for_fhir_version_4_is_the_r4_version(
    two_releases: tuple[TestClient, str, str],
) -> None:
    """It was `null`: the R5 vread made it R4 for the Accept, and the R4 route made that R4 again."""
    client, _, _ = two_releases
    path = f"{DELTA}/{MPP}/{CERTICAN_PACKAGE}/_history/1"
    asked = _get(client, path, Accept="application/fhir+json; fhirVersion=4.0")
    assert asked == _get(client, path) and asked["resourceType"] == MPP
