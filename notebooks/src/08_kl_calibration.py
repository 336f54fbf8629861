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
# 4. max vs percentile vs MSE vs entropy: thresholds and the simulated int8 accuracy of the model.
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
from scipy.stats import entropy

from lessons_lib import checkpoints, data, machine, profile, quant, seed_everything, train
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
print(f"{LAYER}: minimum KL {D_all.min():.4f} at i* = {i_star} of {NUM_BINS} bins -> T = {T_kl:.3f} "
      f"({T_kl / H.max:.0%} of max|x| = {H.max:.3f}); clipped: {(x_layer > T_kl).float().mean().item():.3%} of values")
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

# %%
show_source(quant.calibrate)

# %%
thresholds = {m: {k: quant.calibrate(h, m) for k, h in hists.items()} for m in quant.METHODS}
thresholds["entropy, bin0=bin1"] = {k: quant.calibrate(h, "entropy", zero_bin="copy_next") for k, h in hists.items()}
print("threshold T per layer ('entropy, bin0=bin1': pytorch-quantization's zero-spike treatment, section 5):")
print(f"{'layer':<7}" + "".join(f"{m:>19}" for m in thresholds))
for k in relus:
    print(f"{k:<7}" + "".join(f"{thresholds[m][k]:19.3f}" for m in thresholds))

# %%
qmodel = checkpoints.pretrained("shapes_teacher")
with torch.no_grad():
    for blk in (m for m in qmodel.features if isinstance(m, torch.nn.Sequential)):
        W = blk[0].weight
        S_w, Z_w = quant.qparams_per_channel(W, 0, 8, symmetric=True)
        W.copy_(quant.fake_quantize(W, S_w, Z_w, 8, symmetric=True, axis=0))
q_relus = {f"relu{i}": blk[2] for i, blk in enumerate(m for m in qmodel.features if isinstance(m, torch.nn.Sequential))}


def int8_accuracy(method: str | None) -> float:
    """Top-1 accuracy with int8 per-channel weights and, unless method is None, int8 ReLU outputs."""
    hooks = [] if method is None else [
        m.register_forward_hook(lambda mod, i, o, T=thresholds[method][k]: quant.fake_quantize(o, T / 127, 0, 8, symmetric=True))
        for k, m in q_relus.items()]
    try:
        return train.evaluate(qmodel, (Xe, ye))["acc"]
    finally:
        for h in hooks:
            h.remove()


# %%
# NBVAL_IGNORE_OUTPUT  (accuracies on a few hundred procedural images: small differences are within noise)
acc = {"float32": train.evaluate(model, (Xe, ye))["acc"], "int8 weights only": int8_accuracy(None)}
acc.update({f"int8, {m}": int8_accuracy(m) for m in thresholds})
for k, v in acc.items():
    print(f"{k:<25} top-1 {v:.2%}  ({round(v * n_eval)} / {n_eval})")
best = max((k for k in acc if k.startswith("int8, ")), key=acc.get)
worst = min((k for k in acc if k.startswith("int8, ")), key=acc.get)
print(f"best calibration here: {best} ({100 * (acc[best] - acc['float32']):+.1f} points vs float32); worst: {worst} "
      f"({100 * (acc[worst] - acc['float32']):+.1f} points); one image = {100 / n_eval:.1f} points")
ax = bar({k.replace("int8, ", ""): 100 * v for k, v in acc.items()}, ylabel="top-1 %", annotate="{:.1f}",
         title=f"shapes_teacher on {n_eval} held-out images")
_ = ax.set_ylim(min(acc.values()) * 100 - 5, 100)

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
ort_T, t_ort = {}, {}
for label, nb, nq in ((f"{2 * N_HALF + 1} signed bins, 255 levels", 2 * N_HALF + 1, 255), ("defaults: 128 bins, 128 levels", 128, 128)):
    col = HistogramCollector("entropy", True, nb, nq, 99.99, "same")
    with contextlib.redirect_stdout(io.StringIO()):   # it prints progress lines
        col.collect({LAYER: x_np})
    hist_ort = col.get_histogram_dict()[LAYER]
    t_ort[label] = profile.measure_latency(lambda: ort_T.__setitem__(label, float(col.get_entropy_threshold(hist_ort, nq)[1])),
                                           (), warmup=0, repeats=1)
T_half = quant.kl_threshold(H_half.counts, H_half.edges)
t_ours = profile.measure_latency(lambda: quant.kl_threshold(H_half.counts, H_half.edges), (), warmup=1, repeats=15)
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
print("measured on:", machine.describe("cpu"))
print(f"ours ({N_HALF} bins): {t_ours.median_ms:.2f} ms (median of {t_ours.repeats}) | onnxruntime get_entropy_threshold "
      f"({lab}): {t_ort[lab].median_ms:.0f} ms | ratio {t_ort[lab].median_ms / t_ours.median_ms:.0f}x")

# %% [markdown]
# ## 5 · The zero spike after ReLU
#
# Most ReLU outputs are exactly 0, and they all fall in bin 0. Implementations treat that spike differently:
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

# %% [markdown]
# Why the spike drags the slide's threshold down: bin 0 holds almost half of P. Candidate $i$ merges bins
# $0 .. i/128-1$ into the first level, and Q spreads that level's mass evenly over its non-empty bins, so the spike
# costs about $p_0 \ln(\text{group width})$ — a penalty that grows with $i$. Real int8 represents 0 exactly
# whatever $T$ is, so this penalty is an artefact of the histogram model; overwriting bin 0 (or skipping zeros)
# removes it and the threshold moves up. The accuracy table in section 3 shows what that is worth.

# %%
p0 = H.counts[0] / H.counts.sum()
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
# (Numbers from the run above; they are printed there.)
# * The slide's 8→2 example gives Q = [2, 0, 2, 2, 4, 4, 4, 4] and KL = 0.150315, checked with scipy.
# * On `shapes_teacher`'s `relu4` output (2048 bins of |x|), the KL minimum saturates a small fraction of the
#   values at a threshold well below max|x| (section 2 prints $T$, the fraction clipped and the share of exact zeros).
# * The vectorised `kl_curve` equals scipy on sampled candidates here and a plain loop on every candidate in the
#   tests; it runs orders of magnitude faster than ONNX Runtime's `get_entropy_threshold` (ratio printed in section 4
#   and by `benchmarks/bench_kl_threshold.py`).
# * max / percentile / MSE / entropy thresholds differ per layer by large factors; the simulated int8 accuracy of
#   each is printed in section 3 next to float32. With the ReLU zero spike left in the histogram, the slide's
#   KL search clips several % of the activations and costs accuracy; with pytorch-quantization's bin0=bin1 fix
#   the threshold rises and the accuracy returns (section 5 explains the spike term).
# * ONNX Runtime's entropy calibration with its default 128 bins returns max|x| (no saturation, checked); with a
#   matching resolution it returns a different threshold from ours, because of its conventions (section 4).
# * How the ReLU zero spike is handled moves the threshold (section 5); clipping sigmoid/tanh inputs at 6/3 changes
#   the output error by the measured factor in section 6.
#
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
