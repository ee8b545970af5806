"""Over the API, DMP stages a delivery of the real extract's follow-up (Certican renamed, one package
dropped): no client sees it (read, search, history, `_snapshot`, M30, `$export`, `/releases`),
the operator's diff shows what it changes element by element, and `activate` makes it served."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.m30 import FestReader
from grunndata.server import create_app
from grunndata.settings import Settings
from tests.conftest import REAL_FEST, fresh_pg_database
from tests.server.conftest import CERTICAN_PACKAGE, publish, served_store, write_followup
from tests.server.test_bulk_export import ASYNC, lines, manifest
from tests.server.tokens import Issuer

OLD_NAME = "Certican Disperg tab 0,1 mg"
NEW_NAME = "Certican Disperg tab 0,1 mg (staged)"
PPD = f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}"
PPD_SEARCH = "/fhir/PackagedProductDefinition"
IMPORT = ("grunndata:import",)


def escaped(name: str) -> str:
    """A search value with its commas escaped (a bare comma separates values)."""
    return name.replace(",", "\\,")


def sector_note(text: str) -> dict[str, Any]:
    return {
        "resourceType": "Basic",
        "id": "ward-note-1",
        "code": {"text": "handling"},
        "subject": {"reference": f"PackagedProductDefinition/{CERTICAN_PACKAGE}"},
        "extension": [{"url": "https://example.org/note", "valueString": text}],
    }


@dataclass
class Site:
    client: TestClient
    issuer: Issuer
    engine: Engine
    dropped: str  # the FEST Id of the package the follow-up drops
    staged: int  # the staged release


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The real extract (release 1), a sector line's two releases (2, 3), and the follow-up staged
    over the API (4). The tests run in order: the last ones activate and discard."""
    tmp = tmp_path_factory.mktemp("diff")
    issuer = Issuer(tmp)
    followup, dropped = write_followup(tmp, NEW_NAME)
    settings = Settings.load({"GRUNNDATA_EXPORT_DIR": str(tmp / "exports")})

    def serve(url: str) -> Iterator[Site]:
        engine = served_store(url)
        publish(engine, [("sector", "ward-a", sector_note("Keep cold"))])
        publish(engine, [("sector", "ward-a", sector_note("Keep cold, away from light"))])
        app = create_app(engine, issuer.authenticator(), warm=False, settings=settings)
        with TestClient(app) as client:
            answer = client.post(
                "/import/fest?stage=true", content=followup.read_bytes(), headers=issuer.headers(*IMPORT)
            )
            assert answer.status_code == 200, answer.text
            assert (answer.json()["outcome"], answer.json()["release_id"]) == ("staged", 4)
            yield Site(client, issuer, engine, dropped, 4)
        engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


def test_no_client_sees_the_staged_release(site: Site) -> None:
    client, everything = site.client, site.issuer.headers(*IMPORT, "grunndata:sector.read")
    for headers in ({}, everything):
        package = client.get(PPD, headers=headers).json()
        assert package["meta"]["versionId"] == "1"
        assert package["name"] == OLD_NAME
        found = client.get(PPD_SEARCH, params={"name": escaped(NEW_NAME)}, headers=headers).json()
        assert "entry" not in found
        old = client.get(PPD_SEARCH, params={"name": escaped(OLD_NAME)}, headers=headers).json()
        assert CERTICAN_PACKAGE in [e["resource"]["id"] for e in old["entry"]]
        history = client.get(f"{PPD}/_history", headers=headers).json()
        assert [e["resource"]["meta"]["versionId"] for e in history["entry"]] == ["1"]
        assert client.get(f"{PPD}/_history/2", headers=headers).status_code == 404
        whole = client.get("/fhir/_history?_count=1000", headers=headers)
        assert whole.status_code == 200 and NEW_NAME not in whole.text
        links = [link["url"] for page in (history, whole.json()) for link in page["link"]]
        snapshots = [value for url in links for value in parse_qs(urlsplit(url).query).get("_snapshot", [])]
        assert all(str(site.staged) not in token.split(".") for token in snapshots)
        asked = client.get(f"/fhir/PackagedProductDefinition?_snapshot={site.staged}", headers=headers)
        assert asked.status_code == 410, asked.text
        m30 = client.get("/fest/m30", headers=headers)
        assert m30.status_code == 200 and OLD_NAME + "<" in m30.text and NEW_NAME not in m30.text
        assert site.staged not in [r["id"] for r in client.get("/releases").json()]
    export = manifest(client, "/fhir/$export?_type=PackagedProductDefinition", ASYNC)
    names = {r["id"]: r["name"] for r in lines(client, export["output"][0]["url"])}
    assert names[CERTICAN_PACKAGE] == OLD_NAME
    # who may not import the national line does not learn the staged release exists
    assert client.get(f"/releases/{site.staged}").status_code == 404
    assert client.get(f"/releases/1/diff/{site.staged}").status_code == 404
    sector_reader = site.issuer.headers("grunndata:sector.read")
    assert client.get(f"/releases/{site.staged}", headers=sector_reader).status_code == 404
    operator = client.get(f"/releases/{site.staged}", headers=site.issuer.headers(*IMPORT)).json()
    assert (operator["status"], operator["based_on"], operator["activated"]) == ("staged", 1, None)


