"""House style for every figure: results in, ``Axes`` out (STYLE habit 10).

Call :func:`use_house_style` once (lessons do it in their setup cell); every plot function takes an
optional ``ax`` and returns the ``Axes`` it drew on, so lessons can combine them.
"""
from __future__ import annotations

from typing import Mapping, Sequence

import matplotlib

import matplotlib.pyplot as plt
from matplotlib.axes import Axes

PALETTE = ["#1f6feb", "#d1242f", "#2da44e", "#bf8700", "#8250df", "#57606a", "#e16f24", "#0a7c86"]


def use_house_style() -> None:
    """Small, readable, colour-blind-friendly defaults; no top/right spines."""
    matplotlib.rcParams.update({
        "figure.figsize": (6.4, 3.6),
        "figure.dpi": 90,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.prop_cycle": matplotlib.cycler(color=PALETTE),
        "axes.titlesize": 11,
        "axes.labelsize": 10,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "savefig.bbox": "tight",
    })


def _ax(ax: Axes | None, figsize: tuple[float, float] | None = None) -> Axes:
    if ax is not None:
        return ax
    _, ax = plt.subplots(figsize=figsize)
    return ax


def bar(values: Mapping[str, float], *, ax: Axes | None = None, title: str = "", ylabel: str = "",
        log: bool = False, annotate: str | None = "{:.3g}", colors: Sequence[str] | None = None) -> Axes:
    """One bar per key, labelled with its value."""
    ax = _ax(ax)
    names, vals = list(values), [float(v) for v in values.values()]
    bars = ax.bar(names, vals, color=colors or [PALETTE[i % len(PALETTE)] for i in range(len(vals))])
    if log:
        ax.set_yscale("log")
    if annotate:
        ax.bar_label(bars, labels=[annotate.format(v) for v in vals], fontsize=8, padding=2)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.tick_params(axis="x", labelrotation=20)
    ax.grid(axis="x", visible=False)
    return ax


def grouped_bar(groups: Mapping[str, Mapping[str, float]], *, ax: Axes | None = None, title: str = "",
                ylabel: str = "", log: bool = False) -> Axes:
    """``groups[series][category] = value``: one colour per series, categories along x (their union, in
    first-seen order; a series without a category leaves a gap)."""
    ax = _ax(ax)
    series = list(groups)
    cats = list(dict.fromkeys(c for g in groups.values() for c in g))
    width = 0.8 / max(len(series), 1)
    for i, s in enumerate(series):
        xs = [j + (i - (len(series) - 1) / 2) * width for j in range(len(cats))]
        ax.bar(xs, [groups[s].get(c, float("nan")) for c in cats], width=width, label=s)
    ax.set_xticks(range(len(cats)), cats)
    if log:
        ax.set_yscale("log")
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.legend()
    ax.grid(axis="x", visible=False)
    return ax


def lines(x: Sequence[float], ys: Mapping[str, Sequence[float]], *, ax: Axes | None = None, title: str = "",
          xlabel: str = "", ylabel: str = "", logx: bool = False, logy: bool = False, marker: str = "o") -> Axes:
    """Several named series over one x."""
    ax = _ax(ax)
    for name, y in ys.items():
        ax.plot(list(x), list(y), marker=marker, ms=3, label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if len(ys) > 1:
        ax.legend()
    return ax


def scatter_labeled(points: Mapping[str, tuple[float, float]], *, ax: Axes | None = None, title: str = "",
                    xlabel: str = "", ylabel: str = "", logx: bool = False, logy: bool = False,
                    diagonal: bool = False) -> Axes:
    """Named points ``{name: (x, y)}``, each labelled; optional y = x line."""
    ax = _ax(ax)
    for i, (name, (x, y)) in enumerate(points.items()):
        ax.scatter([x], [y], color=PALETTE[i % len(PALETTE)], zorder=3)
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    if diagonal and points:
        vals = [v for p in points.values() for v in p]
        lo, hi = min(vals), max(vals)
        ax.plot([lo, hi], [lo, hi], ls="--", color="grey", lw=1)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def image_grid(images, labels: Sequence[str] | None = None, *, ncols: int = 8, scale: float = 1.1):
    """Show ``images`` (Tensor[N, C, H, W] or [N, H, W], uint8 or float in [0, 1]) in a grid; returns the Figure."""
    import numpy as np
    import torch

    imgs = images.detach().cpu() if isinstance(images, torch.Tensor) else torch.as_tensor(images)
    if imgs.ndim == 3:
        imgs = imgs[:, None]
    n = imgs.shape[0]
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale * 1.15), squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i >= n:
            continue
        im = imgs[i].float()
        if imgs.dtype == torch.uint8:
            im = im / 255.0
        arr = im.permute(1, 2, 0).numpy()
        ax.imshow(np.clip(arr[..., 0] if arr.shape[-1] == 1 else arr, 0, 1), cmap="gray" if arr.shape[-1] == 1 else None)
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=7)
    fig.tight_layout()
    return fig




