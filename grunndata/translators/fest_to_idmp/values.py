"""FEST leaf values -> FHIR data types, each chosen so the M30 writer can get the FEST text back.

The rules, in one place: a CV {V,S,DN} is a Coding {system, code, display} (S as ``urn:oid:``,
ATC as WHO's URI); a CS {V,DN} a Coding in a code system of ours; a PQ a Quantity {value, unit};
an MO a Money {value, currency}; an IDREF a relative Reference to the resource made from the
target entry. A number whose FHIR form would print differently (``1.50``, ``007``) keeps its
FEST text in an extension; a FEST dateTime (local Norwegian time without an offset, which FHIR
requires) gets the Norwegian offset of that moment, which the writer strips again; any value
FHIR cannot hold exactly (a date with a timezone, ``1`` for a boolean) stays a valueString.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from grunndata.fhir import systems as s
from grunndata.m30 import Node

Json = dict[str, Any]

_INT = re.compile(r"-?[0-9]+\Z")
_CODE = re.compile(r"[^\s]+( [^\s]+)*\Z")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}\Z")
_LOCAL_DATETIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?\Z")
_TIME = re.compile(r"[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?\Z")
_FHIR_ID_BAD = re.compile(r"[^A-Za-z0-9.\-]")
INT32 = 2**31

CODED_ATTRIBUTES = frozenset({"V", "S", "DN", "OT"})
VALUE_UNIT = frozenset({"V", "U"})
VALUE_ONLY = frozenset({"V"})

EMPTY: Json = {"url": s.EXT_EMPTY, "valueBoolean": True}


class NotRepresentable(ValueError):
    """This FEST value has no exact form in the FHIR element chosen for it; carry it elsewhere."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what}: no FHIR value can hold it here (empty, or not in FHIR's format)")


def fhir_id(fest_id: str) -> str:
    """FEST ``ID_0008426A-FCA1-...`` -> FHIR id ``0008426A-FCA1-...``.

    Strips ``ID_``, turns every character outside ``[A-Za-z0-9.-]`` into ``-`` and keeps at most
    64 characters. FEST Ids are GUIDs, so the result is unique; references keep the FEST Id as
    well whenever ``"ID_" + fhir_id(x)`` would not give x back.
    """
    return _FHIR_ID_BAD.sub("-", fest_id.removeprefix("ID_"))[:64] or "-"


def id_with_suffix(base: str, suffix: str) -> str:
    """The id of a second resource made from one entry: its FHIR id plus a suffix, still <= 64."""
    return base[: 64 - len(suffix)] + suffix


# --- plain values -------------------------------------------------------------------------------


def text(node: Node) -> str:
    """The text of a leaf element; an empty element is not representable as a FHIR string."""
    if node[1]:
        raise ValueError(f"{node[0]} has attributes {sorted(node[1])}, but M30 gives it none")
    value = node[2]
    if value is None or value == "":
        raise NotRepresentable(node[0])
    return str(value)


def number(value: str) -> tuple[int | float, bool]:
    """A JSON number for an XSD decimal/double/int, and whether printing it gives `value` back."""
    if _INT.match(value):
        n = int(value)
        return n, str(n) == value
    f = float(value)
    if f != f or f in (float("inf"), float("-inf")):
        raise NotRepresentable(value)
    return f, repr(f) == value


def lexical(value: str) -> Json:
    return {"url": s.EXT_LEXICAL, "valueString": value}


def oslo_datetime(value: str) -> str:
    """A FEST local dateTime with the Norwegian (Europe/Oslo) offset that applied at that moment."""
    if not _LOCAL_DATETIME.match(value):
        raise NotRepresentable(value)
    return value + _offset(value[:19])


@lru_cache(maxsize=65536)
def _offset(local: str) -> str:
    """The UTC offset of Norwegian local time `local` (YYYY-MM-DDThh:mm:ss).

    Norway has kept the EU summer time rule since 1996 (FEST is younger): +02:00 from the last
    Sunday of March 03:00 to the last Sunday of October 03:00 local time, else +01:00. The hour that
    happens twice in October counts as summer time, the hour that never happens in March as winter
    time, as Python's zoneinfo does. Computed here so that no tz database is needed.
    """
    moment = datetime.fromisoformat(local)
    start = last_sunday(moment.year, 3).replace(hour=3)
    end = last_sunday(moment.year, 10).replace(hour=3)
    return "+02:00" if start <= moment < end else "+01:00"


def last_sunday(year: int, month: int) -> datetime:
    last = datetime(year, month, 31)
    return last - timedelta(days=(last.weekday() + 1) % 7)


def fhir_date(node: Node) -> str:
    """An xs:date that is also a FHIR date (YYYY-MM-DD without a timezone)."""
    value = text(node)
    if not _DATE.match(value):
        raise NotRepresentable(value)
    return value


# --- coded values ---------------------------------------------------------------------------------


