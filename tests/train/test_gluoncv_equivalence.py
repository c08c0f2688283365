"""Under ``conventions: gluoncv`` our trainer's pieces (the schedule of the recipe, the network
and optimizer as build_training makes them, TrainStep) do what the authors' script does,
step by step, to float32 rounding. The truth is the same loop composed from GluonCV's and
MXNet's own library: GluonCV's network class, ``LRSequential``/``LRScheduler`` as the
optimizer's lr_scheduler, MXNet's NAG with the script's ``--no-wd`` and ``--last-gamma``,
``SoftmaxCrossEntropyLoss``/``DistillationSoftmaxCrossEntropyLoss``, the script's one-hot
smoothing and mixup on the reversed batch, ``Trainer.step(batch)``.

With ``GLUONCV_TRAIN_SCRIPT=path/to/train_imagenet.py`` (the ``dmlc/gluon-cv`` repository,
``scripts/classification/imagenet/``) :mod:`test_gluoncv_script` also drives the script's
own ``main()``.
"""
from functools import partial

import mxnet as mx
import numpy as np
import pytest
from mxnet import autograd, gluon

from gluon_tricks.data.shards import split_batch
from gluon_tricks.models import gluoncv_model
from gluon_tricks.run.parallel import SingleProcess
from gluon_tricks.train.config import resolve
from gluon_tricks.train.loop import build_training
from gluon_tricks.train.mixup import mixup

CLASSES, BATCH, PX, BATCHES_PER_EPOCH = 10, 8, 32, 4
# 3 epochs of 4 updates: 1 of warmup, then cosine (or step at epoch 2)
BASE = dict(conventions="gluoncv", classes=CLASSES, batch_size=BATCH, epochs=3,
            base_lr_per_256=3.2, wd=1e-4, momentum=0.9, lr_step_epochs=[2],
            **{"data.input_size": PX})
TRICKS = {
    "baseline": dict(model="resnet18_v1b"),
    "warmup_cosine": dict(model="resnet18_v1b", warmup_epochs=1, lr_mode="cosine"),
    "no_bias_decay": dict(model="resnet18_v1b", no_bias_decay=True),
    "zero_gamma_bottleneck": dict(model="resnet50_v1b", zero_gamma=True),
    "zero_gamma_basic": dict(model="resnet18_v1b", zero_gamma=True),
    "label_smoothing": dict(model="resnet18_v1b", label_smoothing=0.1),
    "mixup": dict(model="resnet18_v1b", mixup_alpha=0.2),
    "distillation": dict(model="resnet18_v1b", distill=True, temperature=20.0),
    "whole_bag": dict(model="resnet18_v1d", warmup_epochs=1, lr_mode="cosine",
                      no_bias_decay=True, zero_gamma=True, label_smoothing=0.1,
                      mixup_alpha=0.2, distill=True),
}


def batches(seed=0):
    """Three epochs of fixed batches and the mixup coefficients (or None) of each."""
    rng = np.random.default_rng(seed)
    n = 3 * BATCHES_PER_EPOCH
    data = rng.normal(size=(n, BATCH, 3, PX, PX)).astype("float32")
    labels = rng.integers(0, CLASSES, size=(n, BATCH)).astype("float32")
    return data, labels, rng.beta(0.2, 0.2, size=n)


def teacher_net():
    """A fixed random ResNet-18-V1b as the teacher of both loops (inference mode)."""
    mx.random.seed(7)
    net = gluoncv_model("resnet18_v1b", CLASSES)
    net.initialize(mx.init.MSRAPrelu())
    net(mx.nd.zeros((1, 3, PX, PX)))
    net.collect_params().setattr("grad_req", "null")
    return net


def ours(cfg, teacher, data, labels, lams):
    training, _ = build_training(cfg, [mx.cpu()], SingleProcess(), teacher, BATCHES_PER_EPOCH)
    start = {k: v.data().copy() for k, v in training.net._collect_params_with_prefix().items()}
    for i, (x, y) in enumerate(zip(data, labels), start=1):
        training.trainer.set_learning_rate(training.schedule.lr(i))
        mix = partial(mixup, lam=lams[i - 1]) if cfg.mixup_alpha > 0 else None
        training.step(*split_batch(mx.nd.array(x), mx.nd.array(y), [mx.cpu()]), mix)
    return start, training.net


