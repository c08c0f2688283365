"""The training loop, read top to bottom as the paper: §2.1 baseline, §3 efficient
training, §5 refinements. Every trick is a small function of its own module; this file
only composes them.

:func:`train` is the whole run: :func:`set_up` (every check, the network and optimizer,
then the run folder and a resumed state), then per epoch :func:`train_one_epoch`,
:func:`evaluate` and :func:`end_epoch` (log record, checkpoint). :class:`TrainStep` is one
update and :class:`EpochSums` the epoch's running sums.
"""
import logging
import os
import sys
import time
from dataclasses import dataclass

import mxnet as mx
import numpy as np
from mxnet import autograd

from .. import data as gt_data
from .. import seeds
from ..errors import RunError
from ..models import get_model, initializer
from ..runfolder import RunFolder, RunFolderError, params_of
from ..weights import WeightsError, init_from, load_network
from .distributed import SingleProcess, materialize_parameters
from .loss_scale import DynamicLossScaler, StaticLossScaler
from .losses import distillation_loss, smooth_labels, soft_cross_entropy
from .mixup import mixup, sample_lambda
from .config import ConfigError, from_saved, resume_changes
from .optim import make_optimizer, optimizer_state, restore_optimizer_state, set_no_bias_decay
from .schedule import LRSchedule

log = logging.getLogger("gluon_tricks")

# FP16: a loss scale at 1 (the dynamic scaler's floor) that still overflows this many steps
# in a row means the run has diverged (inf/NaN in the weights or the loss), and it would
# skip every update from now on
COLLAPSED_STEPS = 100
SKIPPED_WARNING = 0.05  # warn when more than this fraction of an epoch's updates is skipped


# ----------------------------------------------------------------------------- checks

def check_devices(cfg, contexts):
    """FP16 needs a GPU: MXNet has no FP16 GEMM on CPU."""
    if cfg.dtype == "float16" and all(c.device_type == "cpu" for c in contexts):
        raise RunError("dtype float16 needs a GPU (MXNet: 'FP16 gemm on cpu not implemented'); "
                       "pass --gpus, or --set dtype=float32 to train on CPU")


# ----------------------------------------------------------------------------- networks

def build_net(cfg, contexts):
    """The network of the recipe (§2.1 init, §3.1 zero gamma), cast for FP16 (§3.2)."""
    net = get_model(cfg.model, classes=cfg.classes, zero_gamma=cfg.zero_gamma)
    net.initialize(initializer(), ctx=contexts)
    if cfg.dtype == "float16":
        net.cast("float16")
    return net


def hybridize_student(net, contexts):
    """Hybridize the network being trained. On GPUs with static memory and shapes (as
    GluonCV trains); on CPU plainly: identical CPU runs and resumed runs are bit-equal with
    it (naive engine), and static_alloc was not seen to be faster there."""
    on_gpu = any(c.device_type == "gpu" for c in contexts)
    net.hybridize(static_alloc=on_gpu, static_shape=on_gpu)


def load_teacher(cfg, contexts):
    """The distillation teacher (§5.3): inference mode, no gradient."""
    path = params_of(cfg.teacher, "; --set teacher=RUN_DIR or a .params file of the teacher "
                     "(ours or GluonCV's)")
    # a teacher trained in FP16 (the teacher recipe) saved FP16 weights: cast on load
    teacher = load_network(cfg.teacher_model, cfg.classes, path, contexts)
    teacher.collect_params().setattr("grad_req", "null")
    if cfg.dtype == "float16":
        teacher.cast("float16")
    teacher.hybridize(static_alloc=True, static_shape=True)
    return teacher


def make_scaler(cfg):
    """Loss scaling for FP16 (§3.2); FP32 runs need none."""
    if cfg.dtype != "float16":
        return None
    if cfg.loss_scale == "dynamic":
        return DynamicLossScaler()
    return StaticLossScaler(float(cfg.loss_scale))


# ----------------------------------------------------------------------------- one step

