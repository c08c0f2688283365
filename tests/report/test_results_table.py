"""tools/results_table.py and tools/plot_curves.py: on run folders written by hand with known
numbers, and on two tiny real runs of the trainer on the digits demo set (a row of the
paper's Table 2, MobileNet baseline, scaled down with flags; and the demo recipe, with no
paper row, stopped and resumed). For the real runs the expected cells are read from the
runs' own log.jsonl and from the paper's Table 2 as printed, not from the tool's code."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from helpers import assert_one_line_error, module_folder, write_transfer_run


ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
TRAIN = os.path.join(ROOT, "recipes", "train_imagenet.py")
# Table 2 of the paper, MobileNet 1.0, "Baseline" column: top-1 69.03, top-5 88.71
PAPER_MOBILENET = (69.03, 88.71)

COSINE = dict(model="resnet50_v1d", epochs=120, batch_size=1024, label_smoothing=0.0,
              paper="table6/resnet50_v1d/cosine", description="Table 6, ResNet-50-D: + cosine")
PLAIN = dict(model="resnet18_v1b", epochs=3, batch_size=64, label_smoothing=0.1)


@pytest.fixture
def two_runs(tmp_path, make_run):
    # (val_top1, val_top5, samples/s) per epoch; the best top-1 is not the last epoch
    cosine = make_run(tmp_path / "r50d_cosine", COSINE,
                      [(0.70, 0.90, 100.0), (0.785, 0.941, 110.0), (0.78, 0.94, 120.0)])
    plain = make_run(tmp_path / "tiny", PLAIN, [(0.25, 0.60, 500.0), (0.50, 0.80, 700.0)])
    return cosine, plain


def parse(markdown):
    lines = markdown.strip().splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert set(lines[1].replace("|", "")) == {"-"}
    return [dict(zip(header, (c.strip() for c in line.strip("|").split("|"))))
            for line in lines[2:]]


def test_rows_and_paper_numbers(tool, two_runs, tmp_path):
    out = tmp_path / "results.md"
    assert tool("results_table").main([*two_runs, "--out", str(out)]) == 0
    cosine, plain = parse(out.read_text())
    # the paper's Table 6, ResNet-50-D + cosine decay: 77.91 / 93.81
    assert cosine == {
        "run": "r50d_cosine", "recipe": "?", "changed": "?", "paper key": "table6/resnet50_v1d/cosine",
        "model": "resnet50_v1d", "conventions": "paper", "batch plan": "?",
        "published batch plan": "-", "distillation loss": "-", "epochs": "3/120",
        "top-1": "78.00", "top-5": "94.00",
        "best top-1": "78.50", "best top-5": "94.10", "best epoch": "2", "images/s": "110.0",
        "paper top-1": "77.91", "paper top-5": "93.81", "diff top-1": "+0.09",
        "diff top-5": "+0.19", "published GluonCV run": "-"}
    assert plain == {
        "run": "tiny", "recipe": "?", "changed": "?", "paper key": "-", "model": "resnet18_v1b",
        "conventions": "paper", "batch plan": "?", "published batch plan": "-",
        "distillation loss": "-", "epochs": "2/3",
        "top-1": "50.00", "top-5": "80.00", "best top-1": "50.00", "best top-5": "80.00",
        "best epoch": "2", "images/s": "600.0", "paper top-1": "-", "paper top-5": "-",
        "diff top-1": "-", "diff top-5": "-", "published GluonCV run": "-"}


def test_stdout(tool, two_runs, capsys):
    assert tool("results_table").main([two_runs[1]]) == 0
    assert parse(capsys.readouterr().out)[0]["run"] == "tiny"


def test_plot_curves_writes_png_and_pdf(tool, two_runs, tmp_path):
    prefix = str(tmp_path / "fig" / "fig3b")
    assert tool("plot_curves").main([*two_runs, "--out", prefix]) == 0
    for ext in ("png", "pdf"):
        assert os.path.getsize(f"{prefix}.{ext}") > 1000


def test_resumed_log_keeps_last_record_and_skips_cut_line(tmp_path, make_run):
    from gluon_tricks.report.runs import load_run
    path = make_run(tmp_path / "resumed", PLAIN, [(0.1, 0.5, 1.0), (0.2, 0.6, 1.0)],
                    extra_lines=['{"type": "epoch", "epoch": 2, "val_top1": 0.3, "val_top5": 0.7}',
                                 '{"type": "epo'])
    run = load_run(path)
    assert run.series("val_top1") == ([1, 2], [0.1, 0.3])


BAD_FOLDERS = {
    "missing folder": (lambda p: None, "not a run folder"),
    "no config.yaml": (lambda p: os.remove(os.path.join(p, "config.yaml")), "config.yaml"),
    "config not YAML": (lambda p: open(os.path.join(p, "config.yaml"), "w").write("a: [1,\n"),
                        "config.yaml"),
    "no log.jsonl": (lambda p: os.remove(os.path.join(p, "log.jsonl")), "log.jsonl"),
    "bad JSON line": (lambda p: open(os.path.join(p, "log.jsonl"), "w").write("{oops\n{}\n"),
                      "log.jsonl, line 1"),
    "no epoch yet": (lambda p: open(os.path.join(p, "log.jsonl"), "w").write(
        '{"type": "interval", "epoch": 1}\n'), "no epoch records"),
    "binary log": (lambda p: open(os.path.join(p, "log.jsonl"), "wb").write(
        b'{"type": "epoch"}\n\x89PNG\r\n\x1a\n\xff\xfe\x00\n'), "log.jsonl: not a log"),
}


@pytest.mark.parametrize("name", BAD_FOLDERS)
@pytest.mark.parametrize("tool_name", ["results_table", "plot_curves"])
def test_bad_run_folder_is_one_line_error(tool, tmp_path, make_run, capsys, name, tool_name):
    damage, message = BAD_FOLDERS[name]
    good = make_run(tmp_path / "good", PLAIN, [(0.1, 0.5, 1.0)])
    bad = str(tmp_path / "bad")
    if name != "missing folder":
        make_run(bad, PLAIN, [(0.1, 0.5, 1.0)])
        damage(bad)
    module = tool(tool_name)
    assert module.run_cli(module.main, [good, bad, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert_one_line_error(err, bad, message)



def _epochs(run):
    with open(os.path.join(run, "log.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    by_epoch = {r["epoch"]: r for r in records if r["type"] == "epoch"}
    return [by_epoch[e] for e in sorted(by_epoch)]


@pytest.fixture(scope="module")
def real_runs(tiny32, trainer, tmp_path_factory):
    """Two real runs on the small slice of the digits: one epoch of Table 2's MobileNet
    recipe and a demo run of 2 epochs trained as 1 + resume."""
    with module_folder(tmp_path_factory, "results_table") as root:
        mobilenet, demo = root / "mobilenet_table2", root / "demo"
        trainer(tiny32, mobilenet, "--epochs", "1", "--batch-size", "64", "--set", "classes=10",
                "--set", "data.input_size=32", recipe="recipes/table2/mobilenet1.0.yaml")
        common = ("--epochs", "2", "--set", "warmup_epochs=1", "--set", "mixup_off_epochs=1")
        trainer(tiny32, demo, *common, "--stop-after", "1")
        # the resume names no recipe: the table must still know the run came from demo.yaml
        subprocess.run([sys.executable, TRAIN, "--out", str(demo), "--resume"], check=True,
                       capture_output=True, timeout=600)
        yield str(mobilenet), str(demo)


def _pct(x):
    return f"{100 * x:.2f}"


def test_rows_of_real_runs(tool, real_runs, tiny32, tmp_path):
    out = tmp_path / "results.md"
    assert tool("results_table").main([*real_runs, "--out", str(out)]) == 0
    mobilenet, demo = parse(out.read_text())

    (m,) = _epochs(real_runs[0])
    top1, top5 = 100 * m["val_top1"], 100 * m["val_top5"]
    assert mobilenet == {
        "run": "mobilenet_table2", "recipe": "recipes/table2/mobilenet1.0.yaml",
        "changed": "batch_size, classes, data.input_size, epochs",
        "paper key": "table2/mobilenet1.0/baseline", "model": "mobilenet1.0",
        "conventions": "paper",
        # the recipe's 32 per device (the authors' 8 x 32) at --batch-size 64 on the CPU
        "batch plan": "32/device x 1 device(s) x accumulate 2 (BN 32)",
        "published batch plan": "-", "distillation loss": "-", "epochs": "1/1",
        "top-1": f"{top1:.2f}", "top-5": f"{top5:.2f}",
        "best top-1": f"{top1:.2f}", "best top-5": f"{top5:.2f}", "best epoch": "1",
        "images/s": f"{m['samples_per_sec']:.1f}",
        "paper top-1": "69.03", "paper top-5": "88.71",
        "diff top-1": f"{top1 - PAPER_MOBILENET[0]:+.2f}",
        "diff top-5": f"{top5 - PAPER_MOBILENET[1]:+.2f}", "published GluonCV run": "-"}
    assert m["val_images"] == tiny32["val_images"]

    epochs = _epochs(real_runs[1])
    assert [e["epoch"] for e in epochs] == [1, 2]
    best = max(epochs, key=lambda e: (e["val_top1"], -e["epoch"]))
    speed = sum(e["samples_per_sec"] for e in epochs) / 2
    assert demo == {
        "run": "demo", "recipe": "recipes/demo.yaml",
        "changed": "epochs, mixup_off_epochs, warmup_epochs", "paper key": "-",
        "model": "resnet18_v1d", "conventions": "paper",
        # the demo's global batch of 64 on the CPU; the resume on it is the same plan
        "batch plan": "64/device x 1 device(s) x accumulate 1 (BN 64)",
        "published batch plan": "-", "distillation loss": "-", "epochs": "2/2", "top-1": _pct(epochs[-1]["val_top1"]),
        "top-5": _pct(epochs[-1]["val_top5"]), "best top-1": _pct(best["val_top1"]),
        "best top-5": _pct(best["val_top5"]), "best epoch": str(best["epoch"]),
        "images/s": f"{speed:.1f}", "paper top-1": "-", "paper top-5": "-",
        "diff top-1": "-", "diff top-5": "-", "published GluonCV run": "-"}


def test_resume_keeps_the_first_command(real_runs):
    with open(os.path.join(real_runs[1], "command.json")) as f:
        command = json.load(f)
    assert command["recipe"] == os.path.join(ROOT, "recipes", "demo.yaml")
    assert "--stop-after" in command["argv"]
    assert len(command["resumed"]) == 1 and "--resume" in command["resumed"][0]


def test_plot_curves_on_real_runs(tool, real_runs, tmp_path):
    prefix = str(tmp_path / "fig3b")
    assert tool("plot_curves").main([*real_runs, "--out", prefix]) == 0
    for ext in ("png", "pdf"):
        assert os.path.getsize(f"{prefix}.{ext}") > 1000


def test_moved_recipe_is_shown_as_unknown(tool, real_runs, tmp_path, capsys):
    # a run whose recipe file is gone still gets its row; "changed" becomes "?"
    copy = tmp_path / "copied_run"
    shutil.copytree(real_runs[1], copy)
    with open(copy / "command.json") as f:
        command = json.load(f)
    command["recipe"] = str(tmp_path / "gone.yaml")
    (copy / "command.json").write_text(json.dumps(command))
    assert tool("results_table").main([str(copy)]) == 0
    (row,) = parse(capsys.readouterr().out)
    assert row["recipe"] == str(tmp_path / "gone.yaml") and row["changed"] == "?"


def test_published_column_names_the_authors_run(tool, tmp_path, make_run):
    """A run of a recipe with a published counterpart shows that run and its final top-1,
    read from the committed data (resnet50_v1d's log ends at err-top1 0.215302)."""
    run = make_run(tmp_path / "r50d_ls", dict(COSINE, published_run="resnet50_v1d"),
                   [(0.70, 0.90, 100.0)])
    out = tmp_path / "results.md"
    assert tool("results_table").main([run, "--out", str(out)]) == 0
    (row,) = parse(out.read_text())
    assert row["published GluonCV run"] == "resnet50_v1d: 78.47"


def test_run_against_the_published_curve(tool, tmp_path, make_run, capsys):
    """plot_curves --published prints epoch | ours | published | gap from the run's log and
    the published log, and says on or off track by the sibling band (5.6 points in the first
    epochs, 0.6 at the end): a run 1 point below resnet50_v1d's first three epochs is on
    track, one 8 points below is not."""
    from gluon_tricks.published import run as published_run
    theirs = [e.top1 for e in published_run("resnet50_v1d").epochs[:3]]
    for name, offset, verdict in (("close", -1.0, "on track"), ("far", -8.0, "off track")):
        run = make_run(tmp_path / name, dict(COSINE, published_run="resnet50_v1d"),
                       [((t + offset) / 100, 0.9, 100.0) for t in theirs])
        prefix = str(tmp_path / name / "fig")
        assert tool("plot_curves").main([run, "--published", "--out", prefix]) == 0
        out = capsys.readouterr().out
        rows = [line for line in out.splitlines() if line.startswith("| 1 ") or
                line.startswith("| 2 ")]
        assert rows[0].split("|")[2].strip() == f"{theirs[0] + offset:.2f}"
        assert rows[0].split("|")[3].strip() == f"{theirs[0]:.2f}"
        assert rows[0].split("|")[4].strip() == f"{offset:+.2f}"
        assert f"\n{verdict}:" in out
        assert os.path.exists(prefix + ".png")
    from gluon_tricks.errors import UserError
    run = make_run(tmp_path / "plain", PLAIN, [(0.25, 0.60, 500.0)])
    with pytest.raises(UserError, match="names no published run.*--published") as e:
        tool("plot_curves").main([run, "--published"])
    assert "\n" not in str(e.value)


def plan_record(epoch, per_device, devices, accumulate, ranks=1, rank_batch=None):
    """A "plan" line of log.jsonl as the trainer writes it (BatchPlan's fields); the rank's
    micro-batch ``rank_batch`` defaults to ``per_device`` on each of its ``devices``."""
    rank_batch = rank_batch or per_device * devices
    return json.dumps(dict(type="plan", epoch=epoch, global_batch=ranks * accumulate * rank_batch,
                           devices=devices, ranks=ranks, accumulate=accumulate,
                           rank_batch=rank_batch, per_device=per_device))


# the authors' resnet50_v1d run: --batch-size 128 (per GPU) --num-gpus 8, no accumulation
AUTHORS_PLAN = "128/device x 8 device(s) x accumulate 1 (BN 128)"


def test_the_batch_plan_stands_beside_the_published_runs(tool, tmp_path, make_run):
    """The run's plans as its log records them (a start on 2 GPUs accumulating 4, a resume
    from epoch 3 as 8 Horovod ranks; a second record of the same plan is no change) beside
    the authors' 8 x 128 read from their Namespace; a run of a row without a published run
    gets "-" there."""
    from gluon_tricks.published import run as published_run
    namespace = published_run("resnet50_v1d").namespace
    assert (namespace["batch_size"], namespace["num_gpus"]) == (128, 8)
    run = make_run(tmp_path / "r50d_ls", dict(COSINE, published_run="resnet50_v1d"),
                   [(0.70, 0.90, 100.0)] * 3,
                   extra_lines=[plan_record(1, 128, 2, 4), plan_record(2, 128, 2, 4),
                                plan_record(3, 128, 1, 1, ranks=8)])
    # 64 images on 3 devices: 22, 21, 21; a record cut short is left out
    other = make_run(tmp_path / "demo", PLAIN, [(0.25, 0.60, 500.0)],
                     extra_lines=[plan_record(1, 21, 3, 1, rank_batch=64),
                                  '{"type": "plan", "epoch": 1}'])
    out = tmp_path / "results.md"
    assert tool("results_table").main([run, other, "--out", str(out)]) == 0
    ours, plain = parse(out.read_text())
    assert ours["batch plan"] == ("128/device x 2 device(s) x accumulate 4 (BN 128); from "
                                  "epoch 3: 128/device x 8 device(s) [8 ranks x 1] x "
                                  "accumulate 1 (BN 128)")
    assert ours["published batch plan"] == AUTHORS_PLAN
    assert plain["batch plan"] == "21-22/device x 3 device(s) x accumulate 1 (BN 21-22)"
    assert plain["published batch plan"] == "-"


@pytest.mark.parametrize("plans, ours, verdict", [
    ([(128, 2, 4)], "128/device x 2 device(s) x accumulate 4 (BN 128)",
     "(the authors' global batch and BN batch)"),
    ([(512, 2, 1)], "512/device x 2 device(s) x accumulate 1 (BN 512)",
     "(not the authors' BN batch)"),
    ([(256, 1, 1)], "256/device x 1 device(s) x accumulate 1 (BN 256)",
     "(not the authors' global batch and BN batch)"),
    ([], "?", "(ours not logged: the run is older than its plan records)"),
], ids=["accumulates to theirs", "global batch on 2 GPUs", "a quarter", "not logged"])
def test_plot_curves_says_whether_the_run_had_the_authors_batches(tool, tmp_path, make_run,
                                                                 capsys, plans, ours, verdict):
    """plot_curves --published prints the run's plan beside the authors' and whether its
    global batch and BatchNorm batch are theirs; for a run that logged no plan it says so."""
    run = make_run(tmp_path / "r", dict(COSINE, published_run="resnet50_v1d"),
                   [(0.70, 0.90, 100.0)],
                   extra_lines=[plan_record(1, *plan) for plan in plans])
    assert tool("plot_curves").main([run, "--published", "--out", str(tmp_path / "fig")]) == 0
    lines = [x for x in capsys.readouterr().out.splitlines() if x.startswith("batch plan: ")]
    assert lines == [f"batch plan: ours {ours}; published {AUTHORS_PLAN} {verdict}"]


def test_sibling_band_comes_from_the_published_data():
    """The band constants are the spread of the ResNet-50-C and -D published runs, rounded
    up to 0.1 point."""
    from gluon_tricks.report import tracking
    early, late = tracking.sibling_spread()
    assert tracking.EARLY_BAND - 0.1 < early <= tracking.EARLY_BAND
    assert tracking.LATE_BAND - 0.1 < late <= tracking.LATE_BAND


def test_flagged_published_curve_is_never_the_authors_number(tool, tmp_path, make_run,
                                                              capsys):
    """resnet152_v1d.log's validation is a placeholder (err-top1 = 1 - epoch/120, "99.17%"
    at the end): the results table names the run without that number, and plot_curves
    neither compares against it nor calls the run off track."""
    run = make_run(tmp_path / "teacher", dict(COSINE, published_run="resnet152_v1d"),
                   [(0.70, 0.90, 100.0)])
    out = tmp_path / "results.md"
    assert tool("results_table").main([run, "--out", str(out)]) == 0
    (row,) = parse(out.read_text())
    assert row["published GluonCV run"].startswith("resnet152_v1d: validation flagged")
    assert "99.17" not in out.read_text()
    capsys.readouterr()
    prefix = str(tmp_path / "fig")
    assert tool("plot_curves").main([run, "--published", "--out", prefix]) == 0
    printed = capsys.readouterr().out
    assert "not compared or drawn" in printed and "placeholder" in printed
    assert "off track" not in printed and "on track" not in printed and "99.17 " not in printed


@pytest.mark.parametrize("config, conventions, loss", [
    # the recipes' default: the paper's text, Eq. 6
    (dict(COSINE, distill=True, temperature=20.0), "paper", "Eq. 6: hard + T^2 soft, T=20"),
    # the authors' script: hard weight 0.5 (half of Eq. 6), no loss scaling
    (dict(COSINE, conventions="gluoncv", distill=True, temperature=20.0), "gluoncv",
     "GluonCV: 0.5 hard + 0.5 T^2 soft, T=20"),
    # one key set against its conventions is named
    (dict(COSINE, initializer="msra"), "paper; initializer=msra", "-"),
    (dict(COSINE, conventions="gluoncv", loss_scale="dynamic", hard_weight=None),
     "gluoncv; hard_weight=None; loss_scale=dynamic", "-"),
])
def test_conventions_and_distillation_loss_beside_the_number(tool, tmp_path, make_run, capsys,
                                                             config, conventions, loss):
    """Which conventions and which distillation loss produced a row show in the results
    table and in plot_curves' labels: the six distillation cells of Table 6 depend on the
    loss, the rows linked to published runs on the conventions."""
    run = make_run(tmp_path / "r", config, [(0.70, 0.90, 100.0)])
    out = tmp_path / "results.md"
    assert tool("results_table").main([run, "--out", str(out)]) == 0
    (row,) = parse(out.read_text())
    assert (row["conventions"], row["distillation loss"]) == (conventions, loss)
    capsys.readouterr()
    assert tool("plot_curves").main([run, "--out", str(tmp_path / "fig")]) == 0
    label = capsys.readouterr().out.splitlines()[0]
    assert label.startswith("r: ") and f"[{conventions}" in label
    assert ("T^2" in label) == (loss != "-") and (loss == "-" or loss in label)


def test_transfer_rows_show_the_backbone_top1_beside_the_papers(tool, tmp_path):
    """Tables 8 and 9 print each backbone's ImageNet top-1 beside its mAP or mIoU: the
    transfer table shows the top-1 the run recorded for its backbone when it started, and
    the paper's as printed (Table 8, + mixup w/o distill: 79.16 top-1, 81.10 mAP; Table 9,
    B-standard: 76.14 top-1, 78.08 pixAcc, 37.05 mIoU). A run that recorded none (from a
    random backbone, or a .params file without its run's record) shows "-"."""
    detection = write_transfer_run(
        tmp_path / "det_mixup", dict(task="detection", backbone_model="resnet50_v1d",
                                     paper="table8/resnet50/mixup", epochs=20),
        [{"val_map": 0.70}, {"val_map": 0.805}], backbone_top1=0.7921)
    segmentation = write_transfer_run(
        tmp_path / "seg_b", dict(task="segmentation", backbone_model="resnet50_v1b",
                                 paper="table9/resnet50/b_standard", epochs=120),
        [{"val_miou": 0.36, "val_pixacc": 0.775}])
    out = tmp_path / "results.md"
    assert tool("results_table").main([detection, segmentation, "--out", str(out)]) == 0
    det, seg = parse(out.read_text())
    assert {k: det[k] for k in ("backbone", "backbone top-1", "mAP", "pixAcc",
                                "paper backbone top-1", "paper mAP", "paper mIoU")} == {
        "backbone": "resnet50_v1d", "backbone top-1": "79.21", "mAP": "80.50", "pixAcc": "-",
        "paper backbone top-1": "79.16", "paper mAP": "81.10", "paper mIoU": "-"}
    assert {k: seg[k] for k in ("backbone top-1", "mAP", "pixAcc", "mIoU",
                                "paper backbone top-1", "paper pixAcc", "paper mIoU")} == {
        "backbone top-1": "-", "mAP": "-", "pixAcc": "77.50", "mIoU": "36.00",
        "paper backbone top-1": "76.14", "paper pixAcc": "78.08", "paper mIoU": "37.05"}


def test_the_last_backbone_record_is_the_runs(tmp_path):
    """A run restarted before its first checkpoint (--resume without one) logs its
    backbone again: of two records the last is the one it trained from; a last line cut
    short by a kill is passed over."""
    from gluon_tricks.report.runs import load_run
    path = write_transfer_run(
        tmp_path / "restarted", dict(task="detection", paper="table8/resnet50/cosine"),
        [{"val_map": 0.79}], backbone_top1=0.77,
        extra_lines=['{"type": "backbone", "params": "/b/best.params", "val_top1": 0.7791}',
                     '{"type": "backbo'])
    assert load_run(path).backbone["val_top1"] == 0.7791
