"""The kernel benchmark's Python side: the models, and the peers' timings.

  kernels.py make DIR                 writes DIR/<row>.<size>.onnx for every row and size,
                                      and DIR/rows.json (name, size, shape, bytes moved)
  kernels.py peers DIR THREADS SECS   times every model in onnxruntime (all graph
                                      optimizations) and OpenVINO (CPU, f32, latency
                                      hint), THREADS threads each; prints one JSON line
                                      per model
  kernels.py copy BYTES THREADS SECS  a plain copy of BYTES bytes (numpy), for the
                                      bandwidth a memory-bound loop can reach

Rows are single ops and the short chains exporters emit, each at an L2-resident size
and a DRAM size, with odd lengths so no loop is a multiple of any vector width; then
convolutions and matrix products at the shapes of real models (size "model").
Inputs are standard normal (seed 1); weights (bias, scale, filters, matrices) random.
"""
import json
import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

import peer_time  # benches/: the peers' runners and the timing loop

OPSET = 17
RNG = np.random.default_rng(7)

# (rows, columns) of the row-shaped kernels, and (N, C, H, W) of the image-shaped ones
FLAT = {"l2": (63, 1031), "dram": (2053, 4099)}
IMAGE = {"l2": (1, 32, 57, 57), "dram": (8, 64, 113, 113)}
# attention heads: (batch, sequence, heads, head size)
HEADS = {"l2": (1, 127, 8, 64), "dram": (16, 511, 12, 64)}


def const(name, array):
    return numpy_helper.from_array(np.asarray(array, dtype=np.float32), name)