class TrainStep:
    """One update: targets (label smoothing §5.2), mixup (§5.4), forward, loss (with
    distillation §5.3), scaled backward (§3.2), gradient reduction, update."""

    def __init__(self, cfg, net, trainer, contexts, teacher=None, scaler=None):
        self.cfg, self.net, self.trainer, self.contexts = cfg, net, trainer, contexts
        self.teacher, self.scaler = teacher, scaler
        self.params = [p for p in net.collect_params().values() if p.grad_req != "null"]
        self.skipped = 0  # updates skipped for an FP16 overflow, since the loop reset it
        self.collapsed = 0  # consecutive overflowing steps with the loss scale at 1 or less

    def __call__(self, data, label, lam=None):
        """data: (N, 3, H, W) float32 NDArray on CPU; label: (N,) class indices.
        lam: mixup coefficient, or None for no mixing. Returns (loss summed over the batch,
        a (1,) NDArray on the first device; the list of per-device logits).

        The batch is split first; targets, mixup and the FP16 cast then run on each device
        (as GluonCV does), so that no work on the whole batch waits on the host. Mixup
        pairs examples within each device's share."""
        cfg = self.cfg
        scale = self.scaler.scale if self.scaler is not None else 1.0
        xs, ys = [], []
        for x, y in zip(*(mx.gluon.utils.split_and_load(a, self.contexts, even_split=False)
                          for a in (data, label))):
            y = smooth_labels(y, cfg.classes, cfg.label_smoothing, cfg.label_smoothing_mode)
            if lam is not None:
                x, y = mixup(x, y, lam)
            xs.append(x.astype(cfg.dtype, copy=False))
            ys.append(y)
        soft = [self.teacher(x) for x in xs] if self.teacher is not None else None
        losses, outputs = [], []
        with autograd.record():
            for i, (x, y) in enumerate(zip(xs, ys)):
                z = self.net(x)
                if soft is None:
                    loss = soft_cross_entropy(z, y)
                else:
                    loss = distillation_loss(z, soft[i], y, cfg.temperature, cfg.hard_weight)
                losses.append(loss)
                outputs.append(z)
            scaled = [loss * scale for loss in losses] if scale != 1.0 else losses
        autograd.backward(scaled)
        self.trainer.allreduce_grads()
        overflow = self.scaler is not None and self.scaler.has_overflow(self.params)
        if self.scaler is not None:
            self.scaler.update(overflow)
            self.skipped += overflow
            self.collapsed = self.collapsed + 1 if overflow and self.scaler.scale <= 1 else 0
            if self.collapsed >= COLLAPSED_STEPS:
                raise RunError(f"FP16 loss scale fell to {self.scaler.scale:g} and the last "
                               f"{self.collapsed} updates all overflowed: the run has diverged "
                               "(inf/NaN); resume from an earlier checkpoint with a lower lr")
        if not overflow:
            # rescale_grad = 1 / (batch * scale): the mean gradient, loss scale divided out
            self.trainer.update(data.shape[0] * scale)
        total = losses[0].sum().as_in_context(self.contexts[0])
        for loss in losses[1:]:
            total = total + loss.sum().as_in_context(self.contexts[0])
        return total, outputs


# ----------------------------------------------------------------------------- metrics

def topk_correct(logits, label, ks=(1, 5)):
    """Counts of samples whose label is among the top-k logits, for each k (numpy ints)."""
    k_max = min(max(ks), logits.shape[1])
    top = mx.nd.topk(logits.astype("float32"), k=k_max, axis=1).asnumpy()
    hit = top == label.asnumpy().reshape(-1, 1)
    return [int(hit[:, :min(k, k_max)].any(axis=1).sum()) for k in ks]


