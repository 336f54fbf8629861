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
#    element-wise ops) as side-by-side timings at equal multiply-adds, each with a paired interval over the
#    timing rounds and a verdict, and check document 004's "about 20 %".
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 20 s (`FAST=True`: about 15 s).

# %% tags=["parameters"]
# Parameters: papermill overrides these (e.g. `papermill ... -p FAST True`).
FAST = False          # fewer timing rounds: for CI and quick checks
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # the guideline experiments always run on the CPU (see section 4)
THREADS = 1           # CPU threads for the timings: 1, like the ShuffleNet v2 paper's ARM runs
ROUNDS = 15           # interleaved timing rounds per guideline: the paired replicates of each verdict

# %%
import matplotlib.pyplot as plt
import torch
import torchvision
from IPython.display import Markdown, display
from torch import nn
from torchvision.models.shufflenetv2 import InvertedResidual

from lessons_lib import guidelines, machine, seed_everything, stats
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
    ROUNDS = 6
conditions = f"{machine.describe(cpu)}; batch 1; {ROUNDS} interleaved rounds (median of 3 calls each)"
print("measurements below come from:", conditions)

# %% [markdown]
# ## 1 · Why ShuffleNet v1 needs a channel shuffle
#
# **Claim.** Document 001 retells ShuffleNet v1's starting point: in Xception- and ResNeXt-style networks,
# once the 3x3 convs are grouped or depthwise, the dense 1x1 (pointwise) convs dominate the cost — for
# ResNeXt about 93.4 % of the multiply-adds. ShuffleNet v1 makes the 1x1 convs grouped too; but stacked
# group convs never exchange information between groups, so it inserts a **channel shuffle** between them.
#
# First the premise, counted on torchvision's `resnext50_32x4d` (random weights, no download). The 93.4 % comes
# from ShuffleNet v1 (Zhang et al. 2018, §3.1), which counts it **per residual unit** (cardinality 32); we
# count one unit of the first stage and, for comparison, the whole network (stem, 7x7 conv and classifier included):

# %%
# NBVAL_CHECK_OUTPUT
rep = profile_model(torchvision.models.resnext50_32x4d(), (1, 3, 224, 224))
pointwise = sum(r.macs for r in rep.rows if r.type == "Conv2d" and r.name.endswith(("conv1", "conv3", "downsample.0"))
                and r.name != "conv1")
unit = {r.name.rsplit(".", 1)[1]: r.macs for r in rep.rows if r.name.startswith("layer1.1.conv")}
unit_share = (unit["conv1"] + unit["conv3"]) / sum(unit.values())
whole_share = pointwise / rep.total_macs
print(f"one residual unit (layer1.1): 1x1 convs {unit_share:.1%} of its {sum(unit.values()) / 1e6:.1f} M MACs "
      f"(document 001 quotes 93.4 %)")
print(f"whole network: {rep.total_macs / 1e9:.3f} G MACs, of which 1x1 convs {whole_share:.1%}")

# %% [markdown]
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
shuffle_ok = [compare(f"channel_shuffle g={g}", channel_shuffle(x, g), nn.ChannelShuffle(g)(x), ref_name="nn.ChannelShuffle")
              for g in (2, 3, 4, 8)]
