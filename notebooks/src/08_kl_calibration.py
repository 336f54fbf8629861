# %% [markdown]
# # 08 · KL-divergence saturation thresholds
#
# **After this lesson you can** compute TensorRT's entropy-calibration threshold of an activation tensor by
# hand and with a vectorised function, compare it with max / percentile / MSE thresholds by the int8 accuracy
# they give, and explain why ONNX Runtime's "entropy" threshold differs.
#
# **Goals**
# 1. Document 003's saturating quantisation: clip at a threshold $T$ chosen by minimising KL(P‖Q).
# 2. The algorithm step by step on a real ReLU histogram of `shapes_teacher` (2048 bins).
# 3. KL vs threshold, with a widget that moves the threshold and shows P, Q and the divergence.
# 4. max vs percentile vs MSE vs entropy: thresholds and the simulated int8 accuracy of the model, compared per
#    image (paired intervals), and which entropy variant the course's one calibration pipeline uses.
# 5. ONNX Runtime's entropy code path on the same tensor, the zero spike after ReLU, and document 003's tip to
#    clip sigmoid / tanh inputs at 6 / 3 — measured.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 10 s (`FAST=True`: about 5 s).

# %% tags=["parameters"]
FAST = False          # fewer images, a coarser ONNX Runtime histogram: for CI and quick checks
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # everything here runs on the CPU; kept for the template
N_CALIB = 128         # calibration images (their activations build the histograms)
N_EVAL = 200          # held-out images for the int8 accuracy comparison
NUM_BINS = 2048       # histogram bins over [0, max|x|], as in the GTC talk
LAYER = "relu4"       # the ReLU output studied step by step

# %%
import contextlib
import io

import numpy as np
import torch
from IPython.display import Markdown, display
from scipy.stats import entropy

from lessons_lib import checkpoints, data, machine, profile, quant, seed_everything, stats, train
from lessons_lib.deploy import qdq
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson08 as ex
from lessons_lib.course.plotting import bar, histogram, lines, use_house_style
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
n_calib, n_eval = (64, 100) if FAST else (N_CALIB, N_EVAL)
print("measurements below come from:", machine.describe("cpu"))

model = checkpoints.pretrained("shapes_teacher")
Xc, _ = data.make_shapes(n_calib, seed=1, difficulty=0.5)    # calibration images (not the training set)
Xe, ye = data.make_shapes(n_eval, seed=2, difficulty=0.5)    # evaluation images
Xc, Xe = data.normalize_shapes(Xc), data.normalize_shapes(Xe)
relus = {f"relu{i}": blk[2] for i, blk in enumerate(m for m in model.features if isinstance(m, torch.nn.Sequential))}

