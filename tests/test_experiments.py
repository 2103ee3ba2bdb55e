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
    assert EXPERIMENTS == ("depth", "lr-sensitivity", "transformer", "lr-free")


def test_unknown_experiment_is_an_error():
    with pytest.raises(ValueError, match="unknown experiment"):
        run("lr-sensitivity-typo")
