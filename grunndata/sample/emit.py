"""Turn the generated model into `FestEntry` objects, one entry at a time, in XSD order.

Each function builds one payload with the element order of the 2014-12-01 XSDs (base-type
elements of typeLegemiddel before Id). Text that only matters for realism (interaction
advice, references) is drawn here from a per-catalogue random stream.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from grunndata.m30 import FestEntry, Node, catalogues

from . import model as M
from . import vocab as V
from .substances import SUBSTANCES, Strength, fmt_number
from .util import cs, cv, elem, fmt_price, iso_date, leaf, new_guid, pq, url

ACTIVE, ACTIVE_DN = V.STATUS_ACTIVE


def _entry(catalogue: str, oppf: str, tid: str, payload: Node) -> FestEntry:
    return FestEntry(catalogue, oppf, tid, ACTIVE, ACTIVE_DN, (payload,))


def atc_node(code: str, name: str) -> Node:
    return cv("Atc", code, V.OID_ATC, name)


def _strength_nodes(s: Strength) -> list[Node]:
    out = [pq("Styrke", s.value, s.unit)]
    if s.per_unit is not None:
        out.append(pq("StyrkeNevner", s.per_value or 1, s.per_unit))
    return out


def _refusjon_node(group_id: str, fra: str) -> Node:
    return elem("Refusjon", [leaf("RefRefusjonsgruppe", group_id), leaf("GyldigFraDato", fra)])


def _base(
    brand: M.Brand,
    navn: str | None = None,
    admin: bool = True,
    refusjon: bool = True,
    bytte: Node | None = None,
) -> list[Node]:
    """The typeLegemiddel elements (Atc ... SvartTrekant) that precede a payload's Id."""
    sub = brand.sub
    out: list[Node] = []
    if brand.has_atc:
        out.append(atc_node(sub.atc, sub.name))
    out.append(leaf("NavnFormStyrke", navn or brand.navn))
    out.append(cs("Reseptgruppe", sub.reseptgruppe, V.RESEPTGRUPPER[sub.reseptgruppe]))
    out.append(cv("LegemiddelformKort", brand.form.code, V.OID_FORM, brand.form.short))
    for v in brand.vilkar:
        out.append(leaf("RefVilkar", v.id))
    out.append(cs("Preparattype", brand.preparattype, V.PREPARATTYPER[brand.preparattype]))
    soknad = "2" if brand.preparattype == "11" else "1"
    out.append(cs("TypeSoknadSlv", soknad, V.SOKNAD_SLV[soknad]))
    if "opi" in sub.tags:
        out.append(leaf("Opioidsoknad", "true" if sub.reseptgruppe == "A" else "false"))
    if refusjon and brand.refgroup is not None and brand.refusjon_fra is not None:
        out.append(_refusjon_node(brand.refgroup.id, iso_date(brand.refusjon_fra)))
    if bytte is not None:
        out.append(bytte)
    if admin:
        out.append(brand.admin)
    if brand.black_triangle:
        out.append(cv("SvartTrekant", "1", V.OID_BLACK_TRIANGLE, V.BLACK_TRIANGLE["1"]))
    return out


def _spc(link: str) -> Node:
    return elem(
        "Preparatomtaleavsnitt",
        [
            cs("Avsnittoverskrift", "SPCHUMAN_00", "INNHOLDSFORTEGNELSE"),
            elem("Lenke", [url("Www", link)]),
        ],
    )


# -- catalogues ----------------------------------------------------------------------------------


def merkevare(world: M.World) -> Iterator[FestEntry]:
    for b in world.brands:
        children = _base(b)
        children += [leaf("Id", b.id), leaf("Varenavn", b.varenavn), leaf("LegemiddelformLang", b.form_long)]
        for i, vms in enumerate(b.vms):
            children.append(
                elem(
                    "SortertVirkestoffMedStyrke",
                    [leaf("Sortering", str(i)), leaf("RefVirkestoffMedStyrke", vms.id)],
                )
            )
        if b.smak:
            children.append(cs("Smak", b.smak[:3].upper(), b.smak))
        info: list[Node] = [leaf("Varseltrekant", "true" if "cns" in b.sub.tags else "false")]
        if b.referanse:
            info.append(leaf("Referanseprodukt", b.referanse))
        if b.sub.atc.startswith("J07"):
            info.append(cv("Vaksinestandard", "12", V.OID_VACCINE_STANDARD, V.VACCINE_STANDARDS["12"]))
        info.append(leaf("Produsent", b.produsent))
        children.append(elem("ProduktInfo", info))
        if b.sub.atc == "D10BA01":
            children.append(elem("Reseptgyldighet", [cs("Kjonn", "2", "Kvinne"), leaf("Varighet", "P1M")]))
        children.append(elem("Reseptgyldighet", [leaf("Varighet", "P1Y")]))
        for h in b.hjelpestoff:
            children.append(elem("Hjelpestoff", [leaf("Navn", h)]))
        if b.spc:
            children.append(_spc(b.spc))
        yield _entry("LegemiddelMerkevare", b.oppf, b.tid, ["LegemiddelMerkevare", None, None, children])


def _price(code: str, value: float, fra: str, til: str | None = None) -> Node:
    children = [
        cv("Type", code, V.OID_PRICE_TYPE, V.PRICE_TYPES[code]),
        ["Pris", {"V": fmt_price(value), "U": "NOK"}, None, None],
        leaf("GyldigFraDato", fra),
    ]
    if til:
        children.append(leaf("GyldigTilDato", til))
    return elem("PrisVare", children)


