"""``fromax.show_config()`` / ``python -m fromax``: what this install is, for bug reports."""

from __future__ import annotations

import importlib.util
import platform
import sys
from importlib import metadata
from typing import TextIO

import jax

from fromax import _ffi


def _version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def package_version() -> str:
    """fromax's version: the installed distribution's (``pyproject.toml`` is the one place it is set)."""
    return _version("fromax")


def _cpu_isa() -> str:
    """The instruction set the CPU engine's element loops run with (FROMAX_CPU_ISA can cap it)."""
    try:
        from fromax import _fromax_cpu
    except ImportError as err:
        return f"no CPU engine ({err})"
    return _fromax_cpu.cpu_isa()


def config() -> dict[str, str]:
    """The facts :func:`show_config` prints, as a dict."""
    cuda_in_install = importlib.util.find_spec("fromax._fromax_cuda") is not None  # found, not loaded
    backend = jax.default_backend()
    if backend == "gpu":  # the CUDA kernels register at the first GPU step: do it now, to report them
        _ffi._register_cuda()
    return {
        "fromax": package_version(),
        "python": f"{sys.version.split()[0]} ({platform.python_implementation()}, {platform.machine()}, {platform.system()})",
        "jax": jax.__version__,
        "jaxlib": _version("jaxlib"),
        "optax": _version("optax"),
        "jax default backend": backend,
        "kernel platforms": ", ".join(_ffi.kernel_platforms()) or "none",
        "kernel load errors": "; ".join(f"{k}: {v}" for k, v in _ffi._LOAD_ERRORS.items()) or "none",
        "cpu isa": _cpu_isa(),
        "cuda engine in install": "yes" if cuda_in_install else "no",
        "cuda emulation (FROMAX_EMULATE_CUDA)": "on" if _ffi.EMULATE_CUDA else "off",
    }


def show_config(file: TextIO | None = None) -> None:
    """Print fromax's version, the Python, jax, jaxlib and optax versions, the platforms fromax's
    kernels are registered for (and why one failed to load), the CPU instruction set the kernels
    use and whether the install has the CUDA engine: the first thing to paste into a bug report.

    Examples
    --------
    >>> import fromax
    >>> fromax.show_config()  # doctest: +SKIP
    fromax: 0.1.0
    ...
    """
    facts = config()
    width = max(map(len, facts))
    for key, value in facts.items():
        print(f"{key + ':':<{width + 1}} {value}", file=file or sys.stdout)
