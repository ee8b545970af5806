"""Catalogue files: the example loads as written, and every mistake is named with its file and line.

A file with any problem loads nothing: `load_catalogue` gives the whole list or raises.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from grunndata.catalog import CatalogueError, Service, check_unique, load_catalogue
from grunndata.catalog.files import MAX_BYTES

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "catalogue.example.yaml"
DMP = "Direktoratet for medisinske produkter (DMP)"

SAFEST = Service(
    id="dmp-safest-fhir",
    name="SAFEST FHIR API",
    description="DMP's IDMP data (SAFEST) as FHIR R4 with the NOMA profiles: medicinal products, packages, "
    "manufactured items and code systems, read-only, as a snapshot and as a delta with history.",
    owner="dmp",
    owner_name=DMP,
    tier="national",
    interface="fhir-r4",
    base_url="https://api.legemiddelverket.no/fhir-r4",
    resource_types=(
        "MedicinalProduct",
        "MedicinalProductPackaged",
        "MedicinalProductManufactured",
        "CodeSystem",
    ),
    operations=("read", "search-type", "history"),
    code_systems=("https://mpd.noma.no/codesystem/pharmaceutical-dose-form",),
    licence="NLOD 2.0",
    cadence="twice a month, in step with FEST",
    origin=f"{EXAMPLE}:25",
)
FEST_WEBSERVICE = Service(
    id="dmp-fest-webservice",
    name="FEST web service",
    description="The FEST M30 delivery over SOAP 1.2 (WCF FestService251): GetM30(filter, incrementalDate) "
    "gives a full extract, or the changes since a HentetDato for Rekvirent and Institusjon.",
    owner="dmp",
    owner_name=DMP,
    tier="national",
    interface="soap",
    base_url="https://fest.legemiddelverket.no/Fest/FestService251.svc",
    operations=("GetM30",),
    code_systems=("urn:oid:2.16.578.1.12.4.1.1.7421", "urn:oid:2.16.578.1.12.4.1.1.7448"),
    licence="NLOD 2.0",
    cadence="every 14 days",
    origin=f"{EXAMPLE}:42",
)
VENDOR_FEED = Service(
    id="vendor-a-shelf-codes",
    name="Vendor A shelf codes",
    description="Vendor A's shelf codes and handling notes per package, keyed on the national varenr, "
    "for the pharmacies that subscribe to them.",
    owner="vendor-a",
    owner_name="Vendor A AS",
    tier="supplementary",
    interface="fhir-r5",
    base_url="https://fhir.vendor-a.example/r5",
    resource_types=("Basic",),
    operations=("read", "search-type"),
    licence="commercial, per subscription",
    cadence="daily",
    status="test",
    origin=f"{EXAMPLE}:59",
)

GOOD = """\
services:
  - id: a
    name: A
    owner: dmp
    tier: national
    interface: fhir-r5
    base_url: https://a.example/fhir
"""


@pytest.fixture
def here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Work in a fresh folder, so the messages name files as `c.yaml`."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def problems(name: str, text: str | bytes) -> list[str]:
    path = Path(name)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(path)
    assert str(caught.value).startswith(caught.value.problems[0])
    return caught.value.problems


def test_the_example_file_declares_dmps_fhir_service_the_fest_web_service_and_a_vendors_feed() -> None:
    assert load_catalogue(EXAMPLE) == [SAFEST, FEST_WEBSERVICE, VENDOR_FEED]


def test_the_same_catalogue_as_json_loads_the_same_services(here: Path) -> None:
    data = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    Path("catalogue.json").write_text(json.dumps(data, indent=2), encoding="utf-8")
    origins = ["catalogue.json:3", "catalogue.json:29", "catalogue.json:48"]  # the `{` of each service
    expected = [
        replace(s, origin=o) for s, o in zip([SAFEST, FEST_WEBSERVICE, VENDOR_FEED], origins, strict=True)
    ]
    assert load_catalogue(Path("catalogue.json")) == expected


def test_json_escapes_that_yaml_lacks_load_and_omitted_fields_take_their_defaults(here: Path) -> None:
    """json.dumps writes a pill emoji as a surrogate pair and a slash may be written as \\/."""
    entry = {
        "id": "a",
        "name": "Pille \U0001f48a og \u00f8",
        "owner": "dmp",
        "tier": "national",
        "interface": "rest",
    }
    text = json.dumps({"services": [entry | {"base_url": "https://a.example/api"}]})
    text = text.replace("/api", "\\/api")
    assert "\\ud83d\\udc8a" in text and "\\/api" in text
    Path("c.json").write_text(text, encoding="utf-8")
    [service] = load_catalogue(Path("c.json"))
    assert service == Service(
        "a",
        "Pille \U0001f48a og \u00f8",
        "",
        "dmp",
        "dmp",
        "national",
        "rest",
        "https://a.example/api",
        origin="c.json:1",
    )


def test_a_latest_release_may_be_an_unquoted_date_and_is_kept_as_written(here: Path) -> None:
    Path("c.yaml").write_text(GOOD + "    latest_release: 2017-04-12T18:26:27.336Z\n", encoding="utf-8")
    [service] = load_catalogue(Path("c.yaml"))
    assert service.latest_release == "2017-04-12T18:26:27.336Z"
    Path("c.yaml").write_text(GOOD + "    latest_release: null\n", encoding="utf-8")
    assert load_catalogue(Path("c.yaml"))[0].latest_release is None


def test_a_byte_order_mark_and_an_empty_services_list_are_fine(here: Path) -> None:
    Path("c.yaml").write_bytes(b"\xef\xbb\xbfservices: []\n")
    assert load_catalogue(Path("c.yaml")) == []


def test_missing_required_fields_are_each_named_at_the_service(here: Path) -> None:
    text = """\
