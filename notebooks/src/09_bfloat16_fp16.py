# %% [markdown]
# # 09 · bfloat16 and fp16
#
# **After this lesson you can** read the bits of a number in fp32, fp16 and bfloat16, say when a
# cast loses a value to underflow, pick a loss scale for fp16 training, and predict — then measure —
# what half precision does to a trained CNN's accuracy and speed on your CPU.
#
# **Goals**
# 1. Decode sign / exponent / mantissa fields and derive each format's range and epsilon, checked against `torch.finfo`.
# 2. Compare bfloat16 by truncation (document 003) with round-to-nearest-even (what PyTorch does), and measure the bias of truncation.
# 3. Measure how many real gradients fp16 flushes to zero, with and without loss scaling; bf16 for contrast.
# 4. Test document 003's "fp16 loses under 1 %" on our teacher with a paired interval, and time fp32 vs bf16 vs fp16
#    kernels side by side on the CPU the notebook runs on.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 15 s (`FAST=True`: about 9 s);
# about 28 s where oneDNN and ATen are restricted to AVX2 (no bf16 instructions: the bf16 timings shrink to their budget).

# %% tags=["parameters"]
FAST = False          # fewer test images and timing repeats
SEED = 0              # every random draw follows this seed
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU (the CPU is always measured too)
N_TEST = 1000         # test images for the accuracy comparison
MATMUL_N = 1024       # largest square matrix size for the matmul timing
CALL_BUDGET_S = 0.4   # time budget of one timed call: sizes and repeats shrink to fit it on slow CPUs
ACC_BUDGET_S = 8      # time budget of the bf16 accuracy evaluation (fewer images on CPUs without bf16)
BATCH = 64            # batch size for the model timing

# %%
import struct
import time

import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

from scipy.stats import beta as beta_dist

from lessons_lib import checkpoints, data, machine, profile, seed_everything, stats, train
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson09 as ex
from lessons_lib.course.plotting import bar, grouped_bar, lines, use_house_style
from lessons_lib.quant import FORMATS, bf16_round, bf16_truncate, float_bits
from lessons_lib.quant import halfprec
from lessons_lib.course.widgets import dropdown, interactive_panel
import ipywidgets as W

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
if FAST:
    N_TEST, MATMUL_N = 500, 512
REPEATS = 5 if FAST else 10
print("measurements below come from:", machine.describe("cpu"))

# %% [markdown]
# ## 1 · Three layouts of one number
#
# **Claim.** Document 003 introduces bfloat16 as Google's 16-bit format for deep learning: it keeps
# float32's 8 exponent bits and cuts the mantissa to 7 bits, so it covers float32's *range* with far
# less *precision*; fp16 (IEEE half) spends its bits the other way round (5 exponent, 10 mantissa bits).
#
# **Formula.** With sign $s$, stored exponent $e$ ($E$ bits, bias $2^{E-1}-1$) and mantissa $m$ ($M$ bits),
# a normal number is $(-1)^s\,2^{e-\text{bias}}\,(1 + m/2^M)$; $e=0$ holds the subnormals
# $(-1)^s\,2^{1-\text{bias}}\,(m/2^M)$ and $e = 2^E-1$ holds inf/NaN. Hence
# $\text{max} = (2-2^{-M})\,2^{\text{bias}}$, smallest normal $2^{1-\text{bias}}$,
# smallest subnormal $2^{1-\text{bias}-M}$, and machine epsilon $2^{-M}$.

# %%
show_source(float_bits)

# %%
# NBVAL_CHECK_OUTPUT
x = torch.tensor([3.14, -0.1, 65504.0, 1e-5])
print(f"{'value':>10} {'format':<5} {'sign':>4} {'exponent':>10} {'mantissa':>24}  stored value")
for v in x:
    for fmt, (dtype, e_bits, m_bits) in FORMATS.items():
        f = float_bits(v.reshape(1), fmt)
        print(f"{v.item():>10.5g} {fmt:<5} {int(f['sign']):>4} {format(int(f['exponent']), f'0{e_bits}b'):>10} "
              f"{format(int(f['mantissa']), f'0{m_bits}b'):>24}  {f['value'].item():.8g}")

# %% [markdown]
# Read the rows: 65504 (fp16's largest number) fits in fp16 exactly, while bfloat16 has only 7 mantissa
# bits and rounds it to 65536; 1e-5 is a *subnormal* in fp16 (exponent field 0) but a comfortable normal
# number in bfloat16. Now derive each format's limits from the formula and check them against `torch.finfo`.

