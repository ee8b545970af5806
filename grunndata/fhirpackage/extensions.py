"""Every extension we serve, with where it may appear and what value it holds, read from the mapping tables.

The FEST ones (``fest-<element>``) come from walking the FEST->IDMP tables with the M30 XSD, as
translate() walks an entry: an `Ext` row puts ``fest-<element>`` on its FHIR path, a `To` row puts it
on the element above its path when FHIR cannot hold the value (rules.fallback_owner), an `Into` row
moves the place down. The value types are those values.tree writes for the XSD type. The SAFEST
ones (``r4-<R4 path>``) are the `Keep` rows of the R4->R5 tables, on the R5 element of the R4 parent.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import unquote

from grunndata.fhir import systems as s
from grunndata.importers.resources import SOURCE_PROFILE
from grunndata.importers.tiered import TIERS
from grunndata.importers.tiered.keys import CODE_COLUMNS
from grunndata.m30 import catalogues
from grunndata.store.barcodes import MATCH_EXTENSION
from grunndata.translators.fest_to_idmp.rules import Custom, Ext, Into, Table, To, fallback_owner, parse_path
from grunndata.translators.fest_to_idmp.schema import oppf_xsd
from grunndata.translators.fest_to_idmp.tables import MAPPINGS
from grunndata.translators.fest_to_idmp.values import XsdNode
from grunndata.translators.safest import kept_url, mapping, primitive_keeps

COMPLEX = "complex"
"""An XSD element with children: the extension holds sub-extensions (one per child), no value."""

_LEAF_TYPES: dict[str, tuple[str, ...]] = {
    "kith:CV": ("Coding",),
    "kith:CS": ("Coding",),
    "kith:PQ": ("Quantity",),
    "kith:MO": ("Money",),
    "kith:URL": ("uri",),
    "kith:TS": ("dateTime", "string"),
    "IDREF": ("Reference",),
    "boolean": ("boolean", "string"),
    "int": ("integer", "string"),
    "integer": ("integer", "string"),
    "decimal": ("decimal", "string"),
    "double": ("decimal", "string"),
    "date": ("date", "string"),
    "dateTime": ("dateTime", "string"),
    "time": ("time", "string"),
}
"""values.leaf_value: the value[x] types a FEST leaf of an XSD type becomes (valueString when FHIR's
type would not give the FEST text back); any other XSD type (string, ID, duration) is valueString."""


@dataclass(slots=True)
class ExtensionUse:
    """One extension: its url, the FHIR paths it appears on, its value types (none: sub-extensions only)."""

    url: str
    description: str
    contexts: set[str] = field(default_factory=set)
    types: set[str] = field(default_factory=set)
    complex: bool = False


def value_types(xsd_type: str) -> tuple[str, ...]:
    if xsd_type == COMPLEX:
        return ()
    return _LEAF_TYPES.get(xsd_type, ("string",))


def _path(where: str, relative: str) -> str:
    """A table's FHIR path as an element path: absolute, without list markers (``a[]``, ``a[0]``)."""
    rtype, segments = parse_path(relative)
    names = [name for name, _, _ in segments]
    return ".".join([rtype or where, *names]) if rtype else ".".join([where, *names])


def _segments_path(where: str, rtype: str | None, segments: tuple[tuple[str, int, int], ...]) -> str:
    return ".".join([rtype or where, *(name for name, _, _ in segments)])


def _walk(table: Table, where: tuple[str, ...], xsd: XsdNode) -> Iterator[tuple[str, str, str]]:
    """(url, FHIR element path, XSD type) for every extension `table` may write below `where`."""
    for rule in table.rules_in_order:
        child = xsd[1].get(rule.fest)
        if child is None:
            continue  # the coverage report lists a row the XSD does not have
        if isinstance(rule, Ext):
            for w in where:
                yield rule.url, _path(w, rule.at), child[0]
        elif isinstance(rule, To):
            rtype, segments = parse_path(rule.path)
            for w in where:  # a value FHIR cannot hold (empty, not in FHIR's format) goes above
                yield s.ext_url(rule.fest), _segments_path(w, rtype, fallback_owner(segments)), child[0]
        elif isinstance(rule, Into):
            if rule.new is not None:
                inner: tuple[str, ...] = (rule.new,)
            else:
                inner = tuple(_path(w, rule.path) for w in where)
                if rule.many is not None:
                    inner += tuple(_path(w, rule.many) for w in where)
            yield from _walk(rule.table, inner, child)
        elif isinstance(rule, Custom):
            if rule.keeps_at:  # fest-StyrkeNevner when it is no Quantity
                for w in where:
                    yield s.ext_url(rule.fest), _path(w, rule.keeps_at), child[0]
            for row in rule.covers:  # fest-Substansgruppe on each interactant
                found = re.match(r"(.*?)\.extension\[(fest-[^\]]+)\]", row.fhir)
                if found is not None and row.disposition == "extension":
                    yield s.EXT_BASE + found[2], _path(found[1], ""), COMPLEX


