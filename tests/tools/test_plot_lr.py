"""tools/plot_lr.py: Figure 3(a) against the closed forms of the paper's §3.1 and §5.1
(written here with numpy, not by calling our schedule)."""
import csv
import os

import numpy as np
import pytest

from helpers import assert_one_line_error


ETA = 0.4  # 0.1 x 1024 / 256
BATCHES = 1281167 // 1024  # 1251
EPOCHS, WARMUP = 120, 5


def closed_form(schedule, i):
    """The paper: warmup lr = i eta / m (i <= m); cosine 1/2 (1 + cos(t pi / T)) eta, t = i - m,
    T = total - m; step eta 0.1^k, k = number of epochs 30/60/90 already finished."""
    m, total = WARMUP * BATCHES, EPOCHS * BATCHES
    if schedule == "cosine decay":
        after = 0.5 * (1 + np.cos((i - m) * np.pi / (total - m))) * ETA
    else:
        finished_epochs = (i - 1) // BATCHES  # batch i runs in 0-based epoch (i-1)//BATCHES
        k = (finished_epochs >= 30).astype(int) + (finished_epochs >= 60) + (finished_epochs >= 90)
        after = ETA * 0.1 ** k
    return np.where(i <= m, i * ETA / m, after)


def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["schedule", "iteration", "epoch", "lr"]
    curves = {}
    for name, it, ep, lr in rows[1:]:
        curves.setdefault(name, []).append((int(it), float(ep), float(lr)))
    return {k: np.array(v) for k, v in curves.items()}


def test_fig3a_csv_equals_closed_forms(tool, tmp_path):
    prefix, csv_path = str(tmp_path / "fig3a"), str(tmp_path / "lr.csv")
    assert tool("plot_lr").main(["--out", prefix, "--csv", csv_path]) == 0
    curves = read_csv(csv_path)
    assert set(curves) == {"step decay", "cosine decay"}
    for name, table in curves.items():
        i = table[:, 0]
        np.testing.assert_array_equal(i, np.arange(1, EPOCHS * BATCHES + 1))
        np.testing.assert_allclose(table[:, 1], (i - 1) / BATCHES, rtol=0, atol=1e-12)
        np.testing.assert_allclose(table[:, 2], closed_form(name, i), rtol=1e-12, atol=1e-15)
    step = curves["step decay"]
    # the paper's landmarks: peak 0.4 after 5 epochs; x0.1 from the first batch of epoch 30
    assert step[5 * BATCHES - 1, 2] == pytest.approx(0.4)
    assert step[30 * BATCHES - 1, 2] == pytest.approx(0.4)
    assert step[30 * BATCHES, 2] == pytest.approx(0.04) and step[30 * BATCHES, 1] == 30.0
    assert curves["cosine decay"][-1, 2] == pytest.approx(0.0, abs=1e-9)
    for ext in ("png", "pdf"):
        assert os.path.getsize(f"{prefix}.{ext}") > 1000


def test_recipe_curves(tool, tmp_path):
    """--recipe: the schedule of a recipe on --images images (full batches only)."""
    prefix, csv_path = str(tmp_path / "r"), str(tmp_path / "r.csv")
    recipe = os.path.join(os.path.dirname(__file__), "..", "..", "recipes", "table6",
                          "resnet50_v1d_cosine.yaml")
    assert tool("plot_lr").main(["--recipe", recipe, "--images", "10000", "--out", prefix,
                                 "--csv", csv_path]) == 0
    (name, table), = read_csv(csv_path).items()
    assert name == "table6/resnet50_v1d/cosine"
    batches = 10000 // 1024  # 9 per epoch
    m, total = 5 * batches, 120 * batches
    i = np.arange(1, total + 1)
    expected = np.where(i <= m, i * ETA / m,
                        0.5 * (1 + np.cos((i - m) * np.pi / (total - m))) * ETA)
    np.testing.assert_allclose(table[:, 2], expected, rtol=1e-12, atol=1e-15)
    assert os.path.getsize(prefix + ".png") > 1000 and os.path.getsize(prefix + ".pdf") > 1000


def run_plot_lr(tool, argv):
    plot_lr = tool("plot_lr")
    return plot_lr.run_cli(plot_lr.main, argv)


def test_missing_recipe_is_one_line_error(tool, tmp_path, capsys):
    assert run_plot_lr(tool, ["--recipe", "no/such/recipe.yaml", "--out", str(tmp_path / "x")]) == 2
    assert_one_line_error(capsys.readouterr().err, "no/such/recipe.yaml")


def test_too_few_images_is_one_line_error(tool, tmp_path, capsys):
    bad = tmp_path / "bs1024.yaml"
    bad.write_text("batch_size: 1024\n")
    assert run_plot_lr(tool, ["--recipe", str(bad), "--images", "10",
                              "--out", str(tmp_path / "x")]) == 2
    assert_one_line_error(capsys.readouterr().err, str(bad))


def test_a_recipe_too_long_to_draw_is_refused_before_allocating(tool, tmp_path, capsys,
                                                                monkeypatch):
    long = tmp_path / "long.yaml"
    long.write_text("epochs: 100000000\nbatch_size: 256\n")
    monkeypatch.setattr("gluon_tricks.report.figures.recipe_curve",
                        lambda *a: pytest.fail("the curve was computed"))
    assert run_plot_lr(tool, ["--recipe", str(long), "--out", str(tmp_path / "x")]) == 2
    assert_one_line_error(capsys.readouterr().err, str(long), "100,000,000 epochs",
                          "updates")


def test_outputs_as_users_name_them(tool, tmp_path, capsys):
    """--out lr.png is the prefix lr (not lr.png.png), --out FOLDER/ writes in the folder
    (not FOLDER/.png); --csv on a folder and outputs that cannot be written are one line."""
    assert run_plot_lr(tool, ["--out", str(tmp_path / "lr.png")]) == 0
    assert sorted(os.listdir(tmp_path)) == ["lr.pdf", "lr.png"]
    folder = tmp_path / "figs"
    folder.mkdir()
    assert run_plot_lr(tool, ["--out", str(folder) + os.sep]) == 0
    assert sorted(os.listdir(folder)) == ["fig3a_lr.pdf", "fig3a_lr.png"]
    capsys.readouterr()
    assert run_plot_lr(tool, ["--out", str(tmp_path / "x"), "--csv", str(folder)]) == 2
    assert_one_line_error(capsys.readouterr().err, "--csv", str(folder), "a folder")
    blocked = tmp_path / "a_file"  # a folder that cannot be made (as one without rights)
    blocked.write_text("")
    assert run_plot_lr(tool, ["--out", str(blocked / "lr")]) == 2
    assert_one_line_error(capsys.readouterr().err, "--out", str(blocked), "cannot write")
    assert run_plot_lr(tool, ["--out", str(tmp_path / "y"), "--csv",
                              str(blocked / "lr.csv")]) == 2
    assert_one_line_error(capsys.readouterr().err, "--csv", "lr.csv", "cannot write")