# %% [markdown]
# ## 1 · Saturating quantisation
#
# **Claim.** Document 003 ("Saturate Quantization") contrasts two ways of setting the int8 range. Non-saturating:
# the range covers every value (scale from max|x|). Saturating (NVIDIA, GTC 2017 "8-bit Inference with TensorRT"):
# values beyond a threshold $T$ are clipped to $\pm T$; $T$ is chosen among candidates as the one whose quantised
# distribution is most similar — smallest KL divergence — to the original. Document 000 lists INT8 among
# TensorRT's precisions.
#
# **Algorithm** (histogram of $|x|$, $n = 2048$ bins of width $w$ over $[0, \max|x|]$, $n_q = 128$ levels for the
# 7 magnitude bits of int8). For each candidate $i = n_q, \dots, n$:
# * $P$ = the first $i$ bins, with the tail $\sum_{j \ge i} h_j$ added to bin $i-1$ (clipped values land there);
# * $Q$ = bins $0..i-1$ merged into $n_q$ groups (bin $j$ in group $\lfloor j\,n_q / i\rfloor$), each group's sum
#   spread evenly over its **non-empty** bins (empty bins stay 0);
# * $D_i = \mathrm{KL}(p\,\|\,q) = \sum_j p_j \ln(p_j / q_j)$ with $p, q$ normalised.
#
# Keep $i^* = \arg\min_i D_i$ and return $T = i^*\,w$ (the upper edge of bin $i^*-1$); then $S = T/127$.
#
# > **Note (what the slide does and does not specify).** The slide (Migacz, "8-bit Inference with TensorRT", GTC 2017,
# > s7310) gives pseudo-code, not TensorRT's implementation: it does not say how Q is formed when a group's bins are
# > partly empty beyond "expand", how a candidate with $q_j = 0 < p_j$ is scored, or what happens to the spike of exact
# > zeros after a ReLU. Its results table reports INT8 top-1 within about 1 % of FP32 for the ImageNet CNNs it lists;
# > section 3 measures the pseudo-code taken literally on a ReLU network, and section 5 the zero spike. Where
# > **this lesson deviates from the slide**, it says so:
# > * the slide returns $T = (m + 0.5)\,w$ (the centre of bin $m$); we return the bin edge $i^* w$, the convention
# >   of pytorch-quantization (half a bin lower; section 2 prints both);
# > * the slide loops `for i in range(128, 2048)`, so $i = 2048$ (no clipping at all) is never a candidate; we include
# >   it, so that "no saturation" can win;
# > * the merge into 128 levels is not defined on the slide; we spread bins as pytorch-quantization does (bin $j$ in
# >   group $\lfloor j\,n_q/i\rfloor$), while MXNet's `_get_optimal_threshold` uses groups of $\lfloor i/n_q\rfloor$
# >   bins with the remainder added to the last group, and smooths P and Q with eps (as ONNX Runtime does, section 4).
# >
# > TensorRT itself no longer recommends this path: TensorRT 10.1 deprecated the implicit-quantisation calibrators
# > (`IInt8EntropyCalibrator2` and the rest; TensorRT 11 removed them) in favour of explicit quantisation, i.e. Q/DQ nodes in the ONNX with
# > scales computed beforehand — what `lessons_lib.deploy.qdq` does (lesson 15), with this lesson's entropy threshold.

# %%
show_source(quant.expand_candidate)
show_source(quant.kl_curve)

# %% [markdown]
# **The slide's own example**: 8 bins merged into 2 levels.

# %%
# NBVAL_CHECK_OUTPUT
P8, Q8 = quant.expand_candidate(np.array([1, 0, 2, 3, 5, 3, 1, 7]), 8, 2)
print("P =", P8.tolist(), " Q =", Q8.tolist())
ok = compare("KL(P||Q), natural log", float(quant.kl_curve(P8, np.arange(9.0), 2)[1][-1]),
             float(entropy(P8, Q8)), ref_name="scipy.stats.entropy", rtol=1e-9)

# %% [markdown]
# ## 2 · A real histogram: collect |x| at every ReLU
#
# Forward hooks feed each ReLU output into a `Histogram` (2048 bins of |x|; when a later batch has a larger
# maximum the bins are merged by an integer factor, so the re-binning is exact). It also counts exact zeros.

# %%
show_source(quant.Histogram.update)

# %%
hists = {k: quant.Histogram(NUM_BINS) for k in relus}
raw = {}


def collector(k):
    def hook(module, inputs, output):
        hists[k].update(output)      # a forward hook that returns None leaves the output unchanged
    return hook


hooks = [m.register_forward_hook(collector(k)) for k, m in relus.items()]
hooks.append(relus[LAYER].register_forward_hook(lambda mod, i, o: raw.setdefault("x", []).append(o.detach().clone())))
with torch.no_grad():
    for b in range(0, n_calib, 64):
        model(Xc[b:b + 64])
for h in hooks:
    h.remove()
