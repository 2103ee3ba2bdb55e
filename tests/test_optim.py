"""fromax.optim, the brainstate facade: every optimizer class trains, equals its transformation,
checkpoints bit-exactly; groups, clipping, weight decay and bad input behave as documented."""

from __future__ import annotations

import subprocess
import sys

import brainstate  # a test dependency (pip install '.[test]'): a missing one fails, never skips
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fromax
import fromax.optim as optim
from optim_cases import CASES, flat_params, make_with_lr, run_expected, tree_close


def test_every_braintools_name_is_here():
    assert len(optim.OPTIMIZERS) == 23 and len(optim.SCHEDULERS) == 17
    for name in (*optim.OPTIMIZERS, *optim.FAMILY):
        assert issubclass(getattr(optim, name), optim.OptaxOptimizer)
    assert {n.split("(")[0] for n in CASES} == set(optim.OPTIMIZERS) | set(optim.FAMILY)


# ---- numerics: the facade equals the transformation it documents ------------------------------------
def _states(values: dict) -> dict:
    return {k: brainstate.ParamState(v) for k, v in values.items()}


def _grads_seq(params: dict, steps: int, seed: int = 1) -> list:
    rng = np.random.default_rng(seed)
    return [{k: jnp.asarray(rng.normal(size=v.shape), jnp.float32) for k, v in params.items()} for _ in range(steps)]


def _train(opt, states: dict, grads_seq: list, values: list):
    @brainstate.transform.jit
    def step(g, v):
        opt.step(g, **({} if v is None else {"value": v}))

    for g, v in zip(grads_seq, values):
        step(g, v)


@pytest.mark.parametrize("name", list(CASES))
def test_equals_its_transformation(name):
    case = CASES[name]
    params = flat_params()
    grads_seq = _grads_seq(params, 6)
    values = [jnp.float32(2.0 / (t + 1)) if case.needs_value else None for t in range(6)]
    states = _states(params)
    opt = case.make().register_trainable_weights(states)
    _train(opt, states, grads_seq, values)
    expected = run_expected(case.expected, params, grads_seq, values)
    tree_close({k: s.value for k, s in states.items()}, expected, rtol=2e-5, atol=2e-6)
    moved = max(float(jnp.max(jnp.abs(states[k].value - params[k]))) for k in params)
    assert moved > 1e-4, "the optimizer did not move the parameters"
    assert int(opt.step_count.value) == 6


@pytest.mark.parametrize("name", list(CASES))
def test_state_dict_resumes_bit_exactly(name):
    case = CASES[name]
    params = flat_params(3)
    grads_seq = _grads_seq(params, 6, seed=4)
    values = [jnp.float32(1.0 + t) if case.needs_value else None for t in range(6)]

    states = _states(params)
    opt = case.make().register_trainable_weights(states)
    _train(opt, states, grads_seq[:3], values[:3])
    checkpoint = jax.tree.map(np.asarray, opt.state_dict())
    saved_params = {k: np.asarray(s.value) for k, s in states.items()}
    _train(opt, states, grads_seq[3:], values[3:])
    straight = {k: np.asarray(s.value) for k, s in states.items()}

    resumed_states = _states({k: jnp.asarray(v) for k, v in saved_params.items()})
    resumed = case.make().register_trainable_weights(resumed_states)
    resumed.load_state_dict(checkpoint)
    _train(resumed, resumed_states, grads_seq[3:], values[3:])
    for k in straight:
        np.testing.assert_array_equal(np.asarray(resumed_states[k].value), straight[k])
    assert int(resumed.step_count.value) == 6


# ---- training: a brainstate MLP on scikit-learn's digits --------------------------------------------
class MLP(brainstate.nn.Module):
    def __init__(self, seed: int = 0):
        super().__init__()
        brainstate.random.seed(seed)
        self.l1 = brainstate.nn.Linear(64, 32)
        self.l2 = brainstate.nn.Linear(32, 10)

    def __call__(self, x):
        return self.l2(jax.nn.tanh(self.l1(x)))


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    return jnp.asarray(x[:512] / 16.0, jnp.float32), jnp.asarray(y[:512])


@pytest.mark.parametrize("name", [n for n in CASES if "(" not in n])
def test_trains_a_brainstate_mlp_on_digits(name, digits):
    x, y = digits
    model = MLP()
    params = model.states(brainstate.ParamState)
    opt = make_with_lr(name, CASES[name].lr).register_trainable_weights(params)

    def loss_fn():
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

    @brainstate.transform.jit
    def train_step():
        grads, loss = brainstate.transform.grad(loss_fn, params, return_value=True)()
        opt.step(grads, **({"value": loss} if CASES[name].needs_value else {}))
        return loss

    first = float(train_step())
    for _ in range(40):
        last = float(train_step())
    assert np.isfinite(last) and last < 0.8 * first, (first, last)


