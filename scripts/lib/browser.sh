# shellcheck shell=bash
# Sourced by scripts/test: the browser example's test drives Debian's chromium through
# chromium-driver. Both are installed when missing and we are root; otherwise that one
# test is skipped, saying what to install.

_browser_setup() {
  command -v chromium >/dev/null && command -v chromedriver >/dev/null && return 0
  if [[ $EUID -ne 0 ]]; then
    echo "browser: chromium or chromium-driver is missing (apt-get install chromium chromium-driver, as root); the browser test will be skipped" >&2
    return 0
  fi
  echo "browser: installing chromium and chromium-driver" >&2
  if ! { apt-get update -qq &&
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      chromium chromium-driver >/dev/null; }; then
    echo "browser: apt-get could not install chromium and chromium-driver; the browser test will be skipped" >&2
  fi
}

_browser_setup
