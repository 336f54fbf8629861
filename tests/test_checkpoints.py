"""Checkpoints: manifest hashes, verified loading, clear errors naming the rebuild command."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from lessons_lib import checkpoints, data, train


def test_every_data_file_is_in_the_manifest_with_its_hash_and_command():
    man = json.loads(checkpoints.MANIFEST.read_text())["files"]
    on_disk = {p.name for p in checkpoints.DATA_DIR.iterdir() if p.name != "MANIFEST.json"}
    assert on_disk == set(man)
    for name, entry in man.items():
        assert checkpoints.sha256(checkpoints.DATA_DIR / name) == entry["sha256"]
        assert entry["command"].startswith("python -m lessons_lib.checkpoints build ")
        assert (checkpoints.DATA_DIR / name).stat().st_size == entry["bytes"]


def test_pretrained_teacher_is_good_but_imperfect():
    model = checkpoints.pretrained("shapes_teacher")
    s = data.shapes_splits(n_train=1, n_val=1, n_test=1000, seed=0)  # fresh, seed-0 test images
    acc = train.evaluate(model, s.test)["acc"]
    assert 0.85 < acc < 0.995


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    d = tmp_path / "data"
    shutil.copytree(checkpoints.DATA_DIR, d)
    monkeypatch.setattr(checkpoints, "DATA_DIR", d)
    monkeypatch.setattr(checkpoints, "MANIFEST", d / "MANIFEST.json")
    return d


def test_missing_file_names_the_rebuild_command(sandbox):
    (sandbox / "digits_teacher.pt").unlink()
    with pytest.raises(checkpoints.DataFileError, match="python -m lessons_lib.checkpoints build digits_teacher"):
        checkpoints.load_state("digits_teacher")


def test_corrupt_file_is_refused(sandbox):
    p = sandbox / "digits_teacher.pt"
    raw = bytearray(p.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    p.write_bytes(bytes(raw))
    with pytest.raises(checkpoints.DataFileError, match="corrupt.*build digits_teacher"):
        checkpoints.load_state("digits_teacher")


def test_unknown_name():
    with pytest.raises(ValueError, match="name='nope'"):
        checkpoints.load_state("nope")


def test_loads_with_weights_only(sandbox, monkeypatch):
    seen = {}
    real = torch.load

    def spy(*a, **k):
        seen.update(k)
        return real(*a, **k)

    monkeypatch.setattr(torch, "load", spy)
    checkpoints.load_state("digits_teacher")
    assert seen.get("weights_only") is True


def test_register_lists_a_data_file_in_the_manifest(tmp_path, monkeypatch):
    d = tmp_path / "data"
    d.mkdir()
    (d / "MANIFEST.json").write_text('{"files": {}}')
    monkeypatch.setattr(checkpoints, "DATA_DIR", d)
    monkeypatch.setattr(checkpoints, "MANIFEST", d / "MANIFEST.json")
    f = d / "gpu_recorded.json"
    f.write_text('{"rows": []}')
    checkpoints.register(f, "python -m lessons_lib.deploy.gpu --record", "a test file")
    entry = json.loads((d / "MANIFEST.json").read_text())["files"]["gpu_recorded.json"]
    assert entry["sha256"] == checkpoints.sha256(f) and entry["bytes"] == f.stat().st_size
    assert entry["command"] == "python -m lessons_lib.deploy.gpu --record"
    with pytest.raises(ValueError, match="directly inside data/"):
        checkpoints.register(tmp_path / "elsewhere.json", "x", "y")
