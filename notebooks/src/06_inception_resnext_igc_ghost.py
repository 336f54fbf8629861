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
# 5. Count a Ghost module against an ordinary conv, check GhostNet's ratio formula, and time both with
#    BatchNorm folded, side by side, with an interval and a verdict.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 20 s (`FAST=True`: about 15 s).

# %% tags=["parameters"]
# Parameters: papermill overrides these (e.g. `papermill ... -p FAST True`).
FAST = False          # fewer timing rounds: for CI and quick checks
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # the timings run on the CPU, one thread
THREADS = 1           # CPU threads for the timings
HW = 28               # feature-map size for the block timings
ROUNDS = 15           # interleaved timing rounds: the paired replicates of each verdict
GHOST_BATCH = 8       # images per call for the Ghost timing (besides batch 1)

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn
from IPython.display import Markdown, display
from torchvision.models.resnet import Bottleneck

from lessons_lib import machine, seed_everything, stats
from lessons_lib.course import show_source
from lessons_lib.blocks import (ExtremeInception, GhostModule, IGCBlock, InceptionBlock, ResNeXtBranches,
                                ResNeXtGrouped, extreme_inception_towers, factorized_conv, ghost_speedup,
                                grouped_from_branches)
from lessons_lib.course.checks import compare
from lessons_lib.conv import conv2d_macs, conv2d_params, impulse_receptive_field, mask_extent, receptive_field
from lessons_lib.course.exercises import lesson06 as ex
from lessons_lib.fold import count_modules, fold_model
from lessons_lib.guidelines import Case, time_rounds
from lessons_lib.course.plotting import bar, grouped_bar, heatmap, lines, use_house_style
from lessons_lib.profile import measure_side_by_side, profile_model
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
cpu = torch.device("cpu")
torch.set_num_threads(THREADS)
if FAST:
    ROUNDS = 6
n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
print("measurements below come from:", machine.describe(cpu))


def faster(a, b, ta, tb):
    """Paired verdict on per-round times ta, tb (ms) of a and b: lower is better."""
    return stats.verdict(ta, tb, names=(a, b), higher_is_better=False, paired=True, unit="ms")

# %% [markdown]
# ## 1 · Inception: smaller kernels, same view
#
# **Claim.** Document 001 (§2.1.4) says Inception v2 replaces Inception v1's 5x5 conv by two stacked 3x3 convs,
# keeping the receptive field while using fewer parameters and adding a non-linearity; Inception v3 goes further,
# replacing an n×n conv by a 1×n conv followed by an n×1 conv, which lowers the computation again (and, the
# document adds, works well on mid-sized maps of 12 to 20 pixels, poorly on large ones). Document 004 does the
# same with 5x1 + 1x5. The document does not mention widths; the saving it retells is the Inception v3 paper's,
# computed for convs of one width (Szegedy et al. 2016, §3.1: two 3x3 convs with as many filters as the 5x5
# cost $(9 + 9)/25$ of it, a 28 % saving). That equal-width setting is the one tested first.
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
masks, rf_ok = {}, []
for n in (5, 7):
    for kind in ("full", "two3x3", "asym"):
        m = factorized_conv(C, C, n, kind)
        masks[(n, kind)] = impulse_receptive_field(m, C, 15)
        rf = mask_extent(masks[(n, kind)])
        rf_ok.append(compare(f"{n}x{n} as {kind:<6} receptive field", rf, receptive_field(layers_of[kind](n)),
                             ref_name="formula"))
        rf_ok.append(compare(f"{n}x{n} as {kind:<6} params", n_params(m), formula_params[kind](n),
                             ref_name="conv2d_params"))
share_two3x3 = formula_params["two3x3"](5) / formula_params["full"](5)
share_asym7 = formula_params["asym"](7) / formula_params["full"](7)
macs_eq = {k: sum(conv2d_macs(C, C, ks, (HW, HW)) for ks in {"full": [5], "two3x3": [3, 3], "asym": [(1, 5), (5, 1)]}[k])
           for k in ("full", "two3x3", "asym")}
