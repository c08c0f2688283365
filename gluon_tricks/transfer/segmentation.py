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

from ..cpus import usable_cpus
from ..errors import RunError
from .nets import fcn

NUM_CLASSES = {"ade20k": 150, "digits": 11}
# GluonCV's segmentation scripts normalise with ImageNet's mean and std on [0, 1] pixels
MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
METRICS = ("val_miou", "val_pixacc")  # the first is the one the best checkpoint is chosen by


def check_data(root, dataset, threads=None):
    """RunError (one line) naming the first image or annotation folder missing or empty,
    then the first mask that is wrong (:func:`check_mask`), for every image GluonCV's
    ADE20KSegmentation reads (each .jpg of the images folder with a .png of its name in
    the annotations folder). Every mask is decoded, on ``threads`` threads (default: every
    core): about a minute for ADE20K's 22,210, against days of training."""
    from concurrent.futures import ThreadPoolExecutor

    for kind in ("images", "annotations"):
        for split in ("training", "validation"):
            path = os.path.join(root, "ADEChallengeData2016", kind, split)
            if not os.path.isdir(path) or not os.listdir(path):
                raise RunError(f"{path}: missing or empty; --data takes the folder holding "
                               "ADEChallengeData2016/, as GluonCV's scripts/datasets/"
                               "ade20k.py writes it")
    pairs = []
    for split in ("training", "validation"):
        images = os.path.join(root, "ADEChallengeData2016", "images", split)
        masks = os.path.join(root, "ADEChallengeData2016", "annotations", split)
        for name in sorted(os.listdir(images)):
            mask = os.path.join(masks, os.path.splitext(name)[0] + ".png")
            if name.endswith(".jpg") and os.path.isfile(mask):
                pairs.append((os.path.join(images, name), mask))
    nclass = NUM_CLASSES[dataset]
    with ThreadPoolExecutor(threads or usable_cpus()) as pool:
        problems = pool.map(lambda pair: _mask_problem(*pair, nclass), pairs)
        first = next((why for why in problems if why), None)
    if first:
        raise RunError(first)


def check_mask(image_path, mask_path, nclass):
    """The label map ``mask_path`` of the image ``image_path`` is what GluonCV's
    ADE20KSegmentation reads as one label per pixel: one channel, the image's size, and
    values 0 (unlabelled, read as -1 and ignored) or 1..nclass (class value - 1). An RGB
    mask stopped MXNet with a shape error, and a mask of another size or with values
    beyond the classes trained silently; each is a RunError, one line naming the file."""
    why = _mask_problem(image_path, mask_path, nclass)
    if why:
        raise RunError(why)


def _mask_problem(image_path, mask_path, nclass):
    """The one-line message of what is wrong with a mask (:func:`check_mask`), or None."""
    import numpy as np
    from PIL import Image
    try:
        with Image.open(image_path) as im:
            image_size = im.size
        with Image.open(mask_path) as m:
            bands, mask_size = m.getbands(), m.size
            values = np.asarray(m) if len(bands) == 1 else None
    except (OSError, ValueError) as e:
        return f"{mask_path}: not a readable pair of image and mask ({e})"
    if len(bands) != 1:
        return (f"{mask_path}: {len(bands)} channels ({''.join(bands)}); a mask has one, "
                "the class value of each pixel (a grey or palette PNG)")
    if mask_size != image_size:
        return (f"{mask_path}: {mask_size[0]} x {mask_size[1]} pixels, its image "
                f"{image_path} is {image_size[0]} x {image_size[1]}")
    low, top = int(values.min()), int(values.max())
    if top > nclass or low < 0:
        return (f"{mask_path}: value {top if top > nclass else low} is not a class value (0 "
                f"is unlabelled, 1..{nclass} are the {nclass} classes)")
    return None


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
