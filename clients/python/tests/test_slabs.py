"""A dense Hessian assembled from row slabs (CurvatureClient.assemble_hessian): slabs from several
live services written into a caller's array (a numpy.memmap on disk), equal to the service's dense
/hessian answer and to the PyTorch reference cases; the client's memory while it assembles a matrix
of tens of MB, measured in a process of its own; progress; 503 OVERLOADED retried, other failures raised."""
import inspect
import json
import logging
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest
import requests

from conftest import PACKAGE_ROOT, SCALE_CASES, close
from curvature_client import CurvatureClient, CurvatureServiceError, SlabAssembly, parameter_count
from test_models import layer_slices, problem


def mlp(d, m, k, n, seed=0):
    """A tanh network D-M-K with N points of sum-of-squares data: W = M (D + 1) + K (M + 1)."""
    rng = np.random.default_rng(seed)
    net = {"layers": [
        {"weights": rng.standard_normal((m, d)) / np.sqrt(d), "bias": 0.1 * rng.standard_normal(m), "activation": "tanh"},
        {"weights": rng.standard_normal((k, m)) / np.sqrt(m), "bias": 0.1 * rng.standard_normal(k), "activation": "identity"}]}
    return net, rng.standard_normal((n, d)), rng.standard_normal((n, k))


