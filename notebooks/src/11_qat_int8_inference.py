# %% [markdown]
# # 11 · Quantisation-aware training and real int8 inference
#
# **After this lesson you can** train a CNN through fake quantisation with a straight-through gradient,
# show what it recovers over post-training quantisation at 4 bits, and run a model with real int8
# kernels on a CPU — calibrated with this workbook's own code — measuring its accuracy and speed against fp32.
#
# **Goals**
# 1. Fake quantisation and the straight-through estimator (STE), gradient checked against PyTorch.
# 2. PTQ vs QAT vs fp32 at 4 bits on one model, in one table.
# 3. PyTorch's own int8 path today (deprecated `torch.ao.quantization`, PT2E moved to torchao) and what runs here.
# 4. A Q/DQ ONNX model with our calibrated scales, run by onnxruntime's int8 kernels: accuracy and latency
#    vs fp32; what a CPU without VNNI does to it (saturation, `reduce_range`); document 003's "int8 without
#    retraining loses 3–15 %" checked.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 26 s (`FAST=True`: about 20 s);
# the same where oneDNN and ATen are restricted to AVX2.

# %% tags=["parameters"]
FAST = False          # fewer QAT epochs and timing repeats
SEED = 0              # every random draw follows this seed
DEVICE = "auto"       # unused here (int8 kernels run on the CPU); kept for the common parameter set
QAT_BITS = 4          # weight and activation bits for PTQ vs QAT
QAT_EPOCHS = 2        # QAT fine-tuning epochs on the digits training set
CALIB_IMAGES = 256    # calibration images for the int8 ONNX model
BATCH = 64            # batch size for the latency comparison
REPEATS = 10          # timing repeats
N_EVAL = 2000         # shapes test images for the int8 accuracies
EMU_BUDGET_S = 15     # time budget of the x86 int8 kernel emulation (fewer images on a slow CPU)
LATENCY_BUDGET_S = 8  # time budget of the latency comparison (fewer repeats on a slow CPU)

# %%
import importlib.util
import time
import warnings

import torch
from IPython.display import Markdown, display

from lessons_lib import checkpoints, data, machine, profile, seed_everything, stats, train
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.deploy import onnx_export as ox
from lessons_lib.deploy import ort as dort
from lessons_lib.course.exercises import lesson11 as ex
from lessons_lib.course.plotting import bar, grouped_bar, use_house_style
from lessons_lib.quant import METHODS, fake_quantize
from lessons_lib.deploy import int8, qdq
from lessons_lib.quant import qat, x86int8
from lessons_lib.course.widgets import dropdown, interactive_panel

seed_everything(SEED)
use_house_style()
if FAST:
    QAT_EPOCHS, REPEATS, N_EVAL, CALIB_IMAGES = 1, 5, 500, 128
print("measurements below come from:", machine.describe("cpu"))

# %% [markdown]
# ## 1 · Fake quantisation and the straight-through estimator
#
# **Claim.** Document 003 (UINT quantisation, after Jacob et al.) notes that quantisation need not wait
# until a model is trained: the forward pass can be quantised during training while the backward pass
# (the error correction) stays in float. That is *fake quantisation*:
#
# $$\hat x = \big(\text{clamp}(\text{round}(x/S) + Z,\ q_{\min}, q_{\max}) - Z\big)\, S .$$
#
# `round` has zero gradient almost everywhere, so training would stall; the **straight-through estimator**
# pretends it is the identity: $\partial \hat x/\partial x = 1$ where $q_{\min} \le \text{round}(x/S)+Z \le q_{\max}$,
# and $0$ outside (clipped values really do not move with $x$).

# %%
show_source(fake_quantize)

# %%
# NBVAL_CHECK_OUTPUT
S, Z, BITS = 0.05, 8, 4  # unsigned 4 bits: q in [0, 15], so x in [-0.4, 0.35] passes
x = torch.linspace(-1, 1, 401, requires_grad=True)
fake_quantize(x, S, Z, BITS).sum().backward()
x_ref = x.detach().clone().requires_grad_()
torch.fake_quantize_per_tensor_affine(x_ref, S, Z, 0, 15).sum().backward()
_ = compare("fake_quantize forward", fake_quantize(x.detach(), S, Z, BITS),
            torch.fake_quantize_per_tensor_affine(x.detach(), S, Z, 0, 15), ref_name="torch", atol=1e-6)
