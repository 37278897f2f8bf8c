"""Collective communication from point-to-point messages, and data parallelism (ARENA 0.3, distributed training).

Data-parallel training keeps one copy of the model per worker, gives each worker a slice of the
batch, and averages the gradients before every step, so that all copies stay identical and the
step equals the one a single worker would take on the whole batch. The averaging is an
**all-reduce**: every worker ends up with the sum of everyone's tensors.

Built from ``send``/``recv`` only:

* **broadcast**: the source sends its tensor to every other worker (``world_size − 1`` messages).
* **naive all-reduce**: everyone sends to worker 0, which sums and broadcasts the result back; worker
  0's link carries ``2 (world_size − 1)`` full tensors.
* **ring all-reduce**: split the tensor into ``world_size`` chunks; in ``world_size − 1`` steps each
  worker passes one chunk to its right-hand neighbour and adds the chunk arriving from its left
  (reduce-scatter), after which each worker holds one fully-summed chunk; ``world_size − 1`` more
  steps pass the finished chunks round (all-gather). Every link carries ``2 (world_size − 1) / world_size``
  of the tensor, independent of the number of workers.

Workers are separate processes talking over the ``gloo`` backend on the loopback interface (no
network beyond this machine), started by `run`. Each worker uses one thread.

Reference: ARENA chapter 0.3 (distributed training); Patarasuk & Yuan, *Bandwidth optimal
all-reduce algorithms for clusters of workstations* (2009).
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

__all__ = ["broadcast", "all_reduce_naive", "ring_all_reduce", "run", "primitives_demo", "data_parallel_demo", "single_process_steps", "timing_demo"]


def broadcast(tensor: torch.Tensor, src: int = 0) -> torch.Tensor:
    """Copy ``src``'s tensor into every worker's ``tensor``, in place, with ``send``/``recv``."""
    rank, world = dist.get_rank(), dist.get_world_size()
    if not 0 <= src < world:
        raise ValueError(f"src should be a rank in [0, {world}), got {src}")
    if rank == src:
        for other in range(world):
            if other != src:
                dist.send(tensor, other)
    else:
        dist.recv(tensor, src)
    return tensor


def all_reduce_naive(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over workers, in place: gather to worker 0, add, broadcast back."""
    rank, world = dist.get_rank(), dist.get_world_size()
    if rank == 0:
        buffer = torch.empty_like(tensor)
        for other in range(1, world):
            dist.recv(buffer, other)
            tensor += buffer
    else:
        dist.send(tensor, 0)
    return broadcast(tensor, 0)


def ring_all_reduce(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over workers, in place, by reduce-scatter then all-gather around a ring."""
    rank, world = dist.get_rank(), dist.get_world_size()
    if world == 1:
        return tensor
    flat = tensor.view(-1)
    chunks = list(torch.tensor_split(flat, world))  # views into `flat`, possibly of unequal sizes
    right, left = (rank + 1) % world, (rank - 1) % world
    for step in range(world - 1):  # reduce-scatter: after it, chunk (rank + 1) % world is complete here
        send_idx, recv_idx = (rank - step) % world, (rank - step - 1) % world
        incoming = torch.empty_like(chunks[recv_idx])
        requests = [dist.isend(chunks[send_idx].clone(), right), dist.irecv(incoming, left)]
        for r in requests:
            r.wait()
        chunks[recv_idx] += incoming
    for step in range(world - 1):  # all-gather: pass the complete chunks round the ring
        send_idx, recv_idx = (rank + 1 - step) % world, (rank - step) % world
        incoming = torch.empty_like(chunks[recv_idx])
        requests = [dist.isend(chunks[send_idx].clone(), right), dist.irecv(incoming, left)]
        for r in requests:
            r.wait()
        chunks[recv_idx].copy_(incoming)
    return tensor


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, fn: Callable[..., Any], args: tuple[Any, ...], queue: Any) -> None:
    torch.set_num_threads(1)  # an entry point: one thread per worker process
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=dt.timedelta(seconds=60))
    try:
        queue.put((rank, fn(rank, world, *args)))
    finally:
        dist.destroy_process_group()


def run(fn: Callable[..., Any], world_size: int = 2, *args: Any) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` processes joined by gloo; return their results by rank.

    ``fn`` must be importable (defined at module level), because the workers are fresh processes.
    """
    if world_size < 1:
        raise ValueError(f"world_size should be at least 1, got {world_size}")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, world_size, port, fn, args, queue)) for r in range(world_size)]
    for p in procs:
        p.start()
    results = dict(queue.get(timeout=120) for _ in procs)
    for p in procs:
        p.join(timeout=60)
        if p.exitcode != 0:
            raise RuntimeError(f"a worker exited with code {p.exitcode}")
    return [results[r] for r in range(world_size)]


