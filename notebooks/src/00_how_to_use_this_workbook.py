# %% [markdown]
# # 00 · How to use this workbook — and why FLOPs alone do not tell speed
#
# **After this lesson you can** run any lesson interactively or headless, read the library code a
# lesson uses, check your exercise answers, and turn a model's MAC count into a best-case time on
# document 001's cloud and edge devices — then see, measured on this machine, why that estimate misleads.
#
# **Goals**
# 1. Know the parts of a lesson: the `parameters` cell, `show_source`, widgets, exercises with checkers.
# 2. Find your way around the course map (which lesson covers which document).
# 3. Estimate time per image from MACs and a throughput figure (document 001's RTX 3080 / RTX 2080 Ti / Raspberry Pi
#    4B table) — and see that the table mixes two kinds of number.
# 4. Measure real latency here and compare: achieved GFLOPS differ between models with different MAC counts.
# 5. Measure this machine's own roofline (peak of a large matrix multiplication, bandwidth of a large copy) and
#    place the lesson's layers on it: which are memory-bound, and how much of each model's time that explains.
# 6. Follow the workbook's conventions: verdicts with their uncertainty, and summaries computed from the run.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 20–30 s with other jobs sharing the CPU (`FAST=True` shrinks the timing rounds and sizes).

# %% tags=["parameters"]
# Parameters: papermill overrides these (e.g. `papermill ... -p FAST True`).
FAST = False          # fewer timing repeats: for CI and quick checks
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU
RESOLUTION = 224      # input height and width for the torchvision models

# %%
import torch
import torchvision
from IPython.display import Markdown, display

import matplotlib.pyplot as plt

from lessons_lib import course, devices, machine, profile, roofline, seed_everything, stats
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson00 as ex
from lessons_lib.course.plotting import bar, grouped_bar, use_house_style
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
REPEATS = 10 if FAST else 20         # interleaved timing rounds at most (>= 10 for a paired interval) ...
TIMING_BUDGET_S = 3.0 if FAST else 6.0  # ... and at most this long (a slow or loaded machine gets fewer rounds)
ROOF_BUDGET_S = 0.5 if FAST else 1.0  # seconds for each roofline measurement (the matmul, the copy)
print("measurements below come from:", machine.describe(dev))

# %% [markdown]
# ## 1 · How a lesson works
#
# Every lesson has the same arc: a **claim** from one of the five source documents (paraphrased, cited
# by number), the **formula**, the **library code** that computes it (shown, never retyped), a small
# **worked example**, a **check** against a trusted implementation (torch, torchvision, onnxruntime,
# fvcore), a **measurement** on the machine you run it on, a **figure**, a **widget** and an
# **exercise** with an automatic checker. It ends with a summary of what was checked and a glossary.
#
# * **Parameters.** The cell tagged `parameters` (above) holds plain assignments. Change them and re-run,
#   or override them headless: `papermill notebooks/00_how_to_use_this_workbook.ipynb out.ipynb -p FAST True`.
#   `make run` executes every lesson this way and writes `build/report.md`.
# * **Library code.** All logic lives in `lessons_lib`; a lesson shows it with `show_source`. For example,
#   the function this lesson uses to turn MACs into time:

# %%
show_source(devices.estimate_ms)

# %% [markdown]
# * **Checks.** `compare` prints one verdict line — ours, the reference, and whether they match.
#   Cells whose output is a verified fact start with `# NBVAL_CHECK_OUTPUT`: the test suite re-runs the
#   notebook and fails if such an output changes, on any machine. Timings, and anything else that depends on
#   the machine, start with `# NBVAL_IGNORE_OUTPUT  (why)`.
# * **Verdicts carry their uncertainty.** Timings are interleaved rounds (`profile.measure_side_by_side`),
#   and "A is faster than B" is said only when a paired interval over the rounds excludes zero
#   (`stats.verdict`); otherwise the lesson says "cannot tell apart at this budget".
# * **Conclusions are computed.** Every measured number in a sentence — a "Read it" paragraph, an Erratum, a
#   Note, the Summary — is rendered by a code cell from this run's variables (`display(Markdown(f"..."))`), so
#   the text cannot drift from the outputs above it. Markdown cells hold only the claims of the documents, the
#   formulas and the method. Section 4 below is the worked example.
# * **Exercises.** Each has a scaffold (`answer = ...`) and a checker that prints ✔ or ✘ with a hint; it
#   never raises, so you can try again. `ex.NAME.solution()` reveals the reference answer.
# * **Widgets.** The first control of each panel (marked with the CSS class `lesson-primary`) drives the
#   output under it; in a headless run the panel's function still runs once with the initial values.

