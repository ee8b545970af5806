"""Import a FEST delivery into the store as one new release, all or nothing.

Delivery semantics (reference/fest-m30.md §5): a full delivery holds only Status A and expires
every active entry it does not contain; an incremental one adds Status U entries, which expire
what they name, and replaces changed entries in full. Guards refuse deliveries that look broken:
a full one that drops more than 20 % of a catalogue, or too many references to missing Ids.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from grunndata.errors import DeliveryError
from grunndata.importers.national import (
    OWNER,
    OWNER_NAME,
    TIER,
    catalogue_of,
    code_equivalents,
    derive,
    fest_type,
    is_derived,
    is_fest,
    is_safest,
)
from grunndata.importers.run import (
    MAX_REMOVAL_SHARE,
    MAX_REPORTED,
    R4_BODIES,
    RunResult,
    dangling_refusal,
    refuse,
    shrink_refusal,
)
from grunndata.m30 import (
    KNOWN_CODE_SYSTEMS,
    EntryFacts,
    FestEntry,
    FestReader,
    catalogues,
    check_file,
    child,
    child_text,
)
from grunndata.memory import YOUNG_EVERY, collect_young, cycle_collection_paused
from grunndata.settings import DEFAULT_MAX_XML_BYTES
from grunndata.store import ReleaseBuilder

SOURCE = "fest"
MAX_LISTED_WARNINGS = MAX_REPORTED

Progress = Callable[[str | None, int, int, int], None]  # (catalogue, entries, bytes done, bytes total)


def resource_type(catalogue: str) -> str:
    """The store's type for raw FEST entries of a catalogue: FEST.LegemiddelMerkevare, ..."""
    return fest_type(catalogue)


@dataclass(frozen=True, slots=True)
class Warning:
    kind: str  # catalogue-order, dangling-reference, unknown-code-system, unknown-code, unknown-expiry, unserved-reference
    catalogue: str | None  # None for a FHIR resource (unserved-reference: entry_id is its Type/id)
    entry_id: str  # "" for a warning about the delivery as a whole (catalogue-order)
    line: int | None
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "catalogue": self.catalogue,
            "id": self.entry_id,
            "line": self.line,
            "message": self.message,
        }


@dataclass(kw_only=True)
class ImportResult(RunResult):
    """What a FEST import did (the common part: RunResult)."""

    kind: str
    hentet_dato: str | None
    catalogues: dict[str, dict[str, int]] = field(default_factory=dict)
    kinds: dict[str, int] = field(default_factory=dict)
    warnings: list[Warning] = field(default_factory=list)
    entries: int = 0
    gyldig_fradato_helfo: str | None = None  # HELFO extracts' header, kept for the M30 export
    reconciliation: dict[str, Any] | None = None  # FEST against the SAFEST data of the release
    phpid: dict[str, Any] | None = None  # PhPID groups against FEST's LegemiddelVirkestoff (migration)

    def as_report(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "kind": self.kind,
            "hentet_dato": self.hentet_dato,
            "gyldig_fradato_helfo": self.gyldig_fradato_helfo,
            "entries": self.entries,
            "seconds": round(self.seconds, 2),
            "catalogues": self.catalogues,
            "kinds": self.kinds,
            "resources": self.resources,
            "warning_count": len(self.warnings),
            "warnings": [w.as_dict() for w in self.warnings[:MAX_LISTED_WARNINGS]],
            "reconciliation": self.reconciliation,
            "content_filters": self.content_filters,
            "phpid": self.phpid,
        }


