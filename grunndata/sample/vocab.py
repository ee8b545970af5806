"""Norwegian vocabulary and Volven code lists for the sample FEST generator.

Codes and display names follow what real FEST deliveries carry (values seen in the 2017 mini
extract are used as they are); the few codes not seen there are plausible stand-ins. Every
code list here is also emitted as a KatKodeverk entry, so the file stays self-consistent.
"""

from __future__ import annotations

from dataclasses import dataclass

VOLVEN = "2.16.578.1.12.4.1.1."

OID_ATC = VOLVEN + "7180"
OID_FORM = VOLVEN + "7448"
OID_PACK_UNIT = VOLVEN + "7452"
OID_PACK_TYPE = VOLVEN + "7449"
OID_PRICE_TYPE = VOLVEN + "7453"
OID_PRICE_TYPE_VARE = VOLVEN + "7423"
OID_ROUTE = VOLVEN + "7477"
OID_KORTDOSE = VOLVEN + "7478"
OID_PRECAUTION = VOLVEN + "7479"
OID_DOSE_UNIT = VOLVEN + "7480"
OID_LABEL = VOLVEN + "7488"
OID_DISPLAY_RULE = VOLVEN + "7442"
OID_STRENGTH_OPERATOR = VOLVEN + "7445"
OID_REFUND_BASIS = VOLVEN + "7427"
OID_REFUND_GROUP = VOLVEN + "7451"
OID_REFUND_CODE = VOLVEN + "7434"
OID_REFUND_CODE_ICPC_LIKE = VOLVEN + "7435"
OID_ICD10 = VOLVEN + "7110"
OID_ICPC2 = VOLVEN + "7170"
OID_CONDITION_GROUP = VOLVEN + "7437"
OID_STRUCTURED_CONDITION = VOLVEN + "7439"
OID_NOTICE_TYPE = VOLVEN + "7441"
OID_SPECIALITY = VOLVEN + "7426"
OID_VACCINE_STANDARD = VOLVEN + "7447"
OID_BLACK_TRIANGLE = VOLVEN + "7510"
OID_YES_NO = VOLVEN + "1101"

# GS1 prefixes: 704626 + varenr is the usual Norwegian pharmacy EAN; the rest are suppliers'.
NORWEGIAN_GS1_PREFIXES = ("7040881", "7072279", "7046670", "7038319")
FOREIGN_GS1_PREFIXES = (
    "5701", "5702", "6430", "7311", "4015", "4030", "5000", "5413", "8717", "3838989", "5909", "8699", "5060353",
)  # fmt: skip

STATUS_ACTIVE = ("A", "Aktiv oppføring")
STATUS_EXPIRED = ("U", "Utgått oppføring")


@dataclass(frozen=True, slots=True)
class Form:
    """A pharmaceutical form: how it is coded, named, dosed, packed and grouped for substitution."""

    key: str
    code: str  # LegemiddelformKort V (7448)
    short: str  # LegemiddelformKort DN
    long: tuple[str, ...]  # LegemiddelformLang alternatives
    abbrev: str  # as written in NavnFormStyrke
    routes: tuple[str, ...]  # Administrasjonsvei codes (7477)
    dose_unit: str  # EnhetDosering code (7480)
    pack_unit: str  # EnhetPakning code (7452)
    pack_types: tuple[str, ...]  # Pakningstype codes (7449)
    pack_sizes: tuple[float, ...]
    bytte: str  # the form as written in Byttegruppe names
    solid: bool  # counted in pieces (tablets, capsules, patches)
    crushable: str  # KanKnuses default: 1 yes, 2 no, 9 unknown


# key|code|short|long forms (;)|NavnFormStyrke abbreviation|routes|dose unit|pack unit|
# pack types|pack sizes|Byttegruppe form|solid (1/0)|KanKnuses
_FORM_TABLE = """
tab|53|Tablett|Tablett;Tablett, filmdrasjert;Tablett, drasjert|Tab|53|13|stk|169,8,55,207|10,14,20,28,30,50,98,100|TABLETTER|1|1
enterotab|28|Enterotablett|Enterotablett|Enterotab|53|13|stk|169,8|14,28,30,56,98,100|ENTEROTABLETTER|1|2
depottab|25|Depottablett|Depottablett;Tablett med modifisert frisetting|DEPOTtab|53|13|stk|169,8,98|10,20,28,30,98,100|DEPOTTABLETTER|1|2
smeltetab|51|Smeltetablett|Smeltetablett|Smeltetab|53|13|stk|169,18|6,14,28,30,98|SMELTETABLETTER|1|9
brusetab|16|Brusetablett|Brusetablett|Brusetab|53|13|stk|207,75|10,20,30,60|BRUSETABLETTER|1|1
tyggetab|60|Tyggetablett|Tyggetablett|Tyggetab|53|13|stk|169,8|28,30,60,100|TYGGETABLETTER|1|1
disperg|5|Dispergerbar tablett|Dispergerbar tablett|Disperg tab|53|13|stk|169|30,60,100|DISPERGERBARE TABLETTER|1|1
sublingvaltab|57|Sublingvaltablett|Sublingvaltablett|Sublingvaltab|61|13|stk|169,8|20,30,100|SUBLINGVALTABLETTER|1|2
kaps|32|Kapsel|Kapsel, hard;Kapsel, myk;Kapsel|Kaps|53|6|stk|169,8,55|10,14,20,28,30,56,98,100|KAPSLER|1|9
enterokaps|27|Enterokapsel|Enterokapsel, hard;Enterokapsel|Enterokaps|53|6|stk|169,8|14,28,56,98|ENTEROKAPSLER|1|2
depotkaps|24|Depotkapsel|Depotkapsel, hard;Kapsel med modifisert frisetting|DEPOTkaps|53|6|stk|169,55|10,28,30,98,100|DEPOTKAPSLER|1|2
mikst|9|Mikstur|Mikstur, oppløsning;Mikstur, suspensjon|Mikst|53|8|ml|120,56,31|100,150,200,250,500|MIKSTUR|0|9
pulvmikst|224|Pulver til mikstur|Pulver til mikstur, suspensjon|Pulv til mikst|53|8|ml|31,56|60,100,150|PULVER TIL MIKSTUR|0|9
granmikst|8|Granulat til mikstur|Granulat til mikstur, suspensjon|Gran til mikst|53|8|ml|31,56|50,70,100|GRANULAT TIL MIKSTUR|0|9
drap|13|Dråper|Dråper, oppløsning|Dråper|53|5|ml|60,72|10,15,30|DRÅPER|0|9
stikkp|56|Stikkpille|Stikkpille|Stikkp|54|14|stk|169|5,6,10,12|STIKKPILLER|1|2
inj|101|Injeksjonsvæske|Injeksjonsvæske, oppløsning;Injeksjonsvæske|Inj væske|43,62,33|8|ml|37,3,27,25,43|1,2,5,10,20,50|INJEKSJONSVÆSKE|0|9
injsusp|426|Injeksjonsvæske, suspensjon|Injeksjonsvæske, suspensjon|Inj væske susp|33,62|11|stk|27,26|1,5,10|INJEKSJONSVÆSKE, SUSPENSJON|1|9
pulvinj|438|Pulver til injeksjonsvæske|Pulver til injeksjons-/infusjonsvæske, oppløsning;Pulver til injeksjonsvæske|Pulv til inj/inf væske|43|70|stk|37,43|1,5,10|PULVER TIL INJEKSJONSVÆSKE|1|9
infkons|460|Konsentrat til infusjonsvæske|Konsentrat til infusjonsvæske, oppløsning|Kons til inf væske|43|8|ml|37,43|1,4,10,17,50|KONSENTRAT TIL INFUSJONSVÆSKE|0|9
krem|34|Krem|Krem|Krem|8|4|g|95|15,30,50,100|KREM|0|9
salve|46|Salve|Salve|Salve|8|4|g|95|15,30,50,100|SALVE|0|9
gel|40|Gel|Gel|Gel|8|4|g|95,55|30,50,100,150|GEL|0|9
plaster|58|Depotplaster|Depotplaster|Depotplaster|65|16|stk|30|3,4,5,8,10,16,30|DEPOTPLASTER|1|2
nesespray|92|Nesespray|Nesespray, oppløsning;Nesespray, suspensjon|Nesespray|46|19|dose|56,115|60,120,140|NESESPRAY|0|9
oyedr|73|Øyedråper|Øyedråper, oppløsning|Øyedr|48|5|ml|72,56|2.5,5,10|ØYEDRÅPER|0|9
inhaer|103|Inhalasjonsaerosol|Inhalasjonsaerosol, oppløsning;Inhalasjonsaerosol, suspensjon|Inh aerosol|11|19|dose|110|60,120,200|INHALASJONSAEROSOL|0|9
inhpulv|104|Inhalasjonspulver|Inhalasjonspulver;Inhalasjonspulver, avdelt|Inh pulv|11|19|dose|110|30,60,120|INHALASJONSPULVER|0|9
neb|100|Inhalasjonsvæske til nebulisator|Inhalasjonsvæske til nebulisator|Inh væske til nebulisator|11|8|ml|3,75|20,40,60|INHALASJONSVÆSKE TIL NEBULISATOR|0|9
tyggegummi|71|Medisinert tyggegummi|Medisinert tyggegummi|Tyggegummi|9|22|stk|169|30,105,210|MEDISINERT TYGGEGUMMI|1|9
inhdamp|97|Væske til inhalasjonsdamp|Væske til inhalasjonsdamp|Væske til inh damp|11|19|ml|145,31|250|VÆSKE TIL INHALASJONSDAMP|0|9
rektalv|59|Rektalvæske|Rektalvæske, oppløsning|Rektalvæske|54|8|stk|75|5,10|REKTALVÆSKE|1|9
"""


