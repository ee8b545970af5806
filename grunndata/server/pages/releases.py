"""The releases for people (`/leveranser`): every line's history, one release's page with its whole
report (a refused or failed import's every problem with its place), and two releases compared
(store/diff.py's diff, element by element; nothing here diffs on its own).

Who may know of which release is `/releases`' rule (server/imports.py `may_see_release`): a staged
or discarded release only with its line's import right. The pages show the national line in full;
of a sector or supplementary line only that a release exists, its status and its dates."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from sqlalchemy.engine import Connection, Engine

from grunndata.store import list_releases, release_row, served_totals
from grunndata.store.diff import ElementChange, element_changes, release_diff, release_pair, require_held
from grunndata.store.releases import item_text

OSLO = ZoneInfo("Europe/Oslo")
MONTHS = (
    "januar", "februar", "mars", "april", "mai", "juni",
    "juli", "august", "september", "oktober", "november", "desember",
)  # fmt: skip
STATUS = {
    "active": "aktiv",
    "superseded": "erstattet",
    "rolled-back": "rullet tilbake",
    "staged": "iscenesatt",
    "discarded": "forkastet",
    "pruned": "beskåret",
    "failed": "feilet",
    "building": "under bygging",
}
REFUSED = "avvist"  # a failed release whose delivery the import refused
TIERS = {"national": "nasjonal", "sector": "sektor", "supplementary": "tillegg"}
CHANGES = {"new": "ny", "changed": "endret", "expired": "utgått"}
SHOWN_ENTRIES = 1000  # entries listed on one page of a comparison (`start` pages on)
SHOWN_ELEMENTS = 50  # changed elements listed per entry (the count says how many there are)
SHOWN_VALUE = 400  # characters of one old or new value
NO_DATA = ("failed", "discarded", "pruned", "building")  # statuses whose release holds nothing to compare

MaySee = Callable[[Any], bool]


def when(t: datetime | None) -> str:
    """A stored instant (UTC) as people in Norway read it: "7. desember 2026 kl. 17.35"."""
    if t is None:
        return ""
    local = (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(OSLO)
    return f"{local.day}. {MONTHS[local.month - 1]} {local.year} kl. {local:%H.%M}"


def hentet(value: str | None) -> str:
    """FEST's HentetDato (`2017-04-12T18:26:27.336Z`) read the same way; as written if unreadable."""
    if not value:
        return ""
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if t.tzinfo is None:  # FEST's own clock: Norwegian time
        t = t.replace(tzinfo=OSLO)
    return when(t)


@dataclass(frozen=True, slots=True)
class Release:
    """One release as the pages show it; `content` False: its existence and dates only."""

    id: int
    status: str
    status_text: str
    source: str
    kind: str
    tier: str
    owner: str
    started: str
    ended: str
    activated: str
    hentet: str
    hentet_raw: str
    based_on: int | None
    content: bool
    file: str = ""
    message: str = ""
    served: dict[str, int] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    problem_count: int = 0
    warnings: list[str] = field(default_factory=list)
    warning_count: int = 0

    @property
    def line(self) -> str:
        return f"{TIERS.get(self.tier, self.tier)} ({self.owner})"

    @property
    def has_data(self) -> bool:
        return self.status not in NO_DATA


def _status_text(r: Any) -> str:
    if r.status == "failed" and (r.message or "").startswith("refused"):
        return REFUSED
    return str(STATUS.get(r.status, r.status))


def release_view(r: Any, *, report: bool = False) -> Release:
    """`r` (a release row) for a page; only a national release's content (counts, message, report)."""
    content = r.tier == "national"
    head: dict[str, Any] = {
        "id": r.id,
        "status": r.status,
        "status_text": _status_text(r),
        "source": r.source,
        "kind": r.kind,
        "tier": r.tier,
        "owner": r.owner_id,
        "started": when(r.started_at),
        "ended": when(r.ended_at),
        "activated": when(r.activated_at),
        "hentet": hentet(r.hentet_dato),
        "hentet_raw": r.hentet_dato or "",
        "based_on": r.based_on,
        "content": content,
    }
    if not content:
        return Release(**head)
    counts = {t: c for t, c in sorted((r.counts or {}).items()) if isinstance(c, dict)}
    more: dict[str, Any] = {
        "file": r.file_name or "",
        "message": r.message or "",
        "served": served_totals(counts) if counts else {},
        "counts": counts,
    }
    if report:
        whole = r.report or {}
        for kind in ("problems", "warnings"):
            items = whole.get(kind) or []
            more[kind] = [item_text(i) for i in items]
            more[f"{kind[:-1]}_count"] = int(whole.get(f"{kind[:-1]}_count", len(items)))
    return Release(**head, **more)


