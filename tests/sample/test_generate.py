"""Tests for the sample FEST generator: XSD validity, referential integrity, follow-up counts.

lxml's XMLSchema does not check xs:ID uniqueness or IDREF resolution for element content
(libxml2 tracks IDs for attributes only), so these tests check both themselves.
"""

from __future__ import annotations

import collections
import gzip
import os
import re
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from grunndata.m30 import catalogues
from grunndata.m30.schema import IDREF_ELEMENTS
from grunndata.sample import derive_followup, generate_delivery

SCHEMA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "schemas" / "fest-m30"
STRICT_XSD = SCHEMA_DIR / "R1808-eResept-M30-2014-12-01" / "ER-M30-2014-12-01.xsd"
M30 = "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"
KAT_ORDER = [c.kat for c in catalogues()]
ID_PATTERN = re.compile(r"^ID_[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$")
SCALE = 0.02


# -- helpers ---------------------------------------------------------------------------------


def _local(el: etree._Element) -> str:
    return etree.QName(el).localname


def _read_bytes(path: Path) -> bytes:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes())
    if path.suffix == ".zip":
        with zipfile.ZipFile(path) as zf:
            return zf.read(zf.namelist()[0])
    return path.read_bytes()


def _parse(path: Path) -> etree._ElementTree:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)
    return etree.ElementTree(etree.fromstring(_read_bytes(path), parser))


class Listing:
    """One Oppf element, reduced to what the tests compare."""

    def __init__(self, kat: str, el: etree._Element) -> None:
        kids = [c for c in el if isinstance(c.tag, str)]
        self.kat = kat
        self.oppf = kids[0].text
        self.tidspunkt = kids[1].text or ""
        self.status = kids[2].get("V")
        self.status_dn = kids[2].get("DN")
        self.payload = kids[3:]
        self.kind = _local(self.payload[0]) if self.payload else None
        self.key = self._stable_key()
        self.xml = b"".join(etree.tostring(p) for p in self.payload)

    def _stable_key(self) -> str:
        """The identity importers version on (FestEntry.key): the payload's own Id, else the Oppf Id."""
        inner = self.payload[0].find("{*}Id") if self.payload else None
        return (inner.text if inner is not None else self.oppf) or ""


def _listings(doc: etree._ElementTree) -> dict[str, list[Listing]]:
    out: dict[str, list[Listing]] = {}
    for kat in doc.getroot():
        if _local(kat).startswith("Kat"):
            out[_local(kat)[3:]] = [Listing(_local(kat)[3:], o) for o in kat]
    return out


def _ids_and_refs(doc: etree._ElementTree) -> tuple[collections.Counter[str], list[tuple[str, str]]]:
    """Every xs:ID value (element Id, except Kodeverk Info's OID) and every IDREF element value."""
    ids: collections.Counter[str] = collections.Counter()
    refs: list[tuple[str, str]] = []
    for el in doc.iter():
        if not isinstance(el.tag, str):
            continue
        name = _local(el)
        parent = el.getparent()
        if name == "Id" and parent is not None and _local(parent) != "Info":
            ids[el.text or ""] += 1
        elif name in IDREF_ELEMENTS:
            refs.append((name, el.text or ""))
    return ids, refs


def _assert_integrity(doc: etree._ElementTree) -> None:
    ids, refs = _ids_and_refs(doc)
    dups = [k for k, n in ids.items() if n > 1]
    assert not dups, f"duplicate Ids: {dups[:5]}"
    dangling = [r for r in refs if r[1] not in ids]
    assert not dangling, f"dangling references: {dangling[:5]}"
    assert all(ID_PATTERN.match(i) for i in ids), [i for i in ids if not ID_PATTERN.match(i)][:5]


def _hentet(doc: etree._ElementTree) -> str:
    return doc.getroot().findtext(f"{{{M30}}}HentetDato") or ""


# -- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def schema() -> etree.XMLSchema:
    if not STRICT_XSD.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{STRICT_XSD} missing; the CI job must provide ../shared/schemas/fest-m30")
        pytest.skip("../shared/schemas/fest-m30 not found beside the repository; XSD checks skipped")
    return etree.XMLSchema(file=str(STRICT_XSD))


