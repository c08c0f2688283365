"""Results tables: our runs beside the paper's numbers (:data:`gluon_tricks.paper.PAPER`).

"Final" is the last logged epoch, the number the paper reports; "best" is the epoch of
highest validation top-1 (the one ``best.params`` holds). The difference to the paper is
final minus paper, in percentage points. Images/second is the mean training throughput
over the logged epochs (``samples_per_sec`` of log.jsonl).

"recipe" is the recipe file the run started from (relative to the project when inside
it) and "changed" the configuration keys in which the run departs from that file
(``--set``, ``--epochs``, ``--batch-size``): a run beside the paper's numbers with
``epochs, input_size`` changed is not the paper's setting. "?" where the recipe is unknown
(no command.json) or no longer resolves.

"conventions" says which of the two readings produced the row (:func:`conventions_cell`):
``paper`` (the paper's text) or ``gluoncv`` (the authors' script), and any of the keys it
sets (``lr_formulas``, ``initializer``, ``zero_gamma_basic``, ``label_smoothing_mode``,
``hard_weight``, ``loss_scale``) that the run set otherwise. "distillation loss" says
which loss a distillation row minimised (:func:`distillation_cell`): the paper's Eq. 6 or
GluonCV's hard-weighted mix (w = 0.5 is Eq. 6 at half the lr and double the wd), so that
the six distillation cells of Table 6 never hide which one they are.

"batch plan" says how the run made its global batch (:func:`plan_cell`): images per device
(BatchNorm's batch), devices, micro-batches accumulated per update, from the "plan" records
its trainer logged at each start and resume ("?" for a run from before they were logged);
"published batch plan" the same of the authors' published run of the row
(:func:`published_plan`: their GPUs, each with its batch, no accumulation). A run on fewer
GPUs that accumulates to the authors' global batch shows it there, and so does one whose
BatchNorm saw another batch than theirs.
"""
import os
from dataclasses import dataclass, field
from typing import Optional

from ..markdown import markdown_table
from ..paper import PAPER, TRANSFER
from ..published import load as load_published

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
COLUMNS = ("run", "recipe", "changed", "paper key", "model", "conventions", "batch plan",
           "published batch plan", "distillation loss", "epochs", "top-1", "top-5",
           "best top-1", "best top-5", "best epoch", "images/s", "paper top-1", "paper top-5",
           "diff top-1", "diff top-5", "published GluonCV run")


@dataclass
class ResultRow:
    """One run's line of the table; accuracies in percent, None where unknown."""
    run: str
    paper_key: Optional[str]
    model: str
    epochs_done: int
    epochs_planned: Optional[int]
    top1: float
    top5: float
    best_top1: float
    best_top5: float
    best_epoch: int
    images_per_sec: Optional[float]
    paper_top1: Optional[float]
    paper_top5: Optional[float]
    recipe: Optional[str] = None
    changed: Optional[list] = field(default=None)
    published: Optional[str] = None  # the authors' run of the row: "name: final top-1"
    batch_plan: str = "?"  # plan_cell of the run's plans
    published_plan: str = "-"  # the published run's BatchPlan.cell(), "-" without one

    @property
    def diff_top1(self):
        return None if self.paper_top1 is None else self.top1 - self.paper_top1

    @property
    def diff_top5(self):
        return None if self.paper_top5 is None else self.top5 - self.paper_top5


def row_of(run):
    """The :class:`ResultRow` of a :class:`gluon_tricks.report.runs.RunRecord`."""
    final, best = run.final, run.best
    paper = PAPER.get(run.paper_key) if run.paper_key else None
    return ResultRow(run=run.name, paper_key=run.paper_key,
                     model=str(run.config.get("model", "?")), epochs_done=final["epoch"],
                     epochs_planned=run.config.get("epochs"),
                     top1=100 * final["val_top1"], top5=100 * final["val_top5"],
                     best_top1=100 * best["val_top1"], best_top5=100 * best["val_top5"],
                     best_epoch=best["epoch"], images_per_sec=mean_speed(run),
                     paper_top1=None if paper is None else paper.top1,
                     paper_top5=None if paper is None else paper.top5,
                     recipe=_shown_path(run.recipe), changed=run.changes(),
                     published=_published_cell(run.config.get("published_run")),
                     batch_plan=plan_cell(run.plans),
                     published_plan=_published_plan_cell(run.config.get("published_run")))


def _published_cell(name):
    """The results-table cell of the authors' published run ``name``: its name and final
    validation top-1 (percent), or why it has none (a flagged curve is never shown as the
    authors' accuracy), or None."""
    if not name:
        return None
    reference = load_published().get(name)
    return name if reference is None else reference.summary()


def plan_cell(plans):
    """The batch-plan cell of a run's ``plans`` ([(epoch, BatchPlan)],
    :attr:`~gluon_tricks.report.runs.RunRecord.plans`): each plan's
    :meth:`~gluon_tricks.train.config.BatchPlan.cell`, a later one (a resume on other
    devices) with the epoch it trained from; "?" for none."""
    if not plans:
        return "?"
    return "; ".join(plan.cell() if i == 0 else f"from epoch {epoch}: {plan.cell()}"
                     for i, (epoch, plan) in enumerate(plans))


def published_plan(reference):
    """The :class:`~gluon_tricks.train.config.BatchPlan` of a
    :class:`~gluon_tricks.published.PublishedRun`, from its Namespace: GluonCV's
    train_imagenet.py takes ``--batch-size`` per GPU on ``--num-gpus`` GPUs (the CPU when 0)
    in one process, and does not accumulate."""
    from ..train.config import BatchPlan  # MXNet: see conventions_cell
    per_device = reference.namespace["batch_size"]
    devices = max(reference.namespace.get("num_gpus", 0), 1)
    return BatchPlan(global_batch=per_device * devices, devices=devices, ranks=1,
                     accumulate=1, rank_batch=per_device * devices, per_device=per_device)


