"""The Python client against a live service, checked against the reference cases of test/fixtures
(PyTorch autograd, float64)."""
import email.parser
import email.policy
import email.utils
import http.server
import io
import json
import logging
import os
import threading
import time

import numpy as np
import pytest

from conftest import CASES
from curvature_client import (CurvatureClient, CurvatureServiceError, network_from_layers,
                              invert_damped)

IDS = [c["name"] for c in CASES]


def close(actual, expected, tol=1e-9):
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape
    scale = max(1.0, float(np.max(np.abs(expected))))
    err = float(np.max(np.abs(actual - expected))) / scale
    assert err <= tol, f"relative error {err} > {tol}"


def data(case):
    r = case["request"]
    return r["network"], np.array(r["inputs"]), np.array(r["targets"]), r["loss"]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_every_hessian_method_matches_the_reference(service_url, case):
    client = CurvatureClient(service_url)
    net, x, t, loss = data(case)
    e = case["expected"]
    close(client.hessian(net, x, t, loss), e["hessian"])
    close(client.hessian(net, x, t, loss, method="outer-product"), e["outerProduct"])
    close(client.hessian(net, x, t, loss, method="diagonal"), e["hessianDiagonal"])
    close(client.hessian(net, x, t, loss, method="diagonal-approximation"), e["diagonalApproximation"])
    close(client.hessian(net, x, t, loss, method="finite-difference"), e["hessian"], 1e-5)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_vector_product_inverse_and_jacobian_match_the_reference(service_url, case):
    client = CurvatureClient(service_url)
    net, x, t, loss = data(case)
    e = case["expected"]
    close(client.hessian_vector_product(net, x, t, loss, case["vector"]), e["hessianVectorProduct"])
    inv, logdet = client.hessian_inverse(net, x, t, loss, damping=case["damping"])
    close(inv, e["inverseOuterProduct"], 1e-8)
    assert logdet == pytest.approx(e["logDeterminant"], rel=1e-9, abs=1e-9)
    inv, logdet = client.hessian_inverse(net, x, t, loss, damping=case["exactDamping"], method="cholesky", hessian="exact")
    close(inv, e["inverseExact"], 1e-8)
    assert logdet == pytest.approx(e["logDeterminantExact"], rel=1e-9, abs=1e-9)
    close(client.jacobian(net, x), e["inputJacobian"])


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_data_split_across_several_services_sums_to_the_whole(service_url, case):
    # the same service under three URLs: each gets a third of the rows
    single = CurvatureClient(service_url)
    spread = CurvatureClient([service_url, service_url.replace("127.0.0.1", "localhost"), service_url])
    net, x, t, loss = data(case)
    e = case["expected"]
    for method, key in [("exact", "hessian"), ("outer-product", "outerProduct"), ("diagonal", "hessianDiagonal"),
                        ("diagonal-approximation", "diagonalApproximation")]:
        close(spread.hessian(net, x, t, loss, method=method), e[key])
    close(spread.hessian_vector_product(net, x, t, loss, case["vector"]), e["hessianVectorProduct"])
    close(spread.jacobian(net, x), e["inputJacobian"])
    # an inverse is not a sum: the client sums the Hessians and inverts locally
    inv, logdet = spread.hessian_inverse(net, x, t, loss, damping=case["damping"])
    close(inv, e["inverseOuterProduct"], 1e-8)
    assert logdet == pytest.approx(e["logDeterminant"], rel=1e-9, abs=1e-9)
    inv, logdet = spread.hessian_inverse(net, x, t, loss, damping=case["exactDamping"], method="cholesky", hessian="exact")
    close(inv, e["inverseExact"], 1e-8)
    one, one_logdet = single.hessian_inverse(net, x, t, loss, damping=case["exactDamping"], method="cholesky", hessian="exact")
    close(inv, one, 1e-8)
    assert logdet == pytest.approx(one_logdet, rel=1e-9)


def test_float32_arrays_are_sent_as_float32(service_url):
    case = CASES[0]
    net, x, t, loss = data(case)
    client = CurvatureClient(service_url)
    h32 = client.hessian(net, x.astype(np.float32), t.astype(np.float32), loss)
    h64 = client.hessian(net, x.astype(np.float32).astype(np.float64), t.astype(np.float32).astype(np.float64), loss)
    np.testing.assert_array_equal(h32, h64)


def test_layers_may_be_given_as_tuples_of_arrays(service_url):
    case = CASES[0]
    net, x, t, loss = data(case)
    layers = [(np.array(l["weights"]), np.array(l["bias"]), l["activation"]) for l in net["layers"]]
    close(CurvatureClient(service_url).hessian(layers, x, t, loss), case["expected"]["hessian"])
    assert network_from_layers(layers) == network_from_layers(net["layers"])


