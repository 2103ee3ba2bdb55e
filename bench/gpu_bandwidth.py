"""Fused-step bandwidth and speed-up over optax on the default device (meant for an NVIDIA GPU).

    python bench/gpu_bandwidth.py [--presets gpt2_small,many_small] [--optimizers adamw,fromage,lamb] [--reps 50]

For each preset and optimizer: the fused `fromax.step` and optax's update + apply_updates, both
jitted with params and state donated and timed in turn (`interleaved_ms`, medians); the fused step's
effective bandwidth, bytes it must move at least over its time, as a fraction of the device's copy
bandwidth measured in the same run (a donated x * 0.5 over 256 MiB: read and write, 8 bytes an
element); and the ratio optax / fromax. Bytes per f32 parameter: AdamW reads p, g, m, v and writes
p, m, v (28); LAMB the same plus a second read of p, g, m, v for its norms pass (44, its two-pass
floor when the tensor is larger than cache); Fromage reads W and g for its sums, then W and g again
and writes W (20). Prints one markdown table; the timing method is step_time.py's.
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import jax.numpy as jnp
import optax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import step_time as st  # noqa: E402

import fromax  # noqa: E402

OPTIMIZERS = {
    "adamw": (lambda: fromax.adamw(1e-3), lambda: optax.adamw(1e-3), 28),
    "lamb": (lambda: fromax.lamb(1e-3), lambda: optax.lamb(1e-3), 44),
    "fromage": (lambda: fromax.fromage(), lambda: optax.fromage(0.01), 20),
}


def compiled_steps(name: str, params, grads) -> dict:
    """{"fused": (compiled, state), "optax": (compiled, state)}: OPTIMIZERS[name]'s fused step and
    optax's update + apply_updates, jitted standalone with params and state donated."""
    make_ours, make_theirs, _ = OPTIMIZERS[name]
    out = {}
    for label, tx, fused in (("fused", make_ours(), True), ("optax", make_theirs(), False)):
        state = tx.init(params)
        out[label] = (st.compile_step(st.family_step_fn(tx, fused), params, state, grads, donate=True), state)
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=st.DEFAULT_SHAPES)
    ap.add_argument("--presets", default="gpt2_small,many_small")
    ap.add_argument("--optimizers", default="adamw,fromage,lamb")
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args(argv)
    presets = st.load_presets(args.shapes)
    copy_gbps = st.streaming_gbps()
    print(f"device: {jax.devices()[0].device_kind}; copy bandwidth {copy_gbps:.0f} GB/s; jax {jax.__version__}\n")
    print("| preset | optimizer | fused ms | optax ms | optax / fused | fused GB/s | fraction of copy |")
    print("|---|---|---|---|---|---|---|")
    for preset in args.presets.split(","):
        params = st.make_tree(presets[preset], 0)
        grads = st.make_tree(presets[preset], 1)
        n = sum(x.size for x in jax.tree.leaves(params))
        for name in args.optimizers.split(","):
            bytes_per_param = OPTIMIZERS[name][2]
            runs = {label: st.standalone_run(compiled, params, state, grads, donate=True)
                    for label, (compiled, state) in compiled_steps(name, params, grads).items()}
            ms = st.interleaved_ms(runs, args.reps)
            gbps = bytes_per_param * n / (ms["fused"] * 1e-3) / 1e9
            print(f"| {preset} | {name} | {ms['fused']:.3f} | {ms['optax']:.3f} | {ms['optax'] / ms['fused']:.2f}x "
                  f"| {gbps:.0f} | {gbps / copy_gbps:.2f} |", flush=True)
            del runs
        jax.clear_caches()


if __name__ == "__main__":
    main()
