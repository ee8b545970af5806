"""FHIR R5 JSON -> FHIR XML, for answering `application/fhir+xml` from the stored JSON bytes.

Resources are stored once, as FHIR JSON; XML is derived on the read path, so this module walks the
plain dict from `orjson.loads` and writes strings: no fhir.resources model is built per call. What it
does need from fhir.resources is the R5 metadata JSON lacks: the order of each type's elements
(`elements_sequence()`) and each element's type and cardinality (its pydantic field). That is read
once per type and cached in `_TYPES`.

The rules are those of https://hl7.org/fhir/R5/xml.html: the root is the resourceType in the FHIR
namespace, primitives are `<name value="..."/>` with their `_name` id and extensions merged in,
`Element.id` and `Extension.url` are attributes, resources inside resources are wrapped
(`<contained><Patient>...</Patient></contained>`) and `Narrative.div` is embedded as XHTML.

Numbers: a decimal is a float after `orjson.loads`, so its lexical form in the JSON is gone; it is
written in orjson's shortest round-trip form (`23.5`, `1e-7`, `5.0`), which is the form of every
number this server wrote itself. Integers are written without `.0`. A `decimal.Decimal` (from
`json.loads(..., parse_float=Decimal)`) keeps its lexical form, trailing zeros included.
"""

from __future__ import annotations

import math
import re
import threading
from dataclasses import dataclass
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson
from fhir.resources import get_fhir_model_class
from fhir.resources.resource import Resource
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.utils import get_fhir_type_name, is_list_type, is_primitive_type
from lxml import etree

from grunndata.fhir import UNFIT_TEXT

__all__ = ["FHIR_NS", "REPLACEMENT", "XHTML_NS", "FhirXmlError", "json_to_xml"]

FHIR_NS = "http://hl7.org/fhir"
XHTML_NS = "http://www.w3.org/1999/xhtml"
_DECLARATION = '<?xml version="1.0" encoding="UTF-8"?>'
_INDENT = "  "


