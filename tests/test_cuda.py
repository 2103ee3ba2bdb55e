"""The CUDA engine: lowering and packaging checks that run anywhere, GPU checks where a GPU is present."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fromax
from helpers import assert_trees_close, random_grads, random_tree


def _has_cuda_gpu() -> bool:
    try:
        return bool(jax.devices("cuda"))
    except RuntimeError:
        return False


HAS_GPU = _has_cuda_gpu()
NVCC = shutil.which("nvcc") or ("/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)


@pytest.mark.parametrize("n_leaves", [3, 300])
def test_step_lowers_to_fromax_custom_calls_for_cuda(n_leaves):
    params, grads = random_tree(0, n_leaves, dtypes=(jnp.float32, jnp.bfloat16), shapes=[(4,), (8, 3)])
    for p_bound in (None, 1.0):
        tx = fromax.fromage(p_bound=p_bound)
        state = tx.init(params)
        step = jax.jit(functools.partial(fromax.step, tx), donate_argnums=(2,))
        text = step.trace(grads, state, params).lower(lowering_platforms=("cuda",)).as_text()
        # One call per LEAVES_PER_CALL leaves (fromax._engine.groups).
        per_call = fromax._engine.LEAVES_PER_CALL
        sizes = [min(per_call, n_leaves - start) for start in range(0, n_leaves, per_call)]
        assert re.findall(r"custom_call @(fromax_\w+)", text) == ["fromax_fromage"] * len(sizes)
        # Output 2 + i (after the guard and the per-tensor sums) aliases operand 3 + size + i
        # (parameter leaf i of the call: the operands are the guard twice, the coefficient table,
        # the gradients, the parameters) on CUDA too: in place when donated. Output 0 over
        # operand 0 is the compile guard (operand 0 = operand 1, see _primitives._lower).
        aliased = re.findall(r"output_tuple_indices = \[(\d+)\], operand_index = (\d+)", text)
        expected = [pair for size in sizes for pair in [(0, 0)] + [(2 + k, 3 + size + k) for k in range(size)]]
        assert sorted((int(o), int(i)) for o, i in aliased) == sorted(expected)


def test_vmapped_step_lowers_to_one_batched_cuda_call():
    params, grads = random_tree(1, 40, shapes=[(5,), (3, 7)])
    P = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), params)
    G = jax.tree.map(lambda x: jnp.stack([x, x]), grads)
    tx = fromax.fromage(0.01)
    fn = jax.jit(jax.vmap(lambda g, p: fromax.step(tx, g, tx.init(p), p)))
    text = fn.trace(G, P).lower(lowering_platforms=("cuda",)).as_text()
    # The population is one fused call: segments = 2 per leaf, one coefficient row per member.
    assert re.findall(r"custom_call @(fromax_\w+)", text) == ["fromax_fromage"]


@pytest.mark.skipif(NVCC is None or os.environ.get("FROMAX_CUDA") == "OFF", reason="built without nvcc")
def test_installed_package_contains_the_cuda_library():
    from fromax import _fromax_cuda

    from fromax import _fromax_cpu

    # Every functor of the elementwise engine (reduce, update and fused), as on the CPU.
    assert set(_fromax_cuda.targets()) == set(_fromax_cpu.targets())
    assert {"fromax_fromage_sums", "fromax_axpby", "fromax_fromage", "fromax_adamw", "fromax_lamb_norms"} <= set(_fromax_cuda.targets())
    assert tuple(_fromax_cuda.ffi_api_version) == (0, 1)
    ldd = subprocess.run(["ldd", _fromax_cuda.__file__], capture_output=True, text=True).stdout
    assert "libcudart" not in ldd  # cudart linked statically


# ---- on a GPU -----------------------------------------------------------------------------------------
gpu = pytest.mark.skipif(not HAS_GPU, reason="no CUDA GPU")


@gpu
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.float16])
@pytest.mark.parametrize("p_bound", [None, 1.0])
def test_gpu_kernel_matches_reference(dtype, p_bound):
    device = jax.devices("cuda")[0]
    params, _ = random_tree(2, 24, dtypes=(dtype,), zero_every=5)
    params = jax.device_put(params, device)
    tx_k, tx_r = fromax.fromage(0.1, p_bound=p_bound, backend="ffi"), fromax.fromage(0.1, p_bound=p_bound, backend="xla")
    step_k, step_r = jax.jit(functools.partial(fromax.step, tx_k)), jax.jit(functools.partial(fromax.step, tx_r))
    state_k, state_r = tx_k.init(params), tx_r.init(params)
    rtol = 1e-5 if dtype == jnp.float32 else 2**-7
    for t in range(10):
        grads = jax.device_put(random_grads(t, params), device)
        (new_k, state_k), (new_r, state_r) = step_k(grads, state_k, params), step_r(grads, state_r, params)
        assert_trees_close(new_k, new_r, rtol=rtol, atol_rel=rtol / 4, err=f"step {t}")
        params = new_r
    text = step_k.lower(grads, state_k, params).compile().as_text()
    assert text.count('custom_call_target="fromax_fromage"') == 1


@gpu
def test_gpu_reductions_are_deterministic_and_accurate():
    device = jax.devices("cuda")[0]
    tree = jax.device_put({"big": jnp.asarray(np.random.default_rng(0).standard_normal(3_000_001), jnp.float32),
                           "small": jnp.arange(5.0), "empty": jnp.zeros((0,))}, device)
    first = fromax.per_tensor_norms(tree, backend="ffi")
    for _ in range(3):
        again = fromax.per_tensor_norms(tree, backend="ffi")
        assert all(float(first[k]) == float(again[k]) for k in tree)
    for k, x in tree.items():
        np.testing.assert_allclose(float(first[k]), np.linalg.norm(np.asarray(x, np.float64)), rtol=1e-6)


@gpu
def test_gpu_donated_step_is_in_place():
    device = jax.devices("cuda")[0]
    params, grads = (jax.device_put(t, device) for t in random_tree(3, 10, shapes=[(1000,), (33, 65)]))
    tx = fromax.fromage()
    step = jax.jit(functools.partial(fromax.step, tx), donate_argnums=(2,))
    before = [x.unsafe_buffer_pointer() for x in jax.tree.leaves(params)]
    new, _ = step(grads, tx.init(params), params)
    assert [x.unsafe_buffer_pointer() for x in jax.tree.leaves(new)] == before


@gpu
@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16])
@pytest.mark.parametrize("name", ["adamw", "lamb", "lars", "novograd", "dog", "prodigy", "dadapt_adamw", "cocob",
                                  "mechanize", "momo_adam", "schedule_free_adamw", "auto_hypergradient_adamw"])
def test_gpu_family_matches_reference(name, dtype):
    """The elementwise engine's CUDA targets (the CPU functors compiled for the device), fused step
    against the pure-JAX reference on the same GPU, over 5 steps."""
    from family_cases import CASES

    make, _, needs_value = CASES[name]
    device = jax.devices("cuda")[0]
    params, _ = random_tree(4, 12, dtypes=(dtype,), shapes=[(70_000,), (33, 65), (7,)])
    params = jax.device_put(params, device)
    extra = {"value": jnp.float32(2.0)} if needs_value else {}
    tx_k, tx_r = make("ffi"), make("xla")
    step_k = jax.jit(lambda g, s, p: fromax.step(tx_k, g, s, p, **extra))
    step_r = jax.jit(lambda g, s, p: fromax.step(tx_r, g, s, p, **extra))
    state_k, state_r = tx_k.init(params), tx_r.init(params)
    rtol = 1e-4 if dtype == jnp.float32 else 2**-6
    for t in range(5):
        grads = jax.device_put(random_grads(t, params), device)
        (new_k, state_k), (new_r, state_r) = step_k(grads, state_k, params), step_r(grads, state_r, params)
        assert_trees_close(new_k, new_r, rtol=rtol, atol_rel=rtol, err=f"{name} step {t}")
        params = new_r
    assert "fromax_" in step_k.lower(grads, state_k, params).compile().as_text()
