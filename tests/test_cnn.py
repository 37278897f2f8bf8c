"""Days 13–16: from-scratch layers, convolutions, BatchNorm and ResNets equal torch.nn with copied weights."""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from torch import nn

from conftest import unchecked
from mechlearn.cnn import BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU, ResNet
from mechlearn.cnn import functional as F
from mechlearn.testing import FLOAT64, assert_close

pytestmark = pytest.mark.usefixtures("float64")


@pytest.fixture
def float64():
    """New parameters are float64 in these tests, for tight comparisons; the default is restored after."""
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 2), c=st.integers(1, 3), o=st.integers(1, 3), w=st.integers(1, 12), k=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2), seed=st.integers(0, 1000))
def test_conv1d_matches_torch(b, c, o, w, k, stride, padding, dilation, seed):
    assume(w + 2 * padding >= dilation * (k - 1) + 1)  # a kernel that does not fit is the error test's case
    gen = torch.Generator().manual_seed(seed)
    x, weight = torch.randn(b, c, w, generator=gen, dtype=torch.float64), torch.randn(o, c, k, generator=gen, dtype=torch.float64)
    ref = torch.nn.functional.conv1d(x, weight, stride=stride, padding=padding, dilation=dilation)
    assert_close(F.conv1d(x, weight, stride, padding, dilation), ref, FLOAT64)


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 3), o=st.integers(1, 3), h=st.integers(3, 9), w=st.integers(3, 9), kh=st.integers(1, 3), kw=st.integers(1, 3),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)), padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)), seed=st.integers(0, 1000))
def test_conv2d_forward_and_gradients_match_torch(c, o, h, w, kh, kw, stride, padding, dilation, seed):
    assume(h + 2 * padding[0] >= dilation[0] * (kh - 1) + 1 and w + 2 * padding[1] >= dilation[1] * (kw - 1) + 1)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c, h, w, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(o, c, kh, kw, generator=gen, dtype=torch.float64, requires_grad=True)
    ours = F.conv2d(x, weight, stride, padding, dilation)
    xr, wr = x.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    ref = torch.nn.functional.conv2d(xr, wr, stride=stride, padding=padding, dilation=dilation)
    assert_close(ours, ref, FLOAT64, name="conv2d forward")
    g = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    ours.backward(g)
    ref.backward(g)
    assert_close(x.grad, xr.grad, FLOAT64, name="conv2d d/dx")
    assert_close(weight.grad, wr.grad, FLOAT64, name="conv2d d/dweight")


