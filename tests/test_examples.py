"""The examples run and do what they say."""

import importlib.util
import os

EXAMPLES = os.path.join(os.path.dirname(__file__), "..", "examples")


def _load(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(EXAMPLES, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quickstart_fits():
    first, last = _load("quickstart").main()
    assert last < 0.05 * first


def test_brainstate_facade_example_trains():
    import pytest

    pytest.importorskip("brainstate")
    results = _load("brainstate").main(epochs=8)
    for first, last, accuracy, compilations in results.values():
        assert last < 0.3 * first and accuracy > 0.8 and compilations == 1
