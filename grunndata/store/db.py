"""Where the store lives: a SQLite file by default, PostgreSQL by URL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event, inspect
from sqlalchemy.engine import Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, DBAPIError, OperationalError
from sqlmodel import SQLModel, create_engine

from grunndata.errors import StoreError
from grunndata.settings import DEFAULT_DB
from grunndata.store import models  # noqa: F401  (registers the tables)


def resolve_url(url: str | None = None) -> str:
    """`url` (the CLI's `--db`, else GRUNNDATA_DB, given by the caller), else a SQLite file in the
    working directory."""
    url = url or DEFAULT_DB
    if url.startswith(("postgresql://", "postgres://")):
        url = "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def open_connection(engine: Engine) -> Connection:
    """A connection from `engine`; StoreError with a sentence when the database cannot be reached."""
    try:
        return engine.connect()
    except OperationalError as e:
        raise StoreError(f"cannot reach the database: {str(e.orig).strip().splitlines()[0]}") from None


def _add_indexes(engine: Engine) -> None:
    """Indexes added after a store was made (create_all only makes missing tables, with theirs)."""
    for table in SQLModel.metadata.sorted_tables:
        for index in table.indexes:
            try:
                index.create(engine, checkfirst=True)
            except DBAPIError as e:  # another process starting at the same moment made it first
                if "already exists" not in str(e.orig):
                    raise


def connect(url: str | None = None, *, create: bool = True, must_exist: bool = False) -> Engine:
    """An engine for the store at `url`, with the tables created; StoreError if unreachable.

    `must_exist`: the store must be there already (commands that read a store, or change one that
    was imported into): a missing SQLite file, an empty database or something that is no store is
    a StoreError, and nothing is made."""
    resolved = resolve_url(url)
    try:
        parsed = make_url(resolved)
    except ArgumentError:
        raise StoreError(
            f"not a database URL: {resolved!r} (use sqlite:///FILE or postgresql://...)"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            parent = Path(parsed.database).parent
            if not parent.exists():
                raise StoreError(f"the folder for the SQLite file does not exist: {parent}")
            if must_exist and not Path(parsed.database).is_file():
                raise StoreError(
                    f"there is no store at {parsed.database}: import a delivery into it first "
                    "(grunndata import fest PATH), or name another with --db or GRUNNDATA_DB"
                )
        engine = create_engine(
            resolved, connect_args={"check_same_thread": False}, pool_size=40, max_overflow=24
        )
        event.listen(engine, "connect", _sqlite_pragmas)
    elif parsed.get_backend_name() == "postgresql":
        # times are stored without zone: make the session's zone UTC, whatever the server's default
        engine = create_engine(
            resolved,
            pool_pre_ping=True,
            pool_size=16,
            max_overflow=32,
            connect_args={"options": "-c timezone=UTC"},
        )
    else:
        raise StoreError(f"unsupported database {parsed.get_backend_name()!r}: use SQLite or PostgreSQL")
    if must_exist:
        _check_is_store(engine, parsed.render_as_string(hide_password=True))
    if create:
        try:
            SQLModel.metadata.create_all(engine)
            _add_indexes(engine)
        except OperationalError as e:
            reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
            raise StoreError(
                f"cannot open the database {parsed.render_as_string(hide_password=True)}: {reason}"
            ) from None
    return engine


def _check_is_store(engine: Engine, shown: str) -> None:
    """StoreError unless the database at `engine` holds a store (its release table)."""
    try:
        with engine.connect() as conn:
            found = inspect(conn).has_table("release")
    except DatabaseError as e:  # OperationalError (unreachable) included
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        raise StoreError(f"cannot open the database {shown}: {reason}") from None
    if not found:
        raise StoreError(
            f"{shown} holds no grunndata store (no releases table): import a delivery into it first, "
            "or name another with --db or GRUNNDATA_DB"
        )
