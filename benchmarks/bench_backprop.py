"""Part I benchmarks: our autograd engines and our NumPy softmax/cross-entropy against torch.

* ``Value`` vs torch scalar tensors: forward + backward of the same random expression. torch is
  built for big tensors, so on scalars its per-op dispatch dominates; this measures that overhead.
* One SGD training step of the same MLP (64-128-128-10, batch 256, float32 and float64) with
  our ``Tensor`` engine and with torch: forward, cross-entropy, backward, update.
* Per-operation overhead on tiny tensors (forward + backward of one multiply on a 2×2 tensor).
* Our cross-entropy forward + derived backward (NumPy) vs ``F.cross_entropy`` + autograd (torch),
  float64, over a few batch sizes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from common import paired_seconds, save
from mechlearn.backprop import Tensor, Value, cross_entropy, cross_entropy_backward, nn
from mechlearn.testing import random_expression


def bench_value(quick: bool) -> list[dict]:
    rows = []
    for n_ops in (10, 100) if quick else (10, 100, 1000):
        rng = np.random.default_rng(n_ops)
        f, _ = random_expression(rng, 4, n_ops)
        xs = list(rng.normal(size=4))

        def ours():
            vs = [Value(x) for x in xs]
            f(*vs).backward()

        def ref():
            ts = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
            f(*ts).backward()

        t_ours, t_ref = paired_seconds(ours, ref)
        rows.append({"graph ops": n_ops, "ours (µs)": t_ours * 1e6, "torch (µs)": t_ref * 1e6, "ours / torch": t_ours / t_ref})
    return rows


def bench_cross_entropy(quick: bool) -> list[dict]:
    rows = []
    for batch, n_classes in ((32, 10), (256, 10)) if quick else ((32, 10), (256, 10), (256, 1000), (4096, 100)):
        rng = np.random.default_rng(0)
        z, y = rng.normal(size=(batch, n_classes)), rng.integers(0, n_classes, size=batch)
        zt, yt = torch.tensor(z), torch.tensor(y)

        def ours():
            cross_entropy(z, y)
            cross_entropy_backward(z, y)

        def ref():
            t = zt.clone().requires_grad_(True)
            F.cross_entropy(t, yt).backward()

        t_ours, t_ref = paired_seconds(ours, ref)
        rows.append({"logits": f"{batch}×{n_classes}", "ours (µs)": t_ours * 1e6, "torch (µs)": t_ref * 1e6, "ours / torch": t_ours / t_ref})
    return rows


def bench_training_step(quick: bool) -> list[dict]:
    rows = []
    for dtype, tdtype in ((np.float32, torch.float32), (np.float64, torch.float64)):
        rng = np.random.default_rng(0)
        ours = nn.MLP((64, 128, 128, 10), rng=rng, dtype=dtype)
        ref = ours.to_torch().to(tdtype)
        x, y = rng.normal(size=(256, 64)).astype(dtype), rng.integers(0, 10, size=256)
        xt, yt = torch.tensor(x), torch.tensor(y)
        opt, opt_ref = nn.SGD(ours.parameters(), lr=0.01), torch.optim.SGD(ref.parameters(), lr=0.01)

        def step_ours():
            loss = nn.cross_entropy(ours(Tensor(x)), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        def step_ref():
            loss = F.cross_entropy(ref(xt), yt)
            opt_ref.zero_grad()
            loss.backward()
            opt_ref.step()

        t_ours, t_ref = paired_seconds(step_ours, step_ref)
        rows.append({"case": f"training step, {np.dtype(dtype).name}", "ours (µs)": t_ours * 1e6, "torch (µs)": t_ref * 1e6, "ours / torch": t_ours / t_ref})

    a, b = Tensor(np.ones((2, 2)), requires_grad=True), np.ones((2, 2))
    at, bt = torch.ones(2, 2, dtype=torch.float64, requires_grad=True), torch.ones(2, 2, dtype=torch.float64)

    def tiny_ours():
        (a * b).backward(np.ones((2, 2)))

    def tiny_ref():
        (at * bt).backward(torch.ones(2, 2, dtype=torch.float64))

    t_ours, t_ref = paired_seconds(tiny_ours, tiny_ref)
    rows.append({"case": "one op on 2×2 (overhead)", "ours (µs)": t_ours * 1e6, "torch (µs)": t_ref * 1e6, "ours / torch": t_ours / t_ref})
    return rows


def run(quick: bool = False) -> list[dict]:
    steps = bench_training_step(quick)
    return [
        save(
            "tensor_engine",
            "Tensor engine: one SGD training step of an MLP, ours vs torch",
            "An MLP 64-128-128-10 on a batch of 256: forward, cross-entropy, backward and SGD update, with "
            "mechlearn.backprop (NumPy) and with torch, same weights, one thread each. "
            "The last row times one multiply and its backward on a 2×2 tensor: the fixed cost per operation.",
            ["case", "ours (µs)", "torch (µs)", "ours / torch"],
            steps,
            __file__,
            target="a training step within 2× of torch's (ours / torch ≤ 2 in float32 and float64)",
            met=all(r["ours / torch"] <= 2 for r in steps if r["case"].startswith("training step")),
        ),
        save(
            "value_autograd",
            "Scalar autograd: Value vs torch scalar tensors (forward + backward)",
            "The same random expression evaluated and differentiated with mechlearn's Value and with "
            "float64 torch scalars. Below 1 means ours is faster.",
            ["graph ops", "ours (µs)", "torch (µs)", "ours / torch"],
            bench_value(quick),
            __file__,
        ),
        save(
            "cross_entropy",
            "Cross-entropy forward + backward: NumPy (derived gradient) vs torch autograd",
            "mechlearn.backprop.cross_entropy and cross_entropy_backward against F.cross_entropy "
            "with .backward(), float64. Below 1 means ours is faster.",
            ["logits", "ours (µs)", "torch (µs)", "ours / torch"],
            bench_cross_entropy(quick),
            __file__,
        ),
    ]


if __name__ == "__main__":
    import common

    raise SystemExit(common.main([run], description=__doc__))
