"""The service under test: its URL comes from CURVATURE_SERVICE_URL (test/clients/python-client.test.ts
starts a real server and sets it). Without it the tests cannot run and say so."""
import json
import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))  # curvature_client.py
FIXTURES = HERE.parents[2] / "test" / "fixtures"


@pytest.fixture(scope="session")
def service_url() -> str:
    url = os.environ.get("CURVATURE_SERVICE_URL")
    if not url:
        pytest.fail("CURVATURE_SERVICE_URL is not set: start the service (npm start) and point it there, "
                    "or run these tests through `npm test`, which starts one")
    return url


def reference_cases():
    cases = [json.loads(p.read_text()) for p in sorted(FIXTURES.glob("*.json"))]
    assert cases, f"no reference cases in {FIXTURES}"
    return cases


CASES = reference_cases()
