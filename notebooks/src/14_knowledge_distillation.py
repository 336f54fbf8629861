# %% [markdown]
# # 14 · Knowledge distillation
#
# **After this lesson you can** soften a teacher's outputs with a temperature and read the "dark knowledge"
# they carry, explain (and measure) why the soft loss is multiplied by $T^2$, train a small student with
# response-, feature- and relation-based distillation, and tell from a measurement, with its uncertainty,
# whether distillation helped: with all labels, with few labels, and with the teacher labelling images it has
# never seen (document 004's data distillation).
#
# **Goals**
# 1. Softmax with temperature $T$, on the real teacher's outputs.
# 2. The $T^2$ factor: gradient magnitudes of the soft loss vs $T$, measured with and without it.
# 3. The standard experiment: a student on all the labelled digits, cross-entropy vs cross-entropy + KD.
# 4. Few labels: student alone vs KD, FitNet hints and RKD, over several seeds, with 100 labelled digits.
# 5. Data distillation: the teacher labels unlabelled images it never saw, the student learns from them.
#
# **Runtime** headless on a 2-core CPU, kernel start included: about 25 s (`FAST=True`: about 15 s).

# %% tags=["parameters"]
FAST = False          # fewer seeds and epochs
SEED = 0              # every random draw in the lesson follows this seed
DEVICE = "auto"       # "auto" -> CUDA when present, else CPU
N_LABELLED = 100      # labelled digits the student gets in the few-labels experiments
SEEDS = 3             # students trained per method
EPOCHS_FEW = 40       # epochs on the N_LABELLED images only
EPOCHS_ALL = 10       # epochs on the larger sets (all labelled images; labelled + unlabelled)
T_KD = 4.0            # distillation temperature
ALPHA = 0.9           # weight of the soft loss (1 - ALPHA on the labels)

# %%
import torch
import torch.nn.functional as F
from IPython.display import Markdown, display
from torch.utils.data import TensorDataset

from lessons_lib import checkpoints, data, distill, machine, models, seed_everything, stats, train
from lessons_lib.course import show_source
from lessons_lib.course.checks import compare
from lessons_lib.course.exercises import lesson14 as ex
from lessons_lib.course.plotting import bar, grouped_bar, lines, use_house_style
from lessons_lib.course.widgets import dropdown, float_slider, interactive_panel

seed_everything(SEED)
use_house_style()
dev = machine.resolve_device(DEVICE)
torch.set_num_threads(1)  # the digits models are tiny: a second thread costs more in synchronisation than it computes
if FAST:
    SEEDS, EPOCHS_FEW, EPOCHS_ALL = 2, 25, 5
splits = data.digits_splits()
# the teacher was trained on the labelled half of the training split only (checkpoints.RECIPES records it,
# tests/test_no_leakage.py proves the other half is unseen): that half is the *unlabelled* data below
lab_ds, unl_ds = data.labelled_split(splits.train, 0.5, seed=0)
teacher = checkpoints.pretrained("digits_teacher")
XL, yL = lab_ds.tensors
XU, yU = unl_ds.tensors        # yU is never used for training: only to measure pseudo-label quality
Xt, yt = splits.test.tensors
print(f"digits: {len(XL)} labelled training images (the teacher's), {len(XU)} unlabelled ones (never seen by "
      f"the teacher), {len(Xt)} test images")
print(checkpoints.RECIPES["digits_teacher"].description)
print("measurements below come from:", machine.describe(dev))

# %% [markdown]
# ## 1 · The claim and the formula
#
# **Claim.** Document 000 describes distillation as: train a teacher first, then train a student so that its
# outputs approach the teacher's as well as the true labels. Because a confident teacher puts almost all its
# probability on one class, the document softens the softmax with a temperature $T$: the larger $T$, the
# softer the distribution; it adds that larger $T$ generally gives higher accuracy (we test that in section
# 4). Document 002 calls this *response-based* distillation and adds *feature-based* (match intermediate
# features through an adapter) and *relation-based* (match distances and angles between samples, RKD).
#
# **Formula.** With logits $z$: $p_i^T = \exp(z_i/T) / \sum_j \exp(z_j/T)$. Hinton et al. train on
# $$L = (1-\alpha)\,\mathrm{CE}(z_s, y) + \alpha\, T^2\, \mathrm{KL}\!\left(p_t^T \,\middle\|\, p_s^T\right),$$
# where the KL is averaged over the batch and the teacher's side carries no gradient.

