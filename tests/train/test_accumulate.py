"""Gradient accumulation (issue 33): the batch plan of a recipe on D devices, and k
micro-batches of b images per update making the update one batch of k x b makes, on networks
without BatchNorm (whose statistics would see another batch), where it must hold to float32
rounding."""
import json
import os
import signal
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.cli import train as cli_train
from gluon_tricks.data.shards import split_batch
from gluon_tricks.errors import run_cli
from gluon_tricks.run.parallel import SingleProcess
from gluon_tricks.run.recipe import ConfigError
from gluon_tricks.train.config import TrainConfig, batch_plan, schedule_of
from gluon_tricks.train.loop import Training, train_one_epoch
from gluon_tricks.train.loss_scale import StaticLossScaler
from gluon_tricks.train.optim import make_optimizer
from gluon_tricks.train.step import StepSettings, TrainStep

from helpers import assert_one_line_error, tiny_flags

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TRAIN_PY = os.path.join(ROOT, "recipes", "train_imagenet.py")
KILL_WORKER = os.path.join(os.path.dirname(__file__), "kill_worker.py")
TWO = [mx.cpu(0), mx.cpu(1)]
CLASSES = 5


# (batch_size, batch_per_device, accumulate, devices, ranks) ->
# (accumulate, rank_batch, per_device) or the words of the refusal
@pytest.mark.parametrize("keys, devices, ranks, expected", [
    (dict(batch_size=256), 1, 1, (1, 256, 256)),                      # the demo's rule
    (dict(batch_size=256), 8, 1, (1, 256, 32)),
    (dict(batch_size=256), 3, 1, (1, 256, 85)),                       # 86, 85, 85
    (dict(batch_size=256, accumulate=4), 2, 1, (4, 64, 32)),
    (dict(batch_size=1024), 4, 4, (1, 256, 64)),                      # 16 ranks' BN batch
    (dict(batch_size=1024, batch_per_device=128), 8, 1, (1, 1024, 128)),  # the authors' run
    (dict(batch_size=1024, batch_per_device=128), 2, 1, (4, 256, 128)),
    (dict(batch_size=1024, batch_per_device=128), 1, 1, (8, 128, 128)),
    (dict(batch_size=1024, batch_per_device=128), 1, 2, (4, 128, 128)),  # 2 ranks x 1 GPU
    (dict(batch_size=256, batch_per_device=32, accumulate=2), 4, 1, (2, 128, 32)),
    (dict(batch_size=1024, batch_per_device=128), 3, 1, ["1, 2, 4 or 8 devices"]),
    (dict(batch_size=256, batch_per_device=32), 16, 1, ["1, 2, 4 or 8 devices"]),
    (dict(batch_size=1024, batch_per_device=128, accumulate=1), 2, 1,
     ["disagree", "accumulate 4", "batch_per_device=null"]),
    (dict(batch_size=64, batch_per_device=128), 1, 1,                 # no device count fits
     ["batch_size 64", "on any number of devices", "batch_per_device=null"]),
    (dict(batch_size=96, batch_per_device=64), 2, 1, ["on any number of devices"]),
    (dict(batch_size=256, accumulate=3), 1, 1, ["accumulate 3"]),
    (dict(batch_size=8, accumulate=2), 8, 1, ["each of 8 device(s)"]),
])
def test_batch_plan(keys, devices, ranks, expected):
    cfg = TrainConfig(**keys)
    if isinstance(expected, list):
        with pytest.raises(ConfigError) as e:
            batch_plan(cfg, devices, ranks)
        assert "\n" not in str(e.value) and all(w in str(e.value) for w in expected), e.value
        return
    plan = batch_plan(cfg, devices, ranks)
    assert (plan.accumulate, plan.rank_batch, plan.per_device) == expected
    # the global batch is held exactly: ranks x micro-batches x the rank's micro-batch
    assert plan.global_batch == ranks * plan.accumulate * plan.rank_batch == cfg.batch_size
    assert f"accumulate {plan.accumulate}; BN batch {plan.per_device}" in plan.line()


