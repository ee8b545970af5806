"""No path ever gives restricted-tier data to a client without the scope for it.

The store holds the real FEST extract (national), a hospital pharmacy's sector data and two
vendors' supplementary data, each pointing at the Certican brand and package. Every path that can
answer with data is asked by every kind of client; each restricted resource must appear exactly
where the client is entitled to it and nowhere else. Bad tokens get 401 on every path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.server import create_app
from grunndata.store.searchparams import TIER_SYSTEM
from tests.conftest import fresh_pg_database
from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE, publish, served_store
from tests.server.tokens import DpopKey, Issuer

SECTOR_OWNER, VENDOR_A, VENDOR_B = "sykehusapotek-vest", "vendor-a", "vendor-b"


def _basic(rid: str, note: str) -> dict[str, Any]:
    return {
        "resourceType": "Basic",
        "id": rid,
        "code": {"coding": [{"system": "https://grunndata.no/fhir/CodeSystem/tiered-data", "code": "note"}]},
        "subject": {"reference": f"PackagedProductDefinition/{CERTICAN_PACKAGE}"},
        "extension": [{"url": "https://grunndata.no/fhir/StructureDefinition/note", "valueString": note}],
    }


UNIT_DOSE = {
    "resourceType": "PackagedProductDefinition",
    "id": "sector-unit-dose-1",
    "name": "Certican 0,1 mg unit dose (hospital repack)",
    "packageFor": [{"reference": f"MedicinalProductDefinition/{CERTICAN_BRAND}"}],
}
LEAFLET = {  # an ePI the hospital pharmacy wrote for its ward staff, and the pharmacy as its author
    "resourceType": "Composition",
    "id": "sector-epi-1",
    "status": "final",
    "type": {"coding": [{"system": "http://loinc.org", "code": "60593-1"}]},
    "subject": [{"reference": f"MedicinalProductDefinition/{CERTICAN_BRAND}"}],
    "date": "2025-02-03",
    "author": [{"reference": "Organization/sector-org-1"}],
    "title": "Certican: tilberedning på post",
}
AUTHOR = {"resourceType": "Organization", "id": "sector-org-1", "name": "Sykehusapoteket Vest, produksjon"}
# (tier, owner, resource): the restricted data, each resource id doubling as its marker
RESTRICTED = [
    ("sector", SECTOR_OWNER, UNIT_DOSE),
    ("sector", SECTOR_OWNER, _basic("sector-note-1", "store below 25 C")),
    ("sector", SECTOR_OWNER, LEAFLET),
    ("sector", SECTOR_OWNER, AUTHOR),
    ("supplementary", VENDOR_A, _basic("vendor-a-note-1", "vendor A text")),
    ("supplementary", VENDOR_B, _basic("vendor-b-note-1", "vendor B text")),
]
MARKERS = {r["id"]: (tier, owner) for tier, owner, r in RESTRICTED}


def _publish(engine: Engine) -> None:
    publish(engine, RESTRICTED)


@pytest.fixture(scope="module")
def issuer(tmp_path_factory: pytest.TempPathFactory) -> Issuer:
    return Issuer(tmp_path_factory.mktemp("keys"))


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def tiered(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, issuer: Issuer
) -> Iterator[TestClient]:
    def serve(url: str) -> Iterator[TestClient]:
        engine = served_store(url)
        _publish(engine)
        with TestClient(create_app(engine, issuer.authenticator())) as client:
            yield client
        engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp_path_factory.mktemp('tiers') / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


# -- who asks ---------------------------------------------------------------------------------------

CLIENTS: dict[str, tuple[str, ...] | None] = {
    "no token": None,
    "wrong scope": ("grunndata:supplementary.read:someone-else", "helseid://scopes/identity/pid"),
    "sector": ("grunndata:sector.read",),
    "vendor A": (f"grunndata:supplementary.read:{VENDOR_A}",),
    "all": ("grunndata:sector.read", "grunndata:supplementary.read:*"),
}


def entitled(client: str, tier: str, owner: str) -> bool:
    scopes = CLIENTS[client] or ()
    if tier == "sector":
        return "grunndata:sector.read" in scopes
    return f"grunndata:supplementary.read:{owner}" in scopes or "grunndata:supplementary.read:*" in scopes


# -- what is asked ----------------------------------------------------------------------------------
# (name, path, kind): "own" paths name the restricted resource ({type}, {id}, {tier}); "shows"
# paths answer with the markers listed for them when the client is entitled; "listing" paths name
# owners the client may read; "national" paths never answer with restricted data, whoever asks.

ALL = tuple(MARKERS)
NOTES = ("sector-note-1", "vendor-a-note-1", "vendor-b-note-1")
PATHS: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("read", "/fhir/{type}/{id}", "own", ALL),
    ("vread", "/fhir/{type}/{id}/_history/1", "own", ALL),
    ("instance history", "/fhir/{type}/{id}/_history", "own", ALL),
    ("search by _id", "/fhir/{type}?_id={id}", "own", ALL),
    ("search all of a type", "/fhir/{type}?_count=1000", "own", ALL),
    ("search by tag", "/fhir/{type}?_tag=" + TIER_SYSTEM + "|{tier}", "own", ALL),
    ("POST _search", "POST /fhir/{type}/_search", "own", ALL),
    ("type history", "/fhir/{type}/_history?_count=1000", "own", ALL),
    ("forged paging snapshot", "/fhir/{type}?_count=1000&_snapshot={all_releases}", "own", ALL),
    (
        "revinclude notes",
        f"/fhir/PackagedProductDefinition?_id={CERTICAN_PACKAGE}&_revinclude=Basic:subject",
        "shows",
        NOTES,
    ),
    (
        "revinclude packages",
        f"/fhir/MedicinalProductDefinition?_id={CERTICAN_BRAND}&_revinclude=PackagedProductDefinition:package-for",
        "shows",
        ("sector-unit-dose-1",),
    ),
    ("include subject", "/fhir/Basic?_id={id}&_include=Basic:subject", "shows", NOTES),
    (
        "revinclude documents",
        f"/fhir/MedicinalProductDefinition?_id={CERTICAN_BRAND}&_revinclude=Composition:subject",
        "shows",
        ("sector-epi-1",),
    ),
    (
        "include author",
        "/fhir/Composition?_id=sector-epi-1&_include=Composition:author",
        "shows",
        ("sector-org-1",),
    ),
    (
        "search documents by subject",
        f"/fhir/Composition?subject={CERTICAN_BRAND}",
        "shows",
        ("sector-epi-1",),
    ),
    ("organizations by name", "/fhir/Organization?name=sykehusapotek", "shows", ("sector-org-1",)),
    (
        "search by subject",
        f"/fhir/Basic?subject=PackagedProductDefinition/{CERTICAN_PACKAGE}",
        "shows",
        NOTES,
    ),
    (
        "search by package-for",
        f"/fhir/PackagedProductDefinition?package-for={CERTICAN_BRAND}",
        "shows",
        ("sector-unit-dose-1",),
    ),
    ("$everything", f"/fhir/MedicinalProductDefinition/{CERTICAN_BRAND}/$everything", "shows", ALL),
    # the search grammar: a chain, the wildcards and iterated includes by the same rules
    (
        "chain to the package",
        "/fhir/Basic?subject:PackagedProductDefinition.identifier=014884",
        "shows",
        NOTES,
    ),
    ("revinclude *", f"/fhir/PackagedProductDefinition?_id={CERTICAN_PACKAGE}&_revinclude=*", "shows", NOTES),
    (
        "revinclude iterate",
        f"/fhir/MedicinalProductDefinition?_id={CERTICAN_BRAND}"
        "&_revinclude:iterate=PackagedProductDefinition:package-for&_revinclude:iterate=Basic:subject",
        "shows",
        ("sector-unit-dose-1", *NOTES),
    ),
    # the SAFEST R4 view of the same store: the sector's unit dose is a MedicinalProductPackaged there
    ("R4 read", "/fhir-r4/MedicinalProductPackaged/sector-unit-dose-1", "r4", ()),
    ("R4 vread", "/fhir-r4/MedicinalProductPackaged/sector-unit-dose-1/_history/1", "r4", ()),
    ("R4 instance history", "/fhir-r4/MedicinalProductPackaged/sector-unit-dose-1/_history", "r4", ()),
    (
        "R4 search by _id",
        "/fhir-r4/MedicinalProductPackaged?_id=sector-unit-dose-1",
        "shows",
        ("sector-unit-dose-1",),
    ),
    ("R4 search all", "/fhir-r4/MedicinalProductPackaged?_count=1000", "shows", ("sector-unit-dose-1",)),
    # histories are newest first: the sector release came last, so five entries hold its unit dose
    (
        "R4 type history",
        "/fhir-r4/MedicinalProductPackaged/_history?_count=5",
        "shows",
        ("sector-unit-dose-1",),
    ),
    # DMP's delta/ of the same view: the version history, by the same rules (its vread and instance
    # history are the handlers of the rows above)
    ("R4 delta read", "/fhir-r4/delta/MedicinalProductPackaged/sector-unit-dose-1", "r4", ()),
    (
        "R4 delta of a type",
        "/fhir-r4/delta/MedicinalProductPackaged?_count=5",
        "shows",
        ("sector-unit-dose-1",),
    ),
    ("R4 delta", "/fhir-r4/delta?_count=5", "shows", ("sector-unit-dose-1",)),
    ("system history", "/fhir/_history?_count=1000", "shows", ALL),
    ("releases", "/releases", "listing", ()),
    ("release report", "/releases/{release}", "report", ()),
    ("health", "/health", "listing", ()),
    ("M30 export", "/fest/m30", "national", ()),
    (
        "$translate",
        "/fhir/ConceptMap/$translate?system=http://dmp.no/fhir/NamingSystem/fest-varenummer&code=014884",
        "national",
        (),
    ),
    ("ConceptMap search", "/fhir/ConceptMap", "national", ()),
    ("CapabilityStatement", "/fhir/metadata", "national", ()),
    ("migration", "/migration?_format=json", "national", ()),
]


def _ask(client: TestClient, who: str, issuer: Issuer, path: str, key: DpopKey | None = None) -> Any:
    """The client's request; with `key`, its token is bound to that key and sent with a proof."""
    scopes = CLIENTS[who]
    method, _, path = path.rpartition(" ")
    method = method or "GET"
    if scopes is None:
        headers = {}
    elif key is None:
        headers = issuer.headers(*scopes)
    else:
        headers = issuer.dpop_headers(key, method, "http://testserver" + path.partition("?")[0], *scopes)
    if method == "POST":
        return client.post(path, data={"_count": "1000"}, headers=headers)
    return client.get(path, headers=headers)


