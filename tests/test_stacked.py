"""``stacked_axes``: a leaf of stacked layers behaves exactly like the separate layers, for every
optimizer with per-tensor quantities, both backends, the optax contract and the fused step, with
stacked axes leading, not leading, and several per leaf."""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fromax

L, E, D = 3, 2, 4
RUNS = [(backend, fused) for backend in ("xla", "ffi") for fused in (False, True)]
RUN_IDS = [f"{b}-{'fused' if f else 'contract'}" for b, f in RUNS]


def _all_leaves(params):
    return jax.tree.map(lambda _: True, params)


# Each optimizer with a per-tensor quantity, with the hyperparameters that reach one (masks as
# pytrees and callables, p_bound's initial norms, weight decay).
OPTIMIZERS = {
    "fromage": lambda b, **kw: fromax.fromage(0.1, backend=b, **kw),
    "fromage_p_bound_min_norm": lambda b, **kw: fromax.fromage(0.05, min_norm=1e-3, p_bound=1.5, backend=b, **kw),
    "lars": lambda b, **kw: fromax.lars(0.3, weight_decay=1e-2, weight_decay_mask=_all_leaves, trust_coefficient=0.01, backend=b, **kw),
    "lamb": lambda b, **kw: fromax.lamb(3e-2, weight_decay=0.1, mask=_all_leaves, backend=b, **kw),
    "novograd": lambda b, **kw: fromax.novograd(3e-2, weight_decay=1e-3, backend=b, **kw),
}


def _stacked_params():
    k = jax.random.split(jax.random.PRNGKey(0), 5)
    return {
        "blocks": {"w": jax.random.normal(k[0], (L, D, D)), "b": 0.1 * jax.random.normal(k[1], (L, D))},
        "late": jax.random.normal(k[2], (D, 2, L)),  # stacked on its last axis
        "experts": jax.random.normal(k[3], (L, E, D)),  # stacked on (layers, experts)
        "head": jax.random.normal(k[4], (D, 2)),  # not stacked
    }


AXES = {"blocks": 0, "late": 2, "experts": (0, 1), "head": None}


def _unstacked(t):
    """The same numbers as separate leaves: one per layer (and expert)."""
    return {
        "blocks": [{"w": t["blocks"]["w"][i], "b": t["blocks"]["b"][i]} for i in range(L)],
        "late": [t["late"][:, :, i] for i in range(L)],
        "experts": [[t["experts"][i, e] for e in range(E)] for i in range(L)],
        "head": t["head"],
    }


def _grads(i, params):
    return jax.tree.map(lambda x: jnp.cos(3.0 * x * (i + 1)) + 0.1 * i, params)


def _train(tx, params, run, steps=3, *, stacked=True):
    state = tx.init(params)
    for i in range(steps):
        g = _grads(i, params) if stacked else _unstacked(_grads(i, _restack(params)))
        if run[1]:
            params, state = fromax.step(tx, g, state, params)
        else:
            u, state = tx.update(g, state, params)
            params = optax.apply_updates(params, u)
    return params


def _restack(u):
    return {
        "blocks": {"w": jnp.stack([b["w"] for b in u["blocks"]]), "b": jnp.stack([b["b"] for b in u["blocks"]])},
        "late": jnp.stack(u["late"], axis=2),
        "experts": jnp.stack([jnp.stack(e) for e in u["experts"]]),
        "head": u["head"],
    }


