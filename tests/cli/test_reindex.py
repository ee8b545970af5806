"""`grunndata reindex`: after the search parameters change, the stored releases are indexed anew
from their resources, and a search answers as it did after the import."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import delete, select, update

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.store import connect
from grunndata.store.models import Resource, ResourceIndex
from grunndata.store.searchparams import INDEXED_TYPES
from tests.cli.test_bad_input import run_cli
from tests.conftest import REAL_FEST, require
from tests.server.conftest import ATC, VARENR

X = ResourceIndex.__table__  # type: ignore[attr-defined]
R = Resource.__table__  # type: ignore[attr-defined]
MPD, PPD = "MedicinalProductDefinition", "PackagedProductDefinition"
SEARCHES = (
    f"/fhir/{PPD}?identifier={VARENR}|014884",
    f"/fhir/{MPD}?product-classification={ATC}|&_revinclude={PPD}:package-for",
    f"/fhir/{MPD}?name=a&_count=100&_total=accurate",
    "/fhir/SubstanceDefinition?name:contains=ol&_count=200",
    "/fhir/Ingredient?_summary=count",
    "/fhir/ConceptMap?_count=100&_elements=url,status",  # the FEST id maps are made from index rows
)


def answers(engine: Any) -> dict[str, tuple[Any, list[str]]]:
    """Each search's total and entries (a fresh server: nothing cached from before)."""
    with TestClient(create_app(engine, warm=False)) as client:
        found = {}
        for path in SEARCHES:
            body = client.get(path).json()
            assert body["resourceType"] == "Bundle", body
            found[path] = (body.get("total"), [e["fullUrl"] for e in body.get("entry", [])])
        return found


def index(engine: Any) -> list[tuple[Any, ...]]:
    with engine.connect() as conn:
        columns = (X.c.resource_pk, X.c.param, X.c.system, X.c.value, X.c.exact)
        return sorted(tuple(r) for r in conn.execute(select(*columns)))


def test_reindex_rebuilds_damaged_index_rows_and_searches_answer_as_before(store_url: str) -> None:
    engine = connect(store_url)
    import_fest(engine, require(REAL_FEST))
    before, rows = answers(engine), index(engine)
    assert before[f"/fhir/{PPD}?identifier={VARENR}|014884"][1] != []
    assert before["/fhir/Ingredient?_summary=count"][0] > 0
    with engine.begin() as conn:  # an index made by older search parameters: some rows gone, some wrong
        conn.execute(delete(X).where(X.c.param.like(f"{MPD}.%")))
        conn.execute(update(X).where(X.c.param == f"{PPD}.identifier").values(value="nothing"))
        conn.execute(delete(X).where(X.c.param == "Ingredient.for"))
        versions = conn.execute(select(R.c.pk).where(R.c.type.in_(INDEXED_TYPES))).all()
    damaged = answers(engine)
    assert damaged[f"/fhir/{PPD}?identifier={VARENR}|014884"][1] == []
    assert damaged != before

    result = run_cli("reindex", "--db", store_url)
    assert result.returncode == 0, result.stderr
    assert " ".join(result.stdout.split()) == (
        f"Reindexed {len(versions):,} stored FHIR resource versions; a running server keeps what it "
        "made from the old index (cached searches, FEST id maps) until its next release: restart it."
    )
    assert index(engine) == rows
    assert answers(engine) == before
    engine.dispose()


def test_reindex_of_a_database_it_cannot_reach_is_one_sentence() -> None:
    result = run_cli("reindex", "--db", "postgresql://nobody@127.0.0.1:1/none")
    assert result.returncode == 2
    assert result.stderr.startswith(
        "error: cannot open the database postgresql+psycopg://nobody@127.0.0.1:1/none"
    )
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_reindex_or_an_import_while_the_store_is_being_written_is_refused_with_one_sentence(
    tmp_path: Any,
) -> None:
    """The lock names no holder, so the sentence names both writers an operator may have started."""
    import fcntl
    import os

    db = tmp_path / "busy.db"
    import_fest(connect(f"sqlite:///{db}"), require(REAL_FEST))
    held = os.open(f"{db}.import-lock", os.O_CREAT | os.O_RDWR, 0o644)
    fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a running import or reindex holds it
    try:
        busy = "error: another import or reindex is running on this store; try again when it has finished\n"
        done = run_cli("reindex", "--db", f"sqlite:///{db}")
        assert (done.returncode, done.stderr) == (2, busy)
        done = run_cli("import", "fest", str(require(REAL_FEST)), "--db", f"sqlite:///{db}")
        assert (done.returncode, done.stderr) == (2, busy)
    finally:
        os.close(held)
    assert run_cli("reindex", "--db", f"sqlite:///{db}").returncode == 0
