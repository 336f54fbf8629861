# %% [markdown]
# # 02 · MobileNet v1 → v2 → v3
#
# **After this lesson you can** build the three MobileNet blocks from `lessons_lib.blocks`, count their
# parameters and MACs by hand and check them against torchvision, reproduce the "linear bottleneck"
# argument with numbers, and count and time what MobileNet v3's changes (SE, the tail moved after pooling,
# a 16-channel stem) buy on this machine (h-swish itself is lesson 03's).
#
# **Goals**
# 1. v1: the depthwise separable unit (depthwise 3×3 + BN + ReLU6, pointwise 1×1 + BN + ReLU6).
# 2. v2: the inverted residual (expand → depthwise → *linear* project, shortcut when shapes allow), checked
#    against `torchvision.models.mobilenetv2.InvertedResidual` with copied weights.
# 3. Why the projection is linear: a spiral pushed through ReLU in n dimensions, measured.
# 4. v3: SE after the depthwise conv, the tail after global pooling (49× fewer MACs for that layer), the
#    16-channel stem — each counted and timed.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 10 s (`FAST=True`: about 10 s).

# %% tags=["parameters"]
FAST = False          # fewer timing repeats and spiral seeds
SEED = 0              # every random draw follows this seed
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU
WIDTH = 1.0           # width multiplier of the tiny MobileNets
RESOLUTION = 224      # input size for the ImageNet-shaped stem / tail measurements

# %%
import torch
import torchvision
from IPython.display import Markdown, display
from torch import nn
from torchvision.models.mobilenetv2 import InvertedResidual as TvIR2
from torchvision.models.mobilenetv3 import InvertedResidual as TvIR3, InvertedResidualConfig

from lessons_lib import conv, machine, profile, seed_everything, stats
from lessons_lib.course import show_source
from lessons_lib.blocks import (DepthwiseSeparableConv, InvertedResidual, conv_bn_act, make_divisible, relu_roundtrip,
                                spiral, tiny_mobilenet)
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson02 as ex
from lessons_lib.course.plotting import bar, lines, point_panels, use_house_style
from lessons_lib.course.widgets import dropdown, float_slider, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
REPEATS = 7 if FAST else 25
N_SEEDS = 5 if FAST else 20
n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731


def timed_verdict(lat, a, b):
    """Paired verdict on interleaved timing rounds (lower is better): is `a` faster than `b`?"""
    return stats.verdict(lat[a].times_ms, lat[b].times_ms, names=(a, b), higher_is_better=False, paired=True,
                         unit="ms")


print("measurements below come from:", machine.describe(dev))

# %% [markdown]
# ## 1 · MobileNet v1: the depthwise separable unit
#
# **Claim.** Document 001 says MobileNet v1's main idea is to replace a standard convolution by a
# *depthwise* convolution (one k×k filter per input channel) followed by a *pointwise* 1×1 convolution
# that mixes channels, and to use ReLU6 instead of ReLU.
#
# **Formula.** With input channels $c_1$, output channels $c_2$, kernel $k$ and output size $H_2\times W_2$:
# $$\text{params} = \underbrace{k^2 c_1}_{\text{depthwise}} + \underbrace{c_1 c_2}_{\text{pointwise}} + \underbrace{2(c_1 + c_2)}_{\text{BN }\gamma,\beta},\qquad
# \text{MACs} = H_2 W_2\,(k^2 c_1 + c_1 c_2).$$
# (Lesson 01 derived the ratio to a standard conv, $1/c_2 + 1/k^2$, and the slip in document 001's
# parameter total.)

# %%
show_source(DepthwiseSeparableConv)

# %%
# NBVAL_CHECK_OUTPUT
c1, c2, k, hw = 64, 128, 3, 16
ds = DepthwiseSeparableConv(c1, c2, stride=1)
rep = profile.profile_model(ds, (1, c1, hw, hw))
conv_weights = conv.conv2d_params(c1, c1, k, groups=c1) + conv.conv2d_params(c1, c2, 1)
compare("v1 unit params", n_params(ds), k * k * c1 + c1 * c2 + 2 * (c1 + c2), ref_name="hand formula")
compare("v1 unit conv weights", conv_weights, k * k * c1 + c1 * c2, ref_name="hand formula")
compare("v1 unit MACs", rep.total_macs, hw * hw * (k * k * c1 + c1 * c2), ref_name="hand formula")
std = conv.conv2d_macs(c1, c2, k, hw)
print(f"a standard 3x3 conv {c1}->{c2} at {hw}x{hw}: {std:,} MACs; separable: {rep.total_macs:,} "
      f"({rep.total_macs / std:.3f} of it; 1/c2 + 1/k^2 = {1 / c2 + 1 / k**2:.3f})")

