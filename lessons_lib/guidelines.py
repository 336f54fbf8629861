"""The four speed guidelines of ShuffleNet v2 as small, timeable experiments.

Source: Ma et al. 2018, "ShuffleNet V2: Practical Guidelines for Efficient CNN Architecture Design",
§2 and Tables 1-4; document 001 (§2.1.7) and document 004 (design principles 2-5) restate them.
Each ``g*_cases`` builder returns :class:`Case` objects -- a network, its input, its multiply-adds and
its memory access -- at (nearly) **equal multiply-adds**, so that any time difference measured by
:func:`time_cases` comes from something other than arithmetic.

Conventions (as in the paper):

* ``macs`` -- multiply-accumulates ("FLOPs" in the paper's tables), conv layers only, bias excluded.
* ``mem`` -- memory access cost in **elements** (x4 for float32 bytes): for every conv
  ``h_in·w_in·c_in + h_out·w_out·c_out + weights``; for a 1x1 conv on an ``h x w`` map this is the
  paper's Eq. (1)/(2): ``MAC = hw(c1 + c2) + c1·c2/g``. Element-wise ops read their inputs and write
  their output. Concatenation copies are not counted (the paper does not either).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import nn

from .conv import conv2d_macs, conv2d_out_size, memory_bytes
from .profile import measure_latency
from . import validate as V
from .validate import int_at_least

__all__ = ["Case", "mac_1x1", "g1_cases", "g2_cases", "g3_cases", "g4_cases", "time_rounds", "time_cases",
           "cases_table", "Bottleneck"]


@dataclass
class Case:
    """One network to time: ``net(x)``; ``macs`` multiply-adds and ``mem`` elements moved per call."""

    label: str
    net: nn.Module
    x: torch.Tensor
    macs: int
    mem: int
    info: dict = field(default_factory=dict)


def mac_1x1(h: int, w: int, c1: int, c2: int, groups: int = 1) -> int:
    """Memory access (elements) of a 1x1 conv ``c1 -> c2`` with ``groups`` on an ``h x w`` map:
    ``hw(c1 + c2) + c1·c2/g`` (ShuffleNet v2, Eq. 1 for ``g = 1``, Eq. 2 in general).

    Args:
        h, w: height and width of the feature map (ints >= 1).
        c1, c2: input / output channels (ints >= 1, both divisible by ``groups``).
        groups: ``g`` (int >= 1 dividing ``c1`` and ``c2``; default 1).

    Returns:
        ``int``: memory access in elements (x4 for float32 bytes).
    """
    for n, v in (("h", h), ("w", w), ("c1", c1), ("c2", c2), ("groups", groups)):
        int_at_least(n, v)
    if c1 % groups or c2 % groups:
        raise ValueError(f"groups={groups} must divide c1={c1} and c2={c2}")
    return memory_bytes(c1 * c2 // groups, h * w * c1, h * w * c2, bytes_per_elem=1)  # = hw(c1 + c2) + c1·c2/g


def _conv_cost(conv: nn.Conv2d, h: int, w: int, batch: int = 1) -> tuple[int, int, int, int]:
    """(macs, mem, h_out, w_out) of one conv on a batch of h x w inputs (weights counted once per batch)."""
    ho, wo = conv2d_out_size((h, w), conv.kernel_size, conv.stride, conv.padding, conv.dilation)
    macs = batch * conv2d_macs(conv.in_channels, conv.out_channels, conv.kernel_size, (ho, wo), conv.groups)
    mem = memory_bytes(conv.weight.numel(), batch * h * w * conv.in_channels, batch * ho * wo * conv.out_channels,
                       bytes_per_elem=1)
    return macs, mem, ho, wo


def _seq_cost(net: nn.Module, hw: int, batch: int = 1) -> tuple[int, int]:
    """(macs, mem) summed over the convs of ``net``; every conv here keeps the spatial size."""
    macs = mem = 0
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            a, b, _, _ = _conv_cost(m, hw, hw, batch)
            macs, mem = macs + a, mem + b
    return macs, mem


def _input(c: int, hw: int, batch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(batch, c, hw, hw, generator=g)


# ---------------------------------------------------------------------------------------------- G1
def g1_cases(c: int = 128, hw: int = 28, ratios=(1, 2, 6, 12), blocks: int = 5, batch: int = 1) -> list[Case]:
    """G1: equal widths minimise memory access. ``blocks`` blocks of two 1x1 convs ``c1 -> c2 -> c1``
    (Table 1 of the paper) with ``c1 = round(c/√r)``, ``c2 = r·c1``, so ``c1·c2 ≈ c²`` (equal multiply-adds).

    Args:
        c: the reference width (int >= 1; default 128).
        ratios: the ratios ``r = c2/c1``, a non-empty list / tuple of ints >= 1 (default ``(1, 2, 6, 12)``).
        hw: height = width of the input maps (int >= 1; default 28).
        blocks: number of blocks (int >= 1; default 5).
        batch: images per input (int >= 1; default 1); ``macs`` and ``mem`` count the whole batch.

    Returns:
        ``list[Case]``: one case per ratio, each with a seeded random input ``Tensor[batch, C, hw, hw]``, its
        ``macs`` and ``mem`` (elements); ``info`` holds ``c1``, ``c2``, ``ratio``.
    """
    for n, v in (("c", c), ("hw", hw), ("blocks", blocks), ("batch", batch)):
        int_at_least(n, v)
    cases = []
    for r in V.sequence("ratios", ratios, lambda n, v: V.integer(n, v, 1)):
        c1 = max(1, round(c / math.sqrt(r)))
        c2 = r * c1
        net = nn.Sequential(*[nn.Conv2d(a, b, 1, bias=False) for _ in range(blocks) for a, b in ((c1, c2), (c2, c1))])
        macs, mem = _seq_cost(net, hw, batch)
        cases.append(Case(f"c1:c2 = 1:{r} ({c1}:{c2})", net, _input(c1, hw, batch), macs, mem, {"c1": c1, "c2": c2, "ratio": r}))
    return cases


# ---------------------------------------------------------------------------------------------- G2
def g2_cases(c: int = 128, hw: int = 28, groups=(1, 2, 4, 8), blocks: int = 10, batch: int = 1) -> list[Case]:
    """G2: more groups raise memory access. ``blocks`` 1x1 group convs ``c_g -> c_g`` (Table 2) with
    ``c_g = c·√g`` rounded to a multiple of ``g``, so ``c_g²/g ≈ c²`` (equal multiply-adds).

    Args:
        c: the reference width (int >= 1; default 128).
        groups: the group counts ``g``, a non-empty list / tuple of ints >= 1 (default ``(1, 2, 4, 8)``).
        hw: height = width of the input maps (int >= 1; default 28).
        blocks: number of blocks (int >= 1; default 10).
        batch: images per input (int >= 1; default 1); ``macs`` and ``mem`` count the whole batch.

    Returns:
        ``list[Case]``: one case per group count, each with a seeded random input ``Tensor[batch, C, hw, hw]``, its
        ``macs`` and ``mem`` (elements); ``info`` holds ``groups``, ``c``.
    """
    for n, v in (("c", c), ("hw", hw), ("blocks", blocks), ("batch", batch)):
        int_at_least(n, v)
    cases = []
    for g in V.sequence("groups", groups, lambda n, v: V.integer(n, v, 1)):
        cg = max(g, round(c * math.sqrt(g) / g) * g)
        net = nn.Sequential(*[nn.Conv2d(cg, cg, 1, groups=g, bias=False) for _ in range(blocks)])
        macs, mem = _seq_cost(net, hw, batch)
        cases.append(Case(f"g = {g} (c = {cg})", net, _input(cg, hw, batch), macs, mem,
                          {"groups": g, "c": cg}))
    return cases


# ---------------------------------------------------------------------------------------------- G3
class _Parallel(nn.Module):
    """``n`` 1x1 convs on the same input, outputs concatenated (one fragmented layer)."""

    def __init__(self, c: int, n: int):
        super().__init__()
        self.branches = nn.ModuleList(nn.Conv2d(c, c // n, 1, bias=False) for _ in range(n))

    def forward(self, x):
        return torch.cat([b(x) for b in self.branches], 1)


def g3_cases(c: int = 128, hw: int = 28, fragments=(1, 2, 4), blocks: int = 10, batch: int = 1) -> list[Case]:
    """G3: fragmentation reduces parallelism. Each of ``blocks`` blocks does ``hw·c²`` multiply-adds as

    * ``n``-fragment **series**: ``n`` chained 1x1 convs of width ``round(c/√n)`` (a thin, deep block);
    * ``n``-fragment **parallel**: ``n`` 1x1 convs ``c -> c/n`` on the same input, concatenated.

    ``1`` fragment is one 1x1 conv ``c -> c`` (Table 3 of the paper keeps the multiply-adds equal the same way).

    Args:
        c: the width (int >= 1, divisible by every fragment count; default 128).
        fragments: the fragment counts ``n``, a non-empty list / tuple of ints >= 1 dividing ``c``
            (default ``(1, 2, 4)``).
        hw: height = width of the input maps (int >= 1; default 28).
        blocks: number of blocks (int >= 1; default 10).
        batch: images per input (int >= 1; default 1); ``macs`` and ``mem`` count the whole batch.

    Returns:
        ``list[Case]``: one case for ``n = 1``, two (series, parallel) for each other ``n``, each with a
        seeded random input ``Tensor[batch, C, hw, hw]``, its ``macs`` and ``mem`` (elements); ``info`` holds
        ``n`` and ``kind``.
    """
    for n, v in (("c", c), ("hw", hw), ("blocks", blocks), ("batch", batch)):
        int_at_least(n, v)
    cases = []
    for n in V.sequence("fragments", fragments, lambda name, v: V.integer(name, v, 1)):
        if c % n:
            raise ValueError(f"fragments={n} must divide c={c}")
        if n == 1:
            net = nn.Sequential(*[nn.Conv2d(c, c, 1, bias=False) for _ in range(blocks)])
            cases.append(Case("1 fragment", net, _input(c, hw, batch), *_seq_cost(net, hw, batch), {"n": 1, "kind": "single"}))
            continue
        w = round(c / math.sqrt(n))
        net = nn.Sequential(*[nn.Conv2d(w, w, 1, bias=False) for _ in range(blocks * n)])
        cases.append(Case(f"{n} in series (c = {w})", net, _input(w, hw, batch), *_seq_cost(net, hw, batch),
                          {"n": n, "kind": "series"}))
        net = nn.Sequential(*[_Parallel(c, n) for _ in range(blocks)])
        cases.append(Case(f"{n} in parallel (c = {c})", net, _input(c, hw, batch), *_seq_cost(net, hw, batch),
                          {"n": n, "kind": "parallel"}))
    return cases


# ---------------------------------------------------------------------------------------------- G4
class Bottleneck(nn.Module):
    """ResNet bottleneck ``1x1 (c -> c/4) -> 3x3 -> 1x1 (c/4 -> c)`` (Table 4 of ShuffleNet v2), with the
    element-wise ops switchable: ``relu`` after each conv and after the add, ``shortcut`` the identity add.
    No BatchNorm (the paper's Table 4 unit has none: it would be folded into the convs at inference).

    ``Tensor[N, c, H, W] -> Tensor[N, c, H, W]``.

    Args:
        c: channels (int >= 1, divisible by 4).
        relu: apply the ReLUs (default ``True``).
        shortcut: add the identity shortcut (default ``True``).
    """

    def __init__(self, c: int, *, relu: bool = True, shortcut: bool = True):
        super().__init__()
        int_at_least("c", c)
        V.boolean("relu", relu)
        V.boolean("shortcut", shortcut)
        if c % 4:
            raise ValueError(f"c={c} must be divisible by 4 (bottleneck width c/4)")
        m = c // 4
        self.relu, self.shortcut = relu, shortcut
        self.conv1 = nn.Conv2d(c, m, 1, bias=False)
        self.conv2 = nn.Conv2d(m, m, 3, 1, 1, bias=False)
        self.conv3 = nn.Conv2d(m, c, 1, bias=False)

    def forward(self, x):
        act = torch.relu_ if self.relu else (lambda t: t)
        y = act(self.conv1(x))
        y = act(self.conv2(y))
        y = self.conv3(y)
        if self.shortcut:
            y = y + x
        return act(y)

    def elementwise(self, hw: int) -> tuple[int, int]:
        """(element-wise ops, elements they move) per image: each ReLU reads+writes its tensor,
        the add reads two tensors and writes one."""
        m, c = self.conv1.out_channels, self.conv1.in_channels
        ops = mem = 0
        if self.relu:
            ops += hw * hw * (m + m + c)
            mem += 2 * hw * hw * (m + m + c)
        if self.shortcut:
            ops += hw * hw * c
            mem += 3 * hw * hw * c
        return ops, mem


def g4_cases(c: int = 64, hw: int = 56, blocks: int = 4, batch: int = 1) -> list[Case]:
    """G4: element-wise ops cost more time than their FLOPs suggest. ``blocks`` bottleneck units with
    ReLU and shortcut on / off (Table 4 of the paper). The multiply-adds of all four are equal.

    Args:
        c: channels of the bottleneck units (int >= 1, divisible by 4; default 64).
        hw: height = width of the input maps (int >= 1; default 56).
        blocks: number of blocks (int >= 1; default 4).
        batch: images per input (int >= 1; default 1); ``macs`` and ``mem`` count the whole batch.

    Returns:
        ``list[Case]``: four cases (ReLU on / off x shortcut on / off), each with a seeded random input
        ``Tensor[batch, c, hw, hw]``, its ``macs`` and ``mem`` (elements, element-wise ops included); ``info``
        holds ``relu``, ``shortcut``, ``elementwise_ops``, ``elementwise_mem``.
    """
    for n, v in (("c", c), ("hw", hw), ("blocks", blocks), ("batch", batch)):
        int_at_least(n, v)
    cases = []
    for relu, short in ((True, True), (False, True), (True, False), (False, False)):
        net = nn.Sequential(*[Bottleneck(c, relu=relu, shortcut=short) for _ in range(blocks)])
        macs, mem = _seq_cost(net, hw, batch)
        ew_ops, ew_mem = (blocks * batch * v for v in net[0].elementwise(hw))
        label = f"ReLU {'on' if relu else 'off'}, shortcut {'on' if short else 'off'}"
        cases.append(Case(label, net, _input(c, hw, batch), macs, mem + ew_mem,
                          {"relu": relu, "shortcut": short, "elementwise_ops": ew_ops, "elementwise_mem": ew_mem}))
    return cases


# ------------------------------------------------------------------------------------------- timing
def time_rounds(cases: list[Case], *, rounds: int = 5, repeats: int = 5, warmup: int = 2) -> dict[str, list[float]]:
    """Every round's milliseconds per case, timed **side by side**: ``rounds`` rounds, each timing every case
    for ``repeats`` calls (``profile.measure_latency``, median) in turn, after ``warmup`` untimed calls of every
    case. Round ``i`` of every case saw the same machine state, so the lists are **paired replicates** for
    ``lessons_lib.stats.verdict(a, b, paired=True, higher_is_better=False)``.

    Args:
        cases: a non-empty list of :class:`Case` (e.g. from a ``g*_cases`` call), with distinct labels.
        rounds: number of rounds (int >= 1; default 5; >= 2 for a verdict).
        repeats: timed calls per case and round (int >= 1; default 5).
        warmup: untimed calls per case before the first round (int >= 0; default 2).

    Returns:
        ``dict[str, list[float]]``: case label -> the ``rounds`` medians in ms, in round order.
    """
    int_at_least("rounds", rounds)
    int_at_least("repeats", repeats)
    V.integer("warmup", warmup, 0)
    cases = _cases(cases)
    labels = [c.label for c in cases]
    if len(set(labels)) != len(labels):
        raise ValueError(f"cases={V.show(labels)} must have distinct labels")
    per: dict[str, list[float]] = {c.label: [] for c in cases}
    for c in cases:  # warm up every case before any timing (allocator, oneDNN primitives)
        measure_latency(c.net, c.x, warmup=warmup, repeats=1)
    for _ in range(rounds):
        for c in cases:
            per[c.label].append(measure_latency(c.net, c.x, warmup=0, repeats=repeats).median_ms)
    return per


def time_cases(cases: list[Case], *, rounds: int = 5, repeats: int = 5, warmup: int = 2) -> dict[str, float]:
    """Milliseconds per case, timed **side by side** by :func:`time_rounds`; the result is the **fastest
    round's median**. Interleaving exposes every case to the same machine state, and taking the best round
    discards rounds slowed by other processes (they only ever add time) -- robust on a shared CPU. For a
    verdict (is A faster than B?) use every round: :func:`time_rounds` and ``stats.verdict(paired=True)``.

    Args:
        cases: a non-empty list of :class:`Case` (e.g. from a ``g*_cases`` call), with distinct labels.
        rounds: number of rounds (int >= 1; default 5).
        repeats: timed calls per case and round (int >= 1; default 5).
        warmup: untimed calls per case before the first round (int >= 0; default 2).

    Returns:
        ``dict[str, float]``: case label -> milliseconds per call (the fastest round's median).
    """
    return {k: min(v) for k, v in time_rounds(cases, rounds=rounds, repeats=repeats, warmup=warmup).items()}


def _cases(cases: object) -> list[Case]:
    return V.sequence("cases", cases, lambda n, v: V.instance(n, v, Case, "a guidelines.Case"))


def cases_table(cases: list[Case], times: dict[str, float] | None = None, *, ref: int = 0) -> str:
    """Text table: multiply-adds, memory access and (if given) measured ms, relative to ``cases[ref]``.

    Args:
        cases: the :class:`Case` list of a ``g*_cases`` call.
        times: ``{case label: ms}`` from :func:`time_cases` (``None``: no time columns).
        ref: index into ``cases`` of the row the ratios are relative to (negative counts from the end).

    Returns:
        The table as one string.
    """
    cases = _cases(cases)
    ref = V.integer("ref", ref, -len(cases), len(cases) - 1)
    if times is not None:
        V.mapping("times", times)
        missing = [c.label for c in cases if c.label not in times]
        if missing:
            raise ValueError(f"times has no entry for {missing}; it must map every case label to ms")
    head = f"{'case':<30}{'M mult-adds':>12}{'mem (M elem)':>14}{'mem ratio':>10}"
    if times is not None:
        head += f"{'time ms':>10}{'time ratio':>11}"
    lines = [head, "-" * len(head)]
    r = cases[ref]
    for c in cases:
        line = f"{c.label:<30}{c.macs / 1e6:>12.2f}{c.mem / 1e6:>14.3f}{c.mem / r.mem:>10.2f}"
        if times is not None:
            line += f"{times[c.label]:>10.3f}{times[c.label] / times[r.label]:>11.2f}"
        lines.append(line)
    return "\n".join(lines)
