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
# 2. A per-layer sensitivity scan; document 002's "deleting redundant weights has almost no effect" tested
#    with the fine-tuning that documents 000 and 002 prescribe.
# 3. Measured: 90 % zeros vs the dense original (same time) and channel pruning (real speed-up vs MACs).
# 4. Network slimming (L1 penalty on BatchNorm scales) against the same procedure without the penalty.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 30 s (`FAST=True`: about 15 s).

# %% tags=["parameters"]
FAST = False          # fewer images, epochs and timing repeats
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU
N_TEST = 600          # test images for the fine-tuned comparisons (paired intervals)
N_SCAN = 200          # test images for the sweeps, the sensitivity scan, the curves and the widget
N_FINETUNE = 512      # training images for fine-tuning and the slimming phase
FT_EPOCHS = 2         # epochs of every fine-tune (sections 3 and 5)
SPARSITY = 0.9        # the unstructured sparsity studied in sections 2 and 4
CHANNELS = 0.5        # fraction of channels removed by channel pruning
LAMBDA = 1e-2         # weight of the L1 penalty on BatchNorm scales (network slimming)
SLIM = 0.3            # fraction of channels removed in the slimming comparison
BATCH = 16            # batch size of the latency measurements

# %%
import copy

import torch
import torch.nn.utils.prune as tprune
from IPython.display import Markdown, display
from torch.utils.data import TensorDataset

from lessons_lib import checkpoints, data, machine, profile, prune, seed_everything, stats, train
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson13 as ex
from lessons_lib.course.plotting import bar, grouped_bar, lines, use_house_style
from lessons_lib.course.widgets import dropdown, float_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
if FAST:
    N_TEST, N_SCAN, N_FINETUNE, FT_EPOCHS = 300, 100, 256, 1
REPEATS = 5 if FAST else 12
splits = data.shapes_splits(n_train=N_FINETUNE, n_val=1, n_test=N_TEST)
scan_set = TensorDataset(*(t[:N_SCAN] for t in splits.test.tensors))
teacher = checkpoints.pretrained("shapes_teacher")
acc = lambda m, d=splits.test: train.evaluate(m, d, device=dev)["acc"]  # noqa: E731


def correct(m, d=splits.test):
    """Per-image correctness (a boolean array) of model m on d: the input of stats.paired_difference."""
    return (train.predict(m, d, device=dev).argmax(1) == d.tensors[1]).numpy()


def pts(d):
    """A paired difference as 'd points (95 % CI lo to hi)'."""
    return f"{100 * d.diff:+.1f} points (95 % CI {100 * d.lo:+.1f} to {100 * d.hi:+.1f}, {d.n} images)"


X_cal = splits.train.tensors[0][:256]   # images for re-estimating BatchNorm statistics (section 2)
print("measurements below come from:", machine.describe(dev))

