"""The README's main command: `python -m fromax.demo` trains, reports and plots (small configuration)."""

from __future__ import annotations

import re
import subprocess
import sys


def test_demo_trains_reports_and_plots(tmp_path):
    out_png = tmp_path / "curves.png"
    proc = subprocess.run(
        [sys.executable, "-m", "fromax.demo", "--epochs", "6", "--timing-reps", "5", "--out", str(out_png)],
        capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text = proc.stdout
    accuracies = dict(re.findall(r"^\s+(\S+) \(lr=[^)]*\)\s+([\d.]+) %$", text, flags=re.M))
    # Fromage at its default lr learns the task without tuning (chance is 10 %).
    assert float(accuracies["fromax.fromage"]) > 85.0, text
    assert float(accuracies["optax.adam"]) > 85.0, text
    assert re.search(r"fromax fused step\s+[\d.]+ us", text)
    assert re.search(r"optax.fromage\s+[\d.]+ us\s+\([\d.]+x the fused step\)", text)
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
