"""The fused step of one fromax optimizer on one preset, in-graph and standalone (median ms): for
A/B comparisons of two builds, run alternately from each checkout with its own environment.

    python bench/fused_step.py PRESET OPTIMIZER [REPS]
    for i in 1 2 3; do (cd before && python ../after/bench/fused_step.py resnet50 fromage); \
                       (cd after && python bench/fused_step.py resnet50 fromage); done

It uses the current directory's bench/step_time.py (its presets and timing: see that file), so
each build is timed by its own copy of the method.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.join(os.getcwd(), "bench"))

import fromax  # noqa: E402
import step_time  # noqa: E402

OPTIMIZERS = {
    "fromage": lambda: fromax.fromage(),
    "lamb": lambda: fromax.lamb(1e-3),
    "lars": lambda: fromax.lars(0.1),
    "novograd": lambda: fromax.novograd(1e-2),
    "adamw": lambda: fromax.adamw(1e-3),
}


def main() -> None:
    preset, name = sys.argv[1], sys.argv[2]
    reps = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    shapes = step_time.load_presets(step_time.DEFAULT_SHAPES)[preset]
    params, grads = step_time.make_tree(shapes, 0), step_time.make_tree(shapes, 1)
    tx = OPTIMIZERS[name]()
    in_graph, _ = step_time.time_in_graph(tx, True, params, 10, reps)
    standalone, _ = step_time.time_standalone(tx, True, params, grads, reps)
    print(f"{preset} {name} in-graph {in_graph:.3f} standalone {standalone:.3f} ms")


if __name__ == "__main__":
    main()
