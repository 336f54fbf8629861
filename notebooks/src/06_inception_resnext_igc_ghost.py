# %% [markdown]
# # 06 · Inception, Xception, ResNeXt, IGC, GhostNet
#
# **After this lesson you can** factorise large kernels without losing receptive field, recognise
# Xception, ResNeXt and IGC as ways of splitting one convolution into groups, prove a ResNeXt block equals
# one grouped conv, and say how much a Ghost module saves — counted and measured.
#
# **Goals**
# 1. Replace 5x5 by two 3x3 and n×n by 1×n + n×1; check the receptive field with a gradient impulse and the
#    parameters with the conv formula.
# 2. See Xception's "extreme Inception" as one tower per channel, i.e. a depthwise conv.
# 3. Copy the weights of C ResNeXt branches into one grouped conv and get the same outputs.
# 4. Count IGC's two group convs against a dense conv of the same width.
# 5. Count and time a Ghost module against an ordinary conv; check GhostNet's ratio formula.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 10 s (`FAST=True`: about 5 s).

# %% tags=["parameters"]
# Parameters: papermill overrides these (e.g. `papermill ... -p FAST True`).
FAST = False          # fewer timing rounds: for CI and quick checks
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # the timings run on the CPU, one thread
THREADS = 1           # CPU threads for the timings
HW = 28               # feature-map size for the block timings
ROUNDS = 7            # interleaved timing rounds (the fastest round's median is reported)

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn
from IPython.display import Markdown, display
from torchvision.models.resnet import Bottleneck

from lessons_lib import machine, seed_everything
from lessons_lib.course import show_source
from lessons_lib.blocks import (ExtremeInception, GhostModule, IGCBlock, InceptionBlock, ResNeXtBranches,
                                ResNeXtGrouped, extreme_inception_towers, factorized_conv, ghost_speedup,
                                grouped_from_branches)
from lessons_lib.course.checks import compare
from lessons_lib.conv import conv2d_params, impulse_receptive_field, mask_extent, receptive_field
from lessons_lib.course.exercises import lesson06 as ex
from lessons_lib.guidelines import Case, time_cases
from lessons_lib.course.plotting import bar, grouped_bar, heatmap, lines, use_house_style
from lessons_lib.profile import profile_model
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
cpu = torch.device("cpu")
torch.set_num_threads(THREADS)
if FAST:
    ROUNDS = 3
n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
print("measurements below come from:", machine.describe(cpu))

# %% [markdown]
# ## 1 · Inception: smaller kernels, same view
#
# **Claim.** Document 001 says Inception v2 replaces each 5x5 conv by two stacked 3x3 convs — same receptive
# field, fewer parameters, one more non-linearity — and Inception v3 goes further, replacing an n×n conv by a
# 1×n conv followed by an n×1 conv (document 004 does the same with 5x1 + 1x5).
#
# **Formula** (weights of $c \to c$ convs, no bias): one $n \times n$ conv has $n^2c^2$; $\frac{n-1}{2}$ stacked
# 3x3 have $\frac{n-1}{2}\cdot 9c^2$ (5x5: $25c^2 \to 18c^2$, −28 %); $1\times n$ + $n\times 1$ have
# $2nc^2$ (7x7: $49c^2 \to 14c^2$). Receptive field of stacked stride-1 convs: $r = 1 + \sum_i (k_i - 1)$.

# %%
show_source(factorized_conv)

# %% [markdown]
# **Check.** For each construction: the receptive field *measured* by a gradient impulse
# (`conv.impulse_receptive_field`: which input pixels get a nonzero gradient from the centre output pixel),
# the one the formula predicts, and the parameters of the built `nn.Conv2d`s against `conv2d_params`.