# fmt: off
def _parse_forms(table: str) -> dict[str, Form]:
    """The forms table: one pipe-separated row per form, lists comma-separated."""
    forms = {}
    for row in table.strip().splitlines():
        f = row.split("|")
        forms[f[0]] = Form(
            f[0], f[1], f[2], tuple(f[3].split(";")), f[4], tuple(f[5].split(",")), f[6], f[7],
            tuple(f[8].split(",")), tuple(float(s) for s in f[9].split(",")), f[10], f[11] == "1", f[12],
        )
    return forms
# fmt: on


FORMS: dict[str, Form] = _parse_forms(_FORM_TABLE)

# fmt: off
ROUTES: dict[str, str] = {
    "53": "Oral bruk",
    "8": "Bruk på hud",
    "43": "Intravenøs bruk",
    "62": "Subkutan bruk",
    "65": "Transdermal bruk",
    "11": "Bruk til inhalasjon",
    "33": "Intramuskulær bruk",
    "6": "Bruk i øret",
    "68": "Ikke angitt",
    "54": "Rektal bruk",
    "46": "Nasal bruk",
    "48": "Okulær bruk",
    "61": "Sublingval bruk",
    "9": "Bruk i munnhulen",
}
# fmt: on

# fmt: off
DOSE_UNITS: dict[str, str] = {
    "13": "tablett",
    "8": "ml",
    "6": "kapsel",
    "16": "plaster",
    "19": "dose",
    "11": "sprøyte",
    "17": "IE",
    "79": "E",
    "70": "mg",
    "14": "stikkpille",
    "5": "dråpe",
    "4": "g",
    "22": "tyggegummi",
    "20": "pose",
}
# fmt: on

# fmt: off
PACK_UNITS: dict[str, str] = {
    "stk": "stykk",
    "ml": "milliliter",
    "g": "gram",
    "S": "sett",
    "mg": "milligram",
    "dose": "dose",
}
# fmt: on

# fmt: off
PACK_TYPES: dict[str, str] = {
    "169": "Blisterpakning",
    "37": "Hetteglass",
    "8": "Boks",
    "56": "Flaske av plast",
    "30": "Foliepose",
    "18": "Blisterpakning, endose",
    "55": "Boks av plast",
    "95": "Tube",
    "98": "Kalenderpakning",
    "145": "Flaske av aluminium",
    "81": "Sprøyte av plast",
    "27": "Ferdigfylt sprøyte",
    "43": "Hetteglass med plastovertrekk",
    "26": "Ferdigfylt sprøyte av glass",
    "31": "Flaske av glass",
    "207": "Tablettbeholder",
    "146": "Sett",
    "60": "Flaske av mørk plast",
    "75": "Rør av plast",
    "25": "Ferdigfylt penn",
    "120": "Flaske av mørkt glass",
    "3": "Ampulle",
    "72": "Dråpeflaske",
    "110": "Inhalator",
    "115": "Sprayflaske",
}
# fmt: on

PRICE_TYPES: dict[str, str] = {"2": "Refusjonspris", "3": "AIP", "4": "AUP", "5": "Trinnpris"}
# fmt: off
PRICE_TYPES_VARE: dict[str, str] = {
    "N": "Innkjøpspris",
    "E": "Maks refusjonspris per enhet",
    "P": "Maks refusjonspris per pakning",
}
# fmt: on

