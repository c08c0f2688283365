"""Training starts that must stop in one line before any work, through the command line."""
import os
import subprocess
import sys

from helpers import ROOT, assert_one_line_error


def test_distill_without_a_teacher_is_one_line_and_leaves_no_folder(small32, tmp_path):
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, os.path.join(ROOT, "recipes", "train_imagenet.py"),
                           "--recipe", os.path.join(ROOT, "recipes", "demo.yaml"),
                           "--rec-train", small32["train"], "--rec-val", small32["val"],
                           "--out", str(out), "--set", "distill=true"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, "distill: true needs a teacher", "--set teacher=")
    assert not out.exists()
