# %% [markdown]
# # 01 · Grouped, depthwise and separable convolution maths
#
# **After this lesson you can** count the parameters and multiply-accumulates of any convolution by
# hand — standard, grouped, depthwise, pointwise, depthwise-separable, dilated, factorised — check the
# count against PyTorch and fvcore, and explain with numbers measured on this machine why a depthwise
# separable conv is not as much faster as its FLOPs promise.
#
# **Goals**
# 1. Derive params and MACs of a conv with `g` groups; see the 1/g saving (document 001, 2.1.1).
# 2. Derive document 001's ratio $1/c_2 + 1/k^2$ for depthwise separable convs — and catch its slip in the
#    parameter total.
# 3. Count memory traffic next to FLOPs: arithmetic intensity of each conv type.
# 4. Measure here: predicted FLOP ratio vs measured time ratio, and the GFLOPS each conv type reaches.
# 5. Check document 004's claims: a dilated 3×3 (d = 2) sees a 5×5 window; 5×1 + 1×5 replaces a 5×5.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 20 s with other jobs sharing the CPU (`FAST=True` shrinks the timing rounds and sizes).

# %% tags=["parameters"]
# Parameters: papermill overrides these (e.g. `papermill ... -p FAST True`).
FAST = False                              # fewer timing repeats and channel counts: for CI and quick checks
SEED = 0                                  # every random draw in the lesson follows this seed
DEVICE = "auto"                           # "auto" -> CUDA when present, else CPU
HW = 28                                   # feature-map height and width for the timing experiments
SWEEP_CHANNELS = (16, 32, 64, 128, 256)   # channel counts of the separable-vs-standard sweep

# %%
import warnings

warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*deprecated")  # raised by importing fvcore

import torch
from fvcore.nn import FlopCountAnalysis
from IPython.display import Markdown, display
from torch import nn

from lessons_lib import conv, machine, profile, roofline, seed_everything, stats
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson01 as ex
from lessons_lib.course.plotting import bar, grouped_bar, heatmap, lines, scatter_labeled, use_house_style
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
REPEATS = 10 if FAST else 25   # interleaved timing rounds (>= 10: enough for a paired interval)
ROOF_BUDGET_S = 0.4 if FAST else 0.8  # seconds for each roofline ceiling (matmul, copy)
CHANNELS = SWEEP_CHANNELS[1::2] if FAST else SWEEP_CHANNELS
print("measurements below come from:", machine.describe(dev))


def fvcore_macs(module, x):
    """fvcore's count of conv MACs (it counts one fused multiply-add as one 'flop')."""
    fca = FlopCountAnalysis(module.eval(), x).unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return int(fca.by_operator()["conv"])


# %% [markdown]
# ## 1 · Parameters and MACs of a convolution, with and without groups
#
# **Claim.** Document 001 (section 2.1.1) splits the $c_1$ input channels into $g$ groups; each group is
# convolved on its own into $c_2/g$ output channels and the results are concatenated. Each filter then
# sees only $c_1/g$ channels, so the layer has $1/g$ of the weights of a standard conv.
#
# **Formula.** Input $H \times W \times c_1$, kernel $h_1 \times w_1$, output $h_2 \times w_2 \times c_2$,
# `in_ch` $= c_1$, `out_ch` $= c_2$, `groups` $= g$:
# $$\text{params} = h_1 w_1 \frac{c_1}{g} c_2, \qquad \text{MACs} = h_1 w_1 \frac{c_1}{g} c_2 \, h_2 w_2 .$$
# Every one of the $c_2 h_2 w_2$ outputs is a dot product of length $h_1 w_1 c_1/g$, so MACs are simply
# params × output pixels (bias excluded, as fvcore and torchvision count). The special cases:
# **depthwise** is $g = c_1 = c_2$ (one $h_1\times w_1$ filter per channel), **pointwise** is $1\times 1$.

# %%
show_source(conv.conv2d_params)
show_source(conv.conv2d_macs)

# %% [markdown]
# **Worked example.** $c_1 = 32$, $c_2 = 64$, a 3×3 kernel, a 56×56 output: a standard conv has
# $3\cdot 3\cdot 32\cdot 64 = 18432$ weights and $18432 \cdot 56^2 = 57.8$ M MACs; with $g = 4$ both shrink
# to a quarter. **Check** each conv type against `nn.Conv2d` (parameters) and fvcore (MACs), on a
# random input:

# %%
# NBVAL_CHECK_OUTPUT
C1, C2, K, OUT = 32, 64, 3, 56
cases = {  # name: (in_ch, out_ch, kernel, groups)
    "standard 3x3": (C1, C2, K, 1),
    "grouped 3x3, g=4": (C1, C2, K, 4),
    "depthwise 3x3": (C1, C1, K, C1),
    "pointwise 1x1": (C1, C2, 1, 1),
}
for name, (ci, co, k, g) in cases.items():
    layer = nn.Conv2d(ci, co, k, padding=k // 2, groups=g, bias=False)
    x = torch.randn(1, ci, OUT, OUT)
    compare(f"{name:<17} params", conv.conv2d_params(ci, co, k, g), sum(p.numel() for p in layer.parameters()),
            ref_name="nn.Conv2d")
    compare(f"{name:<17} MACs  ", conv.conv2d_macs(ci, co, k, OUT, g), fvcore_macs(layer, x), ref_name="fvcore")
print("grouped / standard params:", conv.conv2d_params(C1, C2, K, 4) / conv.conv2d_params(C1, C2, K), "= 1/g")

# %% [markdown]
# Groups must divide both channel counts; the library says which number is wrong:

# %%
# NBVAL_CHECK_OUTPUT
for bad in [dict(in_ch=30, out_ch=64, kernel_size=3, groups=4), dict(in_ch=32, out_ch=64, kernel_size=0)]:
    try:
        conv.conv2d_params(**bad)
    except ValueError as err:
        print("ValueError:", err)

# %% [markdown]
# ## 2 · Depthwise separable convolution: $1/c_2 + 1/k^2$
#
# **Claim.** Document 001 (section 2.1.2, MobileNet v1) replaces a standard $h_1\times w_1$ conv by a
# depthwise conv (one filter per input channel) followed by a pointwise 1×1 conv that mixes channels,
# and states that both the parameters and the computation fall to $1/c_2 + 1/(h_1 w_1)$ of the standard conv.
#
# **Formula.**
# $$\frac{h_1 w_1 c_1 + c_1 c_2}{h_1 w_1 c_1 c_2} = \frac{1}{c_2} + \frac{1}{h_1 w_1}, \qquad
# \frac{(h_1 w_1 c_1 + c_1 c_2)\,h_2 w_2}{h_1 w_1 c_1 c_2\, h_2 w_2} = \frac{1}{c_2} + \frac{1}{h_1 w_1}.$$
# $c_1$ and the output size cancel. For a 3×3 kernel the ratio tends to 1/9 as $c_2$ grows: at most a 9× saving.

# %%
show_source(conv.separable_ratio)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'c1':>4} {'c2':>4}  {'standard':>9} {'separable':>9}  {'ratio nn.Conv2d':>15}  {'1/c2 + 1/9':>10}")
for c1, c2 in [(16, 16), (32, 64), (64, 128), (128, 256), (256, 512)]:
    std = sum(p.numel() for p in nn.Conv2d(c1, c2, 3, bias=False).parameters())
    sep = sum(p.numel() for p in conv.conv_layer("separable", c1, c2, 3).parameters())
    print(f"{c1:>4} {c2:>4}  {std:>9,} {sep:>9,}  {sep / std:>15.4f}  {conv.separable_ratio(c2, 3):>10.4f}")
layer = conv.conv_layer("separable", 32, 64, 3)
x = torch.randn(1, 32, 56, 56)
compare("separable 32->64 MAC ratio", round(fvcore_macs(layer, x) / fvcore_macs(nn.Conv2d(32, 64, 3, padding=1), x), 6),
        round(conv.separable_ratio(64, 3), 6), ref_name="1/c2 + 1/k^2", show_values=True)  # ratios of integers

# %% [markdown]
# **The slip.** Document 001 writes the separable parameter total as $h_1 w_1 c_2 + c_1 c_2$. The depthwise
# part has one $h_1\times w_1$ filter per *input* channel, so it is $h_1 w_1 c_1$ (the document's own ratio
# uses the right numerator). The two agree only when $c_1 = c_2$:

# %%
# NBVAL_CHECK_OUTPUT
for c1, c2 in [(32, 64), (64, 64), (144, 24)]:
    torch_count = sum(p.numel() for p in conv.conv_layer("separable", c1, c2, 3).parameters())
    print(f"c1={c1:<3} c2={c2:<3} document 001: {conv.separable_params_doc001(c1, c2, 3):>5}   "
          f"h1*w1*c1 + c1*c2: {conv.separable_params(c1, c2, 3):>5}   nn.Conv2d: {torch_count:>5}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
def _counts(c1, c2):
    return conv.separable_params_doc001(c1, c2, 3), sum(p.numel() for p in conv.conv_layer("separable", c1, c2, 3).parameters())


(doc_a, torch_a), (doc_b, torch_b) = _counts(32, 64), _counts(144, 24)
display(Markdown(
    "> **Erratum (document 001, section 2.1.2).** The separable parameter total should read "
    "$h_1 w_1 c_1 + c_1 c_2$, not $h_1 w_1 c_2 + c_1 c_2$: for $c_1 = 32$, $c_2 = 64$, 3×3 the document's formula "
    f"gives {doc_a}, PyTorch counts {torch_a}; for a MobileNet v2 projection-like 144 → 24 it gives {doc_b} instead "
    f"of {torch_b}. Also, the standard-conv cost there is written $w \\times h \\times c \\times w_1 \\times h_1 "
    "\\times c_1$ with $w, h, c$ undefined; read them as the output size $w_2 \\times h_2 \\times c_2$."))

# %% [markdown]
# ## 3 · FLOPs are not the whole cost: memory access and arithmetic intensity
#
# A layer must also read its weights and input and write its output. Counting each once (the lower
# bound a perfect cache reaches), in bytes of fp32:
# $$\text{mem} = 4\,(\text{params} + c_1 H W + c_2 h_2 w_2), \qquad
# \text{intensity} = \frac{2 \cdot \text{MACs}}{\text{mem}} \;\; [\text{FLOP/B}].$$
# A processor does many FLOPs per byte it can fetch from memory (tens on a CPU, hundreds on a GPU);
# a layer with a lower intensity waits for memory, whatever its FLOP count. ShuffleNet v2 calls this
# memory access cost "MAC" too — in this workbook MAC means multiply-accumulate unless it says "memory".

# %%
show_source(conv.conv2d_cost)

# %%
# NBVAL_CHECK_OUTPUT
C = 128
costs = {kind: conv.layer_cost(conv.conv_layer(kind, C, C, 3, groups=4), HW)
         for kind in ("standard", "grouped", "depthwise", "pointwise", "separable")}
print(f"c1 = c2 = {C}, 3x3, {HW}x{HW}, fp32")
print(f"{'kind':<10} {'params':>8} {'MACs':>12} {'mem KiB':>9} {'FLOP/B':>7}")
for kind, c in costs.items():
    print(f"{kind:<10} {c.params:>8,} {c.macs:>12,} {c.mem_bytes / 1024:>9.1f} {c.intensity:>7.1f}")
rows = profile.profile_model(conv.conv_layer("separable", C, C, 3), (1, C, HW, HW)).rows
compare("separable memory bytes", costs["separable"].mem_bytes, sum(r.mem_bytes for r in rows), ref_name="profile_model")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
display(Markdown(
    f"The depthwise conv does 1/{costs['standard'].macs // costs['depthwise'].macs} of the standard conv's MACs but "
    f"still moves the whole input and output feature maps ({costs['depthwise'].mem_bytes / costs['standard'].mem_bytes:.0%} "
    f"of the standard conv's bytes): its intensity is {costs['depthwise'].intensity:.1f} FLOP/B against "
    f"{costs['standard'].intensity:.0f} for the standard conv. The separable pair also writes and re-reads an "
    "intermediate feature map. So we expect it to fall short of its FLOP saving; section 4 measures by how much."))

# %% [markdown]
# ## 4 · Measured: predicted FLOP ratio vs measured time ratio
#
# For each channel count $c$ we time, interleaved in the same rounds, a standard 3×3 conv $c \to c$, its
# depthwise and pointwise parts, and the separable pair, on one random $1\times c\times$`HW`$\times$`HW` input.

# %%
show_source(profile.measure_side_by_side)

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
sweep = profile.separable_sweep(CHANNELS, hw=HW, kernel_size=3, repeats=REPEATS, device=dev)
print("measured on:", machine.describe(dev), f"| batch 1, {HW}x{HW}, median of {REPEATS} interleaved runs")
print(f"{'c':>4} {'predicted':>9} {'measured':>9}   achieved GFLOPS: {'standard':>8} {'depthwise':>9} {'pointwise':>9} {'separable':>9}")
for r in sweep:
    print(f"{r.channels:>4} {r.predicted_ratio:>9.3f} {r.measured_ratio:>9.3f}   {'':>17}"
          + " ".join(f"{r.gflops(k):>{w}.1f}" for k, w in zip(conv.SWEEP_KINDS, (8, 9, 9, 9))))
shortfall = [r.measured_ratio / r.predicted_ratio for r in sweep]
dw_vs_std = [r.gflops("depthwise") / r.gflops("standard") for r in sweep]
print(f"\nmeasured / predicted time ratio: {min(shortfall):.1f}x to {max(shortfall):.1f}x "
      f"(> 1 means the separable conv saves less time than FLOPs promise)")
print(f"depthwise reaches {min(dw_vs_std):.1%} to {max(dw_vs_std):.1%} of the standard conv's GFLOPS")

# %%
# NBVAL_IGNORE_OUTPUT  (figure of the timings above)
import matplotlib.pyplot as plt

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.6))
lines([r.channels for r in sweep], {"predicted (MACs)": [r.predicted_ratio for r in sweep],
                                    "measured (time)": [r.measured_ratio for r in sweep]},
      ax=ax1, logx=True, logy=True, xlabel="channels c", ylabel="separable / standard",
      title="Separable vs standard 3x3: FLOPs vs time")
