"""DMP's national line: FEST entries and SAFEST resources side by side, and the FHIR served from both.

A national release keeps both sources as they came (`FEST.<catalogue>` entries, `SAFEST.<type>`
resources, never served) and serves the FHIR resources made from them. Those are remade from
the whole release at every import of either source: FEST's entries through the FEST->IDMP
tables, then SAFEST over them (translators/overlay.py): one resource where both describe the
same thing, SAFEST's resources with no FEST counterpart beside them, disagreements reported.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import sys
import typing
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from grunndata.errors import DeliveryError
from grunndata.fhir import EDQM, EDQM_ALIASES, NS_FEST_ID
from grunndata.importers.identifiers import served_identifiers
from grunndata.importers.run import MAX_REPORTED
from grunndata.m30 import FestEntry, catalogues, child_text
from grunndata.memory import YOUNG_EVERY, collect_young
from grunndata.store import ReleaseBuilder
from grunndata.store import index_rows as fhir_index_rows
from grunndata.terminology.phpid import PhpidIndex
from grunndata.translators import content_filters
from grunndata.translators.fest_to_idmp import LOOKUP_KINDS, translate
from grunndata.translators.fest_to_idmp.values import fhir_id
from grunndata.translators.overlay import Disagreement, Json, Key, Overlay

TIER, OWNER, OWNER_NAME = "national", "dmp", "Direktoratet for medisinske produkter (DMP)"
FEST_PREFIX, SAFEST_PREFIX = "FEST.", "SAFEST."
MAX_LISTED_DISAGREEMENTS = MAX_REPORTED
# Internal index row of a resource FEST and SAFEST were merged into: the M30 export writes FEST's
# own entry for it (store/exports.py), since the merged values are no longer FEST's.
MERGED = (("origin", "fest+safest"),)

Progress = Callable[[str | None, int, int, int], None]  # (what, items, done, total)

# Catalogues whose FHIR the others' references name and that name little themselves (substances,
# conditions, substitution groups): made first, so that few resources wait for what they name (_Serving)
_REFERENCED_FIRST = ("Virkestoff", "Vilkar", "Byttegruppe")
# FEST catalogue -> the FHIR type made from its entries, and the kind of link SAFEST names it by
_ITEM = "ManufacturedItemDefinition"
_LINKED_CATALOGUES = {
    "LegemiddelMerkevare": ("MedicinalProductDefinition", "LegemiddelMerkevare"),
    "LegemiddelVirkestoff": ("MedicinalProductDefinition", "LegemiddelVirkestoff"),
    "Legemiddelpakning": ("PackagedProductDefinition", "Legemiddelpakning"),
    "Legemiddeldose": ("ManufacturedItemDefinition", "Legemiddeldose"),
    "Virkestoff": ("SubstanceDefinition", "Virkestoff"),
}


def fest_type(catalogue: str) -> str:
    """Interned: the builder keeps one (type, id) per entry, and this string in each."""
    return sys.intern(FEST_PREFIX + catalogue)


def catalogue_of(rtype: str) -> str:
    return rtype.removeprefix(FEST_PREFIX)


def safest_type(rtype: str) -> str:
    return SAFEST_PREFIX + rtype


def is_fest(rtype: str) -> bool:
    return rtype.startswith(FEST_PREFIX)


def is_safest(rtype: str) -> bool:
    return rtype.startswith(SAFEST_PREFIX)


def is_derived(rtype: str) -> bool:
    """FHIR resources served: made from the sources, and remade from the whole release each time."""
    return not (is_fest(rtype) or is_safest(rtype))


@dataclass
class Reconciliation:
    """How FEST and SAFEST met in one release: what each covered, and where they disagree."""

    linked: dict[str, int] = field(default_factory=dict)  # FHIR type -> resources both describe
    fest_only: dict[str, int] = field(default_factory=dict)  # made from FEST, no SAFEST counterpart
    idmp_only: dict[str, int] = field(default_factory=dict)  # from SAFEST, no FEST counterpart
    disagreements: list[Disagreement] = field(default_factory=list)
    code_pairs: list[dict[str, Any]] = field(default_factory=list)  # codes both gave one product

    def as_dict(self) -> dict[str, Any]:
        return {
            "linked": dict(sorted(self.linked.items())),
            "fest_only": dict(sorted(self.fest_only.items())),
            "idmp_only": dict(sorted(self.idmp_only.items())),
            "disagreement_count": len(self.disagreements),
            "disagreements": [d.as_dict() for d in self.disagreements[:MAX_LISTED_DISAGREEMENTS]],
            "code_pairs": self.code_pairs,
        }


class _Entries:
    """The translators' view of the release: entries of the looked-up kinds, by inner Id.

    Kept as their stored JSON (a fifth of a parsed entry's size) and parsed when asked for, the
    last few hundred asked kept parsed: a product's ingredients name the same few substances."""

    def __init__(self) -> None:
        self.by_id: dict[str, bytes] = {}
        self._parsed: dict[str, FestEntry] = {}

    def get(self, fest_id: str) -> FestEntry | None:
        found = self._parsed.get(fest_id)
        if found is None:
            data = self.by_id.get(fest_id)
            if data is None:
                return None
            if len(self._parsed) >= 512:
                self._parsed.clear()
            found = self._parsed[fest_id] = FestEntry.from_json(orjson.loads(data))
        return found


def derive(
    builder: ReleaseBuilder,
    progress: Progress | None = None,
    equivalents: Callable[[str, str], set[tuple[str, str]]] | None = None,
    hentet_dato: str | None = None,
) -> Derived:
    """Serve the FHIR resources of everything the release holds, and say how FEST and SAFEST met.

    All of them are remade each time, also for an incremental delivery, so a changed substance
    reaches every product that names it; only resources whose bytes change get a new version.
    No resource is served with a literal reference to one that is not served (see `_Serving`).
    Each is classified by DMP's H-resept content filters with `hentet_dato` (the release's) as now.
    """
    lookup_catalogues = {c.name for c in catalogues() if set(c.payloads) & LOOKUP_KINDS}
    lookup = _Entries()
    for _, data in builder.served_data(lambda t: is_fest(t) and catalogue_of(t) in lookup_catalogues):
        entry = FestEntry.from_json(orjson.loads(data))
        if entry.kind in LOOKUP_KINDS:
            lookup.by_id[entry.key] = data
    # every identifier of either source in its served form (fhir/identifiers.py) before they meet:
    # SAFEST's resources here, FEST's as they are made (below)
    safest = [served_identifiers(orjson.loads(data)) for _, data in builder.served_data(is_safest)]
    try:
        overlay = (
            Overlay(safest, _links(builder, safest), equivalents or (lambda s, c: set())) if safest else None
        )
    except ValueError as e:
        raise DeliveryError(f"refused: {e}") from None
    builder.replace_derived(is_derived)
    serving = _Serving(builder, content_filters.Classifier(content_filters.release_day(hentet_dato)))
    total = sum(1 for key in builder.active_keys() if is_fest(key[0])) if progress else 0
    first = {fest_type(c) for c in _REFERENCED_FIRST}  # what the others name is made before them
    entries = itertools.chain(
        builder.served_data(first.__contains__),
        builder.served_data(lambda t: is_fest(t) and t not in first),
    )
    for n, (source, data) in enumerate(entries, 1):
        key = source[1]
        entry = FestEntry.from_json(orjson.loads(data))
        if progress is not None and n % 500 == 0:
            progress(f"FHIR from {entry.catalogue}", n, n, total)
        if n % YOUNG_EVERY == 0:
            collect_young()
        made_here = [served_identifiers(r) for r in _translated(entry, key, lookup)]
        served = overlay.apply_all(made_here) if overlay is not None else made_here
        serving.serve(
            [(s, s is not r) for r, s in zip(made_here, served, strict=True)], source, entry.oppf_id
        )
    rest = overlay.rest() if overlay is not None else []
    serving.serve([(resource, True) for resource in rest], None, None)
    unserved = serving.finish()
    classes = serving.classifier.classes()
    builder.exclude(classes)
    filtered = filter_report(classes, hentet_dato)
    phpid = serving.phpids.comparison()
    if overlay is None:
        return Derived(None, unserved, serving.safest_references, filtered, phpid)
    idmp_only: dict[str, int] = {}
    for resource in rest:
        idmp_only[resource["resourceType"]] = idmp_only.get(resource["resourceType"], 0) + 1
    pairs = [
        {"element": p[0], "fest": list(p[1:4]), "safest": list(p[4:7]), "products": n}
        for p, n in sorted(overlay.observed.items())
    ]
    reconciliation = Reconciliation(
        dict(overlay.merged), dict(overlay.fest_only), idmp_only, overlay.disagreements, pairs
    )
    return Derived(reconciliation, unserved, serving.safest_references, filtered, phpid)


def filter_report(classes: Mapping[Key, frozenset[str]], hentet_dato: str | None) -> dict[str, Any]:
    """What each H-resept content filter excludes in the release (the import report's
    `content_filters`, shown by the CLI and `/migration`)."""
    now = content_filters.release_day(hentet_dato)
    return {
        "view": content_filters.H_RESEPT,
        "now": now.isoformat() if now else None,
        "cutoff": content_filters.months_before(now).isoformat() if now else None,
        "not_judged": [] if now else sorted(content_filters.TIME_DEPENDENT),
        "excluded": content_filters.counts(classes),
        "resources": len(classes),
    }


def code_equivalents() -> Callable[[str, str], set[tuple[str, str]]]:
    """(system, code) -> the codes our ConceptMaps relate it to, either way (FEST 7448 <-> EDQM...).

    An EDQM code counts the same under DMP's own dose-form systems, which publish EDQM's codes.
    """
    from grunndata.terminology import ConceptMapIndex, concept_map_files

    index = ConceptMapIndex(concept_map_files())
    known: dict[tuple[str, str], set[tuple[str, str]]] = {}

    def equivalents(system: str, code: str) -> set[tuple[str, str]]:
        if (system, code) not in known:
            matches = index.translate(code, system)[0] + index.translate(code, system, reverse=True)[0]
            related = {
                (m.concept.system or "", m.concept.code)
                for m in matches
                if m.relationship != "not-related-to"
            }
            related |= {(alias, c) for s, c in related if s == EDQM for alias in EDQM_ALIASES}
            known[(system, code)] = related
        return known[(system, code)]

    return equivalents


def _translated(entry: FestEntry, key: str, lookup: _Entries) -> list[Json]:
    try:
        return translate(entry, lookup)
    except (KeyError, ValueError, TypeError, IndexError, AttributeError) as e:
        raise DeliveryError(
            f"cannot translate this entry to FHIR ({type(e).__name__}: {e}); this is a fault in "
            "grunndata's FEST to IDMP mapping, please report it with the entry",
            catalogue=entry.catalogue,
            entry_id=key,
        ) from e


_REFERENCE = re.compile(rb'"reference":("(?:[^"\\]|\\.)*")')
"""Every Reference.reference in a resource's JSON as orjson writes it (no spaces)."""
_RELATIVE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9.\-]{1,64})(?:/_history/([A-Za-z0-9.\-]{1,64}))?\Z")
_ABSOLUTE_TAIL = re.compile(r"/([A-Z][A-Za-z]+)/([A-Za-z0-9.\-]{1,64})(?:/_history/[A-Za-z0-9.\-]{1,64})?\Z")


