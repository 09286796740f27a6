"""Retries against a live service with one worker, no queue and a short REQUEST_TIMEOUT_MS
(test/clients/python-client.test.ts starts it): a request that arrives while another computes gets
503 OVERLOADED and is retried after Retry-After; a computation past the timeout gets 503 TIMEOUT
and is raised at once. The service's own counters (GET /health) say how many requests it refused
and timed out, independently of the client's log."""
import logging
import threading
import time

import numpy as np
import pytest
import requests

from conftest import CASES, close
from curvature_client import CurvatureClient, CurvatureServiceError

# A finite-difference Hessian with N * W^2 = 2000 * 961^2 = 1.8e9 (under MAX_FINITE_DIFFERENCE_COST):
# about 10 s of computation on this machine, far past the busy service's timeout (1.5 s).
RNG = np.random.default_rng(11)
D, M = 30, 30
SLOW_NET = {"layers": [
    {"weights": (RNG.standard_normal((M, D)) / np.sqrt(D)).tolist(), "bias": [0.0] * M, "activation": "tanh"},
    {"weights": (RNG.standard_normal((1, M)) / np.sqrt(M)).tolist(), "bias": [0.0], "activation": "identity"}]}
SLOW_X = RNG.standard_normal((2000, D))
SLOW_T = RNG.standard_normal((2000, 1))


def pool(url):
    return requests.get(f"{url}/health", timeout=30).json()["pool"]


def slow_request(client):
    return client.hessian(SLOW_NET, SLOW_X, SLOW_T, "sum-of-squares", method="finite-difference")


def retries(caplog):
    return [r for r in caplog.records if r.name == "curvature_client" and "retry" in r.getMessage()]


def test_a_live_timeout_is_raised_at_once_and_not_retried(busy_service, caplog):
    url, timeout_ms = busy_service
    caplog.set_level(logging.INFO, logger="curvature_client")
    before = pool(url)
    started = time.monotonic()
    with pytest.raises(CurvatureServiceError) as e:
        slow_request(CurvatureClient(url, max_retries=5))
    elapsed = time.monotonic() - started
    after = pool(url)
    assert e.value.status == 503 and e.value.code == "TIMEOUT", str(e.value)
    assert f"{timeout_ms} ms" in e.value.detail and "REQUEST_TIMEOUT_MS" in e.value.detail
    assert timeout_ms / 1000 <= elapsed < timeout_ms / 1000 + 5, f"answered after {elapsed:.2f} s"
    assert after["timedOutTasks"] - before["timedOutTasks"] == 1  # one request reached the service, once
    assert after["completedTasks"] == before["completedTasks"]
    assert retries(caplog) == []


def test_a_live_overloaded_answer_is_retried_until_the_worker_is_free(busy_service, caplog):
    url, timeout_ms = busy_service
    case = CASES[0]
    r = case["request"]
    caplog.set_level(logging.INFO, logger="curvature_client")
    # wait for the previous test's worker to be free
    deadline = time.monotonic() + 30
    while pool(url)["busyWorkers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    before = pool(url)
    outcome = {}

    def occupy():
        try:
            slow_request(CurvatureClient(url, max_retries=0))
        except CurvatureServiceError as err:
            outcome["error"] = err

    holder = threading.Thread(target=occupy)
    holder.start()
    try:
        deadline = time.monotonic() + 10
        while not pool(url)["busyWorkers"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert pool(url)["busyWorkers"] == 1, "the slow request never occupied the worker"
        h = CurvatureClient(url, max_retries=10, max_retry_wait=2).hessian(r["network"], np.array(r["inputs"]),
                                                                          np.array(r["targets"]), r["loss"])
    finally:
        holder.join(60)
    after = pool(url)
    close(h, case["expected"]["hessian"])
    waits = [rec.wait for rec in retries(caplog)]
    rejected = after["rejectedTasks"] - before["rejectedTasks"]
    assert rejected >= 1, "the service never refused the second request: nothing was tested"
    assert len(waits) == rejected, f"{rejected} refusals but {len(waits)} retries logged"
    assert all(1.0 <= w <= 2.0 for w in waits), waits  # the service's Retry-After (>= 1 s), capped at 2 s
    assert after["completedTasks"] - before["completedTasks"] == 1
    # the request that held the worker timed out, and was not retried either
    assert outcome["error"].code == "TIMEOUT"
    assert after["timedOutTasks"] - before["timedOutTasks"] == 1
