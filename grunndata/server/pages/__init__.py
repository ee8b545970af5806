"""Pages for people: find a drug (`/legemidler`) and its product card (`/legemidler/{id}`),
server-rendered in Norwegian bokmål from the national data, with no outside asset.

`render` fills a template of `templates/` (Jinja2, autoescaped); every page extends `base.html`,
which holds the shared style. `find` and `card` gather what the pages show from the store."""

from grunndata.server.pages.card import Card, product_card, product_of
from grunndata.server.pages.find import MAX_QUERY, Found, QueryError, find, fold
from grunndata.server.pages.render import STATIC, render

__all__ = [
    "MAX_QUERY",
    "STATIC",
    "Card",
    "Found",
    "QueryError",
    "find",
    "fold",
    "product_card",
    "product_of",
    "render",
]