# %%
# NBVAL_CHECK_OUTPUT
C = 32
layers_of = {"full": lambda n: [(n, 1, 1)], "two3x3": lambda n: [(3, 1, 1)] * ((n - 1) // 2),
             "asym": lambda n: [((1, n), 1, 1), ((n, 1), 1, 1)]}
formula_params = {"full": lambda n: conv2d_params(C, C, n), "two3x3": lambda n: (n - 1) // 2 * conv2d_params(C, C, 3),
                  "asym": lambda n: conv2d_params(C, C, (1, n)) + conv2d_params(C, C, (n, 1))}
masks = {}
for n in (5, 7):
    for kind in ("full", "two3x3", "asym"):
        m = factorized_conv(C, C, n, kind)
        masks[(n, kind)] = impulse_receptive_field(m, C, 15)
        rf = mask_extent(masks[(n, kind)])
        compare(f"{n}x{n} as {kind:<6} receptive field", rf, receptive_field(layers_of[kind](n)), ref_name="formula")
        compare(f"{n}x{n} as {kind:<6} params", n_params(m), formula_params[kind](n), ref_name="conv2d_params")
print(f"5x5 -> two 3x3: {formula_params['two3x3'](5) / formula_params['full'](5):.0%} of the weights; "
      f"7x7 -> 1x7 + 7x1: {formula_params['asym'](7) / formula_params['full'](7):.0%}")

# %%
fig, axes = plt.subplots(1, 3, figsize=(8, 2.8))
for ax, kind in zip(axes, ("full", "two3x3", "asym")):
    heatmap(masks[(5, kind)].int(), ax=ax, colorbar=False, cmap="Blues",
            title={"full": "one 5x5", "two3x3": "two 3x3", "asym": "1x5 then 5x1"}[kind])
fig.suptitle("Input pixels that reach the centre output pixel (gradient impulse, 15x15 input)", fontsize=10)
fig.tight_layout()

# %% [markdown]
# All three see the same 5×5 window. The saving carries over to a whole Inception v1 module
# (GoogLeNet's "3a": towers 1x1 | 1x1→3x3 | 1x1→5x5 | pool→1x1):

# %%
show_source(InceptionBlock)

# %%
# NBVAL_CHECK_OUTPUT
args = (192, 64, 96, 128, 16, 32, 32)
v1, v2 = InceptionBlock(*args).eval(), InceptionBlock(*args, factorize5x5=True).eval()
x = torch.randn(1, 192, 28, 28)
print(f"output channels: {v1(x).shape[1]} and {v2(x).shape[1]} (= 64 + 128 + 32 + 32)")
tower5 = lambda b: sum(p.numel() for p in b.branch3.parameters())  # noqa: E731
print(f"5x5 tower params: v1 {tower5(v1)}, factorised {tower5(v2)}; whole module: v1 {n_params(v1)}, factorised {n_params(v2)}")
compare("5x5 tower, v1", tower5(v1), conv2d_params(192, 16, 1) + conv2d_params(16, 32, 5) + 2 * (16 + 32), ref_name="formula")

# %% [markdown]
# > **Erratum (document 001).** "Two 3x3 instead of a 5x5 saves parameters" holds for convs of equal width
# > ($18c^2 < 25c^2$). In this module the 5x5 tower *widens* 16 → 32 channels: one 5x5 has
# > $25\cdot16\cdot32 = 12{,}800$ weights, while two 3x3 (16 → 32 → 32) have $9\cdot16\cdot32 + 9\cdot32\cdot32 =
# > 13{,}824$ — more, as the counts above show (tower 15,968 vs 17,056 with BatchNorm). The saving needs
# > the width change in the *second* 3x3 (16 → 16 → 32: 6,912 weights) or equal widths.
#
# ## 2 · Xception: the extreme Inception
#
# **Claim.** Document 001 follows Xception's argument: simplify an Inception module to "1x1, then a 3x3 on
# part of the channels" towers; in the extreme, every tower covers **one** channel — which is a 1x1 conv
# followed by a depthwise 3x3 (a conv with `groups` equal to the channel count). We check the equality
# numerically by running the towers one by one with the block's weights.

# %%
show_source(ExtremeInception)

# %%
# NBVAL_CHECK_OUTPUT
xb = ExtremeInception(64, 64, 3)
x = torch.randn(2, 64, 14, 14)
compare("1x1 + depthwise 3x3 vs 64 one-channel towers", xb(x), extreme_inception_towers(xb, x),
        ref_name="towers", atol=1e-5)
compare("extreme Inception params", n_params(xb), conv2d_params(64, 64, 1) + conv2d_params(64, 64, 3, groups=64),
        ref_name="conv2d_params")
print(f"vs a dense 3x3 conv 64 -> 64: {conv2d_params(64, 64, 3)} weights, {conv2d_params(64, 64, 3) / n_params(xb):.1f}x more")

# %% [markdown]
# ## 3 · ResNeXt: split-transform-merge is a grouped conv
#
# **Claim.** Document 001 presents ResNeXt as $y = x + \sum_{i=1}^{C} T_i(x)$: $C$ identical branches
# (cardinality), each 1x1 → 3x3 → 1x1 on a thin width $d$, summed — and notes that ResNeXt is, at heart, a
# grouped convolution. Why: the $C$ first 1x1s stacked are one 1x1 to $C\cdot d$ channels; the $C$ 3x3s side
# by side are one 3x3 with `groups=C`; and a **sum** of $C$ 1x1 outputs is one 1x1 over the concatenated
# inputs. `grouped_from_branches` copies the weights that way:

# %%
show_source(grouped_from_branches)

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(SEED)
branches = ResNeXtBranches(256, 256, cardinality=32, width=4)
for bn in branches.modules():   # random BN statistics: the copy must move them to the right channels too
    if isinstance(bn, nn.BatchNorm2d):
        bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.normal_(), bn.bias.data.normal_()
branches.eval()
grouped = grouped_from_branches(branches).eval()
x = torch.randn(2, 256, 14, 14)
compare("32 branches vs one grouped conv", branches(x), grouped(x), ref_name="grouped", atol=1e-4)
compare("params", n_params(branches), n_params(grouped), ref_name="grouped")
tv = Bottleneck(256, 64, groups=32, base_width=4)   # resnext50_32x4d's first-stage block
grouped.load_state_dict(tv.state_dict())
tv.eval()
compare("our grouped block vs torchvision resnext50_32x4d Bottleneck", grouped(x), tv(x), ref_name="torchvision", atol=1e-5)

# %% [markdown]
# **Measured.** Same arithmetic, same weights — but 32 small branches are 96 small convs where the grouped
# form has 3 (guideline G3 of lesson 05):

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
branches2 = ResNeXtBranches(256, 256, 32, 4)
xr = torch.randn(1, 256, HW, HW)
rx_cases = [Case("32 branches", branches2, xr, 0, 0), Case("one grouped conv", grouped_from_branches(branches2), xr, 0, 0)]
t_rx = time_cases(rx_cases, rounds=ROUNDS, repeats=3)
print("measured on:", machine.describe(cpu))
for k, v in t_rx.items():
    print(f"{k:<18} {v:8.2f} ms")
print(f"branches / grouped: {t_rx['32 branches'] / t_rx['one grouped conv']:.1f}x the time for identical outputs")

# %% [markdown]
# ## 4 · IGC: two group convs and a permutation
#
# **Claim.** Document 001 describes IGC v1: a primary group conv with $L$ groups of $M$ channels (spatial,
# 3x3), a permutation so that each secondary group takes one channel from every primary group, and a
# secondary 1x1 group conv with $M$ groups of $L$ channels; $M = 1$ gives the Xception extreme, $L = 1$ a
# dense conv. It claims the block is wider than a dense conv at the same parameter count.
#
# **Formula** (width $C = LM$, kernel $k$): $\;k^2 L M^2 + L^2 M$ weights, vs $k^2 L^2 M^2$ for a dense $k\times k$ conv.
# The permutation is `channel_shuffle(·, L)` from lesson 05.

# %%
show_source(IGCBlock)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'L':>4}{'M':>4}{'width':>7}{'IGC params':>12}{'dense 3x3':>11}{'ratio':>8}")
for L, M in ((1, 64), (4, 16), (16, 4), (32, 2), (64, 1)):
    blk = IGCBlock(L, M)
    Cw = L * M
    assert n_params(blk) == 9 * L * M * M + L * L * M   # the formula, checked on every row
    print(f"{L:>4}{M:>4}{Cw:>7}{n_params(blk):>12}{conv2d_params(Cw, Cw, 3):>11}{conv2d_params(Cw, Cw, 3) / n_params(blk):>8.1f}")
