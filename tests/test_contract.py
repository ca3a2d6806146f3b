"""The contract every cell keeps: shapes, carry structure and dtype, transforms."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jaxrnn
from helpers import CELL_IDS, CELLS, assert_trees_close, x64

D, H, T, B = 3, 5, 7, 4
DTYPES = [jnp.float32, jnp.bfloat16, jnp.float16, jnp.float64]


def _structure(tree):
    return jax.tree.structure(tree), [(a.shape, a.dtype) for a in jax.tree.leaves(tree)]


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: jnp.dtype(d).name)
def test_step_keeps_carry_structure_and_dtype(cell, dtype, getkey):
    with x64():
        params = cell.init(getkey(), D, H, dtype=dtype)
        carry = cell.random_carry(getkey(), H, dtype)
        x = jax.random.normal(getkey(), (D,)).astype(dtype)
        new_carry, y = cell.step(params, carry, x)
        assert _structure(new_carry) == _structure(carry)
        assert y.shape == (cell.out(H),) and y.dtype == dtype
        final, ys = jaxrnn.unroll(
            cell.step, params, carry, jax.random.normal(getkey(), (T, D)).astype(dtype)
        )
        assert _structure(final) == _structure(carry)
        assert ys.shape == (T, cell.out(H)) and ys.dtype == dtype
        assert all(a.dtype == dtype for a in jax.tree.leaves(params) if a is not None)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_bfloat16_tracks_float32(cell, getkey):
    params = cell.init(getkey(), D, H)
    carry = cell.random_carry(getkey(), H)
    xs = jax.random.normal(getkey(), (T, D))
    _, ys32 = jaxrnn.unroll(cell.step, params, carry, xs)
    cast = lambda t: jax.tree.map(lambda a: a.astype(jnp.bfloat16), t)
    _, ys16 = jaxrnn.unroll(cell.step, cast(params), cast(carry), cast(xs))
    assert_trees_close(ys16, ys32, 5e-2)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_jit_equals_eager(cell, getkey):
    params = cell.init(getkey(), D, H)
    carry = cell.random_carry(getkey(), H)
    xs = jax.random.normal(getkey(), (T, D))
    eager = jaxrnn.unroll(cell.step, params, carry, xs)
    jitted = jax.jit(lambda p, c, x: jaxrnn.unroll(cell.step, p, c, x))(
        params, carry, xs
    )
    assert_trees_close(jitted, eager, 1e-6)
    step_jit = jax.jit(cell.step)(params, carry, xs[0])
    assert_trees_close(step_jit, cell.step(params, carry, xs[0]), 1e-6)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_vmap_equals_loop_over_examples(cell, getkey):
    params = cell.init(getkey(), D, H)
    carries = jax.vmap(lambda k: cell.random_carry(k, H))(jax.random.split(getkey(), B))
    xs = jax.random.normal(getkey(), (B, T, D))
    lengths = jnp.array([7, 3, 0, 5])
    run = lambda c, x, n: jaxrnn.unroll(cell.step, params, c, x, length=n)
    batched = jax.vmap(run)(carries, xs, lengths)
    for b in range(B):
        one = run(jax.tree.map(lambda a: a[b], carries), xs[b], lengths[b])
        assert_trees_close(jax.tree.map(lambda a: a[b], batched), one, 1e-6)
    # The step itself under vmap.
    stepped = jax.vmap(cell.step, in_axes=(None, 0, 0))(params, carries, xs[:, 0])
    for b in range(B):
        one = cell.step(params, jax.tree.map(lambda a: a[b], carries), xs[b, 0])
        assert_trees_close(jax.tree.map(lambda a: a[b], stepped), one, 1e-6)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_eval_shape(cell, getkey):
    params = cell.init(getkey(), D, H)
    carry = cell.init_carry(H)
    final, ys = jax.eval_shape(
        lambda p, c, x: jaxrnn.unroll(cell.step, p, c, x),
        params,
        carry,
        jax.ShapeDtypeStruct((T, D), jnp.float32),
    )
    assert ys.shape == (T, cell.out(H))
    assert _structure(final) == _structure(carry)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_step_is_a_scan_body(cell, getkey):
    """functools.partial(step, params) is exactly what lax.scan wants."""
    import functools

    params = cell.init(getkey(), D, H)
    carry = cell.random_carry(getkey(), H)
    xs = jax.random.normal(getkey(), (T, D))
    by_scan = jax.lax.scan(functools.partial(cell.step, params), carry, xs)
    assert_trees_close(by_scan, jaxrnn.unroll(cell.step, params, carry, xs), 0)


@pytest.mark.parametrize("cell", CELLS, ids=CELL_IDS)
def test_wrong_input_size_names_both_shapes(cell, getkey):
    params = cell.init(getkey(), D, H)
    with pytest.raises(
        ValueError, match=r"x must have shape \[D\] = \(3,\), got shape \(4,\)"
    ):
        cell.step(params, cell.init_carry(H), jnp.ones(D + 1))
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        jax.jit(lambda x: jaxrnn.unroll(cell.step, params, cell.init_carry(H), x))(
            jnp.ones((T, D + 1))
        )


def test_params_are_pytrees_of_arrays(getkey):
    for cell in CELLS:
        params = cell.init(getkey(), D, H)
        leaves = jax.tree.leaves(params)
        assert leaves and all(isinstance(a, jax.Array) for a in leaves)
        assert np.isfinite(np.concatenate([np.ravel(a) for a in leaves])).all()
