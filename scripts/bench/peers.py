"""The peers of `npm run bench`'s sweep (scripts/bench/bench.ts): PyTorch's torch.func and JAX, float64, CPU.

Usage:
  python peers.py versions             JSON: Python, torch, JAX, numpy versions and what is importable
  python peers.py dgemm [N]            JSON: float64 GEMM GFLOP/s of numpy and torch (n = N, default 2000)
  python peers.py run SPEC.json        JSON: one peer's time and its agreement with the service

SPEC (written by bench.ts): {"problem": body.json, "peer": "torch" | "jax", "method": "exact" |
"outer-product", "service": service.npy or null, "repeats": 3, "budget": seconds, "memory": bytes,
"gn": "auto" | "jacfwd" | "jacrev"}. The body is the JSON request the service got (same network,
inputs and targets), the parameters flattened layer by layer, weights row-major (out x in), then
bias: the service's order and torch.nn.utils.parameters_to_vector's.

What is timed (warm: the first call, which for JAX includes tracing and XLA compilation, is
excluded; then the best of `repeats` calls, no more once 10 s have gone into them):
  torch exact          torch.func.hessian(E)(theta)   (jacfwd over jacrev)
  torch outer-product  J (N*K x W), then J.T @ J, with J from
                         jacrev: torch.func.vmap over points of torch.func.jacrev of one
                                 point's K outputs (N*K reverse passes through one point each), or
                         jacfwd: torch.func.jacfwd of all N*K outputs (W forward tangents
                                 through the whole batch)
  jax exact            jax.jit(jax.hessian(E))(theta)  (jacfwd over jacrev); a run of >= 4
                       identical layers (the deep narrow nets) is one jax.lax.scan
  jax outer-product    jax.jit(J.T @ J) with J from jax.vmap(jax.jacrev) or jax.jacfwd, as for torch
with E = 1/2 sum_n ||y_n - t_n||^2 and identity outputs, so L_n = I and J.T @ J is the exact
Gauss-Newton matrix. "auto" picks jacrev when K < W, which is every row of the sweep (on the
benchmark shape, 32-64-10 N = 1000: torch jacrev per point 2.9 s against jacfwd 5.6 s).

Budgets: pilots at 8 points and then at N/8 estimate the time of a call (every method here is
linear in N) and the memory per data point. A peer whose call would take more than `budget`
seconds is skipped with that reason; one that would need more than `memory` bytes is run on
chunks of data points and the chunks' matrices summed (the Hessian of a sum is the sum of the
Hessians), the number of chunks reported.

Agreement: max|service - peer| / max|peer| over the whole W x W matrix.
Threads: torch.set_num_threads(threads); the bench also sets OMP/MKL/OPENBLAS_NUM_THREADS and
XLA's intra-op pool for JAX through the environment.
"""
import json
import os
import resource
import sys
import time

import numpy as np

# No more timed calls once they have taken this long together (at least one is made).
REPEAT_SECONDS = 10.0


def threads():
    return int(os.environ.get("BENCH_THREADS", "2"))


def load_body(path):
    with open(path) as f:
        return problem_of(json.load(f))


def problem_of(body):
    """A request body's flat parameters (parameters_to_vector order: per layer the weights
    row-major, then the bias), layer sizes and activations, inputs and targets, as float64 arrays."""
    layers = body["network"]["layers"]
    meta, parts = [], []
    for layer in layers:
        w = np.asarray(layer["weights"], dtype=np.float64)
        b = np.asarray(layer["bias"], dtype=np.float64)
        meta.append((w.shape[0], w.shape[1], layer["activation"]))
        parts += [w.reshape(-1), b]
    theta = np.concatenate(parts)
    x = np.asarray(body["inputs"], dtype=np.float64)
    t = np.asarray(body["targets"], dtype=np.float64)
    if body.get("loss", "sum-of-squares") != "sum-of-squares":
        raise ValueError("the sweep's peers do sum-of-squares only")
    return theta, meta, x, t


# ---------------------------------------------------------------- PyTorch


