"""The characters no FHIR string and no XML 1.0 document can hold.

FHIR strings are XML character data (https://hl7.org/fhir/R5/datatypes.html#string), so the rule is
XML 1.0's `Char`: no C0 control but tab, CR and LF, no lone UTF-16 surrogate, no U+FFFE or U+FFFF.
JSON and CSV can carry them all; importers refuse them, the XML writer replaces what a store holds.
"""

from __future__ import annotations

import re

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
