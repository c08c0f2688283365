"""The paper's numbers: spot checks against the paper's tables, the shape of each table, the
recipes' keys, and the label-smoothing logit gap against its closed form and a numerical
optimum (scipy)."""
import glob
import math
import os

import numpy as np
import pytest
import yaml
from scipy.optimize import minimize
from scipy.special import log_softmax

from gluon_tricks import paper
from gluon_tricks.paper import PAPER, TRANSFER, TRANSFER_ROWS, optimal_logit_gap, result

RECIPES = os.path.join(os.path.dirname(__file__), os.pardir, "recipes")


def test_spot_values():
    assert PAPER["table2/resnet50_v1/baseline"] == paper.Result(75.87, 92.70)
    assert PAPER["table2/mobilenet1.0/reference"].top5 is None
    # Table 3's times, as the table prints them (ResNet-50's also quoted in §3.3's text)
    assert [PAPER[f"table3/{net}/{row}"].minutes_per_epoch
            for net in ("resnet50_v1", "inception_v3", "mobilenet1.0")
            for row in ("baseline", "efficient")] == [13.3, 4.4, 19.8, 8.0, 6.2, 3.7]
    assert (PAPER["table4/bs1024/warmup"].top1, PAPER["table4/bs1024/warmup"].top5) == \
        (75.93, 92.84)
    assert PAPER["table5/resnet50_v1d/efficient"].top1 == 77.16
    nets = ("resnet50_v1", "resnet50_v1b", "resnet50_v1c", "resnet50_v1d")
    assert [PAPER[f"table5/{n}/efficient"].gflops for n in nets] == [3.8, 4.1, 4.3, 4.3]
    assert all(PAPER[f"table5/resnet50_v1{v}/efficient"].params_millions == 25 for v in ("", "b", "c", "d"))
    r = PAPER["table6/resnet50_v1d/mixup"]
    assert (r.top1, r.top5) == (79.15, 94.58)
    assert PAPER["table6/mobilenet1.0/distill_mixup"] == paper.Result(72.51, 91.02)
    assert PAPER["table7/resnet50_v1d/best"] == paper.Result(56.70, 87.33)


def test_table1_as_printed():
    """The paper's Table 1 ("Computational costs and validation accuracy of various
    models"), cell by cell: FLOPs, top-1, top-5 ("-" for ResNeXt-50)."""
    printed = {"resnet50_v1/reference": (3.9, 75.3, 92.2),
               "resnext50_32x4d/reference": (4.2, 77.8, None),
               "se_resnet50_v1/reference": (3.9, 76.71, 93.38),
               "se_resnext50_32x4d/reference": (4.3, 78.90, 94.51),
               "densenet201/reference": (4.3, 77.42, 93.66),
               "resnet50_v1d/tricks": (4.3, 79.29, 94.63)}
    assert {k[len("table1/"):]: (r.gflops, r.top1, r.top5) for k, r in paper.TABLE1.items()} \
        == printed
    # its tricks row is Table 6's last ResNet-50-D row; its ResNet-50 is Table 2's reference
    def acc(key):
        return PAPER[key].top1, PAPER[key].top5

    assert acc("table1/resnet50_v1d/tricks") == acc("table6/resnet50_v1d/distill_mixup")
    assert acc("table1/resnet50_v1/reference") == acc("table2/resnet50_v1/reference")
    assert set(paper.TABLE1_COUNTED) == set(paper.TABLE1)


def test_table3_as_printed():
    """The paper's Table 3 (arXiv 1812.01187v2), cell by cell: for each model, efficient
    (BS=1024, FP16) then baseline (BS=256, FP32), each time/epoch in minutes, top-1, top-5."""
    printed = {"resnet50_v1": ((4.4, 76.21, 92.97), (13.3, 75.87, 92.70)),
               "inception_v3": ((8, 77.50, 93.60), (19.8, 77.32, 93.43)),
               "mobilenet1.0": ((3.7, 71.90, 90.47), (6.2, 69.03, 88.71))}
    cells = {}
    for net in printed:
        rows = [PAPER[f"table3/{net}/{row}"] for row in ("efficient", "baseline")]
        cells[net] = tuple((r.minutes_per_epoch, r.top1, r.top5) for r in rows)
    assert cells == printed
    assert len([k for k in PAPER if k.startswith("table3/")]) == 6


def test_table1_counts_are_our_counter_on_gluoncvs_zoo():
    """TABLE1_COUNTED is what our counter gives on GluonCV's networks (pretrained=False) and,
    for the tricks row, on our ResNet-50-D; the paper's FLOPs column agrees with it to the
    paper's one decimal (within 0.1 G)."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(
        "model_table", os.path.join(os.path.dirname(__file__), os.pardir, "tools",
                                    "model_table.py"))
    model_table = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(model_table)
    for key, params, macs, printed in model_table.table1_rows():
        assert paper.TABLE1_COUNTED[key] == (round(params / 1e6, 2), round(macs / 1e9, 2)), key
        assert abs(macs / 1e9 - printed.gflops) <= 0.1, key


def test_table7_test_columns_kept_apart():
    """Table 7's test columns as printed, outside PAPER: the test set is scored on the
    challenge server, so no run is compared with them."""
    assert paper.TABLE7_TEST == {"table7/resnet50_v1d/efficient": paper.Result(57.18, 87.28),
                                 "table7/resnet50_v1d/best": paper.Result(57.63, 87.82)}
    assert PAPER["table7/resnet50_v1d/efficient"] == paper.Result(56.34, 86.87)


def test_tables8_and_9_backbone_top1_as_printed():
    """The "Top-1" column Tables 8 and 9 print for their backbones, row by row (the same in
    both tables); it is Table 6's ResNet-50-D column but for two rounded differently."""
    printed = [76.14, 77.16, 77.91, 78.34, 78.67, 79.16, 79.29]
    for table in ("table8", "table9"):
        assert [TRANSFER[f"{table}/resnet50/{row}"].backbone_top1 for row in TRANSFER_ROWS] \
            == printed
    table6 = [PAPER[f"table6/resnet50_v1d/{row}"].top1 for row in paper.TABLE6_ROWS]
    assert [round(a - b, 2) for a, b in zip(printed[1:], table6)] == [0, 0, 0.03, 0, 0.01, 0]


