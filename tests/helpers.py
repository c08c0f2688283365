"""What many tests share: the one-line error check; the tiny training setting (ResNet-18-D
on the 32 px digits with the paper's bag) as a TrainConfig and as command-line flags and a
real training run through the command line; data written without our packer (RecordIO
sets, the coordinate image, smooth images) and through it (tiny class sets); fake run
folders (random weights, or log records written by hand, of a classification or transfer
run); the bad images the checks must find; tools/ scripts loaded as modules; the
module-wide scratch folder."""
import contextlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import cv2
import numpy as np
import yaml

from gluon_tricks.data.pack import PackOptions
from gluon_tricks.data.pack import pack_images
from gluon_tricks.train.config import TrainConfig

ROOT = os.path.normpath(os.path.join(os.path.dirname(__file__), ".."))

MXNET_LOG = re.compile(r"^\[\d\d:\d\d:\d\d\] \.\./src/")  # MXNet's own INFO lines

# batch 64 at lr 0.2, 2 epochs (1 of warmup), cosine, zero gamma, no bias decay, label
# smoothing, mixup; one decoding thread so that batches are reproducible
TINY = dict(model="resnet18_v1d", classes=10, batch_size=64, base_lr_per_256=0.8, epochs=2,
            warmup_epochs=1, lr_mode="cosine", zero_gamma=True, no_bias_decay=True,
            label_smoothing=0.1, mixup_alpha=0.2, log_interval=5,
            data=dict(input_size=32, num_workers=1))


@contextlib.contextmanager
def module_folder(tmp_path_factory, name):
    """A scratch folder for a module's shared runs, removed when the module is done: the
    suite's checkpoints add up to gigabytes, and CI machines share their disk."""
    root = tmp_path_factory.mktemp(name)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


def train_run(digits, out, *flags, recipe="recipes/demo.yaml", timeout=600):
    """Train a real run folder ``out`` on ``digits`` ({'train': .rec, 'val': .rec}) with
    recipe (relative to the project) and extra trainer flags through
    recipes/train_imagenet.py; asserts the trainer succeeded. Returns str(out)."""
    argv = [sys.executable, os.path.join(ROOT, "recipes", "train_imagenet.py"), "--recipe",
            os.path.join(ROOT, recipe), "--rec-train", digits["train"], "--rec-val",
            digits["val"], "--out", str(out), *flags]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, MPLBACKEND="Agg"))
    assert done.returncode == 0, done.stderr[-3000:]
    return str(out)


def tiny_config(**changes):
    """The tiny setting as a TrainConfig, with ``changes`` (``data`` replaces the section)."""
    return TrainConfig(**dict(TINY, **changes))


def tiny_flags(**changes):
    """The tiny setting as train_imagenet.py flags (--set key=value, data.KEY=value)."""
    fields = dict(TINY, **changes)
    flags = []
    for key, value in fields.items():
        pairs = value.items() if key == "data" else [(key, value)]
        for k, v in pairs:
            name = f"data.{k}" if key == "data" else k
            flags += ["--set", f"{name}={str(v).lower() if isinstance(v, bool) else v}"]
    return flags


def assert_one_line_error(stderr, *words):
    """``stderr`` is one line (MXNet's own log lines aside) starting with ``error: `` and
    holding every one of ``words``."""
    lines = [line for line in stderr.strip().splitlines() if not MXNET_LOG.match(line)]
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for word in words:
        assert word in lines[0], (word, lines[0])


def assert_refused_in_process(main, args, capsys, *words):
    """``run_cli(main, args)`` in this process (``args`` made strings) exits 2 with one
    ``error:`` line on stderr holding every one of ``words``: a command line's refusal,
    which comes before any work, without a process's start-up."""
    from gluon_tricks.errors import run_cli
    status = run_cli(main, [str(a) for a in args])
    err = capsys.readouterr().err
    assert status == 2, (args, err[-1000:])
    assert_one_line_error(err, *words)


def write_rec(prefix, images_rgb, labels, img_fmt=".png"):
    """Write HxWx3 uint8 RGB images as prefix.rec/.idx (record i: key i, label labels[i])."""
    from mxnet import recordio

    w = recordio.MXIndexedRecordIO(prefix + ".idx", prefix + ".rec", "w")
    for i, (img, label) in enumerate(zip(images_rgb, labels)):
        quality = 3 if img_fmt == ".png" else 100  # PNG: compression level; lossless
        w.write_idx(i, recordio.pack_img(recordio.IRHeader(0, float(label), i, 0),
                                         img[:, :, ::-1], quality=quality, img_fmt=img_fmt))
    w.close()
    return prefix + ".rec"


