# %% [markdown]
# # 10 · Aggressive quantisation: k-means, binary, log2 and INT4
#
# **After this lesson you can** compress a CNN's weights to 1–4 bits with k-means weight sharing,
# binarisation and power-of-two (log2) levels, compute the real storage saving, measure what each costs in
# accuracy without retraining, and recover much of that loss with a short fake-quantised retraining.
#
# **Goals**
# 1. k-means weight sharing (document 001): indices + codebook, the "2 bits → 16×" claim checked with the codebook counted.
# 2. Binary weights with a per-channel scale (XNOR-Net), and why accuracy collapses without retraining.
# 3. log2 quantisation: a multiply by $2^k$ is a shift — checked exactly.
# 4. INT8 vs INT4 vs k-means vs log2 vs binary on the same model, and document 003's "aggressive needs retraining".
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 20 s (`FAST=True`: about 15 s).

# %% tags=["parameters"]
FAST = False          # fewer test images, bit widths and retraining epochs
SEED = 0              # every random draw follows this seed
DEVICE = "auto"       # unused here (CPU lesson); kept for the common parameter set
N_TEST = 800          # shapes test images per accuracy
KMEANS_BITS = [1, 2, 3, 4, 8]   # codebook sizes 2^bits for the accuracy sweep
RETRAIN_BITS = 2      # weight bits for the short retraining (section 5)
RETRAIN_EPOCHS = 3    # epochs of fake-quantised retraining on the digits set

# %%
import torch
from sklearn.cluster import KMeans
from torch import nn

from lessons_lib import checkpoints, data, machine, seed_everything, train
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.fold import fold_model
from lessons_lib.course.exercises import lesson10 as ex
from lessons_lib.course.plotting import bar, histogram, lines, use_house_style
from lessons_lib.quant import binarize, binarize_reconstruct, kmeans_quantize, log2_quantize
from lessons_lib.quant import lowbit, qat
from lessons_lib.course.widgets import dropdown, int_slider, interactive_panel

seed_everything(SEED)
use_house_style()
if FAST:
    N_TEST, KMEANS_BITS, RETRAIN_EPOCHS = 400, [1, 2, 4], 1
print("measurements below come from:", machine.describe("cpu"))

# %% [markdown]
# The model: the shapes teacher (six 3×3 convs, ~96 % test accuracy) with BatchNorm folded into the
# convolutions, as an inference engine stores it; we quantise the weights of the six convolutions and
# keep the small classifier in float (weight-only quantisation: activations stay float32 in this lesson).

# %%
teacher = fold_model(checkpoints.pretrained("shapes_teacher"))
splits = data.shapes_splits()
Xte, yte = train.tensors(splits.test)
test = (Xte[:N_TEST], yte[:N_TEST])
convs = [(n, m) for n, m in teacher.named_modules() if isinstance(m, nn.Conv2d)]
acc_fp32 = train.evaluate(teacher, test)["acc"]


def acc(model):
    return train.evaluate(model, test)["acc"]


# %% [markdown]
# ## 1 · k-means weight sharing
#
# **Claim.** Document 001 describes clustering as a form of fake quantisation: group weights of similar
# value, replace each by its cluster's mean, store only the cluster index per weight and a small table of
# the means; with 4 clusters an index needs 2 bits, which the document counts as 16× compression.
#
# **Formula.** Lloyd's algorithm minimises $\sum_i\sum_{w\in c_i}(w-\mu_i)^2$ over $k = 2^{\text{bits}}$ centroids
# $\mu_i$, started evenly spaced between the layer's min and max (Han et al.'s best initialisation). Storage for
# $n$ float32 weights: $n\cdot 32$ bits before, $n\cdot\text{bits} + k\cdot 32$ after, so
# $$r = \frac{32\,n}{n\cdot \text{bits} + 2^{\text{bits}}\cdot 32} \;\xrightarrow{n\to\infty}\; \frac{32}{\text{bits}} .$$

# %%
show_source(kmeans_quantize)

# %%
# NBVAL_CHECK_OUTPUT
W = torch.tensor([[2.09, -0.98, 1.48, 0.09], [0.05, -0.14, -1.08, 2.12],
                  [-0.91, 1.92, 0.00, -1.03], [1.87, 0.00, 1.53, 1.49]])  # Han et al.'s 4x4 example
