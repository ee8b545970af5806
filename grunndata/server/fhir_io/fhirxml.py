"""FHIR JSON -> FHIR XML, for answering `application/fhir+xml` from the stored JSON bytes, in R5 or R4.

Resources are stored once, as FHIR JSON; XML is derived on the read path, so this module walks the
plain dict from `orjson.loads` and writes strings: no fhir.resources model is built per call. What it
does need is the metadata JSON lacks: the order of each type's elements and each element's type and
cardinality. One writer, two definition sets (`_Release`): R5's from fhir.resources
(`elements_sequence()` and the pydantic fields), R4's from the generated table of the R4
specification (grunndata/fhir/r4_elements.py, which the SAFEST importer reads R4 XML by) for the
/fhir-r4 view. Each is read once per type and cached.

The rules are those of https://hl7.org/fhir/R5/xml.html (R4's are the same): the root is the resourceType in the FHIR
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
from typing import Any, Protocol

import orjson
from fhir.resources import get_fhir_model_class
from fhir.resources.resource import Resource
from fhir_core.fhirabstractmodel import FHIRAbstractModel
from fhir_core.utils import get_fhir_type_name, is_list_type, is_primitive_type
from lxml import etree

from grunndata.fhir import UNFIT_TEXT
from grunndata.fhir.r4_elements import ELEMENTS as R4_ELEMENTS
from grunndata.fhir.r4_elements import LISTED_RESOURCES as R4_RESOURCES

__all__ = ["FHIR_NS", "REPLACEMENT", "VERSIONS", "XHTML_NS", "FhirXmlError", "json_to_xml"]

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


def json_to_xml(resource: dict[str, Any], *, pretty: bool = False, version: str = "5.0") -> bytes:
    """One FHIR JSON resource (as from `orjson.loads`) as UTF-8 FHIR XML, declaration included,
    its elements ordered and typed by the definitions of FHIR `version` ("5.0" or "4.0", as the
    `fhirVersion` MIME parameter names them; `VERSIONS`).

    Raises `FhirXmlError` (a `ValueError`) for anything it cannot write faithfully: an element the
    type does not have, a JSON value of the wrong shape, a narrative that is not well-formed XHTML.
    """
    if not isinstance(resource, dict):
        raise FhirXmlError("", f"a FHIR resource is a JSON object, not {type(resource).__name__}")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str):
        raise FhirXmlError("", "the JSON object has no resourceType, so it is not a FHIR resource")
    release = VERSIONS.get(version)
    if release is None:
        raise ValueError(f"FHIR version {version!r} has no XML writer here; there are {', '.join(VERSIONS)}")
    try:
        info = release.resource_info(resource_type)
        out = [_DECLARATION]
        _write_complex(out, resource_type, f' xmlns="{FHIR_NS}"', resource, info, "\n" if pretty else "")
    except _Invalid as e:
        e.segments.append(resource_type)
        raise FhirXmlError("".join(reversed(e.segments)), e.problem) from None
    return "".join(out).encode()


# --- the metadata, once per type: R5's from fhir.resources, R4's from the R4 table --------------------


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
    type_name: str  # the complex type, for COMPLEX (in R4, a backbone element's own path)
    release: _Release  # whose definitions `type_name` (and an inner resource's type) is looked up in


@dataclass(frozen=True, slots=True)
class _Type:
    name: str
    is_resource: bool
    elements: dict[str, _Element]  # by JSON key: `name`, and `_name` for primitives
    attributes: tuple[str, ...]  # JSON keys written as XML attributes, in order


class _Definitions(Protocol):
    """Where a release's type definitions come from."""

    def is_resource(self, type_name: str) -> bool:
        """Whether `type_name` is a concrete resource type of the release."""

    def elements(self, type_name: str) -> list[tuple[str, str, bool, bool]]:
        """The elements of a type (a datatype, resource or, in R4, a backbone path) in the
        specification's order: (JSON name, FHIR type, repeats, primitive)."""


