"""translate(): one FEST entry -> its FHIR R5 resources, by walking the entry's mapping table."""

from __future__ import annotations

from typing import Any

from grunndata.fhir import systems as s
from grunndata.m30 import FestEntry
from grunndata.translators.fest_to_idmp.order import ordered
from grunndata.translators.fest_to_idmp.rules import Context, Lookup, walk
from grunndata.translators.fest_to_idmp.schema import oppf_xsd
from grunndata.translators.fest_to_idmp.tables import MAPPINGS
from grunndata.translators.fest_to_idmp.values import Json, fhir_id, tree
from grunndata.translators.shape import one_shape

LOOKUP_KINDS: frozenset[str] = frozenset({"VirkestoffMedStyrke"})
"""The payload kinds translate() looks up: a product's Ingredients need the strength of each
VirkestoffMedStyrke they name (about 8,000 small entries in a full delivery)."""


def translate(entry: FestEntry, lookup: Lookup) -> list[dict[str, Any]]:
    """The FHIR R5 resources made from `entry`, primary resource first, as JSON-ready dicts.

    Keys come in FHIR element order, and every resource has resourceType and id but no meta (the
    store adds it). The same entry and lookup give equal output. An Oppf without payload (an
    expiry notice in an incremental delivery) makes nothing. A payload that breaks the M30 XSD
    raises ValueError naming the element.
    """
    if not entry.payload:
        return []
    kind = entry.payload[0][0]
    mapping = MAPPINGS.get(kind)
    if mapping is None:
        raise ValueError(f"{entry.catalogue} cannot hold {kind}")
    oppf = oppf_xsd(entry.catalogue)
    if kind == "Info":  # Kodeverk: the payload is Info, Element+
        node, xsd = ["", None, None, list(entry.payload)], oppf
    elif len(entry.payload) == 1 and kind in oppf[1]:
        node, xsd = entry.payload[0], oppf[1][kind]
    else:
        raise ValueError(f"{entry.catalogue} cannot hold {', '.join(p[0] for p in entry.payload)}")
    primary: Json = {"resourceType": mapping.resource, "id": fhir_id(entry.key)}
    ctx = Context(entry, lookup, primary)
    table = mapping.table
    if table.start is not None:
        table.start(primary, ctx)
    walk(node, table, primary, ctx, xsd)
    if table.finish is not None:
        table.finish(primary, ctx)
    primary.setdefault("extension", []).insert(0, oppforing(entry))
    made = [primary, *ctx.secondary.values(), *ctx.extra]
    for resource in made:
        one_shape(resource)
    return [ordered(resource, resource["resourceType"]) for resource in made]


def oppforing(entry: FestEntry) -> Json:
    """The Oppf envelope (Id, Tidspunkt, Status) as extension fest-oppforing, so M30 can be remade."""
    envelope = ["Oppf", None, None, entry.envelope()]
    return tree(envelope, oppf_xsd(entry.catalogue), s.EXT_OPPFORING)
