"""M30 written from the store: the national IDMP resources read back into FEST entries.

A full export holds every entry the active national releases serve. An incremental one, asked
for with the HentetDato of an earlier delivery, holds what changed since that delivery, as DMP's
webservice sends it: new and changed entries in full, and a `Status U` listing for every listing
that expired (an entry gone, or one re-listed under a new Oppf Id).

Resources SAFEST/IDMP gave alone (no FEST entry made them) become entries too, after FEST's in
each catalogue, as far as IDMP covers FEST (translators/idmp_to_fest/from_idmp.py); the result
reports what IDMP could not fill and what it left out.

Memory stays flat: resources are read in chunks of entries, and each entry's XML goes to a
temporary file per catalogue (the XSD fixes the order of catalogues, the store does not keep
it), which are joined at the end.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TextIO

import orjson
from sqlalchemy.engine import Connection, Engine

from grunndata.errors import ExportError
from grunndata.m30 import DOCUMENT_END, FestEntry, catalogues, document_start, entry_xml, open_delivery
from grunndata.memory import cycle_collection_paused
from grunndata.store import exports as store
from grunndata.store import open_connection
from grunndata.terminology import concept_map_files
from grunndata.translators.idmp_to_fest import (
    IdmpReport,
    entry_from,
    expiry_listing,
    from_idmp,
    listing_of,
    oslo_local,
)

FEST_SOURCE = "fest"
PART_OF = "Ingredient.for"  # a brand's Ingredients belong to the brand's entry
CHUNK = 2000  # entries read from the store at a time

Progress = Callable[[int, int], None]  # (entries done, entries in all)


@dataclass
class ExportResult:
    """What an export wrote."""

    hentet_dato: str
    since: str | None
    releases: list[int]
    entries: dict[str, int] = field(default_factory=dict)  # catalogue -> entries with Status A
    expired: dict[str, int] = field(default_factory=dict)  # catalogue -> Status U listings
    idmp_only: dict[str, int] = field(default_factory=dict)  # type -> SAFEST resources in no entry
    idmp: IdmpReport = field(
        default_factory=IdmpReport
    )  # entries from IDMP alone: written, unfilled, left out
    seconds: float = 0.0

    @property
    def kind(self) -> str:
        return "full" if self.since is None else "incremental"

    @property
    def idmp_written(self) -> dict[str, int]:
        """Catalogue -> entries written from SAFEST/IDMP data alone (also counted in `entries`)."""
        return dict(sorted(self.idmp.written.items()))

    @property
    def unfilled(self) -> dict[str, dict[str, int]]:
        """Catalogue -> XSD path -> entries from IDMP alone that lack that required element (written
        with it empty, where REQUIRED allows that, or left out)."""
        return self.idmp.as_dict()["required_unfilled"]  # type: ignore[no-any-return]

    @property
    def left_out(self) -> list[from_idmp.LeftOut]:
        """Entries IDMP alone could not make, each with its resource and reason."""
        return self.idmp.left_out

    def as_report(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hentet_dato": self.hentet_dato,
            "since": self.since,
            "releases": self.releases,
            "entries": self.entries,
            "expired": self.expired,
            "idmp_only_not_written": self.idmp_only,
            "idmp": self.idmp.as_dict(),
            "seconds": round(self.seconds, 2),
        }


def export_m30(
    engine: Engine,
    path: Path,
    *,
    since: str | None = None,
    progress: Progress | None = None,
    releases: Sequence[int] | None = None,
) -> ExportResult:
    """Write the export to `path` (.xml, .xml.gz or .zip); the file appears only when complete.

    The national releases active now, or `releases` (a server exports the snapshot it serves)."""
    with cycle_collection_paused(), open_connection(engine) as conn:
        plan = _Plan.make(conn, since, releases)
        with open_delivery(path, plan.result.hentet_dato) as out:
            _write(conn, plan, out, progress)  # type: ignore[arg-type]
    return plan.result


SHOWN_HENTET_DATOS = 10  # the newest HentetDatos a refused `since` lists


def base_release(conn: Connection, since: str) -> Any:
    """The FEST delivery that had HentetDato `since`; ExportError in one sentence if none did."""
    base = store.delivered_release(conn, FEST_SOURCE, since)
    if base is None:
        known = store.delivered_hentet_datos(conn, FEST_SOURCE)
        shown = ", ".join(known[:SHOWN_HENTET_DATOS]) + (
            f" and {len(known) - SHOWN_HENTET_DATOS} older" if len(known) > SHOWN_HENTET_DATOS else ""
        )
        raise ExportError(
            f"no FEST delivery here had HentetDato {since!r}, so there is nothing to count changes "
            "from; pass the HentetDato of a delivery you received from this service exactly as "
            "it was, or ask for a full export"
            + (
                f" (the deliveries here, newest first: {shown})"
                if known
                else " (none has been served here yet)"
            )
        )
    return base


@dataclass
class _Plan:
    """Which entries to write in full and which listings to expire."""

    result: ExportResult
    gyldig_fradato_helfo: str | None
    current: dict[str, list[int]]  # group -> version pks, to be written in full
    base: dict[str, list[int]]  # the groups of the delivery `since` names ({} for a full export)
    served: frozenset[str] = frozenset()  # every group served now
    base_release: int = 0
    upto_release: int = 0
    releases: list[int] = field(default_factory=list)  # the national releases served now
    merged: set[int] = field(default_factory=set)  # versions SAFEST was merged into, now or in the base
    idmp: _Idmp | None = None  # the resources SAFEST gave alone

    @classmethod
    def make(cls, conn: Connection, since: str | None, releases: Sequence[int] | None = None) -> _Plan:
        started = time.monotonic()
        national = store.active_national(conn, releases)
        fest = next((r for r in national if r.hentet_dato), None)  # the line's FEST delivery date
        if fest is not None and fest.hentet_dato:
            hentet = fest.hentet_dato
        elif national:  # IDMP data only: the newest activation stands for the generation time
            hentet = oslo_local(max(r.activated_at for r in national))
        else:
            hentet = oslo_local(datetime.now(UTC))
        ids = [r.id for r in national]
        result = ExportResult(hentet, since, ids, seconds=-started)
        gyldig = (fest.report or {}).get("gyldig_fradato_helfo") if fest is not None else None
        current = _once(store.groups(conn, ids, PART_OF))
        idmp = _Idmp.read(conn, ids)
        merged = store.merged(conn, ids)
        if since is None:
            return cls(result, gyldig, current, {}, releases=ids, merged=merged, idmp=idmp)
        base = base_release(conn, since)
        before = _once(store.groups(conn, [base.id], PART_OF))
        changed = {g: pks for g, pks in current.items() if sorted(pks) != sorted(before.get(g, ()))}
        merged |= store.merged(conn, [base.id])
        idmp.add_base(conn, base.id)
        return cls(
            result,
            gyldig,
            changed,
            before,
            frozenset(current),
            base.id,
            max(ids, default=0),
            ids,
            merged,
            idmp,
        )

    def is_fest_entry(self, group: str) -> bool:
        """Whether the release serves resources made of the FEST entry whose group id this is."""
        return group in (self.served or self.current)

    def entry(
        self, conn: Connection, group: str, resources: list[dict[str, Any]], base: bool = False
    ) -> FestEntry:
        """The FEST entry a group stands for: read back from its FHIR resources, or, where SAFEST was
        merged into them, FEST's own entry as delivered (the merged values are IDMP's, not FEST's)."""
        pks = (self.base if base else self.current).get(group, [])
        if self.merged.isdisjoint(pks):
            read: FestEntry = _read_back(group, resources, entry_from)
            return read
        catalogue, oppf_id = _read_back(group, resources, listing_of)
        raw = store.raw_entry(conn, [self.base_release] if base else self.releases, catalogue, oppf_id)
        if raw is None:
            raise ExportError(
                f"the FEST entry {catalogue} {oppf_id} that SAFEST data was merged into is missing"
            )
        return FestEntry.from_json(orjson.loads(raw))


