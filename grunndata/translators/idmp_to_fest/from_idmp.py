"""FEST entries for national data that came from SAFEST/IDMP alone, and what they lack.

A product FEST never listed has FHIR resources but no FEST entry to read back. Here each of its
resources is put in the shape the FEST -> IDMP tables give a resource made from FEST: only what
FEST can hold, in FEST's code and identifier systems (an EDQM code becomes its FEST code through
our reviewed ConceptMaps), one value where FEST has one, and the FEST envelope. `entry_from` then
reads it back through those same tables, so every element comes out in XSD order and means what
it means on the way in. What IDMP does not say stays absent.

An XSD-required element IDMP does not fill is decided per element in `REQUIRED`: the entry is
left out (a product without a name, prescription group or brand name; a package without a
varenr), the optional element holding it is dropped, or, where the XSD allows an empty value
and the rest is worth having, it is written empty (three facts of Pakningsinfo). `IdmpReport`
counts all of it per catalogue and XSD path.

Ids: a FEST id the resource carries (in any identifier system the SAFEST links know), else
"ID_" + an uppercase UUID 5 of the resource type and id, so every export gives the same Ids;
the Oppf Id is the UUID 5 of "Oppf:" + type and id.
"""

from __future__ import annotations

import copy
import hashlib
import re
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import Enum
from typing import Any

import orjson

from grunndata.fhir import systems as s
from grunndata.m30 import FestEntry, Node
from grunndata.terminology import ConceptMapIndex
from grunndata.translators.fest_to_idmp import values as v
from grunndata.translators.fest_to_idmp.schema import oppf_xsd
from grunndata.translators.fest_to_idmp.values import XsdNode
from grunndata.translators.idmp_to_fest.entry import CATALOGUE_OF, entry_from
from grunndata.translators.safest.links import fest_links

Json = dict[str, Any]

MPD, PPD, MID = "MedicinalProductDefinition", "PackagedProductDefinition", "ManufacturedItemDefinition"
APD, ING, SD = "AdministrableProductDefinition", "Ingredient", "SubstanceDefinition"

NAMESPACE = uuid.UUID("54c37638-096b-4943-8433-baaf9892c5af")
"""Fixed for good: the Ids of IDMP-only entries are UUID 5s in it, so they never change."""
ACTIVE = ("A", "Aktiv oppføring")  # FEST Status of a listing, as DMP words it

VOLVEN = s.VOLVEN_PREFIX + "2.16.578.1.12.4.1.1."
LEGEMIDDELFORM, ADMINISTRASJONSVEI = VOLVEN + "7448", VOLVEN + "7477"
PAKNINGSTYPE, ENHET_PAKNING = VOLVEN + "7449", VOLVEN + "7452"
STYRKEOPERATOR, SVART_TREKANT = VOLVEN + "7445", VOLVEN + "7510"
EQUAL = {"system": STYRKEOPERATOR, "code": "L", "display": "Lik"}
"""Styrkeoperator of an exact strength (an IDMP Quantity or Ratio), as every FEST entry writes it."""

EDQM, EDQM_ALIASES = s.EDQM, s.EDQM_ALIASES
GTIN_SYSTEMS = (  # GS1's, and Farmalogg's as SAFEST gives it (reference/idmp-fhir.md; the R4 examples)
    s.NS_GTIN,
    "https://farmalogg.no/produktkode",
    "https://farmalogg.no/produktkode/GTIN",
)
NAME_PART_LIST = "lists/220000000000"  # EMA SPOR's list of name part types (both URL forms end so)
INVENTED_PART = "220000000002"  # ... and its "Invented name part"
_NCNAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*\Z")
_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?\Z")

FestCode = Callable[[str, str, str], tuple[str, str | None] | None]
"""(FEST code system, system, code) -> (FEST code, its display) meaning the same, or None."""
FestIdOf = Callable[[str], str | None]
"""A key ("Type/id" of a resource, or "system|value" of an identifier or coding) -> the FEST Id of
the entry made of that resource, or None. The exporter answers from what it has written and what
FEST made."""


# --- the required elements, decided one by one -----------------------------------------------------


class Missing(Enum):
    LEAVE_OUT = "the entry is left out"
    DROP_PARENT = "the optional element holding it is left out"
    PLACEHOLDER = "written empty (the XSD allows it)"


@dataclass(frozen=True, slots=True)
class Required:
    when_missing: Missing
    why: str


