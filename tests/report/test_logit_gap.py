"""tools/logit_gap.py (paper Fig. 4): the gap definition against a hand computation, the
optimum against the softmax it should reproduce, and two runs tuned on from a trained
network on the digits showing that label smoothing shrinks the gap."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

from gluon_tricks.errors import run_cli
from gluon_tricks.report.logit_gap import logit_gaps, optimum

from helpers import assert_one_line_error, module_folder

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
TOOL = os.path.join(ROOT, "tools", "logit_gap.py")


def test_gap_is_max_minus_mean_of_the_rest():
    logits = [[3.0, 1.0, 2.0],          # 3 - (1 + 2) / 2
              [0.0, 0.0, 5.0, 1.0],     # padded below; 5 - (0 + 0 + 1) / 3
              [-1.0, -4.0, -2.5]]       # -1 - (-4 - 2.5) / 2
    expected = [1.5, 5 - 1 / 3, -1 + 3.25]
    for row, want in zip(logits, expected):
        assert logit_gaps([row])[0] == pytest.approx(want)
    # ties: the maximum is counted once, its twin is among "the rest"
    assert logit_gaps([[2.0, 2.0, -1.0]])[0] == pytest.approx(2 - 0.5)
    z = np.random.default_rng(0).normal(size=(50, 7))
    brute = [sorted(r)[-1] - np.mean(sorted(r)[:-1]) for r in z]
    np.testing.assert_allclose(logit_gaps(z), brute)
    with pytest.raises(ValueError):
        logit_gaps(np.zeros((4, 1)))


@pytest.mark.parametrize("k,eps,mode,on_value", [
    (1000, 0.1, "paper", 0.9), (10, 0.1, "paper", 0.9), (10, 0.2, "paper", 0.8),
    (10, 0.1, "gluoncv", 0.9 + 0.01), (1000, 0.1, "gluoncv", 0.9 + 1e-4)])
def test_optimum_reproduces_the_smoothed_target(k, eps, mode, on_value):
    # logits with the true class `gap` above K - 1 equal others: softmax must give the target
    gap = optimum(k, eps, mode)
    p_true = math.exp(gap) / (math.exp(gap) + k - 1)
    assert p_true == pytest.approx(on_value)
    if (k, eps, mode) == (1000, 0.1, "paper"):
        assert gap == pytest.approx(9.1, abs=0.01)  # the paper's number
    assert optimum(k, 0.0) is None  # one-hot: unbounded


def _tune(trainer, out, small32, start, eps):
    # three epochs on the slice (18 steps) from a network that learned (about 80% top-1),
    # without mixup: only the targets differ, so only they move the gaps apart. On an AMD
    # EPYC, from a mean gap of 3.96: one-hot 3.29 and 3.27, smoothed 2.57 and 2.54 (seeds 0
    # and 1); two epochs left 0.24-0.54 between them, two on the whole set (44 steps, from
    # 3.58) one-hot 5.40 and smoothed 3.86. From scratch, three epochs left two networks at
    # 51% and 71% top-1, too early for their gaps to say anything (the smoothed one's was
    # larger).
    return trainer(small32, out, "--init", start, "--epochs", "3", "--set", "warmup_epochs=0",
                   "--set", "base_lr_per_256=0.4", "--set", "mixup_alpha=0",
                   "--set", "mixup_off_epochs=0", "--set", f"label_smoothing={eps}")


@pytest.fixture(scope="module")
def runs(small32, trainer, learned32, tmp_path_factory):
    """A run that learned, tuned three more epochs on the slice of the 32 px digits:
    one-hot and eps = 0.1. The gaps are measured on the whole validation set."""
    with module_folder(tmp_path_factory, "logit_gap") as root:
        yield dict(onehot=_tune(trainer, root / "onehot", small32, learned32, 0.0),
                   smoothed=_tune(trainer, root / "smoothed", small32, learned32, 0.1))


def test_label_smoothing_shrinks_the_gap(tool, runs, demo32, tmp_path, capsys):
    out, stats = tmp_path / "fig4", tmp_path / "gaps.json"
    assert tool("logit_gap").main([runs["onehot"], runs["smoothed"], "--label", "one-hot",
                                   "--label", "label smoothing", "--rec-val", demo32["val"],
                                   "--out", str(out), "--json", str(stats)]) == 0
    printed = capsys.readouterr().out
    onehot, smoothed = json.loads(stats.read_text())["runs"]
    assert (onehot["label"], smoothed["label"]) == ("one-hot", "label smoothing")
    assert onehot["images"] == smoothed["images"] == 360  # every validation image
    assert smoothed["mean"] < onehot["mean"]
    assert 0 < smoothed["std"] and smoothed["median"] > 0
    assert onehot["optimum"] is None
    assert smoothed["optimum"] == pytest.approx(math.log(9 * 0.9 / 0.1))  # K = 10
    assert f"| one-hot | resnet18_v1d | 10 | 0 | 360 | {onehot['mean']:.3f}" in printed
    for ext in ("png", "pdf"):
        assert os.path.getsize(f"{out}.{ext}") > 0


def test_bare_params_file_gives_the_run_folders_numbers(tool, runs, demo32, tmp_path):
    folder, bare = tmp_path / "folder.json", tmp_path / "bare.json"
    common = ["--rec-val", demo32["val"], "--out", str(tmp_path / "fig")]
    tool("logit_gap").main([runs["smoothed"], *common, "--json", str(folder)])
    # classes from the classifier weight, input size and eps from the flags
    tool("logit_gap").main([os.path.join(runs["smoothed"], "best.params"), "--model",
                            "resnet18_v1d", "--input-size", "32", "--eps", "0.1", *common,
                            "--json", str(bare)])
    a, b = (json.loads(p.read_text())["runs"][0] for p in (folder, bare))
    assert (b["classes"], b["eps"]) == (10, 0.1)
    for key in ("mean", "median", "std", "optimum", "images"):
        assert a[key] == pytest.approx(b[key])


def _bad_inputs(tmp_path, runs):
    no_config = tmp_path / "no_config"
    no_config.mkdir()
    no_best = tmp_path / "no_best"
    no_best.mkdir()
    (no_best / "config.yaml").write_text("model: resnet18_v1d\nclasses: 10\n")
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text("model: resnet18_v1d\nclasses: 10\n"
                                        "data: {input_size: 32}\n")
    (broken / "best.params").write_text("not a params file")
    wrong_model = tmp_path / "wrong_model"
    wrong_model.mkdir()
    (wrong_model / "config.yaml").write_text("model: resnet50_v1d\nclasses: 10\n")
    os.symlink(os.path.join(runs["onehot"], "best.params"), wrong_model / "best.params")
    return {
        "missing": ([str(tmp_path / "nope")], "no such file or run folder"),
        "no config": ([str(no_config)], "config.yaml: missing"),
        "no best.params": ([str(no_best)], "without best.params"),
        "not params": ([str(broken)], "best.params"),
        "wrong network": ([str(wrong_model)], "cannot load it as resnet50_v1d"),
        "bare without model": ([os.path.join(runs["onehot"], "best.params")], "--model"),
    }


def test_bad_checkpoints_are_one_line_errors(tool, runs, demo32, tmp_path, capsys):
    main = tool("logit_gap").main
    for case, (argv, words) in _bad_inputs(tmp_path, runs).items():
        status = run_cli(main, [*argv, "--rec-val", demo32["val"],
                                "--out", str(tmp_path / "fig")])
        err = capsys.readouterr().err
        assert status == 2, case
        assert_one_line_error(err, words)
    assert not os.path.exists(tmp_path / "fig.png")


def test_script_error_is_one_line_without_traceback(tmp_path):
    done = subprocess.run([sys.executable, TOOL, "no/such/run", "--rec-val", "val.rec"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "error: no/such/run")


def test_fp16_checkpoint_gives_the_same_gaps(tool, runs, demo32, tmp_path):
    """FP16 checkpoints (what FP16 recipes save) load cast to FP32: the gaps are those of
    the FP32 weights up to FP16's rounding of them."""
    from gluon_tricks.models import get_model

    net = get_model("resnet18_v1d", classes=10)
    net.load_parameters(os.path.join(runs["smoothed"], "best.params"))
    net.cast("float16")
    fp16 = str(tmp_path / "fp16.params")
    net.save_parameters(fp16)
    stats = []
    for argv in ([runs["smoothed"]], [fp16, "--model", "resnet18_v1d", "--input-size", "32",
                                      "--eps", "0.1"]):
        out = tmp_path / f"{len(stats)}.json"
        assert tool("logit_gap").main([*argv, "--rec-val", demo32["val"], "--out",
                                       str(tmp_path / "fig"), "--json", str(out)]) == 0
        stats.append(json.loads(out.read_text())["runs"][0])
    assert stats[0]["images"] == stats[1]["images"] == 360
    assert stats[1]["mean"] == pytest.approx(stats[0]["mean"], rel=2e-2)