# %% [markdown]
# ## 2 · MobileNet v2: the inverted residual with a linear bottleneck
#
# **Claim.** Document 001 describes v2's block as "expand → depthwise → compress": a 1×1 conv widens the
# $c_{in}$ channels by an expansion factor $t$ (6 in the paper) to $E = t\,c_{in}$, a depthwise 3×3 conv
# works in that wide space, and a 1×1 conv projects back down **with no activation** (the *linear
# bottleneck*); with stride 1 and equal widths a shortcut adds the input. It is "inverted" because a
# ResNet bottleneck does the opposite (compress → conv → expand), and the shortcut joins the thin ends.
#
# **Formula** (no conv biases; each conv followed by BN):
# $$\text{params} = \underbrace{c_{in}E + 2E}_{\text{expand, skipped if }t=1} + \underbrace{9E + 2E}_{\text{depthwise}} + \underbrace{E\,c_{out} + 2c_{out}}_{\text{project}}.$$

# %%
show_source(InvertedResidual, lines=(1, 50))

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(SEED)
for cin, cout, s, t in [(24, 24, 1, 6), (16, 24, 2, 6), (32, 16, 1, 1)]:
    ours = InvertedResidual(cin, cout, s, t).eval()
    ref = TvIR2(cin, cout, s, t).eval()
    for mod in ours.modules():  # non-trivial BN statistics so the comparison exercises every layer
        if isinstance(mod, nn.BatchNorm2d):
            mod.running_mean.normal_(0, 0.3)
            mod.running_var.uniform_(0.5, 1.5)
            mod.bias.data.normal_(0, 0.2)
    ref.load_state_dict(dict(zip(ref.state_dict(), ours.state_dict().values())))  # same layer order
    e = int(round(cin * t))
    formula = (cin * e + 2 * e if e != cin else 0) + 11 * e + e * cout + 2 * cout
    compare(f"IR({cin}->{cout}, s={s}, t={t}) params", n_params(ours), formula, ref_name="hand formula")
    x = torch.randn(2, cin, 14, 14)
    with torch.no_grad():
        compare(f"IR({cin}->{cout}, s={s}, t={t}) output", ours(x), ref(x), ref_name="torchvision v2 block", atol=1e-5)
    print(f"   residual: ours {ours.use_residual}, torchvision {ref.use_res_connect}")

# %% [markdown]
# ## 3 · Why the projection is linear: ReLU in few vs many dimensions
#
# **Claim.** Document 001 (after the v2 paper) argues that ReLU destroys information when it acts on a
# low-dimensional representation, but little when the same information is spread over many channels; hence
# ReLU is kept in the wide (expanded) layer and dropped after the narrow projection.
#
# **Experiment** (the paper's toy): a 2-D spiral $x$ is embedded in $n$ dimensions by a random matrix
# $T\in\mathbb R^{n\times2}$, passed through ReLU, and mapped back. We measure two things for each $n$,
# averaged over several random $T$:
# * **recoverable**: the fraction of points whose *active* coordinates ($Tx>0$) still span the plane — for
#   those, $x$ is exactly determined by $\mathrm{ReLU}(Tx)$; for the others ReLU has collapsed a direction.
# * **error** $\lVert x'-x\rVert_F / \lVert x\rVert_F$ of the best affine decoder from $\mathrm{ReLU}(Tx)$ back
#   to $x$ (what a following linear layer could at best recover).
# Without ReLU both are perfect for every $n\ge 2$ (checked below), so any loss is ReLU's doing.

# %%
show_source(relu_roundtrip)

# %%
# NBVAL_CHECK_OUTPUT
pts = spiral(1000)
DIMS = [2, 3, 5, 15, 30]
print("identity instead of ReLU, n=2: recovered exactly (error < 1e-9):", bool(relu_roundtrip(pts, 2, activation=lambda v: v)[1] < 1e-9))
spiral_stats = {}
for n in DIMS:
    runs = [relu_roundtrip(pts, n, seed=s) for s in range(20)]
    spiral_stats[n] = (sum(r[1] for r in runs) / len(runs), sum(r[2] for r in runs) / len(runs),
                sum(relu_roundtrip(pts, n, seed=s, decoder="pinv")[1] for s in range(20)) / 20)
print(f"{'n':>3} {'recoverable':>12} {'best linear decoder error':>27} {'pinv error':>11}")
for n, (err, rec, perr) in spiral_stats.items():
    print(f"{n:>3} {rec:>12.1%} {err:>27.3f} {perr:>11.2f}")
print("error falls as n grows:", all(spiral_stats[a][0] > spiral_stats[b][0] for a, b in zip(DIMS, DIMS[1:])))

# %%
# NBVAL_IGNORE_OUTPUT  (figure)
panels = {"input spiral": pts}
for n in DIMS:
    back, err, rec = relu_roundtrip(pts, n, seed=SEED)
    panels[f"n={n}: err {err:.2f}"] = back
