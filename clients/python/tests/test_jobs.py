"""Requests as jobs (``Prefer: respond-async``) against live services: the answer equals the
reference and the synchronous answer, the computation's bar moves monotonically to 100 %, the size
threshold chooses, refusals are those of the synchronous request, a cancelled job (DELETE, or Ctrl-C
while waiting) frees its worker, API keys, and a job lost with its replica (a real server process
killed and started again on the same port) is sent again once."""
import io
import logging
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time

import numpy as np
import pytest
import requests

from conftest import CASES, close
from curvature_client import CurvatureClient, CurvatureServiceError, jobs

ROOT = pathlib.Path(__file__).resolve().parents[3]

# A finite-difference Hessian of N * W^2 = 600 * 961^2 = 5.5e8: a few seconds of computation here,
# long enough to be seen running, cancelled or lost.
RNG = np.random.default_rng(15)
D, M = 30, 30
SLOW_NET = {"layers": [
    {"weights": (RNG.standard_normal((M, D)) / np.sqrt(D)).tolist(), "bias": [0.0] * M, "activation": "tanh"},
    {"weights": (RNG.standard_normal((1, M)) / np.sqrt(M)).tolist(), "bias": [0.0], "activation": "identity"}]}
SLOW_X = RNG.standard_normal((600, D))
SLOW_T = RNG.standard_normal((600, 1))
SLOW_W = M * (D + 1) + (M + 1)

# A dense exact Hessian big enough for several polls (W = 2043, N = 1500: about 6e9 flops).
MID_NET = {"layers": [
    {"weights": (RNG.standard_normal((60, 30)) / np.sqrt(30)).tolist(), "bias": [0.0] * 60, "activation": "tanh"},
    {"weights": (RNG.standard_normal((3, 60)) / np.sqrt(60)).tolist(), "bias": [0.0] * 3, "activation": "identity"}]}
MID_X = RNG.standard_normal((1500, 30))
MID_T = RNG.standard_normal((1500, 3))


def data(case):
    r = case["request"]
    return r["network"], np.array(r["inputs"]), np.array(r["targets"]), r["loss"]


def job_logs(caplog):
    return [r.getMessage() for r in caplog.records if r.name == "curvature_client" and "running as job" in r.getMessage()]


def pool(url):
    return requests.get(f"{url}/health", timeout=30).json()["pool"]


def wait_for(predicate, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.02)
    pytest.fail(f"{what}: not within {seconds} s")


def request_parts(client, net, x, t, loss, method="finite-difference"):
    """The body and .npy parts the client sends for a Hessian (its own encoding)."""
    from curvature_client._client import _Data
    body = client._body(net, loss, "sum", None, {"method": method})
    return body, _Data(x, t).parts(None)


@pytest.mark.parametrize("case", CASES[:3], ids=[c["name"] for c in CASES[:3]])
def test_a_job_answers_the_reference_and_the_synchronous_answer(service_url, case, caplog):
    caplog.set_level(logging.INFO, logger="curvature_client")
    net, x, t, loss = data(case)
    e = case["expected"]
    as_job, at_once = CurvatureClient(service_url, jobs=True, job_poll=0.02), CurvatureClient(service_url, jobs=False)
    H = as_job.hessian(net, x, t, loss)
    close(H, e["hessian"])
    np.testing.assert_array_equal(H, at_once.hessian(net, x, t, loss))
    inv, logdet = as_job.hessian_inverse(net, x, t, loss, damping=case["damping"])
    close(inv, e["inverseOuterProduct"], 1e-8)
    assert logdet == pytest.approx(e["logDeterminant"], rel=1e-9, abs=1e-9)
    close(as_job.hessian_vector_product(net, x, t, loss, case["vector"]), e["hessianVectorProduct"])
    close(as_job.jacobian(net, x), e["inputJacobian"])
    # answers of several arrays (.npz) too: the blocks, the KFAC factors
    blocks = as_job.hessian(net, x, t, loss, structure="block-diagonal")
    assert blocks.keys() == at_once.hessian(net, x, t, loss, structure="block-diagonal").keys()
    for layer, block in at_once.hessian(net, x, t, loss, structure="block-diagonal").items():
        np.testing.assert_array_equal(blocks[layer], block)
    k_job, k_now = as_job.kfac(net, x, t, loss), at_once.kfac(net, x, t, loss)
    for a, b in zip(k_job.factors, k_now.factors):
        np.testing.assert_array_equal(a.input_factor, b.input_factor)
        np.testing.assert_array_equal(a.output_factor, b.output_factor)
    # every one of the 6 requests went as a job, and none of the synchronous ones
    assert len(job_logs(caplog)) == 6, job_logs(caplog)


