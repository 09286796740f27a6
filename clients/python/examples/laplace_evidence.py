#!/usr/bin/env python3
"""The Laplace approximation of a small regression network (PRML 5.7): the log marginal likelihood
(the evidence, eq. 5.175) from log det A over a grid of prior precisions alpha, and the predictive
variance at new inputs from the parameter Jacobian and inverse-Hessian-vector products, each number
checked against numpy on the service's dense Hessian.

    python3 clients/python/examples/laplace_evidence.py --url http://127.0.0.1:3000 [--no-torch]

Model: t = y(x, w) + Gaussian noise of precision beta (known here), prior w ~ N(0, alpha^-1 I). At the
mode w_MAP of beta E_D(w) + alpha/2 |w|^2, E_D = 1/2 sum_n (y_n - t_n)^2, the posterior is about
N(w_MAP, A^-1) with A = alpha I + beta H (5.166), H the outer-product (Gauss-Newton) Hessian of E_D:
positive semi-definite, so A is positive definite for every alpha > 0.
"""
import numpy as np

from common import (check, client_from_arguments, fit, flat, forward, random_network, relative_error, torch_function,
                    torch_model)

client, torch = client_from_arguments(__doc__)

# 60 noisy samples of sin(pi x) on [-1, 1], noise sigma = 0.1; a 1-3-1 tanh network (W = 10).
rng = np.random.default_rng(1)
beta = 100.0
x = rng.uniform(-1, 1, (60, 1))
t = np.sin(np.pi * x) + rng.standard_normal(x.shape) / np.sqrt(beta)
n = len(x)
network = random_network([1, 3, 1], seed=2)
w_count = len(flat(network))


def mode(network, alpha):
    """w_MAP for this alpha, from the given weights: beta E_D + alpha/2 |w|^2 = beta (E_D + (alpha/beta)/2 |w|^2)."""
    return fit(client, network, x, "sum-of-squares", alpha / beta, targets=t)


def log_evidence(network, alpha):
    """ln p(D | alpha, beta) (5.175) at the mode, with ln|A| and A^-1 from POST /hessian/inverse: the
    service adds its damping to H itself, so A = beta (H + (alpha/beta) I), ln|A| = W ln beta + its log det."""
    w = flat(network)
    e_d = 0.5 * float(np.sum((forward(network, x) - t) ** 2))
    inverse, logdet = client.hessian_inverse(network, x, t, "sum-of-squares", damping=alpha / beta)
    log_det_a = w_count * np.log(beta) + logdet
    value = (-beta * e_d - 0.5 * alpha * w @ w - 0.5 * log_det_a
             + 0.5 * w_count * np.log(alpha) + 0.5 * n * np.log(beta) - 0.5 * n * np.log(2 * np.pi))
    return value, log_det_a, inverse / beta


# --- alpha by re-estimation (5.178): alpha = gamma / |w_MAP|^2 --------------------------------------------
# gamma = sum_i lambda_i / (alpha + lambda_i) (5.179), lambda_i the eigenvalues of beta H (POST /hessian/eigen,
# all W of them, dense): the number of well-determined parameters.
alpha = 1.0
for step in range(30):
    network = mode(network, alpha)
    lam = beta * client.eigen(network, x, t, "sum-of-squares", count=w_count, hessian="outer-product",
                              method="dense").eigenvalues
    gamma = float(np.sum(lam / (alpha + lam)))
    alpha, previous = gamma / float(flat(network) @ flat(network)), alpha
    print(f"re-estimation {step + 1}: gamma = {gamma:.3f} of {w_count} parameters, alpha {previous:.4g} -> {alpha:.4g}")
    if abs(alpha - previous) < 1e-4 * previous:
        break
centre = network = mode(network, alpha)

