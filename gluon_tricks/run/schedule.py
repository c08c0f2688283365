"""The learning rate as a pure function of the global batch index (paper §2.1, §3.1, §5.1).

The trainer, ``tools/plot_lr.py`` and the tests all call :meth:`LRSchedule.lr`, so the
curve that is plotted is the curve that is trained. Warmup is composed with the decay
(timm-style): the decay only sees the batches after warmup.

Batch convention: ``i`` counts parameter updates from 1 (the paper's "at batch i,
1 <= i <= m, lr = i eta / m"). Batch ``i`` belongs to the 0-based epoch
``(i - 1) // batches_per_epoch``. The loop does, before the i-th update::

    trainer.set_learning_rate(schedule.lr(i))

With MXNet's own ``lr_scheduler`` instead, the optimizer calls it with ``num_update``,
which ``Optimizer._update_count`` raises to 1 *before* the first update reads its lr, so
``lr_scheduler(num_update)`` would receive the same 1-based ``i`` (we do not use that
path: ``Trainer.set_learning_rate`` refuses to work when a scheduler is attached).
"""
import math
from dataclasses import dataclass

import numpy as np

from .recipe import ConfigError

MODES = ("step", "cosine", "poly")
FORMULAS = ("paper", "gluoncv")


def scaled_lr(base_lr_per_256, global_batch):
    """Linear scaling rule (§3.1): the learning rate for a global batch of ``global_batch``
    images, given the rate ``base_lr_per_256`` that suits a batch of 256 (0.1 in the paper).
    Batch 1024 -> 0.4."""
    return base_lr_per_256 * global_batch / 256


def check_step_epochs(step_epochs):
    """ConfigError (one line) unless the epochs of a step decay (``lr_step_epochs`` of both
    trainers' recipes) are positive and increasing."""
    if any(b <= a for a, b in zip(step_epochs, step_epochs[1:])) or \
            any(e <= 0 for e in step_epochs):
        raise ConfigError(f"lr_step_epochs must be positive and increasing, got "
                          f"{list(step_epochs)}")


