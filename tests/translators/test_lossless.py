"""Nothing of FEST is lost: every entry comes back, element for element and attribute for attribute,
from the FHIR resources made of it (read backwards through the same tables: translators/idmp_to_fest)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

from fhir.resources import get_fhir_model_class

from grunndata.m30.records import FestEntry, Node, child
from grunndata.sample import generate_delivery
from grunndata.translators.fest_to_idmp import translate
from grunndata.translators.idmp_to_fest import entry_from
from tests.translators.conftest import lookup_of, read
from tests.translators.test_fest_to_idmp import KODEVERK


def assert_lossless(entries: list[FestEntry]) -> None:
    lookup = lookup_of(entries)
    for entry in entries:
        made = translate(entry, lookup)
        assert entry_from(made).to_json() == entry.to_json(), entry.key


def test_every_entry_of_the_real_extract_comes_back_from_its_resources(real_entries):
    assert_lossless(real_entries)


def test_every_catalogue_of_a_generated_delivery_comes_back(tmp_path: Path):
    path = tmp_path / "fest251.xml"
    generate_delivery(path, scale=0.02, seed=7)
    assert_lossless(read(path))


def test_a_kodeverk_comes_back_also_where_fhir_needs_another_form(tmp_path: Path):
    path = tmp_path / "kodeverk.xml"
    # a code used twice: the parent must then be kept by FEST Id, not by code
    path.write_text(KODEVERK.replace("<Kode>5</Kode>", "<Kode>53</Kode>"), encoding="utf-8")
    (entry,) = read(path)
    (cs,) = translate(entry, {})
    assert cs["concept"][1]["property"] == [{"code": "parent", "valueCode": "1"}]
    assert_lossless([entry])


def _edit(entry: FestEntry, change, tidspunkt: str | None = None) -> FestEntry:  # type: ignore[no-untyped-def]
    payload = copy.deepcopy(list(entry.payload))
    change(payload[0])
    return FestEntry(
        entry.catalogue,
        entry.oppf_id,
        tidspunkt or entry.tidspunkt,
        entry.status,
        entry.status_dn,
        tuple(payload),
    )


def _node(parent: Node, *path: str) -> Node:
    for name in path:
        found = child(parent, name)
        assert found is not None, name
        parent = found
    return parent


def _package(payload: Node) -> None:
    _node(payload, "Pakningsinfo", "Statistikkfaktor")[2] = "6.50"  # would print as 6.5
    _node(payload, "Pakningsinfo", "Mengde")[2] = "060"  # would print as 60
    _node(payload, "Pakningsinfo", "DDD")[1] = {"V": "1.50", "U": "mg"}
    _node(payload, "Markedsforingsinfo", "Markedsforingsdato")[2] = "2004-07-15+01:00"  # no FHIR date
    _node(payload, "Oppbevaring")[1] = {"V": "R", "DN": ""}  # an empty attribute
    _node(payload, "Ean")[2] = None  # an empty element where FHIR needs a value
    price = _node(payload, "PrisVare")
    price[3][0][1] = {"V": "2", "S": "2.16.578.1.12.4.1.1.7453", "DN": "Refusjonspris", "OT": "refusjonspris"}
    price[3][1][1] = {"V": "688.80", "U": "NOK"}
    payload[3].insert(payload[3].index(_node(payload, "Ean")) + 1, ["IkkeKonservering", None, "1", None])
    payload[3].insert(payload[3].index(price), ["PakningsinfoResept", None, None, None])  # empty, yet there


def _brand(payload: Node) -> None:
    _node(payload, "NavnFormStyrke")[2] += "\n"
    _node(payload, "LegemiddelformLang")[2] = None
    _node(payload, "Reseptgyldighet")[3].insert(0, ["Kjonn", {"V": "K", "DN": "Kvinne"}, None, None])
    _node(payload, "ProduktInfo")[3] = None


def _strength(payload: Node) -> None:
    payload[3].insert(2, ["StyrkeNevner", {"V": "2.50", "U": "ml"}, None, None])


def _interaction(payload: Node) -> None:
    first, second = (g for g in payload[3] if g[0] == "Substansgruppe")
    if child(first, "Navn") is not None:
        first[3] = [c for c in first[3] if c[0] != "Navn"]
    substans = _node(second, "Substans")
    substans[3] += [["RefVirkestoff", None, "ID_A", None], ["RefVirkestoff", None, "RID_131391", None]]
    second[3].append(["Substans", None, None, [["Substans", None, "Noe ukodet", None]]])


def test_values_fhir_cannot_hold_exactly_come_back_too(real_entries):
    by_key = {e.key: e for e in real_entries}
    interaction = next(e for e in real_entries if e.kind == "Interaksjon")
    edited = [
        _edit(by_key["ID_CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A"], _package, tidspunkt="2017-01-01T00:54:56Z"),
        _edit(by_key["ID_F2CEF840-A295-4A7A-9CCD-5873D846C3BD"], _brand, tidspunkt="2017-03-26T02:30:00"),
        _edit(by_key["ID_85C16063-FEAE-401D-8631-67C2407E5730"], _strength),
        _edit(interaction, _interaction),
    ]
    lookup = lookup_of(real_entries)
    for entry in edited:
        made = translate(entry, lookup)
        for resource in made:
            get_fhir_model_class(resource["resourceType"]).model_validate(resource)
        back = entry_from(made)
        assert json.dumps(back.to_json()) == json.dumps(entry.to_json())
