"""The rest of R5's search grammar on the real extract: :missing, :not, :above/:below, chained
parameters, _has, _include:iterate and the wildcards. Every expected answer is worked out here
from the resources themselves (every one of a type, read by one plain search), not by the
grammar under test."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from grunndata.fhirpackage.capability import CHAIN_LINKS, ITERATE_ROUNDS
from grunndata.fhirpackage.content import search_parameter
from grunndata.server import create_app
from grunndata.server.fhir_io.params import DEFAULT_LIMITS
from grunndata.settings import Settings
from grunndata.store import connect, lookup, params_for
from tests.server.conftest import CERTICAN_BRAND, CERTICAN_PACKAGE, fhir_json
from tests.server.test_search import ids, search

MPD, PPD, MID = "MedicinalProductDefinition", "PackagedProductDefinition", "ManufacturedItemDefinition"
APD, ING = "AdministrableProductDefinition", "Ingredient"
ATC = "http://www.whocc.no/atc"
PREPARATTYPE = "https://grunndata.no/fhir/CodeSystem/fest-Preparattype"


def every(api: TestClient, rtype: str) -> list[dict[str, Any]]:
    """Every served resource of a type (the extract holds fewer than 1,000 of each)."""
    bundle = search(api, f"/fhir/{rtype}?_count=1000")
    assert "next" not in {link["relation"] for link in bundle["link"]}
    return [e["resource"] for e in bundle["entry"]]


def refs(resource: dict[str, Any], *path: str) -> list[str]:
    """The references ("Type/id") at a dotted path of a resource's JSON, lists flattened."""
    nodes: list[Any] = [resource]
    for step in path:
        found: list[Any] = []
        for node in nodes:
            value = node.get(step) if isinstance(node, dict) else None
            found += value if isinstance(value, list) else [] if value is None else [value]
        nodes = found
    return [n for n in nodes if isinstance(n, str)]


def names(product: dict[str, Any]) -> list[str]:
    return [n["productName"].casefold() for n in product.get("name", [])]


def codes(concept: Any, system: str) -> list[str]:
    concepts = concept if isinstance(concept, list) else [concept] if concept else []
    return [c["code"] for cc in concepts for c in cc.get("coding", []) if c.get("system") == system]


def certican_brands(api: TestClient) -> set[str]:
    found = {p["id"] for p in every(api, MPD) if any(n.startswith("certic") for n in names(p))}
    assert CERTICAN_BRAND in found
    return found


# -- chained parameters -----------------------------------------------------------------------


def test_packages_by_their_products_name_one_link(api: TestClient) -> None:
    brands = certican_brands(api)
    expected = sorted(
        p["id"]
        for p in every(api, PPD)
        if {r.split("/")[1] for r in refs(p, "packageFor", "reference")} & brands
    )
    assert CERTICAN_PACKAGE in expected
    assert ids(search(api, f"/fhir/{PPD}?package-for.name=certic&_count=100")) == expected
    typed = search(api, f"/fhir/{PPD}?package-for:{MPD}.identifier=ID_{CERTICAN_BRAND}&_count=100")
    assert ids(typed) == sorted(
        p["id"] for p in every(api, PPD) if f"{MPD}/{CERTICAN_BRAND}" in refs(p, "packageFor", "reference")
    )
    assert ids(search(api, f"/fhir/{PPD}?package-for.name=nosuchproduct")) == []


def test_ingredients_by_the_name_of_the_product_their_administrable_form_is_of_two_links(
    api: TestClient,
) -> None:
    brands = certican_brands(api)
    forms = {
        a["id"] for a in every(api, APD) if {r.split("/")[1] for r in refs(a, "formOf", "reference")} & brands
    }
    expected = sorted(
        i["id"] for i in every(api, ING) if {f"{APD}/{f}" for f in forms} & set(refs(i, "for", "reference"))
    )
    assert expected  # the extract holds Certican's ingredient
    url = f"/fhir/{ING}?for:{APD}.form-of.name=certic&_count=100"
    assert ids(search(api, url)) == expected
    total = search(api, f"/fhir/{ING}?for:{APD}.form-of:{MPD}.name=certic&_total=accurate&_count=100")
    assert ids(total) == expected and total["total"] == len(expected)


# -- _has (reverse chaining) ----------------------------------------------------------------------


