"""A run folder as the report tools see it: its configuration, its epoch records and the
recipe it came from (:class:`~gluon_tricks.runfolder.RunFolder` reads the files).

Epoch records carry ``epoch`` (1-based), ``val_top1``/``val_top5`` as fractions in [0, 1],
``samples_per_sec``, ...
"""
import os
from dataclasses import dataclass, field

import yaml

from ..runfolder import RunFolder, RunFolderError
from ..train.config import ConfigError, from_saved, resolve


@dataclass
class Run:
    """One run folder, read.

    path : the folder.
    config : config.yaml as a dict of every TrainConfig key (model, epochs, paper, data, ...),
        old spellings read as the current keys.
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


def load_run(path):
    """Read the run folder ``path``; RunFolderError (one line) if it is not one."""
    if not os.path.isdir(path):
        raise RunFolderError(f"{path}: not a run folder (no such directory)")
    folder = RunFolder(path)
    config = from_saved(folder.read_config(), folder.config_path).to_dict()
    return Run(path=path, config=config, epochs=folder.read_epochs(),
               command=folder.read_command())