REQUIRED: dict[str, dict[str, Required]] = {
    "LegemiddelMerkevare": {
        "NavnFormStyrke": Required(
            Missing.LEAVE_OUT, "IDMP gives no product name (MedicinalProductDefinition.name.productName)"
        ),
        "Reseptgruppe": Required(
            Missing.LEAVE_OUT,
            f"IDMP gives no prescription group (legalStatusOfSupply in {s.RESEPTGRUPPE}) for the product "
            "or its packages; an empty one would hide whether it needs a prescription",
        ),
        "Varenavn": Required(
            Missing.LEAVE_OUT,
            "IDMP gives no brand name (an invented name part in MedicinalProductDefinition.name.part)",
        ),
        "AdministreringLegemiddel/Administrasjonsvei": Required(
            Missing.DROP_PARENT, f"no route with a FEST code ({ADMINISTRASJONSVEI})"
        ),
        "SortertVirkestoffMedStyrke/Sortering": Required(Missing.DROP_PARENT, "always set"),
        "SortertVirkestoffMedStyrke/RefVirkestoffMedStyrke": Required(Missing.DROP_PARENT, "always set"),
        "SortertVirkestoffUtenStyrke/Sortering": Required(Missing.DROP_PARENT, "always set"),
        "SortertVirkestoffUtenStyrke/RefVirkestoff": Required(Missing.DROP_PARENT, "always set"),
    },
    "Legemiddelpakning": {
        "NavnFormStyrke": Required(
            Missing.LEAVE_OUT,
            "IDMP gives no name for the package (PackagedProductDefinition.name) or its product",
        ),
        "Reseptgruppe": Required(
            Missing.LEAVE_OUT,
            f"IDMP gives no prescription group (legalStatusOfSupply in {s.RESEPTGRUPPE}) for the package "
            "or its product",
        ),
        "Varenr": Required(
            Missing.LEAVE_OUT,
            f"IDMP gives no varenr ({s.NS_VARENR}); the e-prescription chain finds packages by it",
        ),
        "Pakningsinfo/RefLegemiddelMerkevare": Required(
            Missing.DROP_PARENT, "the product (packageFor) has no FEST entry"
        ),
        "Pakningsinfo/Pakningsstr": Required(
            Missing.PLACEHOLDER, "IDMP has no pack size as printed; written empty, the amount is in Mengde"
        ),
        "Pakningsinfo/EnhetPakning": Required(
            Missing.PLACEHOLDER,
            f"the pack size's unit has no FEST code ({ENHET_PAKNING}) by our ConceptMaps; written without attributes",
        ),
        "Pakningsinfo/Pakningstype": Required(
            Missing.PLACEHOLDER,
            f"the package type has no FEST code ({PAKNINGSTYPE}) by our ConceptMaps; written without attributes",
        ),
        "Pakningsinfo/Mengde": Required(
            Missing.DROP_PARENT, "IDMP gives no pack size (PackagedProductDefinition.containedItemQuantity)"
        ),
    },
    "Virkestoff": {
        "Id": Required(Missing.LEAVE_OUT, "always set"),
        "Navn": Required(
            Missing.LEAVE_OUT, "IDMP gives no name for the substance (SubstanceDefinition.name)"
        ),
    },
    "VirkestoffMedStyrke": {  # made only where all four are known, else the product names the substance alone
        "Id": Required(Missing.LEAVE_OUT, "always set"),
        "Styrke": Required(Missing.LEAVE_OUT, "no strength as a Quantity or Ratio"),
        "RefVirkestoff": Required(Missing.LEAVE_OUT, "the substance has no FEST entry"),
        "Styrkeoperator": Required(Missing.LEAVE_OUT, "the strength is not an exact value"),
    },
}
"""Payload kind -> every XSD-required element of what we make (path below the payload) -> what
happens without it (tests/exporters/test_idmp_first.py checks the list against the XSD)."""
PRODUCT_LEFT_OUT = "the LegemiddelMerkevare of its product is left out, so nothing may refer to it"
"""Why a product's packages and substances with strength are left out with it."""


def xsd_path(catalogue: str, path: str) -> str:
    """The element's path in the M30 XSD, as fest_to_idmp.xsd_paths writes it."""
    return f"FEST/Kat{catalogue}/Oppf{catalogue}/{path}"


# --- what came out ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LeftOut:
    """An entry IDMP could not make: of which resource, and why."""

    catalogue: str
    resource: str  # "MedicinalProductDefinition/sf-only-in-idmp"
    reason: str
    missing: tuple[str, ...] = ()  # XSD paths of the required elements IDMP does not fill

    def as_dict(self) -> dict[str, Any]:
        return {
            "catalogue": self.catalogue,
            "resource": self.resource,
            "reason": self.reason,
            "missing": list(self.missing),
        }


@dataclass
class Made:
    """What one group of IDMP resources became: entries, entries left out, and (for a substance)
    the keys an Ingredient may name it by, with the Id of its Virkestoff."""

    entries: list[FestEntry] = field(default_factory=list)
    left_out: list[LeftOut] = field(default_factory=list)
    substance_ids: dict[str, str] = field(default_factory=dict)


