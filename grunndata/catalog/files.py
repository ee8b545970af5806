"""Reading catalogue files: the services of others, declared in YAML or JSON.

A catalogue file is written by hand, so every problem is reported with its file and line, all
of them at once, and a file with any problem loads nothing. Only plain YAML is read (no tags, no
aliases): the file comes from outside and must not make us build objects or expand bombs.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml
from yaml.constructor import SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from grunndata.catalog.model import INTERFACES, STATUSES, TIERS, Service
from grunndata.errors import GrunndataError

MAX_BYTES = 5 * 1024 * 1024
MAX_DEPTH = 16  # services: [ {field: [item]} ] is 3 collections deep; leave room for a wrong guess
SUFFIXES = {".yaml": "YAML", ".yml": "YAML", ".json": "JSON"}
SERVICE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
OWNER_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")

_FIELDS = tuple(f.name for f in fields(Service) if f.name != "origin")  # "origin" is ours to set
REQUIRED = ("id", "name", "owner", "tier", "interface", "base_url")
LISTS = ("resource_types", "operations", "code_systems")
NULLABLE = ("latest_release",)

_Loader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STANDARD = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_STANDARD + t for t in ("str", "int", "float", "bool", "null", "timestamp", "binary")}
# "\ud83d\ude00" is valid JSON but not YAML: join a surrogate pair before the YAML reader sees it
_SURROGATES = re.compile(r"(?<!\\)((?:\\\\)*)\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})", re.IGNORECASE)


class CatalogueError(GrunndataError):
    """A catalogue file that cannot be loaded: every problem as "FILE:LINE: sentence"."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        more = len(self.problems) - 1
        message = self.problems[0] if self.problems else "the catalogue cannot be loaded"
        if more > 0:
            message += f" (and {more} more problem{'s' if more > 1 else ''})"
        super().__init__(message)


def load_catalogue(path: Path) -> list[Service]:
    """The services a catalogue file declares, in file order; CatalogueError naming every problem."""
    reader = _Reader(str(path))
    root = _compose(path, reader)
    services = [] if root is None else reader.services(root)
    if reader.problems:
        raise CatalogueError(reader.problems)
    return services


def check_unique(services: Sequence[Service]) -> None:
    """Refuse two services with one id (across our own services and every file), naming both places."""
    first: dict[str, Service] = {}
    problems = []
    for service in services:
        seen = first.setdefault(service.id, service)
        if seen is service:
            continue
        where = "one of grunndata's own services" if seen.origin == "grunndata" else f"used at {seen.origin}"
        place = service.origin if service.origin != "grunndata" else "grunndata"
        problems.append(f"{place}: the id `{service.id}` is already {where}")
    if problems:
        raise CatalogueError(problems)


# -- reading the file ------------------------------------------------------------------------