def test_the_computation_bar_and_the_progress_move_monotonically_to_done(service_url, capsys):
    client = CurvatureClient(service_url, jobs=True, progress=True, job_poll=0.02, progress_threshold=1 << 40)
    H = client.hessian(MID_NET, MID_X, MID_T, "sum-of-squares")
    err = capsys.readouterr().err
    frames = re.findall(r"/hessian computing \[([#.]{30})\]\s+(\d+)% (\w+)", err)
    assert frames, f"no computation bar on stderr: {err[:300]!r}"
    pcts = [int(p) for _, p, _ in frames]
    assert pcts == sorted(pcts), pcts
    assert frames[-1][1:] == ("100", "done") and frames[-1][0] == "#" * 30
    assert all(s in ("queued", "running") for _, _, s in frames[:-1])
    assert any(0 < p < 100 for p in pcts), f"no intermediate progress seen: {pcts}"
    assert err.endswith("\n")
    np.testing.assert_array_equal(H, CurvatureClient(service_url, jobs=False).hessian(MID_NET, MID_X, MID_T, "sum-of-squares"))

    # the statuses themselves, polled by hand: progress never goes back, and is 1 exactly when done
    body, parts = request_parts(client, MID_NET, MID_X, MID_T, "sum-of-squares", "exact")
    job = jobs.submit(client, service_url, "/hessian", body, parts)
    try:
        assert job.last["state"] in ("queued", "running") and job.last["estimatedFlops"] > 0 and job.last["flopsBound"] is False
        seen = []
        while True:
            s = job.status()
            seen.append(s["progress"])
            if s["state"] not in ("queued", "running"):
                break
            assert s["progress"] < 1
            time.sleep(0.01)
        assert s["state"] == "done" and seen[-1] == 1 and seen == sorted(seen), seen
        assert s["result"]["bytes"] == 8 * H.size
        with job.result() as r:
            np.testing.assert_array_equal(np.load(io.BytesIO(r.content)), H)
    finally:
        job.close()


def test_the_size_threshold_chooses_between_a_job_and_an_answer_at_once(service_url, caplog):
    caplog.set_level(logging.INFO, logger="curvature_client")
    case = CASES[0]
    net, x, t, loss = data(case)
    n, w = len(x), case["expected"]["parameterCount"]
    k = len(net["layers"][-1]["weights"])
    client = CurvatureClient(service_url)
    body, parts = request_parts(client, net, x, t, loss, "exact")
    # the client's measure, from the sizes alone: N * W^2 for a dense Hessian, N * K * W for a Jacobian
    assert jobs.request_work("/hessian", body, parts) == n * w * w
    assert jobs.request_work("/hessian", {**body, "rows": [2, 5]}, parts) == n * 3 * w
    assert jobs.request_work("/jacobian", body, parts) == n * k * w
    assert jobs.request_work("/hessian/inverse", body, parts) == n * w * w + w ** 3
    # the default threshold sends a small request at once
    close(client.hessian(net, x, t, loss), case["expected"]["hessian"])
    assert job_logs(caplog) == []
    # a threshold between the diagonal's N * K * W and the dense Hessian's N * W^2: only the latter is a job
    chooser = CurvatureClient(service_url, job_threshold=n * w * w, job_poll=0.02)
    close(chooser.hessian(net, x, t, loss), case["expected"]["hessian"])
    assert len(job_logs(caplog)) == 1
    close(chooser.hessian(net, x, t, loss, method="diagonal"), case["expected"]["hessianDiagonal"])
    assert len(job_logs(caplog)) == 1


