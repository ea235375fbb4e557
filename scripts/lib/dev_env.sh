# shellcheck shell=bash
# Sourced by the scripts that serve the app on this machine (scripts/run, scripts/bench):
# development defaults for what a deploy must set itself.
# - APP_ENV=development unless set (the app's own default is production).
# - JWT_SECRET_KEY, unless set, from a random key made once and kept in
#   $DEV_KEY_FILE (default .secrets/jwt_secret_key, git-ignored, mode 0600), so a
#   restart keeps sessions valid. Never in production: there the app refuses to start
#   without a key of its own.

export APP_ENV="${APP_ENV:-development}"

_dev_key_setup() {
  local root file tmp
  root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
  file="${DEV_KEY_FILE:-$root/.secrets/jwt_secret_key}"
  if [[ ! -s $file ]]; then
    (umask 077 && mkdir -p "$(dirname "$file")")
    tmp=$(mktemp "$file.XXXXXX")  # mktemp creates it 0600
    python3 -c 'import secrets; print(secrets.token_urlsafe(48))' >"$tmp"
    # link(2) fails when the file exists: a second start racing this one keeps the first key
    ln "$tmp" "$file" 2>/dev/null || [[ -e $file ]] || mv "$tmp" "$file"
    rm -f "$tmp"
  fi
  JWT_SECRET_KEY=$(<"$file")
  export JWT_SECRET_KEY
}

if [[ -z ${JWT_SECRET_KEY:-} && $APP_ENV == @(development|test) ]]; then
  _dev_key_setup
fi
