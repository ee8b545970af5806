"""The product card on the real extract: what it shows of Certican is what the FEST XML says.

The expected values are read from the XML here (the package, its prices, its reimbursement group,
codes and conditions, the interactions naming everolimus), never copied from our own output."""

from __future__ import annotations

import gzip
import html
import re
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import etree
from sqlalchemy.engine import Engine

from tests.conftest import REAL_FEST, require
from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE


def _local(el: Any) -> str:
    return str(etree.QName(el).localname)


def _kid(el: Any, name: str) -> Any:
    return next((c for c in el if _local(c) == name), None)


def _kids(el: Any, name: str) -> list[Any]:
    return [c for c in el if _local(c) == name]


@pytest.fixture(scope="module")
def fest() -> Any:
    with gzip.open(require(REAL_FEST)) as f:
        return etree.parse(f).getroot()


def _payloads(root: Any, oppf: str) -> list[Any]:
    return [list(o)[-1] for o in root.iter() if isinstance(o.tag, str) and _local(o) == oppf]


def _text(page: str) -> str:
    """The page's text, tags dropped and whitespace collapsed, for comparing with the XML's."""
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", page)).split())


def _section(page: str, start: str) -> str:
    """The <section ...> whose opening tag holds `start`, up to its end."""
    at = page.index(start)
    return page[page.rindex("<section", 0, at) : page.index("</section>", at)]


def _kroner(value: str) -> str:
    return f"{Decimal(value):.2f}".replace(".", ",") + " NOK"


def test_the_certican_card_shows_package_014884_with_its_gtin_size_and_prices_as_the_xml_has_them(
    api: TestClient, fest: Any
) -> None:
    package = next(p for p in _payloads(fest, "OppfLegemiddelpakning") if _kid(p, "Varenr").text == "014884")
    info = _kid(package, "Pakningsinfo")
    r = api.get(f"/legemidler/{CERTICAN_BRAND}")
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    section = _text(_section(r.text, 'data-varenr="014884"'))
    assert f"GTIN {_kid(package, 'Ean').text}" in section  # 7046260148840
    size = f"{_kid(info, 'Pakningsstr').text} {_kid(info, 'EnhetPakning').get('V')}"  # 60 stk
    assert f"Pakningsstørrelse {size}" in section
    assert f"Pakningstype {_kid(info, 'Pakningstype').get('DN')}" in section
    prices = [
        (p.find("{*}Type").get("DN"), _kroner(p.find("{*}Pris").get("V")), p.find("{*}GyldigFraDato").text)
        for p in _kids(package, "PrisVare")
    ]
    assert len(prices) == 3  # AUP, AIP and Refusjonspris
    shown = re.findall(
        r'<tr class="price"><td>(.*?)</td><td class="num">(.*?)</td><td>(.*?)</td></tr>', r.text
    )
    assert sorted(shown) == sorted(prices)