@dataclass
class IdmpReport:
    """Per catalogue: entries written from IDMP alone, required elements IDMP could not fill (in
    entries written with an empty value or left out), optional elements absent from the entries
    written, and every entry left out with its reason."""

    written: Counter[str] = field(default_factory=Counter)
    required_unfilled: dict[str, Counter[str]] = field(default_factory=dict)
    optional_unfilled: dict[str, Counter[str]] = field(default_factory=dict)
    left_out: list[LeftOut] = field(default_factory=list)

    def add_written(self, entry: FestEntry) -> None:
        self.written[entry.catalogue] += 1
        required, optional = unfilled(entry)
        if required:
            self.required_unfilled.setdefault(entry.catalogue, Counter()).update(required)
        if optional:
            self.optional_unfilled.setdefault(entry.catalogue, Counter()).update(optional)

    def add_left_out(self, left: LeftOut) -> None:
        self.left_out.append(left)
        if left.missing:
            self.required_unfilled.setdefault(left.catalogue, Counter()).update(left.missing)

    def left_out_by_reason(self) -> dict[str, dict[str, int]]:
        found: dict[str, Counter[str]] = {}
        for left in self.left_out:
            found.setdefault(left.catalogue, Counter())[left.reason] += 1
        return _plain(found)

    def as_dict(self, listed: int = 1000) -> dict[str, Any]:
        return {
            "written": dict(sorted(self.written.items())),
            "required_unfilled": _plain(self.required_unfilled),
            "optional_unfilled": _plain(self.optional_unfilled),
            "left_out_count": len(self.left_out),
            "left_out_by_reason": self.left_out_by_reason(),
            "left_out": [left.as_dict() for left in self.left_out[:listed]],
        }


def _plain(counts: Mapping[str, Counter[str]]) -> dict[str, dict[str, int]]:
    return {cat: dict(sorted(c.items())) for cat, c in sorted(counts.items())}


def unfilled(entry: FestEntry) -> tuple[list[str], list[str]]:
    """The XSD paths of the required elements written empty and the optional elements absent in
    `entry` (below elements that are there; an absent element counts once, not its children)."""
    kind = entry.kind or ""
    required = REQUIRED.get(kind, {})
    empty: set[str] = set()
    absent: set[str] = set()

    def walk(node: Node, xsd: XsdNode, path: str) -> None:
        children: list[Node] = node[3] or []
        for name, child_xsd in xsd[1].items():
            below = f"{path}/{name}" if path else name
            found = [c for c in children if c[0] == name]
            if not found:
                absent.add(below)
            for c in found:
                if _is_empty(c) and below in required:
                    empty.add(below)
                elif child_xsd[1]:
                    walk(c, child_xsd, below)

    walk(entry.payload[0], oppf_xsd(entry.catalogue)[1][kind], "")
    to_xsd = [xsd_path(entry.catalogue, f"{kind}/{p}") for p in sorted(empty)]
    return to_xsd, [xsd_path(entry.catalogue, f"{kind}/{p}") for p in sorted(absent)]


def _is_empty(node: Node) -> bool:
    return not node[1] and node[2] in (None, "") and not node[3]


# --- grouping: the resources of one product ---------------------------------------------------------

LINKS = (
    f"{PPD}.package-for",
    f"{APD}.form-of",
    f"{ING}.for",
    f"{MPD}.comprised-of",
)
"""The reference parameters that tie an IDMP resource to a product (the store indexes them)."""

Row = tuple[int, str, str, str | None]
"""(version pk, type, id, the value of one LINKS parameter or None): what the store gives."""


def groups(rows: Iterable[Row]) -> dict[str, list[int]]:
    """The version pks of IDMP-only resources, grouped by what they become, under "Type/id" of the
    head: a product (MedicinalProductDefinition) with its packages, administrable form, Ingredients
    and items; a package whose product FEST made; a substance; anything else on its own (it
    becomes no entry). `rows` are the resources with the LINKS values they have."""
    pks: dict[str, set[int]] = {}
    links: dict[str, set[str]] = {}
    for pk, rtype, rid, value in rows:
        key = f"{rtype}/{rid}"
        pks.setdefault(key, set()).add(pk)
        if value:
            links.setdefault(key, set()).add(value)
    products = {k for k in pks if k.startswith(MPD + "/")}

    def heads(key: str) -> set[str]:
        rtype = key.partition("/")[0]
        if rtype in (PPD, APD, ING):
            found = {t for t in links.get(key, ()) if t in products}
            return found or {key}
        return {key}

    member: dict[str, set[str]] = {k: heads(k) for k in pks}
    for key, targets in links.items():  # items: in the groups of the products naming them
        for target in targets:
            if target.startswith(MID + "/") and target in pks:
                named_by = member[key] & products if key.startswith((MPD + "/", ING + "/")) else set()
                if named_by:
                    member[target] = (member[target] - {target}) | named_by
    found: dict[str, list[int]] = {}
    for key, in_groups in member.items():
        for group in in_groups:
            found.setdefault(group, []).extend(sorted(pks[key]))
    return found


def head_type(group: str) -> str:
    return group.partition("/")[0]


# --- the entries ------------------------------------------------------------------------------------


def derived_id(rtype: str, rid: str, purpose: str = "") -> str:
    """A FEST Id for an entry of IDMP resource `rtype`/`rid`: the same in every export."""
    return "ID_" + str(uuid.uuid5(NAMESPACE, f"{purpose}{rtype}/{rid}")).upper()


