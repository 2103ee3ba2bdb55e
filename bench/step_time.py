"""Optimizer step time on real model shapes: fromax vs optax.fromage vs pure JAX.

    python bench/step_time.py [--presets many_small,resnet50,...] [--mode standalone,in-graph]
    python bench/step_time.py --devices 8     # sharded over 8 virtual CPU devices (FSDP layout)
    python bench/step_time.py --family [--optimizers adamw,lamb,...]   # the family vs optax

Runs on whatever JAX's default device is (CPU, or a GPU with fromax's CUDA engine built).

Presets come from ../shared/bench/shapes.json (parameter shapes of real models). Params and grads
are random normal f32 (fixed seed). Every number is a median over --reps timed calls, and every
ratio compares numbers measured in this one run (these machines are noisy).

Two modes (see shared/bench/README.md):
  standalone  jax.jit(step, donate_argnums=params) called once per step, donated params re-created
              outside the timed region: what `fromax.step` costs when called on its own. Includes
              JAX's per-buffer dispatch (~1.4 us per buffer here), which dominates many_small.
  in-graph    --scan steps inside one jitted lax.scan: the step as it runs inside a training step.
              The gradient is computed inside the loop as g = W * x_t + 1e-3 with x_t a per-step
              scalar input, identically for every implementation (fresh each step, so nothing can be
              hoisted out of the loop; a real backward pass also materialises g in memory).

--devices N: the same measurements with every tensor sharded over a 1-D mesh of N devices (virtual
CPU devices unless N real ones exist), FSDP-style: each tensor split along its largest dimension
that N divides, replicated if none does; grads sharded alike, state as init makes it. Every
implementation runs under that same sharding; the table also counts the compiled step's
collectives (fromax: only all-reduces of per-tensor sums; an all-gather would move a tensor).

Rows: fromax fused step (donated), fromax optax contract (update + apply_updates), optax.fromage,
fromax backend="xla" (the pure-JAX reference, donated), plain SGD (p - lr g, donated: the dispatch
floor), and the 2-pass memory floor: 20 bytes per f32 parameter (read W, g twice, write W once)
over the streaming bandwidth of a large donated x*0.5 measured in this run (a device-to-device copy
on a GPU); "fused bw / stream" is the fused step's achieved 2-pass bandwidth as a fraction of it.

--family: every optimizer of the family on every path a user takes, against its optax counterpart,
in each --mode, one row per optimizer, preset and mode, the paths' calls interleaved: fromax's fused
`fromax.step` (params and state donated); fromax's optax contract, `tx.update` + `optax.apply_updates`,
donated and not (standalone); optax's counterpart through the same contract, donated and not.
In-graph: the scan above with the state in the carry, plus a plain SGD floor. In-graph, each run of the scan pays JAX's dispatch of every donated buffer once: with
many tensors (many_small) use --scan 100 or more so that the per-step figure is the step's. The hypergradient optimizers have no optax counterpart: they are timed against optax.adamw
(the step they extend).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import statistics
import sys
import time


def _virtual_devices_from_argv(argv: list[str]) -> None:
    """--devices N asks XLA for N host devices, which must happen before jax is imported."""
    for i, arg in enumerate(argv):
        value = arg.split("=", 1)[1] if arg.startswith("--devices=") else (argv[i + 1] if arg == "--devices" and i + 1 < len(argv) else None)
        if value and int(value) > 1:
            flags = os.environ.get("XLA_FLAGS", "")
            os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={int(value)}".strip()


if __name__ == "__main__":
    _virtual_devices_from_argv(sys.argv[1:])

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec  # noqa: E402

import fromax  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SHAPES = os.path.join(HERE, "..", "..", "shared", "bench", "shapes.json")


def load_presets(path: str) -> dict[str, list[tuple[int, ...]]]:
    with open(path) as f:
        return {name: [tuple(s) for s in shapes] for name, shapes in json.load(f).items()}


def make_tree(shapes, seed):
    rng = np.random.default_rng(seed)
    return {f"p{i:05d}": jnp.asarray(rng.standard_normal(s, dtype=np.float32)) for i, s in enumerate(shapes)}


def sgd():
    """Plain SGD as an optax transformation: the cheapest possible step (the dispatch floor)."""
    return optax.sgd(0.01)


def implementations():
    return {
        "fromax fused step": (fromax.fromage(), True),
        "fromax optax contract": (fromax.fromage(), False),
        "optax.fromage": (optax.fromage(0.01), False),
        "fromax backend=xla": (fromax.fromage(backend="xla"), True),
        "sgd": (sgd(), False),
    }


def step_fn(tx, fused: bool):
    if fused:
        return functools.partial(fromax.step, tx)

    def step(grads, state, params):
        updates, state = tx.update(grads, state, params)
        return optax.apply_updates(params, updates), state

    return step


def median_ms(samples):
    return 1e3 * statistics.median(samples)


def copy_tree(tree):
    return jax.block_until_ready(jax.tree.map(lambda x: x.copy(), tree))


def time_step(step_gps, params, state, grads, reps, donate_state):
    """Median ms of one jitted step ``step_gps(g, p, s) -> (p, s)`` called on its own, and the
    compiled HLO (of the executable that is timed). Params (and the state, if ``donate_state``) are
    donated and re-created outside the timed region; the first call warms up."""
    step = jax.jit(step_gps, donate_argnums=(1, 2) if donate_state else (1,)).lower(grads, params, state).compile()
    samples = []
    for _ in range(reps + 1):
        p, s = copy_tree(params), (copy_tree(state) if donate_state else state)
        t0 = time.perf_counter()
        jax.block_until_ready(step(grads, p, s))
        samples.append(time.perf_counter() - t0)
    return median_ms(samples[1:]), step.as_text()


def time_standalone(tx, fused, params, grads, reps):
    stepf = step_fn(tx, fused)
    return time_step(lambda g, p, s: stepf(g, s, p), params, tx.init(params), grads, reps, donate_state=False)


def scan_loop(step_gps):
    """``train(params, state, xs) -> (params, state)``: one step ``step_gps(g, p, s) -> (p, s)`` per
    element of ``xs`` in a lax.scan, the gradient computed inside the loop, g = W * x_t + 1e-3 (see
    in-graph mode above)."""

    def train(params, state, xs):
        def body(carry, x):
            p, s = carry
            g = jax.tree.map(lambda w: w * x + 1e-3, p)
            return step_gps(g, p, s), None

        return jax.lax.scan(body, (params, state), xs)[0]

    return train


def scan_inputs(scan_steps: int) -> jax.Array:
    """The per-step inputs x_t of scan_loop."""
    return jnp.linspace(0.5, 1.5, scan_steps, dtype=jnp.float32)


def time_scan(step_gps, params, state, scan_steps, reps, donate_state):
    """Median ms per step of scan_steps steps of scan_loop(step_gps) in one jitted call, and the
    compiled HLO. Params (and the state, if ``donate_state``) are donated and re-created outside the
    timed region."""
    xs = scan_inputs(scan_steps)
    run = jax.jit(scan_loop(step_gps), donate_argnums=(0, 1) if donate_state else (0,)).lower(params, state, xs).compile()
    samples = []
    for _ in range(reps + 1):  # the first call warms up
        p, s = copy_tree(params), (copy_tree(state) if donate_state else state)
        t0 = time.perf_counter()
        jax.block_until_ready(run(p, s, xs))
        samples.append((time.perf_counter() - t0) / scan_steps)
    return median_ms(samples[1:]), run.as_text()


def time_in_graph(tx, fused, params, scan_steps, reps):
    stepf = step_fn(tx, fused)
    return time_scan(lambda g, p, s: stepf(g, s, p), params, tx.init(params), scan_steps, reps, donate_state=False)


def param_sized_copies(hlo: str, params) -> int:
    """Number of `copy` instructions in the compiled HLO whose shape is one of the parameter shapes
    with >= 4096 elements (small copies are noise; a parameter-sized one costs a pass)."""
    shapes = {",".join(map(str, x.shape)) for x in jax.tree.leaves(params) if x.size >= 4096}
    found = re.findall(r"= f32\[([\d,]*)\]\{[^}]*\} copy\(", hlo)
    return sum(1 for s in found if s in shapes)


def streaming_gbps(reps: int = 10) -> float:
    """Read+write bandwidth of a donated 256 MiB x * 0.5 (in place)."""
    n = 64 * 1024 * 1024
    f = jax.jit(lambda x: x * 0.5, donate_argnums=0)
    x = jax.block_until_ready(f(jnp.ones(n, jnp.float32)))
    samples = []
    for _ in range(reps):
        t0 = time.perf_counter()
        x = jax.block_until_ready(f(x))
        samples.append(time.perf_counter() - t0)
    return 8 * n / statistics.median(samples) / 1e9


def reps_for(n_params: int, base: int) -> int:
    return max(5, min(base, int(base * 4e6 / max(n_params, 1))))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=DEFAULT_SHAPES)
    ap.add_argument("--presets", default="many_small,resnet50,vit_b16,gpt2_small")
    ap.add_argument("--mode", default="standalone,in-graph")
    ap.add_argument("--reps", type=int, default=30, help="timed calls per measurement (fewer for big presets)")
    ap.add_argument("--scan", type=int, default=10, help="steps per lax.scan in in-graph mode")
    ap.add_argument("--devices", type=int, default=1, help="shard every tensor over this many devices (FSDP layout)")
    ap.add_argument("--family", action="store_true", help="time the optimizer family against optax")
    ap.add_argument("--optimizers", default="", help="with --family: a comma-separated subset")
    args = ap.parse_args(argv)
    if args.family:
        return main_family(args)
    if args.devices > 1:
        return main_sharded(args)

    presets = load_presets(args.shapes)
    gbps = streaming_gbps()
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({os.cpu_count()} host cores); "
          f"kernels: {fromax.kernel_platforms()}; streaming bandwidth {gbps:.1f} GB/s (donated x*0.5, 256 MiB)")
    rows = []
    for preset in args.presets.split(","):
        shapes = presets[preset]
        params, grads = make_tree(shapes, 0), make_tree(shapes, 1)
        n = sum(int(np.prod(s)) for s in shapes)
        floor = 20 * n / (gbps * 1e9) * 1e3
        reps = reps_for(n, args.reps)
        for mode in args.mode.split(","):
            times, copies = {}, {}
            for name, (tx, fused) in implementations().items():
                if mode == "standalone":
                    t, hlo = time_standalone(tx, fused, params, grads, reps)
                else:
                    t, hlo = time_in_graph(tx, fused, params, args.scan, max(3, reps // 3))
                times[name], copies[name] = t, param_sized_copies(hlo, params)
            rows.append((preset, mode, len(shapes), n, times, copies, floor, gbps))
            report(rows[-1])
    print()
    print(markdown(rows))


# ---- --devices N: the same step, every implementation under one FSDP sharding -------------------
def fsdp_spec(shape: tuple[int, ...], devices: int) -> PartitionSpec:
    """Split the largest dimension that `devices` divides (replicate if none does)."""
    dims = [d for d in sorted(range(len(shape)), key=lambda d: -shape[d]) if shape[d] % devices == 0]
    spec = [None] * len(shape)
    if dims:
        spec[dims[0]] = "fsdp"
    return PartitionSpec(*spec)


def collectives(hlo: str) -> str:
    counts = {op: len(re.findall(rf"\b{op}(-start)?\(", hlo)) for op in ("all-reduce", "all-gather", "all-to-all")}
    return " ".join(f"{n} {op}" for op, n in counts.items() if n) or "none"


def main_sharded(args):
    if jax.device_count() < args.devices:
        raise SystemExit(f"--devices {args.devices}: JAX sees {jax.device_count()} devices "
                         "(run this script directly so it can set XLA_FLAGS before importing jax)")
    mesh = jax.make_mesh((args.devices,), ("fsdp",))
    presets = load_presets(args.shapes)
    print(f"jax {jax.__version__}: {args.devices} x {jax.devices()[0].device_kind} devices on {os.cpu_count()} host "
          f"cores; kernels: {fromax.kernel_platforms()}; FSDP mesh {dict(mesh.shape)}")
    names = ["fromax fused step", "fromax optax contract", "optax.fromage", "sgd"]
    rows = []
    for preset in args.presets.split(","):
        shapes = presets[preset]
        place = lambda tree: {k: jax.device_put(v, NamedSharding(mesh, fsdp_spec(v.shape, args.devices)))  # noqa: E731
                              for k, v in tree.items()}
        params, grads = place(make_tree(shapes, 0)), place(make_tree(shapes, 1))
        n = sum(int(np.prod(s)) for s in shapes)
        split = sum(1 for s in shapes if any(x is not None for x in fsdp_spec(s, args.devices)))
        reps = reps_for(n, args.reps)
        for mode in args.mode.split(","):
            times, found = {}, {}
            for name in names:
                tx, fused = implementations()[name]
                if mode == "standalone":
                    t, hlo = time_standalone(tx, fused, params, grads, reps)
                else:
                    t, hlo = time_in_graph(tx, fused, params, args.scan, max(3, reps // 3))
                times[name], found[name] = t, collectives(hlo)
            print(f"\n{preset} [{mode}] on {args.devices} devices: {len(shapes)} tensors ({split} split), {n:,} params")
            for name in names:
                print(f"  {name:24s} {times[name]:9.2f} ms   optax.fromage / this = "
                      f"{times['optax.fromage'] / times[name]:6.2f}x   collectives: {found[name]}")
            rows.append((preset, mode, times, found))
    print()
    print("| preset | mode | fromax fused | fromax optax contract | optax.fromage | SGD | optax.fromage / fused "
          "| fused collectives | optax.fromage collectives |")
    print("|" + "---|" * 9)
    for preset, mode, t, found in rows:
        f = t["fromax fused step"]
        print(f"| {preset} | {mode} | {f:.2f} | {t['fromax optax contract']:.2f} | {t['optax.fromage']:.2f} | "
              f"{t['sgd']:.2f} | {t['optax.fromage'] / f:.1f}x | {found['fromax fused step']} | {found['optax.fromage']} |")


# ---- --family: each optimizer of the family against its optax counterpart ------------------------
def family():
    from optax import contrib

    return {
        "fromage": (fromax.fromage(0.01), optax.fromage(0.01)),
        "adamw": (fromax.adamw(1e-3), optax.adamw(1e-3)),
        "lamb": (fromax.lamb(1e-3), optax.lamb(1e-3)),
        "lars": (fromax.lars(0.1), optax.lars(0.1)),
        "novograd": (fromax.novograd(1e-3), optax.novograd(1e-3)),
        "dog": (fromax.dog(), contrib.dog()),
        "dowg": (fromax.dowg(), contrib.dowg()),
        "prodigy": (fromax.prodigy(), contrib.prodigy()),
        "dadapt_adamw": (fromax.dadapt_adamw(), contrib.dadapt_adamw()),
        "cocob": (fromax.cocob(), contrib.cocob()),
        "mechanize(adamw)": (fromax.mechanize(fromax.adamw(1e-3)), contrib.mechanize(optax.adamw(1e-3))),
        "momo": (fromax.momo(), contrib.momo()),
        "momo_adam": (fromax.momo_adam(), contrib.momo_adam()),
        "schedule_free(adamw)": (fromax.schedule_free(fromax.adamw(1e-3), 1e-3), contrib.schedule_free(optax.adamw(1e-3), 1e-3)),
        "schedule_free_sgd": (fromax.schedule_free_sgd(), contrib.schedule_free_sgd()),
        "schedule_free_adamw": (fromax.schedule_free_adamw(), contrib.schedule_free_adamw()),
        "hypergradient_adamw (vs optax.adamw)": (fromax.hypergradient_adamw(), optax.adamw(1e-3, weight_decay=0.01)),
        "auto_hypergradient_adamw (vs optax.adamw)": (fromax.auto_hypergradient_adamw(track_surprise=True), optax.adamw(1e-3, weight_decay=0.01)),
    }


def family_step_fn(tx, fused):
    """``step(g, p, s) -> (p, s)``: the fused ``fromax.step`` or optax's update + apply_updates.

    The step takes (grads, params, state) and returns (params, state): JAX pairs donated inputs with
    outputs of the same shape in order, so the donated arguments are in the order of the outputs
    (with (grads, state, params) the first moment's buffers would be paired with the new params and
    XLA would copy every state tensor). ``value`` is the loss MoMo needs (ignored by the others)."""
    if fused:
        return lambda g, p, s: fromax.step(tx, g, s, p, value=jnp.float32(1.0))

    def step(g, p, s):
        u, s = optax.with_extra_args_support(tx).update(g, s, p, value=jnp.float32(1.0))
        return optax.apply_updates(p, u), s

    return step


def count_calls(hlo: str) -> int:
    return len(re.findall(r"custom_call_target=\"fromax_", hlo))


def compile_step(step_gps, params, state, grads, donate: bool):
    """A jitted standalone step ``step_gps(g, p, s) -> (p, s)``, compiled; params and state donated
    (in the order of the outputs) or nothing donated."""
    return jax.jit(step_gps, donate_argnums=(1, 2) if donate else ()).lower(grads, params, state).compile()


def compile_scan(step_gps, params, state, scan_steps):
    """scan_loop(step_gps) over ``scan_steps`` steps, compiled; params and state donated."""
    return jax.jit(scan_loop(step_gps), donate_argnums=(0, 1)).lower(params, state, scan_inputs(scan_steps)).compile()


def interleaved_ms(runs: dict, reps: int) -> dict:
    """Median ms of each ``runs[name]() -> seconds``, the runs taken in turn, ``reps`` times after one
    warm-up round: drifts of the machine's speed hit every run alike (these machines are noisy)."""
    samples = {name: [] for name in runs}
    for rep in range(reps + 1):
        for name, run in runs.items():
            seconds = run()
            if rep:
                samples[name].append(seconds)
    return {name: median_ms(v) for name, v in samples.items()}