# %% [markdown]
# ## 2 · The course map
# Sixteen lessons cover the five source documents (000–004, listed with their titles in the README).
# "ready" lessons are notebooks in this folder; the others are planned.

# %%
# NBVAL_IGNORE_OUTPUT  (the ready / planned column changes as lessons land)
display(Markdown(course.course_map()))
print(f"{len(course.available())} of {len(course.LESSONS)} lessons are ready")

# %% [markdown]
# ## 3 · Cloud vs edge: document 001's compute table
#
# **Claim.** Document 001 motivates model compression with the gap between cloud GPUs and edge devices:
# an RTX 3080 reaches 29117 GFLOPS and an RTX 2080 Ti 16626 GFLOPS, while a Raspberry Pi 4B reaches
# 13.5 GFLOPS — over two thousand times less — with only a few GB of memory.
#
# **Formula.** A multiply-accumulate (MAC) is two floating-point operations, so a model needing
# $M$ MACs per image takes at least
# $$t_{\min} = \frac{2M}{P_{\text{peak}}}$$
# on a device of peak throughput $P_{\text{peak}}$ (FLOP/s). This is a *lower bound*: it assumes every
# arithmetic unit is busy all the time and that data arrives for free.

# %%
# NBVAL_CHECK_OUTPUT
for name, spec in devices.DOC001_DEVICES.items():
    print(f"{name:<16} {spec['kind']:<12} memory {spec['memory']:<9} listed {spec['gflops']:>8,.1f} GFLOPS")
ratio = devices.DOC001_DEVICES["RTX 3080"]["gflops"] / devices.DOC001_DEVICES["Raspberry Pi 4B"]["gflops"]
print(f"RTX 3080 / Raspberry Pi 4B, ratio of the listed figures: {ratio:,.0f}x (not a ratio of two peaks: see the Note)")

# %% [markdown]
# > **Note (document 001, section 1.1, its device table).** The table gives one "floating-point compute" figure
# > per device without saying how each was obtained. The two RTX figures are peak FP32 throughput of the
# > kind a spec sheet lists (shader cores × clock × 2 FLOPs per fused multiply-add): a rate no real program
# > exceeds. The Raspberry Pi 4B figure is not computed that way; it is a number of a different kind (a rate
# > reached by some program on the board, not the chip's theoretical peak). So the 2,157× above compares a
# > ceiling with an achievement and is not the gap between the devices' peaks; read the table as "orders of
# > magnitude apart", and compare like with like. This lesson does: in section 4 it *measures* this machine's
# > own ceilings and sets this machine's measured latencies against those, never against the document's
# > figures.

# %% [markdown]
# **Counting MACs.** `lessons_lib.profile.profile_model` runs a model once with hooks on every layer and
# counts multiply-accumulates of convolution and linear layers (the convention of fvcore and ptflops, and
# of torchvision's published "GFLOPS", which are really GMACs). We check it against torchvision's own
# published numbers, read from the weights' metadata (no download happens: only the metadata is read).

# %%
MODELS = {
    "resnet18": (torchvision.models.resnet18, torchvision.models.ResNet18_Weights.IMAGENET1K_V1),
    "mobilenet_v2": (torchvision.models.mobilenet_v2, torchvision.models.MobileNet_V2_Weights.IMAGENET1K_V1),
    "shufflenet_v2_x1_0": (torchvision.models.shufflenet_v2_x1_0, torchvision.models.ShuffleNet_V2_X1_0_Weights.IMAGENET1K_V1),
}
nets = {name: build(weights=None).eval() for name, (build, _) in MODELS.items()}
reports = {name: profile.profile_model(net, (1, 3, 224, 224)) for name, net in nets.items()}

