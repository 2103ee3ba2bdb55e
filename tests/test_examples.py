"""The examples run and do what they say (in small configurations). flax, equinox and brainstate
are test dependencies (pip install '.[test]'), so none of these is skipped."""

import importlib.util
import os

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _load(name):
    # Not under the example's own name: examples/equinox.py must not pass for the equinox package.
    spec = importlib.util.spec_from_file_location(f"fromax_example_{name}", os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_fits():
    first, last = _load("quickstart").main()
    assert last < 0.05 * first


def test_brainstate_facade_example_trains():
    results = _load("brainstate").main(epochs=8)
    for first, last, accuracy, compilations in results.values():
        assert last < 0.3 * first and accuracy > 0.8 and compilations == 1


def test_flax_nnx_example_trains():
    first, last, accuracy = _load("flax_nnx").main(epochs=10)
    assert last < 0.4 * first and accuracy > 0.75


def test_flax_nnx_fused_recipe_equals_the_optimizer_update():
    """examples/flax_nnx.py's fused_update (fromax.step) takes the step nnx.Optimizer.update takes,
    for a fromax optimizer and for a chain ending in one, and counts the step."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import optax
    from flax import nnx

    import fromax

    example = _load("flax_nnx")
    x, y = jnp.ones((8, 64)) * jnp.arange(64) / 64, jnp.arange(8) % 10
    for make in (lambda: fromax.adamw(1e-2), lambda: optax.chain(optax.clip_by_global_norm(0.1), fromax.lamb(1e-2))):
        models = [example.MLP(nnx.Rngs(0)) for _ in range(2)]
        optimizers = [nnx.Optimizer(m, make(), wrt=nnx.Param) for m in models]
        for _ in range(3):
            example.train_step(models[0], optimizers[0], x, y)
            example.fused_train_step(models[1], optimizers[1], x, y)
        for a, b in zip(jax.tree.leaves(nnx.state(models[0], nnx.Param)), jax.tree.leaves(nnx.state(models[1], nnx.Param))):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        assert int(optimizers[1].step[...]) == 3


def test_equinox_example_trains_with_the_fused_step():
    first, last, accuracy = _load("equinox").main(epochs=10)
    assert last < 0.7 * first and accuracy > 0.65


def test_profile_example_finds_fromax_in_the_trace(tmp_path):
    totals = _load("profile").main(str(tmp_path), steps=3)
    fused = [name for name in totals if name.startswith("fromax_fromage")]
    assert fused and all(totals[name] > 0 for name in fused)


def test_stacked_layers_example_trains_as_one_leaf_per_layer():
    """examples/stacked_layers.py: flax NNX (nnx.vmap + nnx.scan) and Equinox (filter_vmap +
    lax.scan) stacked blocks trained with fromage(stacked_axes=...) follow the one-leaf-per-layer
    twin's trajectory; without stacked_axes they do not."""
    for same, plain, first, last in _load("stacked_layers").main(steps=12).values():
        assert same < 1e-6 and plain > 1e-3 and last < first


def test_extreme_norms_example_shows_representable_norms():
    results = _load("extreme_norms").main()
    tiny, huge = results["norm of 1,000 x 5e-20"], results["norm of [1e27, -3e26]"]
    for backend in ("fromax", "fromax xla"):
        assert abs(tiny[backend] / (5e-20 * 1000**0.5) - 1) < 1e-6
        assert abs(huge[backend] / 1.0440306508910550e27 - 1) < 1e-6
    assert tiny["jnp.linalg.norm"] == 0.0 and huge["sqrt(sum(x*x))"] == float("inf")  # what the plain sum loses
    fromage = results["fromage(0.01), W = 1e-20, g = 1: new W"]
    assert abs(fromage["fromax"] / fromage["paper's rule"] - 1) < 1e-5
    dog = results["dog(), x0 = [1e27, -2e26, 5e26], 3 steps"]["fromax"]
    assert all(abs(x / x0 - 1) < 1e-4 for x, x0 in zip(dog, (1e27, -2e26, 5e26)))
