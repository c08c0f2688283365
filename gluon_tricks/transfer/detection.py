"""Faster-RCNN on Pascal VOC (paper Table 8), on GluonCV's own pieces: its dataset class,
transforms, batchify function, forward-backward task (the four losses of
``train_faster_rcnn.py``) and VOC07 mAP metric. Only the loop around them is ours.

Data: ``ROOT/VOC2007`` and ``ROOT/VOC2012`` as the VOC devkit unpacks them (GluonCV's
``scripts/datasets/pascal_voc.py`` downloads them to ``~/.mxnet/datasets/voc``); training
on 2007+2012 trainval, validation on 2007 test. The digit scenes
(``tools/make_digit_scenes.py``) have the same layout: train on ``VOC2007/train``,
validate on ``VOC2007/test``.
"""
import os

import mxnet as mx

from .scenes import DIGIT_NAMES
from ..errors import RunError
from .nets import faster_rcnn

# dataset -> (class names or None for VOC's own, training splits, validation splits)
SPLITS = {
    "voc": (None, [("VOC2007", "trainval"), ("VOC2012", "trainval")], [("VOC2007", "test")]),
    "digits": (DIGIT_NAMES, [("VOC2007", "train")], [("VOC2007", "test")]),
}
METRICS = ("val_map",)  # the first is the one the best checkpoint is chosen by


def _classes(dataset):
    from gluoncv.data import VOCDetection
    return SPLITS[dataset][0] or VOCDetection.CLASSES


def check_data(root, dataset):
    """RunError (one line) naming the first split list or annotation folder missing under
    ``root``, then the first annotation that is wrong (:func:`check_annotation`)."""
    _, train, val = SPLITS[dataset]
    for year, split in train + val:
        for path in (os.path.join(root, year, "ImageSets", "Main", split + ".txt"),
                     os.path.join(root, year, "Annotations")):
            if not os.path.exists(path):
                raise RunError(f"{path}: missing; --data takes the folder holding VOC2007/ "
                               f"(and VOC2012/ for dataset voc), as GluonCV's "
                               "scripts/datasets/pascal_voc.py writes it")
    classes = _classes(dataset)
    for year, split in train + val:
        with open(os.path.join(root, year, "ImageSets", "Main", split + ".txt")) as f:
            ids = [line.strip() for line in f if line.strip()]
        for image_id in ids:
            check_annotation(os.path.join(root, year, "Annotations", image_id + ".xml"),
                             os.path.join(root, year, "JPEGImages", image_id + ".jpg"),
                             classes)


def check_annotation(xml_path, image_path, classes):
    """The VOC annotation ``xml_path`` of the image ``image_path`` parses, states the
    image's size, and names each object with one of ``classes`` and a box inside the image
    (GluonCV's own rule, on its 0-based coordinates). GluonCV would stop on a file that
    does not parse (a 36-line ParseError naming no file), on an unknown class (an
    IndexError) and silently drop an image with a box outside it; here each is a RunError,
    one line naming the file and the object."""
    from xml.etree import ElementTree

    from PIL import Image
    try:
        root = ElementTree.parse(xml_path).getroot()
    except FileNotFoundError:
        raise RunError(f"{xml_path}: missing (its id is in the split list)") from None
    except ElementTree.ParseError as e:
        raise RunError(f"{xml_path}: not valid XML ({e})") from None
    try:
        size = tuple(int(float(root.find("size").find(k).text)) for k in ("width", "height"))
    except (AttributeError, TypeError, ValueError):
        raise RunError(f"{xml_path}: no <size> with a numeric <width> and <height>") from None
    try:
        with Image.open(image_path) as im:
            actual = im.size
    except (OSError, ValueError) as e:
        raise RunError(f"{image_path}: not a readable image ({e})") from None
    if actual != size:
        raise RunError(f"{xml_path}: <size> says {size[0]} x {size[1]}, {image_path} is "
                       f"{actual[0]} x {actual[1]}")
    width, height = size
    for k, obj in enumerate(root.iter("object")):
        name = obj.find("name")
        name = name.text.strip().lower() if name is not None and name.text else ""
        if name not in classes:
            shown = ", ".join(classes)
            raise RunError(f"{xml_path}: object {k} is named {name[:40]!r}, not one of the "
                           f"classes ({shown[:200]})")
        try:
            box = [float(obj.find("bndbox").find(c).text) - 1
                   for c in ("xmin", "ymin", "xmax", "ymax")]
        except (AttributeError, TypeError, ValueError):
            raise RunError(f"{xml_path}: object {k} ({name}) has no numeric <bndbox> "
                           "<xmin>, <ymin>, <xmax>, <ymax>") from None
        xmin, ymin, xmax, ymax = box
        if not (0 <= xmin < xmax <= width and 0 <= ymin < ymax <= height):
            raise RunError(f"{xml_path}: object {k} ({name}) box xmin, ymin, xmax, ymax = "
                           f"{', '.join(f'{v + 1:g}' for v in box)} is not inside the "
                           f"{width} x {height} image (VOC boxes are 1-based, inclusive)")


