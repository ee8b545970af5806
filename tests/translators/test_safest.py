"""A SAFEST delivery (R4, NOMA profiles) becomes valid FHIR R5 IDMP resources that carry their FEST ids.

The R4 fixtures in safest_r4/ are written from the NOMA/SAFEST profile descriptions
(reference/idmp-fhir.md a, d): Paracet 500 mg tablets, one package of 2 blisters x 10 tablets.
"""

from __future__ import annotations

import contextlib
import copy
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from fhir.resources import get_fhir_model_class

from grunndata.fhir import NS_DOSE, NS_MERKEVARE, NS_PAKNING, NS_VARENR
from grunndata.translators.safest import (
    CS_PACKAGING_PROPERTY,
    CS_R4_CHARACTERISTIC,
    KEPT_BASE,
    R5_TYPES,
    Conversion,
    FestLink,
    Problem,
    fest_links,
    json_bytes,
    mapping,
    to_r5,
)
from tests.conftest import require

Json = dict[str, Any]
FIXTURES = Path(__file__).parent / "safest_r4"
R5_EXAMPLES = Path(__file__).parents[2].parent / "shared" / "data" / "fhir-r5-idmp-examples"
FILES = (
    "MedicinalProduct-paracet-500",
    "MedicinalProductPackaged-paracet-500-20",
    "MedicinalProductManufactured-paracet-500",
    "MedicinalProductPharmaceutical-paracet-500",
    "MedicinalProductIngredient-paracetamol-500",
    "SubstanceSpecification-paracetamol",
    "MedicinalProductAuthorization-paracet-500",
    "CodeSystem-pharmaceutical-dose-form",
)
MPD, PPD, MID = "MedicinalProductDefinition", "PackagedProductDefinition", "ManufacturedItemDefinition"
APD, ING, SD, RA = (
    "AdministrableProductDefinition",
    "Ingredient",
    "SubstanceDefinition",
    "RegulatedAuthorization",
)
TABLET_FORM = {
    "coding": [
        {
            "system": "https://mpd.noma.no/codesystem/pharmaceutical-dose-form",
            "code": "10219000",
            "display": "Tablet",
        }
    ]
}
TABLET_FORM_SERVED = {  # DMP's code restated under EDQM's URI; 53 Tablett is broader, so no FEST code
    "coding": [
        *TABLET_FORM["coding"],
        {"system": "http://standardterms.edqm.eu", "code": "10219000", "display": "Tablet"},
    ]
}
NO = {"coding": [{"system": "urn:iso:std:iso:3166", "code": "NO"}]}
TEN_TABLETS = {"value": 10, "unit": "tablett", "system": "http://standardterms.edqm.eu", "code": "15054000"}
PARACET = "MedicinalProductDefinition/mp-paracet-500"


def r4(name: str) -> Json:
    result: Json = json.loads((FIXTURES / f"{name}.json").read_text())
    return result


def r4_delivery() -> list[Json]:
    return [r4(name) for name in FILES]


@pytest.fixture(scope="module")
def delivery() -> Conversion:
    return to_r5(r4_delivery())


def kept_warning(resource: str, path: str) -> Problem:
    """The warning for an R4 element R5 has no element for."""
    return Problem(
        resource, f"{path} has no element in R5; kept as extension {KEPT_BASE}{path}", warning=True
    )


MPM_QUANTITY = kept_warning(
    "MedicinalProductManufactured/mpm-paracet-500", "MedicinalProductManufactured.quantity"
)


def the(conversion: Conversion, rtype: str, rid: str | None = None) -> Json:
    (found,) = [r for r in conversion.resources if r["resourceType"] == rtype and rid in (None, r["id"])]
    return found


def valid(resource: Json) -> None:
    get_fhir_model_class(resource["resourceType"]).model_validate(resource)


def one_product(**changes: Any) -> Json:
    """The fixture's MedicinalProduct alone, without the references to its pharmaceutical product and
    package that only the whole delivery resolves, with `changes` (None removes an element)."""
    product = r4("MedicinalProduct-paracet-500")
    del product["pharmaceuticalProduct"], product["packagedMedicinalProduct"]
    for name, value in changes.items():
        if value is None:
            product.pop(name, None)
        else:
            product[name] = value
    return product


def kept(path: str, text: str) -> Json:
    return {"url": KEPT_BASE + path, "valueString": text}


# --- a whole delivery ------------------------------------------------------------------------------


def test_a_safest_delivery_becomes_r5_resources_with_their_r4_ids_and_one_warning(
    delivery: Conversion,
) -> None:
    assert delivery.problems == [  # R5 has no first-authorisation date: kept, and said
        Problem(
            "MedicinalProductAuthorization/ma-paracet-500",
            "MedicinalProductAuthorization.dateOfFirstAuthorization has no element in R5; kept as extension "
            + KEPT_BASE
            + "MedicinalProductAuthorization.dateOfFirstAuthorization",
            warning=True,
        )
    ]
    assert [(r["resourceType"], r["id"]) for r in delivery.resources] == [
        (MPD, "mp-paracet-500"),
        (PPD, "mpp-paracet-500-20"),
        (MID, "mpm-paracet-500"),
        (APD, "php-paracet-500"),
        (ING, "mpi-paracetamol-500"),
        (SD, "ss-paracetamol"),
        (RA, "ma-paracet-500"),
        ("CodeSystem", "pharmaceutical-dose-form"),
    ]


def test_every_converted_resource_is_valid_fhir_r5(delivery: Conversion) -> None:
    for resource in delivery.resources:
        valid(resource)


def test_a_bundle_of_the_delivery_converts_to_the_same_resources(delivery: Conversion) -> None:
    assert to_r5([r4("Bundle-paracet")]) == delivery


def test_converting_leaves_the_delivery_as_it_was() -> None:
    resources = r4_delivery()
    before = copy.deepcopy(resources)
    conversion = to_r5(resources)
    the(conversion, MPD)["name"][0]["productName"] = "changed"
    assert resources == before


# --- MedicinalProduct -> MedicinalProductDefinition ------------------------------------------------


def test_the_product_keeps_its_identifiers_atc_and_legal_status(delivery: Conversion) -> None:
    product = the(delivery, MPD)
    assert product["identifier"] == [
        {"system": "http://legemiddelverket.no/fhir/SAFEST/MedicinalProduct", "value": "mp-paracet-500"},
        {"system": NS_MERKEVARE, "value": "ID_2ABAC272-0BCF-43F0-84BE-984074D92E15"},
    ]
    assert product["classification"] == [
        {"coding": [{"system": "http://www.whocc.no/atc", "code": "N02BE01", "display": "paracetamol"}]}
    ]
    assert "productClassification" not in product
    assert product["legalStatusOfSupply"] == {
        "coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7421", "code": "F", "display": "Reseptgruppe F"}]
    }
    assert product["domain"] == {
        "coding": [
            {
                "system": "https://spor.ema.europa.eu/rmswi/#/lists/100000000004",
                "code": "100000000012",
                "display": "Human use",
            }
        ]
    }


