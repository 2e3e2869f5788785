"""Exports the PyTorch model suite to ONNX, as users do, with onnxruntime's outputs.

Each model is built from its architecture with random weights (configs only; nothing is
downloaded from a model hub) and exported with both of torch's exporters (the dynamo one,
`torch.onnx.export(..., dynamo=True)`, and the TorchScript one) once with static shapes
and once with a dynamic batch axis (vision) or dynamic batch and sequence axes (text).
Each export is a folder in the layout of the ONNX backend tests:

    <out>/<model>.<dynamo|torchscript>.<static|dynamic>/
        model.onnx
        test_data_set_0/input_K.pb, output_K.pb    (onnxruntime's outputs)

A dynamic export is exported at one binding and tested at another (batch 2 → 3,
sequence 8 → 6), so the test proves the symbolic dims are bound, not baked in.
Small exports have torch's per-node debugging metadata stripped (nothing else is changed).
`<out>/suite.json` lists every export: nodes, ops, file size, torch-vs-onnxruntime
difference, and the exports torch itself failed on, with torch's error.

Sizes: `small` (few layers, narrow: the committed test data) and `full` (the
architectures' published sizes, for the benchmarks; hundreds of MB, never committed).

Usage: export_pytorch.py --size small|full --out DIR [--only NAME ...] [--exporter E]
"""

import argparse
import contextlib
import inspect
import itertools
import json
import os
import shutil
import sys
import time
import traceback
import warnings

import numpy as np
import onnx
import onnxruntime as ort
import torch
import torchvision
from onnx import numpy_helper
from torch import nn

NUM_CLASSES = 10
SEED = 20261202


# -- narrowing fixed-width torchvision CNNs -------------------------------------------