def _all_releases(client: TestClient, issuer: Issuer) -> str:
    listed = client.get("/releases", headers=issuer.headers(*CLIENTS["all"] or ())).json()
    return ".".join(str(r["id"]) for r in listed if r["status"] == "active")


def _line_release(client: TestClient, issuer: Issuer, tier: str, owner: str) -> int:
    """The active release of the line (tier, owner)."""
    listed = client.get("/releases", headers=issuer.headers(*CLIENTS["all"] or ())).json()
    return next(r["id"] for r in listed if (r["tier"], r["owner"], r["status"]) == (tier, owner, "active"))


def served_ids(answer: Any) -> set[str]:
    """The ids of the resources an answer holds (a Bundle's entries, or the resource itself)."""
    body = answer.json()
    if not isinstance(body, dict):
        return set()
    if body.get("resourceType") == "Bundle":
        return {e["resource"]["id"] for e in body.get("entry", []) if "resource" in e}
    return {body["id"]} if "id" in body and body.get("resourceType") != "OperationOutcome" else set()


def _reads_none_of(who: str, tier: str) -> bool:
    """The client may read nothing of the tier (a `_tag` search for it is then a 403)."""
    scopes = CLIENTS[who] or ()
    if tier == "sector":
        return "grunndata:sector.read" not in scopes
    return not any(s.startswith("grunndata:supplementary.read:") for s in scopes)


