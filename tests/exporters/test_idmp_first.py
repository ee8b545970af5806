"""IDMP first: M30 also carries the products SAFEST/IDMP gave alone, as far as IDMP covers FEST, and
says what it could not fill and what it left out -- on SQLite and PostgreSQL."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from lxml import etree
from sqlalchemy.engine import Engine

import grunndata.exporters.m30 as exporter
from grunndata.importers.fest import import_fest
from grunndata.importers.safest import import_safest
from grunndata.m30 import FestEntry, write_delivery
from grunndata.m30.writer import entry_xml
from grunndata.store import list_releases
from grunndata.translators.idmp_to_fest import CATALOGUE_OF, REQUIRED, LeftOut, oslo_local
from grunndata.translators.idmp_to_fest.from_idmp import PRODUCT_LEFT_OUT
from tests.conftest import REAL_FEST, require
from tests.exporters.test_m30_export import assert_valid
from tests.exporters.trees import differences
from tests.server.conftest import write_followup

ROOT = Path(__file__).parents[1]
PARACET = ROOT / "translators" / "safest_r4" / "Bundle-paracet.json"
PLANTED = ROOT / "importers" / "safest_data" / "planted.json"
M30 = "{http://www.kith.no/xmlstds/eresept/m30/2014-12-01}"
MPD, PPD = "MedicinalProductDefinition", "PackagedProductDefinition"


def xsd_path(catalogue: str, path: str) -> str:
    return f"FEST/Kat{catalogue}/Oppf{catalogue}/{path}"


NO_RESEPTGRUPPE = (
    "IDMP gives no prescription group (legalStatusOfSupply in urn:oid:2.16.578.1.12.4.1.1.7421) for the "
    "product or its packages; an empty one would hide whether it needs a prescription"
)
NO_VARENAVN = "IDMP gives no brand name (an invented name part in MedicinalProductDefinition.name.part)"
BRAND_MISSING = (
    xsd_path("LegemiddelMerkevare", "LegemiddelMerkevare/Reseptgruppe"),
    xsd_path("LegemiddelMerkevare", "LegemiddelMerkevare/Varenavn"),
)

# The Paracet entries, exactly; the Ids not carried by SAFEST are UUID 5s and must never change.
# {T} is when our release first served the resources.
PARACET_ENTRIES = {
    "Virkestoff": "<OppfVirkestoff><Id>OPPF</Id><Tidspunkt>{T}</Tidspunkt>"
    '<Status V="A" DN="Aktiv oppføring"/><Virkestoff xmlns="http://www.kith.no/xmlstds/eresept/forskrivning/'
    '2014-12-01"><Id>ID_9A1E3C5B-7D2F-4E6A-8B0C-1D2E3F4A5B6C</Id><Navn>Paracetamol</Navn></Virkestoff>'
    "</OppfVirkestoff>",
    "VirkestoffMedStyrke": "<OppfVirkestoff><Id>OPPF</Id><Tidspunkt>{T}"
    '</Tidspunkt><Status V="A" DN="Aktiv oppføring"/><VirkestoffMedStyrke xmlns="http://www.kith.no/xmlstds/'
    'eresept/forskrivning/2014-12-01"><Id>ID_103C1D37-6B0A-5549-B36F-6D93C3EE95D0</Id><Styrke V="500" U="mg"/>'
    '<StyrkeNevner V="1" U="tablett"/><RefVirkestoff>ID_9A1E3C5B-7D2F-4E6A-8B0C-1D2E3F4A5B6C</RefVirkestoff>'
    '<Styrkeoperator V="L" S="2.16.578.1.12.4.1.1.7445" DN="Lik"/></VirkestoffMedStyrke></OppfVirkestoff>',
    "LegemiddelMerkevare": "<OppfLegemiddelMerkevare><Id>OPPF</Id>"
    '<Tidspunkt>{T}</Tidspunkt><Status V="A" DN="Aktiv oppføring"/><LegemiddelMerkevare xmlns="http://www.'
    'kith.no/xmlstds/eresept/forskrivning/2014-12-01"><Atc V="N02BE01" S="2.16.578.1.12.4.1.1.7180" '
    'DN="paracetamol"/><NavnFormStyrke>Paracet tab 500 mg</NavnFormStyrke><Reseptgruppe V="F" '
    'DN="Reseptgruppe F"/><LegemiddelformKort V="53" S="2.16.578.1.12.4.1.1.7448" DN="Tablett"/>'
    '<AdministreringLegemiddel><Administrasjonsvei V="53" S="2.16.578.1.12.4.1.1.7477" DN="Oral bruk"/>'
    "</AdministreringLegemiddel><Id>ID_2ABAC272-0BCF-43F0-84BE-984074D92E15</Id><Varenavn>Paracet</Varenavn>"
    "<SortertVirkestoffMedStyrke><Sortering>0</Sortering><RefVirkestoffMedStyrke>ID_103C1D37-6B0A-5549-B36F-"
    "6D93C3EE95D0</RefVirkestoffMedStyrke></SortertVirkestoffMedStyrke></LegemiddelMerkevare>"
    "</OppfLegemiddelMerkevare>",
    "Legemiddelpakning": "<OppfLegemiddelpakning><Id>OPPF</Id><Tidspunkt>"
    '{T}</Tidspunkt><Status V="A" DN="Aktiv oppføring"/><Legemiddelpakning xmlns="http://www.kith.no/xmlstds/'
    'eresept/forskrivning/2014-12-01"><Atc V="N02BE01" S="2.16.578.1.12.4.1.1.7180" DN="paracetamol"/>'
    '<NavnFormStyrke>Paracet tab 500 mg</NavnFormStyrke><Reseptgruppe V="F" DN="Reseptgruppe F"/>'
    '<LegemiddelformKort V="53" S="2.16.578.1.12.4.1.1.7448" DN="Tablett"/><Id>ID_5E1D4C3B-2A19-4F08-9E7D-'
    "6C5B4A392817</Id><Varenr>106383</Varenr><Ean>7046261063838</Ean><Pakningsinfo><RefLegemiddelMerkevare>"
    "ID_2ABAC272-0BCF-43F0-84BE-984074D92E15</RefLegemiddelMerkevare><Pakningsstr/><EnhetPakning/>"
    '<Pakningstype V="8" S="2.16.578.1.12.4.1.1.7449" DN="Boks"/><Mengde>20</Mengde></Pakningsinfo>'
    "<Markedsforingsinfo><Markedsforingsdato>2001-03-01</Markedsforingsdato></Markedsforingsinfo>"
    "</Legemiddelpakning></OppfLegemiddelpakning>",
}
PARACET_UNFILLED = {  # the required elements IDMP could not fill: written empty, as REQUIRED decides
    "Legemiddelpakning": {
        xsd_path("Legemiddelpakning", "Legemiddelpakning/Pakningsinfo/EnhetPakning"): 1,
        xsd_path("Legemiddelpakning", "Legemiddelpakning/Pakningsinfo/Pakningsstr"): 1,
    }
}


LISTING_ID = re.compile(r"^(<Oppf\w+><Id>)ID_[0-9A-F-]{36}(</Id>)")


def listing_ids(path: Path) -> dict[str, list[str]]:
    """Catalogue -> the Oppf Ids of its listings, in order."""
    return {
        c: [line[line.index("<Id>") + 4 : line.index("</Id>")] for line in lines]
        for c, lines in raw_entries(path).items()
    }


def raw_entries(path: Path) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    catalogue = None
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("<Kat"):
            catalogue = line[4:-1]
        elif line.startswith("<Oppf"):
            assert catalogue is not None
            found.setdefault(catalogue, []).append(line)
    return found


def entries(path: Path) -> dict[str, list[str]]:
    """Catalogue -> its Oppf elements as written (one per line), the listing's Id as OPPF: it names
    the content (a changed entry is listed anew), which `listing_ids` and its own test check."""
    return {
        c: [LISTING_ID.sub(r"\1OPPF\2", line) for line in lines] for c, lines in raw_entries(path).items()
    }


def activated(engine: Engine, release_id: int | None = None) -> str:
    releases = list_releases(engine)
    return oslo_local(next(r for r in reversed(releases) if release_id in (None, r.id)).activated_at)


def test_a_store_with_only_safest_data_exports_paracet_valid_and_names_what_idmp_did_not_fill(
    engine: Engine, tmp_path: Path, xsd: etree.XMLSchema
) -> None:
    import_safest(engine, PARACET)
    out = tmp_path / "fest251.xml"
    result = exporter.export_m30(engine, out)
    assert_valid(xsd, out)
    when = activated(engine)
    expected = {k: v.replace("{T}", when) for k, v in PARACET_ENTRIES.items()}
    assert entries(out) == {
        "LegemiddelMerkevare": [expected["LegemiddelMerkevare"]],
        "Legemiddelpakning": [expected["Legemiddelpakning"]],
        "Virkestoff": [expected["Virkestoff"], expected["VirkestoffMedStyrke"]],
    }
    assert result.hentet_dato == when  # no FEST delivery: the newest activation stands for it
    assert result.entries == {"LegemiddelMerkevare": 1, "Legemiddelpakning": 1, "Virkestoff": 2}
    assert result.idmp_written == result.entries
    assert result.unfilled == PARACET_UNFILLED
    assert result.left_out == []
    assert result.idmp_only == {"CodeSystem": 1, "RegulatedAuthorization": 1}  # no FEST entry holds them
    optional = result.idmp.as_dict()["optional_unfilled"]
    assert optional["Legemiddelpakning"][xsd_path("Legemiddelpakning", "Legemiddelpakning/PrisVare")] == 1
    assert xsd_path("Virkestoff", "Virkestoff/NavnEngelsk") in optional["Virkestoff"]
    report = json.loads(json.dumps(result.as_report()))
    assert report["idmp"]["required_unfilled"] == PARACET_UNFILLED and report["idmp"]["left_out_count"] == 0


def test_safest_products_without_a_prescription_group_or_brand_name_are_left_out_and_say_why(
    engine: Engine, tmp_path: Path, xsd: etree.XMLSchema
) -> None:
    """planted.json alone: no product has a Varenavn (the new one no Reseptgruppe either), so no brand,
    none of their packages, nor their substances with strength; the substances themselves are written."""
    import_safest(engine, PLANTED)
    out = tmp_path / "fest251.xml"
    result = exporter.export_m30(engine, out)
    assert_valid(xsd, out)
    written = entries(out)
    assert list(written) == ["Virkestoff"] and len(written["Virkestoff"]) == 3
    names = [m.group(1) for e in written["Virkestoff"] if (m := re.search(r"<Navn>([^<]*)</Navn>", e))]
    assert names == ["Everolimus", "Candesartan cilexetil", "Sevoflurane"]
    assert (
        "<Id>ID_82BF10B1-2FF0-4F26-8392-1C74748EC9A2</Id><Navn>Everolimus</Navn>" in written["Virkestoff"][0]
    )
    brand_reason = f"{NO_RESEPTGRUPPE}; {NO_VARENAVN}"
    varenavn = BRAND_MISSING[1:]
    assert result.left_out == [
        LeftOut("LegemiddelMerkevare", f"{MPD}/sf-certican", NO_VARENAVN, varenavn),
        LeftOut("Virkestoff", "Ingredient/sf-certican-everolimus", PRODUCT_LEFT_OUT),
        LeftOut("Legemiddelpakning", f"{PPD}/sf-certican-60", PRODUCT_LEFT_OUT),
        LeftOut("LegemiddelMerkevare", f"{MPD}/sf-only-in-idmp", brand_reason, BRAND_MISSING),
        LeftOut("LegemiddelMerkevare", f"{MPD}/sf-sevofluran", NO_VARENAVN, varenavn),
        LeftOut("Virkestoff", "Ingredient/sf-sevofluran-substance", PRODUCT_LEFT_OUT),
        LeftOut("Legemiddelpakning", f"{PPD}/sf-sevofluran-250", PRODUCT_LEFT_OUT),
    ]
    assert result.unfilled == {"LegemiddelMerkevare": {BRAND_MISSING[0]: 1, BRAND_MISSING[1]: 3}}
    assert result.idmp_written == {"Virkestoff": 3}
    assert result.idmp_only == {"Ingredient": 2, MPD: 3, PPD: 2}
    assert result.idmp.left_out_by_reason() == {
        "LegemiddelMerkevare": {NO_VARENAVN: 2, brand_reason: 1},
        "Legemiddelpakning": {PRODUCT_LEFT_OUT: 2},
        "Virkestoff": {PRODUCT_LEFT_OUT: 2},
    }


def test_after_fest_the_export_is_the_real_extract_and_the_idmp_only_product_is_left_out_with_its_reason(
    engine: Engine, tmp_path: Path, xsd: etree.XMLSchema
) -> None:
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, PLANTED)
    out = tmp_path / "fest251.xml"
    result = exporter.export_m30(engine, out)
    assert differences(REAL_FEST, out) == []
    assert_valid(xsd, out)
    assert result.left_out == [
        LeftOut(
            "LegemiddelMerkevare",
            f"{MPD}/sf-only-in-idmp",
            f"{NO_RESEPTGRUPPE}; {NO_VARENAVN}",
            BRAND_MISSING,
        )
    ]
    assert result.idmp_written == {} and result.idmp_only == {MPD: 1}


def test_after_fest_an_idmp_only_product_with_what_fest_requires_is_one_more_brand(
    engine: Engine, tmp_path: Path, xsd: etree.XMLSchema
) -> None:
    bundle = json.loads(PLANTED.read_text())
    (new,) = [e["resource"] for e in bundle["entry"] if e["resource"]["id"] == "sf-only-in-idmp"]
    new["legalStatusOfSupply"] = {"coding": [{"system": "urn:oid:2.16.578.1.12.4.1.1.7421", "code": "C"}]}
    new["name"][0]["part"] = [
        {
            "part": "Nyhet",
            "type": {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/medicinal-product-name-part-type",
                        "code": "InventedNamePart",
                    }
                ]
            },
        }
    ]
    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps(bundle))
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, planted)
    out = tmp_path / "fest251.xml"
    result = exporter.export_m30(engine, out)
    assert_valid(xsd, out)
    (difference,) = differences(REAL_FEST, out)
    assert difference.startswith(
        f"{M30}KatLegemiddelMerkevare: 0 entries only in fest-mini-2017.xml.gz (e.g. []), 1 only"
    )
    (brand,) = [e for e in entries(out)["LegemiddelMerkevare"] if "Nyhet" in e]
    assert brand == (
        f"<OppfLegemiddelMerkevare><Id>OPPF</Id><Tidspunkt>{activated(engine)}"
        '</Tidspunkt><Status V="A" DN="Aktiv oppføring"/><LegemiddelMerkevare xmlns="http://www.kith.no/xmlstds/'
        'eresept/forskrivning/2014-12-01"><NavnFormStyrke>Nyhet 5 mg tablett</NavnFormStyrke><Reseptgruppe V="C"/>'
        "<Id>ID_8CEDCD56-8CAC-5D86-B5BF-1E80E582F384</Id><Varenavn>Nyhet</Varenavn></LegemiddelMerkevare>"
        "</OppfLegemiddelMerkevare>"
    )
    assert result.idmp_written == {"LegemiddelMerkevare": 1} and result.left_out == []
    assert result.idmp_only == {} and result.unfilled == {}


def test_a_package_safest_adds_to_a_fest_brand_points_at_it_with_its_codes_in_fests_systems(
    engine: Engine, tmp_path: Path, xsd: etree.XMLSchema
) -> None:
    """UCUM mL is FEST's ml and EDQM's Blister FEST's Blisterpakning, by our reviewed ConceptMaps."""
    package = {
        "resourceType": PPD,
        "id": "sf-new-pack",
        "identifier": [
            {"system": "http://dmp.no/fhir/NamingSystem/fest-varenummer", "value": "999999"},
            {"system": "https://www.gs1.org/gtin", "value": "7040000000001"},
        ],
        "name": "Certican Disperg tab 0,1 mg",
        "packageFor": [{"reference": f"{MPD}/F2CEF840-A295-4A7A-9CCD-5873D846C3BD"}],
        "legalStatusOfSupply": [
            {
                "code": {
                    "coding": [
                        {
                            "system": "urn:oid:2.16.578.1.12.4.1.1.7421",
                            "code": "C",
                            "display": "Reseptgruppe C",
                        }
                    ]
                }
            }
        ],
        "containedItemQuantity": [
            {"value": 100, "unit": "mL", "system": "http://unitsofmeasure.org", "code": "mL"}
        ],
        "packaging": {"type": {"coding": [{"system": "http://standardterms.edqm.eu", "code": "30007000"}]}},
    }
    delivery = tmp_path / "package.json"
    delivery.write_text(
        json.dumps({"resourceType": "Bundle", "type": "collection", "entry": [{"resource": package}]})
    )
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, delivery)
    out = tmp_path / "fest251.xml"
    result = exporter.export_m30(engine, out)
    assert_valid(xsd, out)
    (written,) = [e for e in entries(out)["Legemiddelpakning"] if "999999" in e]
    assert written == (
        f"<OppfLegemiddelpakning><Id>OPPF</Id><Tidspunkt>{activated(engine)}"
        '</Tidspunkt><Status V="A" DN="Aktiv oppføring"/><Legemiddelpakning xmlns="http://www.kith.no/xmlstds/'
        'eresept/forskrivning/2014-12-01"><NavnFormStyrke>Certican Disperg tab 0,1 mg</NavnFormStyrke>'
        '<Reseptgruppe V="C" DN="Reseptgruppe C"/><Id>ID_F5E15883-71C1-5F9B-AAC5-3817CE0853C1</Id><Varenr>999999'
        "</Varenr><Ean>7040000000001</Ean><Pakningsinfo><RefLegemiddelMerkevare>ID_F2CEF840-A295-4A7A-9CCD-"
        '5873D846C3BD</RefLegemiddelMerkevare><Pakningsstr/><EnhetPakning V="ml" S="2.16.578.1.12.4.1.1.7452" '
        'DN="milliliter"/><Pakningstype V="169" S="2.16.578.1.12.4.1.1.7449" DN="Blisterpakning"/><Mengde>100'
        "</Mengde></Pakningsinfo></Legemiddelpakning></OppfLegemiddelpakning>"
    )
    assert result.idmp_written == {"Legemiddelpakning": 1} and result.idmp_only == {}
    assert result.unfilled == {
        "Legemiddelpakning": {xsd_path("Legemiddelpakning", "Legemiddelpakning/Pakningsinfo/Pakningsstr"): 1}
    }