def oppf(package: str) -> tuple[str, str]:
    """The Oppf Id and Tidspunkt the real extract lists a package under."""
    entry = next(e for e, _ in FestReader(REAL_FEST).entries() if e.key == "ID_" + package)
    return entry.oppf_id, entry.tidspunkt


def test_the_operator_sees_what_the_staged_release_changes_element_by_element(site: Site) -> None:
    answer = site.client.get(
        f"/releases/1/diff/{site.staged}?type=Legemiddelpakning", headers=site.issuer.headers(*IMPORT)
    )
    # an import right shows what no other client sees (a staged release): no shared cache may keep it
    assert answer.headers["cache-control"] == "private, no-cache"
    diff = answer.json()
    assert diff["counts"]["catalogues"] == {"Legemiddelpakning": {"new": 0, "changed": 1, "expired": 1}}
    assert diff["counts"]["resources"]["PackagedProductDefinition"] == {"new": 0, "changed": 1, "expired": 1}
    assert (diff["base"]["status"], diff["target"]["status"], diff["total"]) == ("active", "staged", 2)
    old_id, old_time = oppf(CERTICAN_PACKAGE)
    certican, dropped = sorted(diff["entries"], key=lambda e: e["change"])
    assert certican["id"] == "ID_" + CERTICAN_PACKAGE and certican["change"] == "changed"
    assert certican["elements"] == [
        {"path": "Id", "old": old_id, "new": "ID_11111111-2222-3333-4444-555555555555"},
        {"path": "Tidspunkt", "old": old_time, "new": "2017-04-20T10:00:00"},
        {"path": "Legemiddelpakning.NavnFormStyrke", "old": OLD_NAME, "new": NEW_NAME},
    ]
    assert (dropped["id"], dropped["change"], "elements" in dropped) == (site.dropped, "expired", False)
    fhir = site.client.get(
        f"/releases/1/diff/{site.staged}?type=PackagedProductDefinition&_count=5",
        headers=site.issuer.headers(*IMPORT),
    ).json()
    package = next(e for e in fhir["entries"] if e["change"] == "changed")
    assert {"path": "name", "old": OLD_NAME, "new": NEW_NAME} in package["elements"]
    assert package["elements_total"] == len(package["elements"])
    paged = site.client.get(
        f"/releases/1/diff/{site.staged}?_count=1", headers=site.issuer.headers(*IMPORT)
    ).json()
    assert len(paged["entries"]) == 1 and paged["total"] > 2
    assert paged["next"] == f"http://testserver/releases/1/diff/{site.staged}?_offset=1&_count=1"
    typo = site.client.get(f"/releases/1/diff/{site.staged}?type=Bogus", headers=site.issuer.headers(*IMPORT))
    assert typo.status_code == 404  # nothing of that type to show (schemathesis: a valid request is no 400)
    said = typo.json()["issue"][0]["diagnostics"]
    assert said.startswith(f"neither release 1 nor {site.staged} holds entries of type 'Bogus'; they hold ")
    held = said.split("; they hold ")[1].split(", ")
    assert "Legemiddelpakning" in held and "PackagedProductDefinition" in held and held == sorted(held)
    twice = site.client.get(
        f"/releases/1/diff/{site.staged}?type=Bogus&type=Legemiddelpakning",
        headers=site.issuer.headers(*IMPORT),
    )
    assert twice.status_code == 400
    assert twice.json()["issue"][0]["diagnostics"] == "type is given more than once; give it once"


