"""A Python client for the curvature service: Jacobians, Hessians and inverse Hessians of MLPs.

One module, needing only numpy and requests (PyTorch is optional: with it, a network can be given as
an ``nn.Sequential`` of ``Linear`` and activation modules).

    from curvature_client import CurvatureClient
    client = CurvatureClient("http://127.0.0.1:3000")
    H = client.hessian(model, X, T, loss="sum-of-squares")            # numpy (W, W)
    inv, logdet = client.hessian_inverse(model, X, T, loss="sum-of-squares", damping=0.1)

What it does on the wire:

* the request is ``multipart/form-data``: a part ``request`` with the JSON request (network, loss,
  method, ...) and ``inputs``, ``targets`` (and ``vector``) as NumPy ``.npy`` parts, float64, or
  float32 when the array is float32 (half the bytes; the service widens it);
* it asks for ``Accept: application/x-npy`` and returns numpy arrays (``numpy.load`` of the body);
* a refusal (``application/problem+json``) raises :class:`CurvatureServiceError` with the status,
  title, code and the service's ``detail``;
* a 503 (busy) is retried after its ``Retry-After`` (bounded: ``max_retries`` times, each wait at
  most ``max_retry_wait`` seconds);
* ``api_key`` is sent as ``Authorization: Bearer <key>``;
* an answer over ``progress_threshold`` bytes shows a text progress bar on stderr while it downloads
  (its ``Content-Length`` is known up front);
* given several service URLs, the data rows are split across them and the requests run
  concurrently. The error is a sum over data points, so the Hessians (exact, outer-product, the two
  diagonals, finite-difference) and the Hessian-vector products of the shards add up to those of
  the whole data set; Jacobians are stacked. An inverse is *not* a sum: with several URLs,
  :meth:`CurvatureClient.hessian_inverse` asks each service for its shard's Hessian (outer-product
  or exact), sums them, adds ``damping * I`` and inverts locally by Cholesky, returning the same
  (H + alpha I)^-1 and log det(H + alpha I) that one service would (Woodbury and Cholesky agree in
  exact arithmetic).

Parameter order everywhere: layer by layer, weights row-major (out x in, as ``nn.Linear.weight``),
then bias: the order of ``torch.nn.utils.parameters_to_vector``.
"""

from __future__ import annotations

import email.utils
import io
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Iterable, Mapping, Optional, Sequence, Tuple, Union

import numpy as np
import requests

__all__ = [
    "CurvatureClient",
    "CurvatureServiceError",
    "network_from_layers",
    "network_from_torch",
    "ACTIVATIONS",
    "HESSIAN_METHODS",
]

ACTIVATIONS = ("identity", "tanh", "sigmoid", "relu", "softplus", "gelu", "silu", "leaky-relu", "elu", "softmax")
HESSIAN_METHODS = ("exact", "outer-product", "diagonal", "diagonal-approximation", "finite-difference")
NPY = "application/x-npy"


class CurvatureServiceError(Exception):
    """A refusal from the service (RFC 9457 problem+json), or a transport failure (status None).

    Attributes: ``status`` (HTTP status), ``title``, ``detail`` (what is wrong, in the service's
    words), ``code`` (the service's catalogue code, e.g. ``SHAPE_MISMATCH``), ``url`` and
    ``problem`` (the whole problem object).
    """

    def __init__(self, status: Optional[int], title: str, detail: str, code: Optional[str] = None,
                 url: Optional[str] = None, problem: Optional[Mapping[str, Any]] = None):
        self.status = status
        self.title = title
        self.detail = detail
        self.code = code
        self.url = url
        self.problem = dict(problem or {})
        where = f" from {url}" if url else ""
        super().__init__(f"{status} {title}{where}: {detail}" if status else f"{title}{where}: {detail}")


# --- networks ------------------------------------------------------------------------------------

