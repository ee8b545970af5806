"""FEST as it comes: a real extract whose catalogues are not in XSD order and whose payloads lost
their forskrivning namespace (reference/fest-m30.md §6.1) imports like the ordered one, with one
warning, and exports in XSD order; a repeated catalogue and unknown elements get one sentence
naming what was expected."""

from __future__ import annotations

from pathlib import Path

import pytest

import grunndata.exporters.m30 as exporter
from grunndata.errors import DeliveryError
from grunndata.importers.fest import Warning, import_fest
from grunndata.m30 import FestReader
from grunndata.m30.records import FS_NS, M30_NS, child
from grunndata.store import list_releases
from tests.cli.test_bad_input import run_cli
from tests.conftest import REAL_FEST, REAL_FEST_COUNTS, require
from tests.deliveries import real_entries, set_text, write_as_it_comes
from tests.exporters.test_m30_export import CERTICAN, assert_valid
from tests.exporters.trees import differences

REVERSED = list(reversed(REAL_FEST_COUNTS))  # the real extract's catalogues, last first
FAR_ORDER = [c for c in REAL_FEST_COUNTS if c != "Virkestoff"] + ["Virkestoff"]  # as FAR's 2026 extract
HENTET = "<HentetDato>2017-04-12T18:26:27.336Z</HentetDato>"


def as_it_comes(tmp_path: Path, order: list[str]) -> Path:
    hentet, entries = real_entries(require(REAL_FEST))
    path = write_as_it_comes(tmp_path / "fest-as-it-comes.xml", hentet, entries, order)
    text = path.read_text(encoding="utf-8")
    assert FS_NS not in text  # every payload in the m30 namespace
    kats = [line[4:-1] for line in text.splitlines() if line.startswith("<Kat")]
    assert kats == order
    return path