def test_the_certican_card_shows_its_reimbursement_group_codes_and_conditions_as_the_xml_has_them(
    api: TestClient, fest: Any
) -> None:
    package = next(p for p in _payloads(fest, "OppfLegemiddelpakning") if _kid(p, "Varenr").text == "014884")
    group_id = _kid(_kid(package, "Refusjon"), "RefRefusjonsgruppe").text
    hjemmel, group = next(
        (h, g)
        for h in _payloads(fest, "OppfRefusjon")
        for g in _kids(h, "Refusjonsgruppe")
        if _kid(g, "Id").text == group_id
    )
    conditions = {_kid(v, "Id").text: v for v in _payloads(fest, "OppfVilkar")}
    section = _section(api.get(f"/legemidler/{CERTICAN_BRAND}").text, 'data-varenr="014884"')
    text = _text(section)
    since = _kid(_kid(package, "Refusjon"), "GyldigFraDato").text
    regulation = _kid(hjemmel, "Refusjonshjemmel").get("DN")
    assert f"{regulation}, gruppe {_kid(group, 'GruppeNr').get('V')} (fra {since})" in text
    assert _kid(group, "RefusjonsberettighetBruk").text in text
    codes = _kids(group, "Refusjonskode")
    assert codes  # -51 Organtransplantasjon and Z94 in the real extract
    shown = re.findall(r'<li class="code" data-code="([^"]*)">', section)
    assert shown == [_kid(c, "Refusjonskode").get("V") for c in codes]
    for code in codes:
        item = _text(
            section.split(f'data-code="{_kid(code, "Refusjonskode").get("V")}"', 1)[1].split(
                '<li class="code"'
            )[0]
        )
        assert _kid(code, "Refusjonskode").get("DN") in item
        wanted = [conditions[_kid(v, "RefVilkar").text] for v in _kids(code, "Refusjonsvilkar")]
        assert wanted
        for vilkar in wanted:
            assert (
                f"Vilkår {_kid(vilkar, 'VilkarNr').text}: {' '.join(_kid(vilkar, 'Tekst').text.split())}"
                in item
            )


def test_the_certican_card_lists_the_real_extracts_interactions_for_everolimus(
    api: TestClient, fest: Any
) -> None:
    expected = {}
    for interaction in _payloads(fest, "OppfInteraksjon"):
        atcs = {a.get("V") for a in interaction.iter("{*}Atc")}
        if "L04AA18" in atcs:  # Certican's ATC code: everolimus
            expected[_kid(interaction, "Id").text.removeprefix("ID_")] = interaction
    assert len(expected) == 2  # the real extract: with clarithromycin, with inactivated vaccines
    page = api.get(f"/legemidler/{CERTICAN_BRAND}").text
    assert set(re.findall(r'<section class="box interaction[^"]*" data-id="([^"]+)"', page)) == set(expected)
    for rid, interaction in expected.items():
        section = _text(_section(page, f'data-id="{rid}"'))
        assert _kid(interaction, "Relevans").get("DN") in section
        assert " ".join(_kid(interaction, "KliniskKonsekvens").text.split()) in section
        assert " ".join(_kid(interaction, "Handtering").text.split()) in section


def test_the_card_names_form_atc_legal_status_substance_and_links_to_the_fhir_resources(
    api: TestClient, fest: Any
) -> None:
    brand = next(
        p for p in _payloads(fest, "OppfLegemiddelMerkevare") if _kid(p, "Id").text == "ID_" + CERTICAN_BRAND
    )
    page = api.get(f"/legemidler/{CERTICAN_BRAND}").text
    text = _text(page)
    assert f"<h1>{_kid(brand, 'NavnFormStyrke').text}</h1>" in page
    assert f"Legemiddelform {_kid(brand, 'LegemiddelformKort').get('DN')}" in text
    assert f"ATC {_kid(brand, 'Atc').get('V')} {_kid(brand, 'Atc').get('DN')}" in text
    assert f"Reseptgruppe {_kid(brand, 'Reseptgruppe').get('DN')}" in text
    assert "Everolimus 0,1 mg" in text  # VirkestoffMedStyrke: 0.1 mg everolimus
    for form in ("json", "xml"):
        link = f"/fhir/MedicinalProductDefinition/{CERTICAN_BRAND}?_format={form}"
        assert f'href="{link}"' in page
        assert api.get(link).status_code == 200
    assert "Enkeltoppføringer serveres ikke som M30" in text  # no single-entry M30 endpoint: said so


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/legemidler/00000000-0000-0000-0000-000000000000", 404),
        ("/legemidler/" + "A" * 5000, 404),
        ("/legemidler/%00", 404),
        ("/legemidler/%3Cscript%3E", 404),
        ("/legemidler/a%2Fb", 404),  # a slash in the id: the page's 404, not FHIR's JSON
        ("/legemidler/a/b", 404),
    ],
)
def test_an_unknown_or_malformed_id_is_a_clear_page_not_a_500(
    api: TestClient, path: str, status: int
) -> None:
    r = api.get(path)
    assert r.status_code == status
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Fant ikke legemidlet</h1>" in r.text
    assert "<script>" not in r.text


