"""The store's tables: owners, releases, resource versions, release manifests, search index.

A resource version is written once and never changed; a release is a manifest (the set of
resource versions it serves). Activating a release flips one status row, so a release becomes
visible atomically. A rollback is a release too (kind `rollback`): the earlier release's manifest,
with a new version where the content changes back and a removal where it serves less, so the
history is append-only and no activation time moves (store/releases.py `rollback`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, Column, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlmodel import Field, SQLModel

TIERS = ("national", "sector", "supplementary")
# staged: written and checked, served to no client until `grunndata activate`; discarded: a staged
# release dropped unserved (its record kept, its data removed)
RELEASE_STATUSES = (
    "building", "staged", "active", "superseded", "failed", "rolled-back", "discarded", "pruned",
)  # fmt: skip
PRUNED = "pruned"  # its manifest and the versions only it served are gone (store/prune.py); its row stays


class Owner(SQLModel, table=True):
    """Who publishes data: DMP for the national tier, pharmacies or vendors for the others."""

    id: str = Field(primary_key=True)
    name: str
    tier: str


class Release(SQLModel, table=True):
    """One import: what came in, from whom, how it went, and what it counted."""

    id: int | None = Field(default=None, primary_key=True)
    source: str  # fest, safest, sector, supplementary
    kind: str  # full or incremental
    tier: str
    owner_id: str = Field(foreign_key="owner.id")
    hentet_dato: str | None = None  # FEST HentetDato, verbatim
    status: str = "building"
    based_on: int | None = None  # the release that was active when this one was built
    file_name: str | None = None
    started_at: datetime
    ended_at: datetime | None = None
    activated_at: datetime | None = None
    message: str | None = None  # why it failed, in one sentence
    counts: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    report: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    pid: int | None = None
    host: str | None = None


class Resource(SQLModel, table=True):
    """One version of one resource, as the bytes we send. Never updated after its release is active."""

    __table_args__ = (
        UniqueConstraint("type", "id", "version"),
        # history reads newest first and stops at the page: (type,) last_updated, pk in that order
        Index("ix_resource_type_updated_pk", "type", "last_updated", "pk"),
        Index("ix_resource_updated_pk", "last_updated", "pk"),
    )

    pk: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    type: str
    id: str
    version: int
    tier: str
    owner_id: str
    release_id: int  # the release that created this version
    last_updated: datetime
    content_hash: str
    source_id: str | None = None  # FEST: the Oppf Id this version was listed under
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class ResourceR4(SQLModel, table=True):
    """A resource version's R4 body (SAFEST types only), made at import beside the version's R5 bytes.

    Its own table, so a store made before it gets it by create_all and serves the versions it
    lacks by making their R4 at the first read (server/r4view.py). Written once, like its version.
    """

    __tablename__ = "resource_r4"

    resource_pk: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    data: bytes = Field(sa_column=Column(LargeBinary, nullable=False))  # the R4 JSON as sent, meta included


class ReleaseEntry(SQLModel, table=True):
    """Membership of a resource version in a release: the release's manifest."""

    __tablename__ = "release_entry"
    # SQLite: the rows are the primary key's b-tree, not a rowid table beside it (a manifest row
    # is two integers; stored twice it took a third more room). Stores made before keep theirs.
    __table_args__ = (Index("ix_release_entry_resource", "resource_pk"), {"sqlite_with_rowid": False})

    release_id: int = Field(primary_key=True)
    resource_pk: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))


class SearchIndex(SQLModel, table=True):
    """A searchable value of a resource version: (parameter, value) -> version."""

    __tablename__ = "search_index"
    __table_args__ = (Index("ix_search_index_resource", "resource_pk"), {"sqlite_with_rowid": False})

    param: str = Field(primary_key=True)
    value: str = Field(primary_key=True)
    resource_pk: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))


class ResourceIndex(SQLModel, table=True):
    """A FHIR search-parameter value of a resource version (store/searchparams.py declares them)."""

    __tablename__ = "resource_index"
    __table_args__ = (
        # covering: a search reads matches from the index alone, without visiting the table
        Index("ix_resource_index_lookup", "param", "value", "system", "resource_pk"),
        Index("ix_resource_index_resource", "resource_pk"),
    )

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    resource_pk: int = Field(sa_column=Column(BigInteger, nullable=False))
    param: str  # "PackagedProductDefinition.identifier"
    system: str = ""  # token: the code system, "" when none
    value: str  # token: code; string: normalised text; reference: "Type/id"; uri
    exact: str | None = None  # string: the text as written (for :exact)


class ContentFilter(SQLModel, table=True):
    """A content filter (DMP's H-resept filters: translators/content_filters.py) that excludes a
    resource version from a release's filtered view.

    Per release, not per version: the time-dependent filters take the release's HentetDato as now,
    and a product's filters reach its packages, so the same bytes can be in one release's view
    and out of the next one's.
    """

    __tablename__ = "content_filter"

    release_id: int = Field(primary_key=True)
    resource_pk: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    code: str = Field(primary_key=True)