def heatmap(matrix, *, row_labels: Sequence[str] | None = None, col_labels: Sequence[str] | None = None,
            ax: Axes | None = None, title: str = "", xlabel: str = "", ylabel: str = "", cmap: str = "viridis",
            colorbar: bool = True, vmin: float | None = None, vmax: float | None = None) -> Axes:
    """A 2-D array (Tensor or ndarray ``[rows, cols]``) as a colour image with optional labels and colour bar."""
    import numpy as np

    m = np.asarray(matrix.detach().cpu() if hasattr(matrix, "detach") else matrix, dtype=float)
    if m.ndim != 2:
        raise ValueError(f"matrix has shape {m.shape}; need a 2-D array [rows, cols]")
    ax = _ax(ax, figsize=(min(12, 1.5 + 0.12 * m.shape[1]), 0.3 * m.shape[0] + 1.2))
    im = ax.imshow(m, aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest")
    if row_labels is not None:
        ax.set_yticks(range(m.shape[0]), list(row_labels))
    if col_labels is not None:
        ax.set_xticks(range(m.shape[1]), list(col_labels))
    ax.grid(False)
    if colorbar:
        ax.figure.colorbar(im, ax=ax, fraction=0.04, pad=0.02)
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    return ax


def point_panels(panels: Mapping[str, object], *, color=None, ncols: int | None = None, scale: float = 2.2):
    """One small scatter per entry ``{title: points [N, 2]}``, shared colouring ``color`` (length N); returns the Figure."""
    import numpy as np

    n = len(panels)
    if n == 0:
        raise ValueError("panels is empty; give at least one {title: points[N, 2]}")
    ncols = ncols or n
    nrows = (n + ncols - 1) // ncols
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * scale, nrows * scale), squeeze=False)
    for ax in axes.flat[n:]:
        ax.axis("off")
    for ax, (title, pts) in zip(axes.flat, panels.items()):
        p = np.asarray(pts.detach().cpu() if hasattr(pts, "detach") else pts, dtype=float)
        ax.scatter(p[:, 0], p[:, 1], c=color, s=3, cmap="viridis")
        ax.set_title(title, fontsize=9)
        ax.set_aspect("equal", adjustable="datalim")
        ax.tick_params(labelsize=7)
    fig.tight_layout()
    return fig


def xy_series(series: Mapping[str, tuple[Sequence[float], Sequence[float]]], *, ax: Axes | None = None,
              title: str = "", xlabel: str = "", ylabel: str = "", logx: bool = False, logy: bool = False,
              marker: str = "") -> Axes:
    """Several named series ``{name: (x, y)}`` that need not share their x values (e.g. spectra of
    layers of different widths)."""
    ax = _ax(ax)
    for name, (x, y) in series.items():
        ax.plot(list(x), list(y), marker=marker or None, ms=3, label=name)
    if logx:
        ax.set_xscale("log")
    if logy:
        ax.set_yscale("log")
    ax.set(title=title, xlabel=xlabel, ylabel=ylabel)
    if len(series) > 1:
        ax.legend()
    return ax


def histogram(values, *, bins: int = 100, ax: Axes | None = None, title: str = "", xlabel: str = "",
              logy: bool = False, vlines: Mapping[str, float] | None = None, label: str | None = None) -> Axes:
    """Histogram of ``values`` (tensor / array, flattened) with optional labelled vertical lines
    ``{name: x}`` (thresholds, clipping points)."""
    import numpy as np
    import torch

    v = values.detach().cpu().flatten().numpy() if isinstance(values, torch.Tensor) else np.asarray(values).ravel()
    ax = _ax(ax)
    ax.hist(v, bins=bins, color=PALETTE[0], alpha=0.8, label=label)
    if logy:
        ax.set_yscale("log")
    for i, (name, x) in enumerate((vlines or {}).items()):
        ax.axvline(float(x), color=PALETTE[(i + 1) % len(PALETTE)], ls="--", lw=1.2, label=f"{name} = {float(x):.3g}")
    if vlines or label:
        ax.legend()
    ax.set(title=title, xlabel=xlabel, ylabel="count")
    return ax
