"""The training loop, read top to bottom as the paper: §2.1 baseline, §3 efficient
training, §5 refinements. Every trick is a small function of its own module; this file
only composes them.
"""
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass

import mxnet as mx
import numpy as np
from mxnet import autograd

from .. import data as gt_data
from ..errors import RunError
from ..models import get_model, initializer, input_size
from . import checkpoint as ckpt
from .config import save as save_config
from .distributed import SingleProcess, materialize_parameters
from .loss_scale import DynamicLossScaler, StaticLossScaler
from .losses import distillation_loss, smooth_labels, soft_cross_entropy
from .mixup import mixup, sample_lambda
from .optim import make_optimizer, set_no_bias_decay
from .schedule import LRSchedule

log = logging.getLogger("gluon_tricks")


# ----------------------------------------------------------------------------- set-up

def check_devices(cfg, contexts):
    """FP16 needs a GPU: MXNet has no FP16 GEMM on CPU."""
    if cfg.dtype == "float16" and all(c.device_type == "cpu" for c in contexts):
        raise RunError("dtype float16 needs a GPU (MXNet: 'FP16 gemm on cpu not implemented'); "
                       "pass --gpus, or --set dtype=float32 to train on CPU")


def check_classes(cfg, rec_train, rec_val):
    """The recipe's `classes` must match the labels the data holds: every class in the
    training set, and no validation label outside them."""
    labels = gt_data.label_set(rec_train)
    if len(labels) != cfg.classes or labels[-1] >= cfg.classes:
        raise RunError(f"{rec_train}: holds {len(labels)} classes (labels {labels[0]}.."
                       f"{labels[-1]}) but the recipe says classes={cfg.classes}; "
                       f"--set classes={len(labels)}")
    val = gt_data.label_set(rec_val)
    if val[0] < 0 or val[-1] >= cfg.classes:
        raise RunError(f"{rec_val}: labels {val[0]}..{val[-1]} fall outside the "
                       f"{cfg.classes} classes of the recipe")


def make_data_config(cfg):
    """The data pipeline's settings: the recipe's `data:` fields over the paper's defaults."""
    fields = dict(cfg.data)
    fields.setdefault("input_size", cfg.input_size or input_size(cfg.model))
    try:
        return gt_data.DataConfig(**fields)
    except TypeError as e:  # an unknown field name
        raise RunError(f"recipe 'data:' section: {e}") from None


def resolve_teacher_path(path):
    """A teacher is a .params file, or a run folder whose best.params is used."""
    if path is not None and os.path.isdir(path):
        path = os.path.join(path, "best.params")
    if path is None or not os.path.isfile(path):
        raise RunError(f"distillation teacher {path!r} not found: --set teacher=RUN_DIR or "
                       "a .params file (ours or GluonCV's)")
    return path


def prepare_run_dir(out, resume, force, is_root):
    """A run folder that holds a run is never overwritten without --resume or --force."""
    holds_run = os.path.isdir(out) and any(
        os.path.exists(os.path.join(out, f)) for f in ("config.yaml", "log.jsonl", "checkpoints"))
    if resume:
        if not holds_run:
            raise RunError(f"--resume: {out} holds no run to resume")
        return
    if holds_run and not force:
        raise RunError(f"{out} already holds a run; pass --resume to continue it or --force "
                       "to replace it")
    if is_root:
        if holds_run:
            for name in ("checkpoints", "log.jsonl", "train.log", "config.yaml", "best.params",
                         "best.json"):
                path = os.path.join(out, name)
                if os.path.isdir(path):
                    shutil.rmtree(path)
                elif os.path.exists(path):
                    os.remove(path)
        os.makedirs(out, exist_ok=True)


def build_net(cfg, contexts, classes=None, model=None):
    """The network of the recipe (§2.1 init, §3.1 zero gamma), cast for FP16 (§3.2)."""
    net = get_model(model or cfg.model, classes=classes or cfg.classes,
                    zero_gamma=cfg.zero_gamma if model is None else False)
    net.initialize(initializer(), ctx=contexts)
    if cfg.dtype == "float16":
        net.cast("float16")
    return net


