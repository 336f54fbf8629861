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
# 3. Estimate time per image from MACs and peak GFLOPS (document 001's RTX 3080 / RTX 2080 Ti / Raspberry Pi 4B table).
# 4. Measure real latency here and compare: achieved GFLOPS differ between models with different MAC counts.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 10 s (`FAST=True`: about 5 s).

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

from lessons_lib import course, devices, machine, profile, seed_everything
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson00 as ex
from lessons_lib.course.plotting import bar, grouped_bar, use_house_style
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
REPEATS = 5 if FAST else 20
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
#   notebook and fails if such an output changes. Timings start with `# NBVAL_IGNORE_OUTPUT`.
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
    print(f"{name:<16} {spec['kind']:<12} memory {spec['memory']:<9} peak {spec['gflops']:>8,.1f} GFLOPS")
ratio = devices.DOC001_DEVICES["RTX 3080"]["gflops"] / devices.DOC001_DEVICES["Raspberry Pi 4B"]["gflops"]
print(f"RTX 3080 / Raspberry Pi 4B peak ratio: {ratio:,.0f}x")

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
# **Worked example.** resnet18 needs 1.814 G MACs per 224×224 image, so at best
# 2 × 1.814e9 / 29117e9 s ≈ 0.125 ms on an RTX 3080 and 2 × 1.814e9 / 13.5e9 s ≈ 269 ms on a Raspberry Pi 4B.

# %%
# NBVAL_CHECK_OUTPUT
for name, r in reports.items():
    est = {d: devices.estimate_ms(r.total_macs, d) for d in devices.DOC001_DEVICES}
    print(f"{name:<20} " + "  ".join(f"{d}: {ms:8.3f} ms" for d, ms in est.items()))

# %% [markdown]
# ## 4 · Measured on this machine: FLOPs mispredict speed
#
# Now the real latency of each model here (batch 1, median of several runs). If time followed MACs,
# every model would reach the same *achieved* GFLOPS = 2M / t. It does not: depthwise and
# shuffle-heavy models move much more data per FLOP, so they reach a smaller fraction of the peak.

# %%
# NBVAL_IGNORE_OUTPUT  (timings depend on the machine and its load)
x = torch.randn(1, 3, RESOLUTION, RESOLUTION, device=dev)
lat = {name: profile.measure_latency(net.to(dev), x, warmup=2, repeats=REPEATS) for name, net in nets.items()}
macs_here = {name: profile.profile_model(net, (1, 3, RESOLUTION, RESOLUTION), device=dev).total_macs for name, net in nets.items()}
print("measured on:", machine.describe(dev))
for name in nets:
    print(f"{name:<20} {macs_here[name] / 1e6:8.1f} M MACs  {lat[name].median_ms:7.2f} ms "
          f"(p10-p90 {lat[name].p10_ms:.2f}-{lat[name].p90_ms:.2f})  "
          f"achieved {devices.achieved_gflops(macs_here[name], lat[name].median_ms):6.1f} GFLOPS")
mac_ratio = macs_here["resnet18"] / macs_here["mobilenet_v2"]
time_ratio = lat["resnet18"].median_ms / lat["mobilenet_v2"].median_ms
print(f"\nresnet18 / mobilenet_v2: {mac_ratio:.1f}x the MACs, but only {time_ratio:.1f}x the time here")

# %%
# NBVAL_IGNORE_OUTPUT  (figure of the timings above)
ax = grouped_bar(
    {"peak-bound estimate at this machine's best achieved GFLOPS":
         {n: devices.estimate_ms(macs_here[n], max(devices.achieved_gflops(macs_here[m], lat[m].median_ms) for m in nets)) for n in nets},
     "measured": {n: lat[n].median_ms for n in nets}},
    ylabel="ms per image", title=f"If speed followed MACs, the bars would pair up ({RESOLUTION}x{RESOLUTION}, batch 1)")

# %% [markdown]
# Read the figure: using the best throughput this machine reached on any of the three models, MACs
# alone predict the grey-blue bars; the red bars are what was measured. The model that reached that best
# throughput matches by construction; the others take longer than their MACs suggest. Lessons 01 and 05
# explain why (memory access cost, the ShuffleNet v2 guidelines).

# %% [markdown]
# ## 5 · Try it: resolution and model vs device time
#
# Move the **resolution** slider (the panel's first control) or pick another model. The bars show the
# peak-bound estimate on each of document 001's devices and the latency measured here, live.

# %%
def device_times(resolution=224, model="mobilenet_v2"):
    net = nets[model]
    macs = profile.profile_model(net, (1, 3, resolution, resolution)).total_macs
    here = profile.measure_latency(net, torch.randn(1, 3, resolution, resolution, device=dev), warmup=1, repeats=3)
    times = {d: devices.estimate_ms(macs, d) for d in devices.DOC001_DEVICES}
    times["this machine (measured)"] = here.median_ms
    bar(times, log=True, ylabel="ms per image (log)", annotate="{:.3g}",
        title=f"{model} at {resolution}x{resolution}: {macs / 1e6:.0f} M MACs")
    print(f"{model} at {resolution}x{resolution}: {macs / 1e6:.1f} M MACs; measured here {here.median_ms:.2f} ms")


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
# * Every lesson follows one arc (claim → formula → code → example → check → measurement → figure →
#   widget → exercise); its parameters can be overridden headless with papermill, and `make run` runs all.
# * Our MAC counter agrees with torchvision's published numbers: resnet18 1.814 G, mobilenet_v2 0.301 G,
#   shufflenet_v2_x1_0 0.145 G MACs at 224×224, and with their parameter counts (checked above).
# * Document 001's table puts an RTX 3080 about 2,157× above a Raspberry Pi 4B in peak throughput: the same
#   mobilenet_v2 needs ≥ 0.021 ms there and ≥ 44.6 ms on the Pi.
# * Measured here, resnet18 has about 6× the MACs of mobilenet_v2 but takes only a small multiple of its time
#   (the measured ratio is printed above): achieved GFLOPS differ per model, so MACs alone mispredict speed.
#
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