def standalone_run(compiled, params, state, grads, donate: bool):
    """``() -> seconds`` of one call of a compiled standalone step; donated inputs re-created
    outside the timed region."""

    def run():
        p, s = (copy_tree(params), copy_tree(state)) if donate else (params, state)
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(grads, p, s))
        return time.perf_counter() - t0

    return run


def scan_run(compiled, params, state, scan_steps):
    """``() -> seconds per step`` of one call of a compiled scan (compile_scan)."""
    xs = scan_inputs(scan_steps)

    def run():
        p, s = copy_tree(params), copy_tree(state)
        t0 = time.perf_counter()
        jax.block_until_ready(compiled(p, s, xs))
        return (time.perf_counter() - t0) / scan_steps

    return run


# Family table paths: (column, optimizer "ours" or "theirs", fused step?, donated?).
FAMILY_PATHS = {
    "standalone": [("fused", "ours", True, True), ("contract", "ours", False, True), ("contract undonated", "ours", False, False),
                   ("optax", "theirs", False, True), ("optax undonated", "theirs", False, False)],
    "in-graph": [("fused", "ours", True, True), ("contract", "ours", False, True), ("optax", "theirs", False, True)],
}


def time_family_paths(ours, theirs, mode, params, grads, scan_steps, reps):
    """Median ms of every path of FAMILY_PATHS[mode], measured interleaved, and the compiled HLO of
    fromax's donated paths, ``{"fused": ..., "contract": ...}``."""
    runs, hlo = {}, {}
    for column, who, fused, donate in FAMILY_PATHS[mode]:
        tx = ours if who == "ours" else theirs
        state = tx.init(params)
        if mode == "standalone":
            compiled = compile_step(family_step_fn(tx, fused), params, state, grads, donate)
            runs[column] = standalone_run(compiled, params, state, grads, donate)
        else:
            compiled = compile_scan(family_step_fn(tx, fused), params, state, scan_steps)
            runs[column] = scan_run(compiled, params, state, scan_steps)
        if column in ("fused", "contract"):
            hlo[column] = compiled.as_text()
    return interleaved_ms(runs, reps), hlo