@contextlib.contextmanager
def narrowed(k):
    """Builds torchvision's fixed-width CNNs (ResNet, GoogLeNet, SqueezeNet, DenseNet…)
    with every channel count divided by `k`: the same graph, k² fewer weights. Counts of
    3 or less (RGB input) are kept; groups shrink with the channels (depthwise stays
    depthwise). The rule depends on the count alone, so the two ends of every edge still
    agree; the model is built for k·NUM_CLASSES classes, which the rule divides back."""
    if k == 1:
        yield
        return
    originals = {cls: cls.__init__ for cls in (nn.Conv2d, nn.BatchNorm2d, nn.Linear)}

    def c(n):
        return n if n <= 3 else max(1, n // k)

    def wrap(cls, adjust):
        sig = inspect.signature(originals[cls])

        def init(self, *args, **kwargs):
            bound = sig.bind(self, *args, **kwargs)
            bound.apply_defaults()
            adjust(bound.arguments)
            originals[cls](**bound.arguments)

        cls.__init__ = init

    def conv(a):
        i, o, g = a["in_channels"], a["out_channels"], a["groups"]
        a["in_channels"], a["out_channels"] = c(i), c(o)
        if g == i and g > 1:
            a["groups"] = a["in_channels"]
        elif g > 1:
            g = max(1, g // k)
            while a["in_channels"] % g or a["out_channels"] % g:
                g -= 1
            a["groups"] = g

    def bn(a):
        a["num_features"] = c(a["num_features"])

    def linear(a):
        a["in_features"], a["out_features"] = c(a["in_features"]), c(a["out_features"])

    wrap(nn.Conv2d, conv)
    wrap(nn.BatchNorm2d, bn)
    wrap(nn.Linear, linear)
    try:
        yield
    finally:
        for cls, init in originals.items():
            cls.__init__ = init


# -- the suite ------------------------------------------------------------------------


def vision(name, build_small, build_full, image_small=64, image_full=224, narrow=1):
    """A torchvision model: its builders take the number of classes."""
    return {
        "name": name,
        "kind": "vision",
        "small": lambda: build_with(build_small, narrow),
        "full": lambda: build_full(NUM_CLASSES),
        "image": {"small": image_small, "full": image_full},
    }


def build_with(build, narrow):
    # k times the classes, which narrowing divides back
    with narrowed(narrow):
        return build(NUM_CLASSES * narrow)


def torchvision_models():
    m = torchvision.models
    from torchvision.models.convnext import CNBlockConfig, ConvNeXt
    from torchvision.models.densenet import DenseNet
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
    from torchvision.models.shufflenetv2 import ShuffleNetV2
    from torchvision.models.swin_transformer import (
        PatchMergingV2,
        SwinTransformer,
        SwinTransformerBlockV2,
    )
    from torchvision.models.vision_transformer import VisionTransformer

    convnext_small = [CNBlockConfig(8, 16, 1), CNBlockConfig(16, 32, 1), CNBlockConfig(32, 64, 1), CNBlockConfig(64, None, 1)]

    def swin(v2=False):
        extra = {"block": SwinTransformerBlockV2, "downsample_layer": PatchMergingV2} if v2 else {}
        return lambda n: SwinTransformer(
            patch_size=[4, 4], embed_dim=8, depths=[2, 2, 2], num_heads=[1, 1, 2], window_size=[4, 4],
            stochastic_depth_prob=0.0, num_classes=n, **extra,
        )

    return [
        vision("resnet18", lambda n: ResNet(BasicBlock, [1, 1, 1, 1], num_classes=n), lambda n: m.resnet18(num_classes=n), narrow=8),
        vision("resnet50", lambda n: ResNet(Bottleneck, [1, 1, 1, 1], num_classes=n), lambda n: m.resnet50(num_classes=n), narrow=16),
        vision("wide_resnet50_2", lambda n: ResNet(Bottleneck, [1, 1, 1, 1], width_per_group=128, num_classes=n),
               lambda n: m.wide_resnet50_2(num_classes=n), narrow=16),
        vision("resnext50_32x4d", lambda n: ResNet(Bottleneck, [1, 1, 1, 1], groups=32, width_per_group=4, num_classes=n),
               lambda n: m.resnext50_32x4d(num_classes=n), narrow=16),
        vision("mobilenet_v2", lambda n: m.mobilenet_v2(num_classes=n), lambda n: m.mobilenet_v2(num_classes=n), narrow=8),
        vision("mobilenet_v3_small", lambda n: m.mobilenet_v3_small(num_classes=n), lambda n: m.mobilenet_v3_small(num_classes=n), narrow=8),
        vision("mobilenet_v3_large", lambda n: m.mobilenet_v3_large(num_classes=n), lambda n: m.mobilenet_v3_large(num_classes=n), narrow=8),
        vision("efficientnet_b0", lambda n: m.efficientnet_b0(num_classes=n), lambda n: m.efficientnet_b0(num_classes=n), narrow=8),
        vision("efficientnet_v2_s", lambda n: m.efficientnet_v2_s(num_classes=n), lambda n: m.efficientnet_v2_s(num_classes=n), narrow=16),
        vision("regnet_x_400mf", lambda n: m.regnet_x_400mf(num_classes=n), lambda n: m.regnet_x_400mf(num_classes=n), narrow=16),
        vision("regnet_y_400mf", lambda n: m.regnet_y_400mf(num_classes=n), lambda n: m.regnet_y_400mf(num_classes=n), narrow=16),
        vision("convnext_tiny", lambda n: ConvNeXt(convnext_small, num_classes=n), lambda n: m.convnext_tiny(num_classes=n)),
        vision("densenet121", lambda n: DenseNet(32, (2, 2, 2, 2), 64, num_classes=n), lambda n: m.densenet121(num_classes=n), narrow=8),
        vision("shufflenet_v2_x1_0", lambda n: ShuffleNetV2([2, 2, 2], [8, 16, 32, 64, 128], num_classes=n),
               lambda n: m.shufflenet_v2_x1_0(num_classes=n)),
        vision("squeezenet1_1", lambda n: m.squeezenet1_1(num_classes=n), lambda n: m.squeezenet1_1(num_classes=n), narrow=8),
        vision("googlenet", lambda n: m.googlenet(num_classes=n, aux_logits=False, init_weights=True),
               lambda n: m.googlenet(num_classes=n, aux_logits=False, init_weights=True), narrow=8),
        vision("mnasnet1_0", lambda n: m.mnasnet1_0(num_classes=n), lambda n: m.mnasnet1_0(num_classes=n), narrow=8),
        vision("vit_b_16", lambda n: VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32,
                                                    mlp_dim=64, num_classes=n),
               lambda n: m.vit_b_16(num_classes=n), image_small=32),
        vision("swin_t", swin(), lambda n: m.swin_t(num_classes=n)),
        vision("swin_v2_t", swin(v2=True), lambda n: m.swin_v2_t(num_classes=n), image_full=256),
    ]


def text(name, build_small, build_full, inputs=("input_ids", "attention_mask")):
    return {"name": name, "kind": "text", "small": build_small, "full": build_full, "inputs": list(inputs)}


class LastHiddenState(nn.Module):
    """A transformers model as a module of plain tensors: its last hidden state."""

    def __init__(self, model, inputs):
        super().__init__()
        self.model, self.inputs = model, inputs

    def forward(self, first, second=None):
        args = [first] if second is None else [first, second]
        out = self.model(**dict(zip(self.inputs, args)))
        return out.last_hidden_state


def transformers_models():
    import transformers as t

    small = dict(vocab_size=128, max_position_embeddings=64)

    def hf(config_class, model_class, small_config, full_config, inputs=("input_ids", "attention_mask")):
        def build(cfg):
            config = config_class(**cfg)
            return LastHiddenState(model_class(config), list(inputs))

        return lambda: build(small_config), lambda: build(full_config)

    bert = hf(t.BertConfig, t.BertModel,
              dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, **small), {})
    distilbert = hf(t.DistilBertConfig, t.DistilBertModel,
                    dict(dim=32, n_layers=2, n_heads=2, hidden_dim=64, **small), {})
    gpt2 = hf(t.GPT2Config, t.GPT2Model,
              dict(n_embd=32, n_layer=2, n_head=2, vocab_size=128, n_positions=64, use_cache=False), dict(use_cache=False))
    vit = hf(t.ViTConfig, t.ViTModel,
             dict(image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                  intermediate_size=64), {}, inputs=("pixel_values",))
    t5 = hf(t.T5Config, t.T5EncoderModel,
            dict(vocab_size=128, d_model=32, d_kv=16, d_ff=64, num_layers=2, num_heads=2),
            dict(d_model=512, d_kv=64, d_ff=2048, num_layers=6, num_heads=8))
    llama = hf(t.LlamaConfig, t.LlamaModel,
               dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, use_cache=False, **small),
               dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                    num_key_value_heads=4, vocab_size=32000, max_position_embeddings=2048, use_cache=False))
    bart = hf(t.BartConfig, lambda c: t.BartModel(c).get_encoder(),
              dict(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=2, decoder_attention_heads=2,
                   encoder_ffn_dim=64, decoder_ffn_dim=64, **small), {})
    return [
        text("bert", *bert),
        text("distilbert", *distilbert),
        text("gpt2", *gpt2),
        text("vit_hf", *vit, inputs=("pixel_values",)),
        text("t5_encoder", *t5),
        text("llama", *llama),
        text("bart_encoder", *bart),
    ]


