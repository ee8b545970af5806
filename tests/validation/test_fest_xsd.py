"""`grunndata validate FEST --schemas DIR`: a FEST delivery against DMP's M30 XSD, nothing written.

The real extract passes; the extract as DMP published it (its entries in no namespace) and planted
defects are reported with file, line, element path and what the XSD wanted; bad usage is one sentence.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

from grunndata.validation.fest import is_fest, validate_fest
from tests.cli.test_bad_input import run_cli
from tests.conftest import REAL_FEST, SHARED, require

SCHEMAS = SHARED / "schemas" / "fest-m30"
AS_PUBLISHED = SHARED / "data" / "fest-real" / "fest-mini-2017-as-published.xml.gz"


def _xml(tmp_path: Path, text: str, name: str = "fest.xml") -> Path:
    path = tmp_path / name
    path.write_text(text, "utf-8")
    return path


def _real_text() -> str:
    return gzip.decompress(require(REAL_FEST).read_bytes()).decode("utf-8")


def test_the_real_extract_is_valid_against_the_m30_xsd() -> None:
    done = run_cli("validate", str(require(REAL_FEST)), "--schemas", str(require(SCHEMAS)))
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        "403 FEST entries checked against ER-M30-2014-12-01.xsd; 0 errors.\n",
        "",
    )


def test_the_extract_as_dmp_published_it_is_not_its_entries_are_in_no_namespace() -> None:
    """A sender's defect the importer tolerates (it matches local names) and the XSD does not: the
    README lists it. libxml2 reports the first wrong child of each catalogue and skips the rest."""
    done = run_cli("validate", str(require(AS_PUBLISHED)), "--schemas", str(require(SCHEMAS)), "--show", "1")
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines() == [
        "fest-mini-2017-as-published.xml.gz line 2: m30:FEST/m30:KatLegemiddelMerkevare/OppfLegemiddelMerkevare[1]: "
        "Element 'OppfLegemiddelMerkevare': This element is not expected. Expected is ( m30:OppfLegemiddelMerkevare ). [xsd]",
        "... and 8 more errors (--show N prints more).",
        "403 FEST entries checked against ER-M30-2014-12-01.xsd; 9 errors.",
    ]


def test_planted_defects_are_each_reported_with_line_and_path(tmp_path: Path) -> None:
    text = _real_text()
    # an element out of XSD order: Tidspunkt before Id in the first package entry
    first = text.index("<m30:OppfLegemiddelpakning>")
    start = text.index("<m30:Id>", first)
    end = text.index("</m30:Tidspunkt>", first) + len("</m30:Tidspunkt>")
    id_part, tidspunkt = text[start:end].split("\n", 1)
    text = text[:start] + tidspunkt.strip() + "\n" + " " * 6 + id_part + text[end:]
    # a date that is no date
    text = text.replace(
        "<m30:Tidspunkt>2016-10-13T16:43:16</m30:Tidspunkt>", "<m30:Tidspunkt>13.10.2016</m30:Tidspunkt>", 1
    )
    path = _xml(tmp_path, text)
    report = validate_fest(path, require(SCHEMAS))
    assert report.resources == 403
    found = [(p.where, p.path, p.message) for p in report.problems]
    assert found == [
        (
            "fest.xml line 4",
            "m30:FEST/m30:KatLegemiddelMerkevare/m30:OppfLegemiddelMerkevare[1]/m30:Tidspunkt",
            "Element 'm30:Tidspunkt': '13.10.2016' is not a valid value of the atomic type 'xs:dateTime'.",
        ),
        (
            f"fest.xml line {text[:start].count(chr(10)) + 1}",
            "m30:FEST/m30:KatLegemiddelpakning/m30:OppfLegemiddelpakning[1]/m30:Tidspunkt",
            "Element 'm30:Tidspunkt': This element is not expected. Expected is ( m30:Id ).",
        ),
    ]
    assert {p.rule for p in report.problems} == {"xsd"}


def test_every_packaging_is_read_and_nothing_is_written(tmp_path: Path) -> None:
    text = _real_text()
    zipped = tmp_path / "fest.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("M30.xml", text)
    before = sorted(p.name for p in tmp_path.iterdir())
    assert is_fest(zipped) and is_fest(require(REAL_FEST))
    assert validate_fest(zipped, require(SCHEMAS)).problems == []
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    xsd_file = require(SCHEMAS) / "R1808-eResept-M30-2014-12-01" / "ER-M30-2014-12-01.xsd"
    assert validate_fest(zipped, xsd_file).schema == xsd_file


def test_bad_usage_and_unreadable_files_are_one_sentence_exit_2(tmp_path: Path) -> None:
    real = str(require(REAL_FEST))
    done = run_cli("validate", real)
    assert done.returncode == 2 and "is a FEST delivery: give --schemas DIR" in done.stderr
    done = run_cli("validate", real, "--schemas", str(tmp_path / "none"))
    assert done.returncode == 2 and f"no such folder of M30 schemas: {tmp_path / 'none'}" in done.stderr
    done = run_cli("validate", real, "--schemas", str(tmp_path))
    assert done.returncode == 2 and "holds 0 files named ER-M30-2014-12-01.xsd" in done.stderr
    resource = _xml(tmp_path, '{"resourceType": "Basic", "id": "b"}', "basic.json")
    done = run_cli(
        "validate", str(resource), "--schemas", str(require(SCHEMAS))
    )  # read as FEST, said why not
    assert (done.returncode, done.stderr) == (2, "error: the file is not XML: it does not begin with <\n")
    done = run_cli("validate", str(tmp_path / "nowhere.xml"), "--schemas", str(require(SCHEMAS)))
    assert (done.returncode, done.stderr) == (2, f"error: no such file: {tmp_path / 'nowhere.xml'}\n")
    done = run_cli("validate", "--db", f"sqlite:///{tmp_path / 's.db'}", "--schemas", str(require(SCHEMAS)))
    assert done.returncode == 2 and "--schemas checks a FEST delivery PATH, not a store" in done.stderr
    kith = require(SCHEMAS) / "felles" / "kith.xsd"  # a schema, but not M30's: the delivery is not blamed
    done = run_cli("validate", real, "--schemas", str(kith))
    assert (done.returncode, done.stdout) == (2, "")
    assert "kith.xsd does not declare the M30 root element m30:FEST" in " ".join(done.stderr.split())
    ns = "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"
    bomb = _xml(
        tmp_path, f'<?xml version="1.0"?>\n<!DOCTYPE FEST [<!ENTITY x "y">]>\n<FEST xmlns="{ns}">&x;</FEST>'
    )
    done = run_cli("validate", str(bomb), "--schemas", str(require(SCHEMAS)))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith("error: the file declares a DOCTYPE")
    cut = _xml(tmp_path, _real_text()[:50_000], "cut.xml")
    done = run_cli("validate", str(cut), "--schemas", str(require(SCHEMAS)))
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.startswith(
        "error: the XML ends too early (truncated?) at line 929"
    )  # as the importer says it
    assert "Traceback" not in done.stderr


def test_a_file_is_fest_by_its_root_element_not_its_name(tmp_path: Path) -> None:
    ns = "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"
    assert is_fest(
        _xml(tmp_path, f"<?xml version='1.0'?><!-- <Bundle> --><m30:FEST xmlns:m30='{ns}'/>", "a.json")
    )
    assert not is_fest(_xml(tmp_path, "<Bundle xmlns='http://hl7.org/fhir'/>", "fest.xml"))
    assert not is_fest(tmp_path)
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb") as gz:
        gz.write(b"not xml at all")
    assert not is_fest(_xml(tmp_path, "", "empty.xml"))
    (tmp_path / "x.gz").write_bytes(buf.getvalue())
    assert not is_fest(tmp_path / "x.gz")


def test_a_schema_importing_from_the_network_is_refused_not_passed(tmp_path: Path) -> None:
    """The network is never read, so an import from it would silently check nothing."""
    ns = "http://www.kith.no/xmlstds/eresept/m30/2014-12-01"
    xsd = tmp_path / "ER-M30-2014-12-01.xsd"
    xsd.write_text(
        f'<schema xmlns="http://www.w3.org/2001/XMLSchema" targetNamespace="{ns}">'
        '<import namespace="urn:x" schemaLocation="http://127.0.0.1:9/x.xsd"/><element name="FEST"/></schema>',
        "utf-8",
    )
    done = run_cli("validate", str(require(REAL_FEST)), "--schemas", str(tmp_path))
    assert done.returncode == 2
    assert "imports http://127.0.0.1:9/x.xsd from the network, which is never read" in " ".join(
        done.stderr.split()
    )


def test_a_long_comment_or_text_is_no_parse_error_as_it_is_none_on_import(tmp_path: Path) -> None:
    """libxml2's default limit (10 MB in one text node) is lifted as the importer's reader lifts it;
    the file's size is capped on its own."""
    text = _real_text()
    at = text.index("<m30:HentetDato>")
    path = _xml(tmp_path, text[:at] + "<!--" + "x" * 11_000_000 + "-->" + text[at:])
    report = validate_fest(path, require(SCHEMAS))
    assert (report.resources, report.problems) == (403, [])
