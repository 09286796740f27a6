#!/usr/bin/env bash
# Makes sure a Docker engine answers: when `docker info` fails, starts Debian's dockerd (package
# docker.io) in the background with the overlay2 storage driver, falling back to vfs where the
# filesystem cannot take overlay2 (vfs copies every layer in full: slower, more disk), and waits
# until `docker info` answers. The engine keeps running after this script: CI starts it once for
# the whole run. Its log: $DOCKERD_LOG (default /var/log/curvature-dockerd.log).
set -euo pipefail
docker info >/dev/null 2>&1 && exit 0
command -v dockerd >/dev/null || { echo "dockerd not found: apt-get install -y docker.io" >&2; exit 1; }
log=${DOCKERD_LOG:-/var/log/curvature-dockerd.log}
# A machine restarted under a dead engine keeps its pid file, and dockerd refuses to start then.
if [ -f /var/run/docker.pid ] && ! kill -0 "$(cat /var/run/docker.pid)" 2>/dev/null; then
  rm -f /var/run/docker.pid
fi
for driver in ${DOCKERD_STORAGE_DRIVERS:-overlay2 vfs}; do
  echo "[dockerd] starting dockerd --storage-driver=$driver (log: $log)"
  setsid dockerd --storage-driver="$driver" >>"$log" 2>&1 </dev/null &
  pid=$!
  for _ in $(seq 60); do
    if docker info >/dev/null 2>&1; then
      echo "[dockerd] engine up: $(docker info --format '{{.ServerVersion}}, storage {{.Driver}}')"
      exit 0
    fi
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  echo "[dockerd] dockerd --storage-driver=$driver did not come up; last lines of its log:" >&2
  tail -n 5 "$log" >&2
  { kill "$pid" && wait "$pid"; } 2>/dev/null || true
done
exit 1
