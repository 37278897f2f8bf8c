"""A NumPy tensor autograd engine: recipes, broadcasting, topological sort and backprop (ARENA 0.4).

Every ``Tensor`` produced by a differentiable operation keeps a ``Recipe``: the NumPy function
that made it, the arguments it was called with, and which of them were tensors (its parents).
``backward()`` sorts the graph so that every tensor comes before the tensors it was computed
from, then walks it from the output: each tensor's gradient is complete before it is passed on,
through the *backward function* registered for (forward function, argument position)::

    grad_parent += back_fn(grad_out, out, *args, **kwargs)

Broadcasting in the forward pass makes an input's entries feed several outputs, so its
gradient is the *sum* over the broadcast axes: :func:`unbroadcast` undoes what NumPy's
broadcasting did. Only leaves (tensors with no recipe) that require gradients keep ``.grad``,
and it accumulates across ``backward()`` calls, as in torch.

The operations themselves (with their backward functions) live in :mod:`mechlearn.backprop.functional`.

References: ARENA chapter 0.4, *Build Your Own Backpropagation Framework*; the design follows
its ``Tensor``/``Recipe``/``BackwardFuncLookup`` structure. micrograd for the scalar version (Day 1).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = [
    "Tensor",
    "Recipe",
    "BackwardFuncLookup",
    "BACK_FUNCS",
    "no_grad",
    "is_grad_enabled",
    "unbroadcast",
    "topological_sort",
    "backprop",
    "wrap_forward_fn",
]

_grad_enabled = True


def is_grad_enabled() -> bool:
    """Whether operations currently record recipes (False inside ``no_grad()``)."""
    return _grad_enabled


@contextlib.contextmanager
def no_grad() -> Iterator[None]:
    """Inside this block no recipe is recorded: for optimiser steps and evaluation."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@dataclass(frozen=True)
class Recipe:
    """How a tensor was made: ``func(*args, **kwargs)``, with ``parents[i]`` the tensor that was ``args[i]``."""

    func: Callable[..., np.ndarray]
    """The NumPy function of the forward pass."""
    args: tuple[Any, ...]
    """Its positional arguments, with tensors replaced by their arrays."""
    kwargs: dict[str, Any]
    parents: dict[int, "Tensor"]
    """Argument position → the tensor passed there (only tensors; constants are not parents)."""


class BackwardFuncLookup:
    """A registry of backward functions, keyed by (forward NumPy function, argument position)."""

    def __init__(self) -> None:
        self._funcs: dict[tuple[Callable[..., Any], int], Callable[..., np.ndarray]] = {}

    def add_back_func(self, forward_fn: Callable[..., Any], arg_position: int, back_fn: Callable[..., np.ndarray]) -> None:
        """Register ``back_fn`` as the backward function of argument ``arg_position`` of ``forward_fn``."""
        self._funcs[(forward_fn, arg_position)] = back_fn

    def get_back_func(self, forward_fn: Callable[..., Any], arg_position: int) -> Callable[..., np.ndarray]:
        """The backward function registered for ``(forward_fn, arg_position)``; ``NotImplementedError`` names how to register one."""
        try:
            return self._funcs[(forward_fn, arg_position)]
        except KeyError:
            name = getattr(forward_fn, "__name__", repr(forward_fn))
            raise NotImplementedError(
                f"no backward function is registered for argument {arg_position} of {name}: "
                f"register one with BACK_FUNCS.add_back_func({name}, {arg_position}, back_fn)"
            ) from None


BACK_FUNCS = BackwardFuncLookup()
"""The registry that `backprop` consults; `mechlearn.backprop.functional` fills it."""


