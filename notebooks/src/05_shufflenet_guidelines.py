# %% [markdown]
# # 05 · ShuffleNet v1/v2 and the four speed guidelines
#
# **After this lesson you can** explain why group pointwise convs need a channel shuffle, build ShuffleNet
# v1 and v2 units, and test ShuffleNet v2's four speed guidelines with your own measurements instead of
# taking them on trust.
#
# **Goals**
# 1. Implement `channel_shuffle`, check it against `torch.nn.ChannelShuffle`, and show with gradients that
#    without it no information crosses the groups.
# 2. Build the ShuffleNet v1 unit (group 1x1 + shuffle + depthwise + group 1x1) and the v2 unit (split,
#    branch, concat, shuffle), the latter checked against torchvision with copied weights.
# 3. Reproduce the four guidelines (G1 equal widths, G2 fewer groups, G3 less fragmentation, G4 fewer
#    element-wise ops) as side-by-side timings at equal multiply-adds, and check document 004's "about 20 %".
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 10 s (`FAST=True`: about 5 s).

# %% tags=["parameters"]
# Parameters: papermill overrides these (e.g. `papermill ... -p FAST True`).
FAST = False          # fewer timing rounds: for CI and quick checks
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # the guideline experiments always run on the CPU (see section 4)
THREADS = 1           # CPU threads for the timings: 1, like the ShuffleNet v2 paper's ARM runs
ROUNDS = 7            # interleaved timing rounds per guideline (the median is reported)

# %%
import matplotlib.pyplot as plt
import torch
import torchvision
from IPython.display import Markdown, display
from torch import nn
from torchvision.models.shufflenetv2 import InvertedResidual

from lessons_lib import guidelines, machine, seed_everything
from lessons_lib.course import show_source
from lessons_lib.blocks import ShuffleV1Unit, ShuffleV2Block, channel_dependency, channel_shuffle
from lessons_lib.course.checks import compare
from lessons_lib.conv import conv2d_params
from lessons_lib.course.exercises import lesson05 as ex
from lessons_lib.course.plotting import bar, grouped_bar, heatmap, use_house_style
from lessons_lib.profile import measure_latency, profile_model
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
cpu = torch.device("cpu")
torch.set_num_threads(THREADS)
if FAST:
    ROUNDS = 3
print("measurements below come from:", machine.describe(cpu), f"| torch threads: {torch.get_num_threads()}")

# %% [markdown]
# ## 1 · Why ShuffleNet v1 needs a channel shuffle
#
# **Claim.** Document 001 retells ShuffleNet v1's starting point: in Xception- and ResNeXt-style networks,
# once the 3x3 convs are grouped or depthwise, the dense 1x1 (pointwise) convs dominate the cost — for
# ResNeXt about 93.4 % of the multiply-adds. ShuffleNet v1 makes the 1x1 convs grouped too; but stacked
# group convs never exchange information between groups, so it inserts a **channel shuffle** between them.
#
# First the premise, counted on torchvision's `resnext50_32x4d` (random weights, no download):

# %%
# NBVAL_CHECK_OUTPUT
rep = profile_model(torchvision.models.resnext50_32x4d(), (1, 3, 224, 224))
pointwise = sum(r.macs for r in rep.rows if r.type == "Conv2d" and r.name.endswith(("conv1", "conv3", "downsample.0"))
                and r.name != "conv1")
print(f"resnext50_32x4d: {rep.total_macs / 1e9:.3f} G MACs, of which 1x1 convs {pointwise / rep.total_macs:.1%}")

# %% [markdown]
# 91.7 % here (stem and classifier included in the total) — close to the 93.4 % document 001 quotes; the
# premise holds.
#
# **Formula.** With $g$ groups and $C$ channels, reshape the channels into a $g \times C/g$ grid, transpose
# it, and flatten: output channel $o$ takes input channel
# $$\text{in}\big[(o \bmod g)\cdot C/g + \lfloor o/g \rfloor\big].$$
# So group $j$ of the *next* group conv receives channel $j$ of every previous group.

