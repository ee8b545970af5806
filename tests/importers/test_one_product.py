"""One product from two sources is served once: a SAFEST delivery describing a product of the real
extract (the planted Estradot of tests/translators/test_one_shape.py) merges into FEST's product,
package and, where the delivery has one item for the brand, the brand's manufactured item."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from grunndata.importers.fest import import_fest
from grunndata.importers.safest import import_safest
from grunndata.server import create_app
from grunndata.store import connect
from tests.conftest import REAL_FEST, fresh_pg_database, require

PLANTED = Path(__file__).parents[1] / "translators" / "safest_r4" / "Bundle-estradot-50.json"
BRAND, PACKAGE = "5F631888-A74D-4DF9-A642-96E753944911", "90728833-A374-471B-B39B-487A2ADF39E5"
MID, PPD, ING = "ManufacturedItemDefinition", "PackagedProductDefinition", "Ingredient"


def _imported(url: str, delivery: Path) -> tuple[Any, dict[str, Any]]:
    engine = connect(url)
    import_fest(engine, require(REAL_FEST))
    result = import_safest(engine, delivery)
    assert result.reconciliation is not None
    return engine, result.reconciliation


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def both(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[dict[str, Any], TestClient]]:
    if request.param == "postgres":
        with fresh_pg_database() as url:
            engine, reconciliation = _imported(url, PLANTED)
            with TestClient(create_app(engine)) as client:
                yield reconciliation, client
            engine.dispose()
        return
    url = f"sqlite:///{tmp_path_factory.mktemp('one') / 'store.db'}"
    engine, reconciliation = _imported(url, PLANTED)
    with TestClient(create_app(engine)) as client:
        yield reconciliation, client
    engine.dispose()


def test_the_item_of_the_brand_is_served_once(both: tuple[dict[str, Any], TestClient]) -> None:
    reconciliation, client = both
    assert reconciliation["linked"] == {MID: 1, "MedicinalProductDefinition": 1, PPD: 1}
    assert client.get(f"/fhir/{MID}/mi-estradot-50").status_code == 404
    item = client.get(f"/fhir/{MID}/{BRAND}").json()
    assert [(i["system"], i["value"]) for i in item["identifier"]] == [
        ("http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare", f"ID_{BRAND}")
    ]
    package = client.get(f"/fhir/{PPD}/{PACKAGE}").json()
    assert [c["item"]["reference"]["reference"] for c in package["packaging"]["containedItem"]] == [
        f"{MID}/{BRAND}"
    ]
    ingredient = client.get(f"/fhir/{ING}/ing-estradiol-50").json()
    assert f"{MID}/{BRAND}" in [f["reference"] for f in ingredient["for"]]


def test_two_items_naming_one_brand_are_not_taken_for_its_one_item(tmp_path: Path) -> None:
    bundle = json.loads(PLANTED.read_text())
    (item,) = [e for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicinalProductManufactured"]
    twin = json.loads(json.dumps(item))
    twin["resource"]["id"] = "mi-estradot-50-twin"
    twin["fullUrl"] = str(twin.get("fullUrl", "")).replace("mi-estradot-50", "mi-estradot-50-twin")
    bundle["entry"].append(twin)
    delivery = tmp_path / "twins.json"
    delivery.write_text(json.dumps(bundle))
    engine, reconciliation = _imported(f"sqlite:///{tmp_path / 'store.db'}", delivery)
    assert MID not in reconciliation["linked"]
    with TestClient(create_app(engine)) as client:
        assert client.get(f"/fhir/{MID}/mi-estradot-50").status_code == 200
        assert client.get(f"/fhir/{MID}/mi-estradot-50-twin").status_code == 200
    engine.dispose()


def test_a_snapshot_naming_two_releases_of_one_line_is_refused(
    both: tuple[dict[str, Any], TestClient],
) -> None:
    """Edited paging tokens (probe): release 1 (FEST) and 2 (SAFEST over it) are the national line's;
    both at once served every resource twice and brought back what release 2 no longer serves."""
    _, client = both
    assert client.get(f"/fhir/{PPD}?_snapshot=2&_count=1").status_code == 200
    for token, says in (("1.2", "names two releases of one line"), ("2.2", "names a release twice")):
        r = client.get(f"/fhir/{PPD}?_snapshot={token}")
        assert r.status_code == 400, token
        assert says in r.json()["issue"][0]["diagnostics"], token
