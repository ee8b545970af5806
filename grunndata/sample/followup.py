"""Derive the next FEST delivery, 14 days later, from a delivery made by `generate_delivery`.

Two streaming passes over the base with `grunndata.m30.FestReader`, the one FEST reader: the
first records each entry's Ids and Ref*s, which is enough to choose what expires without leaving
a dangling reference, what changes and what new entries copy; the second rewrites the entries in
order and appends the new ones at the end of their catalogue. Where a change inserts an element,
`m30.child_order` gives the XSD's order from the schema data.
"""

from __future__ import annotations

import copy
import random
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

from grunndata.m30 import (
    IDREF_ELEMENTS,
    FestEntry,
    FestReader,
    Node,
    catalogues,
    child_order,
    open_delivery,
    write_delivery,
)

from . import vocab as V
from .generate import counted
from .util import (
    IdFactory,
    batch_timestamp,
    cv,
    ean13,
    elem,
    find,
    find_all,
    first_of_month,
    fmt_price,
    leaf,
    parse_hentet_dato,
    pq,
    random_date,
    shift_hentet_dato,
    walk,
)

NEW_RATE = 0.01
CHANGE_RATE = 0.02
EXPIRE_RATE = 0.005
MAX_CASCADE = 8  # entries that may expire together with one chosen entry
DAYS_BETWEEN = 14

# (parent, Ref element) -> minOccurs, for references a referrer can lose when their target
# expires (the referrer is then re-listed without them). Others make the referrer expire too.
DROPPABLE: dict[tuple[str, str], int] = {
    ("LegemiddelVirkestoff", "RefPakning"): 0,
    ("LegemiddelVirkestoff", "RefLegemiddelMerkevare"): 0,
    ("Legemiddeldose", "RefPakning"): 1,
    ("Referanseelement", "RefElement"): 1,
    ("OrdineringVirkestoff", "RefLegemiddelDose"): 1,
    ("OrdineringVirkestoff", "RefByttegruppe"): 0,
    ("Legemiddelforslag", "RefLegemiddelVirkestoff"): 0,
    ("Legemiddelforslag", "RefLegemiddelMerkevare"): 0,
    ("Substans", "RefVirkestoff"): 0,
    ("Virkestoff", "RefVirkestoff"): 0,
}


@dataclass(slots=True)
class _Info:
    """What pass one keeps of an entry: enough to plan without holding its content."""

    cat: str
    kind: str | None
    oppf: str
    inner: str | None  # the payload's own Id (FestEntry.inner_id); None where it has none
    ids: tuple[str, ...]
    refs: tuple[tuple[str, str, tuple[str, ...]], ...]  # (parent, Ref element, values) per parent


@dataclass(slots=True)
class _Scan:
    hentet: str = ""
    infos: list[_Info] = field(default_factory=list)
    numbers: set[str] = field(default_factory=set)  # Varenr and Handelsvare Nr
    eans: set[str] = field(default_factory=set)
    all_ids: set[str] = field(default_factory=set)
    max_lopenr: int = 0
    max_vilkarnr: int = 0


def _scan(path: Path) -> _Scan:
    scan = _Scan()
    reader = FestReader(path)
    for entry, _ in reader.entries():
        scan.all_ids.add(entry.oppf_id)
        if entry.status != "A":
            continue
        ids: list[str] = []
        refs: list[tuple[str, str, tuple[str, ...]]] = []
        stack = list(entry.payload)
        while stack:
            e = stack.pop()
            here: dict[str, list[str]] = {}
            for c in e[3] or ():
                cname, text = c[0], c[2] or ""
                if cname in IDREF_ELEMENTS:
                    here.setdefault(cname, []).append(text)
                elif cname == "Id":
                    if e[0] != "Info":
                        ids.append(text)
                elif c[3]:
                    stack.append(c)
                elif cname in ("Varenr", "Nr"):
                    scan.numbers.add(text)
                elif cname == "Ean":
                    scan.eans.add(text)
                elif cname == "LmrLopenr" and text.isdigit():
                    scan.max_lopenr = max(scan.max_lopenr, int(text))
                elif cname == "VilkarNr" and text.isdigit():
                    scan.max_vilkarnr = max(scan.max_vilkarnr, int(text))
            refs.extend((e[0], name, tuple(values)) for name, values in here.items())
        scan.all_ids.update(ids)
        scan.infos.append(
            _Info(entry.catalogue, entry.kind, entry.oppf_id, entry.inner_id, tuple(ids), tuple(refs))
        )
    scan.hentet = (reader.hentet_dato or "").strip()
    return scan


@dataclass(slots=True)
class _NewBrand:
    template: int
    id: str
    vms: dict[str, str]  # template VMS id -> new VMS id
    packages: dict[int, str]  # template package index -> new package id
    doses: list[int]
    maker: tuple[str, str]
    market: date
    varenavn: str = ""
    navn: str = ""
    old_navn: str = ""
    old_varenavn: str = ""


