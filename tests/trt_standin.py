"""A strict stand-in for the TensorRT 11 Python API, for machines without TensorRT or a GPU (CI, this course).

It is modelled on NVIDIA's TensorRT 11.x Python API reference and migration guide, not on the call order of
``lessons_lib.deploy.tensorrt``, and it refuses what real TensorRT refuses:

* ``Builder.create_network(flags)``: only ``0`` (11.x networks are always strongly typed;
  ``NetworkDefinitionCreationFlag.EXPLICIT_BATCH`` no longer exists, ``STRONGLY_TYPED`` is ignored).
* APIs removed in 11.x do not exist: ``BuilderFlag.FP16 / INT8``, ``IBuilderConfig.int8_calibrator``,
  ``Builder.platform_has_fast_fp16``. Objects have fixed attributes, so setting a removed one fails too.
* ``OnnxParser.parse`` really reads the ONNX file; a symbolic dimension becomes ``-1`` in the network input.
* ``IBuilderConfig.add_optimization_profile`` returns ``-1`` for an invalid profile (not ``min <= opt <= max``,
  ranks that differ).
* ``Builder.build_serialized_network`` returns ``None`` (and logs why) when an input has a dynamic dimension
  and no profile gives it a range ("Network has dynamic or shape inputs, but no optimization profile has
  been defined"), or when a profile's shape does not fit the input (rank, static dimensions, unknown name).
* ``IExecutionContext.set_input_shape`` returns ``False`` outside the profile's ``[min, max]``;
  ``execute_async_v3`` returns ``False`` unless every input shape and every I/O address is set.

The engine really computes: ``execute_async_v3`` runs the parsed ONNX with onnxruntime on the memory behind
the addresses (host memory here, device memory for real TensorRT), so outputs can be compared.
"""
from __future__ import annotations

import base64
import ctypes
import enum
import json
import types

import numpy as np
import onnx

_ONNX_TO_TRT = {onnx.TensorProto.FLOAT: "FLOAT", onnx.TensorProto.FLOAT16: "HALF", onnx.TensorProto.INT8: "INT8",
                onnx.TensorProto.INT32: "INT32", onnx.TensorProto.INT64: "INT64", onnx.TensorProto.BOOL: "BOOL"}
_NP = {"FLOAT": np.float32, "HALF": np.float16, "INT8": np.int8, "INT32": np.int32, "INT64": np.int64,
       "BOOL": np.bool_}
MAGIC = "standin-trt-plan-v1"