print(f"equal widths ({C} -> {C}): 5x5 -> two 3x3: {share_two3x3:.0%} of the weights; 7x7 -> 1x7 + 7x1: {share_asym7:.0%}")
print(f"multiply-adds on a {HW}x{HW} map, 5x5 field: one 5x5 {macs_eq['full'] / 1e6:.2f} M, two 3x3 "
      f"{macs_eq['two3x3'] / 1e6:.2f} M ({macs_eq['two3x3'] / macs_eq['full']:.0%}), 1x5 + 5x1 {macs_eq['asym'] / 1e6:.2f} M")

# %%
fig, axes = plt.subplots(1, 3, figsize=(8, 2.8))
for ax, kind in zip(axes, ("full", "two3x3", "asym")):
    heatmap(masks[(5, kind)].int(), ax=ax, colorbar=False, cmap="Blues",
            title={"full": "one 5x5", "two3x3": "two 3x3", "asym": "1x5 then 5x1"}[kind])
fig.suptitle("Input pixels that reach the centre output pixel (gradient impulse, 15x15 input)", fontsize=10)
fig.tight_layout()

# %% [markdown]
# All three see the same 5×5 window. Inside a real Inception v1 module (GoogLeNet's "3a": towers
# 1x1 | 1x1→3x3 | 1x1→5x5 | pool→1x1) the 5x5 conv also changes the width, 16 → 32, and then the count depends
# on which of the two 3x3 convs does the widening:

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
tower_ok = compare("5x5 tower, v1", tower5(v1), conv2d_params(192, 16, 1) + conv2d_params(16, 32, 5) + 2 * (16 + 32),
                   ref_name="formula")