_ = compare("STE gradient", x.grad, x_ref.grad, ref_name="torch.fake_quantize_per_tensor_affine")
inside = x.grad == 1
print(f"gradient 1 for x in [{x[inside].min().item():.3f}, {x[inside].max().item():.3f}], 0 elsewhere; "
      f"{int(inside.sum())} of {x.numel()} points pass")

# %% [markdown]
# Where an int8 engine rounds, QAT inserts these: on each conv / linear weight (symmetric, per output channel,
# scale from the current weights) and after each ReLU (unsigned, range tracked by an observer — the running
# union of batch ranges or their moving average, the two options document 003 lists). BatchNorm is folded
# into the convolutions first, so the quantised weights are the ones an engine would store.

# %%
show_source(qat.ActFakeQuant)
show_source(qat.prepare_qat)

# %% [markdown]
# ## 2 · PTQ vs QAT at 4 bits
#
# Post-training quantisation (PTQ) = `prepare_qat` + `observe_ranges` on a few batches, no training. QAT = the
# same model fine-tuned for `QAT_EPOCHS` epochs through the fake quantisers (AdamW, cosine schedule). We use
# the digits teacher (8×8 images), whose QAT fits in a few seconds on two cores; the input is quantised to
# 8 bits, weights and ReLU outputs to `QAT_BITS` and, to see the limit, 2-bit weights too.

# %%
dsplits = data.digits_splits()
digits = checkpoints.pretrained("digits_teacher")
Xd, yd = train.tensors(dsplits.train)
yd_test = dsplits.test.tensors[1]


def test_correct(model):
    """Per test image: is the prediction right? (paired comparisons need the images, not just the mean)"""
    return (train.predict(model, dsplits.test).argmax(1) == yd_test).numpy()


c_fp32 = test_correct(digits)
d_fp32 = float(c_fp32.mean())


def ptq_and_qat(w_bits, a_bits):
    m = qat.observe_ranges(qat.prepare_qat(digits, w_bits, a_bits, input_bits=8), [Xd[:256]])
    c_ptq = test_correct(m)
    seed_everything(SEED)
    train.fit(m, dsplits.train, epochs=QAT_EPOCHS, lr=1e-3, batch_size=64, seed=SEED)
    return c_ptq, test_correct(m), m


# %%
# NBVAL_IGNORE_OUTPUT  (training accuracies depend on the machine's float arithmetic)
configs = {f"W{QAT_BITS}A{QAT_BITS}": (QAT_BITS, QAT_BITS), f"W2A{QAT_BITS}": (2, QAT_BITS)}
results = {name: ptq_and_qat(*wa) for name, wa in configs.items()}
c_w8a8 = test_correct(qat.observe_ranges(qat.prepare_qat(digits, 8, 8, input_bits=8), [Xd[:256]]))
w8a8 = float(c_w8a8.mean())
print(f"digits teacher, {len(dsplits.test)} test images, QAT {QAT_EPOCHS} epoch(s), on", machine.describe("cpu"))
print(f"{'model':<9} {'fp32':>7} {'PTQ':>7} {'QAT':>7}")
for name, (c_ptq, c_qat, _) in results.items():
    print(f"{name:<9} {d_fp32:>7.1%} {c_ptq.mean():>7.1%} {c_qat.mean():>7.1%}")
print(f"{'W8A8':<9} {d_fp32:>7.1%} {w8a8:>7.1%} {'-':>7}")
qat_vs = {}  # name -> (PTQ vs fp32, QAT vs fp32, QAT vs PTQ): paired over the test images
for name, (c_ptq, c_qat, _) in results.items():
    qat_vs[name] = (stats.paired_difference(c_ptq, c_fp32), stats.paired_difference(c_qat, c_fp32),
                    stats.paired_difference(c_qat, c_ptq))
    print(f"{name}: " + qat_vs[name][0].text("PTQ vs fp32", "PTQ", "fp32"))
    print(f"{name}: " + qat_vs[name][1].text("QAT vs fp32", "QAT", "fp32"))
    print(f"{name}: " + qat_vs[name][2].text("QAT vs PTQ", "QAT", "PTQ"))
grouped_bar({"fp32": {n: 100 * d_fp32 for n in results}, "PTQ": {n: 100 * r[0].mean() for n, r in results.items()},
             "QAT": {n: 100 * r[1].mean() for n, r in results.items()}}, ylabel="test accuracy (%)",
            title="Post-training quantisation vs quantisation-aware training (digits teacher)");