def _fest() -> dict[str, ExtensionUse]:
    uses: dict[str, ExtensionUse] = {}

    def add(url: str, context: str, xsd_type: str, description: str) -> None:
        use = uses.setdefault(url, ExtensionUse(url, description))
        use.contexts.add(context)
        use.types.update(value_types(xsd_type))
        use.complex = use.complex or xsd_type == COMPLEX

    for cat in catalogues():
        oppf = oppf_xsd(cat.name)
        for kind in cat.payloads:
            mapping_ = MAPPINGS.get(kind)
            if mapping_ is None:
                continue
            xsd = oppf if kind == "Info" else oppf[1][kind]
            for url, context, xsd_type in _walk(mapping_.table, (mapping_.resource,), xsd):
                element = url.removeprefix(s.EXT_BASE + "fest-")
                add(
                    url, context, xsd_type, f"FEST element {element}, which the FHIR element has no place for"
                )
            add(
                s.EXT_OPPFORING,
                mapping_.resource,
                COMPLEX,
                "The Oppf envelope (Id, Tidspunkt, Status) of the FEST entry",
            )
    generic = (
        (
            s.EXT_LEXICAL,
            ("Quantity", "Money"),
            "string",
            "The FEST text of a number whose FHIR form prints differently (1.50)",
        ),
        (s.EXT_EMPTY, ("Extension",), "boolean", "A FEST element that was present but empty"),
        # unit_coding copies a Coding's extensions onto the Quantity made from a unit CV
        (s.EXT_ORIGINAL_TEXT, ("Coding", "Quantity"), "string", "A CV's OT (original text) attribute"),
        (
            s.EXT_EMPTY_ATTRIBUTE,
            ("Coding", "Quantity", "Money"),
            "string",
            "Names an attribute FEST gave as an empty string",
        ),
    )
    for url, contexts, xsd_type, description in generic:
        for context in contexts:
            add(url, context, xsd_type, description)
    return uses


_KEPT_BY_CODE: tuple[tuple[str, str], ...] = (
    ("MedicinalProductManufactured.quantity", "when no package of the delivery counts the item"),
    ("MedicinalProductIngredient.specifiedSubstance", "beside a substance, or a second one"),
    ("MedicinalProductPackaged.packageItem.quantity", "not a whole number (tables.whole_number)"),
    ("MedicinalProductPharmaceutical.device", "all but the first (R5 holds one)"),
    *(
        (f"MedicinalProductIngredient.{substance}.strength.{path}", why)
        for substance in ("substance", "specifiedSubstance")
        for path, why in (
            ("presentationLowLimit", "another denominator than presentation"),
            ("concentrationLowLimit", "another denominator than concentration"),
            ("referenceStrength", "without the substance R5 requires"),
            ("referenceStrength.strengthLowLimit", "another denominator than strength"),
        )
    ),
    ("SubstanceSpecification.property", "with what R5's property has no place for"),
    ("SubstanceSpecification.molecularWeight", "without the amount R5 requires"),
    ("SubstanceSpecification.structure.molecularWeight", "without the amount R5 requires"),
    ("SubstanceSpecification.relationship", "without the type R5 requires"),
)
"""R4 elements a converter or a custom function of the SAFEST tables may keep (valueString), beside
the `Keep` and `Consumed` rows mapping() lists: the tables' functions, which no row can show."""


def _kept() -> dict[str, ExtensionUse]:
    """r4-<path>: valueString (the R4 JSON as text) on the R5 element of the R4 parent; a reversed
    reference whose target is not in the delivery stays on the resource as a valueReference."""
    rows = list(mapping())
    r5_of: dict[str, str] = {}
    for row in rows:
        if row.how in ("element", "custom"):
            r5_of.setdefault(row.r4, row.r5.split(" | ")[0])
    resources = {
        row.r4.split(".")[0]: row.r5.split(".")[0] for row in rows if row.how in ("element", "custom")
    }
    uses: dict[str, ExtensionUse] = {}

    def add(r4: str, value_type: str, why: str, on_resource: bool = False) -> None:
        parent = r4.rsplit(".", 1)[0]
        where = resources[parent.split(".")[0]] if on_resource else r5_of.get(parent) or resources[parent]
        url = kept_url(r4)
        use = uses.setdefault(url, ExtensionUse(url, f"R4 {r4}, which R5 cannot hold here: {why}"))
        use.contexts.add(where)
        use.types.add(value_type)

    for row in rows:
        if row.how == "extension":
            add(row.r4, "string", row.note)
        elif row.how.startswith("with "):
            add(row.r4, "string", f"given without {row.how[5:]}")
        elif row.how == "reversed":
            add(row.r4, "Reference", "the resource it names is not in the delivery", on_resource=True)
    for r4, why in _KEPT_BY_CODE:
        add(r4, "string", why)
    for r4 in primitive_keeps():
        add(r4, "string", "extensions on a primitive whose R5 form differs (the R4 JSON of its _name)")
    return uses