DISPLAY_RULES: dict[str, str] = {"1": "Allmennlege", "2": "Spesialist", "3": "Sykehus", "4": "Apotek"}
STRENGTH_OPERATORS: dict[str, str] = {"L": "Lik", "M": "Mindre enn", "S": "Større enn", "I": "Intervall"}
RESEPTGRUPPER: dict[str, str] = {k: f"Reseptgruppe {k}" for k in ("A", "B", "C", "CF", "F")}
# fmt: off
PREPARATTYPER: dict[str, str] = {
    "7": "Legemiddel",
    "15": "Sykehuspreparat",
    "6": "Vaksine",
    "11": "Krever godkj. Fritak",
    "9": "NAF-preparat",
}
# fmt: on
SOKNAD_SLV: dict[str, str] = {"1": "Skal ikke søkes", "2": "Søknad vurderes av apotek"}
OPPBEVARING: dict[str, str] = {"R": "Rom (15-25 grader)", "K": "Kaldt (2-8 grader)", "F": "Fryser"}
YES_NO_UNKNOWN: dict[str, str] = {"1": "Ja", "2": "Nei", "9": "Ukjent"}
# fmt: off
DELING: dict[str, str] = {
    "0": "Ikke spesifisert",
    "1": "Ikke delbar",
    "2": "Delbar i 2",
    "4": "Delbar i 4",
}
# fmt: on
RELEVANS: dict[str, str] = {"1": "Bør unngås", "2": "Forholdsregler bør tas", "3": "Ingen tiltak nødvendig"}
# fmt: off
KILDEGRUNNLAG: dict[str, str] = {
    "1": "Interaksjonsstudier",
    "2": "Kasusrapporter",
    "3": "Interaksjonsstudier og kasusrapporter",
    "4": "Indirekte data",
}
# fmt: on
# fmt: off
REFUND_BASES: dict[str, str] = {
    "200": "§5-14 §2",
    "300": "§5-14 §3",
    "400": "§5-14 §4",
    "600": "§5-14 §6",
    "950": "H-resept",
}
# fmt: on
CONDITION_GROUPS: dict[str, str] = {"1": "Legemiddel", "2": "Handelsvare", "3": "Refusjon"}
GJELDER_FOR: dict[str, str] = {"1": "Rekvirent", "2": "Utleverer", "3": "Rekvirent og utleverer"}
# fmt: off
STRUCTURED_CONDITIONS: dict[str, str] = {
    "1": "Alder lik eller større enn",
    "2": "Alder mindre enn",
    "9": "Forskrevet på sykehus",
    "10": "Forskrevet av spesialist eller sykehus",
}
# fmt: on
# fmt: off
NOTICE_TYPES: dict[str, str] = {
    "1": "Sikkerhetsinformasjon",
    "2": "Leveringssvikt",
    "3": "Tilbaketrekking",
    "4": "Refusjon",
    "7": "Retningslinjer og råd",
}
# fmt: on
# fmt: off
REFERENCE_CLASSES: dict[str, str] = {
    "1": "LegemiddelMerkevareId",
    "2": "LegemiddelpakningId",
    "3": "LegemiddelVirkestoffId",
}
# fmt: on
# fmt: off
SPECIALITIES: dict[str, str] = {
    "3": "Barnesykdommer",
    "9": "Blodsykdommer",
    "12": "Fødselshjelp og kvinnesykdommer",
    "16": "Hud og veneriske sykdommer",
    "18": "Hjertesykdommer",
    "23": "Lungesykdommer",
    "24": "Infeksjonssykdommer",
    "28": "Endokrinologi",
    "29": "Fordøyelsessykdommer",
    "32": "Onkologi",
    "35": "Øyesykdommer",
    "37": "Nevrologi",
    "40": "Nyresykdommer",
    "41": "Revmatologi",
    "45": "Psykiatri",
    "47": "Urologi",
    "190": "Indremedisin",
}
# fmt: on
BLACK_TRIANGLE: dict[str, str] = {"1": "Legemiddel med særlig overvåkning"}
YES_NO: dict[str, str] = {"1": "Ja", "2": "Nei"}
# fmt: off
VACCINE_STANDARDS: dict[str, str] = {
    "12": "Vaksine mot influensa (inaktivert, splittvirus eller overflateantigen)",
    "31": "Vaksine mot pneumokokksykdom (polysakkarid, konjugert, adsorbert)",
    "51": "Vaksine mot hepatitt A (inaktivert) og hepatitt B (rDNA), (adsorbert)",
}
# fmt: on
PERIODS: dict[str, str] = {"d": "Døgn", "u": "Uke", "m": "Måned"}
SMAK = ("Appelsin", "Jordbær", "Banan", "Sitron", "Bringebær", "Mint", "Kirsebær")

# fmt: off
KORTDOSER: dict[str, str] = {
    "93": "1 daglig",
    "5378": "Følg vedlagte bruksanvisning",
    "130": "1x2",
    "216": "1+1+1",
    "195": "1+0+0",
    "90": "1 ved anfall som avtalt med legen",
    "379": "2x1",
    "359": "Plasteret skiftes to faste dager hver uke",
    "217": "1+1+1+1",
    "304": "2+2+2",
    "201": "1+0+1",
    "5326": "2 som engangsdose",
    "305": "2+2+2+2",
    "160": "1x3",
    "275": "2x2",
    "108": "1x1 Påsmøres i tynt lag",
    "2": "1 ved sengetid",
    "3": "2 ved sengetid",
    "339": "5+0+5",
    "285": "2,5+0+2,5",
    "5358": "2x1x1$1x1",
    "266": "2 daglig",
    "115": "1x1x3",
    "258": "1x1x1$0,5x1x4",
    "361": "Påføres hver 2. time i våken tid av døgnet i 4 dager",
    "89": "1 ved anfall og eventuelt 1 etter minst 2 timer",
    "21": "0+0+1",
    "295": "2+0+0",
    "281": "2x3",
    "215": "1+1+0",
    "145": "1x2 Påsmøres i tynt lag",
    "169": "1x3 Påsmøres i tynt lag",
    "210": "1+0+1 Påsmøres i tynt lag",
    "5434": "3,75+0+3,75",
    "350": "7,5+0+7,5",
    "227": "10+0+10",
    "5390": "20x1x1$10x1",
    "234": "1-2 inntil x4",
}
# fmt: on

# fmt: off
PRECAUTIONS: dict[str, str] = {
    "54": "Tas etter måltid",
    "64": "Tas til måltid",
    "50": "Svelges hel med 1 glass vann",
    "49": "Svelges hel",
    "104": "Tas stående",
    "79": "Tas minst 1 time før eller 2 timer etter måltid",
    "92": "Svelges med 1 glass vann",
    "6": "Bruk medisinmål",
    "66": "Tas utenom måltid",
    "84": "Settes av helsepersonell",
    "96": "Tas umiddelbart etter måltid",
    "31": "Rystes før bruk",
    "112": "Unngå grapefruktjuice",
    "118": "Kan gi redusert reaksjonsevne",
}
# fmt: on

# fmt: off
LABELS: dict[str, str] = {
    "530": "MOT INFEKSJON",
    "310": "MOT BRONKITT",
    "585": "MOT LUFTVEISINFEKSJON",
    "110": "HJERTEMEDISIN",
    "50": "MOT HØYT BLODTRYKK",
    "495": "MOT HJERTESVIKT",
    "60": "BLODTRYKKSMEDISIN",
    "860": "MOT ØREBETENNELSE",
    "260": "MOT BIHULEBETENNELSE",
    "330": "MOT DEPRESJON",
    "905": "NERVEMEDISIN",
    "480": "MOT HETETOKTER",
    "120": "HORMONTILSKUDD",
    "639": "MOT OVERGANGSPLAGER",
    "1156": "TIL BRUK PÅ HUDEN",
    "803": "MOT SÅRINFEKSJON",
    "240": "MOT BETENNELSE",
    "503": "MOT HUDINFEKSJON",
    "638": "MOT PANIKKANGST",
    "515": "MOT HYPERAKTIVITET",
    "623": "MOT NARKOLEPSI",
    "1152": "TIL INJEKSJON",
    "590": "MOT MAGESÅR",
    "345": "MOT DUODENALSÅR",
    "669": "MOT REFLUKSØSOFAGITT",
    "1377": "MOT SPISERØRSSYKDOM",
    "770": "MOT STERKE SMERTER",
    "1225": "VED SMERTER",
    "1060": "SMERTESTILLENDE",
    "730": "MOT SMERTER",
    "840": "MOT URINVEISINFEKSJON",
    "1198": "VED TRANSPLANTASJON",
    "470": "MOT HERPES",
    "1194": "VED MIGRENEANFALL",
    "610": "MOT MIGRENE",
    "1383": "DEMPER ABSTINENS",
    "335": "MOT DIABETES",
    "1376": "MOT ROSACEA",
    "1402": "KOLESTEROLSENKENDE",
    "1410": "BLODFORTYNNENDE",
    "180": "MOT ASTMA",
    "20": "MOT ALLERGI",
    "1062": "SOVEMEDISIN",
    "1064": "BEROLIGENDE",
    "420": "MOT EPILEPSI",
    "1420": "MOT KREFT",
    "1430": "MOT LEDDGIKT",
    "1440": "MOT BENSKJØRHET",
    "1450": "MOT PSYKOSE",
    "1460": "MOT GRØNN STÆR",
    "1470": "MOT KVALME",
    "1480": "MOT FORSTOPPELSE",
    "1490": "MOT URINSYREGIKT",
    "1500": "MOT PARKINSONS SYKDOM",
    "1510": "MOT DEMENS",
}
# fmt: on

