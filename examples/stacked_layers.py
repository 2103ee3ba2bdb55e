"""Layer-wise optimizers on stacked (scanned) layers: `stacked_axes`, with flax NNX and Equinox.

    pip install 'fromax[examples]' && python examples/stacked_layers.py

A deep MLP on scikit-learn's digits whose hidden blocks are stacked: flax NNX creates them with
`nnx.vmap` and runs them with `nnx.scan`; Equinox with `eqx.filter_vmap` and `jax.lax.scan`. Each
block's kernel is then one slice of a (depth, width, width) leaf. Fromage's relative step is per
layer: `fromax.fromage(0.01, stacked_axes=...)` keeps it per layer (per slice), and the stacked
model trains exactly as its twin with one leaf per layer; without `stacked_axes` the norms span all
the blocks and the trajectory is another one.
"""

import os
import sys

# Run as a script, this file's folder is sys.path[0], where examples/equinox.py would shadow the
# equinox package: drop the folder before importing.
_here = os.path.dirname(os.path.abspath(__file__))
sys.path[:] = [p for p in sys.path if os.path.abspath(p or os.curdir) != _here]

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import optax  # noqa: E402
from flax import nnx  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402

import fromax  # noqa: E402

DEPTH, WIDTH = 6, 64


def stacked_blocks(path, leaf):
    """stacked_axes as a callable: the leaves under "blocks" are stacked on their first axis."""
    return 0 if "blocks" in jax.tree_util.keystr(path) else None


def _data():
    x, y = load_digits(return_X_y=True)
    return jnp.asarray(x / 16.0, jnp.float32), jnp.asarray(y)


def _batches(x, y, steps, batch=200):
    for s in range(steps):
        i = (s * batch) % (len(x) - batch)
        yield x[i:i + batch], y[i:i + batch]


