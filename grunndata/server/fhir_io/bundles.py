"""The Bundles the FHIR routes answer with (searchset, history) and the shaping of a resource by
`_summary`/`_elements`: the only place a stored resource is re-serialised."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import Any

import orjson
from fastapi import Request

from grunndata.server.fhir_io.params import Query, query_string
from grunndata.server.fhir_io.responses import bundle, entry
from grunndata.store import HistoryItem, Snapshot, Version, instant
from grunndata.store.barcodes import Match

Resource = dict[str, Any]
SUBSETTED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue", "code": "SUBSETTED"}


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir"


@cache
def _summary_elements(rtype: str) -> frozenset[str]:
    from fhir.resources import get_fhir_model_class

    model: Any = get_fhir_model_class(rtype)
    return frozenset(model.summary_elements_sequence())


def shape(resource: Resource, summary: str | None, elements: Sequence[str] | None) -> Resource:
    """Apply _summary / _elements to one resource (the only place a resource is re-serialised)."""
    keep: Callable[[str], bool] | None = None
    if summary == "true":
        allowed = _summary_elements(resource["resourceType"])
        keep = lambda k: k in allowed or k.lstrip("_") in allowed  # noqa: E731
    elif summary == "text":
        keep = lambda k: k in ("id", "meta", "text")  # noqa: E731
    elif summary == "data":
        keep = lambda k: k != "text"  # noqa: E731
    elif elements is not None:
        wanted = set(elements) | {"id", "meta"}
        keep = lambda k: k.lstrip("_") in wanted  # noqa: E731
    if keep is None:
        return resource
    shaped = {k: v for k, v in resource.items() if k == "resourceType" or keep(k)}
    if summary != "data":
        meta = shaped["meta"] = dict(shaped.get("meta", {}))
        meta["tag"] = [*meta.get("tag", []), SUBSETTED]
    return shaped


def resource_bytes(version: Version, query: Query | None, body: bytes | None = None) -> bytes:
    """The resource as `query` shapes it; `body` is its prepared bytes, when the caller has them."""
    if query is None or (query.summary in (None, "false") and query.elements is None):
        return version.body() if body is None else body
    return orjson.dumps(shape(version.resource(), query.summary, query.elements))


def listed_bytes(resource: Resource, query: Query | None) -> bytes:
    """A resource of a source besides the store, as `query` shapes it."""
    if query is None:
        return orjson.dumps(resource)
    return orjson.dumps(shape(resource, query.summary, query.elements))


def searchset(
    request: Request,
    query: Query,
    listed: Sequence[Resource],
    page: Sequence[Version],
    included: Sequence[Version],
    snapshot: Snapshot | None,
    more: bool,
    total: int | None,
    found: Mapping[int, Sequence[Match]] | None = None,
    bodies: Sequence[bytes] | None = None,
) -> bytes:
    """A search's Bundle: the listed matches, then the store's, what they include, and a warning
    for each parameter ignored; links that page through the same releases. `found`: where a
    barcode search found its code in each match (by pk), said on the entry's search element;
    `bodies`: the page's prepared bodies (`Version.body()`, from the read cache), in its order."""
    base = base_url(request)
    entries = [
        entry(f"{base}/{query.rtype}/{r['id']}", listed_bytes(r, query), {"search": {"mode": "match"}})
        for r in listed
    ]
    if bodies is not None and not found and query.summary in (None, "false") and query.elements is None:
        entries += _match_entries(base, page, bodies)
    else:
        entries += [
            entry(
                f"{base}/{v.type}/{v.id}",
                resource_bytes(v, query, None if bodies is None else bodies[i]),
                {"search": _match_search(v, found)},
            )
            for i, v in enumerate(page)
        ]
    entries += [
        entry(f"{base}/{v.type}/{v.id}", resource_bytes(v, query), {"search": {"mode": "include"}})
        for v in included
    ]
    if query.ignored:
        note = {
            "resourceType": "OperationOutcome",
            "issue": [
                {
                    "severity": "warning",
                    "code": "not-supported",
                    "diagnostics": f"ignored search parameter {name!r} (unknown for {query.rtype})",
                }
                for name in query.ignored
            ],
        }
        entries.append(
            entry("urn:grunndata:search-outcome", orjson.dumps(note), {"search": {"mode": "outcome"}})
        )
    return bundle("searchset", entries, _search_links(request, query, snapshot, more, base), total)


