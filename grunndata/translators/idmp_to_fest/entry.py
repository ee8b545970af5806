"""The FEST entry back from the FHIR resources made of it, by walking the mapping tables backwards.

The same tables that make FHIR of FEST (translators/fest_to_idmp/tables.py) read it back, so the
two directions cannot drift apart; tests/translators/test_lossless.py proves nothing is lost.

Every rule is read in reverse: a `To` row reads its FHIR path (keeping only the values its
converter could have made, where rows share a list such as identifier[]) and turns each value
back into the FEST element; an `Ext` row decodes its extension tree by the XSD types; an `Into`
row finds its element(s) and recurses; the few `Custom` rows have their inverse below. Elements
come out in table order, which is XSD order.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from grunndata.fhir import systems as s
from grunndata.m30 import FestEntry, Node, catalogues
from grunndata.translators.fest_to_idmp import tables as t
from grunndata.translators.fest_to_idmp import values as v
from grunndata.translators.fest_to_idmp.rules import (
    APPEND,
    FIELD,
    INDEX,
    Custom,
    Ext,
    Into,
    Segment,
    Table,
    To,
    fallback_owner,
)
from grunndata.translators.fest_to_idmp.schema import oppf_xsd
from grunndata.translators.fest_to_idmp.values import XsdNode
from grunndata.translators.shape import EDQM_SYSTEMS, PER_ONE

Json = dict[str, Any]
CATALOGUE_OF = {kind: cat.name for cat in catalogues() for kind in cat.payloads}


class Resources:
    """The resources of one entry, in any order: the primary one (it carries the Oppf envelope),
    secondary ones with the same id (the brand's dose form and routes), and extra ones with the
    id plus "-n" (the brand's Ingredients), put back in the order n gives."""

    def __init__(self, resources: list[Json]) -> None:
        primaries = [r for r in resources if any(e["url"] == s.EXT_OPPFORING for e in r.get("extension", ()))]
        if len(primaries) != 1:
            found = ", ".join(f"{r['resourceType']}/{r['id']}" for r in resources)
            raise ValueError(f"resources of one FEST entry need exactly one with the FEST envelope: {found}")
        self.primary = primaries[0]
        rid = self.primary["id"]
        self.by_type = {r["resourceType"]: r for r in resources if r["id"] == rid}
        self.extra = sorted((r for r in resources if r["id"] != rid), key=_extra_number)


def _extra_number(resource: Json) -> int:
    return int(resource["id"].rsplit("-", 1)[1])


# --- values ---------------------------------------------------------------------------------------


def number_text(holder: Json, key: str) -> str:
    for e in holder.get("extension", ()):
        if e["url"] == s.EXT_LEXICAL:
            return str(e["valueString"])
    value = holder[key]
    return str(value) if isinstance(value, int) else repr(value)


def empty_attributes(holder: Json) -> dict[str, str]:
    return {e["valueString"]: "" for e in holder.get("extension", ()) if e["url"] == s.EXT_EMPTY_ATTRIBUTE}


def coding_attributes(coding: Json, cs: bool) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if "code" in coding:
        attrs["V"] = coding["code"]
    system = coding.get("system")
    if system and not cs:
        attrs["S"] = s.ATC_OID if system == s.ATC else system.removeprefix(s.VOLVEN_PREFIX)
    if "display" in coding:
        attrs["DN"] = coding["display"]
    for e in coding.get("extension", ()):
        if e["url"] == s.EXT_ORIGINAL_TEXT:
            attrs["OT"] = e["valueString"]
    return attrs | empty_attributes(coding)


def fest_id(reference: Json) -> str:
    if "identifier" in reference:
        return str(reference["identifier"]["value"])
    return "ID_" + str(reference["reference"]).split("/", 1)[1]


def leaf(name: str, attrs: dict[str, str] | None = None, text: str | None = None) -> Node:
    return [name, attrs or None, text, None]


def untree(extension: Json, xsd: XsdNode, name: str) -> Node:
    """values.tree backwards."""
    xsd_type, children = xsd
    subs = extension.get("extension")
    if subs == [v.EMPTY]:
        return leaf(name)
    if xsd_type == "complex":
        return [name, None, None, [untree(e, children[e["url"]], e["url"]) for e in subs or ()]]
    key, value = next((k, val) for k, val in extension.items() if k.startswith("value"))
    if xsd_type in ("kith:CV", "kith:CS"):
        return leaf(name, coding_attributes(value, xsd_type == "kith:CS"))
    if xsd_type in ("kith:PQ", "kith:MO"):
        return leaf(name, quantity_attributes(value, "unit" if xsd_type == "kith:PQ" else "currency"))
    if xsd_type in ("kith:URL", "kith:TS"):
        return leaf(name, {"V": local_datetime(value) if key == "valueDateTime" else value})
    if key == "valueReference":
        return leaf(name, text=fest_id(value))
    if key == "valueBoolean":
        return leaf(name, text="true" if value else "false")
    if key == "valueDecimal":
        return leaf(name, text=number_text(extension, "valueDecimal"))
    if key == "valueDateTime":
        return leaf(name, text=local_datetime(value))
    return leaf(name, text=str(value))


def quantity_attributes(quantity: Json, unit_key: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    if "value" in quantity:
        attrs["V"] = number_text(quantity, "value")
    if unit_key in quantity:
        attrs["U"] = quantity[unit_key]
    return attrs | empty_attributes(quantity)


def local_datetime(value: str) -> str:
    return value[:-6]  # the Europe/Oslo offset translate() added


# converter -> (does this FHIR value come from it?, FHIR value -> FEST node named `name`)
Back = tuple[Callable[[Any], bool], Callable[[Any, str], Node]]


def _coded(cs: bool) -> Back:
    return (
        lambda c: "coding" in c,
        lambda c, name: leaf(name, coding_attributes(c["coding"][0], cs)),
    )


def _text(value: Any, name: str) -> Node:
    return leaf(name, text=value)


BACK: dict[Any, Back] = {
    v.text: (lambda x: isinstance(x, str), _text),
    v.fhir_date: (lambda x: isinstance(x, str), _text),
    v.cv: (  # EDQM's dose form beside FEST's is a restatement (translators/shape.py), not FEST's
        lambda c: c.get("system") not in EDQM_SYSTEMS,
        lambda c, name: leaf(name, coding_attributes(c, False)),
    ),
    v.concept: _coded(False),
    v.cs_concept: _coded(True),
    v.text_concept: (lambda c: "coding" not in c, lambda c, name: leaf(name, text=c["text"])),
    v.quantity: (lambda q: True, lambda q, name: leaf(name, quantity_attributes(q, "unit"))),
    v.quantity_value: (lambda q: "value" in q, lambda q, name: leaf(name, text=number_text(q, "value"))),
    v.unit_coding: (
        lambda q: True,
        lambda q, name: leaf(
            name,
            {k: q[f] for k, f in (("V", "code"), ("S", "system"), ("DN", "unit")) if f in q}
            | ({"S": q["system"].removeprefix(s.VOLVEN_PREFIX)} if "system" in q else {})
            | {e["valueString"]: "" for e in q.get("extension", ()) if e["url"] == s.EXT_EMPTY_ATTRIBUTE},
        ),
    ),
    v.reference: (lambda r: True, lambda r, name: leaf(name, text=fest_id(r))),
    t._invented_name: (lambda p: True, lambda p, name: leaf(name, text=p["part"])),
    t._salt: (lambda r: True, lambda r, name: leaf(name, text=fest_id(r["substanceDefinitionReference"]))),
    t._cross_reference: (
        lambda c: True,
        lambda c, name: leaf(name, text=fest_id(c["product"]["reference"])),
    ),
    t._oid_url: (lambda u: True, lambda u, name: leaf(name, text=u.removeprefix("urn:oid:"))),
}


def back_of(convert: Any) -> Back:
    if isinstance(convert, v.Identifier):
        system = convert.system
        return (lambda i: i["system"] == system, lambda i, name: leaf(name, text=i["value"]))
    if isinstance(convert, t.SubstanceName):
        language = convert.language
        return (
            lambda n: n["language"][0]["coding"][0]["code"] == language,
            lambda n, name: leaf(name, text=n["name"]),
        )
    return BACK[convert]


# --- structure ------------------------------------------------------------------------------------


def collect(obj: Any, segments: tuple[Segment, ...], occurrence: int) -> list[Any]:
    """Every value at `segments` below `obj` (a path with ``[]`` reaches every item)."""
    found = [obj]
    for name, mode, index in segments:
        step: list[Any] = []
        for item in found:
            if not isinstance(item, dict) or name not in item:
                continue
            value = item[name]
            if mode == FIELD:
                step.append(value)
            elif mode == APPEND:
                step.extend(value)
            else:
                i = index if mode == INDEX else occurrence
                if i < len(value):
                    step.append(value[i])
        found = step
    return found


def base(path_type: str | None, element: Json, resources: Resources) -> Json | None:
    return resources.by_type.get(path_type) if path_type else element


def unwalk(
    table: Table, element: Json, resources: Resources, xsd: XsdNode, occurrence: int = 0
) -> list[Node]:
    out: list[Node] = []
    for rule in table.rules_in_order:
        child_xsd = xsd[1][rule.fest]
        if isinstance(rule, To):
            out += un_to(rule, element, resources, child_xsd, occurrence)
        elif isinstance(rule, Ext):
            path_type, segments = rule._parsed
            for owner in collect(base(path_type, element, resources), segments, occurrence):
                out += [
                    untree(e, child_xsd, rule.fest)
                    for e in owner.get("extension", ())
                    if e["url"] == rule.url
                ]
        elif isinstance(rule, Into):
            out += un_into(rule, element, resources, child_xsd)
        elif isinstance(rule, Custom):
            out += CUSTOM_BACK[rule.function](element, resources, child_xsd, rule.fest)
    return out


def un_to(rule: To, element: Json, resources: Resources, xsd: XsdNode, occurrence: int) -> list[Node]:
    path_type, segments = rule._parsed
    start = base(path_type, element, resources)
    if start is None:
        return []
    accepts, back = back_of(rule.convert)
    values = collect(start, segments, occurrence)
    if (rule.fest, rule.path) == ("Styrke", "substance.strength[0].presentationQuantity"):
        values += [
            r["numerator"]
            for r in collect(start, segments[:-1], 0)
            for r in [r.get("presentationRatio", {})]
            if "numerator" in r
        ]
    nodes = [back(value, rule.fest) for value in values if accepts(value)]
    for owner in collect(start, fallback_owner(segments), occurrence):
        nodes += [
            untree(e, xsd, rule.fest) for e in owner.get("extension", ()) if e["url"] == s.ext_url(rule.fest)
        ]
    return nodes


def un_into(rule: Into, element: Json, resources: Resources, xsd: XsdNode) -> list[Node]:
    if rule.new is not None:  # one resource per occurrence: the product's Ingredients
        with_strength = rule.fest == "SortertVirkestoffMedStyrke"
        found = [r for r in resources.extra if ("identifier" in r) == with_strength]
        return [
            [rule.fest, None, None, unwalk(rule.table, r, resources, xsd, i) or None]
            for i, r in enumerate(found)
        ]
    path_type, segments = rule._parsed
    start = base(path_type, element, resources)
    if start is None:
        return []
    if rule.fest == "Pakningsinfo":  # the many/one choice of translate()
        count = len(start.get("packageFor", ()))
        levels = collect(start, rule._many[1], 0) if count > 1 else collect(start, segments, 0)[:count]  # type: ignore[index]
    elif not segments:  # the element itself: there when any of its children are
        children = unwalk(rule.table, start, resources, xsd)
        return [[rule.fest, None, None, children]] if children else []
    else:
        levels = collect(start, segments, 0)
    return [
        [rule.fest, None, None, unwalk(rule.table, level, resources, xsd, i) or None]
        for i, level in enumerate(levels)
    ]


def back_substance(ingredient: Json, resources: Resources, xsd: XsdNode, name: str) -> list[Node]:
    return [leaf(name, text=ingredient["identifier"]["value"])]


def back_denominator(ingredient: Json, resources: Resources, xsd: XsdNode, name: str) -> list[Node]:
    strength = ingredient["substance"]["strength"][0]
    ratio = strength.get("presentationRatio")
    given = ratio and ratio["denominator"] != PER_ONE  # PER_ONE: FEST gave no StyrkeNevner
    nodes = [leaf(name, quantity_attributes(ratio["denominator"], "unit"))] if given else []
    return nodes + [
        untree(e, xsd, name) for e in strength.get("extension", ()) if e["url"] == s.ext_url(name)
    ]


def back_interactants(cud: Json, resources: Resources, xsd: XsdNode, name: str) -> list[Node]:
    groups: dict[int, tuple[str | None, dict[int, Node]]] = {}
    for interactant in cud["interaction"]["interactant"]:
        (group,) = [e for e in interactant["extension"] if e["url"] == s.ext_url("Substansgruppe")]
        parts = {e["url"]: e for e in group["extension"]}
        navn = parts["Navn"]["valueString"] if "Navn" in parts else None
        members = groups.setdefault(parts["gruppe"]["valueInteger"], (navn, {}))[1]
        substans = members.setdefault(parts["substans"]["valueInteger"], ["Substans", None, None, []])
        if "itemCodeableConcept" in interactant:
            concept = interactant["itemCodeableConcept"]
            if "text" in concept:
                substans[3].append(leaf("Substans", text=concept["text"]))
            if "coding" in concept:
                substans[3].append(leaf("Atc", coding_attributes(concept["coding"][0], False)))
        else:
            reference = interactant["itemReference"]
            if not any(c[0] == "Substans" for c in substans[3]) and "display" in reference:
                substans[3].insert(0, leaf("Substans", text=reference["display"]))
            substans[3].append(leaf("RefVirkestoff", text=fest_id(reference)))
    out = []
    for _, (navn, members) in sorted(groups.items()):
        children = [leaf("Navn", text=navn)] if navn is not None else []
        out.append([name, None, None, children + [members[i] for i in sorted(members)]])
    return out


def back_parent(concept: Json, resources: Resources, xsd: XsdNode, name: str) -> list[Node]:
    nodes = []
    for prop in concept.get("property", ()):
        if prop["code"] == "fest-ParentId":
            nodes.append(leaf(name, text=prop["valueString"]))
        elif prop["code"] == "parent":
            (parent,) = [c for c in resources.primary["concept"] if c["code"] == prop["valueCode"]]
            nodes.append(leaf(name, text=parent["id"]))
    return nodes


CUSTOM_BACK: dict[Any, Callable[[Json, Resources, XsdNode, str], list[Node]]] = {
    t._substance_of_vms: back_substance,
    t._denominator: back_denominator,
    t._interactants: back_interactants,
    t._parent: back_parent,
}


# --- the entry ------------------------------------------------------------------------------------


def kind_of(primary: Json) -> str:
    systems = (
        {i["system"] for i in (primary.get("identifier") or [])}
        if isinstance(primary.get("identifier"), list)
        else set()
    )
    rtype = primary["resourceType"]
    if rtype == "MedicinalProductDefinition":
        if s.NS_LEGEMIDDELVIRKESTOFF in systems:
            return "LegemiddelVirkestoff"
        return "OrdineringVirkestoff" if s.NS_ORDINERING_VIRKESTOFF in systems else "LegemiddelMerkevare"
    if rtype == "ClinicalUseDefinition":
        not_assessed = (
            primary.get("interaction", {}).get("type", {}).get("coding", [{}])[0].get("code")
            == "ikke-vurdert"
        )
        return "InteraksjonIkkeVurdert" if not_assessed else "Interaksjon"
    if rtype == "Basic":
        return str(primary["code"]["coding"][0]["code"])
    return {
        "PackagedProductDefinition": "Legemiddelpakning",
        "SubstanceDefinition": "Virkestoff",
        "Ingredient": "VirkestoffMedStyrke",
        "ManufacturedItemDefinition": "Legemiddeldose",
        "CodeSystem": "Info",
    }[rtype]


def _envelope(resources: Resources) -> tuple[str, str, str, dict[str, str]]:
    """The catalogue and the Oppf Id, Tidspunkt and Status attributes of the entry."""
    catalogue = CATALOGUE_OF[kind_of(resources.primary)]
    (envelope,) = [e for e in resources.primary["extension"] if e["url"] == s.EXT_OPPFORING]
    oppf_id, tidspunkt, status = untree(envelope, oppf_xsd(catalogue), "Oppf")[3]
    return catalogue, oppf_id[2], tidspunkt[2], status[1]


def listing_of(made: list[Json]) -> tuple[str, str]:
    """The catalogue and Oppf Id of the entry `made` stands for, without reading the rest of it."""
    catalogue, oppf_id, _, _ = _envelope(Resources(made))
    return catalogue, oppf_id


def entry_from(made: list[Json]) -> FestEntry:
    """The FEST entry whose translation `made` is (its resources in any order).

    ValueError when `made` is not the resources of one entry.
    """
    resources = Resources(made)
    kind = kind_of(resources.primary)
    catalogue, oppf_id, tidspunkt, status = _envelope(resources)
    oppf = oppf_xsd(catalogue)
    mapping = t.MAPPINGS[kind]
    if kind == "Info":
        payload = tuple(unwalk(mapping.table, resources.primary, resources, oppf))
    else:
        payload = (
            [kind, None, None, unwalk(mapping.table, resources.primary, resources, oppf[1][kind]) or None],
        )
    return FestEntry(catalogue, oppf_id, tidspunkt, status["V"], status.get("DN"), payload)


EXPIRED = ("U", "Utgått oppføring")  # FEST Status of an expired listing, as DMP words it


def expiry_listing(
    catalogue: str, oppf_id: str, tidspunkt: str, status_dn: str | None = EXPIRED[1]
) -> FestEntry:
    """The `Status U` listing an incremental delivery carries for an expired one: no payload."""
    return FestEntry(catalogue, oppf_id, tidspunkt, EXPIRED[0], status_dn, ())


def oslo_local(moment: datetime) -> str:
    """A moment as FEST writes Tidspunkt: Norwegian local time to the second, without an offset.

    The summer time rule is the EU one (see fest_to_idmp.values._offset): from the last Sunday of
    March 01:00 UTC to the last Sunday of October 01:00 UTC.
    """
    utc = (
        moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(UTC).replace(tzinfo=None)
    )
    start = v.last_sunday(utc.year, 3).replace(hour=1)
    end = v.last_sunday(utc.year, 10).replace(hour=1)
    local = utc + timedelta(hours=2 if start <= utc < end else 1)
    return local.strftime("%Y-%m-%dT%H:%M:%S")
