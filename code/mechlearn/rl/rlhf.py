"""RLHF on our character-level GPT: a value head, a programmatic reward, the KL penalty, PPO with LoRA.

Reinforcement learning from human feedback (Ziegler et al., 2019; Ouyang et al., 2022) fine-tunes
a language model as a *policy*: the state is the text so far, an action is the next token, and a
reward arrives once, when the completion is finished. ARENA 2.4 keeps the algorithm and replaces
the human-trained reward model by a programmatic reward (the number of full stops). We do the same
on the committed character-level model of Part II (`mechlearn.gpt.load_char_lm`), in this order:

1. **Rollout.** Sample ``batch_size`` completions of ``gen_len`` characters after a fixed prompt
   (`rlhf_sample`), score each with the reward (`char_count_reward`) and normalise the rewards
   over the batch (`normalize_reward`), so the scale of the advantages does not depend on the
   reward's units.
2. **Values.** A `ValueHead` reads the final residual stream (hook ``blocks.{L-1}.hook_resid_post``)
   and predicts, at every position, the reward the completion will end with.
3. **Advantages** (ARENA 2.4): one-step TD errors ``A_t = V(s_{t+1}) - V(s_t)`` for the generated
   tokens, with the final reward in place of the value after the last token
   (`rlhf_advantages`), without discounting. With ``gae_lambda = λ`` they become GAE's
   λ-weighted sums; ``λ = 1`` gives ``reward - V(s_t)`` at every token, the trainer's default
   here, because on 48-character completions ARENA's ``λ = 0`` barely moved the reward (the
   recipe records both curves).
4. **KL penalty.** Fine-tuning on a reward alone finds degenerate text that scores well; a penalty
   ``β · KL(π ‖ π_ref)`` to the frozen starting model keeps the policy near fluent text.
   `kl_exact` is the full-distribution KL at each generated position (what ARENA puts in the
   loss and the trainer uses); `kl_sampled` is ``log π(a|s) - log π_ref(a|s)`` on the sampled
   tokens, whose expectation over ``a ~ π`` is that KL (the per-token penalty of InstructGPT).
5. **PPO update** (Schulman et al., 2017): for a few epochs of minibatches, the clipped surrogate
   on the generated tokens, plus ``vf_coef`` times the value loss, minus ``ent_coef`` times the
   entropy, plus ``kl_coef`` times the KL, through LoRA adapters (`mechlearn.rl.lora`) and the
   value head; the base weights stay frozen and serve as the reference model.

Differences from ARENA 2.4: a 0.8M-parameter character model instead of GPT-2 small, LoRA instead
of full fine-tuning, ``λ = 1`` advantages by default, and the reward counts one character in a
completion of characters (the trained policy games it with the ``...`` prompts of Python's
interactive examples, three full stops each).
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from jaxtyping import Float, Int
from torch import Tensor, nn
from torch.nn.utils import parametrize

from mechlearn.rl.common import (
    check_positive,
    check_unit_interval,
    load_manifest,
    recipe_output_dir,
    write_manifest,
)
from mechlearn.rl.lora import (
    add_lora,
    count_trainable,
    load_lora_state_dict,
    lora_state_dict,
)

__all__ = [
    "ValueHead",
    "PolicyWithValueHead",
    "rlhf_sample",
    "char_count_reward",
    "normalize_reward",
    "token_logprobs",
    "kl_sampled",
    "kl_exact",
    "entropy_exact",
    "rlhf_advantages",
    "RLHFConfig",
    "train_rlhf",
    "rlhf_recipe",
    "load_rlhf_policy",
    "RLHF_RECIPE_CONFIG",
    "RLHF_ABLATION_PHASES",
]


# -- the model: a policy with a value head ------------------------------------------------------------


class ValueHead(nn.Module):
    """ARENA 2.4's value head: ``Linear(d_model, d_hidden) → ReLU → Linear(d_hidden, 1)``."""

    def __init__(
        self, d_model: int, d_hidden: int, generator: torch.Generator | None = None
    ) -> None:
        """Two linear layers, initialised like ``nn.Linear`` from ``generator``."""
        super().__init__()
        check_positive("d_model", d_model, integer=True)
        check_positive("d_hidden", d_hidden, integer=True)
        self.net = nn.Sequential(
            nn.Linear(d_model, d_hidden), nn.ReLU(), nn.Linear(d_hidden, 1)
        )
        if generator is not None:
            with torch.no_grad():
                for layer in (self.net[0], self.net[2]):
                    bound = 1.0 / layer.in_features**0.5
                    layer.weight.copy_(
                        (
                            torch.rand(layer.weight.shape, generator=generator) * 2
                            - 1
                        )
                        * bound
                    )
                    layer.bias.copy_(
                        (torch.rand(layer.bias.shape, generator=generator) * 2 - 1)
                        * bound
                    )

    def forward(
        self, resid: Float[Tensor, "batch pos d_model"]
    ) -> Float[Tensor, "batch pos"]:
        """The value estimate at every position."""
        return self.net(resid).squeeze(-1)


