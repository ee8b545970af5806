"""SAFEST R4 XML is read by the R4 element definitions: the JSON we make from an XML file is the JSON
an outside converter (FHIR.js) makes of it, for each of DMP's 12 published examples in both forms.

Examples published as XML: our JSON of the XML == FHIR.js's JSON of the same XML. Examples published
as JSON: FHIR.js writes them as XML, and our JSON of that XML == the published JSON. Equal as JSON
values: 1.50 and 1.5 are the same number, true is not 1.
"""

from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from grunndata.errors import DeliveryError
from grunndata.importers.resources import read_resources
from grunndata.translators.safest import json_bytes
from tests.conftest import require

ROOT = Path(__file__).resolve().parents[2]
from tests.importers.conftest import EXAMPLE_NAMES, EXAMPLES  # noqa: E402

sys.path.insert(0, str(ROOT / "tools"))
import gen_r4_elements  # noqa: E402


def json_value(value: Any) -> Any:
    """A JSON value in a form where == is JSON's equality: numbers by value, booleans apart from them."""
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    return ("number", Decimal(str(value)).normalize())


def ours(xml_file: Path) -> dict[str, Any]:
    [found] = list(read_resources(xml_file))
    return found.resource


def published_json(path: Path) -> Any:
    return json.loads(path.read_text("utf-8"), parse_float=Decimal)


@pytest.mark.parametrize("name", EXAMPLE_NAMES)
def test_our_json_of_each_example_is_fhir_js_json(name: str, other_forms: dict[str, Path]) -> None:
    if name.endswith(".xml"):
        xml_file, expected = EXAMPLES / name, published_json(other_forms[name])
    else:
        xml_file, expected = other_forms[name], published_json(EXAMPLES / name)
    # FHIR.js writes the decimal 5.0 of safest-MedicinalProductPharmaceutical-fromFhirInstance.json
    # as value="5": it loses the precision that R4 says a decimal has (datatypes.html#decimal: "the
    # precision of the decimal value has significance ... the original precision should be
    # preserved"). We keep what the XML says (5), and 5 == 5.0 as JSON numbers.
    assert json_value(ours(xml_file)) == json_value(expected)


def test_every_published_example_is_read() -> None:
    require(EXAMPLES)
    assert len(EXAMPLE_NAMES) == 12


def test_the_committed_r4_table_is_what_the_tool_makes_of_fhir_js(fhir_js: Path) -> None:
    committed = (ROOT / "grunndata" / "fhir" / "r4_elements.py").read_text("utf-8")
    assert gen_r4_elements.render(*gen_r4_elements.extract(fhir_js)) == committed


# -- the reading rules, one small file each ----------------------------------------------------------


def read(tmp_path: Path, body: str, rtype: str = "MedicinalProductPackaged") -> dict[str, Any]:
    path = tmp_path / "delivery.xml"
    path.write_text(f'<{rtype} xmlns="http://hl7.org/fhir">\n  <id value="p1"/>\n{body}\n</{rtype}>', "utf-8")
    return ours(path)


def test_a_repeating_element_that_comes_once_is_a_list(tmp_path: Path) -> None:
    resource = read(tmp_path, '<subject><reference value="MedicinalProduct/1"/></subject>')
    assert resource == {
        "resourceType": "MedicinalProductPackaged",
        "id": "p1",
        "subject": [{"reference": "MedicinalProduct/1"}],
    }


def test_a_reference_identifier_is_one_object(tmp_path: Path) -> None:
    resource = read(
        tmp_path,
        '<extension url="http://x/s"><valueReference><identifier><value value="MP/3"/></identifier>'
        "</valueReference></extension>",
    )
    assert resource["extension"] == [
        {"url": "http://x/s", "valueReference": {"identifier": {"value": "MP/3"}}}
    ]


def test_a_decimal_keeps_its_precision_and_an_integer_is_an_integer(tmp_path: Path) -> None:
    resource = read(
        tmp_path,
        '<packageItem><type><text value="Eske"/></type><quantity><value value="1.50"/></quantity>'
        '<extension url="http://x/n"><valueInteger value="20"/></extension></packageItem>',
    )
    item = resource["packageItem"][0]
    assert item["quantity"] == {"value": Decimal("1.50")}
    assert str(item["quantity"]["value"]) == "1.50"
    assert item["extension"] == [{"url": "http://x/n", "valueInteger": 20}]
    assert json_bytes(item["quantity"]) == b'{"value":1.50}'  # stored as the number it was written