# %% [markdown]
# ## 1 · The claim and the formula
#
# **Claim.** Document 002 (section 2.2, pruning) argues that trained networks are over-parameterised: many
# of a trained model's weights are redundant, and removing them with a suitable method barely changes the
# final result. Document 000 (section "卷积网络的压缩方法", under pruning and sparsity constraints) lists three
# ways: remove unimportant neurons and then fine-tune, cut every connection whose weight is below a threshold
# and then fine-tune, or add a sparsity regulariser to the training loss so that some weights drift to zero
# and those zeros are what gets removed.
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
kept = {n: float(m.mean()) for n, m in masks.items()}
print(f"{'layer':<14}{'weights':>9}{'kept (global)':>15}{'kept (layer)':>14}")
for n, m in masks.items():
    print(f"{n:<14}{m.numel():>9,}{kept[n]:>15.3f}{1 - SPARSITY:>14.3f}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
order = sorted(kept, key=kept.get, reverse=True)
size = {n: m.numel() for n, m in masks.items()}
display(Markdown(
    f"Read the table: one global threshold at {SPARSITY:.0%} keeps most of `{order[0]}` "
    f"({kept[order[0]]:.0%} of {size[order[0]]:,} weights) and of `{order[1]}` ({kept[order[1]]:.0%} of "
    f"{size[order[1]]:,}), whose weights are larger in magnitude, and prunes `{order[-1]}` hardest "
    f"({kept[order[-1]]:.1%} of {size[order[-1]]:,} kept); layer-wise pruning keeps {1 - SPARSITY:.0%} of every layer."))

# %% [markdown]
# ## 2 · Layer-wise vs global, and which layers are sensitive
#
# Test accuracy of the teacher (no fine-tuning) after pruning at several sparsities with each scope — first
# as is, then after **re-estimating the BatchNorm statistics**: pruning shrinks each conv's outputs, so the
# running mean and variance stored during training no longer fit; one forward pass in train mode over 256
# training images (no labels, no weight update) replaces them. All variants are scored on the same `N_SCAN`
# test images, so two of them can be compared image by image (`stats.paired_difference`).

# %%
show_source(prune.recalibrate_bn)

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies depend on the test subset and float rounding)
SPARSITIES = [0.5, 0.8, 0.9, 0.95]
c_base = correct(teacher, scan_set)
acc_base = float(c_base.mean())
sweep, sweep_c = {}, {}
for scope in ("layer", "global"):
    for recal in (False, True):
        key = f"{scope}{', BN re-estimated' if recal else ''}"
        sweep[key], sweep_c[key] = [], []
        for s_ in SPARSITIES:
            m = prune.remove_masks(prune.apply_masks(copy.deepcopy(teacher), prune.magnitude_masks(teacher, s_, scope=scope)))
            c = correct(prune.recalibrate_bn(m, X_cal) if recal else m, scan_set)
            sweep_c[key].append(c)
            sweep[key].append(float(c.mean()))
print("measured on:", machine.describe(dev))
print(f"unpruned teacher: {acc_base:.3f} on {N_SCAN} test images")
for key, accs in sweep.items():
    print(f"{key:<26}" + "  ".join(f"{s_:.0%}: {a:.3f}" for s_, a in zip(SPARSITIES, accs)))
ax = lines([s_ * 100 for s_ in SPARSITIES], sweep, xlabel="weights zeroed (%)", ylabel="test accuracy",
           title=f"Magnitude pruning without fine-tuning ({N_SCAN} test images)")
ax.axhline(acc_base, ls="--", color="grey", lw=1);

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
def said(d, a, b):
    """The verdict of a paired difference in words, with its size."""
    word = {"A better": f"{a} better", "B better": f"{b} better"}.get(d.verdict, "cannot tell apart")
    return f"**{word}** ({pts(d)})"


gl_vs_ly = {s_: stats.paired_difference(sweep_c["global, BN re-estimated"][i], sweep_c["layer, BN re-estimated"][i])
            for i, s_ in enumerate(SPARSITIES)}
bn_gain = {s_: stats.paired_difference(sweep_c["global, BN re-estimated"][i], sweep_c["global"][i])
           for i, s_ in enumerate(SPARSITIES)}
i9 = SPARSITIES.index(SPARSITY)
display(Markdown("Read it (computed, paired over the same test images):\n\n" + "\n".join(
    [f"* global vs layer-wise (both with BatchNorm re-estimated) at {s_:.0%}: "
     f"{said(d, 'global', 'layer-wise')}" for s_, d in gl_vs_ly.items()]
    + [f"* global with vs without re-estimating BatchNorm at {s_:.0%}: {said(d, 're-estimated', 'stale')}"
       for s_, d in bn_gain.items()]
    + [f"* Without any training, {SPARSITY:.0%} zeros leave {sweep['global, BN re-estimated'][i9]:.3f} "
       f"(global, BatchNorm re-estimated) and {sweep['layer'][i9]:.3f} (layer-wise, as is) against "
       f"{acc_base:.3f} unpruned; chance is 0.10. That is not yet the setting of document 002's claim: "
       f"the documents' recipe is prune *then fine-tune*, tested in section 3."])))

