"""Synthetic demo data: a seeded generator of Chinese hospital records as FHIR R4 Bundles,
and ``seed_demo`` which imports them with demo accounts and findings (never real data)."""
