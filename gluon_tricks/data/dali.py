"""The ``"dali"`` backend: NVIDIA DALI decodes and augments the packed RecordIO set, with
the interface of ``loaders.RecordIOLoader`` (``epoch(e)``, ``num_samples``,
``batches_per_epoch``; batches (N, 3, S, S) float32 normalised and (N,) float32 labels) and
``device_epoch(e, contexts)``, the same batches as one array pair per device.

Install: ``pip install nvidia-dali-cuda120==1.35.0 nvidia-nvjpeg-cu12==12.3.0.81`` (``make
dali``), the newest DALI on PyPI that ships as a wheel and still has the MXNet plugin (later
releases on PyPI only download their wheel from NVIDIA's own index). The plugin itself is not
used (below).

On the CPU every pipeline runs in DALI's CPU mode (what the tests check). For GPUs there is
one pipeline per device, on that device: it decodes its share of every batch with nvJPEG
(``device="mixed"``) and augments it there, with at most ``THREADS_PER_GPU`` CPU threads
(NVIDIA's MXNet ResNet-50 example uses 3 per GPU; each nvJPEG thread holds device and pinned
host buffers). The GPU path has never run here (no GPU).

Records: this module reads them itself (the ``.idx`` offsets, the RecordIO framing) and
feeds them to DALI through ``fn.external_source``, in an order it chooses: a training epoch is
a permutation of the whole shard, seeded from (seed, epoch, shard), its tail (the last
``num_samples % batch_size`` of the permutation) dropped, so every record is equally likely in
every place, and different records miss each epoch. (``fn.readers.mxnet`` has no
``shuffle_after_epoch`` in DALI 1.35, only ``readers.file`` has; its ``random_shuffle`` draws
from a buffer of ``initial_fill`` records filled in file order, so record p came near step
p / batch every epoch and the shard's last records were always the ones dropped; a buffer
large enough to mix ImageNet would hold its 140 GB.) Validation reads the shard in order and
pads the last batch with its last record; the padding is cut off (``epoch``) or counted
(``device_epoch``).

Copies: each output goes into an MXNet array with a synchronous copy (``feed``). DALI 1.35's
MXNet plugin (``nvidia/dali/plugin/mxnet.py``, ``feed_ndarray``) calls
``copy_to_external(ptr, None, non_blocking=True)``: with no stream the copy runs on a DALI
stream the host does not wait for, and MXNet's streams know nothing of it, so a batch could be
read before it was written (DALI fixed it after 1.35, NVIDIA/DALI#5364: synchronous without a
stream).

Pipelines: a training pipeline is built for each epoch (DALI seeds its random operators only
when a pipeline is built, ``Pipeline(seed=...)``), seeded from (seed, epoch, shard, device),
so a run resumed at epoch e sees the epoch an unbroken run sees; the validation pipelines are
built once and reused. DALI seeds every sample's random draws itself, so the batches do not
depend on the number of threads; they do depend on the number of devices (each device's
pipeline has its own seed).

What it shares with the RecordIO backend (MXNet 1.9.1 ``ImageRecordIter``,
``src/io/image_aug_default.cc``) and where it differs:

- crop: area U[min_area, max_area] of the image, aspect ratio in [min, max], up to 10
  attempts, resized to S x S. DALI draws the aspect log-uniformly; ImageRecordIter draws it
  uniformly and swaps width and height with p = 0.5 (same range, both symmetric in
  log-aspect). When no attempt fits, DALI takes the largest window of the nearest allowed
  aspect ratio, ImageRecordIter an S x S centre crop without resizing.
- flip p = 0.5; brightness, contrast and saturation coefficients U[1 - s, 1 + s]: contrast
  blends with the crop's mean grey, saturation with each pixel's grey, and the grey has
  ImageRecordIter's weights (below). The three maps commute when no pixel clips, so here
  they are applied in one order, in float, and clamped to [0, 255] once; ImageRecordIter
  applies them in a random order and rounds and clamps to 8 bits after each.
- PCA lighting, coefficients N(0, pca_noise), with ImageNet's eigenvalues and vectors
  (docs/notes.md §1), added in float; ImageRecordIter truncates the shifted pixel to 8 bits,
  which loses most of the two small components (their shifts are about 0.5 and 0.1 grey
  levels).
- validation: ImageRecordIter's integer sizes (short edge ``cfg.resize``, long edge
  ``resize * long // short``) and centre offset ``(size - S) // 2``, bilinear without
  antialiasing, as OpenCV resizes.
- shards: DALI's rule, records ``[N * i // parts, N * (i + 1) // parts)``, not MXNet's
  ceil(N / parts) blocks (``begin``/``end`` say which); every shard still has at least
  ``N // parts`` records, so training runs the same ``batches_per_epoch`` on every rank.
"""
import ctypes
import os
import struct

