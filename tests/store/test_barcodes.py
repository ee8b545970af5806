"""How a package's levels are counted for a barcode search (store/barcodes.py), and what is indexed."""

from __future__ import annotations

from typing import Any

from grunndata.store import barcodes
from grunndata.store.searchparams import IndexRow, index_rows

GTIN = "https://www.gs1.org/gtin"
PPD = "PackagedProductDefinition"


def _level(code: str, *inner: dict[str, Any], item: str | None = None) -> dict[str, Any]:
    level: dict[str, Any] = {"identifier": [{"system": GTIN, "value": code}]}
    if inner:
        level["packaging"] = list(inner)
    if item:
        level["containedItem"] = [{"item": {"reference": {"reference": item}}}]
    return level


NESTED = {
    "resourceType": PPD,
    "id": "p",
    "identifier": [{"system": "http://dmp.no/fhir/NamingSystem/fest-varenummer", "value": "123456"}],
    "packaging": _level("A", _level("B", _level("C", item="ManufacturedItemDefinition/m"))),
}
# R4 with two top packageItem: R5's one wrapper with nothing of its own around them
WRAPPED = {
    "resourceType": PPD,
    "id": "w",
    "packaging": {"packaging": [_level("X", _level("X2")), _level("Y", item="ManufacturedItemDefinition/n")]},
}


def test_levels_are_counted_from_the_top() -> None:
    assert [(lv.depth, lv.identifiers[0]["value"]) for lv in barcodes.levels(NESTED)] == [
        (1, "A"),
        (2, "B"),
        (3, "C"),
    ]


def test_r5s_wrapper_around_several_packages_is_no_level() -> None:
    assert [(lv.depth, lv.identifiers[0]["value"]) for lv in barcodes.levels(WRAPPED)] == [
        (1, "X"),
        (2, "X2"),
        (1, "Y"),
    ]
    assert barcodes.level_codes(WRAPPED, 1) == [
        {"system": GTIN, "value": "X"},
        {"system": GTIN, "value": "Y"},
    ]


def test_a_single_inner_level_under_an_empty_outer_one_is_still_counted_from_the_outer() -> None:
    """Only a wrapper around several packages is skipped: one inner level under an empty outer
    level is a level below it, as the nesting says."""
    lone = {"resourceType": PPD, "id": "l", "packaging": {"packaging": [_level("Z")]}}
    assert [(lv.depth, lv.identifiers) for lv in barcodes.levels(lone)] == [
        (1, []),
        (2, [{"system": GTIN, "value": "Z"}]),
    ]


def test_the_index_holds_each_levels_codes_under_its_parameter() -> None:
    rows = [r for r in index_rows(NESTED) if r.system == GTIN or r.param.endswith("any-level-item")]
    assert rows == [
        IndexRow(f"{PPD}.any-level-item", "", "ManufacturedItemDefinition/m"),
        IndexRow(f"{PPD}.barcode", GTIN, "A"),
        IndexRow(f"{PPD}.barcode", GTIN, "B"),
        IndexRow(f"{PPD}.barcode", GTIN, "C"),
        IndexRow(f"{PPD}.identifier", GTIN, "A"),  # R5's identifier: the outer level only
        IndexRow(f"{PPD}.package-item-level-one", GTIN, "A"),
        IndexRow(f"{PPD}.package-item-level-three", GTIN, "C"),
        IndexRow(f"{PPD}.package-item-level-two", GTIN, "B"),
    ]
    varenr = [r for r in index_rows(NESTED) if r.param == f"{PPD}.barcode" and r.system != GTIN]
    assert [r.value for r in varenr] == ["123456"]  # the package's own identifiers are product codes too


def test_matches_say_where() -> None:
    forms = ((GTIN,), ("C",))
    (match,) = barcodes.package_matches(NESTED, forms)
    assert (match.where, match.depth, match.unit_dose) == ("packaging", 3, False)
    assert barcodes.package_matches(NESTED, forms, depth=2) == []
    item = {"ManufacturedItemDefinition/m": [{"system": "lmr", "value": "9"}]}
    assert [m.extension() for m in barcodes.package_matches(NESTED, ((GTIN,), ("none",)), None, item)] == [
        {
            "url": barcodes.MATCH_EXTENSION,
            "extension": [
                {"url": "where", "valueCode": "item"},
                {"url": "item", "valueReference": {"reference": "ManufacturedItemDefinition/m"}},
                {"url": "identifier", "valueIdentifier": {"system": "lmr", "value": "9"}},
            ],
        }
    ]


def test_nothing_to_count_in_a_package_without_packaging_or_with_junk() -> None:
    assert barcodes.levels({"resourceType": PPD, "id": "e"}) == []
    assert barcodes.levels({"resourceType": PPD, "id": "j", "packaging": "junk"}) == []
    junk = {"resourceType": PPD, "id": "k", "packaging": {"packaging": ["x", 1], "identifier": ["y"]}}
    assert [(lv.depth, lv.identifiers) for lv in barcodes.levels(junk)] == [(1, [])]
    assert barcodes.any_level_codes(junk) == []


def test_the_r4_view_answers_dmps_parameters_with_the_r5_ones() -> None:
    from grunndata.store.searchparams import r4_barcode_param

    for word in ("one", "two", "three"):
        param = r4_barcode_param("MedicinalProductPackaged", f"package-item-level-{word}")
        assert param is not None and (param.resource, param.code) == (PPD, f"package-item-level-{word}")
    param = r4_barcode_param("MedicinalProductManufactured", "barcode")
    assert param is not None and (param.resource, param.code) == ("ManufacturedItemDefinition", "barcode")
    assert r4_barcode_param("MedicinalProductManufactured", "package-item-level-one") is None
    assert r4_barcode_param("MedicinalProductPackaged", "package-item-level-four") is None
    assert r4_barcode_param("MedicinalProduct", "barcode") is None
