"""Find a drug and its card in a real browser, driven as a person would: Debian's chromium, headless,
over the DevTools protocol (one browser for the module). Keys only: Tab to the search box, type a
name, see the answers come as you type (no page load), Tab to Certican and press Enter, read the
card; with the network cut but for the local server (test_docs_offline.py's cut). On a phone (390x844) and a desktop: nothing scrolls sideways, the screenshots are drawn;
axe-core (npm, installed as the FHIR.js tests install theirs) finds no serious or critical
violation on the search page or the card.

The releases: the operator (with the import scope, sent as a header by the browser) opens the
releases, clicks "Sammenlign" and reads what the staged follow-up would change, then fills the
compare form with keys alone (Tab, a digit to pick, Enter on the button); the staged and the
refused release's pages and the migration page with its drill-downs have no serious or critical
violation either, and at 375 px the migration page's share labels stay beside their bars.

Chromium comes from tests/server/test_catalog_browser.py's fixture (apt-get when missing); without
chromium, node/npm or the registry the tests skip, except on CI, where they fail.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.npm import cache_folder, installing, npm_install, unavailable
from tests.server.conftest import CERTICAN_BRAND, served_store, write_followup
from tests.server.live import running
from tests.server.test_catalog_browser import DESKTOP, PHONE, chromium, read_png  # noqa: F401 (a fixture)
from tests.server.test_docs_offline import OFFLINE
from tests.server.tokens import Issuer

pytestmark = pytest.mark.slow
AXE_VERSION = "4.10.3"
STAGED_NAME = "Certican Disperg tab 0,1 mg (staged)"
NARROW_PHONE = (375, 812)  # the narrowest phone the pages are drawn for


@pytest.fixture(scope="module")
def axe(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> str:
    """axe-core's browser script (npm axe-core), installed into pytest's cache once."""
    root = cache_folder(pytestconfig, tmp_path_factory, f"axe-core-{AXE_VERSION}")
    script = root / "node_modules" / "axe-core" / "axe.min.js"
    with installing(root):
        if not script.is_file():
            npm_install(root, f"axe-core@{AXE_VERSION}", f"axe-core {AXE_VERSION}")
        if not script.is_file():
            unavailable(f"npm installed axe-core {AXE_VERSION}, but {script} is missing")
        return script.read_text()


class Browser:
    """One headless chromium and one tab, spoken to over the DevTools protocol (websockets)."""

    def __init__(self, binary: Path, profile: Path) -> None:
        from websockets.sync.client import connect  # uvicorn[standard]'s: a runtime dependency

        self.process = subprocess.Popen(
            [
                str(binary),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--remote-debugging-port=0",
                *OFFLINE,  # no network but 127.0.0.1: the pages must need nothing outside
                f"--user-data-dir={profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stderr is not None
        deadline = time.monotonic() + 30
        port = None
        while port is None and time.monotonic() < deadline:
            line = self.process.stderr.readline()
            found = re.search(r"DevTools listening on ws://127\.0\.0\.1:(\d+)/", line)
            port = found[1] if found else None
        assert port is not None, "chromium did not say where DevTools listens"
        pages = [t for t in httpx.get(f"http://127.0.0.1:{port}/json/list").json() if t["type"] == "page"]
        self.stack = contextlib.ExitStack()
        self.socket = self.stack.enter_context(
            connect(pages[0]["webSocketDebuggerUrl"], open_timeout=30, max_size=2**26)
        )
        self.ids = itertools.count(1)

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        self.socket.send(json.dumps({"id": ident, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv(timeout=30))
            if message.get("id") == ident:
                assert "error" not in message, (method, message["error"])
                result: dict[str, Any] = message["result"]
                return result

    def js(self, expression: str) -> Any:
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        assert "exceptionDetails" not in result, result["exceptionDetails"]
        return result["result"].get("value")

    def until(self, expression: str, seconds: float = 10.0) -> Any:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"never true: {expression}")

    def size(self, size: tuple[int, int]) -> None:
        width, height = size
        self.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )

    def go(self, url: str) -> None:
        self.send("Page.navigate", url=url)
        self.until(f"location.href === {json.dumps(url)} && document.readyState === 'complete'")

    def key(self, key: str, code: str, keycode: int, text: str = "") -> None:
        for kind in ("keyDown", "keyUp"):
            params: dict[str, Any] = {
                "type": kind,
                "key": key,
                "code": code,
                "windowsVirtualKeyCode": keycode,
            }
            if text and kind == "keyDown":
                params["text"] = text
            self.send("Input.dispatchKeyEvent", **params)

    def tab_to(self, test: str, most: int = 40) -> None:
        """Press Tab until `test` (JS, about document.activeElement) holds."""
        for _ in range(most):
            self.key("Tab", "Tab", 9)
            if self.js(f"(e => !!e && ({test}))(document.activeElement)"):
                return
        raise AssertionError(f"Tab never reached: {test}")

    def type(self, text: str) -> None:
        for char in text:
            self.send("Input.insertText", text=char)
            time.sleep(0.05)  # a person's pace: the debounce waits for the pause after the last key

    def screenshot(self, name: str, folder: Path) -> Path:
        data = base64.b64decode(self.send("Page.captureScreenshot", format="png")["data"])
        path = folder / f"{name}.png"
        path.write_bytes(data)
        keep = os.environ.get("GRUNNDATA_SCREENSHOTS")  # a folder: keep the screenshots to look at
        if keep:
            Path(keep).mkdir(parents=True, exist_ok=True)
            shutil.copy(path, Path(keep) / path.name)
        return path

    def close(self) -> None:
        self.stack.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


@dataclass(frozen=True)
class Site:
    url: str
    issuer: Issuer


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The real extract (release 1), its follow-up staged (2) and a refused SAFEST delivery (3)."""
    from grunndata.errors import DeliveryError
    from grunndata.importers.fest import import_fest
    from grunndata.importers.safest import import_safest
    from grunndata.server import create_app

    folder = tmp_path_factory.mktemp("pages-browser")
    engine = served_store(f"sqlite:///{folder / 'store.db'}")
    followup, _ = write_followup(folder, STAGED_NAME)
    assert import_fest(engine, followup, stage=True).release_id == 2
    bad = folder / "bad.json"
    products = [{"resourceType": "MedicinalProductDefinition", "id": f"bad-{n}", "name": n} for n in range(3)]
    bad.write_text(
        json.dumps(
            {"resourceType": "Bundle", "type": "collection", "entry": [{"resource": r} for r in products]}
        )
    )
    with pytest.raises(DeliveryError):
        import_safest(engine, bad)
    issuer = Issuer(folder)
    try:
        with running(create_app(engine, issuer.authenticator(), warm=False)) as url:
            yield Site(url, issuer)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def site(served: Site) -> str:
    return served.url


