"""The in-memory model of one generated FEST delivery: products, substances and their links.

Built once per delivery from the vocabulary and a seed, before anything is written, so that
every Ref* can point at an Id that is known to exist. The model holds small records only;
`emit` turns them into M30 payload nodes one entry at a time while writing.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from datetime import date, timedelta

from grunndata.m30 import Node

from . import vocab as V
from .substances import DERIVED_SUBSTANCES, REAL_SUBSTANCES, SUBSTANCES, Strength, Substance, fmt_number
from .util import IdFactory, batch_timestamp, cs, cv, ean13, elem, first_of_month, random_date

# Entry counts of a real rekvirent delivery (FEST 2.5.1, September 2026) per payload kind.
REAL_COUNTS: dict[str, int] = {
    "LegemiddelMerkevare": 8962,
    "Legemiddelpakning": 10828,
    "Virkestoff": 8639,
    "VirkestoffMedStyrke": 7721,
    "OrdineringVirkestoff": 95,
    "LegemiddelVirkestoff": 2196,
    "Brystprotese": 215,
    "MedForbMatr": 4620,
    "Naringsmiddel": 1474,
    "Diagnose": 32,
    "Refusjon": 1158,
    "Vilkar": 205,
    "VarselSlv": 58,
    "Kodeverk": 25,
    "Byttegruppe": 1721,
    "Legemiddeldose": 9467,
    "Interaksjon": 11000,
    "InteraksjonIkkeVurdert": 454,
    "StrDosering": 110,
}

REAL = frozenset(REAL_SUBSTANCES)
INTERACTING = REAL | frozenset(DERIVED_SUBSTANCES[::5])  # substances DMP's interaction base covers

GroupKey = tuple[str, str, tuple[Strength, ...]]  # (ATC, form, strengths): one LegemiddelVirkestoff

BULK_TIDSPUNKT = "2014-12-06T01:16:07"  # the day FEST 2.5 was loaded; many entries still carry it


def scaled_counts(scale: float) -> dict[str, int]:
    """Entries per payload kind at `scale`, never fewer than one."""
    if not scale > 0:
        raise ValueError("scale must be positive")
    return {k: max(1, round(n * scale)) for k, n in REAL_COUNTS.items()}


@dataclass(slots=True, eq=False)
class Virkestoff:
    oppf: str
    tid: str
    id: str
    name: str
    english: str
    salts: list[Virkestoff] = field(default_factory=list)
    refusjon: list[RefGroup] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Vms:
    oppf: str
    tid: str
    id: str
    strength: Strength
    virkestoff: Virkestoff
    kombi: Substance | None


@dataclass(slots=True, eq=False)
class Vilkar:
    oppf: str
    tid: str
    id: str
    nr: int
    gruppe: str
    gjelder: str
    text: str
    fra: date
    til: date | None
    structured: list[Node]


@dataclass(slots=True, eq=False)
class RefGroup:
    id: str
    gruppenr: str
    dn: str
    atc: tuple[str, str] | None
    krever_kode: bool
    bruk: str | None
    vilkar: list[Vilkar]
    conditions: list[str]  # keys of vocab.CONDITIONS
    special_codes: list[tuple[str, str, str]]
    fra: date
    code_vilkar: list[Vilkar]


@dataclass(slots=True, eq=False)
class Refusjon:
    oppf: str
    tid: str
    hjemmel: str
    krever_varekobling: bool
    krever_vedtak: bool
    groups: list[RefGroup]


@dataclass(slots=True, eq=False)
class Byttegruppe:
    oppf: str
    tid: str
    id: str
    code: str
    dn: str
    merknad: bool
    beskrivelse: str | None
    fra: date


@dataclass(slots=True, eq=False)
class Brand:
    oppf: str
    tid: str
    id: str
    sub: Substance
    form: V.Form
    form_long: str
    strengths: tuple[Strength, ...]
    varenavn: str
    navn: str
    produsent: str
    kind: str  # original, generic, parallel, hospital
    preparattype: str
    admin: Node
    market: date
    vms: list[Vms] = field(default_factory=list)
    packages: list[Package] = field(default_factory=list)
    refgroup: RefGroup | None = None
    refusjon_fra: date | None = None
    vilkar: list[Vilkar] = field(default_factory=list)
    black_triangle: bool = False
    has_atc: bool = True  # a few hospital preparations have no ATC code (97 % of brands have one)
    spc: str | None = None
    hjelpestoff: tuple[str, ...] = ()
    referanse: str | None = None
    smak: str | None = None
    price_per_unit: float = 1.0
    doses: list[Dose] = field(default_factory=list)


@dataclass(slots=True, eq=False)
class Package:
    oppf: str
    tid: str
    id: str
    brand: Brand
    varenr: str
    eans: tuple[str, ...]
    size: float
    multiple: int
    pack_type: str
    aip: float
    market: date
    price_from: date
    extra: list[Brand] = field(default_factory=list)
    bytte: Byttegruppe | None = None
    bytte_fra: date | None = None
    trinnpris: float | None = None
    unavailable: date | None = None
    replaces: str | None = None
    next_aip: float | None = None  # an announced price change from next_from
    next_from: date | None = None


@dataclass(slots=True, eq=False)
class Lmv:
    oppf: str
    tid: str
    id: str
    sub: Substance
    form: V.Form
    strengths: tuple[Strength, ...]
    brands: list[Brand]
    bytte: Byttegruppe | None


@dataclass(slots=True, eq=False)
class Dose:
    oppf: str
    tid: str
    id: str
    brand: Brand
    packages: list[Package]
    lopenr: str
    pack_type: str


@dataclass(slots=True, eq=False)
class Ordinering:
    oppf: str
    tid: str
    id: str
    lmv: Lmv
    doses: list[Dose]


@dataclass(slots=True, eq=False)
class Diagnose:
    oppf: str
    tid: str
    id: str
    condition: str
    lmvs: list[Lmv]


@dataclass(slots=True, eq=False)
class Varsel:
    oppf: str
    tid: str
    type: str
    brand: Brand
    klasse: str
    refs: list[str]
    fra: date
    link: str


@dataclass(slots=True, eq=False)
class IGroup:
    """An interaction substance group: one substance (with its combinations) or a class."""

    name: str | None
    members: list[tuple[str, str | None, list[str]]]  # (Substans text, ATC or None, RefVirkestoff ids)
    tags: frozenset[str]
    atc: str | None


@dataclass(slots=True, eq=False)
class Interaksjon:
    oppf: str
    tid: str
    id: str
    a: IGroup
    b: IGroup
    rule: int  # index into emit.RULES, -1 for the no-finding texts


@dataclass(slots=True, eq=False)
class IkkeVurdert:
    oppf: str
    tid: str
    atc: str
    name: str


@dataclass(slots=True, eq=False)
class Vare:
    oppf: str
    tid: str
    kind: str  # Brystprotese, MedForbMatr, Naringsmiddel
    nr: str
    name: str
    produktnr: str
    volume: str | None
    unit: str
    per_pack: int
    supplier: tuple[str, str, str]
    price: float
    refgroup: RefGroup | None
    vilkar: list[Vilkar]
    category: str
    styrke: tuple[str, str, list[str]] | None


@dataclass(slots=True, eq=False)
class Kodeverk:
    oppf: str
    tid: str
    oid: str
    name: str
    short: str
    publisher: str
    elements: list[tuple[str, str | None, str, str]]  # (Id, ParentId, Kode, Term)


@dataclass(slots=True, eq=False)
class Kortdose:
    oppf: str
    tid: str
    code: str
    text: str


@dataclass(slots=True)
class Synthetic:
    """An invented INN-like substance: pads Virkestoff, Refusjon and InteraksjonIkkeVurdert."""

    name: str
    english: str
    atc: str


class World:
    """Everything one delivery contains, linked by Ids, built deterministically from a seed."""

    def __init__(self, counts: dict[str, int], seed: int, hentet: date) -> None:
        self.counts = counts
        self.hentet = hentet
        self.rng = random.Random(f"grunndata-sample:{seed}")
        self.ids = IdFactory(random.Random(f"grunndata-sample-ids:{seed}"))
        self.used_numbers: set[str] = set()
        self.used_eans: set[str] = set()
        self.virkestoff: list[Virkestoff] = []
        self.virkestoff_by_name: dict[str, Virkestoff] = {}
        self.vms: list[Vms] = []
        self.vms_by_key: dict[tuple[str, Strength, str | None], list[Vms]] = {}
        self.vilkar: list[Vilkar] = []
        self.refusjon: list[Refusjon] = []
        self.refgroups: dict[tuple[str, str], RefGroup] = {}
        self.brands: list[Brand] = []
        self.packages: list[Package] = []
        self.byttegrupper: list[Byttegruppe] = []
        self.lmv: list[Lmv] = []
        self.doses: list[Dose] = []
        self.ordinering: list[Ordinering] = []
        self.diagnoser: list[Diagnose] = []
        self.varsler: list[Varsel] = []
        self.interaksjoner: list[Interaksjon] = []
        self.ikke_vurdert: list[IkkeVurdert] = []
        self.varer: list[Vare] = []
        self.kodeverk: list[Kodeverk] = []
        self.kortdoser: list[Kortdose] = []
        self.synthetic: list[Synthetic] = []
        self.extra_atc: dict[str, str] = {}  # ATC codes used outside SUBSTANCES -> name
        self._product_refusjon_budget = max(1, round(counts["Refusjon"] * 0.8))
        self._line_index: dict[tuple[str, str, str], list[Brand]] | None = None
        self._groups: dict[GroupKey, list[Brand]] = {}
        self._build()

    # -- small helpers ---------------------------------------------------------------------

    def tid(self) -> str:
        """A Tidspunkt for an entry listed some time before this delivery."""
        r = self.rng.random()
        if r < 0.3:
            return BULK_TIDSPUNKT
        if r < 0.6:
            day = random_date(self.rng, self.hentet - timedelta(days=730), self.hentet - timedelta(days=1))
        else:
            day = random_date(self.rng, date(2015, 1, 1), self.hentet - timedelta(days=1))
        return batch_timestamp(self.rng, day)

    def oppf(self) -> tuple[str, str]:
        return self.ids.new(), self.tid()

    def number6(self) -> str:
        """A fresh six-digit varenr (shared by packages and Handelsvare, as in FEST)."""
        while True:
            value = f"{self.rng.randrange(1, 600000):06d}"
            if value not in self.used_numbers:
                self.used_numbers.add(value)
                return value

    def ean_for(self, varenr: str) -> str:
        rng = self.rng
        while True:
            r = rng.random()
            if r < 0.74:
                body = "704626" + varenr
            elif r < 0.84:
                body = rng.choice(V.NORWEGIAN_GS1_PREFIXES) + f"{rng.randrange(10**5):05d}"
            else:
                prefix = rng.choice(V.FOREIGN_GS1_PREFIXES)
                body = prefix + "".join(str(rng.randrange(10)) for _ in range(12 - len(prefix)))
            value = ean13(body)
            if value not in self.used_eans:
                self.used_eans.add(value)
                return value

    def date_between(self, start: date, end: date) -> date:
        return random_date(self.rng, start, end)

    # -- build -----------------------------------------------------------------------------

    def _build(self) -> None:
        self._build_vilkar()
        self._build_synthetic()
        self._build_brands()
        self._build_packages()
        self._build_byttegrupper()
        self._build_lmv()
        self._build_doses()
        self._build_ordinering()
        self._build_diagnoser()
        self._build_varsler()
        self._build_handelsvare()
        self._pad_refusjon()
        self._pad_virkestoff()
        self._pad_vms()
        self._build_interaksjoner()
        self._build_kortdoser()
        self._build_kodeverk()  # last: it lists every code the delivery uses
        for records in (
            self.brands,
            self.packages,
            self.virkestoff,
            self.vms,
            self.byttegrupper,
            self.refusjon,
            self.interaksjoner,
            self.varer,
            self.doses,
            self.lmv,
        ):
            self.rng.shuffle(records)

    def _build_vilkar(self) -> None:
        rng = self.rng
        specs = list(V.SPECIALITIES.items())
        texts_refusjon = (
            "Refusjon ytes kun etter resept fra sykehuslege eller spesialist i {spec}.",
            "Refusjon ytes selv om legemidlet skal brukes i mindre enn tre måneder.",
            "Refusjon ytes kun etter resept fra sykehus.",
            "Refusjon ytes bare til pasienter som ikke har tilstrekkelig effekt av, eller ikke tåler, "
            "rimeligere alternativer.",
            "Behandlingen skal være instituert av spesialist i {spec}.",
            "Refusjon ytes kun til pasienter over {age} år.",
            "Refusjon ytes kun til barn under {age} år.",
            "Refusjon ytes kun når pasienten har forsøkt minst to andre legemidler i samme gruppe.",
            "Forskrivende lege skal journalføre at vilkårene er oppfylt.",
            "Refusjon ytes kun til pasienter med dokumentert effekt etter tre måneders behandling.",
        )
        texts_lm = (
            "Forskrivning er forbeholdt spesialist i {spec}.",
            "Kun til bruk i sykehus.",
            "Preparatet skal kun utleveres til helsepersonell for bruk i klinikk.",
            "Forskrivning krever godkjenningsfritak fra Legemiddelverket.",
        )
        texts_vare = (
            "Refusjon ytes kun til pasienter med varig behov for {cat}.",
            "Leverandøren må ha avtale med Helfo om {cat}.",
            "Refusjon ytes for inntil tre måneders forbruk av gangen.",
        )
        n = self.counts["Vilkar"]
        for i in range(n):
            oppf, tid = self.oppf()
            r = rng.random()
            spec_code, spec = rng.choice(specs)
            age = rng.choice((2, 6, 12, 18, 65))
            structured: list[Node] = []
            if r < 0.7 or i == 0:
                gruppe = "3"
                template = rng.choice(texts_refusjon)
                if "sykehuslege eller spesialist" in template or "instituert" in template:
                    structured.append(
                        elem(
                            "StrukturertVilkar",
                            [
                                cv("Type", "10", V.OID_STRUCTURED_CONDITION, V.STRUCTURED_CONDITIONS["10"]),
                                cv("VerdiKodet", spec_code, V.OID_SPECIALITY, spec),
                            ],
                        )
                    )
                elif "kun etter resept fra sykehus" in template:
                    structured.append(
                        elem(
                            "StrukturertVilkar",
                            [
                                cv("Type", "9", V.OID_STRUCTURED_CONDITION, V.STRUCTURED_CONDITIONS["9"]),
                                cv("VerdiKodet", "1", V.OID_YES_NO, "Ja"),
                            ],
                        )
                    )
                elif "år." in template:
                    kind = "1" if "over" in template else "2"
                    structured.append(
                        elem(
                            "StrukturertVilkar",
                            [
                                cv("Type", kind, V.OID_STRUCTURED_CONDITION, V.STRUCTURED_CONDITIONS[kind]),
                                ["VerdiTekst", None, str(age), None],
                            ],
                        )
                    )
            elif r < 0.88:
                gruppe, template = "1", rng.choice(texts_lm)
            else:
                gruppe, template = "2", rng.choice(texts_vare)
            text = template.format(spec=spec.lower(), age=age, cat=rng.choice(V.CONSUMABLES)[0].lower())
            fra = self.date_between(date(2008, 1, 1), self.hentet - timedelta(days=60))
            til = fra + timedelta(days=rng.randrange(700, 4000)) if rng.random() < 0.08 else None
            self.vilkar.append(
                Vilkar(
                    oppf,
                    tid,
                    self.ids.new(),
                    0,
                    gruppe,
                    rng.choice(("1", "3", "3")),
                    text,
                    fra,
                    til,
                    structured,
                )
            )
        numbers = rng.sample(range(1, max(400, n * 2)), n)
        for v, nr in zip(self.vilkar, sorted(numbers), strict=True):
            v.nr = nr

    def vilkar_of(self, gruppe: str) -> list[Vilkar]:
        return [v for v in self.vilkar if v.gruppe == gruppe] or self.vilkar

    def _build_synthetic(self) -> None:
        """Invented substances with free ATC codes in the right groups (after real codes end)."""
        rng = self.rng
        real_atc = {s.atc for s in SUBSTANCES}
        needed = (
            self.counts["InteraksjonIkkeVurdert"]
            + max(0, self.counts["Refusjon"] - 400)
            + max(0, self.counts["Virkestoff"] // 2)
        )
        names: set[str] = {s.name for s in SUBSTANCES}
        slots = {stem: 40 for stem, _, _ in V.INN_STEMS}
        attempts = 0
        while len(self.synthetic) < needed and attempts < needed * 20:
            attempts += 1
            stem, group, english_stem = rng.choice(V.INN_STEMS)
            head = rng.choice(V.INN_HEADS) + rng.choice(V.INN_MIDDLES)
            name = (head + stem).capitalize()
            if name in names or len(name) < 6:
                continue
            english = _english_inn(head) + english_stem
            atc = ""
            if slots[stem] < 100:
                atc = f"{group}{slots[stem]:02d}"
                slots[stem] += 1
                if atc in real_atc:
                    continue
            names.add(name)
            self.synthetic.append(Synthetic(name, english.capitalize(), atc))

    # -- virkestoff and strengths ------------------------------------------------------------

    def virkestoff_named(self, name: str, english: str) -> Virkestoff:
        found = self.virkestoff_by_name.get(name)
        if found is None:
            oppf, tid = self.oppf()
            found = Virkestoff(oppf, tid, self.ids.new(), name, english)
            self.virkestoff_by_name[name] = found
            self.virkestoff.append(found)
            if self.rng.random() < 0.45:
                self._add_salts(found, 1 + (self.rng.random() < 0.3))
        return found

    def _add_salts(self, parent: Virkestoff, n: int) -> int:
        added = 0
        for suffix, english_suffix in self.rng.sample(V.SALTS, n):
            name = parent.name + suffix
            if name in self.virkestoff_by_name:
                continue
            oppf, tid = self.oppf()
            salt = Virkestoff(oppf, tid, self.ids.new(), name, parent.english + english_suffix)
            self.virkestoff_by_name[name] = salt
            self.virkestoff.append(salt)
            parent.salts.append(salt)
            added += 1
        return added

    def component_virkestoff(self, sub: Substance) -> list[Virkestoff]:
        """The Virkestoff behind each strength component of `sub`."""
        if not sub.components:
            return [self.virkestoff_named(sub.name, sub.english)]
        out = []
        for comp in sub.components:
            if comp.startswith("="):
                name, _, english = comp[1:].partition(":")
                out.append(self.virkestoff_named(name, english))
            else:
                single = next(s for s in SUBSTANCES if s.atc == comp)
                out.append(self.virkestoff_named(single.name, single.english))
        return out

    def vms_for(self, sub: Substance, strengths: tuple[Strength, ...], progress: float) -> list[Vms]:
        """VirkestoffMedStyrke for a brand, shared with earlier brands often enough to hit the target."""
        out = []
        target = self.counts["VirkestoffMedStyrke"]
        for vk, strength in zip(self.component_virkestoff(sub), strengths, strict=False):
            key = (vk.name, strength, sub.atc if sub.is_combination else None)
            existing = self.vms_by_key.get(key)
            ahead = len(self.vms) / target > progress
            if existing and (ahead or self.rng.random() < 0.25):
                out.append(self.rng.choice(existing))
                continue
            oppf, tid = self.oppf()
            vms = Vms(oppf, tid, self.ids.new(), strength, vk, sub if sub.is_combination else None)
            self.vms.append(vms)
            self.vms_by_key.setdefault(key, []).append(vms)
            out.append(vms)
        return out

    # -- brands ------------------------------------------------------------------------------

    def _build_brands(self) -> None:
        rng = self.rng
        target = self.counts["LegemiddelMerkevare"]
        subs = list(SUBSTANCES)
        weights = [s.popularity + 2 if s in REAL else 1 for s in subs]
        lines_of: dict[tuple[str, str], list[Brand]] = {}
        makers_used: dict[str, set[str]] = {}
        while len(self.brands) < target:
            sub = rng.choices(subs, weights)[0]
            form_key, form_strengths = rng.choice(sub.forms)
            form = V.FORMS[form_key]
            line_key = (sub.atc, form_key)
            existing = lines_of.setdefault(line_key, [])
            used = makers_used.setdefault(sub.atc, set())
            r = rng.random()
            if not existing:
                kind = "hospital" if rng.random() < 0.02 else "original"
            elif r < 0.16 and any(b.kind == "original" for b in existing):
                kind = "parallel"
            elif r < 0.19:
                kind = "hospital"
            else:
                kind = "generic"
            strengths = list(form_strengths)
            if kind != "original" and len(strengths) > 1:
                strengths = sorted(
                    rng.sample(strengths, rng.randint(1, len(strengths))), key=form_strengths.index
                )
            varenavn, produsent = self._name_line(sub, form, kind, existing, used)
            form_long = rng.choice(form.long)
            for strength in strengths:
                if len(self.brands) >= target:
                    break
                brand = self._new_brand(sub, form, form_long, strength, varenavn, produsent, kind)
                existing.append(brand)

    def _name_line(
        self, sub: Substance, form: V.Form, kind: str, existing: list[Brand], used: set[str]
    ) -> tuple[str, str]:
        rng = self.rng
        if kind == "original":
            trade = [t for t in sub.trade_names if t not in used]
            name = trade[0] if trade else _invented_brand(rng)
            used.add(name)
            return name, rng.choice(V.ORIGINATORS)
        if kind == "parallel":
            original = next(b for b in existing if b.kind == "original")
            return original.varenavn, rng.choice(V.PARALLEL_IMPORTERS)
        if kind == "hospital":
            base = sub.name if rng.random() < 0.7 else sub.english
            return f"{base} {rng.choice(('SA', 'NAF', 'Sykehusapotekene'))}", rng.choice(V.HOSPITAL_MAKERS)
        free = [m for m in V.GENERIC_MAKERS if m[0] not in used]
        short, produsent = rng.choice(free) if free else rng.choice(V.GENERIC_MAKERS)
        used.add(short)
        base = sub.english if rng.random() < 0.5 and not sub.is_combination else sub.name
        if sub.is_combination and rng.random() < 0.6 and sub.trade_names:
            base = _invented_brand(rng)
            return base, produsent
        return f"{base.split(',')[0]} {short}", produsent

    def _new_brand(
        self,
        sub: Substance,
        form: V.Form,
        form_long: str,
        strengths: tuple[Strength, ...],
        varenavn: str,
        produsent: str,
        kind: str,
    ) -> Brand:
        rng = self.rng
        oppf, tid = self.oppf()
        display = "/".join(s.display for s in strengths)
        navn = f"{varenavn} {form.abbrev} {display}"
        preparattype = "7"
        if kind == "hospital":
            preparattype = "15" if "NAF" not in varenavn else "9"
        elif sub.atc.startswith("J07"):
            preparattype = "6"
        elif rng.random() < 0.012:
            preparattype = "11"
        market = self.date_between(date(1990, 1, 1), self.hentet - timedelta(days=45))
        brand = Brand(
            oppf,
            tid,
            self.ids.new(),
            sub,
            form,
            form_long,
            strengths,
            varenavn,
            navn,
            produsent,
            kind,
            preparattype,
            self._admin(sub, form),
            market,
        )
        brand.vms = self.vms_for(sub, strengths, len(self.brands) / self.counts["LegemiddelMerkevare"])
        brand.black_triangle = rng.random() < 0.06
        brand.has_atc = kind != "hospital" or rng.random() < 0.3
        if rng.random() < 0.41:
            if rng.random() < 0.5:
                brand.spc = (
                    "https://www.legemiddelsok.no/_layouts/15/Preparatomtaler/Spc/"
                    f"{rng.randrange(95, 125) % 100:02d}-{rng.randrange(1000, 99999):05d}.pdf"
                )
            else:
                brand.spc = (
                    "https://produktinformasjon.legemiddelsok.no/?mtnr="
                    f"{rng.randrange(5, 25):02d}-{rng.randrange(1000, 99999):05d}&type=spc&lang=no"
                )
        if rng.random() < 0.15:
            brand.hjelpestoff = tuple(rng.sample(V.HJELPESTOFFER, rng.randint(1, 2)))
        if kind == "generic" and rng.random() < 0.6 and sub.trade_names:
            brand.referanse = sub.trade_names[0]
        if form.key in ("mikst", "pulvmikst", "granmikst", "tyggetab", "smeltetab") and rng.random() < 0.5:
            brand.smak = rng.choice(V.SMAK)
        if rng.random() < 0.04:
            brand.vilkar = rng.sample(self.vilkar_of("1"), 1)
        base_price = _unit_price(sub)
        factor = 1.0 if kind in ("original", "parallel") else rng.uniform(0.25, 0.85)
        strength_factor = 1 + 0.2 * math.log1p(strengths[0].value)  # higher strengths cost a bit more
        brand.price_per_unit = base_price * factor * strength_factor
        if preparattype != "15" and sub.reseptgruppe != "F" and _reimbursed(sub):
            brand.refgroup = self.refgroup_for(sub, form)
            if brand.refgroup is not None:
                brand.refusjon_fra = max(brand.refgroup.fra, market)
        self.brands.append(brand)
        return brand

    def _admin(self, sub: Substance, form: V.Form) -> Node:
        rng = self.rng
        children: list[Node] = []
        routes = list(form.routes[:1]) if rng.random() < 0.8 else list(form.routes[:2])
        for route in routes:
            children.append(cv("Administrasjonsvei", route, V.OID_ROUTE, V.ROUTES[route]))
        if form.solid and form.key not in _NOT_CRUSHABLE_FORMS:
            children.append(cs("KanKnuses", form.crushable, V.YES_NO_UNKNOWN[form.crushable]))
            if form.key in ("kaps", "enterokaps", "depotkaps"):
                apnes = rng.choice(("1", "2", "9"))
                children.append(cs("KanApnes", apnes, V.YES_NO_UNKNOWN[apnes]))
        if form.key in ("inj", "pulvinj", "infkons") and rng.random() < 0.4:
            children.append(cs("Bolus", "0", "Skal ikke gis som bolus"))
        if form.key in ("tab", "depottab", "brusetab") and rng.random() < 0.7:
            deling = rng.choice(("0", "1", "2", "2", "4"))
            children.append(cs("Deling", deling, V.DELING[deling]))
        children.append(cv("EnhetDosering", form.dose_unit, V.OID_DOSE_UNIT, V.DOSE_UNITS[form.dose_unit]))
        if rng.random() < 0.45:
            for code in rng.sample(_kortdoser_for(form), rng.randint(1, 2)):
                children.append(cv("Kortdose", code, V.OID_KORTDOSE, V.KORTDOSER[code]))
        if form.routes[0] == "53" and rng.random() < 0.4:
            for code in rng.sample(sorted(V.PRECAUTIONS), rng.randint(1, 2)):
                children.append(cv("ForhandsregelInntak", code, V.OID_PRECAUTION, V.PRECAUTIONS[code]))
        labels = _labels_for(sub.atc)
        if labels and rng.random() < 0.6:
            for code in rng.sample(labels, min(len(labels), rng.randint(1, 3))):
                children.append(cv("BruksomradeEtikett", code, V.OID_LABEL, V.LABELS[code]))
        return elem("AdministreringLegemiddel", children)

    # -- reimbursement -----------------------------------------------------------------------

    def refgroup_for(self, sub: Substance, form: V.Form) -> RefGroup | None:
        """The Refusjonsgruppe of a substance for this kind of form, made on first use."""
        route_class = (
            "topisk"
            if form.routes[0] in ("8", "48", "46")
            else ("parenteral" if form.routes[0] in ("43", "62", "33") else "oral")
        )
        key = (sub.atc, route_class)
        group = self.refgroups.get(key)
        if group is None and len(self.refusjon) >= self._product_refusjon_budget:
            # small deliveries: keep KatRefusjon near its scaled size by sharing or not reimbursing
            return next((g for k, g in self.refgroups.items() if k[0] == sub.atc), None)
        if group is None:
            number = 1 + sum(1 for k in self.refgroups if k[0] == sub.atc)
            dn = f"{sub.atc}_{number}" if self.rng.random() < 0.7 else form.short
            group = self._new_refgroup(
                f"{sub.atc}_{number}", dn, (sub.atc, sub.name), _conditions_for(sub.atc)
            )
            self.refgroups[key] = group
            hjemmel = "950" if sub.atc.startswith(("L01F", "L04AB", "L04AC")) else "200"
            self._add_refusjon(hjemmel, [group])
        return group

    def _new_refgroup(
        self, gruppenr: str, dn: str, atc: tuple[str, str] | None, conditions: list[str]
    ) -> RefGroup:
        rng = self.rng
        if atc is not None and rng.random() < 0.6:
            extra = [k for k in rng.sample(sorted(V.CONDITIONS), 5) if k not in conditions]
            conditions = conditions + extra[: rng.randint(2, 5)]
        krever = bool(conditions) and rng.random() < 0.85
        bruk = None
        if conditions and rng.random() < 0.8:
            texts = [V.CONDITIONS[c][1] for c in conditions]
            bruk = _bruk_text(rng, texts)
        vilkar = rng.sample(self.vilkar_of("3"), 1) if rng.random() < 0.25 else []
        special = rng.sample(V.SPECIAL_REFUND_CODES, 1) if krever and rng.random() < 0.2 else []
        fra = date(2008, 1, 17) if rng.random() < 0.4 else self.date_between(date(2008, 2, 1), self.hentet)
        pool = self.vilkar_of("3")
        code_vilkar = rng.sample(pool, min(len(pool), rng.randint(1, 2))) if rng.random() < 0.6 else []
        return RefGroup(
            self.ids.new(),
            gruppenr,
            dn,
            atc,
            krever,
            bruk,
            vilkar,
            conditions if krever else [],
            special,
            first_of_month(fra) if fra.day > 28 else fra,
            code_vilkar,
        )

    def _add_refusjon(self, hjemmel: str, groups: list[RefGroup]) -> None:
        oppf, tid = self.oppf()
        self.refusjon.append(
            Refusjon(oppf, tid, hjemmel, hjemmel in ("200", "950", "400"), hjemmel == "300", groups)
        )

    def _pad_refusjon(self) -> None:
        """Fill KatRefusjon with groups for substances that have no products here."""
        target = self.counts["Refusjon"]
        pool = [s for s in self.synthetic if s.atc]
        i = 0
        while len(self.refusjon) < target and i < len(pool):
            syn = pool[i]
            i += 1
            group = self._new_refgroup(
                f"{syn.atc}_1", f"{syn.atc}_1", (syn.atc, syn.name), _conditions_for(syn.atc)
            )
            self.extra_atc[syn.atc] = syn.name
            self._add_refusjon("200", [group])
            vk = self.virkestoff_named(syn.name, syn.english)
            if self.rng.random() < 0.5:
                vk.refusjon.append(group)

    # -- packages, groups --------------------------------------------------------------------

    def _build_packages(self) -> None:
        rng = self.rng
        target = self.counts["Legemiddelpakning"]
        for brand in self.brands:
            if len(self.packages) >= target:
                break
            self._new_package(brand)
        weights = [1 + (b.kind == "generic") + (b.sub.popularity > 3) for b in self.brands]
        guard = 0
        while len(self.packages) < target and guard < target * 5:
            guard += 1
            brand = rng.choices(self.brands, weights)[0]
            if len(brand.packages) >= len(brand.form.pack_sizes) + 1:
                continue
            self._new_package(brand)
        # a few starter packs carry two strengths of the same line
        for pkg in rng.sample(self.packages, len(self.packages) // 150):
            siblings = [b for b in self.brands_by_line(pkg.brand) if b is not pkg.brand]
            if siblings:
                pkg.extra.append(rng.choice(siblings))

    def brands_by_line(self, brand: Brand) -> list[Brand]:
        key = (brand.sub.atc, brand.form.key, brand.varenavn)
        index = self._line_index
        if index is None:
            index = {}
            for b in self.brands:
                index.setdefault((b.sub.atc, b.form.key, b.varenavn), []).append(b)
            self._line_index = index
        return index[key]

    def _new_package(self, brand: Brand) -> Package:
        rng = self.rng
        form = brand.form
        taken = {p.size for p in brand.packages}
        sizes = [s for s in form.pack_sizes if s not in taken] or list(form.pack_sizes)
        size = float(rng.choice(sizes))
        multiple = 1
        if form.key in ("inj", "infkons"):
            multiple = rng.choice((1, 1, 5, 10))
        pack_type = form.pack_types[0] if rng.random() < 0.6 else rng.choice(form.pack_types)
        units = size * multiple
        aip = max(12.0, brand.price_per_unit * (units if form.solid else units / 10) * rng.uniform(0.8, 1.2))
        if brand.sub.atc.startswith(("L01F", "L04AB", "L04AC", "L01E", "J05A", "B01AF", "N06BA12")):
            aip *= rng.uniform(20, 120)
        market = self.date_between(brand.market, max(brand.market, self.hentet - timedelta(days=20)))
        price_from = first_of_month(self.date_between(self.hentet - timedelta(days=1000), self.hentet))
        oppf, tid = self.oppf()
        varenr = self.number6()
        eans: tuple[str, ...] = () if rng.random() < 0.03 else (self.ean_for(varenr),)
        if rng.random() < 0.01:
            eans = eans + (self.ean_for(self.number6()),)
        pkg = Package(
            oppf, tid, self.ids.new(), brand, varenr, eans, size, multiple, pack_type, aip, market, price_from
        )
        if rng.random() < 0.02:
            pkg.unavailable = self.date_between(self.hentet - timedelta(days=200), self.hentet)
        if rng.random() < 0.03:
            pkg.replaces = f"{rng.randrange(1, 600000):06d}"
        if rng.random() < 0.25:
            pkg.next_aip = aip * rng.uniform(0.8, 1.06)
            pkg.next_from = first_of_month(self.hentet + timedelta(days=rng.randrange(20, 60)))
        brand.packages.append(pkg)
        self.packages.append(pkg)
        return pkg

    def _build_byttegrupper(self) -> None:
        rng = self.rng
        target = self.counts["Byttegruppe"]
        groups: dict[GroupKey, list[Brand]] = {}
        for brand in self.brands:
            if brand.packages and brand.preparattype != "15":
                groups.setdefault(_group_key(brand), []).append(brand)
        keys = list(groups)
        rng.shuffle(keys)
        keys.sort(key=lambda k: -min(len(groups[k]), 3))
        code = rng.randrange(80, 400)
        for key in keys[:target]:
            brands = groups[key]
            first = brands[0]
            code += rng.randint(1, 3)
            oppf, tid = self.oppf()
            name = first.sub.name.upper()
            dn = f"{name} {first.form.bytte} {'/'.join(_bytte_strength(s) for s in first.strengths)}"
            merknad = (
                first.sub.atc.startswith(("N03", "H03AA", "L04AD", "B01AA", "R03")) and rng.random() < 0.8
            )
            beskrivelse = None
            if merknad:
                beskrivelse = rng.choice(
                    (
                        "Bytte bør ikke skje for pasienter som er stabilt innstilt på ett preparat.",
                        "Ved bytte må pasienten få opplæring i bruk av ny inhalator.",
                        "Pasienter med epilepsi bør ikke byttes mellom preparater uten at lege er konsultert.",
                    )
                )
            fra = self.date_between(date(2008, 1, 17), self.hentet - timedelta(days=10))
            group = Byttegruppe(oppf, tid, self.ids.new(), f"{code:06d}", dn, merknad, beskrivelse, fra)
            self.byttegrupper.append(group)
            # not every pack size is substitutable: about 45 % of packages sit in a group (FAR: 43 %)
            packages = [p for b in brands for p in b.packages]
            members = [p for p in packages if rng.random() < 0.45] or packages[:1]
            for pkg in members:
                pkg.bytte = group
                pkg.bytte_fra = max(fra, pkg.market)
                if rng.random() < 0.55 and len(brands) > 1:
                    pkg.trinnpris = aup(pkg.aip) * rng.uniform(0.15, 0.6)
        self._groups = groups

    def _build_lmv(self) -> None:
        target = self.counts["LegemiddelVirkestoff"]
        groups = self._groups
        bytte_of = {}
        for brand in self.brands:
            for pkg in brand.packages:
                if pkg.bytte is not None:
                    bytte_of[_group_key(brand)] = pkg.bytte
        keys = sorted(groups, key=lambda k: (k not in bytte_of, -len(groups[k])))
        for key in keys[:target]:
            brands = groups[key]
            first = brands[0]
            oppf, tid = self.oppf()
            self.lmv.append(
                Lmv(
                    oppf,
                    tid,
                    self.ids.new(),
                    first.sub,
                    first.form,
                    first.strengths,
                    brands,
                    bytte_of.get(key),
                )
            )

    def _build_doses(self) -> None:
        rng = self.rng
        target = self.counts["Legemiddeldose"]
        candidates = [b for b in self.brands if b.packages]
        order = list(candidates)
        rng.shuffle(order)
        lopenr = rng.randrange(10000, 20000)
        for brand in order[:target]:
            lopenr += rng.randint(1, 4)
            self._new_dose(brand, list(brand.packages), str(lopenr))
        extra = [b for b in candidates if len(b.packages) > 1]
        while len(self.doses) < target and extra:
            brand = extra.pop(rng.randrange(len(extra)))
            lopenr += rng.randint(1, 4)
            self._new_dose(brand, [rng.choice(brand.packages)], str(lopenr), "18")

    def _new_dose(
        self, brand: Brand, packages: list[Package], lopenr: str, pack_type: str | None = None
    ) -> None:
        oppf, tid = self.oppf()
        dose = Dose(oppf, tid, self.ids.new(), brand, packages, lopenr, pack_type or packages[0].pack_type)
        brand.doses.append(dose)
        self.doses.append(dose)

    def _build_ordinering(self) -> None:
        target = self.counts["OrdineringVirkestoff"]
        for lmv in self.lmv:
            if len(self.ordinering) >= target:
                break
            doses = [d for b in lmv.brands for d in b.doses]
            if doses:
                oppf, tid = self.oppf()
                self.ordinering.append(Ordinering(oppf, tid, self.ids.new(), lmv, doses[:12]))

    def _build_diagnoser(self) -> None:
        rng = self.rng
        keys = [k for k in V.CONDITIONS if k not in ("stomi", "inkont", "allergi")]
        rng.shuffle(keys)
        for key in keys[: self.counts["Diagnose"]]:
            lmvs = [lm for lm in self.lmv if key in _conditions_for(lm.sub.atc)]
            oppf, tid = self.oppf()
            self.diagnoser.append(Diagnose(oppf, tid, self.ids.new(), key, lmvs[:6]))

    def _build_varsler(self) -> None:
        rng = self.rng
        with_packages = [b for b in self.brands if b.packages]
        for _ in range(self.counts["VarselSlv"]):
            brand = rng.choice(with_packages)
            kind = rng.choice(("2", "2", "2", "1", "3", "4", "7"))
            r = rng.random()
            lmv = next((lm for lm in self.lmv if brand in lm.brands), None)
            if r < 0.6:
                klasse, refs = "2", [p.id for p in brand.packages]
            elif r < 0.85 or lmv is None:
                klasse, refs = "1", [b.id for b in self.brands_by_line(brand)]
            else:
                klasse, refs = "3", [lmv.id]
            oppf, tid = self.oppf()
            fra = self.date_between(self.hentet - timedelta(days=400), self.hentet)
            slug = brand.varenavn.lower().replace(" ", "-")
            link = rng.choice(
                (
                    f"https://www.dmp.no/nyheter/mangel-pa-{slug}",
                    f"https://www.dmp.no/legemiddelmangel/sok?q={slug}&type=mangel",
                    f"https://legemiddelverket.no/nyheter/{slug}",
                )
            )
            self.varsler.append(Varsel(oppf, tid, kind, brand, klasse, refs, fra, link))

    def _build_handelsvare(self) -> None:
        rng = self.rng
        groups: dict[str, RefGroup] = {}
        hjemmel_of = {"MedForbMatr": "400", "Naringsmiddel": "600", "Brystprotese": "300"}

        def group_for(kind: str, category: str) -> RefGroup | None:
            key = f"{kind}:{category}"
            if key not in groups and len(self.refusjon) >= self.counts["Refusjon"]:
                return next(iter(groups.values()), None)
            if key not in groups:
                number = f"{hjemmel_of[kind][0]}{len(groups) + 1:03d}"
                conditions = {
                    "Stomiutstyr": ["stomi"],
                    "Diabetesutstyr": ["dm1", "dm2"],
                    "Inkontinensutstyr": ["inkont"],
                    "Inhalasjonsutstyr": ["astma", "kols"],
                    "Brystprotese": ["bca"],
                    "Morsmelkerstatning": ["allergi"],
                    "Spesialnæring PKU": ["cf"],
                }.get(category, [])
                group = self._new_refgroup(number, category, None, conditions)
                groups[key] = group
                self._add_refusjon(hjemmel_of[kind], [group])
            return groups[key]

        for kind in ("Brystprotese", "MedForbMatr", "Naringsmiddel"):
            for _ in range(self.counts[kind]):
                oppf, tid = self.oppf()
                nr = self.number6()
                styrke = None
                volume = None
                if kind == "MedForbMatr":
                    category, templates, brands, unit = rng.choice(V.CONSUMABLES)
                    lo, hi = sorted((rng.randrange(4, 60), rng.randrange(5, 90)))
                    name = rng.choice(templates).format(brand=rng.choice(brands), lo=lo, hi=hi + 1)
                    per_pack = rng.choice((1, 5, 10, 20, 30, 50, 100))
                    price = rng.uniform(40, 2500)
                elif kind == "Naringsmiddel":
                    category, templates, brands, energy, form = rng.choice(V.NUTRITION)
                    vol = rng.choice((125, 200, 500, 1000))
                    name = rng.choice(templates).format(
                        brand=rng.choice(brands),
                        vol=vol,
                        g=rng.choice((400, 450, 800)),
                        taste=rng.choice(V.TASTES),
                    )
                    unit = "ml" if "ml" in name else "g"
                    volume = f"{vol} ml" if unit == "ml" else None
                    per_pack = rng.choice((1, 4, 12, 24))
                    price = rng.uniform(30, 900)
                    styrke = (energy, form, rng.sample(V.NUTRITION_STOFF, rng.randint(1, 3)))
                else:
                    category, unit = "Brystprotese", "stk"
                    name = (
                        f"Brystprotese {rng.choice(V.BREAST_PROSTHESES)} {rng.choice(V.BREAST_SHAPES)} "
                        f"str {rng.randint(1, 14)}"
                    )
                    per_pack = 1
                    price = rng.uniform(900, 4200)
                refgroup = group_for(kind, category) if rng.random() < 0.85 else None
                vilkar = rng.sample(self.vilkar_of("2"), 1) if rng.random() < 0.1 else []
                self.varer.append(
                    Vare(
                        oppf,
                        tid,
                        kind,
                        nr,
                        name,
                        f"{rng.randrange(1000, 999999)}",
                        volume,
                        unit,
                        per_pack,
                        rng.choice(V.SUPPLIERS),
                        price,
                        refgroup,
                        vilkar,
                        category,
                        styrke,
                    )
                )

    def _pad_virkestoff(self) -> None:
        """Virkestoff without products here: salts, herbal and allergen substances, invented INNs."""
        rng = self.rng
        target = self.counts["Virkestoff"]
        for plant, english in V.PLANTS[:3]:  # St John's wort is needed by the interactions
            self.virkestoff_named(plant, english)
        parents = [v for v in list(self.virkestoff) if not v.salts and " " not in v.name]
        rng.shuffle(parents)
        for parent in parents:
            if len(self.virkestoff) >= target:
                return
            if rng.random() < 0.5:
                self._add_salts(parent, 1)
        herbal = [(p + part, e + ep) for p, e in V.PLANTS for part, ep in V.PLANT_PARTS]
        herbal += [(f + a, fe + ae) for a, ae in V.ALLERGENS for f, fe in V.ALLERGEN_FORMS]
        rng.shuffle(herbal)
        synthetic = list(self.synthetic)
        while len(self.virkestoff) < target and (herbal or synthetic):
            if herbal and (rng.random() < 0.08 or not synthetic):
                name, english = herbal.pop()
                self.virkestoff_named(name, english)
            else:
                syn = synthetic.pop()
                self.virkestoff_named(syn.name, syn.english)
        counter = 0
        while len(self.virkestoff) < target:  # only at odd scales: more salts of invented ones
            counter += 1
            parent = rng.choice(self.virkestoff)
            if self._add_salts(parent, 1) == 0 and counter > target * 10:
                break

    def _pad_vms(self) -> None:
        """Strengths not used by any brand here (old strengths, hospital-only ones)."""
        rng = self.rng
        target = self.counts["VirkestoffMedStyrke"]
        parents = [v for v in self.virkestoff if v.name in {s.name for s in SUBSTANCES}]
        while len(self.vms) < target and parents:
            vk = rng.choice(parents)
            value = rng.choice(
                (
                    0.5,
                    1,
                    2,
                    2.5,
                    5,
                    7.5,
                    10,
                    12.5,
                    15,
                    20,
                    25,
                    30,
                    40,
                    50,
                    60,
                    75,
                    80,
                    100,
                    120,
                    150,
                    200,
                    250,
                    300,
                    400,
                    500,
                    600,
                    750,
                    1000,
                )
            )
            unit = rng.choice(("mg", "mg", "mg", "mikrog", "g"))
            per = rng.random() < 0.2
            strength = Strength(float(value), unit, 1.0 if per else None, "ml" if per else None)
            oppf, tid = self.oppf()
            vms = Vms(oppf, tid, self.ids.new(), strength, vk, None)
            self.vms.append(vms)

    # -- interactions ------------------------------------------------------------------------

    def interaction_groups(self) -> list[IGroup]:
        # DMP's interaction base covers real substances; a few derived ones join for variety
        singles = [s for s in SUBSTANCES if not s.is_combination and s in INTERACTING]
        combos = [s for s in SUBSTANCES if s.is_combination]
        groups: list[IGroup] = []
        seen: set[str] = set()
        for sub in singles:
            if sub.name in seen:
                continue
            seen.add(sub.name)
            vk = self.virkestoff_by_name.get(sub.name)
            members: list[tuple[str, str | None, list[str]]] = [(sub.name, sub.atc, [])]
            if vk is not None and self.rng.random() < 0.4:
                # linked to Virkestoff; salts and esters listed by Virkestoff alone, without ATC
                members = [(sub.name, sub.atc, [vk.id])] + [(salt.name, None, [salt.id]) for salt in vk.salts]
            for other in singles:
                if other.name == sub.name and other.atc != sub.atc:
                    members.append((other.name, other.atc, []))
            for combo in combos:
                if sub.atc in combo.components:
                    members.append((combo.name, combo.atc, []))
            tags = frozenset().union(*(s.tags for s in SUBSTANCES if s.name == sub.name))
            name = sub.name if len(members) > 1 and self.rng.random() < 0.7 else None
            groups.append(IGroup(name, members, tags, sub.atc))
        for prefix, class_name in V.CLASS_NAMES.items():
            members_subs = [s for s in singles if s.atc.startswith(prefix)]
            if len(members_subs) >= 2:
                tags = frozenset.intersection(*(s.tags for s in members_subs)) | (
                    frozenset(("ser",)) if prefix == "N06AB" else frozenset()
                )
                groups.append(IGroup(class_name, [(s.name, s.atc, []) for s in members_subs], tags, prefix))
        vk = self.virkestoff_named("Johannesurt", "St. John's wort")
        groups.append(
            IGroup("Johannesurt", [("Johannesurt", None, [vk.id])], frozenset(("ind", "ser")), None)
        )
        return groups

    def _build_interaksjoner(self) -> None:
        from .emit import RULES  # the texts live with the emitter

        rng = self.rng
        groups = self.interaction_groups()
        target = self.counts["Interaksjon"]
        names = [frozenset(m[0] for m in g.members) for g in groups]
        by_tag: dict[str, list[int]] = {}
        for i, g in enumerate(groups):
            for tag in sorted(g.tags):
                by_tag.setdefault(tag, []).append(i)
        assigned: dict[tuple[int, int], int] = {}
        for index, rule in enumerate(RULES):
            left = sorted({i for t in rule.a for i in by_tag.get(t, ())})
            right = sorted({i for t in rule.b for i in by_tag.get(t, ())})
            for i in left:
                for j in right:
                    key = (i, j) if i < j else (j, i)
                    if i != j and key not in assigned and not names[i] & names[j]:
                        assigned[key] = index
        matched = list(assigned.items())
        rng.shuffle(matched)
        chosen = matched[: int(target * 0.85)]
        taken = {key for key, _ in chosen}
        attempts = 0
        while len(chosen) < target and attempts < target * 50:
            attempts += 1
            i, j = sorted(rng.sample(range(len(groups)), 2))
            if (i, j) in taken or (i, j) in assigned or names[i] & names[j]:
                continue
            taken.add((i, j))
            chosen.append(((i, j), -1))
        for (i, j), rule_index in chosen[:target]:
            a, b = (groups[i], groups[j]) if rng.random() < 0.5 else (groups[j], groups[i])
            oppf, tid = self.oppf()
            self.interaksjoner.append(Interaksjon(oppf, tid, self.ids.new(), a, b, rule_index))
        pool = [s for s in self.synthetic if s.atc]
        rng.shuffle(pool)
        for syn in pool[: self.counts["InteraksjonIkkeVurdert"]]:
            oppf, tid = self.oppf()
            self.extra_atc[syn.atc] = syn.name
            self.ikke_vurdert.append(IkkeVurdert(oppf, tid, syn.atc, syn.name))

    # -- code lists --------------------------------------------------------------------------

    def _build_kodeverk(self) -> None:
        lists: list[tuple[str, str, str, dict[str, str]]] = [
            (V.OID_ATC, "ATC-klassifikasjon", "ATC", {}),
            (V.OID_FORM, "Legemiddelform", "Legemiddelform", {f.code: f.short for f in V.FORMS.values()}),
            (V.OID_PACK_UNIT, "Enhet for pakningsstørrelse", "Enhet pakning", V.PACK_UNITS),
            (V.OID_PACK_TYPE, "Pakningstype", "Pakningstype", V.PACK_TYPES),
            (V.OID_PRICE_TYPE, "Pristype legemiddel", "Pristype", V.PRICE_TYPES),
            (V.OID_ROUTE, "Administrasjonsvei", "Adm.vei", V.ROUTES),
            (V.OID_KORTDOSE, "Kortdose", "Kortdose", V.KORTDOSER | {k.code: k.text for k in self.kortdoser}),
            (V.OID_PRECAUTION, "Forholdsregel ved inntak", "Forholdsregel", V.PRECAUTIONS),
            (V.OID_DOSE_UNIT, "Enhet for dosering", "Enhet dosering", V.DOSE_UNITS),
            (V.OID_LABEL, "Bruksområde etikett", "Bruksområde", V.LABELS),
            (V.OID_DISPLAY_RULE, "Visningsregel", "Visningsregel", V.DISPLAY_RULES),
            (V.OID_STRENGTH_OPERATOR, "Styrkeoperator", "Styrkeoperator", V.STRENGTH_OPERATORS),
            (V.OID_REFUND_BASIS, "Refusjonshjemmel", "Refusjonshjemmel", V.REFUND_BASES),
            (V.OID_ICD10, "ICD-10", "ICD-10", {c[0]: c[1] for c in V.CONDITIONS.values()}),
            (V.OID_ICPC2, "ICPC-2", "ICPC-2", {c[2]: c[3] for c in V.CONDITIONS.values()}),
            (
                V.OID_REFUND_CODE,
                "Refusjonskode",
                "Refusjonskode",
                {c[0]: c[2] for c in V.SPECIAL_REFUND_CODES},
            ),
            (
                V.OID_REFUND_CODE_ICPC_LIKE,
                "Refusjonskode ICPC",
                "Refusjonskode ICPC",
                {c[1]: c[2] for c in V.SPECIAL_REFUND_CODES},
            ),
            (V.OID_CONDITION_GROUP, "Vilkårsgruppe", "Vilkårsgruppe", V.CONDITION_GROUPS),
            (
                V.OID_STRUCTURED_CONDITION,
                "Type strukturert vilkår",
                "Strukturert vilkår",
                V.STRUCTURED_CONDITIONS,
            ),
            (V.OID_NOTICE_TYPE, "Type varsel fra SLV", "Varseltype", V.NOTICE_TYPES),
            (V.OID_SPECIALITY, "Spesialitet", "Spesialitet", V.SPECIALITIES),
            (V.OID_VACCINE_STANDARD, "Vaksinestandard", "Vaksinestandard", V.VACCINE_STANDARDS),
            (V.OID_BLACK_TRIANGLE, "Svart trekant", "Svart trekant", V.BLACK_TRIANGLE),
            (V.OID_PRICE_TYPE_VARE, "Pristype handelsvare", "Pristype vare", V.PRICE_TYPES_VARE),
            (V.OID_YES_NO, "Ja/nei", "Ja/nei", V.YES_NO),
        ]
        for oid, name, short, values in lists[: self.counts["Kodeverk"]]:
            oppf, tid = self.oppf()
            publisher = (
                "Direktoratet for medisinske produkter"
                if oid not in (V.OID_ICD10, V.OID_ICPC2)
                else ("Direktoratet for e-helse")
            )
            if oid == V.OID_ATC:
                elements = self._atc_elements()
            elif oid == V.OID_ICD10:
                elements = self._icd_elements(values)
            else:
                elements = [(self.ids.new(), None, k, v) for k, v in values.items()]
            self.kodeverk.append(Kodeverk(oppf, tid, oid, name, short, publisher, elements))

    def _atc_elements(self) -> list[tuple[str, str | None, str, str]]:
        """The ATC hierarchy down to every code used in this delivery, children after parents."""
        names = {s.atc: s.name for s in SUBSTANCES} | self.extra_atc
        level_names = {
            "A": "Fordøyelsesorganer og stoffskifte",
            "B": "Blod og bloddannende organer",
            "C": "Hjerte og kretsløp",
            "D": "Dermatologiske midler",
            "G": "Urogenitalsystem og kjønnshormoner",
            "H": "Hormoner til systemisk bruk",
            "J": "Antiinfektiva til systemisk bruk",
            "L": "Antineoplastiske og immunmodulerende midler",
            "M": "Muskler og skjelett",
            "N": "Nervesystemet",
            "P": "Antiparasittære midler",
            "R": "Respirasjonsorganer",
            "S": "Sanseorganer",
            "V": "Varia",
        }
        ids: dict[str, str] = {}
        out: list[tuple[str, str | None, str, str]] = []
        for code in sorted(names):
            for cut in (1, 3, 4, 5, 7):
                part = code[:cut]
                if part in ids:
                    continue
                ids[part] = self.ids.new()
                parent = None
                for up in (5, 4, 3, 1):
                    if up < cut and code[:up] in ids:
                        parent = ids[code[:up]]
                        break
                term = (
                    names.get(part)
                    or V.CLASS_NAMES.get(part)
                    or level_names.get(part)
                    or f"ATC-gruppe {part}"
                )
                out.append((ids[part], parent, part, term))
        return out

    def _icd_elements(self, values: dict[str, str]) -> list[tuple[str, str | None, str, str]]:
        chapters: dict[str, str] = {}
        out: list[tuple[str, str | None, str, str]] = []
        for code, text in sorted(values.items()):
            letter = code[0]
            if letter not in chapters:
                chapters[letter] = self.ids.new()
                out.append((chapters[letter], None, letter, f"Kapittel {letter}"))
            out.append((self.ids.new(), chapters[letter], code, text))
        return out

    def _build_kortdoser(self) -> None:
        rng = self.rng
        codes = dict(V.KORTDOSER)
        next_code = 5500
        patterns = []
        for a in ("0", "0,5", "1", "2"):
            for b in ("0", "0,5", "1", "2"):
                for c in ("0", "0,5", "1", "2"):
                    if a + b + c != "000":
                        patterns.append(f"{a}+{b}+{c}")
        for n in (1, 2, 3, 4):
            for times in (1, 2, 3, 4):
                patterns.append(f"{n}x{times}")
                patterns.append(f"{n} inntil x{times} ved behov")
            patterns.append(f"{n} ukentlig")
        rng.shuffle(patterns)
        known = set(codes.values())
        for pattern in patterns:
            if len(codes) >= self.counts["StrDosering"]:
                break
            if pattern in known:
                continue
            next_code += rng.randint(1, 9)
            codes[str(next_code)] = pattern
        for code, text in list(codes.items())[: self.counts["StrDosering"]]:
            oppf, tid = self.oppf()
            self.kortdoser.append(Kortdose(oppf, tid, code, text))


_NOT_CRUSHABLE_FORMS = frozenset(("plaster", "stikkp", "tyggegummi", "injsusp", "pulvinj", "rektalv"))


# -- module helpers ------------------------------------------------------------------------------


def _english_inn(head: str) -> str:
    return head.replace("ks", "x").replace("k", "c")


def _invented_brand(rng: random.Random) -> str:
    return rng.choice(V.BRAND_HEADS) + rng.choice(V.BRAND_TAILS)


def _unit_price(sub: Substance) -> float:
    """A stable per-unit AIP for a substance, from its ATC code (same for every seed)."""
    r = random.Random(sub.atc)
    return math.exp(r.gauss(0.6, 1.1))


def _reimbursed(sub: Substance) -> bool:
    return random.Random("refusjon:" + sub.atc).random() < 0.8


def aup(aip: float) -> float:
    """Maximum pharmacy retail price from AIP: mark-up, fixed fee and VAT, to one decimal."""
    return round((aip * 1.06 + 24.0) * 1.25, 1)


def _group_key(brand: Brand) -> GroupKey:
    return (brand.sub.atc, brand.form.key, tuple(brand.strengths))


def _bytte_strength(s: Strength) -> str:
    unit = {"mikrog": "MCG", "mg": "MG", "g": "G", "E": "E", "IE": "IE", "ml": "ML"}.get(
        s.unit, s.unit.upper()
    )
    text = fmt_number(s.value).replace(".", ",") + unit
    if s.per_unit:
        per_unit = {"timer": "T", "time": "T", "dose": "DOSE", "ml": "ML", "g": "G"}.get(
            s.per_unit, s.per_unit.upper()
        )
        per = "" if s.per_value == 1 else fmt_number(s.per_value or 1).replace(".", ",")
        text += f"/{per}{per_unit}"
    return text


def _labels_for(atc: str) -> list[str]:
    best = ""
    for prefix in V.LABELS_BY_ATC:
        if atc.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return list(V.LABELS_BY_ATC[best]) if best else []


def _conditions_for(atc: str) -> list[str]:
    best = ""
    for prefix in V.CONDITIONS_BY_ATC:
        if atc.startswith(prefix) and len(prefix) > len(best):
            best = prefix
    return list(V.CONDITIONS_BY_ATC[best]) if best else []


def _kortdoser_for(form: V.Form) -> list[str]:
    if form.key in ("krem", "salve", "gel"):
        return ["108", "145", "169", "210"]
    if form.key == "plaster":
        return ["359", "5378"]
    if not form.solid or form.key in ("inj", "infkons", "pulvinj", "injsusp"):
        return ["5378", "93", "266"]
    return ["93", "130", "216", "195", "379", "217", "201", "21", "2", "160", "275", "215", "234", "90"]


def _bruk_text(rng: random.Random, texts: list[str]) -> str:
    first = texts[0][0].lower() + texts[0][1:]
    options = (
        f"Behandling av {first}.",
        f"Behandling av {first} hos pasienter som ikke har tilstrekkelig effekt av rimeligere alternativer.",
        f"Langtidsbehandling av {first} når behandlingen er forventet å vare mer enn tre måneder.",
        f"Forebygging og behandling av {first}.",
    )
    return rng.choice(options)


def _overlap(a: IGroup, b: IGroup) -> bool:
    names_a = {m[0] for m in a.members}
    return any(m[0] in names_a for m in b.members)
