"""The run folder: the one place that knows its layout, writes its files atomically and reads
them back. The trainer and every tool ask :class:`RunFolder`; no other module spells a file
name of it.

``RUN/`` (``recipes/train_imagenet.py --out RUN``)::

    config.yaml        the resolved configuration (a recipe without ``base:``)
                       (its first line: the SHA-256 of its values; a resume refuses a
                       config.yaml edited by hand)
    fingerprint.json   the values the run wrote to config.yaml, to name what an edit changed
    command.json       the command line and recipe file that started the run; resumes append
    log.jsonl          for programs: one JSON object per line, "interval" and "epoch" records
    train.log          for people: the lines the trainer prints
    checkpoints/       epoch-NNNN.params (network), .optimizer (optimizer state) and .json
                       (the epoch's record), the last k epochs and the best one
    best.params        the network of the best epoch so far, and best.json its epoch record
    .lock              held by the one process that writes the folder (gluon_tricks.locks)

Every file is written under a temporary name and renamed; an epoch's best.params is written
before its checkpoint's JSON record, and the record last, so a checkpoint counts only once
all of its files are complete, and ``kill -9`` at any moment leaves the previous state
readable (a best.params newer than the newest record is put back on resume,
:meth:`RunFolder.repair_best`). An epoch's log.jsonl record follows its checkpoint (a kill
in between: the resume logs it from the checkpoint). A write that fails (disk full) removes
its temporary file and is a one-line RunFolderError naming the file.

What the files may contain: MXNet NDArray files (``mx.nd.save``: named arrays, no code),
JSON and YAML read with safe loaders. A run folder is data, never code. Checkpoints written
before the optimizer state moved out of pickle (``epoch-NNNN.states``, MXNet's
``Trainer.save_states``) are loaded only when the user says they trust them.
"""
import contextlib
import glob
import hashlib
import json
import os
import re
import shutil

import mxnet as mx
import yaml

from ..errors import UserError, one_line
from ..locks import FileLock
from .recipe import ConfigError, load_yaml

_EPOCH_JSON = re.compile(r"epoch-(\d{4,})\.json$")
_FINGERPRINT_LINE = "# fingerprint (SHA-256 of the values below; resume checks it): "


class RunFolderError(UserError):
    """A run folder (or one of its files) that cannot be read or used; names the file."""


def replace_atomically(path, write):
    """Call ``write(tmp)`` to write ``path + '.tmp'``, then rename it over ``path``. If that
    fails the temporary is removed, ``path`` is left as it was, and a write error (disk full,
    no permission) is a RunFolderError (one line) naming ``path``."""
    tmp = path + ".tmp"
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException as e:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        reason = write_error(e)
        if reason is None:
            raise
        raise RunFolderError(f"{path}: cannot write ({reason})") from None


