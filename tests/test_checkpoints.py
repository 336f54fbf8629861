"""Checkpoints: manifest hashes, verified loading, clear errors naming the rebuild command."""
from __future__ import annotations

import json
import shutil

import pytest
import torch

from lessons_lib import checkpoints, data, train


def test_every_data_file_is_in_the_manifest_with_its_hash_and_command():
    assert checkpoints.verify() == []
    man = json.loads((checkpoints.WEIGHTS_DIR / "MANIFEST.json").read_text())["files"]
    assert {f"{n}.pt" for n in checkpoints.RECIPES} <= set(man)


def test_verify_names_each_kind_of_problem(sandbox):
    man = json.loads((sandbox / "MANIFEST.json").read_text())
    man["files"]["digits_teacher.pt"]["command"] = "python train.py"
    (sandbox / "MANIFEST.json").write_text(json.dumps(man))
    (sandbox / "stray.bin").write_bytes(b"x")
    (sandbox / "shapes_teacher.pt").write_bytes(b"changed")
    problems = "\n".join(checkpoints.verify(sandbox))
    assert "stray.bin: on disk but not in MANIFEST.json" in problems
    assert "digits_teacher.pt: command 'python train.py' is not" in problems
    assert "shapes_teacher.pt: sha256 differs" in problems and "shapes_teacher.pt: size differs" in problems


def test_gpu_record_round_trip_keeps_the_manifest_valid(sandbox):
    """The documented GPU workflow (python -m lessons_lib.deploy.gpu --record) writes a file the manifest
    check accepts: the command it registers is the one verify() expects."""
    from lessons_lib.deploy import gpu

    res = {"device": "GPU: test stand-in", "compile_s": None, "rows": [{"variant": "eager fp32", "batch": 1, "ms": 1.0}]}
    gpu.save_record(res, sandbox / "gpu_recorded.json")
    assert checkpoints.verify(sandbox) == []
    assert gpu.load_record(sandbox / "gpu_recorded.json")["rows"] == res["rows"]


def test_pretrained_teacher_is_good_but_imperfect():
    model = checkpoints.pretrained("shapes_teacher")
    s = data.shapes_splits(n_train=1, n_val=1, n_test=1000, seed=0)  # fresh, seed-0 test images
    acc = train.evaluate(model, s.test)["acc"]
    assert 0.85 < acc < 0.995


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    d = tmp_path / "data"
    shutil.copytree(checkpoints.WEIGHTS_DIR, d)
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", d)
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
    monkeypatch.setattr(checkpoints, "WEIGHTS_DIR", d)
    f = d / "gpu_recorded.json"
    f.write_text('{"rows": []}')
    with pytest.raises(ValueError, match="cmd='python other.py' must be"):
        checkpoints.register(f, "python other.py", "a test file")
    (d / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match="not a known data file"):
        checkpoints.register(d / "notes.txt", "python -m x", "a test file")
    checkpoints.register(f, "python -m lessons_lib.deploy.gpu --record", "a test file")
    entry = json.loads((d / "MANIFEST.json").read_text())["files"]["gpu_recorded.json"]
    assert entry["sha256"] == checkpoints.sha256(f) and entry["bytes"] == f.stat().st_size
    assert entry["command"] == "python -m lessons_lib.deploy.gpu --record"
    with pytest.raises(ValueError, match="directly inside lessons_lib/weights/"):
        checkpoints.register(tmp_path / "elsewhere.json", "x", "y")
