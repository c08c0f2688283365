"""The run folder: the one place that knows its layout, writes its files atomically and reads
them back. The trainer and every tool ask :class:`RunFolder`; no other module spells a file
name of it.

``RUN/`` (``recipes/train_imagenet.py --out RUN``)::

    config.yaml        the resolved configuration (a recipe without ``base:``)
    command.json       the command line and recipe file that started the run; resumes append
    log.jsonl          for programs: one JSON object per line, "interval" and "epoch" records
    train.log          for people: the lines the trainer prints
    checkpoints/       epoch-NNNN.params (network), .optimizer (optimizer state) and .json
                       (the epoch's record), the last k epochs and the best one
    best.params        the network of the best epoch so far, and best.json its epoch record

Every file is written under a temporary name and renamed; an epoch's best.params is written
before its checkpoint's JSON record, and the record last, so a checkpoint counts only once
all of its files are complete, and ``kill -9`` at any moment leaves the previous state
readable (a best.params newer than the newest record is put back on resume,
:meth:`RunFolder.repair_best`).

What the files may contain: MXNet NDArray files (``mx.nd.save``: named arrays, no code),
JSON and YAML read with safe loaders. A run folder is data, never code. Checkpoints written
before the optimizer state moved out of pickle (``epoch-NNNN.states``, MXNet's
``Trainer.save_states``) are loaded only when the user says they trust them.
"""
import glob
import json
import os
import re
import shutil

import mxnet as mx
import yaml

from ..errors import UserError, one_line

_EPOCH_JSON = re.compile(r"epoch-(\d{4,})\.json$")


class RunFolderError(UserError):
    """A run folder (or one of its files) that cannot be read or used; names the file."""


def replace_atomically(path, write):
    """Call ``write(tmp)`` to write ``path + '.tmp'``, then rename it over ``path``."""
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def write_json(path, record):
    """``record`` as indented JSON at ``path``, flushed to disk, atomically."""
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
    replace_atomically(path, write)


