"""Volven code systems (OIDs under 2.16.578.1.12.4.1.1) that FEST uses, from real deliveries.

A code system not listed here, nor declared in the delivery's own KatKodeverk, is warned about.
"""

VOLVEN = "2.16.578.1.12.4.1.1."

KNOWN_CODE_SYSTEMS: dict[str, str] = {
    VOLVEN + "1101": "seen in the 2017 extract",
    VOLVEN + "7110": "ICD-10",
    VOLVEN + "7170": "ICPC-2 (Refusjonskode)",
    VOLVEN + "7180": "ATC",
    VOLVEN + "7423": "Pristype handelsvare",
    VOLVEN + "7426": "seen in the 2017 extract",
    VOLVEN + "7427": "Refusjonshjemmel",
    VOLVEN + "7434": "Refusjonskode",
    VOLVEN + "7435": "Refusjonskode",
    VOLVEN + "7437": "Vilkar Gruppe",
    VOLVEN + "7439": "seen in the 2017 extract",
    VOLVEN + "7441": "Type SLV-varsel",
    VOLVEN + "7442": "Visningsregel",
    VOLVEN + "7445": "Styrkeoperator",
    VOLVEN + "7447": "Vaksinestandard",
    VOLVEN + "7448": "Legemiddelform",
    VOLVEN + "7449": "Pakningstype",
    VOLVEN + "7451": "Refusjonsgruppe GruppeNr",
    VOLVEN + "7452": "Enhet",
    VOLVEN + "7453": "Pristype",
    VOLVEN + "7477": "Administrasjonsvei",
    VOLVEN + "7478": "Kortdose",
    VOLVEN + "7479": "Forhåndsregel ved inntak",
    VOLVEN + "7480": "Enhet for dosering",
    VOLVEN + "7488": "Bruksområde etikett",
    VOLVEN + "7510": "SvartTrekant",
}