def _catalogue() -> dict[str, ExtensionUse]:
    """catalog-<field>: read off the Endpoint and Organization the catalogue makes of a service that
    has every field set (the functions write them in code, not by a table)."""
    from grunndata.catalog.fhir import EXT, endpoint_resource, organization_resource
    from grunndata.catalog.model import Availability, Service

    service = Service(
        "s", "S", "d", "o", "O", "national", "fhir-r5", "https://example.org/fhir", ("Basic",), ("read",),
        ("urn:oid:1",), "NLOD 2.0", "daily", "release 1", "test",
    )  # fmt: skip
    probed = Availability("s", 2, 1, datetime(2026, 1, 1, tzinfo=UTC), True, 1.0, "ok")
    uses: dict[str, ExtensionUse] = {}
    for resource in (endpoint_resource(service, probed), organization_resource("o", "O", ["national"])):
        for extension in resource.get("extension", []):
            url = str(extension["url"])
            if not url.startswith(EXT):
                continue
            use = uses.setdefault(url, ExtensionUse(url, f"The service catalogue's {url.removeprefix(EXT)}"))
            use.contexts.add(str(resource["resourceType"]))
            use.types.update(
                k.removeprefix("value")[:1].lower() + k[6:] for k in extension if k.startswith("value")
            )
            use.complex = use.complex or "extension" in extension
    return uses


def extension_uses() -> list[ExtensionUse]:
    """Every extension we serve, by url."""
    found = {**_fest(), **_kept(), **_catalogue()}
    found[SOURCE_PROFILE] = ExtensionUse(
        SOURCE_PROFILE,
        "A profile the sender's resource claimed (its meta.profile)",
        {"Resource"},
        {"canonical"},
    )
    found[CONCEPTMAP_VERIFIED] = ExtensionUse(
        CONCEPTMAP_VERIFIED,
        "Whether the code of a noMap ConceptMap element is verified (confirmed by real data or an "
        "official list), as the property 'verified' says it on every target",
        {"ConceptMap.group.element"},
        {"boolean"},
    )
    found[MATCH_EXTENSION] = ExtensionUse(
        MATCH_EXTENSION,
        "Where a barcode search (barcode, package-item-level-one|two|three) found the code in the "
        "matched resource: sub-extensions where (package, packaging or item), level (the packaging "
        "level counted from the top, 1 the outer, as DMP's package-item-level-*), packageLevel (DMP's "
        "PackageLevel the level states, 1 Primary counted from the item), unitDose, item (the contained "
        "item whose code it is) and identifier (the code as served)",
        {"Bundle.entry.search"},
        complex=True,
    )
    return [found[url] for url in sorted(found)]


CONCEPTMAP_VERIFIED = s.EXT_BASE + "conceptmap-verified"
"""terminology.verification.EXT_VERIFIED, on a noMap element of our ConceptMaps (named here, not
imported: this room does not use terminology; tests/terminology/test_verification.py holds them equal)."""

_TIERED = re.compile(re.escape(s.EXT_BASE) + f"({'|'.join(TIERS)})" + r"/([^/]+)/([^/]+)")


def tiered_extension(url: str) -> ExtensionUse | None:
    """The extension a column of an owner's CSV delivery becomes (importers.tiered.extension_url):
    on the row's Basic, a Coding when the column is named after a national code system, else a
    string. There is one per tier, owner and column, named by the data, so no package can list them
    all: the validator makes each definition from its url, by the rule the importer follows."""
    found = _TIERED.fullmatch(url)
    if found is None:
        return None
    tier, owner, column = found[1], found[2], unquote(found[3])
    value = "Coding" if column.lower() in CODE_COLUMNS else "string"
    return ExtensionUse(url, f"Column {column} of {owner}'s {tier} CSV deliveries", {"Basic"}, {value})
