"""The tiered, release-versioned resource store (SQLite by default, PostgreSQL by URL).

Outside code imports this front: who may read what (`access.py`), reads and snapshots
(`read.py`), search and includes (`search.py`), history (`history.py`), `$everything`
(`everything.py`), and the write side (`releases.py`).
"""

from grunndata.store.access import Entitled, may_read
from grunndata.store.db import connect, resolve_url
from grunndata.store.everything import everything_of
from grunndata.store.history import HistoryItem, history, newest_release, parse_cursor
from grunndata.store.read import (
    OWNER_SOURCE,
    SearchError,
    Snapshot,
    Version,
    all_of_type,
    current_snapshot,
    ever_served,
    fest_made_ids,
    instant,
    read,
    read_many,
    release_lines,
    release_reports,
    served,
    snapshot_exists,
    vread,
)
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
from grunndata.store.search import (
    Clause,
    Include,
    SortKey,
    clause_matches,
    date_range,
    included,
    index_values,
    search,
)

__all__ = [
    "OWNER_SOURCE",
    "Clause",
    "Entitled",
    "HistoryItem",
    "Include",
    "ReleaseBuilder",
    "SearchError",
    "Snapshot",
    "SortKey",
    "StoredVersion",
    "Tally",
    "Version",
    "all_of_type",
    "clause_matches",
    "connect",
    "current_snapshot",
    "date_range",
    "ever_served",
    "everything_of",
    "fest_made_ids",
    "history",
    "included",
    "index_values",
    "instant",
    "list_releases",
    "may_read",
    "newest_release",
    "parse_cursor",
    "read",
    "read_active",
    "read_many",
    "reindex",
    "release_lines",
    "release_reports",
    "resolve_url",
    "rollback",
    "search",
    "served",
    "served_counts",
    "snapshot_exists",
    "vread",
]
