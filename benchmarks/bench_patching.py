"""Part IV benchmark: activation patching against TransformerLens's helper, and attribution patching.

* **Activation patching over every (layer, position, head).** `activation_patch_heads(...,
  by_pos=True)` and `activation_patch_resid` of `mechlearn.interp.patching` against
  TransformerLens's ``get_act_patch_attn_head_out_by_pos`` and ``get_act_patch_resid_pre`` on the
  bridge of the same weights (``to_transformer_lens``), with the same prompts and metric; ours on
  our `GPT` and on the bridge itself. Both are checked equal before timing. Ratio = ours / TL.
* **Attribution vs activation patching.** One forward + one backward pass (plus the cached run)
  against one patched run per site, over the same (layer, position, head) sites. Speed-up =
  activation / attribution.

The model has the IOI model's sizes (3 layers, 4 heads, d_model 64, MLPs) with random weights, a
batch of 16 prompts of 16 tokens; the metric is a logit difference at the last position. Times are
CPU seconds (user + system) of this process, one thread, ours and the reference alternating.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import torch

from common import save
from mechlearn.gpt import GPT, GPTConfig, to_transformer_lens
from mechlearn.interp.patching import (
    activation_patch_heads, activation_patch_resid, attribution_patch_heads,
)

CONFIG = dict(n_ctx=32, d_model=64, n_layers=3, n_heads=4, d_mlp=256, d_vocab=120)
"""The IOI model's sizes (`mechlearn.interp.ioi`), with a vocabulary of about its size."""
BATCH, POS = 16, 16
"""Prompts per batch and tokens per prompt (``--quick``: 4 prompts of 6 tokens, a smoke test)."""
TARGET_RATIO, TARGET_SPEEDUP = 1.0, 20.0
"""The issue's targets: ours / TransformerLens <= 1.0; attribution >= 20x faster than activation patching."""


def _cpu() -> float:
    return time.process_time()


def paired_cpu(ours: Callable[[], Any], reference: Callable[[], Any], repeats: int) -> tuple[float, float]:
    """Median CPU seconds of one call of each, timed in alternation (after one warm-up call each)."""
    ours(), reference()
    t_ours, t_ref = [], []
    for i in range(repeats):
        for fn, out in ((ours, t_ours), (reference, t_ref))[:: 1 if i % 2 == 0 else -1]:
            start = _cpu()
            fn()
            out.append(_cpu() - start)
    return statistics.median(t_ours), statistics.median(t_ref)


def sizes(quick: bool) -> tuple[int, int]:
    return (4, 6) if quick else (BATCH, POS)


def setup(quick: bool) -> tuple[GPT, Any, torch.Tensor, torch.Tensor, Callable]:
    torch.manual_seed(0)
    model = GPT(GPTConfig(**CONFIG)).eval()
    bridge = to_transformer_lens(model)
    g = torch.Generator().manual_seed(1)
    clean = torch.randint(0, CONFIG["d_vocab"], sizes(quick), generator=g)
    corrupted = torch.randint(0, CONFIG["d_vocab"], sizes(quick), generator=g)

    def metric(logits: torch.Tensor) -> torch.Tensor:
        return (logits[:, -1, 1] - logits[:, -1, 2]).mean()

    return model, bridge, clean, corrupted, metric


