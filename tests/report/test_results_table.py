"""tools/results_table.py and tools/plot_curves.py on run folders written by hand with known
numbers (the trainer is not needed)."""
import os

import pytest

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
        "run": "r50d_cosine", "paper key": "table6/resnet50_v1d/cosine",
        "model": "resnet50_v1d", "epochs": "3/120", "top-1": "78.00", "top-5": "94.00",
        "best top-1": "78.50", "best top-5": "94.10", "best epoch": "2", "images/s": "110.0",
        "paper top-1": "77.91", "paper top-5": "93.81", "diff top-1": "+0.09",
        "diff top-5": "+0.19"}
    assert plain == {
        "run": "tiny", "paper key": "-", "model": "resnet18_v1b", "epochs": "2/3",
        "top-1": "50.00", "top-5": "80.00", "best top-1": "50.00", "best top-5": "80.00",
        "best epoch": "2", "images/s": "600.0", "paper top-1": "-", "paper top-5": "-",
        "diff top-1": "-", "diff top-5": "-"}


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
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert bad in err and message in err, err
