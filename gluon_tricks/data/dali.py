"""The ``"dali"`` backend: NVIDIA DALI reads the packed RecordIO set (``fn.readers.mxnet``),
decodes and augments it, with the interface of ``loaders.RecordIOLoader`` (``epoch(e)``,
``num_samples``, ``batches_per_epoch``; batches (N, 3, S, S) float32 normalised and (N,)
float32 labels).

Install: ``pip install nvidia-dali-cuda120==1.35.0``, the newest DALI on PyPI that ships as
a wheel and still has the MXNet plugin (later releases on PyPI only download their wheel
from NVIDIA's own index).

Without ``pin_device`` the whole pipeline runs on the CPU (DALI's CPU mode, what the tests
check). With ``pin_device`` it decodes with nvJPEG (``device="mixed"``) and augments on that
GPU, and the batches are in that GPU's memory; that path has never run here (no GPU).

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
- shuffle: DALI's reader draws from a buffer of ``SHUFFLE_BUFFER`` records read in file
  order, not a permutation of the whole shard (the packer stores records shuffled).

Each epoch builds a fresh pipeline seeded from (seed, epoch, shard), so a run resumed at
epoch e sees the epoch it would have seen. DALI seeds every sample's random draws itself, so
the batches do not depend on the number of threads.
"""
import numpy as np
from nvidia.dali import fn, math as dali_math, types
from nvidia.dali.pipeline import Pipeline
from nvidia.dali.plugin.mxnet import DALIClassificationIterator, LastBatchPolicy

from .. import seeds
from .loaders import Loader, Shard
from .records import DataError

READER = "reader"
SHUFFLE_BUFFER = 1024  # DALI's default; ImageNet records are ~110 KB
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


class DALILoader(Loader):
    """A loader on an NVIDIA DALI pipeline (see the module docstring)."""

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

    def make_pipeline(self, epoch):
        """The built DALI ``Pipeline`` of epoch ``epoch`` of this shard."""
        gpu = self.pin_device is not None
        seed = seeds.derived_seed(self.seed, epoch, self.part_index, seeds.AUGMENT)
        pipe = Pipeline(batch_size=self.batch_size, num_threads=max(1, self.cfg.workers()),
                        device_id=self.pin_device, seed=seed,
                        prefetch_queue_depth=max(1, self.cfg.prefetch_batches))
        with pipe:
            jpegs, labels = fn.readers.mxnet(
                path=self.rec_path, index_path=self.idx_path, shard_id=self.part_index,
                num_shards=self.num_parts, stick_to_shard=True, random_shuffle=self.train,
                initial_fill=SHUFFLE_BUFFER, pad_last_batch=not self.train, name=READER)
            build = train_graph if self.train else val_graph
            pipe.set_outputs(build(self.cfg, jpegs, gpu), labels)
        pipe.build()
        return pipe

    def epoch(self, epoch):
        policy = LastBatchPolicy.DROP if self.train else LastBatchPolicy.PARTIAL
        batches = DALIClassificationIterator(self.make_pipeline(epoch), reader_name=READER,
                                             last_batch_policy=policy)
        for _, (batch,) in zip(range(self.batches_per_epoch), batches):
            data, label = batch.data[0], batch.label[0]
            if batch.pad:
                data, label = data[:-batch.pad], label[:-batch.pad]
            yield data, label


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
