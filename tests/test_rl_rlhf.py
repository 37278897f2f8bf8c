"""mechlearn.rl.rlhf and mechlearn.rl.lora: LoRA against peft and closed forms, KL against torch.distributions,
reward normalisation, ARENA's advantages against a loop, the value head, and a short RLHF run that must raise the reward.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from conftest import unchecked
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from mechlearn.gpt import GPT, GPTConfig, generate, load_char_lm
from mechlearn.rl import lora as L
from mechlearn.rl import rlhf as R
from mechlearn.testing import EXACT, FLOAT32, FLOAT64, Tolerance, assert_close

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
NORMALISED = Tolerance("NORMALISED", 1e-4, 1e-9)
"""``normalize_reward`` divides by ``std + 1e-5``: the std of its output is 1 up to that eps (relative ~1e-5 for std ~1)."""


def tiny_gpt(dtype=torch.float64, seed=0) -> GPT:
    torch.manual_seed(seed)
    model = GPT(
        GPTConfig(d_vocab=11, n_ctx=16, d_model=12, n_layers=2, n_heads=3, d_mlp=20)
    ).to(dtype)
    with (
        torch.no_grad()
    ):  # non-zero biases and larger weights, so every term matters
        for p in model.parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model.eval()


def randomise_B(model: nn.Module, seed: int = 1) -> None:
    """B starts at zero (the adapted model starts as the base); tests need a non-zero update."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for _, lora, _ in L.lora_adapters(model):
            lora.lora_B.copy_(
                torch.randn(lora.lora_B.shape, generator=g, dtype=lora.lora_B.dtype)
            )


# -- LoRA -----------------------------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self, d_in=7, d_out=5):
        super().__init__()
        self.proj = nn.Linear(d_in, d_out)

    def forward(self, x):
        return self.proj(x)


@pytest.mark.parametrize(
    "dtype,tol", [(torch.float64, FLOAT64), (torch.float32, FLOAT32)]
)
def test_lora_linear_equals_peft_unmerged_and_merged(dtype, tol):
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    base = Tiny().to(dtype)
    ref_model = Tiny().to(dtype)
    ref_model.load_state_dict(base.state_dict())
    r, alpha = 3, 6.0
    ours = L.LoRALinear(
        base.proj, r=r, alpha=alpha, generator=torch.Generator().manual_seed(1)
    )
    with torch.no_grad():
        ours.lora_B.copy_(torch.randn_like(ours.lora_B))
    cfg = peft.LoraConfig(
        r=r, lora_alpha=alpha, target_modules=["proj"], lora_dropout=0.0
    )
    theirs = peft.get_peft_model(ref_model, cfg)
    layer = theirs.base_model.model.proj
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(ours.lora_A)
        layer.lora_B["default"].weight.copy_(ours.lora_B)
    assert layer.scaling["default"] == ours.scaling == alpha / r
    x = torch.randn(4, 2, 7, dtype=dtype)
    assert_close(ours(x), theirs(x), tol, name="LoRALinear vs peft, unmerged")
    ours.merge()
    theirs.merge_adapter()
    assert_close(
        ours.base.weight, layer.base_layer.weight, tol, name="merged weights"
    )
    assert_close(ours(x), theirs(x), tol, name="LoRALinear vs peft, merged")
    ours.unmerge()
    theirs.unmerge_adapter()
    assert_close(ours(x), theirs(x), tol, name="LoRALinear vs peft, unmerged again")


def test_lora_linear_differs_from_peft_when_alpha_differs():
    """Negative: the comparison above can fail (a wrong scale is caught)."""
    peft = pytest.importorskip("peft")
    torch.manual_seed(0)
    base, ref_model = Tiny().double(), Tiny().double()
    ref_model.load_state_dict(base.state_dict())
    ours = L.LoRALinear(base.proj, r=2, alpha=4.0)
    with torch.no_grad():
        ours.lora_B.normal_()
    theirs = peft.get_peft_model(
        ref_model,
        peft.LoraConfig(
            r=2, lora_alpha=2.0, target_modules=["proj"], lora_dropout=0.0
        ),
    )
    layer = theirs.base_model.model.proj
    with torch.no_grad():
        layer.lora_A["default"].weight.copy_(ours.lora_A)
        layer.lora_B["default"].weight.copy_(ours.lora_B)
    x = torch.randn(3, 7, dtype=torch.float64)
    with pytest.raises(AssertionError):
        assert_close(ours(x), theirs(x), FLOAT64, name="alpha 4 vs alpha 2")


