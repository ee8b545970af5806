"""FEST entries become valid FHIR R5 IDMP resources that keep every value, checked on the real extract."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from fhir.resources import get_fhir_model_class

from grunndata.fhir import (
    ATC,
    EXT_BASE,
    EXT_OPPFORING,
    NS_GTIN,
    NS_MERKEVARE,
    NS_PAKNING,
    NS_REFUSJONSGRUPPE,
    NS_VARENR,
    NS_VIRKESTOFF_MED_STYRKE,
    RESEPTGRUPPE,
)
from grunndata.m30.records import FestEntry, child
from grunndata.translators.fest_to_idmp import (
    fhir_id,
    translate,
)
from tests.translators.conftest import lookup_of, read

Resource = dict[str, Any]
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}\Z")
CERTICAN = "F2CEF840-A295-4A7A-9CCD-5873D846C3BD"
VOLVEN = "urn:oid:2.16.578.1.12.4.1.1."


def extensions(element: dict[str, Any], name: str) -> list[dict[str, Any]]:
    return [e for e in element.get("extension", ()) if e["url"] == EXT_BASE + "fest-" + name]


def sub(extension: dict[str, Any], name: str) -> dict[str, Any]:
    (found,) = [e for e in extension["extension"] if e["url"] == name]
    return found


def by_identifier(resources: list[Resource], system: str, value: str) -> Resource:
    (found,) = [
        r for r in resources if any(i["system"] == system and i["value"] == value for i in _identifiers(r))
    ]
    return found


def _identifiers(resource: Resource) -> list[dict[str, str]]:
    found = resource.get("identifier", [])
    return found if isinstance(found, list) else [found]


def references(value: Any) -> list[dict[str, Any]]:
    """Every Reference (a dict with a string `reference`, or a logical one) anywhere in `value`."""
    out = []
    if isinstance(value, dict):
        literal = isinstance(value.get("reference"), str)
        logical = isinstance(value.get("identifier"), dict) and set(value) <= {
            "type",
            "identifier",
            "display",
        }
        if literal or logical:
            out.append(value)
        for v in value.values():
            out += references(v)
    elif isinstance(value, list):
        for v in value:
            out += references(v)
    return out


# --- the whole real extract ---------------------------------------------------------------------


def test_every_resource_from_the_real_extract_is_valid_fhir_r5_with_a_unique_id(real_resources):
    counts = Counter(r["resourceType"] for r in real_resources)
    # 75 brands (each with an item and an administrable form) + 3 substance-based products, 107
    # packages, 71 substances, 55 substances with strength + 84 product ingredients, 25
    # interactions, 67 of the catalogues IDMP has no resource for (26 + 15 + 10 + 16), and each
    # brand's holder (all 75 name their Produsent)
    assert counts == {
        "RegulatedAuthorization": 75,
        "MedicinalProductDefinition": 78,
        "ManufacturedItemDefinition": 75,
        "AdministrableProductDefinition": 75,
        "PackagedProductDefinition": 107,
        "SubstanceDefinition": 71,
        "Ingredient": 55 + 84,
        "ClinicalUseDefinition": 25,
        "Basic": 67,
    }
    for resource in real_resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        assert FHIR_ID.match(resource["id"]), resource["id"]
        assert "meta" not in resource
    keys = Counter((r["resourceType"], r["id"]) for r in real_resources)
    assert [k for k, n in keys.items() if n > 1] == []


def test_every_reference_points_at_a_resource_made_from_the_same_extract(real_resources):
    made = {f"{r['resourceType']}/{r['id']}" for r in real_resources}
    group_ids = {
        i["value"] for r in real_resources for i in _identifiers(r) if i["system"] == NS_REFUSJONSGRUPPE
    }
    literal = logical = local = 0
    for resource in real_resources:
        contained = {f"#{c['id']}" for c in resource.get("contained", [])}
        for ref in references(resource):
            if str(ref.get("reference", "")).startswith("#"):
                local += 1
                assert ref["reference"] in contained, ref
            elif "reference" in ref:
                literal += 1
                assert ref["reference"] in made, ref
            elif ref["identifier"]["system"] == NS_REFUSJONSGRUPPE:
                logical += 1
                assert ref["identifier"]["value"] in group_ids, ref
    # + a brand Ingredient's item and administrable form (162), a holder's product (75); its holder
    # is the Organization its authorization contains (75)
    assert (literal, local, logical) == (1052 + 162 + 75, 75, 95)


def test_translation_is_deterministic_and_every_key_comes_in_fhir_element_order(real_entries):
    lookup = lookup_of(real_entries)
    for entry in real_entries:
        first, second = translate(entry, lookup), translate(entry, lookup)
        assert json.dumps(first) == json.dumps(second)
        for resource in first:
            # the FHIR model writes elements in FHIR order: the same text means the same order at
            # every depth, and values the model leaves as they are
            model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
            ours = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
            assert ours == model.model_dump_json(by_alias=True, exclude_none=True)


def test_each_primary_resource_carries_the_oppf_envelope(real_entries):
    lookup = lookup_of(real_entries)
    for entry in real_entries:
        primary = translate(entry, lookup)[0]
        envelope = primary["extension"][0]
        assert envelope["url"] == EXT_OPPFORING
        assert sub(envelope, "Id")["valueString"] == entry.oppf_id
        assert sub(envelope, "Tidspunkt")["valueDateTime"][:19] == entry.tidspunkt
        assert sub(envelope, "Status")["valueCoding"]["code"] == entry.status == "A"


# --- exact values -------------------------------------------------------------------------------


def test_the_certican_package_with_varenr_014884(real_resources):
    ppd = by_identifier(real_resources, NS_VARENR, "014884")
    assert ppd["resourceType"] == "PackagedProductDefinition"
    assert ppd["id"] == "CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A"
    assert ppd["name"] == "Certican Disperg tab 0,1 mg"
    assert ppd["identifier"] == [
        {"system": NS_PAKNING, "value": "ID_CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A"},
        {"system": NS_VARENR, "value": "014884"},
        {"system": NS_GTIN, "value": "7046260148840"},
    ]
    assert ppd["packageFor"] == [{"reference": f"MedicinalProductDefinition/{CERTICAN}"}]
    (atc,) = extensions(ppd, "Atc")
    assert atc["valueCoding"] == {"system": ATC, "code": "L04AA18", "display": "Everolimus"}
    assert ppd["containedItemQuantity"] == [
        {"value": 60, "unit": "stykk", "system": VOLVEN + "7452", "code": "stk"}
    ]
    packaging = ppd["packaging"]
    assert packaging["type"] == {
        "coding": [{"system": VOLVEN + "7449", "code": "169", "display": "Blisterpakning"}]
    }
    assert packaging["identifier"] == [{"system": NS_GTIN, "value": "7046260148840"}]
    assert packaging["containedItem"] == [
        {
            "item": {"reference": {"reference": f"ManufacturedItemDefinition/{CERTICAN}"}},
            "amount": ppd["containedItemQuantity"][0],
        }
    ]
    assert [e["valueString"] for e in extensions(packaging, "Pakningsstr")] == ["60"]
    assert [e["valueQuantity"] for e in extensions(packaging, "DDD")] == [{"value": 1.5, "unit": "mg"}]
    assert ppd["legalStatusOfSupply"] == [
        {"code": {"coding": [{"system": RESEPTGRUPPE, "code": "C", "display": "Reseptgruppe C"}]}}
    ]
    assert ppd["marketingStatus"][0]["dateRange"] == {"start": "2004-07-15"}
    assert [
        (
            sub(p, "Type")["valueCoding"]["display"],
            sub(p, "Pris")["valueMoney"],
            sub(p, "GyldigFraDato")["valueDate"],
        )
        for p in extensions(ppd, "PrisVare")
    ] == [
        ("Refusjonspris", {"value": 688.8, "currency": "NOK"}, "2017-01-01"),
        ("AUP", {"value": 688.8, "currency": "NOK"}, "2017-01-01"),
        ("AIP", {"value": 505.15, "currency": "NOK"}, "2016-12-01"),
    ]
    (refusjon,) = extensions(ppd, "Refusjon")
    assert sub(refusjon, "RefRefusjonsgruppe")["valueReference"] == {
        "type": "Basic",
        "identifier": {"system": NS_REFUSJONSGRUPPE, "value": "ID_F8FA8DFB-1CF5-4909-9423-EAD14A8EAB3E"},
    }
    hjemmel = by_identifier(real_resources, NS_REFUSJONSGRUPPE, "ID_F8FA8DFB-1CF5-4909-9423-EAD14A8EAB3E")
    assert hjemmel["resourceType"] == "Basic"
    assert hjemmel["code"]["coding"][0]["code"] == "Refusjonshjemmel"
    envelope = ppd["extension"][0]
    assert sub(envelope, "Id")["valueString"] == "ID_7B25F318-5F0E-4D95-BAD3-5722F6528424"
    assert sub(envelope, "Tidspunkt")["valueDateTime"] == "2017-01-01T00:54:56+01:00"


def test_the_certican_brand_its_item_form_and_ingredient(by_id):
    mpd = by_id[("MedicinalProductDefinition", CERTICAN)]
    assert mpd["identifier"] == [{"system": NS_MERKEVARE, "value": f"ID_{CERTICAN}"}]
    assert mpd["name"] == [
        {
            "productName": "Certican Disperg tab 0,1 mg",
            "part": [
                {
                    "part": "Certican",
                    "type": {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/medicinal-product-name-part-type",
                                "code": "InventedNamePart",
                                "display": "Invented name part",
                            },
                            {  # SPOR's beside HL7's, as SAFEST types it (translators/shape.py)
                                "system": "https://spor.ema.europa.eu/rmswi/#/lists/220000000000",
                                "code": "220000000002",
                                "display": "Invented name part",
                            },
                        ]
                    },
                }
            ],
        }
    ]
    assert mpd["classification"] == [
        {"coding": [{"system": ATC, "code": "L04AA18", "display": "Everolimus"}]}
    ]
    assert mpd["legalStatusOfSupply"]["coding"][0]["code"] == "C"
    dose_form = {  # EDQM's beside FEST's: the map calls them equivalent
        "coding": [
            {"system": VOLVEN + "7448", "code": "5", "display": "Dispergerbar tablett"},
            {"system": "http://standardterms.edqm.eu", "code": "10121000", "display": "Dispersible tablet"},
        ],
        "text": "Dispergerbar tablett",
    }
    assert mpd["combinedPharmaceuticalDoseForm"] == dose_form
    assert mpd["comprisedOf"] == [{"reference": f"ManufacturedItemDefinition/{CERTICAN}"}]
    assert by_id[("ManufacturedItemDefinition", CERTICAN)]["manufacturedDoseForm"] == dose_form
    apd = by_id[("AdministrableProductDefinition", CERTICAN)]
    assert apd["formOf"] == [{"reference": f"MedicinalProductDefinition/{CERTICAN}"}]
    assert apd["routeOfAdministration"] == [
        {"code": {"coding": [{"system": VOLVEN + "7477", "code": "53", "display": "Oral bruk"}]}}
    ]
    assert [e["valueCoding"]["display"] for e in extensions(apd, "ForhandsregelInntak")] == [
        "Tas til måltid",
        "Tas utenom måltid",
    ]
    ingredients = [
        r
        for (t, _), r in by_id.items()
        if t == "Ingredient"
        and r.get("for")
        == [  # the product, and its item and form as SAFEST-made Ingredients name them
            {"reference": f"AdministrableProductDefinition/{CERTICAN}"},
            {"reference": f"ManufacturedItemDefinition/{CERTICAN}"},
            {"reference": f"MedicinalProductDefinition/{CERTICAN}"},
        ]
    ]
    assert len(ingredients) == 1
    (ingredient,) = ingredients
    assert ingredient["identifier"] == {
        "system": NS_VIRKESTOFF_MED_STYRKE,
        "value": "ID_85C16063-FEAE-401D-8631-67C2407E5730",
    }
    assert ingredient["role"]["coding"][0]["code"] == "100000072072"
    substance = ingredient["substance"]
    assert substance["code"] == {
        "reference": {"reference": "SubstanceDefinition/82BF10B1-2FF0-4F26-8392-1C74748EC9A2"}
    }
    assert substance["strength"][0]["presentationRatio"] == {  # 0.1 mg per tablet: over one
        "numerator": {"value": 0.1, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"},
        "denominator": {"value": 1, "system": "http://unitsofmeasure.org", "code": "1"},
    }
    everolimus = by_id[("SubstanceDefinition", "82BF10B1-2FF0-4F26-8392-1C74748EC9A2")]
    assert [n["name"] for n in everolimus["name"]] == ["Everolimus", "Everolimus"]
    # the FEST substance with strength is an Ingredient of its own, shared, without `for`
    shared = by_id[("Ingredient", "85C16063-FEAE-401D-8631-67C2407E5730")]
    assert "for" not in shared and shared["substance"] == substance
    (operator,) = extensions(shared["substance"]["strength"][0], "Styrkeoperator")
    assert operator["valueCoding"] == {"system": VOLVEN + "7445", "code": "L", "display": "Lik"}


def test_a_strength_per_unit_is_a_ratio(real_resources):
    ratios = [
        r["substance"]["strength"][0]["presentationRatio"]
        for r in real_resources
        if r["resourceType"] == "Ingredient"
        and "for" not in r
        and "presentationRatio" in r["substance"]["strength"][0]
    ]
    assert len(ratios) == 55  # every VirkestoffMedStyrke: 19 + 2 with a StyrkeNevner, the rest over one
    assert all(set(r) == {"numerator", "denominator"} for r in ratios)
    assert (
        sum(
            r["denominator"] != {"value": 1, "system": "http://unitsofmeasure.org", "code": "1"}
            for r in ratios
        )
        == 21
    )


def test_a_substance_links_to_its_salt(by_id):
    metformin = by_id[("SubstanceDefinition", "C30F33D0-AE52-4C79-9552-63B81880A1D3")]
    assert metformin["name"][0] == {
        "name": "Metformin",
        "preferred": True,
        "language": [{"coding": [{"system": "urn:ietf:bcp:47", "code": "nb"}]}],
    }
    (salt,) = metformin["relationship"]
    assert salt["substanceDefinitionReference"] == {
        "reference": "SubstanceDefinition/81F5B635-B5C6-421A-8263-54FB776CB0FD"
    }
    assert salt["type"]["coding"][0]["code"] == "RefVirkestoff"
    target = by_id[("SubstanceDefinition", "81F5B635-B5C6-421A-8263-54FB776CB0FD")]
    assert target["name"][0]["name"] == "Metforminhydroklorid"


def test_an_interaction_between_citalopram_and_moklobemid(by_id):
    cud = by_id[("ClinicalUseDefinition", "092F012E-E96B-4132-A049-9F8A0127D9FF")]
    assert cud["type"] == "interaction"
    interaction = cud["interaction"]
    assert [
        (
            sub(i["extension"][0], "gruppe")["valueInteger"],
            i["itemCodeableConcept"]["coding"][0]["code"],
            i["itemCodeableConcept"]["text"],
        )
        for i in interaction["interactant"]
    ] == [(1, "N06AB04", "Citalopram"), (2, "N06AG02", "Moklobemid")]
    assert all(i["itemCodeableConcept"]["coding"][0]["system"] == ATC for i in interaction["interactant"])
    assert interaction["effect"]["concept"]["text"].startswith("Økt risiko for serotonergt syndrom")
    relevans, handtering = interaction["management"]
    assert relevans["coding"][0]["display"] == "Bør unngås"
    assert handtering["text"].startswith("Dosetilpasning: Kombinasjonen er kontraindisert")
    assert handtering["text"].endswith("serotonerg aktivitet\n")  # FEST text kept verbatim
    assert len(extensions(cud, "Referanse")) == 5


def test_a_package_names_its_substitution_group(real_resources, by_id):
    with_group = [
        r
        for r in real_resources
        if r["resourceType"] == "PackagedProductDefinition" and extensions(r, "PakningByttegruppe")
    ]
    assert with_group
    for ppd in with_group:
        (group,) = extensions(ppd, "PakningByttegruppe")
        reference = sub(group, "RefByttegruppe")["valueReference"]["reference"]
        basic = by_id[tuple(reference.split("/"))]  # type: ignore[index]
        assert basic["code"]["coding"][0]["code"] == "Byttegruppe"
        assert re.fullmatch(r"\d{6}", sub_value(basic, "Kode")["code"])


def sub_value(resource: Resource, name: str) -> dict[str, Any]:
    (found,) = extensions(resource, name)
    return found["valueCoding"]  # type: ignore[no-any-return]


# --- a Kodeverk, and the catalogues the real extract lacks ----------------------------------------

KODEVERK = """<?xml version="1.0" encoding="utf-8"?>
<FEST xmlns="http://www.kith.no/xmlstds/eresept/m30/2014-12-01"><HentetDato>2017-04-12T10:00:00</HentetDato>
<KatKodeverk><OppfKodeverk><Id>ID_5734CB74-44B9-42EC-86C1-5035D40A119A</Id><Tidspunkt>2016-07-01T12:00:00</Tidspunkt>
<Status V="A" DN="Aktiv oppføring"/>
<Info><Id>2.16.578.1.12.4.1.1.7448</Id><Betegnelse>Legemiddelform</Betegnelse><Kortnavn>Legemiddelform</Kortnavn>
<AnsvarligUtgiver>Statens legemiddelverk</AnsvarligUtgiver><Merknad>Former i FEST</Merknad></Info>
<Element><Id>ID_A</Id><Kode>1</Kode><Term><Term>Tabletter</Term><BeskrivelseTerm>Faste former</BeskrivelseTerm></Term></Element>
<Element><Id>ID_B</Id><ParentId>ID_A</ParentId><Kode>53</Kode><Term><Term>Tablett</Term><Sprak V="NOB" DN="Bokmål"/></Term>
<Term><Term>Tablet</Term><Sprak V="ENG" DN="Engelsk"/></Term></Element>
<Element><Id>ID_C</Id><ParentId>ID_A</ParentId><Kode>5</Kode><Term><Term>Dispergerbar tablett</Term></Term></Element>
<Element><Id>ID_D</Id><ParentId>ID_X</ParentId><Kode>99</Kode></Element>
</OppfKodeverk></KatKodeverk></FEST>
"""


def test_a_kodeverk_becomes_a_code_system(tmp_path: Path):
    path = tmp_path / "kodeverk.xml"
    path.write_text(KODEVERK, encoding="utf-8")
    (entry,) = read(path)
    (cs,) = translate(entry, {})
    get_fhir_model_class("CodeSystem").model_validate(cs)
    assert cs["id"] == "2.16.578.1.12.4.1.1.7448"
    assert cs["url"] == "urn:oid:2.16.578.1.12.4.1.1.7448"
    assert (cs["name"], cs["title"], cs["publisher"], cs["description"]) == (
        "Legemiddelform",
        "Legemiddelform",
        "Statens legemiddelverk",
        "Former i FEST",
    )
    assert cs["status"] == "active" and cs["content"] == "complete"
    assert cs["count"] == 4
    assert [(c["id"], c["code"], c.get("display")) for c in cs["concept"]] == [
        ("ID_A", "1", "Tabletter"),
        ("ID_B", "53", "Tablett"),
        ("ID_C", "5", "Dispergerbar tablett"),
        ("ID_D", "99", None),
    ]
    first, tablett, _, orphan = cs["concept"]
    assert first["definition"] == "Faste former" and "property" not in first
    assert tablett["property"] == [{"code": "parent", "valueCode": "1"}]
    assert [d["value"] for d in tablett["designation"]] == ["Tablett", "Tablet"]
    assert [extensions(d, "Sprak")[0]["valueCoding"]["code"] for d in tablett["designation"]] == [
        "NOB",
        "ENG",
    ]
    assert orphan["property"] == [{"code": "fest-ParentId", "valueString": "ID_X"}]
    assert [p["code"] for p in cs["property"]] == ["parent", "fest-ParentId"]


def test_an_expiry_notice_without_payload_makes_nothing_and_an_expired_entry_is_retired(real_entries):
    entry = next(e for e in real_entries if e.kind == "Virkestoff")
    assert translate(FestEntry(entry.catalogue, entry.oppf_id, entry.tidspunkt, "U", "Utgått", ()), {}) == []
    expired = FestEntry(
        entry.catalogue, entry.oppf_id, entry.tidspunkt, "U", "Utgått oppføring", entry.payload
    )
    (sd,) = translate(expired, {})
    assert sd["status"]["coding"][0]["code"] == "retired"
    assert sub(sd["extension"][0], "Status")["valueCoding"]["code"] == "U"


def test_a_brand_whose_substance_with_strength_is_missing_keeps_the_reference(real_entries):
    merkevare = next(e for e in real_entries if e.inner_id == f"ID_{CERTICAN}")
    resources = translate(merkevare, {})  # nothing to look up
    (ingredient,) = [r for r in resources if r["resourceType"] == "Ingredient"]
    get_fhir_model_class("Ingredient").model_validate(ingredient)
    assert ingredient["identifier"]["value"] == "ID_85C16063-FEAE-401D-8631-67C2407E5730"
    assert ingredient["substance"]["code"]["concept"]["extension"][0]["valueCode"] == "unknown"


def test_an_element_the_xsd_does_not_allow_is_refused_with_its_name(real_entries):
    entry = next(e for e in real_entries if e.kind == "Legemiddelpakning")
    payload = json.loads(json.dumps(entry.payload[0]))
    payload[3].append(["Rabatt", None, "10", None])
    odd = FestEntry(entry.catalogue, entry.oppf_id, entry.tidspunkt, "A", None, (payload,))
    with pytest.raises(ValueError, match="Legemiddelpakning cannot hold Rabatt"):
        translate(odd, {})


def test_values_fhir_cannot_hold_exactly_keep_their_fest_text(real_entries):
    entry = next(
        e
        for e in real_entries
        if e.kind == "Legemiddelpakning" and e.key.endswith("CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A")
    )
    payload = json.loads(json.dumps(entry.payload[0]))
    info = child(payload, "Pakningsinfo")
    child(info, "Mengde")[2] = "60.0"  # type: ignore[index]  # prints as 60.0: exact
    child(info, "Statistikkfaktor")[2] = "6.50"  # type: ignore[index]  # would print as 6.5
    child(info, "DDD")[1] = {"V": "1.50", "U": "mg"}  # type: ignore[index]
    child(child(payload, "Markedsforingsinfo"), "Markedsforingsdato")[2] = "2004-07-15+01:00"  # type: ignore[arg-type,index]
    changed = FestEntry(entry.catalogue, entry.oppf_id, "2017-07-01T12:00:00", "A", None, (payload,))
    (ppd,) = translate(changed, {})
    get_fhir_model_class("PackagedProductDefinition").model_validate(ppd)
    assert ppd["containedItemQuantity"][0]["value"] == 60.0
    assert extensions(ppd["packaging"], "Statistikkfaktor") == [
        {"url": EXT_BASE + "fest-Statistikkfaktor", "valueString": "6.50"}
    ]
    (ddd,) = extensions(ppd["packaging"], "DDD")
    assert ddd["valueQuantity"] == {
        "extension": [{"url": EXT_BASE + "fest-lexical", "valueString": "1.50"}],
        "value": 1.5,
        "unit": "mg",
    }
    status = ppd["marketingStatus"][0]
    # a date with a timezone is no FHIR date: it goes to an extension on the element that would hold it
    assert status["dateRange"] == {
        "extension": [{"url": EXT_BASE + "fest-Markedsforingsdato", "valueString": "2004-07-15+01:00"}]
    }
    assert (
        sub(ppd["extension"][0], "Tidspunkt")["valueDateTime"] == "2017-07-01T12:00:00+02:00"
    )  # summer time


def test_fhir_ids_from_fest_ids():
    assert fhir_id("ID_0008426A-FCA1-4CA1-9202-7D7D5B2922C2") == "0008426A-FCA1-4CA1-9202-7D7D5B2922C2"
    assert fhir_id("RID_131391") == "RID-131391"
    assert fhir_id("2.16.578.1.12.4.1.1.7448") == "2.16.578.1.12.4.1.1.7448"
    assert fhir_id("ID_" + "A" * 80) == "A" * 64


def test_fest_local_times_get_the_norwegian_offset_of_the_moment():
    from datetime import datetime, timedelta
    from zoneinfo import ZoneInfo

    from grunndata.translators.fest_to_idmp.values import oslo_datetime

    oslo = ZoneInfo("Europe/Oslo")
    for year in range(2000, 2036):
        for month in (3, 10):
            moment = datetime(year, month, 24)
            while moment < datetime(year, month + 1, 2):  # both ends of summer time, hour by half hour
                expected = moment.replace(tzinfo=oslo).isoformat()
                assert oslo_datetime(moment.isoformat()) == expected
                moment += timedelta(minutes=30)
    assert oslo_datetime("2016-10-13T16:43:16.5") == "2016-10-13T16:43:16.5+02:00"


def test_every_strength_of_the_real_extract_is_a_ratio_in_ucum_where_the_unit_is_certain(real_resources):
    """One shape with SAFEST's: no presentationQuantity; FEST's unit text kept beside UCUM's code."""
    strengths = [
        st
        for r in real_resources
        if r["resourceType"] == "Ingredient"
        for st in r["substance"].get("strength", ())
    ]
    assert len(strengths) == 139  # 84 products' Ingredients, 55 shared VirkestoffMedStyrke ones
    assert [st for st in strengths if "presentationRatio" not in st] == []
    units = Counter(
        (q.get("unit"), q.get("code"))
        for st in strengths
        for q in (st["presentationRatio"]["numerator"], st["presentationRatio"]["denominator"])
    )
    assert units == {
        ("mg", "mg"): 111,
        (None, "1"): 96,  # per one unit of presentation: the 96 that had no StyrkeNevner
        ("ml", "mL"): 25,
        ("mikrog", "ug"): 12,
        ("timer", "h"): 10,
        ("%", "%"): 6,
        ("g", "g"): 4,
        ("sprøyte", None): 4,  # a unit of presentation: no UCUM unit
        ("% w/v", None): 2,
        ("ELISA E", None): 2,
        ("E", None): 2,
        ("mill IE", "10*6.[iU]"): 2,
        ("IU", "[iU]"): 2,
    }