class Detection:
    """The detection task of a transfer run: network, data, one update, validation."""
    metrics = METRICS

    def __init__(self, cfg, root, contexts):
        self.cfg, self.root, self.contexts = cfg, root, contexts
        self.classes = _classes(cfg.dataset)
        self.net = None

    def build_net(self, params):
        """Faster-RCNN on the backbone ``params`` (None: random), one shard per device; only
        GluonCV's trained layers get gradients (its ``collect_train_params``)."""
        cfg = self.cfg
        if cfg.batch_size % len(self.contexts):
            raise RunError(f"batch_size {cfg.batch_size} does not split over "
                           f"{len(self.contexts)} devices")
        net = faster_rcnn(cfg.backbone_model, params, self.classes, ctx=self.contexts[0],
                          per_device_batch_size=cfg.batch_size // len(self.contexts),
                          **cfg.net_settings())
        net.collect_params().reset_ctx(self.contexts)
        net.collect_params().setattr("grad_req", "null")
        net.collect_train_params().setattr("grad_req", "write")
        from gluoncv.model_zoo.rcnn.faster_rcnn.data_parallel import ForwardBackwardTask
        loss = mx.gluon.loss
        # train_faster_rcnn.py's four losses; the step's update comes from the Trainer
        self._task = ForwardBackwardTask(
            net, None, loss.SigmoidBinaryCrossEntropyLoss(from_sigmoid=False),
            loss.HuberLoss(rho=1 / 9.), loss.SoftmaxCrossEntropyLoss(), loss.HuberLoss(),
            mix_ratio=1.0, amp_enabled=False)
        self.net = net
        return net

    def trained_params(self):
        return self.net.collect_train_params()

    def loaders(self):
        """(train, val) DataLoaders: GluonCV's train transform (random flip, resize, RPN
        targets) and batchify (one shard per device), its val transform one image per
        shard. Shuffling draws from numpy's global generator (seeded per epoch)."""
        from gluoncv.data import CustomVOCDetectionBase
        from gluoncv.data.batchify import Append, FasterRCNNTrainBatchify, Tuple
        from gluoncv.data.transforms.presets.rcnn import (FasterRCNNDefaultTrainTransform,
                                                          FasterRCNNDefaultValTransform)
        _, train_splits, val_splits = SPLITS[self.cfg.dataset]
        net, shards, workers = self.net, len(self.contexts), self.cfg.num_workers
        train = CustomVOCDetectionBase(classes=self.classes, root=self.root,
                                       splits=train_splits)
        val = CustomVOCDetectionBase(classes=self.classes, root=self.root, splits=val_splits)
        train_loader = mx.gluon.data.DataLoader(
            train.transform(FasterRCNNDefaultTrainTransform(net.short, net.max_size, net,
                                                            ashape=net.ashape)),
            self.cfg.batch_size, shuffle=True, last_batch="discard",
            batchify_fn=FasterRCNNTrainBatchify(net, shards), num_workers=workers)
        val_loader = mx.gluon.data.DataLoader(
            val.transform(FasterRCNNDefaultValTransform(net.short, net.max_size)), shards,
            shuffle=False, last_batch="keep", batchify_fn=Tuple(*[Append()] * 3),
            num_workers=workers)
        return train_loader, val_loader

    def _shards(self, batch):
        """Per device: the batch's fields on that device (GluonCV's split_and_load); a short
        last validation batch fills fewer devices."""
        fields = [b if isinstance(b, (list, tuple)) else [b] for b in batch]
        return [[a.as_in_context(ctx) for a in shard]
                for shard, ctx in zip(zip(*fields), self.contexts)]

    def start_epoch(self):
        # training-mode and inference-mode graphs differ: hybridize anew (as GluonCV does)
        self.net.hybridize(static_alloc=True)

    def forward_backward(self, batch):
        """Losses and gradients of one batch; returns the mean total loss (float). Every
        device's shard is launched before the host waits once for the sum of their losses,
        so that the devices work at the same time (GluonCV runs the shards in threads,
        ``Parallel``, to the same end)."""
        losses = []
        for shard in self._shards(batch):
            losses.extend(self._task.forward_backward(shard)[:4])  # rpn cls/box, rcnn cls/box
        first = self.contexts[0]
        total = mx.nd.add_n(*[v.reshape(-1).as_in_context(first) for v in losses])
        return float(total.asscalar()) / len(self.contexts)

    def evaluate(self, val_loader):
        """{"val_map": VOC07 11-point mAP at IoU 0.5, and "val_ap": {class: AP}} over the
        validation set: detections clipped to the image and scaled back to its original
        size, as GluonCV's ``validate`` does."""
        import gluoncv as gcv
        from gluoncv.utils.metrics.voc_detection import VOC07MApMetric
        metric = VOC07MApMetric(iou_thresh=0.5, class_names=self.classes)
        clipper = gcv.nn.bbox.BBoxClipToImage()
        self.net.hybridize(static_alloc=True)
        for batch in val_loader:
            for x, y, im_scale in self._shards(batch):
                ids, scores, boxes = self.net(x)
                scale = float(im_scale.asnumpy().reshape(-1)[0])
                metric.update(clipper(boxes, x) * scale, ids, scores, y[:, :, :4] * scale,
                              y[:, :, 4:5], y[:, :, 5:6] if y.shape[-1] > 5 else None)
        names, values = metric.get()
        return {"val_map": float(values[-1]),
                "val_ap": {n: float(v) for n, v in zip(names[:-1], values[:-1])}}
