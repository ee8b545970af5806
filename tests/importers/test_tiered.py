"""Sector and supplementary data: keyed on the national ids, checked against them, all or nothing.

Every test first imports the real 2017 FEST extract (with a Kodeverk for legemiddelform, 7448,
added: the extract has none), then a data owner's delivery, on SQLite and PostgreSQL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from fhir.resources.basic import Basic
from fhir.resources.packagedproductdefinition import PackagedProductDefinition
from sqlalchemy.engine import Engine

from grunndata.importers.fest import import_fest
from grunndata.importers.tiered import TieredDeliveryError, TieredResult, import_tiered
from grunndata.store import (
    Clause,
    connect,
    current_snapshot,
    list_releases,
    read,
    read_active,
    search,
    served_counts,
)
from grunndata.store.models import Owner
from grunndata.store.searchparams import lookup

DATA = Path(__file__).parent / "tiered_data"
CERTICAN_PPD = "CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A"  # Certican Disperg tab 0,1 mg, varenr 014884
CERTICAN_MPD = "F2CEF840-A295-4A7A-9CCD-5873D846C3BD"
AMIAS_PPD = "90315A87-3E6F-4808-9425-661ADCE20908"  # varenr 004741
FORM = "urn:oid:2.16.578.1.12.4.1.1.7448"
VARENR = "http://dmp.no/fhir/NamingSystem/fest-varenummer"
PAKNING = "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning"
EXT = "https://grunndata.no/fhir/StructureDefinition/"
TIERED = "https://grunndata.no/fhir/CodeSystem/tiered-data"
UNKNOWN_GUID = "00000000-0000-0000-0000-000000000000"


@pytest.fixture(scope="session")
def national_delivery(real_fest_xml: bytes, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real extract with the legemiddelform Kodeverk put in its place (before Byttegruppe)."""
    kodeverk = (DATA / "kodeverk-legemiddelform.xml").read_bytes()
    xml = real_fest_xml.replace(b"<m30:KatByttegruppe>", kodeverk + b"<m30:KatByttegruppe>", 1)
    assert xml != real_fest_xml
    path: Path = tmp_path_factory.mktemp("national") / "fest-with-kodeverk.xml"
    path.write_bytes(xml)
    return path


@pytest.fixture
def national(engine: Engine, national_delivery: Path) -> Engine:
    """A store serving the national data (release 1)."""
    assert import_fest(engine, national_delivery).release_id == 1
    return engine


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def served(engine: Engine, rtype: str, rid: str) -> Any:
    data = read_active(engine, rtype, rid)
    return None if data is None else orjson.loads(data)


def statuses(engine: Engine) -> list[tuple[int, str, str, str]]:
    return [(r.id, r.tier, r.owner_id, r.status) for r in list_releases(engine)]


def found(engine: Engine, rtype: str, param: str, value: str) -> list[str]:
    with engine.connect() as conn:
        versions, _, _ = search(
            conn, current_snapshot(conn), rtype, [Clause(lookup(rtype, param), None, (value,))], count=200
        )
    return [v.id for v in versions]


def supplementary(engine: Engine, path: Path, **options: Any) -> TieredResult:
    return import_tiered(engine, path, tier="supplementary", owner="farmasi-as", **options)


def refused(engine: Engine, path: Path, **options: Any) -> list[str]:
    options = {"tier": "supplementary", "owner": "farmasi-as"} | options
    with pytest.raises(TieredDeliveryError) as caught:
        import_tiered(engine, path, **options)
    return [str(p) for p in caught.value.problems]


# -- a supplementary CSV ---------------------------------------------------------------------------


