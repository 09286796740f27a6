"""The PyTorch parts: networks from nn.Sequential, and the example script. Skipped without torch."""
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="PyTorch is not installed for this Python (Debian: apt-get install python3-torch)")
nn = torch.nn

from conftest import MODEL_CASES, close  # noqa: E402
from curvature_client import CurvatureClient, network_from_layers, network_from_torch  # noqa: E402

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


def test_unsupported_modules_and_parameters_are_refused_by_name():
    refusals = [
        (nn.Sequential(nn.Linear(2, 2), nn.GELU(approximate="tanh")), r"approximate='none'.*not approximate='tanh'"),
        (nn.Sequential(nn.Linear(2, 2), nn.LeakyReLU(0.2)), r"negative_slope=0.01.*not 0.2"),
        (nn.Sequential(nn.Linear(2, 2), nn.ELU(alpha=0.5)), r"alpha=1.*not 0.5"),
        (nn.Sequential(nn.Linear(2, 2), nn.Softplus(beta=2)), r"Softplus\(beta=1\)"),
        (nn.Sequential(nn.Linear(2, 2), nn.Softmax(dim=0)), r"dim=-1"),
        (nn.Sequential(nn.Linear(2, 2), nn.Flatten(), nn.Linear(2, 1)), r"module 1 Flatten.*only at the input"),
        (nn.Sequential(nn.Flatten(start_dim=0), nn.Linear(2, 1)), r"Flatten\(start_dim=1\)"),
        (nn.Sequential(nn.Linear(2, 3), nn.LogSoftmax(dim=-1)), r"LogSoftmax.*logits.*nn.CrossEntropyLoss"),
        (nn.Sequential(nn.Linear(2, 2), nn.Hardtanh()), r"unsupported module 1 Hardtanh"),
        (nn.Sequential(nn.Linear(2, 2), nn.Tanh(), nn.ReLU()), r"module 2 ReLU\(\) does not follow a Linear"),
        (nn.Sequential(nn.Tanh(), nn.Linear(2, 2)), r"does not follow a Linear"),
        (nn.Sequential(nn.Dropout(), nn.Identity()), r"no Linear"),
    ]
    for model, message in refusals:
        with pytest.raises(ValueError, match=message):
            network_from_torch(model)


def test_the_new_modules_map_to_the_services_layers():
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Dropout(0.2), nn.Linear(4, 5, bias=False), nn.GELU(), nn.Dropout(0.5),
                          nn.Linear(5, 5), nn.Identity(), nn.SiLU(),
                          nn.Sequential(nn.Linear(5, 4), nn.LeakyReLU()),
                          nn.Linear(4, 4), nn.ELU(), nn.Linear(4, 3))
    net = network_from_torch(model)
    assert [l["activation"] for l in net["layers"]] == ["gelu", "silu", "leaky-relu", "elu", "identity"]
    assert [l["bias"] is None for l in net["layers"]] == [True, False, False, False, False]
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    for layer, lin in zip(net["layers"], linears):
        assert np.array_equal(np.array(layer["weights"]), lin.weight.detach().numpy())
        if lin.bias is not None:
            assert np.array_equal(np.array(layer["bias"]), lin.bias.detach().numpy())
    # the parameter order is parameters_to_vector's: a bias-free layer contributes its weights only
    flat = nn.utils.parameters_to_vector(model.parameters()).detach().numpy()
    ours = np.concatenate([np.concatenate([np.ravel(l["weights"]), l["bias"] or []]) for l in net["layers"]])
    assert np.array_equal(ours, flat)
    # a lone Linear is a network too
    assert network_from_torch(nn.Linear(3, 2, bias=False))["layers"][0]["bias"] is None


# --- the reference models as nn.Sequential ---------------------------------------------------------

ACTIVATION_MODULES = {"identity": None, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "relu": nn.ReLU, "softplus": nn.Softplus,
                      "gelu": nn.GELU, "silu": nn.SiLU, "leaky-relu": nn.LeakyReLU, "elu": nn.ELU,
                      "softmax": lambda: nn.Softmax(dim=-1)}


