"""The authors' own script against our trainer: GluonCV's
``scripts/classification/imagenet/train_imagenet.py`` run through its real ``main()`` (its
argparse, LRSequential, NAG, ``--no-wd``, losses, mixup, smoothing and epoch loop) and our
``build_training`` + ``train_one_epoch`` + ``evaluate`` under ``conventions: gluoncv``, from
the same weights on the same batches: every parameter, BatchNorm running statistics included,
equal to float32 rounding after every epoch, and the lr the script logs is our schedule's.

The script is not in the gluoncv wheel. Set ``GLUONCV_TRAIN_SCRIPT=path/to/train_imagenet.py``
(from https://github.com/dmlc/gluon-cv, ``scripts/classification/imagenet/``) to run these
tests; they are skipped otherwise. The file is executed as the authors wrote it, never copied:
this opt-in test is the one place that runs code handed to us, because running it is the test.

What the script is given, through its own flags and three stand-ins:
- the weights: ours, saved and passed as ``--resume-params`` (the script then loads them
  and skips its ``net.initialize``, l. 224 and 396); what its own initialisation of the same
  command line zeroes (``--last-gamma``) is compared with ours separately;
- the batches: ``mx.io.ImageRecordIter`` (``--use-rec``, l. 248 and 272) replaced by
  :class:`FixedRecordIter`, which yields the batches our loop gets;
- mixup's lambda: the script draws it from numpy's global generator (l. 430), seeded right
  before ``main()``; our mixer's ``sample_lambda`` is handed the same sequence;
- the teacher: its ``get_model(teacher, pretrained=True)`` (l. 230), which would download,
  returns the fixed network that our trainer distils from too.

Both sides run in one child process on MXNet's naive engine, as our CLI runs on CPU: under
the threaded engine two runs of our own trainer differ from each other (docs/notes.md §4;
here by ~2e-2 after 12 updates: at this lr a rounding difference grows ~100x per update).
"""
import importlib.util
import json
import logging
import os
import re
import subprocess
import sys
import traceback
from pathlib import Path

import mxnet as mx
import numpy as np
import pytest
from gluoncv.model_zoo import get_model as gluoncv_get_model

from gluon_tricks.models import gluoncv_model
from gluon_tricks.run.parallel import SingleProcess
from gluon_tricks.train import loop, mixup
from gluon_tricks.train.config import resolve

WHERE = ("scripts/classification/imagenet/train_imagenet.py of https://github.com/dmlc/gluon-cv "
         "(not in the gluoncv wheel)")
REPO = str(Path(__file__).resolve().parents[2])
CLASSES = 1000  # the script hard-codes 1000 classes (l. 179); the labels are 0..9
LABELS, BATCH, PX, BATCHES_PER_EPOCH, EPOCHS = 10, 8, 32, 4, 3
SEED = 2019  # numpy's global generator, from which the script draws mixup's lambda
# 3 epochs of 4 updates of batch 8 at peak lr 3.2 * 8 / 256 = 0.1; the script's default
# decay epochs (40, 60) leave the lr constant unless a case says otherwise
BASE = dict(conventions="gluoncv", classes=CLASSES, batch_size=BATCH, epochs=EPOCHS,
            base_lr_per_256=3.2, wd=1e-4, momentum=0.9, lr_step_epochs=[40, 60],
            **{"data.input_size": PX})
TEACHER = "resnet18_v1b"
CASES = {
    "baseline": dict(model="resnet18_v1b"),
    "warmup_cosine": dict(model="resnet18_v1b", warmup_epochs=1, lr_mode="cosine"),
    "step_decay": dict(model="resnet18_v1b", lr_step_epochs=[2]),
    "warmup_step_decay": dict(model="resnet18_v1b", warmup_epochs=1, lr_step_epochs=[2]),
    "no_bias_decay": dict(model="resnet18_v1b", no_bias_decay=True),
    "last_gamma_bottleneck": dict(model="resnet50_v1b", zero_gamma=True),
    "last_gamma_basic": dict(model="resnet18_v1b", zero_gamma=True),
    "label_smoothing": dict(model="resnet18_v1b", label_smoothing=0.1),
    "mixup": dict(model="resnet18_v1b", mixup_alpha=0.2),
    "mixup_off_last_epoch": dict(model="resnet18_v1b", mixup_alpha=0.2, mixup_off_epochs=1),
    "distillation": dict(model="resnet18_v1b", distill=True, teacher_model=TEACHER,
                         temperature=20.0),
    "whole_bag": dict(model="resnet50_v1d", warmup_epochs=1, lr_mode="cosine",
                      no_bias_decay=True, zero_gamma=True, label_smoothing=0.1,
                      mixup_alpha=0.2, distill=True, teacher_model=TEACHER, temperature=20.0),
}


