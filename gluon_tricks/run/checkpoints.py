"""A run folder's checkpoints (``checkpoints/epoch-NNNN.{params,optimizer,json}``) and its
best network (``best.params``, ``best.json``): save, keep the last k and the best, set an
unreadable one aside, load, and list the epochs that have one, as timm's
``CheckpointSaver`` does for its runs.

An epoch's best.params is written before its checkpoint's JSON record, and the record last,
so a checkpoint counts only once all of its files are complete; a best.params newer than
the newest record (a kill in between) is put back on resume (:meth:`Checkpoints.repair_best`).
"""
import glob
import json
import os
import re
import shutil

import mxnet as mx

from ..errors import one_line
from ..models.weights import WeightsError, check_finite, loaded_values
from .folder import RunFolderError, remove, replace_atomically, write_json

_EPOCH_JSON = re.compile(r"epoch-(\d{4,})\.json$")
_EXTENSIONS = ("json", "params", "optimizer")  # the record first: without it, no checkpoint


class Checkpoints:
    """The checkpoints and best network of the :class:`~gluon_tricks.run.folder.RunFolder`
    ``folder``."""

    def __init__(self, folder):
        self.folder = folder
        self.dir = folder.checkpoint_dir

    def path(self, epoch, ext):
        """``checkpoints/epoch-NNNN.<ext>`` of the checkpoint after ``epoch`` epochs."""
        return os.path.join(self.dir, f"epoch-{epoch:04d}.{ext}")

    def save(self, epoch, net, optimizer_arrays, record, is_best, keep):
        """Write the checkpoint after ``epoch`` (1-based count of finished epochs): network,
        optimizer state (named NDArrays), best.params if it is the best, then the JSON record
        (with ``epoch``; ``best_epoch`` names the best so far). Keeps the last ``keep``
        checkpoints (all when ``keep`` <= 0) and always the best one."""
        os.makedirs(self.dir, exist_ok=True)
        params = self.path(epoch, "params")
        replace_atomically(params, lambda tmp: save_network(net, tmp))
        replace_atomically(self.path(epoch, "optimizer"),
                           lambda tmp: mx.nd.save(tmp, optimizer_arrays))
        record = dict(record, epoch=epoch)
        if is_best:
            replace_atomically(self.folder.best_params, lambda tmp: shutil.copyfile(params, tmp))
            write_json(self.folder.best_record, record)
        write_json(self.path(epoch, "json"), record)
        if keep > 0:
            for old in self.epochs()[:-keep]:
                if old != record.get("best_epoch"):
                    for ext in _EXTENSIONS:
                        remove(self.path(old, ext))

    def set_aside(self, epoch):
        """Move a checkpoint that cannot be loaded to ``checkpoints/unreadable/`` (kept for
        inspection); returns that folder."""
        bad = os.path.join(self.dir, "unreadable")
        os.makedirs(bad, exist_ok=True)
        for ext in _EXTENSIONS:
            path = self.path(epoch, ext)
            if os.path.exists(path):
                os.replace(path, os.path.join(bad, os.path.basename(path)))
        return bad

    def repair_best(self, record):
        """After a resume from ``record``: best.params and best.json must be those of the
        epoch the record names as best. A kill between writing best.params and the epoch's
        record leaves a newer best.params; copy the named epoch's back. Returns whether a
        repair was made."""
        best_epoch = record.get("best_epoch")
        if best_epoch is None:  # no epoch has been a best yet
            return False
        try:
            with open(self.folder.best_record) as f:
                if json.load(f).get("epoch") == best_epoch:
                    return False
        except (OSError, ValueError):
            pass
        with open(self.path(best_epoch, "json")) as f:
            best_record = json.load(f)
        replace_atomically(self.folder.best_params, lambda tmp: shutil.copyfile(
            self.path(best_epoch, "params"), tmp))
        write_json(self.folder.best_record, best_record)
        return True

    def epochs(self):
        """Finished epochs that have a checkpoint (its record, written last), ascending. A
        file missing beside a record (deleted since) makes :meth:`load` refuse it, by name."""
        found = []
        for path in glob.glob(os.path.join(self.dir, "epoch-*.json")):
            m = _EPOCH_JSON.search(path)
            if m:
                found.append(int(m.group(1)))
        return sorted(found)

    def load(self, epoch, net, ctx):
        """Load the network of the checkpoint after ``epoch``. Returns (its JSON record, its
        optimizer state as {name: NDArray}). RunFolderError (one line) if a file is bad or
        the network holds a NaN or an infinity."""
        path = self.path(epoch, "json")
        try:
            with open(path) as f:
                record = json.load(f)
            if not isinstance(record, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as e:
            raise RunFolderError(f"{path}: unreadable checkpoint record ({one_line(e)})") from None
        for ext in ("params", "optimizer"):
            if not os.path.isfile(self.path(epoch, ext)):
                raise RunFolderError(f"{self.path(epoch, ext)}: missing")
        try:
            path = self.path(epoch, "params")
            net.load_parameters(path, ctx=ctx)
            check_finite(loaded_values(net), path)  # a diverged run's weights are no start
            path = self.path(epoch, "optimizer")
            arrays = mx.nd.load(path)
        except WeightsError as e:
            raise RunFolderError(str(e)) from None
        except Exception as e:  # MXNet raises MXNetError/AssertionError/ValueError alike
            raise RunFolderError(f"{path}: cannot load ({one_line(e)})") from None
        return record, arrays


def save_network(net, path):
    """``net``'s parameters as ``net.save_parameters`` names them, from the first device's
    copy: save_parameters averages the copies of several devices in their own dtype, which
    changes FP16 weights that every device holds identically."""
    mx.nd.save(path, {name: p.list_data()[0]
                      for name, p in net._collect_params_with_prefix().items()})
