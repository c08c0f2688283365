"""Host synchronisations per training step: none in FP32, exactly one (the overflow verdict)
with loss scaling, counted on CPU. Every read of a device value goes through
NDArray.asnumpy (asscalar, bool() and float() call it), wait_to_read or waitall, so
counting those counts the places where Python waits for the device."""
from functools import partial

import mxnet as mx
import pytest

from gluon_tricks.data.shards import split_batch
from gluon_tricks.train.config import TrainConfig
from gluon_tricks.train.metrics import EpochSums
from gluon_tricks.train.mixup import mixup
from gluon_tricks.train.step import StepSettings, TrainStep
from gluon_tricks.train.loss_scale import DynamicLossScaler, StaticLossScaler
from gluon_tricks.train.optim import make_optimizer


@pytest.fixture
def syncs(monkeypatch):
    """A list that grows by one name per host synchronisation."""
    calls = []
    for name in ("asnumpy", "wait_to_read"):
        original = getattr(mx.nd.NDArray, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(mx.nd.NDArray, name, counted)
    original_waitall = mx.nd.waitall
    monkeypatch.setattr(mx.nd, "waitall", lambda: (calls.append("waitall"),
                                                   original_waitall())[1])
    return calls


def small_net():
    net = mx.gluon.nn.HybridSequential()
    net.add(mx.gluon.nn.Conv2D(8, 3, padding=1, in_channels=3), mx.gluon.nn.BatchNorm(),
            mx.gluon.nn.Activation("relu"), mx.gluon.nn.GlobalAvgPool2D(),
            mx.gluon.nn.Dense(10, in_units=8))
    net.initialize(mx.init.Xavier())
    net.hybridize()
    return net


@pytest.mark.parametrize("scaler, per_step", [(None, 0), (StaticLossScaler(128.0), 1),
                                               (DynamicLossScaler(), 1)],
                         ids=["fp32", "static-scale", "dynamic-scale"])
def test_host_syncs_per_step(syncs, scaler, per_step):
    """With label smoothing and mixup, as the paper's full bag trains; the epoch's sums are
    added on the device. (FP32 weights stand in for FP16: the scaler's logic and its one
    verdict per step do not depend on the dtype, and CPU has no FP16 GEMM.)"""
    cfg = TrainConfig(model="resnet18_v1d", classes=10, batch_size=8, label_smoothing=0.1,
                      mixup_alpha=0.2)
    net = small_net()
    trainer = mx.gluon.Trainer(net.collect_params(), make_optimizer(0.1))
    step = TrainStep(StepSettings.of(cfg), net, trainer, [mx.cpu()], scaler=scaler)
    data, label = mx.nd.random.normal(shape=(8, 3, 8, 8)), mx.nd.array(range(8)) % 10
    xs, ys = split_batch(data, label, [mx.cpu()])
    sums = EpochSums(mx.cpu(), mixing=True)
    sums.add(*step(xs, ys, partial(mixup, lam=0.3)), ys)  # first step: shapes, kernels, state
    mx.nd.waitall()
    syncs.clear()
    for _ in range(5):
        sums.add(*step(xs, ys, partial(mixup, lam=0.3)), ys)
    assert len(syncs) == 5 * per_step, syncs
    syncs.clear()
    sums.reduce(type("One", (), {"allreduce_sum": staticmethod(lambda v: v)}))
    assert len(syncs) == 1  # once per epoch: the loss and the hits come back together
