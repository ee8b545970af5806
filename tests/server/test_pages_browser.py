"""Find a drug and its card in a real browser, driven as a person would: Debian's chromium, headless,
over the DevTools protocol (one browser for the module). Keys only: Tab to the search box, type a
name, see the answers come as you type (no page load), Tab to Certican and press Enter, read the
card; with the network cut but for the local server (test_docs_offline.py's cut). On a phone (390x844) and a desktop: nothing scrolls sideways, the screenshots are drawn;
axe-core (npm, installed as the FHIR.js tests install theirs) finds no serious or critical
violation on the search page or the card.

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
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.npm import cache_folder, npm, unavailable
from tests.server.conftest import CERTICAN_BRAND, served_store
from tests.server.live import running
from tests.server.test_catalog_browser import DESKTOP, PHONE, chromium, read_png  # noqa: F401 (a fixture)
from tests.server.test_docs_offline import OFFLINE

pytestmark = pytest.mark.slow
AXE_VERSION = "4.10.3"


@pytest.fixture(scope="module")
def axe(pytestconfig: pytest.Config, tmp_path_factory: pytest.TempPathFactory) -> str:
    """axe-core's browser script (npm axe-core), installed into pytest's cache once."""
    root = cache_folder(pytestconfig, tmp_path_factory, f"axe-core-{AXE_VERSION}")
    script = root / "node_modules" / "axe-core" / "axe.min.js"
    if not script.is_file():
        npm(
            [
                "install",
                "--no-audit",
                "--no-fund",
                "--ignore-scripts",
                "--prefix",
                str(root),
                f"axe-core@{AXE_VERSION}",
            ],
            root,
            f"axe-core {AXE_VERSION}",
        )
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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from grunndata.server import create_app

    engine = served_store(f"sqlite:///{tmp_path_factory.mktemp('pages-browser') / 'store.db'}")
    try:
        with running(create_app(engine, warm=False)) as url:
            yield url
    finally:
        engine.dispose()


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
    assert (
        browser.until(f"document.querySelector({json.dumps(link)})?.textContent")
        == "Certican Disperg tab 0,1 mg"
    )
    assert browser.js("window.samePage === true && location.search") == "?q=certi"  # as you type
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