def test_products_that_have_a_package_with_a_varenr(api: TestClient) -> None:
    url = f"/fhir/{MPD}?_has:{PPD}:package-for:identifier=014884"
    assert ids(search(api, url)) == [CERTICAN_BRAND]
    every_package_of = {r.split("/")[1] for p in every(api, PPD) for r in refs(p, "packageFor", "reference")}
    with_any = search(api, f"/fhir/{MPD}?_has:{PPD}:package-for:status=active&_count=1000")
    active = {
        r.split("/")[1]
        for p in every(api, PPD)
        if "active" in codes(p.get("status"), "http://hl7.org/fhir/publication-status")
        for r in refs(p, "packageFor", "reference")
    }
    assert ids(with_any) == sorted(active) and active <= every_package_of


def test_products_two_has_deep_through_their_administrable_form_and_its_ingredient(api: TestClient) -> None:
    """An Ingredient's identifier is its FEST substance-with-strength, shared by the products using it."""
    ingredients = every(api, ING)
    ident = next(i for i in ingredients if i.get("for"))["identifier"]["value"]  # R5: one identifier
    forms = {
        r.split("/")[1]
        for i in ingredients
        if i["identifier"]["value"] == ident
        for r in refs(i, "for", "reference")
        if r.startswith(f"{APD}/")
    }
    expected = sorted(
        {r.split("/")[1] for a in every(api, APD) if a["id"] in forms for r in refs(a, "formOf", "reference")}
    )
    url = f"/fhir/{MPD}?_has:{APD}:form-of:_has:{ING}:for:identifier={ident}&_count=100"
    assert len(expected) > 1 and ids(search(api, url)) == expected


# -- :missing and :not ------------------------------------------------------------------------------


def test_missing_true_and_false_split_the_products(api: TestClient) -> None:
    products = every(api, MPD)
    untyped = sorted(p["id"] for p in products if "type" not in p)
    assert len(untyped) == 3  # the three LegemiddelVirkestoff
    assert ids(search(api, f"/fhir/{MPD}?type:missing=true")) == untyped
    typed = search(api, f"/fhir/{MPD}?type:missing=false&_count=1000")
    assert ids(typed) == sorted(p["id"] for p in products if "type" in p)
    assert ids(search(api, f"/fhir/{MPD}?name:missing=true")) == []  # every product has a name
    assert search(api, f"/fhir/{MPD}?name:missing=false&_total=accurate&_count=0")["total"] == len(products)
    assert search(api, f"/fhir/{MPD}?_id:missing=true&_total=accurate&_count=0")["total"] == 0
    levels = search(api, f"/fhir/{PPD}?package-item-level-one:missing=true&_count=1000")
    no_gtin = sorted(p["id"] for p in every(api, PPD) if not p.get("packaging", {}).get("identifier"))
    assert ids(levels) == no_gtin and len(no_gtin) == 2
    # the R4 view answers it through the same search
    r4 = fhir_json(api, "/fhir-r4/MedicinalProductPackaged?package-item-level-one:missing=true")
    assert [e["resource"]["id"] for e in r4["entry"] if e["search"]["mode"] == "match"] == no_gtin


def test_not_finds_the_products_without_the_code_those_without_any_type_included(api: TestClient) -> None:
    products = every(api, MPD)
    expected = sorted(p["id"] for p in products if "7" not in codes(p.get("type"), PREPARATTYPE))
    assert len(expected) > 3  # the three without a type, and products of other kinds
    assert ids(search(api, f"/fhir/{MPD}?type:not={PREPARATTYPE}|7&_count=1000")) == expected
    assert ids(search(api, f"/fhir/{MPD}?type:not=7&_count=1000")) == expected
    both = search(api, f"/fhir/{MPD}?_id:not={CERTICAN_BRAND}&_total=accurate&_count=0")
    assert both["total"] == len(products) - 1
    brand_packages = search(api, f"/fhir/{PPD}?identifier:not=014884&_total=accurate&_count=1000")
    assert CERTICAN_PACKAGE not in ids(brand_packages) and brand_packages["total"] == 106


# -- :above and :below --------------------------------------------------------------------------------


