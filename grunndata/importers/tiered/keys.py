"""The national ids sector and supplementary data are keyed on: varenr and FEST ids, as tables.

One table says which identifier systems are national keys, what each names and which CSV column
carries it; one says which CSV columns hold codes of a national code system. Adding a key or a
code column is a row here.
"""

from __future__ import annotations

from dataclasses import dataclass

from grunndata.fhir import (
    NS_DOSE,
    NS_LEGEMIDDELVIRKESTOFF,
    NS_MERKEVARE,
    NS_PAKNING,
    NS_VARENR,
    NS_VIRKESTOFF,
    RESEPTGRUPPE,
)
from grunndata.m30 import VOLVEN
from grunndata.store import Key, NationalCodeSystem, NationalKeys

FEST_ID_PREFIX = "ID_"


@dataclass(frozen=True, slots=True)
class NationalId:
    """An identifier system whose values must name a national entry."""

    system: str
    column: str  # the CSV key column that carries it
    names: str  # what a value names, for messages
    fest_id: bool  # FEST ids are "ID_" + a GUID; the "ID_" may be left out in a CSV


NATIONAL_IDS: tuple[NationalId, ...] = (
    NationalId(NS_VARENR, "varenr", "package", fest_id=False),
    NationalId(NS_PAKNING, "legemiddelpakning_id", "Legemiddelpakning", fest_id=True),
    NationalId(NS_MERKEVARE, "legemiddelmerkevare_id", "LegemiddelMerkevare", fest_id=True),
    NationalId(NS_LEGEMIDDELVIRKESTOFF, "legemiddelvirkestoff_id", "LegemiddelVirkestoff", fest_id=True),
    NationalId(NS_DOSE, "legemiddeldose_id", "Legemiddeldose", fest_id=True),
    NationalId(NS_VIRKESTOFF, "virkestoff_id", "Virkestoff", fest_id=True),
)
BY_SYSTEM = {n.system: n for n in NATIONAL_IDS}
KEY_COLUMNS = {n.column: n for n in NATIONAL_IDS}

CODE_COLUMNS: dict[str, str] = {
    # CSV column -> the national code system its values are codes of (Volven OIDs as FEST has them)
    "legemiddelform": f"urn:oid:{VOLVEN}7448",
    "pakningstype": f"urn:oid:{VOLVEN}7449",
    "enhet": f"urn:oid:{VOLVEN}7452",
    "administrasjonsvei": f"urn:oid:{VOLVEN}7477",
    "forhandsregel_inntak": f"urn:oid:{VOLVEN}7479",
    "enhet_dosering": f"urn:oid:{VOLVEN}7480",
    "bruksomrade_etikett": f"urn:oid:{VOLVEN}7488",
    "reseptgruppe": RESEPTGRUPPE,
}


def _candidates(kind: NationalId, value: str) -> list[str]:
    """The forms a key may be written in that name the same entry: with or without "ID_"."""
    value = value.strip()
    if not kind.fest_id:
        return [value]
    bare = value[len(FEST_ID_PREFIX) :] if value.upper().startswith(FEST_ID_PREFIX) else value
    return list(dict.fromkeys([FEST_ID_PREFIX + bare, FEST_ID_PREFIX + bare.upper()]))


def find_national(national: NationalKeys, system: str, value: str) -> Key | None:
    """The national resource a key names, or None."""
    kind = BY_SYSTEM[system]
    for candidate in _candidates(kind, value):
        if (found := national.identified(system, candidate)) is not None:
            return found
    return None


def unknown_key(system: str, value: str) -> str:
    """The sentence for a key that names no national entry."""
    kind = BY_SYSTEM[system]
    if not kind.fest_id:
        hint = ""
        if value.isdigit() and len(value) < 6:
            hint = " (a varenr has 6 digits; did a spreadsheet drop a leading zero?)"
        return f"varenr {value} names no national package{hint}"
    return f"FEST id {value} names no national {kind.names}"


def bare_key(system: str, value: str) -> str:
    """A key without the "ID_" of FEST ids: the part worth putting in a resource id."""
    value = value.strip()
    if BY_SYSTEM[system].fest_id and value.upper().startswith(FEST_ID_PREFIX):
        return value[len(FEST_ID_PREFIX) :]
    return value


def unknown_code(code: str, code_system: NationalCodeSystem) -> str:
    """The sentence for a code outside the national code system its Coding names."""
    return f"the code {code} is not in the national code system {code_system.url} ({code_system.name})"
