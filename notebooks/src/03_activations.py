# %% [markdown]
# # 03 · ReLU6 vs h-swish and other activations
#
# **After this lesson you can** write ReLU, ReLU6, LeakyReLU, PReLU, SELU, sigmoid, h-sigmoid, swish,
# h-swish and Mish and their derivatives, say how far the "hard" versions are from the smooth ones, what
# each costs per element here, and why a bounded activation suits 8-bit quantisation — measured on the
# real activations of a trained network.
#
# **Goals**
# 1. The family (document 000's list, document 001's ReLU6 and h-swish): formulas, plots, derivatives, each
#    checked against torch.
# 2. Two slips in document 001 shown with numbers: the ReLU6 formula, and what h-swish approximates.
# 3. Cost per element, measured: PyTorch's own kernels side by side with a copy as the unit, and our eager
#    compositions only as a contrast.
# 4. Bounded activations and int8: quantisation error after ReLU vs ReLU6, on the shapes teacher's activations
#    and on a heavy-tailed distribution.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 20–30 s with other jobs sharing the CPU (`FAST=True` shrinks the timing rounds and sizes).

# %% tags=["parameters"]
FAST = False          # smaller timing tensor and fewer repeats
SEED = 0              # every random draw follows this seed
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU
NUMEL = 2**21         # elements of the tensor each activation is timed on (8 MiB of float32)
N_IMAGES = 256        # shapes images whose activations we quantise

# %%
import matplotlib.pyplot as plt
import scipy.stats
import torch
import torch.nn.functional as F

from IPython.display import Markdown, display

from lessons_lib import activations as A, checkpoints, data, machine, seed_everything, stats
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson03 as ex
from lessons_lib.course.plotting import bar, lines, use_house_style
from lessons_lib.course.widgets import dropdown, float_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
if FAST:
    NUMEL, N_IMAGES = 2**19, 128
REPEATS = 10 if FAST else 15   # interleaved timing rounds (>= 10: enough for a paired interval)
print("measurements below come from:", machine.describe(dev))

# %% [markdown]
# ## 1 · The family
#
# **Claim.** Document 000 lists the activations of detector backbones: ReLU (fixes the vanishing gradient of
# tanh and sigmoid), LeakyReLU and PReLU (a non-zero slope for $x<0$, so negative inputs still get a
# gradient), ReLU6 and hard-swish ("designed for quantised networks"), and SELU (self-normalising).
# Document 001 adds swish $x\,\sigma(x)$ and its hard version from MobileNet v3; Mish is a later smooth cousin.
#
# | name | $f(x)$ | range |
# | --- | --- | --- |
# | ReLU | $\max(0,x)$ | $[0,\infty)$ |
# | ReLU6 | $\min(\max(0,x),6)$ | $[0,6]$ |
# | LeakyReLU / PReLU | $x$ if $x>0$ else $a x$ ($a=0.01$ fixed / learned, init 0.25) | $\mathbb R$ |
# | SELU | $\lambda\,(x$ if $x>0$ else $\alpha(e^x-1))$, $\lambda\approx1.0507,\ \alpha\approx1.6733$ | $(-\lambda\alpha,\infty)$ |
# | sigmoid $\sigma$ | $1/(1+e^{-x})$ | $(0,1)$ |
# | h-sigmoid | $\mathrm{ReLU6}(x+3)/6$ | $[0,1]$ |
# | swish (SiLU) | $x\,\sigma(x)$ | $[-0.278,\infty)$ |
# | h-swish | $x\,\mathrm{ReLU6}(x+3)/6$ | $[-0.375,\infty)$ |
# | Mish | $x\tanh(\ln(1+e^x))$ | $[-0.309,\infty)$ |
#
# Each is a short function in `lessons_lib.activations`; the registry `ACTIVATIONS` keeps it with its
# analytic derivative, its torch reference and its range.

# %%
show_source(A.hard_swish)
show_source(A.hard_sigmoid)

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(SEED)
x = torch.randn(100_000, generator=g, dtype=torch.float64) * 5
for name, act in A.ACTIVATIONS.items():
    compare(f"{name:<12} f ", act.fn(x), act.ref(x), ref_name="torch", atol=1e-12)
xs = x[(x.abs() > 1e-3) & ((x.abs() - 3).abs() > 1e-3) & ((x - 6).abs() > 1e-3)].clone().requires_grad_(True)
for name, act in A.ACTIVATIONS.items():
    (auto,) = torch.autograd.grad(act.ref(xs).sum(), xs)
    compare(f"{name:<12} f'", A.derivative(name, xs.detach()), auto, ref_name="autograd", atol=1e-7)

