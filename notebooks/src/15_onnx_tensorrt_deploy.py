# %% [markdown]
# # 15 · From PyTorch to an inference engine: ONNX, graph optimisation, fp16/int8, TensorRT 11
#
# **After this lesson you can** export a trained CNN to ONNX, fold BatchNorm into its convolutions by
# hand, watch an engine builder fuse, fold and reformat the graph level by level, save and reload the
# optimised "engine", pick the fastest kernel per layer, and produce the fp16 and explicitly quantised
# (Q/DQ) int8 graphs that TensorRT 11 requires — measuring latency, throughput and accuracy at each step.
#
# **Goals**
# 1. Follow document 000's TensorRT workflow (parse ONNX → optimise → serialise → deserialise → execution
#    context → run) with onnxruntime, which runs everywhere, and with TensorRT where it exists.
# 2. Verify each optimisation numerically: Conv+BN folding, Conv+ReLU fusion, constant folding, concat
#    elimination, kernel auto-tuning (tactic selection).
# 3. Build fp16 and int8 graphs the strongly typed way (no precision flags, no calibrator class: Q/DQ nodes
#    whose scales come from `lessons_lib.quant`'s KL calibration) and check them against onnxruntime's own quantiser.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 15 s (`FAST=True`: about 15 s; the ONNX export alone takes ~5 s).

# %% tags=["parameters"]
# Parameters: papermill overrides these (e.g. `papermill ... -p FAST True`).
FAST = False          # fewer test images and timing repeats: for CI and quick checks
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # "auto" -> CUDA when present (GPU-only cells run), else CPU
N_TEST = 500          # test images for the accuracy of each precision
N_CALIB = 128         # calibration images (from the training split) for the int8 scales
BATCHES = [1, 8, 64]        # batch sizes of the latency / throughput sweep

# %%
import logging

import numpy as np
import onnx
import onnxruntime
import torch
from IPython.display import Markdown, display
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from torch import nn

from lessons_lib import checkpoints, data, machine, seed_everything, stats
from lessons_lib.course import show_source
from lessons_lib import deploy
from lessons_lib.course.checks import compare
from lessons_lib.paths import build_dir
from lessons_lib.deploy import gpu, onnx_export, qdq, tactics
from lessons_lib.deploy import tensorrt as trtx
from lessons_lib.course.exercises import lesson15 as ex
from lessons_lib.course.plotting import bar, lines, use_house_style
from lessons_lib.profile import measure_side_by_side
from lessons_lib.deploy.int8 import default_reduce_range
from lessons_lib.course.widgets import dropdown, interactive_panel

seed_everything(SEED)
use_house_style()
logging.getLogger().setLevel(logging.ERROR)     # quantize_static logs a "pre-process first" hint
dev = machine.resolve_device(DEVICE)
REPEATS = 5 if FAST else 10
if FAST:
    N_TEST, N_CALIB, BATCHES = 250, 64, [1, 16]
BUILD = build_dir()
OUT = BUILD / "deploy"           # every file of this lesson goes here (never printed as an absolute path)
OUT.mkdir(parents=True, exist_ok=True)
splits = data.shapes_splits(seed=0)
x_test, y_test = (t[:N_TEST] for t in splits.test.tensors)
x_calib = splits.train.tensors[0][:N_CALIB]
model = checkpoints.pretrained("shapes_teacher").eval()
print("measurements below come from:", machine.describe("cpu"))

# %% [markdown]
# ## 1 · Parse: PyTorch → ONNX
#
# **Claim.** Document 000 describes TensorRT's input as a trained FP32 model handed to a *parser*; PyTorch
# models go through the intermediate ONNX format first. ONNX is a graph of standard operators
# (`Conv`, `Relu`, `Gemm` …) with the weights stored as *initializers*.
#
# **What torch 2.14 does.** `torch.onnx.export(model, (x,), dynamo=True)` is the default exporter since
# torch 2.9: it traces with `torch.export` and translates each aten op with onnxscript. With
# `optimize=False` you get the raw translation; its default `optimize=True` runs onnxscript's optimiser, which
# folds constants **and folds BatchNorm into the convolutions**. The deprecated TorchScript exporter
# (`dynamo=False`) folds BatchNorm too unless `do_constant_folding=False`. To *show* fusion we export once,
# raw, and derive the other two levels without tracing again:

# %%
show_source(onnx_export.export_onnx)

# %%
raw = deploy.export_onnx(model, x_test[:2], OUT / "teacher_raw.onnx", level="raw")   # ~5 s: torch.export + onnxscript
graphs = {level: deploy.simplify(raw, level) for level in deploy.EXPORT_LEVELS}
unfused, fp32 = graphs["constants"], graphs["full"]
onnx.save(unfused, OUT / "teacher_unfused.onnx")
onnx.save(fp32, OUT / "teacher_fp32.onnx")

# %%
# NBVAL_CHECK_OUTPUT
onnx.checker.check_model(fp32, full_check=True)       # raises if the graph is invalid
print("onnx.checker: ok;  inputs/outputs after shape inference:", deploy.io_signature(deploy.check(fp32)))
for level, g in graphs.items():
    counts = deploy.node_counts(g)
    print(f"{level:<10} {sum(counts.values()):>3} nodes  {counts}")