def test_lora_linear_merge_is_the_closed_form_and_unmerge_restores_W():
    torch.manual_seed(0)
    lin = nn.Linear(6, 4).double()
    W0 = lin.weight.detach().clone()
    lora = L.LoRALinear(lin, r=2, alpha=5.0)
    assert_close(
        lora.lora_B,
        torch.zeros(4, 2, dtype=torch.float64),
        EXACT,
        name="B starts at zero",
    )
    x = torch.randn(3, 6, dtype=torch.float64)
    assert_close(
        lora(x), x @ W0.T + lin.bias, EXACT, name="B = 0: the base layer exactly"
    )
    with torch.no_grad():
        lora.lora_B.normal_()
    unmerged = lora(x)
    lora.merge()
    assert_close(
        lin.weight,
        W0 + (5.0 / 2) * (lora.lora_B @ lora.lora_A),
        EXACT,
        name="merged W = W + (alpha/r) BA",
    )
    assert_close(
        lora(x), unmerged, FLOAT64, name="merged forward = unmerged forward"
    )
    with pytest.raises(RuntimeError, match="already merged"):
        lora.merge()
    lora.unmerge()
    assert_close(lin.weight, W0, FLOAT64, name="unmerge restores W")
    assert not any(p.requires_grad for p in lin.parameters())
    assert L.count_trainable(lora) == 2 * (6 + 4)


@pytest.mark.parametrize("name", ["W_Q", "W_V", "W_O"])
def test_lora_on_per_head_attention_weights_equals_lora_linear_on_the_flat_matrix(
    name,
):
    model = tiny_gpt()
    attn = model.blocks[1].attn
    W0 = getattr(attn, name).detach().clone()
    L.add_lora(
        model,
        [f"attn.{name}"],
        r=2,
        alpha=3.0,
        generator=torch.Generator().manual_seed(0),
    )
    randomise_B(model)
    ((_, lora, _),) = [
        a for a in L.lora_adapters(model) if a[0] == f"blocks.1.attn.{name}"
    ]
    # The same map as an nn.Linear: x (in) -> out, weight (out, in), independent of the einops pattern.
    flat = (
        W0.permute(1, 0, 2).reshape(W0.shape[1], -1)
        if name != "W_O"
        else W0.reshape(-1, W0.shape[2])
    )
    lin = nn.Linear(flat.shape[0], flat.shape[1], bias=False).double()
    with torch.no_grad():
        lin.weight.copy_(flat.T)
    ref = L.LoRALinear(lin, r=2, alpha=3.0)
    with torch.no_grad():
        ref.lora_A.copy_(lora.lora_A)
        ref.lora_B.copy_(lora.lora_B)
    adapted = getattr(attn, name)
    adapted_flat = (
        adapted.permute(1, 0, 2).reshape(flat.shape)
        if name != "W_O"
        else adapted.reshape(flat.shape)
    )
    x = torch.randn(5, flat.shape[0], dtype=torch.float64)
    assert_close(
        x @ adapted_flat, ref(x), FLOAT64, name=f"{name} + LoRA vs LoRALinear"
    )


def test_add_lora_merge_unmerge_and_merged_copy_on_a_gpt():
    model = tiny_gpt()
    tokens = torch.randint(
        0, 11, (2, 9), generator=torch.Generator().manual_seed(0)
    )
    base_logits = model(tokens)
    base_weights = {k: v.clone() for k, v in model.state_dict().items()}
    targets = ("attn.W_Q", "attn.W_V", "attn.W_O", "mlp.W_in", "mlp.W_out")
    names = L.add_lora(
        model, targets, r=2, alpha=4.0, generator=torch.Generator().manual_seed(0)
    )
    assert len(names) == 2 * len(targets)
    assert_close(
        model(tokens), base_logits, EXACT, name="B = 0: the base model exactly"
    )
    cfg = model.cfg
    per_block = (
        2 * 3 * (cfg.d_model + cfg.n_heads * cfg.d_head)
        + 2 * (cfg.d_model + cfg.d_mlp) * 2
    )
    assert (
        L.count_trainable(model) == cfg.n_layers * per_block
    ), "trainable = Σ r (in + out)"
    randomise_B(model)
    adapted = model(tokens)
    assert (adapted - base_logits).abs().max() > 1e-3
    copy_ = L.lora_merged_copy(model)
    assert not any(isinstance(m, L.LoRAParameter) for m in copy_.modules())
    assert_close(copy_(tokens), adapted, FLOAT64, name="merged copy")
    L.merge_lora(model)
    assert_close(model(tokens), adapted, FLOAT64, name="merged in place")
    L.unmerge_lora(model)
    assert_close(model(tokens), adapted, FLOAT64, name="unmerged again")
    state = L.lora_state_dict(model)
    fresh = tiny_gpt()
    L.add_lora(fresh, targets, r=2, alpha=4.0)
    L.load_lora_state_dict(fresh, state)
    assert_close(fresh(tokens), adapted, EXACT, name="adapters saved and loaded")
    originals = {n: o for n, _, o in L.lora_adapters(model)}
    for name, W in originals.items():
        assert_close(W, base_weights[name], FLOAT64, name=f"{name} restored")


