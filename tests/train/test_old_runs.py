"""Run folders written by an earlier version of the trainer (commit 50fef2d: top-level
`input_size`, `label_smoothing_mode: mxnet`, a `data:` dict checked only at start-up) still
resume with today's trainer and still feed the report tools. The old trainer is taken from
this checkout's own git history and run for real."""
import json
import os
import subprocess
import sys
import io
import tarfile

import pytest

from gluon_tricks.report.runs import load_run
from gluon_tricks.infer.checkpoint import open_checkpoint
from gluon_tricks.report.tables import markdown, row_of

from helpers import assert_one_line_error, module_folder

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", ".."))
OLD = "50fef2d"  # the main before the run folder got one owner and the config a typed data:


def old_checkout(dest):
    """The package and recipes of commit OLD, extracted into ``dest``."""
    done = subprocess.run(["git", "archive", OLD, "gluon_tricks", "recipes"], cwd=ROOT,
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"commit {OLD} is not in this checkout's history: {done.stderr[:200]!r}")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return str(dest)


@pytest.fixture(scope="module")
def old_run(small32, tmp_path_factory):
    """One epoch of a 2-epoch run trained by the old trainer (its own code on PYTHONPATH),
    with the old spellings in its config."""
    with module_folder(tmp_path_factory, "old") as root:
        yield _old_run(small32, old_checkout(root / "code"), str(root / "run"))


def _old_run(small32, code, run):
    argv = [sys.executable, os.path.join(code, "recipes", "train_imagenet.py"),
            "--rec-train", small32["train"], "--rec-val", small32["val"], "--out", run,
            "--set", "model=resnet18_v1d", "--set", "classes=10", "--set", "input_size=32",
            "--batch-size", "64", "--epochs", "2", "--set", "label_smoothing=0.1",
            "--set", "label_smoothing_mode=mxnet", "--set", "data.num_workers=1",
            "--set", "log_interval=5", "--stop-after", "1"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=code))
    assert done.returncode == 0, done.stderr[-2000:]
    with open(os.path.join(run, "config.yaml")) as f:
        text = f.read()
    assert "input_size: 32" in text and "label_smoothing_mode: mxnet" in text
    return run


def test_old_run_resumes_with_todays_trainer(old_run):
    """Its optimizer state is a pickle (MXNet's Trainer.save_states): refused unless the
    user says they trust it, then resumed."""
    train_py = os.path.join(ROOT, "recipes", "train_imagenet.py")
    refused = subprocess.run([sys.executable, train_py, "--out", old_run, "--resume"],
                             capture_output=True, text=True, timeout=600)
    assert refused.returncode == 2
    assert_one_line_error(refused.stderr, "epoch-0001.states", "--trust-pickled-states")
    done = subprocess.run([sys.executable, train_py, "--out", old_run, "--resume",
                           "--trust-pickled-states"], capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "resuming" in done.stdout
    with open(os.path.join(old_run, "log.jsonl")) as f:
        epochs = [r["epoch"] for r in map(json.loads, f) if r["type"] == "epoch"]
    assert epochs == [1, 2]
    run = load_run(old_run)  # the report tools' reader: old spellings read as today's keys
    assert run.config["data"]["input_size"] == 32
    assert run.config["label_smoothing_mode"] == "gluoncv"
    assert run.name in markdown([row_of(run)])
    ckpt = open_checkpoint(old_run)  # Figure 4 evaluates it at the size it was trained at
    assert ckpt.data.input_size == 32 and ckpt.mode == "gluoncv" and ckpt.eps == 0.1
