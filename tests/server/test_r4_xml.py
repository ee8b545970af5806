"""A SAFEST client that speaks XML: /fhir-r4 answers `application/fhir+xml` (and `_format=xml`) for
every answer it gives, written by the R4 definitions from the R4 JSON it serves.

On the real extract, every R4 resource of the view read as XML is read back by our own SAFEST R4
XML reader to the JSON /fhir-r4 serves, and FHIR.js (npm `fhir` 4.12.0, an outside R4 converter)
agrees both ways: its JSON of our XML is our JSON, its XML of our JSON is our XML (canonical form,
so that element order counts and whitespace does not). Equal as JSON values: 1.50 == 1.5.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from lxml import etree

from grunndata.importers.resources import read_resources
from grunndata.m30 import safe_parser
from grunndata.server.fhir_io.fhirxml import FHIR_NS, FhirXmlError, json_to_xml
from grunndata.translators.safest.to_r4 import SAFEST_TYPES
from tests.importers import fhirjs
from tests.server.conftest import CERTICAN_PACKAGE

R4 = "/fhir-r4"
MPP = "MedicinalProductPackaged"
XML = "application/fhir+xml; charset=utf-8"
F = f"{{{FHIR_NS}}}"
SERVED = {  # the national R4 resources of the real extract (545, as R5 serves them), by SAFEST type
    "MedicinalProduct": 78,
    "MedicinalProductPackaged": 107,
    "MedicinalProductManufactured": 75,
    "MedicinalProductPharmaceutical": 75,
    "MedicinalProductIngredient": 139,
    "SubstanceSpecification": 71,
}


@pytest.fixture(scope="module")
def fhir_js(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return fhirjs.install(pytestconfig, tmp_path_factory)


@dataclass
class Written:
    """What /fhir-r4 wrote as XML, each file beside the JSON it was written from."""

    folder: Path
    resources: dict[str, dict[str, Any]] = field(default_factory=dict)  # file stem -> R4 JSON
    others: dict[str, dict[str, Any]] = field(default_factory=dict)  # Bundles, metadata, an error


def _xml(api: TestClient, path: str, status: int = 200, **headers: str) -> bytes:
    answer = api.get(path, headers=headers)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == XML
    return answer.content


def _json(api: TestClient, path: str, status: int = 200) -> dict[str, Any]:
    answer = api.get(path)
    assert answer.status_code == status, answer.text
    body: dict[str, Any] = answer.json()
    return body


def _without_time(bundle: dict[str, Any]) -> dict[str, Any]:
    """A Bundle without meta.lastUpdated, the moment of answering (it differs between two asks)."""
    return {k: v for k, v in bundle.items() if k != "meta"}


@pytest.fixture(scope="module")
def written(api: TestClient, tmp_path_factory: pytest.TempPathFactory) -> Written:
    """Every R4 resource of the view read as XML (the JSON from a search of its type), a search,
    a history and the CapabilityStatement as XML beside their JSON, and an error outcome."""
    out = Written(tmp_path_factory.mktemp("r4-xml"))
    for r4_type in SAFEST_TYPES:
        bundle = _json(api, f"{R4}/{r4_type}?_count=1000")
        for entry in bundle.get("entry", []):
            resource = entry["resource"]
            stem = f"{r4_type}.{resource['id']}"
            (out.folder / f"{stem}.xml").write_bytes(
                _xml(api, f"{R4}/{r4_type}/{resource['id']}?_format=xml")
            )
            out.resources[stem] = resource
    for stem, path in (
        ("search", f"{R4}/{MPP}?identifier=014884&colour=blue"),  # a match and an outcome entry
        ("history", f"{R4}/{MPP}/{CERTICAN_PACKAGE}/_history"),
        ("metadata", f"{R4}/metadata"),
        ("hresept-metadata", f"{R4}-hresept/metadata"),
        ("not-found", f"{R4}/{MPP}/nope"),
    ):
        status = 404 if stem == "not-found" else 200
        # by Accept, so that the Bundles' links (the URL asked) are those of the JSON asked
        (out.folder / f"{stem}.xml").write_bytes(_xml(api, path, status, Accept="application/fhir+xml"))
        out.others[stem] = _without_time(_json(api, path, status))
    return out


def json_value(value: Any) -> Any:
    """A JSON value in a form where == is JSON's equality: numbers by value, booleans apart from them."""
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return ("number", Decimal(str(value)).normalize())


