"""Data-parallel training under ``torchrun``: process group, ranks and gradient averaging.

``torchrun --nproc_per_node N -m hepchain.cli <study> run ...`` starts N copies of the run with
``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` in their environment. Every
:class:`~hepchain.core.trainer.Trainer` then joins one process group (gloo on CPU, NCCL on
GPU, one GPU per process: ``cuda:LOCAL_RANK``), starts from rank 0's weights, trains on its
own share of each batch and averages gradients over the ranks after every backward pass, so
all ranks hold the same weights. Outside ``torchrun`` (``WORLD_SIZE`` unset or 1)
:func:`world_size` is 1, :func:`rank` 0, :func:`barrier` does nothing, and the trainer calls
nothing else here: it is the one-process trainer.

The gradients are averaged here rather than by wrapping the model in
:class:`torch.nn.parallel.DistributedDataParallel`: loss functions receive the bare model and
many call methods other than ``forward`` (a VAE's ``encode``/``decode``, a GAN's
``generator``, a flow's ``log_prob``), which the wrapper would leave unsynchronised. The
arithmetic is DDP's (mean of the ranks' gradients, one collective per step); what is given up
is DDP's overlap of communication with the backward pass.
"""

from __future__ import annotations

import atexit
import math
import os
from collections.abc import Iterator

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, DistributedSampler


def world_size() -> int:
    """Number of processes of this training (1 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return int(os.environ.get("WORLD_SIZE", "1"))


def rank() -> int:
    """This process's rank (0 outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def is_main() -> bool:
    """True on rank 0, the process that writes checkpoints, logs and results."""
    return rank() == 0


def setup(device: str) -> torch.device:
    """Join the process group that ``torchrun`` describes in the environment (once per
    process: gloo for CPU tensors and, where CUDA is available, NCCL for GPU tensors, so
    trainers of one study may use either) and return this rank's device: ``cuda:LOCAL_RANK``
    for a CUDA ``device``, ``device`` otherwise."""
    gpu = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    if torch.cuda.is_available():
        torch.cuda.set_device(gpu)
    if not dist.is_initialized():
        dist.init_process_group(
            backend="cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
        atexit.register(dist.destroy_process_group)
    return gpu if torch.device(device).type == "cuda" else torch.device(device)


class RankShare(DistributedSampler):
    """This rank's share of the order in which one process's shuffling ``DataLoader`` with a
    generator seeded ``seed`` visits ``data``: every ``world``-th index from ``rank`` on
    (padded cyclically to a multiple of ``world``, as ``DistributedSampler`` does), so local
    batch i of all ranks together is the one-process batch i."""

    def __init__(self, data: Dataset, world: int, rank: int, seed: int) -> None:
        super().__init__(data, num_replicas=world, rank=rank, shuffle=True, seed=seed)

    def __iter__(self) -> Iterator[int]:
        n = len(self.dataset)  # type: ignore[arg-type]
        one_process = DataLoader(range(n), batch_size=n, shuffle=True,
                                 generator=torch.Generator().manual_seed(self.seed))
        order = next(iter(one_process)).tolist()
        order = (order * math.ceil(self.total_size / n))[:self.total_size]
        return iter(order[self.rank::self.num_replicas])


def broadcast_module(module: nn.Module) -> None:
    """Give every rank rank 0's parameters and buffers."""
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def average_gradients(params: list[nn.Parameter], values: Tensor) -> Tensor:
    """Average ``params``' gradients and ``values`` (e.g. the step's losses) over the ranks
    with one all_reduce; returns the averaged ``values``.

    A gradient missing on some ranks counts as zero there; one missing on every rank stays
    ``None``, as in a one-process step."""
    dtype = params[0].dtype if params else values.dtype
    present = torch.tensor([p.grad is not None for p in params], dtype=dtype,
                           device=values.device)
    grads = [(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1)
             for p in params]
    flat = torch.cat([present, values.reshape(-1).to(dtype), *[g.to(dtype) for g in grads]])
    dist.all_reduce(flat)
    n = world_size()
    counts, rest = flat[:len(params)], flat[len(params):] / n
    averaged, rest = rest[:values.numel()].view_as(values), rest[values.numel():]
    for p, count, g in zip(params, counts.tolist(), grads, strict=True):
        chunk, rest = rest[:g.numel()], rest[g.numel():]
        if count == 0:
            continue
        if p.grad is None:
            p.grad = torch.zeros_like(p)
        p.grad.copy_(chunk.view_as(p))
    return averaged


def barrier() -> None:
    """Wait for every rank (no-op outside ``torchrun``)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
