"""The tiered, release-versioned resource store (SQLite by default, PostgreSQL by URL)."""

from grunndata.store.db import connect, resolve_url
from grunndata.store.releases import (
    ReleaseBuilder,
    StoredVersion,
    Tally,
    list_releases,
    read_active,
    reindex,
    rollback,
    served_counts,
)

__all__ = [
    "ReleaseBuilder",
    "StoredVersion",
    "Tally",
    "connect",
    "list_releases",
    "read_active",
    "reindex",
    "resolve_url",
    "rollback",
    "served_counts",
]
