# shellcheck shell=bash
# Sourced by scripts/bench after venv.sh: FastAPI-Users, one of the bench's baselines, in a
# venv of its own (.venv-fastapi-users), because fastapi-users-db-sqlalchemy pins SQLAlchemy
# below the 2.1 the service needs. As in venv.sh, pip runs only when the requirements file
# changed (a stamp inside the venv), so a fresh venv always installs. Exports
# FASTAPI_USERS_PYTHON, the interpreter scripts/bench serves that baseline with.

_fastapi_users_venv() {
  local root venv requirements stamp hash
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  venv="$root/.venv-fastapi-users"
  requirements="$root/scripts/benchmarks/fastapi_users_requirements.txt"
  stamp="$venv/.installed.sha256"

  # bin/pip is missing when an earlier `python3 -m venv` died half way
  if [[ ! -x $venv/bin/pip ]]; then
    rm -rf "$venv"
    python3 -m venv "$venv"
  fi
  hash=$(sha256sum "$requirements" | cut -d' ' -f1)
  if [[ $(cat "$stamp" 2>/dev/null) != "$hash" ]]; then
    echo "venv: installing FastAPI-Users into .venv-fastapi-users (scripts/bench's baseline; once)" >&2
    PYTHONUNBUFFERED=1 "$venv/bin/python" -m pip install --disable-pip-version-check \
      -r "$requirements" >&2
    echo "$hash" >"$stamp"
  fi
  export FASTAPI_USERS_PYTHON="$venv/bin/python"
}

_fastapi_users_venv
