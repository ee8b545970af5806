"""The catalogue page in a real browser: Debian's chromium, headless, on a phone and on a desktop.

A real uvicorn server serves a store with the real FEST extract, a vendor's supplementary data and
a catalogue file whose vendor service is down; `grunndata catalog probe` has run against it, so
the page shows services that are up, down and never probed. Chromium takes screenshots that the
test reads pixel by pixel (PNG decoded with zlib, no imaging library): the page is drawn, the
green and red status badges are on it, it is as wide as the window and nothing scrolls sideways.

Without /usr/bin/chromium the fixture installs it when it can (root with apt-get: a few minutes,
announced on the terminal; one test worker installs, the others wait for it); otherwise the tests
skip, except on CI (CI set), where they fail.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import struct
import subprocess
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.responses import HTMLResponse

from grunndata.catalog.ours import all_services
from grunndata.catalog.probe import probe_and_record
from tests.locks import APT_LOCK, held
from tests.server.live import running
from tests.server.test_catalog import PARTNERS, catalog_app, catalog_store

CHROMIUM = Path("/usr/bin/chromium")
PHONE = (390, 844)  # an iPhone 12-14 viewport in CSS pixels
PHONE_SCROLLED = (390, 2000)  # the same width, tall enough for the whole page
DESKTOP = (1280, 900)
UP_GREEN = (0x1A, 0x7F, 0x37)  # the page's --up, --down and --unknown colours
DOWN_RED = (0xCF, 0x22, 0x2E)
UNKNOWN_GREY = (0x6E, 0x77, 0x81)
STATE_COLOURS = (UP_GREEN, DOWN_RED, UNKNOWN_GREY)

pytestmark = pytest.mark.slow


# -- chromium ----------------------------------------------------------------------------------------


def _unavailable(message: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{message} (CI is set, so this is a failure)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def chromium(pytestconfig: pytest.Config) -> Path:
    """Debian's chromium; installed with apt-get when missing and this process runs as root."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        _unavailable(
            f"{CHROMIUM} is missing and cannot be installed here: run `apt-get install chromium` as root"
        )
    with held(APT_LOCK):  # another test worker may be installing it: wait, then look again
        if not CHROMIUM.exists():
            _install_chromium(apt, pytestconfig)
    return CHROMIUM


def _say(pytestconfig: pytest.Config, line: str) -> None:
    """`line` on the terminal, past pytest's capture: a test worker's standard error is the terminal's."""
    capture = pytestconfig.pluginmanager.get_plugin("capturemanager")
    with capture.global_and_fixture_disabled() if capture is not None else contextlib.nullcontext():
        print(line, file=sys.stderr, flush=True)


