"""The GPU self-check behind ``tools/gpu_check.py``: before a GPU-week, train a fixed batch
for a few dozen steps with our :class:`~gluon_tricks.train.step.TrainStep` and with a bare
Gluon loop in GluonCV's style, in FP32 and FP16, on one device and on all of them, and say
whether what the recipes rely on holds (a finite, falling loss; FP32 master weights; the
allreduce of Horovod). Every function takes its devices as an argument, so the logic is
tested on CPU contexts.
"""
import time
from dataclasses import dataclass
from typing import Optional

import mxnet as mx
import numpy as np
from mxnet import autograd

from ..data.shards import split_batch
from ..models import get_model, initializer
from ..markdown import markdown_table
from ..run.parallel import SingleProcess, materialize_parameters
from .config import TrainConfig
from .nets import hybridize_student
from .optim import make_optimizer
from .step import step_of


@dataclass
class Measurement:
    """One loop on one set of devices: images/s over the timed steps, the loss at the first
    and last step (on the same batch), the loss scale at the end (FP16), the peak memory of
    the first GPU in MiB (None on CPU) and whether FP16 weights had FP32 master copies."""
    loop: str
    dtype: str
    devices: int
    images_per_sec: float
    first_loss: float
    last_loss: float
    loss_scale: Optional[float]
    peak_mib: Optional[float]
    master_fp32: Optional[bool]


@dataclass(frozen=True)
class FixedBatch:
    """The one random batch :func:`measure` trains on: ``per_device`` images of ``size`` x
    ``size`` pixels on each device, labels of ``classes`` classes."""
    per_device: int = 32
    size: int = 224
    classes: int = 1000


def measure(loop, model, contexts, dtype, fixed=FixedBatch(), steps=30, warmup=5):
    """Train ``model`` on one :class:`FixedBatch` for ``warmup`` + ``steps`` steps with
    ``loop`` ("ours": the trainer's TrainStep with its loss scaler; "bare": split, forward,
    backward, ``trainer.step`` as GluonCV's script does). Returns a :class:`Measurement`."""
    size, classes = fixed.size, fixed.classes
    batch = fixed.per_device * len(contexts)
    mx.random.seed(0)
    net = get_model(model, classes=classes)
    net.initialize(initializer(), ctx=contexts)
    if dtype == "float16":
        net.cast("float16")
    materialize_parameters(net, (1, 3, size, size), contexts, dtype)
    hybridize_student(net, contexts)
    trainer = SingleProcess().trainer(net.collect_params(),
                                      make_optimizer(0.01, multi_precision=dtype == "float16"),
                                      len(contexts))
    rng = np.random.default_rng(0)
    data = mx.nd.array(rng.normal(size=(batch, 3, size, size)))
    label = mx.nd.array(rng.integers(0, classes, batch))
    if loop == "ours":
        cfg = TrainConfig(model=model, classes=classes, dtype=dtype, loss_scale="dynamic")
        ours = step_of(cfg, net, trainer, contexts)
        scaler = ours.scaler

        def step(data, label):  # the split each batch costs, as in the bare loop
            return ours(*split_batch(data, label, contexts))
    else:
        step, scaler = _bare_step(net, trainer, contexts, dtype), None
    losses = [step(data, label)[0] for _ in range(warmup)]
    mx.nd.waitall()
    tic = time.perf_counter()
    losses += [step(data, label)[0] for _ in range(steps)]
    mx.nd.waitall()
    seconds = time.perf_counter() - tic
    values = [float(v.asscalar()) / batch for v in losses]
    return Measurement(loop=loop, dtype=dtype, devices=len(contexts),
                       images_per_sec=steps * batch / seconds,
                       first_loss=values[0], last_loss=values[-1],
                       loss_scale=scaler.scale if scaler is not None else None,
                       peak_mib=_used_mib(contexts[0]), master_fp32=_master_fp32(trainer, dtype))


def _bare_step(net, trainer, contexts, dtype):
    loss_fn = mx.gluon.loss.SoftmaxCrossEntropyLoss()

    def step(data, label):
        xs = mx.gluon.utils.split_and_load(data, contexts, even_split=False)
        ys = mx.gluon.utils.split_and_load(label, contexts, even_split=False)
        with autograd.record():
            losses = [loss_fn(net(x.astype(dtype)).astype("float32"), y)
                      for x, y in zip(xs, ys)]
        autograd.backward(losses)
        trainer.step(data.shape[0])
        return (mx.nd.add_n(*[loss.sum().as_in_context(contexts[0]) for loss in losses]),)
    return step


def _used_mib(ctx):
    if ctx.device_type != "gpu":
        return None
    free, total = mx.context.gpu_memory_info(ctx.device_id)
    return (total - free) / 2 ** 20


def _master_fp32(trainer, dtype):
    """FP16 runs: every FP16 weight has a float32 master copy in the optimizer's state (the
    last element of MXNet's multi-precision state tuple)."""
    if dtype != "float16":
        return None
    states = trainer._updaters[0].states.values()
    return bool(states) and all(isinstance(s, tuple) and s[-1].dtype == np.float32
                                for s in states)


def verdicts(measurements, allreduce_ok=None):
    """[(check, passed, detail)] over ``measurements`` (and Horovod's allreduce check)."""
    out = []
    for m in measurements:
        name = f"{m.loop} {m.dtype} on {m.devices} device(s)"
        finite = np.isfinite([m.first_loss, m.last_loss]).all()
        out.append((f"loss finite and falling on a fixed batch: {name}",
                    bool(finite and m.last_loss < m.first_loss),
                    f"{m.first_loss:.4f} -> {m.last_loss:.4f}"))
        if m.master_fp32 is not None:
            out.append((f"FP16 master weights in FP32: {name}", m.master_fp32, ""))
    if allreduce_ok is not None:
        out.append(("Horovod allreduce equals the sum over ranks", allreduce_ok, ""))
    return out


def table(measurements):
    """Markdown table: img/s, ours/bare at the same dtype and devices, scaling efficiency
    (img/s on N devices / (N x img/s on 1 device) of the same loop and dtype), peak memory
    and loss scale."""
    speed = {(m.loop, m.dtype, m.devices): m.images_per_sec for m in measurements}
    rows = []
    for m in measurements:
        bare = speed.get(("bare", m.dtype, m.devices))
        one = speed.get((m.loop, m.dtype, 1))
        rows.append([m.loop, m.dtype, m.devices, f"{m.images_per_sec:.1f}",
                     f"{m.images_per_sec / bare:.3f}" if bare and m.loop == "ours" else "-",
                     f"{m.images_per_sec / (m.devices * one):.3f}" if one else "-",
                     "-" if m.peak_mib is None else f"{m.peak_mib:.0f}",
                     "-" if m.loss_scale is None else f"{m.loss_scale:g}"])
    return markdown_table(("loop", "dtype", "devices", "img/s", "ours / bare",
                           "scaling efficiency", "peak MiB (GPU 0)", "loss scale"), rows)
