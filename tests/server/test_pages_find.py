"""Find a drug (/legemidler): by name, varenr, GTIN, ATC code and substance on the real extract,
Norwegian letters on planted names, and bad input answered with a page, never a 500."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from grunndata.importers.fest import import_fest
from grunndata.server import create_app
from grunndata.server.pages import MAX_QUERY, fold
from grunndata.store import connect
from tests.conftest import REAL_FEST, require
from tests.server.conftest import CERTICAN_BRAND

CERTICAN = "Certican Disperg tab 0,1 mg"


def _products(page: str) -> list[tuple[str, str]]:
    """(id, name) of each product listed, in order."""
    return re.findall(r'<a href="/legemidler/([^"]+)">([^<]+)</a>', page.split('id="treff"', 1)[1])


@pytest.mark.parametrize(
    ("query", "matched"),
    [
        ("certican", "navn"),
        ("CERTICAN", "navn"),
        ("rtica", "navn"),  # contains, not only a prefix
        ("014884", "varenummer"),
        ("14884", "varenummer"),  # the leading zero left out
        ("7046260148840", "GTIN"),
        ("L04AA18", "ATC"),
        ("l04a", "ATC"),  # a level above finds the products under it
        ("everolimus", "virkestoff"),
    ],
)
def test_searching_finds_certican_by_name_varenr_gtin_atc_and_substance(
    api: TestClient, query: str, matched: str
) -> None:
    r = api.get("/legemidler", params={"q": query})
    assert r.status_code == 200 and r.headers["content-type"] == "text/html; charset=utf-8"
    assert (CERTICAN_BRAND, CERTICAN) in _products(r.text)
    listed = r.text.split(f'href="/legemidler/{CERTICAN_BRAND}"', 1)[1].split("</li>\n    </ul>", 1)[0]
    assert f"funnet på {matched}" in listed
    assert "Varenr 014884, 60 stk, GTIN 7046260148840" in listed  # grouped: the product's packages


def test_the_fragment_is_the_results_alone_for_the_script_and_the_page_works_without_it(
    api: TestClient,
) -> None:
    fragment = api.get("/legemidler", params={"q": "certican", "fragment": "1"})
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="treff"') and "<html" not in fragment.text
    page = api.get("/legemidler", params={"q": "certican"}).text
    assert '<form method="get" action="/legemidler" role="search">' in page  # a plain GET form
    assert '<script src="/legemidler/sok.js" defer></script>' in page
    script = api.get("/legemidler/sok.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    assert "fragment=1" in script.text and "setTimeout" in script.text  # ours, debounced
    assert "http" not in re.sub(r"<a href=\"http[^\"]*\"", "", page).split("<body", 1)[1]  # no outside asset


def test_the_landing_page_links_to_the_search(api: TestClient) -> None:
    assert '<a href="/legemidler">' in api.get("/").text


def test_pages_load_only_our_own_scripts_and_are_not_framed(api: TestClient) -> None:
    """Every HTML page of ours says what it may load; FastAPI's /docs (inline scripts) does not."""
    for path in ("/", "/legemidler?q=certican", "/leveranser", "/migration", "/catalog"):
        page = api.get(path)
        assert page.status_code == 200, path
        policy = page.headers["content-security-policy"]
        assert "script-src 'self';" in policy and "frame-ancestors 'self'" in policy, path
        assert page.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in api.get("/docs").headers
    assert "content-security-policy" not in api.get("/fhir/metadata").headers  # not a page


def test_nothing_found_is_said_plainly(api: TestClient) -> None:
    r = api.get("/legemidler", params={"q": "zzzyxxq"})
    assert r.status_code == 200 and "Ingen treff for «zzzyxxq»." in r.text


@pytest.mark.parametrize(
    ("query", "sentence"),
    [
        ("a" * (MAX_QUERY + 1), f"Søket er {MAX_QUERY + 1} tegn langt; skriv høyst {MAX_QUERY} tegn."),
        ("x" * 60_000, f"Søket er 60000 tegn langt; skriv høyst {MAX_QUERY} tegn."),
        ("cert\x00ican", "Søket inneholder kontrolltegn"),
        ("\x1b[2J", "Søket inneholder kontrolltegn"),
    ],
)
def test_bad_queries_are_a_400_page_that_says_why(api: TestClient, query: str, sentence: str) -> None:
    for fragment in ("0", "1"):
        r = api.get("/legemidler", params={"q": query, "fragment": fragment})
        assert r.status_code == 400
        assert r.headers["content-type"] == "text/html; charset=utf-8"
        assert "<h1>Søket kan ikke brukes</h1>" in r.text and sentence in r.text


def test_markup_in_a_query_is_shown_as_text(api: TestClient) -> None:
    r = api.get("/legemidler", params={"q": "<b>certican</b>"})
    assert r.status_code == 200
    assert "<b>certican</b>" not in r.text and "&lt;b&gt;certican&lt;/b&gt;" in r.text


