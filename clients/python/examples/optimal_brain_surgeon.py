#!/usr/bin/env python3
"""Optimal Brain Surgeon (Hassibi & Stork 1993; PRML 5.4): prune a weight of a small classifier using
the inverse Hessian, and correct the others, instead of dropping the smallest weight.

    python3 clients/python/examples/optimal_brain_surgeon.py --url http://127.0.0.1:3000 [--no-torch]

At a minimum w of the training objective F (gradient 0), deleting weight q while moving the others
optimally costs, to second order, the saliency L_q = w_q^2 / (2 [H^-1]_qq), with the update
dw = -(w_q / [H^-1]_qq) H^-1 e_q, which sets w_q to exactly 0. Magnitude pruning sets the smallest |w_q|
to 0 and moves nothing: it costs 1/2 w_q^2 H_qq >= its saliency. The example checks both against the
objective itself.
"""
import numpy as np

from common import (check, client_from_arguments, errors, fit, flat, forward, random_network, relative_error,
                    torch_function, torch_model, with_parameters)

client, torch = client_from_arguments(__doc__)

# Three classes of 30 points each around the corners of a triangle; a 2-5-3 tanh network on logits
# (W = 5 * 3 + 3 * 6 = 33), the cross-entropy summed over points, weight decay alpha.
rng = np.random.default_rng(4)
centres = np.array([[0.0, 1.0], [-0.9, -0.5], [0.9, -0.5]])
labels = np.repeat(np.arange(3), 30)
x = centres[labels] + 0.55 * rng.standard_normal((len(labels), 2))
alpha = 0.1
network = fit(client, random_network([2, 5, 3], seed=5), x, "softmax-cross-entropy", alpha, labels=labels)
w = flat(network)


def objective(net):
    """F(w) = sum_n E_n(w) + alpha/2 |w|^2, the objective the network minimises."""
    return float(np.sum(errors(net, x, "softmax-cross-entropy", labels=labels)) + 0.5 * alpha * flat(net) @ flat(net))


def accuracy(net):
    return float(np.mean(np.argmax(forward(net, x), axis=1) == labels))


f0 = objective(network)
print(f"fitted: F = {f0:.6f}, training accuracy {accuracy(network):.3f}, W = {len(w)}")

# The Hessian of F is H + alpha I, H the exact Hessian of the summed cross-entropy (nn.CrossEntropyLoss(reduction='sum')
# on the logits): POST /hessian/inverse with hessian 'exact', damping alpha (Cholesky; it refuses an indefinite matrix,
# so the answer also says that w is a minimum).
h_inv, _ = client.hessian_inverse(network, x, labels=labels, loss="softmax-cross-entropy", damping=alpha,
                                  hessian="exact", method="cholesky")
h_f = client.hessian(network, x, labels=labels, loss="softmax-cross-entropy") + alpha * np.eye(len(w))
check(relative_error(h_inv, np.linalg.inv(h_f)) < 1e-9, "(H + alpha I)^-1 from the service equals numpy's inverse of the dense Hessian")

# --- Optimal Brain Surgeon ---------------------------------------------------------------------------------
# Candidates: the connection weights (not the biases), as in Hassibi & Stork; the parameter order is layer by
# layer, weights row-major, then biases.
is_weight = np.concatenate([np.r_[np.ones(np.size(l["weights"]), bool), np.zeros(np.size(l["bias"]), bool)]
                            for l in network["layers"]])
saliency = w ** 2 / (2 * np.diag(h_inv))
q = int(np.flatnonzero(is_weight)[np.argmin(saliency[is_weight])])
column = client.inverse_vector_product(network, x, labels=labels, loss="softmax-cross-entropy", vectors=np.eye(len(w))[q],
                                       damping=alpha, hessian="exact", method="cg", tolerance=1e-12).solutions
check(relative_error(column, h_inv[:, q]) < 1e-9, f"H^-1 e_q by conjugate gradients equals column {q} of the inverse")
dw = -(w[q] / h_inv[q, q]) * h_inv[:, q]
w_obs = w + dw
print(f"OBS prunes weight {q} (w_q = {w[q]:+.4f}, the smallest saliency {saliency[q]:.3e})")
check(abs(w_obs[q]) <= 4 * np.finfo(float).eps * abs(w[q]),
      f"the update takes w_q to w_q - (w_q / [H^-1]_qq) [H^-1]_qq = {w_obs[q]:.1e}: 0 up to the rounding of one product")