class EpochSums:
    """Running sums of one training epoch: loss and top-1 hits stay on the device (adding
    them costs no host synchronisation), samples are counted on the host. ``mixing``: the
    epoch trains under mixup, so top-1 hits mean nothing (§5.4) and are not counted.
    ``lr`` (last learning rate), ``seconds`` (training time) and ``skipped`` (updates
    skipped for FP16 overflow) are set by the loop."""

    def __init__(self, ctx, mixing):
        self.ctx, self.mixing = ctx, mixing
        self.loss = mx.nd.zeros((1,), ctx=ctx)
        self.correct = mx.nd.zeros((1,), ctx=ctx)
        self.samples = 0
        self.lr = self.seconds = None
        self.skipped = 0

    def add(self, loss, outputs, label):
        """loss: (1,) batch loss sum; outputs: per-device logits of the batch in order;
        label: (N,) class indices."""
        self.loss = self.loss + loss
        start = 0
        for z in outputs:
            if not self.mixing:
                y = label[start:start + z.shape[0]].as_in_context(z.context)
                hits = (mx.nd.argmax(z.astype("float32"), axis=1) == y).sum()
                self.correct = self.correct + hits.as_in_context(self.ctx)
            start += z.shape[0]
        self.samples += start

    def mean_loss(self):
        """This rank's mean loss so far (one host synchronisation)."""
        return self.loss.asscalar() / max(self.samples, 1)

    def reduce(self, dist):
        """(mean loss, top-1 accuracy or None under mixup, samples) over every rank (one
        host synchronisation)."""
        loss, correct = mx.nd.concat(self.loss, self.correct, dim=0).asnumpy()
        loss, samples, correct = dist.allreduce_sum([loss, self.samples, correct])
        return loss / samples, None if self.mixing else correct / samples, int(samples)


def evaluate(net, loader, epoch, contexts, dtype, dist):
    """Exact top-1/top-5 over the whole validation set (counts summed over ranks).

    A short last batch is padded back to the full batch size (only its real rows count), so
    that the network always sees one input shape and every device a full share."""
    counts = np.zeros(3)
    for data, label in loader.epoch(epoch):
        n = data.shape[0]
        if n < loader.batch_size:
            data = mx.nd.concat(data, mx.nd.zeros((loader.batch_size - n,) + data.shape[1:],
                                                  dtype=data.dtype, ctx=data.context), dim=0)
        xs = mx.gluon.utils.split_and_load(data.astype(dtype, copy=False), contexts,
                                           even_split=False)
        logits = mx.nd.concat(*[net(x).as_in_context(mx.cpu()) for x in xs], dim=0)[:n]
        c1, c5 = topk_correct(logits, label)
        counts += (c1, c5, n)
    c1, c5, n = dist.allreduce_sum(counts)
    return c1 / max(n, 1), c5 / max(n, 1), int(n)


# ----------------------------------------------------------------------------- logging

class RunLog:
    """Lines for people (stdout and train.log) and records for programs (log.jsonl); only
    the root rank writes."""

    def __init__(self, folder, enabled):
        self.folder, self.enabled = folder, enabled
        if enabled:
            handler = logging.FileHandler(folder.text_log_path)
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            log.addHandler(handler)

    def info(self, msg, *args):
        if self.enabled:
            log.info(msg, *args)

    def record(self, **fields):
        if self.enabled:
            self.folder.append_log(fields)


# ----------------------------------------------------------------------------- the run

@dataclass
class Session:
    """What one run is made of, built by :func:`set_up`."""
    cfg: object
    dist: object
    contexts: list
    folder: RunFolder
    log: RunLog
    train_loader: object
    val_loader: object
    net: object
    trainer: object
    step: TrainStep
    schedule: LRSchedule
    start_epoch: int = 0
    best_top1: float = -1.0
    best_epoch: int = None


@dataclass
class RunResult:
    epochs: int
    val_top1: float
    val_top5: float
    best_top1: float
    run_dir: str