# %%
# NBVAL_CHECK_OUTPUT
qm = results[f"W{QAT_BITS}A{QAT_BITS}"][2]
levels = qat.weight_levels_used(qm)
print(f"after QAT every weight tensor still uses at most {2 ** QAT_BITS - 1} values per output channel: "
      f"{max(levels.values()) <= 2 ** QAT_BITS - 1}")
print("fake-quant modules:", len(qat.fake_quant_modules(qm)), "(7 weight quantisers, 1 input + 6 ReLU activation quantisers)")

# %% [markdown]
# ## 3 · PyTorch's own int8 path in 2026
#
# Eager-mode `torch.ao.quantization` (`QuantStub`, `prepare`, `convert`, the `x86`/`fbgemm` engines) still
# ships with PyTorch but warns that it is deprecated; the recommended replacement, PT2E quantisation with
# `X86InductorQuantizer` followed by `torch.compile`, has moved out of PyTorch into the separate **torchao**
# package (`torchao.quantization.pt2e`). What this environment has:

# %%
# NBVAL_IGNORE_OUTPUT  (depends on the installed packages)
import torch.ao.quantization as tq  # noqa: E402

with warnings.catch_warnings(record=True) as caught:  # the eager flow on a one-conv model, to see what it says
    warnings.simplefilter("always")
    tiny = torch.nn.Sequential(tq.QuantStub(), torch.nn.Conv2d(3, 4, 3), tq.DeQuantStub()).eval()
    tiny.qconfig = tq.get_default_qconfig("x86")
    prepared = tq.prepare(tiny)
    prepared(torch.randn(1, 3, 8, 8))  # observe ranges
    tq.convert(prepared)
msgs = [str(w.message).strip() for w in caught if issubclass(w.category, DeprecationWarning)]
print(f"torch {torch.__version__}: torch.ao.quantization says:", msgs[0] if msgs else "(no deprecation warning)")
for mod in ["torch.ao.quantization.quantize_pt2e", "torch.ao.quantization.quantizer", "torchao"]:
    try:
        found = importlib.util.find_spec(mod) is not None
    except ModuleNotFoundError:
        found = False
    print(f"{mod:<40} {'available' if found else 'not available'}")
HAVE_TORCHAO = importlib.util.find_spec("torchao") is not None
print("\nPT2E + X86InductorQuantizer:", "torchao is installed, but compiling the int8 graph with inductor takes "
      "longer than this lesson's budget; see the torchao PT2E tutorial" if HAVE_TORCHAO else
      "skipped: torchao is not installed here (pip install torchao); the int8 path below uses onnxruntime")

# %% [markdown]
# So this lesson runs int8 through **onnxruntime**, which is also what a deployment on a CPU would do. The
# deprecated eager path would still run, but a lesson should not teach an API that announces its removal.

# %% [markdown]
# ## 4 · Real int8 with onnxruntime
#
# The shapes teacher is exported to ONNX (BatchNorm folded), our calibration (`deploy.qdq.calibrate_activations` over `quant.calibrate`,
# lesson 08) picks a threshold $T$ per activation from a histogram over `CALIB_IMAGES` training images, and
# `QuantizeLinear`/`DequantizeLinear` pairs with scale $S = T/127$ (weights: per channel, $\max|W_c|/127$)
# are inserted. One detail decides whether the CPU runs int8 at all: onnxruntime fuses
# `DequantizeLinear → Conv → QuantizeLinear` into an int8 `QLinearConv`, so the conv *outputs* need a Q/DQ
# pair as well — with Q/DQ on the conv inputs only, it keeps float convolutions fed by dequantised values.

# %%
show_source(int8.qdq_tensor_names)
show_source(int8.quantize_onnx)

# %%
teacher = checkpoints.pretrained("shapes_teacher")
splits = data.shapes_splits()
Xte, yte = train.tensors(splits.test)
Xte, yte = Xte[:N_EVAL], yte[:N_EVAL]
Xtr, _ = train.tensors(splits.train)
fp32_onnx = ox.export_onnx(teacher, Xte[:2])
acts, weights = int8.qdq_tensor_names(fp32_onnx)
hists = qdq.activation_histograms(fp32_onnx, acts, [Xtr[i:i + 128] for i in range(0, CALIB_IMAGES, 128)])
int8_onnx = {m: int8.quantize_onnx(fp32_onnx, hists, m) for m in METHODS}
sess32 = dort.make_session(fp32_onnx)
sess8 = {m: dort.make_session(q) for m, q in int8_onnx.items()}

