"""A record system pulls the whole catalogue with FHIR Bulk Data `$export`, then what changed.

The store holds the real 2017 extract, then a follow-up delivery (the Certican package renamed,
one package dropped), beside a hospital pharmacy's sector data and a vendor's supplementary data.
Every step of the asynchronous pattern is asked on SQLite and PostgreSQL; each export is written
by a child process, as in production.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from grunndata.catalog.fhir import CATALOGUE_SOURCE
from grunndata.exporters import export_types
from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.settings import Settings
from grunndata.store import Snapshot, connect, instant
from grunndata.store.bulk import Caps, Entitlement, TooManyJobs, cancel_ticket, get_job, start_job
from grunndata.store.models import BT
from tests.conftest import fresh_pg_database
from tests.server.conftest import publish, served_store, write_followup
from tests.server.test_access import RESTRICTED
from tests.server.tokens import Issuer

ASYNC = {"Prefer": "respond-async"}
SECTOR = ("grunndata:sector.read",)
# what the anonymous system export holds: the real extract after the follow-up (one package dropped)
NATIONAL_COUNTS = {
    "MedicinalProductDefinition": 78,
    "PackagedProductDefinition": 106,
    "ManufacturedItemDefinition": 75,
    "AdministrableProductDefinition": 75,
    "Ingredient": 139,
    "SubstanceDefinition": 71,
    "ClinicalUseDefinition": 25,
    "Basic": 67,
    "RegulatedAuthorization": 75,
}


@dataclass
class Site:
    client: TestClient
    issuer: Issuer
    folder: Path
    settings: Settings
    between: str  # an instant after the first delivery was served and before anything else


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("bulk")
    issuer = Issuer(tmp)
    followup, _ = write_followup(tmp, "Certican 0,1 mg (renamed)")
    settings = Settings.load({"GRUNNDATA_EXPORT_DIR": str(tmp / "exports")})

    def serve(url: str) -> Iterator[Site]:
        engine = served_store(url)
        time.sleep(0.01)
        between = instant(datetime.now(UTC))
        time.sleep(0.01)
        publish(engine, RESTRICTED)
        import_fest(engine, followup)
        app = create_app(engine, issuer.authenticator(), warm=False, settings=settings)
        with TestClient(app) as client:
            yield Site(client, issuer, tmp / "exports", settings, between)
        engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


def kick_off(client: TestClient, path: str, headers: dict[str, str] | None = None) -> str:
    r = client.get(path, headers={**ASYNC, **(headers or {})})
    assert r.status_code == 202, r.text
    assert r.json()["issue"][0]["severity"] == "information"
    return r.headers["content-location"]


def poll(
    client: TestClient, url: str, headers: dict[str, str] | None = None, seconds: float = 60
) -> list[httpx.Response]:
    """Every status answer until the export is done (Retry-After is 1 s; tests ask every 0.1 s)."""
    answers = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        r = client.get(url, headers=headers)
        answers.append(r)
        if r.status_code != 202:
            return answers
        time.sleep(0.1)
    raise AssertionError(f"{url} still 202 after {seconds:.0f} s: {answers[-1].headers}")


def manifest(
    client: TestClient, path: str, headers: dict[str, str] | None = None, seconds: float = 60
) -> dict[str, Any]:
    done = poll(client, kick_off(client, path, headers), headers, seconds)[-1]
    assert done.status_code == 200, done.text
    found: dict[str, Any] = done.json()
    return found


def lines(client: TestClient, url: str, headers: dict[str, str] | None = None) -> list[dict[str, Any]]:
    r = client.get(url, headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/fhir+ndjson"
    return [orjson.loads(line) for line in r.content.splitlines()]


def counts(found: dict[str, Any]) -> dict[str, int]:
    return {item["type"]: item["count"] for item in found["output"]}


def job_of(client: TestClient, status_url: str) -> str | None:
    """The job a status URL's ticket shares (its files' folder is named by it), from the store."""
    engine = client.app.state.served.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        found: str | None = conn.execute(
            select(BT.c.job_id).where(BT.c.id == status_url.rsplit("/", 1)[1])
        ).scalar()
    return found


# -- the asynchronous pattern ----------------------------------------------------------------


def test_every_step_of_the_async_pattern(served: Site) -> None:
    client = served.client
    refused = client.get("/fhir/$export")
    assert refused.status_code == 400
    assert refused.json()["issue"][0]["diagnostics"] == (
        "$export is asynchronous: send the header Prefer: respond-async"
    )
    status_url = kick_off(client, "/fhir/$export")
    job = status_url.rsplit("/", 1)[1]
    assert status_url == f"http://testserver/fhir/$export-status/{job}" and len(job) == 32
    answers = poll(client, status_url)
    first, done = answers[0], answers[-1]
    assert first.status_code == 202  # the child has not even started by the first poll
    assert first.headers["retry-after"] == "1"
    assert re.fullmatch(r"waiting for its turn|[0-9]+ of 711 resources written", first.headers["x-progress"])
    assert first.content == b"" and first.headers["cache-control"] == "no-store"
    assert done.status_code == 200 and done.headers["content-type"] == "application/json"
    found = done.json()
    assert set(found) == {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert found["request"] == "http://testserver/fhir/$export"
    assert found["requiresAccessToken"] is False
    assert found["error"] == []
    assert counts(found) == NATIONAL_COUNTS
    assert [item["url"] for item in found["output"]][:2] == [
        f"http://testserver/fhir/$export-file/{job}/MedicinalProductDefinition.ndjson.gz",
        f"http://testserver/fhir/$export-file/{job}/PackagedProductDefinition.ndjson.gz",
    ]
    # the newest national release's activation: every resource exported was updated then or before
    newest = max(
        r["resource"]["meta"]["lastUpdated"]
        for r in client.get("/fhir/PackagedProductDefinition?_count=1000").json()["entry"]
    )
    assert found["transactionTime"] == newest
    # asked again with the same parameters: the same export, not a second one, with a ticket of
    # its own; the preference with a parameter (RFC 7240), or in a second Prefer header, is the
    # same preference
    again = kick_off(client, "/fhir/$export")
    assert again != status_url and job_of(client, again) == job_of(client, status_url)
    assert job_of(client, kick_off(client, "/fhir/$export", {"Prefer": "respond-async; wait=10"})) == (
        job_of(client, status_url)
    )
    twice = client.get("/fhir/$export", headers=[("Prefer", "handling=lenient"), ("Prefer", "respond-async")])
    assert twice.status_code == 202
    assert job_of(client, twice.headers["content-location"]) == job_of(client, status_url)
    assert client.get(status_url).json() == found
    second = client.get(again).json()
    assert second["output"] == [
        {**item, "url": item["url"].replace(job, again.rsplit("/", 1)[1])} for item in found["output"]
    ]


def test_the_files_are_gzip_for_a_client_that_accepts_it_and_plain_otherwise(served: Site) -> None:
    client = served.client
    found = manifest(client, "/fhir/$export")
    url = found["output"][1]["url"]
    raw = client.get(url, headers={"Accept-Encoding": "gzip"})
    assert raw.headers["content-encoding"] == "gzip"
    plain = client.get(url, headers={"Accept-Encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.headers["content-type"] == "application/fhir+ndjson"
    assert plain.content.count(b"\n") == 106 and plain.content.endswith(b"}\n")
    assert raw.content == plain.content  # httpx unpacks what it accepted
    assert client.get(url.rsplit("/", 1)[0] + "/Patient.ndjson.gz").status_code == 404


def test_a_range_of_a_gzip_file_is_one_range_of_its_gzip_bytes_or_the_whole_file(served: Site) -> None:
    """One range is a 206 of the gzip bytes as kept; several ranges, or one that is no range, get the
    whole file (200): a multipart answer marked gzip was no gzip, and a bad Range was a text/plain 400."""
    client = served.client
    url = manifest(client, "/fhir/$export")["output"][1]["url"]
    gz = {"Accept-Encoding": "gzip"}
    with client.stream("GET", url, headers=gz) as r:
        kept = b"".join(r.iter_raw())  # the gzip bytes, not unpacked
    assert kept[:2] == b"\x1f\x8b"
    with client.stream("GET", url, headers={**gz, "Range": "bytes=0-9"}) as r:
        assert (r.status_code, r.headers["content-encoding"], b"".join(r.iter_raw())) == (
            206,
            "gzip",
            kept[:10],
        )
        assert r.headers["content-range"] == f"bytes 0-9/{len(kept)}"
    for asked in ("bytes=0-1,5-6", "bytes=abc", "bytes=10-5", "items=0-5", "bytes=0-1, -3"):
        with client.stream("GET", url, headers={**gz, "Range": asked}) as r:
            assert (r.status_code, r.headers["content-encoding"], b"".join(r.iter_raw())) == (
                200,
                "gzip",
                kept,
            ), asked
    assert client.get(url, headers={**gz, "Range": f"bytes={len(kept) + 5}-"}).status_code == 416


def test_a_system_export_holds_what_the_api_serves(served: Site) -> None:
    """Per type, the same resources with the same content as a search of all of them."""
    client = served.client
    found = manifest(client, "/fhir/$export")
    for item in found["output"]:
        exported = {r["id"]: r for r in lines(client, item["url"])}
        assert len(exported) == item["count"]
        bundle = client.get(f"/fhir/{item['type']}?_count=1000").json()
        searched = {
            e["resource"]["id"]: e["resource"]
            for e in bundle["entry"]
            if e["resource"].get("meta", {}).get("source", "").startswith("https://grunndata.no/owner/")
        }
        assert exported == searched, item["type"]


def test_since_gives_what_history_gives_for_the_same_instant(served: Site) -> None:
    """The newest state of each resource `_history?_since` lists: versions in the files, removals
    in the deleted file, once each."""
    client = served.client
    found = manifest(client, f"/fhir/$export?_since={served.between}")
    assert found["request"] == f"http://testserver/fhir/$export?_since={served.between}"
    newest: dict[tuple[str, str], dict[str, Any]] = {}
    url: str | None = f"/fhir/_history?_since={served.between}&_count=1000"
    while url:
        page = client.get(url).json()
        for e in page["entry"]:
            rtype, rid = e["request"]["url"].split("/")[-2:]
            newest.setdefault((rtype, rid), e)  # newest first
        url = next((link["url"] for link in page["link"] if link["relation"] == "next"), None)
    expected_changed = {
        (t, i): e["resource"]["meta"]["versionId"]
        for (t, i), e in newest.items()
        if e["request"]["method"] != "DELETE"
    }
    expected_deleted = {f"{t}/{i}" for (t, i), e in newest.items() if e["request"]["method"] == "DELETE"}
    exported = {
        (r["resourceType"], r["id"]): r["meta"]["versionId"]
        for item in found["output"]
        for r in lines(client, item["url"])
    }
    assert exported == expected_changed
    assert len(exported) == 1  # the renamed Certican package
    [deleted_file] = found["deleted"]
    deletions = lines(client, deleted_file["url"])
    assert deleted_file["type"] == "Bundle" and deleted_file["count"] == len(deletions) == 1
    assert {d["entry"][0]["request"]["url"] for d in deletions} == expected_deleted
    assert deletions[0]["type"] == "transaction" and deletions[0]["entry"][0]["request"]["method"] == "DELETE"


def test_a_type_level_export_holds_that_type_alone(served: Site) -> None:
    found = manifest(served.client, "/fhir/ClinicalUseDefinition/$export?_outputFormat=ndjson")
    assert counts(found) == {"ClinicalUseDefinition": 25}


def test_a_cancelled_export_is_gone_and_its_child_leaves_nothing(served: Site) -> None:
    client = served.client
    status_url = kick_off(client, "/fhir/Ingredient/$export")
    ticket, job = status_url.rsplit("/", 1)[1], job_of(client, status_url)
    cancelled = client.delete(status_url)
    assert cancelled.status_code == 202
    assert cancelled.json()["issue"][0]["diagnostics"] == f"the export {ticket} was cancelled"
    assert client.get(status_url).status_code == 404
    assert client.delete(status_url).status_code == 404
    time.sleep(0.5)  # the child, if it had started, stops at its next word and removes its folder
    assert not (served.folder / f"bulk-{job}").exists()
    assert client.get(status_url).status_code == 404
    # asked again: a new export
    again = kick_off(client, "/fhir/Ingredient/$export")
    assert again != status_url
    assert client.delete(again).status_code == 202


def test_a_cancel_removes_that_kick_off_alone_and_the_export_goes_on_for_the_others(
    served: Site,
) -> None:
    """Two clients with the same entitlement ask the same export: one job, two tickets. One
    client's DELETE ends its own ticket; the other still gets the manifest and the files. The last
    ticket's DELETE stops the job and removes its files."""
    client, issuer = served.client, served.issuer
    path = "/fhir/$export?_type=Ingredient,SubstanceDefinition"
    mine, theirs = issuer.headers(*SECTOR, sub="client-a"), issuer.headers(*SECTOR, sub="client-b")
    a = kick_off(client, path, mine)
    b = kick_off(client, path, theirs)
    job = job_of(client, a)
    assert a != b and job is not None and job_of(client, b) == job
    assert client.delete(a, headers=mine).status_code == 202
    assert client.get(a, headers=mine).status_code == 404
    assert client.delete(a, headers=mine).status_code == 404  # once
    done = poll(client, b, theirs)[-1]
    assert done.status_code == 200, done.text
    assert counts(done.json()) == {"Ingredient": 139, "SubstanceDefinition": 71}
    file_url = done.json()["output"][0]["url"]
    assert file_url == f"http://testserver/fhir/$export-file/{b.rsplit('/', 1)[1]}/Ingredient.ndjson.gz"
    assert len(lines(client, file_url, theirs)) == 139
    # the cancelled ticket's file URL is gone with it, though the files are there for b
    assert (
        client.get(file_url.replace(b.rsplit("/", 1)[1], a.rsplit("/", 1)[1]), headers=mine).status_code
        == 404
    )
    assert (served.folder / f"bulk-{job}").is_dir()
    assert client.delete(b, headers=theirs).status_code == 202  # the last ticket: the job goes
    assert client.get(b, headers=theirs).status_code == 404
    assert not (served.folder / f"bulk-{job}").exists()
    engine = client.app.state.served.engine  # type: ignore[attr-defined]
    with engine.connect() as conn:
        assert get_job(conn, job) is None
    assert job_of(client, kick_off(client, path, mine)) != job  # asked again: a new export


