"""Q/DQ placement for onnxruntime int8 kernels, and histogram-based scales, against onnxruntime itself."""
import numpy as np
import pytest
import torch
from torch import nn

from lessons_lib import models
from lessons_lib.deploy import onnx_export as ox
from lessons_lib.deploy import ort as dort
from lessons_lib.deploy import int8, qdq
from lessons_lib.quant import calibrate


@pytest.fixture(scope="module")
def setup():
    torch.manual_seed(0)
    net = models.TeacherCNN(width=8).eval()
    x = torch.randn(64, 3, 16, 16, generator=torch.Generator().manual_seed(1))
    proto = ox.export_onnx(net, x[:2], exporter="torchscript")
    return net, x, proto


def test_names_add_conv_outputs(setup):
    _, _, proto = setup
    acts0, w0 = int8.qdq_tensor_names(proto, conv_outputs=False)
    acts, w = int8.qdq_tensor_names(proto)
    convs = [n for n in proto.graph.node if n.op_type == "Conv"]
    assert w == w0 and len(w) == len(convs) + 1  # six convs and the classifier
    assert len(acts) == len(acts0) + len(convs)
    assert all(n.output[0] in acts for n in convs)


def test_scales_match_lessons_lib_calibrate_on_the_same_activations(setup):
    net, x, proto = setup
    acts, _ = int8.qdq_tensor_names(proto)
    hists = qdq.activation_histograms(proto, acts, [x[:32], x[32:]])
    first_conv_out = [n.output[0] for n in proto.graph.node if n.op_type == "Conv"][0]
    ref_act = net.features[0][1](net.features[0][0](x)).detach()  # conv + BN (folded in the ONNX graph)
    for method in ("max", "percentile"):
        s = qdq.scales_from_histograms(hists, method)
        assert s["x"] == pytest.approx(calibrate(x, method) / 127, rel=1e-6)
    assert qdq.scales_from_histograms(hists, "max")[first_conv_out] == pytest.approx(float(ref_act.abs().max()) / 127, rel=1e-4)


def test_int8_model_uses_qlinearconv_and_agrees_with_the_qdq_reference(setup, tmp_path):
    net, x, proto = setup
    acts, _ = int8.qdq_tensor_names(proto)
    q = int8.quantize_onnx(proto, qdq.activation_histograms(proto, acts, [x]), "max")
    opt = dort.optimized_graph(q, "ORT_ENABLE_EXTENDED", tmp_path / "q.onnx")
    ops = ox.node_counts(opt)
    assert ops.get("microsoft.QLinearConv", 0) + ops.get("QLinearConv", 0) == 6
    fast = dort.run(dort.make_session(q, "ORT_ENABLE_ALL"), x)       # int8 kernels
    ref = dort.run(dort.make_session(q, "ORT_DISABLE_ALL"), x)       # Q/DQ run literally in float
    fp32 = net(x).detach().numpy()
    assert np.abs(fast - ref).max() < 0.05 * np.abs(ref).max()
    assert np.abs(ref - fp32).max() < 0.1 * np.abs(fp32).max()
    # without Q on the conv outputs, onnxruntime keeps float convolutions
    a0, w0 = int8.qdq_tensor_names(proto, conv_outputs=False)
    q0 = qdq.insert_qdq(proto, qdq.scales_from_histograms(qdq.activation_histograms(proto, a0, [x]), "max"),
                        qdq.weight_scales(proto, w0))
    ops0 = ox.node_counts(dort.optimized_graph(q0, "ORT_ENABLE_EXTENDED", tmp_path / "q0.onnx"))
    assert ops0.get("microsoft.QLinearConv", 0) + ops0.get("QLinearConv", 0) == 0


def test_bad_inputs(setup):
    _, x, proto = setup
    with pytest.raises(ValueError, match=r"names=\[\] must be a non-empty list"):
        qdq.activation_histograms(proto, [], [x])
    with pytest.raises(ValueError, match="batches is empty"):
        qdq.activation_histograms(proto, ["x"], [])
    with pytest.raises(ValueError, match="method='kl'"):
        qdq.scales_from_histograms({}, "kl")
    with pytest.raises(ValueError, match=r"names=\['nope'\] are not tensors of the graph"):
        qdq.activation_histograms(proto, ["nope"], [x])
