# %% [markdown]
# # 13 · Pruning
#
# **After this lesson you can** zero the smallest weights of a trained CNN layer by layer or with one global
# threshold, find which layers tolerate it, recover accuracy by fine-tuning with the mask held fixed, explain
# with a measurement why zeros in dense kernels do not make inference faster, and remove whole channels (by
# filter L1 norm or by network slimming) to get a model that really is smaller and faster.
#
# **Goals**
# 1. Magnitude pruning, layer-wise vs global, checked against `torch.nn.utils.prune`.
# 2. A per-layer sensitivity scan, and short fine-tuning curves.
# 3. Measured: 90 % zeros vs the dense original (same time) and channel pruning (real speed-up vs MACs).
# 4. Network slimming (L1 on BatchNorm scales) vs plain L1-norm channel pruning at equal MACs.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 20 s (`FAST=True`: about 15 s).

# %% tags=["parameters"]
FAST = False          # fewer images, epochs and timing repeats
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU
N_TEST = 300          # test images for the slimming comparison
N_SCAN = 200          # test images for the sweeps, the sensitivity scan, the curves and the widget
N_FINETUNE = 512      # training images for fine-tuning and the slimming phase
FT_EPOCHS = 2         # epochs of the fine-tuning curves
SPARSITY = 0.9        # the unstructured sparsity studied in sections 2 and 4
CHANNELS = 0.5        # fraction of channels removed by channel pruning
LAMBDA = 1e-2         # weight of the L1 penalty on BatchNorm scales (network slimming)
SLIM = 0.3            # fraction of channels removed in the slimming comparison
BATCH = 16            # batch size of the latency measurements

# %%
import copy

import torch
import torch.nn.utils.prune as tprune
from torch.utils.data import TensorDataset

from lessons_lib import checkpoints, data, machine, profile, prune, seed_everything, train
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson13 as ex
from lessons_lib.course.plotting import bar, grouped_bar, lines, use_house_style
from lessons_lib.course.widgets import dropdown, float_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
if FAST:
    N_TEST, N_SCAN, N_FINETUNE, FT_EPOCHS = 150, 100, 256, 1
REPEATS = 5 if FAST else 12
splits = data.shapes_splits(n_train=N_FINETUNE, n_val=1, n_test=N_TEST)
scan_set = TensorDataset(*(t[:N_SCAN] for t in splits.test.tensors))
teacher = checkpoints.pretrained("shapes_teacher")
acc = lambda m, d=splits.test: train.evaluate(m, d, device=dev)["acc"]  # noqa: E731
X_cal = splits.train.tensors[0][:256]   # images for re-estimating BatchNorm statistics (section 2)
print("measurements below come from:", machine.describe(dev))

# %% [markdown]
# ## 1 · The claim and the formula
#
# **Claim.** Document 002 argues that trained networks are over-parameterised: many weights are redundant
# and can be deleted with almost no effect. Document 000 lists three ways: remove unimportant neurons and
# fine-tune, cut every connection whose weight is below a threshold and fine-tune, or add a sparsity
# regulariser to the training loss so that weights drift to zero and can then be removed.
#
# **Formula.** Magnitude pruning at sparsity $s$ keeps weight $w$ when $|w| > \tau$, with $\tau$ the
# $\lceil sN\rceil$-th smallest $|w|$. *Layer-wise*: each layer gets its own $\tau_\ell$ over its $N_\ell$
# weights; *global*: one $\tau$ over all layers' weights together, so layers with many small weights lose more.
# The mask $M \in \{0,1\}$ is applied as $W \odot M$ (here a `torch.nn.utils.parametrize` parametrization, so
# it holds during fine-tuning).

# %%
show_source(prune.magnitude_masks)

# %% [markdown]
# **Check against torch.** `torch.nn.utils.prune.global_unstructured` with `L1Unstructured` on a copy of
# the teacher must zero exactly the same weights (the tie-breaking on equal magnitudes is the same), and so
# give the same predictions.

# %%
# NBVAL_CHECK_OUTPUT
masks = prune.magnitude_masks(teacher, SPARSITY, scope="global")
ref = copy.deepcopy(teacher)
tprune.global_unstructured([(m, "weight") for m in prune.prunable_layers(ref).values()],
                           pruning_method=tprune.L1Unstructured, amount=SPARSITY)