def pakning(world: M.World) -> Iterator[FestEntry]:
    for p in world.packages:
        b = p.brand
        bytte = None
        if p.bytte is not None and p.bytte_fra is not None:
            bytte = elem(
                "PakningByttegruppe",
                [leaf("RefByttegruppe", p.bytte.id), leaf("GyldigFraDato", iso_date(p.bytte_fra))],
            )
        children = _base(b, admin=False, bytte=bytte)
        children.append(leaf("Id", p.id))
        children.append(leaf("Varenr", p.varenr))
        children += [leaf("Ean", e) for e in p.eans]
        cold = b.form.key in ("inj", "injsusp", "infkons") or b.sub.atc.startswith(("A10A", "L04AB", "J07"))
        oppbevaring = "K" if cold else "R"
        children.append(cs("Oppbevaring", oppbevaring, V.OPPBEVARING[oppbevaring]))
        for i, brand in enumerate([b, *p.extra]):
            info: list[Node] = [
                leaf("RefLegemiddelMerkevare", brand.id),
                leaf("Pakningsstr", fmt_number(p.size)),
                cv("EnhetPakning", b.form.pack_unit, V.OID_PACK_UNIT, V.PACK_UNITS[b.form.pack_unit]),
                cv("Pakningstype", p.pack_type, V.OID_PACK_TYPE, V.PACK_TYPES[p.pack_type]),
            ]
            if p.multiple > 1:
                info.append(leaf("Multippel", str(p.multiple)))
            info.append(leaf("Mengde", fmt_number(p.size * p.multiple)))
            if p.extra:
                info.append(leaf("Sortering", str(i + 1)))
            s = brand.strengths[0]
            if i == 0 and s.per_unit is None and s.unit in ("mg", "mikrog", "g") and int(p.varenr) % 3:
                ddd = s.value * (1 + int(p.varenr) % 4)
                info.append(pq("DDD", ddd, s.unit))
                info.append(
                    leaf("Statistikkfaktor", fmt_number(round(p.size * p.multiple * s.value / ddd, 4)))
                )
            children.append(elem("Pakningsinfo", info))
        fra = iso_date(p.price_from)
        til = iso_date(p.next_from - timedelta(days=1)) if p.next_from else None
        children.append(_price("3", p.aip, fra, til))
        children.append(_price("4", M.aup(p.aip), fra, til))
        if p.next_aip is not None and p.next_from is not None:
            children.append(_price("3", p.next_aip, iso_date(p.next_from)))
            children.append(_price("4", M.aup(p.next_aip), iso_date(p.next_from)))
        if b.refgroup is not None:
            children.append(_price("2", p.trinnpris or M.aup(p.aip), fra))
        if p.trinnpris:
            children.append(_price("5", p.trinnpris, fra))
        market: list[Node] = []
        if p.replaces:
            market.append(leaf("VarenrUtgaende", p.replaces))
        market.append(leaf("Markedsforingsdato", iso_date(p.market)))
        if p.unavailable:
            market.append(leaf("MidlUtgattDato", iso_date(p.unavailable)))
        children.append(elem("Markedsforingsinfo", market))
        yield _entry("Legemiddelpakning", p.oppf, p.tid, ["Legemiddelpakning", None, None, children])


def virkestoff(world: M.World) -> Iterator[FestEntry]:
    rng = random.Random(f"virkestoff:{len(world.virkestoff)}:{len(world.vms)}")
    items: list[M.Virkestoff | M.Vms] = [*world.virkestoff, *world.vms]
    rng.shuffle(items)
    for item in items:
        if isinstance(item, M.Virkestoff):
            children = [leaf("Id", item.id), leaf("Navn", item.name), leaf("NavnEngelsk", item.english)]
            children += [leaf("RefVirkestoff", s.id) for s in item.salts]
            children += [_refusjon_node(g.id, iso_date(g.fra)) for g in item.refusjon]
            yield _entry("Virkestoff", item.oppf, item.tid, ["Virkestoff", None, None, children])
        else:
            children = [
                leaf("Id", item.id),
                *_strength_nodes(item.strength),
                leaf("RefVirkestoff", item.virkestoff.id),
            ]
            if item.strength.unit == "% w/v":
                children.append(pq("AlternativStyrke", item.strength.value * 10, "mg"))
                children.append(pq("AlternativStyrkeNevner", 1, "ml"))
            children.append(cv("Styrkeoperator", "L", V.OID_STRENGTH_OPERATOR, "Lik"))
            if item.kombi is not None:
                children.append(cv("AtcKombipreparat", item.kombi.atc, V.OID_ATC, item.kombi.name))
            yield _entry("Virkestoff", item.oppf, item.tid, ["VirkestoffMedStyrke", None, None, children])


def _lmv_name(lmv: M.Lmv) -> str:
    return f"{lmv.sub.name} {lmv.form.abbrev} {'/'.join(s.display for s in lmv.strengths)}"


def ordinering(world: M.World) -> Iterator[FestEntry]:
    for o in world.ordinering:
        lmv = o.lmv
        first = lmv.brands[0]
        children = [
            leaf("Id", o.id),
            leaf("NavnVirkestoffOrdinering", _lmv_name(lmv)),
            cv("LegemiddelformKort", lmv.form.code, V.OID_FORM, lmv.form.short),
            cs("Reseptgruppe", lmv.sub.reseptgruppe, V.RESEPTGRUPPER[lmv.sub.reseptgruppe]),
        ]
        if lmv.bytte is not None:
            children.append(leaf("RefByttegruppe", lmv.bytte.id))
        unit = lmv.form.dose_unit
        children.append(cv("EnhetOrdinering", unit, V.OID_DOSE_UNIT, V.DOSE_UNITS[unit]))
        children.append(atc_node(lmv.sub.atc, lmv.sub.name))
        children.append(first.admin)  # an fs element inside an m30 payload: the writer redeclares fs on it
        children.append(leaf("RefLegemiddelVirkestoff", lmv.id))
        children += [leaf("RefLegemiddelDose", d.id) for d in o.doses]
        yield _entry("OrdineringVirkestoff", o.oppf, o.tid, ["OrdineringVirkestoff", None, None, children])


def legemiddelvirkestoff(world: M.World) -> Iterator[FestEntry]:
    for lmv in world.lmv:
        first = lmv.brands[0]
        reimbursed = next((b for b in lmv.brands if b.refgroup is not None), None)
        children = _base(first, navn=_lmv_name(lmv), refusjon=False)
        if reimbursed is not None and reimbursed.refgroup is not None and reimbursed.refusjon_fra is not None:
            index = next(
                i for i, c in enumerate(children) if c[0] in ("AdministreringLegemiddel", "SvartTrekant")
            )
            children.insert(index, _refusjon_node(reimbursed.refgroup.id, iso_date(reimbursed.refusjon_fra)))
        children.append(leaf("Id", lmv.id))
        for i, vms in enumerate(first.vms):
            children.append(
                elem(
                    "SortertVirkestoffMedStyrke",
                    [leaf("Sortering", str(i)), leaf("RefVirkestoffMedStyrke", vms.id)],
                )
            )
        children += [leaf("RefLegemiddelMerkevare", b.id) for b in lmv.brands]
        children += [leaf("RefPakning", p.id) for b in lmv.brands for p in b.packages]
        unit = lmv.form.dose_unit
        children.append(cv("ForskrivningsenhetResept", unit, V.OID_DOSE_UNIT, V.DOSE_UNITS[unit]))
        yield _entry(
            "LegemiddelVirkestoff", lmv.oppf, lmv.tid, ["LegemiddelVirkestoff", None, None, children]
        )


