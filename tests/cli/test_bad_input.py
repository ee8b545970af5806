"""Every bad delivery gets one clear sentence and a non-zero exit; the previous release stays served.

Each case runs the real `grunndata import fest` in a subprocess against a copy of a store that
already serves the real 2017 extract, then checks that nothing it serves changed.
"""

from __future__ import annotations

import gzip
import io
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select

from grunndata.importers.fest import import_fest
from grunndata.store import connect, list_releases, served_counts
from grunndata.store.models import ReleaseEntry, Resource, SearchIndex
from tests.conftest import REAL_FEST, require

M30 = "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"
FIRST_PACKAGE = re.compile(rb"<m30:OppfLegemiddelpakning>.*?</m30:OppfLegemiddelpakning>", re.S)


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "grunndata.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {}), "COLUMNS": "200"},
    )


@pytest.fixture(scope="module")
def served_store(tmp_path_factory) -> Path:
    """A SQLite store serving the real extract, built once and copied for each case."""
    path = tmp_path_factory.mktemp("template") / "store.db"
    engine = connect(f"sqlite:///{path}")
    import_fest(engine, require(REAL_FEST))
    engine.dispose()
    return path


@pytest.fixture
def store(served_store, tmp_path) -> str:
    target = tmp_path / "store.db"
    shutil.copy(served_store, target)
    return f"sqlite:///{target}"


def snapshot(url: str) -> tuple:
    engine = connect(url)
    with engine.connect() as conn:
        rows = tuple(
            conn.execute(select(func.count()).select_from(t)).scalar()
            for t in (Resource, ReleaseEntry, SearchIndex)
        )
    active = [r.id for r in list_releases(engine) if r.status == "active"]
    served = served_counts(engine, active[0])
    engine.dispose()
    return rows, active, served


def assert_refused(
    store: str, path: Path, expected: str, *extra: str, env: dict[str, str] | None = None
) -> str:
    before = snapshot(store)
    result = run_cli("import", "fest", str(path), "--db", store, *extra, env=env)
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2, result.stdout + result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert re.search(expected, lines[0]), lines[0]
    assert snapshot(store) == before  # same release active, same rows served, nothing written
    return lines[0]


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_empty_file(store, tmp_path):
    assert_refused(store, write(tmp_path, "empty.xml", b""), r"empty\.xml is empty")