_MATCH = b',"search":{"mode":"match"},"resource":'


def _match_entries(base: str, page: Sequence[Version], bodies: Sequence[bytes]) -> list[bytes]:
    """The entries `entry()` makes of matches sent whole with their bodies ready, the same bytes
    made by joining them (a first-time search's Bundle is mostly its entries: ATC answers hold ~12)."""
    return [
        b"".join((b'{"fullUrl":', orjson.dumps(f"{base}/{v.type}/{v.id}"), _MATCH, body, b"}"))
        for v, body in zip(page, bodies, strict=True)
    ]


def _match_search(version: Version, found: Mapping[int, Sequence[Match]] | None) -> dict[str, Any]:
    """A match's entry.search: its mode, and where a barcode search found the code (barcodes.py)."""
    matches = (found or {}).get(version.pk)
    if not matches:
        return {"mode": "match"}
    return {"extension": [m.extension() for m in matches], "mode": "match"}


def _search_links(
    request: Request, query: Query, snapshot: Snapshot | None, more: bool, base: str
) -> list[tuple[str, str]]:
    kept = [(k, v) for k, v in request.query_params.multi_items() if k in ("_format", "_pretty")]
    shaping_params: list[tuple[str, str]] = []
    for name in ("_sort", "_include", "_revinclude", "_summary", "_elements", "_total"):
        shaping_params += [(k, v) for k, v in request.query_params.multi_items() if k == name]
    url = f"{base}/{query.rtype}?"

    def at(offset: int) -> str:
        paging = [("_count", str(query.count)), ("_offset", str(offset))]
        if snapshot is not None:  # the releases the page was read from (none for a listed-only type)
            paging.append(("_snapshot", snapshot.token))
        return url + query_string(query.used + shaping_params + kept + paging)

    links = [("self", at(query.offset)), ("first", at(0))]
    if more:
        links.append(("next", at(query.offset + query.count)))
    if query.offset > 0:
        links.append(("previous", at(max(0, query.offset - query.count))))
    return links


def history(
    request: Request,
    rtype: str | None,
    rid: str | None,
    items: Sequence[HistoryItem],
    more: bool,
    count: int,
    offset: int,
    upto: int,
) -> bytes:
    """A history Bundle: a DELETE entry for what a release stopped serving, POST or PUT for a
    version; links that page through the same releases."""
    base = base_url(request)
    entries = []
    for item in items:
        at = instant(item.at)
        url = f"{item.type}/{item.id}"
        if item.version is None:
            extra: dict[str, Any] = {
                "request": {"method": "DELETE", "url": url},
                "response": {"status": "410", "lastModified": at},
            }
            entries.append(entry(f"{base}/{url}", None, extra))
        else:
            v = item.version
            extra = {
                "request": {"method": "POST" if v.version == 1 else "PUT", "url": url},
                "response": {
                    "status": "201" if v.version == 1 else "200",
                    "etag": f'W/"{v.version}"',
                    "lastModified": at,
                },
            }
            entries.append(entry(f"{base}/{url}", v.body(), extra))
    params = request.query_params
    path = "/".join(p for p in (base, rtype, rid, "_history") if p)
    kept = [(k, v) for k, v in params.multi_items() if k in ("_since", "_format", "_pretty")]

    def at_offset(n: int, cursor: str | None = None) -> str:
        """A page link: `_offset` says where it is; `_cursor` (next links) lets it be read from
        the index instead of skipping `_offset` items, so paging through a whole release costs
        the same per page."""
        pairs = [("_count", str(count)), ("_offset", str(n))]
        if cursor is not None:
            pairs.append(("_cursor", cursor))
        return path + "?" + query_string(kept + pairs + [("_snapshot", str(upto))])

    links = [("self", at_offset(offset, params.get("_cursor")))]
    if more:
        links.append(("next", at_offset(offset + count, items[-1].cursor)))
    if offset > 0:
        links.append(("previous", at_offset(max(0, offset - count))))
    return bundle("history", entries, links)