H = hists[LAYER]
x_layer = torch.cat(raw["x"])
print(H)
print(f"{LAYER}: {H.total:,} values, {H.zeros / H.total:.1%} exactly zero (the ReLU spike), max {H.max:.3f}")
ax = histogram(x_layer[x_layer > 0], bins=200, logy=True, xlabel="activation", title=f"{LAYER} output (non-zero values), {n_calib} images")

# %% [markdown]
# **Check** the vectorised `kl_curve` against a candidate built directly (`expand_candidate` + scipy) for a few
# candidates — the tests (`tests/test_quant_thresholds.py`) compare every candidate with a plain loop.

# %%
# NBVAL_CHECK_OUTPUT
T_all, D_all = quant.kl_curve(H.counts, H.edges)
for i in (128, 700, 2048):
    P, Q = quant.expand_candidate(H.counts, i)
    compare(f"KL at candidate i={i}", float(D_all[i - 128]), float(entropy(P, Q)), ref_name="scipy", rtol=1e-9)
print("candidates:", len(D_all), "| thresholds are bin edges:", bool(np.allclose(T_all, H.edges[128:])))

# %%
i_star = 128 + int(np.argmin(D_all))
T_kl = quant.kl_threshold(H.counts, H.edges)
m_slide = 128 + int(np.argmin(D_all[:-1]))        # the slide's candidates: i = 128 .. 2047
T_slide = (m_slide + 0.5) * H.width               # the slide's threshold: the centre of bin m
print(f"{LAYER}: minimum KL {D_all.min():.4f} at i* = {i_star} of {NUM_BINS} bins -> T = {T_kl:.3f} "
      f"({T_kl / H.max:.0%} of max|x| = {H.max:.3f}); clipped: {(x_layer > T_kl).float().mean().item():.3%} of values")
print(f"the slide's conventions (i < {NUM_BINS}, T = (m + 0.5) w): m = {m_slide} -> T = {T_slide:.4f} "
      f"(ours {T_kl:.4f}; half a bin = {H.width / 2:.4f})")
ax = lines(T_all, {"KL(P||Q)": D_all}, marker="", logy=True, xlabel="threshold T", ylabel="KL divergence",
           title=f"{LAYER}: KL vs threshold (min at T = {T_kl:.2f})")
_ = ax.axvline(T_kl, color="grey", ls="--")

# %% [markdown]
# Small thresholds clip much of the distribution (P piles up in its last bin); large thresholds waste levels, so
# each of the 128 groups spans many bins and Q smears the shape. The minimum sits in between.
#
# **Try it.** Move the **threshold bin** slider (first control): P (reference, tail folded in) and Q (128 levels,
# expanded) are drawn for that candidate, and the title gives $T$ and KL(P‖Q).

# %%
def show_candidate(i=512, scale="log"):
    P, Q = quant.expand_candidate(H.counts, i)
    p, q = P / P.sum(), Q / Q.sum()
    d = D_all[i - 128]
    ax = lines(H.edges[1:i + 1], {"P (clipped reference)": p, "Q (128 levels, expanded)": q}, marker="",
               logy=scale == "log", xlabel="|x|", ylabel="probability",
               title=f"i = {i}: T = {H.edges[i]:.3f}, KL(P||Q) = {d:.4f} (min {D_all.min():.4f} at i = {i_star})")
    print(f"candidate i={i}: T = {H.edges[i]:.4f}, {(x_layer > H.edges[i]).float().mean().item():.3%} of values clipped, "
          f"KL = {d:.5f}")


interactive_panel(show_candidate, i=int_slider("threshold bin i", 512, 128, NUM_BINS, step=32),
                  scale=dropdown("y scale", ["log", "linear"]))