idx, codebook = kmeans_quantize(W, 2)
print("indices (2 bits each):\n", idx)
print("codebook:", [round(c, 3) for c in codebook.tolist()])
print("reconstruction:\n", codebook[idx].numpy().round(2))
# trusted reference: scikit-learn's Lloyd k-means from the same initialisation, on a real conv layer
w = convs[1][1].weight.detach()
idx3, cb3 = kmeans_quantize(w, 3, iters=300)  # run both to convergence
ours = cb3[idx3]
init = torch.linspace(w.min().item(), w.max().item(), 8).double().reshape(-1, 1).numpy()
km = KMeans(8, init=init, n_init=1, algorithm="lloyd", tol=0, max_iter=300).fit(w.double().reshape(-1, 1).numpy())
_ = compare(f"3-bit k-means of {convs[3][0]} ({w.numel()} weights)", ours.flatten().double(),
            torch.from_numpy(km.cluster_centers_[km.labels_].ravel()), ref_name="sklearn KMeans", atol=1e-5)

# %%
show_source(lowbit.kmeans_compression)

# %%
# NBVAL_CHECK_OUTPUT
print(f"{'layer':<16} {'weights':>8} {'2-bit ratio':>12}")
for name, m in convs:
    print(f"{name:<16} {m.weight.numel():>8} {lowbit.kmeans_compression(m.weight.numel(), 2):>11.2f}x")
st = lowbit.weight_storage(teacher, 2, codebook=True)
print(f"all six convs: {st['float'] / 8 / 1024:.1f} KiB float32 -> {st['quantised'] / 8 / 1024:.1f} KiB "
      f"= {st['float'] / st['quantised']:.2f}x (indices alone: 16x; the codebooks cost the rest)")
print(f"a 432-weight layer (3x3, 3->16 channels): {lowbit.kmeans_compression(432, 2):.2f}x; "
      f"an 8-bit codebook on it: {lowbit.kmeans_compression(432, 8):.2f}x (it grows the layer)")

# %% [markdown]
# Document 001's 16× holds for the indices and, nearly, for big layers (15.99× for the 147k-weight conv);
# the codebook makes small layers compress less (14.9× for the 864-weight first conv), and for an 8-bit
# codebook on a small layer the table is larger than the savings. Now accuracy: every conv of the teacher
# k-means-quantised at each bit width, no retraining.

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies: float rounding can flip an image near a decision boundary between CPUs)
CACHE = {("kmeans", b): lowbit.quantize_weights(teacher, "kmeans", b) for b in KMEANS_BITS}  # reused below
km_acc = {b: acc(CACHE[("kmeans", b)]) for b in KMEANS_BITS}
print(f"shapes teacher, {N_TEST} test images, float32 {acc_fp32:.1%}, on", machine.describe("cpu"))
for b, a in km_acc.items():
    print(f"k-means {b} bit(s) ({2**b:>3} shared values per layer): {a:.1%}  ({100 * (a - acc_fp32):+.1f} points)")
ok_bits = min((b for b, a in km_acc.items() if acc_fp32 - a < 0.01), default=None)
print(f"\nverdict: {ok_bits} bits per weight keep accuracy within 1 point of float32" if ok_bits else
      "\nverdict: no bit width tried stays within 1 point")
lines(KMEANS_BITS, {"k-means (per layer)": [100 * km_acc[b] for b in KMEANS_BITS],
                    "float32": [100 * acc_fp32] * len(KMEANS_BITS)},
      xlabel="bits per weight (codebook of 2^bits values per layer)", ylabel="test accuracy (%)",
      title="Teacher with k-means-shared conv weights, no retraining");

# %% [markdown]
# ## 2 · Binary weights
#
# **Claim.** Document 001 lists binarisation, $Q_B(w) = \text{sign}(w)\in\{-1,+1\}$: 1 bit per weight, and a
# convolution becomes additions and subtractions. Alone, sign() throws away the weights' scale; XNOR-Net
# keeps one float per output channel, $W_c \approx \alpha_c\,\text{sign}(W_c)$ with
# $\alpha_c = \operatorname{mean}|W_c|$, the least-squares optimum for a fixed sign pattern.

