"""Collective communication from point-to-point messages, and data parallelism (ARENA 0.3, distributed training).

Data-parallel training keeps one copy of the model per worker, gives each worker a slice of the
batch, and averages the gradients before every step, so that all copies stay identical and the
step equals the one a single worker would take on the whole batch. The averaging is an
**all-reduce**: every worker ends up with the sum of everyone's tensors.

Built from ``send``/``recv`` only:

* **broadcast**: the source sends its tensor to every other worker (``world_size − 1`` messages).
* **naive all-reduce**: everyone sends to worker 0, which sums and broadcasts the result back; worker
  0 receives ``world_size − 1`` full tensors and sends ``world_size − 1`` (each way, growing with
  the number of workers).
* **ring all-reduce**: split the tensor into ``world_size`` chunks; in ``world_size − 1`` steps each
  worker passes one chunk to its right-hand neighbour and adds the chunk arriving from its left
  (reduce-scatter), after which each worker holds one fully-summed chunk; ``world_size − 1`` more
  steps pass the finished chunks round (all-gather). Each worker sends and receives
  ``2 (world_size − 1) / world_size`` of the tensor, which approaches 2 tensors as workers are added
  instead of growing with them (the lower bound on per-worker traffic, Patarasuk & Yuan 2009); the
  price is ``2 (world_size − 1)`` message latencies.

Workers are separate processes talking over the ``gloo`` backend on the loopback interface (no
network beyond this machine), started by `run`. Each worker uses one thread.

Reference: ARENA chapter 0.3 (distributed training); Patarasuk & Yuan, *Bandwidth optimal
all-reduce algorithms for clusters of workstations* (2009).
"""

from __future__ import annotations

import datetime as dt
import queue as queue_module
import socket
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from mechlearn._optional import require

require("torch", "mechlearn.distributed")

import torch  # noqa: E402
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
    try:
        dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                                timeout=dt.timedelta(seconds=60))
        try:
            result = fn(rank, world, *args)
        finally:
            dist.destroy_process_group()
    except BaseException:
        # Send the traceback home, so the parent can say what went wrong and on which rank.
        queue.put((rank, False, traceback.format_exc()))
        raise
    queue.put((rank, True, result))


def _stop(procs: list[Any]) -> None:
    """Terminate every worker still running, and reap them all (kill any that ignore SIGTERM)."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    for p in procs:
        p.join(timeout=5)
        if p.is_alive():
            p.kill()
            p.join(timeout=5)


def _failure_message(procs: list[Any], died: list[int], tracebacks: dict[int, str]) -> str:
    """Name every failed rank: first those that died without a traceback (killed, ``os._exit``), then those that raised."""
    world = len(procs)
    for r in tracebacks:
        procs[r].join(timeout=5)  # it re-raises after sending its traceback; wait for its exit code
    parts = []
    for r in died:
        if r not in tracebacks:
            code = procs[r].exitcode
            signal = f" (killed by signal {-code})" if code < 0 else ""
            parts.append(f"worker rank {r} of {world} died with exit code {code}{signal} before returning a result")
    for r in sorted(tracebacks):
        parts.append(f"worker rank {r} of {world} raised (exit code {procs[r].exitcode}); its traceback:\n{tracebacks[r]}")
    head = f"{len(parts)} workers failed (one failure usually makes its peers fail too):\n" if len(parts) > 1 else ""
    return head + "\n".join(parts)


def run(fn: Callable[..., Any], world_size: int = 2, *args: Any, timeout_s: float | int = 120.0) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``world_size`` processes joined by gloo; return their results by rank.

    ``fn`` must be importable (defined at module level), because the workers are fresh processes.
    If a worker raises, dies, or has not returned within ``timeout_s`` seconds, the other workers are
    terminated (one of them is usually blocked waiting for the failed one) and a ``RuntimeError``
    names the rank, its exit code and, where it raised, its traceback.
    """
    if world_size < 1:
        raise ValueError(f"world_size should be at least 1, got {world_size}")
    if not timeout_s > 0:
        raise ValueError(f"timeout_s should be positive, got {timeout_s}")
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    port = _free_port()
    procs = [ctx.Process(target=_worker, args=(r, world_size, port, fn, args, queue)) for r in range(world_size)]
    for p in procs:
        p.start()
    results: dict[int, Any] = {}
    tracebacks: dict[int, str] = {}
    deadline = time.monotonic() + timeout_s
    first_failure: float | None = None
    silent_since: dict[int, float] = {}  # rank -> when it was first seen exited cleanly without a message
    try:
        while len(results) < world_size:
            try:
                rank, ok, payload = queue.get(timeout=0.2)
                (results if ok else tracebacks)[rank] = payload
            except queue_module.Empty:
                pass
            now = time.monotonic()
            died = [r for r, p in enumerate(procs) if p.exitcode not in (None, 0) and r not in results]
            if (tracebacks or died) and first_failure is None:
                first_failure = now
            # One failure makes its peers fail too (a recv from a dead rank raises): collect for a
            # moment, so the message can name the rank that failed first, not only its victims.
            if first_failure is not None and now - first_failure > 2:
                raise RuntimeError(_failure_message(procs, died, tracebacks))
            for r, p in enumerate(procs):
                if p.exitcode == 0 and r not in results and now - silent_since.setdefault(r, now) > 5:
                    raise RuntimeError(
                        f"worker rank {r} of {world_size} exited with code 0 but sent no result "
                        f"(could its return value not be pickled?)"
                    )
            if now > deadline:
                waiting = [r for r in range(world_size) if r not in results]
                raise RuntimeError(
                    f"timed out after {timeout_s:g} s: worker rank(s) {waiting} of {world_size} had not returned "
                    f"(a deadlock, e.g. a send with no matching recv, or a worker stuck in a collective?)"
                )
        for p in procs:  # every result is in: let the workers finish exiting on their own
            p.join(timeout=60)
    finally:
        _stop(procs)
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
