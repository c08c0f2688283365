"""tools/validate.py: the trainer's own numbers for its checkpoints, GluonCV's evaluation's
numbers for a GluonCV-saved network, every record once, one-line errors."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.models import gluoncv_model
from helpers import assert_one_line_error, module_folder

from conftest import TOOLS

VALIDATE = os.path.join(TOOLS, "validate.py")
# the trainer's CLI runs on MXNet's naive engine on CPU; so does this tool's test, so that the
# two score one network with the same arithmetic
NAIVE = dict(os.environ, MXNET_ENGINE_TYPE="NaiveEngine")


def validate(*args):
    return subprocess.run([sys.executable, VALIDATE, *map(str, args)], capture_output=True,
                          text=True, timeout=600, env=NAIVE)


def validate_json(*args):
    done = validate(*args, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def run(demo32, trainer, tmp_path_factory):
    """A 2-epoch ResNet-18-D run on the 32 px digits (the demo's bag, no mixup)."""
    with module_folder(tmp_path_factory, "validate") as root:
        yield trainer(demo32, root / "run", "--epochs", "2", "--set", "warmup_epochs=0",
                      "--set", "mixup_alpha=0", "--set", "mixup_off_epochs=0")


def epoch_records(run):
    with open(os.path.join(run, "log.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    return {r["epoch"]: r for r in records if r["type"] == "epoch"}


def test_the_trainers_own_numbers(run, demo32):
    """best.params and each kept epoch's checkpoint score exactly what the log says."""
    epochs = epoch_records(run)
    with open(os.path.join(run, "best.json")) as f:
        best = json.load(f)
    got = validate_json(run, "--rec-val", demo32["val"])
    assert got["images"] == 360 and got["model"] == "resnet18_v1d" and got["classes"] == 10
    assert got["input_size"] == 32 and got["resize"] == 37  # the run's own pipeline
    assert (got["top1"], got["top5"]) == (best["val_top1"], epochs[best["epoch"]]["val_top5"])
    for epoch in (1, 2):
        got = validate_json(run, "--epoch", epoch, "--rec-val", demo32["val"],
                            "--batch-size", 7)  # any batch size: a short last batch
        assert (got["top1"], got["top5"]) == (epochs[epoch]["val_top1"],
                                              epochs[epoch]["val_top5"])


def gluoncv_evaluation(net, rec, batch_size, size, resize):
    """GluonCV's verify_pretrained.py on a .rec: its ImageRecordIter and metrics."""
    val = mx.io.ImageRecordIter(path_imgrec=rec, path_imgidx=rec[:-4] + ".idx",
                                preprocess_threads=1, batch_size=batch_size, resize=resize,
                                data_shape=(3, size, size), mean_r=123.68, mean_g=116.779,
                                mean_b=103.939, std_r=58.393, std_g=57.12, std_b=57.375)
    top1, top5 = mx.metric.Accuracy(), mx.metric.TopKAccuracy(5)
    for batch in val:
        out = net(batch.data[0])
        top1.update([batch.label[0]], [out])
        top5.update([batch.label[0]], [out])
    return top1.get()[1], top5.get()[1], top1.num_inst


@pytest.mark.parametrize("model", ["resnet18_v1", "resnet18_v1b", "mobilenet1.0"])
def test_gluoncv_weights_score_what_gluoncvs_evaluation_says(model, demo32, tmp_path):
    """A GluonCV network (random weights and running statistics, so that predictions vary)
    saved by GluonCV: our tool and GluonCV's evaluation code agree, at a batch size that
    divides the 360 images (GluonCV's code counts a wrapped-around last batch twice)."""
    mx.random.seed(3)
    net = gluoncv_model(model, 10)
    net.initialize(mx.init.Xavier(magnitude=6))
    net(mx.nd.zeros((1, 3, 32, 32)))
    rng = np.random.default_rng(3)
    for name, p in net.collect_params().items():
        if name.endswith(("running_mean", "running_var")):
            p.set_data(mx.nd.array(rng.uniform(0.5, 1.5, p.shape) if "var" in name
                                   else rng.normal(0, 0.2, p.shape)))
    params = str(tmp_path / f"{model}.params")
    net.save_parameters(params)
    top1, top5, n = gluoncv_evaluation(net, demo32["val"], 60, 32, 36)
    assert n == 360 and 0 < top1 < 1  # a network that does not predict one class for all
    got = validate_json(params, "--model", model, "--rec-val", demo32["val"],
                        "--input-size", 32, "--resize", 36, "--batch-size", 60)
    assert got["images"] == 360 and got["classes"] == 10
    assert got["top1"] == pytest.approx(top1, abs=1e-12)
    assert got["top5"] == pytest.approx(top5, abs=1e-12)


def test_text_output_names_what_it_scored(run, demo32):
    done = validate(run, "--rec-val", demo32["val"])
    assert done.returncode == 0, done.stderr
    line = done.stdout.strip().splitlines()[-1]
    assert "best.params" in line and "top-1" in line and "360 images" in line


def test_bad_input_is_one_line(run, demo32, tmp_path):
    params = os.path.join(run, "best.params")
    for args, words in (
            ((params, "--rec-val", demo32["val"]), ("needs --model",)),
            ((run, "--epoch", 9, "--rec-val", demo32["val"]), ("no checkpoint of epoch 9",)),
            ((params, "--model", "resnet18_v1d", "--epoch", 1, "--rec-val", demo32["val"]),
             ("--epoch 1", "only for a run folder")),
            ((params, "--model", "resnet50_v1d", "--rec-val", demo32["val"]),
             ("cannot load it as resnet50_v1d",)),
            ((params, "--model", "nosuch", "--rec-val", demo32["val"]), ("nosuch",)),
            ((run, "--rec-val", str(tmp_path / "none.rec")), ("none.rec",)),
            ((run, "--classes", 5, "--rec-val", demo32["val"]),
             ("do not fit classes=5", "--classes=10")),
            ((run, "--batch-size", 0, "--rec-val", demo32["val"]), ("--batch-size 0",)),
            ((run, "--gpus", "0", "--rec-val", demo32["val"]), ("--gpus 0",))):
        done = validate(*args)
        assert done.returncode == 2, (args, done.stderr[-1000:])
        assert_one_line_error(done.stderr, *words)
