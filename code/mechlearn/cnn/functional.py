"""Convolutions, padding and max-pooling written with ``as_strided`` (ARENA 0.2).

A convolution slides a kernel over its input and takes a dot product at every position. Doing
that with Python loops is slow; copying every window into a big array (``im2col``) costs memory.
``torch.as_strided`` does neither: it returns a *view* of the input whose extra axes step
through the windows, by choosing strides (how many elements to skip along each axis). For an
input of shape ``(B, C, H, W)`` with strides ``(sB, sC, sH, sW)``, the windows of a ``kH × kW``
kernel at stride ``s`` form the view::

    shape   (B, C, H_out, W_out, kH, kW)
    strides (sB, sC, sH·s, sW·s, sH·d, sW·d)      (d: dilation)

and the convolution is one ``einsum`` of that view with the weights. Everything here is
differentiable by torch's autograd (``as_strided`` and ``einsum`` both are), and equals
``torch.nn.functional`` (the reference in the tests).

Inputs are always batched: ``(N, C, H, W)`` (``(N, C, W)`` for the 1-D functions). Unlike torch,
an unbatched ``(C, H, W)`` input is refused with a ``ValueError`` that says to add the batch axis
(``x.unsqueeze(0)``), rather than guessed at.

Reference: ARENA chapter 0.2, *CNNs & ResNets* (``as_strided``, ``conv1d``, ``conv2d``,
``maxpool2d``); Dumoulin & Visin, *A guide to convolution arithmetic* (2016).
"""

from __future__ import annotations

import numbers

import torch
from jaxtyping import Float
from torch import Tensor

__all__ = ["pad1d", "pad2d", "conv1d", "conv2d", "maxpool2d", "output_size", "fractional_stride_2d", "conv_transpose2d"]


def _pair(v: int | tuple[int, int], name: str) -> tuple[int, int]:
    pair = (v, v) if isinstance(v, numbers.Integral) else tuple(v)
    if len(pair) != 2 or any(isinstance(p, bool) or not isinstance(p, numbers.Integral) or p < 0 for p in pair):
        raise ValueError(f"{name} should be a non-negative int or a pair of them, got {v!r}")
    return int(pair[0]), int(pair[1])


