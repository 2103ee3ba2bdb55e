"""Per-tensor norms over the whole f32 range, in the kernels and the reference alike (issue 21).

A tensor whose elements are tiny (squares flush to 0 in f32) or huge (squares overflow) still has a
representable norm; fromax's norms (``*_norm`` outputs of its reductions) get it to f32 rounding,
and the optimizers built on them follow their math where the plain f32 sum of squares would send
them down a zero-norm branch or to inf.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fromax

BACKENDS = ["ffi", "xla"]


def true_norm(x) -> float:
    x = np.asarray(x, np.float64).ravel()
    m = np.max(np.abs(x)) if x.size else 0.0
    return float(m * np.sqrt(np.sum((x / m) ** 2))) if m > 0 and np.isfinite(m) else float(np.sqrt(np.sum(x * x)))


rng = np.random.default_rng(7)
LEAVES = {
    "tiny": np.full((10, 100), 5e-20, np.float32),
    "huge": np.array([1e27, -3e26], np.float32),
    "huge elements": np.full((4,), 1e38, np.float32),
    "tiny and ordinary": np.concatenate([np.full(10, 1e-30), [1.0, -2.0]]).astype(np.float32),
    "huge and ordinary": np.concatenate([np.ones(10), [1e30, -3e29]]).astype(np.float32),
    "small gaussian": (rng.standard_normal(65537) * 1e-25).astype(np.float32),
    "large gaussian": (rng.standard_normal((3, 4, 5, 6)) * 1e25).astype(np.float32),
    "scalar": np.float32(-3e-30),
    "zeros": np.zeros(5, np.float32),
}


@pytest.mark.parametrize("backend", BACKENDS)
def test_per_tensor_norms_over_the_f32_range(backend):
    tree = {k: jnp.asarray(v) for k, v in LEAVES.items()}
    for jit in (False, True):
        f = jax.jit(lambda t: fromax.per_tensor_norms(t, backend=backend)) if jit else (lambda t: fromax.per_tensor_norms(t, backend=backend))
        got = f(tree)
        for k, v in LEAVES.items():
            np.testing.assert_allclose(float(got[k]), true_norm(v), rtol=2e-6, err_msg=f"{k} ({backend}, jit={jit})")  # f32 summation of up to 65,537 terms


@pytest.mark.parametrize("backend", BACKENDS)
def test_bf16_and_f16_leaves_take_f32_range_norms(backend):
    tree = {"bf16": jnp.full((300,), 1e-25, jnp.bfloat16), "f16": jnp.full((7,), 6e-5, jnp.float16)}
    got = fromax.per_tensor_norms(tree, backend=backend)
    for k, v in tree.items():
        np.testing.assert_allclose(float(got[k]), true_norm(np.asarray(v, np.float32)), rtol=5e-7, err_msg=k)


@pytest.mark.parametrize("backend", BACKENDS)
def test_denormal_elements_count_as_zero_in_norms(backend):
    """A tensor of denormals has norm 0 and a denormal beside normal numbers adds nothing, on every
    platform: XLA's CPU threads flush denormals, a GPU keeps them (the CUDA kernels drop them from
    their f64 squares; the emulated CUDA engine keeps denormals as a GPU does). Seen on an H200: the
    kernels' norm 9.18e-41 of a denormal weight turned Fromage's zero-norm step into a 1e-44 one."""
    tree = {"denormal": jnp.full((300,), 9.18355e-41, jnp.float32), "scalar": jnp.asarray(-1e-39, jnp.float32),
            "bf16": jnp.full((5,), 5e-40, jnp.bfloat16), "mixed": jnp.asarray([3.0, 1e-40, 4.0, -1e-39], jnp.float32)}
    got = fromax.per_tensor_norms(tree, backend=backend)
    for k in ("denormal", "scalar", "bf16"):
        assert float(got[k]) == 0.0, (k, float(got[k]))
    np.testing.assert_allclose(float(got["mixed"]), 5.0, rtol=1e-7)


def paper_fromage(w, g, lr):
    """The paper's rule in float64: W - lr |W|/|g| g, over sqrt(1 + lr^2)."""
    w, g = np.asarray(w, np.float64), np.asarray(g, np.float64)
    ratio = true_norm(w) / true_norm(g)
    return (w - lr * ratio * g) / np.sqrt(1 + lr * lr)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("path", ["fused", "contract"])
@pytest.mark.parametrize("scale", [1e-20, 1e25])
def test_fromage_on_tiny_and_huge_weights_follows_the_paper(backend, path, scale):
    """W of 1e-20 with g = 1 used to take the zero-norm branch (W_new = -0.0099995); the paper's rule
    moves W by a relative 1 %. W of 1e25 used to overflow |W|^2."""
    w = jnp.asarray(rng.standard_normal((50, 20)) * scale, jnp.float32)
    g = jnp.asarray(rng.standard_normal((50, 20)), jnp.float32)
    tx = fromax.fromage(0.01, backend=backend)
    state = tx.init({"w": w})
    if path == "fused":
        new, _ = jax.jit(lambda g, s, p: fromax.step(tx, g, s, p))({"w": g}, state, {"w": w})
    else:
        u, _ = jax.jit(tx.update)({"w": g}, state, {"w": w})
        new = optax.apply_updates({"w": w}, u)
    np.testing.assert_allclose(np.asarray(new["w"], np.float64), paper_fromage(w, g, 0.01), rtol=2e-5, atol=1e-6 * scale)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fromage_p_bound_caps_huge_weights(backend):
    """p_bound's cap from norms and <W, g> alone, at a scale where |W|^2 overflows f32. <W, g> is a
    plain f32 sum (its range is |W| |g| < 3.4e38, the documented limit), so g is kept small."""
    w = jnp.asarray(rng.standard_normal(400) * 1e25, jnp.float32)
    g = -w * 1e-15  # grows |W|: the cap applies
    tx = fromax.fromage(0.5, p_bound=1.0, backend=backend)
    state = tx.init({"w": w})
    np.testing.assert_allclose(float(state.init_norms[0]), true_norm(w), rtol=5e-7)
    new, _ = fromax.step(tx, {"w": g}, state, {"w": w})
    np.testing.assert_allclose(true_norm(new["w"]), true_norm(w), rtol=2e-6)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name", ["lamb", "lars"])
