"""Import SAFEST/IDMP data into DMP's national line, beside the FEST entries, all or nothing.

SAFEST (DMP's FHIR service) serves R4 resources with the NOMA profiles today and R5 later; both
come in here as a Bundle, ndjson, one resource or a folder of them, JSON or XML, and R4 is made
R5 by translators/safest. A SAFEST delivery is a snapshot: it replaces the SAFEST data of the
national line, keeps the FEST entries, and the FHIR served is remade from both
(importers/national.py), with a reconciliation of where FEST and SAFEST disagree.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from grunndata.fhir import TERMINOLOGY_TYPES
from grunndata.importers.national import (
    OWNER,
    OWNER_NAME,
    TIER,
    Progress,
    code_equivalents,
    derive,
    is_derived,
    is_fest,
    is_safest,
    safest_type,
)
from grunndata.importers.resources import Found, read_resources, stored_form
from grunndata.importers.run import (
    MAX_REMOVAL_SHARE,
    MAX_REPORTED,
    R4_BODIES,
    RunResult,
    dangling_refusal,
    refuse,
    shrink_refusal,
)
from grunndata.memory import cycle_collection_paused
from grunndata.settings import DEFAULT_MAX_RESOURCE_FILE_BYTES
from grunndata.store import ReleaseBuilder, reserved_organization_ids, reserved_organization_sentence
from grunndata.terminology import concept_map_files, replace_ours
from grunndata.translators.safest import json_bytes, label_of, to_r5

SOURCE = "safest"
MAX_LISTED_PROBLEMS = MAX_REPORTED

__all__ = ["SafestResult", "import_safest"]


@dataclass(kw_only=True)
class SafestResult(RunResult):
    """What a SAFEST import did (the common part: RunResult)."""

    read: int = 0  # resources read from the files
    types: dict[str, int] = field(default_factory=dict)  # R5 types kept, after conversion
    reconciliation: dict[str, Any] | None = None
    phpid: dict[str, Any] | None = None  # PhPID groups against FEST's LegemiddelVirkestoff (migration)
    problems: list[str] = field(default_factory=list)  # each refuses the delivery
    warnings: list[dict[str, str]] = field(default_factory=list)  # served all the same, not as sent
    gyldig_fradato_helfo: str | None = None  # the FEST delivery's, carried for the M30 export

    def as_report(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "source": SOURCE,
            "read": self.read,
            "types": self.types,
            "resources": self.resources,
            "reconciliation": self.reconciliation,
            "content_filters": self.content_filters,
            "phpid": self.phpid,
            "problem_count": len(self.problems),
            "problems": self.problems[:MAX_LISTED_PROBLEMS],
            "warning_count": len(self.warnings),
            "warnings": self.warnings[:MAX_LISTED_PROBLEMS],
            "refused": self.refused,
            "seconds": round(self.seconds, 2),
            "gyldig_fradato_helfo": self.gyldig_fradato_helfo,
        }


def import_safest(
    engine: Any,
    path: Path,
    *,
    force: bool = False,
    dry_run: bool = False,
    progress: Progress | None = None,
    catalogue_owners: Collection[str] = (),
    max_file_bytes: int = DEFAULT_MAX_RESOURCE_FILE_BYTES,
    stage: bool = False,
) -> SafestResult:
    """Import one SAFEST delivery as a new national release; DeliveryError (nothing changes) if refused.

    `catalogue_owners`: the owners the service catalogue's files name, whose Organization ids an
    imported Organization may not take (nor those of the owners the store knows); `max_file_bytes`
    caps each file (GRUNNDATA_MAX_RESOURCE_FILE_BYTES)."""
    started = time.monotonic()
    found = list(read_resources(path, max_file_bytes))
    result = SafestResult(file=path.name, started=started, dry_run=dry_run, read=len(found))
    with engine.connect() as conn:
        reserved = reserved_organization_ids(conn, catalogue_owners)
    resources, result.problems, result.warnings = _converted(found, reserved)
    result.types = dict(sorted(Counter(r["resourceType"] for r in resources).items()))
    with (
        cycle_collection_paused(),
        ReleaseBuilder(
            engine, SOURCE, "full", TIER, OWNER, OWNER_NAME, path.name, dry_run, r4=R4_BODIES, stage=stage
        ) as builder,
    ):
        result.based_on = builder.based_on.id if builder.based_on else None
        if builder.based_on is not None:
            result.gyldig_fradato_helfo = (builder.based_on.report or {}).get("gyldig_fradato_helfo")
        if result.problems:
            refuse(builder, result, _problem_sentence(result.problems))
        builder.keep(is_fest)  # a SAFEST delivery replaces SAFEST data; the FEST entries stay
        for resource in resources:
            body = json_bytes(stored_form(resource))  # R4 XML decimals are Decimal
            builder.put(
                safest_type(resource["resourceType"]), resource["id"], body, hashlib.sha256(body).hexdigest()
            )
        hentet = builder.based_on.hentet_dato if builder.based_on else None  # the FEST data's, unchanged
        derived = derive(builder, progress, code_equivalents(), hentet)
        result.content_filters = derived.content_filters
        result.warnings += _replacements(builder, resources)
        result.reconciliation = derived.reconciliation.as_dict() if derived.reconciliation else None
        result.phpid = derived.phpid
        unserved = [u for u in derived.unserved if u.from_safest]
        result.warnings += [
            {"kind": "unserved-reference", "resource": u.resource, "path": u.path, "message": u.sentence()}
            for u in unserved
        ]
        tallies = builder.settle()
        result.resources = {t: c.as_dict() for t, c in sorted(tallies.items()) if is_derived(t)}
        refusal = (
            None
            if force
            else _shrunk(builder, tallies)
            or dangling_refusal(
                len(unserved), derived.safest_references, "resources neither in the delivery nor served"
            )
        )
        if refusal is not None:
            refuse(builder, result, refusal)
        result.activate(builder, hentet)
    return result


def _replacements(builder: ReleaseBuilder, resources: list[dict[str, Any]]) -> list[dict[str, str]]:
    """A warning for each terminology resource of the delivery that, having the url and version of
    one we ship (our ConceptMaps) or serve (the CodeSystems made from FEST), replaces ours in this
    release's terminology; by the rule the server builds its terminology with (`replace_ours`)."""
    delivered = [r for r in resources if r["resourceType"] in TERMINOLOGY_TYPES]
    if not delivered:
        return []
    safest_ids = {(r["resourceType"], r["id"]) for r in delivered}
    fest_made = [
        orjson.loads(data)
        for key, data in builder.served_data(lambda t: t in TERMINOLOGY_TYPES)
        if key not in safest_ids
    ]
    shipped = [*concept_map_files()]
    shipped_labels = {f"ConceptMap/{m['id']}" for m in shipped}
    _, replaced = replace_ours([*shipped, *fest_made], delivered)
    warnings = []
    for r in replaced:
        ours = "shipped with grunndata" if r.replaced in shipped_labels else "made from FEST"
        warnings.append(
            {
                "kind": "replaces-shipped",
                "resource": r.resource,
                "canonical": r.canonical,
                "replaced": r.replaced,
                "message": f"{r.canonical} is also {r.replaced}, {ours}; this release's terminology "
                "($translate, $lookup, $validate-code, $expand) uses the delivered one instead",
            }
        )
    return warnings


