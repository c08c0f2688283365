"""A run against the authors' published run of the same row (:mod:`gluon_tricks.published`):
validation top-1 per epoch side by side, the gap, and whether the run is on track.

The band: among the published runs, ResNet-50-C and ResNet-50-D were trained with the same
command but for the network (120 epochs, cosine, label smoothing, batch 1024, FP16, 8 GPUs).
Their validation top-1 differed by up to :data:`EARLY_BAND` points in the first epochs
(1-6, warmup) and by up to :data:`LATE_BAND` at the end (epochs 115-120). A run of ours
that stays within that spread below the published curve is as close to it as the authors'
own sibling runs were to each other; between those epochs the band is interpolated
linearly in the epoch. (Both logs are read whole: in the middle of the run the siblings'
gap swings between 0.3 and 5.7 points from epoch to epoch, so a mid-run verdict is a
warning; the last epochs decide.) A published run whose validation is flagged
(:attr:`~gluon_tricks.published.PublishedRun.validity`) has no curve here: nothing is
compared against it.

Beside the curves, :func:`batch_line` sets the run's batch plan (images per device, devices,
accumulation, BatchNorm's batch) against the published run's: a run on other devices is
"not the authors' run" where its curve is compared, if its global or BatchNorm batch
differs.
"""
from dataclasses import dataclass
from typing import Optional

from ..published import load
from .tables import plan_cell, published_plan

SIBLINGS = ("resnet50_v1c", "resnet50_v1d")


@dataclass(frozen=True)
class EpochGap:
    """One epoch (1-based): our validation top-1 and the published one, in percent (None
    where that side has no record), and ours minus theirs."""
    epoch: int
    ours: Optional[float]
    published: Optional[float]

    @property
    def gap(self):
        return None if None in (self.ours, self.published) else self.ours - self.published


def _top1(published_run):
    """{1-based epoch: validation top-1 in percent} of a published run's measured curve
    (empty for a flagged one)."""
    return {e.epoch + 1: e.top1 for e in published_run.curve}


def sibling_spread(runs=None):
    """(largest |gap| in the first logged epochs, largest |gap| in the last logged epochs)
    between the :data:`SIBLINGS` published runs, points of top-1."""
    runs = runs or load()
    a, b = (_top1(runs[name]) for name in SIBLINGS)
    gaps = {e: abs(a[e] - b[e]) for e in a if e in b}
    early = [g for e, g in gaps.items() if e <= EARLY_EPOCH]
    late = [g for e, g in gaps.items() if e >= LATE_EPOCH]
    return max(early), max(late)


EARLY_BAND, LATE_BAND = 5.6, 0.6  # sibling_spread() of the committed data, rounded up
EARLY_EPOCH, LATE_EPOCH = 6, 115  # the windows: epochs 1-6 (warmup) and 115-120


def band(epoch, epochs):
    """How far (points of top-1) a run may stand below the published curve at 1-based
    ``epoch`` of ``epochs`` and still be on track; the sibling epochs scaled to ``epochs``."""
    early, late = EARLY_EPOCH * epochs / 120, LATE_EPOCH * epochs / 120
    if epoch <= early:
        return EARLY_BAND
    if epoch >= late:
        return LATE_BAND
    return EARLY_BAND + (LATE_BAND - EARLY_BAND) * (epoch - early) / (late - early)


def compare(run, published):
    """An :class:`EpochGap` for every epoch either side logged, for a
    :class:`~gluon_tricks.report.runs.RunRecord` and a
    :class:`~gluon_tricks.published.PublishedRun`."""
    ours = dict(zip(*run.series("val_top1")))
    theirs = _top1(published)
    return [EpochGap(e, None if e not in ours else 100 * ours[e], theirs.get(e))
            for e in sorted(set(ours) | set(theirs))]


def verdict(rows, epochs):
    """One line: on track, or not (the epochs where ours fell below the band), judged on
    the epochs both sides logged, with ``epochs`` the length of the published run."""
    both = [r for r in rows if r.gap is not None]
    if not both:
        return "no epoch in common with the published run: nothing to compare yet"
    below = [r for r in both if r.gap < -band(r.epoch, epochs)]
    last = both[-1]
    if not below:
        return (f"on track: after epoch {last.epoch} top-1 {last.ours:.2f}% against the "
                f"published {last.published:.2f}% ({last.gap:+.2f}), within the sibling "
                f"band (-{band(last.epoch, epochs):.1f}) at every common epoch")
    worst = min(below, key=lambda r: r.gap + band(r.epoch, epochs))
    return (f"off track: below the published curve by more than the sibling band at "
            f"{len(below)} of {len(both)} common epochs, the worst epoch {worst.epoch} "
            f"({worst.ours:.2f}% against {worst.published:.2f}%, band -"
            f"{band(worst.epoch, epochs):.1f})")


def batch_line(run, published):
    """One line: the batch plan of a :class:`~gluon_tricks.report.runs.RunRecord` (its
    logged plans) beside that of a :class:`~gluon_tricks.published.PublishedRun`, and
    whether the run's global batch and BatchNorm batch are the authors' (unknown for a run
    that logged no plan)."""
    theirs = published_plan(published)
    line = f"batch plan: ours {plan_cell(run.plans)}; published {theirs.cell()}"
    if not run.plans:
        return line + " (ours not logged: the run is older than its plan records)"
    keys = (("global batch", "global_batch"), ("BN batch", "bn_batch"))
    differs = [name for name, key in keys
               if any(getattr(plan, key) != getattr(theirs, key) for _, plan in run.plans)]
    if differs:
        return line + f" (not the authors' {' and '.join(differs)})"
    return line + " (the authors' global batch and BN batch)"


def table(rows):
    """``epoch | ours | published | gap`` as Markdown (str ending in a newline)."""
    from ..markdown import markdown_table

    def cell(value, spec=".2f"):
        return "-" if value is None else format(value, spec)
    return markdown_table(("epoch", "ours top-1 (%)", "published top-1 (%)", "gap"),
                          [(r.epoch, cell(r.ours), cell(r.published), cell(r.gap, "+.2f"))
                           for r in rows])