def load_teacher(cfg, contexts):
    """The distillation teacher (§5.3): inference mode, no gradient."""
    path = resolve_teacher_path(cfg.teacher)
    teacher = get_model(cfg.teacher_model, classes=cfg.classes)
    try:
        teacher.load_parameters(path, ctx=contexts)
    except Exception as e:  # MXNet reports shape/name mismatches as AssertionError/MXNetError
        raise RunError(f"{path}: cannot load it as {cfg.teacher_model} with {cfg.classes} "
                       f"classes ({' '.join(str(e).split())[:160]})") from None
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

    def __call__(self, data, label, lam=None):
        """data: (N, 3, H, W) float32 NDArray on CPU; label: (N,) class indices.
        lam: mixup coefficient, or None for no mixing. Returns (loss sum NDArray on the first
        device, list of per-device logits, whether the update was applied)."""
        cfg = self.cfg
        targets = smooth_labels(label, cfg.classes, cfg.label_smoothing, cfg.label_smoothing_mode)
        if lam is not None:
            data, targets = mixup(data, targets, lam)
        scale = self.scaler.scale if self.scaler is not None else 1.0
        xs = mx.gluon.utils.split_and_load(data.astype(cfg.dtype, copy=False), self.contexts,
                                           even_split=False)
        ys = mx.gluon.utils.split_and_load(targets, self.contexts, even_split=False)
        soft = [self.teacher(x) for x in xs] if self.teacher is not None else None
        losses, outputs = [], []
        with autograd.record():
            for i, (x, y) in enumerate(zip(xs, ys)):
                z = self.net(x)
                if soft is None:
                    loss = soft_cross_entropy(z, y)
                else:
                    loss = distillation_loss(z, soft[i], y, cfg.temperature)
                losses.append(loss)
                outputs.append(z)
            scaled = [loss * scale for loss in losses] if scale != 1.0 else losses
        autograd.backward(scaled)
        self.trainer.allreduce_grads()
        overflow = self.scaler is not None and self.scaler.has_overflow(self.params)
        if self.scaler is not None:
            self.scaler.update(overflow)
        if not overflow:
            # rescale_grad = 1 / (batch * scale): the mean gradient, loss scale divided out
            self.trainer.update(data.shape[0] * scale)
        total = losses[0].sum().as_in_context(self.contexts[0])
        for loss in losses[1:]:
            total = total + loss.sum().as_in_context(self.contexts[0])
        return total, outputs, not overflow


# ----------------------------------------------------------------------------- metrics

def topk_correct(logits, label, ks=(1, 5)):
    """Counts of samples whose label is among the top-k logits, for each k (numpy ints)."""
    k_max = min(max(ks), logits.shape[1])
    top = mx.nd.topk(logits.astype("float32"), k=k_max, axis=1).asnumpy()
    hit = top == label.asnumpy().reshape(-1, 1)
    return [int(hit[:, :min(k, k_max)].any(axis=1).sum()) for k in ks]


def top1_correct(outputs, label, ctx):
    """Number of correct top-1 predictions over the per-device outputs, as a (1,) NDArray."""
    total, start = mx.nd.zeros((1,), ctx=ctx), 0
    for z in outputs:
        y = label[start:start + z.shape[0]].as_in_context(z.context)
        total = total + (mx.nd.argmax(z, axis=1).astype("float32") == y).sum().as_in_context(ctx)
        start += z.shape[0]
    return total


def evaluate(net, loader, epoch, contexts, dtype, dist):
    """Exact top-1/top-5 over the whole validation set (counts summed over ranks).

    A short last batch is padded back to the full batch size (only its real rows count), so
    that the network always sees one input shape and every device a full share."""
    counts = np.zeros(3)
    for data, label in loader.epoch(epoch):
        n = data.shape[0]
        if n < loader.batch_size:
            data = mx.nd.concat(data, mx.nd.zeros((loader.batch_size - n,) + data.shape[1:],
                                                  dtype=data.dtype), dim=0)
        xs = mx.gluon.utils.split_and_load(data.astype(dtype, copy=False), contexts,
                                           even_split=False)
        logits = mx.nd.concat(*[net(x).as_in_context(mx.cpu()) for x in xs], dim=0)[:n]
        c1, c5 = topk_correct(logits, label)
        counts += (c1, c5, n)
    c1, c5, n = dist.allreduce_sum(counts)
    return c1 / max(n, 1), c5 / max(n, 1), int(n)


# ----------------------------------------------------------------------------- logging