# -- who may see an export -------------------------------------------------------------------


def test_a_restricted_clients_export_holds_only_what_it_may_read_and_is_its_alone(served: Site) -> None:
    client, issuer = served.client, served.issuer
    sector = issuer.headers(*SECTOR)
    path = "/fhir/$export?_type=PackagedProductDefinition,Basic,Composition"
    status_url = kick_off(client, path, sector)
    done = poll(client, status_url, sector)[-1]
    found = done.json()
    assert found["requiresAccessToken"] is True
    assert counts(found) == {"PackagedProductDefinition": 107, "Basic": 68, "Composition": 1}
    basics = {r["id"] for r in lines(client, found["output"][1]["url"], sector)}
    assert "sector-note-1" in basics and "vendor-a-note-1" not in basics
    # the status and the files are the sector entitlement's: to anyone else they do not exist
    for other in ({}, issuer.headers(), issuer.headers("grunndata:supplementary.read:vendor-a")):
        assert client.get(status_url, headers=other).status_code == 404
        assert client.get(found["output"][0]["url"], headers=other).status_code == 404
        assert client.delete(status_url, headers=other).status_code == 404
    # another client with the same entitlement gets the same export; without a token, another one
    same = kick_off(client, path, issuer.headers(*SECTOR, sub="another-client"))
    assert same != status_url and job_of(client, same) == job_of(client, status_url)
    national = manifest(client, path)
    assert counts(national) == {"PackagedProductDefinition": 106, "Basic": 67}
    assert national["requiresAccessToken"] is False