def test_add_lora_rejects_unknown_targets_and_bad_ranks():
    with pytest.raises(ValueError, match="matches no parameter"):
        L.add_lora(tiny_gpt(), ["attn.W_X"], r=2, alpha=1.0)
    with pytest.raises(ValueError, match="exceeds min"):
        L.add_lora(tiny_gpt(), ["mlp.W_in"], r=13, alpha=1.0)
    with pytest.raises(ValueError, match="rank r must be a positive int"):
        L.LoRALinear(nn.Linear(3, 3), r=0, alpha=1.0)
    with pytest.raises(ValueError, match="alpha must be a positive"):
        L.LoRALinear(nn.Linear(3, 3), r=1, alpha=-1.0)
    with pytest.raises(TypeError, match="wraps an nn.Linear"):
        L.LoRALinear(nn.Conv1d(3, 3, 1), r=1, alpha=1.0)


# -- KL, entropy, rewards, advantages ----------------------------------------------------------------------


def test_kl_of_identical_models_is_exactly_zero():
    logits = torch.randn(3, 5, 11, dtype=torch.float64) * 3
    assert_close(
        R.kl_exact(logits, logits),
        torch.zeros(3, 5, dtype=torch.float64),
        EXACT,
        name="KL(p ‖ p)",
    )
    lp = torch.randn(3, 5, dtype=torch.float64)
    assert_close(
        R.kl_sampled(lp, lp),
        torch.zeros(3, 5, dtype=torch.float64),
        EXACT,
        name="sampled KL(p ‖ p)",
    )


def test_kl_and_entropy_equal_torch_distributions():
    from torch.distributions import Categorical, kl_divergence

    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(4, 6, 9, generator=g, dtype=torch.float64), torch.randn(
        4, 6, 9, generator=g, dtype=torch.float64
    )
    assert_close(
        R.kl_exact(p, q),
        kl_divergence(Categorical(logits=p), Categorical(logits=q)),
        FLOAT64,
        name="KL",
    )
    assert_close(
        R.entropy_exact(p), Categorical(logits=p).entropy(), FLOAT64, name="entropy"
    )
    with pytest.raises(
        AssertionError
    ):  # KL is not symmetric: the check can tell the arguments apart
        assert_close(
            R.kl_exact(p, q),
            kl_divergence(Categorical(logits=q), Categorical(logits=p)),
            FLOAT64,
        )


def test_sampled_token_kl_is_unbiased_for_the_exact_kl():
    from torch.distributions import Categorical, kl_divergence

    g = torch.Generator().manual_seed(0)
    p, q = torch.randn(9, generator=g, dtype=torch.float64), torch.randn(
        9, generator=g, dtype=torch.float64
    )
    exact = kl_divergence(Categorical(logits=p), Categorical(logits=q)).item()
    n = 200_000
    a = torch.multinomial(p.softmax(-1), n, replacement=True, generator=g)
    estimates = R.kl_sampled(p.log_softmax(-1)[a], q.log_softmax(-1)[a])
    mean, se = estimates.mean().item(), estimates.std().item() / math.sqrt(n)
    assert (
        abs(mean - exact) < 4 * se
    ), f"sampled mean {mean:.4f} vs exact {exact:.4f} (4 SE = {4 * se:.4f})"
    reverse = kl_divergence(Categorical(logits=q), Categorical(logits=p)).item()
    assert abs(mean - reverse) > 4 * se, "the test must tell KL(p‖q) from KL(q‖p)"
    assert (estimates < 0).any(), "single-token estimates can be negative"


