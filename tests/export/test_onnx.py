"""tools/export_onnx.py: MXNet's exporter, checked by onnxruntime against our networks."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.data import DataConfig
from gluon_tricks.models import get_model
from gluon_tricks.infer.checkpoint import Checkpoint
from helpers import TOOLS, assert_one_line_error

onnx = pytest.importorskip("onnx", reason="`make onnx` installs onnx and onnxruntime")
onnxruntime = pytest.importorskip("onnxruntime")

from gluon_tricks.export.onnx import OnnxError, check_onnx, export_onnx  # noqa: E402

EXPORT = os.path.join(TOOLS, "export_onnx.py")


def trained_looking(model, path, fp16=False):
    """A network with random weights and non-trivial BatchNorm running statistics (so that
    inference-mode BatchNorm is tested), saved to ``path``."""
    mx.random.seed(0)
    net = get_model(model, classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    rng = np.random.default_rng(0)
    for name, p in net.collect_params().items():
        if name.endswith("running_mean"):
            p.set_data(mx.nd.array(rng.normal(0, 0.3, p.shape)))
        elif name.endswith("running_var"):
            p.set_data(mx.nd.array(rng.uniform(0.3, 2.0, p.shape)))
        elif name.endswith(("gamma", "beta")):
            p.set_data(mx.nd.array(rng.normal(0.5 if "gamma" in name else 0, 0.3, p.shape)))
    if fp16:
        net.cast("float16")
    net.save_parameters(path)
    return Checkpoint("x", path, model, 10, 0.0, "paper", DataConfig(input_size=32))


@pytest.mark.parametrize("model", [f"resnet{d}_{v}" for d in (18, 50)
                                   for v in ("v1", "v1b", "v1c", "v1d")])
def test_onnxruntime_computes_what_mxnet_does(model, tmp_path):
    ckpt = trained_looking(model, str(tmp_path / "w.params"))
    out = export_onnx(ckpt, str(tmp_path / "m.onnx"))
    result = check_onnx(out, ckpt, batch_sizes=(1, 3))
    assert result["max_rel_diff"] <= 1e-4, result
    m = onnx.load(out)
    (image,) = m.graph.input  # the weights are constants, not inputs
    dims = image.type.tensor_type.shape.dim
    assert not dims[0].dim_value and [d.dim_value for d in dims[1:]] == [3, 32, 32]
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["model"] == model and json.loads(meta["classes"]) == 10
    assert json.loads(meta["mean_rgb"]) == [123.68, 116.779, 103.939]


def test_tool_on_an_fp16_checkpoint(tmp_path):
    """The command line: a .params file saved in FP16 exports in FP32, --check prints the
    comparison, --json gives one line."""
    trained_looking("resnet18_v1d", str(tmp_path / "half.params"), fp16=True)
    done = subprocess.run([sys.executable, EXPORT, str(tmp_path / "half.params"),
                           str(tmp_path / "half.onnx"), "--model", "resnet18_v1d",
                           "--input-size", "32", "--check", "--json"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["max_rel_diff"] <= 1e-4 and result["classes"] == 10
    session = onnxruntime.InferenceSession(str(tmp_path / "half.onnx"),
                                           providers=["CPUExecutionProvider"])
    out = session.run(None, {session.get_inputs()[0].name:
                             np.zeros((4, 3, 32, 32), np.float32)})[0]
    assert out.shape == (4, 10) and out.dtype == np.float32


def test_bad_input_is_one_line(tmp_path):
    trained_looking("resnet18_v1d", str(tmp_path / "w.params"))
    for args, words in (
            ((tmp_path / "w.params", tmp_path / "m.onnx"), ("needs --model",)),
            ((tmp_path / "w.params", tmp_path, "--model", "resnet18_v1d"), ("a folder",)),
            ((tmp_path / "w.params", tmp_path / "m.onnx", "--model", "resnet50_v1d"),
             ("cannot load it as resnet50_v1d",)),
            ((tmp_path / "none.params", tmp_path / "m.onnx", "--model", "resnet18_v1d"),
             ("none.params",))):
        done = subprocess.run([sys.executable, EXPORT, *map(str, args)], capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 2, (args, done.stderr[-1000:])
        assert_one_line_error(done.stderr, *words)
    assert not os.path.exists(tmp_path / "m.onnx")


def test_no_export_over_what_it_did_not_make(tmp_path):
    """An existing OUT needs --force; a .rec/.idx or a file in a run folder never."""
    ckpt = trained_looking("resnet18_v1d", str(tmp_path / "w.params"))
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text("")
    for path in (tmp_path / "m.onnx", tmp_path / "val.rec"):
        path.write_text("precious\n")
    for out, force, words in ((tmp_path / "m.onnx", False, ("m.onnx", "--force")),
                              (tmp_path / "val.rec", True, ("val.rec", ".rec")),
                              (tmp_path / "val.idx", True, ("val.idx", ".idx")),
                              (run / "m.onnx", True, ("run/m.onnx", "run folder"))):
        with pytest.raises(OnnxError) as refused:
            export_onnx(ckpt, str(out), force)
        assert_one_line_error(f"error: {refused.value}", *words)
    assert (tmp_path / "m.onnx").read_text() == (tmp_path / "val.rec").read_text() == "precious\n"
    assert os.listdir(run) == ["log.jsonl"]
    export_onnx(ckpt, str(tmp_path / "m.onnx"), force=True)
    assert onnx.load(str(tmp_path / "m.onnx")).graph.node


def test_check_fails_on_non_finite_logits(tmp_path):
    """NaN logits on both sides compare as no difference; --check must not pass them."""
    net = get_model("resnet18_v1d", classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    for name, p in net.collect_params().items():
        if name.endswith("running_var"):  # finite weights whose BatchNorm gives NaN
            p.set_data(-mx.nd.ones(p.shape))
    net.save_parameters(str(tmp_path / "w.params"))
    done = subprocess.run([sys.executable, EXPORT, str(tmp_path / "w.params"),
                           str(tmp_path / "m.onnx"), "--model", "resnet18_v1d",
                           "--input-size", "32", "--check"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, "m.onnx", "non-finite logits")
