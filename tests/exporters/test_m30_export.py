"""The e-prescription chain gets M30 from the store: what went in comes out, full or incremental,
valid against the XSD, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import dataclasses
import gzip
import os
from pathlib import Path

import orjson
import pytest
from lxml import etree

import grunndata.exporters.m30 as exporter
from grunndata.errors import ExportError
from grunndata.fhir import NS_FEST_ID
from grunndata.importers.fest import import_fest
from grunndata.m30 import open_xml
from grunndata.sample import derive_followup, generate_delivery
from grunndata.store import list_releases, read_active
from grunndata.translators.idmp_to_fest import oslo_local
from tests.conftest import REAL_FEST, REAL_FEST_COUNTS, REAL_HENTET_DATO, require
from tests.deliveries import expiry, real_entries, relisted, set_text, write
from tests.exporters.trees import differences

CERTICAN = "ID_CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A"  # Legemiddelpakning, varenr 014884


def assert_valid(schema: etree.XMLSchema, path: Path) -> None:
    with open_xml(path) as f:
        doc = etree.parse(f, etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True))
    assert schema.validate(doc), schema.error_log.last_error


def test_the_real_extract_comes_back_equal_as_a_tree_and_valid(engine, tmp_path, xsd):
    import_fest(engine, require(REAL_FEST))
    out = tmp_path / "fest251.xml"
    result = exporter.export_m30(engine, out)
    assert differences(REAL_FEST, out) == []
    assert_valid(xsd, out)
    assert result.kind == "full" and result.hentet_dato == REAL_HENTET_DATO and result.expired == {}
    assert result.entries == REAL_FEST_COUNTS


def test_the_tree_comparison_sees_a_changed_attribute(tmp_path):
    """The round-trip tests above would pass vacuously if the comparison saw nothing."""
    hentet, entries = real_entries(require(REAL_FEST))
    certican = next(e for e in entries if e.key == CERTICAN)
    payload = copy.deepcopy(list(certican.payload))
    assert payload[0][3][0][0] == "Atc"
    payload[0][3][0][1]["V"] = "L04AA99"
    changed = [dataclasses.replace(e, payload=tuple(payload)) if e is certican else e for e in entries]
    found = differences(REAL_FEST, write(tmp_path / "changed.xml", hentet, changed))
    assert len(found) == 1 and found[0].startswith(
        "{http://www.kith.no/xmlstds/eresept/m30/2014-12-01}KatLegemiddelpakning: 1 entries only"
    )


def _incremental(tmp_path: Path) -> tuple[Path, Path, str]:
    """An incremental delivery on the real extract: Certican re-listed under a new Oppf Id with a
    new name, and a package nothing refers to expired. Returns it, the full delivery it amounts
    to, and the expired package's Id."""
    from grunndata.m30 import FestReader

    pairs = list(FestReader(require(REAL_FEST)).entries())
    referenced = {target for _, facts in pairs for _, target, _ in facts.refs}
    gone = next(
        e
        for e, _ in pairs
        if e.catalogue == "Legemiddelpakning" and e.key not in referenced and e.key != CERTICAN
    )
    certican = next(e for e, _ in pairs if e.key == CERTICAN)
    renamed = relisted(
        certican,
        "ID_11111111-2222-3333-4444-555555555555",
        lambda p: set_text(p[0], "NavnFormStyrke", "Certican Disperg tab 0,1 mg (ny)"),
    )
    hentet = "2017-04-26T03:00:00"
    incremental = write(tmp_path / "incr.xml", hentet, [expiry(certican), renamed, expiry(gone)])
    full = [renamed if e.key == CERTICAN else e for e, _ in pairs if e.key != gone.key]
    return incremental, write(tmp_path / "full.xml", hentet, full), gone.key