def test_normalize_reward_has_mean_0_and_std_1():
    r = torch.tensor([0.0, 1, 1, 3, 0, 2, 5, 1], dtype=torch.float64)
    z = R.normalize_reward(r)
    assert_close(
        z.mean(),
        torch.tensor(0.0, dtype=torch.float64),
        Tolerance("MEAN", 0.0, 1e-12),
        name="mean 0",
    )
    assert_close(
        z.std(), torch.tensor(1.0, dtype=torch.float64), NORMALISED, name="std 1"
    )
    assert_close(
        R.normalize_reward(torch.full((4,), 2.0, dtype=torch.float64)),
        torch.zeros(4, dtype=torch.float64),
        EXACT,
        name="a constant batch gives zeros",
    )
    with pytest.raises(ValueError, match="at least 2 rewards"):
        unchecked(R.normalize_reward)(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="NaN or inf"):
        R.normalize_reward(torch.tensor([1.0, float("nan")]))


def test_char_count_reward():
    assert R.char_count_reward(["a.b..", "none", "."]).tolist() == [3.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="single character"):
        R.char_count_reward(["x"], "..")
    with pytest.raises(TypeError, match="list of strings"):
        unchecked(R.char_count_reward)("a.b")


def test_advantages_equal_a_plain_loop():
    g = torch.Generator().manual_seed(0)
    batch, seq, prefix_len = 3, 8, 3
    values = torch.randn(batch, seq, generator=g, dtype=torch.float64)
    rewards = torch.randn(batch, generator=g, dtype=torch.float64)
    expected = torch.zeros(batch, seq - prefix_len, dtype=torch.float64)
    for b in range(batch):
        for j, t in enumerate(
            range(prefix_len, seq)
        ):  # generated token t; its state ends at t - 1
            nxt = rewards[b] if t == seq - 1 else values[b, t]
            expected[b, j] = nxt - values[b, t - 1]
    assert_close(
        R.rlhf_advantages(values, rewards, prefix_len),
        expected,
        EXACT,
        name="ARENA's advantages",
    )
    # GAE with γ = 1: A_t = Σ_k λ^k δ_{t+k}; λ = 1 telescopes to reward - V(s_t) (Monte Carlo).
    lam = 0.5
    gae = torch.zeros_like(expected)
    for b in range(batch):
        for j in range(expected.shape[1]):
            gae[b, j] = sum(
                lam**k * expected[b, j + k] for k in range(expected.shape[1] - j)
            )
    assert_close(
        R.rlhf_advantages(values, rewards, prefix_len, 0.5),
        gae,
        FLOAT64,
        name="GAE, λ = 0.5",
    )
    mc = rewards[:, None] - values[:, prefix_len - 1 : -1]
    assert_close(
        R.rlhf_advantages(values, rewards, prefix_len, 1.0),
        mc,
        FLOAT64,
        name="λ = 1: reward - V",
    )
    with pytest.raises(ValueError, match="gae_lambda must be in"):
        R.rlhf_advantages(values, rewards, prefix_len, 1.5)
    with pytest.raises(ValueError, match="prefix_len"):
        unchecked(R.rlhf_advantages)(values, rewards, 0)


def test_token_logprobs_equal_a_plain_loop():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 6, 5, generator=g, dtype=torch.float64)
    tokens = torch.randint(0, 5, (2, 6), generator=g)
    got = R.token_logprobs(logits, tokens, 2)
    for b in range(2):
        for j, t in enumerate(range(2, 6)):
            expected = logits[b, t - 1].log_softmax(-1)[tokens[b, t]]
            assert_close(got[b, j], expected, FLOAT64, name="log π(a_t | s_t)")


