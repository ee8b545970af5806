"""PhPIDs on the real extract: a level-1 search finds every package of the substance(s), the same
PhPIDs after a second import, and PhPID groups against FEST's LegemiddelVirkestoff, counted."""

from __future__ import annotations

import hashlib
from collections import defaultdict
from typing import Any
from urllib.parse import quote

import orjson
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy.engine import Engine

from grunndata.fhir.systems import NS_PHPID
from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.store import read_active
from tests.conftest import REAL_FEST, require

PPD, APD, MPD = "PackagedProductDefinition", "AdministrableProductDefinition", "MedicinalProductDefinition"
KANDESARTAN = "ID_6C1FB8B9-402F-421A-B587-80765A77BD89"


def _local(element: Any) -> str:
    return str(etree.QName(element).localname)


def packages_by_substances(xml: bytes) -> dict[tuple[str, ...], set[str]]:
    """From FEST itself: each package's id, under the sorted Virkestoff Ids of its brand."""
    root = etree.fromstring(xml)

    def children(tag: str) -> list[Any]:
        return [e for e in root.iter() if isinstance(e.tag, str) and _local(e) == tag]

    def text(e: Any, tag: str) -> list[str]:
        return [c.text.strip() for c in e.iter() if isinstance(c.tag, str) and _local(c) == tag and c.text]

    strength = {text(v, "Id")[0]: text(v, "RefVirkestoff")[0] for v in children("VirkestoffMedStyrke")}
    brands = {}
    for brand in children("LegemiddelMerkevare"):
        found = {strength[r] for r in text(brand, "RefVirkestoffMedStyrke")}
        for without in (e for e in brand if _local(e) == "SortertVirkestoffUtenStyrke"):
            found |= set(text(without, "RefVirkestoff"))
        brands[text(brand, "Id")[0]] = tuple(sorted(found))
    grouped: dict[tuple[str, ...], set[str]] = defaultdict(set)
    for package in children("Legemiddelpakning"):
        grouped[brands[text(package, "RefLegemiddelMerkevare")[0]]].add(
            text(package, "Id")[0].removeprefix("ID_")
        )
    return grouped


def level1(substances: tuple[str, ...]) -> str:
    """Level 1, active substance stratum, as docs/phpid.md defines it (no FEST substance here has
    an SMS id or UNII, and none names a salt: the FEST Virkestoff Id names each)."""
    canonical = "PhPID-v1|A|L1|" + "+".join(sorted(f"fest:{s}" for s in substances))
    return "L1A-" + hashlib.sha256(canonical.encode()).hexdigest()[:24].upper()


def search_ids(client: TestClient, rtype: str, value: str) -> set[str]:
    r = client.get(f"/fhir/{rtype}?identifier={quote(NS_PHPID + '|' + value)}&_count=500")
    assert r.status_code == 200, r.text
    return {e["resource"]["id"] for e in r.json().get("entry", []) if e["search"]["mode"] == "match"}


def test_a_level1_phpid_finds_every_package_of_its_substances_on_the_real_extract(
    engine: Engine, real_fest_xml: bytes
) -> None:
    import_fest(engine, require(REAL_FEST))
    grouped = packages_by_substances(real_fest_xml)
    assert len(grouped) == 38 and sum(len(p) for p in grouped.values()) == 107
    with TestClient(create_app(engine)) as client:
        for substances, packages in grouped.items():
            assert search_ids(client, PPD, level1(substances)) == packages, substances
        candesartan = level1((KANDESARTAN,))
        assert candesartan == "L1A-3E870DA9630E2F35180B318B"
        assert len(search_ids(client, PPD, candesartan)) == 11
        assert len(search_ids(client, APD, candesartan)) == 7  # its seven brands
        # the other levels are searched the same way; one that is not there finds nothing
        assert search_ids(client, PPD, "L1A-000000000000000000000000") == set()
        assert search_ids(client, MPD, candesartan) == set()  # no LegemiddelVirkestoff of it here