@pytest.mark.parametrize("who", list(CLIENTS))
@pytest.mark.parametrize("marker", list(MARKERS))
@pytest.mark.parametrize("name,template,kind,shows", PATHS, ids=[p[0] for p in PATHS])
def test_access_matrix(
    tiered: TestClient,
    issuer: Issuer,
    who: str,
    marker: str,
    name: str,
    template: str,
    kind: str,
    shows: tuple[str, ...],
) -> None:
    """Every path x every restricted resource (sector, two vendors' supplementary) x every client."""
    _check(tiered, issuer, who, marker, name, template, kind, shows)


# a representative part of the matrix again with DPoP-bound tokens (the whole would double its
# time): each kind of answer (a read, searches, an include, $everything, the change feed, a
# listing) about sector and supplementary data, by every client with a token
DPOP_PATHS = [
    p
    for p in PATHS
    if p[0]
    in (
        "read",
        "search by _id",
        "search by tag",
        "POST _search",
        "revinclude notes",
        "$everything",
        "system history",
        "releases",
    )
]


@pytest.mark.parametrize("who", [c for c in CLIENTS if CLIENTS[c] is not None])
@pytest.mark.parametrize("marker", ["sector-note-1", "vendor-a-note-1", "sector-epi-1"])
@pytest.mark.parametrize("name,template,kind,shows", DPOP_PATHS, ids=[p[0] for p in DPOP_PATHS])
def test_access_matrix_with_dpop_bound_tokens(
    tiered: TestClient,
    issuer: Issuer,
    who: str,
    marker: str,
    name: str,
    template: str,
    kind: str,
    shows: tuple[str, ...],
) -> None:
    _check(tiered, issuer, who, marker, name, template, kind, shows, DpopKey())


