"""Import one owner's sector or supplementary data as a new release of its line, all or nothing.

Every import is a full replacement of what the owner serves in the tier: what the file no longer
holds expires. The file is read whole first (FHIR resources, or CSV rows made into Basic
resources), then checked against the national data the store serves at that moment, under the
store's import lock; one problem refuses the delivery and the owner's active release stays served.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy.engine import Connection, Engine

from grunndata.errors import DeliveryError
from grunndata.importers.resources import read_resources
from grunndata.importers.run import R4_BODIES, RunResult
from grunndata.importers.run import refuse as refuse_release
from grunndata.importers.tiered import csvrows
from grunndata.importers.tiered.checks import Checked, against_national, referenced, shape
from grunndata.importers.tiered.keys import BY_SYSTEM
from grunndata.importers.tiered.problems import (
    MAX_LISTED_PROBLEMS,
    Place,
    Problem,
    TieredDeliveryError,
    refuse,
    refuse_unreadable,
)
from grunndata.settings import DEFAULT_MAX_RESOURCE_FILE_BYTES
from grunndata.store import (
    Line,
    NationalKeys,
    ReleaseBuilder,
    index_rows,
    open_connection,
    registered_tier,
    reserved_organization_ids,
    served_elsewhere,
)

TIERS = ("sector", "supplementary")
NATIONAL_OWNER = "dmp"
OWNER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

Progress = Callable[[str | None, int, int, int], None]  # (resource type, resources, done, total), as FEST's


@dataclass(kw_only=True)
class TieredResult(RunResult):
    """What a sector or supplementary import did (the common part: RunResult)."""

    tier: str
    owner: str
    records: int  # resources or CSV rows read
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    def as_report(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "tier": self.tier,
            "owner": self.owner,
            "release_id": self.release_id,
            "based_on": self.based_on,
            "dry_run": self.dry_run,
            "records": self.records,
            "seconds": round(self.seconds, 2),
            "resources": self.resources,
            "refused": self.refused,
            "problem_count": len(self.problems),
            "problems": [p.as_dict() for p in self.problems[:MAX_LISTED_PROBLEMS]],
            "warning_count": len(self.warnings),
            "warnings": [w.as_dict() for w in self.warnings[:MAX_LISTED_PROBLEMS]],
        }


@dataclass
class _Delivery:
    """A file read whole: FHIR resources as they came, or CSV rows still to be keyed."""

    file: str
    resources: list[tuple[Place, dict[str, Any]]]
    rows: csvrows.CsvDelivery | None = None

    @property
    def records(self) -> int:
        return len(self.rows.rows) + len(self.rows.problems) if self.rows else len(self.resources)


def import_tiered(
    engine: Engine,
    path: Path,
    *,
    tier: str,
    owner: str,
    owner_name: str | None = None,
    dry_run: bool = False,
    progress: Progress | None = None,
    catalogue_owners: Collection[str] = (),
    max_file_bytes: int = DEFAULT_MAX_RESOURCE_FILE_BYTES,
    stage: bool = False,
) -> TieredResult:
    """Import `path` as the owner's data in `tier`; TieredDeliveryError (nothing changes) if refused.

    `catalogue_owners`: the owners the service catalogue's files name, whose Organization ids an
    imported Organization may not take (nor those of the owners the store knows); `max_file_bytes`
    caps each FHIR file (GRUNNDATA_MAX_RESOURCE_FILE_BYTES)."""
    started = time.monotonic()
    _check_owner(path, tier, owner)
    delivery = _read(path, max_file_bytes)
    _check_registered(engine, path, tier, owner)  # before the builder registers a new owner
    name = (owner_name or "").strip() or owner
    with ReleaseBuilder(
        engine, tier, "full", tier, owner, name, path.name, dry_run, r4=R4_BODIES, stage=stage
    ) as builder:
        result = TieredResult(
            file=path.name,
            started=started,
            tier=tier,
            owner=owner,
            based_on=builder.based_on.id if builder.based_on else None,
            dry_run=dry_run,
            records=delivery.records,
        )
        checked = _checked(engine, delivery, result, catalogue_owners)
        if result.problems:  # every problem told, with the report kept on the error
            error = TieredDeliveryError(result.problems)
            refuse_release(builder, result, str(error), error)
        _put(builder, checked, progress)
        result.resources = {t: c.as_dict() for t, c in sorted(builder.settle().items())}
        result.activate(builder)
    return result


def _check_owner(path: Path, tier: str, owner: str) -> None:
    if tier not in TIERS:
        raise refuse(Place(path.name), f"the tier {tier!r} is not one of {', '.join(TIERS)}")
    if not OWNER_ID.fullmatch(owner):
        raise refuse(
            Place(path.name),
            f"the owner id {owner!r} is not allowed: use 1 to 63 lowercase letters, digits and '-', "
            "starting with a letter or digit",
        )
    if owner == NATIONAL_OWNER:
        raise refuse(Place(path.name), f"the owner id {owner} is DMP's, the owner of the national data")


def _check_registered(engine: Engine, path: Path, tier: str, owner: str) -> None:
    with open_connection(engine) as conn:
        problem = _tier_problem(conn, tier, owner)
    if problem is not None:
        raise refuse(Place(path.name), problem)


def _tier_problem(conn: Connection, tier: str, owner: str) -> str | None:
    registered = registered_tier(conn, owner)
    if registered is None:
        # a new owner becomes the catalogue's Organization/<owner>: an imported one may not have that id
        taken = served_elsewhere(conn, [("Organization", owner)], Line(tier, owner))
        line = taken.get(("Organization", owner))
        if line is not None:
            return (
                f"the owner id {owner} is the id of an Organization served as {line.tier} data of "
                f"{line.owner}, and the service catalogue would serve the owner under it too; choose "
                "another owner id"
            )
        return None
    if registered == tier:
        return None
    return f"the owner {owner} publishes {registered} data; an owner publishes in one tier only"


def _read(path: Path, max_file_bytes: int) -> _Delivery:
    """The whole file; TieredDeliveryError for one that cannot be read at all."""
    try:
        if path.suffix.lower() == ".csv":
            if not path.is_file():
                raise refuse(Place(path.name), f"there is no file {path}")
            return _Delivery(path.name, [], csvrows.read_csv(path))
        found = [(Place.parse(f.where), f.resource) for f in read_resources(path, max_file_bytes)]
    except DeliveryError as e:
        if isinstance(e, TieredDeliveryError):
            raise
        raise refuse_unreadable(path.name, str(e)) from None
    except OSError as e:
        raise refuse(Place(path.name), f"cannot read {path}: {e.strerror or e}") from None
    if not found:
        raise refuse(Place(path.name), f"{path.name} holds no resources")
    return _Delivery(path.name, found)


def _checked(
    engine: Engine, delivery: _Delivery, result: TieredResult, catalogue_owners: Collection[str]
) -> list[Checked]:
    """The delivery's resources, checked against the national data; problems go to `result`."""
    line = Line(result.tier, result.owner)
    with open_connection(engine) as conn:
        if (wrong_tier := _tier_problem(conn, result.tier, result.owner)) is not None:
            result.problems.append(Problem(Place(delivery.file), wrong_tier))  # registered meanwhile
        national = NationalKeys.load(conn, identifier_systems=BY_SYSTEM)
        items = delivery.resources
        if delivery.rows is not None:
            converted = csvrows.to_resources(delivery.rows, national, result.tier, result.owner)
            items = converted.resources
            result.problems.extend(converted.problems)
            result.warnings.extend(converted.warnings)
        checked, problems = shape(items)
        result.problems.extend(problems)
        asked = {c.key for c in checked} | {k for k in referenced(checked) if not national.exists(k)}
        elsewhere = served_elsewhere(conn, asked, line)
        reserved = reserved_organization_ids(conn, [*catalogue_owners, result.owner])
    result.problems.extend(against_national(checked, national, elsewhere, reserved))
    result.problems.sort(key=lambda p: (p.place.file, p.place.number or 0))
    return checked


def _put(builder: ReleaseBuilder, checked: list[Checked], progress: Progress | None) -> None:
    for n, c in enumerate(checked, 1):
        body = orjson.dumps(c.resource)
        builder.put(
            c.key[0], c.key[1], body, hashlib.sha256(body).hexdigest(), fhir_index=index_rows(c.resource)
        )
        if progress is not None and (n % 500 == 0 or n == len(checked)):
            progress(c.key[0], n, n, len(checked))