def torch_model(network):
    """The case's network as an nn.Sequential of the modules a PyTorch user writes, with a Flatten at
    the input and Dropout after each hidden layer (the client computes eval-mode curvature; the model
    is left in training mode to show that it does)."""
    modules = [nn.Flatten()]
    last = len(network["layers"]) - 1
    for i, layer in enumerate(network["layers"]):
        w = torch.tensor(layer["weights"], dtype=torch.float64)
        bias = layer.get("bias")
        lin = nn.Linear(w.shape[1], w.shape[0], bias=bias is not None)
        with torch.no_grad():
            lin.weight.copy_(w)
            if bias is not None:
                lin.bias.copy_(torch.tensor(bias, dtype=torch.float64))
        modules.append(lin)
        make = ACTIVATION_MODULES[layer["activation"]]
        if make is not None:
            modules.append(make())
        if i < last:
            modules.append(nn.Dropout(0.5))
    return nn.Sequential(*modules).train()


@pytest.mark.parametrize("case", MODEL_CASES, ids=[c["name"] for c in MODEL_CASES])
def test_the_reference_models_as_torch_sequentials_give_the_reference_values(service_url, case):
    r = case["request"]
    model = torch_model(r["network"])
    assert network_from_torch(model) == network_from_layers(r["network"]["layers"])
    x = torch.tensor(r["inputs"], dtype=torch.float64)
    kw = {"loss": r["loss"], "reduction": r["reduction"]}
    if "labels" in r:
        kw["labels"] = torch.tensor(r["labels"])  # int64, as CrossEntropyLoss takes them
    else:
        kw["targets"] = torch.tensor(r["targets"], dtype=torch.float64)
    e = case["expected"]
    client = CurvatureClient(service_url)
    close(client.hessian(model, x, **kw), e["hessian"])
    close(client.hessian(model, x, method="outer-product", **kw), e["outerProduct"])
    close(client.hessian_vector_product(model, x, vector=case["vector"], **kw), e["hessianVectorProduct"])
    inv, logdet = client.hessian_inverse(model, x, damping=case["damping"], **kw)
    close(inv, e["inverseOuterProduct"])
    assert logdet == pytest.approx(e["logDeterminant"], rel=1e-10, abs=1e-10)
    inv, logdet = client.hessian_inverse(model, x, damping=case["exactDamping"], hessian="exact", **kw)
    close(inv, e["inverseExact"])
    assert logdet == pytest.approx(e["logDeterminantExact"], rel=1e-10, abs=1e-10)
    close(client.jacobian(model, x), e["inputJacobian"])
    close(client.jacobian(model, x, wrt="parameters"), e["parameterJacobian"])


# --- PyTorch's own losses --------------------------------------------------------------------------

def functional(model):
    """f(w, x): the model's outputs with its parameters taken from the flat vector w, in the order of
    parameters_to_vector (named_parameters' order), in eval mode."""
    try:
        from torch.func import functional_call
    except ImportError:  # torch < 2.0
        from torch.nn.utils.stateless import functional_call
    model.eval()
    named = [(n, p.shape) for n, p in model.named_parameters()]

    def f(w, x):
        params, i = {}, 0
        for name, shape in named:
            k = int(np.prod(shape))
            params[name] = w[i:i + k].reshape(shape)
            i += k
        return functional_call(model, params, (x,))

    return f


def autograd_curvature(model, x, loss_of_outputs):
    """The Hessian of loss_of_outputs(model(x; w)) w.r.t. w = parameters_to_vector(model), its
    Gauss-Newton matrix J^T (d2 loss / d outputs2) J, and the Jacobian J of the outputs, all by autograd."""
    f = functional(model)
    w0 = nn.utils.parameters_to_vector(model.parameters()).detach().clone()
    hessian = torch.autograd.functional.hessian(lambda w: loss_of_outputs(f(w, x)), w0)
    out = f(w0, x).detach()
    jac = torch.autograd.functional.jacobian(lambda w: f(w, x), w0)  # N x K x W
    lam = torch.autograd.functional.hessian(loss_of_outputs, out)    # N x K x N x K
    n, k, wn = jac.shape
    gauss_newton = jac.reshape(n * k, wn).T @ lam.reshape(n * k, n * k) @ jac.reshape(n * k, wn)
    return hessian.numpy(), gauss_newton.numpy(), jac.numpy()