# %%
show_source(channel_shuffle)

# %% [markdown]
# **Worked example** — label 12 channels 0…11 and shuffle them with $g = 3$; then check against PyTorch's
# own `nn.ChannelShuffle` on random data.

# %%
# NBVAL_CHECK_OUTPUT
labels = torch.arange(12.0).view(1, 12, 1, 1)
print("order after channel_shuffle(g=3):", channel_shuffle(labels, 3).flatten().int().tolist())
x = torch.randn(2, 24, 5, 5)
for g in (2, 3, 4, 8):
    compare(f"channel_shuffle g={g}", channel_shuffle(x, g), nn.ChannelShuffle(g)(x), ref_name="nn.ChannelShuffle")
compare("shuffle with C/g groups undoes it", channel_shuffle(channel_shuffle(x, 3), 24 // 3), x, ref_name="x")

# %% [markdown]
# **Which output depends on which input?** `channel_dependency` back-propagates from each output channel and
# records which input channels get a nonzero gradient. Two stacked 1x1 group convs ($g = 3$, 12 channels):
# without a shuffle the dependency matrix is block-diagonal — output channel 0 never sees input channel 4.
# With the shuffle in between, every output depends on every input.

# %%
show_source(channel_dependency)

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(SEED)
gc1, gc2 = nn.Conv2d(12, 12, 1, groups=3), nn.Conv2d(12, 12, 1, groups=3)
dep_plain = channel_dependency(lambda t: gc2(gc1(t)), 12)
dep_shuf = channel_dependency(lambda t: gc2(channel_shuffle(gc1(t), 3)), 12)
for name, d in (("without shuffle", dep_plain), ("with shuffle", dep_shuf)):
    print(f"{name}: {int(d.sum())} of {d.numel()} (output, input) pairs connected")
    print("\n".join("  out %2d: %s" % (o, "".join("#" if v else "." for v in row)) for o, row in enumerate(d.tolist())))

# %%
fig, axes = plt.subplots(1, 2, figsize=(7.5, 3.2))
heatmap(dep_plain.int(), ax=axes[0], title="group 1x1 -> group 1x1", xlabel="input channel", ylabel="output channel",
        colorbar=False, cmap="Blues")
heatmap(dep_shuf.int(), ax=axes[1], title="... with channel shuffle between", xlabel="input channel",
        colorbar=False, cmap="Blues")
fig.tight_layout()

# %% [markdown]
# ## 2 · The ShuffleNet v1 unit
#
# The unit (ShuffleNet v1, Fig. 2) is a ResNet bottleneck with grouped 1x1 convs: group 1x1 → BN → ReLU →
# **shuffle** → 3x3 depthwise → BN → group 1x1 → BN; stride 1 adds the input, stride 2 concatenates a 3x3
# average-pooled input (so the unit widens while it halves the map). The bottleneck is a quarter of the
# output width. Parameters check against the conv formula of lesson 01, $k_h k_w \frac{c_1}{g} c_2$:

# %%
show_source(ShuffleV1Unit)

# %%
# NBVAL_CHECK_OUTPUT
def v1_formula(cin, cout, g, stride, first=True):
    mid, bout = cout // 4, cout - cin if stride == 2 else cout
    convs = conv2d_params(cin, mid, 1, groups=g if first else 1) + conv2d_params(mid, mid, 3, groups=mid) \
        + conv2d_params(mid, bout, 1, groups=g)
    return convs + 2 * (mid + mid + bout)   # + BN gamma and beta


for cin, cout, g, s in ((240, 240, 3, 1), (240, 480, 3, 2), (384, 384, 8, 1)):
    u = ShuffleV1Unit(cin, cout, g, s).eval()
    y = u(torch.randn(1, cin, 28, 28))
    compare(f"v1 unit {cin}->{cout} g={g} stride {s}: params (output {list(y.shape)})",
            sum(p.numel() for p in u.parameters()), v1_formula(cin, cout, g, s), ref_name="formula")
dense = conv2d_params(240, 60, 1) + conv2d_params(60, 240, 1)
grouped = conv2d_params(240, 60, 1, groups=3) + conv2d_params(60, 240, 1, groups=3)
print(f"1x1 weights of the 240-wide unit: dense {dense}, g=3 {grouped} ({dense / grouped:.0f}x fewer)")

# %% [markdown]
# ## 3 · The ShuffleNet v2 unit
#
# ShuffleNet v2 drops the group 1x1 convs again (guideline G2 below) and gets cross-group mixing from a
# **channel split**: half the channels pass through untouched, the other half go through 1x1 → 3x3
# depthwise → 1x1 at equal widths (G1); the halves are concatenated (no element-wise add: G4) and shuffled
# with $g = 2$. The stride-2 unit has no split: two branches both see the input and the concatenation
# doubles the width. Our block uses torchvision's layer names, so torchvision's weights load unchanged:

# %%
show_source(ShuffleV2Block)

# %%
# NBVAL_CHECK_OUTPUT
for cin, cout, s in ((116, 116, 1), (24, 116, 2), (232, 464, 2)):
    tv = InvertedResidual(cin, cout, s)
    for bn in tv.modules():     # random BN statistics, so a mix-up of layers would show
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.normal_(), bn.bias.data.normal_()
    ours = ShuffleV2Block(cin, cout, s)
    ours.load_state_dict(tv.state_dict())
    tv.eval(), ours.eval()
    x = torch.randn(2, cin, 28, 28)
    compare(f"v2 unit {cin}->{cout} stride {s}: output", ours(x), tv(x), ref_name="torchvision", atol=1e-5)
    compare(f"v2 unit {cin}->{cout} stride {s}: params", sum(p.numel() for p in ours.parameters()),
            sum(p.numel() for p in tv.parameters()), ref_name="torchvision")

# %% [markdown]
# ## 4 · The four guidelines, measured here
#
# **Claim.** ShuffleNet v2 (retold by documents 001 and 004) argues that FLOPs do not predict speed, because
# memory access cost (MAC — here *memory*, not multiply-accumulate) and parallelism matter too, and gives
# four guidelines: **G1** equal input and output widths minimise memory access; **G2** too many groups raise
# it; **G3** fragmentation into many small ops slows a network down; **G4** element-wise ops cost more time
# than their FLOPs suggest. The paper tested them on a GPU and a single-threaded ARM core. We test them on
# this CPU with **one thread** (`THREADS`), each guideline's variants built at (nearly) **equal
# multiply-adds** by `lessons_lib.guidelines` and timed side by side: `time_cases` interleaves the variants
# round by round and reports the fastest round's median (other processes on a shared machine only ever add time).
#
# **Formula** (memory access of a 1x1 conv $c_1 \to c_2$ with $g$ groups on an $h \times w$ map, in elements):
# $$\text{MAC} = hw(c_1 + c_2) + \frac{c_1 c_2}{g}, \qquad B = \frac{hw\,c_1 c_2}{g}\ \text{multiply-adds}.$$
# For $g = 1$ and fixed $B$, the mean-value inequality gives $\text{MAC} \ge 2\sqrt{hwB} + B/hw$, with
# equality exactly when $c_1 = c_2$ (G1). For fixed $B$, $\text{MAC} = hw c_1 + Bg/c_1 + B/hw$ grows with $g$ (G2).

# %%
show_source(guidelines.mac_1x1)
show_source(guidelines.time_cases)

# %% [markdown]
# ### G1 · equal widths
# Five blocks of two 1x1 convs $c_1 \to c_2 \to c_1$ on a 28×28 map, $c_1 c_2 \approx 128^2$ (the paper's Table 1).
# First the counts (facts), then the timings (measured).

# %%
# NBVAL_CHECK_OUTPUT
g1 = guidelines.g1_cases(c=128, hw=28, blocks=5)
print(guidelines.cases_table(g1))

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
t1 = guidelines.time_cases(g1, rounds=ROUNDS, repeats=5)
print("measured on:", machine.describe(cpu))
print(guidelines.cases_table(g1, t1))
fastest = min(t1, key=t1.get)
g1_ratio = t1[g1[-1].label] / t1[g1[0].label]
g1_holds = t1[g1[0].label] <= 1.05 * t1[fastest] and g1_ratio > 1.05
print(f"\nfastest: {fastest}; 1:12 takes {g1_ratio:.2f}x the time of 1:1 at {g1[-1].mem / g1[0].mem:.2f}x "
      f"the memory access -> G1 {'holds' if g1_holds else 'does not hold'} here")
display(Markdown(
    f"> **{'Confirmation' if g1_holds else 'Erratum'} (documents 001, 004: G1).** Equal widths minimise memory "
    f"access (the counts above: 1:12 moves {g1[-1].mem / g1[0].mem:.2f}x the elements of 1:1). Measured here, "
    f"1:12 takes **{g1_ratio:.2f}x** the time of 1:1 and the fastest ratio is {fastest.split(' (')[0]}: "
    + ("the guideline holds." if g1_holds else
       "on this CPU a 1x1 conv of this size is limited by arithmetic, not memory traffic, so unequal widths "
       "cost little or nothing; the guideline is a statement about memory-bound hardware.")))

# %% [markdown]
# ### G2 · groups
# Ten 1x1 group convs $c \to c$ on a 28×28 map with $c = 64\sqrt{g}$ (rounded to a multiple of $g$), so that
# $c^2/g$ — the multiply-adds — stays fixed while the memory access grows (the paper's Table 2).

# %%
# NBVAL_CHECK_OUTPUT
g2 = guidelines.g2_cases(c=64, hw=28, blocks=10)
print(guidelines.cases_table(g2))

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
t2 = guidelines.time_cases(g2, rounds=ROUNDS, repeats=5)
print("measured on:", machine.describe(cpu))
print(guidelines.cases_table(g2, t2))
order = [t2[c.label] for c in g2]
print(f"\ng = 8 takes {order[-1] / order[0]:.2f}x the time of g = 1 at equal multiply-adds -> G2 "
      + ("holds here" if order[-1] > 1.1 * order[0] else "does not hold here"))

# %% [markdown]
# ### G3 · fragmentation
# Ten blocks, each doing $28^2 \cdot 64^2$ multiply-adds as one 1x1 conv, as $n$ thinner convs in series, or as
# $n$ parallel 1x1 convs $64 \to 64/n$ whose outputs are concatenated (the paper's Table 3).

# %%
# NBVAL_CHECK_OUTPUT
g3 = guidelines.g3_cases(c=64, hw=28, blocks=10)
print(guidelines.cases_table(g3))

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
t3 = guidelines.time_cases(g3, rounds=ROUNDS, repeats=5)
print("measured on:", machine.describe(cpu))
print(guidelines.cases_table(g3, t3))
slow = {c.label: t3[c.label] / t3[g3[0].label] for c in g3[1:]}
print(f"\nevery fragmented variant slower than 1 fragment: {all(v > 1.0 for v in slow.values())} "
      f"(from {min(slow.values()):.2f}x to {max(slow.values()):.2f}x)")

# %% [markdown]
# ### G4 · element-wise ops
# Eight ResNet bottleneck units ($c = 32$, 56×56 map, no BatchNorm as after folding), with ReLU and the
# shortcut add switched on and off — the paper's Table 4, whose first row document 004 quotes: dropping
# both gave about 20 % more speed. The multiply-adds are identical in all four; only element-wise work changes.

# %%
show_source(guidelines.Bottleneck)

# %%
# NBVAL_CHECK_OUTPUT
g4 = guidelines.g4_cases(c=32, hw=56, blocks=8)
print(guidelines.cases_table(g4))
ew = g4[0].info
print(f"\nelement-wise ops with ReLU + shortcut: {ew['elementwise_ops'] / 1e6:.2f} M "
      f"= {ew['elementwise_ops'] / g4[0].macs:.1%} of the multiply-adds, "
      f"but {ew['elementwise_mem'] / g4[0].mem:.0%} of the memory access")

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
t4 = guidelines.time_cases(g4, rounds=ROUNDS + 4, repeats=5)
print("measured on:", machine.describe(cpu))
print(guidelines.cases_table(g4, t4))
full, bare = t4[g4[0].label], t4[g4[-1].label]
speedup = full / bare - 1
share_time = 1 - bare / full
print(f"\nremoving ReLU and shortcut: {speedup:+.1%} speed ({share_time:.1%} of the time), "
      f"for {ew['elementwise_ops'] / g4[0].macs:.1%} of the operations")
ops_share = ew["elementwise_ops"] / g4[0].macs
g4_holds = share_time > 1.2 * ops_share
if abs(speedup - 0.2) <= 0.05:
    box, verdict = "Confirmation", "matches the 20 %"
elif speedup > 0.02:
    box, verdict = "Partial confirmation", "points the same way, but the gain here is not the 20 % of the paper's GPU row"
else:
    box, verdict = "Erratum", "does not reproduce the 20 % on this machine"
display(Markdown(
    f"> **{box} (document 004).** Document 004 quotes about 20 % more speed from removing ReLU and the shortcut. "
    f"Measured here ({machine.describe(cpu)}): **{speedup:+.1%}** — this {verdict}. The element-wise ops are "
    f"{ops_share:.1%} of the operations but {share_time:.1%} of the time ({share_time / ops_share:.1f}x their "
    f"share): G4 " + ("holds" if g4_holds else "is weak") + " here."))

# %%
# NBVAL_IGNORE_OUTPUT  (figure of the timings above)
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, (name, cs, ts) in zip(axes, (("G1 widths", g1, t1), ("G2 groups", g2, t2), ("G3 fragments", g3, t3),
                                     ("G4 element-wise", g4, t4))):
    grouped_bar({"multiply-adds": {c.label.split(" (")[0]: c.macs / cs[0].macs for c in cs},
                 "memory access": {c.label.split(" (")[0]: c.mem / cs[0].mem for c in cs},
                 "measured time": {c.label.split(" (")[0]: ts[c.label] / ts[cs[0].label] for c in cs}},
                ax=ax, title=name, ylabel="relative to the first variant" if ax is axes[0] else "")
    ax.tick_params(axis="x", labelrotation=35, labelsize=7)
fig.tight_layout()

# %% [markdown]
# Read the figure: within each panel the blue bars (multiply-adds) are level by construction; the red
# (memory access) and green (measured time) bars are not. Where green follows red, memory traffic explains
# the time; where green rises with red flat (G3's parallel pieces), per-op overhead does.
#
# ## 5 · Try it: groups vs memory access and time
#
# Move the **groups** slider (the panel's first control): the 1x1 group conv keeps its multiply-adds fixed by
# widening as $c = c_0\sqrt{g}$; the bars show memory access and the time measured now, relative to $g = 1$.

# %%
def groups_panel(groups=2, base_width=64):
    cs = guidelines.g2_cases(c=base_width, hw=28, groups=(1, groups), blocks=10)
    ts = guidelines.time_cases(cs, rounds=3, repeats=3, warmup=1)
    print(guidelines.cases_table(cs, ts))
    grouped_bar({"multiply-adds": {c.label: c.macs / cs[0].macs for c in cs},
                 "memory access": {c.label: c.mem / cs[0].mem for c in cs},
                 "time": {c.label: ts[c.label] / ts[cs[0].label] for c in cs}},
                title=f"1x1 group conv, g = {groups} vs g = 1 (equal multiply-adds)", ylabel="relative to g = 1")


interactive_panel(groups_panel, groups=int_slider("groups g", 2, 1, 16, step=1),
                  base_width=dropdown("width at g = 1", [32, 64, 96], 64))

# %% [markdown]
# ## 6 · Exercises
#
# **6.1** `channel_shuffle(x, groups=3)` on 12 channels: which input channel (0-based) ends up at output
# position 5? Work it out from the formula, then check.

# %%
answer = ...  # an int
ex.shuffle_source.check(answer)

# %% [markdown]
# **6.2** Memory access (in elements) of a 1x1 group conv 256 → 256 with $g = 4$ on a 28×28 map?

# %%
answer = ...  # a number of elements
ex.group_mac.check(answer)

# %% [markdown]
# *Reference answers:* `ex.shuffle_source.solution()`, `ex.group_mac.solution()`.

# %%
# NBVAL_CHECK_OUTPUT
ex.shuffle_source.check(ex.shuffle_source.solution())
ex.group_mac.check(ex.group_mac.solution())

# %%
# NBVAL_IGNORE_OUTPUT  (the measured half of the summary: timings of this run)
print("measured on:", machine.describe(cpu))
print(f"G1  1:12 vs 1:1 widths     time x{g1_ratio:.2f} at memory x{g1[-1].mem / g1[0].mem:.2f}   "
      f"-> {'holds' if g1_holds else 'does not hold'}")
print(f"G2  g = 8 vs g = 1         time x{t2[g2[-1].label] / t2[g2[0].label]:.2f} at memory x{g2[-1].mem / g2[0].mem:.2f}")
print(f"G3  fragmented vs 1 conv   time x{min(slow.values()):.2f} to x{max(slow.values()):.2f}")
print(f"G4  no ReLU, no shortcut   speed {speedup:+.1%} (document 004: about +20 %)")

# %% [markdown]
# ## Summary
# * The 1x1 convs are 91.7 % of resnext50_32x4d's multiply-adds (document 001 quotes 93.4 %): the reason
#   ShuffleNet v1 groups them.
# * `channel_shuffle` equals `nn.ChannelShuffle` for g = 2, 3, 4, 8; without it two stacked g = 3 group convs
#   connect only 48 of 144 (output, input) channel pairs, with it all 144.
# * Our ShuffleNet v2 unit loads torchvision's weights and gives the same outputs and parameter counts
#   (3 configurations checked); the v1 unit matches the conv parameter formula.
# * All four guideline experiments hold the multiply-adds equal (within 3 %) while the memory access grows
#   by up to 1.9x (G1), 2.8x (G2), 2.4x (G3) and 3x (G4: element-wise ops are 7.4 % of the operations but
#   67 % of the memory access).
# * The times, measured side by side with one thread, are in the cell just above (re-measured on every run).
#   Across the builds on this 2-core CPU, G2 held clearly every time (g = 8 took 1.6–1.9x the time of
#   g = 1) and so did G3 (fragmented blocks slower, by up to about 1.9x); G4 held but at less than document
#   004's 20 % in most builds; G1 was the weakest (1:12 at most about 1.1x slower than 1:1, in some builds not
#   measurably slower) — the G1–G4 table above says what this run found.
#
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | channel shuffle | 通道重排 / 通道混洗 | interleave the channels of g groups so the next group conv mixes them |
# | group pointwise conv | 分组逐点卷积 | 1x1 conv with g groups: 1/g of the weights and multiply-adds |
# | channel split | 通道分割 | ShuffleNet v2: half the channels bypass the branch |
# | memory access cost (MAC) | 内存访问代价 | elements (or bytes) read and written: inputs, outputs, weights |
# | fragmentation | 碎片化 | one layer split into many small ops or parallel branches |
# | element-wise op | 逐元素操作 | ReLU, add, bias: one output per input element, little arithmetic |
# | guideline | 准则 | ShuffleNet v2's G1–G4 design rules |
# | multiply-adds (FLOPs in the paper) | 乘加次数 (计算量) | the arithmetic count the guidelines hold fixed |
#
# **Next:** [06 · Inception, Xception, ResNeXt, IGC, GhostNet](06_inception_resnext_igc_ghost.ipynb).