# %%
# NBVAL_CHECK_OUTPUT
for fmt, (dtype, e_bits, m_bits) in FORMATS.items():
    bias = 2 ** (e_bits - 1) - 1
    ours = {"max": (2 - 2.0**-m_bits) * 2.0**bias, "smallest normal": 2.0 ** (1 - bias),
            "smallest subnormal": 2.0 ** (1 - bias - m_bits), "eps": 2.0**-m_bits}
    fi = torch.finfo(dtype)
    ref = {"max": fi.max, "smallest normal": fi.tiny, "smallest subnormal": fi.smallest_normal * 2.0**-m_bits, "eps": fi.eps}
    for k in ours:
        compare(f"{fmt} {k}", ours[k], ref[k], ref_name="torch.finfo", show_values=True)  # powers of two: exact
    # the subnormal is really representable: it does not round to 0, half of it does (ties to even)
    sub = torch.tensor(ours["smallest subnormal"], dtype=torch.float64)
    print(f"{fmt}: smallest subnormal survives the cast: {sub.to(dtype).item() > 0}; half of it -> {(sub / 2).to(dtype).item()}")

# %% [markdown]
# ## 2 · bfloat16 by truncation vs by rounding
#
# **Claim.** Document 003 says a bfloat16 is obtained by simply keeping the first 16 bits of a float32,
# which makes conversion trivial. That is *truncation* (round toward zero). PyTorch (and TensorFlow,
# CUDA's `__float2bfloat16`, the AVX512-BF16 instruction `vcvtneps2bf16`) round to nearest, ties to even:
#
# $$u = \text{bits}(x),\qquad \text{bf16} = \big(u + \underbrace{((u \gg 16)\,\&\,1) + \texttt{0x7FFF}}_{\text{rounding bias}}\big) \gg 16 .$$

# %%
show_source(bf16_truncate)
show_source(bf16_round)

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(SEED)
rand = torch.randn(200_000, generator=g) * 10.0 ** torch.randint(-20, 20, (200_000,), generator=g)
compare("bf16_round bits == x.to(torch.bfloat16) bits on 200k random floats",
        bool(torch.equal(bf16_round(rand).view(torch.int16), rand.to(torch.bfloat16).view(torch.int16))), True,
        ref_name="torch")


def hex16(t):
    return f"0x{int(t.view(torch.int16).item()) & 0xFFFF:04X}"


def hex32(v):
    return f"0x{struct.unpack('<I', struct.pack('<f', v))[0]:08X}"


print(f"\n{'x':>14} {'fp32 bits':>11} {'truncate':>9} {'= value':>14} {'round':>7} {'= value':>14}")
for v in [3.14, 0.1, 1 / 3, 65504.0, 1 + 2**-8, 1 + 3 * 2**-8, 1.0039072]:
    t = torch.tensor([v])
    tr, rn = bf16_truncate(t), bf16_round(t)
    print(f"{v:>14.8g} {hex32(v):>11} {hex16(tr):>9} {tr.float().item():>14.8g} {hex16(rn):>7} {rn.float().item():>14.8g}")
differ = (bf16_truncate(rand).view(torch.int16) != bf16_round(rand).view(torch.int16)).float().mean().item()
print(f"\ntruncation and rounding differ on {differ:.1%} of the random floats")

# %% [markdown]
# They differ whenever the dropped 16 bits are above `0x8000` (or exactly `0x8000` with an odd kept bit): for
# low bits spread uniformly, half of all floats. Does it matter? Truncation always moves a value *toward zero*, so its errors
# do not cancel: over many values the mean **signed** relative error is negative, while rounding's is ~0.

# %%
show_source(halfprec.truncation_bias)