# ATC prefix -> BruksomradeEtikett codes (longest prefix wins).
# fmt: off
LABELS_BY_ATC: dict[str, tuple[str, ...]] = {
    "A02B": ("590", "669", "1377"),
    "A04": ("1470",),
    "A06": ("1480",),
    "A10": ("335",),
    "B01": ("1410",),
    "C01": ("110",),
    "C03": ("60", "495"),
    "C07": ("110", "50"),
    "C08": ("50", "60"),
    "C09": ("50", "60", "495"),
    "C10": ("1402",),
    "D": ("1156", "240"),
    "G03C": ("120", "639", "480"),
    "J01": ("530", "585", "840", "310", "260", "860"),
    "J05AB": ("470",),
    "L01": ("1420",),
    "L02": ("1420",),
    "L04A": ("1198",),
    "M01": ("240", "730", "1430"),
    "M04": ("1490",),
    "M05": ("1440",),
    "N02A": ("770", "730"),
    "N02B": ("730", "1060", "1225"),
    "N02C": ("610", "1194"),
    "N03": ("420", "905"),
    "N04": ("1500",),
    "N05A": ("1450",),
    "N05B": ("1064", "638"),
    "N05C": ("1062",),
    "N06A": ("330", "905"),
    "N06B": ("515", "623"),
    "N06D": ("1510",),
    "N07B": ("1383",),
    "R03": ("180",),
    "R06": ("20",),
    "S01E": ("1460",),
}
# fmt: on

# Conditions used for reimbursement codes: (ICD-10 code, ICD-10 text, ICPC-2 code, ICPC-2 text).
# fmt: off
CONDITIONS: dict[str, tuple[str, str, str, str]] = {
    "lipid": ("E78", "Forstyrrelser i lipoproteinmetabolismen og andre lipidemier", "T93", "Lipidforstyrrelse"),
    "hyp": ("I10", "Essensiell (primær) hypertensjon", "K86", "Hypertensjon ukomplisert"),
    "hyp2": ("I11", "Hypertensiv hjertesykdom", "K87", "Hypertensjon med komplikasjoner"),
    "hsv": ("I50", "Hjertesvikt", "K77", "Hjertesvikt"),
    "af": ("I48", "Atrieflimmer og atrieflutter", "K78", "Atrieflimmer/flutter"),
    "ap": ("I20", "Angina pectoris", "K74", "Iskemisk hjertesykdom med angina"),
    "ami": ("I21", "Akutt hjerteinfarkt", "K75", "Akutt hjerteinfarkt"),
    "le": ("I26", "Lungeemboli", "K93", "Lungeemboli"),
    "dvt": ("I80", "Flebitt og tromboflebitt", "K94", "Flebitt/flebotrombose"),
    "dm2": ("E11", "Diabetes mellitus type 2", "T90", "Diabetes type 2"),
    "dm1": ("E10", "Diabetes mellitus type 1", "T89", "Diabetes type 1"),
    "hypot": ("E03", "Annen hypotyreose", "T86", "Hypotyreose/myksødem"),
    "hypert": ("E05", "Tyreotoksikose [hypertyreose]", "T85", "Hypertyreose/tyreotoksikose"),
    "dep": ("F32", "Depressiv episode", "P76", "Depressiv lidelse"),
    "dep2": ("F33", "Tilbakevendende depressiv lidelse", "P76", "Depressiv lidelse"),
    "angst": ("F41", "Andre angstlidelser", "P74", "Angstlidelse"),
    "schiz": ("F20", "Schizofreni", "P72", "Schizofreni"),
    "bip": ("F31", "Bipolar affektiv lidelse", "P73", "Affektiv psykose"),
    "adhd": ("F90", "Hyperkinetiske forstyrrelser", "P81", "Hyperkinetisk forstyrrelse"),
    "epi": ("G40", "Epilepsi", "N88", "Epilepsi"),
    "migr": ("G43", "Migrene", "N89", "Migrene"),
    "park": ("G20", "Parkinsons sykdom", "N87", "Parkinsonisme"),
    "alz": ("G30", "Alzheimers sykdom", "P70", "Demens"),
    "ms": ("G35", "Multippel sklerose", "N86", "Multippel sklerose"),
    "astma": ("J45", "Astma", "R96", "Astma"),
    "kols": ("J44", "Annen kronisk obstruktiv lungesykdom", "R95", "Kronisk obstruktiv lungesykdom"),
    "rhin": ("J30", "Vasomotorisk og allergisk rhinitt", "R97", "Allergisk rhinitt"),
    "gerd": ("K21", "Gastroøsofageal reflukssykdom", "D84", "Spiserørssykdom"),
    "ulc": ("K25", "Ventrikkelsår", "D86", "Magesår IKA"),
    "crohn": ("K50", "Crohns sykdom", "D94", "Kronisk enteritt/ulcerøs kolitt"),
    "uc": ("K51", "Ulcerøs kolitt", "D94", "Kronisk enteritt/ulcerøs kolitt"),
    "ra": ("M05", "Seropositiv revmatoid artritt", "L88", "Revmatoid artritt/seropositiv"),
    "gout": ("M10", "Urinsyregikt", "T92", "Urinsyregikt"),
    "osteo": ("M81", "Osteoporose uten patologisk brudd", "L95", "Osteoporose"),
    "psor": ("L40", "Psoriasis", "S91", "Psoriasis"),
    "ekz": ("L20", "Atopisk dermatitt", "S87", "Atopisk dermatitt/eksem"),
    "bph": ("N40", "Prostatahyperplasi", "Y85", "Prostatahyperplasi"),
    "blaere": ("N32", "Andre sykdommer i urinblæren", "U99", "Urinveissykdom IKA"),
    "bca": ("C50", "Ondartet svulst i bryst", "X76", "Brystkreft"),
    "pca": ("C61", "Ondartet svulst i blærehalskjertel", "Y77", "Prostatakreft"),
    "tx": ("Z94", "Status etter transplantert organ og vev", "A87", "Komplikasjon etter behandling"),
    "fe": ("D50", "Jernmangelanemi", "B80", "Jernmangelanemi"),
    "b12": ("D51", "Vitamin B12-mangelanemi", "B81", "Anemi, vitamin B12/folat mangel"),
    "hep": ("B18", "Kronisk virushepatitt", "D72", "Viral hepatitt"),
    "hiv": ("B20", "Sykdom som skyldes humant immunsviktvirus [HIV]", "B90", "HIV-infeksjon/AIDS"),
    "alk": (
        "F10", "Psykiske lidelser og atferdsforstyrrelser som skyldes bruk av alkohol", "P15",
        "Kronisk alkoholmisbruk",
    ),
    "opi": (
        "F11", "Psykiske lidelser og atferdsforstyrrelser som skyldes bruk av opioider", "P19",
        "Rusmiddelmisbruk",
    ),
    "tob": ("F17", "Psykiske lidelser og atferdsforstyrrelser som skyldes bruk av tobakk", "P17", "Tobakkmisbruk"),
    "pain": ("R52", "Smerte, ikke klassifisert annet sted", "A01", "Generelle/uspesifiserte smerter"),
    "sleep": ("G47", "Søvnforstyrrelser", "P06", "Søvnforstyrrelse"),
    "glauk": ("H40", "Glaukom", "F93", "Glaukom"),
    "uvi": ("N39", "Andre sykdommer i urinveiene", "U71", "Cystitt/urinveisinfeksjon IKA"),
    "dvit": ("E55", "D-vitaminmangel", "T91", "Vitamin/ernæringsmangel"),
    "obst": ("K59", "Andre funksjonelle tarmforstyrrelser", "D12", "Forstoppelse"),
    "stomi": ("Z93", "Kunstig åpning (stomi) status", "D99", "Fordøyelsessykdom IKA"),
    "inkont": ("N31", "Nevromuskulær dysfunksjon av urinblæren", "U04", "Urininkontinens"),
    "kreft": ("C18", "Ondartet svulst i tykktarm", "D75", "Kreft i tykktarm/endetarm"),
    "cf": ("E84", "Cystisk fibrose", "T99", "Endokrin/metabol/ernær sykd IKA"),
    "allergi": ("K52", "Annen ikke-infeksiøs gastroenteritt og kolitt", "D99", "Fordøyelsessykdom IKA"),
}
# fmt: on