compare("IGC(32, 2) params", n_params(IGCBlock(32, 2)), conv2d_params(64, 64, 3, groups=32) + conv2d_params(64, 64, 1, groups=2),
        ref_name="conv2d_params")

# %% [markdown]
# And "wider at the same parameters": the widest IGC block with $M = 2$ (the paper's best) that fits in the
# weights of a dense 3x3 conv of width 64:

# %%
# NBVAL_CHECK_OUTPUT
budget = conv2d_params(64, 64, 3)
L_best = max(L for L in range(1, 1000) if 9 * L * 4 + L * L * 2 <= budget)
print(f"dense 3x3, width 64: {budget} weights; IGC with M = 2 and L = {L_best}: width {2 * L_best}, "
      f"{n_params(IGCBlock(L_best, 2))} weights -> {2 * L_best / 64:.1f}x wider")

# %% [markdown]
# ## 5 · GhostNet: intrinsic maps plus cheap ghosts
#
# **Claim.** Document 001 retells GhostNet: many feature maps of a trained CNN look like near-copies of each
# other, so a Ghost module makes only $m = n/s$ "intrinsic" maps with an ordinary conv and derives the others
# with cheap depthwise convs ($s - 1$ per intrinsic map, the identity counting as the $s$-th), then concatenates.
#
# **Formula** (GhostNet Eq. 4; input $c$ channels, primary $k\times k$, cheap $d\times d$):
# $$r = \frac{c\,k^2\,s}{c\,k^2 + (s-1)\,d^2} \;\xrightarrow{\;d = k\;}\; \frac{s\,c}{c + s - 1} \approx s.$$
# GhostNet uses $k = 1$, $d = 3$; then the cheap part is *not* negligible for small $c$.

