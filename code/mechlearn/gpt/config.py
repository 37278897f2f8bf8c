"""The configuration of a GPT-2-style transformer, with TransformerLens names.

One ``@dataclass`` holds every size (``d_model``, ``n_heads``, ``d_head``, ``d_mlp``,
``n_layers``, ``n_ctx``, ``d_vocab``), named as in TransformerLens's ``HookedTransformerConfig``
so a config moves between the two without translation (`to_transformer_lens_config`).
The parameter count has a closed form (`GPTConfig.n_params`), checked in the tests against
``sum(p.numel() for p in model.parameters())``.

Follows ARENA 1.1 ("Transformer from scratch") and GPT-2 (Radford et al., 2019).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

__all__ = ["GPTConfig", "ACT_FNS"]

ACT_FNS = ("gelu_new", "gelu", "relu")
"""Supported MLP nonlinearities: GPT-2's tanh-approximate GELU, exact GELU, ReLU."""


@dataclass
class GPTConfig:
    """The sizes of a GPT-2-style decoder-only transformer (pre-LayerNorm, learned positions)."""

    d_vocab: int
    """Number of token ids; inputs must lie in ``[0, d_vocab)``."""
    n_ctx: int = 128
    """Longest sequence the model accepts (rows of the positional embedding ``W_pos``)."""
    d_model: int = 128
    """Width of the residual stream."""
    n_layers: int = 4
    """Number of transformer blocks."""
    n_heads: int = 4
    """Attention heads per block."""
    d_head: int | None = None
    """Width of each head's queries, keys and values; defaults to ``d_model // n_heads``."""
    d_mlp: int | None = None
    """Hidden width of each MLP; defaults to ``4 * d_model``."""
    act_fn: str = "gelu_new"
    """MLP nonlinearity, one of `ACT_FNS`."""
    layer_norm_eps: float = 1e-5
    """Added to the variance *inside* the square root, as ``nn.LayerNorm`` does."""
    init_range: float = 0.02
    """Standard deviation of the normal initialisation of weight matrices (GPT-2's value)."""
    attn_only: bool = False
    """Blocks without MLPs (and without their LayerNorm), as TransformerLens's ``attn_only``: the
    2-layer attention-only models of the induction-head work (Elhage et al., 2021)."""

    def __post_init__(self) -> None:
        for name in ("d_vocab", "n_ctx", "d_model", "n_layers", "n_heads"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig.{name} should be a positive int, got {value!r}")
        if self.d_head is None:
            if self.d_model % self.n_heads:
                raise ValueError(
                    f"d_model={self.d_model} is not divisible by n_heads={self.n_heads}; pass d_head explicitly"
                )
            self.d_head = self.d_model // self.n_heads
        if self.d_mlp is None:
            self.d_mlp = 4 * self.d_model
        for name in ("d_head", "d_mlp"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"GPTConfig.{name} should be a positive int, got {value!r}")
        if not isinstance(self.attn_only, bool):
            raise ValueError(f"GPTConfig.attn_only should be a bool, got {self.attn_only!r}")
        if self.act_fn not in ACT_FNS:
            raise ValueError(f"GPTConfig.act_fn should be one of {ACT_FNS}, got {self.act_fn!r}")
        if not self.layer_norm_eps > 0:
            raise ValueError(f"GPTConfig.layer_norm_eps should be > 0, got {self.layer_norm_eps!r}")

    @property
    def n_params(self) -> int:
        """Exact number of parameters, from the shapes.

        ``d_vocab·d_model`` (``W_E``) + ``n_ctx·d_model`` (``W_pos``) + per block
        ``4·n_heads·d_head·d_model + 3·n_heads·d_head + d_model`` (attention weights and biases)
        ``+ 2·d_model·d_mlp + d_mlp + d_model`` (MLP) ``+ 4·d_model`` (two LayerNorms), or just the
        attention and one LayerNorm (``2·d_model``) when ``attn_only``, then ``2·d_model`` (final LayerNorm) + ``d_model·d_vocab + d_vocab`` (``W_U``, ``b_U``).
        """
        d, h, dh, m = self.d_model, self.n_heads, self.d_head, self.d_mlp
        attn = 4 * h * dh * d + 3 * h * dh + d
        mlp = 2 * d * m + m + d
        block = attn + 2 * d if self.attn_only else attn + mlp + 4 * d
        return self.d_vocab * d + self.n_ctx * d + self.n_layers * block + 2 * d + d * self.d_vocab + self.d_vocab

    @property
    def n_params_non_embedding(self) -> int:
        """Parameters outside the embeddings and unembedding: the ``N`` of scaling laws (Kaplan et al., 2020)."""
        return self.n_params - (self.d_vocab * self.d_model + self.n_ctx * self.d_model + self.d_model * self.d_vocab + self.d_vocab)

    def to_dict(self) -> dict[str, Any]:
        """The config as plain data, for manifests and checkpoints."""
        return asdict(self)
