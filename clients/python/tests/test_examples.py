"""The worked examples (clients/python/examples) run against the live service and check their own
numbers (each prints "ok: ..." per check and exits 1 on the first that fails): with PyTorch where it
is installed, and as they run where it is not (torch made unimportable), numpy only, saying what
they skip."""
import importlib.util
import os
import subprocess
import sys

import pytest

from conftest import PACKAGE_ROOT

FOLDER = PACKAGE_ROOT / "examples"
EXAMPLES = ["laplace_evidence.py", "optimal_brain_surgeon.py", "influence.py"]
#: What the others are: the shared helpers, and the PyTorch-only example test_torch.py runs.
NOT_HERE = {"common.py", "fit_and_check.py"}
HAS_TORCH = importlib.util.find_spec("torch") is not None

# Runs an example as `python example.py` would, with `import torch` failing as where it is not installed.
WITHOUT_TORCH = ("import runpy, sys; sys.modules['torch'] = None; path = sys.argv[1]; sys.argv = sys.argv[1:]; "
                 "sys.path.insert(0, str(__import__('pathlib').Path(path).parent)); runpy.run_path(path, run_name='__main__')")


def test_every_example_is_run_by_a_test():
    assert {p.name for p in FOLDER.glob("*.py")} == set(EXAMPLES) | NOT_HERE


@pytest.mark.parametrize("torch_available", [True, False], ids=["with-torch", "numpy-only"])
@pytest.mark.parametrize("name", EXAMPLES)
def test_the_example_checks_its_numbers_against_the_live_service(service_url, name, torch_available):
    if torch_available and not HAS_TORCH:
        pytest.skip("PyTorch is not installed: the examples' cross-checks against it cannot run (their numpy-only runs "
                    "still check everything else)")
    script = str(FOLDER / name)
    cmd = [sys.executable, script] if torch_available else [sys.executable, "-c", WITHOUT_TORCH, script]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    r = subprocess.run([*cmd, "--url", service_url], capture_output=True, text=True, timeout=240,
                       env={**env, "PYTHONDONTWRITEBYTECODE": "1"}, cwd=PACKAGE_ROOT.parent)
    output = r.stdout + r.stderr
    assert r.returncode == 0, output
    checks = [line for line in r.stdout.splitlines() if line.startswith("ok:")]
    assert len(checks) >= 4 and "FAILED" not in output, output
    skipped = [line for line in r.stdout.splitlines() if line.startswith("skipped:")]
    if torch_available:
        assert skipped == [] and "PyTorch is not installed" not in output, output
    else:
        assert "PyTorch is not installed" in output and len(skipped) == 1 and "needs PyTorch" in skipped[0], output
