# shellcheck shell=bash
# Sourced: make sure the load generator wrk (Debian's package) is installed.
if ! command -v wrk >/dev/null; then
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk
  else
    echo "wrk is needed: sudo apt-get install wrk" >&2
    exit 1
  fi
fi
