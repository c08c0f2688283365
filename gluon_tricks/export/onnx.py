"""ONNX export of a trained network, checked by a runtime.

MXNet 1.9.1's own exporter (``mx.onnx.export_model``) writes the hybridized network's
graph: BatchNorm in inference mode (the running statistics), a dynamic batch dimension.
The model takes what the network takes: float32 (N, 3, S, S) RGB, normalised by the run's
mean and standard deviation, and returns the logits (N, K); the model's metadata holds
the model name, classes, input size, resize, mean and std, so that a user can rebuild the
validation transform.

Versions that work together here: onnx 1.13.1 (the exporter stamps opset 18 at most with
it; newer onnx stamps opsets such as AveragePool 19 that this runtime rejects) and
onnxruntime 1.15.1, whose wheel asks for numpy >= 1.24 but runs with the numpy < 1.24 that
MXNet 1.9.1 needs; onnx 1.13.1 asks for protobuf < 4, whose pure-Python parser is 50x
slower than protobuf 4.21's (``make onnx`` installs both without those pins; docs/notes.md
§4).
"""
import json
import os
import tempfile

import mxnet as mx
import numpy as np

from ..errors import UserError, one_line
from ..infer.checkpoint import load_net
from ..run.folder import replace_atomically
from .outputs import output_of_export


class OnnxError(UserError):
    """An export or check that cannot be done; one line naming the file."""


def _onnx():
    try:
        import onnx
    except ImportError:
        raise OnnxError("the onnx package is not installed: `make onnx` (or pip install "
                        "onnx==1.13.1)") from None
    return onnx


def export_onnx(ckpt, out, force=False):
    """Write the network of ``ckpt`` (:class:`gluon_tricks.weights.Checkpoint`) to ``out``
    as an ONNX model with a dynamic batch dimension (under a temporary name until it is
    complete; ``out`` checked writable before the work, an existing one replaced only with
    ``force``: :func:`gluon_tricks.export.outputs.output_of_export`). Returns ``out``."""
    onnx = _onnx()
    with output_of_export(out, force, OnnxError):
        model = _onnx_model(onnx, ckpt)
        replace_atomically(out, lambda tmp: onnx.save(model, tmp))
    return out


def _onnx_model(onnx, ckpt):
    """The checked ONNX model of ``ckpt``'s network, with its metadata."""
    size = ckpt.data.input_size
    net = load_net(ckpt, mx.cpu())
    net.hybridize()
    net(mx.nd.zeros((1, 3, size, size)))
    with tempfile.TemporaryDirectory() as tmp:
        prefix = os.path.join(tmp, "net")
        net.export(prefix)
        onnx_tmp = os.path.join(tmp, "net.onnx")
        try:
            mx.onnx.export_model(f"{prefix}-symbol.json", f"{prefix}-0000.params",
                                 in_shapes=[(1, 3, size, size)], in_types=[np.float32],
                                 onnx_file_path=onnx_tmp, dynamic=True,
                                 dynamic_input_shapes=[(None, 3, size, size)])
        except Exception as e:  # the exporter raises whatever its converters raise
            raise OnnxError(f"{ckpt.params}: MXNet's ONNX exporter failed for {ckpt.model} "
                            f"({one_line(e, 160)})") from None
        model = onnx.load(onnx_tmp)
    # the exporter lists the weights as graph inputs too; as inputs a runtime may not treat
    # them as constants, so only the image stays an input
    weights = {init.name for init in model.graph.initializer}
    for graph_input in [i for i in model.graph.input if i.name in weights]:
        model.graph.input.remove(graph_input)
    data = ckpt.data
    meta = dict(model=ckpt.model, classes=ckpt.classes, input_size=size, resize=data.resize,
                mean_rgb=list(data.mean_rgb), std_rgb=list(data.std_rgb),
                layout="NCHW, RGB, (pixel - mean) / std", source=os.path.abspath(ckpt.params))
    for key, value in meta.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(model)
    return model


def check_onnx(path, ckpt, batch_sizes=(1, 3), seed=0):
    """Run the ONNX model ``path`` with onnxruntime on CPU and the network of ``ckpt`` with
    MXNet on the same random inputs (one per batch size, standard normal like normalised
    images). Returns {"max_abs_diff", "max_rel_diff", "batch_sizes", "runtime"}, the
    relative difference measured against the largest logit; OnnxError if either gives a
    non-finite logit."""
    try:
        import onnxruntime
    except ImportError:
        raise OnnxError("onnxruntime is not installed: `make onnx`") from None
    options = onnxruntime.SessionOptions()
    options.log_severity_level = 3
    try:
        session = onnxruntime.InferenceSession(path, options,
                                               providers=["CPUExecutionProvider"])
    except Exception as e:  # onnxruntime's own exception types
        raise OnnxError(f"{path}: onnxruntime cannot load it ({one_line(e, 160)})") from None
    name = session.get_inputs()[0].name
    net = load_net(ckpt, mx.cpu())
    size = ckpt.data.input_size
    rng = np.random.default_rng(seed)
    worst_abs = worst_rel = 0.0
    for n in batch_sizes:
        x = rng.standard_normal((n, 3, size, size)).astype(np.float32)
        ours = net(mx.nd.array(x)).asnumpy()
        theirs = session.run(None, {name: x})[0]
        if theirs.shape != ours.shape:
            raise OnnxError(f"{path}: output shape {theirs.shape} for a batch of {n}, MXNet "
                            f"gives {ours.shape}")
        # NaN minus NaN is NaN, which max() below would pass over as no difference
        for who, logits in (("onnxruntime", theirs), ("MXNet", ours)):
            if not np.isfinite(logits).all():
                raise OnnxError(f"{path}: {who} gives non-finite logits for a batch of {n}; "
                                "are the weights finite?")
        diff = float(np.abs(theirs - ours).max())
        worst_abs = max(worst_abs, diff)
        worst_rel = max(worst_rel, diff / max(float(np.abs(ours).max()), 1e-12))
    return dict(max_abs_diff=worst_abs, max_rel_diff=worst_rel, batch_sizes=list(batch_sizes),
                runtime=f"onnxruntime {onnxruntime.__version__}")
