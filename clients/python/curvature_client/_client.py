"""The HTTP client: multipart requests with .npy parts, .npy answers, retries, sharding."""

from __future__ import annotations

import contextlib
import email.utils
import io
import json
import logging
import operator
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Dict, Iterator, List, Literal, Mapping, Optional, Sequence, Tuple, TypeVar, Union, overload

import numpy as np
import requests

from . import jobs as _jobs
from ._errors import CurvatureServiceError
from ._networks import Selection, as_network, parameter_count, selected_layers
from ._networks import selection as _selection
from ._results import Eigenpairs, InverseVectorProduct, Kfac, KfacFactor, SlabAssembly, kfac_log_determinant

#: The service's Hessian methods (its OpenAPI enum for POST /hessian ``method``).
HESSIAN_METHODS: Tuple[str, ...] = ("exact", "outer-product", "diagonal", "diagonal-approximation", "finite-difference")
#: The service's losses (its OpenAPI enum ``loss``).
LOSSES: Tuple[str, ...] = ("sum-of-squares", "cross-entropy", "softmax-cross-entropy")
#: The service's reductions (its OpenAPI enum ``reduction``): the error is the sum or the mean over data points.
REDUCTIONS: Tuple[str, ...] = ("sum", "mean")

NPY = "application/x-npy"
NPZ = "application/x-npz"
#: The default size of a slab of rows in :meth:`CurvatureClient.assemble_hessian` (the service holds one
#: slab per request), and of the pieces each slab is streamed into the caller's array in.
SLAB_BYTES = 32 * 1024 * 1024
PIECE_BYTES = 1024 * 1024

_T = TypeVar("_T")

#: Retries (503 OVERLOADED) are logged here at WARNING, with the wait; the library adds only a NullHandler.
logger = logging.getLogger("curvature_client")
logger.addHandler(logging.NullHandler())