# %% [markdown]
# The raw graph keeps the six `BatchNormalization` nodes but also carries helper nodes: for every bias-free
# conv the exporter builds a zero bias at run time (`Shape → Expand → CastLike` of the input), plus the
# `Shape/Squeeze/Concat/Reshape` chain that computes `flatten` for a *dynamic* batch. Constant folding removes
# what does not depend on the input; `full` also folds BN. The legacy exporter, for comparison:

# %%
# NBVAL_CHECK_OUTPUT
for level in ("raw", "full"):
    g = deploy.export_onnx(model, x_test[:2], level=level, exporter="torchscript")
    print(f"torchscript exporter, do_constant_folding={level != 'raw'}: {deploy.node_counts(g)}")

# %% [markdown]
# A readable view of the optimised graph (`*` marks weights; shapes come from ONNX shape inference, `batch`
# is the dynamic dimension):

# %%
# NBVAL_CHECK_OUTPUT
print(deploy.node_table(deploy.check(fp32)))

# %% [markdown]
# ## 2 · Conv + BatchNorm folding, by hand
#
# **Formula.** In eval mode BN is a fixed affine map per output channel $c$, so
# $$\mathrm{BN}(W * x + b) = W' * x + b',\qquad k_c = \frac{\gamma_c}{\sqrt{\sigma_c^2+\epsilon}},\quad
# W'_c = k_c W_c,\quad b'_c = k_c (b_c - \mu_c) + \beta_c .$$
# One conv instead of conv + BN: the BN's read and write of the whole activation disappear.

# %%
show_source(deploy.fold_batchnorm)

# %%
# NBVAL_CHECK_OUTPUT
folded = deploy.fold_model(model)
with torch.no_grad():
    y_ref, y_fold = model(x_test[:256]), folded(x_test[:256])
compare("folded model vs conv+BN model, logits", y_fold, y_ref, ref_name="PyTorch", atol=1e-4)
inits = {i.name: onnx.numpy_helper.to_array(i) for i in fp32.graph.initializer}
compare("our folded conv-1 weight vs the ONNX optimiser's", folded.features[0][0].weight.detach(),
        torch.from_numpy(inits["features.0.0.weight"].copy()), ref_name="onnxscript", atol=1e-6)
print("BatchNorm2d modules: before", sum(isinstance(m, nn.BatchNorm2d) for m in model.modules()),
      "after", sum(isinstance(m, nn.BatchNorm2d) for m in folded.modules()))

# %% [markdown]
# ## 3 · Graph optimisation, level by level — and serialise / deserialise
#
# **Claim.** Document 000 lists what the engine builder does to the parsed graph: merge layers (conv, BN and
# activation become one kernel), eliminate concat layers, fold what is constant. onnxruntime's optimiser
# does the same kind of rewriting; its levels make the steps visible (`lessons_lib.deploy.ort` explains each).
# We hand it the *unfused* graph (BN still present) and save what each level produces:

# %%
# NBVAL_CHECK_OUTPUT  (the portable levels: the same graph on every CPU)
PORTABLE_LEVELS = [lv for lv in deploy.ORT_LEVELS if lv != "ORT_ENABLE_ALL"]
level_counts = {}
for level in deploy.ORT_LEVELS:
    g = deploy.optimized_graph(unfused, level, OUT / f"teacher_{level}.onnx")
    level_counts[level] = deploy.node_counts(g)
for level in PORTABLE_LEVELS:
    print(f"{level:<20} {sum(level_counts[level].values()):>2} nodes  {level_counts[level]}")

# %%
# NBVAL_IGNORE_OUTPUT  (ALL adds layout transforms chosen for this CPU's instruction set: machine-specific)
print(f"{'ORT_ENABLE_ALL':<20} {sum(level_counts['ORT_ENABLE_ALL'].values()):>2} nodes  "
      f"{level_counts['ORT_ENABLE_ALL']}   on {machine.cpu_name()}")

# %% [markdown]
# Read it: **BASIC** folds the six BNs into the convs (and folds constants); **EXTENDED** fuses each Conv with
# its ReLU into one `FusedConv` kernel (`com.microsoft` domain); **ALL** converts the convs to the
# hardware-specific NCHWc blocked layout (`nchwc.Conv`) with `Reorder` nodes at the edges — which is why
# onnxruntime warns that a model saved at ALL only suits the machine that wrote it, just as a TensorRT
# engine only suits the GPU and TensorRT version that built it.
#
# **Serialise → deserialise.** The file written by `optimized_model_filepath` is the optimised graph; loading it
# back (with optimisation off) skips the optimisation and must compute exactly the same:

# %%
# NBVAL_CHECK_OUTPUT
engine = deploy.make_session(unfused, "ORT_ENABLE_EXTENDED", optimized_path=OUT / "teacher_engine.onnx")
reloaded = deploy.load_session(OUT / "teacher_engine.onnx")
y_engine, y_reloaded = deploy.run(engine, x_test[:64]), deploy.run(reloaded, x_test[:64])
print("saved file:", (OUT / "teacher_engine.onnx").relative_to(BUILD.parent))
compare("reloaded engine vs original session", y_reloaded, y_engine, ref_name="original", atol=0.0)
_ = compare("onnxruntime (fused) vs PyTorch", y_engine, y_ref[:64].numpy(), ref_name="PyTorch", atol=1e-4)

