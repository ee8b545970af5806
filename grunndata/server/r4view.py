"""The R4 bodies of served versions, made once by translators/safest/to_r4.py and kept.

A stored version's bytes never change (a new release makes new versions), so its R4 body, keyed by
the version's primary key, is made at its first R4 read and sent as prepared bytes after that, by
the fast path (server/fastpath.py) and the /fhir-r4 routes alike.
"""

from __future__ import annotations

from collections import OrderedDict

import orjson

from grunndata.server.state import Prepared
from grunndata.translators.safest.to_r4 import R4_OF_R5, to_r4

R5_OF_R4 = {r4: r5 for r5, r4 in R4_OF_R5.items()}
"""The SAFEST R4 types served at /fhir-r4, and the R5 type each is made from."""


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
        made = to_r4(r5.version.resource())
        if made is None:
            raise ValueError(f"{r5.version.type} is not served as R4")
        prepared = Prepared(r5.version, orjson.dumps(made), r5.etag, r5.last_modified)
        if len(self._prepared) >= self.size:
            self._prepared.popitem(last=False)
        self._prepared[r5.version.pk] = prepared
        return prepared