class Tombstone(SQLModel, table=True):
    """A resource a release stopped serving: the deletions in `_history` and the change feed."""

    release_id: int = Field(primary_key=True)
    type: str = Field(primary_key=True)
    id: str = Field(primary_key=True)
    resource_pk: int = Field(sa_column=Column(BigInteger, nullable=False))  # the last version served


class ExpiryNotice(SQLModel, table=True):
    """A delivery's notice that a listing expired (FEST `Status U`), kept as it came.

    The manifests say what stopped being served; the notice keeps what only FEST says about it
    (when the listing expired, in DMP's words), so an incremental M30 export can repeat it.
    """

    __tablename__ = "expiry_notice"

    release_id: int = Field(primary_key=True)
    catalogue: str = Field(primary_key=True)
    oppf_id: str = Field(primary_key=True)  # the listing's Oppf Id
    tidspunkt: str  # verbatim, as the delivery wrote it
    status_dn: str | None = None


class ServiceProbe(SQLModel, table=True):
    """One probe of one catalogued service: the history that availability is counted from."""

    __tablename__ = "service_probe"
    __table_args__ = (Index("ix_service_probe_service_checked", "service_id", "checked_at"),)

    id: int | None = Field(
        default=None,
        sa_column=Column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    )
    service_id: str
    checked_at: datetime  # aware, UTC
    up: bool
    latency_ms: float | None = None  # of the attempt that found it up; None when down
    status_code: int | None = None  # the last HTTP status seen; None when nothing answered
    message: str  # "ok" or why it is down, in one sentence


class ServiceAvailability(SQLModel, table=True):
    """Per catalogued service, the running count of its probes and the last one.

    Kept beside the history in the same transaction, so showing the catalogue costs one row per
    service however many probes have piled up.
    """

    __tablename__ = "service_availability"

    service_id: str = Field(primary_key=True)
    checks: int
    up: int
    last_checked: datetime  # aware, UTC
    last_up: bool
    last_latency_ms: float | None = None
    last_message: str