# the 3a tower's 5x5 widens 16 -> 32: where does the two-3x3 version change the width?
w5 = conv2d_params(16, 32, 5)
w33_late = conv2d_params(16, 16, 3) + conv2d_params(16, 32, 3)   # 16 -> 16 -> 32: widen in the second 3x3
w33_early = conv2d_params(16, 32, 3) + conv2d_params(32, 32, 3)  # 16 -> 32 -> 32: widen in the first (our block)
print(f"3a's 5x5 conv 16 -> 32: {w5} weights; two 3x3 widening in the second: {w33_late}, in the first: {w33_early}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run: counts)
display(Markdown(
    f"> **Note (document 001 §2.1.4 is right at equal widths).** The document's saving is for the equal-width "
    f"replacement (the Inception v3 paper's setting): {formula_params['two3x3'](5)} vs {formula_params['full'](5)} "
    f"weights at width {C}, {share_two3x3:.0%}. Inside GoogLeNet's 3a module the 5x5 also *widens* 16 → 32, and then "
    f"the result depends on which 3x3 widens: widening in the second (16 → 16 → 32) gives {w33_late} weights, "
    f"{w33_late / w5:.0%} of the 5x5's {w5}; widening in the first (16 → 32 → 32, what `InceptionBlock(factorize5x5="
    f"True)` builds) gives {w33_early}, {w33_early / w5:.0%} — a cost of that design choice, not of the factorisation "
    f"(whole tower with BatchNorm: {tower5(v1)} with the 5x5, {tower5(v2)} with two 3x3)."))

# %% [markdown]
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
xc_ok = [compare("1x1 + depthwise 3x3 vs 64 one-channel towers", xb(x), extreme_inception_towers(xb, x),
                 ref_name="towers", atol=1e-5)]
xc_ok += [compare("extreme Inception params", n_params(xb), conv2d_params(64, 64, 1) + conv2d_params(64, 64, 3, groups=64),
        ref_name="conv2d_params")]
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
rx_ok = [compare("32 branches vs one grouped conv", branches(x), grouped(x), ref_name="grouped", atol=1e-4),
         compare("params", n_params(branches), n_params(grouped), ref_name="grouped")]
tv = Bottleneck(256, 64, groups=32, base_width=4)   # resnext50_32x4d's first-stage block
grouped.load_state_dict(tv.state_dict())
tv.eval()
rx_ok.append(compare("our grouped block vs torchvision resnext50_32x4d Bottleneck", grouped(x), tv(x),
                     ref_name="torchvision", atol=1e-5))

# %% [markdown]
# **Measured.** Same arithmetic, same weights — but 32 small branches are 96 small convs where the grouped
# form has 3 (guideline G3 of lesson 05):

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
branches2 = ResNeXtBranches(256, 256, 32, 4)
xr = torch.randn(1, 256, HW, HW)
rx_cases = [Case("32 branches", branches2, xr, 0, 0), Case("one grouped conv", grouped_from_branches(branches2), xr, 0, 0)]
r_rx = time_rounds(rx_cases, rounds=ROUNDS, repeats=3)
print(f"measured on: {machine.describe(cpu)}; batch 1, {HW}x{HW}; {ROUNDS} interleaved rounds (median of 3 calls each)")
for k, v in r_rx.items():
    print(f"{k:<18} median over rounds {torch.tensor(v).median():8.2f} ms")
v_rx = faster("one grouped conv", "32 branches", r_rx["one grouped conv"], r_rx["32 branches"])
rx_ratio = float(torch.tensor(r_rx["32 branches"]).median() / torch.tensor(r_rx["one grouped conv"]).median())
print(f"branches / grouped: {rx_ratio:.1f}x the time (ratio of the medians) for identical outputs")
print(v_rx.text(2))

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
igc_ratio = conv2d_params(64, 64, 3) / n_params(IGCBlock(32, 2))
igc_ok = compare("IGC(32, 2) params", n_params(IGCBlock(32, 2)), conv2d_params(64, 64, 3, groups=32) + conv2d_params(64, 64, 1, groups=2),
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
ghost_ok = []
for s in (2, 3, 4):
    gm = GhostModule(c_in, c_out, kernel_size=1, ratio=s, dw_size=3, relu=False)
    conv_w = sum(p.numel() for mod in gm.modules() if isinstance(mod, nn.Conv2d) for p in mod.parameters())
    macs_g = profile_model(gm, (1, c_in, HW, HW)).total_macs
    macs_p = profile_model(plain, (1, c_in, HW, HW)).total_macs
    ghost_ok.append(compare(f"s={s}: multiply-add saving, counted", round(macs_p / macs_g, 4),
                            round(ghost_speedup(c_in, s, 1, 3), 4), ref_name="Eq. 4", show_values=True))
    ghost_ok.append(compare(f"s={s}: weight saving, counted", round(conv2d_params(c_in, c_out, 1) / conv_w, 4),
                            round(ghost_speedup(c_in, s, 1, 3), 4), ref_name="Eq. 4", show_values=True))
paper_form = {s: s * c_in / (c_in + s - 1) for s in (2, 3, 4)}
print(f"paper's d = k form s*c/(c+s-1) for c={c_in}: " + ", ".join(f"s={s}: {v:.3f}" for s, v in paper_form.items()))
print(f"with 3x3 ghosts on a 1x1 primary conv the saving is below that form for every s: "
      f"{all(ghost_speedup(c_in, s, 1, 3) < v for s, v in paper_form.items())}")

# %% [markdown]
# The paper's $\approx s$ assumes $d = k$ (or $c \gg d^2$); with a 1x1 primary conv and 3x3 ghosts the cheap part
# costs a visible share at $c = 64$ (the lines above).
#
# **Measured** against the ordinary 1x1 conv it replaces (each followed by BatchNorm and ReLU, as in GhostNet).
# For a fair inference comparison the BatchNorms are **folded** into the convs first (`fold.fold_model`;
# lesson 15, section 2, folds by hand); all three are timed **side by side** (`ROUNDS` rounds of
# `profile.measure_side_by_side`, each interleaving 5 calls of every model; the median of round $i$ is a
# paired replicate) at batch 1 and at batch `GHOST_BATCH`, with the threads printed, and every comparison gets
# a paired interval and a verdict. First, that folding changes nothing but the speed:

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(SEED)
ghost_models = {f"1x1 conv {c_in}->{c_out}": nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=False),
                                                         nn.BatchNorm2d(c_out), nn.ReLU())}
ghost_models.update({f"Ghost s={s}": GhostModule(c_in, c_out, ratio=s) for s in (2, 4)})
for m in ghost_models.values():   # random BN statistics, so that folding has something to fold
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm2d):
            bn.running_mean.normal_(), bn.running_var.uniform_(0.5, 2.0), bn.weight.data.normal_(), bn.bias.data.normal_()
    m.eval()