# ---- clipping, weight decay, groups -----------------------------------------------------------------
def test_grad_clip_norm_spans_every_group_then_clip_value():
    a, b = brainstate.ParamState(jnp.zeros(3)), brainstate.ParamState(jnp.zeros(2))
    opt = optim.SGD(lr=1.0, grad_clip_norm=1.0, grad_clip_value=0.3).register_trainable_weights({"a": a})
    opt.add_param_group({"b": b}, lr=0.5)
    g = {"a": jnp.asarray([3.0, 0.0, 0.0]), "b": jnp.asarray([0.0, 4.0])}
    opt.step(g)
    # global norm 5 over both groups -> (0.6, 0, 0), (0, 0.8); then clipped to 0.3 element-wise
    np.testing.assert_allclose(a.value, [-0.3, 0, 0], rtol=1e-6)
    np.testing.assert_allclose(b.value, [0, -0.15], rtol=1e-6)


def test_weight_decay_coupled_for_sgd_decoupled_for_adamw():
    w = brainstate.ParamState(jnp.full(2, 2.0))
    optim.SGD(lr=0.1, weight_decay=0.5).register_trainable_weights({"w": w}).step({"w": jnp.ones(2)})
    np.testing.assert_allclose(w.value, 2.0 - 0.1 * (1.0 + 0.5 * 2.0), rtol=1e-6)
    v = brainstate.ParamState(jnp.full(2, 2.0))
    optim.AdamW(lr=0.1, weight_decay=0.5).register_trainable_weights({"v": v}).step({"v": jnp.ones(2)})
    # Adam's first step is sign(g) (up to eps): 2 - 0.1 * (1 + 0.5 * 2)
    np.testing.assert_allclose(v.value, 2.0 - 0.1 * (1.0 + 0.5 * 2.0), rtol=1e-5)


@pytest.mark.parametrize("name, transformation", [
    ("Lamb", lambda lr, wd: optax.lamb(lr, weight_decay=wd)),
    ("Fromage", lambda lr, wd: fromax.fromage(lr, backend="xla")),
    ("Adagrad", lambda lr, wd: optax.chain(optax.add_decayed_weights(wd), optax.scale_by_rss(0.0, eps=1e-10), optax.scale(-lr))),
])
def test_added_group_runs_the_optimizers_own_algorithm(name, transformation):
    params = flat_params(5)
    grads_seq = _grads_seq(params, 4, seed=6)
    a, b = brainstate.ParamState(params["a"]), brainstate.ParamState(params["b"])
    kwargs = {} if name == "Fromage" else {"weight_decay": 0.01}
    opt = getattr(optim, name)(lr=0.01).register_trainable_weights({"a": a})
    opt.add_param_group({"b": b}, lr=0.05, **kwargs)
    _train(opt, {}, grads_seq, [None] * 4)
    exp_a = run_expected(transformation(0.01, 0.0), {"a": params["a"]}, [{"a": g["a"]} for g in grads_seq], [None] * 4)
    exp_b = run_expected(transformation(0.05, 0.01), {"b": params["b"]}, [{"b": g["b"]} for g in grads_seq], [None] * 4)
    tree_close({"a": a.value, "b": b.value}, {**exp_a, **exp_b}, rtol=2e-5, atol=2e-6)
    assert opt.get_last_lr() == pytest.approx([0.01, 0.05])


def test_global_optimizer_reduces_over_all_groups():
    params = flat_params(7)
    grads_seq = _grads_seq(params, 4, seed=8)
    a, b = brainstate.ParamState(params["a"]), brainstate.ParamState(params["b"])
    opt = optim.DoG().register_trainable_weights({"a": a})
    opt.add_param_group({"b": b}, lr=0.5)
    with pytest.raises(ValueError, match="only its own lr"):
        opt.add_param_group({"c": brainstate.ParamState(jnp.ones(2))}, weight_decay=0.1)
    _train(opt, {}, grads_seq, [None] * 4)
    # One DoG over both groups (its distance and gradient sums span them), group b's steps halved.
    tx = fromax.dog(backend="xla")
    p = ({"a": params["a"]}, {"b": params["b"]})
    state = tx.init(p)
    for g in grads_seq:
        upd, state = tx.update(({"a": g["a"]}, {"b": g["b"]}), state, p)
        p = optax.apply_updates(p, (upd[0], jax.tree.map(lambda u: 0.5 * u, upd[1])))
    tree_close({"a": a.value, "b": b.value}, {**p[0], **p[1]}, rtol=2e-5, atol=2e-6)


