#!/usr/bin/env bash
# Make sure the headless Chromium the browser tests drive (tests/browser) is installed.
# Debian's package, through apt: Playwright's own browser download cannot reach the internet
# here. Quiet when it is present; fails loudly when it cannot be installed (tests never skip).
set -euo pipefail
CHROMIUM=/usr/bin/chromium
[ -x "$CHROMIUM" ] && exit 0
command -v apt-get >/dev/null || { echo "ensure-browser: no $CHROMIUM and no apt-get to install it" >&2; exit 1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "ensure-browser: installing Debian's chromium (for tests/browser)"
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends chromium; } >/tmp/ensure-browser.log 2>&1; then
  tail -20 /tmp/ensure-browser.log >&2
  echo "ensure-browser: apt-get install chromium failed (log: /tmp/ensure-browser.log)" >&2
  exit 1
fi
[ -x "$CHROMIUM" ] || { echo "ensure-browser: chromium installed but $CHROMIUM is missing" >&2; exit 1; }
echo "ensure-browser: $("$CHROMIUM" --version 2>/dev/null || echo chromium) installed"