def test_a_refusal_raises_a_typed_error_with_the_services_detail(service_url):
    case = CASES[0]
    net, x, t, _ = data(case)
    client = CurvatureClient(service_url)
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian(net, x[:, :1], t, "sum-of-squares")
    assert e.value.status == 422
    assert e.value.code == "SHAPE_MISMATCH"
    assert "inputs have 1 columns" in e.value.detail
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian_vector_product(net, x, t, "sum-of-squares", [1.0, 2.0])
    assert e.value.status == 422 and "vector has 2 entries" in e.value.detail
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian(net, x, t, "hinge")
    assert e.value.status == 400 and "loss" in e.value.detail
    with pytest.raises(ValueError):
        client.hessian(net, x, t, "sum-of-squares", method="newton")


def test_an_unreachable_service_raises_a_typed_error():
    case = CASES[0]
    net, x, t, loss = data(case)
    with pytest.raises(CurvatureServiceError) as e:
        CurvatureClient("http://127.0.0.1:9", timeout=5).hessian(net, x, t, loss)
    assert e.value.status is None


def test_large_answers_show_a_progress_bar(service_url, capsys):
    case = max(CASES, key=lambda c: c["expected"]["parameterCount"])
    net, x, t, loss = data(case)
    client = CurvatureClient(service_url, progress=True, progress_threshold=1)
    close(client.hessian(net, x, t, loss), case["expected"]["hessian"])
    err = capsys.readouterr().err
    assert "/hessian [" in err and "100%" in err and err.endswith("\n")


class _Scripted(http.server.BaseHTTPRequestHandler):
    """A stand-in service answering a script of (status, headers, body), recording requests."""
    script: list = []
    seen: list = []
    ports: list = []

    bodies: list = []

    def do_POST(self):  # noqa: N802
        length = int(self.headers.get("Content-Length", 0))
        type(self).bodies.append(self.rfile.read(length))
        type(self).seen.append(dict(self.headers))
        type(self).ports.append(self.client_address[1])
        status, headers, body = type(self).script.pop(0)
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def scripted():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Scripted.seen = []
    _Scripted.ports = []
    _Scripted.bodies = []
    yield server, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _npy(a):
    buf = io.BytesIO()
    np.save(buf, a)
    return buf.getvalue()


BUSY = (503, {"Content-Type": "application/problem+json", "Retry-After": "1"},
        b'{"type":"x","title":"Service busy","status":503,"detail":"every worker is busy","code":"OVERLOADED"}')


TIMED_OUT = (503, {"Content-Type": "application/problem+json", "Retry-After": "1"},
             b'{"type":"x","title":"Computation timed out","status":503,"detail":"the computation ran past the limit of 100 ms",'
             b'"code":"TIMEOUT"}')


def test_npy_answers_are_read_straight_into_their_array_in_any_layout_and_a_short_one_is_refused(scripted):
    """The .npy reader (the header, then readinto in pieces of a MiB): C and Fortran order, a
    float32 answer (summed as float64, as before), an answer of several pieces, an empty one, and a
    body cut short."""
    server, url = scripted
    net, x, t, loss = data(CASES[0])
    rng = np.random.default_rng(5)
    big = rng.standard_normal((700, 300))  # 1.7 MB: two pieces and a part
    answers = [big, np.asfortranarray(rng.standard_normal((5, 7))), rng.standard_normal((3, 4)).astype(np.float32),
               np.zeros((0, 3))]
    _Scripted.script = [(200, {"Content-Type": "application/x-npy"}, _npy(a)) for a in answers]
    client = CurvatureClient(url, progress=False)
    for want in answers:
        got = client.hessian(net, x, t, loss)
        assert got.shape == want.shape and got.dtype == np.float64
        np.testing.assert_array_equal(got, want.astype(np.float64))
    cut = _npy(big)
    _Scripted.script = [(200, {"Content-Type": "application/x-npy"}, cut[: len(cut) - 100])]
    with pytest.raises(CurvatureServiceError) as e:
        client.hessian(net, x, t, loss)
    assert "closed 100 bytes early" in e.value.detail


def _retry_records(caplog):
    return [r for r in caplog.records if r.name == "curvature_client" and "retry" in r.getMessage()]