class PolicyWithValueHead(nn.Module):
    """A `mechlearn.gpt.GPT` (the policy) plus a `ValueHead` on its residual stream.

    The value head reads ``blocks.{n_layers-1}.hook_resid_post`` (the stream before
    ``ln_final``) through the GPT's own hook points, so ``mechlearn.gpt`` is unchanged.
    """

    def __init__(
        self,
        model: nn.Module,
        d_hidden: int | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        """Wrap ``model``; ``d_hidden`` defaults to ``4 · d_model`` as in ARENA."""
        super().__init__()
        self.model = model
        d_model = model.cfg.d_model
        self.value_head = ValueHead(d_model, d_hidden or 4 * d_model, generator)
        self.resid_hook = f"blocks.{model.cfg.n_layers - 1}.hook_resid_post"

    def forward(
        self, tokens: Int[Tensor, "batch pos"]
    ) -> tuple[Float[Tensor, "batch pos d_vocab"], Float[Tensor, "batch pos"]]:
        """``(logits, values)`` from one forward pass."""
        stash: dict[str, Tensor] = {}

        def grab(resid: Tensor, hook: Any) -> None:
            stash["resid"] = resid

        logits = self.model.run_with_hooks(
            tokens, fwd_hooks=[(self.resid_hook, grab)]
        )
        return logits, self.value_head(stash["resid"])


# -- rollouts and rewards -----------------------------------------------------------------------------


@torch.no_grad()
def rlhf_sample(
    model: nn.Module,
    prompt: Int[Tensor, " prompt"],
    batch_size: int,
    gen_len: int,
    temperature: float = 1.0,
    generator: torch.Generator | None = None,
) -> Int[Tensor, "batch seq"]:
    """``batch_size`` continuations of ``prompt`` by ``gen_len`` tokens (prompt included), with a KV cache.

    Works on a model with LoRA adapters on any weight (``mechlearn.gpt.generate`` refuses adapters
    on ``W_Q``/``W_K``/``W_V``, see `mechlearn.rl.lora`); the adapted weights are computed once.
    """
    from mechlearn.gpt.kv_cache import KVCache

    check_positive("batch_size", batch_size, integer=True)
    check_positive("gen_len", gen_len, integer=True)
    check_positive("temperature", temperature)
    if prompt.ndim != 1 or len(prompt) == 0:
        raise ValueError(
            f"prompt should be a non-empty 1-D tensor of token ids, got shape {tuple(prompt.shape)}"
        )
    if len(prompt) + gen_len > model.cfg.n_ctx:
        raise ValueError(
            f"prompt ({len(prompt)}) + gen_len ({gen_len}) exceeds n_ctx={model.cfg.n_ctx}"
        )
    was_training = model.training
    model.eval()
    tokens = prompt.long()[None].expand(batch_size, -1).clone()
    cache, step = KVCache(model.cfg.n_layers), tokens
    try:
        with parametrize.cached():
            for _ in range(gen_len):
                logits = model(step, cache=cache)[:, -1].double() / temperature
                nxt = torch.multinomial(logits.softmax(-1), 1, generator=generator)
                tokens = torch.cat([tokens, nxt], dim=1)
                step = nxt
    finally:
        model.train(was_training)
    return tokens


def char_count_reward(texts: list[str], char: str = ".") -> Float[Tensor, " batch"]:
    """How often ``char`` occurs in each text (ARENA 2.4's reward counts full stops)."""
    if not isinstance(char, str) or len(char) != 1:
        raise ValueError(f"char should be a single character, got {char!r}")
    if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts should be a list of strings (one completion each)")
    return torch.tensor([float(t.count(char)) for t in texts], dtype=torch.float64)


def normalize_reward(
    reward: Float[Tensor, " batch"], eps: float = 1e-5
) -> Float[Tensor, " batch"]:
    """``(r - mean(r)) / (std(r) + eps)`` over the batch (unbiased std, as ARENA).

    A constant batch gives zeros.
    """
    if reward.ndim != 1 or len(reward) < 2:
        raise ValueError(
            "normalize_reward needs a 1-D batch of at least 2 rewards, "
            f"got shape {tuple(reward.shape)}"
        )
    if not torch.isfinite(reward).all():
        raise ValueError("rewards contain NaN or inf")
    return (reward - reward.mean()) / (reward.std() + eps)


# -- log-probabilities, KL, entropy ----------------------------------------------------------------------


def token_logprobs(
    logits: Float[Tensor, "batch seq d_vocab"],
    tokens: Int[Tensor, "batch seq"],
    prefix_len: int,
) -> Float[Tensor, "batch gen"]:
    """``log π(a_t | s_t)`` of each generated token ``a_t = tokens[:, t]``, ``t >= prefix_len``.

    The logits at position ``t - 1`` predict token ``t``, hence the shift by one.
    """
    if not 1 <= prefix_len < tokens.shape[1]:
        raise ValueError(
            f"prefix_len should be in [1, seq) = [1, {tokens.shape[1]}), got {prefix_len}"
        )
    logprobs = logits[:, prefix_len - 1 : -1].log_softmax(-1)
    return logprobs.gather(-1, tokens[:, prefix_len:, None]).squeeze(-1)


def kl_sampled(
    logprobs: Float[Tensor, "*batch"], ref_logprobs: Float[Tensor, "*batch"]
) -> Float[Tensor, "*batch"]:
    """Per-token KL estimate on the sampled tokens, ``log π(a|s) - log π_ref(a|s)``.

    Each entry is unbiased for ``KL(π(·|s) ‖ π_ref(·|s))`` when ``a ~ π(·|s)``;
    single entries can be negative.
    """
    if logprobs.shape != ref_logprobs.shape:
        raise ValueError(
            "logprobs and ref_logprobs differ in shape: "
            f"{tuple(logprobs.shape)} vs {tuple(ref_logprobs.shape)}"
        )
    return logprobs - ref_logprobs


def kl_exact(
    logits: Float[Tensor, "*batch d_vocab"],
    ref_logits: Float[Tensor, "*batch d_vocab"],
) -> Float[Tensor, " *batch"]:
    """``KL(π ‖ π_ref) = Σ_a π(a) (log π(a) - log π_ref(a))`` at every position.

    The sum runs over the whole vocabulary.
    """
    if logits.shape != ref_logits.shape:
        raise ValueError(
            "logits and ref_logits differ in shape: "
            f"{tuple(logits.shape)} vs {tuple(ref_logits.shape)}"
        )
    logp, logq = logits.log_softmax(-1), ref_logits.log_softmax(-1)
    return (logp.exp() * (logp - logq)).sum(-1)


def entropy_exact(
    logits: Float[Tensor, "*batch d_vocab"],
) -> Float[Tensor, " *batch"]:
    """``H(π) = -Σ_a π(a) log π(a)`` at every position."""
    logp = logits.log_softmax(-1)
    return -(logp.exp() * logp).sum(-1)


def rlhf_advantages(
    values: Float[Tensor, "batch seq"],
    rewards: Float[Tensor, " batch"],
    prefix_len: int,
    gae_lambda: float = 0.0,
) -> Float[Tensor, "batch gen"]:
    """ARENA 2.4's advantages ``V(s_{t+1}) - V(s_t)``, with the reward after the last token.

    ``values[:, t]`` is the value of the state ending at token ``t``. The state before
    generated token ``t`` ends at ``t - 1``, so for ``t = prefix_len .. seq-1`` the TD
    error is ``δ_t = values[:, t] - values[:, t-1]``, except the last,
    ``δ = reward - values[:, -2]``. ARENA uses ``A_t = δ_t`` (``gae_lambda = 0``). With
    ``gae_lambda = λ > 0`` they are GAE's ``A_t = δ_t + λ A_{t+1}`` without discounting
    (γ = 1, one terminal reward); ``λ = 1`` gives ``reward - V(s_t)`` at every token,
    the Monte Carlo advantage.
    """
    if values.ndim != 2 or rewards.shape != (values.shape[0],):
        raise ValueError(
            "values should be (batch, seq) and rewards (batch,), "
            f"got {tuple(values.shape)} and {tuple(rewards.shape)}"
        )
    if not 1 <= prefix_len < values.shape[1]:
        raise ValueError(
            f"prefix_len should be in [1, seq) = [1, {values.shape[1]}), "
            f"got {prefix_len}"
        )
    gae_lambda = check_unit_interval("gae_lambda", gae_lambda)
    next_value = torch.cat(
        [values[:, prefix_len:-1], rewards[:, None].to(values.dtype)], dim=1
    )
    deltas = next_value - values[:, prefix_len - 1 : -1]
    if gae_lambda == 0.0:
        return deltas
    advantages = torch.empty_like(deltas)
    running = torch.zeros_like(deltas[:, 0])
    for t in reversed(range(deltas.shape[1])):
        running = deltas[:, t] + gae_lambda * running
        advantages[:, t] = running
    return advantages


# -- the trainer ------------------------------------------------------------------------------------------


@dataclass
class RLHFConfig:
    """Hyperparameters of `train_rlhf` (ARENA 2.4's names where it has them)."""

    prompt: str = "The "
    """Every completion starts from this text (ARENA: ``"This is"``)."""
    gen_len: int = 48
    """Characters generated per completion."""
    reward_char: str = "."
    """The reward is the number of times this character occurs in the completion."""
    batch_size: int = 64
    """Completions per rollout."""
    total_phases: int = 40
    """Rollout-then-learn phases (ARENA's ``total_phases``)."""
    batches_per_learning_phase: int = 2
    """PPO epochs over each rollout."""
    num_minibatches: int = 4
    """Minibatches per epoch; must divide ``batch_size``."""
    lr: float = 3e-3
    """Adam learning rate of the LoRA adapters."""
    head_lr: float = 3e-3
    """Adam learning rate of the value head."""
    max_grad_norm: float = 1.0
    """Clip the global gradient norm to this value."""
    clip_coef: float = 0.2
    """PPO's ε: the probability ratio is clipped to [1 - ε, 1 + ε]."""
    vf_coef: float = 0.15
    """Weight of the value loss."""
    ent_coef: float = 0.001
    """Weight of the entropy bonus."""
    kl_coef: float = 0.2
    """β, the weight of ``KL(π ‖ π_ref)`` per generated token."""
    gae_lambda: float = 1.0
    """λ of the advantages (`rlhf_advantages`): 0 is ARENA's one-step TD error, 1 (the default here) is
    ``reward - V(s_t)`` at every generated token, which learns much faster on 48-token completions."""
    normalize_reward: bool = True
    """Normalise rewards over each rollout batch before computing advantages."""
    temperature: float = 1.0
    """Sampling temperature of the rollouts (1 samples from the policy itself, as PPO assumes)."""
    lora_r: int = 4
    """Rank of every LoRA adapter."""
    lora_alpha: float = 8.0
    """LoRA scale numerator: updates are multiplied by ``lora_alpha / lora_r``."""
    lora_targets: tuple[str, ...] = (
        "attn.W_Q",
        "attn.W_V",
        "attn.W_O",
        "mlp.W_in",
        "mlp.W_out",
    )
    """Parameter-name suffixes that get adapters (see `mechlearn.rl.lora.add_lora`)."""
    seed: int = 0
    """Seeds the adapters, the value head and the rollouts."""
    n_samples_logged: int = 4
    """Completions kept in the history at each phase."""

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str) or not self.prompt:
            raise ValueError(
                f"prompt should be a non-empty string, got {self.prompt!r}"
            )
        if not isinstance(self.reward_char, str) or len(self.reward_char) != 1:
            raise ValueError(
                f"reward_char should be a single character, got {self.reward_char!r}"
            )
        for name in (
            "gen_len",
            "batch_size",
            "total_phases",
            "batches_per_learning_phase",
            "num_minibatches",
            "lora_r",
        ):
            check_positive(name, getattr(self, name), integer=True)
        if self.batch_size % self.num_minibatches:
            raise ValueError(
                f"num_minibatches={self.num_minibatches} must divide batch_size={self.batch_size}"
            )
        if self.batch_size // self.num_minibatches < 2:
            raise ValueError("each minibatch needs at least 2 completions")
        for name in ("lr", "head_lr", "max_grad_norm", "temperature", "lora_alpha"):
            check_positive(name, getattr(self, name))
        check_unit_interval("clip_coef", self.clip_coef)
        check_unit_interval("gae_lambda", self.gae_lambda)
        for name in ("vf_coef", "ent_coef", "kl_coef"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not 0 <= value < float("inf")
            ):
                raise ValueError(
                    f"{name} must be a finite number >= 0, got {value!r}"
                )
        if not isinstance(self.seed, int) or isinstance(self.seed, bool):
            raise TypeError(f"seed should be an int, got {self.seed!r}")
        self.lora_targets = tuple(self.lora_targets)
        if not self.lora_targets:
            raise ValueError("lora_targets should name at least one weight")
        if not isinstance(self.n_samples_logged, int) or self.n_samples_logged < 0:
            raise ValueError(
                f"n_samples_logged should be an int >= 0, got {self.n_samples_logged!r}"
            )


