"""Days 10–12: each optimiser and schedule gives the same parameters / learning rates as torch.optim.

Two copies of one float64 network see the same batches; one is updated by our optimiser, the
other by torch's with the same hyperparameters (and parameter groups), and after 60 steps every
parameter must agree to ``OPTIM_FLOAT64``.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from conftest import unchecked
from mechlearn import optim
from mechlearn.testing import FLOAT64, Tolerance, assert_close

OPTIM_FLOAT64 = Tolerance("OPTIM_FLOAT64", rtol=1e-9, atol=1e-11)
"""60 float64 update steps of the same maths: rounding may compound a little beyond FLOAT64."""


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).double()


def _train(model, opt, steps=60, scheduler=None):
    gen = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 4, generator=gen, dtype=torch.float64)
        y = torch.randint(0, 3, (16,), generator=gen)
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
    return model


CASES = {
    "SGD": (optim.SGD, torch.optim.SGD, dict(lr=0.1)),
    "SGD momentum": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    "SGD momentum dampening wd": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    "SGD Nesterov": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.001)),
    "RMSprop": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01)),
    "RMSprop centred momentum wd": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.005, alpha=0.9, momentum=0.5, centered=True, weight_decay=0.01)),
    "Adam": (optim.Adam, torch.optim.Adam, dict(lr=0.01)),
    "Adam betas eps wd": (optim.Adam, torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    "AdamW": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01)),
    "AdamW strong decay": (optim.AdamW, torch.optim.AdamW, dict(lr=0.02, weight_decay=0.3, betas=(0.85, 0.995))),
}


@pytest.mark.parametrize("name", list(CASES))
def test_parameters_match_torch_after_60_steps(name):
    ours_cls, torch_cls, kwargs = CASES[name]
    a, b = _model(), _model()
    _train(a, ours_cls(a.parameters(), **kwargs))
    _train(b, torch_cls(b.parameters(), **kwargs))
    for (pname, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters()):
        assert_close(pa.detach(), pb.detach(), OPTIM_FLOAT64, name=f"{name}: {pname}")
    moved = max((pa - pm).abs().max().item() for pa, pm in zip(a.parameters(), _model().parameters()))
    assert moved > 1e-3, "the optimiser barely moved the parameters: the comparison would prove nothing"


def _assert_moved(model, what, at_least=1e-3):
    """The comparison proves something only if training changed the parameters."""
    for (pname, p), p0 in zip(model.named_parameters(), _model().parameters()):
        moved = (p - p0).abs().max().item()
        assert moved > at_least, f"{what}: {pname} moved by only {moved:.3g}, so agreeing with torch would prove nothing"


@pytest.mark.parametrize("ours_cls, torch_cls", [(optim.SGD, torch.optim.SGD), (optim.RMSprop, torch.optim.RMSprop),
                                                 (optim.Adam, torch.optim.Adam), (optim.AdamW, torch.optim.AdamW)])
def test_parameter_groups_match_torch(ours_cls, torch_cls):
    def groups(model):
        weights = [p for n, p in model.named_parameters() if n.endswith("weight")]
        biases = [p for n, p in model.named_parameters() if n.endswith("bias")]
        extra = {"momentum": 0.9} if ours_cls in (optim.SGD, optim.RMSprop) else {"weight_decay": 0.1}
        return [{"params": weights, **extra}, {"params": biases, "lr": 0.003}]

    a, b = _model(), _model()
    _train(a, ours_cls(groups(a), lr=0.02))
    _train(b, torch_cls(groups(b), lr=0.02))
    for (pname, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert_close(pa.detach(), pb.detach(), OPTIM_FLOAT64, name=f"{ours_cls.__name__} with parameter groups: {pname}")
    _assert_moved(a, f"{ours_cls.__name__} with parameter groups")


SCHEDULED = {
    "SGD momentum + StepLR": (optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9),
                              optim.StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=15, gamma=0.5)),
    "Adam + CosineAnnealingLR": (optim.Adam, torch.optim.Adam, dict(lr=0.02),
                                 optim.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=40, eta_min=0.001)),
    "AdamW + LinearLR": (optim.AdamW, torch.optim.AdamW, dict(lr=0.02, weight_decay=0.1),
                         optim.LinearLR, torch.optim.lr_scheduler.LinearLR, dict(start_factor=0.1, total_iters=20)),
    "RMSprop + LambdaLR warmup_cosine": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.5),
                                         optim.LambdaLR, torch.optim.lr_scheduler.LambdaLR,
                                         dict(lr_lambda=optim.warmup_cosine(10, 60, 0.1))),
}


@pytest.mark.parametrize("name", list(SCHEDULED))
def test_optimiser_with_schedule_matches_torch_after_60_steps(name):
    """The schedule changes ``group["lr"]`` between steps; the optimiser must read it afresh every step."""
    ours_cls, torch_cls, kwargs, ours_sched, torch_sched, sched_kwargs = SCHEDULED[name]
    a, b = _model(), _model()
    opt_a, opt_b = ours_cls(a.parameters(), **kwargs), torch_cls(b.parameters(), **kwargs)
    _train(a, opt_a, scheduler=ours_sched(opt_a, **sched_kwargs))
    _train(b, opt_b, scheduler=torch_sched(opt_b, **sched_kwargs))
    assert_close(opt_a.param_groups[0]["lr"], opt_b.param_groups[0]["lr"], FLOAT64, name=f"{name}: learning rate after 60 steps")
    for (pname, pa), pb in zip(a.named_parameters(), b.parameters()):
        assert_close(pa.detach(), pb.detach(), OPTIM_FLOAT64, name=f"{name}: {pname}")
    _assert_moved(a, name)
    # And the schedule mattered: without it the parameters end elsewhere.
    c = _model()
    _train(c, ours_cls(c.parameters(), **kwargs))
    gap = max((pa - pc).abs().max().item() for pa, pc in zip(a.parameters(), c.parameters()))
    assert gap > 1e-4, f"{name}: training with and without the schedule ended {gap:.3g} apart; the schedule had no effect"


def _lrs(scheduler_cls, torch_scheduler_cls, kwargs, steps=40):
    out = []
    for opt_cls, sched_cls in ((optim.SGD, scheduler_cls), (torch.optim.SGD, torch_scheduler_cls)):
        p = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))
        opt = opt_cls([{"params": [p]}, {"params": [torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))], "lr": 0.5}], lr=0.1)
        sched = sched_cls(opt, **kwargs)
        lrs = []
        for _ in range(steps):
            lrs.append([g["lr"] for g in opt.param_groups])
            opt.step()
            sched.step()
        out.append(np.array(lrs))
    return out


@pytest.mark.parametrize("ours, theirs, kwargs", [
    (optim.StepLR, torch.optim.lr_scheduler.StepLR, dict(step_size=7, gamma=0.5)),
    (optim.CosineAnnealingLR, torch.optim.lr_scheduler.CosineAnnealingLR, dict(T_max=25, eta_min=0.01)),
    (optim.LinearLR, torch.optim.lr_scheduler.LinearLR, dict(start_factor=0.1, end_factor=1.0, total_iters=10)),
    (optim.LambdaLR, torch.optim.lr_scheduler.LambdaLR, dict(lr_lambda=optim.warmup_cosine(5, 30, 0.1))),
])
def test_schedules_match_torch(ours, theirs, kwargs):
    mine, ref = _lrs(ours, theirs, kwargs)
    assert_close(mine, ref, FLOAT64, name=f"{ours.__name__} learning rates over 40 steps")


def test_trajectory_with_our_sgd_equals_torch_sgd_on_rosenbrock():
    ours = optim.trajectory(optim.rosenbrock, (-1.5, 2.0), lambda ps: optim.SGD(ps, lr=1e-3, momentum=0.9), 300)
    ref = optim.trajectory(optim.rosenbrock, (-1.5, 2.0), lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9), 300)
    assert ours.shape == (301, 2)
    assert_close(ours, ref, OPTIM_FLOAT64)
    assert optim.rosenbrock(*ours[-1]) < optim.rosenbrock(*ours[0])


@pytest.mark.parametrize("make, error, words", [
    (lambda: optim.SGD([], lr=0.1), ValueError, "empty"),
    (lambda: optim.SGD([torch.zeros(2)], lr=0.1), TypeError, "require grad"),
    (lambda: optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=-1.0), ValueError, "lr"),
    (lambda: optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, nesterov=True), ValueError, "Nesterov"),
    (lambda: optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=1.0), ValueError, "momentum"),
    (lambda: optim.Adam([{"params": [torch.nn.Parameter(torch.zeros(2))], "beta": 0.9}]), ValueError, "unknown hyperparameters"),
    (lambda: optim.Adam([torch.nn.Parameter(torch.zeros(2))], betas=(1.0, 0.9)), ValueError, "betas"),
    (lambda: (lambda p: optim.SGD([{"params": [p]}, {"params": [p]}], lr=0.1))(torch.nn.Parameter(torch.zeros(1))), ValueError, "more than one group"),
    (lambda: unchecked(optim.LRScheduler.__init__)(object.__new__(optim.StepLR), torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)),
     TypeError, "mechlearn optimiser"),
    (lambda: optim.warmup_cosine(10, 10), ValueError, "warmup_steps < total_steps"),
])
def test_bad_input_raises_a_clear_error(make, error, words):
    with pytest.raises(error, match=words):
        unchecked(make)()


def test_training_helpers_are_deterministic_and_use_torch_default_init_bounds():
    from sklearn.datasets import make_moons

    x, y = make_moons(200, noise=0.2, random_state=0)
    m = optim.mlp((2, 16, 2), seed=3)
    bound = 1 / np.sqrt(2)
    assert m[0].weight.abs().max() <= bound and m[0].weight.abs().max() > 0.8 * bound
    runs = []
    for _ in range(2):
        m = optim.mlp((2, 16, 2), seed=3)
        h = optim.train_classifier(m, optim.Adam(m.parameters(), lr=0.01), x, y, epochs=5, batch_size=32, seed=4)
        runs.append((h, optim.accuracy(m, x, y)))
    assert runs[0] == runs[1]
    assert runs[0][0][-1]["loss"] < runs[0][0][0]["loss"] and runs[0][1] > 0.8
