"""The HTTP client: multipart requests with .npy parts, .npy answers, retries, sharding."""

from __future__ import annotations

import email.utils
import io
import json
import logging
import operator
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import requests

from . import jobs as _jobs
from ._errors import CurvatureServiceError
from ._networks import as_network

#: The service's Hessian methods (its OpenAPI enum for POST /hessian ``method``).
HESSIAN_METHODS: Tuple[str, ...] = ("exact", "outer-product", "diagonal", "diagonal-approximation", "finite-difference")
#: The service's losses (its OpenAPI enum ``loss``).
LOSSES: Tuple[str, ...] = ("sum-of-squares", "cross-entropy", "softmax-cross-entropy")
#: The service's reductions (its OpenAPI enum ``reduction``): the error is the sum or the mean over data points.
REDUCTIONS: Tuple[str, ...] = ("sum", "mean")

NPY = "application/x-npy"

#: Retries (503 OVERLOADED) are logged here at WARNING, with the wait; the library adds only a NullHandler.
logger = logging.getLogger("curvature_client")
logger.addHandler(logging.NullHandler())

#: What the client takes as an array: a numpy array, nested lists, or a (CPU) torch tensor.
ArrayLike = Any
#: Which layers' parameters to differentiate: a list of layer indices (negative from the end), one index,
#: or the API's object ``{"layers": [...]}``; None for all.
Selection = Union[Sequence[int], int, Mapping[str, Any], None]


# --- wire helpers --------------------------------------------------------------------------------

def _array(a: ArrayLike) -> np.ndarray:
    """A numpy array of ``a``; a torch tensor is detached and moved to the CPU first."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _float_npy(a: np.ndarray, ndim: int, name: str) -> bytes:
    """A float .npy part: float32 stays float32 (half the bytes; the service widens it), anything else float64."""
    if a.dtype != np.float32:
        a = a.astype(np.float64, copy=False)
    if ndim == 2 and a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {a.shape}"
                         + (" (flatten each data point: x.reshape(len(x), -1))" if name == "inputs" and a.ndim > 2 else ""))
    return _save(a)


def _labels_npy(a: np.ndarray) -> bytes:
    """The labels part: integers (and booleans) as int64; any other dtype as float64, for the service to
    check (it refuses a label that is not an integer in [0, K), naming the row)."""
    if np.issubdtype(a.dtype, np.integer) or a.dtype == np.bool_:
        return _save(a.astype("<i8", copy=False))
    return _save(a.astype(np.float64, copy=False))


def _save(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _selection(parameters: Selection) -> Optional[Dict[str, Any]]:
    """The API's ``parameters`` object: ``{"layers": [...]}`` from a list of layer indices."""
    if parameters is None:
        return None
    if isinstance(parameters, Mapping):
        return dict(parameters)
    if isinstance(parameters, (int, np.integer)):
        return {"layers": [operator.index(parameters)]}
    return {"layers": [operator.index(i) for i in parameters]}


def _retry_after(value: Optional[str], attempt: int) -> float:
    """Seconds from a Retry-After header (seconds or an HTTP date); without one, 0.5 * 2^attempt."""
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            try:
                when = email.utils.parsedate_to_datetime(value)
            except (TypeError, ValueError):
                when = None
            if when is not None:
                return max(0.0, float(when.timestamp()) - time.time())
    return 0.5 * 2.0 ** attempt


class _Progress:
    """A text progress bar on stderr: ``[#####.....]  48%  12.0/25.0 MiB``."""

    def __init__(self, total: int, label: str, stream: Any = None, width: int = 30) -> None:
        self.total, self.label, self.width = total, label, width
        self.stream = stream if stream is not None else sys.stderr
        self.last = -1

    def update(self, done: int) -> None:
        pct = int(100 * done / self.total) if self.total else 100
        if pct == self.last:
            return
        self.last = pct
        filled = self.width * pct // 100
        bar = "#" * filled + "." * (self.width - filled)
        mib = 1024 * 1024
        self.stream.write(f"\r{self.label} [{bar}] {pct:3d}% {done / mib:.1f}/{self.total / mib:.1f} MiB")
        if done >= self.total:
            self.stream.write("\n")
        self.stream.flush()