# %% [markdown]
# A **sensitivity scan** prunes one layer at a time (the others untouched) and records the accuracy: the
# layers whose curve drops first deserve a lower sparsity. (No BatchNorm re-estimation here, to keep the scan
# cheap: one pruned layer shifts the statistics much less than pruning all of them.)

# %%
show_source(prune.sensitivity_scan)

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies of pruned models on a test subset)
SCAN = [0.5, 0.8, 0.95]
scan_c = []   # per-image correctness, in the order sensitivity_scan evaluates (layer by layer, sparsity by sparsity)
scan = prune.sensitivity_scan(teacher, lambda m: scan_c.append(correct(m, scan_set)) or scan_c[-1].mean(), sparsities=SCAN)
at95 = {n: scan_c[i * len(SCAN) + len(SCAN) - 1].astype(float) for i, n in enumerate(scan)}
most, most_tied = stats.best_of(at95, higher_is_better=False, paired=True)
least, least_tied = stats.best_of(at95, higher_is_better=True, paired=True)
lines([s * 100 for s in SCAN], scan, xlabel="weights of this layer zeroed (%)", ylabel="test accuracy",
      title=f"Sensitivity scan ({N_SCAN} test images)")
print(f"at 95 %: most sensitive {most} ({scan[most][-1]:.3f}; cannot be told apart from it: {', '.join(most_tied) or 'none'})")
print(f"at 95 %: least sensitive {least} ({scan[least][-1]:.3f}; cannot be told apart from it: {', '.join(least_tied) or 'none'})")

# %% [markdown]
# ## 3 · Prune, then fine-tune with the mask held fixed: document 002's claim
#
# Documents 000 and 002 describe pruning as *prune, then fine-tune*. `apply_masks` registers the mask as a
# parametrization, so the optimiser updates the surviving weights while the pruned ones stay exactly zero.
# The test of "removing the redundant weights barely changes the result": global magnitude pruning at 50 %
# and at `SPARSITY`, BatchNorm re-estimated, then `FT_EPOCHS` epoch(s) on `N_FINETUNE` training images
# (AdamW, learning rate 3e-4, cosine schedule: low enough that the same fine-tune leaves the unpruned teacher
# where it was). Each fine-tuned model is compared image by image with the
# teacher on `N_TEST` test images. A **control** gets the identical fine-tune without pruning (a mask of
# ones, BatchNorm re-estimated too), so the effect of pruning is separated from the effect of the fine-tune. "Almost no effect"
# is read as: the 95 % interval of the loss stays within `MARGIN` = 2 points. Epoch 0 of the curves is the
# pruned model after BatchNorm re-estimation (on the `N_SCAN` images).

# %%
# NBVAL_IGNORE_OUTPUT  (training curves and accuracies of fine-tuning runs)
MARGIN = 0.02
CLAIM = sorted({0.5, SPARSITY})
c_teacher = correct(teacher)
curves, c_ft = {}, {}
for s_ in [0.0] + CLAIM:
    m = prune.apply_masks(copy.deepcopy(teacher), prune.magnitude_masks(teacher, s_, scope="global"))
    start = acc(prune.recalibrate_bn(m, X_cal), scan_set)
    hist = train.fit(m, splits.train, val=scan_set, epochs=FT_EPOCHS, lr=3e-4, batch_size=64, device=dev, seed=SEED)
    name = f"global {s_:.0%}" if s_ else "control: no pruning"
    curves[name] = [start] + hist.val_acc
    c_ft[s_] = correct(m)
    zeros_left = prune.sparsity_of(prune.remove_masks(m))["total"]
    print(f"{name:<20} {start:.3f} -> " + " -> ".join(f"{a:.3f}" for a in hist.val_acc)
          + f" ({N_SCAN} images) after {FT_EPOCHS} epoch(s) on {N_FINETUNE} images; zeros still {zeros_left:.3f} of "
          f"all weights; {c_ft[s_].mean():.3f} on {N_TEST} test images")
