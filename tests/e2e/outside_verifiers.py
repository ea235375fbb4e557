"""Two JOSE implementations the service does not use, verifying its tokens with nothing
but its published JWK Set: joserfc (Python) and Node's `jose` package (installed from the
npm registry into a cache folder outside the repository)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import warnings
from pathlib import Path
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError, SecurityWarning
from joserfc.jwk import KeySet

ALGORITHMS = ["RS256", "ES256", "EdDSA"]
CLOCK_SKEW = 5  # seconds
NODE_JOSE = "jose@5"
SCRIPT = Path(__file__).with_name("verify_with_jose.mjs")


def verify_with_joserfc(jwks: dict[str, Any], tokens: list[str]) -> list[bool]:
    """Whether joserfc accepts each token (signature by kid from `jwks`, then exp/nbf)."""
    keys = KeySet.import_key_set(jwks)
    results = []
    for token in tokens:
        try:
            with warnings.catch_warnings():
                # RFC 9864 deprecates the name "EdDSA" for "Ed25519"; the contract says EdDSA.
                warnings.filterwarnings("ignore", "EdDSA is deprecated", SecurityWarning)
                decoded = jwt.decode(token, keys, algorithms=ALGORITHMS)
            # `iat` has fractions of a second and joserfc compares it with whole seconds:
            # without the leeway usual for clock skew, a fresh token is "issued in the future".
            jwt.JWTClaimsRegistry(leeway=CLOCK_SKEW).validate(decoded.claims)
        except (JoseError, ValueError):
            results.append(False)
        else:
            results.append(True)
    return results


def node_jose_folder() -> Path | None:
    """A folder with `jose` installed (installed on first use), or None without node.

    Raises:
        RuntimeError: node is there but npm could not install jose (no registry?).
    """
    if shutil.which("node") is None:
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    folder = cache / "auth-api-tests" / "node-jose"
    if not (folder / "node_modules" / "jose" / "package.json").exists():
        folder.mkdir(parents=True, exist_ok=True)
        npm = shutil.which("npm")
        if npm is None:
            raise RuntimeError("node is installed but npm is not: can't install jose")
        installed = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--silent", NODE_JOSE],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if installed.returncode != 0:
            raise RuntimeError(f"npm install {NODE_JOSE} failed: {installed.stderr[-2000:]}")
    # Node resolves `jose` from the script's own folder: the script runs from the cache.
    shutil.copyfile(SCRIPT, folder / SCRIPT.name)
    return folder


def verify_with_node_jose(folder: Path, jwks: dict[str, Any], tokens: list[str]) -> list[bool]:
    """Whether Node's jose accepts each token, given only `jwks`."""
    done = subprocess.run(
        ["node", str(folder / SCRIPT.name)],
        input=json.dumps({"jwks": jwks, "tokens": tokens}),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [result["ok"] for result in json.loads(done.stdout)]