# %% [markdown]
# ## 3 · max vs percentile vs MSE vs entropy
#
# The same histograms give four thresholds per layer (`quant.calibrate`): **max** (no clipping), **percentile**
# (99.99 % of |x| below $T$), **MSE** (minimise the histogram-weighted squared error of fake quantisation) and
# **entropy** (KL, above). Their effect on the model: fake-quantise every ReLU output with $S = T/127$ (symmetric
# int8, as TensorRT does; hooks return the quantised tensor) and every conv weight per output channel (int8,
# symmetric; a per-channel scale commutes with the BatchNorm that follows, so this equals quantising the folded
# conv's weights, up to the bias).
#
# The entropy threshold appears twice: with the histogram as is (**keep**, the slide) and with bin 0 overwritten
# by bin 1 (**copy_next**, NVIDIA pytorch-quantization / ModelOpt; section 5 explains why). The course's one
# calibration pipeline, `lessons_lib.deploy.qdq` (lessons 11 and 15), uses the entropy method with `copy_next` by
# default (printed below): real int8 represents 0 exactly whatever $T$ is, so the zero spike should not pull $T$.
# The comparison is **paired**: every variant sees the same held-out images, and each is compared per image
# (`stats.paired_difference`), so only the images on which two variants disagree count.

# %%
show_source(quant.calibrate)

# %%
print(f"deploy.qdq's pipeline default: method={qdq.DEFAULT_METHOD!r}, zero_bin={qdq.DEFAULT_ZERO_BIN!r}")
ENT_KEEP, ENT_COPY = "entropy-keep (slide)", "entropy-copy_next (pipeline)"
thresholds = {m: {k: quant.calibrate(h, m) for k, h in hists.items()} for m in quant.METHODS if m != "entropy"}
thresholds[ENT_KEEP] = {k: quant.calibrate(h, "entropy", zero_bin="keep") for k, h in hists.items()}
thresholds[ENT_COPY] = {k: quant.calibrate(h, "entropy", zero_bin="copy_next") for k, h in hists.items()}
print("threshold T per layer:")
print(f"{'layer':<7}" + "".join(f"{m.split(' (')[0]:>20}" for m in thresholds))
for k in relus:
    print(f"{k:<7}" + "".join(f"{thresholds[m][k]:20.3f}" for m in thresholds))

# %%
qmodel = checkpoints.pretrained("shapes_teacher")
with torch.no_grad():
    for blk in (m for m in qmodel.features if isinstance(m, torch.nn.Sequential)):
        W = blk[0].weight
        S_w, Z_w = quant.qparams_per_channel(W, 0, 8, symmetric=True)
        W.copy_(quant.fake_quantize(W, S_w, Z_w, 8, symmetric=True, axis=0))
q_relus = {f"relu{i}": blk[2] for i, blk in enumerate(m for m in qmodel.features if isinstance(m, torch.nn.Sequential))}


def int8_correct(method: str | None) -> np.ndarray:
    """Per-image correctness with int8 per-channel weights and, unless method is None, int8 ReLU outputs."""
    hooks = [] if method is None else [
        m.register_forward_hook(lambda mod, i, o, T=thresholds[method][k]: quant.fake_quantize(o, T / 127, 0, 8, symmetric=True))
        for k, m in q_relus.items()]
    try:
        return (train.predict(qmodel, (Xe, ye)).argmax(1) == ye).numpy()
    finally:
        for h in hooks:
            h.remove()


# %%
# NBVAL_IGNORE_OUTPUT  (accuracies on a few hundred procedural images; the intervals say what they can separate)
ok = {"float32": (train.predict(model, (Xe, ye)).argmax(1) == ye).numpy(), "int8 weights only": int8_correct(None)}
ok.update({f"int8, {m}": int8_correct(m) for m in thresholds})
acc = {k: float(v.mean()) for k, v in ok.items()}
vs_fp = {k: stats.paired_difference(v, ok["float32"]) for k, v in ok.items() if k != "float32"}
print(f"float32{'':<32} top-1 {acc['float32']:.1%}  ({int(ok['float32'].sum())} / {n_eval})")
for k, d in vs_fp.items():
    print(f"{k:<39} top-1 {acc[k]:.1%}  | " + d.text("vs float32", k.replace("int8, ", ""), "float32"))
