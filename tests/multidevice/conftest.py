import jax


def pytest_configure(config):
    if jax.device_count() < 8:
        raise RuntimeError(
            f"tests/multidevice needs 8 devices, found {jax.device_count()}: run it with "
            "XLA_FLAGS=--xla_force_host_platform_device_count=8 (tests/test_multidevice.py does)"
        )