@dataclass(frozen=True, slots=True)
class Unserved:
    """A reference to a resource this release does not serve, and what was served instead."""

    resource: str  # the served resource holding it, Type/id
    path: str  # where in it, e.g. PackagedProductDefinition.packageFor
    target: str  # Type/id it named
    outcome: str  # "kept as an identifier-only reference" or "left out"
    from_safest: bool  # the resource holds SAFEST's data (made from it, or merged with it)

    def sentence(self) -> str:
        relative = _RELATIVE.match(self.target)
        why = (
            "a version the sender numbered (the store numbers versions itself)"
            if relative and relative[3] is not None
            else "which is neither in the delivery nor served"
        )
        return f"{self.path} points at {self.target}, {why}; {self.outcome}"


@dataclass
class Derived:
    """What `derive` did: how FEST and SAFEST met (None without SAFEST data), and the references
    it could not serve as they were."""

    reconciliation: Reconciliation | None
    unserved: list[Unserved]
    safest_references: int  # literal references in resources holding SAFEST data, for the guard
    content_filters: dict[str, Any]  # what each H-resept content filter excludes (`filter_report`)
    phpid: dict[str, Any] = field(default_factory=dict)  # PhPID groups against FEST's (PhpidIndex)


@dataclass(frozen=True, slots=True)
class _Waiting:
    key: Key
    packed: bytes  # as orjson wrote it, deflated (a tenth of the size): read again only at the end
    oppf: str | None
    from_safest: bool  # merged with SAFEST's data, or made from it alone
    targets: frozenset[str]  # the references it holds that named nothing served when it came