def test_table_shapes():
    table4 = [k for k in PAPER if k.startswith("table4/")]
    assert len(table4) == 5 * 2
    assert {k.split("/")[2] for k in table4} == set(paper.TABLE4_ROWS)
    table6 = [k for k in PAPER if k.startswith("table6/")]
    assert len(table6) == 6 * 3
    assert {k.split("/")[1] for k in table6} == set(paper.TABLE6_NETS)
    assert len([k for k in PAPER if k.startswith("table5/")]) == 4
    assert all(len(k.split("/")) == 3 for k in PAPER)


def test_linked_cells_agree():
    """The same run appears in several tables (the paper's own cross references)."""
    def acc(key):
        return PAPER[key].top1, PAPER[key].top5

    assert acc("table3/resnet50_v1/baseline") == acc("table2/resnet50_v1/baseline") == \
        acc("table4/bs256/linear_scaling")
    assert acc("table3/resnet50_v1/efficient") == acc("table4/bs1024/fp16") == \
        acc("table5/resnet50_v1/efficient")
    assert acc("table6/resnet50_v1d/efficient") == acc("table5/resnet50_v1d/efficient")
    for net in ("inception_v3", "mobilenet1.0"):
        assert acc(f"table3/{net}/baseline") == acc(f"table2/{net}/baseline")
    assert acc("table6/inception_v3/efficient") == acc("table3/inception_v3/efficient")
    # but for one print: MobileNet's efficient top-5 is 90.47 in Table 3, 90.53 in Table 6
    table3, table6 = PAPER["table3/mobilenet1.0/efficient"], PAPER["table6/mobilenet1.0/efficient"]
    assert table3.top1 == table6.top1 == 71.90 and (table3.top5, table6.top5) == (90.47, 90.53)


def test_every_recipe_names_a_known_result():
    keys, transfer_keys = [], []
    for path in glob.glob(os.path.join(RECIPES, "**", "*.yaml"), recursive=True):
        with open(path) as f:
            key = (yaml.safe_load(f) or {}).get("paper")
        if key and key.startswith(("table8/", "table9/")):
            # Tables 8 and 9: a row of the paper, of which only some cells are recorded
            table, net, row = key.split("/")
            assert net == "resnet50" and row in TRANSFER_ROWS, key
            transfer_keys.append(key)
        elif key:
            keys.append(key)
            result(key)
    # Tables 2 (3 rows), 3 (2), 4 (10), 5 (4), 6 (18) and 7 (2): a search that finds nothing
    # fails
    assert len(keys) == 39, keys
    assert sorted(transfer_keys) == sorted(f"table{t}/resnet50/{row}" for t in (8, 9)
                                           for row in TRANSFER_ROWS)
    assert set(TRANSFER) <= set(transfer_keys)


def test_table3_cells_are_the_base_recipes():
    """Table 3's ResNet-50 cells are the baseline and efficient settings themselves: the two
    base recipes name them, and what builds on them names its own row or none."""
    from gluon_tricks.train.config import resolve
    base = os.path.join(RECIPES, "base")
    assert resolve(os.path.join(base, "baseline.yaml")).paper == "table3/resnet50_v1/baseline"
    assert resolve(os.path.join(base, "efficient.yaml")).paper == "table3/resnet50_v1/efficient"
    for recipe in ("backbone/resnet50_v1b_standard.yaml", "finetune/base.yaml",
                   "teacher/resnet152_v1d.yaml", "teacher/resnet152_v1d_mixup.yaml"):
        assert resolve(os.path.join(RECIPES, recipe)).paper is None, recipe


def test_unknown_key_lists_the_table():
    with pytest.raises(KeyError, match="table6/resnet50_v1d/mixup"):
        result("table6/resnet50_v1d/mixpu")


def test_optimal_logit_gap_closed_form():
    assert round(optimal_logit_gap(1000, 0.1), 1) == 9.1
    assert optimal_logit_gap(1000, 0.1) == pytest.approx(math.log(8991))


def test_optimal_logit_gap_is_the_optimum_of_smoothed_cross_entropy():
    K, eps = 6, 0.2
    q = np.full(K, eps / (K - 1))
    q[0] = 1 - eps
    fit = minimize(lambda z: -(q * log_softmax(z)).sum(), np.zeros(K), method="BFGS",
                   options={"gtol": 1e-10})
    gaps = fit.x[0] - fit.x[1:]
    np.testing.assert_allclose(gaps, optimal_logit_gap(K, eps), rtol=1e-4)
