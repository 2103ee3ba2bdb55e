"""Shared test helpers: random pytrees and an independent float64 NumPy oracle of the paper's math."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np

# Shapes covering every path of the engine: scalars, vectors, 4-D convs, size-0 leaves, and a
# (300, 500) matrix larger than one 64K-element chunk (the chunked, two-phase path).
SHAPES = [(), (1,), (7,), (64,), (3, 3, 4, 8), (0,), (2, 0, 3), (33, 17), (300, 500)]
DTYPES = {"f32": jnp.float32, "bf16": jnp.bfloat16, "f16": jnp.float16}


def random_tree(seed: int, n_leaves: int, dtypes=(jnp.float32,), zero_every: int = 0, shapes=SHAPES):
    """(params, grads): a dict pytree of n_leaves random leaves; every `zero_every`-th leaf has a zero
    parameter and the one after it a zero gradient."""
    rng = np.random.default_rng(seed)
    params, grads = {}, {}
    for i in range(n_leaves):
        shape = shapes[i % len(shapes)]
        dtype = dtypes[i % len(dtypes)]
        p = rng.normal(size=shape) * rng.uniform(0.1, 3.0)
        g = rng.normal(size=shape) * rng.uniform(1e-3, 10.0)
        if zero_every and i % zero_every == 0:
            p = np.zeros(shape)
        if zero_every and i % zero_every == 1:
            g = np.zeros(shape)
        params[f"leaf{i:04d}"] = jnp.asarray(p, dtype)
        grads[f"leaf{i:04d}"] = jnp.asarray(g, dtype)
    return params, grads


def random_grads(seed: int, params):
    """Fresh gradients shaped like params (a new draw per step, as in training)."""
    rng = np.random.default_rng(seed)
    return jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape) * rng.uniform(1e-2, 5.0), p.dtype), params)


def paper_fromage_np(w: np.ndarray, g: np.ndarray, lr: float, p_bound: float | None, w0_norm: float) -> np.ndarray:
    """The paper's per-tensor Fromage step, written out directly in float64 (no shared code with fromax)."""
    w = np.asarray(w, np.float64)
    g = np.asarray(g, np.float64)
    w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(g)
    if w_norm > 0 and g_norm > 0:
        new = w - lr * (w_norm / g_norm) * g
    else:
        new = w - lr * g
    new = new / np.sqrt(1 + lr * lr)
    if p_bound is not None and w0_norm > 0:
        new_norm = np.linalg.norm(new)
        if new_norm > p_bound * w0_norm:
            new = new * (p_bound * w0_norm / new_norm)
    return new


def as_f64(tree):
    return jax.tree.map(lambda x: np.asarray(x, np.float64), tree)


def assert_displacements_close(actual, expected, start, rtol):
    """|(a - x0) - (e - x0)| <= rtol * max|e - x0| + 1e-6 * max|e|, leafwise: the steps taken are
    compared at their own scale (lr-free methods start with tiny steps), plus f32 rounding of x."""
    for path_a, e, x0 in zip(jax.tree_util.tree_flatten_with_path(actual)[0], jax.tree.leaves(expected), jax.tree.leaves(start)):
        path, a = path_a
        a, e, x0 = (np.asarray(x, np.float64) for x in (a, e, x0))
        if not a.size:
            continue
        moved = np.max(np.abs(e - x0))
        np.testing.assert_allclose(a - x0, e - x0, rtol=0, atol=rtol * moved + 1e-6 * np.max(np.abs(e)), err_msg=jax.tree_util.keystr(path))


def assert_trees_close(actual, expected, rtol: float, atol_rel: float = 0.0, err: str = "", scale_tree=None):
    """Leafwise: |a - e| <= rtol * |e| + atol_rel * max|s|, where s is the leaf of `scale_tree`
    (default: of `expected`). An update W_new - W is compared at the scale of W: its rounding error is
    W's, however small the update."""
    a_leaves, a_def = jax.tree_util.tree_flatten_with_path(actual)
    e_leaves = jax.tree.leaves(expected)
    s_leaves = e_leaves if scale_tree is None else jax.tree.leaves(scale_tree)
    assert len(a_leaves) == len(e_leaves) == len(s_leaves)
    for (path, a), e, s in zip(a_leaves, e_leaves, s_leaves):
        a = np.asarray(a, np.float64)
        e = np.asarray(e, np.float64)
        s = np.asarray(s, np.float64)
        assert a.shape == e.shape, (path, a.shape, e.shape)
        scale = float(np.max(np.abs(s))) if s.size else 0.0
        np.testing.assert_allclose(a, e, rtol=rtol, atol=atol_rel * scale, err_msg=f"{err} {jax.tree_util.keystr(path)}")


def assert_trees_close_at_largest_scale(actual, expected, rtol: float = 1e-4, atol_rel: float = 1e-5):
    """Like assert_trees_close, with every leaf's absolute tolerance taken at the scale of the largest
    |value| over the whole tree: a derivative that is tiny through cancellation is compared at the
    scale of the others."""
    largest = max(float(jnp.max(jnp.abs(jnp.asarray(x, jnp.float32)))) for x in jax.tree.leaves(expected))
    assert_trees_close(actual, expected, rtol=rtol, atol_rel=atol_rel, scale_tree=jax.tree.map(lambda _: largest, expected))


# Optimizers built on the engine: name -> factory(learning_rate, backend) -> optax transformation.
# The sharding (tests/multidevice), vmap and autodiff tests run every entry, so an optimizer joins
# them with one line here.
def _engine_optimizers():
    import fromax

    return {
        "fromage": lambda lr, backend: fromax.fromage(lr, backend=backend),
        "fromage_p_bound": lambda lr, backend: fromax.fromage(lr, p_bound=1.0, backend=backend),
        # One of each family shape: elementwise only (adamw), per-tensor sums (lamb), global sums (dog).
        "adamw": lambda lr, backend: fromax.adamw(lr, weight_decay=0.01, backend=backend),
        "lamb": lambda lr, backend: fromax.lamb(lr, weight_decay=0.01, backend=backend),
        "dog": lambda lr, backend: fromax.dog(lr, init_step=("heuristic", 1e-2), backend=backend),
    }


ENGINE_OPTIMIZERS = _engine_optimizers()
# Those whose step reduces (per-tensor or global sums): sharded, they all-reduce partial sums; the
# others are elementwise and need no collective at all.
REDUCING = {"fromage", "fromage_p_bound", "lamb", "dog"}


def passes_in_an_x64_process(test_file: str, selection: str, expected: int) -> None:
    """Run ``selection`` (a ``-k`` expression) of ``test_file`` in a subprocess with x64 on (it must be
    on before JAX starts) and assert that exactly ``expected`` tests passed there."""
    env = dict(os.environ, JAX_ENABLE_X64="1")
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file, "-k", selection],
                         capture_output=True, text=True, env=env, cwd=os.path.dirname(test_file), check=False)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert f"{expected} passed" in run.stdout, run.stdout[-500:]
