"""The one check of an encoded image that every tool runs before using it: the packer on
the files it packs, the trainer and ``validate`` on the records of a .rec
(:func:`gluon_tricks.data.check_images`), ``predict`` on the files it is given.

An image is usable when OpenCV decodes it to a non-empty picture, it is not over
``MAX_PIXELS`` (read from its header, before decoding) and, for a JPEG, it is whole:
MXNet's decoder (``mx.image.imdecode`` and ``ImageRecordIter``, on MXNet's own OpenCV)
decodes a JPEG cut short without an error, the missing part whatever its buffer held (the
predictions on one depended on the image decoded before it), and whether Python's OpenCV
refuses it depends on its version.
"""
import os

import cv2
import numpy as np

from ..cpus import usable_cpus
from ..errors import one_line

# Larger images are refused before decoding (a 30000 x 30000 PNG took 5.5 GB): Pillow's
# decompression-bomb limit, which no photograph of a classification set comes near.
MAX_PIXELS = 89_478_485
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
_JPEG_TAIL = 65536  # bytes searched for the end-of-image marker (metadata may follow it)


def _too_large(data):
    """Why the image ``data`` is too large to decode (a phrase), read from its header, or
    None (also when Pillow cannot read the header: OpenCV may still read the image)."""
    import io

    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            width, height = im.size
    except Image.DecompressionBombError:  # Pillow refuses twice its own limit, ours
        return f"more pixels than Pillow opens, over the {MAX_PIXELS} accepted"
    except Exception:  # Pillow raises many kinds; OpenCV may still read it
        return None
    if width * height > MAX_PIXELS:
        return f"{width} x {height} pixels, over the {MAX_PIXELS} accepted"
    return None


def decode(data):
    """(BGR uint8 HxWx3 image, None) for the encoded image ``data`` (bytes), or (None, why
    not: a phrase for a one-line message) if it is not usable (module docstring)."""
    if not data:
        return None, "an empty file (0 bytes)"
    too_large = _too_large(data)
    if too_large:
        return None, too_large
    if data[:2] == _JPEG_START and _JPEG_END not in data[-_JPEG_TAIL:]:
        return None, "a JPEG cut short (no end-of-image marker)"
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    except cv2.error as e:  # OpenCV's own checks (its pixel limit, a corrupt header)
        return None, f"not an image OpenCV can decode ({' '.join(str(e).split())[-100:]})"
    if img is None or img.size == 0:
        return None, "not an image OpenCV can decode"
    return img, None


def image_problem(data):
    """Why the encoded image ``data`` (bytes) is not usable (a phrase), or None."""
    return decode(data)[1]


def file_problem(path):
    """Why the image file ``path`` is not usable (a phrase), or None."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        return f"cannot be read ({e.strerror})"
    return image_problem(data)


def bad_files(paths, threads=None):
    """[(path, why)] of the image files among ``paths`` that are not usable, in order;
    checked on ``threads`` threads (default: every core; OpenCV decodes outside the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(threads or usable_cpus()) as pool:
        problems = list(pool.map(file_problem, paths))
    return [(p, why) for p, why in zip(paths, problems) if why]