# %%
# NBVAL_IGNORE_OUTPUT  (figure)
grid = torch.linspace(-6, 8, 561, dtype=torch.float64)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
lines(grid, {n: A.get(n).fn(grid) for n in A.ACTIVATIONS}, ax=ax1, marker="", title="f(x)", xlabel="x")
lines(grid, {n: A.derivative(n, grid) for n in A.ACTIVATIONS}, ax=ax2, marker="", title="f'(x)", xlabel="x")
ax1.set_ylim(-2, 8)
ax1.legend(ncols=2, fontsize=7)
ax2.legend().remove()

# %% [markdown]
# Read the derivatives: ReLU and ReLU6 pass gradient 1 or 0 (ReLU6 also 0 above 6 — document 003 warns that
# saturated "ReLU-N" units stop learning); the hard functions are piecewise linear with kinks at ±3; swish,
# Mish and SELU are smooth, and swish/Mish/h-swish dip below zero before rising.

# %% [markdown]
# ## 2 · ReLU6, and a slip in document 001
#
# **Claim.** Document 001 says MobileNet v1 replaces ReLU by ReLU6, which caps outputs at 6 and is more
# robust in low-precision (fixed-point) arithmetic. But the formula it prints is $\max(\max(0,x),6)$.
# Taken literally that is $\max(x, 6)$: never below 6, and unbounded above — the opposite of a cap.

# %%
# NBVAL_CHECK_OUTPUT
xx = torch.tensor([-2.0, 0.0, 3.0, 6.0, 8.0])
print("x                     ", xx.tolist())
print("min(max(0,x),6)       ", A.relu6(xx).tolist(), f"  equals F.relu6: {torch.equal(A.relu6(xx), F.relu6(xx))}")
print("max(max(0,x),6) doc001", A.relu6_as_printed_in_doc001(xx).tolist())
dense = torch.linspace(-100, 100, 200_001)
print(f"on [-100, 100]: the printed formula's minimum is {float(A.relu6_as_printed_in_doc001(dense).min()):g}, "
      f"its maximum {float(A.relu6_as_printed_in_doc001(dense).max()):g}; ReLU6's range is "
      f"[{float(A.relu6(dense).min()):g}, {float(A.relu6(dense).max()):g}]")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
printed = A.relu6_as_printed_in_doc001(xx)
doc_min, doc_max = float(A.relu6_as_printed_in_doc001(dense).min()), float(A.relu6_as_printed_in_doc001(dense).max())
display(Markdown(
    "> **Erratum (document 001, section 2.1.2, MobileNet v1).** The document writes ReLU6 as $\\max(\\max(0,x),6)$; "
    "it is $\\min(\\max(0,x),6)$. The printed expression maps "
    + ", ".join(f"{a:g} ↦ {b:g}" for a, b in zip(xx.tolist(), printed.tolist()))
    + f": it is never below {doc_min:g} and reaches {doc_max:g} on [−100, 100] (unbounded above), while the real "
    f"ReLU6 lies in [{float(A.relu6(dense).min()):g}, {float(A.relu6(dense).max()):g}] — as the document's own "
    "sentence (it returns 6 for inputs above 6) says."))

# %% [markdown]
# ## 3 · How good are the hard approximations?
#
# **Claim.** Document 001 says MobileNet v3 uses h-swish "to approximate sigmoid". In the v3 paper,
# h-sigmoid $=\mathrm{ReLU6}(x+3)/6$ approximates the **sigmoid** $\sigma$, and h-swish $= x\cdot$h-sigmoid$(x)$
# approximates **swish** $= x\,\sigma(x)$. We measure the largest gap on a dense grid (160,001 points on
# [−8, 8], float64) for the right pairs and for the pair the document names.

# %%
show_source(A.max_error_on_grid)

# %%
# NBVAL_CHECK_OUTPUT
pairs = {"h-sigmoid vs sigmoid": (A.hard_sigmoid, A.sigmoid), "h-swish vs swish": (A.hard_swish, A.swish),
         "h-swish vs sigmoid (doc 001)": (A.hard_swish, A.sigmoid)}
errs = {}
for label, (f, g_) in pairs.items():
    errs[label] = A.max_error_on_grid(f, g_, -8, 8)
    print(f"{label:<30} max |diff| {errs[label][0]:.4f} at x = {errs[label][1]:+.3f}")
