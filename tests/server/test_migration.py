"""The migration page: per national release, how much of FEST has an IDMP counterpart, and where not."""

from __future__ import annotations

import html
import re
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.importers.safest import import_safest
from grunndata.server import create_app
from tests.conftest import REAL_FEST, require
from tests.importers.test_safest import PLANTED_DISAGREEMENTS
from tests.server.conftest import CERTICAN_PACKAGE

PLANTED = Path(__file__).parents[1] / "importers" / "safest_data" / "planted.json"


def test_the_migration_page_shows_each_release_its_coverage_and_disagreements(engine: Engine) -> None:
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, PLANTED)
    with TestClient(create_app(engine)) as client:
        report = client.get("/migration", headers={"Accept": "application/json"}).json()
        page = client.get("/migration")
    newest, first = report["releases"]
    assert (newest["id"], newest["source"], newest["status"]) == (2, "safest", "active")
    assert (first["id"], first["source"], first["status"]) == (1, "fest", "superseded")
    assert first["share_with_idmp"] == 0.0 and first["disagreement_count"] == 0
    assert first["coverage"]["PackagedProductDefinition"] == {"fest": 107, "with_idmp": 0, "share": 0.0}
    assert newest["coverage"]["PackagedProductDefinition"] == {"fest": 107, "with_idmp": 2, "share": 0.0187}
    assert newest["coverage"]["MedicinalProductDefinition"] == {"fest": 78, "with_idmp": 2, "share": 0.0256}
    assert newest["idmp_only"] == {"MedicinalProductDefinition": 1}
    assert newest["disagreement_count"] == len(PLANTED_DISAGREEMENTS) == 18
    assert sorted(
        (d["resource"], d["element"], d["fest"], d["safest"]) for d in newest["disagreements"]
    ) == sorted(PLANTED_DISAGREEMENTS)
    assert report["compared"]["Ingredient"] == ["substance", "strength", "strength-denominator"]
    assert report["compared"]["PackagedProductDefinition"][:3] == ["name", "gtin", "varenr"]
    refusjon = next(r for r in report["not_in_idmp"] if r["catalogue"] == "Refusjon")
    assert refusjon["extension"] > 0
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<strong><a href="/migration/2/uenigheter">18 uenigheter</a></strong>' in page.text
    assert "Certican 0,1 mg dispergerbar tablett" in page.text
    assert "</a></td><td>gtin</td><td>07046260236080</td><td>07046260236097</td>" in page.text
    assert "<td>marketing-dates</td><td>start 2004-07-15</td><td>start 2004-08-01</td>" in page.text
    # what SAFEST overwrote, as JSON, escaped
    assert (
        "<td>identifier</td><td>{&#34;system&#34;:&#34;https://grunndata.no/fhir/NamingSystem/" in page.text
    )
    assert "Ingredient: substance, strength, strength-denominator" in page.text
    assert "width=device-width" in page.text
    assert '<nav aria-label="Hovedmeny">' in page.text  # on the pages' base.html
    # readable dates: HentetDato in Norwegian time, the activation as a day, a month and a time
    assert '<time datetime="2017-04-12T18:26:27.336Z">12. april 2017 kl. 20.26</time>' in page.text
    assert re.search(r"Aktivert \d{1,2}\. [a-zø]+ 20\d\d kl\. \d\d\.\d\d;", page.text)
    assert "T" not in re.findall(r"Aktivert ([^;]*);", page.text)[0]


def test_an_empty_store_has_a_migration_page_too(engine: Engine) -> None:
    with TestClient(create_app(engine)) as client:
        assert client.get("/migration", headers={"Accept": "application/json"}).json()["releases"] == []
        assert "Ingen nasjonal leveranse er lest inn ennå." in client.get("/migration").text


def text(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page.split('id="innhold">', 1)[1]).split())


def test_each_count_drills_down_to_the_resources_behind_it(engine: Engine) -> None:
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, PLANTED)
    with TestClient(create_app(engine, warm=False)) as client:
        report = client.get("/migration", headers={"Accept": "application/json"}).json()
        page = client.get("/migration").text
        newest = report["releases"][0]
        for release, rtype, counts in (
            (r["id"], t, c) for r in report["releases"] for t, c in r["coverage"].items()
        ):
            for part, key in (("fra-fest", "fest"), ("med-idmp", "with_idmp")):
                link = f"/migration/{release}/{rtype}?del={part}"
                assert f'href="{link}"' in page  # the count links to ...
                listed = client.get(link)
                assert listed.status_code == 200, listed.text
                ids = re.findall(r'<li data-id="([^"]+)">', listed.text)
                assert len(ids) == counts[key], (release, rtype, part)  # ... exactly the resources it counts
        for rtype, n in newest["idmp_only"].items():
            listed = client.get(f"/migration/2/{rtype}?del=bare-idmp").text
            assert re.findall(r'<li data-id="([^"]+)">', listed) == ["sf-only-in-idmp"] and n == 1
        both = client.get("/migration/2/PackagedProductDefinition?del=med-idmp").text
        assert sorted(re.findall(r'<li data-id="([^"]+)">', both)) == [
            "C5C20BFF-1FD1-4DAF-8F90-75579805AAFC",
            CERTICAN_PACKAGE,
        ]
        assert "Certican 0,1 mg dispergerbar tablett, 60 stk" in both
        assert (
            len(
                re.findall(
                    r'<li data-id="', client.get("/migration/1/PackagedProductDefinition?del=bare-fest").text
                )
            )
            == 107
        )
        for path, status in (
            ("/migration/9/PackagedProductDefinition", 404),
            ("/migration/2/Packaged%3Cscript%3E", 404),
            ("/migration/2/Patient", 404),  # a FHIR type, but none this service has
            ("/migration/2/Legemiddelpakning", 404),  # a FEST catalogue, not a FHIR type
            ("/migration/2/packagedproductdefinition", 404),
            ("/migration/2/PackagedProductDefinition?del=x", 400),
            ("/migration/2/PackagedProductDefinition?start=-5", 400),
        ):
            answer = client.get(path)
            assert (
                answer.status_code == status and answer.headers["content-type"] == "text/html; charset=utf-8"
            )
            assert "<script>" not in answer.text


def test_each_disagreement_drills_down_to_both_values(engine: Engine) -> None:
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, PLANTED)
    with TestClient(create_app(engine, warm=False)) as client:
        report = client.get("/migration", headers={"Accept": "application/json"}).json()
        page = client.get("/migration").text
        listed = report["releases"][0]["disagreements"]
        assert len(listed) == 18
        for n, d in enumerate(listed, 1):
            assert f'<a href="/migration/2/uenigheter/{n}">{d["resource"]}</a>' in page
            one = client.get(f"/migration/2/uenigheter/{n}")
            assert one.status_code == 200
            shown = text(one.text)
            assert (
                f"Element {d['element']} FEST sier {' '.join(d['fest'].split())} SAFEST sier"
                in html.unescape(shown)
            )
            assert html.unescape(shown).split(" SAFEST sier ", 1)[1].startswith(" ".join(d["safest"].split()))
        everything = client.get("/migration/2/uenigheter").text
        assert len(re.findall(r'href="/migration/2/uenigheter/\d+"', everything)) == 18
        assert client.get("/migration/2/uenigheter/19").status_code == 404
        assert client.get("/migration/1/uenigheter").status_code == 200  # none: an empty list
