"""A clinician's first search by varenr, ATC or a typed name is answered from the served snapshot's
in-memory index (server/fastsearch.py) with the very bytes the search route gives: status,
headers, links, paging, totals, entries and their order; restricted data only to the entitled; a
new release's ids found and an expired one's not, as soon as the release is served."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import select
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.sample import generate_delivery
from grunndata.server import create_app, fastpath, state
from grunndata.server.auth import ANONYMOUS
from grunndata.server.fastsearch import SearchIndexes
from grunndata.settings import Settings
from grunndata.store import FAST_PARAMS, Snapshot, connect, current_snapshot
from grunndata.store.models import M, R, X
from tests.conftest import REAL_FEST, fresh_pg_database, require
from tests.server.conftest import (
    ATC,
    CERTICAN_PACKAGE,
    VARENR,
    publish,
    served_store,
    write_followup,
)
from tests.server.test_operations import metric
from tests.server.tokens import Issuer

PPD, MPD, SD = "PackagedProductDefinition", "MedicinalProductDefinition", "SubstanceDefinition"
ANSWERED = "grunndata_search_index_answers_total"
NO_CACHE = Settings.load({"GRUNNDATA_SEARCH_CACHE_MB": "0"})  # every search a first-time one
SECTOR = ("grunndata:sector.read",)
# the hospital pharmacy's own brand and package, findable by name and varenr: sector clients only
SECTOR_BRAND = {
    "resourceType": MPD,
    "id": "sector-brand-1",
    "identifier": [{"system": VARENR, "value": "999001"}],
    "name": [{"productName": "Certican søvn-dosett (sykehusapotek)"}],
}
SECTOR_PACKAGE = {
    "resourceType": PPD,
    "id": "sector-package-1",
    "identifier": [{"system": VARENR, "value": "999002"}],
    "name": "Certican dosett",
}
# national names that tell the Norwegian letters apart: ø is a letter, é is an accented e
LETTERS = [
    {"resourceType": MPD, "id": "letters-1", "name": [{"productName": "Søvnmix tabletter"}]},
    {"resourceType": MPD, "id": "letters-2", "name": [{"productName": "Sovnex Crème"}]},
    {"resourceType": MPD, "id": "letters-3", "name": [{"productName": "ℌelix 50% _mikstur"}]},
]


def _settled(client: TestClient) -> SearchIndexes:
    """The app's index of the snapshot served now, built (a search would start it; tests wait)."""
    app: Any = client.app
    indexes: SearchIndexes = app.state.search_indexes
    indexes.future(app.state.served.snapshot(ANONYMOUS)).result(timeout=120)
    return indexes


@contextmanager
def _route_only() -> Iterator[None]:
    """Every search through the route: the general path to compare with."""

    async def nothing(*_: Any) -> None:
        return None

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastpath, "answer", nothing)
        yield


@contextmanager
def _counting() -> Iterator[list[str]]:
    """The query strings the index answered, while in the block."""
    answered: list[str] = []
    real = fastpath.answer

    async def spy(scope: dict[str, Any], *rest: Any) -> Any:
        found = await real(scope, *rest)
        if found is not None:
            answered.append(scope["query_string"].decode())
        return found

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastpath, "answer", spy)
        yield answered


_NOW = re.compile(rb'(lastUpdated(?:": ?"| value="))[^"]+')  # the first: the Bundle's, JSON or XML
_PER_REQUEST = {"x-request-id", "date"}


def _same(fast: Response, route: Response, path: str) -> None:
    """The same answer: status, every header but the per-request ones, and the body bytes but for
    the Bundle's moment of answering (Bundle.meta.lastUpdated)."""
    assert fast.status_code == route.status_code, path
    heads = [(k, v) for k, v in fast.headers.multi_items() if k not in _PER_REQUEST]
    assert heads == [(k, v) for k, v in route.headers.multi_items() if k not in _PER_REQUEST], path
    assert _NOW.sub(rb"\1-", fast.content, 1) == _NOW.sub(rb"\1-", route.content, 1), path


