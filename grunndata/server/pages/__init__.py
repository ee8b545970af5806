"""Pages for people: find a drug (`/legemidler`) and its product card (`/legemidler/{id}`), the
releases (`/leveranser`: history, one release's whole report, two releases compared) and the
migration page's templates, server-rendered in Norwegian bokmål, with no outside asset.

`render` fills a template of `templates/` (Jinja2, autoescaped); every page extends `base.html`,
which holds the shared style. `find`, `card` and `releases` gather what the pages show from the store."""

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