def test_where_fest_and_idmp_disagree_about_certican_the_card_shows_both_values(engine: Engine) -> None:
    """The planted SAFEST delivery of the importer tests disagrees with FEST about Certican, its
    package and its ingredient; the card lists exactly those of the reconciliation's disagreements."""
    from grunndata.importers.fest import import_fest
    from grunndata.importers.safest import import_safest
    from grunndata.server import create_app
    from tests.importers.test_safest import PLANTED_DISAGREEMENTS
    from tests.server.test_migration import PLANTED

    import_fest(engine, require(REAL_FEST))
    import_safest(engine, PLANTED)
    with TestClient(create_app(engine, warm=False)) as client:
        page = client.get(f"/legemidler/{CERTICAN_BRAND}").text
    table = page.split('id="fest-idmp"', 1)[1]
    shown = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td></tr>", table)
    ours = {
        f"MedicinalProductDefinition/{CERTICAN_BRAND}",
        f"PackagedProductDefinition/{CERTICAN_PACKAGE}",  # its one package
        f"Ingredient/{CERTICAN_BRAND}-1",  # its one ingredient
    }
    expected = [d for d in PLANTED_DISAGREEMENTS if d[0] in ours]
    assert {d[0] for d in expected} == ours
    assert sorted(tuple(html.unescape(x) for x in row) for row in shown) == sorted(expected)


def _brand_of(package: Any) -> str:
    return str(_kid(_kid(package, "Pakningsinfo"), "RefLegemiddelMerkevare").text).removeprefix("ID_")


def test_a_package_in_a_substitution_group_lists_the_groups_other_packages_as_the_xml_has_them(
    api: TestClient, fest: Any
) -> None:
    packages = _payloads(fest, "OppfLegemiddelpakning")
    members: dict[str, list[Any]] = {}
    for p in packages:
        for group in _kids(p, "PakningByttegruppe"):
            members.setdefault(_kid(group, "RefByttegruppe").text, []).append(p)
    group, inside = max(members.items(), key=lambda kv: (len(kv[1]), kv[0]))  # the largest group
    assert len(inside) >= 3
    package = min(inside, key=lambda p: _kid(p, "Varenr").text)
    code = next(
        _kid(g, "Kode").get("DN") for g in _payloads(fest, "OppfByttegruppe") if _kid(g, "Id").text == group
    )
    page = api.get(f"/legemidler/{_brand_of(package)}").text
    section = _section(page, f'data-varenr="{_kid(package, "Varenr").text}"')
    listed = section.split("<h4>Byttegruppe</h4>", 1)[1]
    assert code in _text(listed)
    shown = re.findall(r"varenr (\d+)</li>", listed)
    assert sorted(shown) == sorted(_kid(p, "Varenr").text for p in inside if p is not package)


def test_slvs_notices_naming_a_product_are_on_its_card(api: TestClient, fest: Any) -> None:
    brands = {_kid(b, "Id").text for b in _payloads(fest, "OppfLegemiddelMerkevare")}
    naming: dict[str, list[str]] = {}
    for notice in _payloads(fest, "OppfVarselSlv"):
        for element in _kids(notice, "Referanseelement"):
            for ref in _kids(element, "RefElement"):
                if ref.text in brands:
                    naming.setdefault(ref.text, []).append(_kid(notice, "Overskrift").text)
    assert naming  # the real extract has notices naming brands
    brand, headings = min(naming.items())
    page = api.get(f"/legemidler/{brand.removeprefix('ID_')}").text
    shown = re.findall(r'<section class="box notice">\s*<h3>(.*?)</h3>', page)
    assert set(headings) <= {html.unescape(h) for h in shown}