def test_every_r4_resource_is_served_as_xml(written: Written) -> None:
    counts = {t: sum(1 for stem in written.resources if stem.split(".", 1)[0] == t) for t in SAFEST_TYPES}
    assert counts == SERVED


def test_each_xml_is_well_formed_fhir_xml_rooted_in_its_type(written: Written) -> None:
    for stem, resource in {**written.resources, **written.others}.items():
        root = etree.fromstring((written.folder / f"{stem}.xml").read_bytes(), safe_parser())
        assert root.tag == F + resource["resourceType"], stem
        assert root.nsmap == {None: FHIR_NS}, stem


def test_our_r4_xml_reader_reads_each_back_to_the_json_served(written: Written) -> None:
    for stem, resource in written.resources.items():
        [found] = list(read_resources(written.folder / f"{stem}.xml"))
        assert json_value(found.resource) == json_value(resource), stem
    # a Bundle is read entry by entry (the importer's way): each entry's resource is the JSON's
    for stem in ("search", "history"):
        found = [f.resource for f in read_resources(written.folder / f"{stem}.xml")]
        assert json_value(found) == json_value([e["resource"] for e in written.others[stem]["entry"]])


def test_fhir_js_agrees_both_ways(written: Written, fhir_js: Path) -> None:
    """FHIR.js's JSON of our XML is our JSON; its XML of our JSON is our XML, element order included."""
    everything = {**written.resources, **written.others}
    jobs = []
    for stem, resource in everything.items():
        (written.folder / f"{stem}.json").write_bytes(orjson.dumps(resource))
        jobs.append(("xmlToJson", written.folder / f"{stem}.xml", written.folder / f"{stem}.js.json"))
        jobs.append(("jsonToXml", written.folder / f"{stem}.json", written.folder / f"{stem}.js.xml"))
    fhirjs.convert(fhir_js, jobs)
    ours_json = {stem: _without_time(r) for stem, r in everything.items()}
    for stem, resource in ours_json.items():
        theirs = json.loads((written.folder / f"{stem}.js.json").read_text("utf-8"), parse_float=Decimal)
        assert json_value(_without_time(theirs)) == json_value(resource), stem
        assert _canonical(written.folder / f"{stem}.js.xml") == _canonical(written.folder / f"{stem}.xml"), (
            stem
        )


def _canonical(path: Path) -> bytes:
    """Canonical XML (C14N) without the whitespace between elements, and without Bundle.meta (its
    lastUpdated is the moment of answering, written before our JSON was asked for)."""
    root = etree.fromstring(
        path.read_bytes(), etree.XMLParser(remove_blank_text=True, resolve_entities=False)
    )
    if root.tag == F + "Bundle":
        for meta in root.findall(F + "meta"):
            root.remove(meta)
    return etree.tostring(root, method="c14n")


