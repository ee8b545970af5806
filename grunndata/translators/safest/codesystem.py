"""An R5 CodeSystem as R4 (DMP's SAFEST service serves CodeSystem at /fhir-r4 beside its products).

R4 and R5 CodeSystem differ little: R5 adds metadata elements (versionAlgorithm[x], copyrightLabel,
approvalDate, lastReviewDate, effectivePeriod, topic, author, editor, reviewer, endorser,
relatedArtifact) and, in a concept's designation, additionalUse. Every element the R4 definitions
(fhir/r4_elements.py) have is kept as it is; one they have not travels as extension
``r5-<R5 path>`` holding its JSON, as to_r4.py does for the products, so an R4 client may ignore it.
"""

from __future__ import annotations

import copy
from typing import Any

import orjson

from grunndata.fhir.r4_elements import ELEMENTS
from grunndata.translators.safest.rules import R5_KEPT_BASE

Json = dict[str, Any]
CODE_SYSTEM = "CodeSystem"


def code_system_r4(resource: Json) -> Json:
    """The R4 form of an R5 CodeSystem (same id and content; R5-only elements as ``r5-`` extensions)."""
    return {"resourceType": CODE_SYSTEM, **_walk(resource, CODE_SYSTEM)}


def _walk(src: Json, path: str) -> Json:
    out: Json = {}
    carried: list[Json] = []
    for name, value in src.items():
        if name == "resourceType":
            continue
        element = f"{path}.{name.lstrip('_')}"
        known = ELEMENTS.get(element)
        if known is None:
            carried.append({"url": f"{R5_KEPT_BASE}{element}", "valueString": _json(value)})
        elif known[0] == element and not name.startswith("_"):  # a backbone: its own elements
            out[name] = (
                [_walk(v, element) for v in value] if isinstance(value, list) else _walk(value, element)
            )
        else:
            out[name] = copy.deepcopy(value)
    if carried:
        out["extension"] = [*out.get("extension", []), *carried]
    return out


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()
