"""A client asking for application/fhir+xml gets the same resource the JSON describes, in spec order.

Two oracles: fhir.resources' own XML parser (the XML must read back to the model the JSON gives)
and, because that parser ignores element order and element ids, an order check of our own against
`elements_sequence()`. Hand-written cases pin the exact bytes.
"""

from __future__ import annotations

import hashlib
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir.resources import get_fhir_model_class
from fhir.resources.resource import Resource
from fhir_core.utils import get_fhir_type_name, is_primitive_type
from lxml import etree
from sqlalchemy.engine import Engine

from grunndata.server import create_app
from grunndata.server.fhir_io.fhirxml import FHIR_NS, XHTML_NS, FhirXmlError, json_to_xml
from grunndata.store.releases import ReleaseBuilder
from grunndata.store.searchparams import index_rows
from tests.conftest import SHARED, require

EXAMPLES = SHARED / "data" / "fhir-r5-idmp-examples"
DECLARATION = b'<?xml version="1.0" encoding="UTF-8"?>'


def _example_names() -> list[str]:
    # A missing directory still yields one case, so that require() fails it on CI.
    return sorted(p.name for p in EXAMPLES.glob("*.json")) or ["(examples missing)"]


def _load_example(name: str) -> dict[str, Any]:
    require(EXAMPLES)
    return orjson.loads(require(EXAMPLES / name).read_bytes())  # type: ignore[no-any-return]


# --- the oracles ----------------------------------------------------------------------------------------


