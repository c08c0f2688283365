"""Weights with a NaN or an infinity (a diverged run's) are refused by every loader, in one
line naming the file and the first bad parameter (models.weights.check_finite): scoring,
predicting, exporting, fine-tuning from, distilling from or transferring such a network
gives numbers that mean nothing."""
import os
import subprocess
import sys

import cv2
import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.errors import UserError
from gluon_tricks.export.gluoncv import export_to_gluoncv, import_from_gluoncv
from gluon_tricks.infer.checkpoint import CheckpointOverrides, open_checkpoint
from gluon_tricks.models import get_model
from gluon_tricks.models.weights import WeightsError, check_finite, init_from, load_network
from gluon_tricks.train.nets import load_teacher
from gluon_tricks.transfer.nets import backbone
from helpers import ROOT, assert_one_line_error, tiny_config

BAD = "layer2.0.conv1.weight"  # the first of the file's parameters to hold a NaN


def saved(path, poison, dtype="float32"):
    """A resnet18_v1d of 10 classes at ``path`` whose parameters named in ``poison`` get
    ``poison[name]`` in one element."""
    net = get_model("resnet18_v1d", classes=10)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.cast(dtype)
    params = net._collect_params_with_prefix()
    for name, value in poison.items():
        data = params[name].data().asnumpy()
        data.flat[3] = value
        params[name].set_data(mx.nd.array(data, dtype=dtype))
    net.save_parameters(str(path))
    return str(path)


@pytest.fixture(scope="module")
def nan_params(tmp_path_factory):
    return saved(tmp_path_factory.mktemp("nan") / "diverged.params",
                 {BAD: np.nan, "layer4.1.bn2.gamma": np.nan, "fc.bias": np.inf})


def one_line(error, *words):
    assert_one_line_error(f"error: {error}", *words)


def test_the_check_names_the_file_and_the_first_bad_parameter(nan_params, tmp_path):
    loaded = mx.nd.load(nan_params)
    bad = [k for k, v in loaded.items() if not np.isfinite(v.asnumpy()).all()]
    assert bad[0] == BAD and len(bad) == 3  # numpy's own count, in the file's order
    with pytest.raises(WeightsError) as refused:
        check_finite(loaded, nan_params)
    one_line(refused.value, nan_params, BAD, f"in 3 of {len(loaded)} parameters")
    half = saved(tmp_path / "half.params", {"conv1.0.weight": np.inf}, dtype="float16")
    with pytest.raises(WeightsError, match="the first conv1.0.weight"):
        check_finite(mx.nd.load(half), half)
    fine = saved(tmp_path / "fine.params", {})
    assert check_finite(mx.nd.load(fine), fine)


def test_every_loader_refuses_them(nan_params, tmp_path):
    net = get_model("resnet18_v1d", classes=10)
    net.initialize()
    loaders = {
        "load_network": lambda: load_network("resnet18_v1d", 10, nan_params),
        "init_from": lambda: init_from(net, nan_params, "resnet18_v1d"),
        "open_checkpoint": lambda: open_checkpoint(
            nan_params, overrides=CheckpointOverrides(model="resnet18_v1d")),
        "load_teacher": lambda: load_teacher(tiny_config(teacher=nan_params,
                                                         teacher_model="resnet18_v1d"),
                                             [mx.cpu()]),
        "transfer backbone": lambda: backbone("resnet18_v1d", nan_params, mx.cpu()),
        "export_to_gluoncv": lambda: export_to_gluoncv(nan_params, str(tmp_path / "o.params"),
                                                       "resnet18_v1d"),
        "import_from_gluoncv": lambda: import_from_gluoncv(
            nan_params, str(tmp_path / "o.params"), "resnet18_v1d")}
    for name, load in loaders.items():
        with pytest.raises(UserError) as refused:
            load()
        assert nan_params in str(refused.value) and BAD in str(refused.value), name
    assert not os.path.exists(tmp_path / "o.params")


@pytest.mark.parametrize("tool", ["validate", "predict", "export_onnx"])
def test_the_tools_refuse_them_in_one_line(tool, nan_params, tmp_path):
    image = tmp_path / "a.png"
    cv2.imwrite(str(image), np.zeros((40, 40, 3), np.uint8))
    rest = {"validate": ["--rec-val", str(tmp_path / "val.rec")], "predict": [str(image)],
            "export_onnx": [str(tmp_path / "m.onnx")]}[tool]
    done = subprocess.run([sys.executable, os.path.join(ROOT, "tools", f"{tool}.py"),
                           nan_params, "--model", "resnet18_v1d", *rest],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, nan_params, BAD, "non-finite")
