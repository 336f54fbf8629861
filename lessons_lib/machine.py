"""Describe the machine a measurement ran on (STYLE habit 7: numbers carry their machine)."""
from __future__ import annotations

import functools
import os
import platform

import torch


@functools.lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU's model name from /proc/cpuinfo (Linux) or ``platform.processor()``.

    Returns:
        ``str``: e.g. ``"AMD EPYC 7B13"``; ``platform.machine()`` or ``"unknown CPU"`` when neither names it.
    """
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when a CUDA GPU is usable, else ``cpu``; other strings as torch reads them.

    Args:
        device: ``"auto"`` (default), a device string torch accepts (``"cpu"``, ``"cuda"``, ``"cuda:N"`` ...;
            a CUDA one only when CUDA is available, ``ValueError`` otherwise), or a ``torch.device`` (checked
            the same way).

    Returns:
        ``torch.device``: the resolved device.
    """
    if isinstance(device, torch.device):
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"device={device!r} asked for CUDA but no CUDA GPU is available here; use 'auto' or 'cpu'")
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
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise ValueError(f"device={device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s), "
                         f"numbered from 0")
    return dev


def describe(device: str | torch.device = "cpu") -> str:
    """One line naming the hardware and software a number was measured with.

    Args:
        device: the device measured on, as :func:`resolve_device` accepts (default ``"cpu"``).

    Returns:
        ``str``: CPU model, cores and torch threads (or GPU name and memory in GiB), OS, architecture and
        torch version.

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
    """Whether a CUDA GPU is usable here.

    Returns:
        ``bool``: ``torch.cuda.is_available()``.
    """
    return torch.cuda.is_available()


# ------------------------------------------------------------------------------ CPU instruction sets
@functools.lru_cache(maxsize=None)
def _cpu_flags() -> frozenset[str]:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                key = line.split(":", 1)[0].strip().lower()
                if key in ("flags", "features"):
                    return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def cpu_features() -> dict[str, object]:
    """What this CPU can do for the lessons' number formats, detected at run time (never assumed).

    Keys (booleans unless noted):

    * ``avx2``, ``avx512f``, ``vnni`` (AVX512-VNNI or AVX-VNNI: int8 dot products into int32),
      ``avx512_bf16``, ``amx_bf16``, ``amx_int8``, ``avx512_fp16``: what the hardware advertises
      (``/proc/cpuinfo``; all False where it cannot be read, e.g. macOS).
    * ``aten_capability`` (str): the SIMD level PyTorch's own kernels use
      (``torch.backends.cpu.get_cpu_capability()``; ``ATEN_CPU_CAPABILITY=avx2`` lowers it).
    * ``onednn_max_isa`` (str or None): ``ONEDNN_MAX_CPU_ISA`` when set (oneDNN then ignores newer
      instructions, e.g. ``AVX2`` hides AVX-512 bf16 from torch's bf16 matmuls and convolutions).
    * ``bf16_native``: torch's bf16 matmul / conv can use bf16 dot-product instructions here
      (hardware has ``avx512_bf16`` or ``amx_bf16`` and oneDNN is not capped below AVX-512).
    * ``int8_kernel`` (str): the x86 int8 GEMM family onnxruntime picks from the hardware (it reads
      CPUID itself; no environment variable lowers it): ``"amx"``, ``"vnni"``, ``"avx2-vpmaddubsw"``
      (u8 x s8 pairs summed into a *saturating* int16 -- see :mod:`lessons_lib.quant.x86int8`),
      or ``"other"`` (not x86 / unknown).

    Returns:
        ``dict[str, object]``: the keys above.
    """
    f = _cpu_flags()
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA") or os.environ.get("DNNL_MAX_CPU_ISA")
    capped = isa is not None and isa.strip().upper() in ("SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2")
    vnni = "avx512_vnni" in f or "avx_vnni" in f
    x86 = platform.machine().lower() in ("x86_64", "amd64", "i686", "i386")
    if not x86 or not f:
        kernel = "other"
    elif "amx_int8" in f:
        kernel = "amx"
    elif vnni:
        kernel = "vnni"
    elif "avx2" in f:
        kernel = "avx2-vpmaddubsw"
    else:
        kernel = "other"
    return {
        "avx2": "avx2" in f, "avx512f": "avx512f" in f, "vnni": vnni, "avx512_bf16": "avx512_bf16" in f,
        "amx_bf16": "amx_bf16" in f, "amx_int8": "amx_int8" in f, "avx512_fp16": "avx512_fp16" in f,
        "aten_capability": torch.backends.cpu.get_cpu_capability(),
        "onednn_max_isa": isa,
        "bf16_native": ("avx512_bf16" in f or "amx_bf16" in f) and not capped,
        "int8_kernel": kernel,
    }


def describe_cpu_features() -> str:
    """One line for a lesson: the instruction sets that decide bf16 and int8 speed here.

    Returns:
        ``str``: a summary of :func:`cpu_features` (AVX2 / AVX-512 / VNNI / BF16 / AMX, PyTorch's kernel level,
        native bf16, any oneDNN cap, onnxruntime's int8 GEMM family).
    """
    c = cpu_features()
    yn = {True: "yes", False: "no"}
    line = (f"AVX2 {yn[c['avx2']]}, AVX-512 {yn[c['avx512f']]}, VNNI {yn[c['vnni']]}, "
            f"AVX512-BF16 {yn[c['avx512_bf16']]}, AMX {yn[c['amx_bf16'] or c['amx_int8']]}; "
            f"PyTorch kernels: {c['aten_capability']}, native bf16 {yn[c['bf16_native']]}")
    if c["onednn_max_isa"]:
        line += f", oneDNN capped at {c['onednn_max_isa']}"
    return line + f"; onnxruntime int8 GEMM: {c['int8_kernel']}"