def set_up(cfg, rec_train, rec_val, out, contexts, resume, force, dist, command,
           trust_pickled_states=False):
    """Check everything that can fail (devices, data files, classes, images, run folder,
    teacher), build the network and optimizer, and only then touch the run folder: replace
    (--force) or resume it, write config.yaml and command.json. Returns a :class:`Session`."""
    check_devices(cfg, contexts)
    train_loader, val_loader = checked_loaders(cfg, rec_train, rec_val, contexts, dist)
    folder = checked_run_folder(out, resume, force)
    changed = check_resume_changes(folder, cfg) if resume else {}
    teacher = load_teacher(cfg, contexts) if cfg.distill else None
    net, trainer, step, schedule, init = build_training(cfg, contexts, dist, teacher,
                                                        train_loader.batches_per_epoch,
                                                        fresh_start=not resume)
    if dist.is_root:
        start_run_folder(folder, cfg, command, resume, changed)
    dist.barrier()
    session = Session(cfg, dist, contexts, folder, RunLog(folder, dist.is_root), train_loader,
                      val_loader, net, trainer, step, schedule)
    if resume:
        resume_from_checkpoint(session, trust_pickled_states)
    session.log.info("%s: %s, %d images/epoch, global batch %d on %d rank(s) x %s, peak lr %.4g",
                     cfg.paper or "run", cfg.model,
                     train_loader.batches_per_epoch * cfg.batch_size, cfg.batch_size, dist.size,
                     contexts, cfg.peak_lr())
    for line in init.lines(cfg.init) if init is not None else ():
        session.log.info("%s", line)
    if cfg.distill:
        note = teacher_recipe_mismatch(cfg)
        if note:
            session.log.info("note: %s", note)
    return session


def checked_run_folder(out, resume, force):
    """The RunFolder ``out``, after checking that it holds a run to resume (``resume``) or
    none to overwrite (unless ``force``); RunError (one line) otherwise."""
    folder = RunFolder(out)
    if resume and not folder.holds_run():
        raise RunError(f"--resume: {out} holds no run to resume")
    if not resume and folder.holds_run() and not force:
        raise RunError(f"{out} already holds a run; pass --resume to continue it or --force "
                       "to replace it")
    return folder


def start_run_folder(folder, cfg, command, resume, changed):
    """Once every check has passed: set a replaced run aside (deleted after this run's first
    checkpoint), write config.yaml (new run, or a resume that ``changed`` settings) and
    command.json."""
    if not resume:
        folder.set_aside()
        folder.make()
    if not resume or changed:
        folder.write_config(cfg.to_dict())
    if command is not None:
        folder.record_command(dict(command, changed=changed) if changed else command, resume)


def teacher_recipe_mismatch(cfg):
    """A sentence if the teacher is a run folder trained from another recipe than the
    row's ``teacher_recipe`` (e.g. the non-mixup teacher for a distill-with-mixup row),
    else None. Bare .params files and runs without command.json are not judged."""
    return recipe_mismatch(cfg.teacher, cfg.teacher_recipe, "teacher")


def recipe_mismatch(run, recipe, role):
    """A sentence if ``run`` is a run folder trained from another recipe than ``recipe``
    (relative to recipes/), else None; ``role`` names it ("teacher", "backbone"). Bare
    .params files and runs without command.json are not judged."""
    if not recipe or not run or not os.path.isdir(run):
        return None
    try:
        trained = RunFolder(run).read_command().get("recipe")
    except RunFolderError:
        return None
    if not trained:
        return None
    expected = "/recipes/" + recipe.replace(os.sep, "/")
    if os.path.abspath(trained).replace(os.sep, "/").endswith(expected):
        return None
    return f"the {role} {run} was trained from {trained}; this recipe's {role} is recipes/{recipe}"


