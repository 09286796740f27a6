"""The PyTorch side of `npm run bench` (scripts/bench/bench.ts): the same workloads in float64.

Usage: python3 torch_bench.py MANIFEST.json RESULTS.json

The manifest names, per problem, the JSON request body the service got (same network, inputs and
targets, so both sides see the same float64 numbers), and the tasks: a kind (exact,
outer-product, cholesky), the service's answer saved as .npy and its log-determinant if any.
Per task this script times only the PyTorch computation (after a warm-up on a toy network),
compares the service's answer with PyTorch's as max|a - b| / max(1, max|b|), and writes the
results as JSON. A result is computed once per (problem, kind) and reused by the tasks that
share it (e.g. the TypeScript-backend row, or the Woodbury row whose reference is the Cholesky
inverse).

PyTorch references:
  exact          torch.autograd.functional.hessian(E, theta, vectorize=True)
  outer-product  B = torch.autograd.functional.jacobian(y(theta).reshape(-1), theta, vectorize=True),
                 then B.T @ B (identity outputs with sum-of-squares: L_n = I, so this is the exact
                 Gauss-Newton matrix); both steps timed
  cholesky       torch.cholesky_inverse(torch.linalg.cholesky(G + alpha I)), G from the
                 outer-product reference (not timed); only the factorisation and inverse timed
"""
import ctypes
import json
import os
import sys
import time

import numpy as np
import torch

from peers import problem_of  # the same reading of a body as the sweep's peers (this folder is on sys.path)


def load_problem(path):
    with open(path) as f:
        body = json.load(f)
    theta, meta, x, t = problem_of(body)
    return {"theta": torch.from_numpy(theta), "meta": meta, "x": torch.from_numpy(x), "t": torch.from_numpy(t),
            "damping": body.get("damping")}


def forward(theta, meta, x):
    z, o = x, 0
    for out, inp, act in meta:
        w = theta[o:o + out * inp].view(out, inp)
        o += out * inp
        b = theta[o:o + out]
        o += out
        a = z @ w.T + b
        if act == "tanh":
            z = torch.tanh(a)
        elif act == "identity":
            z = a
        else:
            raise ValueError(f"activation {act} not in this benchmark")
    return z


def exact(p):
    meta, x, t = p["meta"], p["x"], p["t"]

    def error(theta):
        return 0.5 * ((forward(theta, meta, x) - t) ** 2).sum()

    return torch.autograd.functional.hessian(error, p["theta"], vectorize=True)


def outer(p):
    meta, x = p["meta"], p["x"]
    b = torch.autograd.functional.jacobian(lambda th: forward(th, meta, x).reshape(-1), p["theta"], vectorize=True)
    return b.T @ b


def cholesky_inverse(g, damping):
    chol = torch.linalg.cholesky(g + damping * torch.eye(g.shape[0], dtype=torch.float64))
    inv = torch.cholesky_inverse(chol)
    return inv, float(2 * torch.log(torch.diagonal(chol)).sum())


def timed(f):
    t0 = time.perf_counter()
    r = f()
    return r, time.perf_counter() - t0


def toy_problem():
    g = torch.Generator().manual_seed(0)
    meta = [(4, 3, "tanh"), (2, 4, "identity")]
    w = sum(o * (i + 1) for o, i, _ in meta)
    return {"theta": torch.randn(w, generator=g, dtype=torch.float64), "meta": meta,
            "x": torch.randn(5, 3, generator=g, dtype=torch.float64), "t": torch.randn(5, 2, generator=g, dtype=torch.float64)}


def openblas_core():
    """torch's BLAS: MKL (PyTorch's x86 wheels), else the system OpenBLAS and the kernels it chose (Debian's build)."""
    if torch.backends.mkl.is_available():
        return "MKL"
    try:
        lib = ctypes.CDLL("libopenblas.so.0")
        lib.openblas_get_corename.restype = ctypes.c_char_p
        lib.openblas_get_config.restype = ctypes.c_char_p
        return f"{lib.openblas_get_corename().decode()} ({lib.openblas_get_config().decode().strip()})"
    except (OSError, AttributeError):
        return "unknown"


def rel_diff(service, ref):
    a = np.asarray(service, dtype=np.float64)
    b = np.asarray(ref, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = max(1.0, float(np.max(np.abs(b))))
    return float(np.max(np.abs(a - b))) / scale


def main():
    manifest_path, results_path = sys.argv[1], sys.argv[2]
    with open(manifest_path) as f:
        manifest = json.load(f)
    torch.set_num_threads(os.cpu_count() or 1)

    # warm-up: lazy initialisation of autograd's vmap, BLAS threads and LAPACK on a toy network
    toy = toy_problem()
    exact(toy)
    cholesky_inverse(outer(toy), 1.0)

    problems = {}
    cache = {}  # (problem, kind) -> (result, seconds, extra)

    def reference(problem, kind):
        key = (problem, kind)
        if key in cache:
            return cache[key]
        if problem not in problems:
            problems[problem] = load_problem(manifest["problems"][problem])
        p = problems[problem]
        with torch.no_grad() if kind == "cholesky" else torch.enable_grad():
            if kind == "exact":
                r, s = timed(lambda: exact(p))
                cache[key] = (r, s, {})
            elif kind == "outer-product":
                r, s = timed(lambda: outer(p))
                cache[key] = (r, s, {})
            elif kind == "cholesky":
                g = reference(problem, "outer-product")[0]
                (inv, logdet), s = timed(lambda: cholesky_inverse(g, manifest["damping"]))
                cache[key] = (inv, s, {"logDeterminant": logdet})
            else:
                raise ValueError(f"no PyTorch reference for {kind}")
        print(f"  torch {problem} {kind}: {cache[key][1]:.3f} s", file=sys.stderr, flush=True)
        return cache[key]

    out = {"threads": torch.get_num_threads(), "torch": torch.__version__, "blas": openblas_core(), "tasks": {}}
    for task in manifest["tasks"]:
        ref, seconds, extra = reference(task["problem"], task["kind"])
        entry = {"seconds": seconds}
        if task.get("serviceNpy"):
            entry["relDiff"] = rel_diff(np.load(task["serviceNpy"], mmap_mode="r"), ref.numpy())
        if task.get("logDeterminant") is not None and "logDeterminant" in extra:
            ld = extra["logDeterminant"]
            entry["logDetDiff"] = abs(task["logDeterminant"] - ld) / max(1.0, abs(ld))
        out["tasks"][task["id"]] = entry
    with open(results_path, "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
