"""lessons_lib.deploy: ONNX export, BatchNorm folding, onnxruntime levels and serialisation."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from lessons_lib import fold
from lessons_lib.deploy import onnx_export as E, ort as O
from lessons_lib.models import TeacherCNN


def _randomised_bn(model: nn.Module) -> nn.Module:
    """Non-trivial BN statistics and affine parameters (a fresh BN is the identity: useless for a test)."""
    g = torch.Generator().manual_seed(1)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.5)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.2)
    return model.eval()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return _randomised_bn(TeacherCNN(width=8))


@pytest.fixture(scope="module")
def raw(model):
    return E.export_onnx(model, torch.randn(2, 3, 32, 32), level="raw")


@pytest.fixture(scope="module")
def x():
    return torch.randn(5, 3, 32, 32, generator=torch.Generator().manual_seed(2))


def test_fold_batchnorm_matches_conv_then_bn():
    torch.manual_seed(3)
    for bias, groups in ((False, 1), (True, 2)):
        conv = nn.Conv2d(4, 6, 3, padding=1, stride=2, groups=groups, bias=bias)
        bn = _randomised_bn(nn.Sequential(nn.BatchNorm2d(6)))[0]
        x = torch.randn(3, 4, 9, 9)
        with torch.no_grad():
            ref = bn(conv(x))
            ours = fold.fold_batchnorm(conv, bn)(x)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_fold_model_removes_bn_and_keeps_outputs(model, x):
    folded = fold.fold_model(model)
    assert fold.count_modules(folded, nn.BatchNorm2d) == 0 and fold.count_modules(model, nn.BatchNorm2d) == 6
    with torch.no_grad():
        torch.testing.assert_close(folded(x), model(x), rtol=1e-4, atol=1e-5)


def test_fold_bad_inputs():
    with pytest.raises(ValueError, match="num_features=5 must equal conv.out_channels=6"):
        fold.fold_batchnorm(nn.Conv2d(3, 6, 1), nn.BatchNorm2d(5))
    with pytest.raises(TypeError, match="bn=Linear"):
        fold.fold_batchnorm(nn.Conv2d(3, 6, 1), nn.Linear(2, 2))
    with pytest.raises(TypeError, match="conv=Linear"):
        fold.fold_batchnorm(nn.Linear(2, 2), nn.BatchNorm2d(6))


def test_export_levels_keep_or_fold_batchnorm(raw, model, x):
    counts = {lvl: E.node_counts(E.simplify(raw, lvl)) for lvl in E.EXPORT_LEVELS}
    assert counts["raw"]["BatchNormalization"] == 6 and counts["constants"]["BatchNormalization"] == 6
    assert "BatchNormalization" not in counts["full"] and counts["full"]["Conv"] == 6
    assert sum(counts["constants"].values()) < sum(counts["raw"].values())
    with torch.no_grad():
        ref = model(x).numpy()
    for lvl in E.EXPORT_LEVELS:  # every level computes the same function (dynamic batch 5 != traced 2)
        y = O.run(O.make_session(E.simplify(raw, lvl), "ORT_DISABLE_ALL"), x)
        np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)
    assert E.io_signature(raw) == (["x: float[batch, 3, 32, 32]"], ["logits: float[batch, 10]"])
    table = E.node_table(raw, max_rows=3)
    assert "Shape" in table and "features.0.0.weight*" in table and "... 60 more nodes" in table


def test_torchscript_exporter_also_folds_unless_told(model, x):
    kept = E.export_onnx(model, x[:2], level="raw", exporter="torchscript")
    folded = E.export_onnx(model, x[:2], level="full", exporter="torchscript")
    assert E.node_counts(kept)["BatchNormalization"] == 6 and "BatchNormalization" not in E.node_counts(folded)
    with torch.no_grad():
        np.testing.assert_allclose(O.run(O.make_session(folded), x), model(x).numpy(), rtol=1e-4, atol=1e-4)


def test_ort_levels_fuse_and_saved_graph_reloads_identically(raw, tmp_path, x):
    unfused = E.simplify(raw, "constants")
    counts = {}
    outs = {}
    for lvl in O.ORT_LEVELS:
        path = tmp_path / f"{lvl}.onnx"
        counts[lvl] = E.node_counts(O.optimized_graph(unfused, lvl, path))
        outs[lvl] = O.run(O.make_session(unfused, lvl), x)
        reloaded = O.run(O.load_session(path), x)
        np.testing.assert_array_equal(reloaded, outs[lvl])  # serialise / deserialise changes nothing
    assert counts["ORT_DISABLE_ALL"].get("BatchNormalization") == 6
    assert "BatchNormalization" not in counts["ORT_ENABLE_BASIC"]          # Conv+BN fusion
    assert counts["ORT_ENABLE_EXTENDED"].get("microsoft.FusedConv") == 6   # Conv+ReLU fusion
    assert "Relu" not in counts["ORT_ENABLE_EXTENDED"]
    for lvl in O.ORT_LEVELS:
        np.testing.assert_allclose(outs[lvl], outs["ORT_DISABLE_ALL"], rtol=1e-4, atol=1e-4)


def test_export_and_session_bad_inputs(model, tmp_path):
    class Untraceable(nn.Module):
        def forward(self, x):
            return "not a tensor"  # nothing ONNX can represent

    with pytest.raises(ValueError, match="model=Untraceable could not be exported"):
        E.export_onnx(Untraceable(), torch.randn(1, 3), level="raw")
    with pytest.raises(TypeError, match="model=str"):
        E.export_onnx("model.pt", torch.randn(1, 3))
    with pytest.raises(TypeError, match="example_input=ndarray"):
        E.export_onnx(model, np.zeros((1, 3, 32, 32)))
    with pytest.raises(ValueError, match="level='fast'"):
        E.export_onnx(model, torch.randn(1, 3, 32, 32), level="fast")
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        O.make_session(tmp_path / "nothing.onnx")
    with pytest.raises(FileNotFoundError, match="nothing.onnx"):
        E.node_counts(tmp_path / "nothing.onnx")
    with pytest.raises(ValueError, match="level='O3'"):
        O.make_session(onnx.ModelProto(), "O3")
    with pytest.raises(ValueError, match="threads=0"):
        O.make_session(onnx.ModelProto(), threads=0)
    with pytest.raises(ValueError, match="sessions={}"):
        O.batch_sweep({}, torch.randn(4, 3, 32, 32), [1])
