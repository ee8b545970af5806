"""The R4 bodies of served versions, made once by translators/safest/to_r4.py (codesystem.py for a
CodeSystem) and kept.

A stored version's bytes never change (a new release makes new versions), so its R4 body, keyed by
the version's primary key, is made at its first R4 read and sent as prepared bytes after that, by
the fast path (server/fastpath.py) and the /fhir-r4 routes alike.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson

from grunndata.server.state import Prepared
from grunndata.translators.safest.codesystem import CODE_SYSTEM, code_system_r4
from grunndata.translators.safest.to_r4 import R4_OF_R5, to_r4

Json = dict[str, Any]
R4_OF_SERVED = {**R4_OF_R5, CODE_SYSTEM: CODE_SYSTEM}
"""The R5 types served at /fhir-r4, and the R4 type each is served as: the SAFEST types and, as
DMP's service has it, CodeSystem."""
R5_OF_R4 = {r4: r5 for r5, r4 in R4_OF_SERVED.items()}
"""The R4 types served at /fhir-r4, and the R5 type each is made from."""


def r4_of(resource: Json) -> Json | None:
    """The R4 form of an R5 resource served at /fhir-r4 (None for a type it does not serve)."""
    if resource.get("resourceType") == CODE_SYSTEM:
        return code_system_r4(resource)
    return to_r4(resource)


class R4Cache:
    """Prepared R4 answers by stored version (the oldest made goes first when `size` is reached)."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._prepared: OrderedDict[int, Prepared] = OrderedDict()

    def prepared(self, r5: Prepared) -> Prepared:
        """The R4 answer of a served R5 version of a SAFEST type (ValueError for any other type)."""
        found = self._prepared.get(r5.version.pk)
        if found is not None:
            return found
        made = r4_of(r5.version.resource())
        if made is None:
            raise ValueError(f"{r5.version.type} is not served as R4")
        prepared = Prepared(r5.version, orjson.dumps(made), r5.etag, r5.last_modified)
        if len(self._prepared) >= self.size:
            self._prepared.popitem(last=False)
        self._prepared[r5.version.pk] = prepared
        return prepared
