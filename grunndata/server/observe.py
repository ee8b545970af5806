"""What an operator watches: Prometheus metrics and one log line per request.

`Observe` is a plain ASGI layer outside everything else (the fast path included, server/fastpath.py),
so a read answered from prepared bytes is counted and logged like one the framework answered. A
request is labelled by its route's template (`/fhir/PackagedProductDefinition/{rid}`), never by its raw path: the
labels stay a bounded set however many ids clients ask for.

With several worker processes each keeps its own counters; prometheus-client's multiprocess mode
(the PROMETHEUS_MULTIPROC_DIR variable, which the library reads when it is first imported) has them
write to files in one folder that `/metrics` adds up, whichever process answers the scrape.
`grunndata serve --workers N` makes such a folder when the variable is not set.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Iterable, MutableMapping
from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.routing import iter_route_contexts
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.engine import Engine
from starlette.routing import BaseRoute

from grunndata.server.access import ACCESS
from grunndata.server.auth import NATIONAL, Access
from grunndata.server.faults import REQUEST_ID
from grunndata.store import SEARCHED_TYPES, list_releases
from grunndata.translators.safest.codesystem import CODE_SYSTEM
from grunndata.translators.safest.to_r4 import SAFEST_TYPES

# kept out of a plain line: a decoded %0A (or a line break Unicode knows) would start another
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _escaped(text: str) -> str:
    return _CONTROL.sub(
        lambda c: f"\\x{ord(c.group()):02x}" if ord(c.group()) < 256 else f"\\u{ord(c.group()):04x}", text
    )


UNMATCHED = "(no route)"  # a path no route takes: one label for all of them
access_log = logging.getLogger("grunndata.access")

REQUESTS = Counter(
    "grunndata_http_requests",
    "HTTP requests answered, by method, route template and status.",
    ("method", "route", "status"),
)
LATENCY = Histogram(
    "grunndata_http_request_duration_seconds",
    "Seconds from a request's arrival to the last byte of its answer, by method and route template.",
    ("method", "route"),
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
CACHE = Counter(
    "grunndata_cache_lookups",
    "Lookups of a server process's caches of prepared answers, by cache (read, search) and result "
    "(hit, miss); hit ratio = hits / all lookups.",
    ("cache", "result"),
)
SEARCH_HIT, SEARCH_MISS = CACHE.labels("search", "hit"), CACHE.labels("search", "miss")
READ_HIT, READ_MISS = CACHE.labels("read", "hit"), CACHE.labels("read", "miss")


def log_config() -> dict[str, Any]:
    """uvicorn's logging, plus ours: the request lines to standard output as they are (a JSON line
    stays one JSON object), the server's warnings and failures as uvicorn prints its own."""
    from uvicorn.config import LOGGING_CONFIG

    config: dict[str, Any] = {
        **LOGGING_CONFIG,
        "formatters": {**LOGGING_CONFIG["formatters"], "line": {"format": "%(message)s"}},
        "handlers": {
            **LOGGING_CONFIG["handlers"],
            "requests": {"class": "logging.StreamHandler", "formatter": "line", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            **LOGGING_CONFIG["loggers"],
            "grunndata.access": {"handlers": ["requests"], "level": "INFO", "propagate": False},
            "grunndata": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }
    return config


class StoreMetrics:
    """The releases as metrics, read from the store at each scrape: so an import made by the CLI,
    another process or another machine is counted, and every worker gives the same figures."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterable[Metric]:
        rows = list_releases(self.engine, with_report=False)
        now = datetime.now(UTC)
        release = GaugeMetricFamily(
            "grunndata_active_release",
            "The active release of each line (tier, owner): its number.",
            labels=("tier", "owner"),
        )
        age = GaugeMetricFamily(
            "grunndata_active_release_age_seconds",
            "Seconds since each line's active release was activated.",
            labels=("tier", "owner"),
        )
        national = [r for r in rows if r.status == "active" and r.tier == NATIONAL]
        for r in rows:
            if r.status == "active":
                release.add_metric((r.tier, r.owner_id), r.id)
                if r.activated_at is not None:
                    age.add_metric((r.tier, r.owner_id), (now - _utc(r.activated_at)).total_seconds())
        yield release
        yield age
        yield GaugeMetricFamily(
            "grunndata_national_release_active",
            "1 when a national release is active (what /readyz asks by default), else 0.",
            value=1 if national else 0,
        )
        outcomes: dict[tuple[str, str], int] = {}
        for r in rows:
            outcomes[r.source, r.status] = outcomes.get((r.source, r.status), 0) + 1
        imports = GaugeMetricFamily(
            "grunndata_imports",
            "Imports in the store by source and outcome (active, superseded, rolled-back, failed: "
            "refused or broken, building).",
            labels=("source", "status"),
        )
        for (source, status), n in sorted(outcomes.items()):
            imports.add_metric((source, status), n)
        yield imports
        last = GaugeMetricFamily(
            "grunndata_last_import_duration_seconds",
            "How long the newest finished import of each source and outcome took.",
            labels=("source", "status"),
        )
        done: dict[tuple[str, str], float] = {}
        for r in rows:  # oldest first: the newest wins
            if r.ended_at is not None and r.started_at is not None:
                done[r.source, r.status] = (r.ended_at - r.started_at).total_seconds()
        for key, seconds in sorted(done.items()):
            last.add_metric(key, seconds)
        yield last


def _utc(t: datetime) -> datetime:
    """A store time as UTC: SQLite gives it back without a zone, PostgreSQL with one."""
    return t.replace(tzinfo=UTC) if t.tzinfo is None else t


def exposition(engine: Engine, multiproc_dir: str | None) -> tuple[bytes, str]:
    """The text `/metrics` answers: this process's (or, with `multiproc_dir`, every process's)
    request and cache metrics, then the store's."""
    if multiproc_dir:
        processes = CollectorRegistry()
        MultiProcessCollector(processes, multiproc_dir)  # type: ignore[no-untyped-call]
        own = generate_latest(processes)
    else:
        own = generate_latest(REGISTRY)
    store = CollectorRegistry(auto_describe=False)
    store.register(StoreMetrics(engine))
    return own + generate_latest(store), CONTENT_TYPE_LATEST


_R4_TYPES = frozenset((*SAFEST_TYPES, CODE_SYSTEM))  # what /fhir-r4 serves (routes/r4.py R4_TYPES)


def _shape(scope: dict[str, Any]) -> tuple[str, str] | None:
    """A bounded key for the requests the fast path answers (`/fhir/<type>` and `/fhir/<type>/<id>`
    of a served type, the same of /fhir-r4's types, `$translate`): all of one shape go by one route, so its template is looked up
    once. Anything else is None."""
    parts = scope["path"].split("/")
    if len(parts) < 3 or len(parts) > 4:
        return None
    if not (parts[1] == "fhir" and parts[2] in SEARCHED_TYPES) and not (
        parts[1] == "fhir-r4" and parts[2] in _R4_TYPES  # the R4 view's reads and searches
    ):
        return None
    if len(parts) == 4 and parts[3][:1] not in ("$", "_"):
        return scope["method"], f"/{parts[1]}/{parts[2]}/*"  # a read by id, whatever the id
    return scope["method"], scope["path"]


Table = list[tuple[re.Pattern[str], frozenset[str] | None, str]]


def route_table(routes: Iterable[Any]) -> Table:
    """Every route's path pattern, methods (None: any) and template, in the order the router tries
    them: made once, since matching through the framework's route objects costs ~0.25 ms a request."""
    table: Table = []
    for context in iter_route_contexts(list(routes)):
        pattern = getattr(context.route, "path_regex", None)
        if isinstance(pattern, re.Pattern):
            methods = context.methods
            table.append((pattern, None if methods is None else frozenset(methods), str(context.path)))
    return table


def route_template(table: Table, scope: dict[str, Any], known: dict[tuple[str, str], str]) -> str:
    """The template of the route that took the request, or for one the fast path answered, of the
    route that would have taken it (found once per shape and kept in `known`)."""
    found = scope.get("route")
    path = getattr(found, "path", None)
    if isinstance(path, str):
        return path
    shape = _shape(scope)
    if shape is not None and shape in known:
        return known[shape]
    template, partial = None, None
    for pattern, methods, name in table:
        if pattern.match(scope["path"]):
            if methods is None or scope["method"] in methods:
                template = name
                break
            partial = partial or name
    template = template or partial or UNMATCHED
    if shape is not None:
        known[shape] = template
    return template


class Observe:
    """ASGI middleware: each HTTP request counted and timed by route template and status, and
    logged as one line (`log_format` json or plain; off: not logged, still counted)."""

    def __init__(self, app: Any, routes: Callable[[], Iterable[BaseRoute]], log_format: str = "json") -> None:
        self.app, self.routes, self.log_format = app, routes, log_format
        self.known: dict[tuple[str, str], str] = {}
        self.table: Table | None = None  # made at the first request, when every route is there
        # each (method, route, status)'s counter and histogram: `labels()` takes a lock each time
        self._series: dict[tuple[str, str, int], tuple[Any, Any]] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # what the client gets if nothing is sent (the server answers 500)

        async def watch(message: MutableMapping[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watch)
        finally:
            self.answered(scope, status, started)

    def route(self, scope: dict[str, Any]) -> str:
        """The route template a request is counted under (`route_template`)."""
        if self.table is None:
            self.table = route_table(self.routes())
        return route_template(self.table, scope, self.known)

    def answered(self, scope: dict[str, Any], status: int, started: float, route: str | None = None) -> None:
        """Count, time and log a request answered with `status`, begun at `started` (perf_counter):
        for this layer's requests and for those answered before it (server/fastpath.py HotReads,
        which knows its `route`)."""
        seconds = time.perf_counter() - started
        method = scope["method"]
        route = route or self.route(scope)
        series = self._series.get((method, route, status))
        if series is None:
            series = REQUESTS.labels(method, route, str(status)), LATENCY.labels(method, route)
            if len(self._series) < 4096:  # routes x methods x statuses: bounded, but not trusted to be
                self._series[method, route, status] = series
        series[0].inc()
        series[1].observe(seconds)
        if self.log_format != "off" and access_log.isEnabledFor(logging.INFO):  # not built to be dropped
            self._log(scope, method, route, status, seconds)

    def _log(self, scope: dict[str, Any], method: str, route: str, status: int, seconds: float) -> None:
        access = scope.get(ACCESS)
        line = {
            "request_id": scope.get(REQUEST_ID),
            "method": method,
            "route": route,
            "path": scope["path"],  # the path alone: a query string may carry anything
            "status": status,
            "duration_ms": round(seconds * 1000, 3),
            # the client (an application), never the person: no token, no `sub`, no HPR number
            "client_id": access.client_id if isinstance(access, Access) else None,
        }
        if self.log_format == "json":
            access_log.info(orjson.dumps(line).decode())
        else:
            access_log.info(
                "%s %s %s (%s) %d %.1f ms client %s",
                line["request_id"],
                method,
                _escaped(scope["path"]),  # one line, whatever the path
                route,
                status,
                line["duration_ms"],
                _escaped(line["client_id"] or "-"),  # a signed claim, but still text from outside
            )
