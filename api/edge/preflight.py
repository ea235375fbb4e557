"""What the Hypercorn master does before it starts any worker (run by api.hypercorn_config).

`python -m api.edge.preflight` runs the same settings check for scripts that start other
programs first (scripts/run migrates before it serves).
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Mapping
from multiprocessing.process import BaseProcess

from api.config.settings import Settings, SettingsError
from api.edge.internals import hypercorn_join_exited, replace_hypercorn_join_exited

EXIT_BAD_SETTINGS = 2


def settings_or_exit(environ: Mapping[str, str] | None = None) -> Settings:
    """The settings of this environment, or exit 2 with their one-line complaint on stderr."""
    try:
        return Settings.from_env(environ)
    except SettingsError as error:
        # One line that names the variable and the fix: no traceback to scroll past.
        print(f"auth-api: {error}", file=sys.stderr)
        raise SystemExit(EXIT_BAD_SETTINGS) from None


def exit_non_zero_when_workers_die() -> None:
    """Make the Hypercorn master exit non-zero after a worker died, as supervisors expect.

    Hypercorn 0.18 records a dead worker's exit code, then overwrites it with the result
    of a second join over the workers left (pgjones/hypercorn#269), so it exits 0.

    A worker ended by SIGTERM itself is no failure: it takes SIGTERM as the signal to
    drain from the moment it listens (api.edge.draining), so one that died of it was still
    starting or had already finished, with no request in hand; a stop signalled to every
    process of the service (systemd's control-group kill) reaches such workers too.
    """
    join_exited = hypercorn_join_exited()
    first_failure = 0

    def join_exited_keeping_failures(processes: list[BaseProcess]) -> int:
        nonlocal first_failure
        before = list(processes)
        join_exited(processes)  # always called: it reaps the dead workers from `processes`
        for reaped in (p for p in before if p not in processes):
            if reaped.exitcode != -signal.SIGTERM:
                first_failure = first_failure or reaped.exitcode or 0
        return first_failure

    replace_hypercorn_join_exited(join_exited_keeping_failures)


if __name__ == "__main__":
    settings_or_exit()
