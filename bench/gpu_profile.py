"""Where a GPU step's time goes: wall clock, host dispatch, and the kernels one step launches.

    python bench/gpu_profile.py [--preset gpt2_small] [--optimizer adamw]            # timings + HLO facts
    ncu --profile-from-start off --clock-control none --csv --page raw \\
        --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \\
        --log-file K.csv python bench/gpu_profile.py --profile-one fused              # one step's kernels
    python bench/gpu_profile.py --summarize K.csv                                    # their table

Timings (no profiler): for the donated fused `fromax.step` and optax's update + apply_updates
(bench/step_time.py's programs), the median wall time of one call (dispatch to results ready,
alternated), the median time until the call returns to Python (the host's share: XLA's dispatch and,
for fromax, its handlers building the tensor tables), and from the compiled HLO the
parameter-sized copies, the custom calls and the fusions. `--profile-one` warms a step up, then
turns the profiler on (cuProfilerStart) for exactly one call, so `ncu --profile-from-start off`
captures that step's kernels and nothing else; `--summarize` adds up their device time and DRAM
bytes and lists the longest. Kernel time far under the wall time means the step waits on the host
or on gaps between launches; DRAM bytes over the step's floor (bytes per parameter x parameters)
mean extra passes.
"""

from __future__ import annotations

import argparse
import csv
import ctypes
import os
import re
import statistics
import sys
import time

import jax

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gpu_bandwidth as gb  # noqa: E402
import step_time as st  # noqa: E402


def programs(preset: str, optimizer: str, shapes: str):
    presets = st.load_presets(shapes)
    params, grads = st.make_tree(presets[preset], 0), st.make_tree(presets[preset], 1)
    n = sum(x.size for x in jax.tree.leaves(params))
    return params, grads, gb.compiled_steps(optimizer, params, grads), n * gb.OPTIMIZERS[optimizer][2]


def cu_profiler(on: bool) -> None:
    """cuProfilerStart/Stop on JAX's context (XLA uses device 0's primary context)."""
    cuda = ctypes.CDLL("libcuda.so.1")
    ctx, dev = ctypes.c_void_p(), ctypes.c_int()
    for call in (lambda: cuda.cuInit(0), lambda: cuda.cuDeviceGet(ctypes.byref(dev), 0),
                 lambda: cuda.cuDevicePrimaryCtxRetain(ctypes.byref(ctx), dev), lambda: cuda.cuCtxSetCurrent(ctx),
                 lambda: (cuda.cuProfilerStart if on else cuda.cuProfilerStop)()):
        rc = call()
        if rc != 0:
            raise RuntimeError(f"CUDA driver call failed with {rc}")


def timings(params, grads, progs, floor_bytes, reps: int) -> None:
    wall = {k: [] for k in progs}
    host = {k: [] for k in progs}
    for rep in range(reps + 1):
        for label, (compiled, state) in progs.items():
            p, s = st.copy_tree(params), st.copy_tree(state)
            t0 = time.perf_counter()
            out = compiled(grads, p, s)
            t1 = time.perf_counter()
            jax.block_until_ready(out)
            t2 = time.perf_counter()
            if rep:
                host[label].append(t1 - t0)
                wall[label].append(t2 - t0)
    print(f"floor: {floor_bytes / 1e9:.2f} GB to move; at 4.3 TB/s {floor_bytes / 4.3e12 * 1e3:.3f} ms")
    print("| step | wall ms | returned to Python after ms | param-sized copies | custom calls | fusions |")
    print("|---|---|---|---|---|---|")
    for label, (compiled, _) in progs.items():
        hlo = compiled.as_text()
        copies = st.param_sized_copies(hlo, params)
        calls = len(re.findall(r"custom-call\(", hlo))
        fusions = len(re.findall(r"\bfusion\([^\n]*kind=k", hlo))
        print(f"| {label} | {1e3 * statistics.median(wall[label]):.3f} | {1e3 * statistics.median(host[label]):.3f} "
              f"| {copies} | {calls} | {fusions} |", flush=True)


def profile_one(params, grads, progs, label: str) -> None:
    compiled, state = progs[label]
    for _ in range(3):
        jax.block_until_ready(compiled(grads, st.copy_tree(params), st.copy_tree(state)))
    p, s = st.copy_tree(params), st.copy_tree(state)
    cu_profiler(True)
    jax.block_until_ready(compiled(grads, p, s))
    cu_profiler(False)
    print(f"profiled one {label} step")


def summarize(path: str, top: int = 8) -> None:
    with open(path) as f:
        rows = [r for r in csv.reader(f)]
    head = next(i for i, r in enumerate(rows) if "Kernel Name" in r)
    cols = rows[head]
    name, dur = cols.index("Kernel Name"), cols.index("gpu__time_duration.sum")
    rd, wr = cols.index("dram__bytes_read.sum"), cols.index("dram__bytes_write.sum")
    units = rows[head + 1]
    scale = {"ns": 1e-6, "us": 1e-3, "usecond": 1e-3, "nsecond": 1e-6, "ms": 1.0, "msecond": 1.0,
             "byte": 1.0, "Kbyte": 1e3, "Mbyte": 1e6, "Gbyte": 1e9, "KB": 1e3, "MB": 1e6, "GB": 1e9}
    kernels = []
    for r in rows[head + 2:]:
        if len(r) != len(cols) or not r[0].strip().isdigit():
            continue
        num = lambda i: float(r[i].replace(",", "")) * scale.get(units[i], 1.0)  # noqa: E731
        kernels.append((r[name][:70], num(dur), num(rd) + num(wr)))
    total_ms = sum(k[1] for k in kernels)
    total_gb = sum(k[2] for k in kernels) / 1e9
    print(f"{path}: {len(kernels)} kernels, {total_ms:.3f} ms of kernel time, {total_gb:.2f} GB of DRAM traffic"
          f" ({total_gb / max(total_ms, 1e-9):.2f} TB/s while kernels run)")
    for k in sorted(kernels, key=lambda k: -k[1])[:top]:
        print(f"  {k[1]:8.3f} ms  {k[2] / 1e9:6.3f} GB  {k[0]}")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shapes", default=st.DEFAULT_SHAPES)
    ap.add_argument("--preset", default="gpt2_small")
    ap.add_argument("--optimizer", default="adamw", choices=sorted(gb.OPTIMIZERS))
    ap.add_argument("--reps", type=int, default=30)
    ap.add_argument("--profile-one", choices=("fused", "optax"))
    ap.add_argument("--summarize", metavar="NCU_CSV")
    args = ap.parse_args(argv)
    if args.summarize:
        return summarize(args.summarize)
    params, grads, progs, floor_bytes = programs(args.preset, args.optimizer, args.shapes)
    print(f"{args.preset} {args.optimizer} on {jax.devices()[0].device_kind}, jax {jax.__version__}")
    if args.profile_one:
        profile_one(params, grads, progs, args.profile_one)
    else:
        timings(params, grads, progs, floor_bytes, args.reps)


if __name__ == "__main__":
    main()
