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
# 3. Cost per element, measured.
# 4. Bounded activations and int8: quantisation error after ReLU vs ReLU6, on the shapes teacher's activations
#    and on a heavy-tailed distribution.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 10 s (`FAST=True`: about 5 s).

# %% tags=["parameters"]
FAST = False          # smaller timing tensor and fewer repeats
SEED = 0              # every random draw follows this seed
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU
NUMEL = 2**22         # elements of the tensor each activation is timed on
N_IMAGES = 256        # shapes images whose activations we quantise

# %%
import matplotlib.pyplot as plt
import scipy.stats
import torch
import torch.nn.functional as F

from lessons_lib import activations as A, checkpoints, data, machine, seed_everything
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson03 as ex
from lessons_lib.profile import measure_latency
from lessons_lib.course.plotting import bar, lines, use_house_style
from lessons_lib.course.widgets import dropdown, float_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
if FAST:
    NUMEL, N_IMAGES = 2**20, 128
REPEATS = 7 if FAST else 15
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

# %% [markdown]
# > **Erratum (document 001).** ReLU6 is $\min(\max(0,x),6)$, not $\max(\max(0,x),6)$. The printed
# > expression is $\ge 6$ for every input (it maps −2, 0 and 3 to 6) and grows without bound (8 ↦ 8);
# > the real ReLU6 lies in $[0, 6]$, as the document's own sentence ("returns 6 above 6") says.

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

# %% [markdown]
# > **Erratum (document 001).** h-swish approximates *swish*, not sigmoid. h-sigmoid tracks the sigmoid to
# > within 0.069 (worst at $x\approx\pm1.32$), h-swish tracks swish to within 0.142 (worst at the corners
# > $x=\pm3$, where swish(3) = 2.858 vs 3), while "h-swish vs sigmoid" differs by 7.0 on [−8, 8] and by
# > 99 on [−100, 100] — they are different kinds of function (a gate in [0, 1] vs an activation ≈ x).

# %% [markdown]
# ## 4 · What each costs per element here
#
# Document 001 says swish improves accuracy but is expensive (the exponential), and that h-swish is
# cheaper and runs on any hardware. We time each function of `lessons_lib.activations` on one large
# float32 tensor, all in one run (median of repeats; these are eager PyTorch ops, so a composite like our
# h-swish pays for several passes over memory — a fused kernel such as `F.hardswish` would not).

# %%
show_source(A.time_per_element)

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
ns = A.time_per_element(numel=NUMEL, repeats=REPEATS, device=dev)
fused = {"F.silu": F.silu, "F.hardswish": F.hardswish}
xt = torch.randn(NUMEL, device=dev) * 4
ns_fused = {k: measure_latency(f, xt, warmup=2, repeats=REPEATS).median_ms * 1e6 / NUMEL for k, f in fused.items()}
print("measured on:", machine.describe(dev), f"| tensor of {NUMEL:,} float32")
for n, v in sorted({**ns, **ns_fused}.items(), key=lambda kv: kv[1]):
    print(f"{n:<12} {v:6.3f} ns/element  ({v / ns['relu']:.1f}x relu)")
print(f"ours: swish / h-swish = {ns['swish'] / ns['hard_swish']:.2f}; torch's fused kernels: "
      f"F.silu / F.hardswish = {ns_fused['F.silu'] / ns_fused['F.hardswish']:.2f}")
ax = bar({**ns, **ns_fused}, ylabel="ns per element", title=f"cost per element ({NUMEL:,} floats)", annotate="{:.2f}")

# %% [markdown]
# Read it: on a desktop CPU the exponential is vectorised and cheap, so the smooth functions are not
# necessarily the slowest; what dominates an eager composite is the number of passes over memory. The
# fused pair (`F.silu` vs `F.hardswish`) is the fair comparison of the formulas; the v3 paper's case for
# h-swish is mainly about fixed-point hardware and quantisation (next section), where a sigmoid needs a
# lookup table or approximation and the piecewise-linear form does not.

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
# NBVAL_CHECK_OUTPUT
teacher = checkpoints.pretrained("shapes_teacher")
imgs, _ = data.make_shapes(N_IMAGES, seed=SEED + 1)
pre = A.activation_inputs(teacher, data.normalize_shapes(imgs))
print(f"{'layer':<14}{'max after ReLU':>15}{'S ReLU':>9}{'S ReLU6':>9}{'RMSE ReLU':>11}{'RMSE ReLU6':>12}{'> 6':>9}")
ratios = []
for name, z in pre.items():
    r, r6 = A.relu(z), A.relu6(z)
    e, e6 = A.quantization_rmse(r), A.quantization_rmse(r6)
    ratios.append(e / e6)
    print(f"{name:<14}{float(r.max()):>15.1f}{float(r.max()) / 255:>9.4f}{float(r6.max()) / 255:>9.4f}"
          f"{e:>11.4f}{e6:>12.4f}{float((z > 6).double().mean()):>9.3%}")
print(f"8-bit RMSE, ReLU / ReLU6: median over layers {sorted(ratios)[len(ratios) // 2]:.1f}x")

# %% [markdown]
# Real activations are heavy-tailed: a handful of values near 10–12 set the ReLU scale, although fewer than
# 0.1 % of them exceed 6. With ReLU6 the step is smaller, and the int8 rounding error of the typical values
# drops by about the ratio printed above. (This teacher was trained with ReLU, so ReLU6 would also clip
# those rare values; a network *trained* with ReLU6 learns to live within the cap. Document 003 warns the
# other way: saturated ReLU-N units get no gradient — the "> 6" column is the fraction that would.)
#
# A heavier tail makes the point stronger. A Student-t distribution with 3 degrees of freedom, scaled to
# unit median absolute deviation, after ReLU vs ReLU6:

# %%
# NBVAL_CHECK_OUTPUT
u = torch.rand(1_000_000, generator=g, dtype=torch.float64)
heavy = torch.tensor(scipy.stats.t.ppf(u.numpy(), 3))  # inverse-CDF sampling from our seeded generator
heavy = heavy / heavy.abs().median()
for label, t in {"ReLU": A.relu(heavy), "ReLU6": A.relu6(heavy)}.items():
    print(f"{label:<6} max {float(t.max()):8.1f}  step S {float(t.max()) / 255:.4f}  8-bit RMSE {A.quantization_rmse(t):.4f}")
print(f"ReLU / ReLU6 RMSE: {A.quantization_rmse(A.relu(heavy)) / A.quantization_rmse(A.relu6(heavy)):.0f}x")

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
# * All ten activations of `lessons_lib.activations` equal their torch references, and their analytic
#   derivatives equal autograd (checked on 100,000 random points).
# * Document 001's ReLU6 formula $\max(\max(0,x),6)$ is ≥ 6 everywhere (minimum 6, maximum 100 on [−100, 100]);
#   the correct $\min(\max(0,x),6)$ lies in [0, 6].
# * h-sigmoid is within 0.069 of the sigmoid and h-swish within 0.142 of swish; h-swish vs sigmoid (the
#   document's pairing) differs by 7.0 on [−8, 8]: h-swish approximates swish.
# * Per-element costs were measured above; eager composites pay per pass over memory, so compare fused kernels.
# * On the shapes teacher's real pre-activations, 8-bit max-calibrated quantisation after ReLU6 has a median
#   1.7× lower RMSE than after ReLU (the ReLU maxima are 8–12 vs 6) although < 0.1 % of values exceed 6;
#   on a heavy-tailed input (Student-t, 3 degrees of freedom) the gap is 24×.
#
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
