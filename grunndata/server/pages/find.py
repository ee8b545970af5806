"""Find a drug: one query (a name, varenr, GTIN, ATC code or substance) answered through the store's
own search (store/search.py, as /fhir answers it), the products grouped with their packages.

Names match as people read Norwegian: case and the accents of é/è ignored, but æ, ø and å are
letters of their own. The index folds å to a (R5 string search drops every accent), so the page
asks the index for the wider set and keeps what `fold` says matches."""

from __future__ import annotations

import functools
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.engine import Connection

from grunndata.store import Clause, SearchError, Snapshot, SortKey, Version, lookup, read_many, search

MPD, PPD, ING, SD = (
    "MedicinalProductDefinition",
    "PackagedProductDefinition",
    "Ingredient",
    "SubstanceDefinition",
)
MAX_QUERY = 100  # characters: a drug's name is far shorter; longer is a 400 saying so
MIN_CONTAINS = 3  # letters before a name is also found by what it contains (a prefix before that)
MAX_PRODUCTS = 50  # products shown; more says "the first 50"
_NAME_CANDIDATES = 400  # matches asked of the index before `fold` narrows them
_ATC = re.compile(r"[A-Za-z][0-9]{2}(?:[A-Za-z](?:[A-Za-z](?:[0-9]{2})?)?)?")
_OWN_LETTERS = {"å": "\0a", "Å": "\0a"}  # kept through the accent folding; æ and ø never decompose


@functools.lru_cache(maxsize=2048)
def _parsed(data: bytes) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(data)
    return parsed


def body(version: Version) -> dict[str, Any]:
    """A stored version's resource (without meta: the pages show none of it), parsed once while
    it stays among the recent ones; never changed by the pages."""
    return _parsed(version.data)


class QueryError(ValueError):
    """A query the page cannot take (too long, control characters): a 400 with this sentence."""


def fold(text: str) -> str:
    """`text` as names are compared: casefolded, accents dropped except å's ring (æ, ø have none)."""
    kept = "".join(_OWN_LETTERS.get(c, c) for c in unicodedata.normalize("NFC", text).casefold())
    bare = "".join(c for c in unicodedata.normalize("NFKD", kept) if not unicodedata.combining(c))
    return bare.replace("\0a", "å").strip()


def checked(query: str) -> str:
    """The query trimmed, or QueryError when it is too long or holds control characters."""
    text = query.strip()
    if len(text) > MAX_QUERY:
        raise QueryError(f"Søket er {len(text)} tegn langt; skriv høyst {MAX_QUERY} tegn.")
    if any(unicodedata.category(c) == "Cc" for c in text):
        raise QueryError(
            "Søket inneholder kontrolltegn; skriv et navn, et varenummer, en GTIN eller en ATC-kode."
        )
    return text


@dataclass
class Product:
    """One product found, with its packages (varenr, size) and why it was found."""

    id: str
    name: str
    form: str
    atc: str
    packages: list[dict[str, str]] = field(default_factory=list)
    matched: str = ""  # name, varenr, GTIN, ATC, substance


@dataclass
class Found:
    query: str
    kind: str  # what the query was read as (Norwegian, for the page)
    products: list[Product]
    more: bool  # more matched than are shown


def _clause(rtype: str, code: str, value: str, modifier: str | None = None) -> Clause:
    param = lookup(rtype, code)
    assert param is not None, (rtype, code)
    return Clause(param, modifier, (value,))


def _search(
    conn: Connection, snapshot: Snapshot, rtype: str, clause: Clause, count: int, by_name: bool = False
) -> list[Version]:
    """The first `count` matches (in name order with `by_name`: the ones a person reads first)."""
    try:
        sort = (SortKey("name", False),) if by_name else ()
        return search(conn, snapshot, rtype, [clause], sort=sort, count=count)[0]
    except SearchError:  # a value the index cannot take (an ATC code it does not know): no match
        return []


def _refs(resource: dict[str, Any], *path: str) -> list[str]:
    """The `Type/id` references at `path` (lists walked)."""
    nodes: list[Any] = [resource]
    for step in path:
        nodes = [n.get(step) for n in nodes if isinstance(n, dict)]
        nodes = [x for n in nodes for x in (n if isinstance(n, list) else [n]) if x is not None]
    return [n for n in nodes if isinstance(n, str)]


def _products_of(packages: list[Version]) -> list[str]:
    out: list[str] = []
    for p in packages:
        for ref in _refs(body(p), "packageFor", "reference"):
            rid = ref.removeprefix(MPD + "/")
            if rid != ref and rid not in out:
                out.append(rid)
    return out


