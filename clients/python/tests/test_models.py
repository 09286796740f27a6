"""Pipelines' own models through the client, against the PyTorch reference cases of
test/fixtures/models (logits with CrossEntropyLoss/BCEWithLogitsLoss, labels, reduction, layers
without bias, gelu/silu/leaky-relu/elu) and the parameter selections of test/fixtures/scale.
Every expected value is PyTorch autograd in float64 (test/fixtures/generate_v2.py), or numpy's
own inverse of a fixture's matrix."""
import numpy as np
import pytest

from conftest import MODEL_CASES, SCALE_CASES, close
from curvature_client import CurvatureClient, CurvatureServiceError

IDS = [c["name"] for c in MODEL_CASES]


def problem(case):
    """network, inputs, and the keyword arguments naming the case's targets or labels, loss and reduction."""
    r = case["request"]
    kw = {"loss": r["loss"], "reduction": r.get("reduction", "sum")}
    if "labels" in r:
        kw["labels"] = np.array(r["labels"], dtype=np.int64)
    else:
        kw["targets"] = np.array(r["targets"])
    return r["network"], np.array(r["inputs"]), kw


def one_hot(labels, k):
    return np.eye(k)[np.asarray(labels)]


def test_the_cases_cover_what_they_claim():
    reqs = [c["request"] for c in MODEL_CASES]
    acts = {l["activation"] for r in reqs for l in r["network"]["layers"]}
    assert {"gelu", "silu", "leaky-relu", "elu", "identity"} <= acts
    assert any("labels" in r for r in reqs) and any(r.get("reduction") == "mean" for r in reqs)
    assert any(l.get("bias") is None for r in reqs for l in r["network"]["layers"])
    assert any(r["loss"] == "softmax-cross-entropy" and r["network"]["layers"][-1]["activation"] == "identity" for r in reqs)
    assert any(r["loss"] == "cross-entropy" and r["network"]["layers"][-1]["activation"] == "identity" for r in reqs)


@pytest.mark.parametrize("case", MODEL_CASES, ids=IDS)
def test_every_hessian_method_matches_the_reference(service_url, case):
    client = CurvatureClient(service_url)
    net, x, kw = problem(case)
    e = case["expected"]
    close(client.hessian(net, x, **kw), e["hessian"])
    close(client.hessian(net, x, method="outer-product", **kw), e["outerProduct"])
    close(client.hessian(net, x, method="diagonal", **kw), e["hessianDiagonal"])
    close(client.hessian(net, x, method="diagonal-approximation", **kw), e["diagonalApproximation"])
    close(client.hessian(net, x, method="finite-difference", **kw), e["hessian"], 1e-5)
    assert client.hessian(net, x, **kw).shape == (e["parameterCount"],) * 2


@pytest.mark.parametrize("case", MODEL_CASES, ids=IDS)
def test_vector_product_inverses_and_jacobians_match_the_reference(service_url, case):
    client = CurvatureClient(service_url)
    net, x, kw = problem(case)
    e = case["expected"]
    close(client.hessian_vector_product(net, x, vector=case["vector"], **kw), e["hessianVectorProduct"])
    # the service's default: Cholesky of the outer product
    inv, logdet = client.hessian_inverse(net, x, damping=case["damping"], **kw)
    close(inv, e["inverseOuterProduct"])
    assert logdet == pytest.approx(e["logDeterminant"], rel=1e-10, abs=1e-10)
    inv, logdet = client.hessian_inverse(net, x, damping=case["damping"], method="woodbury", **kw)
    close(inv, e["inverseOuterProduct"], 1e-8)
    assert logdet == pytest.approx(e["logDeterminant"], rel=1e-10, abs=1e-10)
    inv, logdet = client.hessian_inverse(net, x, damping=case["exactDamping"], hessian="exact", **kw)
    close(inv, e["inverseExact"])
    assert logdet == pytest.approx(e["logDeterminantExact"], rel=1e-10, abs=1e-10)
    close(client.jacobian(net, x), e["inputJacobian"])
    close(client.jacobian(net, x, wrt="parameters"), e["parameterJacobian"])