def test_503_overloaded_is_retried_after_retry_after_logged_and_the_api_key_is_sent(scripted, caplog):
    server, url = scripted
    case = CASES[0]
    net, x, t, loss = data(case)
    answer = np.arange(4.0).reshape(2, 2)
    _Scripted.script = [BUSY, BUSY, (200, {"Content-Type": "application/x-npy"}, _npy(answer))]
    caplog.set_level(logging.INFO, logger="curvature_client")
    started = time.monotonic()
    got = CurvatureClient(url, api_key="s3cret").hessian(net, x, t, loss)
    assert time.monotonic() - started >= 2.0  # waited Retry-After: 1 twice
    np.testing.assert_array_equal(got, answer)
    records = _retry_records(caplog)
    assert [r.attempt for r in records] == [1, 2]
    assert all(r.levelno == logging.WARNING and r.wait == 1.0 and r.code == "OVERLOADED" for r in records)
    assert "retry 1 of 5 in 1 s" in records[0].getMessage() and "every worker is busy" in records[0].getMessage()
    assert len(_Scripted.seen) == 3
    assert len(set(_Scripted.ports)) == 3, "each retry comes on a new connection (a balancer may route it elsewhere)"
    assert all(h["Authorization"] == "Bearer s3cret" for h in _Scripted.seen)
    assert all(h["Content-Type"].startswith("multipart/form-data") and h["Accept"] == "application/x-npy" for h in _Scripted.seen)


def test_retries_are_bounded_in_number_and_wait(scripted, caplog):
    server, url = scripted
    net, x, t, loss = data(CASES[0])
    _Scripted.script = [BUSY, BUSY]
    caplog.set_level(logging.INFO, logger="curvature_client")
    started = time.monotonic()
    with pytest.raises(CurvatureServiceError) as e:
        CurvatureClient(url, max_retries=1, max_retry_wait=0.1).hessian(net, x, t, loss)
    assert time.monotonic() - started < 0.9  # Retry-After: 1, capped at 0.1 s
    assert e.value.status == 503 and e.value.code == "OVERLOADED" and "busy" in e.value.detail
    assert len(_Scripted.seen) == 2
    assert [r.wait for r in _retry_records(caplog)] == [0.1]


def test_a_503_timeout_is_raised_at_once_not_retried(scripted, caplog):
    server, url = scripted
    net, x, t, loss = data(CASES[0])
    _Scripted.script = [TIMED_OUT, BUSY]
    caplog.set_level(logging.INFO, logger="curvature_client")
    started = time.monotonic()
    with pytest.raises(CurvatureServiceError) as e:
        CurvatureClient(url).hessian(net, x, t, loss)
    assert time.monotonic() - started < 0.9  # no wait for its Retry-After: 1
    assert e.value.status == 503 and e.value.code == "TIMEOUT" and "ran past the limit" in e.value.detail
    assert "[TIMEOUT]" in str(e.value)
    assert len(_Scripted.seen) == 1
    assert _retry_records(caplog) == []


def test_a_503_without_the_services_code_is_not_retried(scripted):
    # e.g. a proxy in front of the service: only the service's own OVERLOADED says a retry may succeed
    server, url = scripted
    net, x, t, loss = data(CASES[0])
    _Scripted.script = [(503, {"Content-Type": "text/html", "Retry-After": "1"}, b"<h1>503 Service Unavailable</h1>"), BUSY]
    with pytest.raises(CurvatureServiceError) as e:
        CurvatureClient(url).hessian(net, x, t, loss)
    assert e.value.status == 503 and e.value.code is None and "Service Unavailable" in e.value.detail
    assert len(_Scripted.seen) == 1


def test_retry_after_as_an_http_date_and_absent(scripted, caplog):
    server, url = scripted
    net, x, t, loss = data(CASES[0])
    soon = email.utils.formatdate(time.time() + 1.6, usegmt=True)  # whole seconds: waits 0.6 to 1.6 s
    dated = (503, {**BUSY[1], "Retry-After": soon}, BUSY[2])
    bare = (503, {"Content-Type": "application/problem+json"}, BUSY[2])
    answer = np.eye(2)
    _Scripted.script = [dated, bare, (200, {"Content-Type": "application/x-npy"}, _npy(answer))]
    caplog.set_level(logging.INFO, logger="curvature_client")
    np.testing.assert_array_equal(CurvatureClient(url).hessian(net, x, t, loss), answer)
    waits = [r.wait for r in _retry_records(caplog)]
    assert len(waits) == 2
    assert 0.0 <= waits[0] <= 1.6
    assert waits[1] == 1.0  # no Retry-After: 0.5 * 2^attempt, attempt 1


def test_invert_damped_refuses_an_indefinite_matrix():
    with pytest.raises(CurvatureServiceError) as e:
        invert_damped(np.diag([1.0, -2.0]), 0.5)
    assert e.value.status == 422


