"""Hooks from scratch: `HookPoint`, run-with-cache and run-with-hooks.

A hook point is an identity layer placed at an interesting activation (``hook_q``,
``hook_pattern``, ``hook_resid_post``...). By itself it does nothing; attaching a function to
it lets us *read* the activation (caching) or *replace* it (intervening) without touching
the model's code. This is the idea behind TransformerLens's ``hook_points.py``, rebuilt on
torch's own forward hooks: a hook function has the TransformerLens signature
``fn(activation, hook) -> new activation or None``.

Two promises, both tested:

* a cache built with hooks holds exactly the tensors a manual forward pass computes;
* hooks are removed after use even when the forward pass (or the hook) raises, so a failed
  experiment cannot leave a model silently modified.

Follows ARENA 1.2 ("Intro to mechanistic interpretability": hooks).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.modules import module as _torch_module

__all__ = ["HookPoint", "HookedRootModule", "HookFn", "ActivationCache"]

HookFn = Callable[[Tensor, "HookPoint"], Tensor | None]
"""A hook: called as ``fn(activation, hook_point)``; a tensor it returns replaces the activation, None keeps it."""
"""``fn(activation, hook)``: return a tensor to replace the activation, or None to leave it."""


class HookPoint(nn.Module):
    """An identity layer that hook functions can be attached to; its ``name`` is set by the root module."""

    def __init__(self) -> None:
        super().__init__()
        self.name: str | None = None
        self._handles: list[torch.utils.hooks.RemovableHandle] = []

    def add_hook(self, fn: HookFn) -> torch.utils.hooks.RemovableHandle:
        """Call ``fn(activation, self)`` whenever an activation passes; a returned tensor replaces it.

        Returns the handle, whose ``remove()`` detaches just this hook.
        """
        if not callable(fn):
            raise TypeError(f"a hook should be callable as fn(activation, hook), got {type(fn).__name__}")

        def forward_hook(module: nn.Module, inputs: Any, output: Tensor) -> Tensor | None:
            return fn(output, self)

        handle = self.register_forward_hook(forward_hook)
        self._handles.append(handle)
        return handle

    def remove_hooks(self) -> None:
        """Detach every hook from this point."""
        for handle in self._handles:
            handle.remove()
        self._handles = []

    @property
    def n_hooks(self) -> int:
        """How many hooks are attached now (however they were removed, by handle or by `remove_hooks`)."""
        return len(self._forward_hooks)

    def forward(self, x: Tensor) -> Tensor:
        """The identity: the point where hooks read or replace the activation."""
        return x

    def __call__(self, x: Tensor) -> Tensor:
        # With nothing attached a hook point is free: skip nn.Module's call machinery, which costs
        # microseconds per call and adds up over ~70 hook points during token-by-token generation.
        if not self._forward_hooks and not _global_forward_hooks_present():
            return x
        return super().__call__(x)

    def extra_repr(self) -> str:
        """The hook point's name in the model."""
        return f"name={self.name!r}"


def _global_forward_hooks_present() -> bool:
    return bool(_torch_module._global_forward_hooks)


class ActivationCache(dict):
    """A ``dict`` from hook name to activation, with TransformerLens-style shorthand lookup.

    ``cache["pattern", 0]`` means ``cache["blocks.0.attn.hook_pattern"]`` and
    ``cache["resid_post", 1]`` means ``cache["blocks.1.hook_resid_post"]``.
    """

    _ATTN = {"q", "k", "v", "z", "attn_scores", "pattern"}
    _MLP = {"pre", "post"}

    def __getitem__(self, key: str | tuple[str, int]) -> Tensor:
        if isinstance(key, tuple):
            short, layer = key
            if short in self._ATTN:
                key = f"blocks.{layer}.attn.hook_{short}"
            elif short in self._MLP:
                key = f"blocks.{layer}.mlp.hook_{short}"
            else:
                key = f"blocks.{layer}.hook_{short}"
        if key not in self:
            raise KeyError(f"no activation named {key!r} in the cache; cached names include {sorted(self)[:6]}...")
        return super().__getitem__(key)


class HookedRootModule(nn.Module):
    """A module whose `HookPoint` submodules are named by their path and can be hooked by name.

    Subclasses call `setup_hooks` at the end of ``__init__``.
    """

    hook_dict: dict[str, HookPoint]

    def setup_hooks(self) -> None:
        """Name every `HookPoint` by its attribute path, e.g. ``blocks.0.attn.hook_pattern``."""
        self.hook_dict = {}
        for name, module in self.named_modules():
            if isinstance(module, HookPoint):
                module.name = name
                self.hook_dict[name] = module

    def reset_hooks(self) -> None:
        """Remove every hook from every hook point."""
        for hp in self.hook_dict.values():
            hp.remove_hooks()

    def _resolve(self, name: str | Callable[[str], bool]) -> list[HookPoint]:
        if callable(name):
            return [hp for n, hp in self.hook_dict.items() if name(n)]
        if name not in self.hook_dict:
            close = [n for n in self.hook_dict if name.split(".")[-1] in n][:4]
            raise KeyError(f"no hook point named {name!r}; similar names: {close or list(self.hook_dict)[:4]}")
        return [self.hook_dict[name]]

    @contextmanager
    def hooks(self, fwd_hooks: Iterable[tuple[str | Callable[[str], bool], HookFn]]) -> Iterator["HookedRootModule"]:
        """Attach ``(name or name filter, fn)`` pairs for the duration of a ``with`` block.

        The hooks are removed on exit, also when the block raises.
        """
        attached: list[tuple[HookPoint, torch.utils.hooks.RemovableHandle]] = []
        try:
            for name, fn in fwd_hooks:
                for hp in self._resolve(name):
                    attached.append((hp, hp.add_hook(fn)))
            yield self
        finally:
            for hp, handle in attached:  # only the hooks this block added
                handle.remove()
                hp._handles.remove(handle)

    def run_with_hooks(self, *args: Any, fwd_hooks: Iterable[tuple[str | Callable[[str], bool], HookFn]] = (), **kwargs: Any) -> Any:
        """Run the forward pass with temporary hooks; they are removed afterwards, even on error."""
        with self.hooks(list(fwd_hooks)):
            return self(*args, **kwargs)

    def run_with_cache(
        self, *args: Any, names_filter: str | Iterable[str] | Callable[[str], bool] | None = None, **kwargs: Any
    ) -> tuple[Any, ActivationCache]:
        """Run the forward pass and return ``(output, cache)`` with every (or every selected) activation.

        Args:
            names_filter: None for every hook point, a name, a list of names, or a predicate on names.
        """
        if names_filter is None:
            keep: Callable[[str], bool] = lambda name: True
        elif isinstance(names_filter, str):
            self._resolve(names_filter)
            keep = lambda name: name == names_filter
        elif callable(names_filter):
            keep = names_filter
        else:
            wanted = set(names_filter)
            for name in wanted:
                self._resolve(name)
            keep = lambda name: name in wanted
        cache = ActivationCache()
        save: HookFn = lambda act, hook: cache.__setitem__(hook.name, act.detach())
        output = self.run_with_hooks(*args, fwd_hooks=[(keep, save)], **kwargs)
        return output, cache
