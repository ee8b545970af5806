"""CSV deliveries: one row, one `Basic` resource keyed on the national id in its key column.

A data owner's spreadsheet is the easiest way to add a handling note or a local catalogue number to
a national package. The header names exactly one key column (`keys.KEY_COLUMNS`); an `id` column
gives each row a stable id; every other non-empty cell becomes an extension, a Coding when its
column is named after a national code system (`keys.CODE_COLUMNS`), else a string.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from grunndata.fhir import CS_BASE, EXT_BASE, UNFIT_TEXT, unfit_sentence, unfit_text
from grunndata.importers.tiered.keys import (
    CODE_COLUMNS,
    KEY_COLUMNS,
    bare_key,
    find_national,
    unknown_code,
    unknown_key,
)
from grunndata.importers.tiered.problems import Place, Problem, refuse
from grunndata.store import NationalKeys

TIERED_DATA_SYSTEM = CS_BASE + "tiered-data"
"""Basic.code of a CSV row: the code is the tier the row was delivered in."""

ID_COLUMN = "id"
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9\-.]")
_LOOKS_LIKE_KEY = re.compile(
    r"^(\d{6}|(ID_)?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12})$"
)
_KEY_NAMES = ", ".join(KEY_COLUMNS)


@dataclass(frozen=True, slots=True)
class CsvRow:
    place: Place
    key: str  # the key value as given, trimmed
    row_id: str | None  # the `id` column, when given
    values: tuple[tuple[str, str], ...]  # (column, value) of the other non-empty cells, in header order


@dataclass
class CsvDelivery:
    file: str
    key_column: str
    columns: list[str]
    rows: list[CsvRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)


def read_csv(path: Path) -> CsvDelivery:
    """The rows of a CSV delivery; TieredDeliveryError when the file as a whole cannot be used."""
    text = _decode(path)
    delimiter = ";" if _first_line(text).count(";") > _first_line(text).count(",") else ","
    lines = _records(text, delimiter, path.name)
    if not lines:
        raise refuse(Place(path.name), f"{path.name} is empty")
    header_line, header = lines[0]
    columns = [name.strip() for name in header]
    unfit = UNFIT_TEXT.search(text) is not None  # one pass: rows are looked at only when needed
    if unfit and (found := unfit_text({f"the name of column {n}": c for n, c in enumerate(columns, 1)})):
        raise refuse(Place(path.name, "line", header_line), unfit_sentence(*found))
    key_column = _key_column(columns, Place(path.name, "line", header_line))
    delivery = CsvDelivery(path.name, key_column, columns)
    for line, cells in lines[1:]:
        place = Place(path.name, "line", line)
        if unfit and (
            found := unfit_text({f"the column {c}": v for c, v in zip(columns, cells, strict=False)})
        ):
            delivery.problems.append(Problem(place, unfit_sentence(*found)))
            continue
        _add_row(delivery, place, cells)
    if not delivery.rows and not delivery.problems:
        raise refuse(Place(path.name), f"{path.name} has a header but no rows")
    return delivery


def _decode(path: Path) -> str:
    raw = path.read_bytes()
    if not raw.strip():
        raise refuse(Place(path.name), f"{path.name} is empty")
    try:
        return raw.decode("utf-8-sig", "surrogatepass")  # a surrogate is refused as unfit text, by name
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise refuse(
            Place(path.name, "line", line),
            f"{path.name} line {line} is not UTF-8 text (byte {e.start + 1}); save the file as CSV UTF-8",
        ) from None


def _first_line(text: str) -> str:
    return next((line for line in text.splitlines() if line.strip()), "")


def _records(text: str, delimiter: str, name: str) -> list[tuple[int, list[str]]]:
    """(line where the record starts, cells) of every non-blank record."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records = []
    start = 1
    try:
        for cells in reader:
            if any(cell.strip() for cell in cells):
                records.append((start, cells))
            start = reader.line_num + 1
    except csv.Error as e:
        raise refuse(Place(name, "line", start), f"{name} line {start} is not CSV ({e})") from None
    return records


