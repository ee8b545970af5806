"""Checks for the XSD simple types of FEST leaf values (decimal, date, dateTime, ...)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import date

_DECIMAL = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")
_INTEGER = re.compile(r"[+-]?\d+")
_DOUBLE = re.compile(r"[+-]?((\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?|INF)|NaN")
_TZ = r"(Z|[+-]\d\d:\d\d)?"
_DATE = re.compile(r"(-?\d{4,})-(\d\d)-(\d\d)" + _TZ)
_DATETIME = re.compile(r"(-?\d{4,})-(\d\d)-(\d\d)T([01]\d|2[0-4]):[0-5]\d:[0-5]\d(\.\d+)?" + _TZ)
_TIME = re.compile(r"([01]\d|2[0-4]):[0-5]\d:[0-5]\d(\.\d+)?" + _TZ)
_DURATION = re.compile(r"-?P(?=\d|T\d)(\d+Y)?(\d+M)?(\d+D)?(T(?=\d)(\d+H)?(\d+M)?(\d+(\.\d+)?S)?)?")


def _real_date(m: re.Match[str] | None) -> bool:
    if m is None:
        return False
    try:
        date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return False
    return True


CHECKS: dict[str, Callable[[str], bool]] = {
    "decimal": lambda v: _DECIMAL.fullmatch(v) is not None,
    "int": lambda v: _INTEGER.fullmatch(v) is not None and -(2**31) <= int(v) < 2**31,
    "integer": lambda v: _INTEGER.fullmatch(v) is not None,
    "double": lambda v: _DOUBLE.fullmatch(v) is not None,
    "boolean": lambda v: v in ("true", "false", "1", "0"),
    "date": lambda v: _real_date(_DATE.fullmatch(v)),
    "dateTime": lambda v: _real_date(_DATETIME.fullmatch(v)),
    "time": lambda v: _TIME.fullmatch(v) is not None,
    "duration": lambda v: _DURATION.fullmatch(v) is not None,
}

NAMES = {
    "decimal": "a decimal number",
    "int": "a whole number",
    "integer": "a whole number",
    "double": "a number",
    "boolean": "true or false",
    "date": "a date (YYYY-MM-DD)",
    "dateTime": "a date and time (YYYY-MM-DDThh:mm:ss)",
    "time": "a time (hh:mm:ss)",
    "duration": "a duration such as P1Y",
}


def valid(xsd_type: str, value: str) -> bool:
    """True if `value` (whitespace collapsed, as XSD does) is a lexical value of `xsd_type`."""
    return CHECKS[xsd_type](value.strip())
