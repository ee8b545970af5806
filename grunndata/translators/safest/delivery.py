"""A whole SAFEST delivery to R5 at once: check each resource, convert the R4 ones, then turn around
the references R5 reverses (Ingredient.for, APD.formOf, PPD.packageFor, RegulatedAuthorization.subject),
which needs the other resources of the delivery.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Iterator
from typing import Any

from grunndata.fhir import SERVED_TYPES, TERMINOLOGY_TYPES
from grunndata.translators.safest.model import Conversion, Json, Problem
from grunndata.translators.safest.rules import (
    R5_KEPT_BASE,
    Context,
    Link,
    Node,
    convert_resource,
    find_r4,
    kept_url,
    reference_key,
    retype,
)
from grunndata.translators.safest.tables import SPECS, TABLES, TYPED_VALUES, typed_value
from grunndata.translators.safest.terminology import terminology_to_r5
from grunndata.translators.shape import holder_authorization, one_shape

R5_TYPES = frozenset(SERVED_TYPES) - TERMINOLOGY_TYPES
"""Types that pass through unchanged: the R5 IDMP types, and Composition and Organization, which come
in R5 document Bundles (an ePI: the leaflet of a product, and its marketing authorisation holder).
The terminology types (CodeSystem, ValueSet, ConceptMap: R4 or R5 by what they hold) go through
translators/safest/terminology.py."""
FHIR_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}\Z")
MALFORMED = (TypeError, AttributeError, KeyError, ValueError)
"""What a resource whose JSON does not have the shapes R4 defines (a string where a list belongs)
makes the walk raise: the resource becomes a problem, never an exception for the caller."""


def to_r5(resources: list[Json]) -> Conversion:
    """The R5 form of a SAFEST delivery: R4 NOMA-profile resources converted, R5 ones as they are.

    A Bundle's entries count as resources of the delivery. Converted resources keep their id, so
    references between them stay valid with only the type renamed.
    """
    conversion = Conversion()
    problems = conversion.problems
    accepted = _accepted(_unbundled(resources, problems), problems)
    r4_top = {label_of(r): r for r in accepted if r["resourceType"] in SPECS}
    ctx = Context(TABLES, SPECS, r4_top, problems)
    ctx.consumed = _counted_items(ctx)
    top: dict[str, Json] = {}
    for resource in accepted:
        rtype = resource["resourceType"]
        if rtype in SPECS:
            result = _convert(resource, ctx)
        elif rtype in TERMINOLOGY_TYPES:
            result = terminology_to_r5(resource, label_of(resource), problems)
        else:
            result = copy.deepcopy(resource)
        if result is not None:
            conversion.resources.append(result)
            top[f"{result['resourceType']}/{result['id']}"] = result
    converted = {id(node.r5) for node in ctx.nodes}
    for link in ctx.links:
        _turn_around(link, top, converted, problems)
    _ingredient_products(ctx, top)
    _in_stable_order(ctx)
    for node in ctx.nodes:  # codes in both sources' systems, as FEST-made resources say them
        one_shape(node.r5)
    _holders(conversion, top, {id(node.r5): node.label for node in ctx.nodes}, problems)
    for node in ctx.nodes:
        if node.r5["resourceType"] == "Ingredient" and not node.r5.get("for"):
            message = "no MedicinalProductManufactured or MedicinalProductPharmaceutical of this delivery lists this ingredient, so Ingredient.for is empty"
            problems.append(Problem(node.label, node.prefix + message, warning=True))
    for resource in conversion.resources:
        _drop_extensions_without_url(resource, resource["resourceType"], label_of(resource), problems)
        _type_extension_values(resource, resource["resourceType"], label_of(resource), problems)
    return conversion


HOLDER_EXTENSION = "safest-maholderormanufacturer"
"""The tail (lower case) of SAFEST's extension naming a package's holder or manufacturer as text."""


def _holders(
    conversion: Conversion, top: dict[str, Json], labels: dict[int, str], problems: list[Problem]
) -> None:
    """A converted package's maHolderOrManufacturer as FEST-made products say their holder: a
    RegulatedAuthorization of the package (the package's id) whose holder is a contained Organization
    by that name, unless an authorization of the delivery covers the package already (it says who
    holds it). The extension stays on the package as sent."""
    covered = {
        str(subject.get("reference"))
        for r in conversion.resources
        if r["resourceType"] == "RegulatedAuthorization"
        for subject in r.get("subject") or ()
        if isinstance(subject, dict)
    }
    for resource in list(conversion.resources):
        if resource["resourceType"] != "PackagedProductDefinition" or id(resource) not in labels:
            continue
        names = [
            e["valueString"]
            for e in resource.get("extension") or ()
            if isinstance(e, dict)
            and str(e.get("url", "")).lower().endswith(HOLDER_EXTENSION)
            and isinstance(e.get("valueString"), str)
            and e["valueString"].strip()
        ]
        if len(names) != 1:
            continue
        rid = resource["id"]
        if f"PackagedProductDefinition/{rid}" in covered:
            continue
        if f"RegulatedAuthorization/{rid}" in top:
            message = f"the delivery has a RegulatedAuthorization {rid} already, so the holder {names[0]!r} is not made one"
            problems.append(Problem(labels[id(resource)], message, warning=True))
            continue
        made = holder_authorization(rid, f"PackagedProductDefinition/{rid}", names[0])
        conversion.resources.append(made)
        top[f"RegulatedAuthorization/{rid}"] = made


def _in_stable_order(ctx: Context) -> None:
    """References turned around are added in delivery order; sorted, the same content delivered in
    another order gives the same bytes (and so no new versions)."""
    fields = {link.field for link in ctx.links} | {"for"}
    for node in ctx.nodes:
        for name in fields:
            value = node.r5.get(name)
            if isinstance(value, list) and all(isinstance(v, dict) for v in value):
                value.sort(key=lambda v: str(v.get("reference", "")))


def _convert(resource: Json, ctx: Context) -> Json | None:
    label = label_of(resource)
    marks = len(ctx.links), len(ctx.problems), len(ctx.nodes)
    try:
        return convert_resource(resource, Node(resource, label, ""), ctx)
    except MALFORMED as error:
        del ctx.links[marks[0] :], ctx.problems[marks[1] :], ctx.nodes[marks[2] :]
        ctx.problems.append(
            Problem(
                label, f"is not R4 {resource['resourceType']} as FHIR defines it ({error}); not converted"
            )
        )
        return None


# --- what is converted -----------------------------------------------------------------------------


def label_of(resource: Any) -> str:
    """``Type/id`` as given, ``?`` for a part that is missing."""
    if not isinstance(resource, dict):
        return "?"
    rtype, rid = resource.get("resourceType"), resource.get("id")
    return f"{rtype if isinstance(rtype, str) else '?'}/{rid if isinstance(rid, str) else '?'}"


def _unbundled(resources: Iterable[Any], problems: list[Problem]) -> Iterator[Any]:
    for resource in resources:
        if not (isinstance(resource, dict) and resource.get("resourceType") == "Bundle"):
            yield resource
            continue
        for n, entry in enumerate(resource.get("entry") or []):
            inner = entry.get("resource") if isinstance(entry, dict) else None
            if inner is None:
                problems.append(Problem(label_of(resource), f"entry {n} has no resource"))
            else:
                yield from _unbundled([inner], problems)


def _refusal(resource: Any) -> str | None:
    """Why `resource` cannot be converted at all, or None."""
    if not isinstance(resource, dict):
        return "is not a JSON object; not converted"
    rtype, rid = resource.get("resourceType"), resource.get("id")
    if not isinstance(rtype, str):
        return "has no resourceType; not converted"
    if rtype not in SPECS and rtype not in R5_TYPES and rtype not in TERMINOLOGY_TYPES:
        return f"{rtype} is neither a SAFEST R4 resource type nor an R5 IDMP, ePI or terminology one; skipped"
    if not isinstance(rid, str):
        return "has no id; not converted"
    if not FHIR_ID.match(rid):
        return f"id {rid!r} is not a FHIR id (1 to 64 of A-Z a-z 0-9 - .); not converted"
    return None


def _accepted(resources: Iterable[Any], problems: list[Problem]) -> list[Json]:
    accepted, seen = [], set()
    for resource in resources:
        label = label_of(resource)
        refusal = _refusal(resource)
        if refusal is None and label in seen:
            refusal = "appears more than once in this delivery; every resource must come once"
        if refusal is not None:
            problems.append(Problem(label, refusal, warning=refusal.endswith("skipped")))
            continue
        seen.add(label)
        accepted.append(resource)
    return accepted


def _counted_items(ctx: Context) -> set[int]:
    """The MedicinalProductManufactured resources some package's packageItem.manufacturedItem names:
    their quantity moves to the package (R5 containedItem.amount)."""
    found: set[int] = set()
    for resource in ctx.r4_top.values():
        if resource["resourceType"] != "MedicinalProductPackaged":
            continue
        node = Node(resource, label_of(resource), "")
        for reference in _manufactured_items(resource.get("packageItem")):
            target = find_r4(reference, node, ctx)
            if target is not None:
                found.add(id(target))
    return found


def _manufactured_items(items: Any) -> Iterator[Any]:
    for item in items if isinstance(items, list) else []:
        if isinstance(item, dict):
            for reference in item.get("manufacturedItem") or []:
                yield reference.get("reference") if isinstance(reference, dict) else None
            yield from _manufactured_items(item.get("packageItem"))


# --- references R5 turns around --------------------------------------------------------------------


def _turn_around(link: Link, top: dict[str, Json], converted: set[int], problems: list[Problem]) -> None:
    """Give the target of `link` a reference back to its source, or keep the R4 reference."""
    reference = link.reference.get("reference") if isinstance(link.reference, dict) else None
    if not isinstance(reference, str):
        return _keep(link, "has no literal reference to turn around", problems)
    target, back = _resolve(reference, link.source, top)
    if target is None:
        return _keep(link, f"points at {reference}, which is not in this delivery", problems)
    if target.get("resourceType") != link.target:
        return _keep(
            link,
            f"points at {reference}, which is a {target.get('resourceType')}, not a {link.target}",
            problems,
        )
    if id(target) not in converted:
        return _keep(link, f"points at {reference}, which came as R5 and passes through unchanged", problems)
    backs = target.setdefault(link.field, [])
    if not any(b.get("reference") == back for b in backs):
        backs.append({"reference": back})
    return None


def _keep(link: Link, reason: str, problems: list[Problem]) -> None:
    url = kept_url(link.path)
    reference = copy.deepcopy(link.reference)
    if isinstance(reference, dict) and isinstance(reference.get("reference"), str):
        reference["reference"] = retype(reference["reference"])
    link.source.r5.setdefault("extension", []).append({"url": url, "valueReference": reference})
    problems.append(
        Problem(
            link.source.label,
            f"{link.source.prefix}{link.path} {reason}; kept as extension {url}",
            warning=True,
        )
    )


def _resolve(reference: str, source: Node, top: dict[str, Json]) -> tuple[Json | None, str]:
    """The R5 resource `reference` names, seen from `source`, and how it names `source` back."""
    own_id = source.r5.get("id")
    if reference.startswith("#"):
        if source.container is None:  # one of our own contained resources; it names us "#"
            scope, back = source.r5.get("contained", []), "#"
        elif reference == "#":
            return source.container.r5, f"#{own_id}"
        else:  # a sibling in our container
            scope, back = source.container.r5.get("contained", []), f"#{own_id}"
        found = next((c for c in scope if isinstance(c, dict) and c.get("id") == reference[1:]), None)
        return found, back
    key = reference_key(retype(reference))
    if source.container is not None or key is None:
        return None, ""
    return top.get(key), f"{source.r5['resourceType']}/{own_id}"


def _ingredient_products(ctx: Context, top: dict[str, Json]) -> None:
    """Ingredient.for also names the product: the MedicinalProductDefinition an APD is a form of,
    or that a PPD holding the MID is a package for (R4 reached the product only through them)."""
    products_of: dict[str, list[str]] = {}
    for resource in top.values():
        if resource["resourceType"] == "AdministrableProductDefinition":
            key = f"AdministrableProductDefinition/{resource['id']}"
            products_of.setdefault(key, []).extend(_literal(resource.get("formOf")))
        elif resource["resourceType"] == "PackagedProductDefinition":
            for item in _contained_items(resource.get("packaging")):
                products_of.setdefault(item, []).extend(_literal(resource.get("packageFor")))
    for node in ctx.nodes:
        if node.container is not None or node.r5["resourceType"] != "Ingredient" or _exact_for(node.r4):
            continue
        fors = node.r5.get("for", [])
        for reference in list(_literal(fors)):
            for product in products_of.get(reference_key(reference) or "", []):
                if product not in _literal(fors):
                    fors.append({"reference": product})


def _exact_for(r4: Json) -> bool:
    """Whether R4 `r4` carries R5's Ingredient.for exactly (our R4 view's ``r5-`` extension): then
    nothing is added (a kit's package may hold another product's item; its R5 does not name it)."""
    wanted = R5_KEPT_BASE + "Ingredient.for"
    return any(isinstance(e, dict) and e.get("url") == wanted for e in r4.get("extension") or [])


def _literal(references: Any) -> list[str]:
    return [
        r["reference"]
        for r in references or []
        if isinstance(r, dict) and isinstance(r.get("reference"), str)
    ]


def _contained_items(packaging: Any) -> Iterator[str]:
    """``Type/id`` of every item of a packaging tree (relative or absolute references)."""
    levels = packaging if isinstance(packaging, list) else [packaging] if isinstance(packaging, dict) else []
    for level in levels:
        for item in level.get("containedItem", []):
            reference = item.get("item", {}).get("reference", {}).get("reference")
            key = reference_key(reference) if isinstance(reference, str) else None
            if key is not None:
                yield key
        yield from _contained_items(level.get("packaging"))


# --- what R5 cannot hold as it was sent ------------------------------------------------------------


def _drop_extensions_without_url(value: Any, path: str, label: str, problems: list[Problem]) -> bool:
    """Leave out every extension that has no url (FHIR requires one: nobody can tell what it means),
    and an extension that holds nothing once they are gone; each with a warning. True if any went."""
    if isinstance(value, list):
        return any([_drop_extensions_without_url(item, path, label, problems) for item in value])
    if not isinstance(value, dict):
        return False
    dropped = False
    for key in list(value):
        child, where = value[key], f"{path}.{key}"
        if key not in ("extension", "modifierExtension") or not isinstance(child, list):
            went = isinstance(child, dict | list) and _drop_extensions_without_url(
                child, where, label, problems
            )
            if went and key.startswith("_"):  # a primitive's extensions: a holder left empty goes too
                _drop_empty_holders(value, key)
            dropped |= went
            continue
        kept = []
        for n, extension in enumerate(child):
            place = f"{where}[{n}]"
            if isinstance(extension, dict) and not isinstance(extension.get("url"), str):
                problems.append(
                    Problem(label, f"{place} has no url, so what it means is unknown; left out", True)
                )
            elif _drop_extensions_without_url(extension, place, label, problems) and not _holds_something(
                extension
            ):
                problems.append(
                    Problem(label, f"{place} ({extension['url']}) holds nothing without them; left out", True)
                )
            else:
                kept.append(extension)
                continue
            dropped = True
        if kept:
            value[key] = kept
        else:
            del value[key]
    return dropped


def _drop_empty_holders(parent: Json, key: str) -> None:
    """`_name` with no extension left: FHIR allows no empty element (nulls keep a list's places)."""
    holder = parent[key]
    if isinstance(holder, dict) and not holder.get("extension"):
        del parent[key]
    elif isinstance(holder, list):
        places = [h if isinstance(h, dict) and h.get("extension") else None for h in holder]
        if any(h is not None for h in places):
            parent[key] = places
        else:
            del parent[key]


def _holds_something(extension: Json) -> bool:
    return bool(extension.get("extension")) or any(k.startswith("value") for k in extension)


def _type_extension_values(value: Any, path: str, label: str, problems: list[Problem]) -> None:
    """Every extension value JSON types as a number or true/false that came as text (``"valueInteger":
    "1"``, as FHIR.js writes R4 XML's nested extensions) read as its type, in place, with one warning
    per resource; an extension whose text is no such value is left out, with a warning."""
    texts: list[str] = []
    _type_values(value, path, label, problems, texts)
    if texts:
        more = f" and {len(texts) - 1} more" if len(texts) > 1 else ""
        problems.append(
            Problem(label, f"{texts[0]}{more} came as text; read as the type FHIR gives the value", True)
        )


def _type_values(value: Any, path: str, label: str, problems: list[Problem], texts: list[str]) -> None:
    if isinstance(value, list):
        for item in value:
            _type_values(item, path, label, problems, texts)
        return
    if not isinstance(value, dict):
        return
    for key in list(value):
        child, where = value[key], f"{path}.{key}"
        if key not in ("extension", "modifierExtension") or not isinstance(child, list):
            _type_values(child, where, label, problems, texts)
            continue
        kept = []
        for n, extension in enumerate(child):
            place = f"{where}[{n}]"
            if isinstance(extension, dict):
                kind = next((k for k in TYPED_VALUES if isinstance(extension.get(k), str)), None)
                if kind is not None:
                    typed = typed_value(kind, extension[kind])
                    if isinstance(typed, str):
                        problems.append(
                            Problem(
                                label,
                                f"{place}.{kind} {typed!r} is not a FHIR {kind[5].lower()}{kind[6:]}; left out",
                                True,
                            )
                        )
                        continue
                    texts.append(f"{place}.{kind} {extension[kind]!r}")
                    extension[kind] = typed
                _type_values(extension, place, label, problems, texts)
            kept.append(extension)
        if kept:
            value[key] = kept
        else:
            del value[key]