def convnet(contexts, seed=0):
    """Conv, Dense, no BatchNorm: the same for any split of the batch."""
    mx.random.seed(seed)
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Conv2D(6, 3, in_channels=3, activation="relu"),
            mx.gluon.nn.Flatten(), mx.gluon.nn.Dense(16, in_units=6 * 4 * 4, activation="relu"),
            mx.gluon.nn.Dense(CLASSES, in_units=16))
    net.initialize(mx.init.Xavier(), ctx=contexts)
    net.hybridize()
    return net


def trained(contexts, accumulate, data, labels, scaler=None):
    """(net, trainer, step) after one update per row of ``data`` (U, B, ...), each as
    ``accumulate`` micro-batches of B / accumulate images split over ``contexts``, at the lr
    0.1 x (u + 1) / U of update u."""
    net = convnet(contexts)
    trainer = SingleProcess().trainer(net.collect_params(),
                                      make_optimizer(0.1, momentum=0.9, wd=1e-4), len(contexts))
    step = TrainStep(StepSettings(classes=CLASSES, label_smoothing=0.1, accumulate=accumulate),
                     net, trainer, contexts, scaler=scaler)
    for u, (x, y) in enumerate(zip(data, labels)):
        trainer.set_learning_rate(0.1 * (u + 1) / len(data))
        for xm, ym in zip(np.split(x, accumulate), np.split(y, accumulate)):
            step(*split_batch(mx.nd.array(xm), mx.nd.array(ym), contexts))
    return net, trainer, step


def values(net, trainer):
    """Every weight and every optimizer state (NAG's momentum), as numpy, by name."""
    params = net._collect_params_with_prefix()
    out = {k: p.list_data()[0].asnumpy() for k, p in params.items()}
    by_id = {id(p): k for k, p in params.items()}
    names = {i: by_id[id(p)] for i, p in enumerate(trainer._params)}
    for i, state in trainer._updaters[0].states.items():
        out[f"momentum of {names[i]}"] = state.asnumpy()
    return out


def batches(updates=5, batch=16, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(updates, batch, 3, 6, 6)).astype(np.float32),
            rng.integers(0, CLASSES, size=(updates, batch)).astype(np.float32))


@pytest.mark.parametrize("contexts", [[mx.cpu()], TWO], ids=["one device", "two devices"])
@pytest.mark.parametrize("accumulate", [2, 4])
def test_k_micro_batches_update_as_one_batch_of_k_times_the_images(contexts, accumulate):
    """5 updates of 16 images: as 1 batch of 16 and as k micro-batches of 16 / k; every
    weight and momentum equal to float32 rounding (the gradient sums differ in order only)."""
    data, labels = batches()
    whole = values(*trained(contexts, 1, data, labels)[:2])
    micro = values(*trained(contexts, accumulate, data, labels)[:2])
    start = {k: p.list_data()[0].asnumpy()
             for k, p in convnet(contexts)._collect_params_with_prefix().items()}
    worst = max(float(np.abs(micro[k] - whole[k]).max()) for k in whole)
    print(f"\n{len(contexts)} device(s), accumulate {accumulate}, 5 updates: max abs "
          f"difference of weights and momenta {worst:.3g}")
    assert set(micro) == set(whole) and len(whole) == 2 * len(start)
    for k in whole:
        np.testing.assert_allclose(micro[k], whole[k], rtol=1e-5, atol=1e-6, err_msg=k)
        if not k.startswith("momentum"):
            assert not np.array_equal(whole[k], start[k]), k  # the updates moved it


def test_an_overflow_in_one_micro_batch_skips_exactly_its_update():
    """A NaN in the 2nd micro-batch of update 2 (of 3, 2 micro-batches each): that update is
    skipped as a whole and nothing of it is left in the gradients, so the weights and momenta
    are those of updates 1 and 3 alone (FP32 stands in for FP16: the verdict is on the
    gradients, whatever their dtype)."""
    data, labels = batches(updates=3)
    bad = data.copy()
    bad[1, 12] = np.nan
    net, trainer, step = trained([mx.cpu()], 2, bad, labels, StaticLossScaler(1.0))
    assert step.skipped == 1
    reference = convnet([mx.cpu()])
    ref_trainer = SingleProcess().trainer(reference.collect_params(),
                                          make_optimizer(0.1, momentum=0.9, wd=1e-4), 1)
    ref_step = TrainStep(StepSettings(classes=CLASSES, label_smoothing=0.1), reference,
                         ref_trainer, [mx.cpu()])
    for u in (0, 2):
        ref_trainer.set_learning_rate(0.1 * (u + 1) / 3)
        ref_step(*split_batch(mx.nd.array(data[u]), mx.nd.array(labels[u]), [mx.cpu()]))
    got, want = values(net, trainer), values(reference, ref_trainer)
    for k in want:
        assert np.isfinite(got[k]).all(), k
        np.testing.assert_allclose(got[k], want[k], rtol=1e-5, atol=1e-6, err_msg=k)


