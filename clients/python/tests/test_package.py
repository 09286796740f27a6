"""The package installs with pip into fresh virtualenvs, offline, and works from there: imported
from the venv's site-packages (not this source tree), with its version, its py.typed marker, numpy
and requests as its only dependencies (torch an extra, not imported), answering a live request.

Two venvs, from the Python running these tests:

* ``--system-site-packages``: ``pip install --no-index --no-build-isolation ./clients/python``.
  numpy, requests and the build backend (setuptools, wheel) are Debian's (python3-numpy,
  python3-requests, python3-setuptools, python3-wheel): pip runs with no index, no config file and
  no PIP_* variable, so it has no package source at all. This one always runs: it needs nothing
  beyond what the suite itself needs.
* clean (no system site-packages): ``pip install ./clients/python`` with the public index replaced
  by a path that does not exist (PIP_INDEX_URL=file:///nonexistent/, no retries), so that pip can
  only use the machine's configured local package sources (pip config: find-links,
  extra-index-url) for numpy, requests and, in its isolated build, setuptools and wheel. There, mypy
  (from the same sources) type-checks a user's snippet against the installed package: py.typed makes
  its annotations count. Skipped, with the reason, where pip is configured with no local source or
  that source lacks one of these.
"""
import json
import os
import pathlib
import re
import shutil
import subprocess
import sys
import urllib.parse

import pytest

from conftest import CASES, MODEL_CASES, PACKAGE_ROOT

CHECK = r'''
import importlib.metadata as md, io, json, pathlib, sys
import numpy, requests
import curvature_client
from curvature_client import CurvatureClient, CurvatureServiceError, network_from_torch  # the public names
url, case_paths = sys.argv[1], sys.argv[2:]
errors = []
client = CurvatureClient(url)
for path in case_paths:
    case = json.loads(pathlib.Path(path).read_text())
    r = case["request"]
    kw = {"labels": r["labels"]} if "labels" in r else {"targets": r["targets"]}
    h = client.hessian(r["network"], r["inputs"], loss=r["loss"], reduction=r.get("reduction", "sum"), **kw)
    expected = numpy.asarray(case["expected"]["hessian"])
    errors.append(float(numpy.max(numpy.abs(h - expected))) / max(1.0, float(numpy.max(numpy.abs(expected)))))
pkg = pathlib.Path(curvature_client.__file__).resolve().parent
print(json.dumps({
    "file": str(pkg), "prefix": sys.prefix, "version": curvature_client.__version__,
    "metadata_version": md.version("curvature-client"), "requires": md.requires("curvature-client"),
    "typed": (pkg / "py.typed").is_file(), "torch_imported": "torch" in sys.modules,
    "numpy": [numpy.__version__, numpy.__file__], "requests": [requests.__version__, requests.__file__],
    "errors": errors}))
'''


def source_version():
    text = (PACKAGE_ROOT / "curvature_client" / "__init__.py").read_text()
    return re.search(r'^__version__ = "([^"]+)"', text, re.M).group(1)


def run(cmd, env=None, cwd=None, timeout=300):
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)
    assert r.returncode == 0, f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}"
    return r.stdout


def offline_env(sources=True):
    """pip with the public index replaced by a path that does not exist; with sources=False, with no
    configuration at all (no config file, no PIP_* variable: no find-links, no extra index)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PIP_INDEX_URL", "VIRTUAL_ENV") and (sources or not k.startswith("PIP_"))}
    env.update(PIP_INDEX_URL="file:///nonexistent/", PIP_RETRIES="0", PIP_NO_INPUT="1", PIP_DISABLE_PIP_VERSION_CHECK="1",
               PYTHONDONTWRITEBYTECODE="1")
    if not sources:
        env["PIP_CONFIG_FILE"] = os.devnull
    return env


def source_copy(tmp):
    """The package's own files in a scratch folder: pip builds in the tree it is given, and its build/
    and *.egg-info must not land in the checkout (which may be read-only)."""
    dest = tmp / "src"
    shutil.copytree(PACKAGE_ROOT, dest, ignore=shutil.ignore_patterns("tests", "examples", "build", "*.egg-info", "__pycache__"))
    return dest


def local_sources(python):
    """The local folders pip is configured to find packages in (find-links, extra-index-url as file:// or paths)."""
    out = subprocess.run([python, "-m", "pip", "config", "list"], capture_output=True, text=True, env=offline_env()).stdout
    found = []
    for line in out.splitlines():
        key, _, value = line.partition("=")
        if not key.endswith(("find-links", "extra-index-url")):
            continue
        for item in value.strip().strip("'\"").split():
            path = urllib.parse.urlparse(item).path if item.startswith("file:") else item
            if path.startswith("/") and pathlib.Path(path).exists():
                found.append(item)
    return found


def check_installed(venv, service_url, tmp):
    python = venv / "bin" / "python"
    cases = [FIXTURE_PATHS[CASES[0]["name"]], FIXTURE_PATHS[next(c["name"] for c in MODEL_CASES if "labels" in c["request"])]]
    out = run([python, "-c", CHECK, service_url, *cases], env=offline_env(), cwd=tmp)
    info = json.loads(out.strip().splitlines()[-1])
    installed = pathlib.Path(info["file"])
    assert pathlib.Path(info["prefix"]).resolve() == venv.resolve()
    assert venv.resolve() in installed.parents, f"imported from {installed}, not from the venv"
    assert PACKAGE_ROOT not in installed.parents
    assert info["version"] == info["metadata_version"] == source_version()
    assert info["typed"], "py.typed is not installed"
    plain = sorted(r.split(";")[0].strip() for r in info["requires"] if not re.search(r"extra\s*==", r))
    assert plain == ["numpy", "requests"], info["requires"]
    assert any(r.startswith("torch") and re.search(r"extra\s*==\s*['\"]torch['\"]", r) for r in info["requires"]), info["requires"]
    assert not info["torch_imported"], "importing curvature_client imported torch"
    assert all(e <= 1e-9 for e in info["errors"]), info["errors"]
    print(f"installed {info['version']} in {venv}: numpy {info['numpy'][0]} from {info['numpy'][1]}, "
          f"requests {info['requests'][0]} from {info['requests'][1]}; Hessian errors {info['errors']}")
    return info


FIXTURE_PATHS = {}
for _folder in (PACKAGE_ROOT.parents[1] / "test" / "fixtures", PACKAGE_ROOT.parents[1] / "test" / "fixtures" / "models"):
    for _p in _folder.glob("*.json"):
        FIXTURE_PATHS[json.loads(_p.read_text())["name"]] = str(_p)


def test_pip_installs_it_offline_into_a_venv_over_the_system_packages(service_url, tmp_path):
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--system-site-packages", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", "--no-index", "--no-build-isolation", source_copy(tmp_path)],
        env=offline_env(sources=False), cwd=tmp_path)
    info = check_installed(venv, service_url, tmp_path)
    assert venv.resolve() not in pathlib.Path(info["numpy"][1]).resolve().parents  # the system's numpy


