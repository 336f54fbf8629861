# %% [markdown]
# # 12 · Low-rank factorisation with the SVD
#
# **After this lesson you can** read a trained layer's singular-value spectrum, replace a convolution
# by two thinner ones at a chosen rank, predict the weight error before you do it, and measure what the
# factorisation buys (parameters, MACs, milliseconds) and costs (accuracy, recovered by a short fine-tune).
#
# **Goals**
# 1. Eckart–Young: the best rank-$r$ approximation and its error from the discarded singular values.
# 2. The spectra of the trained teacher's layers: how much energy the top ranks hold.
# 3. Rank vs reconstruction error vs parameters vs measured latency of one layer, side by side.
# 4. Factorise every conv at an energy fraction: accuracy before and after a short fine-tune.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 15 s (`FAST=True`: about 10 s).

# %% tags=["parameters"]
FAST = False          # fewer test images, timing repeats and fine-tuning images
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU
N_TEST = 600          # test images for accuracies
N_FINETUNE = 1024     # training images for the short fine-tune
FT_EPOCHS = 1         # fine-tuning epochs
ENERGY = 0.9          # fraction of each layer's spectral energy to keep
LAYER = "features.7.0"  # the conv studied in sections 3 and 5 (128 -> 128 channels, 3x3, 8x8 map)
BATCH = 64            # batch size of the latency measurements

# %%
import copy

import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from lessons_lib import checkpoints, data, lowrank, machine, profile, seed_everything, stats, train
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson12 as ex
from lessons_lib.course.plotting import lines, use_house_style, xy_series
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
if FAST:
    N_TEST, N_FINETUNE = 400, 512
REPEATS = 5 if FAST else 15
splits = data.shapes_splits(n_train=N_FINETUNE, n_val=1, n_test=N_TEST)
teacher = checkpoints.pretrained("shapes_teacher")
print("measurements below come from:", machine.describe(dev))

# %% [markdown]
# ## 1 · The claim and the formula
#
# **Claim.** Document 000 lists low-rank approximation among the ways to compress a CNN: write a weight
# matrix as a product of smaller matrices; when the rank is small, storage and computation drop a lot.
# It names the SVD as the tool.
#
# **Formula.** Reshape a conv weight to $W \in \mathbb{R}^{m \times n}$ ($m$ = out channels, $n$ = in
# channels × $k_h$ × $k_w$) and take its SVD $W = U S V^\top$ with singular values $s_1 \ge s_2 \ge \dots$.
# Keeping the $r$ largest gives $W_r = U_r S_r V_r^\top$, the best rank-$r$ approximation (Eckart–Young), with
# $$\lVert W - W_r \rVert_F = \sqrt{\textstyle\sum_{i>r} s_i^2}.$$
# As two layers, `A = U_r √S_r` ($m \times r$) and `B = √S_r V_rᵀ` ($r \times n$): the first conv maps the
# input to $r$ channels with the full $k_h \times k_w$ kernel, the second is a 1×1 conv back to $m$ channels.
# Weights and MACs per output position drop from $m n$ to $r (m + n)$, a saving only while $r < mn/(m+n)$.

# %%
show_source(lowrank.low_rank)
show_source(lowrank.factorize_conv)

# %% [markdown]
# ## 2 · The spectra of the trained teacher
#
# How fast do the singular values of a *trained* layer fall? The figure shows each conv's cumulative
# energy $\sum_{i \le r} s_i^2 / \sum_i s_i^2$ against the rank as a fraction of the full rank.

# %%
# NBVAL_IGNORE_OUTPUT  (figure)
convs = {n: m for n, m in teacher.named_modules() if isinstance(m, torch.nn.Conv2d)}
spectra = {n: lowrank.singular_values(m.weight) for n, m in convs.items()}
curves = {}
for n, s in spectra.items():
    e = s.double().pow(2).cumsum(0) / s.double().pow(2).sum()
    curves[n] = ([(i + 1) / len(s) for i in range(len(s))], e.tolist())
ax = xy_series(curves, xlabel="rank / full rank", ylabel="energy kept",
               title="Cumulative spectral energy of the teacher's convs")