# --- the evidence over a grid of alpha around it, each at its own mode ------------------------------------
grid = alpha * 10 ** np.linspace(-1, 1, 9)
evidence, modes = {}, {}
for indices in (range(4, 9), range(3, -1, -1)):  # outwards from the middle: each fit starts at its neighbour's mode
    network = centre
    for i in indices:
        network = modes[i] = mode(network, grid[i])
        evidence[i] = log_evidence(network, grid[i])
        # independently: A from the dense outer-product Hessian (POST /hessian) and numpy's determinant
        a_dense = grid[i] * np.eye(w_count) + beta * client.hessian(network, x, t, "sum-of-squares", method="outer-product")
        sign, log_det_numpy = np.linalg.slogdet(a_dense)
        check(sign > 0 and abs(evidence[i][1] - log_det_numpy) < 1e-10 * abs(log_det_numpy),
              f"alpha = {grid[i]:8.4f}: ln|A| = {evidence[i][1]:.10f} (Cholesky, the service) = numpy's slogdet; "
              f"ln p(D) = {evidence[i][0]:9.4f}")
best = max(evidence, key=lambda i: evidence[i][0])
print(f"the evidence is largest at alpha = {grid[best]:.4g}; the re-estimate was {alpha:.4g}")
check(0 < best < len(grid) - 1, "the evidence has an interior maximum over the grid")
check(abs(best - 4) <= 1, "... at the re-estimated alpha or a neighbour of it (5.178 neglects how H changes with alpha)")

# --- the predictive distribution at that alpha (5.172-5.173) -------------------------------------------
# p(t | x, D) = N(y(x, w_MAP), sigma^2(x)), sigma^2(x) = 1/beta + g^T A^-1 g, g = dy/dw at x: the parameter
# Jacobian (POST /jacobian), and A^-1 g = (H + alpha/beta I)^-1 g / beta by POST /hessian/inverse-vector-product
# (one solve per test point; no inverse needed, so it scales to networks whose W x W does not fit).
alpha, network, a_inverse = grid[best], modes[best], evidence[best][2]
x_test = np.linspace(-2, 2, 9).reshape(-1, 1)
g = client.jacobian(network, x_test, wrt="parameters")[:, 0, :]  # 9 x W
solved = client.inverse_vector_product(network, x, t, "sum-of-squares", vectors=g, damping=alpha / beta).solutions / beta
variance = 1 / beta + np.sum(g * solved, axis=1)
a_dense = alpha * np.eye(w_count) + beta * client.hessian(network, x, t, "sum-of-squares", method="outer-product")
variance_numpy = 1 / beta + np.einsum("mw,mw->m", g, np.linalg.solve(a_dense, g.T).T)
for xi, mean, var in zip(x_test[:, 0], forward(network, x_test)[:, 0], variance):
    print(f"x = {xi:5.2f}: y = {mean:7.3f} +- {np.sqrt(var):.3f}   (sin(pi x) = {np.sin(np.pi * xi):6.3f})")
check(relative_error(variance, variance_numpy) < 1e-10, "sigma^2(x) by inverse-vector products equals numpy's solve on the dense A")
check(relative_error(variance, 1 / beta + np.einsum("mw,wv,mv->m", g, a_inverse, g)) < 1e-10,
      "... and the service's explicit inverse (POST /hessian/inverse) gives the same")
inside = np.abs(x_test[:, 0]) <= 1
check(variance[~inside].min() > 2 * variance[inside].max(),
      "the predictive variance outside the data's range [-1, 1] exceeds twice the largest inside it")

# --- with PyTorch: the network as an nn.Sequential, its parameter Jacobian by autograd -----------------------
if torch is None:
    print("skipped: the parameter Jacobian against torch.autograd (needs PyTorch)")
else:
    model = torch_model(network, torch)
    w_torch = torch.nn.utils.parameters_to_vector(model.parameters()).detach()
    check(np.array_equal(w_torch.numpy(), flat(network)), "parameters_to_vector(model) is the service's parameter order")
    g_torch = torch.autograd.functional.jacobian(torch_function(model, x_test, torch), w_torch)[:, 0, :].numpy()
    check(relative_error(g, g_torch) < 1e-12, "the service's parameter Jacobian equals torch.autograd's")
    check(np.array_equal(client.jacobian(model, x_test, wrt="parameters")[:, 0, :], g),
          "the client sends the nn.Sequential as the same network")
