"""The paper's experiments (fromax.experiments, `python -m fromax.demo <name>`): each runs, prints
its table, writes its PNG and is reproducible. Tiny configurations here (--small); the full runs and
their results are in the README."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest

from fromax.experiments import EXPERIMENTS, run

PNG = b"\x89PNG\r\n\x1a\n"


def test_depth_small_is_reproducible(tmp_path, capsys):
    first = run("depth", out=str(tmp_path / "a.png"), small=True)
    second = run("depth", out=str(tmp_path / "b.png"), small=True)
    assert first["rows"] == second["rows"]  # fixed seeds: the same numbers
    assert [r[0] for r in first["rows"]] == [2, 4]
    assert all(0.0 <= r[1] <= 1.0 for r in first["rows"])  # Fromage's test accuracy
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG
    assert "| depth | Fromage 0.01 | Adam 1e-3 | Adam best |" in capsys.readouterr().out


def test_lr_sensitivity_small(tmp_path):
    result = run("lr-sensitivity", out=str(tmp_path / "lr.png"), small=True)
    assert set(result["losses"]) == {"Fromage", "Adam", "SGD"}
    assert all(len(v) == len(result["lrs"]) for v in result["losses"].values())
    assert math.isfinite(min(result["losses"]["Fromage"]))
    assert (tmp_path / "lr.png").read_bytes()[:8] == PNG


def test_transformer_small(tmp_path):
    result = run("transformer", out=str(tmp_path / "t.png"), small=True)
    names = set(result["histories"])
    assert {"Fromage 0.01", "Fromage 0.01, p_bound=1", "Prodigy", "DoG", "D-Adapt AdamW", "Mechanic(Adam 1e-3)"} <= names
    assert result["best_adam"].startswith("Adam")
    fromage = result["histories"]["Fromage 0.01"]["val_bpc"]
    assert math.isfinite(fromage[-1]) and fromage[-1] < 8.0  # a uniform guess over bytes is 8 bits
    assert (tmp_path / "t.png").read_bytes()[:8] == PNG


def test_lr_free_small(tmp_path):
    result = run("lr-free", out=str(tmp_path / "f.png"), small=True)
    assert set(result["mlp"]) == set(result["transformer"])
    assert (tmp_path / "f.png").read_bytes()[:8] == PNG


def test_cli_dispatches_experiments(tmp_path):
    out = tmp_path / "d.png"
    proc = subprocess.run([sys.executable, "-m", "fromax.demo", "depth", "--small", "--out", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test accuracy by depth" in proc.stdout and out.read_bytes()[:8] == PNG
    bad = subprocess.run([sys.executable, "-m", "fromax.demo", "nonsense"], capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and "invalid choice" in bad.stderr
    assert EXPERIMENTS == ("depth", "paper-depth", "lr-sensitivity", "transformer", "lr-free")


def test_unknown_experiment_is_an_error():
    with pytest.raises(ValueError, match="unknown experiment"):
        run("lr-sensitivity-typo")


def test_paper_depth_small_is_reproducible(tmp_path, capsys):
    kwargs = dict(small=True, epochs=2, depths=(1, 3))
    first = run("paper-depth", out=str(tmp_path / "a.png"), **kwargs)
    second = run("paper-depth", out=str(tmp_path / "b.png"), **kwargs)
    assert first["results"] == second["results"]  # fixed seeds: the same numbers
    assert set(first["results"]) == {"SGD", "SGD+momentum", "Fromage", "Adam"}
    assert set(first["results"]["Fromage"]) == {0.1, 0.01, 0.001}
    for by_lr in first["results"].values():
        for by_depth in by_lr.values():
            assert set(by_depth) == {1, 3} and all(0.0 <= acc <= 1.0 for acc, _, _ in by_depth.values())
    assert (tmp_path / "a.png").read_bytes()[:8] == PNG
    assert "deepest network trained" in capsys.readouterr().out


def test_paper_depth_model_is_pytorch_initialised_and_stacks_its_layers():
    """Weights and biases uniform in +-1/sqrt(fan_in) (nn.Linear's default); the scanned stack of
    hidden layers computes the same function as the layers applied one by one."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from fromax.experiments import paper_depth as pd

    for width, n_stacked in ((64, 5), (96, 4)):
        params = pd.init_torch_mlp(jax.random.PRNGKey(1), 5, width)
        assert params["hidden"]["w"].shape == (n_stacked, width, width) and ("first" in params) == (width != 64)
        for name, layer in params.items():
            fan_in = layer["w"].shape[-2]
            for leaf in (layer["w"], layer["b"]):
                largest = float(jnp.max(jnp.abs(leaf)))
                assert largest <= 1.0 / np.sqrt(fan_in), (name, largest)
                if leaf.size >= 64:  # uniform, not a narrower law: the largest draw nears the bound
                    assert largest > 0.9 / np.sqrt(fan_in), (name, largest)
        x = jax.random.normal(jax.random.PRNGKey(2), (7, 64))
        h = x
        if "first" in params:
            h = jax.nn.relu(h @ params["first"]["w"] + params["first"]["b"])
        for i in range(n_stacked):
            h = jax.nn.relu(h @ params["hidden"]["w"][i] + params["hidden"]["b"][i])
        np.testing.assert_allclose(pd.torch_mlp(params, x), h @ params["out"]["w"] + params["out"]["b"], rtol=1e-5, atol=1e-6)


def test_paper_depth_fromage_follows_the_paper_rule_on_a_pytorch_initialised_mlp():
    """20 steps of the experiment's Fromage (stacked hidden layers, per-layer norms) on a
    PyTorch-initialised depth-4 MLP and real digits batches: each step equals the paper's rule applied
    to every layer (weights and biases, each its own tensor) in float64 (helpers.paper_fromage_np)."""
    import jax
    import numpy as np
    from helpers import paper_fromage_np

    from fromax.experiments import _common as c
    from fromax.experiments import paper_depth as pd

    train, _ = pd.split(0)
    params = pd.init_torch_mlp(jax.random.PRNGKey(0), 4, 64)
    lr = 0.01
    tx = pd.OPTIMIZERS["Fromage"][2](lr)
    state = tx.init(params)
    loss = lambda p, x, y: c.cross_entropy(pd.torch_mlp(p, x), y)  # noqa: E731
    step = jax.jit(lambda p, s, g: __import__("fromax").step(tx, g, s, p))
    for i in range(20):
        batch = slice(i * 50 % 1200, i * 50 % 1200 + 250)
        grads = jax.grad(loss)(params, train.x[batch], train.y[batch])
        new, state = step(params, state, grads)
        for name in params:
            for k in ("w", "b"):
                p, g = np.asarray(params[name][k]), np.asarray(grads[name][k])
                want = (np.stack([paper_fromage_np(p[j], g[j], lr, None, 0.0) for j in range(len(p))])
                        if name == "hidden" else paper_fromage_np(p, g, lr, None, 0.0))
                np.testing.assert_allclose(np.asarray(new[name][k]), want, rtol=2e-5, atol=2e-6 * np.abs(want).max(),
                                           err_msg=f"step {i}, {name}.{k}")
        params = new