folded = {k: fold_model(m) for k, m in ghost_models.items()}
xg = torch.randn(2, c_in, HW, HW)
for k in ghost_models:
    ghost_ok.append(compare(f"{k}: folded vs with BatchNorm", folded[k](xg), ghost_models[k](xg),
                            ref_name="with BN", atol=1e-4))
print("BatchNorm layers left after folding:", {k: count_modules(m, nn.BatchNorm2d) for k, m in folded.items()})

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
base_name = f"1x1 conv {c_in}->{c_out}"
r_g, v_g = {}, {}   # r_g[batch][model]: one replicate per round = the median of 5 interleaved calls
for batch in (1, GHOST_BATCH):
    xb_g = torch.randn(batch, c_in, HW, HW)
    r_g[batch] = {k: [] for k in folded}
    for i in range(ROUNDS):
        lat = measure_side_by_side(folded, xb_g, warmup=3 if i == 0 else 1, repeats=5)
        for k in folded:
            r_g[batch][k].append(lat[k].median_ms)
    for s in (2, 4):
        v_g[batch, s] = faster(f"Ghost s={s}", base_name, r_g[batch][f"Ghost s={s}"], r_g[batch][base_name])
med_g = {b: {k: float(torch.tensor(v).median()) for k, v in r.items()} for b, r in r_g.items()}
ghost_conditions = (f"{machine.describe(cpu)}; BatchNorm folded; {HW}x{HW} maps; {ROUNDS} rounds of "
                    f"`measure_side_by_side` (5 interleaved calls each, median)")
print("measured on:", ghost_conditions)
print(f"{'batch':>5}  {'model':<20}{'median ms':>10}{'speed-up':>10}")
for batch, meds in med_g.items():
    for k, m in meds.items():
        print(f"{batch:>5}  {k:<20}{m:>10.3f}{meds[base_name] / m:>9.2f}x")
print()
for v in v_g.values():
    print(v.text(3))


def ghost_word(v):
    return {None: "cannot be told apart from the conv at this budget", base_name: "slower than the conv"}.get(
        v.better, "faster than the conv")


sp_g = {(b, s): med_g[b][base_name] / med_g[b][f"Ghost s={s}"] for b in med_g for s in (2, 4)}
display(Markdown(
    f"> **Note (GhostNet; document 001 §2.1.8).** Document 001 describes the Ghost module and why it needs fewer "
    f"multiply-adds; it makes no claim about measured speed (its §1.2 even warns that compressing a model does not "
    f"always accelerate it), so this is a measurement, not a test of the document. Counted, the s = 2 module does "
    f"{ghost_speedup(c_in, 2, 1, 3):.2f}x fewer multiply-adds than the 1x1 conv (s = 4: "
    f"{ghost_speedup(c_in, 4, 1, 3):.2f}x). Measured ({ghost_conditions}): "
    + "; ".join(f"batch {b}, s = {s}: **{sp_g[b, s]:.2f}x** the conv's speed (ratio of medians), "
                f"{ghost_word(v_g[b, s])} (`{v_g[b, s].text(3)}`)" for b in med_g for s in (2, 4))
    + ". (The speed ratio is of the medians; the verdict is on the mean per-round difference, so rounds slowed by "
      "other processes widen its interval.) Where the Ghost module is not faster, its depthwise conv and concatenation move memory with little "
      "arithmetic (lesson 05's G3 and G4) — a hypothesis this run does not test."))

# %%
# NBVAL_IGNORE_OUTPUT  (figure of the timings above)
grouped_bar({"multiply-adds saving (counted)": {f"Ghost s={s}": ghost_speedup(c_in, s, 1, 3) for s in (2, 4)},
             **{f"speed-up, batch {b} (measured)": {f"Ghost s={s}": sp_g[b, s] for s in (2, 4)} for b in med_g}},
            title=f"Ghost module vs 1x1 conv {c_in}->{c_out} at {HW}x{HW}, BatchNorm folded", ylabel="x vs the ordinary conv")