def _compose(path: Path, reader: _Reader) -> Node | None:
    """The file's YAML node tree (JSON is read as the YAML it is), or None after reporting why not."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is None:
        reader.problem(1, f"a catalogue file ends in .yaml, .yml or .json, not `{path.suffix or path.name}`")
        return None
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            reader.problem(
                1, f"the file is {size / 1024 / 1024:.1f} MB; a catalogue file may be at most 5 MB"
            )
            return None
        data = path.read_bytes()
    except OSError as e:
        reader.problem(1, f"cannot read the file ({e.strerror or e})")
        return None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        reader.problem(data.count(b"\n", 0, e.start) + 1, "the file is not UTF-8 text")
        return None
    if not text.strip():
        reader.problem(1, "the file is empty; a catalogue holds a `services:` list")
        return None
    if kind == "JSON":
        try:
            json.loads(text)
        except json.JSONDecodeError as e:
            reader.problem(e.lineno, f"this is not JSON: {e.msg}")
            return None
        except RecursionError:
            reader.problem(1, f"values are nested more than {MAX_DEPTH} deep; a catalogue needs 3")
            return None
        text = _SURROGATES.sub(lambda m: m[1] + chr(_pair(int(m[2], 16), int(m[3], 16))), text)
    return _yaml_nodes(text, kind, reader)


def _pair(high: int, low: int) -> int:
    return 0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)


def _yaml_nodes(text: str, kind: str, reader: _Reader) -> Node | None:
    try:
        if not _plain_enough_or_why_not(text, reader):
            return None
        node: Node | None = yaml.compose(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        reader.problem(mark.line + 1 if mark else 1, f"this is not {kind}: {e.problem or e.context}")
        return None
    except yaml.reader.ReaderError as e:
        line = text.count("\n", 0, e.position) + 1
        code = e.character if isinstance(e.character, int) else ord(e.character)
        reader.problem(line, f"this is not {kind}: the character U+{code:04X} is not allowed")
        return None
    except yaml.YAMLError as e:
        reader.problem(1, f"this is not {kind}: {e}")
        return None
    if node is None or (isinstance(node, ScalarNode) and node.tag == _STANDARD + "null"):
        reader.problem(1, "the file is empty; a catalogue holds a `services:` list")
        return None
    return node


def _plain_enough_or_why_not(text: str, reader: _Reader) -> bool:
    """`_plain_enough`, or libyaml's own error if the file has none of the problems we name.

    libyaml stops on limits of its own (nesting depth, say) before our check has seen the place:
    the pure-Python reader yields events as it goes, so on a libyaml error our check runs again on
    it, and the problem is named in our words when it is one of ours."""
    try:
        return _plain_enough(text, reader)
    except yaml.YAMLError as first:
        try:
            if not _plain_enough(text, reader, yaml.SafeLoader):
                return False
        except yaml.YAMLError:
            pass
        raise first from None


def _plain_enough(text: str, reader: _Reader, loader: Any = _Loader) -> bool:
    """One document, no aliases, nothing nested deeper than a catalogue needs: checked on the event
    stream before any node is built (libyaml's composer recurses, and a deep enough file crashes it)."""
    depth = documents = 0
    for event in yaml.parse(text, Loader=loader):
        line = event.start_mark.line + 1
        if isinstance(event, yaml.AliasEvent):
            reader.problem(
                line, f"aliases (*{event.anchor}) are not allowed in a catalogue; write the value out"
            )
            return False
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            if documents > 1:
                reader.problem(line, "a second YAML document begins here; a catalogue is one document")
                return False
        depth += isinstance(event, yaml.CollectionStartEvent) - isinstance(event, yaml.CollectionEndEvent)
        if depth > MAX_DEPTH:
            reader.problem(line, f"values are nested more than {MAX_DEPTH} deep here; a catalogue needs 3")
            return False
    return True


# -- checking the services -------------------------------------------------------------------


def _choice(what: str, allowed: Sequence[str]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in allowed else f"unknown {what} `{value}`; use {_either(allowed)}"

    return check


def _either(words: Sequence[str]) -> str:
    return ", ".join(words[:-1]) + " or " + words[-1]


def _identifier(what: str, pattern: re.Pattern[str], longest: int) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        if pattern.fullmatch(value):
            return None
        return (
            f"the {what} `{value}` is not allowed: use 1 to {longest} lower-case letters, digits and "
            "hyphens, starting with a letter or digit"
        )

    return check


# grunndata's own services (catalog/ours.py): a file may not take these ids, so no later import can
# make one of ours collide with a file's
RESERVED_IDS = frozenset({"fhir", "fhir-sector", "m30", "translate", "code-systems", "catalog"})
RESERVED_PREFIXES = ("sector-", "supplementary-")


def _service_id(value: str) -> str | None:
    problem = _identifier("id", SERVICE_ID, 64)(value)
    if problem is None and (value in RESERVED_IDS or value.startswith(RESERVED_PREFIXES)):
        return (
            f"the id `{value}` is reserved for grunndata's own services ({', '.join(sorted(RESERVED_IDS))}, "
            "sector-<owner>, supplementary-<owner>); choose another"
        )
    return problem


def _http_url(value: str) -> str | None:
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  a bad port raises
    except ValueError:
        parts = None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or re.search(r"\s", value)
    ):
        return f"`base_url` `{value}` is not an absolute http or https URL"
    if parts.username is not None or parts.password is not None:
        return f"`base_url` `{value}` must not hold a user name or password"
    return None


def _uri(value: str) -> str | None:
    scheme = urlsplit(value).scheme
    if not scheme or re.search(r"\s", value) or (scheme in ("http", "https") and not urlsplit(value).netloc):
        return f"`code_systems` holds `{value}`, which is not an absolute URL or urn"
    return None


_CHECKS: dict[str, Callable[[str], str | None]] = {
    "id": _service_id,
    "owner": _identifier("owner", OWNER_ID, 63),
    "tier": _choice("tier", TIERS),
    "interface": _choice("interface", INTERFACES),
    "status": _choice("status", STATUSES),
    "base_url": _http_url,
}
_ITEM_CHECKS: dict[str, Callable[[str], str | None]] = {"code_systems": _uri}


class _Reader:
    """Walks one file's nodes, collecting problems with their lines."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[str] = []
        self._constructor = SafeConstructor()

    def problem(self, line: int, sentence: str) -> None:
        self.problems.append(f"{self.file}:{line}: {sentence}")

    def services(self, root: Node) -> list[Service]:
        if not isinstance(root, MappingNode) or root.tag != _STANDARD + "map":
            self.problem(
                _line(root), f"the top level must be a mapping with a `services` list, not {_kind(root)}"
            )
            return []
        top = self._mapping(root)
        for key, (key_node, _) in top.items():
            if key != "services":
                self.problem(
                    _line(key_node), f"unknown top-level key `{key}`; a catalogue holds only `services`"
                )
        if "services" not in top:
            self.problem(_line(root), "there is no `services` list")
            return []
        items = top["services"][1]
        if not isinstance(items, SequenceNode) or items.tag != _STANDARD + "seq":
            self.problem(_line(items), f"`services` must be a list of services, not {_kind(items)}")
            return []
        services: list[Service] = []
        first_line: dict[str, int] = {}
        for item in items.value:
            found = self._service(item)
            if found is None:
                continue
            service, line = found
            if service.id in first_line:
                self.problem(
                    line, f"the id `{service.id}` is used twice (first on line {first_line[service.id]})"
                )
                continue
            first_line[service.id] = line
            services.append(service)
        return services

    def _service(self, node: Node) -> tuple[Service, int] | None:
        """One service and the line of its id; None when it has a problem (reported)."""
        if not isinstance(node, MappingNode) or node.tag != _STANDARD + "map":
            self.problem(_line(node), f"a service must be a mapping of fields, not {_kind(node)}")
            return None
        before = len(self.problems)
        given = self._mapping(node)
        for key, (key_node, _) in given.items():
            if key not in _FIELDS:
                close = difflib.get_close_matches(key, _FIELDS, n=1)
                hint = f" (did you mean `{close[0]}`?)" if close else ""
                self.problem(_line(key_node), f"unknown field `{key}`{hint}")
        values = {f: self._value(f, given[f][1]) for f in _FIELDS if f in given}
        named = values.get("id")
        who = f"the service `{named}`" if isinstance(named, str) else "a service"
        for field in REQUIRED:
            if field not in given:
                self.problem(_line(node), f"{who} has no `{field}`")
        if len(self.problems) > before:
            return None
        values.setdefault("owner_name", values["owner"])
        values.setdefault("description", "")
        return Service(**values, origin=f"{self.file}:{_line(node)}"), _line(given["id"][1])

    def _value(self, field: str, node: Node) -> Any:
        """The field's value, checked; _BAD (after reporting) when it is not what the field takes."""
        if field in LISTS:
            return self._list(field, node)
        value = self._scalar(node)
        if value is None and field in NULLABLE:
            return None
        if field == "latest_release" and isinstance(node, ScalarNode) and node.tag == _STANDARD + "timestamp":
            value = node.value  # a HentetDato or a date, as written
        text = self._text(f"`{field}`", node, value)
        if text is _BAD:
            return _BAD
        if not text.strip() and field in REQUIRED:
            self.problem(_line(node), f"`{field}` must not be empty")
            return _BAD
        check = _CHECKS.get(field)
        sentence = check(text) if check else None
        if sentence:
            self.problem(_line(node), sentence)
            return _BAD
        return text

    def _list(self, field: str, node: Node) -> Any:
        """A list of text, each item's white space tidied; _BAD (after reporting) for anything else."""
        if not isinstance(node, SequenceNode) or node.tag != _STANDARD + "seq":
            value = self._scalar(node)
            if value is not _BAD:
                hint = f" (write [{node.value}] for a list of one)" if isinstance(value, str) else ""
                self.problem(_line(node), f"`{field}` must be a list, not {_kind(node)}{hint}")
            return _BAD
        items: list[str] = []
        good = True
        for item_node in node.value:
            item = self._text(f"each of `{field}`", item_node, self._scalar(item_node))
            if item is _BAD:
                good = False
                continue
            item = " ".join(item.split())
            check = _ITEM_CHECKS.get(field)
            sentence = f"each of `{field}` must not be empty" if not item else check(item) if check else None
            if sentence:
                self.problem(_line(item_node), sentence)
                good = False
            items.append(item)
        return tuple(items) if good else _BAD

    def _text(self, what: str, node: Node, value: Any) -> Any:
        """`value` when it is text; _BAD after reporting what it is instead."""
        if isinstance(value, str):
            return value
        if value is not _BAD:
            hint = ""
            if isinstance(node, ScalarNode) and not node.style and value is not None:  # plain, unquoted
                hint = " (put it in quotes if it is meant as text)"
            self.problem(_line(node), f"{what} must be text, not {_kind(node)}{hint}")
        return _BAD

    def _mapping(self, node: MappingNode) -> dict[str, tuple[Node, Node]]:
        """Key -> (key node, value node); a key given twice or not text is reported (first one kept)."""
        found: dict[str, tuple[Node, Node]] = {}
        for key_node, value_node in node.value:
            key = self._scalar(key_node)
            if not isinstance(key, str):
                if key is not _BAD:
                    self.problem(_line(key_node), f"a field name must be text, not {_kind(key_node)}")
                continue
            if key in found:
                first = _line(found[key][0])
                self.problem(_line(key_node), f"the field `{key}` is given twice (first on line {first})")
                continue
            found[key] = (key_node, value_node)
        return found

    def _scalar(self, node: Node) -> Any:
        """A scalar node's value as YAML resolves it; _BAD (after reporting) for a tag we do not read.
        A collection is returned as its node: the caller names its kind."""
        if not isinstance(node, ScalarNode):
            return node
        if node.tag not in _SCALAR_TAGS:
            self.problem(_line(node), f"the tag `{node.tag}` is not allowed; a catalogue is plain YAML")
            return _BAD
        try:
            return self._constructor.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError) as e:
            self.problem(_line(node), f"cannot read `{node.value}`: {getattr(e, 'problem', None) or e}")
            return _BAD


def _kind(node: Node) -> str:
    if isinstance(node, SequenceNode | MappingNode):
        kind = "a list" if isinstance(node, SequenceNode) else "a mapping"
        standard = node.tag in (_STANDARD + "seq", _STANDARD + "map")
        return kind if standard else f"{kind} tagged `{node.tag}` (tags are not allowed)"
    kinds = {"int": "a number", "float": "a number", "bool": "true/false", "null": "empty", "str": "text"}
    kinds |= {"timestamp": "a date", "binary": "binary data"}
    return kinds.get(str(node.tag).removeprefix(_STANDARD), f"`{node.tag}`")


_BAD = object()  # a scalar already reported as unreadable


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1