# --- what both sources say alike (issue 20): package levels and the holder ------------------------------

ESTRADOT, ESTRADOT_PACKAGE = "5F631888-A74D-4DF9-A642-96E753944911", "90728833-A374-471B-B39B-487A2ADF39E5"
PROPERTY = "https://grunndata.no/fhir/CodeSystem/packaging-property"


def _flag(code: str, display: str, value: bool) -> dict[str, Any]:
    return {
        "type": {"coding": [{"system": PROPERTY, "code": code, "display": display}]},
        "valueBoolean": value,
    }


def _level(level: int, display: str) -> dict[str, Any]:
    kind = {"system": PROPERTY, "code": "package-level", "display": "Package level"}
    value = {
        "system": "http://legemiddelverket.no/fhir/CodeSystem/PackageLevel",
        "code": str(level),
        "display": display,
    }
    return {"type": {"coding": [kind]}, "valueCodeableConcept": {"coding": [value]}}


def _package_entry(real_entries: list[FestEntry], key: str) -> FestEntry:
    return next(e for e in real_entries if e.kind == "Legemiddelpakning" and e.key.endswith(key))


def test_a_fest_package_is_the_retail_pack_and_no_unit_dose_its_level_counted(by_id):
    """As DMP's SAFEST examples flag their outer level (retailPack true, singleUnit false)."""
    packaging = by_id[("PackagedProductDefinition", ESTRADOT_PACKAGE)]["packaging"]
    assert packaging["property"] == [
        _flag("retail-pack", "Retail pack", True),
        _flag("unit-dose", "Unit dose", False),
        _level(1, "Primary"),  # the foliepose holds the 24 plasters themselves
    ]
    assert all(
        r["packaging"]["property"][:2]
        == [_flag("retail-pack", "Retail pack", True), _flag("unit-dose", "Unit dose", False)]
        for (rtype, _), r in by_id.items()
        if rtype == "PackagedProductDefinition"
    )


