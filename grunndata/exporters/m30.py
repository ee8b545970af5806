"""M30 written from the store: the national IDMP resources read back into FEST entries.

A full export holds every entry the active national releases serve. An incremental one, asked
for with the HentetDato of an earlier delivery, holds what changed since that delivery, as DMP's
webservice sends it: new and changed entries in full, and a `Status U` listing for every listing
that expired (an entry gone, or one re-listed under a new Oppf Id).

Memory stays flat: resources are read in chunks of entries, and each entry's XML goes to a
temporary file per catalogue (the XSD fixes the order of catalogues, the store does not keep
it), which are joined at the end.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, TextIO

import orjson
from sqlalchemy.engine import Connection, Engine

from grunndata.errors import ExportError
from grunndata.m30 import FestEntry, catalogues
from grunndata.m30.files import open_delivery
from grunndata.m30.writer import DOCUMENT_END, document_start, entry_xml
from grunndata.memory import cycle_collection_paused
from grunndata.store import exports as store
from grunndata.store.db import open_connection
from grunndata.translators.idmp_to_fest import entry_from, expiry_listing, listing_of, oslo_local

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
    idmp_only: dict[str, int] = field(default_factory=dict)  # type -> SAFEST resources not written
    seconds: float = 0.0

    @property
    def kind(self) -> str:
        return "full" if self.since is None else "incremental"

    def as_report(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "hentet_dato": self.hentet_dato,
            "since": self.since,
            "releases": self.releases,
            "entries": self.entries,
            "expired": self.expired,
            "idmp_only_not_written": self.idmp_only,
            "seconds": round(self.seconds, 2),
        }


def export_m30(
    engine: Engine, path: Path, *, since: str | None = None, progress: Progress | None = None
) -> ExportResult:
    """Write the export to `path` (.xml, .xml.gz or .zip); the file appears only when complete."""
    with cycle_collection_paused(), open_connection(engine) as conn:
        plan = _Plan.make(conn, since)
        with open_delivery(path, plan.result.hentet_dato) as out:
            _write(conn, plan, out, progress)  # type: ignore[arg-type]
    return plan.result


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

    @classmethod
    def make(cls, conn: Connection, since: str | None) -> _Plan:
        started = time.monotonic()
        national = store.active_national(conn)
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
        current = store.groups(conn, ids, PART_OF)
        result.idmp_only = store.idmp_only(conn, ids)
        merged = store.merged(conn, ids)
        if since is None:
            return cls(result, gyldig, current, {}, releases=ids, merged=merged)
        base = store.delivered_release(conn, FEST_SOURCE, since)
        if base is None:
            raise ExportError(
                f"no FEST delivery here had HentetDato {since!r}, so there is nothing to count changes "
                "from; pass the HentetDato of a delivery you received from this service exactly as "
                "it was, or ask for a full export"
            )
        before = store.groups(conn, [base.id], PART_OF)
        changed = {g: pks for g, pks in current.items() if sorted(pks) != sorted(before.get(g, ()))}
        merged |= store.merged(conn, [base.id])
        return cls(
            result, gyldig, changed, before, frozenset(current), base.id, max(ids, default=0), ids, merged
        )

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
    total = len(plan.current)
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
        if plan.base:
            for listing in _expiry_listings(conn, plan, replaced):
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
