"""The characters no FHIR string and no XML 1.0 document can hold.

FHIR strings are XML character data (https://hl7.org/fhir/R5/datatypes.html#string), so the rule is
XML 1.0's `Char`: no C0 control but tab, CR and LF, no lone UTF-16 surrogate, no U+FFFE or U+FFFF.
JSON and CSV can carry them all; importers refuse them, the XML writer replaces what a store holds.

Every importer and the FEST reader find such text with one check: JSON values through `unfit_text`,
XML bytes through `unfit_in_xml` (lxml refuses them too, but in its own words and without the
element), and the sentence is always `unfit_sentence`'s. A NUL in a SAFEST name or in a CSV note
would otherwise be stored, served as JSON, and make every XML answer that includes it fail until
another release replaced it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

MAX_STRING_CHARS = 1024 * 1024
"""A FHIR string "SHALL NOT exceed 1MB (1024*1024 characters)" (R5 datatypes.html#string)."""
UNFIT_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")
"""One character FHIR and XML refuse; `search` a string with it (one pass, in C)."""


def unfit_character(char: str) -> str:
    """The character named for a person, never written itself: `U+0000 (a control character)`."""
    code = ord(char)
    if 0xD800 <= code <= 0xDFFF:
        kind = "half of a UTF-16 surrogate pair, alone"
    elif code >= 0xFFFE:
        kind = "a Unicode noncharacter"
    else:
        kind = "a control character"
    return f"U+{code:04X} ({kind})"


# In XML bytes: a raw control byte, U+FFFE/U+FFFF or a surrogate written as UTF-8, or a character
# reference (whose value is checked on its own: most references are fine).
_XML_CANDIDATE = re.compile(
    rb"[\x00-\x08\x0b\x0c\x0e-\x1f]|\xef\xbf[\xbe\xbf]|\xed[\xa0-\xbf][\x80-\xbf]|&#(x[0-9a-fA-F]+|[0-9]+);"
)
_TAG = re.compile(rb"<(/?)(?:[A-Za-z_][\w.\-]*:)?([A-Za-z_][\w.\-]*)")


def unfit_sentence(what: str, char: str) -> str:
    """`MedicinalProductDefinition.name[0].productName holds U+0000 (a control character), which ...`;
    `char` is the unfit character, or the whole text when it is too long for a FHIR string."""
    if len(char) > 1:
        return f"{what} is {len(char):,} characters long, more than the {MAX_STRING_CHARS:,} a FHIR string may hold"
    return f"{what} holds {unfit_character(char)}, which no FHIR string or XML document can hold"


def unfit_text(value: Any, path: str = "", pattern: re.Pattern[str] = UNFIT_TEXT) -> tuple[str, str] | None:
    """The path (`name[0].productName` under `path`) and the character of the first unfit text in a
    JSON value, keys included; None when there is none. Most values hold none, so a string costs one
    regex search and the path is only built on the way out of a find.
    """
    found = _first(value, pattern.search)
    if found is None:
        return None
    steps, char = found
    where = path + "".join(reversed(steps))
    return where.lstrip("."), char


def _first(value: Any, search: Any) -> tuple[list[str], str] | None:
    kind = type(value)
    if kind is str:
        m = search(value)
        if m:
            return [], m.group()
        return ([], value) if len(value) > MAX_STRING_CHARS else None
    if kind is dict:
        for key, item in value.items():
            m = search(key)
            if m:
                return [f".{UNFIT_TEXT.sub('?', key)}"], m.group()
            found = _first(item, search)
            if found is not None:
                found[0].append(f".{key}")
                return found
    elif kind is list:
        for n, item in enumerate(value):
            found = _first(item, search)
            if found is not None:
                found[0].append(f"[{n}]")
                return found
    return None


def unfit_in_xml(raw: bytes) -> Iterator[tuple[int, int, str]]:
    """Every unfit character in XML bytes, written raw or as a reference: (start, end, the character)."""
    for m in _XML_CANDIDATE.finditer(raw):
        ref = m.group(1)
        if ref is None:
            yield m.start(), m.end(), m.group().decode("utf-8", "surrogatepass")
            continue
        code = int(ref[1:], 16) if ref[:1] in (b"x", b"X") else int(ref)
        if code <= 0x10FFFF and UNFIT_TEXT.match(chr(code)):
            yield m.start(), m.end(), chr(code)


def xml_element_before(raw: bytes, offset: int) -> str | None:
    """The local name of the element whose start tag (or text) holds `offset`, told from its line
    alone: the last tag before it there, when that is a start tag; None when the line cannot tell.
    """
    line_start = raw.rfind(b"\n", 0, offset) + 1
    tags = list(_TAG.finditer(raw, line_start, offset))
    if not tags or tags[-1].group(1) or b"/>" in raw[tags[-1].end() : offset]:
        return None
    return tags[-1].group(2).decode()
