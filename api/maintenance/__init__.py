"""Maintenance: purging rows kept only for a while, once (CLI) or periodically (server)."""
