"""Runs that nothing can corrupt: --force never loses a finished run, a kill while best.params
is written leaves the best model consistent with the record, a corrupt latest checkpoint
falls back to the one before, and resuming with other settings is refused or recorded."""
import dataclasses
import errno
import json
import os
import shutil
import subprocess
import sys

import mxnet as mx
import numpy as np
import pytest

import gluon_tricks.run.checkpoints as checkpoints
import gluon_tricks.run.folder as runfolder
from gluon_tricks.run.epoch_log import EpochLog
from gluon_tricks.run.lifecycle import Launch
from gluon_tricks.run.lifecycle import RunSession
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
def finished(tiny32, tmp_path_factory):
    """A finished 2-epoch run on the small slice; tests copy it before changing anything."""
    with module_folder(tmp_path_factory, "finished") as root:
        run = str(root / "run")
        done = cli("--rec-train", tiny32["train"], "--rec-val", tiny32["val"], "--out", run,
                   *tiny_flags(**STEADY))
        assert done.returncode == 0, done.stderr[-2000:]
        yield run


def copy_of(run, tmp_path):
    dest = str(tmp_path / "run")
    shutil.copytree(run, dest)
    return dest


def test_force_checks_everything_before_touching_the_old_run(finished, tiny32, tmp_path):
    run = copy_of(finished, tmp_path)
    common = ["--rec-train", tiny32["train"], "--rec-val", tiny32["val"], "--out", run,
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


def test_force_keeps_the_old_run_until_the_new_one_checkpoints(finished, tiny32, tmp_path,
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
        train(tiny_config(**STEADY), tiny32["train"], tiny32["val"], run,
              launch=Launch(force=True))
    aside = os.path.join(run, "replaced")
    assert same_bytes(os.path.join(aside, "best.params"), old_best)
    assert epochs_logged(aside) == [1, 2]
    monkeypatch.undo()
    train(tiny_config(**dict(STEADY, epochs=1)), tiny32["train"], tiny32["val"], run,
          launch=Launch(force=True))
    assert not os.path.exists(aside) and epochs_logged(run) == [1]
    fresh = str(tmp_path / "fresh")  # a new folder has nothing to set aside
    monkeypatch.setattr("gluon_tricks.train.loop.train_one_epoch", dies)
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(**STEADY), tiny32["train"], tiny32["val"], fresh)
    assert not os.path.exists(os.path.join(fresh, "replaced"))


@pytest.mark.parametrize("victim", ["epoch-0002.params", "epoch-0002.optimizer",
                                    "best.params", "epoch-0002.json"])
def test_kill_while_a_checkpoint_file_is_written(tiny32, tmp_path, monkeypatch, victim):
    """Killed halfway through writing one file of epoch 2's checkpoint (for best.params: the
    second new best), then resumed: the log holds each epoch once, the epoch is redone, and
    best.params/best.json are those of the best epoch the log records. best.params is only
    written again at a new best: in that case the killed run takes every epoch for one, so
    that epoch 2 writes it (its checkpoint's record comes after best.params, so the resume
    redoes epoch 2 and judges it and epoch 3 for real)."""
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

    for module in (runfolder, checkpoints):  # the modules that write a checkpoint's files
        monkeypatch.setattr(module, "replace_atomically", write_then_die)
    if victim == "best.params":
        monkeypatch.setattr(RunSession, "beats_best", lambda self, value: True)
    cfg = tiny_config(**dict(STEADY, epochs=3))
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tiny32["train"], tiny32["val"], run)
    monkeypatch.undo()
    train(cfg, tiny32["train"], tiny32["val"], run, launch=Launch(resume=True))
    with open(os.path.join(run, "log.jsonl")) as f:
        records = [r for r in map(json.loads, f) if r["type"] == "epoch"]
    assert [r["epoch"] for r in records] == [1, 2, 3]
    best = max(records, key=lambda r: (r["val_top1"], -r["epoch"]))
    with open(os.path.join(run, "best.json")) as f:
        assert json.load(f)["epoch"] == best["epoch"]
    assert same_bytes(os.path.join(run, "best.params"),
                      os.path.join(run, "checkpoints", f"epoch-{best['epoch']:04d}.params"))