def checked_loaders(cfg, rec_train, rec_val, contexts, dist):
    """§2.1 data: (train, val) loaders of this rank's shard, its batch the global batch /
    ranks (in page-locked memory for a GPU), after every check of the files that is cheap
    enough to run first."""
    if cfg.batch_size % dist.size:
        raise RunError(f"batch_size {cfg.batch_size} does not split over {dist.size} ranks")
    rank_batch = cfg.batch_size // dist.size
    data = cfg.data.replace(num_workers=cfg.data.workers(dist.local_size))
    gpu = next((c.device_id for c in contexts if c.device_type == "gpu"), None)
    train_loader, val_loader = gt_data.make_loaders(
        data, rec_train, rec_val, rank_batch, num_parts=dist.size, part_index=dist.rank,
        seed=cfg.seed, pin_device=gpu)  # the loaders check both files (check_rec)
    # the recipe's classes: every one in the training set, no validation label outside them
    gt_data.check_labels(rec_train, cfg.classes, every_class=True)
    gt_data.check_labels(rec_val, cfg.classes)
    # an image MXNet cannot decode ends the process without a word: find them first where
    # it is cheap (the validation set is small; the training set is sampled)
    for rec, sample in ((rec_val, None), (rec_train, cfg.data.check_train_images)):
        gt_data.check_images(rec, sample, num_parts=dist.size, part_index=dist.rank)
    if train_loader.batches_per_epoch == 0:
        raise RunError(f"{rec_train}: {train_loader.num_samples} images per rank make no batch "
                       f"of {rank_batch}; lower --batch-size")
    return train_loader, val_loader


def build_training(cfg, contexts, dist, teacher, batches_per_epoch, fresh_start=True):
    """§2.1 model and §3 efficient training: (net, trainer, step, schedule, init report),
    the network's initial values the same on every rank. With ``cfg.init`` and a
    ``fresh_start`` (not a resume, whose checkpoint holds the weights) the network starts
    from those weights (:func:`gluon_tricks.weights.init_from`; the report says what
    loaded)."""
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
    schedule = LRSchedule.of_config(cfg, batches_per_epoch)
    optimizer = make_optimizer(schedule.lr(1), momentum=cfg.momentum, wd=cfg.wd,
                               multi_precision=cfg.dtype == "float16")
    trainer = dist.trainer(net.collect_params(), optimizer, len(contexts))
    step = TrainStep(cfg, net, trainer, contexts, teacher, make_scaler(cfg))
    return net, trainer, step, schedule, init


def check_resume_changes(folder, cfg):
    """The settings in which ``cfg`` departs from the run's config.yaml, {key: [old, new]};
    RunError (one line) if any may not change on resume."""
    saved = from_saved(folder.read_config(), folder.config_path)
    try:
        return resume_changes(saved, cfg)
    except ConfigError as e:
        raise RunError(f"--resume {folder.path}: {e}") from None


def resume_from_checkpoint(s, trust_pickled_states=False):
    """Restore weights, optimizer state, loss scale and best accuracy of the newest
    checkpoint that loads (newer unreadable ones are set aside, and said so); repair
    best.params after a kill in its write; drop the log records of epochs after the
    checkpoint (they will be redone)."""
    s.start_epoch, record, unreadable = load_newest_checkpoint(
        s.folder, s.net, s.trainer, s.contexts, s.log, trust_pickled_states)
    if record is not None:
        s.best_top1 = record.get("best_top1", -1.0)
        s.best_epoch = record.get("best_epoch")
        if s.step.scaler is not None and record.get("loss_scaler"):
            s.step.scaler.load_state_dict(record["loss_scaler"])
    if s.cfg.epochs < s.start_epoch:
        raise RunError(f"--resume {s.folder.path}: epochs={s.cfg.epochs} but {s.start_epoch} "
                       "are done already")
    s.dist.barrier()  # every rank has read the checkpoint before any file moves
    if s.dist.is_root:
        finish_resume(s.folder, s.start_epoch, record, unreadable, s.log)


