"""The classification trainer's configuration: :class:`TrainConfig`, one dataclass with a
typed data section, and its :data:`RECIPES` on the recipe engine
(:mod:`gluon_tricks.run.recipe`: ``base:`` chains, ``--set``, one-line errors).

A recipe holds keys of :class:`TrainConfig`, with the input pipeline's keys
(:class:`~gluon_tricks.data.DataConfig`) under ``data:``. The dataclass defaults are the
paper's baseline (§2.1): ResNet-50, NAG, batch 256, lr 0.1, 120 epochs, step decay at
30/60/90, no tricks.
"""
import dataclasses
import os
from dataclasses import dataclass, field
from typing import List, Optional

from .. import published
from ..data import DataConfig
from ..errors import RunError
from ..models import MODEL_NAMES, RESNETS, input_size as network_input_size
from ..models import smallest_input_size
from ..run.folder import RunFolder
from ..run.recipe import Config, ConfigError, RecipeBook, Schema, type_hints
from ..models import INITIALIZERS
from ..run.schedule import (FORMULAS, MODES as LR_MODES, LRSchedule, check_step_epochs,
                             scaled_lr)
from .loss_scale import scaler_of
from .losses import SMOOTHING_MODES


@dataclass
class TrainConfig(Config):
    # --- network (paper §2.1, §4) ---
    model: str = "resnet50_v1"
    classes: int = 1000
    zero_gamma: bool = False  # §3.1: last BN gamma of each residual block starts at 0
    # --- where the paper's text and the authors' script differ (docs/notes.md §3) ---
    # "paper" or "gluoncv": the default of each key below that a recipe leaves unset
    # (GLUONCV_CONVENTIONS); each stays overridable by its own key
    conventions: str = "paper"
    lr_formulas: str = "paper"  # warmup, cosine and step formulas: "paper" or "gluoncv"
    initializer: str = "xavier"  # "xavier" (§2.1) or "msra" (GluonCV's MSRAPrelu)
    zero_gamma_basic: bool = True  # zero gamma on ResNet-18/34 blocks (GluonCV's has none)
    # --- optimisation (§2.1, §3) ---
    batch_size: int = 256  # global: over all devices and ranks, per optimizer update
    # the batch each device takes per forward pass (BatchNorm's batch), as the authors' 8
    # GPUs split batch_size; None: batch_size over the devices (batch_plan)
    batch_per_device: Optional[int] = None
    # forward/backward passes summed per optimizer update; None: batch_size /
    # (batch_per_device x devices) when batch_per_device is set, else 1 (batch_plan)
    accumulate: Optional[int] = None
    base_lr_per_256: float = 0.1  # §3.1 linear scaling: lr = base_lr_per_256 * batch_size / 256
    momentum: float = 0.9  # NAG
    wd: float = 1e-4
    no_bias_decay: bool = False  # §3.1: weight decay on conv/dense weights only
    dtype: str = "float32"  # "float16": FP16 weights and activations, FP32 master copy (§3.2)
    loss_scale: str = "dynamic"  # FP16 only: "dynamic" or a number for a static scale
    # --- schedule (§2.1, §3.1, §5.1) ---
    epochs: int = 120
    warmup_epochs: int = 0  # §3.1: linear from lr/m to lr over the first m batches
    lr_mode: str = "step"  # "step" or "cosine" (§5.1)
    lr_step_epochs: List[int] = field(default_factory=lambda: [30, 60, 90])
    lr_step_factor: float = 0.1
    # --- refinements (§5) ---
    label_smoothing: float = 0.0  # epsilon
    label_smoothing_mode: str = "paper"  # "paper": 1-eps / eps/(K-1); "gluoncv": eps/K everywhere
    mixup_alpha: float = 0.0  # 0 = off; the paper uses 0.2 (and 200 epochs)
    # CutMix (Yun et al. 2019; not in the paper, off in every paper recipe): 0 = off
    cutmix_alpha: float = 0.0
    # with mixup and CutMix both on, the share of batches that use CutMix (the rest mixup)
    mix_switch_prob: Optional[float] = None
    mixup_off_epochs: int = 0  # train the last N epochs without mixing (mixup or CutMix)
    distill: bool = False  # §5.3 knowledge distillation from `teacher`
    teacher: Optional[str] = None  # run folder, checkpoint or GluonCV .params of the teacher
    teacher_model: str = "resnet152_v1d"
    temperature: float = 20.0  # distillation T
    # None: the paper's Eq. 6, hard + T^2 soft. A weight w in [0, 1]: GluonCV's
    # w * hard + (1 - w) * T^2 soft (its train_imagenet.py uses w = 0.5, half of Eq. 6)
    hard_weight: Optional[float] = None
    # the recipe the teacher is trained with, relative to recipes/ (the paper trains the
    # teacher with mixup when the student uses mixup, §5.5); a teacher run from another
    # recipe is named in the log
    teacher_recipe: Optional[str] = None
    # fine-tuning: start from these weights (run folder or .params, ours or GluonCV's): every
    # parameter whose name and shape match; the rest (a classifier for other classes) fresh
    init: Optional[str] = None
    # --- data (§2.1): input size, augmentation, normalisation, decoding threads ---
    data: DataConfig = field(default_factory=DataConfig)
    # --- bookkeeping ---
    seed: int = 0
    log_interval: int = 50  # batches between progress lines
    keep_checkpoints: int = 3  # the last k epochs' checkpoints, plus the best
    paper: Optional[str] = None  # the paper row this recipe reproduces, e.g. "table6/resnet50_v1d/mixup"
    # the authors' published GluonCV run of this row (gluon_tricks.published), if any
    published_run: Optional[str] = None
    description: str = ""

    def __post_init__(self):
        if isinstance(self.data, dict):
            self.data = DataConfig(**self.data)
        if self.data.input_size is None:  # the network's own: 224, 299 for Inception-V3
            self.data = self.data.replace(input_size=network_input_size(self.model))

    def peak_lr(self):
        """The learning rate after linear scaling (§3.1, :func:`scaled_lr`), reached at the
        end of warmup."""
        return scaled_lr(self.base_lr_per_256, self.batch_size)