def test_pip_installs_it_with_its_dependencies_into_a_clean_venv_from_local_sources(service_url, tmp_path):
    sources = local_sources(sys.executable)
    if not sources:
        pytest.skip("pip is configured with no local package source (find-links or a file:// index) to install numpy and "
                    "requests from offline; the --system-site-packages install covers the package itself")
    # what the clean install needs: the dependencies, and the build backend for pip's isolated build
    probe = subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--dest", tmp_path / "probe",
                            "numpy", "requests", "setuptools>=61", "wheel", "mypy"],
                           capture_output=True, text=True, env=offline_env(), cwd=tmp_path, timeout=300)
    if probe.returncode != 0:
        pytest.skip(f"the local package sources ({', '.join(sources)}) do not offer numpy, requests, setuptools, wheel and mypy "
                    f"offline: {probe.stderr.strip().splitlines()[-1:]}; the --system-site-packages install covers the package")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", venv])
    run([venv / "bin" / "python", "-m", "pip", "install", source_copy(tmp_path)], env=offline_env(), cwd=tmp_path)
    info = check_installed(venv, service_url, tmp_path)
    for dep in ("numpy", "requests"):  # installed into the venv, not the system's
        assert venv.resolve() in pathlib.Path(info[dep][1]).resolve().parents, info[dep]
    print(f"local sources: {', '.join(sources)}")
    # py.typed: a user's code is type-checked against the installed package's own annotations
    run([venv / "bin" / "python", "-m", "pip", "install", "mypy"], env=offline_env(), cwd=tmp_path)
    user = tmp_path / "user.py"
    user.write_text(USER_CODE)
    r = subprocess.run([venv / "bin" / "python", "-m", "mypy", "--no-incremental", "--cache-dir", os.devnull, user],
                       capture_output=True, text=True, env=offline_env(), cwd=tmp_path, timeout=300)
    notes = re.findall(r'user\.py:(\d+): note: Revealed type is "([^"]+)"', r.stdout)
    errors = re.findall(r"user\.py:(\d+): error: (.*)", r.stdout)
    revealed = {int(line): t.replace("builtins.", "") for line, t in notes}
    assert sorted(revealed) == [6, 8, 10, 12, 15, 17, 19, 21], r.stdout
    assert revealed[6].startswith("numpy.ndarray") and revealed[8] == "float", r.stdout
    assert revealed[10].startswith("dict[str, Any]"), r.stdout
    assert revealed[12] in ("int | None", "Union[int, None]"), r.stdout
    # the overload of hessian() for structure="block-diagonal", and the dataclasses' fields
    assert revealed[15].startswith("dict[int, numpy.ndarray"), r.stdout
    assert revealed[17].startswith("numpy.ndarray") and revealed[19] == "str", r.stdout
    assert revealed[21] in ("float | None", "Union[float, None]"), r.stdout
    assert len(errors) == 1 and errors[0][0] == "13" and "ndarray" in errors[0][1], r.stdout  # the deliberate one
    assert "py.typed" not in r.stdout and "missing library stubs" not in r.stdout, r.stdout


USER_CODE = """import numpy as np
from curvature_client import CurvatureClient, CurvatureServiceError, network_from_layers

client = CurvatureClient("http://127.0.0.1:3000", max_retries=2)
h = client.hessian([([[1.0]], None, "identity")], [[1.0]], [[0.0]], "sum-of-squares", reduction="mean", parameters=[-1])
reveal_type(h)
inv, logdet = client.hessian_inverse({"layers": []}, [[1.0]], labels=[0], loss="softmax-cross-entropy", damping=0.1)
reveal_type(logdet)
net = network_from_layers([])
reveal_type(net)
err = CurvatureServiceError(422, "t", "d")
reveal_type(err.status)
bad: str = client.jacobian(net, [[1.0]])
blocks = client.hessian(net, [[1.0]], [[0.0]], "sum-of-squares", structure="block-diagonal")
reveal_type(blocks)
pairs = client.eigen(net, [[1.0]], [[0.0]], "sum-of-squares", count=1, which="smallest")
reveal_type(pairs.eigenvalues)
ivp = client.inverse_vector_product(net, [[1.0]], [[0.0]], "sum-of-squares", vectors=[1.0], damping=0.1)
reveal_type(ivp.method)
kfac = client.kfac(net, [[1.0]], [[0.0]], "sum-of-squares", parameters=[-1])
reveal_type(kfac.log_determinant)
"""