def test_nested_state_values_and_model_grads():
    model = MLP(1)
    params = model.states(brainstate.ParamState)
    before = jax.tree.map(np.asarray, {k: s.value for k, s in params.items()})
    opt = optim.SGD(lr=0.1).register_trainable_weights(params)
    grads = brainstate.transform.grad(lambda: jnp.sum(model(jnp.ones((2, 64))) ** 2), params)()
    opt.step(grads)
    for k, s in params.items():
        jax.tree.map(lambda new, old, g: np.testing.assert_allclose(new, old - 0.1 * np.asarray(g), rtol=1e-5, atol=1e-6),
                     s.value, before[k], grads[k])


# ---- schedulers drive the applied lr, without recompiling ---------------------------------------------
@pytest.mark.parametrize("name", ["SGD", "Fromage", "Rprop", "Lookahead", "HypergradientAdamW", "DoG"])
def test_scheduler_changes_the_applied_lr_without_recompiling(name):
    def run(lr):
        w = brainstate.ParamState(jnp.ones(4))
        kwargs = {"init_step": ("heuristic", 1e-2)} if name == "DoG" else {}  # steps well above f32 rounding
        opt = optim.Lookahead(optax.sgd(0.1), lr=lr) if name == "Lookahead" else getattr(optim, name)(lr=lr, **kwargs)
        opt.register_trainable_weights({"w": w})
        traces = []

        @brainstate.transform.jit
        def step(g):
            traces.append(1)
            opt.step({"w": g})

        moves = []
        for t in range(4):
            before = np.asarray(w.value)
            step(jnp.full(4, 0.1 * (t + 1)))
            moves.append(float(np.abs(np.asarray(w.value) - before).max()))
            if isinstance(lr, optim.LRScheduler):
                lr.step()
        return opt, moves, traces

    sched = optim.StepLR(base_lr=0.1, step_size=1, gamma=0.5)
    opt, moves, traces = run(sched)
    _, constant, _ = run(0.1)
    assert len(traces) == 1
    assert opt.get_last_lr() == pytest.approx([0.1 * 0.5**4])
    if name in ("SGD", "Lookahead"):
        # |dw| = lr_t * g_t with lr_t = 0.1 * 0.5**t, g_t = 0.1 (t + 1)
        np.testing.assert_allclose(moves, [0.1 * 0.5**t * 0.1 * (t + 1) for t in range(4)], rtol=1e-5)
    assert moves[0] == pytest.approx(constant[0], rel=1e-6)
    for t in (1, 2, 3):  # the same step at a lower rate moves less (Rprop's first step is 0)
        assert 0 < moves[t] < constant[t], (t, moves, constant)


def test_lr_setters_and_lr_apply():
    w = brainstate.ParamState(jnp.zeros(2))
    opt = optim.SGD(lr=0.1).register_trainable_weights({"w": w})
    opt.current_lr = 0.2
    opt.step({"w": jnp.ones(2)})
    np.testing.assert_allclose(w.value, -0.2, rtol=1e-6)
    opt.lr_apply(lambda lr: lr * 0.5)
    assert opt.get_last_lr() == pytest.approx([0.1])
    extra = optim.ExponentialLR(base_lr=0.1, gamma=0.5)
    opt.add_scheduler(extra)
    extra.step()
    assert opt.get_last_lr() == pytest.approx([0.05]) and opt.base_lr == 0.1