def index_rows(entry: FestEntry, facts: EntryFacts) -> Iterator[tuple[str, str]]:
    """Search-index values of a raw FEST entry: its Ids, references, varenr, EAN, ATC and names."""
    for i in facts.ids:
        yield "fest-id", i
    for _, target, _ in facts.refs:
        yield "fest-ref", target
    if not entry.payload:
        return
    top = entry.payload[0]
    for name in ("Varenr", "Nr"):
        if (v := child_text(top, name)) is not None:
            yield "varenr", v.strip()
    for c in top[3] or ():
        if c[0] == "Ean" and c[2]:
            yield "gtin", c[2].strip()
    atc = child(top, "Atc")
    if atc is not None and atc[1]:
        yield "atc", atc[1].get("V", "")
    for name in ("NavnFormStyrke", "Varenavn", "Navn"):
        if (v := child_text(top, name)) is not None:
            yield "name", v.strip().lower()


@dataclass
class _Checks:
    """Delivery-wide checks that need more than one entry: duplicates, references, codes.

    Catalogues may come in any order, so nothing here assumes a referenced entry came earlier:
    references and codes are gathered as entries stream past and judged once all are read.
    """

    incremental: bool
    ids: set[str] = field(default_factory=set)
    expired: dict[str, int] = field(default_factory=dict)  # Oppf Id of a Status U entry -> its line
    keys: set[tuple[str, str]] = field(default_factory=set)
    pending_refs: list[tuple[str, str, str, str, int]] = field(
        default_factory=list
    )  # cat, id, elem, target, line
    ref_count: int = 0
    codes: dict[tuple[str, str], tuple[str, str, int]] = field(default_factory=dict)  # first place seen
    kodeverk: dict[str, set[str]] = field(default_factory=dict)

    def entry(self, entry: FestEntry, facts: EntryFacts) -> None:
        key = (entry.catalogue, entry.key)
        if key in self.keys:
            raise DeliveryError(
                "the same entry appears twice", catalogue=entry.catalogue, entry_id=entry.key, line=entry.line
            )
        self.keys.add(key)
        for i in facts.ids:
            if i in self.expired:
                raise self.expired_and_active(entry, i)
            if i in self.ids:
                raise DeliveryError(
                    f"the Id {i} is used twice in the delivery",
                    catalogue=entry.catalogue,
                    entry_id=entry.key,
                    line=entry.line,
                )
            self.ids.add(i)
        self.ref_count += len(facts.refs)
        for elem, target, line in facts.refs:
            if target not in self.ids:
                self.pending_refs.append((entry.catalogue, entry.key, elem, target, line))
        for oid, code, line in facts.codes:
            self.codes.setdefault((oid, code), (entry.catalogue, entry.key, line))
        if entry.catalogue == "Kodeverk" and entry.payload:
            kodeverk_id = child_text(entry.payload[0], "Id")
            if kodeverk_id:
                codes = self.kodeverk.setdefault(kodeverk_id.strip(), set())
                codes.update((child_text(n, "Kode") or "").strip() for n in entry.payload[1:])

    def expiry(self, entry: FestEntry) -> None:
        """A Status U entry: its Oppf Id may not also come active in the same delivery."""
        if entry.oppf_id in self.ids:
            raise self.expired_and_active(entry, entry.oppf_id)
        self.expired[entry.oppf_id] = entry.line

    def expired_and_active(self, entry: FestEntry, oppf_id: str) -> DeliveryError:
        return DeliveryError(
            f"the Oppf Id {oppf_id} is both expired (Status U) and delivered active in this delivery; "
            "a changed entry comes with a new Oppf Id",
            catalogue=entry.catalogue,
            entry_id=entry.key,
            line=entry.line,
        )

    def code_warnings(self) -> list[Warning]:
        warnings = []
        unknown_systems: dict[str, tuple[int, tuple[str, str, int]]] = {}
        for (oid, code), place in self.codes.items():
            if oid in self.kodeverk:
                if code not in self.kodeverk[oid]:
                    warnings.append(
                        Warning("unknown-code", *place, f"code {code!r} is not in code system {oid}")
                    )
            elif oid not in KNOWN_CODE_SYSTEMS:
                n, first = unknown_systems.get(oid, (0, place))
                unknown_systems[oid] = (n + 1, first)
        for oid, (n, place) in unknown_systems.items():
            warnings.append(
                Warning("unknown-code-system", *place, f"code system {oid} is unknown ({n} codes use it)")
            )
        return warnings


