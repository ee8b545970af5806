"""The product card: everything FEST and IDMP say about one product, read from the FHIR resources
the active national release serves (FEST's own content from its documented extensions), never
from the FEST entries themselves. Every lookup is an indexed search of the store's (store/search.py)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from grunndata.server.pages.find import (
    GTIN,
    MPD,
    PPD,
    SD,
    VARENR,
    atc_of,
    body,
    identifier,
    pack_size,
    text_of,
)
from grunndata.server.pages.phpid import phpid_groups
from grunndata.server.state import SnapshotMemo
from grunndata.store import (
    Clause,
    SearchError,
    Snapshot,
    Version,
    lookup,
    read,
    read_many,
    release_disagreements,
    search,
)

EXT = "https://grunndata.no/fhir/StructureDefinition/fest-"
SUBSTANSGRUPPE = EXT + "Substansgruppe"
ING, CUD, BASIC, MID = "Ingredient", "ClinicalUseDefinition", "Basic", "ManufacturedItemDefinition"
MANY = 1000  # a product's packages, ingredients, interactions: far fewer in FEST
PRICE_ORDER = {"AUP": 0, "AIP": 1, "Refusjonspris": 2}


def _ext(node: dict[str, Any], name: str) -> list[dict[str, Any]]:
    """The extensions of `node` named `name`: ours (`fest-<name>`) at the top, bare inside a complex one."""
    return [e for e in node.get("extension", ()) if e.get("url") in (EXT + name, name)]


def _value(node: dict[str, Any] | None) -> Any:
    if not node:
        return None
    for key, value in node.items():
        if key.startswith("value"):
            return value
    return None


def _part(node: dict[str, Any], name: str) -> Any:
    found = _ext(node, name)
    return _value(found[0]) if found else None


def _shown(value: Any) -> str:
    """A FHIR value as people read it: a Coding's display, a Money or Quantity with its unit."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "ja" if value else "nei"
    if isinstance(value, dict):
        if "coding" in value or "text" in value:
            return text_of(value)
        if "display" in value or "code" in value:
            return str(value.get("display") or value.get("code"))
        if "currency" in value:  # Money: kroner and øre
            return f"{value.get('value', 0):.2f}".replace(".", ",") + f" {value['currency']}"
        if "value" in value:
            unit = value.get("unit") or value.get("code") or ""
            return f"{_number(value['value'])} {unit}".strip()
        if "reference" in value:
            return str(value["reference"])
    if isinstance(value, float):
        return _number(value)
    return str(value)


def _number(value: Any) -> str:
    """A number as written in Norwegian: decimal comma, no trailing zeros."""
    if isinstance(value, float):
        return f"{value:g}".replace(".", ",")
    return str(value)


MARKETING = {"markedsfort": "Markedsført", "midlertidig-utgatt": "Midlertidig utgått"}
ROLES = {"100000072072": "virkestoff"}
RELATIONS = {"RefVirkestoff": "Salt eller ester av dette virkestoffet"}  # fest-reference codes


def _clause(rtype: str, code: str, *values: str) -> Clause:
    param = lookup(rtype, code)
    assert param is not None, (rtype, code)
    return Clause(param, None, values)


def _found(conn: Connection, snapshot: Snapshot, rtype: str, code: str, *values: str) -> list[Version]:
    if not values:
        return []
    try:
        return search(conn, snapshot, rtype, [_clause(rtype, code, *values)], count=MANY)[0]
    except SearchError:
        return []


@dataclass
class Card:
    id: str
    product: dict[str, Any]
    names: list[str]
    form: str
    atc: tuple[str, str]
    legal_status: str
    strength: str
    fest_id: str
    packages: list[dict[str, Any]] = field(default_factory=list)
    substances: list[dict[str, Any]] = field(default_factory=list)
    interactions: list[dict[str, Any]] = field(default_factory=list)
    notices: list[dict[str, Any]] = field(default_factory=list)
    spc: list[dict[str, str]] = field(default_factory=list)
    disagreements: list[dict[str, str]] = field(default_factory=list)
    phpids: list[dict[str, Any]] = field(default_factory=list)


