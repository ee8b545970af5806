"""Every FEST catalogue, also those the real 2017 extract lacks (Legemiddeldose, Kodeverk, StrDosering,
Handelsvare, ...), translates to valid FHIR; the full-size delivery translates in well under 15 s."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from pathlib import Path

import pytest
from fhir.resources import get_fhir_model_class

from grunndata.sample import generate_delivery
from grunndata.translators.fest_to_idmp import LOOKUP_KINDS, translate
from grunndata.translators.fest_to_idmp.tables import MAPPINGS
from grunndata.translators.idmp_to_fest import entry_from
from tests.translators.conftest import lookup_of, read, translate_all

TRANSLATE_BUDGET_SECONDS = 15.0


def _check_ids_and_references(resources: list[dict]) -> None:
    keys = Counter((r["resourceType"], r["id"]) for r in resources)
    assert [k for k, n in keys.items() if n > 1] == []
    made = {f"{t}/{i}" for t, i in keys}
    dangling = [
        ref
        for r in resources
        for ref in _literal_references(r)
        if ref not in made and ref not in {f"#{c['id']}" for c in r.get("contained", [])}
    ]
    assert dangling == []


def _literal_references(value: object) -> list[str]:
    if isinstance(value, dict):
        found = [value["reference"]] if isinstance(value.get("reference"), str) else []
        return found + [ref for v in value.values() for ref in _literal_references(v)]
    if isinstance(value, list):
        return [ref for v in value for ref in _literal_references(v)]
    return []


def test_a_generated_delivery_with_every_catalogue_translates_to_valid_fhir(tmp_path: Path):
    path = tmp_path / "fest251.xml"
    generate_delivery(path, scale=0.02)
    entries = read(path)
    assert {e.kind for e in entries} == set(MAPPINGS)  # every payload kind there is
    resources = translate_all(entries)
    for resource in resources:
        model = get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        ours = json.dumps(resource, ensure_ascii=False, separators=(",", ":"))
        assert ours == model.model_dump_json(by_alias=True, exclude_none=True)  # FHIR element order
    _check_ids_and_references(resources)
    assert Counter(r["resourceType"] for r in resources).keys() == {
        "MedicinalProductDefinition",
        "PackagedProductDefinition",
        "ManufacturedItemDefinition",
        "AdministrableProductDefinition",
        "Ingredient",
        "SubstanceDefinition",
        "ClinicalUseDefinition",
        "CodeSystem",
        "Basic",
        "RegulatedAuthorization",
    }


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GRUNNDATA_SLOW") != "1", reason="full size; set GRUNNDATA_SLOW=1")
def test_the_full_size_delivery_translates_quickly_validly_and_without_loss(tmp_path: Path):
    path = tmp_path / "fest251.zip"
    generate_delivery(path)
    entries = read(path)
    assert len(entries) > 68_000
    lookup = lookup_of(entries)
    assert len(lookup) == sum(1 for e in entries if e.kind in LOOKUP_KINDS)
    wall, cpu = time.perf_counter(), time.process_time()
    made = 0
    for entry in entries:  # as the importer does: each entry's resources are serialised and let go
        made += len(translate(entry, lookup))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(
        f"\ntranslated {len(entries):,} entries into {made:,} resources: {wall:.1f} s wall, {cpu:.1f} s CPU"
    )
    assert cpu < TRANSLATE_BUDGET_SECONDS
    keys: Counter[tuple[str, str]] = Counter()
    references: set[str] = set()
    for n, entry in enumerate(entries):
        made_here = translate(entry, lookup)
        assert entry_from(made_here).to_json() == entry.to_json(), entry.key  # nothing lost
        for resource in made_here:
            keys[(resource["resourceType"], resource["id"])] += 1
            references.update(_literal_references(resource))
            if n % 97 == 0:
                get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert sum(keys.values()) == made
    assert [k for k, count in keys.items() if count > 1] == []
    assert references - {f"{t}/{i}" for t, i in keys} == set()
