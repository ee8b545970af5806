"""The `grunndata` command: import deliveries, list and roll back releases, serve, generate samples.

Every expected failure prints one sentence and exits 2; nothing prints a traceback unless
GRUNNDATA_DEBUG is set. The GRUNNDATA_* settings are read once, here (`Settings.load()`), and
reach the commands as the context's `obj`; a bad value is one sentence too.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Annotated, Any, cast

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

from grunndata.errors import GrunndataError
from grunndata.settings import Settings

app = typer.Typer(
    help="Norwegian medicinal-product master data: FEST/M30 and IDMP over FHIR R5.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
import_app = typer.Typer(help="Load a delivery into the store as a new release.", no_args_is_help=True)
export_app = typer.Typer(help="Write deliveries in the old formats from the store.", no_args_is_help=True)
generate_app = typer.Typer(help="Write realistic sample FEST deliveries.", no_args_is_help=True)
catalog_app = typer.Typer(help="The service catalogue: check files, probe services.", no_args_is_help=True)
app.add_typer(import_app, name="import")
app.add_typer(export_app, name="export")
app.add_typer(generate_app, name="generate")
package_app = typer.Typer(help="Our own FHIR package (no.grunndata.fhir).", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(package_app, name="package")

# Reports are tables: when piped (CI, logs) give them room instead of rich's 80-column default.
out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True, soft_wrap=True)  # an error is one sentence on one line

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Database URL (sqlite:///FILE or postgresql://...); default GRUNNDATA_DB or ./grunndata.db",
    ),
]
StageOption = Annotated[
    bool,
    typer.Option(
        "--stage",
        help="Write and check the release but serve it to no one; `activate N` makes it active, `discard N` drops it",
    ),
]


def _version(asked: bool) -> None:
    if asked:
        from grunndata import __version__

        out.print(f"grunndata {__version__}", highlight=False)
        raise typer.Exit()


@app.callback()
def _load_settings(
    ctx: typer.Context,
    version: Annotated[
        bool, typer.Option("--version", help="Print the version and exit", callback=_version, is_eager=True)
    ] = False,
) -> None:
    # `main` passes the settings it read; a caller of `app` itself (CliRunner) gets them read here
    if ctx.obj is None:
        ctx.obj = Settings.load()


@import_app.callback()
def _import_priority(ctx: typer.Context) -> None:
    """Every import runs at GRUNNDATA_IMPORT_NICE, and so do the PostgreSQL backends serving it
    when they run on this machine (exporters/runner.py nice_backend): a full-size import beside a
    server on two cores raised the server's p99 2.3x (SQLite) and 3x (PostgreSQL) while it ran
    (benchmarks/RESULTS.md)."""
    niceness = _settings(ctx).import_nice
    if niceness > 0:
        ctx.meta[_IMPORT_NICE] = niceness  # and the PostgreSQL backends on this machine (`_engine`)
        with contextlib.suppress(OSError):  # a sandbox may forbid it: the import runs as it is
            os.setpriority(os.PRIO_PROCESS, 0, max(niceness, os.getpriority(os.PRIO_PROCESS, 0)))


_IMPORT_NICE = "grunndata.import_nice"


def _settings(ctx: typer.Context) -> Settings:
    return cast(Settings, ctx.obj)


def _engine(ctx: typer.Context, db: str | None, *, new: bool = False) -> Any:
    """The store at `--db`, else GRUNNDATA_DB, else ./grunndata.db. Only an import or `serve` may
    make a new one (`new`); any other command on a missing or empty store is an error."""
    from grunndata.store import connect

    engine = connect(db or _settings(ctx).db, must_exist=not new)
    niceness = ctx.meta.get(_IMPORT_NICE, 0)
    if niceness and engine.dialect.name == "postgresql":  # its backends do most of an import's writing
        from sqlalchemy import event

        from grunndata.exporters.runner import nice_backend

        event.listen(engine, "connect", lambda dbapi, _record: nice_backend(dbapi, niceness))
    return engine


def _bar(label: str, counts: str) -> Progress:
    """The progress bar long commands show on stderr: a bold label, the bar, `counts`, the time."""
    return Progress(
        TextColumn(f"[bold]{label}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn(counts),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,  # in a pipe or a log it would leave only empty lines
    )


@import_app.command("fest")
def import_fest_cmd(
    ctx: typer.Context,
    path: Annotated[Path, typer.Argument(help="FEST delivery: .xml, .xml.gz or DMP's .zip")],
    db: DbOption = None,
    incremental: Annotated[
        bool, typer.Option("--incremental", help="The delivery is incremental (has Status U entries)")
    ] = False,
    force: Annotated[bool, typer.Option("--force", help="Import even if a guard would refuse it")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report, write nothing")] = False,
    stage: StageOption = False,
) -> None:
    """Import a FEST/M30 delivery (full by default) as a new release."""
    from grunndata.importers.fest import import_fest

    engine = _engine(ctx, db, new=not dry_run)
    with _bar(
        "{task.description:<22}", "{task.fields[entries]:>7,} entries  {task.fields[rate]:>6,.0f}/s"
    ) as bar:
        phases: dict[str, Any] = {}  # phase -> its task

        def progress(catalogue: str | None, entries: int, done: int, total: int) -> None:
            """One bar a phase (reading the file, checking, making FHIR), each with its own rate and time left."""
            phase = (
                "fhir"
                if catalogue and catalogue.startswith("FHIR")
                else "reading"
                if catalogue
                else "checking"
            )
            if phase not in phases:
                for old in phases.values():
                    bar.update(old, completed=bar.tasks[old].total or 0)
                    bar.stop_task(old)
                phases[phase] = bar.add_task(phase, total=None, entries=0, rate=0.0)
            task = phases[phase]
            elapsed = bar.tasks[task].elapsed or 1e-9
            bar.update(
                task,
                description=catalogue or "checking and writing",
                completed=done,
                total=total,
                entries=entries,
                rate=entries / elapsed if phase != "checking" else 0.0,
            )

        try:
            result = import_fest(
                engine,
                path,
                incremental=incremental,
                force=force,
                dry_run=dry_run,
                progress=progress,
                max_xml_bytes=_settings(ctx).max_xml_bytes,
                stage=stage,
            )
        except GrunndataError:
            bar.stop()
            raise
    _print_report(result)


@import_app.command("safest")
def import_safest_cmd(
    ctx: typer.Context,
    path: Annotated[
        Path, typer.Argument(help="SAFEST/IDMP data: a Bundle, ndjson, a resource, or a folder; JSON or XML")
    ],
    db: DbOption = None,
    force: Annotated[bool, typer.Option("--force", help="Import even if a guard would refuse it")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report, write nothing")] = False,
    stage: StageOption = False,
) -> None:
    """Import SAFEST/IDMP data (R4 with the NOMA profiles, or R5) into the national line, beside FEST."""
    from grunndata.importers.safest import import_safest

    engine = _engine(ctx, db, new=not dry_run)
    with err.status("reading and converting ...") as status:

        def progress(what: str | None, items: int, done: int, total: int) -> None:
            status.update(f"{what or 'writing'}: {done:,} of {total:,}")

        result = import_safest(
            engine,
            path,
            force=force,
            dry_run=dry_run,
            progress=progress,
            catalogue_owners=_catalogue_owners(ctx),
            max_file_bytes=_settings(ctx).max_resource_file_bytes,
            stage=stage,
        )
    out.print(f"{result.file}: {result.read:,} resources read; as R5: " + _counts(result.types))
    _print_resources(result.resources, "FHIR R5 resources served from FEST and SAFEST")
    _print_reconciliation(result.reconciliation, result.release_id)
    _print_content_filters(result.content_filters)
    if result.warnings:
        kinds = Counter(w["kind"] for w in result.warnings)
        out.print(
            f"[yellow]{len(result.warnings):,} warnings[/yellow] ({_counts(dict(sorted(kinds.items())))}; "
            f"{_first_20(len(result.warnings), result.release_id)}):"
        )
        for w in sorted(result.warnings, key=lambda w: w["kind"] == "conversion")[:20]:
            where = f"{w['where']}: " if "where" in w else ""
            out.print(f"  {w['kind']}: {where}{w['resource']}: {w['message']}")
    out.print(f"{result.seconds:.1f} s.")
    _print_outcome(result)


def _catalogue_owners(ctx: typer.Context) -> set[str]:
    """The owners the GRUNNDATA_CATALOG files name: their Organization ids are the catalogue's."""
    from grunndata.catalog import load_catalogue

    return {s.owner for path in _settings(ctx).catalog for s in load_catalogue(path)}


