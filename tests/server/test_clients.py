"""FHIR clients from PyPI, used as an EPJ would use them, against the server over HTTP.

fhirpy reads, pages and includes through its own API. fhirclient (SMART client-py) is R4 and has
no model classes for the R5 IDMP types, so it talks to the server through its FHIRServer's JSON
requests; its R4 CapabilityStatement model still has to accept our R5 statement. Against /fhir-r4
(the SAFEST R4 view) it uses its R4 model classes, which check types and required elements, also
on DMP's delta/. A client asking for FHIR XML gets what the JSON says, as fhir.resources' XML
parser reads it.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fhir.resources import get_fhir_model_class
from fhir.resources.packagedproductdefinition import PackagedProductDefinition
from fhirclient.client import FHIRClient
from fhirclient.models.bundle import Bundle
from fhirclient.models.medicinalproduct import MedicinalProduct
from fhirclient.models.medicinalproductingredient import MedicinalProductIngredient
from fhirclient.models.medicinalproductpackaged import MedicinalProductPackaged
from fhirclient.models.substancespecification import SubstanceSpecification
from fhirclient.server import FHIRNotFoundException, FHIRServer
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import ResourceNotFound

from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE, VARENR
from tests.server.live import LiveServer, live_server  # noqa: F401 (the fixture `live`)

MPD, PPD = "MedicinalProductDefinition", "PackagedProductDefinition"
PACKAGES = 107  # Legemiddelpakning entries in the real extract


def varenr(package: Any) -> list[str]:
    return [i["value"] for i in package["identifier"] if i["system"] == VARENR]


# -- fhirpy ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fhirpy(live: LiveServer) -> SyncFHIRClient:
    return SyncFHIRClient(live.fhir)


def test_fhirpy_reads_the_certican_package_and_follows_its_reference(fhirpy: SyncFHIRClient) -> None:
    package = fhirpy.reference(PPD, CERTICAN_PACKAGE).to_resource()
    assert package.resourceType == PPD and package.id == CERTICAN_PACKAGE
    assert varenr(package) == ["014884"]
    assert [r["reference"] for r in package["packageFor"]] == [f"{MPD}/{CERTICAN_BRAND}"]
    brand = fhirpy.reference(reference=package["packageFor"][0]["reference"]).to_resource()
    assert brand.resourceType == MPD and brand.id == CERTICAN_BRAND
    PackagedProductDefinition.model_validate(package.serialize())  # what fhirpy holds is valid R5
    with pytest.raises(ResourceNotFound):
        fhirpy.reference(PPD, "no-such-package").to_resource()


def test_fhirpy_pages_through_every_package_by_next_links(fhirpy: SyncFHIRClient) -> None:
    packages = fhirpy.resources(PPD).limit(10)
    assert len(packages.fetch()) == 10  # one page: fetch_all below has to follow `next`
    ids = [p.id for p in packages.fetch_all()]
    assert len(ids) == PACKAGES and len(set(ids)) == PACKAGES
    assert CERTICAN_PACKAGE in ids


def test_fhirpy_includes_the_product_a_package_is_for(fhirpy: SyncFHIRClient) -> None:
    search = fhirpy.resources(PPD).search(identifier=f"{VARENR}|014884").include(PPD, "package-for")
    assert [p.id for p in search.fetch()] == [CERTICAN_PACKAGE]  # fetch() keeps only the searched type
    bundle = search.fetch_raw()
    modes = [
        (e["search"]["mode"], e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"]
    ]
    assert modes == [("match", PPD, CERTICAN_PACKAGE), ("include", MPD, CERTICAN_BRAND)]


# -- fhirclient (SMART client-py) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def smart(live: LiveServer) -> FHIRServer:
    client = FHIRClient(settings={"app_id": "grunndata-tests", "api_base": live.fhir})
    assert client.prepare()  # reads /metadata into its R4 model; no security, so ready at once
    assert client.server.capabilityStatement.fhirVersion == "5.0.0"
    server: FHIRServer = client.server
    return server


def pages(server: FHIRServer, path: str) -> list[dict[str, Any]]:
    """Every page of a search, by following `next` links as the server gives them."""
    out = [server.request_json(path)]
    while link := next((x["url"] for x in out[-1].get("link", []) if x["relation"] == "next"), None):
        out.append(server.request_json(link))
    return out


def test_fhirclient_reads_the_certican_package(smart: FHIRServer) -> None:
    package = smart.request_json(f"{PPD}/{CERTICAN_PACKAGE}")
    assert package["id"] == CERTICAN_PACKAGE and varenr(package) == ["014884"]
    assert package["packageFor"] == [{"reference": f"{MPD}/{CERTICAN_BRAND}"}]
    with pytest.raises(FHIRNotFoundException):
        smart.request_json(f"{PPD}/no-such-package")


def test_fhirclient_pages_through_every_package_by_next_links(smart: FHIRServer) -> None:
    bundles = pages(smart, f"{PPD}?_count=25")
    assert [len(b.get("entry", [])) for b in bundles] == [25, 25, 25, 25, 7]
    ids = [e["resource"]["id"] for b in bundles for e in b["entry"]]
    assert len(set(ids)) == PACKAGES


def test_fhirclient_includes_the_product_a_package_is_for(smart: FHIRServer) -> None:
    bundle = smart.request_json(f"{PPD}?identifier=014884&_include={PPD}:package-for")
    modes = [(e["search"]["mode"], e["resource"]["id"]) for e in bundle["entry"]]
    assert modes == [("match", CERTICAN_PACKAGE), ("include", CERTICAN_BRAND)]


# -- fhirclient's R4 models against /fhir-r4 (the SAFEST view) ----------------------------------------


@pytest.fixture(scope="module")
def smart_r4(live: LiveServer) -> FHIRServer:
    client = FHIRClient(settings={"app_id": "grunndata-tests", "api_base": live.url + "/fhir-r4"})
    assert client.prepare()
    assert client.server.capabilityStatement.fhirVersion == "4.0.1"
    server: FHIRServer = client.server
    return server


def test_fhirclient_r4_models_read_a_package_its_product_ingredient_and_substance(
    smart_r4: FHIRServer,
) -> None:
    """The R4 model classes (which validate types and required elements) take what /fhir-r4 sends."""
    package = MedicinalProductPackaged.read(CERTICAN_PACKAGE, smart_r4)
    assert package.id == CERTICAN_PACKAGE
    assert "014884" in [i.value for i in package.identifier]
    assert package.subject[0].reference == f"MedicinalProduct/{CERTICAN_BRAND}"
    assert package.packageItem[0].type.coding[0].code == "169"
    assert package.as_json()["resourceType"] == "MedicinalProductPackaged"
    product = MedicinalProduct.read(CERTICAN_BRAND, smart_r4)
    assert product.name[0].productName == "Certican Disperg tab 0,1 mg"
    ingredient = MedicinalProductIngredient.read(f"{CERTICAN_BRAND}-1", smart_r4)
    assert ingredient.role.coding[0].code == "100000072072"
    (reference,) = ingredient.substance.code.extension
    substance = SubstanceSpecification.read(reference.valueReference.reference.split("/")[1], smart_r4)
    assert substance.name[0].name == "Everolimus"
    with pytest.raises(FHIRNotFoundException):
        MedicinalProductPackaged.read("no-such-package", smart_r4)


def test_fhirclient_r4_searches_by_varenr_and_gtin(smart_r4: FHIRServer) -> None:
    for value in ("014884", f"{VARENR}|014884", "https://www.gs1.org/gtin|7046260148840"):
        found = MedicinalProductPackaged.where(struct={"identifier": value}).perform_resources(smart_r4)
        assert [p.id for p in found] == [CERTICAN_PACKAGE], value


def test_fhirclient_r4_pages_through_every_package_into_its_models(smart_r4: FHIRServer) -> None:
    bundles = pages(smart_r4, "MedicinalProductPackaged?_count=25")
    assert [len(b.get("entry", [])) for b in bundles] == [25, 25, 25, 25, 7]
    models = [MedicinalProductPackaged(e["resource"]) for b in bundles for e in b["entry"]]  # strict
    assert len({m.id for m in models}) == PACKAGES


def test_fhirclient_r4_follows_delta_into_its_models(smart_r4: FHIRServer) -> None:
    """DMP's delta/ (the version history of everything published): its pages, each a history Bundle
    fhirclient's R4 Bundle model takes, by next links on delta/; a delta read and vread into its
    models. (A change and an expiry in delta/ are in tests/server/test_r4_delta.py.)"""
    bundles = pages(smart_r4, "delta/MedicinalProductPackaged?_count=40")
    assert [len(b["entry"]) for b in bundles] == [40, 40, 27]
    models = [Bundle(b) for b in bundles]  # strict: every entry's resource a MedicinalProductPackaged
    assert {m.type for m in models} == {"history"}
    assert all(link.url.startswith(smart_r4.base_uri + "delta/") for m in models for link in m.link)
    entries = [e for m in models for e in m.entry]
    assert {(e.request.method, e.resource.meta.versionId) for e in entries} == {("POST", "1")}
    assert len({e.resource.id for e in entries}) == PACKAGES
    package = MedicinalProductPackaged.read_from(
        f"delta/MedicinalProductPackaged/{CERTICAN_PACKAGE}", smart_r4
    )
    assert package.id == CERTICAN_PACKAGE and package.meta.versionId == "1"
    first = MedicinalProductPackaged.read_from(
        f"delta/MedicinalProductPackaged/{CERTICAN_PACKAGE}/_history/1", smart_r4
    )
    assert first.as_json() == package.as_json()
    with pytest.raises(FHIRNotFoundException):
        MedicinalProductPackaged.read_from("delta/MedicinalProductPackaged/no-such-package", smart_r4)


# -- FHIR XML -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        f"{PPD}/{CERTICAN_PACKAGE}",
        f"{PPD}?identifier=014884&_include={PPD}:package-for",
        f"{MPD}?_count=5&_revinclude={PPD}:package-for",
        "metadata",
    ],
)
def test_xml_answers_read_back_as_the_json_answers(live: LiveServer, path: str) -> None:
    as_json = httpx.get(f"{live.fhir}/{path}", headers={"Accept": "application/fhir+json"})
    as_xml = httpx.get(f"{live.fhir}/{path}", headers={"Accept": "application/fhir+xml"})
    assert as_json.status_code == as_xml.status_code == 200, as_xml.text
    assert as_xml.headers["content-type"] == "application/fhir+xml; charset=utf-8"
    resource = as_json.json()
    model = get_fhir_model_class(resource["resourceType"])
    from_xml = model.model_validate_xml(as_xml.content).model_dump()
    from_json = model.model_validate(resource).model_dump()
    if resource["resourceType"] == "Bundle":  # made per request: its meta.lastUpdated differs
        assert from_xml.pop("meta").keys() == from_json.pop("meta").keys() == {"lastUpdated"}
        assert from_json["entry"], "the comparison needs entries"
    assert from_xml == from_json
