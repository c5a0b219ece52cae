"""Devices: a name the user gave checked against the machine, before any model or tensor moves there."""

from __future__ import annotations

import torch

__all__ = ["check_device"]


def check_device(name: str | torch.device, what: str = "device", *, only_cpu_cuda: bool = False) -> torch.device:
    """``torch.device(name)`` if this machine has it; a ``ValueError`` naming the devices it has otherwise.

    ``what`` names the argument in the message (``"--device"`` for the CLI, ``"device"`` for the library).
    ``only_cpu_cuda`` also refuses other device types (the CLI supports cpu and cuda only).
    """
    try:
        device = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(f"{what} {name!r} is not a device: use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            fix = "--device cpu" if what.startswith("--") else f"{what}='cpu'"
            raise ValueError(f"{what} {name}: this machine has no usable CUDA GPU; use {fix}")
        if device.index is not None and device.index >= count:
            raise ValueError(f"{what} {name}: this machine has {count} GPU(s), cuda:0..cuda:{count - 1}")
    elif only_cpu_cuda and device.type != "cpu":
        raise ValueError(f"{what} {name}: only cpu and cuda are supported")
    return device