# ---- bad input ----------------------------------------------------------------------------------------
def test_bad_input_errors():
    w = brainstate.ParamState(jnp.ones(2))
    with pytest.raises(ValueError, match="register_trainable_weights"):
        optim.Adam().step({"w": jnp.ones(2)})
    with pytest.raises(TypeError, match="brainstate.State"):
        optim.Adam().register_trainable_weights({"w": jnp.ones(2)})
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(lr=-0.1)
    with pytest.raises(ValueError, match="base_lr|learning rates"):
        optim.StepLR(base_lr=-1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        optim.AdamW(weight_decay=-1.0)
    opt = optim.SGD(lr=0.1).register_trainable_weights({"w": w})
    with pytest.raises(KeyError, match="not a registered parameter"):
        opt.step({"w": jnp.ones(2), "v": jnp.ones(2)})
    with pytest.raises(KeyError, match="no gradient"):
        opt.step({})
    with pytest.raises(ValueError, match="registered twice"):
        opt.add_param_group({"w2": w})
    with pytest.raises(TypeError, match="unknown hyperparameters"):
        opt.add_param_group({"v": brainstate.ParamState(jnp.ones(2))}, betas=(0.9, 0.9))
    with pytest.raises(TypeError, match="metric"):
        optim.ChainedScheduler([optim.ReduceLROnPlateau()])
    other = optim.Adam().register_trainable_weights({"w": brainstate.ParamState(jnp.ones(2))})
    with pytest.raises(ValueError, match="structure"):
        opt.load_state_dict(other.state_dict())


def test_import_without_brainstate_says_what_to_install():
    code = "import sys; sys.modules['brainstate'] = None\nimport fromax\ntry:\n import fromax.optim\nexcept ImportError as e:\n print(e)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "pip install 'fromax[brainstate]'" in out


def test_base_class_default_and_given_tx():
    # Default: Adam with coupled L2 (braintools' base class).
    params = flat_params(9)
    grads_seq = _grads_seq(params, 3, seed=10)
    states = _states(params)
    opt = optim.OptaxOptimizer(lr=0.01, weight_decay=0.1).register_trainable_weights(states)
    _train(opt, states, grads_seq, [None] * 3)
    expected = run_expected(optax.chain(optax.add_decayed_weights(0.1), optax.adam(0.01)), params, grads_seq, [None] * 3)
    tree_close({k: s.value for k, s in states.items()}, expected, rtol=2e-5, atol=2e-6)
    # A given tx is used as is; a scheduler scales its steps by lr_t / base_lr.
    w = brainstate.ParamState(jnp.zeros(2))
    sched = optim.ExponentialLR(base_lr=0.1, gamma=0.5)
    opt = optim.OptaxOptimizer(tx=optax.sgd(1.0), lr=sched).register_trainable_weights({"w": w})
    opt.step({"w": jnp.ones(2)})
    sched.step()
    opt.step({"w": jnp.ones(2)})
    np.testing.assert_allclose(w.value, -1.5, rtol=1e-6)
    with pytest.raises(ValueError, match="only its lr"):
        opt.add_param_group({"v": brainstate.ParamState(jnp.ones(2))}, weight_decay=0.1)


def test_signatures_and_defaults_are_braintools():
    """Drop-in: every braintools.optim 0.3.0 optimizer and scheduler has the same parameters, in the
    same order, with the same defaults (Fromage excepted on purpose: the real one, lr 0.01 and p_bound)."""
    import inspect

    import braintools.optim as braintools_optim  # a test dependency, to compare against

    def params(cls):
        return [(p.name, p.default) for p in inspect.signature(cls.__init__).parameters.values()][1:]

    per_slice = ("Fromage", "Lamb", "Lars", "Novograd")  # fromax adds the keyword-only stacked_axes=None, last
    for name in (*optim.OPTIMIZERS, *optim.SCHEDULERS):
        ours, theirs = params(getattr(optim, name)), params(getattr(braintools_optim, name))
        if name in per_slice:
            assert ours[-1] == ("stacked_axes", None), name
            assert inspect.signature(getattr(optim, name).__init__).parameters["stacked_axes"].kind == inspect.Parameter.KEYWORD_ONLY
            ours = ours[:-1]
        if name == "Fromage":
            assert ours == [("lr", 0.01), ("p_bound", None), ("momentum", 0.0), ("grad_clip_norm", None), ("grad_clip_value", None)]
            assert [n for n, _ in theirs] == ["lr", "momentum", "grad_clip_norm", "grad_clip_value"]
            continue
        assert ours == theirs, name


@pytest.mark.parametrize("name", ["Fromage", "AdamW", "Lamb", "Lars", "Novograd", "Adam", "DoG", "Prodigy", "ScheduleFree"])
def test_facade_step_runs_fromax_kernels_a_constant_number_of_times(name):
    """The jitted facade step compiles to fromax custom calls, as many for 40 parameters as for 3."""
    import re

    counts = []
    for n in (3, 40):
        states = {f"w{i}": brainstate.ParamState(jnp.ones(4)) for i in range(n)}
        opt = getattr(optim, name)().register_trainable_weights(states)

        @brainstate.transform.jit
        def step(g):
            opt.step(g)

        hlo = step.lower({k: jnp.ones(4) for k in states}).compile().as_text()
        counts.append(len(re.findall(r'custom_call_target="fromax_', hlo)))
    assert counts[0] >= 1 and counts[0] == counts[1], counts
