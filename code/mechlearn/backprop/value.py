"""A scalar autograd engine: the chain rule on a graph of numbers (ARENA 0.4, after micrograd).

Every ``Value`` remembers the values it was computed from (``_prev``) and a closure
(``_backward``) that knows the local derivative of the operation that made it. Calling
``backward()`` on an output visits the graph in reverse topological order, so each node's
gradient is complete (every path from the output has been summed) before it is passed on to
its parents:

    d out / d parent += (d out / d child) * (d child / d parent)

Read the gradient as a *responsibility signal*: ``x.grad`` says how much the output would move
per unit nudge of ``x``, with everything downstream of ``x`` taken into account.

Reference: Andrej Karpathy, *micrograd* (2020); ARENA chapter 0.4, "Build Your Own Backpropagation Framework".
"""

from __future__ import annotations

import math
from numbers import Real
from collections.abc import Callable, Iterable

__all__ = ["Value", "topological_order"]


def _check_number(x: object, what: str) -> float:
    if isinstance(x, bool) or not isinstance(x, Real):
        raise TypeError(f"{what} should be a real number (int or float), got {type(x).__name__} {x!r}")
    return float(x)


class Value:
    """A real number that records how it was computed, so that gradients can flow back to it.

    Args:
        data: the number.
        label: an optional name, shown in graph drawings.

    Attributes:
        data: the number.
        grad: d(output)/d(self) after the last ``output.backward()``; 0.0 before.
    """

    __slots__ = ("data", "grad", "label", "op", "_prev", "_backward")

    def __init__(self, data: Real, label: str = "", _prev: tuple["Value", ...] = (), op: str = "") -> None:
        self.data = _check_number(data, "Value data")
        self.grad = 0.0
        self.label = label
        self.op = op
        self._prev = _prev
        self._backward: Callable[[], None] = lambda: None

    def __repr__(self) -> str:
        name = f"{self.label}=" if self.label else ""
        return f"Value({name}{self.data:.6g}, grad={self.grad:.6g})"

    @staticmethod
    def _lift(other: "Value | Real") -> "Value":
        return other if isinstance(other, Value) else Value(_check_number(other, "the other operand"))

    # Each operation sets its own backward beside its forward: the local chain rule in one place.

    def __add__(self, other: "Value | Real") -> "Value":
        other = self._lift(other)
        out = Value(self.data + other.data, _prev=(self, other), op="+")

        def _backward() -> None:  # d(a+b)/da = d(a+b)/db = 1
            self.grad += out.grad
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other: "Value | Real") -> "Value":
        other = self._lift(other)
        out = Value(self.data * other.data, _prev=(self, other), op="*")

        def _backward() -> None:  # d(ab)/da = b, d(ab)/db = a
            self.grad += other.data * out.grad
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def __pow__(self, exponent: Real) -> "Value":
        if isinstance(exponent, Value):
            raise TypeError("Value ** Value is not supported: the exponent must be a plain number (use exp/log)")
        k = _check_number(exponent, "the exponent")
        if self.data == 0 and k < 1:
            raise ZeroDivisionError(f"0 ** {k:g} has no finite derivative")
        if self.data < 0 and not k.is_integer():
            raise ValueError(f"a negative base ({self.data:g}) to a non-integer power ({k:g}) is not real")
        out = Value(self.data**k, _prev=(self,), op=f"**{k:g}")

        def _backward() -> None:  # d(x^k)/dx = k x^(k-1)
            self.grad += k * self.data ** (k - 1) * out.grad

        out._backward = _backward
        return out

    def exp(self) -> "Value":
        """``e ** self``; overflow raises ``OverflowError`` naming the input."""
        try:
            e = math.exp(self.data)
        except OverflowError:
            raise OverflowError(f"exp({self.data:g}) overflows a float64") from None
        out = Value(e, _prev=(self,), op="exp")

        def _backward() -> None:  # d(e^x)/dx = e^x, which is out.data itself
            self.grad += out.data * out.grad

        out._backward = _backward
        return out

    def log(self) -> "Value":
        """The natural logarithm; a non-positive input raises ``ValueError``."""
        if self.data <= 0:
            raise ValueError(f"log expects a positive input, got {self.data:g}")
        out = Value(math.log(self.data), _prev=(self,), op="log")

        def _backward() -> None:  # d(log x)/dx = 1/x
            self.grad += out.grad / self.data

        out._backward = _backward
        return out

    def tanh(self) -> "Value":
        """The hyperbolic tangent, with derivative ``1 - tanh²``."""
        t = math.tanh(self.data)
        out = Value(t, _prev=(self,), op="tanh")

        def _backward() -> None:  # d tanh(x)/dx = 1 - tanh(x)^2
            self.grad += (1.0 - t * t) * out.grad

        out._backward = _backward
        return out

    def sigmoid(self) -> "Value":
        """``1 / (1 + e^-x)``, computed without overflow, with derivative ``σ(1 - σ)``."""
        # Two branches so that exp never overflows: sigma(x) = 1/(1+e^-x) = e^x/(1+e^x).
        x = self.data
        s = 1.0 / (1.0 + math.exp(-x)) if x >= 0 else math.exp(x) / (1.0 + math.exp(x))
        out = Value(s, _prev=(self,), op="σ")

        def _backward() -> None:  # d sigma/dx = sigma (1 - sigma)
            self.grad += s * (1.0 - s) * out.grad

        out._backward = _backward
        return out

    def relu(self) -> "Value":
        """``max(self, 0)``, with derivative 1 for positive inputs and 0 otherwise."""
        out = Value(max(self.data, 0.0), _prev=(self,), op="relu")

        def _backward() -> None:  # the subgradient at 0 is taken to be 0, as torch does
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad

        out._backward = _backward
        return out

    # Everything else is built from the primitives above, so it needs no backward of its own.
    def __neg__(self) -> "Value":
        return self * -1.0

    def __sub__(self, other: "Value | Real") -> "Value":
        return self + (-self._lift(other))

    def __truediv__(self, other: "Value | Real") -> "Value":
        other = self._lift(other)
        if other.data == 0:
            raise ZeroDivisionError("division by a Value whose data is 0")
        return self * other**-1

    def __radd__(self, other: Real) -> "Value":
        return self + other

    def __rsub__(self, other: Real) -> "Value":
        return self._lift(other) - self

    def __rmul__(self, other: Real) -> "Value":
        return self * other

    def __rtruediv__(self, other: Real) -> "Value":
        return self._lift(other) / self

    def backward(self) -> None:
        """Fill ``.grad`` of every node in this graph with d(self)/d(node).

        Gradients are reset to zero first, so calling ``backward`` twice gives the same result
        (unlike micrograd, which accumulates across calls).
        """
        order = topological_order(self)
        for node in order:
            node.grad = 0.0
        self.grad = 1.0
        for node in reversed(order):
            node._backward()


def topological_order(root: Value) -> list[Value]:
    """Every node that ``root`` depends on, each after all of its parents (``root`` last).

    Iterative depth-first search, so deep graphs do not hit Python's recursion limit.
    """
    if not isinstance(root, Value):
        raise TypeError(f"topological_order expects a Value, got {type(root).__name__}")
    order: list[Value] = []
    visited: set[int] = set()
    stack: list[tuple[Value, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        if children_done:
            order.append(node)
            continue
        if id(node) in visited:
            continue
        visited.add(id(node))
        stack.append((node, True))
        stack.extend((p, False) for p in node._prev if id(p) not in visited)
    return order


def leaves(root: Value) -> Iterable[Value]:
    """The inputs of the graph: nodes that were not computed from anything."""
    return [n for n in topological_order(root) if not n._prev]