def test_a_supplementary_csv_keyed_on_varenr_points_at_the_national_package(national: Engine) -> None:
    result = supplementary(national, DATA / "farmasi-hyllekoder.csv", owner_name="Farmasi AS")
    assert (result.release_id, result.based_on, result.records, result.problems, result.warnings) == (
        2,
        None,
        2,
        [],
        [],
    )
    assert result.resources == {"Basic": {"new": 2, "changed": 0, "unchanged": 0, "expired": 0}}
    basic = served(national, "Basic", "farmasi-as-014884")
    assert basic == {
        "resourceType": "Basic",
        "id": "farmasi-as-014884",
        "extension": [
            {"url": EXT + "supplementary/farmasi-as/hyllekode", "valueString": "B-12-04"},
            {"url": EXT + "supplementary/farmasi-as/merknad", "valueString": "Dispergeres i vann før bruk"},
            {
                "url": EXT + "supplementary/farmasi-as/legemiddelform",
                "valueCoding": {"system": FORM, "code": "5", "display": "Dispergerbar tablett"},
            },
        ],
        "identifier": [{"system": VARENR, "value": "014884"}],
        "code": {"coding": [{"system": TIERED, "code": "supplementary"}]},
        "subject": {"reference": f"PackagedProductDefinition/{CERTICAN_PPD}"},
    }
    Basic.model_validate(basic)
    assert served(national, "Basic", "farmasi-as-004741")["subject"] == {
        "reference": f"PackagedProductDefinition/{AMIAS_PPD}"
    }
    assert statuses(national) == [
        (1, "national", "dmp", "active"),
        (2, "supplementary", "farmasi-as", "active"),
    ]
    with national.connect() as conn:
        owner = conn.execute(Owner.__table__.select().where(Owner.__table__.c.id == "farmasi-as")).one()
        version = read(conn, current_snapshot(conn), "Basic", "farmasi-as-014884")
    assert (owner.name, owner.tier) == ("Farmasi AS", "supplementary")
    assert version is not None
    meta = version.resource()["meta"]
    assert (meta["source"], meta["tag"]) == (
        "https://grunndata.no/owner/farmasi-as",
        [{"system": "https://grunndata.no/fhir/CodeSystem/tier", "code": "supplementary"}],
    )


def test_supplementary_rows_are_found_by_tier_subject_and_varenr(national: Engine) -> None:
    supplementary(national, DATA / "farmasi-hyllekoder.csv")
    assert found(national, "Basic", "_tag", "supplementary") == ["farmasi-as-004741", "farmasi-as-014884"]
    assert found(national, "Basic", "subject", f"PackagedProductDefinition/{CERTICAN_PPD}") == [
        "farmasi-as-014884"
    ]
    assert found(national, "Basic", "identifier", f"{VARENR}|014884") == ["farmasi-as-014884"]
    assert found(national, "Basic", "code", f"{TIERED}|supplementary") == [
        "farmasi-as-004741",
        "farmasi-as-014884",
    ]


def test_a_csv_keyed_on_fest_ids_with_or_without_id_prefix_and_commas(
    national: Engine, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "pakninger.csv",
        f"legemiddelpakning_id,id,Merknad kjøl,pakningstype\n"
        f"ID_{CERTICAN_PPD},certican-notat,Ikke i kjøleskap,169\n"
        f"{AMIAS_PPD},,,\n",
    )
    result = supplementary(national, path)
    assert [str(w) for w in result.warnings] == [
        "pakninger.csv: the column pakningstype holds codes of urn:oid:2.16.578.1.12.4.1.1.7449, which "
        "the national data does not serve; its codes were not checked"
    ]
    assert served(national, "Basic", "certican-notat") == {
        "resourceType": "Basic",
        "id": "certican-notat",
        "extension": [
            {"url": EXT + "supplementary/farmasi-as/Merknad%20kj%C3%B8l", "valueString": "Ikke i kjøleskap"},
            {
                "url": EXT + "supplementary/farmasi-as/pakningstype",
                "valueCoding": {"system": "urn:oid:2.16.578.1.12.4.1.1.7449", "code": "169"},
            },
        ],
        "identifier": [{"system": PAKNING, "value": f"ID_{CERTICAN_PPD}"}],
        "code": {"coding": [{"system": TIERED, "code": "supplementary"}]},
        "subject": {"reference": f"PackagedProductDefinition/{CERTICAN_PPD}"},
    }
    bare = served(national, "Basic", f"farmasi-as-{AMIAS_PPD}")
    assert (bare["identifier"], bare["subject"], "extension" in bare) == (
        [{"system": PAKNING, "value": AMIAS_PPD}],
        {"reference": f"PackagedProductDefinition/{AMIAS_PPD}"},
        False,
    )
    Basic.model_validate(bare)


# -- a sector Bundle -------------------------------------------------------------------------------