# %%
# NBVAL_CHECK_OUTPUT
for name, (_, weights) in MODELS.items():
    r = reports[name]
    compare(f"{name} GMACs at 224x224", round(r.total_macs / 1e9, 3), weights.meta["_ops"], ref_name="torchvision",
            show_values=True)  # an integer count rounded as torchvision publishes it: the same on every CPU
    compare(f"{name} parameters", r.total_params, weights.meta["num_params"], ref_name="torchvision")

# %% [markdown]
# **Worked example.** resnet18 needs 1.814 G MACs per 224×224 image (torchvision's count, checked above), so
# at best 2 × 1.814e9 / 29117e9 s ≈ 0.125 ms on an RTX 3080; at the Raspberry Pi 4B's listed figure,
# 2 × 1.814e9 / 13.5e9 s ≈ 269 ms (an estimate at that figure, not a bound: see the Note).

# %%
# NBVAL_CHECK_OUTPUT
for name, r in reports.items():
    est = {d: devices.estimate_ms(r.total_macs, d) for d in devices.DOC001_DEVICES}
    print(f"{name:<20} " + "  ".join(f"{d}: {ms:8.3f} ms" for d, ms in est.items()))

# %% [markdown]
# ## 4 · Measured on this machine: FLOPs mispredict speed
#
# **Hypothesis.** If time followed MACs, every model would reach the same *achieved* throughput
# $2M / t$ (GFLOPS). ShuffleNet v2 (cited in document 001, section 2.1.7) argues it does not: models built from
# depthwise and shuffle operations move more bytes per FLOP, so they should reach less.
#
# **Method.** The three models run batch 1 in interleaved rounds (`profile.measure_side_by_side`: round $i$
# runs each model once, so load changes hit all three alike). Per round, each model's achieved GFLOPS is
# $2M / t_i$; the verdict compares two models' achieved GFLOPS over the paired rounds with `stats.verdict`.

# %%
show_source(stats.verdict)

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
x = torch.randn(1, 3, RESOLUTION, RESOLUTION, device=dev)
nets = {name: net.to(dev) for name, net in nets.items()}
reports_here = {name: profile.profile_model(net, (1, 3, RESOLUTION, RESOLUTION), device=dev) for name, net in nets.items()}
macs_here = {name: r.total_macs for name, r in reports_here.items()}
lat = profile.measure_side_by_side(nets, x, warmup=1, repeats=REPEATS, budget_s=TIMING_BUDGET_S)
ROUNDS = lat["resnet18"].repeats  # what the budget allowed
gf_rounds = {n: [2 * macs_here[n] / (t * 1e-3) / 1e9 for t in lat[n].times_ms] for n in nets}
print("measured on:", machine.describe(dev), f"| batch 1, {RESOLUTION}x{RESOLUTION}, {ROUNDS} interleaved rounds "
      f"(at most {REPEATS}, within {TIMING_BUDGET_S:g} s)")
for name in nets:
    print(f"{name:<20} {macs_here[name] / 1e6:8.1f} M MACs  {lat[name].median_ms:7.2f} ms "
          f"(p10-p90 {lat[name].p10_ms:.2f}-{lat[name].p90_ms:.2f})  "
          f"achieved {devices.achieved_gflops(macs_here[name], lat[name].median_ms):6.1f} GFLOPS")
mac_ratio = macs_here["resnet18"] / macs_here["mobilenet_v2"]
time_ratio = lat["resnet18"].median_ms / lat["mobilenet_v2"].median_ms
assert ROUNDS >= 3, f"only {ROUNDS} timing rounds fitted in {TIMING_BUDGET_S} s: raise TIMING_BUDGET_S"
v_gf = {m: stats.verdict(gf_rounds["resnet18"], gf_rounds[m], names=("resnet18", m), paired=True, unit="GFLOPS")
        for m in ("mobilenet_v2", "shufflenet_v2_x1_0")}