same = all(torch.equal(masks[n], m.weight_mask) for n, m in prune.prunable_layers(ref).items())
compare(f"global {SPARSITY:.0%} masks equal torch.nn.utils.prune's", same, True, ref_name="expected")
ours = prune.remove_masks(prune.apply_masks(copy.deepcopy(teacher), masks))
x = splits.test.tensors[0][:64]
with torch.no_grad():
    ok = compare("pruned model logits", ours(x), ref(x), ref_name="torch.nn.utils.prune", atol=1e-5)
print(f"{'layer':<14}{'weights':>9}{'kept (global)':>15}{'kept (layer)':>14}")
for n, m in masks.items():
    print(f"{n:<14}{m.numel():>9,}{float(m.mean()):>15.3f}{1 - SPARSITY:>14.3f}")

# %% [markdown]
# Read the table: one global threshold keeps more of the small first layer and of the classifier, whose
# weights are larger, and prunes the big late convs hardest.
#
# ## 2 · Layer-wise vs global, and which layers are sensitive
#
# Test accuracy of the teacher (no fine-tuning) after pruning at several sparsities with each scope — first
# as is, then after **re-estimating the BatchNorm statistics**: pruning shrinks each conv's outputs, so the
# running mean and variance stored during training no longer fit; one forward pass in train mode over 256
# training images (no labels, no weight update) replaces them.

# %%
show_source(prune.recalibrate_bn)

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies depend on the test subset and float rounding)
SPARSITIES = [0.5, 0.8, 0.9, 0.95]
acc_base = acc(teacher, scan_set)
sweep = {}
for scope in ("layer", "global"):
    for recal in (False, True):
        key = f"{scope}{', BN re-estimated' if recal else ''}"
        sweep[key] = []
        for s_ in SPARSITIES:
            m = prune.remove_masks(prune.apply_masks(copy.deepcopy(teacher), prune.magnitude_masks(teacher, s_, scope=scope)))
            sweep[key].append(acc(prune.recalibrate_bn(m, X_cal) if recal else m, scan_set))
print("measured on:", machine.describe(dev))
print(f"unpruned teacher: {acc_base:.3f} on {N_SCAN} test images")
for key, accs in sweep.items():
    print(f"{key:<26}" + "  ".join(f"{s_:.0%}: {a:.3f}" for s_, a in zip(SPARSITIES, accs)))
ax = lines([s_ * 100 for s_ in SPARSITIES], sweep, xlabel="weights zeroed (%)", ylabel="test accuracy",
           title="Magnitude pruning without fine-tuning")
ax.axhline(acc_base, ls="--", color="grey", lw=1);

# %% [markdown]
# Read it: wherever accuracy is not already at chance, global beats layer-wise (it spares the small,
# sensitive first conv and the classifier), and re-estimating BatchNorm recovers a large part of the loss for
# free — much of the damage is stale statistics rather than lost weights.
#
# > **Erratum (document 002).** "Deleting the redundant parameters has almost no effect" holds here only up to
# > moderate sparsity: compare the 50 % column with the 90 % and 95 % columns above. Without fine-tuning (and
# > without re-estimating BatchNorm) the high sparsities fall to near chance (0.10 for ten classes).
#
# A **sensitivity scan** prunes one layer at a time (the others untouched) and records the accuracy: the
# layers whose curve drops first deserve a lower sparsity. (No BatchNorm re-estimation here, to keep the scan
# cheap: one pruned layer shifts the statistics much less than pruning all of them.)

# %%
show_source(prune.sensitivity_scan)

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies of pruned models on a test subset)
SCAN = [0.5, 0.8, 0.95]
scan = prune.sensitivity_scan(teacher, lambda m: acc(m, scan_set), sparsities=SCAN)
lines([s * 100 for s in SCAN], scan, xlabel="weights of this layer zeroed (%)", ylabel="test accuracy",
      title=f"Sensitivity scan ({N_SCAN} test images)")
most = min(scan, key=lambda n: scan[n][-1])
least = max(scan, key=lambda n: scan[n][-1])
print(f"at 95 %: most sensitive {most} ({scan[most][-1]:.3f}), least sensitive {least} ({scan[least][-1]:.3f})")

# %% [markdown]
# ## 3 · Fine-tuning with the mask held fixed
#
# Document 000's recipe is prune *then fine-tune*. `apply_masks` registers the mask as a parametrization, so
# the optimiser updates the surviving weights while the pruned ones stay exactly zero. Epoch 0 is the pruned
# model after BatchNorm re-estimation.

