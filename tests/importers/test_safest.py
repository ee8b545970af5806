"""SAFEST/IDMP data imported beside FEST: one national resource where both describe the same thing.

The planted delivery (safest_data/planted.json) describes two brands, two packages, three substances
and two ingredients of the real 2017 extract, linked by their FEST ids and a varenr, plus one product
FEST does not have. It disagrees with FEST on purpose in every element the reconciliation compares
that the extract lets it (PLANTED_DISAGREEMENTS), and once more where SAFEST's value would replace
FEST's in an element nobody compares (an Ingredient's one identifier). Other values only look
different and agree: Certican's dose form (EDQM 10121000 against FEST 7448 code 5, by our
ConceptMap) and package type (EDQM Blister against 7449 Blisterpakning), its GTIN sent as 14 digits
with a leading zero beside a second, manufacturer's GTIN, its strength with a denominator FEST does
not give; Sevofluran's package name in other case and spacing, its pack size 250.0 mL against FEST's
250 ml (7452), its marketing start as a dateTime, its FEST ids under the Nordic ePI systems, its
strength 100.0 against 100, its substance named by FEST's English name.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir.resources import get_fhir_model_class
from sqlalchemy import select
from sqlalchemy.engine import Engine

from grunndata.errors import DeliveryError
from grunndata.exporters.m30 import export_m30
from grunndata.fhir import SERVED_TYPES
from grunndata.importers.fest import import_fest
from grunndata.importers.safest import import_safest
from grunndata.server import create_app
from grunndata.store import connect
from grunndata.store.models import Release, ReleaseEntry, Resource
from grunndata.store.releases import list_releases
from grunndata.translators.reconciliation import COMPARED
from tests.conftest import REAL_FEST, SHARED, require
from tests.exporters.trees import differences
from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE, write_followup

DATA = Path(__file__).parent / "safest_data"
PLANTED = DATA / "planted.json"
R4_BUNDLE = Path(__file__).parents[1] / "translators" / "safest_r4" / "Bundle-paracet.json"
R5_EXAMPLES = SHARED / "data" / "fhir-r5-idmp-examples"
SEVOFLURAN_BRAND = "67523ACD-85A3-4BAA-A146-DB5E41073BD6"
SEVOFLURAN_PACKAGE = "C5C20BFF-1FD1-4DAF-8F90-75579805AAFC"
MPD, PPD = "MedicinalProductDefinition", "PackagedProductDefinition"
ING, SD = "Ingredient", "SubstanceDefinition"


def served(engine: Engine) -> dict[tuple[str, str], dict[str, Any]]:
    """Every FHIR resource the active releases serve, as stored."""
    R, M, REL = Resource.__table__, ReleaseEntry.__table__, Release.__table__  # type: ignore[attr-defined]
    with engine.connect() as conn:
        rows = conn.execute(
            select(R.c.type, R.c.id, R.c.data)
            .select_from(R.join(M, M.c.resource_pk == R.c.pk).join(REL, REL.c.id == M.c.release_id))
            .where(REL.c.status == "active", R.c.type.in_(SERVED_TYPES))
        )
        return {(t, i): orjson.loads(d) for t, i, d in rows}


@pytest.fixture
def with_safest(engine: Engine) -> Engine:
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, PLANTED)
    return engine


CERTICAN_INGREDIENT, SEVOFLURAN_INGREDIENT = f"{CERTICAN_BRAND}-1", f"{SEVOFLURAN_BRAND}-1"
KANDESARTAN = "6C1FB8B9-402F-421A-B587-80765A77BD89"
R7421, R7448 = "urn:oid:2.16.578.1.12.4.1.1.7421", "urn:oid:2.16.578.1.12.4.1.1.7448"
PLANTED_DISAGREEMENTS = [
    (
        f"{MPD}/{CERTICAN_BRAND}",
        "name",
        "Certican Disperg tab 0,1 mg",
        "Certican 0,1 mg dispergerbar tablett",
    ),
    (f"{ING}/{CERTICAN_INGREDIENT}", "strength", "0.1 (mg)", "0.25 (mg)"),
    (
        f"{ING}/{CERTICAN_INGREDIENT}",
        "identifier",
        '{"system":"https://grunndata.no/fhir/NamingSystem/festVirkestoffMedStyrke",'
        '"value":"ID_85C16063-FEAE-401D-8631-67C2407E5730"}',
        '{"system":"http://legemiddelverket.no/fhir/SAFEST/MedicinalProductIngredient",'
        '"value":"sf-certican-everolimus"}',
    ),
    (f"{MPD}/{SEVOFLURAN_BRAND}", "atc", "N01AB08 (Sevofluran)", "N01AB99"),
    (
        f"{MPD}/{SEVOFLURAN_BRAND}",
        "dose-form",  # FEST-made: EDQM's equivalent beside FEST's code (translators/shape.py)
        f"http://standardterms.edqm.eu|11117000 (Inhalation vapour, liquid), {R7448}|97 (Væske til inhalasjonsdamp)",
        "https://mpd.noma.no/codesystem/pharmaceutical-dose-form|10219000 (Tablet)",
    ),
    (
        f"{MPD}/{SEVOFLURAN_BRAND}",
        "legal-status",
        f"{R7421}|C (Reseptgruppe C)",
        f"{R7421}|A (Reseptgruppe A)",
    ),
    (
        f"{ING}/{SEVOFLURAN_INGREDIENT}",
        "substance",
        "SubstanceDefinition/B41D91B5-C4A2-45B0-AB2F-B6B6A416F850",
        "SubstanceDefinition/82BF10B1-2FF0-4F26-8392-1C74748EC9A2",
    ),
    (
        f"{PPD}/{CERTICAN_PACKAGE}",
        "name",
        "Certican Disperg tab 0,1 mg",
        "Certican 0,1 mg dispergerbar tablett, 60 stk",
    ),
    (f"{PPD}/{CERTICAN_PACKAGE}", "pack-size", "60 (stykk)", "50 (tablet)"),
    (f"{PPD}/{CERTICAN_PACKAGE}", "legal-status", f"{R7421}|C (Reseptgruppe C)", f"{R7421}|F (Reseptfri)"),
    (f"{PPD}/{CERTICAN_PACKAGE}", "marketing-dates", "start 2004-07-15", "start 2004-08-01"),
    (
        f"{PPD}/{CERTICAN_PACKAGE}",
        "fest-id",
        f"Legemiddelpakning {CERTICAN_PACKAGE}",
        "Legemiddelpakning 00000000-0000-0000-0000-000000000000",
    ),
    (f"{PPD}/{SEVOFLURAN_PACKAGE}", "gtin", "07046260236080", "07046260236097"),
    (f"{PPD}/{SEVOFLURAN_PACKAGE}", "varenr", "023608", "023609"),
    (
        f"{PPD}/{SEVOFLURAN_PACKAGE}",
        "package-type",
        "urn:oid:2.16.578.1.12.4.1.1.7449|145 (Flaske av aluminium)",
        "http://standardterms.edqm.eu|30069000 (Vial)",
    ),
    (f"{PPD}/{SEVOFLURAN_PACKAGE}", "atc", "N01AB08 (Sevofluran)", "N01AB99"),
    (
        f"{PPD}/{SEVOFLURAN_PACKAGE}",
        "marketing-status",  # FEST-made: DMP's code beside ours (translators/shape.py)
        "http://legemiddelverket.no/fhir/CodeSystem/MarketingStatus|5 (Marketed), "
        "https://grunndata.no/fhir/CodeSystem/fest-marketing-status|markedsfort (Marketed)",
        "https://spor.ema.europa.eu/v1/lists/100000072052|100000072081 (Not marketed)",
    ),
    (f"{SD}/{KANDESARTAN}", "name", "Kandesartan | Candesartan", "Candesartan cilexetil"),
]


def test_the_reconciliation_lists_exactly_the_planted_disagreements(engine: Engine) -> None:
    import_fest(engine, require(REAL_FEST))
    result = import_safest(engine, PLANTED)
    rec = result.reconciliation
    assert rec is not None
    found = [(d["resource"], d["element"], d["fest"], d["safest"]) for d in rec["disagreements"]]
    assert sorted(found) == sorted(PLANTED_DISAGREEMENTS)
    assert rec["disagreement_count"] == 18
    assert rec["linked"] == {ING: 2, MPD: 2, PPD: 2, SD: 3}
    assert rec["idmp_only"] == {MPD: 1}
    assert rec["fest_only"][PPD] == 105 and rec["fest_only"][MPD] == 76
    assert result.types == {ING: 2, MPD: 3, PPD: 2, SD: 3}


def test_the_planted_delivery_covers_every_compared_element_the_extract_can_carry() -> None:
    planted = {(resource.split("/")[0], element) for resource, element, _, _ in PLANTED_DISAGREEMENTS}
    compared = {(row.resource, row.element) for row in COMPARED}
    # the 2017 extract has no Legemiddeldose and no strength with a denominator: unit cases cover
    # those (tests/translators/test_reconciliation.py); the identifier is SAFEST overwriting FEST
    assert compared - planted == {
        ("ManufacturedItemDefinition", "name"),
        ("ManufacturedItemDefinition", "dose-form"),
        ("ManufacturedItemDefinition", "fest-id"),
        (MPD, "fest-id"),
        (SD, "fest-id"),
        (ING, "strength-denominator"),
    }
    assert planted - compared == {(ING, "identifier")}


def test_idmp_wins_for_idmp_elements_fest_fills_the_rest_and_nothing_is_served_twice(
    with_safest: Engine,
) -> None:
    resources = served(with_safest)
    certican = resources[(MPD, CERTICAN_BRAND)]
    assert certican["name"] == [{"productName": "Certican 0,1 mg dispergerbar tablett"}]  # SAFEST's
    assert certican["combinedPharmaceuticalDoseForm"]["coding"][0]["code"] == "10121000"
    assert certican["legalStatusOfSupply"]["coding"][0]["code"] == "C"  # FEST fills what SAFEST lacks
    assert [i["value"] for i in certican["identifier"]] == [
        "ID_F2CEF840-A295-4A7A-9CCD-5873D846C3BD",  # FEST's id stays first
        "sf-certican",
    ]
    urls = [e["url"] for e in certican["extension"]]
    assert "https://grunndata.no/fhir/StructureDefinition/fest-oppforing" in urls
    package = resources[(PPD, CERTICAN_PACKAGE)]
    assert package["packageFor"] == [{"reference": f"{MPD}/{CERTICAN_BRAND}"}]  # SAFEST's id rewritten
    assert package["containedItemQuantity"][0]["value"] == 50
    # no SAFEST id is served beside its FEST twin; the product FEST lacks is served under its own
    assert not {k for k in resources if k[1].startswith("sf-") and k != (MPD, "sf-only-in-idmp")}
    assert sum(1 for t, _ in resources if t == MPD) == 79  # FEST's 78 and the new one
    ingredients = [
        r
        for (t, _), r in resources.items()
        if t == "Ingredient" and {"reference": f"{MPD}/{CERTICAN_BRAND}"} in r.get("for", [])
    ]
    assert len(ingredients) == 1 and ingredients[0]["id"] == f"{CERTICAN_BRAND}-1"


def test_every_resource_served_after_the_merge_is_valid_fhir_r5(with_safest: Engine) -> None:
    for (rtype, _), resource in served(with_safest).items():
        get_fhir_model_class(rtype).model_validate(resource)


def test_the_m30_export_still_gives_fest_as_delivered(with_safest: Engine, tmp_path: Path) -> None:
    out = tmp_path / "fest251.xml"
    result = export_m30(with_safest, out)
    assert differences(REAL_FEST, out) == []
    assert result.idmp_only == {MPD: 1}


def test_a_fest_delivery_after_safest_keeps_the_safest_data_merged(
    with_safest: Engine, tmp_path: Path
) -> None:
    followup, _ = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    result = import_fest(with_safest, followup)
    assert result.reconciliation is not None and result.reconciliation["linked"][MPD] == 2
    assert (
        served(with_safest)[(MPD, CERTICAN_BRAND)]["name"][0]["productName"]
        == "Certican 0,1 mg dispergerbar tablett"
    )
    assert [r.source for r in list_releases(with_safest)] == ["fest", "safest", "fest"]


def test_the_same_safest_delivery_twice_changes_nothing(with_safest: Engine) -> None:
    again = import_safest(with_safest, PLANTED)
    assert again.release_id is None and again.based_on == 2


def test_a_shrunken_delivery_is_refused_unless_forced(with_safest: Engine, tmp_path: Path) -> None:
    bundle = json.loads(PLANTED.read_text())
    bundle["entry"] = bundle["entry"][:1]
    cut = tmp_path / "cut.json"
    cut.write_text(json.dumps(bundle))
    with pytest.raises(DeliveryError) as refused:
        import_safest(with_safest, cut)
    assert str(refused.value) == (
        "refused: this delivery would expire 100% of the 2 Ingredient resources SAFEST gave "
        "before (more than 20%); check it is whole, or pass --force"
    )
    assert [r.status for r in list_releases(with_safest)] == ["superseded", "active", "failed"]
    assert import_safest(with_safest, cut, force=True).release_id == 4


@pytest.mark.parametrize(
    "entry,message",
    [
        (
            {"resourceType": MPD, "id": "no-name"},
            "refused: the delivery has 1 problem(s); the first: MedicinalProductDefinition/no-name is not valid FHIR R5:",
        ),
        (
            {"resourceType": MPD, "name": [{"productName": "No id"}]},
            "refused: the delivery has 1 problem(s); the first: bad.json entry 1: MedicinalProductDefinition/?: has no id; not converted",
        ),
        (
            {"resourceType": MPD, "id": CERTICAN_BRAND, "name": [{"productName": "Same id, no FEST link"}]},
            "SAFEST and FEST Legemiddelpakning",
        ),
    ],
)
def test_bad_safest_data_is_refused_and_the_active_release_stays(
    engine: Engine, tmp_path: Path, entry: dict[str, Any], message: str
) -> None:
    import_fest(engine, require(REAL_FEST))
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": entry}]})
    )
    with pytest.raises(DeliveryError) as refused:
        import_safest(engine, bad)
    if message.startswith("refused"):
        assert str(refused.value).startswith(message)
    else:
        assert str(refused.value) == (
            f"FEST LegemiddelMerkevare Id ID_{CERTICAN_BRAND} and SAFEST both make "
            f"{MPD}/{CERTICAN_BRAND}; their ids collide once made into FHIR ids"
        )
    assert [(r.source, r.status) for r in list_releases(engine)][0] == ("fest", "active")


def test_a_type_grunndata_does_not_take_from_safest_is_skipped_with_one_warning(
    engine: Engine, tmp_path: Path
) -> None:
    import_fest(engine, require(REAL_FEST))
    mixed = tmp_path / "mixed.json"
    patient = {"resourceType": "Patient", "id": "p1"}
    product = {"resourceType": MPD, "id": "only-in-safest", "name": [{"productName": "Bare i SAFEST"}]}
    mixed.write_text(
        json.dumps(
            {
                "resourceType": "Bundle",
                "type": "collection",
                "entry": [{"resource": patient}, {"resource": product}],
            }
        )
    )
    result = import_safest(engine, mixed)
    assert result.release_id == 2 and result.types == {MPD: 1}
    assert result.warnings == [
        {
            "kind": "conversion",
            "where": "mixed.json entry 1",
            "resource": "Patient/p1",
            "message": "Patient is neither a SAFEST R4 resource type nor an R5 IDMP, ePI or terminology one; skipped",
        }
    ]


@pytest.mark.parametrize(
    "content,message",
    [
        (b"", "bad.json is empty"),
        (b"{not json", "bad.json is not JSON"),
        (b"[1, 2]", "bad.json is not a FHIR resource or Bundle (a JSON object)"),
    ],
)
def test_unreadable_files_are_one_sentence(
    engine: Engine, tmp_path: Path, content: bytes, message: str
) -> None:
    bad = tmp_path / "bad.json"
    bad.write_bytes(content)
    with pytest.raises(DeliveryError) as refused:
        import_safest(engine, bad)
    assert str(refused.value).startswith(message)
    assert list_releases(engine) == []


def test_safest_xml_with_a_doctype_is_refused(engine: Engine, tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(
        '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>'
        '<MedicinalProductDefinition xmlns="http://hl7.org/fhir"><id value="x"/><name><productName value="&e;"/></name>'
        "</MedicinalProductDefinition>"
    )
    with pytest.raises(DeliveryError) as refused:
        import_safest(engine, bad)
    assert "DOCTYPE" in str(refused.value)


def test_the_r4_noma_bundle_converts_and_serves_valid_r5(engine: Engine) -> None:
    import_fest(engine, require(REAL_FEST))
    result = import_safest(engine, R4_BUNDLE)
    assert result.read == 8
    assert result.types == {
        "AdministrableProductDefinition": 1,
        "CodeSystem": 1,
        "Ingredient": 1,
        "ManufacturedItemDefinition": 1,
        MPD: 1,
        PPD: 1,
        "RegulatedAuthorization": 1,
        "SubstanceDefinition": 1,
    }
    resources = served(engine)
    paracet = resources[(MPD, "mp-paracet-500")]
    assert paracet["classification"][0]["coding"][0]["code"] == "N02BE01"
    for (rtype, _), resource in resources.items():
        get_fhir_model_class(rtype).model_validate(resource)


R5_EXAMPLES_UNSERVED = {  # (resource, path) -> what it named: resources the examples do not include
    ("Ingredient/example", "Ingredient.manufacturer.manufacturer"): "Organization/example",
    ("ManufacturedItemDefinition/example", "ManufacturedItemDefinition.manufacturer"): "Organization/example",
    (
        "MedicinalProductDefinition/equilidem-basics",
        "MedicinalProductDefinition.crossReference.product.reference",
    ): "MedicinalProductDefinition/genericEquilidonium",
    (
        "MedicinalProductDefinition/equilidem-with-ing-and-auth",
        "MedicinalProductDefinition.crossReference.product.reference",
    ): "MedicinalProductDefinition/genericEquilidonium",
    (
        "MedicinalProductDefinition/example",
        "MedicinalProductDefinition.attachedDocument",
    ): "DocumentReference/example",
    (
        "MedicinalProductDefinition/example",
        "MedicinalProductDefinition.masterFile",
    ): "DocumentReference/example",
    (
        "PackagedProductDefinition/example",
        "PackagedProductDefinition.packaging.manufacturer",
    ): "Organization/example",
    (
        "PackagedProductDefinition/example",
        "PackagedProductDefinition.packaging.packaging.manufacturer",
    ): "Organization/example",
    (
        "PackagedProductDefinition/example",
        "PackagedProductDefinition.packaging.packaging.containedItem.item.reference",
    ): "ManufacturedItemDefinition/tablet",
    (
        "PackagedProductDefinition/package-with-liquid-and-syringe",
        "PackagedProductDefinition.packageFor",
    ): "MedicinalProductDefinition/ProductThatHasThisPackType",
    (
        "RegulatedAuthorization/basic-drug-auth",
        "RegulatedAuthorization.subject",
    ): "MedicinalProductDefinition/equilidem",
    ("RegulatedAuthorization/basic-drug-auth", "RegulatedAuthorization.holder"): "Organization/EqlidrugCo",
    ("RegulatedAuthorization/basic-drug-auth", "RegulatedAuthorization.regulator"): "Organization/FDA",
    ("RegulatedAuthorization/example", "RegulatedAuthorization.holder"): "Organization/example",
    ("RegulatedAuthorization/example", "RegulatedAuthorization.regulator"): "Organization/example",
}


def test_the_r5_examples_import_forced_and_are_served_as_sent_but_for_references_to_what_they_lack(
    engine: Engine, tmp_path: Path
) -> None:
    folder = tmp_path / "examples"
    folder.mkdir()
    for path in sorted(require(R5_EXAMPLES).glob("*.json")):
        if not path.name.startswith("ConceptMap"):  # terminology, not IDMP: served from our own maps
            shutil.copy(path, folder)
    with pytest.raises(DeliveryError) as refused:  # every reference names something the folder lacks
        import_safest(engine, folder)
    assert str(refused.value) == (
        "refused: 15 of 34 references point at resources neither in the delivery nor served, more than "
        "the 1% allowed; the delivery looks cut or broken (use --force to import it anyway)"
    )
    result = import_safest(engine, folder, force=True)
    assert result.read == 17 and result.problems == []
    unserved = {(w["resource"], w["path"]): w for w in result.warnings if w["kind"] == "unserved-reference"}
    assert {
        k: w["message"].split(" points at ")[1].split(",")[0] for k, w in unserved.items()
    } == R5_EXAMPLES_UNSERVED
    assert all(
        w["message"].endswith("which is neither in the delivery nor served; left out")
        for w in unserved.values()
    )
    lacking = {resource for resource, _ in R5_EXAMPLES_UNSERVED}
    with TestClient(create_app(engine)) as client:
        for path in sorted(folder.glob("*.json")):
            original = json.loads(path.read_text())
            label = f"{original['resourceType']}/{original['id']}"
            answer = client.get(f"/fhir/{label}")
            assert answer.status_code == 200, path.name
            got = answer.json()
            got.pop("meta")
            original.pop("meta", None)
            if label in lacking:  # valid R5, naming none of what it lacks
                get_fhir_model_class(got["resourceType"]).model_validate(got)
                for (resource, _), target in R5_EXAMPLES_UNSERVED.items():
                    assert resource != label or f'"reference": "{target}"' not in json.dumps(got)
            else:
                assert got == original, path.name


def test_code_maps_are_derived_where_fest_and_safest_describe_the_same_product(with_safest: Engine) -> None:
    with TestClient(create_app(with_safest)) as client:
        observed = client.get("/fhir/ConceptMap/fest-safest-dose-form-observed").json()
        translated = client.get(
            "/fhir/ConceptMap/$translate",
            params={"system": "urn:oid:2.16.578.1.12.4.1.1.7448", "code": "97"},
        ).json()
    assert observed["group"] == [
        {
            "source": "urn:oid:2.16.578.1.12.4.1.1.7448",
            "target": "https://mpd.noma.no/codesystem/pharmaceutical-dose-form",
            "element": [
                {
                    "code": "5",
                    "display": "Dispergerbar tablett",
                    "target": [
                        {
                            "code": "10121000",
                            "display": "Dispersible tablet",
                            "relationship": "related-to",
                            "comment": "seen together on 1 product",
                            "property": [{"code": "verified", "valueBoolean": True}],
                        }
                    ],
                },
                {
                    "code": "97",
                    "display": "Væske til inhalasjonsdamp",
                    "target": [
                        {
                            "code": "10219000",
                            "display": "Tablet",
                            "relationship": "related-to",
                            "comment": "seen together on 1 product",
                            "property": [{"code": "verified", "valueBoolean": True}],
                        }
                    ],
                },
            ],
        }
    ]
    matches = [p for p in translated["parameter"] if p["name"] == "match"]
    concepts = [(m["part"][1]["valueCoding"]["system"], m["part"][1]["valueCoding"]["code"]) for m in matches]
    assert ("https://mpd.noma.no/codesystem/pharmaceutical-dose-form", "10219000") in concepts


def test_a_senders_meta_and_key_order_do_not_reach_what_is_served(engine: Engine, tmp_path: Path) -> None:
    import_fest(engine, require(REAL_FEST))
    odd = {
        "contained": [{"resourceType": "SubstanceDefinition", "id": "inner"}],
        "resourceType": "MedicinalProductDefinition",
        "meta": {
            "versionId": "99",
            "tag": [{"system": "https://grunndata.no/fhir/CodeSystem/tier", "code": "sector"}],
        },
        "id": "sf-odd",
        "name": [{"productName": "Odd order"}],
    }
    path = tmp_path / "odd.json"
    path.write_text(json.dumps(odd))
    import_safest(engine, path)
    with TestClient(create_app(engine)) as client:
        served_odd = client.get(f"/fhir/{MPD}/sf-odd")
    assert served_odd.text.count('"meta"') == 1
    body = served_odd.json()
    assert list(body)[:3] == ["resourceType", "id", "meta"]
    assert body["meta"]["versionId"] == "1"
    assert body["meta"]["tag"] == [
        {"system": "https://grunndata.no/fhir/CodeSystem/tier", "code": "national"}
    ]
    assert body["contained"] == [{"resourceType": "SubstanceDefinition", "id": "inner"}]


def test_two_safest_resources_standing_for_one_fest_entry_are_refused(engine: Engine, tmp_path: Path) -> None:
    import_fest(engine, require(REAL_FEST))
    twin = {
        "resourceType": MPD,
        "identifier": [
            {
                "system": "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare",
                "value": f"ID_{CERTICAN_BRAND}",
            }
        ],
        "name": [{"productName": "Certican"}],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": {**twin, "id": i}} for i in ("a", "b")],
    }
    path = tmp_path / "twins.json"
    path.write_text(json.dumps(bundle))
    with pytest.raises(DeliveryError) as refused:
        import_safest(engine, path)
    assert str(refused.value) == (
        f"refused: {MPD}/a and {MPD}/b both stand for the FEST-made {MPD}/{CERTICAN_BRAND}; one resource per FEST entry"
    )


def test_an_id_another_owner_used_is_refused_and_never_blocks_national_data(
    engine: Engine, tmp_path: Path
) -> None:
    from grunndata.importers.tiered import import_tiered

    import_fest(engine, require(REAL_FEST))
    shared = {
        "resourceType": PPD,
        "id": "shared-1",
        "name": "unit dose",
        "packageFor": [{"reference": f"{MPD}/{CERTICAN_BRAND}"}],
    }
    sector = tmp_path / "sector.json"
    sector.write_text(json.dumps(shared))
    import_tiered(engine, sector, tier="sector", owner="hospital-a")
    empty_csv = tmp_path / "other.csv"
    empty_csv.write_text("varenr;merknad\n014884;x\n")
    import_tiered(engine, empty_csv, tier="sector", owner="hospital-a")  # hospital A withdraws shared-1
    with pytest.raises(DeliveryError) as refused:
        import_tiered(engine, sector, tier="sector", owner="hospital-b")
    assert "PackagedProductDefinition/shared-1 is an id hospital-a's sector data has used" in str(
        refused.value
    )
    national = tmp_path / "safest.json"
    national.write_text(json.dumps({**shared, "name": "from SAFEST"}))
    assert import_safest(engine, national).release_id is not None  # no crash on the stored version 1
    with TestClient(create_app(engine)) as client:
        assert client.get(f"/fhir/{PPD}/shared-1").json()["name"] == "from SAFEST"


# -- text no FHIR string or XML can hold: refused with file, line or entry, and element ---------------

UNFIT = "which no FHIR string or XML document can hold"
NAME = "MedicinalProductDefinition.name[0].productName"


def _mpd(rid: str, name: str) -> bytes:
    """A resource as JSON text, with `name` written into it as it stands (escapes and all)."""
    return b'{"resourceType": "MedicinalProductDefinition", "id": "%s", "name": [{"productName": "%s"}]}' % (
        rid.encode(),
        name.encode("utf-8", "surrogatepass"),
    )


def _mpd_xml(name: bytes, root: str = MPD) -> bytes:
    return (
        b'<%s xmlns="http://hl7.org/fhir">\n  <id value="a"/>\n  <name>\n    <productName value="%s"/>\n'
        b"  </name>\n</%s>\n" % (root.encode(), name, root.encode())
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bundle.json",
            b'{"resourceType": "Bundle", "type": "collection", "entry": [{"resource": %s}, {"resource": %s}]}'
            % (_mpd("a", "fine"), _mpd("b", "A\\u0000B")),
            f"bundle.json entry 2: {NAME} holds U+0000 (a control character), {UNFIT}",
        ),
        (
            "control.ndjson",
            _mpd("a", "fine") + b"\n" + _mpd("b", "A\\u001bB") + b"\n",
            f"control.ndjson line 2: {NAME} holds U+001B (a control character), {UNFIT}",
        ),
        (
            "surrogate.json",
            _mpd("a", "A\\ud800B"),
            f"surrogate.json: {NAME} holds U+D800 (half of a UTF-16 surrogate pair, alone), {UNFIT}",
        ),
        (
            "surrogate.ndjson",
            b"\n" + _mpd("a", "A\ud800B") + b"\n",  # as UTF-8 bytes, which orjson refuses too
            f"surrogate.ndjson line 2: {NAME} holds U+D800 (half of a UTF-16 surrogate pair, alone), {UNFIT}",
        ),
        (
            "noncharacter.json",
            _mpd("a", "A\uffffB"),
            f"noncharacter.json: {NAME} holds U+FFFF (a Unicode noncharacter), {UNFIT}",
        ),
        (
            "raw-nul.json",
            _mpd("a", "A\x00B"),  # not JSON either, but named for what it is
            f"raw-nul.json: {NAME} holds U+0000 (a control character), {UNFIT}",
        ),
        (
            "reference.xml",
            _mpd_xml(b"A&#0;B"),
            f"reference.xml line 4: {NAME} holds U+0000 (a control character), {UNFIT}",
        ),
        (
            "control.xml",
            _mpd_xml(b"A\x01B"),
            f"control.xml line 4: {NAME} holds U+0001 (a control character), {UNFIT}",
        ),
        (
            "r4.xml",
            _mpd_xml(b"A&#xFFFF;B", "MedicinalProduct"),
            f"r4.xml line 4: MedicinalProduct.name[0].productName holds U+FFFF (a Unicode noncharacter), {UNFIT}",
        ),
        (
            "surrogate.xml",
            _mpd_xml("A\ud800B".encode("utf-8", "surrogatepass")),
            f"surrogate.xml line 4: {NAME} holds U+D800 (half of a UTF-16 surrogate pair, alone), {UNFIT}",
        ),
        (
            "bundle.xml",
            b'<Bundle xmlns="http://hl7.org/fhir">\n<type value="collection"/>\n<entry><resource>\n%s'
            b"</resource></entry>\n<entry><resource>\n%s</resource></entry>\n</Bundle>"
            % (_mpd_xml(b"fine"), _mpd_xml(b"A&#x1;B").replace(b'"a"', b'"b"')),
            f"bundle.xml entry 2, line 15: {NAME} holds U+0001 (a control character), {UNFIT}",
        ),
    ],
)
def test_text_no_fhir_string_or_xml_can_hold_is_refused_with_its_place(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DeliveryError) as refused:
        import_safest(engine, path)
    assert str(refused.value) == message
    assert list_releases(engine) == []


def test_references_a_version_an_urn_or_a_missing_contained_resource_are_never_served_as_sent(
    engine: Engine, tmp_path: Path
) -> None:
    """Versions are the store's own, an urn no entry had names nothing, a local reference needs its
    contained resource: none is served as sent (found by an outside tester)."""
    product = {"resourceType": MPD, "id": "v-mpd", "name": [{"productName": "Versjonert"}]}

    def package(rid: str, reference: str) -> dict[str, Any]:
        return {"resourceType": PPD, "id": rid, "packageFor": [{"reference": reference}]}

    delivery = tmp_path / "refs.json"
    entries = [
        product,
        package("to-a-version", f"{MPD}/v-mpd/_history/7"),
        package("to-a-lost-version", f"{MPD}/nowhere/_history/1"),
        package("to-an-urn", "urn:uuid:99999999-0000-4000-8000-000000000000"),
        package("to-nothing-contained", "#nothere"),
    ]
    delivery.write_text(
        json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": e} for e in entries]}
        )
    )
    result = import_safest(engine, delivery, force=True)
    assert sorted(w["message"] for w in result.warnings if w["kind"] == "unserved-reference") == [
        f"{PPD}.packageFor points at #nothere, which is neither in the delivery nor served; left out",
        f"{PPD}.packageFor points at {MPD}/nowhere/_history/1, a version the sender numbered (the store "
        "numbers versions itself); left out",
        f"{PPD}.packageFor points at {MPD}/v-mpd/_history/7, a version the sender numbered (the store "
        f"numbers versions itself); it names {MPD}/v-mpd instead",
        f"{PPD}.packageFor points at urn:uuid:99999999-0000-4000-8000-000000000000, which is neither in the "
        "delivery nor served; left out",
    ]
    with TestClient(create_app(engine)) as client:
        served = {
            rid: client.get(f"/fhir/{PPD}/{rid}").json().get("packageFor")
            for rid in ("to-a-version", "to-a-lost-version", "to-an-urn", "to-nothing-contained")
        }
    assert served == {
        "to-a-version": [{"reference": f"{MPD}/v-mpd"}],
        "to-a-lost-version": None,
        "to-an-urn": None,
        "to-nothing-contained": None,
    }


def test_a_string_longer_than_fhir_allows_is_refused_with_its_place(engine: Engine, tmp_path: Path) -> None:
    long = tmp_path / "long.json"
    product = {"resourceType": MPD, "id": "long", "name": [{"productName": "A" * (1024 * 1024 + 1)}]}
    long.write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": product}]})
    )
    with pytest.raises(DeliveryError) as refused:
        import_safest(engine, long, force=True)
    assert str(refused.value) == (
        "long.json entry 1: MedicinalProductDefinition.name[0].productName is 1,048,577 characters long, "
        "more than the 1,048,576 a FHIR string may hold"
    )
    assert list_releases(engine) == []
