"""fromax.step on optax chains and wrappers (fromax._fusion, fromax._prologue): the fused, in-place
step where a fromax optimizer ends a chain, its gradient pre-processing folded into the kernels,
the same result as tx.update + optax.apply_updates, and the fallbacks said and correct."""

from __future__ import annotations

import functools
import logging
import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fromax
from helpers import assert_displacements_close, random_grads, random_tree

SHAPES = [(), (7,), (3, 3, 4, 8), (0,), (300, 250)]
STEPS = 3

# name: (the transformations before the optimizer, their names flattened in chain order)
PRE = {
    "clip_by_global_norm": (lambda: [optax.clip_by_global_norm(1.0)], ("clip_by_global_norm",)),
    "clip_by_global_norm_inactive": (lambda: [optax.clip_by_global_norm(1e6)], ("clip_by_global_norm",)),
    "scale": (lambda: [optax.scale(0.5)], ("scale",)),
    "scale_by_schedule": (lambda: [optax.scale_by_schedule(lambda count: 0.5 / (count + 1))], ("scale_by_schedule",)),
    "add_decayed_weights": (lambda: [optax.add_decayed_weights(1e-2)], ("add_decayed_weights",)),
    "add_decayed_weights_schedule": (lambda: [optax.add_decayed_weights(lambda count: 1e-2 * (count + 1))], ("add_decayed_weights",)),
    "clip": (lambda: [optax.clip(0.3)], ("clip",)),
    "all_in_order": (
        lambda: [optax.add_decayed_weights(1e-2), optax.clip(2.0), optax.scale(0.7), optax.clip_by_global_norm(1.0)],
        ("add_decayed_weights", "clip", "scale", "clip_by_global_norm"),
    ),
    "nested": (lambda: [optax.chain(optax.clip(2.0), optax.scale(0.7))], ("clip", "scale")),
    "unfoldable_first": (lambda: [optax.scale_by_rms(), optax.clip_by_global_norm(1.0)], ("scale_by_rms", "clip_by_global_norm")),
    "two_clamps": (lambda: [optax.clip(3.0), optax.scale(2.0), optax.clip(1.0)], ("clip", "scale", "clip")),
}

# Every optimizer of fromax (one configuration each) and what its fused step folds.
CORES = {
    "fromage": (lambda b: fromax.fromage(0.01, backend=b), {"scale", "add", "global_clip"}),
    "adamw": (lambda b: fromax.adamw(1e-2, weight_decay=1e-3, backend=b), {"scale", "add", "clamp", "global_clip"}),
    "lamb": (lambda b: fromax.lamb(1e-2, backend=b), {"scale", "add", "clamp", "global_clip"}),
    "lars": (lambda b: fromax.lars(0.1, backend=b), {"scale", "add", "clamp", "global_clip"}),
    "novograd": (lambda b: fromax.novograd(1e-2, backend=b), {"scale", "add", "clamp", "global_clip"}),
    "dog": (lambda b: fromax.dog(backend=b), {"scale", "add", "clamp", "global_clip"}),
    "dowg": (lambda b: fromax.dowg(backend=b), {"scale", "add", "clamp", "global_clip"}),
    "prodigy": (lambda b: fromax.prodigy(backend=b), {"scale", "add", "clamp", "global_clip"}),
    "cocob": (lambda b: fromax.cocob(backend=b), {"scale", "add", "clamp", "global_clip"}),
    "momo": (lambda b: fromax.momo(backend=b), {"scale", "add", "clamp", "global_clip"}),
    "momo_adam": (lambda b: fromax.momo_adam(backend=b), {"scale", "add", "clamp", "global_clip"}),
    "schedule_free_sgd": (lambda b: fromax.schedule_free_sgd(0.1, backend=b), {"scale", "add", "clamp", "global_clip"}),
    "schedule_free_adamw": (lambda b: fromax.schedule_free_adamw(1e-2, backend=b), {"scale", "add", "clamp", "global_clip"}),
    "dadapt_adamw": (lambda b: fromax.dadapt_adamw(backend=b), set()),
    "mechanize": (lambda b: fromax.mechanize(fromax.adamw(1e-2, backend=b), backend=b), set()),
    "schedule_free": (lambda b: fromax.schedule_free(fromax.adamw(1e-2, backend=b), 1e-2, backend=b), set()),
    "hypergradient_adamw": (lambda b: fromax.hypergradient_adamw(1e-2, backend=b), set()),
    "auto_hypergradient_adamw": (lambda b: fromax.auto_hypergradient_adamw(1e-2, backend=b), set()),
}
KIND = {"clip_by_global_norm": "global_clip", "scale": "scale", "scale_by_schedule": "scale", "add_decayed_weights": "add", "clip": "clamp"}


