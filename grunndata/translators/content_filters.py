"""DMP's H-resept content filters (NoMA/SHI H-resept API guide, "API content Filters") over our R5
resources: which filters exclude each served resource, judged once per release with the
release's HentetDato as "now". Pure: the importer feeds it what it serves, the store keeps the
answer per release, a search leaves out what an enabled filter names. docs/h-resept-filters.md
says how each of DMP's rules is read from FEST's data.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from grunndata.fhir import ATC, EXT_OPPFORING, NS_DOSE, NS_VARENR, ext_url

Json = dict[str, Any]
Key = tuple[str, str]  # (resource type, id)

H_RESEPT = "h-resept"
ATC_Q = "atc-q"
HOMEOPATHIC = "homeopathic"
NOT_MARKETED = "not-marketed"
NO_VARENR = "no-varenr"
VARENR_EXPIRED = "varenr-expired"
UNIT_DOSE_EXPIRED = "unit-dose-expired"

FILTERS: dict[str, str] = {
    ATC_Q: "the product's ATC code starts with Q (veterinary): the product and all connected to it",
    HOMEOPATHIC: "Preparattype Homøopatisk human or veterinær: the product and all connected to it",
    NOT_MARKETED: "a package not marketed at any time in the three months up to HentetDato",
    NO_VARENR: "a package without a Nordic article number (varenr)",
    VARENR_EXPIRED: "a package whose listing (and so its varenr) expired more than three months before HentetDato",
    UNIT_DOSE_EXPIRED: "a unit dose (Legemiddeldose) with an expiry: its listing expired",
}
"""Every filter code, in DMP's order, with what it excludes."""

VIEWS: dict[str, tuple[str, ...]] = {H_RESEPT: tuple(FILTERS)}
"""A named view (the `content-filter` search parameter's values) -> the filter codes it applies."""

TIME_DEPENDENT = frozenset({NOT_MARKETED, VARENR_EXPIRED})
"""Filters judged against the release's HentetDato; without one they are not judged."""

HOMEOPATHIC_NAMES = ("homøopatisk human", "homøopatisk veterinær")
"""Preparattype display texts (FEST's CS DN) that are homeopathic, compared case-insensitively: the
Volven code values of the two are not published with FEST; a setting may add codes."""

MONTHS = 3
_MPD, _PPD, _MID = "MedicinalProductDefinition", "PackagedProductDefinition", "ManufacturedItemDefinition"
_PRODUCT_REFERENCE = re.compile(rb'"reference":"MedicinalProductDefinition/([A-Za-z0-9.\-]{1,64})"')
_ATC_EXT, _TYPE_EXT = ext_url("Atc"), ext_url("Preparattype")
_MIDLUTGATT_EXT = ext_url("MidlUtgattDato")
_EXPIRED_STATUS = frozenset({"retired", "inactive"})


