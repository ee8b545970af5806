"""Terminology operations: ConceptMap read and `$translate`, CodeSystem `$lookup` and
`$validate-code`, ValueSet `$expand`. A ConceptMap search is the FHIR routes' (server/routes/fhir.py), as
for every type, over the maps `Terminology.listed` gives.

The maps are the reviewed files in grunndata/terminology (FEST code systems to EDQM and UCUM)
plus the FEST id <-> IDMP maps generated from the served release, and the ConceptMaps SAFEST
delivered; the code systems are the FEST Kodeverk and SAFEST's CodeSystems the release serves, the
value sets SAFEST's. What SAFEST delivered replaces ours of the same url and version
(`replace_ours`). All are indexed in memory once per snapshot, so an operation is a
dictionary lookup. Unknown systems and codes are answers (result=false), not errors; requests
that cannot be understood are 400.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

import orjson
from fastapi import Request

from grunndata import store
from grunndata.fhir import identifiers
from grunndata.memory import cycle_collection_paused
from grunndata.server.auth import ANONYMOUS
from grunndata.server.fhir_io.params import DEFAULT_LIMITS, Limits, posted_parameters, whole_number
from grunndata.server.fhir_io.responses import FhirError
from grunndata.server.state import PerSnapshot, Served
from grunndata.terminology import (
    IDENTIFIER_PARAMS,
    NAME_PARAMS,
    CannotExpand,
    CodeSystemIndex,
    Coding,
    ConceptMapIndex,
    Match,
    concept_map_files,
    id_maps,
    observed_maps,
    replace_ours,
    translate_parameters,
)

Json = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Indexes:
    token: str
    maps: ConceptMapIndex
    code_systems: CodeSystemIndex
    map_bytes: dict[str, bytes]  # ConceptMap id -> its JSON


class Terminology:
    """The maps and code systems of the snapshot being served, built for each new one.

    A build takes seconds at full size, in a thread of its own. The server builds a new snapshot's
    indexes before it serves that snapshot (`prepare`, one of Served.preparers), so requests find
    them ready. Requests that still have to wait (the first snapshot after start) wait without
    holding a worker thread (`ready()`): when a dozen `$translate` calls each held one of the
    pool's 40 threads, searches and history queued behind them.
    """

    def __init__(self, served: Served) -> None:
        self.served = served
        self.indexes = PerSnapshot(served, "terminology", self._build)

    def current(self) -> Indexes | None:
        """The served snapshot's indexes if they are built."""
        return self.indexes.built(self.served.snapshot(ANONYMOUS).token)

    async def ready(self) -> Indexes:
        """The served snapshot's indexes, waited for without holding a thread."""
        current = self.current()
        if current is not None:
            return current
        # shielded: a request that goes away must not cancel the build others wait for
        return await asyncio.shield(asyncio.wrap_future(self.indexes.future(self.served.snapshot(ANONYMOUS))))

    async def listed(self, request: Request, rtype: str) -> list[Json]:
        """The maps of the served snapshot, for the FHIR routes' ConceptMap search."""
        return list((await self.ready()).maps.maps) if rtype == "ConceptMap" else []

    def translate_now(self, query: bytes, limits: Limits = DEFAULT_LIMITS) -> bytes | None:
        """A GET $translate answered at once, for the fast path: None when the indexes of the
        current snapshot are not built yet, or the request needs the full route (formats, errors,
        parameters past `limits`)."""
        current = self.current()
        if current is None or len(query) > limits.bytes:
            return None
        try:
            items = parse_qsl(query.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError:
            return None
        if any(k in ("_format", "_pretty") for k, _ in items):
            return None
        try:
            asked = [(k, v) for k, v in items if not k.startswith("_")]
            limits.check(asked)
            return orjson.dumps(_translate(current, asked, None))
        except FhirError:
            return None

    def _build(self, snapshot: store.Snapshot) -> Indexes:
        # No cycle collection meanwhile: the build makes a million objects and no cycles, and each
        # full collection it set off held the interpreter for 100 to 300 ms, every thread waiting.
        # Then everything alive is moved out of the collector's sight (gc.freeze): otherwise the
        # million new objects set off a full collection soon after, as long. Objects frozen are
        # still freed when no longer referenced; only a cycle among them would stay.
        with cycle_collection_paused():
            built = self._build_paced(snapshot)
            gc.freeze()
        return built

    def _build_paced(self, snapshot: store.Snapshot) -> Indexes:
        pause = self.served.pace()  # GRUNNDATA_PREPARE_SHARE of the wall time (server/state.py Pace)
        with self.served.engine.connect() as conn:
            rows = store.index_values(conn, snapshot, IDENTIFIER_PARAMS + NAME_PARAMS)
            code_systems = [v.resource() for v in store.all_of_type(conn, snapshot, "CodeSystem")]
            fest_made = store.fest_made_ids(conn, snapshot, "CodeSystem")
            value_sets = [v.resource() for v in store.all_of_type(conn, snapshot, "ValueSet")]
            imported_maps = [v.resource() for v in store.all_of_type(conn, snapshot, "ConceptMap")]
            pairs = [
                pair
                for report in store.release_reports(conn, snapshot.releases)
                for pair in ((report.get("reconciliation") or {}).get("code_pairs") or [])
            ]
        ours = [
            *concept_map_files(),
            *id_maps(rows, snapshot.token, pause),
            *observed_maps(pairs, snapshot.token),
        ]
        # what SAFEST delivered replaces ours of the same url and version (the rule of the import report)
        maps, _ = replace_ours(ours, imported_maps)
        code_systems, _ = replace_ours(
            [c for c in code_systems if c["id"] in fest_made],
            [c for c in code_systems if c["id"] not in fest_made],
        )
        return Indexes(
            snapshot.token,
            ConceptMapIndex(maps, pause),
            CodeSystemIndex(code_systems, value_sets),
            {m["id"]: _dumps_paced(m, pause) for m in maps},
        )


def _dumps_paced(resource: Json, pause: Callable[[], None]) -> bytes:
    """`orjson.dumps(resource)`, byte for byte, with its groups' elements dumped one by one and
    `pause` called between: the FEST package id map (~10 MB) held the interpreter lock ~50 ms in one
    call, every request waiting. Each group's elements stand in the rest's dump as a marker string,
    a NUL on either side (no FHIR string holds one), replaced by their own dumps joined."""
    groups = resource.get("group")
    if not isinstance(groups, list):
        return orjson.dumps(resource)
    parts: list[tuple[bytes, list[Any]]] = []
    shell_groups = []
    for n, group in enumerate(groups):
        if isinstance(group, dict) and isinstance(group.get("element"), list):
            mark = f"\x00grunndata-elements-{n}\x00"
            parts.append((orjson.dumps(mark), group["element"]))
            group = {**group, "element": mark}  # the same place among the group's keys
        shell_groups.append(group)
    rest = orjson.dumps({**resource, "group": shell_groups})
    out = []
    for marker, elements in parts:
        before, _, rest = rest.partition(marker)
        dumped = []
        for element in elements:
            dumped.append(orjson.dumps(element))
            pause()
        out += [before, b"[", b",".join(dumped), b"]"]
    out.append(rest)
    return b"".join(out)


# -- reading operation parameters ------------------------------------------------------------------


def _bad(message: str) -> FhirError:
    return FhirError(400, "invalid", message)


async def inputs(request: Request, limits: Limits) -> list[tuple[str, Any]]:
    """(name, value) of the operation's parameters: the query, or a POSTed Parameters resource/form,
    within the bounds of a search (`limits`: the body is read no further than they allow).

    Coding values come as dicts; from a query or form, `system|code` is read as a Coding.
    """
    items: list[tuple[str, Any]] = [
        (k, v) for k, v in request.query_params.multi_items() if not k.startswith("_")
    ]
    if request.method == "POST":
        items += await posted_parameters(request, limits)
    if len(items) > limits.params:
        raise limits.exceeded("params", f"the request sends {len(items):,} parameters")
    limits.check([(k, v) for k, v in items if isinstance(v, str)])
    for name, value in items:
        codings = value.get("coding") if isinstance(value, dict) else None
        if codings is not None and not isinstance(codings, list):
            raise _bad(f"{name}: coding must be a list of Codings")
        if codings is not None and len(codings) > limits.values:
            raise limits.exceeded("values", f"{name} has {len(codings):,} codings")
    return items


def _one(items: list[tuple[str, Any]], *names: str) -> Any:
    found = [v for k, v in items if k in names]
    if len(found) > 1:
        raise _bad(f"give {names[0]} once")
    return found[0] if found else None


def _text(items: list[tuple[str, Any]], *names: str) -> str | None:
    value = _one(items, *names)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise _bad(f"{names[0]} must be a non-empty string")
    return value


def _coding(value: Any, name: str) -> Coding:
    if isinstance(value, str):
        system, bar, code = value.rpartition("|")
        if not bar or not code:
            raise _bad(f"{name} in a query is written system|code")
        return Coding(system or None, code)
    if isinstance(value, dict) and isinstance(value.get("code"), str):
        of, display = value.get("system"), value.get("display")
        if not isinstance(of, str | None) or not isinstance(display, str | None):
            raise _bad(f"{name}: a Coding's system and display are strings")
        return Coding(of, value["code"], display)
    raise _bad(f"{name} must be a Coding with a code")


def _codings(
    items: list[tuple[str, Any]],
    code_names: tuple[str, ...],
    coding_names: tuple[str, ...],
    concept: str,
    system: str | None,
) -> list[Coding]:
    found = []
    code = _text(items, *code_names)
    if code is not None:
        found.append(Coding(system, code))
    coding = _one(items, *coding_names)
    if coding is not None:
        found.append(_coding(coding, coding_names[0]))
    concept_value = _one(items, concept)
    if concept_value is not None:
        if not isinstance(concept_value, dict) or not concept_value.get("coding"):
            raise _bad(f"{concept} must be a CodeableConcept with a coding")
        found += [_coding(c, concept) for c in concept_value["coding"]]
    return found


def _served(coding: Coding) -> Coding:
    form = identifiers.served(coding.system, coding.code) if coding.system else None
    return coding if form is None else Coding(form[0], form[1], coding.display)


def _served_system(system: str | None) -> str | None:
    kind = identifiers.kind_of(system) if system else None
    return system if kind is None or kind is identifiers.FEST_ID else kind.served


def _translate(indexes: Indexes, items: list[tuple[str, Any]], map_url: str | None) -> Json:
    """$translate with the R5 names, and the R4 ones (code, coding, targetsystem, reverse) still in use.

    Forward: sourceCode+system, sourceCoding or sourceCodeableConcept, optionally into targetSystem.
    Reverse: targetCode+targetSystem (or +system), targetCoding or targetCodeableConcept, optionally
    from the source system `system`; or R4's reverse=true with code+system, from targetsystem.
    """
    reverse_flag = _one(items, "reverse")
    if reverse_flag not in (None, "true", "false", True, False):
        raise _bad("reverse is true or false")
    system = _text(items, "system")
    target_system = _text(items, "targetSystem", "targetsystem", "target")
    url = map_url or _text(items, "url", "conceptMap")
    sources = _codings(
        items, ("sourceCode", "code"), ("sourceCoding", "coding"), "sourceCodeableConcept", system
    )
    r5_targets = _codings(
        items, ("targetCode",), ("targetCoding",), "targetCodeableConcept", target_system or system
    )
    if sources and r5_targets:
        raise _bad("give a source concept or a target concept to translate, not both")
    if r5_targets:  # R5 reverse: the other side is `system` when the code's own system came as targetSystem
        wanted, into, reverse = r5_targets, system if target_system else None, True
    elif reverse_flag in ("true", True):  # R4 reverse
        wanted, into, reverse = sources, target_system, True
    else:
        wanted, into, reverse = sources, target_system, False
    if not wanted:
        raise _bad("nothing to translate: give sourceCode and system, sourceCoding, or targetCode")
    # a code means nothing without its system (R5: "If a code is provided, a system must be provided")
    if any(not c.system for c in wanted):
        raise _bad("a code to translate needs its system (sourceCode with system, a Coding with its system)")
    # an identifier in any form a search accepts (an alias system, a FEST id without ID_, a GTIN-14)
    # is translated as its served form, which is what the id maps hold
    wanted = [_served(c) for c in wanted]
    into = _served_system(into)
    version = _text(items, "conceptMapVersion")
    if version is not None:
        if url is None:
            raise _bad("conceptMapVersion needs the map: give url (or ask the ConceptMap instance)")
        listed, bar, own = url.partition("|")
        if bar and own != version:
            raise _bad(f"url names version {own!r} and conceptMapVersion {version!r}")
        url = f"{listed}|{version}"
    if url is not None and indexes.maps.find(url) is None:
        return translate_parameters([], f"there is no ConceptMap {url!r} here")
    matches: list[Match] = []
    messages = []
    for c in wanted:
        found, message = indexes.maps.translate(
            c.code, c.system, target_system=into, url=url, reverse=reverse
        )
        matches += [m for m in found if m not in matches]
        if message:
            messages.append(message)
    return translate_parameters(matches, None if matches else "; ".join(messages) or None)


# -- the routes ------------------------------------------------------------------------------------


# -- the operations, given a snapshot's indexes (routes: server/routes/terminology.py) -----------


def translate(ix: Indexes, items: list[tuple[str, Any]], map_id: str | None = None) -> Json:
    """`$translate` with every map, or with the map `map_id` only."""
    if map_id is None:
        return _translate(ix, items, None)
    if map_id not in ix.map_bytes:
        raise FhirError(404, "not-found", f"there is no ConceptMap/{map_id}")
    return _translate(ix, items, orjson.loads(ix.map_bytes[map_id])["url"])


def lookup(ix: Indexes, items: list[tuple[str, Any]]) -> Json:
    coding = _codings(items, ("code",), ("coding",), "codeableConcept", _text(items, "system"))
    if len(coding) != 1 or not coding[0].system:
        raise _bad("$lookup needs one code with its system (system and code, or coding)")
    version = _text(items, "version")
    found = ix.code_systems.lookup(coding[0].system, coding[0].code, version)
    if found is None:
        known = ix.code_systems.get(coding[0].system, version) is not None
        what = f"code {coding[0].code!r} is not in" if known else "there is no code system"
        named = f"{coding[0].system}|{version}" if version else coding[0].system
        raise FhirError(404, "not-found", f"{what} {named}")
    return found


def validate_code(ix: Indexes, items: list[tuple[str, Any]]) -> Json:
    url = _text(items, "url", "system")
    coding = _codings(items, ("code",), ("coding",), "codeableConcept", url)
    if len(coding) != 1:
        raise _bad("$validate-code needs one code (code with url, or coding)")
    system = coding[0].system or url
    if not system:
        raise _bad("$validate-code needs the code system: url, system or coding.system")
    display = _text(items, "display") or coding[0].display
    version = _text(items, "version", "systemVersion")
    return ix.code_systems.validate_code(system, coding[0].code, display, version)


def expand(ix: Indexes, items: list[tuple[str, Any]]) -> Json:
    url = _text(items, "url")
    if url is None:
        raise _bad("$expand needs url: the code system's url (its implicit value set of every code)")
    offset = whole_number("offset", str(_one(items, "offset") or 0), 0, 10_000_000)
    count_value = _one(items, "count")
    count = None if count_value is None else whole_number("count", str(count_value), 0, 100_000)
    version = _text(items, "valueSetVersion")
    try:
        expansion = ix.code_systems.expand(
            url, version=version, filter=_text(items, "filter"), offset=offset, count=count
        )
    except CannotExpand as e:
        raise FhirError(422, "not-supported", str(e)) from None
    if expansion is None:
        named = f"{url}|{version}" if version else url
        raise FhirError(
            404,
            "not-found",
            f"there is no value set {named!r} here (neither a ValueSet nor a code system's own)",
        )
    return expansion