def theirs(cfg, start, teacher, data, labels, lams):
    """The script's loop on GluonCV's network and library pieces, from the weights ``start``."""
    from gluoncv.loss import DistillationSoftmaxCrossEntropyLoss
    from gluoncv.utils import LRScheduler, LRSequential
    extra = dict(last_gamma=True) if cfg.zero_gamma else {}
    net = gluoncv_model(cfg.model, CLASSES, **extra)
    net.initialize(mx.init.MSRAPrelu())
    net(mx.nd.zeros((1, 3, PX, PX)))
    for name, p in net._collect_params_with_prefix().items():
        p.set_data(start[name])
    schedule = LRSequential([
        LRScheduler("linear", base_lr=0, target_lr=cfg.peak_lr(), nepochs=cfg.warmup_epochs,
                    iters_per_epoch=BATCHES_PER_EPOCH),
        LRScheduler(cfg.lr_mode, base_lr=cfg.peak_lr(), target_lr=0,
                    nepochs=cfg.epochs - cfg.warmup_epochs, iters_per_epoch=BATCHES_PER_EPOCH,
                    step_epoch=[e - cfg.warmup_epochs for e in cfg.lr_step_epochs],
                    step_factor=cfg.lr_step_factor, power=2)])
    if cfg.no_bias_decay:
        for p in net.collect_params(".*beta|.*gamma|.*bias").values():
            p.wd_mult = 0.0
    trainer = gluon.Trainer(net.collect_params(), "nag", dict(
        wd=cfg.wd, momentum=cfg.momentum, lr_scheduler=schedule))
    dense = cfg.label_smoothing > 0 or cfg.mixup_alpha > 0
    loss_fn = (DistillationSoftmaxCrossEntropyLoss(temperature=cfg.temperature,
                                                   hard_weight=cfg.hard_weight,
                                                   sparse_label=not dense)
               if cfg.distill else gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=not dense))
    eta = cfg.label_smoothing
    for i, (x, y) in enumerate(zip(data, labels)):
        x, y = mx.nd.array(x), mx.nd.array(y)
        if cfg.mixup_alpha > 0:  # the script's mixup_transform
            lam = lams[i]
            x = lam * x + (1 - lam) * x[::-1]
            on, off = 1 - eta + eta / CLASSES, eta / CLASSES
            y = lam * y.one_hot(CLASSES, on_value=on, off_value=off) + \
                (1 - lam) * y[::-1].one_hot(CLASSES, on_value=on, off_value=off)
        elif eta > 0:  # the script's smooth
            y = y.one_hot(CLASSES, on_value=1 - eta + eta / CLASSES, off_value=eta / CLASSES)
        soft = mx.nd.softmax(teacher(x) / cfg.temperature) if cfg.distill else None
        with autograd.record():
            z = net(x)
            loss = loss_fn(z, y, soft) if cfg.distill else loss_fn(z, y)
        loss.backward()
        trainer.step(BATCH)
    return net


@pytest.mark.parametrize("trick", sorted(TRICKS))
def test_our_step_is_the_scripts_step(trick):
    """Twelve updates from the same weights on the same batches: every parameter, BatchNorm
    running statistics included, equal to float32 rounding."""
    cfg = resolve(None, [(k, v) for k, v in dict(BASE, **TRICKS[trick]).items()])
    assert cfg.lr_formulas == "gluoncv" and cfg.initializer == "msra"
    data, labels, lams = batches()
    teacher = teacher_net() if cfg.distill else None
    start, net = ours(cfg, teacher, data, labels, lams)
    reference = theirs(cfg, start, teacher, data, labels, lams)
    mine = net._collect_params_with_prefix()
    moved = 0
    for name, p in reference._collect_params_with_prefix().items():
        a, b = mine[name].data().asnumpy(), p.data().asnumpy()
        np.testing.assert_allclose(a, b, rtol=2e-4, atol=2e-6, err_msg=f"{trick}: {name}")
        moved += not np.array_equal(a, start[name].asnumpy())
    assert moved > len(mine) // 2  # the updates did something to compare


def test_zero_gamma_follows_the_conventions_on_basic_blocks():
    """GluonCV's BasicBlockV1b takes no last_gamma: under gluoncv the basic blocks' last
    BatchNorm starts at 1, under paper at 0; bottlenecks start at 0 under both."""
    for conventions, basic_gamma in (("gluoncv", 1.0), ("paper", 0.0)):
        for model, gamma in (("resnet18_v1b", basic_gamma), ("resnet50_v1b", 0.0)):
            cfg = resolve(None, [("conventions", conventions), ("model", model),
                                 ("zero_gamma", True), ("classes", CLASSES),
                                 ("data.input_size", PX)])
            training, _ = build_training(cfg, [mx.cpu()], SingleProcess(), None, 4)
            last = [p for n, p in training.net._collect_params_with_prefix().items()
                    if n.endswith(("bn2.gamma" if "18" in model else "bn3.gamma"))]
            assert last and all(np.all(p.data().asnumpy() == gamma) for p in last), model


def test_msra_initialisation_has_the_variance_of_mxnets_msraprelu():
    """conventions: gluoncv initialises conv weights as the script's MSRAPrelu(): Gaussian of
    variance 2 / (1 + 0.25^2) / ((fan_in + fan_out) / 2); paper's Xavier uniform has variance
    2 / (fan_in + fan_out). Checked on the stage-4 3x3 convs (512 x 512 x 9, 2.4M draws)."""
    for conventions, variance in (("gluoncv", 2 / 1.0625 / 4608), ("paper", 2 / 9216)):
        cfg = resolve(None, [("conventions", conventions), ("model", "resnet18_v1b"),
                             ("classes", CLASSES), ("data.input_size", PX)])
        training, _ = build_training(cfg, [mx.cpu()], SingleProcess(), None, 4)
        w = training.net._collect_params_with_prefix()["layer4.1.conv2.weight"].data().asnumpy()
        assert w.shape == (512, 512, 3, 3)
        assert w.var() == pytest.approx(variance, rel=0.01)
