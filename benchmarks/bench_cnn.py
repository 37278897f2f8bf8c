"""Part I benchmark: our as_strided conv2d against torch.nn.functional.conv2d (forward, and forward + backward)."""

from __future__ import annotations

import torch

from common import paired_seconds, save
from mechlearn.cnn import functional as CF

SHAPES = [  # (batch, in, out, size, kernel, stride, padding)
    (64, 1, 16, 8, 3, 1, 1),    # digits-sized, as on Day 16
    (32, 16, 32, 32, 3, 1, 1),  # a CIFAR-sized ResNet layer
    (8, 64, 64, 56, 3, 1, 1),   # a ResNet-34 layer1 convolution, small batch
    (32, 3, 64, 64, 7, 2, 3),   # a ResNet stem
]


def bench_conv(quick: bool) -> list[dict]:
    rows = []
    for b, c, o, n, k, s, p in SHAPES[:2] if quick else SHAPES:
        gen = torch.Generator().manual_seed(0)
        x = torch.randn(b, c, n, n, generator=gen, requires_grad=True)
        w = torch.randn(o, c, k, k, generator=gen, requires_grad=True)

        def ours_fwd():
            with torch.no_grad():
                CF.conv2d(x, w, s, p)

        def ref_fwd():
            with torch.no_grad():
                torch.nn.functional.conv2d(x, w, stride=s, padding=p)

        def ours_both():
            CF.conv2d(x, w, s, p).sum().backward()

        def ref_both():
            torch.nn.functional.conv2d(x, w, stride=s, padding=p).sum().backward()

        f_ours, f_ref = paired_seconds(ours_fwd, ref_fwd, repeats=5)
        b_ours, b_ref = paired_seconds(ours_both, ref_both, repeats=5)
        rows.append({
            "input, kernel": f"{b}×{c}×{n}×{n}, {o}×{c}×{k}×{k}/{s}",
            "forward: ours / torch": f_ours / f_ref,
            "fwd+bwd: ours / torch": b_ours / b_ref,
            "torch fwd+bwd (ms)": b_ref * 1e3,
        })
    return rows


def run(quick: bool = False) -> list[dict]:
    return [save(
        "conv2d",
        "conv2d through as_strided + einsum vs torch.nn.functional.conv2d (float32)",
        "Our convolution builds a strided view of all windows and contracts it with the kernel in one einsum; torch "
        "calls an optimised convolution kernel. Ratios above 1 mean ours is slower.",
        ["input, kernel", "forward: ours / torch", "fwd+bwd: ours / torch", "torch fwd+bwd (ms)"],
        bench_conv(quick),
        __file__,
    )]


if __name__ == "__main__":
    import common

    raise SystemExit(common.main([run], description=__doc__))
