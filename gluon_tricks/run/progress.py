"""Progress lines within a training epoch, the same for every trainer (as torchvision's
``MetricLogger.log_every``)::

    progress = Progress(run_log, epoch, batches_per_epoch, cfg.log_interval, cfg.batch_size)
    for batch_index, batch in progress.log_every(batches):
        ...                                  # one update
        progress.update(lr, mean_loss)       # mean_loss: called only for a progress line

A line (for people) and an "interval" record (log.jsonl) follow the batches that
:func:`logs_progress` names; reading the mean loss there is the line's one host
synchronisation, so that the updates between lines run without waiting on the device.
It is also where a diverged run stops: a mean loss that is not finite ends the epoch with
one line (:class:`Diverged`) naming the batches since the last good line.
"""
import math
import time

from ..errors import RunError

DIVERGED_ADVICE = ("the run diverged; lower base_lr_per_256 (or wd) and start again with "
                   "--force, or --resume from the last good checkpoint")


class Diverged(RunError):
    """A training value that is no longer finite (``what``: the loss, the weights, the FP16
    loss scale) and, if known, ``where`` (the epoch and batches): one line for both
    precisions, ending in what to do. No checkpoint is written after it."""

    def __init__(self, what, where=None):
        self.what = what
        super().__init__(f"{where + ': ' if where else ''}{what}: {DIVERGED_ADVICE}")


def logs_progress(batch_index, batches_per_epoch, log_interval):
    """Whether a progress line follows batch ``batch_index`` (1-based) of an epoch: every
    ``log_interval`` batches and, in an epoch shorter than 4 intervals, at its quarter
    points (the batch where each quarter is complete), so that a small set shows progress
    within an epoch too."""
    if batch_index % log_interval == 0:
        return True
    quarter_done = 4 * batch_index // batches_per_epoch > \
        4 * (batch_index - 1) // batches_per_epoch
    return batches_per_epoch < 4 * log_interval and quarter_done


class Progress:
    """The progress lines of epoch ``epoch`` (0-based) in ``run_log``
    (:class:`~gluon_tricks.run.lifecycle.RunLog`): ``batches_per_epoch`` updates of
    ``batch_size`` images each (over all ranks), a line every ``log_interval`` of them."""

    def __init__(self, run_log, epoch, batches_per_epoch, log_interval, batch_size):
        self.run_log, self.epoch = run_log, epoch
        self.batches_per_epoch, self.log_interval = batches_per_epoch, log_interval
        self.batch_size = batch_size
        self.lr, self.mean_loss = None, None
        self.batch_index, self.logged = 0, 0  # the batch done, and the last one logged

    def update(self, lr, mean_loss):
        """After each update: its learning rate, and a function of no argument that returns
        the epoch's mean training loss so far (a float)."""
        self.lr, self.mean_loss = lr, mean_loss

    def log_every(self, batches):
        """(batch_index from 1, batch) for each of ``batches``; once the loop is done with a
        batch that :func:`logs_progress` names, its line and record: lr, mean loss and
        images/s since the previous line; :class:`Diverged` instead if the mean loss is not
        finite."""
        interval_tic = time.time()
        for batch_index, batch in enumerate(batches, start=1):
            self.batch_index = batch_index
            yield batch_index, batch
            if logs_progress(batch_index, self.batches_per_epoch, self.log_interval):
                mean_loss = self.mean_loss()
                if not math.isfinite(mean_loss):
                    raise self.diverged(f"training loss {mean_loss}")
                logged, self.logged = self.logged, batch_index
                speed = (batch_index - logged) * self.batch_size / (time.time() - interval_tic)
                self.run_log.info("epoch %d batch %d/%d lr %.5g loss %.4f %.1f samples/s",
                                  self.epoch + 1, batch_index, self.batches_per_epoch, self.lr,
                                  mean_loss, speed)
                self.run_log.record(type="interval", epoch=self.epoch + 1, batch=batch_index,
                                    lr=self.lr, train_loss=mean_loss, samples_per_sec=speed)
                interval_tic = time.time()

    def diverged(self, what):
        """:class:`Diverged` for ``what`` seen in or after the current batch, naming the epoch and the
        batches since the last progress line (whose loss was finite)."""
        first, last = min(self.logged + 1, self.batch_index), self.batch_index
        batches = f"batch {last}" if first == last else f"batches {first}-{last}"
        return Diverged(what, f"epoch {self.epoch + 1}, {batches} of {self.batches_per_epoch}")
