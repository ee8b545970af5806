"""ConceptMaps between FEST ids and the IDMP resources made of them, built from a release's identifiers.

FEST systems name a product by LegemiddelMerkevare Id, a package by Legemiddelpakning Id or varenr;
IDMP names them by resource (and GTIN). One map per FEST entry kind, one group per pair of id
systems; the resource side is the id space `https://grunndata.no/fhir/<Type>` (code = resource id).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from grunndata.fhir import systems as s
from grunndata.terminology.verification import MAP_PROPERTIES, mark

Json = dict[str, Any]
RESOURCE_IDS = "https://grunndata.no/fhir/"  # + resource type: the id space of our resources
MAP_BASE = "https://grunndata.no/fhir/ConceptMap/"
MPD, PPD = "MedicinalProductDefinition", "PackagedProductDefinition"
IDENTIFIER_PARAMS = (f"{MPD}.identifier", f"{PPD}.identifier")
NAME_PARAMS = (f"{MPD}.name", f"{PPD}.name")
FROM_THE_RELEASE = mark(True)
"""Every target of a map made from a release is verified: its codes are the release's own (one list,
shared by every target: the maps can have tens of thousands)."""
VERIFIED_NOTE = " Every target carries the property 'verified' (true: both codes are the release's own data)."


def resource_ids(rtype: str) -> str:
    """The system whose codes are the ids of our resources of `rtype`."""
    return RESOURCE_IDS + rtype


@dataclass(frozen=True, slots=True)
class IdMap:
    id: str
    title: str
    rtype: str  # the resource type every group is about
    key: str  # the FEST id system that says which resources belong in the map
    groups: tuple[tuple[str, str], ...]  # (source system, target system); RESOURCE = the resource ids


RESOURCE = "resource"
ID_MAPS = (
    IdMap(
        "fest-legemiddelmerkevare-idmp",
        "FEST LegemiddelMerkevare Id to MedicinalProductDefinition",
        MPD,
        s.NS_MERKEVARE,
        ((s.NS_MERKEVARE, RESOURCE),),
    ),
    IdMap(
        "fest-legemiddelvirkestoff-idmp",
        "FEST LegemiddelVirkestoff Id to the substance-based MedicinalProductDefinition",
        MPD,
        s.NS_LEGEMIDDELVIRKESTOFF,
        ((s.NS_LEGEMIDDELVIRKESTOFF, RESOURCE),),
    ),
    IdMap(
        "fest-legemiddelpakning-idmp",
        "FEST Legemiddelpakning Id and varenr to PackagedProductDefinition and GTIN",
        PPD,
        s.NS_PAKNING,
        (
            (s.NS_PAKNING, RESOURCE),
            (s.NS_VARENR, RESOURCE),
            (s.NS_VARENR, s.NS_GTIN),
            (s.NS_PAKNING, s.NS_VARENR),
        ),
    ),
)


def id_maps(
    rows: Iterable[tuple[str, str, str, str, str, str | None]],
    version: str,
    pause: Callable[[], None] | None = None,
) -> list[Json]:
    """The ConceptMaps of ID_MAPS from index rows (type, id, param, system, value, exact).

    `version` names the data they come from (the snapshot), since they change with every release.
    `pause` is called after every row and every element made (see ConceptMapIndex).
    """
    pause = pause or (lambda: None)
    ids: dict[tuple[str, str], dict[str, list[str]]] = {}  # (type, id) -> system -> values
    names: dict[tuple[str, str], str] = {}
    for rtype, rid, param, system, value, exact in rows:
        if param in NAME_PARAMS:
            names.setdefault((rtype, rid), exact or value)
        elif param in IDENTIFIER_PARAMS:
            ids.setdefault((rtype, rid), {}).setdefault(system, []).append(value)
        pause()
    return [_concept_map(m, ids, names, version, pause) for m in ID_MAPS]


def _concept_map(
    m: IdMap,
    ids: dict[tuple[str, str], dict[str, list[str]]],
    names: dict[tuple[str, str], str],
    version: str,
    pause: Callable[[], None],
) -> Json:
    members = sorted(
        (rid, systems) for (rtype, rid), systems in ids.items() if rtype == m.rtype and m.key in systems
    )
    groups = []
    for source, target in m.groups:
        elements = []
        for rid, systems in members:
            display = names.get((m.rtype, rid))
            targets = [rid] if target == RESOURCE else systems.get(target, [])
            for code in sorted(set(systems.get(source, ()))):
                element: Json = {"code": code}
                if display:
                    element["display"] = display
                element["target"] = [
                    {
                        "code": t,
                        **({"display": display} if display else {}),
                        "relationship": "equivalent",
                        "property": FROM_THE_RELEASE,
                    }
                    for t in targets
                ]
                if targets:
                    elements.append(element)
                pause()
        target_system = resource_ids(m.rtype) if target == RESOURCE else target
        groups.append({"source": source, "target": target_system, "element": elements})
    kept = [g for g in groups if g["element"]]
    return {
        "resourceType": "ConceptMap",
        "id": m.id,
        "url": MAP_BASE + m.id,
        "version": version,
        "name": "".join(w.capitalize() for w in m.id.split("-")),
        "title": m.title,
        "status": "active",
        "experimental": False,
        "publisher": "Grunndata",
        "description": (
            "Generated from the identifiers of the national release(s) "
            f"{version} (grunndata store), so it changes with every release. The resource side is the "
            f"id space {RESOURCE_IDS}{m.rtype}: a code there is the id of the {m.rtype} this server serves."
            + VERIFIED_NOTE
        ),
        "property": MAP_PROPERTIES,
        "sourceScopeUri": m.key,
        "targetScopeUri": resource_ids(m.rtype),
        **({"group": kept} if kept else {}),  # FHIR JSON has no empty arrays: a map of nothing has no group
    }


OBSERVED_TITLES = {
    "dose-form": "FEST legemiddelform and SAFEST dose forms, as seen on the same products",
    "package-type": "FEST pakningstype and SAFEST package types, as seen on the same packages",
}


def observed_maps(pairs: Iterable[dict[str, Any]], version: str) -> list[Json]:
    """ConceptMaps drawn from the data: where FEST and SAFEST describe the same product, the code
    each gives it for one element ("code_pairs" of the national release's reconciliation).

    Seeing two codes on one product says they are related, not that they mean the same, so every
    target is `related-to`, with how many products showed it; the reviewed maps in
    grunndata/terminology/conceptmaps are the ones that state equivalence.
    """
    by_element: dict[str, dict[tuple[str, str], dict[tuple[str, str], list[Any]]]] = {}
    for pair in pairs:
        (fs, fc, fd), (ss, sc, sd) = pair["fest"], pair["safest"]
        group = by_element.setdefault(pair["element"], {}).setdefault((fs, ss), {})
        group.setdefault((fc, fd), []).append((sc, sd, int(pair["products"])))
    maps = []
    for element, groups in sorted(by_element.items()):
        map_id = f"fest-safest-{element}-observed"
        maps.append(
            {
                "resourceType": "ConceptMap",
                "id": map_id,
                "url": MAP_BASE + map_id,
                "version": version,
                "name": "".join(w.capitalize() for w in map_id.split("-")),
                "title": OBSERVED_TITLES.get(
                    element, f"FEST and SAFEST {element} codes on the same products"
                ),
                "status": "active",
                "experimental": True,
                "publisher": "Grunndata",
                "description": (
                    f"Derived from the national release(s) {version}: for each product FEST and SAFEST "
                    f"both describe, the {element} code each gives. Related, not reviewed: check before "
                    "relying on a pair." + VERIFIED_NOTE
                ),
                "property": MAP_PROPERTIES,
                "group": [
                    {
                        "source": fs,
                        "target": ss,
                        "element": [
                            {
                                "code": fc,
                                **({"display": fd} if fd else {}),
                                "target": [
                                    {
                                        "code": sc,
                                        **({"display": sd} if sd else {}),
                                        "relationship": "related-to",
                                        "comment": f"seen together on {n} product{'s' if n != 1 else ''}",
                                        "property": FROM_THE_RELEASE,
                                    }
                                    for sc, sd, n in sorted(targets)
                                ],
                            }
                            for (fc, fd), targets in sorted(codes.items())
                        ],
                    }
                    for (fs, ss), codes in sorted(groups.items())
                ],
            }
        )
    return maps
