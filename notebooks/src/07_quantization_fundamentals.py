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
# **Runtime** headless on a 2-core CPU, kernel start included: about 10 s (`FAST=True`: about 5 s).

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
from torch.nn.utils.fusion import fuse_conv_bn_eval

from lessons_lib import checkpoints, data, machine, quant, seed_everything
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
# > **Erratum (document 001).** The restore formula is printed as `input = zero_point + Q × scale`. That is
# > only right when the zero point is 0 (as in its example). The zero point is an *integer code*, so it must be
# > subtracted from `Q` before scaling: $\hat x = (Q - Z)\,S$. With $Z = 10$ the same code 29 stands for
# > 0.475, not 10.725 — checked against torch below.

# %%
# NBVAL_CHECK_OUTPUT
qz = torch.quantize_per_tensor(torch.tensor([0.475]), scale=0.025, zero_point=10, dtype=torch.quint8)
print("code:", int(qz.int_repr()), "| document's formula Z + Q*S =", 10 + 29 * 0.025,
      "| (Q - Z)*S =", round((29 - 10) * 0.025, 6), "| torch dequantize:", round(float(qz.dequantize()), 6))
ok = compare("ours dequantize(29, S=0.025, Z=10)", round(float(quant.dequantize(torch.tensor([29]), 0.025, 10)), 6),
        round(float(qz.dequantize()), 6), ref_name="torch", show_values=True)

# %% [markdown]
# ## 2 · Symmetric vs asymmetric
#
# Weights are roughly centred on 0, ReLU outputs are all ≥ 0. Symmetric quantisation of a ReLU output wastes
# the negative half of the codes, so its step is about twice the asymmetric one, and the rounding error
# (≈ step²/12 per value) about four times larger. We check our integer codes against torch first.

# %%
# NBVAL_CHECK_OUTPUT
a = acts["conv2"]
for sym, dtype in ((False, torch.quint8), (True, torch.qint8)):
    S, Z = quant.qparams(a.min().item(), a.max().item(), symmetric=sym)
    ref = torch.quantize_per_tensor(a, S, Z, dtype).int_repr().int()
    compare(f"conv2 ReLU output, {'symmetric' if sym else 'asymmetric'} codes",
            quant.quantize(a, S, Z, symmetric=sym), ref, ref_name="torch.quantize_per_tensor")

# %%
err = {}
for name in convs:
    a = acts[name]
    err[name] = {sym: quant.quant_error(a, 8, symmetric=sym) for sym in (False, True)}
    print(f"{name} ReLU output: max {a.max().item():6.3f}  MSE asymmetric {err[name][False]:.3e}  "
          f"symmetric {err[name][True]:.3e}  ratio {err[name][True] / err[name][False]:.2f}")

# %% [markdown]
# The ratio is close to 4 on every layer: (255/127)² ≈ 4.03 is what halving the number of usable levels costs.
#
# ## 3 · Per-tensor vs per-channel weights
#
# **Claim.** Document 003 ("INT量化") lists quantising each channel with its own range as the first cure for
# large quantisation errors. Output channels of a trained conv have very different ranges, so one scale for
# the whole tensor is set by the widest channel and wastes levels on the narrow ones.

# %%
# NBVAL_CHECK_OUTPUT
w = convs["conv1"].weight.detach()
S_c, Z_c = quant.qparams_per_channel(w, axis=0, symmetric=True)
compare("conv1 per-channel int8 codes", quant.quantize_per_channel(w, S_c, Z_c, axis=0, symmetric=True),
        torch.quantize_per_channel(w, S_c, Z_c, 0, torch.qint8).int_repr().int(), ref_name="torch.quantize_per_channel")
amax_c = w.abs().flatten(1).amax(1)
print(f"conv1: {w.shape[0]} output channels, max|w| per channel from {amax_c.min():.3f} to {amax_c.max():.3f}")

# %%
pc = {name: {b: (quant.quant_error(c.weight, b, True), quant.quant_error(c.weight, b, True, axis=0))
             for b in (8, 4)} for name, c in convs.items()}
for name, r in pc.items():
    print(f"{name}: 8-bit MSE per-tensor {r[8][0]:.2e} per-channel {r[8][1]:.2e} (x{r[8][0] / r[8][1]:.1f})   "
          f"4-bit x{r[4][0] / r[4][1]:.1f}")
ax = bar({n: r[8][0] / r[8][1] for n, r in pc.items()}, ylabel="per-tensor MSE / per-channel MSE",
         title="8-bit weights of shapes_teacher: error saved by per-channel scales")

# %% [markdown]
# ## 4 · Power-of-two scale ("fractional length") vs a general scale
#
# **Claim.** Document 003 describes two kinds of INT quantisation: keep the float's exponent, i.e. a scale
# $2^{-fl}$ with *fractional length* $fl$ (rescaling is a bit shift), or a general real scale — more precise,
# slightly more work. Rounding the scale up to the next power of two keeps the range but makes the step up to
# 2× larger, so the error grows by up to 4×.

# %%
show_source(quant.pow2_scale)

