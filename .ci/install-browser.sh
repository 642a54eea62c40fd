#!/usr/bin/env bash
# Headless Chromium for tests/browser (Playwright drives it through executable_path).
# Debian packages only: `playwright install` downloads browsers from a CDN and is never run.
set -euo pipefail

if [ -x /usr/bin/chromium ]; then
  echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null | head -n 1) already installed"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q chromium chromium-driver

if [ ! -x /usr/bin/chromium ]; then
  echo "install-browser: /usr/bin/chromium missing after apt-get install" >&2
  exit 1
fi
echo "install-browser: $(/usr/bin/chromium --version 2>/dev/null | head -n 1)"