ax1.minorticks_off()
ax1.set_xticks([r.channels for r in sweep], [str(r.channels) for r in sweep])
grouped_bar({k: {str(r.channels): r.gflops(k) for r in sweep} for k in conv.SWEEP_KINDS}, ax=ax2, log=True,
            ylabel="achieved GFLOPS", title="GFLOPS reached per conv type")
ax2.set_xlabel("channels c")
fig.tight_layout()

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
lowest = {r.channels: min(conv.SWEEP_KINDS, key=r.gflops) for r in sweep}
above = [r.channels for r in sweep if r.measured_ratio > r.predicted_ratio]
slower_pair = [r.channels for r in sweep if r.measured_ratio > 1]
display(Markdown(
    "**Read the figures.** Left: if time followed FLOPs the two lines would coincide. The measured line lies above "
    f"the predicted one at {len(above)} of {len(sweep)} channel counts ({', '.join(map(str, above)) or 'none'})"
    + (f": there the separable pair saves less time than its MACs promise, by "
       f"{min(r.measured_ratio / r.predicted_ratio for r in sweep if r.channels in above):.1f}× to "
       f"{max(shortfall):.1f}× (medians of {REPEATS} interleaved rounds)." if above else ".")
    + (f" At c = {', '.join(map(str, slower_pair))} the pair was even slower than the standard conv: with little "
       "work per call, fixed per-call costs (dispatch, threading, allocation) dominate, and the pair pays them twice."
       if slower_pair else "")
    + " Right: achieved GFLOPS per conv type; the lowest at each c is "
    + ", ".join(f"{k} (c = {c})" for c, k in lowest.items())
    + f". The depthwise conv reaches {min(dw_vs_std):.1%} to {max(dw_vs_std):.1%} of the standard conv's GFLOPS: "
    "besides its low intensity it cannot become one large matrix multiplication (each channel has its own "
    "k×k filter), so it misses the tuned GEMM kernels that standard and pointwise convs run on. The roofline "
    "below puts the largest channel count against this machine's measured ceilings."))

# %% [markdown]
# **On the roofline.** Lesson 00 measures this machine's two ceilings: the peak $P$ of a large fp32 matmul
# and the bandwidth $B$ of a large copy; a layer of intensity $I$ can reach at most $\min(P, I B)$. Each conv
# type of the largest channel count is placed at its intensity: the measured GFLOPS (stars) against its bound
# (the line), and the grouped conv (g = 4, not timed in the sweep) at its bound.

