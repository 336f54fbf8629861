# %% [markdown]
# # 07 · Quantisation fundamentals
#
# **After this lesson you can** map float tensors to 8-, 4- and 2-bit integers and back, choose between
# symmetric / asymmetric and per-tensor / per-channel quantisation from measured errors, and run one
# convolution with integers only (int8 operands, int32 accumulator, fixed-point requantisation).
#
# **Goals**
# 1. The affine mapping `q = round(x/S) + Z`, `x ≈ (q − Z)·S`, with document 001's qint8 example checked in torch.
# 2. Symmetric vs asymmetric, per-tensor vs per-channel: errors measured on the trained `shapes_teacher`.
# 3. Document 003's power-of-two scales ("fractional length") vs a general scale; range from the union vs
#    the mean of per-batch min/max; outliers and clipping.
# 4. Error vs bits (8/4/2), with a widget.
# 5. Integer-only inference of one conv layer (Jacob et al. 2018, gemmlowp) reproducing the float result.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 11 s (`FAST=True`: about 6 s).

# %% tags=["parameters"]
FAST = False          # fewer calibration images: for CI and quick checks
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # everything here runs on the CPU; kept for the template
N_IMAGES = 128        # shapes images whose activations we quantise
BATCH = 16            # batch size for the per-batch min/max experiment
N_INT = 32            # images through the integer-only layer

# %%
import warnings

import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch.nn.utils.fusion import fuse_conv_bn_eval

from lessons_lib import checkpoints, data, machine, quant, seed_everything, stats
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson07 as ex
from lessons_lib.course.plotting import bar, grouped_bar, histogram, lines, use_house_style
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

warnings.filterwarnings("ignore", message=".*quantize_per_(tensor|channel).*deprecated")  # torch 2.14 deprecation note
seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
N = 48 if FAST else N_IMAGES
print("measurements below come from:", machine.describe("cpu"))

model = checkpoints.pretrained("shapes_teacher")
images, labels = data.make_shapes(N, seed=1, difficulty=0.5)   # seed 1: images the model was not trained on
x_in = data.normalize_shapes(images)
convs = {f"conv{i}": blk[0] for i, blk in enumerate(m for m in model.features if isinstance(m, torch.nn.Sequential))}
acts = {}
hooks = [blk[2].register_forward_hook(lambda m, i, o, k=k: acts.__setitem__(k, o.detach().clone()))
         for k, blk in zip(convs, (m for m in model.features if isinstance(m, torch.nn.Sequential)))]
with torch.no_grad():
    model(x_in)
for h in hooks:
    h.remove()
print(f"{len(convs)} conv layers; ReLU outputs of {N} images collected, e.g. conv2: {tuple(acts['conv2'].shape)}")

# %% [markdown]
# ## 1 · The affine mapping
#
# **Claim.** Document 001 (section 2.2.1, "伪量化") stores each parameter as a low-bit integer plus two
# numbers per tensor, a *scale* and a *zero point*, and restores a float at inference. Its example: a qint8
# code `00011101` with scale 0.025 and zero point 0 stands for 29 × 0.025 = 0.725.
#
# **Formula** (names as in `lessons_lib.quant`): with integer range $[q_{\min}, q_{\max}]$,
# $$q = \mathrm{clamp}\big(\mathrm{round}(x / S) + Z,\ q_{\min}, q_{\max}\big), \qquad \hat x = (q - Z)\,S.$$
# Asymmetric (UINT) $b$-bit: $[0, 2^b-1]$, $S = (x_{\max}-x_{\min})/(2^b-1)$, $Z = \mathrm{round}(-x_{\min}/S)$.
# Symmetric (INT): $[-(2^{b-1}-1), 2^{b-1}-1]$, $S = \max|x| / (2^{b-1}-1)$, $Z = 0$. The range is first
# widened to contain 0, so that 0.0 (padding, ReLU zeros) is exactly representable.