# %%
# NBVAL_CHECK_OUTPUT
acts = torch.randn(1_000_000, generator=torch.Generator().manual_seed(SEED)).abs() * 3  # ReLU-like values
bias = halfprec.truncation_bias(acts)
print(f"mean signed relative error  truncate {bias['truncate']:+.2e}   round {bias['round']:+.1e}")
print(f"mean |relative error|       truncate {bias['truncate_abs']:.2e}   round {bias['round_abs']:.2e}")
print(f"truncation biased toward zero: {bias['truncate'] < -10 * abs(bias['round'])}; "
      f"its |error| about twice rounding's: {1.5 < bias['truncate_abs'] / bias['round_abs'] < 2.5}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
# does a sum of many terms inherit the bias? the 1,000,000 values above, summed in float64
exact = acts.double().sum()
sum_rel = {k: float((fn(acts).double().sum() - exact) / exact) for k, fn in (("truncate", bf16_truncate), ("round", bf16_round))}
display(Markdown(
    "> **Note (document 003, section \"bfloat16\", point 1).** The document says a bfloat16 can be had by simply "
    "keeping the first 16 bits of a float32, which makes converting between the two easy. That is a valid conversion "
    "(IEEE 754's round-toward-zero) and it is cheap, so the statement is right as far as it goes; but it is not "
    f"what frameworks do: PyTorch rounds to nearest even (bit for bit equal to `bf16_round` on {rand.numel():,} floats "
    f"above), and the two differ on {differ:.1%} of them. Truncation always shrinks: on the {acts.numel():,} ReLU-like "
    f"values its mean signed relative error is {bias['truncate']:+.2e} (rounding: {bias['round']:+.1e}), and a sum "
    f"inherits it — the sum of the truncated values is off by {sum_rel['truncate']:+.2e} relative, of the rounded ones "
    f"by {sum_rel['round']:+.1e}. Rounding costs a few integer operations more than truncation's one shift (a shift, "
    "an AND and two adds, `bf16_round` above)."))

# %% [markdown]
# ## 3 · Underflow of small gradients, and loss scaling
#
# **Claim.** Document 003's second point: bfloat16's dynamic range is that of float32, so it rarely
# underflows — which matters in training, where gradients are small and a gradient flushed to zero
# carries no signal at all. Mixed-precision training (the *Mixed Precision Training* paper the document
# cites) keeps fp16 usable by multiplying the loss by a scale $s$ before the backward pass and dividing
# the float32 gradients by $s$ afterwards.
#
# **Formula.** $\text{flushed}(g, s) = \#\{g \ne 0,\ \text{fl}_{16}(s\,g) = 0\} / \#\{g \ne 0\}$ and
# $\text{overflow}(g, s) = \#\{|\text{fl}_{16}(s\,g)| = \infty\} / \#\{g\ne 0\}$; fp16 flushes magnitudes up to
# $2^{-25}$ (exactly $2^{-25}$ ties to the even code 0) and overflows from 65520 on (65504 plus half a step).
#
# A realistic gradient distribution: the per-parameter gradients of our trained teacher on one batch of
# 256 images (a trained model has small gradients: exactly when underflow bites). This casts the float32
# parameter gradients; in a real fp16 backward pass the activation gradients are fp16 too, so it is a lower
# bound on what underflows.

# %%
teacher = checkpoints.pretrained("shapes_teacher")
splits = data.shapes_splits()
Xte, yte = train.tensors(splits.test)
Xte, yte = Xte[:N_TEST], yte[:N_TEST]
teacher.zero_grad()
F.cross_entropy(teacher(Xte[:256]), yte[:256]).backward()
grads = torch.cat([p.grad.flatten() for p in teacher.parameters() if p.grad is not None])
teacher.zero_grad()
show_source(halfprec.cast_stats)

# %%
# NBVAL_IGNORE_OUTPUT  (gradient values depend on float summation order, so counts can move slightly between CPUs)
scales = [2.0**k for k in range(0, 31, 3)]
cstats = {s: halfprec.cast_stats(grads, "fp16", s) for s in scales}
bf = halfprec.cast_stats(grads, "bf16")
print(f"{grads.numel():,} gradient entries, |g| from {grads[grads != 0].abs().min():.2e} to {grads.abs().max():.2e}; "
      f"median {grads.abs().median():.2e}")
print(f"{'format':<6} {'scale':>9} {'flushed to 0':>13} {'subnormal':>10} {'overflow':>9}")
print(f"{'bf16':<6} {1:>9} {bf['flushed']:>13.3%} {bf['subnormal']:>10.3%} {bf['overflow']:>9.3%}")
for s, st in cstats.items():
    print(f"{'fp16':<6} {f'2^{int(torch.log2(torch.tensor(s)))}':>9} {st['flushed']:>13.3%} {st['subnormal']:>10.3%} {st['overflow']:>9.3%}")
k_of = {s: round(torch.log2(torch.tensor(s)).item()) for s in scales}
GOOD = 1e-4  # "almost all": under 0.01 % of the gradients flushed or subnormal
good = [s for s, st in cstats.items() if st["overflow"] == 0 and st["flushed"] + st["subnormal"] < GOOD]
first_over = min((s for s in scales if cstats[s]["overflow"] > 0), default=None)
print(f"\nverdict: fp16 without scaling flushes {cstats[1.0]['flushed']:.3%} of the gradients to 0 and leaves "
      f"{cstats[1.0]['subnormal']:.1%} subnormal (bf16: {bf['flushed']:.3%} and {bf['subnormal']:.1%}); "
      + (f"scales 2^{k_of[min(good)]} to 2^{k_of[max(good)]} leave under {GOOD:.2%} of them flushed or subnormal "
         "without overflow" if good else f"no scale tried leaves under {GOOD:.2%} flushed or subnormal without overflow")
      + (f", and 2^{k_of[first_over]} already overflows {cstats[first_over]['overflow']:.3%}" if first_over else ""))
lines([int(torch.log2(torch.tensor(s))) for s in scales],
      {"flushed to 0": [100 * cstats[s]["flushed"] for s in scales],
       "subnormal (fewer bits)": [100 * cstats[s]["subnormal"] for s in scales],
       "overflow to inf": [100 * cstats[s]["overflow"] for s in scales]},
      xlabel="loss scale = 2^k", ylabel="% of non-zero gradients", title="fp16 gradients of the trained teacher vs loss scale");

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
g_med = grads[grads != 0].abs().median().item()
display(Markdown(
    f"**Read the curve** from left to right: without a scale {cstats[1.0]['flushed']:.3%} of the gradients vanish in fp16 "
    f"and {cstats[1.0]['subnormal']:.1%} are subnormal, keeping fewer significant bits. This small, trained model's "
    f"median |gradient| is {g_med:.1e}, far above fp16's flush limit 2⁻²⁵ ≈ {2.0 ** -25:.1e}, so the flushed share is "
    "small; networks with smaller gradients lose more. "
    + (f"Scales from 2^{k_of[min(good)]} = {min(good):,.0f} to 2^{k_of[max(good)]} = {max(good):,.0f} lift almost all of "
       "them into fp16's normal range; " if good else "")
    + (f"from 2^{k_of[first_over]} on the largest gradients overflow to inf. " if first_over else "")
    + "That is why `torch.amp.GradScaler` *adapts* the scale: it halves it after an overflow and grows it again "
    f"while steps succeed. bfloat16 flushes {bf['flushed']:.3%} and leaves {bf['subnormal']:.3%} subnormal with no "
    "scale at all — document 003's point 2."))

# %% [markdown]
# ## 4 · Does half precision cost accuracy?
#
# **Claim.** Document 003 (section "Conservative vs. Aggressive") puts fp16 among the "conservative"
# quantisations: relative to fp32 it usually loses under 1 % accuracy. We read "1 %" as one accuracy point and
# test it on our teacher as: *is the upper end of the 95 % interval of the paired loss (fp32 − fp16, per test
# image) below 1 point?* One small model on synthetic images is one instance of the document's "usually", not
# a test of it in general. We run the trained teacher three ways on the CPU:
#
# * **bf16** with real bfloat16 kernels (`model.to(torch.bfloat16)`, and `torch.autocast`, which keeps
#   reductions such as BatchNorm in float32);
# * **fp16** *simulated*: most x86 CPUs have no fp16 arithmetic (AVX512-FP16 / AMX-FP16), and PyTorch then
#   runs fp16 convolutions and matmuls on a slow reference path (a matmul is timed in section 5), so `halfprec.simulate_half` rounds weights, input and every layer's output to
#   fp16 while computing in float32, which is what fp16 kernels with fp32 accumulation produce. We check
#   the simulation against the real (slow) `model.half()` on a few images first.

# %%
show_source(halfprec.simulate_half)

# %%
# NBVAL_CHECK_OUTPUT
few = Xte[:32]
with torch.no_grad():
    real16 = checkpoints.pretrained("shapes_teacher").half()(few.half()).float()
    sim16 = halfprec.simulate_half(teacher, "fp16")(few)
    ref32 = teacher(few)
compare("simulated fp16 logits vs real fp16 kernels (32 images)", sim16, real16, ref_name="model.half()", atol=0.05)
_ = compare("same predicted classes", bool(torch.equal(sim16.argmax(1), real16.argmax(1))), True, ref_name="model.half()")

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies can move by an image between CPUs: float rounding near a decision boundary)
def correct_of(fn, n):
    """Per-image correctness (bool numpy array) of ``fn`` on the first ``n`` test images."""
    with torch.no_grad():
        out = torch.cat([fn(Xte[i:min(i + 500, n)]).float() for i in range(0, n, 500)])
    return (out.argmax(1) == yte[:n]).numpy()