def check_config(cfg):
    """Cross-field checks that no single key can make, and that the weights of an ``init``
    run (folder) are of ``cfg.model`` (:func:`check_init`)."""
    check_fields(cfg)
    check_init(cfg)


def check_fields(cfg):
    """Cross-field checks of the keys themselves."""
    if not cfg.warmup_epochs < cfg.epochs:
        raise ConfigError(f"need warmup_epochs < epochs, got {cfg.warmup_epochs} and "
                          f"{cfg.epochs}")
    if cfg.mixup_off_epochs > cfg.epochs:
        raise ConfigError(f"need mixup_off_epochs <= epochs, got {cfg.mixup_off_epochs} and "
                          f"{cfg.epochs}")
    if cfg.mixup_alpha > 0 and cfg.cutmix_alpha > 0 and cfg.mix_switch_prob is None:
        raise ConfigError(f"mixup_alpha {cfg.mixup_alpha} and cutmix_alpha {cfg.cutmix_alpha} "
                          "are both on: set mix_switch_prob (the share of batches that use "
                          "CutMix), or set one alpha to 0")
    check_step_epochs(cfg.lr_step_epochs)
    try:
        scaler_of(cfg.loss_scale, "float32")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if cfg.published_run is not None and cfg.published_run not in published.load():
        raise ConfigError(f"published_run {cfg.published_run!r}: no such published run; "
                          f"known: {', '.join(published.load())}")
    size = cfg.data.input_size
    if size is not None and size < smallest_input_size(cfg.model):
        raise ConfigError(f"data.input_size {size}: {cfg.model} takes crops of at least "
                          f"{smallest_input_size(cfg.model)} pixels")
    if cfg.zero_gamma and cfg.model not in RESNETS:
        raise ConfigError(f"zero_gamma applies to residual blocks; {cfg.model} has none "
                          "(zero_gamma: false)")


CHOICES = {
    "dtype": ("float32", "float16"),
    "lr_mode": tuple(m for m in LR_MODES if m != "poly"),  # poly is the FCN runs' (Table 9)
    "label_smoothing_mode": SMOOTHING_MODES,
    "conventions": ("paper", "gluoncv"),
    "lr_formulas": FORMULAS,
    "initializer": INITIALIZERS,
    "model": tuple(MODEL_NAMES),
    "teacher_model": tuple(MODEL_NAMES),
}
# a batch of 64 crops of 2048 px is 3 GB of float32 before the network: a larger crop is
# a typo, not a setting (the paper's largest is 299)
MAX_INPUT_SIZE = 2048
# (low, high, low inclusive, high inclusive); None = unbounded
RANGES = {
    "classes": (1, None, True, None), "batch_size": (1, None, True, None),
    "batch_per_device": (1, None, True, None), "accumulate": (1, None, True, None),
    "base_lr_per_256": (0, None, True, None), "momentum": (0, 1, True, False),
    "wd": (0, None, True, None), "epochs": (1, None, True, None),
    "warmup_epochs": (0, None, True, None), "lr_step_factor": (0, 1, False, True),
    "label_smoothing": (0, 1, True, False), "mixup_alpha": (0, None, True, None),
    "cutmix_alpha": (0, None, True, None), "mix_switch_prob": (0, 1, False, False),
    "mixup_off_epochs": (0, None, True, None), "temperature": (0, None, False, None),
    "hard_weight": (0, 1, True, True),
    "seed": (0, 2 ** 31 - 1, True, True), "log_interval": (1, None, True, None),
    "keep_checkpoints": (0, None, True, None),
    "data.input_size": (1, MAX_INPUT_SIZE, True, True), "data.val_resize": (1, None, True, None),
    "data.num_workers": (0, None, True, None), "data.prefetch_batches": (1, None, True, None),
    "data.check_train_images": (0, None, True, None),
    "data.interpolation": (0, 4, True, True), "data.std_rgb": (0, None, False, None),
}
# What may differ when a run resumes: a longer (or shorter) schedule, and how it is run and
# logged. Anything else (lr, seed, model, data augmentation, ...) would make the resumed run
# another experiment under the same name.
RESUMABLE = ("epochs", "log_interval", "keep_checkpoints", "data.num_workers",
             "data.prefetch_batches", "data.check_train_images")

