"""fromax._l2: norms exact to rounding over the whole float range, in the reference math."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fromax._l2 import BATCHED_MAX_SIZE, hypot, l2_norm, l2_norms, tensor_sums


def true_norm(x) -> float:
    """The norm in float64 with scaling (exact for any f32 input)."""
    x = np.asarray(x, np.float64).ravel()
    m = np.max(np.abs(x)) if x.size else 0.0
    if m == 0 or not np.isfinite(m):
        return float(np.sqrt(np.sum(x * x)))
    return float(m * np.sqrt(np.sum((x / m) ** 2)))


rng = np.random.default_rng(0)
CASES = {
    "tiny elements (squares underflow)": np.full(1000, 5e-20),
    "one huge element (square overflows)": np.array([1e27]),
    "huge elements": np.full(4, 1e38),
    "tiny beside ordinary": np.concatenate([np.full(10, 1e-30), [1.0, -2.0]]),
    "huge beside ordinary": np.concatenate([np.full(10, 1.0), [1e30, -3e29]]),
    "tiny beside huge": np.array([1e-30, 1e30, -1e-25]),
    "small gaussian, 65537": rng.standard_normal(65537) * 1e-25,
    "gaussian, 65537": rng.standard_normal(65537),
    "large gaussian, (3, 4, 5, 6)": rng.standard_normal((3, 4, 5, 6)) * 1e25,
    "scalar": np.array(-3.0),
    "smallest normal": np.full(3, np.finfo(np.float32).tiny),
}


@pytest.mark.parametrize("name", CASES)
@pytest.mark.parametrize("jit", [False, True])
def test_f32_norm_is_exact_to_rounding_over_the_range(name, jit):
    x = jnp.asarray(CASES[name], jnp.float32)
    got = (jax.jit(l2_norm) if jit else l2_norm)(x)
    assert got.dtype == jnp.float32
    np.testing.assert_allclose(float(got), true_norm(x), rtol=4e-7)
    naive = float(jnp.sqrt(jnp.sum(x * x)))
    if name in ("tiny elements (squares underflow)", "one huge element (square overflows)"):
        assert naive in (0.0, np.inf)  # what the plain formula gives, for contrast


def test_f64_norm_beyond_f64_squares():
    with jax.enable_x64(True):
        for x in (np.full(100, 1e-170), np.array([1e200, -1e200]), rng.standard_normal(999)):
            np.testing.assert_allclose(float(l2_norm(jnp.asarray(x))), true_norm(x), rtol=1e-15)


def test_zero_nan_inf():
    assert float(l2_norm(jnp.zeros(5))) == 0.0
    assert float(l2_norm(jnp.zeros((0,)))) == 0.0
    assert np.isnan(float(l2_norm(jnp.array([1.0, np.nan, 1e30]))))
    assert np.isnan(float(l2_norm(jnp.array([np.inf, np.nan]))))
    assert float(l2_norm(jnp.array([1.0, -np.inf, 1e-30]))) == np.inf
    # a norm above f32's largest is inf, as it must be
    assert float(l2_norm(jnp.full(4, 3e38, jnp.float32))) == np.inf


def test_bf16_input_in_its_f32_accumulator():
    x = jnp.asarray(rng.standard_normal(300) * 1e-22, jnp.bfloat16)
    np.testing.assert_allclose(float(l2_norm(x.astype(jnp.float32))), true_norm(np.asarray(x, np.float32)), rtol=4e-7)


def test_gradient_is_the_unit_vector_and_zero_at_zero():
    for scale in (1e-25, 1.0, 1e25):
        x = jnp.asarray(rng.standard_normal(50) * scale, jnp.float32)
        g = jax.grad(l2_norm)(x)
        np.testing.assert_allclose(np.asarray(g), np.asarray(x, np.float64) / true_norm(x), rtol=2e-6, atol=1e-12)
    np.testing.assert_array_equal(np.asarray(jax.grad(l2_norm)(jnp.zeros(4))), 0.0)


def test_hypot_of_norms():
    n = jnp.array([3e30, 4e30, 0.0], jnp.float32)
    np.testing.assert_allclose(float(hypot(n)), 5e30, rtol=2e-7)
    np.testing.assert_allclose(float(hypot(jnp.array([3e-30, 4e-30]))), 5e-30, rtol=2e-7)
    assert float(hypot(jnp.zeros(3))) == 0.0
    assert float(hypot(jnp.array([1.0, np.inf]))) == np.inf
    assert np.isnan(float(hypot(jnp.array([np.inf, np.nan]))))
    rows = jnp.array([[3.0, 4.0], [0.0, 0.0], [1e-30, 0.0]])
    np.testing.assert_allclose(np.asarray(hypot(rows, axis=1)), [5.0, 0.0, 1e-30], rtol=2e-7)
    g = jax.grad(lambda v: hypot(v))(jnp.zeros(3))
    assert np.all(np.isfinite(np.asarray(g)))


@pytest.mark.parametrize("jit", [False, True])
def test_a_tensor_of_denormals_has_norm_zero_as_in_the_kernels(jit):
    """Found by tests/test_fuzz.py: a weight of one denormal made the reference's norm NaN under jit
    (its scale 2^149 overflowed) or the denormal itself, while the kernels (denormals flushed) give
    0. A tensor whose largest element is denormal now counts as zero, and hypot of such norms too."""
    norm = jax.jit(l2_norm) if jit else l2_norm
    for x in ([9.18355e-41], [-1e-40, 5e-42, 0.0]):
        assert float(norm(jnp.asarray(x, jnp.float32))) == 0.0
        assert float(norm(jnp.asarray(x, jnp.bfloat16).astype(jnp.float32))) == 0.0
    assert float((jax.jit(hypot) if jit else hypot)(jnp.asarray([1e-40, 0.0], jnp.float32))) == 0.0
    assert float(jax.grad(l2_norm)(jnp.asarray([1e-40], jnp.float32))[0]) == 0.0


# ---- many tensors at once: l2_norms and tensor_sums --------------------------------------------------
def mixed_tensors():
    """Every CASE (small ones batched together, large ones alone), plus tensors that straddle the row
    and batching boundaries, a NaN and an inf past a small tensor's first row, and an empty tensor."""
    xs = [np.asarray(x, np.float32) for x in CASES.values()]
    xs += [rng.standard_normal(n).astype(np.float32) * 1e-22 for n in (255, 256, 257, BATCHED_MAX_SIZE, BATCHED_MAX_SIZE + 1)]
    xs += [np.r_[np.ones(300), np.nan], np.r_[np.ones(300), -np.inf], np.zeros((0, 3)), np.zeros(7)]
    return [jnp.asarray(x, jnp.float32) for x in xs]