@pytest.mark.parametrize("run", RUNS, ids=RUN_IDS)
@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_stacked_leaves_behave_as_separate_layers(name, run):
    """Three steps on the stacked model equal three steps on the model with one leaf per layer (and
    per expert), slice by slice; without stacked_axes they do not (the norms span the stack)."""
    make = OPTIMIZERS[name]
    params = _stacked_params()
    got = _train(make(run[0], stacked_axes=AXES), params, run)
    want = _restack(_train(make(run[0]), _unstacked(params), run, stacked=False))
    for path, g, w in zip(jax.tree_util.tree_flatten_with_path(got)[0], jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(g, w, rtol=2e-6, atol=2e-6 * float(jnp.max(jnp.abs(w))), err_msg=f"{name} {jax.tree_util.keystr(path[0])}")
    plain = _train(make(run[0]), params, run)
    assert not np.allclose(plain["blocks"]["w"], want["blocks"]["w"], rtol=1e-4), "the stacked axis should matter"


def _by_path(path, leaf):
    name = jax.tree_util.keystr(path)
    return {"['late']": -1, "['experts']": (0, -2)}.get(name, 0 if "blocks" in name else None)


@pytest.mark.parametrize(
    "spec",
    [
        AXES,
        {"blocks": 0, "late": (-1,), "experts": (1, 0), "head": None},  # negative and unsorted axes
        {"blocks": {"w": 0, "b": 0}, "late": 2, "experts": (0, 1), "head": ()},  # a deeper prefix; () = none
        _by_path,  # a callable (key path, leaf) -> axes
    ],
    ids=["prefix", "negative-unsorted", "deeper-prefix", "callable"],
)
def test_every_spelling_of_the_axes_is_the_same(spec):
    params = _stacked_params()
    want = _train(fromax.lamb(3e-2, stacked_axes=AXES), params, ("ffi", True))
    got = _train(fromax.lamb(3e-2, stacked_axes=spec), params, ("ffi", True))
    for g, w in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_array_equal(g, w)


def test_one_int_stacks_every_leaf():
    params = {"a": jnp.arange(1.0, 7.0).reshape(3, 2), "b": jnp.ones((3, 4))}
    got = _train(fromax.fromage(0.1, stacked_axes=0), params, ("ffi", True), steps=1, stacked=True)
    tx = fromax.fromage(0.1)
    for name in ("a", "b"):
        for i in range(3):
            one = {"x": params[name][i]}
            want, _ = fromax.step(tx, {"x": _grads(0, params)[name][i]}, tx.init(one), one)
            np.testing.assert_allclose(got[name][i], want["x"], rtol=2e-6)


def test_calls_per_step_and_no_copies_when_stacked_axes_lead():
    """A jitted, donated fused step: one kernel call per group of leaves (unstacked, and each
    distinct stack), whatever the leaves and slices, and no transpose when the stacked axes lead."""
    params = {"blocks": {"w": jnp.ones((L, 8, 8)), "b": jnp.ones((L, 8))}, "head": jnp.ones((8, 3)), "emb": jnp.ones((5, 8))}
    for spec, groups, transposes in (({"blocks": 0, "head": None, "emb": None}, 2, 0), ({"blocks": {"w": 2, "b": 1}, "head": None, "emb": None}, 3, None)):
        tx = fromax.lamb(1e-3, stacked_axes=spec)
        state = tx.init(params)
        hlo = jax.jit(lambda g, p, s, tx=tx: fromax.step(tx, g, s, p), donate_argnums=(1, 2)).lower(params, params, state).compile().as_text()
        assert len(re.findall(r'custom_call_target="fromax_lamb"', hlo)) == groups, spec
        if transposes is not None:
            assert " transpose(" not in hlo
            big = [line for line in hlo.splitlines() if " copy(" in line and not re.search(r"= f32\[1\]", line)]
            assert not big, big


def test_under_inject_hyperparams_and_in_a_chain():
    """A tuple survives optax.inject_hyperparams (an int would become an array: refused, saying so);
    a chain with clipping runs the stacked fused step after the clip, as its optax contract does."""
    params = _stacked_params()
    injected = optax.inject_hyperparams(fromax.fromage)(learning_rate=0.1, stacked_axes=AXES)
    want = _train(fromax.fromage(0.1, stacked_axes=AXES), params, ("ffi", True))
    got = _train(injected, params, ("ffi", True))
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
        np.testing.assert_allclose(a, b, rtol=1e-6)
    chain = optax.chain(optax.clip_by_global_norm(1.0), fromax.lamb(3e-2, stacked_axes=AXES))
    assert fromax.step_plan(chain).fused
    fused, contract = _train(chain, params, ("ffi", True)), _train(chain, params, ("ffi", False))
    for a, b in zip(jax.tree.leaves(fused), jax.tree.leaves(contract)):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_gradients_through_a_stacked_step_are_the_separate_layers():
    """jax.grad through the step (the kernels' derivative rule is the reference's): the stacked and the
    separate-layer models give the same gradient with respect to the initial params."""
    params = _stacked_params()
    for backend in ("xla", "ffi"):
        stacked_tx, plain_tx = fromax.lamb(0.1, stacked_axes=AXES, backend=backend), fromax.lamb(0.1, backend=backend)

        def loss(p, tx, split):
            q = _unstacked(p) if split else p
            new, _ = fromax.step(tx, jax.tree.map(jnp.sin, q), tx.init(q), q)
            return sum(jnp.sum(x**2) for x in jax.tree.leaves(new))

        got, want = jax.grad(loss)(params, stacked_tx, False), jax.grad(loss)(params, plain_tx, True)
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(want)):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_state_is_per_group_with_the_stack_leading():
    params = _stacked_params()
    state = fromax.novograd(1e-2, stacked_axes=AXES).init(params)
    assert isinstance(state, fromax.StackedState) and len(state.groups) == 4
    shapes = {tuple(x.shape) for x in jax.tree.leaves(state)}
    assert (L,) in shapes and (L, E) in shapes  # NovoGrad's per-layer moment: one per slice


