"""The optimiser interface shared by every optimiser here: parameter groups, state, ``zero_grad``, ``step``.

It works on torch tensors, like ``torch.optim``, so the same optimiser trains the models of
later parts (the GPT of Part II is a torch model). Parameter groups let different parameters use
different hyperparameters (say, no weight decay on biases): each group is a dict with ``params``
and any hyperparameters that override the optimiser's defaults.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

__all__ = ["Optimizer"]


class Optimizer:
    """Base class: subclasses set ``defaults`` and implement ``_update(p, grad, group, state)``.

    Args:
        params: tensors, or dicts ``{"params": [...], **overrides}`` (parameter groups).
        defaults: every hyperparameter with its default value.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        if isinstance(params, (torch.Tensor, dict)) or not isinstance(params, Iterable):
            # A bare tensor is iterable (over its rows), so list() would silently optimise views of it.
            raise TypeError(
                "params should be an iterable of tensors or of parameter-group dicts (e.g. model.parameters() "
                f"or [tensor]), got {type(params).__name__}"
            )
        params = list(params)
        if not params:
            raise ValueError("the optimiser got an empty parameter list")
        groups = params if isinstance(params[0], dict) else [{"params": params}]
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = []
        seen: set[int] = set()
        for group in groups:
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError("parameter groups must be dicts with a 'params' list")
            unknown = set(group) - set(defaults) - {"params"}
            if unknown:
                raise ValueError(f"unknown hyperparameters {sorted(unknown)}; this optimiser takes {sorted(defaults)}")
            group = {**defaults, **group, "params": list(group["params"])}
            for p in group["params"]:
                if not isinstance(p, torch.Tensor) or not p.requires_grad:
                    raise TypeError(f"parameters must be torch tensors that require grad, got {type(p).__name__}")
                if not p.is_leaf:
                    raise ValueError("can't optimise a non-leaf tensor (one computed from others): pass the leaf parameters")
                if id(p) in seen:
                    raise ValueError("a parameter appears in more than one group")
                seen.add(id(p))
            self._validate(group)
            self.param_groups.append(group)
        self.state: dict[int, dict[str, Any]] = {}

    def _validate(self, group: dict[str, Any]) -> None:
        if not group["lr"] >= 0:
            raise ValueError(f"lr should be non-negative, got {group['lr']}")
        if not group.get("weight_decay", 0.0) >= 0:
            raise ValueError(f"weight_decay should be non-negative, got {group['weight_decay']}")

    def zero_grad(self) -> None:
        """Forget the gradients (``backward`` accumulates into ``.grad``)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                self._update(p, p.grad, group, self.state.setdefault(id(p), {}))

    def _update(self, p: torch.Tensor, grad: torch.Tensor, group: dict[str, Any], state: dict[str, Any]) -> None:
        raise NotImplementedError
