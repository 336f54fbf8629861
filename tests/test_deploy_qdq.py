"""lessons_lib.deploy.qdq: fp16 graphs and explicit Q/DQ insertion, against onnxruntime.quantization."""
from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import numpy_helper
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static

from lessons_lib import quant
from lessons_lib.deploy import onnx_export as E, ort as O, qdq as Q
from lessons_lib.models import TeacherCNN

from test_deploy_export import _randomised_bn


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    model = _randomised_bn(TeacherCNN(width=8))
    full = E.export_onnx(model, torch.randn(2, 3, 32, 32), level="full")
    g = torch.Generator().manual_seed(5)
    calib = [torch.randn(16, 3, 32, 32, generator=g) for _ in range(2)]
    x = torch.randn(8, 3, 32, 32, generator=g)
    return model, full, calib, x


def test_quantizable_inputs_are_conv_and_gemm_operands(setup):
    _, full, _, _ = setup
    acts, weights = Q.quantizable_inputs(full)
    assert len(acts) == 7 and acts[0] == "x" and len(weights) == 7
    assert all(w.endswith("weight") for w in weights)


def test_weight_scales_are_per_channel_symmetric_max(setup):
    _, full, _, _ = setup
    inits = {i.name: numpy_helper.to_array(i) for i in full.graph.initializer}
    _, weights = Q.quantizable_inputs(full)
    scales = Q.weight_scales(full, weights)
    for name, s in scales.items():
        w = inits[name]
        assert s.shape == (w.shape[0],)
        np.testing.assert_allclose(s, np.abs(w.reshape(w.shape[0], -1)).max(1) / 127, rtol=1e-6)


def test_max_calibration_equals_histogram_max(setup):
    _, full, calib, _ = setup
    acts, _ = Q.quantizable_inputs(full)
    scales = Q.calibrate_activations(full, acts[:1], calib, method="max")
    want = max(float(b.abs().max()) for b in calib) / 127
    assert scales["x"] == pytest.approx(want, rel=1e-12)
    ent = Q.calibrate_activations(full, acts[:2], calib, method="entropy")
    hist = quant.Histogram(2048)
    for b in calib:
        hist.update(b)
    assert ent["x"] == pytest.approx(quant.calibrate(hist, "entropy", zero_bin="copy_next") / 127)


def test_qdq_structure_and_closeness_to_fp32(setup):
    model, full, calib, x = setup
    acts, weights = Q.quantizable_inputs(full)
    q8 = Q.insert_qdq(full, Q.calibrate_activations(full, acts, calib, method="max"), Q.weight_scales(full, weights))
    s = Q.qdq_summary(q8)
    assert s == {"QuantizeLinear": 7, "DequantizeLinear": 14, "per-channel DQ": 7, "zero points": [0]}
    inits = {i.name: i for i in q8.graph.initializer}
    assert inits["features.0.0.weight_quantized"].data_type == onnx.TensorProto.INT8
    assert "features.0.0.weight" not in inits  # the fp32 copy is gone
    with torch.no_grad():
        ref = model(x).numpy()
    y = O.run(O.make_session(q8), x)
    # int8 error: a few quantisation steps of the logits' scale, far below their spread
    assert np.abs(y - ref).max() < 0.1 * np.abs(ref).max()
    assert np.corrcoef(y.ravel(), ref.ravel())[0, 1] > 0.99


class _Reader(CalibrationDataReader):
    def __init__(self, batches):
        self.it = iter([{"x": b.numpy()} for b in batches])

    def get_next(self):
        return next(self.it, None)


