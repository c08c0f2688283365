"""The transfer recipes (Tables 8 and 9): each row resolves to the authors' published GluonCV
run, written out here from its shell script and log, and names a classification recipe
that trains the backbone it expects."""
import glob
import os

import pytest

from gluon_tricks.paper import TRANSFER, TRANSFER_ROWS
from gluon_tricks.run.recipe import ConfigError
from gluon_tricks.train.config import resolve as resolve_classifier
from gluon_tricks.transfer.config import DetectionConfig, SegmentationConfig, resolve

ROOT = os.path.join(os.path.dirname(__file__), "..", "..", "recipes")

# faster_rcnn_resnet50_v1b_voc: train_faster_rcnn.py --gpus 0,1,2,3 --dataset voc, its log's
# Namespace(batch_size=4, epochs=20, lr=0.001, lr_decay=0.1, lr_decay_epoch='14,20',
# lr_warmup=-1, max_size=1000, momentum=0.9, seed=233, short=600, wd=0.0005)
FASTER_RCNN_VOC = dict(task="detection", dataset="voc", batch_size=4, epochs=20, lr=0.001,
                       lr_mode="step", lr_step_epochs=[14], lr_step_factor=0.1,
                       momentum=0.9, wd=5e-4, seed=233, short=600, max_size=1000,
                       roi_size=14, anchor_scales=[2, 4, 8, 16, 32])
# fcn_resnet50_ade: train.py --dataset ade20k --model fcn --aux --lr 0.01 --syncbn --ngpus 4
# --epochs 120, and the script's defaults batch 16, base 520, crop 480, aux weight 0.5,
# wd 1e-4, momentum 0.9, poly of power 0.9
FCN_ADE = dict(task="segmentation", dataset="ade20k", batch_size=16, epochs=120, lr=0.01,
               lr_mode="poly", lr_power=0.9, momentum=0.9, wd=1e-4, base_size=520,
               crop_size=480, aux=True, aux_weight=0.5, syncbn=True)
BACKBONES = {"b_standard": ("resnet50_v1b", "backbone/resnet50_v1b_standard.yaml"),
             **{row: ("resnet50_v1d", f"table6/resnet50_v1d_{row}.yaml")
                for row in ("cosine", "label_smoothing", "distill", "mixup", "distill_mixup")},
             "d_efficient": ("resnet50_v1d", "table6/resnet50_v1d_efficient.yaml")}


@pytest.mark.parametrize("table,published", [("table8", FASTER_RCNN_VOC), ("table9", FCN_ADE)])
@pytest.mark.parametrize("row", TRANSFER_ROWS)
def test_each_row_is_the_published_gluoncv_run_on_its_backbone(table, published, row):
    cfg = resolve(os.path.join(ROOT, table, row + ".yaml"))
    for key, value in published.items():
        assert getattr(cfg, key) == value, f"{table}/{row}: {key} = {getattr(cfg, key)!r}"
    model, recipe = BACKBONES[row]
    assert cfg.backbone_model == model and cfg.backbone_recipe == recipe
    assert cfg.paper == f"{table}/resnet50/{row}"
    backbone = resolve_classifier(os.path.join(ROOT, recipe))
    assert backbone.model == model and backbone.classes == 1000


def test_recorded_paper_cells_belong_to_table_rows():
    for key in TRANSFER:
        table, net, row = key.split("/")
        assert table in ("table8", "table9") and net == "resnet50" and row in TRANSFER_ROWS
    assert TRANSFER["table8/resnet50/b_standard"].map == 77.54
    assert TRANSFER["table8/resnet50/distill_mixup"].map == 81.33


def test_every_transfer_recipe_resolves():
    paths = [p for d in ("table8", "table9", "transfer")
             for p in glob.glob(os.path.join(ROOT, d, "*.yaml"))]
    assert len(paths) == 2 * 8 + 2
    for path in paths:
        cfg = resolve(path)
        assert isinstance(cfg, DetectionConfig if "detection" in (cfg.task,) else
                          SegmentationConfig)
        if cfg.backbone_recipe:
            assert os.path.exists(os.path.join(ROOT, cfg.backbone_recipe)), path


@pytest.mark.parametrize("overrides,words", [
    ([("task", "classify")], ["--set task", "detection, segmentation"]),
    ([("crop_size", 96)], ["--set crop_size", "unknown key"]),
    ([("dataset", "ade20k")], ["dataset 'ade20k'", "voc, digits"]),
    ([("backbone_model", "resnet50_v1")], ["backbone_model", "resnet50_v1d"]),
    ([("lr", -1)], ["--set lr", "[0, inf)"]),
    ([("pretrained", False), ("backbone", "runs/x")], ["random backbone", "drop --backbone"]),
])
def test_bad_settings_are_one_line_errors(overrides, words):
    with pytest.raises(ConfigError) as e:
        resolve(os.path.join(ROOT, "table8", "cosine.yaml"), overrides)
    assert "\n" not in str(e.value)
    for word in words:
        assert word in str(e.value)