def _converted(
    found: list[Found], reserved: Collection[str] = ()
) -> tuple[list[dict[str, Any]], list[str], list[dict[str, str]]]:
    """The delivery as valid R5 resources, the problems that refuse it and the warnings, each with
    the file (and entry or line) it was found in; an Organization may not take a `reserved` id."""
    where = {label_of(f.resource): f.where for f in found}
    conversion = to_r5([f.resource for f in found])

    def place(resource: str) -> str:
        return where.get(resource, "?")

    problems = [f"{place(p.resource)}: {p.resource}: {p.message}" for p in conversion.errors]
    warnings = [
        {"kind": "conversion", "where": place(p.resource), "resource": p.resource, "message": p.message}
        for p in conversion.warnings
    ]
    seen: set[tuple[str, str]] = set()
    kept = []
    for resource in conversion.resources:
        key = (resource["resourceType"], resource["id"])
        if key in seen:
            problems.append(f"{key[0]}/{key[1]} comes twice; every resource must come once")
            continue
        seen.add(key)
        if key[0] == "Organization" and key[1] in reserved:
            problems.append(
                f"{place(f'{key[0]}/{key[1]}')}: {key[0]}/{key[1]}: {reserved_organization_sentence(key[1])}"
            )
            continue
        problem = _invalid(resource)
        if problem:
            problems.append(f"{key[0]}/{key[1]} is not valid FHIR R5: {problem}")
        else:
            kept.append(resource)
    return kept, problems, warnings


def _invalid(resource: dict[str, Any]) -> str | None:
    """Why fhir.resources' R5 model refuses the resource, in one line; None when it is valid."""
    from fhir.resources import get_fhir_model_class

    try:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    except KeyError:
        return f"{resource['resourceType']} is not an R5 resource type"
    except Exception as e:  # noqa: BLE001  pydantic's ValidationError and its kin, as one sentence
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        return " ".join(lines[1:3]) if len(lines) > 1 else (lines[0] if lines else type(e).__name__)
    return None


def _problem_sentence(problems: list[str]) -> str:
    kept = "all" if len(problems) <= MAX_LISTED_PROBLEMS else f"the first {MAX_LISTED_PROBLEMS:,}"
    more = f" (and {len(problems) - 1} more; the release report keeps {kept})" if len(problems) > 1 else ""
    return f"refused: the delivery has {len(problems)} problem(s); the first: {problems[0]}{more}"


def _shrunk(builder: ReleaseBuilder, tallies: dict[str, Any]) -> str | None:
    """A delivery that drops more than MAX_REMOVAL_SHARE of a SAFEST type served is likely cut short."""
    return shrink_refusal(
        Counter(k[0] for k in builder.active if is_safest(k[0])),
        {t: tally.expired for t, tally in tallies.items()},
        lambda rtype, gone, n: (
            f"refused: this delivery would expire {gone / n:.0%} of the {n} {rtype.removeprefix('SAFEST.')} "
            f"resources SAFEST gave before (more than {MAX_REMOVAL_SHARE:.0%}); check it is whole, "
            "or pass --force"
        ),
    )