shuffle_ok.append(compare("shuffle with C/g groups undoes it", channel_shuffle(channel_shuffle(x, 3), 24 // 3), x,
                          ref_name="x"))

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


v1_ok = []
for cin, cout, g, s in ((240, 240, 3, 1), (240, 480, 3, 2), (384, 384, 8, 1)):
    u = ShuffleV1Unit(cin, cout, g, s).eval()
    y = u(torch.randn(1, cin, 28, 28))
    v1_ok += [compare(f"v1 unit {cin}->{cout} g={g} stride {s}: params (output {list(y.shape)})",
            sum(p.numel() for p in u.parameters()), v1_formula(cin, cout, g, s), ref_name="formula")]
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
v2_ok = []
v2_configs = ((116, 116, 1), (24, 116, 2), (232, 464, 2))
for cin, cout, s in v2_configs:
    tv = InvertedResidual(cin, cout, s)
    for bn in tv.modules():     # random BN statistics, so a mix-up of layers would show
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.normal_(), bn.bias.data.normal_()
    ours = ShuffleV2Block(cin, cout, s)
    ours.load_state_dict(tv.state_dict())
    tv.eval(), ours.eval()
    x = torch.randn(2, cin, 28, 28)
    v2_ok.append(compare(f"v2 unit {cin}->{cout} stride {s}: output", ours(x), tv(x), ref_name="torchvision", atol=1e-5))
    v2_ok.append(compare(f"v2 unit {cin}->{cout} stride {s}: params", sum(p.numel() for p in ours.parameters()),
                         sum(p.numel() for p in tv.parameters()), ref_name="torchvision"))

# %% [markdown]
# ## 4 · The four guidelines, measured here
#
# **Claim.** ShuffleNet v2 (Ma et al. 2018, §2; retold by document 001, §2.1.7, and document 004, design
# principles 2–5) argues that FLOPs do not predict speed, because memory access cost (MAC — here *memory*,
# not multiply-accumulate) and parallelism matter too, and gives four guidelines: **G1** equal input and output
# widths minimise memory access; **G2** too many groups raise it; **G3** fragmentation into many small ops
# slows a network down; **G4** element-wise ops cost more time than their FLOPs suggest. The documents state
# G1 and G2 as facts about memory access (a count, checked below); the *speed* consequences are the paper's
# measurements, on a GPU and on a single-threaded ARM core (its Tables 1–4).
#
# **How we test them.** On the CPU running this notebook, with **one thread** (`THREADS`), each guideline's
# variants are built at (nearly) **equal multiply-adds** by `lessons_lib.guidelines` and timed side by side:
# `time_rounds` interleaves the variants round by round (`ROUNDS` rounds, the median of 3 calls per round), so round $i$
# of every variant saw the same machine state. The tables show the fastest round; every verdict uses all
# rounds as paired replicates (`stats.verdict(..., paired=True)`, a 95 % interval on the mean difference).
# A guideline is *confirmed on this machine* only when the interval lies on its side of 0; an interval
# containing 0 means this machine could not tell the variants apart at this budget — neither a confirmation
# nor an erratum. A result the other way is a Note, not an Erratum: the paper's claims are about its own
# hardware, which this lesson cannot reproduce.
#
# **Formula** (memory access of a 1x1 conv $c_1 \to c_2$ with $g$ groups on an $h \times w$ map, in elements):
# $$\text{MAC} = hw(c_1 + c_2) + \frac{c_1 c_2}{g}, \qquad B = \frac{hw\,c_1 c_2}{g}\ \text{multiply-adds}.$$
# For $g = 1$ and fixed $B$, the mean-value inequality gives $\text{MAC} \ge 2\sqrt{hwB} + B/hw$, with
# equality exactly when $c_1 = c_2$ (G1). For fixed $B$, $\text{MAC} = hw c_1 + Bg/c_1 + B/hw$ grows with $g$ (G2).

# %%
show_source(guidelines.mac_1x1)
show_source(guidelines.time_rounds)


# %%
def short(label):
    """'c1:c2 = 1:12 (37:444)' -> '1:12'; 'g = 8 (c = 184)' -> 'g = 8'."""
    return label.split(" (")[0].removeprefix("c1:c2 = ")


def slower(rounds, a, b):
    """Paired verdict on the round medians of case labels a and b (lower time is better)."""
    return stats.verdict(rounds[a], rounds[b], names=(short(a), short(b)), higher_is_better=False, paired=True,
                         unit="ms")


def guideline_box(title, claim, v, expect):
    """A Markdown box from a paired verdict v: confirmed here only if its interval favours `expect`."""
    if v.better == expect:
        head, tail = "Confirmation on this machine", "the whole interval is on the guideline's side."
    elif v.better is None:
        head, tail = "Not resolved on this machine", ("this machine could not resolve the difference with these "
                                                      "rounds (neither a confirmation nor an erratum).")
    else:
        head, tail = "Note: the other way on this machine", (
            "the interval is on the other side. This is not an erratum of the documents: their claim is the paper's "
            "measurement on its GPU and ARM core, which this run does not reproduce.")
    display(Markdown(f"> **{head} ({title}).** {claim} Measured side by side ({conditions}): `{v.text(3)}` — {tail}"))


# %% [markdown]
# ### G1 · equal widths
# Five blocks of two 1x1 convs $c_1 \to c_2 \to c_1$ on a 28×28 map, $c_1 c_2 \approx 128^2$ (the paper's Table 1).
# First the counts (facts), then the timings (measured).

# %%
# NBVAL_CHECK_OUTPUT
g1 = guidelines.g1_cases(c=128, hw=28, blocks=5)
print(guidelines.cases_table(g1))
print(f"\nequal widths move the fewest elements: {min(g1, key=lambda c: c.mem) is g1[0]}")

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
r1 = guidelines.time_rounds(g1, rounds=ROUNDS, repeats=3)
t1 = {k: min(v) for k, v in r1.items()}        # fastest round, for the table and the figure
print("measured on:", conditions)
print(guidelines.cases_table(g1, t1))
v_g1 = slower(r1, g1[-1].label, g1[0].label)   # 1:12 against 1:1
best1, tied1 = stats.best_of(r1, higher_is_better=False, paired=True)
print("\n" + v_g1.text(3))
print(f"fastest on average: {short(best1)}; not told apart from it: {', '.join(map(short, tied1)) or 'none'}")
guideline_box("documents 001 §2.1.7, 004 principle 2: G1",
              f"Equal widths minimise memory access — a count, and a fact (1:12 moves "
              f"{g1[-1].mem / g1[0].mem:.2f}x the elements of 1:1 at equal multiply-adds). The paper's speed claim: "
              f"the 1:1 block is the fastest. Here the fastest on average is {short(best1)}"
              + (f" (tied with {', '.join(map(short, tied1))})" if tied1 else "") + ".",
              v_g1, short(g1[0].label))

# %% [markdown]
# ### G2 · groups
# Ten 1x1 group convs $c \to c$ on a 28×28 map with $c = 64\sqrt{g}$ (rounded to a multiple of $g$), so that
# $c^2/g$ — the multiply-adds — stays fixed while the memory access grows (the paper's Table 2).

# %%
# NBVAL_CHECK_OUTPUT
g2 = guidelines.g2_cases(c=64, hw=28, blocks=10)
print(guidelines.cases_table(g2))
print(f"\nmemory access grows with every doubling of g: {all(a.mem < b.mem for a, b in zip(g2, g2[1:]))}")

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
r2 = guidelines.time_rounds(g2, rounds=ROUNDS, repeats=3)
t2 = {k: min(v) for k, v in r2.items()}
print("measured on:", conditions)
print(guidelines.cases_table(g2, t2))
v_g2 = slower(r2, g2[-1].label, g2[0].label)   # g = 8 against g = 1
print("\n" + v_g2.text(3))
guideline_box("documents 001 §2.1.7, 004 principle 3: G2",
              f"More groups raise memory access at equal multiply-adds — a count (g = 8 moves "
              f"{g2[-1].mem / g2[0].mem:.2f}x the elements of g = 1). The paper's speed claim: g = 1 is faster.",
              v_g2, short(g2[0].label))

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
r3 = guidelines.time_rounds(g3, rounds=ROUNDS, repeats=3)
t3 = {k: min(v) for k, v in r3.items()}
print("measured on:", conditions)
print(guidelines.cases_table(g3, t3))
v_g3 = {c.label: slower(r3, c.label, g3[0].label) for c in g3[1:]}
print()
for v in v_g3.values():
    print(v.text(3))
n_slower = sum(v.better == "1 fragment" for v in v_g3.values())
n_tie = sum(v.better is None for v in v_g3.values())
n_faster = len(v_g3) - n_slower - n_tie
g3_head = ("Confirmation on this machine" if n_slower == len(v_g3) else
           "Note: partly the other way on this machine" if n_faster else
           "Partly confirmed on this machine" if n_slower else "Not resolved on this machine")
display(Markdown(
    f"> **{g3_head} (documents 001 §2.1.7, 004 principle 4: G3).** The paper's claim (its Table 3): at equal "
    f"multiply-adds, one conv is faster than the same work split into fragments. Measured side by side "
    f"({conditions}): of the {len(v_g3)} fragmented variants, **{n_slower}** are slower than one conv by their "
    f"interval, {n_tie} cannot be told apart from it at this budget (not resolved: neither a confirmation nor an "
    f"erratum), and {n_faster} are faster (a Note about this machine, not an erratum: the paper measured a GPU and "
    f"an ARM core)."))

# %% [markdown]
# ### G4 · element-wise ops
# Eight ResNet bottleneck units ($c = 32$, 56×56 map, no BatchNorm as after folding), with ReLU and the
# shortcut add switched on and off — the paper's Table 4. Document 004 (principle 5) reads its first row: removing
# ReLU and the shortcut gave about 20 % more speed (the paper reports about 20 % on both its GPU and its ARM
# core). The multiply-adds are identical in all four; only element-wise work changes.

# %%
show_source(guidelines.Bottleneck)

# %%
# NBVAL_CHECK_OUTPUT
g4 = guidelines.g4_cases(c=32, hw=56, blocks=8)
print(guidelines.cases_table(g4))
ew = g4[0].info
ops_share = ew["elementwise_ops"] / (g4[0].macs + ew["elementwise_ops"])
print(f"\nelement-wise ops with ReLU + shortcut: {ew['elementwise_ops'] / 1e6:.2f} M "
      f"= {ops_share:.1%} of all operations (multiply-adds + element-wise), "
      f"but {ew['elementwise_mem'] / g4[0].mem:.0%} of the memory access")

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
r4 = guidelines.time_rounds(g4, rounds=ROUNDS + 5, repeats=3)
t4 = {k: min(v) for k, v in r4.items()}
conditions4 = conditions.replace(f"{ROUNDS} interleaved", f"{ROUNDS + 5} interleaved")  # G4's differences are small
print("measured on:", conditions4)
print(guidelines.cases_table(g4, t4))
full_r, bare_r = torch.tensor(r4[g4[0].label]), torch.tensor(r4[g4[-1].label])
speedup = float(full_r.median() / bare_r.median() - 1)   # medians over rounds: robust to a round slowed by load
share_time = float(1 - bare_r.median() / full_r.median())
# (a) does removing them save time?  (b) more than their share of the operations (G4)?  (c) about 20 % (004)?
v_dir = stats.verdict(full_r, bare_r, names=("with ReLU + shortcut", "without"), higher_is_better=False,
                      paired=True, unit="ms")
v_share = stats.verdict(bare_r, (1 - ops_share) * full_r, names=("without", f"with x (1 - {ops_share:.3f})"),
                        higher_is_better=False, paired=True, unit="ms")
v_20 = stats.verdict(full_r, 1.2 * bare_r, names=("with", "1.2 x without"), higher_is_better=False, paired=True,
                     unit="ms")
print()
for v in (v_dir, v_share, v_20):
    print(v.text(3))
size = {None: "consistent with document 004's 20 % (the interval of `with - 1.2 x without` contains 0)",
        "with": "smaller than 20 % on this machine", "1.2 x without": "larger than 20 % on this machine"}[v_20.better]
g4_box = ("Confirmation on this machine" if v_share.better == "without" else
          "Not resolved on this machine" if v_share.better is None else "Note: the other way on this machine")
display(Markdown(
    f"> **{g4_box} (document 004, principle 5: G4).** Measured side by side "
    f"({conditions4}). Removing ReLU and the "
    f"shortcut: `{v_dir.text(3)}`; speed-up **{speedup:+.1%}** (ratio of the medians over rounds), i.e. the element-wise ops took "
    f"{share_time:.1%} of the time for {ops_share:.1%} of the operations. G4 says they cost more than their "
    f"share: `{v_share.text(3)}`."
    f"\n>\n> **Note (document 004's \"about 20 %\").** The size of the gain here is {size} (`{v_20.text(3)}`). "
    "The 20 % is the paper's figure for its own GPU and ARM core; a different size on another machine is a Note, "
    "not an erratum."))

# %%
# NBVAL_IGNORE_OUTPUT  (figure of the timings above)
fig, axes = plt.subplots(1, 4, figsize=(13, 3.4))
for ax, (name, cs, ts) in zip(axes, (("G1 widths", g1, t1), ("G2 groups", g2, t2), ("G3 fragments", g3, t3),
                                     ("G4 element-wise", g4, t4))):
    grouped_bar({"multiply-adds": {short(c.label): c.macs / cs[0].macs for c in cs},
                 "memory access": {short(c.label): c.mem / cs[0].mem for c in cs},
                 "measured time": {short(c.label): ts[c.label] / ts[cs[0].label] for c in cs}},
                ax=ax, title=name, ylabel="relative to the first variant" if ax is axes[0] else "")
    ax.tick_params(axis="x", labelrotation=35, labelsize=7)
fig.suptitle(f"Counted (multiply-adds, memory access) and measured (fastest round) | {conditions}", fontsize=9)
fig.tight_layout()

# %% [markdown]
# Read the figure: within each panel the multiply-add bars are level by construction; the memory-access bars
# are counts; the time bars are this run's fastest rounds (the verdicts above say which differences the
# rounds resolve). Where the time bars follow the memory bars, memory traffic is a candidate explanation;
# where they do not, something else (arithmetic, per-op overhead) dominates on this machine.
#
# ## 5 · Try it: groups vs memory access and time
#
# Move the **groups** slider (the panel's first control): the 1x1 group conv keeps its multiply-adds fixed by
# widening as $c = c_0\sqrt{g}$; the bars show memory access and the time measured now, relative to $g = 1$,
# and the line under the table says whether 5 interleaved rounds resolve the difference.

# %%
def groups_panel(groups=2, base_width=64):
    cs = guidelines.g2_cases(c=base_width, hw=28, groups=(1, groups), blocks=10)
    rs = guidelines.time_rounds(cs, rounds=5, repeats=3, warmup=1)
    ts = {k: min(v) for k, v in rs.items()}
    print(f"groups g = {groups}, width at g = 1: {base_width}")
    print(guidelines.cases_table(cs, ts))
    if groups != 1:
        print(slower(rs, cs[1].label, cs[0].label).text(3))
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

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
def word(v, expect):
    return ("confirmed on this machine" if v.better == expect else
            "not resolved on this machine (cannot tell apart at this budget)" if v.better is None else
            "the other way on this machine (a Note: the paper measured other hardware)")


mac_dev = max(abs(c.macs - cs[0].macs) / cs[0].macs for cs in (g1, g2, g3, g4) for c in cs)
display(Markdown("\n".join([
    f"* The 1x1 convs are {unit_share:.1%} of the multiply-adds of one resnext50_32x4d residual unit (document 001, "
    f"after ShuffleNet v1, quotes 93.4 % per unit; {whole_share:.1%} over the whole network): the reason ShuffleNet "
    "v1 groups them.",
    f"* `channel_shuffle` equals `nn.ChannelShuffle` for g = 2, 3, 4, 8: {all(shuffle_ok)}; without it two stacked "
    f"g = 3 group convs connect {int(dep_plain.sum())} of {dep_plain.numel()} (output, input) channel pairs, with it "
    f"{int(dep_shuf.sum())}.",
    f"* Our ShuffleNet v2 unit loads torchvision's weights and matches its outputs and parameter counts in "
    f"{len(v2_configs)} configurations: {all(v2_ok)}; the v1 unit matches the conv parameter formula: {all(v1_ok)}.",
    f"* The guideline experiments hold the multiply-adds equal (within {mac_dev:.1%}) while the memory access grows by "
    f"up to {max(c.mem for c in g1) / g1[0].mem:.2f}x (G1), {max(c.mem for c in g2) / g2[0].mem:.2f}x (G2), "
    f"{max(c.mem for c in g3) / g3[0].mem:.2f}x (G3) and {g4[0].mem / g4[-1].mem:.2f}x (G4, where element-wise ops "
    f"are {ops_share:.1%} of the operations).",
    f"* Timed side by side ({conditions}; paired 95 % intervals over the rounds): "
    f"**G1** (1:12 vs 1:1) {word(v_g1, '1:1')}; **G2** (g = 8 vs g = 1) {word(v_g2, 'g = 1')}; "
    f"**G3** {n_slower} of {len(v_g3)} fragmented variants slower than one conv, {n_tie} not resolved, "
    f"{n_faster} faster; **G4** (removing ReLU + shortcut saves more time than the ops' share; {ROUNDS + 5} rounds) "
    f"{word(v_share, 'without')}, with a speed-up of {speedup:+.1%}, whose size is {size}.",
])))

# %% [markdown]
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
