"""The paper's Figure 3: (a) learning rate per epoch, (b) validation top-1 per epoch.

The learning rates come from :class:`gluon_tricks.run.schedule.LRSchedule`, the object
the trainer calls, so the curve drawn is the curve trained.
"""
import csv
import os
from dataclasses import dataclass

import numpy as np

from ..paper import IMAGENET_TRAIN_IMAGES
from ..run.schedule import LRSchedule, scaled_lr
from .tables import conventions_cell, distillation_cell

# Where a tool writes when no --out is given: an untracked folder (runs/ is ignored by git),
# so that running a tool never changes the repository; the figures under docs/results are
# redrawn only on request (`make figures`, or an explicit --out).
DEFAULT_OUT = os.path.join("runs", "figures")

# Figure 3(a): batch 1024 (peak lr 0.4 by linear scaling), 5 warmup epochs, 120 epochs
# of ImageNet's 1,281,167 images, i.e. 1251 full batches per epoch.
FIG3A_BATCH = 1024
FIG3A = dict(peak_lr=scaled_lr(0.1, FIG3A_BATCH),
             batches_per_epoch=IMAGENET_TRAIN_IMAGES // FIG3A_BATCH,
             epochs=120, warmup_epochs=5)


@dataclass(frozen=True)
class LRCurve:
    """A named learning-rate schedule (label for the legend and the CSV's schedule column)."""
    label: str
    schedule: LRSchedule

    def table(self):
        """(iteration, epoch, lr): float64/int64 arrays of shape (total_batches,); iteration
        is the 1-based update index, epoch the position (i - 1) / batches_per_epoch in
        epochs, lr the learning rate of that update."""
        s = self.schedule
        iteration = np.arange(1, s.total_batches + 1)
        return iteration, s.epoch_of(iteration), s.lrs()


def fig3a_curves():
    """The two schedules of Figure 3(a): step decay (x0.1 at 30, 60, 90) and cosine decay."""
    return [LRCurve("step decay", LRSchedule(mode="step", step_epochs=(30, 60, 90),
                                             step_factor=0.1, **FIG3A)),
            LRCurve("cosine decay", LRSchedule(mode="cosine", **FIG3A))]


def recipe_curve(cfg, images, label):
    """The schedule a recipe trains with on a data set of ``images`` training images
    (full batches only: images // batch_size updates per epoch, as the trainer drops the
    last partial batch). ``cfg`` is a resolved TrainConfig."""
    # here, not above: train.config brings MXNet, and the tools' --help reads DEFAULT_OUT
    from ..train.config import schedule_of
    batches = images // cfg.batch_size
    if batches < 1:
        raise ValueError(f"{images} images make no batch of {cfg.batch_size}")
    return LRCurve(label, schedule_of(cfg, batches))


def write_lr_csv(path, curves):
    """One CSV for all curves: header ``schedule,iteration,epoch,lr``, one row per update
    of each curve (curves one after the other); floats written with full precision."""
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["schedule", "iteration", "epoch", "lr"])
        for curve in curves:
            iteration, epoch, lr = curve.table()
            w.writerows(zip([curve.label] * len(iteration), iteration.tolist(),
                            map(repr, epoch.tolist()), map(repr, lr.tolist())))


def save_figure(fig, prefix):
    """Write PREFIX.png and PREFIX.pdf; return their paths."""
    directory = os.path.dirname(prefix)
    if directory:
        os.makedirs(directory, exist_ok=True)
    paths = [f"{prefix}.png", f"{prefix}.pdf"]
    for path in paths:
        fig.savefig(path, dpi=150, bbox_inches="tight")
    return paths


def _figure():
    import matplotlib.pyplot as plt  # headless machines fall back to Agg by themselves
    return plt, *plt.subplots(figsize=(6, 4))


def plot_lr(curves, prefix, title="Learning rate schedules with 5 warmup epochs (Fig. 3a)"):
    """Figure 3(a): learning rate against epoch for each curve; writes PREFIX.png/.pdf and
    returns their paths."""
    plt, fig, ax = _figure()
    for curve in curves:
        _, epoch, lr = curve.table()
        ax.plot(epoch, lr, label=curve.label, linewidth=1.5)
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    ax.set_title(title)
    ax.set_xlim(left=0)
    ax.set_ylim(bottom=0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize="small")
    paths = save_figure(fig, prefix)
    plt.close(fig)
    return paths


def provenance_label(run):
    """A run's curve label: its label and, in brackets, the conventions it trained under
    and, for a distillation run, its loss (what makes two curves of one row differ)."""
    extra = [conventions_cell(run.config)]
    if run.config.get("distill"):
        extra.append(distillation_cell(run.config))
    return f"{run.label} [{'; '.join(extra)}]"


def plot_val_top1(runs, prefix, title="Validation accuracy (Fig. 3b)", published=()):
    """Figure 3(b): validation top-1 (percent) against epoch for each run
    (:class:`gluon_tricks.report.runs.RunRecord`), and dashed for each of the authors'
    published runs (:class:`gluon_tricks.published.PublishedRun`); writes PREFIX.png/.pdf,
    returns their paths."""
    plt, fig, ax = _figure()
    for run in runs:
        epochs, top1 = run.series("val_top1")
        ax.plot(epochs, 100 * np.asarray(top1), label=provenance_label(run), linewidth=1.5,
                marker="." if len(epochs) < 30 else None)
    for reference in published:
        points = [(e.epoch + 1, e.top1) for e in reference.curve]
        if not points:  # a flagged curve (PublishedRun.validity) is not the authors'
            continue
        # a log read in parts (its first and last epochs): no line across what was not read
        points = [q for a, b in zip(points, points[1:] + [None])
                  for q in ([a] if b is None or b[0] == a[0] + 1 else [a, (a[0] + 0.5, np.nan)])]
        ax.plot(*zip(*points), linestyle="--", linewidth=1.2,
                label=f"published GluonCV run {reference.name}",
                marker="." if len(points) < 30 else None)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation top-1 accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    # below the axes: run descriptions are long and would cover the curves
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.16), frameon=False)
    paths = save_figure(fig, prefix)
    plt.close(fig)
    return paths