def run_activation(quick: bool) -> dict:
    import transformer_lens.patching as tl_patching

    model, bridge, clean, corrupted, metric = setup(quick)
    batch, pos = sizes(quick)
    repeats = 1 if quick else 5
    rows = []
    for what, ours_fn, tl_fn, sites in [
        ("heads by position (z)", lambda m: activation_patch_heads(m, clean, corrupted, metric, by_pos=True),
         tl_patching.get_act_patch_attn_head_out_by_pos, CONFIG["n_layers"] * pos * CONFIG["n_heads"]),
        ("residual stream (resid_pre)", lambda m: activation_patch_resid(m, clean, corrupted, metric),
         tl_patching.get_act_patch_resid_pre, CONFIG["n_layers"] * pos),
    ]:
        with torch.no_grad():
            _, clean_cache = bridge.run_with_cache(clean)
        reference = lambda: tl_fn(bridge, corrupted, clean_cache, metric)  # noqa: E731
        expected = reference()
        for name, target in (("our GPT", model), ("the bridge", bridge)):
            got = ours_fn(target)
            assert (got - expected).abs().max() < 1e-4, "ours and TransformerLens disagree; timing them is meaningless"
            t_ours, t_ref = paired_cpu(lambda: ours_fn(target), reference, repeats)
            rows.append({"sweep": what, "ours on": name, "patch sites": sites, "ours (CPU s)": t_ours,
                         "TransformerLens (CPU s)": t_ref, "ours / TransformerLens": t_ours / t_ref})
    met = all(r["ours / TransformerLens"] <= TARGET_RATIO for r in rows)
    return save(
        "patching_activation",
        "Activation patching: ours vs TransformerLens's helpers on the same model",
        f"Every (layer, position, head) of hook_z, and every (layer, position) of resid_pre, patched from a clean "
        f"into a corrupted batch of {batch} prompts of {pos} tokens (denoising), on a random model with the IOI "
        f"model's sizes ({CONFIG['n_layers']} layers, {CONFIG['n_heads']} heads, d_model {CONFIG['d_model']}, "
        "MLPs). TransformerLens's get_act_patch_attn_head_out_by_pos and get_act_patch_resid_pre run one forward "
        "pass of the bridge per site; ours stacks the patched copies of the batch into a few forward passes. "
        "Results checked equal before timing; median CPU seconds of "
        f"{repeats} alternating runs, one thread.",
        ["sweep", "ours on", "patch sites", "ours (CPU s)", "TransformerLens (CPU s)", "ours / TransformerLens"],
        rows, __file__,
        target=f"ours / TransformerLens <= {TARGET_RATIO:g} for activation patching over every (layer, head, position)",
        met=met and not quick,
    )


def run_attribution(quick: bool) -> dict:
    model, bridge, clean, corrupted, metric = setup(quick)
    batch, pos = sizes(quick)
    repeats = 1 if quick else 5
    rows = []
    for name, target in (("our GPT", model), ("the bridge", bridge)):
        activation = lambda: activation_patch_heads(target, clean, corrupted, metric, by_pos=True)  # noqa: E731
        attribution = lambda: attribution_patch_heads(target, clean, corrupted, metric, by_pos=True)  # noqa: E731
        a, b = activation().flatten(), attribution().flatten()
        corr = float(torch.corrcoef(torch.stack([a, b]))[0, 1])
        t_att, t_act = paired_cpu(attribution, activation, repeats)
        rows.append({"model": name, "patch sites": a.numel(), "attribution (CPU s)": t_att,
                     "activation (CPU s)": t_act, "speed-up": t_act / t_att,
                     "correlation": round(corr, 3)})
    met = all(r["speed-up"] >= TARGET_SPEEDUP for r in rows)
    return save(
        "patching_attribution",
        "Attribution patching vs activation patching at every (layer, position, head)",
        f"The same {rows[0]['patch sites']} hook_z sites of a random model with the IOI model's sizes, a batch of "
        f"{batch} prompts of {pos} tokens: attribution patching (a clean forward, a corrupted forward and one "
        "backward) against activation patching (one patched copy of the batch per site, stacked). Correlation: "
        "Pearson's r between the two tables (random weights, so only a smoke test of agreement). Median CPU "
        f"seconds of {repeats} alternating runs, one thread.",
        ["model", "patch sites", "attribution (CPU s)", "activation (CPU s)", "speed-up", "correlation"],
        rows, __file__,
        target=f"attribution patching >= {TARGET_SPEEDUP:g}x faster than activation patching at 100+ sites",
        met=met and not quick,
    )


def run(quick: bool = False) -> list[dict]:
    return [run_activation(quick), run_attribution(quick)]


if __name__ == "__main__":
    import common

    raise SystemExit(common.main([run], description=__doc__))