def _comparable(value: Any) -> Any:
    """A model_dump() with each narrative div canonicalised: `&quot;` and `"` are the same XHTML."""
    if isinstance(value, dict):
        return {
            k: etree.tostring(etree.fromstring(v), method="c14n") if k == "div" else _comparable(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    return value


def assert_reads_back_as(xml: bytes, resource: dict[str, Any]) -> None:
    """fhir.resources parses the XML into the model it builds from the JSON."""
    cls = get_fhir_model_class(resource["resourceType"])
    assert _comparable(cls.model_validate_xml(xml).model_dump()) == _comparable(
        cls.model_validate(resource).model_dump()
    )


def assert_spec_order(xml: bytes) -> None:
    """Every element's children come in `elements_sequence()` order; id and url are attributes."""
    root = etree.fromstring(xml)
    assert etree.QName(root).namespace == FHIR_NS
    _check_order(root, get_fhir_model_class(etree.QName(root).localname), etree.QName(root).localname)


def _check_order(element: etree._Element, cls: Any, path: str) -> None:
    sequence = cls.elements_sequence()
    field_names = cls.get_alias_mapping()
    is_resource = issubclass(cls, Resource)
    last = -1
    for child in element:
        qname = etree.QName(child)
        name = qname.localname
        where = f"{path}.{name}"
        assert name in sequence, f"{where}: {cls.__name__} has no element {name}"
        assert name != "id" or is_resource, f"{where}: Element.id must be an attribute"
        assert not (name == "url" and cls.__name__ == "Extension"), (
            f"{where}: Extension.url must be an attribute"
        )
        position = sequence.index(name)
        assert position >= last, f"{where} comes after {sequence[last]}, against the spec order"
        last = position
        field = cls.model_fields[field_names[name]]
        fhir_type = get_fhir_type_name(field)
        if fhir_type == "xhtml":
            assert qname.namespace == XHTML_NS, f"{where} is not in the XHTML namespace"
            continue
        assert qname.namespace == FHIR_NS, f"{where} is not in the FHIR namespace"
        if fhir_type == "Resource":
            assert len(child) == 1, f"{where} must wrap exactly one resource"
            inner = etree.QName(child[0]).localname
            _check_order(child[0], get_fhir_model_class(inner), f"{where}.ofType({inner})")
        elif is_primitive_type(field):
            _check_order(child, get_fhir_model_class("Element"), where)
        else:
            _check_order(child, get_fhir_model_class(fhir_type), where)


def test_the_order_check_notices_elements_out_of_order():
    xml = b'<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/><id value="s"/></Bundle>'
    with pytest.raises(AssertionError, match=r"Bundle\.id comes after type"):
        assert_spec_order(xml)


def test_the_round_trip_check_notices_a_changed_value():
    resource = {"resourceType": "MedicinalProductDefinition", "name": [{"productName": "Paracet"}]}
    xml = json_to_xml(resource).replace(b"Paracet", b"Pinex")
    with pytest.raises(AssertionError):
        assert_reads_back_as(xml, resource)


# --- the official R5 examples ---------------------------------------------------------------------------


def test_the_idmp_examples_are_all_there():
    require(EXAMPLES)
    types = {_load_example(name)["resourceType"] for name in _example_names()}
    assert types == {
        "AdministrableProductDefinition",
        "ClinicalUseDefinition",
        "ConceptMap",
        "Ingredient",
        "ManufacturedItemDefinition",
        "MedicinalProductDefinition",
        "PackagedProductDefinition",
        "RegulatedAuthorization",
        "SubstanceDefinition",
    }


@pytest.mark.parametrize("name", _example_names())
def test_an_official_example_reads_back_as_the_same_resource_in_spec_order(name: str):
    resource = _load_example(name)
    xml = json_to_xml(resource)
    assert xml.startswith(
        DECLARATION + b"<" + resource["resourceType"].encode() + b' xmlns="http://hl7.org/fhir">'
    )
    assert_reads_back_as(xml, resource)
    assert_spec_order(xml)


def _reversed_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reversed_keys(value[k]) for k in reversed(value)}
    if isinstance(value, list):
        return [_reversed_keys(v) for v in value]
    return value


@pytest.mark.parametrize("name", _example_names())
def test_the_json_key_order_does_not_matter(name: str):
    resource = _load_example(name)
    assert json_to_xml(_reversed_keys(resource)) == json_to_xml(resource)


@pytest.mark.parametrize("name", _example_names())
def test_pretty_output_differs_only_in_whitespace_between_fhir_elements(name: str):
    resource = _load_example(name)

    def without_layout(xml: bytes) -> bytes:
        root = etree.fromstring(xml)
        for element in root.iter(f"{{{FHIR_NS}}}*"):
            element.text = None
            for child in element:
                child.tail = None
        return etree.tostring(root)

    pretty = json_to_xml(resource, pretty=True)
    assert pretty != json_to_xml(resource)
    assert without_layout(pretty) == without_layout(json_to_xml(resource))


# --- hand-written cases, exact bytes --------------------------------------------------------------------


SEARCHSET = {
    "total": 1,
    "entry": [
        {
            "search": {"score": 0.75, "mode": "match"},
            "resource": {
                "name": [{"productName": "Paracet 500 mg tabletter"}],
                "id": "mpd-1",
                "resourceType": "MedicinalProductDefinition",
                "identifier": [
                    {
                        "value": "ID_A0F5C4E5-2A6C-4C0B-9D6E-0123456789AB",
                        "system": "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare",
                    }
                ],
            },
            "fullUrl": "http://localhost/fhir/MedicinalProductDefinition/mpd-1",
        },
        {
            "fullUrl": "http://localhost/fhir/RegulatedAuthorization/ra-1",
            "resource": {
                "resourceType": "RegulatedAuthorization",
                "id": "ra-1",
                "subject": [{"reference": "MedicinalProductDefinition/mpd-1"}],
            },
            "search": {"mode": "include"},
        },
    ],
    "link": [
        {"url": "http://localhost/fhir/MedicinalProductDefinition?name=Paracet&_count=1", "relation": "self"},
        {
            "relation": "next",
            "url": "http://localhost/fhir/MedicinalProductDefinition?name=Paracet&_count=1&_offset=1",
        },
    ],
    "type": "searchset",
    "resourceType": "Bundle",
    "meta": {"lastUpdated": "2024-05-02T10:00:00+02:00"},
    "id": "s1",
}

SEARCHSET_XML = """\
<?xml version="1.0" encoding="UTF-8"?>
<Bundle xmlns="http://hl7.org/fhir">
  <id value="s1"/>
  <meta>
    <lastUpdated value="2024-05-02T10:00:00+02:00"/>
  </meta>
  <type value="searchset"/>
  <total value="1"/>
  <link>
    <relation value="self"/>
    <url value="http://localhost/fhir/MedicinalProductDefinition?name=Paracet&amp;_count=1"/>
  </link>
  <link>
    <relation value="next"/>
    <url value="http://localhost/fhir/MedicinalProductDefinition?name=Paracet&amp;_count=1&amp;_offset=1"/>
  </link>
  <entry>
    <fullUrl value="http://localhost/fhir/MedicinalProductDefinition/mpd-1"/>
    <resource>
      <MedicinalProductDefinition>
        <id value="mpd-1"/>
        <identifier>
          <system value="http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare"/>
          <value value="ID_A0F5C4E5-2A6C-4C0B-9D6E-0123456789AB"/>
        </identifier>
        <name>
          <productName value="Paracet 500 mg tabletter"/>
        </name>
      </MedicinalProductDefinition>
    </resource>
    <search>
      <mode value="match"/>
      <score value="0.75"/>
    </search>
  </entry>
  <entry>
    <fullUrl value="http://localhost/fhir/RegulatedAuthorization/ra-1"/>
    <resource>
      <RegulatedAuthorization>
        <id value="ra-1"/>
        <subject>
          <reference value="MedicinalProductDefinition/mpd-1"/>
        </subject>
      </RegulatedAuthorization>
    </resource>
    <search>
      <mode value="include"/>
    </search>
  </entry>
</Bundle>"""


def test_a_searchset_bundle_wraps_each_entry_resource_and_keeps_links_and_total():
    xml = json_to_xml(SEARCHSET, pretty=True)
    assert xml.decode() == SEARCHSET_XML
    assert_reads_back_as(xml, SEARCHSET)
    assert_spec_order(xml)


def test_compact_output_has_no_whitespace_between_elements():
    assert json_to_xml({"resourceType": "Bundle", "type": "searchset", "total": 0}) == (
        DECLARATION
        + b'<Bundle xmlns="http://hl7.org/fhir"><type value="searchset"/><total value="0"/></Bundle>'
    )


def test_an_operation_outcome_escapes_quotes_angle_brackets_and_line_breaks():
    diagnostics = 'Unknown search parameter "nam" in <MedicinalProductDefinition?nam=x>\nKnown: name'
    outcome = {
        "resourceType": "OperationOutcome",
        "issue": [
            {
                "diagnostics": diagnostics,
                "code": "not-supported",
                "severity": "error",
                "expression": ["MedicinalProductDefinition.name"],
            }
        ],
    }
    xml = json_to_xml(outcome)
    assert xml == DECLARATION + (
        b'<OperationOutcome xmlns="http://hl7.org/fhir"><issue><severity value="error"/>'
        b'<code value="not-supported"/><diagnostics value="Unknown search parameter &quot;nam&quot; in '
        b'&lt;MedicinalProductDefinition?nam=x&gt;&#10;Known: name"/>'
        b'<expression value="MedicinalProductDefinition.name"/></issue></OperationOutcome>'
    )
    # The line break survives an XML parser's attribute-value normalisation.
    parsed = get_fhir_model_class("OperationOutcome").model_validate_xml(xml)
    assert parsed.issue[0].diagnostics == diagnostics
    assert_reads_back_as(xml, outcome)


def test_primitive_extensions_and_ids_are_merged_into_the_element():
    concept_map = {
        "_date": {
            "extension": [
                {"valueCode": "unknown", "url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason"}
            ]
        },
        "status": "draft",
        "_status": {
            "id": "s1",
            "extension": [{"url": "http://grunndata.no/fhir/reviewed", "valueBoolean": False}],
        },
        "resourceType": "ConceptMap",
        "meta": {
            "profile": ["http://example.org/a", None, "http://example.org/c"],
            "_profile": [None, {"extension": [{"url": "http://example.org/why", "valueString": "b"}]}, None],
        },
        "id": "atc",
    }
    xml = json_to_xml(concept_map, pretty=True)
    assert (
        xml.decode()
        == """\
<?xml version="1.0" encoding="UTF-8"?>
<ConceptMap xmlns="http://hl7.org/fhir">
  <id value="atc"/>
  <meta>
    <profile value="http://example.org/a"/>
    <profile>
      <extension url="http://example.org/why">
        <valueString value="b"/>
      </extension>
    </profile>
    <profile value="http://example.org/c"/>
  </meta>
  <status id="s1" value="draft">
    <extension url="http://grunndata.no/fhir/reviewed">
      <valueBoolean value="false"/>
    </extension>
  </status>
  <date>
    <extension url="http://hl7.org/fhir/StructureDefinition/data-absent-reason">
      <valueCode value="unknown"/>
    </extension>
  </date>
</ConceptMap>"""
    )
    assert_spec_order(xml)
    # fhir.resources' XML parser drops element ids, so it is asked about everything else.
    without_id = {**concept_map, "_status": {"extension": concept_map["_status"]["extension"]}}
    assert_reads_back_as(json_to_xml(without_id), without_id)


def test_element_ids_are_attributes_and_resource_ids_are_elements():
    resource = {
        "resourceType": "MedicinalProductDefinition",
        "id": "mpd-1",
        "name": [
            {
                "id": "n1",
                "productName": "Paracet",
                "extension": [{"id": "e1", "url": "http://x", "valueCode": "a"}],
            }
        ],
    }
    assert json_to_xml(resource) == DECLARATION + (
        b'<MedicinalProductDefinition xmlns="http://hl7.org/fhir"><id value="mpd-1"/>'
        b'<name id="n1"><extension id="e1" url="http://x"><valueCode value="a"/></extension>'
        b'<productName value="Paracet"/></name></MedicinalProductDefinition>'
    )


NARRATIVE = {
    "resourceType": "MedicinalProductDefinition",
    "text": {
        "div": '<div xmlns="http://www.w3.org/1999/xhtml"><p class="name">Paracet &amp; koffein &lt;500 mg&gt;'
        " – æøå &quot;x&quot;</p></div>",
        "status": "generated",
    },
    "name": [{"productName": "Paracet"}],
}


def test_a_narrative_div_is_embedded_as_xhtml():
    xml = json_to_xml(NARRATIVE)
    assert (
        xml
        == DECLARATION
        + (
            '<MedicinalProductDefinition xmlns="http://hl7.org/fhir"><text><status value="generated"/>'
            '<div xmlns="http://www.w3.org/1999/xhtml"><p class="name">Paracet &amp; koffein &lt;500 mg&gt;'
            ' – æøå "x"</p></div></text><name><productName value="Paracet"/></name>'
            "</MedicinalProductDefinition>"
        ).encode()
    )
    assert etree.fromstring(xml).find(f"{{{FHIR_NS}}}text/{{{XHTML_NS}}}div/{{{XHTML_NS}}}p") is not None
    assert_reads_back_as(xml, NARRATIVE)
    assert_spec_order(xml)


def test_a_div_written_without_xmlns_lands_in_the_xhtml_namespace():
    resource = {"resourceType": "Ingredient", "text": {"status": "generated", "div": "<div><p>x</p></div>"}}
    assert b'<div xmlns="http://www.w3.org/1999/xhtml"><p>x</p></div>' in json_to_xml(resource)


def test_a_narrative_cannot_pull_in_files_or_entities(tmp_path: Path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOPSECRET")
    div = f'<!DOCTYPE div [<!ENTITY xxe SYSTEM "file://{secret}">]><div xmlns="{XHTML_NS}">&xxe;</div>'
    resource = {"resourceType": "Ingredient", "text": {"status": "generated", "div": div}}
    with pytest.raises(
        FhirXmlError, match=r"^Ingredient\.text\.div: the narrative is not well-formed XHTML"
    ) as e:
        json_to_xml(resource)
    assert "TOPSECRET" not in str(e.value)


def test_contained_resources_are_wrapped_in_their_type():
    product = {
        "name": [{"productName": "Paracet"}],
        "contained": [
            {
                "substance": {"code": {"concept": {"text": "paracetamol"}}},
                "resourceType": "Ingredient",
                "id": "ing-1",
                "for": [{"reference": "#"}],
                "status": "active",
                "role": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/ingredient-role",
                            "code": "100000072072",
                        }
                    ]
                },
            }
        ],
        "resourceType": "MedicinalProductDefinition",
        "id": "paracet",
    }
    xml = json_to_xml(product, pretty=True)
    assert (
        xml.decode()
        == """\
<?xml version="1.0" encoding="UTF-8"?>
<MedicinalProductDefinition xmlns="http://hl7.org/fhir">
  <id value="paracet"/>
  <contained>
    <Ingredient>
      <id value="ing-1"/>
      <status value="active"/>
      <for>
        <reference value="#"/>
      </for>
      <role>
        <coding>
          <system value="http://terminology.hl7.org/CodeSystem/ingredient-role"/>
          <code value="100000072072"/>
        </coding>
      </role>
      <substance>
        <code>
          <concept>
            <text value="paracetamol"/>
          </concept>
        </code>
      </substance>
    </Ingredient>
  </contained>
  <name>
    <productName value="Paracet"/>
  </name>
</MedicinalProductDefinition>"""
    )
    assert_reads_back_as(xml, product)
    assert_spec_order(xml)


