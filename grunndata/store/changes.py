"""What a release changed against the one its line served before: the manifests' difference, with
the safety-relevant changes (a product withdrawn or expired, an SLV notice, an interaction) marked,
for the subscriptions that tell record systems about a release."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.engine import Connection

from grunndata.fhir import CS_KIND, CS_MARKETING_STATUS, SERVED_TYPES
from grunndata.store.models import M, R

SAFETY_KINDS = ("withdrawn", "expired", "slv-notice", "interaction")
"""The safety-relevant kinds of change, as the safety topic's `kind` filter names them."""

_PPD, _MPD = "PackagedProductDefinition", "MedicinalProductDefinition"
_PRODUCTS = frozenset({_PPD, _MPD})
_WITHDRAWN_MARKETING = frozenset({"avregistrert", "midlertidig-utgatt"})  # tables.py _marketing_status
_BATCH = 500


@dataclass(frozen=True, slots=True)
class Change:
    """One resource a release created, updated or stopped serving."""

    type: str
    id: str
    version: int  # the version now served; for a deletion the last version served
    tier: str
    owner: str
    action: str  # "create" | "update" | "delete"
    safety: frozenset[str]  # a subset of SAFETY_KINDS

    @property
    def reference(self) -> str:
        """`Type/id/_history/version`: the version served, or for a deletion the last one served."""
        return f"{self.type}/{self.id}/_history/{self.version}"


_Row = tuple[int, int, str, str]  # a version in one manifest: pk, version, tier, owner
_NO_CLASS, _EXPIRED, _WITHDRAWN = frozenset[str](), frozenset({"expired"}), frozenset({"withdrawn"})
_SLV_NOTICE, _INTERACTION = frozenset({"slv-notice"}), frozenset({"interaction"})


def release_changes(
    conn: Connection,
    release_id: int,
    previous_id: int | None,
    types: Collection[str] | None = SERVED_TYPES,
) -> list[Change]:
    """What `release_id` serves differently from `previous_id` (the line's release served before;
    None: none, so everything served is created), sorted by type and id. `types`: the resource
    types compared (None: every stored type, the FEST entries too, as a release diff shows them).

    The difference of the two manifests, not the release's own tombstones: the release before
    may be one notified several releases ago, or the newer one a rollback made active again. Only
    the entries in one manifest and not the other are read (a release changes a few thousand of
    ~107k), and resource bodies only of the types a safety class looks into.
    """
    added = _only_in(conn, release_id, previous_id, types)
    removed = _only_in(conn, previous_id, release_id, types) if previous_id is not None else {}
    safety = _safety(conn, added, removed)
    changes: list[Change] = []
    for key in sorted(added.keys() | removed.keys()):
        row = added.get(key)
        if row is None:  # served before, not now
            _, version, tier, owner = removed[key]
            classes = _EXPIRED if key[0] in _PRODUCTS else _NO_CLASS
            changes.append(Change(key[0], key[1], version, tier, owner, "delete", classes))
        else:
            action = "update" if key in removed else "create"
            changes.append(Change(key[0], key[1], row[1], row[2], row[3], action, safety.get(key, _NO_CLASS)))
    return changes


def _only_in(
    conn: Connection, release: int | None, other: int | None, types: Collection[str] | None
) -> dict[tuple[str, str], _Row]:
    """The served versions in `release`'s manifest and not in `other`'s, by (type, id)."""
    query = (
        select(R.c.type, R.c.id, R.c.pk, R.c.version, R.c.tier, R.c.owner_id)
        .select_from(M.join(R, R.c.pk == M.c.resource_pk))
        .where(M.c.release_id == release)
    )
    if types is not None:
        query = query.where(R.c.type.in_(list(types)))
    if other is not None:
        theirs = M.alias("theirs")
        query = query.where(
            ~select(theirs.c.resource_pk)
            .where(theirs.c.release_id == other, theirs.c.resource_pk == M.c.resource_pk)
            .exists()
        )
    return {(t, i): (pk, v, tier, owner) for t, i, pk, v, tier, owner in conn.execute(query)}


