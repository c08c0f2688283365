"""tools/export_gluoncv.py: our weights in GluonCV's networks and back (paper §4, §6), and
GluonCV's Faster-RCNN and FCN built on an exported ResNet-50-D (paper Tables 8, 9)."""
import os

import mxnet as mx
import numpy as np
import pytest

from gluoncv.model_zoo import get_model as gluoncv_get_model

from gluon_tricks.models import get_model, initializer
from gluon_tricks.export.gluoncv import export_to_gluoncv
from gluon_tricks.transfer.nets import faster_rcnn, fcn

from helpers import assert_one_line_error, module_folder

CLASSES = 5
X = mx.nd.array(np.random.RandomState(0).uniform(-2, 2, size=(2, 3, 64, 64)))


def random_net(name, seed=0, classes=CLASSES):
    """Our network with random values in every parameter, BN running statistics included."""
    net = get_model(name, classes=classes)
    net.initialize(initializer())
    rng = np.random.RandomState(seed)
    for pname, p in net.collect_params().items():
        low = 0.5 if pname.endswith("running_var") else -0.5
        p.set_data(mx.nd.array(rng.uniform(low, 1.0, size=p.shape)))
    return net


def export(tool, *argv):
    module = tool("export_gluoncv")
    return module.run_cli(module.main, [str(a) for a in argv])


@pytest.fixture(scope="module")
def r50d(tmp_path_factory):
    """(our random resnet50_v1d, its .params, the exported GluonCV .params)."""
    with module_folder(tmp_path_factory, "r50d") as d:
        net = random_net("resnet50_v1d")
        ours, exported = d / "ours.params", d / "gluoncv.params"
        net.save_parameters(str(ours))
        assert export_to_gluoncv(str(ours), str(exported), "resnet50_v1d") == CLASSES
        yield net, ours, exported


def test_round_trip_resnet50_v1d(tool, r50d, tmp_path):
    net, _, exported = r50d
    gluoncv_net = gluoncv_get_model("resnet50_v1d", pretrained=False, classes=CLASSES)
    gluoncv_net.load_parameters(str(exported))
    expected = net(X).asnumpy()
    np.testing.assert_allclose(gluoncv_net(X).asnumpy(), expected, rtol=1e-4, atol=1e-4)
    back = tmp_path / "back.params"
    assert export(tool, "--import", exported, back, "--model", "resnet50_v1d") == 0
    again = get_model("resnet50_v1d", classes=CLASSES)
    again.load_parameters(str(back))
    np.testing.assert_array_equal(again(X).asnumpy(), expected)


def test_round_trip_v1_layout_and_fp16(tool, tmp_path):
    """resnet18_v1 goes to GluonCV's V1 layout (features.*/output.*); an FP16 checkpoint
    is written as FP32."""
    net = random_net("resnet18_v1", seed=1)
    expected = net(X).asnumpy()
    ours, exported, back = tmp_path / "ours.params", tmp_path / "v1.params", tmp_path / "b.params"
    net.cast("float16")
    net.save_parameters(str(ours))
    assert export(tool, ours, exported, "--model", "resnet18_v1") == 0
    saved = mx.nd.load(str(exported))
    assert "output.weight" in saved and "features.0.weight" in saved
    assert all(v.dtype == np.float32 for v in saved.values())
    gluoncv_net = gluoncv_get_model("resnet18_v1", pretrained=False, classes=CLASSES)
    gluoncv_net.load_parameters(str(exported))
    got = gluoncv_net(X).asnumpy()
    np.testing.assert_allclose(got, expected, rtol=0.02, atol=0.05 * np.abs(expected).max())
    assert export(tool, "--import", exported, back, "--model", "resnet18_v1") == 0
    again = get_model("resnet18_v1", classes=CLASSES)
    again.load_parameters(str(back))
    np.testing.assert_allclose(again(X).asnumpy(), got, rtol=1e-5, atol=1e-5)


def test_run_folder_exports_best_params_with_its_model(tool, tmp_path, make_run):
    run = make_run(tmp_path / "run", dict(model="resnet18_v1b", epochs=1), [(0.5, 0.9, 1.0)])
    net = random_net("resnet18_v1b", seed=2, classes=3)
    net.save_parameters(os.path.join(run, "best.params"))
    out = tmp_path / "out" / "r18.params"
    assert export(tool, run, out) == 0  # --model from the run's config.yaml, classes from fc
    gluoncv_net = gluoncv_get_model("resnet18_v1b", pretrained=False, classes=3)
    gluoncv_net.load_parameters(str(out))
    np.testing.assert_allclose(gluoncv_net(X).asnumpy(), net(X).asnumpy(), rtol=1e-4, atol=1e-4)