def test_a_sector_bundle_with_a_unit_dose_pack_and_a_handling_note(national: Engine) -> None:
    result = import_tiered(
        national, DATA / "sykehusapotek-endose.json", tier="sector", owner="sykehusapotekene"
    )
    assert result.resources == {
        "Basic": {"new": 1, "changed": 0, "unchanged": 0, "expired": 0},
        "PackagedProductDefinition": {"new": 1, "changed": 0, "unchanged": 0, "expired": 0},
    }
    sent = orjson.loads((DATA / "sykehusapotek-endose.json").read_bytes())["entry"]
    pack = served(national, "PackagedProductDefinition", "sykehusapotekene-certican-endose")
    assert pack == {k: v for k, v in sent[0]["resource"].items() if k != "meta"}  # the server sets meta
    assert list(pack)[:2] == ["resourceType", "id"]
    PackagedProductDefinition.model_validate(pack)
    note = served(national, "Basic", "sykehusapotekene-certican-handtering")
    assert note == sent[1]["resource"]
    Basic.model_validate(note)
    assert found(
        national, "PackagedProductDefinition", "package-for", f"MedicinalProductDefinition/{CERTICAN_MPD}"
    ) == [
        CERTICAN_PPD,
        "sykehusapotekene-certican-endose",
    ]
    assert found(national, "PackagedProductDefinition", "_tag", "sector") == [
        "sykehusapotekene-certican-endose"
    ]
    assert found(
        national, "Basic", "subject", "PackagedProductDefinition/sykehusapotekene-certican-endose"
    ) == ["sykehusapotekene-certican-handtering"]
    [release] = [r for r in list_releases(national) if r.owner_id == "sykehusapotekene"]
    assert (release.source, release.tier, release.kind, release.status, release.file_name) == (
        "sector",
        "sector",
        "full",
        "active",
        "sykehusapotek-endose.json",
    )
    assert release.report["resources"] == result.resources


@pytest.mark.parametrize("name", ["note.json", "note.ndjson"])
def test_a_single_resource_or_ndjson_imports_like_a_bundle(
    national: Engine, tmp_path: Path, name: str
) -> None:
    note = {
        "resourceType": "Basic",
        "id": "farmasi-certican-merkevare",
        "identifier": [
            {
                "system": "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare",
                "value": f"ID_{CERTICAN_MPD}",
            }
        ],
        "code": {"coding": [{"system": TIERED, "code": "supplementary"}]},
        "subject": {"reference": f"MedicinalProductDefinition/{CERTICAN_MPD}"},
    }
    result = supplementary(national, write(tmp_path, name, orjson.dumps(note).decode() + "\n"))
    assert (result.records, result.resources) == (
        1,
        {"Basic": {"new": 1, "changed": 0, "unchanged": 0, "expired": 0}},
    )
    assert served(national, "Basic", "farmasi-certican-merkevare") == note


# -- releases: the same file twice, a replacement, a dry run ---------------------------------------


def test_the_same_file_twice_changes_nothing(national: Engine) -> None:
    first = supplementary(national, DATA / "farmasi-hyllekoder.csv")
    second = supplementary(national, DATA / "farmasi-hyllekoder.csv")
    assert (first.release_id, second.release_id, second.based_on, second.changed_nothing) == (
        2,
        None,
        2,
        True,
    )
    assert second.resources == {"Basic": {"new": 0, "changed": 0, "unchanged": 2, "expired": 0}}
    assert statuses(national) == [
        (1, "national", "dmp", "active"),
        (2, "supplementary", "farmasi-as", "active"),
    ]


def test_a_second_import_replaces_the_first_and_expires_what_it_left_out(
    national: Engine, tmp_path: Path
) -> None:
    supplementary(national, DATA / "farmasi-hyllekoder.csv")
    path = write(tmp_path, "farmasi-hyllekoder.csv", "varenr;hyllekode\n014884;B-12-05\n005589;C-01-01\n")
    result = supplementary(national, path)
    assert (result.release_id, result.based_on) == (3, 2)
    assert result.resources == {"Basic": {"new": 1, "changed": 1, "unchanged": 0, "expired": 1}}
    assert served(national, "Basic", "farmasi-as-004741") is None
    assert served(national, "Basic", "farmasi-as-014884")["extension"] == [
        {"url": EXT + "supplementary/farmasi-as/hyllekode", "valueString": "B-12-05"}
    ]
    assert served(national, "Basic", "farmasi-as-005589")["subject"] == {
        "reference": "PackagedProductDefinition/991E874A-65DE-4FAA-A574-06CD57B7DDB6"
    }
    assert statuses(national) == [
        (1, "national", "dmp", "active"),
        (2, "supplementary", "farmasi-as", "superseded"),
        (3, "supplementary", "farmasi-as", "active"),
    ]
    assert served_counts(national, 3) == {"Basic": 2}