vs_teacher = {s_: stats.paired_difference(c_ft[s_], c_teacher) for s_ in CLAIM}
vs_control = {s_: stats.paired_difference(c_ft[s_], c_ft[0.0]) for s_ in CLAIM}
print(f"teacher: {c_teacher.mean():.3f} on {N_TEST} test images")
for s_ in CLAIM:
    print(vs_teacher[s_].text(f"pruned {s_:.0%} + fine-tune vs teacher", "pruned", "teacher"))
    print(vs_control[s_].text(f"pruned {s_:.0%} + fine-tune vs control", "pruned", "control"))
ax = lines(range(FT_EPOCHS + 1), curves, xlabel="fine-tuning epoch", ylabel=f"test accuracy ({N_SCAN} images)",
           title="Recovering from global magnitude pruning")
ax.axhline(acc_base, ls="--", color="grey", lw=1);

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
holds = [s_ for s_ in CLAIM if vs_teacher[s_].lo > -MARGIN]     # loss below MARGIN with 95 % confidence
fails = [s_ for s_ in CLAIM if vs_teacher[s_].hi < -MARGIN]     # loss above MARGIN with 95 % confidence
rows = "; ".join(f"{s_:.0%} zeros: {said(vs_teacher[s_], 'pruned', 'teacher')}, against the equally fine-tuned "
                 f"control {said(vs_control[s_], 'pruned', 'control')}" for s_ in CLAIM)
if holds:
    head = (f"> **Confirmed (document 002, section 2.2), with the fine-tuning of document 000.** Up to "
            f"{max(holds):.0%} of the weights removed (global magnitude pruning, then {FT_EPOCHS} epoch(s) on "
            f"{N_FINETUNE} images), the loss against the teacher stays within {100 * MARGIN:.0f} points with 95 % "
            f"confidence. ")
    tail = "" if max(holds) == max(CLAIM) else (
        f" The document names no sparsity: at {max(CLAIM):.0%} this short fine-tune does "
        + ("**not** recover the accuracy (a loss beyond the margin)" if max(CLAIM) in fails else "not settle it")
        + "; longer fine-tuning or gradual pruning (several prune/fine-tune rounds) is the usual remedy, untested here.")
elif fails and len(fails) == len(CLAIM):
    head = (f"> **Erratum (document 002, section 2.2).** Even with the fine-tuning of document 000 "
            f"({FT_EPOCHS} epoch(s) on {N_FINETUNE} images), every sparsity tried here loses more than "
            f"{100 * MARGIN:.0f} points with 95 % confidence. ")
    tail = ""
else:
    head = (f"> **Note (document 002, section 2.2).** At this budget ({N_TEST} test images, {FT_EPOCHS} epoch(s) of "
            f"fine-tuning) the data cannot decide whether the loss stays within {100 * MARGIN:.0f} points. ")
    tail = ""
display(Markdown(head + rows + "." + tail))

# %% [markdown]
# ## 4 · Zeros are not speed: dense kernels vs removed channels
#
# A convolution kernel for dense tensors multiplies every weight, zero or not; 90 % zeros change neither the
# MAC count it executes nor the size of the weight tensors it reads. Removing whole **channels** instead gives
# a smaller dense model. `l1_channel_prune` (Li et al. 2017) drops the filters with the smallest L1 norm
# $\sum|w|$ and cuts the next layer's inputs to match.

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
print("channels per conv after channel pruning:", prune.channel_counts(thin),
      f"({sum(prune.channel_counts(teacher)) - sum(prune.channel_counts(thin))} of {sum(prune.channel_counts(teacher))} removed)")
ok = compare("channel-pruned model vs the original with those channels zeroed", thin(x).detach(),
             prune.channel_masked(teacher, prune.keep_indices(teacher, CHANNELS)).eval()(x).detach(), atol=1e-4)

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
xb = torch.randn(BATCH, 3, 32, 32, device=dev)
names = list(reps)
lat = profile.measure_side_by_side({n: m.to(dev) for n, m in zip(names, (teacher, zeros, thin))}, xb, repeats=REPEATS)
t0 = lat[names[0]].median_ms
t_vs = {n: stats.verdict(lat[n].times_ms, lat[names[0]].times_ms, names=(n, names[0]), higher_is_better=False,
                         paired=True, unit="ms") for n in names[1:]}