def handelsvare(world: M.World) -> Iterator[FestEntry]:
    for v in world.varer:
        info: list[Node] = [leaf("ProduktNr", v.produktnr)]
        if v.volume:
            info.append(leaf("Volum", v.volume))
        info.append(cv("EnhetStorrelse", v.unit, V.OID_PACK_UNIT, V.PACK_UNITS[v.unit]))
        info.append(leaf("AntPerPakning", str(v.per_pack)))
        info += [leaf("RefVilkar", c.id) for c in v.vilkar]
        info.append(leaf("TillattMerMakspris", "true" if v.kind == "Brystprotese" else "false"))
        name, address, phone = v.supplier
        children: list[Node] = [
            leaf("Nr", v.nr),
            leaf("Navn", v.name),
            elem("ProduktInfoVare", info),
            elem("Leverandor", [leaf("Navn", name), leaf("Adresse", address), leaf("Telefon", phone)]),
            elem(
                "PrisVare",
                [
                    cv("Type", "N", V.OID_PRICE_TYPE_VARE, V.PRICE_TYPES_VARE["N"]),
                    ["Pris", {"V": fmt_price(v.price), "U": "NOK"}, None, None],
                ],
            ),
        ]
        if v.refgroup is not None:
            code = "P" if v.per_pack > 1 else "E"
            children.append(
                elem(
                    "PrisVare",
                    [
                        cv("Type", code, V.OID_PRICE_TYPE_VARE, V.PRICE_TYPES_VARE[code]),
                        ["Pris", {"V": fmt_price(v.price * 1.12), "U": "NOK"}, None, None],
                    ],
                )
            )
            children.append(_refusjon_node(v.refgroup.id, iso_date(v.refgroup.fra)))
        if v.kind == "Naringsmiddel" and v.styrke is not None:
            styrke, form, stoffer = v.styrke
            sfs: list[Node] = []
            if styrke:
                sfs.append(leaf("Styrke", styrke))
            sfs.append(leaf("Form", form))
            sfs += [leaf("Stoff", s) for s in stoffer]
            children.append(elem("StyrkeFormStoff", sfs))
        elif v.kind == "MedForbMatr" and v.category in ("Stomiutstyr", "Sårbehandling"):
            children.append(
                elem("BestanddelMatr", [leaf("Navn", "Hudplate"), leaf("Materiale", "Hydrokolloid")])
            )
        yield _entry("Handelsvare", v.oppf, v.tid, [v.kind, None, None, children])


# DMP's code system for Diagnose Periode is not in our sources; a CV may omit S, so it does
# rather than carry a guessed OID.
_PERIOD_DAY: Node = ["Periode", {"V": "d", "DN": V.PERIODS["d"]}, None, None]


def diagnose(world: M.World) -> Iterator[FestEntry]:
    rng = random.Random(f"diagnose:{len(world.diagnoser)}")
    for d in world.diagnoser:
        icd, icd_text, icpc, icpc_text = V.CONDITIONS[d.condition]
        behandling: list[Node] = [leaf("Beskrivelse", rng.choice(("Førstevalg", "Andrevalg", "Tillegg")))]
        for lmv in d.lmvs[:3]:
            s = lmv.strengths[0]
            forslag: list[Node] = [
                leaf("VirkestoffnavnForm", f"{lmv.sub.name} {lmv.form.short.lower()}"),
                leaf("RefLegemiddelVirkestoff", lmv.id),
            ]
            forslag += [leaf("RefLegemiddelMerkevare", b.id) for b in lmv.brands[:3]]
            low = s.value
            normal = [
                leaf("OvreNormaldose", fmt_number(low * rng.choice((2, 3, 4)))),
                leaf("NedreNormaldose", fmt_number(low)),
                cv("Enhet", "70", V.OID_DOSE_UNIT, "mg"),
                _PERIOD_DAY,
            ]
            maks = [
                leaf("Maksimaldose", fmt_number(low * 6)),
                cv("Enhet", "70", V.OID_DOSE_UNIT, "mg"),
                _PERIOD_DAY,
            ]
            forslag.append(
                elem(
                    "Doseringsforslag",
                    [
                        leaf("Varighet", "P3M"),
                        elem("GodkjentNormaldose", normal),
                        elem("GodkjentMaksimaldose", maks),
                    ],
                )
            )
            behandling.append(elem("Legemiddelforslag", forslag))
        if len(behandling) == 1:
            behandling.append(
                elem("Legemiddelforslag", [leaf("VirkestoffnavnForm", "Ikke-medikamentell behandling")])
            )
        children = [
            leaf("Id", d.id),
            cv("Diagnosekode", icpc, V.OID_ICPC2, icpc_text),
            leaf("Bruksomrade", icd_text),
            elem("Behandling", behandling),
        ]
        yield _entry("Diagnose", d.oppf, d.tid, ["Diagnose", None, None, children])


def _refusjonskode(code_node: Node, fra: str, vilkar: list[M.Vilkar], til: str | None) -> Node:
    children = [code_node, leaf("GyldigFraDato", fra)]
    if til:
        children.append(leaf("UtleveresTilDato", til))
    for v in vilkar:
        children.append(elem("Refusjonsvilkar", [leaf("RefVilkar", v.id), leaf("FraDato", iso_date(v.fra))]))
    return elem("Refusjonskode", children)


def refusjon(world: M.World) -> Iterator[FestEntry]:
    for r in world.refusjon:
        groups: list[Node] = []
        for g in r.groups:
            fra = iso_date(g.fra)
            children = [leaf("Id", g.id), cv("GruppeNr", g.gruppenr, V.OID_REFUND_GROUP, g.dn)]
            if g.atc is not None:
                children.append(atc_node(*g.atc))
            children.append(leaf("KreverRefusjonskode", "true" if g.krever_kode else "false"))
            if g.bruk:
                children.append(leaf("RefusjonsberettighetBruk", g.bruk))
            children += [leaf("RefVilkar", v.id) for v in g.vilkar]
            for key in g.conditions:
                icd, icd_text, icpc, icpc_text = V.CONDITIONS[key]
                children.append(
                    _refusjonskode(cv("Refusjonskode", icd, V.OID_ICD10, icd_text), fra, g.code_vilkar, None)
                )
                children.append(
                    _refusjonskode(
                        cv("Refusjonskode", icpc, V.OID_ICPC2, icpc_text), fra, g.code_vilkar, None
                    )
                )
            for code, twin, text in g.special_codes:
                children.append(
                    _refusjonskode(cv("Refusjonskode", code, V.OID_REFUND_CODE, text), fra, [], None)
                )
                children.append(
                    _refusjonskode(
                        cv("Refusjonskode", twin, V.OID_REFUND_CODE_ICPC_LIKE, text), fra, [], None
                    )
                )
            groups.append(elem("Refusjonsgruppe", children))
        payload = [
            "Refusjonshjemmel",
            None,
            None,
            [
                cv("Refusjonshjemmel", r.hjemmel, V.OID_REFUND_BASIS, V.REFUND_BASES[r.hjemmel]),
                leaf("KreverVarekobling", "true" if r.krever_varekobling else "false"),
                leaf("KreverVedtak", "true" if r.krever_vedtak else "false"),
                *groups,
            ],
        ]
        yield _entry("Refusjon", r.oppf, r.tid, payload)