class FhirXmlError(ValueError):
    """A resource that has no faithful FHIR XML form, with the place in it (`Bundle.entry[0]...`)."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}" if path else problem)
        self.path = path
        self.problem = problem


def json_to_xml(resource: dict[str, Any], *, pretty: bool = False) -> bytes:
    """One FHIR R5 JSON resource (as from `orjson.loads`) as UTF-8 FHIR XML, declaration included.

    Raises `FhirXmlError` (a `ValueError`) for anything it cannot write faithfully: an element the
    type does not have, a JSON value of the wrong shape, a narrative that is not well-formed XHTML.
    """
    if not isinstance(resource, dict):
        raise FhirXmlError("", f"a FHIR resource is a JSON object, not {type(resource).__name__}")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise FhirXmlError("", "the JSON object has no resourceType, so it is not a FHIR resource")
    try:
        info = _resource_info(resource_type)
        out = [_DECLARATION]
        _write_complex(out, resource_type, f' xmlns="{FHIR_NS}"', resource, info, "\n" if pretty else "")
    except _Invalid as e:
        e.segments.append(resource_type)
        raise FhirXmlError("".join(reversed(e.segments)), e.problem) from None
    return "".join(out).encode()


# --- the metadata, from fhir.resources, once per type ------------------------------------------------


class _Kind(Enum):
    PRIMITIVE = 1  # <name value="..."/>, with `_name` merged in
    COMPLEX = 2  # <name>...</name>
    RESOURCE = 3  # <name><Patient>...</Patient></name>
    XHTML = 4  # Narrative.div
    ATTRIBUTE = 5  # Element.id, Extension.url
    ATTRIBUTE_EXTENSION = 6  # `_id`, `_url`: XML has no place for them


@dataclass(frozen=True, slots=True)
class _Element:
    name: str
    position: int
    kind: _Kind
    many: bool
    type_name: str  # the complex type, for COMPLEX


@dataclass(frozen=True, slots=True)
class _Type:
    name: str
    is_resource: bool
    elements: dict[str, _Element]  # by JSON key: `name`, and `_name` for primitives
    attributes: tuple[str, ...]  # JSON keys written as XML attributes, in order


_TYPES: dict[str, _Type] = {}
_ABSTRACT_RESOURCES = frozenset({"Resource", "DomainResource"})


def _type_info(type_name: str) -> _Type:
    info = _TYPES.get(type_name)
    if info is None:
        info = _TYPES[type_name] = _build_type(get_fhir_model_class(type_name))
    return info


def _resource_info(resource_type: str) -> _Type:
    info = _TYPES.get(resource_type)
    if info is not None and info.is_resource:
        return info
    try:
        cls = get_fhir_model_class(resource_type)
    except ValueError:
        cls = None
    if cls is None or not issubclass(cls, Resource) or resource_type in _ABSTRACT_RESOURCES:
        raise _Invalid(f"{resource_type!r} is not a FHIR R5 resource type")
    return _type_info(resource_type)


def _build_type(cls: type[FHIRAbstractModel]) -> _Type:
    """Order, kind and cardinality of each element of `cls`, from its pydantic fields."""
    type_name = cls.get_resource_type()
    is_resource = issubclass(cls, Resource)
    field_names = cls.get_alias_mapping()
    elements: dict[str, _Element] = {}
    attributes: list[str] = []
    for position, name in enumerate(cls.elements_sequence()):
        field = cls.model_fields[field_names[name]]
        fhir_type = str(get_fhir_type_name(field))
        many = is_list_type(field)
        if (name == "id" and not is_resource) or (name == "url" and type_name == "Extension"):
            elements[name] = _Element(name, position, _Kind.ATTRIBUTE, False, "")
            elements["_" + name] = _Element(name, position, _Kind.ATTRIBUTE_EXTENSION, False, "")
            attributes.append(name)
        elif fhir_type == "xhtml":
            elements[name] = _Element(name, position, _Kind.XHTML, many, "")
        elif is_primitive_type(field):
            elements[name] = elements["_" + name] = _Element(name, position, _Kind.PRIMITIVE, many, "")
        elif fhir_type == "Resource":
            elements[name] = _Element(name, position, _Kind.RESOURCE, many, "")
        else:
            elements[name] = _Element(name, position, _Kind.COMPLEX, many, fhir_type)
    return _Type(type_name, is_resource, elements, tuple(attributes))


# --- the writer ----------------------------------------------------------------------------------------


class _Invalid(Exception):
    """Raised deep in the walk; each level on the way out adds its step of the path."""

    def __init__(self, problem: str, *segments: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.segments = list(segments)  # innermost first


def _write_complex(out: list[str], tag: str, attrs: str, obj: Any, info: _Type, nl: str) -> None:
    """`<tag attrs ...>children</tag>` for the JSON object `obj` of type `info`."""
    if type(obj) is not dict:
        raise _Invalid(f"expected a JSON object for {info.name}, got {_json_kind(obj)}")
    elements = info.elements
    for name in reversed(info.attributes):  # id, url, then the attributes passed in (value)
        if name in obj:
            value = obj[name]
            if type(value) is not str:
                raise _Invalid(f"expected a string, got {_json_kind(value)}", "." + name)
            attrs = f' {name}="{_escape(value)}"{attrs}'
    present: dict[int, _Element] = {}
    for key in obj:
        element = elements.get(key)
        if element is None:
            if key == "resourceType" and info.is_resource:
                continue
            raise _Invalid(f"unknown element {key!r} in {info.name}", "." + key)
        if element.kind is _Kind.ATTRIBUTE:
            continue
        if element.kind is _Kind.ATTRIBUTE_EXTENSION:
            raise _Invalid(f"{element.name} is an XML attribute and cannot carry extensions", "." + key)
        present[element.position] = element
    if not present:
        out.append(f"{nl}<{tag}{attrs}/>")
        return
    out.append(f"{nl}<{tag}{attrs}>")
    inner = nl + _INDENT if nl else ""
    for position in sorted(present):
        element = present[position]
        try:
            if element.kind is _Kind.PRIMITIVE:
                _write_primitive(out, element, obj.get(element.name), obj.get("_" + element.name), inner)
            else:
                _write_other(out, element, obj[element.name], inner)
        except _Invalid as e:
            e.segments.append("." + element.name)
            raise
    out.append(f"{nl}</{tag}>")


def _write_other(out: list[str], element: _Element, value: Any, nl: str) -> None:
    """A complex, resource or XHTML element; each item of it when it repeats."""
    if element.many:
        if type(value) is not list:
            raise _Invalid(f"expected a JSON array, got {_json_kind(value)}")
        for index, item in enumerate(value):
            try:
                _write_one(out, element, item, nl)
            except _Invalid as e:
                e.segments.append(f"[{index}]")
                raise
    else:
        _write_one(out, element, value, nl)


def _write_one(out: list[str], element: _Element, value: Any, nl: str) -> None:
    kind = element.kind
    if kind is _Kind.COMPLEX:
        _write_complex(out, element.name, "", value, _type_info(element.type_name), nl)
    elif kind is _Kind.RESOURCE:
        resource_type = value.get("resourceType") if type(value) is dict else None
        if not isinstance(resource_type, str):
            raise _Invalid(f"expected a resource (a JSON object with resourceType), got {_json_kind(value)}")
        try:
            info = _resource_info(resource_type)
            out.append(f"{nl}<{element.name}>")
            _write_complex(out, resource_type, "", value, info, nl + _INDENT if nl else "")
            out.append(f"{nl}</{element.name}>")
        except _Invalid as e:
            e.segments.append(f".ofType({resource_type})")
            raise
    else:
        if type(value) is not str:
            raise _Invalid(f"expected XHTML as a string, got {_json_kind(value)}")
        out.append(nl + _xhtml(value))


def _write_primitive(out: list[str], element: _Element, value: Any, extra: Any, nl: str) -> None:
    """`<name id="..." value="...">extensions</name>`: the value from `name`, the rest from `_name`."""
    name = element.name
    if not element.many:
        _write_primitive_one(out, name, value, extra, nl)
        return
    if value is not None and type(value) is not list:
        raise _Invalid(f"expected a JSON array, got {_json_kind(value)}")
    if extra is not None and type(extra) is not list:
        raise _Invalid(f"expected a JSON array in _{name}, got {_json_kind(extra)}")
    if value is None:
        if extra is None:
            raise _Invalid("expected a JSON array, got null")
        value = [None] * len(extra)
    elif extra is None:
        extra = [None] * len(value)
    elif len(value) != len(extra):
        raise _Invalid(f"{name} has {len(value)} values but _{name} has {len(extra)}: they must align")
    for index, (item, item_extra) in enumerate(zip(value, extra, strict=True)):
        try:
            _write_primitive_one(out, name, item, item_extra, nl)
        except _Invalid as e:
            e.segments.append(f"[{index}]")
            raise


def _write_primitive_one(out: list[str], name: str, value: Any, extra: Any, nl: str) -> None:
    attrs = "" if value is None else f' value="{_lexical(value, name)}"'
    if extra is None:
        if value is None:
            raise _Invalid("null is only allowed where _" + name + " gives an id or extensions")
        out.append(f"{nl}<{name}{attrs}/>")
        return
    # `_name` has the shape of Element: id (an attribute) and extensions.
    _write_complex(out, name, attrs, extra, _type_info("Element"), nl)


_ESCAPED = str.maketrans(
    {"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "\t": "&#9;", "\n": "&#10;", "\r": "&#13;"}
)
_NEEDS_ESCAPING = re.compile(f'[&<>"\t\n\r]|{UNFIT_TEXT.pattern}')
REPLACEMENT = "\ufffd"
"""What a character XML 1.0 cannot hold (`grunndata.fhir.UNFIT_TEXT`) is written as.