@functools.lru_cache(maxsize=None)
def problem():
    params, _ = random_tree(11, len(SHAPES), shapes=SHAPES)
    return params, [jax.tree.map(lambda g: g * 5, random_grads(400 + k, params)) for k in range(STEPS)]


def run(tx, fused: bool, donate: bool = False):
    params, grads = problem()

    @functools.partial(jax.jit, donate_argnums=(1, 2) if donate else ())
    def step(g, p, s):
        if fused:
            return fromax.step(tx, g, s, p, value=jnp.float32(1.0))
        u, s = optax.with_extra_args_support(tx).update(g, s, p, value=jnp.float32(1.0))
        return optax.apply_updates(p, u), s

    p, s = jax.tree.map(jnp.copy, params), tx.init(params)
    for g in grads:
        p, s = step(g, p, s)
    return p, s


def expected_folds(pre_name: str, folds: set) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(folded, unfolded) element names: the longest run of foldable elements just before the
    optimizer, with at most one clip (by value)."""
    names = PRE[pre_name][1]
    first, clamps = len(names), 0
    while first > 0:
        kind = KIND.get(names[first - 1])
        if kind is None or kind not in folds or (kind == "clamp" and clamps):
            break
        clamps += kind == "clamp"
        first -= 1
    return tuple(names[first:]), tuple(names[:first])


# Every chain on the optimizers whose folding differs (the prologue of the kernels: AdamW; of the
# sums: Fromage; NovoGrad's own gradient norms); on the others (each with its own functors), a
# chain of every foldable kind and a plain global-norm clip.
GRID = [(c, p) for c in CORES for p in (PRE if c in ("adamw", "fromage", "novograd") else ("all_in_order", "clip_by_global_norm"))]


@pytest.mark.parametrize(("core", "pre"), GRID)
def test_fused_chain_equals_the_optax_contract(core, pre):
    make, folds = CORES[core]
    tx = optax.chain(*PRE[pre][0](), make("ffi"))
    plan = fromax.step_plan(tx)
    assert plan.fused
    assert (plan.folded, plan.unfolded) == expected_folds(pre, folds)
    params, _ = problem()
    fused, s_fused = run(tx, True)
    want, s_want = run(tx, False)
    assert_displacements_close(fused, want, params, rtol=1e-4)
    assert jax.tree.structure(s_fused) == jax.tree.structure(s_want)
    # The folded reference math (backend="xla") agrees with the kernels too.
    xla, _ = run(optax.chain(*PRE[pre][0](), make("xla")), True)
    assert_displacements_close(fused, xla, params, rtol=1e-4)


@pytest.mark.parametrize("core", ["adamw", "lamb"])
def test_fused_chain_equals_optax_own_chain(core):
    ours = {"adamw": fromax.adamw(1e-2, weight_decay=1e-3), "lamb": fromax.lamb(1e-2)}[core]
    theirs = {"adamw": optax.adamw(1e-2, weight_decay=1e-3), "lamb": optax.lamb(1e-2)}[core]
    params, _ = problem()
    for pre in ("clip_by_global_norm", "all_in_order"):
        fused, _ = run(optax.chain(*PRE[pre][0](), ours), True)
        want, _ = run(optax.chain(*PRE[pre][0](), theirs), False)
        assert_displacements_close(fused, want, params, rtol=1e-4)


def _param_sized_loops(hlo: str) -> list[str]:
    """XLA loops (fusions) or copies writing a tensor of the (300, 250) leaf's shape."""
    return re.findall(r"= f32\[(300,250)\]\{[^}]*\} (?:copy|fusion)\(", hlo)


@pytest.mark.parametrize("core", ["adamw", "lamb", "fromage", "dog"])
def test_folded_chain_step_is_kernels_only_and_in_place(core):
    """A chain(clip_by_global_norm, X) step, params and state donated: every pass over a tensor is a
    fromax kernel (no XLA loop computes the clipped gradient), written in place (no copy)."""
    make, _ = CORES[core]
    tx = optax.chain(optax.clip_by_global_norm(1.0), make("ffi"))
    params, grads = problem()
    step = jax.jit(lambda g, p, s: fromax.step(tx, g, s, p), donate_argnums=(1, 2))
    hlo = step.lower(grads[0], params, tx.init(params)).compile().as_text()
    assert _param_sized_loops(hlo) == []
    calls = re.findall(r'custom_call_target="(fromax_\w+)"', hlo)
    assert calls and all(c.endswith("_pre") or c in ("fromax_norm", "fromax_fromage_sums", "fromax_axpby", "fromax_grad_norm") for c in calls), calls


