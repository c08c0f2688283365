"""Runs that nothing can corrupt: --force never loses a finished run, a kill while best.params
is written leaves the best model consistent with the record, a crafted pickle never runs,
a corrupt latest checkpoint falls back to the one before, and resuming with other settings
is refused or recorded."""
import dataclasses
import json
import os
import pickle
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import gluon_tricks.run.folder as runfolder
from gluon_tricks.run.lifecycle import Launch
from gluon_tricks.train.loop import train

from helpers import assert_one_line_error, module_folder, tiny_config, tiny_flags

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TRAIN_PY = os.path.join(ROOT, "recipes", "train_imagenet.py")
# learns steadily, so that later epochs are new bests (see test_loop.LEARNS)
STEADY = dict(warmup_epochs=0, base_lr_per_256=0.4, mixup_alpha=0.0, label_smoothing=0.0,
              data={"input_size": 32, "num_workers": 1, "min_area": 0.5})


def cli(*args):
    return subprocess.run([sys.executable, TRAIN_PY, *args], capture_output=True, text=True,
                          timeout=600)


def epochs_logged(run):
    with open(os.path.join(run, "log.jsonl")) as f:
        return [r["epoch"] for r in map(json.loads, f) if r["type"] == "epoch"]


def same_bytes(a, b):
    with open(a, "rb") as f, open(b, "rb") as g:
        return f.read() == g.read()


@pytest.fixture(scope="module")
def finished(demo32, tmp_path_factory):
    """A finished 2-epoch run; tests copy it before changing anything."""
    with module_folder(tmp_path_factory, "finished") as root:
        run = str(root / "run")
        done = cli("--rec-train", demo32["train"], "--rec-val", demo32["val"], "--out", run,
                   *tiny_flags(**STEADY))
        assert done.returncode == 0, done.stderr[-2000:]
        yield run


def copy_of(run, tmp_path):
    dest = str(tmp_path / "run")
    shutil.copytree(run, dest)
    return dest


def test_force_checks_everything_before_touching_the_old_run(finished, demo32, tmp_path):
    run = copy_of(finished, tmp_path)
    common = ["--rec-train", demo32["train"], "--rec-val", demo32["val"], "--out", run,
              "--force", *tiny_flags(**STEADY)]
    before = sorted(os.listdir(os.path.join(run, "checkpoints")))
    for bad, words in ((["--set", "model=nosuch"], "model"), (["--set", "seed=-1"], "seed"),
                       (["--set", "log_interval=0"], "log_interval"),
                       (["--gpus", "0"], "--gpus"), (["--stop-after", "0"], "--stop-after")):
        done = cli(*common, *bad)
        assert done.returncode == 2, (bad, done.stderr[-1000:])
        assert_one_line_error(done.stderr, words)
        assert sorted(os.listdir(os.path.join(run, "checkpoints"))) == before, bad
        assert epochs_logged(run) == [1, 2]


def test_force_keeps_the_old_run_until_the_new_one_checkpoints(finished, demo32, tmp_path,
                                                               monkeypatch):
    """A replacement that dies before its first checkpoint leaves the old run whole in
    RUN/replaced/; one that checkpoints removes it."""
    run = copy_of(finished, tmp_path)
    old_best = os.path.join(tmp_path, "old_best.params")
    shutil.copyfile(os.path.join(run, "best.params"), old_best)

    def dies(*args, **kwargs):
        raise KeyboardInterrupt  # a kill before the first checkpoint

    monkeypatch.setattr("gluon_tricks.train.loop.train_one_epoch", dies)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(**STEADY), demo32["train"], demo32["val"], run,
              launch=Launch(force=True))
    aside = os.path.join(run, "replaced")
    assert same_bytes(os.path.join(aside, "best.params"), old_best)
    assert epochs_logged(aside) == [1, 2]
    monkeypatch.undo()
    train(tiny_config(**dict(STEADY, epochs=1)), demo32["train"], demo32["val"], run,
          launch=Launch(force=True))
    assert not os.path.exists(aside) and epochs_logged(run) == [1]
    fresh = str(tmp_path / "fresh")  # a new folder has nothing to set aside
    monkeypatch.setattr("gluon_tricks.train.loop.train_one_epoch", dies)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(**STEADY), demo32["train"], demo32["val"], fresh)
    assert not os.path.exists(os.path.join(fresh, "replaced"))


@pytest.mark.parametrize("victim", ["epoch-0002.params", "epoch-0002.optimizer",
                                    "best.params", "epoch-0002.json"])