class _Plan:
    """Which entries expire, change, or serve as templates for new ones, all decided up front."""

    def __init__(self, scan: _Scan, rng: random.Random, base_day: date, new_day: date) -> None:
        self.scan = scan
        self.rng = rng
        self.base_day = base_day
        self.new_day = new_day
        self.ids = IdFactory(rng, set(scan.all_ids))
        infos = scan.infos
        self.owner: dict[str, int] = {}
        for i, info in enumerate(infos):
            for x in info.ids:
                self.owner[x] = i
        self.referrers: dict[str, list[int]] = {}
        for i, info in enumerate(infos):
            own = set(info.ids)
            for _, _, values in info.refs:
                for v in values:
                    if v not in own:
                        self.referrers.setdefault(v, []).append(i)
        self.by_cat: dict[str, list[int]] = {c.name: [] for c in catalogues()}
        for i, info in enumerate(infos):
            self.by_cat[info.cat].append(i)
        self.expired: set[int] = set()
        self.expired_ids: set[str] = set()
        self.drops: set[int] = set()  # re-listed without references to expired entries
        self.changed: set[int] = set()
        self.new_brands: list[_NewBrand] = []
        self.clones: dict[str, list[tuple[int, ...]]] = {}
        self.templates: set[int] = set()
        self._choose_expired()
        self._choose_changed()
        self._choose_new()

    # -- expiry --------------------------------------------------------------------------

    def _can_drop(self, i: int, gone: set[str]) -> bool:
        for parent, name, values in self.scan.infos[i].refs:
            remaining = sum(1 for v in values if v not in gone)
            if remaining < len(values):
                minimum = DROPPABLE.get((parent, name))
                if minimum is None or remaining < minimum:
                    return False
        return True

    def _try_expire(self, seed: int) -> bool:
        infos = self.scan.infos
        new = {seed}
        queue = [seed]
        gone = set(self.expired_ids) | set(infos[seed].ids)
        drops: set[int] = set()
        while queue:
            e = queue.pop()
            for x in infos[e].ids:
                for r in self.referrers.get(x, ()):
                    if r in new or r in self.expired:
                        continue
                    if self._can_drop(r, gone):
                        drops.add(r)
                        continue
                    if len(new) >= MAX_CASCADE or infos[r].cat == "Kodeverk":
                        return False
                    new.add(r)
                    queue.append(r)
                    gone.update(infos[r].ids)
            if not queue:  # a later expiry may leave an earlier drop with too few references
                for r in list(drops):
                    if not self._can_drop(r, gone):
                        if len(new) >= MAX_CASCADE or infos[r].cat == "Kodeverk":
                            return False
                        drops.discard(r)
                        new.add(r)
                        queue.append(r)
                        gone.update(infos[r].ids)
        for r in list(self.drops):
            if not self._can_drop(r, gone):
                return False
        self.expired |= new
        self.expired_ids = gone
        self.drops |= drops - new
        return True

    def _choose_expired(self) -> None:
        """Expire about EXPIRE_RATE of all entries, cascades included, no catalogue far above its share."""
        infos = self.scan.infos
        total = sum(len(m) for name, m in self.by_cat.items() if name != "Kodeverk")
        target = round(total * EXPIRE_RATE)
        caps = {name: round(len(m) * EXPIRE_RATE * 1.5) for name, m in self.by_cat.items()}
        counts = dict.fromkeys(self.by_cat, 0)
        candidates = [i for i, info in enumerate(infos) if info.cat != "Kodeverk"]
        self.rng.shuffle(candidates)
        for seed in candidates[: target * 40]:
            if len(self.expired) >= target:
                break
            if seed in self.expired or counts[infos[seed].cat] >= caps[infos[seed].cat]:
                continue
            before = (set(self.expired), set(self.expired_ids), set(self.drops))
            if not self._try_expire(seed):
                continue
            # by FestEntry.key an Id-less entry re-listed without a reference is expired + new
            added = (self.expired - before[0]) | {i for i in self.drops - before[2] if infos[i].inner is None}
            grown = {name: counts[name] + sum(1 for i in added if infos[i].cat == name) for name in counts}
            if any(grown[name] > max(caps[name], counts[name]) for name in grown):
                self.expired, self.expired_ids, self.drops = before
                continue
            counts = grown

    # -- changes -------------------------------------------------------------------------

    def _share(self, n: int, rate: float) -> int:
        """n * rate rounded up or down at random, so small deliveries still see some change."""
        exact = n * rate
        return int(exact) + (self.rng.random() < exact - int(exact))

    def _choose_changed(self) -> None:
        for members in self.by_cat.values():
            target = self._share(len(members), CHANGE_RATE) - sum(1 for i in members if i in self.drops)
            if target <= 0:
                continue
            small = len(members) < 50  # there, a re-listed Id-less entry would be a large share expired
            pool = [
                i
                for i in members
                if i not in self.expired
                and i not in self.drops
                and not (small and self.scan.infos[i].inner is None)
            ]
            self.changed.update(self.rng.sample(pool, min(target, len(pool))))

    # -- new entries ---------------------------------------------------------------------

    def usable(self, i: int) -> bool:
        """A template: active, kept as it is, and referring to nothing that expires."""
        return i not in self.expired and i not in self.drops

    def _refs(self, i: int, parent: str, name: str) -> list[str]:
        return [v for p, n, values in self.scan.infos[i].refs if p == parent and n == name for v in values]

    def _choose_new(self) -> None:
        rng = self.rng
        infos = self.scan.infos
        packages_of: dict[str, list[int]] = {}
        for i in self.by_cat["Legemiddelpakning"]:
            brand_refs = self._refs(i, "Pakningsinfo", "RefLegemiddelMerkevare")
            if len(brand_refs) == 1 and self.usable(i):
                packages_of.setdefault(brand_refs[0], []).append(i)
        doses_of: dict[str, list[int]] = {}
        for i in self.by_cat["Legemiddeldose"]:
            if self.usable(i):
                for b in self._refs(i, "Legemiddeldose", "RefLegemiddelMerkevare"):
                    doses_of.setdefault(b, []).append(i)
        brands = [
            i
            for i in self.by_cat["LegemiddelMerkevare"]
            if self.usable(i) and infos[i].ids and infos[i].ids[0] in packages_of
        ]
        rng.shuffle(brands)
        n_brands = self._share(len(self.by_cat["LegemiddelMerkevare"]), NEW_RATE)
        span = max(1, (self.new_day - self.base_day).days)
        for t in brands[:n_brands]:
            brand_id = infos[t].ids[0]
            vms = {
                v: self.ids.new()
                for v in self._refs(t, "SortertVirkestoffMedStyrke", "RefVirkestoffMedStyrke")
            }
            if any(self.owner.get(v) is None or not self.usable(self.owner[v]) for v in vms):
                continue
            pkgs = packages_of[brand_id][: rng.choice((1, 1, 2))]
            market = self.base_day + timedelta(days=rng.randint(1, span))
            plan = _NewBrand(
                t,
                self.ids.new(),
                vms,
                {p: self.ids.new() for p in pkgs},
                doses_of.get(brand_id, [])[:1],
                rng.choice(V.GENERIC_MAKERS),
                market,
            )
            self.new_brands.append(plan)
            self.templates.add(t)
            self.templates.update(self.owner[v] for v in vms)
            self.templates.update(pkgs)
            self.templates.update(plan.doses)
        for cat, kind, rate in (
            ("Handelsvare", None, NEW_RATE),
            ("Interaksjon", "Interaksjon", NEW_RATE),
            ("Refusjon", None, NEW_RATE),
            ("Vilkar", None, NEW_RATE),
            ("VarselSlv", None, NEW_RATE),
            ("Virkestoff", "Virkestoff", NEW_RATE / 5),
        ):
            members = [
                i for i in self.by_cat[cat] if self.usable(i) and (kind is None or infos[i].kind == kind)
            ]
            n = self._share(len(self.by_cat[cat]), rate)
            if not members or n == 0:
                continue
            picks: list[tuple[int, ...]] = []
            for _ in range(n):
                pick = (
                    (rng.choice(members), rng.choice(members))
                    if cat == "Interaksjon"
                    else (rng.choice(members),)
                )
                picks.append(pick)
                self.templates.update(pick)
            self.clones[cat] = picks

    def when(self) -> str:
        """A Tidspunkt after the base delivery and before the day of the new one."""
        span = (self.new_day - self.base_day).days
        if span < 2:
            self.rng.random()
            return f"{self.new_day.isoformat()}T00:00:00"
        return batch_timestamp(self.rng, self.base_day + timedelta(days=self.rng.randint(1, span - 1)))

    def number6(self) -> str:
        while True:
            value = f"{self.rng.randrange(1, 1000000):06d}"
            if value not in self.scan.numbers:
                self.scan.numbers.add(value)
                return value

    def ean(self, varenr: str) -> str:
        value = ean13("704626" + varenr)
        while value in self.scan.eans:
            value = ean13("7040881" + f"{self.rng.randrange(10**5):05d}")
        self.scan.eans.add(value)
        return value


