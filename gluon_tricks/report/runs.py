"""Read what the trainer leaves in a run folder, with one-line errors for bad folders.

A run folder (``recipes/train_imagenet.py --out RUN``) holds ``config.yaml`` (the resolved
:class:`~gluon_tricks.train.config.TrainConfig`), ``log.jsonl`` (one JSON object per line;
``"type": "epoch"`` records carry ``epoch`` (1-based), ``val_top1``/``val_top5`` as
fractions in [0, 1], ``samples_per_sec``, ...), ``command.json`` (the command line and
recipe file that started it), ``best.params`` and ``best.json``.
"""
import json
import os
from dataclasses import dataclass, field

import yaml

from ..errors import UserError


class RunFolderError(UserError):
    """A run folder (or one of its files) that cannot be read; the message names it."""


@dataclass
class Run:
    """One run folder, read.

    path : the folder.
    config : config.yaml as a dict (keys of TrainConfig: model, epochs, paper, ...).
    epochs : the "epoch" records of log.jsonl in epoch order, one per epoch (a record
        repeated after a resume: the last one wins).
    """
    path: str
    config: dict
    epochs: list
    command: dict = field(default_factory=dict)

    @property
    def name(self):
        """The folder's own name."""
        return os.path.basename(os.path.normpath(self.path))

    @property
    def paper_key(self):
        """The paper row this run reproduces ("table6/resnet50_v1d/cosine"), or None."""
        return self.config.get("paper") or None

    @property
    def recipe(self):
        """The recipe file the run was started from (command.json), or None if unknown."""
        return self.command.get("recipe") or None

    def changes(self):
        """The configuration keys in which the run departs from its recipe file (``--set``,
        ``--epochs``, ``--batch-size``), sorted, ``data.`` keys by their dotted name; None
        if the recipe is unknown or no longer resolves (moved, edited into an error)."""
        if not self.recipe:
            return None
        from ..train.config import ConfigError, resolve
        try:
            planned = resolve(self.recipe).to_dict()
        except (ConfigError, OSError):
            return None
        return config_changes(planned, self.config)

    @property
    def label(self):
        """A legend label: the recipe's description, else its paper key, else the folder."""
        return self.config.get("description") or self.paper_key or self.name

    def series(self, key):
        """(epochs, values) of one field of the epoch records, skipping null values;
        epochs 1-based ints, values as logged (accuracies are fractions)."""
        pairs = [(r["epoch"], r[key]) for r in self.epochs if r.get(key) is not None]
        return [e for e, _ in pairs], [v for _, v in pairs]

    @property
    def final(self):
        """The last epoch record."""
        return self.epochs[-1]

    @property
    def best(self):
        """The epoch record of highest val_top1 (earliest on ties), as best.json keeps it."""
        return max(self.epochs, key=lambda r: (r["val_top1"], -r["epoch"]))


def _plain(value):
    """A value as YAML reads it back (tuples -> lists, ...), so a dataclass and the
    config.yaml written from it compare equal."""
    return yaml.safe_load(yaml.safe_dump(value))


def config_changes(planned, saved):
    """Sorted keys whose values differ between two configurations (dicts of TrainConfig
    fields); a nested mapping (``data``) is compared key by key as ``data.<key>``."""
    planned, saved = _plain(planned), _plain(saved)
    changed = []
    for key in set(planned) | set(saved):
        a, b = planned.get(key), saved.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            changed += [f"{key}.{k}" for k in set(a) | set(b) if a.get(k) != b.get(k)]
        elif a != b:
            changed.append(key)
    return sorted(changed)


def read_command(path):
    """command.json of a run folder as a dict; {} if the run has none (written before it
    existed) or it cannot be read, as it only adds the recipe column of a table."""
    try:
        with open(path) as f:
            command = json.load(f)
    except (OSError, ValueError):
        return {}
    return command if isinstance(command, dict) else {}


def read_config(path):
    """config.yaml of a run folder as a dict; RunFolderError (one line) if missing or bad."""
    try:
        with open(path) as f:
            config = yaml.safe_load(f)
    except FileNotFoundError:
        raise RunFolderError(f"{path}: missing (is {os.path.dirname(path) or '.'} a run "
                             "folder written by recipes/train_imagenet.py?)") from None
    except (OSError, yaml.YAMLError) as e:
        raise RunFolderError(f"{path}: not readable YAML ({' '.join(str(e).split())[:160]})"
                             ) from None
    if not isinstance(config, dict):
        raise RunFolderError(f"{path}: expected a mapping of configuration keys")
    return config


def _read_epochs(path):
    by_epoch = {}
    try:
        with open(path) as f:
            lines = f.readlines()
    except FileNotFoundError:
        raise RunFolderError(f"{path}: missing; the run has not logged anything yet") from None
    except OSError as e:
        raise RunFolderError(f"{path}: cannot read ({e.strerror})") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            if number == len(lines):  # a line cut short by a killed run: not an error
                continue
            raise RunFolderError(f"{path}, line {number}: not a JSON object") from None
        if not isinstance(record, dict):
            raise RunFolderError(f"{path}, line {number}: not a JSON object")
        if record.get("type") != "epoch":
            continue
        missing = [k for k in ("epoch", "val_top1", "val_top5") if record.get(k) is None]
        if missing or not isinstance(record["epoch"], int):
            raise RunFolderError(f"{path}, line {number}: epoch record without "
                                 f"{', '.join(missing) or 'an integer epoch'}")
        by_epoch[record["epoch"]] = record
    if not by_epoch:
        raise RunFolderError(f"{path}: no epoch records yet (the first epoch has not finished)")
    return [by_epoch[e] for e in sorted(by_epoch)]


def load_run(path):
    """Read the run folder ``path``; RunFolderError (one line) if it is not one."""
    if not os.path.isdir(path):
        raise RunFolderError(f"{path}: not a run folder (no such directory)")
    return Run(path=path, config=read_config(os.path.join(path, "config.yaml")),
               epochs=_read_epochs(os.path.join(path, "log.jsonl")),
               command=read_command(os.path.join(path, "command.json")))