def fixed_batches(seed=0):
    """EPOCHS lists of BATCHES_PER_EPOCH (data (N, 3, PX, PX) float32, label (N,) float32
    class indices) pairs, and one validation pair."""
    rng = np.random.default_rng(seed)
    shape = (EPOCHS, BATCHES_PER_EPOCH, BATCH)
    data = rng.normal(size=shape + (3, PX, PX)).astype("float32")
    labels = rng.integers(0, LABELS, size=shape).astype("float32")
    epochs = [list(zip(data[e], labels[e])) for e in range(EPOCHS)]
    val = (rng.normal(size=(BATCH, 3, PX, PX)).astype("float32"),
           rng.integers(0, LABELS, size=BATCH).astype("float32"))
    return epochs, val


def mixup_lambdas(alpha, n):
    """The first ``n`` lambdas the script draws after ``np.random.seed(SEED)`` (l. 430)."""
    rng = np.random.RandomState(SEED)
    return [rng.beta(alpha, alpha) for _ in range(n)]


class FixedRecordIter(mx.io.DataIter):
    """Stands in for ``mx.io.ImageRecordIter``: each ``reset()`` (the script calls it before
    every epoch, l. 422, and every validation, l. 379) starts the next of ``epochs``, lists of
    (data, label) numpy pairs, cycling. ``resets`` counts the calls."""

    def __init__(self, epochs, batch_size):
        super().__init__(batch_size)
        self.epochs, self.resets, self.batches = epochs, 0, iter(())

    def reset(self):
        self.batches = iter(self.epochs[self.resets % len(self.epochs)])
        self.resets += 1

    def next(self):
        x, y = next(self.batches)  # StopIteration ends the epoch
        return mx.io.DataBatch(data=[mx.nd.array(x)], label=[mx.nd.array(y)])


class FixedLoader:
    """Our loop's loader (``batch_size``, ``batches_per_epoch``, ``epoch(e)``) over the same
    batches."""
    batch_size, batches_per_epoch = BATCH, BATCHES_PER_EPOCH

    def __init__(self, epochs):
        self.epochs = epochs

    def epoch(self, e):
        return [(mx.nd.array(x), mx.nd.array(y)) for x, y in self.epochs[e]]


class QuietLog:
    def info(self, *args):
        pass

    def record(self, **fields):
        pass


def teacher_net():
    """A fixed random ResNet-18-V1b of 1000 classes, the teacher of both sides."""
    mx.random.seed(7)
    net = gluoncv_model(TEACHER, CLASSES)
    net.initialize(mx.init.MSRAPrelu())
    net(mx.nd.zeros((1, 3, PX, PX)))
    net.collect_params().setattr("grad_req", "null")
    return net


def values(params):
    """{structural name: numpy array} of a network's parameters or of a loaded .params."""
    return {k: (v.data() if hasattr(v, "data") else v).asnumpy() for k, v in params.items()}


def zero_gammas(params):
    """Names of the BatchNorm gammas that are all zero."""
    return {k for k, v in params.items() if k.endswith("gamma") and not v.any()}


def script_argv(cfg, folder, start_file):
    """The script's command line for the resolved config ``cfg``: each flag is the key it
    stands for (its --lr is absolute, our peak lr; its --label-smoothing is eps 0.1, l. 416)."""
    assert cfg.label_smoothing in (0.0, 0.1) and cfg.dtype == "float32"
    argv = ["train_imagenet.py", "--model", cfg.model, "--num-gpus", "0", "--dtype", cfg.dtype,
            "--batch-size", str(cfg.batch_size), "--input-size", str(cfg.data.input_size),
            "--num-training-samples", str(BATCHES_PER_EPOCH * cfg.batch_size),
            "--num-epochs", str(cfg.epochs), "--lr", repr(cfg.peak_lr()),
            "--momentum", repr(cfg.momentum), "--wd", repr(cfg.wd),
            "--lr-mode", cfg.lr_mode, "--lr-decay", repr(cfg.lr_step_factor),
            "--lr-decay-epoch", ",".join(str(int(e)) for e in cfg.lr_step_epochs),
            "--warmup-epochs", str(int(cfg.warmup_epochs)), "--use-rec", "-j", "1"]
    for name in ("train", "val"):  # never opened: FixedRecordIter stands in
        argv += [f"--rec-{name}", str(folder / f"{name}.rec"),
                 f"--rec-{name}-idx", str(folder / f"{name}.idx")]
    argv += ["--resume-params", start_file, "--save-dir", str(folder / "script"),
             "--save-frequency", "1", "--logging-file", str(folder / "script.log")]
    argv += ["--no-wd"] * cfg.no_bias_decay + ["--last-gamma"] * cfg.zero_gamma
    argv += ["--label-smoothing"] * (cfg.label_smoothing > 0)
    if cfg.mixup_alpha > 0:
        argv += ["--mixup", "--mixup-alpha", repr(cfg.mixup_alpha),
                 "--mixup-off-epoch", str(cfg.mixup_off_epochs)]
    if cfg.distill:
        argv += ["--teacher", cfg.teacher_model, "--temperature", repr(cfg.temperature),
                 "--hard-weight", repr(cfg.hard_weight)]
    return argv