# fmt: off
CONDITIONS_BY_ATC: dict[str, tuple[str, ...]] = {
    "A02B": ("gerd", "ulc"),
    "A06": ("obst",),
    "A07E": ("crohn", "uc"),
    "A10A": ("dm1", "dm2"),
    "A10B": ("dm2",),
    "A11": ("dvit",),
    "B01A": ("af", "le", "dvt", "ami"),
    "B03A": ("fe",),
    "B03B": ("b12",),
    "C01": ("ap", "af", "hsv"),
    "C03": ("hyp", "hsv"),
    "C07": ("hyp", "ap", "af"),
    "C08": ("hyp", "ap"),
    "C09": ("hyp", "hyp2", "hsv"),
    "C10": ("lipid",),
    "D": ("ekz", "psor"),
    "G03": ("osteo",),
    "G04B": ("blaere",),
    "G04C": ("bph",),
    "H03A": ("hypot",),
    "H03B": ("hypert",),
    "J05A": ("hep", "hiv"),
    "L01": ("bca", "kreft"),
    "L02": ("bca", "pca"),
    "L04AA": ("tx", "ms"),
    "L04AB": ("ra", "psor", "crohn"),
    "L04AC": ("psor", "crohn"),
    "L04AD": ("tx",),
    "L04AX": ("ra", "psor"),
    "M01": ("ra", "pain"),
    "M04": ("gout",),
    "M05": ("osteo",),
    "N02A": ("pain",),
    "N02C": ("migr",),
    "N03": ("epi",),
    "N04": ("park",),
    "N05A": ("schiz", "bip"),
    "N05AN": ("bip",),
    "N05C": ("sleep",),
    "N06A": ("dep", "dep2", "angst"),
    "N06B": ("adhd",),
    "N06D": ("alz",),
    "N07BA": ("tob",),
    "N07BB": ("alk",),
    "N07BC": ("opi",),
    "R01": ("rhin",),
    "R03": ("astma", "kols"),
    "R06": ("rhin",),
    "S01E": ("glauk",),
}
# fmt: on

# Refusjonskoder that are not diagnoses (7434) and their ICPC-like twins (7435).
# fmt: off
SPECIAL_REFUND_CODES: tuple[tuple[str, str, str], ...] = (
    ("-51", "-51", "Organtransplantasjon"),
    ("-90", "-90", "Palliativ behandling i livets sluttfase"),
    ("-73", "-F3", "Behandlingskrevende forstyrrelse i stemningsleie ved psykisk lidelse"),
    ("-74", "-F4", "Behandlingskrevende angstsymptomer ved psykisk lidelse"),
    ("-61", "-61", "Forebygging av legemiddelinduserte mage- og duodenalsår hos risikopasienter"),
    ("-22", "-22", "Sekundærprofylakse etter hjerteinfarkt"),
    ("-30", "-30", "Annen langvarig og alvorlig hudsykdom"),
)
# fmt: on

# Generic manufacturers: (short name used in Varenavn, Produsent).
# fmt: off
GENERIC_MAKERS: tuple[tuple[str, str], ...] = (
    ("Krka", "KRKA Sverige AB"),
    ("Sandoz", "Sandoz A/S"),
    ("Orion", "Orion Corporation Orion Pharma"),
    ("Mylan", "Mylan AB"),
    ("Actavis", "Actavis Group hf."),
    ("Teva", "Teva Sweden AB"),
    ("Accord", "Accord Healthcare B.V."),
    ("Bluefish", "Bluefish Pharmaceuticals AB"),
    ("Aurobindo", "Aurobindo Pharma (Malta) Limited"),
    ("Zentiva", "Zentiva, k.s."),
    ("Stada", "STADA Arzneimittel AG"),
    ("Medical Valley", "Medical Valley Invest AB"),
    ("ratiopharm", "ratiopharm GmbH"),
    ("Hexal", "Hexal A/S"),
    ("Viatris", "Viatris AS"),
    ("Glenmark", "Glenmark Pharmaceuticals Nordic AB"),
    ("Sun", "Sun Pharmaceutical Industries Europe B.V."),
    ("Alternova", "Alternova A/S"),
    ("Pensa", "Pensa Pharma AB"),
    ("Farmagon", "Farmagon AS"),
    ("Vitabalans", "Vitabalans Oy"),
    ("Xiromed", "Xiromed Glass Nordic AB"),
    ("Ebb", "Ebb Medical AB"),
    ("1A Farma", "1A Farma A/S"),
    ("Amneal", "Amneal Pharma Europe Ltd"),
    ("Fresenius Kabi", "Fresenius Kabi Norge AS"),
    ("Hikma", "Hikma Farmacêutica (Portugal) S.A."),
    ("Abcur", "Abcur AB"),
    ("Aurora Medical", "Aurora Medical AS"),
    ("Unimedic", "Unimedic Pharma AB"),
    ("Navamedic", "Navamedic ASA"),
    ("Evolan", "Evolan Pharma AB"),
    ("Zydus", "Zydus France"),
    ("Cipla", "Cipla Europe NV"),
    ("Jubilant", "Jubilant Pharmaceuticals NV"),
    ("Medartuum", "Medartuum AB"),
    ("Dr. Reddy's", "Dr. Reddy's Laboratories (UK) Ltd"),
    ("Ascend", "Ascend Laboratories AB"),
    ("Aristo", "Aristo Pharma GmbH"),
    ("G.L. Pharma", "G.L. Pharma GmbH"),
)
# fmt: on

# fmt: off
ORIGINATORS: tuple[str, ...] = (
    "Pfizer AS", "Novartis Norge AS", "AstraZeneca AS", "Merck Sharp & Dohme B.V.", "GlaxoSmithKline AS",
    "Sanofi-aventis Norge AS", "Bayer AS", "Boehringer Ingelheim International GmbH", "Novo Nordisk A/S",
    "Eli Lilly Norge A.S.", "Janssen-Cilag AS", "Roche Registration GmbH", "Takeda AS", "H. Lundbeck A/S",
    "Orion Pharma AS", "Bristol-Myers Squibb Pharma EEIG", "AbbVie AS", "Amgen Europe B.V.",
    "UCB Pharma AS", "LEO Pharma AS", "Meda AS", "Weifa AS", "Ferring Legemidler AS",
    "Gilead Sciences Ireland UC", "Medice Arzneimittel Pütter GmbH & Co KG", "Kragerø Tablettproduksjon AS",
    "Nycomed Pharma AS", "Otsuka Pharmaceutical Netherlands B.V.", "Servier Danmark A/S", "Grünenthal GmbH",
)
# fmt: on

