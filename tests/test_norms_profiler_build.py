"""per_tensor_norms, the profiler trace, the f64 path and the built extension."""

from __future__ import annotations

import functools
import glob
import gzip
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fromax
from helpers import random_tree


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
def test_per_tensor_norms_match_float64(dtype):
    tree, _ = random_tree(0, 12, dtypes=(dtype,), zero_every=5)
    for backend in ("ffi", "xla"):
        norms = fromax.per_tensor_norms(tree, backend=backend)
        for k, x in tree.items():
            exact = np.linalg.norm(np.asarray(x, np.float64).ravel())
            assert norms[k].dtype == jnp.float32
            np.testing.assert_allclose(float(norms[k]), exact, rtol=2e-6, err_msg=f"{backend} {k}")
    assert fromax.per_tensor_norms({}) == {}


@pytest.mark.parametrize("n_leaves", [200, 300])
def test_per_tensor_norms_one_call_per_256_leaves(n_leaves):
    tree, _ = random_tree(0, n_leaves, dtypes=(jnp.float32, jnp.float16), shapes=[(3,), (5, 5)])
    text = jax.jit(fromax.per_tensor_norms).lower(tree).as_text()
    calls = -(-n_leaves // fromax._engine.LEAVES_PER_CALL)
    assert text.count("@fromax_norm") == calls or text.count('"fromax_norm"') == calls


def test_per_tensor_norms_returns_its_leaves_without_slicing():
    """The norms reach their 0-d results through one engine call per 256 leaves (an axpby of ones),
    not a slice per leaf: XLA's CPU backend compiles each slice as a kernel of its own (~8 ms
    each: 58 s for 4,000 leaves). Counted in the optimized program, which is what XLA compiles."""
    tree, _ = random_tree(1, 300, shapes=[(3,), (5, 5)])
    compiled = jax.jit(functools.partial(fromax.per_tensor_norms, backend="ffi")).lower(tree).compile().as_text()
    assert compiled.count(" slice(") < 5, "per-leaf slices are back in per_tensor_norms' program"
    reference = jax.jit(functools.partial(fromax.per_tensor_norms, backend="xla")).lower(tree).compile().as_text()
    assert reference.count(" slice(") >= 300  # the count above can see them


@pytest.mark.parametrize("jit", [False, True])
def test_per_tensor_norms_keep_nonfinite_and_zero_norms_exactly(jit):
    tree = {"nan": jnp.array([1.0, jnp.nan]), "inf": jnp.array([-jnp.inf, 2.0]), "zero": jnp.zeros((2, 2)),
            "empty": jnp.zeros((0,)), "big": jnp.array([2e38, 2e38]), "half": jnp.array([3.0, 4.0], jnp.float16)}
    fn = functools.partial(fromax.per_tensor_norms, backend="ffi")
    norms = (jax.jit(fn) if jit else fn)(tree)
    assert np.isnan(norms["nan"]) and norms["inf"] == np.inf and norms["zero"] == 0 and norms["empty"] == 0
    assert not np.signbit(norms["zero"])
    np.testing.assert_allclose(float(norms["big"]), 2e38 * np.sqrt(2), rtol=1e-6)
    assert norms["half"].dtype == jnp.float32 and float(norms["half"]) == 5.0


def test_profiler_trace_names_the_fromax_op(tmp_path):
    params, grads = random_tree(3, 6)
    tx = fromax.fromage()
    step = jax.jit(functools.partial(fromax.step, tx))
    state = tx.init(params)
    jax.block_until_ready(step(grads, state, params))  # compile outside the trace
    with jax.profiler.trace(str(tmp_path), create_perfetto_trace=True):
        jax.block_until_ready(step(grads, state, params))
    (trace_file,) = glob.glob(str(tmp_path / "**" / "perfetto_trace.json.gz"), recursive=True)
    events = json.load(gzip.open(trace_file))
    events = events["traceEvents"] if isinstance(events, dict) else events
    names = {e.get("name") for e in events}
    assert any(n and n.startswith("fromax_fromage") for n in names), sorted(n for n in names if n)[:50]


def test_extension_built_against_ffi_api_0_1():
    from fromax import _fromax_cpu

    assert tuple(_fromax_cpu.ffi_api_version) == (0, 1)  # jaxlib 0.8.0's headers: loads on 0.8 .. 0.11
    assert "cpu" in fromax.kernel_platforms()


def test_float64_path_in_x64_mode():
    """f64 leaves accumulate in f64 and match the paper's math to f64 precision (x64 needs a fresh process)."""
    code = textwrap.dedent(
        """
        import jax, jax.numpy as jnp, numpy as np, fromax, functools, sys
        sys.path.insert(0, %r)
        from helpers import paper_fromage_np, random_tree
        params, grads = random_tree(1, 12, dtypes=(jnp.float64, jnp.float32), zero_every=5)
        for p_bound in (None, 1.0):
            tx = fromax.fromage(0.1, p_bound=p_bound, backend="ffi")
            text = jax.jit(functools.partial(fromax.step, tx)).lower(grads, tx.init(params), params).compile().as_text()
            assert text.count('custom_call_target="fromax_fromage"') == 2, text  # one per accumulator group
            new, _ = fromax.step(tx, grads, tx.init(params), params)
            for k in params:
                w = np.asarray(params[k], np.float64)
                exp = paper_fromage_np(w, np.asarray(grads[k], np.float64), 0.1, p_bound, np.linalg.norm(w))
                rtol = 1e-12 if params[k].dtype == jnp.float64 else 1e-5
                scale = np.max(np.abs(exp), initial=0)
                np.testing.assert_allclose(np.asarray(new[k], np.float64), exp, rtol=rtol, atol=rtol * scale, err_msg=k)
                assert new[k].dtype == params[k].dtype
        print("f64 ok")
        """
        % os.path.dirname(__file__)
    )
    env = dict(os.environ, JAX_ENABLE_X64="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "f64 ok" in out.stdout
