"""The real server for the e2e tests: the one starter (scripts/hypercorn_server.py), with
what the tests check of it."""

from __future__ import annotations

from api.config.settings import Settings
from scripts.hypercorn_server import ROOT, Server, free_port

__all__ = ["ROOT", "SHUTDOWN_PROBLEMS", "Server", "free_port", "settings_env"]

# What a clean shutdown never prints.
SHUTDOWN_PROBLEMS = (
    "Traceback",
    "Event loop is closed",
    "Unclosed",
    "unclosed",
    "Task was destroyed",
)


def settings_env(settings: Settings) -> dict[str, str]:
    """The environment variables that reproduce `settings` in a server process (every one)."""
    return settings.to_env()
