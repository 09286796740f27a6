#!/usr/bin/env python3
"""Fit a small PyTorch network, ask the curvature service for its exact Hessian and the inverse of
the damped Hessian, and check both against torch.autograd.functional.hessian.

    python3 clients/python/examples/fit_and_check.py --url http://127.0.0.1:3000

Needs torch, numpy and requests, and a running service (npm start). Exits 1 if a check fails.
"""
import argparse
import os
import pathlib
import sys

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
from curvature_client import CurvatureClient  # noqa: E402


def error_of_parameters(model: nn.Sequential, x: torch.Tensor, t: torch.Tensor):
    """E(w) = 1/2 sum_n ||y(x_n; w) - t_n||^2 as a function of the flat parameter vector, in the
    order of parameters_to_vector (layer by layer, weight row-major, then bias): the service's order."""
    shapes = [p.shape for p in model.parameters()]

    def error(w: torch.Tensor) -> torch.Tensor:
        tensors, i = [], 0
        for s in shapes:
            n = int(np.prod(s))
            tensors.append(w[i:i + n].reshape(s))
            i += n
        out, j = x, 0
        for m in model:
            if isinstance(m, nn.Linear):
                out = out @ tensors[j].T + tensors[j + 1]
                j += 2
            else:
                out = m(out)
        return 0.5 * ((out - t) ** 2).sum()

    return error


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("CURVATURE_SERVICE_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--api-key", default=os.environ.get("CURVATURE_API_KEY"))
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args()

    torch.manual_seed(0)
    torch.set_default_dtype(torch.float64)
    x = torch.rand(64, 2) * 4 - 2
    t = (torch.sin(x[:, :1]) + 0.5 * x[:, 1:] + 0.05 * torch.randn(64, 1))
    model = nn.Sequential(nn.Linear(2, 6), nn.Tanh(), nn.Linear(6, 1))
    opt = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(args.steps):
        opt.zero_grad()
        loss = 0.5 * ((model(x) - t) ** 2).sum()
        loss.backward()
        opt.step()
    print(f"fitted a 2-6-1 tanh network on 64 points: E = {loss.item():.4f}")

    client = CurvatureClient(args.url, api_key=args.api_key)
    w = nn.utils.parameters_to_vector(model.parameters()).detach()
    h_torch = torch.autograd.functional.hessian(error_of_parameters(model, x, t), w).numpy()

    h = client.hessian(model, x.numpy(), t.numpy(), "sum-of-squares", method="exact")
    err = np.max(np.abs(h - h_torch)) / max(1.0, np.max(np.abs(h_torch)))
    ok = err < 1e-9
    print(f"exact Hessian ({h.shape[0]} x {h.shape[1]}): relative error {err:.2e} -> "
          f"{'exact Hessian matches torch.autograd.functional.hessian' if ok else 'MISMATCH'}")

    # The exact Hessian of a fitted network may be indefinite: damp it enough to be positive definite.
    smallest = float(np.linalg.eigvalsh(h_torch)[0])
    damping = max(1e-2, -smallest + 1e-2)
    inv, logdet = client.hessian_inverse(model, x.numpy(), t.numpy(), "sum-of-squares", damping=damping,
                                         method="cholesky", hessian="exact")
    damped = torch.from_numpy(h_torch) + damping * torch.eye(h_torch.shape[0])
    inv_torch = torch.linalg.inv(damped).numpy()
    logdet_torch = float(torch.linalg.slogdet(damped)[1])
    inv_err = np.max(np.abs(inv - inv_torch)) / max(1.0, np.max(np.abs(inv_torch)))
    inv_ok = inv_err < 1e-7 and abs(logdet - logdet_torch) < 1e-8 * max(1.0, abs(logdet_torch))
    print(f"(H + {damping:.4g} I)^-1: relative error {inv_err:.2e}, log det {logdet:.6f} vs {logdet_torch:.6f} -> "
          f"{'inverse matches' if inv_ok else 'MISMATCH'}")
    return 0 if ok and inv_ok else 1


if __name__ == "__main__":
    sys.exit(main())
