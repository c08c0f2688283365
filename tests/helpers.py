"""What many tests share: the one-line error check, the tiny training setting (ResNet-18-D
on the 32 px digits with the paper's bag) as a TrainConfig and as command-line flags, and a
RecordIO writer that does not use our packer, the module-wide scratch folder, and a real
training run through the command line."""
import contextlib
import os
import re
import shutil
import subprocess
import sys

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
