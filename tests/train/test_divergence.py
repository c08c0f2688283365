"""A run that diverges stops: at the first progress line whose mean loss is not finite (or
at the epoch's end, for the weights), with one line naming the epoch and the batches and
what to do; the diverged epoch never becomes the best or a checkpoint, so the run folder
keeps the last good one and --resume continues from it. FP16's collapsed loss scale stops
in the same words."""
import json
import os
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

from gluon_tricks.run.lifecycle import Launch
from gluon_tricks.run.progress import DIVERGED_ADVICE, Diverged
from gluon_tricks.train import loop
from gluon_tricks.train.loop import train

from helpers import assert_one_line_error, tiny_config, tiny_flags

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TRAIN_PY = os.path.join(ROOT, "recipes", "train_imagenet.py")
STEADY = dict(warmup_epochs=0, base_lr_per_256=0.4, mixup_alpha=0.0, label_smoothing=0.0,
              data={"input_size": 32, "num_workers": 1, "min_area": 0.5})


def finite_file(path):
    return all(np.isfinite(a.asnumpy()).all() for a in mx.nd.load(path).values())


def epochs_logged(run):
    with open(os.path.join(run, "log.jsonl")) as f:
        return [r["epoch"] for r in map(json.loads, f) if r["type"] == "epoch"]


def test_a_huge_learning_rate_stops_in_its_first_epoch_without_a_checkpoint(small32, tmp_path):
    """The user's case: FP32 at base_lr_per_256=1e6 used to end "done" with NaN in
    best.params."""
    run = str(tmp_path / "run")
    done = subprocess.run(
        [sys.executable, TRAIN_PY, "--rec-train", small32["train"], "--rec-val",
         small32["val"], "--out", run,
         *tiny_flags(**dict(STEADY, epochs=3, base_lr_per_256=1000000))],
        capture_output=True, text=True, timeout=600)
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, "epoch 1, batch", "diverged", "base_lr_per_256",
                          "--resume")
    assert "done" not in done.stdout
    assert not os.path.exists(os.path.join(run, "best.params"))
    assert not os.path.exists(os.path.join(run, "checkpoints"))


class ExplodesAfter:
    """A learning-rate schedule: ``schedule``'s up to update ``update``, then 1e6."""

    def __init__(self, schedule, update):
        self.schedule, self.update = schedule, update

    def lr(self, i):
        return self.schedule.lr(i) if i <= self.update else 1e6


def test_a_diverged_epoch_keeps_the_last_good_checkpoint_and_best(small32, tmp_path,
                                                                  monkeypatch):
    """Epoch 1 trains well, epoch 2 explodes from its third update: the run stops naming
    epoch 2; best.params and the only checkpoint are epoch 1's, finite; a resume (with the
    real schedule) continues after epoch 1."""
    run = str(tmp_path / "run")
    cfg = tiny_config(**dict(STEADY, epochs=2, log_interval=50))
    batches = small32["train_images"] // cfg.batch_size
    real = loop.schedule_of
    monkeypatch.setattr(loop, "schedule_of",
                        lambda c, n: ExplodesAfter(real(c, n), batches + 2))
    with pytest.raises(Diverged) as raised:
        train(cfg, small32["train"], small32["val"], run)
    message = str(raised.value)
    assert "\n" not in message and message.startswith("epoch 2, batch")
    assert message.endswith(DIVERGED_ADVICE)
    assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == [
        "epoch-0001.json", "epoch-0001.optimizer", "epoch-0001.params"]
    assert finite_file(os.path.join(run, "best.params"))
    assert finite_file(os.path.join(run, "checkpoints", "epoch-0001.params"))
    assert epochs_logged(run) == [1]
    with open(os.path.join(run, "best.json")) as f:
        assert json.load(f)["epoch"] == 1
    monkeypatch.undo()
    train(cfg, small32["train"], small32["val"], run, launch=Launch(resume=True))
    assert epochs_logged(run) == [1, 2]
    assert finite_file(os.path.join(run, "best.params"))


def test_weights_that_turn_non_finite_after_the_last_line_stop_at_the_epoch_end(
        small32, tmp_path, monkeypatch):
    """Progress lines read the loss, which the weights of the last updates have not made
    yet: the epoch's end checks the weights too (its one synchronisation)."""
    run = str(tmp_path / "run")
    cfg = tiny_config(**dict(STEADY, epochs=1, log_interval=50))
    real = loop.TrainStep.__call__

    def poisons_the_last_update(step, data, label, mix=None):
        out = real(step, data, label, mix)
        step.calls = getattr(step, "calls", 0) + 1
        if step.calls == small32["train_images"] // cfg.batch_size:
            weight = next(iter(step.net.collect_params().values()))
            weight.set_data(weight.data() * float("nan"))
        return out

    monkeypatch.setattr(loop.TrainStep, "__call__", poisons_the_last_update)
    with pytest.raises(Diverged, match="epoch 1, batch 6 of 6: a training loss or weight"):
        train(cfg, small32["train"], small32["val"], run)
    assert not os.path.exists(os.path.join(run, "best.params"))


def test_fp16_collapse_says_the_same_words_with_its_place(small32, tmp_path, monkeypatch):
    """The step's FP16 verdict (a collapsed loss scale, tested in test_loss_scale) reaches
    the user as the loss check's line: the epoch, the batches, what to do."""
    run = str(tmp_path / "run")
    cfg = tiny_config(**dict(STEADY, epochs=1, log_interval=50))

    def collapses(step, data, label, mix=None):
        raise Diverged("FP16 loss scale 1 and the last 100 updates all overflowed (inf/NaN)")

    monkeypatch.setattr(loop.TrainStep, "__call__", collapses)
    with pytest.raises(Diverged) as raised:
        train(cfg, small32["train"], small32["val"], run)
    assert str(raised.value) == ("epoch 1, batch 1 of 6: FP16 loss scale 1 and the last 100 "
                                 f"updates all overflowed (inf/NaN): {DIVERGED_ADVICE}")
