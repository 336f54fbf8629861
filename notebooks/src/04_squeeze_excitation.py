# %% [markdown]
# # 04 · Squeeze-and-Excitation
#
# **After this lesson you can** write an SE block (squeeze, excitation, scale), derive its parameter cost
# $\approx 2C^2/r$ and check it against torchvision, and measure on this machine what SE buys (accuracy on the
# shapes set) and what it costs (parameters, MACs, latency) — and look at what the learned gates do per class.
#
# **Goals**
# 1. The three steps, as document 001 describes them, checked against `torchvision.ops.SqueezeExcitation`.
# 2. The overhead formula $2Cs + s + C$ with $s = C/r$, for several $C$ and $r$.
# 3. Two tiny MobileNet v3 networks, with and without SE, trained the same way over several seeds: accuracy
#    (with its uncertainty) and latency (side by side).
# 4. The mean gate per class: SE re-weights channels differently for different inputs.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 25 s (`FAST=True`: about 12 s).

# %% tags=["parameters"]
FAST = False          # smaller training set, fewer epochs and repeats
SEED = 0              # every random draw follows this seed; the trainings use seeds SEED, SEED + 1, ...
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU
N_TRAIN = 3000        # shapes training images
EPOCHS = 4            # epochs per network
WIDTH = 0.5           # width multiplier of the tiny MobileNet v3
SEEDS = 3             # training seeds per network, 3 or more for a verdict with a spread

# %%
import time

import torch
from IPython.display import Markdown, display
from torchvision.ops import SqueezeExcitation

from lessons_lib import data, machine, profile, seed_everything, stats, train
from lessons_lib.course import show_source
from lessons_lib.blocks import (InvertedResidual, SqueezeExcite, collect_se_gates, make_divisible, se_param_count,
                                tiny_mobilenet)
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson04 as ex
from lessons_lib.course.plotting import bar, heatmap, use_house_style
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
if FAST:
    N_TRAIN, EPOCHS = 1500, 2
REPEATS = 7 if FAST else 25
n_params = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
print("measurements below come from:", machine.describe(dev))

# %% [markdown]
# ## 1 · Squeeze, excitation, scale
#
# **Claim.** Document 001 (section on SENet) says SE lets the network learn how important each channel is.
# A convolution only sees a local window, so SE first **squeezes** each channel's whole map into one number
# by global average pooling; an **excitation** of two fully connected layers — a reduction by $r$, ReLU, an
# expansion back, and a sigmoid — turns those numbers into per-channel weights in (0, 1), not one-hot, so
# several channels can be emphasised at once; and the block **scales** each channel of the input by its weight.
#
# **Formula.** For $U\in\mathbb R^{N\times C\times H\times W}$, $W_1\in\mathbb R^{s\times C}$, $W_2\in\mathbb R^{C\times s}$, $s = C/r$:
# $$z_c = \frac{1}{HW}\sum_{i,j} U_{c,i,j},\qquad g = \sigma\!\big(W_2\,\mathrm{ReLU}(W_1 z + b_1) + b_2\big),\qquad \tilde U_c = g_c\,U_c .$$
# MobileNet v3 replaces $\sigma$ by h-sigmoid (lesson 03).

