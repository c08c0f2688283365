"""Several devices in one process (--gpus 0,1,... on a GPU machine), with two CPU contexts
standing in for two GPUs: the same numbers as one device where the computation is the same,
BatchNorm statistics averaged before validation and saving, and checkpoints that hold the
network the log scored."""
import json
import os
import subprocess
import sys
from functools import partial

import mxnet as mx
import numpy as np
import pytest

import gluon_tricks.data as gt_data
from gluon_tricks.data.shards import split_batch
from gluon_tricks.models import get_model
from gluon_tricks.run.checkpoints import save_network
from gluon_tricks.train.config import TrainConfig
from gluon_tricks.run.parallel import SingleProcess
from gluon_tricks.train.metrics import evaluate
from gluon_tricks.train.mixup import mixup
from gluon_tricks.train.step import StepSettings, TrainStep
from gluon_tricks.train.optim import make_optimizer

from helpers import module_folder, tiny_config

TWO = [mx.cpu(0), mx.cpu(1)]


def mlp(contexts):
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(16, activation="relu", in_units=12),
            mx.gluon.nn.Dense(5, in_units=16))
    net.initialize(mx.init.Xavier(), ctx=contexts)
    return net


def test_two_devices_compute_what_one_does_without_batchnorm():
    """Per-sample losses, gradients summed over the devices by the kvstore, one update: the
    same as one device on the whole batch (label smoothing included; mixup pairs within
    each device's share, so it is left out of the comparison)."""
    cfg = TrainConfig(model="resnet18_v1d", classes=5, label_smoothing=0.1)
    rng = np.random.default_rng(0)
    data = mx.nd.array(rng.normal(size=(8, 12)))
    label = mx.nd.array(rng.integers(0, 5, 8))
    nets = {}
    for name, contexts in (("one", [mx.cpu()]), ("two", TWO)):
        mx.random.seed(0)
        net = mlp(contexts)
        trainer = SingleProcess().trainer(net.collect_params(), make_optimizer(0.1),
                                          len(contexts))
        step = TrainStep(StepSettings.of(cfg), net, trainer, contexts)
        for _ in range(3):
            step(*split_batch(data, label, contexts))
        nets[name] = {k: p.list_data()[0].asnumpy()
                      for k, p in net._collect_params_with_prefix().items()}
    for k in nets["one"]:
        np.testing.assert_allclose(nets["two"][k], nets["one"][k], rtol=1e-5, atol=1e-6,
                                   err_msg=k)


def test_running_statistics_are_averaged_over_devices():
    net = mx.gluon.nn.BatchNorm(in_channels=3)
    net.initialize(ctx=TWO)
    rng = np.random.default_rng(1)
    for p in (net.running_mean, net.running_var):  # as two devices' batches leave them
        for d in p.list_data():
            d[:] = rng.uniform(0.5, 2.0, 3)
    before = {k: [d.asnumpy() for d in p.list_data()] for k, p in net.collect_params().items()}
    assert not np.array_equal(*before[net.running_mean.name])
    SingleProcess().average_running_stats(net.collect_params())
    for p in (net.running_mean, net.running_var):
        a, b = (d.asnumpy() for d in p.list_data())
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, np.mean(before[p.name], axis=0), rtol=1e-6)
    for p in (net.gamma, net.beta):  # trained parameters are the kvstore's business
        assert all(np.array_equal(d.asnumpy(), before[p.name][0]) for d in p.list_data())


def test_checkpoints_hold_one_device_copy_unchanged(tmp_path):
    """FP16 weights that 8 devices hold identically are saved as they are. (MXNet's
    save_parameters averages the 8 copies in FP16: 0.7 came out 0.6997 and 3.1 as 3.098.)"""
    net = mx.gluon.nn.Dense(3, in_units=7)
    net.initialize(ctx=[mx.cpu(i) for i in range(8)])
    net.cast("float16")
    for value in (np.float16(0.7), np.float16(3.1)):
        for d in net.weight.list_data():
            d[:] = value
        save_network(net, str(tmp_path / "w.params"))
        saved = mx.nd.load(str(tmp_path / "w.params"))["weight"]
        assert saved.dtype == np.float16 and np.all(saved.asnumpy() == value)


def test_two_device_run_saves_the_network_it_validated(two_device_runs, tiny32):
    """A 2-epoch run on two devices: the best epoch's logged top-1 is what best.params
    scores on one device (within one image of float rounding in the split batch)."""
    run = two_device_runs["straight"]
    with open(os.path.join(run, "best.json")) as f:
        best = json.load(f)
    net = get_model("resnet18_v1d", classes=10)
    net.load_parameters(os.path.join(run, "best.params"), ctx=mx.cpu())
    _, val = gt_data.make_loaders(gt_data.DataConfig(input_size=32, num_workers=1),
                                  tiny32["train"], tiny32["val"], 64)
    top1, _, n = evaluate(net, val, [mx.cpu()], "float32", SingleProcess())
    assert n == tiny32["val_images"], n
    assert abs(top1 - best["val_top1"]) <= 1 / n + 1e-9, (top1, best)


