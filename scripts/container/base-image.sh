#!/usr/bin/env bash
# Makes the Dockerfile's base image (its FROM, node:24-bookworm-slim) locally, for machines that
# reach Debian's mirror and the npm registry but not Docker Hub:
#
#   1. debootstrap --variant=minbase of Debian $DEBIAN_SUITE (versions.sh), with the suite's
#      updates and security fixes applied and, as in Debian's slim images, no docs, man pages or
#      locales installed by later apt-get steps; kept as a tarball in the cache;
#   2. Node.js $NODE_VERSION and npm $NPM_VERSION from the npm registry into /usr/local
#      (install-node.sh: the same Node CI tests with);
#   3. this machine's CA bundle as /etc/ssl/certs/ca-certificates.crt, which npm in the image uses
#      (/usr/local/etc/npmrc): the registry is reached through a TLS proxy whose CA only the
#      machine's bundle has;
#   4. a `node` user and group, uid and gid 1000, as in the official image;
#   5. `docker import` as one layer with PATH and CMD ["node"], tagged as the Dockerfile's FROM.
#
#   scripts/container/base-image.sh            # make it unless an up-to-date one is there
#   scripts/container/base-image.sh --refresh  # debootstrap again (new Debian point release)
#
# The image carries a label with a hash of its inputs (this script, versions.sh, install-node.sh,
# the CA bundle, the cached rootfs): a second run with the same inputs finds it and stops in a
# second. Cache: $CURVATURE_CACHE (default /var/cache/curvature-service). Needs root, debootstrap
# and a Docker engine (started here when none answers: dockerd.sh).
#
# The tag shadows Docker Hub's image of the same name on purpose: the Dockerfile stays the one a
# machine with Docker Hub builds unchanged. This image is not that image (its CA bundle is this
# machine's); push the service image built on it nowhere but where this machine's CA is trusted.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
# shellcheck source=versions.sh
. "$here/versions.sh"
mirror=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
security=${DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
cache=${CURVATURE_CACHE:-/var/cache/curvature-service}
refresh=0
[ "${1:-}" = "--refresh" ] && refresh=1
say() { echo "[base-image] $*"; }
# Unmounts whatever is mounted below a folder (debootstrap leaves proc and sys mounted when it fails).
unmount_under() { awk -v d="$1/" 'index($2, d) == 1 { print $2 }' /proc/mounts | sort -r | xargs -r -n1 umount -l; }
t0=$(date +%s)

# Every external FROM of the Dockerfile names the same image: that is the tag to make.
mapfile -t bases < <(awk 'toupper($1) == "FROM" { print $2 }' "$repo/Dockerfile" | sort -u |
  grep -vxF -f <(awk 'toupper($1) == "FROM" && toupper($3) == "AS" { print $4 }' "$repo/Dockerfile") || true)
[ ${#bases[@]} -eq 1 ] || { echo "the Dockerfile's stages start FROM ${bases[*]:-nothing}: expected one base image" >&2; exit 1; }
tag=${bases[0]}
[ "$(id -u)" = 0 ] || { echo "debootstrap needs root" >&2; exit 1; }
"$here/dockerd.sh"

# ---- 1. the Debian rootfs, cached as a tarball
mkdir -p "$cache"
rootfs_tar="$cache/rootfs-$DEBIAN_SUITE-minbase.tar.gz"
if [ $refresh = 1 ] || [ ! -s "$rootfs_tar" ]; then
  command -v debootstrap >/dev/null || { echo "debootstrap not found: apt-get install -y debootstrap" >&2; exit 1; }
  work=$(mktemp -d "$cache/debootstrap.XXXXXX")
  trap 'unmount_under "$work"; rm -rf "$work"' EXIT
  say "debootstrap --variant=minbase $DEBIAN_SUITE from $mirror"
  debootstrap --variant=minbase "$DEBIAN_SUITE" "$work" "$mirror" >"$cache/debootstrap.log" 2>&1 ||
    { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
  cat >"$work/etc/apt/sources.list" <<SOURCES
deb $mirror $DEBIAN_SUITE main
deb $mirror $DEBIAN_SUITE-updates main
deb $security $DEBIAN_SUITE-security main
SOURCES
  # Security and point-release fixes, as Debian's own images carry them.
  cp /etc/resolv.conf "$work/etc/resolv.conf"
  mount -t proc proc "$work/proc"
  chroot "$work" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get -y -qq upgrade >/dev/null && apt-get clean' \
    >>"$cache/debootstrap.log" 2>&1 || { tail -n 20 "$cache/debootstrap.log" >&2; exit 1; }
  unmount_under "$work"
  rm -rf "$work"/var/lib/apt/lists/* "$work"/var/cache/apt/*.bin "$work"/var/log/*.log "$work"/var/log/apt/* \
    "$work"/tmp/* "$work"/root/.bash_history
  : >"$work/etc/resolv.conf"
  tar -C "$work" --numeric-owner -czf "$rootfs_tar.tmp" .
  mv "$rootfs_tar.tmp" "$rootfs_tar"
  rm -rf "$work"
  trap - EXIT
  say "rootfs cached: $rootfs_tar ($(du -h "$rootfs_tar" | cut -f1))"
fi

# ---- is the image there already, made from the same inputs?
inputs=$(cat "$here/base-image.sh" "$here/versions.sh" "$here/install-node.sh" /etc/ssl/certs/ca-certificates.crt |
  sha256sum | cut -c1-16)-$(sha256sum "$rootfs_tar" | cut -c1-16)
have=$(docker image inspect --format '{{index .Config.Labels "curvature.base.inputs"}}' "$tag" 2>/dev/null || true)
if [ "$have" = "$inputs" ]; then
  say "$tag is up to date (inputs $inputs), $(( $(date +%s) - t0 )) s"
  exit 0
fi

# ---- 2-4. Node, npm, the CA bundle, the node user
root=$(mktemp -d "$cache/rootfs.XXXXXX")
trap 'rm -rf "$root"' EXIT
tar -C "$root" --numeric-owner -xzf "$rootfs_tar"
# As Debian's own images: later apt-get installs leave out docs, man pages and translations, and
# apt keeps neither the downloaded .debs nor its binary caches (else each layer carries ~100 MB).
mkdir -p "$root/etc/dpkg/dpkg.cfg.d" "$root/etc/apt/apt.conf.d"
cat >"$root/etc/dpkg/dpkg.cfg.d/docker-slim" <<'SLIM'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/lintian/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/locale/*
SLIM
cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'CLEAN'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
Acquire::Languages "none";
APT::AutoRemove::SuggestsImportant "false";
CLEAN
find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete
find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete
rm -rf "$root/usr/share/man"/* "$root/usr/share/info"/* "$root/usr/share/locale"/* "$root"/var/cache/apt/*.bin
"$here/install-node.sh" "$root/usr/local" "$cache/npm-tarballs"
install -D -m 0644 /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
chroot "$root" sh -c 'groupadd --gid 1000 node && useradd --uid 1000 --gid node --shell /bin/bash --create-home node'
chroot "$root" /usr/local/bin/node -e 'if (process.versions.node !== process.argv[1]) process.exit(1)' "$NODE_VERSION"
rm -rf "$root"/var/log/*.log "$root"/tmp/*

# ---- 5. import as one layer
say "importing as $tag"
tar -C "$root" --numeric-owner -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change "ENV NODE_VERSION=$NODE_VERSION" \
  --change 'CMD ["node"]' \
  --change "LABEL curvature.base.inputs=$inputs" \
  --change "LABEL org.opencontainers.image.description=\"Debian $DEBIAN_SUITE minbase, Node $NODE_VERSION, npm $NPM_VERSION, made by scripts/container/base-image.sh\"" \
  - "$tag" >/dev/null
say "$tag: $(docker image inspect --format '{{.Size}}' "$tag" | awk '{ printf "%.0f MB", $1 / 1e6 }'), $(( $(date +%s) - t0 )) s"
