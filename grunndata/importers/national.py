"""DMP's national line: FEST entries and SAFEST resources side by side, and the FHIR served from both.

A national release keeps both sources as they came (`FEST.<catalogue>` entries, `SAFEST.<type>`
resources, never served) and serves the FHIR resources made from them. Those are remade from
the whole release at every import of either source: FEST's entries through the FEST->IDMP
tables, then SAFEST over them (translators/overlay.py): one resource where both describe the
same thing, SAFEST's resources with no FEST counterpart beside them, disagreements reported.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson

from grunndata.errors import DeliveryError
from grunndata.m30.records import FestEntry, catalogues, child_text
from grunndata.store.releases import ReleaseBuilder
from grunndata.store.searchparams import index_rows as fhir_index_rows
from grunndata.translators.fest_to_idmp import LOOKUP_KINDS, translate
from grunndata.translators.fest_to_idmp.systems import EDQM, EDQM_ALIASES
from grunndata.translators.fest_to_idmp.values import fhir_id
from grunndata.translators.overlay import Disagreement, Json, Key, Overlay

TIER, OWNER, OWNER_NAME = "national", "dmp", "Direktoratet for medisinske produkter (DMP)"
FEST_PREFIX, SAFEST_PREFIX = "FEST.", "SAFEST."
MAX_LISTED_DISAGREEMENTS = 1000
# Internal index row of a resource FEST and SAFEST were merged into: the M30 export writes FEST's
# own entry for it (store/exports.py), since the merged values are no longer FEST's.
MERGED = (("origin", "fest+safest"),)

Progress = Callable[[str | None, int, int, int], None]  # (what, items, done, total)

# FEST catalogue -> the FHIR type made from its entries, and the kind of link SAFEST names it by
_LINKED_CATALOGUES = {
    "LegemiddelMerkevare": ("MedicinalProductDefinition", "LegemiddelMerkevare"),
    "LegemiddelVirkestoff": ("MedicinalProductDefinition", "LegemiddelVirkestoff"),
    "Legemiddelpakning": ("PackagedProductDefinition", "Legemiddelpakning"),
    "Legemiddeldose": ("ManufacturedItemDefinition", "Legemiddeldose"),
    "Virkestoff": ("SubstanceDefinition", "Virkestoff"),
}


def fest_type(catalogue: str) -> str:
    return FEST_PREFIX + catalogue


def catalogue_of(rtype: str) -> str:
    return rtype.removeprefix(FEST_PREFIX)


def safest_type(rtype: str) -> str:
    return SAFEST_PREFIX + rtype


def is_fest(rtype: str) -> bool:
    return rtype.startswith(FEST_PREFIX)


def is_safest(rtype: str) -> bool:
    return rtype.startswith(SAFEST_PREFIX)


def is_derived(rtype: str) -> bool:
    """FHIR resources served: made from the sources, and remade from the whole release each time."""
    return not (is_fest(rtype) or is_safest(rtype))


@dataclass
class Reconciliation:
    """How FEST and SAFEST met in one release: what each covered, and where they disagree."""

    linked: dict[str, int] = field(default_factory=dict)  # FHIR type -> resources both describe
    fest_only: dict[str, int] = field(default_factory=dict)  # made from FEST, no SAFEST counterpart
    idmp_only: dict[str, int] = field(default_factory=dict)  # from SAFEST, no FEST counterpart
    disagreements: list[Disagreement] = field(default_factory=list)
    code_pairs: list[dict[str, Any]] = field(default_factory=list)  # codes both gave one product

    def as_dict(self) -> dict[str, Any]:
        return {
            "linked": dict(sorted(self.linked.items())),
            "fest_only": dict(sorted(self.fest_only.items())),
            "idmp_only": dict(sorted(self.idmp_only.items())),
            "disagreement_count": len(self.disagreements),
            "disagreements": [d.as_dict() for d in self.disagreements[:MAX_LISTED_DISAGREEMENTS]],
            "code_pairs": self.code_pairs,
        }


class _Entries:
    """The translators' view of the release: entries of the looked-up kinds, by inner Id."""

    def __init__(self) -> None:
        self.by_id: dict[str, FestEntry] = {}

    def get(self, fest_id: str) -> FestEntry | None:
        return self.by_id.get(fest_id)