# %%
# NBVAL_CHECK_OUTPUT
print("pow2_scale(0.03) =", quant.pow2_scale(0.03), "  pow2_scale(0.25) =", quant.pow2_scale(0.25))

# %%
ratios = {}
for name, c in convs.items():
    wt = c.weight.detach()
    S, _ = quant.qparams(wt.min().item(), wt.max().item(), symmetric=True)
    S2, fl = quant.pow2_scale(S)
    mse = lambda s: float(((quant.dequantize(quant.quantize(wt, s, 0, symmetric=True), s, 0) - wt) ** 2).mean())  # noqa: E731
    ratios[name] = mse(S2) / mse(S)
    print(f"{name}: general S = {S:.5f}, power-of-two S = 2^-{fl} = {S2:.5f}; MSE x{ratios[name]:.2f}")

# %% [markdown]
# ## 5 · Range from the union vs the mean of per-batch min/max
#
# Document 003 offers two ways to fix a layer's range from calibration batches: the union (the most extreme
# min / max seen in any batch) or the average of the per-batch min / max. The mean ignores rare large values:
# fewer levels are wasted on them, but they get clipped. Measured on the ReLU output of `conv5`:

# %%
a = acts["conv5"]
batch_max = torch.stack([a[i:i + BATCH].max() for i in range(0, len(a), BATCH)])
ranges = {"union": batch_max.max().item(), "mean of batches": batch_max.mean().item()}
range_err = {}
for k, hi in ranges.items():
    S, Z = quant.qparams(0.0, hi)
    ah = quant.dequantize(quant.quantize(a, S, Z), S, Z)
    range_err[k] = float(((ah - a) ** 2).mean())
    print(f"{k:>16}: max {hi:6.3f}  clipped {(a > hi).float().mean().item():.4%} of values  MSE {range_err[k]:.3e}")
print(f"{len(batch_max)} batches of {BATCH}; per-batch max from {batch_max.min():.3f} to {batch_max.max():.3f}")

# %% [markdown]
# ## 6 · Outliers and clipping
#
# Document 003's second cure: find outlier weights and remove them (it blames them on dead neurons whose
# weights stopped updating). One weight 20× larger than the rest of its tensor stretches a per-tensor scale
# 20×, and every other weight pays. Clipping the range at the 99.99th percentile of |w| (lesson 08 chooses
# such thresholds properly) restores the others' precision but saturates the outlier itself: which is better
# depends on whether that weight matters — measured both ways below.

# %%
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
# Each bit removed doubles the step, so the MSE grows ~4× per bit (≈ 6 dB of signal-to-quantisation-noise
# ratio per bit) until so few levels are left that most weights round to zero.

# %%
bits_list = [8, 6, 4, 3, 2]
w2 = convs["conv2"].weight.detach()
curves = {f"{'per-channel' if ax_ is not None else 'per-tensor'}": [quant.quant_error(w2, b, True, axis=ax_) for b in bits_list]
          for ax_ in (None, 0)}
for b, e1, e2 in zip(bits_list, *curves.values()):
    print(f"{b} bits: MSE per-tensor {e1:.2e}  per-channel {e2:.2e}")
ax = lines(bits_list, curves, logy=True, xlabel="bits", ylabel="MSE", title="conv2 weights: error vs bits (symmetric)")

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
print(f"integer vs simulated: {(yq == y_sim).float().mean().item():.4%} of {yq.numel():,} outputs identical")
print(f"integer vs float: mean |error| {steps_vs_float.mean().item():.3f} output steps (S_y = {y_S:.4f}), "
      f"max {steps_vs_float.max().item():.2f}")

# %% [markdown]
# The integer layer equals the simulated one up to the rounding of the fixed-point multiplier (at most one code);
# its distance to the float layer is the quantisation error of input, weights and output — a few output steps.
#
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
# (Numbers from the run above; they are printed there.)
# * Document 001's example holds: the qint8 code of 0.725 at scale 0.025 is `00011101` = 29, in torch and in
#   `lessons_lib.quant`; its restore formula needs $(Q - Z)\,S$ (erratum: with $Z = 10$, code 29 is 0.475).
# * Our integer codes equal `torch.quantize_per_tensor` / `quantize_per_channel` on real activations and weights.
# * On ReLU outputs symmetric int8 has about 4× the MSE of asymmetric (ratio printed per layer in section 2).
# * Per-channel weight scales cut the 8-bit MSE of every conv layer of `shapes_teacher` (factors in section 3).
# * Power-of-two scales cost up to 4× MSE against a general scale (section 4); the mean of per-batch maxima
#   clips a small fraction of activations and changes the MSE against the union range (section 5); one outlier
#   weight inflates the other weights' per-tensor MSE by orders of magnitude; percentile clipping recovers them
#   but saturates the outlier (section 6).
# * MSE grows ~4× per bit removed, 8 → 4 → 2 bits (section 7).
# * An integer-only conv (int8 × int8 → int32, fixed-point multiplier and shift) matches the simulated quantised
#   conv within one code and the float conv within a few output steps (section 8).
#
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