def test_an_incremental_export_is_the_incremental_delivery_that_came_in(engine, tmp_path, xsd):
    import_fest(engine, require(REAL_FEST))
    incremental, full, gone = _incremental(tmp_path)
    import_fest(engine, incremental, incremental=True)

    since = tmp_path / "since.xml"
    result = exporter.export_m30(engine, since, since=REAL_HENTET_DATO)
    assert differences(incremental, since) == []
    assert_valid(xsd, since)
    assert (result.kind, result.entries, result.expired) == (
        "incremental",
        {"Legemiddelpakning": 1},
        {"Legemiddelpakning": 2},
    )
    everything = tmp_path / "everything.xml"
    exporter.export_m30(engine, everything)
    assert differences(full, everything) == []


def test_expiries_from_full_deliveries_get_the_time_the_release_stopped_serving_them(engine, tmp_path, xsd):
    """A full delivery says nothing about when an entry expired; our release's activation does."""
    import_fest(engine, require(REAL_FEST))
    _, full, gone = _incremental(tmp_path)
    release = import_fest(engine, full).release_id
    since = tmp_path / "since.xml"
    result = exporter.export_m30(engine, since, since=REAL_HENTET_DATO)
    assert result.expired == {"Legemiddelpakning": 2} and result.entries == {"Legemiddelpakning": 1}
    assert_valid(xsd, since)
    doc = etree.parse(str(since))
    ns = {"m": "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"}
    listings = {
        o.findtext("m:Id", namespaces=ns): (
            o.findtext("m:Tidspunkt", namespaces=ns),
            o.find("m:Status", ns).attrib,
        )
        for o in doc.iterfind(".//m:OppfLegemiddelpakning", ns)
    }
    old_certican = next(e for e in real_entries(REAL_FEST)[1] if e.key == CERTICAN).oppf_id
    gone_oppf = next(e for e in real_entries(REAL_FEST)[1] if e.key == gone).oppf_id
    assert listings[old_certican] == (
        "2017-04-20T10:00:00",
        {"V": "U", "DN": "Utgått oppføring"},
    )  # the new listing's time
    activated = next(r.activated_at for r in list_releases(engine) if r.id == release)
    assert listings[gone_oppf] == (oslo_local(activated), {"V": "U", "DN": "Utgått oppføring"})
    assert listings["ID_11111111-2222-3333-4444-555555555555"][1] == {"V": "A", "DN": "Aktiv oppføring"}


def test_since_the_current_delivery_and_an_empty_store_give_only_hentet_dato(engine, tmp_path, xsd):
    empty = tmp_path / "empty.xml"
    result = exporter.export_m30(engine, empty)
    assert result.entries == {} and result.releases == []
    assert_valid(xsd, empty)
    root = etree.parse(str(empty)).getroot()
    assert [etree.QName(c).localname for c in root] == ["HentetDato"]

    import_fest(engine, require(REAL_FEST))
    nothing = tmp_path / "nothing.xml"
    result = exporter.export_m30(engine, nothing, since=REAL_HENTET_DATO)
    assert (result.entries, result.expired) == ({}, {})
    assert_valid(xsd, nothing)
    root = etree.parse(str(nothing)).getroot()
    assert [(etree.QName(c).localname, c.text) for c in root] == [("HentetDato", REAL_HENTET_DATO)]


def test_an_unknown_hentet_dato_is_refused_with_a_sentence(engine, tmp_path):
    import_fest(engine, require(REAL_FEST))
    with pytest.raises(ExportError, match="no FEST delivery here had HentetDato '2017-04-12T18:26:27'"):
        exporter.export_m30(engine, tmp_path / "x.xml", since="2017-04-12T18:26:27")
    assert not (tmp_path / "x.xml").exists()


def test_a_failed_export_leaves_the_previous_file_as_it_was(engine, tmp_path, monkeypatch):
    import_fest(engine, require(REAL_FEST))
    folder = tmp_path / "out"
    folder.mkdir()
    out = folder / "fest251.xml.gz"
    out.write_bytes(b"yesterday's delivery")

    def broken(resources):
        raise KeyError("packageFor")

    monkeypatch.setattr(exporter, "entry_from", broken)
    with pytest.raises(ExportError, match=r"cannot write .+ as a FEST entry \(KeyError: 'packageFor'\)"):
        exporter.export_m30(engine, out)
    assert out.read_bytes() == b"yesterday's delivery"
    assert [p.name for p in folder.iterdir()] == ["fest251.xml.gz"]  # no half-written file beside it


