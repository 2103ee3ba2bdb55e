"""Loading the compiled kernels and registering them as XLA FFI targets.

Targets keep one name on every platform (``fromax_fromage``, ``fromax_adamw``, ...), so
the traced program is the same whichever platform compiles it; each platform's library registers its
own handlers under those names. The CPU library is registered at import. The CUDA library is
registered lazily, the first time a step is traced while JAX's default backend is an NVIDIA GPU:
importing fromax never initialises a GPU, and CPU-only installs never load the CUDA library.

With ``FROMAX_EMULATE_CUDA=1`` in the environment at import, the CPU platform gets the CUDA
engine's emulated twin instead (``_fromax_cuda_emulated``: the CUDA kernels and handlers compiled
as host C++, their grids run on CPU threads), so that every step traced on the CPU executes the
CUDA source. A testing switch: it is far slower than the CPU engine.
"""

from __future__ import annotations

import os

import jax

from fromax import _contract

_REGISTERED: dict[str, tuple[str, ...]] = {}  # platform -> registered target names
_LOAD_ERRORS: dict[str, str] = {}


def _register(module, platform: str, xla_platform: str) -> None:
    """Register every handler of a compiled module under its target name for one platform, once
    its compiled functor contract is checked to be this package's (else it raises)."""
    _contract.check_compiled(module, platform)
    targets = module.targets()
    for name, capsule in targets.items():
        jax.ffi.register_ffi_target(name, capsule, platform=xla_platform)
    _REGISTERED[platform] = tuple(targets)


EMULATE_CUDA = os.environ.get("FROMAX_EMULATE_CUDA", "") == "1"


def _register_cpu() -> None:
    try:
        if EMULATE_CUDA:
            from fromax import _fromax_cuda_emulated as module
        else:
            from fromax import _fromax_cpu as module
    except ImportError as err:  # a source tree without a build, or a broken build
        _LOAD_ERRORS["cpu"] = f"{type(err).__name__}: {err}"
        if EMULATE_CUDA:  # a test process asked for the emulation: never run the CPU engine instead
            raise ImportError(f"fromax: FROMAX_EMULATE_CUDA=1 but the emulated CUDA engine did not load ({err})") from err
        return
    _register(module, "cpu", "cpu")


def _register_cuda() -> None:
    """Register the CUDA handlers if the CUDA library was built and JAX has a CUDA backend."""
    if "gpu" in _REGISTERED or "gpu" in _LOAD_ERRORS:
        return
    try:
        jax.devices("cuda")
    except RuntimeError as err:  # a ROCm or other non-CUDA GPU backend
        _LOAD_ERRORS["gpu"] = f"JAX's GPU backend is not CUDA ({err})"
        return
    try:
        from fromax import _fromax_cuda
    except ImportError as err:
        _LOAD_ERRORS["gpu"] = f"fromax was built without its CUDA library ({type(err).__name__}: {err})"
        return
    _register(_fromax_cuda, "gpu", "CUDA")


_register_cpu()


def kernel_platforms() -> tuple[str, ...]:
    """Platforms for which fromax's compiled kernels are registered (e.g. ``("cpu",)``)."""
    return tuple(_REGISTERED)


def has_kernels(platform: str) -> bool:
    return platform in _REGISTERED


def use_kernels(backend: str, targets: tuple[str, ...] = ()) -> bool:
    """Resolve ``backend`` ("auto" | "ffi" | "xla") to: trace the FFI kernels (True) or the reference.

    "auto" uses the kernels when they (and every FFI target in ``targets``) are registered for
    JAX's default platform; "ffi" insists and raises a clear error where they are not.
    """
    if backend == "xla":
        return False
    if backend not in ("auto", "ffi"):
        raise ValueError(f"fromax: backend must be 'auto', 'ffi' or 'xla', got {backend!r}")
    platform = jax.default_backend()
    if platform == "gpu":
        _register_cuda()
    missing = [t for t in targets if t not in _REGISTERED.get(platform, ())]
    if has_kernels(platform) and not missing:
        return True
    if backend == "ffi" and has_kernels(platform):
        raise RuntimeError(
            f"fromax: backend='ffi' but the {platform!r} kernel library lacks {', '.join(missing)}. "
            "Use backend='auto' (falls back to the pure-JAX reference) or backend='xla'."
        )
    if backend == "ffi":
        why = _LOAD_ERRORS.get(platform, "no kernel library was built for it")
        raise RuntimeError(
            f"fromax: backend='ffi' but no fromax kernel is registered for platform {platform!r} "
            f"({why}); registered platforms: {kernel_platforms() or 'none'}. "
            "Use backend='auto' (falls back to the pure-JAX reference) or backend='xla'."
        )
    return False