def test_exporting_twice_gives_the_same_ids_and_bytes(engine: Engine, tmp_path: Path) -> None:
    import_safest(engine, PARACET)
    first, second = tmp_path / "first.xml", tmp_path / "second.xml"
    exporter.export_m30(engine, first)
    exporter.export_m30(engine, second)
    ids = [i for found in listing_ids(first).values() for i in found]
    assert len(ids) == 4 and len(set(ids)) == 4
    assert first.read_bytes() == second.read_bytes()


def test_an_empty_store_still_gives_only_hentet_dato(
    engine: Engine, tmp_path: Path, xsd: etree.XMLSchema
) -> None:
    out = tmp_path / "empty.xml"
    result = exporter.export_m30(engine, out)
    assert_valid(xsd, out)
    assert [etree.QName(c).localname for c in etree.parse(str(out)).getroot()] == ["HentetDato"]
    assert (result.entries, result.idmp_written, result.unfilled, result.left_out, result.idmp_only) == (
        {},
        {},
        {},
        [],
        {},
    )


def test_an_incremental_export_carries_changed_idmp_entries_and_expires_the_gone_ones(
    engine: Engine, tmp_path: Path, xsd: etree.XMLSchema
) -> None:
    """Base: a FEST delivery made while SAFEST's Paracet was served. Then SAFEST renames the product
    and drops its package: since that delivery, the brand comes in full and the package expires."""
    import_fest(engine, require(REAL_FEST))
    import_safest(engine, PARACET)
    followup, _ = write_followup(tmp_path, "Certican Disperg tab 0,1 mg (ny)")
    import_fest(engine, followup)
    base_file = tmp_path / "base.xml"
    exporter.export_m30(engine, base_file)  # what a client holding that delivery has
    bundle = json.loads(PARACET.read_text())
    bundle["entry"] = [
        e for e in bundle["entry"] if e["resource"]["resourceType"] != "MedicinalProductPackaged"
    ]
    (product,) = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "MedicinalProduct"
    ]
    product.pop("packagedMedicinalProduct")
    product["name"][0]["productName"] = "Paracet tab 500 mg (ny)"
    changed = tmp_path / "paracet.json"
    changed.write_text(json.dumps(bundle))
    release = import_safest(engine, changed, force=True).release_id

    since = tmp_path / "since.xml"
    result = exporter.export_m30(engine, since, since="2017-04-26T03:00:00")
    assert_valid(xsd, since)
    # a change is FEST's: the old listing expires and the entry is listed anew under a new Oppf Id
    assert (result.entries, result.expired) == (
        {"LegemiddelMerkevare": 1},
        {"LegemiddelMerkevare": 1, "Legemiddelpakning": 1},
    )
    written = entries(since)
    new_brand = (
        PARACET_ENTRIES["LegemiddelMerkevare"]
        .replace("{T}", activated(engine, release))
        .replace("Paracet tab 500 mg", "Paracet tab 500 mg (ny)")
    )
    expired = '<Tidspunkt>{T}</Tidspunkt><Status V="U" DN="Utgått oppføring"/>'.replace(
        "{T}", activated(engine, release)
    )
    assert written["LegemiddelMerkevare"] == [
        new_brand,
        f"<OppfLegemiddelMerkevare><Id>OPPF</Id>{expired}</OppfLegemiddelMerkevare>",
    ] or written["LegemiddelMerkevare"] == [
        f"<OppfLegemiddelMerkevare><Id>OPPF</Id>{expired}</OppfLegemiddelMerkevare>",
        new_brand,
    ]
    new_id, old_id = sorted(
        listing_ids(since)["LegemiddelMerkevare"], key=lambda i: i in listing_ids(base_file)
    )
    assert old_id in listing_ids(base_file)["LegemiddelMerkevare"] and new_id != old_id
    assert written["Legemiddelpakning"] == [
        f"<OppfLegemiddelpakning><Id>OPPF</Id>{expired}</OppfLegemiddelpakning>"
    ]
    assert result.idmp_written == {"LegemiddelMerkevare": 1} and result.unfilled == {}

    nothing = tmp_path / "nothing.xml"
    result = exporter.export_m30(engine, nothing, since="2017-04-26T03:00:00")
    assert result.expired == {
        "LegemiddelMerkevare": 1,
        "Legemiddelpakning": 1,
    }  # since is the base, not the last ask


