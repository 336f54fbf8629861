"""Describe the machine a measurement ran on (STYLE habit 7: numbers carry their machine)."""
from __future__ import annotations

import functools
import os
import platform

import torch


@functools.lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux) or ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when a CUDA GPU is usable, else ``cpu``; other strings as torch reads them."""
    if isinstance(device, torch.device):
        return device
    if not isinstance(device, str):
        raise TypeError(f"device={device!r} must be a str such as 'auto', 'cpu' or 'cuda', or a torch.device")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device={device!r} is not a device name; use 'auto', 'cpu' or 'cuda[:i]'") from err
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asked for CUDA but no CUDA GPU is available here; use 'auto' or 'cpu'")
    return dev


def describe(device: str | torch.device = "cpu") -> str:
    """One line naming the hardware and software a number was measured with.

    >>> describe("cpu")  # doctest: +SKIP
    'CPU: AMD EPYC, 2 cores, 2 torch threads | Linux x86_64 | torch 2.14.1+cu130'
    """
    dev = resolve_device(device)
    soft = f"{platform.system()} {platform.machine()} | torch {torch.__version__}"
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        return f"GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB | {soft}"
    cores = os.cpu_count() or 1
    return f"CPU: {cpu_name()}, {cores} cores, {torch.get_num_threads()} torch threads | {soft}"


def has_cuda() -> bool:
    return torch.cuda.is_available()