def test_nomas_authorised_dose_form_becomes_the_combined_pharmaceutical_dose_form(
    delivery: Conversion,
) -> None:
    product = the(delivery, MPD)
    assert product["combinedPharmaceuticalDoseForm"] == TABLET_FORM_SERVED
    assert "extension" not in product


def test_the_dose_form_extension_is_found_under_nomas_versioned_url_too() -> None:
    extension = {
        "url": "https://noma.no/fhir/StructureDefinition/MedicinalProductAuthorizedPharmaceuticalDoseForm_NOMA_v3_1",
        "valueCodeableConcept": TABLET_FORM,
    }
    conversion = to_r5([one_product(extension=[extension])])
    assert the(conversion, MPD)["combinedPharmaceuticalDoseForm"] == TABLET_FORM_SERVED


def test_an_edqm_dose_form_with_an_equivalent_fest_code_gets_it_beside_and_a_fest_one_edqms() -> None:
    """One shape with FEST-made resources: both codes, from the map's equivalent entries only."""
    patch = {"system": "https://mpd.noma.no/codesystem/pharmaceutical-dose-form", "code": "10519000"}
    item = r4("MedicinalProductManufactured-paracet-500")
    del item["ingredient"], item["quantity"]
    item["manufacturedDoseForm"] = {"coding": [patch]}
    pharmaceutical = r4("MedicinalProductPharmaceutical-paracet-500")
    del pharmaceutical["ingredient"]
    pharmaceutical["administrableDoseForm"] = {
        "coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7448", "code": "46", "display": "Salve"}]
    }
    conversion = to_r5([item, pharmaceutical])
    assert the(conversion, MID)["manufacturedDoseForm"]["coding"] == [
        patch,
        {"system": "http://standardterms.edqm.eu", "code": "10519000"},
        {"system": "urn:oid:2.16.578.1.12.4.1.1.7448", "code": "58", "display": "Depotplaster"},
    ]
    assert the(conversion, APD)["administrableDoseForm"]["coding"][1:] == [
        {"system": "http://standardterms.edqm.eu", "code": "10504000", "display": "Ointment"}
    ]


def test_the_name_parts_and_country_language_get_their_r5_names(delivery: Conversion) -> None:
    spor = "https://spor.ema.europa.eu/rmswi/#/lists/220000000000"
    hl7 = "http://hl7.org/fhir/medicinal-product-name-part-type"
    assert the(delivery, MPD)["name"] == [
        {
            "productName": "Paracet tab 500 mg",
            "part": [
                {
                    "part": "Paracet",
                    "type": {  # HL7's beside SPOR's, as FEST-made names say it (translators/shape.py)
                        "coding": [
                            {"system": spor, "code": "220000000002", "display": "Invented name part"},
                            {"system": hl7, "code": "InventedNamePart", "display": "Invented name part"},
                        ]
                    },
                },
                {
                    "part": "500 mg",
                    "type": {
                        "coding": [
                            {"system": spor, "code": "220000000004", "display": "Strength part"},
                            {"system": hl7, "code": "StrengthPart", "display": "Strength part"},
                        ]
                    },
                },
            ],
            "usage": [{"country": NO, "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "nb"}]}}],
        }
    ]


def test_the_r4_profile_stays_in_meta_for_the_importer_to_keep_as_the_source_profile(
    delivery: Conversion,
) -> None:
    assert the(delivery, MPD)["meta"] == {
        "versionId": "3",
        "lastUpdated": "2025-06-15T08:00:00+02:00",
        "profile": ["https://noma.no/fhir/StructureDefinition/MedicinalProduct_NOMA_v3_0"],
    }


def test_elements_r5_has_no_home_for_are_kept_as_extensions_holding_their_json() -> None:
    designation = {"type": {"text": "Orphan"}, "date": "2020-01-01"}
    conversion = to_r5(
        [one_product(specialDesignation=[designation], specialMeasures=["Additional monitoring"])]
    )
    product = the(conversion, MPD)
    assert product["extension"] == [
        kept("MedicinalProduct.specialDesignation", '{"type":{"text":"Orphan"},"date":"2020-01-01"}')
    ]
    assert product["specialMeasures"] == [{"text": "Additional monitoring"}]
    assert conversion.problems == [
        kept_warning("MedicinalProduct/mp-paracet-500", "MedicinalProduct.specialDesignation")
    ]
    valid(product)


def test_an_element_r4_does_not_define_is_an_error_as_in_r4_xml() -> None:
    conversion = to_r5([one_product(indication="Smerter")])
    assert conversion.problems == [
        Problem(
            "MedicinalProduct/mp-paracet-500",
            "MedicinalProduct.indication is not an element of R4 MedicinalProduct",
        )
    ]


def test_extensions_on_a_primitive_r4_does_not_define_are_an_error_too() -> None:
    note = [{"extension": [{"url": "https://example.org/note", "valueString": "x"}]}]
    conversion = to_r5([one_product(_indication=note)])
    assert conversion.problems == [
        Problem(
            "MedicinalProduct/mp-paracet-500",
            "MedicinalProduct._indication names no element of R4 MedicinalProduct",
        )
    ]


# --- MedicinalProductPackaged -> PackagedProductDefinition -----------------------------------------


def test_the_package_keeps_its_fest_id_and_varenr_and_points_at_its_product(delivery: Conversion) -> None:
    package = the(delivery, PPD)
    assert package["identifier"] == [
        {
            "system": "http://legemiddelverket.no/fhir/SAFEST/MedicinalProductPackaged",
            "value": "mpp-paracet-500-20",
        },
        {
            "system": "http://ehelse.no/fhir/CodeSystem/FEST/KatLegemiddelPakning",
            "value": "ID_5E1D4C3B-2A19-4F08-9E7D-6C5B4A392817",
        },
        {"system": "https://farmalogg.no/varenummer", "value": "106383"},
    ]
    assert package["packageFor"] == [
        {"reference": PARACET}
    ]  # subject and the product's packagedMedicinalProduct: once
    assert package["legalStatusOfSupply"] == [
        {
            "code": {
                "coding": [
                    {"system": "urn:oid:2.16.578.1.12.4.1.1.7421", "code": "F", "display": "Reseptgruppe F"}
                ]
            }
        }
    ]
    assert package["marketingStatus"] == [
        {
            "country": NO,
            "status": {
                "coding": [
                    {
                        "system": "http://legemiddelverket.no/fhir/CodeSystem/MarketingStatus",
                        "code": "5",
                        "display": "Marketed",
                    },
                    {  # ours beside DMP's, as FEST-made packages say it (translators/shape.py)
                        "system": "https://grunndata.no/fhir/CodeSystem/fest-marketing-status",
                        "code": "markedsfort",
                        "display": "Marketed",
                    },
                ]
            },
            "dateRange": {"start": "2001-03-01"},
        }
    ]


def package_level(level: int, display: str) -> Json:
    """The package-level property the one-shape pass gives a level, as DMP's PackageLevel counts."""
    kind = {"system": CS_PACKAGING_PROPERTY, "code": "package-level", "display": "Package level"}
    value = {
        "system": "http://legemiddelverket.no/fhir/CodeSystem/PackageLevel",
        "code": str(level),
        "display": display,
    }
    return {"type": {"coding": [kind]}, "valueCodeableConcept": {"coding": [value]}}


def test_the_package_items_become_packaging_levels_holding_the_tablets(delivery: Conversion) -> None:
    assert the(delivery, PPD)["packaging"] == {
        "identifier": [{"system": "https://farmalogg.no/produktkode/GTIN", "value": "7046261063838"}],
        "type": {"coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7449", "code": "8", "display": "Boks"}]},
        "quantity": 1,
        "property": [package_level(2, "Secondary")],
        "packaging": [
            {
                "type": {
                    "coding": [
                        {
                            "system": "urn:oid:2.16.578.1.12.4.1.1.7449",
                            "code": "169",
                            "display": "Blisterpakning",
                        }
                    ]
                },
                "quantity": 2,
                "containedItem": [
                    {
                        "item": {"reference": {"reference": "ManufacturedItemDefinition/mpm-paracet-500"}},
                        "amount": TEN_TABLETS,
                    }
                ],
                "property": [package_level(1, "Primary")],
            }
        ],
    }


