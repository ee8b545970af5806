"""Small deterministic helpers shared by the generator and the follow-up deriver.

Ids, barcodes, dates and node builders; everything random takes an explicit `random.Random`
so that a seed fully determines the output.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import cast

from grunndata.m30 import Node

from .substances import fmt_number


def new_guid(rng: random.Random) -> str:
    """An uppercase version-4 GUID, as DMP's Ids carry after "ID_"."""
    h = f"{rng.getrandbits(128):032X}"
    variant = "89AB"[int(h[16], 16) & 3]
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:]}"


class IdFactory:
    """Hands out `ID_<GUID>` values, never the same twice within one run."""

    def __init__(self, rng: random.Random, taken: set[str] | None = None) -> None:
        self._rng = rng
        self._taken = taken if taken is not None else set()

    def new(self) -> str:
        while True:
            value = "ID_" + new_guid(self._rng)
            if value not in self._taken:
                self._taken.add(value)
                return value


def gs1_check_digit(digits: str) -> str:
    """The GS1 check digit for the 12 (EAN-13) leading digits: weights 1,3,1,3... from the left."""
    total = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(digits))
    return str((10 - total % 10) % 10)


def ean13(first12: str) -> str:
    return first12 + gs1_check_digit(first12)


def fmt_price(value: float) -> str:
    """Prices as DMP writes them: 688.8, 58.12, 7.69, 110 (no trailing zeros)."""
    return fmt_number(round(value, 2))


def iso_date(d: date) -> str:
    return d.isoformat()


def random_date(rng: random.Random, start: date, end: date) -> date:
    if end <= start:
        return start
    return start + timedelta(days=rng.randrange((end - start).days + 1))


def first_of_month(d: date) -> date:
    return d.replace(day=1)


def batch_timestamp(rng: random.Random, day: date) -> str:
    """A Tidspunkt as DMP's nightly batch writes it: no fraction, no zone, mostly around 01:00."""
    if rng.random() < 0.7:
        hh, mm = 0 if rng.random() < 0.6 else 1, rng.randrange(60)
        if hh == 0:
            mm = 45 + mm % 15
    else:
        hh, mm = rng.randrange(7, 17), rng.randrange(60)
    return f"{day.isoformat()}T{hh:02d}:{mm:02d}:{rng.randrange(60):02d}"


_DATETIME = re.compile(r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?(.*)$")


def parse_hentet_dato(value: str) -> tuple[date, str]:
    """Split an xs:dateTime into its date and the rest (time, fraction, zone) kept verbatim."""
    m = _DATETIME.match(value.strip())
    if not m:
        raise ValueError(f"not an xs:dateTime: {value!r}")
    return date(int(m[1]), int(m[2]), int(m[3])), value.strip()[10:]


def shift_hentet_dato(value: str, days: int, rng: random.Random) -> str:
    """The same kind of timestamp `days` later, with the minutes and fraction varied a little."""
    m = _DATETIME.match(value.strip())
    if not m:
        raise ValueError(f"not an xs:dateTime: {value!r}")
    when = datetime(int(m[1]), int(m[2]), int(m[3]), int(m[4]), int(m[5]), int(m[6]))
    when += timedelta(days=days, minutes=rng.randrange(-25, 26), seconds=rng.randrange(-30, 31))
    fraction = m[7] or ""
    if fraction:
        fraction = "." + "".join(str(rng.randrange(10)) for _ in range(len(fraction) - 1))
    return when.strftime("%Y-%m-%dT%H:%M:%S") + fraction + (m[8] or "")


# Node builders: [local name, attrs | None, text | None, children | None].


def leaf(name: str, text: str) -> Node:
    return [name, None, text, None]


def elem(name: str, children: list[Node]) -> Node:
    return [name, None, None, children]


def cv(name: str, v: str, s: str, dn: str) -> Node:
    return [name, {"V": v, "S": s, "DN": dn}, None, None]


def cs(name: str, v: str, dn: str) -> Node:
    return [name, {"V": v, "DN": dn}, None, None]


def pq(name: str, v: float | str, u: str) -> Node:
    return [name, {"V": v if isinstance(v, str) else fmt_number(v), "U": u}, None, None]


def url(name: str, value: str) -> Node:
    return [name, {"V": value}, None, None]


def find(node: Node, name: str) -> Node | None:
    """The first child of `node` called `name`."""
    for c in node[3] or ():
        if c[0] == name:
            return cast(Node, c)
    return None


def find_all(node: Node, name: str) -> list[Node]:
    return [c for c in node[3] or () if c[0] == name]


def walk(node: Node) -> Iterator[Node]:
    """Every node of the tree, depth first, the root included."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        if n[3]:
            stack.extend(reversed(n[3]))
