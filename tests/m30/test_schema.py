"""The committed M30 table is exactly what the official XSD says."""

import importlib.util
from pathlib import Path

import pytest

from grunndata.m30 import catalogues, child_order, schema
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
    assert tables["CONTENT_MODELS"] == schema.CONTENT_MODELS


def test_content_models_say_what_each_element_may_hold_and_how_often():
    merkevare = dict(
        (m[0], m[1:3]) for _, members in schema.CONTENT_MODELS["fs:LegemiddelMerkevare"] for m in members
    )
    assert merkevare["Atc"] == (0, 1)  # from fs:typeLegemiddel, the shared base
    assert merkevare["Varenavn"] == (1, 1)
    assert merkevare["Preparatomtaleavsnitt"] == (0, None)
    assert ("element", (("Substansgruppe", 2, None, "m30:Substansgruppe"),)) in schema.CONTENT_MODELS[
        "m30:Interaksjon"
    ]
    assert schema.CONTENT_MODELS["m30:StrukturertVilkar"][-1] == (
        "choice",
        (("VerdiTekst", 1, None, None), ("VerdiKodet", 1, None, None)),  # one of them, as often as it likes
    )
    assert schema.CONTENT_MODELS["m30:KatKodeverk/OppfKodeverk"][-1] == (
        "optional sequence",
        (("Info", 1, 1, "m30:Info"), ("Element", 1, None, "m30:Element")),
    )
    assert schema.CONTENT_MODELS["m30:KatVirkestoff/OppfVirkestoff"][-1] == (
        "optional choice",
        (("Virkestoff", 1, 1, "fs:Virkestoff"), ("VirkestoffMedStyrke", 1, 1, "fs:VirkestoffMedStyrke")),
    )


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


def test_child_order_gives_an_elements_children_in_xsd_order_and_refuses_an_ambiguous_name():
    assert child_order("Vilkar") == (
        "Id",
        "VilkarNr",
        "Gruppe",
        "GjelderFor",
        "Tekst",
        "GyldigFraDato",
        "GyldigTilDato",
        "StrukturertVilkar",
    )
    # the shared base fields come before Id, as the XSD's extension puts them
    assert child_order("LegemiddelMerkevare")[:3] == ("Atc", "NavnFormStyrke", "Reseptgruppe")
    assert child_order("LegemiddelMerkevare").index("Id") == 12
    # Refusjonskode holds a leaf also named Refusjonskode; only the container has a content model
    assert child_order("Refusjonskode")[0] == "Refusjonskode"
    with pytest.raises(ValueError, match="Doseringsregel has 2 content models"):
        child_order("Doseringsregel")
    with pytest.raises(ValueError, match="Id has no content model"):
        child_order("Id")
