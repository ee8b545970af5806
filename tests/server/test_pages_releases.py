"""`/leveranser`: the releases for people. On the real extract with its follow-up staged: the list
(readable Norwegian dates, counts, a staged release only for who may import the line, a sector
line's existence and dates only), the staged release's page saying what it would change, and the
comparison element by element. On a generated base and its staged follow-up: the comparison lists
exactly the generator's own new, changed and expired entries per catalogue. A refused delivery's
page lists every problem `grunndata releases show` prints."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from lxml import html as lxml_html

from grunndata.importers.fest import import_fest
from grunndata.sample import derive_followup, generate_delivery
from grunndata.server import create_app
from grunndata.server.pages.releases import hentet, release_view, when
from grunndata.store import connect
from tests.cli.test_bad_input import run_cli
from tests.cli.test_releases import imported
from tests.conftest import fresh_pg_database
from tests.server.conftest import CERTICAN_PACKAGE, publish, served_store, write_followup
from tests.server.test_release_diff import IMPORT, NEW_NAME, OLD_NAME, oppf, sector_note
from tests.server.tokens import Issuer
from tests.store.test_staging import SCALE, expected_counts

__all__ = ["imported"]  # the CLI tests' store: the real extract (1) and a refused SAFEST delivery (2)


@dataclass
class Site:
    client: TestClient
    issuer: Issuer
    dropped: str  # the FEST Id of the package the follow-up drops

    def get(self, path: str, *scopes: str, status: int = 200) -> Any:
        """The page, parsed; it must be HTML with `status`."""
        answer = self.client.get(path, headers=self.issuer.headers(*scopes) if scopes else {})
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        return lxml_html.fromstring(answer.text)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def site(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The real extract (1), a sector line's two releases (2, 3), the follow-up staged (4)."""
    tmp = tmp_path_factory.mktemp("pages-releases")
    issuer = Issuer(tmp)
    followup, dropped = write_followup(tmp, NEW_NAME)

    def serve(url: str) -> Iterator[Site]:
        engine = served_store(url)
        publish(engine, [("sector", "ward-a", sector_note("Keep cold"))])
        publish(engine, [("sector", "ward-a", sector_note("Keep cold, away from light"))])
        assert import_fest(engine, followup, stage=True).release_id == 4
        with TestClient(create_app(engine, issuer.authenticator(), warm=False)) as client:
            yield Site(client, issuer, dropped)
        engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


def text(node: Any) -> str:
    return " ".join(node.text_content().split())


def rows(page: Any, line: str) -> list[list[str]]:
    return [
        [text(td) for td in tr.xpath("td")] for tr in page.xpath(f'//table[@data-line="{line}"]/tbody/tr')
    ]


def test_dates_read_as_people_in_norway_read_them() -> None:
    assert when(datetime(2026, 12, 7, 16, 35, 12)) == "7. desember 2026 kl. 17.35"  # UTC stored, CET shown
    assert when(datetime(2026, 7, 1, 6, 5)) == "1. juli 2026 kl. 08.05"  # summer time
    assert hentet("2017-04-12T18:26:27.336Z") == "12. april 2017 kl. 20.26"
    assert hentet("2017-04-26T03:00:00") == "26. april 2017 kl. 03.00"  # FEST's clock: Norwegian already
    assert hentet("not a date") == "not a date"


@pytest.mark.parametrize(
    ("status", "message", "shown"),
    [
        ("active", None, "aktiv"),
        ("superseded", None, "erstattet"),
        ("staged", None, "iscenesatt"),
        ("discarded", "staged, then discarded; its data was removed unserved", "forkastet"),
        ("pruned", None, "beskåret"),
        ("rolled-back", None, "rullet tilbake"),
        ("failed", "refused: the delivery has 3 problem(s)", "avvist"),
        ("failed", "interrupted before it finished (process ended)", "feilet"),
    ],
)
def test_every_status_has_its_norwegian_name(status: str, message: str | None, shown: str) -> None:
    row = SimpleNamespace(
        id=7, status=status, message=message, source="fest", kind="full", tier="national", owner_id="dmp",
        started_at=datetime(2026, 12, 7, 16, 35), ended_at=None, activated_at=None, hentet_dato=None,
        based_on=6, file_name=None, counts={}, report={},
    )  # fmt: skip
    view = release_view(row)
    assert (view.status_text, view.has_data) == (shown, status not in ("discarded", "pruned", "failed"))
    assert view.started == "7. desember 2026 kl. 17.35"