# %%
show_source(distill.softmax_t)
show_source(distill.kd_loss)

# %%
# NBVAL_CHECK_OUTPUT
s_, t_ = torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[3.0, 2.0, 1.0]])
print(f"worked example: student (1, 2, 3), teacher (3, 2, 1), T = 2 -> kd_loss = {distill.kd_loss(s_, t_, 2.0).item():.6f}")
g = torch.Generator().manual_seed(0)
zs, zt = torch.randn(32, 10, generator=g), 3 * torch.randn(32, 10, generator=g)
for T in (1.0, 4.0):
    ok = compare(f"kd_loss T={T:g}", distill.kd_loss(zs, zt, T).item(),
                 (F.kl_div(F.log_softmax(zs / T, 1), F.softmax(zt / T, 1), reduction="batchmean") * T * T).item(),
                 ref_name="torch kl_div(batchmean) * T^2", rtol=1e-5)

# %% [markdown]
# ## 2 · Dark knowledge in the real teacher's outputs
#
# Take the test image on which the teacher (its test accuracy is printed below) is *least* sure of its top
# class: at $T = 1$ almost all the mass is on one digit; as $T$ grows, the runner-up digits appear — the
# teacher's view of which digits this one resembles, information a one-hot label cannot carry.

# %%
# NBVAL_CHECK_OUTPUT
with torch.no_grad():
    test_logits = teacher(Xt)
print(f"teacher test accuracy: {float((test_logits.argmax(1) == yt).float().mean()):.3f}")
p1 = F.softmax(test_logits, 1)
top2 = p1.topk(2, dim=1)
order = torch.argsort(top2.values[:, 0] - top2.values[:, 1])   # smallest margin first
picks = {f"test #{int(i)} (label {int(yt[i])})": int(i) for i in order[:3]} | {f"test #{0} (label {int(yt[0])})": 0}
i0 = int(order[0])
for T in (1.0, 4.0, 10.0):
    p = distill.softmax_t(test_logits[i0:i0 + 1], T)[0]
    ent = float(-(p * p.log()).sum())
    print(f"T = {T:>4}: " + " ".join(f"{d}:{v:.2f}" for d, v in enumerate(p.tolist())) + f"  entropy {ent:.2f} nats")

# %%
def temperature_panel(T=1.0, image=next(iter(picks))):
    i = picks[image]
    p = distill.softmax_t(test_logits[i:i + 1], T)[0]
    ent = float(-(p * p.clamp_min(1e-30).log()).sum())
    fig_ax = bar({str(d): float(v) for d, v in enumerate(p)}, ylabel="probability", annotate="{:.2f}",
                 title=f"T = {T:.2f}: teacher's softened output for {image}")
    fig_ax.set_ylim(0, 1.05)
    second = int(p.argsort(descending=True)[1])
    print(f"T = {T:.2f}: top digit {int(p.argmax())} at {float(p.max()):.3f}, runner-up {second} at {float(p[second]):.3f}, "
          f"entropy {ent:.2f} nats (uniform: {torch.log(torch.tensor(10.0)):.2f})")


interactive_panel(temperature_panel, T=float_slider("T", 1.0, 0.5, 20.0, 0.5), image=dropdown("image", list(picks)))