def import_fest(
    engine: Engine,
    path: Path,
    *,
    incremental: bool = False,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    max_xml_bytes: int = DEFAULT_MAX_XML_BYTES,
    stage: bool = False,
) -> ImportResult:
    """Import one delivery as a new release; DeliveryError (nothing served changes) if refused.
    `max_xml_bytes` caps the XML it may expand to (GRUNNDATA_MAX_XML_BYTES)."""
    started = time.monotonic()
    kind = "incremental" if incremental else "full"
    check_file(path)  # a missing or empty file is not worth a release record
    reader = FestReader(path, max_xml_bytes)
    checks = _Checks(incremental)
    kinds: Counter[str] = Counter()
    expiries: list[FestEntry] = []
    entries = 0
    with (
        cycle_collection_paused(),
        ReleaseBuilder(
            engine, SOURCE, kind, TIER, OWNER, OWNER_NAME, path.name, dry_run, r4=R4_BODIES, stage=stage
        ) as builder,
    ):
        builder.keep(is_safest)  # a FEST delivery replaces FEST entries; SAFEST data stays as it is
        for entry, facts in reader.entries():
            entries += 1
            if progress is not None and entries % 500 == 0 and reader.stream is not None:
                progress(entry.catalogue, entries, reader.stream.position, reader.stream.total)
            if entries % YOUNG_EVERY == 0:
                collect_young()
            if entry.status == "U":
                if not incremental:
                    raise DeliveryError(
                        "a full delivery holds only active (Status A) entries, but this one expires an entry; "
                        "import it with --incremental if it is an incremental delivery",
                        catalogue=entry.catalogue,
                        entry_id=entry.key,
                        line=entry.line,
                    )
                checks.expiry(entry)
                expiries.append(entry)
                builder.notice_expiry(entry.catalogue, entry.oppf_id, entry.tidspunkt, entry.status_dn)
                continue
            checks.entry(entry, facts)
            kinds[entry.kind or "(empty)"] += 1
            data = orjson.dumps(entry.to_json())
            builder.put(
                resource_type(entry.catalogue),
                entry.key,
                data,
                hashlib.sha256(data).hexdigest(),
                entry.oppf_id,
                index_rows(entry, facts),
            )
        if progress is not None and reader.stream is not None:
            progress(None, entries, reader.stream.total, reader.stream.total)

        warnings = _order_warnings(reader) + _expire(builder, expiries, checks)
        warnings += _reference_warnings(builder, checks)
        warnings += checks.code_warnings()
        ref_count = checks.ref_count
        # the delivery's id, key and reference sets are judged: let the FHIR derivation, the peak of
        # an import's memory, reuse their space (~20 MB at full size)
        del checks, expiries
        derived = derive(builder, progress, code_equivalents(), reader.hentet_dato)
        warnings += [  # FEST's own dangling references are reported above, by their FEST entries
            Warning("unserved-reference", None, u.resource, None, u.sentence())
            for u in derived.unserved
            if u.from_safest
        ]
        result = ImportResult(
            file=path.name,
            started=started,
            kind=kind,
            hentet_dato=reader.hentet_dato,
            based_on=builder.based_on.id if builder.based_on else None,
            dry_run=dry_run,
            kinds=dict(sorted(kinds.items())),
            warnings=warnings,
            entries=entries,
        )
        result.gyldig_fradato_helfo = reader.gyldig_fradato_helfo
        result.catalogues = _catalogue_counts(builder)
        result.resources = {t: c.as_dict() for t, c in sorted(builder.settle().items()) if is_derived(t)}
        result.reconciliation = derived.reconciliation.as_dict() if derived.reconciliation else None
        result.content_filters = derived.content_filters
        result.phpid = derived.phpid
        refusal = None if force else _refusal(builder, ref_count, warnings)
        if refusal is not None:
            refuse(builder, result, refusal)
        del derived
        result.activate(builder, reader.hentet_dato)
    return result


