"""Document 001's cloud-vs-edge compute table and best-case time estimates from MACs.

Document 001 (端侧CNN参数压缩和加速) opens with peak fp32 throughput: RTX 3080 29117 GFLOPS,
RTX 2080 Ti 16626 GFLOPS, Raspberry Pi 4B 13.5 GFLOPS. A peak-bound estimate of one image's time is

    t = FLOPs / peak = 2 * MACs / peak

-- a lower bound that ignores memory traffic, kernel launch and framework overhead, which is why
measured latencies are longer, and why models with equal MACs can run at different speeds.
"""
from __future__ import annotations

from .validate import choice, real

#: peak fp32 throughput in GFLOPS, as document 001 lists it (memory in GiB as listed there)
DOC001_DEVICES: dict[str, dict] = {
    "RTX 3080": {"kind": "cloud GPU", "memory": "10G", "gflops": 29117.0},
    "RTX 2080 Ti": {"kind": "cloud GPU", "memory": "11G", "gflops": 16626.0},
    "Raspberry Pi 4B": {"kind": "edge device", "memory": "2G/4G/8G", "gflops": 13.5},
}


def _positive(name: str, value: object) -> float:
    return real(name, value, 0, low_open=True)


def estimate_ms(macs: float, gflops: float | str) -> float:
    """Best-case milliseconds for ``macs`` multiply-accumulates at ``gflops`` peak.

    Args:
        macs: multiply-accumulates of one forward pass (> 0).
        gflops: peak in GFLOPS (> 0), or a device name of :data:`DOC001_DEVICES`.

    Returns:
        ``2 * macs / (gflops * 1e9)`` in milliseconds.
    """
    if isinstance(gflops, str):
        gflops = choice("gflops", gflops, sorted(DOC001_DEVICES))
        gflops = DOC001_DEVICES[gflops]["gflops"]
    macs = _positive("macs", macs)
    return 2.0 * macs / (_positive("gflops", gflops) * 1e9) * 1e3


def achieved_gflops(macs: float, ms: float) -> float:
    """Throughput a measured run actually reached: 2 * MACs / time, in GFLOPS.

    Args:
        macs: multiply-accumulates of the run (> 0); ms: its measured time in milliseconds (> 0).

    Returns:
        GFLOPS as a float.
    """
    return 2.0 * _positive("macs", macs) / (_positive("ms", ms) * 1e-3) / 1e9
