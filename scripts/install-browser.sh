#!/usr/bin/env bash
# Debian's Chromium for the browser tests (never a browser download by Playwright).
set -euo pipefail
if [ ! -x /usr/bin/chromium ]; then
  echo "[setup] installing Debian chromium + chromium-driver"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium chromium-driver >/dev/null
fi