def test_a_second_server_process_answers_the_status_and_makes_no_second_export(served: Site) -> None:
    """Two server processes over one store and one export folder: the store is the shared state."""
    first = served.client
    engine = first.app.state.served.engine  # type: ignore[attr-defined]
    second_app = create_app(engine, served.issuer.authenticator(), warm=False, settings=served.settings)
    with TestClient(second_app) as second:
        status_url = kick_off(first, "/fhir/SubstanceDefinition/$export")
        assert job_of(first, kick_off(second, "/fhir/SubstanceDefinition/$export")) == job_of(
            first, status_url
        )
        done = poll(second, status_url)[-1]
        assert counts(done.json()) == {"SubstanceDefinition": 71}
        assert len(lines(second, done.json()["output"][0]["url"])) == 71
        assert first.get(status_url).json() == done.json()


# -- bad requests ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "status", "words"),
    [
        ("/fhir/$export?_type=Patient", 400, "_type: 'Patient' is not a resource type served here"),
        ("/fhir/$export?_type=", 400, "_type names an empty type"),
        ("/fhir/$export?_type=Basic,", 400, "_type names an empty type"),
        ("/fhir/$export?_outputFormat=NDJSON", 400, "_outputFormat 'NDJSON' is not made here"),
        ("/fhir/$export?_type=ConceptMap", 400, "_type: ConceptMap is served here but not exported"),
        ("/fhir/$export?_since=yesterday", 400, "_since: not a date or time: 'yesterday'"),
        ("/fhir/$export?_since=gt2017-01-01", 400, "_since: 'gt2017-01-01' is not an instant"),
        ("/fhir/$export?_since=2017&_since=2018", 400, "give _since once"),
        (
            "/fhir/$export?_outputFormat=application/fhir%2Bjson",
            400,
            "_outputFormat 'application/fhir+json' is not made here",
        ),
        (
            "/fhir/Basic/$export?_type=Ingredient",
            400,
            "_type: Basic/$export exports Basic alone, not Ingredient",
        ),
        ("/fhir/Patient/$export", 404, "'Patient' is not a resource type served here"),
        ("/fhir/Endpoint/$export", 404, "Endpoint is served here but not exported"),
        ("/fhir/$export-status/0123456789abcdef", 404, "there is no export '0123456789abcdef' for you"),
        (
            "/fhir/$export-status/0123456789abcdef0123456789abcdef",
            404,
            "there is no export '0123456789abcdef0",
        ),
        ("/fhir/$export-status/ab%00cd", 404, "there is no export 'ab\\x00cd' for you"),
        ("/fhir/$export-file/0123456789abcdef/Basic.ndjson.gz", 404, "has no file 'Basic.ndjson.gz'"),
    ],
)
def test_bad_requests_are_one_sentence(served: Site, path: str, status: int, words: str) -> None:
    r = served.client.get(path, headers=ASYNC)
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert words in r.json()["issue"][0]["diagnostics"]


