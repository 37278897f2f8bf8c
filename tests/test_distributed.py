"""Day 18: broadcast and all-reduce from send/recv equal torch.distributed's; a data-parallel step equals one process's.

Each test starts real worker processes joined by the gloo backend on 127.0.0.1.
"""

from __future__ import annotations

import numpy as np
import pytest

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
