"""Shared fixtures: ../shared data, and stores on SQLite and PostgreSQL.

PostgreSQL tests run against 127.0.0.1:5432 (user postgres, trust auth), each in a fresh
database. Without a reachable server they skip, except on CI (CI set), where they fail.
"""

from __future__ import annotations

import gzip
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy import create_engine, text
from sqlalchemy.engine import Engine

from grunndata.store import connect

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
REAL_FEST = SHARED / "data" / "fest-real" / "fest-mini-2017.xml.gz"
REAL_FEST_AS_PUBLISHED = SHARED / "data" / "fest-real" / "fest-mini-2017-as-published.xml.gz"
SCHEMAS = SHARED / "schemas" / "fest-m30"
M30_XSD = SCHEMAS / "R1808-eResept-M30-2014-12-01" / "ER-M30-2014-12-01.xsd"
REAL_HENTET_DATO = "2017-04-12T18:26:27.336Z"
REAL_FEST_COUNTS = {  # Oppf* elements per catalogue in the file (zcat | grep -o "<m30:Oppf[A-Za-z]*>" | uniq -c)
    "LegemiddelMerkevare": 75,
    "Legemiddelpakning": 107,
    "Virkestoff": 126,
    "LegemiddelVirkestoff": 3,
    "Refusjon": 26,
    "Vilkar": 15,
    "VarselSlv": 10,
    "Byttegruppe": 16,
    "Interaksjon": 25,
}
# Servers made in tests do not prepare each snapshot's M30 file in the background (a child process
# per app, doubling the suite's time); tests/server/test_warm.py turns it on where it is tested.
os.environ.setdefault("GRUNNDATA_WARM", "0")

PG_ADMIN_URL = os.environ.get("GRUNNDATA_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def pytest_addoption(parser: pytest.Parser, pluginmanager: pytest.PytestPluginManager) -> None:
    """With pytest-xdist off (`-p no:xdist`) or not installed, pyproject's `-n 2 --dist loadfile`
    are still accepted, and ignored: the suite runs in this one process."""
    if pluginmanager.has_plugin("xdist"):
        return
    group = parser.getgroup("xdist", "pytest-xdist is off: these are accepted and ignored")
    # pytest keeps lowercase short options for itself and its plugins; xdist registers `-n` this way too
    group._addoption("-n", "--numprocesses", dest="numprocesses", help="ignored without pytest-xdist")
    group.addoption("--dist", dest="dist", default="no", help="ignored without pytest-xdist")


def pytest_report_header(config: pytest.Config) -> str | None:
    if SHARED.exists():
        return None
    return (
        f"{SHARED} not found: every test that reads ../shared skips (pytest -rs says why each test skipped)"
    )


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """One line saying why so many tests skipped, when ../shared is the reason."""
    skipped = terminalreporter.stats.get("skipped", [])
    absent = sum("the tests read ../shared" in str(getattr(r, "longrepr", "")) for r in skipped)
    if absent:
        terminalreporter.write_line(
            f"{absent} tests skipped because {SHARED} is absent; pytest -rs lists every skip with its reason"
        )


def require(path: Path) -> Path:
    """`path` from ../shared; a failure on CI, a skip elsewhere, when it is missing."""
    if not path.exists():
        message = f"{path} not found: the tests read ../shared beside the repository"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="session")
def xsd() -> etree.XMLSchema:
    """The official M30 2014-12-01 schema, for exports that must be valid against it."""
    return etree.XMLSchema(etree.parse(str(require(M30_XSD))))


@pytest.fixture(scope="session")
def real_fest_xml() -> bytes:
    """The real 2017 extract (namespaces repaired), decompressed."""
    return gzip.decompress(require(REAL_FEST).read_bytes())


def _pg_available() -> str | None:
    try:
        eng = create_engine(PG_ADMIN_URL, connect_args={"connect_timeout": 3})
        with eng.connect() as conn:
            conn.execute(text("SELECT 1"))
        eng.dispose()
        return None
    except Exception as e:  # noqa: BLE001
        return str(e).splitlines()[0]


_PG_PROBLEM: list[str | None] = []


def _pg_problem() -> str | None:
    if not _PG_PROBLEM:
        _PG_PROBLEM.append(_pg_available())
    return _PG_PROBLEM[0]


@contextmanager
def fresh_pg_database() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards; skips (or fails on CI) without a server."""
    problem = _pg_problem()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL at 127.0.0.1:5432 is required on CI: {problem}")
        pytest.skip(f"no PostgreSQL at 127.0.0.1:5432: {problem}")
    name = "grunndata_test_" + uuid.uuid4().hex[:10]
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database, dropped afterwards."""
    with fresh_pg_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty store, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    return request.getfixturevalue("pg_url")


@pytest.fixture
def engine(store_url: str) -> Iterator[Engine]:
    eng = connect(store_url)
    yield eng
    eng.dispose()