calib = [k for k in ok if k.startswith("int8, ")]
best, tied = stats.best_of({k: ok[k].astype(float) for k in calib}, paired=True)
worse = [k for k in calib if k != best and k not in tied]
print(f"\nbest mean: {best} | cannot be told apart from it at this budget: {'; '.join(tied) or 'none'} | "
      f"worse: {'; '.join(worse) or 'none'}")
d_keep_copy = stats.paired_difference(ok[f"int8, {ENT_COPY}"], ok[f"int8, {ENT_KEEP}"])
print(d_keep_copy.text("entropy copy_next vs keep", "copy_next", "keep"))
ax = bar({k.replace("int8, ", ""): 100 * v for k, v in acc.items()}, ylabel="top-1 %", annotate="{:.1f}",
         title=f"shapes_teacher on {n_eval} held-out images")
_ = ax.set_ylim(min(acc.values()) * 100 - 5, 100)

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
short = lambda k: k.replace("int8, ", "")  # noqa: E731
verdict_line = (f"**{short(best)}** is ahead of every other calibration (paired interval)" if not tied else
                f"{'; '.join(short(k) for k in [best, *tied])} cannot be told apart at this budget ({n_eval} images; "
                f"best mean: {short(best)})")
display(Markdown(
    f"**Read it.** {verdict_line}" + (f"; worse: {'; '.join(short(k) for k in worse)}" if worse else "") + ". "
    f"The slide's entropy threshold with the zero spike kept scores {acc[f'int8, {ENT_KEEP}']:.1%} against "
    f"{acc[f'int8, {ENT_COPY}']:.1%} with `copy_next` ({100 * d_keep_copy.diff:+.1f} points, 95 % CI "
    f"{100 * d_keep_copy.lo:+.1f} to {100 * d_keep_copy.hi:+.1f}: {d_keep_copy.verdict.replace('A better', 'copy_next better').replace('B better', 'keep better')}); "
    f"float32 scores {acc['float32']:.1%}. Naming one \"best\" calibration needs an interval that separates it; "
    "where none does, more images (`N_EVAL`) might, or not."))

# %% [markdown]
# ## 4 · The same tensor through ONNX Runtime's entropy calibration
#
# `onnxruntime.quantization.calibrate.HistogramCollector` is what `quantize_static(..., calibrate_method=
# CalibrationMethod.Entropy)` uses: `collect_value` builds a **signed** histogram over $[-\max|x|, \max|x|]$ and
# `get_entropy_threshold` searches symmetric slices around the centre bin. It differs from the slide in several
# ways (reference-algorithms.md §1.6): **eps smoothing** of P and Q (zeros get 1e-4, taken from the non-zeros);
# Q is written into an **int64** array (truncated), **zero bins are not kept empty**, and the remainder of an
# uneven merge goes into the last level but is not expanded; the **defaults** are 128 bins and 128 levels, which
# leaves exactly one candidate (the whole range). We give it the same bin width: $2n+1$ signed bins and 255
# levels (128 per side), plus its defaults.

# %%
from onnxruntime.quantization.calibrate import HistogramCollector  # noqa: E402

x_np = x_layer.numpy().astype(np.float32)
N_HALF = 256 if FAST else 1024                    # bins per side (kept moderate: ORT's search is slow)
H_half = quant.Histogram(N_HALF).update(x_layer)  # ours at the same bin width
ort_T, ort_fn = {}, {}
for label, nb, nq in ((f"{2 * N_HALF + 1} signed bins, 255 levels", 2 * N_HALF + 1, 255), ("defaults: 128 bins, 128 levels", 128, 128)):
    col = HistogramCollector("entropy", True, nb, nq, 99.99, "same")
    with contextlib.redirect_stdout(io.StringIO()):   # it prints progress lines
        col.collect({LAYER: x_np})
    hist_ort = col.get_histogram_dict()[LAYER]
    ort_fn[label] = lambda col=col, h=hist_ort, nq=nq: col.get_entropy_threshold(h, nq)
    ort_T[label] = float(ort_fn[label]()[1])