def test_eager_and_jitted_steps_agree():
    params = _stacked_params()
    tx = fromax.fromage(0.1, stacked_axes=AXES)
    eager = _train(tx, params, ("ffi", True))
    jitted_step = jax.jit(lambda g, s, p: fromax.step(tx, g, s, p))
    p, s = params, tx.init(params)
    for i in range(3):
        p, s = jitted_step(_grads(i, p), s, p)
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(p)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_a_population_of_stacked_models_under_vmap():
    """jax.vmap over models (the engine's segments) of a stacked step: each member is the stacked
    step of its own params."""
    params = _stacked_params()
    population = jax.tree.map(lambda x: jnp.stack([x, 2 * x]), params)
    tx = fromax.fromage(0.1, stacked_axes=AXES)
    step = jax.vmap(lambda g, s, p: fromax.step(tx, g, s, p))
    new, _ = step(_grads(0, population), jax.vmap(tx.init)(population), population)
    for m in range(2):
        member = jax.tree.map(lambda x, m=m: x[m], population)
        want, _ = fromax.step(tx, _grads(0, member), tx.init(member), member)
        for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(want)):
            np.testing.assert_allclose(a[m], b, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize(
    "build, error, message",
    [
        (lambda: fromax.fromage(stacked_axes="layers"), TypeError, r"fromax\.fromage: stacked_axes must be"),
        (lambda: fromax.lamb(1e-3, stacked_axes={"w": 1.5}), TypeError, r"fromax\.lamb: stacked_axes' leaves must be"),
        (lambda: optax.inject_hyperparams(fromax.lars)(0.1, stacked_axes=0).init({"w": jnp.ones(2)}), TypeError, r"under optax\.inject_hyperparams pass a tuple"),
    ],
)
def test_bad_stacked_axes_are_refused_when_built(build, error, message):
    with pytest.raises(error, match=message):
        build()


@pytest.mark.parametrize(
    "spec, message",
    [
        ({"w": 3, "b": None}, r"fromax\.lars: stacked axis 3 is out of range for leaf \['w'\] of rank 3"),
        ({"w": (0, -3), "b": None}, r"repeats an axis"),
        ({"v": 0}, r"stacked_axes is not a pytree prefix of the params"),
    ],
)
def test_stacked_axes_that_do_not_fit_the_params_name_the_leaf_at_init(spec, message):
    params = {"w": jnp.ones((2, 3, 4)), "b": jnp.ones(4)}
    with pytest.raises(ValueError, match=message):
        fromax.lars(0.1, stacked_axes=spec).init(params)


def test_signature_has_stacked_axes_for_every_per_tensor_optimizer():
    import inspect

    for name in ("fromage", "lars", "lamb", "novograd"):
        p = inspect.signature(getattr(fromax, name)).parameters["stacked_axes"]
        assert p.kind == p.KEYWORD_ONLY and p.default is None


@pytest.mark.parametrize("name", ["Fromage", "Lamb", "Lars", "Novograd"])
def test_facade_classes_take_stacked_axes(name):
    """fromax.optim: the same keyword on brainstate parameters; a stacked ParamState trains as the
    separate layers' States do."""
    import brainstate

    import fromax.optim as optim

    k = jax.random.split(jax.random.PRNGKey(1), 2)
    w, head = jax.random.normal(k[0], (L, D, D)), jax.random.normal(k[1], (D, 2))
    stacked = {"w": brainstate.ParamState(w), "head": brainstate.ParamState(head)}
    separate = {"w": [brainstate.ParamState(w[i]) for i in range(L)], "head": brainstate.ParamState(head)}
    ours = getattr(optim, name)(lr=0.05, stacked_axes={"w": 0, "head": None}).register_trainable_weights(stacked)
    theirs = getattr(optim, name)(lr=0.05).register_trainable_weights(separate)
    assert ours.stacked_axes == {"w": 0, "head": None}
    for i in range(3):
        ours.step({"w": jnp.cos(stacked["w"].value * (i + 1)), "head": jnp.sin(stacked["head"].value)})
        theirs.step({"w": [jnp.cos(s.value * (i + 1)) for s in separate["w"]], "head": jnp.sin(separate["head"].value)})
    np.testing.assert_allclose(stacked["w"].value, jnp.stack([s.value for s in separate["w"]]), rtol=2e-6, atol=1e-7)
    np.testing.assert_allclose(stacked["head"].value, separate["head"].value, rtol=2e-6, atol=1e-7)