def test_a_primitive_with_an_id_and_an_extension_gets_its_underscore_twin(tmp_path: Path) -> None:
    resource = read(
        tmp_path,
        '<meta><profile value="http://a"/><profile id="p2">'
        '<extension url="http://x/why"><valueString value="none"/></extension></profile></meta>'
        '<description id="d" value="Eske"><extension url="http://x/lang"><valueCode value="nb"/></extension>'
        "</description>",
    )
    # FHIR.js 4.12.0's xmlToJson stops with a TypeError on this meta (a repeating primitive, one item
    # with an extension); R4 json.html says the two arrays line up with null where an item has none.
    assert resource["meta"] == {
        "profile": ["http://a", None],
        "_profile": [None, {"id": "p2", "extension": [{"url": "http://x/why", "valueString": "none"}]}],
    }
    assert resource["description"] == "Eske"
    assert resource["_description"] == {"id": "d", "extension": [{"url": "http://x/lang", "valueCode": "nb"}]}


def test_contained_resources_element_ids_and_the_narrative(tmp_path: Path) -> None:
    resource = read(
        tmp_path,
        '<text><status value="generated"/><div xmlns="http://www.w3.org/1999/xhtml"><p>Eske</p></div></text>'
        '<contained><MedicinalProduct><id value="mp"/><domain id="d1"><code value="100000000012"/></domain>'
        "</MedicinalProduct></contained>",
    )
    assert resource["text"] == {
        "status": "generated",
        "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p>Eske</p></div>',
    }
    assert resource["contained"] == [
        {"resourceType": "MedicinalProduct", "id": "mp", "domain": {"id": "d1", "code": "100000000012"}}
    ]


@pytest.mark.parametrize(
    ("body", "sentence"),
    [
        (
            '<packageItem><colour value="red"/></packageItem>',
            "delivery.xml line 3: MedicinalProductPackaged.packageItem[0].colour is not an element of R4 "
            "MedicinalProductPackaged.packageItem",
        ),
        (
            '<description value="a"/>\n<description value="b"/>',
            "delivery.xml line 4: MedicinalProductPackaged.description comes 2 times; R4 allows it once",
        ),
        (
            '<extension url="http://x"><valueBoolean value="yes"/></extension>',
            "delivery.xml line 3: MedicinalProductPackaged.extension[0].valueBoolean is 'yes', not a FHIR "
            "boolean (true or false)",
        ),
        (
            '<extension url="http://x"><valueDecimal value="1,5"/></extension>',
            "delivery.xml line 3: MedicinalProductPackaged.extension[0].valueDecimal is '1,5', not a FHIR decimal",
        ),
        (
            '<subject ref="x"><reference value="a"/></subject>',
            "delivery.xml line 3: MedicinalProductPackaged.subject[0] has an attribute ref, which FHIR XML "
            "does not give it",
        ),
    ],
    ids=["unknown element", "twice where once", "not a boolean", "not a decimal", "unknown attribute"],
)
def test_what_r4_does_not_allow_is_refused_with_its_place(tmp_path: Path, body: str, sentence: str) -> None:
    with pytest.raises(DeliveryError) as refused:
        read(tmp_path, body)
    assert str(refused.value) == sentence


def test_a_terminology_resource_is_read_as_r4_and_as_r5_when_r4_lacks_its_elements(tmp_path: Path) -> None:
    """ConceptMap is R4 and R5 under one root: R4's equivalence reads by the R4 definitions (its
    identifier one object), R5's relationship through the R5 model, and neither is a sentence."""
    group = '<group><source value="urn:a"/><element><code value="1"/><target><code value="2"/>{}</target></element></group>'
    head = '<ConceptMap xmlns="http://hl7.org/fhir"><id value="m"/><identifier><value value="i"/></identifier><status value="draft"/>'
    (tmp_path / "r4.xml").write_text(head + group.format('<equivalence value="wider"/>') + "</ConceptMap>")
    (tmp_path / "r5.xml").write_text(
        head + group.format('<relationship value="equivalent"/>') + "</ConceptMap>"
    )
    (tmp_path / "neither.xml").write_text(head + '<bogus value="1"/></ConceptMap>')
    [r4] = [f.resource for f in read_resources(tmp_path / "r4.xml")]
    assert (r4["identifier"], r4["group"][0]["element"][0]["target"]) == (
        {"value": "i"},
        [{"code": "2", "equivalence": "wider"}],
    )
    [r5] = [f.resource for f in read_resources(tmp_path / "r5.xml")]
    assert (r5["identifier"], r5["group"][0]["element"][0]["target"]) == (
        [{"value": "i"}],
        [{"code": "2", "relationship": "equivalent"}],
    )
    with pytest.raises(DeliveryError) as refused:
        list(read_resources(tmp_path / "neither.xml"))
    assert str(refused.value) == (
        "neither.xml line 1: ConceptMap.bogus is not an element of R4 ConceptMap "
        "(and read as R5: the ConceptMap in it is not valid FHIR R5 XML ('bogus'))"
    )
