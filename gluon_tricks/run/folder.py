"""The run folder: the one place that knows its layout, writes its files atomically, holds
its lock and keeps its configuration. The trainer and every tool ask :class:`RunFolder`
(its checkpoints: :class:`~gluon_tricks.run.checkpoints.Checkpoints`, its log.jsonl:
:class:`~gluon_tricks.run.epoch_log.EpochLog`); no other module spells a file name of it.

``RUN/`` (``recipes/train_imagenet.py --out RUN``)::

    config.yaml        the resolved configuration (a recipe without ``base:``)
                       (its first line: the SHA-256 of its values; a resume refuses a
                       config.yaml edited by hand)
    fingerprint.json   the values the run wrote to config.yaml, to name what an edit changed
    command.json       the command line and recipe file that started the run; resumes append
    log.jsonl          for programs: one JSON object per line, "interval" and "epoch" records
                       (and a transfer run's "backbone" record)
    train.log          for people: the lines the trainer prints
    checkpoints/       epoch-NNNN.params (network), .optimizer (optimizer state) and .json
                       (the epoch's record), the last k epochs and the best one
    best.params        the network of the best epoch so far, and best.json its epoch record
    .lock              held by the one process that writes the folder (gluon_tricks.locks)

Every file is written under a temporary name and renamed (:func:`replace_atomically`), so
``kill -9`` at any moment leaves the previous state readable. A write that fails (disk
full) removes its temporary file and is a one-line RunFolderError naming the file.

What the files may contain: MXNet NDArray files (``mx.nd.save``: named arrays, no code),
JSON and YAML read with safe loaders. A run folder is data, never code.
"""
import contextlib
import hashlib
import json
import os
import shutil

import mxnet as mx
import yaml

from ..errors import UserError, one_line
from ..locks import FileLock
from .recipe import ConfigError, config_diff, load_yaml

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