def _import_tiered(
    ctx: typer.Context,
    tier: str,
    path: Path,
    owner: str,
    owner_name: str | None,
    db: str | None,
    dry_run: bool,
    stage: bool,
) -> None:
    from grunndata.importers.tiered import TieredDeliveryError, import_tiered

    engine = _engine(ctx, db, new=not dry_run)
    try:
        with err.status("reading and checking ..."):
            result = import_tiered(
                engine,
                path,
                tier=tier,
                owner=owner,
                owner_name=owner_name,
                dry_run=dry_run,
                catalogue_owners=_catalogue_owners(ctx),
                max_file_bytes=_settings(ctx).max_resource_file_bytes,
                stage=stage,
            )
    except TieredDeliveryError as e:  # every problem with its line, then the usual one sentence
        for problem in e.problems[1:]:
            err.print(f"error: {problem}", markup=False, highlight=False)
        raise
    out.print(f"{result.file}: {result.records:,} records for {owner} ({tier}).")
    _print_resources(result.resources, f"{tier.capitalize()} resources of {owner}")
    for w in result.warnings[:20]:
        out.print(f"  [yellow]warning[/yellow] {w}")
    out.print(f"{result.seconds:.1f} s.")
    _print_outcome(result)


OwnerOption = Annotated[
    str, typer.Option("--owner", help="The data owner's id (a-z, 0-9, -), e.g. sykehusapotek-vest")
]
OwnerNameOption = Annotated[str | None, typer.Option("--owner-name", help="The owner's name, for listings")]
TieredPath = Annotated[
    Path,
    typer.Argument(
        help="FHIR resources (Bundle, ndjson, a resource; JSON or XML) or CSV keyed on national ids"
    ),
]


@import_app.command("sector")
def import_sector_cmd(
    ctx: typer.Context,
    path: TieredPath,
    owner: OwnerOption,
    owner_name: OwnerNameOption = None,
    db: DbOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report, write nothing")] = False,
    stage: StageOption = False,
) -> None:
    """Import an owner's sector data (value added for part of the sector), replacing its previous data."""
    _import_tiered(ctx, "sector", path, owner, owner_name, db, dry_run, stage)


@import_app.command("supplementary")
def import_supplementary_cmd(
    ctx: typer.Context,
    path: TieredPath,
    owner: OwnerOption,
    owner_name: OwnerNameOption = None,
    db: DbOption = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check and report, write nothing")] = False,
    stage: StageOption = False,
) -> None:
    """Import an owner's supplementary data (market-driven extras), replacing its previous data."""
    _import_tiered(ctx, "supplementary", path, owner, owner_name, db, dry_run, stage)


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k} {v:,}" for k, v in counts.items()) or "none"


def _print_resources(resources: dict[str, dict[str, int]], title: str) -> None:
    if not resources:
        return
    fhir = Table(title=title)
    for col in ("Resource type", "served", "new", "changed", "unchanged", "expired"):
        fhir.add_column(col, justify="left" if col == "Resource type" else "right")
    for name, c in resources.items():
        served = c["new"] + c["changed"] + c["unchanged"]
        fhir.add_row(name, f"{served:,}", *(f"{c[k]:,}" for k in ("new", "changed", "unchanged", "expired")))
    out.print(fhir)


def _first_20(count: int, release_id: int | None) -> str:
    """What a report shows of a long list, and where the rest is."""
    if count <= 20:
        return "all"
    if release_id is None:  # a dry run, or nothing changed: no report was kept
        return "the first 20"
    from grunndata.importers.run import MAX_REPORTED

    kept = "all" if count <= MAX_REPORTED else f"the first {MAX_REPORTED:,}"
    return f"the first 20; `grunndata releases show {release_id}` lists {kept}"


