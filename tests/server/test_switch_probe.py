"""Probe h10: the release switch's carried read cache, the pacing setting's bounds and a release
diff's type check, attacked from outside."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.server.state import Prepared
from grunndata.store import current_snapshot, read
from grunndata.store.releases import rollback
from tests.conftest import REAL_FEST, require
from tests.server.conftest import CERTICAN_PACKAGE, publish, write_followup
from tests.server.test_pages_releases import Site, site
from tests.server.test_release_diff import IMPORT
from tests.server.tokens import Issuer

__all__ = ["site"]  # the releases pages' store: the real extract (1), a sector line (2, 3), staged (4)

PPD = "PackagedProductDefinition"
SECTOR = ("grunndata:sector.read",)


def test_a_type_neither_release_holds_is_refused_on_the_comparison_page_too(site: Site) -> None:
    """/releases/1/diff/4?type=Legemiddelpaknig is a 400, and so is the page that reads the same
    diff (it was a 200 saying 'Legemiddelpaknig: 0 oppføringer', probe h10)."""
    path = "/leveranser/sammenlign?fra=1&til=4&type=Legemiddelpaknig"
    answer = site.client.get(path, headers=site.issuer.headers(*IMPORT))
    assert answer.status_code == 400
    assert 'class="box problem"' in answer.text
    assert (
        "Verken leveranse 1 eller 4 har oppføringer av typen «Legemiddelpaknig». Typene de har: "
        in answer.text
    )
    assert "Legemiddelpakning, " in answer.text  # among the types they do hold


def test_the_diff_takes_the_fest_prefix_and_refuses_other_case(site: Site) -> None:
    """Held up: the user may type the store's FEST. prefix; a catalogue's name in other case is not
    one (a 404 naming it, not an empty diff)."""
    headers = site.issuer.headers(*IMPORT)
    plain = site.client.get("/releases/1/diff/4?type=Legemiddelpakning", headers=headers)
    prefixed = site.client.get("/releases/1/diff/4?type=FEST.Legemiddelpakning", headers=headers)
    assert plain.status_code == prefixed.status_code == 200
    assert plain.json()["entries"] == prefixed.json()["entries"] != []
    lower = site.client.get("/releases/1/diff/4?type=legemiddelpakning", headers=headers)
    assert lower.status_code == 404
    assert "'legemiddelpakning'" in lower.json()["issue"][0]["diagnostics"]


def _expected(engine: Engine, rid: str) -> Prepared:
    with engine.connect() as conn:
        version = read(conn, current_snapshot(conn), PPD, rid)
    assert version is not None
    return Prepared.of(version)


def _same(answer: Any, expected: Prepared) -> None:
    assert answer.status_code == 200
    assert answer.content == expected.body
    assert answer.headers["etag"] == expected.etag
    assert answer.headers["last-modified"] == expected.last_modified


def test_reads_after_a_follow_up_a_sector_release_and_a_rollback_are_the_store_s(
    engine: Engine, tmp_path: Path
) -> None:
    """Held up: a sector release, then a national follow-up, then a rollback to the first release:
    after each switch, each read (cache warm before it) is what the store serves now, for a client
    without the sector scope and one with it; the sector copy stays 404 to the first once cached by
    the second; the package the follow-up dropped is 410, then served again. (A sector line cannot
    take a national id: the store refuses it, so no two lines share an id to confuse the cache.)"""
    issuer = Issuer(tmp_path)
    import_fest(engine, require(REAL_FEST))
    followup, dropped = write_followup(tmp_path, "Certican Nyttnavn tab")
    gone = dropped.removeprefix("ID_")
    app: Any = create_app(engine, issuer.authenticator(), warm=False)
    with TestClient(app) as client:
        served = app.state.served
        ids = [e["resource"]["id"] for e in client.get(f"/fhir/{PPD}?_count=200").json()["entry"]]
        assert len(ids) == 107
        sector = issuer.headers(*SECTOR)

        def read_all() -> None:
            for rid in ids:
                for headers in ({}, sector):
                    answer = client.get(f"/fhir/{PPD}/{rid}", headers=headers)
                    if rid == gone and 3 in served.snapshot().releases:
                        assert answer.status_code == 410
                    else:
                        _same(answer, _expected(engine, rid))

        read_all()
        shadow = orjson.loads(client.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}").content)
        shadow.pop("meta")
        shadow["id"], shadow["description"] = "ward-a-copy", "a sector copy"
        publish(engine, [("sector", "ward-a", shadow)])  # release 2
        served.serve_newest()
        read_all()
        for _ in range(2):  # cached by the first: the second must still see no sector data
            assert client.get(f"/fhir/{PPD}/ward-a-copy", headers=sector).status_code == 200
            assert client.get(f"/fhir/{PPD}/ward-a-copy").status_code == 404
        assert import_fest(engine, followup).release_id == 3
        served.serve_newest()
        read_all()
        renamed = client.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}", headers=sector).json()
        assert renamed["name"] == "Certican Nyttnavn tab" and renamed["meta"]["versionId"] == "2"
        rollback(engine, 1)  # release 4
        served.serve_newest()
        assert served.snapshot().releases == (2, 4)
        read_all()
        back = client.get(f"/fhir/{PPD}/{CERTICAN_PACKAGE}").json()
        assert back["meta"]["versionId"] == "3" and back["name"] != "Certican Nyttnavn tab"
        assert client.get(f"/fhir/{PPD}/{gone}").json()["meta"]["versionId"] == "2"
        assert client.get(f"/fhir/{PPD}/ward-a-copy").status_code == 404
        assert client.get(f"/fhir/{PPD}/ward-a-copy", headers=sector).json()["description"] == "a sector copy"