def test_mixup_runs_on_each_device_within_its_share():
    """The logits TrainStep returns (computed before the update) are those of each device's
    share mixed with itself reversed, as GluonCV mixes after splitting: a numpy reference
    through a linear layer."""
    cfg = TrainConfig(model="resnet18_v1d", classes=5)
    net = mx.gluon.nn.Dense(5, in_units=12)
    net.initialize(mx.init.Xavier(), ctx=TWO)
    w, b = net.weight.list_data()[0].asnumpy(), net.bias.list_data()[0].asnumpy()
    trainer = SingleProcess().trainer(net.collect_params(), make_optimizer(0.1), 2)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(8, 12)).astype(np.float32)
    _, outputs = TrainStep(StepSettings.of(cfg), net, trainer, TWO)(
        *split_batch(mx.nd.array(x), mx.nd.arange(8) % 5, TWO), partial(mixup, lam=0.3))
    assert [z.context for z in outputs] == TWO
    for z, share in zip(outputs, (x[:4], x[4:])):
        mixed = 0.3 * share + 0.7 * share[::-1]
        np.testing.assert_allclose(z.asnumpy(), mixed @ w.T + b, rtol=1e-5, atol=1e-5)


def test_validation_from_page_locked_memory_counts_every_image(demo32):
    """Batches for a GPU arrive in cpu_pinned memory; the short last one is padded there."""
    net = get_model("resnet18_v1d", classes=10)
    net.initialize(ctx=mx.cpu())
    val = gt_data.make_loader(gt_data.DataConfig(input_size=32, num_workers=1), demo32["val"],
                              64, train=False, pin_device=0)
    assert 360 % 64 and evaluate(net, val, [mx.cpu()], "float32", SingleProcess())[2] == 360



def test_first_step_keeps_every_devices_batchnorm_statistics():
    """MXNet's Trainer sets up its kvstore at the first allreduce and then copies the first
    device's value of every parameter, running statistics included, to the others. Our
    trainer sets the kvstore up before any forward pass, so the second device's statistics
    after the first step are those its own half of the batch gave (a numpy reference), not
    a copy of the first device's."""
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Dense(4, in_units=3), mx.gluon.nn.BatchNorm(in_channels=4))
    net.initialize(mx.init.Xavier(), ctx=TWO)
    trainer = SingleProcess().trainer(net.collect_params(), make_optimizer(0.1), 2)
    x = np.random.default_rng(5).normal(size=(8, 3)).astype(np.float32)
    x[4:] += 3.0  # the second device's half has other statistics
    w, b = (p.list_data()[0].asnumpy() for p in (net[0].weight, net[0].bias))
    with mx.autograd.record():
        losses = [net(mx.nd.array(share, ctx=c)).sum() for share, c in zip((x[:4], x[4:]), TWO)]
    mx.autograd.backward(losses)
    trainer.allreduce_grads()
    trainer.update(8)
    running = net[1].running_mean
    for share, copy in zip((x[:4], x[4:]), running.list_data()):
        expected = 0.1 * (share @ w.T + b).mean(axis=0)  # momentum 0.9 from zero
        np.testing.assert_allclose(copy.asnumpy(), expected, rtol=1e-4, atol=1e-6)


RESUME_SCRIPT = """
import sys
import mxnet as mx
sys.path.insert(0, {tests!r})
from helpers import tiny_config
from gluon_tricks.run.lifecycle import Launch
from gluon_tricks.train.loop import train
cfg = tiny_config(epochs=2, mixup_alpha=0.0)
two = [mx.cpu(0), mx.cpu(1)]
kwargs = dict(resume=True) if sys.argv[2] == "resume" else dict(stop_after=int(sys.argv[2]))
train(cfg, {train!r}, {val!r}, sys.argv[1], contexts=two, launch=Launch(**kwargs))
"""


@pytest.fixture(scope="module")
def two_device_runs(tiny32, tmp_path_factory):
    """Two epochs on two devices on the small slice, straight and as 1 + resume, each part in a
    process of its own under MXNet's naive engine, as the CLI runs on CPU: the threaded
    engine lets the two CPU 'devices' run at once on shared cores, and oneDNN then sums in
    an order that depends on timing (two identical straight runs differ too)."""
    with module_folder(tmp_path_factory, "two_devices") as root:
        script = root / "run.py"
        script.write_text(RESUME_SCRIPT.format(tests=os.path.dirname(os.path.dirname(__file__)),
                                               train=tiny32["train"], val=tiny32["val"]))
        env = dict(os.environ, MXNET_ENGINE_TYPE="NaiveEngine")
        for run, how in (("straight", "2"), ("split", "1"), ("split", "resume")):
            done = subprocess.run([sys.executable, str(script), str(root / run), how], env=env,
                                  capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, done.stderr[-2000:]
        yield {run: str(root / run) for run in ("straight", "split")}


def test_two_device_resume_is_exact(two_device_runs):
    """Two epochs on two devices, straight and as 1 + resume: bit-equal weights and running
    statistics."""
    a, b = (mx.nd.load(os.path.join(two_device_runs[run], "checkpoints", "epoch-0002.params"))
            for run in ("straight", "split"))
    assert a.keys() == b.keys() and any("running_var" in k for k in a)
    for k in a:
        np.testing.assert_array_equal(a[k].asnumpy(), b[k].asnumpy(), err_msg=k)
