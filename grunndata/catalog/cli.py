"""The body of `grunndata catalog probe`: probe, record, and show a table a person can scan."""

from __future__ import annotations

from collections.abc import Sequence

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy.engine import Engine

from grunndata.catalog.model import Service
from grunndata.catalog.probe import probe_and_record, probed


def run_probe(
    engine: Engine, services: Sequence[Service], console: Console, timeout: float = 5.0, retries: int = 2
) -> int:
    """Probe the FHIR services, record the results, print one row per service; the number down.

    Services a probe does not ask (not FHIR, or retired) are listed too, as not probed, so the
    table is the whole catalogue and nothing looks forgotten.
    """
    results = {r.service_id: r for r in probe_and_record(engine, services, timeout=timeout, retries=retries)}
    asked = {s.id for s in probed(services)}
    table = Table(title=f"Probe of {len(asked)} FHIR services (timeout {timeout:g} s, {retries} retries)")
    for column in ("Service", "State", "Latency", "Message"):
        table.add_column(column, justify="right" if column == "Latency" else "left")
    for service in services:
        result = results.get(service.id)
        name = escape(service.id)  # ids, URLs and resource types in messages come from files and servers
        if result is None:
            why = "retired" if service.status == "retired" else f"{service.interface} interface"
            table.add_row(name, "[dim]not probed[/]", "", f"[dim]{escape(why)}[/]")
        elif result.up:
            table.add_row(name, "[green]up[/]", f"{result.latency_ms:.0f} ms", escape(result.message))
        else:
            table.add_row(name, "[red]down[/]", "", escape(result.message))
    console.print(table)
    down = sum(1 for r in results.values() if not r.up)
    console.print(
        f"{len(results) - down} up, {down} down, {len(services) - len(results)} not probed.",
        highlight=False,
    )
    return down
