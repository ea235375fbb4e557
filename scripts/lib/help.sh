# shellcheck shell=bash
# Sourced by scripts that start services or migrate: `--help` (or `-h`) anywhere in the
# arguments prints the usage of python module $1 and exits, before anything else runs.
# The caller has sourced venv.sh (the module's imports need the project installed).

_help_requested() {
  local module=$1 arg
  shift
  for arg in "$@"; do
    if [[ $arg == -h || $arg == --help ]]; then
      exec python -m "$module" --help
    fi
  done
}
