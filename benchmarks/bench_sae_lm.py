"""Part IV-b benchmark: the committed char-LM SAEs against the issue's targets, on held-out tokens.

`mechlearn.sae.lm.char_lm_sae_recipe` trains one SAE per architecture (standard, gated, JumpReLU,
TopK; 512 latents each) on the Part II char-LM's residual stream entering block 2
(`CHAR_LM_HOOK`) and commits them with manifests. Here each committed SAE is loaded (sha256
checked) and evaluated afresh on held-out validation windows (`char_lm_eval_tokens`: 64 windows
of 128 characters, 8,192 tokens, not seen by the char-LM's or the SAEs' training): fraction of
variance explained, mean L0, cross-entropy loss recovered when the SAE is spliced into the forward
pass (0 = zero ablation of the residual stream, 1 = the clean model), and the fraction of latents
that never fire on these tokens. The issue's targets: FVE ≥ 0.9 at mean L0 ≤ 32, CE loss recovered
≥ 0.9, dead fraction ≤ 0.05 after resampling. The training CPU seconds and checkpoint bytes come
from the manifests (the recipe's run, one thread). ``--quick`` evaluates on 8 windows.
"""

from __future__ import annotations

import time

import torch

import common as bench_common
from common import save
from mechlearn.gpt import load_char_lm
from mechlearn.sae.lm import (
    CHAR_LM_HOOK, EVAL_SEQUENCES, TARGETS, char_lm_eval_tokens, evaluate_lm_sae, load_char_lm_sae, meets_targets,
)
from mechlearn.sae.training import ARCHITECTURES

COLUMNS = ["architecture", "sparsity setting", "FVE", "L0", "CE loss recovered", "dead fraction", "CE clean",
           "CE spliced", "CE zero-ablated", "meets targets", "training CPU s", "bytes", "eval CPU s"]


def _setting(config: dict) -> str:
    for knob in ("k", "l1_coefficient", "sparsity_coefficient"):
        if knob in config:
            return f"{knob} = {config[knob]:g}"
    return ""


def run(quick: bool = False) -> list[dict]:
    torch.set_num_threads(1)
    model = load_char_lm()[0]
    tokens = char_lm_eval_tokens(8 if quick else EVAL_SEQUENCES)
    rows = []
    for arch in ARCHITECTURES:
        sae, manifest = load_char_lm_sae(arch)
        t0 = time.process_time()
        m = evaluate_lm_sae(model, sae, tokens, CHAR_LM_HOOK)
        seconds = time.process_time() - t0
        met = meets_targets(m)
        failed = [k for k in ("fve", "l0", "ce_loss_recovered", "dead_fraction") if not met[k]]
        rows.append({
            "architecture": arch, "sparsity setting": _setting(manifest["config"]), "FVE": m["fve"], "L0": m["l0"],
            "CE loss recovered": m["ce_loss_recovered"], "dead fraction": m["dead_fraction"],
            "CE clean": m["ce_clean"], "CE spliced": m["ce_spliced"], "CE zero-ablated": m["ce_zero_ablated"],
            "meets targets": "yes" if met["all"] else "no: " + ", ".join(failed),
            "training CPU s": manifest["seconds"], "bytes": manifest["bytes"], "eval CPU s": seconds,
        })
    met = not quick and any(r["meets targets"] == "yes" for r in rows)
    result = save(
        "sae_char_lm", "SAEs on the char-LM's residual stream: FVE, L0, CE loss recovered, dead latents",
        f"The committed SAEs of mechlearn.sae.lm (512 latents on the Part II char-LM's {CHAR_LM_HOOK}, "
        "d_model 128), loaded with their sha256 checked and evaluated in this run on "
        f"{tokens.shape[0]} held-out validation windows of {tokens.shape[1]} characters "
        f"({tokens.numel():,} tokens). FVE: fraction of variance explained, 1 - sum|x - x_hat|^2 / "
        "sum|x - mean x|^2. L0: mean latents firing per token. CE loss recovered: (zero-ablated - spliced) / "
        "(zero-ablated - clean) next-token loss, with the SAE's reconstruction replacing the residual stream; "
        "the three losses are in nats per character. Dead fraction: latents that fire on none of these tokens. "
        "Training CPU s and bytes: from the recipe's manifest (one thread). Eval CPU s: this evaluation.",
        COLUMNS, rows, __file__,
        target=f"per architecture: FVE >= {TARGETS['fve']} at mean L0 <= {TARGETS['l0']:.0f}, CE loss recovered >= "
               f"{TARGETS['ce_loss_recovered']:.0%}, dead fraction <= {TARGETS['dead_fraction']:.0%} on held-out "
               "tokens; met when at least one architecture meets all four (each row says which it misses)",
        met=met,
    )
    return [result]


if __name__ == "__main__":
    raise SystemExit(bench_common.main([run], description=__doc__))