# %%
show_source(SqueezeExcite, lines=(1, 45))

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(SEED)
C, r = 64, 4
ours = SqueezeExcite(C, r)
ref = SqueezeExcitation(C, C // r)
ref.load_state_dict(ours.state_dict())  # same layer names (avgpool, fc1, activation, fc2, scale_activation)
u = torch.randn(2, C, 8, 8) * 2
with torch.no_grad():
    compare("SE output", ours(u), ref(u), ref_name="torchvision.ops.SqueezeExcitation", atol=1e-6)
    z = u.mean((2, 3))                                                    # squeeze
    gate = torch.sigmoid(torch.relu(z @ ours.fc1.weight.flatten(1).T + ours.fc1.bias)
                         @ ours.fc2.weight.flatten(1).T + ours.fc2.bias)  # excitation
    compare("SE by the formula", ours(u), u * gate[:, :, None, None], ref_name="squeeze/excite/scale by hand", atol=1e-5)
    print(f"gate shape {tuple(ours.gate(u).shape)}, all in (0, 1): {bool(((gate > 0) & (gate < 1)).all())}")
_ = compare(f"SE params (C={C}, r={r})", n_params(ours), n_params(ref), ref_name="torchvision")

# %% [markdown]
# ## 2 · What SE costs: $2C^2/r$
#
# $W_1$ has $C s$ weights and $s$ biases, $W_2$ has $s C$ weights and $C$ biases:
# $$\text{params} = 2Cs + s + C \;=\; \frac{2C^2}{r} + \frac{C}{r} + C \;\approx\; \frac{2C^2}{r}.$$
# The MACs are the same $2Cs$ per image (the FC layers run once on the pooled vector), plus $HWC$ additions
# for the pooling and $HWC$ multiplications for the scaling — tiny next to a convolution, but memory-bound.

# %%
show_source(se_param_count)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'C':>5}{'r':>4}{'ours':>9}{'torchvision':>13}{'2Cs+s+C':>9}{'2C^2/r':>9}{'approx err':>11}")
for C_ in (16, 64, 256):
    for r_ in (4, 8, 16):
        s = C_ // r_
        ours_n, tv_n = n_params(SqueezeExcite(C_, r_)), n_params(SqueezeExcitation(C_, s))
        approx = 2 * C_ * C_ / r_
        print(f"{C_:>5}{r_:>4}{ours_n:>9,}{tv_n:>13,}{se_param_count(C_, s):>9,}{approx:>9,.0f}{(ours_n - approx) / ours_n:>11.1%}"
              + ("" if ours_n == tv_n == se_param_count(C_, s) else "  MISMATCH"))

# %% [markdown]
# The approximation is within a few percent once $C/r \gg 1$; for small $C$ the biases matter. Relative to
# the block it sits in, SE is cheap in MACs but not in parameters: on MobileNet v3's expanded channels
# (lesson 02) it can more than double a block's parameters while adding under 1 % of its MACs.