# %%
show_source(quant.qparams)
show_source(quant.quantize)

# %%
# NBVAL_CHECK_OUTPUT
q_torch = torch.quantize_per_tensor(torch.tensor([0.725]), scale=0.025, zero_point=0, dtype=torch.qint8)
q_ours = quant.quantize(torch.tensor([0.725]), 0.025, 0, symmetric=True)
print("torch int_repr bits:", format(int(q_torch.int_repr()), "08b"))
compare("qint8 code of 0.725", int(q_ours), int(q_torch.int_repr()), ref_name="torch")
ok = compare("dequantised value", round(float(quant.dequantize(q_ours, 0.025, 0)), 6),
             round(float(q_torch.dequantize()), 6), ref_name="torch", show_values=True)  # one IEEE product

# %% [markdown]
# > **Erratum (document 001, section 2.2.1 "伪量化").** The document quantises with
# > $Q = \mathrm{round}(x/S + Z)$ but restores with $x = Z + Q \cdot S$. The two are not inverses unless the
# > zero point is 0 (as in its example): $Z$ is added in *code* units, so it must be subtracted from $Q$ before
# > scaling, $\hat x = (Q - Z)\,S$ — which is what the same document's section 2.2.3 (linear quantisation)
# > writes. Tested in the document's own setting, its formula pair with $Z = 10$: $0.475 \to Q = 29 \to 10.725$;
# > torch and `lessons_lib.quant` restore 0.475 (next cell).
# >
# > **Note (document 001, same example).** It reads the top bit of the qint8 code as a sign bit and the other
# > seven bits as the magnitude. That is right for its positive code, but qint8 is two's complement: the top bit
# > is worth −128, so `11100011` is −29, not −99 (exercise 9.1). It also calls the zero point "the float that
# > zero corresponds to"; in both formulas it is the integer *code* of the real value 0.

# %%
# NBVAL_CHECK_OUTPUT
qz = torch.quantize_per_tensor(torch.tensor([0.475]), scale=0.025, zero_point=10, dtype=torch.quint8)
doc_q = round(0.475 / 0.025 + 10)  # document 001's quantise formula
print("document's Q = round(x/S + Z) =", doc_q, "| torch code:", int(qz.int_repr()),
      "| document's restore Z + Q*S =", 10 + doc_q * 0.025,
      "| (Q - Z)*S =", round((29 - 10) * 0.025, 6), "| torch dequantize:", round(float(qz.dequantize()), 6))
ok = compare("ours dequantize(29, S=0.025, Z=10)", round(float(quant.dequantize(torch.tensor([29]), 0.025, 10)), 6),
        round(float(qz.dequantize()), 6), ref_name="torch", show_values=True)

# %% [markdown]
# ## 2 · Symmetric vs asymmetric
#
# Weights are roughly centred on 0, ReLU outputs are all ≥ 0. Symmetric quantisation of a ReLU output wastes
# the negative half of the codes: its step is $\max/127$ against the asymmetric $\max/255$ (for a ReLU output
# $x_{\min} = 0$, so asymmetric means uint8 with $Z = 0$), and the rounding error (≈ step²/12 per value)
# should grow by $(255/127)^2 \approx 4.03$. We check our integer codes against torch first.

# %%
# NBVAL_CHECK_OUTPUT
a = acts["conv2"]
for sym, dtype in ((False, torch.quint8), (True, torch.qint8)):
    S, Z = quant.qparams(a.min().item(), a.max().item(), symmetric=sym)
    ref = torch.quantize_per_tensor(a, S, Z, dtype).int_repr().int()
    compare(f"conv2 ReLU output, {'symmetric' if sym else 'asymmetric'} codes",
            quant.quantize(a, S, Z, symmetric=sym), ref, ref_name="torch.quantize_per_tensor")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
