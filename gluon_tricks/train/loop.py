"""The classification trainer, read top to bottom as the paper: §2.1 baseline, §3 efficient
training, §5 refinements. Every trick is a small function of its own module; this file
only composes them, on the run layer (:mod:`gluon_tricks.run`) that the transfer trainer
shares.

:func:`train` is the whole run: every check (devices, data files, classes, images, run
folder, teacher), the network and optimizer (:func:`build_training`), then the run folder
(started or resumed), then per epoch :func:`train_one_epoch`,
:func:`~gluon_tricks.train.metrics.evaluate` and :func:`end_epoch` (log record,
checkpoint). One update is :class:`~gluon_tricks.train.step.TrainStep`.
"""
import itertools
import os
import sys
import time
from dataclasses import asdict, dataclass

import mxnet as mx
import numpy as np

from .. import data as gt_data
from .. import seeds
from ..data.shards import device_batches
from ..errors import RunError
from ..models.weights import WeightsError, init_from
from ..run.folder import params_of
from ..run.lifecycle import Launch, open_run, recipe_mismatch
from ..run.parallel import SingleProcess, materialize_parameters
from ..run.progress import Diverged, Progress
from .config import RECIPES, batch_plan, schedule_of
from .loss_scale import all_finite
from .metrics import EpochSums, evaluate
from .mixup import mixer_of
from .nets import build_net, check_devices, hybridize_student, load_teacher
from .optim import make_optimizer, set_no_bias_decay
from .step import TrainStep, step_of

SKIPPED_WARNING = 0.05  # warn when more than this fraction of an epoch's updates is skipped


@dataclass
class Training:
    """What a run trains with, built by :func:`build_training`: the network, its Trainer,
    the update step, the learning-rate schedule and the batch mixer (None: no mixing;
    :mod:`gluon_tricks.train.mixup`)."""
    net: object
    trainer: object
    step: TrainStep
    schedule: object
    mixer: object


@dataclass
class RunResult:
    epochs: int
    val_top1: float
    val_top5: float
    best_top1: float
    run_dir: str


def train(cfg, rec_train, rec_val, out, contexts=None, dist=None, launch=None):
    """Train ``cfg`` on ``rec_train``, validating on ``rec_val`` every epoch; checkpoints and
    logs go to the run folder ``out``. ``contexts``: the devices of this process (default
    the CPU); ``dist``: this process's place in a data-parallel job (default one process);
    ``launch``: how the run folder is opened (:class:`~gluon_tricks.run.lifecycle.Launch`:
    resume, force, stop after N epochs, the command line). Returns a :class:`RunResult`.

    Every check that can fail runs before the run folder is touched."""
    contexts, dist, launch = contexts or [mx.cpu()], dist or SingleProcess(), launch or Launch()
    check_devices(cfg.dtype, contexts)
    plan = batch_plan(cfg, len(contexts), dist.size)
    train_loader, val_loader = checked_loaders(cfg, rec_train, rec_val, contexts, dist, plan)
    updates = train_loader.batches_per_epoch // plan.accumulate  # per epoch
    with open_run(out, launch, cfg, RECIPES, best_key="best_top1", dist=dist) as run:
        teacher = load_teacher(cfg, contexts) if cfg.distill else None
        # a resume without a checkpoint (killed in its first epoch) starts as the run did
        parts, init = build_training(cfg, contexts, dist, teacher, updates,
                                     fresh_start=not run.has_checkpoint)
        run_log = run.start(cfg)
        start, record = resume(run, parts, cfg, contexts) if launch.resume else (0, None)
        log_start(run_log, cfg, updates, plan, contexts, init)
        if start < run.end(start, cfg.epochs):  # for the report: what trains from here on
            run_log.record(type="plan", epoch=start + 1, **asdict(plan))
        note = sets_note(rec_train, rec_val, train_loader.num_samples, val_loader.num_samples)
        if note:
            run_log.info("note: %s", note)
        # a resume with nothing left to train reports the checkpoint's validation
        val = tuple(float((record or {}).get(k, float("nan"))) for k in ("val_top1", "val_top5"))
        for epoch in range(start, run.end(start, cfg.epochs)):
            tic = time.time()
            sums = train_one_epoch(cfg, parts, train_loader, epoch, run_log, dist)
            # every rank must hold the network that is validated and saved
            dist.average_running_stats(parts.net.collect_params())
            val = evaluate(parts.net, val_loader, contexts, cfg.dtype, dist)
            end_epoch(run, cfg, parts, EpochOutcome(epoch, sums, val, time.time() - tic),
                      dist, updates)
        folder = run.folder
        run_log.info("done after epoch %d/%d: val top-1 %.4f top-5 %.4f (best top-1 %.4f); log "
                     "%s, checkpoints %s, best %s", run.end(start, cfg.epochs), cfg.epochs,
                     val[0], val[1], run.best, folder.log_path, folder.checkpoint_dir,
                     folder.best_params)
    return RunResult(epochs=run.end(start, cfg.epochs), val_top1=val[0], val_top5=val[1],
                     best_top1=run.best, run_dir=out)


