"""Sharded evaluation under ``torchrun``: which rank this is, which rows are its own, the sums of all.

    torchrun --nproc-per-node 4 -m sclip_lib.cli evaluate --benchmark all --device cuda

Each process evaluates rows ``rank::world_size`` of the subset (the first ``limit`` rows), then the
per-class intersection / prediction / ground-truth areas (float64, integer-valued) are summed with
``torch.distributed.all_reduce``. Integer-valued float64 sums below 2**53 are exact in any order, so
the mIoU is identical to a one-process run on the same subset, as long as each image's prediction does
not depend on the process it ran in. Only rank 0 writes files.

Launchers set ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and ``MASTER_PORT``; the
process group (``gloo``: the sums are a few kilobytes on the CPU) is created from them on first use,
or an existing one is used. ``$SCLIP_DIST_INIT`` may name another torch init method instead of
``MASTER_ADDR``/``MASTER_PORT``, e.g. ``file:///shared/run1.init`` (a file all processes can reach).
``$SCLIP_DIST_TIMEOUT`` (seconds, default 1800) bounds every wait for the other processes: joining,
and the final sum, which also waits for the slowest rank to finish its share.
A rank that died makes the others fail with :class:`DistributedError`, never hang.
"""

from __future__ import annotations

import atexit
import itertools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import torch
import torch.distributed as dist

from .loading import BenchmarkData

__all__ = [
    "Shard",
    "DistributedError",
    "context",
    "launched",
    "local_device",
    "shard_rows",
    "all_reduce_sums",
    "TIMEOUT_ENV",
    "INIT_ENV",
]

TIMEOUT_ENV = "SCLIP_DIST_TIMEOUT"
INIT_ENV = "SCLIP_DIST_INIT"
DEFAULT_TIMEOUT = 1800.0  # seconds; torch's own default for gloo


class DistributedError(RuntimeError):
    """Another process of a sharded run stopped, or did not arrive in time; the message says what to do."""


@dataclass(frozen=True)
class Shard:
    """This process's place in a run: ``rank`` of ``world_size`` processes (1 when not launched)."""

    rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that prints results and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched() -> Shard:
    """The rank and world size a launcher (torchrun, ...) put in the environment, without joining."""
    try:
        world = int(os.environ.get("WORLD_SIZE", "1"))
        rank = int(os.environ.get("RANK", "0"))
    except ValueError:
        raise DistributedError(
            f"RANK={os.environ.get('RANK')!r} / WORLD_SIZE={os.environ.get('WORLD_SIZE')!r} are not integers: "
            "start sharded runs with torchrun, which sets them"
        ) from None
    if world < 1 or not 0 <= rank < world:
        raise DistributedError(f"RANK={rank} does not fit WORLD_SIZE={world}: start sharded runs with torchrun")
    return Shard(rank, world)


def timeout() -> timedelta:
    """How long to wait for the other processes: ``$SCLIP_DIST_TIMEOUT`` seconds, default 1800."""
    value = os.environ.get(TIMEOUT_ENV, str(DEFAULT_TIMEOUT))
    try:
        seconds = float(value)
    except ValueError:
        seconds = float("nan")
    if not seconds > 0 or seconds == float("inf"):
        raise DistributedError(f"{TIMEOUT_ENV}={value!r}: give the timeout in seconds, a positive number (e.g. 600)")
    return timedelta(seconds=seconds)


def context() -> Shard:
    """This process's :class:`Shard`; joins the launcher's process group on first use.

    An existing process group (e.g. created by the caller's own script) is used as it is.
    """
    if dist.is_available() and dist.is_initialized():
        return Shard(dist.get_rank(), dist.get_world_size())
    here = launched()
    if not here.distributed:
        return here
    if not dist.is_available():
        raise DistributedError("WORLD_SIZE > 1 but this torch build has no torch.distributed: install a build with it")
    wait = timeout()
    init = os.environ.get(INIT_ENV, "env://")  # env://: MASTER_ADDR/MASTER_PORT from the launcher
    try:
        with _fail_clearly(here, "joining the other processes", wait):
            dist.init_process_group("gloo", init_method=init, rank=here.rank, world_size=here.world_size, timeout=wait)
    except ValueError as e:  # a missing MASTER_ADDR, an unknown init method: not the other processes' fault
        raise DistributedError(
            f"WORLD_SIZE={here.world_size} but the processes cannot meet ({e}): start them with torchrun, which "
            f"sets MASTER_ADDR and MASTER_PORT, or set {INIT_ENV} to a torch init method (file:///shared/path)"
        ) from None
    atexit.register(_leave)
    return Shard(dist.get_rank(), dist.get_world_size())


def _leave() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()


def local_device(device: str | torch.device | None) -> str | torch.device | None:
    """``"cuda"`` without an index means this process's own GPU, ``cuda:$LOCAL_RANK``, in a launched run."""
    if device is None or launched().world_size == 1:
        return device
    device = torch.device(device)
    if device.type != "cuda" or device.index is not None:
        return device
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    torch.cuda.set_device(device)
    return device


def shard_rows(data: BenchmarkData, shard: Shard) -> BenchmarkData:
    """The rows ``rank::world_size`` of ``data``'s subset, undecoded until read (rank 0 of 1: ``data``)."""
    if not shard.distributed:
        return data

    def rows() -> Iterator:
        return itertools.islice(data.rows(), shard.rank, None, shard.world_size)

    return BenchmarkData(
        data.benchmark,
        rows,
        limit=None,
        size=len(range(shard.rank, len(data), shard.world_size)),
        source={**data.source, "shard": f"rows {shard.rank}::{shard.world_size}"},
        workers=data.workers,
    )


def all_reduce_sums(shard: Shard, *tensors: torch.Tensor, maximum: float | None = None) -> float | None:
    """Sum each CPU tensor over all processes, in place; returns the largest ``maximum`` of any process.

    Raises :class:`DistributedError` when a process stopped or did not arrive within the timeout.
    """
    if not shard.distributed:
        return maximum
    where = torch.device("cuda", torch.cuda.current_device()) if dist.get_backend() == "nccl" else torch.device("cpu")
    with _fail_clearly(shard, "summing the per-class areas", timeout()):
        for t in tensors:
            moved = t.to(where)
            dist.all_reduce(moved, op=dist.ReduceOp.SUM)
            t.copy_(moved)
        if maximum is not None:
            top = torch.tensor([maximum], dtype=torch.float64, device=where)
            dist.all_reduce(top, op=dist.ReduceOp.MAX)
            maximum = float(top)
    return maximum


def gather_lists(shard: Shard, items: list) -> list:
    """The concatenation of every process's ``items`` (picklable), in rank order."""
    if not shard.distributed:
        return list(items)
    parts: list = [None] * shard.world_size
    with _fail_clearly(shard, "gathering the skipped samples", timeout()):
        dist.all_gather_object(parts, list(items))
    return [item for part in parts for item in part]


@contextmanager
def _fail_clearly(shard: Shard, what: str, wait: timedelta):
    try:
        yield
    except (RuntimeError, TimeoutError) as e:  # DistBackendError, DistStoreError, gloo's errors
        cause = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DistributedError(
            f"rank {shard.rank} of {shard.world_size}: {what} failed: another process stopped or did not arrive "
            f"within {wait.total_seconds():g} s ({type(e).__name__}: {cause}). Look at the other processes' "
            f"output for the first error; if they were only slow, set {TIMEOUT_ENV} to more seconds"
        ) from e
