"""Part I benchmarks: our scalar autograd and our NumPy softmax/cross-entropy against torch.

* ``Value`` vs torch scalar tensors: forward + backward of the same random expression. torch is
  built for big tensors, so on scalars its per-op dispatch dominates; this measures that overhead.
* Our cross-entropy forward + derived backward (NumPy) vs ``F.cross_entropy`` + autograd (torch),
  float64, over a few batch sizes.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from common import median_seconds, save
from mechlearn.backprop import Value, cross_entropy, cross_entropy_backward
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

        t_ours, t_ref = median_seconds(ours), median_seconds(ref)
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

        t_ours, t_ref = median_seconds(ours), median_seconds(ref)
        rows.append({"logits": f"{batch}×{n_classes}", "ours (µs)": t_ours * 1e6, "torch (µs)": t_ref * 1e6, "ours / torch": t_ours / t_ref})
    return rows


def run(quick: bool = False) -> list[dict]:
    return [
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
    run()
