"""The PyTorch parts: networks from nn.Sequential, and the example script. Skipped without torch."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed for this Python (Debian: apt-get install python3-torch)")
nn = torch.nn

from curvature_client import CurvatureClient, network_from_torch  # noqa: E402

torch.set_default_dtype(torch.float64)
EXAMPLE = pathlib.Path(__file__).resolve().parents[1] / "examples" / "fit_and_check.py"


def torch_hessian(model, x, t, loss):
    params = list(model.parameters())
    shapes = [p.shape for p in params]
    flat = torch.nn.utils.parameters_to_vector(params).detach()

    def error(w):
        out, i = x, 0
        tensors = []
        for s in shapes:
            n = int(np.prod(s))
            tensors.append(w[i:i + n].reshape(s))
            i += n
        j = 0
        for m in model:
            if isinstance(m, nn.Linear):
                out = out @ tensors[j].T + tensors[j + 1]
                j += 2
            else:
                out = m(out)
        if loss == "sum-of-squares":
            return 0.5 * ((out - t) ** 2).sum()
        if loss == "cross-entropy":
            return -(t * torch.log(out) + (1 - t) * torch.log(1 - out)).sum()
        return -(t * torch.log(out)).sum()

    return torch.autograd.functional.hessian(error, flat).numpy()


MODELS = [
    ("tanh-identity", lambda: nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)), "sum-of-squares"),
    ("relu-sigmoid", lambda: nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 2), nn.Sigmoid()), "cross-entropy"),
    ("softplus-softmax", lambda: nn.Sequential(nn.Linear(2, 3), nn.Softplus(), nn.Identity(), nn.Linear(3, 3), nn.Softmax(dim=-1)),
     "softmax-cross-entropy"),
    ("linear-linear", lambda: nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)), "sum-of-squares"),
]


@pytest.mark.parametrize("name,make,loss", MODELS, ids=[m[0] for m in MODELS])
def test_a_torch_sequential_gives_the_autograd_hessian(service_url, name, make, loss):
    torch.manual_seed(7)
    model = make()
    x = torch.randn(6, model[0].in_features)
    k = [m for m in model if isinstance(m, nn.Linear)][-1].out_features
    if loss == "sum-of-squares":
        t = torch.randn(6, k)
    elif loss == "cross-entropy":
        t = torch.rand(6, k)
    else:
        t = torch.softmax(torch.randn(6, k), dim=-1)
    h = CurvatureClient(service_url).hessian(model, x.numpy(), t.numpy(), loss)
    expected = torch_hessian(model, x, t, loss)
    assert h.shape == expected.shape
    assert np.max(np.abs(h - expected)) <= 1e-9 * max(1.0, np.max(np.abs(expected)))


def test_unsupported_modules_are_refused_by_name():
    with pytest.raises(ValueError, match="GELU"):
        network_from_torch(nn.Sequential(nn.Linear(2, 2), nn.GELU()))
    with pytest.raises(ValueError, match="dim=-1"):
        network_from_torch(nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=0)))
    with pytest.raises(ValueError, match="bias"):
        network_from_torch(nn.Sequential(nn.Linear(2, 2, bias=False)))


def test_the_example_script_fits_and_checks(service_url):
    r = subprocess.run([sys.executable, str(EXAMPLE), "--url", service_url], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(EXAMPLE.parents[1])})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "exact Hessian matches torch.autograd.functional.hessian" in r.stdout
    assert "inverse matches" in r.stdout
