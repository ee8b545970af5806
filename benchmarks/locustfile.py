"""Locust scenario: the lookups EPJ and PLL systems make against grunndata, weighted like real traffic.

    locust -f benchmarks/locustfile.py --headless -u 100 -r 10 -t 10m \\
        --host http://127.0.0.1:8000 --csv results/epj --only-summary [--html results/epj.html]

`--csv results/epj` writes `results/epj_stats.csv` (per request name: requests, failures, requests/s,
median and the 50/66/75/80/90/95/98/99/99.9/99.99/100 % response times in ms; an `Aggregated`
row), `_stats_history.csv`, `_failures.csv` and `_exceptions.csv`; `--html` adds a report page.
Without `--headless` locust serves its web UI on :8089 instead. Only locust is needed (no
grunndata code is imported), so vendors can run this file against any grunndata server.

- **Host**: locust's `--host`, the server's root (`/fhir` and `/fest/m30` are appended).
- **Token**: `GRUNNDATA_LOCUST_TOKEN`, sent as `Authorization: Bearer ...` when set (also on the
  sampling requests); national data needs none.
- **Data**: nothing is hard-coded. Once per locust process, when the test starts, the server is
  asked for packages (`PackagedProductDefinition?_count=500&_elements=identifier,packageFor`,
  following `next`, at most SAMPLE_PAGES pages: ids, varenr, GTIN, FEST ids, product ids) and
  products (`MedicinalProductDefinition?_count=500&_elements=classification,name`: ATC codes,
  name prefixes and fragments), and for the newest change (`_history?_count=1`). These requests
  are not in the stats; when they fail, or the server serves no packages or products, one failure
  named `sample` is recorded and locust stops with exit code 1.
- **Options** (each also an environment variable):
  `--grunndata-since INSTANT` / `GRUNNDATA_LOCUST_SINCE`: the change feed's `_since` (default one
  day before the newest `lastModified` the server reports);
  `--grunndata-weights kind=N,...` / `GRUNNDATA_LOCUST_WEIGHTS`: change some weights of the table
  below (0 turns a kind off), e.g. to match a vendor's own traffic;
  `--grunndata-wait MIN,MAX` / `GRUNNDATA_LOCUST_WAIT`: seconds each user waits between lookups,
  uniformly (default 0.5,1.5: a user is one client system doing about one lookup a second);
  `0` for no wait (saturation);
  `--grunndata-watch SECONDS` / `GRUNNDATA_LOCUST_WATCH`: how often `/health` is asked which
  releases are served (default 5; 0: never);
  `--grunndata-times FILE` / `GRUNNDATA_LOCUST_TIMES`: write every request to FILE (CSV: the epoch
  second it started, its name, ms, failed 0/1), for percentiles in a window of the run (the suite's
  mixed step: p99 from an import's start to just after the switch, against the same window without).
- **A new release during the run** (a vendor's run while a release is imported): the ids are drawn
  again when `/health` names other active releases than when they were drawn, or at the first 410
  explained below, whichever comes first (not in the stats; the old sample is kept if that fails).
  A 410 for a `read` or `everything` id is the right answer when a release newer than the id's
  sample expired it: its history (`GET /fhir/{type}/{id}/_history?_count=1`, asked once per id and
  sample, not in the stats) starts with a DELETE later than the newest change in the releases the
  sample was read from (the search's `_snapshot`: a store may hold a release its server does not
  serve yet). Such a 410 counts as a success and is counted in the log at the end; any other 410,
  and any 404 or 500, is a failure.

Every request is named by its kind (the `Name` column of the stats), below; the paging and
change-feed kinds also name their follow-up pages `<kind> next`. A request is a failure unless it
answers 200 (or 304, or the 410 of an id a newer release expired, above), and a search, `$everything` or history unless its body is a Bundle (a read
must be the resource type asked for, `$translate` a Parameters), checked on the body's first bytes.

| name | request |
|---|---|
| `read` | `GET /fhir/PackagedProductDefinition/{id}` |
| `varenr` | `GET /fhir/PackagedProductDefinition?identifier=http://dmp.no/fhir/NamingSystem/fest-varenummer\\|{varenr}` |
| `gtin` | `GET /fhir/PackagedProductDefinition?identifier=https://www.gs1.org/gtin\\|{gtin}` |
| `fest-id` | `GET /fhir/PackagedProductDefinition?identifier=http://dmp.no/fhir/NamingSystem/festLegemiddelPakning\\|ID_...` |
| `atc` | `GET /fhir/MedicinalProductDefinition?product-classification=http://www.whocc.no/atc\\|{code}` |
| `name` | `GET /fhir/MedicinalProductDefinition?name={first 3 to 5 letters of a name}` |
| `name-contains` | `GET /fhir/MedicinalProductDefinition?name:contains={4 to 6 letters from inside a word}` |
| `everything` | `GET /fhir/MedicinalProductDefinition/{id}/$everything` (a product that has packages) |
| `paging`, `paging next` | `GET /fhir/PackagedProductDefinition?_count=20`, then its `next` links: 3 pages in all |
| `history`, `history next` | `GET /fhir/_history?_since={instant}&_count=100`, then its `next` link once |
| `translate` | `GET /fhir/ConceptMap/$translate?system=...fest-varenummer&sourceCode={varenr}&targetSystem=https://www.gs1.org/gtin` |
| `m30` | `GET /fest/m30` with `Accept-Encoding: gzip`, streamed and thrown away (time = whole download) |
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import gevent
import requests
from locust import FastHttpUser, events
from locust.runners import MasterRunner, WorkerRunner

# Weight of each kind of lookup: the share of tasks a user picks it for (out of the total, 1,000).
WEIGHTS: dict[str, int] = {
    "read": 300,  # EPJ: the package behind a prescription line or a list entry, by the id it stored
    "varenr": 200,  # EPJ/PLL: the varenr on a prescription, in the medication list, on the shelf
    "gtin": 80,  # pharmacy and ward scanners: the barcode on the pack
    "fest-id": 60,  # systems that stored FEST's Legemiddelpakning Id before FHIR
    "atc": 60,  # decision support and substitution: the other products of an ATC code
    "name": 80,  # a prescriber types the start of a name ...
    "name-contains": 50,  # ... or a piece of it
    "everything": 30,  # the product card: packages, items, ingredients, substances, interactions (heavy)
    "translate": 60,  # varenr -> GTIN for systems between FEST and GS1
    "paging": 50,  # scrolling a long result list: 3 pages
    "history": 29,  # nightly syncs: what changed since the last sync (then the next page)
    "m30": 1,  # the e-prescription chain: the whole M30 file, rarely
}

VARENR = "http://dmp.no/fhir/NamingSystem/fest-varenummer"
GTIN = "https://www.gs1.org/gtin"
FEST_PAKNING = "http://dmp.no/fhir/NamingSystem/festLegemiddelPakning"
ATC = "http://www.whocc.no/atc"
PPD, MPD = "PackagedProductDefinition", "MedicinalProductDefinition"
SAMPLE_PAGES = 20  # at most 20 pages of 500 packages, and of 500 products, are sampled
PAGES = 3  # pages read by a `paging` task: the first and two `next`
OK = (200, 304)
SNAPSHOT = re.compile(r"[?&]_snapshot=(\d+)")
NEXT_LINK = re.compile(rb'"relation"\s*:\s*"next"\s*,\s*"url"\s*:\s*"([^"]+)"')

log = logging.getLogger("grunndata.locust")


@dataclass
class Sample:
    """What the server serves, drawn once per process: the lookups' ids and codes."""

    package_ids: list[str] = field(default_factory=list)
    varenr: list[str] = field(default_factory=list)
    gtin: list[str] = field(default_factory=list)
    fest_ids: list[str] = field(default_factory=list)
    product_ids: list[str] = field(default_factory=list)  # products some package is for
    atc: list[str] = field(default_factory=list)
    prefixes: list[str] = field(default_factory=list)
    fragments: list[str] = field(default_factory=list)
    since: str = ""
    newest: datetime | None = None  # the newest change the server reported when this was drawn
    releases: tuple[int, ...] = ()  # the releases /health said were active then (empty: no /health)