def test_numbers_keep_the_form_orjson_gives_them_and_a_decimal_keeps_its_own():
    parameters = orjson.loads(
        b'{"resourceType":"Parameters","parameter":['
        b'{"name":"a","valueDecimal":23.5},{"name":"b","valueDecimal":1e-7},{"name":"c","valueDecimal":5.0},'
        b'{"name":"d","valueInteger":50},{"name":"e","valueBoolean":true},{"name":"f","valueDecimal":1.50},'
        b'{"name":"p","resource":{"resourceType":"Bundle","type":"collection"}}]}'
    )
    values = etree.fromstring(json_to_xml(parameters)).xpath(
        "//f:parameter/*[2]/@value", namespaces={"f": FHIR_NS}
    )
    # 1.50 arrives as the float 1.5: its trailing zero is gone before json_to_xml sees it.
    assert values == ["23.5", "1e-7", "5.0", "50", "true", "1.5"]
    assert (
        b'<parameter><name value="p"/><resource><Bundle><type value="collection"/></Bundle></resource>'
        b"</parameter>" in json_to_xml(parameters)
    )
    assert_reads_back_as(json_to_xml(parameters), parameters)

    exact = {"resourceType": "Parameters", "parameter": [{"name": "f", "valueDecimal": Decimal("1.50")}]}
    assert b'<valueDecimal value="1.50"/>' in json_to_xml(exact)