def test_everyone_sees_the_national_line_and_not_the_staged_release(site: Site) -> None:
    page = site.get("/leveranser")
    national = rows(page, "national/dmp")
    assert [r[:4] for r in national] == [["1", "aktiv", "fest (full)", "12. april 2017 kl. 20.26"]]
    assert national[0][5] == "403 FEST-oppføringer, 712 FHIR-ressurser"
    assert re.fullmatch(r"\d{1,2}\. [a-zø]+ 20\d\d kl\. \d\d\.\d\d", national[0][4])
    assert page.xpath('//table[@data-line="sector/ward-a"]') == []  # a line the client may not read
    assert "Iscenesatte (ikke publiserte) leveranser vises bare" in text(page)
    assert page.xpath("//form[@action='/leveranser/sammenlign']") == []  # one release: nothing to compare
    site.get("/leveranser/4", status=404)
    site.get("/leveranser/sammenlign?fra=1&til=4", status=404)
    site.get("/leveranser/sammenlign", status=404)  # the default pair needs a second release


def test_the_landing_page_and_every_pages_menu_lead_to_the_releases(site: Site) -> None:
    landing = site.get("/")
    assert landing.xpath("//nav//a[@href='/leveranser']/text()") == [
        "Leveransene: historikk, hva hver endret, rapporten fra en avvist import"
    ]
    for path in ("/legemidler", "/leveranser", "/leveranser/1", "/migration"):
        menu = site.get(path).xpath("//nav[@aria-label='Hovedmeny']/a/@href")
        assert menu == ["/", "/legemidler", "/leveranser", "/migration"], path


def test_the_operator_sees_the_staged_release_and_compares_it_by_default(site: Site) -> None:
    page = site.get("/leveranser", *IMPORT)
    assert [r[:2] for r in rows(page, "national/dmp")] == [
        ["4", "iscenesatt se hva den endrer"],
        ["1", "aktiv"],
    ]
    chosen = page.xpath("//select[@name='fra']/option[@selected]/@value") + page.xpath(
        "//select[@name='til']/option[@selected]/@value"
    )
    assert chosen == ["1", "4"]  # the staged release against the active one


def test_a_sector_line_shows_only_that_its_releases_exist_and_when(site: Site) -> None:
    page = site.get("/leveranser", "grunndata:sector.read")
    sector = rows(page, "sector/ward-a")
    assert [r[:3] for r in sector] == [["3", "aktiv", "sector (full)"], ["2", "erstattet", "sector (full)"]]
    assert all(len(r) == 5 for r in sector)  # no content column
    one = site.get("/leveranser/3", "grunndata:sector.read")
    assert "Innholdet i leveranser på sektor- og tilleggslinjer vises ikke her." in text(one)
    assert "Keep cold" not in text(one) and one.xpath("//h2[@id='typer']") == []
    site.get("/leveranser/3", status=404)  # anonymous: as /releases/3


def test_the_staged_releases_page_says_what_it_would_change(site: Site) -> None:
    page = site.get("/leveranser/4", *IMPORT)
    assert text(page.xpath("//h1")[0]) == "Leveranse 4: iscenesatt"
    assert page.xpath("//h2[@id='endringer']/text()") == ["Hva den vil endre"]
    counts = {
        tr.get("data-name"): [text(td) for td in tr.xpath("td")[1:]]
        for tr in page.xpath("//table[@data-kind='catalogue']/tbody/tr")
    }
    assert counts == {"Legemiddelpakning": ["0", "1", "1"]}
    assert page.xpath("//a[text()='Se hver endring, element for element']/@href") == [
        "/leveranser/sammenlign?fra=1&til=4"
    ]
    assert page.xpath("//section[contains(@class, 'entry')]") == []  # the entries are the comparison's


