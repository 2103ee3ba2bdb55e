"""Compile time and memory of one jitted step as the leaf count grows, against JAX's own floor.

    python bench/many_leaves.py [--cases fromage,jax_floor,...] [--leaves 4000,10000,20000] [--timeout 900]

n parameter leaves of shape (1,) (the count is what matters here, not the size), gradients as
arguments. Each case and n runs in a fresh subprocess with a wall-clock limit: `jax.jit(...).lower`
then `.compile()`, and the subprocess's peak resident memory (which includes what JAX holds
before compiling). Cases:

- ``jax_floor``: ``jax.tree.map(lambda p, g: p - 0.01 * g, ...)``, one elementwise op per leaf: what
  any step over n leaves costs XLA at least;
- ``jax_floor_adam``: Adam's moments and parameters by three such tree maps, all donated: the
  floor of a step with three donated outputs per leaf;
- ``fromage``, ``adamw``: ``fromax.step`` (the fused step), params and state donated;
- ``optax_fromage``, ``optax_adamw``: optax's ``tx.update`` + ``optax.apply_updates``, params and
  state donated (the optimizers and steps of ``step_time.py --family``);
- ``norms``, ``norms_xla``: ``fromax.per_tensor_norms`` on the kernels and on the reference;
  ``norms_treemap``: ``jax.tree.map(jnp.linalg.norm, ...)``, the plain per-leaf way.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys

ONE = r"""
import resource, sys, time
sys.path.insert(0, {here!r})
import jax, jax.numpy as jnp, fromax
import step_time as st
case, n = {case!r}, {n}
params = [jnp.full((1,), 1.0 + i / n, jnp.float32) for i in range(n)]
grads = [jnp.full((1,), 0.5, jnp.float32) for _ in range(n)]

# Steps take (grads, params, state), the donated arguments in the order of the outputs (see
# step_time.family_step_fn: otherwise XLA copies every state buffer).
def adam_by_tree_maps(g, p, s):
    m = jax.tree.map(lambda m, g: 0.9 * m + 0.1 * g, s[0], g)
    v = jax.tree.map(lambda v, g: 0.999 * v + 0.001 * g * g, s[1], g)
    return jax.tree.map(lambda p, m, v: p - 1e-3 * m / (jnp.sqrt(v) + 1e-8), p, m, v), (m, v)

if case == "jax_floor":
    fn, args, donate = (lambda g, p: jax.tree.map(lambda a, b: a - 0.01 * b, p, g)), (grads, params), (1,)
elif case == "jax_floor_adam":
    zeros = lambda: [jnp.zeros((1,), jnp.float32) for _ in range(n)]
    fn, args, donate = adam_by_tree_maps, (grads, params, (zeros(), zeros())), (1, 2)
elif case in ("fromage", "adamw", "optax_fromage", "optax_adamw"):
    ours, theirs = st.family()[case.removeprefix("optax_")]
    tx = theirs if case.startswith("optax_") else ours
    fn, args, donate = st.family_step_fn(tx, tx is ours), (grads, params, tx.init(params)), (1, 2)
elif case == "norms":
    fn, args, donate = fromax.per_tensor_norms, (params,), ()
elif case == "norms_xla":
    fn, args, donate = (lambda p: fromax.per_tensor_norms(p, backend="xla")), (params,), ()
elif case == "norms_treemap":
    fn, args, donate = (lambda p: jax.tree.map(jnp.linalg.norm, p)), (params,), ()
else:
    raise SystemExit(f"unknown case {{case}}")
t0 = time.perf_counter()
lowered = jax.jit(fn, donate_argnums=donate).lower(*args)
t1 = time.perf_counter()
lowered.compile()
t2 = time.perf_counter()
print(f"{{t1 - t0:.1f}} {{t2 - t1:.1f}} {{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6:.2f}}")
"""

CASES = ("jax_floor", "jax_floor_adam", "fromage", "adamw", "optax_fromage", "optax_adamw", "norms", "norms_xla", "norms_treemap")


def run_one(case: str, n: int, timeout: float) -> str:
    try:
        code = ONE.format(here=os.path.dirname(os.path.abspath(__file__)), case=case, n=n)
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return f"> {timeout:.0f} s"
    if proc.returncode != 0:
        return "failed: " + (proc.stderr.strip().splitlines() or ["?"])[-1][:120]
    lower, compile_s, rss = proc.stdout.split()
    return f"{lower} + {compile_s} s, {rss} GB"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cases", default=",".join(CASES))
    ap.add_argument("--leaves", default="4000,10000,20000")
    ap.add_argument("--timeout", type=float, default=900)
    args = ap.parse_args()
    cases = [c for c in args.cases.split(",") if c]
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        ap.error(f"unknown cases {unknown}; known: {', '.join(CASES)}")
    leaves = [int(n) for n in args.leaves.split(",")]
    print("| case | " + " | ".join(f"{n} leaves: lower + compile, peak memory" for n in leaves) + " |")
    print("|---|" + "---|" * len(leaves))
    for case in cases:
        cells = []
        for n in leaves:
            cells.append(run_one(case, n, args.timeout))
            if cells[-1].startswith(">"):  # a larger n takes longer still
                cells += ["not run"] * (len(leaves) - len(cells))
                break
        print(f"| {case} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
