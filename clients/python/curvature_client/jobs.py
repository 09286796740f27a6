"""Requests as jobs: ``Prefer: respond-async``, then the job's progress polled and its result fetched.

The service answers a request sent with ``Prefer: respond-async`` with ``202 Accepted`` and
``Location: /jobs/{id}`` once it has checked and sized it (a request it would refuse is refused the
same way, at once). ``GET /jobs/{id}`` says its state (``queued``, ``running``, ``done``,
``failed``, ``cancelled``) and its progress, a fraction from 0 to 1 (the kernel flops done against
the service's estimate); ``GET /jobs/{id}/result`` is the synchronous answer exactly, in the form
``Accept`` asks for; ``DELETE /jobs/{id}`` cancels it.

:class:`~curvature_client.CurvatureClient` sends a request as a job by itself when its size
(:func:`request_work`) is at least ``job_threshold`` (or always with ``jobs=True``, never with
``jobs=False``), and then shows the computation's progress on stderr, as it shows a download's,
before the download's own bar::

    /hessian computing [##############................]  47% running

A job lives in the memory of the service replica that took it: if that replica restarts, its id is
unknown (404) and the client sends the request again, once, logging a warning. Interrupting the
wait (Ctrl-C) cancels the job on the service. The lower-level :func:`submit` returns a :class:`Job`
to poll, wait for, fetch or cancel yourself::

    from curvature_client import CurvatureClient, jobs
    client = CurvatureClient("http://127.0.0.1:3000")
    job = jobs.submit(client, client.urls[0], "/hessian", body, arrays)   # body and .npy parts as the client sends them
    job.wait(progress=True)
    H = numpy.load(io.BytesIO(job.result().content))
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Mapping, Optional

import numpy as np
import requests

from ._errors import CurvatureServiceError
from ._networks import parameter_count, selected_layers

if TYPE_CHECKING:
    from ._client import CurvatureClient

NPY = "application/x-npy"

#: The default ``job_threshold``: requests of at least this size (see :func:`request_work`) run as jobs,
#: about a second of dense-Hessian work on a 2-core machine.
DEFAULT_JOB_THRESHOLD = 2e10

#: Methods of POST /hessian whose answer is W x W (the others are the diagonal's W).
_DENSE_METHODS = ("exact", "outer-product", "finite-difference")


def _rows(npy: Optional[bytes]) -> int:
    """N, the rows of an .npy part, from its header alone."""
    if not npy:
        return 0
    f = io.BytesIO(npy)
    version = np.lib.format.read_magic(f)
    header = np.lib.format.read_array_header_1_0(f) if version == (1, 0) else np.lib.format.read_array_header_2_0(f)
    shape = header[0]
    return int(shape[0]) if shape else 1


def request_work(path: str, body: Mapping[str, Any], arrays: Mapping[str, bytes]) -> float:
    """The size of a request, as the client judges whether to send it as a job, from N (the rows of
    ``inputs``), W (the selected parameters, W_l per layer) and K (the outputs): N * R * W for a
    dense Hessian of R rows (R = W, or ``rows``' length), N * sum W_l^2 for its blocks; N * W^2 + W^3
    for what factorises a dense matrix (the inverse, dense eigenpairs, a Cholesky solve); N * K * W
    for the Jacobian, the KFAC factors and the rest (diagonals, products, Lanczos, CG: per product).
    A rough measure of work in flops, only to choose; not the service's estimate (which a job's
    status reports as ``estimatedFlops``)."""
    network = body.get("network") or {}
    n = float(_rows(arrays.get("inputs")))
    try:
        sizes = [parameter_count(network, [i]) for i in selected_layers(network, body.get("parameters"))]
    except (ValueError, KeyError, IndexError, TypeError):
        return 0.0  # a request the service will refuse: sent as it is, for its refusal
    w = float(sum(sizes))
    layers = network.get("layers") or [{"weights": []}]
    k = float(len(layers[-1]["weights"]) or 1)
    if path == "/hessian" and body.get("method", "exact") in _DENSE_METHODS:
        if body.get("structure", "full") == "block-diagonal":
            return n * float(sum(float(s) * s for s in sizes))
        rows = body.get("rows")
        return n * (float(rows[1] - rows[0]) if rows else w) * w
    if path == "/hessian/inverse" or (path == "/hessian/eigen" and body.get("method") == "dense") or (
            path == "/hessian/inverse-vector-product" and body.get("method") == "cholesky"):
        return n * w * w + w ** 3
    return n * k * w


class _ComputeProgress:
    """The computation's bar on stderr: ``/hessian computing [#####.....]  48% running``."""

    def __init__(self, label: str, stream: Any = None, width: int = 30) -> None:
        self.label, self.width = label, width
        self.stream = stream if stream is not None else sys.stderr
        self.last: Optional[str] = None

    def update(self, fraction: float, state: str) -> None:
        pct = int(100 * max(0.0, min(1.0, fraction)))
        line = f"{pct}:{state}"
        if line == self.last:
            return
        self.last = line
        filled = self.width * pct // 100
        bar = "#" * filled + "." * (self.width - filled)
        self.stream.write(f"\r{self.label} computing [{bar}] {pct:3d}% {state}")
        if state != "queued" and state != "running":
            self.stream.write("\n")
        self.stream.flush()