def derive(
    builder: ReleaseBuilder,
    progress: Progress | None = None,
    equivalents: Callable[[str, str], set[tuple[str, str]]] | None = None,
) -> Reconciliation | None:
    """Serve the FHIR resources of everything the release holds; None when it holds no SAFEST data.

    All of them are remade each time, also for an incremental delivery, so a changed substance
    reaches every product that names it; only resources whose bytes change get a new version.
    """
    lookup_catalogues = {c.name for c in catalogues() if set(c.payloads) & LOOKUP_KINDS}
    lookup = _Entries()
    for _, data in builder.served_data(lambda t: is_fest(t) and catalogue_of(t) in lookup_catalogues):
        entry = FestEntry.from_json(orjson.loads(data))
        if entry.kind in LOOKUP_KINDS:
            lookup.by_id[entry.key] = entry
    safest = [orjson.loads(data) for _, data in builder.served_data(is_safest)]
    try:
        overlay = (
            Overlay(safest, _links(builder, safest), equivalents or (lambda s, c: set())) if safest else None
        )
    except ValueError as e:
        raise DeliveryError(f"refused: {e}") from None
    builder.replace_derived(is_derived)
    made: dict[Key, str] = {}  # (type, id) -> what it was made from
    total = sum(1 for key in builder.active_keys() if is_fest(key[0])) if progress else 0
    for n, ((_, key), data) in enumerate(builder.served_data(is_fest), 1):
        entry = FestEntry.from_json(orjson.loads(data))
        if progress is not None and n % 500 == 0:
            progress(f"FHIR from {entry.catalogue}", n, n, total)
        made_here = _translated(entry, key, lookup)
        for resource, served in zip(
            made_here, overlay.apply_all(made_here) if overlay is not None else made_here, strict=True
        ):
            origin = MERGED if served is not resource else ()
            _serve(builder, made, served, f"FEST {entry.catalogue} Id {key}", entry.oppf_id, origin)
    if overlay is None:
        return None
    rest = overlay.rest()
    for resource in rest:
        _serve(builder, made, resource, "SAFEST", None)
    idmp_only: dict[str, int] = {}
    for resource in rest:
        idmp_only[resource["resourceType"]] = idmp_only.get(resource["resourceType"], 0) + 1
    pairs = [
        {"element": p[0], "fest": list(p[1:4]), "safest": list(p[4:7]), "products": n}
        for p, n in sorted(overlay.observed.items())
    ]
    return Reconciliation(
        dict(overlay.merged), dict(overlay.fest_only), idmp_only, overlay.disagreements, pairs
    )


def code_equivalents() -> Callable[[str, str], set[tuple[str, str]]]:
    """(system, code) -> the codes our ConceptMaps relate it to, either way (FEST 7448 <-> EDQM...).

    An EDQM code counts the same under DMP's own dose-form systems, which publish EDQM's codes.
    """
    from grunndata.terminology import concept_map_files
    from grunndata.translators.terminology import ConceptMapIndex

    index = ConceptMapIndex(concept_map_files())
    known: dict[tuple[str, str], set[tuple[str, str]]] = {}

    def equivalents(system: str, code: str) -> set[tuple[str, str]]:
        if (system, code) not in known:
            matches = index.translate(code, system)[0] + index.translate(code, system, reverse=True)[0]
            related = {
                (m.concept.system or "", m.concept.code)
                for m in matches
                if m.relationship != "not-related-to"
            }
            related |= {(alias, c) for s, c in related if s == EDQM for alias in EDQM_ALIASES}
            known[(system, code)] = related
        return known[(system, code)]

    return equivalents


def _translated(entry: FestEntry, key: str, lookup: _Entries) -> list[Json]:
    try:
        return translate(entry, lookup)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        raise DeliveryError(
            f"cannot translate this entry to FHIR ({type(e).__name__}: {e}); this is a fault in "
            "grunndata's FEST to IDMP mapping, please report it with the entry",
            catalogue=entry.catalogue,
            entry_id=key,
        ) from e


def _serve(
    builder: ReleaseBuilder,
    made: dict[Key, str],
    resource: Json,
    origin: str,
    oppf: str | None,
    index: tuple[tuple[str, str], ...] = (),
) -> None:
    key = (resource["resourceType"], resource["id"])
    if key in made:
        raise DeliveryError(
            f"{made[key]} and {origin} both make {key[0]}/{key[1]}; their ids collide once made into FHIR ids"
        )
    made[key] = origin
    body = orjson.dumps(resource)
    builder.put(
        key[0],
        key[1],
        body,
        hashlib.sha256(body).hexdigest(),
        oppf,
        index,
        fhir_index=fhir_index_rows(resource),
    )


def _links(builder: ReleaseBuilder, safest: list[Json]) -> dict[Key, Key]:
    """SAFEST resource -> the FEST-made resource it stands for, where the FEST entry it names exists."""
    from grunndata.translators.safest import fest_links

    targets: dict[tuple[str, str], Key] = {}
    for rtype, fest_key in builder.active_keys():
        found = _LINKED_CATALOGUES.get(catalogue_of(rtype)) if is_fest(rtype) else None
        if found is not None:
            targets[(found[1], fhir_id(fest_key))] = (found[0], fhir_id(fest_key))
    for _, data in builder.served_data(lambda t: t == fest_type("Legemiddelpakning")):
        entry = FestEntry.from_json(orjson.loads(data))
        varenr = child_text(entry.payload[0], "Varenr") if entry.payload else None
        if varenr:
            targets[("varenr", varenr.strip())] = ("PackagedProductDefinition", fhir_id(entry.key))
    links: dict[Key, Key] = {}
    for resource in safest:
        own = (str(resource.get("resourceType")), str(resource.get("id")))
        for link in fest_links(resource):
            target = targets.get(
                (link.kind, fhir_id(link.value)) if link.kind != "varenr" else (link.kind, link.value)
            )
            if target is not None and target[0] == own[0]:
                links[own] = target
                break
    return links
