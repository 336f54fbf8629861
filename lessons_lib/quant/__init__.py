"""Quantisation: affine int mapping, calibration thresholds, float formats, aggressive quantisers,
integer-only arithmetic. One module per concept; everything public is re-exported here::

    from lessons_lib import quant
    S, Z = quant.qparams(-1.0, 3.0)                      # affine.py
    T = quant.calibrate(x, "entropy")                    # thresholds.py (TensorRT KL threshold)
    quant.bf16_round(x)                                  # floats.py
    idx, codebook = quant.kmeans_quantize(w, 2)          # aggressive.py
    layer = quant.IntegerConv2d.from_float(...)          # intarith.py
"""
from .affine import (dequantize, dequantize_per_channel, fake_quantize, pow2_scale, qparams, qparams_per_channel,
                     qrange, quant_error, quantize, quantize_per_channel)
from .aggressive import binarize, binarize_reconstruct, kmeans_quantize, log2_quantize
from .thresholds import (METHODS, Histogram, calibrate, expand_candidate, kl_curve, kl_threshold, mse_threshold,
                        percentile_threshold)
from .floats import FORMATS, bf16_round, bf16_truncate, float_bits
from .intarith import IntegerConv2d, multiply_by_quantized_multiplier, quantize_multiplier

__all__ = [
    "qparams", "qparams_per_channel", "qrange", "quantize", "dequantize", "quantize_per_channel",
    "dequantize_per_channel", "fake_quantize", "pow2_scale", "quant_error",
    "Histogram", "calibrate", "kl_curve", "kl_threshold", "expand_candidate", "percentile_threshold",
    "mse_threshold", "METHODS",
    "bf16_round", "bf16_truncate", "float_bits", "FORMATS",
    "kmeans_quantize", "binarize", "binarize_reconstruct", "log2_quantize",
    "IntegerConv2d", "quantize_multiplier", "multiply_by_quantized_multiplier",
]