class _Serving:
    """Serves the FHIR resources of a release, each once every literal reference it holds is known
    to be served, or, at the end, with those that are not made identifier-only or left out.

    A resource whose references all name resources made before it (or with it, from the same
    entry) is written at once; one that names a resource not made yet waits, as its bytes, until
    everything is made.
    """

    def __init__(self, builder: ReleaseBuilder, classifier: content_filters.Classifier) -> None:
        self.builder = builder
        self.classifier = classifier
        # (type, id) -> the FEST entry it was made from, as the builder's own key of that entry (no
        # string of its own per resource), None for SAFEST's; the same key tuple goes to the builder
        self.made: dict[Key, Key | None] = {}
        self.waiting: list[_Waiting] = []
        self.safest_references = 0
        self.phpids = PhpidIndex()  # PhPIDs added as the products and packages are made

    def serve(self, resources: list[tuple[Json, bool]], origin: Key | None, oppf: str | None) -> None:
        """Serve what one source made together: (resource, whether it holds SAFEST's data).
        `origin`: the FEST entry they were made from (its store key), None for SAFEST's."""
        keys = [(resource["resourceType"], resource["id"]) for resource, _ in resources]
        for key in keys:
            if key in self.made:
                raise DeliveryError(
                    f"{_origin(self.made[key])} and {_origin(origin)} both make {key[0]}/{key[1]}; "
                    "their ids collide once made into FHIR ids"
                )
            self.made[key] = origin
        self.phpids.see([resource for resource, _ in resources])
        for key, (resource, from_safest) in zip(keys, resources, strict=True):
            body = orjson.dumps(resource)
            contained = _contained_ids(resource)
            found = [orjson.loads(m) for m in _REFERENCE.findall(body)]
            if from_safest:
                self.safest_references += len(found)
            missing = frozenset(r for r in found if not self._names_served(r, contained))
            if missing:
                self.waiting.append(_Waiting(key, zlib.compress(body, 1), oppf, from_safest, missing))
            else:
                self._put(key, body, oppf, from_safest and oppf is not None, resource)

    def finish(self) -> list[Unserved]:
        """Serve what waited; the references that name nothing served, as they were handled."""
        unserved: list[Unserved] = []
        for w in self.waiting:
            body = zlib.decompress(w.packed)
            resource = orjson.loads(body)
            contained = _contained_ids(resource)
            gone = {t for t in w.targets if not self._names_served(t, contained)}
            if w.key[0] == "PackagedProductDefinition" and self.phpids.package(resource):
                body = orjson.dumps(resource)  # its product was made after it
            if gone:
                found: list[tuple[str, str, str]] = []
                resource = _unlinked(resource, gone, self.made, w.key[0], not w.from_safest, found)
                body = orjson.dumps(resource)
                label = f"{w.key[0]}/{w.key[1]}"
                unserved += [Unserved(label, path, t, outcome, w.from_safest) for path, t, outcome in found]
            self._put(w.key, body, w.oppf, w.from_safest and w.oppf is not None, resource)
        self.waiting = []
        return unserved

    def _names_served(self, reference: str, contained: set[str]) -> bool:
        """A local reference to a contained resource there is, or a relative one to a resource served.

        Anything else names what this release does not serve: a version (versions are the store's
        own), another server's resource (absolute), an urn no entry of the delivery had."""
        if reference.startswith("#"):
            return reference == "#" or reference[1:] in contained
        return _served_key(reference) in self.made

    def _put(self, key: Key, body: bytes, oppf: str | None, merged: bool, resource: Json) -> None:
        """`merged`: made from a FEST entry (it has an Oppf Id) and holding SAFEST's data."""
        self.classifier.observe(resource, body, key)
        self.builder.put(
            key[0],
            key[1],
            body,
            hashlib.sha256(body).hexdigest(),
            oppf,
            MERGED if merged else (),
            fhir_index=fhir_index_rows(resource),
            key=key,
        )


