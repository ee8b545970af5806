"""GET /fest/m30: the e-prescription chain downloads M30 over HTTP, full or since its last HentetDato."""

from __future__ import annotations

import gzip
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from tests.conftest import REAL_FEST, REAL_HENTET_DATO
from tests.exporters.trees import differences
from tests.server.conftest import write_followup


def test_the_full_delivery_gzip_or_plain_equal_to_what_came_in(api: TestClient, tmp_path: Path) -> None:
    packed = api.get("/fest/m30", headers={"Accept-Encoding": "gzip"})
    assert packed.status_code == 200, packed.text
    assert packed.headers["content-type"] == "application/xml; charset=utf-8"
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.headers["content-disposition"] == 'attachment; filename="fest251.xml"'
    plain = api.get("/fest/m30", headers={"Accept-Encoding": "identity"})
    assert plain.status_code == 200 and "content-encoding" not in plain.headers
    assert plain.content == packed.content  # the client unpacked the gzip one
    assert int(packed.headers["content-length"]) < len(plain.content) / 4
    (tmp_path / "m30.xml").write_bytes(plain.content)
    assert differences(REAL_FEST, tmp_path / "m30.xml") == []


def test_a_nightly_check_costs_a_304(api: TestClient) -> None:
    first = api.get("/fest/m30")
    again = api.get("/fest/m30", headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_since_the_delivery_served_is_only_hentet_dato(api: TestClient) -> None:
    r = api.get("/fest/m30", params={"since": REAL_HENTET_DATO})
    assert r.status_code == 200
    assert r.text.endswith(f"<HentetDato>{REAL_HENTET_DATO}</HentetDato>\n</FEST>\n")
    assert "<Kat" not in r.text


def test_an_unknown_or_empty_since_is_a_400_operation_outcome(api: TestClient) -> None:
    for since, words in (
        ("2017-04-12", "no FEST delivery here had HentetDato '2017-04-12'"),
        (" ", "since is empty"),
    ):
        r = api.get("/fest/m30", params={"since": since})
        assert r.status_code == 400
        outcome = r.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert outcome["issue"][0]["code"] == "invalid" and words in outcome["issue"][0]["diagnostics"]


def test_a_new_release_gives_a_new_delivery_and_an_incremental_one(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path
) -> None:
    engine, client = fresh_api
    before = client.get("/fest/m30")
    followup, dropped = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    import_fest(engine, followup)
    client = TestClient(create_app(engine))
    after = client.get("/fest/m30")
    assert after.headers["etag"] != before.headers["etag"]
    (tmp_path / "after.xml").write_bytes(after.content)
    expected = tmp_path / "expected.xml"
    expected.write_bytes(gzip.decompress(followup.read_bytes()))
    assert differences(expected, tmp_path / "after.xml") == []

    since = client.get("/fest/m30", params={"since": REAL_HENTET_DATO})
    assert since.status_code == 200
    assert (
        since.text.count("<OppfLegemiddelpakning>") == 3
    )  # Certican anew, its old listing and the dropped one expired
    assert since.text.count('<Status V="U" DN="Utgått oppføring"/>') == 2
    assert "Certican Disperg tab 0,1 mg (ny)" in since.text


def test_an_export_whose_process_dies_is_a_503_and_the_next_ask_tries_again(
    fresh_api: tuple[Engine, TestClient], tmp_path: Path
) -> None:
    engine, client = fresh_api
    exporter = client.app.state.m30.exporter  # type: ignore[attr-defined]
    assert exporter.url is not None  # a store in a file: each export in a child process
    good, exporter.url = exporter.url, f"sqlite:///{tmp_path / 'gone' / 'store.db'}"
    r = client.get("/fest/m30", params={"since": REAL_HENTET_DATO})
    assert r.status_code == 503
    assert r.json()["issue"][0]["code"] == "transient"
    assert r.json()["issue"][0]["diagnostics"] == "the M30 export stopped before it finished; try again"
    exporter.url = good
    again = client.get("/fest/m30", params={"since": REAL_HENTET_DATO})
    assert again.status_code == 200 and again.text.endswith("</FEST>\n")