# %%
show_source(binarize)

# %%
# NBVAL_CHECK_OUTPUT
signs, alpha = binarize(w)  # w: the weights of features.1.0 (above)
def binerr(a):
    return float(((binarize_reconstruct(signs, a) - w) ** 2).sum())
print("alpha = mean|W_c| minimises the error among alpha, 0.9*alpha, 1.1*alpha:",
      binerr(alpha) < min(binerr(0.9 * alpha), binerr(1.1 * alpha)))
print("values per output channel after binarisation:", int(binarize_reconstruct(signs, alpha)[0].unique().numel()))
rel = [float(((lowbit.quantize_tensor(m.weight, "binary", 1) - m.weight.detach()) ** 2).sum() / (m.weight.detach()**2).sum())
       for _, m in convs]
print("relative squared weight error per layer:", [round(r, 2) for r in rel])

# %% [markdown]
# A binary layer keeps only the sign pattern: its relative squared weight error is 27–37 % per layer (printed above),
# and the errors of six layers compound. The measurement in section 4 shows the result.

# %% [markdown]
# ## 3 · log2 quantisation: multiplications become shifts
#
# **Claim.** Document 001: logarithmic quantisation turns multiplication into addition. With weights
# $w = \pm 2^{e}$, the product with an integer activation $x$ is $x \cdot 2^{e}$: the exponents add
# (floating point: `ldexp`), and for integers it is a bit shift, $x \ll e$ (or $\gg$ for $e<0$) — no multiplier.
#
# **Formula.** $e = \text{round}(\log_2|w|)$ clipped to $[e_{\max} - L + 1,\ e_{\max}]$ with $L = 2^{\text{bits}-1}-1$
# levels (one bit is the sign, one code means 0); rounding in the log domain puts the boundary between
# $2^k$ and $2^{k+1}$ at $\sqrt2\cdot2^k$.

# %%
show_source(log2_quantize)
show_source(lowbit.shift_dot)

# %%
# NBVAL_CHECK_OUTPUT
g = torch.Generator().manual_seed(SEED)
q = torch.randint(-128, 128, (1000,), generator=g)
k = torch.randint(0, 8, (1000,), generator=g)
_ = compare("x * 2^k == x << k on 1000 int8 values", lowbit.shift_multiply(q, k), q * 2**k, ref_name="multiply")
_ = compare("ldexp(x, k) == x * 2^k (float: add k to the exponent)", torch.ldexp(q.float(), k.float()), q.float() * 2.0**k, ref_name="multiply")
print("boundary between 2^0 and 2^1:", log2_quantize(torch.tensor([1.41, 1.42, 2.0]), 4, max_exp=3).tolist())
x_int = torch.randint(-128, 128, (16, 64), generator=g)           # int8 activations
w_log = log2_quantize(torch.randn(64, generator=g) * 0.1, 5)      # 5-bit log2 weights
frac = int(-lowbit.log2_parts(w_log)[1].min())
_ = compare(f"dot product by shifts and adds ({frac} fraction bits) vs float matmul",
            lowbit.shift_dot(x_int, w_log, frac).double() / 2**frac, x_int.double() @ w_log.double(), ref_name="float")

# %% [markdown]
# ## 4 · INT8 vs INT4 vs k-means vs log2 vs binary on one model
#
# The same folded teacher, every conv's weights quantised post-training (linear INT is symmetric per output
# channel; k-means and log2 per layer; binary with a per-channel scale):

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies: see above)
variants = {"float32": (None, 32), "INT8": ("int", 8), "INT4": ("int", 4), "k-means 4 bit": ("kmeans", 4),
            "log2 4 bit": ("log2", 4), "INT3": ("int", 3), "INT2 (ternary)": ("int", 2), "k-means 2 bit": ("kmeans", 2),
            "binary": ("binary", 1)}
table = {}
for name, (method, bits) in variants.items():
    if method is not None and (method, bits) not in CACHE:
        CACHE[(method, bits)] = lowbit.quantize_weights(teacher, method, bits)
    table[name] = acc_fp32 if method is None else (km_acc[bits] if method == "kmeans" and bits in km_acc
                                                   else acc(CACHE[(method, bits)]))
