"""A tiny ImageNet-shaped demo set from scikit-learn's digits (1,797 8x8 grey images,
10 classes, values 0..16): upscaled RGB JPEGs in class folders, split 80/20 stratified,
packed into ``train.{rec,idx,lst}`` / ``val.{rec,idx,lst}`` (+ ``*_classes.txt``).

Layout of ``out_dir``::

    images/train/<digit>/<index>.jpg   images/val/<digit>/<index>.jpg
    train.rec train.idx train.lst train_classes.txt
    val.rec   val.idx   val.lst   val_classes.txt
"""
import os
import shutil

import cv2
import numpy as np

from .pack import PackOptions, pack_images
from .records import DataError, paths

VAL_FRACTION = 0.2


def demo_outputs(out_dir):
    """Paths of every packed file the demo set consists of."""
    return [p for split in ("train", "val") for p in paths(os.path.join(out_dir, split + ".rec"))]


def make_demo_data(out_dir, size=32, seed=0, quality=95, workers=1, force=False,
                   progress=False):
    """Write the digits demo set into ``out_dir`` (created if needed).

    Args:
        size: side of each square image, pixels (32; 256 gives ImageNet-sized inputs).
        seed: seed of the stratified train/val split and of the packing order.
        quality: JPEG quality of the images and records.
        workers: packing processes.
        force: rebuild even if the packed files exist.
    Returns {"train": PackSummary, "val": PackSummary}. Raises DataError if the set exists
    and ``force`` is false.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    existing = [p for p in demo_outputs(out_dir) if os.path.exists(p)]
    if existing and not force:
        raise DataError(f"{existing[0]} already exists: the demo set is built; pass --force to "
                        "rebuild it")
    if size < 8:
        raise DataError(f"size {size}: expected at least 8 pixels (the digits are 8x8)")
    digits = load_digits()
    # 0..16 grey levels -> 0..255, then upscaled smoothly so crops at any scale look alike
    grey = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)
    index = np.arange(len(grey))
    train_idx, val_idx = train_test_split(index, test_size=VAL_FRACTION,
                                          stratify=digits.target, random_state=seed)
    image_root = os.path.join(out_dir, "images")
    if os.path.isdir(image_root):
        shutil.rmtree(image_root)
    summaries = {}
    for split, idx in (("train", train_idx), ("val", val_idx)):
        split_dir = os.path.join(image_root, split)
        for c in range(10):
            os.makedirs(os.path.join(split_dir, str(c)), exist_ok=True)
        for i in sorted(idx):
            img = cv2.resize(grey[i], (size, size), interpolation=cv2.INTER_CUBIC)
            rgb = np.repeat(img[:, :, None], 3, axis=2)
            cv2.imwrite(os.path.join(split_dir, str(digits.target[i]), f"{i:04d}.jpg"), rgb,
                        [cv2.IMWRITE_JPEG_QUALITY, quality])
        summaries[split] = pack_images(split_dir, os.path.join(out_dir, split),
                                       PackOptions(quality=quality, seed=seed),
                                       workers=workers, force=force, progress=progress)
    return summaries