@dataclass(frozen=True, slots=True)
class Line:
    tier: str
    owner: str
    releases: list[Release]

    @property
    def name(self) -> str:
        return f"{TIERS.get(self.tier, self.tier)} ({self.owner})"


def lines(engine: Engine, may_see: MaySee) -> list[Line]:
    """Every line's releases the asker may know of, newest first; the national line first."""
    by_line: dict[tuple[str, str], list[Release]] = {}
    for r in list_releases(engine, with_report=False):
        if may_see(r):
            by_line.setdefault((r.tier, r.owner_id), []).append(release_view(r))
    order = sorted(by_line, key=lambda k: (k[0] != "national", k))
    return [Line(t, o, list(reversed(by_line[(t, o)]))) for t, o in order]


def one_release(engine: Engine, number: int, may_see: MaySee) -> Release | None:
    r = release_row(engine, number)
    return release_view(r, report=True) if r is not None and may_see(r) else None


def default_pair(national: list[Release]) -> tuple[int, int] | None:
    """What "compare" shows unasked: the newest staged release against the active one (what it
    would change), else the active release against the one it replaced."""
    active = next((r for r in national if r.status == "active"), None)
    if active is None:
        return None
    staged = [r for r in national if r.status == "staged" and r.based_on == active.id]
    if staged:
        return active.id, staged[0].id
    before = next((r for r in national if r.id == active.based_on and r.has_data), None)
    return (before.id, active.id) if before is not None else None


# -- two releases compared ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Element:
    path: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Listed:
    """One entry of a comparison: a FEST catalogue's entry or a FHIR resource, new, changed or expired."""

    type: str
    group: str  # the catalogue's name, or the FHIR type
    catalogue: bool
    id: str
    change: str
    change_text: str
    elements: list[Element]
    elements_total: int


@dataclass(frozen=True, slots=True)
class Comparison:
    base: Release
    target: Release
    catalogues: dict[str, dict[str, int]]  # FEST catalogue -> new, changed, expired
    resources: dict[str, dict[str, int]]  # FHIR type -> new, changed, expired
    entries: list[Listed]  # this page's
    total: int  # entries of the chosen type (all types: every entry)
    start: int
    rtype: str | None


def shown(value: Any) -> str:
    """An old or new value as text: a string as it is, anything else as JSON; absent as "–"."""
    if value is None:
        return "–"
    text = value if isinstance(value, str) else orjson.dumps(value).decode()
    return text if len(text) <= SHOWN_VALUE else text[: SHOWN_VALUE - 1] + "…"


def _elements(found: list[ElementChange]) -> list[Element]:
    return [Element(c.path, shown(c.old), shown(c.new)) for c in found[:SHOWN_ELEMENTS]]


def compare(
    conn: Connection,
    base: int,
    target: int,
    rtype: str | None = None,
    start: int = 0,
    *,
    entries: bool = True,
) -> Comparison:
    """`target` against `base` (two releases of the national line): the counts, and one page of the
    entries (of `rtype` alone, when given; none without `entries`) with each changed one's changed
    elements."""
    a, b = release_pair(conn, base, target)  # UnknownRelease, ReleaseConflict
    if rtype is not None:
        require_held(conn, base, target, rtype)  # UnknownType
    diff = release_diff(conn, base, target)
    counts = diff.counts()
    chosen = diff.of_type(rtype)
    page = chosen[start : start + SHOWN_ENTRIES] if entries else []
    changed = [(e.type, e.id) for e in page if e.change == "changed"]
    elements = element_changes(conn, base, target, changed)
    listed = [
        Listed(
            e.type,
            e.catalogue or e.type,
            e.catalogue is not None,
            e.id,
            e.change,
            CHANGES[e.change],
            _elements(elements.get((e.type, e.id), [])),
            len(elements.get((e.type, e.id), [])),
        )
        for e in page
    ]
    return Comparison(
        release_view(a),
        release_view(b),
        counts["catalogues"],
        counts["resources"],
        listed,
        len(chosen),
        start,
        rtype,
    )