def unbroadcast(broadcasted: Any, original: Any) -> np.ndarray:
    """Sum ``broadcasted`` back down to the shape of ``original`` (an array or a shape).

    Broadcasting prepends axes and stretches axes of size 1. Its backward pass sums over the
    prepended axes, then over the stretched ones (keeping them, with size 1).
    """
    broadcasted = np.asarray(broadcasted)
    shape = original if isinstance(original, tuple) else np.shape(original)
    n_new = broadcasted.ndim - len(shape)
    if n_new < 0 or any(s not in (1, b) for s, b in zip(shape, broadcasted.shape[n_new:])):
        raise ValueError(f"an array of shape {broadcasted.shape} cannot have been broadcast from shape {shape}")
    out = broadcasted.sum(axis=tuple(range(n_new))) if n_new else broadcasted
    stretched = tuple(i for i, (s, b) in enumerate(zip(shape, out.shape)) if s == 1 and b != 1)
    if stretched:
        out = out.sum(axis=stretched, keepdims=True)
    return np.asarray(out).reshape(shape)


class Tensor:
    """An array that can record how it was computed, so gradients can flow back to it.

    Args:
        array: the data (anything ``np.asarray`` accepts; arrays are not copied).
        requires_grad: whether ``backward()`` should fill ``.grad`` for this tensor.
    """

    __array_priority__ = 1000  # so that `ndarray * Tensor` defers to Tensor.__rmul__

    def __init__(self, array: Any, requires_grad: bool = False) -> None:
        if isinstance(array, Tensor):
            raise TypeError("Tensor(Tensor) is ambiguous: pass tensor.array for a copy without history")
        self.array = np.asarray(array)
        if self.array.dtype.kind not in "biufc":  # bool, int, uint, float, complex
            raise TypeError(
                f"Tensor needs numeric data (numbers or a numeric array), got dtype {self.array.dtype} "
                f"from {type(array).__name__}"
            )
        self.requires_grad = bool(requires_grad)
        self.grad: Tensor | None = None
        self.recipe: Recipe | None = None

    # --- basic information ------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        """The shape of the underlying array."""
        return self.array.shape

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return self.array.ndim

    @property
    def dtype(self) -> np.dtype:
        """The NumPy dtype of the underlying array."""
        return self.array.dtype

    @property
    def is_leaf(self) -> bool:
        """True unless this tensor was made by a recorded operation (as in torch)."""
        return self.recipe is None or not self.recipe.parents

    def __len__(self) -> int:
        return len(self.array)

    def __repr__(self) -> str:
        return f"Tensor({self.array!r}, requires_grad={self.requires_grad})"

    def item(self) -> float:
        """The value of a one-element tensor as a Python number."""
        if self.array.size != 1:
            raise ValueError(f"item() needs a tensor with one element, got shape {self.shape}")
        return self.array.item()

    def numpy(self) -> np.ndarray:
        """The underlying NumPy array (not a copy)."""
        return self.array

    def __bool__(self) -> bool:
        if self.array.size != 1:
            raise ValueError(f"the truth value of a tensor of shape {self.shape} is ambiguous")
        return bool(self.array)

    # --- autograd -------------------------------------------------------------------------------
    def backward(self, end_grad: "np.ndarray | Tensor | None" = None) -> None:
        """Accumulate d(self)/d(leaf), weighted by ``end_grad``, into ``.grad`` of every leaf that requires it.

        Args:
            end_grad: the gradient flowing into ``self``; may be omitted only for a one-element tensor.
        """
        backprop(self, end_grad)

    # Operators are attached by mechlearn.backprop.functional, next to their backward functions.


def topological_sort(node: Tensor, get_children: Callable[[Tensor], list[Tensor]]) -> list[Tensor]:
    """Every tensor reachable from ``node`` through ``get_children``, each after all of its children.

    With ``get_children`` returning a tensor's parents, the leaves come first and ``node`` last.
    Raises ``ValueError`` if the graph has a cycle (which a correct forward pass cannot build,
    but a hand-edited recipe can).
    """
    order: list[Tensor] = []
    done: set[int] = set()
    in_progress: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(node, False)]
    while stack:
        current, expanded = stack.pop()
        if expanded:
            in_progress.discard(id(current))
            done.add(id(current))
            order.append(current)
            continue
        if id(current) in done:
            continue
        if id(current) in in_progress:
            raise ValueError("the computation graph has a cycle: a tensor depends on itself, so there is no order to backprop in")
        in_progress.add(id(current))
        stack.append((current, True))
        for child in get_children(current):
            if id(child) in in_progress:
                raise ValueError(
                    "the computation graph has a cycle: a tensor depends on itself, so there is no order to backprop in"
                )
            if id(child) not in done:
                stack.append((child, False))
    return order