@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 1, 1), (3, 2, 1), (2, 1, 0), ((2, 3), (1, 2), (1, 1))])
def test_maxpool2d_matches_torch(kernel, stride, padding):
    x = torch.randn(2, 3, 7, 8, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ref = torch.nn.functional.max_pool2d(x, kernel, stride, padding)
    assert_close(F.maxpool2d(x, kernel, stride, padding), ref, FLOAT64)


def _tied_input(kind, gen, shape=(2, 3, 7, 8)):
    """Inputs whose windows have several equal maxima, where the choice of gradient route shows."""
    if kind == "relu integers":  # many zeros, and small integers that repeat within a window
        return torch.randint(-3, 3, shape, generator=gen).double().relu()
    if kind == "zeros":
        return torch.zeros(shape, dtype=torch.float64)
    return torch.randn(shape, generator=gen, dtype=torch.float64)


@pytest.mark.parametrize("kind", ["random", "relu integers", "zeros"])
@pytest.mark.parametrize("kernel, stride, padding", [(2, None, 0), (3, 1, 1), (3, 2, 1), (2, 1, 0), ((2, 3), (1, 2), (1, 1))])
def test_maxpool2d_gradients_match_torch_even_at_ties(kernel, stride, padding, kind):
    """torch sends a window's gradient to one maximum (the first in row-major order within the window),
    and, where windows overlap, adds up the gradients of every window that chose an entry."""
    gen = torch.Generator().manual_seed(0)
    x = _tied_input(kind, gen).requires_grad_()
    xr = x.detach().clone().requires_grad_()
    ours = F.maxpool2d(x, kernel, stride, padding)
    ref = torch.nn.functional.max_pool2d(xr, kernel, stride, padding)
    assert_close(ours, ref, FLOAT64, name="maxpool2d forward")
    g = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    ours.backward(g)
    ref.backward(g)
    assert_close(x.grad, xr.grad, FLOAT64,
                 name=f"maxpool2d d/dx on {kind} inputs (a gradient split among tied maxima fails here)")


def test_maxpool2d_sends_a_tied_windows_gradient_to_its_first_maximum():
    x = torch.zeros(1, 1, 2, 2, dtype=torch.float64, requires_grad=True)
    F.maxpool2d(x, 2).sum().backward()
    assert x.grad.flatten().tolist() == [1.0, 0.0, 0.0, 0.0], f"all of it to the first zero, got {x.grad.flatten().tolist()}"


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 2), c=st.integers(1, 3), o=st.integers(1, 3), w=st.integers(1, 12), k=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.integers(0, 2), dilation=st.integers(1, 2), seed=st.integers(0, 1000))
def test_conv1d_gradients_match_torch(b, c, o, w, k, stride, padding, dilation, seed):
    assume(w + 2 * padding >= dilation * (k - 1) + 1)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(b, c, w, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(o, c, k, generator=gen, dtype=torch.float64, requires_grad=True)
    xr, wr = x.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    ours = F.conv1d(x, weight, stride, padding, dilation)
    ref = torch.nn.functional.conv1d(xr, wr, stride=stride, padding=padding, dilation=dilation)
    g = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    ours.backward(g)
    ref.backward(g)
    assert_close(x.grad, xr.grad, FLOAT64, name="conv1d d/dx")
    assert_close(weight.grad, wr.grad, FLOAT64, name="conv1d d/dweight")


def test_dtype_mismatch_is_named():
    with pytest.raises(TypeError, match="float64 but the weight is torch.float32"):
        unchecked(F.conv2d)(torch.zeros(1, 1, 3, 3, dtype=torch.float64), torch.zeros(1, 1, 3, 3, dtype=torch.float32))


def test_padding_matches_torch():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    assert_close(F.pad2d(x, 1, 2, 3, 0, value=7.0), torch.nn.functional.pad(x, (1, 2, 3, 0), value=7.0), FLOAT64)
    assert_close(F.pad1d(x[..., 0, :], 2, 1), torch.nn.functional.pad(x[..., 0, :], (2, 1)), FLOAT64)


def _copy(ours, theirs):
    theirs.load_state_dict(ours.state_dict())
    return theirs


def test_linear_relu_flatten_match_torch_with_copied_weights():
    gen = torch.Generator().manual_seed(1)
    ours = nn.Sequential(Flatten(), Linear(12, 5, generator=gen), ReLU(), Linear(5, 3, generator=gen)).double()
    ref = _copy(ours, nn.Sequential(nn.Flatten(), nn.Linear(12, 5), nn.ReLU(), nn.Linear(5, 3)).double())
    x = torch.randn(4, 3, 2, 2, dtype=torch.float64)
    assert_close(ours(x), ref(x), FLOAT64)
    assert Flatten(1, 2)(x).shape == nn.Flatten(1, 2)(x).shape == (4, 6, 2)


def test_conv_and_maxpool_modules_match_torch():
    gen = torch.Generator().manual_seed(2)
    ours = nn.Sequential(Conv2d(3, 4, 3, stride=2, padding=1, generator=gen), MaxPool2d(2)).double()
    ref = _copy(ours, nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False), nn.MaxPool2d(2)).double())
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    assert_close(ours(x), ref(x), FLOAT64)


