"""Programs the end-to-end tests drive for real (nginx, Caddy, Chromium): found on the machine,
or installed from Debian's packages when missing and we are root; otherwise the calling test
is skipped, saying what to install."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

# Debian keeps some servers in sbin, which a user's PATH may leave out.
SEARCHED = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin"])


def debian_binary(binary: str, *packages: str) -> str:
    """The path of `binary`, installing `packages` with apt-get first when missing and root.

    Skips the calling test when it can be neither found nor installed.
    """
    found = shutil.which(binary, path=SEARCHED)
    if found:
        return found
    wanted = " ".join(packages)
    if os.geteuid() != 0:
        pytest.skip(f"{binary} is not installed: apt-get install {wanted} (as root)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "-o", "DPkg::Lock::Timeout=600", "install", "-y", "-qq", *packages],
    ):
        if subprocess.run(command, env=env, capture_output=True, timeout=900).returncode:
            pytest.skip(f"{binary} is not installed and apt-get could not install {wanted}")
    found = shutil.which(binary, path=SEARCHED)
    if not found:
        pytest.skip(f"apt-get installed {wanted}, but {binary} is not on PATH")
    return found
