"""Days 4–6: the Tensor engine's forward values and gradients equal torch.autograd in float64.

Hypothesis draws shapes, broadcasting partners and whole sequences of operations; each program
runs once on our tensors and once on torch tensors, and every leaf gradient must agree to
``FLOAT64``. Cycles and non-scalar ``backward()`` calls must fail with a clear error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import unchecked
from mechlearn.backprop import Tensor, no_grad, topological_sort, unbroadcast
from mechlearn.backprop import functional as F
from mechlearn.backprop.tensor import Recipe
from mechlearn.testing import FLOAT64, GRADCHECK, assert_close, numerical_gradient

shapes = st.lists(st.integers(1, 4), min_size=0, max_size=3).map(tuple)


@st.composite
def broadcast_pair(draw):
    """A shape and another shape that broadcasts against it (axes dropped from the front or set to 1)."""
    shape = draw(shapes)
    n_drop = draw(st.integers(0, len(shape)))
    other = [1 if draw(st.booleans()) else s for s in shape[n_drop:]]
    return shape, tuple(other)


def _leaves(rng, *shape_list, positive=False):
    arrays = [rng.normal(size=s) for s in shape_list]
    if positive:
        arrays = [np.abs(a) + 0.5 for a in arrays]
    ours = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    ref = [torch.tensor(a.copy(), requires_grad=True) for a in arrays]
    return ours, ref


def _check(ours_out, ref_out, ours, ref, rng, what):
    assert_close(ours_out.array, ref_out.detach().numpy(), FLOAT64, name=f"{what}: forward")
    g = rng.normal(size=ref_out.shape)
    ours_out.backward(g)
    ref_out.backward(torch.tensor(g))
    for i, (a, b) in enumerate(zip(ours, ref)):
        assert_close(a.grad.array if a.grad is not None else np.zeros(a.shape), b.grad if b.grad is not None else np.zeros(b.shape),
                     FLOAT64, name=f"{what}: gradient of input {i}")


@settings(max_examples=60, deadline=None)
@given(pair=broadcast_pair(), op=st.sampled_from(["add", "sub", "mul", "div", "maximum"]), seed=st.integers(0, 10**6), swap=st.booleans())
def test_binary_ops_with_broadcasting_match_torch(pair, op, seed, swap):
    rng = np.random.default_rng(seed)
    a_shape, b_shape = pair if not swap else pair[::-1]
    ours, ref = _leaves(rng, a_shape, b_shape, positive=(op == "div"))
    fns = {
        "add": (lambda x, y: x + y, lambda x, y: x + y),
        "sub": (lambda x, y: x - y, lambda x, y: x - y),
        "mul": (lambda x, y: x * y, lambda x, y: x * y),
        "div": (lambda x, y: x / y, lambda x, y: x / y),
        "maximum": (F.maximum, torch.maximum),
    }
    f_ours, f_ref = fns[op]
    _check(f_ours(*ours), f_ref(*ref), ours, ref, rng, f"{op} {a_shape} with {b_shape}")


@settings(max_examples=40, deadline=None)
@given(pair=broadcast_pair())
def test_unbroadcast_matches_torch_sum_to_size(pair):
    big, small = pair
    rng = np.random.default_rng(0)
    full = np.broadcast_shapes(big, small)
    g = rng.normal(size=full)
    assert_close(unbroadcast(g, small), torch.tensor(g).sum_to_size(small), FLOAT64, name="unbroadcast")


UNARY = {
    "log": (lambda x: x.log(), torch.log, True),
    "exp": (lambda x: x.exp(), torch.exp, False),
    "tanh": (lambda x: x.tanh(), torch.tanh, False),
    "neg": (lambda x: -x, torch.neg, False),
    "relu": (lambda x: x.relu(), torch.relu, False),
    "square": (lambda x: x**2, lambda x: x**2, False),
    "pow 1.5": (lambda x: x**1.5, lambda x: x**1.5, True),
    "sum all": (lambda x: x.sum(), torch.sum, False),
    "sum last keepdim": (lambda x: x.sum(-1, keepdim=True), lambda x: x.sum(-1, keepdim=True), False),
    "sum first": (lambda x: x.sum(0), lambda x: x.sum(0), False),
    "mean": (lambda x: x.mean(), torch.mean, False),
    "reshape": (lambda x: x.reshape(-1), lambda x: x.reshape(-1), False),
    "transpose": (lambda x: x.T, lambda x: x.permute(*range(x.ndim - 1, -1, -1)), False),
    "getitem row": (lambda x: x[1], lambda x: x[1], False),
    "getitem repeated": (lambda x: x[np.array([0, 0, 2])], lambda x: x[torch.tensor([0, 0, 2])], False),
    "getitem slice": (lambda x: x[1:, ::2], lambda x: x[1:, ::2], False),
    "expand": (lambda x: x.expand(2, *x.shape), lambda x: x.expand(2, *x.shape), False),
}


@pytest.mark.parametrize("name", list(UNARY))
@pytest.mark.parametrize("seed", range(3))
def test_unary_and_shape_ops_match_torch(name, seed):
    rng = np.random.default_rng(seed)
    f_ours, f_ref, positive = UNARY[name]
    ours, ref = _leaves(rng, (3, 4), positive=positive)
    _check(f_ours(ours[0]), f_ref(ref[0]), ours, ref, rng, name)


@pytest.mark.parametrize(
    "shape, axes",
    [((2, 3, 4), (2, 0, 1)), ((2, 3, 4), (-1, 0, 1)), ((2, 3, 4), (1, -1, -3)), ((2, 3, 4), (-2, -1, 0)),
     ((5, 2), (-1, 0)), ((5, 2), (-1, -2)), ((2, 1, 3, 4), (3, -4, 1, -2)), ((3,), (-1,)), ((), ())],
)
def test_permute_matches_torch(shape, axes):
    """Negative axes count from the end; the backward pass must invert the *normalised* permutation."""
    rng = np.random.default_rng(0)
    ours, ref = _leaves(rng, shape)
    _check(ours[0].permute(axes), ref[0].permute(axes), ours, ref, rng, f"permute{axes} of shape {shape}")


@st.composite
def shape_and_axes(draw):
    """A shape of distinct-ish sizes and a permutation of its axes, each axis possibly written negatively."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=4).map(tuple))
    perm = draw(st.permutations(range(len(shape))))
    axes = tuple(a - len(shape) if draw(st.booleans()) else a for a in perm)
    return shape, axes


