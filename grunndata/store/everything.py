"""`$everything` of a product: what belongs to a MedicinalProductDefinition, found through the index."""

from __future__ import annotations

from sqlalchemy.engine import Connection

from grunndata.store.read import Snapshot, Version, read_many
from grunndata.store.search import index_tokens, references_from, referring, with_tokens

EVERYTHING_LIMIT = 1000  # of each kind of related resource


def everything_of(conn: Connection, snapshot: Snapshot, product: Version) -> list[Version]:
    """What belongs to a product: packages, items, administrable forms, ingredients, substances,
    interactions, the authorizations of the product or its packages (their holders contained), the
    documents about it (ePI Compositions) and their authors (Organizations)."""
    ref = f"{product.type}/{product.id}"
    packages = referring(conn, snapshot, "PackagedProductDefinition", "package-for", [ref], EVERYTHING_LIMIT)
    forms = referring(conn, snapshot, "AdministrableProductDefinition", "form-of", [ref], EVERYTHING_LIMIT)
    parts = [product, *packages, *forms]
    item_keys = set(references_from(conn, [product], "MedicinalProductDefinition.comprised-of"))
    item_keys |= set(references_from(conn, packages, "PackagedProductDefinition.manufactured-item"))
    item_keys |= set(references_from(conn, forms, "AdministrableProductDefinition.manufactured-item"))
    items = read_many(conn, snapshot, sorted(item_keys))
    owners = [f"{v.type}/{v.id}" for v in (*parts, *items)]
    ingredients = referring(conn, snapshot, "Ingredient", "for", owners, EVERYTHING_LIMIT)
    substances = read_many(conn, snapshot, references_from(conn, ingredients, "Ingredient.substance"))
    atc = index_tokens(conn, product, "product-classification")
    interactions = with_tokens(conn, snapshot, "ClinicalUseDefinition", "interactant", atc, EVERYTHING_LIMIT)
    by_substance = referring(
        conn,
        snapshot,
        "ClinicalUseDefinition",
        "interactant-reference",
        [f"{v.type}/{v.id}" for v in substances],
        EVERYTHING_LIMIT,
    )
    authorizations = referring(conn, snapshot, "RegulatedAuthorization", "subject", owners, EVERYTHING_LIMIT)
    documents = referring(conn, snapshot, "Composition", "subject", owners, EVERYTHING_LIMIT)
    authors = read_many(conn, snapshot, references_from(conn, documents, "Composition.author"))
    notes = [
        v  # sector and supplementary notes about the product or its packages, for entitled clients
        for v in referring(conn, snapshot, "Basic", "subject", owners, EVERYTHING_LIMIT)
        if v.tier != "national"
    ]
    out: list[Version] = []
    seen = {(product.type, product.id)}
    related = (
        *packages,
        *forms,
        *items,
        *ingredients,
        *substances,
        *interactions,
        *by_substance,
        *authorizations,
    )
    for v in (*related, *documents, *authors, *notes):
        if (v.type, v.id) not in seen:
            seen.add((v.type, v.id))
            out.append(v)
    return out