def subset_rec(src, dst_prefix, keep=None, relabel=None, limit=None):
    """The records of ``src`` whose label is in ``keep`` (default: every label), at most
    ``limit`` of them in their order in ``src``, written as dst_prefix.rec/.idx with labels
    mapped by ``relabel`` (a dict; default: unchanged), image bytes as they are. Returns
    the .rec path."""
    from mxnet import recordio

    r = recordio.MXIndexedRecordIO(src[:-4] + ".idx", src, "r")
    w = recordio.MXIndexedRecordIO(dst_prefix + ".idx", dst_prefix + ".rec", "w")
    n = 0
    for key in sorted(r.keys):
        header, img = recordio.unpack(r.read_idx(key))
        label = int(header.label)
        if n == limit:
            break
        if keep is None or label in keep:
            new = (relabel or {}).get(label, label)
            w.write_idx(n, recordio.pack(recordio.IRHeader(0, float(new), n, 0), img))
            n += 1
    r.close()
    w.close()
    return dst_prefix + ".rec"

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

TOOLS = os.path.join(ROOT, "tools")


def load_tool(name):
    """tools/NAME.py as a module (tools are scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"tool_{name}", os.path.join(TOOLS, f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def write_run(path, config, epochs, extra_lines=()):
    """A run folder as the trainer leaves it: config.yaml and log.jsonl whose epoch records
    are built from ``epochs`` = [(val_top1, val_top5, samples_per_sec), ...] (fractions),
    with an interval record before each epoch record."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    best = -1.0
    with open(os.path.join(path, "log.jsonl"), "w") as f:
        for epoch, (top1, top5, speed) in enumerate(epochs, start=1):
            best = max(best, top1)
            f.write(json.dumps(dict(type="interval", epoch=epoch, batch=1, lr=0.1,
                                    loss=2.0, samples_per_sec=speed)) + "\n")
            f.write(json.dumps(dict(type="epoch", epoch=epoch, lr=0.1, train_loss=1.5,
                                    train_top1=None, val_top1=top1, val_top5=top5,
                                    val_images=100, samples_per_sec=speed, time_s=3.0,
                                    loss_scale=None, best_top1=best)) + "\n")
        for line in extra_lines:
            f.write(line + "\n")
    return str(path)


def write_transfer_run(path, config, epochs, backbone_top1=None, extra_lines=()):
    """A transfer run folder as tools/transfer.py leaves it: config.yaml (``config``, with
    ``task``) and log.jsonl with a "backbone" record of validation top-1 ``backbone_top1``
    (a fraction; none if None, as a run from a random backbone logs), one epoch record per
    dict of ``epochs`` (its task's metrics as fractions, e.g. {"val_map": 0.8}), then
    ``extra_lines``."""
    os.makedirs(path, exist_ok=True)
    with open(os.path.join(path, "config.yaml"), "w") as f:
        yaml.safe_dump(config, f)
    records = [] if backbone_top1 is None else [dict(
        type="backbone", params="/backbones/best.params", val_top1=backbone_top1,
        val_top5=None, backbone_epoch=120)]
    records += [dict(type="epoch", epoch=epoch, lr=0.001, train_loss=0.5, samples_per_sec=8.0,
                     time_s=60.0, **metrics) for epoch, metrics in enumerate(epochs, start=1)]
    with open(os.path.join(path, "log.jsonl"), "w") as f:
        f.writelines([json.dumps(r) + "\n" for r in records] + [x + "\n" for x in extra_lines])
    return str(path)

# the "coordinate image": R = x, G = y, B = 100, so every output pixel of a crop tells where
# in the source it was sampled from; W, H < 256 so that coordinates fit in uint8
COORD_W, COORD_H, COORD_B = 200, 160, 100


def coord_image():
    """The coordinate image, HxWx3 uint8 RGB."""
    y, x = np.mgrid[0:COORD_H, 0:COORD_W]
    return np.stack([x, y, np.full_like(x, COORD_B)], axis=2).astype(np.uint8)


def smooth_image(h, w, seed):
    """A smooth random HxWx3 uint8 RGB image (low-frequency noise, upscaled)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, h // 16), max(2, w // 16), 3)).astype(np.uint8)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)