# %% [markdown]
# **Engine vs execution context.** In TensorRT the optimised, immutable `ICudaEngine` holds weights and the
# chosen kernels; an `IExecutionContext` (created from it, several per engine) holds the per-inference state —
# input shapes, buffer addresses — and runs it. Here the `InferenceSession` plays the engine (built once,
# optimised, shareable across threads) and each `session.run(...)` call the context (inputs and outputs of one
# inference). Document 000's "engine + context = inference" is the same split.
#
# ### Concat elimination
# Document 000: for a channel concat, TensorRT makes each branch write its output directly to the right place
# in the concatenated buffer, so the concat copy disappears. onnxruntime on the CPU does **not** do this — the
# `Concat` node survives every level:

# %%
# NBVAL_CHECK_OUTPUT
torch.manual_seed(SEED)
block = tactics.ConcatBlock(in_ch=64, branch_ch=64, branches=4).eval()
x_block = torch.randn(8, 64, 32, 32)
block_onnx = deploy.export_onnx(block, x_block[:1], level="full", dynamic_batch=False, exporter="torchscript")  # 0.3 s
concat_counts = {lv: deploy.node_counts(deploy.optimized_graph(block_onnx, lv, OUT / f"concat_{lv}.onnx"))
                 for lv in deploy.ORT_LEVELS}
for level in PORTABLE_LEVELS:
    print(f"{level:<20} {concat_counts[level]}")
print("Concat survives ORT_ENABLE_ALL too:", concat_counts["ORT_ENABLE_ALL"].get("Concat", 0) == 1)

# %% [markdown]
# So we do it by hand: the four 1×1 branches are GEMMs $Y_i = W_i X + b_i$; `branches_into_buffer` points each
# GEMM's output at its channel slice of one preallocated tensor, `branches_then_cat` runs the very same GEMMs
# into separate tensors and then copies them with `torch.cat`.

# %%
show_source(tactics.branches_into_buffer)

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    y_block = block(x_block)
    compare("concat-free vs torch.cat block", tactics.branches_into_buffer(block, x_block), y_block, atol=1e-5)
    compare("GEMMs + torch.cat vs torch.cat block", tactics.branches_then_cat(block, x_block), y_block, atol=1e-5)
print(f"bytes the concat moves: {tactics.concat_bytes(block, x_block) / 2**20:.0f} MiB (read + write of the 8 MiB output)")

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
threads = torch.get_num_threads()
torch.set_num_threads(1)          # one thread: a ~10 % effect must not drown in thread-scheduling noise
where = machine.describe("cpu")
lat = measure_side_by_side({"GEMMs + torch.cat": lambda: tactics.branches_then_cat(block, x_block),
                            "GEMMs into the buffer": lambda: tactics.branches_into_buffer(block, x_block)},
                           (), warmup=2, repeats=2 * REPEATS)
torch.set_num_threads(threads)
saved = lat["GEMMs + torch.cat"].median_ms - lat["GEMMs into the buffer"].median_ms
print("measured on:", where)
for name, l in lat.items():
    print(f"{name:<24} {l.median_ms:6.2f} ms (p10-p90 {l.p10_ms:.2f}-{l.p90_ms:.2f})")
v_concat = stats.verdict(lat["GEMMs into the buffer"].times_ms, lat["GEMMs + torch.cat"].times_ms,
                         names=("concat-free", "torch.cat"), higher_is_better=False, paired=True, unit="ms")
print(v_concat.text(3))
print(f"the copy avoided: {tactics.concat_bytes(block, x_block) / 2**20:.0f} MiB per call; median saving {saved:.2f} ms "
      f"({saved / lat['GEMMs + torch.cat'].median_ms:.0%} of the block)")

# %% [markdown]
# ## 4 · Kernel auto-tuning (tactic selection)
#
# **Claim.** Document 000: TensorRT ships many implementations of each layer and, for the given batch size and
# layer shape, automatically picks the best — how the work is split into CUDA blocks and threads. It does so by
# *timing* the candidates on the target device while building the engine. On the CPU we can do the same with
# four implementations of a convolution (`tactics.conv_tactics`): oneDNN in NCHW, oneDNN in channels_last
# (including the reformat there and back), PyTorch's native kernel with oneDNN off, and im2col + GEMM. Each is
# first checked against `conv(x)` (a wrong kernel must never win), then timed side by side; one torch thread,
# so that thread scheduling on a shared machine does not decide the race.

# %%
show_source(tactics.autotune)

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
rows = tactics.autotune_model(model, x_test[:8], threads=1, repeats=3 if FAST else 5)
names = list(rows[0]["times"])
print("measured on:", machine.describe("cpu"), "| batch 8, 1 thread, median ms")
print(f"{'layer':<14}{'input':<18}" + "".join(f"{n:>22}" for n in names) + "   chosen")
for r in rows:
    print(f"{r['layer']:<14}{str(list(r['in_shape'])):<18}" + "".join(f"{r['times'][n]:>22.2f}" for n in names)
          + f"   {r['best']}")