# -- content edits ----------------------------------------------------------------------------


def _insert(parent: Node, node: Node, order: tuple[str, ...]) -> None:
    """Insert `node` among `parent`'s children where the XSD sequence `order` puts it."""
    children = parent[3] if parent[3] is not None else []
    parent[3] = children
    rank = order.index(node[0])
    for i, c in enumerate(children):
        if c[0] in order and order.index(c[0]) > rank:
            children.insert(i, node)
            return
    children.append(node)


def _set_text(node: Node | None, text: str) -> bool:
    if node is None or node[2] == text:
        return False
    node[2] = text
    return True


def _scale_prices(payload: Node, factor: float, fra: str | None) -> bool:
    changed = False
    for pv in find_all(payload, "PrisVare"):
        pris = find(pv, "Pris")
        if pris is None or not pris[1]:
            continue
        old = float(pris[1]["V"])
        pris[1]["V"] = fmt_price(max(1.0, old * factor))
        changed = changed or pris[1]["V"] != fmt_price(old)
        if fra:
            _set_text(find(pv, "GyldigFraDato"), fra)
    return changed


def _admin_change(payload: Node, rng: random.Random) -> bool:
    admin = find(payload, "AdministreringLegemiddel")
    if admin is None:
        return False
    present = {c[1]["V"] for c in find_all(admin, "ForhandsregelInntak") if c[1]}
    options = [k for k in sorted(V.PRECAUTIONS) if k not in present]
    if not options:
        return False
    code = rng.choice(options)
    _insert(
        admin,
        cv("ForhandsregelInntak", code, V.OID_PRECAUTION, V.PRECAUTIONS[code]),
        child_order("AdministreringLegemiddel"),
    )
    return True


