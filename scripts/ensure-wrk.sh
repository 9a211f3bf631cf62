#!/usr/bin/env bash
# Make sure wrk, the HTTP load generator of the bench's api_reads part, is installed.
# Debian's package, through apt (as ensure-browser.sh does for chromium). Quiet when present;
# fails loudly when it cannot be installed (the part then reports the error).
set -euo pipefail
WRK=$(command -v wrk || true)
[ -n "$WRK" ] && exit 0
command -v apt-get >/dev/null || { echo "ensure-wrk: no wrk and no apt-get to install it" >&2; exit 1; }
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "ensure-wrk: installing Debian's wrk (for the bench's api_reads part)" >&2
export DEBIAN_FRONTEND=noninteractive
if ! { $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends wrk; } >/tmp/ensure-wrk.log 2>&1; then
  tail -20 /tmp/ensure-wrk.log >&2
  echo "ensure-wrk: apt-get install wrk failed (log: /tmp/ensure-wrk.log)" >&2
  exit 1
fi
command -v wrk >/dev/null || { echo "ensure-wrk: wrk installed but not on PATH" >&2; exit 1; }
echo "ensure-wrk: $(wrk -v 2>&1 | head -1) installed" >&2