# %%
# NBVAL_IGNORE_OUTPUT  (achieved GFLOPS and the ceilings are measured)
peak = roofline.peak_gflops(budget_s=ROOF_BUDGET_S, device=dev)
bw = roofline.bandwidth_gbs(budget_s=ROOF_BUDGET_S, device=dev)
ridge = roofline.ridge_intensity(peak, bw)
big = sweep[-1]
pts = {k: (roofline.layer_point(conv.conv_layer(k, big.channels, big.channels, 3), (1, big.channels, HW, HW)).intensity,
           big.gflops(k)) for k in conv.SWEEP_KINDS}
grouped_i = roofline.layer_point(conv.conv_layer("grouped", big.channels, big.channels, 3, groups=4),
                                 (1, big.channels, HW, HW)).intensity
print("measured on:", machine.describe(dev))
print(f"P = {peak.text()}\nB = {bw.text()}\nridge = {ridge:.1f} FLOP/B")
frac = {}
for k, (inten, gf) in pts.items():
    att = roofline.attainable_gflops(inten, peak, bw)
    frac[k] = gf / att
    print(f"{k:<10} intensity {inten:6.1f} FLOP/B  {roofline.bound(inten, peak, bw):<13}  achieved {gf:7.1f} GFLOPS "
          f"= {frac[k]:.0%} of its roofline bound {att:.1f}")
print(f"{'grouped':<10} intensity {grouped_i:6.1f} FLOP/B  {roofline.bound(grouped_i, peak, bw):<13}  "
      f"bound {roofline.attainable_gflops(grouped_i, peak, bw):.1f} GFLOPS (not timed)")
fig, ax = plt.subplots(figsize=(6.4, 4))
grid = [10 ** (k / 20) for k in range(-20, 61)]
ax.plot(grid, [roofline.attainable_gflops(i, peak, bw) for i in grid], color="black", lw=1.5, label="roofline (measured)")
ax.axvline(ridge, color="grey", ls=":", lw=1)
for j, (k, (inten, gf)) in enumerate(pts.items()):
    ax.scatter([inten], [gf], marker="*", s=150, color=f"C{j}", edgecolor="black", label=f"{k} (measured)")
    ax.scatter([inten], [roofline.attainable_gflops(inten, peak, bw)], s=25, color=f"C{j}")
ax.scatter([grouped_i], [roofline.attainable_gflops(grouped_i, peak, bw)], s=40, marker="s", color="grey",
           label="grouped g=4 (bound only)")
ax.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/B)", ylabel="GFLOPS",
       title=f"c = {big.channels}, {HW}x{HW}: measured GFLOPS vs this machine's roofline")
ax.legend(fontsize=7)

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
memb = [k for k, (i, _) in pts.items() if roofline.bound(i, peak, bw) == "memory-bound"]
display(Markdown(
    f"**Read it.** At c = {big.channels}, left of this machine's ridge ({ridge:.1f} FLOP/B) — memory-bound — are: "
    f"{', '.join(memb) or 'none'}"
    + (f", and the grouped conv (g = 4, {grouped_i:.1f} FLOP/B)" if roofline.bound(grouped_i, peak, bw) == "memory-bound" else "")
    + ". Each measured conv reaches this share of its roofline bound: "
    + ", ".join(f"{k} {v:.0%}" for k, v in frac.items())
    + ". A low share means the roofline is not what limits it: the kernel itself is (for the depthwise conv, "
      "no GEMM), not the memory traffic the formula counts."
    + (f" Above their bound: {', '.join(k for k, v in frac.items() if v > 1)}. Then the measured 'peak' is no "
       "ceiling for them. Two causes are possible: the machine's load changed between the sweep and the ceiling "
       "measurement (rerun on an idle machine), or the conv library does fewer arithmetic operations than the "
       "direct-conv MAC count says (e.g. a Winograd 3×3 algorithm) or has kernels faster than the matmul that "
       "defines P; 'achieved GFLOPS' counts the direct convolution's FLOPs, not the ones executed." if any(v > 1 for v in frac.values())
       else "")))