ax.axhline(ENERGY, ls="--", color="grey", lw=1);

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'layer':<14}{'W (m x n)':>12}{'full rank':>10}{'r@50%':>7}{'r@90%':>7}{'r@99%':>7}")
for n, s in spectra.items():
    m_, n_ = convs[n].weight.shape[0], convs[n].weight[0].numel()
    r = [lowrank.rank_for_energy(s, f) for f in (0.5, 0.9, 0.99)]
    print(f"{n:<14}{f'{m_} x {n_}':>12}{len(s):>10}{r[0]:>7}{r[1]:>7}{r[2]:>7}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
frac = {f: {n: lowrank.rank_for_energy(sv, f) / len(sv) for n, sv in spectra.items()} for f in (0.5, 0.9)}
lo_hi = {f: (min(d, key=d.get), max(d, key=d.get)) for f, d in frac.items()}
display(Markdown(
    "Read it (from the table): half the energy needs between "
    f"{frac[0.5][lo_hi[0.5][0]]:.0%} (`{lo_hi[0.5][0]}`) and {frac[0.5][lo_hi[0.5][1]]:.0%} (`{lo_hi[0.5][1]}`) of "
    f"a layer's full rank, 90 % between {frac[0.9][lo_hi[0.9][0]]:.0%} (`{lo_hi[0.9][0]}`) and "
    f"{frac[0.9][lo_hi[0.9][1]]:.0%} (`{lo_hi[0.9][1]}`). The spectra fall, but a trained conv is far from rank "
    "one or two: keeping most of its energy keeps a large share of its ranks, which is why factorisation alone "
    "costs accuracy and is usually followed by fine-tuning (section 5 measures both)."))

# %% [markdown]
# ## 3 · One layer: rank vs error vs parameters vs time
#
# Take `LAYER` (128 → 128 channels, 3×3, on an 8×8 map). For several ranks: the measured
# $\lVert W - AB\rVert_F$ against the prediction from the discarded singular values, the weights of the two
# new convs, and their MACs.

# %%
# NBVAL_CHECK_OUTPUT
conv = teacher.get_submodule(LAYER)
W = conv.weight.detach()
m_, n_ = W.shape[0], W[0].numel()
s = spectra[LAYER]
RANKS = [4, 8, 16, 32, 64, 96, 115, 128]
out_hw = 8 * 8
rows = {}
for r in RANKS:
    A, B = lowrank.low_rank(W.reshape(m_, n_), r)
    measured = float(torch.linalg.matrix_norm((W.reshape(m_, n_) - A @ B).double()))
    predicted = lowrank.predicted_error(W, r)
    params = sum(p.numel() for p in lowrank.factorize_conv(conv, r).parameters())
    rows[r] = dict(err=measured / float(W.norm()), params=params, macs=params * out_hw, ok=abs(measured - predicted) <= 1e-3 * float(W.norm()))
    print(f"rank {r:>3}: relative error {rows[r]['err']:.3f}, predicted = measured: {rows[r]['ok']}, "
          f"weights {params:>7,} ({params / W.numel():.2f} of {W.numel():,}), MACs {rows[r]['macs'] / 1e6:.2f} M")
print(f"break-even rank m*n/(m+n) = {m_ * n_ / (m_ + n_):.1f}: above it the pair has more weights than the original")

# %% [markdown]
# **Check against torch.** The factorised pair must compute exactly the convolution with $W_r$, which we
# build with `torch.linalg.svd` and run with `F.conv2d`; at full rank it must equal the original layer.

# %%
# NBVAL_CHECK_OUTPUT
x = torch.randn(4, 128, 8, 8)
U, S, Vh = torch.linalg.svd(W.reshape(m_, n_).double(), full_matrices=False)
W16 = (U[:, :16] * S[:16] @ Vh[:16]).float().reshape_as(W)
compare("rank-16 pair vs F.conv2d with W_16", lowrank.factorize_conv(conv, 16)(x).detach(),
        F.conv2d(x, W16, padding=1), ref_name="torch", atol=1e-4)
ok = compare("full-rank pair vs original conv", lowrank.factorize_conv(conv, 128)(x).detach(), conv(x).detach(),
        ref_name="torch", atol=1e-4)

# %% [markdown]
# **Measured here.** The original conv and its factorised versions, timed in interleaved rounds on the same
# batch of `BATCH` feature maps, so a change in machine load hits all alike.

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
xb = torch.randn(BATCH, 128, 8, 8, device=dev)
cands = {"original": conv.to(dev)}
cands.update({f"rank {r}": lowrank.factorize_conv(conv, r).to(dev) for r in RANKS if r != 115})
lat = profile.measure_side_by_side(cands, xb, warmup=3, repeats=2 * REPEATS)
print("measured on:", machine.describe(dev))
t0 = lat["original"].median_ms
print(f"original: {t0:.3f} ms for a batch of {BATCH} ({2 * REPEATS} interleaved rounds)")
rs = [r for r in RANKS if r != 115]
mac_frac = {r: rows[r]["macs"] / (W.numel() * out_hw) for r in rs}
# per round: the pair against the original (is it faster?) and against the original's time scaled by the MAC
# fraction (is it as fast as its MACs predict?); both paired over the interleaved rounds
vs_orig = {r: stats.verdict(lat[f"rank {r}"].times_ms, lat["original"].times_ms, names=(f"rank {r}", "original"),
                            higher_is_better=False, paired=True, unit="ms") for r in rs}
vs_macs = {r: stats.verdict(lat[f"rank {r}"].times_ms, [t * mac_frac[r] for t in lat["original"].times_ms],
                            names=(f"rank {r}", "MAC prediction"), higher_is_better=False, paired=True, unit="ms")
           for r in rs}
for r in rs:
    t = lat[f"rank {r}"].median_ms
    print(f"rank {r:>3}: MACs / original {mac_frac[r]:.2f}, time / original {t / t0:.2f}  (speed-up {t0 / t:.2f}x vs "
          f"MAC reduction {1 / mac_frac[r]:.2f}x) | vs original: {vs_orig[r].verdict} | vs MAC prediction: {vs_macs[r].verdict}")

# %%
# NBVAL_IGNORE_OUTPUT  (figure of the timings above)
ax = lines(rs, {"relative weight error": [rows[r]["err"] for r in rs],
                "weights / original": [rows[r]["params"] / W.numel() for r in rs],
                "latency / original (measured)": [lat[f"rank {r}"].median_ms / t0 for r in rs]},
           xlabel="rank r", title=f"{LAYER}: error falls, cost rises with the rank")
ax.axhline(1.0, ls=":", color="grey", lw=1);

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
faster = [r for r in rs if vs_orig[r].better == f"rank {r}"]
slower = [r for r in rs if vs_orig[r].better == "original"]
short = [r for r in rs if vs_macs[r].better == "MAC prediction"]
beyond = [r for r in rs if vs_macs[r].better == f"rank {r}"]
fmt = lambda rr: ", ".join(map(str, rr)) or "none"  # noqa: E731
display(Markdown(
    "Read it: the error curve is the square root of the spectrum's tail and the weight curve is the straight line "
    "$r(m+n)/(mn)$ crossing 1 at the break-even rank. The measured time (paired over "
    f"{2 * REPEATS} interleaved rounds; a t interval on the mean, so one slow round widens it): ranks where the pair "
    f"is faster than the original: {fmt(faster)}; slower: {fmt(slower)}; the rest not told apart. Against the time its "
    f"MACs predict (the original's time × the MAC fraction), ranks where it is slower: {fmt(short)}; faster: "
    f"{fmt(beyond)}. Where it falls short, the usual "
    "reasons are that two small convolutions pay two kernel calls and write an extra intermediate tensor, and small "
    "matrix products reach a lower fraction of peak throughput."))

# %% [markdown]
# ## 4 · Two ways to split a k×k kernel
#
# `mode="channel"` keeps the 3×3 kernel and squeezes the channels through a bottleneck of $r$;
# `mode="spatial"` splits the kernel into a 3×1 conv to $r$ channels followed by a 1×3 conv (Jaderberg et
# al. 2014; document 004 uses 5×1 + 1×5 by design). At the *same number of weights*, which approximates this
# trained layer better?

# %%
# NBVAL_CHECK_OUTPUT
i_, kh, kw = 128, 3, 3
M = W.permute(1, 2, 0, 3).reshape(i_ * kh, m_ * kw)        # W[o, i, y, x] arranged as M[(i, y), (o, x)]
s_sp = torch.linalg.svdvals(M.double())
for rc in (16, 32, 64):
    rs_ = round(rc * (i_ * kh * kw + m_) / (i_ * kh + m_ * kw))       # spatial rank with about equal weights
    n_c = sum(p.numel() for p in lowrank.factorize_conv(conv, rc, "channel").parameters())
    n_s = sum(p.numel() for p in lowrank.factorize_conv(conv, rs_, "spatial").parameters())
    e_c = lowrank.predicted_error(W, rc) / float(W.norm())
    e_s = float(s_sp[rs_:].pow(2).sum().sqrt()) / float(W.norm())
    print(f"channel rank {rc:>2} ({n_c:,} weights): relative weight error {e_c:.3f} | "
          f"spatial rank {rs_:>3} ({n_s:,} weights): {e_s:.3f} -> better here: {'channel' if e_c < e_s else 'spatial'}")
# check: the spatial pair computes the convolution with the kernel rebuilt from the rank-r SVD of M
U2, S2, V2 = torch.linalg.svd(M.double(), full_matrices=False)
r = 40
Ms = (U2[:, :r] * S2[:r] @ V2[:r]).float().reshape(i_, kh, m_, kw).permute(2, 0, 1, 3)
ok = compare(f"spatial rank-{r} pair vs F.conv2d with the rebuilt kernel", lowrank.factorize_conv(conv, r, "spatial")(x).detach(),
        F.conv2d(x, Ms, padding=1), ref_name="torch", atol=1e-4)

# %% [markdown]
# ## 5 · The whole teacher at an energy fraction
#
# Factorise every conv at the rank that keeps `ENERGY` of its spectral energy (layers where that would not
# save weights stay as they are), then fine-tune briefly. Parameters and MACs come from
# `lessons_lib.profile`; the latencies are measured side by side on a batch of `BATCH` images.

# %%
show_source(lowrank.factorize_convs)

# %%
# NBVAL_CHECK_OUTPUT
small, ranks = lowrank.factorize_convs(teacher, ENERGY)
rep_t, rep_s = profile.profile_model(teacher, (1, 3, 32, 32)), profile.profile_model(small, (1, 3, 32, 32))
print("ranks:", ranks)
print(f"parameters {rep_t.total_params:,} -> {rep_s.total_params:,} ({rep_s.total_params / rep_t.total_params:.2f}x)")
print(f"MACs per image {rep_t.total_macs / 1e6:.2f} M -> {rep_s.total_macs / 1e6:.2f} M "
      f"(reduction {rep_t.total_macs / rep_s.total_macs:.2f}x)")

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies of a fine-tuning run and timings vary with the machine)
correct = lambda m: (train.predict(m, splits.test, device=dev).argmax(1) == splits.test.tensors[1]).numpy()  # noqa: E731
c0, c1 = correct(teacher), correct(small)
tuned = lowrank.factorize_convs(teacher, ENERGY)[0]
train.fit(tuned, splits.train, epochs=FT_EPOCHS, lr=3e-4, batch_size=64, device=dev, seed=SEED)
c2 = correct(tuned)
control = copy.deepcopy(teacher)  # the control: the same fine-tune, without factorising (one change only)
train.fit(control, splits.train, epochs=FT_EPOCHS, lr=3e-4, batch_size=64, device=dev, seed=SEED)
c3 = correct(control)
acc0, acc1, acc2, acc3 = (float(c.mean()) for c in (c0, c1, c2, c3))
d_before, d_after, d_gain = (stats.paired_difference(a, b) for a, b in ((c1, c0), (c2, c0), (c2, c1)))
d_control = stats.paired_difference(c2, c3)
xb = torch.randn(BATCH // 4, 3, 32, 32, device=dev)
lat_m = profile.measure_side_by_side({"teacher": teacher.to(dev), "factorised": tuned.to(dev)}, xb, repeats=REPEATS)
speed = lat_m["teacher"].median_ms / lat_m["factorised"].median_ms
mac_red = rep_t.total_macs / rep_s.total_macs
v_time = stats.verdict(lat_m["factorised"].times_ms, lat_m["teacher"].times_ms, names=("factorised", "teacher"),
                       higher_is_better=False, paired=True, unit="ms")
print("measured on:", machine.describe(dev), f"| {REPEATS} interleaved rounds")
print(f"test accuracy ({N_TEST} images): teacher {acc0:.3f}, factorised at {ENERGY:.0%} energy {acc1:.3f}, "
      f"after {FT_EPOCHS} epoch(s) on {N_FINETUNE} images {acc2:.3f}; the teacher after the same fine-tune {acc3:.3f}")
print(d_before.text("factorised vs teacher, no fine-tuning", "factorised", "teacher"))
print(d_after.text("factorised + fine-tune vs teacher", "factorised", "teacher"))
print(d_gain.text("fine-tuned vs not", "fine-tuned", "not fine-tuned"))
print(d_control.text("factorised + fine-tune vs teacher + the same fine-tune (control)", "factorised", "control"))
print(f"latency (batch {BATCH // 4}): teacher {lat_m['teacher'].median_ms:.1f} ms, factorised {lat_m['factorised'].median_ms:.1f} ms "
      f"-> speed-up {speed:.2f}x for a MAC reduction of {mac_red:.2f}x")
print(v_time.text())

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
def said(d, a, b):
    """A paired accuracy difference in words, with its size and interval."""
    word = {"A better": f"{a} better", "B better": f"{b} better"}.get(d.verdict, "cannot tell apart")
    return f"**{word}** ({100 * d.diff:+.1f} points, 95 % CI {100 * d.lo:+.1f} to {100 * d.hi:+.1f}, {d.n} images)"


t_word = {"factorised": "**faster**", "teacher": "**slower**"}.get(v_time.better, "**not told apart** from the teacher")
display(Markdown(
    f"Read it: factorising every conv at {ENERGY:.0%} energy, before fine-tuning vs the teacher: "
    f"{said(d_before, 'factorised', 'teacher')}; after {FT_EPOCHS} epoch(s) on {N_FINETUNE} images: "
    f"{said(d_after, 'factorised', 'teacher')}; against the control (the teacher given the same fine-tune, "
    f"{acc3:.3f}): {said(d_control, 'factorised', 'control')}. In time ({REPEATS} interleaved rounds, batch {BATCH // 4}) the "
    f"factorised model is {t_word} ({speed:.2f}× from the medians; mean difference {v_time.diff:+.2f} ms, paired "
    f"95 % CI {v_time.lo:+.2f} to {v_time.hi:+.2f}) for {mac_red:.2f}× fewer MACs.\n\n"
    f"> **Note (document 000).** The document says a low-rank product cuts storage and computation a lot when the "
    f"rank is small. The storage part holds as counted ({rep_t.total_params:,} → {rep_s.total_params:,} "
    f"parameters here), but the rank a trained conv needs to keep {ENERGY:.0%} of its energy is not small "
    f"(section 2), so the MACs fell only {mac_red:.2f}×, and the measured time is what decides: "
    f"{speed:.2f}× here."))

# %% [markdown]
# ## 6 · Try it: the rank of one layer
#
# Move the **rank** slider (the first control) for `LAYER`. The panel shows the spectrum with the kept part
# shaded, and prints the relative weight error, the weights, and the teacher's test accuracy with only that
# layer factorised. The layer's inputs were computed once, so each move only reruns the last block.

# %%
with torch.no_grad():
    teacher.cpu()
    upto = int(LAYER.split(".")[1])
    feats_in = teacher.features[:upto](splits.test.tensors[0][:500])
y_w = splits.test.tensors[1][:500]
block = teacher.features[upto]


def rank_panel(rank=32, mode="channel"):
    pair = lowrank.factorize_conv(block[0], rank, mode)
    with torch.no_grad():
        h = block[2](block[1](pair(feats_in)))
        acc = float((teacher.classifier(teacher.pool(h).flatten(1)).argmax(1) == y_w).float().mean())
        err = float((pair(feats_in[:8]) - block[0](feats_in[:8])).norm() / block[0](feats_in[:8]).norm())
    n_w = sum(p.numel() for p in pair.parameters())
    ax = lines(range(1, len(s) + 1), {"singular values": s.tolist()}, marker="", xlabel="index i", ylabel="s_i",
               title=f"{LAYER}, {mode} rank {rank}: weights {n_w / W.numel():.2f}x, accuracy {acc:.3f}")
    if mode == "channel":
        ax.fill_between(range(1, rank + 1), s[:rank].tolist(), alpha=0.3)
    print(f"rank {rank} ({mode}): relative output error {err:.3f}, weights {n_w:,} of {W.numel():,}, "
          f"accuracy on 500 test images {acc:.3f} (all other layers original)")


interactive_panel(rank_panel, rank=int_slider("rank", 32, 1, 128, step=1),
                  mode=dropdown("mode", ["channel", "spatial"]))

# %% [markdown]
# ## 7 · Exercises
#
# **7.1** How many weights does `Conv2d(64, 128, 3, bias=False)` have after `factorize_conv(conv, 16)`?

# %%
answer = ...  # an int
ex.channel_params.check(answer)

# %% [markdown]
# **7.2** A matrix has singular values (5, 3, 2, 1, 0.5). What is $\lVert W - W_2\rVert_F$?

# %%
answer = ...  # a number
ex.predicted_error.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
# the reference answers pass; compare them with lowrank itself
ex.channel_params.check(ex.channel_params.solution())
compare("12.channel_params vs factorize_conv",
        ex.channel_params.solution(),
        sum(p.numel() for p in lowrank.factorize_conv(torch.nn.Conv2d(64, 128, 3, bias=False), 16).parameters()),
        ref_name="lowrank")
ok = compare("12.predicted_error vs a matrix with that spectrum", ex.predicted_error.solution(),
        lowrank.predicted_error(torch.diag(torch.tensor(ex.SINGULAR)), 2), ref_name="lowrank", rtol=1e-5)

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
best, tied = stats.best_of({f"rank {r}": lat[f"rank {r}"].times_ms for r in rs}, higher_is_better=False, paired=True)
rb = int(best.split()[1])
r90 = {n: lowrank.rank_for_energy(sv, 0.9) for n, sv in spectra.items()}
last2 = list(spectra)[-2:]
display(Markdown("\n".join([
    "* The factorised pair computes exactly the convolution with the SVD's rank-$r$ weight (checked against "
    "`F.conv2d`, both modes), and its weight error "
    + ("equals" if all(rows[r]["ok"] for r in RANKS) else "does NOT always equal")
    + " $\\sqrt{\\sum_{i>r}s_i^2}$ at the ranks tried (section 3).",
    f"* The trained teacher is not very low-rank: keeping 90 % of the energy needs {r90[last2[1]]} of "
    f"{len(spectra[last2[1]])} ranks in `{last2[1]}` and {r90[last2[0]]} of {len(spectra[last2[0]])} in `{last2[0]}`; "
    f"rank 16 of `{LAYER}` leaves a relative weight error of {rows[16]['err']:.3f}.",
    f"* For `{LAYER}` a rank-$r$ pair has {m_ + n_}$r$ weights instead of {W.numel():,}: it saves only below rank "
    f"{m_ * n_ / (m_ + n_):.1f}.",
    f"* One layer, timed side by side: fastest at {best}" + (f" (tied with {', '.join(tied)})" if tied else "")
    + f", {t0 / lat[best].median_ms:.2f}× the original's speed for a {1 / mac_frac[rb]:.1f}× MAC reduction; "
    f"slower than its MACs predict at ranks {fmt(short)}.",
    f"* Factorising every conv at {ENERGY:.0%} energy: parameters {rep_t.total_params:,} → {rep_s.total_params:,}, "
    f"MACs {rep_t.total_macs / 1e6:.2f} M → {rep_s.total_macs / 1e6:.2f} M ({mac_red:.2f}×); accuracy {acc0:.3f} → "
    f"{acc1:.3f}, and {acc2:.3f} after {FT_EPOCHS} epoch(s) of fine-tuning ({said(d_after, 'factorised', 'teacher')} "
    f"against the teacher; {said(d_control, 'factorised', 'control')} against the teacher given the same "
    f"fine-tune); time: {t_word} ({speed:.2f}×).",
    f"* Measured on: {machine.describe(dev)}.",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | low-rank approximation | 低秩近似 | replace a matrix by a product of two thinner ones |
# | singular value decomposition (SVD) | 奇异值分解 | $W = USV^\top$, $S$ holds the singular values |
# | singular value | 奇异值 | $s_i$, how much of $W$ lies along one direction pair |
# | rank | 秩 | number of singular values kept, $r$ |
# | spectral energy | 谱能量 | $\sum s_i^2 = \lVert W\rVert_F^2$ |
# | Frobenius norm | F范数 | square root of the sum of squared entries |
# | fine-tuning | 微调 | a short training run after compression |
# | bottleneck | 瓶颈层 | the narrow $r$-channel tensor between the two convs |
#
# **Next:** [13 · Pruning](13_pruning.ipynb).
