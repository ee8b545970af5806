"""The HTTP server: FHIR R5 at /fhir, M30 at /fest/m30, imports, the service catalogue, the migration
page, plus health, releases and the FEST->IDMP coverage report."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import iter_route_contexts
from fastapi_offline import FastAPIOffline
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from grunndata import __version__
from grunndata.exporters import EXPORT_DIR, export_folder
from grunndata.server import routes
from grunndata.server.auth import Authenticator, AuthSettings, dev_mode_banner
from grunndata.server.bulk import BulkExports
from grunndata.server.catalog import CatalogueView
from grunndata.server.conventions import (
    Compression,
    Conventions,
    OnlyWithOrigin,
)
from grunndata.server.deps import OPENAPI
from grunndata.server.fastpath import FastReads, HotReads
from grunndata.server.fastsearch import SearchIndexes
from grunndata.server.faults import RequestIds
from grunndata.server.fhir_io.openapi import document
from grunndata.server.fhir_io.params import Limits
from grunndata.server.fhir_io.responses import FhirError, error_response
from grunndata.server.m30 import M30Files
from grunndata.server.observe import Observe
from grunndata.server.pages.guard import PAGE_PREFIXES, PageProblem, problem_page
from grunndata.server.r4view import R4Cache
from grunndata.server.state import Served
from grunndata.server.subscriptions.worker import Notifier
from grunndata.server.terminology import Terminology
from grunndata.server.warm import keep_warm
from grunndata.settings import Settings
from grunndata.store import CATALOGUE, TERMINOLOGY, keeps_r4_bodies

log = logging.getLogger("grunndata.server")
_HTTP_CODES = {404: "not-found", 405: "not-supported", 406: "not-supported", 415: "not-supported"}


def create_app(
    engine: Engine,
    auth: Authenticator | None = None,
    catalog: Sequence[Path] | None = None,
    warm: bool | None = None,
    settings: Settings | None = None,
) -> FastAPI:
    """The app over `engine`, configured by `settings` (default: read from the GRUNNDATA_*
    environment here, the edge; a bad value is a SettingsError, one sentence). Tokens are checked
    by `auth` (default: the settings'), other owners' services come from the catalogue files
    `catalog` (default: GRUNNDATA_CATALOG's). With `warm` (default: unless GRUNNDATA_WARM=0), each
    new snapshot's terminology indexes and M30 file are made as soon as it is served (see
    `server/warm.py`)."""
    settings = Settings.load() if settings is None else settings
    served = Served(
        engine,
        auth or Authenticator(AuthSettings.from_settings(settings)),
        snapshot_seconds=settings.snapshot_seconds,
        prepare_share=settings.prepare_share,
        cache_size=settings.read_cache,
        search_cache_bytes=settings.search_cache_bytes,
    )
    try:  # a store no import of this version has opened has no R4 bodies: they are made at reads
        with engine.connect() as conn:
            served.r4_stored = keeps_r4_bodies(conn)
    except SQLAlchemyError:  # the store unreachable now: /readyz says so; it has the table once imported
        pass
    if served.auth.settings.dev:
        log.warning(dev_mode_banner())
    terms = Terminology(served)
    files = M30Files(served, *export_folder(settings.m30_dir))
    bulk = BulkExports(
        served,
        files.exporter,  # one runner, one pair of turns for every export
        export_folder(settings.export_dir, EXPORT_DIR)[0],
        settings.export_expire_seconds,
        settings.export_jobs_per_entitlement,
        settings.export_share,
        settings.export_backend_nice,
    )

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = (
            asyncio.create_task(keep_warm(served, terms, files, app.state.search_indexes))
            if (settings.warm if warm is None else warm)
            else None
        )
        # every process runs the notifier; the one holding its lease sends (server/subscriptions/)
        notifying = asyncio.create_task(Notifier(engine, settings).run(), name="notifier")
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
            notifying.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await notifying
            await bulk.stop()

    app = FastAPIOffline(  # FastAPI, with /docs and /redoc served from its own files: no CDN
        title="Grunndata",
        version=__version__,
        description="Norwegian medicinal-product master data: FEST deliveries served as FHIR R5 IDMP resources.",
        lifespan=lifespan,
        # no 307 to the path without its trailing slash: the framework built that Location from the
        # request's Host header, with an empty body; a path with one is not ours, a 404 saying so
        redirect_slashes=False,
    )
    app.__class__ = _App  # FastAPIOffline is a function that makes a FastAPI: ours is one, plus HotReads
    # what the routes receive through server/deps.py
    catalogues = list(settings.catalog if catalog is None else catalog)
    catalogue = CatalogueView(served, catalogues, settings.base_url)
    app.state.served, app.state.settings, app.state.catalogue = served, settings, catalogue
    app.state.terminology, app.state.m30, app.state.bulk = terms, files, bulk
    app.state.limits = Limits.of(settings)  # the search bounds, made once: every request reads them
    # searches of the types not (only) in the store ask their sources (store/searchparams.py SOURCES)
    app.state.listers = {CATALOGUE: catalogue.listed, TERMINOLOGY: terms.listed}
    app.include_router(routes.fhir.first)  # GET [type]/_search is a 405, before any read takes it
    app.include_router(routes.bulk.router)  # before the FHIR routes: /fhir/$export is no search
    app.include_router(
        routes.subscription_ws.router
    )  # before a read takes Subscription/$get-ws-binding-token
    app.include_router(routes.subscriptions.router)  # before the FHIR routes: Subscription is no stored type
    app.include_router(routes.terminology.router)  # before the FHIR routes: /CodeSystem/$lookup is no read
    app.include_router(routes.catalog.router)  # before the FHIR routes: /fhir/Endpoint/{id} is ours
    app.include_router(routes.package.router)  # before the FHIR routes: /fhir/package.tgz is no search
    app.include_router(routes.fhir.router)
    app.include_router(routes.r4.router)  # the SAFEST R4 view of the same store
    app.include_router(routes.r4.hresept_router)  # and with DMP's H-resept content filters
    app.include_router(routes.m30.router)
    app.include_router(routes.imports.router)
    app.include_router(routes.imports.releases)  # a staged release: its diff, activation, discard
    app.include_router(routes.migration.router)
    app.include_router(routes.pages.router)  # /legemidler: find a drug, its product card
    app.include_router(routes.ops.router)
    app.include_router(routes.home.router)

    @app.exception_handler(FhirError)
    async def fhir_error(request: Request, exc: FhirError) -> Response:
        return error_response(request, exc)

    @app.exception_handler(PageProblem)
    async def page_problem(request: Request, exc: PageProblem) -> Response:
        return exc.response()

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, exc: HTTPException) -> Response:
        if exc.status_code == 404 and request.url.path.startswith(PAGE_PREFIXES):
            # a path no page route takes (one holding a line break): the pages' 404, not FHIR's
            return problem_page(404, "Fant ikke siden", "Det finnes ingen side med denne adressen.")
        message = {
            404: "no such endpoint",
            405: f"{request.method} is not allowed here; this server is read-only",
        }
        code = _HTTP_CODES.get(exc.status_code, "processing")
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = _allowed(request)
        return error_response(
            request, FhirError(exc.status_code, code, message.get(exc.status_code, str(exc.detail)), headers)
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        return error_response(
            request, FhirError(400, "invalid", f"bad request: {where}: {first.get('msg', '')}")
        )

    app.state.r4_cache = R4Cache(
        engine if served.r4_stored else None
    )  # the R4 bodies of served versions (server/r4view.py)
    # each snapshot's index of the commonest first-time searches, built as it is served
    app.state.search_indexes = SearchIndexes(served) if settings.search_index else None
    app.add_middleware(
        FastReads,
        served=served,
        terms=terms,
        limits=app.state.limits,
        r4=app.state.r4_cache,
        indexes=app.state.search_indexes,
    )  # the plainest reads and the commonest first-time searches skip the framework
    app.add_middleware(RequestIds)  # outside the fast path: a request id, and a fault a 500 there too
    # HTTP conventions (server/conventions.py) around all of it, so the fast path's answers and
    # a 500 get them too; CORS outside them, so a preflight never reaches a route (it would be a 405)
    app.add_middleware(Compression, minimum=settings.compress_min_bytes)
    app.add_middleware(Conventions, max_age=settings.cache_max_age, vary_origin=bool(settings.cors_origins))
    if settings.cors_origins:  # Starlette's CORSMiddleware, for the requests that have an Origin
        app.add_middleware(OnlyWithOrigin, origins=settings.cors_origins)
    # outermost: every request counted, timed and logged, the fast path's and the faults' too
    app.add_middleware(Observe, routes=lambda: app.router.routes, log_format=settings.log_format)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = document(app, {**OPENAPI, **routes.r4.OPENAPI})
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app


class _App(FastAPI):
    """The app, with the plainest read answered in front of every layer (fastpath.py HotReads) once
    the layers are built (at the first request)."""

    hot: HotReads | None = None

    def build_middleware_stack(self) -> Any:
        stack = super().build_middleware_stack()
        telemetry = getattr(self, "_native_telemetry", None)  # FastAPI's OpenTelemetry (0.16x)
        self.hot = HotReads.over(stack, (lambda: False) if telemetry is None else telemetry.enabled)
        return stack

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        hot = self.hot
        if hot is not None and await hot(scope, send):
            return
        await super().__call__(scope, receive, send)


def from_environment() -> FastAPI:
    """The app as `grunndata serve --workers N` has each worker process make it (uvicorn's
    `--factory grunndata.server.app:from_environment`): the store and everything else from the
    GRUNNDATA_* variables."""
    from grunndata.store import connect

    settings = Settings.load()
    return create_app(connect(settings.db), settings=settings)


def _allowed(request: Request) -> str:
    """Every method some route takes at this path (Starlette's 405 names only the first route's)."""
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.methods and route.matches(request.scope)[0] != Match.NONE:
            methods |= route.methods
    if "GET" in methods:
        methods.add("HEAD")  # server/conventions.py answers HEAD wherever GET is answered
    return ", ".join(sorted(methods))
