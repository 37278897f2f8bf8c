"""Operations on `Tensor`, each registered beside its backward function (ARENA 0.4, "a zoo of backward functions").

A backward function for argument ``i`` of ``f`` has the signature
``back(grad_out, out, *args, **kwargs) -> grad_arg_i``: the gradient of the loss with respect to
``f``'s output, the output itself, and the arguments the forward pass saw. Each derivation is
a line of calculus; the shape bookkeeping (``unbroadcast``, re-expanding reduced axes, scattering
into indexed positions) is where the bugs live, and what the tests check against torch.

Importing this module attaches the operators (``+ - * / @ ** -x x[i]`` and methods such as
``.sum``, ``.reshape``, ``.permute``) to `Tensor`; ``mechlearn.backprop`` imports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mechlearn.backprop.tensor import BACK_FUNCS, Tensor, unbroadcast, wrap_forward_fn

__all__ = [
    "log", "exp", "tanh", "negative", "add", "subtract", "multiply", "true_divide", "power", "maximum", "relu",
    "matmul", "reshape", "permute", "expand", "sum", "getitem", "argmax", "eq", "tensor", "zeros", "ones",
    "matmul_back", "sum_back", "getitem_back", "maximum_back", "permute_back",
]


def tensor(array: Any, requires_grad: bool = False) -> Tensor:
    """Like ``torch.tensor``: a new tensor (a copy of ``array``)."""
    return Tensor(np.array(array), requires_grad=requires_grad)


def zeros(*shape: int, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    """A tensor of zeros of the given shape (``zeros(2, 3)``), like ``torch.zeros``."""
    return Tensor(np.zeros(shape, dtype=dtype), requires_grad=requires_grad)


def ones(*shape: int, dtype: Any = np.float64, requires_grad: bool = False) -> Tensor:
    """A tensor of ones of the given shape (``ones(2, 3)``), like ``torch.ones``."""
    return Tensor(np.ones(shape, dtype=dtype), requires_grad=requires_grad)


def _other(grad_out: Any, x: Any) -> np.ndarray:
    return unbroadcast(grad_out, np.shape(x))


# --- elementwise, one argument -------------------------------------------------------------------

log = wrap_forward_fn(np.log)
BACK_FUNCS.add_back_func(np.log, 0, lambda g, out, x: g / x)  # d log x = dx / x

exp = wrap_forward_fn(np.exp)
BACK_FUNCS.add_back_func(np.exp, 0, lambda g, out, x: g * out)  # d e^x = e^x dx

tanh = wrap_forward_fn(np.tanh)
BACK_FUNCS.add_back_func(np.tanh, 0, lambda g, out, x: g * (1.0 - out * out))  # d tanh x = (1 - tanh^2 x) dx

negative = wrap_forward_fn(np.negative)
BACK_FUNCS.add_back_func(np.negative, 0, lambda g, out, x: -g)


def _relu(x: np.ndarray) -> np.ndarray:
    return np.asarray(np.maximum(x, 0))  # ufuncs turn 0-d arrays into scalars; keep arrays


relu = wrap_forward_fn(_relu)
BACK_FUNCS.add_back_func(_relu, 0, lambda g, out, x: g * (x > 0))  # subgradient 0 at 0, as torch


# --- elementwise, two arguments (broadcasting) ---------------------------------------------------

add = wrap_forward_fn(np.add)
BACK_FUNCS.add_back_func(np.add, 0, lambda g, out, x, y: _other(g, x))
BACK_FUNCS.add_back_func(np.add, 1, lambda g, out, x, y: _other(g, y))

subtract = wrap_forward_fn(np.subtract)
BACK_FUNCS.add_back_func(np.subtract, 0, lambda g, out, x, y: _other(g, x))
BACK_FUNCS.add_back_func(np.subtract, 1, lambda g, out, x, y: _other(-g, y))

multiply = wrap_forward_fn(np.multiply)
BACK_FUNCS.add_back_func(np.multiply, 0, lambda g, out, x, y: _other(g * y, x))  # d(xy) = y dx + x dy
BACK_FUNCS.add_back_func(np.multiply, 1, lambda g, out, x, y: _other(g * x, y))

true_divide = wrap_forward_fn(np.true_divide)
BACK_FUNCS.add_back_func(np.true_divide, 0, lambda g, out, x, y: _other(g / y, x))  # d(x/y) = dx/y - x dy/y^2
BACK_FUNCS.add_back_func(np.true_divide, 1, lambda g, out, x, y: _other(-g * x / (np.asarray(y) ** 2), y))

power = wrap_forward_fn(np.power)
BACK_FUNCS.add_back_func(np.power, 0, lambda g, out, x, k: _other(g * k * np.power(x, np.asarray(k) - 1.0), x))
BACK_FUNCS.add_back_func(np.power, 1, lambda g, out, x, k: _other(g * out * np.log(x), k))  # d(x^k)/dk = x^k log x


def maximum_back(g: np.ndarray, out: np.ndarray, x: Any, y: Any, *, first: bool) -> np.ndarray:
    """Gradient of ``maximum(x, y)``: to whichever argument is larger, split evenly at ties (as torch)."""
    # At ties torch splits the gradient evenly between the two arguments.
    share = np.where(np.asarray(x) == np.asarray(y), 0.5, (np.asarray(x) > np.asarray(y)) if first else (np.asarray(y) > np.asarray(x)))
    return _other(g * share, x if first else y)


maximum = wrap_forward_fn(np.maximum)
BACK_FUNCS.add_back_func(np.maximum, 0, lambda g, out, x, y: maximum_back(g, out, x, y, first=True))
BACK_FUNCS.add_back_func(np.maximum, 1, lambda g, out, x, y: maximum_back(g, out, x, y, first=False))


def matmul_back(g: np.ndarray, x: np.ndarray, y: np.ndarray, *, first: bool) -> np.ndarray:
    """Gradient of ``x @ y`` with respect to ``x`` (``first``) or ``y``: ``G Y^T`` and ``X^T G``, unbroadcast."""
    # 1-D operands are promoted to matrices by matmul and the new axis removed afterwards;
    # promote them here too, so one pair of formulas (dX = G Y^T, dY = X^T G) covers every case.
    if x.ndim == 1 and y.ndim == 1:  # a dot product: d(x·y)/dx = y
        return g * (y if first else x)
    x2 = x[None, :] if x.ndim == 1 else x
    y2 = y[:, None] if y.ndim == 1 else y
    g2 = g
    if x.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    if y.ndim == 1:
        g2 = np.expand_dims(g2, -1)
    if first:
        dx = g2 @ np.swapaxes(y2, -1, -2)
        return unbroadcast(dx, x2.shape).reshape(x.shape)
    dy = np.swapaxes(x2, -1, -2) @ g2
    return unbroadcast(dy, y2.shape).reshape(y.shape)


matmul = wrap_forward_fn(np.matmul)
BACK_FUNCS.add_back_func(np.matmul, 0, lambda g, out, x, y: matmul_back(g, x, y, first=True))
BACK_FUNCS.add_back_func(np.matmul, 1, lambda g, out, x, y: matmul_back(g, x, y, first=False))


# --- shape operations -----------------------------------------------------------------------------

reshape = wrap_forward_fn(np.reshape)
BACK_FUNCS.add_back_func(np.reshape, 0, lambda g, out, x, new_shape: g.reshape(np.shape(x)))

def _normalise_axes(axes: Any, ndim: int) -> tuple[int, ...]:
    """``axes`` as a permutation of ``range(ndim)``, negative axes counted from the end (as torch)."""
    try:
        given = tuple(int(a) for a in axes)
    except TypeError:
        raise TypeError(f"permute needs a sequence of axes, got {axes!r}") from None
    normalised = tuple(a % ndim if -ndim <= a < ndim else a for a in given) if ndim else given
    if sorted(normalised) != list(range(ndim)):
        raise ValueError(
            f"permute needs a permutation of range({ndim}) = {tuple(range(ndim))} for a {ndim}-d tensor "
            f"(negative axes count from the end), got {given}"
        )
    return normalised


def _permute(x: np.ndarray, axes: Any) -> np.ndarray:
    return np.transpose(x, _normalise_axes(axes, np.ndim(x)))


def permute_back(g: np.ndarray, out: np.ndarray, x: np.ndarray, axes: Any) -> np.ndarray:
    """Gradient of ``x.permute(axes)``: the inverse permutation ``argsort(axes)`` applied to the gradient."""
    # argsort inverts a permutation only of non-negative axes: (-1, 0, 1) would sort -1 first.
    return np.transpose(g, np.argsort(_normalise_axes(axes, x.ndim)))


permute = wrap_forward_fn(_permute)
BACK_FUNCS.add_back_func(_permute, 0, permute_back)


def _expand(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    # -1 keeps an existing size, as in torch's expand.
    n_new = len(shape) - x.ndim
    full = tuple(x.shape[i - n_new] if s == -1 else s for i, s in enumerate(shape))
    return np.broadcast_to(x, full)


expand = wrap_forward_fn(_expand)
BACK_FUNCS.add_back_func(_expand, 0, lambda g, out, x, shape: unbroadcast(g, x.shape))


def _sum(x: np.ndarray, dim: int | tuple[int, ...] | None = None, keepdim: bool = False) -> np.ndarray:
    return np.asarray(np.sum(x, axis=dim, keepdims=keepdim))


def sum_back(g: np.ndarray, out: np.ndarray, x: np.ndarray, dim: Any = None, keepdim: bool = False) -> np.ndarray:
    """Gradient of ``x.sum(dim, keepdim)``: the output's gradient copied back along the summed axes."""
    # Every summed entry moved the output one-for-one: copy the gradient back along the summed axes.
    if not keepdim and dim is not None:
        axes = (dim,) if isinstance(dim, int) else dim
        g = np.expand_dims(g, tuple(a % x.ndim for a in axes))
    return np.broadcast_to(g, x.shape).copy()


