"""Checkpoints that survive ``kill -9``: every file is written under a temporary name and
renamed, and an epoch's JSON record is written last, so a checkpoint counts only once all
of its files are complete.

Layout of ``RUN/checkpoints/``: ``epoch-NNNN.params`` (network, loadable by
``load_parameters`` of ours and, for v1b/c/d, of GluonCV), ``epoch-NNNN.states``
(optimizer state: NAG momentum and, for FP16, the FP32 master weights) and
``epoch-NNNN.json`` (epoch, position of the schedule, loss scale, best accuracy).
The best epoch's network is also kept as ``RUN/best.params`` (+ ``best.json``).
"""
import glob
import json
import os
import re
import shutil

from ..errors import UserError

_EPOCH_JSON = re.compile(r"epoch-(\d{4,})\.json$")


class CheckpointError(UserError):
    """A checkpoint that cannot be used; the message names the file."""


def _replace_via_tmp(path, write):
    tmp = path + ".tmp"
    write(tmp)
    os.replace(tmp, path)


def write_json(path, record):
    def write(tmp):
        with open(tmp, "w") as f:
            json.dump(record, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
    _replace_via_tmp(path, write)


class Checkpointer:
    """Saves, finds, loads and prunes the checkpoints of one run folder."""

    def __init__(self, run_dir, keep=3):
        self.run_dir = run_dir
        self.dir = os.path.join(run_dir, "checkpoints")
        self.keep = keep

    def _path(self, epoch, ext):
        return os.path.join(self.dir, f"epoch-{epoch:04d}.{ext}")

    def save(self, epoch, net, trainer, record, is_best):
        """Write the checkpoint after ``epoch`` (1-based count of finished epochs)."""
        os.makedirs(self.dir, exist_ok=True)
        params = self._path(epoch, "params")
        _replace_via_tmp(params, net.save_parameters)
        _replace_via_tmp(self._path(epoch, "states"), trainer.save_states)
        record = dict(record, epoch=epoch)
        write_json(self._path(epoch, "json"), record)
        if is_best:
            _replace_via_tmp(os.path.join(self.run_dir, "best.params"),
                             lambda tmp: shutil.copyfile(params, tmp))
            write_json(os.path.join(self.run_dir, "best.json"), record)
        self._prune()

    def epochs(self):
        """Finished epochs that have a complete checkpoint, ascending."""
        found = []
        for path in glob.glob(os.path.join(self.dir, "epoch-*.json")):
            m = _EPOCH_JSON.search(path)
            if m and all(os.path.exists(self._path(int(m.group(1)), e))
                         for e in ("params", "states")):
                found.append(int(m.group(1)))
        return sorted(found)

    def latest(self):
        epochs = self.epochs()
        return epochs[-1] if epochs else None

    def load(self, epoch, net, trainer, ctx):
        """Restore network and optimizer state; returns the epoch's JSON record."""
        path = self._path(epoch, "json")
        try:
            with open(path) as f:
                record = json.load(f)
        except (OSError, ValueError) as e:
            raise CheckpointError(f"{path}: unreadable checkpoint record ({e})") from None
        for ext, load in (("params", lambda p: net.load_parameters(p, ctx=ctx)),
                          ("states", trainer.load_states)):
            try:
                load(self._path(epoch, ext))
            except Exception as e:  # MXNet raises MXNetError/AssertionError/ValueError alike
                raise CheckpointError(f"{self._path(epoch, ext)}: cannot load "
                                      f"({' '.join(str(e).split())[:200]})") from None
        return record

    def _prune(self):
        for epoch in self.epochs()[:-self.keep] if self.keep > 0 else []:
            # JSON first: a checkpoint without its record is never picked up
            for ext in ("json", "params", "states"):
                try:
                    os.remove(self._path(epoch, ext))
                except FileNotFoundError:
                    pass