def find(conn: Connection, snapshot: Snapshot, query: str) -> Found:
    """The products `query` finds, best first: a name beginning with it before one containing it."""
    text = checked(query)
    if not text:
        return Found(text, "", [], False)
    hits: dict[str, str] = {}  # product id -> what matched, in order found
    kind = "navn eller virkestoff"
    compact = text.replace(" ", "")
    if compact.isdigit():
        kind = "varenummer" if len(compact) <= 6 else "GTIN"
        packages = _search(conn, snapshot, PPD, _clause(PPD, "identifier", compact), 50)
        for rid in _products_of(packages):
            hits.setdefault(rid, kind)
    elif _ATC.fullmatch(text):
        kind = "ATC-kode eller navn"
        atc = _clause(MPD, "product-classification", text.upper(), "below")
        for v in _search(conn, snapshot, MPD, atc, 200):
            hits.setdefault(v.id, "ATC")
    if not compact.isdigit():
        wanted = fold(text)
        # names beginning with the query first, then those holding it: each asks the index for a
        # bounded number, so a one-letter query on a full store still lists the prefix matches
        named = _search(conn, snapshot, MPD, _clause(MPD, "name", text), _NAME_CANDIDATES, True)
        if len(wanted) >= MIN_CONTAINS:  # one or two letters, typed first: names beginning with them
            named += _search(
                conn, snapshot, MPD, _clause(MPD, "name", text, "contains"), _NAME_CANDIDATES, True
            )
        by_name = [(v.id, _name(body(v))) for v in named if _matches(wanted, _name(body(v)))]
        by_name.sort(key=lambda x: (not fold(x[1]).startswith(wanted), fold(x[1])))
        for rid, _ in by_name:
            hits.setdefault(rid, "navn")
        for rid in _by_substance(conn, snapshot, text, wanted):
            hits.setdefault(rid, "virkestoff")
    ids = list(hits)
    shown = ids[:MAX_PRODUCTS]
    products = [_product(v, hits[v.id]) for v in read_many(conn, snapshot, [(MPD, i) for i in shown])]
    order = {rid: n for n, rid in enumerate(shown)}
    products.sort(key=lambda p: order[p.id])
    _attach_packages(conn, snapshot, products)
    return Found(text, kind, products, len(ids) > MAX_PRODUCTS)


def _matches(wanted: str, name: str) -> bool:
    """`name` holds `wanted` (folded), or begins with it when it is shorter than MIN_CONTAINS."""
    folded = fold(name)
    return wanted in folded if len(wanted) >= MIN_CONTAINS else folded.startswith(wanted)


def _by_substance(conn: Connection, snapshot: Snapshot, text: str, wanted: str) -> list[str]:
    """Products with an ingredient whose substance has a name matching `wanted`."""
    anywhere = "contains" if len(wanted) >= MIN_CONTAINS else None
    found = _search(conn, snapshot, SD, _clause(SD, "name", text, anywhere), 50)
    substances = [
        f"{SD}/{v.id}"
        for v in found
        if any(_matches(wanted, n.get("name", "")) for n in body(v).get("name", ()))
    ]
    if not substances:
        return []
    param = lookup(ING, "substance")
    assert param is not None
    try:
        ingredients = search(conn, snapshot, ING, [Clause(param, None, tuple(substances))], count=400)[0]
    except SearchError:
        return []
    out: list[str] = []
    for v in ingredients:
        for ref in _refs(body(v), "for", "reference"):
            if ref.startswith(MPD + "/") and ref[len(MPD) + 1 :] not in out:
                out.append(ref[len(MPD) + 1 :])
    return out


def _name(resource: dict[str, Any]) -> str:
    names = resource.get("name") or [{}]
    return str(names[0].get("productName", resource.get("id", "")))


def text_of(concept: Any) -> str:
    """A CodeableConcept as people read it: its text, or its first coding's display or code."""
    if not isinstance(concept, dict):
        return ""
    if concept.get("text"):
        return str(concept["text"])
    for coding in concept.get("coding", ()):
        if coding.get("display") or coding.get("code"):
            return str(coding.get("display") or coding.get("code"))
    return ""


def atc_of(resource: dict[str, Any]) -> tuple[str, str]:
    """The product's ATC code and its name, or empty strings."""
    for concept in resource.get("classification", ()):
        for coding in concept.get("coding", ()):
            if coding.get("system") == "http://www.whocc.no/atc":
                return str(coding.get("code", "")), str(coding.get("display", ""))
    return "", ""


def _product(version: Version, matched: str) -> Product:
    r = body(version)
    return Product(
        version.id,
        _name(r),
        text_of(r.get("combinedPharmaceuticalDoseForm")),
        atc_of(r)[0],
        matched=matched,
    )


def identifier(resource: dict[str, Any], system: str) -> str:
    for ident in resource.get("identifier", ()):
        if ident.get("system") == system:
            return str(ident.get("value", ""))
    return ""


VARENR = "http://dmp.no/fhir/NamingSystem/fest-varenummer"
GTIN = "https://www.gs1.org/gtin"


def pack_size(resource: dict[str, Any]) -> str:
    """`60 stk`: the package's contained quantity as FEST gives it (Pakningsstr and unit)."""
    for q in resource.get("containedItemQuantity", ()):
        value = q.get("value")
        shown = f"{value:g}" if isinstance(value, float) else str(value)
        return f"{shown} {q.get('code') or q.get('unit') or ''}".strip()
    return ""


def _attach_packages(conn: Connection, snapshot: Snapshot, products: list[Product]) -> None:
    if not products:
        return
    param = lookup(PPD, "package-for")
    assert param is not None
    refs = tuple(f"{MPD}/{p.id}" for p in products)
    packages = search(conn, snapshot, PPD, [Clause(param, None, refs)], count=1000)[0]
    by_product = {p.id: p for p in products}
    for v in sorted(packages, key=lambda v: identifier(body(v), VARENR)):
        for ref in _refs(body(v), "packageFor", "reference"):
            product = by_product.get(ref.removeprefix(MPD + "/"))
            if product is not None:
                product.packages.append(
                    {
                        "id": v.id,
                        "varenr": identifier(body(v), VARENR),
                        "gtin": identifier(body(v), GTIN),
                        "size": pack_size(body(v)),
                    }
                )