winners = {r["best"] for r in rows}
print(f"\n{len(winners)} different tactic(s) won across {len(rows)} layers: {sorted(winners)}")

# %% [markdown]
# The winner can change from layer to layer (small channel counts vs large, large vs small spatial maps), which
# is exactly why TensorRT times per layer instead of using one rule. The timing cache (`timing_cache=` in
# `build_engine`) stores these results so that the next build skips the benchmarks.
#
# ## 5 · Latency and throughput vs batch size
#
# Latency is the time for one call; throughput is images per second, $b / t(b)$. A bigger batch amortises
# per-call overhead and feeds wider kernels, so throughput grows until the device is saturated — at the cost
# of latency. That is why document 000 says TensorRT picks kernels per batch size: a GPU with thousands of
# cores needs a batch to fill them. Whether a 2-core CPU gains anything is a measurement. Below: the graph
# without optimisation vs onnxruntime's full optimisation.

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
sessions = {"ORT_DISABLE_ALL": deploy.make_session(unfused, "ORT_DISABLE_ALL"),
            "ORT_ENABLE_ALL": deploy.make_session(unfused, "ORT_ENABLE_ALL")}
batch_lat = {b: measure_side_by_side({n: (lambda s=s, b=b: deploy.run(s, x_test[:b])) for n, s in sessions.items()},
                                     (), warmup=2, repeats=REPEATS) for b in BATCHES}
sweep = {n: {b: batch_lat[b][n].median_ms for b in BATCHES} for n in sessions}
print("measured on:", machine.describe("cpu"), f"| {REPEATS} interleaved repeats per batch size")
print(f"{'batch':>6}" + "".join(f"{n + ' ms':>22}{'img/s':>9}" for n in sessions))
for b in BATCHES:
    print(f"{b:>6}" + "".join(f"{sweep[n][b]:>22.2f}{b / sweep[n][b] * 1e3:>9.0f}" for n in sessions))
v_opt = {b: stats.verdict(batch_lat[b]["ORT_ENABLE_ALL"].times_ms, batch_lat[b]["ORT_DISABLE_ALL"].times_ms,
                          names=("optimised", "unoptimised"), higher_is_better=False, paired=True, unit="ms")
         for b in BATCHES}
for b, v in v_opt.items():
    print(f"batch {b}: {v.text(3)}")
b0, b1 = BATCHES[0], BATCHES[-1]
v_batch = {n: stats.verdict([t / b1 for t in batch_lat[b1][n].times_ms], [t / b0 for t in batch_lat[b0][n].times_ms],
                            names=(f"batch {b1}", f"batch {b0}"), higher_is_better=False, unit="ms per image")
           for n in sessions}
for n, v in v_batch.items():
    print(f"{n}, time per image: {v.text(4)}")
ax = lines(BATCHES, {n: [b / sweep[n][b] * 1e3 for b in BATCHES] for n in sessions}, logx=True,
           xlabel="batch size", ylabel="images / s", title="Throughput vs batch size (onnxruntime, CPU)")

# %% [markdown]
# ## 6 · Precision: fp16 and int8 the strongly typed way
#
# **Claim.** Document 000 lists lower precision (FP32 → FP16 / INT8 / INT4) as the last big lever: smaller
# models, less memory traffic, lower latency. How you ask for it changed: **TensorRT 11 only builds strongly
# typed networks** — the `FP16`/`INT8` builder flags and the INT8 calibrator classes were removed. The precision
# is whatever the ONNX file declares: fp16 tensors for fp16, and explicit `QuantizeLinear → DequantizeLinear`
# (Q/DQ) pairs for int8, with symmetric scales (zero point 0), one per activation tensor and one per output
# channel of each weight.
# $$q = \mathrm{clip}\big(\mathrm{round}(x / s),\,-128,\,127\big),\qquad \hat x = s\,q,\qquad
# s_{\text{act}} = T/127\ (T:\ \text{KL threshold}),\quad s_{\text{w},c} = \max|W_c| / 127 .$$
#
# **fp16.** Turn every float initializer, the graph input and output into float16:

# %%
# NBVAL_CHECK_OUTPUT
fp16 = qdq.to_fp16(fp32)
onnx.save(fp16, OUT / "teacher_fp16.onnx")
print(f"weights: fp32 {qdq.weight_bytes(fp32) / 1024:.1f} KiB -> fp16 {qdq.weight_bytes(fp16) / 1024:.1f} KiB")
print("input/output:", deploy.io_signature(fp16))
cpu_fp16 = deploy.node_counts(deploy.optimized_graph(fp16, "ORT_ENABLE_EXTENDED", OUT / "teacher_fp16_opt.onnx"))
print("what onnxruntime's CPU provider runs:", cpu_fp16)

# %% [markdown]
# The `Cast` nodes in the last line are onnxruntime's doing: its x86 CPU provider has no fp16 convolution
# kernel, so it casts to fp32 around the convs — fp16 halves the stored weights; whether it saves any time is
# measured in section 6.3. On a GPU with tensor cores the same file runs natively in fp16.
#
# **int8: calibrate, then insert Q/DQ.** The activations to quantise are the inputs of every Conv and Gemm;
# their thresholds come from `lessons_lib.quant` — a histogram of $|x|$ over the calibration batches and
# TensorRT's KL-divergence (entropy) search — and the weights get per-channel max scales.