def mutate(payload: tuple[Node, ...], rng: random.Random, ctx: _Plan) -> tuple[tuple[Node, ...], bool]:
    """One realistic change to an entry's content (in place where possible).

    Returns the payload and whether its content changed; False means the entry is only
    re-listed with a new Oppf Id and Tidspunkt, which DMP also does.
    """
    if not payload:
        return payload, False
    if payload[0][0] == "Info":  # Kodeverk: the code list grows by one element
        codes = {c[2] for e in payload[1:] for c in e[3] or () if c[0] == "Kode"}
        code = str(9000 + rng.randrange(1000))
        while code in codes:
            code = str(int(code) + 1)
        element = elem(
            "Element",
            [leaf("Id", ctx.ids.new()), leaf("Kode", code), elem("Term", [leaf("Term", f"Ny kode {code}")])],
        )
        return (*payload, element), True
    return payload, _change(payload[0], rng, ctx)


def _change(root: Node, rng: random.Random, ctx: _Plan) -> bool:
    kind = root[0]
    day = ctx.new_day
    if kind == "Legemiddelpakning":
        if rng.random() < 0.7:
            fra = first_of_month(day + timedelta(days=rng.randrange(0, 28))).isoformat()
            return _scale_prices(root, rng.uniform(0.85, 1.08), fra)
        market = find(root, "Markedsforingsinfo")
        if market is None:
            return False
        gone = find(market, "MidlUtgattDato")
        if gone is not None:
            market[3].remove(gone)
        else:
            _insert(
                market,
                leaf("MidlUtgattDato", random_date(rng, ctx.base_day, day).isoformat()),
                child_order("Markedsforingsinfo"),
            )
        return True
    if kind == "LegemiddelMerkevare":
        r = rng.random()
        if r < 0.5:
            info = find(root, "ProduktInfo")
            produsent = find(info, "Produsent") if info is not None else None
            return _set_text(produsent, rng.choice(V.ORIGINATORS + tuple(m[1] for m in V.GENERIC_MAKERS)))
        if r < 0.75 and find(root, "SvartTrekant") is None:
            _insert(
                root,
                cv("SvartTrekant", "1", V.OID_BLACK_TRIANGLE, V.BLACK_TRIANGLE["1"]),
                child_order("LegemiddelMerkevare"),
            )
            return True
        return _admin_change(root, rng)
    if kind in ("Legemiddeldose", "LegemiddelVirkestoff"):
        return _admin_change(root, rng)
    if kind == "VirkestoffMedStyrke":  # strength also stated for the salt, as DMP plans to do
        styrke = find(root, "Styrke")
        if styrke is None or not styrke[1] or find(root, "AlternativStyrke") is not None:
            return False
        value = float(styrke[1]["V"]) * rng.uniform(1.05, 1.3)
        nodes = [pq("AlternativStyrke", round(value, 3), styrke[1].get("U", "mg"))]
        nevner = find(root, "StyrkeNevner")
        if nevner is not None and nevner[1]:
            nodes.append(pq("AlternativStyrkeNevner", nevner[1]["V"], nevner[1].get("U", "")))
        index = next(i for i, c in enumerate(root[3] or ()) if c[0] == "RefVirkestoff") + 1
        root[3][index:index] = nodes
        return True
    if kind == "Virkestoff":
        groups = [i for i in ctx.by_cat["Refusjon"] if ctx.usable(i)]
        if not groups or find(root, "Refusjon") is not None:
            return False
        group_id = rng.choice(ctx.scan.infos[rng.choice(groups)].ids)
        _insert(
            root,
            elem("Refusjon", [leaf("RefRefusjonsgruppe", group_id), leaf("GyldigFraDato", day.isoformat())]),
            child_order("Virkestoff"),
        )
        return True
    if kind == "Interaksjon":
        r = rng.random()
        handtering = find(root, "Handtering")
        if r < 0.5 and handtering is not None and handtering[2]:
            handtering[2] = handtering[2].rstrip("\n") + (
                "\nMonitorering: Oppdatert vurdering etter nye kasusrapporter; følg pasienten klinisk.\n"
            )
            return True
        relevans = find(root, "Relevans")
        if relevans is not None and relevans[1] and relevans[1].get("V") in ("2", "3"):
            new = str(int(relevans[1]["V"]) - 1)
            relevans[1] = {"V": new, "DN": V.RELEVANS[new]}
            return True
        _insert(
            root,
            elem(
                "Referanse",
                [
                    leaf("Kilde", f"Oppdatert vurdering, DMP {day.year}"),
                    [
                        "Lenke",
                        {
                            "V": "https://www.dmp.no/interaksjoner?oppdatert="
                            + f"{day.isoformat()}&kilde=fest"
                        },
                        None,
                        None,
                    ],
                ],
            ),
            child_order("Interaksjon"),
        )
        return True
    if kind in ("Brystprotese", "MedForbMatr", "Naringsmiddel"):
        return _scale_prices(root, rng.uniform(0.9, 1.12), None)
    if kind == "Refusjonshjemmel":
        group = find(root, "Refusjonsgruppe")
        code = find(group, "Refusjonskode") if group is not None else None
        if code is not None and find(code, "ForskrivesTilDato") is None:
            until = (day + timedelta(days=rng.randrange(60, 200))).isoformat()
            _insert(code, leaf("ForskrivesTilDato", until), child_order("Refusjonskode"))
            return True
        bruk = find(group, "RefusjonsberettighetBruk") if group is not None else None
        return _set_text(bruk, (bruk[2] or "") + " Gjelder ikke forebyggende behandling.") if bruk else False
    if kind == "Vilkar":
        if find(root, "GyldigTilDato") is None and rng.random() < 0.5:
            _insert(
                root,
                leaf("GyldigTilDato", (day + timedelta(days=rng.randrange(30, 365))).isoformat()),
                child_order("Vilkar"),
            )
            return True
        tekst = find(root, "Tekst")
        return (
            _set_text(tekst, (tekst[2] or "") + " Vilkåret gjelder også ved fornyet forskrivning.")
            if tekst
            else False
        )
    if kind == "VarselSlv":
        tekst = find(root, "Varseltekst")
        note = (
            f" Oppdatert {day.strftime('%d.%m.%Y')}: leveransene er ventet i løpet av {rng.choice(V.MONTHS)}."
        )
        return _set_text(tekst, (tekst[2] or "") + note) if tekst else False
    if kind == "Byttegruppe":
        merknad = find(root, "MerknadTilByttbarhet")
        if merknad is None:
            return False
        beskrivelse = find(root, "BeskrivelseByttbarhet")
        if merknad[2] == "true":
            merknad[2] = "false"
            if beskrivelse is not None:
                root[3].remove(beskrivelse)
        else:
            merknad[2] = "true"
            if beskrivelse is None:
                _insert(
                    root,
                    leaf(
                        "BeskrivelseByttbarhet",
                        "Bytte bør ikke skje for pasienter som er stabilt innstilt på ett preparat.",
                    ),
                    child_order("Byttegruppe"),
                )
        return True
    if kind == "Diagnose":
        for node in walk(root):
            if node[0] == "Beskrivelse":
                return _set_text(node, "Andrevalg" if node[2] == "Førstevalg" else "Førstevalg")
        return False
    return False