SAMPLE: Sample | None = None
IN_USE: dict[str, int] = {}  # the weights this run uses
WAIT: tuple[float, float] = (0.5, 1.5)
WATCH = 5.0  # seconds between two looks at /health for a new release (0: never look)
SINCE = ""  # --grunndata-since as given ("" : one day before the newest change)


@dataclass
class Switches:
    """What a release switch did to this run: answers that were right because of it, re-samplings."""

    expired_ok: int = 0  # 410s for an id a release newer than its sample expired: counted as right
    checked: dict[tuple[str, str, str], bool] = field(default_factory=dict)  # (type, id, sample) -> expired
    resamples: int = 0
    resampling: bool = False


SWITCHES = Switches()
TIMES: Any = None  # the file --grunndata-times writes each request to, when given


def _q(value: str) -> str:
    return quote(value, safe=":/")


# -- options and weights ---------------------------------------------------------------------------


@events.init_command_line_parser.add_listener
def _options(parser: Any) -> None:
    parser.add_argument(
        "--grunndata-since",
        type=str,
        env_var="GRUNNDATA_LOCUST_SINCE",
        default="",
        help="_since of the change feed (default: one day before the newest change the server reports)",
    )
    parser.add_argument(
        "--grunndata-weights",
        type=str,
        env_var="GRUNNDATA_LOCUST_WEIGHTS",
        default="",
        help="kind=N,... overriding weights of the table in the locustfile (0 turns a kind off)",
    )
    parser.add_argument(
        "--grunndata-wait",
        type=str,
        env_var="GRUNNDATA_LOCUST_WAIT",
        default="0.5,1.5",
        help="MIN,MAX seconds a user waits between lookups (0: none)",
    )
    parser.add_argument(
        "--grunndata-watch",
        type=float,
        env_var="GRUNNDATA_LOCUST_WATCH",
        default=5.0,
        help="seconds between two looks at /health for a new release, then re-sampled (0: never)",
    )
    parser.add_argument(
        "--grunndata-times",
        type=str,
        env_var="GRUNNDATA_LOCUST_TIMES",
        default="",
        help="write every request to this CSV file: epoch second it started, name, ms, failed (0/1)",
    )


