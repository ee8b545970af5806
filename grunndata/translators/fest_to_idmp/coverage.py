"""Where every element of the M30 XSD goes in FHIR, made from the mapping tables themselves.

`coverage(paths)` matches each XSD element path against the rows the tables describe: a FHIR
element, an extension (which carries everything below it), or dropped with the reason. An XSD
path no row accounts for is listed as unaccounted, and so is a table row that names an element
the XSD does not have; tests fail on either. tools/gen_coverage.py renders the report as
docs/fest-idmp-coverage.md; the server publishes `coverage_json()`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from grunndata.fhir import systems as s
from grunndata.m30 import catalogues
from grunndata.translators.fest_to_idmp.rules import Row
from grunndata.translators.fest_to_idmp.tables import MAPPINGS
from grunndata.translators.fest_to_idmp.xsd_paths import XSD_PATHS
from grunndata.translators.safest.to_r4 import R4_OF_R5, R5_ONLY

DISPOSITIONS = ("fhir", "extension", "dropped", "structure")

RELEASE_LEVEL = {
    "FEST": ("structure", "the delivery", "one import = one release"),
    "FEST/HentetDato": (
        "dropped",
        "(none)",
        "delivery header: the importer keeps it on the release (verbatim, for the next incremental "
        "request); no entry and so no resource carries it",
    ),
    "FEST/GyldigFradatoHelfo": (
        "dropped",
        "(none)",
        "delivery header of HELFO extracts: kept on the release by the importer, not in a resource",
    ),
}

VALUE_RULES = (
    ("CV {V, S, DN}", "Coding {system: urn:oid:S (ATC: http://www.whocc.no/atc), code: V, display: DN}"),
    (
        "CS {V, DN}",
        f"Coding {{system: {s.CS_BASE}fest-<element> (Reseptgruppe: {s.RESEPTGRUPPE}), code, display}}",
    ),
    ("PQ {V, U}", "Quantity {value: V, unit: U}"),
    ("MO {V, U}", "Money {value: V, currency: U}"),
    ("URL {V}", "valueUri"),
    ("IDREF", "Reference: <type>/<fhir_id>, or by identifier (FEST Id) when the target is not a resource"),
    (
        "decimal, int",
        f"a JSON number; when it would print differently (1.50) the FEST text stays in extension {s.EXT_LEXICAL}",
    ),
    ("date", "date; a date with a timezone stays a valueString"),
    (
        "dateTime",
        "dateTime with the Norwegian offset of that moment, +01:00 or +02:00 (FEST gives local time, "
        "FHIR needs an offset); one that has an offset already stays a valueString",
    ),
    ("boolean", "boolean (valueString for 1/0)"),
    ("duration, string, ID, oid", "string"),
    ("an empty element", f"an extension holding only {s.EXT_EMPTY} = true"),
)


@dataclass(frozen=True)
class CoverageLine:
    """One M30 element: where it goes."""

    catalogue: str  # Kat name without "Kat", or "" for the delivery header
    path: str  # full XSD path, FEST/Kat.../Oppf.../...
    xsd_type: str
    disposition: str  # one of DISPOSITIONS
    fhir: str
    note: str

    @property
    def short_path(self) -> str:
        """The path below the catalogue (Oppf.../...)."""
        parts = self.path.split("/")
        return "/".join(parts[2:]) if len(parts) > 2 else self.path


@dataclass(frozen=True)
class CoverageReport:
    lines: tuple[CoverageLine, ...]
    derived: tuple[
        tuple[str, str, str, str], ...
    ]  # (catalogue, kind, FHIR element, why) set without FEST source
    mappings: tuple[tuple[str, str, str], ...]  # (catalogue, kind, summary)
    unaccounted: tuple[str, ...]  # XSD paths no rule accounts for
    unknown: tuple[str, ...]  # table paths the XSD does not have

    @property
    def complete(self) -> bool:
        return not self.unaccounted and not self.unknown

    def counts(self) -> dict[str, int]:
        out = dict.fromkeys(DISPOSITIONS, 0)
        for line in self.lines:
            out[line.disposition] += 1
        return out


def _rows() -> tuple[
    dict[str, tuple[str, str, str, bool]], list[tuple[str, str, str, str]], list[tuple[str, str, str]]
]:
    """Every row the tables describe, by full XSD path; the derived elements; the mapping summaries."""
    rows: dict[str, tuple[str, str, str, bool]] = {}
    derived: list[tuple[str, str, str, str]] = []
    summaries: list[tuple[str, str, str]] = []

    def add(path: str, row: Row) -> None:
        if row.disposition == "derived":
            return
        if path in rows:
            raise ValueError(f"two rules for {path}")
        rows[path] = (row.disposition, row.fhir, row.note, row.subtree)

    for cat in catalogues():
        oppf = f"FEST/{cat.kat}/{cat.oppf}"
        rows[f"FEST/{cat.kat}"] = ("structure", "", f"the {cat.name} catalogue", False)
        kinds = [k for k in cat.payloads if k in MAPPINGS]
        primaries = sorted({MAPPINGS[k].resource for k in kinds})
        rows[oppf] = ("structure", " or ".join(primaries), "one entry", False)
        for name in ("Id", "Tidspunkt", "Status"):
            fhir = f"{' / '.join(primaries)}.extension[fest-oppforing].extension[{name}]"
            rows[f"{oppf}/{name}"] = ("extension", fhir, "the Oppf envelope, on the primary resource", False)
        for kind in kinds:
            mapping = MAPPINGS[kind]
            summaries.append((cat.name, kind, mapping.summary))
            base = oppf if kind == "Info" else f"{oppf}/{kind}"
            if kind != "Info":
                made = " + ".join((mapping.resource, *mapping.makes))
                rows[base] = ("fhir", made, mapping.summary, False)
            for fhir, why in mapping.table.derived:
                derived.append((cat.name, kind, _absolute(mapping.resource, fhir), why))
            for row in mapping.table.rows(mapping.resource):
                if row.disposition != "derived":
                    add(f"{base}/{row.fest}", row)
                elif (cat.name, kind, row.fhir, row.note) not in derived:
                    derived.append((cat.name, kind, row.fhir, row.note))
    return rows, derived, summaries


def _absolute(resource: str, path: str) -> str:
    return path if path.split(".", 1)[0][:1].isupper() else f"{resource}.{path}"


def coverage(paths: Mapping[str, str] | Iterable[str] | None = None) -> CoverageReport:
    """The coverage of `paths`: the XSD element paths (``FEST/KatX/OppfX/...``), best with their XSD
    types as tools/gen_coverage.py reads them from the XSD; by default the table in xsd_paths.py,
    made from the official M30 XSDs."""
    if paths is None:
        paths = XSD_PATHS
    elif not isinstance(paths, Mapping):
        paths = {path: XSD_PATHS.get(path, "?") for path in paths}
    rows, derived, summaries = _rows()
    for path, (disposition, fhir, note) in RELEASE_LEVEL.items():
        rows[path] = (disposition, fhir, note, False)
    lines: list[CoverageLine] = []
    unaccounted: list[str] = []
    for path, xsd_type in paths.items():
        parts = path.split("/")
        catalogue = parts[1].removeprefix("Kat") if len(parts) > 1 and parts[1].startswith("Kat") else ""
        found = rows.get(path)
        if found is not None:
            disposition, fhir, note, _ = found
            lines.append(CoverageLine(catalogue, path, xsd_type, disposition, fhir, note))
            continue
        for cut in range(len(parts) - 1, 0, -1):
            ancestor = rows.get("/".join(parts[:cut]))
            if ancestor is not None and ancestor[3]:
                fhir = ancestor[1] + "".join(f".extension[{name}]" for name in parts[cut:])
                lines.append(CoverageLine(catalogue, path, xsd_type, ancestor[0], fhir, ""))
                break
        else:
            unaccounted.append(path)
    unknown = sorted(p for p in rows if p not in paths)
    return CoverageReport(tuple(lines), tuple(derived), tuple(summaries), tuple(unaccounted), tuple(unknown))


def coverage_json(paths: Mapping[str, str] | Iterable[str] | None = None) -> dict[str, Any]:
    """The coverage report as JSON-ready data, for the server to publish."""
    report = coverage(paths)
    by_catalogue: dict[str, dict[str, Any]] = {}
    for line in report.lines:
        section = by_catalogue.setdefault(
            line.catalogue or "(delivery)", {"elements": [], "mappings": [], "derived": []}
        )
        section["elements"].append(
            {
                "path": line.short_path,
                "xsdType": line.xsd_type,
                "disposition": line.disposition,
                "fhir": line.fhir,
                "note": line.note,
            }
        )
    for cat, kind, summary in report.mappings:
        by_catalogue[cat]["mappings"].append({"kind": kind, "summary": summary})
    for cat, kind, fhir, why in report.derived:
        by_catalogue[cat]["derived"].append({"kind": kind, "fhir": fhir, "why": why})
    return {
        "source": "FEST M30 2014-12-01 (ER-M30-2014-12-01.xsd, Forskrivning-2014-12-01.xsd)",
        "target": "FHIR R5 (5.0.0) IDMP resources",
        "extensionBase": s.EXT_BASE,
        "summary": report.counts(),
        "complete": report.complete,
        "unaccounted": list(report.unaccounted),
        "valueRules": [{"fest": fest, "fhir": fhir} for fest, fhir in VALUE_RULES],
        "catalogues": [{"name": name, **section} for name, section in by_catalogue.items()],
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: CoverageReport) -> str:
    """The report as docs/fest-idmp-coverage.md: one table per catalogue."""
    counts = report.counts()
    out = [
        "# FEST M30 -> FHIR R5 IDMP: where every element goes",
        "",
        "Generated by `tools/gen_coverage.py` from the mapping tables in "
        "`grunndata/translators/fest_to_idmp/tables.py` and the official M30 2014-12-01 XSDs; "
        "`tests/translators/test_coverage.py` fails when this file is out of date or an XSD element "
        "is unaccounted for. Do not edit by hand.",
        "",
        f"{len(report.lines)} M30 elements: {counts['fhir']} to a FHIR element, {counts['extension']} "
        f"carried in extensions under `{s.EXT_BASE}`, {counts['dropped']} dropped (with the reason), "
        f"{counts['structure']} structure only. Unaccounted: {len(report.unaccounted)}.",
        "",
        "Extensions: a FEST element IDMP has no place for becomes extension `fest-<element>` on the "
        "resource (or element) named; its children become nested sub-extensions whose url is the "
        "child's name, in document order, typed as below. Every resource made from an entry's "
        f"payload carries the Oppf envelope in `{s.EXT_OPPFORING}` (Id, Tidspunkt, Status) on its "
        "primary resource, so M30 can be written back from the resources.",
        "",
        "| FEST type | FHIR |",
        "|---|---|",
        *[f"| {_cell(fest)} | {_cell(fhir)} |" for fest, fhir in VALUE_RULES],
        "",
        "## Served as R4 too, and what is R5 only",
        "",
        "The R4 view (`/fhir-r4`, docs/r4-view.md) serves "
        + ", ".join(f"{r5} as {r4}" for r5, r4 in R4_OF_R5.items())
        + ", and CodeSystem as CodeSystem, made from the same stored R5 resources. These R5 types "
        "are served at `/fhir` only:",
        "",
        "| R5 type | why not R4 |",
        "|---|---|",
        *[f"| {rtype} | {_cell(why)} |" for rtype, why in R5_ONLY.items()],
        "",
    ]
    current = None
    for line in report.lines:
        section = line.catalogue or "(delivery header)"
        if section != current:
            current = section
            out += ["", f"## {section if line.catalogue == '' else 'Kat' + section}", ""]
            for cat, kind, summary in report.mappings:
                if cat == line.catalogue:
                    out.append(f"- **{kind}**: {_cell(summary)}")
            derived = [d for d in report.derived if d[0] == line.catalogue]
            if derived:
                out += ["", "Set without a FEST source:", ""]
                out += [f"- `{_cell(fhir)}`: {_cell(why)} ({kind})" for _, kind, fhir, why in derived]
            out += ["", "| M30 element | XSD type | goes to | FHIR | note |", "|---|---|---|---|---|"]
        out.append(
            f"| {_cell(line.short_path)} | {line.xsd_type} | {line.disposition} | {_cell(line.fhir)} | {_cell(line.note)} |"
        )
    if report.unaccounted:
        out += ["", "## Unaccounted for", "", *[f"- {p}" for p in report.unaccounted]]
    return "\n".join(out) + "\n"