def test_refusals_are_those_of_the_synchronous_request(service_url):
    case = CASES[0]
    net, x, t, loss = data(case)
    as_job, at_once = CurvatureClient(service_url, jobs=True, job_poll=0.02), CurvatureClient(service_url, jobs=False)

    def refusal(client, **kw):
        with pytest.raises(CurvatureServiceError) as e:
            client.hessian_inverse(net, x, t, loss, **kw)
        return e.value
    # refused before it runs (the 422 comes instead of the 202)
    bad = dict(damping=-1.0)
    a, b = refusal(as_job, **bad), refusal(at_once, **bad)
    assert (a.status, a.code, a.detail) == (b.status, b.code, b.detail) and a.status in (400, 422)
    # refused while it runs: the exact Hessian plus a tiny damping is not positive definite (a failed job)
    eigen = np.linalg.eigvalsh(np.array(case["expected"]["hessian"]))
    assert eigen[0] < -1e-3, "this case needs an indefinite exact Hessian"
    tiny = dict(damping=1e-6, method="cholesky", hessian="exact")
    a, b = refusal(as_job, **tiny), refusal(at_once, **tiny)
    assert (a.status, a.code, a.detail) == (b.status, b.code, b.detail) == (422, "NOT_POSITIVE_DEFINITE", b.detail)


def test_a_cancelled_job_frees_its_worker(service_url):
    client = CurvatureClient(service_url)
    before = pool(service_url)
    body, parts = request_parts(client, SLOW_NET, SLOW_X, SLOW_T, "sum-of-squares")
    job = jobs.submit(client, service_url, "/hessian", body, parts)
    try:
        wait_for(lambda: job.status()["state"] == "running", 30, "the job never ran")
        assert pool(service_url)["busyWorkers"] >= 1
        s = job.cancel()
        assert s is not None and s["state"] == "cancelled"
        started = time.monotonic()
        # the worker stops at its next kernel call: within the pool's stop bound, as for a disconnect
        wait_for(lambda: pool(service_url)["busyWorkers"] == 0, 2.5, "the cancelled job's worker is still busy")
        freed = time.monotonic() - started
        with pytest.raises(CurvatureServiceError) as e:
            job.wait(poll=0.02)
        assert e.value.title == "Job cancelled"
        with pytest.raises(CurvatureServiceError) as e:
            job.result()
        assert (e.value.status, e.value.code) == (409, "JOB_NOT_DONE")
        after = pool(service_url)
        assert after["terminatedWorkers"] == before["terminatedWorkers"], "the worker was terminated, not stopped"
        print(f"cancelled job's worker free after {freed:.3f} s")
    finally:
        job.close()


def test_interrupting_the_wait_cancels_the_job(service_url):
    client = CurvatureClient(service_url)
    body, parts = request_parts(client, SLOW_NET, SLOW_X, SLOW_T, "sum-of-squares")
    job = jobs.submit(client, service_url, "/hessian", body, parts)

    class CtrlC(io.StringIO):
        """stderr that a Ctrl-C interrupts once the job runs."""
        def write(self, text):
            if "running" in text:
                raise KeyboardInterrupt
            return super().write(text)
    try:
        with pytest.raises(KeyboardInterrupt):
            job.wait(progress=True, poll=0.02, stream=CtrlC())
        assert job.status()["state"] == "cancelled"
        wait_for(lambda: pool(service_url)["busyWorkers"] == 0, 2.5, "the interrupted job's worker is still busy")
    finally:
        job.close()