def test_corrupt_latest_checkpoint_falls_back_to_the_one_before(finished, tmp_path):
    run = copy_of(finished, tmp_path)
    with open(os.path.join(run, "checkpoints", "epoch-0002.params"), "r+b") as f:
        f.truncate(500)
    done = cli("--out", run, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "checkpoint of epoch 2 cannot be used" in done.stdout
    assert os.path.join(run, "checkpoints", "epoch-0002.params") + ": cannot load" in done.stdout
    assert "resuming" in done.stdout and "after epoch 1" in done.stdout
    assert os.path.exists(os.path.join(run, "checkpoints", "unreadable", "epoch-0002.params"))
    assert epochs_logged(run) == [1, 2]
    mx.nd.load(os.path.join(run, "checkpoints", "epoch-0002.params"))  # rewritten, whole


def test_a_nan_latest_checkpoint_falls_back_to_the_last_finite_one(finished, tmp_path):
    """A checkpoint whose weights hold a NaN (a diverged run's, or a damaged one that still
    parses) is unusable: the resume says so, naming the file and the parameter, sets it
    aside and continues from the one before."""
    run = copy_of(finished, tmp_path)
    bad = os.path.join(run, "checkpoints", "epoch-0002.params")
    arrays = mx.nd.load(bad)
    first = next(iter(arrays))
    arrays[first] = arrays[first] * float("nan")
    mx.nd.save(bad, arrays)
    done = cli("--out", run, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (f"checkpoint of epoch 2 cannot be used ({bad}: non-finite weights (NaN or "
            f"infinity) in 1 of {len(arrays)} parameters, the first {first}") in done.stdout
    assert "after epoch 1" in done.stdout
    assert os.path.exists(os.path.join(run, "checkpoints", "unreadable", "epoch-0002.params"))
    assert epochs_logged(run) == [1, 2]
    for path in (bad, os.path.join(run, "best.params")):
        assert all(np.isfinite(a.asnumpy()).all() for a in mx.nd.load(path).values()), path


def test_a_checkpoint_without_its_optimizer_state_falls_back_saying_so(finished, tmp_path):
    run = copy_of(finished, tmp_path)
    missing = os.path.join(run, "checkpoints", "epoch-0002.optimizer")
    os.remove(missing)
    done = cli("--out", run, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert f"checkpoint of epoch 2 cannot be used ({missing}: missing)" in done.stdout
    assert "after epoch 1" in done.stdout and epochs_logged(run) == [1, 2]


def test_a_resume_on_other_data_is_refused(finished, tiny32, tmp_path):
    """The run's data files are part of what it is: another --rec-train or --rec-val is
    refused before anything is written, and command.json keeps the run's."""
    run = copy_of(finished, tmp_path)
    before = tree(run)
    for flag, other in (("--rec-train", tiny32["val"]), ("--rec-val", tiny32["train"])):
        done = cli("--out", run, "--resume", "--epochs", "3", flag, other)
        assert done.returncode == 2, done.stderr[-2000:]
        assert_one_line_error(done.stderr, flag, os.path.abspath(other), "command.json")
    assert tree(run) == before
    same = cli("--out", run, "--resume", "--rec-train", tiny32["train"])  # its own: fine
    assert same.returncode == 0, same.stderr[-2000:]


def test_a_resume_of_a_finished_run_reports_its_last_validation(finished, tmp_path):
    run = copy_of(finished, tmp_path)
    with open(os.path.join(run, "log.jsonl")) as f:
        last = [r for r in map(json.loads, f) if r["type"] == "epoch"][-1]
    done = cli("--out", run, "--resume")
    assert done.returncode == 0, done.stderr[-2000:]
    assert (f"done after epoch 2/2: val top-1 {last['val_top1']:.4f} top-5 "
            f"{last['val_top5']:.4f}") in done.stdout


def test_a_checkpoint_claiming_another_best_is_refused(finished, tmp_path):
    """best_top1 edited in the newest checkpoint's record would keep every later epoch from
    becoming the best: the log records of the epoch say otherwise, and the resume stops."""
    run = copy_of(finished, tmp_path)
    path = os.path.join(run, "checkpoints", "epoch-0002.json")
    with open(path) as f:
        record = json.load(f)
    with open(path, "w") as f:
        json.dump(dict(record, best_top1=0.99), f)
    before = tree(run)
    done = cli("--out", run, "--resume", "--epochs", "3")
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, path, "best_top1 0.99", str(record["best_top1"]),
                          "--force")
    after = tree(run)
    assert after.pop("train.log").startswith(before.pop("train.log"))
    assert after == before


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
            # a list key's range holds for each of its elements
            for v in value if isinstance(value, (list, tuple)) else [value]:
                if v is not None:
                    assert (low is None or v >= low) and (high is None or v <= high), \
                        (recipe, key, value)
    assert 5 < accepted < 400


HOLD = os.path.join(ROOT, "tests", "hold_lock.py")


def tree(run):
    """{relative path: bytes} of every file under ``run``."""
    found = {}
    for folder, _, files in os.walk(run):
        for name in files:
            with open(os.path.join(folder, name), "rb") as f:
                found[os.path.relpath(os.path.join(folder, name), run)] = f.read()
    return found


def test_a_second_trainer_on_one_run_folder_is_refused(finished, tiny32, tmp_path):
    """Another process holds the run folder (a training started first): a second one, with
    --force or --resume, is refused in one line naming it, before writing anything."""
    run = copy_of(finished, tmp_path)
    holder = subprocess.Popen([sys.executable, HOLD, os.path.join(run, ".lock")],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        before = tree(run)
        common = ["--rec-train", tiny32["train"], "--rec-val", tiny32["val"], "--out", run,
                  *tiny_flags(**STEADY)]
        done = cli(*common, "--force")
        assert done.returncode == 2, done.stderr[-2000:]
        assert_one_line_error(done.stderr, run, "in use", f"pid {holder.pid}", "since")
        for launch in (Launch(), Launch(resume=True)):
            with pytest.raises(runfolder.RunFolderError, match=f"pid {holder.pid}"):
                train(tiny_config(**STEADY), tiny32["train"], tiny32["val"], run,
                      launch=launch)
        assert tree(run) == before
    finally:
        holder.stdin.close()
        holder.wait(timeout=600)


def edit_config(run, old, new):
    path = os.path.join(run, "config.yaml")
    with open(path) as f:
        lines = f.readlines()
    assert old + "\n" in lines
    lines = [new + "\n" if line == old + "\n" else line for line in lines]
    with open(path, "w") as f:
        f.writelines(lines)


def test_a_hand_edited_config_is_refused_before_anything_moves(finished, tmp_path):
    run = copy_of(finished, tmp_path)
    before = tree(run)
    edit_config(run, "base_lr_per_256: 0.4", "base_lr_per_256: 4.0")
    done = cli("--out", run, "--resume", "--epochs", "3")
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, "config.yaml", "edited", "base_lr_per_256 0.4 -> 4.0",
                          "--set")
    edit_config(run, "base_lr_per_256: 4.0", "base_lr_per_256: 0.4")
    edit_config(run, "model: resnet18_v1d", "model: resnet34_v1d")
    done = cli("--out", run, "--resume", "--epochs", "3")
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, "config.yaml", "model 'resnet18_v1d' -> 'resnet34_v1d'")
    edit_config(run, "model: resnet34_v1d", "model: resnet18_v1d")
    assert tree(run) == before
    config = os.path.join(run, "config.yaml")
    with open(config) as f:  # without its fingerprint line, fingerprint.json still checks it
        lines = f.readlines()[1:]
    with open(config, "w") as f:
        f.writelines(line.replace("base_lr_per_256: 0.4", "base_lr_per_256: 4.0")
                     for line in lines)
    done = cli("--out", run, "--resume", "--epochs", "3")
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, "config.yaml", "edited", "base_lr_per_256 0.4 -> 4.0")