# --- what it refuses -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        (
            {
                "resourceType": "MedicinalProductDefinition",
                "name": [{"productName": "X", "usage": [{"country": {"codingg": []}}]}],
            },
            "MedicinalProductDefinition.name[0].usage[0].country.codingg: unknown element 'codingg' in CodeableConcept",
        ),
        (
            {
                "resourceType": "Bundle",
                "entry": [{}, {"resource": {"resourceType": "Ingredient", "colour": "red"}}],
            },
            "Bundle.entry[1].resource.ofType(Ingredient).colour: unknown element 'colour' in Ingredient",
        ),
        (
            {"resourceType": "MedicinalProductDefinition", "contained": [{"resourceType": "Medicament"}]},
            "MedicinalProductDefinition.contained[0].ofType(Medicament): 'Medicament' is not a FHIR R5 resource type",
        ),
        (
            {"resourceType": "MedicinalProductDefinition", "contained": [{"resourceType": "Coding"}]},
            "MedicinalProductDefinition.contained[0].ofType(Coding): 'Coding' is not a FHIR R5 resource type",
        ),
        (
            {"resourceType": "DomainResource"},
            "DomainResource: 'DomainResource' is not a FHIR R5 resource type",
        ),
        (
            {"resourceType": "Ingredient", "fhir_comments": ["x"]},
            "Ingredient.fhir_comments: unknown element 'fhir_comments' in Ingredient",
        ),
        (
            {"resourceType": "Ingredient", "role": {"text": "x", "_text": {"extension": []}, "_id": {}}},
            "Ingredient.role._id: id is an XML attribute and cannot carry extensions",
        ),
        (
            {"resourceType": "Ingredient", "role": {"coding": [{"code": "a"}], "_coding": [{}]}},
            "Ingredient.role._coding: unknown element '_coding' in CodeableConcept",
        ),
        (
            {"resourceType": "ConceptMap", "meta": {"profile": ["a", "b"], "_profile": [None]}},
            "ConceptMap.meta.profile: profile has 2 values but _profile has 1: they must align",
        ),
        (
            {"resourceType": "ConceptMap", "meta": {"profile": ["a", None]}},
            "ConceptMap.meta.profile[1]: null is only allowed where _profile gives an id or extensions",
        ),
        (
            {"resourceType": "ConceptMap", "status": None},
            "ConceptMap.status: null is only allowed where _status gives an id or extensions",
        ),
        (
            {"resourceType": "ConceptMap", "status": {"code": "draft"}},
            "ConceptMap.status: expected a JSON string, number or boolean, got an object",
        ),
        (
            {"resourceType": "ConceptMap", "identifier": {"value": "x"}},
            "ConceptMap.identifier: expected a JSON array, got an object",
        ),
        (
            {"resourceType": "ConceptMap", "meta": "x"},
            "ConceptMap.meta: expected a JSON object for Meta, got a string",
        ),
        (
            {"resourceType": "ConceptMap", "version": float("nan")},
            "ConceptMap.version: nan is not a FHIR decimal",
        ),
        (
            {"resourceType": "Ingredient", "text": {"status": "generated", "div": "<div>a&nbsp;b</div>"}},
            "Ingredient.text.div: the narrative is not well-formed XHTML: Entity 'nbsp' not defined",
        ),
        (
            {"resourceType": "Ingredient", "text": {"status": "generated", "div": "<p>a</p>"}},
            "Ingredient.text.div: the narrative must be exactly one XHTML <div> element",
        ),
        (
            {"resourceType": "Ingredient", "text": {"status": "generated", "div": "<div/><div/>"}},
            "Ingredient.text.div: the narrative must be exactly one XHTML <div> element",
        ),
    ],
)
def test_data_with_no_faithful_xml_form_is_refused_with_its_path(resource: dict[str, Any], message: str):
    with pytest.raises(FhirXmlError) as e:
        json_to_xml(resource)
    assert str(e.value).startswith(message)
    assert isinstance(e.value, ValueError)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([{"resourceType": "Bundle"}], "a FHIR resource is a JSON object, not list"),
        (b'{"resourceType": "Bundle"}', "a FHIR resource is a JSON object, not bytes"),
        ({"id": "x"}, "the JSON object has no resourceType, so it is not a FHIR resource"),
        ({"resourceType": 7}, "the JSON object has no resourceType, so it is not a FHIR resource"),
    ],
)
def test_something_that_is_not_a_resource_is_refused(value: Any, message: str):
    with pytest.raises(ValueError, match=f"^{message}$"):
        json_to_xml(value)


