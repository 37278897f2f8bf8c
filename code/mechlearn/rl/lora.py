"""LoRA: low-rank adapters that fine-tune a frozen weight matrix through a product of two thin ones.

A linear layer ``y = x Wᵀ`` (torch's ``nn.Linear`` stores ``W`` as ``(out, in)``) is fine-tuned by

    W' = W + (alpha / r) · B A,        A: (r, in),  B: (out, r),  r ≪ min(in, out)

with ``W`` frozen and only ``A`` and ``B`` trained. ``B`` starts at zero, so the adapted model
starts as the base model exactly; ``A`` starts random so that the gradient of ``B`` is not zero.
The update ``BA`` has rank at most ``r``: ``r · (in + out)`` trainable numbers instead of
``in · out``. Why that is enough: the weight changes that fine-tuning needs have low "intrinsic
rank" (Hu et al., 2021, measured it on GPT-3); and at inference the product can be *merged*
into ``W`` (``merge``), so an adapted model costs nothing extra, and *unmerged* again to recover
the base model (``unmerge``). ``alpha / r`` keeps the size of the update comparable when ``r``
changes, so a learning rate tuned at one rank carries over.

`LoRALinear` wraps an ``nn.Linear`` with the same ``lora_A``/``lora_B`` layout as Hugging Face's
``peft`` (the tests set peft's adapters to ours and compare outputs). Our GPT
(`mechlearn.gpt`) stores TransformerLens-style parameter tensors, not ``nn.Linear`` layers, and
computes ``x W`` with ``W`` of shape ``(in, out)``, per head for attention (``W_Q: (n_heads,
d_model, d_head)``, ``W_O: (n_heads, d_head, d_model)``). `LoRAParameter` applies the same maths
to such a tensor, ``W ← W + (alpha/r) · rearrange((BA)ᵀ)``, through
``torch.nn.utils.parametrize``, and `add_lora` attaches it to chosen weights of a GPT.

A GPT with adapters on ``W_Q``, ``W_K`` or ``W_V`` cannot use `mechlearn.gpt.generate` (whose
cached fused-QKV weight looks the raw tensors up); sample with `mechlearn.rl.rlhf.rlhf_sample`
or build a plain merged copy with `lora_merged_copy`.

Not an ARENA exercise: ARENA 2.4 fine-tunes all of GPT-2 small. Source: Hu et al., "LoRA:
Low-Rank Adaptation of Large Language Models" (2021); peft's ``LoraLayer`` for the layout.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterable, Iterator
from typing import Any

import einops
import torch
from jaxtyping import Float
from torch import Tensor, nn
from torch.nn.utils import parametrize

__all__ = [
    "LoRALinear",
    "LoRAParameter",
    "LORA_LAYOUTS",
    "add_lora",
    "lora_adapters",
    "lora_state_dict",
    "load_lora_state_dict",
    "merge_lora",
    "unmerge_lora",
    "lora_merged_copy",
    "count_trainable",
]

LORA_LAYOUTS = {
    "W_Q": "d_in (n_heads d_head) -> n_heads d_in d_head",
    "W_K": "d_in (n_heads d_head) -> n_heads d_in d_head",
    "W_V": "d_in (n_heads d_head) -> n_heads d_in d_head",
    "W_O": "(n_heads d_head) d_out -> n_heads d_head d_out",
}
"""How a ``(in, out)`` update maps onto each per-head attention weight of `mechlearn.gpt`; other
weights (``W_in``, ``W_out``, ``W_U``) are already ``(in, out)`` matrices."""


def _check_rank(r: Any, alpha: Any, d_in: int, d_out: int) -> None:
    if isinstance(r, bool) or not isinstance(r, int) or r < 1:
        raise ValueError(f"LoRA rank r must be a positive int, got {r!r}")
    if r > min(d_in, d_out):
        raise ValueError(
            f"LoRA rank r={r} exceeds min(in, out) = {min(d_in, d_out)}: "
            "the update would not be low-rank"
        )
    if (
        isinstance(alpha, bool)
        or not isinstance(alpha, (int, float))
        or not math.isfinite(alpha)
        or alpha <= 0
    ):
        raise ValueError(
            f"LoRA alpha must be a positive finite number, got {alpha!r}"
        )


def _init_A(
    r: int, d_in: int, generator: torch.Generator | None, dtype: torch.dtype
) -> Tensor:
    # peft's default: kaiming_uniform_(a=sqrt(5)), i.e. U(-1/sqrt(in), 1/sqrt(in)),
    # as nn.Linear's own init.
    bound = 1.0 / math.sqrt(d_in)
    return (torch.rand(r, d_in, generator=generator, dtype=dtype) * 2 - 1) * bound


class LoRALinear(nn.Module):
    """An ``nn.Linear`` with a frozen weight plus a trainable low-rank update ``(alpha/r) · B A``."""

    def __init__(
        self,
        base: nn.Module,
        r: int,
        alpha: float | int,
        generator: torch.Generator | None = None,
    ) -> None:
        """Wrap ``base`` (its parameters are frozen); ``lora_A`` is random, ``lora_B`` zero.

        Args:
            base: the layer to adapt.
            r: rank of the update, ``1 <= r <= min(in, out)``.
            alpha: the update is scaled by ``alpha / r``.
            generator: seeds ``lora_A``'s initialisation.
        """
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(
                f"LoRALinear wraps an nn.Linear, got {type(base).__name__}"
            )
        _check_rank(r, alpha, base.in_features, base.out_features)
        self.base, self.r, self.alpha, self.scaling = (
            base,
            r,
            float(alpha),
            alpha / r,
        )
        for p in base.parameters():
            p.requires_grad_(False)
        dtype = base.weight.dtype
        self.lora_A = nn.Parameter(_init_A(r, base.in_features, generator, dtype))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=dtype))
        self.merged = False

    def delta_weight(self) -> Float[Tensor, "d_out d_in"]:
        """The update ``(alpha / r) · B A`` in ``nn.Linear``'s ``(out, in)`` layout."""
        return self.scaling * (self.lora_B @ self.lora_A)

    def forward(
        self, x: Float[Tensor, "*batch d_in"]
    ) -> Float[Tensor, "*batch d_out"]:
        """``base(x) + (alpha/r) · x Aᵀ Bᵀ``; once merged, just ``base(x)``."""
        y = self.base(x)
        if self.merged:
            return y
        # Two thin products (x Aᵀ is (…, r)) instead of forming the (out, in) BA.
        return y + self.scaling * ((x @ self.lora_A.T) @ self.lora_B.T)

    @torch.no_grad()
    def merge(self) -> None:
        """Add the update into the weight, ``W ← W + (alpha/r) · B A``; forward skips it then."""
        if self.merged:
            raise RuntimeError("this LoRALinear is already merged; unmerge() first")
        self.base.weight += self.delta_weight()
        self.merged = True

    @torch.no_grad()
    def unmerge(self) -> None:
        """Subtract the update again, ``W ← W - (alpha/r) · B A`` (W up to one rounding)."""
        if not self.merged:
            raise RuntimeError("this LoRALinear is not merged")
        self.base.weight -= self.delta_weight()
        self.merged = False