def layer_indices(model, layer):
    """The entries of parameters_to_vector(model) that belong to the layer-th Linear."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    sizes = [sum(p.numel() for p in m.parameters()) for m in linears]
    start = sum(sizes[:layer % len(linears)])
    return np.arange(start, start + sizes[layer % len(linears)])


def test_a_three_class_classifier_trained_on_logits_with_cross_entropy_loss(service_url):
    """The headline story: nn.CrossEntropyLoss() (reduction='mean') on logits with integer labels;
    the client's Hessian (labels=, reduction='mean') is torch.autograd.functional.hessian of that loss
    w.r.t. parameters_to_vector(model)."""
    torch.manual_seed(42)
    n = 40
    x = torch.randn(n, 4)
    labels = (x[:, 0] + 0.5 * x[:, 1] > 0).long() + (x[:, 2] > 0.8).long()  # classes 0, 1, 2
    assert set(labels.tolist()) == {0, 1, 2}
    model = nn.Sequential(nn.Linear(4, 12), nn.GELU(), nn.Dropout(0.1), nn.Linear(12, 3))
    criterion = nn.CrossEntropyLoss()
    assert criterion.reduction == "mean"
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for _ in range(60):
        opt.zero_grad()
        criterion(model(x), labels).backward()
        opt.step()
    h_torch, g_torch, jac_torch = autograd_curvature(model, x, lambda logits: criterion(logits, labels))
    client = CurvatureClient(service_url)
    kw = {"labels": labels, "loss": "softmax-cross-entropy", "reduction": "mean"}
    close(client.hessian(model, x, **kw), h_torch)
    close(client.hessian(model, x, method="outer-product", **kw), g_torch)
    close(client.hessian(model, x, method="diagonal", **kw), np.diag(h_torch))
    v = np.random.default_rng(0).standard_normal(h_torch.shape[0])
    close(client.hessian_vector_product(model, x, vector=v, **kw), h_torch @ v)
    alpha = 1e-3
    damped = torch.from_numpy(g_torch) + alpha * torch.eye(len(g_torch))
    inv, logdet = client.hessian_inverse(model, x, damping=alpha, **kw)
    close(inv, torch.linalg.inv(damped).numpy())
    assert logdet == pytest.approx(float(torch.linalg.slogdet(damped)[1]), rel=1e-10)
    # the output layer alone: the sub-block of the whole Hessian
    last = layer_indices(model, -1)
    close(client.hessian(model, x, parameters=[-1], **kw), h_torch[np.ix_(last, last)])
    close(client.jacobian(model, x, wrt="parameters", parameters=[-1]), jac_torch[:, :, last])
    # the same Hessian from one-hot targets; the sum, nn.CrossEntropyLoss(reduction='sum')
    onehot = nn.functional.one_hot(labels, 3).double()
    close(client.hessian(model, x, onehot, "softmax-cross-entropy", reduction="mean"), h_torch)
    h_sum, _, _ = autograd_curvature(model, x, lambda logits: nn.CrossEntropyLoss(reduction="sum")(logits, labels))
    close(client.hessian(model, x, labels=labels, loss="softmax-cross-entropy"), h_sum)
    close(h_sum / n, h_torch, 1e-12)
    # probability targets (soft labels), as CrossEntropyLoss takes them too
    soft = torch.softmax(torch.randn(n, 3), dim=-1)
    h_soft, g_soft, _ = autograd_curvature(model, x, lambda logits: criterion(logits, soft))
    close(client.hessian(model, x, soft, "softmax-cross-entropy", reduction="mean"), h_soft)
    close(client.hessian(model, x, soft, "softmax-cross-entropy", method="outer-product", reduction="mean"), g_soft)


def test_bce_with_logits_mean_single_output_and_its_factor_for_several_outputs(service_url):
    """nn.BCEWithLogitsLoss() on one logit is loss='cross-entropy', reduction='mean'. With K logits
    PyTorch's mean divides by N * K, the service's by N: torch's Hessian is the client's / K. The same
    for nn.BCELoss() on a Sigmoid output layer."""
    torch.manual_seed(5)
    client = CurvatureClient(service_url)
    for k in (1, 3):
        x = torch.randn(12, 3)
        t = torch.rand(12, k)
        model = nn.Sequential(nn.Linear(3, 6), nn.SiLU(), nn.Linear(6, k))
        criterion = nn.BCEWithLogitsLoss()
        h_torch, g_torch, _ = autograd_curvature(model, x, lambda logits: criterion(logits, t))
        h = client.hessian(model, x, t, "cross-entropy", reduction="mean")
        g = client.hessian(model, x, t, "cross-entropy", method="outer-product", reduction="mean")
        close(h / k, h_torch)
        close(g / k, g_torch)
        h_sum, _, _ = autograd_curvature(model, x, lambda logits: nn.BCEWithLogitsLoss(reduction="sum")(logits, t))
        close(client.hessian(model, x, t, "cross-entropy"), h_sum)
        # nn.BCELoss() on an explicit Sigmoid output: the same loss, the same 1/K
        explicit = nn.Sequential(*model, nn.Sigmoid())
        h_bce, _, _ = autograd_curvature(explicit, x, lambda y: nn.BCELoss()(y, t))
        close(client.hessian(explicit, x, t, "cross-entropy", reduction="mean") / k, h_bce)
        close(h_bce, h_torch)


def test_mse_loss_is_two_over_k_times_the_services_mean_sum_of_squares(service_url):
    """nn.MSELoss(): (1/(N K)) sum (y - t)^2; the service's mean sum-of-squares: (1/N) 1/2 sum ||y - t||^2.
    So MSELoss(mean) = (2/K) E_mean, MSELoss(sum) = 2 E_sum, and their Hessians likewise; with c = 2/K,
    (c H + a I)^-1 = (1/c) (H + (a/c) I)^-1 and log det(c H + a I) = W log c + log det(H + (a/c) I)."""
    torch.manual_seed(9)
    n, k = 10, 3
    x = torch.randn(n, 4)
    t = torch.randn(n, k)
    model = nn.Sequential(nn.Linear(4, 5), nn.ELU(), nn.Linear(5, 5), nn.Tanh(), nn.Linear(5, k))
    y = model(x).detach()
    e_mean = 0.5 * ((y - t) ** 2).sum() / n
    assert float(nn.MSELoss()(y, t)) == pytest.approx(float(2 / k * e_mean), rel=1e-14)
    assert float(nn.MSELoss(reduction="sum")(y, t)) == pytest.approx(float(2 * e_mean * n), rel=1e-14)
    client = CurvatureClient(service_url)
    h_torch, g_torch, _ = autograd_curvature(model, x, lambda out: nn.MSELoss()(out, t))
    close(2 / k * client.hessian(model, x, t, "sum-of-squares", reduction="mean"), h_torch)
    close(2 / k * client.hessian(model, x, t, "sum-of-squares", method="outer-product", reduction="mean"), g_torch)
    h_sum, _, _ = autograd_curvature(model, x, lambda out: nn.MSELoss(reduction="sum")(out, t))
    close(2 * client.hessian(model, x, t, "sum-of-squares"), h_sum)
    # the damping scales too: (H_mse + a I)^-1 = (K/2) (H_mean + (K a / 2) I)^-1
    a = max(0.05, 0.1 - float(np.linalg.eigvalsh(h_torch)[0]))  # enough for a positive definite H_mse + a I
    inv, logdet = client.hessian_inverse(model, x, t, "sum-of-squares", damping=k * a / 2, hessian="exact", reduction="mean")
    damped = h_torch + a * np.eye(len(h_torch))
    close(k / 2 * inv, np.linalg.inv(damped))
    assert logdet + len(h_torch) * np.log(2 / k) == pytest.approx(np.linalg.slogdet(damped)[1], rel=1e-10)


def test_the_example_script_fits_and_checks(service_url):
    r = subprocess.run([sys.executable, str(EXAMPLE), "--url", service_url], capture_output=True, text=True, timeout=300,
                       env={**os.environ, "PYTHONPATH": str(EXAMPLE.parents[1])})
    assert r.returncode == 0, r.stdout + r.stderr
    assert "exact Hessian matches torch.autograd.functional.hessian" in r.stdout
    assert "inverse matches" in r.stdout
