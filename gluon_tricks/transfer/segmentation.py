"""FCN on ADE20K (paper Table 9), on GluonCV's own pieces: its dataset class (with its
random scale, crop, flip and blur), its loss with the auxiliary head, its data-parallel
model and criterion (threads per device, as its SyncBatchNorm needs) and its
segmentation metric. Only the loop around them is ours.

Data: ``ROOT/ADEChallengeData2016`` as the challenge archive unpacks (GluonCV's
``scripts/datasets/ade20k.py`` writes it to ``~/.mxnet/datasets/ade``); training on its
training images, validation on its validation images, each centre-cropped to the crop size
after resizing (GluonCV's ``mode="val"``, what its ``train.py`` validates with every epoch).
The digit scenes (``tools/make_digit_scenes.py``) have the same layout, 11 classes.

A property of GluonCV's loss worth knowing (tests/transfer/test_segmentation.py shows it):
it is built on MXNet's ``SoftmaxOutput``, whose backward pass ignores the gradient it is
handed and returns (softmax - one-hot) / labelled pixels of the device's batch. So
``aux_weight`` scales the logged loss but not the auxiliary head's gradient, and with
``Trainer.step(batch_size)`` dividing once more, the update is the per-pixel mean gradient
times devices / batch_size. The published lr (0.01 at batch 16 on 4 devices) is tuned to
exactly that, so we keep it rather than "fix" it.
"""
import os

import mxnet as mx

from ..errors import RunError
from .nets import fcn

NUM_CLASSES = {"ade20k": 150, "digits": 11}
# GluonCV's segmentation scripts normalise with ImageNet's mean and std on [0, 1] pixels
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
METRICS = ("val_miou", "val_pixacc")  # the first is the one the best checkpoint is chosen by


def check_data(root, dataset):
    """RunError (one line) naming the first image or annotation folder missing or empty."""
    for kind in ("images", "annotations"):
        for split in ("training", "validation"):
            path = os.path.join(root, "ADEChallengeData2016", kind, split)
            if not os.path.isdir(path) or not os.listdir(path):
                raise RunError(f"{path}: missing or empty; --data takes the folder holding "
                               "ADEChallengeData2016/, as GluonCV's scripts/datasets/"
                               "ade20k.py writes it")


class Segmentation:
    """The segmentation task of a transfer run: network, data, one update, validation."""
    metrics = METRICS

    def __init__(self, cfg, root, contexts):
        self.cfg, self.root, self.contexts = cfg, root, contexts
        self.nclass = NUM_CLASSES[cfg.dataset]
        self.net = None

    def build_net(self, params):
        """FCN on the backbone ``params`` (None: random); SyncBatchNorm over the devices
        with ``syncbn`` and several devices, as GluonCV's ``--syncbn``."""
        cfg, ctx = self.cfg, self.contexts
        norm = {}
        if cfg.syncbn and len(ctx) > 1 and ctx[0].device_type == "cpu":
            # two CPU contexts share the CPU's engine workers and wait on each other forever
            raise RunError("syncbn needs GPUs (on several CPU contexts MXNet's SyncBatchNorm "
                           "never returns); --set syncbn=false")
        if cfg.syncbn and len(ctx) > 1:
            norm = dict(norm_layer=mx.gluon.contrib.nn.SyncBatchNorm,
                        norm_kwargs={"num_devices": len(ctx)})
        net = fcn(cfg.backbone_model, params, self.nclass, aux=cfg.aux, ctx=ctx[0],
                  base_size=cfg.base_size, crop_size=cfg.crop_size, **norm)
        net.collect_params().reset_ctx(ctx)
        from gluoncv.loss import MixSoftmaxCrossEntropyLoss
        from gluoncv.model_zoo.segbase import SegEvalModel
        from gluoncv.utils.parallel import DataParallelCriterion, DataParallelModel
        sync = cfg.syncbn and len(ctx) > 1
        if len(ctx) == 1:
            # GluonCV's train.py does not hybridize: with several devices its parallel
            # model runs one thread per device, and two threads building one cached graph
            # at once fail (MXNet's name scopes are not thread-safe)
            net.hybridize()
        self._model = DataParallelModel(net, ctx, sync)
        self._evaluator = DataParallelModel(SegEvalModel(net), ctx)
        loss = MixSoftmaxCrossEntropyLoss(cfg.aux, aux_weight=cfg.aux_weight)
        self._criterion = DataParallelCriterion(loss, ctx, sync)
        self.net = net
        return net

    def trained_params(self):
        return self.net.collect_params()

    def loaders(self):
        """(train, val) DataLoaders of GluonCV's ADE20KSegmentation (train: random scale of
        0.5-2x base_size, flip, blur, crop; val: resize and centre crop). Shuffling and
        augmentation draw from numpy's and Python's global generators (seeded per epoch)."""
        from gluoncv.data import ADE20KSegmentation
        from mxnet.gluon.data.vision import transforms
        cfg = self.cfg
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])
        sets = {mode: ADE20KSegmentation(root=self.root, split=split,
                                         mode=mode, transform=transform,
                                         base_size=cfg.base_size, crop_size=cfg.crop_size)
                for mode, split in (("train", "train"), ("val", "val"))}
        train = mx.gluon.data.DataLoader(sets["train"], cfg.batch_size, shuffle=True,
                                         last_batch="rollover", num_workers=cfg.num_workers)
        val = mx.gluon.data.DataLoader(sets["val"], cfg.batch_size, shuffle=False,
                                       last_batch="keep", num_workers=cfg.num_workers)
        return train, val

    def start_epoch(self):
        """Nothing to do: the graph of training mode is the one validation runs."""

    def forward_backward(self, batch):
        """Losses and gradients of one batch (GluonCV train.py's step); returns the mean
        loss (float)."""
        data, target = batch
        with mx.autograd.record(True):
            losses = self._criterion(self._model(data), target)
            mx.autograd.backward(losses)
        return sum(float(loss.mean().asscalar()) for loss in losses) / len(losses)

    def evaluate(self, val_loader):
        """{"val_miou", "val_pixacc"}: GluonCV's SegmentationMetric (mean IoU over the
        classes, accuracy over the labelled pixels) on the main head's output."""
        from gluoncv.utils.metrics import SegmentationMetric
        metric = SegmentationMetric(self.nclass)
        for data, target in val_loader:
            outputs = [out[0] for out in self._evaluator(data)]
            targets = mx.gluon.utils.split_and_load(target, self.contexts, even_split=False)
            metric.update(targets, outputs)
        pixacc, miou = metric.get()
        return {"val_miou": float(miou), "val_pixacc": float(pixacc)}