def _strip_expired(payload: tuple[Node, ...], gone: set[str]) -> None:
    """Remove Ref* elements whose target expires (only droppable ones are ever affected)."""
    for root in payload:
        for node in walk(root):
            if node[3]:
                node[3] = [c for c in node[3] if not (c[0] in IDREF_ELEMENTS and c[2] in gone)]


# -- new entries ----------------------------------------------------------------------------------

_MAKER_SHORTS = sorted((m[0] for m in V.GENERIC_MAKERS), key=len, reverse=True)


def _set_child_text(node: Node, name: str, text: str) -> None:
    found = find(node, name)
    if found is not None:
        found[2] = text


def _brand_names(plan: _NewBrand, root: Node) -> None:
    varenavn = (find(root, "Varenavn") or ["", None, "", None])[2] or ""
    navn = (find(root, "NavnFormStyrke") or ["", None, "", None])[2] or ""
    atc = find(root, "Atc")
    base = next((varenavn[: -len(s)].strip() for s in _MAKER_SHORTS if varenavn.endswith(" " + s)), "")
    if not base:
        base = (atc[1] or {}).get("DN", "") if atc is not None else ""
        base = base.split(",")[0].split(" og ")[0] or varenavn.split(" ")[0]
    short, _ = plan.maker
    plan.old_varenavn, plan.old_navn = varenavn, navn
    plan.varenavn = f"{base} {short}"
    rest = navn[len(varenavn) :] if navn.startswith(varenavn) else " " + navn.partition(" ")[2]
    plan.navn = plan.varenavn + rest