def test_truncated_xml(store, tmp_path, real_fest_xml):
    cut = real_fest_xml[: len(real_fest_xml) // 2]
    assert_refused(store, write(tmp_path, "cut.xml", cut), r"XML ends too early \(truncated\?\) at line \d+")


def test_truncated_zip(store, tmp_path, real_fest_xml):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("fest251.xml", real_fest_xml)
    data = buf.getvalue()
    assert_refused(store, write(tmp_path, "cut.zip", data[: len(data) * 2 // 3]), r"not a readable zip file")


def test_truncated_gzip(store, tmp_path, real_fest_xml):
    data = gzip.compress(real_fest_xml)
    assert_refused(
        store, write(tmp_path, "cut.xml.gz", data[: len(data) // 2]), r"gzip file is damaged or truncated"
    )


def test_not_xml(store, tmp_path):
    assert_refused(store, write(tmp_path, "notes.txt", b"Legemidler 2017\nnot xml at all\n"), r"not XML")


def test_another_root_element(store, tmp_path):
    doc = f'<?xml version="1.0" encoding="utf-8"?><M31 xmlns="{M30}"><HentetDato>2017-01-01T00:00:00</HentetDato></M31>'
    assert_refused(
        store, write(tmp_path, "m31.xml", doc.encode()), r"not a FEST delivery: the root element is M31"
    )


def test_fest_in_a_wrong_namespace(store, tmp_path, real_fest_xml):
    doc = real_fest_xml.replace(M30.encode(), b"http://www.kith.no/xmlstds/eresept/m30/2013-10-08", 1)
    assert_refused(
        store, write(tmp_path, "old.xml", doc), r"FEST root is in namespace .*2013-10-08, not the M30"
    )


def test_fest_in_no_namespace(store, tmp_path):
    doc = b"<FEST><HentetDato>2017-01-01T00:00:00</HentetDato></FEST>"
    assert_refused(store, write(tmp_path, "nons.xml", doc), r"FEST root is in no namespace")


def test_billion_laughs_is_refused_without_expansion(store, tmp_path):
    entities = '<!ENTITY lol "lol">' + "".join(
        f'<!ENTITY lol{i} "{("&lol%s;" % (i - 1 if i > 1 else "")) * 10}">' for i in range(1, 10)
    )
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE FEST [{entities}]><FEST xmlns="{M30}">'
        "<HentetDato>2017-01-01T00:00:00</HentetDato>&lol9;</FEST>"
    )
    assert_refused(store, write(tmp_path, "lol.xml", doc.encode()), r"declares a DOCTYPE")


def test_external_entity_is_never_read(store, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET-MARKER")
    doc = (
        f'<?xml version="1.0"?><!DOCTYPE FEST [<!ENTITY xxe SYSTEM "file://{secret}">]>'
        f'<FEST xmlns="{M30}"><HentetDato>2017-01-01T00:00:00</HentetDato>&xxe;</FEST>'
    )
    message = assert_refused(store, write(tmp_path, "xxe.xml", doc.encode()), r"declares a DOCTYPE")
    assert "TOP-SECRET" not in message
    assert b"TOP-SECRET" not in Path(store.removeprefix("sqlite:///")).read_bytes()


def test_duplicate_ids(store, tmp_path, real_fest_xml):
    package = FIRST_PACKAGE.search(real_fest_xml).group(0)
    doc = real_fest_xml.replace(package, package + package, 1)
    assert_refused(
        store,
        write(tmp_path, "dup.xml", doc),
        r"same entry appears twice \(Legemiddelpakning, Id ID_CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A, line \d+\)",
    )


def test_many_references_to_missing_ids_are_refused(store, tmp_path, real_fest_xml):
    doc = re.sub(rb"<RefLegemiddelMerkevare>[^<]*<", b"<RefLegemiddelMerkevare>ID_MISSING<", real_fest_xml)
    assert_refused(
        store,
        write(tmp_path, "dangling.xml", doc),
        r"refused: 110 of 766 references point at Ids the release would not have",
    )


def test_one_reference_to_a_missing_id_is_a_warning(store, tmp_path, real_fest_xml):
    doc = real_fest_xml.replace(
        b"<RefLegemiddelMerkevare>ID_F2CEF840-A295-4A7A-9CCD-5873D846C3BD<",
        b"<RefLegemiddelMerkevare>ID_MISSING<",
        1,
    )
    result = run_cli("import", "fest", str(write(tmp_path, "one.xml", doc)), "--db", store)
    assert result.returncode == 0, result.stderr
    assert "1 warnings" in result.stdout
    assert re.search(
        r"dangling-reference: Legemiddelpakning Id ID_CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A "
        r"\(line \d+\): RefLegemiddelMerkevare points at ID_MISSING",
        result.stdout,
    )


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        (b"<Mengde>60</Mengde>", b"<Mengde>sixty</Mengde>", r"Mengde must be a decimal number, not 'sixty'"),
        (b"<GyldigFraDato>", b"<GyldigFraDato>31.12.", r"GyldigFraDato must be a date \(YYYY-MM-DD\)"),
        (
            b"<m30:Tidspunkt>2017-01-01T00:54:56<",
            b"<m30:Tidspunkt>yesterday<",
            r"Tidspunkt must be a date and time",
        ),
        (b'<DDD V="1.5"', b'<DDD V="1,5"', r"DDD/@V must be a decimal number, not '1,5'"),
        (b"<Varseltrekant>false<", b"<Varseltrekant>nei<", r"Varseltrekant must be true or false"),
    ],
    ids=["decimal", "date", "datetime", "quantity", "boolean"],
)
def test_text_in_typed_fields(store, tmp_path, real_fest_xml, old, new, expected):
    assert old in real_fest_xml
    doc = real_fest_xml.replace(old, new, 1)
    assert_refused(store, write(tmp_path, "typed.xml", doc), expected + r".*line \d+")


def test_status_other_than_a_or_u(store, tmp_path, real_fest_xml):
    doc = real_fest_xml.replace(b'<m30:Status V="A"', b'<m30:Status V="X"', 1)
    assert_refused(
        store, write(tmp_path, "status.xml", doc), r"Status must be A \(active\) or U \(expired\), not 'X'"
    )


def test_a_u_entry_in_a_full_delivery(store, tmp_path, real_fest_xml):
    doc = real_fest_xml.replace(
        b'<m30:Status V="A" DN="Aktiv oppf\xc3\xb8ring"/>',
        b'<m30:Status V="U" DN="Utg\xc3\xa5tt oppf\xc3\xb8ring"/>',
        1,
    )
    assert_refused(store, write(tmp_path, "u.xml", doc), r"full delivery holds only active .*--incremental")


def test_a_full_delivery_30_percent_smaller(store, tmp_path, real_fest_xml):
    doc = real_fest_xml
    for _ in range(33):
        doc = FIRST_PACKAGE.sub(b"", doc, count=1)
    assert_refused(
        store,
        write(tmp_path, "small.xml", doc),
        r"expire 31% of the active Legemiddelpakning entries \(33 of 107\).*--force",
    )


def test_bytes_that_are_not_utf8(store, tmp_path, real_fest_xml):
    doc = real_fest_xml.replace("Skal ikke søkes".encode(), "Skal ikke søkes".encode("latin-1"), 1)
    assert_refused(store, write(tmp_path, "latin1.xml", doc), r"bytes that are not UTF-8 \(line \d+\)")


def test_a_zip_whose_entry_expands_beyond_the_limit(store, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("fest251.xml", b"<" + b" " * 5_000_000)
    assert_refused(
        store,
        write(tmp_path, "bomb.zip", buf.getvalue()),
        r"expands to 5,000,001 bytes, beyond the limit",
        env={"GRUNNDATA_MAX_XML_BYTES": "1000000"},
    )


def test_a_gzip_that_expands_beyond_the_limit(store, tmp_path, real_fest_xml):
    data = gzip.compress(real_fest_xml)
    assert_refused(
        store,
        write(tmp_path, "big.xml.gz", data),
        r"expands beyond 100,000 bytes of XML",
        env={"GRUNNDATA_MAX_XML_BYTES": "100000"},
    )


def test_a_zip_with_two_files(store, tmp_path, real_fest_xml):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("fest251.xml", real_fest_xml)
        z.writestr("extra.xml", real_fest_xml)
    assert_refused(store, write(tmp_path, "two.zip", buf.getvalue()), r"exactly one XML file")


def test_a_missing_file(store, tmp_path):
    assert_refused(store, tmp_path / "nowhere.xml", r"no such file")


# -- the packagings DMP uses all load -----------------------------------------------------------


@pytest.mark.parametrize("packaging", ["zip", "bom"])
def test_zip_and_bom_load_the_same_content(store, tmp_path, real_fest_xml, packaging):
    if packaging == "zip":
        path = tmp_path / "fest251.zip"
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
            z.writestr("fest251.xml", real_fest_xml)
    else:
        path = write(tmp_path, "bom.xml", b"\xef\xbb\xbf" + real_fest_xml)
    result = run_cli("import", "fest", str(path), "--db", store)
    assert result.returncode == 0, result.stderr
    assert "Nothing changed: the delivery is identical to the active release 1." in result.stdout


@pytest.mark.parametrize(
    ("written", "named"),
    [
        (b"\x00", "U+0000 (a control character)"),
        (b"&#1;", "U+0001 (a control character)"),
        ("\uffff".encode(), "U+FFFF (a Unicode noncharacter)"),
        ("\ud800".encode("utf-8", "surrogatepass"), "U+D800 (half of a UTF-16 surrogate pair, alone)"),
    ],
    ids=["nul", "reference", "noncharacter", "surrogate"],
)
def test_text_no_fhir_string_or_xml_can_hold(store, tmp_path, real_fest_xml, written, named):
    doc = real_fest_xml.replace(b"<Varenavn>", b"<Varenavn>" + written, 1)
    line = doc[: doc.index(written)].count(b"\n") + 1
    expected = (
        f"error: unfit.xml line {line}: Varenavn holds {named}, which no FHIR string or XML document can hold"
    )
    assert assert_refused(store, write(tmp_path, "unfit.xml", doc), "") == expected


def test_safest_text_no_fhir_string_or_xml_can_hold(store, tmp_path):
    doc = b'{"resourceType": "MedicinalProductDefinition", "id": "a", "name": [{"productName": "A\\u0000"}]}'
    before = snapshot(store)
    result = run_cli("import", "safest", str(write(tmp_path, "a.json", doc)), "--db", store)
    assert (result.returncode, result.stderr.strip()) == (
        2,
        "error: a.json: MedicinalProductDefinition.name[0].productName holds U+0000 (a control character), "
        "which no FHIR string or XML document can hold",
    )
    assert snapshot(store) == before


def test_text_longer_than_a_fhir_string_may_be_is_refused_with_its_place(store, tmp_path, real_fest_xml):
    """FHIR strings hold at most 1,048,576 characters; a longer FEST value could never be served."""
    doc = real_fest_xml.replace(b"<Varenavn>", b"<Varenavn>" + b"A" * 1_100_000, 1)
    expected = (
        r"^error: Varenavn is 1,100,008 characters long, more than the 1,048,576 a FHIR string may hold "
        r"\(LegemiddelMerkevare, Id ID_8900C2B1-2E56-4E61-B241-233A7EEC22F5, line 21\)$"
    )
    assert_refused(store, write(tmp_path, "long.xml", doc), expected)
    assert_refused(store, write(tmp_path, "long.xml", doc), expected, "--force")


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("random.xml", bytes(range(1, 256)) * 8, r"^error: the file is not XML: it does not begin with <$"),
        ("plain.xml", b"just some text\n", r"^error: the file is not XML: it does not begin with <$"),
        (
            "utf16.xml",
            '<?xml version="1.0" encoding="UTF-16"?><FEST/>'.encode("utf-16"),
            r"^error: the file is UTF-16 \(it starts with a UTF-16 byte order mark\); FEST is always UTF-8$",
        ),
        (
            "empty.zip",
            b"PK\x05\x06" + b"\x00" * 18,
            r"^error: a FEST zip holds exactly one XML file; empty.zip holds nothing$",
        ),
    ],
)
def test_bytes_that_are_no_utf8_xml_are_named_for_what_they_are(store, tmp_path, name, content, expected):
    """Not a control character in some text: an outside tester got that for each of these."""
    assert_refused(store, write(tmp_path, name, content), expected)


# -- each entry's structure is checked against the XSD, and --force does not let it through -----

CERTICAN_OPPF = "ID_8900C2B1-2E56-4E61-B241-233A7EEC22F5"
CERTICAN_ATC = b'<Atc V="L04AA18" S="2.16.578.1.12.4.1.1.7180" DN="Everolimus"/>'
VARENAVN = b"<Varenavn>Certican</Varenavn>"


@pytest.mark.parametrize("force", [False, True], ids=["plain", "force"])
@pytest.mark.parametrize(
    ("new", "at", "expected"),
    [
        (
            VARENAVN + b"<Varenavn>Twice</Varenavn>",
            b"<Varenavn>Twice",
            "LegemiddelMerkevare holds Varenavn twice; it may hold one",
        ),
        (
            VARENAVN + CERTICAN_ATC,
            b"</Varenavn>" + CERTICAN_ATC,
            "LegemiddelMerkevare holds Atc twice; it may hold one",
        ),
        (
            b"",
            b"<LegemiddelMerkevare ",
            "LegemiddelMerkevare has no Varenavn, which the XSD requires",
        ),
        (
            VARENAVN + b"<Bogus>x</Bogus>",
            b"<Bogus>",
            "LegemiddelMerkevare cannot hold Bogus; it may hold Atc, NavnFormStyrke, Reseptgruppe, "
            "LegemiddelformKort, RefVilkar, Preparattype, TypeSoknadSlv, Opioidsoknad, Refusjon, "
            "PakningByttegruppe, AdministreringLegemiddel, SvartTrekant, Id, Varenavn, LegemiddelformLang, "
            "SortertVirkestoffMedStyrke, SortertVirkestoffUtenStyrke, Smak, ProduktInfo, Reseptgyldighet, "
            "Hjelpestoff and Preparatomtaleavsnitt",
        ),
    ],
    ids=["repeated", "misplaced-extra", "required-removed", "unknown"],
)
def test_an_entry_that_breaks_the_xsd_structure_is_refused_with_its_line(
    store, tmp_path, real_fest_xml, new, at, expected, force
):
    assert real_fest_xml.count(VARENAVN) == 1  # the first LegemiddelMerkevare, Certican
    doc = real_fest_xml.replace(VARENAVN, new, 1)
    line = doc[: doc.index(at)].count(b"\n") + 1
    message = assert_refused(store, write(tmp_path, "structure.xml", doc), "", *(["--force"] * force))
    assert message == f"error: {expected} (LegemiddelMerkevare, Id {CERTICAN_OPPF}, line {line})"