class LoRAParameter(nn.Module):
    """LoRA on a weight tensor used as ``x W`` (``(in, out)`` or per head): a parametrization.

    Registered with ``torch.nn.utils.parametrize.register_parametrization(module, name,
    lora)``, reading ``module.<name>`` returns ``W + (alpha/r) · rearrange((B A)ᵀ)`` while
    the frozen original lives in ``module.parametrizations.<name>.original``.
    """

    def __init__(
        self,
        weight: Tensor,
        name: str,
        r: int,
        alpha: float | int,
        generator: torch.Generator | None = None,
    ) -> None:
        """Adapters for ``weight``; its shape and ``name`` fix the layout (`LORA_LAYOUTS`)."""
        super().__init__()
        self.name = name.rsplit(".", 1)[-1]
        self.pattern = LORA_LAYOUTS.get(self.name)
        if self.pattern is None:
            if weight.ndim != 2:
                raise ValueError(
                    f"LoRA needs an (in, out) matrix or one of {sorted(LORA_LAYOUTS)}, "
                    f"got {name} of shape {tuple(weight.shape)}"
                )
            d_in, d_out = weight.shape
            self.sizes: dict[str, int] = {}
        else:
            if weight.ndim != 3:
                raise ValueError(
                    f"{name} should be (n_heads, ·, ·) for LoRA, "
                    f"got shape {tuple(weight.shape)}"
                )
            h, a, b = weight.shape
            if self.pattern.startswith(
                "d_in"
            ):  # W_Q, W_K, W_V: (n_heads, d_model, d_head)
                d_in, d_out, self.sizes = a, h * b, {"n_heads": h, "d_head": b}
            else:  # W_O: (n_heads, d_head, d_model)
                d_in, d_out, self.sizes = h * a, b, {"n_heads": h, "d_head": a}
        _check_rank(r, alpha, d_in, d_out)
        self.r, self.alpha, self.scaling = r, float(alpha), alpha / r
        self.lora_A = nn.Parameter(_init_A(r, d_in, generator, weight.dtype))
        self.lora_B = nn.Parameter(torch.zeros(d_out, r, dtype=weight.dtype))
        self.merged = False

    def delta(self) -> Tensor:
        """The update ``(alpha/r) · (B A)ᵀ`` in the weight's own layout."""
        update = (
            self.scaling * (self.lora_B @ self.lora_A).T
        )  # (in, out): x W convention
        return (
            update
            if self.pattern is None
            else einops.rearrange(update, self.pattern, **self.sizes)
        )

    def forward(self, W: Tensor) -> Tensor:
        """The adapted weight ``W + delta()`` (just ``W`` once merged into it)."""
        return W if self.merged else W + self.delta()

    @torch.no_grad()
    def merge(self, original: Tensor) -> None:
        """Add ``delta()`` into ``original`` (the frozen tensor it parametrizes) in place."""
        if self.merged:
            raise RuntimeError(f"the LoRA adapter on {self.name} is already merged")
        original += self.delta()
        self.merged = True

    @torch.no_grad()
    def unmerge(self, original: Tensor) -> None:
        """Subtract ``delta()`` from ``original`` in place again."""
        if not self.merged:
            raise RuntimeError(f"the LoRA adapter on {self.name} is not merged")
        original -= self.delta()
        self.merged = False