def main_family(args):
    presets = load_presets(args.shapes)
    chosen = [o for o in args.optimizers.split(",") if o]
    modes = args.mode.split(",")
    print(f"jax {jax.__version__} on {jax.devices()[0].device_kind} ({os.cpu_count()} host cores); kernels: {fromax.kernel_platforms()}")
    rows, floors = [], []
    for preset in args.presets.split(","):
        shapes = presets[preset]
        params, grads = make_tree(shapes, 0), make_tree(shapes, 1)
        n = sum(int(np.prod(s)) for s in shapes)
        reps = reps_for(n, args.reps)
        print(f"\n{preset}: {len(shapes)} tensors, {n:,} params")
        if "in-graph" in modes:
            # The floor of in-graph mode: the same loop (gradients computed in it) with p - lr g.
            floor, _ = time_scan(family_step_fn(sgd(), False), params, sgd().init(params), args.scan, max(3, reps // 3), donate_state=True)
            floors.append(f"{preset}: {floor:.2f} ms")
            print(f"  {'sgd (floor: gradient + p - lr g)':42s} in-graph   {floor:9.2f} ms", flush=True)
        for name, (ours, theirs) in family().items():
            if chosen and name.split(" ")[0] not in chosen:
                continue
            for mode in modes:
                t, hlo = time_family_paths(ours, theirs, mode, params, grads, args.scan, reps if mode == "standalone" else max(3, reps // 3))
                calls = count_calls(hlo["fused"])
                copies = {path: param_sized_copies(text, params) for path, text in hlo.items()}
                rows.append((preset, mode, name, t, calls, copies))
                print(f"  {name:42s} {mode:10s} " + "  ".join(f"{k} {v:.2f}" for k, v in t.items()) +
                      f" ms  optax / fused {t['optax'] / t['fused']:.2f}x  contract / fused {t['contract'] / t['fused']:.2f}x  "
                      f"optax / contract {t['optax'] / t['contract']:.2f}x  ({calls} fromax calls; param-sized copies: "
                      f"{copies['fused']} fused, {copies['contract']} contract)", flush=True)
    print()
    if floors:
        print("In-graph floor (the loop with plain SGD): " + ", ".join(floors) + "\n")
    print(family_markdown(rows))


def family_markdown(rows) -> str:
    lines = ["| preset | mode | optimizer | fused | contract | contract undonated | optax | optax undonated | optax / fused "
             "| contract / fused | optax / contract | optax / contract undonated | fused calls | param-sized copies: fused, contract |",
             "|" + "---|" * 14]
    for preset, mode, name, t, calls, copies in rows:
        get = lambda k: f"{t[k]:.2f}" if k in t else "–"  # noqa: E731
        undonated = f"{t['optax undonated'] / t['contract undonated']:.2f}x" if "contract undonated" in t else "–"
        lines.append(f"| {preset} | {mode} | {name} | {get('fused')} | {get('contract')} | {get('contract undonated')} | {get('optax')} | "
                     f"{get('optax undonated')} | {t['optax'] / t['fused']:.2f}x | {t['contract'] / t['fused']:.2f}x | "
                     f"{t['optax'] / t['contract']:.2f}x | {undonated} | {calls} | {copies['fused']}, {copies['contract']} |")
    return "\n".join(lines)


def report(row):
    preset, mode, n_tensors, n, times, copies, floor, gbps = row
    fused_gbps = 20 * n / (times["fromax fused step"] * 1e-3) / 1e9
    print(f"\n{preset} [{mode}]: {n_tensors} tensors, {n:,} params; 2-pass memory floor {floor:.2f} ms; "
          f"fused step moves {fused_gbps:.1f} GB/s = {fused_gbps / gbps:.2f} of the streaming bandwidth")
    base = times["optax.fromage"]
    for name, t in times.items():
        extra = f"  ({copies[name]} param-sized copies in HLO)" if copies[name] else ""
        print(f"  {name:24s} {t:9.2f} ms   optax.fromage / this = {base / t:6.2f}x{extra}")


def markdown(rows) -> str:
    head = ("| preset | mode | fromax fused | fromax optax contract | optax.fromage | fromax xla ref | SGD | 2-pass floor "
            "| optax.fromage / fused | xla ref / fused | fused bw / stream |")
    lines = [head, "|" + "---|" * 11]
    for preset, mode, _, n, t, _, floor, gbps in rows:
        f = t["fromax fused step"]
        fraction = 20 * n / (f * 1e-3) / 1e9 / gbps
        lines.append(
            f"| {preset} | {mode} | {f:.2f} | {t['fromax optax contract']:.2f} | {t['optax.fromage']:.2f} | "
            f"{t['fromax backend=xla']:.2f} | {t['sgd']:.2f} | {floor:.2f} | {t['optax.fromage'] / f:.1f}x | "
            f"{t['fromax backend=xla'] / f:.2f}x | {fraction:.2f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