def run_ours(cfg, teacher, epochs, val, lams, start_file, monkeypatch):
    """Our trainer's network and epochs as :func:`gluon_tricks.train.loop.train` runs them
    (``build_training``, then per epoch ``train_one_epoch`` and ``evaluate``): its initial
    values (also saved to ``start_file``), its values after each epoch and its schedule."""
    training, _ = loop.build_training(cfg, [mx.cpu()], SingleProcess(), teacher,
                                      BATCHES_PER_EPOCH)
    training.net.save_parameters(start_file)
    start = values(training.net._collect_params_with_prefix())
    draws = iter(lams)
    monkeypatch.setattr(mixup, "sample_lambda", lambda alpha, rng: next(draws))
    after = []
    for epoch in range(cfg.epochs):
        loop.train_one_epoch(cfg, training, FixedLoader(epochs), epoch, QuietLog(),
                             SingleProcess())
        loop.evaluate(training.net, FixedLoader([[val]]), [mx.cpu()], cfg.dtype,
                      SingleProcess())
        after.append(values(training.net._collect_params_with_prefix()))
    return start, after, training.schedule


def run_script(script, argv, teacher, epochs, val, monkeypatch):
    """The script's ``main()`` on ``argv`` with the stand-ins of the module docstring.
    Returns the record iterators it made and the (name, kwargs) of its student network."""
    made, students = {}, []
    real_get_model = script.get_model

    def image_record_iter(path_imgrec, batch_size, data_shape, **kwargs):
        assert (batch_size, data_shape) == (BATCH, (3, PX, PX))
        kind = "train" if path_imgrec.endswith("train.rec") else "val"
        made[kind] = FixedRecordIter(epochs if kind == "train" else [[val]], batch_size)
        return made[kind]

    def get_model(name, pretrained=False, **kwargs):
        if pretrained:  # the teacher (l. 230)
            assert (name, kwargs["classes"]) == (TEACHER, CLASSES)
            return teacher
        students.append((name, kwargs))
        return real_get_model(name, pretrained=False, **kwargs)

    monkeypatch.setattr(mx.io, "ImageRecordIter", image_record_iter)
    monkeypatch.setattr(script, "get_model", get_model)
    monkeypatch.setattr(sys, "argv", argv)
    root = logging.getLogger("")
    handlers, level = list(root.handlers), root.level
    np.random.seed(SEED)
    try:
        script.main()
    finally:  # main() adds a file and a stream handler to the root logger (l. 161-167)
        for h in [h for h in root.handlers if h not in handlers]:
            root.removeHandler(h)
            h.close()
        root.setLevel(level)
    return made, students


def logged_lrs(log_file):
    """{epoch: lr} the script logs at the end of each epoch (l. 475: the lr of its last
    update, printed with 6 decimals)."""
    with open(log_file) as f:
        return {int(e): float(lr) for e, lr in
                re.findall(r"Epoch\[(\d+)\] Batch \[\d+\].*lr=([0-9.]+)", f.read())}