# %% [markdown]
# ## 6 · Try it: Ghost ratio s
#
# Move the **ratio s** slider (the panel's first control): the counted weights and multiply-adds of a
# Ghost module against an ordinary conv, and the time measured now (BatchNorm folded, batch 1, 5 interleaved
# rounds, with the verdict).

# %%
def ghost_panel(s=2, in_channels=64):
    gm = fold_model(GhostModule(in_channels, 128, ratio=s))
    ref = fold_model(nn.Sequential(nn.Conv2d(in_channels, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU()))
    xs = torch.randn(1, in_channels, HW, HW)
    rs = time_rounds([Case("conv", ref, xs, 0, 0), Case("ghost", gm, xs, 0, 0)], rounds=5, repeats=3, warmup=1)
    ts = {k: float(torch.tensor(v).median()) for k, v in rs.items()}
    pr, pg = profile_model(ref, tuple(xs.shape)), profile_model(gm, tuple(xs.shape))
    print(f"s = {s}, c = {in_channels}: weights {pr.total_params} -> {pg.total_params}, "
          f"MACs {pr.total_macs / 1e6:.2f} M -> {pg.total_macs / 1e6:.2f} M (Eq. 4: {ghost_speedup(in_channels, s, 1, 3):.2f}x), "
          f"time {ts['conv']:.3f} -> {ts['ghost']:.3f} ms")
    print(faster("ghost", "conv", rs["ghost"], rs["conv"]).text(3))
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

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
rx_word = {None: "cannot be told apart at this budget", "one grouped conv": "the grouped form faster",
           "32 branches": "the branch form faster"}[v_rx.better]
display(Markdown("\n".join([
    f"* At equal widths, 5x5 → two 3x3 keeps the 5×5 receptive field (measured by a gradient impulse) at "
    f"{share_two3x3:.0%} of the weights and {macs_eq['two3x3'] / macs_eq['full']:.0%} of the multiply-adds, and 7x7 → 1x7 + 7x1 keeps 7×7 at {share_asym7:.0%}; every "
    f"receptive field and parameter count equals its formula: {all(rf_ok)}. Document 001's saving holds in its "
    f"setting; in GoogLeNet's 3a tower, which also widens 16 → 32, it depends on where the width grows "
    f"({w33_late} or {w33_early} weights against the 5x5's {w5}).",
    f"* Xception's extreme Inception (1x1 + depthwise 3x3) equals 64 one-channel Inception towers and matches the "
    f"parameter formula: {all(xc_ok)}; a dense 3x3 of width 64 has {conv2d_params(64, 64, 3) / n_params(xb):.1f}x "
    f"its weights.",
    f"* 32 ResNeXt branches give the same outputs and parameters as one grouped conv with copied weights, and that "
    f"block equals torchvision's resnext50_32x4d bottleneck: {all(rx_ok)}. Timed side by side (batch 1, {ROUNDS} "
    f"rounds), the branch form took {rx_ratio:.1f}x the time of the grouped form: {rx_word} "
    f"(95 % CI of the difference {v_rx.lo:+.2f} to {v_rx.hi:+.2f} ms).",
    f"* IGC with L = 32, M = 2 has {igc_ratio:.1f}x fewer weights than a dense 3x3 of width 64; at the weights of a "
    f"dense width-64 conv, IGC (M = 2) reaches width {2 * L_best} ({2 * L_best / 64:.1f}x wider).",
    f"* A Ghost module's saving follows GhostNet's Eq. 4 (counted, {all(ghost_ok)}): "
    + " / ".join(f"{ghost_speedup(c_in, s, 1, 3):.2f}x" for s in (2, 3, 4))
    + f" for s = 2 / 3 / 4 at c = {c_in} with 3x3 ghosts, below the paper's d = k form ("
    + " / ".join(f"{v:.2f}" for v in paper_form.values()) + "). Measured with BatchNorm folded: "
    + "; ".join(f"batch {b}, s = {s}: {sp_g[b, s]:.2f}x the conv's speed, {ghost_word(v_g[b, s])}"
                for b in med_g for s in (2, 4)) + ".",
])))

# %% [markdown]
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
