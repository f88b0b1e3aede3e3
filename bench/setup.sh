#!/usr/bin/env bash
# Installs what `npm run bench` needs besides node_modules: nginx with its stream module (the
# mesh's peer) and wrk (the load), from Debian's packages. Needs root on a fresh machine; does
# nothing when they are there. nginx runs only during the bench, from its own temp config: a
# system nginx the package may have started is stopped again.
set -euo pipefail
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || need+=(nginx)
[ -f /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=(libnginx-mod-stream)
[ "${#need[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "bench/setup.sh: install ${need[*]} (Debian packages), e.g. sudo apt-get install -y ${need[*]}" >&2
  exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
service nginx stop >/dev/null 2>&1 || true