def test_below_and_above_follow_the_atc_hierarchy(api: TestClient) -> None:
    products = every(api, MPD)
    l04a = sorted(
        p["id"] for p in products if any(c.startswith("L04A") for c in codes(p.get("classification"), ATC))
    )
    assert CERTICAN_BRAND in l04a
    for value in ("L04A", f"{ATC}|L04A"):
        assert ids(search(api, f"/fhir/{MPD}?product-classification:below={value}&_count=100")) == l04a
    every_l = sorted(
        p["id"] for p in products if any(c.startswith("L") for c in codes(p.get("classification"), ATC))
    )
    assert ids(search(api, f"/fhir/{MPD}?product-classification:below=L&_count=100")) == every_l
    # above: the code and its ancestors; the extract classifies by whole (level 5) codes only
    exact = ids(search(api, f"/fhir/{MPD}?product-classification={ATC}|L04AA18"))
    assert ids(search(api, f"/fhir/{MPD}?product-classification:above=L04AA18")) == exact
    assert ids(search(api, f"/fhir/{MPD}?product-classification:above=L04A")) == []


# -- _include:iterate and the wildcards -------------------------------------------------------------


def test_include_iterate_follows_what_the_first_include_brought(api: TestClient) -> None:
    brand = fhir_json(api, f"/fhir/{MPD}/{CERTICAN_BRAND}")
    items = sorted(r.split("/")[1] for r in refs(brand, "comprisedOf", "reference"))
    url = f"/fhir/{PPD}?identifier=014884&_include={PPD}:package-for&_include:iterate={MPD}:comprised-of"
    bundle = search(api, url)
    included = [(e["resource"]["resourceType"], e["resource"]["id"]) for e in bundle["entry"][1:]]
    assert included == [(MPD, CERTICAN_BRAND), *((MID, i) for i in items)]
    # without :iterate, an include of another type than the search's is the client's mistake
    plain = f"/fhir/{PPD}?identifier=014884&_include={PPD}:package-for&_include={MPD}:comprised-of"
    assert "names MedicinalProductDefinition" in search(api, plain, 400)["issue"][0]["diagnostics"]


def test_include_star_brings_every_reference_of_the_match(api: TestClient) -> None:
    package = fhir_json(api, f"/fhir/{PPD}/{CERTICAN_PACKAGE}")
    pointed = refs(package, "packageFor", "reference") + refs(
        package, "packaging", "containedItem", "item", "reference", "reference"
    )
    bundle = search(api, f"/fhir/{PPD}?identifier=014884&_include=*")
    got = sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"][1:])
    assert got == sorted(set(pointed)) and len(got) == 2


def test_revinclude_star_brings_everything_that_points_at_the_match(api: TestClient) -> None:
    target = f"{MPD}/{CERTICAN_BRAND}"
    expected = sorted(
        f"{t}/{r['id']}"
        for t, path in (
            (PPD, ("packageFor", "reference")),
            (APD, ("formOf", "reference")),
            (ING, ("for", "reference")),
            ("RegulatedAuthorization", ("subject", "reference")),
            ("ClinicalUseDefinition", ("subject", "reference")),
            ("Basic", ("subject", "reference")),
        )
        for r in every(api, t)
        if target in refs(r, *path)
    )
    bundle = search(api, f"/fhir/{MPD}?_id={CERTICAN_BRAND}&_revinclude=*")
    got = sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"][1:])
    assert got == expected and len(expected) >= 4


# -- bad input: a 400 OperationOutcome naming the problem -------------------------------------------


