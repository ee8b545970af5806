"""The templates: one Jinja2 environment, autoescaped, loaded from the package's own files."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from markupsafe import Markup, escape

from grunndata import __version__

STATIC = Path(__file__).parent / "static"
"""Our own script and nothing else: served by the pages' router, never from a CDN."""

_ENV = Environment(
    loader=PackageLoader("grunndata.server.pages", "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,  # a misspelt name in a template is an error in the tests, not a blank
    trim_blocks=True,
    lstrip_blocks=True,
)
_ENV.globals["version"] = __version__


def _number(n: int | float) -> str:
    """A count as Norwegian writes it: 12 345 (a no-break space between thousands)."""
    return f"{n:,}".replace(",", "\u00a0")


def _words(name: str) -> Markup:
    """A FHIR type's name with a line-break opportunity between its words (Packaged<wbr>Product...),
    so that a narrow column breaks it where a person would."""
    return Markup("<wbr>").join(escape(part) for part in re.split(r"(?<=[a-z])(?=[A-Z])", name))


_ENV.filters["tall"] = _number
_ENV.filters["ord"] = _words


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)