@dataclass
class _Idmp:
    """The resources SAFEST/IDMP gave alone, grouped by the entries they become (from_idmp.groups)."""

    current: dict[str, list[int]]
    base: dict[str, list[int]]  # the same in the base delivery of an incremental export, else {}
    types: dict[int, str]  # version pk -> resource type
    when: dict[int, str]  # version pk -> Tidspunkt: when our release first served it
    incremental: bool = False

    @classmethod
    def read(cls, conn: Connection, release_ids: list[int]) -> _Idmp:
        idmp = cls({}, {}, {}, {})
        idmp.current = idmp._groups(conn, release_ids)
        return idmp

    def add_base(self, conn: Connection, base_release: int) -> None:
        self.base = self._groups(conn, [base_release])
        self.incremental = True

    def _groups(self, conn: Connection, release_ids: list[int]) -> dict[str, list[int]]:
        rows = store.idmp_only(conn, release_ids, from_idmp.LINKS)
        for pk, rtype, _, at, _ in rows:
            self.types[pk] = rtype
            self.when[pk] = oslo_local(at)
        return from_idmp.groups((pk, rtype, rid, value) for pk, rtype, rid, _, value in rows)

    def write(
        self, conn: Connection, plan: _Plan, spool: _Spool, progress: Callable[[int], None]
    ) -> list[FestEntry]:
        """Spool the entries (in an incremental export those new or changed since the base), fill
        the result's report and `idmp_only`, and give the Status U listings of entries gone."""
        result = plan.result
        if not self.current and not self.base:
            return []
        codes = from_idmp.fest_codes(concept_map_files())
        used: set[int] = set()  # versions some entry is made of
        made_now: set[str] = set()  # Oppf Ids of every entry the resources make now
        # inner Id spooled -> its Oppf Id: an Ingredient of two products makes one entry, written once
        ids: dict[str, str] = {}
        changed = {g for g in self.current if sorted(self.current[g]) != sorted(self.base.get(g, ()))}
        before = self._all_made(conn, plan, codes, self.base, changed) if self.incremental else {}
        for n, (group, pks, made) in enumerate(self._made(conn, plan, codes, self.current, self.current), 1):
            if made.entries:
                used.update(pks)
            made_now.update(e.oppf_id for e in made.entries)
            if n % CHUNK == 0:
                progress(n)
            if self.incremental and group not in changed:
                continue
            for left in made.left_out:
                result.idmp.add_left_out(left)
            old = {e.oppf_id: e for e in before.get(group, ())}
            for entry in made.entries:
                if entry.oppf_id in old and old[entry.oppf_id].payload == entry.payload:
                    continue
                inner = entry.inner_id or entry.oppf_id
                if ids.get(inner) == entry.oppf_id:
                    continue
                if inner in ids or plan.is_fest_entry(inner.removeprefix("ID_")):
                    result.idmp.add_left_out(
                        from_idmp.LeftOut(entry.catalogue, group, "its FEST Id is already another entry's")
                    )
                    continue
                ids[inner] = entry.oppf_id
                spool.add(entry)
                result.entries[entry.catalogue] = result.entries.get(entry.catalogue, 0) + 1
                result.idmp.add_written(entry)
        unused = {pk for pks in self.current.values() for pk in pks} - used
        result.idmp_only = dict(sorted(Counter(self.types[pk] for pk in unused).items()))
        return self._expired(conn, plan, before, made_now)

    def _made(
        self,
        conn: Connection,
        plan: _Plan,
        codes: from_idmp.FestCode,
        groups: dict[str, list[int]],
        wanted: Iterable[str],
    ) -> Iterator[tuple[str, list[int], from_idmp.Made]]:
        """What the groups `wanted` make, substances first (the products name their Virkestoff Ids)."""
        substances: dict[str, str] = {}

        def fest_id_of(key: str) -> str | None:
            found = substances.get(key)
            rtype, _, rid = key.partition("/")
            if found is None and rtype in (from_idmp.MPD, from_idmp.SD) and plan.is_fest_entry(rid):
                found = "ID_" + rid
            return found

        keys = sorted(
            {*wanted, *(g for g in groups if from_idmp.head_type(g) == from_idmp.SD)},
            key=lambda g: (from_idmp.head_type(g) != from_idmp.SD, g),
        )
        for i in range(0, len(keys), CHUNK):
            part = keys[i : i + CHUNK]
            found = store.data(conn, (pk for g in part for pk in groups[g]))
            for group in part:
                pks = groups[group]
                resources = [orjson.loads(found[pk]) for pk in pks]
                times = {
                    f"{r['resourceType']}/{r['id']}": self.when[pk]
                    for pk, r in zip(pks, resources, strict=True)
                }
                made = from_idmp.entries_from_idmp(group, resources, times, fest_id_of, codes)
                substances.update(made.substance_ids)
                yield group, pks, made

    def _all_made(
        self,
        conn: Connection,
        plan: _Plan,
        codes: from_idmp.FestCode,
        base: dict[str, list[int]],
        changed: set[str],
    ) -> dict[str, list[FestEntry]]:
        """The entries the base delivery's groups made, for those changed or gone since."""
        wanted = {g for g in base if g in changed or g not in self.current}
        return {g: made.entries for g, _, made in self._made(conn, plan, codes, base, wanted) if g in wanted}

    def _expired(
        self,
        conn: Connection,
        plan: _Plan,
        before: dict[str, list[FestEntry]],
        made_now: set[str],
    ) -> list[FestEntry]:
        """A Status U listing for each entry of the base delivery that no resource makes now, timed
        when our release stopped serving its resources (else the delivery time, as FEST's)."""
        gone = {
            e.oppf_id: (e.catalogue, g)
            for g, entries in before.items()
            for e in entries
            if e.oppf_id not in made_now
        }
        if not gone:
            return []
        groups = {g for _, g in gone.values()}
        stopped = store.stopped_serving(conn, (pk for g in groups for pk in self.base[g]), plan.base_release)
        listings = []
        for oppf_id, (catalogue, group) in sorted(gone.items()):
            when = min((stopped[pk] for pk in self.base[group] if pk in stopped), default=None)
            tidspunkt = oslo_local(when) if when is not None else plan.result.hentet_dato[:19]
            listings.append(expiry_listing(catalogue, oppf_id, tidspunkt))
        return listings


