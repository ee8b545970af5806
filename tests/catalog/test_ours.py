"""Our own services come from what the store serves: the real FEST extract (with a Kodeverk), a
hospital pharmacy's sector data and a vendor's supplementary data, on SQLite and PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from grunndata.catalog import CatalogueError, Service, all_services, load_catalogue, own_services, search
from grunndata.importers.fest import import_fest
from grunndata.importers.tiered import import_tiered
from grunndata.store import instant, list_releases
from tests.catalog.test_files import EXAMPLE, GOOD
from tests.conftest import REAL_HENTET_DATO
from tests.importers.test_tiered import DATA, national_delivery  # noqa: F401  (a fixture)

BASE = "https://grunndata.example.no"
DMP = "Direktoratet for medisinske produkter (DMP)"
NLOD, NATIONAL_CADENCE = "NLOD 2.0", "every 14 days (FEST), twice a month (SAFEST)"
FHIR_OPERATIONS = ("read", "vread", "search-type", "history")
NATIONAL_TYPES = (
    "AdministrableProductDefinition",
    "Basic",
    "ClinicalUseDefinition",
    "CodeSystem",
    "Ingredient",
    "ManufacturedItemDefinition",
    "MedicinalProductDefinition",
    "PackagedProductDefinition",
    "RegulatedAuthorization",  # each brand's holder, from its Produsent
    "SubstanceDefinition",
)
NATIONAL_RELEASE = f"release 1, HentetDato {REAL_HENTET_DATO}"


def ours(service_id: str, name: str, description: str, **fields: object) -> Service:
    """One of our national services as expected: DMP's, open data, at the FHIR base."""
    defaults: dict[str, object] = {
        "owner": "dmp",
        "owner_name": DMP,
        "tier": "national",
        "interface": "fhir-r5",
    }
    defaults |= {"base_url": f"{BASE}/fhir", "licence": NLOD, "cadence": NATIONAL_CADENCE}
    return Service(id=service_id, name=name, description=description, **(defaults | fields))  # type: ignore[arg-type]


FHIR = ours(
    "fhir",
    "Grunndata FHIR R5 API",
    "The national medicinal-product data (FEST and SAFEST/IDMP) as FHIR R5: read, history and the change feed, "
    "search with paging and includes, $everything for a product. Open to all.",
    resource_types=NATIONAL_TYPES,
    operations=(*FHIR_OPERATIONS, "$everything"),
    latest_release=NATIONAL_RELEASE,
)
M30 = ours(
    "m30",
    "FEST M30 export",
    "The national data written back as a FEST M30 delivery, valid against the XSD: the whole catalogue, "
    "or only what changed since a HentetDato (?since=).",
    interface="m30-file",
    base_url=f"{BASE}/fest/m30",
    latest_release=REAL_HENTET_DATO,
)
TRANSLATE = ours(
    "translate",
    "FEST and IDMP code translation",
    "ConceptMap/$translate between FEST ids and codes and their IDMP counterparts, with the maps themselves "
    "to read and search.",
    resource_types=("ConceptMap",),
    operations=("read", "search-type", "$translate"),
    latest_release=NATIONAL_RELEASE,
)
CODE_SYSTEMS = ours(
    "code-systems",
    "National code systems",
    "The FEST code systems (Kodeverk) as CodeSystem resources, with CodeSystem/$lookup, $validate-code and "
    "ValueSet/$expand.",
    resource_types=("CodeSystem",),
    operations=("read", "search-type", "$lookup", "$validate-code", "$expand"),
    code_systems=("urn:oid:2.16.578.1.12.4.1.1.7448",),  # legemiddelform, the Kodeverk added to the extract
    latest_release=NATIONAL_RELEASE,
)
CATALOG = ours(
    "catalog",
    "Grunndata service catalogue",
    "Every grunndata service, ours and others', in all three tiers: FHIR Endpoint and Organization resources, "
    "/catalog.json, and a page for people at /catalog.",
    resource_types=("Endpoint", "Organization"),
    operations=("read", "search-type"),
    cadence="live: changes with every release and catalogue file",
)


