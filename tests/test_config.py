"""What a user pastes into a bug report (``fromax.show_config()``, ``python -m fromax``), the one
place the version is set, and that ``import fromax`` needs only the runtime dependencies."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tomllib
from importlib import metadata

import jax

import fromax

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The extras' packages: none may be needed by (or imported with) the optimizers.
OPTIONAL = ("flax", "equinox", "brainstate", "braintools", "sklearn", "matplotlib", "pytest")


def test_version_comes_from_pyproject():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        declared = tomllib.load(f)["project"]["version"]
    assert fromax.__version__ == declared == metadata.version("fromax")


def test_show_config_prints_versions_platforms_and_isa():
    out = io.StringIO()
    fromax.show_config(file=out)
    lines = dict(line.split(":", 1) for line in out.getvalue().splitlines())
    facts = {k: v.strip() for k, v in lines.items()}
    assert facts["fromax"] == fromax.__version__
    assert facts["jax"] == jax.__version__ and facts["jaxlib"] == metadata.version("jaxlib")
    assert facts["kernel platforms"] == ", ".join(fromax.kernel_platforms())
    assert facts["cpu isa"] in ("baseline", "avx2", "avx512")
    assert facts["cuda engine in install"] in ("yes", "no")


def test_python_dash_m_fromax_prints_the_config():
    run = subprocess.run([sys.executable, "-m", "fromax"], capture_output=True, text=True, check=True)
    assert "fromax:" in run.stdout and fromax.__version__ in run.stdout and "kernel platforms:" in run.stdout


BLOCK_OPTIONAL = """
import sys, importlib.abc
OPTIONAL = {optional!r}
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in OPTIONAL:
            raise ImportError(f"{{name}} is not installed (blocked by the test)")
sys.meta_path.insert(0, Block())
import jax.numpy as jnp, optax, fromax
params = {{"w": jnp.ones((3, 2))}}
for tx in (fromax.fromage(), fromax.adamw(1e-3), fromax.lamb(1e-3), fromax.dog()):
    state = tx.init(params)
    new, state = fromax.step(tx, {{"w": jnp.full((3, 2), 0.5)}}, state, params)
    assert bool(jnp.all(jnp.isfinite(new["w"])))
fromax.show_config()
loaded = sorted(m for m in sys.modules if m.split(".")[0] in OPTIONAL)
assert not loaded, loaded
print("ok")
"""


def test_import_needs_only_the_runtime_dependencies():
    """With every optional package made unimportable, ``import fromax`` and a step of four
    optimizers work, and none of the extras' packages is imported."""
    code = BLOCK_OPTIONAL.format(optional=OPTIONAL)
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert run.returncode == 0 and run.stdout.strip().endswith("ok"), run.stdout[-2000:] + run.stderr[-2000:]


def test_python_dash_m_fromax_check_runs_the_kernels_against_the_reference():
    run = subprocess.run([sys.executable, "-m", "fromax", "--check"], capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stdout + run.stderr
    checked = [line for line in run.stdout.splitlines() if line.startswith("ok   ")]
    assert [line.split(":")[0][5:] for line in checked] == ["fromage", "adamw", "lamb", "dog"], run.stdout
    assert all("cpu kernels called" in line for line in checked)


def test_self_check_fails_on_a_difference(monkeypatch):
    """The check compares for real: with a tolerance below the rounding differences it fails."""
    from fromax import _selfcheck

    monkeypatch.setattr(_selfcheck, "RTOL", {k: 1e-12 for k in _selfcheck.RTOL})
    out = io.StringIO()
    assert not _selfcheck.check(file=out)
    assert "FAIL" in out.getvalue()