print(f"\nresnet18 / mobilenet_v2: {mac_ratio:.1f}x the MACs, {time_ratio:.1f}x the time (medians)")
for v in v_gf.values():
    print("achieved GFLOPS,", v.text(1))

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
faster_per_flop = [m for m, v in v_gf.items() if v.better == "resnet18"]
display(Markdown(
    f"**Read it.** resnet18 needs {mac_ratio:.1f}× the MACs of mobilenet_v2 but took {time_ratio:.1f}× its time here. "
    + (f"resnet18 reached more GFLOPS than {' and '.join(faster_per_flop)} in paired rounds (intervals above), so "
       "MACs alone mispredict the time ratio on this machine." if faster_per_flop else
       "At this budget the achieved GFLOPS of resnet18 and of the lighter models cannot be told apart, so this "
       "run does not show MACs mispredicting speed; more rounds might, or not.")
    + " The roofline below asks why."))

# %% [markdown]
# ### The roofline of this machine
#
# **Model.** A layer that does $F$ FLOPs and moves $Q$ bytes (weights + input + output, each once) cannot take
# less than $\max(F / P,\ Q / B)$ on a machine of peak $P$ (FLOP/s) and memory bandwidth $B$ (B/s): its
# attainable throughput is $\min(P,\ I \cdot B)$ at arithmetic intensity $I = F / Q$ (Williams, Waterman and
# Patterson, *Roofline*, CACM 2009). Layers left of the **ridge** $I^* = P / B$ are **memory-bound**.
#
# **Method.** Both ceilings are measured here, not read from a spec sheet: $P$ as the GFLOPS of a large fp32
# matrix multiplication (the best-tuned kernel a framework has), $B$ as the bytes read and written per second by
# a large tensor copy. Each is sized to a time budget, so it prints the size it used.

# %%
show_source(roofline.attainable_gflops)
show_source(roofline.roofline_ms)

# %%
# NBVAL_IGNORE_OUTPUT  (measured ceilings of this machine)
peak = roofline.peak_gflops(budget_s=ROOF_BUDGET_S, device=dev)
bw = roofline.bandwidth_gbs(budget_s=ROOF_BUDGET_S, device=dev)
ridge = roofline.ridge_intensity(peak, bw)
print("measured on:", machine.describe(dev))
print(f"compute roof P: {peak.text()}")
print(f"memory roof  B: {bw.text()}")
print(f"ridge I* = P / B = {ridge:.1f} FLOP/B")


def layer_rows(report):
    """(FLOPs, bytes) of every layer call: conv / linear count 2 x MACs, the rest their element ops."""
    return [(2 * r.macs if r.macs else r.other_ops, r.mem_bytes) for r in report.rows]


bound_ms = {n: sum(roofline.roofline_ms(f, q, peak, bw) for f, q in layer_rows(reports_here[n])) for n in nets}
flops_only_ms = {n: 2 * macs_here[n] / (peak.value * 1e9) * 1e3 for n in nets}
n_convs = {n: sum(1 for r in reports_here[n].rows if r.macs) for n in nets}
mem_bound = {n: sum(roofline.bound(r.intensity, peak, bw) == "memory-bound" for r in reports_here[n].rows if r.macs)
             for n in nets}
print(f"\n{'model':<20} {'conv/linear':>11} {'memory-bound':>12} {'model FLOP/B':>12} "
      f"{'FLOPs/P ms':>10} {'roofline ms':>11} {'measured ms':>11}")
for n in nets:
    inten = 2 * macs_here[n] / reports_here[n].mem_bytes
    print(f"{n:<20} {n_convs[n]:>11} {mem_bound[n]:>12} {inten:>12.1f} {flops_only_ms[n]:>10.2f} "
          f"{bound_ms[n]:>11.2f} {lat[n].median_ms:>11.2f}")

# %%
# NBVAL_IGNORE_OUTPUT  (figure of the measurements above)
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11.5, 4))
grid = [10 ** (k / 20) for k in range(-40, 81)]
ax1.plot(grid, [roofline.attainable_gflops(i, peak, bw) for i in grid], color="black", lw=1.5,
         label="roofline (measured)")
