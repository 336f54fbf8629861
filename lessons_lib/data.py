"""Offline, deterministic data for every lesson (nothing is downloaded).

* :func:`digits_splits` -- scikit-learn's bundled 8x8 handwritten digits (real data, shipped inside
  the scikit-learn package) as torch datasets with a fixed stratified 60/20/20 split.
* :func:`make_shapes` / :func:`shapes_splits` -- a procedural 32x32 RGB set of 10 classes
  (five shapes, five textures) whose ``difficulty`` in [0, 1] adds noise, clutter, low contrast and
  jitter, so small CNNs reach good but imperfect accuracy in seconds.
* :func:`make_id_cards` -- a procedural detection set: ID-card-like rectangles (85.6 x 54 mm
  aspect, scale, rotation, lighting, clutter, several per image) on textured backgrounds, with
  exact boxes computed from the card corners.

Same arguments, same bytes: every generator draws from ``numpy.random.Generator(PCG64(seed))``
in a fixed order and works in float32.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .validate import array, int_at_least, real, tensor

SHAPE_CLASSES = ("circle", "square", "triangle", "cross", "ring",
                 "h-stripes", "v-stripes", "checker", "diagonal", "dots")
SHAPES_MEAN, SHAPES_STD = 0.5, 0.25
ID_CARD_ASPECT = 85.6 / 54.0  # ISO/IEC 7810 ID-1


@dataclass(frozen=True)
class Splits:
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    classes: tuple[str, ...]


def _check_unit(name: str, value: object) -> float:
    return real(name, value, 0.0, 1.0)


# ------------------------------------------------------------------------------------------ digits
def digits_splits(seed: int = 0) -> Splits:
    """scikit-learn's 1797 handwritten digits as ``Tensor[N, 1, 8, 8]`` floats in [0, 1].

    The split is stratified 60/20/20 with ``random_state=seed`` (default 0: the course's fixed split).

    Args:
        seed: ``random_state`` of the split (int >= 0; default 0).

    Returns:
        :class:`Splits`: ``train`` / ``val`` / ``test`` :class:`TensorDataset` s of (``Tensor[n, 1, 8, 8]`` float32,
        ``Tensor[n]`` int64 labels), 1078 / 359 / 360 images; ``classes`` ``("0", ..., "9")``.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    seed = int_at_least("seed", seed, 0)
    d = load_digits()
    X = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target, dtype=torch.long)
    idx = np.arange(len(y))
    tr, rest = train_test_split(idx, test_size=0.4, stratify=d.target, random_state=seed)
    va, te = train_test_split(rest, test_size=0.5, stratify=d.target[rest], random_state=seed)
    pick = lambda i: TensorDataset(X[np.sort(i)], y[np.sort(i)])  # noqa: E731
    return Splits(pick(tr), pick(va), pick(te), tuple(str(i) for i in range(10)))


def labelled_split(dataset: TensorDataset, fraction: float = 0.5, *, seed: int = 0) -> tuple[TensorDataset, TensorDataset]:
    """Split a labelled training set into a **labelled** part and an **unlabelled** part (labels kept, for
    measuring pseudo-label quality only), stratified by class, disjoint, deterministic.

    The course's rule for distillation lessons: a teacher is trained on the labelled part only, and the
    unlabelled part is the data it labels for a student (document 004's data distillation) -- the teacher
    must never have seen it (``tests/test_no_leakage.py``).

    Args:
        dataset: a ``TensorDataset`` of ``(X, y)`` with integer labels ``y``, e.g. ``digits_splits().train``.
        fraction: share of each class that is labelled, in (0, 1).
        seed: ``random_state`` of the stratified split (int >= 0).

    Returns:
        ``(labelled, unlabelled)``: two ``TensorDataset`` s, rows in their original order within each.
    """
    from sklearn.model_selection import train_test_split

    if not (isinstance(dataset, TensorDataset) and len(dataset.tensors) == 2):
        raise TypeError(f"dataset={type(dataset).__name__} must be a TensorDataset of (X, y)")
    fraction = real("fraction", fraction, 0.0, 1.0, low_open=True, high_open=True)
    seed = int_at_least("seed", seed, 0)
    X, y = dataset.tensors
    idx = np.arange(len(y))
    lab, unl = train_test_split(idx, train_size=fraction, stratify=y.numpy(), random_state=seed)
    lab, unl = np.sort(lab), np.sort(unl)
    return TensorDataset(X[lab], y[lab]), TensorDataset(X[unl], y[unl])