@pytest.fixture(scope="module")
def deliveries(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A small base delivery and both follow-ups derived from it."""
    d = tmp_path_factory.mktemp("fest")
    base, full, incr = d / "base.xml", d / "full.xml", d / "incr.xml"
    counts = generate_delivery(base, scale=SCALE, seed=7)
    full_stats = derive_followup(base, full, seed=3)
    incr_stats = derive_followup(base, incr, incremental=True, seed=3)
    return {
        "base": base,
        "full": full,
        "incr": incr,
        "counts": counts,
        "full_stats": full_stats,
        "incr_stats": incr_stats,
        "base_doc": _parse(base),
        "full_doc": _parse(full),
        "incr_doc": _parse(incr),
    }


# -- the base delivery -----------------------------------------------------------------------


def test_base_is_xsd_valid_with_all_catalogues(schema: etree.XMLSchema, deliveries: dict[str, Any]) -> None:
    doc = deliveries["base_doc"]
    schema.assertValid(doc)
    kats = [_local(k) for k in doc.getroot() if _local(k).startswith("Kat")]
    assert kats == KAT_ORDER, "all 15 catalogues, in XSD order"
    listings = _listings(doc)
    counts = deliveries["counts"]
    assert set(counts) == {c.name for c in catalogues()}
    for name, entries in listings.items():
        assert entries, f"Kat{name} is empty"
        assert len(entries) == counts[name]
        assert {e.status for e in entries} == {"A"}
        assert {e.status_dn for e in entries} == {"Aktiv oppføring"}
    kinds = {(name, e.kind) for name, entries in listings.items() for e in entries}
    for expected in [
        ("Virkestoff", "Virkestoff"),
        ("Virkestoff", "VirkestoffMedStyrke"),
        ("Handelsvare", "Brystprotese"),
        ("Handelsvare", "MedForbMatr"),
        ("Handelsvare", "Naringsmiddel"),
        ("Interaksjon", "Interaksjon"),
        ("Interaksjon", "InteraksjonIkkeVurdert"),
        ("Kodeverk", "Info"),
    ]:
        assert expected in kinds
    assert _hentet(doc) == "2026-11-14T03:12:45.1234567+01:00"


def test_base_references_resolve(deliveries: dict[str, Any]) -> None:
    doc = deliveries["base_doc"]
    _assert_integrity(doc)
    _, refs = _ids_and_refs(doc)
    kinds = {name for name, _ in refs}
    for name in (
        "RefLegemiddelMerkevare",
        "RefVirkestoffMedStyrke",
        "RefVirkestoff",
        "RefByttegruppe",
        "RefRefusjonsgruppe",
        "RefVilkar",
        "RefPakning",
        "RefLegemiddelVirkestoff",
        "RefLegemiddelDose",
        "RefElement",
        "ParentId",
    ):
        assert name in kinds, f"no {name} in the sample"


def _gs1_ok(code: str) -> bool:
    digits = [int(c) for c in code]
    total = sum(d * (3 if i % 2 else 1) for i, d in enumerate(digits[:-1]))
    return (10 - total % 10) % 10 == digits[-1]


def test_base_content_looks_real(deliveries: dict[str, Any]) -> None:
    doc = deliveries["base_doc"]
    text = deliveries["base"].read_text(encoding="utf-8")
    eans = [e.text or "" for e in doc.iter("{*}Ean")]
    assert eans and all(len(e) == 13 and e.isdigit() and _gs1_ok(e) for e in eans)
    assert sum(e.startswith("70") for e in eans) > len(eans) * 0.7
    varenr = [e.text or "" for e in doc.iter("{*}Varenr")] + [e.text or "" for e in doc.iter("{*}Nr")]
    assert all(re.fullmatch(r"\d{6}", v) for v in varenr) and len(set(varenr)) == len(varenr)
    atc = [e.get("V") or "" for e in doc.iter("{*}Atc")]
    assert atc and all(re.fullmatch(r"[A-Z]\d\d[A-Z]{2}\d\d", a) for a in atc)
    assert "N02BE01" in text or "C10AA05" in text or "C09CA06" in text
    oids = {e.get("S") for e in doc.iter() if isinstance(e.tag, str) and e.get("S")}
    assert oids and all(o.startswith("2.16.578.1.12.4.1.1.") for o in oids)
    assert {"2.16.578.1.12.4.1.1.7180", "2.16.578.1.12.4.1.1.7448", "2.16.578.1.12.4.1.1.7453"} <= oids
    prices = list(doc.iter("{*}Pris"))
    assert prices and {p.get("U") for p in prices} == {"NOK"}
    price_types = {pv.find("{*}Type").get("DN") for pv in doc.iter("{*}PrisVare")}
    assert {"AIP", "AUP", "Refusjonspris"} <= price_types
    assert any("\n" in (h.text or "") for h in doc.iter("{*}Handtering")), "multi-line Handtering"
    assert "&amp;" in text and any("&" in (e.get("V") or "") for e in doc.iter("{*}Lenke"))
    assert re.search("[æøåÆØÅ]", text)
    # base-type elements come before Id (XSD order; the schema check covers it too)
    for mv in doc.iter("{*}LegemiddelMerkevare"):
        names = [_local(c) for c in mv]
        assert names.index("NavnFormStyrke") < names.index("Id") < names.index("Varenavn")
    # real files redeclare the forskrivning namespace on each fs payload
    assert '<LegemiddelMerkevare xmlns="http://www.kith.no/xmlstds/eresept/forskrivning/2014-12-01">' in text


# -- follow-ups ------------------------------------------------------------------------------


def _by_key(listings: dict[str, list[Listing]]) -> dict[tuple[str, str], Listing]:
    return {(name, e.key): e for name, entries in listings.items() for e in entries if e.status == "A"}


def test_full_followup_valid_and_counted(schema: etree.XMLSchema, deliveries: dict[str, Any]) -> None:
    base, full = deliveries["base_doc"], deliveries["full_doc"]
    stats = deliveries["full_stats"]
    schema.assertValid(full)
    _assert_integrity(full)
    assert _hentet(full)[:10] == "2026-11-28"
    base_l, full_l = _listings(base), _listings(full)
    assert all(e.status == "A" for entries in full_l.values() for e in entries)
    before, after = _by_key(base_l), _by_key(full_l)
    relisted_all: set[tuple[str, str]] = set()
    for cat in catalogues():
        name = cat.name
        s = stats[name]
        old = {k for k in before if k[0] == name}
        new = {k for k in after if k[0] == name}
        assert len(new - old) == s["new"], name
        assert len(old - new) == s["expired"], name
        relisted = {k for k in old & new if before[k].oppf != after[k].oppf}
        assert len(relisted) == s["changed"], name
        relisted_all |= relisted
        for k in old & new - relisted:
            assert before[k].xml == after[k].xml and before[k].tidspunkt == after[k].tidspunkt
        for k in relisted | (new - old):
            assert "2026-11-14" < after[k].tidspunkt <= _hentet(full)
        assert len(full_l.get(name, [])) == len(base_l[name]) - s["expired"] + s["new"]
    total = sum(len(v) for v in base_l.values())
    new_total = sum(s["new"] for s in stats.values())
    changed_total = sum(s["changed"] for s in stats.values())
    expired_total = sum(s["expired"] for s in stats.values())
    assert 0.004 * total <= new_total <= 0.02 * total
    assert 0.01 * total <= changed_total <= 0.04 * total
    assert 0.002 * total <= expired_total <= 0.01 * total
    # new brands come with their strengths, packages and doses, all linked
    assert stats["LegemiddelMerkevare"]["new"] >= 1
    assert stats["Legemiddelpakning"]["new"] >= stats["LegemiddelMerkevare"]["new"]
    # most changes alter content (prices, names, dates...); the rest are plain re-listings
    altered = [k for k in relisted_all if before[k].xml != after[k].xml]
    assert len(altered) >= 0.8 * len(relisted_all)
    packages = [k for k in altered if k[0] == "Legemiddelpakning"]
    assert len(packages) == stats["Legemiddelpakning"]["changed"]


def test_incremental_followup(schema: etree.XMLSchema, deliveries: dict[str, Any]) -> None:
    base, full, incr = deliveries["base_doc"], deliveries["full_doc"], deliveries["incr_doc"]
    stats = deliveries["incr_stats"]
    assert stats == deliveries["full_stats"], "same seed, same plan"
    schema.assertValid(incr)
    assert _hentet(incr) == _hentet(full)
    base_l, incr_l, full_l = _listings(base), _listings(incr), _listings(full)
    base_oppf = {e.oppf for entries in base_l.values() for e in entries}
    full_by_oppf = {e.oppf: e for entries in full_l.values() for e in entries}
    for cat in catalogues():
        entries = incr_l.get(cat.name, [])
        s = stats[cat.name]
        expired = [e for e in entries if e.status == "U"]
        active = [e for e in entries if e.status == "A"]
        assert len(expired) == s["expired"] + s["changed"], cat.name
        assert len(active) == s["new"] + s["changed"], cat.name
        for e in expired:
            assert e.status_dn == "Utgått oppføring" and not e.payload and e.oppf in base_oppf
        for e in active:  # identical to the full follow-up's listing
            twin = full_by_oppf[e.oppf]
            assert (twin.tidspunkt, twin.xml) == (e.tidspunkt, e.xml)
    # references in the increment resolve against the base minus what it expires, plus itself
    base_ids, _ = _ids_and_refs(base)
    incr_ids, incr_refs = _ids_and_refs(incr)
    assert not [k for k, n in incr_ids.items() if n > 1]
    full_ids, _ = _ids_and_refs(full)
    gone = set(base_ids) - set(full_ids)
    known = (set(base_ids) - gone) | set(incr_ids)
    assert [r for r in incr_refs if r[1] not in known] == []


def test_followup_from_zip_is_deterministic(tmp_path: Path, deliveries: dict[str, Any]) -> None:
    zipped = tmp_path / "fest251.zip"
    generate_delivery(zipped, scale=SCALE, seed=7)
    assert _read_bytes(zipped) == deliveries["base"].read_bytes()
    a, b = tmp_path / "a.xml.gz", tmp_path / "b.xml.gz"
    assert derive_followup(zipped, a, seed=3) == deliveries["full_stats"]
    derive_followup(deliveries["base"], b, seed=3)
    assert a.read_bytes() == b.read_bytes()
    assert _read_bytes(a) == deliveries["full"].read_bytes()


# -- outputs, determinism, scale -------------------------------------------------------------


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.xml", tmp_path / "b.xml", tmp_path / "c.xml"
    assert generate_delivery(a, scale=0.005, seed=1) == generate_delivery(b, scale=0.005, seed=1)
    assert a.read_bytes() == b.read_bytes()
    generate_delivery(c, scale=0.005, seed=2)
    assert a.read_bytes() != c.read_bytes()


def test_gzip_and_zip_outputs(tmp_path: Path) -> None:
    plain, gz, zp = tmp_path / "f.xml", tmp_path / "f.xml.gz", tmp_path / "fest251.zip"
    for p in (plain, gz, zp):
        generate_delivery(p, scale=0.003, seed=5, hentet_dato="2025-03-01T02:00:00Z")
    data = plain.read_bytes()
    assert data.startswith(b'<?xml version="1.0" encoding="utf-8"?>')
    assert gzip.decompress(gz.read_bytes()) == data
    with zipfile.ZipFile(zp) as zf:
        assert zf.namelist() == ["fest251.xml"]
        assert zf.testzip() is None
        assert zf.read("fest251.xml") == data
    assert _hentet(_parse(gz)) == "2025-03-01T02:00:00Z"
    again = tmp_path / "again.xml.gz"
    time.sleep(1.1)  # timestamps inside the archive come from HentetDato, not the clock
    generate_delivery(again, scale=0.003, seed=5, hentet_dato="2025-03-01T02:00:00Z")
    assert again.read_bytes() == gz.read_bytes()


def test_tiny_scale_has_every_catalogue_and_progress(schema: etree.XMLSchema, tmp_path: Path) -> None:
    calls: list[tuple[str, int]] = []
    counts = generate_delivery(tmp_path / "t.xml", scale=0.0001, progress=lambda c, n: calls.append((c, n)))
    assert all(n >= 1 for n in counts.values())
    doc = _parse(tmp_path / "t.xml")
    schema.assertValid(doc)
    _assert_integrity(doc)
    last = {c: n for c, n in calls}
    assert last == counts
    followup = tmp_path / "t2.xml"
    derive_followup(tmp_path / "t.xml", followup, progress=lambda c, n: calls.append((c, n)))
    schema.assertValid(_parse(followup))


def test_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        generate_delivery(tmp_path / "x.xml", scale=0)
    with pytest.raises(ValueError):
        generate_delivery(tmp_path / "x.xml", scale=0.001, hentet_dato="yesterday")
    base = tmp_path / "b.xml"
    generate_delivery(base, scale=0.001)
    with pytest.raises(ValueError):
        derive_followup(base, tmp_path / "f.xml", hentet_dato="2020-01-01T00:00:00")
    assert not (tmp_path / "x.xml").exists() and not (tmp_path / "f.xml").exists()


@pytest.mark.slow
@pytest.mark.skipif(os.environ.get("GRUNNDATA_SLOW") != "1", reason="full size; set GRUNNDATA_SLOW=1")
def test_full_scale(schema: etree.XMLSchema, tmp_path: Path) -> None:
    path = tmp_path / "fest251.xml"
    counts = generate_delivery(path)
    assert 100_000_000 < path.stat().st_size < 136_000_000
    assert counts["LegemiddelMerkevare"] == 8962 and counts["Legemiddelpakning"] == 10828
    assert counts["Interaksjon"] == 11454
    doc = _parse(path)
    schema.assertValid(doc)
    _assert_integrity(doc)
    followup = tmp_path / "next.xml"
    stats = derive_followup(path, followup)
    doc = _parse(followup)
    schema.assertValid(doc)
    _assert_integrity(doc)
    # 0.5 % expire, plus re-listed Id-less entries (Handelsvare...), which count as expired + new
    assert 300 < sum(s["expired"] for s in stats.values()) < 700
    assert 1000 < sum(s["changed"] for s in stats.values()) < 1600