def test_a_package_of_two_products_is_a_secondary_retail_level_around_two_primary_ones(real_entries):
    entry = _package_entry(real_entries, ESTRADOT_PACKAGE)
    payload = json.loads(json.dumps(entry.payload[0]))
    info = child(payload, "Pakningsinfo")
    at = payload[3].index(info)
    payload[3].insert(at + 1, json.loads(json.dumps(info)))  # a second product in the package
    kit = FestEntry(entry.catalogue, entry.oppf_id, entry.tidspunkt, "A", None, (payload,))
    (ppd,) = translate(kit, {})
    get_fhir_model_class("PackagedProductDefinition").model_validate(ppd)
    outer = ppd["packaging"]
    assert outer["property"] == [
        _flag("retail-pack", "Retail pack", True),
        _flag("unit-dose", "Unit dose", False),
        _level(2, "Secondary"),
    ]
    assert [level["property"] for level in outer["packaging"]] == [
        [_flag("retail-pack", "Retail pack", False), _level(1, "Primary")]
    ] * 2


def test_the_produsent_is_the_holder_of_the_products_authorization(by_id):
    assert by_id[("RegulatedAuthorization", ESTRADOT)] == {
        "resourceType": "RegulatedAuthorization",
        "id": ESTRADOT,
        "contained": [{"resourceType": "Organization", "id": "holder", "name": "Novartis Norge (2)"}],
        "subject": [{"reference": f"MedicinalProductDefinition/{ESTRADOT}"}],
        "holder": {"reference": "#holder", "display": "Novartis Norge (2)"},
    }