import mxnet as mx
import numpy as np
import nvidia.dali as dali
from nvidia.dali import fn, math as dali_math, types
from nvidia.dali.backend import TensorGPU, TensorListGPU
from nvidia.dali.pipeline import Pipeline

from .. import seeds
from .loaders import Loader, Shard
from .records import RECORD_MAGIC, DataError, read_index
from .shards import device_shares

THREADS_PER_GPU = 3
NVJPEG = "libnvjpeg.so.12"
NVJPEG_WHEEL = "nvidia-nvjpeg-cu12==12.3.0.81"  # CUDA 12.3's, the CUDA DALI 1.35 was built with
RECORD_HEAD = struct.Struct("<II")  # magic, cflag << 29 | length (dmlc RecordIO)
IR_HEAD = struct.Struct("<IfQQ")  # mx.recordio's IRHeader: flag, label, id, id2
MAGIC_BYTES = np.frombuffer(struct.pack("<I", RECORD_MAGIC), np.uint8)
LENGTH_MASK = (1 << 29) - 1
# ImageRecordIter augments OpenCV's BGR pixels but takes their grey with CV_RGB2GRAY, so its
# contrast and saturation weigh R, G, B by 0.114, 0.587, 0.299; we follow the authors' code
GREY_RGB = (0.114, 0.587, 0.299)
# AlexNet's lighting: rows R, G, B; column k is the k-th eigenvector (docs/notes.md §1)
EIGVAL = (55.46, 4.794, 1.148)
EIGVEC = ((-0.5675, 0.7192, 0.4009),
          (-0.5808, -0.0045, -0.8140),
          (-0.5836, -0.6948, 0.4203))
# OpenCV interpolation codes (DataConfig.interpolation) -> DALI's (area: linear, antialiased)
INTERPOLATION = {0: (types.INTERP_NN, False), 1: (types.INTERP_LINEAR, False),
                 2: (types.INTERP_CUBIC, False), 3: (types.INTERP_LINEAR, True),
                 4: (types.INTERP_LANCZOS3, False)}