# ------------------------------------------------------------------------------------------ shapes
def _shape_masks(cls: np.ndarray, u: np.ndarray, v: np.ndarray, r: np.ndarray, freq: np.ndarray,
                 phase: np.ndarray, thick: np.ndarray) -> np.ndarray:
    """Foreground masks for a chunk: ``u, v`` are rotated, centred coordinates ``[n, H, W]``."""
    rho = np.sqrt(u * u + v * v)
    m = np.zeros(u.shape, dtype=bool)
    tau = np.float32(2 * math.pi)
    for c in range(10):
        sel = cls == c
        if not sel.any():
            continue
        uu, vv, rr, ff, ph = u[sel], v[sel], r[sel], freq[sel], phase[sel]
        if c == 0:
            out = rho[sel] < rr
        elif c == 1:
            out = np.maximum(np.abs(uu), np.abs(vv)) < 0.8 * rr
        elif c == 2:
            out = np.ones(uu.shape, dtype=bool)
            for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6):
                out &= uu * np.float32(math.cos(a)) + vv * np.float32(math.sin(a)) < 0.55 * rr
        elif c == 3:
            w = 0.3 * rr
            out = ((np.abs(uu) < w) & (np.abs(vv) < rr)) | ((np.abs(vv) < w) & (np.abs(uu) < rr))
        elif c == 4:
            out = (rho[sel] < rr) & (rho[sel] > rr * thick[sel])
        elif c == 5:
            out = np.sin(tau * ff * vv + ph) > 0
        elif c == 6:
            out = np.sin(tau * ff * uu + ph) > 0
        elif c == 7:
            out = np.sin(tau * ff * uu + ph) * np.sin(tau * ff * vv + ph) > 0
        elif c == 8:
            out = np.sin(tau * ff * (uu + vv) * np.float32(1 / math.sqrt(2)) + ph) > 0
        else:
            out = np.cos(tau * ff * uu + ph) * np.cos(tau * ff * vv + ph) > 0.55
        m[sel] = out
    return m