def product_card(conn: Connection, snapshot: Snapshot, rid: str) -> Card | None:
    """The card of MedicinalProductDefinition `rid`, or None when the snapshot does not serve it."""
    found = read(conn, snapshot, MPD, rid)
    if found is None:
        return None
    r = body(found)
    names = [str(n.get("productName", "")) for n in r.get("name", ()) if n.get("productName")]
    legal = r.get("legalStatusOfSupply")
    card = Card(
        rid,
        r,
        names,
        text_of(r.get("combinedPharmaceuticalDoseForm")),
        atc_of(r),
        text_of(legal),
        _strength_part(r),
        identifier(r, "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare")
        or identifier(r, "http://dmp.no/fhir/NamingSystem/festLegemiddelVirkestoff"),
    )
    card.spc = _spc(r)
    packages = sorted(
        _found(conn, snapshot, PPD, "package-for", f"{MPD}/{rid}"),
        key=lambda v: identifier(body(v), VARENR),
    )
    card.packages = _packages(conn, snapshot, packages)
    card.substances = _substances(conn, snapshot, rid)
    if not card.strength:
        card.strength = ", ".join(s["strength"] for s in card.substances if s["strength"])
    card.interactions = _interactions(conn, snapshot, card.atc[0])
    card.phpids = phpid_groups(conn, snapshot, rid, r, packages)
    fest_ids = {
        card.fest_id,
        *(identifier(body(v), "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning") for v in packages),
    }
    card.notices = NOTICES.of(conn, snapshot, fest_ids - {""})
    ours = {f"{MPD}/{rid}", *(f"{PPD}/{v.id}" for v in packages), f"{MID}/{rid}"}
    ours |= {f"{ING}/{s['ingredient']}" for s in card.substances}
    card.disagreements = DISAGREEMENTS.of(conn, snapshot, ours)
    return card


def product_of(conn: Connection, snapshot: Snapshot, rid: str) -> str | None:
    """The product `rid` names when it is not a product's own id as served: the product itself in
    another spelling (FEST's ID_, lower case), or the product a package with that id is for."""
    if read(conn, snapshot, MPD, rid) is not None:
        return rid
    package = read(conn, snapshot, PPD, rid)
    refs = [] if package is None else _product_refs(body(package))
    return refs[0] if refs else None


def _strength_part(r: dict[str, Any]) -> str:
    for name in r.get("name", ()):
        for part in name.get("part", ()):
            if any(c.get("code") == "StrengthPart" for c in part.get("type", {}).get("coding", ())):
                return str(part.get("part", ""))
    return ""


def _spc(r: dict[str, Any]) -> list[dict[str, str]]:
    out = []
    for section in _ext(r, "Preparatomtaleavsnitt"):
        heading = _shown(_part(section, "Avsnittoverskrift"))
        for link in _ext(section, "Lenke"):
            url = _part(link, "Www")
            if isinstance(url, str) and url.startswith(("http://", "https://")):
                out.append({"heading": heading, "url": url})
    return out


def _ratio(strength: dict[str, Any]) -> str:
    ratio = strength.get("presentationRatio") or strength.get("concentrationRatio")
    if not ratio:
        return _shown(strength.get("presentationQuantity") or strength.get("concentrationQuantity"))
    numerator, denominator = ratio.get("numerator", {}), ratio.get("denominator", {})
    text = f"{_number(numerator.get('value'))} {numerator.get('unit') or numerator.get('code') or ''}".strip()
    if denominator and (denominator.get("value") != 1 or denominator.get("code") not in ("1", None)):
        text += f" / {_number(denominator.get('value'))} {denominator.get('unit') or denominator.get('code') or ''}".rstrip()
    return text


def _substance_name(resource: dict[str, Any]) -> str:
    names = resource.get("name", ())
    preferred = [n for n in names if n.get("preferred")] or list(names)
    return str(preferred[0].get("name", "")) if preferred else str(resource.get("id", ""))


