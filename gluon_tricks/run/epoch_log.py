"""A run folder's log.jsonl, for programs: one JSON object per line, "interval" records
(progress within an epoch), "epoch" records (what the epoch measured) and whatever else a
trainer logs: the classification trainer a "plan" record (the batch plan of the devices it
trains on from its ``epoch``) at each start and resume, a transfer run a "backbone" record
(the weights it started from and their validation top-1). Appended one record at a time; a
resume drops the records of the epochs it redoes and adds an epoch's record from its
checkpoint if a kill came between the two (the checkpoint is written first). The report
tools read the epoch, plan and backbone records back.
"""
import contextlib
import json
import os

from .folder import RunFolderError, replace_atomically, write_text


class EpochLog:
    """The log.jsonl file ``path`` of a run folder
    (:attr:`~gluon_tricks.run.folder.RunFolder.log_path`)."""

    def __init__(self, path):
        self.path = path

    def append(self, record):
        """One line of log.jsonl; a write that fails is cut off again (no half record) and is
        a RunFolderError (one line) naming the file."""
        with open(self.path, "a") as f:
            size = f.tell()
            try:
                f.write(json.dumps(record) + "\n")
                f.flush()
            except OSError as e:
                with contextlib.suppress(OSError):
                    f.truncate(size)
                raise RunFolderError(f"{self.path}: cannot write ({e.strerror})") from None

    def append_missing_epoch(self, epoch, record):
        """On resume from the checkpoint of ``epoch``: append its log record (``record``) if a
        kill between the checkpoint and its log line left log.jsonl without it. Returns
        whether it did."""
        if record is None or self.record_of(epoch) is not None:
            return False
        self.append(record)
        return True

    def record_of(self, epoch):
        """The (last) "epoch" record of ``epoch``, or None if log.jsonl has none."""
        found = [r for r in self.records("epoch") if r.get("epoch") == epoch]
        return found[-1] if found else None

    def last_record(self, kind):
        """The last record of type ``kind`` (e.g. "backbone"), or None if log.jsonl has
        none."""
        found = self.records(kind)
        return found[-1] if found else None

    def _records(self):
        """The JSON objects of log.jsonl in order; other lines (one cut short by a kill) and
        a missing file are passed over."""
        if not os.path.exists(self.path):
            return
        with open(self.path) as f:
            for line in f:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue
                if isinstance(record, dict):
                    yield record

    def truncate_after(self, epoch):
        """On resume: drop the records of epochs after ``epoch`` (they will be redone)."""
        if not os.path.exists(self.path):
            return
        with open(self.path) as f:
            kept = [line for line in f if line.strip() and _epoch_of(line) <= epoch]
        replace_atomically(self.path, lambda tmp: write_text(tmp, "".join(kept)))

    def records(self, kind):
        """The records of type ``kind`` in file order; [] without a log (lines that are not
        JSON objects are passed over: :meth:`read_epochs` names them)."""
        return [r for r in self._records() if r.get("type") == kind]

    def read_epochs(self, metrics=("val_top1", "val_top5")):
        """The "epoch" records in epoch order, one per epoch (a record repeated after a
        resume: the last one wins). A last line cut short by a killed run is skipped;
        RunFolderError (one line, naming the line) for anything else that is not a record,
        or a record without the validation ``metrics`` (a transfer run logs others)."""
        path = self.path
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


def _epoch_of(line):
    """The epoch of a log.jsonl line; a line cut short by a killed run counts as after all."""
    try:
        return json.loads(line).get("epoch", 0)
    except ValueError:
        return float("inf")