def disagree_upper(pd):
    """Exact (Clopper-Pearson) upper 95 % bound on the share of images on which the two models disagree."""
    return float(beta_dist.ppf(0.975, pd.discordant + 1, pd.n - pd.discordant)) if pd.discordant < pd.n else 1.0


def loss_upper(pd):
    """Upper 95 % bound of the loss ``acc_ref - acc_other`` from ``pd = paired_difference(other, ref)``: the paired
    interval's, or, when fewer than 10 images disagree (the normal interval then collapses, to zero width when
    none do), the larger of it and the exact bound on the share of disagreeing images, which bounds the loss too."""
    return max(-pd.lo, disagree_upper(pd)) if pd.discordant < 10 else -pd.lo


bf_model = checkpoints.pretrained("shapes_teacher").to(torch.bfloat16)
sim_fp16 = halfprec.simulate_half(teacher, "fp16")


def autocast_bf16(xb):
    with torch.autocast("cpu", dtype=torch.bfloat16):
        return teacher(xb)


# bf16 kernels are slow on CPUs without bf16 instructions: size the evaluation to their measured speed
t0 = time.perf_counter()
with torch.no_grad():
    bf_model(Xte[:100].to(torch.bfloat16))
per_image = (time.perf_counter() - t0) / 100
n_acc = profile.items_within(ACC_BUDGET_S / 2, per_image, at_least=min(200, N_TEST), at_most=N_TEST, multiple_of=100)
# fp32 and the fp16 simulation are fast everywhere: they always get all N_TEST images; the bf16 runs get n_acc
correct = {"fp32": correct_of(teacher, N_TEST), "fp16 (simulated)": correct_of(sim_fp16, N_TEST),
           "bf16 (model.to)": correct_of(lambda xb: bf_model(xb.to(torch.bfloat16)), n_acc),
           "bf16 (autocast)": correct_of(autocast_bf16, n_acc)}