# conventions: gluoncv = the authors' train_imagenet.py (GluonCV 0.10): its LRSequential
# schedule, MSRAPrelu initialisation, no zero gamma on basic blocks (BasicBlockV1b has no
# last_gamma), eps/K label smoothing, (1 - w) T^2 soft + w hard distillation, w = 0.5, and
# no loss scaling: the script's FP16 is multi_precision alone (trainer.step(batch_size) on
# the unscaled loss), so a static scale of 1 makes the same updates (an overflowing step,
# which would have put inf/NaN in their weights, is still skipped)
GLUONCV_CONVENTIONS = {"lr_formulas": "gluoncv", "initializer": "msra",
                       "zero_gamma_basic": False, "label_smoothing_mode": "gluoncv",
                       "hard_weight": 0.5, "loss_scale": "1"}


def conventions_of(values):
    """The defaults the ``conventions`` key gives to the keys a recipe leaves unset."""
    return GLUONCV_CONVENTIONS if values.get("conventions") == "gluoncv" else {}


def defaults_of(values):
    """The defaults that depend on other keys: those of ``conventions``, and the input size of
    the run (folder) ``init`` names, which the recipe or --set may still override (a
    ResNet-18-D trained at 32 px fine-tunes at 32 px, not at its network's 224)."""
    derived = dict(conventions_of(values))
    if "data.input_size" not in values:
        weights = init_run(values.get("init"))
        if weights is not None:
            derived["data.input_size"] = weights.data.input_size
    return derived


def check_init(cfg):
    """RunError (one line naming the run's model and input size and the flag that fits) when
    ``cfg.init`` names a run (folder) of another model than ``cfg.model``: the folder says
    for certain what its weights are, so this is said before any work."""
    weights = init_run(cfg.init)
    if weights is not None and weights.model != cfg.model:
        raise RunError(f"--init {cfg.init}: weights of a {weights.model} run at "
                       f"{weights.data.input_size} px, not of the {cfg.model} the recipe "
                       f"trains; fine-tune with a recipe of {weights.model} or "
                       f"--set model={weights.model}")


def init_run(init):
    """The configuration of the run whose weights ``init`` names: ``init`` itself, or the
    folder whose best.params or checkpoints/ it names, when that folder holds a config.yaml;
    else None (no ``init``, or a .params file of GluonCV's or from elsewhere)."""
    if not init:
        return None
    folder = init
    if not os.path.isdir(init):
        folder = os.path.dirname(os.path.abspath(init))
        if os.path.basename(folder) == RunFolder.CHECKPOINTS:
            folder = os.path.dirname(folder)
        elif os.path.basename(init) != RunFolder.BEST_PARAMS:
            return None
    run = RunFolder(folder)
    if not os.path.isfile(run.config_path):
        return None
    return from_saved(run.read_config(), run.config_path)


TRAIN = Schema(TrainConfig, type_hints(TrainConfig, DataConfig), CHOICES, RANGES, check_config,
               resumable=RESUMABLE, section=DataConfig, numbers_as_text=("loss_scale",),
               derived=defaults_of)
RECIPES = RecipeBook(TRAIN)
# recipes and --set: every rule, the weights of ``init`` included
resolve = RECIPES.resolve
# a run folder's config.yaml, the record of what the run trained: every rule of its own keys,
# but not what the folder its ``init`` names holds today (it may since have been replaced)
from_saved = RecipeBook(dataclasses.replace(TRAIN, check_config=check_fields,
                                            derived=conventions_of)).from_saved


