"""The no-leakage rule (CONTRIBUTING, rule 5): no image a lesson evaluates on, calibrates a verdict with, or
treats as *unlabelled* was seen in training by the shipped checkpoint that labels or is evaluated on it.

Each checkpoint records its exact training set (``checkpoints.RECIPES[name].trained_on``); each lesson's
held-out sets are rebuilt here with the lesson's default and ``FAST`` parameters, and compared image by
image (exact bytes of the float32 pixels, as the models see them)."""
from __future__ import annotations

import hashlib

import pytest
import torch

from lessons_lib import checkpoints, data


def _rows(x: torch.Tensor) -> set[bytes]:
    x = x.to(torch.float32).contiguous()
    return {hashlib.sha1(r.numpy().tobytes()).digest() for r in x.reshape(len(x), -1)}


def _shapes(n: int, seed: int) -> torch.Tensor:
    return data.normalize_shapes(data.make_shapes(n, seed=seed, difficulty=0.5)[0])


def _split_part(which: str, **kw):
    return lambda: getattr(data.shapes_splits(**kw), which).tensors[0]


# (lesson, what, checkpoint, images) -- defaults, then the FAST values each lesson sets
HELD_OUT = [
    ("03", "activations quantised", "shapes_teacher", lambda: _shapes(256, seed=1)),
    ("07", "images quantised / evaluated", "shapes_teacher", lambda: _shapes(128, seed=1)),
    ("08", "evaluation images", "shapes_teacher", lambda: _shapes(200, seed=2)),
    ("08", "evaluation images (FAST)", "shapes_teacher", lambda: _shapes(100, seed=2)),
    ("09-11, 15", "shapes_splits().val", "shapes_teacher", _split_part("val")),
    ("09-11, 15", "shapes_splits().test", "shapes_teacher", _split_part("test")),
    ("12", "test images", "shapes_teacher", _split_part("test", n_train=1024, n_val=1, n_test=600)),
    ("12", "test images (FAST)", "shapes_teacher", _split_part("test", n_train=512, n_val=1, n_test=400)),
    ("13", "test images", "shapes_teacher", _split_part("test", n_train=512, n_val=1, n_test=300)),
    ("13", "test images (FAST)", "shapes_teacher", _split_part("test", n_train=256, n_val=1, n_test=150)),
    ("10, 11, 14", "digits_splits().test", "digits_teacher", lambda: data.digits_splits().test.tensors[0]),
    ("10, 11, 14", "digits_splits().val", "digits_teacher", lambda: data.digits_splits().val.tensors[0]),
    ("14", "unlabelled digits (pseudo-labelled by the teacher)", "digits_teacher",
     lambda: data.labelled_split(data.digits_splits().train, 0.5, seed=0)[1].tensors[0]),
]

_TRAINED: dict[str, set[bytes]] = {}


def trained_rows(name: str) -> set[bytes]:
    if name not in _TRAINED:
        _TRAINED[name] = _rows(checkpoints.RECIPES[name].trained_on().tensors[0])
    return _TRAINED[name]


@pytest.mark.parametrize("lesson, what, ckpt, images", HELD_OUT, ids=[f"{c[0]}:{c[1]}" for c in HELD_OUT])
def test_held_out_images_were_never_trained_on(lesson, what, ckpt, images):
    seen = trained_rows(ckpt) & _rows(images())
    assert not seen, f"lesson {lesson}: {len(seen)} of its {what} were in {ckpt}'s training set"


def test_the_check_would_see_a_leak():
    """Negative control: the digits teacher's own training images are found."""
    leaked = checkpoints.RECIPES["digits_teacher"].trained_on().tensors[0][:5]
    assert len(trained_rows("digits_teacher") & _rows(leaked)) == 5


def test_every_checkpoint_records_its_training_set():
    for name, recipe in checkpoints.RECIPES.items():
        ds = recipe.trained_on()
        assert len(ds) > 0 and "trained" in recipe.description, name


def test_labelled_split_is_stratified_disjoint_and_covers_the_set():
    train = data.digits_splits().train
    lab, unl = data.labelled_split(train, 0.5, seed=0)
    assert len(lab) + len(unl) == len(train)
    assert not (_rows(lab.tensors[0]) & _rows(unl.tensors[0]))
    counts = torch.bincount(lab.tensors[1], minlength=10) - torch.bincount(unl.tensors[1], minlength=10)
    assert counts.abs().max() <= 1
    with pytest.raises(ValueError, match="fraction=1.0"):
        data.labelled_split(train, 1.0)
    with pytest.raises(TypeError, match="dataset=list"):
        data.labelled_split([1, 2], 0.5)