class DataType(enum.Enum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    INT64 = 8


class TensorIOMode(enum.Enum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class Logger:
    __slots__ = ("min_severity", "messages")
    INTERNAL_ERROR, ERROR, WARNING, INFO, VERBOSE = range(5)

    def __init__(self, min_severity=1):
        self.min_severity = min_severity
        self.messages: list[str] = []

    def log(self, severity, msg):
        self.messages.append(msg)


def _dims(shape) -> tuple[int, ...]:
    if not isinstance(shape, (tuple, list)) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
        raise TypeError(f"Dims must be a tuple of ints, got {shape!r}")
    return tuple(shape)


class ITensor:
    __slots__ = ("name", "shape", "dtype")

    def __init__(self, name, shape, dtype):
        self.name, self.shape, self.dtype = name, shape, dtype


class INetworkDefinition:
    __slots__ = ("_inputs", "_outputs", "_model")

    def __init__(self):
        self._inputs: list[ITensor] = []
        self._outputs: list[ITensor] = []
        self._model: bytes | None = None

    @property
    def num_inputs(self):
        return len(self._inputs)

    @property
    def num_outputs(self):
        return len(self._outputs)

    def get_input(self, index):
        return self._inputs[index]

    def get_output(self, index):
        return self._outputs[index]


class OnnxParser:
    __slots__ = ("_network", "_errors")

    def __init__(self, network, logger):
        if not isinstance(network, INetworkDefinition):
            raise TypeError("OnnxParser(network, logger): network must be an INetworkDefinition")
        self._network, self._errors = network, []

    @property
    def num_errors(self):
        return len(self._errors)

    def get_error(self, index):
        return self._errors[index]

    def parse(self, model, path=None):
        try:
            proto = onnx.load_from_string(bytes(model))
            onnx.checker.check_model(proto)
        except Exception as err:  # noqa: BLE001 - the parser reports, it does not raise
            self._errors.append(f"ModelImporter: failed to parse the ONNX model ({type(err).__name__})")
            return False
        inits = {i.name for i in proto.graph.initializer}

        def tensor(vi):
            t = vi.type.tensor_type
            shape = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in t.shape.dim)
            return ITensor(vi.name, shape, DataType[_ONNX_TO_TRT[t.elem_type]])

        self._network._inputs = [tensor(vi) for vi in proto.graph.input if vi.name not in inits]
        self._network._outputs = [tensor(vi) for vi in proto.graph.output]
        self._network._model = proto.SerializeToString()
        return True


class IOptimizationProfile:
    __slots__ = ("_shapes",)

    def __init__(self):
        self._shapes: dict[str, tuple[tuple, tuple, tuple]] = {}

    def set_shape(self, input, min, opt, max):  # noqa: A002 - TensorRT's own parameter names
        self._shapes[input] = (_dims(min), _dims(opt), _dims(max))

    def get_shape(self, input):  # noqa: A002
        return [list(s) for s in self._shapes.get(input, ((), (), ()))]

    def _valid(self) -> bool:
        for lo, opt, hi in self._shapes.values():
            if not (len(lo) == len(opt) == len(hi)) or any(d < 0 for d in lo):
                return False
            if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
                return False
        return bool(self._shapes)


class ITimingCache:
    __slots__ = ("_data",)

    def __init__(self, data: bytes):
        self._data = data

    def serialize(self):
        return memoryview(b"standin-timing-cache:" + self._data[:16])


class IBuilderConfig:
    __slots__ = ("profiling_verbosity", "_pools", "_profiles", "_cache")

    def __init__(self):
        self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
        self._pools: dict = {}
        self._profiles: list[IOptimizationProfile] = []
        self._cache: ITimingCache | None = None

    def set_memory_pool_limit(self, pool, pool_size):
        if not isinstance(pool_size, int) or pool_size < 0:
            raise TypeError("set_memory_pool_limit(pool, pool_size: int)")
        self._pools[pool] = pool_size

    def add_optimization_profile(self, profile):
        if not isinstance(profile, IOptimizationProfile) or not profile._valid():
            return -1
        self._profiles.append(profile)
        return len(self._profiles) - 1

    @property
    def num_optimization_profiles(self):
        return len(self._profiles)

    def create_timing_cache(self, serialized_timing_cache):
        return ITimingCache(bytes(serialized_timing_cache))

    def set_timing_cache(self, cache, ignore_mismatch):
        if not isinstance(cache, ITimingCache) or not isinstance(ignore_mismatch, bool):
            raise TypeError("set_timing_cache(cache: ITimingCache, ignore_mismatch: bool)")
        self._cache = cache
        return True

    def get_timing_cache(self):
        return self._cache


class Builder:
    __slots__ = ("_logger",)

    def __init__(self, logger):
        self._logger = logger

    def create_network(self, flags=0):
        if flags != 0:
            raise TypeError(f"create_network(flags={flags!r}): TensorRT 11 networks are always strongly typed")
        return INetworkDefinition()

    def create_builder_config(self):
        return IBuilderConfig()

    def create_optimization_profile(self):
        return IOptimizationProfile()

    def _error(self, msg):
        self._logger.log(Logger.ERROR, msg)
        return None

    def build_serialized_network(self, network, config):
        if network._model is None:
            return self._error("network has no layers (was the ONNX parsed?)")
        dynamic = [t for t in network._inputs if -1 in t.shape]
        if dynamic and not config._profiles:
            return self._error("Error Code 4: Network has dynamic or shape inputs, but no optimization profile "
                               "has been defined.")
        inputs = {t.name: t for t in network._inputs}
        for p in config._profiles:
            unknown = set(p._shapes) - set(inputs)
            if unknown:
                return self._error(f"optimization profile names unknown inputs {sorted(unknown)}")
            for t in dynamic:
                if t.name not in p._shapes:
                    return self._error(f"Error Code 4: input {t.name} has a dynamic dimension but no shape in "
                                       "the optimization profile")
            for name, shapes in p._shapes.items():
                for s in shapes:
                    fixed = inputs[name].shape
                    if len(s) != len(fixed) or any(f != -1 and f != d for f, d in zip(fixed, s)):
                        return self._error(f"profile shape {s} does not match input {name} of shape {fixed}")
        plan = {"magic": MAGIC, "onnx": base64.b64encode(network._model).decode(),
                "inputs": [[t.name, list(t.shape), t.dtype.name] for t in network._inputs],
                "outputs": [[t.name, list(t.shape), t.dtype.name] for t in network._outputs],
                "profiles": [{k: [list(x) for x in v] for k, v in p._shapes.items()} for p in config._profiles],
                "verbosity": str(config.profiling_verbosity)}
        return memoryview(json.dumps(plan).encode())


class Runtime:
    __slots__ = ("_logger",)

    def __init__(self, logger):
        self._logger = logger

    def deserialize_cuda_engine(self, serialized_engine):
        try:
            plan = json.loads(bytes(serialized_engine))
        except ValueError:
            return None
        return ICudaEngine(plan) if plan.get("magic") == MAGIC else None


class ICudaEngine:
    __slots__ = ("_plan", "_io", "_model")

    def __init__(self, plan):
        self._plan = plan
        self._io = ([(n, tuple(s), d, TensorIOMode.INPUT) for n, s, d in plan["inputs"]]
                    + [(n, tuple(s), d, TensorIOMode.OUTPUT) for n, s, d in plan["outputs"]])
        self._model = base64.b64decode(plan["onnx"])

    @property
    def num_io_tensors(self):
        return len(self._io)

    @property
    def num_optimization_profiles(self):
        return max(1, len(self._plan["profiles"]))

    def _entry(self, name):
        for e in self._io:
            if e[0] == name:
                return e
        raise KeyError(name)

    def get_tensor_name(self, index):
        return self._io[index][0]

    def get_tensor_mode(self, name):
        return self._entry(name)[3]

    def get_tensor_dtype(self, name):
        return DataType[self._entry(name)[2]]

    def get_tensor_shape(self, name):
        return self._entry(name)[1]

    def get_tensor_profile_shape(self, name, profile_index):
        profiles = self._plan["profiles"]
        if not profiles or name not in profiles[profile_index]:
            shape = list(self._entry(name)[1])
            return [shape, shape, shape]
        return profiles[profile_index][name]

    def create_execution_context(self):
        return IExecutionContext(self)

    def create_engine_inspector(self):
        return EngineInspector(self)


class IExecutionContext:
    __slots__ = ("_engine", "_shapes", "_addr", "_session", "calls")

    def __init__(self, engine):
        self._engine, self._shapes, self._addr, self._session = engine, {}, {}, None
        self.calls: list[str] = []

    def set_input_shape(self, name, shape):
        self.calls.append("set_input_shape")
        try:
            _, fixed, _, mode = self._engine._entry(name)
        except KeyError:
            return False
        shape = _dims(tuple(shape))
        lo, _, hi = self._engine.get_tensor_profile_shape(name, 0)
        if mode != TensorIOMode.INPUT or len(shape) != len(fixed):
            return False
        if not all(a <= d <= b for a, d, b in zip(lo, shape, hi)):
            return False
        self._shapes[name] = shape
        return True

    def _sess(self):
        if self._session is None:
            import onnxruntime as ort

            self._session = ort.InferenceSession(self._engine._model, providers=["CPUExecutionProvider"])
        return self._session

    def _feeds(self, read=True):
        feeds = {}
        for n, fixed, d, mode in self._engine._io:
            if mode == TensorIOMode.INPUT:
                shape = self._shapes[n]
                feeds[n] = (_read(self._addr[n], shape, _NP[d]) if read else np.zeros(shape, _NP[d]))
        return feeds

    def get_tensor_shape(self, name):
        _, fixed, _, mode = self._engine._entry(name)
        if mode == TensorIOMode.INPUT:
            return self._shapes.get(name, fixed)
        if any(n not in self._shapes for n, _, _, m in self._engine._io if m == TensorIOMode.INPUT):
            return fixed  # -1 until every input shape is set
        outs = self._sess().run([name], self._feeds(read=False))
        return tuple(outs[0].shape)

    def set_tensor_address(self, name, memory):
        self.calls.append("set_tensor_address")
        self._engine._entry(name)
        if not isinstance(memory, int) or memory == 0:
            return False
        self._addr[name] = memory
        return True

    def execute_async_v3(self, stream_handle):
        self.calls.append("execute_async_v3")
        if not isinstance(stream_handle, int):
            raise TypeError("execute_async_v3(stream_handle: int)")
        io = self._engine._io
        if any(n not in self._shapes for n, _, _, m in io if m == TensorIOMode.INPUT):
            return False
        if any(n not in self._addr for n, *_ in io):
            return False
        names = [n for n, _, _, m in io if m == TensorIOMode.OUTPUT]
        for n, value in zip(names, self._sess().run(names, self._feeds())):
            dst = _read(self._addr[n], value.shape, value.dtype)
            dst[...] = value
        return True


def _read(address: int, shape, dtype) -> np.ndarray:
    """A writable NumPy view of ``prod(shape)`` values of ``dtype`` at ``address`` (host memory)."""
    n = int(np.prod(shape)) * np.dtype(dtype).itemsize
    buf = (ctypes.c_byte * n).from_address(address)
    return np.frombuffer(buf, dtype=dtype).reshape(shape)


class EngineInspector:
    __slots__ = ("_engine", "execution_context", "error_recorder")

    def __init__(self, engine):
        self._engine, self.execution_context, self.error_recorder = engine, None, None

    def get_engine_information(self, format):  # noqa: A002
        """Conv followed by Relu is listed as one fused layer ("a + b"), as TensorRT names fusions."""
        nodes = list(onnx.load_from_string(self._engine._model).graph.node)
        layers, i = [], 0
        while i < len(nodes):
            n = nodes[i]
            if n.op_type == "Conv" and i + 1 < len(nodes) and nodes[i + 1].op_type == "Relu":
                layers.append({"Name": f"{n.name} + {nodes[i + 1].name}", "LayerType": "CaskConvolution"})
                i += 2
            else:
                layers.append(n.name)
                i += 1
        return json.dumps({"Layers": layers, "I/O Tensors": [e[0] for e in self._engine._io]})


ProfilingVerbosity = types.SimpleNamespace(LAYER_NAMES_ONLY="LAYER_NAMES_ONLY", DETAILED="DETAILED", NONE="NONE")
MemoryPoolType = types.SimpleNamespace(WORKSPACE="WORKSPACE")
LayerInformationFormat = types.SimpleNamespace(ONELINE="ONELINE", JSON="JSON")
# 11.x: FP16 / INT8 / ... builder flags are gone (no attribute), as is EXPLICIT_BATCH
BuilderFlag = types.SimpleNamespace(DEBUG="DEBUG", REFIT="REFIT", SPARSE_WEIGHTS="SPARSE_WEIGHTS")
NetworkDefinitionCreationFlag = types.SimpleNamespace(STRONGLY_TYPED=1)


def module(version: str = "11.4.0") -> types.ModuleType:
    """The stand-in as a module object (pass it as ``trt=``)."""
    mod = types.ModuleType("tensorrt")
    for name in ("Logger", "Builder", "Runtime", "OnnxParser", "DataType", "TensorIOMode", "ProfilingVerbosity",
                 "MemoryPoolType", "LayerInformationFormat", "BuilderFlag", "NetworkDefinitionCreationFlag",
                 "IOptimizationProfile", "ICudaEngine", "IExecutionContext"):
        setattr(mod, name, globals()[name])
    mod.__version__ = version
    return mod