def _substances(conn: Connection, snapshot: Snapshot, rid: str) -> list[dict[str, Any]]:
    ingredients = _found(conn, snapshot, ING, "for", f"{MPD}/{rid}")
    ingredients.sort(key=lambda v: (_part(body(v), "Sortering") or 0, v.id))
    refs = {
        v.id: body(v).get("substance", {}).get("code", {}).get("reference", {}).get("reference", "")
        for v in ingredients
    }
    substances = {
        f"{SD}/{v.id}": body(v)
        for v in read_many(
            conn, snapshot, [(SD, r.split("/", 1)[1]) for r in refs.values() if r.startswith(SD + "/")]
        )
    }
    related_refs = {
        rel.get("substanceDefinitionReference", {}).get("reference", "")
        for s in substances.values()
        for rel in s.get("relationship", ())
    }
    related = {
        f"{SD}/{v.id}": _substance_name(body(v))
        for v in read_many(
            conn, snapshot, [(SD, r.split("/", 1)[1]) for r in related_refs if r.startswith(SD + "/")]
        )
    }
    out = []
    for v in ingredients:
        substance = substances.get(refs[v.id], {})
        strengths = [_ratio(s) for s in body(v).get("substance", {}).get("strength", ())]
        out.append(
            {
                "ingredient": v.id,
                "id": refs[v.id].removeprefix(SD + "/") if refs[v.id].startswith(SD + "/") else "",
                "name": _substance_name(substance)
                if substance
                else text_of(body(v).get("substance", {}).get("code", {}).get("concept")),
                "role": next(
                    (
                        ROLES[c["code"]]
                        for c in body(v).get("role", {}).get("coding", ())
                        if c.get("code") in ROLES
                    ),
                    text_of(body(v).get("role")),
                ),
                "strength": ", ".join(s for s in strengths if s),
                "related": [
                    {
                        "id": rel.get("substanceDefinitionReference", {})
                        .get("reference", "")
                        .removeprefix(SD + "/"),
                        "name": related.get(
                            rel.get("substanceDefinitionReference", {}).get("reference", ""), ""
                        ),
                        "type": next(
                            (
                                RELATIONS[c["code"]]
                                for c in rel.get("type", {}).get("coding", ())
                                if c.get("code") in RELATIONS
                            ),
                            text_of(rel.get("type")),
                        ),
                    }
                    for rel in substance.get("relationship", ())
                ],
            }
        )
    return out


def _prices(r: dict[str, Any]) -> list[dict[str, str]]:
    prices = [
        {
            "type": _shown(_part(p, "Type")),
            "price": _shown(_part(p, "Pris")),
            "from": str(_part(p, "GyldigFraDato") or ""),
        }
        for p in _ext(r, "PrisVare")
    ]
    return sorted(prices, key=lambda p: (PRICE_ORDER.get(p["type"], 9), p["type"]))