class BulkExport(SQLModel, table=True):
    """One FHIR Bulk Data `$export` job: what was asked, by which entitlement, how far it got and
    what it wrote. In the store, so every server process can answer its status (store/bulk.py)."""

    __tablename__ = "bulk_export"

    id: str = Field(primary_key=True)  # random: the status and file URLs name it
    # what makes two requests the same export: entitlement, snapshot, types and _since; unique,
    # so two processes asked at once make one row, and one export
    key: str = Field(sa_column=Column(String, nullable=False, unique=True))
    entitlement: str  # who may see it: whether a token was used, the sector scope, the owners
    request: str  # the kick-off URL, as the manifest repeats it
    snapshot: str  # the releases the files are made from (Snapshot.token of the entitlement's view)
    types: str  # comma-separated
    since: datetime | None = None
    status: str = "accepted"  # accepted, running, done, failed
    done: int = 0  # resources written so far
    total: int = 0  # resources to write
    created_at: datetime
    updated_at: datetime  # the child's last word: a job silent too long is given up
    transaction_time: datetime | None = None
    expires_at: datetime | None = None  # set when done: the files are removed after it
    output: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    deleted: list[dict[str, Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    error: str | None = None  # why it failed, in one sentence


class Subscription(SQLModel, table=True):
    """One R5 Subscription: what its owner asked for, whose data it may hear about, and how far
    its notifications got. In the store, so it survives a restart and every process sees it
    (store/subscriptions.py)."""

    __tablename__ = "subscription"
    __table_args__ = (Index("ix_subscription_owner", "owner"),)

    id: str = Field(primary_key=True)  # random: only its owner learns it
    owner: str  # the token's subject (else its client_id): only it reads, finds and deletes it
    status: str = "requested"  # requested, active, error, off
    topic: str  # the SubscriptionTopic's canonical URL
    channel: str  # rest-hook, websocket
    endpoint: str | None = None
    base_url: str = ""  # the FHIR base its client made it at: what notifications' URLs start with
    content: str = "id-only"  # empty, id-only, full-resource
    heartbeat_seconds: int | None = None
    timeout_seconds: int | None = None
    # the read entitlement every event is judged by: the sector scope, and the supplementary owners
    # ("*" all), as the token that made it granted them
    sector: bool = False
    supplementary: str = ""  # owner ids separated by commas
    filters: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # the Subscription as given, without id, meta, status and the channel parameters' values
    resource: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    # the channel parameters (rest-hook: HTTP headers, often a secret), never sent back in a read
    headers: list[list[str]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    end: datetime | None = None
    created_at: datetime
    updated_at: datetime
    events: int = 0  # the last eventNumber given (eventsSinceSubscriptionStart)
    delivered: int = 0  # every event up to this number was delivered (or is lost: `lost_through`)
    lost_through: int = 0  # events up to this number were dropped unsent (kept events bounded)
    attempts: int = 0  # failed sends since the last one that went through
    next_attempt: datetime | None = None  # no send before this (back-off after a failure)
    last_sent: datetime | None = None  # the last notification that went through (heartbeats count)
    error: str | None = None  # why the last send failed, in one sentence


class Subscriber(SQLModel, table=True):
    """What a subscriptions' owner may read, as the last token it used on the subscription routes
    showed it, and when: a notification sent with no token in hand is judged by it
    (store/subscriptions.py `seen`, server/subscriptions/bundles.py `current`). A table of its
    own, so a store made before it gains it by `create_all`."""

    __tablename__ = "subscriber"

    owner: str = Field(primary_key=True)  # Subscription.owner
    sector: bool = False
    supplementary: str = ""  # owner ids separated by commas ("*" all)
    seen_at: datetime


class SubscriptionEvent(SQLModel, table=True):
    """One event of one subscription: a served release that matched its topic, with the changed
    resources it may read (capped), numbered consecutively per subscription."""

    __tablename__ = "subscription_event"

    subscription_id: str = Field(primary_key=True)
    number: int = Field(primary_key=True)  # the eventNumber
    release_id: int
    tier: str  # the line the release belongs to
    owner: str
    created_at: datetime
    total: int = 0  # changed resources the subscriber may read, before the cap
    # ["Type", "id", version, "create|update|delete"], at most the cap of them
    changes: list[list[Any]] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))


class NotifierLease(SQLModel, table=True):
    """Which server process sends notifications now: the one whose lease has not run out."""

    __tablename__ = "notifier_lease"

    name: str = Field(primary_key=True)
    holder: str
    expires_at: datetime


class NotifierLine(SQLModel, table=True):
    """Per line (tier, owner), the last release events were made for: a release activated after
    it (a new one, or an older one made active again by a rollback) is next."""

    __tablename__ = "notifier_line"

    tier: str = Field(primary_key=True)
    owner: str = Field(primary_key=True)
    release_id: int
    activated_at: datetime


class WsBinding(SQLModel, table=True):
    """A websocket binding token (`$get-ws-binding-token`): which subscriptions a socket that
    presents it is bound to (a row each), until when; removed when a socket binds it (one use).
    Kept as its hash: the store never holds a usable token."""

    __tablename__ = "ws_binding"

    token_hash: str = Field(primary_key=True)
    subscription_id: str = Field(primary_key=True)
    expires_at: datetime
    # what the token that asked for it may read (a socket is sent no more): the sector, and the
    # supplementary owners joined by commas
    sector: bool = False
    supplementary: str = ""


class BulkExportTicket(SQLModel, table=True):
    """One `$export` kick-off: its status URL names the ticket, the ticket names the job it shares
    with every kick-off asking the same export. A cancel removes one ticket; the job goes with
    the last (store/bulk.py)."""

    __tablename__ = "bulk_export_ticket"

    id: str = Field(primary_key=True)  # random: this kick-off's status and file URLs name it
    job_id: str = Field(index=True)
    request: str  # this kick-off's URL, as its manifest repeats it
    created_at: datetime


# The tables as SQLAlchemy Core objects, for the queries the store writes by hand; short names,
# defined once (SQLModel's classes do not declare `__table__` to a type checker).
R = Resource.__table__  # type: ignore[attr-defined]  # resource versions: the bytes we send
R4 = ResourceR4.__table__  # type: ignore[attr-defined]  # R4 bodies of resource versions, made at import
M = ReleaseEntry.__table__  # type: ignore[attr-defined]  # a release's manifest
X = ResourceIndex.__table__  # type: ignore[attr-defined]  # FHIR search values per version
S = SearchIndex.__table__  # type: ignore[attr-defined]  # raw FEST search values per version
C = ContentFilter.__table__  # type: ignore[attr-defined]  # what a release's content filters exclude
T = Tombstone.__table__  # type: ignore[attr-defined]  # what a release expired
N = ExpiryNotice.__table__  # type: ignore[attr-defined]  # FEST Status U notices
REL = Release.__table__  # type: ignore[attr-defined]
OWN = Owner.__table__  # type: ignore[attr-defined]
P = ServiceProbe.__table__  # type: ignore[attr-defined]  # the catalogue's probe history
A = ServiceAvailability.__table__  # type: ignore[attr-defined]  # and its running totals
B = BulkExport.__table__  # type: ignore[attr-defined]  # FHIR Bulk Data export jobs
SUB = Subscription.__table__  # type: ignore[attr-defined]  # R5 subscriptions
SUBR = Subscriber.__table__  # type: ignore[attr-defined]  # their owners' entitlement as last seen
EV = SubscriptionEvent.__table__  # type: ignore[attr-defined]  # their events, kept for delivery and $events
LEASE = NotifierLease.__table__  # type: ignore[attr-defined]  # who sends notifications
NL = NotifierLine.__table__  # type: ignore[attr-defined]  # the last release notified per line
WS = WsBinding.__table__  # type: ignore[attr-defined]  # websocket binding tokens
BT = BulkExportTicket.__table__  # type: ignore[attr-defined]  # and each kick-off's ticket to one
