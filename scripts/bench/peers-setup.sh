#!/usr/bin/env bash
# Makes .peers/, the virtualenv of the benchmark's peers (PyTorch 2 with torch.func, JAX), from
# scripts/bench/peers-requirements.txt. `npm run bench` uses .peers/bin/python when it exists and
# falls back to Debian's /usr/bin/python3 (PyTorch 1.13 with functorch, no JAX) otherwise.
#
# The packages come from the package sources configured for pip on this machine (pip.conf:
# find-links and extra index URLs on local disk); the public index is not reachable here, so the
# default index is pointed at nothing and no retries are made (PIP_INDEX_URL overrides that for a
# machine that has one). Usage: bash scripts/bench/peers-setup.sh [--force]  (--force: make it anew)
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON=${PEERS_PYTHON:-/usr/bin/python3}
if [[ "${1:-}" == "--force" ]]; then rm -rf .peers; fi
if [[ ! -x .peers/bin/python ]]; then
  "$PYTHON" -m venv .peers
fi
export PIP_INDEX_URL=${PIP_INDEX_URL:-file:///nonexistent/}
.peers/bin/pip install --retries 0 --disable-pip-version-check -q -r scripts/bench/peers-requirements.txt
.peers/bin/python scripts/bench/peers.py versions