ax1.axvline(ridge, color="grey", ls=":", lw=1)
for k, n in enumerate(nets):
    ints = [r.intensity for r in reports_here[n].rows if r.macs]
    ax1.scatter(ints, [roofline.attainable_gflops(i, peak, bw) for i in ints], s=10, alpha=0.5, color=f"C{k}",
                label=f"{n}: its layers (at their bound)")
    ax1.scatter([2 * macs_here[n] / reports_here[n].mem_bytes], [devices.achieved_gflops(macs_here[n], lat[n].median_ms)],
                marker="*", s=160, color=f"C{k}", edgecolor="black", label=f"{n}: whole model, measured")
ax1.set(xscale="log", yscale="log", xlabel="arithmetic intensity (FLOP/B)", ylabel="GFLOPS",
        title=f"Roofline here: P = {peak.value:.0f} GFLOPS, B = {bw.value:.1f} GB/s")
ax1.legend(fontsize=6.5, loc="lower right")
grouped_bar({"FLOPs / P (MACs alone)": flops_only_ms, "roofline bound (sum over layers)": bound_ms,
             "measured": {n: lat[n].median_ms for n in nets}},
            ax=ax2, ylabel="ms per image", title=f"Three predictions of one image's time ({RESOLUTION}x{RESOLUTION})")
fig.tight_layout()

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
share = {n: bound_ms[n] / lat[n].median_ms for n in nets}
flop_share = {n: flops_only_ms[n] / lat[n].median_ms for n in nets}
display(Markdown(
    f"**Read it.** With this machine's measured ceilings (P = {peak.value:.1f} GFLOPS, B = {bw.value:.1f} GB/s, "
    f"ridge {ridge:.1f} FLOP/B), the conv and linear layers left of the ridge (memory-bound) are: "
    + "; ".join(f"{n} {mem_bound[n]} of {n_convs[n]}" for n in nets)
    + ". FLOPs / P accounts for "
    + ", ".join(f"{flop_share[n]:.0%} of {n}'s measured time" for n in nets)
    + "; the roofline bound, which also charges every layer (BatchNorm, ReLU, shuffles included) its bytes at B, "
      "accounts for " + ", ".join(f"{share[n]:.0%} of {n}'s" for n in nets)
    + ". "
    + (f"Measured faster than its bound ({', '.join(above)}): then the measured 'peak' P is not a true ceiling "
       "for those layers (a convolution algorithm such as Winograd does fewer multiplies than the MAC count "
       "assumes, or the machine's load changed between the measurements), so read the bound as a rough "
       "guide there. " if (above := [n for n in nets if share[n] > 1]) else "")
    + "Where the measured time exceeds the bound, the rest is what neither ceiling counts: per-layer call "
      "overhead, cache effects, kernels slower than the best matmul. These are this machine's numbers only; "
      "document 001's device figures are of another kind (the Note in section 3) and are not mixed in."))

# %% [markdown]
# ## 5 · Try it: resolution and model vs device time
#
# Move the **resolution** slider (the panel's first control) or pick another model. The bars show the
# estimate $2M / \text{figure}$ at each of document 001's listed figures (a bound for the two GPUs, an
# estimate at the Pi's figure), and for this machine its roofline bound (from the ceilings measured above)
# next to the latency measured here, live.

# %%
def device_times(resolution=224, model="mobilenet_v2"):
    net = nets[model]
    report = profile.profile_model(net, (1, 3, resolution, resolution), device=dev)
    macs = report.total_macs
    here = profile.measure_latency(net, torch.randn(1, 3, resolution, resolution, device=dev), warmup=1, repeats=3)
    times = {f"{d} (doc 001 figure)": devices.estimate_ms(macs, d) for d in devices.DOC001_DEVICES}
    times["this machine (roofline bound)"] = sum(roofline.roofline_ms(f, q, peak, bw) for f, q in layer_rows(report))
    times["this machine (measured)"] = here.median_ms
    bar(times, log=True, ylabel="ms per image (log)", annotate="{:.3g}",
        title=f"{model} at {resolution}x{resolution}: {macs / 1e6:.0f} M MACs")
    plt.xticks(rotation=20, ha="right")
    print(f"{model} at {resolution}x{resolution}: {macs / 1e6:.1f} M MACs; roofline bound here "
          f"{times['this machine (roofline bound)']:.2f} ms, measured here {here.median_ms:.2f} ms")