err = {}
for name in convs:
    a = acts[name]
    err[name] = {sym: quant.quant_error(a, 8, symmetric=sym) for sym in (False, True)}
    print(f"{name} ReLU output: max {a.max().item():6.3f}  MSE asymmetric {err[name][False]:.3e}  "
          f"symmetric {err[name][True]:.3e}  ratio {err[name][True] / err[name][False]:.2f}")
sym_ratio = [e[True] / e[False] for e in err.values()]
sym_span = (f"{min(sym_ratio):.2f}× on every layer" if f"{min(sym_ratio):.2f}" == f"{max(sym_ratio):.2f}"
            else f"from {min(sym_ratio):.2f}× to {max(sym_ratio):.2f}×")
display(Markdown(f"**Read it.** Symmetric / asymmetric MSE on the {len(err)} ReLU outputs: {sym_span}, against the "
                 f"{(255 / 127) ** 2:.2f}× that halving the number of usable levels predicts for uniform rounding noise."))

# %% [markdown]
# ## 3 · Per-tensor vs per-channel weights
#
# **Claim.** Document 003 ("INT量化") lists quantising each channel with its own range as the first cure for
# large quantisation errors. Where output channels have different ranges, one scale for the whole tensor is
# set by the widest channel and wastes levels on the narrower ones; the gain therefore depends on how much the
# channel ranges differ, which we print per layer.

# %%
# NBVAL_CHECK_OUTPUT
w = convs["conv1"].weight.detach()
S_c, Z_c = quant.qparams_per_channel(w, axis=0, symmetric=True)
compare("conv1 per-channel int8 codes", quant.quantize_per_channel(w, S_c, Z_c, axis=0, symmetric=True),
        torch.quantize_per_channel(w, S_c, Z_c, 0, torch.qint8).int_repr().int(), ref_name="torch.quantize_per_channel")