# --- the REQUIRED table is the XSD's ---------------------------------------------------------------


def _leaf(name: str) -> list[Any]:
    values = {"Id": "ID_X", "Mengde": "1", "Sortering": "0"}
    if name.startswith("Ref"):
        return [name, None, "ID_Y", None]
    return [name, None, values.get(name, ""), None]


def _minimal(kind: str, leave: str | None = None) -> FestEntry:
    """An entry of `kind` with exactly the elements REQUIRED names (empty where the XSD allows),
    without `leave`."""
    xsd_order = _order(kind)
    top: dict[str, list[Any]] = {}
    for path in REQUIRED[kind]:
        if path == leave:
            continue
        parent, _, name = path.rpartition("/")
        if parent:
            node = top.setdefault(parent, [parent, None, None, []])
            node[3].append(_leaf(name))
        else:
            top[name] = _leaf(name)
    for parent in {p.partition("/")[0] for p in REQUIRED[kind] if "/" in p}:
        top.setdefault(parent, [parent, None, None, []])
    children = sorted(top.values(), key=lambda n: xsd_order.index(n[0]))
    return FestEntry(
        CATALOGUE_OF[kind], "ID_OPPF", "2020-01-01T00:00:00", "A", None, ([kind, None, None, children],)
    )


def _order(kind: str) -> list[str]:
    from grunndata.translators.fest_to_idmp.schema import oppf_xsd

    return list(oppf_xsd(CATALOGUE_OF[kind])[1][kind][1])


def _valid(schema: etree.XMLSchema, entry: FestEntry) -> bool:
    out = io.StringIO()
    write_delivery(out, "2020-01-01T00:00:00", [entry])
    return bool(schema.validate(etree.fromstring(out.getvalue().encode())))


@pytest.mark.parametrize("kind", sorted(REQUIRED))
def test_the_required_elements_we_decide_on_are_exactly_the_xsds(kind: str, xsd: etree.XMLSchema) -> None:
    """An entry with only them (and the optional elements holding them) is valid; without any one
    of them it is not."""
    assert _valid(xsd, _minimal(kind)), entry_xml(_minimal(kind))
    for path in REQUIRED[kind]:
        assert not _valid(xsd, _minimal(kind, leave=path)), path