def _print_reconciliation(reconciliation: dict[str, Any] | None, release_id: int | None) -> None:
    if not reconciliation:
        return
    out.print("FEST and SAFEST both describe: " + _counts(reconciliation["linked"]))
    out.print("From FEST only: " + _counts(reconciliation["fest_only"]))
    out.print("From SAFEST only: " + _counts(reconciliation["idmp_only"]))
    n = reconciliation["disagreement_count"]
    if n:
        out.print(f"[yellow]{n:,} disagreements[/yellow] ({_first_20(n, release_id)}):")
        for d in reconciliation["disagreements"][:20]:
            out.print(f"  {d['resource']} {d['element']}: FEST {d['fest']!r}, SAFEST {d['safest']!r}")


def _print_content_filters(filters: dict[str, Any] | None) -> None:
    """What each H-resept content filter leaves out of the release (`content-filter=h-resept`)."""
    if not filters:
        return
    when = (
        f"now = HentetDato {filters['now']}" if filters["now"] else "no HentetDato: time filters not judged"
    )
    parts = [f"{code} {sum(by_type.values()):,}" for code, by_type in filters["excluded"].items()]
    out.print(f"H-resept view leaves out ({when}): " + ", ".join(parts))


def _print_outcome(result: Any) -> None:
    if result.dry_run:
        out.print("Dry run: the delivery passed every check; nothing was written.")
    elif result.release_id is None:
        out.print(f"Nothing changed: the delivery is identical to the active release {result.based_on}.")
    elif result.staged:
        n = result.release_id
        against = f"releases diff {result.based_on} {n}" if result.based_on else f"releases show {n}"
        out.print(
            f"[green]Release {n} is staged[/green]: checked, not served. Review it (`grunndata {against}`), "
            f"then `grunndata activate {n}` or `grunndata discard {n}`.",
            highlight=False,
        )
    else:
        out.print(f"[green]Release {result.release_id} is now active.[/green]")


def _print_report(result: Any) -> None:
    table = Table(title=f"{result.file}: {result.kind} delivery, HentetDato {result.hentet_dato}")
    for col in ("Catalogue", "entries", "new", "changed", "unchanged", "expired"):
        table.add_column(col, justify="left" if col == "Catalogue" else "right")
    for name, c in result.catalogues.items():
        table.add_row(name, *(f"{c[k]:,}" for k in ("entries", "new", "changed", "unchanged", "expired")))
    out.print(table)
    _print_resources(result.resources, "FHIR R5 resources made from the release")
    _print_reconciliation(result.reconciliation, result.release_id)
    _print_content_filters(result.content_filters)
    split = {k: v for k, v in result.kinds.items() if k not in result.catalogues}
    if split:
        out.print("Payload kinds: " + ", ".join(f"{k} {v:,}" for k, v in split.items()))
    if result.warnings:
        out.print(
            f"[yellow]{len(result.warnings):,} warnings[/yellow] ({_first_20(len(result.warnings), result.release_id)}):"
        )
        for w in result.warnings[:20]:
            if w.catalogue is None:  # about a FHIR resource served from the release
                out.print(f"  {w.kind}: {w.entry_id}: {w.message}")
                continue
            where = f"line {w.line}" if w.line else "active release"
            which = f" Id {w.entry_id}" if w.entry_id else ""
            out.print(f"  {w.kind}: {w.catalogue}{which} ({where}): {w.message}")
    rate = result.entries / result.seconds if result.seconds else 0
    out.print(f"{result.entries:,} entries in {result.seconds:.1f} s ({rate:,.0f} entries/s).")
    _print_outcome(result)


@export_app.command("m30")
def export_m30_cmd(
    ctx: typer.Context,
    db: DbOption = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="HENTETDATO",
            help="Only what changed since the delivery with this HentetDato (as received), with Status U for expiries",
        ),
    ] = None,
    output: Annotated[
        Path,
        typer.Option(
            "-o",
            "--output",
            help="Where to write: .xml, .xml.gz or .zip (DMP's fest251.zip); - for standard output",
        ),
    ] = Path("fest251.xml"),
) -> None:
    """Write the national data as a FEST/M30 delivery, full or incremental, valid against the XSD."""
    import shutil
    import tempfile

    if str(output) == "-":  # the XML to stdout, the report to stderr
        with tempfile.TemporaryDirectory(prefix="grunndata-m30-") as folder:
            written = Path(folder) / "fest251.xml"
            _export_m30(
                ctx, db, since, written, Console(stderr=True, width=out.width), shown="standard output"
            )
            with written.open("rb") as f:
                shutil.copyfileobj(f, sys.stdout.buffer, 1 << 20)
            sys.stdout.buffer.flush()
        return
    _export_m30(ctx, db, since, output, out, shown=str(output))


@export_app.command("ndjson")
def export_ndjson_cmd(
    ctx: typer.Context,
    db: DbOption = None,
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", help="The folder to write into (made if missing; must hold no export)"
        ),
    ] = Path("export"),
    types: Annotated[
        str | None,
        typer.Option("--type", metavar="TYPES", help="Only these resource types, comma-separated (as _type)"),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="INSTANT",
            help="Only what changed after this instant (as _since), and deleted.ndjson.gz for what was removed",
        ),
    ] = None,
    sector: Annotated[bool, typer.Option("--sector", help="With the sector tier's data")] = False,
    supplementary: Annotated[
        list[str] | None,
        typer.Option(
            "--supplementary", metavar="OWNER", help="With this owner's supplementary data (* for all)"
        ),
    ] = None,
) -> None:
    """Write what the store serves as FHIR Bulk Data ndjson, one gzip file per type, as `$export` does."""
    from grunndata.exporters import export_ndjson, export_types, since_instant
    from grunndata.store import instant, open_connection
    from grunndata.store.bulk import Entitlement, entitled_snapshot

    named = [t.strip() for t in (types or "").split(",") if t.strip()]
    wanted = export_types(named)
    after = None if since is None else since_instant(since)
    if output.exists() and not output.is_dir():
        raise GrunndataError(f"{output} is a file; give a folder to write the ndjson files into")
    if not output.parent.is_dir():
        raise GrunndataError(f"the folder {output.parent} does not exist")
    if output.is_dir() and any(output.glob("*.ndjson.gz")):
        raise GrunndataError(f"{output} holds an export already; give an empty or new folder")
    entitled = Entitlement(sector, frozenset(supplementary or ()))
    engine = _engine(ctx, db)
    with open_connection(engine) as conn:
        snapshot = entitled_snapshot(conn, entitled)
    with _bar("writing ndjson", "{task.completed:>7,} resources") as bar:
        task = bar.add_task("writing", total=None)

        def progress(done: int, total: int) -> bool:
            bar.update(task, completed=done, total=total)
            return True

        result = export_ndjson(
            engine, output, snapshot=snapshot, types=wanted, since=after, entitled=entitled, progress=progress
        )
    table = Table(
        title=f"{output}: FHIR Bulk Data ndjson{'' if since is None else ' changed since ' + since}"
    )
    table.add_column("File")
    table.add_column("resources", justify="right")
    for _, name, n in result.files():
        table.add_row(name, f"{n:,}")
    out.print(table)
    total = sum(result.counts.values())
    out.print(
        f"Wrote {total:,} resources{f' and {result.deleted:,} deletions' if since is not None else ''} in "
        f"{result.seconds:.1f} s from release{'s' if len(snapshot.releases) != 1 else ''} "
        f"{', '.join(map(str, snapshot.releases)) or '(none)'}; transactionTime "
        f"{instant(result.transaction_time)} (the --since of the next export)."
    )