def test_generated_deliveries_and_both_follow_ups_come_back(tmp_path, xsd):
    from grunndata.store import connect

    base, full, incr = tmp_path / "base.zip", tmp_path / "full.xml.gz", tmp_path / "incr.xml"
    generate_delivery(base, scale=0.02, seed=11)
    derive_followup(base, full, seed=5)
    derive_followup(base, incr, incremental=True, seed=5)
    hentet = real_hentet(base)
    for name, follow, incremental in (("full", full, False), ("incr", incr, True)):
        engine = connect(f"sqlite:///{tmp_path / name}.db")
        import_fest(engine, base)
        out = tmp_path / f"{name}-base.zip"
        exporter.export_m30(engine, out)
        assert differences(base, out) == []
        import_fest(engine, follow, incremental=incremental)
        after = tmp_path / f"{name}-after.xml.gz"
        exporter.export_m30(engine, after)
        assert differences(full, after) == [], name
        assert_valid(xsd, after)
        if incremental:
            since = tmp_path / "since.xml"
            exporter.export_m30(engine, since, since=hentet)
            assert differences(incr, since) == []
            assert_valid(xsd, since)
        engine.dispose()


def real_hentet(path: Path) -> str:
    with open_xml(path) as f:
        for _, el in etree.iterparse(f, events=("end",)):
            if etree.QName(el).localname == "HentetDato":
                return str(el.text)
    raise AssertionError("no HentetDato")


@pytest.mark.skipif(
    not os.environ.get("GRUNNDATA_SLOW"), reason="full size: set GRUNNDATA_SLOW=1 (about 3 min)"
)
def test_a_full_size_delivery_and_its_incremental_follow_up_come_back(tmp_path, xsd):
    from grunndata.store import connect

    base, incr, full = tmp_path / "fest251.zip", tmp_path / "incr.zip", tmp_path / "full.zip"
    generate_delivery(base)
    derive_followup(base, incr, incremental=True)
    derive_followup(base, full)
    engine = connect(f"sqlite:///{tmp_path / 'store.db'}")
    import_fest(engine, base)
    out = tmp_path / "out.xml"
    exporter.export_m30(engine, out)
    assert differences(base, out) == []
    assert_valid(xsd, out)
    import_fest(engine, incr, incremental=True)
    since = tmp_path / "since.xml"
    exporter.export_m30(engine, since, since=real_hentet(base))
    assert differences(incr, since) == []
    assert_valid(xsd, since)
    exporter.export_m30(engine, out)
    assert differences(full, out) == []


def test_a_reference_to_a_missing_entry_is_served_by_its_fest_id_and_written_back(engine, tmp_path, xsd):
    """FEST-made FHIR never names a resource that is not served: the package's product, missing from
    the delivery, is named by its FEST Id alone, and the M30 written back still carries the Id."""
    doc = gzip.decompress(require(REAL_FEST).read_bytes()).replace(
        b"<RefLegemiddelMerkevare>ID_F2CEF840-A295-4A7A-9CCD-5873D846C3BD<",
        b"<RefLegemiddelMerkevare>ID_MISSING<",
        1,
    )
    delivery = tmp_path / "one-missing.xml"
    delivery.write_bytes(doc)
    result = import_fest(engine, delivery)
    assert [w.kind for w in result.warnings] == ["dangling-reference"]
    package = orjson.loads(
        read_active(engine, "PackagedProductDefinition", CERTICAN.removeprefix("ID_")) or b"{}"
    )
    assert package["packageFor"] == [
        {"type": "MedicinalProductDefinition", "identifier": {"system": NS_FEST_ID, "value": "ID_MISSING"}}
    ]
    out = tmp_path / "fest251.xml"
    exporter.export_m30(engine, out)
    assert differences(delivery, out) == []
    assert_valid(xsd, out)
