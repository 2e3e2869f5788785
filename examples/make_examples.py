"""Generates the bundled example models with the onnx helper API and onnxruntime.

transformer_layer/: one pre-norm transformer encoder layer written the way PyTorch's
exporter writes it at opset 17: LayerNorm decomposed into ReduceMean/Sub/Pow/Sqrt/Div,
GELU in its erf form, Softmax attention, and the head split computed from the input's
shape (Shape -> Gather -> Unsqueeze -> Concat -> Reshape), which saturate folds at import.
Writes model.onnx, input_0.pb (random hidden states) and output_0.pb (computed by
onnxruntime, the reference for `saturate run --expected`).

Run with the project's Python environment:  $(scripts/python-env) examples/make_examples.py
"""

import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

SEQ, HIDDEN, HEADS, FFN = 32, 64, 4, 256
HEAD = HIDDEN // HEADS


class Builder:
    def __init__(self, rng):
        self.rng = rng
        self.nodes, self.inits, self.count = [], [], 0

    def fresh(self, hint):
        self.count += 1
        return f"/{hint}_{self.count}"

    def weight(self, name, shape, scale):
        value = self.rng.normal(0.0, scale, size=shape).astype(np.float32)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def const(self, value, dtype=np.float32):
        name = self.fresh("Constant_output")
        tensor = numpy_helper.from_array(np.array(value, dtype=dtype), name)
        self.nodes.append(helper.make_node("Constant", [], [name], value=tensor))
        return name

    def op(self, op_type, inputs, **attrs):
        out = self.fresh(f"{op_type}_output")
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=out[1:].replace("_output", ""), **attrs))
        return out

    def layer_norm(self, x, prefix):
        gamma = self.weight(f"{prefix}.weight", [HIDDEN], 0.1)
        self.inits[-1] = numpy_helper.from_array(1.0 + numpy_helper.to_array(self.inits[-1]), gamma)
        beta = self.weight(f"{prefix}.bias", [HIDDEN], 0.1)
        mean = self.op("ReduceMean", [x], axes=[-1], keepdims=1)
        centered = self.op("Sub", [x, mean])
        var = self.op("ReduceMean", [self.op("Pow", [centered, self.const(2.0)])], axes=[-1], keepdims=1)
        std = self.op("Sqrt", [self.op("Add", [var, self.const(1e-5)])])
        return self.op("Add", [self.op("Mul", [self.op("Div", [centered, std]), gamma]), beta])

    def linear(self, x, prefix, n_in, n_out):
        w = self.weight(f"{prefix}.weight", [n_in, n_out], 1.0 / np.sqrt(n_in))
        b = self.weight(f"{prefix}.bias", [n_out], 0.02)
        return self.op("Add", [self.op("MatMul", [x, w]), b])

    def dim(self, x, index):
        """Unsqueeze(Gather(Shape(x), index)): one dimension as a 1-element tensor."""
        gathered = self.op("Gather", [self.op("Shape", [x]), self.const(index, np.int64)], axis=0)
        return self.op("Unsqueeze", [gathered, self.const([0], np.int64)])

    def split_heads(self, x, source):
        shape = self.op("Concat", [self.dim(source, 0), self.dim(source, 1), self.const([HEADS], np.int64), self.const([HEAD], np.int64)], axis=0)
        return self.op("Transpose", [self.op("Reshape", [x, shape])], perm=[0, 2, 1, 3])


def transformer_layer(rng):
    b = Builder(rng)
    x = "hidden_states"
    h = b.layer_norm(x, "ln_1")
    q = b.split_heads(b.linear(h, "attn.q", HIDDEN, HIDDEN), x)
    k = b.split_heads(b.linear(h, "attn.k", HIDDEN, HIDDEN), x)
    v = b.split_heads(b.linear(h, "attn.v", HIDDEN, HIDDEN), x)
    scores = b.op("Div", [b.op("MatMul", [q, b.op("Transpose", [k], perm=[0, 1, 3, 2])]), b.const(np.sqrt(HEAD))])
    probs = b.op("Softmax", [scores], axis=-1)
    context = b.op("Transpose", [b.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    merged_shape = b.op("Concat", [b.dim(x, 0), b.dim(x, 1), b.const([HIDDEN], np.int64)], axis=0)
    attn = b.linear(b.op("Reshape", [context, merged_shape]), "attn.out", HIDDEN, HIDDEN)
    x2 = b.op("Add", [x, attn])
    h2 = b.layer_norm(x2, "ln_2")
    up = b.linear(h2, "mlp.fc_in", HIDDEN, FFN)
    gelu = b.op("Mul", [b.op("Mul", [up, b.const(0.5)]), b.op("Add", [b.op("Erf", [b.op("Div", [up, b.const(np.sqrt(2.0))])]), b.const(1.0)])])
    down = b.linear(gelu, "mlp.fc_out", FFN, HIDDEN)
    b.nodes.append(helper.make_node("Add", [x2, down], ["output"], name="Add_residual"))
    graph = helper.make_graph(
        b.nodes,
        "transformer_layer",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, SEQ, HIDDEN])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, SEQ, HIDDEN])],
        b.inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="saturate examples")
    onnx.checker.check_model(model, full_check=True)
    return model


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    rng = np.random.default_rng(2026)
    model = transformer_layer(rng)
    out_dir = os.path.join(here, "transformer_layer")
    os.makedirs(out_dir, exist_ok=True)
    onnx.save(model, os.path.join(out_dir, "model.onnx"))
    x = rng.normal(0.0, 1.0, size=[1, SEQ, HIDDEN]).astype(np.float32)
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"hidden_states": x})
    with open(os.path.join(out_dir, "input_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(x, "hidden_states").SerializeToString())
    with open(os.path.join(out_dir, "output_0.pb"), "wb") as f:
        f.write(numpy_helper.from_array(y, "output").SerializeToString())
    print(f"wrote {out_dir}: {len(model.graph.node)} nodes, {sum(np.prod(i.dims) for i in model.graph.initializer)} parameters")


if __name__ == "__main__":
    main()