def _prefix(tokenizer: Any, cfg: RLHFConfig, model: nn.Module) -> Tensor:
    missing = sorted(set(cfg.prompt + cfg.reward_char) - set(tokenizer.chars))
    if missing:
        raise ValueError(f"the tokenizer has no token for {missing}")
    prompt = torch.tensor(tokenizer.encode(cfg.prompt), dtype=torch.long)
    if len(prompt) + cfg.gen_len > model.cfg.n_ctx:
        raise ValueError(
            f"prompt ({len(prompt)}) + gen_len ({cfg.gen_len}) exceeds n_ctx={model.cfg.n_ctx}"
        )
    return prompt


def train_rlhf(
    base_model: nn.Module, tokenizer: Any, cfg: RLHFConfig, progress: bool = False
) -> tuple[PolicyWithValueHead, list[dict[str, Any]]]:
    """Fine-tune a copy of ``base_model`` with LoRA and PPO: more reward, KL to the base.

    Returns:
        ``(policy, history)``: the policy (the adapted copy plus its value head) and one
        dict per phase with ``phase``, ``reward`` (mean raw reward of the rollout),
        ``reward_std``, ``kl`` (mean exact KL per generated token), ``kl_sampled`` (its
        sampled-token estimate), ``entropy``, ``value_loss``, ``clipfrac`` and
        ``samples`` (the first ``n_samples_logged`` completions).
        Rollout statistics describe the policy *before* that phase's update.
    """
    from mechlearn._optional import require

    tqdm = require("tqdm.auto", "mechlearn.rl.rlhf.train_rlhf").tqdm
    if not isinstance(cfg, RLHFConfig):
        raise TypeError(f"cfg should be an RLHFConfig, got {type(cfg).__name__}")
    prompt = _prefix(tokenizer, cfg, base_model)
    prefix_len = len(prompt)
    g = torch.Generator().manual_seed(cfg.seed)

    ref = base_model.eval()
    policy_lm = copy.deepcopy(base_model)
    add_lora(policy_lm, cfg.lora_targets, cfg.lora_r, cfg.lora_alpha, generator=g)
    policy = PolicyWithValueHead(policy_lm, generator=g)
    opt = torch.optim.Adam(
        [
            {
                "params": [p for p in policy_lm.parameters() if p.requires_grad],
                "lr": cfg.lr,
            },
            {"params": policy.value_head.parameters(), "lr": cfg.head_lr},
        ]
    )
    mb_size = cfg.batch_size // cfg.num_minibatches
    history: list[dict[str, Any]] = []

    for phase in tqdm(range(cfg.total_phases), disable=not progress, desc="rlhf"):
        # 1. Rollout: sample completions, score them, and record what the update
        #    compares against.
        tokens = rlhf_sample(
            policy_lm,
            prompt,
            cfg.batch_size,
            cfg.gen_len,
            cfg.temperature,
            generator=g,
        )
        texts = [tokenizer.decode(t[prefix_len:].tolist()) for t in tokens]
        raw_reward = char_count_reward(texts, cfg.reward_char)
        reward = (
            normalize_reward(raw_reward) if cfg.normalize_reward else raw_reward
        )
        with torch.no_grad():
            logits, values = policy(tokens)
            ref_logits = ref(tokens)
            old_logprobs = token_logprobs(logits, tokens, prefix_len)
            ref_logprobs = token_logprobs(ref_logits, tokens, prefix_len)
            gen = slice(
                prefix_len - 1, -1
            )  # positions whose logits predict the generated tokens
            kl = kl_exact(logits[:, gen], ref_logits[:, gen]).mean().item()
            kl_est = kl_sampled(old_logprobs, ref_logprobs).mean().item()
            entropy = entropy_exact(logits[:, gen]).mean().item()
            # 2-3. Values and advantages; the value targets are advantage + value.
            advantages = rlhf_advantages(
                values.double(), reward, prefix_len, cfg.gae_lambda
            ).float()
            returns = advantages + values[:, gen]

        # 5. PPO epochs over minibatches of completions.
        value_losses, clipfracs = [], []
        for _ in range(cfg.batches_per_learning_phase):
            order = torch.randperm(cfg.batch_size, generator=g)
            for start in range(0, cfg.batch_size, mb_size):
                idx = order[start : start + mb_size]
                new_logits, new_values = policy(tokens[idx])
                new_logprobs = token_logprobs(new_logits, tokens[idx], prefix_len)
                log_ratio = new_logprobs - old_logprobs[idx]
                ratio = log_ratio.exp()
                adv = advantages[idx]
                surrogate = torch.min(
                    ratio * adv,
                    ratio.clamp(1 - cfg.clip_coef, 1 + cfg.clip_coef) * adv,
                ).mean()
                value_loss = 0.5 * (new_values[:, gen] - returns[idx]).pow(2).mean()
                ent = entropy_exact(new_logits[:, gen]).mean()
                kl_term = kl_exact(
                    new_logits[:, gen], ref_logits[idx][:, gen]
                ).mean()
                loss = (
                    -surrogate
                    + cfg.vf_coef * value_loss
                    - cfg.ent_coef * ent
                    + cfg.kl_coef * kl_term
                )
                opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(
                    [p for group in opt.param_groups for p in group["params"]],
                    cfg.max_grad_norm,
                )
                opt.step()
                value_losses.append(value_loss.item())
                clipfracs.append(
                    ((ratio - 1).abs() > cfg.clip_coef).float().mean().item()
                )

        history.append(
            {
                "phase": phase,
                "reward": raw_reward.mean().item(),
                "reward_std": raw_reward.std().item(),
                "kl": kl,
                "kl_sampled": kl_est,
                "entropy": entropy,
                "value_loss": float(np.mean(value_losses)),
                "clipfrac": float(np.mean(clipfracs)),
                "samples": texts[: cfg.n_samples_logged],
            }
        )
    policy.eval()
    return policy, history