print(f"shapes teacher, {N_TEST} test images, on", machine.describe("cpu"))
for name, a in table.items():
    print(f"{name:<15} {variants[name][1]:>2} bits  {a:6.1%}  ({100 * (a - acc_fp32):+5.1f} points)")
bar({k: 100 * v for k, v in table.items()}, ylabel="test accuracy (%)", annotate="{:.0f}",
    title="Post-training weight quantisation of the teacher (no retraining)");

# %% [markdown]
# ## 5 · Does aggressive quantisation need retraining from scratch?
#
# **Claim.** Document 003 splits quantisation into "conservative" (INT8 and above: post-training, or a
# little retraining) and "aggressive" (INT4 and below), for which it says retraining is of little use: the
# network must be trained from scratch, often with wider layers.
#
# **Test.** Take a trained model, quantise its weights to `RETRAIN_BITS` bits (linear, per channel), and
# retrain for a few epochs *with the weights fake-quantised* in every forward pass: the float weights keep
# learning, the forward pass only ever sees quantised ones (the straight-through estimator of lesson 11
# passes the gradient through the rounding). To fit the CPU budget this runs on the digits teacher
# (8×8 images, 1,078 training images) rather than the shapes teacher.

# %%
show_source(qat.WeightFakeQuant)

# %%
# NBVAL_IGNORE_OUTPUT  (training accuracies depend on the machine's float arithmetic)
dsplits = data.digits_splits()
digits = checkpoints.pretrained("digits_teacher")
d_fp32 = train.evaluate(digits, dsplits.test)["acc"]
retrain = {}
for bits in [RETRAIN_BITS]:
    qm = qat.prepare_qat(digits, w_bits=bits, a_bits=None)
    before = train.evaluate(qm, dsplits.test)["acc"]
    seed_everything(SEED)
    train.fit(qm, dsplits.train, epochs=RETRAIN_EPOCHS, lr=1e-3, batch_size=64, seed=SEED)
    retrain[bits] = (before, train.evaluate(qm, dsplits.test)["acc"])
print(f"digits teacher ({len(dsplits.test)} test images), float32 {d_fp32:.1%}, on", machine.describe("cpu"))
for bits, (before, after) in retrain.items():
    lost = d_fp32 - before
    recovered = (after - before) / lost if lost > 0.005 else float("nan")
    print(f"INT{bits} weights: post-training {before:.1%} -> after {RETRAIN_EPOCHS} epoch(s) of retraining {after:.1%}"
          + (f"  (recovered {recovered:.0%} of the {100 * lost:.1f}-point loss)" if lost > 0.005 else "  (nothing to recover)"))
b0, b1 = retrain[RETRAIN_BITS]
print(f"\nverdict: a short retraining from the trained weights {'recovers most' if (b1 - b0) > 0.5 * (d_fp32 - b0) else 'does not recover most'} "
      f"of the INT{RETRAIN_BITS} loss here")

# %% [markdown]
# > **Erratum (document 003).** "Retraining is of little use for INT4 and below; train from scratch" does not
# > hold for our models: at 2-bit (ternary) weights post-training accuracy collapses, yet a few epochs of
# > fake-quantised retraining starting from the trained float weights bring most of it back (numbers above).
# > The document's caution is fair for large models and for low-bit *activations* as well, where the
# > literature does add width or train longer; "must train from scratch" is too strong.

# %% [markdown]
# ## 6 · Try it: bits and method vs accuracy and the weight histogram
#
# Move **bits** (the first control) or pick a method. The panel quantises all six convs of the teacher,
# prints the accuracy on 500 test images and the mean relative weight error, and plots the histogram of one
# layer's float weights with the quantised values (the codebook) as vertical lines.

# %%
small = (Xte[:500], yte[:500])
layer_name, layer = convs[4]