def _largest_difference(a, b):
    return max(float(jnp.max(jnp.abs(u - v))) for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# ---- flax NNX: nnx.vmap-created, nnx.scan-applied blocks -------------------------------------------
class StackedMLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
        self.inp = nnx.Linear(64, WIDTH, rngs=rngs)

        @nnx.split_rngs(splits=DEPTH)
        @nnx.vmap(in_axes=(0,), out_axes=0)
        def make_blocks(rngs: nnx.Rngs):
            return nnx.Linear(WIDTH, WIDTH, rngs=rngs)

        self.blocks = make_blocks(rngs)
        self.out = nnx.Linear(WIDTH, 10, rngs=rngs)

    def __call__(self, x):
        @nnx.scan(in_axes=(nnx.Carry, 0), out_axes=nnx.Carry)
        def through(h, block):
            return nnx.relu(block(h))

        return self.out(through(nnx.relu(self.inp(x)), self.blocks))


class LayeredMLP(nnx.Module):
    """The same network with one Linear per block, its weights copied from a StackedMLP."""

    def __init__(self, stacked: StackedMLP):
        rngs = nnx.Rngs(0)
        self.inp, self.out = nnx.Linear(64, WIDTH, rngs=rngs), nnx.Linear(WIDTH, 10, rngs=rngs)
        self.blocks = nnx.List([nnx.Linear(WIDTH, WIDTH, rngs=rngs) for _ in range(DEPTH)])
        for mine, theirs in ((self.inp, stacked.inp), (self.out, stacked.out)):
            mine.kernel[...], mine.bias[...] = theirs.kernel[...], theirs.bias[...]
        for i, block in enumerate(self.blocks):
            block.kernel[...], block.bias[...] = stacked.blocks.kernel[...][i], stacked.blocks.bias[...][i]

    def __call__(self, x):
        h = nnx.relu(self.inp(x))
        for block in self.blocks:
            h = nnx.relu(block(h))
        return self.out(h)


@nnx.jit
def nnx_train_step(model, optimizer, x, y):
    def loss_fn(model):
        return optax.softmax_cross_entropy_with_integer_labels(model(x), y).mean()

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


def flax_nnx(steps: int = 30):
    """(stacked vs layered, stacked without stacked_axes vs layered, first loss, last loss)."""
    x, y = _data()
    models = {"stacked_axes": StackedMLP(nnx.Rngs(0)), "plain": StackedMLP(nnx.Rngs(0))}
    layered = LayeredMLP(models["stacked_axes"])
    optimizers = {
        "stacked_axes": nnx.Optimizer(models["stacked_axes"], fromax.fromage(0.01, stacked_axes=stacked_blocks), wrt=nnx.Param),
        "plain": nnx.Optimizer(models["plain"], fromax.fromage(0.01), wrt=nnx.Param),
        "layered": nnx.Optimizer(layered, fromax.fromage(0.01), wrt=nnx.Param),
    }
    losses = []
    for xb, yb in _batches(x, y, steps):
        losses.append(float(nnx_train_step(models["stacked_axes"], optimizers["stacked_axes"], xb, yb)))
        nnx_train_step(models["plain"], optimizers["plain"], xb, yb)
        nnx_train_step(layered, optimizers["layered"], xb, yb)

    def blocks(m):
        return m.blocks.kernel[...] if isinstance(m, StackedMLP) else jnp.stack([b.kernel[...] for b in m.blocks])

    return (_largest_difference(blocks(models["stacked_axes"]), blocks(layered)),
            _largest_difference(blocks(models["plain"]), blocks(layered)), losses[0], losses[-1])


# ---- Equinox: eqx.filter_vmap-created, lax.scan-applied blocks -------------------------------------
class EqxStacked(eqx.Module):
    inp: eqx.nn.Linear
    blocks: eqx.nn.Linear  # every array with a leading DEPTH axis
    out: eqx.nn.Linear

    def __init__(self, key):
        k_in, k_blocks, k_out = jax.random.split(key, 3)
        self.inp = eqx.nn.Linear(64, WIDTH, key=k_in)
        self.blocks = eqx.filter_vmap(lambda k: eqx.nn.Linear(WIDTH, WIDTH, key=k))(jax.random.split(k_blocks, DEPTH))
        self.out = eqx.nn.Linear(WIDTH, 10, key=k_out)

    def __call__(self, x):
        params, static = eqx.partition(self.blocks, eqx.is_array)

        def through(h, block_params):
            return jax.nn.relu(eqx.combine(block_params, static)(h)), None

        h, _ = jax.lax.scan(through, jax.nn.relu(self.inp(x)), params)
        return self.out(h)


class EqxLayered(eqx.Module):
    inp: eqx.nn.Linear
    blocks: list
    out: eqx.nn.Linear

    def __init__(self, stacked: EqxStacked):
        self.inp, self.out = stacked.inp, stacked.out
        self.blocks = [jax.tree.map(lambda a, i=i: a[i] if eqx.is_array(a) else a, stacked.blocks) for i in range(DEPTH)]

    def __call__(self, x):
        h = jax.nn.relu(self.inp(x))
        for block in self.blocks:
            h = jax.nn.relu(block(h))
        return self.out(h)


def _eqx_step(tx):
    @eqx.filter_jit
    def step(model, opt_state, x, y):
        def loss_fn(model):
            return optax.softmax_cross_entropy_with_integer_labels(jax.vmap(model)(x), y).mean()

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        params, static = eqx.partition(model, eqx.is_inexact_array)
        params, opt_state = fromax.step(tx, grads, opt_state, params)
        return eqx.combine(params, static), opt_state, loss

    return step


def equinox(steps: int = 30):
    """(stacked vs layered, stacked without stacked_axes vs layered, first loss, last loss)."""
    x, y = _data()
    stacked = EqxStacked(jax.random.PRNGKey(0))
    runs = {
        "stacked_axes": (stacked, fromax.fromage(0.01, stacked_axes=stacked_blocks)),
        "plain": (stacked, fromax.fromage(0.01)),
        "layered": (EqxLayered(stacked), fromax.fromage(0.01)),
    }
    models, losses = {}, []
    for name, (model, tx) in runs.items():
        step, opt_state = _eqx_step(tx), tx.init(eqx.filter(model, eqx.is_inexact_array))
        for xb, yb in _batches(x, y, steps):
            model, opt_state, loss = step(model, opt_state, xb, yb)
            if name == "stacked_axes":
                losses.append(float(loss))
        models[name] = model

    def blocks(m):
        return m.blocks.weight if isinstance(m, EqxStacked) else jnp.stack([b.weight for b in m.blocks])

    return (_largest_difference(blocks(models["stacked_axes"]), blocks(models["layered"])),
            _largest_difference(blocks(models["plain"]), blocks(models["layered"])), losses[0], losses[-1])


def main(steps: int = 30):
    results = {"flax NNX (nnx.vmap + nnx.scan)": flax_nnx(steps), "Equinox (filter_vmap + lax.scan)": equinox(steps)}
    for name, (same, plain, first, last) in results.items():
        print(f"{name}, {DEPTH} stacked blocks, fromage(0.01), {steps} steps: loss {first:.3f} -> {last:.3f}; "
              f"block kernels vs one-leaf-per-layer twin: {same:.1e} with stacked_axes, {plain:.1e} without")
    return results


if __name__ == "__main__":
    main()
