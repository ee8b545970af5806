"""The M30 writer: what it writes is valid against the official XSD and reads back unchanged."""

from __future__ import annotations

import io

from lxml import etree

from grunndata.m30 import FestEntry, write_delivery
from tests.conftest import M30_XSD, REAL_FEST, require
from tests.deliveries import real_entries, write

FS = "http://www.kith.no/xmlstds/eresept/forskrivning/2014-12-01"


def _varsel_with_link() -> FestEntry:
    lenke = [
        "Lenke",
        None,
        None,
        [["Beskrivelse", None, "Les mer", None], ["Www", {"V": "https://dmp.no/a?b=1&c=2"}, None, None]],
    ]
    varsel = [
        "VarselSlv",
        None,
        None,
        [
            ["Type", {"V": "2", "S": "2.16.578.1.12.4.1.1.7441", "DN": "Leveringssvikt"}, None, None],
            ["Overskrift", None, "Mangel på <tabletter> & kapsler", None],
            ["Varseltekst", None, "Linje én\nLinje to", None],
            ["Visningsregel", {"V": "1", "S": "2.16.578.1.12.4.1.1.7442", "DN": "Allmennlege"}, None, None],
            ["FraDato", None, "2017-04-01", None],
            lenke,
        ],
    ]
    return FestEntry("VarselSlv", "ID_V1", "2017-04-01T00:00:00", "A", "Aktiv oppføring", (varsel,))


def test_an_fs_element_inside_an_m30_payload_keeps_its_namespace(tmp_path):
    out = io.StringIO()
    write_delivery(out, "2017-04-12T18:26:27.336Z", [_varsel_with_link()])
    root = etree.fromstring(out.getvalue().encode())
    lenke = root.find(".//{*}Lenke")
    assert lenke.tag == f"{{{FS}}}Lenke"
    assert lenke.find(f"{{{FS}}}Www").get("V") == "https://dmp.no/a?b=1&c=2"
    assert root.find(".//{*}Overskrift").text == "Mangel på <tabletter> & kapsler"
    schema = etree.XMLSchema(etree.parse(str(require(M30_XSD))))
    assert schema.validate(root), schema.error_log


def test_the_real_extract_written_again_is_xsd_valid_and_reads_back_the_same(tmp_path):
    hentet, entries = real_entries(require(REAL_FEST))
    path = write(tmp_path / "again.xml", hentet, entries)
    schema = etree.XMLSchema(etree.parse(str(require(M30_XSD))))
    doc = etree.parse(str(path))
    assert schema.validate(doc), schema.error_log
    hentet_again, again = real_entries(path)
    assert hentet_again == hentet == "2017-04-12T18:26:27.336Z"
    assert [e.to_json() for e in again] == [e.to_json() for e in entries]