@pytest.mark.parametrize("jit", [False, True])
def test_norms_together_are_each_tensors_norm(jit):
    xs = mixed_tensors()
    got = np.asarray((jax.jit(l2_norms) if jit else l2_norms)(xs))
    assert got.shape == (len(xs),)
    want = [true_norm(x) for x in xs]
    np.testing.assert_allclose(got, want, rtol=4e-7)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))


def test_sums_together_are_each_tensors_sum():
    xs = [jnp.asarray(rng.standard_normal(n), jnp.float32) for n in (1, 255, 256, 257, 3000, BATCHED_MAX_SIZE + 1)]
    xs += [jnp.float32(2.5), jnp.zeros((0,)), jnp.asarray([1.0, np.nan])]
    want = [np.sum(np.asarray(x, np.float64)) for x in xs]
    np.testing.assert_allclose(np.asarray(tensor_sums(xs)), want, rtol=2e-6, atol=1e-5)


def test_norms_together_derivative_and_vmap():
    xs = [jnp.asarray(rng.standard_normal(s), jnp.float32) for s in ((), (3, 4), (BATCHED_MAX_SIZE + 5,))] + [jnp.zeros(6)]
    grads = jax.grad(lambda xs: jnp.sum(l2_norms(xs)))(xs)
    for x, g in zip(xs, grads):
        assert g.shape == x.shape
        norm = true_norm(x)
        want = np.asarray(x, np.float64) / norm if norm else np.zeros(x.shape)
        np.testing.assert_allclose(np.asarray(g), want, rtol=2e-6, atol=1e-12)
    batch = [jnp.stack([x, 2 * x]) for x in xs]
    np.testing.assert_allclose(np.asarray(jax.vmap(l2_norms)(batch)), [[true_norm(x) * k for x in xs] for k in (1, 2)], rtol=4e-7)


def test_program_size_does_not_grow_with_small_tensors():
    """The reason for batching: per tensor, a scaled norm made XLA compile 2,000 small tensors in
    74 s instead of 8 s. The lowered program's reductions must not grow with their number."""

    def reductions(n):
        xs = [jnp.ones((8, 8), jnp.float32)] * n
        return jax.jit(l2_norms).lower(xs).as_text().count("reduce")

    assert reductions(400) == reductions(40)