def _safety(
    conn: Connection, added: dict[tuple[str, str], _Row], removed: dict[tuple[str, str], _Row]
) -> dict[tuple[str, str], frozenset[str]]:
    """The safety classes of the created and updated resources, from the bodies of those whose type
    can carry one: SLV notices (Basic), interactions (ClinicalUseDefinition), and the products
    updated to a withdrawn status (with the version served before, which must not have been)."""
    wanted: dict[int, tuple[str, str]] = {}  # pk -> the key whose body it is
    before: dict[tuple[str, str], int] = {}  # an updated product -> the version served before
    for key, row in added.items():
        if key[0] in ("Basic", "ClinicalUseDefinition"):
            wanted[row[0]] = key
        elif key[0] in _PRODUCTS and key in removed:
            wanted[row[0]] = key
            before[key] = removed[key][0]
    found: dict[tuple[str, str], frozenset[str]] = {}
    withdrawn: list[tuple[str, str]] = []
    for pk, data in _bodies(conn, wanted):
        key = wanted[pk]
        if key[0] == "Basic" and _is_slv_notice(data):
            found[key] = _SLV_NOTICE
        elif key[0] == "ClinicalUseDefinition" and _is_interaction(data):
            found[key] = _INTERACTION
        elif key[0] in _PRODUCTS and _withdrawn(data):
            withdrawn.append(key)
    if withdrawn:  # withdrawn by this release only if the version served before was not
        already = {pk for pk, data in _bodies(conn, [before[k] for k in withdrawn]) if _withdrawn(data)}
        found.update((k, _WITHDRAWN) for k in withdrawn if before[k] not in already)
    return found


def _bodies(conn: Connection, pks: Iterable[int]) -> Iterator[tuple[int, bytes]]:
    wanted = sorted(pks)
    for i in range(0, len(wanted), _BATCH):
        for pk, data in conn.execute(select(R.c.pk, R.c.data).where(R.c.pk.in_(wanted[i : i + _BATCH]))):
            yield pk, bytes(data)


def _codes(concept: Any) -> set[tuple[Any, Any]]:
    """(system, code) of a CodeableConcept's codings; none for anything else."""
    if not isinstance(concept, dict) or not isinstance(concept.get("coding"), list):
        return set()
    return {(c.get("system"), c.get("code")) for c in concept["coding"] if isinstance(c, dict)}


def _parsed(data: bytes, *words: bytes) -> dict[str, Any] | None:
    """The body parsed, when it holds one of `words` at all (most bodies are passed over unparsed)."""
    if not any(w in data for w in words):
        return None
    parsed = orjson.loads(data)
    return parsed if isinstance(parsed, dict) else None


def _withdrawn(data: bytes) -> bool:
    """A product retired, or a package whose marketing status says deregistered or temporarily
    unavailable (FEST's AvregDato and MidlUtgattDato)."""
    resource = _parsed(data, b"avregistrert", b"midlertidig-utgatt", b"retired")
    if resource is None:
        return False
    if any(code == "retired" for _, code in _codes(resource.get("status"))):
        return True
    statuses = resource.get("marketingStatus")
    return isinstance(statuses, list) and any(
        system == CS_MARKETING_STATUS and code in _WITHDRAWN_MARKETING
        for status in statuses
        if isinstance(status, dict)
        for system, code in _codes(status.get("status"))
    )


def _is_slv_notice(data: bytes) -> bool:
    resource = _parsed(data, b"VarselSlv")
    return resource is not None and (CS_KIND, "VarselSlv") in _codes(resource.get("code"))


def _is_interaction(data: bytes) -> bool:
    resource = _parsed(data, b"interaction")
    return resource is not None and resource.get("type") == "interaction"