def _export_m30(
    ctx: typer.Context, db: str | None, since: str | None, output: Path, console: Console, shown: str
) -> None:
    from grunndata.exporters import export_m30

    if output.is_dir():
        raise GrunndataError(f"{output} is a folder; give a file name such as {output / 'fest251.xml'}")
    if not output.parent.is_dir():
        raise GrunndataError(f"the folder for {output} does not exist")
    engine = _engine(ctx, db)
    with _bar("writing M30", "{task.completed:>7,} entries") as bar:
        task = bar.add_task("writing", total=None)
        result = export_m30(
            engine,
            output,
            since=since,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    table = Table(title=f"{shown}: {result.kind} delivery, HentetDato {result.hentet_dato}")
    for col in ("Catalogue", "entries", "expired (Status U)"):
        table.add_column(col, justify="left" if col == "Catalogue" else "right")
    for name in sorted(set(result.entries) | set(result.expired), key=_catalogue_order):
        table.add_row(name, f"{result.entries.get(name, 0):,}", f"{result.expired.get(name, 0):,}")
    console.print(table)
    total = sum(result.entries.values()) + sum(result.expired.values())
    console.print(
        f"Wrote {shown} ({output.stat().st_size:,} bytes, {total:,} entries) in {result.seconds:.1f} s "
        f"from release{'s' if len(result.releases) != 1 else ''} {', '.join(map(str, result.releases)) or '(none)'}."
    )
    if result.idmp_written:
        console.print("From SAFEST/IDMP alone (counted above): " + _counts(result.idmp_written))
    for catalogue, elements in result.unfilled.items():
        console.print(
            f"[yellow]{catalogue}[/yellow]: required FEST elements IDMP could not fill (written empty, or "
            "the entry left out): "
            + ", ".join(f"{path.rsplit('/', 1)[-1]} {n:,}" for path, n in elements.items())
        )
    for catalogue, reasons in result.idmp.left_out_by_reason().items():
        for reason, n in reasons.items():
            console.print(f"[yellow]Left out[/yellow] {n:,} {catalogue}: {reason}")
    if result.idmp_only:
        console.print("Not written (SAFEST resources no FEST entry can hold): " + _counts(result.idmp_only))


def _catalogue_order(name: str) -> int:
    from grunndata.m30 import catalogue

    return catalogue(name).order


releases_app = typer.Typer(
    help="The store's releases: list them (newest last), or show one's whole report.",
    invoke_without_command=True,
)
app.add_typer(releases_app, name="releases")
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table (for scripts)")]


def _short(message: str | None, limit: int = 80) -> str:
    """A failure reason cut at its first clause, for one line of the table (`releases show N` has it all)."""
    if not message:
        return ""
    first = message.split("; ", 1)[0].split(" (", 1)[0]
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


@releases_app.callback()
def releases(ctx: typer.Context, db: DbOption = None, as_json: JsonOption = False) -> None:
    """List releases, newest last (`releases show N` gives one's whole report)."""
    if ctx.invoked_subcommand is not None:
        return
    from grunndata.store import list_releases, release_json, served_totals

    rows = list_releases(_engine(ctx, db), with_report=False)
    if as_json:
        sys.stdout.write(_json([release_json(r, report=False) for r in rows]))
        return
    if not rows:
        out.print("No releases yet: import a delivery with `grunndata import fest PATH`.")
        return
    if out.width < 120:  # a narrow terminal: a table of 11 columns would cut every value
        for r in rows:
            served = served_totals(r.counts or {})
            counted = f"  {served['entries']:,} entries, {served['fhir']:,} FHIR" if r.counts else ""
            out.print(
                f"[bold]{r.id}[/bold] {r.status} {r.source} {r.kind} {r.tier}/{r.owner_id} "
                f"{r.started_at:%Y-%m-%d %H:%M}{counted}",
                highlight=False,
            )
            if r.hentet_dato:  # whole: `export m30 --since` takes it exactly as it is
                out.print(f"  HentetDato {r.hentet_dato}", highlight=False, soft_wrap=True)
            if r.message:
                out.print(f"  {_short(r.message)}", highlight=False)
        return
    table = Table()
    whole = max((len(r.hentet_dato or "") for r in rows), default=0)
    for col in ("Release", "Status", "Source", "Kind", "Tier/owner", "HentetDato", "File", "Started"):
        # HentetDato whole, never cut: `export m30 --since` takes it exactly as it is
        table.add_column(col, no_wrap=True, min_width=whole if col == "HentetDato" else None)
    for col in ("Entries", "FHIR"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("Note", min_width=16)
    for r in rows:
        served = served_totals(r.counts or {})
        table.add_row(
            str(r.id),
            r.status,
            r.source,
            r.kind,
            f"{r.tier}/{r.owner_id}",
            r.hentet_dato or "",
            r.file_name or "",
            f"{r.started_at:%Y-%m-%d %H:%M:%S}",
            f"{served['entries']:,}" if r.counts else "",
            f"{served['fhir']:,}" if r.counts else "",
            _short(r.message),
        )
    out.print(table)


LISTS = "; `grunndata releases` lists them"  # what a command naming one release adds when it is not


def _release(text: str, hint: str = "") -> int:
    """A release number given on the command line, by the rule the HTTP routes keep (digits as
    written): anything else ("004", " 4", "+4") is a release the store does not hold."""
    from grunndata.store.releases import release_number

    n = release_number(text)
    if n is None:
        raise GrunndataError(f"there is no release {text}{hint}")
    return n


@releases_app.command("show")
def releases_show(
    ctx: typer.Context,
    release: Annotated[str, typer.Argument(help="The release's number (the first column of `releases`)")],
    db: DbOption = None,
    as_json: JsonOption = False,
) -> None:
    """One release's whole report: why it failed, every problem and warning with its place, the counts."""
    from grunndata.store import release_json, release_row
    from grunndata.store.releases import item_text

    r = release_row(_engine(ctx, db), _release(release, LISTS))
    if r is None:
        raise GrunndataError(f"there is no release {release}{LISTS}")
    whole = release_json(r, report=True)
    if as_json:
        sys.stdout.write(_json(whole))
        return
    out.print(
        f"[bold]Release {r.id}[/bold]: {r.status}, {r.source} {r.kind} for {r.tier}/{r.owner_id}"
        + (f", HentetDato {r.hentet_dato}" if r.hentet_dato else "")
        + (f", from {r.file_name}" if r.file_name else ""),
        highlight=False,
    )
    if r.message:
        out.print(Text.assemble(("Why:", "red"), f" {r.message}"), highlight=False)
    report = whole["report"]
    for kind in ("problems", "warnings"):
        items = report.get(kind) or []
        count = report.get(f"{kind[:-1]}_count", len(items))
        if not count:
            continue
        shown = f" (the first {len(items):,} are kept)" if len(items) < count else ""
        out.print(f"[yellow]{count:,} {kind}[/yellow]{shown}:")
        for item in items:
            out.print(f"  - {item_text(item)}", highlight=False, soft_wrap=True, markup=False)
    if r.counts:
        _print_resources(
            {t: c for t, c in r.counts.items() if isinstance(c, dict)}, "What the release holds, by type"
        )


@releases_app.command("diff")
def releases_diff(
    ctx: typer.Context,
    base: Annotated[str, typer.Argument(help="The release compared against (the older one, usually)")],
    target: Annotated[
        str | None,
        typer.Argument(help="The release compared; without it, BASE against the release it was built on"),
    ] = None,
    db: DbOption = None,
    rtype: Annotated[
        str | None,
        typer.Option(
            "--type", help="Only entries of this FEST catalogue or FHIR type (e.g. Legemiddelpakning)"
        ),
    ] = None,
    show: Annotated[int, typer.Option("--show", help="Entries listed (with their changed elements)")] = 20,
    offset: Annotated[int, typer.Option("--offset", help="Entries skipped before those listed")] = 0,
    as_json: JsonOption = False,
) -> None:
    """What changed between two releases of a line: per catalogue and type the new, changed and
    expired entries, and each changed entry's elements (old value, new value)."""
    from grunndata.store.diff import diff_json

    if show < 0 or offset < 0:
        raise GrunndataError("--show and --offset must be 0 or more")
    engine = _engine(ctx, db)
    if target is None:
        from grunndata.store import release_row

        row = release_row(engine, _release(base, LISTS))
        if row is None:
            raise GrunndataError(f"there is no release {base}{LISTS}")
        if row.based_on is None:
            raise GrunndataError(
                f"release {base} was the first of its line: name the release to compare it with"
            )
        pair = (row.based_on, row.id)
    else:
        pair = (_release(base), _release(target))
    with engine.connect() as conn:
        diff = diff_json(conn, *pair, rtype=rtype, offset=offset, count=show)
    if as_json:
        sys.stdout.write(_json(diff))
        return
    _print_diff(diff)


def _print_diff(diff: dict[str, Any]) -> None:
    a, b = diff["base"], diff["target"]
    out.print(
        f"[bold]Release {a['id']} ({a['status']}) -> {b['id']} ({b['status']})[/bold], "
        f"{diff['tier']}/{diff['owner']}"
        + (f", HentetDato {a['hentet_dato']} -> {b['hentet_dato']}" if b["hentet_dato"] else ""),
        highlight=False,
    )
    for group, title in (("catalogues", "FEST catalogue"), ("resources", "FHIR type")):
        counts = diff["counts"][group]
        if not counts:
            continue
        table = Table()
        table.add_column(title)
        for col in ("new", "changed", "expired"):
            table.add_column(col, justify="right")
        for name, c in counts.items():
            table.add_row(name, *(f"{c[k]:,}" for k in ("new", "changed", "expired")))
        out.print(table)
    if not diff["total"]:
        out.print("No entries differ." if diff["type"] is None else f"No {diff['type']} entries differ.")
        return
    shown = diff["entries"]
    if shown:
        first = diff["offset"] + 1
        out.print(f"Entries {first:,} to {first + len(shown) - 1:,} of {diff['total']:,}:")
    for e in shown:
        safety = f" ({', '.join(e['safety'])})" if e["safety"] else ""
        out.print(f"  {e['change']:<8} {e['type']}/{e['id']}{safety}", highlight=False)
        for c in e.get("elements", []):
            out.print(
                f"      {c['path']}: {_value(c['old'])} -> {_value(c['new'])}",
                highlight=False,
                soft_wrap=True,
            )
        hidden = e.get("elements_total", 0) - len(e.get("elements", []))
        if hidden > 0:
            out.print(
                f"      ... {hidden:,} more (--json lists {len(e['elements']):,} of each)", highlight=False
            )


def _value(value: Any) -> str:
    """An element's value on one line: (none) where it is absent, JSON where it is not text."""
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    import orjson

    text = orjson.dumps(value).decode()
    return text if len(text) <= 120 else text[:119] + "…"


def _json(value: Any) -> str:
    import orjson

    return orjson.dumps(value, option=orjson.OPT_INDENT_2).decode() + "\n"


@app.command("rollback")
def rollback_cmd(
    ctx: typer.Context,
    release: Annotated[str, typer.Argument(help="The release whose data to serve again")],
    db: DbOption = None,
) -> None:
    """Serve an earlier release's data again, as a new release of its line (the current one becomes
    rolled-back): what changes back is told in the history as new versions and removals."""
    from grunndata.importers.run import rollback_to

    row = rollback_to(_engine(ctx, db), _release(release))
    out.print(
        f"Release {release}'s data (HentetDato {row.hentet_dato}) is served again, as release {row.id}.",
        highlight=False,
    )


@app.command("activate")
def activate_cmd(
    ctx: typer.Context,
    release: Annotated[str, typer.Argument(help="The staged release to make active")],
    db: DbOption = None,
) -> None:
    """Make a staged release active, as an import's end would (the line's current release is superseded)."""
    from grunndata.importers.run import activate_staged

    row = activate_staged(_engine(ctx, db), _release(release))
    date = f", HentetDato {row.hentet_dato}" if row.hentet_dato else ""
    out.print(f"[green]Release {row.id} ({row.source}{date}) is now active.[/green]", highlight=False)


@app.command("discard")
def discard_cmd(
    ctx: typer.Context,
    release: Annotated[str, typer.Argument(help="The staged release to drop")],
    db: DbOption = None,
) -> None:
    """Drop a staged release unserved: its data is removed, its record stays (status discarded)."""
    from grunndata.store import discard

    row = discard(_engine(ctx, db), _release(release))
    out.print(f"Release {row.id} ({row.source}) is discarded; nothing served changed.", highlight=False)


@app.command("reindex")
def reindex_cmd(ctx: typer.Context, db: DbOption = None) -> None:
    """Rebuild the search index of every stored release from its resources (after the search
    parameters changed); searches keep their answers from the old index until it is done."""
    from grunndata.store import reindex

    engine = _engine(ctx, db)
    with _bar("reindexing", "{task.fields[versions]}") as bar:
        task = bar.add_task("reindexing", total=None, versions="")

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, versions=f"{done:,} of {total:,} versions")

        try:
            done = reindex(engine, progress)
        except GrunndataError:
            bar.stop()
            raise
    out.print(
        f"Reindexed {done:,} stored FHIR resource versions; a running server keeps what it made "
        "from the old index (cached searches, FEST id maps) until its next release: restart it.",
        highlight=False,
    )


_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def _duration(text: str) -> Any:
    """`--older-than`: a whole number and a unit (s, m, h, d, w), as 90d or 12w."""
    from datetime import timedelta

    number, unit = text[:-1], text[-1:].lower()
    if unit not in _DURATION_UNITS or not number.isascii() or not number.isdigit():
        raise GrunndataError(
            f"--older-than {text!r}: give a whole number and a unit s, m, h, d or w (e.g. 90d)"
        )
    if len(number.lstrip("0")) > 6:
        raise GrunndataError(f"--older-than {text!r}: at most 999999 of a unit (999999w is 19,000 years)")
    return timedelta(seconds=int(number) * _DURATION_UNITS[unit])


@app.command("prune")
def prune_cmd(
    ctx: typer.Context,
    keep: Annotated[
        int | None, typer.Option("--keep", min=1, help="Keep the N newest releases of each line")
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option("--older-than", help="Prune only releases superseded longer ago than this (90d, 12w)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Say what would go, and how much; change nothing")
    ] = False,
    vacuum: Annotated[
        bool,
        typer.Option(
            "--vacuum",
            help="Then give the space back to the file system (SQLite VACUUM, PostgreSQL VACUUM FULL: reads wait)",
        ),
    ] = False,
    db: DbOption = None,
) -> None:
    """Remove superseded releases and what only they held. Always kept: the active release of every
    line, the GRUNNDATA_PRUNE_KEEP_ROLLBACK before it, releases superseded less than
    GRUNNDATA_PRUNE_GRACE_SECONDS ago, and those a running export or the notifier still reads."""
    from datetime import timedelta

    from grunndata.exporters.ndjson import job_folder
    from grunndata.store import prune
    from grunndata.store import vacuum as vacuum_store

    settings = _settings(ctx)
    if keep is None and older_than is None:
        raise GrunndataError(
            "say what to keep: --keep N (the newest releases of each line) or --older-than 90d"
        )
    engine = _engine(ctx, db)
    with _bar("pruning" if not dry_run else "counting", "{task.fields[versions]}") as bar:
        task = bar.add_task("pruning", total=None, versions="")

        def progress(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total, versions=f"{done:,} of {total:,} rows")

        try:
            result = prune(
                engine,
                keep=keep,
                older_than=None if older_than is None else _duration(older_than),
                keep_rollback=settings.prune_keep_rollback,
                grace=timedelta(seconds=settings.prune_grace_seconds),
                dry_run=dry_run,
                progress=progress,
            )
        except GrunndataError:
            bar.stop()
            raise
    if not dry_run and result.exports and settings.export_dir is not None:
        import shutil

        for job_id in result.exports:
            shutil.rmtree(job_folder(settings.export_dir, job_id), ignore_errors=True)
    if not result.pruned:
        out.print("Nothing to prune: every release is kept.", highlight=False)
    else:
        verb = "Would prune" if dry_run else "Pruned"
        out.print(
            f"{verb} {len(result.pruned)} release(s): {', '.join(map(str, result.pruned))}; "
            f"{result.rows.get('resource', 0):,} resource versions ({result.body_bytes / 1e6:,.1f} MB of bodies), "
            f"{result.rows.get('release_entry', 0):,} manifest rows.",
            highlight=False,
        )
        table = Table("Table", "Rows removed" if not dry_run else "Rows that would go")
        table.columns[1].justify = "right"
        for name, n in result.rows.items():
            table.add_row(name, f"{n:,}")
        out.print(table)
    for release_id, why in sorted(result.kept.items()):
        out.print(f"  kept {release_id}: {why}", highlight=False)
    if vacuum and not dry_run:
        with err.status("vacuuming ..."):
            vacuum_store(engine)
        out.print("Vacuumed: the freed space is back with the file system.", highlight=False)
    elif result.pruned and not dry_run:
        out.print(
            "The freed space is reused by the next imports; `--vacuum` gives it back to the file system.",
            highlight=False,
        )


@app.command()
def serve(
    ctx: typer.Context,
    db: DbOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=256, help="Server processes on this port (one per core is usual)")
    ] = 1,
    access_log: Annotated[
        bool, typer.Option(help="Log every request (GRUNNDATA_LOG_FORMAT: json, plain or off)")
    ] = True,
) -> None:
    """Serve the FHIR R5 API at /fhir (and /, /docs, /health, /livez, /readyz, /metrics, /releases)."""
    from grunndata.settings import prometheus_multiproc_dir

    multiproc = prometheus_multiproc_dir()
    if multiproc and not Path(multiproc).is_dir():  # prometheus-client would fail on it at import
        err.print(
            f"error: PROMETHEUS_MULTIPROC_DIR={multiproc} is no folder: make it (empty) or unset it",
            markup=False,
            highlight=False,
        )
        raise typer.Exit(2)
    import uvicorn

    from grunndata.server import create_app
    from grunndata.server.auth import Authenticator, AuthSettings, dev_mode_banner
    from grunndata.server.observe import log_config
    from grunndata.settings import hand_to_workers

    settings = _settings(ctx)
    if not access_log:
        settings = settings.model_copy(update={"log_format": "off"})
    engine = _engine(ctx, db, new=True)
    auth = Authenticator(
        AuthSettings.from_settings(settings)
    )  # bad GRUNNDATA_JWKS etc.: one sentence, exit 2
    if auth.settings.dev:
        err.print(f"[bold red]{dev_mode_banner()}[/bold red]")
    elif auth.settings.jwks is None:
        out.print("No GRUNNDATA_JWKS: national data only; tokens are refused (see the README, Access).")
    from grunndata.catalog import CatalogueError

    try:
        served_app = create_app(engine, auth, settings=settings)  # checked here, once, before any worker
    except CatalogueError as e:  # every problem of the catalogue files, then the usual one sentence
        for problem in e.problems[1:]:
            err.print(f"error: {problem}", markup=False, highlight=False)
        raise
    out.print(f"Serving FHIR R5 on http://{host}:{port}/fhir (capabilities at /fhir/metadata)")
    if workers == 1:
        uvicorn.run(served_app, host=host, port=port, log_config=log_config(), access_log=False)
        return
    # Each worker makes its own app from the environment: what this command was given goes there.
    engine.dispose()
    folder = hand_to_workers(settings, engine.url.render_as_string(hide_password=False))
    out.print(f"{workers} worker processes; their metrics are kept in {folder}")
    uvicorn.run(
        "grunndata.server.app:from_environment",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=log_config(),
        access_log=False,
    )