def _origin(source: Key | None) -> str:
    """What a served resource was made from, in words: the FEST entry, or SAFEST."""
    return f"FEST {catalogue_of(source[0])} Id {source[1]}" if source is not None else "SAFEST"


def _contained_ids(resource: Json) -> set[str]:
    return {
        c["id"]
        for c in resource.get("contained") or []
        if isinstance(c, dict) and isinstance(c.get("id"), str)
    }


def _served_key(reference: str) -> Key | None:
    """(type, id) of a relative reference to a current version; None for any other kind."""
    m = _RELATIVE.match(reference)
    return (m[1], m[2]) if m and m[3] is None else None


def _unlinked(
    value: Any,
    gone: set[str],
    made: Mapping[Key, Key | None],
    path: str,
    fest_made: bool,
    found: list[tuple[str, str, str]],
    model: Any = None,
) -> Any:
    """`value` without literal references to `gone`: identifier-only where an identifier is known
    (given, or the FEST Id a FEST-made reference stands for), left out otherwise; `_GONE` when the
    element itself must go (R5 requires what was left out, or nothing is left). `model` is the
    element's fhir.resources class, which says what R5 requires."""
    if isinstance(value, list):
        items = [_unlinked(v, gone, made, path, fest_made, found, model) for v in value]
        kept = [v for v in items if v is not _GONE]
        return kept if kept or not items else _GONE
    if not isinstance(value, dict):
        return value
    if isinstance(value.get("resourceType"), str):  # a resource, or a contained one
        model = _model(value["resourceType"])
    target = value.get("reference")
    if isinstance(target, str) and target in gone:
        relative = _RELATIVE.match(target)
        if relative and relative[3] is not None and (relative[1], relative[2]) in made:
            found.append((path, target, f"it names {relative[1]}/{relative[2]} instead"))
            return {**value, "reference": f"{relative[1]}/{relative[2]}"}
        named = relative or _ABSOLUTE_TAIL.search(target)
        logical = {k: v for k, v in value.items() if k != "reference"}
        if relative and relative[3] is None and "identifier" not in logical and fest_made:
            # FEST's literal_reference: "ID_" + id is the FEST Id
            logical["identifier"] = {"system": NS_FEST_ID, "value": "ID_" + relative[2]}
        if "identifier" in logical:
            found.append((path, target, "kept as an identifier-only reference"))
            return {"type": named[1], **logical} if named and "type" not in logical else logical
        found.append((path, target, "left out"))
        return _GONE
    out: Json = {}
    for key, child in value.items():
        if not isinstance(child, dict | list):
            out[key] = child
            continue
        child_model, required = _child_model(model, key)
        kept = _unlinked(child, gone, made, f"{path}.{key}", fest_made, found, child_model)
        if kept is not _GONE:
            out[key] = kept
        elif required:
            return _GONE
    if len(out) == len(value):
        return out
    if not out or ("url" in out and not any(k.startswith("value") or k == "extension" for k in out)):
        return _GONE  # nothing left, or an extension whose only value was the reference
    return out


