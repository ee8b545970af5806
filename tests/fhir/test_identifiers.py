"""The identifier table: one served system and value form per kind, the aliases each accepts, and
values that are not well formed left as sent."""

from __future__ import annotations

from pathlib import Path

import pytest

from grunndata.fhir import identifiers as ids

README = Path(__file__).parents[2] / "README.md"

PAKNING = "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning"
MERKEVARE = "http://dmp.no/fhir/NamingSystem/festLegemiddelMerkevare"
VIRKESTOFF = "https://grunndata.no/fhir/NamingSystem/festVirkestoff"
GTIN = "https://www.gs1.org/gtin"
GUID = "CE0BBADB-DDC1-4713-AC09-1F6A1861AE8A"


def test_each_kind_serves_the_lmdi_system_where_there_is_one_and_ours_where_there_is_none() -> None:
    served = {k.served: k for k in ids.KINDS}
    for system in (
        MERKEVARE,
        PAKNING,
        "http://dmp.no/fhir/NamingSystem/festLegemiddelVirkestoff",
        "http://dmp.no/fhir/NamingSystem/festLegemiddelDose",
    ):
        assert "LMDI, NamingSystem no-basis-fest-" in served[system].source and not served[system].ours
    for system in (
        "http://dmp.no/fhir/NamingSystem/fest-varenummer",
        "http://dmp.no/fhir/NamingSystem/lmrLopenummer",
    ):
        assert "LMDI 1.1.0" in served[system].source and not served[system].ours
    assert served[VIRKESTOFF].ours and served[VIRKESTOFF].aliases == (
        "http://dmp.no/fhir/NamingSystem/festVirkestoff",
    )
    assert served[GTIN].source.startswith("HL7 terminology")
    assert all(k.served.startswith("https://grunndata.no/") == k.ours for k in ids.KINDS)
    assert len({k.served for k in ids.KINDS}) == len(ids.KINDS)


@pytest.mark.parametrize(
    ("system", "rtype", "value", "expected"),
    [
        (PAKNING, None, "ID_" + GUID, (PAKNING, "ID_" + GUID)),
        (PAKNING, None, GUID.lower(), (PAKNING, "ID_" + GUID)),
        (PAKNING, None, " id_" + GUID + " ", (PAKNING, "ID_" + GUID)),
        ("http://ehelse.no/fhir/CodeSystem/FEST/KatLegemiddelPakning", None, GUID, (PAKNING, "ID_" + GUID)),
        ("http://legemiddelverket.no/FEST/LegemiddelPakningID", None, GUID, (PAKNING, "ID_" + GUID)),
        ("http://hl7.no/fhir/NamingSystem/festLegemiddelpakning", None, GUID, (PAKNING, "ID_" + GUID)),
        ("HTTP://DMP.NO/fhir/NamingSystem/FESTLEGEMIDDELPAKNING/", None, GUID, (PAKNING, "ID_" + GUID)),
        ("http://hl7.no/fhir/NamingSystem/festLegemiddelmerkevare", None, GUID, (MERKEVARE, "ID_" + GUID)),
        # the generic FEST system names the catalogue of the type that carries it; elsewhere any FEST id
        ("http://ehelse.no/fhir/CodeSystem/FEST", "PackagedProductDefinition", GUID, (PAKNING, "ID_" + GUID)),
        (
            "http://ehelse.no/fhir/CodeSystem/FEST",
            "MedicinalProductDefinition",
            GUID,
            (MERKEVARE, "ID_" + GUID),
        ),
        (
            "http://ehelse.no/fhir/CodeSystem/FEST",
            "ManufacturedItemDefinition",
            GUID,
            ("http://dmp.no/fhir/NamingSystem/festLegemiddelDose", "ID_" + GUID),
        ),
        ("http://ehelse.no/fhir/CodeSystem/FEST", "SubstanceDefinition", GUID, (VIRKESTOFF, "ID_" + GUID)),
        (
            "http://ehelse.no/fhir/CodeSystem/FEST",
            "Ingredient",
            GUID,
            ("https://grunndata.no/fhir/NamingSystem/festId", "ID_" + GUID),
        ),
        ("http://dmp.no/fhir/NamingSystem/festVirkestoff", None, GUID, (VIRKESTOFF, "ID_" + GUID)),
        # GTINs: 13 digits served, 14 accepted, the check digit verified
        (GTIN, None, "7046260148840", (GTIN, "7046260148840")),
        ("https://farmalogg.no/produktkode/NTIN", None, "07046260148840", (GTIN, "7046260148840")),
        ("https://farmalogg.no/produktkode/GTIN", None, "07612345678900", (GTIN, "7612345678900")),
        ("https://farmalogg.no/produktkode", None, "7046260148840", (GTIN, "7046260148840")),
        ("urn:oid:1.3.160", None, "7046260148840", (GTIN, "7046260148840")),
        (GTIN, None, "17046260148847", (GTIN, "17046260148847")),  # a trade unit: no 13-digit form
        (GTIN, None, "96385074", (GTIN, "0000096385074")),  # GTIN-8
        (
            "https://farmalogg.no/varenummer",
            None,
            "14884",
            ("http://dmp.no/fhir/NamingSystem/fest-varenummer", "014884"),
        ),
        (
            "http://legemiddelverket.no/fhir/SAFEST/MedicinalProductPackaged",
            None,
            "exampleParacet",
            ("http://legemiddelverket.no/fhir/SAFEST/MedicinalProductPackaged", "exampleParacet"),
        ),
        (
            "http://dmp.no/fhir/NamingSystem/lmrLopenummer",
            None,
            " 123 ",
            ("http://dmp.no/fhir/NamingSystem/lmrLopenummer", "123"),
        ),
    ],
)
def test_an_accepted_form_is_served_in_its_kinds_one_form(
    system: str, rtype: str | None, value: str, expected: tuple[str, str]
) -> None:
    assert ids.served(system, value, rtype) == expected


