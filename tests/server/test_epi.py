"""An ePI document Bundle (the Nordic ePI implementation guide's shape: a Composition first, then
the product and package it describes, and the marketing authorisation holder) imports as DMP's
national data and as an owner's supplementary data; the leaflet is served linked to its product,
and the holder at /fhir/Organization beside the service catalogue's owners.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.errors import DeliveryError
from grunndata.importers.fest import import_fest
from grunndata.importers.safest import import_safest
from grunndata.importers.tiered import TieredDeliveryError, import_tiered
from grunndata.server import create_app
from grunndata.store.searchparams import TIER_SYSTEM
from tests.conftest import REAL_FEST, require
from tests.server.conftest import CERTICAN_BRAND
from tests.server.tokens import Issuer

EPI = Path(__file__).parents[1] / "importers" / "epi_data" / "paracetamol-nordfarma-pil.json"
LEAFLET, PRODUCT, PACKAGE, HOLDER = (
    "pil-paracetamol-nordfarma-500",
    "mpd-paracetamol-nordfarma-500",
    "ppd-paracetamol-nordfarma-500-20",
    "nordfarma-as",
)
OWNER, OWNER_NAME = "nordfarma", "Nordfarma AS"  # the vendor publishing its own ePIs, supplementary
READS_NORDFARMA = f"grunndata:supplementary.read:{OWNER}"


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("keys"))


def ids(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [
        e["resource"]["id"]
        for e in answer.json().get("entry", [])
        if e.get("search", {}).get("mode") != "outcome"
    ]


def typed_ids(answer: Any) -> list[tuple[str, str, str]]:
    assert answer.status_code == 200, answer.text
    return [
        (e["search"]["mode"], e["resource"]["resourceType"], e["resource"]["id"])
        for e in answer.json()["entry"]
    ]


def write(folder: Path, name: str, resource: dict[str, Any]) -> Path:
    path = folder / name
    path.write_text(json.dumps(resource), encoding="utf-8")
    return path


def test_an_epi_bundle_is_served_as_national_data_linked_to_its_product(engine: Engine) -> None:
    result = import_safest(engine, EPI)
    assert result.types == {
        "Composition": 1,
        "MedicinalProductDefinition": 1,
        "Organization": 1,
        "PackagedProductDefinition": 1,
    }
    assert (result.problems, result.warnings) == ([], [])
    with TestClient(create_app(engine)) as api:
        leaflet = api.get(f"/fhir/Composition/{LEAFLET}").json()
        # the bundle's urn:uuid references name the served resources
        assert leaflet["subject"] == [{"reference": f"MedicinalProductDefinition/{PRODUCT}"}]
        assert leaflet["author"] == [{"reference": f"Organization/{HOLDER}"}]
        assert leaflet["meta"]["source"] == "https://grunndata.no/owner/dmp"
        assert leaflet["meta"]["tag"] == [{"system": TIER_SYSTEM, "code": "national"}]
        assert [s["title"] for s in leaflet["section"][1]["section"]] == [
            "Bruk ikke Paracetamol Nordfarma",
            "Advarsler og forsiktighetsregler",
        ]
        package = api.get(f"/fhir/PackagedProductDefinition/{PACKAGE}").json()
        assert package["packageFor"] == [{"reference": f"MedicinalProductDefinition/{PRODUCT}"}]

        for query in (
            f"subject=MedicinalProductDefinition/{PRODUCT}",
            f"subject={PRODUCT}",
            "type=http://loinc.org|60593-1",
            "status=final",
            "title=pakningsvedlegg",
            "title:contains=nordfarma 500",
            "date=2025-03-14",
            "date=2025-03",
            "date=ge2025-01-01&date=lt2026",
            f"author=Organization/{HOLDER}",
            "identifier=https://epi.example.no/fhir/NamingSystem/epi|NO-EPI-2025-000731-PIL",
            "section=https://epi.example.no/fhir/CodeSystem/pil-section|pil-3",
            "_tag=national",
        ):
            assert ids(api.get(f"/fhir/Composition?{query}")) == [LEAFLET], query
        for query in ("status=preliminary", "date=2025-03-15", "date=lt2025-03-14", "date=gt2025-03-14"):
            assert ids(api.get(f"/fhir/Composition?{query}")) == [], query
        assert api.get("/fhir/Composition?date=14.03.2025").json()["issue"][0]["diagnostics"] == (
            "date: not a date or time: '14.03.2025' (e.g. 2026-11-21 or 2026-11-21T10:00:00Z)"
        )

        assert typed_ids(api.get(f"/fhir/MedicinalProductDefinition/{PRODUCT}/$everything")) == [
            ("match", "MedicinalProductDefinition", PRODUCT),
            ("include", "PackagedProductDefinition", PACKAGE),
            ("include", "Composition", LEAFLET),
            ("include", "Organization", HOLDER),
        ]
        assert typed_ids(
            api.get(f"/fhir/MedicinalProductDefinition?_id={PRODUCT}&_revinclude=Composition:subject")
        ) == [("match", "MedicinalProductDefinition", PRODUCT), ("include", "Composition", LEAFLET)]
        assert typed_ids(api.get(f"/fhir/Composition?_id={LEAFLET}&_include=Composition:author")) == [
            ("match", "Composition", LEAFLET),
            ("include", "Organization", HOLDER),
        ]

        holder = api.get(f"/fhir/Organization/{HOLDER}").json()
        assert (holder["name"], holder["meta"]["source"], holder["meta"]["tag"]) == (
            "Nordfarma AS",
            "https://grunndata.no/owner/dmp",
            [{"system": TIER_SYSTEM, "code": "national"}],
        )
        # one /fhir/Organization: the catalogue's owner dmp, and the holder imported
        assert ids(api.get("/fhir/Organization")) == ["dmp", HOLDER]
        assert api.get("/fhir/Organization/dmp").json()["meta"]["source"] == "https://grunndata.no/catalog"
        assert ids(api.get("/fhir/Organization?name=nordfarma")) == [HOLDER]
        assert ids(api.get("/fhir/Organization?identifier=urn:oid:2.16.578.1.12.4.1.4.101|998877665")) == [
            HOLDER
        ]
        assert ids(api.get("/fhir/Organization?type=bus&active=true")) == [HOLDER]
        assert ids(api.get("/fhir/Organization?tier=national")) == ["dmp", HOLDER]
        assert typed_ids(api.get(f"/fhir/Organization?_id={HOLDER}&_revinclude=Composition:author")) == [
            ("match", "Organization", HOLDER),
            ("include", "Composition", LEAFLET),
        ]
        first = api.get("/fhir/Organization?_count=1&_total=accurate").json()
        assert ([e["resource"]["id"] for e in first["entry"]], first["total"]) == (["dmp"], 2)
        following = next(link["url"] for link in first["link"] if link["relation"] == "next")
        second = api.get(following).json()
        assert [e["resource"]["id"] for e in second["entry"]] == [HOLDER]
        assert [link["relation"] for link in second["link"]] == ["self", "first", "previous"]


def test_a_leaflet_names_the_fest_product_its_product_is_linked_to(engine: Engine, tmp_path: Path) -> None:
    """The ePI's product carries a FEST LegemiddelMerkevare id: it becomes FEST's product, and the
    leaflet and the package name that one, as every SAFEST reference to a linked resource does."""
    import_fest(engine, require(REAL_FEST))
    bundle = json.loads(EPI.read_text(encoding="utf-8"))
    product = bundle["entry"][1]["resource"]
    product["identifier"].append(
        {"system": "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare", "value": f"ID_{CERTICAN_BRAND}"}
    )
    import_safest(engine, write(tmp_path, "certican-epi.json", bundle))
    with TestClient(create_app(engine)) as api:
        leaflet = api.get(f"/fhir/Composition/{LEAFLET}").json()
        assert leaflet["subject"] == [{"reference": f"MedicinalProductDefinition/{CERTICAN_BRAND}"}]
        assert api.get(f"/fhir/MedicinalProductDefinition/{PRODUCT}").status_code == 404  # served once
        served = typed_ids(api.get(f"/fhir/MedicinalProductDefinition/{CERTICAN_BRAND}/$everything"))
        assert [s for s in served if s[1] in ("Composition", "Organization")] == [
            ("include", "Composition", LEAFLET),
            ("include", "Organization", HOLDER),
        ]
        assert ("include", "PackagedProductDefinition", PACKAGE) in served


def test_an_epi_bundle_as_supplementary_data_is_served_only_with_the_owners_scope(
    engine: Engine, issuer: Issuer
) -> None:
    result = import_tiered(engine, EPI, tier="supplementary", owner=OWNER, owner_name=OWNER_NAME)
    assert sorted(result.resources) == [
        "Composition",
        "MedicinalProductDefinition",
        "Organization",
        "PackagedProductDefinition",
    ]
    assert (result.problems, result.warnings) == ([], [])
    entitled = issuer.headers(READS_NORDFARMA)
    other = issuer.headers("grunndata:supplementary.read:someone-else")
    with TestClient(create_app(engine, issuer.authenticator())) as api:
        for path in (f"/fhir/Composition/{LEAFLET}", f"/fhir/Organization/{HOLDER}"):
            assert api.get(path).status_code == 404
            assert api.get(path, headers=other).status_code == 404
            assert api.get(path, headers=entitled).status_code == 200
        leaflet = api.get(f"/fhir/Composition/{LEAFLET}", headers=entitled).json()
        assert leaflet["meta"]["source"] == f"https://grunndata.no/owner/{OWNER}"
        assert leaflet["meta"]["tag"] == [{"system": TIER_SYSTEM, "code": "supplementary"}]
        assert leaflet["subject"] == [{"reference": f"MedicinalProductDefinition/{PRODUCT}"}]

        # the owner nordfarma is the catalogue's Organization; the holder it imported is beside it
        assert ids(api.get("/fhir/Organization?name=nordfarma")) == [OWNER]
        assert ids(api.get("/fhir/Organization?name=nordfarma", headers=entitled)) == [OWNER, HOLDER]
        both = api.get("/fhir/Organization?name=nordfarma", headers=entitled).json()["entry"]
        assert [(e["resource"]["meta"]["source"], e["resource"]["name"]) for e in both] == [
            ("https://grunndata.no/catalog", OWNER_NAME),
            (f"https://grunndata.no/owner/{OWNER}", "Nordfarma AS"),
        ]

        everything = f"/fhir/MedicinalProductDefinition/{PRODUCT}/$everything"
        assert api.get(everything).status_code == 404
        assert typed_ids(api.get(everything, headers=entitled)) == [
            ("match", "MedicinalProductDefinition", PRODUCT),
            ("include", "PackagedProductDefinition", PACKAGE),
            ("include", "Composition", LEAFLET),
            ("include", "Organization", HOLDER),
        ]
        assert ids(api.get(f"/fhir/Composition?subject={PRODUCT}")) == []
        assert ids(api.get(f"/fhir/Composition?subject={PRODUCT}", headers=entitled)) == [LEAFLET]
        history = api.get(f"/fhir/Organization/{HOLDER}/_history", headers=other)
        assert history.status_code == 404
        assert ids(api.get(f"/fhir/Organization/{HOLDER}/_history", headers=entitled)) == [HOLDER]


def test_an_imported_organization_may_not_take_a_catalogue_owners_id(engine: Engine, tmp_path: Path) -> None:
    taking = {"resourceType": "Organization", "id": "dmp", "name": "Not DMP"}
    with pytest.raises(DeliveryError) as national:
        import_safest(engine, write(tmp_path, "org.json", taking))
    assert str(national.value) == (
        "refused: the delivery has 1 problem(s); the first: org.json: Organization/dmp: the id dmp is "
        "reserved: the service catalogue serves the owner dmp as Organization/dmp at the same "
        "/fhir/Organization; give this Organization another id"
    )
    path = write(tmp_path, "own.json", taking | {"id": OWNER})
    with pytest.raises(TieredDeliveryError) as tiered:
        import_tiered(engine, path, tier="supplementary", owner=OWNER, catalogue_owners={"vendor-a"})
    assert [(p.message, p.resource) for p in tiered.value.problems] == [
        (
            f"the id {OWNER} is reserved: the service catalogue serves the owner {OWNER} as "
            f"Organization/{OWNER} at the same /fhir/Organization; give this Organization another id",
            f"Organization/{OWNER}",
        )
    ]
    path = write(tmp_path, "file.json", taking | {"id": "vendor-a"})  # an owner of a catalogue file
    with pytest.raises(TieredDeliveryError) as named:
        import_tiered(engine, path, tier="supplementary", owner=OWNER, catalogue_owners={"vendor-a"})
    assert named.value.problems[0].resource == "Organization/vendor-a"


def test_over_the_api_an_epi_imports_and_a_catalogue_files_owner_id_is_refused(
    engine: Engine, issuer: Issuer, tmp_path: Path
) -> None:
    partners = Path(__file__).parent / "catalog_data" / "partners.yaml"  # names the owner vendor-a
    headers = issuer.headers(f"grunndata:import:supplementary:{OWNER}") | {
        "Content-Type": "application/fhir+json"
    }
    with TestClient(create_app(engine, issuer.authenticator(), catalog=[partners])) as api:
        taking = {"resourceType": "Organization", "id": "vendor-a", "name": "Vendor A, again"}
        refused = api.post(f"/import/supplementary?owner={OWNER}", json=taking, headers=headers)
        assert refused.status_code == 422
        assert [i["diagnostics"] for i in refused.json()["issue"]][1:] == [
            "upload.json: Organization/vendor-a: the id vendor-a is reserved: the service catalogue "
            "serves the owner vendor-a as Organization/vendor-a at the same /fhir/Organization; give this "
            "Organization another id"
        ]
        answer = api.post(f"/import/supplementary?owner={OWNER}", content=EPI.read_bytes(), headers=headers)
        assert answer.json()["outcome"] == "activated"
        assert (
            api.get(f"/fhir/Organization/{HOLDER}", headers=issuer.headers(READS_NORDFARMA)).status_code
            == 200
        )


def test_a_new_owner_may_not_take_the_id_of_an_imported_organization(engine: Engine) -> None:
    import_safest(engine, EPI)
    with pytest.raises(TieredDeliveryError) as caught:
        import_tiered(engine, EPI, tier="supplementary", owner=HOLDER)
    assert [p.message for p in caught.value.problems] == [
        f"the owner id {HOLDER} is the id of an Organization served as national data of dmp, and the "
        "service catalogue would serve the owner under it too; choose another owner id"
    ]