def quantize_panel(bits=2, method="kmeans"):
    if method == "binary":
        bits_used = 1
    elif method in ("int", "log2") and bits < 2:
        print(f"bits = {bits}: {method} needs at least 2 bits (one is the sign); showing 2 bits")
        bits_used = 2
    else:
        bits_used = bits
    if (method, bits_used) not in CACHE:
        CACHE[(method, bits_used)] = lowbit.quantize_weights(teacher, method, bits_used)
    qm = CACHE[(method, bits_used)]
    a = train.evaluate(qm, small)["acc"]
    errs = [float(((qm.get_submodule(n).weight.detach() - m.weight.detach()) ** 2).sum() / (m.weight.detach() ** 2).sum())
            for n, m in convs]
    qw = qm.get_submodule(layer_name).weight.detach()
    levels = torch.unique(qw[0]) if method in ("int", "binary") else torch.unique(qw)
    print(f"bits = {bits}, method = {method}: accuracy {a:.1%} (float32 {acc_fp32:.1%}), "
          f"mean relative weight error {sum(errs) / len(errs):.3f}, {levels.numel()} values in {layer_name}"
          + (" (output channel 0)" if method in ("int", "binary") else ""))
    ax = histogram(layer.weight.detach(), bins=120, title=f"{layer_name}: {method}, bits = {bits}, accuracy {a:.1%}",
                   xlabel="weight value")
    ax.vlines(levels.numpy(), 0, ax.get_ylim()[1], colors="C1", lw=0.8, alpha=0.7)


interactive_panel(quantize_panel, bits=int_slider("bits", 2, 1, 8),
                  method=dropdown("method", ["kmeans", "int", "log2", "binary"], "kmeans"))

# %% [markdown]
# ## 7 · Exercises
#
# **7.1** The teacher's last conv has 128·128·3·3 float32 weights. What is its storage ratio with 4-bit
# k-means weight sharing, codebook included?

# %%
answer = ...  # a number, e.g. 8.0
ex.kmeans_ratio.check(answer)

# %% [markdown]
# **7.2** At most how many distinct values can one output channel of a symmetric per-channel INT4 weight have?

# %%
answer = ...  # an int
ex.int4_levels.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
# Reference answers: ex.kmeans_ratio.solution(), ex.int4_levels.solution()
ex.kmeans_ratio.check(ex.kmeans_ratio.solution())
ex.int4_levels.check(ex.int4_levels.solution())
ex.int4_levels.check(16)

# %% [markdown]
# ## Summary
# * k-means weight sharing matches scikit-learn's Lloyd k-means from the same initialisation; with the
#   codebook counted, 2-bit sharing compresses the teacher's convs 15.98× (14.9× for the 864-weight first
#   layer), so document 001's 16× is the large-layer limit.
# * Without retraining, k-means keeps the teacher within a point of float32 from about 4 bits per weight
#   and falls apart at 1–2 bits (sweep above); INT8 costs about 0.1 point, INT4 about 1.5 points, log2 at 4 bits about 2.
# * Binary weights (per-channel scale, the least-squares optimum — checked) have a 27–37 % relative squared weight
#   error per layer, and the teacher drops to near chance without retraining.
# * log2 weights turn multiplication into shifts: `x << k` equals `x * 2**k`, and a shift-and-add dot product
#   equals the float dot product exactly when enough fraction bits are kept (checked).
# * Document 003 says INT4-and-below must be trained from scratch; here a few epochs of fake-quantised
#   retraining from the trained weights recover most of the INT2 loss on the digits teacher (**erratum**).
#
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | aggressive quantisation | 激进量化 | INT4 and below (document 003) |
# | conservative quantisation | 保守量化 | INT8 and above (document 003) |
# | weight sharing | 权值共享 | many weights store one index into a shared table |
# | k-means clustering | k均值聚类 | Lloyd's algorithm: assign to the nearest centroid, move centroids to means |
# | codebook | 码本 | the table of 2^bits shared values of a layer |
# | binarisation | 二值化 | weights in {−α, +α}: 1 bit each |
# | ternary weights | 三值权重 | weights in {−S, 0, +S} (symmetric 2-bit) |
# | logarithmic quantisation | 对数量化 | values rounded to signed powers of two |
# | bit shift | 移位 | multiply or divide an integer by 2^k |
# | compression ratio | 压缩比 | float storage / quantised storage |
# | fine-tuning / retraining | 微调 / 重训练 | continuing training from trained weights |
#
# **Next:** [11 · QAT and real int8 inference](11_qat_int8_inference.ipynb).
