#!/usr/bin/env bash
# Installs what the end-to-end tests need on a fresh Debian machine as root: Debian's Chromium
# (driven by playwright-core through executablePath; Playwright never downloads a browser) and
# fonts so screenshots render text. Idempotent and quiet. Called by .ci/run; safe to run by hand.
set -euo pipefail

log() { printf 'install-browser: %s\n' "$*"; }

need=()
[ -x /usr/bin/chromium ] || need+=(chromium)
# Text in screenshots: DejaVu (Latin) and Noto emoji-free sans; present on most desktops, not on minimal images.
dpkg-query -W -f='${Status}' fonts-dejavu-core 2>/dev/null | grep -q 'install ok installed' || need+=(fonts-dejavu-core)
dpkg-query -W -f='${Status}' fonts-liberation 2>/dev/null | grep -q 'install ok installed' || need+=(fonts-liberation)

if ((${#need[@]})); then
  log "apt-get install ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

/usr/bin/chromium --version >/dev/null 2>&1 || { log "error: /usr/bin/chromium does not run"; exit 1; }
log "$(/usr/bin/chromium --version 2>/dev/null) ready at /usr/bin/chromium"
exit 0