def test_faster_rcnn_on_our_resnet50_v1d(r50d):
    _, _, exported = r50d
    det = faster_rcnn("resnet50_v1d", str(exported), classes=["cat", "dog"], short=128,
                      max_size=128, rpn_test_pre_nms=200, rpn_test_post_nms=50)
    saved = mx.nd.load(str(exported))
    stem_conv, last_bn = det.features[0][0], det.top_features[0][2].bn3
    np.testing.assert_array_equal(stem_conv.weight.data().asnumpy(),
                                  saved["conv1.0.weight"].asnumpy())
    np.testing.assert_array_equal(last_bn.gamma.data().asnumpy(),
                                  saved["layer4.2.bn3.gamma"].asnumpy())
    assert isinstance(det.features[4][0].downsample[0], mx.gluon.nn.AvgPool2D)  # ResNet-D
    x = mx.nd.array(np.random.RandomState(1).uniform(-1, 1, size=(1, 3, 128, 128)))
    ids, scores, boxes = det(x)
    assert ids.shape[:2] == scores.shape[:2] == boxes.shape[:2] and boxes.shape[2] == 4
    # the detector's own heads are untrained, so its box regressions can overflow; the
    # backbone's weights (checked above) and a complete forward pass are what this shows
    assert np.isfinite(scores.asnumpy()).all()


def test_fcn_on_our_resnet50_v1d(r50d):
    _, _, exported = r50d
    seg = fcn("resnet50_v1d", str(exported), nclass=3, crop_size=128, base_size=128)
    saved = mx.nd.load(str(exported))
    np.testing.assert_array_equal(seg.conv1[0].weight.data().asnumpy(),
                                  saved["conv1.0.weight"].asnumpy())
    np.testing.assert_array_equal(seg.layer3[0].downsample[1].weight.data().asnumpy(),
                                  saved["layer3.0.downsample.1.weight"].asnumpy())
    assert not any("resnetv1s" in name for name in seg.collect_params())  # v1s base replaced
    assert seg.layer4[0].conv2._kwargs["dilate"] == (2, 2)  # dilated, output stride 8
    x = mx.nd.array(np.random.RandomState(2).uniform(-1, 1, size=(1, 3, 128, 128)))
    out, aux = seg(x)
    assert out.shape == aux.shape == (1, 3, 128, 128)
    assert np.isfinite(out.asnumpy()).all()


def one_line_error(capsys, *fragments):
    assert_one_line_error(capsys.readouterr().err, *map(str, fragments))


def test_errors_are_one_line(tool, tmp_path, capsys, r50d):
    _, ours, exported = r50d
    out = tmp_path / "o.params"
    assert export(tool, tmp_path / "nope.params", out, "--model", "resnet50_v1d") == 2
    one_line_error(capsys, "nope.params", "no such file")
    empty_dir = tmp_path / "empty"
    empty_dir.mkdir()
    assert export(tool, empty_dir, out, "--model", "resnet50_v1d") == 2
    one_line_error(capsys, empty_dir, "best.params")
    text = tmp_path / "notes.params"
    text.write_text("not a tensor file\n")
    assert export(tool, text, out, "--model", "resnet50_v1d") == 2
    one_line_error(capsys, text, "not an MXNet .params")
    assert export(tool, ours, out, "--model", "resnet50_v1b") == 2  # wrong network
    one_line_error(capsys, ours, "resnet50_v1b")
    assert export(tool, ours, out) == 2
    one_line_error(capsys, "--model is required")
    assert export(tool, ours, out, "--model", "resnet51") == 2
    one_line_error(capsys, "resnet51")
    assert export(tool, "--import", tmp_path / "gone.params", out, "--model", "resnet50_v1d") == 2
    one_line_error(capsys, "gone.params")
    assert export(tool, ours, empty_dir, "--model", "resnet50_v1d") == 2  # OUT a folder
    one_line_error(capsys, empty_dir, "a folder")
    assert not out.exists() and not os.listdir(empty_dir)


def test_an_export_never_overwrites_what_it_did_not_make(tool, tmp_path, capsys, r50d,
                                                          make_run):
    """An existing OUT needs --force; a data set's .rec/.idx or a file in a run folder (or
    its checkpoints/) is refused even with it, and is left as it was."""
    _, ours, _ = r50d
    other = make_run(tmp_path / "other_run", dict(model="resnet50_v1d"), [(0.5, 0.9, 1.0)])
    os.makedirs(os.path.join(other, "checkpoints"))
    data = tmp_path / "val.rec"
    kept = tmp_path / "kept.params"
    for path in (data, kept, os.path.join(other, "best.params")):
        with open(path, "w") as f:
            f.write("precious\n")
    cases = [((kept,), (kept, "already exists", "--force")),
             ((data, "--force"), (data, ".rec")),
             ((tmp_path / "val.idx", "--force"), ("val.idx", ".idx")),
             ((os.path.join(other, "best.params"), "--force"), ("best.params", "run folder")),
             ((os.path.join(other, "new.params"), "--force"), ("new.params", "run folder")),
             ((os.path.join(other, "checkpoints", "x.params"), "--force"),
              ("x.params", "run folder"))]
    for (out, *flags), words in cases:
        assert export(tool, ours, out, "--model", "resnet50_v1d", *flags) == 2, out
        one_line_error(capsys, *words)
    assert export(tool, "--import", ours, kept, "--model", "resnet50_v1d") == 2
    one_line_error(capsys, kept, "already exists")
    for path in (data, kept, os.path.join(other, "best.params")):
        with open(path) as f:
            assert f.read() == "precious\n", path
    assert sorted(os.listdir(other)) == ["best.params", "checkpoints", "config.yaml",
                                         "log.jsonl"]
    assert not os.listdir(os.path.join(other, "checkpoints"))
    assert export(tool, ours, kept, "--model", "resnet50_v1d", "--force") == 0
    assert "conv1.0.weight" in mx.nd.load(str(kept))
