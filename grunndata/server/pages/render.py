"""The templates: one Jinja2 environment, autoescaped, loaded from the package's own files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

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


_ENV.filters["tall"] = _number


def render(template: str, **context: Any) -> str:
    return _ENV.get_template(template).render(**context)