def parse_weights(text: str) -> dict[str, int]:
    """WEIGHTS with `kind=N,...` applied; SystemExit naming the problem otherwise."""
    weights = dict(WEIGHTS)
    for item in filter(None, (part.strip() for part in text.split(","))):
        kind, _, number = item.partition("=")
        if kind.strip() not in weights or not number.strip().isdigit():
            raise SystemExit(
                f"--grunndata-weights: {item!r} is not kind=N with a kind of {', '.join(WEIGHTS)}"
            )
        weights[kind.strip()] = int(number)
    if not any(weights.values()):
        raise SystemExit("--grunndata-weights: every weight is 0")
    return weights


def parse_wait(text: str) -> tuple[float, float]:
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        values = []
    if len(values) == 1:
        values *= 2
    if len(values) != 2 or not 0 <= values[0] <= values[1]:
        raise SystemExit(f"--grunndata-wait: {text!r} is not MIN,MAX seconds (or one number)")
    return values[0], values[1]


def set_weights(weights: dict[str, int]) -> None:
    """The users' task list: each kind's task as many times as its weight."""
    IN_USE.clear()
    IN_USE.update(weights)
    EpjUser.tasks = [TASKS[kind] for kind, weight in weights.items() for _ in range(weight)]


@events.init.add_listener
def _configure(environment: Any, **_: Any) -> None:
    global WAIT, WATCH, SINCE, TIMES
    options = environment.parsed_options
    if options is None:  # run as a library, without locust's command line
        return
    set_weights(parse_weights(options.grunndata_weights))
    WAIT = parse_wait(options.grunndata_wait)
    if options.grunndata_watch < 0:
        raise SystemExit(f"--grunndata-watch: {options.grunndata_watch} is not a number of seconds >= 0")
    WATCH, SINCE = options.grunndata_watch, options.grunndata_since
    if options.grunndata_times and not isinstance(environment.runner, MasterRunner):
        TIMES = open(options.grunndata_times, "w", buffering=1 << 16)  # noqa: SIM115  (closed at quit)
        TIMES.write("started,name,ms,failed\n")
        environment.events.request.add_listener(_time_request)


def _time_request(name: str, response_time: float, exception: Any = None, **_: Any) -> None:
    """One line of --grunndata-times: when the request started (epoch s), its name, ms, failed."""
    if TIMES is not None:
        started = time.time() - response_time / 1000
        TIMES.write(f"{started:.3f},{name},{response_time:.2f},{int(exception is not None)}\n")


# -- sampling the server ---------------------------------------------------------------------------