def model(nodes, shape, out_shape=None, inits=()):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, list(shape))
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape or shape))
    graph = helper.make_graph(nodes, "kernel", [x], [y], initializer=list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    m.ir_version = 8
    return m


def unary(op):
    return lambda shape: model([helper.make_node(op, ["x"], ["y"])], shape)


def bias_add(shape):
    b = const("b", RNG.standard_normal(shape[-1]))
    return model([helper.make_node("Add", ["x", "b"], ["y"])], shape, inits=[b])


def silu(shape):
    # x · sigmoid(x), as torch exports nn.SiLU
    return model([helper.make_node("Sigmoid", ["x"], ["s"]), helper.make_node("Mul", ["x", "s"], ["y"])], shape)


def gelu_erf(shape):
    # torch's nn.GELU(): x · ½ · (1 + erf(x / √2))
    nodes = [
        helper.make_node("Div", ["x", "sqrt2"], ["d"]),
        helper.make_node("Erf", ["d"], ["e"]),
        helper.make_node("Add", ["e", "one"], ["p"]),
        helper.make_node("Mul", ["x", "p"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
    ]
    return model(nodes, shape, inits=[const("sqrt2", 1.4142135381698608), const("one", 1.0), const("half", 0.5)])


def gelu_tanh(shape):
    # torch's nn.GELU(approximate="tanh"): ½x(1 + tanh(√(2/π)(x + 0.044715x³)))
    nodes = [
        helper.make_node("Pow", ["x", "three"], ["c"]),
        helper.make_node("Mul", ["c", "k"], ["kc"]),
        helper.make_node("Add", ["x", "kc"], ["s"]),
        helper.make_node("Mul", ["s", "a"], ["t"]),
        helper.make_node("Tanh", ["t"], ["th"]),
        helper.make_node("Add", ["th", "one"], ["p"]),
        helper.make_node("Mul", ["x", "p"], ["m"]),
        helper.make_node("Mul", ["m", "half"], ["y"]),
    ]
    inits = [const("three", 3.0), const("k", 0.044715), const("a", 0.7978845608028654), const("one", 1.0),
             const("half", 0.5)]
    return model(nodes, shape, inits=inits)


def softmax(shape):
    return model([helper.make_node("Softmax", ["x"], ["y"], axis=-1)], shape)


def layer_norm(shape):
    inits = [const("s", RNG.standard_normal(shape[-1])), const("b", RNG.standard_normal(shape[-1]))]
    node = helper.make_node("LayerNormalization", ["x", "s", "b"], ["y"], axis=-1, epsilon=1e-5)
    return model([node], shape, inits=inits)


def reduce_mean(shape):
    return model([helper.make_node("ReduceMean", ["x"], ["y"], axes=[-1], keepdims=1)], shape, (*shape[:-1], 1))


def heads_transpose(shape):
    b, s, h, d = shape
    inits = [numpy_helper.from_array(np.array([b, s, h, d], dtype=np.int64), "split")]
    nodes = [helper.make_node("Reshape", ["x", "split"], ["r"]), helper.make_node("Transpose", ["r"], ["y"], perm=[0, 2, 1, 3])]
    return model(nodes, (b, s, h * d), (b, h, s, d), inits=inits)


def max_pool(shape):
    node = helper.make_node("MaxPool", ["x"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])
    n, c, h, w = shape
    return model([node], shape, (n, c, (h - 1) // 2 + 1, (w - 1) // 2 + 1))


def depthwise(k):
    def build(shape):
        c = shape[1]
        w = const("w", RNG.standard_normal((c, 1, k, k)) / k)
        b = const("b", RNG.standard_normal(c))
        p = k // 2
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], group=c, kernel_shape=[k, k], pads=[p, p, p, p])
        return model([node], shape, inits=[w, b])
    return build


def conv(out_channels, k, stride):
    # a dense convolution with bias, as in ResNet; returns the model and its FLOPs
    def build(shape):
        n, c, h, w = shape
        p = k // 2
        weight = const("w", RNG.standard_normal((out_channels, c, k, k)) / np.sqrt(c * k * k))
        bias = const("b", RNG.standard_normal(out_channels) * 0.1)
        node = helper.make_node("Conv", ["x", "w", "b"], ["y"], kernel_shape=[k, k], strides=[stride, stride],
                                pads=[p, p, p, p])
        ho, wo = (h + 2 * p - k) // stride + 1, (w + 2 * p - k) // stride + 1
        flops = 2 * n * out_channels * ho * wo * c * k * k
        return model([node], shape, (n, out_channels, ho, wo), inits=[weight, bias]), flops
    return build


def linear(columns, epilogue=()):
    # x · W + b over the last axis (a Linear layer), then the epilogue's nodes on "z"
    def build(shape):
        rows, k = int(np.prod(shape[:-1])), shape[-1]
        weight = const("w", RNG.standard_normal((k, columns)) / np.sqrt(k))
        bias = const("b", RNG.standard_normal(columns) * 0.1)
        last = "y" if not epilogue else "z"
        nodes = [helper.make_node("MatMul", ["x", "w"], ["xw"]), helper.make_node("Add", ["xw", "b"], [last])]
        inits = [weight, bias]
        for node, init in epilogue:
            nodes.append(node)
            inits += init
        return model(nodes, shape, (*shape[:-1], columns), inits=inits), 2 * rows * k * columns
    return build


GELU_EPILOGUE = [
    (helper.make_node("Div", ["z", "sqrt2"], ["d"]), [const("sqrt2", 1.4142135381698608)]),
    (helper.make_node("Erf", ["d"], ["e"]), []),
    (helper.make_node("Add", ["e", "one"], ["p"]), [const("one", 1.0)]),
    (helper.make_node("Mul", ["z", "p"], ["m"]), []),
    (helper.make_node("Mul", ["m", "half"], ["y"]), [const("half", 0.5)]),
]


def attention_scores(shape):
    # q · kᵀ over the heads, with q = k = x: [heads, sequence, head size]
    h, s, d = shape
    nodes = [helper.make_node("Transpose", ["x"], ["t"], perm=[0, 2, 1]), helper.make_node("MatMul", ["x", "t"], ["y"])]
    return model(nodes, shape, (h, s, s)), 2 * h * s * s * d


# name, builder, sizes
ROWS = [
    ("relu", unary("Relu"), FLAT),
    ("bias_add", bias_add, FLAT),
    ("exp", unary("Exp"), FLAT),
    ("tanh", unary("Tanh"), FLAT),
    ("sigmoid", unary("Sigmoid"), FLAT),
    ("silu", silu, FLAT),
    ("gelu_erf", gelu_erf, FLAT),
    ("gelu_tanh", gelu_tanh, FLAT),
    ("softmax", softmax, FLAT),
    ("layer_norm", layer_norm, FLAT),
    ("reduce_mean", reduce_mean, FLAT),
    ("heads_transpose", heads_transpose, HEADS),
    ("max_pool_3x3", max_pool, IMAGE),
    ("depthwise_3x3", depthwise(3), IMAGE),
    ("depthwise_5x5", depthwise(5), IMAGE),
    # products and convolutions at the shapes of ResNet-50, BERT, ConvNeXt and an RNN
    # cell (one "model" size each): rated in GFLOP/s
    ("conv_3x3", conv(64, 3, 1), {"model": (1, 64, 56, 56)}),
    ("conv_7x7_s2", conv(64, 7, 2), {"model": (1, 3, 224, 224)}),
    ("conv_3x3_s2", conv(256, 3, 2), {"model": (1, 128, 56, 56)}),
    ("conv_1x1", conv(64, 1, 1), {"model": (1, 256, 56, 56)}),
    ("gemv", linear(4096), {"model": (1, 1024)}),
    ("attention_qk", attention_scores, {"model": (12, 128, 64)}),
    ("linear_gelu", linear(3072, GELU_EPILOGUE), {"model": (128, 768)}),
    ("linear_4d", linear(1536), {"model": (1, 14, 14, 384)}),
]


def make(out):
    os.makedirs(out, exist_ok=True)
    rows = []
    for name, build, sizes in ROWS:
        for size, shape in sizes.items():
            m, flops = build(shape), None
            if isinstance(m, tuple):
                m, flops = m
            onnx.checker.check_model(m)
            path = os.path.join(out, f"{name}.{size}.onnx")
            onnx.save(m, path)
            elements = int(np.prod(shape))
            rows.append({"name": name, "size": size, "shape": list(shape), "elements": elements, "path": path,
                         "flops": flops})
    json.dump(rows, open(os.path.join(out, "rows.json"), "w"), indent=1)


def inputs_for(path):
    m = onnx.load(path)
    shape = [d.dim_value for d in m.graph.input[0].type.tensor_type.shape.dim]
    return np.random.default_rng(1).standard_normal(shape).astype(np.float32)


def peer_ms(engine, path, x, threads, seconds):
    run, _ = peer_time.RUNNERS[engine](path, threads, [x])
    return float(np.median(peer_time.samples(run, seconds)))


def peers(out, threads, seconds):
    import onnxruntime
    import openvino
    for row in json.load(open(os.path.join(out, "rows.json"))):
        x = inputs_for(row["path"])
        line = {"name": row["name"], "size": row["size"], "threads": threads,
                "onnxruntime_ms": peer_ms("onnxruntime", row["path"], x, threads, seconds),
                "openvino_ms": peer_ms("openvino", row["path"], x, threads, seconds),
                "onnxruntime": onnxruntime.__version__, "openvino": openvino.__version__}
        print(json.dumps(line), flush=True)


def copy(nbytes, threads, seconds):
    # numpy's copy is one thread's memcpy; THREADS is recorded, not used
    src = np.random.default_rng(1).standard_normal(nbytes // 4).astype(np.float32)
    dst = np.empty_like(src)
    ms = float(np.median(peer_time.samples(lambda: np.copyto(dst, src), seconds)))
    print(json.dumps({"bytes": nbytes, "copy_ms": ms, "gb_per_s": 2 * nbytes / ms / 1e6}))


if __name__ == "__main__":
    command = sys.argv[1]
    if command == "make":
        make(sys.argv[2])
    elif command == "peers":
        peers(sys.argv[2], int(sys.argv[3]), float(sys.argv[4]))
    elif command == "copy":
        copy(int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
    else:
        sys.exit(f"unknown command {command}")
