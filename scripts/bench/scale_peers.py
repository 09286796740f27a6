"""The PyTorch 2 peers of `npm run bench`'s scale group (scripts/bench/scale.ts), float64, CPU.

Usage: python scale_peers.py SPEC.json   -> one JSON line on stdout

SPEC (written by scale.ts): {"task": ..., "files": {request, inputs, labels, vector, vectors},
"service": the service's answer (.npy/.npz) or null, "threads", "repeats", "repeatSeconds",
"damping", "count", "eigenTolerance", "powerTolerance", "powerMaxIterations", "cgTolerance",
"maxIterations"}. The files are those the service was sent: the JSON part (network, loss,
reduction), inputs (N x D float64), labels (N int64), the vector (W). The network is rebuilt as
torch.nn.Sequential of nn.Linear (float64) and nn.Tanh, the loss as nn.CrossEntropyLoss on the
logits with the request's reduction; parameters in model.parameters() order, which is the
service's (layer by layer, weights row-major, then bias).

Tasks (each in its own process, so that its max RSS is its own):
  hvp      Hessian-vector products by double backward, as PyHessian does on one batch: the
           gradient graph once (loss.backward(create_graph=True) there; torch.autograd.grad with
           create_graph here), then each H v = torch.autograd.grad(grads, params, v,
           retain_graph=True). Times: the graph, each of `repeats` products after a warm one, one
           product from scratch (forward, graph and product), and Gauss-Newton products G v =
           J^T L J v (torch.func.jvp of the logits, L = diag(p) - p p^T per point, then the vjp of a
           forward pass kept by torch.func.vjp). H v is compared with the service's.
  power1   PyHessian's power iteration for the top eigenvalue (hessian.eigenvalues(maxIter=100,
           tol=1e-3, top_n=1)): v random, then v <- H v / |H v| until the Rayleigh quotient's
           relative change |l - l'| / (|l| + 1e-6) < tol, re-implemented on the products above.
           Timed from the forward pass (PyHessian builds the graph when it is created).
  power5   the same for the top 5 (top_n=5): each eigenvector by its own power iteration, every
           iterate orthonormalised against the ones found (PyHessian's deflation).
  eigsh    scipy.sparse.linalg.eigsh (ARPACK, implicitly restarted Lanczos) on a LinearOperator
           of those products, k = count, which='LA', tol = eigenTolerance: the like-for-like peer.
  cg       the service's CG (x0 = 0, stop at |r| <= tol |v|, then the true residual by one more
           product, going on from it if it is not there yet) on (G + alpha I) with the Gauss-Newton
           products above; timed from the forward pass.
  cg-kfac  the same preconditioned by (K + alpha I)^-1, K the KFAC matrix: its factors as in
           `kfac`, their eigendecompositions, then per layer U_G ((U_G^T V U_A) / (l_i m_j + alpha))
           U_A^T on the layer's [W | b] (the KFAC block G (x) A in that augmented layout).
  kfac     the factors by their definition (docs/api.md): A_l = (1/N) sum_n zt_n zt_n^T with
           zt = (z_{l-1}, 1); G_l = sum_n R_{l,n}^T L_n R_{l,n}, L_n = the per-point loss Hessian in
           the logits (torch.func.hessian), R_{l,n} = d logits / d a_l (torch.func.jacrev of the
           rest of the network from a_l), both vmapped over points; log det(K + alpha I) =
           sum_l sum_ij log(m_i l_j + alpha) from eigvalsh of the factors.

Per product: power1, power5, eigsh, cg and cg-kfac also report (run - setup) / products, setup
being what comes before the first product (the gradient graph; the kept forward pass and the
factors): the product's cost inside the algorithm, like the service's per-product column.
Memory: VmHWM of /proc/self/status (see rss()).

Agreement: eigenvalues max |l_s - l_t| / |l_t| pairwise (both descending); solutions, products
and factors max|service - peer| / max|peer|; the log det |a - b| / |b|.
"""
import io
import json
import os
import sys
import time
import zipfile