def _headers() -> dict[str, str]:
    headers = {"Accept": "application/fhir+json"}
    if token := os.environ.get("GRUNNDATA_LOCUST_TOKEN"):
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _pages(session: requests.Session, url: str, limit: int) -> tuple[list[dict[str, Any]], str]:
    """The resources of a search, following `next` for at most `limit` pages, and the `_snapshot` its
    first page's self link names (the releases it was answered from; "" when it names none)."""
    resources: list[dict[str, Any]] = []
    snapshot = ""
    next_url: str | None = url
    for page in range(limit):
        if next_url is None:
            break
        response = session.get(next_url, timeout=120)
        if response.status_code != 200:
            raise RuntimeError(f"GET {next_url} answered {response.status_code}: {response.text[:300]}")
        bundle = response.json()
        resources += [entry["resource"] for entry in bundle.get("entry", []) if "resource" in entry]
        links = {link.get("relation"): link.get("url", "") for link in bundle.get("link", [])}
        if page == 0 and (found := SNAPSHOT.search(links.get("self", ""))):
            snapshot = found.group(1)
        next_url = links.get("next")
    return resources, snapshot


def _name_pieces(names: list[str], rng: random.Random) -> tuple[list[str], list[str]]:
    """Prefixes (3 to 5 letters a name starts with) and fragments (4 to 6 letters inside a word)."""
    prefixes, fragments = set(), set()
    for name in names:
        first = name.split()[0] if name.split() else ""
        if len(first) >= 3 and first[:3].isalpha():
            prefixes.add(first[: rng.randint(3, min(5, len(first)))].lower())
        for word in name.split():
            if word.isalpha() and len(word) >= 4:
                size = rng.randint(4, min(6, len(word)))
                start = rng.randint(0, len(word) - size)
                fragments.add(word[start : start + size].lower())
    return sorted(prefixes), sorted(fragments)