@pytest.mark.parametrize("case", [c for c in MODEL_CASES if len(c["request"]["inputs"]) >= 3],
                         ids=[c["name"] for c in MODEL_CASES if len(c["request"]["inputs"]) >= 3])
def test_split_across_several_services_matches_the_reference_for_the_sum_and_the_mean(service_url, case):
    # the mean over shards is not the sum of the shards' means: the client asks for sums and divides by N
    spread = CurvatureClient([service_url, service_url.replace("127.0.0.1", "localhost"), service_url])
    net, x, kw = problem(case)
    e = case["expected"]
    close(spread.hessian(net, x, **kw), e["hessian"])
    close(spread.hessian(net, x, method="outer-product", **kw), e["outerProduct"])
    close(spread.hessian(net, x, method="diagonal", **kw), e["hessianDiagonal"])
    close(spread.hessian_vector_product(net, x, vector=case["vector"], **kw), e["hessianVectorProduct"])
    close(spread.jacobian(net, x, wrt="parameters"), e["parameterJacobian"])
    inv, logdet = spread.hessian_inverse(net, x, damping=case["damping"], **kw)
    close(inv, e["inverseOuterProduct"])
    assert logdet == pytest.approx(e["logDeterminant"], rel=1e-10, abs=1e-10)
    inv, logdet = spread.hessian_inverse(net, x, damping=case["exactDamping"], hessian="exact", method="cholesky", **kw)
    close(inv, e["inverseExact"])
    assert logdet == pytest.approx(e["logDeterminantExact"], rel=1e-10, abs=1e-10)


def test_labels_in_every_form_and_their_one_hot_targets_agree(service_url):
    case = next(c for c in MODEL_CASES if "labels" in c["request"] and len(c["request"]["inputs"]) > 1)
    r = case["request"]
    net, x = r["network"], np.array(r["inputs"])
    k = len(net["layers"][-1]["weights"])
    expected = case["expected"]["hessian"]
    client = CurvatureClient(service_url)
    labels = r["labels"]
    for given in (labels, np.array(labels, dtype=np.int32), np.array(labels, dtype=np.int64),
                  np.array(labels, dtype=np.uint8), np.array(labels, dtype=np.float64)):
        close(client.hessian(net, x, labels=given, loss=r["loss"], reduction=r["reduction"]), expected)
    close(client.hessian(net, x, one_hot(labels, k), r["loss"], reduction=r["reduction"]), expected)


def test_the_services_refusals_come_through_with_their_detail(service_url):
    case = next(c for c in MODEL_CASES if "labels" in c["request"] and len(c["request"]["inputs"]) > 2)
    r = case["request"]
    net, x = r["network"], np.array(r["inputs"])
    k = len(net["layers"][-1]["weights"])
    client = CurvatureClient(service_url)
    bad = np.array(r["labels"])
    bad[2] = k
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian(net, x, labels=bad, loss=r["loss"])
    assert e.value.status == 422 and e.value.code == "TARGET_OUT_OF_DOMAIN" and f"labels[2] = {k}" in e.value.detail
    fractional = np.array(r["labels"], dtype=np.float64)
    fractional[1] = 0.5
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian(net, x, labels=fractional, loss=r["loss"])
    assert e.value.status == 422 and "labels[1] = 0.5" in e.value.detail
    with pytest.raises(CurvatureServiceError) as e:  # labels stand for one-hot rows: softmax-cross-entropy only
        client.hessian(net, x, labels=r["labels"], loss="sum-of-squares")
    # (the service's README lists this under 422 TARGET_OUT_OF_DOMAIN; the schema answers 400 INVALID_REQUEST)
    assert e.value.status in (400, 422) and "labels are class indices for loss 'softmax-cross-entropy'" in e.value.detail
    with pytest.raises(CurvatureServiceError) as e:  # exactly one of targets, labels
        client.hessian(net, x, one_hot(r["labels"], k), r["loss"], labels=r["labels"])
    assert e.value.status in (400, 422) and "labels" in e.value.detail and "targets" in e.value.detail
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian(net, x, loss=r["loss"])
    assert e.value.status in (400, 422) and "targets" in e.value.detail
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian(net, x, labels=r["labels"], loss=r["loss"], reduction="median")
    assert e.value.status == 400 and "reduction" in e.value.detail
    layers = len(net["layers"])
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian(net, x, labels=r["labels"], loss=r["loss"], parameters=[layers])
    assert e.value.status == 422 and e.value.code == "INVALID_SELECTION" and str(layers) in e.value.detail
    with pytest.raises(TypeError):
        client.hessian(net, x, labels=r["labels"])  # no loss