@pytest.fixture
def store(engine: Engine, national_delivery: Path) -> Engine:  # noqa: F811
    """National data (release 1), a hospital pharmacy's sector data (2) and vendor A's CSV (3)."""
    import_fest(engine, national_delivery)
    import_tiered(
        engine,
        DATA / "sykehusapotek-endose.json",
        tier="sector",
        owner="sykehusapotekene",
        owner_name="Sykehusapotekene HF",
    )
    import_tiered(
        engine,
        DATA / "farmasi-hyllekoder.csv",
        tier="supplementary",
        owner="vendor-a",
        owner_name="Vendor A AS",
    )
    return engine


def activated(engine: Engine, release_id: int) -> str:
    [release] = [r for r in list_releases(engine) if r.id == release_id]
    return f"release {release_id}, activated {instant(release.activated_at)}"


def test_our_services_are_registered_from_what_the_store_serves(store: Engine) -> None:
    sector_release, vendor_release = activated(store, 2), activated(store, 3)
    assert own_services(store, BASE + "/") == [
        FHIR,
        ours(
            "fhir-sector",
            "Grunndata FHIR R5 API, sector data",
            "Value-added data of the health sector's data owners, linked to the national ids, served beside the "
            "national data in the same FHIR R5 API to clients entitled to sector data.",
            tier="sector",
            resource_types=("Basic", "PackagedProductDefinition"),
            operations=FHIR_OPERATIONS,
            licence="as agreed with each sector data owner",
            cadence="as agreed with each sector data owner",
            latest_release=sector_release,
        ),
        ours(
            "sector-sykehusapotekene",
            "Sykehusapotekene HF: sector data",
            "Sykehusapotekene HF's sector data, keyed on the national ids, served in the FHIR R5 API "
            "(meta.source https://grunndata.no/owner/sykehusapotekene) to the clients entitled to it.",
            owner="sykehusapotekene",
            owner_name="Sykehusapotekene HF",
            tier="sector",
            resource_types=("Basic", "PackagedProductDefinition"),
            operations=FHIR_OPERATIONS,
            licence="as agreed with Sykehusapotekene HF",
            cadence="as agreed with Sykehusapotekene HF",
            latest_release=sector_release,
        ),
        ours(
            "supplementary-vendor-a",
            "Vendor A AS: supplementary data",
            "Vendor A AS's supplementary data, keyed on the national ids, served in the FHIR R5 API "
            "(meta.source https://grunndata.no/owner/vendor-a) to the clients entitled to it.",
            owner="vendor-a",
            owner_name="Vendor A AS",
            tier="supplementary",
            resource_types=("Basic",),
            operations=FHIR_OPERATIONS,
            licence="as agreed with Vendor A AS",
            cadence="as agreed with Vendor A AS",
            latest_release=vendor_release,
        ),
        M30,
        TRANSLATE,
        CODE_SYSTEMS,
        CATALOG,
    ]


def test_a_new_release_of_a_line_becomes_its_latest_release(store: Engine, tmp_path: Path) -> None:
    fewer = tmp_path / "farmasi-hyllekoder.csv"  # vendor A's next delivery: one shelf code left
    fewer.write_text(
        "\n".join((DATA / "farmasi-hyllekoder.csv").read_text(encoding="utf-8").splitlines()[:2]) + "\n"
    )
    assert import_tiered(store, fewer, tier="supplementary", owner="vendor-a").release_id == 4
    [feed] = search(own_services(store, BASE), owner="vendor-a")
    assert (feed.id, feed.latest_release) == ("supplementary-vendor-a", activated(store, 4))


def test_an_empty_store_still_offers_the_api_the_export_and_the_catalogue(engine: Engine) -> None:
    empty = {"resource_types": (), "latest_release": None}
    assert own_services(engine, BASE) == [
        ours(**{**_as_fields(FHIR), **empty}),
        ours(**{**_as_fields(M30), "latest_release": None}),
        ours(**{**_as_fields(TRANSLATE), "latest_release": None}),
        ours(**{**_as_fields(CODE_SYSTEMS), "code_systems": (), "latest_release": None}),
        CATALOG,
    ]