def vilkar(world: M.World) -> Iterator[FestEntry]:
    for v in world.vilkar:
        children = [
            leaf("Id", v.id),
            leaf("VilkarNr", str(v.nr)),
            cv("Gruppe", v.gruppe, V.OID_CONDITION_GROUP, V.CONDITION_GROUPS[v.gruppe]),
            cs("GjelderFor", v.gjelder, V.GJELDER_FOR[v.gjelder]),
            leaf("Tekst", v.text),
            leaf("GyldigFraDato", iso_date(v.fra)),
        ]
        if v.til:
            children.append(leaf("GyldigTilDato", iso_date(v.til)))
        children += v.structured
        yield _entry("Vilkar", v.oppf, v.tid, ["Vilkar", None, None, children])


def varsel(world: M.World) -> Iterator[FestEntry]:
    rng = random.Random(f"varsel:{len(world.varsler)}")
    for v in world.varsler:
        title, text = rng.choice(V.NOTICE_TEMPLATES[v.type])
        month = f"{rng.choice(V.MONTHS)} {v.fra.year + 1}"
        fields = {
            "brand": v.brand.varenavn,
            "form": v.brand.form.short.lower(),
            "month": month,
            "substance": v.brand.sub.name.lower(),
        }
        children: list[Node] = [
            cv("Type", v.type, V.OID_NOTICE_TYPE, V.NOTICE_TYPES[v.type]),
            leaf("Overskrift", title.format(**fields)),
            leaf("Varseltekst", text.format(**fields)),
        ]
        rules = ["1", "2", "3"] if rng.random() < 0.8 else ["1", "2", "3", "4"]
        rng.shuffle(rules)
        children += [cv("Visningsregel", r, V.OID_DISPLAY_RULE, V.DISPLAY_RULES[r]) for r in rules]
        children.append(leaf("FraDato", iso_date(v.fra)))
        children.append(elem("Lenke", [leaf("Beskrivelse", "Les mer på dmp.no"), url("Www", v.link)]))
        children.append(
            elem(
                "Referanseelement",
                [
                    cs("Klasse", v.klasse, V.REFERENCE_CLASSES[v.klasse]),
                    *[leaf("RefElement", r) for r in v.refs],
                ],
            )
        )
        yield _entry("VarselSlv", v.oppf, v.tid, ["VarselSlv", None, None, children])


def kodeverk(world: M.World) -> Iterator[FestEntry]:
    for k in world.kodeverk:
        info = elem(
            "Info",
            [
                leaf("Id", k.oid),
                leaf("Betegnelse", k.name),
                leaf("Kortnavn", k.short),
                leaf("AnsvarligUtgiver", k.publisher),
            ],
        )
        payload: list[Node] = [info]
        for eid, parent, code, term in k.elements:
            children = [leaf("Id", eid)]
            if parent:
                children.append(leaf("ParentId", parent))
            children.append(leaf("Kode", code))
            children.append(elem("Term", [leaf("Term", term)]))
            payload.append(elem("Element", children))
        yield FestEntry("Kodeverk", k.oppf, k.tid, ACTIVE, ACTIVE_DN, tuple(payload))


def byttegruppe(world: M.World) -> Iterator[FestEntry]:
    for g in world.byttegrupper:
        children = [
            leaf("Id", g.id),
            cs("Kode", g.code, g.dn),
            leaf("MerknadTilByttbarhet", "true" if g.merknad else "false"),
        ]
        if g.beskrivelse:
            children.append(leaf("BeskrivelseByttbarhet", g.beskrivelse))
        children.append(leaf("GyldigFraDato", iso_date(g.fra)))
        yield _entry("Byttegruppe", g.oppf, g.tid, ["Byttegruppe", None, None, children])


def legemiddeldose(world: M.World) -> Iterator[FestEntry]:
    for d in world.doses:
        b = d.brand
        children = _base(b)
        children.append(leaf("Id", d.id))
        children.append(leaf("LmrLopenr", d.lopenr))
        unit = V.DOSE_UNITS[b.form.dose_unit]
        if b.form.solid:
            children.append(pq("Mengde", 1, unit))
        else:
            children.append(pq("Mengde", d.packages[0].size, V.PACK_UNITS[b.form.pack_unit]))
        children.append(cv("Pakningstype", d.pack_type, V.OID_PACK_TYPE, V.PACK_TYPES[d.pack_type]))
        children.append(leaf("RefLegemiddelMerkevare", b.id))
        children += [leaf("RefPakning", p.id) for p in d.packages]
        children.append(cv("EnhetOrdinering", b.form.dose_unit, V.OID_DOSE_UNIT, unit))
        yield _entry("Legemiddeldose", d.oppf, d.tid, ["Legemiddeldose", None, None, children])


# -- interactions ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Rule:
    """How two pharmacological properties interact, and the texts DMP-style advice uses."""

    a: frozenset[str]
    b: frozenset[str]
    relevans: tuple[str, ...]
    kilde: tuple[str, ...]
    konsekvens: tuple[str, ...]
    mekanisme: tuple[str | None, ...]
    handtering: tuple[str | None, ...]
    situasjon: tuple[str | None, ...] = (None,)


def _r(a: str, b: str, *rest: Any) -> Rule:
    return Rule(frozenset(a.split()), frozenset(b.split()), *rest)


