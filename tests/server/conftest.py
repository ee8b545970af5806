"""A FHIR server over a store holding the real 2017 extract, on SQLite and on PostgreSQL."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.store import connect
from grunndata.store.releases import ReleaseBuilder
from grunndata.store.searchparams import index_rows
from tests.conftest import REAL_FEST, fresh_pg_database, require
from tests.server.hooks import Receiver, receiving

CERTICAN_PACKAGE = "CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A"  # Legemiddelpakning, varenr 014884
CERTICAN_BRAND = "F2CEF840-A295-4A7A-9CCD-5873D846C3BD"  # its LegemiddelMerkevare
VARENR = "http://dmp.no/fhir/NamingSystem/fest-varenummer"
GTIN = "https://www.gs1.org/gtin"
ATC = "http://www.whocc.no/atc"


def fhir_json(client: TestClient, path: str, status: int = 200, **headers: str) -> dict[str, Any]:
    """The JSON of a GET answered with `status` in application/fhir+json."""
    r = client.get(path, headers=headers)
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/fhir+json; charset=utf-8"
    body: dict[str, Any] = r.json()
    return body


def publish(engine: Engine, lines: Iterable[tuple[str, str, dict[str, Any]]]) -> None:
    """Serve `(tier, owner, resource)`s beside the national data: one full release per line, each
    resource indexed as an import indexes it."""
    given = list(lines)
    for tier, owner in sorted({(t, o) for t, o, _ in given}):
        with ReleaseBuilder(engine, tier, "full", tier, owner, owner) as builder:
            for _, _, resource in (x for x in given if x[:2] == (tier, owner)):
                body = orjson.dumps(resource)
                builder.put(
                    resource["resourceType"],
                    resource["id"],
                    body,
                    hashlib.sha256(body).hexdigest(),
                    fhir_index=index_rows(resource),
                )
            builder.finish(None, {})


def served_store(url: str) -> Engine:
    engine = connect(url)
    import_fest(engine, require(REAL_FEST))
    return engine


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A client of the FHIR API over the real extract (read-only: tests must not import into it)."""
    if request.param == "sqlite":
        engine = served_store(f"sqlite:///{tmp_path_factory.mktemp('api') / 'store.db'}")
        with TestClient(create_app(engine)) as client:
            yield client
        engine.dispose()
        return
    with fresh_pg_database() as url:
        engine = served_store(url)
        with TestClient(create_app(engine)) as client:
            yield client
        engine.dispose()


@pytest.fixture
def fresh_api(engine: Engine) -> Iterator[tuple[Engine, TestClient]]:
    """A client over its own store with the real extract, for tests that import more releases."""
    import_fest(engine, require(REAL_FEST))
    app = create_app(engine)
    with TestClient(app) as client:
        yield engine, client


def write_followup(tmp_path: Path, new_name: str) -> tuple[Path, str]:
    """The real extract with the Certican package renamed and one package nothing refers to dropped.

    Returns the delivery and the FEST Id of the dropped package.
    """
    from grunndata.m30 import FestReader
    from tests.deliveries import relisted, set_text, write

    reader = FestReader(REAL_FEST)
    pairs = list(reader.entries())
    referenced = {target for _, facts in pairs for _, target, _ in facts.refs}
    dropped = next(
        e.key
        for e, _ in pairs
        if e.catalogue == "Legemiddelpakning"
        and e.key not in referenced
        and e.key != "ID_" + CERTICAN_PACKAGE
    )
    out = []
    for e, _ in pairs:
        if e.key == dropped:
            continue
        if e.key == "ID_" + CERTICAN_PACKAGE:
            e = relisted(
                e,
                "ID_11111111-2222-3333-4444-555555555555",
                lambda p: set_text(p[0], "NavnFormStyrke", new_name),
            )
        out.append(e)
    return write(tmp_path / "followup.xml.gz", "2017-04-26T03:00:00", out), dropped


@pytest.fixture
def hook() -> Iterator[Receiver]:
    """A local rest-hook receiver on 127.0.0.1 (tests/server/hooks.py), for the subscription tests."""
    with receiving() as receiver:
        yield receiver
