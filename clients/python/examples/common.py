"""What the worked examples share: the command line, PyTorch if it is there, a numpy forward pass of
the service's networks, and a regularised fit to an accurate minimum through the service itself.

The Laplace approximation, Optimal Brain Surgeon and influence functions all expand the error
around a minimum, where the gradient vanishes; torch.optim stops long before that (|grad| ~ 1e-4),
so the examples fit by damped Newton steps on the exact Hessian, solved by the service
(POST /hessian/inverse-vector-product), to |grad| ~ 1e-10 or below. The networks are numpy arrays in
the API's form; with PyTorch, each example also rebuilds its network as an nn.Sequential and checks
the service against torch.autograd.
"""
import argparse
import os
import pathlib
import sys
from typing import Any, Dict, Tuple

import numpy as np

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # the package, uninstalled
from curvature_client import CurvatureClient, CurvatureServiceError  # noqa: E402


def client_from_arguments(doc: str) -> Tuple[CurvatureClient, Any]:
    """The client of --url (default: CURVATURE_SERVICE_URL, else http://127.0.0.1:3000), and torch or
    None: --no-torch, or torch not installed, runs the numpy-only path."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--url", default=os.environ.get("CURVATURE_SERVICE_URL", "http://127.0.0.1:3000"))
    parser.add_argument("--api-key", default=os.environ.get("CURVATURE_API_KEY"))
    parser.add_argument("--no-torch", action="store_true", help="run without PyTorch even where it is installed")
    args = parser.parse_args()
    torch = None
    if args.no_torch:
        print("--no-torch: the cross-checks against PyTorch are skipped")
    else:
        try:
            import torch  # type: ignore[no-redef]
        except ImportError:
            print("PyTorch is not installed: the cross-checks against PyTorch are skipped (everything else is numpy)")
    return CurvatureClient(args.url, api_key=args.api_key), torch


def random_network(sizes, activation="tanh", seed=0):
    """Layers sizes[0] -> ... -> sizes[-1] with `activation` between them and a linear output, as the
    API's dict: weights out x in (as nn.Linear.weight), N(0, 1/in) entries, small biases."""
    rng = np.random.default_rng(seed)
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        layers.append({"weights": rng.standard_normal((n_out, n_in)) / np.sqrt(n_in),
                       "bias": 0.1 * rng.standard_normal(n_out),
                       "activation": activation if i < len(sizes) - 2 else "identity"})
    return {"layers": layers}


def torch_model(network, torch):
    """The same network as a PyTorch nn.Sequential (Linear, Tanh, ..., Linear), float64."""
    nn = torch.nn
    modules = []
    for layer in network["layers"]:
        w = torch.tensor(np.asarray(layer["weights"]), dtype=torch.float64)
        lin = nn.Linear(w.shape[1], w.shape[0]).double()
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(torch.tensor(np.asarray(layer["bias"]), dtype=torch.float64))
        modules.append(lin)
        if layer["activation"] == "tanh":
            modules.append(nn.Tanh())
        elif layer["activation"] != "identity":
            raise ValueError(f"the examples use tanh and identity layers; got {layer['activation']}")
    return nn.Sequential(*modules)


def torch_function(model, x, torch):
    """f(w): the nn.Sequential's outputs at the inputs x with its parameters taken from the flat vector w
    (parameters_to_vector's order, the service's), for torch.autograd.functional."""
    shapes = [p.shape for p in model.parameters()]
    inputs = torch.from_numpy(np.asarray(x, dtype=np.float64))

    def f(w):
        params, i = [], 0
        for shape in shapes:
            params.append(w[i:i + shape.numel()].reshape(shape))
            i += shape.numel()
        out, j = inputs, 0
        for m in model:
            if isinstance(m, torch.nn.Linear):
                out, j = out @ params[j].T + params[j + 1], j + 2
            else:
                out = m(out)
        return out

    return f


# --- the parameter vector ------------------------------------------------------------------------

def flat(network) -> np.ndarray:
    """w in the service's parameter order: layer by layer, weights row-major, then bias
    (torch.nn.utils.parameters_to_vector's order)."""
    return np.concatenate([np.concatenate([np.ravel(l["weights"]), np.ravel(l["bias"])]) for l in network["layers"]])


def with_parameters(network, w: np.ndarray) -> Dict[str, Any]:
    """The network with its parameters taken from the vector w (the order of :func:`flat`)."""
    layers, i = [], 0
    for layer in network["layers"]:
        out_l, in_l = np.shape(layer["weights"])
        weights = w[i:i + out_l * in_l].reshape(out_l, in_l)
        i += out_l * in_l
        layers.append({"weights": weights, "bias": w[i:i + out_l], "activation": layer["activation"]})
        i += out_l
    assert i == len(w), f"{len(w)} parameters for a network of {i}"
    return {"layers": layers}