@pytest.mark.parametrize(
    ("query", "code", "said"),
    [
        (f"{PPD}?package-for:Patient.name=x", "invalid", "never points at 'Patient'"),
        (f"{PPD}?package-for:{MPD}.colour=x", "invalid", "unknown search parameter 'colour'"),
        (f"{PPD}?status.name=x", "invalid", "no reference search parameter 'status'"),
        (f"{ING}?for.name=x", "invalid", "say which type Ingredient.for points at"),
        (f"{PPD}?package-for.comprised-of.identifier.x=1", "too-costly", "GRUNNDATA_SEARCH_MAX_CHAIN=2"),
        (f"{MPD}?type:missing=maybe", "invalid", "takes true or false, not 'maybe'"),
        (f"{MPD}?_has:{PPD}:package-for=1", "invalid", "_has takes _has:Type:reference:parameter"),
        (f"{MPD}?_has:{PPD}::identifier=1", "invalid", "_has takes"),
        (f"{MPD}?_has=1", "invalid", "_has: _has takes _has:Type:reference:parameter"),
        (
            f"{MPD}?_has:Patient:general-practitioner:name=1",
            "invalid",
            "'Patient' is not a type this server searches in its store alone",
        ),
        (f"{MPD}?_has:{PPD}:nope:identifier=1", "invalid", "no reference search parameter 'nope'"),
        (
            "Organization?_has:RegulatedAuthorization:holder:identifier=1",
            "invalid",
            "Organization is searched in a list in memory, which _has cannot join",
        ),
        (
            f"{MPD}?_has:{APD}:manufactured-item:identifier=1",
            "invalid",
            "never points at MedicinalProductDefinition",
        ),
        (
            f"{MPD}?name:not=certican",
            "invalid",
            "the modifier :not is not supported on string parameter name",
        ),
        (f"{PPD}?package-for:below={CERTICAN_BRAND}", "invalid", "the modifier :below is not supported"),
        (f"{PPD}?identifier:above=014884", "invalid", "the modifier :above is not supported"),
        (f"{MPD}?product-classification:below=L4", "invalid", "give a code of http://www.whocc.no/atc"),
        (f"{PPD}?_include:iterate=*", "too-costly", "name the references to follow"),
        (
            f"{PPD}?package-for.name=" + ",".join(f"n{i}" for i in range(51)),
            "too-costly",
            "package-for.name has 51 comma-separated values (each counted 2 times: it takes 1 link), "
            "more than GRUNNDATA_SEARCH_MAX_VALUES=100 allows",
        ),
        (f"{PPD}?_include:recurse={PPD}:package-for", "invalid", "takes :iterate as its only modifier"),
        (f"{PPD}?_include={PPD}:package-for:iterate", "invalid", f"write _include:iterate={PPD}:package-for"),
    ],
)
def test_bad_grammar_is_a_400_outcome(api: TestClient, query: str, code: str, said: str) -> None:
    outcome = search(api, f"/fhir/{query}", status=400)
    assert outcome["resourceType"] == "OperationOutcome"
    assert outcome["issue"][0]["code"] == code
    assert said in outcome["issue"][0]["diagnostics"], outcome["issue"][0]["diagnostics"]


def test_a_chain_counts_its_links_against_the_parameter_bound(api: TestClient) -> None:
    """40 parameters pass; 20 chains of one link each count as 40 too, 21 are refused."""
    asked = ["package-for.name=certic"] * 8 + [f"package-for:{MPD}.identifier=ID_{CERTICAN_BRAND}"] * 8
    asked += ["package-for.status=active"] * 4
    expected = ids(search(api, f"/fhir/{PPD}?package-for.name=certic&_count=100"))
    assert ids(search(api, f"/fhir/{PPD}?{'&'.join(asked)}&_count=100")) == expected
    outcome = search(api, f"/fhir/{PPD}?{'&'.join([*asked, 'package-for.status=active'])}", status=400)
    assert outcome["issue"][0]["code"] == "too-costly"
    assert outcome["issue"][0]["diagnostics"] == (
        "the request sends 42 parameters, each link of a chain or _has counted as one, "
        "more than GRUNNDATA_SEARCH_MAX_PARAMS=40 allows"
    )


def test_iterate_stops_at_the_bound_of_rounds(api: TestClient) -> None:
    """An ingredient's administrable forms (round 1), then the products they are forms of (round 2):
    a server bounded to one round gives the forms only."""
    ingredient = next(
        i for i in every(api, ING) if any(r.startswith(f"{APD}/") for r in refs(i, "for", "reference"))
    )
    forms = sorted(r for r in refs(ingredient, "for", "reference") if r.startswith(f"{APD}/"))
    products = sorted(
        {r for a in every(api, APD) if f"{APD}/{a['id']}" in forms for r in refs(a, "formOf", "reference")}
    )
    url = (
        f"/fhir/{ING}?_id={ingredient['id']}&_include:iterate={ING}:for:{APD}&_include:iterate={APD}:form-of"
    )

    def brought(client: TestClient) -> list[str]:
        bundle = search(client, url)
        return sorted(f"{e['resource']['resourceType']}/{e['resource']['id']}" for e in bundle["entry"][1:])

    assert brought(api) == sorted(forms + products) and products
    engine = connect(api.app.state.served.engine.url.render_as_string(hide_password=False))
    settings = Settings.load({"GRUNNDATA_SEARCH_MAX_ITERATE": "1"})
    with TestClient(create_app(engine, settings=settings, warm=False)) as one_round:
        assert brought(one_round) == forms
    engine.dispose()