def randomize(model, generator):
    """Weights that keep a narrow random CNN's activations of order one, layer after
    layer (torchvision's inits assume trained weights will follow: its classifiers start
    at N(0, 0.01), ConvNeXt's layer scales at 1e-6, batch norms at the identity, which
    leaves outputs near 1e-10 where every comparison passes): He-normal convolutions and
    products, batch norms with spread statistics, other parameters drawn around their
    role's usual values."""
    def normal(t, std, mean=0.0):
        with torch.no_grad():
            t.copy_(torch.randn(t.shape, generator=generator) * std + mean)

    def uniform(t, lo, hi):
        with torch.no_grad():
            t.copy_(torch.rand(t.shape, generator=generator) * (hi - lo) + lo)

    for module in model.modules():
        own = dict(module.named_parameters(recurse=False))
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            fan_in = module.weight[0].numel()
            normal(module.weight, (2.0 / fan_in) ** 0.5)
            if module.bias is not None:
                normal(module.bias, 0.1)
        elif isinstance(module, nn.BatchNorm2d):
            uniform(module.weight, 0.5, 1.5)
            normal(module.bias, 0.2)
            normal(module.running_mean, 0.2)
            uniform(module.running_var, 0.5, 1.5)
        elif isinstance(module, (nn.LayerNorm, nn.GroupNorm)):
            if module.weight is not None:
                uniform(module.weight, 0.5, 1.5)
                normal(module.bias, 0.2)
        else:
            for p in own.values():
                uniform(p, 0.5, 1.5) if "scale" in p.__class__.__name__.lower() else normal(p, 0.5)
    return model


def calibrate(model, x):
    """Scales each batch norm, in order, so that its output has unit spread on `x`: with
    random weights a deep residual net's activations otherwise grow block after block
    (EfficientNet-V2's logits reach 1e5, where f32's rounding in any summation order is
    0.2 % of the output)."""
    for bn in [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]:
        seen = {}

        def measure(module, args, output):
            seen.setdefault("std", float(output.std()))  # returns None: the output stays

        hook = bn.register_forward_hook(measure)
        with torch.no_grad():
            model(x)
        hook.remove()
        if seen.get("std", 0) > 0:
            with torch.no_grad():
                bn.weight /= seen["std"]
                bn.bias /= seen["std"]


