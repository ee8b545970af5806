"""A substance's page (`/legemidler/virkestoff/{id}`): its names, its salts and esters (FEST's
Virkestoff names them, RefVirkestoff: the SubstanceDefinition's `relationship`), the parent a salt
or ester is of (the same relation read backwards), and the products whose ingredients name it.

No search parameter reads `relationship`, so the backwards relation is an index of the served
SubstanceDefinitions that name others, made once per snapshot the first time a substance page
asks (a full-size store's 16,000 substances: the product card never waits for it)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Connection

from grunndata.fhir.systems import NS_VIRKESTOFF
from grunndata.server.pages.find import ING, MPD, SD, body, identifier
from grunndata.server.state import SnapshotMemo
from grunndata.store import Clause, SearchError, Snapshot, Version, lookup, read, read_many, search

SALT = "RefVirkestoff"  # the fest-reference code of FEST's "salt or ester of this substance"
MANY_SUBSTANCES = 1_000_000  # every served SubstanceDefinition, once per snapshot
SHOWN_PRODUCTS = 200


def substance_name(resource: dict[str, Any]) -> str:
    names = resource.get("name", ())
    preferred = [n for n in names if n.get("preferred")] or list(names)
    return str(preferred[0].get("name", "")) if preferred else str(resource.get("id", ""))


def _is_salt(relation: dict[str, Any]) -> bool:
    return any(c.get("code") == SALT for c in relation.get("type", {}).get("coding", ()))


def salts_of(resource: dict[str, Any]) -> list[str]:
    """The ids of the salts and esters a SubstanceDefinition names."""
    out = []
    for relation in resource.get("relationship", ()):
        ref = str(relation.get("substanceDefinitionReference", {}).get("reference", ""))
        if _is_salt(relation) and ref.startswith(SD + "/"):
            out.append(ref.removeprefix(SD + "/"))
    return out


class _Parents:
    """Salt or ester id -> the ids of the substances that name it, per snapshot served."""

    def __init__(self) -> None:
        self._memo = SnapshotMemo(self._build)

    def of(self, conn: Connection, snapshot: Snapshot, sid: str) -> list[str]:
        return self._memo.get(conn, snapshot).get(sid, [])

    @staticmethod
    def _build(conn: Connection, snapshot: Snapshot) -> dict[str, list[str]]:
        index: dict[str, list[str]] = {}
        for v in search(conn, snapshot, SD, [], count=MANY_SUBSTANCES)[0]:
            if b'"relationship"' not in v.data:  # most substances name none: not parsed
                continue
            for salt in salts_of(body(v)):
                index.setdefault(salt, []).append(v.id)
        return {salt: sorted(set(parents)) for salt, parents in index.items()}


PARENTS = _Parents()


@dataclass
class Substance:
    id: str
    name: str
    other_names: list[str]
    fest_id: str
    salts: list[dict[str, str]] = field(default_factory=list)
    parents: list[dict[str, str]] = field(default_factory=list)
    products: list[dict[str, str]] = field(default_factory=list)
    more_products: int = 0


def _named(conn: Connection, snapshot: Snapshot, ids: list[str]) -> list[dict[str, str]]:
    found = {v.id: substance_name(body(v)) for v in read_many(conn, snapshot, [(SD, i) for i in ids])}
    return sorted(
        ({"id": i, "name": found[i]} for i in ids if i in found), key=lambda s: (s["name"], s["id"])
    )


def _products(conn: Connection, snapshot: Snapshot, sid: str) -> tuple[list[dict[str, str]], int]:
    param = lookup(ING, "substance")
    assert param is not None
    try:
        ingredients: list[Version] = search(
            conn, snapshot, ING, [Clause(param, None, (f"{SD}/{sid}",))], count=10 * SHOWN_PRODUCTS
        )[0]
    except SearchError:
        return [], 0
    ids = sorted(
        {
            str(f.get("reference", "")).removeprefix(MPD + "/")
            for v in ingredients
            for f in body(v).get("for", ())
            if str(f.get("reference", "")).startswith(MPD + "/")
        }
    )
    products = [
        {"id": v.id, "name": str((body(v).get("name") or [{}])[0].get("productName") or v.id)}
        for v in read_many(conn, snapshot, [(MPD, i) for i in ids[:SHOWN_PRODUCTS]])
    ]
    products.sort(key=lambda p: (p["name"], p["id"]))
    return products, max(0, len(ids) - SHOWN_PRODUCTS)


def substance_page(conn: Connection, snapshot: Snapshot, sid: str) -> Substance | None:
    """What the page of SubstanceDefinition `sid` shows, or None when the snapshot does not serve it."""
    found = read(conn, snapshot, SD, sid)
    if found is None:
        return None
    r = body(found)
    name = substance_name(r)
    others = [str(n.get("name")) for n in r.get("name", ()) if n.get("name") and n.get("name") != name]
    s = Substance(sid, name, list(dict.fromkeys(others)), identifier(r, NS_VIRKESTOFF))
    s.salts = _named(conn, snapshot, salts_of(r))
    s.parents = _named(conn, snapshot, PARENTS.of(conn, snapshot, sid))
    s.products, s.more_products = _products(conn, snapshot, sid)
    return s
