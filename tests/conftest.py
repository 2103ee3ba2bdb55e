import os
import re
import sys

sys.path.insert(0, os.path.dirname(__file__))

# tests/multidevice needs 8 virtual CPU devices, which XLA_FLAGS must ask for before jax is imported:
# tests/test_multidevice.py runs it in a subprocess that sets them. Collected directly, it runs only
# when the flag already asks for 8 or more (XLA_FLAGS=--xla_force_host_platform_device_count=8 pytest tests/multidevice).
_devices = re.search(r"xla_force_host_platform_device_count=(\d+)", os.environ.get("XLA_FLAGS", ""))
if not _devices or int(_devices.group(1)) < 8:
    collect_ignore = ["multidevice"]