def _instant(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def active_releases(session: requests.Session, host: str) -> tuple[int, ...]:
    """The ids of the releases `/health` says are served (empty when it does not answer them)."""
    try:
        response = session.get(host.rstrip("/") + "/health", timeout=30)
        if response.status_code != 200:
            return ()
        return tuple(sorted(int(r["id"]) for r in response.json().get("active_releases", [])))
    except (requests.RequestException, ValueError, KeyError, TypeError):
        return ()


def sample(host: str, since: str = "") -> Sample:
    """Ids and codes from the server at `host`; RuntimeError when it has no packages or products."""
    base = host.rstrip("/") + "/fhir"
    found = Sample()
    with requests.Session() as session:
        session.headers.update(_headers())
        found.releases = active_releases(session, host)  # before the data: a switch meanwhile is seen
        query = "_count=500&_elements=identifier,packageFor"
        packages, snapshot = _pages(session, f"{base}/{PPD}?{query}", SAMPLE_PAGES)
        products, _ = _pages(session, f"{base}/{MPD}?_count=500&_elements=classification,name", SAMPLE_PAGES)
        # The newest change in the releases the packages were read from (the search's `_snapshot`:
        # the store may hold a newer release that the server does not serve yet). The history is
        # newest first; a DELETE entry has no resource, but a lastModified.
        url = f"{base}/_history?_count=1" + (f"&_snapshot={snapshot}" if snapshot else "")
        response = session.get(url, timeout=120)
        if response.status_code != 200:
            raise RuntimeError(f"GET {url} answered {response.status_code}")
        entries = response.json().get("entry", [])
        newest = [entry.get("response", {}).get("lastModified", "") for entry in entries]
    product_refs: set[str] = set()
    for package in packages:
        found.package_ids.append(package["id"])
        values = {i.get("system"): i.get("value") for i in package.get("identifier", []) if i.get("value")}
        if VARENR in values:
            found.varenr.append(values[VARENR])
        if GTIN in values:
            found.gtin.append(values[GTIN])
        if FEST_PAKNING in values:
            found.fest_ids.append(values[FEST_PAKNING])
        for ref in package.get("packageFor", []):
            kind, _, rid = ref.get("reference", "").rpartition("/")
            if kind.endswith(MPD) and rid:
                product_refs.add(rid)
    names: list[str] = []
    atc: set[str] = set()
    for product in products:
        names += [n["productName"] for n in product.get("name", []) if n.get("productName")]
        for classification in product.get("classification", []):
            atc.update(c["code"] for c in classification.get("coding", []) if c.get("system") == ATC)
    found.product_ids = sorted(product_refs) or [p["id"] for p in products]
    found.atc = sorted(atc)
    found.prefixes, found.fragments = _name_pieces(names, random.Random(0))
    if not found.package_ids or not products:
        raise RuntimeError(f"the server at {host} serves no packages or no products: nothing to look up")
    instant = next((value for value in newest if value), None)
    if instant is None:
        raise RuntimeError(f"{base}/_history?_count=1 names no change")
    found.newest = _instant(instant)
    if since:
        found.since = since
    else:
        when = found.newest - timedelta(days=1)
        found.since = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    return found


def _needs(sample: Sample) -> dict[str, list[str]]:
    """The sampled values each kind draws from (kinds not listed need nothing)."""
    return {
        "read": sample.package_ids,
        "varenr": sample.varenr,
        "gtin": sample.gtin,
        "fest-id": sample.fest_ids,
        "atc": sample.atc,
        "name": sample.prefixes,
        "name-contains": sample.fragments,
        "everything": sample.product_ids,
        "translate": sample.varenr,
    }


@events.test_start.add_listener
def _sample(environment: Any, **_: Any) -> None:
    """Sample the server once per process (not on a distributed run's master, which sends nothing)."""
    global SAMPLE
    if isinstance(environment.runner, MasterRunner) or SAMPLE is not None:
        return
    host = environment.host or ""
    started = time.perf_counter()
    try:
        if not host:
            raise RuntimeError("no --host: give the server's root, e.g. --host http://127.0.0.1:8000")
        found = sample(host, SINCE)
        empty = [kind for kind, values in _needs(found).items() if not values and IN_USE.get(kind)]
        if empty:
            log.warning("the server gives nothing for %s: those lookups are left out", ", ".join(empty))
            set_weights({kind: 0 if kind in empty else weight for kind, weight in IN_USE.items()})
        if not EpjUser.tasks:
            raise RuntimeError(f"nothing left to look up ({', '.join(empty)} have no data)")
    except Exception as e:  # noqa: BLE001  (any fault here means there is nothing to test)
        log.error("sampling the server failed: %s", e)
        environment.events.request.fire(
            request_type="GET",
            name="sample",
            response_time=(time.perf_counter() - started) * 1000,
            response_length=0,
            exception=e,
            context={},
        )
        environment.process_exit_code = 1
        if environment.runner is not None:
            gevent.spawn_later(0.1, environment.runner.quit)
        return
    log.info(
        "sampled %d packages (%d varenr, %d GTIN, %d FEST ids), %d products, %d ATC codes, "
        "%d name prefixes, %d fragments in %.1f s; change feed since %s",
        len(found.package_ids),
        len(found.varenr),
        len(found.gtin),
        len(found.fest_ids),
        len(found.product_ids),
        len(found.atc),
        len(found.prefixes),
        len(found.fragments),
        time.perf_counter() - started,
        found.since,
    )
    SAMPLE = found
    if WATCH > 0 and found.releases:
        gevent.spawn(_watch, host)


def _watch(host: str) -> None:
    """Look at /health every WATCH seconds; when the served releases changed, sample the server again.

    A client learns of a new release from /health (`active_releases`); the lookups then draw from
    what the new release serves, as a vendor's system would after its nightly sync."""
    with requests.Session() as session:
        session.headers.update(_headers())
        while True:
            gevent.sleep(WATCH)
            now = active_releases(session, host)
            if SAMPLE is not None and now and now != SAMPLE.releases:
                resample(host, f"releases {_ids(SAMPLE.releases)} -> {_ids(now)}")


def _ids(releases: tuple[int, ...]) -> str:
    return ",".join(map(str, releases)) or "?"


def resample(host: str, why: str) -> None:
    """Draw a new sample (one at a time; a failure keeps the old one, and is logged)."""
    global SAMPLE
    if SWITCHES.resampling:
        return
    SWITCHES.resampling = True
    started = time.perf_counter()
    try:
        found = sample(host, SINCE)
    except Exception as e:  # noqa: BLE001  (the old sample is still a fair one to draw from)
        log.warning("%s: sampling again failed, the old sample is kept: %s", why, e)
        return
    finally:
        SWITCHES.resampling = False
    empty = [kind for kind, values in _needs(found).items() if not values and IN_USE.get(kind)]
    if empty:
        log.warning("%s: the new sample has nothing for %s, the old one is kept", why, ", ".join(empty))
        return
    SAMPLE = found
    SWITCHES.resamples += 1
    log.info(
        "%s: sampled again, %d packages, %d products (releases %s) in %.1f s",
        why,
        len(found.package_ids),
        len(found.product_ids),
        _ids(found.releases),
        time.perf_counter() - started,
    )


def expired_after(host: str, rtype: str, rid: str, drawn: Sample) -> bool:
    """Whether `rtype/rid` (drawn from `drawn`) was expired by a release newer than that sample: its
    history's newest entry is a DELETE later than the newest change the sample saw. Asked once per
    id and sample, outside the stats."""
    key = (rtype, rid, drawn.since + str(drawn.newest))
    if key not in SWITCHES.checked:
        url = f"{host.rstrip('/')}/fhir/{rtype}/{quote(rid, safe='')}/_history?_count=1"
        expired = False
        try:
            response = requests.get(url, headers=_headers(), timeout=60)
            entries = response.json().get("entry", []) if response.status_code == 200 else []
            newest = entries[0] if entries else {}
            when = newest.get("response", {}).get("lastModified", "")
            expired = (
                newest.get("request", {}).get("method") == "DELETE"
                and bool(when)
                and drawn.newest is not None
                and _instant(when) > drawn.newest
            )
        except (requests.RequestException, ValueError, AttributeError, TypeError) as e:
            log.warning("could not ask the history of %s/%s: %s", rtype, rid, e)
        SWITCHES.checked[key] = expired
    return SWITCHES.checked[key]


@events.test_stop.add_listener
def _switch_report(environment: Any, **_: Any) -> None:
    if SWITCHES.expired_ok or SWITCHES.resamples:
        log.info(
            "%d answers were a 410 for an id a newer release expired (counted as right); sampled again %d times",
            SWITCHES.expired_ok,
            SWITCHES.resamples,
        )


@events.quitting.add_listener
def _last_csv_tick(environment: Any, **_: Any) -> None:
    """Let locust's CSV writer write the final stats once more before it closes its files.

    It rewrites `_stats.csv` once a second and is not called at shutdown, so without this the
    file lacks the last second of the run (its failures too). After a time limit the users are
    stopped already; after SIGTERM they are stopped here, so the file and the summary agree.
    """
    options = environment.parsed_options
    runner = environment.runner
    if options is None or not getattr(options, "csv_prefix", None) or isinstance(runner, WorkerRunner):
        return
    if runner is not None:
        runner.stop()
    gevent.sleep(1.2)
    if TIMES is not None:
        TIMES.flush()


# -- the user ----------------------------------------------------------------------------------------


class EpjUser(FastHttpUser):
    """One EPJ or PLL system doing lookups, one at a time, with a pause between them."""

    def wait_time(self) -> float:
        return random.uniform(*WAIT)

    def on_start(self) -> None:
        while SAMPLE is None:  # sampling failed and locust is quitting (see _sample): wait to be stopped
            gevent.sleep(1)
        if token := os.environ.get("GRUNNDATA_LOCUST_TOKEN"):
            self.client.auth_header = f"Bearer {token}"

    @property
    def data(self) -> Sample:
        """The newest sample (a new one is drawn when the served releases change)."""
        assert SAMPLE is not None
        return SAMPLE

    def _get(
        self, path: str, name: str, expect: str, gone: tuple[str, str, Sample] | None = None
    ) -> bytes | None:
        """GET `path` as request `name`; the body when it answered 200 (or 304) with `expect`.

        `gone` is (type, id, the sample the id was drawn from) for a request of one resource: its 410
        is the right answer when a release newer than the sample expired it (`expired_after`), and a
        failure otherwise; any other status is a failure."""
        with self.client.get(path, name=name, catch_response=True) as response:
            if response.status_code == 410 and gone is not None:
                if expired_after(self.host, *gone):
                    response.success()
                    SWITCHES.expired_ok += 1
                    if not SWITCHES.resampling and gone[2] is SAMPLE:  # the watch has not seen it yet
                        gevent.spawn(resample, self.host, f"{gone[0]}/{gone[1]} expired")
                else:
                    response.failure(f"HTTP 410 for {gone[0]}/{gone[1]}, which no newer release expired")
                return None
            if response.status_code not in OK:
                error = getattr(response, "error", None)
                reason = f"HTTP {response.status_code}" if response.status_code else str(error)
                response.failure(reason)
                return None
            body = response.content or b""
            if response.status_code == 200 and f'"resourceType":"{expect}"'.encode() not in body[:100]:
                response.failure(f"not a {expect}: {body[:100]!r}")
                return None
            return body

    def _follow(self, body: bytes | None, name: str, pages: int) -> None:
        """Follow the `next` link of `body` for at most `pages` more pages."""
        for _ in range(pages):
            if body is None:
                return
            found = NEXT_LINK.search(body)
            if found is None:
                if b'"next"' not in body:
                    return
                links = json.loads(body).get("link", [])
                url = next((link["url"] for link in links if link.get("relation") == "next"), None)
                if url is None:
                    return
            else:
                url = found.group(1).decode()
            body = self._get(url, name, "Bundle")

    def read(self) -> None:
        data = self.data
        rid = random.choice(data.package_ids)
        self._get(f"/fhir/{PPD}/{rid}", "read", PPD, gone=(PPD, rid, data))

    def varenr(self) -> None:
        value = random.choice(self.data.varenr)
        self._get(f"/fhir/{PPD}?identifier={_q(VARENR + '|' + value)}", "varenr", "Bundle")

    def gtin(self) -> None:
        value = random.choice(self.data.gtin)
        self._get(f"/fhir/{PPD}?identifier={_q(GTIN + '|' + value)}", "gtin", "Bundle")

    def fest_id(self) -> None:
        value = random.choice(self.data.fest_ids)
        self._get(f"/fhir/{PPD}?identifier={_q(FEST_PAKNING + '|' + value)}", "fest-id", "Bundle")

    def atc(self) -> None:
        code = random.choice(self.data.atc)
        self._get(f"/fhir/{MPD}?product-classification={_q(ATC + '|' + code)}", "atc", "Bundle")

    def name_prefix(self) -> None:
        self._get(f"/fhir/{MPD}?name={_q(random.choice(self.data.prefixes))}", "name", "Bundle")

    def name_contains(self) -> None:
        fragment = random.choice(self.data.fragments)
        self._get(f"/fhir/{MPD}?name:contains={_q(fragment)}", "name-contains", "Bundle")

    def everything(self) -> None:
        data = self.data
        rid = random.choice(data.product_ids)
        self._get(f"/fhir/{MPD}/{rid}/$everything", "everything", "Bundle", gone=(MPD, rid, data))

    def paging(self) -> None:
        body = self._get(f"/fhir/{PPD}?_count=20", "paging", "Bundle")
        self._follow(body, "paging next", PAGES - 1)

    def history(self) -> None:
        body = self._get(f"/fhir/_history?_since={_q(self.data.since)}&_count=100", "history", "Bundle")
        self._follow(body, "history next", 1)

    def translate(self) -> None:
        value = random.choice(self.data.varenr)
        path = (
            f"/fhir/ConceptMap/$translate?system={_q(VARENR)}&sourceCode={_q(value)}&targetSystem={_q(GTIN)}"
        )
        self._get(path, "translate", "Parameters")

    def m30(self) -> None:
        """The whole M30 file, gzip as it comes, read in chunks and thrown away; timed to the last byte."""
        started = time.perf_counter()
        headers = {"Accept-Encoding": "gzip"}
        with self.client.get(
            "/fest/m30", name="m30", headers=headers, stream=True, catch_response=True
        ) as response:
            size = 0
            try:
                if getattr(response, "_response", None) is not None:
                    for chunk in response.iter_content(65536, decode_content=False):
                        size += len(chunk)
            except Exception as e:  # noqa: BLE001  (a broken download is a failed request)
                response.failure(f"download broke after {size} bytes: {e}")
            response.request_meta["response_time"] = (time.perf_counter() - started) * 1000
            response.request_meta["response_length"] = size
            if response.status_code not in OK:
                error = getattr(response, "error", None)
                response.failure(f"HTTP {response.status_code}" if response.status_code else str(error))


TASKS: dict[str, Callable[[EpjUser], None]] = {
    "read": EpjUser.read,
    "varenr": EpjUser.varenr,
    "gtin": EpjUser.gtin,
    "fest-id": EpjUser.fest_id,
    "atc": EpjUser.atc,
    "name": EpjUser.name_prefix,
    "name-contains": EpjUser.name_contains,
    "everything": EpjUser.everything,
    "paging": EpjUser.paging,
    "history": EpjUser.history,
    "translate": EpjUser.translate,
    "m30": EpjUser.m30,
}
set_weights(WEIGHTS)
