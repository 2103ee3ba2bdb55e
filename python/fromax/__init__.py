"""fromax: Fromage and learning-rate-free optimizers for JAX on fused multi-tensor XLA FFI kernels."""

from fromax import reference
from fromax._ffi import kernel_platforms
from fromax.adam import AdamWState, adamw, lamb
from fromax.fromage import FromageState, fromage
from fromax.hypergradient import AutoHypergradientAdamWState, HypergradientAdamWState, auto_hypergradient_adamw, hypergradient_adamw
from fromax.layerwise import LarsState, NovogradState, lars, novograd
from fromax.cocob import COCOBState, cocob
from fromax.dadapt import DAdaptAdamWState, ProdigyState, dadapt_adamw, prodigy
from fromax.distance import DoGState, DoWGState, dog, dowg
from fromax.mechanic import MechanicState, mechanize
from fromax.momo import MomoAdamState, MomoState, momo, momo_adam
from fromax.norms import per_tensor_norms
from fromax.schedule_free import ScheduleFreeState, schedule_free, schedule_free_adamw, schedule_free_eval_params, schedule_free_sgd
from fromax._fusion import StepPlan, step_plan
from fromax.step import step
from fromax._stacked import StackedState
from fromax._config import package_version as _package_version, show_config

__version__ = _package_version()  # set in pyproject.toml only

__all__ = [
    "AdamWState", "AutoHypergradientAdamWState", "COCOBState", "DAdaptAdamWState", "DoGState", "DoWGState", "FromageState",
    "HypergradientAdamWState", "LarsState", "MechanicState", "MomoAdamState", "MomoState", "NovogradState", "ProdigyState",
    "ScheduleFreeState", "StackedState", "StepPlan", "adamw", "auto_hypergradient_adamw", "cocob", "dadapt_adamw", "dog", "dowg", "fromage",
    "hypergradient_adamw", "kernel_platforms", "lamb", "lars", "mechanize", "momo", "momo_adam", "novograd",
    "per_tensor_norms", "prodigy", "reference", "schedule_free", "schedule_free_adamw", "schedule_free_eval_params",
    "schedule_free_sgd", "show_config", "step", "step_plan",
]