def _layer(layer: Any, index: int) -> dict:
    if isinstance(layer, Mapping):
        weights, bias, activation = layer["weights"], layer["bias"], layer.get("activation", "identity")
    else:
        weights, bias, activation = (tuple(layer) + ("identity",))[:3]
    w = np.asarray(weights, dtype=np.float64)
    b = np.asarray(bias, dtype=np.float64).reshape(-1)
    if w.ndim != 2 or w.shape[0] != b.shape[0]:
        raise ValueError(f"layer {index}: weights must be out x in and bias have out entries; got {w.shape} and {b.shape}")
    if activation not in ACTIVATIONS:
        raise ValueError(f"layer {index}: activation {activation!r}; use one of {', '.join(ACTIVATIONS)}")
    return {"weights": w.tolist(), "bias": b.tolist(), "activation": activation}


def network_from_layers(layers: Iterable[Any]) -> dict:
    """The API's network from layers given as dicts ``{"weights", "bias", "activation"}`` or tuples
    ``(weights, bias[, activation])``; weights are out x in (as ``nn.Linear.weight``)."""
    out = [_layer(layer, i) for i, layer in enumerate(layers)]
    if not out:
        raise ValueError("a network needs at least one layer")
    return {"layers": out}


def _torch_activation(module: Any) -> Optional[str]:
    import torch.nn as nn  # only called with torch modules

    if isinstance(module, nn.Identity):
        return "identity"
    if isinstance(module, nn.Tanh):
        return "tanh"
    if isinstance(module, nn.Sigmoid):
        return "sigmoid"
    if isinstance(module, nn.ReLU):
        return "relu"
    if isinstance(module, nn.Softplus):
        if module.beta != 1:
            raise ValueError(f"{module}: only Softplus(beta=1) is supported (the service's softplus is log(1 + e^a))")
        return "softplus"
    if isinstance(module, nn.Softmax):
        if module.dim not in (-1, 1):
            raise ValueError(f"{module}: only Softmax over the last dimension (dim=-1) is supported")
        return "softmax"
    return None


def network_from_torch(model: Any) -> dict:
    """The API's network from a PyTorch ``nn.Sequential`` of ``Linear`` modules, each followed by at
    most one activation (Tanh, Sigmoid, ReLU, Softplus, Identity, or Softmax(dim=-1) at the output).
    A Linear with no activation after it is linear (identity)."""
    import torch.nn as nn

    modules = list(model.children()) if isinstance(model, nn.Sequential) else [model]
    layers: list = []
    pending: Optional[Any] = None
    for m in modules:
        if isinstance(m, nn.Linear):
            if pending is not None:
                layers.append((pending, "identity"))
            pending = m
            continue
        act = _torch_activation(m)
        if act is None:
            raise ValueError(f"unsupported module {m!r}: use Linear and Tanh, Sigmoid, ReLU, Softplus, Identity or Softmax(dim=-1)")
        if pending is None:
            if act == "identity":
                continue
            raise ValueError(f"{m!r} does not follow a Linear module")
        layers.append((pending, act))
        pending = None
    if pending is not None:
        layers.append((pending, "identity"))
    if not layers:
        raise ValueError("the model has no Linear module")
    out = []
    for lin, act in layers:
        if lin.bias is None:
            raise ValueError(f"{lin!r} has no bias; the service's layers always have one (use bias=True)")
        w = lin.weight.detach().cpu().double().numpy()
        b = lin.bias.detach().cpu().double().numpy()
        out.append({"weights": w, "bias": b, "activation": act})
    return network_from_layers(out)


def _network(network: Any) -> dict:
    """A network given as the API's dict, a list of layers, or a torch module."""
    if isinstance(network, Mapping) and "layers" in network:
        return network_from_layers(network["layers"])
    if hasattr(network, "parameters") and hasattr(network, "children"):
        return network_from_torch(network)
    return network_from_layers(network)


# --- wire helpers --------------------------------------------------------------------------------

def _npy_bytes(array: Any, ndim: int, name: str) -> bytes:
    a = np.asarray(array)
    if a.dtype != np.float32:
        a = a.astype(np.float64, copy=False)
    if ndim == 2 and a.ndim == 1:
        a = a.reshape(-1, 1)
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D; got shape {a.shape}")
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(a), allow_pickle=False)
    return buf.getvalue()


def _retry_after(value: Optional[str], attempt: int) -> float:
    if value:
        value = value.strip()
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            if when is not None:
                return max(0.0, when.timestamp() - time.time())
    return 0.5 * 2 ** attempt