def test_the_pack_size_is_two_blisters_of_ten_tablets(delivery: Conversion) -> None:
    assert the(delivery, PPD)["containedItemQuantity"] == [{**TEN_TABLETS, "value": 20}]


def test_nomas_ma_holder_extension_stays_as_it_is(delivery: Conversion) -> None:
    assert the(delivery, PPD)["extension"] == [
        {
            "url": "http://legemiddelverket.no/fhir/StructureDefinition/safest-maHolderOrManufacturer",
            "valueString": "Karo Pharma AS",
        }
    ]


def test_the_safest_itemnumber_extension_becomes_a_varenr_identifier() -> None:
    package = r4("MedicinalProductPackaged-paracet-500-20")
    package["identifier"] = package["identifier"][:2]
    del package["marketingAuthorization"]
    package["extension"] = [
        {
            "url": "http://legemiddelverket.no/fhir/StructureDefinition/safest-itemnumber",
            "valueString": "100206",
        }
    ]
    converted = the(to_r5([package]), PPD)
    assert converted["identifier"][2:] == [{"system": NS_VARENR, "value": "100206"}]
    assert "extension" not in converted


def test_the_safest_contained_item_extension_becomes_a_contained_item() -> None:
    package = r4("MedicinalProductPackaged-paracet-500-20")
    item = package["packageItem"][0]["packageItem"][0]
    del item["manufacturedItem"]
    item["extension"] = [
        {
            "url": "http://legemiddelverket.no/fhir/StructureDefinition/containedItem",
            "extension": [
                {
                    "url": "item",
                    "valueReference": {"reference": "MedicinalProductManufactured/mpm-paracet-500"},
                },
                {"url": "quantity", "valueInteger": 10},
            ],
        }
    ]
    converted = the(to_r5([package, r4("MedicinalProductManufactured-paracet-500")]), PPD)
    assert converted["packaging"]["packaging"][0]["containedItem"] == [
        {
            "item": {"reference": {"reference": "ManufacturedItemDefinition/mpm-paracet-500"}},
            "amount": {"value": 10},
        }
    ]
    assert converted["containedItemQuantity"] == [{"value": 20}]
    valid(converted)


SAFEST = "http://legemiddelverket.no/fhir/StructureDefinition/"
ITEMNUMBER_STATUS = "http://legemiddelverket.no/FHIR/CodeSystem/itemnumberstatus"


def test_the_itemnumber_as_dmp_sends_it_gives_the_varenr_and_its_status_the_package_status() -> None:
    """DMP's examples: one part holding the number, one its status coding, neither with a url."""
    package = r4("MedicinalProductPackaged-paracet-500-20")
    package["identifier"] = package["identifier"][:2]
    del package["marketingAuthorization"]
    active = {"system": ITEMNUMBER_STATUS, "code": "A", "display": "Active"}
    package["extension"] = [
        {
            "url": SAFEST + "safest-itemnumber",
            "extension": [{"valueString": "106383"}, {"valueCoding": active}],
        }
    ]
    conversion = to_r5([package, r4("MedicinalProductManufactured-paracet-500")])
    converted = the(conversion, PPD)
    assert converted["identifier"][2:] == [{"system": NS_VARENR, "value": "106383"}]
    assert converted["status"] == {
        "coding": [{"system": "http://hl7.org/fhir/publication-status", "code": "active"}, active]
    }
    assert "extension" not in converted
    assert [p.message.split("; ")[1] for p in conversion.warnings if p.resource.endswith("500-20")] == [
        "its valueString is read as itemnumber",
        "its valueCoding is read as status",
    ]
    valid(converted)


def test_an_itemnumber_status_other_than_active_is_kept_as_given_without_a_publication_status() -> None:
    package = r4("MedicinalProductPackaged-paracet-500-20")
    del package["marketingAuthorization"]
    other = {"system": ITEMNUMBER_STATUS, "code": "U"}
    package["extension"] = [
        {
            "url": SAFEST + "safest-itemnumber",
            "extension": [
                {"url": "itemnumber", "valueString": "106383"},
                {"url": "status", "valueCoding": other},
            ],
        }
    ]
    conversion = to_r5([package, r4("MedicinalProductManufactured-paracet-500")])
    assert the(conversion, PPD)["status"] == {"coding": [other]}
    assert [p for p in conversion.problems if p.resource.endswith("500-20")] == []


def test_the_merkevare_id_dose_id_and_lmr_number_of_a_manufactured_item_become_its_identifiers() -> None:
    item = r4("MedicinalProductManufactured-paracet-500")
    del item["ingredient"], item["quantity"]
    merkevare = {
        "system": "http://ehelse.no/fhir/CodeSystem/FEST/KatLegemiddelMerkevare",
        "value": "2ABAC272-0BCF-43F0-84BE-984074D92E15",
    }
    item["extension"] += [
        {"url": SAFEST + "safest-legemiddelMerkevareId", "valueIdentifier": merkevare},
        {"url": SAFEST + "safest-lmrNumber", "valueString": "1003023"},
    ]
    converted = the(to_r5([item]), MID)
    assert converted["identifier"] == [
        {"system": NS_DOSE, "value": "ID_0008D107-5A4C-4F0B-9C11-7E2D3B4A5C6D"},
        merkevare,  # with the system SAFEST gives: the import maps it to the served one
        {"system": "http://dmp.no/fhir/NamingSystem/lmrLopenummer", "value": "1003023"},
    ]
    assert "extension" not in converted
    assert fest_links(converted) == [
        FestLink("Legemiddeldose", "0008D107-5A4C-4F0B-9C11-7E2D3B4A5C6D"),
        FestLink("LegemiddelMerkevare", "2ABAC272-0BCF-43F0-84BE-984074D92E15"),
    ]
    valid(converted)


