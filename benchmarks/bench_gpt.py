"""Part II benchmarks: our GPT against TransformerLens, the KV cache, and training throughput.

* forward pass of `mechlearn.gpt.GPT` vs the TransformerLens bridge with the same config and
  weights, over a batch × length grid (ratio ours / TransformerLens; below 1 means ours is faster);
* the same forward pass vs Hugging Face ``transformers``' ``GPT2LMHeadModel`` (what most engineers
  would use), and greedy KV-cached generation of 100 tokens vs its ``generate`` (ratio ours / HF);
* generating 256 tokens with and without the KV cache (speed-up = uncached / cached time);
* training throughput of the character-level recipe's model, in tokens per second.
"""

from __future__ import annotations

import statistics
import time

import torch

from common import paired_seconds, save
from mechlearn.gpt import (
    CHAR_LM_CONFIG, CHAR_LM_TRAIN, GPT, GPTConfig, TrainConfig, char_lm_data, generate, to_hf_gpt2, to_transformer_lens, train,
)

FORWARD_GRID = [(1, 32), (1, 128), (8, 32), (8, 128), (32, 128)]  # (batch, pos)


def model_for(n_ctx: int) -> GPT:
    torch.manual_seed(0)
    return GPT(GPTConfig(d_vocab=103, **{**CHAR_LM_CONFIG, "n_ctx": n_ctx})).eval()