def dali_shard_range(num_records, num_parts, part_index):
    """[begin, end) of the records DALI's readers give shard ``part_index`` of ``num_parts``."""
    return (num_records * part_index // num_parts,
            num_records * (part_index + 1) // num_parts)


def nvjpeg_library(nvidia_dir=None):
    """The path of the ``libnvjpeg.so.12`` DALI's GPU decoder will open, loaded to prove it
    loads: DALI's RUNPATH (``nvidia_dir``/nvjpeg/lib, default the site-packages/nvidia of the
    installed DALI; then /usr/local/cuda/lib64), then the loader's own search. DataError (one
    line) when none loads."""
    nvidia_dir = nvidia_dir or os.path.dirname(os.path.dirname(os.path.abspath(dali.__file__)))
    candidates = [os.path.join(folder, NVJPEG) for folder in
                  (os.path.join(nvidia_dir, "nvjpeg", "lib"), "/usr/local/cuda/lib64")]
    for path in [p for p in candidates if os.path.exists(p)] + [NVJPEG]:
        try:
            ctypes.CDLL(path)
            return path
        except OSError:
            continue
    raise DataError(f"data.backend dali on a GPU: {NVJPEG} (nvJPEG, which DALI's GPU decoder "
                    f"opens) cannot be loaded; pip install {NVJPEG_WHEEL} (or make dali)")


def feed(tensor, array):
    """Copy the dense DALI tensor ``tensor`` into the MXNet NDArray ``array`` (same shape and
    dtype) and return only when the copy is done: a GPU tensor with ``non_blocking=False``
    (see the module docstring), after MXNet's pending writes to ``array``."""
    if tuple(tensor.shape()) != array.shape or types.to_numpy_type(tensor.dtype) != array.dtype:
        raise ValueError(f"DALI output {tensor.shape()} {tensor.dtype} into an array of "
                         f"{array.shape} {array.dtype}")
    mx.base.check_call(mx.base._LIB.MXNDArrayWaitToWrite(array.handle))
    pointer = ctypes.c_void_p()
    mx.base.check_call(mx.base._LIB.MXNDArrayGetData(array.handle, ctypes.byref(pointer)))
    if isinstance(tensor, (TensorGPU, TensorListGPU)):
        tensor.copy_to_external(pointer, None, non_blocking=False)
    else:
        tensor.copy_to_external(pointer)
    return array


class RecordFeed:
    """The ``fn.external_source`` callback of one pipeline: at iteration i, the encoded
    images and (1,) float32 labels of records ``order[i * batch + start : i * batch + stop]``
    (``order``: record numbers, set for each epoch; StopIteration past its end). Each record
    is read straight into the array handed to DALI (``os.preadv``): one copy from the page
    cache, no seek."""

    def __init__(self, rec_path, offsets, batch_size, share):
        self.rec_path, self.offsets = rec_path, offsets
        self.batch_size, (self.start, self.stop) = batch_size, share
        self.order = np.zeros(0, np.int64)
        self.fd = None

    def read(self, at, length, number):
        """``length`` bytes at byte ``at`` of the .rec as a uint8 array; DataError if short."""
        out = np.empty(length, np.uint8)
        if os.preadv(self.fd, [out], at) != length:
            raise DataError(f"{self.rec_path}: truncated in record {number} (byte {at})")
        return out

    def record(self, number):
        """(encoded image as a uint8 array, (1,) float32 label) of record ``number`` (file
        order), as ``mx.recordio.unpack`` reads it: IRHeader (flag, label, id, id2), then
        ``flag`` float32 labels when flag > 0 (the first is the class), then the image."""
        if self.fd is None:
            self.fd = os.open(self.rec_path, os.O_RDONLY)
        at, parts, cflag = int(self.offsets[number]), [], 1
        while cflag not in (0, 3):  # a record holding the magic number is stored in parts
            magic, lrec = RECORD_HEAD.unpack(self.read(at, RECORD_HEAD.size, number))
            if magic != RECORD_MAGIC:
                raise DataError(f"{self.rec_path}: no record header at byte {at} (record "
                                f"{number})")
            cflag, length = lrec >> 29, lrec & LENGTH_MASK
            parts.append(self.read(at + RECORD_HEAD.size, length, number))
            at += RECORD_HEAD.size + length + (-length % 4)
        payload = parts[0] if len(parts) == 1 else np.concatenate(
            [x for part in parts for x in (MAGIC_BYTES, part)][1:])
        flag, label, _, _ = IR_HEAD.unpack_from(payload)
        if flag > 0:
            label = payload[IR_HEAD.size:IR_HEAD.size + 4].view(np.float32)[0]
        return payload[IR_HEAD.size + 4 * flag:], np.array([label], np.float32)

    def __call__(self, info):
        first = info.iteration * self.batch_size
        numbers = self.order[first + self.start:first + self.stop]
        if first >= len(self.order) or not len(numbers):
            raise StopIteration
        images, labels = zip(*(self.record(n) for n in numbers))
        return list(images), list(labels)


class DALILoader(Loader):
    """A loader on NVIDIA DALI pipelines (see the module docstring)."""

    def __init__(self, cfg, rec_path, batch_size, train, shard=Shard(), seed=0,
                 pin_device=None):
        super().__init__(cfg, rec_path, batch_size, train, shard, seed, pin_device)
        if cfg.hue > 0:
            raise DataError(f"data.hue {cfg.hue}: the dali backend has no hue jitter (as "
                            "ImageRecordIter); use data.backend=gluon, or data.hue=0")
        if cfg.interpolation not in INTERPOLATION:
            raise DataError(f"data.interpolation {cfg.interpolation}: the dali backend takes "
                            f"{', '.join(map(str, INTERPOLATION))}")
        self.begin, self.end = dali_shard_range(self.num_records, shard.num_parts,
                                                shard.part_index)
        self.num_samples = self.end - self.begin
        if not train:
            self.batches_per_epoch = -(-self.num_samples // batch_size)
        self.offsets = np.array([offset for _, offset in read_index(rec_path)], np.int64)
        self.built = {}  # validation: (device, ...) -> its pipelines and feeds, built once

    def order(self, epoch):
        """The record numbers of epoch ``epoch`` in delivery order (int64 array of
        batches_per_epoch * batch_size): training, a permutation of the shard seeded from
        (seed, epoch, shard), its tail dropped; validation, the shard in order, its last batch
        padded with the last record."""
        n = self.batches_per_epoch * self.batch_size
        if self.train:
            rng = np.random.default_rng(
                seeds.derived_seed(self.seed, epoch, self.part_index, seeds.SHUFFLE))
            return self.begin + rng.permutation(self.num_samples)[:n]
        return np.minimum(np.arange(self.begin, self.begin + n), self.end - 1)

    def pipelines(self, epoch, contexts):
        """(pipelines, feeds) for ``contexts`` (one each), built: for each training epoch
        anew, for validation once."""
        key = tuple(contexts)
        if not self.train and key in self.built:
            return self.built[key]
        if any(c.device_type == "gpu" for c in contexts):
            nvjpeg_library()
        shares = device_shares(self.batch_size, len(contexts))
        threads = max(1, self.cfg.workers() // len(contexts))
        built = [], []
        for k, (ctx, share) in enumerate(zip(contexts, shares)):
            gpu = ctx.device_type == "gpu"
            feed_k = RecordFeed(self.rec_path, self.offsets, self.batch_size, share)
            pipe = Pipeline(batch_size=share[1] - share[0],
                            num_threads=min(threads, THREADS_PER_GPU) if gpu else threads,
                            device_id=ctx.device_id if gpu else None,
                            seed=seeds.derived_seed(self.seed, epoch, self.part_index,
                                                    seeds.AUGMENT, k),
                            prefetch_queue_depth=max(1, self.cfg.prefetch_batches))
            with pipe:
                jpegs, labels = fn.external_source(source=feed_k, num_outputs=2, batch=True,
                                                   batch_info=True)
                build = train_graph if self.train else val_graph
                pipe.set_outputs(build(self.cfg, jpegs, gpu), labels.gpu() if gpu else labels)
            pipe.build()
            built[0].append(pipe)
            built[1].append(feed_k)
        if not self.train:
            self.built[key] = built
        return built

    def device_epoch(self, epoch, contexts=None):
        """Iterator over the batches of epoch ``epoch``, each ``(xs, ys, n)``: lists with
        one (share, 3, S, S) float32 array and one (share,) float32 label array per device of
        ``contexts`` (default: ``pin_device``'s GPU, else the CPU), on that device, the
        device's share of the batch (device_shares); ``n``: the batch's real samples (less
        than the batch size only in validation's last batch, whose padding is at its end)."""
        contexts = contexts or [self.context if self.pin_device is None
                                else mx.gpu(self.pin_device)]
        order = self.order(epoch)
        pipes, feeds = self.pipelines(epoch, contexts)
        for feed_k in feeds:
            feed_k.order = order
        try:
            for b in range(self.batches_per_epoch):
                xs, ys = [], []
                for pipe, ctx in zip(pipes, contexts):
                    data, label = (t.as_tensor() for t in pipe.run())
                    xs.append(feed(data, mx.nd.empty(tuple(data.shape()), ctx=ctx)))
                    ys.append(feed(label, mx.nd.empty(tuple(label.shape()), ctx=ctx)
                                   ).reshape(-1))
                yield xs, ys, min(self.batch_size, self.num_samples - b * self.batch_size)
        finally:
            if not self.train:
                for pipe in pipes:  # ready for the next validation
                    drain(pipe)

    def epoch(self, epoch):
        for xs, ys, n in self.device_epoch(epoch):
            yield xs[0][:n], ys[0][:n]


def drain(pipe):
    """Run ``pipe`` to the end of its source, then reset it for its next epoch."""
    try:
        while True:
            pipe.run()
    except StopIteration:
        pipe.reset()


def train_graph(cfg, jpegs, gpu):
    """DALI graph of §2.1 training: encoded images in, (3, S, S) float32 normalised out."""
    s = cfg.input_size
    interp, antialias = INTERPOLATION[cfg.interpolation]
    images = fn.decoders.image_random_crop(
        jpegs, device="mixed" if gpu else "cpu", output_type=types.RGB,
        random_area=[cfg.min_area, cfg.max_area],
        random_aspect_ratio=[cfg.min_aspect_ratio, cfg.max_aspect_ratio], num_attempts=10)
    images = fn.resize(images, resize_x=s, resize_y=s, interp_type=interp, antialias=antialias)
    pixels = colour_and_lighting(cfg, fn.cast(images, dtype=types.FLOAT), gpu)
    mirror = fn.random.coin_flip(probability=0.5) if cfg.flip else 0
    return fn.crop_mirror_normalize(pixels, dtype=types.FLOAT, output_layout="CHW",
                                    mean=list(cfg.mean_rgb), std=list(cfg.std_rgb),
                                    mirror=mirror)


def colour_and_lighting(cfg, pixels, gpu):
    """Brightness, contrast and saturation jitter and PCA lighting on (S, S, 3) float RGB
    pixels in [0, 255] (see the module docstring); the result is clamped to [0, 255]."""
    def coefficient(strength):  # U[1 - s, 1 + s], on the pixels' device
        c = fn.random.uniform(range=[1 - strength, 1 + strength])
        return c.gpu() if gpu else c

    if cfg.brightness or cfg.contrast or cfg.saturation:
        grey = fn.coord_transform(pixels, M=list(GREY_RGB))  # (S, S, 1)
        if cfg.saturation:
            s = coefficient(cfg.saturation)
            pixels = s * pixels + (1 - s) * grey
        if cfg.contrast:
            # saturation leaves every pixel's grey as it was, so the mean is still this one
            c = coefficient(cfg.contrast)
            pixels = c * pixels + (1 - c) * fn.reductions.mean(grey)
        if cfg.brightness:
            pixels = coefficient(cfg.brightness) * pixels
    if cfg.pca_noise:
        alpha = fn.random.normal(shape=[3], stddev=cfg.pca_noise)
        shift = sum(alpha[k] * types.Constant(
            np.array([EIGVEC[c][k] * EIGVAL[k] for c in range(3)], dtype=np.float32))
            for k in range(3))
        pixels = pixels + (shift.gpu() if gpu else shift)
    return dali_math.clamp(pixels, 0.0, 255.0)


def val_graph(cfg, jpegs, gpu):
    """DALI graph of validation: short edge to ``cfg.resize`` and centre crop S with
    ImageRecordIter's integer arithmetic, normalised; (3, S, S) float32 out."""
    s, resize = cfg.input_size, cfg.resize
    interp, antialias = INTERPOLATION[cfg.interpolation]
    shape = fn.peek_image_shape(jpegs)  # (H, W, C) int64, from the header
    h, w = shape[0], shape[1]
    portrait = h > w
    width = portrait * resize + (1 - portrait) * (resize * w // h)
    height = portrait * (resize * h // w) + (1 - portrait) * resize
    images = fn.decoders.image(jpegs, device="mixed" if gpu else "cpu", output_type=types.RGB)
    images = fn.resize(images, resize_x=fn.cast(width, dtype=types.FLOAT),
                       resize_y=fn.cast(height, dtype=types.FLOAT), interp_type=interp,
                       antialias=antialias)
    anchor = fn.cast(fn.stack((height - s) // 2, (width - s) // 2), dtype=types.INT32)
    images = fn.slice(images, anchor, types.Constant(np.array([s, s], dtype=np.int32)),
                      axes=[0, 1])
    return fn.crop_mirror_normalize(images, dtype=types.FLOAT, output_layout="CHW",
                                    mean=list(cfg.mean_rgb), std=list(cfg.std_rgb))