def test_the_comparison_shows_each_changed_entrys_changed_elements_only(site: Site) -> None:
    page = site.get("/leveranser/sammenlign?fra=1&til=4&type=Legemiddelpakning", *IMPORT)
    entries = page.xpath("//section[contains(@class, 'entry')]")
    assert sorted((e.get("data-type"), e.get("data-change")) for e in entries) == [
        ("Legemiddelpakning", "changed"),
        ("Legemiddelpakning", "expired"),
    ]
    changed = next(e for e in entries if e.get("data-change") == "changed")
    assert text(changed.xpath(".//span[@class='id']")[0]) == "ID_" + CERTICAN_PACKAGE
    old_id, old_time = oppf(CERTICAN_PACKAGE)
    assert [[text(td) for td in tr.xpath("td")] for tr in changed.xpath(".//tbody/tr")] == [
        ["Id", old_id, "ID_11111111-2222-3333-4444-555555555555"],
        ["Tidspunkt", old_time, "2017-04-20T10:00:00"],
        ["Legemiddelpakning.NavnFormStyrke", OLD_NAME, NEW_NAME],
    ]
    expired = next(e for e in entries if e.get("data-change") == "expired")
    assert text(expired.xpath(".//span[@class='id']")[0]) == site.dropped
    assert expired.xpath(".//table") == []
    # every type: the FHIR made from the package changed with it
    whole = site.get("/leveranser/sammenlign", *IMPORT)  # the default: the staged one against the active
    assert text(whole.xpath("//h1")[0]) == "Hva leveranse 4 endrer fra leveranse 1"
    resources = {
        tr.get("data-name"): [text(td) for td in tr.xpath("td")[1:]]
        for tr in whole.xpath("//table[@data-kind='resource']/tbody/tr")
    }
    assert resources["PackagedProductDefinition"] == ["0", "1", "1"]
    listed = Counter(
        (e.get("data-type"), e.get("data-change"))
        for e in whole.xpath("//section[contains(@class, 'entry')]")
    )
    assert listed[("PackagedProductDefinition", "changed")] == 1
    assert listed[("Legemiddelpakning", "expired")] == 1


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/leveranser/99", 404),
        ("/leveranser/0", 404),
        ("/leveranser/x", 404),
        ("/leveranser/99999999999", 404),
        ("/leveranser/sammenlign?fra=1&til=99", 404),
        ("/leveranser/sammenlign?fra=x&til=4", 400),
        ("/leveranser/sammenlign?fra=1&til=4&type=%3Cscript%3E", 400),
        ("/leveranser/sammenlign?fra=1&til=4&start=-1", 400),
        ("/leveranser/sammenlign?fra=1&til=3", 404),  # a sector release: not on these pages
    ],
)
def test_a_bad_release_or_comparison_is_a_clear_page_not_a_500(site: Site, path: str, status: int) -> None:
    answer = site.client.get(path, headers=site.issuer.headers(*IMPORT))
    assert answer.status_code == status
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert 'class="box problem"' in answer.text and "<script>" not in answer.text


# -- a refused delivery --------------------------------------------------------------------------