class RunFolder:
    """One run folder ``path``: names, atomic writes, checkpoints and reading back."""

    CONFIG = "config.yaml"
    COMMAND = "command.json"
    LOG = "log.jsonl"
    TEXT_LOG = "train.log"
    CHECKPOINTS = "checkpoints"
    BEST_PARAMS = "best.params"
    BEST_RECORD = "best.json"
    SET_ASIDE = "replaced"  # a run replaced by --force, until the new one's first checkpoint
    # what a run leaves; any of them means the folder holds a run
    FILES = (CHECKPOINTS, LOG, TEXT_LOG, CONFIG, COMMAND, BEST_PARAMS, BEST_RECORD)

    def __init__(self, path):
        self.path = path

    @property
    def name(self):
        """The folder's own name."""
        return os.path.basename(os.path.normpath(self.path))

    def file(self, name):
        return os.path.join(self.path, name)

    @property
    def config_path(self):
        return self.file(self.CONFIG)

    @property
    def log_path(self):
        return self.file(self.LOG)

    @property
    def text_log_path(self):
        return self.file(self.TEXT_LOG)

    @property
    def best_params(self):
        return self.file(self.BEST_PARAMS)

    @property
    def checkpoint_dir(self):
        return self.file(self.CHECKPOINTS)

    def checkpoint(self, epoch, ext):
        """``checkpoints/epoch-NNNN.<ext>`` of the checkpoint after ``epoch`` epochs."""
        return os.path.join(self.checkpoint_dir, f"epoch-{epoch:04d}.{ext}")

    # ------------------------------------------------------------------ the folder itself

    def holds_run(self):
        return os.path.isdir(self.path) and any(
            os.path.exists(self.file(f)) for f in (self.CONFIG, self.LOG, self.CHECKPOINTS))

    def make(self):
        os.makedirs(self.path, exist_ok=True)

    def clear(self):
        """Remove every file a run leaves; other files are kept."""
        for name in self.FILES:
            _remove(self.file(name))

    def set_aside(self):
        """``--force``: move the run this folder holds into ``replaced/``, to be deleted by
        :meth:`drop_set_aside` once the new run has checkpointed. If ``replaced/`` already
        holds a run (an earlier replacement died before its first checkpoint), that one is
        kept and the failed replacement's files are removed."""
        aside = self.file(self.SET_ASIDE)
        if os.path.isdir(aside):
            self.clear()
            return
        if not any(os.path.exists(self.file(name)) for name in self.FILES):
            return  # nothing to keep: a new run folder
        os.makedirs(aside)
        for name in self.FILES:
            if os.path.exists(self.file(name)):
                os.replace(self.file(name), os.path.join(aside, name))

    def drop_set_aside(self):
        _remove(self.file(self.SET_ASIDE))

    # ------------------------------------------------------------------ writing

    def write_config(self, config):
        """config.yaml from a dict of configuration keys."""
        def write(tmp):
            with open(tmp, "w") as f:
                yaml.safe_dump(config, f, sort_keys=False)
        replace_atomically(self.config_path, write)

    def record_command(self, command, resumed):
        """command.json: ``command`` (argv, data files, recipe) of the call that started the
        run (what ``tools/results_table.py`` compares the configuration with). A resume keeps
        the first command and recipe, takes its inputs (data files: every other key of
        ``command``), appends its argv to ``resumed``
        and adds the settings it changed ({key: [old, new]}) to ``changed``."""
        if resumed:
            saved = self.read_command()
            changed = dict(saved.get("changed", {}), **command.get("changed", {}))
            inputs = {k: v for k, v in command.items() if k not in ("argv", "recipe", "changed")}
            command = dict(saved, **inputs, resumed=saved.get("resumed", []) + [command["argv"]],
                           **({"changed": changed} if changed else {}))
        write_json(self.file(self.COMMAND), command)

    def append_log(self, record):
        with open(self.log_path, "a") as f:
            f.write(json.dumps(record) + "\n")

    def truncate_log_after(self, epoch):
        """On resume: drop the records of epochs after ``epoch`` (they will be redone)."""
        if not os.path.exists(self.log_path):
            return
        with open(self.log_path) as f:
            kept = [line for line in f if line.strip() and _epoch_of(line) <= epoch]
        replace_atomically(self.log_path, lambda tmp: open(tmp, "w").writelines(kept))

    def save_checkpoint(self, epoch, net, optimizer_arrays, record, is_best, keep):
        """Write the checkpoint after ``epoch`` (1-based count of finished epochs): network,
        optimizer state (named NDArrays), best.params if it is the best, then the JSON record
        (with ``epoch``; ``best_epoch`` names the best so far). Keeps the last ``keep``
        checkpoints (all when ``keep`` <= 0) and always the best one."""
        os.makedirs(self.checkpoint_dir, exist_ok=True)
        params = self.checkpoint(epoch, "params")
        replace_atomically(params, lambda tmp: save_network(net, tmp))
        replace_atomically(self.checkpoint(epoch, "optimizer"),
                           lambda tmp: mx.nd.save(tmp, optimizer_arrays))
        record = dict(record, epoch=epoch)
        if is_best:
            replace_atomically(self.best_params, lambda tmp: shutil.copyfile(params, tmp))
            write_json(self.file(self.BEST_RECORD), record)
        write_json(self.checkpoint(epoch, "json"), record)
        if keep > 0:
            for old in self.checkpoint_epochs()[:-keep]:
                if old != record.get("best_epoch"):
                    self._remove_checkpoint(old)

    def _remove_checkpoint(self, epoch):
        # JSON first: a checkpoint without its record is never picked up
        for ext in ("json", "params", "optimizer", "states"):
            _remove(self.checkpoint(epoch, ext))

    def set_aside_checkpoint(self, epoch):
        """Move a checkpoint that cannot be loaded to ``checkpoints/unreadable/`` (kept for
        inspection); returns that folder."""
        bad = os.path.join(self.checkpoint_dir, "unreadable")
        os.makedirs(bad, exist_ok=True)
        for ext in ("json", "params", "optimizer", "states"):
            path = self.checkpoint(epoch, ext)
            if os.path.exists(path):
                os.replace(path, os.path.join(bad, os.path.basename(path)))
        return bad

    def repair_best(self, record):
        """After a resume from ``record``: best.params and best.json must be those of the
        epoch the record names as best. A kill between writing best.params and the epoch's
        record leaves a newer best.params; copy the named epoch's back. Returns whether a
        repair was made."""
        best_epoch = record.get("best_epoch")
        if best_epoch is None:  # written before best_epoch was recorded
            return False
        try:
            with open(self.file(self.BEST_RECORD)) as f:
                if json.load(f).get("epoch") == best_epoch:
                    return False
        except (OSError, ValueError):
            pass
        with open(self.checkpoint(best_epoch, "json")) as f:
            best_record = json.load(f)
        replace_atomically(self.best_params, lambda tmp: shutil.copyfile(
            self.checkpoint(best_epoch, "params"), tmp))
        write_json(self.file(self.BEST_RECORD), best_record)
        return True

    # ------------------------------------------------------------------ reading

    def checkpoint_epochs(self):
        """Finished epochs that have a complete checkpoint, ascending."""
        found = []
        for path in glob.glob(os.path.join(self.checkpoint_dir, "epoch-*.json")):
            m = _EPOCH_JSON.search(path)
            if not m:
                continue
            epoch = int(m.group(1))
            if os.path.exists(self.checkpoint(epoch, "params")) and any(
                    os.path.exists(self.checkpoint(epoch, e)) for e in ("optimizer", "states")):
                found.append(epoch)
        return sorted(found)

    def load_checkpoint(self, epoch, net, ctx):
        """Load the network of the checkpoint after ``epoch``. Returns (its JSON record, its
        optimizer state as {name: NDArray}, or None for an old checkpoint whose optimizer
        state is a pickled ``.states`` file). RunFolderError (one line) if a file is bad."""
        path = self.checkpoint(epoch, "json")
        try:
            with open(path) as f:
                record = json.load(f)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            raise RunFolderError(f"{path}: unreadable checkpoint record ({one_line(e)})") from None
        arrays = None
        try:
            net.load_parameters(self.checkpoint(epoch, "params"), ctx=ctx)
            if os.path.exists(self.checkpoint(epoch, "optimizer")):
                path = self.checkpoint(epoch, "optimizer")
                arrays = mx.nd.load(path)
        except Exception as e:  # MXNet raises MXNetError/AssertionError/ValueError alike
            raise RunFolderError(f"{path}: cannot load ({one_line(e)})") from None
        return record, arrays

    def read_config(self):
        """config.yaml as a dict; RunFolderError (one line) if missing or bad."""
        path = self.config_path
        try:
            with open(path) as f:
                config = yaml.safe_load(f)
        except FileNotFoundError:
            raise RunFolderError(f"{path}: missing (is {self.path or '.'} a run folder "
                                 "written by recipes/train_imagenet.py?)") from None
        except (OSError, yaml.YAMLError) as e:
            raise RunFolderError(f"{path}: not readable YAML ({one_line(e, 160)})") from None
        if not isinstance(config, dict):
            raise RunFolderError(f"{path}: expected a mapping of configuration keys")
        return config

    def read_command(self):
        """command.json as a dict; {} if the run has none (written before it existed)."""
        path = self.file(self.COMMAND)
        if not os.path.exists(path):
            return {}
        try:
            with open(path) as f:
                command = json.load(f)
        except (OSError, ValueError) as e:
            raise RunFolderError(f"{path}: not readable JSON ({one_line(e, 120)})") from None
        if not isinstance(command, dict):
            raise RunFolderError(f"{path}: expected a JSON object")
        return command

    def read_epochs(self, metrics=("val_top1", "val_top5")):
        """The "epoch" records of log.jsonl in epoch order, one per epoch (a record repeated
        after a resume: the last one wins). A last line cut short by a killed run is skipped;
        RunFolderError (one line, naming the line) for anything else that is not a record,
        or a record without the validation ``metrics`` (a transfer run logs others)."""
        path = self.log_path
        try:
            with open(path) as f:
                lines = f.readlines()
        except FileNotFoundError:
            raise RunFolderError(f"{path}: missing; the run has not logged anything yet") from None
        except OSError as e:
            raise RunFolderError(f"{path}: cannot read ({e.strerror})") from None
        by_epoch = {}
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError:
                if number == len(lines):
                    continue
                raise RunFolderError(f"{path}, line {number}: not a JSON object") from None
            if not isinstance(record, dict):
                raise RunFolderError(f"{path}, line {number}: not a JSON object")
            if record.get("type") != "epoch":
                continue
            missing = [k for k in ("epoch",) + tuple(metrics) if record.get(k) is None]
            if missing or not isinstance(record["epoch"], int):
                raise RunFolderError(f"{path}, line {number}: epoch record without "
                                     f"{', '.join(missing) or 'an integer epoch'}")
            by_epoch[record["epoch"]] = record
        if not by_epoch:
            raise RunFolderError(f"{path}: no epoch records yet (the first epoch has not "
                                 "finished)")
        return [by_epoch[e] for e in sorted(by_epoch)]