print(f"shapes teacher, {N_TEST} test images (bf16: {n_acc}), on", machine.describe("cpu"))
if n_acc < N_TEST:
    print(f"(bf16 shrunk from N_TEST = {N_TEST}: bf16 runs at {1 / per_image:.0f} images/s here, and this cell's "
          f"budget is ACC_BUDGET_S = {ACC_BUDGET_S} s)")
accs = {k: float(c.mean()) for k, c in correct.items()}
vs32 = {k: stats.paired_difference(c, correct["fp32"][:len(c)]) for k, c in correct.items() if k != "fp32"}
for k, v in accs.items():
    line = f"{k:<18} {v:.2%} on {len(correct[k])} images"
    if k in vs32:
        pd = vs32[k]
        line += f" (fp32 on them: {correct['fp32'][:pd.n].mean():.2%})\n    " + pd.text("vs fp32", a=k, b="fp32")
        if pd.discordant < 10:
            line += f"; exact 95 % bound on the share that disagree: {100 * disagree_upper(pd):.2f} points"
    print(line)
loss16_hi = loss_upper(vs32["fp16 (simulated)"])
claim = ("holds for this model" if loss16_hi < 0.01 else
         "fails for this model" if -vs32["fp16 (simulated)"].hi > 0.01 else "is not resolved at this budget")
print(f"\nverdict: fp16 loses at most {100 * loss16_hi:.2f} points (upper 95 % bound, {N_TEST} paired images) -> "
      f"document 003's 'under 1 %' {claim}")

# %% [markdown]
# ## 5 · Speed on the CPU it runs on (and on a GPU where there is one)
#
# Whether bf16 is *faster* depends on the instructions the CPU has. With AVX512-BF16 (the `vdpbf16ps`
# dot-product instruction) or AMX, oneDNN runs bf16 matmuls and convolutions natively — half the bytes,
# twice the multiplies per instruction — so bf16 should beat fp32. Without them (many laptops: AVX2 only)
# the bf16 numbers are converted back to fp32 inside slow generic kernels and bf16 can be many times
# *slower*. fp16 arithmetic needs AVX512-FP16 or AMX-FP16. The next cell detects what the CPU has (it never
# assumes it), then measures side by side: interleaved rounds, and a paired 95 % interval on the mean
# difference per round (`stats.verdict(..., paired=True)`). fp16 is compared with fp32 on the same,
# smaller matrix. Each timing runs to a time budget: the matmul size is the largest of 128…`MATMUL_N` whose
# single bf16 call fits `CALL_BUDGET_S` on this machine, and the cell prints what it shrank.

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
feat = machine.cpu_features()
print("this CPU:", machine.describe_cpu_features())
print("native bf16 kernels usable by PyTorch here:", feat["bf16_native"],
      "| fp16 arithmetic instructions:", feat["avx512_fp16"])


def bf16_matmul(n):  # probe matrices from their own generator: how many sizes are probed depends on the machine
    gp = torch.Generator().manual_seed(SEED + 1)
    a_, b_ = torch.randn(n, n, generator=gp).bfloat16(), torch.randn(n, n, generator=gp).bfloat16()
    return lambda: torch.matmul(a_, b_)


sizes = [n for n in (128, 256, 512, 1024, 2048, 4096) if n <= MATMUL_N] or [MATMUL_N]
n_mm, _ = profile.largest_size_within(bf16_matmul, sizes, budget_s=CALL_BUDGET_S)
shrunk = f" (shrunk from MATMUL_N = {MATMUL_N}: one bf16 call at that size would not fit {CALL_BUDGET_S} s here)" \
    if n_mm < MATMUL_N else ""
a = torch.randn(n_mm, n_mm, generator=g)
b = torch.randn(n_mm, n_mm, generator=g)
pairs = {"fp32": (a, b), "bf16": (a.bfloat16(), b.bfloat16())}
mm = profile.measure_side_by_side({k: torch.matmul for k in pairs}, pairs, warmup=1, repeats=REPEATS,
                                  budget_s=10 * CALL_BUDGET_S)