# --- the error, in numpy ---------------------------------------------------------------------------

def forward(network, x: np.ndarray) -> np.ndarray:
    """The network's outputs y (N x K): tanh hidden layers, linear outputs (or logits)."""
    z = np.asarray(x, dtype=np.float64)
    for layer in network["layers"]:
        a = z @ np.asarray(layer["weights"]).T + np.asarray(layer["bias"])
        z = np.tanh(a) if layer["activation"] == "tanh" else a
    return z


def log_softmax(y: np.ndarray) -> np.ndarray:
    y = y - y.max(axis=1, keepdims=True)
    return y - np.log(np.exp(y).sum(axis=1, keepdims=True))


def errors(network, x, loss, targets=None, labels=None) -> np.ndarray:
    """E_n for each point: 1/2 |y_n - t_n|^2 (sum-of-squares) or -log softmax(y_n)[label_n]
    (softmax-cross-entropy on logits, as nn.CrossEntropyLoss)."""
    y = forward(network, x)
    if loss == "sum-of-squares":
        return 0.5 * np.sum((y - targets) ** 2, axis=1)
    return -log_softmax(y)[np.arange(len(y)), labels]


def output_gradients(network, x, loss, targets=None, labels=None) -> np.ndarray:
    """dE_n/dy_n (N x K): y - t, or softmax(y) - onehot(label)."""
    y = forward(network, x)
    if loss == "sum-of-squares":
        return y - targets
    g = np.exp(log_softmax(y))
    g[np.arange(len(y)), labels] -= 1.0
    return g


def point_gradients(client, network, x, loss, targets=None, labels=None) -> np.ndarray:
    """grad_w E_n for each point (N x W) = J_n^T dE_n/dy_n, with J_n = dy_n/dw the service's parameter
    Jacobian (POST /jacobian, wrt parameters)."""
    jac = client.jacobian(network, x, wrt="parameters")  # N x K x W
    return np.einsum("nkw,nk->nw", jac, output_gradients(network, x, loss, targets, labels))


# --- the fit -----------------------------------------------------------------------------------------

def fit(client, network, x, loss, alpha, targets=None, labels=None, tolerance=1e-10, max_steps=200):
    """The network at a minimum of F(w) = sum_n E_n(w) + alpha/2 |w|^2, started from the given weights.

    Damped Newton steps w <- w - (H + (alpha + lam) I)^-1 grad F, H the exact Hessian of sum_n E_n,
    solved by the service (Cholesky, which refuses an indefinite H + (alpha + lam) I: then lam grows);
    lam grows while F does not fall and shrinks after each step that lowers it, so the steps become
    Newton's and converge quadratically. Stops when |grad F| <= tolerance * max(1, F)."""
    data = {"targets": targets} if labels is None else {"labels": labels}

    def objective(net):
        return float(np.sum(errors(net, x, loss, targets, labels)) + 0.5 * alpha * flat(net) @ flat(net))

    lam, f = 1.0, objective(network)
    for _ in range(max_steps):
        g = point_gradients(client, network, x, loss, targets, labels).sum(axis=0) + alpha * flat(network)
        if np.linalg.norm(g) <= tolerance * max(1.0, abs(f)):
            return network
        try:
            step = client.inverse_vector_product(network, x, loss=loss, vectors=g, damping=alpha + lam, hessian="exact",
                                                 **data).solutions
        except CurvatureServiceError as e:
            if e.code != "NOT_POSITIVE_DEFINITE":
                raise
            lam = 4 * lam + alpha
            continue
        trial = with_parameters(network, flat(network) - step)
        f_trial = objective(trial)
        if f_trial <= f + 1e-12 * max(1.0, abs(f)):  # near the minimum F changes by less than its rounding
            network, f, lam = trial, f_trial, lam / 4
        else:
            lam = 4 * lam + alpha
    raise RuntimeError(f"no minimum within {max_steps} steps: |grad F| = {np.linalg.norm(g):.2e}")


def check(condition: bool, message: str) -> None:
    """Prints the check, and stops the example (exit 1) if it failed."""
    print(("ok:     " if condition else "FAILED: ") + message)
    if not condition:
        sys.exit(1)


def relative_error(a, b) -> float:
    a, b = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(a - b)) / max(1e-300, float(np.max(np.abs(b)))))

