"""What changed between two releases of one line: per FEST catalogue and FHIR resource type the new,
changed and expired entries (the manifests' difference, store/changes.py), and for a changed one
the elements of its JSON that differ (path, old value, new value).

Staging shows it before a delivery goes live; the CLI (`grunndata releases diff A B`) and the API
(`/releases/{a}/diff/{b}`) print it. Nothing here decides who may see it: the callers do.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

import orjson
from sqlalchemy import and_, select
from sqlalchemy.engine import Connection

from grunndata.errors import ReleaseConflict, UnknownRelease, UnknownType
from grunndata.store.changes import release_changes
from grunndata.store.models import M, R
from grunndata.store.read import instant
from grunndata.store.releases import release_by_number

FEST_PREFIX = "FEST."  # the store's type of a FEST catalogue's entries: FEST.Legemiddelpakning
ACTIONS = {"create": "new", "update": "changed", "delete": "expired"}
_BATCH = 500


@dataclass(frozen=True, slots=True)
class ElementChange:
    """One element that differs: its path in the JSON (`packaging.quantity.value`, `name[1].productName`),
    the value before and the value after (None: not there; FHIR JSON has no nulls of its own)."""

    path: str
    old: Any
    new: Any

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "old": self.old, "new": self.new}


@dataclass(frozen=True, slots=True)
class Entry:
    """One resource (or FEST entry) the newer release serves differently: new, changed or expired."""

    type: str
    id: str
    change: str  # new, changed, expired
    version: int  # the version served by `target`; for an expired one, the last served by `base`
    safety: tuple[str, ...]  # store/changes.py SAFETY_KINDS it carries

    @property
    def catalogue(self) -> str | None:
        return self.type.removeprefix(FEST_PREFIX) if self.type.startswith(FEST_PREFIX) else None

    def as_json(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "id": self.id,
            "change": self.change,
            "version": self.version,
            "safety": list(self.safety),
        }


@dataclass(frozen=True, slots=True)
class ReleaseDiff:
    """What `target` serves differently from `base` (two releases of one line), sorted by type and id."""

    base: int
    target: int
    tier: str
    owner: str
    entries: tuple[Entry, ...]

    def counts(self) -> dict[str, dict[str, dict[str, int]]]:
        """{"catalogues": {FEST catalogue: counts}, "resources": {FHIR type: counts}}, counts being
        new, changed and expired; a type nothing changed in is left out."""
        out: dict[str, dict[str, dict[str, int]]] = {"catalogues": {}, "resources": {}}
        for e in self.entries:
            group, name = ("catalogues", e.catalogue) if e.catalogue else ("resources", e.type)
            counts = out[group].setdefault(name, {"new": 0, "changed": 0, "expired": 0})
            counts[e.change] += 1
        return {group: dict(sorted(by.items())) for group, by in out.items()}

    def of_type(self, rtype: str | None) -> list[Entry]:
        """The entries of one type (a FEST catalogue by its name or its store type), or all."""
        if rtype is None:
            return list(self.entries)
        wanted = {rtype, FEST_PREFIX + rtype}
        return [e for e in self.entries if e.type in wanted]


def release_pair(conn: Connection, base: int, target: int) -> tuple[Any, Any]:
    """The two release rows, when both hold data of one line (UnknownRelease, ReleaseConflict if not)."""
    rows = {n: release_by_number(conn, n) for n in (base, target)}
    for n in (base, target):
        if rows[n] is None:
            raise UnknownRelease(f"there is no release {n}")
    a, b = rows[base], rows[target]
    if (a.tier, a.owner_id) != (b.tier, b.owner_id):
        raise ReleaseConflict(
            f"releases {base} and {target} are of different lines ({a.tier}/{a.owner_id} and "
            f"{b.tier}/{b.owner_id}); a diff compares two releases of one line"
        )
    for r in (a, b):
        if r.status == "pruned" or (r.activated_at is None and r.status != "staged"):
            raise ReleaseConflict(f"release {r.id} is {r.status} and holds no data to compare")
    return a, b


def require_held(conn: Connection, base: int, target: int, rtype: str) -> None:
    """Refuse a type neither release holds (UnknownType, naming those they hold): a typo must not
    read as "nothing of it changed"."""
    wanted = [rtype, FEST_PREFIX + rtype]
    in_both = M.c.release_id.in_([base, target])
    held = conn.execute(
        select(R.c.pk).join(M, M.c.resource_pk == R.c.pk).where(R.c.type.in_(wanted), in_both).limit(1)
    ).first()
    if held is not None:
        return
    types = conn.execute(select(R.c.type).join(M, M.c.resource_pk == R.c.pk).where(in_both).distinct())
    names = sorted({t.removeprefix(FEST_PREFIX) for (t,) in types})
    raise UnknownType(
        f"neither release {base} nor {target} holds entries of type {rtype!r}; they hold "
        + (", ".join(names) if names else "no entries"),
        rtype,
        names,
    )


def release_diff(conn: Connection, base: int, target: int) -> ReleaseDiff:
    """What `target` serves differently from `base`: every stored type, FEST entries included."""
    a, _ = release_pair(conn, base, target)
    entries = tuple(
        Entry(c.type, c.id, ACTIONS[c.action], c.version, tuple(sorted(c.safety)))
        for c in release_changes(conn, target, base, types=None)
    )
    return ReleaseDiff(base, target, a.tier, a.owner_id, entries)


def element_changes(
    conn: Connection, base: int, target: int, keys: Sequence[tuple[str, str]]
) -> dict[tuple[str, str], list[ElementChange]]:
    """For each (type, id) served by both releases, the elements its JSON changed (only those)."""
    old = dict(_served_bodies(conn, base, keys))
    new = dict(_served_bodies(conn, target, keys))
    return {
        key: list(json_changes(_comparable(key[0], old[key]), _comparable(key[0], new[key])))
        for key in keys
        if key in old and key in new
    }


def _comparable(rtype: str, data: bytes) -> Any:
    """The stored JSON as compared: a FEST entry (stored as its XML nodes, m30 FestEntry.to_json)
    as an object of its elements, so that a path reads `Legemiddelpakning.PrisVare[1].Pris`."""
    parsed = orjson.loads(data)
    if not rtype.startswith(FEST_PREFIX) or not isinstance(parsed, list) or len(parsed) != 2:
        return parsed
    return _elements(parsed[1])


def _elements(nodes: list[Any]) -> dict[str, Any]:
    """XML nodes ([name, attributes, text, children]) as an object; a repeated element as a list,
    an attribute as `@name`, text beside attributes or children as `#text`."""
    out: dict[str, Any] = {}
    repeated: set[str] = set()
    for name, attributes, text, children in nodes:
        if children or attributes:
            value: Any = _elements(children) if children else {}
            value.update({f"@{k}": v for k, v in (attributes or {}).items()})
            if text is not None:
                value["#text"] = text
        else:
            value = text
        if name in repeated:
            out[name].append(value)
        elif name in out:
            out[name] = [out[name], value]
            repeated.add(name)
        else:
            out[name] = value
    return out


def _served_bodies(
    conn: Connection, release: int, keys: Iterable[tuple[str, str]]
) -> Iterator[tuple[tuple[str, str], bytes]]:
    """The stored JSON of `keys` as `release` serves them."""
    by_type: dict[str, list[str]] = {}
    for rtype, rid in keys:
        by_type.setdefault(rtype, []).append(rid)
    served = R.join(M, and_(M.c.resource_pk == R.c.pk, M.c.release_id == release))
    for rtype, ids in sorted(by_type.items()):
        for i in range(0, len(ids), _BATCH):
            rows = conn.execute(
                select(R.c.id, R.c.data)
                .select_from(served)
                .where(R.c.type == rtype, R.c.id.in_(ids[i : i + _BATCH]))
            )
            for rid, data in rows:
                yield (rtype, rid), bytes(data)


def json_changes(old: Any, new: Any, path: str = "") -> Iterator[ElementChange]:
    """The leaves (or whole subtrees, where one side lacks them) that differ between two JSON values.

    Objects are compared key by key; arrays item by item after aligning equal items (an item
    inserted at the front shows as one new item, not as every item changed).
    """
    if old == new:
        return
    if isinstance(old, dict) and isinstance(new, dict):
        for key in [*new, *(k for k in old if k not in new)]:
            yield from json_changes(old.get(key), new.get(key), f"{path}.{key}" if path else key)
        return
    if isinstance(old, list) and isinstance(new, list):
        yield from _list_changes(old, new, path)
        return
    yield ElementChange(path, old, new)


def _list_changes(old: list[Any], new: list[Any], path: str) -> Iterator[ElementChange]:
    keys_old = [orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in old]
    keys_new = [orjson.dumps(v, option=orjson.OPT_SORT_KEYS) for v in new]
    matcher = SequenceMatcher(None, keys_old, keys_new, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        paired = min(i2 - i1, j2 - j1) if op == "replace" else 0
        for k in range(paired):  # items in the same place that changed: compared element by element
            yield from json_changes(old[i1 + k], new[j1 + k], f"{path}[{j1 + k}]")
        for k in range(i1 + paired, i2):
            yield ElementChange(f"{path}[{k}]", old[k], None)
        for k in range(j1 + paired, j2):
            yield ElementChange(f"{path}[{k}]", None, new[k])


MAX_ELEMENTS = 200
"""Element changes listed per changed entry (`elements_total` counts them all): a bounded answer."""


def _head(r: Any) -> dict[str, Any]:
    """A release's existence and dates: what a diff tells whoever may not see the line's content."""

    def at(t: Any) -> str | None:
        return instant(t) if t is not None else None

    return {
        "id": r.id,
        "status": r.status,
        "source": r.source,
        "kind": r.kind,
        "hentet_dato": r.hentet_dato,
        "started": at(r.started_at),
        "ended": at(r.ended_at),
        "activated": at(r.activated_at),
    }


def diff_json(
    conn: Connection,
    base: int,
    target: int,
    *,
    rtype: str | None = None,
    offset: int = 0,
    count: int = 50,
    withheld: str | None = None,
) -> dict[str, Any]:
    """The diff as JSON, one page of entries (`rtype`: of one type or catalogue) with the element
    changes of each changed one: what `grunndata releases diff --json` prints and the API sends.
    `withheld`: why the asker sees only the two releases' existence and dates (a restricted line)."""
    a, b = release_pair(conn, base, target)
    out: dict[str, Any] = {"tier": a.tier, "owner": a.owner_id, "base": _head(a), "target": _head(b)}
    if withheld is not None:
        return out | {"withheld": withheld}
    if rtype is not None:
        require_held(conn, a.id, b.id, rtype)
    diff = release_diff(conn, base, target)
    entries = diff.of_type(rtype)
    page = entries[offset : offset + count]
    elements = element_changes(conn, base, target, [(e.type, e.id) for e in page if e.change == "changed"])
    listed = []
    for e in page:
        item = e.as_json()
        if e.catalogue:
            item["catalogue"] = e.catalogue
        if e.change == "changed":
            found = elements.get((e.type, e.id), [])
            item["elements"] = [c.as_json() for c in found[:MAX_ELEMENTS]]
            item["elements_total"] = len(found)
        listed.append(item)
    return out | {
        "counts": diff.counts(),
        "type": rtype,
        "total": len(entries),
        "offset": offset,
        "entries": listed,
    }