@pytest.mark.parametrize("n_leaves", [3, 60])
def test_chain_custom_calls_do_not_grow_with_the_leaves(n_leaves):
    params, grads = random_tree(8, n_leaves, shapes=[(3, 4), (5,), (2, 2, 2)])
    counts = []
    for tx in (optax.chain(optax.clip_by_global_norm(1.0), fromax.adamw(1e-3)), optax.chain(optax.clip(1.0), optax.scale(0.5), fromax.lamb(1e-3))):
        hlo = jax.jit(lambda g, s, p: fromax.step(tx, g, s, p)).lower(grads, tx.init(params), params).as_text()
        counts.append(len(re.findall(r"stablehlo.custom_call @fromax_|custom_call_target = \"fromax_", hlo)))
    assert counts == [2, 2]


def test_clip_by_global_norm_propagates_nan_as_optax():
    params, grads = problem()
    bad = jax.tree.map(lambda g: g, grads[0])
    bad["leaf0004"] = bad["leaf0004"].at[0, 0].set(jnp.nan)
    ours = optax.chain(optax.clip_by_global_norm(1.0), fromax.adamw(1e-2))
    theirs = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-2))
    new, _ = jax.jit(lambda g, s, p: fromax.step(ours, g, s, p))(bad, ours.init(params), params)
    u, _ = theirs.update(bad, theirs.init(params), params)
    want = optax.apply_updates(params, u)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(want)):
        np.testing.assert_array_equal(np.isnan(a), np.isnan(b))


def test_inject_hyperparams_is_fused():
    """The fused update kernel writes the params (in place: no copy), no XLA loop adds an
    increment; a chain under inject_hyperparams is fused too, its clip run by optax (one loop)."""
    params, grads = problem()
    for tx, loops in ((optax.inject_hyperparams(fromax.adamw)(learning_rate=1e-2), 0),
                      (optax.inject_hyperparams(lambda learning_rate: optax.chain(optax.clip(1.0), fromax.lamb(learning_rate)))(learning_rate=1e-2), 1)):
        step = jax.jit(lambda g, p, s: fromax.step(tx, g, s, p), donate_argnums=(1, 2))
        hlo = step.lower(grads[0], params, tx.init(params)).compile().as_text()
        assert len(_param_sized_loops(hlo)) == loops and not re.search(r"= f32\[300,250\]\{[^}]*\} copy\(", hlo)
        update = re.compile(r'custom_call_target="fromax_(adamw|lamb)"')  # LAMB's is its fused call
        assert "output_to_operand_aliasing" in next(line for line in hlo.splitlines() if update.search(line))
        fused, _ = run(tx, True)
        want, _ = run(tx, False)
        assert_displacements_close(fused, want, params, rtol=1e-4)


@pytest.mark.parametrize("wrap", ["element_after", "apply_if_finite", "multi_steps", "optax_only"])
def test_fallbacks_are_said_and_equal_the_contract(wrap, caplog):
    tx = {
        "element_after": lambda: optax.chain(fromax.adamw(1e-2), optax.scale(0.5)),
        "apply_if_finite": lambda: optax.apply_if_finite(fromax.adamw(1e-2), max_consecutive_errors=2),
        "multi_steps": lambda: optax.MultiSteps(fromax.adamw(1e-2), every_k_schedule=2),
        "optax_only": lambda: optax.chain(optax.clip(1.0), optax.adam(1e-2)),
    }[wrap]()
    assert not fromax.step_plan(tx).fused
    params, _ = problem()
    with caplog.at_level(logging.DEBUG, logger="fromax"):
        fused, _ = run(tx, True)
    assert any("optax.apply_updates" in r.getMessage() for r in caplog.records)
    want, _ = run(tx, False)
    assert_displacements_close(fused, want, params, rtol=1e-6)


def test_step_plan_reads_like_the_docs():
    assert fromax.step_plan(fromax.fromage()) == fromax.StepPlan(True, how="a fromax optimizer")
    assert fromax.step_plan(optax.inject_hyperparams(fromax.adamw)(learning_rate=1e-3)).fused
    plan = fromax.step_plan(optax.chain(optax.scale_by_rms(), optax.clip_by_global_norm(1.0), fromax.adamw(1e-3)))
    assert (plan.fused, plan.folded, plan.unfolded) == (True, ("clip_by_global_norm",), ("scale_by_rms",))
    assert not fromax.step_plan(optax.adam(1e-3)).fused