w_obs[q] = 0.0  # the weight is removed: exactly 0 from here on
pruned = with_parameters(network, w_obs)
increase = objective(pruned) - f0
print(f"F rises by {increase:.6e}; the saliency predicted {saliency[q]:.6e} (second order: the rest is O(|dw|^3), |dw| = "
      f"{np.linalg.norm(dw):.3f})")
check(abs(increase - saliency[q]) < 0.05 * saliency[q], "the increase of F matches the saliency within 5 %")

# --- magnitude pruning, for comparison -------------------------------------------------------------------------
m = int(np.flatnonzero(is_weight)[np.argmin(np.abs(w[is_weight]))])
w_mag = w.copy()
w_mag[m] = 0.0
increase_mag = objective(with_parameters(network, w_mag)) - f0
print(f"magnitude pruning drops weight {m} (w = {w[m]:+.4f}): F rises by {increase_mag:.6e} "
      f"(quadratic estimate 1/2 w^2 H_qq = {0.5 * w[m] ** 2 * h_f[m, m]:.6e}); with OBS's update instead: "
      f"saliency {saliency[m]:.3e}")
check(saliency[m] <= 0.5 * w[m] ** 2 * h_f[m, m], "for the same weight, OBS's saliency is at most the uncorrected cost")
check(increase < increase_mag, "OBS's pruned network has the lower objective")

# --- several weights: the same with the constraints e_s^T (w + dw) = 0 for every s in S ---------------------------
# dw = -H^-1 E (E^T H^-1 E)^-1 w_S and L_S = 1/2 w_S^T (E^T H^-1 E)^-1 w_S, E the columns e_s (for S = {q}:
# the formulas above); S grown greedily by the weight that adds least, all from the one inverse at the minimum.
def surgery(s):
    block = h_inv[np.ix_(s, s)]
    return 0.5 * w[s] @ np.linalg.solve(block, w[s]), -h_inv[:, s] @ np.linalg.solve(block, w[s])


chosen = []
for _ in range(8):
    chosen.append(min((c for c in np.flatnonzero(is_weight) if c not in chosen), key=lambda c: surgery(chosen + [c])[0]))
cost, dw = surgery(chosen)
w_obs8 = w + dw
check(np.max(np.abs(w_obs8[chosen])) <= 1e-12 * np.max(np.abs(w)), "after the update all 8 pruned weights are 0 up to rounding")
w_obs8[chosen] = 0.0
w_mag8 = w.copy()
w_mag8[np.flatnonzero(is_weight)[np.argsort(np.abs(w[is_weight]))[:8]]] = 0.0
obs8, mag8 = objective(with_parameters(network, w_obs8)) - f0, objective(with_parameters(network, w_mag8)) - f0
print(f"8 of {is_weight.sum()} weights pruned: F rises by {obs8:.4f} with OBS (predicted {cost:.4f}), by {mag8:.4f} "
      f"with magnitude pruning; training accuracy {accuracy(network):.3f} before, "
      f"{accuracy(with_parameters(network, w_obs8)):.3f} and {accuracy(with_parameters(network, w_mag8)):.3f} after")
check(abs(obs8 - cost) < 0.1 * cost, "the increase matches OBS's quadratic prediction within 10 %")
check(5 * obs8 < mag8, "magnitude pruning costs more than five times as much")

# --- with PyTorch: the same network as nn.Sequential, the loss by nn.CrossEntropyLoss -------------------------------
if torch is None:
    print("skipped: the objective before and after pruning by torch.nn.CrossEntropyLoss, and the gradient by autograd "
          "(needs PyTorch)")
else:
    model = torch_model(network, torch)
    f = torch_function(model, x, torch)
    target = torch.from_numpy(labels)

    def torch_objective(v):
        v = torch.as_tensor(v)
        return torch.nn.CrossEntropyLoss(reduction="sum")(f(v), target) + 0.5 * alpha * v @ v

    w_torch = torch.nn.utils.parameters_to_vector(model.parameters()).detach().clone().requires_grad_(True)
    grad = torch.autograd.grad(torch_objective(w_torch), w_torch)[0]
    check(float(grad.norm()) < 1e-8, f"|grad F| = {float(grad.norm()):.1e} by autograd: w is a minimum, as OBS assumes")
    torch_increase = float(torch_objective(w_obs) - torch_objective(w))
    check(abs(torch_increase - increase) < 1e-10, f"nn.CrossEntropyLoss measures the same increase ({torch_increase:.6e})")

