"""Configuration of a transfer run (paper §6, Tables 8 and 9): one dataclass per task, filled
from a recipe (``task:`` picks the dataclass) and ``--set`` overrides, on the recipe engine
(:mod:`gluon_tricks.run.recipe`: ``base:`` chains, typed keys, one-line errors).

The defaults are the authors' published GluonCV runs:

- Detection (:class:`DetectionConfig`): ``faster_rcnn_resnet50_v1b_voc`` (GluonCV's
  ``train_faster_rcnn.py --gpus 0,1,2,3 --dataset voc --network resnet50_v1b``, its log
  dmlc/web-data ``gluoncv/logs/detection/faster_rcnn_resnet50_v1b_voc_train.log``): SGD,
  momentum 0.9, wd 5e-4, lr 0.001 for 4 images per update (one per GPU), 20 epochs, lr x0.1
  at epoch 14 (its "14,20": the decay at 20 never comes), no warmup, short side 600, long
  side at most 1000. GluonCV reports 78.3 mAP on VOC 2007 test for it.
- Segmentation (:class:`SegmentationConfig`): ``fcn_resnet50_ade`` (dmlc/web-data
  ``gluoncv/logs/segmentation/fcn_resnet50_ade.sh``: ``train.py --dataset ade20k --model fcn
  --aux --lr 0.01 --syncbn --ngpus 4 --epochs 120``, with the script's defaults batch 16,
  base size 520, crop 480, aux weight 0.5, wd 1e-4, momentum 0.9, poly decay of power 0.9):
  GluonCV reports pixAcc 79.0 / mIoU 39.5 for it.
"""
import typing
from dataclasses import dataclass, field
from typing import List, Optional

from ..run.recipe import Config, ConfigError, RecipeBook, Schema
from ..run.schedule import MODES as LR_MODES, check_step_epochs
from .nets import BACKBONES

TASKS = ("detection", "segmentation")
# dataset name -> what it is read as (gluon_tricks.transfer.detection / .segmentation)
DETECTION_DATASETS = ("voc", "digits")
SEGMENTATION_DATASETS = ("ade20k", "digits")


@dataclass
class TransferConfig(Config):
    """What both tasks share."""
    task: str = "detection"
    dataset: str = "voc"
    # the backbone: our classification network's name and weights (run folder or .params,
    # ours or GluonCV's; usually given as --backbone); pretrained: false trains from a
    # random backbone (the control of the miniature tests)
    backbone_model: str = "resnet50_v1d"
    backbone: Optional[str] = None
    pretrained: bool = True
    # the classification recipe that trains this row's backbone, relative to recipes/; a
    # backbone run folder trained from another recipe is named in the log
    backbone_recipe: Optional[str] = None
    # optimisation: SGD with momentum, lr per update of batch_size images (global)
    batch_size: int = 4
    lr: float = 0.001
    momentum: float = 0.9
    wd: float = 5e-4
    epochs: int = 20
    lr_mode: str = "step"  # "step" (detection) or "poly" (segmentation)
    lr_step_epochs: List[int] = field(default_factory=lambda: [14])
    lr_step_factor: float = 0.1
    lr_power: float = 0.9  # poly
    num_workers: int = 4  # data loading processes; 0 = in the training process
    seed: int = 0
    log_interval: int = 50
    keep_checkpoints: int = 3
    paper: Optional[str] = None  # e.g. "table8/resnet50/distill_mixup"
    description: str = ""