STRICT = {"Prefer": "respond-async, handling=strict"}
TYPE_FILTER_REFUSED = (
    "_typeFilter is not supported here: an export holds every resource of the types asked; ask "
    "without it (or without Prefer: handling=strict to have it ignored)"
)


def test_an_unknown_parameter_is_refused_only_when_strict(served: Site) -> None:
    strict = served.client.get("/fhir/$export?_typeFilter=Basic%3Fstatus%3Dactive", headers=STRICT)
    assert strict.status_code == 400
    assert strict.json()["issue"][0]["diagnostics"] == TYPE_FILTER_REFUSED
    other = served.client.get("/fhir/$export?_elements=id", headers=STRICT)
    assert other.status_code == 400
    assert other.json()["issue"][0]["diagnostics"] == (
        "$export does not take '_elements'; it takes _type, _since and _outputFormat"
    )


def test_an_ignored_parameter_is_noted_in_the_kick_offs_outcome(served: Site) -> None:
    """Without handling=strict, `_typeFilter` (and any other parameter not taken) is ignored, and the
    202's OperationOutcome says so: the client learns its filter was not applied."""
    r = served.client.get(
        "/fhir/ClinicalUseDefinition/$export?_typeFilter=ClinicalUseDefinition%3Ftype%3Dwarning&_elements=id",
        headers=ASYNC,
    )
    assert r.status_code == 202, r.text
    assert r.json()["issue"] == [
        {
            "severity": "information",
            "code": "informational",
            "diagnostics": "the export is being written; poll the URL in Content-Location",
        },
        {
            "severity": "warning",
            "code": "not-supported",
            "diagnostics": "'_elements' is not a parameter of $export here and was ignored",
        },
        {
            "severity": "warning",
            "code": "not-supported",
            "diagnostics": "_typeFilter is not supported here and was ignored: the export holds every "
            "resource of the types asked (with Prefer: handling=strict it is refused)",
        },
    ]
    done = poll(served.client, r.headers["content-location"])[-1]
    assert counts(done.json()) == {"ClinicalUseDefinition": 25}  # every one: no filter applied
    assert served.client.delete(r.headers["content-location"]).status_code == 202