def _install_chromium(apt: str, pytestconfig: pytest.Config) -> None:
    _say(pytestconfig, f"\n{CHROMIUM} is missing: installing Debian's chromium with apt-get (a few minutes)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    # apt-get waits for another apt on this machine (it holds dpkg's lock) instead of failing at once
    install = [apt, "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-q", "chromium"]
    done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:  # perhaps the package lists were never fetched
        subprocess.run([apt, "update", "-q"], env=env, capture_output=True, text=True, timeout=600)
        done = subprocess.run(install, env=env, capture_output=True, text=True, timeout=1200)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        _unavailable(f"apt-get install chromium failed: {' / '.join(tail)}")
    if not CHROMIUM.exists():
        _unavailable(f"apt-get installed chromium, but {CHROMIUM} is still missing")
    _say(pytestconfig, f"installed {CHROMIUM}")


def _headless(chromium: Path, profile: Path, size: tuple[int, int], *args: str) -> str:
    """Run headless chromium at window `size`; its stdout."""
    command = [
        str(chromium),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--hide-scrollbars",
        f"--window-size={size[0]},{size[1]}",
        f"--user-data-dir={profile}",
        "--no-first-run",
        *args,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


# -- PNG, read with zlib -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    width: int
    height: int
    rows: list[bytes]  # RGB, three bytes a pixel

    def pixel(self, x: int, y: int) -> tuple[int, int, int]:
        r, g, b = self.rows[y][3 * x : 3 * x + 3]
        return r, g, b

    def colours(self) -> dict[tuple[int, int, int], int]:
        found: dict[tuple[int, int, int], int] = {}
        for row in self.rows:
            for i in range(0, len(row), 3):
                key = (row[i], row[i + 1], row[i + 2])
                found[key] = found.get(key, 0) + 1
        return found

    def near(self, x: int, y: int, colour: tuple[int, int, int], tolerance: int = 6) -> bool:
        return all(abs(a - b) <= tolerance for a, b in zip(self.pixel(x, y), colour, strict=True))

    def runs(self, y: int, colour: tuple[int, int, int]) -> list[tuple[int, int]]:
        """(first x, width) of each horizontal run of `colour` in row y."""
        found: list[tuple[int, int]] = []
        start = None
        for x in range(self.width + 1):
            inside = x < self.width and self.near(x, y, colour)
            if inside and start is None:
                start = x
            elif not inside and start is not None:
                found.append((start, x - start))
                start = None
        return found

    def badges(self, y: int, colour: tuple[int, int, int]) -> list[tuple[int, int]]:
        """Runs wide enough to hold a word ("up", "1 down"): a badge crossing row y."""
        return [(x, w) for x, w in self.runs(y, colour) if w >= 25]

    def card_edges(self, y: int) -> list[int]:
        """x of each card's coloured left edge crossing row y: a run 6-10 px wide of a state colour
        that carries on 30 px up and down (a badge is wider and not that tall)."""
        return sorted(
            x
            for colour in STATE_COLOURS
            for x, w in self.runs(y, colour)
            if 6 <= w <= 10
            and 30 <= y < self.height - 30
            and self.near(x, y - 30, colour)
            and self.near(x, y + 30, colour)
        )

    def edge_height(self, x: int, y: int, colour: tuple[int, int, int]) -> int:
        """How many rows the edge of `colour` through (x, y) runs."""
        top = bottom = y
        while top > 0 and self.near(x, top - 1, colour):
            top -= 1
        while bottom < self.height - 1 and self.near(x, bottom + 1, colour):
            bottom += 1
        return bottom - top + 1


def read_png(path: Path) -> Image:
    """Decode an 8-bit RGB or RGBA, non-interlaced PNG (what chromium writes) into RGB rows."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    pos, idat = 8, bytearray()
    width = height = channels = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos : pos + 8])
        chunk = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type, _, _, interlace = struct.unpack(">IIBBBBB", chunk)
            assert depth == 8 and colour_type in (2, 6) and interlace == 0, (depth, colour_type, interlace)
            channels = 3 if colour_type == 2 else 4
        elif kind == b"IDAT":
            idat += chunk
        elif kind == b"IEND":
            break
    raw = zlib.decompress(bytes(idat))
    stride = width * channels
    previous = bytearray(stride)
    rows: list[bytes] = []
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        _unfilter(kind, line, previous, channels)
        rgb = line if channels == 3 else bytearray(b for i, b in enumerate(line) if i % 4 != 3)
        rows.append(bytes(rgb))
        previous = line
    return Image(width, height, rows)


def _unfilter(kind: int, line: bytearray, up: bytearray, bpp: int) -> None:
    n = len(line)
    if kind == 1:  # Sub
        for i in range(bpp, n):
            line[i] = (line[i] + line[i - bpp]) & 0xFF
    elif kind == 2:  # Up
        for i in range(n):
            line[i] = (line[i] + up[i]) & 0xFF
    elif kind == 3:  # Average
        for i in range(n):
            left = line[i - bpp] if i >= bpp else 0
            line[i] = (line[i] + ((left + up[i]) >> 1)) & 0xFF
    elif kind == 4:  # Paeth
        for i in range(n):
            a = line[i - bpp] if i >= bpp else 0
            b = up[i]
            c = up[i - bpp] if i >= bpp else 0
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            predictor = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
            line[i] = (line[i] + predictor) & 0xFF
    else:
        assert kind == 0, f"unknown PNG filter {kind}"


# -- the server --------------------------------------------------------------------------------------

LAYOUT_CHECK = """<!doctype html><html><body style="margin:0">
<iframe id="page" src="{path}" style="width:{width}px;height:{height}px;border:0"></iframe>
<script>
document.getElementById("page").addEventListener("load", () => {{
  const root = document.getElementById("page").contentDocument.documentElement;
  const out = document.createElement("p");
  out.id = "layout";
  out.textContent = root.scrollWidth + " " + root.clientWidth;
  document.body.appendChild(out);
}});
</script></body></html>"""


def _with_layout_check(app: FastAPI) -> FastAPI:
    """A test-only page that loads a path in a phone-wide frame and writes down how wide it got."""

    @app.get("/_test/layout", include_in_schema=False)
    def layout(path: str, width: int, height: int) -> HTMLResponse:
        return HTMLResponse(
            LAYOUT_CHECK.format(path=path, width=width, height=height),
            headers={"Content-Security-Policy": "script-src 'unsafe-inline'"},  # its own script
        )

    app.router.routes.insert(0, app.router.routes.pop())  # ahead of everything else
    return app


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The server over the real extract + vendor-a's notes + partners.yaml, after one probe run."""
    folder = tmp_path_factory.mktemp("catalog-browser")
    engine = catalog_store(f"sqlite:///{folder / 'store.db'}")
    try:
        with running(_with_layout_check(catalog_app(engine, [PARTNERS]))) as url:
            services = all_services(engine, url, [PARTNERS])
            wanted = {"fhir", "supplementary-vendor-a", "vendor-a-notes"}
            results = probe_and_record(
                engine, [s for s in services if s.id in wanted], timeout=5.0, retries=0
            )
            assert {r.service_id: r.up for r in results} == {
                "fhir": True,
                "supplementary-vendor-a": True,
                "vendor-a-notes": False,
            }
            yield url
    finally:
        engine.dispose()


# -- the tests ---------------------------------------------------------------------------------------


def _shot(chromium: Path, tmp_path: Path, url: str, size: tuple[int, int], name: str) -> Image:
    path = tmp_path / f"{name}.png"
    _headless(chromium, tmp_path / "profile", size, f"--screenshot={path}", url)
    keep = os.environ.get("GRUNNDATA_SCREENSHOTS")  # a folder: keep the screenshots to look at
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(keep) / path.name)
    return read_png(path)


def _drawn(image: Image, size: tuple[int, int]) -> dict[tuple[int, int, int], int]:
    assert (image.width, image.height) == size
    colours = image.colours()
    assert len(colours) > 200, f"only {len(colours)} colours: the page looks blank"
    return colours


def test_on_a_phone_the_first_screen_shows_green_and_red_badges_in_one_column_without_sideways_scroll(
    chromium: Path, site: str, tmp_path: Path
) -> None:
    image = _shot(chromium, tmp_path, f"{site}/catalog", PHONE, "catalog-phone")
    _drawn(image, PHONE)
    # the summary near the top: a green "up" and a red "down" badge, side by side on one row
    summary = next(y for y in range(300) if image.badges(y, DOWN_RED))
    middle = summary + 2  # above the text in the badge
    (green_x, _), (red_x, red_width) = image.badges(middle, UP_GREEN)[0], image.badges(middle, DOWN_RED)[0]
    assert green_x < red_x and red_width >= 40, (green_x, red_x, red_width)
    # one column: every card edge lower down starts at the same x, near the left margin
    edges = {x for y in range(summary + 100, PHONE[1] - 40, 10) for x in image.card_edges(y)}
    assert len(edges) == 1 and 4 <= min(edges) <= 24, edges
    # nothing wider than the phone (measured by chromium in a 390 px frame, not assumed)
    layout = _headless(
        chromium,
        tmp_path / "profile",
        PHONE,
        "--dump-dom",
        "--virtual-time-budget=5000",
        f"{site}/_test/layout?path=/catalog&width={PHONE[0]}&height={PHONE[1]}",
    )
    found = re.search(r'<p id="layout">(\d+) (\d+)</p>', layout)
    assert found is not None, layout[-500:]
    assert (int(found[1]), int(found[2])) == (PHONE[0], PHONE[0])


def test_on_a_phone_the_down_vendor_service_is_a_card_edged_in_red(
    chromium: Path, site: str, tmp_path: Path
) -> None:
    image = _shot(
        chromium, tmp_path, f"{site}/catalog?owner=vendor-a", PHONE_SCROLLED, "catalog-phone-vendor-a"
    )
    _drawn(image, PHONE_SCROLLED)
    edges = [(y, x) for y in range(300, PHONE_SCROLLED[1] - 40, 10) for x in image.card_edges(y)]
    red = [(y, x) for y, x in edges if image.near(x, y, DOWN_RED)]
    green = [(y, x) for y, x in edges if image.near(x, y, UP_GREEN)]
    assert red and green, "no red card edge (vendor-a-notes) or no green one (its feed here)"
    y, x = red[0]
    assert image.edge_height(x, y, DOWN_RED) > 150  # the whole card, not a stray pixel
    assert green[0][0] < y  # the feed that is up comes first, then the vendor's own service


def test_on_a_desktop_the_cards_stand_in_three_columns(chromium: Path, site: str, tmp_path: Path) -> None:
    image = _shot(chromium, tmp_path, f"{site}/catalog", DESKTOP, "catalog-desktop")
    _drawn(image, DESKTOP)
    widest = max((image.card_edges(y) for y in range(250, DESKTOP[1] - 40, 10)), key=len)
    assert len(widest) == 3, widest
    gaps = (widest[1] - widest[0], widest[2] - widest[1])
    assert abs(gaps[0] - gaps[1]) <= 2 and min(gaps) > 300, widest  # evenly spaced, each a card wide


def test_the_rendered_dom_holds_a_card_per_service_with_its_state(
    chromium: Path, site: str, tmp_path: Path
) -> None:
    dom = _headless(chromium, tmp_path / "profile", PHONE, "--dump-dom", f"{site}/catalog")
    cards = dict(re.findall(r'<article class="card \w+" id="service-([a-z0-9-]+)" data-state="(\w+)"', dom))
    assert cards == {
        "fhir": "up",  # probed through the live server: its /fhir/metadata answered
        "supplementary-vendor-a": "up",
        "m30": "unknown",  # an M30 file: not probed
        "translate": "unknown",  # FHIR, but left out of this probe run
        "code-systems": "unknown",
        "catalog": "unknown",
        "dmp-safest": "unknown",
        "fest-web-service": "unknown",
        "vendor-a-notes": "down",  # 127.0.0.1:9 refuses the connection
    }
    assert "<script" not in dom.split("<body", 1)[1]
