"""Modules, parameters, a loss and an optimiser on our own `Tensor` engine (ARENA 0.4, part 5).

The same small interface as ``torch.nn``, so that weights move between the two by name:
``Linear`` stores ``weight`` with shape ``(out_features, in_features)`` and ``bias`` with shape
``(out_features,)``, and ``Module.state_dict()`` uses torch's dotted names (``layers.0.weight``).
A ``Parameter`` is a leaf tensor that requires gradients; a ``Module`` finds its parameters by
looking through its attributes, recursively, in the order they were assigned.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from mechlearn.backprop import functional as F
from mechlearn.backprop.tensor import Tensor, no_grad

__all__ = ["Parameter", "Module", "Linear", "ReLU", "Tanh", "Sequential", "MLP", "cross_entropy", "SGD", "train_classifier", "accuracy"]


class Parameter(Tensor):
    """A leaf tensor that requires gradients and is registered by the `Module` that holds it."""

    def __init__(self, tensor: Tensor | np.ndarray, requires_grad: bool = True) -> None:
        super().__init__(tensor.array if isinstance(tensor, Tensor) else tensor, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.shape}, dtype={self.dtype})"


class Module:
    """Base class: assign `Parameter` and `Module` attributes in ``__init__``; define ``forward``."""

    def __init__(self) -> None:
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "_parameters", {})

    def __setattr__(self, name: str, value: Any) -> None:
        if "_modules" not in self.__dict__:
            raise AttributeError(f"call super().__init__() in {type(self).__name__}.__init__ before assigning attributes")
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def named_parameters(self, prefix: str = "") -> Iterator[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs of this module and, with dotted prefixes, of its submodules."""
        for name, p in self._parameters.items():
            yield prefix + name, p
        for name, m in self._modules.items():
            yield from m.named_parameters(prefix + name + ".")

    def parameters(self) -> Iterator[Parameter]:
        """Every parameter of this module and its submodules."""
        return (p for _, p in self.named_parameters())

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{dotted name: array copy}``, with the same names torch gives the same architecture."""
        return {name: p.array.copy() for name, p in self.named_parameters()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Copy arrays (or torch tensors) into the parameters; names and shapes must match exactly."""
        own = dict(self.named_parameters())
        if set(state) != set(own):
            raise KeyError(f"state dict keys differ: missing {sorted(set(own) - set(state))}, unexpected {sorted(set(state) - set(own))}")
        for name, value in state.items():
            array = value.detach().cpu().numpy() if hasattr(value, "detach") else np.asarray(value)
            if array.shape != own[name].shape:
                raise ValueError(f"{name}: expected shape {own[name].shape}, got {array.shape}")
            own[name].array = array.astype(own[name].dtype, copy=True)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """The computation of the module; subclasses define it (``module(x)`` calls it)."""
        raise NotImplementedError(f"{type(self).__name__} must define forward()")

    def __repr__(self) -> str:
        inner = "".join(f"\n  ({name}): " + repr(m).replace("\n", "\n  ") for name, m in self._modules.items())
        return f"{type(self).__name__}({self.extra_repr()}{inner}{chr(10) if inner else ''})"

    def extra_repr(self) -> str:
        """Extra text for this module's line in ``repr`` (sizes and options); empty by default."""
        return ""


class Linear(Module):
    """``y = x W^T + b`` with torch's layout and torch's default initialisation bounds.

    Args:
        in_features, out_features: sizes of the input and output.
        bias: whether to add a bias.
        rng: the generator for the initial weights (uniform in ``±1/sqrt(in_features)``).
        dtype: the parameters' dtype (float64 for exact comparisons with torch).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, *, rng: np.random.Generator,
                 dtype: Any = np.float64) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(f"Linear needs positive sizes, got {in_features} → {out_features}")
        self.in_features, self.out_features = in_features, out_features
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, size=(out_features, in_features)).astype(dtype))
        self.bias = Parameter(rng.uniform(-bound, bound, size=(out_features,)).astype(dtype)) if bias else None

    def forward(self, x: Tensor) -> Tensor:
        """``x @ weight.T + bias`` over the last axis of ``x``."""
        if not isinstance(x, Tensor):
            raise TypeError(f"Linear expects a mechlearn Tensor, got {type(x).__name__}")
        if x.ndim == 0 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear expects inputs with last axis {self.in_features}, got shape {x.shape}")
        out = x @ self.weight.T
        return out + self.bias if self.bias is not None else out

    def extra_repr(self) -> str:
        """Sizes and whether there is a bias, as ``torch.nn.Linear`` prints them."""
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"


class ReLU(Module):
    """``max(x, 0)`` elementwise, as a module."""
    def forward(self, x: Tensor) -> Tensor:
        """``max(x, 0)`` elementwise."""
        return F.relu(x)


class Tanh(Module):
    """``tanh(x)`` elementwise, as a module."""
    def forward(self, x: Tensor) -> Tensor:
        """``tanh(x)`` elementwise."""
        return F.tanh(x)


class Sequential(Module):
    """Apply modules in order; their parameters are named ``0.weight``, ``1.weight``, ... as in torch."""

    def __init__(self, *modules: Module) -> None:
        super().__init__()
        for i, m in enumerate(modules):
            setattr(self, str(i), m)

    def forward(self, x: Tensor) -> Tensor:
        """Apply each submodule in order."""
        for m in self._modules.values():
            x = m(x)
        return x


_ACTIVATIONS = {"relu": ReLU, "tanh": Tanh}


class MLP(Module):
    """Linear → activation → ... → Linear, with parameters ``layers.0.weight``, ``layers.2.weight``, ...

    Args:
        sizes: widths from input to output, e.g. ``(64, 128, 128, 10)``.
        rng: the generator for the initial weights.
        dtype: the parameters' dtype.
        activation: ``"relu"`` or ``"tanh"``.
    """

    def __init__(self, sizes: Iterable[int], *, rng: np.random.Generator, dtype: Any = np.float64,
                 activation: str = "relu") -> None:
        super().__init__()
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"an MLP needs at least input and output sizes, got {sizes}")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation should be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
        layers: list[Module] = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(Linear(a, b, rng=rng, dtype=dtype))
            if i < len(sizes) - 2:
                layers.append(_ACTIVATIONS[activation]())
        self.sizes = sizes
        self.activation = activation
        self.layers = Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Logits of shape ``(batch, sizes[-1])`` for inputs of shape ``(batch, sizes[0])``."""
        return self.layers(x)

    def to_torch(self) -> Any:
        """The same network as a ``torch.nn.Module`` (float64), with the same parameter names and a copy of the weights."""
        import torch

        layers: list[Any] = []
        for i, (a, b) in enumerate(zip(self.sizes[:-1], self.sizes[1:])):
            layers.append(torch.nn.Linear(a, b, dtype=torch.float64))
            if i < len(self.sizes) - 2:
                layers.append(torch.nn.ReLU() if self.activation == "relu" else torch.nn.Tanh())
        model = torch.nn.Module()
        model.layers = torch.nn.Sequential(*layers)
        model.forward = model.layers.forward  # type: ignore[method-assign]
        model.load_state_dict({k: torch.tensor(v) for k, v in self.state_dict().items()})
        return model


