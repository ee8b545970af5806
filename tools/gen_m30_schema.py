"""Generate grunndata/m30/schema.py from the official M30 2014-12-01 XSDs.

The XSDs live in ../shared (not in our tree), so the facts the importer needs at run
time are extracted once into a Python table; tests/m30/test_schema.py re-runs this
extraction and fails when the committed table drifts from the XSD.

    python tools/gen_m30_schema.py ../shared/schemas/fest-m30 > grunndata/m30/schema.py
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path
from pprint import pformat

from lxml import etree

XS = "{http://www.w3.org/2001/XMLSchema}"
M30_XSD = "R1808-eResept-M30-2014-12-01/ER-M30-2014-12-01.xsd"
FS_XSD = "felles/Forskrivning-2014-12-01.xsd"
KITH_XSD = "felles/kith.xsd"
CHECKED_SIMPLE = {"decimal", "int", "integer", "double", "boolean", "date", "dateTime", "duration", "time"}
QUANTITY_TYPES = {"kith:PQ", "kith:MO"}


def _parse(path: Path) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.parse(str(path), parser).getroot()


Particle = tuple[str, tuple[tuple[str, int, "int | None", "str | None"], ...]]


class _ContentModels:
    """The child elements each element may hold, by content model, as the order-blind reader checks them.

    A model is keyed by the named type (`kith:RTO`), the global element (`fs:LegemiddelMerkevare`)
    or the path of an anonymous local element (`m30:KatVilkar/OppfVilkar`); an element that holds
    no child elements (a simple type, or kith's CV, CS, PQ...) has no model. Anything the reader
    could not check without the XSD's order (nested groups, repeated choices, a name twice in one
    model) stops the generator, so a new XSD cannot slip past the table.
    """

    def __init__(self, roots: dict[str, etree._Element]) -> None:
        self.globals = {
            (prefix, kind, el.get("name")): el
            for prefix, root in roots.items()
            for kind in ("element", "complexType")
            for el in root.findall(XS + kind)
        }
        self.models: dict[str, tuple[Particle, ...]] = {}

    def of_element(self, el: etree._Element, prefix: str, parent_key: str | None) -> str | None:
        """The model key of an element declaration or reference, computing the model once."""
        if (ref := el.get("ref")) is not None:
            ref_prefix, _, name = ref.partition(":")
            target = self.globals[(ref_prefix, "element", name)]
            return self.of_element(target, ref_prefix, None)
        name = el.get("name")
        key = f"{prefix}:{name}" if parent_key is None else f"{parent_key}/{name}"
        if (typ := el.get("type")) is not None:
            return self.of_type(typ)
        complex_type = el.find(XS + "complexType")
        return None if complex_type is None else self._model(key, complex_type, prefix)

    def of_type(self, typ: str) -> str | None:
        type_prefix, _, name = typ.rpartition(":")
        complex_type = self.globals.get((type_prefix, "complexType", name))
        return None if complex_type is None else self._model(typ, complex_type, type_prefix)

    def particles(self, key: str | None) -> tuple[Particle, ...]:
        return () if key is None else self.models[key]

    def _model(self, key: str, complex_type: etree._Element, prefix: str) -> str | None:
        if key not in self.models:
            self.models[key] = ()  # a recursive model sees itself as computed
            self.models[key] = self._particles_of(complex_type, key, prefix)
            names = [m[0] for _, members in self.models[key] for m in members]
            if len(names) != len(set(names)):
                raise ValueError(f"{key} names an element twice; the reader counts by name")
        return key if self.models[key] else None

    def _particles_of(self, complex_type: etree._Element, key: str, prefix: str) -> tuple[Particle, ...]:
        body = complex_type
        inherited: tuple[Particle, ...] = ()
        if (content := complex_type.find(XS + "complexContent")) is not None:
            body = content.find(XS + "extension")
            inherited = self.particles(self.of_type(body.get("base")))
        found: list[Particle] = []
        for group in body:
            if group.tag == XS + "sequence":
                found.extend(self._sequence(group, key, prefix))
            elif group.tag == XS + "choice":
                found.append(self._choice(group, key, prefix))
        return inherited + tuple(found)

    def _member(self, el: etree._Element, key: str, prefix: str) -> tuple[str, int, int | None, str | None]:
        if el.tag != XS + "element":
            raise ValueError(f"{key}: a nested {etree.QName(el).localname} the reader cannot check")
        name = (el.get("ref") or el.get("name")).rpartition(":")[2]
        high = el.get("maxOccurs", "1")
        return (
            name,
            int(el.get("minOccurs", "1")),
            None if high == "unbounded" else int(high),
            self.of_element(el, prefix, key),
        )

    def _sequence(self, seq: etree._Element, key: str, prefix: str) -> list[Particle]:
        optional = seq.get("minOccurs") == "0"
        if seq.get("maxOccurs", "1") != "1":
            raise ValueError(f"{key}: a repeated sequence the reader cannot check")
        members = [el for el in seq if el.tag != XS + "annotation"]
        if optional:
            return [("optional sequence", tuple(self._member(el, key, prefix) for el in members))]
        found: list[Particle] = []
        for el in members:
            if el.tag == XS + "choice":
                found.append(self._choice(el, key, prefix))
            elif el.tag == XS + "sequence":
                found.extend(self._sequence(el, key, prefix))
            else:
                found.append(("element", (self._member(el, key, prefix),)))
        return found

    def _choice(self, choice: etree._Element, key: str, prefix: str) -> Particle:
        if choice.get("maxOccurs", "1") != "1":
            raise ValueError(f"{key}: a repeated choice the reader cannot check")
        kind = "optional choice" if choice.get("minOccurs") == "0" else "choice"
        return (kind, tuple(self._member(el, key, prefix) for el in choice if el.tag != XS + "annotation"))


def extract(schema_dir: Path) -> dict[str, object]:
    """Return the tables schema.py holds, computed from the XSDs in schema_dir."""
    m30 = _parse(schema_dir / M30_XSD)
    fs = _parse(schema_dir / FS_XSD)
    kith = _parse(schema_dir / KITH_XSD)
    declared: dict[str, set[str]] = defaultdict(set)
    idrefs: set[str] = set()
    for root in (m30, fs, kith):
        for el in root.iter(XS + "element"):
            name = el.get("name")
            if not name:
                continue
            typ = el.get("type")
            if typ is None:
                simple = el.find(XS + "simpleType")
                typ = simple.find(XS + "restriction").get("base") if simple is not None else "complex"
            declared[name].add(typ)
            if typ == "IDREF":
                idrefs.add(name)

    text_types: dict[str, str] = {}
    quantities: set[str] = set()
    for name, types in declared.items():
        simple = {t for t in types if t in CHECKED_SIMPLE or t == "string"}
        if len(simple) == 1 and (only := next(iter(simple))) != "string":
            text_types[name] = only
        if types & QUANTITY_TYPES:
            quantities.add(name)

    fs_globals = {el.get("name") for el in fs.findall(XS + "element")}
    catalogues = []
    fest = next(el for el in m30.findall(XS + "element") if el.get("name") == "FEST")
    for ref in fest.iter(XS + "element"):
        kat = (ref.get("ref") or "").removeprefix("m30:")
        if not kat.startswith("Kat"):
            continue
        kat_el = next(el for el in m30.findall(XS + "element") if el.get("name") == kat)
        oppf = next(el for el in kat_el.iter(XS + "element") if (el.get("name") or "").startswith("Oppf"))
        payloads = []
        for el in oppf.find(f"{XS}complexType/{XS}complexContent/{XS}extension").iter(XS + "element"):
            if el is oppf:
                continue
            pname = el.get("ref") or el.get("name")
            prefix, _, local = pname.rpartition(":")
            if prefix == "" and el.get("name"):
                ns = "m30"  # an inline element such as OrdineringVirkestoff
            else:
                ns = "fs" if prefix == "fs" or local in fs_globals and prefix != "m30" else "m30"
            payloads.append((local, ns))
            if el.get("name"):
                break  # inline payload: its own children are not payloads
        catalogues.append((kat.removeprefix("Kat"), oppf.get("name"), tuple(payloads)))

    # forskrivning elements nested inside m30 payloads: the writer must redeclare fs on them
    fs_inside_m30: set[tuple[str, str]] = set()
    for ref in m30.iter(XS + "element"):
        target = ref.get("ref") or ""
        if not target.startswith("fs:"):
            continue
        parent = next((a for a in ref.iterancestors(XS + "element") if a.get("name")), None)
        if parent is not None and not parent.get("name", "").startswith(("Kat", "Oppf")):
            fs_inside_m30.add((parent.get("name"), target.removeprefix("fs:")))

    models = _ContentModels({"m30": m30, "fs": fs, "kith": kith})
    for kat, _, _ in catalogues:
        models.of_element(models.globals[("m30", "element", f"Kat{kat}")], "m30", None)

    return {
        "CONTENT_MODELS": {key: model for key, model in sorted(models.models.items()) if model},
        "CATALOGUES": tuple(catalogues),
        "FS_INSIDE_M30": frozenset(sorted(fs_inside_m30)),
        "TEXT_TYPES": dict(sorted(text_types.items())),
        "QUANTITY_ELEMENTS": frozenset(sorted(quantities)),
        "IDREF_ELEMENTS": frozenset(sorted(idrefs)),
    }


def render(tables: dict[str, object]) -> str:
    lines = [
        '"""Facts about the M30 2014-12-01 message, generated by tools/gen_m30_schema.py.',
        "",
        "Do not edit by hand; tests/m30/test_schema.py fails when this drifts from the XSD.",
        '"""',
        "",
        "# (catalogue name without 'Kat', its Oppf element, ((payload element, namespace key), ...))",
        "# in XSD order. Kodeverk's payload is a sequence (Info, Element+), the rest a choice of one.",
        f"CATALOGUES: tuple[tuple[str, str, tuple[tuple[str, str], ...]], ...] = {pformat(tables['CATALOGUES'], width=100)}",
        "",
        "# (m30 element, forskrivning child): fs elements inside m30 payloads, which redeclare the fs namespace.",
        f"FS_INSIDE_M30: frozenset[tuple[str, str]] = {pformat(tables['FS_INSIDE_M30'], width=100)}",
        "",
        "# Content model -> its particles in XSD order, each (kind, ((child element, minOccurs, maxOccurs or",
        "# None for unbounded, the child's content model or None when it holds no elements), ...)). Kinds:",
        "# 'element' (one member), 'choice' (exactly one member), 'optional choice' (at most one),",
        "# 'optional sequence' (none of the members, or each as its own occurs say). Keys: a named type",
        "# (kith:RTO), a global element (fs:LegemiddelMerkevare), or the path of a local one",
        "# (m30:KatVilkar/OppfVilkar). Only models holding elements are listed.",
        "CONTENT_MODELS: dict[str, tuple[tuple[str, tuple[tuple[str, int, int | None, str | None], ...]], ...]] = "
        f"{pformat(tables['CONTENT_MODELS'], width=100)}",
        "",
        "# Element local name -> XSD simple type of its text, where that is unambiguous and checkable.",
        f"TEXT_TYPES: dict[str, str] = {pformat(tables['TEXT_TYPES'], width=100)}",
        "",
        "# Elements of kith PQ or MO type somewhere in the schema: their V attribute is a decimal.",
        f"QUANTITY_ELEMENTS: frozenset[str] = {pformat(tables['QUANTITY_ELEMENTS'], width=100)}",
        "",
        "# Elements of type IDREF: references to the inner Id of another entry.",
        f"IDREF_ELEMENTS: frozenset[str] = {pformat(tables['IDREF_ELEMENTS'], width=100)}",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(render(extract(Path(sys.argv[1]))))