def test_the_retail_pack_and_unit_dose_flags_of_a_package_level_become_its_properties() -> None:
    package = r4("MedicinalProductPackaged-paracet-500-20")
    del package["marketingAuthorization"]
    box, blister = package["packageItem"][0], package["packageItem"][0]["packageItem"][0]
    box["extension"] = [
        {"url": SAFEST + "safest-retailPack", "valueBoolean": True},
        {"url": SAFEST + "safest-singleUnit", "valueBoolean": False},
    ]
    blister["extension"] = [{"url": SAFEST + "safest-singleUnit", "valueBoolean": "true"}]  # as text

    def flag(code: str, display: str, value: bool) -> Json:
        kind = {"system": CS_PACKAGING_PROPERTY, "code": code, "display": display}
        return {"type": {"coding": [kind]}, "valueBoolean": value}

    conversion = to_r5([package, r4("MedicinalProductManufactured-paracet-500")])
    converted = the(conversion, PPD)
    assert converted["packaging"]["property"] == [
        flag("retail-pack", "Retail pack", True),
        flag("unit-dose", "Unit dose", False),
        package_level(2, "Secondary"),
    ]
    assert converted["packaging"]["packaging"][0]["property"] == [
        flag("unit-dose", "Unit dose", True),
        package_level(1, "Primary"),
    ]
    assert "extension" not in converted["packaging"]
    valid(converted)


def test_extension_values_given_as_text_are_read_as_their_type_and_an_unreadable_one_is_left_out() -> None:
    """FHIR.js writes R4 XML's nested extension values as text: ``"valueInteger": "1"``."""
    product = one_product(
        extension=[
            {
                "url": "https://example.org/pack",
                "extension": [
                    {"url": "count", "valueInteger": "2"},
                    {"url": "flag", "valueBoolean": "false"},
                    {"url": "share", "valueDecimal": "0.50"},
                    {"url": "bad", "valueInteger": "two"},
                ],
            }
        ]
    )
    conversion = to_r5([product])
    converted = the(conversion, MPD)
    assert converted["extension"] == [
        {
            "url": "https://example.org/pack",
            "extension": [
                {"url": "count", "valueInteger": 2},
                {"url": "flag", "valueBoolean": False},
                {"url": "share", "valueDecimal": Decimal("0.50")},
            ],
        }
    ]
    label = "MedicinalProductDefinition/mp-paracet-500"
    assert conversion.problems == [
        Problem(
            label,
            "MedicinalProductDefinition.extension[0].extension[3].valueInteger 'two' is not a FHIR integer; left out",
            True,
        ),
        Problem(
            label,
            "MedicinalProductDefinition.extension[0].extension[0].valueInteger '2' and 2 more came as text; "
            "read as the type FHIR gives the value",
            True,
        ),
    ]
    assert json_bytes(converted).count(b'"valueDecimal":0.50') == 1


def test_several_outer_package_items_go_under_one_packaging_level() -> None:
    package = r4("MedicinalProductPackaged-paracet-500-20")
    box = package["packageItem"][0]
    package["packageItem"] = [box, box]
    conversion = to_r5([package, r4("MedicinalProductManufactured-paracet-500")])
    converted = the(conversion, PPD)
    assert list(converted["packaging"]) == ["packaging"]
    assert len(converted["packaging"]["packaging"]) == 2
    assert converted["containedItemQuantity"] == [{**TEN_TABLETS, "value": 40}]
    valid(converted)


def test_a_package_level_count_that_is_no_whole_number_is_kept_and_reported() -> None:
    package = r4("MedicinalProductPackaged-paracet-500-20")
    package["packageItem"][0]["quantity"] = {"value": 1.5}
    conversion = to_r5([package])
    path = "MedicinalProductPackaged.packageItem.quantity"
    assert the(conversion, PPD)["packaging"]["extension"] == [kept(path, '{"value":1.5}')]
    assert conversion.problems[0] == Problem(
        "MedicinalProductPackaged/mpp-paracet-500-20",
        f"{path} 1.5 is not a whole number as R5 packaging.quantity is; kept as extension {KEPT_BASE}{path}",
        warning=True,
    )


def test_a_package_whose_manufactured_item_is_missing_says_the_pack_size_is_unknown() -> None:
    conversion = to_r5([r4("MedicinalProductPackaged-paracet-500-20")])
    package = the(conversion, PPD)
    assert "containedItemQuantity" not in package
    assert conversion.problems == [
        Problem(
            "MedicinalProductPackaged/mpp-paracet-500-20",
            "MedicinalProductPackaged.packageItem.packageItem.manufacturedItem points at "
            "MedicinalProductManufactured/mpm-paracet-500, which is not in this delivery; its amount (and the pack size) is unknown",
            warning=True,
        ),
        Problem(
            "MedicinalProductPackaged/mpp-paracet-500-20",
            f"MedicinalProductPackaged.marketingAuthorization points at MedicinalProductAuthorization/ma-paracet-500, "
            f"which is not in this delivery; kept as extension {KEPT_BASE}MedicinalProductPackaged.marketingAuthorization",
            warning=True,
        ),
    ]
    assert package["extension"][-1] == {
        "url": KEPT_BASE + "MedicinalProductPackaged.marketingAuthorization",
        "valueReference": {"reference": "RegulatedAuthorization/ma-paracet-500"},
    }
    valid(package)


# --- MedicinalProductManufactured, MedicinalProductPharmaceutical ----------------------------------


def test_the_manufactured_item_is_active_and_carries_its_fest_dose_id(delivery: Conversion) -> None:
    item = the(delivery, MID)
    assert item["status"] == "active"
    assert item["identifier"] == [{"system": NS_DOSE, "value": "ID_0008D107-5A4C-4F0B-9C11-7E2D3B4A5C6D"}]
    assert item["manufacturedDoseForm"] == TABLET_FORM_SERVED
    assert item["unitOfPresentation"] == {
        "coding": [{"system": "http://standardterms.edqm.eu", "code": "15054000", "display": "Tablet"}]
    }
    assert "extension" not in item  # its quantity went to the package, its dose id to identifier


def test_a_manufactured_item_no_package_counts_keeps_its_quantity() -> None:
    item = r4("MedicinalProductManufactured-paracet-500")
    del item["ingredient"]
    item = the(to_r5([item]), MID)
    assert item["extension"] == [
        kept(
            "MedicinalProductManufactured.quantity",
            '{"value":10,"unit":"tablett","system":"http://standardterms.edqm.eu","code":"15054000"}',
        )
    ]
    valid(item)


def test_physical_characteristics_become_properties() -> None:
    item = r4("MedicinalProductManufactured-paracet-500")
    item["physicalCharacteristics"] = {
        "shape": "oval",
        "color": ["hvit"],
        "weight": {"value": 0.6, "unit": "g"},
    }
    item["otherCharacteristics"] = [{"text": "delestrek"}]
    converted = the(to_r5([item]), MID)

    def prop(code: str) -> Json:
        return {"coding": [{"system": CS_R4_CHARACTERISTIC, "code": code}]}

    assert converted["property"] == [
        {"type": prop("shape"), "valueCodeableConcept": {"text": "oval"}},
        {"type": prop("color"), "valueCodeableConcept": {"text": "hvit"}},
        {"type": prop("weight"), "valueQuantity": {"value": 0.6, "unit": "g"}},
        {"type": prop("otherCharacteristics"), "valueCodeableConcept": {"text": "delestrek"}},
    ]
    valid(converted)


