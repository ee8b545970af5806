"""Every element of the M30 XSD is mapped, carried in an extension or dropped with a reason, and the
published coverage document says so from the same tables the translator walks."""

from __future__ import annotations

import importlib
import importlib.util
import json
from pathlib import Path
from typing import Any

import pytest
from fhir.resources import get_fhir_model_class

from grunndata.translators.fest_to_idmp import coverage, coverage_json
from grunndata.translators.fest_to_idmp.coverage import render_markdown
from grunndata.translators.fest_to_idmp.order import ORDER
from grunndata.translators.fest_to_idmp.xsd_paths import XSD_PATHS
from tests.conftest import M30_XSD, SCHEMAS, require

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "gen_coverage.py"
DOC = ROOT / "docs" / "fest-idmp-coverage.md"


@pytest.fixture(scope="module")
def tool() -> Any:
    spec = importlib.util.spec_from_file_location("gen_coverage", TOOL)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def xsd_paths(tool: Any) -> dict[str, str]:
    require(M30_XSD)
    paths: dict[str, str] = tool.xsd_paths(SCHEMAS)
    return paths


def test_the_element_table_is_the_official_xsd(xsd_paths):
    assert xsd_paths == XSD_PATHS
    assert len(xsd_paths) == 570
    assert (
        xsd_paths["FEST/KatLegemiddelpakning/OppfLegemiddelpakning/Legemiddelpakning/PrisVare/Pris"]
        == "kith:MO"
    )


def test_every_m30_element_is_accounted_for(xsd_paths):
    report = coverage(xsd_paths)
    assert report.unaccounted == ()
    assert report.unknown == ()
    assert len(report.lines) == len(xsd_paths)
    counts = report.counts()
    assert counts["dropped"] == 2  # the delivery header, which the importer keeps on the release
    lines = {line.path.removeprefix("FEST/"): line for line in report.lines}
    pakning = "KatLegemiddelpakning/OppfLegemiddelpakning/Legemiddelpakning/"
    assert lines[pakning + "Ean"].disposition == "fhir"
    assert lines[pakning + "Ean"].fhir == "PackagedProductDefinition.identifier[]"
    assert lines[pakning + "Pakningsinfo/Pakningstype"].fhir == "PackagedProductDefinition.packaging.type"
    assert lines[pakning + "PrisVare/Pris"].disposition == "extension"
    assert "fest-PrisVare" in lines[pakning + "PrisVare/Pris"].fhir
    assert lines["HentetDato"].disposition == "dropped" and "release" in lines["HentetDato"].note
    ikke_vurdert = "KatInteraksjon/OppfInteraksjon/InteraksjonIkkeVurdert/Atc"
    assert lines[ikke_vurdert].fhir.startswith("ClinicalUseDefinition.interaction.interactant")


def test_a_new_xsd_element_or_a_rule_for_a_missing_one_is_reported(xsd_paths):
    """The check above can fail: an element no rule covers, and a rule the XSD has no element for."""
    grown = dict(xsd_paths)
    grown["FEST/KatByttegruppe/OppfByttegruppe/Byttegruppe/Nyhet"] = "string"
    assert coverage(grown).unaccounted == ("FEST/KatByttegruppe/OppfByttegruppe/Byttegruppe/Nyhet",)
    shrunk = {p: t for p, t in xsd_paths.items() if not p.endswith("Legemiddelpakning/Varenr")}
    assert coverage(shrunk).unknown == (
        "FEST/KatLegemiddelpakning/OppfLegemiddelpakning/Legemiddelpakning/Varenr",
    )


def test_the_coverage_document_is_up_to_date(xsd_paths):
    expected = render_markdown(coverage(xsd_paths))
    assert DOC.read_text(encoding="utf-8") == expected, (
        "run: python tools/gen_coverage.py ../shared/schemas/fest-m30"
    )


def test_the_coverage_json_the_server_publishes():
    data = json.loads(json.dumps(coverage_json()))
    assert data["complete"] is True and data["unaccounted"] == []
    assert [c["name"] for c in data["catalogues"]][:3] == [
        "(delivery)",
        "LegemiddelMerkevare",
        "Legemiddelpakning",
    ]
    assert len(data["catalogues"]) == 16
    assert sum(data["summary"].values()) == 570
    merkevare = data["catalogues"][1]
    assert merkevare["mappings"][0]["kind"] == "LegemiddelMerkevare"
    first = merkevare["elements"][0]
    assert set(first) == {"path", "xsdType", "disposition", "fhir", "note"}


def test_the_fhir_element_order_is_that_of_fhir_r5():
    for path, names in ORDER.items():
        resource, *parts = path.split(".")
        if resource[0].isupper() and not parts and resource not in _DATATYPES:
            expected = ["resourceType", *get_fhir_model_class(resource).elements_sequence()]
        else:
            module = importlib.import_module(f"fhir.resources.{resource.lower()}")
            expected = getattr(
                module, resource + "".join(p[0].upper() + p[1:] for p in parts)
            ).elements_sequence()
        assert list(names) == expected, path


_DATATYPES = {
    "MarketingStatus",
    "ProductShelfLife",
    "Quantity",
    "Period",
    "Ratio",
    "CodeableConcept",
    "CodeableReference",
}