def test_batchnorm_matches_torch_in_train_and_eval_modes():
    ours, ref = BatchNorm2d(3).double(), nn.BatchNorm2d(3).double()
    with torch.no_grad():
        ours.weight.copy_(torch.tensor([1.5, 0.5, -1.0]))
        ours.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    ref.load_state_dict(ours.state_dict())
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):  # several training batches: running statistics must track torch's
        x = torch.randn(4, 3, 5, 5, generator=gen, dtype=torch.float64) * 2 + 1
        assert_close(ours(x), ref(x), FLOAT64, name="train-mode output")
    for name in ("running_mean", "running_var"):
        assert_close(getattr(ours, name), getattr(ref, name), FLOAT64, name=name)
    assert ours.num_batches_tracked.item() == ref.num_batches_tracked.item() == 5
    ours.eval(), ref.eval()
    x = torch.randn(2, 3, 5, 5, generator=gen, dtype=torch.float64)
    assert_close(ours(x), ref(x), FLOAT64, name="eval-mode output")
    assert set(ours.state_dict()) == set(ref.state_dict())


class _TorchBlock(nn.Module):
    """torchvision's BasicBlock, written with torch.nn layers: the independent reference."""

    def __init__(self, fin, fout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(fin, fout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(fout)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(fout, fout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(fout)
        self.downsample = nn.Sequential(nn.Conv2d(fin, fout, 1, stride, bias=False), nn.BatchNorm2d(fout)) if stride != 1 or fin != fout else None

    def forward(self, x):
        out = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(out + (self.downsample(x) if self.downsample is not None else x))


class _TorchResNet(nn.Module):
    def __init__(self, blocks, feats, n_classes, stem):
        super().__init__()
        self.conv1 = nn.Conv2d(3, feats[0], 7 if stem else 3, 2 if stem else 1, 3 if stem else 1, bias=False)
        self.bn1 = nn.BatchNorm2d(feats[0])
        self.relu = nn.ReLU()
        self.maxpool = nn.MaxPool2d(3, 2, 1) if stem else nn.Identity()
        ins = [feats[0], *feats[:-1]]
        for i, (n, fin, fout) in enumerate(zip(blocks, ins, feats), start=1):
            stride = 1 if i == 1 else 2
            setattr(self, f"layer{i}", nn.Sequential(_TorchBlock(fin, fout, stride), *(_TorchBlock(fout, fout, 1) for _ in range(n - 1))))
        self.n = len(blocks)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(feats[-1], n_classes)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        for i in range(1, self.n + 1):
            x = getattr(self, f"layer{i}")(x)
        return self.fc(self.avgpool(x).flatten(1))


@pytest.mark.parametrize("stem", [True, False])
def test_resnet_state_dict_loads_into_the_torchvision_layout_and_outputs_match(stem):
    ours = ResNet((2, 1, 1), (8, 16, 32), n_classes=5, stem=stem, generator=torch.Generator().manual_seed(4)).double()
    ref = _TorchResNet((2, 1, 1), (8, 16, 32), 5, stem).double()
    assert set(ours.state_dict()) == set(ref.state_dict()), "parameter and buffer names should be torchvision's"
    ref.load_state_dict(ours.state_dict())
    x = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    out, out_ref = ours(x), ref(x)
    assert_close(out, out_ref, FLOAT64, name="train-mode logits")
    g = torch.randn(out.shape, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    out.backward(g)
    out_ref.backward(g)
    ref_params = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        assert_close(p.grad, ref_params[name].grad, FLOAT64, name=f"train-mode gradient of {name}")
    ours.eval(), ref.eval()
    assert_close(ours(x), ref(x), FLOAT64, name="eval-mode logits")


def test_resnet34_has_torchvisions_parameter_count():
    model = ResNet((3, 4, 6, 3), (64, 128, 256, 512), n_classes=1000)
    assert sum(p.numel() for p in model.parameters()) == 21_797_672  # torchvision.models.resnet34's count


@pytest.mark.parametrize("make, words", [
    (lambda: unchecked(F.conv2d)(torch.zeros(1, 2, 5, 5), torch.zeros(3, 1, 3, 3)), "2 channels but the weight expects 1"),
    (lambda: unchecked(F.conv2d)(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 3, 3)), "does not fit"),
    (lambda: unchecked(F.conv2d)(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3), stride=0), "at least 1"),
    (lambda: unchecked(F.conv2d)(torch.zeros(1, 1, 5, 5), torch.zeros(1, 1, 3, 3), padding=-1), "non-negative"),
    (lambda: unchecked(F.maxpool2d)(torch.zeros(1, 1, 5, 5), 2, padding=2), "half the kernel"),
    (lambda: unchecked(BatchNorm2d.forward)(BatchNorm2d(3), torch.zeros(2, 4, 3, 3)), r"\(batch, 3, h, w\)"),
    (lambda: unchecked(BatchNorm2d.forward)(BatchNorm2d(3), torch.zeros(1, 3, 1, 1)), "more than one value"),
    (lambda: unchecked(Linear.forward)(Linear(3, 2), torch.zeros(1, 4)), "last axis 3"),
    (lambda: ResNet((1, 1), (8,)), "one entry per group"),
])
def test_bad_input_raises_a_clear_error(make, words):
    with pytest.raises(ValueError, match=words):
        make()


@settings(max_examples=40, deadline=None)
@given(c=st.integers(1, 3), o=st.integers(1, 3), h=st.integers(1, 6), w=st.integers(1, 6), k=st.integers(1, 4),
       stride=st.integers(1, 3), padding=st.integers(0, 3), seed=st.integers(0, 1000))
def test_conv_transpose2d_forward_and_gradients_match_torch(c, o, h, w, k, stride, padding, seed):
    assume(padding <= k - 1 and (h - 1) * stride - 2 * padding + k >= 1 and (w - 1) * stride - 2 * padding + k >= 1)
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(2, c, h, w, generator=gen, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(c, o, k, k, generator=gen, dtype=torch.float64, requires_grad=True)
    xr, wr = x.detach().clone().requires_grad_(), weight.detach().clone().requires_grad_()
    ours = F.conv_transpose2d(x, weight, stride, padding)
    ref = torch.nn.functional.conv_transpose2d(xr, wr, stride=stride, padding=padding)
    assert_close(ours, ref, FLOAT64, name="conv_transpose2d forward")
    g = torch.randn(ref.shape, generator=gen, dtype=torch.float64)
    ours.backward(g)
    ref.backward(g)
    assert_close(x.grad, xr.grad, FLOAT64, name="d/dx")
    assert_close(weight.grad, wr.grad, FLOAT64, name="d/dweight")


def test_conv_transpose_is_the_gradient_of_conv():
    """conv_transpose2d(g, w) is the vector-Jacobian product of conv2d(·, w): the definition of 'transposed'."""
    gen = torch.Generator().manual_seed(9)
    x = torch.randn(1, 2, 7, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, 3, generator=gen, dtype=torch.float64)
    out = F.conv2d(x, w, stride=2, padding=1)
    g = torch.randn(out.shape, generator=gen, dtype=torch.float64)
    out.backward(g)
    assert_close(F.conv_transpose2d(g, w, stride=2, padding=1), x.grad, FLOAT64)


def test_conv_transpose_bad_input():
    with pytest.raises(ValueError, match="padding should be between"):
        unchecked(F.conv_transpose2d)(torch.zeros(1, 1, 3, 3), torch.zeros(1, 1, 2, 2), padding=2)
    with pytest.raises(ValueError, match=r"weight is \(in, out"):
        unchecked(F.conv_transpose2d)(torch.zeros(1, 2, 3, 3), torch.zeros(1, 1, 2, 2))
