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


def test_equinox_example_trains_with_the_fused_step():
    first, last, accuracy = _load("equinox").main(epochs=10)
    assert last < 0.7 * first and accuracy > 0.65


def test_profile_example_finds_fromax_in_the_trace(tmp_path):
    totals = _load("profile").main(str(tmp_path), steps=3)
    fused = [name for name in totals if name.startswith("fromax_fromage")]
    assert fused and all(totals[name] > 0 for name in fused)
