"""lessons_lib.data: determinism, shapes, value ranges, exact boxes, bad input."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from lessons_lib import data


def _digest(t: torch.Tensor) -> str:
    return hashlib.sha256(t.numpy().tobytes()).hexdigest()


def test_digits_split_is_fixed_stratified_and_real():
    s = data.digits_splits()
    assert (len(s.train), len(s.val), len(s.test)) == (1078, 359, 360)
    X, y = s.train.tensors
    assert X.shape[1:] == (1, 8, 8) and X.dtype == torch.float32
    assert 0.0 <= X.min() and X.max() <= 1.0 and X.std() > 0.2
    assert torch.bincount(y, minlength=10).min() >= 100  # stratified: every digit present
    again = data.digits_splits()
    assert torch.equal(again.test.tensors[0], s.test.tensors[0])
    # the three parts are disjoint: no test image appears in train
    tr = {row.numpy().tobytes() for row in X}
    assert sum(r.numpy().tobytes() in tr for r in s.test.tensors[0]) < 5  # sklearn digits has a few duplicates


def test_shapes_same_seed_same_bytes_other_seed_other_bytes():
    a = data.make_shapes(300, seed=3, difficulty=0.4)
    b = data.make_shapes(300, seed=3, difficulty=0.4)
    c = data.make_shapes(300, seed=4, difficulty=0.4)
    assert _digest(a[0]) == _digest(b[0]) and torch.equal(a[1], b[1])
    assert _digest(a[0]) != _digest(c[0])


def test_shapes_layout_and_balance():
    X, y = data.make_shapes(1000, seed=0, size=32)
    assert X.shape == (1000, 3, 32, 32) and X.dtype == torch.uint8
    assert torch.bincount(y, minlength=10).tolist() == [100] * 10
    assert X.float().std() > 20  # not blank images
    # learnability is shown by tests/test_checkpoints.py (the teacher reaches ~96 %, not 100 %)


def test_difficulty_makes_the_task_harder():
    """Mean distance between same-class images relative to different-class ones rises with difficulty."""
    def noise(d):
        X, _ = data.make_shapes(200, seed=1, difficulty=d)
        # high-frequency energy (pixel noise) grows with difficulty
        x = X.float()
        return (x[..., 1:] - x[..., :-1]).abs().mean().item()

    assert noise(0.0) < noise(0.5) < noise(1.0)


def test_shapes_splits_normalised():
    s = data.shapes_splits(n_train=50, n_val=20, n_test=30, seed=0)
    X, y = s.train.tensors
    assert X.shape == (50, 3, 32, 32) and X.dtype == torch.float32
    assert -2.1 <= X.min() and X.max() <= 2.1
    assert len(s.val) == 20 and len(s.test) == 30 and s.classes == data.SHAPE_CLASSES


@pytest.mark.parametrize("kwargs,exc,word", [
    (dict(n=0), ValueError, "n=0"),
    (dict(n=10, difficulty=1.5), ValueError, "difficulty=1.5"),
    (dict(n=10, difficulty="hard"), TypeError, "difficulty='hard'"),
    (dict(n=10, size=4), ValueError, "size=4"),
    (dict(n=2.5), TypeError, "n=2.5"),
])
def test_shapes_bad_input(kwargs, exc, word):
    with pytest.raises(exc, match=word.replace("(", r"\(")):
        data.make_shapes(**kwargs)


def test_id_cards_deterministic_and_boxes_exact():
    a = data.make_id_cards(12, seed=5, size=96)
    b = data.make_id_cards(12, seed=5, size=96)
    assert _digest(a.images) == _digest(b.images)
    assert all(torch.equal(x, y) for x, y in zip(a.boxes, b.boxes))
    assert a.images.shape == (12, 3, 96, 96) and a.images.dtype == torch.uint8
    n_cards = [len(bx) for bx in a.boxes]
    assert min(n_cards) >= 1 and max(n_cards) <= 3 and len(set(n_cards)) > 1
    for boxes, corners in zip(a.boxes, a.corners):
        assert boxes.shape[1] == 4 and corners.shape[1:] == (4, 2)
        assert (boxes[:, 2] > boxes[:, 0]).all() and (boxes[:, 3] > boxes[:, 1]).all()
        assert boxes.min() >= 0 and boxes.max() <= 96
        for box, cs in zip(boxes, corners):
            cs = cs.double().numpy()
            # the box is the extent of the corners (clipped), and the rasterised card fills it
            np.testing.assert_allclose(box.numpy(), np.r_[cs.min(0), cs.max(0)].clip(0, 96), atol=1e-4)
            mask = data.polygon_mask(cs, 96)
            x = cs[:, 0]; y = cs[:, 1]
            area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))
            inside_img = (cs.min() >= 0) and (cs.max() <= 96)
            if inside_img:
                assert abs(mask.sum() - area) / area < 0.06
            ys, xs = np.nonzero(mask)
            box = box.numpy()
            assert xs.min() >= np.floor(box[0]) - 1 and xs.max() <= np.ceil(box[2]) + 1
            assert ys.min() >= np.floor(box[1]) - 1 and ys.max() <= np.ceil(box[3]) + 1


def test_id_cards_aspect_is_id1():
    d = data.make_id_cards(20, seed=2, size=128)
    for cs in d.corners:
        for c in cs.double():
            w = (c[1] - c[0]).norm()
            h = (c[2] - c[1]).norm()
            assert 0.9 * data.ID_CARD_ASPECT < w / h < 1.1 * data.ID_CARD_ASPECT


def test_id_cards_bad_input():
    with pytest.raises(ValueError, match="max_cards=0"):
        data.make_id_cards(2, max_cards=0)
    with pytest.raises(ValueError, match="size=16"):
        data.make_id_cards(2, size=16)
