"""The data pipeline's configuration: one plain dataclass whose defaults are the paper's
§2.1 (docs/notes.md §1) and GluonCV's ``train_imagenet.py``.

Hue: the paper says it scales "hue, saturation and brightness" by U[0.6, 1.4], but the
authors' code (GluonCV ``train_imagenet.py``, both its RecordIO and its Gluon pipeline)
applies brightness, contrast and saturation jitter of 0.4 and no hue jitter, and MXNet's
``ImageRecordIter`` has no multiplicative hue at all (its ``random_h`` adds an integer to
OpenCV's 8-bit H channel and clamps instead of wrapping, which turns reds into the wrong
colour). We follow the code: ``hue = 0``. ``hue > 0`` is available on the Gluon backend
(``transforms.RandomColorJitter``: the hue is rotated by U[-hue, hue] x 180 degrees) and
refused by the RecordIO backend.
"""
import dataclasses
import math
from dataclasses import dataclass
from typing import Optional, Tuple

from ..cpus import cpus_per_rank
from .records import DataError

BACKENDS = ("recordio", "gluon", "dali")


@dataclass
class DataConfig:
    """Every constant of the input pipeline. Sizes in pixels, pixel values in [0, 255].

    backend: "recordio" (MXNet's C++ ImageRecordIter, the authors' fast path) or "gluon"
        (ImageRecordDataset + gluon.data.vision.transforms + DataLoader).
    input_size: side of the square network input (224; 299 for Inception-V3). None only
        before a training configuration fills in its network's own size.
    crop_ratio: validation centre crop / short edge; the short edge is
        ceil(input_size / crop_ratio) unless ``val_resize`` is set (256 at 224, 342 at 299),
        GluonCV's train_imagenet.py rule (``int(math.ceil(input_size / crop_ratio))``).
    min_area, max_area: random-resized-crop area fraction of the image, U[min, max].
    min_aspect_ratio, max_aspect_ratio: crop width / height, log-uniform in [min, max].
    flip: random horizontal flip with p = 0.5 (the only rate MXNet offers).
    brightness, contrast, saturation: jitter strength s, coefficient ~ U[1 - s, 1 + s].
    hue: hue jitter (0 = the authors' code; see the module docstring).
    pca_noise: std of the AlexNet PCA lighting coefficients.
    mean_rgb, std_rgb: per-channel normalisation, in [0, 255] units.
    interpolation: OpenCV interpolation for every resize (1 = bilinear, MXNet's default).
    num_workers: decoding threads (recordio) or worker processes (gluon, 0 = in-process);
        None = the host's cores, shared among the ranks that run on it (GluonCV's 8-GPU runs
        use 60-90). ImageRecordIter caps threads at max(cores / 2 - 1, 1) (docs/notes.md §4).
    prefetch_batches: batches decoded ahead (ImageRecordIter's prefetch_buffer).
    check_train_images: training images decoded at start-up to find undecodable ones (every
        validation image is); None = all of them. MXNet's iterator ends the process without
        a message on an image it cannot decode, and no Python code can catch that.
    """
    backend: str = "recordio"
    input_size: Optional[int] = None
    crop_ratio: float = 0.875
    val_resize: Optional[int] = None
    min_area: float = 0.08
    max_area: float = 1.0
    min_aspect_ratio: float = 3.0 / 4.0
    max_aspect_ratio: float = 4.0 / 3.0
    flip: bool = True
    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.0
    pca_noise: float = 0.1
    mean_rgb: Tuple[float, ...] = (123.68, 116.779, 103.939)
    std_rgb: Tuple[float, ...] = (58.393, 57.12, 57.375)
    interpolation: int = 1
    num_workers: Optional[int] = None
    prefetch_batches: int = 4
    check_train_images: Optional[int] = 2000

    def __post_init__(self):
        self.mean_rgb = tuple(float(x) for x in self.mean_rgb)
        self.std_rgb = tuple(float(x) for x in self.std_rgb)
        self.check_config()

    @property
    def resize(self):
        """Short edge (pixels) of validation images before the centre crop."""
        if self.input_size is None:
            raise ValueError("DataConfig.input_size is not set")
        return self.val_resize or int(math.ceil(self.input_size / self.crop_ratio))

    def check_config(self):
        """Raise DataError (one line naming the field) on a value no pipeline accepts."""
        if self.backend not in BACKENDS:
            raise DataError(f"data.backend {self.backend!r}: expected one of "
                            f"{', '.join(BACKENDS)}")
        if (self.input_size is not None and self.input_size <= 0) or \
                not 0 < self.crop_ratio <= 1:
            raise DataError(f"data.input_size {self.input_size} / data.crop_ratio "
                            f"{self.crop_ratio}: expected a positive size and a ratio in (0, 1]")
        if not 0 < self.min_area <= self.max_area <= 1:
            raise DataError(f"data.min_area {self.min_area}, data.max_area {self.max_area}: "
                            "expected 0 < min_area <= max_area <= 1")
        if not 0 < self.min_aspect_ratio <= self.max_aspect_ratio:
            raise DataError(f"data.min_aspect_ratio {self.min_aspect_ratio}, "
                            f"data.max_aspect_ratio {self.max_aspect_ratio}: "
                            "expected 0 < min <= max")
        for name in ("brightness", "contrast", "saturation", "hue", "pca_noise"):
            if getattr(self, name) < 0:
                raise DataError(f"data.{name} {getattr(self, name)}: expected >= 0")
        if len(self.mean_rgb) != 3 or len(self.std_rgb) != 3 or min(self.std_rgb) <= 0:
            raise DataError("data.mean_rgb / data.std_rgb: expected three values, std > 0")
        if self.hue > 0 and self.backend == "recordio":
            raise DataError(f"data.hue {self.hue}: ImageRecordIter has no hue scaling; use "
                            "data.backend=gluon for hue jitter, or data.hue=0 (the authors' code)")

    def workers(self, processes_per_host=1):
        """Decoding threads (or processes) to use: ``num_workers``, else the CPUs this process
        may use (``cpus.usable_cpus``) divided among ``processes_per_host``."""
        if self.num_workers is not None:
            return self.num_workers
        return cpus_per_rank(processes_per_host)

    def replace(self, **changes):
        """A copy with ``changes`` applied (and validated)."""
        return dataclasses.replace(self, **changes)