# %% [markdown]
# ## 5 · Document 004: dilated 3×3 and 5×1 + 1×5
#
# **Claim.** Document 004 (its rule 7) uses a 3×3 conv with dilation 2 in the first layer because it sees a
# window as large as a 5×5 conv's with the weights of a 3×3; its rule 10 replaces a 5×5 conv by a 5×1 conv
# followed by a 1×5 conv to save parameters.
#
# **Formula.** A kernel $k$ with dilation $d$ spans $d(k-1)+1$ pixels. For a stack of layers with strides
# $s_j$ the receptive field of one output pixel is
# $$r = 1 + \sum_i d_i (k_i - 1) \prod_{j<i} s_j .$$

# %%
show_source(conv.receptive_field)

# %% [markdown]
# **Check by experiment.** The gradient of one output pixel with respect to the input is non-zero exactly
# on the input pixels it depends on (`impulse_receptive_field`). We compare its extent with the formula:

# %%
# NBVAL_CHECK_OUTPUT
stacks = {  # name: (module with random weights, layers for the formula)
    "3x3": (nn.Conv2d(4, 4, 3), [(3, 1, 1)]),
    "3x3, d=2": (conv.conv_layer("dilated", 4, 4, 3, dilation=2), [(3, 1, 2)]),
    "5x5": (nn.Conv2d(4, 4, 5), [(5, 1, 1)]),
    "5x1 + 1x5": (conv.conv_layer("factorized", 4, 4, 5), [((5, 1), 1, 1), ((1, 5), 1, 1)]),
    "3x3 + 3x3": (nn.Sequential(nn.Conv2d(4, 4, 3), nn.Conv2d(4, 4, 3)), [(3, 1, 1), (3, 1, 1)]),
    "3x3 d=2 twice": (nn.Sequential(*[conv.conv_layer("dilated", 4, 4, 3, dilation=2) for _ in range(2)]), [(3, 1, 2)] * 2),
}
masks = {}
for name, (module, layers) in stacks.items():
    masks[name] = conv.impulse_receptive_field(module, 4, 15)
    compare(f"{name:<14} receptive field", conv.receptive_field(layers), conv.mask_extent(masks[name]),
            ref_name="gradient experiment")
    print(f"{'':<16}pixels that reach the output: {int(masks[name].sum())} of {masks[name].shape[0] ** 2}")

# %%
fig, axes = plt.subplots(1, len(masks), figsize=(2.0 * len(masks), 2.3))
for ax, (name, m) in zip(axes, masks.items()):
    heatmap(m[3:12, 3:12], ax=ax, title=name, colorbar=False, cmap="Greys", vmin=0, vmax=1)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("Input pixels (9x9 crop) that reach one output pixel", fontsize=10)
fig.tight_layout()

# %% [markdown]
# The dilated 3×3 does span 5×5, but it reads only 9 of those 25 pixels; two stacked d = 2 convs span 9×9
# and still read only 25 of 81 (the "gridding" pattern). 5×1 + 1×5 and two 3×3 cover their window fully.
# So "equivalent to a 5×5" holds for the *extent* of the field, not for what the layer can compute.
#
# **Cost.** Parameters and MACs for $c_1 = c_2 = 64$ on `HW`×`HW` (every layer keeps the size):

# %%
# NBVAL_CHECK_OUTPUT
C = 64
kinds5 = {"3x3": conv.conv_layer("standard", C, C, 3), "3x3, d=2": conv.conv_layer("dilated", C, C, 3, dilation=2),
          "5x5": conv.conv_layer("standard", C, C, 5), "5x1 + 1x5": conv.conv_layer("factorized", C, C, 5)}
cost5 = {k: conv.layer_cost(m, HW) for k, m in kinds5.items()}
for k, c in cost5.items():
    print(f"{k:<10} params {c.params:>7,}  MACs {c.macs:>11,}  ({c.macs / cost5['5x5'].macs:.2f} of the 5x5)")
x = torch.randn(1, C, HW, HW)
compare("5x1 + 1x5 MACs", cost5["5x1 + 1x5"].macs, fvcore_macs(kinds5["5x1 + 1x5"], x), ref_name="fvcore")

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
lat5 = profile.measure_side_by_side({k: m.to(dev) for k, m in kinds5.items()}, torch.randn(1, C, HW, HW, device=dev),
                                    repeats=REPEATS)