# %%
# NBVAL_IGNORE_OUTPUT  (training curves)
curves = {}
for scope in ("layer", "global"):
    m = prune.apply_masks(copy.deepcopy(teacher), prune.magnitude_masks(teacher, SPARSITY, scope=scope))
    start = acc(prune.recalibrate_bn(m, X_cal), scan_set)
    hist = train.fit(m, splits.train, val=scan_set, epochs=FT_EPOCHS, lr=1e-3, batch_size=64, device=dev, seed=SEED)
    curves[f"{scope} {SPARSITY:.0%}"] = [start] + hist.val_acc
    final_sparsity = prune.sparsity_of(prune.remove_masks(m))["total"]
    print(f"{scope}: {start:.3f} -> " + " -> ".join(f"{a:.3f}" for a in hist.val_acc)
          + f" after {FT_EPOCHS} epoch(s) on {N_FINETUNE} images; zeros still {final_sparsity:.3f} of all weights")
ax = lines(range(FT_EPOCHS + 1), curves, xlabel="fine-tuning epoch", ylabel=f"test accuracy ({N_SCAN} images)",
           title=f"Recovering from {SPARSITY:.0%} sparsity")
ax.axhline(acc_base, ls="--", color="grey", lw=1);

# %% [markdown]
# ## 4 · Zeros are not speed: dense kernels vs removed channels
#
# A convolution kernel for dense tensors multiplies every weight, zero or not; 90 % zeros change neither the
# MAC count it executes nor its memory traffic. Removing whole **channels** instead gives a smaller dense
# model. `l1_channel_prune` (Li et al. 2017) drops the filters with the smallest L1 norm $\sum|w|$ and cuts
# the next layer's inputs to match.

# %%
show_source(prune.prune_channels)

# %%
# NBVAL_CHECK_OUTPUT
zeros = prune.remove_masks(prune.apply_masks(copy.deepcopy(teacher), prune.magnitude_masks(teacher, SPARSITY, scope="global")))
thin = prune.l1_channel_prune(teacher, CHANNELS)
reps = {n: profile.profile_model(m, (1, 3, 32, 32)) for n, m in (("dense original", teacher), (f"{SPARSITY:.0%} zeros", zeros), (f"{CHANNELS:.0%} channels removed", thin))}
nonzero = sum(int((m.weight != 0).sum()) for m in prune.prunable_layers(zeros).values())
for n, r in reps.items():
    print(f"{n:<22} parameters {r.total_params:>8,}  MACs executed {r.total_macs / 1e6:6.2f} M")
print(f"non-zero weights in the {SPARSITY:.0%}-zeros model: {nonzero:,} (the dense kernel still multiplies all of them)")
print("channels per conv after channel pruning:", prune.channel_counts(thin))
ok = compare("channel-pruned model vs the original with those channels zeroed", thin(x).detach(),
             prune.channel_masked(teacher, prune.keep_indices(teacher, CHANNELS)).eval()(x).detach(), atol=1e-4)

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
xb = torch.randn(BATCH, 3, 32, 32, device=dev)
names = list(reps)
lat = profile.measure_side_by_side({n: m.to(dev) for n, m in zip(names, (teacher, zeros, thin))}, xb, repeats=REPEATS)
t0 = lat[names[0]].median_ms
print("measured on:", machine.describe(dev))
for n in names:
    mac_red = reps[names[0]].total_macs / reps[n].total_macs
    print(f"{n:<22} {lat[n].median_ms:7.1f} ms (p10-p90 {lat[n].p10_ms:.1f}-{lat[n].p90_ms:.1f}) "
          f"speed-up {t0 / lat[n].median_ms:4.2f}x  MAC reduction {mac_red:4.2f}x")
z = t0 / lat[names[1]].median_ms
print(f"verdict: 90 % zeros run {'at the same speed (within 15 %)' if 0.87 < z < 1.15 else f'{z:.2f}x the speed'} "
      f"as the dense original; removing channels gave {t0 / lat[names[2]].median_ms:.2f}x")
bar({n: lat[n].median_ms for n in names}, ylabel=f"ms per batch of {BATCH}", title="Same MACs, same time; fewer MACs, less time");

# %% [markdown]
# ## 5 · Network slimming vs L1-norm channel pruning at equal MACs
#
# **Network slimming** (Liu et al. 2017) is document 000's third method: add $\lambda \sum |\gamma|$ over the
# BatchNorm scales to the loss; channels whose $\gamma$ is driven to zero output (almost) nothing and can be
# removed. Here, to stay within seconds, the penalised phase is one short epoch that trains only the
# BatchNorm parameters (the convs frozen); a **control** run does the same without the penalty. Slimming
# then removes the `SLIM` fraction of channels with the smallest $|\gamma|$ over the whole network; the
# control keeps *the same number of channels per layer* chosen by filter L1 norm — the same architecture, so
# equal parameters and MACs, and only the choice of channels differs. Both get their BatchNorm statistics
# re-estimated, then one epoch of fine-tuning.

