"""Signing keys published in this repository's history: every process must refuse them."""

# The development default of the first version (api/config/settings.py keeps only its SHA-256).
FIRST_DEVELOPMENT_DEFAULT = "development-only-secret-never-use-in-production-0000"