# -- inputs ---------------------------------------------------------------------------


def example_inputs(spec, size, batch, seq, rng):
    """The model's inputs at one binding of its dims, and their dynamic axes."""
    if spec["kind"] == "vision" or spec["inputs"] == ["pixel_values"]:
        image = spec.get("image", {"small": 32, "full": 224})[size]
        x = rng.standard_normal((batch, 3, image, image)).astype(np.float32)
        name = spec["inputs"][0] if spec["kind"] == "text" else "image"
        return [(name, x)], {name: {0: "batch"}}
    vocab = 128 if size == "small" else 1000
    ids = rng.integers(0, vocab, size=(batch, seq)).astype(np.int64)
    mask = np.ones((batch, seq), dtype=np.int64)
    mask[-1, seq - 2:] = 0  # a padded sequence, so the mask matters
    values = {"input_ids": ids, "attention_mask": mask}
    named = [(n, values[n]) for n in spec["inputs"]]
    return named, {n: {0: "batch", 1: "sequence"} for n, _ in named}


# -- export ---------------------------------------------------------------------------


def export(model, inputs, axes, path, exporter, dynamic):
    names = [n for n, _ in inputs]
    args = tuple(torch.from_numpy(v) for _, v in inputs)
    if exporter == "dynamo":
        kwargs = {}
        if dynamic:
            dims = {}
            shapes = []
            for n, _ in inputs:
                shapes.append({axis: dims.setdefault(d, torch.export.Dim(d, min=1, max=4096)) for axis, d in axes[n].items()})
            kwargs["dynamic_shapes"] = tuple(shapes)
        program = torch.onnx.export(model, args, dynamo=True, input_names=names, output_names=["output"], **kwargs)
        program.save(str(path))
    else:
        output_axes = next(iter(axes.values())) if spec_is_text(axes) else {0: "batch"}
        kwargs = {"dynamic_axes": {**axes, "output": output_axes}} if dynamic else {}
        torch.onnx.export(model, args, str(path), dynamo=False, input_names=names, output_names=["output"],
                          opset_version=17, **kwargs)


def strip_metadata(path):
    """Drops what torch writes beside the graph for debugging (the dynamo exporter's
    per-node stack traces and namespaces, half of a small export's bytes); nodes,
    weights and shapes stay as exported."""
    model = onnx.load(str(path))
    for node in model.graph.node:
        del node.metadata_props[:]
        node.doc_string = ""
    onnx.save(model, str(path))


def spec_is_text(axes):
    return any(1 in a for a in axes.values())


def write_tensor(array, name, path):
    t = numpy_helper.from_array(array, name)
    path.write_bytes(t.SerializeToString())


def export_name(spec, exporter, dynamic, precision):
    half = ".f16" if precision == "float16" else ""
    return f"{spec['name']}{half}.{exporter}.{'dynamic' if dynamic else 'static'}"


def to_precision(inputs, precision):
    """Float inputs in the export's precision (token ids stay int64)."""
    if precision != "float16":
        return inputs
    return [(n, v.astype(np.float16) if v.dtype == np.float32 else v) for n, v in inputs]