# %%
show_source(GhostModule)
show_source(ghost_speedup)

# %%
# NBVAL_CHECK_OUTPUT
c_in, c_out = 64, 120   # c_out divisible by s = 2, 3, 4: no channels sliced off
plain = nn.Conv2d(c_in, c_out, 1, bias=False)
for s in (2, 3, 4):
    gm = GhostModule(c_in, c_out, kernel_size=1, ratio=s, dw_size=3, relu=False)
    conv_w = sum(p.numel() for mod in gm.modules() if isinstance(mod, nn.Conv2d) for p in mod.parameters())
    macs_g = profile_model(gm, (1, c_in, HW, HW)).total_macs
    macs_p = profile_model(plain, (1, c_in, HW, HW)).total_macs
    compare(f"s={s}: MAC saving, counted", round(macs_p / macs_g, 4), round(ghost_speedup(c_in, s, 1, 3), 4),
            ref_name="Eq. 4", show_values=True)  # ratios of integer counts: the same on every CPU
    compare(f"s={s}: weight saving, counted", round(conv2d_params(c_in, c_out, 1) / conv_w, 4),
            round(ghost_speedup(c_in, s, 1, 3), 4), ref_name="Eq. 4", show_values=True)
print(f"paper's form s*c/(c+s-1) for c={c_in}: " + ", ".join(f"s={s}: {s * c_in / (c_in + s - 1):.3f}" for s in (2, 3, 4)))

