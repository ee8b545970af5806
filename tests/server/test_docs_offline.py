"""/docs and / in headless Chromium with no network but the local server: a health network may
reach nothing else, so Swagger UI's script and style must come from us (fastapi-offline's files),
not from a CDN.

The network is cut inside Chromium: every host name but 127.0.0.1 fails to resolve, and any other
address goes to a proxy that is not there. FastAPI's own /docs page (from a CDN) under the same
cut renders nothing: that shows the cut holds, so a page that renders under it needs nothing outside.

Chromium comes as for the other browser tests (tests/server/test_catalog_browser.py: Debian's,
installed with apt-get when missing and run as root, one test worker installing while the others
wait); where it cannot be had the tests skip, except on CI (CI set), where they fail.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.server.live import LiveServer, live_server, running
from tests.server.test_catalog_browser import chromium

# fixtures: `live`, a real uvicorn over the real extract; `chromium`, installed when missing
__all__ = ["chromium", "live_server"]

OFFLINE = (
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--proxy-server=http://127.0.0.1:9",  # the discard port: nothing answers there
    "--proxy-bypass-list=127.0.0.1",
)


def dom(chromium: Path, profile: Path, url: str) -> str:
    """The page at `url` as Chromium leaves it once its scripts have run, with the network cut."""
    done = subprocess.run(
        [
            str(chromium),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={profile}",
            *OFFLINE,
            "--virtual-time-budget=15000",  # time for the scripts to fetch /openapi.json and render it
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_docs_render_with_no_network(chromium: Path, live: LiveServer, tmp_path: Path) -> None:
    page = dom(chromium, tmp_path, live.url + "/docs")
    assert 'class="swagger-ui' in page  # Swagger UI ran...
    assert "opblock-summary-path" in page  # ...and listed the operations of our OpenAPI document
    assert 'data-path="/fhir/metadata"' in page
    assert 'data-path="/releases/{release}"' in page


def test_the_landing_page_renders_with_no_network(chromium: Path, live: LiveServer, tmp_path: Path) -> None:
    page = dom(chromium, tmp_path, live.url + "/")
    assert "<h1>Grunndata</h1>" in page
    for link in ("/legemidler", "/fhir/metadata", "/docs", "/catalog", "/migration", "/releases"):
        assert f'href="{link}"' in page


@pytest.fixture(scope="module")
def cdn_docs() -> Iterator[str]:
    """A FastAPI app with FastAPI's own /docs (Swagger UI from a CDN), and /health for `running`."""
    app = FastAPI()

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    with running(app) as url:
        yield url


def test_the_network_is_cut_a_cdn_page_renders_nothing(chromium: Path, cdn_docs: str, tmp_path: Path) -> None:
    page = dom(chromium, tmp_path, cdn_docs + "/docs")
    assert 'id="swagger-ui"' in page  # the page itself came from the local server...
    assert "opblock-summary-path" not in page  # ...but its script never did
    assert "swagger-ui-bundle.js" in page and "cdn.jsdelivr.net" in page