@pytest.fixture(scope="module")
def browser(chromium: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Browser]:  # noqa: F811
    b = Browser(chromium, tmp_path_factory.mktemp("pages-profile"))
    try:
        yield b
    finally:
        b.close()


def _fits(browser: Browser) -> None:
    width, inner = browser.js("[document.scrollingElement.scrollWidth, innerWidth]")
    assert width <= inner, f"the page is {width} px wide in a {inner} px window: it scrolls sideways"


def _drawn(path: Path, size: tuple[int, int]) -> None:
    image = read_png(path)
    assert (image.width, image.height) == size
    colours = image.colours()
    assert len(colours) > 20, f"only {len(colours)} colours: the page looks blank"
    white = colours.get((255, 255, 255), 0)
    assert white < image.width * image.height * 0.98, "nearly all white: nothing drawn"


def _serious(browser: Browser, axe: str) -> list[dict[str, Any]]:
    if not browser.js("typeof axe !== 'undefined'"):
        browser.js(axe + "; true")
    found = browser.js(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations"
        ".filter(v => v.impact === 'serious' || v.impact === 'critical')"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.map(n => n.target.join(' '))})))"
    )
    assert isinstance(found, list)
    return found


@pytest.mark.parametrize("size", [PHONE, DESKTOP], ids=["phone", "desktop"])
def test_a_person_types_a_name_sees_the_answers_as_they_type_and_opens_the_card_by_keyboard(
    browser: Browser, site: str, axe: str, size: tuple[int, int], tmp_path: Path
) -> None:
    browser.size(size)
    browser.go(f"{site}/legemidler")
    browser.js("window.samePage = true")  # gone if the answers came by loading a page
    browser.tab_to("e.id === 'q'")
    browser.type("certi")
    link = f'#treff a[href="/legemidler/{CERTICAN_BRAND}"]'
    # the answer to the whole word, as you type; on a busy machine a pause between two keys can
    # outlast the debounce, and the answer to "c" (which lists Certican too) comes first
    assert browser.until("window.samePage === true && location.search === '?q=certi'")
    assert (
        browser.js(f"document.querySelector({json.dumps(link)})?.textContent")
        == "Certican Disperg tab 0,1 mg"
    )
    _fits(browser)
    _drawn(browser.screenshot(f"legemidler-{size[0]}", tmp_path), size)
    assert _serious(browser, axe) == []
    browser.tab_to(f"e.getAttribute('href') === '/legemidler/{CERTICAN_BRAND}'")
    browser.key("Enter", "Enter", 13, "\r")
    browser.until(
        f"location.pathname === '/legemidler/{CERTICAN_BRAND}' && document.readyState === 'complete'"
    )
    assert browser.js("document.querySelector('h1').textContent") == "Certican Disperg tab 0,1 mg"
    assert browser.js("document.querySelector('[data-varenr=\"014884\"]') !== null")
    _fits(browser)
    _drawn(browser.screenshot(f"legemiddel-{size[0]}", tmp_path), size)
    assert _serious(browser, axe) == []
    browser.tab_to("(e.getAttribute('href') || '').startsWith('/legemidler/virkestoff/')")  # its substance
    browser.key("Enter", "Enter", 13, "\r")
    browser.until(
        "location.pathname.startsWith('/legemidler/virkestoff/') && document.readyState === 'complete'"
    )
    assert browser.js("document.querySelector('h1').textContent") == "Everolimus"
    _fits(browser)
    assert _serious(browser, axe) == []