# %%
# NBVAL_CHECK_OUTPUT
from pathlib import Path  # noqa: E402
import tempfile  # noqa: E402

with tempfile.TemporaryDirectory() as tmp:
    # EXTENDED is where the Q/DQ fusion happens, on every CPU; ALL then adds layout rewrites chosen for this
    # CPU (e.g. an NHWC com.microsoft.QLinearConv), so the checked listing stops at EXTENDED
    opt = dort.optimized_graph(int8_onnx["max"], "ORT_ENABLE_EXTENDED", Path(tmp) / "int8.onnx")
print("Q/DQ model:", {k: v for k, v in ox.node_counts(int8_onnx["max"]).items() if k in ("Conv", "QuantizeLinear", "DequantizeLinear")})
print("after onnxruntime's optimisation (EXTENDED):", {k: v for k, v in ox.node_counts(opt).items() if "Conv" in k or "Gemm" in k})
ref = dort.make_session(int8_onnx["max"], "ORT_DISABLE_ALL")  # the Q/DQ semantics, run literally in float
agree = (dort.run_batched(ref, Xte[:512]).argmax(1) == dort.run_batched(sess8["max"], Xte[:512]).argmax(1)).mean()
print(f"int8 kernels agree with the float Q/DQ reference on >= 99% of 512 predictions: {agree >= 0.99}")

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies of int8 kernels can differ by an image between CPUs)
correct_s32 = dort.run_batched(sess32, Xte).argmax(1) == yte.numpy()
correct_s8 = {m: dort.run_batched(s, Xte).argmax(1) == yte.numpy() for m, s in sess8.items()}
acc32, acc8 = float(correct_s32.mean()), {m: float(c.mean()) for m, c in correct_s8.items()}
print(f"shapes teacher, {len(Xte)} test images, calibration on {CALIB_IMAGES} training images, on", machine.describe("cpu"))
print(f"{'fp32 (onnxruntime)':<28} {acc32:.2%}")
for m, a in acc8.items():
    print(f"{'int8, ' + m + ' calibration':<28} {a:.2%}  ({100 * (a - acc32):+.2f} points)")
calib_vs_fp32 = {m: stats.paired_difference(c, correct_s32) for m, c in correct_s8.items()}
for m, d in calib_vs_fp32.items():
    print(f"int8 '{m}' " + d.text("vs fp32", "int8", "fp32"))

# %%
# NBVAL_IGNORE_OUTPUT  (text computed from the accuracies above)
worse = [m for m, d in calib_vs_fp32.items() if d.hi < 0]
display(Markdown(
    "All four thresholds come from one pipeline (`deploy.qdq.scales_from_histograms`, the same one lesson 15 "
    "uses for TensorRT), with its one default for the entropy (KL) method: the spike of exact zeros after each "
    "ReLU is replaced by its neighbour bin (`zero_bin=\"copy_next\"`, as NVIDIA's pytorch-quantization does; "
    "lesson 08 shows why). Here " +
    (f"{', '.join(worse)} {'is' if len(worse) == 1 else 'are'} measurably worse than fp32 on these "
     f"{len(Xte)} images (paired interval below 0); the others cannot be told apart from fp32 at this budget. "
     if worse else f"no method can be told apart from fp32 on these {len(Xte)} images (paired intervals contain 0). ") +
    "Calibration is a choice to check per model, not a formality."))

# %% [markdown]
# ### 4.1 · int8 on a CPU without VNNI: saturation, and the `reduce_range` remedy
#
# onnxruntime runs an int8 convolution as a GEMM of *unsigned* 8-bit activations (a signed code $q$ becomes
# $q + 128$) and signed 8-bit weights, and how it sums the products depends on the CPU it finds. With **VNNI**
# (or AMX), `vpdpbusd` adds four u8×s8 products straight into int32: exact. Without it (AVX2, most laptops,
# and AVX-512 CPUs before VNNI), `vpmaddubsw` first adds each *pair* of neighbouring products into a
# **saturating int16**: $a_{2j}w_{2j} + a_{2j+1}w_{2j+1}$ can reach $2 \cdot 255 \cdot 127 = 64\,770$, and
# everything above $32\,767$ is clipped. onnxruntime's quantisation documentation names this and the remedy:
# `reduce_range`, weights quantised to $[-64, 64]$ (scale $\max|W_c|/64$), so a pair stays at most
# $2 \cdot 255 \cdot 64 = 32\,640$. `int8.quantize_onnx` turns it on by default exactly where the CPU's int8
# kernel would saturate. onnxruntime picks its kernel from CPUID and no setting lowers it, so to show both
# kernels on any machine, `quant.x86int8` re-computes the int8 model in PyTorch with either kernel's
# arithmetic (checked against onnxruntime below on this CPU's own kernel):