RULES: tuple[Rule, ...] = (
    _r(
        "opi",
        "bz",
        ("1",),
        ("2", "3"),
        (
            "Økt risiko for respirasjonsdepresjon, uttalt sedasjon og koma.",
            "Additiv CNS-depressiv effekt. Kombinasjonen har vært assosiert med dødsfall ved overdosering.",
        ),
        ("Additiv hemming av sentralnervesystemet og respirasjonen.",),
        (
            "Dosetilpasning: Kombinasjonen bør bare brukes når alternativer ikke er egnet. Bruk lavest mulig dose "
            "og kortest mulig behandlingstid.\nMonitorering: Følg pasienten nøye med tanke på respirasjonsdepresjon "
            "og sedasjon.\n",
        ),
        (None, "Gjelder særlig eldre og pasienter med nedsatt lungefunksjon."),
    ),
    _r(
        "ser",
        "ser",
        ("1", "2", "2"),
        ("2", "3", "4"),
        (
            "Økt risiko for serotonergt syndrom gjennom farmakodynamisk interaksjon.",
            "Økt risiko for serotonergt syndrom. Symptomer kan være uro, forvirring, svette, tremor, myoklonus og "
            "hypertermi.",
        ),
        ("Begge legemidlene øker serotonerg aktivitet.", "Additiv serotonerg effekt."),
        (
            "Dosetilpasning: Kombinasjonen bør brukes med forsiktighet, særlig ved oppstart og doseøkning.\n"
            "Monitorering: Vær oppmerksom på symptomer på serotonergt syndrom de første ukene.\n",
            "Dosetilpasning: Ved kombinert bruk bør lav dose av {b} tilstrebes.\nLegemiddelalternativer: {alt}\n",
        ),
        (None, None, "Gjelder ved doser av {b} over vanlig startdose."),
    ),
    _r(
        "qt",
        "qt",
        ("1", "2"),
        ("4", "1"),
        ("Økt risiko for QT-forlengelse og ventrikulære arytmier, inkludert torsades de pointes.",),
        ("Additiv effekt; begge legemidlene kan forlenge QT-intervallet.",),
        (
            "Monitorering: EKG bør tas før oppstart og ved doseendringer. Korriger eventuell hypokalemi og "
            "hypomagnesemi.\nLegemiddelalternativer: {alt}\n",
        ),
        (None, "Gjelder særlig eldre, kvinner og pasienter med hjertesykdom eller elektrolyttforstyrrelser."),
    ),
    _r(
        "i3a4",
        "s3a4",
        ("1", "2"),
        ("1", "3"),
        (
            "{A} kan øke serumkonsentrasjonen av {b} betydelig, med økt risiko for doseavhengige bivirkninger.",
            "Økt konsentrasjon av {b}, med risiko for toksiske effekter.",
        ),
        ("{A} hemmer CYP3A4, som er det viktigste enzymet i metabolismen av {b}.",),
        (
            "Dosetilpasning: Vurder dosereduksjon av {b}, eller midlertidig seponering under behandling med {a}.\n"
            "Monitorering: Følg pasienten med tanke på bivirkninger av {b}.\n",
        ),
        (None, "Gjelder ikke ved lokal bruk av {a}."),
    ),
    _r(
        "ind",
        "s3a4 ak immun hypo",
        ("2", "1"),
        ("1",),
        ("{A} kan redusere serumkonsentrasjonen av {b} kraftig, med risiko for terapisvikt.",),
        (
            "{A} induserer CYP3A4 og P-glykoprotein. Full induksjon utvikles i løpet av 1-2 uker og avtar gradvis "
            "etter seponering.",
        ),
        (
            "Dosetilpasning: Dosen av {b} må ofte økes. Vær oppmerksom på overdosering når {a} seponeres.\n"
            "Monitorering: Følg klinisk effekt, eventuelt serumkonsentrasjon av {b}.\n",
        ),
        ("Gjelder ved samtidig bruk over mer enn en uke.", None),
    ),
    _r(
        "i2d6",
        "s2d6",
        ("2",),
        ("1", "4"),
        (
            "{A} kan øke konsentrasjonen av {b}, med økt risiko for bivirkninger.",
            "Redusert effekt av {b}, fordi omdannelsen til aktiv metabolitt hemmes.",
        ),
        ("{A} hemmer CYP2D6.",),
        ("Dosetilpasning: Vurder lavere dose av {b}.\nLegemiddelalternativer: {alt}\n", None),
    ),
    _r(
        "ak",
        "nsaid pl ser",
        ("1", "2"),
        ("3", "1"),
        ("Økt blødningsrisiko, særlig fra mage-tarmkanalen.",),
        (
            "Additiv effekt på hemostasen; {b} hemmer blodplatefunksjonen.",
            "Farmakodynamisk interaksjon: {b} hemmer blodplateaggregasjonen og kan gi slimhinneskade.",
        ),
        (
            "Dosetilpasning: Kombinasjonen bør unngås hvis mulig. Ved nødvendig samtidig bruk bør "
            "protonpumpehemmer vurderes som ulcusprofylakse.\nMonitorering: Følg med på tegn til blødning.\n"
            "Legemiddelalternativer: Paracetamol ved smertebehandling.\n",
        ),
    ),
    _r(
        "lit",
        "diur nsaid k",
        ("1", "2"),
        ("3",),
        ("Økt serumkonsentrasjon av litium med risiko for litiumforgiftning.",),
        ("Redusert renal utskillelse av litium.",),
        (
            "Monitorering: Serum-litium bør kontrolleres ved oppstart og seponering av {b}.\n"
            "Dosetilpasning: Dosen av litium må ofte reduseres.\n",
        ),
    ),
    _r(
        "mtx",
        "nsaid k pl",
        ("1", "2"),
        ("2", "3"),
        ("Økt toksisitet av metotreksat, særlig benmargssuppresjon og slimhinneskade.",),
        ("Redusert renal utskillelse av metotreksat.",),
        ("Monitorering: Kontroller blodbilde og nyrefunksjon tett.\n",),
        ("Gjelder i hovedsak ved høye doser metotreksat.", None),
    ),
    _r(
        "pgpi",
        "dig pgps",
        ("2", "1"),
        ("1",),
        ("Økt serumkonsentrasjon av {b} med risiko for toksiske effekter.",),
        ("{A} hemmer P-glykoprotein og reduserer utskillelsen av {b}.",),
        (
            "Monitorering: Vurder måling av serumkonsentrasjon av {b}.\n"
            "Dosetilpasning: Dosen av {b} kan måtte reduseres med 30-50 %.\n",
        ),
    ),
    _r(
        "chel",
        "kin",
        ("2",),
        ("1",),
        ("Redusert absorpsjon og dermed redusert effekt av {b}.",),
        ("{A} danner tungt løselige komplekser med {b} i mage-tarmkanalen.",),
        ("Dosetilpasning: {B} bør tas minst 2 timer før eller 4-6 timer etter {a}.\n",),
    ),
    _r(
        "k",
        "k",
        ("2",),
        ("4", "2"),
        ("Økt risiko for hyperkalemi, særlig hos eldre og pasienter med nedsatt nyrefunksjon.",),
        ("Begge legemidlene kan øke serum-kalium.",),
        (
            "Monitorering: Kontroller serum-kalium og kreatinin ved oppstart, etter 1-2 uker og deretter jevnlig.\n",
        ),
    ),
    _r(
        "nsaid",
        "bp diur",
        ("2", "3"),
        ("1", "4"),
        ("Redusert blodtrykkssenkende effekt og økt risiko for nedsatt nyrefunksjon.",),
        ("NSAIDs hemmer renal prostaglandinsyntese, noe som gir natrium- og væskeretensjon.",),
        (
            "Monitorering: Kontroller blodtrykk og nyrefunksjon ved langvarig samtidig bruk.\n"
            "Legemiddelalternativer: Paracetamol.\n",
        ),
        (None, "Gjelder ved regelmessig bruk av {a} over mer enn noen dager."),
    ),
    _r(
        "i2c9",
        "ak hypo",
        ("1", "2"),
        ("1", "2"),
        (
            "{A} kan øke effekten av {b} betydelig, med risiko for blødning eller hypoglykemi.",
            "Økt serumkonsentrasjon av {b}.",
        ),
        ("{A} hemmer CYP2C9, som omdanner {b}.",),
        (
            "Monitorering: Kontroller INR eller blodsukker tett i oppstartsfasen og ved seponering av {a}.\n"
            "Dosetilpasning: Dosen av {b} må ofte reduseres.\n",
        ),
    ),
    _r(
        "i1a2",
        "s1a2",
        ("2",),
        ("1",),
        ("Økt konsentrasjon av {b} med risiko for doseavhengige bivirkninger.",),
        ("{A} hemmer CYP1A2, som er viktig for metabolismen av {b}.",),
        ("Dosetilpasning: Vurder dosereduksjon av {b} under kuren med {a}.\n",),
    ),
    _r(
        "i2c19",
        "pl",
        ("2",),
        ("1", "4"),
        ("Mulig redusert platehemmende effekt av {b}.",),
        ("{A} hemmer CYP2C19, som omdanner {b} til aktiv metabolitt.",),
        ("Legemiddelalternativer: Pantoprazol har mindre hemmende effekt på CYP2C19.\n",),
    ),
    _r(
        "diur",
        "dig qt",
        ("2",),
        ("4", "2"),
        ("Diuretikautløst hypokalemi kan øke risikoen for arytmier og toksiske effekter av {b}.",),
        ("{A} kan gi hypokalemi og hypomagnesemi.",),
        ("Monitorering: Kontroller serum-kalium og magnesium ved oppstart og jevnlig.\n",),
    ),
    _r(
        "ser",
        "nsaid pl",
        ("2",),
        ("3", "4"),
        ("Økt risiko for blødning, særlig fra øvre mage-tarmkanal.",),
        ("{A} reduserer serotoninopptaket i blodplatene; {b} hemmer blodplatefunksjonen.",),
        ("Dosetilpasning: Vurder protonpumpehemmer hos eldre og pasienter med tidligere ulcus.\n",),
    ),
    _r(
        "nsaid",
        "nsaid",
        ("1",),
        ("4",),
        ("Økt risiko for gastrointestinale bivirkninger og nyreskade uten bedre smertelindring.",),
        ("Additiv effekt; begge hemmer cyklooksygenase.",),
        ("Dosetilpasning: Samtidig bruk av flere NSAIDs bør unngås.\n",),
    ),
    _r(
        "hypo",
        "hypo",
        ("3", "2"),
        ("4",),
        ("Additiv blodsukkersenkende effekt med økt risiko for hypoglykemi.",),
        ("Ulike virkningsmekanismer med additiv effekt.",),
        ("Monitorering: Kombinasjonen er vanlig. Pasienten bør kjenne symptomer på hypoglykemi.\n",),
    ),
    _r(
        "bp",
        "bp",
        ("3",),
        ("4",),
        (
            "Additiv blodtrykkssenkende effekt. Kombinasjonen er vanlig og ofte ønsket, men kan gi ortostatisk "
            "hypotensjon.",
        ),
        ("Additiv farmakodynamisk effekt.",),
        ("Monitorering: Følg blodtrykket ved oppstart, særlig hos eldre.\n", None),
    ),
    _r(
        "nitrat",
        "pde5",
        ("1",),
        ("1",),
        ("Kraftig og potensielt livstruende blodtrykksfall. Kombinasjonen er kontraindisert.",),
        ("Begge øker cGMP-mediert vasodilatasjon.",),
        ("Dosetilpasning: Kombinasjonen skal ikke brukes. {B} skal ikke tas innen 24-48 timer etter {a}.\n",),
    ),
    _r(
        "ind",
        "hormon",
        ("1",),
        ("1", "2"),
        ("Redusert effekt av {b}; ved bruk som prevensjon er det risiko for graviditet.",),
        ("{A} induserer metabolismen av østrogener og gestagener.",),
        ("Dosetilpasning: Bruk i tillegg barrieremetode under og i 4 uker etter behandling med {a}.\n",),
    ),
    _r(
        "inr",
        "vka",
        ("2",),
        ("2", "4"),
        ("Økt INR og blødningsrisiko under og like etter kuren med {a}.",),
        ("Endret tarmflora og redusert vitamin K-produksjon; for noen også hemmet metabolisme av {b}.",),
        ("Monitorering: Kontroller INR 3-5 dager etter oppstart av {a}.\n",),
    ),
    _r(
        "achi",
        "achi ache",
        ("2", "3"),
        ("4",),
        (
            "Additiv antikolinerg effekt med munntørrhet, obstipasjon, urinretensjon og forvirring, særlig hos "
            "eldre.",
            "Motsatt virkning; antikolinerge legemidler kan redusere effekten av {b}.",
        ),
        ("Antikolinerge egenskaper.",),
        ("Monitorering: Vurder samlet antikolinerg belastning hos eldre.\n",),
    ),
    _r(
        "brady",
        "brady",
        ("2",),
        ("4", "2"),
        ("Additiv negativ kronotrop effekt med risiko for bradykardi og AV-blokk.",),
        ("Begge legemidlene senker hjertefrekvensen.",),
        ("Monitorering: Kontroller puls og eventuelt EKG ved oppstart.\n",),
    ),
    _r(
        "nephro",
        "nephro",
        ("2",),
        ("4",),
        ("Økt risiko for nyreskade.",),
        ("Begge legemidlene kan være nefrotoksiske.",),
        ("Monitorering: Kontroller nyrefunksjon ved oppstart og jevnlig under samtidig bruk.\n",),
    ),
    _r(
        "cns",
        "cns",
        ("2", "3"),
        ("4", "2"),
        ("Additiv CNS-depressiv effekt med økt risiko for sedasjon, svimmelhet og nedsatt reaksjonsevne.",),
        ("Additiv hemming av sentralnervesystemet.",),
        (
            "Dosetilpasning: Bruk lavest mulig dose av begge legemidlene.\nMonitorering: Pasienten bør informeres "
            "om økt risiko ved bilkjøring og betjening av maskiner.\n",
        ),
    ),
)

