"""The classification trainer's configuration: :class:`TrainConfig`, one dataclass with a
typed data section, and its :data:`RECIPES` on the recipe engine
(:mod:`gluon_tricks.run.recipe`: ``base:`` chains, ``--set``, one-line errors).

A recipe holds keys of :class:`TrainConfig`, with the input pipeline's keys
(:class:`~gluon_tricks.data.DataConfig`) under ``data:``. The dataclass defaults are the
paper's baseline (§2.1): ResNet-50, NAG, batch 256, lr 0.1, 120 epochs, step decay at
30/60/90, no tricks.
"""
from dataclasses import dataclass, field
from typing import Optional

from .. import published
from ..data import DataConfig
from ..models import MODEL_NAMES, RESNETS, input_size as network_input_size
from ..run.recipe import Config, ConfigError, RecipeBook, Schema, type_hints
from ..models import INITIALIZERS
from ..run.schedule import FORMULAS, MODES as LR_MODES, LRSchedule
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
    batch_size: int = 256  # global: over all devices and ranks
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
    lr_step_epochs: list = field(default_factory=lambda: [30, 60, 90])
    lr_step_factor: float = 0.1
    # --- refinements (§5) ---
    label_smoothing: float = 0.0  # epsilon
    label_smoothing_mode: str = "paper"  # "paper": 1-eps / eps/(K-1); "gluoncv": eps/K everywhere
    mixup_alpha: float = 0.0  # 0 = off; the paper uses 0.2 (and 200 epochs)
    mixup_off_epochs: int = 0  # train the last N epochs without mixing
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
        """The learning rate after linear scaling (§3.1), reached at the end of warmup."""
        return self.base_lr_per_256 * self.batch_size / 256


def validate(cfg):
    """Cross-field checks that no single key can make."""
    if not cfg.warmup_epochs < cfg.epochs:
        raise ConfigError(f"need warmup_epochs < epochs, got {cfg.warmup_epochs} and "
                          f"{cfg.epochs}")
    if cfg.mixup_off_epochs > cfg.epochs:
        raise ConfigError(f"need mixup_off_epochs <= epochs, got {cfg.mixup_off_epochs} and "
                          f"{cfg.epochs}")
    if any(b <= a for a, b in zip(cfg.lr_step_epochs, cfg.lr_step_epochs[1:])) or \
            any(e <= 0 for e in cfg.lr_step_epochs):
        raise ConfigError(f"lr_step_epochs must be positive and increasing, got "
                          f"{list(cfg.lr_step_epochs)}")
    try:
        scaler_of(cfg.loss_scale, "float32")
    except ValueError as e:
        raise ConfigError(str(e)) from None
    if cfg.published_run is not None and cfg.published_run not in published.load():
        raise ConfigError(f"published_run {cfg.published_run!r}: no such published run; "
                          f"known: {', '.join(published.load())}")
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
# (low, high, low inclusive, high inclusive); None = unbounded
RANGES = {
    "classes": (1, None, True, None), "batch_size": (1, None, True, None),
    "base_lr_per_256": (0, None, True, None), "momentum": (0, 1, True, False),
    "wd": (0, None, True, None), "epochs": (1, None, True, None),
    "warmup_epochs": (0, None, True, None), "lr_step_factor": (0, 1, False, True),
    "label_smoothing": (0, 1, True, False), "mixup_alpha": (0, None, True, None),
    "mixup_off_epochs": (0, None, True, None), "temperature": (0, None, False, None),
    "hard_weight": (0, 1, True, True),
    "seed": (0, 2 ** 31 - 1, True, True), "log_interval": (1, None, True, None),
    "keep_checkpoints": (0, None, True, None),
    "data.input_size": (1, None, True, None), "data.val_resize": (1, None, True, None),
    "data.num_workers": (0, None, True, None), "data.prefetch_batches": (1, None, True, None),
    "data.check_train_images": (0, None, True, None),
    "data.interpolation": (0, 4, True, True),
}
# What may differ when a run resumes: a longer (or shorter) schedule, and how it is run and
# logged. Anything else (lr, seed, model, data augmentation, ...) would make the resumed run
# another experiment under the same name.
RESUMABLE = ("epochs", "log_interval", "keep_checkpoints", "data.num_workers",
             "data.prefetch_batches", "data.check_train_images")

# conventions: gluoncv = the authors' train_imagenet.py (GluonCV 0.10): its LRSequential
# schedule, MSRAPrelu initialisation, no zero gamma on basic blocks (BasicBlockV1b has no
# last_gamma), eps/K label smoothing and (1 - w) T^2 soft + w hard distillation, w = 0.5
GLUONCV_CONVENTIONS = {"lr_formulas": "gluoncv", "initializer": "msra",
                       "zero_gamma_basic": False, "label_smoothing_mode": "gluoncv",
                       "hard_weight": 0.5}


def conventions_of(values):
    """The defaults the ``conventions`` key gives to the keys a recipe leaves unset."""
    return GLUONCV_CONVENTIONS if values.get("conventions") == "gluoncv" else {}


TRAIN = Schema(TrainConfig, type_hints(TrainConfig, DataConfig), CHOICES, RANGES, validate,
               resumable=RESUMABLE, section=DataConfig, numbers_as_text=("loss_scale",),
               derived=conventions_of)
RECIPES = RecipeBook(TRAIN)
resolve = RECIPES.resolve
from_saved = RECIPES.from_saved


def schedule_of(cfg, batches_per_epoch):
    """The :class:`LRSchedule` a resolved TrainConfig ``cfg`` trains with at
    ``batches_per_epoch`` global batches per epoch: the trainer's and
    ``tools/plot_lr.py --recipe``'s."""
    return LRSchedule(peak_lr=cfg.peak_lr(), batches_per_epoch=batches_per_epoch,
                      epochs=cfg.epochs, warmup_epochs=cfg.warmup_epochs, mode=cfg.lr_mode,
                      step_epochs=tuple(cfg.lr_step_epochs), step_factor=cfg.lr_step_factor,
                      formulas=cfg.lr_formulas)