def substance_keys(substance: Json) -> list[str]:
    """What an Ingredient may name SubstanceDefinition `substance` by: its reference or an identifier."""
    keys = [f"{SD}/{substance['id']}"]
    for identifier in _list(substance.get("identifier")):
        if isinstance(identifier, dict) and identifier.get("system") and identifier.get("value"):
            keys.append(f"{identifier['system']}|{identifier['value']}")
    return keys


def entries_from_idmp(
    group: str,
    resources: list[Json],
    tidspunkt: Mapping[str, str],
    fest_id_of: FestIdOf,
    codes: FestCode,
) -> Made:
    """The FEST entries one group (see `groups`) of IDMP-only resources becomes.

    `tidspunkt` gives each resource ("Type/id") the Tidspunkt of its version (when our release
    first served it, Norwegian local time); an entry's is the newest of the resources it reads.
    """
    by_key = {f"{r['resourceType']}/{r['id']}": r for r in resources}
    head = by_key.get(group)
    if head is None:
        return Made()
    maker = _Maker(by_key, tidspunkt, fest_id_of, codes)
    rtype = head_type(group)
    if rtype == SD:
        return maker.substance(head)
    if rtype == MPD:
        return maker.product(head)
    if rtype == PPD:
        return maker.lone_package(head)
    return Made()


