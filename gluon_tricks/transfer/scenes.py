"""Miniature detection and segmentation sets from the digits (paper §6 in miniature):
canvases with 1-3 digits pasted at random places and scales, written in the layouts
GluonCV's own dataset classes read.

- Detection, Pascal VOC layout (``gluoncv.data.CustomVOCDetectionBase`` with
  ``classes=DIGIT_NAMES``, or a ``VOCDetection`` subclass whose ``CLASSES`` they are)::

      OUT/voc/VOC2007/JPEGImages/000001.jpg
      OUT/voc/VOC2007/Annotations/000001.xml        (1-based pixel boxes, as VOC's)
      OUT/voc/VOC2007/ImageSets/Main/{train,val,trainval,test}.txt

  One box per digit: the tight box of its strokes.
- Segmentation, ADE20K layout (``gluoncv.data.ADE20KSegmentation(root=OUT/ade)``)::

      OUT/ade/ADEChallengeData2016/images/{training,validation}/ADE_{train,val}_00000001.jpg
      OUT/ade/ADEChallengeData2016/annotations/{training,validation}/....png

  PNG values as ADE20K's: 0 = unlabelled (GluonCV reads it as -1, ignored), 1 = background,
  2 + d = digit d, so that GluonCV's ``value - 1`` gives 11 classes: background and the
  ten digits (``SEGMENTATION_CLASSES``).
"""
import os
import shutil
from xml.sax.saxutils import escape

import cv2
import numpy as np

from ..data.records import DataError

# VOC class names must be lowercase words (GluonCV checks them)
DIGIT_NAMES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight",
               "nine")
SEGMENTATION_CLASSES = ("background",) + DIGIT_NAMES
STROKE = 0.35  # a pixel belongs to a digit's strokes above this fraction of full ink


def _digits():
    from sklearn.datasets import load_digits
    d = load_digits()
    return d.images / 16.0, d.target


def _scene(rng, glyphs, labels, size, max_digits, scale, stroke):
    """(RGB uint8 image, [(digit, (x0, y0, x1, y1) inclusive)], label map) of one canvas."""
    img = np.full((size, size, 3), rng.integers(0, 60), dtype=np.float32)
    img += rng.normal(0, 6, img.shape)
    seg = np.ones((size, size), np.uint8)  # 1 = background
    boxes = []
    for _ in range(rng.integers(1, max_digits + 1)):
        for _attempt in range(30):
            side = int(rng.integers(scale[0], scale[1] + 1))
            x, y = (int(v) for v in rng.integers(0, size - side + 1, 2))
            if all(x + side <= b[0] or b[2] < x or y + side <= b[1] or b[3] < y
                   for _, b in boxes):
                break
        else:
            continue  # no free place for another digit on this canvas
        i = int(rng.integers(len(glyphs)))
        ink = cv2.resize(glyphs[i].astype(np.float32), (side, side),
                         interpolation=cv2.INTER_CUBIC).clip(0, 1)
        strokes = ink > stroke
        if not strokes.any():
            continue
        colour = rng.uniform(150, 255, 3)
        patch = img[y:y + side, x:x + side]
        img[y:y + side, x:x + side] = patch * (1 - ink[..., None]) + colour * ink[..., None]
        seg[y:y + side, x:x + side][strokes] = 2 + int(labels[i])
        ys, xs = np.nonzero(strokes)
        boxes.append((int(labels[i]), (x + int(xs.min()), y + int(ys.min()),
                                       x + int(xs.max()), y + int(ys.max()))))
    return img.clip(0, 255).astype(np.uint8), boxes, seg


def _voc_xml(name, size, boxes):
    objects = "".join(
        f"<object><name>{DIGIT_NAMES[d]}</name><difficult>0</difficult><bndbox>"
        f"<xmin>{x0 + 1}</xmin><ymin>{y0 + 1}</ymin><xmax>{x1 + 1}</xmax><ymax>{y1 + 1}</ymax>"
        f"</bndbox></object>" for d, (x0, y0, x1, y1) in boxes)
    return (f"<annotation><filename>{escape(name)}.jpg</filename><size><width>{size}</width>"
            f"<height>{size}</height><depth>3</depth></size>{objects}</annotation>\n")


def make_digit_scenes(out_dir, num_train=240, num_val=80, size=128, seed=0, max_digits=3,
                      scale=(24, 48), quality=95, stroke=STROKE, force=False):
    """Write the two miniature sets under ``out_dir`` (voc/ and ade/, the same canvases).

    Digits of scikit-learn's set (train canvases draw from one half of its images, val
    canvases from the other) are scaled to ``scale`` pixels and pasted without overlap.
    ``stroke``: the ink fraction (0-1) above which a pixel is labelled as the digit (a
    lower one labels thicker strokes; every box is the tight box of its labelled pixels).
    Returns {"voc": root, "ade": root, "train": n, "val": n}. DataError if the sets exist
    and not ``force``.
    """
    voc = os.path.join(out_dir, "voc", "VOC2007")
    ade = os.path.join(out_dir, "ade", "ADEChallengeData2016")
    if (os.path.exists(voc) or os.path.exists(ade)) and not force:
        raise DataError(f"{out_dir}: the digit scenes exist; pass --force to rebuild them")
    if not 1 <= scale[0] <= scale[1] <= size:
        raise DataError(f"scale {scale}: expected 1 <= min <= max <= size {size}")
    if not 0 <= stroke < 1:
        raise DataError(f"stroke {stroke}: expected an ink fraction in [0, 1)")
    for path in (voc, ade):
        shutil.rmtree(path, ignore_errors=True)
    for sub in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main")):
        os.makedirs(os.path.join(voc, sub))
    glyphs, labels = _digits()
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(glyphs))
    halves = {"train": order[: len(order) // 2], "val": order[len(order) // 2:]}
    ids = {}
    number = 0
    for split, count, ade_split, ade_name in (("train", num_train, "training", "train"),
                                              ("val", num_val, "validation", "val")):
        for sub in ("images", "annotations"):
            os.makedirs(os.path.join(ade, sub, ade_split))
        pool = halves[split]
        ids[split] = []
        for k in range(count):
            number += 1
            img, boxes, seg = _scene(rng, glyphs[pool], labels[pool], size, max_digits, scale,
                                     stroke)
            name = f"{number:06d}"
            ids[split].append(name)
            bgr = img[:, :, ::-1]
            cv2.imwrite(os.path.join(voc, "JPEGImages", name + ".jpg"), bgr,
                        [cv2.IMWRITE_JPEG_QUALITY, quality])
            with open(os.path.join(voc, "Annotations", name + ".xml"), "w") as f:
                f.write(_voc_xml(name, size, boxes))
            ade_stem = f"ADE_{ade_name}_{k + 1:08d}"
            cv2.imwrite(os.path.join(ade, "images", ade_split, ade_stem + ".jpg"), bgr,
                        [cv2.IMWRITE_JPEG_QUALITY, quality])
            cv2.imwrite(os.path.join(ade, "annotations", ade_split, ade_stem + ".png"), seg)
    main = os.path.join(voc, "ImageSets", "Main")
    for name, members in (("train", ids["train"]), ("val", ids["val"]),
                          ("trainval", ids["train"] + ids["val"]), ("test", ids["val"])):
        with open(os.path.join(main, name + ".txt"), "w") as f:
            f.write("".join(i + "\n" for i in members))
    return dict(voc=os.path.dirname(voc), ade=os.path.dirname(ade), train=num_train,
                val=num_val)