# %% [markdown]
# With a 1x1 primary conv and 3x3 ghosts the saving at $c = 64$ is 1.75× for $s = 2$, not ≈ 1.97×: the paper's
# $\approx s$ assumes $d = k$ (or $c \gg d^2$). **Measured** against the ordinary conv it replaces:

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
xg = torch.randn(1, c_in, HW, HW)
g_cases = [Case("1x1 conv 64->128", nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out),
                                                  nn.ReLU()), xg, 0, 0)]
g_cases += [Case(f"Ghost s={s}", GhostModule(c_in, c_out, ratio=s), xg, 0, 0) for s in (2, 4)]
t_g = time_cases(g_cases, rounds=ROUNDS, repeats=5)
print("measured on:", machine.describe(cpu))
base = t_g[g_cases[0].label]
for c in g_cases:
    print(f"{c.label:<18} {t_g[c.label]:7.3f} ms  speed-up {base / t_g[c.label]:.2f}x")
sp2 = base / t_g["Ghost s=2"]
print("the Ghost module is " + ("faster" if sp2 > 1 else "not faster")
      + f" here at s=2 although it does {ghost_speedup(c_in, 2, 1, 3):.2f}x fewer multiply-adds")
display(Markdown(
    f"> **{'Confirmation' if sp2 > 1.2 else 'Erratum'} (document 001: GhostNet).** The Ghost module saves "
    f"{ghost_speedup(c_in, 2, 1, 3):.2f}x the multiply-adds at s = 2 (counted above). Measured here "
    f"({machine.describe(cpu)}) it runs **{sp2:.2f}x** as fast as the 1x1 conv it replaces: "
    + ("the saving turns into speed." if sp2 > 1.2 else
       "a depthwise conv, a concatenation and a slice are memory-bound ops (lesson 05's G3 and G4), and they "
       "eat the arithmetic saving on this CPU.")))

# %%
# NBVAL_IGNORE_OUTPUT  (figure of the timings above)
grouped_bar({"multiply-adds saving (counted)": {"Ghost s=2": ghost_speedup(c_in, 2, 1, 3), "Ghost s=4": ghost_speedup(c_in, 4, 1, 3)},
             "speed-up (measured)": {"Ghost s=2": base / t_g["Ghost s=2"], "Ghost s=4": base / t_g["Ghost s=4"]}},
            title=f"Ghost module vs 1x1 conv {c_in}->{c_out} at {HW}x{HW}", ylabel="x vs the ordinary conv")

# %% [markdown]
# ## 6 · Try it: Ghost ratio s
#
# Move the **ratio s** slider (the panel's first control): the counted weights and multiply-adds of a
# Ghost module against an ordinary conv, and the time measured now.