def months_before(day: date, months: int = MONTHS) -> date:
    """The same day `months` calendar months earlier (the month's last day where it has fewer)."""
    year, month = divmod(day.year * 12 + day.month - 1 - months, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def release_day(hentet_dato: str | None) -> date | None:
    """The day of a HentetDato as FEST writes it (an xs:dateTime); None when absent or unreadable."""
    if not hentet_dato:
        return None
    try:
        return date.fromisoformat(hentet_dato.strip()[:10])
    except ValueError:
        return None


@dataclass
class Classifier:
    """Collects, resource by resource, what each filter needs; `classes()` gives the answer."""

    now: date | None  # the release's HentetDato; None: the time-dependent filters are not judged
    homeopathic_codes: frozenset[str] = frozenset()
    own: dict[Key, set[str]] = field(default_factory=dict)
    # resource -> ids of its products, as a tuple (a set per resource cost 216 bytes; most name one)
    products: dict[Key, tuple[str, ...]] = field(default_factory=dict)

    def observe(self, resource: Json, body: bytes, key: Key | None = None) -> None:
        """One served resource (`body`: its JSON as stored; `key`: its (type, id) if the caller
        holds it already, kept instead of a copy)."""
        if key is None:
            key = (str(resource.get("resourceType")), str(resource.get("id")))
        own = self._own(key[0], resource)
        if own:
            self.own[key] = own
        if key[0] == _MPD:  # its items (the merkevare's and the unit doses) belong to it
            for item in resource.get("comprisedOf") or ():
                target = _reference_id(item, _MID)
                if target is not None:
                    self._belongs((_MID, target), (key[1],))
        else:  # anything naming a product belongs to it: packages, forms, ingredients, authorizations
            named = {m.decode() for m in _PRODUCT_REFERENCE.findall(body)}
            if named:
                self._belongs(key, named)

    def _belongs(self, key: Key, product_ids: Iterable[str]) -> None:
        had = self.products.get(key, ())
        self.products[key] = tuple(sorted(set(had).union(product_ids)))

    def classes(self) -> dict[Key, frozenset[str]]:
        """Resource -> the filters that exclude it: its own, and its products' (ATC Q, homeopathic)."""
        out = {key: set(codes) for key, codes in self.own.items()}
        for key, product_ids in self.products.items():
            inherited = set()
            for pid in product_ids:
                inherited |= self.own.get((_MPD, pid), set()) & {ATC_Q, HOMEOPATHIC}
            if inherited:
                out.setdefault(key, set()).update(inherited)
        return {key: frozenset(codes) for key, codes in out.items() if codes}

    def _own(self, rtype: str, resource: Json) -> set[str]:
        found: set[str] = set()
        if rtype in (_MPD, _PPD, _MID):
            if any(c.get("code", "").upper().startswith("Q") for c in _atc_codings(resource)):
                found.add(ATC_Q)
            if any(self._homeopathic(c) for c in _type_codings(resource)):
                found.add(HOMEOPATHIC)
        if rtype == _PPD:
            if not any(
                i.get("system") == NS_VARENR and i.get("value") for i in _list(resource, "identifier")
            ):
                found.add(NO_VARENR)
            if self.now is not None:
                cutoff = months_before(self.now)
                if not _marketed_between(resource, cutoff, self.now):
                    found.add(NOT_MARKETED)
                expired = _expired_on(resource)
                if expired is not None and (isinstance(expired, bool) or expired < cutoff):
                    found.add(VARENR_EXPIRED)
        if rtype == _MID and _is_unit_dose(resource) and _expired_on(resource) is not None:
            found.add(UNIT_DOSE_EXPIRED)
        return found

    def _homeopathic(self, coding: Json) -> bool:
        display = str(coding.get("display", "")).strip().casefold()
        return display in HOMEOPATHIC_NAMES or str(coding.get("code", "")) in self.homeopathic_codes


def counts(classes: Mapping[Key, Iterable[str]]) -> dict[str, dict[str, int]]:
    """Per filter code: the resources it excludes, per resource type (a resource may count under
    several filters), in FILTERS order; every code is listed, with zeros."""
    out: dict[str, dict[str, int]] = {code: {} for code in FILTERS}
    for (rtype, _), codes in classes.items():
        for code in codes:
            out[code][rtype] = out[code].get(rtype, 0) + 1
    return {code: dict(sorted(by_type.items())) for code, by_type in out.items()}


def enabled(view: str | None, switched_on: Mapping[str, bool]) -> tuple[str, ...]:
    """The filter codes a view applies, less those a setting switched off (Settings.content_filters_on);
    none without a view. The R4 H-resept routes ask the store with these (store.search `excluded`,
    store.excluded_of for reads)."""
    if view is None:
        return ()
    return tuple(code for code in VIEWS[view] if switched_on.get(code, True))


def unknown_view_sentence(value: str) -> str:
    return f"content-filter must be one of {', '.join(VIEWS)}, not {value[:100]!r}"


# -- reading the resources -------------------------------------------------------------------------


def _list(value: Any, name: str) -> list[Any]:
    found = value.get(name) if isinstance(value, dict) else None
    return found if isinstance(found, list) else []


def _extension_codings(resource: Json, url: str) -> list[Json]:
    return [
        e["valueCoding"]
        for e in _list(resource, "extension")
        if isinstance(e, dict) and e.get("url") == url and isinstance(e.get("valueCoding"), dict)
    ]


def _atc_codings(resource: Json) -> list[Json]:
    """ATC on a product (classification) or as FEST's Atc on a package or unit dose (extension)."""
    codings = [
        c
        for concept in _list(resource, "classification")
        for c in _list(concept, "coding")
        if isinstance(c, dict) and c.get("system") == ATC
    ]
    return codings + [c for c in _extension_codings(resource, _ATC_EXT) if c.get("system") == ATC]


def _type_codings(resource: Json) -> list[Json]:
    """Preparattype: a product's type, or the extension on a package or unit dose."""
    kind = resource.get("type")
    codings = [c for c in _list(kind, "coding") if isinstance(c, dict)] if isinstance(kind, dict) else []
    return codings + _extension_codings(resource, _TYPE_EXT)


def _is_unit_dose(resource: Json) -> bool:
    return any(i.get("system") == NS_DOSE for i in _list(resource, "identifier") if isinstance(i, dict))


def _oppforing(resource: Json) -> dict[str, Any]:
    """The FEST Oppf envelope's Status code and Tidspunkt, where the resource carries it."""
    for e in _list(resource, "extension"):
        if isinstance(e, dict) and e.get("url") == EXT_OPPFORING:
            parts = {p.get("url"): p for p in _list(e, "extension") if isinstance(p, dict)}
            status = parts.get("Status", {}).get("valueCoding", {}).get("code")
            return {"status": status, "tidspunkt": parts.get("Tidspunkt", {}).get("valueDateTime")}
    return {}


def _expired_on(resource: Json) -> date | bool | None:
    """When the resource's listing expired: the Oppf Tidspunkt of a Status U entry (or of a
    retired/inactive resource), True when expired at an unknown date, None when not expired."""
    envelope = _oppforing(resource)
    status = resource.get("status")
    code = status if isinstance(status, str) else None
    if isinstance(status, dict):
        code = next((c.get("code") for c in _list(status, "coding") if isinstance(c, dict)), None)
    if envelope.get("status") != "U" and code not in _EXPIRED_STATUS:
        return None
    when = release_day(envelope.get("tidspunkt"))
    return when if when is not None else True


def _marketed_between(resource: Json, first: date, last: date) -> bool:
    """Whether any marketing period of the package overlaps [first, last]: from Markedsforingsdato
    (dateRange.start) to the earlier of AvregDato (dateRange.end) and MidlUtgattDato, either open."""
    for status in _list(resource, "marketingStatus"):
        span = status.get("dateRange") if isinstance(status, dict) else None
        start = release_day(span.get("start")) if isinstance(span, dict) else None
        if start is None:
            continue  # no date it was marketed from: no evidence it was
        ends = [release_day(span.get("end")) if isinstance(span, dict) else None]
        ends += [
            release_day(e.get("valueDate"))
            for e in _list(status, "extension")
            if isinstance(e, dict) and e.get("url") == _MIDLUTGATT_EXT
        ]
        end = min((d for d in ends if d is not None and d >= start), default=None)
        if start <= last and (end is None or end > first):
            return True
    return False


def _reference_id(value: Any, rtype: str) -> str | None:
    reference = value.get("reference") if isinstance(value, dict) else None
    if isinstance(reference, str) and reference.startswith(rtype + "/"):
        return reference[len(rtype) + 1 :]
    return None