def test_value_head_shapes_and_the_hook_reads_the_final_residual_stream():
    model = tiny_gpt(torch.float32)
    policy = R.PolicyWithValueHead(
        model, generator=torch.Generator().manual_seed(0)
    )
    tokens = torch.randint(
        0, 11, (4, 7), generator=torch.Generator().manual_seed(1)
    )
    logits, values = policy(tokens)
    assert logits.shape == (4, 7, 11) and values.shape == (4, 7)
    assert_close(
        logits, model(tokens), EXACT, name="the hook leaves the logits unchanged"
    )
    _, cache = model.run_with_cache(
        tokens, names_filter="blocks.1.hook_resid_post"
    )  # the same single hook
    assert_close(
        values,
        policy.value_head(cache["blocks.1.hook_resid_post"]),
        EXACT,
        name="values from resid_post",
    )
    assert (
        sum(p.numel() for p in policy.value_head.parameters())
        == 12 * 48 + 48 + 48 + 1
    )


def test_rlhf_sample_draws_the_same_tokens_as_generate():
    """Our sampler (KV cache, parametrization-aware) against mechlearn.gpt.generate on a plain model, same seed."""
    model = tiny_gpt(torch.float32)
    prompt = torch.tensor([1, 2, 3])
    ours = R.rlhf_sample(
        model, prompt, 5, 10, generator=torch.Generator().manual_seed(7)
    )
    ref = generate(
        model,
        prompt[None].expand(5, -1),
        10,
        generator=torch.Generator().manual_seed(7),
    )
    assert torch.equal(ours, ref)
    with pytest.raises(ValueError, match="exceeds n_ctx"):
        R.rlhf_sample(model, prompt, 2, 14)


def test_rlhf_sample_on_an_adapted_model_equals_generate_on_its_merged_copy():
    """With adapters on W_Q (which mechlearn.gpt.generate cannot read), our sampler must draw what
    generate draws from the plain merged model."""
    model = tiny_gpt(torch.float32)
    L.add_lora(model, ["attn.W_Q", "mlp.W_out"], r=2, alpha=4.0)
    randomise_B(model)
    prompt = torch.tensor([4, 5])
    ours = R.rlhf_sample(model, prompt, 6, 9, generator=torch.Generator().manual_seed(3))
    merged = L.lora_merged_copy(model)
    ref = generate(merged, prompt[None].expand(6, -1), 9, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ours, ref)
    base = R.rlhf_sample(tiny_gpt(torch.float32), prompt, 6, 9, generator=torch.Generator().manual_seed(3))
    assert not torch.equal(ours, base), "the adapters must change what is sampled"


def test_generate_reads_adapted_attention_weights():
    """mechlearn.gpt.generate on a model with LoRA on W_Q/W_V (parametrized tensors) draws what it
    draws from the merged copy: the fused-QKV reuse must not look the raw parameters up."""
    model = tiny_gpt(torch.float32)
    L.add_lora(model, ["attn.W_Q", "attn.W_V"], r=2, alpha=4.0)
    randomise_B(model)
    prompt = torch.tensor([[4, 5]]).expand(3, -1)
    adapted = generate(model, prompt, 9, generator=torch.Generator().manual_seed(5))
    merged = generate(L.lora_merged_copy(model), prompt, 9, generator=torch.Generator().manual_seed(5))
    assert torch.equal(adapted, merged)


@given(
    st.one_of(st.integers(-3, 12), st.floats(allow_nan=True), st.booleans()),
    st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-2, 3)),
)
@FUZZ
def test_lora_linear_accepts_exactly_valid_ranks_and_alphas(r, alpha):
    ok_r = isinstance(r, int) and not isinstance(r, bool) and 1 <= r <= 4
    ok_alpha = not isinstance(alpha, bool) and math.isfinite(alpha) and alpha > 0
    if ok_r and ok_alpha:
        layer = L.LoRALinear(nn.Linear(6, 4), r=r, alpha=alpha)
        assert layer.scaling == alpha / r
    else:
        layer = L.LoRALinear.__new__(L.LoRALinear)  # our own checks, not the test-time type checker
        with pytest.raises((TypeError, ValueError), match="LoRA (rank|alpha)"):
            unchecked(L.LoRALinear.__init__)(layer, nn.Linear(6, 4), r=r, alpha=alpha)


# -- the trainer and the recipe ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def char_lm():
    model, tokenizer, _ = load_char_lm()
    return model, tokenizer


TRAIN_CHECK = dict(
    gen_len=32,
    batch_size=32,
    total_phases=10,
    num_minibatches=2,
    n_samples_logged=2,
)
"""A short run that must raise the reward: the real char-LM, small batches (a few seconds of CPU)."""