def test_a_packaging_level_has_its_elements_in_r4_order(api: TestClient, fhir_js: Path) -> None:
    """Certican's package: its R4 packageItem (a backbone) holds its elements in the order of R4's
    definition of MedicinalProductPackaged.packageItem, as FHIR.js's definitions list them."""
    root = etree.fromstring(_xml(api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}", Accept="application/fhir+xml"))
    [item] = root.findall(F + "packageItem")
    names = [etree.QName(child).localname for child in item]
    assert names == ["extension"] * 9 + ["identifier", "type", "quantity"]
    types = json.loads((fhir_js / "profiles" / "types.json").read_text("utf-8"))
    [backbone] = [p for p in types[MPP]["_properties"] if p["_name"] == "packageItem"]
    order = [p["_name"] for p in backbone["_properties"]]
    positions = [order.index(name) for name in names]
    assert positions == sorted(positions)
    assert [etree.QName(child).localname for child in root][:4] == ["id", "meta", "extension", "extension"]


def test_a_search_answers_an_xml_bundle(api: TestClient) -> None:
    bundle = etree.fromstring(
        _xml(api, f"{R4}/{MPP}?identifier=014884&_total=accurate", Accept="application/fhir+xml")
    )
    assert bundle.tag == F + "Bundle"
    assert bundle.find(F + "type").get("value") == "searchset"
    assert bundle.find(F + "total").get("value") == "1"
    [entry] = bundle.findall(F + "entry")
    assert entry.find(F + "fullUrl").get("value") == f"http://testserver{R4}/{MPP}/{CERTICAN_PACKAGE}"
    assert entry.find(f"{F}resource/{F}{MPP}/{F}id").get("value") == CERTICAN_PACKAGE
    assert entry.find(f"{F}search/{F}mode").get("value") == "match"
    assert [etree.QName(c).localname for c in entry] == ["fullUrl", "resource", "search"]
    links = {
        link.find(F + "relation").get("value"): link.find(F + "url").get("value")
        for link in bundle.findall(F + "link")
    }
    assert links == dict.fromkeys(
        ("self", "first"),
        f"http://testserver{R4}/{MPP}?identifier=014884&_total=accurate&_count=20&_offset=0&_snapshot=1",
    )
    # the same on the H-resept view, whose search adds its filter (the links do not repeat it)
    hresept = etree.fromstring(_xml(api, f"{R4}-hresept/{MPP}?identifier=014884&_format=xml"))
    assert hresept.find(f"{F}entry/{F}resource/{F}{MPP}/{F}id").get("value") == CERTICAN_PACKAGE
    assert hresept.find(f"{F}link/{F}url").get("value") == (
        f"http://testserver{R4}-hresept/{MPP}?identifier=014884&_format=xml&_count=20&_offset=0&_snapshot=1"
    )


def test_history_vread_and_pretty_xml(api: TestClient) -> None:
    read = _xml(api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}?_format=xml")
    assert _xml(api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}/_history/1?_format=xml") == read
    history = etree.fromstring(
        _xml(api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}/_history?_format=application/fhir%2Bxml")
    )
    assert history.find(F + "type").get("value") == "history"
    assert history.find(f"{F}entry/{F}request/{F}url").get("value") == f"{MPP}/{CERTICAN_PACKAGE}"
    pretty = _xml(api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}?_format=xml&_pretty=true")
    assert pretty.splitlines()[1:3] == [
        f'<{MPP} xmlns="{FHIR_NS}">'.encode(),
        f'  <id value="{CERTICAN_PACKAGE}"/>'.encode(),
    ]
    assert _canonical_bytes(pretty) == _canonical_bytes(read)


def _canonical_bytes(raw: bytes) -> bytes:
    return etree.tostring(etree.fromstring(raw, etree.XMLParser(remove_blank_text=True)), method="c14n")


def test_the_capability_statements_name_both_formats(written: Written) -> None:
    for stem in ("metadata", "hresept-metadata"):
        root = etree.fromstring((written.folder / f"{stem}.xml").read_bytes())
        assert [f.get("value") for f in root.findall(F + "format")] == [
            "application/fhir+json",
            "application/fhir+xml",
        ]
        assert root.find(F + "fhirVersion").get("value") == "4.0.1"


def test_an_error_is_an_r4_outcome_in_xml(api: TestClient) -> None:
    body = _xml(api, f"{R4}/{MPP}/nope", 404, Accept="application/fhir+xml")
    assert body == (
        b'<?xml version="1.0" encoding="UTF-8"?><OperationOutcome xmlns="http://hl7.org/fhir"><issue>'
        b'<severity value="error"/><code value="not-found"/>'
        b'<diagnostics value="MedicinalProductPackaged/nope is not known"/></issue></OperationOutcome>'
    )
    r5_only = etree.fromstring(_xml(api, f"{R4}/Basic/x?_format=xml", 404))
    assert r5_only.find(f"{F}issue/{F}diagnostics").get("value").startswith("'Basic' is not served as R4")
    wrong_version = _xml(
        api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}", 406, Accept="application/fhir+xml; fhirVersion=5.0"
    )
    assert b"answers in FHIR R4 (4.0); R5 is at /fhir" in wrong_version


