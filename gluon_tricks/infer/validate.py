"""Score any weights on a validation .rec: top-1, top-5, images, images/s.

The numbers are the trainer's own (the same pipeline, :func:`gluon_tricks.train.loop.
evaluate`: every record of the file exactly once, the short last batch padded and trimmed),
for our checkpoints and for GluonCV's ``.params`` files alike. GluonCV's
``verify_pretrained.py`` reads a .rec with ``round_batch`` on and does not trim the last
batch, so when the number of images is not a multiple of its batch size it also counts the
wrapped-around images again; with a batch size that divides the number of images, both
count the same images and agree exactly (tested).
"""
import sys
import time

import mxnet as mx

from .. import data as gt_data
from ..run.parallel import SingleProcess
from ..train.metrics import evaluate
from ..train.nets import hybridize_student
from .checkpoint import load_net


class _Counted:
    """A validation loader that reports the images it has served (for a progress bar)."""

    def __init__(self, loader, report):
        self._loader, self._report = loader, report
        self.batch_size = loader.batch_size

    def epoch(self, epoch):
        seen = 0
        for data, label in self._loader.epoch(epoch):
            seen += data.shape[0]
            self._report(seen)
            yield data, label


def progress_bar(total, stream=None):
    """A function that draws "validating  1234/50000 images" in place on a terminal, and
    does nothing elsewhere (logs, pipes)."""
    stream = stream or sys.stderr
    if not stream.isatty():
        return lambda seen: None

    def report(seen):
        end = "\n" if seen >= total else ""
        stream.write(f"\rvalidating {seen:>{len(str(total))}}/{total} images{end}")
        stream.flush()
    return report


def validate(ckpt, rec_val, batch_size=100, contexts=None, progress=None):
    """Top-1 and top-5 of the network of ``ckpt`` (:class:`gluon_tricks.weights.Checkpoint`)
    over every image of ``rec_val``, through its validation pipeline, in inference mode.

    contexts : devices (default: the CPU); progress : called with the images served so far.
    Returns {"top1", "top5", "images", "seconds", "images_per_s", "params", "model",
    "classes", "input_size", "resize"}. Raises DataError/WeightsError (one line).
    """
    contexts = contexts or [mx.cpu()]
    # MXNet's iterator refuses a batch larger than the set (a C++ traceback); every record
    # is scored once whatever the batch size
    batch_size = min(batch_size, gt_data.check_rec(rec_val))
    # the network's classes are its weights': a set that does not fit them is the wrong set
    gt_data.check_classes(rec_val, ckpt.classes, ckpt.classes_file)
    gt_data.check_labels(rec_val, ckpt.classes, flag=None)
    # MXNet's iterator ends the process on an undecodable image (SIGFPE, no message)
    gt_data.check_images(rec_val)
    loader = gt_data.make_loader(ckpt.data, rec_val, batch_size, train=False)
    if progress is not None:
        loader = _Counted(loader, progress)
    net = load_net(ckpt, contexts)
    hybridize_student(net, contexts)  # as the trainer does, so its numbers come out
    tic = time.time()
    top1, top5, images = evaluate(net, loader, contexts, "float32", SingleProcess())
    seconds = time.time() - tic
    return dict(top1=top1, top5=top5, images=images, seconds=seconds,
                images_per_s=images / seconds if seconds > 0 else float("nan"),
                params=ckpt.params, model=ckpt.model, classes=ckpt.classes,
                input_size=ckpt.data.input_size, resize=ckpt.data.resize)