def checked_loaders(cfg, rec_train, rec_val, contexts, dist, plan=None):
    """§2.1 data: (train, val) loaders of this rank's shard, its batch the rank's micro-batch
    of the :class:`~gluon_tricks.train.config.BatchPlan` ``plan`` (default: batch_plan on
    ``contexts`` and ``dist``; in page-locked memory for a GPU), after every check of the
    files that is cheap enough to run first."""
    plan = plan or batch_plan(cfg, len(contexts), dist.size)
    rank_batch = plan.rank_batch
    data = cfg.data.replace(num_workers=cfg.data.workers(dist.local_size))
    gpu = next((c.device_id for c in contexts if c.device_type == "gpu"), None)
    train_loader, val_loader = gt_data.make_loaders(
        data, rec_train, rec_val, rank_batch, gt_data.Shard(dist.size, dist.rank),
        seed=cfg.seed, pin_device=gpu)  # the loaders check both files (check_rec)
    # the recipe's classes: every one in the training set, no validation label outside them,
    # and the packer's class lists, where both sets have one, the same
    gt_data.check_classes(rec_val, cfg.classes, gt_data.classes_file(rec_train))
    gt_data.check_labels(rec_train, cfg.classes, every_class=True)
    gt_data.check_labels(rec_val, cfg.classes)
    # an image MXNet cannot decode ends the process without a word: find them first where
    # it is cheap (the validation set is small; the training set is sampled)
    for rec, sample in ((rec_val, None), (rec_train, cfg.data.check_train_images)):
        gt_data.check_images(rec, sample, num_parts=dist.size, part_index=dist.rank)
    if train_loader.batches_per_epoch < plan.accumulate:
        raise RunError(f"{rec_train}: {train_loader.num_samples} images per rank make no batch "
                       f"of {rank_batch * plan.accumulate}; lower --batch-size")
    return train_loader, val_loader


def sets_note(rec_train, rec_val, train_images, val_images):
    """A sentence if the training set ``rec_train`` is the validation set ``rec_val`` or not
    larger than it (``train_images``, ``val_images``: this rank's shares): validation would
    measure recall of the training images, or the two are probably swapped. Else None."""
    if os.path.samefile(rec_train, rec_val):
        return (f"--rec-train and --rec-val are the same file ({rec_train}): validation "
                "measures how well the training images are remembered, not how the network "
                "generalises")
    if train_images <= val_images:
        return (f"the training set ({train_images} images) is not larger than the validation "
                f"set ({val_images}); are --rec-train and --rec-val swapped?")
    return None