The importers refuse such text, but a store may hold some from before they did, or written past
them. XML has no escape for it (`&#0;` is itself not well-formed), so the choice is an answer
without that resource or one with the character replaced: a 500 would deny every client the whole
page, national data included. U+FFFD, Unicode's replacement character, says "a character was here
that could not be shown"; the JSON answer keeps the stored bytes, so nothing is lost for good.
"""


def _escape(text: str) -> str:
    """`text` as an attribute value; tab and line breaks as character references so they survive."""
    if _NEEDS_ESCAPING.search(text) is None:
        return text
    return UNFIT_TEXT.sub(REPLACEMENT, text).translate(_ESCAPED)


def _lexical(value: Any, name: str) -> str:
    """The XML `value` attribute of a JSON primitive."""
    kind = type(value)
    if kind is str:
        return _escape(value)
    if kind is bool:
        return "true" if value else "false"
    if kind is int:
        return str(value)
    if kind is float:
        if not math.isfinite(value):
            raise _Invalid(f"{value!r} is not a FHIR decimal")
        return orjson.dumps(value).decode()
    if kind is Decimal:
        if not value.is_finite():
            raise _Invalid(f"{value!r} is not a FHIR decimal")
        return str(value)
    raise _Invalid(f"expected a JSON string, number or boolean, got {_json_kind(value)}")


_XHTML_DIV = f"{{{XHTML_NS}}}div"
_XHTML_WRAPPER = f'<wrapper xmlns="{XHTML_NS}">'
_parsers = threading.local()  # lxml parsers must not be shared between threads


def _xhtml(div: str) -> str:
    """The narrative as one XHTML `div` element, parsed (never with DTDs, entities or network)."""
    parser: etree.XMLParser | None = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = etree.XMLParser(
            resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False
        )
    # Wrapped, so that a div written without xmlns lands in the XHTML namespace, and a DOCTYPE or
    # an XML declaration in the string is a syntax error rather than something to obey.
    try:
        wrapper = etree.fromstring(f"{_XHTML_WRAPPER}{UNFIT_TEXT.sub(REPLACEMENT, div)}</wrapper>", parser)
    except etree.XMLSyntaxError as e:
        raise _Invalid(f"the narrative is not well-formed XHTML: {e}") from None
    if (
        len(wrapper) != 1
        or wrapper[0].tag != _XHTML_DIV
        or (wrapper.text or "").strip()
        or (wrapper[0].tail or "").strip()
    ):
        raise _Invalid("the narrative must be exactly one XHTML <div> element")
    return etree.tostring(wrapper[0], encoding="unicode", with_tail=False)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, int | float | Decimal):
        return "a number"
    return type(value).__name__