import numpy as np

from peers import rss  # the same VmHWM reading as the sweep's peers (this folder is on sys.path)


def rel_diff(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        return float("inf")
    scale = float(np.abs(b).max())
    d = float(np.abs(a - b).max())
    return d / scale if scale > 0 else d


def load_npz(path):
    with open(path, "rb") as f:
        data = f.read()
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        return {name[:-4]: np.load(io.BytesIO(z.read(name))) for name in z.namelist()}


class Problem:
    def __init__(self, torch, files):
        self.torch = torch
        with open(files["request"]) as f:
            req = json.load(f)
        if req.get("loss") != "softmax-cross-entropy":
            raise ValueError("the scale peers do softmax-cross-entropy on logits")
        self.reduction = req.get("reduction", "sum")
        mods = []
        for layer in req["network"]["layers"]:
            w = torch.tensor(layer["weights"], dtype=torch.float64)
            lin = torch.nn.Linear(w.shape[1], w.shape[0], dtype=torch.float64)
            with torch.no_grad():
                lin.weight.copy_(w)
                lin.bias.copy_(torch.tensor(layer["bias"], dtype=torch.float64))
            mods.append(lin)
            if layer["activation"] == "tanh":
                mods.append(torch.nn.Tanh())
            elif layer["activation"] != "identity":
                raise ValueError(f"activation {layer['activation']} not in this benchmark")
        self.model = torch.nn.Sequential(*mods)
        self.linears = [m for m in mods if isinstance(m, torch.nn.Linear)]
        self.params = list(self.model.parameters())
        self.names = [n for n, _ in self.model.named_parameters()]
        self.w = sum(p.numel() for p in self.params)
        self.x = torch.from_numpy(np.load(files["inputs"]))
        self.y = torch.from_numpy(np.load(files["labels"]).astype(np.int64))
        self.v = torch.from_numpy(np.load(files["vector"]))
        self.criterion = torch.nn.CrossEntropyLoss(reduction=self.reduction)

    def split(self, flat):
        out, o = [], 0
        for p in self.params:
            out.append(flat[o:o + p.numel()].view_as(p))
            o += p.numel()
        return out

    def flat(self, parts):
        return self.torch.cat([t.reshape(-1) for t in parts])

    def gradient_graph(self):
        """The gradient with its graph kept, as PyHessian builds it for one batch."""
        loss = self.criterion(self.model(self.x), self.y)
        return self.torch.autograd.grad(loss, self.params, create_graph=True)

    def hvp(self, grads, v_parts):
        return self.torch.autograd.grad(grads, self.params, grad_outputs=v_parts, retain_graph=True)

    def gauss_newton(self):
        """v -> G v = J^T L J v with J the logits' Jacobian: jvp per product, the vjp of one kept forward pass.

        Over the tuple of parameter tensors (as curvlinops and torch.func users write it): a flat
        parameter vector sliced inside the function would cost a W-long zero fill per slice in
        every vjp (SliceBackward).
        """
        torch = self.torch
        from torch.func import functional_call, jvp, vjp
        primals = tuple(p.detach() for p in self.params)

        def logits_of(*ps):
            return functional_call(self.model, dict(zip(self.names, ps)), (self.x,))
        logits, vjp_fn = vjp(logits_of, *primals)
        prob = torch.softmax(logits.detach(), dim=1)
        scale = 1.0 / self.x.shape[0] if self.reduction == "mean" else 1.0

        def apply(v):
            _, jv = jvp(logits_of, primals, tuple(self.split(v)))
            u = prob * jv - prob * (prob * jv).sum(dim=1, keepdim=True)
            return self.flat(vjp_fn(u * scale))
        return apply

    def kfac(self):
        """[(A_l, G_l)] by definition: see the module docstring."""
        torch = self.torch
        from torch.func import hessian, jacrev, vmap
        n = self.x.shape[0]
        zs, acts = [], []  # each linear layer's input and pre-activation
        with torch.no_grad():
            z = self.x
            mods = list(self.model)
            for i, m in enumerate(mods):
                if isinstance(m, torch.nn.Linear):
                    zs.append(z)
                    z = m(z)
                    acts.append(z)
                else:
                    z = m(z)
            logits = z

        def point_loss(a, t):
            return torch.nn.functional.cross_entropy(a.unsqueeze(0), t.unsqueeze(0), reduction="sum")
        L = vmap(hessian(point_loss))(logits, self.y)  # N x K x K
        out = []
        idx = [i for i, m in enumerate(mods) if isinstance(m, torch.nn.Linear)]
        for l, (zin, a) in enumerate(zip(zs, acts)):
            zt = torch.cat([zin, torch.ones(n, 1, dtype=torch.float64)], dim=1)
            A = zt.T @ zt / n
            rest = torch.nn.Sequential(*mods[idx[l] + 1:])

            def tail(al, rest=rest):
                return rest(al.unsqueeze(0)).squeeze(0)
            R = vmap(jacrev(tail))(a)  # N x K x out_l
            G = torch.einsum("nki,nkj,njm->im", R, L, R)
            if self.reduction == "mean":
                G = G / n
            # the function transforms see through no_grad: R depends on the model's parameters
            out.append((A.detach(), G.detach()))
        return out


def cg(torch, apply, b, damping, tol, max_iterations, precondition=None):
    """The service's CG (src/core/solve.ts conjugateGradient), on torch tensors."""
    pre = precondition or (lambda r: r.clone())
    x = torch.zeros_like(b)
    r = b.clone()
    used = 0
    b_norm = float(torch.linalg.vector_norm(b))
    goal = tol * b_norm
    true_residual = b_norm
    while True:
        z = pre(r)
        p = z.clone()
        rz = float(r @ z)
        r_norm = float(torch.linalg.vector_norm(r))
        while r_norm > goal:
            if used >= max_iterations:
                raise RuntimeError(f"CG did not converge in {used} products (residual {r_norm / b_norm:.2e})")
            q = apply(p) + damping * p
            used += 1
            pq = float(p @ q)
            if not pq > 0:
                raise RuntimeError("non-positive curvature")
            alpha = rz / pq
            x += alpha * p
            r -= alpha * q
            z = pre(r)
            rz_next = float(r @ z)
            beta = rz_next / rz
            rz = rz_next
            p = z + beta * p
            r_norm = float(torch.linalg.vector_norm(r))
        q = apply(x) + damping * x
        used += 1
        r = b - q
        true_residual = float(torch.linalg.vector_norm(r))
        if true_residual <= goal or used >= max_iterations:
            break
    return x, used, true_residual / b_norm


def kfac_preconditioner(torch, prob, factors, damping):
    """r -> (K + alpha I)^-1 r, per layer in the augmented layout [W | b]."""
    eig = [(torch.linalg.eigh(A), torch.linalg.eigh(G)) for A, G in factors]
    shapes = [(lin.out_features, lin.in_features) for lin in prob.linears]

    def apply(r):
        out, o = [], 0
        for ((mu, ua), (lam, ug)), (rows, cols) in zip(eig, shapes):
            wv = r[o:o + rows * cols].view(rows, cols)
            bv = r[o + rows * cols:o + rows * cols + rows]
            V = torch.cat([wv, bv.unsqueeze(1)], dim=1)
            X = ug @ ((ug.T @ V @ ua) / (lam.unsqueeze(1) * mu.unsqueeze(0) + damping)) @ ua.T
            out += [X[:, :cols].reshape(-1), X[:, cols]]
            o += rows * cols + rows
        return torch.cat(out)
    return apply


def normalized(torch, parts):
    s = float(sum((t * t).sum() for t in parts)) ** 0.5
    return [t / s for t in parts]


def power_iteration(torch, prob, grads, top_n, tol, max_iterations, seed=0):
    """PyHessian's hessian.eigenvalues, re-implemented: power iteration with deflation by orthonormalisation."""
    gen = torch.Generator().manual_seed(seed)
    values, vectors, products = [], [], 0
    while len(values) < top_n:
        v = normalized(torch, [torch.randn(p.shape, generator=gen, dtype=torch.float64) for p in prob.params])
        value = None
        for _ in range(max_iterations):
            for u in vectors:  # orthonormal(v, eigenvectors)
                c = float(sum((a * b).sum() for a, b in zip(v, u)))
                v = [a - c * b for a, b in zip(v, u)]
            v = normalized(torch, v)
            hv = prob.hvp(grads, v)
            products += 1
            rq = float(sum((a * b).sum() for a, b in zip(hv, v)))
            v = normalized(torch, [t.detach() for t in hv])
            if value is not None and abs(value - rq) / (abs(value) + 1e-6) < tol:
                break
            value = rq
        values.append(value)
        vectors.append(v)
    return values, products


def repeat(spec, run):
    """run() -> (result dict); up to `repeats` times, no more once repeatSeconds are spent; the first's result, every time.

    A result with "_setup" (seconds before the first product: the gradient graph, the forward pass
    kept, the factors) and "products" adds perProductSeconds, (run - setup) / products of each run:
    the product's cost inside the algorithm, its vector work included, as the service's is taken.
    """
    out, seconds, spent, per = None, [], 0.0, []
    for i in range(max(1, int(spec.get("repeats", 1)))):
        if i > 0 and spent > float(spec.get("repeatSeconds", 40)):
            break
        t0 = time.perf_counter()
        r = run()
        s = time.perf_counter() - t0
        spent += s
        seconds.append(s)
        if "_setup" in r and r.get("products"):
            per.append((s - r["_setup"]) / r["products"])
        if out is None:
            out = r
    out.pop("_setup", None)
    out["seconds"] = seconds
    if per:
        out["perProductSeconds"] = per
    return out


def eigen_diff(service_values, values):
    a = sorted(service_values, reverse=True)[:len(values)]
    b = sorted(values, reverse=True)
    return max(abs(x - y) / abs(y) for x, y in zip(a, b))


def main():
    with open(sys.argv[1]) as f:
        spec = json.load(f)
    import torch
    torch.set_num_threads(int(spec.get("threads", 2)))
    torch.set_default_dtype(torch.float64)
    task = spec["task"]
    prob = Problem(torch, spec["files"])
    out = {"task": task, "loadedRss": rss()}
    service = spec.get("service")
    damping = float(spec["damping"])

    if task == "hvp":
        t0 = time.perf_counter()
        grads = prob.gradient_graph()
        out["graphSeconds"] = time.perf_counter() - t0
        v = prob.split(prob.v)
        hv = prob.hvp(grads, v)  # warm
        times = []
        for _ in range(max(3, int(spec.get("repeats", 3)))):
            t0 = time.perf_counter()
            hv = prob.hvp(grads, v)
            times.append(time.perf_counter() - t0)
        out["hvpSeconds"] = times
        if service:
            out["relDiff"] = rel_diff(np.load(service), prob.flat(hv).detach().numpy())
        del grads, hv
        fresh = []
        for _ in range(2):
            t0 = time.perf_counter()
            g = prob.gradient_graph()
            prob.hvp(g, v)
            fresh.append(time.perf_counter() - t0)
            del g
        out["freshSeconds"] = min(fresh)
        gn = prob.gauss_newton()
        gn(prob.v)
        gtimes = []
        for _ in range(max(3, int(spec.get("repeats", 3)))):
            t0 = time.perf_counter()
            gn(prob.v)
            gtimes.append(time.perf_counter() - t0)
        out["gnSeconds"] = gtimes
        out["seconds"] = times
    elif task in ("power1", "power5"):
        top = 1 if task == "power1" else int(spec["count"])

        def run():
            t0 = time.perf_counter()
            grads = prob.gradient_graph()
            setup = time.perf_counter() - t0
            values, products = power_iteration(torch, prob, grads, top, float(spec["powerTolerance"]), int(spec["powerMaxIterations"]))
            return {"eigenvalues": values, "products": products, "_setup": setup}
        out.update(repeat(spec, run))
        if service:
            sv = [float(x) for x in load_npz(service)["eigenvalues"]]
            out["serviceEigenvalues"] = sv
            out["eigenvalueDiff"] = eigen_diff(sv, out["eigenvalues"])
    elif task == "eigsh":
        from scipy.sparse.linalg import LinearOperator, eigsh
        k = int(spec["count"])

        def run():
            t0 = time.perf_counter()
            grads = prob.gradient_graph()
            setup = time.perf_counter() - t0
            count = [0]

            def matvec(u):
                count[0] += 1
                t = torch.from_numpy(np.ascontiguousarray(u, dtype=np.float64).reshape(-1))
                return prob.flat(prob.hvp(grads, prob.split(t))).detach().numpy()
            op = LinearOperator((prob.w, prob.w), matvec=matvec, dtype=np.float64)
            v0 = np.random.default_rng(0).standard_normal(prob.w)
            vals, vecs = eigsh(op, k=k, which="LA", tol=float(spec["eigenTolerance"]), v0=v0, maxiter=int(spec["maxIterations"]))
            order = np.argsort(-vals)
            return {"eigenvalues": [float(x) for x in vals[order]], "products": count[0], "_vectors": vecs[:, order], "_setup": setup}
        out.update(repeat(spec, run))
        vecs = out.pop("_vectors")
        if service:
            z = load_npz(service)
            sv = [float(x) for x in z["eigenvalues"]]
            out["serviceEigenvalues"] = sv
            out["eigenvalueDiff"] = eigen_diff(sv, out["eigenvalues"])
            # 1 - |cos| between the service's eigenvectors and eigsh's, pair by pair (rounding can take |cos| past 1: 0 then)
            sev = z["eigenvectors"]
            out["vectorDiff"] = float(max(max(0.0, 1 - abs(float(sev[:, j] @ vecs[:, j]))) for j in range(min(sev.shape[1], vecs.shape[1]))))
    elif task in ("cg", "cg-kfac"):
        def run():
            t0 = time.perf_counter()
            gn = prob.gauss_newton()
            pre = kfac_preconditioner(torch, prob, prob.kfac(), damping) if task == "cg-kfac" else None
            setup = time.perf_counter() - t0
            x, used, residual = cg(torch, gn, prob.v, damping, float(spec["cgTolerance"]), int(spec["maxIterations"]), pre)
            return {"products": used, "residual": residual, "_x": x, "_setup": setup}
        out.update(repeat(spec, run))
        x = out.pop("_x")
        if service:
            out["relDiff"] = rel_diff(np.load(service).reshape(-1), x.numpy())
    elif task == "kfac":
        def run():
            factors = prob.kfac()
            logdet = 0.0
            for A, G in factors:
                mu, lam = torch.linalg.eigvalsh(A), torch.linalg.eigvalsh(G)
                logdet += float(torch.log(lam.unsqueeze(1) * mu.unsqueeze(0) + damping).sum())
            return {"logDeterminant": logdet, "_factors": factors}
        out.update(repeat(spec, run))
        factors = out.pop("_factors")
        if service:
            z = load_npz(service)
            diffs = []
            for l, (A, G) in enumerate(factors):
                diffs += [rel_diff(z[f"A_{l}"], A.numpy()), rel_diff(z[f"G_{l}"], G.numpy())]
            out["relDiff"] = max(diffs)
        # the service's log det comes in its answer's header X-Log-Determinant
        ld = (spec.get("serviceHeaders") or {}).get("x-log-determinant")
        if ld is not None:
            out["serviceLogDeterminant"] = float(ld)
            out["logDetDiff"] = abs(float(ld) - out["logDeterminant"]) / abs(out["logDeterminant"])
    else:
        raise SystemExit(f"unknown task {task}")
    out["peakRss"] = rss()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