def test_phpids_stay_the_same_across_two_imports(engine: Engine) -> None:
    import_fest(engine, require(REAL_FEST))
    first = read_active(engine, PPD, "CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A")
    second_release = import_fest(engine, require(REAL_FEST))
    assert second_release.release_id is None  # nothing changed, PhPIDs included
    assert read_active(engine, PPD, "CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A") == first
    assert first is not None
    # Certican 0,1 mg dispersible tablet: everolimus, 0.1 mg per tablet, EDQM 10121000
    assert [i["value"] for i in orjson.loads(first)["identifier"] if i["system"] == NS_PHPID] == [
        "L1A-269E4B3C393B2DC1A37B932C",
        "L2A-6B7160C81BD46291CB739FCA",
        "L3A-27E6D0BBA00CDA4C9F4511ED",
        "L4A-F8ABF12064500B23C4DA8E90",
    ]


def test_phpid_groups_against_fest_legemiddelvirkestoff_on_the_real_extract(engine: Engine) -> None:
    result = import_fest(engine, require(REAL_FEST))
    compared = result.phpid
    assert compared is not None
    level4, level2 = compared["level4"], compared["level2"]
    summary = {k: v for k, v in level4.items() if k != "differing"}
    assert summary == {
        "level": 4,
        "stratum": "A",
        "fest_groups": 3,
        "agreeing": 1,
        "share": 0.3333,
        "packages": 107,
        "packages_with_phpid": 11,
        "phpid_groups": 11,
    }
    assert [(d["name"], d["why"], len(d["packages"])) for d in level4["differing"]] == [
        (
            "Azitromycin Tab 500 mg",
            "packages without a level 4 PhPID (no verified EDQM dose form, or a strength without UCUM)",
            3,
        ),
        (
            "Ofloksacin Tab 200 mg",
            "packages without a level 4 PhPID (no verified EDQM dose form, or a strength without UCUM)",
            1,
        ),
    ]
    assert (
        level2["agreeing"],
        level2["fest_groups"],
        level2["packages_with_phpid"],
        level2["phpid_groups"],
    ) == (
        3,
        3,
        104,
        44,
    )
    assert level2["differing"] == []
    with TestClient(create_app(engine)) as client:
        report = client.get("/migration", headers={"Accept": "application/json"}).json()
        page = client.get("/migration").text
    assert report["releases"][0]["phpid"] == compared
    assert "<strong>1 av 3</strong> LegemiddelVirkestoff-grupper (33.3 %)" in page
    assert "Ofloksacin Tab 200 mg" in page


def _digest(canonical: str, prefix: str) -> str:
    return prefix + "-" + hashlib.sha256(canonical.encode()).hexdigest()[:24].upper()


def test_phpids_are_computed_after_fest_and_safest_meet(engine: Engine) -> None:
    """SAFEST's planted Certican says 0.25 mg per {tablet} where FEST says 0.1 mg per unit: the
    served package's level 2 PhPID is made of the merged strength, the annotation being UCUM's 1."""
    from grunndata.importers.safest import import_safest
    from tests.server.test_migration import PLANTED

    import_fest(engine, require(REAL_FEST))
    result = import_safest(engine, PLANTED)
    body = read_active(engine, PPD, "CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A")
    assert body is not None
    everolimus = "fest:ID_82BF10B1-2FF0-4F26-8392-1C74748EC9A2"
    assert [i["value"] for i in orjson.loads(body)["identifier"] if i["system"] == NS_PHPID] == [
        _digest(f"PhPID-v1|A|L1|{everolimus}", "L1A"),
        _digest(f"PhPID-v1|A|L2|{everolimus}=0.25 mg/1 1", "L2A"),
        _digest(f"PhPID-v1|A|L3|{everolimus}|edqm:10121000", "L3A"),
        _digest(f"PhPID-v1|A|L4|{everolimus}=0.25 mg/1 1|edqm:10121000", "L4A"),
    ]
    assert result.phpid is not None
    assert (result.phpid["level2"]["agreeing"], result.phpid["level2"]["packages_with_phpid"]) == (3, 104)