c_thin = correct(prune.recalibrate_bn(copy.deepcopy(thin), X_cal))   # no fine-tuning (section 5 fine-tunes)
d_thin = stats.paired_difference(c_thin, c_teacher)
print("measured on:", machine.describe(dev), f"| {REPEATS} interleaved rounds, batch {BATCH}")
for n in names:
    mac_red = reps[names[0]].total_macs / reps[n].total_macs
    print(f"{n:<22} {lat[n].median_ms:7.1f} ms (p10-p90 {lat[n].p10_ms:.1f}-{lat[n].p90_ms:.1f}) "
          f"speed-up {t0 / lat[n].median_ms:4.2f}x  MAC reduction {mac_red:4.2f}x")
for v in t_vs.values():
    print(v.text())
print(d_thin.text(f"{CHANNELS:.0%} channels removed (BN re-estimated, not fine-tuned) vs teacher", "pruned", "teacher"))
bar({n: lat[n].median_ms for n in names}, ylabel=f"ms per batch of {BATCH}", title="Same MACs, same time; fewer MACs, less time");

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
def timed(n):
    v = t_vs[n]
    word = {n: "is **faster than**", names[0]: "is **slower than**"}.get(v.better, "**cannot be told apart** from")
    return (f"{word} the dense original ({t0 / lat[n].median_ms:.2f}× its speed from the medians; mean difference "
            f"{v.diff:+.2f} ms per batch, paired 95 % CI {v.lo:+.2f} to {v.hi:+.2f} ms)")


display(Markdown(
    f"Read it ({REPEATS} interleaved rounds, batch {BATCH}): the {SPARSITY:.0%}-zeros model {timed(names[1])}; "
    f"the {CHANNELS:.0%}-channels model, with {reps[names[0]].total_macs / reps[names[2]].total_macs:.2f}× fewer MACs, "
    f"{timed(names[2])}. Its accuracy without any fine-tuning (BatchNorm re-estimated) is {c_thin.mean():.3f} "
    f"against {c_teacher.mean():.3f}: {said(d_thin, 'pruned', 'teacher')}; removing channels buys time, and the "
    f"accuracy has to be bought back by fine-tuning (section 5)."))

# %% [markdown]
# ## 5 · Network slimming: the penalty against the same procedure without it
#
# **Network slimming** (Liu et al. 2017, "Learning Efficient Convolutional Networks through Network
# Slimming") is document 000's third method applied to channels: add $\lambda \sum |\gamma|$ over the
# BatchNorm scales to the loss; a channel whose $\gamma$ is driven to zero outputs (almost) a constant and can
# be removed. Then rank all channels of the network by $|\gamma|$, remove the smallest `SLIM` fraction, and
# fine-tune. The **control** is the same procedure with $\lambda = 0$: the same phase, the same $|\gamma|$
# ranking, the same number of channels removed, the same fine-tune — one change, the penalty.
#
# Two departures from the paper, to stay within seconds: it trains the whole network with the penalty from
# the start, while here a pretrained teacher gets one short penalised phase (one epoch on `N_FINETUNE`
# images, batch 16, AdamW at learning rate 0.1) that trains only the BatchNorm scales and shifts, the convs
# frozen; and the fine-tune is `FT_EPOCHS` epoch(s) at learning rate 1e-3 (these models start far below the
# teacher, unlike section 3's). With the global ranking the two runs may keep different
# channel counts per layer (so different MACs): that is the procedure's own outcome, and both are timed.

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
    train.fit(m, splits.train, epochs=1, lr=0.1, batch_size=16, loss_fn=loss, device=dev, seed=SEED, weight_decay=0.0)
    for p in m.parameters():
        p.requires_grad_(True)
    return m