def test_short_rlhf_run_raises_the_reward_while_kl_stays_bounded(char_lm):
    model, tokenizer = char_lm
    before = {k: v.clone() for k, v in model.state_dict().items()}
    cfg = R.RLHFConfig(**TRAIN_CHECK)
    policy, history = R.train_rlhf(model, tokenizer, cfg)
    rewards = np.array([h["reward"] for h in history])
    first, last = rewards[:3].mean(), rewards[-3:].mean()
    assert (
        last > first + 0.3
    ), f"mean reward of the last 3 phases {last:.2f} vs first 3 {first:.2f}"
    assert (
        max(h["kl"] for h in history) < 1.0
    ), "KL to the reference per token stays below 1 nat"
    assert history[0]["kl"] == 0.0, "before any update the policy is the reference"
    for (
        k,
        v,
    ) in (
        model.state_dict().items()
    ):  # the base model (the reference) is never changed
        assert torch.equal(v, before[k]), k


def test_rlhf_recipe_quick_writes_a_manifest_and_the_adapter_loads(
    tmp_path, char_lm
):
    manifest = R.rlhf_recipe(tmp_path, quick=True, progress=False)
    assert manifest["steps"] == 3 and len(manifest["history"]) == 3
    assert (tmp_path / "rlhf.pt").exists() and manifest[
        "trainable_params"
    ] < manifest["base_params"] / 5
    model, tokenizer, loaded = R.load_rlhf_policy(tmp_path)
    assert loaded["sha256"] == manifest["sha256"]
    assert L.count_trainable(model) == manifest["trainable_params"]


def test_committed_adapter_matches_its_manifest():
    from mechlearn.rl.common import CHECKPOINT_DIR

    if not (CHECKPOINT_DIR / "rlhf.pt").exists():
        pytest.skip("no committed RLHF adapter")
    model, tokenizer, manifest = R.load_rlhf_policy()  # checks the sha256
    assert (
        manifest["metrics"]["reward_last"]
        > manifest["metrics"]["reward_first"] + 1.0
    )
    assert L.count_trainable(model) == manifest["trainable_params"]


# -- bad configurations -------------------------------------------------------------------------------------

BAD_FIELDS = {
    "gen_len": [0, -3, 2.5],
    "batch_size": [0, -1],
    "total_phases": [0],
    "num_minibatches": [0, 3],
    "lr": [0.0, -1e-3, math.nan, math.inf],
    "head_lr": [0.0],
    "clip_coef": [-0.1, 1.5, math.nan],
    "kl_coef": [-1.0, math.inf, math.nan],
    "gae_lambda": [-0.1, 1.01],
    "vf_coef": [-0.5],
    "ent_coef": [-1e-3],
    "temperature": [0.0],
    "lora_r": [0, -2],
    "lora_alpha": [0.0, -1.0],
    "prompt": ["", 3],
    "reward_char": ["", ".."],
    "lora_targets": [()],
    "max_grad_norm": [0.0],
}


@given(st.sampled_from([(k, v) for k, vs in BAD_FIELDS.items() for v in vs]))
@FUZZ
def test_rlhf_config_rejects_bad_values_naming_the_field(bad):
    name, value = bad
    with pytest.raises(
        (TypeError, ValueError),
        match=name.split("_")[0] if name != "num_minibatches" else "minibatch",
    ):
        R.RLHFConfig(**{name: value})


@given(
    st.integers(1, 64),
    st.sampled_from([1, 2, 4, 8]),
    st.floats(0.0, 1.0),
    st.floats(0.0, 10.0),
)
@FUZZ
def test_rlhf_config_accepts_valid_values(batch, mb, clip, kl):
    if batch % mb or batch // mb < 2:
        with pytest.raises(ValueError):
            R.RLHFConfig(batch_size=batch, num_minibatches=mb)
    else:
        cfg = R.RLHFConfig(
            batch_size=batch, num_minibatches=mb, clip_coef=clip, kl_coef=kl
        )
        assert cfg.batch_size == batch


def test_train_rlhf_rejects_a_prompt_that_does_not_fit(char_lm):
    model, tokenizer = char_lm
    with pytest.raises(ValueError, match="exceeds n_ctx"):
        R.train_rlhf(model, tokenizer, R.RLHFConfig(gen_len=127))
    with pytest.raises(ValueError, match="no token for"):
        R.train_rlhf(model, tokenizer, R.RLHFConfig(prompt="\u2603 "))