def save_network(net, path):
    """``net``'s parameters as ``net.save_parameters`` names them, from the first device's
    copy. (save_parameters averages the copies of several devices in their own dtype: FP16
    weights that 8 devices hold identically came out changed, 0.7 -> 0.6997.)"""
    mx.nd.save(path, {name: p.list_data()[0]
                      for name, p in net._collect_params_with_prefix().items()})


def _remove(path):
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


def _epoch_of(line):
    """The epoch of a log.jsonl line; a line cut short by a killed run counts as after all."""
    try:
        return json.loads(line).get("epoch", 0)
    except ValueError:
        return float("inf")


def params_of(path, hint=""):
    """The .params file a CHECKPOINT argument means: a run folder's best.params, or ``path``
    itself when it is a file. RunFolderError (one line, naming ``path``, ending in ``hint``,
    e.g. which flag to fix) otherwise."""
    if os.path.isdir(path):
        best = RunFolder(path).best_params
        if not os.path.isfile(best):
            raise RunFolderError(f"{path}: a folder without {RunFolder.BEST_PARAMS} (not a run "
                                 "folder, or no epoch has finished); pass a "
                                 f"{RunFolder.CHECKPOINTS}/epoch-NNNN.params{hint}")
        return best
    if not os.path.isfile(path):
        raise RunFolderError(f"{path}: no such file or run folder{hint}")
    return path