# %%
# NBVAL_CHECK_OUTPUT
for e, k in [(72, 3), (240, 5), (576, 5)]:
    plain = InvertedResidual(e // 6, e // 6, expanded_ch=e, kernel_size=k, activation="hard_swish")
    with_se = InvertedResidual(e // 6, e // 6, expanded_ch=e, kernel_size=k, use_se=True, activation="hard_swish")
    a, b = profile.profile_model(plain, (1, e // 6, 14, 14)), profile.profile_model(with_se, (1, e // 6, 14, 14))
    print(f"IR({e // 6}->{e // 6}, E={e}, k={k}) at 14x14: SE adds {b.total_params - a.total_params:>7,} params "
          f"(+{b.total_params / a.total_params - 1:.0%}) and {b.total_macs - a.total_macs:>7,} MACs "
          f"(+{b.total_macs / a.total_macs - 1:.2%})")

# %% [markdown]
# ## 3 · Does it pay? Two tiny MobileNet v3s, with and without SE
#
# Same architecture (`tiny_mobilenet(3, width_mult=WIDTH)`), SE on or off in every block — the one thing that
# changes — with the same seeds, data order and optimiser (AdamW, cosine schedule), a few epochs on the
# procedural shapes set. One seed cannot separate a real effect from the luck of an initialisation, so each
# network is trained with `SEEDS` seeds; the verdict is `stats.verdict` on the per-seed test accuracies, paired
# by seed (Student's $t$ interval), and each seed's difference also gets a paired interval over the 1,000 test
# images (`stats.paired_difference`). The latency difference is measured side by side in interleaved rounds.

# %%
# NBVAL_CHECK_OUTPUT
splits = data.shapes_splits(n_train=N_TRAIN, n_val=500, n_test=1000, seed=SEED)
nets = {}
for se in (False, True):
    seed_everything(SEED)
    nets[se] = tiny_mobilenet(3, width_mult=WIDTH, use_se=se)
reps = {se: profile.profile_model(n, (1, 3, 32, 32)) for se, n in nets.items()}
for se, rp in reps.items():
    print(f"SE {'on ' if se else 'off'}: {rp.total_params:,} params, {rp.total_macs:,} MACs")
print(f"SE adds {reps[True].total_params / reps[False].total_params - 1:.0%} params, "
      f"{reps[True].total_macs / reps[False].total_macs - 1:.1%} MACs")

# %%
# NBVAL_IGNORE_OUTPUT  (training accuracies and times vary with the machine)
X_test, y_test = train.tensors(splits.test)
acc = {False: [], True: []}       # SE on/off -> test accuracy per seed
per_seed = []                     # the paired difference over test images, per seed
t0 = time.perf_counter()
for k in range(SEEDS):
    correct = {}
    for se in (False, True):
        seed_everything(SEED + k)
        net = nets[se] if k == 0 else tiny_mobilenet(3, width_mult=WIDTH, use_se=se)  # seed SEED's nets are kept
        train.fit(net, splits.train, epochs=EPOCHS, lr=5e-3, batch_size=128, seed=SEED + k, device=dev)
        correct[se] = (train.predict(net, splits.test, device=dev).argmax(1) == y_test).numpy()
        acc[se].append(float(correct[se].mean()))
    per_seed.append(stats.paired_difference(correct[True], correct[False]))
    print(f"seed {SEED + k}: no SE {acc[False][-1]:.1%}, SE {acc[True][-1]:.1%} | "
          + per_seed[-1].text("SE - no SE", "SE", "no SE"))
v_acc = stats.verdict(acc[True], acc[False], names=("SE", "no SE"), paired=True)
print(f"{2 * SEEDS} trainings of {EPOCHS} epochs on {N_TRAIN} images in {time.perf_counter() - t0:.1f} s")
print(f"mean test accuracy over {SEEDS} seeds: no SE {sum(acc[False]) / SEEDS:.1%}, SE {sum(acc[True]) / SEEDS:.1%}")
print("over seeds, paired:", v_acc.text(3))

# %%
# NBVAL_IGNORE_OUTPUT  (timings)
lat, v_lat = {}, {}
for b in (1, 64):
    x = torch.randn(b, 3, 32, 32, device=dev)
    lat[b] = profile.measure_side_by_side({"SE": nets[True].to(dev), "no SE": nets[False].to(dev)}, x, repeats=REPEATS)
    v_lat[b] = stats.verdict(lat[b]["SE"].times_ms, lat[b]["no SE"].times_ms, names=("SE", "no SE"),
                             higher_is_better=False, paired=True, unit="ms")
print("measured on:", machine.describe(dev), f"| {REPEATS} interleaved rounds")
mac_share = reps[True].total_macs / reps[False].total_macs - 1
time_share = {b: lat[b]["SE"].median_ms / lat[b]["no SE"].median_ms - 1 for b in lat}
for b in lat:
    print(f"batch {b:>2}: without SE {lat[b]['no SE'].median_ms:.3f} ms, with SE {lat[b]['SE'].median_ms:.3f} ms "
          f"-> {time_share[b]:+.0%} time for {mac_share:+.1%} MACs | {v_lat[b].text(3)}")
ax = bar({f"{n}, batch {b}": lat[b][n].median_ms / lat[b]["no SE"].median_ms for b in lat for n in ("no SE", "SE")},
         ylabel="time relative to no SE (medians)", title="what SE costs in time (tiny MobileNet v3)", annotate="{:.2f}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
def cost_said(b):
    v = v_lat[b]
    if v.better == "no SE":
        return f"batch {b}: **{time_share[b]:+.0%} time**, {time_share[b] / mac_share:.0f}× its MAC share ({v.text(3)})"
    return f"batch {b}: {time_share[b]:+.0%} in the medians ({v.text(3)})"


n_se_wins = sum(d.verdict == "A better" for d in per_seed)
n_plain_wins = sum(d.verdict == "B better" for d in per_seed)
acc_word = {"SE": "**SE better**", "no SE": "**no SE better**"}.get(v_acc.better, f"**{v_acc.verdict}**")
display(Markdown(
    f"Read it: SE adds {mac_share:.1%} to the MACs; its time cost, measured side by side, is {cost_said(1)}; "
    f"{cost_said(64)}. "
    + ("Where SE is measurably slower, the reason is that every SE block adds a pooling pass, two tiny matrix "
       "products and a scaling pass over the feature map, each a separate memory-bound kernel that MACs barely "
       "count. " if any(v.better == "no SE" for v in v_lat.values()) else "")
    + f"Accuracy over {SEEDS} seeds "
    f"({EPOCHS} epochs on {N_TRAIN} images): no SE {sum(acc[False]) / SEEDS:.1%}, SE {sum(acc[True]) / SEEDS:.1%} "
    f"on average, {acc_word} (paired by seed: {v_acc.diff * 100:+.1f} points, 95 % CI {v_acc.lo * 100:+.1f} to "
    f"{v_acc.hi * 100:+.1f}). "
    + (f"Note how a single seed would have misled: the per-image paired interval favours SE on "
       f"{n_se_wins} seed(s) and no SE on {n_plain_wins}, so the seed-to-seed spread, not the test-set size, "
       f"limits this comparison. " if n_se_wins and n_plain_wins else "")
    + f"Both networks are far from converged at this budget, so this says what SE does "
    f"early in training on this data set, not what it does for a trained MobileNet (the paper reports gains "
    f"on ImageNet). SE also adds {reps[True].total_params / reps[False].total_params - 1:.0%} parameters; a "
    f"parameter-matched control without SE is not tested here."))

# %% [markdown]
# **Which 1/4?** Document 001 (section 2.1.2, MobileNetv3) says v3 cuts the *expansion layer* of SE blocks to
# 1/4 of its channels to pay for SE's time. The paper (Howard et al. 2019, *Searching for MobileNetV3*,
# section 5.2) fixes the **SE bottleneck** at 1/4 of the expansion layer's channels (reporting "no discernible
# latency cost" on its phones); the expansion keeps its width. Our v3 blocks do the same — check it on the two
# networks just trained:

# %%
# NBVAL_CHECK_OUTPUT
ses = [m for m in nets[True].modules() if isinstance(m, InvertedResidual) and isinstance(m.se, SqueezeExcite)]
plain_e = [m.expanded_ch for m in nets[False].modules() if isinstance(m, InvertedResidual)]
print(f"{len(ses)} SE blocks; squeeze = E/4 rounded to 8 in all: "
      f"{all(m.se.squeeze_channels == make_divisible(m.expanded_ch // 4, 8) for m in ses)}")
print(f"expansion widths with SE {[m.expanded_ch for m in ses]}, without SE {plain_e}: identical: "
      f"{[m.expanded_ch for m in ses] == plain_e}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
display(Markdown(
    f"> **Erratum (document 001, section 2.1.2).** The 1/4 of MobileNet v3 is the width of the SE bottleneck "
    f"($E/4$), not a cut of the expansion layer: with SE on, every one of the {len(ses)} blocks here keeps its "
    f"expansion width and squeezes to $E/4$. "
    + (f"Even so, SE is not free on this machine: {'; '.join(cost_said(b) for b in lat if v_lat[b].better == 'no SE')}. "
       if any(v.better == "no SE" for v in v_lat.values()) else
       "Here its time cost could not be told apart from zero at batch 1 or 64. ")
    + f"The paper's "
    f"\"no discernible latency cost\" is a phone (Pixel, TFLite) measurement of the whole network, which a "
    f"{machine.describe(dev).split('|')[0].strip()} does not reproduce; lesson 02 shows the same erratum on "
    f"torchvision's MobileNetV3 models."))

# %% [markdown]
# ## 4 · What the gates learn: mean gate per class
#
# For each test image we record the gate vector of the last SE block; averaging over the images of each class
# gives a class × channel map. Rows that differ mean SE re-weights the channels depending on the input —
# the "attention" document 001 mentions. Per-class means over ~100 images differ a little by chance alone, so
# the control is the same statistic with the labels shuffled (20 permutations): only a spread well above
# that is evidence that the gates depend on the class.

# %%
# NBVAL_IGNORE_OUTPUT  (depends on the trained weights)
gates = collect_se_gates(nets[True].cpu(), X_test)
last = list(gates)[-1]
G = gates[last]
per_class = torch.stack([G[y_test == c].mean(0) for c in range(len(splits.classes))])
spread = per_class.std(0)
order = spread.argsort(descending=True)
ax = heatmap(per_class[:, order], row_labels=splits.classes, title=f"mean SE gate per class, block {last} "
             f"({G.shape[1]} channels, sorted by spread across classes)", xlabel="channel (sorted)", cmap="magma")
class_range = lambda pc: pc.max(0).values - pc.min(0).values  # noqa: E731  per channel, across classes
n_cls = len(splits.classes)
gen = torch.Generator().manual_seed(SEED)
null = []
for _ in range(20):
    y_perm = y_test[torch.randperm(len(y_test), generator=gen)]
    null.append(float(class_range(torch.stack([G[y_perm == c].mean(0) for c in range(n_cls)])).median()))
real_med = float(class_range(per_class).median())
null_hi = sorted(null)[-1]
print(f"{last} (seed {SEED}): gates range {float(G.min()):.2f}..{float(G.max()):.2f}; across classes the mean gate "
      f"of a channel varies by up to {float(class_range(per_class).max()):.2f} (median over channels {real_med:.3f})")
print(f"the same median with shuffled labels: {min(null):.3f} .. {null_hi:.3f} over 20 permutations")
display(Markdown(
    f"Read it: the median class-to-class range of a channel's mean gate is {real_med:.3f}, against at most "
    f"{null_hi:.3f} when the labels are shuffled: "
    + (f"{real_med / null_hi:.1f}× the chance level, so the gates do depend on the class — SE re-weights channels "
       f"per input." if real_med > max(1.5 * null_hi, 0.01) else
       "not clearly above chance, so this run gives no evidence that the gates depend on the class.")))

# %% [markdown]
# ## 5 · Try it: the reduction ratio r
#
# The **r** slider (first control) sets the reduction; the dropdown picks the channel count $C$. The panel
# prints the exact parameter count (ours and torchvision's), the $2C^2/r$ approximation and the overhead on a
# MobileNet v3 block with $C$ expanded channels.

# %%
def reduction_table(r=4, channels=240):
    s = max(1, channels // r)
    se_n = n_params(SqueezeExcite(channels, r))
    tv_n = n_params(SqueezeExcitation(channels, s))
    block = n_params(InvertedResidual(40, 40, expanded_ch=channels, kernel_size=5, activation="hard_swish"))
    print(f"C = {channels}, r = {r}: squeeze to s = {s} channels")
    print(f"  SE params: ours {se_n:,}, torchvision {tv_n:,}, 2C^2/r = {2 * channels**2 / r:,.0f}")
    print(f"  overhead on IR(40->40, E={channels}, k=5) with {block:,} params: +{se_n / block:.0%}")
    rs = sorted({1, 2, 4, 8, 16, 32, r})   # the slider's r is always one of the bars (highlighted)
    bar({f"r={q}": n_params(SqueezeExcite(channels, q)) for q in rs}, log=True, ylabel="SE params",
        title=f"SE parameters for C = {channels} (selected r = {r}: {se_n:,})", annotate="{:,.0f}",
        colors=["#d1242f" if q == r else "#1f6feb" for q in rs])


interactive_panel(reduction_table,
                  r=int_slider("reduction r", 4, 1, 32),
                  channels=dropdown("channels C", [72, 240, 576, 960], 240))

# %% [markdown]
# ## 6 · Exercises
#
# **6.1** How many parameters has an SE block on $C=64$ channels with $r=4$ (both FC layers with biases)?

# %%
answer = ...  # an int
ex.se_params.check(answer)

# %% [markdown]
# **6.2** By what percent does SE (squeeze 64, hard-sigmoid) grow the parameters of
# `InvertedResidual(40, 40, expanded_ch=240, kernel_size=5)`?

# %%
answer = ...  # a percentage, e.g. 12.5
ex.se_overhead.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
ex.se_params.check(n_params(SqueezeExcite(64, 4)))
plain, with_se = (InvertedResidual(40, 40, expanded_ch=240, kernel_size=5, use_se=b) for b in (False, True))
ex.se_overhead.check(100 * (n_params(with_se) - n_params(plain)) / n_params(plain))

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
blk_plain = profile.profile_model(InvertedResidual(40, 40, expanded_ch=240, kernel_size=5), (1, 40, 14, 14))
blk_se = profile.profile_model(InvertedResidual(40, 40, expanded_ch=240, kernel_size=5, use_se=True), (1, 40, 14, 14))
display(Markdown("\n".join([
    "* Our `SqueezeExcite` equals `torchvision.ops.SqueezeExcitation` (outputs with copied weights, parameter "
    "counts) and the squeeze → excite → scale formula written out by hand.",
    f"* Parameters are exactly $2Cs + s + C$: {se_param_count(64, 16):,} for $C = 64, r = 4$; the $2C^2/r$ "
    f"approximation is within {(se_param_count(256, 64) - 2 * 256**2 / 4) / se_param_count(256, 64):.1%} at "
    f"$C = 256, r = 4$ but off by {(se_param_count(16, 1) - 2 * 16**2 / 16) / se_param_count(16, 1):.0%} at "
    f"$C = 16, r = 16$.",
    f"* On a MobileNet v3 block IR(40→40, E = 240) SE adds "
    f"{blk_se.total_params / blk_plain.total_params - 1:+.0%} parameters but only "
    f"{blk_se.total_macs / blk_plain.total_macs - 1:+.2%} MACs; v3's 1/4 is that SE bottleneck, not a cut of the "
    f"expansion (erratum of document 001).",
    f"* Tiny v3 network: SE adds {reps[True].total_params / reps[False].total_params - 1:.0%} parameters and "
    f"{mac_share:.1%} MACs; time side by side: {cost_said(1)}; {cost_said(64)}.",
    f"* Accuracy over {SEEDS} seeds ({EPOCHS} epochs, {N_TRAIN} images): no SE {sum(acc[False]) / SEEDS:.1%}, SE "
    f"{sum(acc[True]) / SEEDS:.1%}: {v_acc.text(3)} — an early-training result, not a converged one.",
    f"* Gates (seed {SEED}, block {last}): median class-to-class range {real_med:.3f} vs at most {null_hi:.3f} with "
    f"shuffled labels" + (" — class-dependent re-weighting." if real_med > max(1.5 * null_hi, 0.01) else " — not clearly above chance."),
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | squeeze | 挤压 | global average pooling of each channel to one number |
# | excitation | 激励 | FC → ReLU → FC → sigmoid producing channel weights |
# | scale / recalibration | 缩放 / 重新校准 | multiply each channel by its weight |
# | reduction ratio r | 降维系数 r | the first FC layer shrinks C to C/r |
# | gate | 门控 | the per-channel weight in (0, 1) |
# | attention | 注意力机制 | input-dependent weighting, here over channels |
# | fully connected (FC) layer | 全连接层 | a 1×1 conv on a 1×1 map |
#
# **Next:** [05 · ShuffleNet v1/v2 and the four speed guidelines](05_shufflenet_guidelines.ipynb).