def write_text(path, text):
    """``text`` at ``path``, flushed to disk (not atomic: pass it to
    :func:`replace_atomically`)."""
    with open(path, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def remove(path):
    """Remove the file or folder ``path``, if there is one."""
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.exists(path):
        os.remove(path)


class RunFolder:
    """One run folder ``path``: its file names, its lock, what it holds (and setting a
    replaced run aside), its configuration with the fingerprint, and command.json."""

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
        self.name = os.path.basename(os.path.normpath(path))  # the folder's own name
        self.config_path = self.file(self.CONFIG)
        self.log_path = self.file(self.LOG)
        self.text_log_path = self.file(self.TEXT_LOG)
        self.checkpoint_dir = self.file(self.CHECKPOINTS)
        self.best_params = self.file(self.BEST_PARAMS)
        self.best_record = self.file(self.BEST_RECORD)

    def file(self, name):
        return os.path.join(self.path, name)

    # ------------------------------------------------------------------ the folder itself

    def holds_run(self):
        return os.path.isdir(self.path) and any(
            os.path.exists(self.file(f)) for f in (self.CONFIG, self.LOG, self.CHECKPOINTS))

    def lock(self):
        """Take the folder's lock (``.lock``, made with the folder if missing) for the one
        process that writes it; RunFolderError (one line, naming the holder: host, pid, since
        when) if another holds it. Returns the function that releases it, which also removes
        the folder again if this call made it and nothing was written into it."""
        made = not os.path.isdir(self.path)
        try:
            os.makedirs(self.path, exist_ok=True)
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

    def check_layout(self, force):
        """RunFolderError (one line, naming the file) for what a run would write through or
        delete that is not a run's: a file named as a run's in a folder that holds no run
        (config.yaml or fingerprint.json, what a run writes first; even with ``force``: it
        would be deleted), and, unless ``force`` replaces them, a ``checkpoints`` that is
        not a folder or a train.log / log.jsonl that is a symbolic link (appended through)."""
        present = [name for name in self.FILES if os.path.lexists(self.file(name))]
        if present and self.CONFIG not in present and self.FINGERPRINT not in present:
            raise RunFolderError(f"{self.file(present[0])}: not a run's file ({self.path} "
                                 "holds no run); move it away or choose another --out")
        if force:
            return
        if os.path.lexists(self.checkpoint_dir) and not os.path.isdir(self.checkpoint_dir):
            raise RunFolderError(f"{self.checkpoint_dir}: not a folder (the run keeps its "
                                 "checkpoints there); move it away, or replace the run with "
                                 "--force")
        for path in (self.text_log_path, self.log_path):
            if os.path.islink(path):
                raise RunFolderError(f"{path}: a symbolic link; a run appends only to a file "
                                     "of its own: replace the link with the file it names")

    def clear(self):
        """Remove every file a run leaves; other files are kept."""
        for name in self.FILES:
            remove(self.file(name))

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
        remove(self.file(self.SET_ASIDE))

    # ------------------------------------------------------------------ configuration

    def write_config(self, config):
        """config.yaml from a dict of configuration keys, fingerprinted: its first line holds
        the SHA-256 of its values (in the same file, so that no kill separates the two), and
        fingerprint.json, written first, keeps the values, to name the keys a hand edit
        changed (:meth:`check_config_untouched`)."""
        text = yaml.safe_dump(config, sort_keys=False)
        written = yaml.safe_load(text)
        sha = _sha256(written)
        previous = self._fingerprint().get("sha256") if os.path.isfile(self.config_path) \
            else None
        write_json(self.file(self.FINGERPRINT), dict(sha256=sha, config=written,
                                                     previous_sha256=previous))
        replace_atomically(self.config_path,
                           lambda tmp: write_text(tmp, f"{_FINGERPRINT_LINE}{sha}\n{text}"))

    def check_config_untouched(self):
        """RunFolderError (one line, naming the file and the keys) unless config.yaml holds
        the values fingerprint.json says the run wrote there (whatever config.yaml's first
        line says: deleting or rewriting it lets no edit through), or if the folder has no
        readable fingerprint.json to check it against. A kill between the two files of
        :meth:`write_config` leaves the config the run wrote before, which is accepted."""
        config = self.read_config()
        saved = self._fingerprint()
        written = saved.get("config")
        if not isinstance(written, dict) or not isinstance(saved.get("sha256"), str):
            raise RunFolderError(f"{self.file(self.FINGERPRINT)}: missing or not the trainer's, "
                                 f"so {self.CONFIG} cannot be checked (every run of this "
                                 "trainer writes one); start a new run with another --out")
        sha = _sha256(config)
        if sha == saved["sha256"] or (sha == saved.get("previous_sha256")
                                      and sha == _first_line_sha(self.config_path)):
            return
        changed = config_diff(written, config)
        shown = ", ".join(f"{k} {one_line(repr(old), 40)} -> {one_line(repr(new), 40)}"
                          for k, (old, new) in list(changed.items())[:4])
        if len(changed) > 4:
            shown += f" and {len(changed) - 4} more"
        raise RunFolderError(
            f"{self.config_path}: edited by hand since the run wrote it"
            f"{f' ({shown})' if shown else ''}; put back what the run wrote and "
            "change the keys that may change on resume with --set, or start a new run with "
            "another --out")

    def _fingerprint(self):
        """fingerprint.json as a dict; {} if it is missing or unreadable."""
        try:
            with open(self.file(self.FINGERPRINT)) as f:
                saved = json.load(f)
        except (OSError, ValueError):
            return {}
        return saved if isinstance(saved, dict) else {}

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

    # ------------------------------------------------------------------ command.json

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

    def read_command(self):
        """command.json as a dict; {} if the run has none (one started from Python, not
        from a command line)."""
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


def _first_line_sha(config_path):
    """The SHA-256 that config.yaml's first line holds, or None."""
    with open(config_path) as f:
        first = f.readline()
    return first[len(_FINGERPRINT_LINE):].strip() if first.startswith(_FINGERPRINT_LINE) \
        else None


def _sha256(config):
    """The fingerprint of configuration values: SHA-256 of their canonical JSON."""
    return hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()


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