NO_FINDING = Rule(
    frozenset(),
    frozenset(),
    ("3",),
    ("1", "4"),
    (
        "Studier har ikke vist klinisk relevant interaksjon mellom {a} og {b}.",
        "Ingen klinisk relevant interaksjon forventet.",
        "Teoretisk mulig additiv effekt, men ingen holdepunkter for klinisk relevant interaksjon.",
    ),
    (None, "Ulike eliminasjonsveier; ingen felles metabolske enzymer av betydning."),
    (None, "Ingen spesielle tiltak er nødvendige.\n"),
)


SITUATIONS: tuple[str, ...] = (
    "Gjelder ved systemisk bruk av {a}.",
    "Gjelder ved regelmessig bruk, ikke ved enkeltdoser.",
    "Gjelder særlig ved høye doser av {b}.",
)
ELABORATIONS: tuple[str, ...] = (
    "Risikoen øker med dose og behandlingsvarighet.",
    "Interaksjonen er best dokumentert for {b}, men gjelder trolig flere legemidler i samme gruppe.",
    "Eldre pasienter og pasienter med nedsatt nyre- eller leverfunksjon er særlig utsatt.",
    "Effekten kan vedvare i flere dager etter at {a} er seponert.",
    "Det er beskrevet alvorlige tilfeller, men forekomsten er lav.",
    "Den kliniske betydningen avhenger av dosen av {b}.",
)
MONITORING: tuple[str, ...] = (
    "Monitorering: Følg pasienten klinisk de første ukene etter oppstart eller doseendring.\n",
    "Monitorering: Vurder måling av serumkonsentrasjon ved mistanke om bivirkninger eller manglende effekt.\n",
    "Monitorering: Informer pasienten om symptomer som bør føre til kontakt med lege.\n",
)
MECHANISM_NOTES: tuple[str, ...] = (
    "Effekten er doseavhengig.",
    "Betydningen er størst ved oppstart og seponering.",
    "Både farmakokinetiske og farmakodynamiske forhold kan bidra.",
    "Mekanismen er delvis ukjent.",
)