def _parsed(
    conn: Connection, groups: dict[str, list[int]], keys: list[str]
) -> dict[str, list[dict[str, Any]]]:
    found = store.data(conn, (pk for g in keys for pk in groups[g]))
    return {g: [orjson.loads(found[pk]) for pk in groups[g]] for g in keys}


def _chunks(
    conn: Connection, groups: dict[str, list[int]]
) -> Iterator[list[tuple[str, list[dict[str, Any]]]]]:
    """The groups in id order, CHUNK at a time, each with its resources parsed."""
    keys = sorted(groups)
    for i in range(0, len(keys), CHUNK):
        part = keys[i : i + CHUNK]
        parsed = _parsed(conn, groups, part)
        yield [(g, parsed[g]) for g in part]


def _once(groups: dict[str, list[int]]) -> dict[str, list[int]]:
    """Each version once per group: a brand's Ingredient is for its product, item and form, all
    three of the brand's id, so the grouping names it once per reference."""
    return {group: sorted(set(pks)) for group, pks in groups.items()}


def _read_back(
    group: str, resources: list[dict[str, Any]], read: Callable[[list[dict[str, Any]]], Any]
) -> Any:
    try:
        return read(resources)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        names = ", ".join(f"{r.get('resourceType')}/{r.get('id')}" for r in resources)
        raise ExportError(
            f"cannot write {names} as a FEST entry ({type(e).__name__}: {e}); this is a fault in "
            "grunndata's IDMP to FEST mapping, please report it"
        ) from e