# %%
show_source(prune.bn_l1_penalty)

# %%
# NBVAL_IGNORE_OUTPUT  (training runs)
def bn_phase(lam):
    m = copy.deepcopy(teacher)
    bns = {id(p) for _, bn in prune.conv_bn_pairs(m) for p in bn.parameters()}
    for p in m.parameters():
        p.requires_grad_(id(p) in bns)  # train only the BatchNorm scales and shifts
    loss = lambda mm, xx, yy: torch.nn.functional.cross_entropy(mm(xx), yy) + lam * prune.bn_l1_penalty(mm)  # noqa: E731
    train.fit(m, splits.train, epochs=1, lr=2e-2, batch_size=64, loss_fn=loss, device=dev, seed=SEED, weight_decay=0.0)
    for p in m.parameters():
        p.requires_grad_(True)
    return m


slimmed_src, control_src = bn_phase(LAMBDA), bn_phase(0.0)
slim = prune.slim_prune(slimmed_src, SLIM)
counts = prune.channel_counts(slim)
l1 = prune.prune_channels(control_src, prune.keep_indices_for_counts(control_src, counts, "l1"))
res = {}
for name, m in (("slimming (|gamma|)", slim), ("L1 filter norm", l1)):
    before = acc(prune.recalibrate_bn(m, X_cal))
    train.fit(m, splits.train, epochs=1, lr=1e-3, batch_size=64, device=dev, seed=SEED)
    res[name] = {"before fine-tune": before, "after 1 epoch": acc(m)}
macs = {n: profile.profile_model(m, (1, 3, 32, 32)).total_macs for n, m in (("slim", slim), ("l1", l1))}
small_g = sum(int((b.weight.abs() < 1e-2).sum()) for _, b in prune.conv_bn_pairs(slimmed_src))
print("measured on:", machine.describe(dev))
print(f"channels per conv (both models): {counts}; MACs {macs['slim'] / 1e6:.2f} M vs {macs['l1'] / 1e6:.2f} M")
print(f"|gamma| < 0.01 after the penalised phase: {small_g} of {sum(prune.channel_counts(teacher))} channels")
for name, r in res.items():
    print(f"{name:<20} accuracy before fine-tune {r['before fine-tune']:.3f}, after {r['after 1 epoch']:.3f}")
grouped_bar({k: {n: r[k] for n, r in res.items()} for k in ("before fine-tune", "after 1 epoch")},
            ylabel="test accuracy", title=f"{SLIM:.0%} of channels removed, equal MACs");

# %% [markdown]
# Read it: the slimming model's channels were chosen by a training signal (the penalty pushes the least
# useful scales down), the L1 model's by a static weight statistic; the printed accuracies say which choice
# kept more of the teacher. With so short a penalised phase no $\gamma$ reaches zero (count printed above), so
# this is "rank by $|\gamma|$ after a nudge"; the slimming paper trains with the penalty from the start. Note
# also where the global $|\gamma|$ ranking put the cuts (the channel counts printed above): it thins the early
# layers hard and keeps the last conv whole, a shape layer-by-layer L1 pruning would never choose.

# %% [markdown]
# ## 6 · Try it: sparsity and scope
#
# Move the **sparsity** slider (the first control): the teacher is magnitude-pruned at that sparsity with
# the chosen scope, and the bars show what fraction of each layer survives, with the test accuracy (BatchNorm
# re-estimated on 128 images, no fine-tuning) in the title.

# %%
def sparsity_panel(sparsity=0.8, scope="global"):
    mk = prune.magnitude_masks(teacher, sparsity, scope=scope)
    m = prune.remove_masks(prune.apply_masks(copy.deepcopy(teacher), mk))
    a = acc(prune.recalibrate_bn(m, X_cal[:128]), scan_set)
    bar({n.replace("features.", "f").replace(".0", ""): float(v.mean()) for n, v in mk.items()},
        ylabel="fraction of weights kept", annotate="{:.2f}",
        title=f"sparsity {sparsity:.2f} ({scope}): accuracy {a:.3f}")
    print(f"sparsity {sparsity:.2f}, scope {scope}: accuracy {a:.3f} on {N_SCAN} test images (unpruned {acc_base:.3f})")