@pytest.mark.parametrize(
    "given",
    [
        f"ID_{CERTICAN_BRAND}",  # the FEST id as FEST writes it
        f"Id_{CERTICAN_BRAND}",  # ID_ in any case
        f"id_{CERTICAN_BRAND.lower()}",
        CERTICAN_BRAND.lower(),
        CERTICAN_PACKAGE,  # its package: the product the package is for
        f"ID_{CERTICAN_PACKAGE}",
    ],
)
def test_a_fest_id_or_a_package_id_leads_to_the_products_card(api: TestClient, given: str) -> None:
    r = api.get(f"/legemidler/{given}", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/legemidler/{CERTICAN_BRAND}"


# -- PhPID groups and salts ---------------------------------------------------------------------------

RITALIN = "9A0D6927-48D4-4078-956E-2FBFA4EED66F"  # Ritalin Tab 10 mg: metylfenidat 10 mg per tablet
METYLFENIDAT = "6CACB000-6973-4B2F-9C99-4C1A3DD58F25"  # its Virkestoff, which names one salt
OSTRADIOL = "00E54910-BF0F-4EBC-845A-8B4A20F7A2F9"  # Østradiol: names four salts and esters


def _virkestoff(fest: Any) -> dict[str, Any]:
    return {_kid(v, "Id").text: v for v in _payloads(fest, "OppfVirkestoff")}


def test_the_card_lists_the_phpid_groups_of_ritalin_with_the_other_products_in_each(api: TestClient) -> None:
    """Ritalin, Medikinet and Metylfenidat Aurora Medical are all metylfenidat 10 mg tablets: the
    same level 1 and level 2 PhPIDs (FEST 53 Tablett has no verified EDQM form: no level 3 or 4)."""
    page = api.get(f"/legemidler/{RITALIN}").text
    groups = re.findall(r'<section class="box phpid" data-phpid="([^"]+)".*?</section>', page, re.S)
    assert groups == ["L1A-1861A5563D482BE37EA8124F", "L2A-BB9398BAECD778C6903D1F98"]
    for value, level in zip(groups, ("Nivå 1: virkestoff", "Nivå 2: virkestoff og styrke"), strict=True):
        section = _section(page, f'data-phpid="{value}"')
        assert f">{level}</h3>" in section
        assert re.findall(r'<li class="member"><a href="/legemidler/([^"]+)">(.*?)</a>', section) == [
            ("B1D8F691-9DEE-48CE-823D-247288A9C81E", "Medikinet Tab 10 mg"),
            ("F1D7BACC-E159-4C84-9EF4-448AE80D01F3", "Metylfenidat Aurora Medical Tab 10 mg"),
        ]
        link = (
            f"/fhir/PackagedProductDefinition?identifier=https://grunndata.no/fhir/NamingSystem/phpid|{value}"
        )
        assert f'href="{html.escape(link)}"' in section
        found = api.get(link).json()
        assert sorted({p["reference"] for e in found["entry"] for p in e["resource"]["packageFor"]}) == [
            f"MedicinalProductDefinition/{p}"
            for p in (RITALIN, "B1D8F691-9DEE-48CE-823D-247288A9C81E", "F1D7BACC-E159-4C84-9EF4-448AE80D01F3")
        ]
    assert 'href="#phpid">PhPID-grupper (2)</a>' in page


def test_a_product_alone_in_its_phpid_groups_says_so_and_one_without_phpids_says_why(api: TestClient) -> None:
    certican = api.get(f"/legemidler/{CERTICAN_BRAND}").text  # everolimus 0.1 mg: no other product
    assert re.findall(r'data-phpid="([^"]+)"', certican) == [
        "L1A-269E4B3C393B2DC1A37B932C",
        "L2A-6B7160C81BD46291CB739FCA",
        "L3A-27E6D0BBA00CDA4C9F4511ED",
        "L4A-F8ABF12064500B23C4DA8E90",
    ]
    assert certican.count("Ingen andre legemidler i gruppen.") == 4


def test_the_card_links_each_substance_and_names_the_salts_its_virkestoff_lists(
    api: TestClient, fest: Any
) -> None:
    virkestoff = _virkestoff(fest)
    salts = [r.text for r in _kids(virkestoff["ID_" + METYLFENIDAT], "RefVirkestoff")]
    assert [_kid(virkestoff[s], "Navn").text for s in salts] == ["Metylfenidathydroklorid"]
    page = api.get(f"/legemidler/{RITALIN}").text
    assert (
        f'<li class="substance"><a href="/legemidler/virkestoff/{METYLFENIDAT}">Metylfenidat</a> 10 mg'
        in page
    )
    assert re.findall(
        r'<li class="related">(.*?): <a href="/legemidler/virkestoff/([^"]+)">(.*?)</a>', page
    ) == [("Salt eller ester av dette virkestoffet", salts[0].removeprefix("ID_"), "Metylfenidathydroklorid")]


def test_a_parent_substances_page_lists_its_salts_and_each_salts_page_names_its_parent(
    api: TestClient, fest: Any
) -> None:
    """Østradiol's Virkestoff names four salts and esters; each of those pages names Østradiol."""
    virkestoff = _virkestoff(fest)
    expected = sorted(
        (_kid(virkestoff[r.text], "Navn").text, r.text.removeprefix("ID_"))
        for r in _kids(virkestoff["ID_" + OSTRADIOL], "RefVirkestoff")
    )
    assert [name for name, _ in expected] == [
        "Østradiolacetat",
        "Østradiolbenzoat",
        "Østradiolhemihydrat",
        "Østradiolvalerat",
    ]
    page = api.get(f"/legemidler/virkestoff/{OSTRADIOL}")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert "<h1>Østradiol</h1>" in page.text
    shown = re.findall(r'<li class="salt"><a href="/legemidler/virkestoff/([^"]+)">(.*?)</a>', page.text)
    assert sorted((name, sid) for sid, name in shown) == expected
    assert "Ikke oppgitt som salt eller ester av et annet virkestoff." in page.text
    products = re.findall(r'<li class="product"><a href="/legemidler/([^"]+)">(.*?)</a>', page.text)
    assert [name for _, name in products] == [
        "Estradot Depotplaster 100 mikrog/24 timer",
        "Estradot Depotplaster 25 mikrog/24 timer",
        "Estradot Depotplaster 37,5 mikrog/24 timer",
        "Estradot Depotplaster 50 mikrog/24 timer",
        "Estradot Depotplaster 75 mikrog/24 timer",
    ]
    for _, sid in expected:
        salt = api.get(f"/legemidler/virkestoff/{sid}").text
        assert re.findall(r'<li class="parent"><a href="/legemidler/virkestoff/([^"]+)">(.*?)</a>', salt) == [
            (OSTRADIOL, "Østradiol")
        ]
        assert "Salter og estere (0)" in salt


@pytest.mark.parametrize(
    "path",
    [
        "/legemidler/virkestoff/00000000-0000-0000-0000-000000000000",
        "/legemidler/virkestoff/" + "A" * 5000,
        "/legemidler/virkestoff/%3Cscript%3E",
        f"/legemidler/virkestoff/{CERTICAN_BRAND}",  # a product's id is no substance's
        "/legemidler/virkestoff/a/b",
    ],
)
def test_an_unknown_substance_is_a_clear_404_page(api: TestClient, path: str) -> None:
    r = api.get(path)
    assert r.status_code == 404
    assert r.headers["content-type"] == "text/html; charset=utf-8"
    assert "<script>" not in r.text
    assert ("<h1>Fant ikke virkestoffet</h1>" in r.text) != path.endswith("/a/b")