def torch_func():
    """torch.func (PyTorch 2) or functorch (PyTorch 1.13, Debian's python3-torch)."""
    try:
        import torch.func as tf
        return tf, "torch.func"
    except ImportError:
        import functorch as tf
        return tf, "functorch"


def torch_forward(torch, theta, meta, x):
    z, o = x, 0
    for out, inp, act in meta:
        w = theta[o:o + out * inp].view(out, inp)
        o += out * inp
        b = theta[o:o + out]
        o += out
        a = torch.addmm(b, z, w.T)
        if act == "tanh":
            z = torch.tanh(a)
        elif act == "identity":
            z = a
        else:
            raise ValueError(f"activation {act} not in this benchmark")
    return z


def chunks(n, count):
    """`count` nearly equal slices of range(n) (at most two distinct sizes, so JAX compiles at most twice)."""
    size = -(-n // count)
    return [slice(i, min(n, i + size)) for i in range(0, n, size)]


def torch_task(method, gn, theta_np, meta, x_np, t_np, count=1):
    import torch
    tf, _ = torch_func()
    theta = torch.from_numpy(theta_np)
    x = torch.from_numpy(x_np)
    t = torch.from_numpy(t_np)
    parts = chunks(x.shape[0], count)
    if method == "exact":
        def error(th, x, t):
            return 0.5 * ((torch_forward(torch, th, meta, x) - t) ** 2).sum()
        hess = tf.hessian(error)
        return lambda: sum_over(parts, lambda p: hess(theta, x[p], t[p]))
    if gn == "jacrev":
        # per data point: vmap over n of jacrev of that point's K outputs (N*K reverse passes of one point each)
        jac = tf.vmap(tf.jacrev(lambda th, xn: torch_forward(torch, th, meta, xn.unsqueeze(0)).reshape(-1)), in_dims=(None, 0))
    else:
        # W forward tangents through the whole batch
        jac = tf.jacfwd(lambda th, x: torch_forward(torch, th, meta, x).reshape(-1))

    def outer(p):
        j = jac(theta, x[p]).reshape(-1, theta.shape[0])
        return j.T @ j
    return lambda: sum_over(parts, outer)


def sum_over(parts, f):
    total = f(parts[0])
    for p in parts[1:]:
        total = total + f(p)
    return total


# ---------------------------------------------------------------- JAX


def segments(meta, min_run=4):
    """Runs of identical layers (out, in, activation): (start, count, layer). A JAX user scans those."""
    out, i = [], 0
    while i < len(meta):
        j = i
        while j < len(meta) and meta[j] == meta[i]:
            j += 1
        if j - i >= min_run:
            out.append((i, j - i, meta[i]))
        else:
            out += [(l, 1, meta[l]) for l in range(i, j)]
        i = j
    return out


def jax_task(method, gn, theta_np, meta, x_np, t_np, count=1):
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def act(a, name):
        if name == "tanh":
            return jnp.tanh(a)
        if name == "identity":
            return a
        raise ValueError(f"activation {name} not in this benchmark")

    segs = segments(meta)

    def forward(th, x):
        # a Python loop over layers, except that a run of >= 4 identical layers is one lax.scan
        # (XLA's compile time grows steeply with an unrolled loop of hundreds of layers)
        z, o = x, 0
        for _, count, (out, inp, name) in segs:
            size = out * inp + out
            if count == 1:
                w = th[o:o + out * inp].reshape(out, inp)
                b = th[o + out * inp:o + size]
                z = act(z @ w.T + b, name)
            else:
                block = th[o:o + count * size].reshape(count, size)
                ws = block[:, :out * inp].reshape(count, out, inp)
                bs = block[:, out * inp:]

                def step(z, wb, name=name):
                    w, b = wb
                    return act(z @ w.T + b, name), None
                z, _ = jax.lax.scan(step, z, (ws, bs))
            o += count * size
        return z

    theta = jnp.asarray(theta_np)
    x = jnp.asarray(x_np)
    t = jnp.asarray(t_np)
    parts = chunks(x.shape[0], count)
    if method == "exact":
        def error(th, x, t):
            return 0.5 * jnp.sum((forward(th, x) - t) ** 2)
        f = jax.jit(jax.hessian(error))
        return lambda: sum_over(parts, lambda p: f(theta, x[p], t[p])).block_until_ready()
    if gn == "jacrev":
        jac = jax.vmap(jax.jacrev(lambda th, xn: forward(th, xn[None, :]).reshape(-1)), in_axes=(None, 0))
    else:
        jac = jax.jacfwd(lambda th, x: forward(th, x).reshape(-1))

    def outer(th, x):
        j = jac(th, x).reshape(-1, th.shape[0])
        return j.T @ j
    f = jax.jit(outer)
    return lambda: sum_over(parts, lambda p: f(theta, x[p])).block_until_ready()


# ---------------------------------------------------------------- measuring


def rss():
    """Peak resident memory of this process so far, bytes: VmHWM of /proc/self/status.

    Not getrusage's ru_maxrss: Linux keeps that across execve, so a Python started by a large
    Node process (the bench holds the problem and the answers) reports the parent's peak from
    before the exec as its own until it grows past it.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def current_rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def timed(f):
    t0 = time.perf_counter()
    r = f()
    return r, time.perf_counter() - t0


def to_numpy(r):
    return r.numpy() if hasattr(r, "numpy") and not isinstance(r, np.ndarray) else np.asarray(r)


def rel_diff(service_path, ref):
    """max|a - b| / max|b| over row slabs, so the W x W difference is never held whole."""
    a = np.load(service_path, mmap_mode="r")
    b = ref
    if a.shape != b.shape:
        return float("inf"), f"shape {a.shape} vs {b.shape}"
    diff, scale = 0.0, 0.0
    step = max(1, (1 << 23) // max(1, b.shape[1]))
    for i in range(0, b.shape[0], step):
        sa = np.asarray(a[i:i + step], dtype=np.float64)
        sb = b[i:i + step]
        d = np.abs(sa - sb)
        if np.isnan(d).any():
            return float("inf"), "NaN"
        diff = max(diff, float(d.max()))
        scale = max(scale, float(np.abs(sb).max()))
    return (diff / scale if scale > 0 else diff), None


def make(peer, method, gn, theta, meta, x, t, count=1):
    if peer == "torch":
        return torch_task(method, gn, theta, meta, x, t, count)
    return jax_task(method, gn, theta, meta, x, t, count)


def run(spec):
    peer, method = spec["peer"], spec["method"]
    theta, meta, x, t = load_body(spec["problem"])
    n, k, w = x.shape[0], t.shape[1], theta.shape[0]
    gn = spec.get("gn", "auto")
    if gn == "auto":
        gn = "jacrev" if k < w else "jacfwd"
    budget = float(spec.get("budget", 60))
    memory = float(spec.get("memory", 8e9))
    repeats = int(spec.get("repeats", 3))
    out = {"peer": peer, "method": method, "gn": gn if method == "outer-product" else None}
    if peer == "torch":
        import torch
        torch.set_num_threads(threads())
        torch.set_default_dtype(torch.float64)

    # Fixed memory: the W x W answer, the sum over chunks and one temporary; the rest grows with the points per chunk.
    fixed = 3 * 8 * w * w

    def chunk_count(per_point, points):
        room = memory - fixed
        if room <= 0:
            return None
        return max(1, min(points, int(-(-per_point * points // room))))

    # Pilots at 8 points, then (for N > 64) at N/8, estimate the time of a call (linear in N, as
    # every method here is) and the memory per point; a run that would not fit in `memory` is
    # split into chunks of data points, summed (the Hessian of a sum is the sum of the Hessians).
    base = rss()
    stages = [min(n, 8)] + ([n // 8] if n > 64 else []) + ([n] if n <= 64 and n > 8 else [])
    per_point, count, f, result = 0.0, 1, None, None
    pilots = []
    for n0 in stages:
        c0 = chunk_count(per_point, n0) if per_point else 1
        if c0 is None:
            out["skipped"] = f"the W x W answer alone needs {fixed / 1e9:.1f} GB with its sum, over the {memory / 1e9:.1f} GB allowed"
            return out
        f = make(peer, method, gn, theta, meta, x[:n0], t[:n0], c0)
        _, first0 = timed(f)
        if first0 > budget:
            what = "tracing and compiling included" if peer == "jax" else "vmap set-up included"
            out["skipped"] = f"its first call ({what}) at N={n0} took {first0:.0f} s, over the {budget:.0f} s budget"
            out["pilots"] = pilots
            return out
        result, s0 = timed(f)
        growth = rss() - base
        # the latest (largest) pilot's estimate: fixed costs inflate the small one's
        per_point = max(0.0, growth - fixed) / (n0 / c0)
        predicted = s0 * n / n0
        pilots.append({"n": n0, "chunks": c0, "first": first0, "seconds": s0, "predictedSeconds": predicted, "bytesPerPoint": per_point})
        out["pilots"] = pilots
        last = n0 == stages[-1]
        if predicted > (budget if last else 3 * budget):
            out["skipped"] = f"would take ~{predicted:.0f} s a call (pilot at N={n0}: {s0:.2f} s), over the {budget:.0f} s budget a call"
            return out
        if n0 == n:
            break
        f = result = None

    count = chunk_count(per_point, n)
    if count is None:
        out["skipped"] = f"the W x W answer alone needs {fixed / 1e9:.1f} GB with its sum, over the {memory / 1e9:.1f} GB allowed"
        return out
    out["chunks"] = count
    out["predictedBytes"] = fixed + per_point * -(-n // count)
    if f is not None and stages[-1] == n and pilots[-1]["chunks"] == count:
        # the last pilot was the real size: it is warm, and its second call was the first timed one
        first, best, start = pilots[-1]["first"], pilots[-1]["seconds"], 1
        out["repeats"] = 1
    else:
        f = result = None
        f = make(peer, method, gn, theta, meta, x, t, count)
        result, first = timed(f)
        best, start = float("inf"), 0
    out["first"] = first
    timed_spent = 0.0 if start == 0 else best
    for i in range(start, repeats):
        if i > 0 and timed_spent > REPEAT_SECONDS:
            break
        result, s = timed(f)
        timed_spent += s
        best = min(best, s)
        out["repeats"] = i + 1
    out["seconds"] = best
    out["peakRss"] = rss()
    ref = to_numpy(result)
    if spec.get("service"):
        d, why = rel_diff(spec["service"], ref)
        out["relDiff"] = d
        if why:
            out["diffNote"] = why
    return out


def versions():
    v = {"python": sys.version.split()[0], "executable": sys.executable, "numpy": np.__version__}
    try:
        import torch
        v["torch"] = torch.__version__
        v["torchFunc"] = torch_func()[1]
        v["torchBlas"] = "mkl" if torch.backends.mkl.is_available() else "other"
    except ImportError as e:
        v["torchMissing"] = str(e)
    try:
        import jax
        import jaxlib
        v["jax"] = jax.__version__
        v["jaxlib"] = jaxlib.__version__
    except ImportError as e:
        v["jaxMissing"] = str(e)
    return v


def dgemm(n):
    """Best of 5 float64 n x n GEMMs (2 n^3 flops) in numpy and in torch, GFLOP/s."""
    out = {"n": n, "threads": threads()}
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((n, n)), rng.standard_normal((n, n))
    a @ b
    out["numpy"] = 2 * n ** 3 / min(timed(lambda: a @ b)[1] for _ in range(5)) / 1e9
    try:
        import torch
        torch.set_num_threads(threads())
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        ta @ tb
        out["torch"] = 2 * n ** 3 / min(timed(lambda: ta @ tb)[1] for _ in range(5)) / 1e9
    except ImportError:
        pass
    return out


def main():
    cmd = sys.argv[1]
    if cmd == "versions":
        print(json.dumps(versions()))
    elif cmd == "dgemm":
        print(json.dumps(dgemm(int(sys.argv[2]) if len(sys.argv) > 2 else 2000)))
    elif cmd == "run":
        with open(sys.argv[2]) as f:
            spec = json.load(f)
        print(json.dumps(run(spec)))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
