# shellcheck shell=bash
# Sourced by the scripts: a .venv in the repo root with the project installed editable
# and activated. VENV_EXTRAS names what the caller needs besides the project: scripts/run
# sets it empty (serving needs no test tools), scripts/bench `dev,bench` (its baselines'
# servers), the others default to `dev`. Installing is slow, so it happens only when
# pyproject.toml changed or the extras are missing: one stamp per extras inside .venv, so
# a fresh venv always installs.

_venv_setup() {
  local root venv extras stamp hash spec
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  venv="$root/.venv"
  extras=${VENV_EXTRAS-dev}
  stamp="$venv/.installed-${extras:-serving}.sha256"
  spec=.${extras:+[$extras]}

  # bin/pip is missing when an earlier `python3 -m venv` died half way
  if [[ ! -x $venv/bin/pip ]]; then
    # Debian ships venv's pip bootstrap (ensurepip) as a separate package
    if ! python3 -c 'import ensurepip' 2>/dev/null && [[ $EUID -eq 0 ]]; then
      apt-get update -qq
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi

  hash=$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)
  # The dev extras include everything serving needs.
  if [[ $(cat "$stamp" 2>/dev/null) != "$hash" && ($extras != "" ||
    $(cat "$venv/.installed-dev.sha256" 2>/dev/null) != "$hash") ]]; then
    echo "venv: installing $spec into .venv (the first time takes a minute or two; pip's progress follows)" >&2
    # pip's own progress (a line per package, bars on a terminal), on stderr like ours;
    # unbuffered, so a log file shows each line when it happens too.
    (cd "$root" && PYTHONUNBUFFERED=1 "$venv/bin/python" -m pip install \
      --disable-pip-version-check -e "$spec") >&2
    echo "$hash" >"$stamp"
  fi

  # shellcheck source=/dev/null
  source "$venv/bin/activate"
}

_venv_setup