# %% [markdown]
# ## 3 · Why multiply by $T^2$
#
# For one example the gradient of the KL term with respect to the student's logits is
# $$\frac{\partial}{\partial z_{s,i}} \mathrm{KL}(p_t^T \| p_s^T) = \frac{1}{T}\left(p^T_{s,i} - p^T_{t,i}\right).$$
# For large $T$, $p^T \approx \frac{1}{C}(1 + z/T)$ (logits of zero mean), so $p_s^T - p_t^T \approx (z_s - z_t)/(CT)$ and
# the gradient shrinks like $1/T^2$. Multiplying the loss by $T^2$ keeps the soft term's pull comparable
# across temperatures, so `ALPHA` need not be retuned when $T$ changes. We measure it with autograd on the
# teacher's logits for 64 test digits and a fresh student's logits.

# %%
# NBVAL_CHECK_OUTPUT
seed_everything(SEED)
with torch.no_grad():
    zs0 = models.StudentCNN(in_ch=1).eval()(Xt[:64])
zt0 = test_logits[:64]
TS = [1, 2, 4, 8, 16, 32]
norms = {"KL alone": [], "T^2 * KL (kd_loss)": []}
for T in TS:
    z = zs0.clone().requires_grad_(True)
    distill.kd_loss(z, zt0, T).backward()
    with_t2 = float(z.grad.norm())
    norms["T^2 * KL (kd_loss)"].append(with_t2)
    norms["KL alone"].append(with_t2 / T ** 2)
    if T == 4:
        closed = (distill.softmax_t(zs0, T) - distill.softmax_t(zt0, T)) * T / len(zs0)
        ok = compare("autograd gradient at T=4 vs T * (p_s - p_t) / N", z.grad, closed, ref_name="closed form", atol=1e-6)
for name, v in norms.items():
    print(f"{name:<20}" + "  ".join(f"T={T}: {g:.2e}" for T, g in zip(TS, v)))
print(f"T=32 vs T=8: KL alone shrinks {norms['KL alone'][-3] / norms['KL alone'][-1]:.1f}x (1/T^2 predicts 16x); "
      f"with T^2 the ratio is {norms['T^2 * KL (kd_loss)'][-3] / norms['T^2 * KL (kd_loss)'][-1]:.2f}")

# %%
# NBVAL_IGNORE_OUTPUT  (figure of the numbers above)
lines(TS, norms, logx=True, logy=True, xlabel="temperature T", ylabel="||d loss / d student logits||",
      title="The soft loss's gradient vanishes as 1/T^2 unless scaled by T^2");

# %% [markdown]
# ## 4 · Does distillation help? Three settings, each with its uncertainty
#
# The student is `StudentCNN(in_ch=1)` (its size and the teacher's are printed below). The teacher's logits
# and pooled embeddings are computed **once** (`teacher_outputs`), and `indexed_objective` builds each loss
# from table look-ups, so training never runs the teacher. Every method is trained with `SEEDS` seeds;
# seed $k$ gives every method the same initial student and batch order, so methods are compared **paired**
# over seeds (`stats.verdict(..., paired=True)`: Student's $t$ interval on the mean difference), and a
# difference whose interval contains 0 is reported as "cannot tell apart at this budget".
#
# * **all labels** (the standard experiment of Hinton et al.): the student sees every labelled image;
#   cross-entropy alone vs cross-entropy + KD ($\alpha$ = `ALPHA`, $T$ = `T_KD`).
# * **few labels only**: the student keeps `N_LABELLED` labels; every method sees just those images:
#   cross-entropy alone; KD (response); FitNet hint, $\lVert r(e_s) - e_t\rVert^2$ on the pooled embeddings
#   through a `HintAdapter` (feature); RKD distance + angle on the embeddings (relation).
# * **+ unlabelled**: the same `N_LABELLED` labels, and the teacher's signal also covers the unlabelled half
#   it never saw (cross-entropy only on the labelled rows): KD with soft targets, FitNet, RKD, and
#   **data distillation** — the teacher's hard pseudo-labels (its argmax) used as labels, as document 004
#   does for 100 k machine-labelled images.

# %%
show_source(distill.indexed_objective)