def test_a_dry_run_reports_and_serves_nothing(national: Engine) -> None:
    result = supplementary(national, DATA / "farmasi-hyllekoder.csv", dry_run=True)
    assert (result.release_id, result.dry_run, result.changed_nothing) == (None, True, False)
    assert result.resources == {"Basic": {"new": 2, "changed": 0, "unchanged": 0, "expired": 0}}
    assert served(national, "Basic", "farmasi-as-014884") is None
    assert statuses(national) == [(1, "national", "dmp", "active")]


def test_the_report_is_plain_json(national: Engine) -> None:
    report = supplementary(national, DATA / "farmasi-hyllekoder.csv").as_report()
    assert orjson.loads(orjson.dumps(report)) == report
    assert {
        k: report[k] for k in ("file", "tier", "owner", "release_id", "based_on", "records", "problems")
    } == {
        "file": "farmasi-hyllekoder.csv",
        "tier": "supplementary",
        "owner": "farmasi-as",
        "release_id": 2,
        "based_on": None,
        "records": 2,
        "problems": [],
    }


# -- refusals: every problem with its place, and nothing imported ----------------------------------

BUNDLE = '{{"resourceType": "Bundle", "type": "collection", "entry": [{entries}]}}'


def bundle(*resources: dict[str, Any]) -> str:
    return BUNDLE.format(entries=", ".join(orjson.dumps({"resource": r}).decode() for r in resources))


def package(rid: str, product: str = CERTICAN_MPD) -> dict[str, Any]:
    return {
        "resourceType": "PackagedProductDefinition",
        "id": rid,
        "packageFor": [{"reference": f"MedicinalProductDefinition/{product}"}],
    }