class _Progress:
    """A text progress bar on stderr: ``[#####.....]  48%  12.0/25.0 MiB``."""

    def __init__(self, total: int, label: str, stream: Any = None, width: int = 30):
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


# --- the client ----------------------------------------------------------------------------------

class CurvatureClient:
    """A client of one or more curvature services.

    ``urls``: one base URL (``"http://host:3000"``) or several; with several, data rows are split
    across them (see the module's doc). ``api_key``: sent as a Bearer token. ``timeout``: seconds
    per request. ``max_retries`` / ``max_retry_wait``: how often and how long to wait after a 503.
    ``progress``: show a download bar on stderr (None: only when stderr is a terminal);
    ``progress_threshold``: the smallest answer, in bytes, that gets one. ``session``: a
    ``requests.Session`` to send every request on (default: a new connection per request).
    """

    def __init__(self, urls: Union[str, Sequence[str]], api_key: Optional[str] = None, timeout: float = 600.0,
                 max_retries: int = 5, max_retry_wait: float = 60.0, progress: Optional[bool] = None,
                 progress_threshold: int = 8 * 1024 * 1024, session: Optional[requests.Session] = None):
        self.urls = [urls] if isinstance(urls, str) else list(urls)
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

    # -- public API --

    def jacobian(self, network: Any, inputs: Any, wrt: str = "inputs") -> np.ndarray:
        """J[n, k, i] = dy_k/dx_i (N x K x D), or dy_k/dw_i with ``wrt="parameters"`` (N x K x W)."""
        net = _network(network)
        x = np.asarray(inputs)
        shards = self._shards(len(x))
        parts = self._map(lambda url, rows: self._post(url, "/jacobian", {"network": net, "wrt": wrt}, {"inputs": (x[rows], 2)})[0],
                          shards)
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)

    def hessian(self, network: Any, inputs: Any, targets: Any, loss: str, method: str = "exact") -> np.ndarray:
        """The Hessian of E = sum_n E_n with respect to the parameters: W x W for ``exact``,
        ``outer-product`` and ``finite-difference``; its diagonal (W) for ``diagonal`` and
        ``diagonal-approximation``. With several URLs, the shards' Hessians are summed."""
        if method not in HESSIAN_METHODS:
            raise ValueError(f"method {method!r}; use one of {', '.join(HESSIAN_METHODS)}")
        return self._summed("/hessian", _network(network), inputs, targets, {"loss": loss, "method": method})

    def hessian_vector_product(self, network: Any, inputs: Any, targets: Any, loss: str, vector: Any) -> np.ndarray:
        """H v by the R-operator, O(W) memory (v has W entries in the parameter order)."""
        v = np.asarray(vector)
        return self._summed("/hessian/vector-product", _network(network), inputs, targets, {"loss": loss}, extra={"vector": (v, 1)})

    def hessian_inverse(self, network: Any, inputs: Any, targets: Any, loss: str, damping: float,
                        method: str = "woodbury", hessian: str = "outer-product") -> Tuple[np.ndarray, float]:
        """(H + damping I)^-1 and log det(H + damping I), with H the ``outer-product`` or ``exact``
        Hessian (``method``: ``woodbury``, outer-product only, or ``cholesky``).

        With one URL the service inverts. With several, each computes its shard's Hessian; they are
        summed here, ``damping * I`` is added and the sum is inverted by Cholesky locally (an inverse
        is not a sum over data points, so it cannot be split)."""
        net = _network(network)
        if len(self.urls) == 1:
            body = {"network": net, "loss": loss, "damping": damping, "method": method, "hessian": hessian}
            array, headers = self._post(self.urls[0], "/hessian/inverse", body,
                                        {"inputs": (np.asarray(inputs), 2), "targets": (np.asarray(targets), 2)})
            return array, float(headers["X-Log-Determinant"])
        if method == "woodbury" and hessian == "exact":
            raise ValueError("method 'woodbury' inverts the outer-product Hessian only; use method='cholesky' with hessian='exact'")
        h = self.hessian(net, inputs, targets, loss, method=hessian)
        return invert_damped(h, damping)

    # -- internals --

    def _shards(self, n: int) -> list:
        k = max(1, min(len(self.urls), n))
        return [s for s in np.array_split(np.arange(n), k) if len(s)]

    def _map(self, fn: Any, shards: list) -> list:
        if len(shards) == 1:
            return [fn(self.urls[0], shards[0])]
        with ThreadPoolExecutor(max_workers=len(shards)) as pool:
            futures = [pool.submit(fn, self.urls[i], rows) for i, rows in enumerate(shards)]
            return [f.result() for f in futures]

    def _summed(self, path: str, net: dict, inputs: Any, targets: Any, fields: dict, extra: Optional[dict] = None) -> np.ndarray:
        x, t = np.asarray(inputs), np.asarray(targets)
        if x.ndim == 2 and t.ndim in (1, 2) and len(x) != len(t):
            raise ValueError(f"inputs have {len(x)} rows but targets have {len(t)}")
        body = {"network": net, **fields}

        def one(url: str, rows: np.ndarray) -> np.ndarray:
            arrays = {"inputs": (x[rows], 2), "targets": (t[rows], 2), **(extra or {})}
            return self._post(url, path, body, arrays)[0]

        parts = self._map(one, self._shards(len(x)))
        total = parts[0].copy()
        for p in parts[1:]:
            total += p
        return total

    def _post(self, url: str, path: str, body: dict, arrays: Mapping[str, Tuple[Any, int]]) -> Tuple[np.ndarray, Mapping[str, str]]:
        """POSTs one multipart request (JSON part + .npy parts) and returns the .npy answer and headers."""
        files: dict = {"request": (None, json.dumps(body), "application/json")}
        for name, (array, ndim) in arrays.items():
            files[name] = (f"{name}.npy", _npy_bytes(array, ndim, name), NPY)
        # requests encodes the body once; the encoded bytes are reused on every retry.
        prepared = requests.Request("POST", url + path, files=files, headers=self._headers()).prepare()
        attempt = 0
        while True:
            # A connection of its own per request (unless a session was given): a load balancer that
            # balances connections, as a Kubernetes Service does, then spreads shards and retries
            # over the replicas instead of pinning them to one busy pod.
            session = self.session or requests.Session()
            try:
                r = session.send(prepared, stream=True, timeout=self.timeout)
            except requests.RequestException as e:
                if session is not self.session:
                    session.close()
                raise CurvatureServiceError(None, "Connection failed", str(e), url=url + path) from e
            if r.status_code == 503 and attempt < self.max_retries:
                wait = min(self.max_retry_wait, _retry_after(r.headers.get("Retry-After"), attempt))
                r.close()
                if session is not self.session:
                    session.close()
                attempt += 1
                time.sleep(wait)
                continue
            if r.status_code != 200:
                err = self._error(r, url + path)
                if session is not self.session:
                    session.close()
                raise err
            try:
                data = self._read(r, path)
            finally:
                r.close()
                if session is not self.session:
                    session.close()
            return np.load(io.BytesIO(data), allow_pickle=False), r.headers

    def _headers(self) -> dict:
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
        problem: dict = {}
        if "json" in r.headers.get("Content-Type", ""):
            try:
                problem = json.loads(text)
            except ValueError:
                problem = {}
        r.close()
        return CurvatureServiceError(
            r.status_code,
            str(problem.get("title") or r.reason or "Error"),
            str(problem.get("detail") or text[:500]),
            code=problem.get("code"),
            url=url,
            problem=problem,
        )


def invert_damped(h: np.ndarray, damping: float) -> Tuple[np.ndarray, float]:
    """(H + damping I)^-1 and log det(H + damping I) by Cholesky, as the service's ``cholesky``
    method; raises CurvatureServiceError (422) when H + damping I is not positive definite."""
    a = np.array(h, dtype=np.float64, copy=True)
    a[np.diag_indices_from(a)] += damping
    try:
        chol = np.linalg.cholesky(a)
    except np.linalg.LinAlgError as e:
        raise CurvatureServiceError(422, "Matrix not positive definite",
                                    f"the summed Hessian plus {damping} I is not positive definite; use a larger damping") from e
    inv_l = np.linalg.inv(chol)
    inverse = inv_l.T @ inv_l
    return (inverse + inverse.T) / 2, float(2 * np.sum(np.log(np.diag(chol))))