class Loader:
    """A host loader of ``images`` random images in batches of ``batch_size`` (the last
    partial batch dropped, as the training loaders do)."""

    def __init__(self, images, batch_size):
        self.batch_size, self.batches_per_epoch = batch_size, images // batch_size
        self.read = 0

    def epoch(self, epoch):
        rng = np.random.default_rng(epoch)
        for _ in range(self.batches_per_epoch):
            self.read += 1
            yield (mx.nd.array(rng.normal(size=(self.batch_size, 3, 6, 6))),
                   mx.nd.array(rng.integers(0, CLASSES, self.batch_size)))


class Log:
    def info(self, *args):
        pass

    def record(self, **fields):
        pass


@pytest.mark.parametrize("images", [44, 48])
def test_the_lr_of_update_u_does_not_depend_on_accumulation(images):
    """An epoch of ``images`` at global batch 8, warmup over it: floor(images / 8) updates,
    each at the warmup lr of its update index (peak x u / m), with and without accumulating
    4 micro-batches of 2; every micro-batch the loader made is read."""
    cfg = TrainConfig(classes=CLASSES, batch_size=8, base_lr_per_256=25.6, epochs=2,
                      warmup_epochs=1, log_interval=2)
    updates = images // 8
    seen = {}
    for accumulate in (1, 4):
        net = convnet([mx.cpu()])
        trainer = mx.gluon.Trainer(net.collect_params(), make_optimizer(0.1))
        step = TrainStep(StepSettings(classes=CLASSES, accumulate=accumulate), net, trainer,
                         [mx.cpu()])
        calls, update = [], trainer.update
        trainer.update = lambda n, _update=update: (calls.append((trainer.learning_rate, n)),
                                                    _update(n))
        loader = Loader(images, 8 // accumulate)
        sums = train_one_epoch(cfg, Training(net, trainer, step, schedule_of(cfg, updates),
                                             None),
                               loader, 0, Log(), SingleProcess())
        assert loader.read == loader.batches_per_epoch and sums.samples == updates * 8
        seen[accumulate] = calls
    peak = cfg.peak_lr()
    assert peak == pytest.approx(0.8)
    assert [n for _, n in seen[4]] == [8] * updates
    np.testing.assert_allclose([lr for lr, _ in seen[4]],
                               [peak * u / updates for u in range(1, updates + 1)], rtol=1e-6)
    assert seen[4] == seen[1]


def test_an_accumulating_run_resumes_bit_identical_and_states_its_plan(tiny32, tmp_path):
    """The digits run at global batch 64 as 2 micro-batches of 32: 2 epochs straight, and 1
    epoch, then a resume killed (SIGKILL) in epoch 2 after the first micro-batch of its
    2nd, last update (its gradients summed, no update made), then --resume again: checkpoints are at
    epoch ends, so at update ends, and both runs end on the same bits. The log's first
    lines state the plan, and log.jsonl records it for each start. (A kill in the same
    process as the resume cannot show this: MXNet's threaded engine there is not bit-exact,
    docs/notes.md §4; the command line runs the naive engine on CPU.)"""
    flags = ["--rec-train", tiny32["train"], "--rec-val", tiny32["val"], *tiny_flags(),
             "--set", "accumulate=2"]
    straight, split = str(tmp_path / "straight"), str(tmp_path / "split")
    plan = "global batch 64 = 1 device(s) (1 rank(s) x 1) x 32 per device x accumulate 2"
    for args in ([*flags, "--out", straight], [*flags, "--out", split, "--stop-after", "1"],
                 ["--out", split, "--resume"]):
        if args[-1] == "--resume":
            killed = subprocess.run([sys.executable, KILL_WORKER, *args], capture_output=True,
                                    text=True, timeout=600, env=dict(os.environ,
                                                                     GT_TEST_KILL_AT="4"))
            assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
            assert "killed with 1 micro-batch(es) of the update pending" in killed.stdout
            assert plan in killed.stdout
        proc = subprocess.run([sys.executable, TRAIN_PY, *args], capture_output=True,
                              text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert f"{plan}; BN batch 32" in proc.stdout
    a, b = (mx.nd.load(os.path.join(run, "checkpoints", "epoch-0002.params"))
            for run in (straight, split))
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k].asnumpy(), b[k].asnumpy(), err_msg=k)
    with open(os.path.join(split, "log.jsonl")) as f:
        plans = [r for r in map(json.loads, f) if r["type"] == "plan"]
    # the start, and the resume that finished epoch 2 (the killed one's record is dropped
    # with its epoch)
    assert [(r["epoch"], r["accumulate"], r["rank_batch"], r["devices"], r["ranks"])
            for r in plans] == [(1, 2, 32, 1, 1), (2, 2, 32, 1, 1)]