# %%
# NBVAL_CHECK_OUTPUT
Xs = torch.cat([XL[:N_LABELLED], XU])                        # the student's images in the few-label settings
labelled = torch.arange(len(Xs)) < N_LABELLED
hidden = torch.full((len(XU),), -1, dtype=torch.long)          # unlabelled rows carry no label at all
ys = torch.cat([yL[:N_LABELLED], hidden])
tables = {"few": distill.teacher_outputs(teacher, Xs), "all": distill.teacher_outputs(teacher, XL)}
pseudo = torch.where(labelled, ys, tables["few"][0].argmax(1))
print(f"labelled images per digit (few-label settings): {torch.bincount(yL[:N_LABELLED], minlength=10).tolist()}")
pseudo_acc = float((pseudo[~labelled] == yU).float().mean())
print(f"teacher pseudo-labels on the {len(XU)} unseen images agree with their hidden labels: "
      f"{pseudo_acc >= 0.95} (>= 95 %)")
print(f"parameters: teacher {sum(p.numel() for p in teacher.parameters()):,}, "
      f"student {sum(p.numel() for p in models.StudentCNN(in_ch=1).parameters()):,}")

# %%
def train_student(seed, setting, *, labels=None, T=T_KD, alpha=0.0, hint=0.0, rkd=False):
    """Test accuracy of a student trained in ``setting`` ("all labels", "few labels only", "+ unlabelled")."""
    seed_everything(seed)
    student = models.StudentCNN(in_ch=1)
    adapter = None
    if hint:
        student.hint = adapter = distill.HintAdapter(student.classifier.in_features, tables["few"][1].shape[1],
                                                     spatial=False)
    if setting == "all labels":
        (t_logits, t_emb), lab, mask, n, epochs = tables["all"], yL, None, len(XL), EPOCHS_ALL
    else:
        (t_logits, t_emb), n = tables["few"], len(Xs) if setting == "+ unlabelled" else N_LABELLED
        lab = ys if labels is None else labels
        mask, epochs = (None if labels is not None else labelled), (EPOCHS_ALL if n > N_LABELLED else EPOCHS_FEW)
    loss_fn = distill.indexed_objective(lab, labelled=mask, teacher_logits=t_logits, teacher_emb=t_emb, T=T,
                                        alpha=alpha, hint=hint, rkd_d=1.0 if rkd else 0.0,
                                        rkd_a=2.0 if rkd else 0.0, adapter=adapter)
    images = XL if setting == "all labels" else Xs
    train.fit(student, TensorDataset(images[:n], torch.arange(n)), epochs=epochs, lr=1e-2, batch_size=64,
              loss_fn=loss_fn, device=dev, seed=seed)
    return train.evaluate(student, splits.test, device=dev)["acc"]


METHODS = {
    "all labels": {"cross-entropy": {}, "KD": {"alpha": ALPHA}},
    "few labels only": {"cross-entropy": {}, "KD": {"alpha": ALPHA}, "FitNet hint": {"hint": 1.0},
                        "RKD": {"rkd": True}},
    "+ unlabelled": {"KD": {"alpha": ALPHA}, "FitNet hint": {"hint": 1.0}, "RKD": {"rkd": True},
                     "data distillation": {"labels": pseudo}},
}

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies of training runs)
results = {setting: {name: [train_student(SEED + k, setting, **kw) for k in range(SEEDS)]
                     for name, kw in methods.items()} for setting, methods in METHODS.items()}
teacher_acc = train.evaluate(teacher, splits.test)["acc"]
print("measured on:", machine.describe(dev), f"| {SEEDS} seeds per method")
for setting, res in results.items():
    for name, accs in res.items():
        print(f"{setting:<16} {name:<18} test accuracy {sum(accs) / len(accs):.3f}  "
              f"(seeds: {', '.join(f'{a:.3f}' for a in accs)})")