def bench_forward(quick: bool) -> list[dict]:
    ours = model_for(128)
    theirs = to_transformer_lens(ours)
    rows = []
    for batch, pos in FORWARD_GRID[::2] if quick else FORWARD_GRID:
        t = torch.randint(0, 103, (batch, pos), generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            assert (ours(t) - theirs(t)).abs().max() < 1e-4, "the two models disagree; timing them would be meaningless"
            a, b = paired_seconds(lambda: ours(t), lambda: theirs(t), repeats=9)
        rows.append({"batch × pos": f"{batch} × {pos}", "ours / TransformerLens": a / b,
                     "ours (ms)": a * 1e3, "TransformerLens (ms)": b * 1e3})
    return rows


def bench_forward_hf(quick: bool) -> list[dict]:
    ours = model_for(128)
    hf = to_hf_gpt2(ours)  # transformers' default attention (sdpa), float32
    rows = []
    for batch, pos in FORWARD_GRID[::2] if quick else FORWARD_GRID:
        t = torch.randint(0, 103, (batch, pos), generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            assert (ours(t) - hf(t, use_cache=False).logits).abs().max() < 1e-4, "the two models disagree"
            a, b = paired_seconds(lambda: ours(t), lambda: hf(t, use_cache=False), repeats=9)
        rows.append({"batch × pos": f"{batch} × {pos}", "ours / HF": a / b, "ours (ms)": a * 1e3, "HF (ms)": b * 1e3})
    return rows


GENERATE_NEW = 100
"""Tokens generated greedily in the generation comparison with Hugging Face."""


def bench_generate_hf(quick: bool) -> list[dict]:
    ours = model_for(128)
    hf = to_hf_gpt2(ours)
    prompt = torch.randint(0, 103, (1, 8), generator=torch.Generator().manual_seed(2))
    mask = torch.ones_like(prompt)

    def run_ours():
        return generate(ours, prompt, GENERATE_NEW, temperature=0.0)

    def run_hf():
        with torch.no_grad():
            return hf.generate(prompt, attention_mask=mask, max_new_tokens=GENERATE_NEW, do_sample=False, use_cache=True)

    assert torch.equal(run_ours(), run_hf()), "ours and HF generate different greedy tokens"
    a, b = paired_seconds(run_ours, run_hf, repeats=3 if quick else 9)
    return [{"model": "char LM sizes (4 layers, d_model 128)", "prompt": prompt.shape[1], "tokens generated": GENERATE_NEW,
             "ours (ms)": a * 1e3, "HF (ms)": b * 1e3, "ours / HF": a / b}]


def bench_kv_cache(quick: bool) -> list[dict]:
    new = 64 if quick else 256
    rows = []
    sizes = [("char LM sizes (4 layers, d_model 128)", CHAR_LM_CONFIG),
             ("wider (6 layers, d_model 256, 8 heads)", {**CHAR_LM_CONFIG, "n_layers": 6, "d_model": 256, "n_heads": 8, "d_mlp": 1024})]
    for label, sizes_cfg in sizes[:1] if quick else sizes:
        torch.manual_seed(0)
        model = GPT(GPTConfig(d_vocab=103, **{**sizes_cfg, "n_ctx": 512})).eval()
        prompt = torch.randint(0, 103, (1, 8), generator=torch.Generator().manual_seed(2))
        outs, times = {}, {True: [], False: []}
        for _ in range(3):  # median of three full generations
            for use_cache in (True, False):
                t0 = time.perf_counter()
                outs[use_cache] = generate(model, prompt, new, temperature=0.0, use_cache=use_cache)
                times[use_cache].append(time.perf_counter() - t0)
        assert torch.equal(outs[True], outs[False]), "cached and uncached greedy generations differ"
        cached, uncached = statistics.median(times[True]), statistics.median(times[False])
        rows.append({"model": label, "tokens generated": new, "with cache (s)": cached,
                     "without cache (s)": uncached, "speed-up": uncached / cached})
    return rows


def bench_training(quick: bool) -> list[dict]:
    tokenizer, tr, va = char_lm_data()
    torch.manual_seed(0)
    model = GPT(GPTConfig(d_vocab=tokenizer.vocab_size, **CHAR_LM_CONFIG))
    steps = 5 if quick else 30
    cfg = TrainConfig(**{**CHAR_LM_TRAIN.__dict__, "max_steps": steps, "eval_every": steps, "eval_batches": 1})
    last = train(model, tr, va, cfg)[-1]
    return [{"model": f"char LM, {model.cfg.n_params:,} parameters", "batch × n_ctx": f"{cfg.batch_size} × {model.cfg.n_ctx}",
             "steps": steps, "tokens / second": last["tokens"] / last["seconds"]}]


def run(quick: bool = False) -> list[dict]:
    forward, kv = bench_forward(quick), bench_kv_cache(quick)
    forward_hf, generate_hf = bench_forward_hf(quick), bench_generate_hf(quick)
    return [
        save("gpt_forward", "GPT forward pass: ours vs TransformerLens 4.x (same config and weights, float32)",
             "The committed character model's sizes (4 layers, d_model 128, 4 heads) with random weights; "
             "TransformerLens runs its TransformerBridge built offline with boot_native. Below 1 means ours is faster.",
             ["batch × pos", "ours / TransformerLens", "ours (ms)", "TransformerLens (ms)"], forward, __file__,
             target="ours no slower than TransformerLens (ours / TransformerLens ≤ 1.0) at every batch × pos",
             met=all(r["ours / TransformerLens"] <= 1.0 for r in forward)),
        save("gpt_hf_forward", "GPT forward pass: ours vs Hugging Face GPT2LMHeadModel (same config and weights, float32)",
             "The committed character model's sizes (4 layers, d_model 128, 4 heads) with random weights, copied into "
             "transformers' GPT2LMHeadModel built from a GPT2Config (mechlearn.gpt.to_hf_gpt2: no download, its default "
             "attention, sdpa), called as model(tokens, use_cache=False) under no_grad. Below 1 means ours is faster.",
             ["batch × pos", "ours / HF", "ours (ms)", "HF (ms)"], forward_hf, __file__,
             target="ours no slower than GPT2LMHeadModel (ours / HF ≤ 1.0) at every batch × pos",
             met=all(r["ours / HF"] <= 1.0 for r in forward_hf)),
        save("gpt_hf_generation", "Greedy KV-cached generation: ours vs Hugging Face generate",
             f"The same model and weights; {GENERATE_NEW} new tokens after an 8-token prompt, greedy, with a KV cache on "
             "both sides: mechlearn.gpt.generate(temperature=0) against GPT2LMHeadModel.generate(do_sample=False, "
             "use_cache=True). Both produce identical tokens. Below 1 means ours is faster.",
             ["model", "prompt", "tokens generated", "ours (ms)", "HF (ms)", "ours / HF"], generate_hf, __file__,
             target=f"greedy generation of {GENERATE_NEW} tokens faster than Hugging Face's (ours / HF < 1.0)",
             met=all(r["ours / HF"] < 1.0 for r in generate_hf)),
        save("kv_cache", "Greedy generation with and without the KV cache",
             "Random-weight models with n_ctx 512 (the committed model's n_ctx of 128 cannot hold 256 new tokens), an "
             "8-token prompt, greedy decoding, median of three runs; cached and uncached runs produce identical tokens. "
             "Without the cache every step re-runs the whole sequence.",
             ["model", "tokens generated", "with cache (s)", "without cache (s)", "speed-up"], kv, __file__,
             target="generating 256 tokens at least 5× faster with the cache than without, for every model size",
             met=all(r["speed-up"] >= 5 for r in kv)),
        save("gpt_training", "Training throughput of the character-level recipe",
             "AdamW steps on random windows of the pydoc text, one thread; the committed checkpoint's manifest "
             "records the throughput of the full run.",
             ["model", "batch × n_ctx", "steps", "tokens / second"], bench_training(quick), __file__),
    ]


if __name__ == "__main__":
    import common

    raise SystemExit(common.main([run], description=__doc__))