e_wide, _ = A.max_error_on_grid(A.hard_swish, A.sigmoid, -100, 100, 200_001)
print(f"h-swish vs sigmoid on [-100, 100]: max |diff| {e_wide:.1f} (grows with x: h-swish is unbounded, sigmoid < 1)")
print("h-swish - swish -> 0 as |x| grows:", f"{A.max_error_on_grid(A.hard_swish, A.swish, 10, 100)[0]:.1e} on [10, 100]")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
(e_hsig, x_hsig), (e_hsw, x_hsw), (e_doc, _) = (errs[k] for k in pairs)
display(Markdown(
    "> **Erratum (document 001, section 2.1.2, MobileNet v3).** The document says h-swish is used to approximate "
    "the sigmoid. It approximates *swish*; h-sigmoid is the sigmoid's approximation. On [−8, 8], h-sigmoid tracks "
    f"the sigmoid to within {e_hsig:.3f} (worst at $x = {x_hsig:+.2f}$), h-swish tracks swish to within {e_hsw:.3f} "
    f"(worst at $x = {x_hsw:+.2f}$, where swish is {float(A.swish(torch.tensor(abs(x_hsw), dtype=torch.float64))):.3f} "
    f"and h-swish {float(A.hard_swish(torch.tensor(abs(x_hsw), dtype=torch.float64))):.3f}), while h-swish and the "
    f"sigmoid differ by {e_doc:.1f} there and by {e_wide:.0f} on [−100, 100]: a gate in [0, 1] and an activation "
    "that grows like $x$ are different kinds of function."))

# %% [markdown]
# ## 4 · What each costs per element here
#
# **Claim.** Document 001 (section 2.1.2, MobileNet v3) says swish improves accuracy but costs a lot to
# compute, and that h-swish is cheaper and runs on any hardware.
#
# **How we measure.** The cost of an activation is the cost of PyTorch's own op for it (`F.relu6`,
# `F.leaky_relu`, `F.selu`, `F.silu`, `F.hardswish`, `F.mish`, ...: one kernel, one read and one write of the
# tensor). All of them and a **baseline** — `torch.clone`, a copy that reads and writes the same bytes and
# allocates its output like every activation, with no arithmetic — run on one large float32 tensor in
# interleaved rounds, so a change of machine load hits every candidate alike. Each op's cost is the median
# over rounds of (its time / the copy's time in the same round), and the paired *t* interval over rounds says
# whether it is distinguishable from the copy at all (`stats.verdict(..., paired=True)`).

# %%
show_source(A.time_side_by_side)
show_source(A.cost_vs_baseline)

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
BASE = "torch.clone"
lat_t = A.time_side_by_side(numel=NUMEL, repeats=REPEATS, baseline=BASE, device=dev)
cost_t = A.cost_vs_baseline(lat_t, BASE)
print("measured on:", machine.describe(dev), f"| tensor of {NUMEL:,} float32, {REPEATS} interleaved rounds")
print(f"{'op':<26} {'ns/element':>10} {'x ' + BASE:>15}   verdict vs {BASE} (paired rounds)")
print(f"{BASE:<26} {lat_t[BASE].median_ms * 1e6 / NUMEL:>10.3f} {1.0:>15.2f}")
for n, (r, v) in sorted(cost_t.items(), key=lambda kv: kv[1][0]):
    print(f"{A.TORCH_OP_NAMES[n] + ' (' + n + ')':<26} {lat_t[n].median_ms * 1e6 / NUMEL:>10.3f} {r:>15.2f}   "
          f"{v.verdict}")
v_sw = stats.verdict(lat_t["swish"].times_ms, lat_t["hard_swish"].times_ms, names=("F.silu", "F.hardswish"),
                     higher_is_better=False, paired=True, unit="ms")
print("\nswish vs h-swish, torch's kernels:", v_sw.text(3))
ax = bar({A.TORCH_OP_NAMES[n]: r for n, (r, _) in cost_t.items()}, annotate="{:.2f}",
         ylabel=f"time / {BASE} time (median of rounds)",
         title=f"torch's activation ops vs a copy ({NUMEL:,} floats, {REPEATS} rounds)")
ax.axhline(1.0, color="grey", lw=1, ls="--")
ax.tick_params(axis="x", labelrotation=45)