REFUSALS: dict[str, tuple[str, str, list[str]]] = {
    "unknown varenr": (
        "d.csv",
        "varenr;merknad\n014884;finnes\n999999;finnes ikke\n",
        ["d.csv line 3: varenr 999999 names no national package"],
    ),
    "varenr without its leading zero": (
        "d.csv",
        "varenr;merknad\n14884;Excel\n",
        [
            "d.csv line 2: varenr 14884 names no national package (a varenr has 6 digits; did a spreadsheet "
            "drop a leading zero?)"
        ],
    ),
    "unknown FEST id in a CSV": (
        "d.csv",
        f"legemiddelpakning_id;merknad\nID_{UNKNOWN_GUID};x\n",
        [f"d.csv line 2: FEST id ID_{UNKNOWN_GUID} names no national Legemiddelpakning"],
    ),
    "unknown FEST id in an identifier": (
        "d.ndjson",
        orjson.dumps(
            {
                "resourceType": "Basic",
                "id": "notat",
                "code": {"text": "notat"},
                "identifier": [
                    {
                        "system": "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare",
                        "value": UNKNOWN_GUID,
                    }
                ],
            }
        ).decode()
        + "\n",
        [
            f"d.ndjson line 1: Basic/notat: identifier[0]: FEST id {UNKNOWN_GUID} names no national LegemiddelMerkevare"
        ],
    ),
    "a reference to a national resource that does not exist": (
        "d.json",
        bundle(package("farmasi-pakning"), package("farmasi-pakning-2", UNKNOWN_GUID)),
        [
            "d.json entry 2: PackagedProductDefinition/farmasi-pakning-2: packageFor[0].reference: "
            f"MedicinalProductDefinition/{UNKNOWN_GUID} is neither a national resource nor in this delivery"
        ],
    ),
    "a reference to a version (found by an outside tester)": (
        "d.json",
        bundle(package("farmasi-pakning", f"{CERTICAN_MPD}/_history/99")),
        [
            "d.json entry 1: PackagedProductDefinition/farmasi-pakning: packageFor[0].reference: "
            f"MedicinalProductDefinition/{CERTICAN_MPD}/_history/99 names a version; the store numbers versions "
            f"itself, so refer to MedicinalProductDefinition/{CERTICAN_MPD}"
        ],
    ),
    "a reference that is not Type/id": (
        "d.json",
        bundle(package("farmasi-pakning") | {"packageFor": [{"reference": "urn:uuid:1234"}]}),
        [
            "d.json entry 1: PackagedProductDefinition/farmasi-pakning: packageFor[0].reference: urn:uuid:1234 "
            "is not a reference Type/id; refer to national resources and to this delivery's by Type/id"
        ],
    ),
    "a code outside 7448 in a CSV": (
        "d.csv",
        "varenr;legemiddelform\n014884;9999\n",
        [
            f"d.csv line 2: legemiddelform: the code 9999 is not in the national code system {FORM} (Legemiddelform)"
        ],
    ),
    "a code outside 7448 in a resource": (
        "d.json",
        bundle(
            {
                "resourceType": "Basic",
                "id": "form",
                "code": {"coding": [{"system": FORM, "code": "9999"}]},
                "subject": {"reference": f"PackagedProductDefinition/{CERTICAN_PPD}"},
            }
        ),
        [
            f"d.json entry 1: Basic/form: code.coding[0]: the code 9999 is not in the national code system {FORM} (Legemiddelform)"
        ],
    ),
    "an id colliding with a national resource": (
        "d.json",
        bundle(package(CERTICAN_PPD)),
        [
            f"d.json entry 1: PackagedProductDefinition/{CERTICAN_PPD}: the id is already served as national "
            "data of dmp; no id may be served twice, so choose another"
        ],
    ),
    "duplicate ids": (
        "d.csv",
        "varenr;hyllekode\n014884;A-1\n004741;A-2\n014884;A-3\n",
        [
            "d.csv line 4: Basic/farmasi-as-014884: the id is used twice in this delivery (also at d.csv line 2)"
        ],
    ),
    "a CSV with two key columns": (
        "d.csv",
        f"varenr;legemiddelpakning_id;merknad\n014884;ID_{CERTICAN_PPD};x\n",
        [
            "d.csv line 1: the header names 2 key columns (varenr, legemiddelpakning_id); each row must be "
            "keyed on exactly one national id"
        ],
    ),
    "a CSV with an unknown key column": (
        "d.csv",
        "gtin_id;merknad\n7046260148840;x\n",
        [
            "d.csv line 1: unknown key column gtin_id: a row is keyed on one of varenr, legemiddelpakning_id, "
            "legemiddelmerkevare_id, legemiddelvirkestoff_id, legemiddeldose_id, virkestoff_id (a column whose "
            "name ends in _id names a key)"
        ],
    ),
    "a CSV without a header": (
        "d.csv",
        "014884;Dispergeres i vann\n",
        [
            "d.csv line 1: the file has no header: its first line must name the columns, one of them the key "
            "(varenr, legemiddelpakning_id, legemiddelmerkevare_id, legemiddelvirkestoff_id, legemiddeldose_id, "
            "virkestoff_id)"
        ],
    ),
    "a CSV with an empty key": (
        "d.csv",
        "varenr;merknad\n;uten nøkkel\n014884;med\n",
        ["d.csv line 2: the key column varenr is empty"],
    ),
    "a CSV with a header and no rows": ("d.csv", "varenr;merknad\n", ["d.csv has a header but no rows"]),
    "an empty CSV": ("d.csv", "", ["d.csv is empty"]),
    "an empty JSON file": ("d.json", "", ["d.json is empty"]),
    "a Bundle with no entries": ("d.json", bundle(), ["d.json holds no resources"]),
    "not JSON": (
        "d.json",
        "varenr;merknad\n",
        ["d.json is not JSON (unexpected character, expected a JSON value: line 1 column 1 (char 0))"],
    ),
    "a code system": (
        "d.ndjson",
        '{"resourceType": "CodeSystem", "id": "egne-koder", "status": "active", "content": "complete"}\n',
        [
            "d.ndjson line 1: CodeSystem is national only: sector and supplementary data use the national code "
            "systems"
        ],
    ),
    "a type the tiers may not hold": (
        "d.ndjson",
        '{"resourceType": "Patient", "id": "p"}\n',
        [
            "d.ndjson line 1: Patient is not a type sector and supplementary data may hold "
            "(MedicinalProductDefinition, PackagedProductDefinition, ManufacturedItemDefinition, "
            "AdministrableProductDefinition, Ingredient, SubstanceDefinition, ClinicalUseDefinition, Basic, "
            "RegulatedAuthorization, Composition, Organization)"
        ],
    ),
    "a bad id": (
        "d.ndjson",
        '{"resourceType": "Basic", "id": "æ_1", "code": {"text": "x"}}\n',
        ["d.ndjson line 1: the Basic id 'æ_1' is not a FHIR id (1 to 64 letters, digits, '-' and '.')"],
    ),
    "invalid FHIR": (
        "d.ndjson",
        '{"resourceType": "Basic", "id": "b", "code": {"text": "x"}, "created": "i går"}\n',
        [
            "d.ndjson line 1: Basic/b: not valid FHIR R5: created: DateTime value string does not match spec regex"
        ],
    ),
    "several problems, all listed": (
        "d.csv",
        "varenr;legemiddelform\n999999;5\n014884;9999\n;5\n004741;53\n",
        [
            "d.csv line 2: varenr 999999 names no national package",
            f"d.csv line 3: legemiddelform: the code 9999 is not in the national code system {FORM} (Legemiddelform)",
            "d.csv line 4: the key column varenr is empty",
        ],
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refused_delivery_leaves_the_owners_release_served(
    national: Engine, tmp_path: Path, case: str
) -> None:
    supplementary(national, DATA / "farmasi-hyllekoder.csv")
    name, text, problems = REFUSALS[case]
    assert refused(national, write(tmp_path, name, text)) == problems
    active = [r for r in list_releases(national) if r.status == "active"]
    assert [(r.id, r.owner_id) for r in active] == [(1, "dmp"), (2, "farmasi-as")]
    assert served_counts(national, 2) == {"Basic": 2}
    assert served(national, "PackagedProductDefinition", "farmasi-pakning") is None
    assert served(national, "Basic", "farmasi-as-014884")["extension"][0]["valueString"] == "B-12-04"


def test_a_refusal_is_recorded_with_its_report(national: Engine, tmp_path: Path) -> None:
    path = write(tmp_path, "d.csv", "varenr;merknad\n999999;x\n014884;y\n")
    with pytest.raises(TieredDeliveryError) as caught:
        supplementary(national, path)
    message = "refused, nothing was imported: d.csv line 2: varenr 999999 names no national package"
    assert str(caught.value) == message
    [failed] = [r for r in list_releases(national) if r.owner_id == "farmasi-as"]
    assert (failed.status, failed.message) == ("failed", message)
    assert failed.report["problems"] == [
        {
            "file": "d.csv",
            "line": 2,
            "entry": None,
            "resource": None,
            "message": "varenr 999999 names no national package",
        }
    ]
    assert caught.value.report == failed.report


# -- owners: ids, tiers, and each other's data ------------------------------------------------------


@pytest.mark.parametrize(
    ("owner", "tier", "problem"),
    [
        (
            "Farmasi AS",
            "supplementary",
            "farmasi-hyllekoder.csv: the owner id 'Farmasi AS' is not allowed: use 1 to 63 lowercase letters, "
            "digits and '-', starting with a letter or digit",
        ),
        (
            "-farmasi",
            "sector",
            "farmasi-hyllekoder.csv: the owner id '-farmasi' is not allowed: use 1 to 63 "
            "lowercase letters, digits and '-', starting with a letter or digit",
        ),
        (
            "dmp",
            "sector",
            "farmasi-hyllekoder.csv: the owner id dmp is DMP's, the owner of the national data",
        ),
        (
            "farmasi-as",
            "national",
            "farmasi-hyllekoder.csv: the tier 'national' is not one of sector, supplementary",
        ),
    ],
)
def test_a_bad_owner_or_tier_is_refused_before_anything_is_recorded(
    national: Engine, owner: str, tier: str, problem: str
) -> None:
    assert refused(national, DATA / "farmasi-hyllekoder.csv", owner=owner, tier=tier) == [problem]
    assert statuses(national) == [(1, "national", "dmp", "active")]
    with national.connect() as conn:
        owners = [r.id for r in conn.execute(Owner.__table__.select())]
    assert owners == ["dmp"]


def test_an_owner_publishes_in_one_tier_only(national: Engine) -> None:
    supplementary(national, DATA / "farmasi-hyllekoder.csv")
    assert refused(national, DATA / "sykehusapotek-endose.json", tier="sector") == [
        "sykehusapotek-endose.json: the owner farmasi-as publishes supplementary data; an owner publishes in "
        "one tier only"
    ]


def test_no_owner_may_refer_to_or_reuse_another_owners_ids(national: Engine, tmp_path: Path) -> None:
    import_tiered(national, DATA / "sykehusapotek-endose.json", tier="sector", owner="sykehusapotekene")
    path = write(
        tmp_path,
        "d.json",
        bundle(
            {
                "resourceType": "Basic",
                "id": "farmasi-notat",
                "code": {"text": "notat"},
                "subject": {"reference": "PackagedProductDefinition/sykehusapotekene-certican-endose"},
            },
            {"resourceType": "Basic", "id": "sykehusapotekene-certican-handtering", "code": {"text": "kopi"}},
        ),
    )
    assert refused(national, path) == [
        "d.json entry 1: Basic/farmasi-notat: subject.reference: PackagedProductDefinition/"
        "sykehusapotekene-certican-endose is sector data of sykehusapotekene; only national resources and "
        "resources in this delivery may be referred to",
        "d.json entry 2: Basic/sykehusapotekene-certican-handtering: the id is already served as sector data "
        "of sykehusapotekene; no id may be served twice, so choose another",
    ]
    assert [r.status for r in list_releases(national)] == ["active", "active", "failed"]


# -- text no FHIR string or XML can hold: refused with its place, before the national data is asked --

UNFIT = "which no FHIR string or XML document can hold"


@pytest.mark.parametrize(
    ("name", "content", "problems"),
    [
        (
            "d.csv",
            b"varenr;merknad\n014884;Oppbevares\x00kaldt\n",
            [f"d.csv line 2: the column merknad holds U+0000 (a control character), {UNFIT}"],
        ),
        (
            "d.csv",
            b"varenr;merknad\n014884;ok\n004741;bel\x07\n",
            [
                "d.csv line 2: varenr 014884 names no national package",
                f"d.csv line 3: the column merknad holds U+0007 (a control character), {UNFIT}",
            ],
        ),
        (
            "d.csv",
            b"varenr;merk\x01nad\n014884;x\n",
            [f"d.csv line 1: the name of column 2 holds U+0001 (a control character), {UNFIT}"],
        ),
        (
            "d.csv",
            "varenr;merknad\n014884;\uffff\n".encode(),
            [f"d.csv line 2: the column merknad holds U+FFFF (a Unicode noncharacter), {UNFIT}"],
        ),
        (
            "d.csv",
            "varenr;merknad\n014884;a\udfffb\n".encode("utf-8", "surrogatepass"),
            [
                f"d.csv line 2: the column merknad holds U+DFFF (half of a UTF-16 surrogate pair, alone), {UNFIT}"
            ],
        ),
        (
            "d.json",
            b'{"resourceType": "Basic", "id": "b", "code": {"text": "a\\u0000b"}}',
            [f"d.json: Basic.code.text holds U+0000 (a control character), {UNFIT}"],
        ),
        (
            "d.ndjson",
            b'{"resourceType": "Basic", "id": "a", "code": {"coding": [{"code": "x", "display": "\\udc00"}]}}\n',
            [
                "d.ndjson line 1: Basic.code.coding[0].display holds U+DC00 (half of a UTF-16 surrogate pair, "
                f"alone), {UNFIT}"
            ],
        ),
        (
            "d.xml",
            b'<Basic xmlns="http://hl7.org/fhir"><id value="b"/>\n<code><text value="&#x1f;"/></code></Basic>',
            [f"d.xml line 2: Basic.code.text holds U+001F (a control character), {UNFIT}"],
        ),
    ],
)
def test_text_no_fhir_string_or_xml_can_hold_is_refused_with_its_place(
    tmp_path: Path, name: str, content: bytes, problems: list[str]
) -> None:
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")  # no national data: these come first
    path = tmp_path / name
    path.write_bytes(content)
    assert refused(engine, path, tier="sector", owner="sykehus") == problems
