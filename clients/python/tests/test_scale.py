"""Curvature at scale through the client, against the PyTorch reference cases of test/fixtures/scale
(generate_v2.py: dense Hessians and their sub-blocks, KFAC factors by definition, numpy.linalg.eigh,
numpy.linalg.solve) and identities: per-layer blocks, row slabs, the trace, KFAC factors and log
determinant, eigenpairs (dense and Lanczos), inverse-vector products (Cholesky, CG with each
preconditioner, KFAC), each also split across several services; what goes on the wire; refusals."""
import io
import json

import numpy as np
import pytest

from conftest import SCALE_CASES, close
from curvature_client import (CurvatureClient, CurvatureServiceError, Eigenpairs, InverseVectorProduct, Kfac,
                              parameter_count, selected_layers)
from test_client import _Scripted, _npy, multipart_parts, scripted  # noqa: F401  (the scripted stand-in service)
from test_models import layer_slices, problem

IDS = [c["name"] for c in SCALE_CASES]


def spread(url):
    """The same service under three URLs: each gets a third of the rows of the data."""
    return CurvatureClient([url, url.replace("127.0.0.1", "localhost"), url])


@pytest.mark.parametrize("case", SCALE_CASES, ids=IDS)
def test_blocks_rows_and_trace_match_the_reference(service_url, case):
    net, x, kw = problem(case)
    e = case["expected"]
    w = e["parameterCount"]
    assert parameter_count(net) == w
    for client in (CurvatureClient(service_url), spread(service_url)):
        for method, key in (("exact", "hessian"), ("outer-product", "outerProduct")):
            blocks = client.hessian(net, x, method=method, structure="block-diagonal", **kw)
            assert list(blocks) == [b["layer"] for b in e["blocks"]]  # every layer, in layer order
            for b in e["blocks"]:
                close(blocks[b["layer"]], b[key])
            # slabs of rows, stacked, are the whole matrix
            cuts = [0, 1, w // 3, w - 2, w]
            slabs = [client.hessian(net, x, method=method, rows=(a, b), **kw) for a, b in zip(cuts, cuts[1:])]
            assert [s.shape for s in slabs] == [(b - a, w) for a, b in zip(cuts, cuts[1:])]
            close(np.vstack(slabs), e[key])
        trace = client.trace(net, x, **kw)
        assert trace == pytest.approx(e["trace"], rel=1e-10, abs=1e-12)
        assert trace == pytest.approx(float(np.sum(client.hessian(net, x, method="diagonal", **kw))), rel=1e-12, abs=1e-14)


@pytest.mark.parametrize("case", SCALE_CASES, ids=IDS)
def test_a_selection_gives_its_layers_blocks_and_trace(service_url, case):
    net, x, kw = problem(case)
    e = case["expected"]
    client = CurvatureClient(service_url)
    for sel in e["selections"]:
        assert selected_layers(net, sel["layers"]) == sel["resolvedLayers"]
        assert parameter_count(net, sel["layers"]) == sel["parameterCount"]
        blocks = client.hessian(net, x, parameters=sel["layers"], structure="block-diagonal", **kw)
        assert list(blocks) == sel["resolvedLayers"]
        for layer in sel["resolvedLayers"]:
            close(blocks[layer], e["blocks"][layer]["hessian"])
        assert client.trace(net, x, parameters=sel["layers"], **kw) == pytest.approx(sel["trace"], rel=1e-10, abs=1e-12)
        w = sel["parameterCount"]
        close(client.hessian(net, x, parameters=sel["layers"], rows=(1, w), **kw), np.asarray(sel["hessian"])[1:])


@pytest.mark.parametrize("case", SCALE_CASES, ids=IDS)
def test_kfac_factors_and_log_determinant_match_the_reference(service_url, case):
    net, x, kw = problem(case)
    e = case["expected"]["kfac"]
    alpha = case["damping"]
    for client in (CurvatureClient(service_url), spread(service_url)):
        k = client.kfac(net, x, damping=alpha, **kw)
        assert isinstance(k, Kfac) and len(k) == len(e["layers"]) and k.parameter_count == case["expected"]["parameterCount"]
        for f, ref in zip(k.factors, e["layers"]):
            assert f.layer == ref["layer"]
            close(f.input_factor, ref["inputFactor"])
            close(f.output_factor, ref["outputFactor"])
        assert [a.shape for a, _ in k] == [np.shape(ref["inputFactor"]) for ref in e["layers"]]
        assert k.log_determinant == pytest.approx(e["logDeterminant"], rel=1e-11)
        # K + alpha I from the factors, in the parameter order: the reference solves
        damped = k.matrix() + alpha * np.eye(k.parameter_count)
        close(np.linalg.solve(damped, np.asarray(case["vectors"]).T).T, e["inverseVectorProducts"])
        assert np.linalg.slogdet(damped)[1] == pytest.approx(e["logDeterminant"], rel=1e-11)
    assert CurvatureClient(service_url).kfac(net, x, **kw).log_determinant is None


def test_kfac_of_one_point_is_the_outer_product_block(service_url):
    """With N = 1, G_l (x) A_l is exactly the layer's outer-product block (an identity, no oracle)."""
    case = next(c for c in SCALE_CASES if len(c["request"]["inputs"]) == 1)
    net, x, kw = problem(case)
    k = CurvatureClient(service_url).kfac(net, x, **kw)
    blocks = CurvatureClient(service_url).hessian(net, x, method="outer-product", structure="block-diagonal", **kw)
    assert any(not f.bias for f in k.factors) and any(f.bias for f in k.factors)  # both layouts
    for f in k.factors:
        close(f.matrix(), blocks[f.layer], 1e-12)


def _same_up_to_sign(vectors, reference):
    """Columns of vectors equal those of reference up to each column's sign."""
    vectors, reference = np.asarray(vectors), np.asarray(reference)
    signs = np.sign(np.sum(vectors * reference, axis=0))
    close(vectors * signs, reference, 1e-7)


@pytest.mark.parametrize("case", SCALE_CASES, ids=IDS)
def test_eigenpairs_dense_and_lanczos_match_numpy_eigh(service_url, case):
    net, x, kw = problem(case)
    client = CurvatureClient(service_url)
    for hessian, key in (("exact", "exact"), ("outer-product", "outerProduct")):
        ref = case["expected"]["eigen"][key]
        lam, vec, gaps = np.asarray(ref["eigenvalues"]), np.asarray(ref["eigenvectors"]), np.asarray(ref["gaps"])
        order = np.argsort(lam)[::-1]  # eigh gives ascending; 'largest' is descending
        for method in ("dense", "lanczos"):
            pairs = client.eigen(net, x, count=3, hessian=hessian, method=method, **kw)
            assert isinstance(pairs, Eigenpairs) and pairs.method == method
            assert (pairs.iterations == 0) == (method == "dense")
            assert pairs.eigenvectors.shape == (len(lam), 3) and pairs.residuals.shape == (3,)
            close(pairs.eigenvalues, lam[order[:3]], 1e-9)
            assert np.all(pairs.residuals <= 1e-8 * max(1.0, float(np.max(np.abs(lam)))))
            well_separated = [j for j in range(3) if gaps[order[j]] > 1e-6 * max(1.0, float(np.max(np.abs(lam))))]
            _same_up_to_sign(pairs.eigenvectors[:, well_separated], vec[:, order[well_separated]])
        values, vectors = client.eigen(net, x, count=2, which="smallest", hessian=hessian, **kw)  # unpacks
        close(values, np.sort(lam)[:2], 1e-9)
        assert vectors.shape == (len(lam), 2)


@pytest.mark.parametrize("case", SCALE_CASES, ids=IDS)
def test_inverse_vector_products_match_numpy_solve(service_url, case):
    net, x, kw = problem(case)
    e = case["expected"]
    v = np.asarray(case["vectors"])
    client = CurvatureClient(service_url)
    alpha, exact_alpha = case["damping"], case["exactDamping"]
    chol = client.inverse_vector_product(net, x, vectors=v, damping=alpha, method="cholesky", **kw)
    assert isinstance(chol, InverseVectorProduct) and chol.method == "cholesky" and list(chol.iterations) == [0] * len(v)
    close(chol.solutions, e["inverseVectorProducts"]["outerProduct"])
    assert np.all(chol.residuals < 1e-12)
    for preconditioner in ("none", "diagonal", "kfac"):
        cg = client.inverse_vector_product(net, x, vectors=v, damping=alpha, method="cg", preconditioner=preconditioner, **kw)
        assert cg.method == "cg" and cg.iterations.dtype == np.int64 and np.all(cg.iterations >= 1)
        assert np.all(cg.residuals <= 1e-10)
        close(cg.solutions, e["inverseVectorProducts"]["outerProduct"], 1e-8)
    exact = client.inverse_vector_product(net, x, vectors=v, damping=exact_alpha, hessian="exact", method="cg",
                                          tolerance=1e-12, **kw)
    close(exact.solutions, e["inverseVectorProducts"]["exact"], 1e-9)
    kfac = client.inverse_vector_product(net, x, vectors=v, damping=alpha, hessian="kfac", **kw)
    assert kfac.method == "kfac"
    close(kfac.solutions, e["kfac"]["inverseVectorProducts"])
    # one vector in, one solution out; several URLs split the vectors (each service has all the data)
    one = client.inverse_vector_product(net, x, vectors=v[1], damping=alpha, **kw)
    assert one.solutions.shape == v[1].shape and one.iterations.shape == (1,)
    close(one.solutions, e["inverseVectorProducts"]["outerProduct"][1])
    split = spread(service_url).inverse_vector_product(net, x, vectors=v, damping=alpha, method="cg", **kw)
    close(split.solutions, e["inverseVectorProducts"]["outerProduct"], 1e-8)
    assert split.iterations.shape == (len(v),)


def test_refusals_of_the_new_fields_come_through_with_their_detail(service_url):
    case = SCALE_CASES[0]
    net, x, kw = problem(case)
    w = case["expected"]["parameterCount"]
    client = CurvatureClient(service_url)
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian(net, x, rows=(0, w + 1), **kw)
    assert e.value.status in (400, 422) and "rows" in e.value.detail
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian(net, x, method="diagonal", structure="block-diagonal", **kw)
    assert e.value.status in (400, 422) and "block-diagonal" in e.value.detail
    with pytest.raises(CurvatureServiceError) as e:
        client.eigen(net, x, count=w + 1, **kw)
    assert e.value.status in (400, 422) and str(w) in e.value.detail
    smallest = client.eigen(net, x, which="smallest", **kw).eigenvalues[0]
    assert smallest < -1e-3, "the case's exact Hessian is positive definite: pick another"
    with pytest.raises(CurvatureServiceError) as e:  # H + alpha I indefinite: the smallest eigenvalue is below -alpha
        client.inverse_vector_product(net, x, vectors=np.ones(w), damping=-smallest / 2, hessian="exact", method="cg", **kw)
    assert e.value.status == 422 and e.value.code == "NOT_POSITIVE_DEFINITE"
    with pytest.raises(CurvatureServiceError) as e:
        client.inverse_vector_product(net, x, vectors=np.ones((2, w - 1)), damping=0.1, **kw)
    assert e.value.status == 422 and str(w) in e.value.detail
    with pytest.raises(ValueError, match=r"rows must be \(start, end\)"):
        client.hessian(net, x, rows=(0, 1, 2), **kw)
    with pytest.raises(TypeError, match="damping"):
        client.inverse_vector_product(net, x, vectors=np.ones(w), **kw)
    with pytest.raises(ValueError, match="layer 5 does not exist"):
        parameter_count(net, [5])


def test_the_wire_form_of_the_new_methods(scripted):  # noqa: F811
    server, url = scripted
    net = {"layers": [{"weights": [[1.0, 2.0], [3.0, 4.0]], "bias": [0.0, 1.0], "activation": "tanh"},
                      {"weights": [[1.0, -1.0]], "bias": None, "activation": "identity"}]}  # W = 6 + 2
    x, t = np.array([[0.1, 0.2], [0.3, 0.4]]), np.array([[1.0], [0.0]])

    def npz(**arrays):
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return buf.getvalue()

    npz_type = {"Content-Type": "application/x-npz", "X-Parameter-Count": "8"}
    _Scripted.script = [
        (200, npz_type, npz(block_0=np.eye(6), block_1=np.eye(2))),
        (200, {"Content-Type": "application/x-npy", "X-Row-Start": "2", "X-Row-End": "5"}, _npy(np.zeros((3, 8)))),
        (200, {"Content-Type": "application/x-npy", "X-Trace": "1.25"}, _npy(np.zeros(8))),
        (200, {**npz_type, "X-Log-Determinant": "-3.5"}, npz(A_0=np.eye(3), G_0=np.eye(2), A_1=np.eye(2), G_1=np.eye(1))),
        (200, {**npz_type, "X-Method": "lanczos", "X-Iterations": "17"},
         npz(eigenvalues=np.ones(2), eigenvectors=np.zeros((8, 2)), residuals=np.zeros(2))),
        (200, {**npz_type, "X-Method": "cg", "X-Iterations": "4,5"},
         npz(solutions=np.zeros((2, 8)), iterations=np.array([4.0, 5.0]), residuals=np.array([1e-11, 2e-11]))),
    ]
    client = CurvatureClient(url)
    assert list(client.hessian(net, x, t, "sum-of-squares", structure="block-diagonal", parameters=[0, -1])) == [0, 1]
    assert client.hessian(net, x, t, "sum-of-squares", method="outer-product", rows=(2, 5)).shape == (3, 8)
    assert client.trace(net, x, t, "sum-of-squares") == 1.25
    k = client.kfac(net, x, t, "sum-of-squares", damping=0.5)
    assert k.log_determinant == -3.5 and [f.bias for f in k.factors] == [True, False]
    pairs = client.eigen(net, x, t, "sum-of-squares", count=2)
    assert (pairs.method, pairs.iterations, pairs.parameter_count) == ("lanczos", 17, 8)
    sol = client.inverse_vector_product(net, x, t, "sum-of-squares", vectors=np.ones((2, 8), dtype=np.float32), damping=0.1,
                                        preconditioner="kfac")
    assert sol.method == "cg" and sol.iterations.tolist() == [4, 5]
    sent = [(h, json.loads(multipart_parts(h, b)["request"]), multipart_parts(h, b)) for h, b in zip(_Scripted.seen, _Scripted.bodies)]
    accepts = [h["Accept"] for h, _, _ in sent]
    assert accepts == ["application/x-npz", "application/x-npy", "application/x-npy", "application/x-npz",
                       "application/x-npz", "application/x-npz"]
    fields = [{k: v for k, v in r.items() if k not in ("network", "loss")} for _, r, _ in sent]
    assert fields == [
        {"method": "exact", "structure": "block-diagonal", "parameters": {"layers": [0, -1]}},
        {"method": "outer-product", "rows": [2, 5]},
        {"method": "diagonal"},
        {"damping": 0.5},
        {"count": 2},  # everything else left to the service's defaults
        {"damping": 0.1, "preconditioner": "kfac"},
    ]
    vectors = np.load(io.BytesIO(sent[5][2]["vectors"]))
    assert vectors.dtype == np.float32 and vectors.shape == (2, 8)  # a .npy part, float32 kept


def test_an_answer_for_other_rows_than_asked_is_refused(scripted):  # noqa: F811
    server, url = scripted
    net = [([[1.0]], [0.0], "identity")]
    _Scripted.script = [(200, {"Content-Type": "application/x-npy", "X-Row-Start": "0", "X-Row-End": "1"}, _npy(np.zeros((1, 2))))]
    with pytest.raises(CurvatureServiceError, match="asked for rows"):
        CurvatureClient(url).hessian(net, [[1.0]], [[0.0]], "sum-of-squares", rows=(1, 2))


def test_layer_slices_agree_with_parameter_count():
    for case in SCALE_CASES:
        net = case["request"]["network"]
        assert layer_slices(net)[-1][1] == parameter_count(net)
