"""Day 18: broadcast and all-reduce from send/recv equal torch.distributed's; a data-parallel step equals one process's.

Each test starts real worker processes joined by the gloo backend on 127.0.0.1.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np
import pytest
import torch

from conftest import unchecked
from mechlearn import distributed as D
from mechlearn.data import load_digits_split
from mechlearn.testing import FLOAT64, assert_close

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("world", [2, 3])
def test_primitives_match_torch_distributed_and_the_closed_form(world):
    results = D.run(D.primitives_demo, world, 7)
    total = sum(r["input"] for r in results)
    for rank, r in enumerate(results):
        assert_close(r["broadcast"], r["torch broadcast"], FLOAT64, name=f"rank {rank}: broadcast vs dist.broadcast")
        assert_close(r["broadcast"], results[1 % world]["input"], FLOAT64, name=f"rank {rank}: broadcast is the source's tensor")
        for name in ("naive all-reduce", "ring all-reduce"):
            assert_close(r[name], r["torch all-reduce"], FLOAT64, name=f"rank {rank}: {name} vs dist.all_reduce")
            assert_close(r[name], total, FLOAT64, name=f"rank {rank}: {name} vs the sum of the inputs")


@pytest.mark.parametrize("algorithm", ["ring", "naive"])
def test_data_parallel_steps_equal_single_process_steps(algorithm):
    x, y, _, _ = load_digits_split(seed=0)
    x, y = x[:200], y[:200]
    results = D.run(D.data_parallel_demo, 2, x, y, 0.5, 4, algorithm)
    single = D.single_process_steps(x, y, 0.5, 4)
    for rank, r in enumerate(results):
        assert_close(r["params"], single, FLOAT64, name=f"rank {rank} after 4 data-parallel steps ({algorithm})")
    assert np.abs(single - D.single_process_steps(x, y, 0.5, 0)).max() > 1e-3, "the steps should have moved the weights"


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="world_size"):
        unchecked(D.run)(D.primitives_demo, 0)
    with pytest.raises(ValueError, match="timeout_s"):
        unchecked(D.run)(D.primitives_demo, 2, timeout_s=0)


# Workers for the failure tests: module level, so the spawned processes can import them.
def _raise_on_rank_1(rank, world):
    if rank == 1:
        raise ValueError("rank 1 gives up")
    torch.distributed.recv(torch.zeros(1), 1)  # rank 0 waits for a message that never comes


def _exit_on_rank_1(rank, world):
    if rank == 1:
        os._exit(3)
    torch.distributed.recv(torch.zeros(1), 1)


def _hang_on_rank_1(rank, world):
    if rank == 1:
        time.sleep(600)
    return rank


@pytest.mark.parametrize("fn, words", [
    (_raise_on_rank_1, r"(?s)rank 1 of 2 raised \(exit code 1\).*ValueError: rank 1 gives up"),
    (_exit_on_rank_1, "rank 1 of 2 died with exit code 3"),
])
def test_a_failed_worker_is_named_and_the_others_are_stopped(fn, words):
    start = time.monotonic()
    with pytest.raises(RuntimeError, match=words) as info:
        D.run(fn, 2, timeout_s=60)
    assert time.monotonic() - start < 45, f"run should fail as soon as a worker fails, not wait for the timeout: {info.value}"
    assert not multiprocessing.active_children(), "the rank still waiting in recv should have been terminated"


def test_a_worker_that_does_not_return_is_named_after_the_timeout():
    with pytest.raises(RuntimeError, match=r"timed out after 3 s: worker rank\(s\) \[(0, )?1\]"):
        D.run(_hang_on_rank_1, 2, timeout_s=3)
    assert not multiprocessing.active_children(), "the sleeping worker should have been terminated"
