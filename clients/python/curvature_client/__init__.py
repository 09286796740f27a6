"""A Python client for the curvature service: Jacobians, Hessians, their structured and matrix-free
forms at scale, and inverse Hessians of MLPs.

Needs only numpy and requests (PyTorch is optional: with it, a network can be given as an
``nn.Sequential`` of ``Linear`` and activation modules, and arrays as CPU tensors).

    from curvature_client import CurvatureClient
    client = CurvatureClient("http://127.0.0.1:3000")
    H = client.hessian(model, X, T, loss="sum-of-squares")                        # numpy (W, W)
    H = client.hessian(model, X, labels=y, loss="softmax-cross-entropy",
                       reduction="mean")                                           # nn.CrossEntropyLoss()
    inv, logdet = client.hessian_inverse(model, X, T, loss="sum-of-squares", damping=0.1)

What it does on the wire:

* the request is ``multipart/form-data``: a part ``request`` with the JSON request (network, loss,
  reduction, parameters, method, ...) and ``inputs``, ``targets`` (and ``vector``) as NumPy ``.npy``
  parts, float64, or float32 when the array is float32 (half the bytes; the service widens it);
  ``labels`` as an int64 ``.npy`` part;
* it asks for ``Accept: application/x-npy`` (``application/x-npz`` for answers of several arrays) and
  returns numpy arrays (``numpy.load`` of the body), or small dataclasses (:class:`Eigenpairs`,
  :class:`Kfac`, :class:`InverseVectorProduct`) that also hold the values the service sends in headers;
* a refusal (``application/problem+json``) raises :class:`CurvatureServiceError` with the status,
  title, code and the service's ``detail``; the client checks little itself and lets the service
  refuse, so the message is the service's;
* a 503 ``OVERLOADED`` (every worker busy and the queue full) is retried after its ``Retry-After``
  (bounded: ``max_retries`` times, each wait at most ``max_retry_wait`` seconds), each retry logged at
  WARNING on the ``curvature_client`` logger with its wait; a 503 ``TIMEOUT`` is raised at once;
* ``api_key`` is sent as ``Authorization: Bearer <key>``;
* an answer over ``progress_threshold`` bytes shows a text progress bar on stderr while it downloads
  (its ``Content-Length`` is known up front);
* given several service URLs, the data rows are split across them and the requests run
  concurrently. The error is a sum over data points, so the Hessians (exact, outer-product, the two
  diagonals, finite-difference) and the Hessian-vector products of the shards add up to those of
  the whole data set (for ``reduction="mean"`` the client asks the shards for sums and divides by
  the total N); Jacobians are stacked. An inverse is *not* a sum: with several URLs,
  :meth:`CurvatureClient.hessian_inverse` asks each service for its shard's Hessian (outer-product
  or exact), sums them, adds ``damping * I`` and inverts locally by Cholesky, returning the same
  (H + alpha I)^-1 and log det(H + alpha I) that one service would;
* at scale: per-layer blocks (``hessian(structure="block-diagonal")``), row slabs (``rows=``), the
  trace, KFAC factors, eigenpairs (Lanczos or dense) and inverse-Hessian-vector products; and
  :meth:`CurvatureClient.assemble_hessian`, a dense Hessian from row slabs computed by several
  services, streamed into an array you give (a ``numpy.memmap``), never held in memory.

Parameter order everywhere: layer by layer, weights row-major (out x in, as ``nn.Linear.weight``),
then bias (absent for ``bias=False``): the order of ``torch.nn.utils.parameters_to_vector``. With
``parameters=[layer indices]``, the selected layers' parameters in that same order.
"""

from ._client import HESSIAN_METHODS, LOSSES, REDUCTIONS, CurvatureClient, invert_damped
from ._errors import CurvatureServiceError
from ._networks import ACTIVATIONS, Selection, network_from_layers, network_from_torch, parameter_count, selected_layers
from ._results import Eigenpairs, InverseVectorProduct, Kfac, KfacFactor, SlabAssembly

__version__ = "0.3.0"

__all__ = [
    "__version__",
    "CurvatureClient",
    "CurvatureServiceError",
    "network_from_layers",
    "network_from_torch",
    "invert_damped",
    "parameter_count",
    "selected_layers",
    "Selection",
    "Eigenpairs",
    "Kfac",
    "KfacFactor",
    "InverseVectorProduct",
    "SlabAssembly",
    "ACTIVATIONS",
    "HESSIAN_METHODS",
    "LOSSES",
    "REDUCTIONS",
]