def make_shapes(n: int = 5000, *, seed: int = 0, difficulty: float = 0.5, size: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Generate ``n`` images ``Tensor[n, 3, size, size]`` (uint8) and labels ``Tensor[n]`` (int64).

    Classes (:data:`SHAPE_CLASSES`): five shapes drawn at a random place, size and angle, and five
    textures filling a random square patch. ``difficulty`` in [0, 1] scales pixel noise, background
    gradients, distractor lines, how close the foreground and background colours are, and how far
    stripe angles and ring thickness wander (so neighbouring classes blur into each other).

    Args:
        n: number of images (int >= 1; default 5000); the classes are balanced (``n // 10`` or one more each).
        seed: seed of the ``PCG64`` generator (int >= 0; default 0).
        difficulty: a number in [0, 1] (default 0.5; a Python int / float or a NumPy float).
        size: image side in pixels (int >= 8; default 32).

    Returns:
        ``tuple[Tensor, Tensor]``: images ``Tensor[n, 3, size, size]`` uint8 and labels ``Tensor[n]`` int64 in
        0..9 (indices into :data:`SHAPE_CLASSES`).
    """
    n = int_at_least("n", n, 1)
    seed = int_at_least("seed", seed, 0)
    size = int_at_least("size", size, 8)
    d = _check_unit("difficulty", difficulty)
    rng = np.random.Generator(np.random.PCG64(seed))
    f32 = np.float32
    y = rng.permutation(np.arange(n) % 10)
    # per-image parameters, drawn in a fixed order
    cx, cy = rng.uniform(-0.35, 0.35, (2, n)).astype(f32)
    r = rng.uniform(0.3, 0.6, n).astype(f32)
    angle = rng.uniform(0, 2 * math.pi, n).astype(f32)
    jitter = rng.uniform(-1, 1, n).astype(f32) * f32(math.radians(35) * d)
    freq = rng.uniform(1.6, 3.2, n).astype(f32)
    phase = rng.uniform(0, 2 * math.pi, n).astype(f32)
    thick = rng.uniform(0.35 + 0.3 * (1 - d), 0.8, n).astype(f32)
    patch = rng.uniform(0.45, 0.9, n).astype(f32)
    bg = rng.uniform(0.1, 0.9, (n, 3)).astype(f32)
    contrast = f32(0.55 - 0.4 * d) * rng.uniform(0.8, 1.2, n).astype(f32)
    sign = np.where(rng.random(n) < 0.5, f32(-1), f32(1))
    tint = rng.normal(0, 0.15, (n, 3)).astype(f32)
    grad = rng.normal(0, 0.25 * d, (n, 2)).astype(f32)
    has_line = rng.random(n) < 0.8 * d
    line = rng.uniform(-1, 1, (n, 3)).astype(f32)
    line_col = rng.uniform(0, 1, (n, 3)).astype(f32)
    noise_sd = f32(0.02 + 0.12 * d)

    # textures keep a near-canonical orientation (plus jitter); shapes rotate freely
    is_texture = y >= 5
    theta = np.where(is_texture, jitter, angle).astype(f32)
    fg = np.clip(bg + sign[:, None] * contrast[:, None] + tint, 0, 1).astype(f32)

    lin = (np.arange(size, dtype=f32) + f32(0.5)) / f32(size) * 2 - 1
    gy, gx = np.meshgrid(lin, lin, indexing="ij")
    out = np.empty((n, 3, size, size), dtype=np.uint8)
    for s in range(0, n, 1024):
        e = min(n, s + 1024)
        k = slice(s, e)
        dx, dy = gx[None] - cx[k, None, None], gy[None] - cy[k, None, None]
        c, sn = np.cos(theta[k])[:, None, None], np.sin(theta[k])[:, None, None]
        u, v = dx * c + dy * sn, -dx * sn + dy * c
        m = _shape_masks(y[k], u, v, r[k, None, None], freq[k, None, None], phase[k, None, None], thick[k, None, None])
        inpatch = np.maximum(np.abs(dx), np.abs(dy)) < patch[k, None, None]
        m = np.where(is_texture[k, None, None], m & inpatch, m)
        shade = 1 + grad[k, 0, None, None] * gx[None] + grad[k, 1, None, None] * gy[None]
        img = np.where(m[:, None], fg[k, :, None, None], bg[k, :, None, None]) * shade[:, None]
        dist = np.abs(line[k, 0, None, None] * gx + line[k, 1, None, None] * gy + line[k, 2, None, None] * 0.5)
        ln = has_line[k, None, None] & (dist < 0.05)
        img = np.where(ln[:, None], line_col[k, :, None, None], img)
        img = img + rng.normal(0, 1, img.shape).astype(f32) * noise_sd
        out[k] = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
    return torch.from_numpy(out), torch.from_numpy(y.astype(np.int64))


def normalize_shapes(x: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float, mean 0.5 and std 0.25 removed (what the shapes models expect).

    Args:
        x: ``Tensor[N, 3, H, W]`` (any shape, any real dtype) of pixel values 0..255, e.g. from
            :func:`make_shapes`.

    Returns:
        ``float32`` tensor of the same shape, ``(x / 255 - SHAPES_MEAN) / SHAPES_STD``.
    """
    tensor("x", x, dtype="number")
    return (x.float() / 255.0 - SHAPES_MEAN) / SHAPES_STD


def shapes_splits(n_train: int = 6000, n_val: int = 1000, n_test: int = 2000, *, seed: int = 0,
                  difficulty: float = 0.5, size: int = 32) -> Splits:
    """Train / val / test :class:`TensorDataset` s of normalised shapes images (one generation, split in order).

    Args:
        n_train, n_val, n_test: images in each split (ints >= 1; defaults 6000, 1000, 2000).
        seed, difficulty, size: as in :func:`make_shapes` (int >= 0; number in [0, 1]; int >= 8).

    Returns:
        :class:`Splits`: (``Tensor[n, 3, size, size]`` float32 normalised by :func:`normalize_shapes`,
        ``Tensor[n]`` int64 labels) per split; ``classes`` is :data:`SHAPE_CLASSES`.
    """
    for name, val in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        int_at_least(name, val, 1)
    X, y = make_shapes(n_train + n_val + n_test, seed=seed, difficulty=difficulty, size=size)
    X = normalize_shapes(X)
    a, b = n_train, n_train + n_val
    return Splits(TensorDataset(X[:a], y[:a]), TensorDataset(X[a:b], y[a:b]),
                  TensorDataset(X[b:], y[b:]), SHAPE_CLASSES)


# ---------------------------------------------------------------------------------------- ID cards
@dataclass(frozen=True)
class DetectionSet:
    """``images`` Tensor[N, 3, S, S] uint8; ``boxes[i]`` Tensor[K_i, 4] (x1, y1, x2, y2 in pixels);
    ``corners[i]`` Tensor[K_i, 4, 2] (the rotated card's corners, x y)."""

    images: torch.Tensor
    boxes: list[torch.Tensor]
    corners: list[torch.Tensor]

    def __len__(self) -> int:
        return self.images.shape[0]


def card_corners(cx: float, cy: float, w: float, h: float, angle: float) -> np.ndarray:
    """The 4 corners (x, y) of a w x h rectangle centred at (cx, cy), rotated by ``angle`` radians.

    Args:
        cx, cy: centre in pixels (finite reals).
        w, h: width and height in pixels (> 0).
        angle: rotation in radians, counter-clockwise in image coordinates (finite).

    Returns:
        ``float64`` array ``[4, 2]``: top-left, top-right, bottom-right, bottom-left before rotation.
    """
    cx, cy, angle = real("cx", cx), real("cy", cy), real("angle", angle)
    w, h = real("w", w, 0, low_open=True), real("h", h, 0, low_open=True)
    c, s = math.cos(angle), math.sin(angle)
    half = np.array([[-w, -h], [w, -h], [w, h], [-w, h]], dtype=np.float64) / 2
    rot = np.array([[c, -s], [s, c]])
    return half @ rot.T + np.array([cx, cy])


def polygon_mask(corners: np.ndarray, size: int) -> np.ndarray:
    """Pixels (sampled at their centres) inside a convex quadrilateral, as bool ``[size, size]``.

    Args:
        corners: ``[4, 2]`` array of (x, y) corners in order around the quadrilateral (as from
            :func:`card_corners`).
        size: image side in pixels (>= 1).

    Returns:
        ``bool`` array ``[size, size]``, True inside (edges included).
    """
    corners = array("corners", corners, ndim=2)
    if corners.shape != (4, 2):
        raise ValueError(f"corners has shape {corners.shape}; it must be [4, 2] (four (x, y) corners)")
    size = int_at_least("size", size, 1)
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64) + 0.5
    inside = np.ones((size, size), dtype=bool)
    sign = None
    for i in range(4):
        (x1, y1), (x2, y2) = corners[i], corners[(i + 1) % 4]
        cross = (x2 - x1) * (ys - y1) - (y2 - y1) * (xs - x1)
        sign = np.sign((x2 - x1) * (corners[(i + 2) % 4][1] - y1) - (y2 - y1) * (corners[(i + 2) % 4][0] - x1))
        inside &= cross * sign >= 0
    return inside


def make_id_cards(n: int = 64, *, seed: int = 0, size: int = 128, max_cards: int = 3,
                  difficulty: float = 0.5) -> DetectionSet:
    """Images of 1..``max_cards`` ID-card-like rectangles on textured, cluttered backgrounds.

    Each card: ID-1 aspect (1.586, jittered by up to 8 %), width 22-55 % of the image, rotation up to
    +-(10 + 25 * difficulty) degrees, a photo box and text lines printed on it, a lighting gradient.
    Background: sinusoidal texture plus noise; clutter: distractor rectangles (square-ish, so not
    card-shaped) and lines with no box. Boxes are the exact axis-aligned extents of the card corners,
    clipped to the image. Cards are placed so that they do not overlap.

    Args:
        n: number of images (int >= 1; default 64).
        seed: seed of the ``PCG64`` generator (int >= 0; default 0).
        size: image side ``S`` in pixels (int >= 32; default 128).
        max_cards: most cards per image (int >= 1; default 3); fewer when a card finds no free place in 20 tries.
        difficulty: a number in [0, 1] (default 0.5): more rotation, clutter, lighting and noise.

    Returns:
        :class:`DetectionSet`: ``images`` ``Tensor[n, 3, S, S]`` uint8, and per image ``boxes`` ``Tensor[K_i, 4]``
        float32 (x1, y1, x2, y2 in pixels) and ``corners`` ``Tensor[K_i, 4, 2]`` float32, ``1 <= K_i <= max_cards``.
    """
    n = int_at_least("n", n, 1)
    seed = int_at_least("seed", seed, 0)
    size = int_at_least("size", size, 32)
    max_cards = int_at_least("max_cards", max_cards, 1)
    d = _check_unit("difficulty", difficulty)
    rng = np.random.Generator(np.random.PCG64(seed))
    ys, xs = (np.mgrid[0:size, 0:size].astype(np.float32) + 0.5) / size
    images = np.empty((n, 3, size, size), dtype=np.uint8)
    all_boxes, all_corners = [], []
    for i in range(n):
        f1, f2 = rng.uniform(3, 12, 2)
        base = rng.uniform(0.2, 0.7, 3)
        tex = 0.12 * np.sin(2 * math.pi * (f1 * xs + rng.uniform())) * np.cos(2 * math.pi * (f2 * ys + rng.uniform()))
        img = base[:, None, None] + tex[None] * rng.uniform(0.5, 1.5, 3)[:, None, None]
        for _ in range(rng.integers(0, 1 + int(4 * d) + 1)):  # distractors: squares and lines
            cq = card_corners(*(rng.uniform(0, size, 2)), *(rng.uniform(0.08, 0.25, 1) * size).repeat(2),
                              rng.uniform(0, math.pi))
            img[:, polygon_mask(cq, size)] = rng.uniform(0, 1, 3)[:, None]
        k = int(rng.integers(1, max_cards + 1))
        corners, centres = [], []
        max_rot = math.radians(10 + 25 * d)
        for _ in range(k):
            for _try in range(20):
                w = rng.uniform(0.22, 0.55) * size
                h = w / (ID_CARD_ASPECT * rng.uniform(0.92, 1.08))
                cx, cy = rng.uniform(0.1 * size + w / 3, 0.9 * size - w / 3, 2)
                a = rng.uniform(-max_rot, max_rot)
                rad = math.hypot(w, h) / 2
                if all(math.hypot(cx - px, cy - py) > rad + pr for px, py, pr in centres):
                    break
            else:
                continue
            centres.append((cx, cy, rad))
            cc = card_corners(cx, cy, w, h, a)
            corners.append(cc)
            mask = polygon_mask(cc, size)
            card_col = rng.uniform(0.75, 0.97) * (1 + rng.normal(0, 0.05, 3))
            img[:, mask] = card_col[:, None]
            # local card coordinates (0..1 across the card) for the photo box and the text lines
            c, s = math.cos(a), math.sin(a)
            px, py = xs * size - cx, ys * size - cy
            lu, lv = (px * c + py * s) / w + 0.5, (-px * s + py * c) / h + 0.5
            photo = mask & (lu > 0.06) & (lu < 0.32) & (lv > 0.2) & (lv < 0.85)
            img[:, photo] = rng.uniform(0.2, 0.5, 3)[:, None]
            for t in range(4):
                y0 = 0.25 + 0.15 * t
                text = mask & (lu > 0.4) & (lu < rng.uniform(0.6, 0.94)) & (lv > y0) & (lv < y0 + 0.05)
                img[:, text] = 0.15
        light = 1 + rng.normal(0, 0.15 + 0.2 * d, 2)
        shade = (light[0] * (xs - 0.5) + light[1] * (ys - 0.5)) * (0.3 + 0.5 * d)
        img = img * (1 + shade)[None] + rng.normal(0, 0.02 + 0.06 * d, img.shape)
        images[i] = np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)
        cs = np.array(corners, dtype=np.float64).reshape(-1, 4, 2)
        bx = np.concatenate([cs.min(1), cs.max(1)], axis=1).clip(0, size) if len(cs) else np.zeros((0, 4))
        all_boxes.append(torch.tensor(bx, dtype=torch.float32))
        all_corners.append(torch.tensor(cs, dtype=torch.float32))
    return DetectionSet(torch.from_numpy(images), all_boxes, all_corners)