def one_export(spec, size, exporter, dynamic, out_dir, rng, precision="float32"):
    from pathlib import Path

    name = export_name(spec, exporter, dynamic, precision)
    folder = Path(out_dir) / name
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "test_data_set_0").mkdir(parents=True)
    torch.manual_seed(SEED)
    model = spec[size]()
    inputs, axes = example_inputs(spec, size, 2 if dynamic else 1, 8, np.random.default_rng(SEED))
    model = model.eval()
    if spec["kind"] == "vision":
        randomize(model, torch.Generator().manual_seed(SEED))
        calibrate(model, torch.from_numpy(inputs[0][1]))
    if precision == "float16":
        # weights, activations and float inputs in half precision, as `model.half()`
        # exports are
        model = model.half()
        inputs = to_precision(inputs, precision)
    started = time.time()
    # the TorchScript exporter not under no_grad: there torch's MultiheadAttention takes
    # a fast path that it cannot export; the dynamo exporter under it (T5's attention
    # does not decompose otherwise)
    grad = torch.no_grad() if exporter == "dynamo" else contextlib.nullcontext()
    with grad, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        export(model, inputs, axes, folder / "model.onnx", exporter, dynamic)
    seconds = time.time() - started
    if size == "small":
        strip_metadata(folder / "model.onnx")
    # a dynamic export is tested at another binding than it was exported at
    test_inputs, _ = example_inputs(spec, size, 3 if dynamic else 1, 6 if dynamic else 8, rng)
    test_inputs = to_precision(test_inputs, precision)
    session = ort.InferenceSession(str(folder / "model.onnx"), providers=["CPUExecutionProvider"])
    feeds = {n: v for n, v in test_inputs}
    wanted = {i.name for i in session.get_inputs()}
    feeds = {n: v for n, v in feeds.items() if n in wanted}
    outputs = session.run(None, feeds)
    with torch.no_grad():
        reference = model(*[torch.from_numpy(v) for _, v in test_inputs])
    diff = float(np.max(np.abs(outputs[0].astype(np.float64) - reference.numpy().astype(np.float64)))) if outputs[0].size else 0.0
    for k, (n, v) in enumerate((n, v) for n, v in test_inputs if n in wanted):
        write_tensor(v, n, folder / "test_data_set_0" / f"input_{k}.pb")
    for k, (o, v) in enumerate(zip(session.get_outputs(), outputs)):
        write_tensor(v, o.name, folder / "test_data_set_0" / f"output_{k}.pb")
    proto = onnx.load(str(folder / "model.onnx"), load_external_data=False)
    ops = sorted({n.op_type for n in proto.graph.node})
    return {
        "name": name,
        "model": spec["name"],
        "exporter": exporter,
        "dynamic": dynamic,
        "precision": precision,
        "nodes": len(proto.graph.node),
        "ops": ops,
        "bytes": (folder / "model.onnx").stat().st_size,
        "export_seconds": round(seconds, 1),
        "torch_vs_onnxruntime": diff,
        "output_max_abs": float(np.max(np.abs(outputs[0]))) if outputs[0].size else 0.0,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=["small", "full"], default="small")
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", nargs="*", help="model names (default: all)")
    ap.add_argument("--exporter", choices=["dynamo", "torchscript"], nargs="*", default=["dynamo", "torchscript"])
    ap.add_argument("--shapes", choices=["static", "dynamic"], nargs="*", default=["static", "dynamic"])
    ap.add_argument("--precision", choices=["float32", "float16"], nargs="*", default=["float32"],
                    help="float16: the model and its float inputs in half precision (model.half())")
    a = ap.parse_args()
    torch.set_num_threads(max(1, os.cpu_count() or 1))
    specs = torchvision_models() + transformers_models()
    if a.only:
        unknown = set(a.only) - {s["name"] for s in specs}
        if unknown:
            sys.exit(f"unknown models {sorted(unknown)}; the suite has {[s['name'] for s in specs]}")
        specs = [s for s in specs if s["name"] in a.only]
    os.makedirs(a.out, exist_ok=True)
    manifest_path = os.path.join(a.out, "suite.json")
    manifest = json.load(open(manifest_path)) if os.path.exists(manifest_path) else {"exports": [], "failed": []}
    rng = np.random.default_rng(SEED + 1)
    for spec, exporter, dynamic, precision in itertools.product(
            specs, a.exporter, [s == "dynamic" for s in a.shapes], a.precision):
        label = export_name(spec, exporter, dynamic, precision)
        manifest["exports"] = [e for e in manifest["exports"] if e["name"] != label]
        manifest["failed"] = [e for e in manifest["failed"] if e["name"] != label]
        try:
            entry = one_export(spec, a.size, exporter, dynamic, a.out, rng, precision)
            manifest["exports"].append(entry)
            print(f"{label:<44} {entry['nodes']:>5} nodes {entry['bytes'] / 1e3:>8.0f} kB "
                  f"{entry['export_seconds']:>6.1f} s  torch vs ort {entry['torch_vs_onnxruntime']:.1e} of {entry['output_max_abs']:.1e}", flush=True)
        except Exception as e:  # torch's own exporter failing is recorded, not fatal
            shutil.rmtree(os.path.join(a.out, label), ignore_errors=True)
            why = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"[:300]
            manifest["failed"].append({"name": label, "error": why})
            print(f"{label:<44} export failed: {why}", flush=True)
            if os.environ.get("SATURATE_EXPORT_TRACEBACK"):
                traceback.print_exc()
        manifest["exports"].sort(key=lambda e: e["name"])
        manifest["failed"].sort(key=lambda e: e["name"])
        manifest.update({"size": a.size, "torch": torch.__version__, "torchvision": torchvision.__version__})
        json.dump(manifest, open(manifest_path, "w"), indent=1)


if __name__ == "__main__":
    main()