def build_training(cfg, contexts, dist, teacher, batches_per_epoch, fresh_start=True):
    """§2.1 model and §3 efficient training: (:class:`Training`, init report), the network's
    initial values the same on every rank. With ``cfg.init`` and a ``fresh_start`` (not a
    resume, whose checkpoint holds the weights) the network starts from those weights
    (:func:`gluon_tricks.models.weights.init_from`; the report says what loaded)."""
    mx.random.seed(cfg.seed)
    net = build_net(cfg, contexts)
    px = cfg.data.input_size
    materialize_parameters(net, (1, 3, px, px), contexts, cfg.dtype)
    init = None
    if cfg.init and fresh_start:
        path = params_of(cfg.init, "; --init takes a run folder or a .params file")
        try:
            init = init_from(net, path, cfg.model)
        except WeightsError as e:
            raise RunError(str(e)) from None
    dist.broadcast_parameters(net.collect_params())
    hybridize_student(net, contexts)
    if cfg.no_bias_decay:
        set_no_bias_decay(net)
    schedule = schedule_of(cfg, batches_per_epoch)
    optimizer = make_optimizer(schedule.lr(1), momentum=cfg.momentum, wd=cfg.wd,
                               multi_precision=cfg.dtype == "float16")
    trainer = dist.trainer(net.collect_params(), optimizer, len(contexts))
    step = step_of(cfg, net, trainer, contexts, teacher,
                   batch_plan(cfg, len(contexts), dist.size).accumulate)
    return Training(net, trainer, step, schedule, mixer_of(cfg)), init


def resume(run, parts, cfg, contexts):
    """Continue the run from its newest checkpoint that loads: weights, optimizer state,
    best accuracy and the loss scale. Returns (the epochs done, the checkpoint's record or
    None)."""
    start, record = run.resume(parts.net, parts.trainer, contexts, cfg.epochs)
    scaler = parts.step.scaler
    if record is not None and scaler is not None and record.get("loss_scaler"):
        scaler.load_state_dict(record["loss_scaler"])
    return start, record


def log_start(run_log, cfg, updates, plan, contexts, init):
    """The run's first lines: what trains on what (``updates`` per epoch, the
    :class:`~gluon_tricks.train.config.BatchPlan` ``plan``), what --init loaded, and a
    teacher trained from another recipe than the row's."""
    run_log.info("%s: %s, %d images/epoch on %s, peak lr %.4g", cfg.paper or "run", cfg.model,
                 updates * cfg.batch_size, contexts, cfg.peak_lr())
    run_log.info("%s", plan.line())
    for line in init.lines(cfg.init) if init is not None else ():
        run_log.info("%s", line)
    if cfg.distill:
        note = teacher_recipe_mismatch(cfg)
        if note:
            run_log.info("note: %s", note)


def teacher_recipe_mismatch(cfg):
    """A sentence if the teacher is a run folder trained from another recipe than the
    row's ``teacher_recipe`` (e.g. the non-mixup teacher for a distill-with-mixup row),
    else None. Bare .params files and runs without command.json are not judged."""
    return recipe_mismatch(cfg.teacher, cfg.teacher_recipe, "teacher")


def train_one_epoch(cfg, parts, loader, epoch, run_log, dist):
    """One pass over this rank's shard (0-based ``epoch``); returns its
    :class:`~gluon_tricks.train.metrics.EpochSums`. Host synchronisations: one per progress
    line (:class:`~gluon_tricks.run.progress.Progress`) and one at the end, where a loss or
    weight that is not finite (or, in FP16, a collapsed loss scale) stops the run with one
    line (:class:`~gluon_tricks.run.progress.Diverged`) before it is validated, becomes
    the best or replaces a checkpoint."""
    tic = time.time()
    # the mixer's draws and MXNet's own generator, from (seed, epoch) as every stream
    epoch_seed = seeds.derived_seed(cfg.seed, epoch, 0, seeds.MIXUP)  # same on every rank
    rng = np.random.default_rng(epoch_seed)
    mx.random.seed(epoch_seed)
    mixer = parts.mixer if epoch < cfg.epochs - cfg.mixup_off_epochs else None
    step = parts.step
    sums = EpochSums(step.contexts[0], mixing=mixer is not None)
    step.skipped = 0
    accumulate = step.settings.accumulate
    updates = loader.batches_per_epoch // accumulate
    done = epoch * updates  # updates before this epoch
    progress = Progress(run_log, epoch, updates, cfg.log_interval, cfg.batch_size)
    batches = _updates(_batches(loader, epoch, cfg, dist, step.contexts), accumulate, updates)
    for batch_index, micro in progress.log_every(batches):
        lr = sums.lr = parts.schedule.lr(done + batch_index)
        parts.trainer.set_learning_rate(lr)
        for xs, ys, _ in micro:
            try:
                loss, outputs = step(xs, ys, mixer.sample(rng) if mixer is not None else None)
            except Diverged as e:
                raise progress.diverged(e.what) from None
            sums.add(loss, outputs, ys)
        progress.update(lr, sums.mean_loss)
    weights = [a for p in parts.net.collect_params().values() for a in p.list_data()]
    if not all_finite([sums.loss] + weights, cpu_on_host=True):
        raise progress.diverged("a training loss or weight is not finite at the epoch's end")
    sums.seconds = time.time() - tic
    sums.skipped = step.skipped  # the same on every rank: the verdict is on reduced grads
    if step.scaler is not None and sums.skipped > SKIPPED_WARNING * updates:
        run_log.info("warning: %d of %d updates of epoch %d skipped for FP16 overflow (loss "
                     "scale now %g)", sums.skipped, updates, epoch + 1, step.scaler.scale)
    return sums