n_all = sum(prune.channel_counts(teacher))
runs = {f"slimming (lambda={LAMBDA:g})": LAMBDA, "control (lambda=0)": 0.0}
res, pruned_models = {}, {}
for name, lam in runs.items():
    src = bn_phase(lam)
    g = torch.cat([b.weight.detach().abs() for _, b in prune.conv_bn_pairs(src)])
    m = prune.slim_prune(src, SLIM)
    removed = n_all - sum(prune.channel_counts(m))
    c_before = correct(prune.recalibrate_bn(m, X_cal))
    train.fit(m, splits.train, epochs=FT_EPOCHS, lr=1e-3, batch_size=64, device=dev, seed=SEED)
    pruned_models[name] = m
    res[name] = dict(lam=lam, near_zero=int((g < 0.05).sum()), cut=float(g.sort().values[removed - 1]), removed=removed,
                     counts=prune.channel_counts(m), before=c_before, after=correct(m),
                     macs=profile.profile_model(m, (1, 3, 32, 32)).total_macs)
print("measured on:", machine.describe(dev))
g_t = torch.cat([b.weight.detach().abs() for _, b in prune.conv_bn_pairs(teacher)])
print(f"teacher: {n_all} channels, |gamma| {float(g_t.min()):.2f} to {float(g_t.max()):.2f}, accuracy {c_teacher.mean():.3f} on {N_TEST} test images, {reps[names[0]].total_macs / 1e6:.2f} M MACs")
for name, r in res.items():
    print(f"{name}: |gamma| < 0.05 for {r['near_zero']} of {n_all} channels; removed {r['removed']} of {n_all} "
          f"(intended {round(SLIM * n_all)}; the largest removed |gamma| is {r['cut']:.3f}); channels per conv {r['counts']}, "
          f"{r['macs'] / 1e6:.2f} M MACs; accuracy {r['before'].mean():.3f} before and {r['after'].mean():.3f} after "
          f"{FT_EPOCHS} fine-tuning epoch(s)")
(sl, sr), (cl, cr) = res.items()
d_before = stats.paired_difference(sr["before"], cr["before"])
d_after = stats.paired_difference(sr["after"], cr["after"])
d_teach = {n: stats.paired_difference(r["after"], c_teacher) for n, r in res.items()}
print(d_before.text("slimming vs control, pruned, before fine-tuning", "slimming", "control"))
print(d_after.text(f"slimming vs control, after {FT_EPOCHS} fine-tuning epoch(s)", "slimming", "control"))
for n, d in d_teach.items():
    print(d.text(f"{n} after fine-tuning vs teacher", n.split(" (")[0], "teacher"))
grouped_bar({k: {n: float(r[k].mean()) for n, r in res.items()} for k in ("before", "after")},
            ylabel="test accuracy", title=f"{SLIM:.0%} of channels removed by |gamma| (before / after fine-tuning)");

# %% [markdown]
# **Measured here.** The teacher and both channel-pruned, fine-tuned models, timed in interleaved rounds on
# one batch of `BATCH` images; their accuracies stand beside the speed-ups.

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
lat5 = profile.measure_side_by_side({"teacher": teacher.to(dev), **{n: m.to(dev) for n, m in pruned_models.items()}},
                                    xb, repeats=REPEATS)
sp_vs = {n: stats.verdict(lat5[n].times_ms, lat5["teacher"].times_ms, names=(n, "teacher"), higher_is_better=False,
                          paired=True, unit="ms") for n in pruned_models}
print("measured on:", machine.describe(dev), f"| {REPEATS} interleaved rounds, batch {BATCH}")
print(f"{'model':<26}{'ms':>8}{'speed-up':>10}{'MAC reduction':>15}{'accuracy':>10}")
print(f"{'teacher':<26}{lat5['teacher'].median_ms:>8.1f}{1:>9.2f}x{1:>14.2f}x{c_teacher.mean():>10.3f}")
for n, r in res.items():
    print(f"{n:<26}{lat5[n].median_ms:>8.1f}{lat5['teacher'].median_ms / lat5[n].median_ms:>9.2f}x"
          f"{reps[names[0]].total_macs / r['macs']:>14.2f}x{r['after'].mean():>10.3f}")