# %%
show_source(qdq.insert_qdq)

# %%
acts, weights = qdq.quantizable_inputs(fp32)
conv_outs = [n.output[0] for n in fp32.graph.node if n.op_type == "Conv"]   # used in section 6.3
calib_batches = [x_calib[i:i + 64] for i in range(0, N_CALIB, 64)]
hists = qdq.activation_histograms(fp32, acts + conv_outs, calib_batches)   # one pass over the calibration data
w_scales = qdq.weight_scales(fp32, weights)                    # full range: the file for TensorRT (a GPU)
RR = default_reduce_range()   # True on x86 CPUs whose int8 kernel saturates int16 pair sums (lesson 11, 4.1)
w_scales_cpu = qdq.weight_scales(fp32, weights, reduce_range=RR)  # for onnxruntime's integer kernels on this CPU
act_hists = {n: hists[n] for n in acts}
T_kl = {n: s * 127 for n, s in qdq.scales_from_histograms(act_hists, "entropy").items()}
T_kl_raw = {n: s * 127 for n, s in qdq.scales_from_histograms(act_hists, "entropy", zero_bin="keep").items()}
T_max = {n: s * 127 for n, s in qdq.scales_from_histograms(act_hists, "max").items()}
int8 = qdq.insert_qdq(fp32, {n: t / 127 for n, t in T_kl.items()}, w_scales)
onnx.save(int8, OUT / "teacher_int8_qdq.onnx")

# %%
# NBVAL_CHECK_OUTPUT
print("activations quantised:", acts)
print("Q/DQ structure:", qdq.qdq_summary(int8))
print(f"weights: fp32 {qdq.weight_bytes(fp32) / 1024:.1f} KiB -> int8 {qdq.weight_bytes(int8) / 1024:.1f} KiB "
      "(+ fp32 biases and scales)")

# %%
# NBVAL_IGNORE_OUTPUT  (thresholds depend on the calibration images' float sums; stable to ~1e-6)
print(f"{'tensor':<14}{'max':>8}{'KL':>8}{'KL, zero spike kept':>22}")
for n in acts:
    print(f"{n:<14}{T_max[n]:>8.3f}{T_kl[n]:>8.3f}{T_kl_raw[n]:>22.3f}")

# %% [markdown]
# Note the last column: half of a ReLU output is exactly 0, and with that spike left in the histogram the KL
# search clips far too hard (thresholds around 1 instead of 5–8). pytorch-quantization and ModelOpt replace
# the zero bin by its neighbour first (`zero_bin="copy_next"`, our default); section 6.3 shows the accuracy cost
# of not doing so.
#
# **Check against onnxruntime's quantiser.** `quantize_static(QDQ, per_channel=True, ActivationSymmetric=True,
# MinMax)` is an independent implementation of the same recipe. Our max calibration must give its scales, and
# our insertion, fed its scales, must reproduce its model's outputs:

# %%
class Batches(CalibrationDataReader):
    def __init__(self, batches):
        self.it = iter([{"x": b.numpy()} for b in batches])

    def get_next(self):
        return next(self.it, None)


quantize_static(str(OUT / "teacher_fp32.onnx"), str(OUT / "teacher_int8_ort.onnx"), Batches(calib_batches),
                quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax, reduce_range=RR,
                extra_options={"ActivationSymmetric": True})
int8_ort = onnx.load(OUT / "teacher_int8_ort.onnx")
ort_acts, ort_weights = qdq.scales_of(int8_ort)

# %%
# NBVAL_CHECK_OUTPUT
compare("activation scales, ours (max) vs onnxruntime MinMax", np.array([T_max[n] / 127 for n in acts]),
        np.array([ort_acts[n] for n in acts]), ref_name="onnxruntime", rtol=1e-5)
compare("per-channel weight scales (same reduce_range)", np.concatenate([w_scales_cpu[n] for n in weights]),
        np.concatenate([ort_weights[n] for n in weights]), ref_name="onnxruntime", rtol=1e-6)
print(f"onnxruntime quantised {len(ort_acts)} activation tensors (also conv outputs and the logits) "
      f"and stored biases as int32; ours: {len(acts)} (conv/gemm inputs) and fp32 biases")
mine_like_ort = qdq.insert_qdq(fp32, ort_acts, ort_weights)
y_a = deploy.run(deploy.make_session(mine_like_ort), x_test[:256])
y_b = deploy.run(deploy.make_session(int8_ort), x_test[:256])
agree = float((y_a.argmax(1) == y_b.argmax(1)).mean())
_ = compare("ours with onnxruntime's scales vs onnxruntime's int8 model: top-1 agreement on 256 images >= 0.99",
            agree >= 0.99, True, ref_name="expected")

# %% [markdown]
# ### 6.3 Accuracy and latency per precision (onnxruntime, CPU)
#
# One more int8 variant matters on this runtime. TensorRT wants Q/DQ on the *inputs* of each conv and fuses
# the rest (conv + bias + ReLU + the next layer's Q) itself. onnxruntime's CPU provider only replaces
# `DQ → Conv → Q` by its integer `QLinearConv` when the conv *output* is quantised too; otherwise it runs the
# convolutions in fp32 between DQ and Q nodes. So we also build a variant with the six conv outputs quantised:

# %%
# NBVAL_CHECK_OUTPUT
out_scales = qdq.scales_from_histograms({n: hists[n] for n in conv_outs}, "entropy")
int8_ortstyle = qdq.insert_qdq(fp32, {**{n: t / 127 for n, t in T_kl.items()}, **out_scales}, w_scales_cpu)
for name, g in (("int8, TensorRT placement", int8), ("int8, + conv outputs", int8_ortstyle)):
    c = deploy.node_counts(deploy.optimized_graph(g, "ORT_ENABLE_EXTENDED", OUT / "tmp_int8_opt.onnx"))
    print(f"{name:<26} runs as {c}")

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies of calibrated models and timings vary slightly with the machine)
variants = {"fp32": fp32, "fp16": fp16, "int8 KL, TensorRT placement": int8, "int8 KL, + conv outputs": int8_ortstyle,
            "int8 KL, zero spike kept": qdq.insert_qdq(fp32, {n: t / 127 for n, t in T_kl_raw.items()}, w_scales),
            "int8 onnxruntime quantize_static": int8_ort}
prec_sessions = {name: deploy.make_session(g) for name, g in variants.items()}
correct = {name: deploy.run_batched(s, x_test).argmax(1) == y_test.numpy() for name, s in prec_sessions.items()}
acc = {name: float(c.mean()) for name, c in correct.items()}
acc_vs_fp32 = {n: stats.paired_difference(correct[n], correct["fp32"]) for n in variants if n != "fp32"}
with torch.no_grad():
    acc_torch = float((model(x_test).argmax(1) == y_test).float().mean())
xb = x_test[:16]
timed = [n for n in variants if n != "int8 KL, zero spike kept"]   # same graph as the TensorRT placement
prec_lat = measure_side_by_side({n: (lambda s=prec_sessions[n]: deploy.run(s, xb)) for n in timed}, (),
                                warmup=2, repeats=REPEATS)
print("measured on:", machine.describe("cpu"), f"| {len(x_test)} test images, latency at batch 16")
print("this CPU:", machine.describe_cpu_features(), f"-> integer-kernel variants use reduce_range={RR}")
print(f"PyTorch fp32 accuracy {acc_torch:.4f}")
for n in variants:
    timing = (f"{prec_lat[n].median_ms:7.2f} ms   {prec_lat['fp32'].median_ms / prec_lat[n].median_ms:5.2f}x vs fp32"
              if n in prec_lat else "(same graph as the TensorRT placement: not timed)")
    print(f"{n:<34} accuracy {acc[n]:.4f}   {timing}")
speed_vs_fp32 = {n: stats.verdict(prec_lat[n].times_ms, prec_lat["fp32"].times_ms, names=(n, "fp32"),
                                  higher_is_better=False, paired=True, unit="ms") for n in timed if n != "fp32"}
for n in variants:
    if n != "fp32":
        print(f"{n}: accuracy {acc_vs_fp32[n].text('vs fp32', n, 'fp32')}")
for n, v in speed_vs_fp32.items():
    print(f"{n}: latency {v.text(3)}")
ax = bar({n: prec_lat[n].median_ms for n in timed}, ylabel="ms per batch of 16",
         title="onnxruntime CPU latency per precision (lower is better)")

# %% [markdown]
# > **Note (document 000).** Document 000 lists FP32 → FP16 as a TensorRT speed-up; TensorRT runs on NVIDIA
# > GPUs, whose tensor cores do have fast fp16 arithmetic, so the claim stands in its own setting (section 8
# > shows where it was measured on a GPU). It does not carry over to a CPU runtime: onnxruntime's CPU provider
# > has no fp16 convolution and inserts `Cast` nodes (counted above) — the latency verdict above says what fp16
# > bought in this run. int8 with integer kernels (`QLinearConv`) is where a CPU can gain (this CPU's int8
# > kernel is printed above), and the same Q/DQ file is only fast when the runtime can fuse the pattern it is given.
#
# ## 7 · The TensorRT path — *needs TensorRT + NVIDIA GPU*
#
# Everything above ran with onnxruntime on the CPU. The TensorRT 11 flow for the same three files is in
# `lessons_lib.deploy.tensorrt` (a small module written against the TensorRT 11 Python API): `build_engine`
# (Logger → Builder → `create_network(0)` → OnnxParser.parse → builder config with a workspace limit, a timing
# cache and `ProfilingVerbosity.DETAILED` → an **optimisation profile** → `build_serialized_network` → plan
# file), `load_engine` (Runtime.deserialize_cuda_engine → `create_execution_context`), `bind` (set_input_shape,
# one output buffer, set_tensor_address with torch CUDA tensors' `data_ptr()`, all once) whose `launch()` only
# enqueues `execute_async_v3` on a dedicated stream and waits — that is what is timed — and `engine_layers`
# (the engine inspector's JSON: fused layers appear as one entry, e.g. `Conv + Relu`).
# Our exports name their batch dimension `batch` (dynamic), and TensorRT refuses to build a network with a
# dynamic input unless a profile gives it a range: `build_engine(..., batch_range=(min, opt, max))` adds one
# (kernels tuned for `opt`, any batch in `[min, max]` accepted). The tests run this flow against a strict
# TensorRT 11 stand-in (`tests/trt_standin.py`) that, like TensorRT, refuses the build without the profile.
# fp32, fp16 and int8 engines come from `teacher_fp32.onnx`, `teacher_fp16.onnx` and `teacher_int8_qdq.onnx` —
# no precision flags.

