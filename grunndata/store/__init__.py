"""The tiered, release-versioned resource store (SQLite by default, PostgreSQL by URL).

Outside code imports these names from here, not from the modules: `db` (URLs, connections),
`releases` (the write side: build, activate, roll back), `reads` (snapshots, reads, search,
history), `searchparams` (the one table of search parameters), `national` (the ids and codes
sector data is checked against), `probes` (the catalogue's availability history), `models`.
"""

from grunndata.store.db import connect, open_connection, resolve_url
from grunndata.store.models import Owner
from grunndata.store.national import (
    Key,
    Line,
    NationalCodeSystem,
    NationalKeys,
    registered_tier,
    reserved_organization_ids,
    reserved_organization_sentence,
    served_elsewhere,
)
from grunndata.store.probes import ProbeTotals
from grunndata.store.probes import record as record_probes
from grunndata.store.probes import totals as probe_totals
from grunndata.store.reads import (
    OWNER_SOURCE,
    Clause,
    Entitled,
    SearchError,
    Snapshot,
    SortKey,
    Version,
    all_of_type,
    current_snapshot,
    date_range,
    instant,
    may_read,
    read,
    release_lines,
    served,
)
from grunndata.store.releases import (
    ReleaseBuilder,
    StoredVersion,
    Tally,
    active_releases,
    list_releases,
    read_active,
    rollback,
    served_counts,
)
from grunndata.store.searchparams import (
    SEARCH_PARAMS,
    TIER_SYSTEM,
    IndexRow,
    SearchParam,
    index_rows,
    lookup,
    params_for,
)

__all__ = [
    "OWNER_SOURCE",
    "SEARCH_PARAMS",
    "TIER_SYSTEM",
    "Clause",
    "Entitled",
    "IndexRow",
    "Key",
    "Line",
    "NationalCodeSystem",
    "NationalKeys",
    "Owner",
    "ProbeTotals",
    "ReleaseBuilder",
    "SearchError",
    "SearchParam",
    "Snapshot",
    "SortKey",
    "StoredVersion",
    "Tally",
    "Version",
    "active_releases",
    "all_of_type",
    "connect",
    "current_snapshot",
    "date_range",
    "index_rows",
    "instant",
    "list_releases",
    "lookup",
    "may_read",
    "open_connection",
    "params_for",
    "probe_totals",
    "read",
    "read_active",
    "record_probes",
    "registered_tier",
    "release_lines",
    "reserved_organization_ids",
    "reserved_organization_sentence",
    "resolve_url",
    "rollback",
    "served",
    "served_counts",
    "served_elsewhere",
]
