"""The transfer loop (paper §6): fine-tune GluonCV's Faster-RCNN or FCN from one of our
classification backbones, on the run layer the classification trainer shares
(:mod:`gluon_tricks.run`: run folder, logs, checkpoints, resume).

:func:`train_transfer` is the whole run: every check first (data, backbone, run folder),
then per epoch: the learning rate per update (:class:`~gluon_tricks.run.schedule.LRSchedule`,
step or poly), the task's forward-backward pass, SGD (GluonCV's optimizer for both
published runs), validation (VOC07 mAP, or pixAcc and mIoU), a log record and a checkpoint
(:func:`_epoch`).
The task (:mod:`.detection`, :mod:`.segmentation`) owns the network, data and metrics.
"""
import json
import os
import random
import time
from dataclasses import dataclass

import mxnet as mx
import numpy as np

from .. import seeds
from ..errors import RunError
from ..run.folder import params_of
from ..run.lifecycle import Launch, open_run, recipe_mismatch
from ..run.parallel import SingleProcess
from ..run.progress import Progress
from ..run.schedule import LRSchedule
from . import detection, segmentation
from .config import RECIPES

TASKS = {"detection": (detection.Detection, detection.check_data),
         "segmentation": (segmentation.Segmentation, segmentation.check_data)}


@dataclass
class TransferRunResult:
    """What :func:`train_transfer` returns (a cell of Tables 8/9 is
    :class:`gluon_tricks.paper.TransferResult`)."""
    epochs: int
    metrics: dict  # the last epoch's validation metrics
    best: float  # best value of the task's first metric
    best_epoch: int
    run_dir: str


def backbone_params(cfg):
    """The backbone's .params file, or None for a random backbone (``pretrained: false``)."""
    if not cfg.pretrained:
        return None
    if not cfg.backbone:
        raise RunError("--backbone is required: a run folder or .params file of "
                       f"{cfg.backbone_model} (or --set pretrained=false for a random one)")
    return params_of(cfg.backbone, f"; --backbone takes a run folder or .params file of "
                     f"{cfg.backbone_model}")


def backbone_record(params):
    """The log.jsonl record of the backbone weights a run starts from (the .params file
    ``params``): type "backbone", the file, and the validation ``val_top1`` / ``val_top5``
    (fractions; ImageNet for Tables 8 and 9) and ``backbone_epoch`` that the run which
    trained them recorded in the .json beside the file (a run folder's best.json beside
    best.params, a checkpoint's epoch-NNNN.json); None for each where there is no such
    record (a .params file from elsewhere, GluonCV's)."""
    saved = {}
    try:
        with open(os.path.splitext(params)[0] + ".json") as f:
            saved = json.load(f)
    except (OSError, ValueError):
        pass
    if not isinstance(saved, dict) or not isinstance(saved.get("val_top1"), (int, float)):
        saved = {}
    return dict(type="backbone", params=os.path.abspath(params),
                val_top1=saved.get("val_top1"), val_top5=saved.get("val_top5"),
                backbone_epoch=saved.get("epoch"))


def _seed_epoch(cfg, epoch):
    """GluonCV's loaders and transforms draw from numpy's, Python's and MXNet's global
    generators: seed all three from (seed, epoch), so a resumed run draws what an unbroken
    one would (with num_workers 0; worker processes keep their own state)."""
    seed = seeds.derived_seed(cfg.seed, epoch, 0, seeds.SHUFFLE)
    np.random.seed(seed)
    random.seed(seed)
    mx.random.seed(seed)