sum = wrap_forward_fn(_sum)  # noqa: A001 - the name torch uses
BACK_FUNCS.add_back_func(_sum, 0, sum_back)


def _getitem(x: np.ndarray, index: Any) -> np.ndarray:
    return np.asarray(x[index])


def getitem_back(g: np.ndarray, out: np.ndarray, x: np.ndarray, index: Any) -> np.ndarray:
    """Gradient of ``x[index]``: zeros, with the output's gradient added into the selected positions."""
    # Scatter-add: an entry selected twice (x[[0, 0]]) receives both gradients.
    grad = np.zeros_like(x, dtype=np.result_type(g, np.float32))
    np.add.at(grad, index, g)
    return grad


getitem = wrap_forward_fn(_getitem)
BACK_FUNCS.add_back_func(_getitem, 0, getitem_back)


# --- non-differentiable ----------------------------------------------------------------------------


def _argmax(x: np.ndarray, dim: int | None = None, keepdim: bool = False) -> np.ndarray:
    return np.asarray(np.argmax(x, axis=dim, keepdims=keepdim))


argmax = wrap_forward_fn(_argmax, is_differentiable=False)
eq = wrap_forward_fn(np.equal, is_differentiable=False)


# --- operators and methods on Tensor ---------------------------------------------------------------


