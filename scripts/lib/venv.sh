# shellcheck shell=bash
# Sourced by scripts/run and scripts/test: a .venv in the repo root with the project
# installed editable and activated. Reinstalling is slow, so it happens only when
# pyproject.toml changed; the stamp lives inside .venv so a fresh venv always installs.

_venv_setup() {
  local root venv stamp hash
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  venv="$root/.venv"
  stamp="$venv/.pyproject.sha256"

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
  if [[ $(cat "$stamp" 2>/dev/null) != "$hash" ]]; then
    echo "venv: installing the project into .venv" >&2
    (cd "$root" && "$venv/bin/python" -m pip install -q --disable-pip-version-check -e '.[dev]')
    echo "$hash" >"$stamp"
  fi

  # shellcheck source=/dev/null
  source "$venv/bin/activate"
}

_venv_setup
