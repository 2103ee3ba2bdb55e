#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU, nvcc and jax[cuda] installed (no network needed):
#   1. build and install fromax with its CUDA engine against this machine's jax (its FFI headers),
#   2. tests/test_cuda.py (the CUDA engine against the reference on the device),
#   3. compute-sanitizer memcheck and racecheck on small fused steps of several optimizers,
#   4. the fused Fromage step on every preset (bench/step_time.py) and the fused-step bandwidth
#      against the device's copy bandwidth and optax (bench/gpu_bandwidth.py).
# Everything goes to one results file (default gpu_check_results.md); each part's exit status is
# recorded there and the script exits non-zero if any part failed. Budget: under 8 minutes on an
# H100/H200-class GPU (the build is most of it: CMAKE_CUDA_ARCHITECTURES defaults to this GPU's).
#
#   bash bench/gpu_check.sh [RESULTS_FILE]
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-gpu_check_results.md}")
arch=${CUDA_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')}
shapes=""
for f in ../shared/bench/shapes.json shared/bench/shapes.json; do [ -f "$f" ] && shapes="--shapes $f" && break; done
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # the sanitizer and several processes share the device
failed=0

section() { printf '\n## %s\n\n```\n' "$1" >> "$out"; }
run() {  # run NAME COMMAND...: output into the results file, status recorded
  local name=$1; shift
  section "$name"
  local t0=$SECONDS
  "$@" >> "$out" 2>&1
  local rc=$?
  printf '```\n%s: exit %d in %d s\n' "$name" "$rc" "$((SECONDS - t0))" >> "$out"
  [ "$rc" -eq 0 ] || failed=1
  echo "$name: exit $rc in $((SECONDS - t0)) s"
}

{
  echo "# fromax GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1); sm_$arch"
  echo "$(nvcc --version | tail -1); $(python -c 'import jax, jaxlib; print("jax", jax.__version__, "jaxlib", jaxlib.__version__)')"
} > "$out"

ffi_include=$(python -c "import importlib.util, os; print(os.path.join(importlib.util.find_spec('jaxlib').submodule_search_locations[0], 'include'))")
run build python -m pip install --no-build-isolation --no-deps -v . \
  -Ccmake.define.FROMAX_CUDA=ON -Ccmake.define.FROMAX_CUDA_EMULATION=OFF \
  -Ccmake.define.CMAKE_CUDA_ARCHITECTURES="$arch" -Ccmake.define.FROMAX_FFI_INCLUDE_DIR="$ffi_include"

run test_cuda python -m pytest -q -p no:cacheprovider tests/test_cuda.py

small_steps=$(cat <<'EOF'
import jax, jax.numpy as jnp, fromax
assert jax.default_backend() == "gpu"
shapes = [(3, 5), (7,), (), (0,), (70_001,), (256, 64)]
keys = jax.random.split(jax.random.PRNGKey(0), len(shapes))
params = [jax.random.normal(k, s) for k, s in zip(keys, shapes)]
grads = [0.1 * p + 0.01 for p in params]
for tx in [fromax.fromage(), fromax.adamw(1e-3), fromax.lamb(1e-3), fromax.lars(0.1), fromax.novograd(1e-2), fromax.dog()]:
    state = tx.init(params)
    for _ in range(2):
        params, state = jax.jit(lambda g, s, p: fromax.step(tx, g, s, p))(grads, state, params)
    jax.block_until_ready(params)
print("steps done")
EOF
)
run memcheck compute-sanitizer --tool memcheck --error-exitcode 1 python -c "$small_steps"
run racecheck compute-sanitizer --tool racecheck --error-exitcode 1 python -c "$small_steps"

# shellcheck disable=SC2086
run step_time python bench/step_time.py $shapes --reps 30
# shellcheck disable=SC2086
run gpu_bandwidth python bench/gpu_bandwidth.py $shapes

echo "results: $out"
exit $failed
