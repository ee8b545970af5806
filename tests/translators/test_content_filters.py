"""DMP's H-resept content filters over our R5 resources: each rule as docs/h-resept-filters.md
reads it, and what they leave out of the real 2017 extract."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import orjson
import pytest

from grunndata.importers.fest import import_fest
from grunndata.m30 import FestEntry
from grunndata.store import connect, served
from grunndata.translators.content_filters import (
    FILTERS,
    VIEWS,
    Classifier,
    counts,
    enabled,
    months_before,
    release_day,
)
from grunndata.translators.fest_to_idmp import translate
from tests.conftest import REAL_FEST, require

PPD = "PackagedProductDefinition"


@pytest.fixture(scope="module")
def real_resources(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict[str, Any], bytes]]:
    """Every FHIR resource served from the real extract, as stored."""
    engine = connect(f"sqlite:///{tmp_path_factory.mktemp('filters') / 'store.db'}")
    import_fest(engine, require(REAL_FEST))
    with engine.connect() as conn:
        found = [(orjson.loads(v.data), v.data) for v in served(conn)]
    engine.dispose()
    return found


def _classes(resources: list[tuple[dict[str, Any], bytes]], now: date | None) -> dict[Any, frozenset[str]]:
    classifier = Classifier(now)
    for resource, body in resources:
        classifier.observe(resource, body)
    return classifier.classes()


def test_the_real_extract_with_its_hentetdato_as_now_loses_nothing(real_resources: Any) -> None:
    """HentetDato 2017-04-12: no ATC Q, no homeopathic product, every package has a varenr and was
    marketed after 2017-01-12 (the two deregistered on 2017-01-18, the one out since 2017-02-01)."""
    classes = _classes(real_resources, release_day("2017-04-12T18:26:27.336Z"))
    assert classes == {}
    assert counts(classes) == {code: {} for code in FILTERS}


@pytest.mark.parametrize(
    ("now", "left_out"),
    [
        # three months back is 2017-02-01: deregistered 2017-01-18 (two), out since 2017-02-01 (one)
        (date(2017, 5, 1), ["22439BFE-444D-4B21-8FB8-9AF603EA7CA2", "CCB0B44D-E56F-4E95-82B8-86C350E82F29", "FC743D4B-F323-41B7-84EE-530D15B40FD2"]),
        # before 2017-03-15 three packages were not yet marketed
        (date(2017, 3, 1), ["005A576C-2CB4-424A-8624-4182B65356CA", "8B47EAEC-9222-4261-AD7E-8F94B2ACB34A", "D0AF4B7A-5F39-47A2-9629-BAFAA0DE8635"]),
        (date(2017, 4, 16), []),  # 2017-01-16: the deregistered ones were still marketed on the 18th
    ],
)  # fmt: skip
def test_not_marketed_in_the_three_months_up_to_now_on_the_real_extract(
    real_resources: Any, now: date, left_out: list[str]
) -> None:
    classes = _classes(real_resources, now)
    assert (
        sorted(i for (t, i), codes in classes.items() if codes == {"not-marketed"} and t == PPD) == left_out
    )
    assert len(classes) == len(left_out)


def test_without_a_hentetdato_the_time_dependent_filters_are_not_judged(real_resources: Any) -> None:
    assert _classes(real_resources, None) == {}


def test_three_months_back_is_calendar_months_and_the_last_day_where_the_month_is_shorter() -> None:
    assert months_before(date(2017, 4, 12)) == date(2017, 1, 12)
    assert months_before(date(2017, 5, 31)) == date(2017, 2, 28)
    assert months_before(date(2016, 5, 31)) == date(2016, 2, 29)
    assert months_before(date(2017, 2, 15)) == date(2016, 11, 15)
    assert release_day("2017-04-12T18:26:27.336Z") == date(2017, 4, 12)
    assert release_day("not a date") is None and release_day(None) is None


def _product(atc: str, kind: tuple[str, str]) -> dict[str, Any]:
    return {
        "resourceType": "MedicinalProductDefinition",
        "id": "p",
        "classification": [{"coding": [{"system": "http://www.whocc.no/atc", "code": atc}]}],
        "type": {"coding": [{"system": "x", "code": kind[0], "display": kind[1]}]},
    }


def _package(**extra: Any) -> dict[str, Any]:
    return {
        "resourceType": PPD,
        "id": "k",
        "identifier": [{"system": "http://dmp.no/fhir/NamingSystem/fest-varenummer", "value": "014884"}],
        "packageFor": [{"reference": "MedicinalProductDefinition/p"}],
        "marketingStatus": [{"dateRange": {"start": "2010-01-01"}}],
        **extra,
    }


def _classify(*resources: dict[str, Any], now: date = date(2017, 4, 12)) -> dict[Any, frozenset[str]]:
    classifier = Classifier(now)
    for r in resources:
        classifier.observe(r, orjson.dumps(r))
    return classifier.classes()


def test_a_product_s_class_reaches_its_packages_but_a_package_s_stays_its_own() -> None:
    assert _classify(_product("QJ01CA04", ("7", "Legemiddel")), _package()) == {
        ("MedicinalProductDefinition", "p"): {"atc-q"},
        (PPD, "k"): {"atc-q"},
    }
    assert _classify(_product("J01CA04", ("99", "Homøopatisk Veterinær")), _package()) == {
        ("MedicinalProductDefinition", "p"): {"homeopathic"},
        (PPD, "k"): {"homeopathic"},
    }
    assert _classify(_product("J01CA04", ("7", "Legemiddel")), _package(identifier=[])) == {
        (PPD, "k"): {"no-varenr"}
    }
    future = _package(marketingStatus=[{"dateRange": {"start": "2017-04-13"}}])
    assert _classify(_product("J01CA04", ("7", "Legemiddel")), future) == {(PPD, "k"): {"not-marketed"}}


def test_an_unmarked_or_undated_marketing_status_is_no_evidence_of_marketing() -> None:
    assert _classify(_package(marketingStatus=[])) == {(PPD, "k"): {"not-marketed"}}
    assert _classify(_package(marketingStatus=[{"status": {"text": "x"}}])) == {(PPD, "k"): {"not-marketed"}}


def test_an_expired_unit_dose_is_left_out_whenever_it_expired() -> None:
    node = [
        "Legemiddeldose",
        None,
        None,
        [
            ["NavnFormStyrke", None, "X endose", None],
            ["Reseptgruppe", {"V": "C", "DN": "Reseptgruppe C"}, None, None],
            ["Id", None, "ID_D0", None],
            ["Mengde", {"V": "1", "U": "stk"}, None, None],
            ["RefLegemiddelMerkevare", None, "ID_P", None],
            ["RefPakning", None, "ID_K", None],
        ],
    ]
    expired = FestEntry("Legemiddeldose", "ID_O", "2017-04-11T10:00:00", "U", "Utgått", (node,))
    active = FestEntry("Legemiddeldose", "ID_O", "2017-04-11T10:00:00", "A", "Aktiv oppføring", (node,))
    made_expired = [
        r for r in translate(expired, _NoLookup()) if r["resourceType"] == "ManufacturedItemDefinition"
    ]
    made_active = [
        r for r in translate(active, _NoLookup()) if r["resourceType"] == "ManufacturedItemDefinition"
    ]
    assert _classify(*made_expired) == {("ManufacturedItemDefinition", "D0"): {"unit-dose-expired"}}
    assert _classify(*made_active) == {}


class _NoLookup:
    def get(self, fest_id: str) -> None:
        return None


def test_the_view_names_every_filter_and_a_setting_takes_one_out() -> None:
    assert {"h-resept": tuple(FILTERS)} == VIEWS
    assert enabled(None, {}) == ()
    assert enabled("h-resept", {}) == tuple(FILTERS)
    assert "atc-q" not in enabled("h-resept", {"atc-q": False})
    assert len(enabled("h-resept", {"atc-q": False})) == len(FILTERS) - 1


def test_every_filter_has_its_setting(tmp_path: Path) -> None:
    from grunndata.settings import Settings

    assert set(Settings.model_construct().content_filters_on()) == set(FILTERS)