def line_of(path: Path, text: str) -> int:
    """The line of the first line of `path` that starts with `text`."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return next(n for n, line in enumerate(lines, 1) if line.startswith(text))


def test_catalogues_in_reverse_order_with_m30_payloads_import_export_as_the_ordered_extract(
    engine, tmp_path, xsd
):
    path = as_it_comes(tmp_path, REVERSED)
    result = import_fest(engine, path)
    assert {name: c["entries"] for name, c in result.catalogues.items()} == REAL_FEST_COUNTS
    assert list(result.catalogues) == list(REAL_FEST_COUNTS)  # the report keeps XSD order
    assert result.warnings == [
        Warning(
            "catalogue-order",
            "Byttegruppe",
            "",
            line_of(path, "<KatByttegruppe>"),
            "the catalogues are not in XSD order: KatByttegruppe comes after KatInteraksjon, though the "
            "XSD puts KatByttegruppe first; they came as KatInteraksjon, KatByttegruppe, KatVarselSlv, "
            "KatVilkar, KatRefusjon, KatLegemiddelVirkestoff, KatVirkestoff, KatLegemiddelpakning, "
            "KatLegemiddelMerkevare; all were read, and M30 exports keep the XSD order",
        )
    ]
    [release] = list_releases(engine)
    assert release.report["warning_count"] == 1
    assert release.report["warnings"] == [result.warnings[0].as_dict()]

    exported = tmp_path / "from-reversed.xml"
    exporter.export_m30(engine, exported)
    assert_valid(xsd, exported)

    ordered = import_fest(engine, REAL_FEST)
    assert ordered.changed_nothing and ordered.warnings == []  # every entry stored the same bytes
    again = tmp_path / "from-ordered.xml"
    exporter.export_m30(engine, again)
    assert differences(again, exported) == []
    assert differences(REAL_FEST, exported) == []


def test_the_far_extract_shape_imports_from_the_command_line_with_one_order_warning(tmp_path):
    path = as_it_comes(tmp_path, FAR_ORDER)
    result = run_cli("import", "fest", str(path), "--db", f"sqlite:///{tmp_path / 'store.db'}")
    assert result.returncode == 0, result.stderr
    assert "1 warnings" in result.stdout
    line = line_of(path, "<KatVirkestoff>")
    assert (
        f"catalogue-order: Virkestoff (line {line}): the catalogues are not in XSD order: KatVirkestoff "
        "comes after KatInteraksjon" in result.stdout
    )
    assert "Release 1 is now active." in result.stdout


def test_a_reference_to_a_missing_id_is_found_though_its_catalogue_comes_later(engine, tmp_path):
    """Packages come before the brands they point at; only the one reference to nothing is reported."""
    hentet, entries = real_entries(require(REAL_FEST))
    certican = next(e for e in entries if e.key == CERTICAN)
    set_text(child(certican.payload[0], "Pakningsinfo"), "RefLegemiddelMerkevare", "ID_MISSING")
    order = ["Legemiddelpakning", *(c for c in REAL_FEST_COUNTS if c != "Legemiddelpakning")]
    path = write_as_it_comes(tmp_path / "dangling.xml", hentet, entries, order)
    result = import_fest(engine, path)
    assert [(w.kind, w.catalogue, w.entry_id, w.line, w.message) for w in result.warnings] == [
        (
            "catalogue-order",
            "LegemiddelMerkevare",
            "",
            line_of(path, "<KatLegemiddelMerkevare>"),
            "the catalogues are not in XSD order: KatLegemiddelMerkevare comes after KatLegemiddelpakning, "
            "though the XSD puts KatLegemiddelMerkevare first; they came as KatLegemiddelpakning, "
            "KatLegemiddelMerkevare, KatVirkestoff, KatLegemiddelVirkestoff, KatRefusjon, KatVilkar, "
            "KatVarselSlv, KatByttegruppe, KatInteraksjon; all were read, and M30 exports keep the XSD order",
        ),
        (
            "dangling-reference",
            "Legemiddelpakning",
            CERTICAN,
            line_of(path, f"<OppfLegemiddelpakning><Id>{certican.oppf_id}<"),
            "RefLegemiddelMerkevare points at ID_MISSING, which is not in the release",
        ),
    ]
    assert result.release_id is not None


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
def test_a_catalogue_that_appears_twice_is_refused_naming_both_lines(tmp_path, real_fest_xml, force):
    start, end = b"<m30:KatVilkar>", b"</m30:KatVilkar>"
    block = real_fest_xml[real_fest_xml.index(start) : real_fest_xml.index(end) + len(end)]
    doc = real_fest_xml.replace(b"</m30:FEST>", b"\n" + block + b"</m30:FEST>")
    path = tmp_path / "twice.xml"
    path.write_bytes(doc)
    first = doc[: doc.index(start)].count(b"\n") + 1
    again = doc[: doc.rindex(start)].count(b"\n") + 1
    assert (first, again) == (12480, 17021)
    result = run_cli(
        "import", "fest", str(path), "--db", f"sqlite:///{tmp_path / 'store.db'}", *(["--force"] * force)
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: KatVilkar appears twice: at line 12480 and again at line 17021; "
        "a delivery holds each catalogue once"
    )
    assert result.stdout == ""


def test_elements_out_of_xsd_order_inside_a_payload_import_and_export_in_xsd_order(
    engine, tmp_path, real_fest_xml, xsd
):
    """Order inside a payload is tolerated, as other producers' files need (reference §6.2): the entry
    is kept as a tree, and the export writes it in XSD order."""
    moved = b"<Id>ID_F2CEF840-A295-4A7A-9CCD-5873D846C3BD</Id>\n        <Varenavn>Certican</Varenavn>"
    atc = b'<Atc V="L04AA18"'
    assert real_fest_xml.index(moved) > real_fest_xml.index(atc)  # Certican, the first entry
    path = tmp_path / "out-of-order.xml"
    path.write_bytes(real_fest_xml.replace(moved, b"", 1).replace(atc, moved + atc, 1))
    result = import_fest(engine, path)
    assert {name: c["entries"] for name, c in result.catalogues.items()} == REAL_FEST_COUNTS
    assert result.warnings == []
    exported = tmp_path / "exported.xml"
    exporter.export_m30(engine, exported)
    assert_valid(xsd, exported)
    assert differences(REAL_FEST, exported) == []  # the extract's own order, which is the XSD's


def refusal(tmp_path: Path, body: str) -> str:
    """What the reader says of a FEST document with `body` after its root start tag."""
    path = tmp_path / "small.xml"
    path.write_text(f'<?xml version="1.0" encoding="utf-8"?>\n<FEST xmlns="{M30_NS}">{body}</FEST>')
    with pytest.raises(DeliveryError) as caught:
        list(FestReader(path).entries())
    return str(caught.value)


ENTRY = "<Id>ID_1</Id><Tidspunkt>2017-01-01T00:00:00</Tidspunkt><Status V='A'/>"
VIRKESTOFF = "<Virkestoff><Id>ID_2</Id><Navn>Everolimus</Navn></Virkestoff>"
VILKAR = "<Id>ID_2</Id><Gruppe V='1'/><GjelderFor V='1'/><Tekst>t</Tekst>"


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            f"{HENTET}\n<KatPakningsinfo/>",
            "unknown element KatPakningsinfo inside FEST; FEST holds HentetDato, an optional "
            "GyldigFradatoHelfo, then the catalogues KatLegemiddelMerkevare, KatLegemiddelpakning, "
            "KatVirkestoff, KatOrdineringVirkestoff, KatLegemiddelVirkestoff, KatHandelsvare, "
            "KatDiagnose, KatRefusjon, KatVilkar, KatVarselSlv, KatKodeverk, KatByttegruppe, "
            "KatLegemiddeldose, KatInteraksjon and KatStrDosering, each at most once (line 3)",
        ),
        (
            f"{HENTET}\n<OppfVilkar>{ENTRY}</OppfVilkar>",
            "OppfVilkar belongs inside KatVilkar, not directly inside FEST (line 3)",
        ),
        (
            f"{HENTET}\n{HENTET}",
            "HentetDato appears twice: at line 2 and again at line 3; a delivery holds one HentetDato",
        ),
        (
            "<KatVilkar/>",
            "the delivery has no HentetDato before its first catalogue KatVilkar; FEST starts with "
            "HentetDato (line 2)",
        ),
        (
            f"{HENTET}<GyldigFradatoHelfo>2017-13-01</GyldigFradatoHelfo>",
            "GyldigFradatoHelfo must be a date (YYYY-MM-DD), not '2017-13-01' (line 2)",
        ),
        (
            f"{HENTET}\n<KatVilkar>\n<OppfVilkar><Tidspunkt>2017-01-01T00:00:00</Tidspunkt></OppfVilkar>"
            "</KatVilkar>",
            "OppfVilkar must start with Id, Tidspunkt and Status, not Tidspunkt (Vilkar, line 4)",
        ),
        (
            f"{HENTET}\n<KatVilkar>\n<OppfVilkar>{ENTRY}\n<Byttegruppe/></OppfVilkar></KatVilkar>",
            "OppfVilkar cannot hold Byttegruppe; after Id, Tidspunkt and Status it holds only Vilkar "
            "(Vilkar, Id ID_1, line 5)",
        ),
        (
            f"{HENTET}\n<KatVirkestoff>\n<OppfVirkestoff>{ENTRY}\n<Vilkar/></OppfVirkestoff></KatVirkestoff>",
            "OppfVirkestoff cannot hold Vilkar; after Id, Tidspunkt and Status it holds Virkestoff or "
            "VirkestoffMedStyrke (Virkestoff, Id ID_1, line 5)",
        ),
        (
            f"{HENTET}\n<KatVirkestoff>\n<OppfVirkestoff>{ENTRY}\n{VIRKESTOFF}\n{VIRKESTOFF}</OppfVirkestoff>"
            "</KatVirkestoff>",
            "OppfVirkestoff holds Virkestoff twice; it may hold one (Virkestoff, Id ID_1, line 6)",
        ),
        (
            f"{HENTET}\n<KatKodeverk>\n<OppfKodeverk>{ENTRY}\n<Element><Id>ID_2</Id><Kode>1</Kode></Element>"
            "</OppfKodeverk></KatKodeverk>",
            "OppfKodeverk has no Info, which the XSD requires (Kodeverk, Id ID_1, line 4)",
        ),
        (
            f"{HENTET}\n<KatVilkar>\n<OppfVilkar>{ENTRY}\n<Vilkar>{VILKAR}\n<StrukturertVilkar><Type V='1'/>"
            "<VerdiTekst>a</VerdiTekst><VerdiKodet V='b'/></StrukturertVilkar></Vilkar></OppfVilkar></KatVilkar>",
            "StrukturertVilkar holds both VerdiTekst and VerdiKodet; it may hold only one of them "
            "(Vilkar, Id ID_1, line 6)",
        ),
        (
            f"{HENTET}\n<KatVilkar>\n<OppfVilkar>{ENTRY}\n<Vilkar>{VILKAR}\n<StrukturertVilkar><Type V='1'/>"
            "</StrukturertVilkar></Vilkar></OppfVilkar></KatVilkar>",
            "StrukturertVilkar has neither VerdiTekst nor VerdiKodet; the XSD requires one of them "
            "(Vilkar, Id ID_1, line 6)",
        ),
        (
            f"{HENTET}\n<KatVilkar>\n<OppfVilkar>{ENTRY}\n<Vilkar><Id>ID_2</Id><Gruppe V='1'/><GjelderFor V='1'/>"
            "\n<Tekst>t<b/></Tekst></Vilkar></OppfVilkar></KatVilkar>",
            "Tekst cannot hold b; it may hold no elements (Vilkar, Id ID_1, line 6)",
        ),
        (
            f"{HENTET}\n<KatInteraksjon>\n<OppfInteraksjon>{ENTRY}\n<Interaksjon><Id>ID_2</Id><Relevans V='1'/>"
            "<KliniskKonsekvens>k</KliniskKonsekvens><Kildegrunnlag V='1'/>"
            "<Substansgruppe><Substans><Substans>everolimus</Substans></Substans></Substansgruppe>"
            "</Interaksjon></OppfInteraksjon></KatInteraksjon>",
            "Interaksjon holds 1 Substansgruppe; the XSD requires at least 2 (Interaksjon, Id ID_1, line 5)",
        ),
    ],
    ids=[
        "unknown-element",
        "entry-outside-its-catalogue",
        "hentetdato-twice",
        "no-hentetdato",
        "helfo-date",
        "entry-head",
        "payload",
        "payload-choice",
        "payload-twice",
        "payload-sequence",
        "both-arms-of-a-choice",
        "no-arm-of-a-required-choice",
        "element-in-text",
        "fewer-than-min-occurs",
    ],
)
def test_each_refusal_of_the_reader_names_what_was_expected(tmp_path, body, expected):
    assert refusal(tmp_path, body) == expected