@pytest.mark.parametrize("reduce_range", [False, True])
def test_same_scales_as_onnxruntime_quantize_static(setup, tmp_path, reduce_range):
    model, full, calib, x = setup
    onnx.save(full, tmp_path / "fp32.onnx")
    # Like with like: onnxruntime by default also stores each bias as int32 (scale s_x * s_w) and may
    # enlarge a weight scale so that the int32 bias fits; insert_qdq keeps the bias in fp32. Both are
    # switched off here, so the two models are the same Q/DQ graph semantically.
    quantize_static(str(tmp_path / "fp32.onnx"), str(tmp_path / "ort.onnx"), _Reader(calib),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QInt8,
                    weight_type=QuantType.QInt8, calibrate_method=CalibrationMethod.MinMax,
                    reduce_range=reduce_range,
                    extra_options={"ActivationSymmetric": True, "QuantizeBias": False,
                                   "QDQDisableWeightAdjustForInt32Bias": True})
    ort_q = onnx.load(tmp_path / "ort.onnx")
    ort_acts, ort_weights = Q.scales_of(ort_q)
    acts, weights = Q.quantizable_inputs(full)
    ours_a = Q.calibrate_activations(full, acts, calib, method="max")
    ours_w = Q.weight_scales(full, weights, reduce_range=reduce_range)  # [-64, 64] = onnxruntime's reduce_range
    for n in acts:  # our max calibration = onnxruntime's symmetric MinMax
        assert ours_a[n] == pytest.approx(ort_acts[n], rel=1e-5), n
    for n in weights:
        np.testing.assert_allclose(ours_w[n], ort_weights[n], rtol=1e-6)
    # Given onnxruntime's scales, our insertion reproduces its model. Both run through the same int8
    # kernels, so the outputs agree up to float rounding inside the kernels: where a value sits on a
    # rounding tie of an int8 code the two may differ by one step, and one step of an activation moves
    # a logit by at most |s_x * w| summed over a layer -- far below 1 % of the logits' range.
    mine = Q.insert_qdq(full, ort_acts, ort_weights)
    y_ort, y_ours = O.run(O.make_session(ort_q), x), O.run(O.make_session(mine), x)
    ref = O.run(O.make_session(full), x)
    assert np.abs(y_ours - y_ort).max() < 0.01 * np.abs(ref).max()
    assert (y_ours.argmax(1) == y_ort.argmax(1)).all()


def test_insert_qdq_bad_inputs(setup):
    _, full, _, _ = setup
    _, weights = Q.quantizable_inputs(full)
    w0 = weights[0]
    with pytest.raises(ValueError, match="activation_scales: 'nope' is not a graph input or node output"):
        Q.insert_qdq(full, {"nope": 0.1})
    with pytest.raises(ValueError, match="weight_scales: 'nope' is not an initializer"):
        Q.insert_qdq(full, {}, {"nope": 0.1})
    with pytest.raises(ValueError, match=rf"weight '{w0}' has shape \[8, 3, 3, 3\]: its scales must be a scalar or 8 values"):
        Q.insert_qdq(full, {}, {w0: np.ones(5)})
    with pytest.raises(ValueError, match=r"activation_scales\['x'\]=0.0 must be a finite number > 0"):
        Q.insert_qdq(full, {"x": 0.0})
    with pytest.raises(ValueError, match=rf"weight_scales\['{w0}'\]=\[\] is empty"):
        Q.insert_qdq(full, {}, {w0: []})
    with pytest.raises(ValueError, match="needs one scale"):
        Q.insert_qdq(full, {"x": [0.1, 0.2]})
    with pytest.raises(TypeError, match=r"activation_scales=\["):
        Q.insert_qdq(full, [("x", 0.1)])
    old = onnx.ModelProto.FromString(full.SerializeToString())
    old.opset_import[0].version = 12
    with pytest.raises(ValueError, match="opset 12 < 13"):
        Q.insert_qdq(old, {"x": 0.1})
    with pytest.raises(ValueError, match="method='kl'"):
        Q.calibrate_activations(full, ["x"], [torch.ones(1, 3, 32, 32)], method="kl")


def test_fp16_model_runs_and_is_close(setup):
    model, full, _, x = setup
    f16 = Q.to_fp16(full)
    assert all(i.data_type != onnx.TensorProto.FLOAT for i in f16.graph.initializer)
    assert f16.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT16
    int64 = sum(numpy_helper.to_array(i).nbytes for i in full.graph.initializer if i.data_type == onnx.TensorProto.INT64)
    assert Q.weight_bytes(f16) - int64 == (Q.weight_bytes(full) - int64) // 2  # float weights exactly halve
    y = O.run(O.make_session(f16), x).astype(np.float32)
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(y, ref, rtol=2e-2, atol=2e-2 * np.abs(ref).max())
    big = onnx.ModelProto.FromString(full.SerializeToString())
    t = big.graph.initializer[0]
    arr = numpy_helper.to_array(t).copy()
    arr.flat[0] = 1e6
    t.CopyFrom(numpy_helper.from_array(arr, t.name))
    with pytest.raises(ValueError, match="> 65504"):
        Q.to_fp16(big)