# --- text XML cannot hold: replaced, never a 500 ------------------------------------------------------


def test_text_xml_cannot_hold_is_written_as_the_replacement_character():
    resource = {
        "resourceType": "MedicinalProductDefinition",
        "id": "x",
        "name": [{"productName": "A\x00B\x01C\ufffeD\uffffE\ud800F\tG"}],
        "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">a\x00b</div>'},
    }
    xml = json_to_xml(resource)
    assert (
        b'<productName value="A\xef\xbf\xbdB\xef\xbf\xbdC\xef\xbf\xbdD\xef\xbf\xbdE\xef\xbf\xbdF&#9;G"/>'
        in xml
    )
    assert b">a\xef\xbf\xbdb</div>" in xml
    assert etree.fromstring(xml).find(f"{{{FHIR_NS}}}name/{{{FHIR_NS}}}productName").get("value") == (
        "A\ufffdB\ufffdC\ufffdD\ufffdE\ufffdF\tG"
    )


def _store_unfit_text(engine: Engine) -> bytes:
    """A national release holding text the importers refuse, written past them; the stored bytes.

    The resource bytes (LargeBinary: BLOB, bytea) hold anything on both backends: a NUL, U+0001 and
    U+FFFF as orjson writes them, and a lone surrogate as a `\\ud800` escape, which orjson refuses to
    read. PostgreSQL `text` holds no NUL, so there the search index gets the name without it.
    """
    name = "A\x00B\x01C\uffffD"
    resource = {"resourceType": "MedicinalProductDefinition", "id": "unfit", "name": [{"productName": name}]}
    body = orjson.dumps({**resource, "description": "SURROGATE"}).replace(b"SURROGATE", b"x\\ud800y")
    indexed = resource if engine.dialect.name == "sqlite" else {**resource, "name": [{"productName": "ABCD"}]}
    with ReleaseBuilder(engine, "safest", "full", "national", "dmp", "DMP", "unfit.json", False) as builder:
        builder.put(
            "MedicinalProductDefinition",
            "unfit",
            body,
            hashlib.sha256(body).hexdigest(),
            fhir_index=index_rows(indexed),
        )
        builder.settle()
        builder.finish(None, {})
    return body