class _Data:
    """The data of one request: inputs and targets or labels, split into row shards."""

    def __init__(self, inputs: ArrayLike, targets: ArrayLike = None, labels: ArrayLike = None) -> None:
        self.x = _array(inputs)
        self.t = None if targets is None else _array(targets)
        self.labels = None if labels is None else _array(labels)

    @property
    def rows(self) -> int:
        return len(self.x) if self.x.ndim else 1

    def check_split(self) -> None:
        """Rows can only be split when every array has as many as the inputs."""
        for name, a in (("targets", self.t), ("labels", self.labels)):
            if a is not None and (a.ndim == 0 or len(a) != self.rows):
                raise ValueError(f"inputs have {self.rows} rows but {name} have {len(a) if a.ndim else 0}; "
                                 f"the rows cannot be split across several services")

    def parts(self, rows: Optional[np.ndarray]) -> Dict[str, bytes]:
        def pick(a: np.ndarray) -> np.ndarray:
            return a if rows is None else a[rows]
        out = {"inputs": _float_npy(pick(self.x), 2, "inputs")}
        if self.t is not None:
            out["targets"] = _float_npy(pick(self.t), 2, "targets")
        if self.labels is not None:
            out["labels"] = _labels_npy(pick(self.labels))
        return out


# --- the client ----------------------------------------------------------------------------------

