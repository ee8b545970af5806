"""Write docs/fest-idmp-coverage.md, and the M30 element table the FEST -> IDMP mapping uses.

The XSDs live in ../shared, so the element paths of the M30 message (with their XSD types) are
extracted once into grunndata/translators/fest_to_idmp/xsd_paths.py; the coverage report is then
made from the mapping tables over those paths. tests/translators/test_coverage.py re-runs both
and fails when either file drifts from the XSD or from the mapping.

    python tools/gen_coverage.py ../shared/schemas/fest-m30
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
PATHS_MODULE = ROOT / "grunndata" / "translators" / "fest_to_idmp" / "xsd_paths.py"
DOC = ROOT / "docs" / "fest-idmp-coverage.md"

XS = "{http://www.w3.org/2001/XMLSchema}"
M30_XSD = "R1808-eResept-M30-2014-12-01/ER-M30-2014-12-01.xsd"
FS_XSD = "felles/Forskrivning-2014-12-01.xsd"


def _parse(path: Path) -> etree._Element:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.parse(str(path), parser).getroot()


def xsd_paths(schema_dir: Path) -> dict[str, str]:
    """Every element path below FEST (``FEST/KatX/OppfX/...``) -> its XSD type.

    Types are the XSD's own names: ``string``, ``date``, ``IDREF``, ``kith:CV``, ...; ``complex``
    for elements with element content. Named complex types and extensions are expanded in place.
    """
    schemas = {"m30": _parse(schema_dir / M30_XSD), "fs": _parse(schema_dir / FS_XSD)}

    def glob(kind: str, qname: str) -> etree._Element:
        prefix, _, local = qname.rpartition(":")
        for el in schemas[prefix or "m30"].findall(XS + kind):
            if el.get("name") == local:
                return el
        raise KeyError(qname)

    out: dict[str, str] = {}

    def content(holder: etree._Element, path: str, seen: frozenset[str]) -> None:
        for child in holder:
            tag = etree.QName(child).localname
            if tag in ("sequence", "choice"):
                content(child, path, seen)
            elif tag == "element":
                element(child, path, seen)
            elif tag == "complexContent":
                extension = child.find(XS + "extension")
                assert extension is not None, path
                content(glob("complexType", str(extension.get("base"))), path, seen)
                content(extension, path, seen)
            elif tag not in ("annotation", "attribute"):
                raise ValueError(f"unexpected {tag} in the XSD at {path}")

    def element(el: etree._Element, path: str, seen: frozenset[str]) -> None:
        ref = el.get("ref")
        if ref:
            el = glob("element", ref)
        name = str(el.get("name"))
        here = f"{path}/{name}" if path else name
        if here in seen:
            raise ValueError(f"the XSD is recursive at {here}")
        typ = el.get("type")
        if typ is None:
            complex_type = el.find(XS + "complexType")
            simple_type = el.find(XS + "simpleType")
            if simple_type is not None:
                restriction = simple_type.find(XS + "restriction")
                assert restriction is not None, here
                out[here] = str(restriction.get("base"))
            elif complex_type is not None:
                out[here] = "complex"
                content(complex_type, here, seen | {here})
            else:
                out[here] = "anyType"
            return
        if typ.split(":")[0] in ("m30", "fs"):
            out[here] = "complex"
            content(glob("complexType", typ), here, seen | {here})
        else:
            out[here] = typ

    element(glob("element", "FEST"), "", frozenset())
    return out


def render_paths(paths: dict[str, str]) -> str:
    return "\n".join(
        [
            '"""Every element path of the M30 2014-12-01 message and its XSD type, made by tools/gen_coverage.py.',
            "",
            "Do not edit by hand; tests/translators/test_coverage.py fails when this drifts from the XSD.",
            '"""',
            "",
            "XSD_PATHS: dict[str, str] = {",
            *[f"    {json.dumps(path)}: {json.dumps(xsd_type)}," for path, xsd_type in paths.items()],
            "}",
            "",
        ]
    )


def render_doc(paths: dict[str, str]) -> str:
    from grunndata.translators.fest_to_idmp.coverage import coverage, render_markdown

    return render_markdown(coverage(paths))


def main(schema_dir: Path) -> None:
    paths = xsd_paths(schema_dir)
    PATHS_MODULE.write_text(render_paths(paths), encoding="utf-8")
    DOC.parent.mkdir(exist_ok=True)
    DOC.write_text(render_doc(paths), encoding="utf-8")
    print(f"wrote {PATHS_MODULE.relative_to(ROOT)} ({len(paths)} paths) and {DOC.relative_to(ROOT)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "schemas" / "fest-m30")
