"""Data-parallel training under ``torchrun``: process group, rank helpers, batch sharding, gathering.

``torchrun --nproc_per_node=N -m xferdiag finetune ...`` starts N copies of the program with
``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK`` in their environment. Every rank computes; only rank 0
touches the run directory. Decisions that depend on files (is this seed finished? resume from
which checkpoint?) are taken by rank 0 and broadcast, so ranks on other nodes need no access to
the run directory, and every rank always takes the same branch (a rank that skips a collective
would hang the others).

Without ``WORLD_SIZE > 1`` every helper here is a no-op and training is the single-process loop.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from ..environment import choose_device
from ..errors import ConfigError


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if world_size() > 1 else 0


def is_main() -> bool:
    return rank() == 0


def launched_world_size() -> int:
    """Processes torchrun started (1 when launched plainly)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank_device(requested: str) -> torch.device:
    """``auto``/``cuda`` become ``cuda:LOCAL_RANK`` under torchrun, so each rank drives its own GPU."""
    if launched_world_size() <= 1:
        return choose_device(requested)
    device = choose_device(requested)
    if device.type != "cuda":
        return device
    if requested not in ("auto", "cuda"):
        raise ConfigError(f"device {requested}: under torchrun give cuda (or auto); rank k uses cuda:LOCAL_RANK")
    return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))


def threads_per_rank() -> int | None:
    """Split this node's cores between its ranks (None: single process, use them all)."""
    local = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
    if local <= 1:
        return None
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // local)


@contextlib.contextmanager
def process_group(device: torch.device) -> Iterator[None]:
    """Join torchrun's process group (NCCL for GPUs, Gloo for CPUs) for the duration of the block.

    A group that already exists (the caller set one up) is used as it is and left alone.
    """
    if launched_world_size() <= 1 or dist.is_initialized():
        yield
        return
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    try:
        yield
    finally:
        dist.destroy_process_group()


def backend() -> str | None:
    return dist.get_backend() if world_size() > 1 else None


def _comm_device() -> torch.device:
    """NCCL moves CUDA tensors only; Gloo moves CPU tensors."""
    return torch.device("cuda", torch.cuda.current_device()) if backend() == "nccl" else torch.device("cpu")


def on_main(fn: Callable[[], Any]) -> Any:
    """Run ``fn`` on rank 0 and give every rank its result, or raise its exception on every rank."""
    if world_size() <= 1:
        return fn()
    box: list[Any] = [None]
    if is_main():
        try:
            box[0] = ("ok", fn())
        except Exception as exc:  # re-raised on every rank just below
            box[0] = ("error", exc)
    dist.broadcast_object_list(box, src=0, device=_comm_device())
    status, value = box[0]
    if status == "error":
        raise value
    return value


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank."""
    if world_size() <= 1:
        return [obj]
    out: list[Any] = [None] * world_size()
    dist.all_gather_object(out, obj)
    return out


def all_sum(values: list[float | torch.Tensor]) -> list[float]:
    """Sum scalars over ranks (in float64, so sums of per-example losses stay exact enough)."""
    t = torch.stack([torch.as_tensor(v, dtype=torch.float64).detach().to(_comm_device()) for v in values])
    if world_size() > 1:
        dist.all_reduce(t)
    return t.tolist()


def share_buffers(module: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm's running statistics) on every rank, after an epoch's training.

    DDP broadcasts buffers from rank 0 at the start of each training forward, so after the last step every
    rank holds statistics its own last batch updated: left so, each rank would score its slice of the
    validation and test images with a slightly different model than the one rank 0 keeps and saves.
    """
    if world_size() <= 1:
        return
    for buffer in module.buffers():
        dist.broadcast(buffer.data, src=0)


def seed_this_rank(seed: int) -> None:
    """Give each rank its own stream for augmentation and dropout.

    Ranks start from the same seed (identical initial weights); left so, the k-th example of every
    rank would get the same random crop. Called after the model is built; no-op in a single process.
    """
    if world_size() > 1:
        torch.manual_seed(seed * 1_000_003 + rank())


def shard(n: int) -> range:
    """This rank's contiguous slice of ``range(n)``; slices in rank order cover it exactly once."""
    r, w = rank(), world_size()
    return range(r * n // w, (r + 1) * n // w)


def gather_rows(t: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows in rank order (shapes may differ in the first dimension); CPU result."""
    if world_size() <= 1:
        return t
    device = _comm_device()
    sizes = [int(s) for s in gather_objects(len(t))]
    padded = torch.zeros((max(sizes), *t.shape[1:]), dtype=t.dtype, device=device)
    padded[: len(t)] = t.to(device)
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded)
    return torch.cat([p[:s] for p, s in zip(parts, sizes)]).cpu()


LENGTH_POOL = 50
"""Batches per pool sorted by length: large enough to find similar lengths, small enough to keep batches random."""


def _global_batches(order: list[int], batch_size: int, generator: torch.Generator, lengths: torch.Tensor | None) -> list[list[int]]:
    """``order`` cut into batches; with ``lengths``, sorted by length within each pool and the batches shuffled."""
    if lengths is None:
        return [order[k : k + batch_size] for k in range(0, len(order), batch_size)]
    pool, batches, tokens = batch_size * LENGTH_POOL, [], lengths.tolist()
    for start in range(0, len(order), pool):
        chunk = sorted(order[start : start + pool], key=lambda i: -tokens[i])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    return [batches[b] for b in torch.randperm(len(batches), generator=generator).tolist()]


class RankBatches(Sampler[list[int]]):
    """This rank's share of every global batch of one epoch, for ``DataLoader(batch_sampler=...)``.

    The epoch's order is ``torch.randperm(n, generator)``, the order a single process draws with
    ``RandomSampler``; it is cut into global batches of ``batch_size`` and each global batch is
    split into ``world_size`` near-equal consecutive slices. So N ranks together see exactly the
    batches one process would see (per-rank batch = batch_size / N). ``weights[i]`` rescales
    step i's mean loss so that DDP's gradient average equals the mean over the whole global batch
    even when slices differ by one. A last global batch smaller than the number of ranks is
    skipped (it would leave a rank without data): at most N-1 examples per epoch, others each epoch.
    ``for_rank``/``world`` default to this process's place in the group.

    With ``lengths`` (tokens per text) the shuffled order is cut into pools of ``LENGTH_POOL`` batches,
    each pool sorted by length before it is cut into batches, and the batches shuffled: batches of
    similar lengths, so trimming the padding no text of a batch needs saves most of it, while every
    epoch still draws new batches in a new order.
    """

    def __init__(self, n: int, batch_size: int, generator: torch.Generator, *, for_rank: int | None = None, world: int | None = None,
                 lengths: torch.Tensor | None = None):
        order = torch.randperm(n, generator=generator).tolist()
        r = rank() if for_rank is None else for_rank
        w = world_size() if world is None else world
        self.batches: list[list[int]] = []
        self.weights: list[float] = []
        for batch in _global_batches(order, batch_size, generator, lengths):
            if len(batch) < w:
                continue
            mine = batch[r * len(batch) // w : (r + 1) * len(batch) // w]
            self.batches.append(mine)
            self.weights.append(len(mine) * w / len(batch))

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)