def test_a_refused_deliverys_page_lists_every_problem_the_cli_prints(imported: Path) -> None:
    engine = connect(f"sqlite:///{imported}", must_exist=True)
    try:
        with TestClient(create_app(engine, warm=False)) as client:
            answer = client.get("/leveranser/2")
            listing = lxml_html.fromstring(client.get("/leveranser").text)
            compared = client.get("/leveranser/sammenlign?fra=1&til=2")
    finally:
        engine.dispose()
    assert answer.status_code == 200
    page = lxml_html.fromstring(answer.text)
    assert text(page.xpath("//h1")[0]) == "Leveranse 2: avvist"
    assert text(page.xpath("//p[@id='hvorfor']")[0]).startswith(
        "Hvorfor: refused: the delivery has 3 problem(s); the first: MedicinalProductDefinition/bad-0"
    )
    assert text(page.xpath("//h2[@id='problemer']")[0]) == "Problemer (3)"
    report = json.loads(run_cli("releases", "show", "2", "--db", f"sqlite:///{imported}", "--json").stdout)
    listed = [" ".join(li.text_content().split()) for li in page.xpath("//ol[@class='problems']/li")]
    assert listed == [" ".join(p.split()) for p in report["report"]["problems"]]
    assert len(listed) == report["report"]["problem_count"] == 3
    shown = run_cli("releases", "show", "2", "--db", f"sqlite:///{imported}")
    assert shown.returncode == 0, shown.stderr
    printed = [" ".join(line[4:].split()) for line in shown.stdout.splitlines() if line.startswith("  - ")]
    assert listed == printed  # the CLI's lines are the page's, the pydantic detail "[type=...]" kept
    assert all(" [type=" in line for line in printed)
    assert [r[:2] for r in rows(listing, "national/dmp")] == [["2", "avvist"], ["1", "aktiv"]]
    assert compared.status_code == 400
    assert "Leveranse 2 er avvist og har ingen data å sammenligne." in compared.text


# -- a generated base and its staged follow-up ---------------------------------------------------


@dataclass(frozen=True)
class Generated:
    client: TestClient
    headers: dict[str, str]
    stats: dict[str, dict[str, int]]


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def generated(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Generated]:
    folder = tmp_path_factory.mktemp("pages-generated")
    base, followup = folder / "base.xml", folder / "followup.xml"
    generate_delivery(base, scale=SCALE, seed=7)
    stats = derive_followup(base, followup, seed=3)
    issuer = Issuer(folder)

    def serve(url: str) -> Iterator[Generated]:
        engine = connect(url)
        assert import_fest(engine, base).release_id == 1
        assert import_fest(engine, followup, stage=True).release_id == 2
        with TestClient(create_app(engine, issuer.authenticator(), warm=False)) as client:
            yield Generated(client, issuer.headers(*IMPORT), stats)
        engine.dispose()

    if request.param == "sqlite":
        yield from serve(f"sqlite:///{folder / 'store.db'}")
        return
    with fresh_pg_database() as url:
        yield from serve(url)


def test_the_comparison_lists_exactly_the_generators_new_changed_and_expired_entries(
    generated: Generated,
) -> None:
    answer = generated.client.get("/leveranser/sammenlign", headers=generated.headers)
    assert answer.status_code == 200, answer.text
    page = lxml_html.fromstring(answer.text)
    assert text(page.xpath("//h1")[0]) == "Hva leveranse 2 endrer fra leveranse 1"
    expected = expected_counts(generated.stats)
    counted = {
        tr.get("data-name"): {td.get("data-change"): int(text(td)) for td in tr.xpath("td[@data-change]")}
        for tr in page.xpath("//table[@data-kind='catalogue']/tbody/tr")
    }
    assert counted == expected
    listed: dict[str, dict[str, int]] = {}
    for e in page.xpath("//section[contains(@class, 'entry')][@data-kind='catalogue']"):
        by = listed.setdefault(e.get("data-type"), {"new": 0, "changed": 0, "expired": 0})
        by[e.get("data-change")] += 1
    assert listed == expected
    assert sum(c["changed"] for c in expected.values()) > 10
    for e in page.xpath("//section[contains(@class, 'entry')][@data-change='changed']"):
        cells = [[text(td) for td in tr.xpath("td")] for tr in e.xpath(".//tbody/tr")]
        rid = text(e.xpath(".//span[@class='id']")[0])
        assert cells, f"{e.get('data-type')} {rid}: no element shown"
        assert all(old != new for _, old, new in cells)  # only what changed
    # nothing but the staged release's reviewer sees it
    assert generated.client.get("/leveranser/2").status_code == 404