def _order_warnings(reader: FestReader) -> list[Warning]:
    """One warning, for the delivery as a whole, when its catalogues came out of XSD order."""
    found = reader.order_difference()
    if found is None:
        return []
    return [Warning("catalogue-order", found.catalogue.name, "", found.line, found.message)]


def _expire(builder: ReleaseBuilder, expiries: list[FestEntry], checks: _Checks) -> list[Warning]:
    """Apply Status U entries: expire what they name unless the delivery also brings it anew."""
    warnings = []
    for u in expiries:
        rtype = resource_type(u.catalogue)
        key = (rtype, u.inner_id) if u.inner_id else builder.find_active_by_source_id(rtype, u.oppf_id)
        if key is not None and (u.catalogue, key[1]) in checks.keys:
            continue  # replaced in this delivery: the old listing expires, the new one is served
        if key is None or not builder.expire(key):
            warnings.append(
                Warning(
                    "unknown-expiry",
                    u.catalogue,
                    u.oppf_id,
                    u.line,
                    "expires an entry that is not active; nothing to do",
                )
            )
    return warnings


def _reference_warnings(builder: ReleaseBuilder, checks: _Checks) -> list[Warning]:
    """References to Ids that the new release will not serve."""
    served_ids = checks.ids  # (added to in place: the checks are judged once, after this)
    if checks.incremental:
        # ids of entries kept from the active release count too, and their references must still resolve
        kept = [(key, value) for key, value in builder.active_index_values("fest-id") if builder.served(key)]
        served_ids.update(value for _, value in kept)
        for key, target in builder.active_index_values("fest-ref"):
            if builder.served(key) and (catalogue_of(key[0]), key[1]) not in checks.keys:
                checks.ref_count += 1
                if target not in served_ids:
                    checks.pending_refs.append((catalogue_of(key[0]), key[1], "Ref*", target, 0))
    return [
        Warning(
            "dangling-reference", cat, eid, line, f"{elem} points at {target}, which is not in the release"
        )
        for cat, eid, elem, target, line in checks.pending_refs
        if target not in served_ids
    ]


def _refusal(builder: ReleaseBuilder, ref_count: int, warnings: list[Warning]) -> str | None:
    """The sentence that refuses the delivery, or None when it may be activated."""
    if builder.kind == "full":
        active = builder.active_counts()
        expired = {t: tally.expired for t, tally in builder.settle().items() if is_fest(t)}
        shrunk = shrink_refusal(  # FHIR resources follow their FEST entries: the entries are counted
            {t: n for t, n in active.items() if t in expired},
            expired,
            lambda rtype, gone, n: (
                f"refused: this full delivery would expire {gone / n:.0%} of the active {catalogue_of(rtype)} "
                f"entries ({gone:,} of {n:,}), more than the {MAX_REMOVAL_SHARE:.0%} "
                "allowed; check the file, and use --force if the drop is real"
            ),
        )
        if shrunk is not None:
            return shrunk
    dangling = sum(1 for w in warnings if w.kind == "dangling-reference")
    return dangling_refusal(dangling, ref_count, "Ids the release would not have")


def _catalogue_counts(builder: ReleaseBuilder) -> dict[str, dict[str, int]]:
    """Per FEST catalogue, in XSD order: new, changed, unchanged, expired and entries delivered."""
    tallies = builder.settle()
    out: dict[str, dict[str, int]] = {}
    for cat in catalogues():
        tally = tallies.get(resource_type(cat.name))
        if tally is None:
            continue
        counts = tally.as_dict()
        counts["entries"] = counts["new"] + counts["changed"] + counts["unchanged"]
        out[cat.name] = counts
    return out