def compare(client: TestClient, paths: list[str], headers: dict[str, str] | None = None) -> list[str]:
    """Ask each path through the fast path and through the route; assert the answers are the
    same; return the query strings the index answered."""
    _settled(client)
    headers = {**(headers or {}), "Accept-Encoding": "identity"}  # brotli's length varies with the time
    with _counting() as answered:
        fast = [client.get(p, headers=headers) for p in paths]
    with _route_only():
        route = [client.get(p, headers=headers) for p in paths]
    for f, r, p in zip(fast, route, paths, strict=True):
        _same(f, r, p)
    return answered


def _q(value: str) -> str:
    return quote(value, safe="")


def _values(engine: Engine, param: str, system: str | None = None, column: Any = X.c.value) -> list[str]:
    with engine.connect() as conn:
        releases = current_snapshot(conn).releases
        query = (
            select(column)
            .select_from(X.join(M, M.c.resource_pk == X.c.resource_pk))
            .where(X.c.param == param, M.c.release_id.in_(releases))
            .distinct()
        )
        if system is not None:
            query = query.where(X.c.system == system)
        return sorted(str(v) for (v,) in conn.execute(query) if v)


def queries(engine: Engine) -> tuple[list[str], list[str]]:
    """(searches the index answers, searches of nearby shapes the route answers), drawn from what
    the store serves: varenr, FEST ids, ATC codes and name fragments, with paging and shaping."""
    varenr = _values(engine, f"{PPD}.identifier", VARENR)
    atc = _values(engine, f"{MPD}.product-classification", ATC)
    names = _values(engine, f"{MPD}.name")
    substances = _values(engine, f"{SD}.name")
    fest_ids = _values(engine, f"{MPD}.identifier")
    pick = lambda values, n: values[:: max(1, len(values) // n)][:n]  # noqa: E731
    words = sorted({w for n in names for w in n.split() if len(w) >= 4 and w.isalpha()})
    fast = [f"/fhir/{PPD}?identifier={_q(VARENR + '|' + v)}" for v in pick(varenr, 12)]
    fast += [f"/fhir/{PPD}?identifier={v}" for v in pick(varenr, 4)]  # no system: every form of it
    fast += [f"/fhir/{MPD}?identifier={_q(v)}" for v in pick(fest_ids, 4)]
    fast += [f"/fhir/{MPD}?product-classification={_q(ATC + '|' + c)}" for c in pick(atc, 8)]
    fast += [f"/fhir/{MPD}?name:contains={_q(w[1:5])}" for w in pick(words, 12)]
    fast += [f"/fhir/{MPD}?name={_q(w[:3])}" for w in pick(words, 8)]  # by prefix
    fast += [f"/fhir/{SD}?name:contains={_q(s[2:6])}" for s in pick(substances, 4)]
    two = ",".join(pick(varenr, 2))
    fast += [
        f"/fhir/{PPD}?identifier={two}",  # either
        f"/fhir/{PPD}?identifier={_q(VARENR + '|')}&_count=7",  # every varenr: pages
        f"/fhir/{PPD}?identifier={_q(VARENR + '|')}&_count=7&_offset=14",
        f"/fhir/{PPD}?identifier={_q(VARENR + '|')}&_count=7&_offset=100000",  # past the end
        f"/fhir/{MPD}?name:contains=a&_count=3",
        f"/fhir/{MPD}?name:contains=a&_count=3&_total=accurate",
        f"/fhir/{MPD}?name:contains=a&_count=3&_offset=5",  # the first 9 matches found are enough
        f"/fhir/{MPD}?name=c&_count=4&_offset=2",
        f"/fhir/{MPD}?name:contains=a&_summary=count",
        f"/fhir/{MPD}?name:contains=a&_count=0",
        f"/fhir/{MPD}?name:contains=e&_count=2&_elements=name",
        f"/fhir/{MPD}?name:contains=e&_count=2&_summary=true",
        f"/fhir/{MPD}?name:contains=e&_count=2&_format=json",
        f"/fhir/{MPD}?name:contains=e&_count=2&_format=application/fhir%2Bjson",
        f"/fhir/{MPD}?name:contains=CERT",  # case is ignored
        f"/fhir/{MPD}?name:contains=xyzzyq",  # no match
        f"/fhir/{MPD}?name=xyzzyq&_total=accurate",
        f"/fhir/{PPD}?identifier={_q(VARENR + '|000000')}",
        f"/fhir/{PPD}?identifier=http://example.org/x|{pick(varenr, 1)[0]}",  # another system
        f"/fhir/{MPD}?name:contains=tab&product-classification={_q(ATC + '|' + atc[0])}",  # both
        f"/fhir/{MPD}?name:contains=a&unknown=1&_count=2",  # ignored, said in the Bundle
        f"/fhir/{MPD}?name:contains=%25",  # a literal %: matched, not a wildcard
        f"/fhir/{MPD}?name:contains=_",
        f"/fhir/{PPD}?identifier={_q('|')}",
    ]
    route = [
        f"/fhir/{MPD}?name:contains=a&_count=3&_sort=name",
        f"/fhir/{MPD}?name:contains=a&_include={MPD}:ingredient",
        f"/fhir/{MPD}?name:exact={_q(names[0])}",
        f"/fhir/{MPD}?name:contains=",  # 400
        f"/fhir/{MPD}?name:contains=a&_count=-1",  # 400
        f"/fhir/{MPD}?name:contains=a&_format=xml",
        f"/fhir/{MPD}?name:contains=a&_pretty=true",
        f"/fhir/{MPD}?name:contains=a&%5Fformat=xml",  # an encoded name is the same parameter
        f"/fhir/{MPD}?name:contains=a&_format=application/fhir%2Bjson;fhirVersion=4.0",  # 406
        f"/fhir/{PPD}?identifier:not={_q(VARENR + '|' + varenr[0])}&_count=2",
        f"/fhir/{PPD}?name:contains=tab",  # a parameter not held in memory
        f"/fhir/{MPD}",
    ]
    return fast, route


# -- the real extract, both stores ------------------------------------------------------------------


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def real(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, issuer: Issuer
) -> Iterator[tuple[Engine, TestClient]]:
    """The real extract, a hospital pharmacy's sector brand and package, and national names with
    Norwegian letters; search cache off."""

    def serve(url: str) -> Iterator[tuple[Engine, TestClient]]:
        engine = served_store(url)
        publish(
            engine,
            [
                ("sector", "sykehusapotek-vest", SECTOR_BRAND),
                ("sector", "sykehusapotek-vest", SECTOR_PACKAGE),
            ],
        )
        publish(engine, [("national", "letters", r) for r in LETTERS])
        app = create_app(engine, issuer.authenticator(), warm=False, settings=NO_CACHE)
        with TestClient(app) as client:
            yield engine, client
        engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp_path_factory.mktemp('index') / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


def test_first_time_searches_are_the_route_s_answers_byte_for_byte(real: tuple[Engine, TestClient]) -> None:
    engine, client = real
    fast, route = queries(engine)
    answered = compare(client, fast + route)
    assert sorted(answered) == sorted(p.partition("?")[2] for p in fast)  # the index took these, only


def test_paging_links_of_the_index_s_answer_are_followed_by_the_route(
    real: tuple[Engine, TestClient],
) -> None:
    _, client = real
    _settled(client)
    url = f"/fhir/{PPD}?identifier={_q(VARENR + '|')}&_count=40"
    seen: list[str] = []
    pages = 0
    while url:
        bundle = client.get(url).json()
        seen += [e["resource"]["id"] for e in bundle["entry"]]
        nxt = [link["url"] for link in bundle["link"] if link["relation"] == "next"]
        url = nxt[0].removeprefix("http://testserver") if nxt else ""
        pages += 1
    assert pages == 3  # the extract's 107 packages with a varenr, 40 a page; the next links name _snapshot
    assert len(seen) == len(set(seen)) == 107
    assert seen == sorted(seen)


def test_norwegian_letters_are_letters_and_accents_are_folded(real: tuple[Engine, TestClient]) -> None:
    engine, client = real
    _settled(client)

    def ids(text: str) -> list[str]:
        found = client.get(f"/fhir/{MPD}?name:contains={_q(text)}").json()
        return [e["resource"]["id"] for e in found.get("entry", [])]

    before = client.get("/metrics").text
    with _counting() as answered:
        assert ids("søvn") == ["letters-1"]  # not Sovnex: ø is not o
        assert ids("sovn") == ["letters-2"]
        assert ids("creme") == ["letters-2"]  # é is an accented e
        assert ids("crème") == ["letters-2"]
        # ℌ is indexed as an H (NFKD), and SQLite's LIKE ignores its case where PostgreSQL's does not:
        # the index answers as the store it was built from
        assert ids("helix") == (["letters-3"] if engine.dialect.name == "sqlite" else [])
        assert ids("ELIX") == ["letters-3"]
        assert ids("50% _m") == ["letters-3"]  # % and _ are characters, not wildcards
        assert ids("50%m") == []
    assert len(answered) == 8
    assert (
        metric(client.get("/metrics").text, ANSWERED, result="index")
        - metric(before, ANSWERED, result="index")
        == 8
    )


def test_restricted_data_reaches_the_entitled_alone(real: tuple[Engine, TestClient], issuer: Issuer) -> None:
    """A sector client's search is the route's (it reads more than the index holds); a client
    without the scope gets the national answer from the index, which never holds sector data."""
    _, client = real
    paths = [
        f"/fhir/{MPD}?name:contains=certican",
        f"/fhir/{MPD}?name:contains={_q('søvn')}",
        f"/fhir/{PPD}?identifier={_q(VARENR + '|999002')}",
        f"/fhir/{MPD}?identifier={_q(VARENR + '|999001')}",
    ]
    for path in paths:
        assert "sector-" not in client.get(path).text
        assert "sector-" in client.get(path, headers=issuer.headers(*SECTOR)).text
    assert len(compare(client, paths, issuer.headers(*SECTOR))) == 0
    assert len(compare(client, paths)) == len(paths)
    assert len(compare(client, paths, issuer.headers("grunndata:supplementary.read:someone-else"))) == len(
        paths
    )


def test_a_page_s_versions_are_read_once_then_kept_for_reads_and_searches(
    real: tuple[Engine, TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index's answers take their versions from the read cache, which reads share (bodies by
    version, never an answer): the store is asked for a version once while a snapshot is served,
    by a search or a read, and not for what an older snapshot's search read."""
    engine = real[0]
    asked: list[list[int]] = []
    by_pk = state.versions_by_pk

    def spy(engine: Engine, pks: list[int]) -> Any:
        asked.append(list(pks))
        return by_pk(engine, pks)

    monkeypatch.setattr(state, "versions_by_pk", spy)
    app: Any = create_app(engine, warm=False, settings=NO_CACHE)
    with TestClient(app) as client:
        _settled(client)
        atc = _values(engine, f"{MPD}.product-classification", ATC)
        by_atc = f"/fhir/{MPD}?product-classification={_q(ATC + '|' + atc[0])}"
        first = client.get(by_atc)
        ids = [e["resource"]["id"] for e in first.json()["entry"]]
        assert len(asked) == 1 and len(asked[0]) == len(ids) > 0  # one query for the page
        before = client.get("/metrics").text
        again = client.get(by_atc)
        for rid in ids:
            assert client.get(f"/fhir/{MPD}/{rid}").json()["id"] == rid
        after = client.get("/metrics").text
        assert len(asked) == 1  # the second search and the reads were answered from memory
        assert _NOW.sub(rb"\1-", again.content, 1) == _NOW.sub(rb"\1-", first.content, 1)
        for result, moved in (("hit", len(ids)), ("miss", 0)):
            lookups = [
                metric(t, "grunndata_cache_lookups_total", cache="read", result=result)
                for t in (before, after)
            ]
            assert lookups[1] - lookups[0] == moved
        # a read first, then a search that finds it: the read's version is the search's
        assert client.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}").status_code == 200
        found = client.get(f"/fhir/{PPD}?identifier={_q(VARENR + '|014884')}").json()
        assert [e["resource"]["id"] for e in found["entry"]] == [CERTICAN_PACKAGE]
        assert len(asked) == 1
        # what was read for a snapshot no longer served is not kept
        served = app.state.served
        with engine.connect() as conn:
            pk, rid = conn.execute(
                select(R.c.pk, R.c.id)
                .select_from(R.join(M, M.c.resource_pk == R.c.pk))
                .where(R.c.type == MPD, R.c.id.not_in(ids), M.c.release_id.in_(served.snapshot().releases))
                .limit(1)
            ).one()
        stale = Snapshot((*served.snapshot().releases, 10**9))
        assert [p.version.id for p in served.prepared(MPD, [pk], [rid], stale, {})] == [rid]
        assert served.cached(MPD, [pk], [rid]) == {}
        assert [p.version.id for p in served.prepared(MPD, [pk], [rid], served.snapshot(), {})] == [rid]
        assert list(served.cached(MPD, [pk], [rid])) == [pk]
        assert len(asked) == 3


# -- a release switch ---------------------------------------------------------------------------------


def test_a_new_release_is_searched_as_soon_as_it_is_served(engine: Engine, tmp_path: Path) -> None:
    """The follow-up renames the Certican package and drops another: once it is served, the index
    finds the new name and no longer the dropped package's varenr, with no stale answer between."""
    import_fest(engine, require(REAL_FEST))
    followup, dropped = write_followup(tmp_path, "Certican Nyttnavn tab")
    gone = dropped.removeprefix("ID_")
    app: Any = create_app(engine, warm=False, settings=NO_CACHE)
    with TestClient(app) as client:
        indexes = _settled(client)
        before = indexes.current(app.state.served.snapshot(ANONYMOUS))
        package = client.get(f"/fhir/{PPD}/{gone}").json()
        varenr = next(i["value"] for i in package["identifier"] if i["system"] == VARENR)
        by_varenr = f"/fhir/{PPD}?identifier={_q(VARENR + '|' + varenr)}"
        by_name = f"/fhir/{PPD}?name={_q('Certican Nyttnavn tab')}"  # a package's name is a token

        def ids(path: str) -> list[str]:
            return [e["resource"]["id"] for e in client.get(path).json().get("entry", [])]

        with _counting() as answered:
            assert ids(by_varenr) == [gone]
            assert ids(by_name) == []
            import_fest(engine, followup)
            app.state.served.serve_newest()  # as an import through the API does: prepared, then served
            after = indexes.current(app.state.served.snapshot(ANONYMOUS))
            assert before is not None and after is not None and after is not before
            assert ids(by_varenr) == []
            assert ids(by_name) == [CERTICAN_PACKAGE]
        assert len(answered) == 4  # every one from the index, the new release's as soon as served
        compare(client, [by_varenr, by_name])


# -- generated data -----------------------------------------------------------------------------------


@pytest.mark.parametrize("store", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_generated_delivery_searches_are_the_route_s_answers(store: str, tmp_path: Path) -> None:
    delivery = tmp_path / "fest.xml.gz"
    generate_delivery(delivery, scale=0.02, seed=5)

    def check(url: str) -> None:
        engine = connect(url)
        import_fest(engine, delivery)
        with TestClient(create_app(engine, warm=False, settings=NO_CACHE)) as client:
            fast, route = queries(engine)
            assert sorted(compare(client, fast + route)) == sorted(p.partition("?")[2] for p in fast)
        engine.dispose()

    if store == "sqlite":
        check(f"sqlite:///{tmp_path / 'store.db'}")
        return
    with fresh_pg_database() as url:
        check(url)


def test_the_index_holds_token_and_string_parameters_only() -> None:
    from grunndata.store.memsearch import _param_type

    assert {_param_type(p) for p in FAST_PARAMS} == {"token", "string"}
    with pytest.raises(ValueError, match="no indexed token or string parameter"):
        _param_type(f"{PPD}.package-for")


def test_with_the_index_off_the_route_answers_every_search(tmp_path: Path) -> None:
    engine = served_store(f"sqlite:///{tmp_path / 'store.db'}")
    off = Settings.load({"GRUNNDATA_SEARCH_CACHE_MB": "0", "GRUNNDATA_SEARCH_INDEX": "0"})
    app: Any = create_app(engine, warm=False, settings=off)
    with TestClient(app) as client, _counting() as answered:
        before = client.get("/metrics").text
        found = client.get(f"/fhir/{PPD}?identifier={_q(VARENR + '|014884')}").json()
        assert [e["resource"]["id"] for e in found["entry"]] == [CERTICAN_PACKAGE]
        after = client.get("/metrics").text
    assert app.state.search_indexes is None and answered == []
    for result, moved in (("route", 1), ("index", 0)):
        assert metric(after, ANSWERED, result=result) - metric(before, ANSWERED, result=result) == moved
    engine.dispose()


@pytest.mark.parametrize("dialect", ["sqlite", "postgresql"])
def test_names_are_found_as_a_scan_of_every_name_finds_them(dialect: str) -> None:
    """A prefix by bisection and a `:contains` by trigrams find what looking at every value finds:
    short and long texts, texts no value holds, values shorter than a trigram, several values of
    one version, Norwegian letters, and the first `enough` matches of a page without a total."""
    import random

    from grunndata.store.memsearch import SearchIndex, _strings, _Type
    from grunndata.store.search import Clause
    from grunndata.store.searchparams import lookup, normalise

    rng = random.Random(7)
    letters = "abcdeløøæå tx%_-"
    names = [normalise("".join(rng.choice(letters) for _ in range(rng.randint(1, 14)))) for _ in range(600)]
    names += ["søvnmix tabletter", "sovnex creme", "ab", "a", "tab", "tabtab", "Certican"]
    fold = dialect == "sqlite"
    rows = [("", name, 1000 + i // 2) for i, name in enumerate(names) if name]  # two names a version
    position = {pk: pk - 1000 for _, _, pk in rows}
    index = _strings(MPD, "name", rows, position, fold)
    param = lookup(MPD, "name")
    assert param is not None
    t = _Type(pks=sorted(position), ids=[str(pk) for pk in sorted(position)])
    built = SearchIndex(Snapshot((1,)), dialect, {MPD: t}, {f"{MPD}.name": index})
    lower = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")  # SQLite's LIKE

    def folded(text: str) -> str:
        return text.translate(lower) if fold else text

    held = [(folded(name), pk - 1000) for _, name, pk in rows]
    texts = ["a", "ø", "ab", "tab", "søvn", "sovn", "zzz", "ta%", "x_", "CERT", "ert", "abcde", "l-ø"]
    texts += [
        n[s : s + k]
        for n in rng.sample(names, 60)
        for s, k in [(rng.randint(0, 3), rng.randint(1, 6))]
        if n[s : s + k].strip()
    ]
    for text in texts:
        wanted = folded(normalise(text))
        for contains in (True, False):
            scanned = {
                at for value, at in held if (wanted in value if contains else value.startswith(wanted))
            }
            assert built._string(index, contains, text) == scanned, (text, contains)
            first = built._string(index, contains, text, enough=3)
            assert sorted(first)[:3] == sorted(scanned)[:3], (text, contains)
        clause = Clause(param, "contains", (text,), (), MPD)
        page = built.search(MPD, [clause], 5, 0, with_total=False)
        assert page.ids == [
            str(1000 + at) for at in sorted({at for value, at in held if wanted in value})[:5]
        ]
