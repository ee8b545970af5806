"""A digest of every table of a store, to show two imports made the same store.

    python benchmarks/store_digest.py sqlite:///a.db [sqlite:///b.db]

Every row of every table of the store's schema (store/models.py), in primary-key order, hashed per
table; what differs between two runs of the same import by nature is masked: instants (DATETIME
columns, and `lastUpdated` in JSON), the importing process (`pid`, `host`) and the report's `seconds`. With two stores it
prints the tables that differ and exits 1 when any does.
"""

from __future__ import annotations

import hashlib
import sys
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import DateTime, select
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import grunndata.store.models  # noqa: F401  (the tables)
from grunndata.store import connect

MASKED_COLUMNS = frozenset({"pid", "host"})
# in JSON: how long the import took, and an R4 body's meta.lastUpdated (made at activation)
MASKED_KEYS = frozenset({"seconds", "lastUpdated"})


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in MASKED_KEYS}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, (bytes, memoryview)):
        try:
            return _plain(orjson.loads(value))
        except orjson.JSONDecodeError:
            return bytes(value).hex()
    if isinstance(value, (datetime, date)):
        return "<instant>"
    return value


def store_digest(engine: Engine) -> dict[str, str]:
    """Table name -> sha256 of its rows (masked as the module says), for every table of the schema."""
    out: dict[str, str] = {}
    with engine.connect() as conn:
        for table in SQLModel.metadata.sorted_tables:
            digest = hashlib.sha256()
            keep = [
                c for c in table.columns if c.name not in MASKED_COLUMNS and not isinstance(c.type, DateTime)
            ]
            order = list(table.primary_key.columns) or keep
            rows = conn.execute(select(*keep).order_by(*order)).yield_per(2000)
            n = 0
            for row in rows:
                digest.update(orjson.dumps([_plain(v) for v in row], option=orjson.OPT_SORT_KEYS))
                n += 1
            out[table.name] = f"{n}:{digest.hexdigest()[:16]}"
    return out


def main() -> None:
    digests = []
    for url in sys.argv[1:]:
        engine = connect(url)
        digests.append(store_digest(engine))
        engine.dispose()
    for name in digests[0]:
        values = [d.get(name) for d in digests]
        mark = "" if len(set(values)) == 1 else "   DIFFERS"
        print(f"{name:24} {'  '.join(str(v) for v in values)}{mark}")
    if len(digests) > 1 and any(d != digests[0] for d in digests[1:]):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
