"""One update of the classification trainer: targets (label smoothing §5.2), batch mixing
(mixup §5.4, CutMix), forward, loss (with distillation §5.3), scaled backward (§3.2),
gradient reduction, update. :func:`step_of` builds it from a configuration, for the trainer,
the GPU self-check and the benchmark alike; :class:`StepSettings` holds the keys it reads."""
from dataclasses import dataclass, fields
from typing import Optional

from mxnet import autograd

from ..run.progress import Diverged
from .loss_scale import scaler_of
from .losses import distillation_loss, smooth_labels, soft_cross_entropy

# FP16: a loss scale at 1 (the dynamic scaler's floor) that still overflows this many steps
# in a row means the run has diverged (inf/NaN in the weights or the loss), and it would
# skip every update from now on
COLLAPSED_STEPS = 100


@dataclass(frozen=True)
class StepSettings:
    """The recipe keys of one update (:class:`~gluon_tricks.train.config.TrainConfig`'s
    meanings): K classes, the dtype the batch is cast to, label smoothing epsilon and mode,
    the distillation temperature and hard-label weight (None: the paper's Eq. 6), and the
    micro-batches per update (the run's :func:`~gluon_tricks.train.config.batch_plan`)."""
    classes: int
    dtype: str = "float32"
    label_smoothing: float = 0.0
    label_smoothing_mode: str = "paper"
    temperature: float = 20.0
    hard_weight: Optional[float] = None
    accumulate: int = 1

    @classmethod
    def of(cls, cfg, accumulate=1):
        """The settings of a TrainConfig (or any object with these attributes), accumulating
        ``accumulate`` micro-batches per update."""
        return cls(accumulate=accumulate, **{f.name: getattr(cfg, f.name) for f in fields(cls)
                                             if f.name != "accumulate"})


class TrainStep:
    """One update: targets (label smoothing §5.2), batch mixing, forward, loss (with
    distillation §5.3), scaled backward (§3.2), gradient reduction, update. ``skipped``
    counts the updates skipped for an FP16 overflow since the loop last reset it.

    With ``settings.accumulate`` k > 1 each call is one micro-batch: its gradients are added
    to the previous ones (``grad_req='add'``), and every k-th call reduces them, checks them
    for an FP16 overflow (one verdict for all k: an overflow anywhere skips the update),
    makes one update with the mean over the k micro-batches' images and zeroes them."""

    def __init__(self, settings, net, trainer, contexts, teacher=None, scaler=None):
        """settings : :class:`StepSettings`; net, trainer : the network and its Trainer;
        contexts : its devices; teacher : the distillation teacher (None: no distillation);
        scaler : the FP16 loss scaler (None: FP32)."""
        self.settings, self.net, self.trainer, self.contexts = settings, net, trainer, contexts
        self.teacher, self.scaler = teacher, scaler
        self.params = [p for p in net.collect_params().values() if p.grad_req != "null"]
        self.skipped = 0  # updates skipped for an FP16 overflow, since the loop reset it
        self.collapsed = 0  # consecutive overflowing steps with the loss scale at 1 or less
        self.pending, self.images = 0, 0  # micro-batches and their images since the update
        if settings.accumulate > 1:
            for p in self.params:
                p.grad_req = "add"  # MXNet 1.9 zeroes the gradient when it is set

    def __call__(self, xs, ys, mix=None):
        """xs: one float32 data array per device of ``contexts`` (N_d, 3, H, W), on that
        device; ys: their (N_d,) class indices, on the same devices (data.shards'
        device_batches). mix: the batch's mixing, ``(x, y) -> (x, y)`` on one device's images
        and (n, K) targets (a batch mixer's ``sample``: :mod:`gluon_tricks.train.mixup`), or
        None. Returns (loss summed over the batch, a (1,) NDArray on the first device; the
        list of per-device logits).

        Targets, mixing and the FP16 cast run on each device (as GluonCV does, after its
        split), so that no work on the whole batch waits on the host. Mixing pairs examples
        within each device's share."""
        cfg = self.settings
        scale = self.scaler.scale if self.scaler is not None else 1.0
        inputs, targets = [], []
        for x, y in zip(xs, ys):
            y = smooth_labels(y, cfg.classes, cfg.label_smoothing, cfg.label_smoothing_mode)
            if mix is not None:
                x, y = mix(x, y)
            inputs.append(x.astype(cfg.dtype, copy=False))
            targets.append(y)
        soft = [self.teacher(x) for x in inputs] if self.teacher is not None else None
        losses, outputs = [], []
        with autograd.record():
            for i, (x, y) in enumerate(zip(inputs, targets)):
                z = self.net(x)
                if soft is None:
                    loss = soft_cross_entropy(z, y)
                else:
                    loss = distillation_loss(z, soft[i], y, cfg.temperature, cfg.hard_weight)
                losses.append(loss)
                outputs.append(z)
            scaled = [loss * scale for loss in losses] if scale != 1.0 else losses
        autograd.backward(scaled)
        self.pending += 1
        self.images += sum(x.shape[0] for x in xs)
        if self.pending == cfg.accumulate:
            self.update(scale)
        total = losses[0].sum().as_in_context(self.contexts[0])
        for loss in losses[1:]:
            total = total + loss.sum().as_in_context(self.contexts[0])
        return total, outputs

    def update(self, scale):
        """The update of the micro-batches since the last one, whose losses were scaled by
        ``scale``: reduce their summed gradients once (over devices and ranks), check them
        for an FP16 overflow, update with their mean, zero them when accumulating."""
        self.trainer.allreduce_grads()
        overflow = self.scaler is not None and self.scaler.has_overflow(self.params)
        if self.scaler is not None:
            self.scaler.update(overflow)
            self.skipped += overflow
            self.collapsed = self.collapsed + 1 if overflow and self.scaler.scale <= 1 else 0
            if self.collapsed >= COLLAPSED_STEPS:
                raise Diverged(f"FP16 loss scale {self.scaler.scale:g} and the last "
                               f"{self.collapsed} updates all overflowed (inf/NaN)")
        if not overflow:
            # rescale_grad = 1 / (images * scale): the mean gradient, loss scale divided out
            self.trainer.update(self.images * scale)
        if self.settings.accumulate > 1:
            for p in self.params:
                p.zero_grad()
        self.pending, self.images = 0, 0


def step_of(cfg, net, trainer, contexts, teacher=None, accumulate=1):
    """The :class:`TrainStep` of a :class:`~gluon_tricks.train.config.TrainConfig` ``cfg``
    (its :class:`StepSettings` and the loss scaler of ``loss_scale`` and ``dtype``) for
    ``net`` and its ``trainer`` on ``contexts``, distilling from ``teacher`` if given,
    ``accumulate`` micro-batches per update."""
    return TrainStep(StepSettings.of(cfg, accumulate), net, trainer, contexts, teacher,
                     scaler_of(cfg.loss_scale, cfg.dtype))
