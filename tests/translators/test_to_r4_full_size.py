"""The R4 round trip at full size (opt-in, GRUNNDATA_SLOW=1): the generated delivery of the real
size (about 69,000 FEST entries) imported, every national resource the store then serves made R4
as /fhir-r4 makes it, and that read back by our SAFEST importer's conversion gives the served R5
resource exactly (meta aside: the R4 view's is the served version's, the import adds its profile)."""

from __future__ import annotations

import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from grunndata.importers.identifiers import served_identifiers
from grunndata.store import connect
from grunndata.translators.safest import to_r5
from grunndata.translators.safest.to_r4 import R4_OF_R5, to_r4

Json = dict[str, Any]


def round_trip(engine: Any) -> tuple[Counter[str], list[str], list[str]]:
    """(R4 resources made by type, conversion errors, resources that did not come back the same)."""
    from grunndata.store import served

    national: dict[tuple[str, str], Json] = {}
    made: list[Json] = []
    with engine.connect() as conn:
        for version in served(conn):
            if version.tier != "national" or version.type not in R4_OF_R5:
                continue
            resource = version.resource()
            r4 = to_r4(resource)
            assert r4 is not None
            made.append(r4)
            resource.pop("meta")
            national[(version.type, version.id)] = resource
    conversion = to_r5(made)
    differing = []
    back = {(r["resourceType"], r["id"]): served_identifiers(r) for r in conversion.resources}
    for key, resource in national.items():
        again = back.pop(key, None)
        if again is not None:
            again.pop("meta", None)
        if again != resource:
            differing.append("/".join(key))
    differing += [f"{'/'.join(key)} (not served)" for key in back]
    return Counter(r["resourceType"] for r in made), [p.message for p in conversion.errors], differing


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GRUNNDATA_SLOW") != "1", reason="full size; set GRUNNDATA_SLOW=1")
def test_every_national_resource_of_the_full_size_delivery_comes_back_exactly_through_r4(
    tmp_path: Path,
) -> None:
    from grunndata.importers.fest import import_fest
    from grunndata.sample import generate_delivery

    path = tmp_path / "fest251.zip"
    generate_delivery(path)
    engine = connect(f"sqlite:///{tmp_path / 'full.db'}")
    started = time.perf_counter()
    import_fest(engine, path)
    imported = time.perf_counter() - started
    started = time.perf_counter()
    made, errors, differing = round_trip(engine)
    seconds = time.perf_counter() - started
    engine.dispose()
    print(
        f"\nimport {imported:.0f} s; R4 and back: {sum(made.values()):,} resources, {seconds:.0f} s; "
        f"{dict(made)}; {len(differing)} differ"
    )
    assert errors == []
    assert differing[:20] == []
    assert sum(made.values()) > 50_000