# %% [markdown]
# **Contrast: our compositions are not the activations' cost.** The library's functions are written from
# the formulas with several eager ops (`torch.where`, `x * sigmoid(x)`, `clamp` then divide ...); each op is
# one more pass over memory and one more allocated tensor. Timed against torch's own kernel in the same rounds:

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
COMPOSED = ["leaky_relu", "swish", "hard_swish"]  # a torch.where, x * sigmoid(x), a clamp chain
lat_c = A.time_side_by_side(COMPOSED, impl="both", numel=NUMEL, repeats=REPEATS, warmup=1, baseline=BASE, device=dev)
contrast = {}
print("measured on:", machine.describe(dev), f"| tensor of {NUMEL:,} float32, {REPEATS} interleaved rounds")
for n in COMPOSED:
    (ratio, v), = A.cost_vs_baseline({A.TORCH_OP_NAMES[n]: lat_c[n], f"ours: {n}": lat_c[f"ours: {n}"]},
                                     A.TORCH_OP_NAMES[n]).values()
    contrast[n] = (ratio, v)
    print(f"ours: {n:<11} {ratio:5.2f}x the time of {A.TORCH_OP_NAMES[n]:<13} -> {v.verdict}")

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
like_copy = [A.TORCH_OP_NAMES[n] for n, (_, v) in cost_t.items() if v.better is None]
dearer = {A.TORCH_OP_NAMES[n]: r for n, (r, v) in cost_t.items() if v.better == BASE}
cheaper = [A.TORCH_OP_NAMES[n] for n, (_, v) in cost_t.items() if v.better == n]
slower_ours = [n for n, (_, v) in contrast.items() if v.better == A.TORCH_OP_NAMES[n]]
exp_like_copy = [A.TORCH_OP_NAMES[n] for n in ("selu", "sigmoid", "swish", "mish") if A.TORCH_OP_NAMES[n] in like_copy]
display(Markdown(
    f"**Read it.** Of torch's {len(cost_t)} activation ops, {len(like_copy)} cannot be told apart from a plain "
    f"copy at this budget ({', '.join(like_copy) or 'none'}): on a tensor this large those are limited by memory "
    "traffic, not arithmetic"
    + (f"; among them {', '.join(exp_like_copy)}, whose formulas need an exponential. " if exp_like_copy else ". ")
    + (f"Measurably dearer than the copy: {', '.join(f'{k} ({r:.2f}x)' for k, r in dearer.items())}. " if dearer
       else "None is measurably dearer than the copy. ")
    + (f"Measurably cheaper than the copy: {', '.join(cheaper)}. " if cheaper else "")
    + f"For document 001's pair, torch's kernels give: {v_sw.verdict} "
      f"(F.silu − F.hardswish {v_sw.diff:+.3f} ms per call, 95% CI {v_sw.lo:+.3f} to {v_sw.hi:+.3f}). "
    f"Our eager compositions are slower than torch's kernel for {len(slower_ours)} of {len(contrast)} "
    f"({', '.join(slower_ours) or 'none'}): timing them would have measured the number of passes over memory, "
    "not the activation. The MobileNet v3 paper's case for h-swish is mainly about fixed-point hardware and "
    "quantisation (next section), where a sigmoid needs a lookup table or an approximation and the "
    "piecewise-linear form does not; a float32 timing on a CPU does not test that claim."))

# %% [markdown]
# ## 5 · Why bounded activations suit int8
#
# **Claim.** Document 001 (for ReLU6 and for h-swish) says bounded, piecewise-linear activations lose less
# accuracy when quantised; document 000 says ReLU6 and hard-swish were designed for quantised networks.
#
# **Formula.** 8-bit unsigned quantisation with a *max-calibrated* scale (the simplest calibration; lesson 08
# does better) maps $x\ge0$ to $q=\mathrm{round}(x/S)$ with
# $$S = \frac{\max x}{2^8-1},\qquad |x - qS| \le S/2 .$$
# After ReLU, $\max x$ is set by the rarest, largest activation; after ReLU6 it is at most 6. A smaller $S$
# means a finer grid for all the typical values. Below: the inputs of every ReLU of the trained shapes
# teacher on real images, passed through ReLU and through ReLU6, each quantised to 8 bits.

# %%
show_source(A.quantize_max_calibrated)

# %%
# NBVAL_CHECK_OUTPUT
xq_t = torch.rand(1000, generator=g) * 7
ours_q, S = A.quantize_max_calibrated(xq_t, 8)
_ = compare("max-calibrated 8-bit quantiser", ours_q, torch.fake_quantize_per_tensor_affine(xq_t, S, 0, 0, 255),
        ref_name="torch.fake_quantize_per_tensor_affine", atol=1e-6)