def add_lora(
    model: nn.Module,
    targets: Iterable[str],
    r: int,
    alpha: float | int,
    generator: torch.Generator | None = None,
) -> list[str]:
    """Freeze every parameter of ``model`` and attach a `LoRAParameter` to each targeted weight.

    Args:
        model: e.g. a `mechlearn.gpt.GPT`; changed in place.
        targets: parameter-name suffixes such as ``"attn.W_Q"`` or ``"mlp.W_in"``; each must match
            at least one parameter (``blocks.0.attn.W_Q``, ``blocks.1.attn.W_Q``...).
        r, alpha: rank and scale of every adapter.
        generator: seeds the ``lora_A`` initialisations (in parameter order).

    Returns:
        The full names of the adapted parameters.

    Raises:
        ValueError: a target matches no parameter, or names one that already has an adapter.
    """
    targets = list(targets)
    if not targets or not all(isinstance(t, str) and t for t in targets):
        raise ValueError(
            f"targets should be a non-empty list of parameter-name suffixes, got {targets!r}"
        )
    if any(True for _ in lora_adapters(model)):
        raise ValueError("model already has LoRA adapters")
    names = [n for n, _ in model.named_parameters()]
    chosen = [
        n for n in names if any(n == t or n.endswith("." + t) for t in targets)
    ]
    for t in targets:
        if not any(n == t or n.endswith("." + t) for n in chosen):
            raise ValueError(
                f"LoRA target {t!r} matches no parameter; weights look like {names[:6]}"
            )
    for p in model.parameters():
        p.requires_grad_(False)
    for full in chosen:
        owner_name, _, attr = full.rpartition(".")
        owner = model.get_submodule(owner_name)
        weight = getattr(owner, attr)
        parametrize.register_parametrization(
            owner,
            attr,
            LoRAParameter(weight, full, r, alpha, generator),
            unsafe=False,
        )
    return chosen


def lora_adapters(model: nn.Module) -> Iterator[tuple[str, LoRAParameter, Tensor]]:
    """``(parameter name, adapter, frozen original)`` for every `LoRAParameter` in ``model``."""
    for mod_name, module in model.named_modules():
        if not parametrize.is_parametrized(module):
            continue
        for attr, plist in module.parametrizations.items():
            for p in plist:
                if isinstance(p, LoRAParameter):
                    yield (
                        f"{mod_name}.{attr}" if mod_name else attr
                    ), p, plist.original


def lora_state_dict(model: nn.Module) -> dict[str, Tensor]:
    """The adapters' weights only (``<param>.lora_A``, ``<param>.lora_B``): what a LoRA checkpoint stores."""
    out = {}
    for name, lora, _ in lora_adapters(model):
        out[f"{name}.lora_A"] = lora.lora_A.detach().clone()
        out[f"{name}.lora_B"] = lora.lora_B.detach().clone()
    return out


@torch.no_grad()
def load_lora_state_dict(model: nn.Module, state: dict[str, Tensor]) -> None:
    """Copy adapter weights saved by `lora_state_dict` into ``model``'s adapters (same names and shapes)."""
    adapters = {name: lora for name, lora, _ in lora_adapters(model)}
    expected = {f"{n}.lora_{w}" for n in adapters for w in "AB"}
    if set(state) != expected:
        raise ValueError(
            f"adapter names differ: missing {sorted(expected - set(state))[:4]}, "
            f"unexpected {sorted(set(state) - expected)[:4]}"
        )
    for key, value in state.items():
        name, _, which = key.rpartition(".")
        getattr(adapters[name], which).copy_(value)


def merge_lora(model: nn.Module) -> None:
    """Merge every adapter of ``model`` into its frozen weight (`LoRAParameter.merge`)."""
    for _, lora, original in lora_adapters(model):
        lora.merge(original)


def unmerge_lora(model: nn.Module) -> None:
    """Undo `merge_lora`."""
    for _, lora, original in lora_adapters(model):
        lora.unmerge(original)


def lora_merged_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` with every adapter folded into its weight and no parametrization left.

    The copy is a plain model again (``mechlearn.gpt.generate``, hooks and ``save`` work as on the base).
    """
    merged = copy.deepcopy(model)
    for module in list(merged.modules()):
        if parametrize.is_parametrized(module):
            # deepcopy keeps the *class* that parametrize made for the original module, and
            # removing a parametrization deletes its property from that class: give the
            # copy a class of its own first.
            cls = type(module)
            module.__class__ = type(cls.__name__, cls.__bases__, dict(cls.__dict__))
            for attr in list(module.parametrizations):
                parametrize.remove_parametrizations(
                    module, attr, leave_parametrized=True
                )
    return merged


def count_trainable(model: nn.Module) -> int:
    """Number of parameters with ``requires_grad`` (the adapters, after `add_lora`)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