def test_trust_ratios_at_the_ends_of_the_range(backend, name):
    """LAMB's and LARS's |p| / |u| where |p|^2 underflows or overflows: the step equals the one on
    rescaled weights, rescaled (the trust ratio is scale-equivariant in p)."""
    make = {"lamb": lambda: fromax.lamb(1e-2, weight_decay=0.0, backend=backend),
            "lars": lambda: fromax.lars(1e-2, weight_decay=0.0, backend=backend)}[name]
    g = {"w": jnp.asarray(rng.standard_normal((30, 30)), jnp.float32)}
    base = jnp.asarray(rng.standard_normal((30, 30)), jnp.float32)
    tx = make()
    ref, _ = fromax.step(tx, g, tx.init({"w": base}), {"w": base})
    for scale in (2.0**-70, 2.0**70):  # powers of two: the rescaled problem is exact in f32
        w = {"w": base * scale}
        new, _ = fromax.step(tx, g, tx.init(w), w)
        np.testing.assert_allclose(np.asarray(new["w"]) / scale, np.asarray(ref["w"]), rtol=2e-6, atol=1e-7, err_msg=f"{name} at {scale}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_dog_on_a_huge_parameter_stays_finite_and_follows_its_rule(backend):
    """DoG on a parameter of 1e27: |x0| used to overflow to inf, the state to inf, the second step to
    NaN. Each of three steps against DoG's rule in float64 from the same point (optax's rule: r0 =
    r_eps (1 + |x0|), eta = max(r0, |x - x0|) / sqrt(sum of |g|^2 + eps)); r_eps = 1e-2 so that a
    step is resolvable in f32 next to 1e27."""
    x0 = np.array([1e27, -2e26, 5e26], np.float32)
    grads = [np.array([1.0, -2.0, 0.5]), np.array([0.5, 1.0, -1.0]), np.array([-1.0, 0.3, 2.0])]
    tx = fromax.dog(init_step=("heuristic", 1e-2), backend=backend)
    params = {"w": jnp.asarray(x0)}
    state = tx.init(params)
    max_dist, sum_sq = 1e-2 * (1 + true_norm(x0)), 0.0
    for t, g in enumerate(grads):
        x = np.asarray(params["w"], np.float64)
        params, state = fromax.step(tx, {"w": jnp.asarray(g, jnp.float32)}, state, params)
        assert np.all(np.isfinite(np.asarray(params["w"]))) and np.isfinite(float(state.max_dist)), f"step {t}"
        max_dist = max(max_dist, true_norm(x - x0.astype(np.float64)))
        sum_sq += true_norm(g) ** 2
        step = -max_dist / np.sqrt(sum_sq + 1e-8) * g
        np.testing.assert_allclose(np.asarray(params["w"], np.float64) - x, step, rtol=1e-4, err_msg=f"step {t}")


@pytest.mark.parametrize("backend", BACKENDS)
def test_clip_by_global_norm_of_huge_gradients(backend):
    """A folded clip_by_global_norm whose global norm's square overflows f32: the clip still scales
    the gradient to max_norm (optax's own clip, which an eager call or tx.update runs, computes inf
    and zeroes it). The chain folds under jit."""
    g = {"a": jnp.full((100,), 1e20, jnp.float32), "b": jnp.full((3,), -1e20, jnp.float32)}
    p = {"a": jnp.ones((100,), jnp.float32), "b": jnp.ones((3,), jnp.float32)}
    tx = optax.chain(optax.clip_by_global_norm(1.0), fromax.adamw(1e-3, backend=backend))
    new, _ = jax.jit(lambda g, s, p: fromax.step(tx, g, s, p))(g, tx.init(p), p)
    # Adam's first step moves every element by lr * sign(g) (to eps): the clip kept the signs.
    np.testing.assert_allclose(np.asarray(new["a"]), 1 - 1e-3, rtol=1e-6)
    np.testing.assert_allclose(np.asarray(new["b"]), 1 + 1e-3, rtol=1e-6)


@pytest.mark.parametrize("dtype", [jnp.bfloat16, jnp.float32])
def test_a_denormal_weight_takes_the_zero_norm_step_in_kernels_and_reference(dtype):
    """Shrunk from tests/test_fuzz.py: Fromage on a scalar weight of 9.18e-41 (denormal) with g = 1
    gave NaN on the reference and the zero-norm step on the kernels; both now take the zero-norm
    step (the denormal counts as 0): W_new = (W - lr g) / sqrt(1 + lr^2)."""
    w, g = {"w": jnp.asarray(9.18355e-41, dtype)}, {"w": jnp.asarray(1.0, dtype)}
    for backend in BACKENDS:
        tx = fromax.fromage(1e-4, backend=backend)
        u, _ = tx.update(g, tx.init(w), w)
        np.testing.assert_allclose(float(u["w"]), -1e-4 / np.sqrt(1 + 1e-8), rtol=2e-3 if dtype == jnp.bfloat16 else 1e-6, err_msg=backend)