@pytest.mark.parametrize(
    ("system", "value"),
    [
        (GTIN, "7046260148841"),  # wrong check digit
        ("https://farmalogg.no/produktkode/NTIN", "07046260148841"),
        (GTIN, "704626014885"),  # 12 digits, wrong check digit
        (GTIN, "70462601488401"),
        (GTIN, "70462601488４0"),  # a digit that is not ASCII
        ("https://farmalogg.no/produktkode", "someValue"),  # as in DMP's own examples
        (PAKNING, "TBA"),
        (PAKNING, "ID_CE0BBADB-DDC1-4713-AC09"),
        ("http://ehelse.no/fhir/CodeSystem/FEST", "ID_" + GUID + "0"),
        ("http://dmp.no/fhir/NamingSystem/fest-varenummer", "1234567"),
        ("http://dmp.no/fhir/NamingSystem/lmrLopenummer", "  "),
        ("http://example.org/other", "ID_" + GUID),  # a system we do not know
    ],
)
def test_a_value_not_well_formed_for_its_kind_is_left_as_sent(system: str, value: str) -> None:
    assert ids.served(system, value, "PackagedProductDefinition") is None


def test_the_gtin_check_digit_is_gs1s() -> None:
    assert ids.gtin_check_digit("704626014884") == 0
    assert ids.gtin_check_digit("0761234567890") == 0
    assert ids.gtin_check_digit("1704626014884") == 7


def test_a_search_in_an_accepted_form_asks_for_the_served_pair() -> None:
    ppd = "PackagedProductDefinition"
    assert ids.searched("https://farmalogg.no/produktkode/NTIN", "07046260148840", ppd) == (
        (GTIN,),
        ("7046260148840",),
    )
    assert ids.searched(PAKNING, GUID.lower(), ppd) == ((PAKNING,), ("ID_" + GUID,))
    # the generic FEST system asks every FEST id system: a GUID names one entry in all of FEST
    systems, values = ids.searched("http://ehelse.no/fhir/CodeSystem/FEST", GUID, "Basic")
    assert values == ("ID_" + GUID,) and PAKNING in systems and VIRKESTOFF in systems
    assert len(systems) == 13
    # not well formed: as given, so it finds what was kept as sent
    assert ids.searched(GTIN, "7046260148841", ppd) == ((GTIN,), ("7046260148841",))
    # a system alone: the served one, and the alias (which holds what was not well formed)
    assert ids.searched("https://farmalogg.no/produktkode/NTIN", None, ppd) == (
        (GTIN, "https://farmalogg.no/produktkode/NTIN"),
        None,
    )
    assert ids.searched(GTIN, None, ppd) == ((GTIN,), None)
    assert ids.searched("http://example.org/other", "x", ppd) == (("http://example.org/other",), ("x",))
    assert ids.searched("", "x", ppd) == (("",), ("x",))  # |x: no system, as given


def test_a_value_without_a_system_is_searched_in_each_of_its_forms() -> None:
    assert ids.value_forms(GUID.lower()) == (GUID.lower(), "ID_" + GUID)
    assert ids.value_forms("07046260148840") == ("07046260148840", "7046260148840")
    assert ids.value_forms("14884") == ("14884", "014884")
    assert ids.value_forms("014884") == ("014884",)
    assert ids.value_forms("Certican") == ("Certican",)