@dataclass(frozen=True)
class LRSchedule:
    """Warmup (§3.1) followed by step (§2.1), cosine (§5.1) or poly decay, per batch.

    Fields
    ------
    peak_lr : eta, the rate after linear scaling, reached at the end of warmup.
    batches_per_epoch : updates per epoch (global batches, i.e. over all ranks).
    epochs : length of the run, warmup included.
    warmup_epochs : m = warmup_epochs * batches_per_epoch batches of linear warmup
        from eta/m (batch 1) to eta (batch m); 0 = no warmup.
    mode : "step", "cosine" or "poly" (GluonCV's segmentation schedule, for FCN in Table 9:
        lr = eta * (1 - t / (T - 1)) ** power, t the updates after warmup before this one
        and T their number: the first update runs at eta, the last at 0; GluonCV's
        LRScheduler with its 0-based batch, as for step decay).
    step_epochs, step_factor : step mode: lr = eta * step_factor**k where k is the
        number of e in step_epochs with i > e * batches_per_epoch, i.e. the decay
        starts at the first batch of 0-based epoch e (after e full epochs).
        (30, 60, 90) on 120 epochs is the paper's "divided by 10 at epochs 30, 60, 90".
        GluonCV gets its decay from MXNet's 1-based ``num_update`` compared with the
        0-based ``e * iters_per_epoch``, so it decays one batch earlier (on the last
        batch of epoch e - 1); the tests pin that relation.

    formulas : "paper" (the formulas above, the paper's text) or "gluoncv": GluonCV 0.10's
        ``LRSequential([LRScheduler('linear', 0, eta, warmup), LRScheduler(mode, eta, 0,
        rest)])`` as ``train_imagenet.py`` builds it, fed MXNet's 1-based ``num_update``
        (:meth:`_gluoncv_lr_of`): warmup eta * i / (m - 1), cosine and poly over T - 1
        updates after warmup, the step decay one update earlier, and the update count
        clamped at n - 1 (the last two updates of a cosine run at lr 0). docs/notes.md §3
        has both side by side.
    """
    peak_lr: float
    batches_per_epoch: int
    epochs: int
    warmup_epochs: float = 0
    mode: str = "step"
    step_epochs: tuple = (30, 60, 90)
    step_factor: float = 0.1
    power: float = 0.9
    formulas: str = "paper"

    def __post_init__(self):
        if self.mode not in MODES:
            raise ValueError(f"lr mode {self.mode!r} is unknown; use one of {MODES}")
        if self.formulas not in FORMULAS:
            raise ValueError(f"lr formulas {self.formulas!r} are unknown; use one of {FORMULAS}")
        if self.formulas == "gluoncv" and (self.warmup_batches == 1 or
                                           self.total_batches - self.warmup_batches < 2):
            raise ValueError("GluonCV's schedules divide by m - 1 and T - 1: they need 0 or at "
                             "least 2 warmup updates and at least 2 updates after warmup")
        if self.batches_per_epoch < 1 or self.epochs < 1:
            raise ValueError(f"a schedule needs batches_per_epoch >= 1 and epochs >= 1, got "
                             f"{self.batches_per_epoch} and {self.epochs}")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs = {self.warmup_epochs} must lie in [0, epochs = "
                             f"{self.epochs})")

    @property
    def warmup_batches(self):
        """m, the number of warmup batches (int)."""
        return int(round(self.warmup_epochs * self.batches_per_epoch))

    @property
    def total_batches(self):
        """Number of updates in the whole run (int)."""
        return self.epochs * self.batches_per_epoch

    def lr(self, i):
        """Learning rate (float) of the i-th update, i = 1 .. total_batches."""
        if not 1 <= i <= self.total_batches:
            raise ValueError(f"batch {i} is outside the schedule's 1..{self.total_batches}")
        return float(self._lr_of(np.asarray(i, dtype=np.float64)))

    def lrs(self):
        """Learning rates of all updates, float64 array of shape (total_batches,);
        element k is lr(k + 1)."""
        return self._lr_of(np.arange(1, self.total_batches + 1, dtype=np.float64))

    def epoch_of(self, i):
        """Epoch position (float) at which the i-th update starts: (i - 1) / batches_per_epoch.
        Its floor is the 0-based epoch of batch i; a step decay at epoch 30 shows at 30.0.
        Works elementwise on arrays."""
        return (np.asarray(i, dtype=np.float64) - 1) / self.batches_per_epoch

    def _lr_of(self, i):
        if self.formulas == "gluoncv":
            return self._gluoncv_lr_of(i)
        m = self.warmup_batches
        if self.mode == "cosine":
            t, span = i - m, self.total_batches - m
            decayed = 0.5 * (1 + np.cos(t * math.pi / span)) * self.peak_lr
        elif self.mode == "poly":
            t, span = np.maximum(i - m - 1, 0), max(self.total_batches - m - 1, 1)
            decayed = self.peak_lr * np.power(1 - t / span, self.power)
        else:
            steps = sum((i > e * self.batches_per_epoch for e in self.step_epochs),
                        np.zeros_like(i))
            decayed = self.peak_lr * np.power(self.step_factor, steps)
        if m == 0:
            return decayed
        return np.where(i <= m, i * self.peak_lr / m, decayed)

    def _gluoncv_lr_of(self, i):
        """GluonCV's LRSequential at MXNet's 1-based update count ``i`` (float64 array): the
        count clamped at n - 1, warmup eta * k / (m - 1) below m, then the decay at
        T = min(k - m, N), N = n - m - 1 updates after warmup, less one."""
        m, n = self.warmup_batches, self.total_batches
        k = np.minimum(i, n - 1)
        t, span = np.clip(k - m, 0, n - m - 1), n - m - 1
        if self.mode == "cosine":
            decayed = self.peak_lr * (1 + np.cos(math.pi * t / span)) / 2
        elif self.mode == "poly":
            decayed = self.peak_lr * np.power(1 - t / span, self.power)
        else:  # the script shifts the decay epochs by the warmup: (e - w) * batches <= T
            steps = sum((t >= (e - self.warmup_epochs) * self.batches_per_epoch
                         for e in self.step_epochs), np.zeros_like(i))
            decayed = self.peak_lr * np.power(self.step_factor, steps)
        if m == 0:
            return decayed
        return np.where(k < m, self.peak_lr * k / (m - 1), decayed)