def test_the_administrable_product_is_active_and_a_form_of_the_product(delivery: Conversion) -> None:
    administrable = the(delivery, APD)
    assert administrable["status"] == "active"
    assert administrable["formOf"] == [{"reference": PARACET}]
    assert administrable["administrableDoseForm"] == TABLET_FORM_SERVED
    assert administrable["routeOfAdministration"] == [
        {
            "code": {
                "coding": [
                    {"system": "http://standardterms.edqm.eu", "code": "20053000", "display": "Oral use"}
                ]
            }
        }
    ]


def test_a_second_device_of_the_administrable_product_is_kept_since_r5_holds_one() -> None:
    administrable = r4("MedicinalProductPharmaceutical-paracet-500")
    del administrable["ingredient"]
    administrable["device"] = [{"reference": "DeviceDefinition/cup"}, {"reference": "DeviceDefinition/spoon"}]
    conversion = to_r5([administrable])
    converted = the(conversion, APD)
    path = "MedicinalProductPharmaceutical.device"
    assert converted["device"] == {"reference": "DeviceDefinition/cup"}
    assert converted["extension"] == [kept(path, '{"reference":"DeviceDefinition/spoon"}')]
    assert conversion.problems == [
        Problem(
            "MedicinalProductPharmaceutical/php-paracet-500",
            f"{path} has 2 values where R5 device holds one; all but the first are kept as extension {KEPT_BASE}{path}",
            warning=True,
        )
    ]
    valid(converted)


# --- MedicinalProductIngredient -> Ingredient ------------------------------------------------------


def test_the_ingredient_points_at_the_item_the_form_and_the_product(delivery: Conversion) -> None:
    ingredient = the(delivery, ING)
    assert ingredient["for"] == [  # sorted, so the same content in another order gives the same bytes
        {"reference": "AdministrableProductDefinition/php-paracet-500"},
        {"reference": "ManufacturedItemDefinition/mpm-paracet-500"},
        {"reference": PARACET},
    ]
    assert ingredient["status"] == "active"
    assert ingredient["role"] == {
        "coding": [
            {"system": "http://hl7.org/fhir/ingredient-role", "code": "100000072072", "display": "Active"}
        ]
    }


def test_the_ingredient_has_its_substance_code_and_strength(delivery: Conversion) -> None:
    assert the(delivery, ING)["substance"] == {
        "code": {
            "concept": {
                "coding": [
                    {
                        "system": "http://legemiddelverket.no/fhir/SAFEST/SafestSubstanceDefinitionID",
                        "code": "ss-paracetamol",
                        "display": "Paracetamol",
                    }
                ]
            }
        },
        "strength": [
            {
                "presentationRatio": {
                    "numerator": {
                        "value": 500,
                        "unit": "mg",
                        "system": "http://unitsofmeasure.org",
                        "code": "mg",
                    },
                    "denominator": {**TEN_TABLETS, "value": 1},
                },
                "country": [NO],
            }
        ],
    }


def mg(value: float) -> Json:
    return {"value": value, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}


def test_a_strength_with_a_low_limit_becomes_a_ratio_range_and_a_reference_strength_is_kept() -> None:
    ingredient = r4("MedicinalProductIngredient-paracetamol-500")
    per_ml = {"value": 1, "unit": "ml", "system": "http://unitsofmeasure.org", "code": "mL"}
    base = {"coding": [{"system": "http://fdasis.nlm.nih.gov", "code": "362O9ITL9D"}]}
    ingredient["substance"]["strength"] = [
        {
            "presentation": {"numerator": mg(24), "denominator": per_ml},
            "presentationLowLimit": {"numerator": mg(22), "denominator": per_ml},
            "referenceStrength": [
                {"substance": base, "strength": {"numerator": mg(20), "denominator": per_ml}}
            ],
        }
    ]
    conversion = to_r5([ingredient])
    assert the(conversion, ING)["substance"]["strength"] == [
        {
            "presentationRatioRange": {
                "lowNumerator": mg(22),
                "highNumerator": mg(24),
                "denominator": per_ml,
            },
            "referenceStrength": [
                {
                    "substance": {"concept": base},
                    "strengthRatio": {"numerator": mg(20), "denominator": per_ml},
                }
            ],
        }
    ]
    valid(the(conversion, ING))


def test_a_specified_substance_is_the_substance_when_r4_gives_no_other() -> None:
    ingredient = r4("MedicinalProductIngredient-paracetamol-500")
    substance = ingredient.pop("substance")
    ingredient["specifiedSubstance"] = [{**substance, "group": {"text": "Group 1"}}]
    conversion = to_r5([ingredient, r4("MedicinalProductManufactured-paracet-500")])
    converted = the(conversion, ING)
    assert converted["substance"] == {
        "code": {"concept": substance["code"]},
        "strength": [{"presentationRatio": substance["strength"][0]["presentation"], "country": [NO]}],
        "extension": [kept("MedicinalProductIngredient.specifiedSubstance.group", '{"text":"Group 1"}')],
    }
    assert conversion.problems == [
        kept_warning(
            "MedicinalProductIngredient/mpi-paracetamol-500",
            "MedicinalProductIngredient.specifiedSubstance.group",
        ),
        MPM_QUANTITY,  # no package of this delivery counts the item
    ]
    valid(converted)


def test_an_ingredient_without_a_role_gets_active_and_a_problem() -> None:
    ingredient = r4("MedicinalProductIngredient-paracetamol-500")
    del ingredient["role"]
    conversion = to_r5([ingredient, r4("MedicinalProductManufactured-paracet-500")])
    assert the(conversion, ING)["role"] == {
        "coding": [
            {"system": "http://hl7.org/fhir/ingredient-role", "code": "100000072072", "display": "Active"}
        ]
    }
    assert conversion.problems == [
        Problem(
            "MedicinalProductIngredient/mpi-paracetamol-500",
            "has no role (R4 requires one); Ingredient.role is set to Active (100000072072)",
            warning=True,
        ),
        MPM_QUANTITY,
    ]


def test_an_ingredient_nobody_lists_is_converted_with_a_problem() -> None:
    conversion = to_r5([r4("MedicinalProductIngredient-paracetamol-500")])
    ingredient = the(conversion, ING)
    assert "for" not in ingredient
    valid(ingredient)
    assert conversion.problems == [
        Problem(
            "MedicinalProductIngredient/mpi-paracetamol-500",
            "no MedicinalProductManufactured or MedicinalProductPharmaceutical of this delivery lists this ingredient, "
            "so Ingredient.for is empty",
            warning=True,
        )
    ]


def test_an_ingredient_with_no_substance_at_all_is_not_converted() -> None:
    ingredient = r4("MedicinalProductIngredient-paracetamol-500")
    del ingredient["substance"]
    conversion = to_r5([ingredient])
    assert conversion.resources == []
    assert conversion.problems == [
        Problem(
            "MedicinalProductIngredient/mpi-paracetamol-500",
            "has no value for R5 Ingredient.substance, which R5 requires; not converted",
        )
    ]