@pytest.mark.parametrize("case", SCALE_CASES[:3], ids=[c["name"] for c in SCALE_CASES[:3]])
def test_slabs_assemble_the_reference_hessians_into_an_array_and_a_memmap(service_url, case, tmp_path):
    net, x, kw = problem(case)
    e = case["expected"]
    w = e["parameterCount"]
    for method, key in (("exact", "hessian"), ("outer-product", "outerProduct")):
        out = np.full((w, w), np.nan)
        report = CurvatureClient(service_url).assemble_hessian(net, x, method=method, out=out, rows_per_slab=7, **kw)
        assert isinstance(report, SlabAssembly)
        assert (report.parameter_count, report.slabs, report.rows_per_slab) == (w, -(-w // 7), 7)
        close(out, e[key])
    # on disk, from three URLs (the same service), in slabs of one row
    path = tmp_path / "h.npy"
    disk = np.lib.format.open_memmap(path, mode="w+", dtype="float64", shape=(w, w))
    urls = [service_url, service_url.replace("127.0.0.1", "localhost"), service_url]
    report = CurvatureClient(urls).assemble_hessian(net, x, out=disk, rows_per_slab=1, max_in_flight=3, **kw)
    assert report.slabs == w and sum(report.slabs_by_url.values()) == w and report.max_in_flight == 3
    del disk
    close(np.load(path, mmap_mode="r"), e["hessian"])
    # a selection: its sub-block
    sel = e["selections"][-1]
    ws = sel["parameterCount"]
    part = np.zeros((ws, ws))
    CurvatureClient(service_url).assemble_hessian(net, x, out=part, parameters=sel["layers"], rows_per_slab=5, **kw)
    close(part, sel["hessian"])
    idx = np.concatenate([np.arange(*layer_slices(net)[l]) for l in sel["resolvedLayers"]])
    close(part, np.asarray(e["hessian"])[np.ix_(idx, idx)])


def test_the_assembly_shows_its_progress_and_refuses_a_wrong_array(service_url, capsys):
    case = SCALE_CASES[0]
    net, x, kw = problem(case)
    w = case["expected"]["parameterCount"]
    out = np.zeros((w, w))
    CurvatureClient(service_url).assemble_hessian(net, x, out=out, rows_per_slab=10, progress=True, **kw)
    err = capsys.readouterr().err
    assert "/hessian rows [" in err and f"100% {w}/{w} rows" in err and err.endswith("\n")
    close(out, case["expected"]["hessian"])
    with pytest.raises(ValueError, match=rf"out has shape \({w}, {w - 1}\).*is {w} x {w}"):
        CurvatureClient(service_url).assemble_hessian(net, x, out=np.zeros((w, w - 1)), **kw)
    with pytest.raises(ValueError, match="dtype int64"):
        CurvatureClient(service_url).assemble_hessian(net, x, out=np.zeros((w, w), dtype=np.int64), **kw)
    with pytest.raises(ValueError, match="rows_per_slab must be at least 1; got 0"):
        CurvatureClient(service_url).assemble_hessian(net, x, out=out, rows_per_slab=0, **kw)
    with pytest.raises(ValueError, match="'exact' or 'outer-product'"):
        CurvatureClient(service_url).assemble_hessian(net, x, method="diagonal", out=out, **kw)


def test_a_failing_service_stops_the_assembly_with_its_error(service_url):
    case = SCALE_CASES[0]
    net, x, kw = problem(case)
    w = case["expected"]["parameterCount"]
    # the failing URL first: its thread starts first and takes the first slab (with it second, the
    # working URL's thread could take every slab before the other had started, and nothing failed)
    client = CurvatureClient(["http://127.0.0.1:9", service_url], timeout=10)
    with pytest.raises(CurvatureServiceError) as e:
        client.assemble_hessian(net, x, out=np.zeros((w, w)), rows_per_slab=3, **kw)
    assert e.value.status is None and "127.0.0.1:9" in str(e.value)


MEASURE = r'''
import json, sys, threading, time, tracemalloc
import numpy as np
from curvature_client import CurvatureClient, parameter_count
MLP_SOURCE

def status():
    """Bytes of /proc/self/status's VmRSS, VmHWM, RssAnon (the process's own memory) and RssFile (mapped files)."""
    lines = (l.split(":", 1) for l in open("/proc/self/status").read().splitlines())
    return {k: int(v.split()[0]) * 1024 for k, v in lines if k in ("VmRSS", "VmHWM", "RssAnon", "RssFile")}

urls, path, rows = sys.argv[1].split(","), sys.argv[2], int(sys.argv[3])
net, x, t = mlp(*json.loads(sys.argv[4]))
w = parameter_count(net)
out = np.lib.format.open_memmap(path, mode="w+", dtype="float64", shape=(w, w))
client = CurvatureClient(urls)
before = status()
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # VmHWM back to the current VmRSS (Linux >= 4.0)
peak = {"anon": before["RssAnon"]}
done = threading.Event()
def sample():
    while not done.is_set():
        peak["anon"] = max(peak["anon"], status()["RssAnon"])
        time.sleep(0.002)
sampler = threading.Thread(target=sample)
sampler.start()
tracemalloc.start()
report = client.assemble_hessian(net, x, t, "sum-of-squares", out=out, rows_per_slab=rows)
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
done.set()
sampler.join()
after = status()
print(json.dumps({"w": w, "traced": traced, "anon": peak["anon"] - before["RssAnon"], "hwm": after["VmHWM"] - before["VmRSS"],
                  "file": after["RssFile"] - before["RssFile"], "slabs": report.slabs, "by_url": report.slabs_by_url,
                  "in_flight": report.max_in_flight, "seconds": report.seconds}))
'''


def test_two_live_services_assemble_a_memmap_equal_to_the_dense_answer_in_little_client_memory(service_url, tmp_path, capsys):
    second = os.environ.get("CURVATURE_SECOND_SERVICE_URL")
    if not second:
        pytest.skip("CURVATURE_SECOND_SERVICE_URL names a second service process (npm test starts one: node src/server.ts)")
    if not pathlib.Path("/proc/self/clear_refs").exists():
        pytest.skip("measuring the client's memory needs Linux's /proc/self/status and clear_refs")
    assert requests.get(f"{second}/health", timeout=30).status_code == 200
    shape = [20, 100, 5, 300]  # W = 100 * 21 + 5 * 101 = 2605: a 51.8 MiB matrix
    net, x, t = mlp(*shape)
    w = parameter_count(net)
    matrix = w * w * 8
    path = tmp_path / "hessian.npy"
    env = {**os.environ, "PYTHONPATH": str(PACKAGE_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    script = MEASURE.replace("MLP_SOURCE", inspect.getsource(mlp))  # the same network as here
    r = subprocess.run([sys.executable, "-c", script, f"{service_url},{second}", str(path), "160", json.dumps(shape)],
                       capture_output=True, text=True, env=env, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    m = json.loads(r.stdout.strip().splitlines()[-1])
    assert m["w"] == w and m["slabs"] == -(-w // 160) and m["in_flight"] == 4  # two per service
    assert all(n >= 1 for n in m["by_url"].values()) and len(m["by_url"]) == 2, m["by_url"]  # both services computed slabs
    dense = CurvatureClient(service_url).hessian(net, x, t, "sum-of-squares")
    assembled = np.load(path, mmap_mode="r")
    diff = float(np.max(np.abs(assembled - dense)))
    scale = float(np.max(np.abs(dense)))
    bitwise = bool(np.array_equal(assembled, dense))
    mib = 1024 * 1024
    with capsys.disabled():
        print(f"\nassembled {w} x {w} ({matrix / mib:.1f} MiB) from {m['slabs']} slabs over 2 service processes "
              f"({', '.join(str(n) for n in m['by_url'].values())}), {m['in_flight']} in flight, {m['seconds']:.1f} s; "
              f"{'bitwise equal to' if bitwise else f'max |difference| {diff:.1e} ({diff / scale:.1e} of max |H|) from'} "
              f"the dense /hessian; client peak: "
              f"Python/numpy allocations {m['traced'] / mib:.1f} MiB ({100 * m['traced'] / matrix:.0f} % of the matrix), "
              f"anonymous memory +{m['anon'] / mib:.1f} MiB ({100 * m['anon'] / matrix:.0f} %); resident with the "
              f"memmap's page-cache pages +{m['hwm'] / mib:.1f} MiB (of which mapped file {m['file'] / mib:.1f} MiB)")
    assert diff <= 1e-15 * scale, diff
    # the client holds pieces of slabs (about 1 MiB each, a few in flight), never a slab's worth per
    # request, let alone the matrix: exact for what Python and numpy allocate, sampled for the OS's view
    assert m["traced"] < 0.15 * matrix, m
    assert m["anon"] < 0.4 * matrix, m


def test_overloaded_slabs_are_retried_on_a_busy_service(busy_service, caplog):
    """One worker and no queue: two slabs in flight at once, so the second is refused with 503
    OVERLOADED and retried after the service's Retry-After; the matrix still comes out whole."""
    url, _ = busy_service
    deadline = time.monotonic() + 30  # a previous test's slow request may still hold the worker
    while requests.get(f"{url}/health", timeout=30).json()["pool"]["busyWorkers"] and time.monotonic() < deadline:
        time.sleep(0.05)
    net, x, t = mlp(20, 40, 3, 400, seed=3)  # W = 963, slabs of 240 rows: some 100 ms each
    w = parameter_count(net)
    before = requests.get(f"{url}/health", timeout=30).json()["pool"]
    caplog.set_level(logging.INFO, logger="curvature_client")
    out = np.zeros((w, w))
    report = CurvatureClient(url, max_retries=20, max_retry_wait=2).assemble_hessian(
        net, x, t, "sum-of-squares", out=out, rows_per_slab=240, max_in_flight=2)
    after = requests.get(f"{url}/health", timeout=30).json()["pool"]
    retries = [rec for rec in caplog.records if rec.name == "curvature_client" and "OVERLOADED" in rec.getMessage()]
    rejected = after["rejectedTasks"] - before["rejectedTasks"]
    assert rejected >= 1, "no slab was ever refused: nothing was tested"
    assert len(retries) == rejected
    assert report.slabs == 5 and after["completedTasks"] - before["completedTasks"] == 5
    close(out, CurvatureClient(url).hessian(net, x, t, "sum-of-squares"), 1e-15)
