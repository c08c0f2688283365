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
from helpers import TOOLS, assert_one_line_error, assert_refused_in_process

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
def run(learned32):
    """A 4-epoch ResNet-18-D run on the 32 px digits (the demo's bag, no mixup), read only:
    checkpoints of its last 3 epochs and best.params."""
    return learned32


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
    kept = sorted(int(name[len("epoch-"):-len(".params")]) for name in
                  os.listdir(os.path.join(run, "checkpoints")) if name.endswith(".params"))
    assert len(kept) >= 2, kept
    for epoch in kept[:2]:  # two of them: each is a process of its own
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


def test_bad_input_is_one_line(tool, run, demo32, tmp_path, capsys):
    """In this process, through the wrapper the script runs main in (that the script itself
    ends in one line without a traceback: tests/tools/test_tools_cli.py)."""
    main = tool("validate").main
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
             ("--classes 5", "holds a network of 10 classes")),
            ((run, "--batch-size", 0, "--rec-val", demo32["val"]), ("--batch-size 0",)),
            ((run, "--gpus", "0", "--rec-val", demo32["val"]), ("--gpus 0",))):
        assert_refused_in_process(main, args, capsys, *words)


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Inputs of the checks before scoring: packed sets of ten classes, of the first five
    and without class3, a set packed by another tool (no _classes.txt) of ten labels, one
    with an undecodable image; networks of 10 and 5 classes (random weights) as .params
    files and a run folder of 10 classes trained on the ten-class set."""
    from helpers import write_rec
    from helpers import CLASSES, fake_run, pack_classes, random_params
    root = tmp_path_factory.mktemp("checked")
    sets = {name: pack_classes(str(root / name), names)
            for name, names in (("train", CLASSES), ("val", CLASSES), ("five", CLASSES[:5]),
                                ("no_three", CLASSES[:3] + CLASSES[4:]))}
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (32, 32, 3), dtype=np.uint8) for _ in range(10)]
    sets["bare"] = write_rec(str(root / "bare"), images, range(10))
    sets["garbled"] = write_rec(str(root / "garbled"), images, range(10))
    offset = int(open(str(root / "garbled.idx")).read().splitlines()[6].split("\t")[1])
    with open(sets["garbled"], "r+b") as f:
        f.seek(offset + 8 + 24 + 10)  # record header, IRHeader, then into the PNG
        f.write(b"\0" * 200)
    return dict(sets, net10=random_params(root / "net10.params", 10),
                net5=random_params(root / "net5.params", 5),
                run=fake_run(str(root / "run"), sets["train"]))


def bare(params, *args):
    return validate(params, "--model", "resnet18_v1d", "--input-size", 32, *args)


def test_a_set_smaller_than_the_batch_is_scored(checked):
    """20 images, the default batch of 100: MXNet's iterator refused it (a C++ traceback)."""
    done = validate(checked["run"], "--rec-val", checked["val"], "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1])["images"] == 20


def test_checked_inputs_that_fit_are_scored(checked):
    """The run on a set of its class list, a network on a set without one (labels only)."""
    for done in (validate(checked["run"], "--rec-val", checked["val"], "--batch-size", 5),
                 bare(checked["net10"], "--rec-val", checked["bare"], "--classes", 10,
                      "--batch-size", 5)):
        assert done.returncode == 0, done.stderr[-2000:]
        assert "top-1" in done.stdout


def test_a_set_without_the_runs_classes_is_refused_naming_both_lists(checked):
    """The run's training set lists class0..class9; a validation set packed without class3
    fits its labels (0..8) but scores every class after it against the wrong label."""
    done = validate(checked["run"], "--rec-val", checked["no_three"], "--batch-size", 5)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, "no_three/set_classes.txt", "train/set_classes.txt",
                          "class 3 is 'class4' but 'class3'")


def test_a_ten_class_network_on_a_five_class_set_is_refused(checked):
    done = bare(checked["net10"], "--rec-val", checked["five"], "--batch-size", 5)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, "five/set_classes.txt", "5 classes where 10")


def test_an_undecodable_image_is_a_one_line_error_not_a_crash(checked):
    """MXNet's iterator ended the process on it (SIGFPE, exit status 136, no output)."""
    done = bare(checked["net10"], "--rec-val", checked["garbled"], "--batch-size", 5)
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert_one_line_error(done.stderr, "garbled.rec", "record 6 ")


def test_the_hint_for_a_set_that_does_not_fit_works(checked):
    """A 5-class network on ten labels (a set without _classes.txt): the hint was
    "--classes=10", which then failed to load the network. The classes are the weights';
    the message says so, and a --classes that contradicts them is refused at once."""
    done = bare(checked["net5"], "--rec-val", checked["bare"], "--batch-size", 5)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, "bare.rec", "the network has 5 classes")
    assert "--classes" not in done.stderr
    done = bare(checked["net5"], "--rec-val", checked["bare"], "--classes", 10,
                "--batch-size", 5)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, "--classes 10", "net5.params holds a network of 5 "
                          "classes", "leave --classes out")