# fmt: off
PARALLEL_IMPORTERS: tuple[str, ...] = (
    "Orifarm AS", "Paranova Pharmaceuticals AB", "2care4 ApS", "Abacus Medicine A/S", "Europharma DK ApS",
    "Medartuum AB", "Pharmachim AB", "Cross Pharma AB",
)
# fmt: on

# fmt: off
HOSPITAL_MAKERS: tuple[str, ...] = (
    "Sykehusapotekene HF", "Sykehusapoteket Oslo, Ullevål", "Sykehusapotekene i Midt-Norge HF",
    "Sykehusapotek Nord HF",
)
# fmt: on

# Syllables for invented brand names and substance names (INN-like).
# fmt: off
BRAND_HEADS: tuple[str, ...] = (
    "Ala", "Bel", "Cara", "Dela", "Ela", "Fera", "Gala", "Hexa", "Ira", "Jova", "Kela", "Lora", "Mira",
    "Nova", "Ora", "Pela", "Quara", "Resa", "Sela", "Tora", "Ula", "Vera", "Xela", "Zora", "Amo", "Bio",
    "Cito", "Duo", "Evo", "Flu", "Geno", "Hydra", "Inno", "Lino", "Medi", "Neo", "Opti", "Pro", "Sano",
    "Tri", "Uni", "Vita", "Zeno",
)
# fmt: on
# fmt: off
BRAND_TAILS: tuple[str, ...] = (
    "tan", "vir", "mex", "cor", "lin", "pax", "zol", "ril", "dex", "fen", "mil", "nor", "ric", "sal", "tex",
    "vex", "xin", "zan", "dol", "gan", "lon", "mox", "pin", "sin", "tol", "vent", "cid", "lex", "qua",
    "rex",
)
# fmt: on
# fmt: off
INN_HEADS: tuple[str, ...] = (
    "al", "ben", "car", "dal", "ed", "fal", "gal", "hal", "il", "ka", "lev", "mal", "nal", "ol", "pal",
    "ra", "sal", "tal", "ul", "val", "zal", "bri", "clo", "dro", "eto", "flu", "gli", "lo", "mi", "ni",
    "ox", "pra", "qui", "ri", "si", "tri", "vi", "za", "amo", "ber", "cel", "dor", "emi", "fos", "gem",
    "ibu", "lan", "mer", "nor", "omi", "pen", "ros", "sem", "tem", "ver", "xan", "zir",
)
# fmt: on
# fmt: off
INN_MIDDLES: tuple[str, ...] = ("", "a", "e", "i", "o", "u", "da", "ki", "lo", "ma", "ne", "pi", "ro", "sa", "te", "vo", "zi")
# fmt: on

# Salt and ester suffixes used to derive Virkestoff names (Norwegian spelling, English spelling).
# fmt: off
SALTS: tuple[tuple[str, str], ...] = (
    ("hydroklorid", " hydrochloride"),
    ("natrium", " sodium"),
    ("kalium", " potassium"),
    ("kalsium", " calcium"),
    ("magnesium", " magnesium"),
    ("maleat", " maleate"),
    ("tartrat", " tartrate"),
    ("suksinat", " succinate"),
    ("mesilat", " mesilate"),
    ("besilat", " besilate"),
    ("fumarat", " fumarate"),
    ("sulfat", " sulfate"),
    ("fosfat", " phosphate"),
    ("acetat", " acetate"),
    ("citrat", " citrate"),
    ("bromid", " bromide"),
    ("hydrobromid", " hydrobromide"),
    ("dihydrat", " dihydrate"),
    ("monohydrat", " monohydrate"),
    ("trihydrat", " trihydrate"),
    ("laktat", " lactate"),
    ("embonat", " embonate"),
    ("dipropionat", " dipropionate"),
    ("valerat", " valerate"),
    ("pivoksil", " pivoxil"),
    ("kaliumklavulanat", " potassium clavulanate"),
)
# fmt: on

# fmt: off
PLANTS: tuple[tuple[str, str], ...] = (
    ("Johannesurt", "St. John's wort"),
    ("Valeriana", "Valerian"),
    ("Ginkgo", "Ginkgo"),
    ("Ginseng", "Ginseng"),
    ("Echinacea", "Echinacea"),
    ("Mariatistel", "Milk thistle"),
    ("Sennesblad", "Senna leaf"),
    ("Kamille", "Chamomile"),
    ("Peppermynte", "Peppermint"),
    ("Hvitløk", "Garlic"),
    ("Ingefær", "Ginger"),
    ("Tranebær", "Cranberry"),
    ("Humle", "Hops"),
    ("Sitronmelisse", "Lemon balm"),
    ("Lakrisrot", "Liquorice root"),
    ("Rosenrot", "Roseroot"),
    ("Sagpalme", "Saw palmetto"),
    ("Eføy", "Ivy"),
    ("Timian", "Thyme"),
    ("Pasjonsblomst", "Passion flower"),
    ("Gurkemeie", "Turmeric"),
    ("Hestekastanje", "Horse chestnut"),
    ("Arnika", "Arnica"),
    ("Ringblomst", "Marigold"),
    ("Solhatt", "Purple coneflower"),
    ("Fennikel", "Fennel"),
    ("Anis", "Anise"),
    ("Bjørnebærblad", "Bramble leaf"),
    ("Lind", "Linden"),
    ("Brennesle", "Nettle"),
)
# fmt: on
# fmt: off
PLANT_PARTS: tuple[tuple[str, str], ...] = (
    (", tørrekstrakt", ", dry extract"),
    (", flytende ekstrakt", ", liquid extract"),
    ("rot", " root"),
    ("blad", " leaf"),
    ("urt", " herb"),
    (", tinktur", ", tincture"),
    ("olje", " oil"),
)
# fmt: on
# fmt: off
ALLERGENS: tuple[tuple[str, str], ...] = (
    ("bjørkepollen", "birch pollen"),
    ("timoteipollen", "timothy pollen"),
    ("burotpollen", "mugwort pollen"),
    ("husstøvmidd", "house dust mite"),
    ("katt", "cat"),
    ("hund", "dog"),
    ("hest", "horse"),
    ("bievenom", "bee venom"),
    ("vepsevenom", "wasp venom"),
    ("oreppollen", "alder pollen"),
    ("hasselpollen", "hazel pollen"),
    ("gresspollen", "grass pollen"),
)
# fmt: on
# fmt: off
ALLERGEN_FORMS: tuple[tuple[str, str], ...] = (
    ("Allergenekstrakt, ", "Allergen extract, "),
    ("Standardisert allergenekstrakt, ", "Standardised allergen extract, "),
    ("Depotallergen, ", "Depot allergen, "),
)
# fmt: on

