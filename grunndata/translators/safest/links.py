"""The FEST ids a SAFEST resource carries, so the importer can link it to the resources made from FEST.

SAFEST and its relatives name FEST ids in several identifier systems (reference/idmp-fhir.md, d1):
DMP's LMDI NamingSystems, the Nordic ePI URIs, the catalogue-specific and generic ehelse.no FEST
systems of the 2020 SAFEST drafts. The systems of NOMA's current (v3) identifier slices
(legemiddelPakningID, itemNumber, ...) are not published -- the sources say "not found" -- so they
are recognised only once they are added to FEST_SYSTEMS; nothing else needs to change then.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from grunndata.fhir import (
    NS_DOSE,
    NS_LEGEMIDDELVIRKESTOFF,
    NS_MERKEVARE,
    NS_PAKNING,
    NS_VARENR,
    NS_VIRKESTOFF,
)
from grunndata.translators.safest.model import Json

MERKEVARE, PAKNING, VARENR = "LegemiddelMerkevare", "Legemiddelpakning", "varenr"
LEGEMIDDELVIRKESTOFF, DOSE, VIRKESTOFF = "LegemiddelVirkestoff", "Legemiddeldose", "Virkestoff"
FEST_GENERIC = "http://ehelse.no/fhir/CodeSystem/FEST"

FEST_SYSTEMS: dict[str, str | None] = {
    NS_MERKEVARE: MERKEVARE,
    NS_LEGEMIDDELVIRKESTOFF: LEGEMIDDELVIRKESTOFF,
    NS_PAKNING: PAKNING,
    NS_DOSE: DOSE,
    NS_VARENR: VARENR,
    NS_VIRKESTOFF: VIRKESTOFF,  # ours (fest_to_idmp), for the Virkestoff catalogue no NamingSystem covers
    "http://legemiddelverket.no/FEST/LegemiddelMerkevareID": MERKEVARE,  # Nordic ePI
    "http://legemiddelverket.no/FEST/LegemiddelPakningID": PAKNING,  # Nordic ePI
    "https://farmalogg.no/varenummer": VARENR,  # Nordic ePI
    FEST_GENERIC + "/KatLegemiddelMerkevare": MERKEVARE,  # SAFEST 2020 drafts
    FEST_GENERIC + "/KatLegemiddelPakning": PAKNING,  # SAFEST 2020 legemiddelPakningID slice
    FEST_GENERIC + "/KatLegemiddeldose": DOSE,  # SAFEST 2020 drafts
    FEST_GENERIC: None,  # no-basis and SAFEST 2020: which catalogue depends on the resource type
}
"""Identifier system -> FEST link kind; None: the kind is the resource type's (GENERIC_KINDS)."""

GENERIC_KINDS = {
    "MedicinalProductDefinition": MERKEVARE,
    "PackagedProductDefinition": PAKNING,
    "ManufacturedItemDefinition": DOSE,
    "SubstanceDefinition": VIRKESTOFF,
}
"""The FEST catalogue a generic FEST id names, by the R5 type of the resource carrying it."""

FEST_ID_EXTENSION_TAILS = ("festid", "fest-id")
"""NOMA gives a substance's FEST id in an extension (with SMS ID and UNII); its URL ends so."""


@dataclass(frozen=True, slots=True)
class FestLink:
    """One FEST id on a resource: `kind` is the FEST catalogue (or ``varenr``), `value` the id as
    the store's resource ids have it (without ``ID_``); a varenr is kept as given."""

    kind: str
    value: str


def fest_links(resource: Json) -> list[FestLink]:
    """The FEST ids R5 `resource` carries in its identifiers and NOMA's FEST id extension, in order.

    Only the resource's own identifiers count: PackagedProductDefinition.packaging.identifier holds
    GTINs of packaging levels, which name no FEST entry.
    """
    rtype = resource.get("resourceType")
    found: list[FestLink] = []
    for identifier in _identifiers(resource.get("identifier")):
        system = identifier.get("system")
        if isinstance(system, str) and system in FEST_SYSTEMS:
            _add(found, FEST_SYSTEMS[system] or GENERIC_KINDS.get(str(rtype)), identifier.get("value"))
    for extension in _extensions(resource.get("extension")):
        url = extension.get("url")
        if isinstance(url, str) and url.lower().endswith(FEST_ID_EXTENSION_TAILS):
            given = extension.get("valueIdentifier")
            if isinstance(given, dict):
                kind = FEST_SYSTEMS.get(str(given.get("system"))) or GENERIC_KINDS.get(str(rtype))
                _add(found, kind, given.get("value"))
            else:
                _add(found, GENERIC_KINDS.get(str(rtype)), extension.get("valueString"))
    return found


def _identifiers(value: Any) -> Iterator[Json]:
    """Identifier is a list on most resources and one value on Ingredient."""
    for identifier in value if isinstance(value, list) else [value]:
        if isinstance(identifier, dict):
            yield identifier


def _extensions(value: Any) -> Iterator[Json]:
    """Every extension, nested ones included (NOMA may group the business identifiers)."""
    for extension in value if isinstance(value, list) else []:
        if isinstance(extension, dict):
            yield extension
            yield from _extensions(extension.get("extension"))


def _add(found: list[FestLink], kind: str | None, value: Any) -> None:
    if kind is None or not isinstance(value, str) or not value.strip():
        return
    value = value.strip()
    link = FestLink(kind, value if kind == VARENR else value.removeprefix("ID_"))
    if link not in found:
        found.append(link)