def test_every_system_belongs_to_one_kind_only() -> None:
    seen: dict[str, str] = {}
    for kind in ids.KINDS:
        for system in (kind.served, *kind.aliases):
            assert system.casefold() not in seen, f"{system} in {kind.name} and {seen[system.casefold()]}"
            seen[system.casefold()] = kind.name
    assert ids.FEST_GENERIC.casefold() not in seen  # its kind depends on the resource type
    assert set(ids.VALUE_FORMS) >= {k.value for k in ids.KINDS}


def test_the_readme_shows_the_table_as_the_code_has_it() -> None:
    table = ids.markdown_table()
    assert table in README.read_text(encoding="utf-8")
    assert table.count("\n") == 14  # header, rule, 12 rows (PhPID the newest)
    assert (
        "| GTIN (the pack's barcode; FEST Ean, Farmalogg's NTIN) | `https://www.gs1.org/gtin` (HL7 terminology) |"
        in table
    )


def test_only_ascii_whitespace_around_a_value_is_dropped_and_the_prefix_is_ascii() -> None:
    assert ids.fest_id("\tid_" + GUID.lower() + " \n") == "ID_" + GUID
    assert ids.gtin(" 7046260148840\t") == "7046260148840"
    assert ids.varenr(" 14884\r\n") == "014884"
    for value in ("\u00a0" + GUID, GUID + "\u2003", "\u0131d_" + GUID):  # no-break, em space, dotless i
        assert ids.fest_id(value) is None, value
    assert ids.gtin("7046260148840\u00a0") is None
    assert ids.as_given("\u00a0x ") == "\u00a0x"


def test_a_phpid_is_served_as_grunndata_computes_it_and_found_in_any_case() -> None:
    value = "L1A-78428EDE06DA2A83AAD26F3F"
    assert ids.phpid(value) == value
    assert ids.phpid(" l1a-78428ede06da2a83aad26f3f\t") == value
    assert ids.served(ids.PHPID.served, value.lower()) == (ids.PHPID.served, value)
    for bad in (
        "L5A-78428EDE06DA2A83AAD26F3F",
        "L1X-78428EDE06DA2A83AAD26F3F",
        "L1A-78428EDE",
        "",
        "L1A-" + "G" * 24,
    ):
        assert ids.phpid(bad) is None, bad


# -- a scanned GS1 code: the GTIN of application identifier 01 -----------------------------------

CERTICAN = "7046260148840"  # the real extract's Certican 0,1 mg pack (FEST Ean)


@pytest.mark.parametrize(
    "scanned",
    [
        f"010{CERTICAN}17280131101234A\x1d21SER1AL",  # raw, FNC1 as ASCII GS, GTIN first
        f"]d2010{CERTICAN}17280131",  # with the DataMatrix symbology prefix
        f"\x1d010{CERTICAN}",  # a leading FNC1
        f"17280131010{CERTICAN}21X",  # a fixed-length element (expiry) before the GTIN
        f"10LOT-7\x1d010{CERTICAN}",  # a variable-length element (batch) ended by GS
        f"(01)0{CERTICAN}(17)280131(10)LOT 7(21)S1",  # bracketed, as printed under the code
        f"https://id.gs1.org/01/0{CERTICAN}/21/S1?17=280131",  # GS1 Digital Link
        f"https://apotek.example.no/some/path/gtin/{CERTICAN}",
        f"HTTPS://ID.GS1.ORG/01/0{CERTICAN}",  # scheme and host are case-insensitive
    ],
)
def test_a_scanned_gs1_code_gives_its_gtin(scanned: str) -> None:
    assert ids.gs1_gtin(scanned) == CERTICAN


@pytest.mark.parametrize(
    "value",
    [
        CERTICAN,  # a plain GTIN is no element string (gtin() reads it)
        f"0{CERTICAN}",
        f"010{CERTICAN[:-1]}1",  # wrong check digit
        f"21SER1AL010{CERTICAN}",  # a variable-length element not ended: the rest is its data
        f"(01)0{CERTICAN[:-1]}",  # 13 digits in a bracketed 01
        "10LOT\x1d",  # no GTIN at all
        "ab" * 20,
        "0" * 600,  # longer than any scanned code
        f"(01)0{CERTICAN}".replace("0", "٠"),  # non-ASCII digits
        "https://id.gs1.org/10/LOT",
    ],
)
def test_what_carries_no_gs1_gtin_gives_none(value: str) -> None:
    assert ids.gs1_gtin(value) is None
