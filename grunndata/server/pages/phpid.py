"""The product card's PhPID groups: the PhPIDs its packages (and, for a substance-based product,
the product itself) carry (terminology/phpid.py, docs/phpid.md), each with the other products
whose packages carry the same PhPID: one indexed identifier search for all of them."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy.engine import Connection

from grunndata.fhir.systems import NS_PHPID
from grunndata.server.pages.find import MPD, PPD, body
from grunndata.store import Clause, SearchError, Snapshot, Version, lookup, read_many, search

LEVELS = {
    1: "virkestoff",
    2: "virkestoff og styrke",
    3: "virkestoff og legemiddelform",
    4: "virkestoff, styrke og legemiddelform",
}
STRATA = {"A": "aktiv del (virkestoff)", "S": "spesifisert substans (salt eller ester)"}
SHOWN_PRODUCTS = 20
"""Other products named per group; more are counted, and the FHIR search lists them all."""
MEMBERS = 2000
"""Packages read for all of a card's groups (a level 1 group of a common substance has hundreds)."""


def _values(resource: dict[str, Any]) -> list[str]:
    return [
        str(i["value"])
        for i in resource.get("identifier", ())
        if i.get("system") == NS_PHPID and isinstance(i.get("value"), str)
    ]


def _products(package: dict[str, Any]) -> list[str]:
    return [
        str(p.get("reference", "")).removeprefix(MPD + "/")
        for p in package.get("packageFor", ())
        if str(p.get("reference", "")).startswith(MPD + "/")
    ]


_FOR = b'"packageFor":'


def _products_of(package: Version) -> list[str]:
    """The products a package is for, from its stored JSON's `packageFor` alone (an array of
    References, no array inside), or from the whole package when that cannot be read so."""
    data = package.data
    at = data.find(_FOR)
    if at < 0:
        return []
    start = at + len(_FOR)
    try:
        refs = orjson.loads(data[start : data.index(b"]", start) + 1])
    except (ValueError, orjson.JSONDecodeError):
        refs = None
    if not isinstance(refs, list) or not all(isinstance(r, dict) for r in refs):
        return _products(body(package))
    return _products({"packageFor": refs})


def _level(value: str) -> tuple[int, str]:
    """A value's level and stratum (`L4A-...`: 4, A); (0, "") for one not in our form."""
    head = value.split("-", 1)[0]
    if len(head) == 3 and head[0] == "L" and head[1] in "1234" and head[2] in STRATA:
        return int(head[1]), head[2]
    return 0, ""


def phpid_groups(
    conn: Connection, snapshot: Snapshot, rid: str, product: dict[str, Any], packages: list[Version]
) -> list[dict[str, Any]]:
    """The PhPID groups of product `rid`: per PhPID (level 1 to 4, stratum A before S), its
    packages here, and the other products with a package of the same PhPID (by name)."""
    values: list[str] = []
    for resource in (product, *(body(v) for v in packages)):
        values += [v for v in _values(resource) if v not in values]
    if not values:
        return []
    param = lookup(PPD, "identifier")
    assert param is not None
    try:
        members = search(
            conn,
            snapshot,
            PPD,
            [Clause(param, None, tuple(f"{NS_PHPID}|{v}" for v in values))],
            count=MEMBERS,
        )[0]
    except SearchError:
        members = []
    by_value: dict[str, set[str]] = {v: set() for v in values}  # value -> the products of its packages
    wanted = [(v, v.encode()) for v in values]
    for m in members:  # a level 1 group can hold hundreds: read each one's two facts, not all of it
        products = _products_of(m)
        for value, raw in wanted:
            if raw in m.data:  # a PhPID's digest is found nowhere else in a package
                by_value[value].update(products)
    shown = {p for v in values for p in sorted(by_value[v] - {rid})[:SHOWN_PRODUCTS]}
    names = {
        v.id: str((body(v).get("name") or [{}])[0].get("productName") or v.id)
        for v in read_many(conn, snapshot, [(MPD, p) for p in sorted(shown)])
    }
    groups = []
    for value in sorted(values, key=lambda v: (_level(v), v)):
        level, stratum = _level(value)
        products = sorted(by_value[value] - {rid})  # the first few by id, shown by name
        named = sorted(products[:SHOWN_PRODUCTS], key=lambda p: (names.get(p, p), p))
        groups.append(
            {
                "value": value,
                "level": level,
                "what": LEVELS.get(level, ""),
                "stratum": STRATA.get(stratum, ""),
                "others": [{"id": p, "name": names.get(p, p)} for p in named],
                "more": max(0, len(products) - SHOWN_PRODUCTS),
                "search": f"/fhir/{PPD}?identifier={NS_PHPID}|{value}",
            }
        )
    return groups