def load_newest_checkpoint(folder, net, trainer, contexts, log, trust_pickled_states=False):
    """Load the network and optimizer state of the newest checkpoint of ``folder`` that
    loads, trying older ones after one that does not (said in ``log``). Returns (its epoch,
    its JSON record, the epochs that did not load); (0, None, ...) if none did. RunError
    (one line) for an old pickled optimizer state unless ``trust_pickled_states``."""
    unreadable = []
    for epoch in reversed(folder.checkpoint_epochs()):
        try:
            record, arrays = folder.load_checkpoint(epoch, net, contexts)
        except RunFolderError as e:
            log.info("checkpoint of epoch %d cannot be used (%s); trying the one before",
                     epoch, e)
            unreadable.append(epoch)
            continue
        if arrays is not None:
            try:
                restore_optimizer_state(trainer, net, arrays, record["optimizer"])
            except (KeyError, ValueError, TypeError) as e:
                log.info("checkpoint of epoch %d cannot be used (%s: optimizer state does not "
                         "fit: %s); trying the one before", epoch,
                         folder.checkpoint(epoch, "optimizer"), e)
                unreadable.append(epoch)
                continue
        elif trust_pickled_states:
            trainer.load_states(folder.checkpoint(epoch, "states"))
        else:
            raise RunError(f"{folder.checkpoint(epoch, 'states')}: optimizer state in "
                           "Python's pickle format (written by an older gluon-tricks); loading "
                           "it runs any code it holds: pass --trust-pickled-states only if you "
                           "trust whoever wrote this run folder")
        return epoch, record, unreadable
    return 0, None, unreadable


def finish_resume(folder, epoch, record, unreadable, log):
    """After :func:`load_newest_checkpoint` (root rank, once every rank has loaded): set the
    ``unreadable`` checkpoints aside, put back best.params if a kill left a newer one, drop
    the log records of epochs after ``epoch`` (they will be redone)."""
    for bad in unreadable:
        log.info("set aside the unreadable checkpoint of epoch %d in %s", bad,
                 folder.set_aside_checkpoint(bad))
    if record is not None and folder.repair_best(record):
        log.info("best.params was newer than the last checkpoint (a kill during its "
                 "write); put back that of epoch %d", record["best_epoch"])
    folder.truncate_log_after(epoch)
    log.info("resuming %s after epoch %d", folder.path, epoch)


def train_one_epoch(s, epoch):
    """One pass over this rank's shard (0-based ``epoch``); returns its :class:`EpochSums`.
    Host synchronisations: one per log interval."""
    cfg, loader = s.cfg, s.train_loader
    tic = time.time()
    # mixup's coefficients and MXNet's own generator, from (seed, epoch) as every stream
    epoch_seed = seeds.derived_seed(cfg.seed, epoch, 0, seeds.MIXUP)  # same on every rank
    rng = np.random.default_rng(epoch_seed)
    mx.random.seed(epoch_seed)
    mixing = cfg.mixup_alpha > 0 and epoch < cfg.epochs - cfg.mixup_off_epochs
    sums = EpochSums(s.contexts[0], mixing)
    s.step.skipped = 0
    batches = loader.epoch(epoch)
    if s.dist.is_root and sys.stderr.isatty():
        from tqdm import tqdm
        batches = tqdm(batches, total=loader.batches_per_epoch, leave=False,
                       desc=f"epoch {epoch + 1}/{cfg.epochs}")
    i = epoch * loader.batches_per_epoch  # updates before this epoch
    interval_tic = time.time()
    for b, (data, label) in enumerate(batches, start=1):
        lr = sums.lr = s.schedule.lr(i + b)
        s.trainer.set_learning_rate(lr)
        lam = sample_lambda(cfg.mixup_alpha, rng) if mixing else None
        loss, outputs = s.step(data, label, lam)
        sums.add(loss, outputs, label)
        if b % cfg.log_interval == 0:
            mean_loss = sums.mean_loss()
            speed = cfg.log_interval * data.shape[0] * s.dist.size / (time.time() - interval_tic)
            s.log.info("epoch %d batch %d/%d lr %.5f loss %.4f %.1f samples/s", epoch + 1, b,
                       loader.batches_per_epoch, lr, mean_loss, speed)
            s.log.record(type="interval", epoch=epoch + 1, batch=b, lr=lr,
                         train_loss=mean_loss, samples_per_sec=speed)
            interval_tic = time.time()
    sums.seconds = time.time() - tic
    sums.skipped = s.step.skipped  # the same on every rank: the verdict is on reduced grads
    if s.step.scaler is not None and sums.skipped > SKIPPED_WARNING * loader.batches_per_epoch:
        s.log.info("warning: %d of %d updates of epoch %d skipped for FP16 overflow (loss "
                   "scale now %g)", sums.skipped, loader.batches_per_epoch, epoch + 1,
                   s.step.scaler.scale)
    return sums