def test_without_javascript_the_form_still_answers(browser: Browser, site: str) -> None:
    browser.send("Emulation.setScriptExecutionDisabled", value=True)
    try:
        browser.size(PHONE)
        browser.go(f"{site}/legemidler?q=everolimus")
        # the DOM is still readable over the protocol with page scripts off
        text = browser.send("Runtime.evaluate", expression="document.getElementById('treff').textContent")
        assert "Certican Disperg tab 0,1 mg" in str(text)
    finally:
        browser.send("Emulation.setScriptExecutionDisabled", value=False)


def test_axe_does_find_a_violation_when_one_is_planted(browser: Browser, site: str, axe: str) -> None:
    """The control: the same axe run finds an image without a text alternative (critical)."""
    browser.size(DESKTOP)
    browser.go(f"{site}/legemidler")
    browser.js(
        "document.querySelector('main').insertAdjacentHTML('beforeend', '<img src=\"/favicon.ico\">'); true"
    )
    assert "image-alt" in {v["id"] for v in _serious(browser, axe)}


@contextlib.contextmanager
def signed_in(browser: Browser, headers: dict[str, str]) -> Iterator[None]:
    """Every request of the browser carries `headers` (an operator's token) until the block ends."""
    browser.send("Network.enable")
    browser.send("Network.setExtraHTTPHeaders", headers=headers)
    try:
        yield
    finally:
        browser.send("Network.setExtraHTTPHeaders", headers={})


def click(browser: Browser, selector: str) -> None:
    """A mouse click in the middle of the element, as a person's."""
    browser.js(f"document.querySelector({json.dumps(selector)}).scrollIntoView({{block: 'center'}}); true")
    box = browser.js(
        f"(r => [r.left + r.width / 2, r.top + r.height / 2])(document.querySelector({json.dumps(selector)})"
        ".getBoundingClientRect())"
    )
    for kind in ("mousePressed", "mouseReleased"):
        browser.send("Input.dispatchMouseEvent", type=kind, x=box[0], y=box[1], button="left", clickCount=1)


def test_the_operator_opens_the_releases_and_compares_the_staged_one_with_the_active(
    browser: Browser, served: Site, axe: str, tmp_path: Path
) -> None:
    browser.size(PHONE)
    with signed_in(browser, served.issuer.headers("grunndata:import")):
        browser.go(f"{served.url}/leveranser")
        statuses = browser.js("[...document.querySelectorAll('tr[data-release]')].map(r => r.dataset.status)")
        assert statuses == ["failed", "staged", "active"]  # newest first
        _fits(browser)
        _drawn(browser.screenshot("leveranser-390", tmp_path), PHONE)
        assert _serious(browser, axe) == []
        click(browser, "#sammenlign")
        browser.until("location.pathname === '/leveranser/sammenlign' && document.readyState === 'complete'")
        assert browser.js("location.search") == "?fra=1&til=2"  # the staged one against the active one
        assert (
            browser.js("document.querySelector('h1').textContent") == "Hva leveranse 2 endrer fra leveranse 1"
        )
        counts = browser.js(
            "[...document.querySelectorAll('table[data-kind=catalogue] tr[data-name] td[data-change]')]"
            ".map(td => td.closest('tr').dataset.name + ' ' + td.dataset.change + ' ' + td.textContent)"
        )
        assert counts == [
            "Legemiddelpakning new 0",
            "Legemiddelpakning changed 1",
            "Legemiddelpakning expired 1",
        ]
        changed = browser.js(
            "[...document.querySelectorAll('section.entry[data-type=Legemiddelpakning][data-change=changed] tbody tr')]"
            ".map(tr => [...tr.cells].map(td => td.textContent))"
        )
        assert changed[-1] == ["Legemiddelpakning.NavnFormStyrke", "Certican Disperg tab 0,1 mg", STAGED_NAME]
        _fits(browser)
        _drawn(browser.screenshot("sammenlign-390", tmp_path), PHONE)
        browser.js("document.querySelector('section.entry[data-change=changed]').scrollIntoView(); true")
        _drawn(browser.screenshot("sammenlign-390-endret", tmp_path), PHONE)
        assert _serious(browser, axe) == []
        browser.size(DESKTOP)
        _compare_by_keyboard(browser, served.url)
        browser.go(f"{served.url}/leveranser/2")
        assert browser.js("document.getElementById('endringer').textContent") == "Hva den vil endre"
        _fits(browser)
        _drawn(browser.screenshot("leveranse-2-1280", tmp_path), DESKTOP)
        assert _serious(browser, axe) == []
    browser.go(f"{served.url}/leveranser/3")  # the refused delivery: open to all, every problem listed
    assert browser.js("document.querySelectorAll('ol.problems li').length") == 3
    _fits(browser)
    assert _serious(browser, axe) == []
    browser.go(f"{served.url}/leveranser/2")  # without the token the staged release is unknown
    assert browser.js("document.querySelector('h1').textContent") == "Fant ikke leveransen"
    with signed_in(browser, {"Authorization": "Bearer expired-or-garbage"}):
        browser.go(f"{served.url}/leveranser")  # a bad token: the 401 page, on the base template
        assert browser.js("document.querySelector('h1').textContent") == "Tokenet gjelder ikke"
        _fits(browser)
        assert _serious(browser, axe) == []