T_half = quant.kl_threshold(H_half.counts, H_half.edges)
for label, T in ort_T.items():
    print(f"onnxruntime ({label}): T = {T:.3f}")
print(f"ours ({N_HALF} bins of |x|, 128 levels): T = {T_half:.3f}   (with {NUM_BINS} bins: {T_kl:.3f})   max|x| = {H.max:.3f}")
print(f"  ours with bin0=bin1: {quant.kl_threshold(H_half.counts, H_half.edges, zero_bin='copy_next'):.3f}")

# %%
# NBVAL_CHECK_OUTPUT
print("ONNX Runtime's defaults return max|x| (no saturation):",
      bool(abs(ort_T["defaults: 128 bins, 128 levels"] - H.max) < 1e-4 * H.max))

# %% [markdown]
# Because the ReLU output is non-negative, ONNX Runtime's signed histogram leaves its left half empty and its
# smoothing spreads eps over those empty bins; its zero spike sits in the centre bin, which its symmetric slices
# always contain. Its threshold is therefore another point on the curve than ours. Speed: ONNX Runtime loops over
# candidates and, inside, over levels in Python; `kl_curve` computes all candidates with cumulative sums (no loop
# over $i$). Same histogram resolution, side by side (`benchmarks/bench_kl_threshold.py` does the same at 2048 bins):

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
lab = f"{2 * N_HALF + 1} signed bins, 255 levels"
lat = profile.measure_side_by_side({"ours": lambda: quant.kl_threshold(H_half.counts, H_half.edges),
                                    "onnxruntime": ort_fn[lab]}, (), warmup=1, repeats=2 if FAST else 3)
t_ours, t_ort = lat["ours"], lat["onnxruntime"]
v_speed = stats.verdict(t_ours.times_ms, t_ort.times_ms, names=("ours", "onnxruntime"), higher_is_better=False,
                        paired=True, unit="ms")
print("measured on:", machine.describe("cpu"), "| numpy / Python, single-threaded loops")
print(f"ours ({N_HALF} bins): {t_ours.median_ms:.2f} ms | onnxruntime get_entropy_threshold ({lab}): "
      f"{t_ort.median_ms:.0f} ms (medians of {len(t_ours.times_ms)} interleaved rounds) | ratio "
      f"{t_ort.median_ms / t_ours.median_ms:.0f}x")
print(v_speed.text(1))

# %% [markdown]
# ## 5 · The zero spike after ReLU
#
# A large share of ReLU outputs is exactly 0 (section 2 prints it), and they all fall in bin 0. Implementations treat that spike differently:
# the slide does nothing; NVIDIA's pytorch-quantization and ModelOpt overwrite bin 0 with bin 1's count
# (`zero_bin="copy_next"` here); ncnn skips exact zeros when it builds the histogram (emulated below by
# removing `H.zeros` from bin 0); ONNX Runtime's signed histogram puts them in its centre bin.

# %%
counts_nozeros = H.counts.copy()
counts_nozeros[0] -= H.zeros
spike = {"keep (slide)": quant.kl_threshold(H.counts, H.edges),
         "copy_next (pytorch-quantization)": quant.kl_threshold(H.counts, H.edges, zero_bin="copy_next"),
         "exact zeros skipped (ncnn)": quant.kl_threshold(counts_nozeros, H.edges)}
for k, T in spike.items():
    print(f"{k:<34} T = {T:.3f}  ({T / H.max:.0%} of max)")