def _packages(conn: Connection, snapshot: Snapshot, packages: list[Version]) -> list[dict[str, Any]]:
    group_ids = {
        ident.get("value", "")
        for v in packages
        for refusjon in _ext(body(v), "Refusjon")
        for ident in [(_part(refusjon, "RefRefusjonsgruppe") or {}).get("identifier", {})]
    } - {""}
    regulations = _found(conn, snapshot, BASIC, "identifier", *sorted(group_ids))
    groups: dict[str, dict[str, Any]] = {}
    for basic in regulations:
        for group in _ext(body(basic), "Refusjonsgruppe"):
            groups[str(_part(group, "Id"))] = {"regulation": body(basic), "group": group}
    conditions_refs = {
        str((_part(vilkar, "RefVilkar") or {}).get("reference", ""))
        for g in groups.values()
        for code in _ext(g["group"], "Refusjonskode")
        for vilkar in _ext(code, "Refusjonsvilkar")
    }
    conditions = {
        f"{BASIC}/{v.id}": body(v)
        for v in read_many(conn, snapshot, [(BASIC, r.split("/", 1)[1]) for r in conditions_refs if "/" in r])
    }
    substitution_refs = {
        str((_part(e, "RefByttegruppe") or {}).get("reference", ""))
        for v in packages
        for e in _ext(body(v), "PakningByttegruppe")
    } - {""}
    substitution = {
        f"{BASIC}/{v.id}": body(v)
        for v in read_many(
            conn, snapshot, [(BASIC, r.split("/", 1)[1]) for r in substitution_refs if "/" in r]
        )
    }
    members = _found(conn, snapshot, PPD, "substitution-group", *sorted(substitution_refs))
    out = []
    for v in packages:
        r = body(v)
        packaging = r.get("packaging", {})
        groups_of = [  # (the group with its regulation, from when the package is reimbursed in it)
            (groups[ident], str(_part(refusjon, "GyldigFraDato") or ""))
            for refusjon in _ext(r, "Refusjon")
            for ident in [
                str((_part(refusjon, "RefRefusjonsgruppe") or {}).get("identifier", {}).get("value", ""))
            ]
            if ident in groups
        ]
        mine = [
            str((_part(e, "RefByttegruppe") or {}).get("reference", ""))
            for e in _ext(r, "PakningByttegruppe")
        ]
        out.append(
            {
                "id": v.id,
                "name": str(r.get("name", "")),
                "varenr": identifier(r, VARENR),
                "gtin": identifier(r, GTIN),
                "size": pack_size(r),
                "type": text_of(packaging.get("type")),
                "marketing": [
                    {
                        "status": _marketing(m.get("status")),
                        "from": str(m.get("dateRange", {}).get("start", "")),
                    }
                    for m in r.get("marketingStatus", ())
                ],
                "prices": _prices(r),
                "reimbursement": [_reimbursement(g, conditions) | {"from": since} for g, since in groups_of],
                "substitution": [
                    {
                        "code": _shown(_part(substitution.get(ref, {}), "Kode")),
                        "note": _part(substitution.get(ref, {}), "MerknadTilByttbarhet"),
                        "others": [
                            {
                                "id": m.id,
                                "name": str(body(m).get("name", "")),
                                "varenr": identifier(body(m), VARENR),
                                "product": next(iter(_product_refs(body(m))), ""),
                            }
                            for m in members
                            if m.id != v.id and ref in _group_refs(body(m))
                        ],
                    }
                    for ref in mine
                ],
            }
        )
    return out


def _marketing(status: Any) -> str:
    for coding in (status or {}).get("coding", ()):
        if coding.get("code") in MARKETING:
            return MARKETING[coding["code"]]
    return text_of(status)


def _product_refs(r: dict[str, Any]) -> list[str]:
    return [
        str(p.get("reference", "")).removeprefix(MPD + "/")
        for p in r.get("packageFor", ())
        if str(p.get("reference", "")).startswith(MPD + "/")
    ]


def _group_refs(r: dict[str, Any]) -> list[str]:
    return [
        str((_part(e, "RefByttegruppe") or {}).get("reference", "")) for e in _ext(r, "PakningByttegruppe")
    ]


def _reimbursement(found: dict[str, Any], conditions: dict[str, dict[str, Any]]) -> dict[str, Any]:
    group = found["group"]
    codes = []
    for code in _ext(group, "Refusjonskode"):
        refs = [
            str((_part(v, "RefVilkar") or {}).get("reference", "")) for v in _ext(code, "Refusjonsvilkar")
        ]
        codes.append(
            {
                "code": str((_part(code, "Refusjonskode") or {}).get("code", "")),
                "text": _shown(_part(code, "Refusjonskode")),
                "from": str(_part(code, "GyldigFraDato") or ""),
                "conditions": [
                    {
                        "number": str(_part(conditions[ref], "VilkarNr") or ""),
                        "text": str(_part(conditions[ref], "Tekst") or ""),
                    }
                    for ref in refs
                    if ref in conditions
                ],
            }
        )
    return {
        "regulation": _shown(_part(found["regulation"], "Refusjonshjemmel")),
        "group": _shown(_part(group, "GruppeNr")),
        "use": str(_part(group, "RefusjonsberettighetBruk") or ""),
        "codes": codes,
    }