# %%
show_source(x86int8.saturating_pair_dot)

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies of int8 kernels can differ by an image between CPUs; sizes follow this CPU's speed)
feat = machine.cpu_features()
print("this CPU:", machine.describe_cpu_features())
variants = {"weights [-127, 127]": int8.quantize_onnx(fp32_onnx, hists, "max", reduce_range=False),
            "reduce_range [-64, 64]": int8.quantize_onnx(fp32_onnx, hists, "max", reduce_range=True)}
t0 = time.perf_counter()
x86int8.run_qdq_model(variants["weights [-127, 127]"], Xte[:100], "vpmaddubsw")
n_emu = profile.items_within(EMU_BUDGET_S / 2, (time.perf_counter() - t0) / 100, at_least=min(100, N_EVAL),
                             at_most=N_EVAL, multiple_of=100)
xe, ye = Xte[:n_emu], yte[:n_emu].numpy()
correct32 = dort.run_batched(sess32, xe).argmax(1) == ye
ort_kernel = {"amx": "exact", "vnni": "exact", "avx2-vpmaddubsw": "vpmaddubsw"}.get(feat["int8_kernel"])
rows, agree_ort = {}, {}
for vname, qm in variants.items():
    ort_pred = dort.run_batched(dort.make_session(qm), xe).argmax(1)
    rows[("onnxruntime, this CPU", vname)] = ort_pred == ye
    for k, label in (("exact", "emulated VNNI / AMX (exact)"), ("vpmaddubsw", "emulated AVX2 (vpmaddubsw)")):
        pred = x86int8.run_qdq_model(qm, xe, k).argmax(1)
        rows[(label, vname)] = pred == ye
        if k == ort_kernel:
            agree_ort[vname] = float((pred == ort_pred).mean())
print(f"shapes teacher, max calibration, {n_emu} test images"
      + (f" (of N_EVAL = {N_EVAL}: the emulation's budget EMU_BUDGET_S = {EMU_BUDGET_S} s)" if n_emu < N_EVAL else "")
      + f"; fp32 (onnxruntime) {correct32.mean():.2%}")
print(f"{'int8 kernel':<30}{'weights':<24}{'accuracy':>9}   vs fp32: points [95% CI] -> verdict")
diffs = {}
for (kname, vname), c in rows.items():
    d = diffs[(kname, vname)] = stats.paired_difference(c, correct32)
    print(f"{kname:<30}{vname:<24}{c.mean():>9.2%}   {100 * d.diff:+.2f} [{100 * d.lo:+.2f}, {100 * d.hi:+.2f}] -> "
          f"{d.verdict.replace('A better', 'int8 better').replace('B better', 'fp32 better')}")
if ort_kernel:
    print(f"\nemulation ('{ort_kernel}') vs onnxruntime on this CPU: predictions agree on "
          + ", ".join(f"{100 * a:.1f}% ({v})" for v, a in agree_ort.items()))
else:
    print("\nthis CPU is not x86 (or its flags are unreadable): the emulation is not checked against onnxruntime here")
sat, rr = diffs[("emulated AVX2 (vpmaddubsw)", "weights [-127, 127]")], diffs[("emulated AVX2 (vpmaddubsw)", "reduce_range [-64, 64]")]
print(f"verdict: on a CPU without VNNI, full-range int8 weights change accuracy by {100 * sat.diff:+.2f} points vs fp32 "
      f"({'a real loss' if sat.hi < 0 else 'cannot tell apart from fp32'}), reduce_range by {100 * rr.diff:+.2f} "
      f"({'a real loss' if rr.hi < 0 else 'cannot tell apart from fp32'}); quantize_onnx's default here: "
      f"reduce_range={int8.default_reduce_range()} (int8 kernel: {feat['int8_kernel']})")