# %%
show_source(trtx.build_engine)

# %%
show_source(trtx.bind)

# %%
# NBVAL_IGNORE_OUTPUT  (needs TensorRT + NVIDIA GPU; prints what was skipped otherwise)
ok, why = deploy.tensorrt_available()
print("TensorRT:", why)
if ok:
    files = {"fp32": OUT / "teacher_fp32.onnx", "fp16": OUT / "teacher_fp16.onnx", "int8": OUT / "teacher_int8_qdq.onnx"}
    trt_res = trtx.build_and_run(files, x_test[:64].cuda(), OUT / "trt", batch_range=(1, 64, 64))
    print("measured on:", machine.describe("cuda"))
    for label, r in trt_res.items():
        agree = float((r["output"].argmax(1) == y_ref[:64].argmax(1)).float().mean())
        print(f"{label}: {r['ms']:.3f} ms at batch 64, plan {r['plan_bytes'] / 1024:.0f} KiB, top-1 agreement "
              f"{agree:.3f}, {len(r['layers'])} engine layers, e.g. {r['layers'][:3]}")
else:
    print("skipped: building fp32 / fp16 / int8 engines, running them, listing fused layers.")
    print("ran instead (above, onnxruntime on the CPU): parse + optimise (section 3), serialise / deserialise "
          "(teacher_engine.onnx), run, fp16 and Q/DQ int8 graphs (section 6).")
    print("the TensorRT helpers are unit-tested against a strict TensorRT 11 stand-in (tests/trt_standin.py).")

# %% [markdown]
# ## 8 · PyTorch on an NVIDIA GPU — *needs an NVIDIA GPU*
#
# `lessons_lib.deploy.gpu.gpu_benchmark` times the same model in PyTorch eager fp32 / tf32 / fp16 / bf16,
# channels_last, and `torch.compile(mode="max-autotune")` (torch's own kernel auto-tuning, which benchmarks
# Triton candidates per layer). Run it as a script on a GPU machine: `python -m lessons_lib.deploy.gpu`
# (it also builds the TensorRT engines when TensorRT is installed). Expect a small CNN to be bound by kernel
# launches on a big GPU: lower precision barely moves eager latency, fusion does.
#
# With `--record` the script also saves its table (and the TensorRT engines' timings and fused layers) to
# `lessons_lib/weights/gpu_recorded.json`; the cell below shows that **recorded** result, labelled with its GPU and date, on
# machines without a GPU — never as a measurement of the machine running the notebook.

# %%
# NBVAL_IGNORE_OUTPUT  (runs only with a CUDA GPU; the recorded table comes from lessons_lib/weights/gpu_recorded.json)
if machine.has_cuda():
    print(gpu.format_table(gpu.gpu_benchmark(model, batch_sizes=(1, 64), repeats=20, compile_mode="max-autotune")))
else:
    print(gpu.format_table(gpu.gpu_benchmark(model)))
print()
print(gpu.format_record(gpu.load_record()))

# %% [markdown]
# ## 9 · Try it: what each optimisation level leaves of the graph
#
# Pick an **optimisation level** (the panel's first control) and a model; the panel rebuilds the session at that
# level, counts the ops of the optimised graph and times one batch of 32 images.

# %%
panel_models = {"teacher (unfused ONNX)": (unfused, x_test[:32]), "concat block": (block_onnx, x_block[:1])}


def level_panel(level="ORT_ENABLE_EXTENDED", model_name="teacher (unfused ONNX)"):
    g, xin = panel_models[model_name]
    counts = deploy.node_counts(deploy.optimized_graph(g, level, OUT / "panel.onnx"))
    s = deploy.make_session(g, level)
    ms = measure_side_by_side({"run": lambda: deploy.run(s, xin)}, (), warmup=1, repeats=3)["run"].median_ms
    bar(counts, ylabel="nodes", annotate="{:.0f}", title=f"{model_name} at {level}: {sum(counts.values())} nodes")
    print(f"level {level}: {sum(counts.values())} nodes {counts}; one run {ms:.2f} ms on this machine")


interactive_panel(level_panel, level=dropdown("optimisation level", list(deploy.ORT_LEVELS), "ORT_ENABLE_EXTENDED"),
                  model_name=dropdown("model", list(panel_models)))

# %% [markdown]
# ## 10 · Exercises
#
# **10.1** Fold a BatchNorm into a one-channel 1×1 conv by hand (values in `ex.FOLD_CASE`). Give `(w', b')`.

# %%
print(ex.FOLD_CASE)
answer = ...  # (w_folded, b_folded)
ex.fold_bn.check(answer)

# %% [markdown]
# **10.2** Four branches of 48 channels, fp32, batch 1, 28×28, are concatenated on channels. How many KiB does a
# copying concat move (read every branch output once and write the result once) — the traffic that concat
# elimination saves?

