"""Part II, transformers: a GPT-2-style model from scratch that matches TransformerLens (ARENA 1.1, 1.2).

    config      GPTConfig, with the closed-form parameter count
    tokenizer   character and byte-pair tokenisers trained on CPython's ``pydoc_data`` text
    attention   causal multi-head self-attention
    model       embeddings, LayerNorm, MLP, blocks, the GPT
    hooks       HookPoint, run-with-cache, run-with-hooks
    kv_cache    the key-value cache for generation
    sampling    greedy, temperature, top-k, top-p, frequency penalty, beam search
    training    the training loop (`train`) and the character-level recipe with its committed checkpoint
    interop     weights to and from a TransformerLens model, and to Hugging Face's GPT-2, built offline
    lens        the logit lens
    scaling     a tiny scaling experiment

Importing it imports torch (TransformerLens only when `interop` is used).
"""

from mechlearn._optional import require

require("torch", "mechlearn.gpt", extra="gpt")  # before the submodules, so a missing torch names its extra

from mechlearn.gpt.config import ACT_FNS, GPTConfig
from mechlearn.gpt.hooks import ActivationCache, HookedRootModule, HookPoint
from mechlearn.gpt.kv_cache import KVCache
from mechlearn.gpt.attention import Attention
from mechlearn.gpt.model import GPT, MLP, Embed, LayerNorm, PosEmbed, TransformerBlock, Unembed, gelu_new
from mechlearn.gpt.tokenizer import BPETokenizer, CharTokenizer, bytes_per_token, pretokenize, pydoc_text, train_val_split
from mechlearn.gpt.sampling import Beam, beam_search, generate, sample_next, sampling_probs, sequence_logprob
from mechlearn.gpt.training import (
    CHAR_LM_CONFIG, CHAR_LM_TRAIN, TrainConfig, char_lm_data, estimate_loss, get_batch, load_char_lm,
    next_token_loss, ngram_cross_entropy, train, train_char_lm,
)
from mechlearn.gpt.interop import (
    from_transformer_lens, state_dict_from_tl, state_dict_to_tl, to_transformer_lens, to_transformer_lens_config,
    state_dict_to_hf, to_hf_gpt2, to_hf_gpt2_config,
)
from mechlearn.gpt.lens import lens_scores, logit_lens, residual_stack
from mechlearn.gpt.scaling import SCALING_TRAIN, SCALING_WIDTHS, fit_power_law, load_scaling, scaling_recipe, scaling_sweep

__all__ = [
    "ACT_FNS", "GPTConfig", "ActivationCache", "HookedRootModule", "HookPoint", "KVCache", "Attention",
    "GPT", "MLP", "Embed", "LayerNorm", "PosEmbed", "TransformerBlock", "Unembed", "gelu_new",
    "BPETokenizer", "CharTokenizer", "bytes_per_token", "pretokenize", "pydoc_text", "train_val_split",
    "Beam", "beam_search", "generate", "sample_next", "sampling_probs", "sequence_logprob",
    "CHAR_LM_CONFIG", "CHAR_LM_TRAIN", "TrainConfig", "char_lm_data", "estimate_loss", "get_batch",
    "load_char_lm", "next_token_loss", "ngram_cross_entropy", "train", "train_char_lm",
    "from_transformer_lens", "state_dict_from_tl", "state_dict_to_tl", "to_transformer_lens", "to_transformer_lens_config",
    "state_dict_to_hf", "to_hf_gpt2", "to_hf_gpt2_config",
    "lens_scores", "logit_lens", "residual_stack", "fit_power_law", "scaling_sweep", "SCALING_TRAIN", "SCALING_WIDTHS", "load_scaling", "scaling_recipe",
]