class RunLog:
    """Lines for people (stdout and train.log) and records for programs (log.jsonl)."""

    def __init__(self, out, enabled):
        self.enabled = enabled
        self.jsonl = os.path.join(out, "log.jsonl")
        if enabled:
            handler = logging.FileHandler(os.path.join(out, "train.log"))
            handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
            log.addHandler(handler)

    def info(self, msg, *args):
        if self.enabled:
            log.info(msg, *args)

    def record(self, **fields):
        if self.enabled:
            with open(self.jsonl, "a") as f:
                f.write(json.dumps(fields) + "\n")

    def truncate_after(self, epoch):
        """On resume: drop records of epochs after the checkpoint (they will be redone)."""
        if not (self.enabled and os.path.exists(self.jsonl)):
            return
        with open(self.jsonl) as f:
            kept = [line for line in f if line.strip() and json.loads(line).get("epoch", 0) <= epoch]
        ckpt._replace_via_tmp(self.jsonl, lambda tmp: open(tmp, "w").writelines(kept))


# ----------------------------------------------------------------------------- the run

@dataclass
class RunResult:
    epochs: int
    val_top1: float
    val_top5: float
    best_top1: float
    run_dir: str


def epoch_seed(seed, epoch):
    """Every source of randomness of an epoch derives from (seed, epoch), so a resumed run
    sees exactly the batches, augmentations and mixup coefficients it would have seen."""
    return seed * 100003 + epoch