def test_a_contained_ingredient_points_back_at_its_container() -> None:
    item = r4("MedicinalProductManufactured-paracet-500")
    ingredient = r4("MedicinalProductIngredient-paracetamol-500")
    ingredient["id"] = "ing"
    item["contained"] = [ingredient]
    item["ingredient"] = [{"reference": "#ing"}]
    conversion = to_r5([item])
    converted = the(conversion, MID)
    (contained,) = converted["contained"]
    assert contained["resourceType"] == "Ingredient"
    assert contained["for"] == [{"reference": "#"}]
    assert conversion.problems == [MPM_QUANTITY]
    valid(converted)


# --- SubstanceSpecification -> SubstanceDefinition --------------------------------------------------


def test_the_substance_keeps_id_codes_names_weight_and_relationship(delivery: Conversion) -> None:
    substance = the(delivery, SD)
    assert substance["identifier"] == [
        {
            "system": "http://legemiddelverket.no/fhir/SAFEST/SafestSubstanceDefinitionID",
            "value": "ss-paracetamol",
        }
    ]
    assert substance["classification"] == [{"text": "Chemical"}]
    assert substance["note"] == [{"text": "Preliminary SAFEST substance id"}]
    assert substance["code"] == [
        {
            "code": {
                "coding": [
                    {"system": "http://fdasis.nlm.nih.gov", "code": "362O9ITL9D", "display": "ACETAMINOPHEN"}
                ]
            },
            "note": [{"text": "UNII"}],
        }
    ]
    assert substance["name"][0]["synonym"] == [
        {"name": "Acetaminophen", "language": [{"coding": [{"system": "urn:ietf:bcp:47", "code": "en"}]}]}
    ]
    assert substance["molecularWeight"] == [
        {"amount": {"value": 151.16, "unit": "g/mol", "system": "http://unitsofmeasure.org", "code": "g/mol"}}
    ]
    assert substance["moiety"] == [
        {"role": {"text": "Active moiety"}, "name": "Paracetamol", "molecularFormula": "C8H9NO2"}
    ]
    assert substance["relationship"] == [
        {
            "substanceDefinitionCodeableConcept": {
                "coding": [{"system": "http://www.whocc.no/atc", "code": "N02BE01", "display": "paracetamol"}]
            },
            "type": {"text": "ATC"},
        }
    ]


def test_nomas_fest_id_and_unii_extensions_stay_on_the_substance(delivery: Conversion) -> None:
    assert the(delivery, SD)["extension"] == [
        {
            "url": "http://legemiddelverket.no/fhir/StructureDefinition/SubstanceSpecification-FestID",
            "valueString": "ID_9A1E3C5B-7D2F-4E6A-8B0C-1D2E3F4A5B6C",
        },
        {
            "url": "http://legemiddelverket.no/fhir/StructureDefinition/SubstanceSpecification-UniiCode",
            "valueString": "362O9ITL9D",
        },
    ]


def test_a_relationship_without_its_type_is_kept_whole_since_r5_requires_it() -> None:
    substance = r4("SubstanceSpecification-paracetamol")
    del substance["relationship"][0]["relationship"]
    conversion = to_r5([substance])
    path = "SubstanceSpecification.relationship"
    assert "relationship" not in the(conversion, SD)
    assert the(conversion, SD)["extension"][-1]["url"] == KEPT_BASE + path
    assert conversion.problems == [
        Problem(
            "SubstanceSpecification/ss-paracetamol",
            f"{path} gives no R5 relationship.type, which R5 requires; kept as extension {KEPT_BASE}{path}",
            warning=True,
        )
    ]
    valid(the(conversion, SD))


# --- MedicinalProductAuthorization -> RegulatedAuthorization, CodeSystem ---------------------------


def test_the_authorization_covers_the_product_and_its_package(delivery: Conversion) -> None:
    authorization = the(delivery, RA)
    assert authorization["subject"] == [
        {"reference": PARACET},
        {"reference": "PackagedProductDefinition/mpp-paracet-500-20"},
    ]
    assert authorization["region"] == [NO]
    assert authorization["case"] == {"type": {"text": "Nasjonal prosedyre"}, "dateDateTime": "1989-05-23"}
    assert authorization["extension"] == [
        kept("MedicinalProductAuthorization.dateOfFirstAuthorization", "1989-05-23")
    ]


def test_a_code_system_passes_unchanged(delivery: Conversion) -> None:
    assert the(delivery, "CodeSystem") == r4("CodeSystem-pharmaceutical-dose-form")


# --- references R5 turns around --------------------------------------------------------------------


def test_a_reference_to_a_resource_outside_the_delivery_is_kept_and_reported() -> None:
    conversion = to_r5(
        [one_product(pharmaceuticalProduct=[{"reference": "MedicinalProductPharmaceutical/php-paracet-500"}])]
    )
    path = "MedicinalProduct.pharmaceuticalProduct"
    assert the(conversion, MPD)["extension"] == [
        {
            "url": KEPT_BASE + path,
            "valueReference": {"reference": "AdministrableProductDefinition/php-paracet-500"},
        }
    ]
    assert conversion.problems == [
        Problem(
            "MedicinalProduct/mp-paracet-500",
            f"{path} points at MedicinalProductPharmaceutical/php-paracet-500, which is not in this delivery; "
            f"kept as extension {KEPT_BASE}{path}",
            warning=True,
        )
    ]


def test_a_reference_to_an_r5_resource_is_kept_since_r5_input_passes_unchanged() -> None:
    administrable = {
        "resourceType": APD,
        "id": "php-paracet-500",
        "status": "active",
        "routeOfAdministration": [{"code": {"text": "oral"}}],
    }
    conversion = to_r5(
        [
            one_product(
                pharmaceuticalProduct=[{"reference": "MedicinalProductPharmaceutical/php-paracet-500"}]
            ),
            administrable,
        ]
    )
    assert the(conversion, APD) == administrable
    assert conversion.problems[0].message.endswith(
        "which came as R5 and passes through unchanged; "
        f"kept as extension {KEPT_BASE}MedicinalProduct.pharmaceuticalProduct"
    )


# --- R5 input --------------------------------------------------------------------------------------


def r5_examples() -> list[Json]:
    """The official R5 examples of the IDMP resources (not the ConceptMaps beside them)."""
    examples = [json.loads(p.read_text()) for p in sorted(require(R5_EXAMPLES).glob("*.json"))]
    return [e for e in examples if e["resourceType"] in R5_TYPES]


def test_the_official_r5_idmp_examples_pass_through_unchanged() -> None:
    examples = r5_examples()
    assert len(examples) == 17
    conversion = to_r5(copy.deepcopy(examples))
    assert conversion.problems == []
    assert conversion.resources == examples


def test_r5_examples_carry_no_fest_links() -> None:
    assert [fest_links(example) for example in r5_examples()] == [[]] * 17


# --- what is refused -------------------------------------------------------------------------------