sess_full, sess_rr = dort.make_session(variants["weights [-127, 127]"]), dort.make_session(variants["reduce_range [-64, 64]"])

# %% [markdown]
# **Latency.** The same batch of `BATCH` images through fp32 onnxruntime, int8 onnxruntime (full range and
# `reduce_range`) and PyTorch eager fp32, measured side by side:

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
xb = Xte[:BATCH]
lat = profile.measure_side_by_side({"PyTorch fp32": lambda: teacher(xb), "onnxruntime fp32": lambda: dort.run(sess32, xb),
                                    "onnxruntime int8": lambda: dort.run(sess_full, xb),
                                    "int8 reduce_range": lambda: dort.run(sess_rr, xb)},
                                   (), warmup=3, repeats=REPEATS, budget_s=LATENCY_BUDGET_S)
print(f"batch {BATCH} of 3x32x32, median of {REPEATS} interleaved runs, on", machine.describe("cpu"))
for k, v in lat.items():
    print(f"{k:<18} {v.median_ms:8.2f} ms  (p10 {v.p10_ms:.2f}, p90 {v.p90_ms:.2f})")
speedup = lat["onnxruntime fp32"].median_ms / lat["onnxruntime int8"].median_ms
v_int8 = stats.verdict(lat["onnxruntime int8"].times_ms, lat["onnxruntime fp32"].times_ms, names=("int8", "fp32"),
                       higher_is_better=False, paired=True, unit="ms")
v_rr = stats.verdict(lat["int8 reduce_range"].times_ms, lat["onnxruntime int8"].times_ms,
                     names=("reduce_range", "full range"), higher_is_better=False, paired=True, unit="ms")
print(f"\nint8 kernel: {machine.cpu_features()['int8_kernel']}; int8 at {speedup:.2f}x fp32's speed")
print(v_int8.text(2))
print(v_rr.text(2))
bar({k: v.median_ms for k, v in lat.items()}, ylabel=f"ms per batch of {BATCH}", title="fp32 vs int8 on this CPU");

# %% [markdown]
# **Document 003's numbers.** It says fp16 loses under 1 % and int8 *without retraining* 3–15 %.

# %%
# NBVAL_IGNORE_OUTPUT  (built from the accuracies above)
losses = {m: 100 * (acc32 - acc8[m]) for m in METHODS}
print("int8 PTQ, shapes teacher (onnxruntime), loss in points per calibration method:",
      ", ".join(f"{m} {v:.2f}" for m, v in losses.items()))
print(f"W8A8 PTQ, digits teacher (fake-quant): loss {100 * (d_fp32 - w8a8):.2f} points")
in_range = [m for m, v in losses.items() if 3 <= v <= 15]
print(f"verdict: methods whose loss falls in document 003's 3-15 % here: {in_range or 'none'}")

# %%
# NBVAL_IGNORE_OUTPUT  (text computed from the losses above)
display(Markdown(
    "> **Note (document 003).** It gives 3–15 % as the typical loss of int8 without retraining. It names no model "
    "or scheme, so this is a Note, not an Erratum: on our small models, with per-channel weights, the loss here is "
    f"{min(losses.values()):.2f} to {max(losses.values()):.2f} points for the shapes teacher and "
    f"{100 * (d_fp32 - w8a8):.2f} for the W8A8 digits teacher. The range is plausible for per-tensor weights, "
    "depthwise-heavy models or a poor threshold, so measure, do not assume."))

# %% [markdown]
# ## 5 · Try it: calibration method vs int8 accuracy
#
# Pick a calibration method (the panel's first control): the panel rebuilds the int8 model from the same
# histograms, prints the threshold it chose for each activation (as a multiple of the observed max) and the
# accuracy on 1,000 test images next to fp32.

# %%
def int8_panel(method="max"):
    scales = qdq.scales_from_histograms(hists, method)
    sess = sess8[method]
    a8 = dort.accuracy(sess, Xte[:1000], yte[:1000])
    a32 = dort.accuracy(sess32, Xte[:1000], yte[:1000])
    print(f"method = {method}: int8 accuracy {a8:.1%}, fp32 {a32:.1%} ({100 * (a8 - a32):+.1f} points), {len(Xte[:1000])} test images")
    print(f"{'tensor':<16} {'threshold T':>12} {'T / max|x|':>11}")
    for n in acts:
        print(f"{n:<16} {127 * scales[n]:>12.4g} {127 * scales[n] / hists[n].max:>11.2f}")