def test_text_a_store_holds_that_xml_cannot_is_replaced_in_read_search_and_history(engine: Engine):
    body = _store_unfit_text(engine)
    xml = {"Accept": "application/fhir+xml"}
    replaced = "A\ufffdB\ufffdC\ufffdD"
    with TestClient(create_app(engine)) as client:
        answers = {
            "read": client.get("/fhir/MedicinalProductDefinition/unfit", headers=xml),
            "search": client.get("/fhir/MedicinalProductDefinition?name=A", headers=xml),
            "history": client.get("/fhir/MedicinalProductDefinition/unfit/_history", headers=xml),
            "pretty": client.get("/fhir/MedicinalProductDefinition/unfit?_pretty=true", headers=xml),
        }
        as_json = client.get("/fhir/MedicinalProductDefinition/unfit")
    for what, answer in answers.items():
        assert answer.status_code == 200, (what, answer.text)
        root = etree.fromstring(answer.content)
        names = [e.get("value") for e in root.iter(f"{{{FHIR_NS}}}productName")]
        descriptions = [e.get("value") for e in root.iter(f"{{{FHIR_NS}}}description")]
        assert (names, descriptions) == ([replaced], ["x\ufffdy"]), what
    assert as_json.status_code == 200
    stored = body[len(b'{"resourceType":"MedicinalProductDefinition","id":"unfit"') :]
    assert as_json.content.endswith(stored)  # JSON: the stored bytes, after the meta the server adds