def _attrs(node: Node, allowed: frozenset[str]) -> dict[str, str]:
    attrs: dict[str, str] | None = node[1]
    if node[3] or node[2] not in (None, ""):
        raise ValueError(f"{node[0]} must carry its value in attributes only")
    if not attrs:
        raise NotRepresentable(node[0])
    for key in attrs:
        if key not in allowed:
            raise ValueError(f"{node[0]} has unexpected attributes {sorted(attrs.keys() - allowed)}")
    return attrs


def _with_empty_attributes(out: Json, attrs: dict[str, str]) -> Json:
    """Names the attributes FEST gave as "" (which FHIR cannot hold) in an extension."""
    empty = [k for k, v in attrs.items() if v == ""]
    return {"extension": [{"url": s.EXT_EMPTY_ATTRIBUTE, "valueString": k} for k in empty], **out}


def coding(node: Node, cs_element: str | None = None) -> Json:
    """A CV (`cs_element` None) or CS (named by `cs_element`) as a Coding."""
    attrs = _attrs(node, CODED_ATTRIBUTES)
    out: Json = {}
    oid = attrs.get("S")
    if cs_element is not None:
        if oid is not None:
            raise ValueError(f"{node[0]} is a CS and has no S attribute in M30")
        out["system"] = s.cs_system(cs_element)
    elif oid:
        out["system"] = s.ATC if oid == s.ATC_OID else s.VOLVEN_PREFIX + oid
    code = attrs.get("V")
    if code:
        if not _CODE.match(code):
            raise ValueError(f"{node[0]} has V={code!r}, which is not a code (spaces at its ends?)")
        out["code"] = code
    display = attrs.get("DN")
    if display:
        out["display"] = display
    if "OT" in attrs and attrs["OT"]:
        out = {"extension": [{"url": s.EXT_ORIGINAL_TEXT, "valueString": attrs["OT"]}], **out}
    if "" in attrs.values():
        out = _with_empty_attributes(out, attrs)
    return out


def cv(node: Node) -> Json:
    return coding(node)


def concept(node: Node) -> Json:
    """A CV as a CodeableConcept."""
    return {"coding": [coding(node)]}


def cs_concept(node: Node) -> Json:
    """A CS as a CodeableConcept in the code system of ours named after the element."""
    return {"coding": [coding(node, node[0])]}


def text_concept(node: Node) -> Json:
    """Free text as a CodeableConcept with only text."""
    return {"text": text(node)}


def quantity(node: Node) -> Json:
    """A PQ {V, U} as a Quantity {value, unit}."""
    return _value_and_unit(node, "unit")


def money(node: Node) -> Json:
    """An MO {V, U} as a Money {value, currency}."""
    return _value_and_unit(node, "currency")


def _value_and_unit(node: Node, unit_key: str) -> Json:
    attrs = _attrs(node, VALUE_UNIT)
    out: Json = {}
    if attrs.get("V"):
        value, exact = number(attrs["V"])
        if not exact:
            out["extension"] = [lexical(attrs["V"])]
        out["value"] = value
    if attrs.get("U"):
        out[unit_key] = attrs["U"]
    return _with_empty_attributes(out, attrs) if "" in attrs.values() else out


def quantity_value(node: Node) -> Json:
    """An xs:decimal as the value of a Quantity (to be merged with its unit)."""
    value = text(node)
    n, exact = number(value)
    return {"extension": [lexical(value)], "value": n} if not exact else {"value": n}


def unit_coding(node: Node) -> Json:
    """A unit CV (EnhetPakning) as the unit part of a Quantity: unit=DN, system=S, code=V."""
    c = coding(node)
    out: Json = {}
    if "extension" in c:
        out["extension"] = c["extension"]
    if "display" in c:
        out["unit"] = c["display"]
    if "system" in c:
        out["system"] = c["system"]
    if "code" in c:
        out["code"] = c["code"]
    return out


def uri(node: Node) -> str:
    """A kith URL {V} (or TS {V})."""
    value = _attrs(node, VALUE_ONLY).get("V")
    if not value:
        raise NotRepresentable(node[0])
    return value


# --- references -----------------------------------------------------------------------------------

REFERENCE_TARGETS: dict[str, str] = {
    "RefLegemiddelMerkevare": "MedicinalProductDefinition",
    "RefLegemiddelVirkestoff": "MedicinalProductDefinition",
    "RefPakning": "PackagedProductDefinition",
    "RefLegemiddelDose": "ManufacturedItemDefinition",
    "RefVirkestoff": "SubstanceDefinition",
    "RefVirkestoffMedStyrke": "Ingredient",
    "RefVilkar": "Basic",
    "RefByttegruppe": "Basic",
}
"""IDREF element -> the type of the resource made from its target; others are logical references."""