def write_error(e):
    """Why a write failed, if ``e`` is the file system's error (also as MXNet reports it when
    a ``.params`` file does not fit on the disk); None for any other exception."""
    if isinstance(e, OSError):
        return e.strerror or str(e)
    if isinstance(e, mx.base.MXNetError) and "FileStream" in str(e):
        return "MXNet's file stream: " + one_line(e).rpartition(": ")[2] + "; is the disk full?"
    return None


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
    FINGERPRINT = "fingerprint.json"
    LOCK = ".lock"
    COMMAND = "command.json"
    LOG = "log.jsonl"
    TEXT_LOG = "train.log"
    CHECKPOINTS = "checkpoints"
    BEST_PARAMS = "best.params"
    BEST_RECORD = "best.json"
    SET_ASIDE = "replaced"  # a run replaced by --force, until the new one's first checkpoint
    # what a run leaves; any of them means the folder holds a run
    FILES = (CHECKPOINTS, LOG, TEXT_LOG, CONFIG, FINGERPRINT, COMMAND, BEST_PARAMS,
             BEST_RECORD)

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

    def lock(self):
        """Take the folder's lock (``.lock``, made with the folder if missing) for the one
        process that writes it; RunFolderError (one line, naming the holder: host, pid, since
        when) if another holds it. Returns the function that releases it, which also removes
        the folder again if this call made it and nothing was written into it."""
        made = not os.path.isdir(self.path)
        try:
            self.make()
        except OSError as e:
            raise RunFolderError(f"{self.path}: cannot make the run folder ({e.strerror})") \
                from None
        lock = FileLock(self.file(self.LOCK), self.path, RunFolderError)

        def release():
            lock.release()
            if made:
                with contextlib.suppress(OSError):
                    os.rmdir(self.path)
        try:
            lock.acquire()
        except RunFolderError:
            release()
            raise
        return release

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
        """config.yaml from a dict of configuration keys, fingerprinted: its first line holds
        the SHA-256 of its values (in the same file, so that no kill separates the two), and
        fingerprint.json keeps the values, to name the keys a hand edit changed
        (:meth:`check_config_untouched`)."""
        text = yaml.safe_dump(config, sort_keys=False)
        written = yaml.safe_load(text)
        sha = _sha256(written)
        write_json(self.file(self.FINGERPRINT), dict(sha256=sha, config=written))
        replace_atomically(self.config_path,
                           lambda tmp: _write_text(tmp, f"{_FINGERPRINT_LINE}{sha}\n{text}"))

    def check_config_untouched(self):
        """RunFolderError (one line, naming config.yaml and the keys) if config.yaml no longer
        holds the values the run wrote there (a hand edit). Runs written before fingerprints
        were kept are not judged."""
        config = self.read_config()
        with open(self.config_path) as f:
            first = f.readline()
        if not first.startswith(_FINGERPRINT_LINE):
            return
        sha = first[len(_FINGERPRINT_LINE):].strip()
        if _sha256(config) == sha:
            return
        try:
            with open(self.file(self.FINGERPRINT)) as f:
                saved = json.load(f)
            written = saved["config"] if saved["sha256"] == sha else None
        except (OSError, ValueError, KeyError, TypeError):
            written = None
        old, new = _flat(written), _flat(config)
        keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
        shown = ", ".join(f"{k} {one_line(repr(old.get(k)), 40)} -> "
                          f"{one_line(repr(new.get(k)), 40)}" for k in keys[:4])
        if len(keys) > 4:
            shown += f" and {len(keys) - 4} more"
        raise RunFolderError(
            f"{self.config_path}: edited by hand since the run wrote it"
            f"{f' ({shown})' if written is not None else ''}; put back what the run wrote and "
            "change the keys that may change on resume with --set, or start a new run with "
            "another --out")

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
        """One line of log.jsonl; a write that fails is cut off again (no half record) and is
        a RunFolderError (one line) naming the file."""
        with open(self.log_path, "a") as f:
            size = f.tell()
            try:
                f.write(json.dumps(record) + "\n")
                f.flush()
            except OSError as e:
                with contextlib.suppress(OSError):
                    f.truncate(size)
                raise RunFolderError(f"{self.log_path}: cannot write ({e.strerror})") from None

    def log_missing_epoch(self, epoch, record):
        """On resume from the checkpoint of ``epoch``: append its log record (``record``) if a
        kill between the checkpoint and its log line left log.jsonl without it. Returns
        whether it did."""
        if record is None or self._logged(epoch):
            return False
        self.append_log(record)
        return True

    def _logged(self, epoch):
        if not os.path.exists(self.log_path):
            return False
        with open(self.log_path) as f:
            for line in f:
                with contextlib.suppress(ValueError, AttributeError):
                    r = json.loads(line)
                    if r.get("type") == "epoch" and r.get("epoch") == epoch:
                        return True
        return False

    def truncate_log_after(self, epoch):
        """On resume: drop the records of epochs after ``epoch`` (they will be redone)."""
        if not os.path.exists(self.log_path):
            return
        with open(self.log_path) as f:
            kept = [line for line in f if line.strip() and _epoch_of(line) <= epoch]
        replace_atomically(self.log_path, lambda tmp: _write_text(tmp, "".join(kept)))

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
                config = load_yaml(f.read(), path)  # bounded: no aliases, no deep nesting
        except ConfigError as e:
            raise RunFolderError(str(e)) from None
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


def _write_text(path, text):
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _sha256(config):
    """The fingerprint of configuration values: SHA-256 of their canonical JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


def _flat(config, prefix=""):
    """{"key": value, "section.key": value} of a configuration mapping."""
    flat = {}
    for key, value in (config.items() if isinstance(config, dict) else ()):
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


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