interactive_panel(device_times,
                  resolution=int_slider("resolution", RESOLUTION, 64, 320, step=32),
                  model=dropdown("model", list(nets), "mobilenet_v2"))

# %% [markdown]
# ## 6 · Exercises
#
# **6.1** Using the formula above, what is the best-case time in **ms** for one 224×224 image through
# mobilenet_v2 (300.8 M MACs) on a Raspberry Pi 4B? Replace `...` with your number.

# %%
answer = ...  # your number, in ms
ex.pi_time.check(answer)

# %% [markdown]
# **6.2** By what factor is the RTX 3080's estimate faster than the Raspberry Pi 4B's for the same model?

# %%
answer = ...  # a number, e.g. 10.0 for "ten times faster"
ex.cloud_vs_edge.check(answer)

# %% [markdown]
# *Reference answers:* `ex.pi_time.solution()`, `ex.cloud_vs_edge.solution()`.

# %%
# NBVAL_CHECK_OUTPUT
# Checkers never raise: the reference answers pass, and a wrong type just prints a hint.
ex.pi_time.check(ex.pi_time.solution())
ex.cloud_vs_edge.check("about two thousand")

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (computed from this run)
display(Markdown("\n".join([
    "* Every lesson follows one arc (claim → formula → code → example → check → measurement → figure → widget → "
    "exercise); its parameters can be overridden headless with papermill, and `make run` runs all.",
    "* Our MAC counter agrees with torchvision's published numbers at 224×224 ("
    + ", ".join(f"{n} {reports[n].total_macs / 1e9:.3f} G" for n in MODELS)
    + " MACs) and with their parameter counts (checked above).",
    f"* Document 001's table lists an RTX 3080 at {ratio:,.0f}× the Raspberry Pi 4B's figure, but the two are "
    "different kinds of number (a spec-sheet peak vs a figure of another kind), so that ratio is not the gap "
    f"between peaks. At the listed figures mobilenet_v2 needs ≥ {devices.estimate_ms(reports['mobilenet_v2'].total_macs, 'RTX 3080'):.3f} ms "
    f"on the RTX 3080 and about {devices.estimate_ms(reports['mobilenet_v2'].total_macs, 'Raspberry Pi 4B'):.1f} ms on the Pi.",
    f"* Measured here ({machine.describe(dev)}, {ROUNDS} interleaved rounds): resnet18 has {mac_ratio:.1f}× the MACs "
    f"of mobilenet_v2 and took {time_ratio:.1f}× its time; achieved GFLOPS: "
    + "; ".join(v.text(1) for v in v_gf.values()) + ".",
    f"* This machine's measured roofline: P = {peak.value:.1f} GFLOPS ({peak.what}), B = {bw.value:.1f} GB/s "
    f"({bw.what}), ridge {ridge:.1f} FLOP/B. Memory-bound conv / linear layers: "
    + "; ".join(f"{n} {mem_bound[n]} of {n_convs[n]}" for n in nets)
    + ". The roofline bound accounts for " + ", ".join(f"{share[n]:.0%} of {n}'s measured time" for n in nets)
    + ", FLOPs / P alone for " + ", ".join(f"{flop_share[n]:.0%}" for n in nets) + ".",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | multiply-accumulate (MAC) | 乘加运算 | one multiply and one add; FLOPs ≈ 2 × MACs |
# | FLOPs / FLOPS | 浮点运算次数 / 每秒浮点运算次数 | operation count / throughput (per second) |
# | peak throughput | 峰值算力 | the most FLOP/s a device can do |
# | latency | 延迟 | time for one input (batch 1), median of repeated runs |
# | edge device | 端侧设备 | phone, Raspberry Pi, embedded board |
# | cloud GPU | 云端GPU | data-centre or desktop graphics card |
# | memory access cost (MAC) | 内存访问代价 | bytes moved; ShuffleNet v2's other "MAC" |
# | model compression / acceleration | 模型压缩 / 加速 | fewer parameters / less time |
#
# **Next:** [01 · Grouped, depthwise and separable convolution maths](01_grouped_depthwise_conv.ipynb).