print(f"bin 0 holds {H.counts[0] / H.counts.sum():.1%} of all values; bin 1 holds {H.counts[1] / H.counts.sum():.2%}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
p0 = H.counts[0] / H.counts.sum()
display(Markdown(
    f"Why the spike drags the slide's threshold down: bin 0 holds {p0:.0%} of P here. Candidate $i$ merges bins "
    "$0 .. i/128-1$ into the first level, and Q spreads that level's mass evenly over its non-empty bins, so the spike "
    "costs about $p_0 \\ln(\\text{group width})$ — a penalty that grows with $i$. Real int8 represents 0 exactly "
    "whatever $T$ is, so this penalty is an artefact of the histogram model; overwriting bin 0 (or skipping zeros) "
    f"removes it and the threshold moves up ({spike['keep (slide)']:.3f} → "
    f"{spike['copy_next (pytorch-quantization)']:.3f} on `{LAYER}`). That is why `deploy.qdq` defaults to "
    f"`zero_bin={qdq.DEFAULT_ZERO_BIN!r}`; section 3 measures what it is worth in accuracy."))

# %%
i_copy = int(np.searchsorted(H.edges, spike["copy_next (pytorch-quantization)"]))
for i in (i_star, i_copy):
    print(f"candidate i={i}: first group spans {int(np.ceil(i / 128))} bins -> spike term ~ p0*ln(width) = "
          f"{p0 * np.log(np.ceil(i / 128)):.3f}; KL(keep) = {D_all[i - 128]:.3f}")

# %% [markdown]
# ## 6 · Document 003's tip: clip sigmoid / tanh inputs at 6 / 3
#
# **Claim.** Sigmoid and tanh are flat beyond $|x| \approx 6$ and $3$, so their inputs can be quantised with
# the range clipped there: nothing is lost in the output, and the levels are spent where the curve moves. We
# use real pre-activations (the BatchNorm outputs feeding `relu2`, scaled ×2 to give them a wide range) as inputs,
# quantise them to int8 with the range from max|x| or clipped at 6 (sigmoid) / 3 (tanh), and measure the error of
# the activation's output.

# %%
pre = {}
hk = model.features[3][1].register_forward_hook(lambda m, i, o: pre.update(x=o.detach().clone()))
with torch.no_grad():
    model(Xc[:64])
hk.remove()
z = 2 * pre["x"]
clip_err = {}
for name, fn, c in (("sigmoid", torch.sigmoid, 6.0), ("tanh", torch.tanh, 3.0)):
    for label, T in (("max|x|", z.abs().max().item()), (f"clip at {c:g}", c)):
        zq = quant.fake_quantize(z, T / 127, 0, 8, symmetric=True)
        clip_err[(name, label)] = float(((fn(zq) - fn(z)) ** 2).mean())
    a, b = clip_err[(name, "max|x|")], clip_err[(name, f"clip at {c:g}")]
    print(f"{name}: inputs max|x| {z.abs().max().item():.2f}; output MSE range max|x| {a:.3e}, clipped at {c:g} {b:.3e} "
          f"-> clipping {'helps' if b < a else 'does not help'} ({a / b:.1f}x)")
print(f"{(z.abs() > 6).float().mean().item():.2%} of inputs beyond 6, {(z.abs() > 3).float().mean().item():.2%} beyond 3")

# %% [markdown]
# ## 7 · Exercises
#
# **7.1** Merge P = [3, 0, 1, 4, 2, 2, 0, 6] into 2 levels and expand back to 8 bins with the slide's rule.
# Give the unnormalised Q as a list.

# %%
answer = ...  # a list of 8 numbers
ex.expanded_q.check(answer)

# %% [markdown]
# **7.2** Calibration returned $T = 2.54$ for a layer. What symmetric int8 scale $S$ does TensorRT use?

# %%
answer = ...  # a float
ex.int8_scale.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
ex.expanded_q.check(ex.expanded_q.solution())
ex.int8_scale.check(ex.int8_scale.solution())

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
display(Markdown("\n".join([
    f"* The slide's 8→2 example gives Q = {[int(v) for v in Q8]} and KL = {float(entropy(P8, Q8)):.6f}, checked with scipy.",
    f"* On `shapes_teacher`'s `{LAYER}` output ({NUM_BINS} bins of |x|, {H.zeros / H.total:.0%} exact zeros), the slide's "
    f"KL minimum is T = {T_kl:.3f} ({T_kl / H.max:.0%} of max|x|), clipping {(x_layer > T_kl).float().mean().item():.2%} "
    f"of the values; with `copy_next` T = {spike['copy_next (pytorch-quantization)']:.3f}. The slide's own "
    f"conventions ($i < {NUM_BINS}$, $T = (m+0.5)w$) give {T_slide:.3f}.",
    "* The vectorised `kl_curve` equals scipy on sampled candidates here and a plain loop on every candidate in the "
    "tests; against ONNX Runtime's `get_entropy_threshold` at the same resolution it is "
    + ({"ours": "faster", "onnxruntime": "slower"}.get(v_speed.better, "not told apart at this budget")
       + f" (medians {t_ours.median_ms:.2f} vs {t_ort.median_ms:.0f} ms, {len(t_ours.times_ms)} interleaved rounds)."),
    f"* Simulated int8 accuracy on {n_eval} held-out images (float32 {acc['float32']:.1%}): {verdict_line}"
    + (f"; worse: {'; '.join(short(k) for k in worse)}" if worse else "") + ". The slide's pseudo-code with the zero "
    f"spike kept: {acc[f'int8, {ENT_KEEP}']:.1%} ({100 * vs_fp[f'int8, {ENT_KEEP}'].diff:+.1f} points vs float32); "
    "TensorRT's published results are within about 1 % of FP32 (GTC 2017 slide), "
    + ("so its calibrator must do more than the pseudo-code shows." if vs_fp[f"int8, {ENT_KEEP}"].hi < -0.01 else
       "which this run does not contradict."),
    f"* The course's one pipeline (`deploy.qdq`) calibrates with `{qdq.DEFAULT_METHOD}` and "
    f"`zero_bin={qdq.DEFAULT_ZERO_BIN!r}`; TensorRT 10.1 deprecated its implicit calibrators in favour of such explicit "
    "Q/DQ scales.",
    f"* ONNX Runtime's entropy calibration with its default 128 bins returns max|x| (no saturation, checked); at the "
    f"same resolution as ours it returns {ort_T[lab]:.3f} against our {T_half:.3f}, because of its conventions (section 4).",
    f"* Clipping sigmoid / tanh inputs at 6 / 3 (document 003's tip) changes the output MSE by "
    f"{clip_err[('sigmoid', 'max|x|')] / clip_err[('sigmoid', 'clip at 6')]:.1f}× / "
    f"{clip_err[('tanh', 'max|x|')] / clip_err[('tanh', 'clip at 3')]:.1f}× on the inputs of section 6 "
    "(one batch, one deterministic tensor).",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | calibration | 校准 | choosing ranges / thresholds from sample data |
# | saturating quantisation | 饱和量化 | values beyond $T$ are clipped to $\pm T$ |
# | threshold $T$ | 阈值 | the clipping point; $S = T/127$ |
# | KL divergence | KL散度 / 相对熵 | $\sum p \ln(p/q)$, how much Q differs from P |
# | entropy calibration | 熵校准 | TensorRT's KL-minimising threshold search |
# | histogram bin | 直方图区间 | one of the 2048 intervals of |x| |
# | percentile | 百分位数 | value below which p % of the data lie |
# | outlier | 离群值 | a rare value far from the rest |
# | smoothing | 平滑 | giving empty bins a tiny probability (ONNX Runtime, MXNet) |
#
# **Next:** [09 · bfloat16 and fp16](09_bfloat16_fp16.ipynb).