def end_epoch(s, epoch, sums, val, seconds):
    """Log the epoch (people and programs) and checkpoint it (root rank). ``val``: (top-1,
    top-5, images) of :func:`evaluate`; ``seconds``: the epoch's time with validation."""
    cfg, scaler = s.cfg, s.step.scaler
    train_loss, train_top1, samples = sums.reduce(s.dist)
    top1, top5, n_val = val
    is_best = top1 > s.best_top1
    if is_best:
        s.best_top1, s.best_epoch = top1, epoch + 1
    record = dict(type="epoch", epoch=epoch + 1, lr=sums.lr, train_loss=train_loss,
                  train_top1=train_top1, val_top1=top1, val_top5=top5, val_images=n_val,
                  samples_per_sec=samples / sums.seconds, time_s=seconds,
                  loss_scale=scaler.scale if scaler is not None else None,
                  skipped_steps=sums.skipped if scaler is not None else None,
                  best_top1=s.best_top1)
    s.log.info("epoch %d/%d lr %.5f train loss %.4f%s val top-1 %.4f top-5 %.4f "
               "(%d images) %.1f samples/s %.1fs%s", epoch + 1, cfg.epochs, sums.lr, train_loss,
               "" if train_top1 is None else f" top-1 {train_top1:.4f}", top1, top5, n_val,
               record["samples_per_sec"], seconds,
               "" if scaler is None else f" loss scale {scaler.scale:g}, {sums.skipped} skipped")
    s.log.record(**record)
    if s.dist.is_root:
        arrays, optimizer = optimizer_state(s.trainer, s.net)
        s.folder.save_checkpoint(epoch + 1, s.net, arrays, dict(
            record, best_epoch=s.best_epoch, optimizer=optimizer,
            global_batch=(epoch + 1) * s.train_loader.batches_per_epoch, seed=cfg.seed,
            loss_scaler=scaler.state_dict() if scaler is not None else None), is_best,
            keep=cfg.keep_checkpoints)
        s.folder.drop_set_aside()  # a run replaced by --force: this one has checkpointed
    s.dist.barrier()


def train(cfg, rec_train, rec_val, out, contexts=None, resume=False, force=False, dist=None,
          stop_after=None, command=None, trust_pickled_states=False):
    """Train ``cfg`` on ``rec_train``, validating on ``rec_val`` every epoch; checkpoints and
    logs go to the run folder ``out``. Returns a :class:`RunResult`.

    Every check that can fail runs before the run folder is touched. ``stop_after``: train
    at most this many epochs in this call (a job slot shorter than the run); ``resume=True``
    continues it later exactly as if it had not stopped. ``command``: what started the run
    (argv, data files, recipe), kept in the folder's command.json. ``trust_pickled_states``:
    resume from an old checkpoint whose optimizer state is a pickle (runs its code).
    """
    dist = dist or SingleProcess()
    s = set_up(cfg, rec_train, rec_val, out, contexts or [mx.cpu()], resume, force, dist,
               command, trust_pickled_states)
    end = cfg.epochs if stop_after is None else min(cfg.epochs, s.start_epoch + stop_after)
    val = (float("nan"),) * 2
    for epoch in range(s.start_epoch, end):
        tic = time.time()
        sums = train_one_epoch(s, epoch)
        # every rank must hold the network that is validated and saved
        dist.average_running_stats(s.net.collect_params())
        val = evaluate(s.net, s.val_loader, epoch, s.contexts, cfg.dtype, dist)
        end_epoch(s, epoch, sums, val, time.time() - tic)
    return RunResult(epochs=end, val_top1=val[0], val_top5=val[1], best_top1=s.best_top1,
                     run_dir=out)