def _new_brand_entry(plan: _NewBrand, template: FestEntry, ctx: _Plan) -> FestEntry:
    payload = copy.deepcopy(template.payload)
    root = payload[0]
    _brand_names(plan, root)
    _set_child_text(root, "Id", plan.id)
    _set_child_text(root, "Varenavn", plan.varenavn)
    _set_child_text(root, "NavnFormStyrke", plan.navn)
    for s in find_all(root, "SortertVirkestoffMedStyrke"):
        ref = find(s, "RefVirkestoffMedStyrke")
        if ref is not None and ref[2] in plan.vms:
            ref[2] = plan.vms[ref[2]]
    info = find(root, "ProduktInfo")
    if info is not None:
        _set_child_text(info, "Produsent", plan.maker[1])
    root[3] = [c for c in root[3] or () if c[0] not in ("Preparatomtaleavsnitt", "SvartTrekant")]
    for r in find_all(root, "Refusjon"):
        _set_child_text(r, "GyldigFraDato", plan.market.isoformat())
    return FestEntry("LegemiddelMerkevare", ctx.ids.new(), ctx.when(), "A", V.STATUS_ACTIVE[1], payload)


def _new_package_entry(plan: _NewBrand, new_id: str, template: FestEntry, ctx: _Plan) -> FestEntry:
    payload = copy.deepcopy(template.payload)
    root = payload[0]
    market = plan.market.isoformat()
    varenr = ctx.number6()
    _set_child_text(root, "Id", new_id)
    _set_child_text(root, "NavnFormStyrke", plan.navn)
    _set_child_text(root, "Varenr", varenr)
    # current and announced prices (no GyldigTilDato), a little cheaper, valid from launch
    factor = ctx.rng.uniform(0.55, 0.95)
    prices = [c for c in root[3] or () if c[0] == "PrisVare" and find(c, "GyldigTilDato") is None]
    for pv in prices:
        pris = find(pv, "Pris")
        if pris is not None and pris[1]:
            pris[1]["V"] = fmt_price(max(1.0, float(pris[1]["V"]) * factor))
        _set_child_text(pv, "GyldigFraDato", market)
    children: list[Node] = []
    for c in root[3] or ():
        if c[0] in ("Ean", "PrisVare"):
            continue
        if c[0] in ("Markedsforingsinfo", "Preparatomtaleavsnitt") and prices:
            children += prices
            prices = []
        children.append(c)
        if c[0] == "Varenr":
            children.append(leaf("Ean", ctx.ean(varenr)))
    children += prices
    root[3] = children
    for info in find_all(root, "Pakningsinfo"):
        _set_child_text(info, "RefLegemiddelMerkevare", plan.id)
    market_info = find(root, "Markedsforingsinfo")
    if market_info is not None:
        market_info[3] = [leaf("Markedsforingsdato", market)]
    for name in ("Refusjon", "PakningByttegruppe"):
        for node in find_all(root, name):
            _set_child_text(node, "GyldigFraDato", market)
    return FestEntry("Legemiddelpakning", ctx.ids.new(), ctx.when(), "A", V.STATUS_ACTIVE[1], payload)


def _new_dose_entry(
    plan: _NewBrand, template: FestEntry, package_ids: dict[str, str], ctx: _Plan
) -> FestEntry:
    payload = copy.deepcopy(template.payload)
    root = payload[0]
    _set_child_text(root, "Id", ctx.ids.new())
    _set_child_text(root, "NavnFormStyrke", plan.navn)
    ctx.scan.max_lopenr += ctx.rng.randint(1, 5)
    _set_child_text(root, "LmrLopenr", str(ctx.scan.max_lopenr))
    _set_child_text(root, "RefLegemiddelMerkevare", plan.id)
    refs = [package_ids[c[2]] for c in find_all(root, "RefPakning") if c[2] in package_ids]
    if not refs:
        refs = list(plan.packages.values())[:1]
    children = [c for c in root[3] or () if c[0] != "RefPakning"]
    index = next(i for i, c in enumerate(children) if c[0] == "RefLegemiddelMerkevare") + 1
    children[index:index] = [leaf("RefPakning", r) for r in refs]
    root[3] = children
    return FestEntry("Legemiddeldose", ctx.ids.new(), ctx.when(), "A", V.STATUS_ACTIVE[1], payload)


_LAST_NUMBER = re.compile(r"(\d+)(?!.*\d)")