def test_bad_resources_are_refused_with_problems_and_the_rest_is_converted() -> None:
    product = one_product()
    delivery: list[Any] = [
        {"id": "x"},
        {"resourceType": "Patient", "id": "p1"},
        {"resourceType": "MedicinalProductInteraction", "id": "i1"},
        {"resourceType": "MedicinalProduct"},
        one_product(id="ID_2ABAC272_0BCF"),
        one_product(id="x" * 65),
        "MedicinalProduct/1",
        {"resourceType": "Bundle", "id": "b", "entry": [{"fullUrl": "urn:uuid:1"}]},
        product,
        product,
    ]
    conversion = to_r5(delivery)
    assert [(r["resourceType"], r["id"]) for r in conversion.resources] == [(MPD, "mp-paracet-500")]
    assert conversion.problems == [
        Problem("?/x", "has no resourceType; not converted"),
        Problem(
            "Patient/p1",
            "Patient is neither a SAFEST R4 resource type nor an R5 IDMP, ePI or terminology one; skipped",
            warning=True,
        ),
        Problem(
            "MedicinalProductInteraction/i1",
            "MedicinalProductInteraction is neither a SAFEST R4 resource type nor an R5 IDMP, ePI or terminology one; skipped",
            warning=True,
        ),
        Problem("MedicinalProduct/?", "has no id; not converted"),
        Problem(
            "MedicinalProduct/ID_2ABAC272_0BCF",
            "id 'ID_2ABAC272_0BCF' is not a FHIR id (1 to 64 of A-Z a-z 0-9 - .); not converted",
        ),
        Problem(
            "MedicinalProduct/" + "x" * 65,
            f"id '{'x' * 65}' is not a FHIR id (1 to 64 of A-Z a-z 0-9 - .); not converted",
        ),
        Problem("?", "is not a JSON object; not converted"),
        Problem("Bundle/b", "entry 0 has no resource"),
        Problem(
            "MedicinalProduct/mp-paracet-500",
            "appears more than once in this delivery; every resource must come once",
        ),
    ]


def test_a_resource_whose_json_has_the_wrong_shapes_is_a_problem_not_an_exception() -> None:
    conversion = to_r5([one_product(name="Paracet")])
    assert conversion.resources == []
    assert conversion.problems == [
        Problem(
            "MedicinalProduct/mp-paracet-500",
            "is not R4 MedicinalProduct as FHIR defines it (MedicinalProduct.name is not a JSON object); not converted",
        )
    ]


def test_a_product_without_a_name_is_not_converted_since_r5_requires_one() -> None:
    conversion = to_r5([one_product(name=None)])
    assert conversion.resources == []
    assert conversion.problems == [
        Problem(
            "MedicinalProduct/mp-paracet-500",
            "has no value for R5 MedicinalProductDefinition.name, which R5 requires; not converted",
        )
    ]


# --- FEST links ------------------------------------------------------------------------------------


def test_each_converted_resource_names_its_fest_ids_without_the_id_prefix(delivery: Conversion) -> None:
    assert {r["id"]: fest_links(r) for r in delivery.resources} == {
        "mp-paracet-500": [FestLink("LegemiddelMerkevare", "2ABAC272-0BCF-43F0-84BE-984074D92E15")],
        "mpp-paracet-500-20": [
            FestLink("Legemiddelpakning", "5E1D4C3B-2A19-4F08-9E7D-6C5B4A392817"),
            FestLink("varenr", "106383"),
        ],
        "mpm-paracet-500": [FestLink("Legemiddeldose", "0008D107-5A4C-4F0B-9C11-7E2D3B4A5C6D")],
        "php-paracet-500": [],
        "mpi-paracetamol-500": [],
        "ss-paracetamol": [FestLink("Virkestoff", "9A1E3C5B-7D2F-4E6A-8B0C-1D2E3F4A5B6C")],
        "ma-paracet-500": [],
        "pharmaceutical-dose-form": [],
    }


@pytest.mark.parametrize(
    ("system", "kind"),
    [
        (NS_MERKEVARE, "LegemiddelMerkevare"),
        ("http://dmp.no/fhir/NamingSystem/festLegemiddelVirkestoff", "LegemiddelVirkestoff"),
        (NS_PAKNING, "Legemiddelpakning"),
        (NS_DOSE, "Legemiddeldose"),
        ("http://legemiddelverket.no/FEST/LegemiddelMerkevareID", "LegemiddelMerkevare"),
        ("http://legemiddelverket.no/FEST/LegemiddelPakningID", "Legemiddelpakning"),
        ("http://ehelse.no/fhir/CodeSystem/FEST/KatLegemiddelMerkevare", "LegemiddelMerkevare"),
        ("http://ehelse.no/fhir/CodeSystem/FEST/KatLegemiddelPakning", "Legemiddelpakning"),
        ("http://ehelse.no/fhir/CodeSystem/FEST/KatLegemiddeldose", "Legemiddeldose"),
    ],
)
def test_every_known_fest_system_names_its_catalogue(system: str, kind: str) -> None:
    resource = {"resourceType": MPD, "identifier": [{"system": system, "value": "ID_ABC-1"}]}
    assert fest_links(resource) == [FestLink(kind, "ABC-1")]


@pytest.mark.parametrize("system", [NS_VARENR, "https://farmalogg.no/varenummer"])
def test_a_varenr_is_linked_as_given(system: str) -> None:
    resource = {"resourceType": PPD, "identifier": [{"system": system, "value": "012345"}]}
    assert fest_links(resource) == [FestLink("varenr", "012345")]


@pytest.mark.parametrize(
    ("rtype", "kind"),
    [(MPD, "LegemiddelMerkevare"), (PPD, "Legemiddelpakning"), (MID, "Legemiddeldose"), (SD, "Virkestoff")],
)
def test_a_generic_fest_id_names_the_catalogue_of_its_resource_type(rtype: str, kind: str) -> None:
    resource = {
        "resourceType": rtype,
        "identifier": [{"system": "http://ehelse.no/fhir/CodeSystem/FEST", "value": "F4D2-17"}],
    }
    assert fest_links(resource) == [FestLink(kind, "F4D2-17")]


def test_a_generic_fest_id_on_another_resource_type_is_no_link() -> None:
    resource = {
        "resourceType": APD,
        "identifier": [{"system": "http://ehelse.no/fhir/CodeSystem/FEST", "value": "46a8"}],
    }
    assert fest_links(resource) == []


def test_gtins_of_packaging_levels_and_unknown_systems_are_no_links() -> None:
    package = {
        "resourceType": PPD,
        "identifier": [
            {"system": "http://legemiddelverket.no/fhir/SAFEST/MedicinalProductPackaged", "value": "p1"}
        ],
        "packaging": {"identifier": [{"system": "https://www.gs1.org/gtin", "value": "7046261063838"}]},
    }
    assert fest_links(package) == []


def test_a_fest_id_extension_is_found_nested_and_as_identifier_and_duplicates_count_once() -> None:
    substance = {
        "resourceType": SD,
        "identifier": [{"system": "http://ehelse.no/fhir/CodeSystem/FEST", "value": "ID_AA"}],
        "extension": [
            {
                "url": "https://noma.no/fhir/StructureDefinition/alternative-identifiers",
                "extension": [
                    {"url": "uniiCode", "valueString": "362O9ITL9D"},
                    {"url": "fest-id", "valueIdentifier": {"value": "ID_AA"}},
                    {"url": "festId", "valueString": "ID_BB"},
                ],
            }
        ],
    }
    assert fest_links(substance) == [FestLink("Virkestoff", "AA"), FestLink("Virkestoff", "BB")]