def test_an_unknown_first_step_is_ignored_as_any_unknown_parameter_unless_strict(api: TestClient) -> None:
    lenient = search(api, f"/fhir/{PPD}?identifier=014884&colour.name=x")
    assert ids(lenient) == [CERTICAN_PACKAGE]
    strict = api.get(f"/fhir/{PPD}?colour.name=x", headers={"Prefer": "handling=strict"})
    assert strict.status_code == 400
    assert strict.json()["issue"][0]["diagnostics"] == f"unknown search parameter 'colour.name' for {PPD}"
    listed = search(api, "/fhir/Endpoint?organization.name=x", status=400)  # a list in memory, not the store
    assert listed["issue"][0]["diagnostics"] == (
        "organization.name: 'Endpoint' is not a type this server searches in its store alone"
    )


def test_the_capability_statement_declares_the_grammar_from_the_table(api: TestClient) -> None:
    statement = fhir_json(api, "/fhir/metadata")
    rest = statement["rest"][0]
    assert rest["searchParam"][-1]["name"] == "_has"
    assert rest["searchParam"][-1]["definition"] == "http://hl7.org/fhir/SearchParameter/Resource-has"
    resources = {r["type"]: r for r in rest["resource"]}
    documented = {p["name"]: p["documentation"] for p in resources[PPD]["searchParam"]}
    assert documented["identifier"] == "FEST id, varenr or GTIN. Modifiers: :missing, :not."
    assert documented["package-for"].startswith(
        "The product this is a package for. Modifiers: :missing, :[type] (MedicinalProductDefinition). "
        "Chains: package-for.<parameter> to any parameter of MedicinalProductDefinition"
    )
    atc = {p["name"]: p["documentation"] for p in resources[MPD]["searchParam"]}["product-classification"]
    assert atc.endswith("Modifiers: :missing, :not, :above, :below.")
    # R5: the includes an iterate may follow are listed on the root type, with the wildcard
    assert resources[PPD]["searchInclude"][-6:] == [
        "*",
        f"{MPD}:comprised-of",
        f"{MPD}:contact",
        f"{MPD}:master-file",
        "Basic:subject",  # substitution-group names a Basic (the Byttegruppe): its own references follow
        "Organization:partof",
    ]
    assert resources[MPD]["searchRevInclude"][-1] == "*"
    assert (DEFAULT_LIMITS.chain, DEFAULT_LIMITS.iterate) == (CHAIN_LINKS, ITERATE_ROUNDS)


def test_our_search_parameters_in_the_package_list_their_modifiers_and_chains() -> None:
    comprised_of, interactant = lookup(MPD, "comprised-of"), lookup("ClinicalUseDefinition", "interactant")
    assert comprised_of is not None and interactant is not None
    made = search_parameter(comprised_of)
    assert made["modifier"] == ["missing", "type"]
    assert made["chain"] == sorted(params_for(MID))  # every parameter of what it points at
    assert search_parameter(interactant)["modifier"] == ["missing", "not", "above", "below"]
    assert "chain" not in search_parameter(interactant)


def test_interactions_below_an_atc_group(api: TestClient) -> None:
    interactions = every(api, "ClinicalUseDefinition")
    expected = sorted(
        c["id"]
        for c in interactions
        if any(
            code.startswith("N02")
            for i in c.get("interaction", {}).get("interactant", [])
            for code in codes(i.get("itemCodeableConcept"), ATC)
        )
    )
    assert expected
    assert ids(search(api, "/fhir/ClinicalUseDefinition?interactant:below=N02&_count=100")) == expected


def test_uri_below_and_above_go_by_path_segment(api: TestClient) -> None:
    """The terminology service's maps (matched in memory by the same rules); an OID is no URL."""
    urls = {m["id"]: m["url"] for m in every(api, "ConceptMap")}
    base = "https://grunndata.no/fhir/ConceptMap"
    below = sorted(i for i, u in urls.items() if u.startswith(base + "/"))
    assert len(below) == len(urls) == 8
    assert sorted(ids(search(api, f"/fhir/ConceptMap?url:below={base}&_count=100"))) == below
    assert ids(search(api, "/fhir/ConceptMap?url:below=https://grunndata.no/fhir/Concept")) == []
    one = urls[below[0]]
    assert ids(search(api, f"/fhir/ConceptMap?url:above={one}/a/b")) == [below[0]]
    refused = search(api, "/fhir/CodeSystem?url:below=urn:oid:2.16.578.1.12.4.1.1", status=400)
    assert refused["issue"][0]["diagnostics"] == (
        "url: :above and :below take a http(s) URL, not 'urn:oid:2.16.578.1.12.4.1.1'"
    )