class _Release:
    """The XML metadata of one FHIR release, made from its definitions once per type and kept."""

    def __init__(self, label: str, definitions: _Definitions) -> None:
        self.label = label
        self._definitions = definitions
        self._types: dict[str, _Type] = {}
        self._element: _Type | None = None

    def type_info(self, type_name: str) -> _Type:
        info = self._types.get(type_name)
        if info is None:
            info = self._types[type_name] = self._build(type_name)
        return info

    def resource_info(self, resource_type: str) -> _Type:
        info = self._types.get(resource_type)
        if info is not None and info.is_resource:
            return info
        if not self._definitions.is_resource(resource_type):
            raise _Invalid(f"{resource_type!r} is not a FHIR {self.label} resource type")
        return self.type_info(resource_type)

    @property
    def element_type(self) -> _Type:
        """Element: the shape of a primitive's `_name` (its id and extensions)."""
        if self._element is None:
            self._element = self.type_info("Element")
        return self._element

    def _build(self, type_name: str) -> _Type:
        """Order, kind and cardinality of each element of the type."""
        is_resource = self._definitions.is_resource(type_name)
        extension = type_name == "Extension"
        elements: dict[str, _Element] = {}
        attributes: list[str] = []
        for position, (name, fhir_type, many, primitive) in enumerate(self._definitions.elements(type_name)):
            if (name == "id" and not is_resource) or (name == "url" and extension):
                elements[name] = _Element(name, position, _Kind.ATTRIBUTE, False, "", self)
                elements["_" + name] = _Element(name, position, _Kind.ATTRIBUTE_EXTENSION, False, "", self)
                attributes.append(name)
            elif fhir_type == "xhtml":
                elements[name] = _Element(name, position, _Kind.XHTML, many, "", self)
            elif primitive:
                elements[name] = elements["_" + name] = _Element(
                    name, position, _Kind.PRIMITIVE, many, "", self
                )
            elif fhir_type == "Resource":
                elements[name] = _Element(name, position, _Kind.RESOURCE, many, "", self)
            else:
                elements[name] = _Element(name, position, _Kind.COMPLEX, many, fhir_type, self)
        return _Type(type_name, is_resource, elements, tuple(attributes))


_ABSTRACT_RESOURCES = frozenset({"Resource", "DomainResource"})


class _R5Definitions:
    """R5: fhir.resources' models, which know each element's order, type and cardinality."""

    def is_resource(self, type_name: str) -> bool:
        try:
            cls = get_fhir_model_class(type_name)
        except (ValueError, KeyError):
            return False
        return issubclass(cls, Resource) and type_name not in _ABSTRACT_RESOURCES

    def elements(self, type_name: str) -> list[tuple[str, str, bool, bool]]:
        cls: type[FHIRAbstractModel] = get_fhir_model_class(type_name)
        field_names = cls.get_alias_mapping()
        out = []
        for name in cls.elements_sequence():
            field = cls.model_fields[field_names[name]]
            out.append((name, str(get_fhir_type_name(field)), is_list_type(field), is_primitive_type(field)))
        return out


class _R4Definitions:
    """R4: the generated table of the R4 specification (grunndata/fhir/r4_elements.py), which lists
    each owner's elements in the specification's order, choices expanded (`valueQuantity`), and a
    backbone element's type as its own path. Primitive types are the lower-case ones."""

    def __init__(self) -> None:
        self._children: dict[str, list[tuple[str, str, bool, bool]]] | None = None

    def is_resource(self, type_name: str) -> bool:
        return type_name in R4_RESOURCES

    def elements(self, type_name: str) -> list[tuple[str, str, bool, bool]]:
        if self._children is None:
            children: dict[str, list[tuple[str, str, bool, bool]]] = {}
            for path, (kind, many) in R4_ELEMENTS.items():
                owner, _, name = path.rpartition(".")
                children.setdefault(owner, []).append((name, kind, many, kind[0].islower()))
            self._children = children
        found = self._children.get(type_name)
        if found is None:
            raise _Invalid(f"{type_name!r} is not a FHIR R4 type this server writes")
        return found


VERSIONS: dict[str, _Release] = {
    "5.0": _Release("R5", _R5Definitions()),
    "4.0": _Release("R4", _R4Definitions()),
}
"""The XML writer's definition sets, by the `fhirVersion` MIME parameter's value."""


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
        _write_complex(out, element.name, "", value, element.release.type_info(element.type_name), nl)
    elif kind is _Kind.RESOURCE:
        resource_type = value.get("resourceType") if type(value) is dict else None
        if not isinstance(resource_type, str):
            raise _Invalid(f"expected a resource (a JSON object with resourceType), got {_json_kind(value)}")
        try:
            info = element.release.resource_info(resource_type)
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
        _write_primitive_one(out, element, name, value, extra, nl)
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
            _write_primitive_one(out, element, name, item, item_extra, nl)
        except _Invalid as e:
            e.segments.append(f"[{index}]")
            raise


def _write_primitive_one(
    out: list[str], element: _Element, name: str, value: Any, extra: Any, nl: str
) -> None:
    attrs = "" if value is None else f' value="{_lexical(value, name)}"'
    if extra is None:
        if value is None:
            raise _Invalid("null is only allowed where _" + name + " gives an id or extensions")
        out.append(f"{nl}<{name}{attrs}/>")
        return
    # `_name` has the shape of Element: id (an attribute) and extensions.
    _write_complex(out, name, attrs, extra, element.release.element_type, nl)


_ESCAPED = (
    ("&", "&amp;"),
    ("<", "&lt;"),
    (">", "&gt;"),
    ('"', "&quot;"),
    ("\t", "&#9;"),
    ("\n", "&#10;"),
    ("\r", "&#13;"),
)
"""In this order (`&` first). `str.replace` per character, not `str.translate` with a table: ten
times faster on a long string, such as the R4 view's `r5-` extensions, JSON full of quotes."""
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
    text = UNFIT_TEXT.sub(REPLACEMENT, text)
    for char, reference in _ESCAPED:
        if char in text:
            text = text.replace(char, reference)
    return text


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