amax_c = w.abs().flatten(1).amax(1)
print(f"conv1: {w.shape[0]} output channels, max|w| per channel from {amax_c.min():.3f} to {amax_c.max():.3f}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
pc = {name: {b: (quant.quant_error(c.weight, b, True), quant.quant_error(c.weight, b, True, axis=0))
             for b in (8, 4)} for name, c in convs.items()}
spread = {name: float((lambda m: m.max() / m.min())(c.weight.detach().abs().flatten(1).amax(1)))
          for name, c in convs.items()}
for name, r in pc.items():
    print(f"{name}: widest / narrowest channel max|w| {spread[name]:.2f}   8-bit MSE per-tensor {r[8][0]:.2e} "
          f"per-channel {r[8][1]:.2e} (x{r[8][0] / r[8][1]:.1f})   4-bit x{r[4][0] / r[4][1]:.1f}")
ax = bar({n: r[8][0] / r[8][1] for n, r in pc.items()}, ylabel="per-tensor MSE / per-channel MSE",
         title="8-bit weights of shapes_teacher: error saved by per-channel scales")
pc_gain = {n: r[8][0] / r[8][1] for n, r in pc.items()}
rank_r = float(torch.corrcoef(torch.tensor([list(spread.values()), list(pc_gain.values())]).argsort(1).argsort(1).float())[0, 1])
display(Markdown(f"**Read it.** Per-channel scales cut the 8-bit weight MSE of {sum(g > 1 for g in pc_gain.values())} of "
                 f"{len(pc_gain)} layers, by ×{min(pc_gain.values()):.1f} to ×{max(pc_gain.values()):.1f}; the channel "
                 f"ranges of these layers differ by ×{min(spread.values()):.2f} to ×{max(spread.values()):.2f}, and the "
                 f"rank correlation of that spread with the gain is {rank_r:+.2f} over the {len(pc_gain)} layers (a "
                 "small sample: a tendency, not a law)."))

# %% [markdown]
# ## 4 · Power-of-two scale ("fractional length") vs a general scale
#
# **Claim.** Document 003 describes two kinds of INT quantisation: keep the float's exponent, i.e. a scale
# $2^{-fl}$ with *fractional length* $fl$ (rescaling is a bit shift), or a general real scale — more precise,
# slightly more work. Rounding the scale up to the next power of two keeps the range but makes the step up to
# 2× larger, so for uniform rounding noise the error grows by $(S_2/S)^2$, up to 4×.

# %%
show_source(quant.pow2_scale)

# %%
# NBVAL_CHECK_OUTPUT
print("pow2_scale(0.03) =", quant.pow2_scale(0.03), "  pow2_scale(0.25) =", quant.pow2_scale(0.25))

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
ratios, predicted = {}, {}
for name, c in convs.items():
    wt = c.weight.detach()
    S, _ = quant.qparams(wt.min().item(), wt.max().item(), symmetric=True)
    S2, fl = quant.pow2_scale(S)
    mse = lambda s: float(((quant.dequantize(quant.quantize(wt, s, 0, symmetric=True), s, 0) - wt) ** 2).mean())  # noqa: E731
    ratios[name], predicted[name] = mse(S2) / mse(S), (S2 / S) ** 2
    print(f"{name}: general S = {S:.5f}, power-of-two S = 2^-{fl} = {S2:.5f}; MSE x{ratios[name]:.2f} "
          f"(uniform-noise prediction (S2/S)^2 = {predicted[name]:.2f})")
display(Markdown(f"**Read it.** The power-of-two scale costs ×{min(ratios.values()):.2f} to ×{max(ratios.values()):.2f} "
                 f"in MSE over the {len(ratios)} layers (never above the 4× bound: {max(ratios.values()) <= 4}); the "
                 f"largest gap to the $(S_2/S)^2$ prediction is {max(abs(ratios[k] - predicted[k]) for k in ratios):.2f}, "
                 "because at a coarser step the weights no longer fill the rounding interval uniformly."))

# %% [markdown]
# ## 5 · Range from the union vs the mean of per-batch min/max
#
# Document 003 offers two ways to fix a layer's range from calibration batches: the union (the most extreme
# min / max seen in any batch) or the average of the per-batch min / max. The mean ignores rare large values:
# fewer levels are wasted on them, but they get clipped. The range is fixed on the calibration batches (the
# images above) and judged on as many *other* images (seed 2), as a deployed model would meet them: judged on its
# own calibration images the union could never clip. Measured on the ReLU output of `conv5`, with a paired
# interval over the evaluation images' per-image MSE:

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
a = acts["conv5"]
batch_max = torch.stack([a[i:i + BATCH].max() for i in range(0, len(a), BATCH)])
ranges = {"union": batch_max.max().item(), "mean of batches": batch_max.mean().item()}
held = {}
blocks = [m for m in model.features if isinstance(m, torch.nn.Sequential)]
hook = blocks[5][2].register_forward_hook(lambda m, i, o: held.__setitem__("conv5", o.detach().clone()))
with torch.no_grad():
    model(data.normalize_shapes(data.make_shapes(N, seed=2, difficulty=0.5)[0]))
hook.remove()
a_eval = held["conv5"]
range_err, per_image = {}, {}
for k, hi in ranges.items():
    S, Z = quant.qparams(0.0, hi)
    ah = quant.dequantize(quant.quantize(a_eval, S, Z), S, Z)
    per_image[k] = ((ah - a_eval) ** 2).flatten(1).mean(1)
    range_err[k] = float(per_image[k].mean())
    print(f"{k:>16}: max {hi:6.3f}  clipped {(a_eval > hi).float().mean().item():.4%} of the evaluation values  "
          f"MSE {range_err[k]:.3e}")
print(f"{len(batch_max)} calibration batches of {BATCH}; per-batch max from {batch_max.min():.3f} to "
      f"{batch_max.max():.3f}; evaluation max {a_eval.max():.3f}")
v_range = stats.verdict(1e6 * per_image["union"], 1e6 * per_image["mean of batches"], names=("union", "mean of batches"),
                        higher_is_better=False, paired=True, unit="x 1e-6")
display(Markdown(f"**Read it.** On {len(a_eval)} evaluation images the mean of the per-batch maxima "
                 f"({ranges['mean of batches']:.3f}) clips {(a_eval > ranges['mean of batches']).float().mean().item():.4%} "
                 f"of the values, the union ({ranges['union']:.3f}) {(a_eval > ranges['union']).float().mean().item():.4%}; "
                 f"MSE ratio union / mean {range_err['union'] / range_err['mean of batches']:.2f}. Per-image MSE, paired: "
                 f"{v_range.text(2)}."))

# %% [markdown]
# ## 6 · Outliers and clipping
#
# Document 003's second cure: find outlier weights and remove them (it blames them on dead neurons whose
# weights stopped updating; that explanation is not tested here). One weight 20× larger than the rest of its tensor stretches a per-tensor scale
# 20×, and every other weight pays. Clipping the range at the 99.99th percentile of |w| (lesson 08 chooses
# such thresholds properly) restores the others' precision but saturates the outlier itself: which is better
# depends on whether that weight matters — measured both ways below.

# %%
# NBVAL_IGNORE_OUTPUT  (float error values)
w = convs["conv3"].weight.detach().clone()
OUT = 123
w.view(-1)[OUT] = 20 * w.abs().max()
others = torch.ones(w.numel(), dtype=torch.bool)
others[OUT] = False
out_err = {}
for k, T in {"max|w| (outlier sets the range)": w.abs().max().item(),
             "99.99th percentile": quant.calibrate(w, "percentile", percentile=99.99)}.items():
    S = T / 127
    d = (quant.dequantize(quant.quantize(w, S, 0, symmetric=True), S, 0) - w).flatten()
    out_err[k] = (float((d[others] ** 2).mean()), abs(float(d[OUT])))
    print(f"{k:>32}: T = {T:.4f}  MSE of the other {int(others.sum())} weights {out_err[k][0]:.3e}  "
          f"|error| of the outlier {out_err[k][1]:.4f}")
print(f"clean conv3 weights, max range: MSE {quant.quant_error(convs['conv3'].weight, 8, True):.3e}")
gain = out_err["max|w| (outlier sets the range)"][0] / out_err["99.99th percentile"][0]
print(f"clipping makes the other weights {gain:.0f}x more precise")

# %% [markdown]
# ## 7 · Error vs bits
#
# A symmetric $b$-bit code has $2^{b-1}-1$ levels on each side, so its step is $\max|w| / (2^{b-1}-1)$. At 8 bits
# removing a bit about doubles the step, so the MSE (≈ step²/12) grows ~4× per bit (≈ 6 dB of
# signal-to-quantisation-noise ratio per bit). At low bit widths the step grows faster (7 → 3 → 1 levels: ×2.33,
# then ×3), while the error is bounded by the weights' own mean square: once most weights round to zero, the
# MSE saturates. The cell prints the measured growth per bit next to the step² prediction.

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
bits_list = [8, 6, 4, 3, 2]
w2 = convs["conv2"].weight.detach()
curves = {f"{'per-channel' if ax_ is not None else 'per-tensor'}": [quant.quant_error(w2, b, True, axis=ax_) for b in bits_list]
          for ax_ in (None, 0)}
levels = {b: 2 ** (b - 1) - 1 for b in bits_list}
per_bit = {}
for i, (b, e1, e2) in enumerate(zip(bits_list, *curves.values())):
    line = f"{b} bits: MSE per-tensor {e1:.2e}  per-channel {e2:.2e}"
    if i:
        b0, db = bits_list[i - 1], bits_list[i - 1] - b
        pred = (levels[b0] / levels[b]) ** (2 / db)
        per_bit[b] = (pred, *((c[i] / c[i - 1]) ** (1 / db) for c in curves.values()))
        line += f"   per bit removed since {b0}: x{per_bit[b][1]:.2f} / x{per_bit[b][2]:.2f} (step^2 predicts x{pred:.2f})"
    print(line)
print(f"mean square of the weights (MSE if every weight rounded to 0): {float((w2 ** 2).mean()):.2e}")
ax = lines(bits_list, curves, logy=True, xlabel="bits", ylabel="MSE", title="conv2 weights: error vs bits (symmetric)")
display(Markdown(f"**Read it.** From 8 to 6 bits the per-tensor MSE grows ×{per_bit[6][1]:.2f} per bit (step² "
                 f"predicts ×{per_bit[6][0]:.2f}); from 3 to 2 bits ×{per_bit[2][1]:.2f} per-tensor and "
                 f"×{per_bit[2][2]:.2f} per-channel, below the ×{per_bit[2][0]:.0f} of step² because the error "
                 f"approaches the weights' mean square {float((w2 ** 2).mean()):.2e} (2-bit per-tensor MSE "
                 f"{curves['per-tensor'][-1]:.2e})."))

# %% [markdown]
# **Try it.** Move the **bits** slider (first control): the histogram of `conv2`'s weights is overlaid with
# what they become after quantisation, and the title shows the error. At 2 bits symmetric there are only the
# levels −1, 0, +1 (× the scale).

# %%
def bits_view(bits=4, scheme="per-channel"):
    axis = 0 if scheme == "per-channel" else None
    if axis is None:
        S, _ = quant.qparams(w2.min().item(), w2.max().item(), bits, symmetric=True)
        wh = quant.dequantize(quant.quantize(w2, S, 0, bits, True), S, 0)
    else:
        S, Z = quant.qparams_per_channel(w2, 0, bits, symmetric=True)
        wh = quant.dequantize_per_channel(quant.quantize_per_channel(w2, S, Z, 0, bits, True), S, Z, 0)
    mse = float(((wh - w2) ** 2).mean())
    sqnr = 10 * torch.log10((w2 ** 2).mean() / max(mse, 1e-30)).item()
    ax = histogram(w2, bins=120, label="float weights")
    histogram(wh, bins=120, ax=ax, label=f"{bits}-bit {scheme}", logy=True,
              title=f"{bits} bits, {scheme}: MSE {mse:.2e}, SQNR {sqnr:.1f} dB", xlabel="weight value")
    print(f"{bits} bits {scheme}: {len(torch.unique(wh))} distinct values, MSE {mse:.3e}, SQNR {sqnr:.1f} dB")


interactive_panel(bits_view, bits=int_slider("bits", 4, 2, 8),
                  scheme=dropdown("scheme", ["per-channel", "per-tensor"]))

# %% [markdown]
# ## 8 · Integer-only arithmetic for one layer
#
# **Claim.** Document 003 ("UINT量化", Jacob et al. 2018) and its gemmlowp pointer: with every tensor stored
# as $r = S(q - Z)$, a conv can run on integers alone. For output channel $c$,
# $$q_y = Z_y + M_c\Big(\sum_k q_{w,k}\,(q_{x,k} - Z_x) + q_{b}\Big),\qquad M_c = \frac{S_x S_{w,c}}{S_y},\quad
# q_b = \mathrm{round}\Big(\frac{b}{S_x S_{w,c}}\Big),$$
# int8 × int8 products summed in int32, and the real multiplier $M_c \in (0, 1)$ stored as an int32
# $M_0 \in [2^{30}, 2^{31})$ with a shift: $M = M_0 \cdot 2^{\text{shift}-31}$.

# %%
show_source(quant.quantize_multiplier)
show_source(quant.IntegerConv2d.__call__)

# %%
# NBVAL_CHECK_OUTPUT
for m in (0.0123, 0.3, 0.75):
    M0, sh = quant.quantize_multiplier(m)
    compare(f"M = {m}: M0 = {M0}, shift = {sh}, M0*2^(shift-31)", round(M0 * 2.0 ** (sh - 31), 9), m, rtol=1e-9)

# %% [markdown]
# We take the first conv of the trained model with its BatchNorm folded in (`torch.nn.utils.fusion`), quantise
# the input images to 8 bits with a zero point, the weights per channel to int8, and the ReLU output to 8 bits,
# then compare three results: the integer-only layer, the same quantised operands computed in float
# (the "simulated" result), and the original float layer.

# %%
fused = fuse_conv_bn_eval(model.features[0][0], model.features[0][1])
x_int = x_in[:N_INT]
y_float = F.relu(fused(x_int)).detach()
x_S, x_Z = quant.qparams(x_int.min().item(), x_int.max().item())
y_S, y_Z = quant.qparams(0.0, y_float.max().item())
layer = quant.IntegerConv2d.from_float(fused.weight, fused.bias, x_scale=x_S, x_zp=x_Z, out_scale=y_S,
                                       out_zp=y_Z, padding=1, relu=True)
xq = quant.quantize(x_int, x_S, x_Z)
yq = layer(xq)
acc = layer.accumulate(xq)
w_hat = quant.dequantize_per_channel(layer.wq, layer.w_scale, torch.zeros(len(layer.w_scale)), 0)
b_hat = (layer.bias_q.double() * x_S * layer.w_scale).float()
y_sim = quant.quantize(F.relu(F.conv2d(quant.dequantize(xq, x_S, x_Z), w_hat, b_hat, padding=1)), y_S, y_Z)
steps_vs_float = ((quant.dequantize(yq, y_S, y_Z) - y_float).abs() / y_S)

# %%
# NBVAL_CHECK_OUTPUT
print(f"input codes {xq.dtype} in [{int(xq.min())}, {int(xq.max())}], zero point {x_Z}; weights int8 in "
      f"[{int(layer.wq.min())}, {int(layer.wq.max())}]; accumulators fit int32: {bool(acc.abs().max() < 2**31)}")
print(f"integer vs simulated (float math on the same codes): within 1 code everywhere: {bool((yq - y_sim).abs().max() <= 1)}")
print(f"integer vs float layer: within 3 output steps everywhere: {bool(steps_vs_float.max() <= 3)}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
same_sim = (yq == y_sim).float().mean().item()
print(f"integer vs simulated: {same_sim:.4%} of {yq.numel():,} outputs identical, max difference "
      f"{int((yq - y_sim).abs().max())} code(s)")
print(f"integer vs float: mean |error| {steps_vs_float.mean().item():.3f} output steps (S_y = {y_S:.4f}), "
      f"max {steps_vs_float.max().item():.2f}")
display(Markdown(f"**Read it.** The integer layer equals the simulated one on {same_sim:.2%} of the outputs and "
                 f"differs by at most {int((yq - y_sim).abs().max())} code elsewhere: the rounding of the fixed-point "
                 f"multiplier. Its distance to the float layer is the quantisation error of input, weights and output: "
                 f"{steps_vs_float.mean().item():.2f} output steps on average, {steps_vs_float.max().item():.2f} at most."))

# %% [markdown]
# ## 9 · Exercises
#
# **9.1** A qint8 weight is stored as the bits `11100011`, scale 0.025, zero point 0. What real value is it?
# (Careful: qint8 is two's complement.)

# %%
answer = ...  # a float
ex.negative_code.check(answer)

# %% [markdown]
# **9.2** Give `(scale, zero_point)` for 8-bit asymmetric quantisation (codes 0..255) of the range [−1, 3].

# %%
answer = ...  # (scale, zero_point)
ex.uint8_qparams.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
ex.negative_code.check(ex.negative_code.solution())
ex.uint8_qparams.check(ex.uint8_qparams.solution())

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
outl = out_err["max|w| (outlier sets the range)"], out_err["99.99th percentile"]
range_word = {"union": "the union has the lower per-image MSE", "mean of batches": "the mean of the batches has the "
              "lower per-image MSE", None: "the two cannot be told apart at this budget"}[v_range.better]
display(Markdown("\n".join([
    f"* Document 001's example holds: the qint8 code of 0.725 at scale 0.025 is `{format(int(q_torch.int_repr()), '08b')}` "
    f"= {int(q_ours)} in torch and in `lessons_lib.quant`. Its restore formula needs $(Q - Z)\\,S$ (**erratum**, section "
    f"2.2.1): with $Z = 10$, code {int(qz.int_repr())} is {round(float(qz.dequantize()), 6)}, not {10 + doc_q * 0.025}.",
    "* Our integer codes equal `torch.quantize_per_tensor` / `quantize_per_channel` on real activations and weights "
    "(checked above).",
    f"* On the ReLU outputs symmetric int8 has the MSE of asymmetric times {sym_span} (predicted (255/127)² = "
    f"{(255 / 127) ** 2:.2f}).",
    f"* Per-channel weight scales cut the 8-bit MSE of {sum(g > 1 for g in pc_gain.values())} of {len(pc_gain)} conv "
    f"layers of `shapes_teacher`, by ×{min(pc_gain.values()):.1f} to ×{max(pc_gain.values()):.1f}: modest; this "
    f"model's channel ranges differ by at most ×{max(spread.values()):.2f}.",
    f"* Power-of-two scales (document 003's fractional length) cost ×{min(ratios.values()):.2f} to "
    f"×{max(ratios.values()):.2f} MSE against a general scale (bound: 4×).",
    f"* Range from calibration batches, judged on other images (`conv5`): the mean of the per-batch maxima clips "
    f"{(a_eval > ranges['mean of batches']).float().mean().item():.4%} of the values and the union "
    f"{(a_eval > ranges['union']).float().mean().item():.4%}; per-image MSE, paired: {range_word}.",
    f"* One outlier weight 20× the tensor's max inflates the other weights' per-tensor MSE to {outl[0][0]:.2e} (clean: "
    f"{quant.quant_error(convs['conv3'].weight, 8, True):.2e}); clipping at the 99.99th percentile brings it back to "
    f"{outl[1][0]:.2e} (×{gain:.0f} lower) but saturates the outlier (error {outl[1][1]:.2f}).",
    f"* MSE vs bits (`conv2`): ×{per_bit[6][1]:.2f} per bit removed from 8 to 6 bits, where step² predicts "
    f"×{per_bit[6][0]:.2f}; from 3 to 2 bits ×{per_bit[2][1]:.2f} per-tensor, as the error nears the weights' mean square.",
    f"* An integer-only conv (int8 × int8 → int32, fixed-point multiplier and shift) matches the simulated quantised "
    f"conv on {same_sim:.2%} of the outputs (at most {int((yq - y_sim).abs().max())} code off) and the float conv within "
    f"{steps_vs_float.max().item():.2f} output steps (mean {steps_vs_float.mean().item():.2f}).",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | quantisation | 量化 | mapping floats to a few integer levels |
# | scale $S$ | 缩放因子 / 标度 | float size of one integer step |
# | zero point $Z$ | 零点 | the integer code that stands for 0.0 |
# | symmetric / asymmetric | 对称 / 非对称量化 | $Z = 0$ and ±range / a range shifted by $Z$ |
# | per-tensor / per-channel | 逐张量 / 逐通道 | one scale per tensor / per output channel |
# | fractional length | 小数位长度 | $fl$ of a power-of-two scale $2^{-fl}$ |
# | fake quantisation | 伪量化 | quantise then dequantise in float (storage or QAT) |
# | fixed point | 定点化 | integer arithmetic with an implied binary point |
# | requantisation | 重量化 | int32 accumulator → 8-bit output via multiplier and shift |
# | clipping / saturation | 截断 / 饱和 | values beyond the range are set to the end codes |
#
# **Next:** [08 · KL-divergence saturation thresholds](08_kl_calibration.ipynb).