flop = 2 * n_mm**3
n16 = max(64, n_mm // 4)  # fp16 is slow on CPUs without fp16 arithmetic: a quarter-size matrix is enough
pairs16 = {"fp32": (a[:n16, :n16].contiguous(), b[:n16, :n16].contiguous()),
           "fp16": (a[:n16, :n16].half(), b[:n16, :n16].half())}
mm16 = profile.measure_side_by_side({k: torch.matmul for k in pairs16}, pairs16, warmup=1, repeats=max(3, REPEATS // 2),
                                    budget_s=2 * CALL_BUDGET_S)
flop16 = 2 * n16**3
# the teacher's batch shrinks (multiples of 8) where one bf16 call at BATCH would not fit CALL_BUDGET_S (per_image:
# the bf16 speed measured in section 4), so that several paired rounds fit the budget
bt = profile.items_within(CALL_BUDGET_S, per_image, at_least=8, at_most=BATCH, multiple_of=8)
xb = Xte[:bt]
model_t = profile.measure_side_by_side(
    {"fp32": lambda: teacher(xb), "bf16": lambda: bf_model(xb.to(torch.bfloat16)), "bf16 autocast": lambda: autocast_bf16(xb)},
    (), warmup=1, repeats=REPEATS, budget_s=12 * CALL_BUDGET_S)


def timing_verdict(lat, a_, b_):
    """``stats.verdict`` of two candidates' interleaved rounds (ms, lower is better), or None below 2 rounds."""
    if min(len(lat[a_].times_ms), len(lat[b_].times_ms)) < 2:
        return None
    return stats.verdict(lat[a_].times_ms, lat[b_].times_ms, names=(a_, b_), higher_is_better=False, paired=True, unit="ms")


def vtext(v, digits=2):
    return v.text(digits) if v is not None else "one round only within the budget: no interval"


print("measured on:", machine.describe("cpu"))
print(f"matmul size {n_mm}{shrunk}; teacher batch {bt}"
      + (f" (shrunk from BATCH = {BATCH})" if bt < BATCH else "") + f"; timed rounds: {mm['fp32'].repeats} ({n_mm}), {mm16['fp32'].repeats} ({n16}), "
      f"{model_t['fp32'].repeats} (teacher)")
for k, v in mm.items():
    print(f"matmul {n_mm}x{n_mm} {k:<5} {v.median_ms:8.2f} ms  ({flop / v.median_ms / 1e6:6.1f} GFLOP/s)")
for k, v in mm16.items():
    print(f"matmul {n16}x{n16} {k:<5} {v.median_ms:9.3f} ms  ({flop16 / v.median_ms / 1e6:6.1f} GFLOP/s)")
for k, v in model_t.items():
    print(f"teacher batch {bt} {k:<14} {v.median_ms:8.2f} ms")
v_mm, v_16 = timing_verdict(mm, "fp32", "bf16"), timing_verdict(mm16, "fp32", "fp16")
v_net, v_auto = timing_verdict(model_t, "fp32", "bf16"), timing_verdict(model_t, "fp32", "bf16 autocast")
mm_ratio = mm["fp32"].median_ms / mm["bf16"].median_ms
net_ratio = model_t["fp32"].median_ms / model_t["bf16"].median_ms
auto_ratio = model_t["fp32"].median_ms / model_t["bf16 autocast"].median_ms
ratio16 = mm16["fp32"].median_ms / mm16["fp16"].median_ms


def outcome(v, fast):
    """'faster' / 'slower' / 'tie' / 'one round' of ``fast`` against fp32 from a verdict (None: no interval)."""
    return "one round" if v is None else "tie" if v.better is None else "faster" if v.better == fast else "slower"


OUTCOME_WORDS = {"faster": "faster than", "slower": "slower than", "tie": "cannot be told apart from",
                 "one round": "not resolved (one timed round only) against"}


expected = "faster" if feat["bf16_native"] else "slower"
got = outcome(v_mm, "bf16")
print(f"\nmatmul {n_mm}, paired rounds: {vtext(v_mm)}")
print(f"matmul {n16}, paired rounds: {vtext(v_16, 3)}")
print(f"teacher, paired rounds: {vtext(v_net)}")
print(f"teacher, paired rounds: {vtext(v_auto)}")
print(f"\nverdict: bf16 matmul {OUTCOME_WORDS[got]} fp32 (fp32 / bf16 time, ratio of medians {mm_ratio:.2g}x), "
      f"teacher {OUTCOME_WORDS[outcome(v_net, 'bf16')]} fp32 ({net_ratio:.2g}x); the CPU "
      f"{'has' if feat['bf16_native'] else 'lacks'} usable bf16 instructions, so {expected} bf16 matmuls were expected: "
      f"{'as expected' if got == expected else 'not resolved at this budget' if got in ('tie', 'one round') else 'NOT as expected (look at the load and the oneDNN version)'}; "
      f"fp16 matmul at {n16}x{n16} {OUTCOME_WORDS[outcome(v_16, 'fp16')]} fp32 ({ratio16:.2g}x; "
      f"{'fp16 instructions present' if feat['avx512_fp16'] else 'no fp16 arithmetic on this CPU'})")
grouped_bar({"fp32": {"matmul": 1.0, f"teacher b{bt}": 1.0},
             "bf16": {"matmul": mm_ratio, f"teacher b{bt}": net_ratio}},
            ylabel="speed relative to fp32 (higher is faster)", title="bf16 vs fp32 on this CPU");

# %%
# NBVAL_IGNORE_OUTPUT  (GPU timings, or the reason they were skipped)
if machine.has_cuda():
    gpairs = {k: (a.cuda().to(dt), b.cuda().to(dt)) for k, dt in
              (("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16))}
    gpu = profile.measure_side_by_side({k: torch.matmul for k in gpairs}, gpairs, warmup=3, repeats=REPEATS)
    print("measured on:", machine.describe("cuda"))
    for k, v in gpu.items():
        print(f"GPU matmul {n_mm} {k:<5} {v.median_ms:7.3f} ms")
    for k in ("bf16", "fp16"):
        print(f"GPU matmul {n_mm}, paired rounds: {vtext(timing_verdict(gpu, 'fp32', k), 3)}")
else:
    print("GPU part skipped: no CUDA device here (torch.cuda.is_available() is False). On a recent NVIDIA GPU "
          "fp16 and bf16 matmuls both run on tensor cores; re-run this notebook there to compare.")

# %% [markdown]
# ## 6 · Try it: one number in three formats
#
# Pick a number (the panel's first control) or type your own in the text box (it takes precedence when not
# empty). The panel prints the bit fields in fp32, fp16 and bfloat16 (round to nearest even), the bfloat16
# truncation, and the relative error of each.

# %%
PRESETS = ["3.14", "0.1", "65504", "1e-05", "1e-08", "-2.5", "1.00390625", "70000"]


def show_number(number="3.14", custom=""):
    text = custom.strip() or number
    try:
        v = float(text)
    except ValueError:
        print(f"{text!r} is not a number; try 3.14, 1e-8 or -2.5")
        return
    t = torch.tensor([v], dtype=torch.float32)
    src = "typed" if custom.strip() else "preset"
    print(f"x = {text} ({src}); as float32: {t.item():.9g} (bits {hex32(t.item())})")
    rows = [(fmt, float_bits(t, fmt), m) for fmt, (_, _, m) in FORMATS.items()]
    trunc = bf16_truncate(t)
    for fmt, f, m in rows:
        val = f["value"].item()
        rel = abs(val - t.item()) / abs(t.item()) if t.item() != 0 else 0.0
        print(f"  {fmt:<15} sign {int(f['sign'])}  exponent {int(f['exponent']):>3}  mantissa {format(int(f['mantissa']), f'0{m}b'):>23}"
              f"  -> {val:.9g}  rel. error {rel:.2e}")
    tv = trunc.float().item()
    print(f"  {'bf16 truncated':<15} bits {hex16(trunc)}  -> {tv:.9g}  rel. error "
          f"{(abs(tv - t.item()) / abs(t.item()) if t.item() else 0):.2e}")


interactive_panel(show_number, number=dropdown("number", PRESETS, "3.14"),
                  custom=W.Text(value="", description="or type a number", continuous_update=False,
                                style={"description_width": "initial"}))

# %% [markdown]
# ## 7 · Exercises
#
# **7.1** What 16-bit pattern (an int, e.g. `0x3F80`) does PyTorch store for `torch.tensor(3.14).to(torch.bfloat16)`?

# %%
answer = ...  # an int, e.g. 0x3F80
ex.bf16_bits.check(answer)

# %% [markdown]
# **7.2** A gradient of `1e-9` is flushed to 0 in fp16. What is the smallest integer `k` such that
# `1e-9 * 2**k` survives the cast (is not 0)?

# %%
answer = ...  # an int k
ex.loss_scale.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
# Reference answers: ex.bf16_bits.solution(), ex.loss_scale.solution(); a wrong answer just prints a hint.
ex.bf16_bits.check(ex.bf16_bits.solution())
ex.loss_scale.check(ex.loss_scale.solution())
ex.bf16_bits.check(0x4048)

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
def acc_line(k):
    pd = vs32[k]
    word = "cannot tell apart from fp32" if pd.verdict == stats.TIE else ("better" if pd.diff > 0 else "worse") + " than fp32"
    exact = f" (exact 95 % bound: at most {100 * disagree_upper(pd):.2f} %)" if pd.discordant < 10 else ""
    return (f"{k} {100 * pd.diff:+.2f} points (95 % CI {100 * pd.lo:+.2f} to {100 * pd.hi:+.2f}; {pd.discordant} of "
            f"{pd.n} images disagree{exact}): {word}")


def speed_word(v, fast):
    return OUTCOME_WORDS[outcome(v, fast)]


bf_m = torch.finfo(torch.bfloat16)
display(Markdown("\n".join([
    f"* fp32 / fp16 / bf16 are 1-8-23, 1-5-10 and 1-8-7 bit layouts; max, smallest normal, smallest subnormal and "
    f"epsilon derived from the fields match `torch.finfo` for all three (bf16: max {bf_m.max:.3g}, eps 2⁻⁷ = "
    f"{bf_m.eps:.4f}; fp16: max {torch.finfo(torch.float16).max:.0f}, smallest subnormal 2⁻²⁴ ≈ {2.0 ** -24:.3g}).",
    f"* PyTorch's bfloat16 is round-to-nearest-even (bit-identical to our `bf16_round` on {rand.numel():,} floats), "
    f"not document 003's truncation (a **Note**: truncation is a valid, cheap conversion, not the frameworks' one). "
    f"They differ on {differ:.1%} of the floats; truncation's mean signed relative error is {bias['truncate']:+.2e} "
    f"(rounding: {bias['round']:+.1e}), and a sum of a million values inherits it ({sum_rel['truncate']:+.2e} against "
    f"{sum_rel['round']:+.1e}).",
    f"* On the trained teacher's {grads.numel():,} real gradients (median |g| {g_med:.1e}, smallest "
    f"{grads[grads != 0].abs().min():.1e}), fp16 without a loss scale flushes {cstats[1.0]['flushed']:.3%} to zero "
    f"and leaves {cstats[1.0]['subnormal']:.1%} subnormal, bf16 {bf['flushed']:.3%} and {bf['subnormal']:.3%}; "
    + (f"scales 2^{k_of[min(good)]} to 2^{k_of[max(good)]} (of those tried) leave under {GOOD:.2%} flushed or "
       "subnormal" if good else "no scale tried removes almost all of both")
    + (f", while 2^{k_of[first_over]} and above overflow the largest gradients." if first_over else "."),
    f"* Accuracy vs fp32, paired 95 % intervals: {acc_line('fp16 (simulated)')}; {acc_line('bf16 (model.to)')}; "
    f"{acc_line('bf16 (autocast)')}. Document 003's \"fp16 loses under 1 %\" {claim}: the loss is at most "
    f"{100 * loss16_hi:.2f} points (upper 95 % bound; fp16 simulated, checked against real fp16 kernels).",
    f"* Speed, paired rounds ({'with' if feat['bf16_native'] else 'without'} usable bf16 instructions): bf16 matmul "
    f"{n_mm}×{n_mm} {speed_word(v_mm, 'bf16')} fp32 ({mm_ratio:.2g}× the fp32 speed), the whole teacher at batch "
    f"{bt} {speed_word(v_net, 'bf16')} fp32 ({net_ratio:.2g}×; with autocast {speed_word(v_auto, 'bf16 autocast')} "
    f"fp32, {auto_ratio:.2g}×), fp16 matmul {n16}×{n16} "
    f"{speed_word(v_16, 'fp16')} fp32 ({ratio16:.2g}×). Half precision is fast only where the hardware has kernels "
    "for it; section 5 printed the instruction sets.",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | bfloat16 (bf16) | 脑浮点数 bfloat16 | 1 sign, 8 exponent, 7 mantissa bits; float32's range |
# | half precision (fp16) | 半精度浮点 | IEEE 754 binary16: 1-5-10 bits, max 65504 |
# | exponent / mantissa | 指数 / 尾数 | the power-of-two and the fraction fields of a float |
# | dynamic range | 动态范围 | ratio of the largest to the smallest representable magnitude |
# | machine epsilon | 机器精度 | gap between 1 and the next representable number, 2^-M |
# | subnormal number | 非规格化数 | exponent field 0: tiny values with fewer significant bits |
# | underflow | 下溢 | a non-zero value rounding to 0 |
# | truncation | 截断 | dropping low bits = rounding toward zero |
# | round to nearest, ties to even | 就近舍入（偶数优先） | IEEE default rounding; what frameworks use for bf16 |
# | loss scaling | 损失缩放 | multiplying the loss so fp16 gradients stay representable |
# | mixed precision | 混合精度 | low-precision compute with float32 master weights and reductions |
# | autocast | 自动混合精度 | PyTorch context that picks a dtype per op |
#
# **Next:** [10 · Aggressive quantisation](10_aggressive_quantization.ipynb).