print("measured on:", machine.describe(dev), f"| c = {C}, {HW}x{HW}, median of {REPEATS} interleaved runs")
for k in kinds5:
    print(f"{k:<10} {lat5[k].median_ms:7.3f} ms  ({lat5[k].median_ms / lat5['5x5'].median_ms:.2f} of the 5x5 time, "
          f"{cost5[k].macs / cost5['5x5'].macs:.2f} of its MACs)  "
          f"{2 * cost5[k].macs / lat5[k].median_ms / 1e6:6.1f} GFLOPS")
fact_time = lat5["5x1 + 1x5"].median_ms / lat5["5x5"].median_ms
fact_macs = cost5["5x1 + 1x5"].macs / cost5["5x5"].macs
dil_vs_std = lat5["3x3, d=2"].median_ms / lat5["3x3"].median_ms
v_fact = stats.verdict(lat5["5x1 + 1x5"].times_ms, lat5["5x5"].times_ms, names=("5x1 + 1x5", "5x5"),
                       higher_is_better=False, paired=True, unit="ms")
v_dil = stats.verdict(lat5["3x3, d=2"].times_ms, lat5["3x3"].times_ms, names=("3x3, d=2", "3x3"),
                      higher_is_better=False, paired=True, unit="ms")
print(f"\n5x1 + 1x5 takes {fact_time:.2f} of the 5x5's time (medians) for {fact_macs:.2f} of its MACs")
print(v_fact.text(3))
print(f"the dilated 3x3 takes {dil_vs_std:.2f}x the time of the plain 3x3 (medians) for the same MACs")
print(v_dil.text(3))

# %% [markdown]
# ## 6 · Try it: channels, kernel and groups vs params, MACs and time
#
# Move the **channels** slider (first control), pick a kernel size and a group count. The table gives the
# counts; the bars show the time measured here for a standard conv, the grouped conv, a depthwise conv and
# a depthwise-separable pair, all $c \to c$ on one `HW`×`HW` map.

# %%
def conv_panel(channels=64, kernel=3, groups=4):
    layers = {"standard": conv.conv_layer("standard", channels, channels, kernel),
              f"grouped g={groups}": conv.conv_layer("grouped", channels, channels, kernel, groups=groups),
              "depthwise": conv.conv_layer("depthwise", channels, channels, kernel),
              "separable": conv.conv_layer("separable", channels, channels, kernel)}
    lat = profile.measure_side_by_side({k: m.to(dev) for k, m in layers.items()},
                                       torch.randn(1, channels, HW, HW, device=dev), warmup=1, repeats=5)
    print(f"c = {channels}, {kernel}x{kernel}, {HW}x{HW} | {machine.describe(dev)}")
    print(f"{'kind':<14} {'params':>9} {'MACs':>13} {'FLOP/B':>7} {'ms':>8} {'GFLOPS':>7}")
    for k, m in layers.items():
        c = conv.layer_cost(m, HW)
        ms = lat[k].median_ms
        print(f"{k:<14} {c.params:>9,} {c.macs:>13,} {c.intensity:>7.1f} {ms:>8.3f} {2 * c.macs / ms / 1e6:>7.1f}")
    bar({k: v.median_ms for k, v in lat.items()}, ylabel="ms (median of 5)", annotate="{:.3g}",
        title=f"c = {channels}, {kernel}x{kernel} kernel, g = {groups}: measured time")
    plt.show()


interactive_panel(conv_panel,
                  channels=int_slider("channels", 64, 16, 256, step=16),
                  kernel=dropdown("kernel", [1, 3, 5, 7], 3),
                  groups=dropdown("groups", [1, 2, 4, 8, 16], 4))

# %% [markdown]
# ## 7 · Exercises
#
# **7.1** How many weights has `nn.Conv2d(96, 192, kernel_size=3, groups=4, bias=False)`? Work it out by hand.

# %%
answer = ...  # an int
ex.grouped_params.check(answer)

# %% [markdown]
# **7.2** A 3×3 conv from 64 to 128 channels becomes depthwise 3×3 + pointwise 1×1. What fraction of the
# standard conv's MACs remains (a number between 0 and 1)?

