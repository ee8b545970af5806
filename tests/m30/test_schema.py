"""The committed M30 table is exactly what the official XSD says."""

import importlib.util
from pathlib import Path

from grunndata.m30 import catalogues, schema
from tests.conftest import M30_XSD, SCHEMAS, require

TOOL = Path(__file__).resolve().parents[2] / "tools" / "gen_m30_schema.py"


def _tool():
    spec = importlib.util.spec_from_file_location("gen_m30_schema", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_schema_table_matches_the_official_xsd():
    require(M30_XSD)
    tables = _tool().extract(SCHEMAS)
    assert tables["CATALOGUES"] == schema.CATALOGUES
    assert tables["TEXT_TYPES"] == schema.TEXT_TYPES
    assert tables["QUANTITY_ELEMENTS"] == schema.QUANTITY_ELEMENTS
    assert tables["IDREF_ELEMENTS"] == schema.IDREF_ELEMENTS


def test_the_fifteen_catalogues_in_xsd_order():
    names = [c.name for c in catalogues()]
    assert names == [
        "LegemiddelMerkevare",
        "Legemiddelpakning",
        "Virkestoff",
        "OrdineringVirkestoff",
        "LegemiddelVirkestoff",
        "Handelsvare",
        "Diagnose",
        "Refusjon",
        "Vilkar",
        "VarselSlv",
        "Kodeverk",
        "Byttegruppe",
        "Legemiddeldose",
        "Interaksjon",
        "StrDosering",
    ]
    assert catalogues()[2].payloads == {
        "Virkestoff": "http://www.kith.no/xmlstds/eresept/forskrivning/2014-12-01",
        "VirkestoffMedStyrke": "http://www.kith.no/xmlstds/eresept/forskrivning/2014-12-01",
    }