# INN stems: (stem, ATC group to number synthetic codes in, English stem).
# fmt: off
INN_STEMS: tuple[tuple[str, str, str], ...] = (
    ("prazol", "A02BC", "prazole"),
    ("sartan", "C09CA", "sartan"),
    ("pril", "C09AA", "pril"),
    ("olol", "C07AB", "olol"),
    ("dipin", "C08CA", "dipine"),
    ("statin", "C10AA", "statin"),
    ("gliptin", "A10BH", "gliptin"),
    ("gliflozin", "A10BK", "gliflozin"),
    ("glutid", "A10BJ", "glutide"),
    ("floksacin", "J01MA", "floxacin"),
    ("syklin", "J01AA", "cycline"),
    ("cillin", "J01CA", "cillin"),
    ("konazol", "J02AC", "conazole"),
    ("ciklovir", "J05AB", "ciclovir"),
    ("buvir", "J05AP", "buvir"),
    ("tinib", "L01EX", "tinib"),
    ("ciklib", "L01EF", "ciclib"),
    ("zumab", "L01FX", "zumab"),
    ("kinumab", "L04AC", "kinumab"),
    ("setron", "A04AA", "setron"),
    ("triptan", "N02CC", "triptan"),
    ("oksetin", "N06AB", "oxetine"),
    ("azepam", "N05BA", "azepam"),
    ("peridon", "N05AX", "peridone"),
    ("lukast", "R03DC", "lukast"),
    ("tadin", "R06AX", "tadine"),
    ("parin", "B01AB", "parin"),
    ("xaban", "B01AF", "xaban"),
    ("grel", "B01AC", "grel"),
    ("fibrat", "C10AB", "fibrate"),
    ("dronat", "M05BA", "dronate"),
    ("koksib", "M01AH", "coxib"),
    ("profen", "M01AE", "profen"),
    ("nidazol", "P01AB", "nidazole"),
    ("lutamid", "L02BB", "lutamide"),
    ("trozol", "L02BG", "trozole"),
    ("relin", "L02AE", "relin"),
    ("metason", "D07AC", "metasone"),
    ("stigmin", "N06DA", "stigmine"),
    ("pramin", "N06AA", "pramine"),
)
# fmt: on

# Pharmacological class names for interaction substance groups, by ATC prefix.
# fmt: off
CLASS_NAMES: dict[str, str] = {
    "A02BC": "Protonpumpehemmere",
    "A10BH": "DPP-4-hemmere",
    "A10BK": "SGLT2-hemmere",
    "B01AF": "Direkte faktor Xa-hemmere",
    "B01AC": "Platehemmere",
    "C07AB": "Betablokkere, selektive",
    "C08CA": "Dihydropyridinderivater",
    "C09AA": "ACE-hemmere",
    "C09CA": "Angiotensin II-antagonister",
    "C10AA": "Statiner",
    "J01FA": "Makrolider",
    "J01MA": "Fluorokinoloner",
    "J01AA": "Tetrasykliner",
    "J02AC": "Triazolderivater",
    "M01AE": "Propionsyrederivater",
    "M01AH": "Koksiber",
    "N02CC": "Triptaner",
    "N03AX": "Antiepileptika, andre",
    "N05AH": "Diazepiner, oksazepiner og tiazepiner",
    "N05BA": "Benzodiazepiner",
    "N06AB": "Selektive serotoninreopptakshemmere (SSRI)",
    "N06AA": "Trisykliske antidepressiva",
    "R06AX": "Antihistaminer, andre",
    "L04AD": "Kalsineurinhemmere",
    "N02AA": "Opiumsalkaloider",
}
# fmt: on

# fmt: off
SURNAMES: tuple[str, ...] = (
    "Andersen", "Berg", "Dahl", "Eriksen", "Fosse", "Hansen", "Haugen", "Johansen", "Kristiansen", "Larsen",
    "Moen", "Nilsen", "Olsen", "Pedersen", "Spigset", "Strand", "Tveit", "Wik", "Backman", "Neuvonen",
    "Olkkola", "Kivistö", "Lilja", "Niemi", "Bergendal", "Brøsen", "Hägg", "Jönsson", "Smith", "Johnson",
    "Brown", "Miller", "Davis", "Wilson", "Taylor", "Thomas", "Martin", "Garcia", "Müller", "Schmidt",
    "Weber", "Fischer", "Rossi", "Bianchi", "Dupont", "Lefèvre", "Tanaka", "Suzuki",
)
# fmt: on
# fmt: off
JOURNALS: tuple[str, ...] = (
    "Clin Pharmacol Ther", "Eur J Clin Pharmacol", "Br J Clin Pharmacol", "J Clin Psychopharmacol",
    "Ann Pharmacother", "Tidsskr Nor Legeforen", "Drug Saf", "Am J Psychiatry", "J Clin Pharmacol",
    "Pharmacotherapy", "Basic Clin Pharmacol Toxicol", "Norsk Farmaceutisk Tidsskrift", "Lancet",
    "N Engl J Med", "Clin Pharmacokinet", "Drug Metab Dispos",
)
# fmt: on
# fmt: off
STUDY_TITLES: tuple[str, ...] = (
    "Effect of {a} on the pharmacokinetics of {b} in healthy volunteers",
    "Pharmacokinetic interaction between {a} and {b}",
    "{a} markedly increases plasma concentrations of {b}",
    "Clinically significant interaction between {a} and {b}: a case report",
    "Lack of pharmacokinetic interaction between {a} and {b}",
    "The influence of {a} on the disposition of {b}", "Drug interactions with {b}: focus on {a}",
    "A randomised crossover study of {a} and {b} coadministration",
)
# fmt: on

# fmt: off
STUDY_DESIGNS: tuple[str, ...] = (
    "", "", ": a randomized, placebo-controlled crossover study",
    ": results from a population-based cohort", " in patients with chronic disease",
    ": a systematic review", " in elderly patients: a nested case-control study",
)
# fmt: on

# Medical consumables (MedForbMatr): (category, name templates, makers, unit, refusjon group name).
# fmt: off
CONSUMABLES: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str], ...] = (
    (
        "Stomiutstyr",
        (
            "Stomipose {brand} 1-del lukket {lo}-{hi} mm", "Stomipose {brand} 2-del åpen {lo} mm",
            "Urostomipose {brand} 1-del {lo}-{hi} mm", "Hudplate {brand} 2-del {lo} mm konveks",
            "Stomipasta {brand} 60 g", "Hudbeskyttelsesfilm {brand} spray 50 ml",
        ),
        (
            "Coloplast SenSura Mio", "Hollister Moderma Flex", "Convatec Esteem", "Dansac NovaLife",
            "Salts Confidence", "Welland Aurum",
        ),
        "stk",
    ),
    (
        "Diabetesutstyr",
        (
            "Blodsukkerstrimmel {brand}", "Insulinkanyle {brand} 0,{lo}x{hi} mm", "Lansett {brand} {lo}G",
            "Glukosesensor {brand}", "Ketonstrimmel {brand}", "Insulinpumpe infusjonssett {brand} {lo} mm",
        ),
        (
            "FreeStyle Lite", "Accu-Chek Guide", "Contour Next", "OneTouch Verio", "Wellion Calla",
            "BD Micro-Fine+", "NovoFine Plus", "mylife Clickfine", "Dexcom G7", "FreeStyle Libre 3",
        ),
        "stk",
    ),
    (
        "Inkontinensutstyr",
        (
            "Urinkateter {brand} CH{lo} {hi} cm", "Uridom {brand} {lo} mm", "Urinpose {brand} {hi}0 ml",
            "Kateter {brand} Nelaton CH{lo}",
        ),
        (
            "LoFric Origo", "SpeediCath Compact", "Actreen Hi-Lite", "Conveen Optima", "Hollister InView",
            "GentleCath Glide",
        ),
        "stk",
    ),
    (
        "Inhalasjonsutstyr",
        (
            "Inhalasjonskammer {brand}", "Inhalasjonskammer {brand} med maske str {lo}",
            "Nebulisatorsett {brand}",
        ),
        ("AeroChamber Plus", "Volumatic", "OptiChamber Diamond", "Babyhaler", "PARI LC Sprint"),
        "stk",
    ),
    (
        "Sterile oppløsninger",
        (
            "NaCl 9 mg/ml, plastampulle {lo} ml", "Sterilt vann, plastampulle {lo} ml",
            "Skyllevæske NaCl 9 mg/ml {hi}0 ml",
        ),
        ("B. Braun", "Fresenius Kabi", "Baxter", "Mediq"),
        "ml",
    ),
    (
        "Trakeostomiutstyr",
        ("Fukteneseinnsats {brand}", "Trakeostomikanyle {brand} {lo} mm", "Filterkassett {brand}"),
        ("Provox XtraMoist", "Provox XtraFlow", "Shiley", "Atos Medical"),
        "stk",
    ),
    (
        "Sårbehandling",
        (
            "Skumbandasje {brand} {lo}x{hi} cm", "Hydrokolloid {brand} {lo}x{hi} cm",
            "Silikonbandasje {brand} {lo}x{hi} cm",
        ),
        ("Mepilex Border", "Allevyn Gentle", "Aquacel Foam", "Biatain Silicone"),
        "stk",
    ),
)
# fmt: on

