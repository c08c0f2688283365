"""The transfer loop (paper §6): fine-tune GluonCV's Faster-RCNN or FCN from one of our
classification backbones, with the classification trainer's run folder, logs, checkpoints
and resume.

:func:`train_transfer` is the whole run: every check first (data, backbone, run folder),
then per epoch: the learning rate per update (:class:`~gluon_tricks.train.schedule.LRSchedule`,
step or poly), the task's forward-backward pass, SGD (GluonCV's optimizer for both
published runs), validation (VOC07 mAP, or pixAcc and mIoU), a log record and a checkpoint.
The task (:mod:`.detection`, :mod:`.segmentation`) owns the network, data and metrics.
"""
import random
import time
from dataclasses import dataclass

import mxnet as mx
import numpy as np

from .. import seeds
from ..errors import RunError
from ..runfolder import params_of
from ..train.config import ConfigError
from ..train.distributed import SingleProcess
from ..train.loop import (RunLog, checked_run_folder, finish_resume, load_newest_checkpoint,
                          recipe_mismatch, start_run_folder)
from ..train.optim import optimizer_state
from ..train.schedule import LRSchedule
from . import detection, segmentation
from .config import check_resume, from_saved

TASKS = {"detection": (detection.Detection, detection.check_data),
         "segmentation": (segmentation.Segmentation, segmentation.check_data)}


@dataclass
class TransferResult:
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


def _seed_epoch(cfg, epoch):
    """GluonCV's loaders and transforms draw from numpy's, Python's and MXNet's global
    generators: seed all three from (seed, epoch), so a resumed run draws what an unbroken
    one would (with num_workers 0; worker processes keep their own state)."""
    seed = seeds.derived_seed(cfg.seed, epoch, 0, seeds.SHUFFLE)
    np.random.seed(seed)
    random.seed(seed)
    mx.random.seed(seed)


def train_transfer(cfg, data_root, out, contexts=None, resume=False, force=False,
                   stop_after=None, command=None):
    """Fine-tune the task of ``cfg`` on the dataset under ``data_root``; logs and checkpoints
    go to the run folder ``out``. Returns a :class:`TransferResult`. Arguments as
    :func:`gluon_tricks.train.loop.train`'s."""
    contexts = contexts or [mx.cpu()]
    task_class, check_data = TASKS[cfg.task]
    check_data(data_root, cfg.dataset)
    folder = checked_run_folder(out, resume, force)
    changed = {}
    if resume:
        try:
            changed = check_resume(from_saved(folder.read_config(), folder.config_path), cfg)
        except ConfigError as e:
            raise RunError(f"--resume {out}: {e}") from None
    params = None if resume else backbone_params(cfg)  # a resume loads its checkpoint
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
                          step_epochs=tuple(cfg.lr_step_epochs), step_factor=cfg.lr_step_factor,
                          power=cfg.lr_power)
    start_run_folder(folder, cfg, command, resume, changed)
    log = RunLog(folder, True)
    start, best, best_epoch = 0, -1.0, None
    if resume:
        start, best, best_epoch = _resume(folder, net, trainer, contexts, log)
    log.info("%s: %s on %s (%s), %d images per update, %d updates per epoch, lr %.4g on %s",
             cfg.paper or cfg.task, cfg.task, cfg.backbone_model,
             cfg.backbone if params else "checkpoint" if resume else "random backbone",
             cfg.batch_size, len(train_loader), cfg.lr, contexts)
    note = recipe_mismatch(cfg.backbone, cfg.backbone_recipe, "backbone")
    if note:
        log.info("note: %s", note)
    end = cfg.epochs if stop_after is None else min(cfg.epochs, start + stop_after)
    metrics = {}
    for epoch in range(start, end):
        tic = time.time()
        loss, lr = _train_epoch(task, trainer, train_loader, schedule, epoch, log)
        seconds = time.time() - tic
        SingleProcess().average_running_stats(net.collect_params())
        metrics = task.evaluate(val_loader)
        value = metrics[task.metrics[0]]
        is_best = value > best
        if is_best:
            best, best_epoch = value, epoch + 1
        record = dict(type="epoch", epoch=epoch + 1, lr=lr, train_loss=loss, **metrics,
                      samples_per_sec=len(train_loader) * cfg.batch_size / seconds,
                      time_s=time.time() - tic, best=best)
        log.info("epoch %d/%d lr %.5g train loss %.4f %s (%.1fs)", epoch + 1, cfg.epochs, lr,
                 loss, " ".join(f"{k} {metrics[k]:.4f}" for k in task.metrics),
                 record["time_s"])
        log.record(**record)
        arrays, state = optimizer_state(trainer, net)
        folder.save_checkpoint(epoch + 1, net, arrays,
                               dict(record, best_epoch=best_epoch, optimizer=state),
                               is_best, keep=cfg.keep_checkpoints)
        folder.drop_set_aside()
    return TransferResult(epochs=end, metrics=metrics, best=best, best_epoch=best_epoch,
                          run_dir=out)


def _train_epoch(task, trainer, loader, schedule, epoch, log):
    """One pass over the training set; returns (mean loss, last lr)."""
    cfg = task.cfg
    _seed_epoch(cfg, epoch)
    task.start_epoch()
    first = epoch * schedule.batches_per_epoch  # updates before this epoch
    total, lr, interval_tic = 0.0, None, time.time()
    for b, batch in enumerate(loader, start=1):
        lr = schedule.lr(first + b)
        trainer.set_learning_rate(lr)
        total += task.forward_backward(batch)
        trainer.step(cfg.batch_size)
        if b % cfg.log_interval == 0:
            speed = cfg.log_interval * cfg.batch_size / (time.time() - interval_tic)
            log.info("epoch %d batch %d/%d lr %.5g loss %.4f %.1f samples/s", epoch + 1, b,
                     len(loader), lr, total / b, speed)
            log.record(type="interval", epoch=epoch + 1, batch=b, lr=lr, train_loss=total / b,
                       samples_per_sec=speed)
            interval_tic = time.time()
    return total / max(len(loader), 1), lr


def _resume(folder, net, trainer, contexts, log):
    """Load the newest checkpoint that loads (network and optimizer state; newer unreadable
    ones are set aside), as the classification trainer does; returns (epochs done, best
    metric, its epoch)."""
    epoch, record, unreadable = load_newest_checkpoint(folder, net, trainer, contexts, log)
    if record is None:  # the network was built without its backbone: nothing to go on from
        raise RunError(f"--resume {folder.path}: no checkpoint that loads; start it again "
                       "with --force")
    finish_resume(folder, epoch, record, unreadable, log)
    return epoch, record.get("best", -1.0), record.get("best_epoch")
