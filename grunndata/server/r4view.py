"""The R4 bodies of served versions: made at import and stored (store.R4Bodies), kept here once read.

A stored version's bytes never change (a new release makes new versions), so its R4 body, keyed by
the version's primary key, is read from the store at its first R4 read (one row by primary key,
beside the R5 read; made by translators/safest/to_r4.py for a version stored before the store kept
R4 bodies, and by translators/safest/codesystem.py for a CodeSystem, which the store keeps no R4 of)
and sent as prepared bytes after that, by the fast path (server/fastpath.py), the /fhir-r4 routes
and `Accept: ...; fhirVersion=4.0` on /fhir alike.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import orjson
from sqlalchemy.engine import Engine

from grunndata.server.state import Prepared
from grunndata.store import r4_body
from grunndata.translators.safest.codesystem import CODE_SYSTEM, code_system_r4
from grunndata.translators.safest.to_r4 import R4_OF_R5, r4_json, to_r4

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
    """Prepared R4 answers by stored version (the oldest kept goes first when `size` is reached)."""

    def __init__(self, engine: Engine | None = None, size: int = 20_000) -> None:
        self.engine, self.size = engine, size
        self._prepared: OrderedDict[int, Prepared] = OrderedDict()

    def prepared(self, r5: Prepared, stored: bytes | None = None) -> Prepared:
        """The R4 answer of a served R5 version of a type /fhir-r4 serves (ValueError for any other);
        `stored`: its R4 body, when the caller read it with the version (Served.read_r4)."""
        found = self._prepared.get(r5.version.pk)
        if found is not None:
            return found
        rtype = r5.version.type
        if rtype not in R4_OF_SERVED:
            raise ValueError(f"{rtype} is not served as R4")
        body = stored
        if rtype == CODE_SYSTEM:  # made at the read: the store keeps the SAFEST types' R4 only
            made = code_system_r4(r5.version.resource())
            body = None if made is None else orjson.dumps(made)
        else:
            if body is None and self.engine is not None:
                with self.engine.connect() as conn:
                    body = r4_body(conn, r5.version.pk)
            if body is None:  # stored before the store kept R4 bodies
                body = r4_json(r5.body)
        if body is None:
            raise ValueError(f"{rtype}/{r5.version.id} has no R4 form")
        prepared = Prepared(r5.version, body, r5.etag, r5.last_modified)
        if len(self._prepared) >= self.size:
            self._prepared.popitem(last=False)
        self._prepared[r5.version.pk] = prepared
        return prepared