# %%
# NBVAL_IGNORE_OUTPUT  (activations of a network: their last digits depend on the CPU's conv kernels)
teacher = checkpoints.pretrained("shapes_teacher")
imgs, _ = data.make_shapes(N_IMAGES, seed=SEED + 1)
pre = A.activation_inputs(teacher, data.normalize_shapes(imgs))
print(f"{'layer':<14}{'max after ReLU':>15}{'S ReLU':>9}{'S ReLU6':>9}{'RMSE ReLU':>11}{'RMSE ReLU6':>12}{'> 6':>9}")
ratios, maxima, over6 = [], [], []
for name, z in pre.items():
    r, r6 = A.relu(z), A.relu6(z)
    e, e6 = A.quantization_rmse(r), A.quantization_rmse(r6)
    ratios.append(e / e6)
    maxima.append(float(r.max()))
    over6.append(float((z > 6).double().mean()))
    print(f"{name:<14}{float(r.max()):>15.1f}{float(r.max()) / 255:>9.4f}{float(r6.max()) / 255:>9.4f}"
          f"{e:>11.4f}{e6:>12.4f}{float((z > 6).double().mean()):>9.3%}")
median_ratio = sorted(ratios)[len(ratios) // 2]
print(f"8-bit RMSE, ReLU / ReLU6: median over layers {median_ratio:.1f}x")

# %%
# NBVAL_CHECK_OUTPUT
# facts with a margin (the step ratio is max / 6, so a maximum above 9 means a step at least 1.5x finer)
wide = [r for r, m in zip(ratios, maxima) if m > 9]
print(f"{len(pre)} ReLU inputs recorded; {len(wide)} have a ReLU maximum above 9")
print("in each of those, ReLU6's 8-bit RMSE is at least 1.2x lower:", all(r > 1.2 for r in wide))

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
display(Markdown(
    f"**Read it.** Over the {len(pre)} ReLU inputs of the teacher, the ReLU maxima that set the scale range from "
    f"{min(maxima):.1f} to {max(maxima):.1f}, although at most {max(over6):.2%} of the values in any layer exceed 6. "
    f"With ReLU6 the step is at most 6/255, and the int8 rounding error falls by a median factor of {median_ratio:.1f} "
    "(table above). This teacher was trained with ReLU, so ReLU6 would also clip those rare values; a network "
    "*trained* with ReLU6 learns to live within the cap. Document 003 warns the other way: saturated ReLU-N units "
    "get no gradient — the \"> 6\" column is the fraction that would saturate."))

# %% [markdown]
# A heavier tail makes the point stronger. A Student-t distribution with 3 degrees of freedom, scaled to
# unit median absolute deviation, after ReLU vs ReLU6:

# %%
# NBVAL_CHECK_OUTPUT
u = torch.rand(1_000_000, generator=g, dtype=torch.float64)
heavy = torch.tensor(scipy.stats.t.ppf(u.numpy(), 3))  # inverse-CDF sampling from our seeded generator
heavy = heavy / heavy.abs().median()
for label, t in {"ReLU": A.relu(heavy), "ReLU6": A.relu6(heavy)}.items():
    print(f"{label:<6} max {float(t.max()):8.1f}  step S {float(t.max()) / 255:.4f}  8-bit RMSE {A.quantization_rmse(t):.4f}")
heavy_ratio = A.quantization_rmse(A.relu(heavy)) / A.quantization_rmse(A.relu6(heavy))
print(f"ReLU / ReLU6 RMSE: {heavy_ratio:.0f}x")

# %% [markdown]
# ## 6 · Try it: pick an activation
#
# The **x range** slider (the panel's primary control) sets the interval; the dropdown picks the function. The plot
# shows $f$ and $f'$; the text gives its range on that interval and, for the hard functions, the distance to
# the smooth function they approximate.

# %%
APPROX = {"hard_sigmoid": "sigmoid", "hard_swish": "swish", "relu6": "relu"}


def show_activation(name="hard_swish", x_max=8.0):
    act = A.get(name)
    grid = torch.linspace(-x_max, x_max, 801, dtype=torch.float64)
    lines(grid, {f"{name}(x)": act.fn(grid), f"{name}'(x)": A.derivative(name, grid)}, marker="",
          title=f"{name} on [-{x_max:g}, {x_max:g}]", xlabel="x")
    y = act.fn(grid)
    print(f"{name}: f = {act.formula}; on [-{x_max:g}, {x_max:g}] f ranges over [{float(y.min()):.3f}, {float(y.max()):.3f}]")
    if name in APPROX:
        err, at = A.max_error_on_grid(act.fn, A.get(APPROX[name]).fn, -x_max, x_max, 20_001)
        print(f"  max |{name} - {APPROX[name]}| = {err:.4f} at x = {at:+.2f}")


interactive_panel(show_activation,
                  name=dropdown("activation", list(A.ACTIVATIONS), "hard_swish"),
                  x_max=float_slider("x range ±", 8.0, 1.0, 20.0, 1.0))

# %% [markdown]
# ## 7 · Exercises
#
# **7.1** Write h-sigmoid with plain torch operations (no `F.hardsigmoid`, no `lessons_lib`): a function
# that takes a tensor and returns a tensor.

# %%
answer = ...  # e.g. lambda x: ...
ex.hard_sigmoid_fn.check(answer)

# %% [markdown]
# **7.2** ReLU6 outputs are quantised to unsigned 8 bits with a max-calibrated scale. What is the step $S$?

# %%
answer = ...  # a number
ex.relu6_step.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
ex.hard_sigmoid_fn.check(A.hard_sigmoid)        # the library's version passes the same checker
ex.relu6_step.check(A.quantize_max_calibrated(A.relu6(torch.tensor([0.5, 7.0])))[1])

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
display(Markdown("\n".join([
    f"* All {len(A.ACTIVATIONS)} activations of `lessons_lib.activations` equal their torch references, and their "
    f"analytic derivatives equal autograd (checked on {x.numel():,} random points, section 1).",
    f"* Document 001's ReLU6 formula $\\max(\\max(0,x),6)$ is never below {doc_min:g} (maximum {doc_max:g} on "
    "[−100, 100]); the correct $\\min(\\max(0,x),6)$ lies in [0, 6].",
    f"* h-sigmoid is within {e_hsig:.3f} of the sigmoid and h-swish within {e_hsw:.3f} of swish; h-swish vs sigmoid "
    f"(the document's pairing) differs by {e_doc:.1f} on [−8, 8]: h-swish approximates swish.",
    f"* Cost, torch's own kernels vs a copy ({NUMEL:,} floats, {REPEATS} interleaved rounds, {machine.describe(dev)}): "
    f"{len(like_copy)} of {len(cost_t)} ops cannot be told apart from `{BASE}`"
    + (f"; dearer: {', '.join(f'{k} {r:.2f}x' for k, r in dearer.items())}" if dearer else "")
    + f". F.silu vs F.hardswish: {v_sw.verdict}. Our eager compositions are slower than torch's kernel for "
      f"{len(slower_ours)} of {len(contrast)}: they are a contrast, not the activations' cost.",
    f"* On the shapes teacher's real pre-activations, 8-bit max-calibrated quantisation after ReLU6 has a median "
    f"{median_ratio:.1f}x lower RMSE than after ReLU (ReLU maxima {min(maxima):.1f}–{max(maxima):.1f} vs 6), although "
    f"at most {max(over6):.2%} of a layer's values exceed 6; on a heavy-tailed input (Student-t, 3 degrees of freedom) "
    f"the gap is {heavy_ratio:.0f}x.",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | activation function | 激活函数 | the element-wise non-linearity after a conv |
# | ReLU6 | ReLU6 (上限为6的ReLU) | min(max(0, x), 6) |
# | leaky / parametric ReLU | 带泄露的ReLU / 参数化ReLU | slope a for x < 0, fixed / learned |
# | self-normalising (SELU) | 自归一化 | keeps activations near zero mean, unit variance |
# | hard sigmoid / hard swish | 硬sigmoid / 硬swish (h-swish) | piecewise-linear versions built from ReLU6 |
# | swish (SiLU) | swish激活 | x · sigmoid(x) |
# | derivative / gradient | 导数 / 梯度 | f'(x), what backpropagation multiplies by |
# | saturation | 饱和 | region where f' = 0 (ReLU6 above 6) |
# | quantisation step (scale) | 量化步长 (缩放因子) | S = max / 255 for 8-bit unsigned |
# | max calibration | 最大值校准 | choosing S from the largest observed value |
#
# **Next:** [04 · Squeeze-and-Excitation](04_squeeze_excitation.ipynb).