def rule_for(tags_a: frozenset[str], tags_b: frozenset[str]) -> int | None:
    """Index of the first rule that matches the pair in either direction, or None."""
    for i, rule in enumerate(RULES):
        if (tags_a & rule.a and tags_b & rule.b) or (tags_b & rule.a and tags_a & rule.b):
            return i
    return None


def _group_label(g: M.IGroup) -> str:
    label = g.name or g.members[0][0]
    return label[0].lower() + label[1:] if label[:2] != label[:2].upper() else label


_ALTERNATIVES: dict[str, list[str]] = {}
for _s in SUBSTANCES:
    if not _s.is_combination:
        _ALTERNATIVES.setdefault(_s.atc[:4], []).append(_s.name)


def _alternatives(rng: random.Random, g: M.IGroup, avoid: frozenset[str]) -> str:
    prefix = (g.atc or "N06A")[:4]
    names = [n for n in _ALTERNATIVES.get(prefix, []) if n not in {m[0] for m in g.members}]
    names = [n for n in names if not (next(s for s in SUBSTANCES if s.name == n).tags & avoid)]
    if not names:
        return "Vurder legemiddel fra annen gruppe i samråd med lege."
    picked = rng.sample(names, min(len(names), rng.randint(2, 4)))
    text = ", ".join(n.lower() for n in picked[:-1])
    text = f"{text} og {picked[-1].lower()}" if text else picked[-1].lower()
    return f"{text[0].upper()}{text[1:]} kan være alternativer uten denne interaksjonen"


def _reference(rng: random.Random, a: M.IGroup, b: M.IGroup) -> Node:
    sub_a, sub_b = a.members[0][0], b.members[0][0]
    r = rng.random()
    if r < 0.25:
        trade = next((s.trade_names[0] for s in SUBSTANCES if s.name == sub_b and s.trade_names), sub_b)
        kilde = f"SPC {trade}"
        if rng.random() < 0.5:
            link = (
                f"https://www.legemiddelsok.no/_layouts/15/Preparatomtaler/Spc/{rng.randrange(0, 25):02d}-"
                f"{rng.randrange(1000, 99999):05d}.pdf"
            )
        else:
            link = (
                "http://www.legemiddelverket.no/custom/Preparatsok/prepSearch____"
                f"{rng.randrange(10000, 99999)}.aspx?SearchID={new_guid(rng).lower()}"
            )
    else:
        authors = []
        for _ in range(rng.choice((1, 2, 3, 3))):
            initials = "".join(rng.choice("ABCDEFGHJKLMNOPRST") for _ in range(rng.randint(1, 2)))
            authors.append(f"{rng.choice(V.SURNAMES)} {initials}")
        english = {s.name: s.english for s in SUBSTANCES}
        title = (rng.choice(V.STUDY_TITLES) + rng.choice(V.STUDY_DESIGNS)).format(
            a=english.get(sub_a, sub_a).lower(), b=english.get(sub_b, sub_b).lower()
        )
        year = rng.randrange(1985, 2025)
        page = rng.randrange(10, 2200)
        kilde = (
            f"{', '.join(authors)}, et al. {title[0].upper()}{title[1:]}. {rng.choice(V.JOURNALS)} "
            f"{year};{rng.randrange(1, 130)}({rng.randrange(1, 13)}):{page}-{page + rng.randrange(2, 12)}. "
            f"doi:10.{rng.randrange(1000, 9999)}/{rng.choice(('cpt', 'ejcp', 'bjcp', 'jcp', 'dmd'))}."
            f"{year}.{rng.randrange(100, 9999)}"
        )
        pmid = rng.randrange(1000000, 39000000)
        link = rng.choice(
            (
                f"https://pubmed.ncbi.nlm.nih.gov/{pmid}/",
                f"http://www.ncbi.nlm.nih.gov/sites/entrez?Db=pubmed&Cmd=ShowDetailView&TermToSearch={pmid}"
                f"&ordinalpos={rng.randrange(1, 20)}&itool=EntrezSystem2.PEntrez.Pubmed.Pubmed_ResultsPanel."
                "Pubmed_RVDocSum",
                f"http://www.ncbi.nlm.nih.gov/entrez/query.fcgi?db=pubmed&cmd=Retrieve&dopt=AbstractPlus"
                f"&list_uids={pmid}&query_hl={rng.randrange(1, 60)}&itool=pubmed_docsum",
            )
        )
    return elem("Referanse", [leaf("Kilde", kilde), url("Lenke", link)])