def test_jobs_with_an_api_key():
    url, key = os.environ.get("CURVATURE_KEYED_SERVICE_URL"), os.environ.get("CURVATURE_API_KEY")
    if not url or not key:
        pytest.skip("CURVATURE_KEYED_SERVICE_URL and CURVATURE_API_KEY name a service started with API_KEYS (npm test starts one)")
    case = CASES[0]
    net, x, t, loss = data(case)
    client = CurvatureClient(url, api_key=key, jobs=True, job_poll=0.02)
    close(client.hessian(net, x, t, loss), case["expected"]["hessian"])
    body, parts = request_parts(client, net, x, t, loss, "exact")
    job = jobs.submit(client, url, "/hessian", body, parts)
    try:
        assert job.wait(poll=0.02)["state"] == "done"
        # the job is its key's: without it, 401; the id alone is not enough
        assert requests.get(url + job.location, timeout=30).status_code == 401
        assert requests.get(url + job.location, headers={"Authorization": "Bearer wrong"}, timeout=30).status_code == 401
        assert job.cancel() is None  # a finished job is dropped
        with pytest.raises(CurvatureServiceError) as e:
            job.status()
        assert (e.value.status, e.value.code) == (410, "JOB_GONE")
    finally:
        job.close()


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(port, log):
    node = os.environ.get("CURVATURE_NODE") or shutil.which("node")
    if not node:
        pytest.fail("no node to start a service process with (set CURVATURE_NODE; npm test does)")
    env = {**os.environ, "HOST": "127.0.0.1", "PORT": str(port), "LOG_LEVEL": "warn", "WORKERS": "1"}
    proc = subprocess.Popen([node, "--import", "tsx", "src/server.ts"], cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"

    def up():
        if proc.poll() is not None:
            pytest.fail(f"the service process exited with {proc.returncode}")
        try:
            return requests.get(url + "/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False
    wait_for(up, 60, "the service process did not answer /health")
    return proc, url


def test_a_job_lost_with_its_replica_is_sent_again(tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="curvature_client")
    port = _free_port()
    log = open(tmp_path / "service.log", "wb")
    procs = []
    try:
        first, url = _start_server(port, log)
        procs.append(first)
        submitted = threading.Event()

        class Watch(logging.Handler):
            def emit(self, record):
                if "running as job" in record.getMessage():
                    submitted.set()
        watch = Watch()
        logging.getLogger("curvature_client").addHandler(watch)
        client = CurvatureClient(url, jobs=True, job_poll=0.05, max_retries=6)
        outcome = {}

        def compute():
            try:
                outcome["H"] = client.hessian(SLOW_NET, SLOW_X, SLOW_T, "sum-of-squares", method="finite-difference")
            except BaseException as e:  # noqa: B902 - handed to the test's thread
                outcome["error"] = e
        worker = threading.Thread(target=compute)
        worker.start()
        try:
            assert submitted.wait(60), "the request was never accepted as a job"
            wait_for(lambda: pool(url)["busyWorkers"] == 1, 30, "the job never ran")
            first.send_signal(signal.SIGKILL)  # the replica dies with its job
            first.wait(30)
            second, _ = _start_server(port, log)
            procs.append(second)
            worker.join(180)
        finally:
            logging.getLogger("curvature_client").removeHandler(watch)
        assert not worker.is_alive(), "the client never finished"
        assert "error" not in outcome, repr(outcome.get("error"))
        messages = [r.getMessage() for r in caplog.records if r.name == "curvature_client"]
        assert any("is gone from the service" in m for m in messages), messages
        assert len(job_logs(caplog)) == 2  # sent twice, as a job both times
        assert pool(url)["completedTasks"] == 1  # the second process computed it
        expected = CurvatureClient(url, jobs=False).hessian(SLOW_NET, SLOW_X, SLOW_T, "sum-of-squares", method="finite-difference")
        np.testing.assert_array_equal(outcome["H"], expected)
        assert outcome["H"].shape == (SLOW_W, SLOW_W)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(30)
        log.close()