def _key_column(columns: list[str], place: Place) -> str:
    """The one key column the header names; refuses a header that names none, two, or an unknown one."""
    lowered = [c.lower() for c in columns]
    for n, name in enumerate(columns, 1):
        if not name:
            raise refuse(place, f"column {n} of the header has no name")
        if lowered.count(name.lower()) > 1:
            raise refuse(place, f"the header names the column {name} twice")
    keys = [c for c in columns if c.lower() in KEY_COLUMNS]
    unknown = [c for c in columns if c.lower().endswith("_id") and c.lower() not in KEY_COLUMNS]
    if unknown:
        raise refuse(
            place,
            f"unknown key column {unknown[0]}: a row is keyed on one of {_KEY_NAMES} "
            "(a column whose name ends in _id names a key)",
        )
    if len(keys) > 1:
        raise refuse(
            place,
            f"the header names {len(keys)} key columns ({', '.join(keys)}); "
            "each row must be keyed on exactly one national id",
        )
    if not keys:
        if any(_LOOKS_LIKE_KEY.match(c) for c in columns):
            raise refuse(
                place,
                f"the file has no header: its first line must name the columns, one of them the key ({_KEY_NAMES})",
            )
        raise refuse(place, f"the header names no key column: it must name exactly one of {_KEY_NAMES}")
    return keys[0].lower()


def _add_row(delivery: CsvDelivery, place: Place, cells: list[str]) -> None:
    columns = delivery.columns
    if len(cells) > len(columns) and any(c.strip() for c in cells[len(columns) :]):
        delivery.problems.append(
            Problem(place, f"the row has {len(cells)} values, but the header names {len(columns)} columns")
        )
        return
    by_column = {c.lower(): (c, v.strip()) for c, v in zip(columns, cells, strict=False)}
    key = by_column.get(delivery.key_column, ("", ""))[1]
    if not key:
        delivery.problems.append(Problem(place, f"the key column {delivery.key_column} is empty"))
        return
    row_id = by_column.get(ID_COLUMN, ("", ""))[1] or None
    values = tuple(
        (column, value)
        for lowered, (column, value) in by_column.items()
        if value and lowered not in (delivery.key_column, ID_COLUMN)
    )
    delivery.rows.append(CsvRow(place, key, row_id, values))


# -- rows to resources -------------------------------------------------------------------------


@dataclass
class Converted:
    resources: list[tuple[Place, dict[str, Any]]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def to_resources(delivery: CsvDelivery, national: NationalKeys, tier: str, owner: str) -> Converted:
    """A Basic resource per row; rows whose key or codes the national data lacks become problems."""
    out = Converted(problems=list(delivery.problems))
    system = KEY_COLUMNS[delivery.key_column].system
    for column in delivery.columns:
        url = CODE_COLUMNS.get(column.lower())
        if url is not None and url not in national.code_systems:
            out.warnings.append(
                Problem(
                    Place(delivery.file),
                    f"the column {column} holds codes of {url}, which the national data does not serve; "
                    "its codes were not checked",
                )
            )
    for row in delivery.rows:
        target = find_national(national, system, row.key)
        if target is None:
            out.problems.append(Problem(row.place, unknown_key(system, row.key)))
            continue
        extensions = [
            _extension(row.place, tier, owner, column, value, national) for column, value in row.values
        ]
        bad = [e for e in extensions if isinstance(e, Problem)]
        if bad:
            out.problems.extend(bad)
            continue
        resource: dict[str, Any] = {
            "resourceType": "Basic",
            "id": row.row_id or default_id(owner, system, row.key),
        }
        if extensions:
            resource["extension"] = extensions
        resource["identifier"] = [{"system": system, "value": row.key}]
        resource["code"] = {"coding": [{"system": TIERED_DATA_SYSTEM, "code": tier}]}
        resource["subject"] = {"reference": f"{target[0]}/{target[1]}"}
        out.resources.append((row.place, resource))
    return out


def extension_url(tier: str, owner: str, column: str) -> str:
    """The extension a CSV column becomes: one per tier, owner and column."""
    return f"{EXT_BASE}{tier}/{owner}/{quote(column, safe='')}"


def _extension(
    place: Place, tier: str, owner: str, column: str, value: str, national: NationalKeys
) -> dict[str, Any] | Problem:
    url = extension_url(tier, owner, column)
    system = CODE_COLUMNS.get(column.lower())
    if system is None:
        return {"url": url, "valueString": value}
    coding: dict[str, Any] = {"system": system, "code": value}
    code_system = national.code_systems.get(system)
    if code_system is not None:
        if value not in code_system.codes:
            return Problem(place, f"{column}: {unknown_code(value, code_system)}")
        if code_system.codes[value]:
            coding["display"] = code_system.codes[value]
    return {"url": url, "valueCoding": coding}


def default_id(owner: str, system: str, key: str) -> str:
    """`<owner>-<key>` made a FHIR id: other characters become "-", and a long one ends in a hash."""
    rid = _UNSAFE_ID.sub("-", f"{owner}-{bare_key(system, key)}")
    if len(rid) <= 64:
        return rid
    return rid[:47] + "-" + hashlib.sha256(rid.encode()).hexdigest()[:16]