BaseUrlOption = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="Where this server is reached (our own services' addresses); default GRUNNDATA_BASE_URL, else http://127.0.0.1:8000",
    ),
]
CatalogOption = Annotated[
    list[Path] | None,
    typer.Option(
        "--catalog", help="A catalogue file (YAML or JSON); repeatable; default the GRUNNDATA_CATALOG files"
    ),
]


@catalog_app.command("check")
def catalog_check(
    files: Annotated[list[Path], typer.Argument(help="Catalogue files (YAML or JSON)")],
) -> None:
    """Check catalogue files: every problem with its file and line, or how many services they hold."""
    from grunndata.catalog import CatalogueError, check_unique, load_catalogue

    services, problems = [], []
    for f in files:  # every file, so one bad file does not hide the next one's problems
        try:
            services += load_catalogue(f)
        except CatalogueError as e:
            problems += e.problems
    if not problems:
        try:
            check_unique(services)
        except CatalogueError as e:
            problems += e.problems
    if problems:
        for problem in problems:
            err.print(f"error: {problem}", markup=False, highlight=False)
        raise typer.Exit(2)
    out.print(
        f"{len(services)} services in {len(files)} file{'s' if len(files) != 1 else ''}: all well-formed."
    )


@catalog_app.command("probe")
def catalog_probe(
    ctx: typer.Context,
    db: DbOption = None,
    base_url: BaseUrlOption = None,
    catalog: CatalogOption = None,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds per attempt")] = 5.0,
    retries: Annotated[
        int, typer.Option("--retries", help="Extra attempts after a timeout, connection error or 5xx")
    ] = 2,
) -> None:
    """Ask every FHIR service of the catalogue for its CapabilityStatement, concurrently; record
    availability and latency. Exit 1 when a service is down (for cron and monitoring)."""
    from grunndata.catalog import all_services
    from grunndata.catalog.cli import run_probe

    settings = _settings(ctx)
    engine = _engine(ctx, db, new=True)
    if not 0 < timeout <= 300:
        raise GrunndataError("--timeout must be more than 0 and at most 300 seconds")
    if not 0 <= retries <= 10:
        raise GrunndataError("--retries must be 0 to 10")
    ours = base_url or settings.base_url or "http://127.0.0.1:8000"
    services = all_services(engine, ours, list(catalog or settings.catalog))
    down = run_probe(engine, services, out, timeout, retries)
    raise typer.Exit(1 if down else 0)