def _check_ndim(x: Tensor, ndim: int, layout: str, name: str = "input") -> None:
    """Raise unless ``x`` is a floating-point tensor with ``ndim`` axes (unbatched input is not accepted)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} should be a torch.Tensor of shape {layout}, got {type(x).__name__}")
    if x.ndim != ndim:
        hint = "; for a single example add a batch axis with x.unsqueeze(0)" if x.ndim == ndim - 1 and name == "input" else ""
        raise ValueError(f"{name} should have shape {layout} ({ndim} axes), got shape {tuple(x.shape)}{hint}")
    if not x.is_floating_point():
        raise TypeError(f"{name} should be a floating-point tensor, got dtype {x.dtype}")


def _check_pair(x: Tensor, weight: Tensor) -> None:
    if x.shape[1] != weight.shape[1]:
        raise ValueError(f"input has {x.shape[1]} channels but the weight expects {weight.shape[1]}")
    if x.dtype != weight.dtype:
        raise TypeError(f"input is {x.dtype} but the weight is {weight.dtype}: convert one (e.g. weight.to(x.dtype))")


def output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """``floor((size + 2·padding − dilation·(kernel − 1) − 1) / stride) + 1``: positions the kernel visits."""
    if min(size, kernel, stride, dilation) < 1 or padding < 0:
        raise ValueError(
            f"need size, kernel, stride, dilation >= 1 and padding >= 0, got size={size}, kernel={kernel}, "
            f"stride={stride}, dilation={dilation}, padding={padding}"
        )
    out = (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1
    if out < 1:
        raise ValueError(
            f"a kernel of size {kernel} (dilation {dilation}) does not fit an input of size {size} with padding {padding}"
        )
    return out


def pad1d(x: Float[Tensor, "batch channels width"], left: int, right: int, value: float = 0.0) -> Float[Tensor, "batch channels padded"]:
    """Pad the last axis with ``value``."""
    _check_ndim(x, 3, "(N, C, W)")
    if min(left, right) < 0:
        raise ValueError(f"padding should be non-negative, got left={left}, right={right}")
    out = x.new_full((*x.shape[:-1], left + x.shape[-1] + right), value)
    out[..., left : left + x.shape[-1]] = x
    return out


def pad2d(x: Float[Tensor, "batch channels height width"], left: int, right: int, top: int, bottom: int,
          value: float = 0.0) -> Float[Tensor, "batch channels padded_h padded_w"]:
    """Pad the last two axes with ``value``."""
    _check_ndim(x, 4, "(N, C, H, W)")
    if min(left, right, top, bottom) < 0:
        raise ValueError(f"padding should be non-negative, got left={left}, right={right}, top={top}, bottom={bottom}")
    b, c, h, w = x.shape
    out = x.new_full((b, c, top + h + bottom, left + w + right), value)
    out[..., top : top + h, left : left + w] = x
    return out


def conv1d(x: Float[Tensor, "batch in_channels width"], weight: Float[Tensor, "out_channels in_channels kernel"],
           stride: int = 1, padding: int = 0, dilation: int = 1) -> Float[Tensor, "batch out_channels out_width"]:
    """1-D convolution (cross-correlation, as in torch), through an ``as_strided`` view of the windows."""
    _check_ndim(x, 3, "(N, C, W)")
    _check_ndim(weight, 3, "(out_channels, in_channels, kernel)", "weight")
    _check_pair(x, weight)
    if stride < 1 or dilation < 1:
        raise ValueError(f"stride and dilation should be at least 1, got {stride} and {dilation}")
    x = pad1d(x, padding, padding)
    b, c, w = x.shape
    k = weight.shape[-1]
    w_out = output_size(w, k, stride, 0, dilation)
    sb, sc, sw = x.stride()
    windows = x.as_strided((b, c, w_out, k), (sb, sc, sw * stride, sw * dilation))
    return torch.einsum("b c w k, o c k -> b o w", windows, weight)


def conv2d(x: Float[Tensor, "batch in_channels height width"],
           weight: Float[Tensor, "out_channels in_channels kernel_h kernel_w"],
           stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
           dilation: int | tuple[int, int] = 1) -> Float[Tensor, "batch out_channels out_h out_w"]:
    """2-D convolution (cross-correlation, as in torch), through an ``as_strided`` view of the windows."""
    _check_ndim(x, 4, "(N, C, H, W)")
    _check_ndim(weight, 4, "(out_channels, in_channels, kH, kW)", "weight")
    _check_pair(x, weight)
    (sh_, sw_), (ph, pw), (dh, dw) = _pair(stride, "stride"), _pair(padding, "padding"), _pair(dilation, "dilation")
    if min(sh_, sw_, dh, dw) < 1:
        raise ValueError(f"stride and dilation should be at least 1, got {stride} and {dilation}")
    x = pad2d(x, pw, pw, ph, ph)
    b, c, h, w = x.shape
    kh, kw = weight.shape[-2:]
    h_out, w_out = output_size(h, kh, sh_, 0, dh), output_size(w, kw, sw_, 0, dw)
    sb, sc, sh, sw = x.stride()
    # (B, C, H_out, W_out, kH, kW): the window at (i, j) starts at row i·stride, column j·stride
    windows = x.as_strided((b, c, h_out, w_out, kh, kw), (sb, sc, sh * sh_, sw * sw_, sh * dh, sw * dw))
    return torch.einsum("b c h w i j, o c i j -> b o h w", windows, weight)


def maxpool2d(x: Float[Tensor, "batch channels height width"], kernel_size: int | tuple[int, int],
              stride: int | tuple[int, int] | None = None,
              padding: int | tuple[int, int] = 0) -> Float[Tensor, "batch channels out_h out_w"]:
    """The maximum over each window (stride defaults to the kernel size, padding with −∞, as torch).

    The gradient of a window's output goes to *one* of its maxima, the first in row-major order
    within the window (what torch's CPU kernel picks), not split among ties as ``amax`` would.
    Where windows overlap (stride < kernel) an input that is chosen by several windows receives
    the sum of their gradients, again as torch.
    """
    _check_ndim(x, 4, "(N, C, H, W)")
    (kh, kw) = _pair(kernel_size, "kernel_size")
    (sh_, sw_) = _pair(stride if stride is not None else kernel_size, "stride")
    (ph, pw) = _pair(padding, "padding")
    if min(kh, kw, sh_, sw_) < 1:
        raise ValueError(f"kernel_size and stride should be at least 1, got {kernel_size} and {stride}")
    if ph > kh // 2 or pw > kw // 2:
        raise ValueError(f"padding should be at most half the kernel size (as in torch), got {padding} for kernel {kernel_size}")
    x = pad2d(x, pw, pw, ph, ph, value=float("-inf"))
    b, c, h, w = x.shape
    h_out, w_out = output_size(h, kh, sh_), output_size(w, kw, sw_)
    sb, sc, sh, sw = x.stride()
    windows = x.as_strided((b, c, h_out, w_out, kh, kw), (sb, sc, sh * sh_, sw * sw_, sh, sw))
    flat = windows.reshape(b, c, h_out, w_out, kh * kw)  # row-major within each window, as torch scans it
    # argmax returns the first maximum; gather sends the gradient to that entry only.
    first_max = flat.detach().argmax(dim=-1, keepdim=True)
    return flat.gather(-1, first_max).squeeze(-1)


def fractional_stride_2d(x: Float[Tensor, "batch channels height width"], stride: int) -> Float[Tensor, "batch channels h2 w2"]:
    """Insert ``stride − 1`` zeros between neighbouring pixels (a "fractionally strided" input)."""
    _check_ndim(x, 4, "(N, C, H, W)")
    if stride < 1:
        raise ValueError(f"stride should be at least 1, got {stride}")
    b, c, h, w = x.shape
    out = x.new_zeros((b, c, (h - 1) * stride + 1, (w - 1) * stride + 1))
    out[..., ::stride, ::stride] = x
    return out


def conv_transpose2d(x: Float[Tensor, "batch in_channels height width"],
                     weight: Float[Tensor, "in_channels out_channels kernel_h kernel_w"],
                     stride: int = 1, padding: int = 0) -> Float[Tensor, "batch out_channels out_h out_w"]:
    """Transposed convolution (the gradient of `conv2d` with respect to its input), as ``F.conv_transpose2d``.

    Equivalent to: spread the input out with ``stride − 1`` zeros between pixels, pad it by
    ``k − 1 − padding`` on each side, and convolve with the kernel flipped in both spatial axes and
    with its channel axes swapped. Output size: ``(size − 1)·stride − 2·padding + k``.
    """
    _check_ndim(x, 4, "(N, C, H, W)")
    _check_ndim(weight, 4, "(in_channels, out_channels, kH, kW)", "weight")
    if x.shape[1] != weight.shape[0]:
        raise ValueError(f"input has {x.shape[1]} channels but the weight expects {weight.shape[0]} (weight is (in, out, kH, kW))")
    if x.dtype != weight.dtype:
        raise TypeError(f"input is {x.dtype} but the weight is {weight.dtype}: convert one (e.g. weight.to(x.dtype))")
    kh, kw = weight.shape[-2:]
    if not 0 <= padding <= min(kh, kw) - 1:
        raise ValueError(f"padding should be between 0 and kernel size − 1 = {min(kh, kw) - 1}, got {padding}")
    spread = fractional_stride_2d(x, stride)
    padded = pad2d(spread, kw - 1 - padding, kw - 1 - padding, kh - 1 - padding, kh - 1 - padding)
    flipped = weight.flip(-1, -2).transpose(0, 1)
    return conv2d(padded, flipped)