def schedule_of(cfg, batches_per_epoch):
    """The :class:`LRSchedule` a resolved TrainConfig ``cfg`` trains with at
    ``batches_per_epoch`` global batches per epoch: the trainer's and
    ``tools/plot_lr.py --recipe``'s."""
    return LRSchedule(peak_lr=cfg.peak_lr(), batches_per_epoch=batches_per_epoch,
                      epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs, mode=cfg.lr_mode,
                      step_epochs=tuple(cfg.lr_step_epochs), step_factor=cfg.lr_step_factor,
                      formulas=cfg.lr_formulas)


@dataclass(frozen=True)
class BatchPlan:
    """How a run on ``devices`` devices in each of ``ranks`` processes makes its global batch
    of ``global_batch`` images per update: ``accumulate`` forward/backward passes
    (micro-batches) of ``rank_batch`` images per rank (the loader's batch), each device
    taking ``per_device`` of them (the first ``rank_batch % devices`` devices one more):
    BatchNorm's batch."""
    global_batch: int
    devices: int
    ranks: int
    accumulate: int
    rank_batch: int
    per_device: int

    @property
    def bn_batch(self):
        """BatchNorm's batch, the images each device takes per micro-batch, as text: "128",
        or "85-86" where the rank's micro-batch does not split evenly over its devices."""
        extra = self.rank_batch % self.devices
        return f"{self.per_device}" + (f"-{self.per_device + 1}" if extra else "")

    def line(self):
        """One line for people: the global batch, how it is made, the BN batch."""
        per = self.bn_batch
        return (f"global batch {self.global_batch} = {self.ranks * self.devices} device(s) "
                f"({self.ranks} rank(s) x {self.devices}) x {per} per device x accumulate "
                f"{self.accumulate}; BN batch {per}")

    def cell(self):
        """The plan for a table cell: "128/device x 2 device(s) x accumulate 4 (BN 128)",
        the devices as "8 device(s) [2 ranks x 4]" for several ranks."""
        devices = f"{self.ranks * self.devices} device(s)" + (
            f" [{self.ranks} ranks x {self.devices}]" if self.ranks > 1 else "")
        return (f"{self.bn_batch}/device x {devices} x accumulate {self.accumulate} "
                f"(BN {self.bn_batch})")


def batch_plan(cfg, devices, ranks=1):
    """The :class:`BatchPlan` of ``cfg`` on ``devices`` devices per rank and ``ranks`` ranks,
    D = devices x ranks in all. A recipe that names ``batch_per_device`` b accumulates
    batch_size / (b x D), which must be a whole number >= 1 (an ``accumulate`` given beside
    it must equal it); else ``accumulate`` k (default 1) and each rank's micro-batch
    batch_size / (ranks x k), split over its devices. ConfigError (one line) otherwise."""
    total = devices * ranks
    if cfg.batch_per_device is not None:
        k, rest = divmod(cfg.batch_size, cfg.batch_per_device * total)
        if rest or k < 1:
            fits = [d for d in range(1, cfg.batch_size // cfg.batch_per_device + 1)
                    if cfg.batch_size % (cfg.batch_per_device * d) == 0]
            if fits:
                where, advice = f"x {total} device(s)", (
                    f"run on {_either(fits)} devices, or --set batch_per_device=null to split "
                    "the global batch over these")
            else:  # smaller than one device's batch, or no multiple of it
                where, advice = "on any number of devices", (
                    f"--set batch_per_device=null to split the global batch over {total} "
                    f"device(s), or set a batch_per_device that divides {cfg.batch_size}")
            raise ConfigError(f"batch_size {cfg.batch_size} is no whole number of "
                              f"batch_per_device {cfg.batch_per_device} {where}; {advice}")
        if cfg.accumulate is not None and cfg.accumulate != k:
            raise ConfigError(
                f"accumulate {cfg.accumulate} and batch_per_device {cfg.batch_per_device} "
                f"disagree on {total} device(s) at batch_size {cfg.batch_size} (which gives "
                f"accumulate {k}); set one of them (--set batch_per_device=null keeps the "
                f"global batch with accumulate {cfg.accumulate})")
        return BatchPlan(cfg.batch_size, devices, ranks, k, cfg.batch_per_device * devices,
                         cfg.batch_per_device)
    k = cfg.accumulate or 1
    if cfg.batch_size % (ranks * k) or cfg.batch_size < total * k:
        raise ConfigError(f"batch_size {cfg.batch_size} does not split into {ranks} rank(s) x "
                          f"accumulate {k} with an image for each of {total} device(s)")
    rank_batch = cfg.batch_size // (ranks * k)
    return BatchPlan(cfg.batch_size, devices, ranks, k, rank_batch, rank_batch // devices)


def _either(numbers):
    """'1, 2 or 4'."""
    shown = [str(n) for n in numbers]
    return shown[0] if len(shown) == 1 else f"{', '.join(shown[:-1])} or {shown[-1]}"