interactive_panel(sparsity_panel, sparsity=float_slider("sparsity", 0.8, 0.0, 0.95, 0.05),
                  scope=dropdown("scope", ["global", "layer"]))

# %% [markdown]
# ## 7 · Exercises
#
# **7.1** `magnitude_masks` at sparsity 0.9 with `scope="layer"` on `Conv2d(32, 64, 3)`: how many weights stay non-zero?

# %%
answer = ...  # an int
ex.kept_weights.check(answer)

# %% [markdown]
# **7.2** The teacher's `features.4.0` (3×3, 64 → 64, 16×16 output) keeps 32 input and 32 output channels.
# How many MACs per image does it need now?

# %%
answer = ...  # an int
ex.channel_macs.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
# the reference answers, checked against the library
conv = torch.nn.Conv2d(32, 64, 3)
compare("13.kept_weights vs magnitude_masks", ex.kept_weights.solution(),
        int(prune.magnitude_masks(torch.nn.Sequential(conv), 0.9)["0"].sum()), ref_name="prune")
pruned = prune.prune_channels(teacher, [torch.arange(c // 2) for c in prune.channel_counts(teacher)])
row = next(r for r in profile.profile_model(pruned, (1, 3, 32, 32)).rows if r.name == "features.4.0")
ok = compare("13.channel_macs vs profile of a half-channel teacher", ex.channel_macs.solution(), row.macs, ref_name="profile")

# %% [markdown]
# ## Summary
# * Our global magnitude masks are identical to `torch.nn.utils.prune.global_unstructured`'s and give the
#   same logits (checked); at 90 % global sparsity the first conv keeps 64 % of its weights and the
#   classifier 76 %, while the last conv keeps 6.6 % (table in section 1).
# * A 90 %-zeros model (28,784 non-zero weights) still executes 38.63 M MACs per image, like the dense
#   original; removing half the channels by filter L1 norm leaves 9.88 M MACs (3.9× fewer) and 72,954
#   parameters, and equals the original with those channels zeroed (checked).
# * Measured on this machine (printed below): accuracy of both scopes with and without BatchNorm
#   re-estimation, the most sensitive layer, the recovery by fine-tuning, the speed of zeros vs channels,
#   and slimming vs L1 pruning.

# %%
# NBVAL_IGNORE_OUTPUT  (measured numbers of this run)
print("measured on:", machine.describe(dev))
i9 = SPARSITIES.index(0.9)
print(f"- no fine-tuning, 90 % sparsity: layer-wise {sweep['layer'][i9]:.3f}, global {sweep['global'][i9]:.3f}; "
      f"with BN re-estimated {sweep['layer, BN re-estimated'][i9]:.3f} / {sweep['global, BN re-estimated'][i9]:.3f} "
      f"(unpruned {acc_base:.3f}); most sensitive layer at 95 %: {most}")
for k, v in curves.items():
    print(f"- fine-tuning {k}: {v[0]:.3f} -> {v[-1]:.3f} in {FT_EPOCHS} epoch(s) on {N_FINETUNE} images")
print(f"- batch {BATCH}: 90 % zeros {t0 / lat[names[1]].median_ms:.2f}x the dense speed; "
      f"{CHANNELS:.0%} channels removed {t0 / lat[names[2]].median_ms:.2f}x faster for "
      f"{reps[names[0]].total_macs / reps[names[2]].total_macs:.2f}x fewer MACs")
for name, r in res.items():
    print(f"- {name}: {r['after 1 epoch']:.3f} after one epoch of fine-tuning (equal MACs)")

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | pruning | 剪枝 | removing weights or channels from a trained network |
# | unstructured / magnitude pruning | 非结构化剪枝 / 幅值剪枝 | zero individual weights with the smallest $\lvert w\rvert$ |
# | structured (channel) pruning | 结构化(通道)剪枝 | remove whole filters, so dense tensors shrink |
# | sparsity | 稀疏度 | fraction of weights that are zero |
# | mask | 掩码 | 0/1 tensor multiplied with the weight |
# | sensitivity scan | 敏感度分析 | accuracy when only one layer is pruned |
# | network slimming | 网络瘦身 | L1 penalty on BatchNorm scales, then drop small-$\gamma$ channels |
# | sparsity regularisation | 稀疏正则化 | a loss term that drives weights towards zero |
# | fine-tuning | 微调 | short training after pruning, mask held fixed |
#
# **Next:** [14 · Knowledge distillation](14_knowledge_distillation.ipynb).
