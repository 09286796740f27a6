"""The small typed answers of the curvature-at-scale endpoints: eigenpairs, Kronecker factors,
inverse-vector products and a slab assembly, each with the values the service sends in headers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterator, Optional, Tuple

import numpy as np


@dataclass(frozen=True)
class Eigenpairs:
    """A few eigenpairs of the exact or outer-product Hessian (POST /hessian/eigen).

    ``eigenvalues`` (k), ordered as asked (descending for ``largest`` and ``magnitude``, ascending
    for ``smallest``); ``eigenvectors`` (W x k), column j the unit eigenvector of eigenvalue j, in the
    parameter order; ``residuals`` (k), the achieved ||H v - lambda v||; ``iterations``, the
    curvature-vector products Lanczos used (0 for dense); ``method``, ``"lanczos"`` or ``"dense"``
    (``auto`` resolved). Unpacks as ``eigenvalues, eigenvectors = client.eigen(...)``."""

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    residuals: np.ndarray
    iterations: int
    method: str
    parameter_count: int

    def __iter__(self) -> Iterator[np.ndarray]:
        yield self.eigenvalues
        yield self.eigenvectors


@dataclass(frozen=True)
class KfacFactor:
    """One layer's Kronecker factors (POST /hessian/kfac): ``input_factor`` A_l = (1/N) sum_n z~ z~^T,
    (in_l + 1) x (in_l + 1) with z~ = (z_{l-1}, 1) (in_l x in_l for a layer without bias), and
    ``output_factor`` G_l = sum_n R^T L_n R, out_l x out_l (divided by N for the mean). The layer's
    KFAC block is G_l (x) A_l in the layout of [W_l | b_l]; :meth:`matrix` gives it in the service's
    parameter order (weights row-major, then bias)."""

    layer: int
    input_factor: np.ndarray
    output_factor: np.ndarray
    bias: bool

    def matrix(self) -> np.ndarray:
        """The dense W_l x W_l KFAC block G_l (x) A_l in the parameter order: the entry for weights
        (i, j) and (p, q) is G[i, p] A[j, q], with column in_l of the augmented layout the bias,
        which the parameter order puts after all the weights. W_l^2 memory: for checks on small layers."""
        a, g = self.input_factor, self.output_factor
        out_l, width = g.shape[0], a.shape[0]
        full: np.ndarray = np.kron(g, a)  # index i * width + j in the augmented layout
        if not self.bias:
            return full
        in_l = width - 1
        order = np.concatenate([(np.arange(out_l)[:, None] * width + np.arange(in_l)[None, :]).ravel(),
                                np.arange(out_l) * width + in_l])
        permuted: np.ndarray = full[np.ix_(order, order)]
        return permuted


@dataclass(frozen=True)
class Kfac:
    """The KFAC approximation of the outer-product Hessian: ``factors`` (one :class:`KfacFactor`
    per selected layer, in layer order) and, when a damping was given, ``log_determinant`` =
    log det(K + alpha I) of the block-diagonal KFAC matrix K. Iterates as ``(A_l, G_l)`` pairs."""

    factors: Tuple[KfacFactor, ...]
    log_determinant: Optional[float]
    parameter_count: int

    def __iter__(self) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
        for f in self.factors:
            yield f.input_factor, f.output_factor

    def __len__(self) -> int:
        return len(self.factors)

    def matrix(self) -> np.ndarray:
        """The dense block-diagonal K (W x W) over the selected parameters: for checks on small networks."""
        out = np.zeros((self.parameter_count, self.parameter_count))
        start = 0
        for f in self.factors:
            block = f.matrix()
            end = start + block.shape[0]
            out[start:end, start:end] = block
            start = end
        return out


def kfac_log_determinant(factors: Tuple[KfacFactor, ...], damping: float) -> float:
    """log det(K + alpha I) = sum_l sum_{i,j} log(mu_{l,i} lambda_{l,j} + alpha), with mu and lambda
    the eigenvalues of G_l and A_l (the eigenvalues of G (x) A are the products of theirs)."""
    total = 0.0
    for f in factors:
        mu = np.linalg.eigvalsh(f.output_factor)
        lam = np.linalg.eigvalsh(f.input_factor)
        total += float(np.sum(np.log(np.outer(mu, lam) + damping)))
    return total


@dataclass(frozen=True)
class InverseVectorProduct:
    """(H + alpha I)^-1 applied to vectors (POST /hessian/inverse-vector-product).

    ``solutions`` has the shape of the vectors given (m x W, or W for one 1-D vector): row i is
    (H + alpha I)^-1 v_i. ``iterations`` (m, int) are the curvature-vector products CG used per
    vector (0 for Cholesky and KFAC), ``residuals`` (m) the achieved ||(H + alpha I) x - v|| / ||v||,
    and ``method`` the one used (``"cg"``, ``"cholesky"`` or ``"kfac"``; ``auto`` resolved)."""

    solutions: np.ndarray
    iterations: np.ndarray
    residuals: np.ndarray
    method: str
    parameter_count: int


@dataclass(frozen=True)
class SlabAssembly:
    """What :meth:`CurvatureClient.assemble_hessian` did: the matrix is in the caller's array.

    ``parameter_count`` W; ``slabs`` and ``rows_per_slab`` (the last slab may be shorter);
    ``slabs_by_url``, how many slabs each service computed; ``max_in_flight``, the most requests
    open at once; ``seconds``, the wall time."""

    parameter_count: int
    slabs: int
    rows_per_slab: int
    max_in_flight: int
    seconds: float
    slabs_by_url: Dict[str, int] = field(default_factory=dict)
