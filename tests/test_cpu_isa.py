"""The CPU element loops exist once per instruction set (cpp/elementwise.h): each must give the same
bits, so a result never depends on the machine's vector width."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

fromax_cpu = pytest.importorskip("fromax._fromax_cpu")

# A few steps of optimizers whose kernels reduce (lamb, dog, prodigy) and update (all), on f32 and
# bf16 leaves with lengths that leave short last blocks, hashed bit for bit.
SCRIPT = r"""
import hashlib
import jax, jax.numpy as jnp, numpy as np
import fromax
from fromax import _fromax_cpu

rng = np.random.default_rng(0)
shapes = [(300, 70), (1000,), (7,), (65537,)]
params = {f"p{i}": jnp.asarray(rng.standard_normal(s), jnp.bfloat16 if i == 1 else jnp.float32) for i, s in enumerate(shapes)}
digest = hashlib.sha256()
for tx in (fromax.adamw(1e-2), fromax.lamb(1e-2), fromax.dog(), fromax.prodigy()):
    step = jax.jit(lambda g, s, p: fromax.step(tx, g, s, p))
    p, state = params, tx.init(params)
    for k in range(3):
        g = jax.tree.map(lambda x: jnp.sin(x * (k + 1)), p)
        p, state = step(g, state, p)
    for x in jax.tree.leaves((p, state)):
        digest.update(np.asarray(x.astype(jnp.float32)).tobytes())
print(_fromax_cpu.cpu_isa(), digest.hexdigest())
"""


def _run(cap: str | None) -> tuple[str, str]:
    env = dict(os.environ)
    env.pop("FROMAX_CPU_ISA", None)
    if cap is not None:
        env["FROMAX_CPU_ISA"] = cap
    out = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, check=True)
    isa, digest = out.stdout.split()[-2:]
    return isa, digest


def test_every_instruction_set_gives_the_same_bits():
    host_isa, host = _run(None)
    assert host_isa == fromax_cpu.cpu_isa() or "FROMAX_CPU_ISA" in os.environ
    base_isa, base = _run("baseline")
    assert base_isa == "baseline"
    avx2_isa, avx2 = _run("avx2")
    assert avx2_isa in ("baseline", "avx2")  # capped at what the host has
    assert base == avx2 == host, (host_isa, avx2_isa)