def compare(script, case, folder, monkeypatch):
    """Run both sides on ``case`` in ``folder``, asserting after every epoch; returns the
    largest absolute difference of any parameter after any epoch."""
    cfg = resolve(None, list(dict(BASE, **CASES[case]).items()))
    assert cfg.lr_formulas == "gluoncv" and cfg.initializer == "msra"
    epochs, val = fixed_batches()
    lams = (mixup_lambdas(cfg.mixup_alpha, cfg.epochs * BATCHES_PER_EPOCH)
            if cfg.mixup_alpha > 0 else [])
    teacher = teacher_net() if cfg.distill else None
    start_file = str(folder / "start.params")
    start, ours, schedule = run_ours(cfg, teacher, epochs, val, lams, start_file, monkeypatch)
    made, students = run_script(script, script_argv(cfg, folder, start_file), teacher, epochs,
                                val, monkeypatch)
    assert made["train"].resets == cfg.epochs and made["val"].resets == cfg.epochs

    # nothing else in main() draws from numpy's global generator: one lambda per update
    # (in mixup's off epochs too, where it then mixes with lambda = 1, l. 430-432), none
    # without mixup
    expected = np.random.RandomState(SEED)
    for _ in lams:
        expected.beta(cfg.mixup_alpha, cfg.mixup_alpha)
    drawn, want = np.random.get_state(), expected.get_state()
    assert np.array_equal(drawn[1], want[1]) and drawn[2:] == want[2:]

    # the script's own initialisation of this command line (l. 214-215, 222, 397) zeroes the
    # gammas ours zeroes: under gluoncv on bottlenecks only (BasicBlockV1b has no last_gamma)
    (name, kwargs), = students
    fresh = gluoncv_get_model(name, **kwargs)
    fresh.initialize(mx.init.MSRAPrelu(), ctx=kwargs["ctx"])
    fresh(mx.nd.zeros((1, 3, PX, PX)))
    assert zero_gammas(values(fresh._collect_params_with_prefix())) == zero_gammas(start)
    assert bool(zero_gammas(start)) == (cfg.zero_gamma and "18" not in cfg.model)

    lrs = logged_lrs(folder / "script.log")
    assert sorted(lrs) == list(range(cfg.epochs))
    worst = 0.0
    for epoch, after in enumerate(ours):
        assert lrs[epoch] == pytest.approx(schedule.lr((epoch + 1) * BATCHES_PER_EPOCH),
                                           abs=1e-6), f"lr of epoch {epoch}"
        saved = values(mx.nd.load(str(folder / "script" /
                                      f"imagenet-{cfg.model}-{epoch}.params")))
        assert sorted(saved) == sorted(after)
        for k, theirs in saved.items():
            np.testing.assert_allclose(after[k], theirs, rtol=2e-4, atol=2e-6,
                                       err_msg=f"{k} after epoch {epoch}")
            worst = max(worst, float(np.abs(after[k] - theirs).max()))
    moved = sum(not np.array_equal(v, start[k]) for k, v in ours[-1].items())
    assert moved > len(start) // 2  # the updates did something to compare
    return worst


def child(script_path, out):
    """In the child process (naive engine): every case, each in a folder of its own under
    ``out``; writes {case: {"max_abs_diff": d} or {"error": traceback}} to out/verdicts.json."""
    spec = importlib.util.spec_from_file_location("gluoncv_train_imagenet", script_path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)  # imports, gcv.utils.check_version('0.6.0')
    verdicts = {}
    for case in CASES:
        folder = out / case
        folder.mkdir()
        try:
            with pytest.MonkeyPatch.context() as monkeypatch:
                verdicts[case] = dict(max_abs_diff=compare(script, case, folder, monkeypatch))
        except Exception:
            verdicts[case] = dict(error=traceback.format_exc(limit=-3))
    (out / "verdicts.json").write_text(json.dumps(verdicts, indent=1))


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory):
    """Every case's verdict from one child process on the naive engine."""
    path = os.environ.get("GLUONCV_TRAIN_SCRIPT")
    if not path:
        pytest.skip(f"set GLUONCV_TRAIN_SCRIPT=path/to/train_imagenet.py to drive the "
                    f"authors' script: {WHERE}")
    if not os.path.isfile(path):
        pytest.fail(f"GLUONCV_TRAIN_SCRIPT={path}: no such file; get {WHERE}", pytrace=False)
    out = tmp_path_factory.mktemp("gluoncv_script")
    env = dict(os.environ, MXNET_ENGINE_TYPE="NaiveEngine",
               PYTHONPATH=os.pathsep.join(filter(None, [REPO, os.environ.get("PYTHONPATH")])))
    done = subprocess.run([sys.executable, __file__, os.path.abspath(path), str(out)], env=env,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads((out / "verdicts.json").read_text())


@pytest.mark.parametrize("case", sorted(CASES))
def test_scripts_main_trains_what_our_trainer_trains(verdicts, case):
    """Twelve updates over three epochs from the same weights on the same batches: after
    every epoch every parameter of the network the script saved equals ours to float32
    rounding, and the lr it logged is our schedule's. (Measured: bit-equal, every case.)"""
    verdict = verdicts[case]
    if "error" in verdict:
        pytest.fail(f"{case}:\n{verdict['error']}", pytrace=False)


if __name__ == "__main__":
    child(sys.argv[1], Path(sys.argv[2]))
