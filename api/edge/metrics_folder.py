"""The folder where the workers of one server keep their metrics files.

prometheus-client's multi-process mode sums files that every worker writes in
PROMETHEUS_MULTIPROC_DIR. Each server gets a fresh private folder of its own, so two
servers never mix their numbers and a restart never inherits old ones; the master
sets it up before it starts the workers, which inherit the environment.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import shutil
import tempfile
from collections.abc import MutableMapping
from pathlib import Path

VARIABLE = "PROMETHEUS_MULTIPROC_DIR"


def provide(environ: MutableMapping[str, str] = os.environ) -> Path:
    """Point `environ` (which the workers inherit) at this server's metrics folder.

    PROMETHEUS_MULTIPROC_DIR when set (created if missing, left in place at exit: the
    operator owns it); otherwise a new folder, mode 0700, removed when this process exits.
    """
    named = environ.get(VARIABLE, "").strip()
    if named:
        path = Path(named)
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return path
    path = Path(tempfile.mkdtemp(prefix="auth-api-metrics-"))
    environ[VARIABLE] = str(path)
    atexit.register(_remove, path, os.getpid())
    return path


def _remove(path: Path, owner: int) -> None:
    # Only the process that made the folder removes it, never a child that inherited it.
    if os.getpid() != owner:
        return
    # Hypercorn's master returns as soon as one worker has exited, and this runs before
    # multiprocessing's own exit handler joins the others: a worker still draining its
    # requests would find its metrics files gone and answer them 500.
    for child in multiprocessing.active_children():
        child.join()
    shutil.rmtree(path, ignore_errors=True)