@settings(max_examples=40, deadline=None)
@given(case=shape_and_axes(), seed=st.integers(0, 10**6))
def test_permute_with_drawn_axes_matches_torch(case, seed):
    shape, axes = case
    rng = np.random.default_rng(seed)
    ours, ref = _leaves(rng, shape)
    # Multiply by a fixed array afterwards so each output position gets a distinct weight.
    _check(ours[0].permute(axes) * 1.5, ref[0].permute(axes) * 1.5, ours, ref, rng, f"permute{axes} of shape {shape}")


@pytest.mark.parametrize("axes", [(0, 1), (0, 1, 1), (0, 1, 3), (0, 1, -4), (0, -3, 2)])
def test_permute_with_bad_axes_names_the_expected_permutation(axes):
    x = Tensor(np.ones((2, 3, 4)), requires_grad=True)
    with pytest.raises(ValueError, match=r"permutation of range\(3\)"):
        x.permute(*axes)


@pytest.mark.parametrize("a_shape, b_shape", [((3, 4), (4, 5)), ((4,), (4, 5)), ((3, 4), (4,)), ((4,), (4,)),
                                              ((2, 3, 4), (4, 5)), ((2, 3, 4), (2, 4, 5)), ((3, 4), (2, 4, 5))])
def test_matmul_matches_torch_for_every_operand_rank(a_shape, b_shape):
    rng = np.random.default_rng(1)
    ours, ref = _leaves(rng, a_shape, b_shape)
    _check(ours[0] @ ours[1], ref[0] @ ref[1], ours, ref, rng, f"matmul {a_shape} @ {b_shape}")


OPS = ["add", "mul", "sub", "relu", "exp_neg_sq", "sum_keep", "matmul_T", "maximum", "div_pos", "reshape_back"]