class _Spool:
    """One temporary file per catalogue, so entries can arrive in any order."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.files: dict[str, IO[str]] = {}

    def add(self, entry: FestEntry) -> None:
        f = self.files.get(entry.catalogue)
        if f is None:
            f = self.files[entry.catalogue] = open(  # noqa: SIM115 (closed in join)
                Path(self.folder) / f"{entry.catalogue}.xml", "w+", encoding="utf-8"
            )
        f.write("\n")
        f.write(entry_xml(entry))

    def join(self, out: TextIO) -> None:
        for cat in catalogues():
            f = self.files.pop(cat.name, None)
            if f is None:
                continue
            out.write(f"\n<{cat.kat}>")
            f.seek(0)
            shutil.copyfileobj(f, out, 1 << 20)
            f.close()
            out.write(f"\n</{cat.kat}>")


def _write(conn: Connection, plan: _Plan, out: TextIO, progress: Progress | None) -> None:
    result = plan.result
    idmp = plan.idmp or _Idmp({}, {}, {}, {})
    total = len(plan.current) + len(idmp.current)
    done = 0
    replaced: dict[str, tuple[str, str]] = {}  # group -> (catalogue, Oppf Id) of a listing that was re-listed
    with tempfile.TemporaryDirectory(prefix="grunndata-m30-") as folder:
        spool = _Spool(folder)
        for chunk in _chunks(conn, plan.current):
            before = _parsed(conn, plan.base, [g for g, _ in chunk if g in plan.base])
            for group, resources in chunk:
                entry = plan.entry(conn, group, resources)
                if group in before:
                    old = plan.entry(conn, group, before[group], base=True)
                    if old == entry:
                        continue  # its FHIR changed with an entry it names; the FEST entry did not
                    replaced[group] = (entry.oppf_id, entry.tidspunkt)
                result.entries[entry.catalogue] = result.entries.get(entry.catalogue, 0) + 1
                spool.add(entry)
            done += len(chunk)
            if progress is not None:
                progress(done, total)
        idmp_expired = idmp.write(
            conn, plan, spool, lambda n: progress(done + n, total) if progress else None
        )
        if progress is not None:
            progress(total, total)
        if plan.base or idmp_expired:
            for listing in [*_expiry_listings(conn, plan, replaced), *idmp_expired]:
                result.expired[listing.catalogue] = result.expired.get(listing.catalogue, 0) + 1
                spool.add(listing)
        out.write(document_start(result.hentet_dato, plan.gyldig_fradato_helfo))
        spool.join(out)
        out.write(DOCUMENT_END)
    result.seconds += time.monotonic()


def _expiry_listings(conn: Connection, plan: _Plan, replaced: dict[str, tuple[str, str]]) -> list[FestEntry]:
    """A Status U listing for each listing of the base delivery that is no longer served as it was.

    Tidspunkt (when the listing expired) is the one DMP gave in an incremental delivery when there
    was one; else, for a re-listed entry, the new listing's time; else when our release stopped
    serving it.
    """
    gone = {g: pks for g, pks in plan.base.items() if g in replaced or g not in plan.served}
    notices = store.expiry_notices(conn, plan.base_release, plan.upto_release)
    stopped = store.stopped_serving(conn, (pk for pks in gone.values() for pk in pks), plan.base_release)
    listings = []
    for chunk in _chunks(conn, gone):
        for group, resources in chunk:
            catalogue, oppf_id = _read_back(group, resources, listing_of)
            if group in replaced:
                new_oppf_id, new_tidspunkt = replaced[group]
                if new_oppf_id == oppf_id:
                    continue  # changed under the same listing: the new content replaces it
                tidspunkt = new_tidspunkt
            else:
                when = min((stopped[pk] for pk in plan.base[group] if pk in stopped), default=None)
                tidspunkt = oslo_local(when) if when is not None else plan.result.hentet_dato[:19]
            noticed = notices.get(oppf_id)
            if noticed is not None:
                listings.append(expiry_listing(catalogue, oppf_id, noticed[0], noticed[1]))
            else:
                listings.append(expiry_listing(catalogue, oppf_id, tidspunkt))
    return listings
