"""Small inputs for the tests of the checks that run before work starts: packed sets of a
few 32 px images per class (through our packer, so they carry ``X_classes.txt``), a network
with random weights saved as a .params file or in a run folder as the trainer leaves it,
and the bad images the checks must find."""
import json
import os

import cv2
import numpy as np

from gluon_tricks.data.pack import PackOptions, pack_images

CLASSES = [f"class{i}" for i in range(10)]  # in sorted order: label i is class i


def pack_classes(folder, names, per_class=2, size=32, seed=0):
    """Pack class folders ``names`` of ``per_class`` random PNG images each into
    ``folder``/set.rec (with set_classes.txt); returns the .rec path."""
    rng = np.random.default_rng(seed)
    images = os.path.join(folder, "images")
    for name in names:
        os.makedirs(os.path.join(images, name))
        for i in range(per_class):
            cv2.imwrite(os.path.join(images, name, f"{i}.png"),
                        rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
    return pack_images(images, os.path.join(folder, "set"), PackOptions(encoding=".png")).paths[0]


def random_params(path, classes, model="resnet18_v1d"):
    """``model`` with ``classes`` classes and random weights, saved to ``path``."""
    import mxnet as mx

    from gluon_tricks.models import get_model
    net = get_model(model, classes=classes)
    net.initialize(mx.init.Xavier())
    net(mx.nd.zeros((1, 3, 32, 32)))
    net.save_parameters(str(path))
    return str(path)


def fake_run(folder, rec_train, classes=10):
    """A run folder as the trainer leaves it (config.yaml of the tiny setting, command.json
    naming its training set, best.params) whose network has random weights."""
    from gluon_tricks.run.recipe import dumps
    from helpers import tiny_config

    os.makedirs(folder)
    with open(os.path.join(folder, "config.yaml"), "w") as f:
        f.write(dumps(tiny_config(classes=classes)))
    with open(os.path.join(folder, "command.json"), "w") as f:
        json.dump(dict(rec_train=os.path.abspath(rec_train)), f)
    random_params(os.path.join(folder, "best.params"), classes)
    return str(folder)


def jpeg_bytes(seed=0, size=48):
    """A whole JPEG of random pixels."""
    noise = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return cv2.imencode(".jpg", noise)[1].tobytes()


def cut_in_half(data):
    """The first half of an encoded image: a JPEG cut short, which libjpeg decodes
    without an error."""
    return data[:len(data) // 2]


def png_bytes(width, height, whole=True):
    """A black 1-bit greyscale PNG of ``width`` x ``height`` written by hand (zlib, CRCs):
    ``whole`` with every row (a 20000 x 20000 one is 50 MB of zeros, 49 KB packed), else
    its header alone, claiming that size."""
    import struct
    import zlib

    def chunk(kind, body):
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))
    header = chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
    rows = zlib.compress(bytes(height * (1 + (width + 7) // 8)), 9) if whole else b""
    return b"\x89PNG\r\n\x1a\n" + header + chunk(b"IDAT", rows) + chunk(b"IEND", b"")
