#!/usr/bin/env bash
# bubblewrap (and util-linux's prlimit/setpriv) for the grading sandbox, from Debian's packages.
set -euo pipefail
if [ ! -x /usr/bin/bwrap ] || [ ! -x /usr/bin/prlimit ] || [ ! -x /usr/bin/setpriv ]; then
  echo "[setup] installing Debian bubblewrap + util-linux (the grading sandbox)"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq bubblewrap util-linux >/dev/null
fi