def _published_plan_cell(name):
    """The batch-plan cell of the published run ``name``, "-" without one."""
    reference = load_published().get(name) if name else None
    return "-" if reference is None else published_plan(reference).cell()


def conventions_cell(config):
    """Which conventions a run's configuration (a TrainConfig dict) trained under:
    ``"paper"`` or ``"gluoncv"``, then ``"; key=value"`` for each key the conventions set
    that the run holds at another value."""
    # imported here: the training configuration brings MXNet, and the figures' tools
    # (which import this module) answer --help without it
    from ..train.config import GLUONCV_CONVENTIONS, TrainConfig
    name = config.get("conventions", "paper")
    expected = {k: getattr(TrainConfig, k) for k in GLUONCV_CONVENTIONS}
    if name == "gluoncv":
        expected.update(GLUONCV_CONVENTIONS)
    overrides = [f"{k}={config[k]}" for k in expected
                 if k in config and config[k] != expected[k]]
    return "; ".join([name] + overrides)


def distillation_cell(config):
    """The distillation loss of a run's configuration: "-" without distillation, else the
    paper's Eq. 6 (hard + T^2 soft) or GluonCV's w hard + (1 - w) T^2 soft, with T."""
    if not config.get("distill"):
        return "-"
    t, w = config.get("temperature"), config.get("hard_weight")
    if w is None:
        return f"Eq. 6: hard + T^2 soft, T={t:g}"
    return f"GluonCV: {w:g} hard + {1 - w:g} T^2 soft, T={t:g}"


def mean_speed(run):
    """Mean training images/second over the logged epochs, or None if none logged it."""
    speeds = [r["samples_per_sec"] for r in run.epochs if r.get("samples_per_sec") is not None]
    return sum(speeds) / len(speeds) if speeds else None


def _epochs_cell(done, planned):
    return f"{done}" + (f"/{planned}" if planned else "")


def _changed_cell(changed):
    return "?" if changed is None else (", ".join(changed) or "none")


def _shown_path(path):
    """A recipe path relative to the project when inside it, else as recorded."""
    if not path:
        return None
    relative = os.path.relpath(os.path.abspath(path), ROOT)
    return path if relative.startswith("..") else relative


def _fmt(value, spec=".2f", sign=False):
    if value is None:
        return "-"
    return format(value, ("+" if sign else "") + spec)


def markdown(rows, configs=None):
    """The rows as a Markdown table (str ending in a newline), columns :data:`COLUMNS`;
    ``configs`` (each run's configuration dict, in the order of ``rows``) fill the
    conventions and distillation-loss columns ("?" without them)."""
    lines = []
    for r, config in zip(rows, configs or [None] * len(rows)):
        provenance = ["?", "?"] if config is None else [conventions_cell(config),
                                                        distillation_cell(config)]
        cells = [r.run, r.recipe or "?", _changed_cell(r.changed), r.paper_key or "-", r.model,
                 provenance[0], r.batch_plan, r.published_plan, provenance[1],
                 _epochs_cell(r.epochs_done, r.epochs_planned), _fmt(r.top1), _fmt(r.top5),
                 _fmt(r.best_top1), _fmt(r.best_top5), str(r.best_epoch),
                 _fmt(r.images_per_sec, ".1f"), _fmt(r.paper_top1), _fmt(r.paper_top5),
                 _fmt(r.diff_top1, sign=True), _fmt(r.diff_top5, sign=True),
                 r.published or "-"]
        lines.append(cells)
    return markdown_table(COLUMNS, lines)


TRANSFER_COLUMNS = ("run", "recipe", "changed", "paper key", "task", "backbone",
                    "backbone top-1", "epochs", "mAP", "pixAcc", "mIoU", "best epoch",
                    "images/s", "paper backbone top-1", "paper mAP", "paper pixAcc",
                    "paper mIoU")
_PERCENT = (("val_map", "map"), ("val_pixacc", "pixacc"), ("val_miou", "miou"))


def transfer_markdown(runs):
    """Transfer runs (Tables 8 and 9) as a Markdown table, columns :data:`TRANSFER_COLUMNS`:
    the backbone's top-1 as the run recorded it when it started (its "backbone" record: the
    validation top-1 that the backbone's own run logged for the weights used), the final
    epoch's metrics in percent, and the paper's where :data:`~gluon_tricks.paper.TRANSFER`
    records them, its Top-1 column beside ("-" where a metric does not apply or is not
    recorded)."""
    lines = []
    for run in runs:
        final, paper = run.final, TRANSFER.get(run.paper_key or "")
        top1 = (run.backbone or {}).get("val_top1")
        lines.append([run.name, _shown_path(run.recipe) or "?", _changed_cell(run.changes()),
                      run.paper_key or "-", run.task, run.config.get("backbone_model"),
                      _fmt(100 * top1 if isinstance(top1, (int, float)) else None),
                      _epochs_cell(final["epoch"], run.config.get("epochs"))]
                     + [_fmt(None if final.get(k) is None else 100 * final[k])
                        for k, _ in _PERCENT]
                     + [str(run.best["epoch"]), _fmt(mean_speed(run), ".1f")]
                     + [_fmt(None if paper is None else getattr(paper, name))
                        for name in ("backbone_top1",) + tuple(n for _, n in _PERCENT)])
    return markdown_table(TRANSFER_COLUMNS, lines)