def test_kill_while_a_checkpoint_file_is_written(demo32, tmp_path, monkeypatch, victim):
    """Killed halfway through writing one file of epoch 2's checkpoint (for best.params: the
    second new best), then resumed: the log holds each epoch once, the epoch is redone, and
    best.params/best.json are those of the best epoch the log records."""
    run = str(tmp_path / "run")
    real_replace, hits = runfolder.replace_atomically, []

    def is_victim(path):
        if os.path.basename(path) != victim:
            return False
        hits.append(path)
        return victim != "best.params" or len(hits) == 2

    def write_then_die(path, write):  # every file of a run folder is written through it
        if is_victim(path):
            write(path + ".tmp")
            with open(path + ".tmp", "r+b") as f:  # half written, then "kill -9"
                f.truncate(os.path.getsize(path + ".tmp") // 2)
            raise KeyboardInterrupt
        return real_replace(path, write)

    monkeypatch.setattr(runfolder, "replace_atomically", write_then_die)
    cfg = tiny_config(**dict(STEADY, epochs=3))
    with pytest.raises(KeyboardInterrupt):
        train(cfg, demo32["train"], demo32["val"], run)
    monkeypatch.undo()
    train(cfg, demo32["train"], demo32["val"], run, launch=Launch(resume=True))
    with open(os.path.join(run, "log.jsonl")) as f:
        records = [r for r in map(json.loads, f) if r["type"] == "epoch"]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    best = max(records, key=lambda r: (r["val_top1"], -r["epoch"]))
    with open(os.path.join(run, "best.json")) as f:
        assert json.load(f)["epoch"] == best["epoch"]
    assert same_bytes(os.path.join(run, "best.params"),
                      os.path.join(run, "checkpoints", f"epoch-{best['epoch']:04d}.params"))


class RunsCode:
    """A pickle that runs code when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_crafted_pickle_never_runs(finished, tmp_path):
    run = copy_of(finished, tmp_path)
    marker = tmp_path / "pwned"
    os.remove(os.path.join(run, "checkpoints", "epoch-0002.optimizer"))
    with open(os.path.join(run, "checkpoints", "epoch-0002.states"), "wb") as f:
        pickle.dump(RunsCode(marker), f)
    done = cli("--out", run, "--resume", "--epochs", "3")
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "epoch-0002.states", "pickle", "--trust-pickled-states")
    assert not marker.exists()


def test_corrupt_latest_checkpoint_falls_back_to_the_one_before(finished, tmp_path):
    run = copy_of(finished, tmp_path)
    with open(os.path.join(run, "checkpoints", "epoch-0002.params"), "r+b") as f:
        f.truncate(500)
    done = cli("--out", run, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "checkpoint of epoch 2 cannot be used" in done.stdout
    assert "resuming" in done.stdout and "after epoch 1" in done.stdout
    assert os.path.exists(os.path.join(run, "checkpoints", "unreadable", "epoch-0002.params"))
    assert epochs_logged(run) == [1, 2]
    mx.nd.load(os.path.join(run, "checkpoints", "epoch-0002.params"))  # rewritten, whole


def test_resume_refuses_other_settings_and_records_allowed_ones(finished, tmp_path):
    run = copy_of(finished, tmp_path)
    done = cli("--out", run, "--resume", "--set", "base_lr_per_256=0.1")
    assert done.returncode == 2
    assert_one_line_error(done.stderr, "base_lr_per_256", "0.4", "0.1")
    done = cli("--out", run, "--resume", "--epochs", "3", "--set", "data.num_workers=1")
    assert done.returncode == 0, done.stderr[-2000:]
    assert epochs_logged(run) == [1, 2, 3]
    with open(os.path.join(run, "config.yaml")) as f:
        assert "epochs: 3" in f.read()
    with open(os.path.join(run, "command.json")) as f:
        command = json.load(f)
    assert command["changed"] == {"epochs": [2, 3]} and len(command["resumed"]) == 1


def test_recipe_fuzz_accepts_valid_or_says_one_line(tmp_path):
    """A few hundred generated recipes (fixed seed): each resolves to a configuration whose
    values are within range, or is refused with a one-line ConfigError naming the file;
    never another exception."""
    from gluon_tricks.errors import UserError
    from gluon_tricks.train.config import RANGES, TrainConfig, resolve

    rng = np.random.default_rng(2019)
    keys = [f.name for f in dataclasses.fields(TrainConfig) if f.name != "data"] + [
        "data.min_area", "data.input_size", "data.mean_rgb", "data.num_workers", "base",
        "label_smothing", "data.nope"]
    values = [0, 1, -1, 0.5, -0.5, 1e9, float("nan"), float("inf"), True, "x", "dynamic",
              "5", None, [], [1, 2], [30, 20], ["a"], {"a": 1}, "resnet18_v1d", "cosine",
              "float16", "../x.yaml", 2 ** 40]
    accepted = 0
    for i in range(400):
        recipe = {}
        for _ in range(int(rng.integers(1, 5))):
            key = keys[int(rng.integers(len(keys)))]
            value = values[int(rng.integers(len(values)))]
            if key.startswith("data."):
                recipe.setdefault("data", {})[key[5:]] = value
            else:
                recipe[key] = value
        path = tmp_path / f"r{i}.yaml"
        path.write_text(json.dumps(recipe))  # JSON is YAML, and keeps nan/inf readable
        try:
            cfg = resolve(str(path))
        except UserError as e:
            message = str(e)
            assert "\n" not in message and str(path) in message, (recipe, message)
            continue
        accepted += 1
        flat = dict(cfg.to_dict(), **{f"data.{k}": v for k, v in cfg.to_dict()["data"].items()})
        for key, (low, high, _, _) in RANGES.items():
            value = flat[key]
            if value is not None:
                assert (low is None or value >= low) and (high is None or value <= high), \
                    (recipe, key, value)
    assert 5 < accepted < 400