services:
  - id: dmp-fhir
    name: DMP
    owner: dmp
    tier: national
  - name: nameless
    owner: dmp
    tier: national
    interface: rest
    base_url: https://x.example/
"""
    assert problems("c.yaml", text) == [
        "c.yaml:2: the service `dmp-fhir` has no `interface`",
        "c.yaml:2: the service `dmp-fhir` has no `base_url`",
        "c.yaml:6: a service has no `id`",
    ]


def test_the_message_is_the_first_problem_and_how_many_more(here: Path) -> None:
    Path("c.yaml").write_text("services:\n  - id: a\n", encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(Path("c.yaml"))
    assert str(caught.value) == "c.yaml:2: the service `a` has no `name` (and 4 more problems)"
    assert len(caught.value.problems) == 5


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("    tier: nasjonal", "c.yaml:5: unknown tier `nasjonal`; use national, sector or supplementary"),
        (
            "    interface: graphql",
            "c.yaml:6: unknown interface `graphql`; use fhir-r5, fhir-r4, m30-file, soap or rest",
        ),
        ("    status: deprecated", "c.yaml:8: unknown status `deprecated`; use active, test or retired"),
        (
            "    base_url: ftp://a.example/fhir",
            "c.yaml:7: `base_url` `ftp://a.example/fhir` is not an absolute http or https URL",
        ),
        ("    base_url: /fhir", "c.yaml:7: `base_url` `/fhir` is not an absolute http or https URL"),
        ("    base_url: https://", "c.yaml:7: `base_url` `https://` is not an absolute http or https URL"),
        (
            "    base_url: https://a.example:99999/",
            "c.yaml:7: `base_url` `https://a.example:99999/` is not an absolute http or https URL",
        ),
        (
            "    base_url: https://a.example/f hir",
            "c.yaml:7: `base_url` `https://a.example/f hir` is not an absolute http or https URL",
        ),
        (
            "    base_url: https://me:secret@a.example/fhir",
            "c.yaml:7: `base_url` `https://me:secret@a.example/fhir` must not hold a user name or password",
        ),
        (
            "    id: DMP_FHIR",
            "c.yaml:2: the id `DMP_FHIR` is not allowed: use 1 to 64 lower-case letters, digits and hyphens, "
            "starting with a letter or digit",
        ),
        (
            "    owner: -dmp",
            "c.yaml:4: the owner `-dmp` is not allowed: use 1 to 63 lower-case letters, digits and hyphens, "
            "starting with a letter or digit",
        ),
        ("    name: ''", "c.yaml:3: `name` must not be empty"),
        (
            "    name: 42",
            "c.yaml:3: `name` must be text, not a number (put it in quotes if it is meant as text)",
        ),
        (
            "    name: no",
            "c.yaml:3: `name` must be text, not true/false (put it in quotes if it is meant as text)",
        ),
        ("    name: [A, B]", "c.yaml:3: `name` must be text, not a list"),
        ("    name: {first: A}", "c.yaml:3: `name` must be text, not a mapping"),
        ("    licence:", "c.yaml:8: `licence` must be text, not empty"),
        (
            "    licence: 2017-04-12",
            "c.yaml:8: `licence` must be text, not a date (put it in quotes if it is meant as text)",
        ),
        (
            "    resource_types: MedicinalProduct",
            "c.yaml:8: `resource_types` must be a list, not text (write [MedicinalProduct] for a list of one)",
        ),
        (
            "    operations: [read, 7]",
            "c.yaml:8: each of `operations` must be text, not a number (put it in quotes if it is meant as text)",
        ),
        ("    operations: [read, '  ']", "c.yaml:8: each of `operations` must not be empty"),
        (
            "    code_systems: [not a url]",
            "c.yaml:8: `code_systems` holds `not a url`, which is not an absolute URL or urn",
        ),
        ("    nmae: A", "c.yaml:8: unknown field `nmae` (did you mean `name`?)"),
        ("    origin: c.yaml:1", "c.yaml:8: unknown field `origin`"),
        ("+    name: B", "c.yaml:8: the field `name` is given twice (first on line 3)"),
        ("    1: one", "c.yaml:8: a field name must be text, not a number"),
        (
            "    name: !!python/name:os.system ''",
            "c.yaml:3: the tag `tag:yaml.org,2002:python/name:os.system` is not allowed; a catalogue is plain YAML",
        ),
        (
            "    name: !!python/object/apply:os.system [echo hi]",
            "c.yaml:3: `name` must be text, not a list tagged `tag:yaml.org,2002:python/object/apply:os.system` "
            "(tags are not allowed)",
        ),
    ],
)
def test_each_mistake_in_a_service_is_named_with_its_line(here: Path, line: str, expected: str) -> None:
    """A good service with the line of that field changed, or the line added (as line 8)."""
    field = line.split(":")[0].strip()
    lines = GOOD.splitlines()
    at = [n for n, old in enumerate(lines) if old.removeprefix("  -").split(":")[0].strip() == field]
    if at and not line.startswith("+"):
        lines[at[0]] = lines[at[0]][:4] + line[4:]
    else:
        lines.append(line.removeprefix("+"))
    assert problems("c.yaml", "\n".join(lines) + "\n") == [expected]


def test_a_service_with_several_mistakes_has_all_of_them_listed(here: Path) -> None:
    text = """\