def _model(rtype: str) -> Any:
    from fhir.resources import get_fhir_model_class

    try:
        return get_fhir_model_class(rtype)
    except KeyError:
        return None


def _child_model(model: Any, key: str) -> tuple[Any, bool]:
    """The fhir.resources class of `model`'s element `key`, and whether R5 requires it."""
    if model is None:
        return None, False
    fields = model.model_fields
    info = fields.get(key) or fields.get(key + "_fhir")  # for, class ...: Python keywords
    if info is None:
        return None, False
    return _model_in(info.annotation), info.is_required()


def _model_in(annotation: Any) -> Any:
    """fhir.resources writes element types as placeholders named after the class (``ReferenceType``)."""
    name = getattr(annotation, "__name__", "")
    if name.endswith("Type") and name[:1].isupper():
        return _model(name[: -len("Type")])
    return next((m for m in map(_model_in, typing.get_args(annotation)) if m is not None), None)


_GONE: Any = object()


def _links(builder: ReleaseBuilder, safest: list[Json]) -> dict[Key, Key]:
    """SAFEST resource -> the FEST-made resource it stands for, where the FEST entry it names exists."""
    from grunndata.translators.safest import fest_links

    targets: dict[tuple[str, str], Key] = {}
    for rtype, fest_key in builder.active_keys():
        found = _LINKED_CATALOGUES.get(catalogue_of(rtype)) if is_fest(rtype) else None
        if found is not None:
            targets[(found[1], fhir_id(fest_key))] = (found[0], fhir_id(fest_key))
    for _, data in builder.served_data(lambda t: t == fest_type("Legemiddelpakning")):
        entry = FestEntry.from_json(orjson.loads(data))
        varenr = child_text(entry.payload[0], "Varenr") if entry.payload else None
        if varenr:
            targets[("varenr", varenr.strip())] = ("PackagedProductDefinition", fhir_id(entry.key))
    links: dict[Key, Key] = {}
    items_of: dict[Key, list[Key]] = {}  # a FEST brand's item -> the SAFEST items naming the brand
    for resource in safest:
        own = (str(resource.get("resourceType")), str(resource.get("id")))
        for link in fest_links(resource):
            target = targets.get(
                (link.kind, fhir_id(link.value)) if link.kind != "varenr" else (link.kind, link.value)
            )
            if target is not None and target[0] == own[0]:
                links[own] = target
                break
            if target is not None and own[0] == _ITEM and link.kind == "LegemiddelMerkevare":
                items_of.setdefault((_ITEM, target[1]), []).append(own)
    for item, named in items_of.items():  # every FEST brand makes one item, with the brand's id
        if len(named) == 1 and named[0] not in links:
            links[named[0]] = item
    return links