def _check(
    tiered: TestClient,
    issuer: Issuer,
    who: str,
    marker: str,
    name: str,
    template: str,
    kind: str,
    shows: tuple[str, ...],
    key: DpopKey | None = None,
) -> None:
    tier, owner = MARKERS[marker]
    rtype = next(r["resourceType"] for _, _, r in RESTRICTED if r["id"] == marker)
    release = _line_release(tiered, issuer, tier, owner) if "{release}" in template else 0
    path = template.format(
        type=rtype, id=marker, tier=tier, all_releases=_all_releases(tiered, issuer), release=release
    )
    answer = _ask(tiered, who, issuer, path, key)
    may = entitled(who, tier, owner)
    if kind == "report":  # the line's release report, or exactly what a release that never was gets
        if may:
            assert answer.status_code == 200, answer.text
            assert (answer.json()["id"], answer.json()["owner"]) == (release, owner)
        else:
            assert answer.status_code == 404, answer.text
            assert answer.json()["issue"][0]["diagnostics"] == f"there is no release {release}"
        return
    if kind == "r4":  # about the sector's unit dose, whichever marker: 404 to all but its readers
        unit_dose = "sector-unit-dose-1"
        if entitled(who, *MARKERS[unit_dose]):
            assert answer.status_code == 200, answer.text
            assert unit_dose in served_ids(answer)
        else:
            assert answer.status_code == 404, answer.text
            diagnostics = answer.json()["issue"][0]["diagnostics"]
            assert diagnostics == f"MedicinalProductPackaged/{unit_dose} is not known"
            assert unit_dose not in served_ids(answer)
        return
    if name == "forged paging snapshot" and CLIENTS[who] != CLIENTS["all"]:
        # it names every release, some of lines the client may not read: as if they never were
        assert answer.status_code == 410, answer.text
        assert answer.json()["issue"][0]["diagnostics"] == (
            "the releases this page belongs to are gone; start the search again"
        )
        return
    if kind == "own" and not may and name in ("read", "vread", "instance history"):
        # exactly what a resource that never existed gets: nothing tells the two apart
        assert answer.status_code == 404, answer.text
        assert answer.json()["issue"][0]["diagnostics"] == f"{rtype}/{marker} is not known"
        return
    if kind == "own" and not may and name == "search by tag" and _reads_none_of(who, tier):
        assert answer.status_code == 403, answer.text
        assert answer.json()["issue"][0]["code"] == "forbidden"
        return
    assert answer.status_code == 200, answer.text
    if kind == "listing":
        assert (f'"{owner}"' in answer.text) == may
        return
    if kind == "national":  # JSON, HTML or M30 XML: the marker appears nowhere in it
        assert marker not in answer.text and f"/owner/{owner}" not in answer.text
        return
    if not may:
        assert marker not in served_ids(answer) and f'"{marker}"' not in answer.text
        assert f"/owner/{owner}" not in answer.text
        return
    if marker in shows:
        assert marker in served_ids(answer)


BAD_TOKENS = {
    "expired": lambda issuer: issuer.token("grunndata:sector.read", expires_in=-3600),
    "wrong audience": lambda issuer: issuer.token("grunndata:sector.read", aud="someone-else"),
    "not a JWT": lambda issuer: "not-a-token",
}


