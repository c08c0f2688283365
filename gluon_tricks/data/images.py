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

# Larger images are refused before decoding (a 30000 x 30000 PNG took 5.5 GB): Pillow's
# decompression-bomb limit, which no photograph of a classification set comes near.
MAX_PIXELS = 89_478_485
_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
_JPEG_TAIL = 65536  # bytes searched for the end-of-image marker (metadata may follow it)


def _size(data):
    """(width, height) from the image's header, or None if Pillow cannot tell."""
    import io

    from PIL import Image
    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Exception:  # Pillow raises many kinds; OpenCV may still read it
        return None


def decode(data):
    """(BGR uint8 HxWx3 image, None) for the encoded image ``data`` (bytes), or (None, why
    not: a phrase for a one-line message) if it is not usable (module docstring)."""
    size = _size(data)
    if size and size[0] * size[1] > MAX_PIXELS:
        return None, f"{size[0]} x {size[1]} pixels, over the {MAX_PIXELS} accepted"
    if data[:2] == _JPEG_START and _JPEG_END not in data[-_JPEG_TAIL:]:
        return None, "a JPEG cut short (no end-of-image marker)"
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
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