# %%
answer = ...  # a float
ex.separable_cost.check(answer)

# %% [markdown]
# **7.3** Three stacked 3×3 convs, stride 1, with dilations 1, 2 and 4: how many input pixels wide is the
# receptive field of one output pixel? (Check yourself afterwards with `conv.impulse_receptive_field`.)

# %%
answer = ...  # an int
ex.dilated_rf.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
# Reference answers pass every checker; a wrong one gets a hint.
for e in (ex.grouped_params, ex.separable_cost, ex.dilated_rf):
    e.check(e.solution())
ex.grouped_params.check(3 * 3 * 96 * 192)

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
kinds_c = list(costs)
display(Markdown("\n".join([
    "* A conv has $h_1 w_1 (c_1/g) c_2$ weights and that times $h_2 w_2$ MACs: checked against `nn.Conv2d` and "
    f"fvcore for standard, grouped (g = 4 → exactly {conv.conv2d_params(C1, C2, K, 4) / conv.conv2d_params(C1, C2, K):g} "
    "of the weights), depthwise and pointwise convs.",
    f"* Depthwise separable costs $1/c_2 + 1/k^2$ of a standard conv in params and MACs ({conv.separable_ratio(64, 3):.4f} "
    f"for 32 → 64, 3×3, confirmed by fvcore); document 001's parameter total $h_1 w_1 c_2 + c_1 c_2$ is wrong unless "
    f"$c_1 = c_2$ ({doc_a} vs the true {torch_a} for 32 → 64).",
    f"* Arithmetic intensity at c = 128, {HW}×{HW} (fp32): "
    + ", ".join(f"{k} {costs[k].intensity:.1f}" for k in kinds_c)
    + f" FLOP/B — the depthwise conv moves {costs['depthwise'].mem_bytes / costs['standard'].mem_bytes:.0%} of the "
      f"standard conv's bytes for 1/{costs['standard'].macs // costs['depthwise'].macs} of its FLOPs.",
    f"* Measured here ({machine.describe(dev)}, {REPEATS} interleaved rounds): separable / standard time vs MACs "
    + "; ".join(f"c = {r.channels}: {r.measured_ratio:.3f} vs {r.predicted_ratio:.3f}" for r in sweep)
    + f". On this machine's roofline (P = {peak.value:.1f} GFLOPS, B = {bw.value:.1f} GB/s) the memory-bound conv "
      f"types at c = {big.channels} are: {', '.join(memb) or 'none'}; the depthwise conv reaches {frac['depthwise']:.0%} "
      "of its bound.",
    f"* A dilated 3×3 (d = 2) has a 5×5 receptive field but reads {int(masks['3x3, d=2'].sum())} of its 25 pixels; "
    f"5×1 + 1×5 covers the full 5×5 with {cost5['5x1 + 1x5'].params / cost5['5x5'].params:.2f} of its params and "
    f"MACs (c = {C}) — both checked by a gradient experiment. Timed side by side: {v_fact.verdict} "
    f"({fact_time:.2f} of the time for {fact_macs:.2f} of the MACs); dilated vs plain 3×3: {v_dil.verdict}.",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | group convolution | 分组卷积 | channels split into g groups convolved separately; 1/g of the weights and MACs |
# | depthwise convolution | 逐通道卷积 / 深度卷积 | g = c1: one k×k filter per channel |
# | pointwise convolution | 逐点卷积 | 1×1 conv mixing channels |
# | depthwise separable convolution | 深度可分离卷积 | depthwise k×k then pointwise 1×1 |
# | multiply-accumulate (MAC) | 乘加运算 | one multiply and one add; FLOPs ≈ 2 × MACs |
# | memory access cost | 内存访问代价（访存量） | bytes of weights + input + output a layer moves |
# | arithmetic intensity | 计算强度 | FLOPs per byte moved |
# | receptive field | 感受野 | input pixels one output pixel depends on |
# | dilated (atrous) convolution | 空洞卷积 | kernel taps spaced d pixels apart |
# | factorised (asymmetric) convolution | 非对称卷积分解 | k×1 followed by 1×k instead of k×k |
#
# **Next:** [02 · MobileNet v1 → v2 → v3](02_mobilenet_v1_v3.ipynb).