def test_a_product_without_a_produsent_has_no_authorization(real_entries):
    entry = next(e for e in real_entries if e.kind == "LegemiddelMerkevare" and e.key.endswith(ESTRADOT))
    payload = json.loads(json.dumps(entry.payload[0]))
    info = child(payload, "ProduktInfo")
    info[3] = [c for c in info[3] if c[0] != "Produsent"]  # type: ignore[index]
    made = translate(FestEntry(entry.catalogue, entry.oppf_id, entry.tidspunkt, "A", None, (payload,)), {})
    assert "RegulatedAuthorization" not in {r["resourceType"] for r in made}
    assert len(made) > 1


def test_a_package_of_two_products_without_a_gtin_is_still_the_secondary_retail_level(real_entries):
    entry = _package_entry(real_entries, ESTRADOT_PACKAGE)
    payload = json.loads(json.dumps(entry.payload[0]))
    payload[3] = [c for c in payload[3] if c[0] != "Ean"]
    info = child(payload, "Pakningsinfo")
    payload[3].insert(payload[3].index(info) + 1, json.loads(json.dumps(info)))
    (ppd,) = translate(FestEntry(entry.catalogue, entry.oppf_id, entry.tidspunkt, "A", None, (payload,)), {})
    assert "identifier" not in ppd["packaging"] and "type" not in ppd["packaging"]
    assert ppd["packaging"]["property"][2] == _level(2, "Secondary")