@generate_app.command("fest")
def generate_fest(
    path: Annotated[Path, typer.Argument(help="Where to write: .xml, .xml.gz or .zip")],
    scale: Annotated[float, typer.Option(help="1.0 is the real size (~118 MB, ~69,000 entries)")] = 1.0,
    seed: Annotated[int, typer.Option(help="Same seed, same file")] = 0,
) -> None:
    """Write a realistic, XSD-valid full FEST delivery."""
    from grunndata.sample import generate_delivery

    if scale <= 0:
        raise GrunndataError("--scale must be greater than 0")
    path.parent.mkdir(parents=True, exist_ok=True)
    with err.status("generating ...") as status:
        counts = generate_delivery(
            path, scale=scale, seed=seed, progress=lambda cat, n: status.update(f"generating {cat}: {n:,}")
        )
    out.print(
        f"Wrote {path} ({path.stat().st_size:,} bytes): " + ", ".join(f"{k} {v:,}" for k, v in counts.items())
    )


@generate_app.command("followup")
def generate_followup(
    base: Annotated[Path, typer.Argument(help="A delivery written by `grunndata generate fest`")],
    path: Annotated[Path, typer.Argument(help="Where to write the next delivery")],
    incremental: Annotated[
        bool, typer.Option("--incremental", help="Only changes, with Status U for expiries")
    ] = False,
    seed: Annotated[int, typer.Option(help="Same seed, same changes")] = 1,
) -> None:
    """Write the delivery that follows BASE, with new, changed and expired entries."""
    from grunndata.sample import derive_followup

    if not base.is_file():
        raise GrunndataError(f"no such file: {base}")
    path.parent.mkdir(parents=True, exist_ok=True)
    with err.status("deriving ...") as status:
        counts = derive_followup(
            base,
            path,
            incremental=incremental,
            seed=seed,
            progress=lambda cat, n: status.update(f"deriving {cat}: {n:,}"),
        )
    total = {k: sum(c[k] for c in counts.values()) for k in ("new", "changed", "expired")}
    out.print(
        f"Wrote {path}: {total['new']:,} new, {total['changed']:,} changed, {total['expired']:,} expired entries."
    )