def test_a_restricted_lines_diff_tells_others_only_that_its_releases_exist_and_when(site: Site) -> None:
    anonymous = site.client.get("/releases/2/diff/3").json()
    assert set(anonymous) == {"tier", "owner", "base", "target", "withheld"}
    assert (anonymous["tier"], anonymous["owner"], anonymous["base"]["id"]) == ("sector", "ward-a", 2)
    assert anonymous["target"]["activated"].endswith("Z")
    assert anonymous["withheld"] == (
        "what a release of this line holds is withheld: this needs a bearer token with the scope grunndata:sector.read"
    )
    entitled = site.client.get(
        "/releases/2/diff/3", headers=site.issuer.headers("grunndata:sector.read")
    ).json()
    assert entitled["counts"] == {
        "catalogues": {},
        "resources": {"Basic": {"new": 0, "changed": 1, "expired": 0}},
    }
    assert entitled["entries"][0]["elements"] == [
        {"path": "extension[0].valueString", "old": "Keep cold", "new": "Keep cold, away from light"}
    ]
    across = site.client.get("/releases/1/diff/3", headers=site.issuer.headers("grunndata:sector.read"))
    assert across.status_code == 400
    assert across.json()["issue"][0]["diagnostics"] == (
        "releases 1 and 3 are of different lines (national/dmp and sector/ward-a); a diff compares two releases of one line"
    )


def test_activate_over_the_api_needs_the_import_scope_then_the_release_is_served(site: Site) -> None:
    client, path = site.client, f"/releases/{site.staged}/activate"
    assert client.post(path).status_code == 404  # no token: not even that it exists
    beyond = client.post("/releases/9999999999/activate", headers=site.issuer.headers(*IMPORT))
    assert (beyond.status_code, beyond.json()["issue"][0]["diagnostics"]) == (
        404,
        "there is no release 9999999999",
    )
    other = client.post(path, headers=site.issuer.headers("grunndata:import:sector:ward-a"))
    assert other.status_code == 404
    reader = client.post(path, headers=site.issuer.headers("grunndata:sector.read"))
    assert reader.status_code == 404
    done = client.post(path, headers=site.issuer.headers(*IMPORT))
    assert done.status_code == 200, done.text
    assert (done.json()["outcome"], done.json()["release"]["status"]) == ("activated", "active")
    package = client.get(PPD).json()
    assert (package["meta"]["versionId"], package["name"]) == ("2", NEW_NAME)
    assert (
        client.get(f"/fhir/PackagedProductDefinition/{site.dropped.removeprefix('ID_')}").status_code == 410
    )
    assert client.get("/releases/1").json()["status"] == "superseded"
    again = client.post(path, headers=site.issuer.headers(*IMPORT))
    assert again.status_code == 409
    assert again.json()["issue"][0]["diagnostics"] == (
        f"release {site.staged} is active, not staged; only a staged release can be activated"
    )
    forbidden = client.post(
        "/releases/1/activate", headers=site.issuer.headers("grunndata:import:sector:ward-a")
    )
    assert forbidden.status_code == 403  # a release it may see, of a line it may not import


def test_a_staged_sector_delivery_is_discarded_by_its_owner(site: Site, tmp_path: Path) -> None:
    client = site.client
    owner = site.issuer.headers("grunndata:import:supplementary:vendor-a")
    csv = "varenr;merknad\n014884;Oppbevares i kjøleskap\n".encode()
    staged = client.post(
        "/import/supplementary?owner=vendor-a&filename=a.csv&stage=true", content=csv, headers=owner
    )
    assert staged.status_code == 200, staged.text
    number = staged.json()["release_id"]
    assert staged.json()["outcome"] == "staged"
    reader = site.issuer.headers("grunndata:supplementary.read:vendor-a")
    assert "entry" not in client.get("/fhir/Basic?_tag=supplementary", headers=reader).json()
    assert (
        client.post(
            f"/releases/{number}/discard",
            headers=site.issuer.headers("grunndata:import:supplementary:vendor-b"),
        ).status_code
        == 404
    )
    done = client.post(f"/releases/{number}/discard", headers=owner)
    assert done.status_code == 200, done.text
    assert done.json()["release"]["status"] == "discarded"
    assert client.get(f"/releases/{number}", headers=owner).json()["status"] == "discarded"
    assert number not in [r["id"] for r in client.get("/releases", headers=reader).json()]
    assert client.post(f"/releases/{number}/activate", headers=owner).status_code == 409