def _parents(t: Tensor) -> list[Tensor]:
    return list(t.recipe.parents.values()) if t.recipe is not None else []


def backprop(end_node: Tensor, end_grad: "np.ndarray | Tensor | None" = None) -> None:
    """The engine: see `Tensor.backward`."""
    if end_grad is None:
        if end_node.array.size != 1:
            raise ValueError(
                f"backward() without an argument needs a one-element output (a loss), got shape {end_node.shape}; "
                "pass end_grad, the gradient flowing into this tensor, with the same shape"
            )
        end_grad = np.ones_like(end_node.array, dtype=np.result_type(end_node.array, np.float32))
    end_grad = end_grad.array if isinstance(end_grad, Tensor) else np.asarray(end_grad)
    if end_grad.shape != end_node.shape:
        raise ValueError(f"end_grad should have the output's shape {end_node.shape}, got {end_grad.shape}")
    if not (end_node.requires_grad or not end_node.is_leaf):
        raise ValueError("backward() on a tensor that does not require grad and has no recorded history")
    grads: dict[int, np.ndarray] = {id(end_node): end_grad}
    for node in reversed(topological_sort(end_node, _parents)):
        grad = grads.pop(id(node), None)
        if grad is None:  # no path carried a gradient here (e.g. only through non-tensor arguments)
            continue
        if node.is_leaf:
            if node.requires_grad:
                node.grad = Tensor(grad) if node.grad is None else Tensor(node.grad.array + grad)
            continue
        recipe = node.recipe
        for position, parent in recipe.parents.items():
            back_fn = BACK_FUNCS.get_back_func(recipe.func, position)
            # NumPy turns 0-d results into scalars; keep gradients arrays so back functions see one type.
            in_grad = np.asarray(back_fn(grad, node.array, *recipe.args, **recipe.kwargs))
            if np.shape(in_grad) != parent.shape:
                raise RuntimeError(
                    f"backward function {back_fn.__name__} returned shape {np.shape(in_grad)} for an input of shape "
                    f"{parent.shape}: a missing unbroadcast?"
                )
            grads[id(parent)] = np.asarray(grads[id(parent)] + in_grad) if id(parent) in grads else in_grad


def wrap_forward_fn(numpy_func: Callable[..., Any], is_differentiable: bool = True) -> Callable[..., Tensor]:
    """Turn a NumPy function into one on tensors that records a ``Recipe`` when gradients are needed.

    Args:
        numpy_func: takes arrays (and other arguments) and returns an array.
        is_differentiable: False for functions like ``argmax`` or ``==`` whose outputs carry no gradient.
    """

    def tensor_func(*args: Any, **kwargs: Any) -> Tensor:
        arrays = tuple(a.array if isinstance(a, Tensor) else a for a in args)
        out = Tensor(numpy_func(*arrays, **kwargs))
        tracked = {i: a for i, a in enumerate(args) if isinstance(a, Tensor) and (a.requires_grad or not a.is_leaf)}
        if _grad_enabled and is_differentiable and tracked:
            out.requires_grad = True
            out.recipe = Recipe(numpy_func, arrays, kwargs, tracked)
        return out

    tensor_func.__name__ = getattr(numpy_func, "__name__", "tensor_func")
    tensor_func.__doc__ = f"``{tensor_func.__name__}`` on tensors, recording a recipe for backprop."
    return tensor_func