fig = point_panels(panels, color=torch.arange(len(pts)), ncols=6)

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
lost = {n: 1 - spiral_stats[n][1] for n in DIMS}
full = [n for n in DIMS if spiral_stats[n][1] == 1.0]
display(Markdown(
    f"Read the table (20 random $T$ per $n$): with $n = {DIMS[0]}$ ReLU leaves {lost[DIMS[0]]:.0%} of the points "
    f"undetermined by their surviving coordinates, with $n = {DIMS[1]}$ still {lost[DIMS[1]]:.0%}, and those parts "
    f"of the spiral collapse onto lines. "
    + (f"From $n = {full[0]}$ on every point keeps enough active coordinates, and the best linear decoder's error "
       f"is {spiral_stats[full[0]][0]:.3f} at $n = {full[0]}$ and {spiral_stats[DIMS[-1]][0]:.4f} at $n = {DIMS[-1]}$. "
       if full else "No $n$ tried keeps every point recoverable. ")
    + "That is the argument for expanding *before* the ReLU and projecting *without* one.\n\n"
    f"> **Note (the paper's figure).** Mapping back with the plain pseudo-inverse $T^+$ (last column) does *not* "
    f"improve the same way: {spiral_stats[DIMS[-1]][2]:.2f} at $n = {DIMS[-1]}$. Each coordinate is active about "
    f"half the time, so $T^+\\mathrm{{ReLU}}(Tx)\\to x/2$ plus distortion, an error near 0.5 for large $n$. The "
    f"information is there (recoverable = 100 %), but reading it out needs a fitted decoder, not $T^+$."))

# %% [markdown]
# ## 4 · MobileNet v3: SE, h-swish, a cheaper tail and stem
#
# **Claim.** Document 001 lists v3's changes: an SE module inside the block, after the depthwise filter
# (lesson 04); h-swish instead of swish (lesson 03); the last 1×1 layer moved after the average pooling, so
# it runs on 1×1 instead of 7×7 pixels ("49× less computation"), with the preceding 3×3 and 1×1 layers of the
# last stage removed; and the first conv cut from 32 to 16 filters.
#
# **Check first**: our block with SE and h-swish equals `torchvision.models.mobilenetv3.InvertedResidual`
# with copied weights (same layer order; we pass torchvision plain BatchNorm, whose eps our block uses).

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(SEED)
for cin, k, e, cout, se, act, s in [(40, 5, 240, 40, True, "HS", 1), (24, 3, 72, 24, False, "RE", 1)]:
    ours = InvertedResidual(cin, cout, s, expanded_ch=e, kernel_size=k, use_se=se,
                            activation="hard_swish" if act == "HS" else "relu").eval()
    ref = TvIR3(InvertedResidualConfig(cin, k, e, cout, se, act, s, 1, 1.0), norm_layer=nn.BatchNorm2d).eval()
    ref.load_state_dict(dict(zip(ref.state_dict(), ours.state_dict().values())))
    x = torch.randn(2, cin, 14, 14)
    compare(f"v3 IR({cin}->{cout}, E={e}, k={k}, SE={se}, {act}) params", n_params(ours), n_params(ref), ref_name="torchvision")
    with torch.no_grad():
        compare(f"v3 IR({cin}->{cout}, E={e}, SE={se}) output", ours(x), ref(x), ref_name="torchvision", atol=1e-5)

# %% [markdown]
# **What SE costs in that block.** SE acts on the $E$ expanded channels and squeezes them to $E/4$ (rounded
# to a multiple of 8), so its two FC layers cost about $2E^2/4$ parameters — more than the rest of the block
# here — but only $\approx 2E^2/4$ MACs per *image*, not per pixel.
#
# **What is 1/4 of what?** Document 001 (section 2.1.2, MobileNetv3, "introducing SE") says that because SE
# takes time, the authors cut the channels of the *expansion layer* of SE blocks to 1/4, which raised accuracy
# at no extra time. The paper (Howard et al. 2019, *Searching for MobileNetV3*, section 5.2 "Large
# squeeze-and-excite") fixes the **SE bottleneck** at 1/4 of the expansion layer's channels, "no discernible
# latency cost"; the expansion layer keeps its width from the search (Table 1). Check it on torchvision's
# models, which follow the paper's tables: every SE block's squeeze width, and the expansion ratio $E/c_{in}$
# of blocks with and without SE.

# %%
# NBVAL_CHECK_OUTPUT
blk = {se: InvertedResidual(40, 40, expanded_ch=240, kernel_size=5, use_se=se, activation="hard_swish").eval()
       for se in (False, True)}
cost = {se: profile.profile_model(b, (1, 40, 14, 14)) for se, b in blk.items()}
print(f"IR(40->40, E=240, k=5) at 14x14: params {cost[False].total_params:,} -> {cost[True].total_params:,} with SE "
      f"(+{cost[True].total_params / cost[False].total_params - 1:.0%}); "
      f"MACs {cost[False].total_macs:,} -> {cost[True].total_macs:,} (+{cost[True].total_macs / cost[False].total_macs - 1:.1%})")

