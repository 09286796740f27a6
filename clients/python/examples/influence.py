#!/usr/bin/env python3
"""Influence functions (Koh & Liang 2017): how much each training point moves a test prediction, from one
inverse-Hessian-vector product, checked against actually retraining without the point.

    python3 clients/python/examples/influence.py --url http://127.0.0.1:3000 [--no-torch]

The network minimises F(w) = sum_n E_n(w) + alpha/2 |w|^2. Removing point j moves the minimum by about
H_F^-1 grad E_j (one Newton step on F - E_j from w, H_F = H + alpha I), so the prediction y at a test
input x* changes by about

    dy_j = g^T H_F^-1 grad E_j = s^T grad E_j,   g = dy(x*)/dw,   s = H_F^-1 g,

one solve (POST /hessian/inverse-vector-product, conjugate gradients on exact Hessian-vector products:
no W x W matrix) for all N points at once.
"""
import numpy as np

from common import (check, client_from_arguments, fit, flat, forward, point_gradients, random_network, relative_error,
                    torch_function, torch_model)

client, torch = client_from_arguments(__doc__)

# 30 samples of a smooth curve, one of them (point 7) mislabelled; a 1-4-1 tanh network (W = 13).
rng = np.random.default_rng(7)
x = np.sort(rng.uniform(-1, 1, (30, 1)), axis=0)
t = np.sin(2 * x) + 0.05 * rng.standard_normal(x.shape)
outlier = 7
t[outlier] += 1.0
alpha = 0.01
network = fit(client, random_network([1, 4, 1], seed=8), x, "sum-of-squares", alpha, targets=t)
w = flat(network)

# The test prediction: y at an input next to the outlier's, and g = dy/dw there (POST /jacobian).
x_test = np.array([[x[outlier, 0] + 0.02]])
y_test = float(forward(network, x_test)[0, 0])
g = client.jacobian(network, x_test, wrt="parameters")[0, 0]
grads = point_gradients(client, network, x, "sum-of-squares", t)  # N x W: grad E_n = J_n^T (y_n - t_n)

s = client.inverse_vector_product(network, x, t, "sum-of-squares", vectors=g, damping=alpha, hessian="exact",
                                  method="cg", tolerance=1e-12)
h_f = client.hessian(network, x, t, "sum-of-squares") + alpha * np.eye(len(w))
check(relative_error(s.solutions, np.linalg.solve(h_f, g)) < 1e-9,
      f"s = H_F^-1 g by CG ({s.iterations[0]} Hessian-vector products) equals numpy's solve with the dense Hessian")
influence = grads @ s.solutions  # the predicted change of y(x*) when point n is removed

order = np.argsort(-np.abs(influence))
print(f"test input x* = {x_test[0, 0]:.3f}: y = {y_test:.4f} (the clean curve: {np.sin(2 * x_test[0, 0]):.4f})")
print("most influential training points (removing them changes y(x*) by about):")
for j in order[:4]:
    print(f"  point {j:2d} at x = {x[j, 0]:+.3f} (t = {t[j, 0]:+.3f}){' the mislabelled one' if j == outlier else ''}: "
          f"{influence[j]:+.5f}")
check(order[0] == outlier, "the mislabelled point is the most influential")

# --- against leave-one-out retraining: the minimum of F - E_j, started from w ------------------------------
loo = {}
for j in list(order[:3]) + [order[len(order) // 2]]:
    keep = np.arange(len(x)) != j
    retrained = fit(client, network, x[keep], "sum-of-squares", alpha, targets=t[keep])
    loo[j] = float(forward(retrained, x_test)[0, 0]) - y_test
    print(f"  point {j:2d}: predicted {influence[j]:+.6f}, retrained {loo[j]:+.6f}")
predicted, actual = np.array([influence[j] for j in loo]), np.array(list(loo.values()))
check(np.all(np.sign(predicted[:3]) == np.sign(actual[:3])), "the three largest predicted changes have the retrained sign")
check(np.all(np.abs(predicted - actual) < 0.2 * np.abs(actual)),
      "each prediction is within 20 % of the retrained change (it is first order in the removed point)")

# --- with PyTorch: the gradients by autograd ---------------------------------------------------------------
if torch is None:
    print("skipped: the training and test gradients against torch.autograd (needs PyTorch)")
else:
    model = torch_model(network, torch)
    w_torch = torch.nn.utils.parameters_to_vector(model.parameters()).detach()

    def point_losses(v, inputs, targets):
        return 0.5 * ((torch_function(model, inputs, torch)(v) - torch.from_numpy(targets)) ** 2).sum(dim=1)

    grads_torch = torch.autograd.functional.jacobian(lambda v: point_losses(v, x, t), w_torch).numpy()
    check(relative_error(grads, grads_torch) < 1e-12, "grad E_n from the service's parameter Jacobian equals torch.autograd's")
    g_torch = torch.autograd.functional.jacobian(lambda v: torch_function(model, x_test, torch)(v)[0, 0], w_torch).numpy()
    check(relative_error(g, g_torch) < 1e-12, "... and so does dy(x*)/dw")
