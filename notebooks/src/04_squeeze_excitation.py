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
# 3. Two tiny MobileNet v3 networks, with and without SE, trained the same way: accuracy and latency.
# 4. The mean gate per class: SE re-weights channels differently for different inputs.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 15 s (`FAST=True`: about 10 s).

# %% tags=["parameters"]
FAST = False          # smaller training set, fewer epochs and repeats
SEED = 0              # every random draw (and both trainings) follow this seed
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU
N_TRAIN = 3000        # shapes training images
EPOCHS = 4            # epochs per network
WIDTH = 0.5           # width multiplier of the tiny MobileNet v3

# %%
import time

import torch
from torchvision.ops import SqueezeExcitation

from lessons_lib import data, machine, profile, seed_everything, train
from lessons_lib.course import show_source
from lessons_lib.blocks import InvertedResidual, SqueezeExcite, collect_se_gates, se_param_count, tiny_mobilenet
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
# Same architecture (`tiny_mobilenet(3, width_mult=WIDTH)`), SE on or off in every block, same seed, same
# data order, same optimiser (AdamW, cosine schedule), a few epochs on the procedural shapes set. With so
# little training the difference is small and partly luck (one seed); the latency difference is measured
# side by side.

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
acc, hist = {}, {}
for se, net in nets.items():
    t0 = time.perf_counter()
    hist[se] = train.fit(net, splits.train, val=splits.val, epochs=EPOCHS, lr=5e-3, batch_size=128, seed=SEED, device=dev)
    acc[se] = train.evaluate(net, splits.test, device=dev)["acc"]
    print(f"SE {'on ' if se else 'off'}: test accuracy {acc[se]:.1%} after {EPOCHS} epochs "
          f"(val per epoch {[round(a, 3) for a in hist[se].val_acc]}), trained in {time.perf_counter() - t0:.1f} s")
print(f"SE changes test accuracy by {100 * (acc[True] - acc[False]):+.1f} points (one seed, {EPOCHS} epochs)")

# %%
# NBVAL_IGNORE_OUTPUT  (timings)
x1 = torch.randn(1, 3, 32, 32, device=dev)
x64 = torch.randn(64, 3, 32, 32, device=dev)
lat = {}
for _ in range(3):  # interleaved rounds, best median kept: robust to load from other processes
    for se, n in nets.items():
        for b, x in ((1, x1), (64, x64)):
            m = profile.measure_latency(n.to(dev), x, repeats=max(3, REPEATS // 3))
            lat[(se, b)] = min(lat.get((se, b), m), m, key=lambda l: l.median_ms)
print("measured on:", machine.describe(dev))
for b in (1, 64):
    off, on = lat[(False, b)].median_ms, lat[(True, b)].median_ms
    print(f"batch {b:>2}: without SE {off:.3f} ms, with SE {on:.3f} ms -> {on / off - 1:+.0%} time "
          f"for {reps[True].total_macs / reps[False].total_macs - 1:+.1%} MACs")
ax = bar({f"{'SE' if se else 'no SE'}, batch {b}": l.median_ms / lat[(False, b)].median_ms for (se, b), l in lat.items()},
         ylabel="time relative to no SE", title="what SE costs in time (tiny MobileNet v3)", annotate="{:.2f}")

# %% [markdown]
# Read it: SE's share of the MACs is under 2 %, its share of the time is larger — every SE block adds a
# pooling pass, two tiny matrix products and a scaling pass over the feature map, each a separate
# memory-bound kernel. Document 001 notes the same trade-off: v3 shrinks the expansion of SE blocks so that
# SE's accuracy gain comes without extra time.

# %% [markdown]
# ## 4 · What the gates learn: mean gate per class
#
# For each test image we record the gate vector of the last SE block; averaging over the images of each class
# gives a class × channel map. Rows that differ mean SE re-weights the channels depending on the input —
# the "attention" document 001 mentions.

# %%
# NBVAL_IGNORE_OUTPUT  (depends on the trained weights)
X_test, y_test = train.tensors(splits.test)
gates = collect_se_gates(nets[True].cpu(), X_test)
last = list(gates)[-1]
G = gates[last]
per_class = torch.stack([G[y_test == c].mean(0) for c in range(len(splits.classes))])
spread = per_class.std(0)
order = spread.argsort(descending=True)
ax = heatmap(per_class[:, order], row_labels=splits.classes, title=f"mean SE gate per class, block {last} "
             f"({G.shape[1]} channels, sorted by spread across classes)", xlabel="channel (sorted)", cmap="magma")
print(f"{last}: gates range {float(G.min()):.2f}..{float(G.max()):.2f}; across classes the mean gate of a channel "
      f"varies by up to {float(per_class.max(0).values.sub(per_class.min(0).values).max()):.2f} "
      f"(median {float(per_class.max(0).values.sub(per_class.min(0).values).median()):.2f})")

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
# * Our `SqueezeExcite` equals `torchvision.ops.SqueezeExcitation` (outputs with copied weights, parameter counts)
#   and the squeeze → excite → scale formula written out by hand.
# * Parameters are exactly $2Cs + s + C$: 2,128 for $C = 64, r = 4$; the $2C^2/r$ approximation is within a few
#   percent once $C/r$ is large (table above).
# * On MobileNet v3 blocks SE adds +118 % parameters to IR(40→40, E = 240) but only about 0.6 % MACs.
# * In the tiny v3 network SE costs the extra parameters and MACs printed above and a larger share of time than
#   of MACs (measured above); its accuracy effect after a few epochs on one seed is printed above — small, and
#   not a reliable verdict without more seeds and epochs.
# * The learned gates differ between classes: SE re-weights channels per input (heat map above).
#
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