# %%
# NBVAL_CHECK_OUTPUT
ratios = {True: [], False: []}  # has SE -> expansion ratios E / c_in
squeeze_is_quarter = []
for name in ("mobilenet_v3_large", "mobilenet_v3_small"):
    for b in getattr(torchvision.models, name)(weights=None).features:
        if not isinstance(b, TvIR3):
            continue
        dw = next(m for m in b.modules() if isinstance(m, nn.Conv2d) and m.groups > 1)
        e, c_in = dw.in_channels, b.block[0][0].in_channels  # the first conv reads the block's input
        se_mod = next((m for m in b.modules() if type(m).__name__ == "SqueezeExcitation"), None)
        ratios[se_mod is not None].append(e / c_in)
        if se_mod is not None:
            squeeze_is_quarter.append(se_mod.fc1.out_channels == make_divisible(e // 4, 8))
print(f"torchvision MobileNetV3 large + small: {len(squeeze_is_quarter)} SE blocks, "
      f"{len(ratios[False])} without SE")
print(f"SE squeeze width = E/4 (rounded to 8) in every SE block: {all(squeeze_is_quarter)}")
print(f"expansion ratio E/c_in, blocks with SE:    {min(ratios[True]):.2f} .. {max(ratios[True]):.2f} "
      f"(mean {sum(ratios[True]) / len(ratios[True]):.2f})")
print(f"expansion ratio E/c_in, blocks without SE: {min(ratios[False]):.2f} .. {max(ratios[False]):.2f} "
      f"(mean {sum(ratios[False]) / len(ratios[False]):.2f})")
quarter = InvertedResidual(40, 40, expanded_ch=240 // 4, kernel_size=5, use_se=True, activation="hard_swish")
quarter_macs = profile.profile_model(quarter, (1, 40, 14, 14)).total_macs
print(f"ours: IR(40->40, E=240, SE) squeezes to {blk[True].se.squeeze_channels} = 240/4 and keeps E = "
      f"{blk[True].expanded_ch}; the document's reading (E = 60) would cut the block to "
      f"{quarter_macs / cost[True].total_macs:.2f} of its MACs")

# %%
# NBVAL_IGNORE_OUTPUT  (timings)
x14 = torch.randn(1, 40, 14, 14, device=dev)
lat_se = profile.measure_side_by_side({"with SE": blk[True].to(dev), "without SE": blk[False].to(dev)}, x14,
                                      repeats=REPEATS)
v_se = timed_verdict(lat_se, "with SE", "without SE")
print("measured on:", machine.describe(dev), f"| {REPEATS} interleaved rounds")
se_time = lat_se["with SE"].median_ms / lat_se["without SE"].median_ms - 1
print(f"without SE {lat_se['without SE'].median_ms:.3f} ms, with SE {lat_se['with SE'].median_ms:.3f} ms "
      f"-> SE adds {se_time:+.0%} time for {cost[True].total_macs / cost[False].total_macs - 1:+.1%} MACs")
print(v_se.text(3))

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
se_slower = v_se.better == "without SE"
display(Markdown(
    f"> **Erratum (document 001, section 2.1.2, MobileNetv3).** The document says v3 shrinks the *expansion "
    f"layer* of SE blocks to 1/4. Howard et al. (2019, section 5.2) fix the *SE bottleneck* at 1/4 of the "
    f"expansion channels instead, and torchvision's models agree: the squeeze width is $E/4$ in all "
    f"{len(squeeze_is_quarter)} SE blocks, and the SE blocks are not thinner: they expand their input "
    f"{sum(ratios[True]) / len(ratios[True]):.2f}× on average, the blocks without SE "
    f"{sum(ratios[False]) / len(ratios[False]):.2f}×. "
    f"Shrinking the expansion to 1/4 would be a different network: our 240-channel block would keep "
    f"{quarter_macs / cost[True].total_macs:.0%} of its MACs. The paper's \"no discernible latency cost\" was "
    f"measured on Pixel phones with TFLite; on this run's {machine.describe(dev).split('|')[0].strip()} the "
    f"1/4-bottleneck SE changed this block's median time by {se_time:+.0%}: {v_se.text(3)}"
    + (" — a real cost on this machine." if se_slower else ".")))

# %% [markdown]
# ### The tail: the last wide 1×1 layer after pooling
#
# **Formula.** A 1×1 conv from $c_1$ to $c_2$ channels on $H\times W$ pixels costs $H W c_1 c_2$ MACs.
# Global average pooling commutes with a 1×1 conv (both are linear; the activation after it does not
# commute, which is why this is a design change, not an identity), so running it after pooling costs
# $c_1 c_2$: a factor $HW = 49$ less at 7×7. We take the shapes from torchvision's own models:
# mobilenet_v2's last conv (320 → 1280 at 7×7, before pooling) and mobilenet_v3_large's 960 → 1280 layer
# (after pooling), and count both placements for both.

# %%
# NBVAL_CHECK_OUTPUT
v2_rep = profile.profile_model(torchvision.models.mobilenet_v2(weights=None), (1, 3, 224, 224))
v3_rep = profile.profile_model(torchvision.models.mobilenet_v3_large(weights=None), (1, 3, 224, 224))
row_v2 = next(r for r in v2_rep.rows if r.name == "features.18.0")
row_v3 = next(r for r in v3_rep.rows if r.name == "classifier.0")
print(f"torchvision mobilenet_v2 {row_v2.name}: {row_v2.type} -> {list(row_v2.out_shape)}, {row_v2.macs:,} MACs")
print(f"torchvision mobilenet_v3_large {row_v3.name}: {row_v3.type} -> {list(row_v3.out_shape)}, {row_v3.macs:,} MACs")
for c_in, c_out in [(320, 1280), (960, 1280)]:
    before = profile.profile_model(nn.Conv2d(c_in, c_out, 1, bias=False), (1, c_in, 7, 7)).total_macs
    after = profile.profile_model(nn.Conv2d(c_in, c_out, 1, bias=False), (1, c_in, 1, 1)).total_macs
    compare(f"{c_in}->{c_out} 1x1: MACs before pooling", before, conv.conv2d_macs(c_in, c_out, 1, 7), ref_name="formula")
    compare(f"{c_in}->{c_out} 1x1: before / after pooling", before // after, 49, ref_name="document 001")
compare("torchvision v2 last conv MACs", row_v2.macs, 320 * 1280 * 49, ref_name="7*7*320*1280")
_ = compare("torchvision v3 960->1280 MACs", row_v3.macs, 960 * 1280, ref_name="960*1280 (after pooling)")

# %% [markdown]
# v3 also removed the 3×3 depthwise and 1×1 projection that fed this layer. Whole tails, on a 7×7×160 input,
# as in the paper's Figure 5: the original last stage, "v2-style" (expand 160→960, depthwise 3×3, project
# 960→320, then 1×1 320→1280 at 7×7, pool) versus the efficient one, "v3-style" (expand 160→960, pool, then
# 960→1280 on the pooled vector). Both use h-swish, so the structure is the one thing that differs.

# %%
tails = {
    "v2-style tail": nn.Sequential(conv_bn_act(160, 960, 1, activation="hard_swish"),
                                   conv_bn_act(960, 960, 3, groups=960, activation="hard_swish"),
                                   conv_bn_act(960, 320, 1, activation=None),
                                   conv_bn_act(320, 1280, 1, activation="hard_swish"),
                                   nn.AdaptiveAvgPool2d(1), nn.Flatten()),
    "v3-style tail": nn.Sequential(conv_bn_act(160, 960, 1, activation="hard_swish"), nn.AdaptiveAvgPool2d(1),
                                   nn.Flatten(), nn.Linear(960, 1280), nn.Hardswish()),
}

# %%
# NBVAL_CHECK_OUTPUT
tail_macs = {name: profile.profile_model(t, (1, 160, 7, 7)).total_macs for name, t in tails.items()}
for name, m in tail_macs.items():
    print(f"{name}: {m:,} MACs, {n_params(tails[name]):,} params")
print(f"v3-style / v2-style MACs: {tail_macs['v3-style tail'] / tail_macs['v2-style tail']:.3f}; "
      f"saved {(tail_macs['v2-style tail'] - tail_macs['v3-style tail']) / 1e6:.1f} M MACs")

# %%
# NBVAL_IGNORE_OUTPUT  (timings)
x7 = torch.randn(1, 160, 7, 7, device=dev)
lat_tail = profile.measure_side_by_side({name: t.to(dev) for name, t in tails.items()}, x7, repeats=REPEATS)
v_tail = timed_verdict(lat_tail, "v3-style tail", "v2-style tail")
print("measured on:", machine.describe(dev), f"| {REPEATS} interleaved rounds")
for name, l in lat_tail.items():
    print(f"{name}: {l.median_ms:.3f} ms (p10 {l.p10_ms:.3f}, p90 {l.p90_ms:.3f})")
saved_ms = lat_tail["v2-style tail"].median_ms - lat_tail["v3-style tail"].median_ms
print(f"the v3 tail saves {saved_ms:.2f} ms here ({saved_ms / lat_tail['v2-style tail'].median_ms:.0%} of the v2 tail)")
print(v_tail.text(3))

# %% [markdown]
# ### The stem: 16 instead of 32 filters
#
# The first layer is a full 3×3 conv, stride 2, on the RGB image: $112\cdot112\cdot27\cdot c$ MACs at
# 224×224 — it runs at the largest resolution, so halving $c$ halves its MACs and its output memory.
# The stem's $c$ output channels are also the **next block's input**: in MobileNetV2 and V3-Large that block
# has no expansion (depthwise 3×3 on the $c$ channels, then a 1×1 to 16), costing $112^2(9c + 16c)$ MACs,
# so halving $c$ halves that block too. We count both.

# %%
# NBVAL_CHECK_OUTPUT
stems = {c: conv_bn_act(3, c, 3, 2, activation="hard_swish") for c in (32, 16)}
stem_macs = {c: profile.profile_model(s, (1, 3, RESOLUTION, RESOLUTION)).total_macs for c, s in stems.items()}
for c, m in stem_macs.items():
    compare(f"stem 3->{c} at {RESOLUTION}x{RESOLUTION} MACs", m, conv.conv2d_macs(3, c, 3, RESOLUTION // 2), ref_name="formula")
heads = {c: nn.Sequential(stems[c], InvertedResidual(c, 16, 1, expand_ratio=1, activation="relu")) for c in (32, 16)}
head_macs = {c: profile.profile_model(h, (1, 3, RESOLUTION, RESOLUTION)).total_macs for c, h in heads.items()}
for c, m in head_macs.items():
    hw2 = RESOLUTION // 2
    compare(f"stem 3->{c} + first block ({c}->16, no expansion) MACs", m,
            conv.conv2d_macs(3, c, 3, hw2) + hw2 * hw2 * (9 * c + 16 * c), ref_name="formula")
stem_saved, head_saved = stem_macs[32] - stem_macs[16], head_macs[32] - head_macs[16]
print(f"saved by 16 filters: {stem_saved / 1e6:.2f} M MACs in the stem alone, "
      f"{head_saved / 1e6:.2f} M MACs with the first block's halved input")

# %%
# NBVAL_IGNORE_OUTPUT  (timings)
ximg = torch.randn(1, 3, RESOLUTION, RESOLUTION, device=dev)
lat_stem = profile.measure_side_by_side({f"stem+block {c}": h.to(dev) for c, h in heads.items()}, ximg,
                                        repeats=REPEATS)
v_stem = timed_verdict(lat_stem, "stem+block 16", "stem+block 32")
print("measured on:", machine.describe(dev), f"| {REPEATS} interleaved rounds")
for name, l in lat_stem.items():
    print(f"{name}: {l.median_ms:.3f} ms (p10 {l.p10_ms:.3f}, p90 {l.p90_ms:.3f})")
stem_ms = lat_stem["stem+block 32"].median_ms - lat_stem["stem+block 16"].median_ms
print(f"16 filters take {lat_stem['stem+block 16'].median_ms / lat_stem['stem+block 32'].median_ms:.2f}x the time "
      f"of 32 (MACs: {head_macs[16] / head_macs[32]:.2f}x)")
print(v_stem.text(3))

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
cpu_name = machine.describe(dev).split("|")[0].strip()
display(Markdown(
    f"> **Erratum (document 001, section 2.1.2, MobileNetv3: tail and head).** The document says the redesigned "
    f"tail saves about 15 ms and the 16-filter head about 3 ms. Howard et al. (2019, section 5.3 \"Redesigning "
    f"expensive layers\") report 7 ms (11 % of the running time) and about 30 M MAdds for the efficient last "
    f"stage, and a further 2 ms and 10 M MAdds for the 16-filter h-swish first layer. The operation counts are "
    f"machine-independent and this run reproduces them: the v3-style tail saves "
    f"**{(tail_macs['v2-style tail'] - tail_macs['v3-style tail']) / 1e6:.1f} M MACs** on 7×7×160, and the "
    f"16-filter stem saves **{head_saved / 1e6:.1f} M MACs** once the first block's halved input is counted "
    f"({stem_saved / 1e6:.1f} M in the stem alone). The milliseconds are the paper's phone latencies (Google "
    f"Pixel, TFLite, one core, the whole network); a {cpu_name} timing the pieces alone cannot reproduce them. "
    f"Measured here: {v_tail.text(3)}; {v_stem.text(3)}."))

# %% [markdown]
# ## 5 · Three tiny MobileNets, stage by stage
#
# `tiny_mobilenet(version, width_mult=...)` builds v1/v2/v3-style classifiers for 32×32 images from the
# blocks above (stem stride 2, then 16 → 8 → 4 pixels). Per-stage parameters and MACs come from
# `profile.profile_model` (`TinyMobileNet.stage_costs`).

# %%
show_source(tiny_mobilenet, lines=(1, 12))

# %%
# NBVAL_CHECK_OUTPUT
nets = {f"v{v}": tiny_mobilenet(v, width_mult=WIDTH) for v in (1, 2, 3)}
for name, net in nets.items():
    print(f"--- tiny MobileNet {name} (width {WIDTH})")
    print(f"{'stage':<11}{'output':<18}{'params':>9}{'MACs':>12}")
    for r in net.stage_costs():
        print(f"{r['stage']:<11}{str(list(r['out_shape'])):<18}{r['params']:>9,}{r['macs']:>12,}")
    rep = profile.profile_model(net, (1, 3, 32, 32))
    print(f"{'total':<29}{rep.total_params:>9,}{rep.total_macs:>12,}")

# %%
# NBVAL_IGNORE_OUTPUT  (timings)
x32 = torch.randn(1, 3, 32, 32, device=dev)
lat_nets = profile.measure_side_by_side({name: net.to(dev) for name, net in nets.items()}, x32, repeats=REPEATS)
macs_nets = {name: profile.profile_model(net, (1, 3, 32, 32)).total_macs for name, net in nets.items()}
print("measured on:", machine.describe(dev), f"| {REPEATS} interleaved rounds")
for name in nets:
    l = lat_nets[name]
    print(f"tiny {name}: {macs_nets[name] / 1e6:.2f} M MACs, {l.median_ms:.3f} ms (p10 {l.p10_ms:.3f}, p90 {l.p90_ms:.3f})")
v_nets = {o: timed_verdict(lat_nets, "v3", o) for o in ("v1", "v2")}
for v in v_nets.values():
    print(v.text(3))
ax = bar({n: l.median_ms for n, l in lat_nets.items()}, ylabel="ms per 32x32 image (median)",
         title="tiny MobileNets, batch 1: " + "; ".join(f"v3 vs {o}: {v.verdict}" for o, v in v_nets.items()))

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
def v3_vs(o):
    v = v_nets[o]
    word = {"v3": "faster than", o: "slower than"}.get(v.better, "not distinguishable in time from")
    return (f"{macs_nets['v3'] / macs_nets[o]:.2f}× the MACs of {o} and is **{word}** it "
            f"({lat_nets['v3'].median_ms / lat_nets[o].median_ms:.2f}× its median time, "
            f"95 % CI of the difference {v.lo:+.3f} to {v.hi:+.3f} ms)")


display(Markdown(
    f"Read it: tiny v3 has {v3_vs('v1')}; against v2 it has {v3_vs('v2')}. "
    + ("It is faster than both, though not necessarily in proportion to its MACs. "
       if all(v.better == "v3" for v in v_nets.values()) else
       "Its halved MACs did not make it measurably faster than both"
       + (": it is slower than " + " and ".join(o for o, v in v_nets.items() if v.better == o) + ". "
          if any(v.better == o for o, v in v_nets.items()) else
          "; where the verdict is a tie, the timing rounds were too spread out to tell (p10 / p90 above). "))
    + "What MACs do not count at batch 1 — SE's pooling and tiny FC layers, h-swish, the many thin layers, each a "
    "fixed per-layer overhead — is what can keep a low-MAC network from being fast (lesson 05 measures this "
    "memory-access side of speed)."))

# %% [markdown]
# ## 6 · Try it: width multiplier and expansion ratio
#
# The **width multiplier** (first control) scales every layer's channels; parameters and MACs grow roughly
# with its square. The **expansion ratio** $t$ (v2 only) sets how wide the depthwise layer works.
# The table shows parameters, MACs and a quick latency measurement.

# %%
def width_table(width=1.0, expand_ratio=6, version="v2"):
    v = int(version[1])
    kw = {"expand_ratio": expand_ratio} if v == 2 else {}
    net = tiny_mobilenet(v, width_mult=width, **kw)
    rep = profile.profile_model(net, (1, 3, 32, 32))
    lat = profile.measure_latency(net, torch.randn(1, 3, 32, 32), warmup=1, repeats=5)
    base = profile.profile_model(tiny_mobilenet(v), (1, 3, 32, 32))
    print(f"tiny MobileNet {version}, width {width:.2f}" + (f", t = {expand_ratio}" if v == 2 else " (t fixed by its table)"))
    print(f"  params {rep.total_params:>9,}  ({rep.total_params / base.total_params:.2f}x width 1.0)")
    print(f"  MACs   {rep.total_macs:>9,}  ({rep.total_macs / base.total_macs:.2f}x width 1.0)")
    print(f"  latency {lat.median_ms:.3f} ms (median of 5, {machine.describe('cpu').split('|')[0].strip()})")


interactive_panel(width_table,
                  width=float_slider("width multiplier", WIDTH, 0.25, 2.0, 0.25),
                  expand_ratio=int_slider("expansion ratio t (v2)", 6, 1, 8),
                  version=dropdown("version", ["v1", "v2", "v3"], "v2"))

# %% [markdown]
# ## 7 · Exercises
#
# **7.1** How many parameters has `InvertedResidual(24, 24, stride=1, expand_ratio=6)` (conv weights plus
# BN γ and β; no conv biases)? Use the formula of section 2.

# %%
answer = ...  # an int
ex.ir_params.check(answer)

# %% [markdown]
# **7.2** MobileNet v3 runs the 960 → 1280 1×1 layer after the 7×7 pooling. How many MACs does that save?

# %%
answer = ...  # an int
ex.tail_saved.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
ex.ir_params.check(n_params(InvertedResidual(24, 24, 1, 6)))  # the library agrees with the reference answer
ex.tail_saved.check(960 * 1280 * 48)

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
v1_rep = profile.profile_model(DepthwiseSeparableConv(64, 128), (1, 64, 16, 16))
recov = ", ".join(f"{spiral_stats[n][1]:.0%}" for n in DIMS)
display(Markdown("\n".join([
    f"* A v1 depthwise separable unit 64→128 at 16×16 has {conv_weights:,} conv weights + "
    f"{n_params(ds) - conv_weights:,} BN parameters and {v1_rep.total_macs / 1e6:.2f} M MACs, "
    f"{v1_rep.total_macs / std:.3f} of a standard 3×3 conv (= 1/c₂ + 1/k²) — hand formula, profiler and lesson 01's "
    f"`conv` agree.",
    "* Our `InvertedResidual` equals torchvision's v2 block (parameters and outputs with copied weights) and, "
    "with SE and h-swish, torchvision's v3 block.",
    f"* Linear bottleneck: a spiral through ReLU in n = {', '.join(map(str, DIMS))} dimensions stays recoverable "
    f"for {recov} of its points, and the best linear decoder's error falls from {spiral_stats[DIMS[0]][0]:.2f} "
    f"to {spiral_stats[DIMS[-1]][0]:.4f}: ReLU is harmless only in wide layers.",
    f"* SE on a 240-channel expansion squeezes to 240/4 = {blk[True].se.squeeze_channels} channels (the paper's "
    f"1/4 is the SE bottleneck, not the expansion: erratum of document 001); it adds "
    f"{cost[True].total_params / cost[False].total_params - 1:+.0%} parameters and "
    f"{cost[True].total_macs / cost[False].total_macs - 1:+.1%} MACs to that block and changed its median time "
    f"by {se_time:+.0%} here ({v_se.verdict}).",
    f"* Moving the last 1×1 layer after 7×7 pooling divides its MACs by exactly 49 (960→1280: "
    f"{conv.conv2d_macs(960, 1280, 1, 7) / 1e6:.1f} M → {row_v3.macs / 1e6:.2f} M; torchvision's mobilenet_v2 still pays "
    f"{row_v2.macs / 1e6:.1f} M for its 320→1280 conv). The whole v3-style tail needs "
    f"{tail_macs['v3-style tail'] / tail_macs['v2-style tail']:.2f}× the MACs of the v2-style tail "
    f"({(tail_macs['v2-style tail'] - tail_macs['v3-style tail']) / 1e6:.1f} M saved; the paper: about 30 M) "
    f"though it has more parameters ({n_params(tails['v3-style tail']) / 1e6:.2f} M vs "
    f"{n_params(tails['v2-style tail']) / 1e6:.2f} M); median time here "
    f"{lat_tail['v3-style tail'].median_ms:.3f} vs {lat_tail['v2-style tail'].median_ms:.3f} ms ({v_tail.verdict}).",
    f"* A 16-filter stem saves {stem_saved / 1e6:.1f} M MACs in the stem and {head_saved / 1e6:.1f} M with the next "
    f"block's halved input (the paper: 10 M); median time here {lat_stem['stem+block 16'].median_ms:.3f} vs "
    f"{lat_stem['stem+block 32'].median_ms:.3f} ms for stem + first block ({v_stem.verdict}). "
    f"The paper's 7 ms and 2 ms "
    f"(document 001: 15 ms and 3 ms) are phone latencies, not reproducible on this CPU.",
    f"* Tiny networks at batch 1: v3 has {macs_nets['v3'] / macs_nets['v1']:.2f}× the MACs of v1 and "
    f"{macs_nets['v3'] / macs_nets['v2']:.2f}× those of v2; "
    + "; ".join(f"v3 vs {o}: {v.verdict}" for o, v in v_nets.items()) + ".",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | depthwise separable convolution | 深度可分离卷积 | depthwise k×k + pointwise 1×1 |
# | depthwise / pointwise convolution | 逐通道卷积 / 逐点卷积 | one filter per channel / 1×1 channel mixing |
# | inverted residual | 倒残差 | expand → depthwise → project, shortcut between the thin ends |
# | linear bottleneck | 线性瓶颈 | the projection 1×1 has no activation |
# | expansion ratio | 扩展因子 | t = E / c_in (6 in MobileNet v2) |
# | width multiplier | 宽度乘子 | scales every layer's channel count |
# | squeeze-and-excitation (SE) | 挤压-激励模块 | per-channel gating from pooled statistics |
# | global average pooling | 全局平均池化 | mean over H×W per channel |
# | stem / tail (last stage) | 头部卷积 / 尾部结构 | first conv / layers after the last block |
#
# **Next:** [03 · ReLU6 vs h-swish and other activations](03_activations.ipynb).