# %%
def ghost_panel(s=2, in_channels=64):
    gm = GhostModule(in_channels, 128, ratio=s)
    ref = nn.Sequential(nn.Conv2d(in_channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU())
    xs = torch.randn(1, in_channels, HW, HW)
    ts = time_cases([Case("conv", ref, xs, 0, 0), Case("ghost", gm, xs, 0, 0)], rounds=3, repeats=3, warmup=1)
    pr, pg = profile_model(ref, tuple(xs.shape)), profile_model(gm, tuple(xs.shape))
    print(f"s = {s}, c = {in_channels}: weights {pr.total_params} -> {pg.total_params}, "
          f"MACs {pr.total_macs / 1e6:.2f} M -> {pg.total_macs / 1e6:.2f} M (Eq. 4: {ghost_speedup(in_channels, s, 1, 3):.2f}x), "
          f"time {ts['conv']:.3f} -> {ts['ghost']:.3f} ms")
    bar({"params saving": pr.total_params / pg.total_params, "MACs saving": pr.total_macs / pg.total_macs,
         "measured speed-up": ts["conv"] / ts["ghost"]}, title=f"Ghost module, ratio s = {s}, c = {in_channels}",
        ylabel="x vs 1x1 conv")


interactive_panel(ghost_panel, s=int_slider("ratio s", 2, 2, 8),
                  in_channels=dropdown("input channels c", [16, 64, 256], 64))

# %% [markdown]
# ## 7 · Exercises
#
# **7.1** Two stacked 3x3 convs (c → c → c) have what fraction of the weights of one 5x5 conv (c → c)?

# %%
answer = ...  # a number, e.g. 0.5
ex.two3x3_ratio.check(answer)

# %% [markdown]
# **7.2** How many weights has an IGC block with $L = 8$ primary groups of $M = 4$ channels (3x3 primary,
# 1x1 secondary, no bias)?

# %%
answer = ...  # an int
ex.igc_params.check(answer)

# %% [markdown]
# **7.3** What multiply-add saving does a Ghost module with $s = 2$, a 1x1 primary conv and 3x3 cheap ops
# give over a 1x1 conv, for $c = 64$ input channels?

# %%
answer = ...  # a number, e.g. 2.0
ex.ghost_ratio.check(answer)

# %% [markdown]
# *Reference answers:* `ex.two3x3_ratio.solution()`, `ex.igc_params.solution()`, `ex.ghost_ratio.solution()`.

# %%
# NBVAL_CHECK_OUTPUT
for e in (ex.two3x3_ratio, ex.igc_params, ex.ghost_ratio):
    e.check(e.solution())

# %% [markdown]
# ## Summary
# * 5x5 → two 3x3 keeps the 5×5 receptive field (measured by a gradient impulse) at 72 % of the weights;
#   7x7 → 1x7 + 7x1 keeps 7×7 at 29 %; all parameter counts equal the conv formula. In GoogLeNet's 3a
#   module, whose 5x5 tower widens 16 → 32, two 3x3 cost more (17,056 vs 15,968 parameters).
# * Xception's extreme Inception (1x1 + depthwise 3x3) equals 64 one-channel Inception towers (max |diff|
#   below 1e-5) and has 7.9x fewer weights than a dense 3x3 of width 64.
# * 32 ResNeXt branches give the same outputs as one grouped conv with copied weights, and that block equals
#   torchvision's resnext50_32x4d bottleneck; the branch form took about 4x the time of the grouped form in the builds here (this run: printed above).
# * IGC with L = 32, M = 2 has 11.5x fewer weights than a dense 3x3 of width 64; at the weights of a dense
#   width-64 conv, IGC (M = 2) reaches width 254 (4.0x wider).
# * A Ghost module's saving follows GhostNet's Eq. 4 exactly (counted): 1.75x / 2.34x / 2.81x for
#   s = 2 / 3 / 4 at c = 64 with 3x3 ghosts — below the ≈ s (1.97 / 2.91 / 3.82) of the paper's d = k form.
#   Measured, the s = 2 module was *slower* than the 1x1 conv it replaces in every build here (about
#   0.6–0.75x its speed); the box above reports this run.
#
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | receptive field | 感受野 | input pixels one output pixel depends on |
# | asymmetric factorisation | 非对称分解 | n×n → 1×n followed by n×1 |
# | depthwise separable conv | 深度可分离卷积 | per-channel k×k plus 1x1 (Xception) |
# | cardinality | 基数 | number of parallel identical branches in ResNeXt |
# | split-transform-merge | 拆分-变换-合并 | Inception/ResNeXt design pattern |
# | interleaved group convolution | 交错组卷积 | IGC: group conv, permutation, group conv |
# | intrinsic / ghost feature maps | 本征特征图 / 幻影特征图 | maps from the primary conv / from cheap ops |
# | cheap operation | 廉价操作 | GhostNet's depthwise conv making ghosts |
#
# **Next:** [07 · Quantisation fundamentals](07_quantization_fundamentals.ipynb).
