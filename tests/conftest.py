import os
import re
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

# tests/multidevice needs 8 virtual CPU devices, which XLA_FLAGS must ask for before jax is imported:
# tests/test_multidevice.py runs it in a subprocess that sets them. Collected directly, it runs only
# when the flag already asks for 8 or more (XLA_FLAGS=--xla_force_host_platform_device_count=8 pytest tests/multidevice).
_devices = re.search(r"xla_force_host_platform_device_count=(\d+)", os.environ.get("XLA_FLAGS", ""))
if not _devices or int(_devices.group(1)) < 8:
    collect_ignore = ["multidevice"]


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled programs after each test module. Every CPU executable holds a few memory
    mappings (its JIT-compiled code) for as long as a cache keeps it, and the whole suite in one
    process compiles tens of thousands of programs: at Linux's default vm.max_map_count (65,530)
    LLVM's compiles start failing ("Cannot allocate memory"), results go wrong and XLA segfaults
    (seen twice in test_stacked.py, near the end of the suite, and only in full runs)."""
    yield
    import jax

    jax.clear_caches()