def _compare_by_keyboard(browser: Browser, url: str) -> None:
    """The compare form with keys alone: Tab to "Fra", type 2 to choose release 2, one Tab to
    "Til", type 1, one Tab to the button, Enter: what the active release changes from the staged
    one (the reverse of the default pair) is shown."""
    browser.go(f"{url}/leveranser")
    assert browser.js("[fra.value, til.value]") == ["1", "2"]  # the default pair
    browser.tab_to("e.id === 'fra'")
    browser.key("2", "Digit2", 50, "2")  # a closed select picks the option its text starts with
    browser.key("Tab", "Tab", 9)
    assert browser.js("document.activeElement.id") == "til"
    browser.key("1", "Digit1", 49, "1")
    assert browser.js("[fra.value, til.value]") == ["2", "1"]
    browser.key("Tab", "Tab", 9)
    assert browser.js("document.activeElement.id") == "sammenlign"
    assert browser.js("getComputedStyle(document.activeElement).outlineStyle") == "solid"  # focus is seen
    browser.key("Enter", "Enter", 13, "\r")
    browser.until("location.pathname === '/leveranser/sammenlign' && document.readyState === 'complete'")
    assert browser.js("location.search") == "?fra=2&til=1"
    assert browser.js("document.querySelector('h1').textContent") == "Hva leveranse 1 endrer fra leveranse 2"
    counts = browser.js(
        "[...document.querySelectorAll('table[data-kind=catalogue] tr[data-name] td[data-change]')]"
        ".map(td => td.closest('tr').dataset.name + ' ' + td.dataset.change + ' ' + td.textContent)"
    )
    assert counts == [
        "Legemiddelpakning new 1",
        "Legemiddelpakning changed 1",
        "Legemiddelpakning expired 0",
    ]


def test_the_migration_pages_bars_keep_their_labels_beside_them_on_a_phone(
    browser: Browser, served: Site, axe: str, tmp_path: Path
) -> None:
    browser.size(NARROW_PHONE)
    browser.go(f"{served.url}/migration")
    rows = browser.js(
        "[...document.querySelectorAll('.share')].map(s => {"
        " const b = s.querySelector('.bar').getBoundingClientRect(), p = s.querySelector('.pct').getBoundingClientRect();"
        " return {bar: [b.left, b.right, b.top, b.bottom, b.width], pct: [p.left, p.top, p.bottom], label: s.textContent.trim()}; })"
    )
    assert len(rows) > 5
    for row in rows:
        left, right, top, bottom, width = row["bar"]
        pct_left, pct_top, pct_bottom = row["pct"]
        assert row["label"] == "0 %"  # the real extract alone: no IDMP counterpart yet
        assert width >= 30, f"a bar squeezed to {width} px"
        assert pct_left >= right and pct_top < bottom and pct_bottom > top, f"the label wrapped: {row}"
    _fits(browser)
    _drawn(browser.screenshot("migration-375", tmp_path), NARROW_PHONE)
    browser.js("document.querySelector('table.coverage').scrollIntoView(); true")
    _drawn(browser.screenshot("migration-375-bars", tmp_path), NARROW_PHONE)
    assert _serious(browser, axe) == []
    click(browser, 'a[href="/migration/1/PackagedProductDefinition?del=fra-fest"]')
    browser.until(
        "location.pathname === '/migration/1/PackagedProductDefinition' && document.readyState === 'complete'"
    )
    assert browser.js("document.querySelectorAll('ul.behind li[data-id]').length") == 107
    _fits(browser)
    assert _serious(browser, axe) == []