def test_checkpoints_of_another_network_are_refused_not_set_aside(finished, tmp_path):
    """A run whose config.yaml names another network, fingerprinted as the trainer writes
    it (checkpoints copied from another run): no checkpoint loads, which is a
    configuration that is not theirs, not a corruption."""
    run = copy_of(finished, tmp_path)
    folder = runfolder.RunFolder(run)
    folder.write_config(dict(folder.read_config(), model="resnet34_v1d"))
    before = tree(run)
    done = cli("--out", run, "--resume", "--epochs", "3")
    assert done.returncode == 2, done.stderr[-2000:]
    assert_one_line_error(done.stderr, run, "none of its 2 checkpoints loads", "--force")
    after = tree(run)
    assert after.pop("train.log").startswith(before.pop("train.log"))  # says what it tried
    assert after == before


def test_a_finetune_killed_before_its_first_checkpoint_resumes_from_init(finished, small32,
                                                                         tmp_path,
                                                                         monkeypatch):
    """--init is part of what a resume restores: without a checkpoint it starts from the
    weights, as the run did. (At a learning rate of ~0 the one epoch keeps them.) The
    slice's 6 batches, fewer than 4 log intervals of 50, log at their quarters."""
    run = str(tmp_path / "run")
    cfg = tiny_config(**dict(STEADY, epochs=1, base_lr_per_256=1e-9, log_interval=50,
                             init=finished))

    def dies(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("gluon_tricks.train.loop.train_one_epoch", dies)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, small32["train"], small32["val"], run)
    monkeypatch.undo()
    train(cfg, small32["train"], small32["val"], run, launch=Launch(resume=True))
    start = mx.nd.load(os.path.join(finished, "best.params"))
    after = mx.nd.load(os.path.join(run, "checkpoints", "epoch-0001.params"))
    for name in (n for n in start if n.endswith("weight")):
        np.testing.assert_allclose(after[name].asnumpy(), start[name].asnumpy(), atol=1e-5,
                                   err_msg=name)
    with open(os.path.join(run, "log.jsonl")) as f:
        intervals = [r for r in map(json.loads, f) if r["type"] == "interval"]
    batches = small32["train_images"] // 64
    assert [r["batch"] for r in intervals] == [-(-k * batches // 4) for k in (1, 2, 3, 4)]
    assert all(r["epoch"] == 1 and r["samples_per_sec"] > 0 for r in intervals)


def test_disk_full_is_one_line_and_leaves_no_temporary(tiny32, tmp_path, monkeypatch, capsys):
    """Out of space while best.params is written: one line naming it, no temporary file, no
    log record for the epoch whose checkpoint is not complete."""
    from gluon_tricks.cli.train import main
    run = str(tmp_path / "run")
    copyfile = shutil.copyfile

    def full(src, dst, *args, **kwargs):
        if not dst.endswith("best.params.tmp"):
            return copyfile(src, dst, *args, **kwargs)
        with open(dst, "wb") as f:
            f.write(b"\0" * 100)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(shutil, "copyfile", full)
    status = main(["--rec-train", tiny32["train"], "--rec-val", tiny32["val"], "--out", run,
                   *tiny_flags(**dict(STEADY, epochs=1))])
    assert status == 2
    assert_one_line_error(capsys.readouterr().err, "best.params: cannot write",
                          "No space left on device")
    assert not [p for p in tree(run) if p.endswith(".tmp")]
    assert epochs_logged(run) == [] and not os.path.exists(os.path.join(run, "best.params"))


def test_a_kill_between_a_checkpoint_and_its_log_record(tiny32, tmp_path, monkeypatch):
    """The checkpoint is written before the epoch's log record; a kill in between is mended
    by the resume (the record comes from the checkpoint), without training the epoch
    again."""
    run = str(tmp_path / "run")
    cfg = tiny_config(**dict(STEADY, epochs=1))
    append = EpochLog.append

    def dies_at_the_epoch_record(self, record):
        if record["type"] == "epoch":
            raise KeyboardInterrupt
        return append(self, record)

    monkeypatch.setattr(EpochLog, "append", dies_at_the_epoch_record)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, tiny32["train"], tiny32["val"], run)
    assert os.path.exists(os.path.join(run, "checkpoints", "epoch-0001.json"))
    assert epochs_logged(run) == []
    monkeypatch.undo()
    monkeypatch.setattr("gluon_tricks.train.loop.train_one_epoch",
                        lambda *a: pytest.fail("the resume trained the epoch again"))
    train(cfg, tiny32["train"], tiny32["val"], run, launch=Launch(resume=True))
    assert epochs_logged(run) == [1]


def test_run_folder_entries_that_are_not_the_runs_are_refused(finished, tiny32, tmp_path):
    """A checkpoints file, a train.log or log.jsonl linking elsewhere (the run would append
    through it), and in a folder that holds no run a file named as a run's (--force would
    delete it): one line naming it, nothing changed."""
    cfg = tiny_config(**STEADY)

    def refused(run, launch, *words):
        before = tree(run)
        with pytest.raises(runfolder.RunFolderError) as e:
            train(cfg, tiny32["train"], tiny32["val"], run, launch=launch)
        assert "\n" not in str(e.value) and all(w in str(e.value) for w in words), str(e.value)
        assert tree(run) == before

    run = copy_of(finished, tmp_path)
    shutil.rmtree(os.path.join(run, "checkpoints"))
    with open(os.path.join(run, "checkpoints"), "w") as f:
        f.write("mine\n")
    refused(run, Launch(resume=True), os.path.join(run, "checkpoints"), "not a folder")
    shutil.rmtree(run)
    run = copy_of(finished, tmp_path)
    elsewhere = str(tmp_path / "elsewhere.log")
    with open(elsewhere, "w") as f:
        f.write("mine\n")
    for name in ("train.log", "log.jsonl"):
        shutil.move(os.path.join(run, name), str(tmp_path / name))
        os.symlink(elsewhere, os.path.join(run, name))
        refused(run, Launch(resume=True), os.path.join(run, name), "symbolic link")
        os.remove(os.path.join(run, name))
        shutil.move(str(tmp_path / name), os.path.join(run, name))
    users = str(tmp_path / "users")
    os.makedirs(users)
    with open(os.path.join(users, "log.jsonl"), "w") as f:
        f.write("my own notes\n")
    for launch in (Launch(), Launch(force=True)):
        refused(users, launch, os.path.join(users, "log.jsonl"), "not a run's file")


def test_ctrl_c_is_one_line_naming_the_epoch(tiny32, tmp_path, monkeypatch, capsys):
    from gluon_tricks.cli.train import main
    from gluon_tricks.train.loop import train_one_epoch as real

    def ctrl_c_in_epoch_2(cfg, parts, loader, epoch, *args):
        if epoch == 1:
            raise KeyboardInterrupt
        return real(cfg, parts, loader, epoch, *args)

    monkeypatch.setattr("gluon_tricks.train.loop.train_one_epoch", ctrl_c_in_epoch_2)
    run = str(tmp_path / "run")
    status = main(["--rec-train", tiny32["train"], "--rec-val", tiny32["val"], "--out", run,
                   *tiny_flags(**STEADY)])
    assert status == 130
    assert_one_line_error(capsys.readouterr().err, run, "interrupted in epoch 2",
                          "--resume continues")
    assert epochs_logged(run) == [1]