# -- one rule for every page: tokens, trailing slashes, repeated parameters ------------------------

METYLFENIDAT = "6CACB000-6973-4B2F-9C99-4C1A3DD58F25"  # a Virkestoff of the real extract
EVERY_PAGE = [  # (path, its status without a token: the pages are open)
    ("/", 200),
    ("/legemidler", 200),
    ("/legemidler?q=certican", 200),
    (f"/legemidler/{CERTICAN_PACKAGE}", 303),  # a package's id: its product's card
    ("/legemidler/virkestoff/" + METYLFENIDAT, 200),
    ("/legemidler/no-such-product", 404),
    ("/leveranser", 200),
    ("/leveranser/1", 200),
    ("/leveranser/sammenlign?fra=1&til=4", 404),  # the staged one: unknown without the import right
    ("/migration", 200),
    ("/migration/1/uenigheter", 200),
    ("/migration/1/PackagedProductDefinition?del=fra-fest", 200),
    ("/catalog", 200),
]


def _bad_tokens(site: Site) -> list[tuple[str, str]]:
    return [
        ("not a token", "Bearer not-a-token"),
        ("expired", f"Bearer {site.issuer.token('grunndata:read', expires_in=-3600)}"),
        ("a tampered signature", "Bearer " + site.issuer.token()[:-8] + "AAAAAAAA"),
    ]


@pytest.mark.parametrize(("path", "open_status"), EVERY_PAGE)
def test_a_bad_or_expired_token_is_a_401_page_on_every_page_and_no_token_is_fine(
    site: Site, path: str, open_status: int
) -> None:
    assert site.client.get(path, follow_redirects=False).status_code == open_status
    for why, authorization in _bad_tokens(site):
        answer = site.client.get(path, headers={"Authorization": authorization}, follow_redirects=False)
        assert answer.status_code == 401, (why, answer.text)
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert answer.headers["www-authenticate"].startswith(
            'Bearer realm="grunndata", error="invalid_token"'
        )
        page = lxml_html.fromstring(answer.text)
        assert page.xpath("/html/@lang") == ["nb"]
        assert page.xpath("//nav[@aria-label='Hovedmeny']/a/@href") == [
            "/",
            "/legemidler",
            "/leveranser",
            "/migration",
        ]
        assert text(page.xpath("//h1")[0]) == "Tokenet gjelder ikke"
        assert "trenger ikke innlogging" in text(page.xpath("//p[@class='box problem']")[0])


def test_the_migration_report_asked_as_json_keeps_the_apis_401_and_400(site: Site) -> None:
    bad = {"Authorization": "Bearer not-a-token", "Accept": "application/json"}
    answer = site.client.get("/migration", headers=bad)
    assert answer.status_code == 401
    assert answer.json()["issue"][0]["code"] == "login"
    answer = site.client.get("/migration?_format=json&_format=json")
    assert answer.status_code == 400
    assert answer.json()["issue"][0]["diagnostics"] == "a query parameter is given more than once: _format"
    assert (
        site.client.get("/catalog.json", headers={"Authorization": "Bearer x"}).json()["issue"][0]["code"]
        == "login"
    )