def test_an_ingredient_with_one_identifier_is_read_too() -> None:
    ingredient = {"resourceType": ING, "identifier": {"system": NS_MERKEVARE, "value": "ID_CC"}}
    assert fest_links(ingredient) == [FestLink("LegemiddelMerkevare", "CC")]


# --- the mapping table -----------------------------------------------------------------------------

R4_RESOURCE_BASE = {"id", "extension", "modifierExtension", "implicitRules", "language", "text", "contained"}
R4_ELEMENT_BASE = {"id", "extension", "modifierExtension"}


def test_every_r4_element_of_the_safest_types_has_a_rule() -> None:
    """Checked against the FHIR 4.0.1 models of fhirclient, so no R4 element is silently dropped."""
    pytest.importorskip("fhirclient")
    import importlib

    from fhirclient.models.fhirabstractbase import FHIRAbstractBase

    rows = {row.r4 for row in mapping()}

    def elements(cls: type[FHIRAbstractBase], path: str, base: set[str]) -> list[str]:
        found = []
        for _, name, kind, *_ in cls().elementProperties():
            if name in base:
                continue
            found.append(f"{path}.{name}")
            if any(row.startswith(f"{path}.{name}.") for row in rows) and issubclass(kind, FHIRAbstractBase):
                found.extend(elements(kind, f"{path}.{name}", R4_ELEMENT_BASE))
        return found

    types = sorted({row.split(".")[0] for row in rows})
    every = []
    for rtype in types:
        module = importlib.import_module(f"fhirclient.models.{rtype.lower()}")
        every.extend(elements(getattr(module, rtype), rtype, R4_RESOURCE_BASE))
    assert len(types) == 7
    assert sorted(set(every) - rows) == []
    assert len(every) > 150


def _r5_element(path: str) -> bool:
    """Whether R5 (fhir.resources) has the element at `path` (``Type.a.b``)."""
    rtype, *names = path.split(".")
    cls = get_fhir_model_class(rtype)
    for name in names:
        fields = {field.alias or key: field for key, field in cls.model_fields.items()}
        if name not in fields:
            return False
        found = re.search(r"(\w+)Type\b", str(fields[name].annotation))
        if found:  # a complex type: its own model class (a primitive has none, and ends the path)
            with contextlib.suppress(KeyError, ValueError):
                cls = get_fhir_model_class(found.group(1))
    return True


def test_every_r5_element_the_mapping_names_exists_in_r5() -> None:
    targets = [
        target
        for row in mapping()
        if row.how in ("element", "custom", "reversed", "NOMA extension")
        for target in row.r5.split(" | ")
    ]
    assert [t for t in targets if not _r5_element(t)] == []
    assert "MedicinalProductDefinition.name.part.type" in targets
    assert "AdministrableProductDefinition.formOf" in targets


def test_the_same_delivery_in_another_order_converts_to_the_same_resources() -> None:
    bundle = json.loads((FIXTURES / "Bundle-paracet.json").read_text())
    resources = [e["resource"] for e in bundle["entry"]]
    forward = {(r["resourceType"], r["id"]): r for r in to_r5(resources).resources}
    backward = {(r["resourceType"], r["id"]): r for r in to_r5(list(reversed(resources))).resources}
    assert forward == backward


def test_an_extension_without_url_on_a_primitive_goes_and_its_empty_holder_with_it() -> None:
    product = {
        "resourceType": MPD,
        "id": "p",
        "name": [{"productName": "Paracet", "_productName": {"extension": [{"valueString": "uten url"}]}}],
    }
    conversion = to_r5([product])
    assert the(conversion, MPD)["name"] == [{"productName": "Paracet"}]
    assert conversion.problems == [
        Problem(
            f"{MPD}/p",
            f"{MPD}.name._productName.extension[0] has no url, so what it means is unknown; left out",
            warning=True,
        )
    ]
    valid(the(conversion, MPD))


# --- the holder, as FEST-made products say it (issue 20) ---------------------------------------------

HOLDER_URL = "http://legemiddelverket.no/fhir/StructureDefinition/safest-maHolderOrManufacturer"


def test_a_package_holder_no_authorization_names_becomes_one_whose_holder_it_is() -> None:
    package = r4("MedicinalProductPackaged-paracet-500-20")
    del package["marketingAuthorization"]
    conversion = to_r5([package, r4("MedicinalProductManufactured-paracet-500")])
    made = the(conversion, "RegulatedAuthorization")
    assert made == {
        "resourceType": "RegulatedAuthorization",
        "id": "mpp-paracet-500-20",
        "contained": [{"resourceType": "Organization", "id": "holder", "name": "Karo Pharma AS"}],
        "subject": [{"reference": "PackagedProductDefinition/mpp-paracet-500-20"}],
        "holder": {"reference": "#holder", "display": "Karo Pharma AS"},
    }
    valid(made)
    assert the(conversion, PPD)["extension"] == [{"url": HOLDER_URL, "valueString": "Karo Pharma AS"}]


def test_a_package_an_authorization_of_the_delivery_covers_gets_no_second_one(delivery: Conversion) -> None:
    authorizations = [r for r in delivery.resources if r["resourceType"] == "RegulatedAuthorization"]
    assert [a["id"] for a in authorizations] == ["ma-paracet-500"]


def test_a_holder_whose_authorization_id_is_taken_is_reported_and_not_made() -> None:
    package = r4("MedicinalProductPackaged-paracet-500-20")
    del package["marketingAuthorization"]
    other = r4("MedicinalProductAuthorization-paracet-500")
    other["id"], other["subject"] = "mpp-paracet-500-20", [{"reference": "MedicinalProduct/elsewhere"}]
    conversion = to_r5([package, other])
    assert [r["id"] for r in conversion.resources if r["resourceType"] == "RegulatedAuthorization"] == [
        "mpp-paracet-500-20"
    ]
    assert the(conversion, "RegulatedAuthorization").get("contained") is None
    assert (
        Problem(
            "MedicinalProductPackaged/mpp-paracet-500-20",
            "the delivery has a RegulatedAuthorization mpp-paracet-500-20 already, so the holder 'Karo Pharma AS' is not made one",
            warning=True,
        )
        in conversion.problems
    )


@pytest.mark.parametrize("value", ["", "  ", None])
def test_a_holder_without_a_name_makes_nothing(value: Any) -> None:
    package = r4("MedicinalProductPackaged-paracet-500-20")
    del package["marketingAuthorization"]
    package["extension"] = [e for e in package["extension"] if e.get("url") != HOLDER_URL]
    package["extension"].append({"url": HOLDER_URL, "valueString": value})
    conversion = to_r5([package])
    assert "RegulatedAuthorization" not in {r["resourceType"] for r in conversion.resources}