class CurvatureClient:
    """A client of one or more curvature services.

    ``urls``: one base URL (``"http://host:3000"``) or several; with several, data rows are split
    across them (see the package's doc). ``api_key``: sent as a Bearer token. ``timeout``: seconds
    per HTTP request. ``max_retries`` / ``max_retry_wait``: how often, and at most how long each
    time, to wait and retry after a 503 ``OVERLOADED`` (the wait is the answer's ``Retry-After``;
    each retry is logged on the ``curvature_client`` logger). A 503 ``TIMEOUT`` (the computation
    ran past the service's REQUEST_TIMEOUT_MS) is not retried: the same request would time out
    again. ``progress``: show a download bar on stderr (None: only when stderr is a terminal);
    ``progress_threshold``: the smallest answer, in bytes, that gets one. ``session``: a
    ``requests.Session`` to send every request on (default: a new connection per request).
    ``jobs``: send requests as jobs (``Prefer: respond-async``) and show the computation's progress
    before the download's: True always, False never, None (default) from ``job_threshold`` on, in
    the size measure of :func:`curvature_client.jobs.request_work` (N*W^2 for dense W x W answers);
    ``job_poll``: the most seconds between two polls of a job.
    """

    def __init__(self, urls: Union[str, Sequence[str]], api_key: Optional[str] = None, timeout: float = 600.0,
                 max_retries: int = 5, max_retry_wait: float = 60.0, progress: Optional[bool] = None,
                 progress_threshold: int = 8 * 1024 * 1024, session: Optional[requests.Session] = None,
                 jobs: Optional[bool] = None, job_threshold: float = _jobs.DEFAULT_JOB_THRESHOLD, job_poll: float = 0.5) -> None:
        self.urls: List[str] = [urls] if isinstance(urls, str) else list(urls)
        if not self.urls:
            raise ValueError("give at least one service URL")
        self.urls = [u.rstrip("/") for u in self.urls]
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.max_retry_wait = max_retry_wait
        self.progress = progress
        self.progress_threshold = progress_threshold
        self.session = session
        self.jobs, self.job_threshold, self.job_poll = jobs, job_threshold, job_poll

    # -- public API --

    def jacobian(self, network: Any, inputs: ArrayLike, wrt: str = "inputs", *, parameters: Selection = None) -> np.ndarray:
        """J[n, k, i] = dy_k/dx_i (N x K x D), or dy_k/dw_i with ``wrt="parameters"`` (N x K x W, the
        columns in the parameter order; with ``parameters=[layers]`` only those layers' W columns).
        With several URLs, the shards' Jacobians are stacked."""
        body: Dict[str, Any] = {"network": as_network(network), "wrt": wrt}
        sel = _selection(parameters)
        if sel is not None:
            body["parameters"] = sel
        data = _Data(inputs)
        shards = self._shards(data.rows)
        parts = self._map(lambda url, rows: self._post(url, "/jacobian", body, data.parts(rows))[0], shards)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def hessian(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None,
                method: str = "exact", *, labels: ArrayLike = None, reduction: str = "sum",
                parameters: Selection = None) -> np.ndarray:
        """The Hessian of the error with respect to the parameters: W x W for ``exact``,
        ``outer-product`` and ``finite-difference``; its diagonal (W) for ``diagonal`` and
        ``diagonal-approximation``.

        ``targets`` (N x K) or, for ``softmax-cross-entropy``, ``labels`` (N class indices, sent as
        int64). ``reduction``: ``"sum"`` (E = sum_n E_n) or ``"mean"`` (E / N, PyTorch's default).
        ``parameters``: layer indices (negative from the end) whose parameters are differentiated,
        the others held fixed; W is then their count. With several URLs the shards' Hessians are
        summed (for the mean: the shards' sums, divided by the total N)."""
        if method not in HESSIAN_METHODS:
            raise ValueError(f"method {method!r}; use one of {', '.join(HESSIAN_METHODS)}")
        return self._summed("/hessian", network, _Data(inputs, targets, labels), _need(loss), reduction, parameters,
                            {"method": method})

    def hessian_vector_product(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None,
                               vector: ArrayLike = None, *, labels: ArrayLike = None, reduction: str = "sum",
                               parameters: Selection = None) -> np.ndarray:
        """H v by the R-operator, O(W) memory (``vector`` has W entries in the parameter order, W
        that of the selected ``parameters`` if given). Arguments as for :meth:`hessian`."""
        if vector is None:
            raise TypeError("hessian_vector_product() needs vector= (W entries in the parameter order)")
        v = _float_npy(_array(vector), 1, "vector")
        return self._summed("/hessian/vector-product", network, _Data(inputs, targets, labels), _need(loss), reduction,
                            parameters, {}, extra={"vector": v})

    def hessian_inverse(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None,
                        damping: Optional[float] = None, method: Optional[str] = None, hessian: Optional[str] = None, *,
                        labels: ArrayLike = None, reduction: str = "sum",
                        parameters: Selection = None) -> Tuple[np.ndarray, float]:
        """(H + damping I)^-1 and log det(H + damping I), with H the ``hessian``: ``outer-product``
        (the service's default) or ``exact``; ``method``: ``cholesky`` (the service's default) or
        ``woodbury`` (outer-product only). With ``reduction="mean"`` H is the mean's Hessian (the
        sum's divided by N) and the damping is added to that. Other arguments as for :meth:`hessian`.

        With one URL the service inverts. With several, each computes its shard's Hessian; they are
        summed here (and divided by N for the mean), ``damping * I`` is added and the sum is
        inverted by Cholesky locally (an inverse is not a sum over data points, so it cannot be split)."""
        if damping is None:
            raise TypeError("hessian_inverse() needs damping= (alpha > 0)")
        lossname = _need(loss)
        data = _Data(inputs, targets, labels)
        if len(self.urls) == 1:
            body = self._body(network, lossname, reduction, parameters, {"damping": damping})
            if method is not None:
                body["method"] = method
            if hessian is not None:
                body["hessian"] = hessian
            array, headers = self._post(self.urls[0], "/hessian/inverse", body, data.parts(None))
            return array, float(headers["X-Log-Determinant"])
        kind = hessian or "outer-product"
        if method == "woodbury" and kind == "exact":
            raise ValueError("method 'woodbury' inverts the outer-product Hessian only; use method='cholesky' with hessian='exact'")
        h = self._summed("/hessian", network, data, lossname, reduction, parameters, {"method": kind})
        return invert_damped(h, damping)

    # -- internals --

    @staticmethod
    def _body(network: Any, loss: str, reduction: str, parameters: Selection, fields: Dict[str, Any]) -> Dict[str, Any]:
        body: Dict[str, Any] = {"network": as_network(network), "loss": loss}
        if reduction != "sum":  # the service's default; left out so that it stays the service's word
            body["reduction"] = reduction
        sel = _selection(parameters)
        if sel is not None:
            body["parameters"] = sel
        body.update(fields)
        return body

    def _shards(self, n: int) -> List[Optional[np.ndarray]]:
        """Row index sets, one per URL used; [None] (send everything as it is) for one URL."""
        k = max(1, min(len(self.urls), n))
        if k == 1:
            return [None]
        return [s for s in np.array_split(np.arange(n), k) if len(s)]

    def _map(self, fn: Callable[[str, Optional[np.ndarray]], np.ndarray], shards: List[Optional[np.ndarray]]) -> List[np.ndarray]:
        if len(shards) == 1:
            return [fn(self.urls[0], shards[0])]
        with ThreadPoolExecutor(max_workers=len(shards)) as pool:
            futures = [pool.submit(fn, self.urls[i], rows) for i, rows in enumerate(shards)]
            return [f.result() for f in futures]

    def _summed(self, path: str, network: Any, data: _Data, loss: str, reduction: str, parameters: Selection,
                fields: Dict[str, Any], extra: Optional[Dict[str, bytes]] = None) -> np.ndarray:
        """One request, or one per shard with the answers summed: the error is a sum over data
        points. For the mean over several shards, each shard's sum is asked for and the total
        divided by N (a sum of the shards' means would weigh them wrongly)."""
        shards = self._shards(data.rows)
        split_mean = len(shards) > 1 and reduction == "mean"
        if len(shards) > 1:
            data.check_split()
        body = self._body(network, loss, "sum" if split_mean else reduction, parameters, fields)

        def one(url: str, rows: Optional[np.ndarray]) -> np.ndarray:
            return self._post(url, path, body, {**data.parts(rows), **(extra or {})})[0]

        parts = self._map(one, shards)
        total = parts[0].copy()
        for p in parts[1:]:
            total += p
        if split_mean:
            total /= data.rows
        return total

    def _post(self, url: str, path: str, body: Dict[str, Any], arrays: Mapping[str, bytes]) -> Tuple[np.ndarray, Mapping[str, str]]:
        """POSTs one multipart request (JSON part + .npy parts) and returns the .npy answer and headers.

        A 503 with code OVERLOADED is retried after its Retry-After (at most ``max_retries`` times,
        each wait at most ``max_retry_wait`` s), logged at WARNING on the ``curvature_client``
        logger; every other refusal, a 503 TIMEOUT included, raises at once. A large request runs as a
        job (jobs.py), with the same answer."""
        if _jobs.should_run_as_job(self, path, body, arrays):
            with _jobs.job_answer(self, url, path, body, arrays) as r:
                return np.load(io.BytesIO(self._read(r, path)), allow_pickle=False), r.headers
        files: Dict[str, Any] = {"request": (None, json.dumps(body), "application/json")}
        for name, payload in arrays.items():
            files[name] = (f"{name}.npy", payload, NPY)
        # requests encodes the body once; the encoded bytes are reused on every retry.
        prepared = requests.Request("POST", url + path, files=files, headers=self._headers()).prepare()
        attempt = 0
        while True:
            # A connection of its own per request (unless a session was given): a load balancer that
            # balances connections, as a Kubernetes Service does, then spreads shards and retries
            # over the replicas instead of pinning them to one busy pod.
            session = self.session or requests.Session()
            try:
                try:
                    r = session.send(prepared, stream=True, timeout=self.timeout)
                except requests.RequestException as e:
                    raise CurvatureServiceError(None, "Connection failed", str(e), url=url + path) from e
                if r.status_code != 200:
                    err = self._error(r, url + path)
                    if err.status == 503 and err.code == "OVERLOADED" and attempt < self.max_retries:
                        wait = min(self.max_retry_wait, _retry_after(r.headers.get("Retry-After"), attempt))
                        attempt += 1
                        logger.warning("%s: 503 OVERLOADED (%s); retry %d of %d in %.3g s", url + path, err.detail,
                                       attempt, self.max_retries, wait,
                                       extra={"url": url + path, "attempt": attempt, "wait": wait, "code": err.code})
                        time.sleep(wait)
                        continue
                    raise err
                try:
                    data = self._read(r, path)
                finally:
                    r.close()
                return np.load(io.BytesIO(data), allow_pickle=False), r.headers
            finally:
                if session is not self.session:
                    session.close()

    def _headers(self) -> Dict[str, Any]:
        h = {"Accept": NPY}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def _read(self, r: requests.Response, path: str) -> bytes:
        total = int(r.headers.get("Content-Length", "0") or 0)
        show = self.progress if self.progress is not None else sys.stderr.isatty()
        if not total or not show or total < self.progress_threshold:
            return r.content
        bar = _Progress(total, path)
        out = bytearray(total)
        done = 0
        for chunk in r.iter_content(chunk_size=1 << 20):
            out[done:done + len(chunk)] = chunk
            done += len(chunk)
            bar.update(done)
        if done != total:
            raise CurvatureServiceError(None, "Incomplete answer", f"received {done} of {total} bytes", url=r.url)
        return bytes(out)

    @staticmethod
    def _error(r: requests.Response, url: str) -> CurvatureServiceError:
        text = r.text
        problem: Dict[str, Any] = {}
        if "json" in r.headers.get("Content-Type", ""):
            try:
                parsed = json.loads(text)
                problem = parsed if isinstance(parsed, dict) else {}
            except ValueError:
                problem = {}
        r.close()
        code = problem.get("code")
        return CurvatureServiceError(
            r.status_code,
            str(problem.get("title") or r.reason or "Error"),
            str(problem.get("detail") or text[:500]),
            code=str(code) if code is not None else None,
            url=url,
            problem=problem,
        )


def _need(loss: Optional[str]) -> str:
    if loss is None:
        raise TypeError("give loss= ('sum-of-squares', 'cross-entropy' or 'softmax-cross-entropy')")
    return loss


def invert_damped(h: np.ndarray, damping: float) -> Tuple[np.ndarray, float]:
    """(H + damping I)^-1 and log det(H + damping I) by Cholesky, as the service's ``cholesky``
    method; raises CurvatureServiceError (422) when H + damping I is not positive definite."""
    a = np.array(h, dtype=np.float64, copy=True)
    a[np.diag_indices_from(a)] += damping
    try:
        chol = np.linalg.cholesky(a)
    except np.linalg.LinAlgError as e:
        raise CurvatureServiceError(422, "Matrix not positive definite",
                                    f"the summed Hessian plus {damping} I is not positive definite; use a larger damping",
                                    code="NOT_POSITIVE_DEFINITE") from e
    inv_l = np.linalg.inv(chol)
    inverse = inv_l.T @ inv_l
    return (inverse + inverse.T) / 2, float(2 * np.sum(np.log(np.diag(chol))))
