#!/usr/bin/env bash
# The GPU check, for a machine with an NVIDIA GPU and jax[cuda] installed (no network needed):
#   build    install fromax with its CUDA engine: the wheel in $FROMAX_WHEEL if set (built elsewhere,
#            e.g. `pip wheel . -Ccmake.define.FROMAX_CUDA=ON -Ccmake.define.CMAKE_CUDA_ARCHITECTURES=90`),
#            else built here with nvcc against this machine's jax (its FFI headers);
#   config   python -m fromax --check (versions, kernel platforms, CUDA engine; four optimizers'
#            steps on the CUDA kernels against the reference);
#   test_cuda  tests/test_cuda.py (the CUDA engine against the reference on the device);
#   suites   tests/test_extreme_norms.py, test_fromage_numerics.py (less its leaf-count test) and the
#            per_tensor_norms tests with the GPU as jax's default device (tiny, huge and denormal
#            tensors; Fromage's math) on the CUDA kernels;
#   memcheck, racecheck  compute-sanitizer on two fused steps of several optimizers;
#   bandwidth  bench/gpu_bandwidth.py (fused step vs optax and vs the device's copy bandwidth);
#   step_time  bench/step_time.py's fused Fromage step on every preset;
#   profile  bench/gpu_profile.py on gpt2_small: wall and host time of the fused and optax steps, then
#            ncu on one step of each (kernel time, DRAM bytes; CSVs beside the results file).
# GPU_CHECK_PARTS picks parts (default: all, in that order); each part runs under its own time limit
# (seconds, e.g. GPU_CHECK_LIMIT_test_cuda=300) so one slow part cannot eat a short lease. Everything
# goes to one results file (default gpu_check_results.md), written as it goes; the script exits
# non-zero if any part failed or ran out of time.
#
#   [FROMAX_WHEEL=dist/fromax-*.whl] [GPU_CHECK_PARTS="build test_cuda"] bash bench/gpu_check.sh [RESULTS_FILE]
set -uo pipefail
cd "$(dirname "$0")/.."
out=$(realpath -m "${1:-gpu_check_results.md}")
py=${PYTHON:-$(command -v python >/dev/null && echo python || echo python3)}
parts=${GPU_CHECK_PARTS:-build config test_cuda suites memcheck racecheck bandwidth step_time profile}
arch=${CUDA_ARCH:-$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader | head -1 | tr -d '.')}
shapes=""
for f in ../shared/bench/shapes.json shared/bench/shapes.json; do [ -f "$f" ] && shapes="--shapes $f" && break; done
export XLA_PYTHON_CLIENT_PREALLOCATE=false  # the sanitizer and several processes share the device
export PYTHONUNBUFFERED=1
failed=0

run() {  # run NAME DEFAULT_LIMIT COMMAND...: output into the results file, status and time recorded
  local name=$1 limit=$2; shift 2
  case " $parts " in *" $name "*) ;; *) return 0 ;; esac
  local var="GPU_CHECK_LIMIT_$name"; limit=${!var:-$limit}
  printf '\n## %s\n\n```\n' "$name" >> "$out"
  local t0=$SECONDS
  timeout --kill-after=10 "$limit" "$@" >> "$out" 2>&1
  local rc=$?
  [ "$rc" -eq 124 ] && echo "(stopped at its limit of $limit s)" >> "$out"
  printf '```\n%s: exit %d in %d s\n' "$name" "$rc" "$((SECONDS - t0))" >> "$out"
  [ "$rc" -eq 0 ] || failed=1
  echo "$name: exit $rc in $((SECONDS - t0)) s"
}

{
  echo "# fromax GPU check, $(date -u +%Y-%m-%dT%H:%MZ)"
  echo
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader | head -1); sm_$arch"
  echo "$(nvcc --version 2>/dev/null | tail -1); $($py -c 'import jax, jaxlib; print("jax", jax.__version__, "jaxlib", jaxlib.__version__)')"
} > "$out"

if [ -n "${FROMAX_WHEEL:-}" ]; then
  run build 60 $py -m pip install --no-deps --no-index --force-reinstall "$FROMAX_WHEEL"
else
  ffi_include=$($py -c "import importlib.util, os; print(os.path.join(importlib.util.find_spec('jaxlib').submodule_search_locations[0], 'include'))")
  run build 600 $py -m pip install --no-build-isolation --no-deps -v . \
    -Ccmake.define.FROMAX_CUDA=ON -Ccmake.define.FROMAX_CUDA_EMULATION=OFF \
    -Ccmake.define.CMAKE_CUDA_ARCHITECTURES="$arch" -Ccmake.define.FROMAX_FFI_INCLUDE_DIR="$ffi_include"
fi

run config 90 $py -m fromax --check

run test_cuda 300 $py -m pytest -q -p no:cacheprovider --durations=5 tests/test_cuda.py
# (the leaf-count test, 1,200 leaves compiled per case, takes longer than the rest together)
run suites 180 $py -m pytest -q -p no:cacheprovider --durations=5 -k "not leaf_counts and (not test_norms_profiler_build or norms)" \
  tests/test_extreme_norms.py tests/test_fromage_numerics.py tests/test_norms_profiler_build.py

small_steps=$(cat <<'PY'
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
PY
)
run memcheck 120 compute-sanitizer --tool memcheck --error-exitcode 1 $py -c "$small_steps"
run racecheck 120 compute-sanitizer --tool racecheck --error-exitcode 1 $py -c "$small_steps"

# shellcheck disable=SC2086
run bandwidth 180 $py bench/gpu_bandwidth.py $shapes
# shellcheck disable=SC2086
run step_time 180 $py bench/step_time.py $shapes --reps 30

profile=$(cat <<'SH'
set -e
for opt in adamw fromage; do $py bench/gpu_profile.py $shapes --optimizer $opt; done
for impl in fused optax; do
  ncu --profile-from-start off --clock-control none --csv --page raw --log-file "$csv_dir/ncu_adamw_$impl.csv" \
    --metrics gpu__time_duration.sum,dram__bytes_read.sum,dram__bytes_write.sum \
    $py bench/gpu_profile.py $shapes --optimizer adamw --profile-one $impl
  $py bench/gpu_profile.py --summarize "$csv_dir/ncu_adamw_$impl.csv"
done
SH
)
run profile 240 env py="$py" shapes="$shapes" csv_dir="$(dirname "$out")" bash -c "$profile"

echo "results: $out"
exit $failed