TABLE6_BAG = os.path.join(ROOT, "recipes", "table6", "resnet50_v1d_distill_mixup.yaml")


def print_config(capsys, *flags):
    """``train_imagenet.py --recipe TABLE6_BAG --print-config FLAGS`` in this process (the
    command line's work without its process set-up): (exit status, stdout, stderr)."""
    args = cli_train.parse_args(["--recipe", TABLE6_BAG, "--print-config", *flags])
    status = run_cli(cli_train.run, args)
    out = capsys.readouterr()
    return status, out.out, out.err


@pytest.mark.parametrize("flags, line", [
    (["--gpus", "0"], "1 device(s) (1 rank(s) x 1) x 128 per device x accumulate 8"),
    (["--gpus", "0,1"], "2 device(s) (1 rank(s) x 2) x 128 per device x accumulate 4"),
    (["--gpus", "0,1,2,3"], "4 device(s) (1 rank(s) x 4) x 128 per device x accumulate 2"),
    # a Horovod job: one device per rank, whatever --gpus lists (a host's GPUs)
    (["--gpus", "0,1,2,3,4,5,6,7", "--ranks", "8"],
     "8 device(s) (8 rank(s) x 1) x 128 per device x accumulate 1"),
    (["--gpus", "0,1,2,3", "--ranks", "2"],
     "2 device(s) (2 rank(s) x 1) x 128 per device x accumulate 4"),
    (["--ranks", "4"], "4 device(s) (4 rank(s) x 1) x 128 per device x accumulate 2"),
], ids=["1 GPU", "2 GPUs", "4 GPUs", "8 ranks", "2 ranks", "4 ranks on CPU"])
def test_print_config_states_the_plan_on_the_gpus_given(capsys, flags, line):
    """--print-config --gpus (and --ranks, a Horovod job's size): the plan on that many
    devices (on stderr, stdout is the recipe), with no GPU here."""
    status, out, err = print_config(capsys, *flags, "--set", "batch_per_device=128")
    assert status == 0, err[-3000:]
    assert f"# global batch 1024 = {line}; BN batch 128" in err.splitlines()
    assert "\nbatch_per_device: 128\n" in out and "global batch" not in out


@pytest.mark.parametrize("flags, words", [
    (["--gpus", "0,1,2,3,4,5,6,7", "--ranks", "16"],
     ["1024", "128 x 16 device(s)", "1, 2, 4 or 8 devices"]),
    (["--ranks", "0"], ["--ranks 0", "positive"]),
    (["--gpus", "0,1", "--ranks", "-2"], ["--ranks -2", "positive"]),
])
def test_print_config_refuses_ranks_it_cannot_plan(capsys, flags, words):
    status, _, err = print_config(capsys, *flags)
    assert status == 2, err[-3000:]
    assert_one_line_error(err, *words)


def test_ranks_is_refused_without_print_config(capsys):
    """--ranks only sizes --print-config's plan: a run's ranks are horovodrun's (refused
    before any other check, such as the missing data files)."""
    args = cli_train.parse_args(["--recipe", TABLE6_BAG, "--ranks", "2", "--gpus", "0"])
    assert run_cli(cli_train.run, args) == 2
    assert_one_line_error(capsys.readouterr().err, "--ranks 2", "only with --print-config")