#: What the client takes as an array: a numpy array, nested lists, or a (CPU) torch tensor.
ArrayLike = Any


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
    """A text progress bar on stderr: ``[#####.....]  48%  12.0/25.0 MiB`` (or ``120/250 rows``)."""

    def __init__(self, total: int, label: str, stream: Any = None, width: int = 30, unit: str = "MiB") -> None:
        self.total, self.label, self.width, self.unit = total, label, width, unit
        self.stream = stream if stream is not None else sys.stderr
        self.last = -1

    def update(self, done: int) -> None:
        pct = int(100 * done / self.total) if self.total else 100
        if pct == self.last:
            return
        self.last = pct
        filled = self.width * pct // 100
        bar = "#" * filled + "." * (self.width - filled)
        if self.unit == "MiB":
            mib = 1024 * 1024
            amount = f"{done / mib:.1f}/{self.total / mib:.1f} MiB"
        else:
            amount = f"{done}/{self.total} {self.unit}"
        self.stream.write(f"\r{self.label} [{bar}] {pct:3d}% {amount}")
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

    @overload
    def hessian(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None,
                method: str = "exact", *, labels: ArrayLike = None, reduction: str = "sum",
                parameters: Selection = None, structure: Literal["full"] = "full",
                rows: Optional[Tuple[int, int]] = None) -> np.ndarray: ...

    @overload
    def hessian(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None,
                method: str = "exact", *, labels: ArrayLike = None, reduction: str = "sum",
                parameters: Selection = None, structure: Literal["block-diagonal"],
                rows: None = None) -> Dict[int, np.ndarray]: ...

    @overload
    def hessian(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None,
                method: str = "exact", *, labels: ArrayLike = None, reduction: str = "sum",
                parameters: Selection = None, structure: str = "full",
                rows: Optional[Tuple[int, int]] = None) -> Union[np.ndarray, Dict[int, np.ndarray]]: ...

    def hessian(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None,
                method: str = "exact", *, labels: ArrayLike = None, reduction: str = "sum",
                parameters: Selection = None, structure: str = "full",
                rows: Optional[Tuple[int, int]] = None) -> Union[np.ndarray, Dict[int, np.ndarray]]:
        """The Hessian of the error with respect to the parameters: W x W for ``exact``,
        ``outer-product`` and ``finite-difference``; its diagonal (W) for ``diagonal`` and
        ``diagonal-approximation``.

        ``targets`` (N x K) or, for ``softmax-cross-entropy``, ``labels`` (N class indices, sent as
        int64). ``reduction``: ``"sum"`` (E = sum_n E_n) or ``"mean"`` (E / N, PyTorch's default).
        ``parameters``: layer indices (negative from the end) whose parameters are differentiated,
        the others held fixed; W is then their count.

        For ``exact`` and ``outer-product`` only: ``structure="block-diagonal"`` returns the diagonal
        block of each selected layer, ``{layer index: W_l x W_l block}`` in layer order (sum W_l^2
        memory and work, not W^2); ``rows=(start, end)`` returns rows start ... end - 1 of H,
        (end - start) x W (see :meth:`assemble_hessian` for a whole matrix from slabs).

        With several URLs the shards' answers are summed (for the mean: the shards' sums, divided
        by the total N)."""
        if method not in HESSIAN_METHODS:
            raise ValueError(f"method {method!r}; use one of {', '.join(HESSIAN_METHODS)}")
        fields: Dict[str, Any] = {"method": method}
        if structure != "full":
            fields["structure"] = structure
        if rows is not None:
            fields["rows"] = _rows(rows)
        data = _Data(inputs, targets, labels)
        if structure == "block-diagonal":
            answers, divisor = self._per_shard("/hessian", network, data, _need(loss), reduction, parameters, fields,
                                               accept=NPZ)
            blocks: Dict[int, np.ndarray] = {}
            for members, _ in answers:
                for name, block in members.items():
                    layer = int(name[len("block_"):])
                    blocks[layer] = blocks[layer] + block if layer in blocks else block.copy()
            return {layer: b / divisor if divisor != 1 else b for layer, b in blocks.items()}
        answers, divisor = self._per_shard("/hessian", network, data, _need(loss), reduction, parameters, fields)
        if rows is not None:
            for _, headers in answers:
                _check_rows(headers, fields["rows"])
        return _sum_arrays([a for a, _ in answers], divisor)

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

    def trace(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None, *,
              labels: ArrayLike = None, reduction: str = "sum", parameters: Selection = None) -> float:
        """The exact trace of the Hessian (of the selected parameters): the sum of its exact diagonal,
        which the service computes in O(N (W + sum_l out_l^2 out_{l+1})) and sends in X-Trace. Arguments as
        for :meth:`hessian`; with several URLs the shards' traces are summed (divided by N for the mean)."""
        answers, divisor = self._per_shard("/hessian", network, _Data(inputs, targets, labels), _need(loss), reduction,
                                           parameters, {"method": "diagonal"})
        return sum(float(h["X-Trace"]) for _, h in answers) / divisor

    def kfac(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None, *,
             labels: ArrayLike = None, reduction: str = "sum", parameters: Selection = None,
             damping: Optional[float] = None) -> Kfac:
        """The KFAC factors of the outer-product Hessian, one (A_l, G_l) per selected layer (see
        :class:`Kfac`), exact (no sampling), O(N sum_l ((in_l + 1)^2 + out_l K)) with no W^2 anywhere;
        with ``damping`` (alpha > 0) also log det(K + alpha I). Other arguments as for :meth:`hessian`.

        With several URLs each service computes its shard's factors: A_l is a mean over the points
        whatever the reduction, so the shards' A_l are weighed by their sizes; the G_l are summed
        (the shards' sums divided by N for the mean); the log determinant is then computed here from
        the factors' eigenvalues, as the service does."""
        net = as_network(network)
        fields: Dict[str, Any] = {} if damping is None else {"damping": damping}
        data = _Data(inputs, targets, labels)
        answers, divisor = self._per_shard("/hessian/kfac", net, data, _need(loss), reduction, parameters, fields,
                                           accept=NPZ)
        layers = selected_layers(net, parameters)
        # A_l is the shard's mean over its points: weigh each by its share of the N points
        shares = [1.0 if rows is None else len(rows) / data.rows for rows in self._shards(data.rows)]
        factors = []
        for layer in layers:
            a = _sum_arrays([share * m[f"A_{layer}"] for share, (m, _) in zip(shares, answers)])
            g = _sum_arrays([m[f"G_{layer}"] for m, _ in answers], divisor)
            factors.append(KfacFactor(layer, a, g, net["layers"][layer]["bias"] is not None))
        w_count = int(answers[0][1]["X-Parameter-Count"])
        log_det: Optional[float] = None
        if damping is not None:
            log_det = (float(answers[0][1]["X-Log-Determinant"]) if len(answers) == 1
                       else kfac_log_determinant(tuple(factors), damping))
        return Kfac(tuple(factors), log_det, w_count)

    def eigen(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None,
              count: int = 1, *, labels: ArrayLike = None, reduction: str = "sum", parameters: Selection = None,
              hessian: Optional[str] = None, which: Optional[str] = None, method: Optional[str] = None,
              tolerance: Optional[float] = None, max_iterations: Optional[int] = None) -> Eigenpairs:
        """``count`` eigenpairs of the ``hessian`` (``"exact"``, the service's default, or
        ``"outer-product"``): ``which`` ``"largest"`` (default), ``"smallest"`` or ``"magnitude"``;
        ``method`` ``"lanczos"`` (matrix-free, O(N W) a product, never W^2), ``"dense"`` or ``"auto"``
        (the default: dense up to W = 2000); ``tolerance``, the relative residual to reach (1e-8);
        ``max_iterations``, the most products Lanczos may use (1000; past it a 422 NOT_CONVERGED).
        Unset options are left to the service. Returns :class:`Eigenpairs` (unpacks as
        ``eigenvalues, eigenvectors``).

        Eigenpairs are not a sum over data points: with several URLs the whole request goes to the first."""
        fields = _present({"count": count, "hessian": hessian, "which": which, "method": method,
                           "tolerance": tolerance, "maxIterations": max_iterations})
        body = self._body(network, _need(loss), reduction, parameters, fields)
        members, headers = self._post_npz(self.urls[0], "/hessian/eigen", body,
                                          _Data(inputs, targets, labels).parts(None))
        return Eigenpairs(members["eigenvalues"], members["eigenvectors"], members["residuals"],
                          int(headers["X-Iterations"]), str(headers["X-Method"]), int(headers["X-Parameter-Count"]))

    def inverse_vector_product(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None,
                               loss: Optional[str] = None, vectors: ArrayLike = None, damping: Optional[float] = None, *,
                               labels: ArrayLike = None, reduction: str = "sum", parameters: Selection = None,
                               hessian: Optional[str] = None, method: Optional[str] = None,
                               preconditioner: Optional[str] = None, tolerance: Optional[float] = None,
                               max_iterations: Optional[int] = None) -> InverseVectorProduct:
        """(H + damping I)^-1 v for each row v of ``vectors`` (m x W, or one vector of W entries), with
        H the ``hessian``: ``"outer-product"`` (the service's default), ``"exact"`` or ``"kfac"`` (solved
        exactly from the factors). ``method``: ``"cg"`` (conjugate gradients on curvature-vector
        products, matrix-free), ``"cholesky"`` (dense) or ``"auto"`` (the default: Cholesky up to
        W = 3000); ``preconditioner`` for CG: ``"none"`` (default), ``"diagonal"`` or ``"kfac"``;
        ``tolerance`` the relative residual CG reaches (1e-10); ``max_iterations`` per vector (1000).
        Unset options are left to the service. With ``reduction="mean"``, H is the mean's Hessian and
        the damping is added to that. Where H + damping I is not positive definite: 422
        NOT_POSITIVE_DEFINITE. Returns :class:`InverseVectorProduct` (solutions shaped as ``vectors``).

        With several URLs the vectors are split across them (each service gets all the data points:
        the inverse is not a sum over them) and the solutions stacked in order."""
        if vectors is None:
            raise TypeError("inverse_vector_product() needs vectors= (m x W, one vector a row, in the parameter order)")
        if damping is None:
            raise TypeError("inverse_vector_product() needs damping= (alpha > 0)")
        v = _array(vectors)
        one = v.ndim == 1
        v2 = v.reshape(1, -1) if one else v
        fields = _present({"damping": damping, "hessian": hessian, "method": method, "preconditioner": preconditioner,
                           "tolerance": tolerance, "maxIterations": max_iterations})
        body = self._body(network, _need(loss), reduction, parameters, fields)
        parts = _Data(inputs, targets, labels).parts(None)
        groups = [g for g in np.array_split(np.arange(len(v2)), max(1, min(len(self.urls), len(v2)))) if len(g)]

        def solve(url: str, rows: np.ndarray) -> Tuple[Dict[str, np.ndarray], Mapping[str, str]]:
            vec = {"vectors": _float_npy(v2[rows] if len(groups) > 1 else v2, 2, "vectors")}
            return self._post_npz(url, "/hessian/inverse-vector-product", body, {**parts, **vec})

        answers = self._map(solve, groups)
        solutions = np.concatenate([m["solutions"] for m, _ in answers], axis=0)
        return InverseVectorProduct(
            solutions.reshape(-1) if one else solutions,
            np.concatenate([m["iterations"] for m, _ in answers]).astype(np.int64),
            np.concatenate([m["residuals"] for m, _ in answers]),
            str(answers[0][1]["X-Method"]), int(answers[0][1]["X-Parameter-Count"]))

    def assemble_hessian(self, network: Any, inputs: ArrayLike, targets: ArrayLike = None, loss: Optional[str] = None,
                         method: str = "exact", *, out: Any, labels: ArrayLike = None, reduction: str = "sum",
                         parameters: Selection = None, rows_per_slab: Optional[int] = None,
                         max_in_flight: Optional[int] = None, progress: Optional[bool] = None) -> SlabAssembly:
        """The dense ``exact`` or ``outer-product`` Hessian (W x W) written into ``out``, a caller-given
        array of that shape (a ``numpy.memmap`` on disk, or anything that takes ``out[a:b] = rows``),
        assembled from slabs of rows (``rows`` requests) computed by all the client's URLs at once:
        for a Hessian larger than one machine, or than one service's MAX_RESULT_BYTES.

        Unlike the other methods, the URLs do not split the data: every slab request carries all of
        it, and each service computes whole slabs. Slabs of ``rows_per_slab`` rows (default: about
        32 MiB each) are handed out in row order to ``max_in_flight`` requests at a time (default:
        two per URL), each URL taking the next slab as soon as it is done with one, so a faster
        service computes more. Each answer is streamed from the socket into its rows of ``out`` in
        pieces of about 4 MiB: the client holds at most ``max_in_flight`` pieces and request bodies,
        never a slab, let alone the matrix. ``out`` is flushed at the end where it has ``flush()``
        (a memmap). ``progress``: a bar of the rows written on stderr (default: the client's
        setting, else only when stderr is a terminal). 503 OVERLOADED is retried as everywhere in
        the client; any other failure stops the assembly (the slabs still in flight finish) and is
        raised: the rows already written stay written. Other arguments as for :meth:`hessian`.

        W is the network's (selected) parameter count, :func:`curvature_client.parameter_count`;
        ``numpy.lib.format.open_memmap(path, mode="w+", dtype="float64", shape=(W, W))`` makes an
        ``out`` that ``numpy.load(path, mmap_mode="r")`` reads back."""
        if method not in ("exact", "outer-product"):
            raise ValueError(f"method {method!r}: row slabs are of the 'exact' or 'outer-product' Hessian only")
        net = as_network(network)
        w = parameter_count(net, parameters)
        shape = tuple(getattr(out, "shape", ()))
        if shape != (w, w):
            raise ValueError(f"out has shape {shape}; the Hessian of this network{' selection' if parameters is not None else ''} "
                             f"is {w} x {w} (numpy.lib.format.open_memmap(path, mode='w+', dtype='float64', shape=({w}, {w})))")
        if np.dtype(getattr(out, "dtype", np.float64)).kind != "f":
            raise ValueError(f"out has dtype {out.dtype}; give a floating-point array (float64 keeps every digit)")
        rows = max(1, SLAB_BYTES // (8 * w)) if rows_per_slab is None else operator.index(rows_per_slab)
        if rows < 1:
            raise ValueError(f"rows_per_slab must be at least 1; got {rows_per_slab}")
        starts = list(range(0, w, rows))
        in_flight = max(1, min(max_in_flight or 2 * len(self.urls), len(starts)))
        data = _Data(inputs, targets, labels)
        parts = data.parts(None)
        body = self._body(net, _need(loss), reduction, parameters, {"method": method})
        lock = threading.Lock()
        state = {"next": 0, "rows": 0}
        by_url: Dict[str, int] = {u: 0 for u in self.urls}
        stop = threading.Event()
        bar = _Progress(w, "/hessian rows", unit="rows") if self._show_progress(progress) else None
        started = time.monotonic()

        def write(r0: int, piece: np.ndarray) -> None:
            with lock:
                out[r0:r0 + len(piece)] = piece
                state["rows"] += len(piece)
                if bar is not None:
                    bar.update(state["rows"])

        def work(url: str) -> None:
            while not stop.is_set():
                with lock:
                    i = state["next"]
                    if i >= len(starts):
                        return
                    state["next"] = i + 1
                start, end = starts[i], min(w, starts[i] + rows)
                try:
                    with self._answer(url, "/hessian", {**body, "rows": [start, end]}, parts) as r:
                        _check_rows(r.headers, [start, end], w)
                        _stream_npy_rows(r, (end - start, w), lambda r0, piece: write(start + r0, piece))
                except BaseException:
                    stop.set()
                    raise
                with lock:
                    by_url[url] += 1

        slots = [self.urls[i % len(self.urls)] for i in range(in_flight)]
        with ThreadPoolExecutor(max_workers=in_flight) as pool:
            futures = [pool.submit(work, url) for url in slots]
            errors = [f.exception() for f in futures]
        failed = [e for e in errors if e is not None]
        if failed:
            raise failed[0]
        if hasattr(out, "flush"):
            out.flush()
        return SlabAssembly(w, len(starts), rows, in_flight, time.monotonic() - started, by_url)

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

    def _map(self, fn: Callable[[str, Any], _T], shards: Sequence[Any]) -> List[_T]:
        """fn(url i, shard i) for each shard, concurrently when there are several, in order."""
        if len(shards) == 1:
            return [fn(self.urls[0], shards[0])]
        with ThreadPoolExecutor(max_workers=len(shards)) as pool:
            futures = [pool.submit(fn, self.urls[i], rows) for i, rows in enumerate(shards)]
            return [f.result() for f in futures]

    def _per_shard(self, path: str, network: Any, data: _Data, loss: str, reduction: str, parameters: Selection,
                   fields: Dict[str, Any], extra: Optional[Dict[str, bytes]] = None,
                   accept: str = NPY) -> Tuple[List[Tuple[Any, Mapping[str, str]]], float]:
        """One request, or one per shard of the data rows: the answers (an array, or the members of an
        .npz) with their headers, and what their sum is to be divided by. The error is a sum over data
        points, and so is every Hessian, product, trace and output factor; for the mean over several
        shards each shard's sum is asked for and the divisor is N (a sum of the shards' means would
        weigh them wrongly); otherwise it is 1."""
        shards = self._shards(data.rows)
        split_mean = len(shards) > 1 and reduction == "mean"
        if len(shards) > 1:
            data.check_split()
        body = self._body(network, loss, "sum" if split_mean else reduction, parameters, fields)
        post = self._post_npz if accept == NPZ else self._post

        def one(url: str, rows: Optional[np.ndarray]) -> Tuple[Any, Mapping[str, str]]:
            return post(url, path, body, {**data.parts(rows), **(extra or {})})

        return self._map(one, shards), float(data.rows) if split_mean else 1.0

    def _summed(self, path: str, network: Any, data: _Data, loss: str, reduction: str, parameters: Selection,
                fields: Dict[str, Any], extra: Optional[Dict[str, bytes]] = None) -> np.ndarray:
        """The sum of the shards' arrays (see :meth:`_per_shard`)."""
        answers, divisor = self._per_shard(path, network, data, loss, reduction, parameters, fields, extra)
        return _sum_arrays([a for a, _ in answers], divisor)

    @contextlib.contextmanager
    def _answer(self, url: str, path: str, body: Dict[str, Any], arrays: Mapping[str, bytes],
                accept: str = NPY) -> Iterator[requests.Response]:
        """POSTs one multipart request (JSON part + .npy parts) and yields the 200 answer, unread
        (closed after the block).

        A 503 with code OVERLOADED is retried after its Retry-After (at most ``max_retries`` times,
        each wait at most ``max_retry_wait`` s), logged at WARNING on the ``curvature_client``
        logger; every other refusal, a 503 TIMEOUT included, raises at once. A large request runs as a
        job (jobs.py), with the same answer."""
        if _jobs.should_run_as_job(self, path, body, arrays):
            # a bar of the computation only where one request is in flight: not for shards sent to
            # several URLs at once, nor for assemble_hessian's slabs (which have a bar of their rows)
            bar = self._show_progress() and len(self.urls) == 1 and "rows" not in body
            with _jobs.job_answer(self, url, path, body, arrays, accept=accept, progress=bar) as r:
                yield r
            return
        files: Dict[str, Any] = {"request": (None, json.dumps(body), "application/json")}
        for name, payload in arrays.items():
            files[name] = (f"{name}.npy", payload, NPY)
        # requests encodes the body once; the encoded bytes are reused on every retry.
        prepared = requests.Request("POST", url + path, files=files, headers=self._headers(accept)).prepare()
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
                    yield r
                finally:
                    r.close()
                return
            finally:
                if session is not self.session:
                    session.close()

    def _post(self, url: str, path: str, body: Dict[str, Any], arrays: Mapping[str, bytes]) -> Tuple[np.ndarray, Mapping[str, str]]:
        """The .npy answer of one request (see :meth:`_answer`) and its headers."""
        with self._answer(url, path, body, arrays) as r:
            return self._read_npy(r, path), r.headers

    def _read_npy(self, r: requests.Response, path: str) -> np.ndarray:
        """A .npy answer read from the socket straight into its array: the header by np.lib.format,
        then the data by ``readinto`` in pieces, with no bytes object of the whole body and no second
        copy. A 909 MB Hessian took 6-10 s through ``r.content`` and ``np.load`` (requests' small
        chunks joined, then copied out of a BytesIO), against 1.6 s for the service to send it."""
        raw = r.raw
        shape, fortran, dtype = _npy_header(r)
        if dtype.hasobject:
            raise CurvatureServiceError(None, "Unexpected answer", f".npy of {dtype} (expected numbers)", url=r.url)
        out = np.empty(shape, dtype=dtype, order="F" if fortran else "C")
        view = memoryview(out.reshape(-1, order="A")).cast("B")
        bar = _Progress(view.nbytes, path) if self._show_progress() and view.nbytes >= self.progress_threshold else None
        # in pieces: urllib3's readinto reads its whole argument into a bytes object first, and for
        # one 909 MB piece that took 2-5 s against 0.4 s in pieces of a MiB
        for start in range(0, view.nbytes, PIECE_BYTES):
            _read_into(raw, view[start:start + PIECE_BYTES], r.url)
            if bar:
                bar.update(min(view.nbytes, start + PIECE_BYTES))
        if bar and view.nbytes == 0:
            bar.update(0)
        return out

    def _post_npz(self, url: str, path: str, body: Dict[str, Any],
                  arrays: Mapping[str, bytes]) -> Tuple[Dict[str, np.ndarray], Mapping[str, str]]:
        """The members of the .npz answer of one request (see :meth:`_answer`) and its headers."""
        with self._answer(url, path, body, arrays, accept=NPZ) as r:
            with np.load(io.BytesIO(self._read(r, path)), allow_pickle=False) as z:
                return {name: z[name] for name in z.files}, r.headers

    def _headers(self, accept: str = NPY) -> Dict[str, Any]:
        h = {"Accept": accept}
        if self.api_key:
            h["Authorization"] = f"Bearer {self.api_key}"
        return h

    def _show_progress(self, progress: Optional[bool] = None) -> bool:
        chosen = progress if progress is not None else self.progress
        return chosen if chosen is not None else sys.stderr.isatty()

    def _read(self, r: requests.Response, path: str) -> bytes:
        total = int(r.headers.get("Content-Length", "0") or 0)
        if not total or not self._show_progress() or total < self.progress_threshold:
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


def _rows(rows: Sequence[int]) -> List[int]:
    """``[start, end]`` from a pair of integers."""
    pair = [operator.index(i) for i in rows]
    if len(pair) != 2:
        raise ValueError(f"rows must be (start, end); got {rows!r}")
    return pair


def _check_rows(headers: Mapping[str, str], rows: Sequence[int], w: Optional[int] = None) -> None:
    """The answer is the slab that was asked for (X-Row-Start, X-Row-End; X-Parameter-Count W)."""
    got = [int(headers.get("X-Row-Start", -1)), int(headers.get("X-Row-End", -1))]
    if got != list(rows) or (w is not None and int(headers.get("X-Parameter-Count", -1)) != w):
        raise CurvatureServiceError(None, "Unexpected answer",
                                    f"asked for rows {list(rows)} of a {w} x {w} Hessian, got rows {got} of "
                                    f"W = {headers.get('X-Parameter-Count')} (X-Row-Start, X-Row-End, X-Parameter-Count)")


def _sum_arrays(parts: Sequence[np.ndarray], divisor: float = 1.0) -> np.ndarray:
    """The sum of the answers' arrays (divided by ``divisor``). The answers are the client's own
    fresh arrays, so a single float64 one is the sum itself, not copied (a 909 MB copy took 3-4 s)."""
    first = parts[0]
    own = len(parts) == 1 and first.dtype == np.float64 and first.flags.writeable and first.flags.owndata
    total = first if own else np.array(first, dtype=np.float64, copy=True)
    for p in parts[1:]:
        total += p
    if divisor != 1:
        total /= divisor
    return total


def _present(fields: Dict[str, Any]) -> Dict[str, Any]:
    """The options that were given: the others are left out, for the service's defaults to apply."""
    return {k: v for k, v in fields.items() if v is not None}


def _read_into(raw: Any, view: memoryview, url: str) -> None:
    got = 0
    while got < len(view):
        n = raw.readinto(view[got:])
        if not n:
            raise CurvatureServiceError(None, "Incomplete answer", f"the connection closed {len(view) - got} bytes early",
                                        url=url)
        got += n


def _npy_header(r: requests.Response) -> Tuple[Tuple[int, ...], bool, np.dtype]:
    """The header of a .npy answer, read from the socket (shape, Fortran order, dtype); the data follow."""
    raw = r.raw
    raw.decode_content = True  # should a proxy compress it
    version = np.lib.format.read_magic(raw)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(raw)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(raw)
    else:
        raise CurvatureServiceError(None, "Unexpected answer", f".npy format {version} (expected 1.0 or 2.0)", url=r.url)
    return tuple(shape), bool(fortran), np.dtype(dtype)


def _stream_npy_rows(r: requests.Response, shape: Tuple[int, int], sink: Callable[[int, np.ndarray], None]) -> None:
    """Reads a .npy answer of ``shape`` (rows x W, float64, C order) from the socket in pieces of
    about PIECE_BYTES, calling ``sink(first row, rows)`` with each; the piece's buffer is reused,
    so the sink copies what it keeps."""
    raw = r.raw
    got, fortran, dtype = _npy_header(r)
    if tuple(got) != shape or fortran or dtype != np.dtype("<f8"):
        raise CurvatureServiceError(None, "Unexpected answer", f"a .npy of shape {tuple(got)} and dtype {dtype}"
                                    f"{' in Fortran order' if fortran else ''}; expected {shape} <f8 in C order", url=r.url)
    n_rows, w = shape
    per = max(1, PIECE_BYTES // (8 * w))
    buf = bytearray(min(per, n_rows) * w * 8)
    view = memoryview(buf)
    r0 = 0
    while r0 < n_rows:
        k = min(per, n_rows - r0)
        _read_into(raw, view[:k * w * 8], r.url)
        sink(r0, np.frombuffer(buf, dtype="<f8", count=k * w).reshape(k, w))
        r0 += k


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