# -- the recipe -------------------------------------------------------------------------------------------

RLHF_RECIPE_CONFIG = RLHFConfig(total_phases=80)
"""Settings of the committed LoRA adapter (`rlhf_recipe`)."""
RLHF_ABLATION_PHASES = 40
"""Phases of the recipe's comparison run with ARENA's one-step advantages (``gae_lambda = 0``)."""


def rlhf_recipe(
    out_dir: str | Path, quick: bool = False, progress: bool = True
) -> dict[str, Any]:
    """Train the committed RLHF adapter and write ``rlhf.pt`` (LoRA weights only) and ``rlhf.json``.

    Args:
        out_dir: the folder to write into (never the package, see `mechlearn.rl.common.recipe_output_dir`).
        quick: a 3-phase run with small batches (what the tests run).

    Returns:
        The manifest: config, seed, the reward and KL per phase, samples before and after, seconds
        (of the main run), sha256, and under ``ablation`` the curve of the same run with ``gae_lambda = 0``.
    """
    from mechlearn.gpt import load_char_lm

    out = recipe_output_dir(out_dir)
    torch.set_num_threads(1)
    cfg = (
        RLHF_RECIPE_CONFIG
        if not quick
        else RLHFConfig(batch_size=8, total_phases=3, num_minibatches=2, gen_len=16)
    )
    base, tokenizer, base_manifest = load_char_lm()
    start = time.process_time()
    policy, history = train_rlhf(base, tokenizer, cfg, progress=progress)
    seconds = time.process_time() - start
    # The same run with ARENA's one-step advantages (λ = 0), for comparison; only its curve is kept.
    ablation_cfg = RLHFConfig(
        **{
            **asdict(cfg),
            "gae_lambda": 0.0,
            "total_phases": 2 if quick else RLHF_ABLATION_PHASES,
        }
    )
    _, ablation = train_rlhf(base, tokenizer, ablation_cfg, progress=progress)
    ckpt = out / "rlhf.pt"
    torch.save(lora_state_dict(policy.model), ckpt)
    return write_manifest(
        ckpt,
        config=asdict(cfg),
        seed=cfg.seed,
        base_checkpoint={"name": "char_lm", "sha256": base_manifest["sha256"]},
        steps=cfg.total_phases,
        seconds=round(seconds, 1),
        seconds_kind="process CPU time, one thread",
        trainable_params=count_trainable(policy.model),
        base_params=sum(p.numel() for p in base.parameters()),
        metrics={
            "reward_first": history[0]["reward"],
            "reward_last": history[-1]["reward"],
            "kl_last": history[-1]["kl"],
        },
        history=[{k: v for k, v in h.items() if k != "samples"} for h in history],
        samples_first=history[0]["samples"],
        samples_last=history[-1]["samples"],
        ablation={
            "config": asdict(ablation_cfg),
            "history": [
                {k: v for k, v in h.items() if k != "samples"} for h in ablation
            ],
            "samples_last": ablation[-1]["samples"],
        },
    )


def load_rlhf_policy(
    directory: str | Path | None = None,
) -> tuple[nn.Module, Any, dict[str, Any]]:
    """``(model, tokenizer, manifest)``: the char-LM with the committed (or ``directory``'s) RLHF adapters loaded."""
    from mechlearn.gpt import load_char_lm

    ckpt, manifest = load_manifest("rlhf", directory)
    cfg = RLHFConfig(
        **{
            k: (tuple(v) if k == "lora_targets" else v)
            for k, v in manifest["config"].items()
            if k in {f.name for f in fields(RLHFConfig)}
        }
    )
    model, tokenizer, _ = load_char_lm()
    add_lora(model, cfg.lora_targets, cfg.lora_r, cfg.lora_alpha)
    load_lora_state_dict(
        model, torch.load(ckpt, map_location="cpu", weights_only=True)
    )
    return model.eval(), tokenizer, manifest