def parameters(*pairs: tuple[str, str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Parameters",
        "parameter": [{"name": name, kind: value} for name, kind, value in pairs],
    }


def test_a_post_kick_off_takes_the_parameters_in_a_parameters_resource(served: Site) -> None:
    """Bulk Data's POST: the same parameters, the same export as the GET asking the same."""
    client = served.client
    body = parameters(
        ("_type", "valueString", "PackagedProductDefinition"),
        ("_type", "valueString", "Basic"),
        ("_since", "valueInstant", served.between),
        ("_outputFormat", "valueString", "application/fhir+ndjson"),
    )
    r = client.post("/fhir/$export", json=body, headers={**ASYNC, "Content-Type": "application/fhir+json"})
    assert r.status_code == 202, r.text
    assert r.json()["issue"][0]["severity"] == "information"
    posted = r.headers["content-location"]
    got = kick_off(client, f"/fhir/$export?_type=PackagedProductDefinition,Basic&_since={served.between}")
    assert job_of(client, got) == job_of(client, posted)  # the same export, made once
    found = poll(client, posted)[-1].json()
    assert found["request"] == "http://testserver/fhir/$export"  # a POST's URL, without its body
    assert counts(found) == {"PackagedProductDefinition": 1}  # the renamed Certican package
    assert found["deleted"][0]["count"] == 1
    typed = client.post(
        "/fhir/Basic/$export", json=parameters(("_outputFormat", "valueString", "ndjson")), headers=ASYNC
    )
    assert typed.status_code == 202, typed.text
    assert counts(poll(client, typed.headers["content-location"])[-1].json()) == {"Basic": 67}
    for url in (posted, got, typed.headers["content-location"]):
        assert client.delete(url).status_code == 202


@pytest.mark.parametrize(
    ("body", "headers", "status", "words"),
    [
        (b"{", {}, 400, "the request body is not JSON; send a Parameters resource"),
        (b'{"resourceType": "Bundle"}', {}, 400, "the request body must be a Parameters resource"),
        (
            orjson.dumps(parameters(("_since", "valueInteger", 2017))),
            {},
            400,
            "_since takes a string (valueString, valueInstant); the Parameters resource gave another",
        ),
        (
            orjson.dumps(parameters(("_type", "valueString", "Patient"))),
            {},
            400,
            "_type: 'Patient' is not a resource type served here",
        ),
        (
            orjson.dumps(parameters(("_typeFilter", "valueString", "Basic?code=x"))),
            {"Prefer": "respond-async, handling=strict"},
            400,
            TYPE_FILTER_REFUSED,
        ),
        (b"<Parameters/>", {"Content-Type": "application/fhir+xml"}, 415, "send a Parameters resource as"),
        (
            orjson.dumps(parameters()),
            {"Prefer": "return=minimal"},
            400,
            "send the header Prefer: respond-async",
        ),
    ],
)
def test_a_bad_post_kick_off_is_one_sentence(
    served: Site, body: bytes, headers: dict[str, str], status: int, words: str
) -> None:
    r = served.client.post(
        "/fhir/$export", content=body, headers={**ASYNC, "Content-Type": "application/fhir+json", **headers}
    )
    assert r.status_code == status, r.text
    assert r.json()["resourceType"] == "OperationOutcome"
    assert words in r.json()["issue"][0]["diagnostics"]


def test_the_files_are_written_gzip_on_disk(served: Site) -> None:
    found = manifest(served.client, "/fhir/ClinicalUseDefinition/$export?_outputFormat=ndjson")
    job = job_of(served.client, found["output"][0]["url"].rsplit("/", 1)[0])
    on_disk = served.folder / f"bulk-{job}" / "ClinicalUseDefinition.ndjson.gz"
    assert len(gzip.decompress(on_disk.read_bytes()).splitlines()) == 25


def test_an_export_expires_after_the_configured_time(served: Site) -> None:
    engine = served.client.app.state.served.engine  # type: ignore[attr-defined]
    settings = Settings.load(
        {"GRUNNDATA_EXPORT_DIR": str(served.folder), "GRUNNDATA_EXPORT_EXPIRE_SECONDS": "1"}
    )
    with TestClient(
        create_app(engine, served.issuer.authenticator(), warm=False, settings=settings)
    ) as client:
        status_url = kick_off(client, "/fhir/RegulatedAuthorization/$export")
        done = poll(client, status_url)[-1]
        assert done.status_code == 200 and counts(done.json()) == {"RegulatedAuthorization": 75}
        job = job_of(client, status_url)
        assert (served.folder / f"bulk-{job}").is_dir()
        time.sleep(1.1)
        assert client.get(status_url).status_code == 404
        assert client.get(done.json()["output"][0]["url"]).status_code == 404
        assert not (served.folder / f"bulk-{job}").exists()


def test_a_new_export_past_the_most_at_once_is_a_429_but_a_running_one_is_still_answered(
    served: Site, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = served.client
    status_url = kick_off(client, "/fhir/ManufacturedItemDefinition/$export")
    monkeypatch.setattr(client.app.state.bulk, "MOST_UNFINISHED", 0)  # type: ignore[attr-defined]
    busy = client.get("/fhir/AdministrableProductDefinition/$export", headers=ASYNC)
    assert busy.status_code == 429 and busy.headers["retry-after"] == "60"
    assert busy.json()["issue"][0]["diagnostics"] == (
        "the server writes at most 0 exports at once, and as many are waiting or being written; "
        "ask again in a minute"
    )
    joined = kick_off(client, "/fhir/ManufacturedItemDefinition/$export")
    assert job_of(client, joined) == job_of(client, status_url)  # the same job
    assert client.delete(status_url).status_code == 202
    assert client.delete(joined).status_code == 202


def test_one_entitlement_cannot_take_every_turn(served: Site) -> None:
    """A sector client with two exports waiting is refused a third (429, Retry-After, a sentence
    saying why); an anonymous client is not, and joining an export that exists is still answered."""
    client, issuer = served.client, served.issuer
    engine = client.app.state.served.engine  # type: ignore[attr-defined]
    sector = Entitlement(sector=True, token=True)
    elsewhere = Snapshot((987_654,))  # no release: these jobs start no child and wait until removed
    tickets = [
        start_job(engine, sector, elsewhere, [rtype], None, "/x")[1] for rtype in ("Basic", "Ingredient")
    ]
    try:
        busy = client.get("/fhir/Composition/$export", headers={**ASYNC, **issuer.headers(*SECTOR)})
        assert busy.status_code == 429 and busy.headers["retry-after"] == "60"
        assert busy.json()["issue"][0]["code"] == "throttled"
        assert busy.json()["issue"][0]["diagnostics"] == (
            "2 exports asked with your entitlement (your scopes) are waiting or being written, the most "
            "one entitlement may have at once; ask again when one is done, or cancel one"
        )
        # another entitlement has turns of its own
        assert client.delete(kick_off(client, "/fhir/Composition/$export")).status_code == 202
        # an export that exists is joined, not started
        job, ticket, new = start_job(engine, sector, elsewhere, ["Basic"], None, "/y")
        assert not new and job.request == "/y"
        tickets.append(ticket)
    finally:
        with engine.connect() as conn:
            for ticket in tickets:
                cancel_ticket(conn, ticket)


def test_concurrent_kick_offs_cannot_pass_the_entitlements_cap_together(served: Site) -> None:
    """Six kick-offs at once with one entitlement, each of another type: two are accepted and four
    refused (the count and the insert were two transactions, and all six passed the count)."""
    engine = served.client.app.state.served.engine  # type: ignore[attr-defined]
    supplementary = Entitlement(supplementary=frozenset({"race-owner"}), token=True)
    elsewhere = Snapshot((987_655,))  # no release: these jobs start no child and wait until removed
    types = (
        "Basic",
        "Ingredient",
        "Composition",
        "SubstanceDefinition",
        "ClinicalUseDefinition",
        "Organization",
    )
    start = threading.Barrier(len(types))

    def kick(rtype: str) -> str | None:
        start.wait()
        try:
            return start_job(engine, supplementary, elsewhere, [rtype], None, "/x", Caps(per_entitlement=2))[
                1
            ]
        except TooManyJobs:
            return None

    with ThreadPoolExecutor(len(types)) as pool:
        tickets = list(pool.map(kick, types))
    try:
        assert sum(t is not None for t in tickets) == 2
    finally:
        with engine.connect() as conn:
            for ticket in tickets:
                if ticket is not None:
                    cancel_ticket(conn, ticket)


def test_the_kick_off_answers_in_the_format_asked(served: Site) -> None:
    r = served.client.get("/fhir/ManufacturedItemDefinition/$export?_format=xml", headers=ASYNC)
    assert r.status_code == 202 and r.headers["content-type"] == "application/fhir+xml; charset=utf-8"
    assert r.text.startswith(
        '<?xml version="1.0" encoding="UTF-8"?><OperationOutcome xmlns="http://hl7.org/fhir">'
    )
    assert served.client.delete(r.headers["content-location"]).status_code == 202


# -- full size (GRUNNDATA_SLOW=1) ------------------------------------------------------------


def digests(resources: Iterator[dict[str, Any]] | list[dict[str, Any]]) -> dict[str, str]:
    """id -> SHA-256 of the resource's canonical JSON (keys sorted), once per id."""
    found: dict[str, str] = {}
    for resource in resources:
        assert resource["id"] not in found, f"{resource['resourceType']}/{resource['id']} twice"
        found[resource["id"]] = hashlib.sha256(
            orjson.dumps(resource, option=orjson.OPT_SORT_KEYS)
        ).hexdigest()
    return found


def searched(client: TestClient, rtype: str) -> Iterator[dict[str, Any]]:
    """Every stored resource a search of the type matches, paged 1,000 at a time through the next
    links (not the catalogue's Organizations, made on request as its Endpoints are: not exported)."""
    url: str | None = f"/fhir/{rtype}?_count=1000"
    while url:
        page = client.get(url)
        assert page.status_code == 200, page.text
        bundle = page.json()
        for e in bundle.get("entry", []):
            if e["search"]["mode"] == "match" and e["resource"]["meta"]["source"] != CATALOGUE_SOURCE:
                yield e["resource"]
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("GRUNNDATA_SLOW") != "1", reason="full size; set GRUNNDATA_SLOW=1 (~1.5 min)"
)
def test_a_full_size_system_export_holds_what_the_api_serves(tmp_path: Path) -> None:
    """The generated full-size delivery imported into SQLite; its system export, per type, holds the
    same resources (counts, and the SHA-256 of each one's canonical JSON, by id) as searches of
    the API paged through with `_count=1000` serve."""
    from grunndata.sample import generate_delivery

    delivery = tmp_path / "fest251.zip"
    generate_delivery(delivery)
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    import_fest(engine, delivery)
    settings = Settings.load({"GRUNNDATA_EXPORT_DIR": str(tmp_path / "exports")})
    with TestClient(create_app(engine, warm=False, settings=settings)) as client:
        started = time.monotonic()
        found = manifest(client, "/fhir/$export", seconds=600)
        export_seconds = time.monotonic() - started
        files = {item["type"]: item for item in found["output"]}
        started = time.monotonic()
        api = {rtype: digests(searched(client, rtype)) for rtype in export_types([])}
        api_seconds = time.monotonic() - started
        for rtype, served in api.items():
            exported = digests(lines(client, files[rtype]["url"])) if rtype in files else {}
            assert len(exported) == (files[rtype]["count"] if rtype in files else 0), rtype
            differ = sorted(i for i in exported.keys() | served.keys() if exported.get(i) != served.get(i))
            assert (rtype, len(exported), differ[:5]) == (rtype, len(served), [])
    engine.dispose()
    assert sum(len(d) for d in api.values()) > 100_000
    summary = ", ".join(
        f"{t} {len(d):,} {hashlib.sha256(''.join(k + v for k, v in sorted(d.items())).encode()).hexdigest()[:12]}"
        for t, d in api.items()
    )
    print(
        f"\nexport {export_seconds:.1f} s (kick-off to manifest), the API paged {api_seconds:.1f} s: {summary}"
    )