def _interactions(conn: Connection, snapshot: Snapshot, atc: str) -> list[dict[str, Any]]:
    """The interactions FEST lists for the product's ATC code, most severe first."""
    if not atc:
        return []
    out = []
    for v in _found(conn, snapshot, CUD, "interactant", f"http://www.whocc.no/atc|{atc}"):
        interaction = body(v).get("interaction", {})
        groups: dict[int, list[str]] = {}
        for interactant in interaction.get("interactant", ()):
            # a tight loop: an interaction of a common drug class names a hundred ATC codes
            for e in interactant.get("extension", ()):
                if e.get("url") != SUBSTANSGRUPPE:
                    continue
                parts = {p.get("url"): p for p in e.get("extension", ())}
                named = parts.get("Navn", {}).get("valueString")
                name = str(named or text_of(interactant.get("itemCodeableConcept")))
                members = groups.setdefault(int(parts.get("gruppe", {}).get("valueInteger") or 0), [])
                if name and name not in members:
                    members.append(name)
        management = interaction.get("management", ())
        severity: dict[str, Any] = next(
            (
                c
                for m in management
                for c in m.get("coding", ())
                if c.get("system", "").endswith("fest-Relevans")
            ),
            {},
        )
        out.append(
            {
                "id": v.id,
                "substances": [_few(groups[g]) for g in sorted(groups)],
                "severity": str(severity.get("display", "")),
                "severity_code": str(severity.get("code", "")),
                "consequence": text_of(interaction.get("effect", {}).get("concept")),
                "handling": " ".join(str(m["text"]) for m in management if m.get("text")),
                "mechanism": str(_part(body(v), "Interaksjonsmekanisme") or ""),
            }
        )
    out.sort(key=lambda i: (i["severity_code"] or "9", i["substances"]))
    return out


def _few(names: list[str], shown: int = 4) -> str:
    """A substance group as a heading: its name, or its first few members and how many more."""
    more = len(names) - shown
    return " / ".join(names[:shown]) + (f" og {more} til" if more > 0 else "")


class _PerSnapshot:
    """A value made once per snapshot served (the notices by FEST id, the disagreements by resource)."""

    def __init__(self) -> None:
        self._memo = SnapshotMemo(self.build)

    def _index(self, conn: Connection, snapshot: Snapshot) -> dict[str, list[dict[str, Any]]]:
        return self._memo.get(conn, snapshot)

    def build(self, conn: Connection, snapshot: Snapshot) -> dict[str, list[dict[str, Any]]]:
        raise NotImplementedError

    def of(self, conn: Connection, snapshot: Snapshot, keys: set[str]) -> list[dict[str, Any]]:
        index = self._index(conn, snapshot)
        seen: list[dict[str, Any]] = []
        for key in sorted(keys):
            for item in index.get(key, ()):
                if item not in seen:
                    seen.append(item)
        return seen


class _Notices(_PerSnapshot):
    """SLV's notices (VarselSlv Basics) by the FEST ids they name."""

    def build(self, conn: Connection, snapshot: Snapshot) -> dict[str, list[dict[str, Any]]]:
        index: dict[str, list[dict[str, Any]]] = {}
        for v in _found(
            conn, snapshot, BASIC, "code", "https://grunndata.no/fhir/CodeSystem/fest-kind|VarselSlv"
        ):
            r = body(v)
            notice = {
                "id": v.id,
                "type": _shown(_part(r, "Type")),
                "heading": str(_part(r, "Overskrift") or ""),
                "text": str(_part(r, "Varseltekst") or ""),
                "from": str(_part(r, "FraDato") or ""),
                "links": [
                    {
                        "text": str(_part(link, "Beskrivelse") or _part(link, "Www")),
                        "url": str(_part(link, "Www")),
                    }
                    for link in _ext(r, "Lenke")
                    if str(_part(link, "Www") or "").startswith(("http://", "https://"))
                ],
            }
            for element in _ext(r, "Referanseelement"):
                for ref in _ext(element, "RefElement"):
                    fest_id = str((_value(ref) or {}).get("identifier", {}).get("value", ""))
                    index.setdefault(fest_id, []).append(notice)
        return index


class _Disagreements(_PerSnapshot):
    """Where FEST and SAFEST/IDMP disagree, by resource, from the served releases' import reports
    (the reconciliation /migration shows)."""

    def build(self, conn: Connection, snapshot: Snapshot) -> dict[str, list[dict[str, Any]]]:
        index: dict[str, list[dict[str, Any]]] = {}
        for d in release_disagreements(conn, snapshot.releases):
            index.setdefault(str(d.get("resource", "")), []).append(d)
        return index


NOTICES = _Notices()
DISAGREEMENTS = _Disagreements()
