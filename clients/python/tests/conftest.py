"""The services under test: their URLs come from the environment, set by
test/clients/python-client.test.ts, which starts real servers:

* CURVATURE_SERVICE_URL: the service with its default configuration (every test needs it; without
  it they fail and say so);
* CURVATURE_KEYED_SERVICE_URL and CURVATURE_API_KEY: one started with API_KEYS;
* CURVATURE_BUSY_SERVICE_URL and CURVATURE_BUSY_TIMEOUT_MS: one with a single worker, no queue
  (WORKERS=1, QUEUE_LIMIT=0) and a short REQUEST_TIMEOUT_MS, for the 503 OVERLOADED and TIMEOUT tests.
* CURVATURE_NODE: the node that runs the service, for test_jobs.py's own service processes (killed and
  started again: a job lost with its replica); else ``node`` on PATH.

The package is imported from the source tree (clients/python); test_package.py installs it into
fresh virtualenvs and checks the installed copy.
"""
import json
import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
PACKAGE_ROOT = HERE.parent
sys.path.insert(0, str(PACKAGE_ROOT))  # the curvature_client package
FIXTURES = HERE.parents[2] / "test" / "fixtures"


def _env_or_fail(name: str, why: str) -> str:
    value = os.environ.get(name)
    if not value:
        pytest.fail(f"{name} is not set: {why}")
    return value


@pytest.fixture(scope="session")
def service_url() -> str:
    return _env_or_fail("CURVATURE_SERVICE_URL", "start the service (npm start) and point it there, "
                        "or run these tests through `npm test`, which starts one")


@pytest.fixture(scope="session")
def busy_service():
    """(url, timeout_ms) of the single-worker, no-queue, short-timeout service."""
    url = os.environ.get("CURVATURE_BUSY_SERVICE_URL")
    ms = os.environ.get("CURVATURE_BUSY_TIMEOUT_MS")
    if not url or not ms:
        pytest.skip("CURVATURE_BUSY_SERVICE_URL and CURVATURE_BUSY_TIMEOUT_MS name a service started with WORKERS=1, "
                    "QUEUE_LIMIT=0 and a short REQUEST_TIMEOUT_MS (npm test starts one)")
    return url, int(ms)


def _cases(folder: pathlib.Path):
    cases = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    assert cases, f"no reference cases in {folder}"
    return cases


CASES = _cases(FIXTURES)
"""test/fixtures/*.json: the first eight reference cases (sum, targets, biases, the first activations)."""
MODEL_CASES = _cases(FIXTURES / "models")
"""test/fixtures/models/*.json: logits, labels, reduction, layers without bias, gelu/silu/leaky-relu/elu."""
SCALE_CASES = _cases(FIXTURES / "scale")
"""test/fixtures/scale/*.json: among others, `selections` (parameters: {layers}) with their sub-blocks."""


def relative_error(actual, expected) -> float:
    import numpy as np
    actual = np.asarray(actual, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape}, expected {expected.shape}"
    scale = max(1.0, float(np.max(np.abs(expected)))) if expected.size else 1.0
    return float(np.max(np.abs(actual - expected))) / scale if expected.size else 0.0


def close(actual, expected, tol=1e-9):
    """max |actual - expected| <= tol * max(1, max |expected|), with the same shape."""
    err = relative_error(actual, expected)
    assert err <= tol, f"relative error {err:.3e} > {tol:.0e}"
    return err
