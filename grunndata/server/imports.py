"""Imports over HTTP: POST a delivery with the import scope, get the report the CLI prints.

`POST /import/fest`, `/import/safest`, `/import/sector?owner=ORG`, `/import/supplementary?owner=ORG`
with the file as the request body. The same importers run with the same rules (all or nothing,
guards, one import at a time per store); the answer is the import's report as JSON, or an
OperationOutcome saying why it was refused (422), that another import or reindex is running (409), or that
the token may not import this (401, 403). With `?stage=true` the release is kept staged: checked,
served to no client, until `POST /releases/{N}/activate` (or `/discard`) with the same scope;
`GET /releases/{a}/diff/{b}` shows what it would change.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request

from grunndata.errors import DeliveryError
from grunndata.server.auth import Access
from grunndata.server.fhir_io.responses import FhirError
from grunndata.store import DISCARDED, STAGED

NATIONAL_OWNER = "dmp"
_SUFFIXES = {  # Content-Type -> the file suffix the importers read by
    "application/fhir+json": ".json",
    "application/json": ".json",
    "application/x-ndjson": ".ndjson",
    "application/fhir+ndjson": ".ndjson",
    "application/ndjson": ".ndjson",
    "application/fhir+xml": ".xml",
    "application/xml": ".xml",
    "text/xml": ".xml",
    "text/csv": ".csv",
    "application/zip": ".zip",
    "application/gzip": ".xml.gz",
}
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]")


def line(source: str, owner: str | None) -> tuple[str, str]:
    """The tier and owner whose line of releases the import writes."""
    if source in ("fest", "safest"):
        if owner not in (None, NATIONAL_OWNER):
            raise FhirError(400, "invalid", f"{source} data is DMP's national data; it takes no owner")
        return "national", NATIONAL_OWNER
    if source in ("sector", "supplementary"):
        if not owner:
            raise FhirError(400, "required", f"a {source} import needs ?owner=ORG, the data owner's id")
        return source, owner
    raise FhirError(
        404, "not-found", f"there is no import of {source!r}: fest, safest, sector or supplementary"
    )


def check_scope(access: Access, tier: str, owner: str, with_token: bool) -> None:
    if access.can_import(tier, owner):
        return
    message = access.scopes_missing_message(tier, owner, "import")
    if not with_token:  # no token at all: say how to get in
        raise FhirError(401, "login", message, {"WWW-Authenticate": 'Bearer realm="grunndata"'})
    raise FhirError(403, "forbidden", message)


def may_see_release(access: Access, release: Any) -> bool:
    """Whether a client may know of `release` at all: a staged or discarded one (never served) only
    with the right to import its line, any other with the right to read its line."""
    if release.status in (STAGED, DISCARDED):
        return access.can_import(release.tier, release.owner_id)
    return access.can_read(release.tier, release.owner_id)


def may_see_content(access: Access, release: Any) -> bool:
    """Whether a client may see what a release of a restricted line holds (a diff's entries), not
    only that it exists and when: with the right to read the line, or to import it (who reviews
    a staged delivery of their own)."""
    return access.can_read(release.tier, release.owner_id) or access.can_import(
        release.tier, release.owner_id
    )


def file_name(source: str, filename: str | None, content_type: str) -> str:
    if filename:
        name = _SAFE_NAME.sub("_", Path(filename).name)[:120].lstrip(".")
        return name or "upload"
    if source == "fest":
        return "upload.xml"  # FEST is recognised by its magic bytes: xml, gzip or zip alike
    suffix = _SUFFIXES.get(content_type.split(";", 1)[0].strip().lower())
    if suffix is None:
        raise FhirError(
            415,
            "not-supported",
            "say what the body is: ?filename=NAME.json|.ndjson|.xml|.csv, or a Content-Type such as "
            "application/fhir+json, application/x-ndjson, application/fhir+xml or text/csv",
        )
    return "upload" + suffix


async def receive(request: Request, path: Path, limit: int) -> None:
    """The body to a file, never more than `limit` bytes of it."""
    size = 0
    with path.open("wb") as out:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise FhirError(
                    413,
                    "too-costly",
                    f"the delivery is larger than {limit} bytes (GRUNNDATA_MAX_UPLOAD_BYTES)",
                )
            out.write(chunk)
    if size == 0:
        raise FhirError(400, "required", "the request has no body: send the delivery as the body")


def importer(source: str, tier: str, owner: str, options: dict[str, Any]) -> Callable[[Any, Path], Any]:
    if source == "fest":
        from grunndata.importers.fest import import_fest

        return lambda engine, path: import_fest(
            engine,
            path,
            incremental=options["incremental"],
            force=options["force"],
            dry_run=options["dry_run"],
            max_xml_bytes=options["max_xml_bytes"],
            stage=options["stage"],
        )
    if source == "safest":
        from grunndata.importers.safest import import_safest

        return lambda engine, path: import_safest(
            engine,
            path,
            force=options["force"],
            dry_run=options["dry_run"],
            catalogue_owners=options["catalogue_owners"],
            max_file_bytes=options["max_file_bytes"],
            stage=options["stage"],
        )
    from grunndata.importers.tiered import import_tiered

    return lambda engine, path: import_tiered(
        engine,
        path,
        tier=tier,
        owner=owner,
        owner_name=options["owner_name"],
        dry_run=options["dry_run"],
        catalogue_owners=options["catalogue_owners"],
        max_file_bytes=options["max_file_bytes"],
        stage=options["stage"],
    )


def refused(e: DeliveryError) -> FhirError:
    """A refused delivery: the sentence, and each problem as an issue when the importer lists them."""
    problems = getattr(e, "problems", None) or []
    return FhirError(422, "processing", str(e), details=[str(p) for p in problems[:100]])
