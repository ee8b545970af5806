"""HTTP as proxies and browsers expect it (server/conventions.py), against a live uvicorn server.

Each convention is asked of both ways an answer is made: the fast path (fastpath.py: a plain JSON
read by id, a search the cache has seen) and the framework (a read with `_format=xml` or
`_elements`, a search with GRUNNDATA_SEARCH_CACHE_MB=0). The store holds the real FEST extract and
the restricted lines of test_access.py (a hospital pharmacy's sector data, two vendors'
supplementary data), so national and restricted answers can be told apart.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import brotli
import httpx
import orjson
import pytest
from sqlalchemy.engine import Engine

from grunndata.server import create_app
from grunndata.server.conventions import PREPARED, Compression, chosen_coding
from grunndata.settings import Settings
from grunndata.store.releases import ReleaseBuilder
from grunndata.store.searchparams import index_rows
from tests.server.conftest import CERTICAN_BRAND, served_store
from tests.server.live import running
from tests.server.test_access import SECTOR_OWNER, UNIT_DOSE, _publish
from tests.server.tokens import Issuer

SECTOR = "grunndata:sector.read"
BRAND = f"/fhir/MedicinalProductDefinition/{CERTICAN_BRAND}"
UNIT_DOSE_READ = f"/fhir/PackagedProductDefinition/{UNIT_DOSE['id']}"
# a search of about 60 KB: the Certican brand's packages, with what they include
SEARCH = f"/fhir/PackagedProductDefinition?package-for={CERTICAN_BRAND}&_count=50"
BIG_SEARCH = "/fhir/MedicinalProductDefinition?_count=200"  # about 500 KB
ORIGIN = "https://epj.example"
# the two ways of answering, for each kind of request
READS = {"fast": BRAND, "framework": BRAND + "?_pretty=true"}


@dataclass(frozen=True)
class Servers:
    cached: str  # the defaults (the search cache on, CORS for any origin), but no max-age
    uncached: str  # GRUNNDATA_SEARCH_CACHE_MB=0, a max-age, CORS for ORIGIN only, compress nothing
    issuer: Issuer
    engine: Engine

    def of(self, way: str) -> str:
        return self.cached if way == "fast" else self.uncached


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    engine = served_store(f"sqlite:///{tmp_path_factory.mktemp('http') / 'store.db'}")
    _publish(engine)
    issuer = Issuer(tmp_path_factory.mktemp("keys"))
    plain = Settings.load({"GRUNNDATA_SNAPSHOT_SECONDS": "0"})
    other = Settings.load(
        {
            "GRUNNDATA_SNAPSHOT_SECONDS": "0",
            "GRUNNDATA_SEARCH_CACHE_MB": "0",
            "GRUNNDATA_CACHE_MAX_AGE": "60",
            "GRUNNDATA_CORS_ORIGINS": ORIGIN,
            "GRUNNDATA_COMPRESS_MIN_BYTES": str(10**9),
        }
    )
    try:
        with (
            running(create_app(engine, issuer.authenticator(), warm=False, settings=plain)) as cached,
            running(create_app(engine, issuer.authenticator(), warm=False, settings=other)) as uncached,
        ):
            yield Servers(cached, uncached, issuer, engine)
    finally:
        engine.dispose()


def _get(url: str, **headers: str) -> httpx.Response:
    return httpx.get(url, headers={"Accept-Encoding": "identity", **headers}, timeout=30)


def _vary(response: httpx.Response) -> set[str]:
    return {v.strip().lower() for v in response.headers.get("vary", "").split(",") if v.strip()}


# -- CORS -----------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [BRAND, "/fhir/MedicinalProductDefinition/_search", SEARCH, "/fest/m30"])
def test_a_preflight_is_answered_for_any_origin_with_the_headers_a_fhir_client_sends(
    servers: Servers, path: str
) -> None:
    # /_search is a 405 for every method but POST (routes/fhir.py `first`): the preflight never gets there
    asked = "authorization, dpop, prefer, if-none-match, if-modified-since, content-type"
    r = httpx.options(
        servers.cached + path,
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "POST" if path.endswith("_search") else "GET",
            "Access-Control-Request-Headers": asked,
        },
    )
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in r.headers
    allowed = {h.strip().lower() for h in r.headers["access-control-allow-headers"].split(",")}
    assert set(asked.split(", ")) <= allowed
    assert {"GET", "HEAD", "POST"} <= {
        m.strip() for m in r.headers["access-control-allow-methods"].split(",")
    }
    assert r.headers["access-control-max-age"] == "600"


def test_a_plain_options_without_origin_is_still_a_405(servers: Servers) -> None:
    r = httpx.options(servers.cached + BRAND)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"


@pytest.mark.parametrize("way", ["fast", "framework"])
def test_a_simple_request_may_be_read_by_any_origin_with_its_etag(servers: Servers, way: str) -> None:
    r = _get(servers.cached + READS[way], Origin=ORIGIN)
    assert r.status_code == 200
    assert r.headers["access-control-allow-origin"] == "*"
    exposed = {h.strip().lower() for h in r.headers["access-control-expose-headers"].split(",")}
    assert {"etag", "location", "content-location", "x-request-id", "www-authenticate"} <= exposed
    # even "*" varies by Origin: an answer to a request without one has no CORS headers, and a
    # cache that kept it must not give it to a browser
    assert "origin" in _vary(r)
    assert "origin" in _vary(_get(servers.cached + READS[way]))


@pytest.mark.parametrize("way", ["fast", "framework"])
def test_configured_origins_are_echoed_with_vary_origin_and_others_get_nothing(
    servers: Servers, way: str
) -> None:
    path = READS[way]
    mine = _get(servers.uncached + path, Origin=ORIGIN)
    assert mine.headers["access-control-allow-origin"] == ORIGIN
    assert "origin" in _vary(mine)
    theirs = _get(servers.uncached + path, Origin="https://evil.example")
    assert theirs.status_code == 200  # the answer is the same: only the browser hides it
    assert "access-control-allow-origin" not in theirs.headers
    refused = httpx.options(
        servers.uncached + path,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert refused.status_code == 400


# -- Vary and Cache-Control -----------------------------------------------------------------


@pytest.mark.parametrize("way", ["fast", "framework"])
def test_a_national_read_is_public_revalidated_and_varies_by_accept_only(servers: Servers, way: str) -> None:
    r = _get(servers.cached + READS[way])
    assert r.headers["cache-control"] == "public, no-cache"
    assert _vary(r) == {"accept", "accept-encoding", "origin"}  # the same for every client: not Authorization
    with_token = _get(servers.cached + READS[way], **servers.issuer.headers(SECTOR))
    assert with_token.headers["cache-control"] == "public, no-cache"
    # the operator's max-age (the other server also compresses nothing: no Accept-Encoding)
    aged = _get(servers.uncached + READS[way])
    assert aged.headers["cache-control"] == "public, max-age=60"
    assert _vary(aged) == {"accept", "origin"}


@pytest.mark.parametrize("way", ["fast", "framework"])
def test_a_restricted_read_is_private(servers: Servers, way: str) -> None:
    path = UNIT_DOSE_READ + ("" if way == "fast" else "?_format=xml")
    r = _get(servers.cached + path, **servers.issuer.headers(SECTOR))
    assert r.status_code == 200
    assert r.headers["cache-control"] == "private, no-cache"
    assert {"accept", "authorization"} <= _vary(r)
    anonymous = _get(servers.cached + path)
    assert anonymous.status_code == 404
    assert anonymous.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("server", ["cached", "uncached"])
def test_a_search_is_public_to_a_national_client_and_private_to_a_sector_client(
    servers: Servers, server: str
) -> None:
    base = getattr(servers, server)
    for _ in range(2):  # the second from the search cache, where there is one
        anonymous = _get(base + SEARCH)
        no_scope = _get(base + SEARCH, **servers.issuer.headers())  # a token granting nothing more
        sector = _get(base + SEARCH, **servers.issuer.headers(SECTOR))
        fresh = "public, no-cache" if server == "cached" else "public, max-age=60"
        assert anonymous.headers["cache-control"] == fresh
        assert no_scope.headers["cache-control"] == fresh
        assert sector.headers["cache-control"] == "private, no-cache"
        for r in (anonymous, no_scope, sector):
            assert {"accept", "authorization"} <= _vary(r)  # other clients get other answers
    # the sector client's answer holds the hospital's unit-dose package; the others' do not
    ids = [e["resource"]["id"] for e in orjson.loads(sector.content)["entry"]]
    assert UNIT_DOSE["id"] in ids
    assert UNIT_DOSE["id"] not in [e["resource"]["id"] for e in orjson.loads(anonymous.content)["entry"]]


@pytest.mark.parametrize("server", ["cached", "uncached"])
def test_a_scope_that_reads_no_release_served_now_leaves_searches_public(
    servers: Servers, server: str
) -> None:
    """Vendor A's token reads vendor A's release: its searches may hold that data (private).
    Vendor C has no release: its token reads what anyone reads, so its answers are public
    (though they still vary by Authorization: vendor A's differ)."""
    base = getattr(servers, server)
    fresh = "public, no-cache" if server == "cached" else "public, max-age=60"
    vendor_a = _get(base + SEARCH, **servers.issuer.headers("grunndata:supplementary.read:vendor-a"))
    vendor_c = _get(base + SEARCH, **servers.issuer.headers("grunndata:supplementary.read:vendor-c"))
    assert vendor_a.headers["cache-control"] == "private, no-cache"
    assert vendor_c.headers["cache-control"] == fresh
    assert "authorization" in _vary(vendor_c)
    # a paging link's own _snapshot is not compared: private to a client with a scope
    paged = _get(
        base + SEARCH + "&_snapshot=1", **servers.issuer.headers("grunndata:supplementary.read:vendor-c")
    )
    assert paged.status_code == 200
    assert paged.headers["cache-control"] == "private, no-cache"


@pytest.mark.parametrize("way", ["fast", "framework"])
def test_errors_are_never_stored(servers: Servers, way: str) -> None:
    path = "/fhir/MedicinalProductDefinition/no-such-id" + ("" if way == "fast" else "?_format=xml")
    r = _get(servers.cached + path)
    assert r.status_code == 404
    assert r.headers["cache-control"] == "no-store"
    bad = _get(servers.cached + "/fhir/MedicinalProductDefinition?nonsense=1", Prefer="handling=strict")
    assert bad.status_code == 400
    assert bad.headers["cache-control"] == "no-store"
    unauthorised = _get(servers.cached + READS[way], Authorization="Bearer not-a-token")
    assert unauthorised.status_code == 401
    assert unauthorised.headers["cache-control"] == "no-store"


# -- ETag and 304 on searches ---------------------------------------------------------------


@pytest.mark.parametrize("server", ["cached", "uncached"])
def test_a_search_has_a_weak_etag_and_answers_304_to_it(servers: Servers, server: str) -> None:
    base = getattr(servers, server)
    first = _get(base + SEARCH)
    etag = first.headers["etag"]
    assert etag.startswith('W/"s')
    again = _get(base + SEARCH)
    assert again.headers["etag"] == etag  # the same releases, the same question
    assert orjson.loads(again.content)["entry"] == orjson.loads(first.content)["entry"]
    unchanged = _get(base + SEARCH, **{"If-None-Match": etag})
    assert unchanged.status_code == 304
    assert unchanged.content == b""
    assert unchanged.headers["etag"] == etag
    assert unchanged.headers["cache-control"] == first.headers["cache-control"]
    # RFC 9110 15.4.5: the 304 says the Vary its 200 would have (a cache updates its copy from it)
    assert _vary(unchanged) >= _vary(first) | {"accept", "authorization", "accept-encoding"}
    strong = _get(base + SEARCH, **{"If-None-Match": etag.removeprefix("W/")})  # weak comparison
    assert strong.status_code == 304
    other = _get(base + SEARCH, **{"If-None-Match": 'W/"s0000"'})
    assert other.status_code == 200
    assert other.headers["etag"] == etag
    xml = _get(base + SEARCH, Accept="application/fhir+xml")
    assert xml.headers["etag"] != etag  # another representation, another tag
    assert _get(base + SEARCH, Accept="application/fhir+xml", **{"If-None-Match": etag}).status_code == 200


def test_a_search_etag_differs_per_entitlement_and_is_no_304_to_another(servers: Servers) -> None:
    anonymous = _get(servers.cached + SEARCH).headers["etag"]
    sector = _get(servers.cached + SEARCH, **servers.issuer.headers(SECTOR)).headers["etag"]
    other_sector_client = _get(servers.cached + SEARCH, **servers.issuer.headers(SECTOR, sub="ward-2"))
    assert sector != anonymous
    assert other_sector_client.headers["etag"] == sector  # the same entitlement sees the same
    assert (
        _get(
            servers.cached + SEARCH, **servers.issuer.headers(SECTOR), **{"If-None-Match": anonymous}
        ).status_code
        == 200
    )
    assert _get(servers.cached + SEARCH, **{"If-None-Match": sector}).status_code == 200


def test_reads_keep_their_version_etag_and_304(servers: Servers) -> None:
    for way in READS:
        r = _get(servers.cached + READS[way])
        assert r.headers["etag"].startswith('W/"')
        again = _get(servers.cached + READS[way], **{"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304
        assert again.headers["cache-control"] == "public, no-cache"
        assert _vary(again) >= _vary(r) | {"accept-encoding"}


# -- HEAD -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [BRAND, READS["framework"], SEARCH, "/fhir/metadata", "/health", "/fhir/MedicinalProductDefinition/x"],
)
@pytest.mark.parametrize("server", ["cached", "uncached"])
def test_head_has_the_gets_headers_and_no_body(servers: Servers, server: str, path: str) -> None:
    base = getattr(servers, server)
    for encoding in ("identity", "gzip"):
        get = httpx.get(base + path, headers={"Accept-Encoding": encoding})
        head = httpx.head(base + path, headers={"Accept-Encoding": encoding})
        assert head.status_code == get.status_code
        assert head.content == b""
        same = ("content-type", "content-length", "content-encoding", "etag", "cache-control", "vary")
        assert {h: head.headers.get(h) for h in same} == {h: get.headers.get(h) for h in same}


def test_head_is_allowed_where_get_is(servers: Servers) -> None:
    r = httpx.delete(servers.cached + BRAND)
    assert r.status_code == 405
    assert r.headers["allow"] == "GET, HEAD"
    post_only = httpx.head(servers.cached + "/fhir/MedicinalProductDefinition/_search")
    assert post_only.status_code == 405
    assert post_only.headers["allow"] == "POST"


# -- compression ----------------------------------------------------------------------------


@pytest.mark.parametrize("way", ["fast", "framework"])
@pytest.mark.parametrize("coding", ["gzip", "br"])
def test_a_big_answer_is_compressed_as_asked_and_a_small_one_is_not(
    servers: Servers, way: str, coding: str
) -> None:
    path = BIG_SEARCH + ("" if way == "fast" else "&_format=json&_pretty=false")
    plain = _get(servers.cached + path)
    for _ in range(2):  # the second from the search cache, on the fast path
        with httpx.stream("GET", servers.cached + path, headers={"Accept-Encoding": coding}) as r:
            raw = b"".join(r.iter_raw())
        assert r.headers["content-encoding"] == coding
        assert int(r.headers["content-length"]) == len(raw)
        assert len(raw) < len(plain.content) / 5
        body = gzip.decompress(raw) if coding == "gzip" else brotli.decompress(raw)
        assert orjson.loads(body)["entry"] == orjson.loads(plain.content)["entry"]
        assert {"accept", "accept-encoding"} <= _vary(r)
    assert "content-encoding" not in plain.headers
    assert "accept-encoding" in _vary(plain)  # it could have been: a cache must tell them apart
    # below the threshold (1400 bytes): a count-only search
    small = _get(
        servers.cached + "/fhir/MedicinalProductDefinition?_summary=count", **{"Accept-Encoding": coding}
    )
    assert len(small.content) < 1400
    assert "content-encoding" not in small.headers
    assert "accept-encoding" not in _vary(small)
    # the other server's threshold is above any answer
    never = _get(servers.uncached + path, **{"Accept-Encoding": coding})
    assert "content-encoding" not in never.headers
    assert "accept-encoding" not in _vary(never)


def test_a_read_by_id_is_compressed_on_the_fast_path_and_the_framework_alike(servers: Servers) -> None:
    for path in READS.values():
        plain = _get(servers.cached + path)
        zipped = httpx.get(servers.cached + path, headers={"Accept-Encoding": "gzip"})
        if len(plain.content) >= 1400:
            assert zipped.headers["content-encoding"] == "gzip"
        else:
            assert "content-encoding" not in zipped.headers
        assert zipped.content == plain.content  # httpx undoes the gzip


@pytest.mark.parametrize(
    ("accept_encoding", "chosen"),
    [
        (None, None),
        ("", None),
        ("gzip", "gzip"),
        ("gzip, deflate, br, zstd", "br"),  # a browser's: brotli wins the tie
        ("br;q=0.5, gzip", "gzip"),
        ("gzip;q=0, br;q=0", None),
        ("GZIP;Q=0.8", "gzip"),
        ("*", "br"),
        ("*;q=0.1, br;q=0", "gzip"),
        ("identity", None),
        ("gzip;q=0.2, identity;q=0.9", None),
        ("gzip;q=nonsense", None),
        ("deflate", None),
    ],
)
def test_accept_encoding_q_values(accept_encoding: str | None, chosen: str | None) -> None:
    assert chosen_coding(accept_encoding) == chosen


def test_m30_is_compressed_by_its_route_once(servers: Servers) -> None:
    """/fest/m30 sends its gzip file as it is: never compressed a second time, and brotli-only
    clients get its XML uncompressed rather than a 100 MB answer compressed on the fly."""
    with httpx.stream(
        "GET", servers.cached + "/fest/m30", headers={"Accept-Encoding": "gzip"}, timeout=120
    ) as r:
        start = next(r.iter_raw())
    assert r.status_code == 200
    assert r.headers["content-encoding"] == "gzip"
    assert start[:2] == b"\x1f\x8b"  # one gzip header: the file's own
    with httpx.stream(
        "GET", servers.cached + "/fest/m30", headers={"Accept-Encoding": "br"}, timeout=120
    ) as r:
        first = next(r.iter_raw())
    assert "content-encoding" not in r.headers
    assert first.lstrip().startswith(b"<?xml")


# -- _format with its "+" as a space --------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "media"),
    [
        ("application/fhir+xml", "application/fhir+xml"),
        ("application/fhir+json", "application/fhir+json"),
        ("application/fhir%2Bxml", "application/fhir+xml"),
        ("application/fhir%20json", "application/fhir+json"),
    ],
)
@pytest.mark.parametrize("path", [BRAND, SEARCH])
def test_format_with_its_plus_unencoded_is_understood(
    servers: Servers, fmt: str, media: str, path: str
) -> None:
    joined = "&" if "?" in path else "?"
    r = _get(servers.cached + path + joined + "_format=" + fmt)  # "+" goes as it is: a space to the server
    assert r.status_code == 200
    assert r.headers["content-type"] == media + "; charset=utf-8"
    if media.endswith("xml"):
        assert r.content.startswith(b"<")
    else:
        assert orjson.loads(r.content)["resourceType"] in ("MedicinalProductDefinition", "Bundle")


# -- last: a new release ----------------------------------------------------------------------


def test_a_new_release_changes_the_search_etag_of_those_who_can_read_it(servers: Servers) -> None:
    """A second sector release: the sector client's answer may have changed, so its tag does;
    a client without the scope reads the same releases as before, and keeps its tag (and 304)."""
    anonymous = _get(servers.cached + SEARCH)
    sector = _get(servers.cached + SEARCH, **servers.issuer.headers(SECTOR))
    extra = {**UNIT_DOSE, "id": "sector-unit-dose-2", "name": "Certican 0,25 mg unit dose"}
    with ReleaseBuilder(servers.engine, "sector", "full", "sector", SECTOR_OWNER, SECTOR_OWNER) as builder:
        body = orjson.dumps(extra)
        builder.put(
            "PackagedProductDefinition",
            extra["id"],
            body,
            hashlib.sha256(body).hexdigest(),
            fhir_index=index_rows(extra),
        )
        builder.finish(None, {})
    # the server takes the new snapshot once its terminology indexes are made, in a thread
    deadline = time.monotonic() + 30
    while True:
        after = _get(
            servers.cached + SEARCH,
            **servers.issuer.headers(SECTOR),
            **{"If-None-Match": sector.headers["etag"]},
        )
        if after.status_code != 304 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert after.status_code == 200
    assert after.headers["etag"] != sector.headers["etag"]
    assert "sector-unit-dose-2" in [e["resource"]["id"] for e in orjson.loads(after.content)["entry"]]
    still = _get(servers.cached + SEARCH, **{"If-None-Match": anonymous.headers["etag"]})
    assert still.status_code == 304


# -- the compressed forms the fast path's bodies keep -----------------------------------------


def _asgi_answer(body: bytes, prepared: bool) -> Any:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        scope[PREPARED] = prepared
        headers = [(b"content-type", b"application/fhir+json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _through(layer: Compression) -> bytes:
    scope = {"type": "http", "path": "/fhir/x/y", "headers": [(b"accept-encoding", b"gzip")]}
    sent: list[dict[str, Any]] = []

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(layer(scope, None, send))
    assert (b"content-encoding", b"gzip") in sent[0]["headers"]
    body: bytes = sent[1]["body"]
    return body


def test_a_prepared_bodys_gzip_is_made_once_and_the_kept_forms_are_bounded() -> None:
    bodies = [orjson.dumps({"resourceType": "Basic", "id": str(n), "text": "x" * 3000}) for n in range(20)]
    kept = Compression(_asgi_answer(bodies[0], prepared=True), minimum=1400, kept_bytes=16 * 3200)
    first = _through(kept)
    assert gzip.decompress(first) == bodies[0]
    assert _through(kept) is first  # kept: not compressed again
    fresh = Compression(_asgi_answer(bodies[0], prepared=False), minimum=1400)
    assert _through(fresh) is not _through(fresh)  # a body made per request: never kept
    assert fresh._kept == {}
    for body in bodies:  # each ~3.1 KB with its gzip: the bound (51,200 bytes) holds 16, the oldest go
        kept.app = _asgi_answer(body, prepared=True)
        _through(kept)
    assert [b for _, b in kept._kept] == bodies[4:]
    assert kept._kept_size == sum(len(b) + len(z) for (_, b), z in kept._kept.items()) <= 16 * 3200