@settings(max_examples=40, deadline=None)
@given(program=st.lists(st.tuples(st.sampled_from(OPS), st.integers(0, 100)), min_size=1, max_size=10), seed=st.integers(0, 10**6))
def test_random_programs_match_torch(program, seed):
    """Random sequences of operations on three (3, 3) leaves, values reused freely (shared parents)."""
    rng = np.random.default_rng(seed)
    ours, ref = _leaves(rng, (3, 3), (3, 3), (3, 3))

    def run(values, lib):
        vals = list(values)
        for op, k in program:
            x, y = vals[k % len(vals)], vals[(k * 7 + 1) % len(vals)]
            if op == "add":
                vals.append(x + y)
            elif op == "mul":
                vals.append(x * y)
            elif op == "sub":
                vals.append(x - y)
            elif op == "relu":
                vals.append(x.relu())
            elif op == "exp_neg_sq":
                vals.append((-(x * x)).exp())
            elif op == "sum_keep":
                vals.append(x.sum(-1, keepdim=True) + y)
            elif op == "matmul_T":
                vals.append(x @ y.T * 0.3)
            elif op == "maximum":
                vals.append(F.maximum(x, y) if lib == "ours" else torch.maximum(x, y))
            elif op == "div_pos":
                vals.append(x / (y * y + 1.0))
            else:
                vals.append(x.reshape(9).reshape(3, 3))
        out = vals[-1]
        for v in vals[3:-1]:
            out = out + v * 0.1
        return out.sum()

    out_ours, out_ref = run(ours, "ours"), run(ref, "torch")
    out_ours.backward()
    out_ref.backward()
    assert_close(out_ours.item(), out_ref.item(), FLOAT64, name=f"program {program}: value")
    for i, (a, b) in enumerate(zip(ours, ref)):
        expected = b.grad if b.grad is not None else torch.zeros(3, 3, dtype=torch.float64)
        got = a.grad.array if a.grad is not None else np.zeros((3, 3))
        assert_close(got, expected, FLOAT64, name=f"program {program}: gradient of leaf {i}")


# --- random programs over random shapes --------------------------------------------------------------
# Each step applies one operation to earlier values (leaves or intermediates, reused freely), chosen
# so the shapes fit; the same program then runs on our tensors and on torch's.

SHAPE_OPS = ["add", "sub", "mul", "div_pos", "maximum", "tanh", "relu", "log_pos", "pow_pos", "square", "getitem",
             "permute", "expand", "matmul", "sum", "reshape_flat"]
MAX_NDIM = 4


def _apply(op, args, params, lib):
    """One program step on our Tensors (``lib == "ours"``) or torch tensors: every op reads the same on both."""
    x = args[0]
    y = args[1] if len(args) > 1 else None
    if op == "add":
        return x + y
    if op == "sub":
        return x - y
    if op == "mul":
        return x * y
    if op == "div_pos":
        return x / (y * y + 1.0)
    if op == "maximum":
        return F.maximum(x, y) if lib == "ours" else torch.maximum(x, y)
    if op == "tanh":
        return x.tanh()
    if op == "relu":
        return x.relu()
    if op == "log_pos":
        return (x * x + 0.5).log()
    if op == "pow_pos":
        return (x * x + 0.5) ** params
    if op == "square":
        return x**2
    if op == "getitem":
        kind, value = params
        if kind == "array":
            return x[np.array(value)] if lib == "ours" else x[torch.tensor(value)]
        return x[value]
    if op == "permute":
        return x.permute(params)
    if op == "expand":
        return x.expand(*params)
    if op == "matmul":
        return (x @ y) * 0.5
    if op == "sum":
        dims, keepdim = params
        return x.sum() if dims is None else x.sum(dims, keepdim=keepdim)
    if op == "reshape_flat":
        return x.reshape(-1)
    raise AssertionError(f"unknown op {op}")


def _fits(op, a, b):
    """Whether binary ``op`` accepts operands of shapes ``a`` and ``b`` (and stays small)."""
    try:
        shape = np.matmul(np.ones(a), np.ones(b)).shape if op == "matmul" else np.broadcast_shapes(a, b)
    except ValueError:
        return False
    return len(shape) <= MAX_NDIM