@pytest.mark.parametrize("bad", list(BAD_TOKENS))
@pytest.mark.parametrize(
    "path",
    [
        "/fhir/Basic/sector-note-1",
        f"/fhir/PackagedProductDefinition/{CERTICAN_PACKAGE}",  # national, still refused: the token is bad
        "/fhir/Basic?_count=10",
        "/fhir/_history",
        f"/fhir/MedicinalProductDefinition/{CERTICAN_BRAND}/$everything",
        "/fhir/ConceptMap/$translate?system=http://dmp.no/fhir/NamingSystem/fest-varenummer&code=014884",
        "/fest/m30",
        "/releases",
    ],
)
def test_a_bad_token_is_401_on_every_path(tiered: TestClient, issuer: Issuer, bad: str, path: str) -> None:
    answer = tiered.get(path, headers={"Authorization": f"Bearer {BAD_TOKENS[bad](issuer)}"})
    assert answer.status_code == 401, answer.text
    assert answer.json()["resourceType"] == "OperationOutcome"
    assert answer.json()["issue"][0]["code"] == "login"
    assert answer.headers["www-authenticate"].startswith('Bearer realm="grunndata", error="invalid_token"')


def test_an_entitled_read_carries_tier_and_owner(tiered: TestClient, issuer: Issuer) -> None:
    answer = tiered.get("/fhir/Basic/vendor-a-note-1", headers=issuer.headers(*CLIENTS["vendor A"] or ()))
    meta = answer.json()["meta"]
    assert meta["tag"] == [{"system": TIER_SYSTEM, "code": "supplementary"}]
    assert meta["source"] == "https://grunndata.no/owner/vendor-a"


def test_a_paging_snapshot_does_not_tell_which_restricted_releases_exist(
    tiered: TestClient, issuer: Issuer
) -> None:
    listed = tiered.get("/releases", headers=issuer.headers(*CLIENTS["all"] or ())).json()
    sector_release = next(r["id"] for r in listed if r["tier"] == "sector")
    national = next(r["id"] for r in listed if r["tier"] == "national" and r["status"] == "active")
    never = max(r["id"] for r in listed) + 1
    answers = {
        asked: tiered.get(f"/fhir/Basic?_snapshot={asked}")
        for asked in (f"{sector_release}", f"{never}", f"{national}.{sector_release}", f"{national}.{never}")
    }
    # a restricted release and one that never was look alike to a client that may not read it
    assert {a.status_code for a in answers.values()} == {410}, answers
    assert len({a.json()["issue"][0]["diagnostics"] for a in answers.values()}) == 1
    entitled_answer = tiered.get(
        f"/fhir/Basic?_snapshot={national}.{sector_release}", headers=issuer.headers(*CLIENTS["all"] or ())
    )
    assert entitled_answer.status_code == 200


@pytest.mark.parametrize("who", list(CLIENTS))
def test_a_history_link_names_no_release_the_client_may_not_read(
    tiered: TestClient, issuer: Issuer, who: str
) -> None:
    listed = tiered.get("/releases", headers=issuer.headers(*CLIENTS["all"] or ())).json()
    activated = [r for r in listed if r["status"] in ("active", "superseded")]
    readable = [r["id"] for r in activated if r["tier"] == "national" or entitled(who, r["tier"], r["owner"])]
    headers = issuer.headers(*CLIENTS[who] or ()) if CLIENTS[who] is not None else {}
    bundle = tiered.get("/fhir/_history?_count=1", headers=headers).json()
    links = {link["relation"]: link["url"] for link in bundle["link"]}
    assert links["next"].endswith(f"&_snapshot={max(readable)}"), (who, links)
    # the store's newest release is a restricted line's: only a client reading everything names it
    assert (max(readable) == max(r["id"] for r in activated)) == (who == "all")


@pytest.mark.parametrize("who", list(CLIENTS))
def test_a_has_never_passes_through_what_the_client_may_not_read(
    tiered: TestClient, issuer: Issuer, who: str
) -> None:
    """The brand is national, but that the sector's unit dose points at it is the sector's to know."""
    path = (
        "/fhir/MedicinalProductDefinition?_has:PackagedProductDefinition:package-for:_id=sector-unit-dose-1"
    )
    found = served_ids(_ask(tiered, who, issuer, path))
    assert found == ({CERTICAN_BRAND} if entitled(who, "sector", SECTOR_OWNER) else set())