def _as_fields(service: Service) -> dict[str, object]:
    fields = {name: getattr(service, name) for name in Service.__dataclass_fields__ if name != "origin"}
    fields["service_id"] = fields.pop("id")
    return fields


def test_the_whole_catalogue_is_ours_then_each_file_in_order(store: Engine, tmp_path: Path) -> None:
    other = tmp_path / "other.yaml"
    other.write_text(GOOD.replace("id: a", "id: pharmacy-x-stock"), encoding="utf-8")
    services = all_services(store, BASE, [EXAMPLE, other])
    assert services == [*own_services(store, BASE), *load_catalogue(EXAMPLE), *load_catalogue(other)]
    assert [s.id for s in services][-4:] == [
        "dmp-safest-fhir",
        "dmp-fest-webservice",
        "vendor-a-shelf-codes",
        "pharmacy-x-stock",
    ]


def test_a_file_may_not_take_an_id_of_ours_or_of_another_file(store: Engine, tmp_path: Path) -> None:
    taken = tmp_path / "taken.yaml"
    taken.write_text(
        GOOD.replace("id: a", "id: m30")
        + GOOD.removeprefix("services:\n").replace("id: a", "id: dmp-safest-fhir")
    )
    with pytest.raises(CatalogueError) as caught:
        all_services(store, BASE, [EXAMPLE, taken])
    assert caught.value.problems == [
        f"{taken}:2: the id `m30` is reserved for grunndata's own services (catalog, code-systems, fhir, fhir-sector, m30, translate, sector-<owner>, supplementary-<owner>); choose another",
    ]
    taken.write_text(GOOD.replace("id: a", "id: dmp-safest-fhir"))
    with pytest.raises(CatalogueError) as again:
        all_services(store, BASE, [EXAMPLE, taken])
    assert again.value.problems == [f"{taken}:2: the id `dmp-safest-fhir` is already used at {EXAMPLE}:25"]


def test_every_bad_file_is_reported_and_nothing_is_loaded(store: Engine, tmp_path: Path) -> None:
    one, two = tmp_path / "one.yaml", tmp_path / "two.json"
    one.write_text(GOOD.replace("national", "nasjonal"), encoding="utf-8")
    two.write_text('{"services": 3}', encoding="utf-8")
    with pytest.raises(CatalogueError) as caught:
        all_services(store, BASE, [one, EXAMPLE, two])
    assert caught.value.problems == [
        f"{one}:5: unknown tier `nasjonal`; use national, sector or supplementary",
        f"{two}:1: `services` must be a list of services, not a number",
    ]
    assert (
        str(caught.value)
        == f"{one}:5: unknown tier `nasjonal`; use national, sector or supplementary (and 1 more problem)"
    )


def test_services_are_found_by_tier_owner_resource_type_and_status(store: Engine) -> None:
    services = all_services(store, BASE, [EXAMPLE])

    def ids(**criteria: str) -> list[str]:
        return [s.id for s in search(services, **criteria)]

    assert ids(tier="supplementary") == ["supplementary-vendor-a", "vendor-a-shelf-codes"]
    assert ids(owner="vendor-a", status="test") == ["vendor-a-shelf-codes"]
    assert ids(tier="sector") == ["fhir-sector", "sector-sykehusapotekene"]
    assert ids(resource_type="CodeSystem") == ["fhir", "code-systems", "dmp-safest-fhir"]
    assert ids(resource_type="MedicinalProduct") == ["dmp-safest-fhir"]
    assert ids(owner="dmp", tier="national", status="active") == [
        "fhir",
        "m30",
        "translate",
        "code-systems",
        "catalog",
        "dmp-safest-fhir",
        "dmp-fest-webservice",
    ]
    assert ids(status="retired") == []
    assert ids() == [s.id for s in services]


def test_a_long_owner_id_gets_a_feed_id_within_64_characters_that_no_other_owner_shares() -> None:
    from grunndata.catalog.ours import feed_id

    one, two = "a" * 50 + "-one", "a" * 50 + "-two"
    assert feed_id("supplementary", "vendor-a") == "supplementary-vendor-a"
    assert len(feed_id("supplementary", one)) <= 64 and feed_id("supplementary", one) != feed_id(
        "supplementary", two
    )
