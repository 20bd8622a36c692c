#!/usr/bin/env bash
# Installs what the storage tests and the sources benchmark need, on a fresh Debian machine as root.
# Idempotent and quiet. Called by .ci/run; safe to run by hand.
#   - .venv/ with gcp-storage-emulator (the GCS emulator; no usable one ships on npm), moto[server]
#     (an S3 that keeps the flexible checksums uploads carry, which s3rver drops) and webdataset (a real reader
#     of the tar shards packing writes)
#   - nats-server (Debian), for the cluster pull-mode tests and `npm run bench:cluster`
#   - rclone (Debian), for `npm run bench:sources` only: a failure here is tolerated
#   - fincore (Debian util-linux-extra, not on minimal images), which the page-cache tests read residency with
#   - script (Debian bsdutils), which gives the CLI a terminal in the tests of its live progress lines
# s3rver and Azurite come from npm (devDependencies), nothing to do for them here.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf 'install-emulators: %s\n' "$*"; }

need_apt=()
if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' >/dev/null 2>&1; then
  need_apt+=(python3-venv)
fi
command -v python3 >/dev/null 2>&1 || need_apt+=(python3 python3-venv)
command -v fincore >/dev/null 2>&1 || need_apt+=(util-linux-extra)
command -v script >/dev/null 2>&1 || need_apt+=(bsdutils)
if ((${#need_apt[@]})); then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if [ ! -x .venv/bin/gcp-storage-emulator ]; then
  log "creating .venv with gcp-storage-emulator"
  python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null
  .venv/bin/pip install --quiet --disable-pip-version-check gcp-storage-emulator
fi
.venv/bin/gcp-storage-emulator --help >/dev/null
log "gcp-storage-emulator ready (.venv/bin/gcp-storage-emulator)"

if [ ! -x .venv/bin/moto_server ]; then
  log "installing moto[server] into .venv"
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]'
fi
.venv/bin/moto_server --help >/dev/null
log "moto ready (.venv/bin/moto_server)"

if ! .venv/bin/python -c 'import webdataset' >/dev/null 2>&1; then
  log "installing webdataset into .venv (the packed-shard tests read shards with it)"
  .venv/bin/pip install --quiet --disable-pip-version-check webdataset
fi
.venv/bin/python -c 'import webdataset' >/dev/null
log "webdataset ready (.venv/bin/python -c 'import webdataset')"

# nats-server (Debian) for cluster pull mode's tests; they find it at /usr/sbin/nats-server (not on every PATH).
if [ ! -x /usr/sbin/nats-server ]; then
  log "apt-get install nats-server"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq nats-server >/dev/null
fi
/usr/sbin/nats-server --version >/dev/null
log "nats-server ready (/usr/sbin/nats-server)"

if ! command -v rclone >/dev/null 2>&1; then
  log "apt-get install rclone (benchmark only)"
  export DEBIAN_FRONTEND=noninteractive
  if ! { apt-get update -qq && apt-get install -y -qq rclone >/dev/null; }; then
    log "warning: rclone could not be installed; npm run bench:sources will skip the rclone comparison"
  fi
fi
exit 0