def _batches(loader, epoch, cfg, dist, contexts):
    """The epoch's batches as each device's share on it, in float32 (mixing runs before the
    cast), behind a progress bar on the root rank's terminal."""
    batches = device_batches(loader, epoch, contexts)
    if dist.is_root and sys.stderr.isatty():
        from tqdm import tqdm
        batches = tqdm(batches, total=loader.batches_per_epoch, leave=False,
                       desc=f"epoch {epoch + 1}/{cfg.epochs}")
    return batches


def _updates(batches, accumulate, updates):
    """``updates`` iterators over ``accumulate`` consecutive ``batches`` each (read one at a
    time, so that one micro-batch is on the devices at once): an epoch of whole updates, so
    that none straddles two epochs and a checkpoint is always at an update's end. The
    micro-batches left over are still read, so that the loader ends its epoch as it does
    unbroken (its workers, DALI's reset)."""
    batches = iter(batches)
    for _ in range(updates):
        yield itertools.islice(batches, accumulate)
    for _ in batches:
        pass


@dataclass
class EpochOutcome:
    """What one epoch measured: ``epoch`` (0-based), its training ``sums``
    (:class:`~gluon_tricks.train.metrics.EpochSums`), ``val`` ((top-1, top-5, images) of
    :func:`~gluon_tricks.train.metrics.evaluate`) and ``seconds`` (its time with
    validation)."""
    epoch: int
    sums: EpochSums
    val: tuple
    seconds: float


def end_epoch(run, cfg, parts, outcome, dist, batches_per_epoch):
    """Log the epoch of ``outcome`` (an :class:`EpochOutcome`; people and programs) and
    checkpoint it."""
    scaler = parts.step.scaler
    epoch, sums, seconds = outcome.epoch, outcome.sums, outcome.seconds
    train_loss, train_top1, samples = sums.reduce(dist)
    top1, top5, n_val = outcome.val
    is_best = run.beats_best(top1)
    if is_best:
        run.record_best(top1, epoch + 1)
    record = dict(type="epoch", epoch=epoch + 1, lr=sums.lr, train_loss=train_loss,
                  train_top1=train_top1, val_top1=top1, val_top5=top5, val_images=n_val,
                  samples_per_sec=samples / sums.seconds, time_s=seconds,
                  loss_scale=scaler.scale if scaler is not None else None,
                  skipped_steps=sums.skipped if scaler is not None else None,
                  best_top1=run.best)
    run.log.info("epoch %d/%d lr %.5g train loss %.4f%s val top-1 %.4f top-5 %.4f "
                 "(%d images) %.1f samples/s %.1fs%s", epoch + 1, cfg.epochs, sums.lr,
                 train_loss, "" if train_top1 is None else f" top-1 {train_top1:.4f}", top1,
                 top5, n_val, record["samples_per_sec"], seconds,
                 "" if scaler is None else f" loss scale {scaler.scale:g}, {sums.skipped} skipped")
    run.end_epoch(epoch + 1, parts.net, parts.trainer, record, is_best,
                  keep=cfg.keep_checkpoints,
                  extra=dict(global_batch=(epoch + 1) * batches_per_epoch, seed=cfg.seed,
                             loss_scaler=scaler.state_dict() if scaler is not None else None))