# %%
answer = ...  # KiB
ex.concat_traffic.check(answer)

# %% [markdown]
# *Reference answers:* `ex.fold_bn.solution()`, `ex.concat_traffic.solution()`.

# %%
# NBVAL_CHECK_OUTPUT
ex.fold_bn.check(ex.fold_bn.solution())
ex.concat_traffic.check(ex.concat_traffic.solution())

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run's variables)
ec = {lv: deploy.node_counts(g) for lv, g in graphs.items()}
n_nodes = {lv: sum(c.values()) for lv, c in ec.items()}
bn = {lv: c.get("BatchNormalization", 0) for lv, c in ec.items()}
portable = " → ".join(f"{sum(level_counts[lv].values())} at {lv.removeprefix('ORT_')}" for lv in PORTABLE_LEVELS)
fold_diff = float((y_fold - y_ref).abs().max())


def speed(n):
    v = speed_vs_fp32[n]
    word = {n: "faster than fp32", "fp32": "slower than fp32"}.get(v.better, v.verdict)
    return f"{prec_lat['fp32'].median_ms / prec_lat[n].median_ms:.2f}× fp32's speed ({word})"


def acc_line(n):
    d = acc_vs_fp32[n]
    word = {"A better": "better than fp32", "B better": "worse than fp32"}.get(d.verdict, d.verdict)
    return f"{100 * acc[n]:.1f} % ({100 * d.diff:+.1f} points vs fp32, {word})"


opt_words = "; ".join(f"batch {b}: {v.verdict}" for b, v in v_opt.items())
batch_words = "; ".join(f"{n}: {v.verdict}" for n, v in v_batch.items())
display(Markdown("\n".join([
    f"* **Export** (torch {torch.__version__.split('+')[0]}, dynamo exporter): raw {n_nodes['raw']} nodes "
    f"({bn['raw']} `BatchNormalization`), constant-folded {n_nodes['constants']} ({bn['constants']} BN), fully "
    f"optimised {n_nodes['full']} ({bn['full']} BN).",
    f"* **BN folding by hand** matches the conv+BN model (max |diff| {fold_diff:.1e}, within the checked 1e-4).",
    f"* **Graph optimisation** (onnxruntime {onnxruntime.__version__}): {portable}; ALL adds CPU-specific layouts (printed, "
    f"not checked). The saved optimised graph reloads and gives identical outputs (checked).",
    f"* **Concat elimination** (onnxruntime keeps the `Concat`; done by hand, it avoids a "
    f"{tactics.concat_bytes(block, x_block) / 2**20:.0f} MiB copy): {v_concat.text(3)}.",
    f"* **Auto-tuning**: {len(winners)} different tactic(s) won across the {len(rows)} convolutions.",
    f"* **Optimised vs unoptimised session**: {opt_words}. **Batching** (time per image, batch {BATCHES[-1]} vs "
    f"{BATCHES[0]}): {batch_words}.",
    f"* **Precision** ({len(x_test)} test images; paired intervals): fp32 {100 * acc['fp32']:.1f} %; fp16 "
    f"{acc_line('fp16')}, weights {qdq.weight_bytes(fp32) / 1024:.0f} → {qdq.weight_bytes(fp16) / 1024:.0f} KiB, "
    f"{speed('fp16')}; int8 (KL, TensorRT placement) {acc_line('int8 KL, TensorRT placement')}, "
    f"{speed('int8 KL, TensorRT placement')}; int8 with conv outputs quantised (`QLinearConv`) "
    f"{acc_line('int8 KL, + conv outputs')}, {speed('int8 KL, + conv outputs')}; keeping ReLU's zero spike in the "
    f"KL histogram: {acc_line('int8 KL, zero spike kept')}.",
    f"* **TensorRT 11**: {'ran (section 7)' if ok else 'skipped here: ' + why}.",
    f"* Measured on: {machine.describe('cpu')}.",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | inference engine | 推理引擎 | the optimised, immutable form of a network for one device (`ICudaEngine`, an ORT session) |
# | execution context | 执行上下文 | per-inference state (shapes, buffers) created from an engine |
# | serialise / deserialise | 序列化 / 反序列化 | write the engine to bytes / a file, and read it back |
# | parser | 解析器 | reads ONNX into the builder's network definition |
# | layer fusion | 层融合 / 算子融合 | several ops run as one kernel (Conv+BN+ReLU) |
# | BatchNorm folding | BN 折叠 | merging BN's affine map into the previous conv's weights |
# | concat elimination | concat 层消除 | branches write straight into the concatenated buffer |
# | constant folding | 常量折叠 | computing input-independent subgraphs once, at build time |
# | kernel auto-tuning / tactic | 内核自动调优 / 策略 | timing candidate implementations and keeping the fastest |
# | strongly typed network | 强类型网络 | precision of every tensor is set by the model file, not by builder flags |
# | Q/DQ (QuantizeLinear / DequantizeLinear) | 量化 / 反量化节点 | explicit int8 conversion points in the graph |
# | calibration | 校准 | choosing quantisation ranges from sample data |
# | latency / throughput | 延迟 / 吞吐量 | time per call / images per second |
#
# **Next:** this is the last lesson. Back to [00 · How to use this workbook](00_how_to_use_this_workbook.ipynb).