class _Maker:
    def __init__(
        self, by_key: dict[str, Json], tidspunkt: Mapping[str, str], fest_id_of: FestIdOf, codes: FestCode
    ) -> None:
        self.by_key = by_key
        self.tidspunkt = tidspunkt
        self.fest_id_of = fest_id_of
        self.codes = codes

    def _of_type(self, rtype: str) -> list[Json]:
        return [r for k, r in sorted(self.by_key.items()) if k.startswith(rtype + "/")]

    def _when(self, *resources: Json) -> str:
        return max(self.tidspunkt.get(_key(r), "") for r in resources) or "1970-01-01T01:00:00"

    # -- SubstanceDefinition -> Virkestoff

    def substance(self, sd: Json) -> Made:
        fest_id = _carried_fest_id(sd, "Virkestoff") or derived_id(SD, sd["id"])
        names = _substance_names(sd)
        shaped: Json = {"resourceType": SD, "id": sd["id"]}
        shaped["identifier"] = [{"system": s.NS_VIRKESTOFF, "value": fest_id}]
        if names:
            shaped["name"] = names
        made = _settled(_read_back(shaped, "Virkestoff", self._when(sd)), _key(sd))
        if isinstance(made, LeftOut):
            return Made(left_out=[made])
        return Made([made], substance_ids=dict.fromkeys(substance_keys(sd), fest_id))

    # -- MedicinalProductDefinition (+ APD, MID, Ingredients) -> LegemiddelMerkevare, VirkestoffMedStyrke;
    #    its PackagedProductDefinitions -> Legemiddelpakning

    def product(self, mpd: Json) -> Made:
        key = _key(mpd)
        packages = [p for p in self._of_type(PPD) if _targets(p.get("packageFor"))[:1] == [key]]
        adm = [a for a in self._of_type(APD) if key in _targets(a.get("formOf"))]
        items = self._of_type(MID)
        ingredients = [i for i in self._of_type(ING) if key in _targets(i.get("for"))]
        fest_id = _carried_fest_id(mpd, "LegemiddelMerkevare") or derived_id(MPD, mpd["id"])
        brand = self._brand_fields(mpd, packages, adm, items)
        shaped: Json = {"resourceType": MPD, "id": mpd["id"]}
        shaped["identifier"] = [{"system": s.NS_MERKEVARE, "value": fest_id}]
        shaped |= copy.deepcopy(brand)
        kind = _coding(mpd.get("type"), s.cs_system("Preparattype"), None)
        if kind is not None:
            shaped["type"] = {"coding": [kind]}
        name = _first(mpd.get("name"))
        invented = _invented_name(name)
        if isinstance(name, dict) and isinstance(name.get("productName"), str):
            shaped["name"] = [{"productName": name["productName"]}]
            if invented is not None:
                shaped["name"][0]["part"] = [{"part": invented}]
        text = (mpd.get("combinedPharmaceuticalDoseForm") or {}).get("text")
        if isinstance(text, str) and "combinedPharmaceuticalDoseForm" in shaped:
            shaped["combinedPharmaceuticalDoseForm"]["text"] = text
        monitoring = _coding(mpd.get("additionalMonitoringIndicator"), SVART_TREKANT, None)
        if monitoring is not None:
            shaped["additionalMonitoringIndicator"] = {"coding": [monitoring]}
        secondary: list[Json] = []
        routes = self._routes(mpd, adm)
        if routes:
            secondary.append({"resourceType": APD, "id": mpd["id"], "routeOfAdministration": routes})
        strengths: dict[str, FestEntry] = {}  # Ingredient -> its VirkestoffMedStyrke
        sortering = 0
        for ingredient in ingredients:
            extra, strength = self._ingredient(ingredient, mpd["id"], sortering)
            if extra is not None:
                secondary.append(extra)
                sortering += 1
            if strength is not None:
                strengths[_key(ingredient)] = strength
        when = self._when(mpd, *adm, *ingredients, *items)
        made = _settled(_read_back(shaped, "LegemiddelMerkevare", when, secondary), key)
        if isinstance(made, LeftOut):
            return Made(
                left_out=[made]
                + [LeftOut("Virkestoff", k, PRODUCT_LEFT_OUT) for k in strengths]
                + [LeftOut("Legemiddelpakning", _key(p), PRODUCT_LEFT_OUT) for p in packages]
            )
        out = Made([made, *strengths.values()])
        for package in packages:
            self._add_package(out, package, fest_id, brand, mpd)
        return out

    def lone_package(self, ppd: Json) -> Made:
        """A package of a product FEST made (the product's FEST id from the exporter), or of none."""
        products = _targets(ppd.get("packageFor"))
        brand_id = self.fest_id_of(products[0]) if products else None
        out = Made()
        self._add_package(out, ppd, brand_id, {}, None)
        return out

    def _brand_fields(self, mpd: Json, packages: list[Json], adm: list[Json], items: list[Json]) -> Json:
        """The typeLegemiddel fields a product gives its packages too (as FEST repeats them)."""
        out: Json = {}
        atc = next((c for c in map(_atc, _list(mpd.get("classification"))) if c is not None), None)
        if atc is not None:
            out["classification"] = [{"coding": [atc]}]
        legal = _coding(mpd.get("legalStatusOfSupply"), s.RESEPTGRUPPE, None)
        if legal is None:  # the packages', when they agree
            found = {
                (c["code"], c.get("display"))
                for p in packages
                for c in [self._package_legal_status(p)]
                if c is not None
            }
            if len(found) == 1:
                code, display = found.pop()
                legal = _with_display({"system": s.RESEPTGRUPPE, "code": code}, display)
        if legal is not None:
            out["legalStatusOfSupply"] = {"coding": [legal]}
        forms = [mpd.get("combinedPharmaceuticalDoseForm")]
        forms += [a.get("administrableDoseForm") for a in adm] + [
            i.get("manufacturedDoseForm") for i in items
        ]
        form = next(
            (c for c in (_coding(f, LEGEMIDDELFORM, self.codes) for f in forms) if c is not None), None
        )
        if form is not None:
            out["combinedPharmaceuticalDoseForm"] = {"coding": [form]}
        return out

    def _package_legal_status(self, ppd: Json) -> Json | None:
        for status in _list(ppd.get("legalStatusOfSupply")):
            found = _coding(status.get("code") if isinstance(status, dict) else None, s.RESEPTGRUPPE, None)
            if found is not None:
                return found
        return None

    def _routes(self, mpd: Json, adm: list[Json]) -> list[Json]:
        concepts = [
            r.get("code") for a in adm for r in _list(a.get("routeOfAdministration")) if isinstance(r, dict)
        ]
        concepts = concepts or _list(mpd.get("route"))
        routes: list[Json] = []
        for concept in concepts:
            found = _coding(concept, ADMINISTRASJONSVEI, self.codes)
            if found is not None and {"code": {"coding": [found]}} not in routes:
                routes.append({"code": {"coding": [found]}})
        return routes

    def _ingredient(self, ingredient: Json, product_id: str, n: int) -> tuple[Json | None, FestEntry | None]:
        """The product's Ingredient as FEST's tables shape it (SortertVirkestoffMedStyrke when the
        strength is exact and the substance has a FEST entry, else SortertVirkestoffUtenStyrke), and
        the VirkestoffMedStyrke entry it names."""
        virkestoff = self._substance_id((ingredient.get("substance") or {}).get("code"))
        if virkestoff is None:
            return None, None
        sortering = {"url": s.ext_url("Sortering"), "valueInteger": n}
        extra: Json = {"resourceType": ING, "id": f"{product_id}-{n + 1}", "extension": [sortering]}
        reference = {
            "reference": f"{SD}/{virkestoff.removeprefix('ID_')}",
            "identifier": {"system": s.NS_FEST_ID, "value": virkestoff},
        }
        strength = _exact_strength(_first((ingredient.get("substance") or {}).get("strength")))
        if strength is None:
            extra["substance"] = {"code": {"reference": reference}}
            return extra, None
        own = _identifier_value(ingredient.get("identifier"), s.NS_VIRKESTOFF_MED_STYRKE)
        vms_id = own if own is not None and _NCNAME.match(own) else derived_id(ING, ingredient["id"])
        extra["identifier"] = {"system": s.NS_VIRKESTOFF_MED_STYRKE, "value": vms_id}
        strength["extension"] = [{"url": s.ext_url("Styrkeoperator"), "valueCoding": dict(EQUAL)}]
        shaped: Json = {
            "resourceType": ING,
            "id": ingredient["id"],
            "identifier": {"system": s.NS_VIRKESTOFF_MED_STYRKE, "value": vms_id},
            "substance": {"code": {"reference": reference}, "strength": [strength]},
        }
        made = _settled(_read_back(shaped, "VirkestoffMedStyrke", self._when(ingredient)), _key(ingredient))
        if isinstance(made, LeftOut):  # cannot happen: all four required elements are set above
            extra.pop("identifier")
            extra["substance"] = {"code": {"reference": reference}}
            return extra, None
        return extra, made

    def _substance_id(self, code: Any) -> str | None:
        if not isinstance(code, dict):
            return None
        keys = []
        reference = (code.get("reference") or {}).get("reference")
        if isinstance(reference, str):
            keys.append(reference)
        for c in _list((code.get("concept") or {}).get("coding")):
            if isinstance(c, dict) and c.get("system") and c.get("code"):
                keys.append(f"{c['system']}|{c['code']}")
        return next((found for k in keys if (found := self.fest_id_of(k)) is not None), None)

    def _add_package(self, out: Made, ppd: Json, brand_id: str | None, brand: Json, mpd: Json | None) -> None:
        shaped: Json = {"resourceType": PPD, "id": ppd["id"], "extension": []}
        atc = (brand.get("classification") or [{}])[0].get("coding")
        if atc:
            shaped["extension"].append({"url": s.ext_url("Atc"), "valueCoding": atc[0]})
        form = (brand.get("combinedPharmaceuticalDoseForm") or {}).get("coding")
        if form:
            shaped["extension"].append({"url": s.ext_url("LegemiddelformKort"), "valueCoding": form[0]})
        name = ppd.get("name")
        if not isinstance(name, str) and mpd is not None:
            name = (_first(mpd.get("name")) or {}).get("productName")
        if isinstance(name, str):
            shaped["name"] = name
        legal = (
            self._package_legal_status(ppd)
            or ((brand.get("legalStatusOfSupply") or {}).get("coding") or [None])[0]
        )
        if legal is not None:
            shaped["legalStatusOfSupply"] = [{"code": {"coding": [legal]}}]
        fest_id = _carried_fest_id(ppd, "Legemiddelpakning") or derived_id(PPD, ppd["id"])
        identifiers = [{"system": s.NS_PAKNING, "value": fest_id}]
        varenr = next((link.value for link in fest_links(ppd) if link.kind == "varenr"), None)
        if varenr is not None:
            identifiers.append({"system": s.NS_VARENR, "value": varenr})
        for gtin in _gtins(ppd):
            identifiers.append({"system": s.NS_GTIN, "value": gtin})
        shaped["identifier"] = identifiers
        if brand_id is not None:
            product = (_targets(ppd.get("packageFor")) or [""])[0]
            shaped["packageFor"] = [
                {"reference": product, "identifier": {"system": s.NS_FEST_ID, "value": brand_id}}
            ]
            shaped["packaging"] = {}
            package_type = _coding((ppd.get("packaging") or {}).get("type"), PAKNINGSTYPE, self.codes)
            if package_type is not None:
                shaped["packaging"]["type"] = {"coding": [package_type]}
        size = self._pack_size(_first(ppd.get("containedItemQuantity")))
        if size is not None:
            shaped["containedItemQuantity"] = [size]
        marketing = _marketing_dates(ppd)
        if marketing is not None:
            shaped["marketingStatus"] = [marketing]
        when = self._when(ppd, *([mpd] if mpd is not None else []))
        made = _settled(_read_back(shaped, "Legemiddelpakning", when), _key(ppd))
        if isinstance(made, LeftOut):
            out.left_out.append(made)
        else:
            out.entries.append(made)

    def _pack_size(self, quantity: Any) -> Json | None:
        """containedItemQuantity as FEST's tables read it: the value (Mengde) and a 7452 unit (EnhetPakning)."""
        if not isinstance(quantity, dict):
            return None
        size = _number(quantity.get("value"))
        if size is None:
            return None
        system, code = quantity.get("system"), quantity.get("code")
        unit = None
        if system == ENHET_PAKNING and isinstance(code, str):
            unit = (code, quantity.get("unit"))
        elif isinstance(system, str) and isinstance(code, str):
            unit = self.codes(ENHET_PAKNING, system, code)
        if unit is not None:
            size |= {"system": ENHET_PAKNING, "code": unit[0]}
            if unit[1]:
                size["unit"] = unit[1]
        return size


