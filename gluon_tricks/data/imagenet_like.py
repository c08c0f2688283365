"""An ImageNet-like RecordIO set built from photographs that ship with the installed
packages, for measuring the input pipelines on ImageNet's image sizes and file sizes (the
digits demo set is 8x8 content upscaled: it decodes far faster than photographs).

Sources: scikit-learn's ``load_sample_images()`` (china.jpg, flower.jpg, 640x427) and
matplotlib's ``sample_data/grace_hopper.jpg`` (512x600, portrait); one class per photograph.
Each image is a random window of a random source, flipped with p = 0.5, resized to a size
drawn from :data:`SIZES`, with Gaussian noise of :data:`NOISE` grey levels, then packed by
our packer (``pack.pack_images``) as JPEG of :data:`QUALITY`.

Why these numbers. ImageNet's training images (ILSVRC-2012) are mostly 500x375, 375x500
and 500x333, about 400x350 on average, and a 1.28 M image tar of about 138 GB: some 110 KB
a file. A decoder's work grows with the pixels and with the compressed bytes (Huffman
decoding), so both are matched: :data:`SIZES` gives a mean near 410x360 with about seven in
ten images at the common sizes. Our three photographs are smoother than the average
ImageNet photograph: at JPEG quality 90 they come to about 40 KB a file, so quality 98 and
noise of 6 grey levels (camera grain) bring them to about 115 KB. On a 2-core EPYC one
OpenCV decode took 0.67 ms at 40 KB and 0.86 ms at 108 KB, against about 5 ms for a whole
augmented training image: the bytes matter, but little.
"""
import os
import shutil
import tempfile

import cv2
import numpy as np

from .pack import PackOptions, pack_images
from .records import DataError, paths

# (width, height, probability); the rest have their long side U[LONG_SIDE] and an aspect
# ratio log-uniform in ASPECT, wide or tall alike
SIZES = ((500, 375, 0.40), (375, 500, 0.12), (500, 333, 0.15), (333, 500, 0.04),
         (500, 500, 0.03))
LONG_SIDE = (120, 500)
ASPECT = (0.5, 2.0)
QUALITY = 98
NOISE = 6.0
MIN_WINDOW_AREA = 0.3  # of the largest window of the target's aspect in the source


def source_photos():
    """[(name, HxWx3 uint8 RGB)] of the photographs the set is cut from. Raises DataError
    if scikit-learn is missing."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError:
        raise DataError("the ImageNet-like set needs scikit-learn's sample images: "
                        "pip install scikit-learn") from None
    import matplotlib

    files = list(load_sample_images().filenames)
    files.append(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))
    photos = []
    for path in files:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
        if bgr is None:
            raise DataError(f"{path}: cannot read this sample photograph")
        photos.append((os.path.splitext(os.path.basename(path))[0], bgr[:, :, ::-1].copy()))
    return photos


def draw_size(rng):
    """One (width, height) in pixels from ImageNet's size distribution (:data:`SIZES`)."""
    u, total = rng.random(), 0.0
    for width, height, p in SIZES:
        total += p
        if u < total:
            return width, height
    long_side = rng.uniform(*LONG_SIDE)
    aspect = np.exp(rng.uniform(np.log(ASPECT[0]), np.log(ASPECT[1])))
    if aspect >= 1:
        return int(round(long_side)), int(round(long_side / aspect))
    return int(round(long_side * aspect)), int(round(long_side))


def make_image(photo, width, height, rng, noise=NOISE):
    """A height x width x 3 uint8 RGB image: a random window of ``photo`` with the target's
    aspect ratio, flipped with p = 0.5, resized (area when shrinking, bilinear when
    enlarging), with Gaussian noise of std ``noise`` grey levels."""
    h, w = photo.shape[:2]
    aspect = width / height
    full_h = min(h, w / aspect)
    scale = np.sqrt(rng.uniform(MIN_WINDOW_AREA, 1.0))
    win_h = max(1, int(full_h * scale))
    win_w = max(1, min(w, int(full_h * aspect * scale)))
    y = rng.integers(0, h - win_h + 1)
    x = rng.integers(0, w - win_w + 1)
    window = photo[y:y + win_h, x:x + win_w]
    if rng.random() < 0.5:
        window = window[:, ::-1]
    inter = cv2.INTER_AREA if win_w > width else cv2.INTER_LINEAR
    img = cv2.resize(np.ascontiguousarray(window), (width, height), interpolation=inter)
    if noise:
        img = np.clip(img + rng.normal(0.0, noise, img.shape), 0, 255).astype(np.uint8)
    return img


def make_imagenet_like(out_dir, num_train=512, num_val=256, seed=0, quality=QUALITY,
                       noise=NOISE, workers=1, force=False):
    """Write ``train`` and ``val`` .rec/.idx/.lst (+ ``_classes.txt``) into ``out_dir``.

    Images are written losslessly (PNG) to a temporary folder and packed by
    ``pack.pack_images`` as JPEG of ``quality``, so each is compressed once.
    Returns {"train": stats, "val": stats}, stats a dict with ``images``, ``mean_width``,
    ``mean_height`` (pixels), ``common_share`` (fraction at one of :data:`SIZES`) and
    ``mean_kb`` (record bytes / 1000). Raises DataError if the set exists without ``force``.
    """
    if num_train <= 0 or num_val <= 0:
        raise DataError(f"{num_train} training / {num_val} validation images: expected "
                        "positive numbers")
    outputs = [p for split in ("train", "val")
               for p in paths(os.path.join(out_dir, split + ".rec"))]
    existing = [p for p in outputs if os.path.exists(p)]
    if existing and not force:
        raise DataError(f"{existing[0]} already exists; pass --force to overwrite it")
    os.makedirs(out_dir, exist_ok=True)
    photos = source_photos()
    rng = np.random.default_rng(seed)
    stats = {}
    for split, count in (("train", num_train), ("val", num_val)):
        sizes = [draw_size(rng) for _ in range(count)]
        folder = tempfile.mkdtemp(prefix=f"imagenet_like_{split}_", dir=out_dir)
        try:
            for name, _ in photos:
                os.makedirs(os.path.join(folder, name))
            for i, (width, height) in enumerate(sizes):
                name, photo = photos[i % len(photos)]
                img = make_image(photo, width, height, rng, noise)
                cv2.imwrite(os.path.join(folder, name, f"{i:06d}.png"), img[:, :, ::-1],
                            [cv2.IMWRITE_PNG_COMPRESSION, 1])
            summary = pack_images(folder, os.path.join(out_dir, split),
                                  PackOptions(quality=quality, seed=seed), workers=workers,
                                  force=force)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        common = {(w, h) for w, h, _ in SIZES}
        stats[split] = dict(
            images=summary.packed,
            mean_width=float(np.mean([w for w, _ in sizes])),
            mean_height=float(np.mean([h for _, h in sizes])),
            common_share=float(np.mean([s in common for s in sizes])),
            mean_kb=os.path.getsize(summary.paths[0]) / summary.packed / 1000)
    return stats