@pytest.mark.parametrize(
    ("path", "location"),
    [
        ("/leveranser/1/", "/leveranser/1"),
        ("/leveranser/", "/leveranser"),
        ("/leveranser/sammenlign/?fra=1&til=4", "/leveranser/sammenlign?fra=1&til=4"),
        ("/migration/", "/migration"),
        ("/migration/1/uenigheter//", "/migration/1/uenigheter"),
        ("/legemidler/", "/legemidler"),
        (f"/legemidler/{CERTICAN_PACKAGE}/", f"/legemidler/{CERTICAN_PACKAGE}"),
        (f"/legemidler/virkestoff/{METYLFENIDAT}/", f"/legemidler/virkestoff/{METYLFENIDAT}"),
    ],
)
def test_a_page_with_a_trailing_slash_redirects_to_the_page_without_it(
    site: Site, path: str, location: str
) -> None:
    answer = site.client.get(path, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (308, location)
    assert (
        site.client.get(path).status_code in (200, 404)
        and site.client.get(path).headers["content-type"] == "text/html; charset=utf-8"
    )


@pytest.mark.parametrize(
    ("path", "back"),
    [
        ("/leveranser/1/x", "/leveranser"),
        ("/leveranser/sammenlign/2", "/leveranser"),
        ("/migration/1/uenigheter/1/x", "/migration"),
        ("/leveranser/%0d%0aSet-Cookie:%20x=1/", "/legemidler"),  # no route takes a line break
    ],
)
def test_an_unknown_path_under_the_pages_is_their_html_404_not_fhirs(
    site: Site, path: str, back: str
) -> None:
    page = site.get(path, status=404)
    assert text(page.xpath("//h1")[0]) == "Fant ikke siden"
    assert page.xpath("//main/p/a/@href") == [back]


@pytest.mark.parametrize(
    ("path", "name", "back"),
    [
        ("/leveranser/sammenlign?fra=1&fra=2&til=4", "fra", "/leveranser"),
        ("/leveranser/sammenlign?fra=1&til=4&til=4", "til", "/leveranser"),
        ("/leveranser?x=1&x=1", "x", "/leveranser"),
        ("/leveranser/1?start=0&start=50", "start", "/leveranser"),
        ("/legemidler?q=certican&q=para", "q", "/legemidler"),
        (f"/legemidler/{CERTICAN_PACKAGE}?a=1&a=2", "a", "/legemidler"),
        ("/migration?x=&x=", "x", "/migration"),
        ("/migration/1/PackagedProductDefinition?del=fra-fest&del=bare-idmp", "del", "/migration"),
        ("/legemidler?" + "q" * 60 + "=1&" + "q" * 60 + "=2", "q" * 40 + "…", "/legemidler"),
    ],
)
def test_a_repeated_page_parameter_is_a_400_page_naming_it_not_last_wins(
    site: Site, path: str, name: str, back: str
) -> None:
    page = site.get(path, *IMPORT, status=400)
    assert text(page.xpath("//h1")[0]) == "Forespørselen kan ikke brukes"
    assert text(page.xpath("//p[@class='box problem']")[0]) == (
        f"Parameteren «{name}» er oppgitt mer enn én gang; oppgi den én gang."
    )
    assert page.xpath("//main/p/a/@href") == [back]


def test_comparing_a_sector_release_on_the_pages_says_why_not_and_where_to_instead(site: Site) -> None:
    """The pages show no sector or supplementary content (issue 24), so a comparison with a sector
    release is a 404 for everyone; who may see the release is told it is the sector line's, and
    that the API's diff shows it; who may not is told only that there is no national release 3."""
    owner = site.get("/leveranser/sammenlign?fra=1&til=3", "grunndata:sector.read", status=404)
    assert text(owner.xpath("//p[@class='box problem']")[0]) == (
        "Leveranse 3 hører til linjen sektor (ward-a). Sidene sammenligner bare nasjonale leveranser: "
        "innholdet i sektor- og tilleggslinjer vises ikke her. Med tilgang til linjen viser API-et "
        "forskjellen: GET /releases/1/diff/3 med token."
    )
    api = site.client.get("/releases/2/diff/3", headers=site.issuer.headers("grunndata:sector.read"))
    assert api.status_code == 200 and "withheld" not in api.text
    other = site.get("/leveranser/sammenlign?fra=2&til=3", status=404)
    assert text(other.xpath("//p[@class='box problem']")[0]) == "Det finnes ingen nasjonal leveranse 2."