@app.command("validate")
def validate_cmd(
    ctx: typer.Context,
    path: Annotated[
        Path | None,
        typer.Argument(help="FHIR R5 resources: a Bundle, ndjson, a resource, or a folder; JSON or XML"),
    ] = None,
    db: Annotated[
        str | None, typer.Option("--db", help="Validate every resource this store's active releases serve")
    ] = None,
    packages: Annotated[
        Path | None,
        typer.Option(
            "--packages",
            help="The FHIR package cache; default GRUNNDATA_FHIR_PACKAGES or ~/.fhir/packages",
        ),
    ] = None,
    fetch: Annotated[
        bool, typer.Option("--fetch", help="Fill the cache with hl7.fhir.r5.core 5.0.0 from npm first")
    ] = False,
    schemas: Annotated[
        Path | None,
        typer.Option(
            "--schemas",
            help="The folder of DMP's M30 XSDs (or ER-M30-2014-12-01.xsd): check a FEST delivery PATH against them",
        ),
    ] = None,
    show: Annotated[int, typer.Option("--show", help="How many errors to print (all are counted)")] = 200,
) -> None:
    """Check FHIR R5 resources against the R5 core definitions and our package, or a FEST delivery
    against the M30 XSD; write nothing. Exit 1 on an error."""
    from grunndata.validation import default_cache, fetch_with_npm, load_core, validate_files, validate_store
    from grunndata.validation.fest import is_fest

    if path is not None and db is not None:
        raise typer.BadParameter("give a PATH or --db, not both")
    if path is None and db is None and not fetch:
        raise typer.BadParameter("give a PATH of FHIR resources or --db URL of a store to validate")
    if path is not None and (schemas is not None or is_fest(path)):
        # with --schemas the PATH is read as FEST: what is wrong with it is said as the importer says it
        _validate_fest(path, schemas, show, _settings(ctx).max_xml_bytes)
        return
    if schemas is not None:
        raise typer.BadParameter("--schemas checks a FEST delivery PATH, not a store (--db)")
    engine = _engine(ctx, db) if db is not None else None  # a store that is not there: said first
    cache = packages or _settings(ctx).fhir_packages or default_cache()
    if fetch:
        with err.status("fetching hl7.fhir.r5.core 5.0.0 with npm ..."):
            folder = fetch_with_npm(cache)
        out.print(f"Installed hl7.fhir.r5.core 5.0.0 into {folder}.")
        if path is None and engine is None:
            return
    with err.status("reading the R5 core definitions ..."):
        definitions = load_core(cache)
    with err.status("validating ..."):
        report = (
            validate_files(definitions, cast(Path, path), _settings(ctx).max_resource_file_bytes)
            if engine is None
            else validate_store(definitions, engine)
        )
    for problem in report.problems[:show]:
        out.print(problem.sentence(), highlight=False, markup=False, soft_wrap=True)
    if len(report.problems) > show:
        out.print(f"... and {len(report.problems) - show:,} more errors (--show N prints more).")
    counted = f" ({_counts(dict(sorted(report.by_rule().items())))})" if report.problems else ""
    resources = f"{report.resources:,} resource{'' if report.resources == 1 else 's'}"
    errors = f"{len(report.problems):,} error{'' if len(report.problems) == 1 else 's'}"
    out.print(f"{resources} validated; {errors}{counted}.", highlight=False)
    if report.not_checked:
        out.print(f"Not checked ({sum(report.not_checked.values()):,}):", highlight=False)
        for what, n in sorted(report.not_checked.items(), key=lambda kv: (-kv[1], kv[0])):
            out.print(f"  {n:,} {what}", highlight=False, markup=False)
    if report.problems:
        raise typer.Exit(1)