for v in sp_vs.values():
    print(v.text())

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
def speed(n):
    v = sp_vs[n]
    word = {n: "faster than", "teacher": "slower than"}.get(v.better, "cannot be told apart from")
    return (f"{lat5['teacher'].median_ms / lat5[n].median_ms:.2f}× the teacher's speed from the medians ({word} it: "
            f"{v.diff:+.2f} ms per batch, paired 95 % CI {v.lo:+.2f} to {v.hi:+.2f})")


display(Markdown(
    f"Read it: the penalty left {sr['near_zero']} of {n_all} scales below 0.05 (the control: {cr['near_zero']}), and the "
    f"largest removed $|\\gamma|$ was {sr['cut']:.3f} against {cr['cut']:.3f} without it; both runs removed "
    f"{sr['removed']} and {cr['removed']} of {n_all} channels. Right after pruning, slimming vs the control: "
    f"{said(d_before, 'slimming', 'control')}; after {FT_EPOCHS} fine-tuning epoch(s): {said(d_after, 'slimming', 'control')}. "
    f"Against the unpruned teacher ({c_teacher.mean():.3f}), the slimmed model at {sr['after'].mean():.3f} is "
    f"{said(d_teach[sl], 'pruned', 'teacher')} and runs at {speed(sl)}; the control at {cr['after'].mean():.3f} "
    f"runs at {speed(cl)}. The global ranking put the cuts where the scales were smallest: channels per conv "
    f"{sr['counts']} (slimming) and {cr['counts']} (control), out of {prune.channel_counts(teacher)}."))

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

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
display(Markdown("\n".join([
    f"* Our global magnitude masks are identical to `torch.nn.utils.prune.global_unstructured`'s and give the "
    f"same logits (checked); at {SPARSITY:.0%} global sparsity `{order[0]}` keeps {kept[order[0]]:.0%} of its "
    f"weights and `{order[-1]}` {kept[order[-1]]:.1%} (section 1).",
    f"* Without fine-tuning, {SPARSITY:.0%} zeros leave {sweep['layer'][i9]:.3f} (layer-wise) / "
    f"{sweep['global'][i9]:.3f} (global), and {sweep['layer, BN re-estimated'][i9]:.3f} / "
    f"{sweep['global, BN re-estimated'][i9]:.3f} with BatchNorm re-estimated (unpruned {acc_base:.3f}, "
    f"{N_SCAN} images); global vs layer-wise there: {said(gl_vs_ly[SPARSITY], 'global', 'layer-wise')}. "
    f"Most sensitive layer at 95 %: `{most}`" + (f" (tied with {', '.join(most_tied)})" if most_tied else "") + ".",
    f"* Document 002's claim, tested with prune → fine-tune ({FT_EPOCHS} epoch(s), {N_FINETUNE} images): "
    + "; ".join(f"{s_:.0%} zeros {c_ft[s_].mean():.3f} vs teacher {c_teacher.mean():.3f}, "
                f"{said(vs_teacher[s_], 'pruned', 'teacher')}" for s_ in CLAIM)
    + (f" — within {100 * MARGIN:.0f} points up to {max(holds):.0%}." if holds else "."),
    f"* A {SPARSITY:.0%}-zeros model ({nonzero:,} non-zero weights) still executes "
    f"{reps[names[1]].total_macs / 1e6:.2f} M MACs per image and {timed(names[1])}; removing "
    f"{CHANNELS:.0%} of the channels by filter L1 norm leaves {reps[names[2]].total_macs / 1e6:.2f} M MACs and "
    f"{timed(names[2])}, at {c_thin.mean():.3f} accuracy before any fine-tuning.",
    f"* Network slimming ({SLIM:.0%} of {n_all} channels removed by $|\\gamma|$, {FT_EPOCHS} fine-tuning epoch(s)): "
    f"{sr['after'].mean():.3f} with the penalty vs {cr['after'].mean():.3f} without it "
    f"({said(d_after, 'slimming', 'control')}); the slimmed model runs at {speed(sl)}, teacher {c_teacher.mean():.3f}.",
    f"* Measured on: {machine.describe(dev)}.",
])))

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