def train(cfg, rec_train, rec_val, out, contexts=None, resume=False, force=False, dist=None,
          on_start=None, stop_after=None):
    """Train ``cfg`` on ``rec_train``, validating on ``rec_val`` every epoch; checkpoints and
    logs go to the folder ``out``. Returns a :class:`RunResult`.

    Every check that can fail (recipe, data files, classes, devices, teacher, run folder) runs
    before anything is written. ``on_start()`` is called once the run folder is ready.
    ``stop_after``: train at most this many epochs in this call (a job slot shorter than the
    run); ``resume=True`` continues it later exactly as if it had not stopped.
    """
    dist = dist or SingleProcess()
    contexts = contexts or [mx.cpu()]
    check_devices(cfg, contexts)
    if cfg.batch_size % dist.size:
        raise RunError(f"batch_size {cfg.batch_size} does not split over {dist.size} ranks")
    # §2.1 data: each rank reads its own shard; its batch is the global batch / ranks
    rank_batch = cfg.batch_size // dist.size
    train_loader, val_loader = gt_data.make_loaders(
        make_data_config(cfg), rec_train, rec_val, rank_batch, num_parts=dist.size,
        part_index=dist.rank, seed=cfg.seed)  # the loaders check both files (check_rec)
    check_classes(cfg, rec_train, rec_val)
    if train_loader.batches_per_epoch == 0:
        raise RunError(f"{rec_train}: {train_loader.num_samples} images per rank make no batch "
                       f"of {rank_batch}; lower --batch-size")
    teacher = load_teacher(cfg, contexts) if cfg.distill else None

    prepare_run_dir(out, resume, force, dist.is_root)
    dist.barrier()
    runlog = RunLog(out, dist.is_root)
    if dist.is_root and not resume:
        save_config(cfg, os.path.join(out, "config.yaml"))
    if on_start is not None:
        on_start()

    # §2.1 model and §3 efficient training
    mx.random.seed(cfg.seed)
    net = build_net(cfg, contexts)
    crop_px = train_loader.cfg.input_size
    materialize_parameters(net, (1, 3, crop_px, crop_px), contexts, cfg.dtype)
    dist.broadcast_parameters(net.collect_params())
    # Plain hybridize: static_alloc was taken out while chasing irreproducible CPU runs,
    # whose cause proved to be the threaded engine (see cli.main); whether static_alloc
    # speeds up GPU training here has not been measured.
    net.hybridize()
    if cfg.no_bias_decay:
        set_no_bias_decay(net)
    schedule = LRSchedule.of_config(cfg, train_loader.batches_per_epoch)
    optimizer = make_optimizer(schedule.lr(1), momentum=cfg.momentum, wd=cfg.wd,
                               multi_precision=cfg.dtype == "float16")
    trainer = dist.trainer(net.collect_params(), optimizer, len(contexts))
    scaler = make_scaler(cfg)
    step = TrainStep(cfg, net, trainer, contexts, teacher, scaler)

    checkpoints = ckpt.Checkpointer(out, keep=cfg.keep_checkpoints)
    start_epoch, best_top1 = 0, -1.0
    if resume:
        start_epoch = checkpoints.latest() or 0
        if start_epoch:
            record = checkpoints.load(start_epoch, net, trainer, contexts)
            best_top1 = record.get("best_top1", -1.0)
            if scaler is not None and record.get("loss_scaler"):
                scaler.load_state_dict(record["loss_scaler"])
        runlog.truncate_after(start_epoch)
        runlog.info("resuming %s after epoch %d", out, start_epoch)
    runlog.info("%s: %s, %d images/epoch, global batch %d on %d rank(s) x %s, peak lr %.4g",
                cfg.paper or "run", cfg.model, train_loader.batches_per_epoch * cfg.batch_size,
                cfg.batch_size, dist.size, contexts, cfg.peak_lr())

    top1 = top5 = float("nan")
    end_epoch = cfg.epochs if stop_after is None else min(cfg.epochs, start_epoch + stop_after)
    for epoch in range(start_epoch, end_epoch):
        tic = time.time()
        rng = np.random.default_rng(epoch_seed(cfg.seed, epoch))
        mx.random.seed(epoch_seed(cfg.seed, epoch))
        mixing = cfg.mixup_alpha > 0 and epoch < cfg.epochs - cfg.mixup_off_epochs
        # sums stay on the device: one host sync per log interval, not per batch
        loss_sum = correct = mx.nd.zeros((1,), ctx=contexts[0])
        seen, interval_tic = 0, time.time()
        batches = train_loader.epoch(epoch)
        if dist.is_root and sys.stderr.isatty():
            from tqdm import tqdm
            batches = tqdm(batches, total=train_loader.batches_per_epoch, leave=False,
                           desc=f"epoch {epoch + 1}/{cfg.epochs}")
        i = epoch * train_loader.batches_per_epoch
        for b, (data, label) in enumerate(batches, start=1):
            i += 1
            lr = schedule.lr(i)
            trainer.set_learning_rate(lr)
            lam = sample_lambda(cfg.mixup_alpha, rng) if mixing else None
            loss, outputs, _ = step(data, label, lam)
            loss_sum = loss_sum + loss
            seen += data.shape[0]
            if not mixing:  # under mixup a training accuracy means nothing (§5.4)
                correct = correct + top1_correct(outputs, label, contexts[0])
            if b % cfg.log_interval == 0:
                speed = cfg.log_interval * data.shape[0] * dist.size / (time.time() - interval_tic)
                mean_loss = loss_sum.asscalar() / seen
                runlog.info("epoch %d batch %d/%d lr %.5f loss %.4f %.1f samples/s", epoch + 1,
                            b, train_loader.batches_per_epoch, lr, mean_loss, speed)
                runlog.record(type="interval", epoch=epoch + 1, batch=b, lr=lr,
                              train_loss=mean_loss, samples_per_sec=speed)
                interval_tic = time.time()
        totals = dist.allreduce_sum([loss_sum.asscalar(), seen, correct.asscalar()])
        train_time = time.time() - tic
        train_loss = totals[0] / totals[1]
        train_top1 = None if mixing else totals[2] / totals[1]
        samples_per_sec = totals[1] / train_time

        dist.average_running_stats(net.collect_params())
        top1, top5, n_val = evaluate(net, val_loader, epoch, contexts, cfg.dtype, dist)
        is_best = top1 > best_top1
        best_top1 = max(best_top1, top1)
        elapsed = time.time() - tic
        record = dict(type="epoch", epoch=epoch + 1, lr=lr, train_loss=train_loss,
                      train_top1=train_top1, val_top1=top1, val_top5=top5, val_images=n_val,
                      samples_per_sec=samples_per_sec, time_s=elapsed,
                      loss_scale=scaler.scale if scaler is not None else None,
                      best_top1=best_top1)
        runlog.info("epoch %d/%d lr %.5f train loss %.4f%s val top-1 %.4f top-5 %.4f "
                    "(%d images) %.1f samples/s %.1fs", epoch + 1, cfg.epochs, lr, train_loss,
                    "" if train_top1 is None else f" top-1 {train_top1:.4f}", top1, top5, n_val,
                    samples_per_sec, elapsed)
        runlog.record(**record)
        if dist.is_root:
            checkpoints.save(epoch + 1, net, trainer, dict(
                record, global_batch=i, seed=cfg.seed,
                loss_scaler=scaler.state_dict() if scaler is not None else None), is_best)
        dist.barrier()
    return RunResult(epochs=end_epoch, val_top1=top1, val_top5=top5, best_top1=best_top1,
                     run_dir=out)