print(f"teacher: {teacher_acc:.3f}")
base = {"all labels": results["all labels"]["cross-entropy"], "few": results["few labels only"]["cross-entropy"]}
vs = {}  # (setting, method) -> verdict against cross-entropy with the same labels
for setting, res in results.items():
    ref = base["all labels"] if setting == "all labels" else base["few"]
    for name, accs in res.items():
        if accs is not ref:
            vs[setting, name] = stats.verdict(accs, ref, names=(name, "cross-entropy"), paired=True)
            print(f"{setting:<16} {vs[setting, name].text(3)}")
mean = lambda v: sum(v) / len(v)  # noqa: E731
grouped_bar({s: {k: mean(v) for k, v in r.items()} for s, r in results.items()}, ylabel="test accuracy (mean over seeds)",
            title=f"Student: all {len(XL)} labels, or {N_LABELLED} labels (+ {len(XU)} unlabelled)");

# %%
# NBVAL_IGNORE_OUTPUT  (the reading of this run's numbers)
def said(setting, name):
    v = vs[setting, name]
    word = {name: "better than cross-entropy", "cross-entropy": "worse than cross-entropy"}.get(v.better, v.verdict)
    return f"**{word}** ({v.diff:+.3f}, 95 % CI {v.lo:+.3f} to {v.hi:+.3f})"


display(Markdown(
    f"Read it (computed from the runs above, {SEEDS} seeds each): with **all labels**, KD vs cross-entropy: "
    f"{said('all labels', 'KD')}. With **{N_LABELLED} labels only**: KD {said('few labels only', 'KD')}, "
    f"FitNet {said('few labels only', 'FitNet hint')}, RKD {said('few labels only', 'RKD')}. With the teacher's "
    f"signal on the **{len(XU)} unseen images** as well: KD {said('+ unlabelled', 'KD')}, data distillation "
    f"{said('+ unlabelled', 'data distillation')}, FitNet {said('+ unlabelled', 'FitNet hint')}, RKD "
    f"{said('+ unlabelled', 'RKD')}. The teacher's pseudo-labels on those images were "
    f"{100 * pseudo_acc:.1f} % right and the teacher itself scores {teacher_acc:.3f} on the test set: a student "
    f"trained on its outputs can approach that level, not exceed what those labels carry. Where a verdict "
    f"says *cannot tell apart*, more seeds (the `SEEDS` parameter) are what would decide it."))

# %% [markdown]
# **Document 000's "a larger $T$ usually gives higher accuracy".** Test it in the setting where soft targets
# are all the student gets: + unlabelled, pure soft targets ($\alpha = 1$, no labels at all), three
# temperatures, the same seeds for each.

# %%
# NBVAL_IGNORE_OUTPUT  (accuracies of training runs)
T_SWEEP = [1.0, 4.0, 16.0]
sweep = {f"T={T:g}": [train_student(SEED + k, "+ unlabelled", T=T, alpha=1.0) for k in range(SEEDS)] for T in T_SWEEP}
for name, accs in sweep.items():
    print(f"{name:>6}: test accuracy {mean(accs):.3f}  (seeds: {', '.join(f'{a:.3f}' for a in accs)})")
best_T, tied_T = stats.best_of(sweep, paired=True)
print(f"best mean: {best_T}; cannot be told apart from it at this budget: {tied_T or 'none'}")
largest = f"T={T_SWEEP[-1]:g}"
display(Markdown(
    f"> **Note (document 000).** The document says a larger $T$ generally improves accuracy. Here the best mean "
    f"came at {best_T}" + (f", and {', '.join(tied_T)} cannot be told apart from it with {SEEDS} seeds"
                            if tied_T else f", clearly ahead of the others with {SEEDS} seeds")
    + f"; the largest temperature ({largest}) was "
    + (("the best mean" + (", though not by a margin this budget can resolve." if tied_T else ".")) if best_T == largest
       else "tied with the best." if largest in tied_T else "clearly worse than the best.")
    + " One small experiment cannot settle a general rule either way: Hinton et al. found intermediate "
    "temperatures best for small students, and a very large $T$ flattens the targets towards uniform "
    "(entropy → ln 10 = 2.30 nats, section 2), where they carry little information per image."))