def _substansgruppe(g: M.IGroup) -> Node:
    children: list[Node] = []
    if g.name:
        children.append(leaf("Navn", g.name))
    for name, atc, refs in g.members:
        sub: list[Node] = [leaf("Substans", name)]
        if atc:
            sub.append(atc_node(atc, name))
        sub += [leaf("RefVirkestoff", r) for r in refs]
        children.append(elem("Substans", sub))
    return elem("Substansgruppe", children)


def interaksjon(world: M.World) -> Iterator[FestEntry]:
    rng = random.Random(f"interaksjon:{len(world.interaksjoner)}")
    for it in world.interaksjoner:
        rule = RULES[it.rule] if it.rule >= 0 else NO_FINDING
        a, b = it.a, it.b
        if it.rule >= 0 and not (a.tags & rule.a and b.tags & rule.b):
            a, b = b, a
        la, lb = _group_label(a), _group_label(b)
        fields = {"a": la, "b": lb, "A": la[0].upper() + la[1:], "B": lb[0].upper() + lb[1:]}
        relevans = rng.choice(rule.relevans)
        children: list[Node] = [leaf("Id", it.id), cs("Relevans", relevans, V.RELEVANS[relevans])]
        situasjon = rng.choice(rule.situasjon) or (
            rng.choice(SITUATIONS) if it.rule >= 0 and rng.random() < 0.3 else None
        )
        if situasjon:
            children.append(leaf("Situasjonskriterium", situasjon.format(**fields)))
        konsekvens = rng.choice(rule.konsekvens)
        if it.rule >= 0 and rng.random() < 0.8:
            konsekvens += " " + rng.choice(ELABORATIONS)
        children.append(leaf("KliniskKonsekvens", konsekvens.format(**fields)))
        mekanisme = rng.choice(rule.mekanisme)
        if mekanisme:
            if it.rule >= 0 and rng.random() < 0.7:
                mekanisme += " " + rng.choice(MECHANISM_NOTES)
            children.append(leaf("Interaksjonsmekanisme", mekanisme.format(**fields)))
        kilde = rng.choice(rule.kilde)
        children.append(cs("Kildegrunnlag", kilde, V.KILDEGRUNNLAG[kilde]))
        handtering = rng.choice(rule.handtering)
        if handtering:
            fields["alt"] = _alternatives(rng, b, rule.a | rule.b)
            if it.rule >= 0 and "Monitorering" not in handtering:
                handtering += rng.choice(MONITORING)
            if it.rule >= 0 and "Legemiddelalternativer" not in handtering and rng.random() < 0.7:
                handtering += "Legemiddelalternativer: {alt}\n"
            children.append(leaf("Handtering", handtering.format(**fields)))
        rules = ["1", "4", "2", "3"] if relevans != "3" else (["4"] if rng.random() < 0.5 else [])
        if relevans != "3" and rng.random() < 0.4:
            rules.remove("4")
        children += [cv("Visningsregel", r, V.OID_DISPLAY_RULE, V.DISPLAY_RULES[r]) for r in rules]
        for _ in range(
            rng.choice((4, 5, 6, 7, 8, 8, 9, 10, 11, 12)) if it.rule >= 0 else rng.choice((2, 3, 3, 4, 5))
        ):
            children.append(_reference(rng, a, b))
        children.append(_substansgruppe(a))
        children.append(_substansgruppe(b))
        yield _entry("Interaksjon", it.oppf, it.tid, ["Interaksjon", None, None, children])
    for iv in world.ikke_vurdert:
        yield _entry(
            "Interaksjon",
            iv.oppf,
            iv.tid,
            ["InteraksjonIkkeVurdert", None, None, [atc_node(iv.atc, iv.name)]],
        )


def _forbruk(text: str) -> list[Node]:
    """Legemiddelforbruk rows for a Kortdose text such as "1+0+1", "2x3" or "2x1x1$1x1"."""
    rows: list[tuple[float, int | None]] = []
    head = text.split(" ")[0]
    try:
        if "+" in head:
            rows.append((sum(float(x.replace(",", ".")) for x in head.split("+")), None))
        elif "x" in head:
            for part in head.split("$"):
                nums = [float(x.replace(",", ".")) for x in part.split("x")]
                total = nums[0] * (nums[1] if len(nums) > 1 else 1)
                rows.append((total, int(nums[2]) if len(nums) > 2 else None))
        elif text.endswith("daglig"):
            rows.append((float(head.replace(",", ".")), None))
    except ValueError:
        return []
    out = []
    for i, (amount, iterations) in enumerate(rows, 1):
        children = [leaf("Lopenr", str(i)), leaf("Mengde", fmt_number(amount)), leaf("Periode", "P1D")]
        if iterations:
            children.append(leaf("Iterasjoner", str(iterations)))
        out.append(elem("Legemiddelforbruk", children))
    return out


def strdosering(world: M.World) -> Iterator[FestEntry]:
    for k in world.kortdoser:
        children = [
            cv("Kortdose", k.code, V.OID_KORTDOSE, k.text),
            leaf("BeskrivelseTerm", k.text),
            *_forbruk(k.text),
        ]
        yield _entry("StrDosering", k.oppf, k.tid, ["Kortdose", None, None, children])


EMITTERS = {
    "LegemiddelMerkevare": merkevare,
    "Legemiddelpakning": pakning,
    "Virkestoff": virkestoff,
    "OrdineringVirkestoff": ordinering,
    "LegemiddelVirkestoff": legemiddelvirkestoff,
    "Handelsvare": handelsvare,
    "Diagnose": diagnose,
    "Refusjon": refusjon,
    "Vilkar": vilkar,
    "VarselSlv": varsel,
    "Kodeverk": kodeverk,
    "Byttegruppe": byttegruppe,
    "Legemiddeldose": legemiddeldose,
    "Interaksjon": interaksjon,
    "StrDosering": strdosering,
}


def all_entries(world: M.World) -> Iterator[FestEntry]:
    """Every entry of the delivery, catalogue by catalogue in XSD order."""
    for cat in catalogues():
        yield from EMITTERS[cat.name](world)