# fmt: off
NUTRITION: tuple[tuple[str, tuple[str, ...], tuple[str, ...], str, str], ...] = (
    (
        "Sondeernæring",
        ("{brand} sondeløsning {vol} ml", "{brand} Multi Fibre {vol} ml"),
        ("Nutrison", "Fresubin Original", "Peptamen", "Isosource Energy"),
        "1,0 kcal/ml",
        "Flytende",
    ),
    (
        "Næringsdrikk",
        ("{brand} drikk {taste} {vol} ml", "{brand} Compact {taste} {vol} ml"),
        ("Nutridrink", "Fresubin Energy", "Ensure Plus", "Resource 2.0", "Fortimel"),
        "2,4 kcal/ml",
        "Flytende",
    ),
    (
        "Morsmelkerstatning",
        ("{brand} pulver {g} g", "{brand} 1 pulver {g} g"),
        ("Nutramigen LGG", "Neocate", "Pepticate", "Althéra", "Alfaré", "Infatrini"),
        "0,67 kcal/ml",
        "Pulver",
    ),
    (
        "Spesialnæring PKU",
        ("{brand} pulver {g} g", "{brand} {taste} {vol} ml"),
        ("PKU Lophlex", "PKU Anamix", "XPhe Jump"),
        "20 g protein/100 g",
        "Pulver",
    ),
    (
        "Fortykningsmiddel",
        ("{brand} fortykningspulver {g} g",),
        ("Thick & Easy", "Nutilis Clear", "Resource ThickenUp Clear"),
        "",
        "Pulver",
    ),
    (
        "Energitilskudd",
        ("{brand} {taste} {vol} ml", "{brand} emulsjon {vol} ml"),
        ("Calogen", "Liquigen", "Duocal"),
        "4,5 kcal/ml",
        "Emulsjon",
    ),
)
# fmt: on
NUTRITION_STOFF: tuple[str, ...] = ("Protein", "Fett", "Karbohydrat", "Kostfiber", "Energi", "MCT-fett")
TASTES: tuple[str, ...] = ("jordbær", "vanilje", "sjokolade", "nøytral", "banan", "aprikos", "skogsbær")

# fmt: off
BREAST_PROSTHESES: tuple[str, ...] = (
    "Amoena Natura 2S", "Amoena Essential 2A", "Amoena Contact 2S", "Anita Care TrueLite",
    "Anita Care Soft", "Trulife Silk", "Thuasne Ellipse", "Amoena Balance Delprotese",
)
# fmt: on
BREAST_SHAPES: tuple[str, ...] = ("symmetrisk", "asymmetrisk venstre", "asymmetrisk høyre", "trekant")

# fmt: off
SUPPLIERS: tuple[tuple[str, str, str], ...] = (
    ("Coloplast Norge AS", "Postboks 6, 1375 Billingstad", "66 77 88 90"),
    ("Hollister Norge AS", "Postboks 183, 1309 Rud", "67 15 99 50"),
    ("Mediq Norge AS", "Postboks 173, 1401 Ski", "64 91 09 00"),
    ("Abena Helsecare AS", "Postboks 464, 1601 Fredrikstad", "69 35 56 00"),
    ("Nutricia Norge AS", "Postboks 4232, 0401 Oslo", "23 00 28 00"),
    ("Fresenius Kabi Norge AS", "Postboks 430, 1753 Halden", "69 21 11 00"),
    ("Nestlé Health Science Norge", "Postboks 683 Skøyen, 0214 Oslo", "22 51 80 00"),
    ("Convatec Norway AS", "Postboks 1075, 1311 Høvikodden", "67 58 71 00"),
    ("Wellspect HealthCare", "Postboks 5, 1323 Høvik", "22 58 89 00"),
    ("Ypsomed AS", "Postboks 163, 1366 Lysaker", "22 27 15 00"),
    ("Roche Diabetes Care Norge AS", "Postboks 6610 Etterstad, 0607 Oslo", "22 78 90 00"),
    ("Abbott Norge AS", "Postboks 1, 1330 Fornebu", "81 54 62 00"),
    ("Amoena Norge AS", "Postboks 205, 1372 Asker", "66 90 52 00"),
    ("Atos Medical AS", "Postboks 55, 0901 Oslo", "22 87 45 00"),
    ("B. Braun Medical AS", "Postboks 32, 1483 Hagan", "67 06 51 00"),
)
# fmt: on

# fmt: off
NOTICE_TEMPLATES: dict[str, tuple[tuple[str, str], ...]] = {
    "2": (
        (
            "Mangel på {brand}",
            "Det er mangel på {brand} {form}. Forventet levering har blitt forsinket og er nå tidligst tilbake {month}. Legemiddelverket har gitt apotekene tillatelse til å utlevere utenlandske pakninger. Vurder om pasienten kan bruke et annet preparat med samme virkestoff.",
        ),
        (
            "Leveringsproblemer for {brand}",
            "{brand} {form} er midlertidig utsolgt fra leverandør. Byttbare preparater finnes for enkelte styrker. Det er ikke kjent når leveransene blir normale igjen.",
        ),
    ),
    "1": (
        (
            "Ny sikkerhetsinformasjon om {substance}",
            "Det europeiske legemiddelkontoret har vurdert nye data om {substance}. Forskrivere bes gjennomgå behandlingen av pasienter som bruker legemidler med {substance} og følge de oppdaterte anbefalingene i preparatomtalen.",
        ),
    ),
    "3": (
        (
            "Tilbakekalling av enkelte batcher av {brand}",
            "Enkelte batcher av {brand} {form} trekkes tilbake fra markedet på grunn av et kvalitetsavvik. Det er ingen kjent risiko for pasientene, og pasienter skal ikke avbryte behandlingen.",
        ),
    ),
    "4": (
        (
            "Endret refusjon for {substance}",
            "Fra {month} endres refusjonsvilkårene for legemidler med {substance}. Nye pasienter skal starte på det rimeligste likeverdige alternativet.",
        ),
    ),
    "7": (
        (
            "Nye retningslinjer for bruk av {substance}",
            "Helsedirektoratet har publisert oppdaterte faglige råd for bruk av {substance}. Se lenken for mer informasjon.",
        ),
    ),
}
# fmt: on

# fmt: off
MONTHS: tuple[str, ...] = (
    "januar", "februar", "mars", "april", "mai", "juni", "juli", "august", "september", "oktober",
    "november", "desember",
)
# fmt: on

# fmt: off
HJELPESTOFFER: tuple[str, ...] = (
    "Laktose", "Laktosemonohydrat", "Aspartam", "Sorbitol", "Sukrose", "Hvetestivelse", "Soyaolje",
    "Benzylalkohol", "Propylenglykol", "Natriummetabisulfitt", "Paraoksybenzoater", "Peanøttolje", "Etanol",
    "Glukose", "Fenylalanin",
)
# fmt: on