def _clone(cat: str, templates: tuple[FestEntry, ...], ctx: _Plan) -> FestEntry | None:
    rng = ctx.rng
    payload = copy.deepcopy(templates[0].payload)
    root = payload[0]
    remap: dict[str, str] = {}
    for node in walk(root):
        if node[0] == "Id" and node[2]:
            remap[node[2]] = ctx.ids.new()
            node[2] = remap[node[2]]
    day = random_date(rng, ctx.base_day + timedelta(days=1), ctx.new_day).isoformat()
    kind = root[0]
    if kind in ("Brystprotese", "MedForbMatr", "Naringsmiddel"):
        _set_child_text(root, "Nr", ctx.number6())
        name = find(root, "Navn")
        if name is not None and name[2]:
            m = _LAST_NUMBER.search(name[2])
            if m:
                number = int(m.group(1)) + rng.choice((-2, -1, 1, 2, 5))
                name[2] = name[2][: m.start()] + str(max(1, number)) + name[2][m.end() :]
        _scale_prices(root, rng.uniform(0.9, 1.15), None)
    elif kind == "Refusjonshjemmel":
        for group in find_all(root, "Refusjonsgruppe"):
            gnr = find(group, "GruppeNr")
            if gnr is not None and gnr[1]:
                old = gnr[1]["V"]
                head, _, tail = old.rpartition("_")
                value = f"{head}_{int(tail) + 5}" if head and tail.isdigit() else old + "_2"
                gnr[1] = {
                    **gnr[1],
                    "V": value,
                    "DN": value if gnr[1].get("DN") == old else gnr[1].get("DN", ""),
                }
    elif kind == "Vilkar":
        ctx.scan.max_vilkarnr += 1
        _set_child_text(root, "VilkarNr", str(ctx.scan.max_vilkarnr))
        _set_child_text(root, "GyldigFraDato", day)
        root[3] = [c for c in root[3] or () if c[0] != "GyldigTilDato"]
    elif kind == "VarselSlv":
        _set_child_text(root, "FraDato", day)
    elif kind == "Interaksjon":
        other = templates[1].payload[0] if len(templates) > 1 else None
        groups = [i for i, c in enumerate(root[3] or ()) if c[0] == "Substansgruppe"]
        other_groups = find_all(other, "Substansgruppe") if other is not None else []
        if groups and other_groups:
            root[3][groups[-1]] = copy.deepcopy(other_groups[-1])
            names = [
                tuple(find(s, "Substans")[2] for s in find_all(g, "Substans"))  # type: ignore[index]
                for g in find_all(root, "Substansgruppe")
            ]
            if len(set(names)) < len(names):
                return None
    elif kind == "Virkestoff":
        suffix, english = rng.choice(V.SALTS)
        _set_child_text(root, "Navn", (find(root, "Navn") or ["", None, "", None])[2] + suffix)
        _set_child_text(
            root, "NavnEngelsk", ((find(root, "NavnEngelsk") or ["", None, "", None])[2] or "") + english
        )
        root[3] = [c for c in root[3] or () if c[0] not in ("RefVirkestoff", "Refusjon")]
    for node in walk(root):  # references inside the clone to its own Ids follow the new Ids
        if node[0] in IDREF_ELEMENTS and node[2] in remap:
            node[2] = remap[node[2]]
    return FestEntry(cat, ctx.ids.new(), ctx.when(), "A", V.STATUS_ACTIVE[1], payload)


# -- the second pass --------------------------------------------------------------------------------


def _expired_entry(cat: str, oppf: str, tid: str) -> FestEntry:
    return FestEntry(cat, oppf, tid, V.STATUS_EXPIRED[0], V.STATUS_EXPIRED[1], ())