LOGICAL_REFERENCES: dict[str, tuple[str | None, str]] = {
    "RefRefusjonsgruppe": ("Basic", s.NS_REFUSJONSGRUPPE),
    "RefElement": (None, s.NS_FEST_ID),
    "RefBlandingsveske": (None, s.NS_FEST_ID),
    "ParentId": (None, s.NS_FEST_ID),
}
"""IDREFs to something that is not an entry of its own (a Refusjonsgruppe inside a Refusjonshjemmel),
or whose target catalogue M30 does not fix: a Reference by identifier (FEST Id) only."""


def literal_reference(rtype: str, fest_id: str) -> Json:
    """``{"reference": "<rtype>/<fhir id>"}``, plus the FEST Id when the FHIR id loses it."""
    fid = fhir_id(fest_id)
    out: Json = {"reference": f"{rtype}/{fid}"}
    if "ID_" + fid != fest_id:
        out["identifier"] = {"system": s.NS_FEST_ID, "value": fest_id}
    return out


def reference(node: Node) -> Json:
    """An IDREF element as a Reference, literal where the target is a resource of ours."""
    name, fest_id = node[0], text(node)
    rtype = REFERENCE_TARGETS.get(name)
    if rtype is not None:
        return literal_reference(rtype, fest_id)
    logical_type, system = LOGICAL_REFERENCES.get(name, (None, s.NS_FEST_ID))
    out: Json = {"type": logical_type} if logical_type else {}
    out["identifier"] = {"system": system, "value": fest_id}
    return out


@dataclass(frozen=True)
class Identifier:
    """A converter: the element's text as an Identifier in `system`."""

    system: str

    def __call__(self, node: Node) -> Json:
        return {"system": self.system, "value": text(node)}


# --- the generic FEST element tree -> nested extension encoding ---------------------------------


def _boolean(node: Node) -> tuple[str, Any]:
    value = text(node)
    return ("valueBoolean", value == "true") if value in ("true", "false") else ("valueString", value)


def _integer(node: Node) -> tuple[str, Any]:
    value = text(node)
    if _INT.match(value):
        n = int(value)
        if str(n) == value and -INT32 <= n < INT32:
            return "valueInteger", n
    return "valueString", value


def _decimal(node: Node) -> tuple[str, Any]:
    value = text(node)
    try:
        num, exact = number(value)
    except ValueError:
        return "valueString", value
    return ("valueDecimal", num) if exact else ("valueString", value)


def _date(node: Node) -> tuple[str, Any]:
    value = text(node)
    return ("valueDate", value) if _DATE.match(value) else ("valueString", value)


def _time(node: Node) -> tuple[str, Any]:
    value = text(node)
    return ("valueTime", value) if _TIME.match(value) else ("valueString", value)


_LEAF: dict[str, Callable[[Node], tuple[str, Any]]] = {
    "kith:CV": lambda node: ("valueCoding", coding(node)),
    "kith:CS": lambda node: ("valueCoding", coding(node, node[0])),
    "kith:PQ": lambda node: ("valueQuantity", quantity(node)),
    "kith:MO": lambda node: ("valueMoney", money(node)),
    "kith:URL": lambda node: ("valueUri", uri(node)),
    "kith:TS": lambda node: _datetime_value(uri(node)),
    "IDREF": lambda node: ("valueReference", reference(node)),
    "boolean": _boolean,
    "int": _integer,
    "integer": _integer,
    "decimal": _decimal,
    "double": _decimal,
    "date": _date,
    "dateTime": lambda node: _datetime_value(text(node)),
    "time": _time,
}


def leaf_value(node: Node, xsd_type: str) -> tuple[str, Any]:
    """The ``value[x]`` key and value of an extension carrying a FEST leaf of type `xsd_type`:
    typed where FHIR gives the FEST text back exactly, else valueString (string, ID, duration...)."""
    convert = _LEAF.get(xsd_type)
    return convert(node) if convert is not None else ("valueString", text(node))


def _datetime_value(value: str) -> tuple[str, Any]:
    try:
        return "valueDateTime", oslo_datetime(value)
    except NotRepresentable:
        return "valueString", value


XsdNode = tuple[str, dict[str, Any]]
"""(XSD type of an element, {child element name: XsdNode}); types as in xsd_paths.XSD_PATHS."""


def tree(node: Node, xsd: XsdNode, url: str) -> Json:
    """A FEST element, with everything below it, as an extension: one sub-extension per child
    element, in document order, its url the child's name and its value typed by the XSD."""
    xsd_type, children = xsd
    if xsd_type == "complex":
        kids = node[3]
        if node[1] or node[2] not in (None, ""):
            raise ValueError(f"{node[0]} may hold only elements")
        if not kids:
            return {"extension": [EMPTY], "url": url}
        out = []
        for kid in kids:
            sub = children.get(kid[0])
            if sub is None:
                raise ValueError(f"{node[0]} cannot hold {kid[0]} (not in the M30 XSD)")
            out.append(tree(kid, sub, kid[0]))
        return {"extension": out, "url": url}
    try:
        key, value = leaf_value(node, xsd_type)
    except NotRepresentable:
        return {"extension": [EMPTY], "url": url}
    return {"url": url, key: value}