# --- reading the shaped resources back, and the required elements ------------------------------------


def _read_back(shaped: Json, kind: str, tidspunkt: str, secondary: list[Json] | None = None) -> FestEntry:
    """The FEST entry the tables read from `shaped` (in the form they make), listed now."""
    catalogue = CATALOGUE_OF[kind]
    # FEST lists a changed entry anew (old listing expired, new Oppf Id): the listing's Id names the
    # content, so a change in IDMP gives a new listing as it does for FEST's own entries
    content = hashlib.sha256(
        orjson.dumps([shaped, secondary or []], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()[:16]
    oppf_id = derived_id(shaped["resourceType"], shaped["id"], f"Oppf:{content}:")
    listing = FestEntry(catalogue, oppf_id, tidspunkt, *ACTIVE, ())
    envelope = v.tree(["Oppf", None, None, listing.envelope()], oppf_xsd(catalogue), s.EXT_OPPFORING)
    primary = dict(shaped)
    primary["extension"] = [envelope, *shaped.get("extension", ())]
    return entry_from([primary, *(secondary or ())])


def _settled(entry: FestEntry, resource: str) -> FestEntry | LeftOut:
    """`entry` with REQUIRED applied: left out, or with an optional element dropped or a required
    one written empty where its decision says so."""
    kind = entry.kind or ""
    rules = REQUIRED[kind]
    payload = copy.deepcopy(entry.payload[0])
    xsd = oppf_xsd(entry.catalogue)[1][kind]
    children: list[Node] = payload[3] or []
    leave = [p for p, r in rules.items() if "/" not in p and _lacks(children, p)]
    if leave:
        return LeftOut(
            entry.catalogue,
            resource,
            "; ".join(rules[p].why for p in leave),
            tuple(xsd_path(entry.catalogue, f"{kind}/{p}") for p in leave),
        )
    for path, rule in rules.items():
        parent, _, name = path.rpartition("/")
        if not parent:
            continue
        kept = []
        for node in children:
            if node[0] == parent and _lacks(node[3] or [], name):
                if rule.when_missing is Missing.DROP_PARENT:
                    continue
                node[3] = _with_placeholder(node[3] or [], name, xsd[1][parent])
            kept.append(node)
        children = kept
    payload[3] = children or None
    return FestEntry(
        entry.catalogue, entry.oppf_id, entry.tidspunkt, entry.status, entry.status_dn, (payload,)
    )


def _lacks(children: list[Node], name: str) -> bool:
    return all(c[0] != name or _is_empty(c) for c in children)


def _with_placeholder(children: list[Node], name: str, xsd: XsdNode) -> list[Node]:
    """`children` with an empty `name` element in its XSD place (replacing an empty one)."""
    order = list(xsd[1])
    at = order.index(name)
    kept = [c for c in children if c[0] != name]
    i = next((n for n, c in enumerate(kept) if order.index(c[0]) > at), len(kept))
    return [*kept[:i], [name, None, None, None], *kept[i:]]


# --- values -----------------------------------------------------------------------------------------


def fest_codes(concept_maps: Iterable[Json]) -> FestCode:
    """The FEST code meaning what a code of another system means, by the ConceptMaps given (FEST ->
    EDQM/UCUM, read in reverse): where the map calls them equivalent or FEST's concept broader, the
    entry is not marked unverified (a stand-in FEST code nobody has checked goes to no e-prescription
    chain), and only one FEST code fits. DMP's dose-form systems count as EDQM, whose codes they
    publish."""
    index = ConceptMapIndex(concept_maps)
    known: dict[tuple[str, str, str], tuple[str, str | None] | None] = {}

    def lookup(fest_system: str, system: str, code: str) -> tuple[str, str | None] | None:
        wanted = (fest_system, EDQM if system in EDQM_ALIASES else system, code)
        if wanted not in known:
            matches, _ = index.translate(code, wanted[1], target_system=fest_system, reverse=True)
            fits = {
                (m.concept.code, m.concept.display)
                for m in matches
                if m.relationship in ("equivalent", "source-is-broader-than-target")
                and m.verified is not False
            }
            known[wanted] = fits.pop() if len({c for c, _ in fits}) == 1 else None
        return known[wanted]

    return lookup


def _coding(concept: Any, fest_system: str, codes: FestCode | None) -> Json | None:
    """The Coding in FEST code system `fest_system` a CodeableConcept has, or (with `codes`) the one
    its first mappable coding maps to."""
    codings = [
        c
        for c in _list((concept or {}).get("coding") if isinstance(concept, dict) else None)
        if isinstance(c, dict)
    ]
    for c in codings:
        if c.get("system") == fest_system and isinstance(c.get("code"), str):
            return _with_display({"system": fest_system, "code": c["code"]}, c.get("display"))
    if codes is not None:
        for c in codings:
            system, code = c.get("system"), c.get("code")
            if isinstance(system, str) and isinstance(code, str):
                found = codes(fest_system, system, code)
                if found is not None:
                    return _with_display({"system": fest_system, "code": found[0]}, found[1])
    return None


def _with_display(coding: Json, display: Any) -> Json:
    if isinstance(display, str) and display:
        coding["display"] = display
    return coding


def _atc(concept: Any) -> Json | None:
    return _coding(concept, s.ATC, None)


def _invented_name(name: Any) -> str | None:
    for part in _list(name.get("part") if isinstance(name, dict) else None):
        if not isinstance(part, dict) or not isinstance(part.get("part"), str):
            continue
        for c in _list((part.get("type") or {}).get("coding")):
            system, code = str(c.get("system", "")), c.get("code")
            if (system == s.NAME_PART_TYPE and code == "InventedNamePart") or (
                system.endswith(NAME_PART_LIST) and code == INVENTED_PART
            ):
                return str(part["part"])
    return None


def _substance_names(sd: Json) -> list[Json]:
    """The Norwegian name (language nb, or, when no name says its language, the preferred one) and
    the English one, as FEST's tables shape them."""
    names = [n for n in _list(sd.get("name")) if isinstance(n, dict) and isinstance(n.get("name"), str)]
    by_language: dict[str, str] = {}
    for n in sorted(names, key=lambda n: not n.get("preferred")):
        for c in _list(n.get("language")):
            for coding in _list((c or {}).get("coding")):
                by_language.setdefault(str(coding.get("code")), n["name"])
    if "nb" not in by_language:
        unsaid = [n for n in names if not n.get("language")]
        if unsaid:
            by_language["nb"] = sorted(unsaid, key=lambda n: not n.get("preferred"))[0]["name"]
    out = []
    for language in ("nb", "en"):
        if language in by_language:
            out.append(
                {
                    "name": by_language[language],
                    "language": [{"coding": [{"system": s.LANGUAGE, "code": language}]}],
                }
            )
    return out


def _exact_strength(strength: Any) -> Json | None:
    """An IDMP strength FEST can hold: a Quantity, or a Ratio (numerator over denominator)."""
    if not isinstance(strength, dict):
        return None
    quantity = _pq(strength.get("presentationQuantity"))
    if quantity is not None:
        return {"presentationQuantity": quantity}
    ratio = strength.get("presentationRatio")
    if isinstance(ratio, dict):
        numerator = _pq(ratio.get("numerator"))
        if numerator is not None:
            out: Json = {"numerator": numerator}
            denominator = _pq(ratio.get("denominator"))
            if denominator is not None:
                out["denominator"] = denominator
            return {"presentationRatio": out}
    return None


def _pq(quantity: Any) -> Json | None:
    """A Quantity as FEST's PQ holds it: an exact value and a unit."""
    if not isinstance(quantity, dict) or "comparator" in quantity:
        return None
    out = _number(quantity.get("value"))
    if out is None:
        return None
    unit = quantity.get("unit") or quantity.get("code")
    if isinstance(unit, str) and unit.strip() and " " not in unit.strip():
        out["unit"] = unit.strip()
    return out


def _number(value: Any) -> Json | None:
    """A JSON number as FEST's tables hold it, with the text as xs:decimal writes it where the
    JSON form would not do (1e-05)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
        return None
    if value in (float("inf"), float("-inf")):
        return None
    out: Json = {"value": value}
    text = str(value) if isinstance(value, int) else repr(value)
    if not _DECIMAL.match(text):
        out["extension"] = [{"url": s.EXT_LEXICAL, "valueString": format(Decimal(text), "f")}]
    return out


def _marketing_dates(ppd: Json) -> Json | None:
    """The Norwegian marketing status, as far as FEST holds it: its dates (Markedsforingsdato, AvregDato)."""
    for status in _list(ppd.get("marketingStatus")):
        if not isinstance(status, dict):
            continue
        countries = {c.get("code") for c in _list((status.get("country") or {}).get("coding"))}
        if countries and "NO" not in countries:
            continue
        period = status.get("dateRange") or {}
        dates = {
            k: period[k] for k in ("start", "end") if isinstance(period.get(k), str) and len(period[k]) == 10
        }
        return {"dateRange": dates} if dates else None
    return None


def _gtins(ppd: Json) -> list[str]:
    found: list[str] = []
    holders = [ppd, ppd.get("packaging") or {}]
    for holder in holders:
        for identifier in _list(holder.get("identifier") if isinstance(holder, dict) else None):
            if isinstance(identifier, dict) and identifier.get("system") in GTIN_SYSTEMS:
                value = identifier.get("value")
                if isinstance(value, str) and value.strip() and value.strip() not in found:
                    found.append(value.strip())
    return found


def _carried_fest_id(resource: Json, kind: str) -> str | None:
    for link in fest_links(resource):
        if link.kind == kind:
            fest_id = "ID_" + link.value
            if _NCNAME.match(fest_id):
                return fest_id
    return None


def _identifier_value(identifier: Any, system: str) -> str | None:
    for i in _list(identifier):
        if isinstance(i, dict) and i.get("system") == system and isinstance(i.get("value"), str):
            return str(i["value"])
    return None


def _targets(references: Any) -> list[str]:
    return [
        str(r["reference"])
        for r in _list(references)
        if isinstance(r, dict) and isinstance(r.get("reference"), str)
    ]


def _key(resource: Json) -> str:
    return f"{resource['resourceType']}/{resource['id']}"


def _list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _first(value: Any) -> Any:
    items = _list(value)
    return items[0] if items else None
