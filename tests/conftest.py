import os
import sys

sys.path.insert(0, os.path.dirname(__file__))

# tests/multidevice needs 8 virtual CPU devices, which XLA_FLAGS must ask for before jax is imported:
# tests/test_multidevice.py runs it in a subprocess that sets them. Collected directly, it runs only
# when the flag is already set (XLA_FLAGS=--xla_force_host_platform_device_count=8 pytest tests/multidevice).
if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    collect_ignore = ["multidevice"]
