"""DMP's own SAFEST examples import as DMP published them, and as FHIR.js gives them in the other form.

The folder is what a new user would try first. Its seven packaged products name products
(MedicinalProduct/6587, /3547, /1234) and its two manufactured items ingredients that are not in
it, so a plain import is refused by the guard on references to what is not served, and `--force`
imports it: every resource served is valid R5, and none names a resource that is not served.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from fhir.resources import get_fhir_model_class
from sqlalchemy.engine import Engine

from grunndata.errors import DeliveryError
from grunndata.importers.safest import import_safest
from grunndata.server import create_app
from tests.conftest import require
from tests.importers.conftest import EXAMPLE_NAMES, EXAMPLES
from tests.importers.test_r4_xml import json_value

SERVED = {
    "AdministrableProductDefinition": 2,
    "ManufacturedItemDefinition": 2,
    "MedicinalProductDefinition": 1,
    "PackagedProductDefinition": 7,
}
PPD = "PackagedProductDefinition"
MID = "ManufacturedItemDefinition"
APD = "AdministrableProductDefinition"
UNSERVED = {  # served resource -> (where in it, what it named): each left out
    (
        f"{APD}/39493ab2-c653-468d-920c-83ec200a4c6e",  # a product on DMP's test server, not ours to serve
        f"{APD}.extension.valueReference",
        "https://slvfhirapi-at.azurehealthcareapis.com/MedicinalProductDefinition/f0a130ca-53c8-48ae-a456-6d81313739f1",
    ),
    (f"{MID}/exampleCanestenLotion", f"{MID}.extension.valueReference", "Ingredient/3547"),
    (f"{MID}/exampleCanestenTablet", f"{MID}.extension.valueReference", "Ingredient/4643"),
    (f"{PPD}/exampleKloramfenikol", f"{PPD}.packageFor", "MedicinalProductDefinition/6587"),
    (f"{PPD}/exampleMetadon", f"{PPD}.packageFor", "MedicinalProductDefinition/6587"),
    (f"{PPD}/exampleAdvate", f"{PPD}.packageFor", "MedicinalProductDefinition/6587"),
    (f"{PPD}/exampleCanesten", f"{PPD}.packageFor", "MedicinalProductDefinition/6587"),
    (f"{PPD}/exampleKlexane", f"{PPD}.packageFor", "MedicinalProductDefinition/3547"),
    (f"{PPD}/exampleMetronidazole", f"{PPD}.packageFor", "MedicinalProductDefinition/6587"),
    (f"{PPD}/exampleParacet", f"{PPD}.packageFor", "MedicinalProductDefinition/1234"),
}
LITERAL = re.compile(r'"reference":"((?:https?://[^"]+/)?[A-Z][A-Za-z]+/[A-Za-z0-9.\-]{1,64})"')


@pytest.fixture(params=["as published", "in the other form"])
def examples(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The 12 examples in a folder: as DMP published them, or each converted by FHIR.js."""
    require(EXAMPLES)
    folder = tmp_path / "examples"
    folder.mkdir()
    if request.param == "as published":
        for name in EXAMPLE_NAMES:
            shutil.copy(EXAMPLES / name, folder)
    else:
        other_forms: dict[str, Path] = request.getfixturevalue("other_forms")
        for converted in other_forms.values():
            shutil.copy(converted, folder)
    return folder


def served(engine: Engine) -> dict[str, dict[str, Any]]:
    """Every resource the server serves, by Type/id, without its meta (version and time)."""
    found: dict[str, dict[str, Any]] = {}
    with TestClient(create_app(engine)) as client:
        for rtype in SERVED:
            bundle = client.get(f"/fhir/{rtype}", params={"_count": 100}).json()
            for entry in bundle.get("entry", []):
                resource = entry["resource"]
                resource.pop("meta")
                found[f"{rtype}/{resource['id']}"] = resource
    return found


def test_dmps_examples_are_refused_without_force_for_the_products_their_packages_name(
    engine: Engine, examples: Path
) -> None:
    with pytest.raises(DeliveryError) as refused:
        import_safest(engine, examples)
    assert str(refused.value) == (
        "refused: 10 of 10 references point at resources neither in the delivery nor served, more than the 1% "
        "allowed; the delivery looks cut or broken (use --force to import it anyway)"
    )


def test_dmps_examples_import_with_force_as_valid_r5_naming_only_what_is_served(
    engine: Engine, examples: Path
) -> None:
    result = import_safest(engine, examples, force=True)
    assert result.read == 12 and result.problems == [] and result.types == SERVED
    unserved = {
        (w["resource"], w["path"], w["message"].split(" points at ")[1].split(",")[0])
        for w in result.warnings
        if w["kind"] == "unserved-reference"
    }
    assert unserved == UNSERVED
    resources = served(engine)
    assert {k.split("/")[0] for k in resources} == set(SERVED) and len(resources) == sum(SERVED.values())
    for label, resource in resources.items():
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        named = set(LITERAL.findall(orjson.dumps(resource).decode()))
        assert named <= set(resources), f"{label} names {named - set(resources)}, which is not served"
    paracet = resources[f"{PPD}/exampleParacet"]
    assert {"system": "http://dmp.no/fhir/NamingSystem/fest-varenummer", "value": "100206"} in paracet[
        "identifier"
    ]
    assert "packageFor" not in paracet
    assert paracet["packaging"]["containedItem"] == [
        {"item": {"reference": {"identifier": {"value": "ManufacturedItem/2148"}}}, "amount": {"value": 2}}
    ]
    assert {
        "url": "https://grunndata.no/fhir/StructureDefinition/source-profile",
        "valueCanonical": "http://legemiddelverket.no/fhir/StructureDefinition/safest-MedicinalProductPackaged",
    } in paracet["extension"]


def test_both_forms_of_dmps_examples_serve_the_same_resources(
    engine: Engine, tmp_path: Path, other_forms: dict[str, Path]
) -> None:
    require(EXAMPLES)
    import_safest(engine, EXAMPLES, force=True)
    published = served(engine)
    folder = tmp_path / "other"
    folder.mkdir()
    for converted in other_forms.values():
        shutil.copy(converted, folder)
    import_safest(engine, folder, force=True)
    assert json_value(served(engine)) == json_value(published)