# --- parameters: {layers} --------------------------------------------------------------------------

def layer_slices(network):
    """Each layer's (start, end) in the parameter vector: weights out x in, then bias if any."""
    out, start = [], 0
    for layer in network["layers"]:
        w = np.asarray(layer["weights"])
        n = w.size + (w.shape[0] if layer.get("bias") is not None else 0)
        out.append((start, start + n))
        start += n
    return out


SELECTIONS = [(c, s) for c in SCALE_CASES for s in c["expected"]["selections"]]
SELECTION_IDS = [f"{c['name']}-{s['layers']}" for c, s in SELECTIONS]


@pytest.mark.parametrize("case,sel", SELECTIONS, ids=SELECTION_IDS)
def test_selected_layers_give_the_reference_sub_blocks(service_url, case, sel):
    client = CurvatureClient(service_url)
    net, x, kw = problem(case)
    layers = sel["layers"]
    idx = np.concatenate([np.arange(*layer_slices(net)[l]) for l in sel["resolvedLayers"]])
    assert len(idx) == sel["parameterCount"]
    close(client.hessian(net, x, parameters=layers, **kw), sel["hessian"])
    close(client.hessian(net, x, method="outer-product", parameters=layers, **kw), sel["outerProduct"])
    close(client.hessian(net, x, method="diagonal", parameters=layers, **kw), sel["hessianDiagonal"])
    v = np.array(case["vectors"][0])[idx]
    close(client.hessian_vector_product(net, x, vector=v, parameters=layers, **kw), sel["hessianVectorProduct"])
    close(client.jacobian(net, x, wrt="parameters", parameters=layers), sel["parameterJacobian"])
    # the selection's sub-blocks are those of the whole matrices
    close(np.asarray(case["expected"]["hessian"])[np.ix_(idx, idx)], sel["hessian"], 1e-12)
    # the inverse of the selected outer product, against numpy's inverse of the reference sub-block
    alpha = case["damping"]
    damped = np.asarray(sel["outerProduct"]) + alpha * np.eye(len(idx))
    inv, logdet = client.hessian_inverse(net, x, damping=alpha, parameters=layers, **kw)
    close(inv, np.linalg.inv(damped))
    assert logdet == pytest.approx(np.linalg.slogdet(damped)[1], rel=1e-10, abs=1e-10)


def test_a_selection_split_across_services_and_given_as_one_index_or_the_api_object(service_url):
    case = next(c for c in SCALE_CASES if len(c["request"]["inputs"]) >= 3 and c["request"].get("reduction") == "mean")
    sel = next(s for s in case["expected"]["selections"] if s["layers"] == [-1])
    net, x, kw = problem(case)
    spread = CurvatureClient([service_url] * 3)
    close(spread.hessian(net, x, parameters=[-1], **kw), sel["hessian"])
    close(spread.jacobian(net, x, wrt="parameters", parameters=[-1]), sel["parameterJacobian"])
    client = CurvatureClient(service_url)
    close(client.hessian(net, x, parameters=-1, **kw), sel["hessian"])
    close(client.hessian(net, x, parameters=np.array([-1]), **kw), sel["hessian"])
    close(client.hessian(net, x, parameters={"layers": [-1]}, **kw), sel["hessian"])
    with pytest.raises(TypeError):
        client.hessian(net, x, parameters=[1.5], **kw)  # not a layer index