def cross_entropy(logits: Tensor, targets: Any) -> Tensor:
    """Mean cross-entropy of integer ``targets`` under ``logits`` of shape ``(batch, n_classes)``.

    Built from differentiable pieces: the max is subtracted as a constant (it does not change
    the result, only prevents overflow), so the engine's backward pass gives (softmax − onehot)/N.
    """
    t = np.asarray(targets.array if isinstance(targets, Tensor) else targets)
    if not isinstance(logits, Tensor) or logits.dtype.kind != "f":
        raise TypeError(f"logits should be a floating-point mechlearn Tensor, got {getattr(logits, 'dtype', type(logits).__name__)}")
    if logits.ndim != 2:
        raise ValueError(f"logits should have shape (batch, n_classes), got {logits.shape}")
    if not np.issubdtype(t.dtype, np.integer) or t.shape != (logits.shape[0],):
        raise ValueError(f"targets should be {logits.shape[0]} integer class indices, got dtype {t.dtype} shape {t.shape}")
    if t.size == 0:
        raise ValueError("cross-entropy of an empty batch is undefined (the mean of nothing)")
    if t.min() < 0 or t.max() >= logits.shape[1]:
        raise ValueError(f"targets should be in [0, {logits.shape[1]}), got values from {t.min()} to {t.max()}")
    shifted = logits - logits.array.max(axis=-1, keepdims=True)
    log_probs = shifted - F.log(F.exp(shifted).sum(-1, keepdim=True))
    return -log_probs[np.arange(len(t)), t].mean()


class SGD:
    """Plain stochastic gradient descent: ``p -= lr * p.grad`` (momentum and friends come on Day 10)."""

    def __init__(self, params: Iterable[Parameter], lr: float) -> None:
        if isinstance(params, Tensor) or not isinstance(params, Iterable):
            # A bare tensor is iterable (over its rows), so list() would silently update copies of them.
            raise TypeError(
                f"params should be an iterable of tensors (e.g. model.parameters() or [tensor]), got {type(params).__name__}"
            )
        self.params = list(params)
        if not self.params:
            raise ValueError("SGD got an empty parameter list")
        for p in self.params:
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"parameters should be mechlearn Tensors that require grad, got {type(p).__name__}")
        if not 0 < lr < float("inf"):
            raise ValueError(f"lr should be positive and finite, got {lr}")
        self.lr = lr

    def zero_grad(self) -> None:
        """Forget the gradients (``backward`` accumulates into ``.grad``)."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update every parameter that has a gradient: ``p -= lr * p.grad``."""
        with no_grad():
            for p in self.params:
                if p.grad is not None:
                    p.array -= self.lr * p.grad.array


def train_classifier(
    model: Module,
    x: np.ndarray,
    y: np.ndarray,
    *,
    lr: float,
    epochs: int,
    batch_size: int,
    rng: np.random.Generator,
) -> list[dict[str, int | float]]:
    """Minibatch SGD on cross-entropy with our engine; returns one ``{"step", "epoch", "loss"}`` per step."""
    from mechlearn.data import minibatch_indices

    opt = SGD(model.parameters(), lr=lr)
    history = []
    step = 0
    for epoch in range(epochs):
        for idx in minibatch_indices(len(y), batch_size, rng):
            loss = cross_entropy(model(Tensor(x[idx])), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            history.append({"step": step, "epoch": epoch, "loss": loss.item()})
            step += 1
    return history


def accuracy(model: Module, x: np.ndarray, y: np.ndarray) -> float:
    """The share of examples whose largest logit is the true class (computed without recording)."""
    if len(y) == 0:
        raise ValueError("accuracy of an empty batch is undefined (the mean of nothing)")
    with no_grad():
        return float((model(Tensor(x)).array.argmax(-1) == y).mean())
