"""The R4 view imported again: every national resource of the real extract, served in SAFEST's R4
shape and imported through our SAFEST importer, is stored and served as the R5 resource it was.

Apart from: meta (a new release's), the source-profile marker the import adds, the references
to resources the R4 view does not serve (Basic: FEST's conditions and refund groups; R5-only, so
not in this delivery), which the importer's guard drops as pointing at nothing, and the PhPIDs the
import computes (compared on their own: the same as a FEST import of the extract computes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from grunndata.fhir.systems import NS_PHPID
from grunndata.importers.fest import import_fest
from grunndata.importers.safest import import_safest
from grunndata.server import create_app
from grunndata.store import connect
from grunndata.translators.safest.to_r4 import R4_OF_R5, to_r4
from tests.conftest import REAL_FEST, require
from tests.translators.conftest import read, translate_all

Json = dict[str, Any]
R5_ONLY = ("Basic", "ClinicalUseDefinition", "RegulatedAuthorization")


def _references(value: Any) -> list[str]:
    if isinstance(value, dict):
        own = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return own + [r for child in value.values() for r in _references(child)]
    if isinstance(value, list):
        return [r for child in value for r in _references(child)]
    return []


def _phpids(resource: Json) -> list[str]:
    found = resource.get("identifier", [])
    return [
        i["value"] for i in (found if isinstance(found, list) else [found]) if i.get("system") == NS_PHPID
    ]


def _without_phpids(resource: Json) -> Json:
    found = resource.get("identifier")
    if not isinstance(found, list) or not _phpids(resource):
        return resource
    kept = [i for i in found if i.get("system") != NS_PHPID]
    return {k: v for k, v in resource.items() if k != "identifier"} | ({"identifier": kept} if kept else {})


def _comparable(value: Any) -> Any:
    """`value` without the (sub-)extensions whose value is a reference to an R5-only resource, and
    without the import's source-profile marker; an extension list left empty goes too."""
    if isinstance(value, dict):
        out = {}
        for key, child in value.items():
            if key == "extension":
                child = [
                    e
                    for e in child
                    if not e["url"].endswith("/source-profile")
                    and str(e.get("valueReference", {}).get("reference", "")).split("/")[0] not in R5_ONLY
                ]
                if not child:
                    continue
            out[key] = _comparable(child)
        return out
    if isinstance(value, list):
        return [_comparable(child) for child in value]
    return value


def test_the_r4_view_imported_again_is_served_as_the_same_r5(engine: Engine, tmp_path: Path) -> None:
    national = [r for r in translate_all(read(require(REAL_FEST))) if r["resourceType"] in R4_OF_R5]
    delivery = tmp_path / "r4-view.json"
    entries = [{"resource": to_r4(r)} for r in national]
    delivery.write_bytes(orjson.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}))
    # forced: the R5-only resources the view's references name are not in it
    result = import_safest(engine, delivery, force=True)
    assert result.as_report()["problem_count"] == 0
    from_fest = connect(f"sqlite:///{tmp_path / 'fest.db'}")
    import_fest(from_fest, require(REAL_FEST))
    with TestClient(create_app(engine)) as client, TestClient(create_app(from_fest)) as fest:
        differing, phpids = [], 0
        for resource in national:
            path = f"/fhir/{resource['resourceType']}/{resource['id']}"
            served = client.get(path).json()
            served.pop("meta")
            if _comparable(_without_phpids(served)) != _comparable(resource):
                differing.append(f"{resource['resourceType']}/{resource['id']}")
            assert _phpids(served) == _phpids(fest.get(path).json()), path
            phpids += bool(_phpids(served))
    from_fest.dispose()
    assert differing == []
    assert phpids == 185  # 107 packages, 75 administrable forms, 3 LegemiddelVirkestoff products
    dropped = [r for r in national if any(p.split("/")[0] in R5_ONLY for p in _references(r))]
    assert len(dropped) == 80  # what the comparison leaves aside, counted
