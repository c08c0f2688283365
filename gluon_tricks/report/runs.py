"""A run folder as the report tools see it: its configuration, its epoch records and the
recipe it came from (:class:`~gluon_tricks.run.folder.RunFolder` and
:class:`~gluon_tricks.run.epoch_log.EpochLog` read the files).

Epoch records carry ``epoch`` (1-based), ``val_top1``/``val_top5`` as fractions in [0, 1],
``samples_per_sec``, ...; those of a transfer run (``tools/transfer.py``, ``task`` in its
config) carry its task's metrics instead (``val_map``; ``val_miou``, ``val_pixacc``), and
its "backbone" record the top-1 of the weights it started from.
"""
import os
from dataclasses import dataclass, field, fields
from typing import Optional

from ..run.epoch_log import EpochLog
from ..run.folder import RunFolder, RunFolderError
from ..run.recipe import ConfigError, config_diff
from ..train.config import BatchPlan, from_saved, resolve
from ..transfer import config as transfer_config
from ..transfer.detection import METRICS as DETECTION_METRICS
from ..transfer.segmentation import METRICS as SEGMENTATION_METRICS

TRANSFER_METRICS = {"detection": DETECTION_METRICS, "segmentation": SEGMENTATION_METRICS}


@dataclass
class RunRecord:
    """One run folder, read.

    path : the folder.
    config : config.yaml as a dict of every TrainConfig key (model, epochs, paper, data, ...).
    epochs : the "epoch" records of log.jsonl in epoch order, one per epoch (a record
        repeated after a resume: the last one wins).
    plans : (the epoch it trains from, :class:`~gluon_tricks.train.config.BatchPlan`) of
        each "plan" record of log.jsonl (the devices a start or resume trained on), a
        resume on the same plan dropped; [] for a run that logged none (from before they
        were logged, or a transfer run).
    """
    path: str
    config: dict
    epochs: list
    command: dict = field(default_factory=dict)
    task: Optional[str] = None  # "detection" or "segmentation" for a transfer run
    # a transfer run's "backbone" record (gluon_tricks.transfer.loop.backbone_record): the
    # weights it started from and their val_top1; None if it logged none (random backbone)
    backbone: Optional[dict] = None
    plans: list = field(default_factory=list)

    @property
    def name(self):
        """The folder's own name."""
        return os.path.basename(os.path.normpath(self.path))

    @property
    def paper_key(self):
        """The paper row this run reproduces ("table6/resnet50_v1d/cosine"), or None."""
        return self.config.get("paper") or None

    @property
    def recipe(self):
        """The recipe file the run was started from (command.json), or None if unknown."""
        return self.command.get("recipe") or None

    def changes(self):
        """The configuration keys in which the run departs from its recipe file (``--set``,
        ``--epochs``, ``--batch-size``), sorted, ``data.`` keys by their dotted name; None
        if the recipe is unknown or no longer resolves (moved, edited into an error)."""
        if not self.recipe:
            return None
        try:
            planned = (transfer_config.resolve if self.task else resolve)(self.recipe).to_dict()
        except (ConfigError, OSError):
            return None
        # a transfer run's backbone is its input, as a classification run's data files are
        return [k for k in config_diff(planned, self.config)
                if not (self.task and k == "backbone")]

    @property
    def label(self):
        """A legend label: the recipe's description, else its paper key, else the folder."""
        return self.config.get("description") or self.paper_key or self.name

    def series(self, key):
        """(epochs, values) of one field of the epoch records, skipping null values;
        epochs 1-based ints, values as logged (accuracies are fractions)."""
        pairs = [(r["epoch"], r[key]) for r in self.epochs if r.get(key) is not None]
        return [e for e, _ in pairs], [v for _, v in pairs]

    @property
    def final(self):
        """The last epoch record."""
        return self.epochs[-1]

    @property
    def metrics(self):
        """The validation metrics of its records, the one the best epoch is chosen by first."""
        return TRANSFER_METRICS[self.task] if self.task else ("val_top1", "val_top5")

    @property
    def best(self):
        """The epoch record of the highest first metric (val_top1, val_map, val_miou;
        earliest on ties), as best.json keeps it."""
        return max(self.epochs, key=lambda r: (r[self.metrics[0]], -r["epoch"]))


def runs_among(paths):
    """(the paths of ``paths`` to read as runs, a note for each path skipped): of several
    paths (a shell glob such as ``runs/*``), a file (an exported .params or .onnx) and a
    folder that holds no run (none of config.yaml, log.jsonl, checkpoints/: ``runs/figures``
    of the plotting tools) are skipped; a single path, a path that does not exist, a damaged
    run and paths none of which holds a run are kept, for :func:`load_run`'s one-line error
    to name."""
    def holds_none(path):
        return os.path.isfile(path) or (os.path.isdir(path) and not RunFolder(path).holds_run())

    skipped = [p for p in paths if len(paths) > 1 and holds_none(p)]
    kept = [p for p in paths if p not in skipped]
    if not kept:
        return list(paths), []
    return kept, [f"{p}: a file, not a run folder, skipped" if os.path.isfile(p) else
                  f"{p}: holds no run (no {RunFolder.CONFIG}, {RunFolder.LOG} or "
                  f"{RunFolder.CHECKPOINTS}/), skipped" for p in skipped]


def load_run(path):
    """Read the run folder ``path``; RunFolderError (one line) if it is not one."""
    if not os.path.isdir(path):
        raise RunFolderError(f"{path}: not a run folder (no such directory)")
    folder = RunFolder(path)
    raw, log = folder.read_config(), EpochLog(folder.log_path)
    if "task" in raw:  # tools/transfer.py's run
        cfg = transfer_config.from_saved(raw, folder.config_path)
        return RunRecord(path=path, config=cfg.to_dict(),
                         epochs=_epochs(log, TRANSFER_METRICS[cfg.task]),
                         command=folder.read_command(), task=cfg.task,
                         backbone=log.last_record("backbone"))
    config = from_saved(raw, folder.config_path).to_dict()
    return RunRecord(path=path, config=config, epochs=_epochs(log),
                     command=folder.read_command(), plans=_plans(log))


def _plans(log):
    """RunRecord.plans of the EpochLog ``log``: a record without its epoch and every field
    of a BatchPlan as a positive whole number (written by hand, cut short) is left out."""
    names = [f.name for f in fields(BatchPlan)]
    plans = []
    for record in log.records("plan"):
        values = [record.get(k) for k in ["epoch"] + names]
        if all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in values):
            plan = BatchPlan(**{k: record[k] for k in names})
            if not plans or plans[-1][1] != plan:
                plans.append((record["epoch"], plan))
    return plans


def _epochs(log, *metrics):
    """``log.read_epochs(*metrics)``; a log.jsonl that is not UTF-8 text (binary bytes:
    a damaged disk, another file copied over it) is a one-line RunFolderError."""
    try:
        return log.read_epochs(*metrics)
    except UnicodeDecodeError as e:
        raise RunFolderError(f"{log.path}: not a log of JSON lines (bytes that are "
                             f"not UTF-8 text: {e.reason}); the file is damaged") from None