services:
  - id: dmp fhir
    name: 3
    owner: dmp
    tier: nasjonal
    interface: fhir-r5
    base_url: www.example.no
    resource_types: Basic
"""
    assert problems("c.yaml", text) == [
        "c.yaml:2: the id `dmp fhir` is not allowed: use 1 to 64 lower-case letters, digits and hyphens, "
        "starting with a letter or digit",
        "c.yaml:3: `name` must be text, not a number (put it in quotes if it is meant as text)",
        "c.yaml:5: unknown tier `nasjonal`; use national, sector or supplementary",
        "c.yaml:7: `base_url` `www.example.no` is not an absolute http or https URL",
        "c.yaml:8: `resource_types` must be a list, not text (write [Basic] for a list of one)",
    ]


def test_a_duplicate_id_names_the_line_of_the_second_and_loads_nothing(here: Path) -> None:
    text = GOOD + GOOD.removeprefix("services:\n").replace("name: A", "name: A again")
    assert problems("c.yaml", text) == ["c.yaml:8: the id `a` is used twice (first on line 2)"]


def test_one_bad_service_among_good_ones_loads_nothing(here: Path) -> None:
    text = GOOD + GOOD.removeprefix("services:\n").replace("id: a", "id: b").replace("national", "regional")
    assert problems("c.yaml", text) == [
        "c.yaml:11: unknown tier `regional`; use national, sector or supplementary"
    ]


@pytest.mark.parametrize(
    ("name", "text", "expected"),
    [
        ("c.yaml", "", "c.yaml:1: the file is empty; a catalogue holds a `services:` list"),
        ("c.yaml", "# nothing yet\n\n", "c.yaml:1: the file is empty; a catalogue holds a `services:` list"),
        ("c.json", "  \n", "c.json:1: the file is empty; a catalogue holds a `services:` list"),
        (
            "c.yaml",
            "services:\n  - id: a\n   name: x\n",
            "c.yaml:3: this is not YAML: …",
        ),
        (
            "c.yaml",
            "services:\n\t- id: a\n",
            "c.yaml:2: this is not YAML: …",
        ),
        ("c.yaml", "services: [\n", "c.yaml:2: this is not YAML: …"),
        (
            "c.json",
            '{"services": [\n  {"id": "a",}\n]}\n',
            "c.json:2: this is not JSON: …",
        ),
        ("c.json", '{"services": []} {"more": 1}', "c.json:1: this is not JSON: …"),
        ("c.yaml", b"services:\n  - name: \xff\n", "c.yaml:2: the file is not UTF-8 text"),
        (
            "c.yaml",
            "services: []\n---\nservices: []\n",
            "c.yaml:2: a second YAML document begins here; a catalogue is one document",
        ),
        ("c.txt", GOOD, "c.txt:1: a catalogue file ends in .yaml, .yml or .json, not `.txt`"),
        (
            "c.yaml",
            "- id: a\n",
            "c.yaml:1: the top level must be a mapping with a `services` list, not a list",
        ),
        (
            "c.yaml",
            "just words\n",
            "c.yaml:1: the top level must be a mapping with a `services` list, not text",
        ),
        (
            "c.json",
            '["services"]',
            "c.json:1: the top level must be a mapping with a `services` list, not a list",
        ),
        (
            "c.yaml",
            "title: ours\n",
            "c.yaml:1: unknown top-level key `title`; a catalogue holds only `services`",
        ),
        ("c.yaml", "services: a, b\n", "c.yaml:1: `services` must be a list of services, not text"),
        ("c.yaml", "services:\n", "c.yaml:1: `services` must be a list of services, not empty"),
        ("c.yaml", "services:\n  - dmp-fhir\n", "c.yaml:2: a service must be a mapping of fields, not text"),
        (
            "c.yaml",
            "services:\n  - name: [\x07]\n",
            "c.yaml:2: this is not YAML: the character U+0007 is not allowed",
        ),
        (
            "c.yaml",
            "services:\n" + "".join(f"{'  ' * depth}-\n" for depth in range(1, 40)),
            "c.yaml:17: values are nested more than 16 deep here; a catalogue needs 3",
        ),
        (
            "c.yaml",
            "services: " + "[" * 100_000 + "]" * 100_000,  # libyaml's composer would crash on this
            "c.yaml:1: values are nested more than 16 deep here; a catalogue needs 3",
        ),
        (
            "c.json",
            '{"services": ' + "[" * 100_000 + "]" * 100_000 + "}",
            "c.json:1: values are nested more than 16 deep; a catalogue needs 3",
        ),
        (
            "c.yaml",
            "defaults: &d {owner: dmp}\nservices:\n  - *d\n",
            "c.yaml:3: aliases (*d) are not allowed in a catalogue; write the value out",
        ),
    ],
)
def test_a_file_that_is_not_a_catalogue_is_named_with_the_line(
    here: Path, name: str, text: str | bytes, expected: str
) -> None:
    found = problems(name, text)
    if expected.endswith("…"):  # our place and sentence; the reader's own words follow, whatever they are
        assert found[0].startswith(expected[:-1]) and len(found[0]) > len(expected), found
        assert len(found) == 1, found
        return
    assert found[0] == expected
    if "top-level key" in expected:
        assert found == [expected, "c.yaml:1: there is no `services` list"]
    else:
        assert found == [expected]


def test_a_json_mistake_is_named_with_its_line(here: Path) -> None:
    service = {"id": "a", "name": "A", "owner": "dmp", "tier": "sector", "resource_types": "Basic"}
    text = json.dumps({"services": [service]}, indent=2)
    assert problems("c.json", text) == [
        "c.json:8: `resource_types` must be a list, not text (write [Basic] for a list of one)",
        "c.json:3: the service `a` has no `interface`",
        "c.json:3: the service `a` has no `base_url`",
    ]


def test_a_file_over_5_mb_is_refused_before_it_is_read(here: Path) -> None:
    assert problems("c.yaml", b"services: []\n" + b"#" * MAX_BYTES) == [
        "c.yaml:1: the file is 5.0 MB; a catalogue file may be at most 5 MB"
    ]


def test_a_missing_file_is_named(here: Path) -> None:
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(Path("nowhere.yaml"))
    assert caught.value.problems == ["nowhere.yaml:1: cannot read the file (No such file or directory)"]


def test_an_id_used_in_two_files_or_by_one_of_ours_names_where(here: Path) -> None:
    ours = Service("fhir", "Ours", "", "dmp", DMP, "national", "fhir-r5", "https://grunndata.example/fhir")
    Path("one.yaml").write_text(GOOD, encoding="utf-8")
    Path("two.yaml").write_text(
        GOOD.replace("id: a", "id: fhir") + GOOD.removeprefix("services:\n"), encoding="utf-8"
    )
    with pytest.raises(CatalogueError) as reserved:  # our ids cannot be taken by a file at all
        load_catalogue(Path("two.yaml"))
    assert reserved.value.problems == [
        "two.yaml:2: the id `fhir` is reserved for grunndata's own services (catalog, code-systems, fhir, fhir-sector, m30, translate, sector-<owner>, supplementary-<owner>); choose another"
    ]
    Path("two.yaml").write_text(GOOD, encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        check_unique([ours, *load_catalogue(Path("one.yaml")), *load_catalogue(Path("two.yaml"))])
    assert caught.value.problems == ["two.yaml:2: the id `a` is already used at one.yaml:2"]


@pytest.mark.parametrize("taken", ["m30", "catalog", "sector-vendor-a", "supplementary-x"])
def test_the_ids_of_our_own_services_are_reserved(here: Path, taken: str) -> None:
    Path("c.yaml").write_text(GOOD.replace("id: a", f"id: {taken}"), encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(Path("c.yaml"))
    assert caught.value.problems == [
        f"c.yaml:2: the id `{taken}` is reserved for grunndata's own services (catalog, code-systems, fhir, fhir-sector, m30, translate, sector-<owner>, supplementary-<owner>); choose another"
    ]