def _index(index: Any) -> Any:
    if isinstance(index, Tensor):
        return index.array
    if isinstance(index, tuple):
        return tuple(i.array if isinstance(i, Tensor) else i for i in index)
    return index


def _reshape_method(self: Tensor, *shape: Any) -> Tensor:
    """``t.reshape(2, 3)`` or ``t.reshape((2, 3))``: the same entries in a new shape (recorded for backprop)."""
    return reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)


def _permute_method(self: Tensor, *axes: Any) -> Tensor:
    """``t.permute(1, 0)`` or ``t.permute((1, 0))``: reorder the axes (recorded for backprop)."""
    return permute(self, tuple(axes[0]) if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else axes)


def _expand_method(self: Tensor, *shape: Any) -> Tensor:
    """``t.expand(4, 3)``: broadcast to a larger shape without copying (recorded for backprop)."""
    return expand(self, tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)


def _mean(self: Tensor, dim: Any = None, keepdim: bool = False) -> Tensor:
    """The mean over ``dim`` (all entries if None), as the sum divided by the count (recorded for backprop)."""
    n = self.array.size if dim is None else int(np.prod([self.shape[d] for d in ((dim,) if isinstance(dim, int) else dim)]))
    return sum(self, dim, keepdim) / n


Tensor.__add__ = lambda self, other: add(self, other)
Tensor.__radd__ = lambda self, other: add(other, self)
Tensor.__sub__ = lambda self, other: subtract(self, other)
Tensor.__rsub__ = lambda self, other: subtract(other, self)
Tensor.__mul__ = lambda self, other: multiply(self, other)
Tensor.__rmul__ = lambda self, other: multiply(other, self)
Tensor.__truediv__ = lambda self, other: true_divide(self, other)
Tensor.__rtruediv__ = lambda self, other: true_divide(other, self)
Tensor.__pow__ = lambda self, other: power(self, other)
Tensor.__matmul__ = lambda self, other: matmul(self, other)
Tensor.__rmatmul__ = lambda self, other: matmul(other, self)
Tensor.__neg__ = lambda self: negative(self)
Tensor.__getitem__ = lambda self, index: getitem(self, _index(index))
Tensor.__eq__ = lambda self, other: eq(self, other)  # type: ignore[assignment,method-assign]
Tensor.__hash__ = object.__hash__  # type: ignore[assignment]
Tensor.log = lambda self: log(self)
Tensor.exp = lambda self: exp(self)
Tensor.relu = lambda self: relu(self)
Tensor.tanh = lambda self: tanh(self)
Tensor.sum = lambda self, dim=None, keepdim=False: sum(self, dim, keepdim)
Tensor.mean = _mean
Tensor.maximum = lambda self, other: maximum(self, other)
Tensor.argmax = lambda self, dim=None, keepdim=False: argmax(self, dim, keepdim)
Tensor.reshape = _reshape_method
Tensor.permute = _permute_method
Tensor.expand = _expand_method
Tensor.T = property(lambda self: permute(self, tuple(range(self.ndim))[::-1]), doc="The tensor with its axes reversed (recorded for backprop).")
for _name, _doc in {
    "log": "Elementwise natural logarithm (recorded for backprop).",
    "exp": "Elementwise exponential (recorded for backprop).",
    "relu": "Elementwise ``max(x, 0)`` (recorded for backprop).",
    "tanh": "Elementwise hyperbolic tangent (recorded for backprop).",
    "sum": "The sum over ``dim`` (all entries if None), keeping the summed axes if ``keepdim`` (recorded for backprop).",
    "maximum": "Elementwise maximum with ``other``; at ties the gradient is split equally (recorded for backprop).",
    "argmax": "Indices of the largest entries along ``dim`` (no gradient).",
}.items():
    getattr(Tensor, _name).__doc__ = _doc
