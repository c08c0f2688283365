"""Images in, class names out: the network's validation transform on image files.

The transform is the one validation applies to a .rec (``ImageRecordIter``): decode to RGB,
resize the short side to ``data.resize`` with ``data.interpolation``, crop the centre
``data.input_size`` square, subtract the mean and divide by the std (RGB, 0-255 units).
Files are checked first with the check every tool runs (:mod:`gluon_tricks.data.images`):
MXNet's decoder turns a JPEG cut short into an image of whatever its buffer held.
"""
import os

import mxnet as mx
import numpy as np

from ..data.images import bad_files
from ..data.records import read_class_names
from ..errors import UserError, one_line
from .checkpoint import load_net

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff",
                    ".webp")


class PredictError(UserError):
    """An image, folder or class-name file that cannot be used; one line naming it."""


def image_files(paths):
    """The image files of ``paths`` (files as given; folders searched recursively, sorted),
    in order. PredictError for a path that does not exist or a folder without images."""
    found = []
    for path in paths:
        if os.path.isfile(path):
            found.append(path)
        elif os.path.isdir(path):
            inside = sorted(os.path.join(root, name) for root, _, names in os.walk(path)
                            for name in names if name.lower().endswith(IMAGE_EXTENSIONS))
            if not inside:
                raise PredictError(f"{path}: no image files ({', '.join(IMAGE_EXTENSIONS)})")
            found.extend(inside)
        elif os.path.exists(path):  # a FIFO, a device: reading it could block forever
            raise PredictError(f"{path}: not a regular file or folder (a FIFO or a device?)")
        else:
            raise PredictError(f"{path}: no such file or folder")
    return found


def usable_images(files, skip_bad=False, report=None):
    """The files of ``files`` that pass the image check, in order. A file that does not is a
    PredictError naming it (and how many more there are), or with ``skip_bad`` passed to
    ``report(path, why)`` and left out; PredictError if none is left."""
    bad = bad_files(files)
    if bad and not skip_bad:
        more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
        raise PredictError(f"{bad[0][0]}: {bad[0][1]}{more}; remove it, or pass --skip-bad to "
                           "predict the others")
    for path, why in bad:
        if report is not None:
            report(path, why)
    skipped = {path for path, _ in bad}
    good = [f for f in files if f not in skipped]
    if not good:
        raise PredictError(f"{files[0]}: no usable image among the {len(files)} files given")
    return good


def transform(path, data):
    """(3, S, S) float32 numpy array of the image file ``path`` under the validation
    transform of the DataConfig ``data``."""
    try:
        with open(path, "rb") as f:
            img = mx.image.imdecode(f.read(), flag=1, to_rgb=True)
    except Exception as e:  # MXNetError for bytes OpenCV cannot decode
        raise PredictError(f"{path}: not an image OpenCV can decode ({one_line(e, 100)})") \
            from None
    img = mx.image.resize_short(img, data.resize, interp=data.interpolation)
    img, _ = mx.image.center_crop(img, (data.input_size, data.input_size))
    x = (img.astype("float32").asnumpy() - np.array(data.mean_rgb, np.float32)) / \
        np.array(data.std_rgb, np.float32)
    return x.transpose(2, 0, 1)


def class_names(ckpt, classes_file=None):
    """Names of the classes, index = label: ``classes_file`` (one name a line), else those
    of the checkpoint's training set (``ckpt.classes_file``, for a run folder), else the
    indices."""
    if classes_file:
        if not os.path.isfile(classes_file):
            raise PredictError(f"--classes-file {classes_file}: no such file")
        names = read_class_names(classes_file)
    elif ckpt.classes_file and os.path.isfile(ckpt.classes_file):
        names = read_class_names(ckpt.classes_file)
    else:
        return [str(i) for i in range(ckpt.classes)]
    if len(names) != ckpt.classes:
        raise PredictError(f"{classes_file or ckpt.classes_file}: {len(names)} class names "
                           f"for a network of {ckpt.classes} classes")
    return names


def predict(ckpt, files, names, topk=5, batch_size=32, ctx=None):
    """For each image file, as soon as its batch is done: (file, [(class index, name,
    probability), ...]) of its ``topk`` classes, most likely first (softmax of the
    logits). A generator: the first lines come before the last image is read."""
    ctx = ctx or mx.cpu()
    net = load_net(ckpt, ctx)
    k = min(topk, ckpt.classes)
    for start in range(0, len(files), batch_size):
        chunk = files[start:start + batch_size]
        x = mx.nd.array(np.stack([transform(f, ckpt.data) for f in chunk]), ctx=ctx)
        probs = mx.nd.softmax(net(x), axis=-1).asnumpy()
        for f, p in zip(chunk, probs):
            top = np.argsort(-p, kind="stable")[:k]
            yield f, [(int(i), names[i], float(p[i])) for i in top]