class _Writer:
    """Streams the follow-up: base entries rewritten in order, new ones at each catalogue's end."""

    def __init__(self, base: Path, plan: _Plan, incremental: bool) -> None:
        self.base = base
        self.plan = plan
        self.incremental = incremental
        self.captured: dict[int, FestEntry] = {}
        self.stats: dict[str, dict[str, int]] = {
            c.name: {"new": 0, "changed": 0, "expired": 0} for c in catalogues()
        }
        self.package_ids: dict[str, str] = {}  # template package inner Id -> new package Id

    def entries(self) -> Iterator[FestEntry]:
        plan = self.plan
        infos = plan.scan.infos
        index = -1
        done: set[str] = set()
        current = ""
        for base_entry, _ in FestReader(self.base).entries():
            cat, oppf = base_entry.catalogue, base_entry.oppf_id
            if base_entry.status != "A":
                continue
            if cat != current:
                if current:
                    yield from self._new_for(current)
                    done.add(current)
                yield from self._skipped(current, cat, done)
                current = cat
            index += 1
            info = infos[index]
            if info.oppf != oppf:
                raise RuntimeError(f"{self.base} changed while being read")
            if index in plan.expired:
                self.stats[cat]["expired"] += 1
                when = plan.when()  # drawn in both modes, so full and incremental stay identical
                if self.incremental:
                    yield _expired_entry(cat, oppf, when)
                continue
            touched = index in plan.changed or index in plan.drops
            if not touched and self.incremental and index not in plan.templates:
                continue
            entry = FestEntry(cat, oppf, base_entry.tidspunkt, "A", V.STATUS_ACTIVE[1], base_entry.payload)
            if index in plan.templates:
                self.captured[index] = entry
            if not touched:
                if not self.incremental:
                    yield entry
                continue
            payload = copy.deepcopy(entry.payload)
            if index in plan.drops:
                _strip_expired(payload, plan.expired_ids)
            if index in plan.changed:
                payload, _ = mutate(payload, plan.rng, plan)
            if info.inner is not None:
                self.stats[cat]["changed"] += 1
            else:  # no Id of its own: by FestEntry.key the old listing expires and a new one appears
                self.stats[cat]["expired"] += 1
                self.stats[cat]["new"] += 1
            when = plan.when()
            if self.incremental:
                yield _expired_entry(cat, oppf, when)
            yield FestEntry(cat, plan.ids.new(), when, "A", V.STATUS_ACTIVE[1], payload)
        if current:
            yield from self._new_for(current)
            done.add(current)
        yield from self._skipped(current, "", done)

    def _skipped(self, previous: str, following: str, done: set[str]) -> Iterator[FestEntry]:
        """New entries of catalogues the base lacks, between `previous` and `following`."""
        names = [c.name for c in catalogues()]
        start = names.index(previous) + 1 if previous else 0
        end = names.index(following) if following else len(names)
        for name in names[start:end]:
            if name not in done:
                done.add(name)
                yield from self._new_for(name)

    def _new_for(self, cat: str) -> Iterator[FestEntry]:
        plan = self.plan
        infos = plan.scan.infos
        out: list[FestEntry] = []
        for nb in plan.new_brands:
            if cat == "LegemiddelMerkevare" and nb.template in self.captured:
                out.append(_new_brand_entry(nb, self.captured[nb.template], plan))
            elif cat == "Legemiddelpakning" and nb.navn:
                for t, new_id in nb.packages.items():
                    self.package_ids[infos[t].ids[0]] = new_id
                    out.append(_new_package_entry(nb, new_id, self.captured[t], plan))
            elif cat == "Virkestoff" and nb.navn:
                for old, new in nb.vms.items():
                    template = self.captured[plan.owner[old]]
                    payload = copy.deepcopy(template.payload)
                    _set_child_text(payload[0], "Id", new)
                    out.append(
                        FestEntry("Virkestoff", plan.ids.new(), plan.when(), "A", V.STATUS_ACTIVE[1], payload)
                    )
            elif cat == "Legemiddeldose" and nb.navn:
                for t in nb.doses:
                    out.append(_new_dose_entry(nb, self.captured[t], self.package_ids, plan))
        for picks in plan.clones.get(cat, ()):
            entry = _clone(cat, tuple(self.captured[i] for i in picks), plan)
            if entry is not None:
                out.append(entry)
        self.stats[cat]["new"] += len(out)
        yield from out


def derive_followup(
    base: Path,
    path: Path,
    *,
    incremental: bool = False,
    seed: int = 1,
    hentet_dato: str | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> dict[str, dict[str, int]]:
    """Write the delivery that follows `base` 14 days later; return new/changed/expired per catalogue.

    Full (default): every entry still active, changed ones re-listed with a new Oppf Id. With
    `incremental`, only new and changed entries plus Status U listings (Id, Tidspunkt, Status)
    for expired entries and for the old listing of each changed one, as DMP's webservice sends.
    Counts follow `FestEntry.key`: a re-listed payload without an Id of its own (Handelsvare,
    Refusjonshjemmel, VarselSlv, InteraksjonIkkeVurdert, Kortdose) counts as expired plus new.
    """
    base = Path(base)
    scan = _scan(base)
    rng = random.Random(f"grunndata-followup:{seed}:{scan.hentet}")
    base_day, _ = parse_hentet_dato(scan.hentet)
    new_hentet = hentet_dato or shift_hentet_dato(scan.hentet, DAYS_BETWEEN, rng)
    new_day, _ = parse_hentet_dato(new_hentet)
    if new_day <= base_day:
        raise ValueError(f"HentetDato {new_hentet} is not after the base's {scan.hentet}")
    plan = _Plan(scan, rng, base_day, new_day)
    writer = _Writer(base, plan, incremental)
    counts: dict[str, int] = {}
    with open_delivery(Path(path), new_hentet) as out:
        write_delivery(out, new_hentet, counted(writer.entries(), counts, progress))  # type: ignore[arg-type]
    return writer.stats