@st.composite
def shaped_program(draw):
    """Leaf shapes and a program whose every step fits the shapes it is given."""
    base = draw(st.lists(st.integers(1, 4), min_size=1, max_size=3).map(tuple))
    partner = tuple(1 if draw(st.booleans()) else s for s in base[draw(st.integers(0, len(base) - 1)):])
    matrix = (base[-1], draw(st.integers(1, 4)))  # so base @ matrix is always possible
    shapes = [base, partner, matrix]
    program = []
    for op in draw(st.lists(st.sampled_from(SHAPE_OPS), min_size=1, max_size=8)):
        i = draw(st.integers(0, len(shapes) - 1))
        x = shapes[i]
        args, params = [i], None
        if op in ("add", "sub", "mul", "div_pos", "maximum", "matmul"):
            partners = [j for j, s in enumerate(shapes) if _fits(op, x, s)]
            if not partners:
                op = "tanh"
            else:
                args.append(draw(st.sampled_from(partners)))
        if op == "pow_pos":
            params = draw(st.sampled_from([-1.0, 0.5, 1.5, 2.0, 3.0]))
        elif op == "getitem":
            if not x:
                op = "tanh"
            else:
                kind = draw(st.sampled_from(["int", "slice", "array"]))
                n = x[0]
                if kind == "int":
                    params = ("int", draw(st.integers(-n, n - 1)))
                elif kind == "slice":
                    params = ("slice", slice(draw(st.integers(0, n - 1)), None, draw(st.integers(1, 2))))
                else:  # repeated indices: the backward pass must add, not overwrite
                    params = ("array", draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4)))
        elif op == "permute":
            perm = draw(st.permutations(range(len(x))))
            params = tuple(a - len(x) if draw(st.booleans()) else a for a in perm)
        elif op == "expand":
            if len(x) >= MAX_NDIM:
                op = "tanh"
            else:  # a new leading axis, and stretch some size-1 axes (-1 keeps a size, as torch)
                params = (draw(st.integers(1, 3)), *(draw(st.integers(2, 3)) if s == 1 and draw(st.booleans()) else -1 for s in x))
        elif op == "sum":
            if not x or draw(st.booleans()):
                params = (None, False)
            else:
                axes = draw(st.lists(st.integers(0, len(x) - 1), min_size=1, max_size=len(x), unique=True))
                params = (tuple(a - len(x) if draw(st.booleans()) else a for a in axes), draw(st.booleans()))
        program.append((op, tuple(args), params))
        # torch works out the shape (our functions, type-checked by beartype, would draw from `random` here)
        out = _apply(op, [torch.ones(shapes[j], dtype=torch.float64) for j in args], params, "torch")
        shapes.append(tuple(out.shape))
    return shapes[:3], program


@settings(max_examples=80, deadline=None)
@given(case=shaped_program(), seed=st.integers(0, 10**6))
def test_random_programs_over_random_shapes_match_torch(case, seed):
    """Broadcasting, matmul across ranks, indexing, permutes, expands, sums over axes, log, tanh and powers,
    composed at random; every leaf gradient must equal torch's to FLOAT64."""
    leaf_shapes, program = case
    rng = np.random.default_rng(seed)
    ours, ref = _leaves(rng, *leaf_shapes)

    def run(values, lib):
        vals = list(values)
        for op, args, params in program:
            vals.append(_apply(op, [vals[j] for j in args], params, lib))
        return vals[3:]

    outs_ours, outs_ref = run(ours, "ours"), run(ref, "torch")
    # Random weights on every intermediate, so a gradient routed to the wrong entry shows
    # (an all-ones upstream gradient would hide, say, a wrong inverse permutation).
    weights = [rng.normal(size=o.shape) for o in outs_ours]
    loss_ours = sum(((o * w).sum() for o, w in zip(outs_ours, weights)), start=Tensor(np.array(0.0)))
    loss_ref = sum((o * torch.tensor(w)).sum() for o, w in zip(outs_ref, weights))
    what = f"program {program} on leaves {leaf_shapes}"
    for k, (a, b) in enumerate(zip(outs_ours, outs_ref)):
        assert_close(a.array, b.detach().numpy(), FLOAT64, name=f"{what}: value of step {k}")
    loss_ours.backward()
    loss_ref.backward()
    for i, (a, b) in enumerate(zip(ours, ref)):
        got = a.grad.array if a.grad is not None else np.zeros(a.shape)
        expected = b.grad if b.grad is not None else np.zeros(b.shape)
        assert_close(got, expected, FLOAT64, name=f"{what}: gradient of leaf {i}")


def test_zero_d_intermediates_used_twice_keep_array_gradients():
    """NumPy returns scalars, not 0-d arrays, from 0-d arithmetic; the engine must keep arrays for the back functions."""
    rng = np.random.default_rng(4)
    ours, ref = _leaves(rng, (3, 2))
    s_ours, s_ref = ours[0].sum().tanh(), ref[0].sum().tanh()
    _check((s_ours * s_ours + s_ours).sum(), (s_ref * s_ref + s_ref).sum(), ours, ref, rng, "a shared 0-d intermediate")


@pytest.mark.parametrize("scale", [0.5, 3.0, 20.0])
def test_tanh_backward_matches_torch(scale):
    """d tanh x = (1 − tanh² x) dx, computed from the saved output; at |x| = 20 it underflows to 0 like torch's."""
    rng = np.random.default_rng(3)
    ours, ref = _leaves(rng, (4, 5))
    for t in (ours[0].array, ref[0].data):
        t *= scale
    _check(ours[0].tanh(), ref[0].tanh(), ours, ref, rng, f"tanh of inputs of scale {scale}")