def _problem_error(problem: Mapping[str, Any], url: str) -> CurvatureServiceError:
    """A failed job's refusal, as the synchronous request would have raised it."""
    code = problem.get("code")
    return CurvatureServiceError(problem.get("status"), str(problem.get("title") or "Error"), str(problem.get("detail") or ""),
                                 code=str(code) if code is not None else None, url=url, problem=dict(problem))


class Job:
    """A job on one service: ``status()``, ``wait()``, ``result()``, ``cancel()``, and ``close()``.

    Its requests share one keep-alive connection (``session``), the one it was submitted on: behind
    a load balancer that balances connections they then reach the replica that holds the job, as
    long as the connection lasts (the service keeps an idle one open for seconds; polls come more
    often). Across reconnections, the service's deployment needs session affinity (docs/deployment.md, "Jobs and replicas").
    """

    def __init__(self, client: "CurvatureClient", url: str, path: str, location: str, status: Mapping[str, Any],
                 session: Optional[requests.Session] = None) -> None:
        self.client, self.url, self.path = client, url, path
        self.location = location
        self.id = str(status.get("id", location.rsplit("/", 1)[-1]))
        self.last: Dict[str, Any] = dict(status)
        self._own = session is None
        self.session = session if session is not None else requests.Session()

    def close(self) -> None:
        """Closes the job's connection (unless it is the client's own session); the job stays on the service."""
        if self._own:
            self.session.close()

    def _send(self, method: str, path: str, accept: Optional[str] = None, stream: bool = False) -> requests.Response:
        headers = self.client._headers()
        if accept:
            headers["Accept"] = accept
        try:
            return self.session.request(method, self.url + path, headers=headers, timeout=self.client.timeout, stream=stream)
        except requests.RequestException as e:
            raise CurvatureServiceError(None, "Connection failed", str(e), url=self.url + path) from e

    def _get(self, path: str, accept: Optional[str] = None, stream: bool = False) -> requests.Response:
        return self._send("GET", path, accept, stream)

    def status(self) -> Dict[str, Any]:
        """GET /jobs/{id}: the job's state, progress, timestamps and, once done, where its result is."""
        r = self._get(self.location)
        if r.status_code != 200:
            raise self.client._error(r, self.url + self.location)
        self.last = r.json()
        return self.last

    def wait(self, progress: Optional[bool] = None, poll: float = 0.5, stream: Any = None) -> Dict[str, Any]:
        """Polls until the job has finished (every ``poll`` seconds at most, sooner at first) and
        returns its last status; shows a bar on stderr (or ``stream``) with ``progress`` (None: the
        client's setting, else when stderr is a terminal, as the client's download bar).

        A failed job raises the refusal the synchronous request would have raised; a cancelled one
        raises too (status None, code None); an unknown id (the replica restarted) raises the 404
        ``JOB_NOT_FOUND``. A poll that cannot connect (the replica restarting) is tried again after
        0.5, 1, 2, ... s, at most the client's ``max_retries`` times in a row, each logged at WARNING.
        Interrupting the wait (KeyboardInterrupt) cancels the job before it is raised again."""
        from ._client import logger

        bar = _ComputeProgress(self.path, stream) if self.client._show_progress(progress) else None
        delay = min(0.05, poll)
        failures = 0
        try:
            while True:
                try:
                    s = self.status()
                    failures = 0
                except CurvatureServiceError as e:
                    if e.status is not None or failures >= self.client.max_retries:
                        raise
                    wait = 0.5 * 2.0 ** failures
                    failures += 1
                    logger.warning("%s: polling job %s failed (%s); retry %d of %d in %.3g s", self.url + self.location, self.id,
                                   e.detail, failures, self.client.max_retries, wait)
                    time.sleep(wait)
                    continue
                if bar:
                    bar.update(float(s.get("progress", 0.0)), str(s.get("state")))
                if s.get("state") not in ("queued", "running"):
                    break
                time.sleep(delay)
                delay = min(poll, delay * 2)
        except KeyboardInterrupt:
            try:
                self.cancel()
            finally:
                raise
        if s["state"] == "failed":
            raise _problem_error(s.get("problem") or {}, self.url + self.path)
        if s["state"] == "cancelled":
            raise CurvatureServiceError(None, "Job cancelled", f"job {self.id} was cancelled before it finished (by DELETE, "
                                        "or the service shutting down)", url=self.url + self.location)
        return s

    def result(self, accept: str = NPY) -> requests.Response:
        """GET /jobs/{id}/result in the form ``accept`` asks for: the 200 answer, streamed and unread
        (the caller reads and closes it), exactly the synchronous answer with its headers."""
        href = str((self.last.get("result") or {}).get("href") or f"{self.location}/result")
        r = self._get(href, accept=accept, stream=True)
        if r.status_code != 200:
            raise self.client._error(r, self.url + href)
        return r

    def cancel(self) -> Optional[Dict[str, Any]]:
        """DELETE /jobs/{id}: cancels a job still queued or running (returns its status), or drops a
        finished one and its result (returns None)."""
        r = self._send("DELETE", self.location)
        if r.status_code == 204:
            return None
        if r.status_code != 200:
            raise self.client._error(r, self.url + self.location)
        self.last = r.json()
        return self.last