def _validate_fest(path: Path, schemas: Path | None, show: int, max_xml_bytes: int) -> None:
    from grunndata.validation.fest import SchemaError, validate_fest

    if schemas is None:
        raise typer.BadParameter(
            f"{path} is a FEST delivery: give --schemas DIR, the folder of DMP's M30 XSDs, to check it against them"
        )
    try:
        with err.status(f"checking {path.name} against the M30 XSD ..."):
            report = validate_fest(path, schemas, max_xml_bytes)
    except SchemaError as e:
        raise typer.BadParameter(str(e)) from None
    for problem in report.problems[:show]:
        out.print(problem.sentence(), highlight=False, markup=False, soft_wrap=True)
    if len(report.problems) > show:
        out.print(f"... and {len(report.problems) - show:,} more errors (--show N prints more).")
    errors = f"{len(report.problems):,} error{'' if len(report.problems) == 1 else 's'}"
    out.print(
        f"{report.resources:,} FEST entries checked against {report.schema.name}; {errors}.", highlight=False
    )
    if report.problems:
        raise typer.Exit(1)


@package_app.command("build")
def package_build_cmd(
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the package.tgz")] = Path(
        "grunndata-fhir.tgz"
    ),
) -> None:
    """Write our FHIR package: the definitions of our extensions, search parameters, naming systems,
    code systems, and the CapabilityStatement. The same code gives the same bytes."""
    from grunndata.fhirpackage import NAME, build_tgz, package_resources

    data = build_tgz()
    try:
        output.write_bytes(data)
    except OSError as e:
        raise GrunndataError(f"cannot write {output} ({e.strerror})") from e
    counts = Counter(r["resourceType"] for r in package_resources())
    shown = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    out.print(f"Wrote {output} ({NAME}, {len(data):,} bytes): {shown}.", highlight=False)


def main() -> None:
    debug = False
    try:
        settings = Settings.load()  # the one read of the environment; a bad value: one sentence
        debug = settings.debug
        app(obj=settings)
    except GrunndataError as e:
        err.print(f"[red]error:[/red] {e}", highlight=False)
        sys.exit(2)
    except KeyboardInterrupt:
        err.print("interrupted; nothing was changed, the previous release is still served")
        sys.exit(130)
    except Exception as e:  # noqa: BLE001  never a traceback for the user, unless asked
        if debug:
            raise
        err.print(
            f"[red]error:[/red] unexpected failure ({type(e).__name__}: {e}); set GRUNNDATA_DEBUG=1 for details",
            highlight=False,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