def test_gradients_match_finite_differences():
    rng = np.random.default_rng(2)
    x0, w0 = rng.normal(size=(4, 3)), rng.normal(size=(3, 2))

    def loss(x, w):
        h = (x @ w).relu() + (x.sum(-1, keepdim=True) * 0.5).exp()
        return (h * h).mean()

    x, w = Tensor(x0.copy(), requires_grad=True), Tensor(w0.copy(), requires_grad=True)
    loss(x, w).backward()
    assert_close(x.grad.array, numerical_gradient(lambda v: loss(Tensor(v), Tensor(w0)).item(), x0), GRADCHECK)
    assert_close(w.grad.array, numerical_gradient(lambda v: loss(Tensor(x0), Tensor(v)).item(), w0), GRADCHECK)


def test_recipes_record_parents_and_leaves_are_leaves():
    a, b = Tensor(np.ones(3), requires_grad=True), Tensor(np.ones(3))
    c = a * b + 2.0
    assert a.is_leaf and b.is_leaf and not c.is_leaf and c.requires_grad
    assert c.recipe.func is np.add and list(c.recipe.parents) == [0]
    inner = c.recipe.parents[0]
    assert inner.recipe.func is np.multiply and inner.recipe.parents == {0: a}  # b does not require grad
    assert (b * 2.0).recipe is None and not (b * 2.0).requires_grad


def test_no_grad_records_nothing_and_restores_itself():
    a = Tensor(np.ones(2), requires_grad=True)
    with no_grad():
        b = a * 2
    assert b.recipe is None and not b.requires_grad
    assert (a * 2).recipe is not None
    with pytest.raises(RuntimeError):
        with no_grad():
            raise RuntimeError("inside")
    assert (a * 2).requires_grad, "no_grad must switch recording back on even after an exception"


def test_grads_accumulate_across_backward_calls_like_torch():
    a = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    (a * a).sum().backward()
    (a * a).sum().backward()
    assert_close(a.grad.array, 2 * 2 * a.array, FLOAT64)


def test_topological_sort_orders_children_first_on_branching_and_rejoining_graphs():
    a = Tensor(np.ones(2), requires_grad=True)
    b, c = a * 2, a.exp()
    d = b + c  # a branches into b and c, which rejoin in d
    e = d * b  # b is shared
    order = topological_sort(e, lambda t: list(t.recipe.parents.values()) if t.recipe else [])
    pos = {id(t): i for i, t in enumerate(order)}
    assert len(order) == 5 and order[-1] is e and order[0] is a
    for t in order:
        for p in (t.recipe.parents.values() if t.recipe else []):
            assert pos[id(p)] < pos[id(t)]


def test_a_cycle_is_detected_with_a_clear_error():
    a = Tensor(np.ones(2), requires_grad=True)
    b = a * 2
    c = b + 1
    object.__setattr__(b, "recipe", Recipe(np.multiply, (c.array, 2), {}, {0: c}))  # b now depends on c
    with pytest.raises(ValueError, match="cycle"):
        c.backward(np.ones(2))


@pytest.mark.parametrize(
    "make, error, words",
    [
        (lambda: (Tensor(np.ones(3), requires_grad=True) * 2).backward(), ValueError, "one-element output"),
        (lambda: (Tensor(np.ones(3), requires_grad=True) * 2).backward(np.ones(2)), ValueError, r"shape \(3,\)"),
        (lambda: Tensor(np.ones(3)).sum().backward(), ValueError, "does not require grad"),
        (lambda: Tensor(Tensor(np.ones(1))), TypeError, "ambiguous"),
        (lambda: Tensor(["a", object()]), TypeError, "numeric"),
        (lambda: unbroadcast(np.ones((2, 3)), (3, 2)), ValueError, "cannot have been broadcast"),
        (lambda: Tensor(np.ones(3)).item(), ValueError, "one element"),
    ],
)
def test_bad_input_raises_a_clear_error(make, error, words):
    with pytest.raises(error, match=words):
        unchecked(make)()


def test_ties_and_kinks_follow_torchs_conventions():
    """At maximum(x, x) torch splits the gradient in half; relu'(0) is 0."""
    x = np.array([-1.0, 0.0, 2.0])
    ours = Tensor(x.copy(), requires_grad=True)
    ref = torch.tensor(x.copy(), requires_grad=True)
    (F.maximum(ours, ours * 1.0).sum() + ours.relu().sum() + F.maximum(ours, 0.0).sum()).backward()
    (torch.maximum(ref, ref * 1.0).sum() + ref.relu().sum() + torch.maximum(ref, torch.tensor(0.0, dtype=torch.float64)).sum()).backward()
    assert_close(ours.grad.array, ref.grad, FLOAT64, name="gradients at ties and kinks")