def primitives_demo(rank: int, world: int, seed: int) -> dict[str, np.ndarray]:
    """Every primitive on this worker, next to torch.distributed's own collective on the same input."""
    gen = torch.Generator().manual_seed(seed + rank)
    mine = torch.randn(10, dtype=torch.float64, generator=gen)
    out: dict[str, np.ndarray] = {"input": mine.numpy().copy()}
    t = mine.clone()
    out["broadcast"] = broadcast(t, src=1 % world).numpy().copy()
    t = mine.clone()
    dist.broadcast(t, src=1 % world)
    out["torch broadcast"] = t.numpy().copy()
    out["naive all-reduce"] = all_reduce_naive(mine.clone()).numpy().copy()
    out["ring all-reduce"] = ring_all_reduce(mine.clone()).numpy().copy()
    t = mine.clone()
    dist.all_reduce(t)
    out["torch all-reduce"] = t.numpy().copy()
    return out


def _model(seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(64, 32), torch.nn.ReLU(), torch.nn.Linear(32, 10)).double()


def data_parallel_demo(rank: int, world: int, x: np.ndarray, y: np.ndarray, lr: float, steps: int,
                       all_reduce: str = "ring") -> dict[str, np.ndarray]:
    """``steps`` SGD steps in which this worker sees its slice of the batch and gradients are averaged.

    Returns the final parameters, flattened: every worker's should equal a single process's steps on
    the whole batch.
    """
    reduce = {"ring": ring_all_reduce, "naive": all_reduce_naive}[all_reduce]
    model = _model(0)
    xs, ys = np.array_split(x, world)[rank], np.array_split(y, world)[rank]
    for _ in range(steps):
        model.zero_grad()
        # Sum of per-example losses over the whole batch, divided by the whole batch size: the
        # same objective as the single process's mean, split across workers.
        loss = torch.nn.functional.cross_entropy(model(torch.tensor(xs)), torch.tensor(ys), reduction="sum") / len(y)
        loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                reduce(p.grad)
                p -= lr * p.grad
    return {"params": torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()}


def single_process_steps(x: np.ndarray, y: np.ndarray, lr: float, steps: int) -> np.ndarray:
    """The reference: the same model and steps on the whole batch, in this process."""
    model = _model(0)
    for _ in range(steps):
        model.zero_grad()
        torch.nn.functional.cross_entropy(model(torch.tensor(x)), torch.tensor(y)).backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= lr * p.grad
    return torch.cat([p.detach().flatten() for p in model.parameters()]).numpy()


def timing_demo(rank: int, world: int, sizes: list[int], repeats: int = 5) -> dict[str, list[float]]:
    """Seconds per all-reduce of float64 tensors of each size, for our two algorithms and torch's."""
    import time

    algorithms = {"naive": all_reduce_naive, "ring": ring_all_reduce, "torch (gloo)": dist.all_reduce}
    out: dict[str, list[float]] = {name: [] for name in algorithms}
    for n in sizes:
        t = torch.ones(n, dtype=torch.float64)
        for name, fn in algorithms.items():
            dist.barrier()
            start = time.perf_counter()
            for _ in range(repeats):
                fn(t)
            dist.barrier()
            out[name].append((time.perf_counter() - start) / repeats)
    return out
