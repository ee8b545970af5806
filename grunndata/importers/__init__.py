"""Importers: read deliveries (FEST, later SAFEST, sector, supplementary) and write releases."""