@dataclass
class DetectionConfig(TransferConfig):
    """Faster-RCNN (Table 8): GluonCV's faster_rcnn_resnet50_v1b_voc settings."""
    short: int = 600  # image short side after resizing, pixels
    max_size: int = 1000  # long side at most, pixels
    anchor_scales: list = field(default_factory=lambda: [2, 4, 8, 16, 32])  # x 16 pixels
    anchor_ratios: list = field(default_factory=lambda: [0.5, 1, 2])
    roi_size: int = 14  # RoIAlign output, cells
    num_sample: int = 128  # RoIs sampled per image for the R-CNN head
    rpn_train_pre_nms: int = 12000
    rpn_train_post_nms: int = 2000
    rpn_test_pre_nms: int = 6000
    rpn_test_post_nms: int = 300
    rpn_min_size: int = 16  # pixels

    def net_settings(self):
        """FasterRCNN keyword arguments that differ from the VOC settings' defaults."""
        return dict(short=self.short, max_size=self.max_size,
                    scales=tuple(self.anchor_scales), ratios=tuple(self.anchor_ratios),
                    roi_size=(self.roi_size, self.roi_size), num_sample=self.num_sample,
                    rpn_train_pre_nms=self.rpn_train_pre_nms,
                    rpn_train_post_nms=self.rpn_train_post_nms,
                    rpn_test_pre_nms=self.rpn_test_pre_nms,
                    rpn_test_post_nms=self.rpn_test_post_nms, rpn_min_size=self.rpn_min_size)


@dataclass
class SegmentationConfig(TransferConfig):
    """FCN (Table 9): GluonCV's fcn_resnet50_ade settings."""
    dataset: str = "ade20k"
    batch_size: int = 16
    lr: float = 0.01
    wd: float = 1e-4
    epochs: int = 120
    lr_mode: str = "poly"
    base_size: int = 520  # GluonCV's random scale: long side in [0.5, 2] x base_size
    crop_size: int = 480  # training and validation crop, pixels
    aux: bool = True  # auxiliary FCN head on stage 3
    aux_weight: float = 0.5
    syncbn: bool = True  # BatchNorm statistics over all devices (GluonCV's --syncbn)


def _ranges(cls):
    positive = (1, None, True, None)
    ranges = {k: positive for k, t in typing.get_type_hints(cls).items() if t is int}
    ranges.update(num_workers=(0, None, True, None), keep_checkpoints=(0, None, True, None),
                  seed=(0, 2 ** 31 - 1, True, True), lr=(0, None, True, None),
                  momentum=(0, 1, True, False), wd=(0, None, True, None),
                  lr_step_factor=(0, 1, False, True), lr_power=(0, None, False, None),
                  aux_weight=(0, None, True, None))
    return ranges


def check_config(cfg):
    """Cross-field checks that no single key can make."""
    datasets = DETECTION_DATASETS if cfg.task == "detection" else SEGMENTATION_DATASETS
    if cfg.dataset not in datasets:
        raise ConfigError(f"dataset {cfg.dataset!r}: a {cfg.task} run reads one of "
                          f"{', '.join(datasets)}")
    if cfg.pretrained is False and cfg.backbone:
        raise ConfigError("pretrained: false trains from a random backbone; drop --backbone")
    check_step_epochs(cfg.lr_step_epochs)


# what may change when a run resumes (as the classification trainer's)
RESUMABLE = ("epochs", "log_interval", "keep_checkpoints", "num_workers", "backbone")


def _schema(cls):
    choices = dict(task=TASKS, backbone_model=BACKBONES,
                   lr_mode=tuple(m for m in LR_MODES if m != "cosine"))
    return Schema(cls, typing.get_type_hints(cls), choices, _ranges(cls), check_config,
                  resumable=RESUMABLE)


def _task(sources, overrides):
    """The ``task`` the sources and overrides set (the last wins), where it was set."""
    task, where = "detection", "defaults"
    for path, content in sources:
        if "task" in content:
            task, where = content["task"], path
    for key, value in overrides:
        if key == "task":
            task, where = value, "--set task"
    if task not in TASKS:
        raise ConfigError(f"{where}: 'task' must be one of {', '.join(TASKS)}, got {task!r}")
    return task


RECIPES = RecipeBook({"detection": _schema(DetectionConfig),
                      "segmentation": _schema(SegmentationConfig)}, pick=_task)
resolve = RECIPES.resolve
from_saved = RECIPES.from_saved