def test_fold_keeps_the_norwegian_letters_and_drops_other_accents() -> None:
    assert fold("Søvn") == "søvn" and fold("SØVN") == "søvn"
    assert fold("Bråk") == "bråk" and fold("BRÅK") == "bråk" and fold("Bra\u030ak") == "bråk"  # å decomposed
    assert fold("Æble") == "æble"
    assert fold("Décan") == "decan" and fold("Crème") == "creme"


# -- planted names: æ, ø, å are letters, é is e ---------------------------------------------------

PLANTED = {  # a brand of the real extract renamed, by its place among the brands
    0: "Søvnfin tab 5 mg",
    1: "Sovnal tab 5 mg",
    2: "Bråkdempe tab 1 mg",
    3: "Brakmol tab 2 mg",
    4: "Décanor tab 10 mg",
}


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """A store of the real extract with five brands renamed as PLANTED says."""
    from grunndata.m30 import FestReader
    from tests.deliveries import relisted, set_text, write

    folder = tmp_path_factory.mktemp("planted")
    entries = [e for e, _ in FestReader(require(REAL_FEST)).entries()]
    brands = [i for i, e in enumerate(entries) if e.catalogue == "LegemiddelMerkevare"]
    for place, name in PLANTED.items():
        i = brands[place]
        entries[i] = relisted(
            entries[i],
            f"ID_00000000-0000-0000-0000-00000000000{place}",
            lambda p, n=name: set_text(p[0], "NavnFormStyrke", n),
        )
    delivery = write(folder / "planted.xml.gz", "2017-04-26T03:00:00", entries)
    engine = connect(f"sqlite:///{folder / 'store.db'}")
    import_fest(engine, delivery)
    with TestClient(create_app(engine, warm=False)) as client:
        yield client
    engine.dispose()


def _names(client: TestClient, query: str) -> set[str]:
    return {name for _, name in _products(client.get("/legemidler", params={"q": query}).text)}


@pytest.mark.parametrize(
    ("query", "found"),
    [
        ("søvn", {"Søvnfin tab 5 mg"}),  # ø is not o
        ("SØVN", {"Søvnfin tab 5 mg"}),
        ("sovn", {"Sovnal tab 5 mg"}),  # and o is not ø
        ("vnfin", {"Søvnfin tab 5 mg"}),
        ("bråk", {"Bråkdempe tab 1 mg"}),  # å is not a
        ("brak", {"Brakmol tab 2 mg"}),
        ("decanor", {"Décanor tab 10 mg"}),  # é is e
        ("décanor", {"Décanor tab 10 mg"}),
        ("DECANOR", {"Décanor tab 10 mg"}),
        ("br", {"Bråkdempe tab 1 mg", "Brakmol tab 2 mg"}),  # two letters: names beginning with them
        ("vibra", {"Vibranord Mikst 10 mg/ml"}),  # a real name, for contrast: "bra" is inside it
        ("brå", {"Bråkdempe tab 1 mg"}),
        ("kmol", {"Brakmol tab 2 mg"}),  # three or more: anywhere in the name
        ("km", set()),  # fewer: not inside a name
    ],
)
def test_norwegian_letters_are_letters_of_their_own_and_e_acute_is_e(
    planted: TestClient, query: str, found: set[str]
) -> None:
    assert _names(planted, query) == found


def test_a_name_beginning_with_the_query_comes_before_one_containing_it(planted: TestClient) -> None:
    names = [n for _, n in _products(planted.get("/legemidler", params={"q": "tab 5"}).text)]
    assert {"Søvnfin tab 5 mg", "Sovnal tab 5 mg"} <= set(names)
    assert names == sorted(names, key=lambda n: (not fold(n).startswith("tab 5"), fold(n)))


def test_a_real_substance_spelt_with_o_slash_is_found_and_not_without_it(api: TestClient) -> None:
    """The real extract names estradiol "Østradiol": the brands whose substances with strength
    name it are found by "østradiol", by substance, and "ostradiol" finds nothing."""
    import gzip

    from lxml import etree

    with gzip.open(require(REAL_FEST)) as f:
        root = etree.parse(f).getroot()
    payloads = [list(o)[-1] for o in root.iter("{*}OppfVirkestoff", "{*}OppfLegemiddelMerkevare")]
    estradiol = {p.findtext("{*}Id") for p in payloads if p.findtext("{*}Navn") == "Østradiol"}
    strengths = {p.findtext("{*}Id") for p in payloads if p.findtext("{*}RefVirkestoff") in estradiol}
    brands = {
        p.findtext("{*}Id").removeprefix("ID_")
        for p in payloads
        if {r.text for r in p.iter("{*}RefVirkestoffMedStyrke")} & strengths
    }
    assert len(estradiol) == 1 and brands
    found = api.get("/legemidler", params={"q": "østradiol"}).text
    assert {rid for rid, _ in _products(found)} == brands
    assert found.count("funnet på virkestoff") == len(brands)
    assert "Ingen treff for «ostradiol»." in api.get("/legemidler", params={"q": "ostradiol"}).text