def submit(client: "CurvatureClient", url: str, path: str, body: Mapping[str, Any], arrays: Mapping[str, bytes],
           accept: str = NPY) -> Job:
    """Sends one request (the multipart body the client sends synchronously) with
    ``Prefer: respond-async`` and returns its :class:`Job`. A 503 OVERLOADED is retried after its
    Retry-After as the client retries it (logged on the ``curvature_client`` logger); any other
    refusal raises at once, as the synchronous request's would."""
    from ._client import _retry_after, logger

    files: Dict[str, Any] = {"request": (None, json.dumps(body), "application/json")}
    for name, payload in arrays.items():
        files[name] = (f"{name}.npy", payload, NPY)
    headers = {**client._headers(), "Accept": accept, "Prefer": "respond-async"}
    prepared = requests.Request("POST", url + path, files=files, headers=headers).prepare()
    attempt = 0
    while True:
        # a connection of its own (unless the client has a session), kept for the job's polls; a retry
        # after OVERLOADED gets a new one, which a load balancer may send to another replica
        session = client.session or requests.Session()
        keep = False
        try:
            try:
                r = session.send(prepared, timeout=client.timeout)
            except requests.RequestException as e:
                raise CurvatureServiceError(None, "Connection failed", str(e), url=url + path) from e
            if r.status_code == 202:
                location = r.headers.get("Location")
                if not location:
                    raise CurvatureServiceError(202, "No job location", "the 202 answer has no Location header", url=url + path)
                status = r.json()
                logger.info("%s: running as job %s (estimated %.3g flops)", url + path, status.get("id"), status.get("estimatedFlops", 0.0))
                keep = True
                return Job(client, url, path, location, status, session=client.session or session)
            err = client._error(r, url + path) if r.status_code != 200 else CurvatureServiceError(
                200, "Not a job", "the service answered at once rather than as a job (is it older than the jobs API?)", url=url + path)
            if err.status == 503 and err.code == "OVERLOADED" and attempt < client.max_retries:
                wait = min(client.max_retry_wait, _retry_after(r.headers.get("Retry-After"), attempt))
                attempt += 1
                logger.warning("%s: 503 OVERLOADED (%s); retry %d of %d in %.3g s", url + path, err.detail, attempt, client.max_retries, wait,
                               extra={"url": url + path, "attempt": attempt, "wait": wait, "code": err.code})
                time.sleep(wait)
                continue
            raise err
        finally:
            if session is not client.session and not keep:
                session.close()


@contextlib.contextmanager
def job_answer(client: "CurvatureClient", url: str, path: str, body: Mapping[str, Any], arrays: Mapping[str, bytes],
               accept: str = NPY, progress: Optional[bool] = None) -> Iterator[requests.Response]:
    """Submits a request as a job, waits for it (with the computation's bar on stderr where
    ``progress``, default the client's setting), and yields its result's 200 answer, streamed and
    unread, as the synchronous request would have had it (closed, with the job's connection, after
    the block). A job lost with its replica (404 JOB_NOT_FOUND while waiting or fetching, after the
    poll's reconnections) is sent again once, with a warning."""
    from ._client import logger

    attempt = 0
    while True:
        job = submit(client, url, path, body, arrays, accept)
        try:
            try:
                job.wait(progress=progress, poll=client.job_poll)
                r = job.result(accept)
            except CurvatureServiceError as e:
                if e.status == 404 and e.code == "JOB_NOT_FOUND" and attempt == 0:
                    attempt += 1
                    logger.warning("%s: job %s is gone from the service (its replica restarted?); sending the request again",
                                   url + path, job.id)
                    continue
                raise
            try:
                yield r
            finally:
                r.close()
            return
        finally:
            job.close()


def should_run_as_job(client: "CurvatureClient", path: str, body: Mapping[str, Any], arrays: Mapping[str, bytes]) -> bool:
    """``jobs=True``: always; ``jobs=False``: never; None (the default): when :func:`request_work`
    is at least ``job_threshold``."""
    if client.jobs is not None:
        return bool(client.jobs)
    return request_work(path, body, arrays) >= client.job_threshold
