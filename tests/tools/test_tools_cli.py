"""The report tools as users run them: a wrong argument ends in one line on stderr, exit 2,
no traceback."""
import glob
import os
import subprocess
import sys

import pytest

from helpers import assert_one_line_error


ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


@pytest.mark.parametrize("argv", [
    ["tools/results_table.py", "no/such/run"],
    ["tools/plot_curves.py", "no/such/run"],
    ["tools/plot_lr.py", "--recipe", "no/such/run/recipe.yaml"],
    ["tools/export_gluoncv.py", "no/such/run", "out.params", "--model", "resnet50_v1d"],
    ["tools/validate.py", "no/such/run", "--rec-val", "val.rec"],
    ["tools/predict.py", "no/such/run", "img.jpg"],
    ["tools/export_onnx.py", "no/such/run", "out.onnx"],
])
def test_script_error_is_one_line(argv, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    argv = [sys.executable, os.path.join(ROOT, argv[0]), *argv[1:]]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "error: no/such/run")
    assert not os.listdir(tmp_path)


def tracked_files():
    done = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip("not a git checkout: no tracked files to protect")
    return {os.path.normpath(p) for p in done.stdout.split()}


def test_tools_write_nothing_tracked_by_default(tool, tmp_path, monkeypatch):
    """Run from the checkout's root, a tool without --out writes under runs/ (ignored by
    git), never over the committed figures of docs/results: their defaults say so, and
    plot_lr, which needs no input, is run for real in an empty folder."""
    tracked = tracked_files()
    for name in ("plot_lr", "plot_curves", "logit_gap", "ablate"):
        module = tool(name)
        out = module.parser().get_default("out") or module.OUT
        assert out.startswith("runs" + os.sep), (name, out)
        assert not any(p.startswith(out) for p in tracked), (name, out)
    monkeypatch.chdir(tmp_path)
    assert tool("plot_lr").main([]) == 0
    assert sorted(os.listdir(tmp_path)) == ["runs"]
    assert os.path.exists(tmp_path / "runs" / "figures" / "fig3a_lr.png")



HELP_PROBE = """
import runpy, sys
script = sys.argv[1]
sys.argv = [script, "--help"]
try:
    runpy.run_path(script, run_name="__main__")
except SystemExit as e:
    status = e.code or 0
else:
    status = "no exit"
print("exit", status, "mxnet" in sys.modules, "gluoncv" in sys.modules, file=sys.stderr)
"""
COMMANDS = sorted(os.path.join("tools", name) for name in os.listdir(os.path.join(ROOT, "tools"))
                  if name.endswith(".py")) + [os.path.join("recipes", "train_imagenet.py")]


@pytest.mark.parametrize("script", COMMANDS)
def test_help_answers_without_importing_mxnet(script):
    """Every command line answers --help at once: MXNet (4-5 s of CPU to import) is not
    imported until the flags are read; its description does not stop mid-sentence."""
    done = subprocess.run([sys.executable, "-c", HELP_PROBE, os.path.join(ROOT, script)],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.startswith("usage:"), done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == "exit 0 False False", done.stderr[-2000:]
    description = done.stdout.split("\n\n")[1]  # after the usage lines: a whole sentence
    if not description.startswith(("positional arguments", "options")):
        assert description.rstrip().endswith("."), description


@pytest.mark.parametrize("tool_name", ["results_table", "plot_curves"])
def test_a_glob_over_runs_skips_what_holds_no_run(tool, make_run, tmp_path, monkeypatch,
                                                  capsys, tool_name):
    """README's `results_table.py runs/*` after `plot_lr.py` (which writes runs/figures) and
    an export: the figures folder and the file are skipped with a note; named alone, the
    folder stays a one-line error, as does a damaged run among others."""
    monkeypatch.chdir(tmp_path)
    assert tool("plot_lr").main([]) == 0
    make_run("runs/demo", dict(model="resnet18_v1d", epochs=1), [(0.5, 0.9, 100.0)])
    open("runs/demo.onnx", "wb").close()  # README's exports land in runs/ too
    capsys.readouterr()
    module = tool(tool_name)
    out = ["--out", str(tmp_path / "fig")] if tool_name == "plot_curves" else []
    assert module.run_cli(module.main, sorted(glob.glob("runs/*")) + out) == 0
    captured = capsys.readouterr()
    assert captured.err.strip().splitlines() == [
        "note: runs/demo.onnx: a file, not a run folder, skipped",
        "note: runs/figures: holds no run (no config.yaml, log.jsonl or checkpoints/), skipped"]
    if tool_name == "results_table":
        assert "| demo |" in captured.out
    assert module.run_cli(module.main, ["runs/figures"] + out) == 2
    assert_one_line_error(capsys.readouterr().err, "runs/figures", "config.yaml")
    os.remove("runs/demo/config.yaml")  # a damaged run is not skipped
    make_run("runs/other", dict(model="resnet18_v1d", epochs=1), [(0.5, 0.9, 100.0)])
    assert module.run_cli(module.main, sorted(glob.glob("runs/*")) + out) == 2
    *notes, error = capsys.readouterr().err.strip().splitlines()
    assert len(notes) == 2 and all(note.startswith("note: ") for note in notes)
    assert_one_line_error(error, "runs/demo/config.yaml")


@pytest.mark.parametrize("tool_name", ["validate", "predict"])
def test_gpus_error_of_an_inference_tool_reads_as_one(tool, tmp_path, capsys, tool_name):
    """On a machine without a GPU, validate's and predict's --gpus error says to run on the
    CPU (it once said "to train"), from the preflight, before MXNet is asked."""
    import cv2
    import mxnet as mx
    import numpy as np
    from gluon_tricks.models import get_model
    from gluon_tricks.run.recipe import dumps
    from gluon_tricks.train.config import resolve
    if mx.context.num_gpus():
        pytest.skip("this machine has a GPU")
    run = tmp_path / "demo"
    run.mkdir()
    (run / "config.yaml").write_text(dumps(resolve(os.path.join(ROOT, "recipes", "demo.yaml"))))
    net = get_model("resnet18_v1d", classes=10)
    net.initialize()
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(run / "best.params"))
    image = tmp_path / "digit.png"
    cv2.imwrite(str(image), np.zeros((32, 32, 3), np.uint8))
    inputs = ["--rec-val", str(tmp_path / "val.rec")] if tool_name == "validate" else [str(image)]
    module = tool(tool_name)
    assert module.run_cli(module.main, [str(run), *inputs, "--gpus", "0"]) == 2
    err = capsys.readouterr().err
    # the GPU preflight answers first: it finds no GPU before MXNet is asked
    assert_one_line_error(err, "--gpus 0: no NVIDIA GPU is known here", "leave --gpus out to "
                          "run on the CPU")
    assert "train" not in err