# %% [markdown]
# ## 5 · Exercises
#
# **5.1** Logits (4, 1, 0) at $T = 2$: what probability does the second class get?

# %%
answer = ...  # a number in [0, 1]
ex.soft_probability.check(answer)

# %% [markdown]
# **5.2** Student logits (1, 2, 3), teacher logits (3, 2, 1), $T = 2$: what is `kd_loss`?

# %%
answer = ...  # a number
ex.kd_value.check(answer)

# %%
# NBVAL_CHECK_OUTPUT
# the reference answers, checked against the library
ok = compare("14.soft_probability vs softmax_t", ex.soft_probability.solution(),
             distill.softmax_t(torch.tensor([[4.0, 1.0, 0.0]]), 2.0)[0, 1].item(), ref_name="distill", rtol=1e-5)
ok = compare("14.kd_value vs kd_loss", ex.kd_value.solution(), distill.kd_loss(s_, t_, 2.0).item(), rtol=1e-5,
             ref_name="distill")

# %% [markdown]
# ## Summary

# %%
# NBVAL_IGNORE_OUTPUT  (the summary is computed from this run's variables)
ratio_kl = norms['KL alone'][-3] / norms['KL alone'][-1]
ratio_t2 = norms['T^2 * KL (kd_loss)'][-3] / norms['T^2 * KL (kd_loss)'][-1]
display(Markdown("\n".join([
    f"* `kd_loss` equals `F.kl_div(..., reduction=\"batchmean\")` × $T^2$ (checked in section 1).",
    f"* Dark knowledge: on the teacher's least-sure test digit the softened output's entropy grows with $T$ "
    f"(section 2, uniform = ln 10 = 2.30 nats).",
    f"* The gradient of the KL term alone fell {ratio_kl:.1f}× from $T=8$ to $T=32$ (a $1/T^2$ law predicts 16×); "
    f"with the $T^2$ factor it changed {ratio_t2:.2f}× (section 3, checked against the closed form).",
    f"* All labels ({len(XL)} images): KD vs cross-entropy {said('all labels', 'KD')}.",
    f"* {N_LABELLED} labels: KD {said('few labels only', 'KD')}; + the {len(XU)} images the teacher never saw: "
    f"KD {said('+ unlabelled', 'KD')}, data distillation {said('+ unlabelled', 'data distillation')} "
    f"(pseudo-labels {100 * pseudo_acc:.1f} % right; teacher {teacher_acc:.3f}).",
    f"* Temperature: best mean at {best_T}; tied with it at this budget: {', '.join(tied_T) or 'none'}.",
    f"* Measured on: {machine.describe(dev)}.",
])))

# %% [markdown]
# ## Glossary
# | English | 中文 | meaning here |
# | --- | --- | --- |
# | knowledge distillation | 知识蒸馏 | train a small student on a large teacher's outputs |
# | teacher / student | 教师模型 / 学生模型 | the large trained model / the small one being trained |
# | temperature | 温度 (蒸馏温度) | $T$ in $\mathrm{softmax}(z/T)$; larger is softer |
# | soft targets / soft labels | 软目标 / 软标签 | the teacher's softened probabilities |
# | dark knowledge | 暗知识 | information in the small probabilities of wrong classes |
# | KL divergence | KL散度 | $\sum p_t (\log p_t - \log p_s)$ |
# | response / feature / relation-based | 基于响应 / 特征 / 关系的蒸馏 | match outputs / intermediate features / sample relations |
# | hint, adapter (regressor) | 提示层, 适配层 | FitNet's teacher feature and the student-side map to its width |
# | pseudo-label, data distillation | 伪标签, 数据蒸馏 | teacher's argmax on unlabelled data used as labels |
#
# **Next:** [15 · ONNX export and TensorRT-style deployment](15_onnx_tensorrt_deploy.ipynb).