interactive_panel(int8_panel, method=dropdown("calibration", list(METHODS), "max"))

# %% [markdown]
# ## 6 · Exercises
#
# **6.1** `x = (-0.5, -0.31, -0.2, 0.0, 0.4, 1.1, 1.2, 1.26, 1.3, 2.0)` goes through unsigned 4-bit fake
# quantisation with `S = 0.1`, `Z = 3`. How many entries receive gradient 1 from the straight-through estimator?

# %%
answer = ...  # an int
ex.ste_count.check(answer)

# %% [markdown]
# **6.2** Calibration returned the threshold `T = 6.35` for a symmetric int8 activation. What scale goes into
# `QuantizeLinear`?

# %%
answer = ...  # a number
ex.int8_scale.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
# Reference answers: ex.ste_count.solution(), ex.int8_scale.solution()
ex.ste_count.check(ex.ste_count.solution())
ex.int8_scale.check(ex.int8_scale.solution())
ex.int8_scale.check(6.35 / 128)

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run's variables)
def pts(d):
    word = {"A better": "better", "B better": "worse"}.get(d.verdict, d.verdict)
    return f"{100 * d.diff:+.1f} points ({word})"


qat_lines = [f"{n}: PTQ {100 * r[0].mean():.1f} % ({pts(qat_vs[n][0])} vs fp32), after {QAT_EPOCHS} QAT epoch(s) "
             f"{100 * r[1].mean():.1f} % ({pts(qat_vs[n][1])} vs fp32; vs PTQ {pts(qat_vs[n][2])})"
             for n, r in results.items()]
display(Markdown("\n".join([
    "* Our `fake_quantize` matches `torch.fake_quantize_per_tensor_affine` forward and backward; the STE passes "
    "gradient 1 inside the clamp range and 0 outside (checked).",
    f"* Digits teacher (fp32 {100 * d_fp32:.1f} % on {len(yd_test)} test images, paired intervals): " + "; ".join(qat_lines) + ".",
    "* `torch.ao.quantization` warns that it is deprecated; PT2E quantisation lives in torchao "
    f"({'installed' if HAVE_TORCHAO else 'not installed here'}); onnxruntime runs the int8 model.",
    "* With Q/DQ pairs on conv inputs *and* outputs onnxruntime turns all six convolutions into `QLinearConv` (checked). "
    f"Shapes teacher, {len(Xte)} test images: int8 vs fp32 per calibration method: "
    + ", ".join(f"{m} {pts(d)}" for m, d in calib_vs_fp32.items()) + ".",
    f"* Latency (batch {BATCH}): {v_int8.text(2)}; {v_rr.text(2)}.",
    f"* Without VNNI (emulated, {n_emu} images): full-range weights {pts(sat)} vs fp32, `reduce_range` {pts(rr)}; "
    f"`quantize_onnx` uses reduce_range={int8.default_reduce_range()} on this CPU ({feat['int8_kernel']}).",
    f"* Document 003's 3–15 % int8 loss without retraining: this run's losses are {min(losses.values()):.2f} to "
    f"{max(losses.values()):.2f} points (the **Note** in section 4).",
    f"* Measured on: {machine.describe('cpu')}.",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | quantisation-aware training (QAT) | 量化感知训练 | training through fake quantisers |
# | post-training quantisation (PTQ) | 训练后量化 | calibrate and quantise a trained model, no training |
# | fake quantisation | 伪量化 | quantise-dequantise in float to simulate integers |
# | straight-through estimator (STE) | 直通估计器 | treat round() as identity in the backward pass |
# | observer | 观察器 | module tracking an activation's range |
# | calibration | 校准 | choosing thresholds / scales from sample data |
# | Q/DQ node | 量化/反量化节点 | ONNX QuantizeLinear / DequantizeLinear |
# | int8 kernel | int8 算子 | integer convolution (QLinearConv; VNNI or VPMADDUBSW underneath) |
# | saturation | 饱和 | clipping a sum to the largest value its type holds (int16 here) |
# | reduce_range | 缩减量化范围 | int8 weights limited to [-64, 64] so int16 pair sums cannot saturate |
# | per-channel scale | 逐通道缩放因子 | one scale per output channel of a weight |
# | deprecated | 已弃用 | still present, announced for removal |
#
# **Next:** [12 · Low-rank factorisation](12_low_rank.ipynb).