def test_an_api_key_is_sent_as_a_bearer_token(service_url):
    keyed = os.environ.get("CURVATURE_KEYED_SERVICE_URL")
    key = os.environ.get("CURVATURE_API_KEY")
    if not keyed or not key:
        pytest.skip("CURVATURE_KEYED_SERVICE_URL and CURVATURE_API_KEY name a service started with API_KEYS (npm test sets them)")
    case = CASES[0]
    net, x, t, loss = data(case)
    close(CurvatureClient(keyed, api_key=key).hessian(net, x, t, loss), case["expected"]["hessian"])
    with pytest.raises(CurvatureServiceError) as e:
        CurvatureClient(keyed).hessian(net, x, t, loss)
    assert e.value.status == 401
    with pytest.raises(CurvatureServiceError) as e:
        CurvatureClient(keyed, api_key="wrong").hessian(net, x, t, loss)
    assert e.value.status == 401


def test_the_client_names_what_the_service_documents(service_url):
    """The client's lists of activations, methods, losses and reductions are the service's (its
    OpenAPI document), on every endpoint that takes them."""
    import requests
    import curvature_client
    doc = requests.get(f"{service_url}/openapi.json", timeout=30).json()

    def deref(s):
        """A schema, its $ref (#/components/schemas/...) followed."""
        while "$ref" in s:
            s = doc["components"]["schemas"][s["$ref"].rsplit("/", 1)[1]]
        return s

    def schema(path):
        return deref(doc["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"])["properties"]

    body = schema("/hessian")
    layer = deref(deref(body["network"])["properties"]["layers"]["items"])
    assert tuple(deref(layer["properties"]["activation"])["enum"]) == curvature_client.ACTIVATIONS
    assert tuple(body["method"]["enum"]) == curvature_client.HESSIAN_METHODS
    for path in ("/hessian", "/hessian/vector-product", "/hessian/inverse"):
        props = schema(path)
        assert tuple(deref(props["loss"])["enum"]) == curvature_client.LOSSES, path
        assert tuple(deref(props["reduction"])["enum"]) == curvature_client.REDUCTIONS, path
        assert deref(props["reduction"])["default"] == "sum", path  # the client leaves 'sum' out
        assert "labels" in props and "parameters" in props, path
    assert "parameters" in schema("/jacobian")


def multipart_parts(headers, body):
    """{name: bytes} of a multipart/form-data body, by the standard library's MIME parser."""
    msg = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {headers['Content-Type']}\r\n\r\n".encode() + body)
    assert msg.is_multipart()
    return {part.get_param("name", header="content-disposition"): part.get_payload(decode=True) for part in msg.iter_parts()}


def test_the_wire_form_of_labels_reduction_and_parameters(scripted):
    server, url = scripted
    net = {"layers": [{"weights": [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], "bias": None, "activation": "identity"}]}
    x = np.array([[0.1, 0.2], [0.3, 0.4]], dtype=np.float32)
    ok = (200, {"Content-Type": "application/x-npy"}, _npy(np.zeros((6, 6))))
    inverse = (200, {"Content-Type": "application/x-npy", "X-Log-Determinant": "-1.5"}, _npy(np.eye(6)))
    _Scripted.script = [ok, ok, inverse]
    client = CurvatureClient(url)
    client.hessian(net, x, labels=np.array([2, 0], dtype=np.int32), loss="softmax-cross-entropy", reduction="mean",
                   parameters=[-1])
    client.hessian(net, x, labels=[1.0, 2.0], loss="softmax-cross-entropy")
    assert client.hessian_inverse(net, x, np.eye(3)[[0, 1]], "softmax-cross-entropy", damping=0.5)[1] == -1.5
    first, second, third = (multipart_parts(h, b) for h, b in zip(_Scripted.seen, _Scripted.bodies))
    request = json.loads(first["request"])
    assert request["reduction"] == "mean" and request["parameters"] == {"layers": [-1]} and request["method"] == "exact"
    assert request["network"]["layers"][0]["bias"] is None and "targets" not in first and "labels" not in request
    labels = np.load(io.BytesIO(first["labels"]))
    assert labels.dtype == np.dtype("<i8") and labels.tolist() == [2, 0]  # int32 sent as int64
    assert np.load(io.BytesIO(first["inputs"])).dtype == np.float32  # float32 stays float32
    request = json.loads(second["request"])
    assert "reduction" not in request and "parameters" not in request  # the service's defaults: sum, every layer
    assert np.load(io.BytesIO(second["labels"])).dtype == np.float64  # not integers: sent as they are, the service checks them
    request = json.loads(third["request"])
    assert request["damping"] == 0.5 and "method" not in request and "hessian" not in request  # the service's defaults
    assert np.load(io.BytesIO(third["targets"])).shape == (2, 3)