@pytest.mark.parametrize(
    ("query", "accept"),
    [("?_format=ttl", None), ("?_format=text/turtle", None), ("", "text/turtle")],
    ids=["_format=ttl", "_format=text/turtle", "Accept: text/turtle"],
)
def test_a_format_not_served_is_a_406_as_on_the_r5_api(
    api: TestClient, query: str, accept: str | None
) -> None:
    headers = {"Accept": accept} if accept else {}
    r4 = api.get(f"{R4}/{MPP}/{CERTICAN_PACKAGE}{query}", headers=headers)
    r5 = api.get(f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}{query}", headers=headers)
    assert (r4.status_code, r4.headers["content-type"]) == (406, "application/fhir+json; charset=utf-8")
    assert r4.json() == r5.json()
    assert r4.json()["issue"][0]["code"] == "not-supported"


def test_fhir_version_4_in_xml_on_the_r5_api_is_the_r4_read(api: TestClient) -> None:
    accept = "application/fhir+xml; fhirVersion=4.0"
    answer = api.get(f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}", headers={"Accept": accept})
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/fhir+xml; fhirVersion=4.0; charset=utf-8"
    assert answer.content == _xml(api, f"{R4}/{MPP}/{CERTICAN_PACKAGE}?_format=xml")
    assert answer.headers["etag"] == 'W/"1"'
    missing = api.get("/fhir/PackagedProductDefinition/nope", headers={"Accept": accept})
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/fhir+xml; charset=utf-8"
    assert b"<OperationOutcome" in missing.content


# -- the writer's R4 definitions, without a server -----------------------------------------------------


def test_the_r4_writer_knows_r4_and_refuses_r5_and_the_other_way_round() -> None:
    with pytest.raises(FhirXmlError) as r5_only:
        json_to_xml({"resourceType": "PackagedProductDefinition"}, version="4.0")
    assert str(r5_only.value) == (
        "PackagedProductDefinition: 'PackagedProductDefinition' is not a FHIR R4 resource type"
    )
    with pytest.raises(FhirXmlError) as r4_only:
        json_to_xml({"resourceType": MPP})
    assert str(r4_only.value) == f"{MPP}: '{MPP}' is not a FHIR R5 resource type"
    with pytest.raises(FhirXmlError) as unknown:
        json_to_xml({"resourceType": MPP, "packageItem": [{"packaging": {}}]}, version="4.0")
    assert str(unknown.value) == (
        "MedicinalProductPackaged.packageItem[0].packaging: unknown element 'packaging' in "
        "MedicinalProductPackaged.packageItem"
    )
    with pytest.raises(ValueError, match="FHIR version '3.0' has no XML writer here"):
        json_to_xml({"resourceType": MPP}, version="3.0")


def test_r4_primitive_extensions_and_contained_resources_read_back(tmp_path: Path) -> None:
    """`_x` beside a single and a repeating primitive, a contained R4 resource, a narrative:
    written by the R4 definitions, read back by the SAFEST reader to the same JSON."""
    resource = {
        "resourceType": MPP,
        "id": "p1",
        "meta": {"profile": ["http://a", None], "_profile": [None, {"id": "p2"}]},
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Eske</p></div>'},
        "contained": [{"resourceType": "MedicinalProduct", "id": "mp", "domain": {"code": "100000000012"}}],
        "description": "Eske",
        "_description": {"extension": [{"url": "http://x/lang", "valueCode": "nb"}]},
        "packageItem": [
            {
                "id": "i1",
                "quantity": {"value": 1.5},
                "type": {"text": "Eske"},
                "packageItem": [{"type": {"text": "Brett"}, "quantity": {"value": 10}}],
            }
        ],
    }
    (tmp_path / "p.xml").write_bytes(json_to_xml(resource, version="4.0"))
    [found] = list(read_resources(tmp_path / "p.xml"))
    assert json_value(found.resource) == json_value(resource)
    root = etree.fromstring((tmp_path / "p.xml").read_bytes())
    assert [etree.QName(c).localname for c in root] == [
        "id",
        "meta",
        "text",
        "contained",
        "description",
        "packageItem",
    ]
    assert [etree.QName(c).localname for c in root.find(F + "packageItem")] == [
        "type",
        "quantity",
        "packageItem",
    ]