def train_transfer(cfg, data_root, out, contexts=None, launch=None):
    """Fine-tune the task of ``cfg`` on the dataset under ``data_root``; logs and checkpoints
    go to the run folder ``out``. ``contexts``: the devices (default the CPU); ``launch``:
    how the run folder is opened (:class:`~gluon_tricks.run.lifecycle.Launch`). Returns a
    :class:`TransferRunResult`. Every check that can fail runs before the run folder is
    touched."""
    contexts, launch = contexts or [mx.cpu()], launch or Launch()
    task_class, check_data = TASKS[cfg.task]
    check_data(data_root, cfg.dataset)
    with open_run(out, launch, cfg, RECIPES, best_key="best") as run:
        # a resume loads its checkpoint; without one (killed in its first epoch) it starts
        # from the backbone, as the run did
        params = None if run.has_checkpoint else backbone_params(cfg)
        mx.random.seed(cfg.seed)
        task = task_class(cfg, data_root, contexts)
        net = task.build_net(params)
        optimizer = mx.optimizer.SGD(learning_rate=cfg.lr, momentum=cfg.momentum, wd=cfg.wd)
        trainer = SingleProcess().trainer(task.trained_params(), optimizer, len(contexts))
        train_loader, val_loader = task.loaders()
        if len(train_loader) == 0:
            raise RunError(f"{data_root}: too few training images for one batch of "
                           f"{cfg.batch_size}; lower --batch-size")
        schedule = LRSchedule(peak_lr=cfg.lr, batches_per_epoch=len(train_loader),
                              epochs=cfg.epochs, mode=cfg.lr_mode,
                              step_epochs=tuple(cfg.lr_step_epochs),
                              step_factor=cfg.lr_step_factor, power=cfg.lr_power)
        log = run.start(cfg)
        start = run.resume(net, trainer, contexts, cfg.epochs)[0] if launch.resume else 0
        log.info("%s: %s on %s (%s), %d images per update, %d updates per epoch, lr %.4g on "
                 "%s", cfg.paper or cfg.task, cfg.task, cfg.backbone_model,
                 cfg.backbone if params else "checkpoint" if run.has_checkpoint
                 else "random backbone", cfg.batch_size, len(train_loader), cfg.lr, contexts)
        if params:
            _log_backbone(log, backbone_record(params))
        note = recipe_mismatch(cfg.backbone, cfg.backbone_recipe, "backbone")
        if note:
            log.info("note: %s", note)
        metrics = {}
        for epoch in range(start, run.end(start, cfg.epochs)):
            metrics = _epoch(run, task, net, trainer, (train_loader, val_loader), schedule,
                             epoch)
    return TransferRunResult(epochs=run.end(start, cfg.epochs), metrics=metrics,
                             best=run.best, best_epoch=run.best_epoch, run_dir=out)


def _log_backbone(log, record):
    """The backbone's record in log.jsonl (what the results table's "backbone top-1" shows)
    and its line in train.log."""
    log.record(**record)
    if record["val_top1"] is None:
        log.info("backbone top-1: unknown (no record of its run beside %s)", record["params"])
    else:
        log.info("backbone top-1: %.2f%% (validation, epoch %s of the run that trained it)",
                 100 * record["val_top1"], record["backbone_epoch"])


def _epoch(run, task, net, trainer, loaders, schedule, epoch):
    """Train, validate, log and checkpoint one epoch; returns its validation metrics."""
    cfg, (train_loader, val_loader) = task.cfg, loaders
    tic = time.time()
    loss, lr = train_one_epoch(task, trainer, train_loader, schedule, epoch, run.log)
    seconds = time.time() - tic
    SingleProcess().average_running_stats(net.collect_params())
    metrics = task.evaluate(val_loader)
    value = metrics[task.metrics[0]]  # the metric the best epoch is chosen by
    is_best = run.beats_best(value)
    if is_best:
        run.record_best(value, epoch + 1)
    record = dict(type="epoch", epoch=epoch + 1, lr=lr, train_loss=loss, **metrics,
                  samples_per_sec=len(train_loader) * cfg.batch_size / seconds,
                  time_s=time.time() - tic, best=run.best)
    run.log.info("epoch %d/%d lr %.5g train loss %.4f %s (%.1fs)", epoch + 1, cfg.epochs, lr,
                 loss, " ".join(f"{k} {metrics[k]:.4f}" for k in task.metrics), record["time_s"])
    run.end_epoch(epoch + 1, net, trainer, record, is_best, keep=cfg.keep_checkpoints)
    return metrics


def train_one_epoch(task, trainer, loader, schedule, epoch, run_log):
    """One pass over the training set (0-based ``epoch``); returns (mean loss, last lr).
    Progress lines: :class:`~gluon_tricks.run.progress.Progress`."""
    cfg = task.cfg
    _seed_epoch(cfg, epoch)
    task.start_epoch()
    done = epoch * schedule.batches_per_epoch  # updates before this epoch
    total, lr = 0.0, None
    progress = Progress(run_log, epoch, len(loader), cfg.log_interval, cfg.batch_size)
    for batch_index, batch in progress.log_every(loader):
        lr = schedule.lr(done + batch_index)
        trainer.set_learning_rate(lr)
        total += task.forward_backward(batch)
        trainer.step(cfg.batch_size)
        progress.update(lr, lambda: total / batch_index)
    return total / max(len(loader), 1), lr
